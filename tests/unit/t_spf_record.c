/* Unit tests for lib/spf record: RFC 7208 syntax (with the column of the
 * error), record selection, and macro expansion (section 7). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "spf/spf-int.h"
#include "tap.h"

static const struct { const char *rec; int valid; const char *where; } syntax[] = {
    { "v=spf1", 1, NULL },
    { "v=spf1 -all", 1, NULL },
    { "v=spf1  ip4:192.0.2.0/24   ~all ", 1, NULL },
    { "v=spf1 a mx/24 a:x.example.com//64 mx:x.example.com/24//64 -all", 1, NULL },
    { "v=spf1 include:_spf.%{d} exists:%{ir}.%{l1r-}.x.example.com -all", 1, NULL },
    { "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.1 ?all", 1, NULL },
    { "v=spf1 redirect=_spf.example.com", 1, NULL },
    { "v=spf1 -all moo=%{d}.x", 1, NULL },                       /* unknown modifier */
    { "v=spf1 foo:bar -all", 0, "column 8" },                     /* unknown mechanism */
    { "v=spf1 ip4:192.0.2.0/33 -all", 0, "column 8" },
    { "v=spf1 ip4:192.0.2.01 -all", 0, "column 8" },              /* leading zero */
    { "v=spf1 a/0 a//129", 0, "column 12" },
    { "v=spf1 a:example -all", 0, "column 10" },                  /* one label */
    { "v=spf1 a:example.123 -all", 0, "column 18" },              /* numeric top label */
    { "v=spf1 exists:%{x}.example.com", 0, "column 15" },        /* unknown macro letter */
    { "v=spf1 exists:%{d0}.example.com", 0, "column 15" },       /* zero digits */
    { "v=spf1 exists:%{d000}.example.com", 0, "column 15" },     /* zero, however written */
    /* RFC 7208 7.1: any nonzero number of parts; more than there are is all */
    { "v=spf1 exists:%{l999r}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{l129}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{d1000}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{i0001}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{d4294967297r}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{d99999999999999999999999999}.x.example -all", 1, NULL },
    { "v=spf1 exists:%{c}.example.com", 0, "column 15" },        /* c only in exp text */
    { "v=spf1 exists:%{d.example.com", 0, "column 15" },
    { "v=spf1 a:x.example.com% -all", 0, "column 23" },
    { "v=spf1 redirect=a.example.com redirect=b.example.com", 0, "column 31" },
    { "v=spf1 all:x", 0, "column 8" },
    { "v=spf1 ptr/24", 0, "column 8" },
    { "v=spf1 include: -all", 0, "column 16" },
    { "v=spf1 -all\x01", 0, "column 12" },
    { "v=spf1 1bad=x", 0, "column 8" },
};

static const char *vars(void *arg, char l)
{
    (void)arg;
    switch (l) {
    case 's': return "strong-bad@email.example.com";
    case 'l': return "strong-bad";
    case 'o': return "email.example.com";
    case 'd': return "email.example.com";
    case 'i': return "192.0.2.3";
    case 'h': return "mx.example.org";
    case 'v': return "in-addr";
    default: return "";
    }
}

static const struct { const char *in; int exp; const char *want; } macros[] = {
    { "%{s}", 0, "strong-bad@email.example.com" },
    { "%{o}", 0, "email.example.com" },
    { "%{d4}", 0, "email.example.com" },
    { "%{d3}", 0, "email.example.com" },
    { "%{d2}", 0, "example.com" },
    { "%{d1}", 0, "com" },
    { "%{dr}", 0, "com.example.email" },
    { "%{d2r}", 0, "example.email" },
    { "%{l}", 0, "strong-bad" },
    { "%{l-}", 0, "strong.bad" },
    { "%{lr}", 0, "strong-bad" },
    { "%{lr-}", 0, "bad.strong" },
    { "%{l1r-}", 0, "strong" },
    { "%{ir}.%{v}._spf.%{d2}", 0, "3.2.0.192.in-addr._spf.example.com" },
    { "%{lr-}.lp._spf.%{d2}", 0, "bad.strong.lp._spf.example.com" },
    { "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", 0, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
    { "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", 0, "3.2.0.192.in-addr.strong.lp._spf.example.com" },
    { "%{d2}.trusted-domains.example.net", 0, "example.com.trusted-domains.example.net" },
    { "%%%_%-", 1, "% %20" },
    { "%{S}", 0, "strong-bad%40email.example.com" },
    { "%{d1000}", 0, "email.example.com" },
    { "%{d129}", 0, "email.example.com" },
    { "%{d128r}", 0, "com.example.email" },
    { "%{l999r}", 0, "strong-bad" },
    { "%{l999r-}", 0, "bad.strong" },
    { "%{i0001}", 0, "3" },
    { "%{i0002r}", 0, "0.192" },
    /* values that wrap a 32- or 64-bit counter are still "all parts" */
    { "%{d4294967297}", 0, "email.example.com" },
    { "%{d18446744073709551617r}", 0, "com.example.email" },
    { "%{d99999999999999999999999999999999999999}", 0, "email.example.com" },
    { "%{d0}", 0, NULL },
    { "%{d00}", 0, NULL },
    { "%{x}", 0, NULL },
    { "%", 0, NULL },
};

/* What may be handed to libspf2 1.2.10: its parser refuses a transformer
 * over 128 and reads the digits into an int without an overflow check. */
static const struct { const char *in; int fits; } libspf2_fit[] = {
    { "v=spf1 exists:%{l1r-}.x.example -all", 1 },
    { "v=spf1 exists:%{d128}.x.example -all", 1 },
    { "v=spf1 exists:%{i0001}.x.example -all", 1 },
    { "v=spf1 exists:%{d129}.x.example -all", 0 },
    { "v=spf1 exists:%{l999r}.x.example -all", 0 },
    { "v=spf1 exists:%{d4294967297}.x.example -all", 0 },
    { "%{d} is not allowed: %%{d999} is literal text", 1 },
    { "%{D999}", 0 },
};

int main(void)
{
    char msg[256];
    for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
        int rc = md_spf_record_check(syntax[i].rec, msg, sizeof msg);
        is_int(rc == 0, syntax[i].valid, "'%s' valid=%d (%s)", syntax[i].rec, syntax[i].valid, msg);
        if (syntax[i].where)
            ok(strstr(msg, syntax[i].where) != NULL, "'%s': error at %s: got '%s'",
               syntax[i].rec, syntax[i].where, msg);
    }
    ok(md_spf_is_record("v=spf1", 6), "v=spf1 alone is a record");
    ok(md_spf_is_record("V=SPF1 -all", 11), "case-insensitive");
    ok(!md_spf_is_record("v=spf10 -all", 12), "v=spf10 is not SPF");
    ok(!md_spf_is_record("v=spf1-all", 10), "v=spf1 must be followed by a space");

    spf_macro_vars v = { vars, NULL };
    for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
        char *got = spf_macro_expand(macros[i].in, strlen(macros[i].in), &v, macros[i].exp);
        if (macros[i].want == NULL)
            ok(got == NULL, "'%s' is malformed", macros[i].in);
        else
            is_str(got ? got : "(null)", macros[i].want, "expand '%s'", macros[i].in);
        free(got);
    }
    for (size_t i = 0; i < sizeof libspf2_fit / sizeof libspf2_fit[0]; i++)
        is_int(spf_macro_libspf2_fits(libspf2_fit[i].in, strlen(libspf2_fit[i].in)),
               libspf2_fit[i].fits, "libspf2 can take '%s': %d", libspf2_fit[i].in,
               libspf2_fit[i].fits);
    const char *names[] = { "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" };
    for (int i = 0; i < 7; i++)
        is_int(md_spf_code_parse(names[i]), i, "result name %s", names[i]);
    is_int(md_spf_code_severity(MD_SPF_PASS), MD_SEV_OK, "pass -> exit 0");
    is_int(md_spf_code_severity(MD_SPF_SOFTFAIL), MD_SEV_WARNING, "softfail -> exit 1");
    is_int(md_spf_code_severity(MD_SPF_PERMERROR), MD_SEV_CRITICAL, "permerror -> exit 2");
    is_int(md_spf_code_severity(MD_SPF_TEMPERROR), MD_SEV_UNKNOWN, "temperror -> exit 3");
    return tap_done();
}
