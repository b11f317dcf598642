/* Unit tests for lib/rdns: address parsing, reverse names, the FCrDNS and
 * HELO judgement.  Tables; no DNS. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "rdns/rdns.h"
#include "tap.h"

static void test_addr_parse(void)
{
    static const struct {
        const char *in;
        int ok;
        const char *text;
    } cases[] = {
        { "192.0.2.10", 1, "192.0.2.10" },
        { "2001:db8::10", 1, "2001:db8::10" },
        { "2001:DB8:0:0:0:0:0:10", 1, "2001:db8::10" },
        { "::ffff:192.0.2.10", 1, "192.0.2.10" },     /* mapped: the IPv4 address receivers see */
        { "::ffff:7f00:2", 1, "127.0.0.2" },
        { "::1", 1, "::1" },
        { "192.0.2", 0, NULL },
        { "192.0.2.256", 0, NULL },
        { "[2001:db8::10]", 0, NULL },
        { "mail.example.com", 0, NULL },
        { "", 0, NULL },
        { " 192.0.2.10", 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_dns_addr a;
        md_error err;
        md_status st = md_rdns_addr_parse(cases[i].in, &a, &err);
        is_int(st == MD_OK, cases[i].ok, "addr_parse('%s') ok", cases[i].in);
        if (cases[i].ok && st == MD_OK)
            is_str(a.text, cases[i].text, "addr_parse('%s') text", cases[i].in);
        if (!cases[i].ok && st != MD_OK)
            ok(strstr(err.text, "not an IPv4 or IPv6 address") != NULL,
               "addr_parse('%s') says why: %s", cases[i].in, err.text);
    }
    md_error err;
    md_dns_addr a;
    ok(md_rdns_addr_parse(NULL, &a, &err) == MD_CONFIG, "addr_parse(NULL) is MD_CONFIG");
}

static void test_reverse_name(void)
{
    static const struct {
        const char *ip, *suffix, *want;
    } cases[] = {
        { "192.0.2.10", NULL, "10.2.0.192.in-addr.arpa" },
        { "192.0.2.10", "bl.test", "10.2.0.192.bl.test" },
        { "192.0.2.10", "bl.test.", "10.2.0.192.bl.test" },   /* absolute form */
        { "127.0.0.2", "bl.test", "2.0.0.127.bl.test" },
        { "0.0.0.0", NULL, "0.0.0.0.in-addr.arpa" },
        { "255.255.255.255", "x.test", "255.255.255.255.x.test" },
        { "2001:db8::10", NULL,
          "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" },
        { "2001:db8::10", "bl.test",
          "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" },
        { "2001:db8:1234:5678:9abc:def0:fedc:ba98", NULL,
          "8.9.a.b.c.d.e.f.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.8.b.d.0.1.0.0.2.ip6.arpa" },
        { "::1", NULL,
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_dns_addr a;
        char out[MD_RDNS_REVERSE_MAX];
        md_rdns_addr_parse(cases[i].ip, &a, NULL);
        int rc = md_rdns_reverse_name(&a, cases[i].suffix, out, sizeof out);
        is_int(rc, 0, "reverse(%s, %s) succeeds", cases[i].ip, cases[i].suffix ? cases[i].suffix : "NULL");
        is_str(out, cases[i].want, "reverse(%s, %s)", cases[i].ip,
               cases[i].suffix ? cases[i].suffix : "NULL");
    }

    /* 32 nibble labels for IPv6. */
    md_dns_addr a;
    char out[MD_RDNS_REVERSE_MAX];
    md_rdns_addr_parse("2001:db8::10", &a, NULL);
    md_rdns_reverse_name(&a, NULL, out, sizeof out);
    size_t dots = 0;
    for (const char *p = out; *p; p++)
        dots += *p == '.';
    is_int(dots, 33, "IPv6 reverse name has 32 nibble labels + ip6.arpa");

    /* Names over 253 characters or over the buffer are refused, not cut. */
    char zone[300];
    memset(zone, 'a', 190);
    zone[190] = '\0';
    char big[300];
    is_int(md_rdns_reverse_name(&a, zone, big, sizeof big), -1, "64 + 190 > 253: refused");
    is_str(big, "", "refused name leaves out empty");
    zone[189] = '\0';
    is_int(md_rdns_reverse_name(&a, zone, big, sizeof big), 0, "64 + 189 = 253 fits");
    zone[189] = 'a';
    md_rdns_addr_parse("192.0.2.10", &a, NULL);
    is_int(md_rdns_reverse_name(&a, zone, big, sizeof big), 0, "11 + 190 fits");
    char small[16];
    is_int(md_rdns_reverse_name(&a, NULL, small, sizeof small), -1, "too small a buffer: refused");
    is_int(md_rdns_reverse_name(&a, "", out, sizeof out), -1, "empty suffix: refused");
}

/* --- the judgement --------------------------------------------------------- */

typedef struct fwd {
    const char *name;
    int asked;
    md_dns_outcome outcome;
    int matches;
} fwd;

typedef struct judge_case {
    const char *what;
    md_dns_outcome ptr;
    fwd names[3];
    size_t nnames;
    fwd helo;                      /* name NULL: none */
    md_rdns_state want;
    const char *want_confirmed;
    md_rdns_helo_state want_helo;
} judge_case;

#define ANS MD_DNS_ANSWER
#define NOD MD_DNS_NODATA
#define NXD MD_DNS_NXDOMAIN
#define SRV MD_DNS_SERVFAIL
#define TMO MD_DNS_TIMEOUT
#define REF MD_DNS_REFUSED

static const judge_case judge_cases[] = {
    { "confirmed", ANS, { { "mail.test", 1, ANS, 1 } }, 1, { NULL, 0, 0, 0 },
      MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_NONE },
    { "second name confirms", ANS, { { "a.test", 1, NXD, 0 }, { "b.test", 1, ANS, 1 } }, 2,
      { NULL, 0, 0, 0 }, MD_RDNS_CONFIRMED, "b.test", MD_RDNS_HELO_NONE },
    { "one confirms, another failed: confirmed", ANS,
      { { "a.test", 1, SRV, 0 }, { "b.test", 1, ANS, 1 } }, 2, { NULL, 0, 0, 0 },
      MD_RDNS_CONFIRMED, "b.test", MD_RDNS_HELO_NONE },
    { "NXDOMAIN: missing", NXD, { { 0 } }, 0, { NULL, 0, 0, 0 },
      MD_RDNS_MISSING, NULL, MD_RDNS_HELO_NONE },
    { "NODATA: missing", NOD, { { 0 } }, 0, { NULL, 0, 0, 0 },
      MD_RDNS_MISSING, NULL, MD_RDNS_HELO_NONE },
    { "SERVFAIL: unknown, never missing", SRV, { { 0 } }, 0, { NULL, 0, 0, 0 },
      MD_RDNS_UNKNOWN, NULL, MD_RDNS_HELO_NONE },
    { "REFUSED: unknown", REF, { { 0 } }, 0, { NULL, 0, 0, 0 },
      MD_RDNS_UNKNOWN, NULL, MD_RDNS_HELO_NONE },
    { "timeout: unknown", TMO, { { 0 } }, 0, { NULL, 0, 0, 0 },
      MD_RDNS_UNKNOWN, NULL, MD_RDNS_HELO_NONE },
    { "names map elsewhere: mismatch", ANS, { { "a.test", 1, ANS, 0 }, { "b.test", 1, NXD, 0 } },
      2, { NULL, 0, 0, 0 }, MD_RDNS_MISMATCH, NULL, MD_RDNS_HELO_NONE },
    { "name has no A: mismatch", ANS, { { "a.test", 1, NOD, 0 } }, 1, { NULL, 0, 0, 0 },
      MD_RDNS_MISMATCH, NULL, MD_RDNS_HELO_NONE },
    { "forward lookup failed: unknown, never mismatch", ANS,
      { { "a.test", 1, ANS, 0 }, { "b.test", 1, TMO, 0 } }, 2, { NULL, 0, 0, 0 },
      MD_RDNS_UNKNOWN, NULL, MD_RDNS_HELO_NONE },
    { "a name past the limit is not asked: its absence of answer is no failure", ANS,
      { { "a.test", 1, NXD, 0 }, { "z.test", 0, ANS, 0 } }, 2, { NULL, 0, 0, 0 },
      MD_RDNS_MISMATCH, NULL, MD_RDNS_HELO_NONE },
    { "HELO is the confirmed name", ANS, { { "mail.test", 1, ANS, 1 } }, 1,
      { "mail.test", 1, ANS, 1 }, MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_OK },
    { "HELO is another confirmed name", ANS,
      { { "a.test", 1, ANS, 1 }, { "mail.test", 1, ANS, 1 } }, 2,
      { "mail.test", 1, ANS, 1 }, MD_RDNS_CONFIRMED, "a.test", MD_RDNS_HELO_OK },
    { "HELO resolves to the IP but is not the confirmed name", ANS,
      { { "mail.test", 1, ANS, 1 } }, 1, { "other.test", 1, ANS, 1 },
      MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_MISMATCH },
    { "HELO is a PTR name that does not confirm", ANS,
      { { "a.test", 1, ANS, 1 }, { "other.test", 1, ANS, 0 } }, 2, { "other.test", 1, ANS, 1 },
      MD_RDNS_CONFIRMED, "a.test", MD_RDNS_HELO_MISMATCH },
    { "HELO does not resolve", ANS, { { "mail.test", 1, ANS, 1 } }, 1,
      { "nx.test", 1, NXD, 0 }, MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_MISMATCH },
    { "HELO resolves elsewhere", ANS, { { "mail.test", 1, ANS, 1 } }, 1,
      { "mail.test", 1, ANS, 0 }, MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_MISMATCH },
    { "HELO lookup failed: unknown, never mismatch", ANS, { { "mail.test", 1, ANS, 1 } }, 1,
      { "mail.test", 1, SRV, 0 }, MD_RDNS_CONFIRMED, "mail.test", MD_RDNS_HELO_UNKNOWN },
    { "HELO resolves, no PTR: resolves (rdns.missing says the rest)", NXD, { { 0 } }, 0,
      { "mail.test", 1, ANS, 1 }, MD_RDNS_MISSING, NULL, MD_RDNS_HELO_RESOLVES },
    { "HELO resolves, PTR mismatch", ANS, { { "a.test", 1, ANS, 0 } }, 1,
      { "mail.test", 1, ANS, 1 }, MD_RDNS_MISMATCH, NULL, MD_RDNS_HELO_RESOLVES },
    { "HELO resolves, reverse DNS unknown: unknown", SRV, { { 0 } }, 0,
      { "mail.test", 1, ANS, 1 }, MD_RDNS_UNKNOWN, NULL, MD_RDNS_HELO_UNKNOWN },
    { "HELO does not resolve, no PTR: mismatch", NXD, { { 0 } }, 0,
      { "mail.test", 1, NXD, 0 }, MD_RDNS_MISSING, NULL, MD_RDNS_HELO_MISMATCH },
};

static void test_judge(void)
{
    for (size_t i = 0; i < sizeof judge_cases / sizeof judge_cases[0]; i++) {
        const judge_case *c = &judge_cases[i];
        md_rdns_result *r = calloc(1, sizeof *r);
        md_rdns_addr_parse("192.0.2.10", &r->ip, NULL);
        r->ptr = c->ptr;
        r->nnames = c->nnames;
        r->names = c->nnames ? calloc(c->nnames, sizeof *r->names) : NULL;
        for (size_t k = 0; k < c->nnames; k++) {
            r->names[k].name = strdup(c->names[k].name);
            r->names[k].asked = c->names[k].asked;
            r->names[k].outcome = c->names[k].outcome;
            r->names[k].matches = c->names[k].matches;
        }
        if (c->helo.name) {
            r->helo.name = strdup(c->helo.name);
            r->helo.asked = 1;
            r->helo.outcome = c->helo.outcome;
            r->helo.matches = c->helo.matches;
        }
        md_rdns_judge(r);
        is_str(md_rdns_state_name(r->state), md_rdns_state_name(c->want), "%s: state", c->what);
        is_str(r->confirmed, c->want_confirmed, "%s: confirmed name", c->what);
        is_str(md_rdns_helo_state_name(r->helo_state), md_rdns_helo_state_name(c->want_helo),
               "%s: helo", c->what);

        /* The findings follow the states; an unknown is never an absence. */
        md_report *rep = md_report_new("t_rdns", "192.0.2.10");
        md_rdns_result_report(r, rep);
        is_int(md_report_has(rep, "rdns.missing"), c->want == MD_RDNS_MISSING,
               "%s: rdns.missing", c->what);
        is_int(md_report_has(rep, "rdns.mismatch"), c->want == MD_RDNS_MISMATCH,
               "%s: rdns.mismatch", c->what);
        is_int(md_report_has(rep, "helo.mismatch"), c->want_helo == MD_RDNS_HELO_MISMATCH,
               "%s: helo.mismatch", c->what);
        is_int(md_report_has(rep, "dns.temporary"),
               c->want == MD_RDNS_UNKNOWN || c->want_helo == MD_RDNS_HELO_UNKNOWN,
               "%s: dns.temporary", c->what);
        md_rdns_describe(r, rep);
        json_t *j = md_report_fields(rep);
        is_str(json_string_value(json_object_get(j, "state")), md_rdns_state_name(c->want),
               "%s: JSON state", c->what);
        md_report_free(rep);
        md_rdns_result_free(r);
    }
    md_rdns_result_free(NULL);
    ok(1, "md_rdns_result_free(NULL) is a no-op");
}

static void test_catalogue(void)
{
    static const struct {
        const char *id;
        md_severity sev;
    } ids[] = {
        { "rdns.missing", MD_SEV_CRITICAL },
        { "rdns.mismatch", MD_SEV_CRITICAL },
        { "helo.mismatch", MD_SEV_WARNING },
        { "dns.temporary", MD_SEV_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const md_catalogue_entry *e = md_catalogue_find(ids[i].id);
        ok(e != NULL, "%s is in the catalogue", ids[i].id);
        if (e)
            is_str(md_severity_name(e->severity), md_severity_name(ids[i].sev), "%s severity",
                   ids[i].id);
    }
}

int main(void)
{
    test_addr_parse();
    test_reverse_name();
    test_judge();
    test_catalogue();
    return tap_done();
}
