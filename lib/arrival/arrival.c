/* lib/arrival: the wait for a message in a mailbox over lib/imap, and its
 * report (arrival.h says how and why). */
#include "config.h"
#include "arrival.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "imap/imap.h"

#define CANDIDATES_MAX 8     /* messages fetched per folder and look */

typedef struct watch {
    char *name;
    int junk;
    uint32_t base;           /* the first UID that can be new; 0: search them all */
    uint32_t checked;        /* every UID below this was searched; 0: not known */
    uint32_t uidvalidity;
} watch;

struct md_arrival {
    md_imap *imap;
    char *url;
    unsigned timeout_ms;
    int delete_found;
    const char *const *authserv_ids;
    watch *w;
    size_t nw;
};

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (ms > 0 && nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* Folder names as IMAP compares them: INBOX in any case is INBOX. */
static int same_folder(const char *a, const char *b)
{
    if (strcasecmp(a, "INBOX") == 0)
        return strcasecmp(b, "INBOX") == 0;
    return strcmp(a, b) == 0;
}

const char *md_arrival_outcome_name(md_arrival_outcome o)
{
    switch (o) {
    case MD_ARRIVAL_FOUND: return "found";
    case MD_ARRIVAL_NOT_FOUND: return "not_found";
    case MD_ARRIVAL_MAILBOX_ERROR: return "mailbox_error";
    case MD_ARRIVAL_NOT_AWAITED: return "not_awaited";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ open */

static void add_watch(md_arrival *a, const char *name, int junk, uint32_t base, uint32_t validity)
{
    a->w = md_xrealloc(a->w, (a->nw + 1) * sizeof *a->w);
    a->w[a->nw++] = (watch){ md_xstrdup(name), junk, base, base, validity };
}

md_status md_arrival_open(const md_arrival_options *o, md_arrival **out, md_error *err)
{
    *out = NULL;
    if (o->timeout_ms > MD_ARRIVAL_TIMEOUT_MAX_MS)
        return md_error_set(err, MD_CONFIG, "arrival", "a wait of more than %u s", MD_ARRIVAL_TIMEOUT_MAX_MS / 1000);
    md_arrival *a = md_xcalloc(1, sizeof *a);
    a->timeout_ms = o->timeout_ms ? o->timeout_ms : MD_ARRIVAL_TIMEOUT_DEFAULT_MS;
    a->delete_found = o->delete_found;
    a->authserv_ids = o->authserv_ids;
    a->url = md_sanitize_dup(o->url ? o->url : "", o->url ? strlen(o->url) : 0);
    md_imap_options io = {
        .url = o->url, .password = o->password, .ca_file = o->ca_file, .insecure = o->insecure,
        .timeout_ms = a->timeout_ms < MD_IMAP_TIMEOUT_DEFAULT_MS ? a->timeout_ms : MD_IMAP_TIMEOUT_DEFAULT_MS,
        .deadline_ms = a->timeout_ms,
    };
    md_imap_folder_list l = { 0 };
    md_status st = md_imap_open(&io, &a->imap, err);
    if (st == MD_OK)
        st = md_imap_list(a->imap, &l, err);
    if (st != MD_OK)
        goto fail;
    const char *target = md_imap_folder(a->imap);
    md_imap_folder_info self = { (char *)target, 0 };
    for (size_t i = 0; i < l.n; i++)
        if (same_folder(l.v[i].name, target))
            self.flags = l.v[i].flags;
    uint32_t validity, next;
    md_imap_folder_uids(a->imap, &validity, &next);
    add_watch(a, target, md_imap_folder_is_junk(&self), next, validity);
    for (size_t i = 0; i < l.n; i++) {
        if (!md_imap_folder_is_junk(&l.v[i]) || same_folder(l.v[i].name, target))
            continue;
        md_imap_folder_status fs;
        if ((st = md_imap_status(a->imap, l.v[i].name, &fs, err)) != MD_OK)
            goto fail;
        add_watch(a, l.v[i].name, 1, fs.uidnext, fs.uidvalidity);
    }
    md_imap_folder_list_clear(&l);
    md_imap_set_deadline(a->imap, 0);   /* idle until the send is done */
    *out = a;
    return MD_OK;
fail:
    md_imap_folder_list_clear(&l);
    md_arrival_free(a);
    return st;
}

void md_arrival_free(md_arrival *a)
{
    if (a == NULL)
        return;
    md_imap_free(a->imap);
    for (size_t i = 0; i < a->nw; i++)
        free(a->w[i].name);
    free(a->w);
    free(a->url);
    free(a);
}

void md_arrival_set_timeout(md_arrival *a, unsigned timeout_ms)
{
    if (timeout_ms == 0)
        timeout_ms = 1;
    a->timeout_ms = timeout_ms < MD_ARRIVAL_TIMEOUT_MAX_MS ? timeout_ms : MD_ARRIVAL_TIMEOUT_MAX_MS;
}

/* ------------------------------------------------------------------ wait */

static void set_error(md_arrival_result *out, const md_error *e);

static void result_init(const md_arrival *a, md_arrival_result *out)
{
    memset(out, 0, sizeof *out);
    out->latency_ms = -1;
    if (a == NULL)
        return;
    out->mailbox = md_xstrdup(a->url);
    out->timeout_ms = a->timeout_ms;
    out->delete_asked = a->delete_found;
    out->folders = md_xcalloc(a->nw ? a->nw : 1, sizeof *out->folders);
    for (size_t i = 0; i < a->nw; i++)
        out->folders[out->nfolders++] = md_sanitize_dup(a->w[i].name, strlen(a->w[i].name));
    out->tls = md_imap_tls(a->imap);
    snprintf(out->tls_version, sizeof out->tls_version, "%s", md_imap_tls_version(a->imap));
}

/* The candidates of one folder's search: the first whose Message-ID is
 * exactly ours.  1 found, 0 not, -1 error. */
static int check_candidates(md_arrival *a, const watch *w, const md_imap_uids *u, const md_arrival_sent *sent,
                            md_arrival_result *out, md_error *err)
{
    for (size_t i = 0; i < u->n && i < CANDIDATES_MAX; i++) {
        char *data = NULL;
        size_t len = 0;
        md_imap_info info;
        md_status st = md_imap_fetch(a->imap, u->v[i], &data, &len, &info, err);
        if (st == MD_NOTFOUND)
            continue;   /* expunged meanwhile */
        if (st != MD_OK)
            return -1;
        md_arrival_auth auth;
        st = md_arrival_auth_read(data, len, sent->data, sent->len, a->authserv_ids, &auth, NULL);
        free(data);
        if (st != MD_OK) {   /* another message that mentions our Message-ID */
            md_arrival_auth_clear(&auth);
            continue;
        }
        out->auth = auth;
        out->folder = md_sanitize_dup(w->name, strlen(w->name));
        out->junk = w->junk;
        out->uid = info.uid;
        out->internal_date = info.internal_date;
        return 1;
    }
    return 0;
}

/* One look at every folder watched: 1 found, 0 not yet, -1 error. */
static int look(md_arrival *a, const md_arrival_sent *sent, md_arrival_result *out, md_error *err)
{
    for (size_t i = 0; i < a->nw; i++) {
        watch *w = &a->w[i];
        uint32_t now_next = 0;
        if (same_folder(md_imap_folder(a->imap), w->name)) {
            if (md_imap_noop(a->imap, err) != MD_OK)
                return -1;
        } else {
            md_imap_folder_status fs;
            if (md_imap_status(a->imap, w->name, &fs, err) != MD_OK)
                return -1;
            if (fs.uidvalidity != w->uidvalidity) {   /* renumbered: every UID is new */
                w->base = w->checked = 0;
                w->uidvalidity = fs.uidvalidity;
            }
            if (w->checked && fs.uidnext <= w->checked)
                continue;   /* nothing new there */
            if (md_imap_select(a->imap, w->name, err) != MD_OK)
                return -1;
            now_next = fs.uidnext;
        }
        md_imap_uids u;
        if (md_imap_search_header_from(a->imap, w->base, "Message-ID", sent->message_id, &u, err) != MD_OK)
            return -1;
        int r = check_candidates(a, w, &u, sent, out, err);
        md_imap_uids_clear(&u);
        if (r != 0)
            return r;
        if (now_next)
            w->checked = now_next;
    }
    return 0;
}

static int printable_id(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++, n++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || n >= 250)
            return 0;
    return s != NULL && n > 0;
}

void md_arrival_latency(int64_t internal_date, int64_t final_reply_ms, int64_t found_ms, int64_t *latency_ms,
                        int64_t *clock_skew_ms)
{
    *latency_ms = -1;
    *clock_skew_ms = 0;
    if (final_reply_ms <= 0 || internal_date <= 0)
        return;
    int64_t raw = internal_date * 1000 - final_reply_ms;
    int64_t seen = found_ms - final_reply_ms;
    *latency_ms = raw < 0 ? 0 : raw;
    if (raw < -1000)   /* beyond the second INTERNALDATE drops */
        *clock_skew_ms = -raw - 1000;
    if (found_ms > 0 && seen >= 0 && raw > seen) {
        *latency_ms = seen;
        *clock_skew_ms = -(raw - seen);
    }
}

md_status md_arrival_wait(md_arrival *a, const md_arrival_sent *sent, md_arrival_result *out, md_error *err)
{
    result_init(a, out);
    snprintf(out->accepted_by, sizeof out->accepted_by, "%s", sent->accepted_by ? sent->accepted_by : "");
    snprintf(out->queue_id, sizeof out->queue_id, "%s", sent->queue_id ? sent->queue_id : "");
    md_sanitize(out->accepted_by, sizeof out->accepted_by, out->accepted_by, strlen(out->accepted_by));
    md_sanitize(out->queue_id, sizeof out->queue_id, out->queue_id, strlen(out->queue_id));
    if (!printable_id(sent->message_id) || sent->data == NULL)
        return md_error_set(err, MD_CONFIG, "arrival", "the message sent has no usable Message-ID");
    int64_t start = md_now_ms(), deadline = start + a->timeout_ms, found_wall = 0;
    int64_t interval = MD_ARRIVAL_POLL_FIRST_MS;
    md_imap_set_deadline(a->imap, a->timeout_ms + MD_ARRIVAL_GRACE_MS);
    for (;;) {
        md_error e = { 0 };
        int r = look(a, sent, out, &e);
        out->polls++;
        if (r < 0) {
            set_error(out, &e);
            break;
        }
        if (r > 0) {
            out->outcome = MD_ARRIVAL_FOUND;
            found_wall = wall_ms();
            break;
        }
        int64_t now = md_now_ms();
        if (now >= deadline) {
            out->outcome = MD_ARRIVAL_NOT_FOUND;
            snprintf(out->reason, sizeof out->reason, "not in %s%s within %g s", out->folders[0],
                     a->nw > 1 ? " or a Junk folder" : "", a->timeout_ms / 1000.0);
            break;
        }
        sleep_ms(interval < deadline - now ? interval : deadline - now);
        interval = interval * 2 < MD_ARRIVAL_POLL_MAX_MS ? interval * 2 : MD_ARRIVAL_POLL_MAX_MS;
    }
    out->elapsed_ms = md_now_ms() - start;
    if (out->outcome == MD_ARRIVAL_FOUND) {
        md_arrival_latency(out->internal_date, sent->final_reply_ms, found_wall, &out->latency_ms,
                           &out->clock_skew_ms);
        if (a->delete_found) {
            md_status st = md_imap_uidplus(a->imap) ? md_imap_delete(a->imap, &out->uid, 1, &out->delete_error)
                                                    : md_imap_flag_deleted(a->imap, &out->uid, 1, &out->delete_error);
            if (st == MD_OK)
                out->deleted = md_imap_uidplus(a->imap) ? 1 : 2;
        }
    }
    md_imap_set_deadline(a->imap, 0);
    return MD_OK;
}

void md_arrival_not_awaited(const md_arrival *a, const char *why, md_arrival_result *out)
{
    result_init(a, out);
    out->outcome = MD_ARRIVAL_NOT_AWAITED;
    snprintf(out->reason, sizeof out->reason, "the send was %s: nothing to wait for", why ? why : "not accepted");
    md_sanitize(out->reason, sizeof out->reason, out->reason, strlen(out->reason));
}

/* The error of a failed mailbox, its words sanitized: lib/imap's quote the
 * user name of the URL, percent-decoded. */
static void set_error(md_arrival_result *out, const md_error *e)
{
    out->outcome = MD_ARRIVAL_MAILBOX_ERROR;
    if (e)
        out->error = *e;
    md_sanitize_text(out->error.text, sizeof out->error.text, out->error.text, strlen(out->error.text), 0);
    md_sanitize_text(out->error.peer, sizeof out->error.peer, out->error.peer, strlen(out->error.peer), 0);
    md_sanitize(out->error.stage, sizeof out->error.stage, out->error.stage, strlen(out->error.stage));
    snprintf(out->reason, sizeof out->reason, "the mailbox could not be read: %s", out->error.text);
}

void md_arrival_open_failed(const char *url, const md_error *err, md_arrival_result *out)
{
    result_init(NULL, out);
    out->mailbox = md_sanitize_dup(url ? url : "", url ? strlen(url) : 0);
    set_error(out, err);
}

void md_arrival_result_clear(md_arrival_result *r)
{
    if (r == NULL)
        return;
    free(r->mailbox);
    for (size_t i = 0; i < r->nfolders; i++)
        free(r->folders[i]);
    free(r->folders);
    free(r->folder);
    md_arrival_auth_clear(&r->auth);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- report */

static void auth_words(const md_arrival_auth *au, char *buf, size_t size)
{
    snprintf(buf, size, "spf=%s dkim=%s dmarc=%s", au->spf[0] ? au->spf : "(not said)",
             au->dkim[0] ? au->dkim : "(not said)", au->dmarc[0] ? au->dmarc : "(not said)");
}

static int auth_failed(const md_arrival_auth *au)
{
    const char *v[3] = { au->spf, au->dkim, au->dmarc };
    for (int i = 0; i < 3; i++)
        if (v[i][0] && strcmp(v[i], "pass") != 0)
            return 1;
    return 0;
}

static void folders_text(const md_arrival_result *r, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->nfolders && o + 1 < size; i++) {
        int n = snprintf(buf + o, size - o, "%s'%s'", i ? (i + 1 == r->nfolders ? " or " : ", ") : "", r->folders[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    if (o >= size)
        buf[size - 1] = '\0';
}

void md_arrival_report(const md_arrival_result *r, md_report *rep)
{
    char where[400], words[200], lat[160];
    folders_text(r, where, sizeof where);
    if (r->latency_ms >= 1000)
        snprintf(lat, sizeof lat, "%lld to %lld s after the server's final reply (INTERNALDATE counts whole "
                 "seconds)", (long long)r->latency_ms / 1000, (long long)r->latency_ms / 1000 + 1);
    else if (r->latency_ms >= 0)
        snprintf(lat, sizeof lat, "within a second of the server's final reply (INTERNALDATE counts whole seconds)");
    else
        snprintf(lat, sizeof lat, "after %lld ms of waiting", (long long)r->elapsed_ms);
    md_finding *f;
    switch (r->outcome) {
    case MD_ARRIVAL_FOUND:
        f = md_report_add(rep, r->junk ? "delivery.junk" : "delivery.found", MD_SEV_DEFAULT,
                          r->junk ? "arrived in the Junk folder '%s', %s" : "arrived in '%s', %s",
                          r->folder, lat);
        md_finding_add_evidence(f, "%s UID %u, found by look %u after %lld ms", r->mailbox, r->uid, r->polls,
                                (long long)r->elapsed_ms);
        md_report_add_detail(rep, "arrival: in %s%s, found by look %u after %lld ms", r->folder,
                             r->junk ? " (a Junk folder)" : "", r->polls, (long long)r->elapsed_ms);
        break;
    case MD_ARRIVAL_NOT_FOUND:
        f = md_report_add(rep, "delivery.not_found", MD_SEV_DEFAULT, "%s%s%s%s the message, but it is not in %s "
                          "after %g s", r->accepted_by[0] ? r->accepted_by : "the server",
                          r->queue_id[0] ? " (queue id " : "", r->queue_id, r->queue_id[0] ? ") accepted" : " accepted",
                          where, r->timeout_ms / 1000.0);
        md_finding_add_evidence(f, "%s: %u looks in %lld ms", r->mailbox, r->polls, (long long)r->elapsed_ms);
        md_report_add_detail(rep, "arrival: not found in %lld ms (%u looks)", (long long)r->elapsed_ms, r->polls);
        break;
    case MD_ARRIVAL_MAILBOX_ERROR:
        f = md_report_add(rep, "delivery.mailbox_error", MD_SEV_DEFAULT, "the mailbox %s could not be read "
                          "(%s): whether the message arrived is unknown", r->mailbox, r->error.text);
        if (r->error.stage[0])
            md_finding_add_evidence(f, "stage %s", r->error.stage);
        if (r->error.peer[0])
            md_finding_add_evidence(f, "server: %s", r->error.peer);
        break;
    case MD_ARRIVAL_NOT_AWAITED:
        md_report_add(rep, "delivery.not_awaited", MD_SEV_DEFAULT, "%s", r->reason);
        break;
    }
    if (r->nfolders && !r->tls)   /* a session was open: the login went in clear */
        md_report_add(rep, "delivery.plaintext", MD_SEV_DEFAULT, "%s was read without TLS (the server offered no "
                      "STARTTLS): the password went in clear", r->mailbox);
    if (r->outcome != MD_ARRIVAL_FOUND)
        return;
    auth_words(&r->auth, words, sizeof words);
    if (auth_failed(&r->auth)) {
        f = md_report_add(rep, "delivery.auth_failed", MD_SEV_DEFAULT, "the receiver%s%s%s concluded %s",
                          r->auth.authserv_id[0] ? " (" : "", r->auth.authserv_id,
                          r->auth.authserv_id[0] ? ")" : "", words);
        for (size_t i = 0; i < r->auth.nauthres; i++)
            md_finding_add_evidence(f, "Authentication-Results: %s", r->auth.authres[i]);
        for (size_t i = 0; i < r->auth.nreceived_spf; i++)
            md_finding_add_evidence(f, "Received-SPF: %s", r->auth.received_spf[i]);
    }
    if (r->auth.nauthres || r->auth.nreceived_spf)
        md_report_add_detail(rep, "receiver%s%s: %s", r->auth.authserv_id[0] ? " " : "", r->auth.authserv_id, words);
    else
        md_report_add_detail(rep, "receiver: no Authentication-Results or Received-SPF of its own%s",
                             r->auth.ignored ? " (others ignored)" : "");
    if (r->clock_skew_ms > 0)
        md_report_add(rep, "delivery.clock_skew", MD_SEV_DEFAULT, "the mailbox server's clock is behind ours by at "
                      "least %lld ms (INTERNALDATE before our send): latency shown as 0", (long long)r->clock_skew_ms);
    else if (r->clock_skew_ms < 0)
        md_report_add(rep, "delivery.clock_skew", MD_SEV_DEFAULT, "the mailbox server's clock is ahead of ours by at "
                      "least %lld ms (INTERNALDATE after we found the message): latency shown as what we saw",
                      (long long)-r->clock_skew_ms);
    if (r->delete_asked && r->deleted == 2)
        md_report_add(rep, "delivery.delete_failed", MD_SEV_DEFAULT, "the message was only marked \\Deleted: "
                      "the server lacks UIDPLUS, and EXPUNGE would remove other messages marked \\Deleted too");
    else if (r->delete_asked && !r->deleted)
        md_report_add(rep, "delivery.delete_failed", MD_SEV_DEFAULT, "the message could not be deleted: %s",
                      r->delete_error.text);
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *strings(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

void md_arrival_describe(const md_arrival_result *r, md_report *rep)
{
    json_t *o = json_object();
    json_object_set_new(o, "mailbox", json_string(r->mailbox ? r->mailbox : ""));
    json_object_set_new(o, "folders", strings(r->folders, r->nfolders));
    json_object_set_new(o, "outcome", json_string(md_arrival_outcome_name(r->outcome)));
    json_object_set_new(o, "found", json_boolean(r->outcome == MD_ARRIVAL_FOUND));
    json_object_set_new(o, "folder", str_or_null(r->folder));
    if (r->outcome == MD_ARRIVAL_FOUND) {
        json_object_set_new(o, "junk", json_boolean(r->junk));
        json_object_set_new(o, "uid", json_integer(r->uid));
        if (r->internal_date > 0) {
            char buf[40];
            time_t t = (time_t)r->internal_date;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_object_set_new(o, "internal_date", json_string(buf));
        }
        json_object_set_new(o, "latency_ms", r->latency_ms >= 0 ? json_integer(r->latency_ms) : json_null());
        if (r->clock_skew_ms)
            json_object_set_new(o, "clock_skew_ms", json_integer(r->clock_skew_ms));
        json_t *au = json_object();
        if (r->auth.spf[0])
            json_object_set_new(au, "spf", json_string(r->auth.spf));
        if (r->auth.dkim[0])
            json_object_set_new(au, "dkim", json_string(r->auth.dkim));
        if (r->auth.dmarc[0])
            json_object_set_new(au, "dmarc", json_string(r->auth.dmarc));
        json_object_set_new(o, "auth", au);
        json_object_set_new(o, "authserv_id", str_or_null(r->auth.authserv_id));
        json_t *h = json_object();
        json_object_set_new(h, "authentication_results", strings(r->auth.authres, r->auth.nauthres));
        json_object_set_new(h, "received_spf", strings(r->auth.received_spf, r->auth.nreceived_spf));
        json_object_set_new(o, "headers", h);
        json_object_set_new(o, "ignored_headers", json_integer((json_int_t)r->auth.ignored));
        if (r->auth.unreadable)
            json_object_set_new(o, "unreadable_headers", json_integer((json_int_t)r->auth.unreadable));
        if (r->delete_asked)
            json_object_set_new(o, "deleted", json_boolean(r->deleted == 1));
    } else {
        json_object_set_new(o, "reason", json_string(r->reason));
    }
    if (r->outcome == MD_ARRIVAL_MAILBOX_ERROR) {
        json_t *e = json_object();
        json_object_set_new(e, "stage", json_string(r->error.stage));
        json_object_set_new(e, "text", json_string(r->error.text));
        json_object_set_new(e, "peer", str_or_null(r->error.peer));
        json_object_set_new(o, "error", e);
    }
    json_object_set_new(o, "polls", json_integer(r->polls));
    json_object_set_new(o, "elapsed_ms", json_integer(r->elapsed_ms));
    if (r->timeout_ms)
        json_object_set_new(o, "timeout_ms", json_integer(r->timeout_ms));
    if (r->nfolders)
        json_object_set_new(o, "tls", str_or_null(r->tls ? (r->tls_version[0] ? r->tls_version : "yes") : NULL));
    md_report_set(rep, "arrival", o);
}
