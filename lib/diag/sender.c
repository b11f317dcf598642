/* lib/diag sender: our sending setup, check by check (see diag.h): the
 * sender layer of a diagnosis and the DNS checks of maildiag-health. */
#include "config.h"
#include "diag.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "spf/spf.h"

/* _dmarc at the From domain and at its organizational domain, the selectors */
#define SENDER_TXT_MAX (2 + MD_DIAG_LIST_MAX)

static const char *const check_names[MD_DIAG_NCHECKS] = { "spf", "dkim", "dmarc", "dnsbl", "rdns" };

const char *md_diag_check_name(md_diag_check c)
{
    return (unsigned)c < MD_DIAG_NCHECKS ? check_names[c] : "unknown";
}

typedef struct txt_wait {
    char name[MD_DOMAIN_MAX + 32];
    md_diag_check check;
    md_dns_answer *answer;        /* owned copy, once it came */
    md_diag_sender *x;
} txt_wait;

typedef struct rdns_wait {
    md_diag_sender *x;
    const char *ip;
    md_rdns_result *r;            /* once it came */
} rdns_wait;

struct md_diag_sender {
    md_dns *dns;
    const md_diag_settings *set;
    unsigned checks;
    int64_t t0, deadline;
    char from_domain[MD_DOMAIN_MAX + 1];   /* MAIL FROM, and where our DKIM keys are */
    char hdr_domain[MD_DOMAIN_MAX + 1];    /* the From field's: whose DMARC applies */
    char org[MD_DOMAIN_MAX + 1];           /* hdr_domain's organizational domain */
    txt_wait txt[SENDER_TXT_MAX];
    size_t ntxt;
    int pending[MD_DIAG_NCHECKS];
    int64_t ready_ms[MD_DIAG_NCHECKS];
    int timed_out[MD_DIAG_NCHECKS];
    int cancelled;
    int spf_ran;
    md_dnsbl_result *dnsbl;
    int dnsbl_started;
    md_error dnsbl_err;
    rdns_wait rdns[MD_DIAG_LIST_MAX];
    size_t nrdns;
    md_error rdns_err;            /* an IP whose reverse DNS check could not start */
};

static int64_t remaining(const md_diag_sender *x)
{
    int64_t left = x->deadline - md_now_ms();
    return left > 0 ? left : 0;
}

static void settle(md_diag_sender *x, md_diag_check c)
{
    if (--x->pending[c] == 0)
        x->ready_ms[c] = md_now_ms();
}

static void domain_of(const char *addr, char *out, size_t size)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    snprintf(out, size, "%s", at ? at + 1 : "");
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

const char *md_diag_sender_missing(const md_diag_settings *s, md_diag_check c)
{
    if (s == NULL || (s->from == NULL && c != MD_DIAG_CHECK_DNSBL && c != MD_DIAG_CHECK_RDNS))
        return "[sender] from (or [mail] from)";
    switch (c) {
    case MD_DIAG_CHECK_SPF:
    case MD_DIAG_CHECK_RDNS:
        return s->nips ? NULL : "[sender] ips";
    case MD_DIAG_CHECK_DKIM:
        return s->nselectors ? NULL : "[sender] dkim_selectors";
    case MD_DIAG_CHECK_DMARC:
        return NULL;
    case MD_DIAG_CHECK_DNSBL:
        return !s->nips ? "[sender] ips" : !s->nzones ? "[dnsbl] zones" : NULL;
    default:
        return "a known check";
    }
}

/* --- gathering ------------------------------------------------------------------ */

static void txt_done(void *arg, const md_dns_answer *a)
{
    txt_wait *w = arg;
    w->answer = md_dns_answer_copy(a);
    settle(w->x, w->check);
}

static void txt_queue(md_diag_sender *x, md_diag_check c, const char *prefix, const char *domain)
{
    if (x->ntxt == SENDER_TXT_MAX)
        return;
    txt_wait *w = &x->txt[x->ntxt++];
    snprintf(w->name, sizeof w->name, "%s.%s", prefix, domain);
    w->check = c;
    w->x = x;
    x->pending[c]++;
    md_dns_query(x->dns, w->name, MD_DNS_TXT, txt_done, w);
}

static void dnsbl_done(void *arg, md_dnsbl_result *res)
{
    md_diag_sender *x = arg;
    x->dnsbl = res;
    settle(x, MD_DIAG_CHECK_DNSBL);
}

static void rdns_done(void *arg, md_rdns_result *res)
{
    rdns_wait *w = arg;
    w->r = res;
    settle(w->x, MD_DIAG_CHECK_RDNS);
}

md_diag_sender *md_diag_sender_start(md_dns *dns, const md_diag_settings *s, unsigned checks,
                                     int64_t deadline_ms)
{
    md_diag_sender *x = md_xcalloc(1, sizeof *x);
    x->dns = dns;
    x->set = s;
    x->t0 = md_now_ms();
    x->deadline = deadline_ms;
    /* SPF, DKIM and DMARC are about our domain: without an address, no domain */
    unsigned need_from = 1u << MD_DIAG_CHECK_SPF | 1u << MD_DIAG_CHECK_DKIM | 1u << MD_DIAG_CHECK_DMARC;
    x->checks = checks & MD_DIAG_CHECKS_ALL & (s->from ? ~0u : ~need_from);
    for (int c = 0; c < MD_DIAG_NCHECKS; c++)
        x->pending[c] = 1;   /* until start has queued all the check needs */
    domain_of(s->from, x->from_domain, sizeof x->from_domain);
    domain_of(s->mail_from ? s->mail_from : s->from, x->hdr_domain, sizeof x->hdr_domain);
    if (x->hdr_domain[0] && x->hdr_domain[0] != '[') {
        char *org = md_auth_org_domain(x->hdr_domain);
        snprintf(x->org, sizeof x->org, "%s", org);
        free(org);
    }
    if ((x->checks & (1u << MD_DIAG_CHECK_DMARC)) && x->org[0]) {
        txt_queue(x, MD_DIAG_CHECK_DMARC, "_dmarc", x->hdr_domain);
        if (strcmp(x->org, x->hdr_domain) != 0)
            txt_queue(x, MD_DIAG_CHECK_DMARC, "_dmarc", x->org);
    }
    if ((x->checks & (1u << MD_DIAG_CHECK_DKIM)) && x->from_domain[0] && x->from_domain[0] != '[')
        for (size_t i = 0; i < s->nselectors; i++) {
            char prefix[MD_DOMAIN_LABEL_MAX + 16];
            snprintf(prefix, sizeof prefix, "%.63s._domainkey", s->selectors[i]);
            txt_queue(x, MD_DIAG_CHECK_DKIM, prefix, x->from_domain);
        }
    if ((x->checks & (1u << MD_DIAG_CHECK_DNSBL)) && s->nips > 0 && s->nzones > 0) {
        md_dnsbl_sender snd[MD_DIAG_LIST_MAX];
        for (size_t i = 0; i < s->nips; i++)
            snd[i] = (md_dnsbl_sender){ s->ips[i], NULL };
        md_dnsbl_config dc = { .senders = snd, .nsenders = s->nips, .zones = s->zones,
                               .nzones = s->nzones, .no_rdns = 1 };
        if (md_dnsbl_start(dns, &dc, dnsbl_done, x, &x->dnsbl_err) == MD_OK) {
            x->dnsbl_started = 1;
            x->pending[MD_DIAG_CHECK_DNSBL]++;
        }
    }
    if (x->checks & (1u << MD_DIAG_CHECK_RDNS))
        for (size_t i = 0; i < s->nips; i++) {
            int seen = 0;
            for (size_t k = 0; k < x->nrdns; k++)
                seen |= strcmp(x->rdns[k].ip, s->ips[i]) == 0;
            if (seen)
                continue;
            rdns_wait *w = &x->rdns[x->nrdns];
            *w = (rdns_wait){ x, s->ips[i], NULL };
            md_error e = { 0 };
            if (md_rdns_start(dns, s->ips[i], s->helo, rdns_done, w, &e) != MD_OK) {
                x->rdns_err = e;
                continue;
            }
            x->nrdns++;
            x->pending[MD_DIAG_CHECK_RDNS]++;
        }
    for (int c = 0; c < MD_DIAG_NCHECKS; c++)
        if (c != MD_DIAG_CHECK_SPF)
            settle(x, (md_diag_check)c);   /* SPF settles when md_diag_sender_spf ends */
    return x;
}

int md_diag_sender_pending(const md_diag_sender *x)
{
    for (int c = 0; c < MD_DIAG_NCHECKS; c++)
        if (c != MD_DIAG_CHECK_SPF && x->pending[c] > 0)
            return 1;
    return 0;
}

int md_diag_sender_check_pending(const md_diag_sender *x, md_diag_check c)
{
    return (unsigned)c < MD_DIAG_NCHECKS && x->pending[c] > 0;
}

void md_diag_sender_expire(md_diag_sender *x)
{
    x->cancelled = 1;
    for (int c = 0; c < MD_DIAG_NCHECKS; c++)
        if (x->pending[c] > 0 && (x->checks & (1u << c)))
            x->timed_out[c] = 1;
}

int md_diag_sender_timed_out(const md_diag_sender *x, md_diag_check c)
{
    return (unsigned)c < MD_DIAG_NCHECKS && x->timed_out[c];
}

int64_t md_diag_sender_ready_ms(const md_diag_sender *x, md_diag_check c)
{
    return (unsigned)c < MD_DIAG_NCHECKS ? x->ready_ms[c] : 0;
}

const md_dnsbl_result *md_diag_sender_dnsbl(const md_diag_sender *x)
{
    return x->dnsbl;
}

void md_diag_sender_free(md_diag_sender *x)
{
    if (x == NULL)
        return;
    /* answers still out would reach freed memory: end them first */
    if (md_diag_sender_pending(x))
        md_dns_cancel(x->dns);
    for (size_t i = 0; i < x->ntxt; i++)
        md_dns_answer_free(x->txt[i].answer);
    md_dnsbl_result_free(x->dnsbl);
    for (size_t i = 0; i < x->nrdns; i++)
        md_rdns_result_free(x->rdns[i].r);
    free(x);
}

/* --- SPF -------------------------------------------------------------------------- */

void md_diag_sender_spf(md_diag_sender *x, md_report *rep)
{
    if (x->spf_ran)
        return;
    x->spf_ran = 1;
    if (!(x->checks & (1u << MD_DIAG_CHECK_SPF))) {
        settle(x, MD_DIAG_CHECK_SPF);
        return;
    }
    const md_diag_settings *s = x->set;
    json_t *arr = json_array();
    for (size_t i = 0; i < s->nips; i++) {
        int64_t left = remaining(x);
        if (left <= 0 || x->cancelled) {
            x->timed_out[MD_DIAG_CHECK_SPF] = 1;
            break;
        }
        md_spf_request req = { .ip = s->ips[i], .sender = s->from, .helo = s->helo,
                               .no_libspf2 = 1, .deadline = (double)left / 1000.0 };
        md_spf_result *res = NULL;
        md_error err = { 0 };
        if (md_spf_evaluate(x->dns, &req, &res, rep, &err) != MD_OK) {
            md_report_add(rep, "spf.temperror", MD_SEV_DEFAULT, "SPF of %s for %s could not be"
                          " evaluated: %s", x->from_domain, s->ips[i], err.text);
            continue;
        }
        /* a temperror that ends at the deadline is the deadline's, not DNS's */
        if (res->result == MD_SPF_TEMPERROR && remaining(x) <= 0)
            x->timed_out[MD_DIAG_CHECK_SPF] = 1;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:s?,s:i,s:i}", "ip", s->ips[i], "result",
                                             md_spf_code_name(res->result), "mechanism",
                                             res->mechanism, "error", res->error, "lookups",
                                             res->lookups, "void_lookups", res->void_lookups));
        md_report_add_detail(rep, "SPF of %s for %s: %s%s%s (%d DNS-querying terms)", x->from_domain,
                             s->ips[i], md_spf_code_name(res->result), res->mechanism ? " by " : "",
                             res->mechanism ? res->mechanism : "", res->lookups);
        /* within the limits, but one more include breaks SPF for this IP */
        if (res->result == MD_SPF_PASS && res->lookups >= MD_SPF_MAX_TERMS - 1 &&
            !md_report_has(rep, "spf.lookups_near_limit"))
            md_report_add(rep, "spf.lookups_near_limit", MD_SEV_DEFAULT,
                          "SPF of %s needs %d of the %d DNS-querying terms allowed to authorize %s",
                          x->from_domain, res->lookups, MD_SPF_MAX_TERMS, s->ips[i]);
        md_spf_result_free(res);
    }
    md_report_set(rep, "spf", arr);
    settle(x, MD_DIAG_CHECK_SPF);
}

/* --- DKIM and DMARC ------------------------------------------------------------------ */

static int dmarc_record(const md_dns_txt *t)
{
    const char *s = t->data;
    size_t n = t->len;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (n < 8 || strncasecmp(s, "v", 1) != 0)
        return 0;
    s++, n--;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (!n || *s != '=')
        return 0;
    s++, n--;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    return n >= 6 && strncmp(s, "DMARC1", 6) == 0 && (n == 6 || s[6] == ';' || s[6] == ' ' || s[6] == '\t');
}

static md_dns_answer *bounded_resolve(void *arg, const char *name, int type)
{
    md_diag_sender *x = arg;
    if (remaining(x) <= 0 || x->cancelled) {
        md_dns_answer *a = md_xcalloc(1, sizeof *a);
        a->outcome = MD_DNS_TIMEOUT;
        a->type = type;
        a->qname = md_xstrdup(name);
        snprintf(a->detail, sizeof a->detail, "the run's budget was spent");
        return a;
    }
    return md_dns_resolve(x->dns, name, type);
}

static txt_wait *txt_find(md_diag_sender *x, const char *name)
{
    for (size_t i = 0; i < x->ntxt; i++)
        if (strcmp(x->txt[i].name, name) == 0)
            return &x->txt[i];
    return NULL;
}

static void temporary(md_report *rep, const txt_wait *w, const char *what)
{
    md_finding *f = md_report_add(rep, "dns.temporary", MD_SEV_DEFAULT,
                                  "the %s lookup failed temporarily: unknown, not absent", what);
    md_finding_add_evidence(f, "TXT %s: %s %s", w->name,
                            w->answer ? md_dns_outcome_name(w->answer->outcome) : "error",
                            w->answer ? w->answer->detail : "");
}

/* 0 none, 1 one (*rec), -1 several, -2 the lookup failed */
static int dmarc_at(md_diag_sender *x, const char *domain, const char **rec, size_t *len, md_report *rep)
{
    char name[MD_DOMAIN_MAX + 32];
    snprintf(name, sizeof name, "_dmarc.%s", domain);
    txt_wait *w = txt_find(x, name);
    if (w == NULL || w->answer == NULL || md_dns_outcome_is_temporary(w->answer->outcome)) {
        if (w)
            temporary(rep, w, "DMARC");
        return -2;
    }
    int rc = 0;
    for (size_t i = 0; w->answer->outcome == MD_DNS_ANSWER && i < w->answer->n; i++)
        if (dmarc_record(&w->answer->txt[i])) {
            *rec = w->answer->txt[i].data;
            *len = w->answer->txt[i].len;
            rc = rc == 0 ? 1 : -1;
        }
    return rc;
}

/* RFC 7489 3.1: relaxed, the organizational domains are the same; strict,
 * the domains are. */
static int aligned(const char *a, const char *b, const char *mode)
{
    if (strcasecmp(a, b) == 0)
        return 1;
    if (mode && strcasecmp(mode, "s") == 0)
        return 0;
    char *oa = md_auth_org_domain(a), *ob = md_auth_org_domain(b);
    int same = strcasecmp(oa, ob) == 0;
    free(oa);
    free(ob);
    return same;
}

/* Our From domain against MAIL FROM (SPF's identity) and the DKIM signing
 * domain (where our selectors are published): DMARC passes only when one of
 * them is aligned (and passes its own check: the spf and dkim checks). */
static void dmarc_alignment(md_diag_sender *x, const md_auth_dmarc *d, md_report *rep, json_t *o)
{
    const char *aspf = md_auth_tags_get(&d->tags, "aspf"), *adkim = md_auth_tags_get(&d->tags, "adkim");
    int spf = aligned(x->from_domain, x->hdr_domain, aspf);
    int dkim_known = x->set->nselectors > 0;
    int dkim = dkim_known && aligned(x->from_domain, x->hdr_domain, adkim);
    json_object_set_new(o, "alignment", json_pack("{s:s,s:s,s:s,s:b,s:o}", "from", x->hdr_domain,
                                                  "mail_from", x->from_domain, "dkim_domain",
                                                  x->from_domain, "spf", spf, "dkim",
                                                  dkim_known ? json_boolean(dkim) : json_null()));
    char ev[2][2 * MD_DOMAIN_MAX + 64];
    snprintf(ev[0], sizeof ev[0], "From %s, MAIL FROM %s: SPF %saligned (aspf=%s)", x->hdr_domain,
             x->from_domain, spf ? "" : "not ", aspf ? aspf : "r");
    if (dkim_known)
        snprintf(ev[1], sizeof ev[1], "From %s, DKIM d=%s: DKIM %saligned (adkim=%s)", x->hdr_domain,
                 x->from_domain, dkim ? "" : "not ", adkim ? adkim : "r");
    else
        snprintf(ev[1], sizeof ev[1], "no DKIM selectors configured ([sender] dkim_selectors):"
                 " DKIM alignment not checked");
    md_finding *f;
    if (!spf && !dkim)
        f = md_report_add(rep, "dmarc.unaligned", MD_SEV_DEFAULT, "neither SPF (MAIL FROM %s) nor DKIM"
                          " (d=%s) aligns with our From domain %s: DMARC fails for our mail",
                          x->from_domain, x->from_domain, x->hdr_domain);
    else if (dkim_known && spf != dkim)
        f = md_report_add(rep, "dmarc.partly_aligned", MD_SEV_DEFAULT, "only %s aligns with our From"
                          " domain %s: DMARC passes on that one alone", spf ? "SPF" : "DKIM", x->hdr_domain);
    else
        f = md_report_add(rep, "dmarc.aligned", MD_SEV_DEFAULT, "our From domain %s aligns with %s",
                          x->hdr_domain, dkim ? "SPF and DKIM" : "SPF");
    md_finding_add_evidence(f, "%s", ev[0]);
    md_finding_add_evidence(f, "%s", ev[1]);
}

static void report_dmarc(md_diag_sender *x, md_report *rep)
{
    const char *rec = NULL, *at = x->hdr_domain;
    size_t len = 0;
    if (x->org[0] == '\0')
        return;   /* an address literal has no DMARC */
    int rc = dmarc_at(x, x->hdr_domain, &rec, &len, rep);
    if (rc == 0 && strcmp(x->org, x->hdr_domain) != 0) {
        at = x->org;
        rc = dmarc_at(x, x->org, &rec, &len, rep);
    }
    if (rc == 0)
        md_report_add(rep, "dmarc.missing", MD_SEV_DEFAULT,
                      "no DMARC record for %s or %s: large receivers require one from senders",
                      x->hdr_domain, x->org);
    else if (rc == -1)
        md_report_add(rep, "dmarc.multiple", MD_SEV_DEFAULT,
                      "more than one DMARC record at _dmarc.%s: receivers ignore them all", at);
    if (rc != 1) {
        md_report_set(rep, "dmarc", json_pack("{s:s,s:b}", "domain", x->hdr_domain, "found", 0));
        return;
    }
    md_auth_config ac = { .sends_reset = 1 };
    md_auth_answers ans = { bounded_resolve, x };
    md_auth_dmarc d = { 0 };
    md_auth_dmarc_evaluate(x->hdr_domain, at, rec, len, &ac, &ans, &d, rep);
    json_t *o = json_pack("{s:s,s:b,s:s,s:s?,s:s%}", "domain", x->hdr_domain, "found", 1, "found_at",
                          at, "policy", d.policy, "record", rec, len);
    dmarc_alignment(x, &d, rep, o);
    md_report_set(rep, "dmarc", o);
    md_auth_dmarc_clear(&d);
}

static void report_dkim(md_diag_sender *x, md_report *rep)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < x->set->nselectors; i++) {
        char name[MD_DOMAIN_MAX + 32];
        snprintf(name, sizeof name, "%s._domainkey.%s", x->set->selectors[i], x->from_domain);
        txt_wait *w = txt_find(x, name);
        json_t *o = json_pack("{s:s,s:s}", "selector", x->set->selectors[i], "name", name);
        json_array_append_new(arr, o);
        if (w == NULL || w->answer == NULL || md_dns_outcome_is_temporary(w->answer->outcome)) {
            if (w)
                temporary(rep, w, "DKIM key");
            json_object_set_new(o, "found", json_null());
            continue;
        }
        const md_dns_answer *a = w->answer;
        size_t n = a->outcome == MD_DNS_ANSWER ? a->n : 0;
        json_object_set_new(o, "found", json_boolean(n > 0));
        if (n == 0) {
            md_finding *f = md_report_add(rep, "dkim.missing", MD_SEV_DEFAULT,
                                          "no DKIM key at selector %s of %s: our signatures with it fail",
                                          x->set->selectors[i], x->from_domain);
            md_finding_add_evidence(f, "TXT %s: %s", name, md_dns_outcome_name(a->outcome));
            continue;
        }
        if (n > 1)
            md_report_add(rep, "dkim.multiple", MD_SEV_DEFAULT,
                          "%zu TXT records at %s: verifiers may pick any", n, name);
        md_auth_dkim k = { 0 };
        md_auth_dkim_evaluate(name, a->txt[n - 1].data, a->txt[n - 1].len, &k, rep);
        if (k.key_type) {
            json_object_set_new(o, "key_type", json_string(k.key_type));
            json_object_set_new(o, "key_bits", json_integer(k.key_bits));
        }
        json_object_set_new(o, "revoked", json_boolean(k.revoked));
        json_object_set_new(o, "testing", json_boolean(k.testing));
        md_auth_dkim_clear(&k);
    }
    md_report_set(rep, "dkim", arr);
}

/* --- blocklists and reverse DNS ---------------------------------------------------------- */

static void report_dnsbl(md_diag_sender *x, md_report *rep)
{
    if (x->set->nips == 0)
        return;
    if (x->dnsbl) {
        md_dnsbl_result_report(x->dnsbl, rep);
        return;
    }
    if (x->set->nips > 0 && x->set->nzones > 0 && !x->dnsbl_started)
        md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN, "the blocklist checks could not start: %s",
                      x->dnsbl_err.text);
    md_report_set(rep, "dnsbl", json_pack("{s:[],s:[]}", "zones", "listings"));
}

static void report_rdns(md_diag_sender *x, md_report *rep)
{
    if (x->set->nips == 0)
        return;
    if (x->rdns_err.text[0])
        md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN, "a reverse DNS check could not start: %s",
                      x->rdns_err.text);
    json_t *a = json_array();
    for (size_t i = 0; i < x->nrdns; i++) {
        if (x->rdns[i].r == NULL)
            continue;
        md_rdns_result_report(x->rdns[i].r, rep);
        md_report *one = md_report_new("rdns", NULL);
        md_rdns_describe(x->rdns[i].r, one);
        json_array_append(a, md_report_fields(one));
        md_report_free(one);
    }
    md_report_set(rep, "rdns", a);
}

void md_diag_sender_report(md_diag_sender *x, md_diag_check c, md_report *rep)
{
    if (!(x->checks & (1u << c)))
        return;
    switch (c) {
    case MD_DIAG_CHECK_SPF: md_diag_sender_spf(x, rep); break;
    case MD_DIAG_CHECK_DKIM: report_dkim(x, rep); break;
    case MD_DIAG_CHECK_DMARC: report_dmarc(x, rep); break;
    case MD_DIAG_CHECK_DNSBL: report_dnsbl(x, rep); break;
    case MD_DIAG_CHECK_RDNS: report_rdns(x, rep); break;
    default: break;
    }
}
