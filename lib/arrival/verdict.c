/* lib/arrival: which Authentication-Results and Received-SPF fields of a
 * stored message are the receiver's, and what they say (arrival.h has the
 * rules).  The header fields come from GMime's parser, in order. */
#include "config.h"
#include "arrival.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gmime/gmime.h>

#define KEPT_MAX 16     /* field values kept per kind */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();   /* counts its callers: lib/bounce calls it too */
}

typedef struct field {
    const char *name;   /* GMime's, valid while the message lives */
    char *value;        /* unfolded, trimmed; malloc'd */
} field;

typedef struct fields {
    GMimeMessage *msg;
    field *v;
    size_t n;
} fields;

/*
 * The value as the message holds it, unfolded (RFC 5322 2.2.3: the line
 * breaks of folding removed) and trimmed.  Not g_mime_header_get_value:
 * that decodes RFC 2047 encoded-words as in unstructured text, which
 * Authentication-Results and Received-SPF are not (encoded-words may only
 * appear in their comments, where this parser skips them anyway).
 */
static char *unfold(const char *raw)
{
    size_t n = raw ? strlen(raw) : 0, o = 0;
    char *v = md_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (raw[i] != '\r' && raw[i] != '\n')
            v[o++] = raw[i] == '\t' ? ' ' : raw[i];   /* WSP either way; a TAB would show as '?' */
    while (o > 0 && v[o - 1] == ' ')
        o--;
    v[o] = '\0';
    size_t s = 0;
    while (v[s] == ' ')
        s++;
    if (s)
        memmove(v, v + s, o - s + 1);
    return v;
}

static void fields_clear(fields *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].value);
    free(f->v);
    if (f->msg)
        g_object_unref(f->msg);
    memset(f, 0, sizeof *f);
}

static int fields_read(const char *data, size_t len, fields *f)
{
    memset(f, 0, sizeof *f);
    pthread_once(&gmime_once, gmime_start);
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    f->msg = g_mime_parser_construct_message(p, NULL);
    g_object_unref(p);
    g_object_unref(st);
    if (f->msg == NULL)
        return -1;
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(f->msg));
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    f->v = md_xcalloc(n > 0 ? (size_t)n : 1, sizeof *f->v);
    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = h ? g_mime_header_get_name(h) : NULL;
        if (name == NULL)
            continue;
        f->v[f->n].name = name;
        f->v[f->n].value = unfold(g_mime_header_get_raw_value(h));
        f->n++;
    }
    return 0;
}

/* The index of the first field name (without case) from index from, or -1. */
static long find(const fields *f, const char *name, size_t from)
{
    for (size_t i = from; i < f->n; i++)
        if (strcasecmp(f->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int id_trusted(const char *id, const char *const *ids)
{
    for (size_t i = 0; ids[i]; i++)
        if (strcasecmp(id, ids[i]) == 0)
            return 1;
    return 0;
}

static void keep(char ***v, size_t *n, const char *value)
{
    if (*n >= KEPT_MAX)
        return;
    *v = md_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = md_sanitize_dup(value, strlen(value));
}

static void set_once(char *dst, size_t size, const char *v)
{
    if (!dst[0] && v && v[0])
        snprintf(dst, size, "%s", v);
}

md_status md_arrival_auth_read(const char *stored, size_t len, const char *sent, size_t sent_len,
                               const char *const *authserv_ids, md_arrival_auth *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    fields s = { 0 }, m = { 0 };
    md_status st = MD_OK;
    if (fields_read(sent, sent_len, &s) != 0) {
        st = md_error_set(err, MD_PROTOCOL, "arrival.sent", "the message sent cannot be read");
        goto done;
    }
    long ks = find(&s, "Message-ID", 0);
    if (ks < 0 || !s.v[ks].value[0]) {
        st = md_error_set(err, MD_CONFIG, "arrival.sent", "the message sent has no Message-ID");
        goto done;
    }
    const char *msgid = s.v[ks].value;
    if (fields_read(stored, len, &m) != 0) {
        st = md_error_set(err, MD_PROTOCOL, "arrival.message", "the stored message cannot be read");
        goto done;
    }
    long kl = -1;
    for (long i = find(&m, "Message-ID", 0); i >= 0; i = find(&m, "Message-ID", (size_t)i + 1))
        if (strcmp(m.v[i].value, msgid) == 0) {
            kl = i;
            break;
        }
    if (kl < 0) {
        st = md_error_set(err, MD_NOTFOUND, "arrival.message", "no Message-ID field equal to ours");
        goto done;
    }
    /* Our fields start ks fields above our Message-ID: everything above
     * them was added on the way. */
    size_t top = kl >= ks ? (size_t)(kl - ks) : 0;
    md_authres *ar = md_xmalloc(sizeof *ar);   /* about 30 KB: one, reused */
    md_received_spf *rs = md_xmalloc(sizeof *rs);
    char topmost_id[sizeof ar->authserv_id] = "", rspf_result[sizeof rs->result] = "";
    int none = 0, any_ar = 0, any_rspf = 0;
    for (size_t i = 0; i < top && !any_ar; i++)
        if (strcasecmp(m.v[i].name, "Authentication-Results") == 0 &&
            md_arrival_authres_parse(m.v[i].value, strlen(m.v[i].value), ar, NULL) == MD_OK) {
            snprintf(topmost_id, sizeof topmost_id, "%s", ar->authserv_id);
            any_ar = 1;
        }
    const char *const one[] = { topmost_id, NULL };
    const char *const *ids = authserv_ids ? authserv_ids : one;
    for (size_t i = 0; i < m.n; i++) {
        int a = strcasecmp(m.v[i].name, "Authentication-Results") == 0;
        int r = !a && strcasecmp(m.v[i].name, "Received-SPF") == 0;
        if (!a && !r)
            continue;
        if (i >= top) {   /* the message held it when it left us */
            out->ignored++;
            continue;
        }
        const char *v = m.v[i].value;
        if (r) {
            if (md_arrival_received_spf_parse(v, strlen(v), rs, NULL) != MD_OK) {
                out->unreadable++;
            } else if (!any_rspf) {   /* the topmost: the last MTA's */
                any_rspf = 1;
                snprintf(rspf_result, sizeof rspf_result, "%s", rs->result);
                keep(&out->received_spf, &out->nreceived_spf, v);
            } else {
                out->ignored++;
            }
            continue;
        }
        if (md_arrival_authres_parse(v, strlen(v), ar, NULL) != MD_OK) {
            out->unreadable++;
            continue;
        }
        if (!id_trusted(ar->authserv_id, ids)) {
            out->ignored++;
            continue;
        }
        set_once(out->authserv_id, sizeof out->authserv_id, ar->authserv_id);
        keep(&out->authres, &out->nauthres, v);
        none |= ar->none;
        for (size_t k = 0; k < ar->nresult; k++) {
            const md_authres_result *x = &ar->result[k];
            if (strcmp(x->method, "spf") == 0)
                set_once(out->spf, sizeof out->spf, x->result);
            else if (strcmp(x->method, "dmarc") == 0)
                set_once(out->dmarc, sizeof out->dmarc, x->result);
            else if (strcmp(x->method, "dkim") == 0 && strcmp(x->result, "pass") == 0)
                snprintf(out->dkim, sizeof out->dkim, "pass");
            else if (strcmp(x->method, "dkim") == 0)
                set_once(out->dkim, sizeof out->dkim, x->result);
        }
    }
    set_once(out->spf, sizeof out->spf, rspf_result);
    if (none) {
        set_once(out->spf, sizeof out->spf, "none");
        set_once(out->dkim, sizeof out->dkim, "none");
        set_once(out->dmarc, sizeof out->dmarc, "none");
    }
    free(ar);
    free(rs);
done:
    fields_clear(&s);
    fields_clear(&m);
    return st;
}

void md_arrival_auth_clear(md_arrival_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nauthres; i++)
        free(a->authres[i]);
    for (size_t i = 0; i < a->nreceived_spf; i++)
        free(a->received_spf[i]);
    free(a->authres);
    free(a->received_spf);
    memset(a, 0, sizeof *a);
}
