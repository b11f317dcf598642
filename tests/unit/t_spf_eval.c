/* Unit tests for md_spf_evaluate's own isolation of libspf2 (a child
 * process per evaluation): a crash or hang inside libspf2 leaves the RFC
 * result and adds spf.libspf2_crashed.  No DNS server: 127.0.0.1:9 refuses,
 * so the walk ends in temperror quickly and libspf2 still runs. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "spf/spf.h"
#include "tap.h"

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

    rq.ip = "not-an-ip";
    ok(md_spf_evaluate(dns, &rq, &err) == NULL && err.status == MD_CONFIG, "bad IP refused: %s", err.text);
    md_dns_free(dns);
    return tap_done();
}
