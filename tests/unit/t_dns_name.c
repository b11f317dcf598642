/* Unit tests for lib/dns name: validation, case, trailing dot, IDNA. */
#include "config.h"
#include "dns/name.h"
#include "tap.h"

int main(void)
{
    static const struct {
        const char *in, *ascii, *unicode;   /* ascii NULL: must be rejected */
    } cases[] = {
        { "example.test", "example.test", "" },
        { "Example.TEST", "example.test", "" },
        { "example.test.", "example.test", "" },
        { "a-b.example.test", "a-b.example.test", "" },
        { "test", "test", "" },
        { "b\xc3\xbc" "cher.test", "xn--bcher-kva.test", "b\xc3\xbc" "cher.test" },
        { "xn--bcher-kva.test", "xn--bcher-kva.test", "b\xc3\xbc" "cher.test" },
        { "B\xc3\x9c" "CHER.test", "xn--bcher-kva.test", "b\xc3\xbc" "cher.test" },
        { "", NULL, NULL },
        { ".", NULL, NULL },
        { "example.test..", NULL, NULL },
        { "foo..test", NULL, NULL },
        { ".foo.test", NULL, NULL },
        { "exa mple.test", NULL, NULL },
        { "exa\tmple.test", NULL, NULL },
        { "under_score.test", NULL, NULL },
        { "-lead.test", NULL, NULL },
        { "trail-.test", NULL, NULL },
        { "192.0.2.1", NULL, NULL },
        { "[192.0.2.1]", NULL, NULL },
        { "2001:db8::1", NULL, NULL },
        { "xn--zz.test", NULL, NULL },
        { "a\xff.test", NULL, NULL },
        { "1234567890123456789012345678901234567890123456789012345678901234.test", NULL, NULL },
    };
    char ascii[254], unicode[512];
    md_error err;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_status st = md_dns_name_normalize(cases[i].in, ascii, sizeof ascii, unicode,
                                             sizeof unicode, &err);
        if (cases[i].ascii == NULL) {
            ok(st == MD_CONFIG && err.text[0] != '\0', "rejected: '%s' (%s)", cases[i].in,
               st == MD_CONFIG ? err.text : "accepted");
        } else {
            is_int(st, MD_OK, "accepted: '%s'", cases[i].in);
            is_str(ascii, cases[i].ascii, "ascii form of '%s'", cases[i].in);
            is_str(unicode, cases[i].unicode, "unicode form of '%s'", cases[i].in);
        }
    }

    /* 253 characters is the limit; 254 is over it. */
    char longname[300];
    size_t o = 0;
    while (o + 4 <= 248) {
        memcpy(longname + o, "abc.", 4);
        o += 4;
    }
    memcpy(longname + o, "a", 1);    /* 249 */
    longname[o + 1] = '\0';
    ok(md_dns_name_normalize(longname, ascii, sizeof ascii, NULL, 0, &err) == MD_OK,
       "a %zu-character name is accepted", strlen(longname));
    strcat(longname, "bcde");        /* 253 */
    ok(md_dns_name_normalize(longname, ascii, sizeof ascii, NULL, 0, &err) == MD_OK,
       "a %zu-character name is accepted", strlen(longname));
    strcat(longname, "f");           /* 254 */
    ok(md_dns_name_normalize(longname, ascii, sizeof ascii, NULL, 0, &err) == MD_CONFIG,
       "a %zu-character name is rejected", strlen(longname));

    ok(md_dns_name_is_ip_literal("192.0.2.1"), "IPv4 literal");
    ok(md_dns_name_is_ip_literal("[IPv6:2001:db8::1]"), "IPv6 literal in brackets");
    ok(!md_dns_name_is_ip_literal("mx.example.test"), "host name is not a literal");
    return tap_done();
}
