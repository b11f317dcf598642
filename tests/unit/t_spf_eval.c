/* Unit tests for lib/spf evaluations: the RFC 7208 walk and lint over an
 * answer table in memory (no DNS), typed results and how they are
 * described, their round trip through the worker pool's encoding, and
 * md_spf_evaluate's own isolation of libspf2 (a child process per
 * evaluation): a crash or hang inside libspf2 leaves the RFC result and
 * adds spf.libspf2_crashed.  Where DNS is needed, 127.0.0.1:9 refuses, so
 * the walk ends in temperror quickly and libspf2 still runs. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "spf/spf-int.h"
#include "spf/pool.h"
#include "answer_table.h"
#include "tap.h"

/* A fake answer table for libspf2's DNS layer: x.example publishes the
 * record under test; example.x.example has an address, so a libspf2 that
 * read %{d4294967297} as %{d1} (its int wraps) would pass. */
static const char *fake_record;
static int queried_wrapped;

static const md_dns_answer *fake_lookup(void *arg, const char *name, int type)
{
    static md_dns_answer a;
    static md_dns_txt txt;
    static md_dns_addr addr = { .family = 2 /* AF_INET */, .bytes = { 192, 0, 2, 1 } };
    (void)arg;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.outcome = MD_DNS_NXDOMAIN;
    if (strcmp(name, "x.example") == 0 && type == MD_DNS_TXT) {
        txt.data = (char *)fake_record;
        txt.len = strlen(fake_record);
        a.outcome = MD_DNS_ANSWER;
        a.n = 1;
        a.txt = &txt;
    } else if (strcmp(name, "example.x.example") == 0 && type == MD_DNS_A) {
        queried_wrapped = 1;
        a.outcome = MD_DNS_ANSWER;
        a.n = 1;
        a.addr = &addr;
    }
    return &a;
}

/* The world of the walk tests (tests/zones/spf.test.zone's rules, and the
 * temporary failures a zone file cannot hold). */
static const char world[] =
    "pass.t TXT v=spf1 ip4:192.0.2.0/24 -all\n"
    "fail.t TXT v=spf1 ip4:198.51.100.1 -all exp=why.t\n"
    "why.t TXT %{i} is not allowed to send mail for %{d}\n"
    "soft.t TXT v=spf1 ~all\n"
    "neutral.t TXT v=spf1 ?all\n"
    "nospf.t TXT google-site-verification=abc\n"
    "amx.t TXT v=spf1 a mx -all\n"
    "amx.t A 198.51.100.7\n"
    "amx.t MX 10 mail.amx.t\n"
    "mail.amx.t A 192.0.2.10\n"
    "total.t TXT v=spf1 include:six1.t include:six2.t ip4:192.0.2.10 -all\n"
    "six1.t TXT v=spf1 a:h1.t a:h2.t a:h3.t a:h4.t a:h5.t a:h6.t -all\n"
    "six2.t TXT v=spf1 a:h1.t a:h2.t a:h3.t a:h4.t a:h5.t a:h6.t ?all\n"
    "h1.t A 198.51.100.1\nh2.t A 198.51.100.2\nh3.t A 198.51.100.3\n"
    "h4.t A 198.51.100.4\nh5.t A 198.51.100.5\nh6.t A 198.51.100.6\n"
    "void3.t TXT v=spf1 a:nx1.t a:nx2.t a:nx3.t ip4:192.0.2.10 -all\n"
    "two.t TXT v=spf1 -all\ntwo.t TXT v=spf1 +all\n"
    "syntax.t TXT v=spf1 ip4:192.0.2.10 foo:bar -all\n"
    "redir.t TXT v=spf1 ip4:198.51.100.1 redirect=pass.t\n"
    "redirnone.t TXT v=spf1 redirect=nospf.t\n"
    "incnone.t TXT v=spf1 include:nospf.t -all\n"
    "macro.t TXT v=spf1 exists:%{l1r-}.lp.t -all\n"
    "strong.lp.t A 127.0.0.2\n"
    "sf.t TXT servfail\n"
    "to.t TXT v=spf1 include:sf.t -all\n"
    "amxdown.t TXT v=spf1 mx:down.t -all\n"
    "down.t MX timeout\n"
    "loop.t TXT v=spf1 include:loop2.t -all\n"
    "loop2.t TXT v=spf1 include:loop.t -all\n";

static void test_walk(void)
{
    static const struct {
        const char *sender;
        const char *result, *mechanism, *why;
        int lookups, voids;
    } cases[] = {
        { "u@pass.t", "pass", "ip4:192.0.2.0/24", "spf.pass", 0, 0 },
        { "u@fail.t", "fail", "-all", "spf.fail", 0, 0 },
        { "u@soft.t", "softfail", "~all", "spf.softfail", 0, 0 },
        { "u@neutral.t", "neutral", "?all", "spf.neutral", 0, 0 },
        { "u@nospf.t", "none", NULL, "spf.none", 0, 0 },
        { "u@nx.t", "none", NULL, "spf.none", 0, 0 },
        { "u@amx.t", "pass", "mx", "spf.pass", 2, 0 },
        { "u@total.t", "permerror", NULL, "spf.lookup_limit", 11, 0 },
        { "u@void3.t", "permerror", NULL, "spf.void_limit", 3, 3 },
        { "u@two.t", "permerror", NULL, "spf.multiple_records", 0, 0 },
        { "u@syntax.t", "permerror", NULL, "spf.syntax", 0, 0 },
        { "u@redir.t", "pass", "ip4:192.0.2.0/24", "spf.pass", 1, 0 },
        { "u@redirnone.t", "permerror", NULL, "spf.redirect_no_record", 1, 0 },
        { "u@incnone.t", "permerror", NULL, "spf.include_no_record", 1, 0 },
        { "strong@macro.t", "pass", "exists:%{l1r-}.lp.t", "spf.pass", 1, 0 },
        { "u@sf.t", "temperror", NULL, "spf.dns_temporary", 0, 0 },
        { "u@to.t", "temperror", NULL, "spf.dns_temporary", 1, 0 },
        { "u@amxdown.t", "temperror", NULL, "spf.dns_temporary", 1, 0 },
        { "u@loop.t", "permerror", NULL, "spf.lookup_limit", 11, 0 },
        { "u@localhost", "none", NULL, "spf.none", 0, 0 },
    };
    answer_table *t = answer_table_parse(world, sizeof world - 1);
    spf_source src = { answer_table_resolve, t };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_spf_request rq = { .ip = "192.0.2.10", .sender = cases[i].sender,
                              .helo = "mail.example.com", .no_libspf2 = 1 };
        md_report *rep = md_report_new("t", NULL);
        md_spf_result *r = NULL;
        md_error err = { 0 };
        md_status st = spf_evaluate(&src, &rq, 0, &r, rep, &err);
        ok(st == MD_OK && r != NULL, "%s: evaluated", cases[i].sender);
        if (r == NULL) {
            md_report_free(rep);
            continue;
        }
        is_str(md_spf_code_name(r->result), cases[i].result, "%s: result", cases[i].sender);
        is_str(r->mechanism, cases[i].mechanism, "%s: mechanism", cases[i].sender);
        ok(md_report_has(rep, cases[i].why), "%s: finding %s", cases[i].sender, cases[i].why);
        is_int(r->lookups, cases[i].lookups, "%s: lookups", cases[i].sender);
        is_int(r->void_lookups, cases[i].voids, "%s: void lookups", cases[i].sender);
        ok((r->error != NULL) == (r->result >= MD_SPF_TEMPERROR), "%s: error only for errors",
           cases[i].sender);
        ok(r->libspf2.ran == 0 && strcmp(r->libspf2.why, "disabled") == 0,
           "%s: libspf2 not asked", cases[i].sender);
        md_spf_result_free(r);
        md_report_free(rep);
    }

    /* fail with exp=: the explanation, macros expanded; the tree and trace */
    md_spf_request rq = { .ip = "192.0.2.10", .sender = "u@fail.t", .no_libspf2 = 1 };
    md_report *rep = md_report_new("t", NULL);
    md_spf_result *r = NULL;
    md_error err = { 0 };
    spf_evaluate(&src, &rq, 0, &r, rep, &err);
    is_str(r->explanation, "192.0.2.10 is not allowed to send mail for fail.t", "explanation");
    ok(r->explanation_source == MD_SPF_EXP_RECORD, "explanation from exp=");
    ok(r->tree && r->tree->has_result && r->tree->result == MD_SPF_FAIL
       && strcmp(r->tree->matched, "-all") == 0, "tree: the top record failed on -all");
    ok(r->nqueries == 2 && strcmp(r->queries[1].name, "why.t") == 0
       && r->queries[1].by == MD_SPF_BY_WALK, "trace: the record and the explanation");
    ok(strstr(r->received_spf, "Received-SPF: fail (maildiag: domain of fail.t does not"
              " designate 192.0.2.10 as permitted sender)") == r->received_spf, "Received-SPF");
    is_str(r->authentication_results, "Authentication-Results: maildiag; spf=fail"
           " smtp.mailfrom=u@fail.t", "Authentication-Results");
    md_spf_result_free(r);
    md_report_free(rep);

    /* total: the include tree with each record's lookups */
    rq.sender = "u@total.t";
    rep = md_report_new("t", NULL);
    spf_evaluate(&src, &rq, 0, &r, rep, &err);
    ok(r->tree && r->tree->nchildren == 2 && r->tree->children[0]->lookups == 6
       && r->tree->children[1]->lookups == 3 && r->tree->children[0]->via == MD_SPF_VIA_INCLUDE,
       "tree: six1 counted 6, six2 stopped at 3");
    md_spf_result_free(r);
    md_report_free(rep);

    rq.ip = "not-an-ip";
    rep = md_report_new("t", NULL);
    md_status st = spf_evaluate(&src, &rq, 0, &r, rep, &err);
    ok(st == MD_CONFIG && r == NULL && md_report_count(rep) == 0,
       "bad IP refused, nothing reported: %s", err.text);
    md_report_free(rep);
    answer_table_free(t);
}

/* Bulk requests (libspf2_if_needed) hand libspf2 only what it can
 * disagree on: plain records over plain answers are not asked, and say
 * why; anything outside (exp=, macros, void lookups, errors, loopback,
 * IPv6, the HELO identity) is.  Either way the JSON line written directly
 * for the bulk tools is the one md_spf_describe and lib/report give. */
static void test_libspf2_if_needed(void)
{
    static const struct {
        const char *ip, *sender;
        int helo, asked;
    } cases[] = {
        { "192.0.2.10", "u@pass.t", 0, 0 },
        { "198.51.100.9", "u@pass.t", 0, 0 },
        { "192.0.2.10", "u@amx.t", 0, 0 },
        { "192.0.2.10", "u@redir.t", 0, 0 },
        { "192.0.2.10", "u@nospf.t", 0, 0 },
        { "192.0.2.10", "u@nx.t", 0, 0 },
        { "192.0.2.10", "u@soft.t", 0, 0 },
        { "192.0.2.10", "u@fail.t", 0, 1 },          /* exp= */
        { "192.0.2.10", "strong@macro.t", 0, 1 },    /* a macro */
        { "192.0.2.10", "u@void3.t", 0, 1 },         /* void lookups, permerror */
        { "192.0.2.10", "u@total.t", 0, 1 },         /* over 10 lookups */
        { "192.0.2.10", "u@two.t", 0, 1 },
        { "192.0.2.10", "u@syntax.t", 0, 1 },
        { "192.0.2.10", "u@to.t", 0, 1 },            /* temperror */
        { "127.0.0.1", "u@pass.t", 0, 1 },           /* libspf2 passes loopback */
        { "2001:db8::1", "u@pass.t", 0, 1 },
        { "::ffff:192.0.2.10", "u@pass.t", 0, 1 },
        { "192.0.2.10", "u@pass.t", 1, 1 },          /* HELO identity */
        { "192.0.2.10", "a@b@pass.t", 0, 1 },
        { "192.0.2.10", "u@pass.t.", 0, 1 },
    };
    answer_table *t = answer_table_parse(world, sizeof world - 1);
    spf_source src = { answer_table_resolve, t };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int always = 0; always < 2; always++) {
            md_spf_request rq = { .ip = cases[i].ip, .sender = cases[i].sender,
                                  .helo = "pass.t", .libspf2_if_needed = !always,
                                  .identity = cases[i].helo ? MD_SPF_ID_HELO : MD_SPF_ID_MAILFROM };
            md_report *rep = md_report_new("t", NULL);
            md_spf_result *r = NULL;
            md_error err = { 0 };
            spf_evaluate(&src, &rq, 1, &r, rep, &err);
            if (r == NULL) {
                ok(0, "%s %s: evaluated", cases[i].ip, cases[i].sender);
                md_report_free(rep);
                continue;
            }
            int want = always || cases[i].asked;
            ok(r->libspf2.ran == want, "%s %s%s: libspf2 %s", cases[i].ip, cases[i].sender,
               always ? " (always)" : "", want ? "asked" : "not asked");
            if (!r->libspf2.ran)
                ok(r->libspf2.why && strncmp(r->libspf2.why, "not needed: ", 12) == 0,
                   "%s %s: why: %s", cases[i].ip, cases[i].sender, r->libspf2.why);
            else if (always && !r->libspf2.crashed && !cases[i].asked)
                ok(r->libspf2.agrees, "%s %s: libspf2 agrees", cases[i].ip, cases[i].sender);
            md_buf direct = { 0 };
            int wrote = spf_result_append_json(&direct, r, rep, 0);
            ok(wrote == 0, "%s %s: direct JSON", cases[i].ip, cases[i].sender);
            md_buf_add(&direct, "", 1);
            md_report *d = md_report_new("t", NULL);
            md_report_add_findings(d, rep);
            md_spf_describe(r, d, MD_SPF_DESCRIBE_JSON_ONLY);
            md_buf via = { 0 };
            md_report_append_json(d, &via);
            md_buf_add(&via, "", 1);
            is_str(direct.data, via.data, "%s %s%s: direct JSON is the described JSON",
                   cases[i].ip, cases[i].sender, always ? " (always)" : "");
            size_t len = direct.len;
            wrote = spf_result_append_json(&direct, r, d, 0);
            ok(wrote == -1 && direct.len == len, "not written over a report that has fields");
            md_buf_free(&direct);
            md_buf_free(&via);
            md_report_free(d);
            md_spf_result_free(r);
            md_report_free(rep);
        }
    }
    answer_table_free(t);
}

static void test_lint(void)
{
    static const struct { const char *domain, *want; int lookups; } cases[] = {
        { "pass.t", "spf.ok", 0 },
        { "nospf.t", "spf.no_record", 0 },
        { "total.t", "spf.lookup_limit", 11 },
        { "void3.t", "spf.void_limit", 3 },
        { "two.t", "spf.multiple_records", 0 },
        { "loop.t", "spf.include_loop", 2 },
        { "neutral.t", "spf.neutral_all", 0 },
        { "sf.t", "spf.dns_temporary", 0 },
    };
    answer_table *t = answer_table_parse(world, sizeof world - 1);
    spf_source src = { answer_table_resolve, t };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_report *rep = md_report_new("t", NULL);
        md_report_add(rep, "dmarc.ok", MD_SEV_OK, "another check's finding");
        md_spf_result *r = NULL;
        md_error err = { 0 };
        md_status st = spf_lint(&src, cases[i].domain, &r, rep, &err);
        ok(st == MD_OK && r && r->kind == MD_SPF_LINT, "lint %s", cases[i].domain);
        if (r == NULL) {
            md_report_free(rep);
            continue;
        }
        ok(md_report_has(rep, cases[i].want), "lint %s: %s", cases[i].domain, cases[i].want);
        is_int(r->lookups, cases[i].lookups, "lint %s: lookups", cases[i].domain);
        ok(strcmp(md_report_get(rep, 0)->id, "dmarc.ok") == 0, "lint %s: adds after what"
           " the report held", cases[i].domain);
        md_spf_result_free(r);
        md_report_free(rep);
    }
    md_report *rep = md_report_new("t", NULL);
    md_spf_result *r = NULL;
    md_error err = { 0 };
    md_status st = spf_lint(&src, "localhost", &r, rep, &err);
    ok(st == MD_CONFIG && r == NULL, "lint of an unusable domain refused: %s", err.text);
    md_report_free(rep);
    answer_table_free(t);
}

/* The JSON lib/report writes for r described. */
static char *described(const md_spf_result *r, const md_report *findings)
{
    md_report *rep = md_report_new("t", NULL);
    md_report_add_findings(rep, findings);
    md_spf_describe(r, rep, 0);
    md_buf b = { 0 };
    md_report_append_json(rep, &b);
    md_buf_add(&b, "", 1);
    md_report_free(rep);
    return b.data;
}

/* The worker pool sends typed results as bytes: what arrives describes
 * exactly as what was sent. */
static void test_codec(void)
{
    answer_table *t = answer_table_parse(world, sizeof world - 1);
    spf_source src = { answer_table_resolve, t };
    static const char *const senders[] = { "u@total.t", "u@fail.t", "strong@macro.t", "u@to.t" };
    for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
        md_spf_request rq = { .ip = "192.0.2.10", .sender = senders[i], .helo = "h.t",
                              .no_libspf2 = 1 };
        md_report *rep = md_report_new("t", NULL);
        md_spf_result *r = NULL;
        md_error err = { 0 };
        spf_evaluate(&src, &rq, 0, &r, rep, &err);
        spf_result_crashed(r, rep, "killed by signal 11 (Segmentation fault)");
        md_buf b = { 0 };
        spf_result_encode(&b, r, rep);
        md_report *rep2 = md_report_new("t", NULL);
        md_spf_result *r2 = spf_result_decode(b.data, b.len, rep2);
        ok(r2 != NULL, "%s: decoded", senders[i]);
        char *want = described(r, rep), *got = r2 ? described(r2, rep2) : NULL;
        is_str(got, want, "%s: the same after the round trip", senders[i]);
        /* every cut of the bytes is refused, never read past */
        int refused = 1;
        for (size_t cut = 0; cut < b.len; cut += 7) {
            md_report *rep3 = md_report_new("t", NULL);
            md_spf_result *r3 = spf_result_decode(b.data, cut, rep3);
            refused = refused && r3 == NULL;
            md_spf_result_free(r3);
            md_report_free(rep3);
        }
        ok(refused, "%s: a cut encoding is refused", senders[i]);
        free(want);
        free(got);
        free(b.data);
        md_spf_result_free(r);
        md_spf_result_free(r2);
        md_report_free(rep);
        md_report_free(rep2);
    }
    /* a lint, and the results without an evaluation */
    md_report *rep = md_report_new("t", NULL);
    md_spf_result *r = NULL;
    md_error err = { 0 };
    spf_lint(&src, "loop.t", &r, rep, &err);
    md_spf_result *inv = md_spf_result_invalid("");
    md_spf_result *failed = spf_result_failed("192.0.2.1", "u@x.t", NULL, NULL, "killed", rep);
    const md_spf_result *all[] = { r, inv, failed };
    for (size_t i = 0; i < 3; i++) {
        md_buf b = { 0 };
        spf_result_encode(&b, all[i], rep);
        md_report *rep2 = md_report_new("t", NULL);
        md_spf_result *r2 = spf_result_decode(b.data, b.len, rep2);
        char *want = described(all[i], rep), *got = r2 ? described(r2, rep2) : NULL;
        is_str(got, want, "kind %d: the same after the round trip", (int)all[i]->kind);
        free(want);
        free(got);
        free(b.data);
        md_spf_result_free(r2);
        md_report_free(rep2);
    }
    md_spf_result_free(r);
    md_spf_result_free(inv);
    md_spf_result_free(failed);
    md_report_free(rep);
    answer_table_free(t);
}

/* The pool's typed results describe to what its workers render. */
static void test_pool(void)
{
    const char *srv[] = { "127.0.0.1:9" };
    md_spf_pool_config pc = { .dns = { .servers = srv, .nservers = 1, .timeout = 0.5 },
                              .workers = 1, .deadline = 10 };
    md_spf_request rq = { .ip = "192.0.2.1", .sender = "a@example.com", .helo = "h.example.com",
                          .no_libspf2 = 1, .deadline = 2 };
    char *got[2] = { NULL, NULL };
    for (int mode = 0; mode < 2; mode++) {
        md_error err = { 0 };
        pc.output = mode == 0 ? MD_SPF_OUT_OBJECT : MD_SPF_OUT_JSON;
        md_spf_pool *p = md_spf_pool_new(&pc, &err);
        ok(p != NULL, "pool (%s)", err.text);
        if (p == NULL)
            return;
        md_spf_pool_submit(p, &rq, (void *)&rq, &err);
        md_spf_pool_result res;
        int got1 = md_spf_pool_next(p, &res);
        ok(got1 == 1 && res.tag == &rq, "a result, with its tag");
        if (mode == 0) {
            ok(res.result != NULL && res.result->result == MD_SPF_TEMPERROR
               && md_report_has(res.report, "spf.dns_temporary"), "typed: temperror");
            if (res.result)
                got[0] = described(res.result, res.report);
        } else {
            got[1] = res.rendered ? md_xstrndup(res.rendered, res.len) : NULL;
        }
        md_spf_pool_result_clear(&res);
        md_spf_pool_free(p);
    }
    /* the query detail names the server's answer, the same both times */
    is_str(got[0], got[1], "typed result described = the worker's rendering");
    free(got[0]);
    free(got[1]);
}

int main(void)
{
    test_walk();
    test_libspf2_if_needed();
    test_lint();
    test_codec();
    test_pool();

    const char *srv[] = { "127.0.0.1:9" };
    md_dns_config dc = { .servers = srv, .nservers = 1, .timeout = 0.5 };
    md_error err = { 0 };
    md_dns *dns = md_dns_new(&dc, &err);
    ok(dns != NULL, "resolver");
    md_spf_request rq = { .ip = "192.0.2.1", .sender = "a@example.com", .helo = "h.example.com",
                          .deadline = 2 };

    md_report *rep = md_report_new("t", NULL);
    md_spf_result *o = NULL;
    md_spf_evaluate(dns, &rq, &o, rep, &err);
    is_str(o ? md_spf_code_name(o->result) : NULL, "temperror", "DNS failure is temperror");
    ok(md_report_has(rep, "spf.dns_temporary"), "with spf.dns_temporary");
    md_spf_result_free(o);
    md_report_free(rep);

#ifdef MD_TEST_HOOKS
    static const char *const faults[] = { "libspf2-crash", "libspf2-hang" };
    for (int i = 0; i < 2; i++) {
        setenv("MAILDIAG_SPF_FAULT", faults[i], 1);
        int64_t t0 = md_now_ms();
        rep = md_report_new("t", NULL);
        md_spf_evaluate(dns, &rq, &o, rep, &err);
        is_str(o ? md_spf_code_name(o->result) : NULL, "temperror", "%s: RFC result kept", faults[i]);
        ok(md_report_has(rep, "spf.libspf2_crashed"), "%s: spf.libspf2_crashed", faults[i]);
        ok(o && o->libspf2.crashed != NULL, "%s: libspf2.crashed says how", faults[i]);
        ok(md_now_ms() - t0 < 5000, "%s: bounded by the deadline", faults[i]);
        md_spf_result_free(o);
        md_report_free(rep);
    }
    unsetenv("MAILDIAG_SPF_FAULT");
#else
    printf("# SKIP libspf2 crash and hang: MAILDIAG_SPF_FAULT needs ./configure --enable-test-hooks\n");
#endif

    /* Digit transformers over 128 are valid (RFC 7208 7.1) but libspf2
     * 1.2.10 refuses them, and reads %{d4294967297} as %{d1}: its layer
     * never hands such a record over, and nothing crashes (in this process:
     * isolate 0, so a crash would fail the test). */
    static const char *const big[] = {
        "v=spf1 exists:%{d4294967297}.x.example -all",
        "v=spf1 exists:%{l999r}.x.example -all",
        "v=spf1 exists:%{d99999999999999999999999}.x.example -all",
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        spf_libspf2_out lo;
        fake_record = big[i];
        queried_wrapped = 0;
        spf_libspf2_evaluate(fake_lookup, NULL, "192.0.2.10", "a.b@x.example", "h.example.com",
                             0, md_now_ms() + 5000, 0, &lo);
        ok(!lo.crashed && lo.result[0] != '\0', "libspf2 with '%s': ran, no crash (%s%s%s)",
           big[i], lo.result, lo.error[0] ? ": " : "", lo.error);
        ok(!queried_wrapped && strcmp(lo.result, "pass") != 0,
           "libspf2 with '%s': the record was withheld, not misread", big[i]);
    }
    fake_record = "v=spf1 exists:%{d1}.x.example -all";   /* the control */
    queried_wrapped = 0;
    spf_libspf2_out lo;
    spf_libspf2_evaluate(fake_lookup, NULL, "192.0.2.10", "a.b@x.example", "h.example.com",
                         0, md_now_ms() + 5000, 0, &lo);
    ok(queried_wrapped && strcmp(lo.result, "pass") == 0, "control: %%{d1} reaches libspf2 (%s)",
       lo.result);

    rq.ip = "not-an-ip";
    rep = md_report_new("t", NULL);
    md_status st = md_spf_evaluate(dns, &rq, &o, rep, &err);
    ok(st == MD_CONFIG && o == NULL && md_report_count(rep) == 0, "bad IP refused: %s", err.text);
    md_report_free(rep);
    md_dns_free(dns);
    return tap_done();
}
