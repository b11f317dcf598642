/* lib/rdns: forward-confirmed reverse DNS of one IP, and its HELO name. */
#include "config.h"
#include "rdns.h"
#include "dns/name.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- addresses and reverse names ------------------------------------------ */

md_status md_rdns_addr_parse(const char *text, md_dns_addr *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    if (text != NULL && inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = AF_INET;
    } else if (text != NULL && inet_pton(AF_INET6, text, out->bytes) == 1) {
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        out->family = AF_INET6;
        if (memcmp(out->bytes, mapped, sizeof mapped) == 0) {
            memmove(out->bytes, out->bytes + 12, 4);
            memset(out->bytes + 4, 0, 12);
            out->family = AF_INET;
        }
    } else {
        return md_error_set(err, MD_CONFIG, "rdns.ip", "'%.64s' is not an IPv4 or IPv6 address",
                            text ? text : "");
    }
    inet_ntop(out->family, out->bytes, out->text, sizeof out->text);
    return MD_OK;
}

int md_rdns_reverse_name(const md_dns_addr *ip, const char *suffix, char *out, size_t outsize)
{
    static const char hex[] = "0123456789abcdef";
    char buf[80];
    size_t o = 0;

    if (outsize == 0)
        return -1;
    out[0] = '\0';
    if (ip->family == AF_INET) {
        for (int i = 3; i >= 0; i--)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%u.", ip->bytes[i]);
        if (suffix == NULL)
            suffix = "in-addr.arpa";
    } else if (ip->family == AF_INET6) {
        for (int i = 15; i >= 0; i--) {
            buf[o++] = hex[ip->bytes[i] & 0x0f];
            buf[o++] = '.';
            buf[o++] = hex[ip->bytes[i] >> 4];
            buf[o++] = '.';
        }
        buf[o] = '\0';
        if (suffix == NULL)
            suffix = "ip6.arpa";
    } else {
        return -1;
    }
    size_t sl = strlen(suffix);
    if (sl > 0 && suffix[sl - 1] == '.')
        sl--;
    if (sl == 0 || o + sl > MD_DNS_NAME_MAX || o + sl + 1 > outsize)
        return -1;
    memcpy(out, buf, o);
    memcpy(out + o, suffix, sl);
    out[o + sl] = '\0';
    return 0;
}

/* --- the result ------------------------------------------------------------ */

const char *md_rdns_state_name(md_rdns_state s)
{
    static const char *const names[] = { "confirmed", "missing", "mismatch", "unknown" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *md_rdns_helo_state_name(md_rdns_helo_state s)
{
    static const char *const names[] = { "none", "ok", "resolves", "mismatch", "unknown" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static void forward_clear(md_rdns_forward *f)
{
    free(f->name);
    for (size_t i = 0; i < f->naddresses; i++)
        free(f->addresses[i]);
    free(f->addresses);
    memset(f, 0, sizeof *f);
}

void md_rdns_result_free(md_rdns_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nnames; i++)
        forward_clear(&r->names[i]);
    free(r->names);
    forward_clear(&r->helo);
    free(r->ptr_qname);
    free(r);
}

/* --- judging --------------------------------------------------------------- */

void md_rdns_judge(md_rdns_result *r)
{
    int failed = 0;

    r->confirmed = NULL;
    for (size_t i = 0; i < r->nnames; i++) {
        if (r->names[i].matches && r->confirmed == NULL)
            r->confirmed = r->names[i].name;
        if (r->names[i].asked && md_dns_outcome_is_temporary(r->names[i].outcome))
            failed = 1;
    }
    if (md_dns_outcome_is_temporary(r->ptr))
        r->state = MD_RDNS_UNKNOWN;
    else if (r->ptr != MD_DNS_ANSWER || r->nnames == 0)
        r->state = MD_RDNS_MISSING;
    else if (r->confirmed != NULL)
        r->state = MD_RDNS_CONFIRMED;   /* one confirmed name is enough, whatever failed */
    else if (failed)
        r->state = MD_RDNS_UNKNOWN;     /* the failed lookup might have confirmed it */
    else
        r->state = MD_RDNS_MISMATCH;

    if (r->helo.name == NULL) {
        r->helo_state = MD_RDNS_HELO_NONE;
    } else if (md_dns_outcome_is_temporary(r->helo.outcome)) {
        r->helo_state = MD_RDNS_HELO_UNKNOWN;
    } else if (!r->helo.matches) {
        r->helo_state = MD_RDNS_HELO_MISMATCH;
    } else if (r->state == MD_RDNS_CONFIRMED) {
        r->helo_state = MD_RDNS_HELO_MISMATCH;
        for (size_t i = 0; i < r->nnames; i++)
            if (r->names[i].matches && strcasecmp(r->names[i].name, r->helo.name) == 0)
                r->helo_state = MD_RDNS_HELO_OK;
    } else if (r->state == MD_RDNS_UNKNOWN) {
        r->helo_state = MD_RDNS_HELO_UNKNOWN;
    } else {
        r->helo_state = MD_RDNS_HELO_RESOLVES;
    }
}

/* --- reporting ------------------------------------------------------------- */

static const char *rr_type(const md_rdns_result *r)
{
    return r->ip.family == AF_INET ? "A" : "AAAA";
}

static const char *why_failed(md_dns_outcome o, const char *detail)
{
    return detail[0] ? detail : md_dns_outcome_name(o);
}

/* "a.test, b.test" of the PTR names that were asked, into buf. */
static const char *asked_names(const md_rdns_result *r, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->nnames && r->names[i].asked && o + 1 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", r->names[i].name);
    return buf;
}

/* "192.0.2.10 192.0.2.11" for an answer, else the outcome ("nxdomain"). */
static const char *forward_text(const md_rdns_forward *fw, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    if (fw->outcome != MD_DNS_ANSWER) {
        snprintf(buf, size, "%s", md_dns_outcome_name(fw->outcome));
        return buf;
    }
    for (size_t i = 0; i < fw->naddresses && o + 1 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? " " : "", fw->addresses[i]);
    if (fw->nanswers > fw->naddresses && o + 1 < size)
        snprintf(buf + o, size - o, " ...");
    return buf;
}

static void forward_evidence(md_finding *f, const md_rdns_forward *fw, const char *type)
{
    char addrs[512];
    md_finding_add_evidence(f, "%s %s: %s", fw->name, type, forward_text(fw, addrs, sizeof addrs));
}

void md_rdns_result_report(const md_rdns_result *r, md_report *rep)
{
    const char *ip = r->ip.text;
    const char *type = rr_type(r);
    char names[1024];
    md_finding *f;

    switch (r->state) {
    case MD_RDNS_CONFIRMED:
        md_report_add_detail(rep, "%s: reverse DNS %s, forward-confirmed", ip, r->confirmed);
        break;
    case MD_RDNS_MISSING:
        md_report_add_detail(rep, "%s: no reverse DNS (%s %s)", ip, r->ptr_qname,
                             md_dns_outcome_name(r->ptr));
        f = md_report_add(rep, "rdns.missing", MD_SEV_DEFAULT,
                          "%s has no reverse DNS (PTR %s: %s): many receivers refuse mail "
                          "from such an address%s%s%s", ip, r->ptr_qname,
                          md_dns_outcome_name(r->ptr),
                          r->helo_state == MD_RDNS_HELO_RESOLVES ? "; publish a PTR record naming "
                                                                 : "",
                          r->helo_state == MD_RDNS_HELO_RESOLVES ? r->helo.name : "",
                          r->helo_state == MD_RDNS_HELO_RESOLVES ? ", the HELO name" : "");
        md_finding_add_evidence(f, "%s PTR: %s", r->ptr_qname, md_dns_outcome_name(r->ptr));
        break;
    case MD_RDNS_MISMATCH: {
        size_t asked = 0;
        for (size_t i = 0; i < r->nnames; i++)
            asked += r->names[i].asked;
        md_report_add_detail(rep, "%s: reverse DNS %s does not resolve back to it", ip,
                             asked_names(r, names, sizeof names));
        f = md_report_add(rep, "rdns.mismatch", MD_SEV_DEFAULT,
                          "the reverse DNS of %s is not forward-confirmed: no %s record of "
                          "its PTR name%s %s points back to it%s%s%s%s", ip, type,
                          asked == 1 ? "" : "s", asked_names(r, names, sizeof names),
                          r->nnames > asked ? " (only the first names were checked, as "
                                              "receivers do; there are more)" : "",
                          r->helo_state == MD_RDNS_HELO_RESOLVES ? "; the HELO name " : "",
                          r->helo_state == MD_RDNS_HELO_RESOLVES ? r->helo.name : "",
                          r->helo_state == MD_RDNS_HELO_RESOLVES
                              ? " resolves to it: a PTR naming it would be confirmed" : "");
        md_finding_add_evidence(f, "%s PTR: %zu name(s), the first %zu resolved", r->ptr_qname,
                                r->nnames, asked);
        for (size_t i = 0; i < r->nnames; i++)
            if (r->names[i].asked)
                forward_evidence(f, &r->names[i], type);
        break;
    }
    case MD_RDNS_UNKNOWN:
        if (md_dns_outcome_is_temporary(r->ptr)) {
            md_report_add_detail(rep, "%s: reverse DNS unknown (%s PTR %s)", ip, r->ptr_qname,
                                 md_dns_outcome_name(r->ptr));
            f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                              "the PTR lookup for %s failed (%s): whether it has reverse DNS "
                              "is unknown", ip, why_failed(r->ptr, r->ptr_detail));
            md_finding_add_evidence(f, "%s PTR: %s", r->ptr_qname, md_dns_outcome_name(r->ptr));
        } else {
            md_report_add_detail(rep, "%s: reverse DNS %s, forward confirmation unknown", ip,
                                 asked_names(r, names, sizeof names));
            f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                              "the %s lookup of a PTR name of %s failed: whether its reverse "
                              "DNS (%s) is forward-confirmed is unknown", type, ip,
                              asked_names(r, names, sizeof names));
            for (size_t i = 0; i < r->nnames; i++)
                if (r->names[i].asked)
                    forward_evidence(f, &r->names[i], type);
        }
        break;
    }

    switch (r->helo_state) {
    case MD_RDNS_HELO_NONE:
    case MD_RDNS_HELO_RESOLVES:   /* the rdns finding above names it */
        break;
    case MD_RDNS_HELO_OK:
        md_report_add_detail(rep, "%s: HELO %s matches", ip, r->helo.name);
        break;
    case MD_RDNS_HELO_MISMATCH:
        if (!r->helo.matches) {
            md_report_add_detail(rep, "%s: HELO %s does not resolve to it", ip, r->helo.name);
            f = md_report_add(rep, "helo.mismatch", MD_SEV_DEFAULT,
                              "the HELO name %s does not resolve to %s (%s: %s)", r->helo.name,
                              ip, type, forward_text(&r->helo, names, sizeof names));
        } else {
            md_report_add_detail(rep, "%s: HELO %s is not its forward-confirmed name %s", ip,
                                 r->helo.name, r->confirmed);
            f = md_report_add(rep, "helo.mismatch", MD_SEV_DEFAULT,
                              "the HELO name %s is not the forward-confirmed reverse name %s "
                              "of %s", r->helo.name, r->confirmed, ip);
        }
        forward_evidence(f, &r->helo, type);
        break;
    case MD_RDNS_HELO_UNKNOWN:
        /* An unknown reverse DNS is reported above; only a failed HELO lookup
         * needs its own finding. */
        if (md_dns_outcome_is_temporary(r->helo.outcome)) {
            md_report_add_detail(rep, "%s: HELO %s unknown (%s %s)", ip, r->helo.name, type,
                                 md_dns_outcome_name(r->helo.outcome));
            f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                              "the %s lookup of the HELO name %s failed (%s): whether it "
                              "resolves to %s is unknown", type, r->helo.name,
                              why_failed(r->helo.outcome, r->helo.detail), ip);
            forward_evidence(f, &r->helo, type);
        }
        break;
    }
}

static json_t *strings_json(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

static json_t *forward_json(const md_rdns_forward *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(f->name));
    if (!f->asked) {
        json_object_set_new(o, "resolved", json_false());
        return o;
    }
    json_object_set_new(o, "lookup", json_string(md_dns_outcome_name(f->outcome)));
    json_object_set_new(o, "addresses", strings_json(f->addresses, f->naddresses));
    json_object_set_new(o, "matches", json_boolean(f->matches));
    return o;
}

void md_rdns_describe(const md_rdns_result *r, md_report *rep)
{
    md_report_set(rep, "ip", json_string(r->ip.text));
    md_report_set(rep, "ptr_query", json_string(r->ptr_qname));
    md_report_set(rep, "ptr", json_string(md_dns_outcome_name(r->ptr)));
    md_report_set(rep, "state", json_string(md_rdns_state_name(r->state)));
    json_t *names = json_array();
    for (size_t i = 0; i < r->nnames; i++)
        json_array_append_new(names, forward_json(&r->names[i]));
    md_report_set(rep, "names", names);
    md_report_set(rep, "confirmed_name", r->confirmed ? json_string(r->confirmed) : json_null());
    if (r->helo.name) {
        json_t *h = forward_json(&r->helo);
        json_object_set_new(h, "state", json_string(md_rdns_helo_state_name(r->helo_state)));
        md_report_set(rep, "helo", h);
    }
}

/* --- gathering ------------------------------------------------------------- */

typedef struct rdns_job {
    md_dns *dns;
    md_rdns_result *r;
    size_t pending;
    md_rdns_done_fn done;
    void *arg;
} rdns_job;

#define HELO_INDEX SIZE_MAX

typedef struct fwd_req {
    rdns_job *job;
    size_t index;            /* into r->names, or HELO_INDEX */
} fwd_req;

static void job_release(rdns_job *job)
{
    if (--job->pending > 0)
        return;
    md_rdns_result *r = job->r;
    md_rdns_done_fn done = job->done;
    void *arg = job->arg;
    free(job);
    md_rdns_judge(r);
    done(arg, r);
}

static void on_forward(void *arg, const md_dns_answer *a)
{
    fwd_req *req = arg;
    rdns_job *job = req->job;
    md_rdns_result *r = job->r;
    md_rdns_forward *f = req->index == HELO_INDEX ? &r->helo : &r->names[req->index];

    f->outcome = a->outcome;
    snprintf(f->detail, sizeof f->detail, "%s", a->detail);
    f->nanswers = a->n;
    size_t keep = a->n < MD_RDNS_ADDRS_MAX ? a->n : MD_RDNS_ADDRS_MAX;
    f->addresses = keep ? md_xcalloc(keep, sizeof *f->addresses) : NULL;
    for (size_t i = 0; i < a->n; i++) {
        const md_dns_addr *x = &a->addr[i];
        size_t len = x->family == AF_INET ? 4 : 16;
        if (x->family == r->ip.family && memcmp(x->bytes, r->ip.bytes, len) == 0)
            f->matches = 1;
        if (i < keep)
            f->addresses[f->naddresses++] = md_xstrdup(x->text);
    }
    free(req);
    job_release(job);
}

static void ask_forward(rdns_job *job, size_t index)
{
    md_rdns_result *r = job->r;
    md_rdns_forward *f = index == HELO_INDEX ? &r->helo : &r->names[index];
    fwd_req *req = md_xcalloc(1, sizeof *req);
    req->job = job;
    req->index = index;
    f->asked = 1;
    job->pending++;
    md_dns_query(job->dns, f->name, r->ip.family == AF_INET ? MD_DNS_A : MD_DNS_AAAA,
                 on_forward, req);
}

static int cmp_forward(const void *a, const void *b)
{
    return strcmp(((const md_rdns_forward *)a)->name, ((const md_rdns_forward *)b)->name);
}

static void on_ptr(void *arg, const md_dns_answer *a)
{
    rdns_job *job = arg;
    md_rdns_result *r = job->r;

    r->ptr = a->outcome;
    snprintf(r->ptr_detail, sizeof r->ptr_detail, "%s", a->detail);
    if (a->outcome == MD_DNS_ANSWER && a->n > 0) {
        r->names = md_xcalloc(a->n, sizeof *r->names);
        for (size_t i = 0; i < a->n; i++) {
            char clean[MD_DNS_NAME_MAX + 1];
            md_sanitize(clean, sizeof clean, a->names[i], strlen(a->names[i]));
            if (clean[0] != '\0')      /* a PTR to the root names nothing */
                r->names[r->nnames++].name = md_xstrdup(clean);
        }
        qsort(r->names, r->nnames, sizeof *r->names, cmp_forward);
        size_t o = 0;
        for (size_t i = 0; i < r->nnames; i++) {
            if (o > 0 && strcmp(r->names[o - 1].name, r->names[i].name) == 0)
                free(r->names[i].name);
            else
                r->names[o++] = r->names[i];
        }
        r->nnames = o;
        for (size_t i = 0; i < r->nnames && i < MD_RDNS_NAMES_MAX; i++)
            ask_forward(job, i);
    }
    job_release(job);
}

md_status md_rdns_start(md_dns *dns, const char *ip, const char *helo,
                        md_rdns_done_fn done, void *arg, md_error *err)
{
    md_dns_addr addr;
    char reverse[MD_RDNS_REVERSE_MAX];
    char helo_ascii[MD_DNS_NAME_MAX + 1];
    md_error nerr;

    if (md_rdns_addr_parse(ip, &addr, err) != MD_OK)
        return MD_CONFIG;
    if (helo != NULL && md_dns_name_normalize(helo, helo_ascii, sizeof helo_ascii, NULL, 0,
                                              &nerr) != MD_OK)
        return md_error_set(err, MD_CONFIG, "rdns.helo", "HELO name '%.64s': %s", helo,
                            nerr.text);
    md_rdns_reverse_name(&addr, NULL, reverse, sizeof reverse);   /* always fits */

    md_rdns_result *r = md_xcalloc(1, sizeof *r);
    r->ip = addr;
    r->ptr_qname = md_xstrdup(reverse);
    rdns_job *job = md_xcalloc(1, sizeof *job);
    job->dns = dns;
    job->r = r;
    job->done = done;
    job->arg = arg;
    job->pending = 1;
    md_dns_query(dns, reverse, MD_DNS_PTR, on_ptr, job);
    if (helo != NULL) {
        r->helo.name = md_xstrdup(helo_ascii);
        ask_forward(job, HELO_INDEX);
    }
    return MD_OK;
}

typedef struct sync_slot {
    int done;
    md_rdns_result *r;
} sync_slot;

static void sync_done(void *arg, md_rdns_result *r)
{
    sync_slot *s = arg;
    s->r = r;
    s->done = 1;
}

md_rdns_result *md_rdns_check(md_dns *dns, const char *ip, const char *helo, md_error *err)
{
    sync_slot s = { 0, NULL };
    if (md_rdns_start(dns, ip, helo, sync_done, &s, err) != MD_OK)
        return NULL;
    while (!s.done && md_dns_step(dns, -1) > 0)
        ;
    if (!s.done)   /* cannot happen: every query ends, and ends the check with it */
        md_error_set(err, MD_INTERNAL, "rdns", "internal: the check's queries were lost");
    return s.r;
}
