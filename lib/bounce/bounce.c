/* lib/bounce: DSN (RFC 3464) and ARF (RFC 5965) reports through GMime; the
 * non-standard bounces are text.c's. */
#include "config.h"
#include "bounce_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gmime/gmime.h>

#define WALK_MAX_DEPTH 8      /* MIME nesting followed */
#define WALK_MAX_PARTS 256    /* parts looked at */
#define REPORT_PART_MAX (1u << 20)   /* a delivery-status or feedback-report part */
#define GROUP_FIELDS_MAX 64   /* fields in one DSN group */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

/* ------------------------------------------------------------ small bits */

static const char *const kind_names[] = { "none", "dsn", "arf", "text" };
static const char *const action_names[] = { "", "failed", "delayed", "delivered", "relayed", "expanded" };

const char *md_bounce_kind_name(md_bounce_kind k)
{
    return (unsigned)k < 4 ? kind_names[k] : "none";
}

const char *md_bounce_action_name(md_bounce_action a)
{
    return (unsigned)a < 6 ? action_names[a] : "";
}

int md_bounce_status_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < len && isdigit((unsigned char)s[i]) && d < 4) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
    }
    return i == len;
}

int md_bounce_is_complaint(const md_bounce *b)
{
    static const char *const types[] = { "abuse", "fraud", "virus", "other" };
    if (b == NULL || b->kind != MD_BOUNCE_ARF || b->feedback_type == NULL)
        return 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(b->feedback_type, types[i]) == 0)
            return 1;
    return 0;
}

char *bounce_clean(const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    if (len > 4 * MD_BOUNCE_TEXT_MAX)
        len = 4 * MD_BOUNCE_TEXT_MAX;
    char *tmp = md_xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\r' || c == '\n' || c == '\t')
            c = ' ';
        if (c == ' ' && (n == 0 || tmp[n - 1] == ' '))
            continue;
        tmp[n++] = c;
    }
    while (n > 0 && tmp[n - 1] == ' ')
        n--;
    if (n == 0) {
        free(tmp);
        return NULL;
    }
    if (n > MD_BOUNCE_TEXT_MAX)
        n = MD_BOUNCE_TEXT_MAX;
    char *out = md_xmalloc(n + 1);
    md_sanitize_text(out, n + 1, tmp, n, 0);   /* UTF-8 kept (RFC 6533 reports), controls out */
    free(tmp);
    if (out[0] == '\0') {   /* only a NUL byte was left */
        free(out);
        return NULL;
    }
    return out;
}

static char *clean_str(const char *s)
{
    return s ? bounce_clean(s, strlen(s)) : NULL;
}

md_bounce_recipient *bounce_add_rcpt(md_bounce *b)
{
    if (b->nrcpt >= MD_BOUNCE_MAX_RCPT)
        return NULL;
    b->rcpt = md_xrealloc(b->rcpt, (b->nrcpt + 1) * sizeof *b->rcpt);
    md_bounce_recipient *r = &b->rcpt[b->nrcpt++];
    memset(r, 0, sizeof *r);
    return r;
}

void md_bounce_free(md_bounce *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nrcpt; i++) {
        free(b->rcpt[i].address);
        free(b->rcpt[i].field);
        free(b->rcpt[i].diagnostic);
        free(b->rcpt[i].remote_mta);
    }
    free(b->rcpt);
    free(b->message_id);
    free(b->key);
    free(b->original_message_id);
    free(b->from);
    free(b->subject);
    free(b->reporting_mta);
    free(b->feedback_type);
    free(b);
}

static int64_t date_of(const char *v)
{
    if (v == NULL)
        return 0;
    GDateTime *d = g_mime_utils_header_decode_date(v);
    if (d == NULL)
        return 0;
    int64_t t = (int64_t)g_date_time_to_unix(d);
    g_date_time_unref(d);
    return t;
}

/* A Message-ID as we keep it: without <>, sanitized; NULL when empty. */
static char *msgid_clean(const char *id)
{
    if (id == NULL)
        return NULL;
    while (*id == ' ' || *id == '<')
        id++;
    size_t n = strcspn(id, "> \t\r\n");
    return n ? bounce_clean(id, n) : NULL;
}

/* -------------------------------------------------------------- parts */

static GMimeMessage *parse_message(const char *data, size_t len)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
    g_object_unref(p);
    g_object_unref(st);
    return m;
}

/* The decoded content of a leaf part, at most max bytes (*cut set when
 * there was more).  Caller frees with g_byte_array_unref(). */
static GByteArray *part_bytes(GMimeObject *o, size_t max, int *cut)
{
    GByteArray *arr = g_byte_array_new();
    if (cut)
        *cut = 0;
    if (!GMIME_IS_PART(o))
        return arr;
    GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
    if (w == NULL)
        return arr;
    GMimeStream *st = g_mime_stream_mem_new_with_byte_array(arr);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(st), FALSE);
    g_mime_data_wrapper_write_to_stream(w, st);
    g_object_unref(st);
    if (arr->len > max) {
        g_byte_array_set_size(arr, (guint)max);
        if (cut)
            *cut = 1;
    }
    return arr;
}

static int type_is(GMimeObject *o, const char *type, const char *sub)
{
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    return ct && g_mime_content_type_is_type(ct, type, sub);
}

/* What the walk over the MIME tree found (outside attached messages). */
typedef struct walk {
    GMimeObject *report;       /* the first multipart/report */
    char report_path[48];
    GMimeObject *text;         /* the first text/plain leaf */
    GMimeMessage *attached;    /* the first message/rfc822 (or message/global) */
    GMimeObject *headers;      /* the first text/rfc822-headers (or message/global-headers) */
    unsigned nparts;
} walk;

static void walk_tree(GMimeObject *o, const char *path, unsigned depth, walk *w)
{
    if (o == NULL || depth > WALK_MAX_DEPTH || ++w->nparts > WALK_MAX_PARTS)
        return;
    if (GMIME_IS_MULTIPART(o)) {
        if (w->report == NULL && type_is(o, "multipart", "report")) {
            w->report = o;
            snprintf(w->report_path, sizeof w->report_path, "%s", *path ? path : "the message body");
        }
        int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
        for (int i = 0; i < n && w->nparts < WALK_MAX_PARTS; i++) {
            char sub[48];
            snprintf(sub, sizeof sub, "%s%s%d", path, *path ? "." : "", i + 1);
            walk_tree(g_mime_multipart_get_part(GMIME_MULTIPART(o), i), sub, depth + 1, w);
        }
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        if (w->attached == NULL)
            w->attached = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
    } else if (GMIME_IS_PART(o)) {
        if (w->headers == NULL && (type_is(o, "text", "rfc822-headers") ||
                                   type_is(o, "message", "global-headers")))
            w->headers = o;
        else if (w->text == NULL && type_is(o, "text", "plain"))
            w->text = o;
    }
}

/* The Message-ID (and To, for ARF) of the reported message. */
static void original_from_headers(GMimeObject *part, char **msgid, md_bounce *arf)
{
    GByteArray *a = part_bytes(part, REPORT_PART_MAX, NULL);
    g_byte_array_append(a, (const guint8 *)"\n\n", 2);
    GMimeMessage *m = parse_message((const char *)a->data, a->len);
    if (m) {
        if (*msgid == NULL)
            *msgid = msgid_clean(g_mime_message_get_message_id(m));
        if (arf && arf->nrcpt == 0) {
            InternetAddressList *to = g_mime_message_get_to(m);
            int n = to ? internet_address_list_length(to) : 0;
            for (int i = 0; i < n; i++) {
                InternetAddress *ia = internet_address_list_get_address(to, i);
                if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
                    continue;
                char *addr = clean_str(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
                md_bounce_recipient *r = addr ? bounce_add_rcpt(arf) : NULL;
                if (r == NULL) {
                    free(addr);
                    continue;
                }
                r->address = addr;
                r->field = md_xstrdup("To");
            }
        }
        g_object_unref(m);
    }
    g_byte_array_unref(a);
}

/* --------------------------------------------------- RFC 3464 field groups */

/* One group of fields of a report part, parsed by GMime's header parser. */
typedef struct group {
    GMimeMessage *m;
    unsigned line;   /* first line of the group in the part, from 1 */
} group;

/* Splits text into groups at blank lines and parses each one.  Returns
 * the number of groups (at most max). */
static size_t split_groups(const char *t, size_t len, group *g, size_t max)
{
    size_t n = 0, i = 0, start = 0;
    unsigned line = 1, first = 1;
    int in_group = 0;
    while (n < max) {
        size_t e = i;
        while (e < len && t[e] != '\n')
            e++;
        int blank = 1;
        for (size_t k = i; k < e && blank; k++)
            blank = t[k] == ' ' || t[k] == '\t' || t[k] == '\r';
        if (!blank && !in_group) {
            in_group = 1;
            start = i;
            first = line;
        } else if (blank && in_group) {
            GByteArray *a = g_byte_array_new();
            g_byte_array_append(a, (const guint8 *)t + start, (guint)(i - start));
            g_byte_array_append(a, (const guint8 *)"\n\n", 2);
            g[n].m = parse_message((const char *)a->data, a->len);
            g[n].line = first;
            g_byte_array_unref(a);
            if (g[n].m)
                n++;
            in_group = 0;
        }
        if (e >= len) {
            if (!in_group)
                break;
            i = len;   /* one more round, on an empty line, closes the last group */
            continue;
        }
        i = e + 1;
        line++;
    }
    return n;
}

static void groups_free(group *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g_object_unref(g[i].m);
}

static const char *field(const group *g, const char *name)
{
    const char *v = g_mime_object_get_header(GMIME_OBJECT(g->m), name);
    return v && *v ? v : NULL;
}

static int field_count(const group *g)
{
    return g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(g->m)));
}

/* The part of "type; value" after the semicolon, trimmed; the whole value
 * when there is no type.  Sets *typed. */
static const char *after_type(const char *v, int *typed)
{
    const char *semi = strchr(v, ';');
    if (typed)
        *typed = semi != NULL;
    if (semi)
        v = semi + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return v;
}

/* An address from "rfc822; <a@b>": angle brackets dropped. */
static char *typed_address(const char *v)
{
    int typed;
    const char *a = after_type(v, &typed);
    while (*a == '<' || *a == ' ')
        a++;
    size_t n = strcspn(a, "> \t\r\n");
    return n ? bounce_clean(a, n) : NULL;
}

static md_status group_error(md_error *err, const char *where, const group *g, const char *what)
{
    return md_error_set(err, MD_PROTOCOL, "bounce.dsn", "%s line %u: %s", where, g->line, what);
}

static md_status read_status(const group *g, const char *where, md_bounce_recipient *r,
                             md_error *err)
{
    const char *v = field(g, "Status");
    if (v == NULL)
        return group_error(err, where, g, "a recipient without Status");
    while (*v == ' ')
        v++;
    size_t n = strcspn(v, " \t(");
    const char *rest = v + n;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    char shown[40];
    md_sanitize(shown, sizeof shown, v, strlen(v));
    if (!md_bounce_status_valid(v, n) || (*rest && (*rest != '(' || rest[strlen(rest) - 1] != ')')))
    {
        char what[96];
        snprintf(what, sizeof what, "Status '%s' is not an RFC 3463 status code", shown);
        return group_error(err, where, g, what);
    }
    memcpy(r->status, v, n);
    r->status[n] = '\0';
    return MD_OK;
}

static md_status read_action(const group *g, const char *where, md_bounce_recipient *r,
                             md_error *err)
{
    const char *v = field(g, "Action");
    if (v == NULL)
        return group_error(err, where, g, "a recipient without Action");
    while (*v == ' ')
        v++;
    size_t n = strcspn(v, " \t(");
    for (int a = MD_BOUNCE_FAILED; a <= MD_BOUNCE_EXPANDED; a++)
        if (n == strlen(action_names[a]) && strncasecmp(v, action_names[a], n) == 0) {
            r->action = (md_bounce_action)a;
            return MD_OK;
        }
    char shown[40];
    md_sanitize(shown, sizeof shown, v, strlen(v));
    char what[120];
    snprintf(what, sizeof what, "Action '%s' is not failed, delayed, delivered, relayed or expanded", shown);
    return group_error(err, where, g, what);
}

static md_status read_dsn(md_bounce *b, GMimeObject *part, const char *where, md_error *err)
{
    GByteArray *a = part_bytes(part, REPORT_PART_MAX, NULL);
    group *g = md_xcalloc(MD_BOUNCE_MAX_RCPT + 1, sizeof *g);
    size_t n = split_groups((const char *)a->data, a->len, g, MD_BOUNCE_MAX_RCPT + 1);
    md_status st = MD_OK;
    size_t first = 0;
    if (n == 0) {
        st = md_error_set(err, MD_PROTOCOL, "bounce.dsn", "%s holds no fields", where);
        goto done;
    }
    if (field(&g[0], "Final-Recipient") == NULL) {   /* the per-message group */
        b->reporting_mta = field(&g[0], "Reporting-MTA") ? clean_str(after_type(field(&g[0], "Reporting-MTA"), NULL)) : NULL;
        b->arrival_date = date_of(field(&g[0], "Arrival-Date"));
        first = 1;
    }
    if (first >= n) {
        st = md_error_set(err, MD_PROTOCOL, "bounce.dsn", "%s names no recipient (no Final-Recipient group)",
                          where);
        goto done;
    }
    for (size_t i = first; i < n && st == MD_OK; i++) {
        const char *fr = field(&g[i], "Final-Recipient"), *orc = field(&g[i], "Original-Recipient");
        if (fr == NULL) {
            st = group_error(err, where, &g[i], field_count(&g[i]) > GROUP_FIELDS_MAX
                                 ? "too many fields" : "a recipient group without Final-Recipient");
            break;
        }
        md_bounce_recipient *r = bounce_add_rcpt(b);
        if (r == NULL)
            break;
        char *oa = orc ? typed_address(orc) : NULL;
        if (oa) {
            r->address = oa;
            r->field = md_xstrdup("Original-Recipient");
        } else {
            r->address = typed_address(fr);
            r->field = md_xstrdup("Final-Recipient");
        }
        if (r->address == NULL) {
            st = group_error(err, where, &g[i], "Final-Recipient names no address");
            break;
        }
        st = read_action(&g[i], where, r, err);
        if (st == MD_OK)
            st = read_status(&g[i], where, r, err);
        const char *dc = field(&g[i], "Diagnostic-Code"), *rm = field(&g[i], "Remote-MTA");
        if (dc)
            r->diagnostic = clean_str(after_type(dc, NULL));
        if (rm)
            r->remote_mta = clean_str(after_type(rm, NULL));
    }
done:
    groups_free(g, n);
    free(g);
    g_byte_array_unref(a);
    return st;
}

static md_status read_arf(md_bounce *b, GMimeObject *part, const char *where, md_error *err)
{
    GByteArray *a = part_bytes(part, REPORT_PART_MAX, NULL);
    group g[1];
    size_t n = split_groups((const char *)a->data, a->len, g, 1);
    md_status st = MD_OK;
    const char *ft = n ? field(&g[0], "Feedback-Type") : NULL;
    if (ft == NULL) {
        st = md_error_set(err, MD_PROTOCOL, "bounce.arf", "%s has no Feedback-Type", where);
        goto done;
    }
    size_t tl = strcspn(ft, " \t;(");
    b->feedback_type = bounce_clean(ft, tl);
    const char *ua = field(&g[0], "Reporting-MTA") ? field(&g[0], "Reporting-MTA") : field(&g[0], "User-Agent");
    b->reporting_mta = ua ? clean_str(after_type(ua, NULL)) : NULL;
    b->arrival_date = date_of(field(&g[0], "Arrival-Date") ? field(&g[0], "Arrival-Date")
                                                            : field(&g[0], "Received-Date"));
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(g[0].m));
    int nh = g_mime_header_list_get_count(hl);
    for (int i = 0; i < nh; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        if (strcasecmp(g_mime_header_get_name(h), "Original-Rcpt-To") != 0)
            continue;
        const char *v = g_mime_header_get_value(h);
        char *addr = v ? typed_address(v) : NULL;
        if (addr == NULL)
            continue;
        md_bounce_recipient *r = bounce_add_rcpt(b);
        if (r == NULL) {
            free(addr);
            break;
        }
        r->address = addr;
        r->field = md_xstrdup("Original-Rcpt-To");
    }
done:
    groups_free(g, n);
    g_byte_array_unref(a);
    return st;
}

/* The report part of a multipart/report: its direct child of type
 * message/sub (or message/global-sub for RFC 6533), with its path. */
static GMimeObject *report_child(GMimeObject *report, const char *path, const char *sub,
                                 char *where, size_t wsize)
{
    char global[48];
    snprintf(global, sizeof global, "global-%s", sub);
    int n = g_mime_multipart_get_count(GMIME_MULTIPART(report));
    for (int i = 0; i < n; i++) {
        GMimeObject *c = g_mime_multipart_get_part(GMIME_MULTIPART(report), i);
        if (type_is(c, "message", sub) || type_is(c, "message", global)) {
            snprintf(where, wsize, "part %s%s%d (message/%s)", strcmp(path, "the message body") ? path : "",
                     strcmp(path, "the message body") ? "." : "", i + 1, sub);
            return c;
        }
    }
    return NULL;
}

static md_status read_report(md_bounce *b, walk *w, md_error *err)
{
    GMimeContentType *ct = g_mime_object_get_content_type(w->report);
    const char *rt = g_mime_content_type_get_parameter(ct, "report-type");
    char where[96];
    GMimeObject *ds = report_child(w->report, w->report_path, "delivery-status", where, sizeof where);
    int want_dsn = rt ? strcasecmp(rt, "delivery-status") == 0 || strcasecmp(rt, "global-delivery-status") == 0
                      : ds != NULL;
    if (want_dsn) {
        if (ds == NULL)
            return md_error_set(err, MD_PROTOCOL, "bounce.dsn",
                                "multipart/report (%s) of report-type delivery-status has no "
                                "message/delivery-status part", w->report_path);
        b->kind = MD_BOUNCE_DSN;
        b->standard = 1;
        b->format = "rfc3464";
        return read_dsn(b, ds, where, err);
    }
    GMimeObject *fr = report_child(w->report, w->report_path, "feedback-report", where, sizeof where);
    int want_arf = rt ? strcasecmp(rt, "feedback-report") == 0 : fr != NULL;
    if (want_arf) {
        if (fr == NULL)
            return md_error_set(err, MD_PROTOCOL, "bounce.arf",
                                "multipart/report (%s) of report-type feedback-report has no "
                                "message/feedback-report part", w->report_path);
        b->kind = MD_BOUNCE_ARF;
        b->standard = 1;
        b->format = "rfc5965";
        return read_arf(b, fr, where, err);
    }
    if (rt == NULL)
        return md_error_set(err, MD_PROTOCOL, "bounce.report",
                            "multipart/report (%s) without report-type and without a report part",
                            w->report_path);
    return MD_OK;   /* disposition-notification (read receipts), TLS reports ...: not bounces */
}

/* -------------------------------------------------------------- describe */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t t)
{
    if (t == 0)
        return json_null();
    char buf[32];
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL)
        return json_null();
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

void md_bounce_describe(const md_bounce *b, md_report *rep)
{
    md_report_set(rep, "kind", json_string(md_bounce_kind_name(b->kind)));
    md_report_set(rep, "standard", json_boolean(b->standard));
    md_report_set(rep, "format", str_or_null(b->format));
    md_report_set(rep, "message_id", str_or_null(b->message_id));
    md_report_set(rep, "key", str_or_null(b->key));
    md_report_set(rep, "original_message_id", str_or_null(b->original_message_id));
    md_report_set(rep, "from", str_or_null(b->from));
    md_report_set(rep, "subject", str_or_null(b->subject));
    md_report_set(rep, "date", time_or_null(b->date));
    md_report_set(rep, "arrival_date", time_or_null(b->arrival_date));
    md_report_set(rep, "reporting_mta", str_or_null(b->reporting_mta));
    md_report_set(rep, "feedback_type", str_or_null(b->feedback_type));
    json_t *rs = json_array();
    for (size_t i = 0; i < b->nrcpt; i++) {
        const md_bounce_recipient *r = &b->rcpt[i];
        json_array_append_new(rs, json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
            "address", str_or_null(r->address), "field", str_or_null(r->field),
            "action", r->action ? json_string(md_bounce_action_name(r->action)) : json_null(),
            "status", r->status[0] ? json_string(r->status) : json_null(),
            "diagnostic", str_or_null(r->diagnostic), "remote_mta", str_or_null(r->remote_mta)));
    }
    md_report_set(rep, "recipients", rs);
}

/* ----------------------------------------------------------------- parse */

/* The original Message-ID from the bounce's own In-Reply-To or the last
 * References entry (some MTAs thread their bounces to our email). */
static char *msgid_from_threading(GMimeMessage *m)
{
    const char *irt = g_mime_object_get_header(GMIME_OBJECT(m), "In-Reply-To");
    const char *refs = g_mime_object_get_header(GMIME_OBJECT(m), "References");
    char *out = NULL;
    for (int k = 0; k < 2 && out == NULL; k++) {
        const char *v = k == 0 ? irt : refs;
        if (v == NULL)
            continue;
        GMimeReferences *r = g_mime_references_parse(NULL, v);
        int n = r ? g_mime_references_length(r) : 0;
        if (n > 0)
            out = msgid_clean(g_mime_references_get_message_id(r, k == 0 ? 0 : n - 1));
        if (r)
            g_mime_references_free(r);
    }
    return out;
}

static md_status parse_bounce(md_bounce *b, GMimeMessage *m, md_error *err)
{
    walk w = { 0 };
    md_status st = MD_OK;
    b->message_id = msgid_clean(g_mime_message_get_message_id(m));
    b->subject = clean_str(g_mime_message_get_subject(m));
    b->from = clean_str(g_mime_object_get_header(GMIME_OBJECT(m), "From"));
    GDateTime *d = g_mime_message_get_date(m);
    b->date = d ? (int64_t)g_date_time_to_unix(d) : 0;
    walk_tree(g_mime_message_get_mime_part(m), "", 0, &w);
    if (w.report)
        st = read_report(b, &w, err);
    if (st != MD_OK)
        return st;
    size_t copy = 0;
    GByteArray *text = NULL;
    if (b->kind == MD_BOUNCE_NONE && w.text) {
        text = part_bytes(w.text, BOUNCE_TEXT_SCAN_MAX, NULL);
        st = bounce_text_read(b, (const char *)text->data, text->len, b->from, b->subject, &copy, err);
    }
    if (st == MD_OK && b->kind != MD_BOUNCE_NONE) {
        if (w.attached)
            b->original_message_id = msgid_clean(g_mime_message_get_message_id(w.attached));
        if (b->original_message_id == NULL && w.headers)
            original_from_headers(w.headers, &b->original_message_id, NULL);
        if (b->kind == MD_BOUNCE_ARF && b->nrcpt == 0) {   /* no Original-Rcpt-To: the report's To */
            if (w.attached) {
                GMimeStream *ms = g_mime_stream_mem_new();
                g_mime_object_write_to_stream(GMIME_OBJECT(w.attached), NULL, ms);
                GByteArray *hb = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
                GMimeMessage *copy_m = parse_message((const char *)hb->data, hb->len);
                g_object_unref(ms);
                if (copy_m) {
                    InternetAddressList *to = g_mime_message_get_to(copy_m);
                    int n = to ? internet_address_list_length(to) : 0;
                    for (int i = 0; i < n; i++) {
                        InternetAddress *ia = internet_address_list_get_address(to, i);
                        if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
                            continue;
                        char *addr = clean_str(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
                        md_bounce_recipient *r = addr ? bounce_add_rcpt(b) : NULL;
                        if (r == NULL) {
                            free(addr);
                            continue;
                        }
                        r->address = addr;
                        r->field = md_xstrdup("To");
                    }
                    g_object_unref(copy_m);
                }
            } else if (w.headers) {
                original_from_headers(w.headers, &b->original_message_id, b);
            }
        }
        if (b->original_message_id == NULL && text && copy < text->len) {
            size_t o = copy;
            while (o < text->len && (text->data[o] == '\n' || text->data[o] == '\r' || text->data[o] == ' '))
                o++;
            GByteArray *cb = g_byte_array_new();
            g_byte_array_append(cb, text->data + o, (guint)(text->len - o));
            g_byte_array_append(cb, (const guint8 *)"\n\n", 2);
            GMimeMessage *cm = parse_message((const char *)cb->data, cb->len);
            if (cm) {
                b->original_message_id = msgid_clean(g_mime_message_get_message_id(cm));
                g_object_unref(cm);
            }
            g_byte_array_unref(cb);
        }
        if (b->original_message_id == NULL)
            b->original_message_id = msgid_from_threading(m);
    }
    if (text)
        g_byte_array_unref(text);
    return st;
}

char *md_bounce_message_id(const char *data, size_t len)
{
    if (data == NULL || len > MD_BOUNCE_MAX_SIZE)
        return NULL;
    pthread_once(&gmime_once, gmime_start);
    GMimeMessage *m = parse_message(data, len);
    if (m == NULL)
        return NULL;
    char *id = msgid_clean(g_mime_message_get_message_id(m));
    g_object_unref(m);
    return id;
}

/* Whether the parser found any header field (GMime files the Content-*
 * fields under the message's MIME part). */
static int has_fields(GMimeMessage *m)
{
    GMimeObject *body = g_mime_message_get_mime_part(m);
    GMimeHeaderList *h = g_mime_object_get_header_list(GMIME_OBJECT(m));
    GMimeHeaderList *bh = body ? g_mime_object_get_header_list(body) : NULL;
    return (h && g_mime_header_list_get_count(h) > 0) || (bh && g_mime_header_list_get_count(bh) > 0);
}

md_status md_bounce_parse(const char *data, size_t len, md_bounce **out, md_error *err)
{
    *out = NULL;
    if (len > MD_BOUNCE_MAX_SIZE)
        return md_error_set(err, MD_CONFIG, "bounce.parse", "the message has %zu bytes, more than %u",
                            len, MD_BOUNCE_MAX_SIZE);
    pthread_once(&gmime_once, gmime_start);
    GMimeMessage *m = parse_message(data ? data : "", data ? len : 0);
    if (m == NULL || !has_fields(m)) {
        if (m)
            g_object_unref(m);
        return md_error_set(err, MD_PROTOCOL, "bounce.parse", "not an email message (no header fields)");
    }
    md_bounce *b = md_xcalloc(1, sizeof *b);
    md_status st = parse_bounce(b, m, err);
    g_object_unref(m);
    if (b->message_id) {
        b->key = md_xstrdup(b->message_id);
    } else {
        gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
        b->key = md_xasprintf("sha256:%s", hex);
        g_free(hex);
    }
    if (st != MD_OK) {
        md_bounce_free(b);
        return st;
    }
    if (b->kind == MD_BOUNCE_NONE) {
        for (size_t i = 0; i < b->nrcpt; i++) {
            free(b->rcpt[i].address);
            free(b->rcpt[i].field);
            free(b->rcpt[i].diagnostic);
            free(b->rcpt[i].remote_mta);
        }
        b->nrcpt = 0;
    }
    *out = b;
    return MD_OK;
}
