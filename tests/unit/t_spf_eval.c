/* Unit tests for md_spf_evaluate's own isolation of libspf2 (a child
 * process per evaluation): a crash or hang inside libspf2 leaves the RFC
 * result and adds spf.libspf2_crashed.  No DNS server: 127.0.0.1:9 refuses,
 * so the walk ends in temperror quickly and libspf2 still runs. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "spf/spf-int.h"
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

static int has_finding(json_t *o, const char *id)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(o, "findings"), i, f)
        if (strcmp(json_string_value(json_object_get(f, "id")), id) == 0)
            return 1;
    return 0;
}

int main(void)
{
    const char *srv[] = { "127.0.0.1:9" };
    md_dns_config dc = { .servers = srv, .nservers = 1, .timeout = 0.5 };
    md_error err = { 0 };
    md_dns *dns = md_dns_new(&dc, &err);
    ok(dns != NULL, "resolver");
    md_spf_request rq = { .ip = "192.0.2.1", .sender = "a@example.com", .helo = "h.example.com",
                          .deadline = 2 };

    json_t *o = md_spf_evaluate(dns, &rq, &err);
    is_str(json_string_value(json_object_get(o, "result")), "temperror", "DNS failure is temperror");
    ok(has_finding(o, "spf.dns_temporary"), "with spf.dns_temporary");
    json_decref(o);

#ifdef MD_TEST_HOOKS
    static const char *const faults[] = { "libspf2-crash", "libspf2-hang" };
    for (int i = 0; i < 2; i++) {
        setenv("MAILDIAG_SPF_FAULT", faults[i], 1);
        int64_t t0 = md_now_ms();
        o = md_spf_evaluate(dns, &rq, &err);
        is_str(json_string_value(json_object_get(o, "result")), "temperror", "%s: RFC result kept", faults[i]);
        ok(has_finding(o, "spf.libspf2_crashed"), "%s: spf.libspf2_crashed", faults[i]);
        ok(json_string_value(json_object_get(json_object_get(o, "libspf2"), "crashed")) != NULL,
           "%s: libspf2.crashed says how", faults[i]);
        ok(md_now_ms() - t0 < 5000, "%s: bounded by the deadline", faults[i]);
        json_decref(o);
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
    ok(md_spf_evaluate(dns, &rq, &err) == NULL && err.status == MD_CONFIG, "bad IP refused: %s", err.text);
    md_dns_free(dns);
    return tap_done();
}
