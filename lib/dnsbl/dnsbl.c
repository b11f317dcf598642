/* lib/dnsbl: RFC 5782 blocklists over lib/dns, and the reverse DNS of our IPs. */
#include "config.h"
#include "dnsbl.h"
#include "dns/name.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- names ------------------------------------------------------------------ */

const char *md_dnsbl_state_name(md_dnsbl_state s)
{
    static const char *const names[] = { "not_listed", "listed", "unusable", "unknown" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *md_dnsbl_zone_state_name(md_dnsbl_zone_state s)
{
    static const char *const names[] = { "usable", "unusable", "unknown" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *md_dnsbl_kind_name(md_dnsbl_kind k)
{
    static const char *const names[] = { "ipv4", "ipv6", "domain" };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

static const struct why_text {
    unsigned bit;
    const char *name;
} why_names[] = {
    { MD_DNSBL_WHY_LISTS_ALL, "lists_all" },
    { MD_DNSBL_WHY_MISSES_TEST, "misses_test" },
    { MD_DNSBL_WHY_REFUSED, "refused" },
    { MD_DNSBL_WHY_NOT_LOOPBACK, "not_loopback" },
    { MD_DNSBL_WHY_TYPO, "typo" },
    { MD_DNSBL_WHY_PUBLIC_RESOLVER, "public_resolver" },
    { MD_DNSBL_WHY_EXCESSIVE, "excessive" },
    { MD_DNSBL_WHY_ERROR_CODE, "error_code" },
};
#define NWHY (sizeof why_names / sizeof why_names[0])

const char *md_dnsbl_why_name(unsigned bit)
{
    for (size_t i = 0; i < NWHY; i++)
        if (why_names[i].bit == bit)
            return why_names[i].name;
    return NULL;
}

/* The test points of RFC 5782 section 5, by kind: shown to people. */
static const char *const must_list_text[MD_DNSBL_NKINDS] = { "127.0.0.2", "::ffff:7f00:2", "TEST" };
static const char *const must_not_text[MD_DNSBL_NKINDS] = { "127.0.0.1", "::ffff:7f00:1", "INVALID" };

/* One reason in words, for the test points of kind k. */
static void why_phrase(unsigned bit, md_dnsbl_kind k, char *out, size_t size)
{
    switch (bit) {
    case MD_DNSBL_WHY_LISTS_ALL:
        snprintf(out, size, "it lists the test point %s, which no list may list: it lists "
                 "everything", must_not_text[k]);
        break;
    case MD_DNSBL_WHY_MISSES_TEST:
        snprintf(out, size, "it does not list the test point %s, which every list must list",
                 must_list_text[k]);
        break;
    case MD_DNSBL_WHY_REFUSED:
        snprintf(out, size, "it refuses our queries (REFUSED, or the answer 127.0.0.1)");
        break;
    case MD_DNSBL_WHY_NOT_LOOPBACK:
        snprintf(out, size, "it answered an address outside 127.0.0.0/8 (a wildcard, or a "
                 "resolver that rewrites NXDOMAIN)");
        break;
    case MD_DNSBL_WHY_TYPO:
        snprintf(out, size, "it answered 127.255.255.252: the list name is misspelt");
        break;
    case MD_DNSBL_WHY_PUBLIC_RESOLVER:
        snprintf(out, size, "it answered 127.255.255.254: it refuses queries that come "
                 "through a public resolver");
        break;
    case MD_DNSBL_WHY_EXCESSIVE:
        snprintf(out, size, "it answered 127.255.255.255: our resolver sent it too many queries");
        break;
    default:
        snprintf(out, size, "it answered an error code in 127.255.255.0/24");
        break;
    }
}

/* --- query names ------------------------------------------------------------ */

static int join_name(const char *left, const char *zone, char *out, size_t outsize)
{
    size_t ll = strlen(left), zl = strlen(zone);
    if (zl > 0 && zone[zl - 1] == '.')
        zl--;
    if (ll == 0 || zl == 0 || ll + 1 + zl > MD_DNS_NAME_MAX || ll + 1 + zl + 1 > outsize) {
        if (outsize > 0)
            out[0] = '\0';
        return -1;
    }
    memcpy(out, left, ll);
    out[ll] = '.';
    memcpy(out + ll + 1, zone, zl);
    out[ll + 1 + zl] = '\0';
    return 0;
}

int md_dnsbl_query_name(const char *subject, const char *zone, int domain_list,
                        char *out, size_t outsize)
{
    if (domain_list) {
        size_t sl = strlen(subject);
        char d[MD_DNS_NAME_MAX + 1];
        if (sl > 0 && subject[sl - 1] == '.')
            sl--;
        if (sl >= sizeof d) {
            if (outsize > 0)
                out[0] = '\0';
            return -1;
        }
        memcpy(d, subject, sl);
        d[sl] = '\0';
        return join_name(d, zone, out, outsize);
    }
    md_dns_addr ip;
    if (md_rdns_addr_parse(subject, &ip, NULL) != MD_OK) {
        if (outsize > 0)
            out[0] = '\0';
        return -1;
    }
    return md_rdns_reverse_name(&ip, zone, out, outsize);
}

/* --- judging ---------------------------------------------------------------- */

/* 127.255.255.x and 127.0.0.1: the operator speaks, nothing is listed. */
static unsigned operator_code(const unsigned char *b)
{
    if (b[0] == 127 && b[1] == 255 && b[2] == 255) {
        switch (b[3]) {
        case 252: return MD_DNSBL_WHY_TYPO;
        case 254: return MD_DNSBL_WHY_PUBLIC_RESOLVER;
        case 255: return MD_DNSBL_WHY_EXCESSIVE;
        default: return MD_DNSBL_WHY_ERROR_CODE;
        }
    }
    if (b[0] == 127 && b[1] == 0 && b[2] == 0 && b[3] == 1)
        return MD_DNSBL_WHY_REFUSED;
    return 0;
}

md_dnsbl_state md_dnsbl_classify(md_dns_outcome outcome, const md_dns_addr *addr, size_t n,
                                 unsigned *why)
{
    *why = 0;
    if (md_dns_outcome_is_temporary(outcome))
        return MD_DNSBL_UNKNOWN;
    if (outcome != MD_DNS_ANSWER || n == 0)
        return MD_DNSBL_NOT_LISTED;   /* NXDOMAIN, NODATA */
    for (size_t i = 0; i < n; i++) {
        if (addr[i].family != AF_INET || addr[i].bytes[0] != 127)
            *why |= MD_DNSBL_WHY_NOT_LOOPBACK;
        else
            *why |= operator_code(addr[i].bytes);
    }
    return *why ? MD_DNSBL_UNUSABLE : MD_DNSBL_LISTED;
}

md_dnsbl_zone_state md_dnsbl_judge_zone(const md_dnsbl_lookup *must_list,
                                        const md_dnsbl_lookup *must_not, unsigned *why)
{
    int failed = 0;
    *why = 0;

    switch (must_list->state) {
    case MD_DNSBL_LISTED:
        break;
    case MD_DNSBL_NOT_LISTED:
        *why |= MD_DNSBL_WHY_MISSES_TEST;
        break;
    case MD_DNSBL_UNUSABLE:
        *why |= must_list->why;
        break;
    case MD_DNSBL_UNKNOWN:
        if (must_list->outcome == MD_DNS_REFUSED)
            *why |= MD_DNSBL_WHY_REFUSED;
        else
            failed = 1;
        break;
    }
    switch (must_not->state) {
    case MD_DNSBL_NOT_LISTED:
        break;
    case MD_DNSBL_LISTED:
        *why |= MD_DNSBL_WHY_LISTS_ALL;
        break;
    case MD_DNSBL_UNUSABLE:
        *why |= must_not->why;
        break;
    case MD_DNSBL_UNKNOWN:
        if (must_not->outcome == MD_DNS_REFUSED)
            *why |= MD_DNSBL_WHY_REFUSED;
        else
            failed = 1;
        break;
    }
    if (*why)
        return MD_DNSBL_ZONE_UNUSABLE;
    return failed ? MD_DNSBL_ZONE_UNKNOWN : MD_DNSBL_ZONE_USABLE;
}

md_dnsbl_state md_dnsbl_combine(md_dnsbl_zone_state zone, md_dnsbl_state answer)
{
    if (answer == MD_DNSBL_UNKNOWN || answer == MD_DNSBL_UNUSABLE)
        return answer;
    if (zone == MD_DNSBL_ZONE_UNUSABLE)
        return MD_DNSBL_UNUSABLE;
    if (zone == MD_DNSBL_ZONE_UNKNOWN)
        return MD_DNSBL_UNKNOWN;
    return answer;
}

/* Fills every list's state from its test points and from every answer it
 * gave, then every listing's final state. */
static void evaluate(md_dnsbl_result *r)
{
    for (size_t z = 0; z < r->nzones; z++)
        for (int k = 0; k < MD_DNSBL_NKINDS; k++) {
            md_dnsbl_tests *t = &r->zones[z].tests[k];
            if (t->asked)
                t->state = md_dnsbl_judge_zone(&t->must_list, &t->must_not, &t->why);
        }
    /* An answer the list should never give (a non-127 address, an error
     * code) discredits the list's other answers of that run as well: they
     * came through the same resolver path. */
    for (size_t i = 0; i < r->nlistings; i++) {
        md_dnsbl_listing *l = &r->listings[i];
        md_dnsbl_tests *t = &r->zones[l->zone].tests[l->kind];
        if (l->a.state == MD_DNSBL_UNUSABLE) {
            t->why |= l->a.why;
            t->state = MD_DNSBL_ZONE_UNUSABLE;
        }
    }
    for (size_t i = 0; i < r->nlistings; i++) {
        md_dnsbl_listing *l = &r->listings[i];
        l->state = md_dnsbl_combine(r->zones[l->zone].tests[l->kind].state, l->a.state);
    }
}

/* --- the result ---------------------------------------------------------------- */

static void lookup_clear(md_dnsbl_lookup *lk)
{
    free(lk->qname);
    for (size_t i = 0; i < lk->naddresses; i++)
        free(lk->addresses[i]);
    free(lk->addresses);
}

void md_dnsbl_result_free(md_dnsbl_result *r)
{
    if (r == NULL)
        return;
    for (size_t z = 0; z < r->nzones; z++) {
        free(r->zones[z].zone);
        for (int k = 0; k < MD_DNSBL_NKINDS; k++) {
            lookup_clear(&r->zones[z].tests[k].must_list);
            lookup_clear(&r->zones[z].tests[k].must_not);
        }
    }
    free(r->zones);
    for (size_t i = 0; i < r->nlistings; i++) {
        md_dnsbl_listing *l = &r->listings[i];
        free(l->subject);
        lookup_clear(&l->a);
        for (size_t c = 0; c < l->ncodes; c++)
            free(l->codes[c]);
        free(l->codes);
        free(l->reason);
    }
    free(r->listings);
    for (size_t i = 0; i < r->nrdns; i++)
        md_rdns_result_free(r->rdns[i]);
    free(r->rdns);
    free(r);
}

/* --- reporting ------------------------------------------------------------------ */

static json_t *strings_json(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

static json_t *why_json(unsigned why)
{
    json_t *a = json_array();
    for (size_t i = 0; i < NWHY; i++)
        if (why & why_names[i].bit)
            json_array_append_new(a, json_string(why_names[i].name));
    return a;
}

static json_t *lookup_json(const md_dnsbl_lookup *lk)
{
    json_t *o = json_object();
    json_object_set_new(o, "query", json_string(lk->qname));
    json_object_set_new(o, "lookup", json_string(md_dns_outcome_name(lk->outcome)));
    json_object_set_new(o, "addresses", strings_json(lk->addresses, lk->naddresses));
    return o;
}

/* "127.0.0.2 127.0.0.4" or the lookup's outcome, into buf. */
static const char *answer_text(const md_dnsbl_lookup *lk, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    if (lk->outcome != MD_DNS_ANSWER) {
        snprintf(buf, size, "%s", md_dns_outcome_name(lk->outcome));
        return buf;
    }
    for (size_t i = 0; i < lk->naddresses && o + 1 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? " " : "", lk->addresses[i]);
    if (lk->nanswers > lk->naddresses && o + 1 < size)
        snprintf(buf + o, size - o, " ...");
    return buf;
}

static const char *codes_text(const md_dnsbl_listing *l, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->ncodes && o + 1 < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", l->codes[i]);
    return buf;
}

/* What a listing's state means, in a few words. */
static void listing_detail(const md_dnsbl_listing *l, char *out, size_t size)
{
    char ans[512];
    switch (l->state) {
    case MD_DNSBL_LISTED:
        snprintf(out, size, "listed (%s)", answer_text(&l->a, ans, sizeof ans));
        break;
    case MD_DNSBL_NOT_LISTED:
        snprintf(out, size, l->a.outcome == MD_DNS_NODATA
                 ? "not listed (NODATA: the name exists without an A record, which is not a listing)"
                 : "not listed (NXDOMAIN)");
        break;
    case MD_DNSBL_UNUSABLE:
        snprintf(out, size, "answered %s; not counted: the list is unusable",
                 answer_text(&l->a, ans, sizeof ans));
        break;
    case MD_DNSBL_UNKNOWN:
        if (md_dns_outcome_is_temporary(l->a.outcome))
            snprintf(out, size, "unknown: the lookup failed (%s)",
                     l->a.detail[0] ? l->a.detail : md_dns_outcome_name(l->a.outcome));
        else
            snprintf(out, size, "unknown: answered %s, but the list's test points could not be "
                     "checked", answer_text(&l->a, ans, sizeof ans));
        break;
    }
}

static json_t *zone_json(const md_dnsbl_zone *z)
{
    json_t *o = json_object();
    json_object_set_new(o, "zone", json_string(z->zone));
    json_object_set_new(o, "kind", json_string(z->domain_list ? "domain" : "ip"));
    json_t *tests = json_object();
    for (int k = 0; k < MD_DNSBL_NKINDS; k++) {
        const md_dnsbl_tests *t = &z->tests[k];
        if (!t->asked)
            continue;
        json_t *o2 = json_object();
        json_object_set_new(o2, "state", json_string(md_dnsbl_zone_state_name(t->state)));
        json_object_set_new(o2, "why", why_json(t->why));
        json_object_set_new(o2, "must_list", lookup_json(&t->must_list));
        json_object_set_new(o2, "must_not_list", lookup_json(&t->must_not));
        json_object_set_new(tests, md_dnsbl_kind_name((md_dnsbl_kind)k), o2);
    }
    json_object_set_new(o, "tests", tests);
    return o;
}

static json_t *listing_json(const md_dnsbl_result *r, const md_dnsbl_listing *l)
{
    char detail[600];
    json_t *o = json_object();
    json_object_set_new(o, "subject", json_string(l->subject));
    json_object_set_new(o, "kind", json_string(md_dnsbl_kind_name(l->kind)));
    json_object_set_new(o, "zone", json_string(r->zones[l->zone].zone));
    json_object_set_new(o, "state", json_string(md_dnsbl_state_name(l->state)));
    json_object_set_new(o, "query", json_string(l->a.qname));
    json_object_set_new(o, "lookup", json_string(md_dns_outcome_name(l->a.outcome)));
    json_object_set_new(o, "addresses", strings_json(l->a.addresses, l->a.naddresses));
    json_object_set_new(o, "codes", strings_json(l->codes, l->ncodes));
    if (l->txt_asked)
        json_object_set_new(o, "txt", json_string(md_dns_outcome_name(l->txt)));
    json_object_set_new(o, "reason", l->reason ? json_string(l->reason) : json_null());
    listing_detail(l, detail, sizeof detail);
    json_object_set_new(o, "detail", json_string(detail));
    return o;
}

static void lookup_evidence(md_finding *f, const md_dnsbl_lookup *lk)
{
    char ans[512];
    md_finding_add_evidence(f, "%s A: %s", lk->qname, answer_text(lk, ans, sizeof ans));
}

/* "192.0.2.10, 192.0.2.11" of the listings of list z, kind k, in state s
 * (for UNKNOWN, only those whose own lookup answered: a failed lookup has a
 * finding of its own). */
static const char *subjects_text(const md_dnsbl_result *r, size_t z, md_dnsbl_kind k,
                                 md_dnsbl_state s, char *buf, size_t size)
{
    size_t o = 0, n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->nlistings && o + 1 < size; i++) {
        const md_dnsbl_listing *l = &r->listings[i];
        if (l->zone == z && l->kind == k && l->state == s
            && !(s == MD_DNSBL_UNKNOWN && md_dns_outcome_is_temporary(l->a.outcome)))
            o += (size_t)snprintf(buf + o, size - o, "%s%s", n++ ? ", " : "", l->subject);
    }
    return buf;
}

static void report_zone(const md_dnsbl_result *r, size_t zi, md_dnsbl_kind k, md_report *rep)
{
    const md_dnsbl_zone *z = &r->zones[zi];
    const md_dnsbl_tests *t = &z->tests[k];
    char reasons[1024], subjects[1024], phrase[256];
    const char *what = k == MD_DNSBL_IPV4 ? "IPv4 addresses"
                     : k == MD_DNSBL_IPV6 ? "IPv6 addresses" : "domains";
    md_finding *f;

    if (t->state == MD_DNSBL_ZONE_UNUSABLE) {
        size_t o = 0;
        reasons[0] = '\0';
        for (size_t i = 0; i < NWHY; i++) {
            if (!(t->why & why_names[i].bit) || o + 1 >= sizeof reasons)
                continue;
            why_phrase(why_names[i].bit, k, phrase, sizeof phrase);
            o += (size_t)snprintf(reasons + o, sizeof reasons - o, "%s%s", o ? "; " : "", phrase);
        }
        subjects_text(r, zi, k, MD_DNSBL_UNUSABLE, subjects, sizeof subjects);
        md_report_add_detail(rep, "list %s (%s): unusable", z->zone, what);
        f = md_report_add(rep, "dnsbl.unusable", MD_SEV_DEFAULT,
                          "the list %s cannot be used for %s: %s%s%s%s", z->zone, what, reasons,
                          subjects[0] ? "; its answers for " : "", subjects,
                          subjects[0] ? " are not counted" : "");
        lookup_evidence(f, &t->must_list);
        lookup_evidence(f, &t->must_not);
        for (size_t i = 0; i < r->nlistings; i++) {
            const md_dnsbl_listing *l = &r->listings[i];
            if (l->zone == zi && l->kind == k && l->a.state == MD_DNSBL_UNUSABLE)
                lookup_evidence(f, &l->a);
        }
    } else if (t->state == MD_DNSBL_ZONE_UNKNOWN) {
        const md_dnsbl_lookup *bad = md_dns_outcome_is_temporary(t->must_list.outcome)
                                         ? &t->must_list : &t->must_not;
        subjects_text(r, zi, k, MD_DNSBL_UNKNOWN, subjects, sizeof subjects);
        md_report_add_detail(rep, "list %s (%s): test points unknown (%s)", z->zone, what,
                             md_dns_outcome_name(bad->outcome));
        f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                          "the test point lookup on the list %s failed (%s): whether the list "
                          "works for %s is unknown%s%s", z->zone,
                          bad->detail[0] ? bad->detail : md_dns_outcome_name(bad->outcome), what,
                          subjects[0] ? ", and with it its answers for " : "", subjects);
        lookup_evidence(f, &t->must_list);
        lookup_evidence(f, &t->must_not);
    }
}

static void report_listing(const md_dnsbl_result *r, const md_dnsbl_listing *l, md_report *rep)
{
    const char *zone = r->zones[l->zone].zone;
    char detail[600], codes[256];
    md_finding *f;

    listing_detail(l, detail, sizeof detail);
    md_report_add_detail(rep, "%s on %s: %s%s%s%s", l->subject, zone, detail,
                         l->reason ? " \"" : "", l->reason ? l->reason : "",
                         l->reason ? "\"" : "");
    if (l->state == MD_DNSBL_LISTED) {
        char txt[64];
        snprintf(txt, sizeof txt, "no reason given (TXT: %s)", md_dns_outcome_name(l->txt));
        f = md_report_add(rep, "dnsbl.listed", MD_SEV_DEFAULT, "%s is listed on %s (%s): %s%s%s",
                          l->subject, zone, codes_text(l, codes, sizeof codes),
                          l->reason ? "\"" : "", l->reason ? l->reason : txt,
                          l->reason ? "\"" : "");
        lookup_evidence(f, &l->a);
        if (l->reason)
            md_finding_add_evidence(f, "%s TXT: \"%s\"", l->a.qname, l->reason);
        else
            md_finding_add_evidence(f, "%s TXT: %s", l->a.qname, md_dns_outcome_name(l->txt));
    } else if (l->state == MD_DNSBL_UNKNOWN && md_dns_outcome_is_temporary(l->a.outcome)) {
        f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                          "the lookup of %s on the list %s failed (%s): whether it is listed "
                          "is unknown", l->subject, zone,
                          l->a.detail[0] ? l->a.detail : md_dns_outcome_name(l->a.outcome));
        lookup_evidence(f, &l->a);
    }
}

void md_dnsbl_result_report(const md_dnsbl_result *r, md_report *rep)
{
    /* Listings first: a listing is what a reader looks for. */
    for (size_t i = 0; i < r->nlistings; i++)
        report_listing(r, &r->listings[i], rep);
    for (size_t z = 0; z < r->nzones; z++)
        for (int k = 0; k < MD_DNSBL_NKINDS; k++)
            if (r->zones[z].tests[k].asked)
                report_zone(r, z, (md_dnsbl_kind)k, rep);
    for (size_t i = 0; i < r->nrdns; i++)
        md_rdns_result_report(r->rdns[i], rep);

    json_t *o = json_object();
    json_t *zones = json_array();
    for (size_t z = 0; z < r->nzones; z++)
        json_array_append_new(zones, zone_json(&r->zones[z]));
    json_object_set_new(o, "zones", zones);
    json_t *listings = json_array();
    for (size_t i = 0; i < r->nlistings; i++)
        json_array_append_new(listings, listing_json(r, &r->listings[i]));
    json_object_set_new(o, "listings", listings);
    md_report_set(rep, "dnsbl", o);
    if (r->rdns != NULL) {
        /* each IP's reverse DNS as lib/rdns describes it */
        json_t *a = json_array();
        for (size_t i = 0; i < r->nrdns; i++) {
            md_report *one = md_report_new("rdns", NULL);
            md_rdns_describe(r->rdns[i], one);
            json_array_append(a, md_report_fields(one));
            md_report_free(one);
        }
        md_report_set(rep, "rdns", a);
    }
}

/* --- gathering ---------------------------------------------------------------- */

typedef struct dnsbl_job {
    md_dns *dns;
    md_dnsbl_result *r;
    size_t pending;
    md_dnsbl_done_fn done;
    void *arg;
} dnsbl_job;

typedef struct a_req {
    dnsbl_job *job;
    md_dnsbl_lookup *lookup;
    md_dnsbl_listing *listing;   /* NULL for a test point */
} a_req;

typedef struct rdns_slot {
    dnsbl_job *job;
    size_t index;
} rdns_slot;

static void job_release(dnsbl_job *job)
{
    if (--job->pending > 0)
        return;
    md_dnsbl_result *r = job->r;
    md_dnsbl_done_fn done = job->done;
    void *arg = job->arg;
    free(job);
    evaluate(r);
    done(arg, r);
}

static int cmp_addr(const void *a, const void *b)
{
    return memcmp(((const md_dns_addr *)a)->bytes, ((const md_dns_addr *)b)->bytes, 4);
}

static int cmp_txt(const void *a, const void *b)
{
    const md_dns_txt *x = *(const md_dns_txt *const *)a, *y = *(const md_dns_txt *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void on_txt(void *arg, const md_dns_answer *a)
{
    a_req *req = arg;
    md_dnsbl_listing *l = req->listing;

    l->txt = a->outcome;
    if (a->outcome == MD_DNS_ANSWER && a->n > 0) {
        /* Records in a stable order, joined, bounded, sanitized. */
        const md_dns_txt **sorted = md_xcalloc(a->n, sizeof *sorted);
        for (size_t i = 0; i < a->n; i++)
            sorted[i] = &a->txt[i];
        qsort(sorted, a->n, sizeof *sorted, cmp_txt);
        char buf[MD_DNSBL_REASON_MAX];
        size_t o = 0, want = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < a->n; i++) {
            want += (i ? 3 : 0) + sorted[i]->len;
            if (i > 0 && o + 1 < sizeof buf)
                o += (size_t)snprintf(buf + o, sizeof buf - o, " | ");
            if (o + 1 < sizeof buf) {
                md_sanitize(buf + o, sizeof buf - o, sorted[i]->data, sorted[i]->len);
                o += strlen(buf + o);
            }
        }
        free(sorted);
        o = strlen(buf);          /* o overshoots when the last separator was cut */
        if (want > o && o >= 3)   /* cut (or stopped at a NUL byte): say so */
            memcpy(buf + o - 3, "...", 3);
        l->reason = md_xstrdup(buf);
    }
    dnsbl_job *job = req->job;
    free(req);
    job_release(job);
}

static void on_a(void *arg, const md_dns_answer *a)
{
    a_req *req = arg;
    dnsbl_job *job = req->job;
    md_dnsbl_lookup *lk = req->lookup;
    md_dnsbl_listing *l = req->listing;

    lk->outcome = a->outcome;
    snprintf(lk->detail, sizeof lk->detail, "%s", a->detail);
    lk->nanswers = a->n;
    lk->state = md_dnsbl_classify(a->outcome, a->addr, a->n, &lk->why);

    /* Addresses (and codes) in numeric order, whatever order the server chose. */
    md_dns_addr *sorted = a->n ? md_xcalloc(a->n, sizeof *sorted) : NULL;
    size_t ns = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->addr[i].family == AF_INET)
            sorted[ns++] = a->addr[i];
    if (ns > 1)
        qsort(sorted, ns, sizeof *sorted, cmp_addr);
    size_t keep = ns < MD_DNSBL_ADDRS_MAX ? ns : MD_DNSBL_ADDRS_MAX;
    lk->addresses = keep ? md_xcalloc(keep, sizeof *lk->addresses) : NULL;
    for (size_t i = 0; i < keep; i++)
        lk->addresses[lk->naddresses++] = md_xstrdup(sorted[i].text);
    if (l != NULL && ns > 0) {
        l->codes = md_xcalloc(ns, sizeof *l->codes);
        for (size_t i = 0; i < ns; i++)
            if (sorted[i].bytes[0] == 127 && operator_code(sorted[i].bytes) == 0
                && (l->ncodes == 0 || strcmp(l->codes[l->ncodes - 1], sorted[i].text) != 0))
                l->codes[l->ncodes++] = md_xstrdup(sorted[i].text);
    }
    free(sorted);

    if (l != NULL && lk->state == MD_DNSBL_LISTED) {
        /* The reason: only worth asking for a listing. */
        a_req *t = md_xcalloc(1, sizeof *t);
        t->job = job;
        t->listing = l;
        l->txt_asked = 1;
        job->pending++;
        md_dns_query(job->dns, lk->qname, MD_DNS_TXT, on_txt, t);
    }
    free(req);
    job_release(job);
}

static void ask_a(dnsbl_job *job, md_dnsbl_lookup *lk, md_dnsbl_listing *l)
{
    a_req *req = md_xcalloc(1, sizeof *req);
    req->job = job;
    req->lookup = lk;
    req->listing = l;
    job->pending++;
    md_dns_query(job->dns, lk->qname, MD_DNS_A, on_a, req);
}

static void on_rdns(void *arg, md_rdns_result *rr)
{
    rdns_slot *slot = arg;
    dnsbl_job *job = slot->job;
    job->r->rdns[slot->index] = rr;
    free(slot);
    job_release(job);
}

/* --- starting ------------------------------------------------------------------- */

/* The validated, de-duplicated input. */
typedef struct input {
    md_dns_addr *ips;
    char **helos;               /* parallel to ips; NULL entries: none */
    size_t nips;
    char **zones, **domains, **dzones;
    size_t nzones, ndomains, ndzones;
} input;

static void input_clear(input *in)
{
    for (size_t i = 0; i < in->nips; i++)
        free(in->helos[i]);
    free(in->helos);
    free(in->ips);
    for (size_t i = 0; i < in->nzones; i++)
        free(in->zones[i]);
    free(in->zones);
    for (size_t i = 0; i < in->ndomains; i++)
        free(in->domains[i]);
    free(in->domains);
    for (size_t i = 0; i < in->ndzones; i++)
        free(in->dzones[i]);
    free(in->dzones);
}

/* Normalizes names[0..n) into a new array of distinct A-label names. */
static md_status names_take(const char *const *names, size_t n, const char *what,
                            char ***out, size_t *nout, md_error *err)
{
    *out = n ? md_xcalloc(n, sizeof **out) : NULL;
    *nout = 0;
    for (size_t i = 0; i < n; i++) {
        char ascii[MD_DNS_NAME_MAX + 1];
        md_error nerr;
        if (names[i] == NULL
            || md_dns_name_normalize(names[i], ascii, sizeof ascii, NULL, 0, &nerr) != MD_OK)
            return md_error_set(err, MD_CONFIG, "dnsbl.config", "%s '%.64s': %s", what,
                                names[i] ? names[i] : "", names[i] ? nerr.text : "missing");
        size_t k;
        for (k = 0; k < *nout && strcmp((*out)[k], ascii) != 0; k++)
            ;
        if (k == *nout)
            (*out)[(*nout)++] = md_xstrdup(ascii);
    }
    return MD_OK;
}

static md_status input_take(const md_dnsbl_config *cfg, input *in, md_error *err)
{
    md_status st;
    memset(in, 0, sizeof *in);
    if (cfg->nsenders > 0) {
        in->ips = md_xcalloc(cfg->nsenders, sizeof *in->ips);
        in->helos = md_xcalloc(cfg->nsenders, sizeof *in->helos);
    }
    for (size_t i = 0; i < cfg->nsenders; i++) {
        md_dns_addr ip;
        char helo[MD_DNS_NAME_MAX + 1];
        md_error nerr;
        if (md_rdns_addr_parse(cfg->senders[i].ip, &ip, &nerr) != MD_OK)
            return md_error_set(err, MD_CONFIG, "dnsbl.config", "sending IP: %s", nerr.text);
        if (cfg->senders[i].helo != NULL
            && md_dns_name_normalize(cfg->senders[i].helo, helo, sizeof helo, NULL, 0,
                                     &nerr) != MD_OK)
            return md_error_set(err, MD_CONFIG, "dnsbl.config", "HELO name '%.64s': %s",
                                cfg->senders[i].helo, nerr.text);
        size_t k;
        for (k = 0; k < in->nips && strcmp(in->ips[k].text, ip.text) != 0; k++)
            ;
        if (k < in->nips)
            continue;   /* the first entry of an IP wins */
        in->ips[in->nips] = ip;
        in->helos[in->nips] = cfg->senders[i].helo ? md_xstrdup(helo) : NULL;
        in->nips++;
    }
    if ((st = names_take(cfg->zones, cfg->nzones, "list zone", &in->zones, &in->nzones, err))
        || (st = names_take(cfg->domains, cfg->ndomains, "sending domain", &in->domains,
                            &in->ndomains, err))
        || (st = names_take(cfg->domain_zones, cfg->ndomain_zones, "domain list zone",
                            &in->dzones, &in->ndzones, err)))
        return st;

    if (in->nzones > 0 && in->nips == 0)
        return md_error_set(err, MD_CONFIG, "dnsbl.config", "list zones given but no sending IP");
    if (in->ndzones > 0 && in->ndomains == 0)
        return md_error_set(err, MD_CONFIG, "dnsbl.config",
                            "domain list zones given but no sending domain");
    if (in->ndomains > 0 && in->ndzones == 0)
        return md_error_set(err, MD_CONFIG, "dnsbl.config",
                            "sending domains given but no domain list zone");
    if (in->nzones == 0 && in->ndzones == 0 && (in->nips == 0 || cfg->no_rdns))
        return md_error_set(err, MD_CONFIG, "dnsbl.config", "nothing to check");

    /* Every query name must fit 253 characters, test points included: check
     * each list with the longest reversed address of each family in use. */
    char qname[MD_DNS_NAME_MAX + 2];
    md_dns_addr longest[2];
    memset(longest, 0xff, sizeof longest);
    longest[0].family = AF_INET;
    longest[1].family = AF_INET6;
    for (size_t z = 0; z < in->nzones; z++)
        for (size_t i = 0; i < in->nips; i++)
            if (md_rdns_reverse_name(&longest[in->ips[i].family == AF_INET ? 0 : 1],
                                     in->zones[z], qname, sizeof qname) != 0)
                return md_error_set(err, MD_CONFIG, "dnsbl.config",
                                    "list zone %.64s is too long for the query names of %s",
                                    in->zones[z], in->ips[i].family == AF_INET ? "IPv4" : "IPv6");
    for (size_t z = 0; z < in->ndzones; z++) {
        if (join_name("invalid", in->dzones[z], qname, sizeof qname) != 0)
            return md_error_set(err, MD_CONFIG, "dnsbl.config",
                                "domain list zone %.64s is too long", in->dzones[z]);
        for (size_t i = 0; i < in->ndomains; i++)
            if (join_name(in->domains[i], in->dzones[z], qname, sizeof qname) != 0)
                return md_error_set(err, MD_CONFIG, "dnsbl.config",
                                    "%.64s on %.64s makes a name over 253 characters",
                                    in->domains[i], in->dzones[z]);
    }
    return MD_OK;
}

static void test_point(md_dnsbl_lookup *lk, md_dnsbl_kind k, int listed, const char *zone)
{
    char name[MD_RDNS_REVERSE_MAX];
    if (k == MD_DNSBL_DOMAIN) {
        join_name(listed ? "test" : "invalid", zone, name, sizeof name);
    } else {
        md_dns_addr a;
        memset(&a, 0, sizeof a);
        if (k == MD_DNSBL_IPV4) {
            a.family = AF_INET;
            a.bytes[0] = 127;
            a.bytes[3] = listed ? 2 : 1;
        } else {   /* ::ffff:127.0.0.x, RFC 5782 section 5 */
            a.family = AF_INET6;
            a.bytes[10] = a.bytes[11] = 0xff;
            a.bytes[12] = 127;
            a.bytes[15] = listed ? 2 : 1;
        }
        md_rdns_reverse_name(&a, zone, name, sizeof name);
    }
    lk->qname = md_xstrdup(name);
}

md_status md_dnsbl_start(md_dns *dns, const md_dnsbl_config *cfg, md_dnsbl_done_fn done,
                         void *arg, md_error *err)
{
    input in;
    if (input_take(cfg, &in, err) != MD_OK) {
        input_clear(&in);
        return MD_CONFIG;
    }

    int have[MD_DNSBL_NKINDS] = { 0, 0, 0 };
    for (size_t i = 0; i < in.nips; i++)
        have[in.ips[i].family == AF_INET ? MD_DNSBL_IPV4 : MD_DNSBL_IPV6] = 1;
    have[MD_DNSBL_DOMAIN] = in.ndomains > 0;

    md_dnsbl_result *r = md_xcalloc(1, sizeof *r);
    r->nzones = in.nzones + in.ndzones;
    r->zones = r->nzones ? md_xcalloc(r->nzones, sizeof *r->zones) : NULL;
    for (size_t z = 0; z < r->nzones; z++) {
        md_dnsbl_zone *zone = &r->zones[z];
        zone->domain_list = z >= in.nzones;
        zone->zone = md_xstrdup(zone->domain_list ? in.dzones[z - in.nzones] : in.zones[z]);
        for (int k = 0; k < MD_DNSBL_NKINDS; k++) {
            md_dnsbl_tests *t = &zone->tests[k];
            t->asked = have[k] && (k == MD_DNSBL_DOMAIN) == zone->domain_list;
            if (!t->asked)
                continue;
            test_point(&t->must_list, (md_dnsbl_kind)k, 1, zone->zone);
            test_point(&t->must_not, (md_dnsbl_kind)k, 0, zone->zone);
        }
    }
    r->nlistings = in.nips * in.nzones + in.ndomains * in.ndzones;
    r->listings = r->nlistings ? md_xcalloc(r->nlistings, sizeof *r->listings) : NULL;
    size_t n = 0;
    char qname[MD_RDNS_REVERSE_MAX + MD_DNS_NAME_MAX];
    for (size_t i = 0; i < in.nips; i++)
        for (size_t z = 0; z < in.nzones; z++, n++) {
            md_dnsbl_listing *l = &r->listings[n];
            l->subject = md_xstrdup(in.ips[i].text);
            l->kind = in.ips[i].family == AF_INET ? MD_DNSBL_IPV4 : MD_DNSBL_IPV6;
            l->zone = z;
            md_rdns_reverse_name(&in.ips[i], in.zones[z], qname, sizeof qname);
            l->a.qname = md_xstrdup(qname);
        }
    for (size_t i = 0; i < in.ndomains; i++)
        for (size_t z = 0; z < in.ndzones; z++, n++) {
            md_dnsbl_listing *l = &r->listings[n];
            l->subject = md_xstrdup(in.domains[i]);
            l->kind = MD_DNSBL_DOMAIN;
            l->zone = in.nzones + z;
            join_name(in.domains[i], in.dzones[z], qname, sizeof qname);
            l->a.qname = md_xstrdup(qname);
        }

    dnsbl_job *job = md_xcalloc(1, sizeof *job);
    job->dns = dns;
    job->r = r;
    job->done = done;
    job->arg = arg;
    job->pending = 1;   /* held while queueing */

    /* Test points first, once per list and kind of subject. */
    for (size_t z = 0; z < r->nzones; z++)
        for (int k = 0; k < MD_DNSBL_NKINDS; k++)
            if (r->zones[z].tests[k].asked) {
                ask_a(job, &r->zones[z].tests[k].must_list, NULL);
                ask_a(job, &r->zones[z].tests[k].must_not, NULL);
            }
    for (size_t i = 0; i < r->nlistings; i++)
        ask_a(job, &r->listings[i].a, &r->listings[i]);
    if (!cfg->no_rdns && in.nips > 0) {
        r->nrdns = in.nips;
        r->rdns = md_xcalloc(in.nips, sizeof *r->rdns);
        for (size_t i = 0; i < in.nips; i++) {
            rdns_slot *slot = md_xcalloc(1, sizeof *slot);
            slot->job = job;
            slot->index = i;
            job->pending++;
            md_error rerr;
            /* Cannot fail: the IP and the HELO name were validated above. */
            if (md_rdns_start(dns, in.ips[i].text, in.helos[i], on_rdns, slot, &rerr) != MD_OK) {
                free(slot);
                job->pending--;
            }
        }
    }
    input_clear(&in);
    /* Queries answer from the loop only, so this never ends the job here. */
    job->pending--;
    return MD_OK;
}

typedef struct sync_slot {
    int done;
    md_dnsbl_result *r;
} sync_slot;

static void sync_done(void *arg, md_dnsbl_result *r)
{
    sync_slot *s = arg;
    s->r = r;
    s->done = 1;
}

md_dnsbl_result *md_dnsbl_check(md_dns *dns, const md_dnsbl_config *cfg, md_error *err)
{
    sync_slot s = { 0, NULL };
    if (md_dnsbl_start(dns, cfg, sync_done, &s, err) != MD_OK)
        return NULL;
    while (!s.done && md_dns_step(dns, -1) > 0)
        ;
    if (!s.done)   /* cannot happen: every query ends, and ends the check with it */
        md_error_set(err, MD_INTERNAL, "dnsbl", "internal: the check's queries were lost");
    return s.r;
}
