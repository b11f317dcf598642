/* Unit tests for lib/dnsbl: RFC 5782 query names, the classification of an
 * answer, the test-point judgement of a list and how the two combine.
 * Tables; no DNS. */
#include "config.h"
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include "dnsbl/dnsbl.h"
#include "tap.h"

static void test_query_names(void)
{
    static const struct {
        const char *subject, *zone;
        int domain_list;
        const char *want;   /* NULL: refused */
    } cases[] = {
        { "192.0.2.10", "bl.test", 0, "10.2.0.192.bl.test" },
        { "198.51.100.7", "zen.example.com", 0, "7.100.51.198.zen.example.com" },
        { "192.0.2.10", "bl.test.", 0, "10.2.0.192.bl.test" },
        { "127.0.0.2", "bl.test", 0, "2.0.0.127.bl.test" },
        { "::ffff:192.0.2.10", "bl.test", 0, "10.2.0.192.bl.test" },   /* mapped = IPv4 */
        { "2001:db8::10", "bl.test", 0,
          "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" },
        { "2001:db8:0:0:1::", "bl.test", 0,
          "0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" },
        { "example.com", "dbl.test", 1, "example.com.dbl.test" },
        { "example.com.", "dbl.test", 1, "example.com.dbl.test" },
        { "test", "dbl.test", 1, "test.dbl.test" },
        { "example.com", "dbl.test", 0, NULL },    /* not an IP on an IP list */
        { "192.0.2", "bl.test", 0, NULL },
        { "", "dbl.test", 1, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[MD_RDNS_REVERSE_MAX + 256];
        int rc = md_dnsbl_query_name(cases[i].subject, cases[i].zone, cases[i].domain_list, out,
                                     sizeof out);
        if (cases[i].want == NULL) {
            is_int(rc, -1, "query_name(%s, %s) refused", cases[i].subject, cases[i].zone);
        } else {
            is_int(rc, 0, "query_name(%s, %s) succeeds", cases[i].subject, cases[i].zone);
            is_str(out, cases[i].want, "query_name(%s, %s)", cases[i].subject, cases[i].zone);
        }
    }
    /* 253 characters at most. */
    char zone[260], out[600];
    memset(zone, 'a', 189);
    zone[189] = '\0';
    is_int(md_dnsbl_query_name("2001:db8::10", zone, 0, out, sizeof out), 0, "64 + 189 = 253 fits");
    memset(zone, 'a', 190);
    zone[190] = '\0';
    is_int(md_dnsbl_query_name("2001:db8::10", zone, 0, out, sizeof out), -1, "64 + 190 refused");
    is_int(md_dnsbl_query_name("example.com", zone + 10, 1, out, sizeof out), 0,
           "12 + 180 fits");
    memset(zone, 'a', 250);
    zone[250] = '\0';
    is_int(md_dnsbl_query_name("example.com", zone, 1, out, sizeof out), -1,
           "12 + 250 refused");
}

/* --- classification ------------------------------------------------------- */

typedef struct class_case {
    const char *what;
    md_dns_outcome outcome;
    const char *addrs[4];     /* A records; "6:..." for an AAAA, which an A answer never holds */
    md_dnsbl_state want;
    unsigned want_why;
} class_case;

#define W(x) MD_DNSBL_WHY_##x

static const class_case class_cases[] = {
    { "127.0.0.2: listed", MD_DNS_ANSWER, { "127.0.0.2" }, MD_DNSBL_LISTED, 0 },
    { "several codes: listed", MD_DNS_ANSWER, { "127.0.0.4", "127.0.0.2", "127.0.0.10" },
      MD_DNSBL_LISTED, 0 },
    { "127.0.1.2 (a domain list code): listed", MD_DNS_ANSWER, { "127.0.1.2" }, MD_DNSBL_LISTED, 0 },
    { "127.255.254.1 is not an error code", MD_DNS_ANSWER, { "127.255.254.1" }, MD_DNSBL_LISTED, 0 },
    { "NXDOMAIN: not listed", MD_DNS_NXDOMAIN, { NULL }, MD_DNSBL_NOT_LISTED, 0 },
    { "NODATA: not listed either", MD_DNS_NODATA, { NULL }, MD_DNSBL_NOT_LISTED, 0 },
    { "SERVFAIL: unknown", MD_DNS_SERVFAIL, { NULL }, MD_DNSBL_UNKNOWN, 0 },
    { "REFUSED: unknown", MD_DNS_REFUSED, { NULL }, MD_DNSBL_UNKNOWN, 0 },
    { "timeout: unknown", MD_DNS_TIMEOUT, { NULL }, MD_DNSBL_UNKNOWN, 0 },
    { "bad reply: unknown", MD_DNS_BADRESP, { NULL }, MD_DNSBL_UNKNOWN, 0 },
    { "local error: unknown", MD_DNS_ERROR, { NULL }, MD_DNSBL_UNKNOWN, 0 },
    { "a web server's address: unusable", MD_DNS_ANSWER, { "198.51.100.80" }, MD_DNSBL_UNUSABLE,
      W(NOT_LOOPBACK) },
    { "a code beside a foreign address: unusable", MD_DNS_ANSWER, { "127.0.0.2", "192.0.2.80" },
      MD_DNSBL_UNUSABLE, W(NOT_LOOPBACK) },
    { "0.0.0.0: unusable", MD_DNS_ANSWER, { "0.0.0.0" }, MD_DNSBL_UNUSABLE, W(NOT_LOOPBACK) },
    { "128.0.0.2 is outside 127/8", MD_DNS_ANSWER, { "128.0.0.2" }, MD_DNSBL_UNUSABLE,
      W(NOT_LOOPBACK) },
    { "an IPv6 record in an A answer", MD_DNS_ANSWER, { "6:2001:db8::1" }, MD_DNSBL_UNUSABLE,
      W(NOT_LOOPBACK) },
    { "127.255.255.252: typo", MD_DNS_ANSWER, { "127.255.255.252" }, MD_DNSBL_UNUSABLE, W(TYPO) },
    { "127.255.255.254: public resolver", MD_DNS_ANSWER, { "127.255.255.254" }, MD_DNSBL_UNUSABLE,
      W(PUBLIC_RESOLVER) },
    { "127.255.255.255: excessive", MD_DNS_ANSWER, { "127.255.255.255" }, MD_DNSBL_UNUSABLE,
      W(EXCESSIVE) },
    { "127.255.255.1: another error code", MD_DNS_ANSWER, { "127.255.255.1" }, MD_DNSBL_UNUSABLE,
      W(ERROR_CODE) },
    { "127.0.0.1: query refused", MD_DNS_ANSWER, { "127.0.0.1" }, MD_DNSBL_UNUSABLE, W(REFUSED) },
    { "a listing code with an error code: unusable", MD_DNS_ANSWER,
      { "127.0.0.2", "127.255.255.254" }, MD_DNSBL_UNUSABLE, W(PUBLIC_RESOLVER) },
    { "two error codes: both reasons", MD_DNS_ANSWER, { "127.255.255.255", "203.0.113.1" },
      MD_DNSBL_UNUSABLE, W(EXCESSIVE) | W(NOT_LOOPBACK) },
};

static size_t make_addrs(const char *const *texts, md_dns_addr *out)
{
    size_t n = 0;
    for (; n < 4 && texts[n]; n++) {
        memset(&out[n], 0, sizeof out[n]);
        if (strncmp(texts[n], "6:", 2) == 0) {
            out[n].family = AF_INET6;
            inet_pton(AF_INET6, texts[n] + 2, out[n].bytes);
        } else {
            out[n].family = AF_INET;
            inet_pton(AF_INET, texts[n], out[n].bytes);
        }
        snprintf(out[n].text, sizeof out[n].text, "%s", texts[n]);
    }
    return n;
}

static void test_classify(void)
{
    for (size_t i = 0; i < sizeof class_cases / sizeof class_cases[0]; i++) {
        const class_case *c = &class_cases[i];
        md_dns_addr addrs[4];
        size_t n = make_addrs(c->addrs, addrs);
        unsigned why = 0xdead;
        md_dnsbl_state got = md_dnsbl_classify(c->outcome, addrs, n, &why);
        is_str(md_dnsbl_state_name(got), md_dnsbl_state_name(c->want), "%s: state", c->what);
        is_int(why, c->want_why, "%s: why", c->what);
    }
}

/* --- the test points of a list -------------------------------------------- */

typedef struct zone_case {
    const char *what;
    md_dns_outcome list_outcome;     /* the lookup of 127.0.0.2 (must be listed) */
    const char *list_addrs[3];
    md_dns_outcome not_outcome;      /* the lookup of 127.0.0.1 (must not be) */
    const char *not_addrs[3];
    md_dnsbl_zone_state want;
    unsigned want_why;
} zone_case;

#define ANS MD_DNS_ANSWER
#define NXD MD_DNS_NXDOMAIN

static const zone_case zone_cases[] = {
    { "proper list", ANS, { "127.0.0.2" }, NXD, { NULL }, MD_DNSBL_ZONE_USABLE, 0 },
    { "NODATA for 127.0.0.1 is fine", ANS, { "127.0.0.2" }, MD_DNS_NODATA, { NULL },
      MD_DNSBL_ZONE_USABLE, 0 },
    { "wildcard: lists 127.0.0.1", ANS, { "127.0.0.2" }, ANS, { "127.0.0.2" },
      MD_DNSBL_ZONE_UNUSABLE, W(LISTS_ALL) },
    { "no test point", NXD, { NULL }, NXD, { NULL }, MD_DNSBL_ZONE_UNUSABLE, W(MISSES_TEST) },
    { "test point NODATA", MD_DNS_NODATA, { NULL }, NXD, { NULL }, MD_DNSBL_ZONE_UNUSABLE,
      W(MISSES_TEST) },
    { "public resolver code everywhere", ANS, { "127.255.255.254" }, ANS, { "127.255.255.254" },
      MD_DNSBL_ZONE_UNUSABLE, W(PUBLIC_RESOLVER) },
    { "NXDOMAIN rewriting resolver", ANS, { "127.0.0.2" }, ANS, { "198.51.100.80" },
      MD_DNSBL_ZONE_UNUSABLE, W(NOT_LOOPBACK) },
    { "foreign address everywhere", ANS, { "198.51.100.80" }, ANS, { "198.51.100.80" },
      MD_DNSBL_ZONE_UNUSABLE, W(NOT_LOOPBACK) },
    { "REFUSED to both: refuses us", MD_DNS_REFUSED, { NULL }, MD_DNS_REFUSED, { NULL },
      MD_DNSBL_ZONE_UNUSABLE, W(REFUSED) },
    { "127.0.0.1 as the answer: refused", ANS, { "127.0.0.1" }, ANS, { "127.0.0.1" },
      MD_DNSBL_ZONE_UNUSABLE, W(REFUSED) },
    { "SERVFAIL on 127.0.0.2: unknown", MD_DNS_SERVFAIL, { NULL }, NXD, { NULL },
      MD_DNSBL_ZONE_UNKNOWN, 0 },
    { "timeout on 127.0.0.1: unknown", ANS, { "127.0.0.2" }, MD_DNS_TIMEOUT, { NULL },
      MD_DNSBL_ZONE_UNKNOWN, 0 },
    { "bad reply on both: unknown", MD_DNS_BADRESP, { NULL }, MD_DNS_BADRESP, { NULL },
      MD_DNSBL_ZONE_UNKNOWN, 0 },
    { "a reason beats a failure: lists all, other lookup timed out", MD_DNS_TIMEOUT, { NULL },
      ANS, { "127.0.0.2" }, MD_DNSBL_ZONE_UNUSABLE, W(LISTS_ALL) },
    { "a reason beats a failure: misses test, other SERVFAIL", NXD, { NULL }, MD_DNS_SERVFAIL,
      { NULL }, MD_DNSBL_ZONE_UNUSABLE, W(MISSES_TEST) },
};

static void classify_into(md_dnsbl_lookup *lk, md_dns_outcome o, const char *const *texts)
{
    md_dns_addr addrs[4];
    size_t n = make_addrs(texts, addrs);
    memset(lk, 0, sizeof *lk);
    lk->outcome = o;
    lk->state = md_dnsbl_classify(o, addrs, n, &lk->why);
}

static void test_judge_zone(void)
{
    for (size_t i = 0; i < sizeof zone_cases / sizeof zone_cases[0]; i++) {
        const zone_case *c = &zone_cases[i];
        md_dnsbl_lookup must_list, must_not;
        classify_into(&must_list, c->list_outcome, c->list_addrs);
        classify_into(&must_not, c->not_outcome, c->not_addrs);
        unsigned why = 0xdead;
        md_dnsbl_zone_state got = md_dnsbl_judge_zone(&must_list, &must_not, &why);
        is_str(md_dnsbl_zone_state_name(got), md_dnsbl_zone_state_name(c->want), "%s: state",
               c->what);
        is_int(why, c->want_why, "%s: why", c->what);
    }
}

/* --- combining ------------------------------------------------------------ */

static void test_combine(void)
{
    static const struct {
        md_dnsbl_zone_state zone;
        md_dnsbl_state answer, want;
    } cases[] = {
        { MD_DNSBL_ZONE_USABLE, MD_DNSBL_LISTED, MD_DNSBL_LISTED },
        { MD_DNSBL_ZONE_USABLE, MD_DNSBL_NOT_LISTED, MD_DNSBL_NOT_LISTED },
        { MD_DNSBL_ZONE_USABLE, MD_DNSBL_UNKNOWN, MD_DNSBL_UNKNOWN },
        { MD_DNSBL_ZONE_USABLE, MD_DNSBL_UNUSABLE, MD_DNSBL_UNUSABLE },
        /* an unusable list: nothing it says counts */
        { MD_DNSBL_ZONE_UNUSABLE, MD_DNSBL_LISTED, MD_DNSBL_UNUSABLE },
        { MD_DNSBL_ZONE_UNUSABLE, MD_DNSBL_NOT_LISTED, MD_DNSBL_UNUSABLE },
        { MD_DNSBL_ZONE_UNUSABLE, MD_DNSBL_UNUSABLE, MD_DNSBL_UNUSABLE },
        /* a failed lookup stays unknown, whatever the list */
        { MD_DNSBL_ZONE_UNUSABLE, MD_DNSBL_UNKNOWN, MD_DNSBL_UNKNOWN },
        { MD_DNSBL_ZONE_UNKNOWN, MD_DNSBL_UNKNOWN, MD_DNSBL_UNKNOWN },
        /* a list not known to work: neither a listing nor an absence */
        { MD_DNSBL_ZONE_UNKNOWN, MD_DNSBL_LISTED, MD_DNSBL_UNKNOWN },
        { MD_DNSBL_ZONE_UNKNOWN, MD_DNSBL_NOT_LISTED, MD_DNSBL_UNKNOWN },
        { MD_DNSBL_ZONE_UNKNOWN, MD_DNSBL_UNUSABLE, MD_DNSBL_UNUSABLE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_str(md_dnsbl_state_name(md_dnsbl_combine(cases[i].zone, cases[i].answer)),
               md_dnsbl_state_name(cases[i].want), "combine(%s, %s)",
               md_dnsbl_zone_state_name(cases[i].zone), md_dnsbl_state_name(cases[i].answer));
}

static void test_names(void)
{
    is_str(md_dnsbl_state_name(MD_DNSBL_NOT_LISTED), "not_listed", "state name");
    is_str(md_dnsbl_state_name(MD_DNSBL_UNUSABLE), "unusable", "state name");
    is_str(md_dnsbl_zone_state_name(MD_DNSBL_ZONE_UNKNOWN), "unknown", "zone state name");
    is_str(md_dnsbl_kind_name(MD_DNSBL_IPV6), "ipv6", "kind name");
    is_str(md_dnsbl_why_name(MD_DNSBL_WHY_PUBLIC_RESOLVER), "public_resolver", "why name");
    is_str(md_dnsbl_why_name(MD_DNSBL_WHY_LISTS_ALL), "lists_all", "why name");
    ok(md_dnsbl_why_name(MD_DNSBL_WHY_LISTS_ALL | MD_DNSBL_WHY_TYPO) == NULL,
       "why name of two bits is NULL");
    static const struct {
        const char *id;
        md_severity sev;
    } ids[] = {
        { "dnsbl.listed", MD_SEV_CRITICAL },
        { "dnsbl.unusable", MD_SEV_WARNING },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const md_catalogue_entry *e = md_catalogue_find(ids[i].id);
        ok(e != NULL, "%s is in the catalogue", ids[i].id);
        if (e)
            is_str(md_severity_name(e->severity), md_severity_name(ids[i].sev), "%s severity",
                   ids[i].id);
    }
}

/* Configurations refused before anything is queued (done never runs). */
static void never_called(void *arg, md_dnsbl_result *r)
{
    (void)r;
    *(int *)arg = 1;
}

static void test_config_errors(void)
{
    md_dns_config dcfg = { NULL, 0, 1.0, 0, 0, 0 };
    const char *servers[] = { "127.0.0.1:9" };
    dcfg.servers = servers;
    dcfg.nservers = 1;
    md_error err;
    md_dns *dns = md_dns_new(&dcfg, &err);
    ok(dns != NULL, "md_dns_new");
    if (dns == NULL)
        return;
    static const char *const zones[] = { "bl.test" };
    static const char *const bad_zone[] = { "bl..test" };
    static const char *const domains[] = { "example.com" };
    md_dnsbl_sender good = { "192.0.2.10", NULL }, bad_ip = { "192.0.2.300", NULL },
                    bad_helo = { "192.0.2.10", "-bad-.test" };
    static const char *const long_zone[] = {
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test" };
    md_dnsbl_sender v6 = { "2001:db8::10", NULL };
    struct {
        const char *what;
        md_dnsbl_config cfg;
        const char *want;
    } cases[] = {
        { "bad IP", { &bad_ip, 1, zones, 1, NULL, 0, NULL, 0, 0 }, "not an IPv4 or IPv6" },
        { "bad HELO", { &bad_helo, 1, zones, 1, NULL, 0, NULL, 0, 0 }, "HELO name" },
        { "bad zone", { &good, 1, bad_zone, 1, NULL, 0, NULL, 0, 0 }, "list zone" },
        { "zones without IPs", { NULL, 0, zones, 1, NULL, 0, NULL, 0, 0 }, "no sending IP" },
        { "domains without lists", { NULL, 0, NULL, 0, domains, 1, NULL, 0, 0 },
          "no domain list zone" },
        { "domain lists without domains", { NULL, 0, NULL, 0, NULL, 0, zones, 1, 0 },
          "no sending domain" },
        { "nothing", { &good, 1, NULL, 0, NULL, 0, NULL, 0, 1 }, "nothing to check" },
        { "zone too long for IPv6", { &v6, 1, long_zone, 1, NULL, 0, NULL, 0, 1 }, "too long" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int called = 0;
        md_error_clear(&err);
        md_status st = md_dnsbl_start(dns, &cases[i].cfg, never_called, &called, &err);
        is_int(st, MD_CONFIG, "%s: MD_CONFIG", cases[i].what);
        ok(strstr(err.text, cases[i].want) != NULL, "%s: says '%s': %s", cases[i].what,
           cases[i].want, err.text);
        is_int(md_dns_pending(dns), 0, "%s: nothing queued", cases[i].what);
        is_int(called, 0, "%s: done not called", cases[i].what);
    }
    /* The same long zone is fine for IPv4: the limit is per query name.
     * Nothing listens on the discard port: the check ends unknown. */
    md_dnsbl_config v4cfg = { &good, 1, long_zone, 1, NULL, 0, NULL, 0, 1 };
    md_dnsbl_result *r = md_dnsbl_check(dns, &v4cfg, &err);
    ok(r != NULL, "a 196-character zone is fine for IPv4");
    if (r != NULL) {
        is_int(r->nlistings, 1, "one listing");
        if (r->nlistings == 1)
            is_str(md_dnsbl_state_name(r->listings[0].state), "unknown",
                   "no server: unknown, not 'not listed'");
    }
    md_dnsbl_result_free(r);
    md_dns_free(dns);
}

int main(void)
{
    test_query_names();
    test_classify();
    test_judge_zone();
    test_combine();
    test_names();
    test_config_errors();
    return tap_done();
}
