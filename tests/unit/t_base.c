/* Unit tests for lib/base: the strict UTF-8 decoder (the categories of
 * Markus Kuhn's UTF-8 decoder stress test), the text check for inputs, the
 * one sanitizer for text on its way to a person, domain names (the label
 * rules and IDNA2008; lib/address's tests hold most cases), and the
 * growable buffer with its JSON text writer (t_report compares that with
 * jansson). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"
#include "base/buf.h"
#include "base/domain.h"
#include "tap.h"

/* Shows bytes as \xNN so that a failing case prints safely. */
static const char *hex(const char *s, size_t n)
{
    static char out[256];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof out; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", (unsigned char)s[i]);
    out[o] = '\0';
    return out;
}

static const struct {
    const char *what, *in;
    size_t len;          /* 0: strlen(in) */
    int valid;
} utf8[] = {
    /* 1 correct text */
    { "Greek kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0, 1 },
    { "ASCII", "plain text", 0, 1 },
    { "empty", "", 0, 1 },
    /* 2.1 first sequence of each length */
    { "U+0000", "\0", 1, 1 },
    { "U+0080", "\xc2\x80", 0, 1 },
    { "U+0800", "\xe0\xa0\x80", 0, 1 },
    { "U+10000", "\xf0\x90\x80\x80", 0, 1 },
    { "5 bytes U+200000", "\xf8\x88\x80\x80\x80", 0, 0 },
    { "6 bytes U+4000000", "\xfc\x84\x80\x80\x80\x80", 0, 0 },
    /* 2.2 last sequence of each length */
    { "U+007F", "\x7f", 0, 1 },
    { "U+07FF", "\xdf\xbf", 0, 1 },
    { "U+FFFF", "\xef\xbf\xbf", 0, 1 },
    { "U+10FFFF", "\xf4\x8f\xbf\xbf", 0, 1 },
    { "U+1FFFFF", "\xf7\xbf\xbf\xbf", 0, 0 },
    { "U+3FFFFFF", "\xfb\xbf\xbf\xbf\xbf", 0, 0 },
    { "U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0, 0 },
    /* 2.3 other boundaries */
    { "U+D7FF", "\xed\x9f\xbf", 0, 1 },
    { "U+E000", "\xee\x80\x80", 0, 1 },
    { "U+FFFD", "\xef\xbf\xbd", 0, 1 },
    { "U+110000", "\xf4\x90\x80\x80", 0, 0 },
    { "U+13FFFF (F4 BF)", "\xf4\xbf\xbf\xbf", 0, 0 },
    { "F5 lead", "\xf5\x80\x80\x80", 0, 0 },
    /* 3.1 unexpected continuation bytes */
    { "lone 0x80", "\x80", 0, 0 },
    { "lone 0xbf", "\xbf", 0, 0 },
    { "2 continuation bytes", "\x80\xbf", 0, 0 },
    { "continuation after ASCII", "a\x80", 0, 0 },
    { "continuation after a full sequence", "\xc3\xa9\x80", 0, 0 },
    /* 3.2 lonely start bytes */
    { "C0 space", "\xc0 ", 0, 0 },
    { "C2 space", "\xc2 ", 0, 0 },
    { "E0 space", "\xe0 ", 0, 0 },
    { "F0 space", "\xf0 ", 0, 0 },
    /* 3.3 sequences with the last byte missing (truncated) */
    { "2 of 2 missing 1", "\xc2", 0, 0 },
    { "3 missing 1", "\xe0\xa0", 0, 0 },
    { "3 missing 2", "\xe1", 0, 0 },
    { "4 missing 1", "\xf0\x90\x80", 0, 0 },
    { "4 missing 2", "\xf4\x8f", 0, 0 },
    { "truncated then ASCII", "\xe2\x82z", 0, 0 },
    /* 3.4 concatenated incomplete sequences */
    { "incomplete x3", "\xc2\xe0\xa0\xf0\x90\x80", 0, 0 },
    /* 3.5 impossible bytes */
    { "FE", "\xfe", 0, 0 },
    { "FF", "\xff", 0, 0 },
    { "FE FE FF FF", "\xfe\xfe\xff\xff", 0, 0 },
    /* 4.1 overlong ASCII '/' */
    { "overlong / 2", "\xc0\xaf", 0, 0 },
    { "overlong / 3", "\xe0\x80\xaf", 0, 0 },
    { "overlong / 4", "\xf0\x80\x80\xaf", 0, 0 },
    { "overlong / 5", "\xf8\x80\x80\x80\xaf", 0, 0 },
    /* 4.2 maximum overlong sequences */
    { "overlong U+007F", "\xc1\xbf", 0, 0 },
    { "overlong U+07FF", "\xe0\x9f\xbf", 0, 0 },
    { "overlong U+FFFF", "\xf0\x8f\xbf\xbf", 0, 0 },
    /* 4.3 overlong NUL, and the overlong CR that reached a Subject */
    { "overlong NUL 2", "\xc0\x80", 0, 0 },
    { "overlong NUL 3", "\xe0\x80\x80", 0, 0 },
    { "overlong NUL 4", "\xf0\x80\x80\x80", 0, 0 },
    { "overlong CR 3", "\xe0\x80\x8d", 0, 0 },
    { "overlong LF 2", "\xc0\x8a", 0, 0 },
    /* 5.1 single UTF-16 surrogates */
    { "U+D800", "\xed\xa0\x80", 0, 0 },
    { "U+DB7F", "\xed\xad\xbf", 0, 0 },
    { "U+DB80", "\xed\xae\x80", 0, 0 },
    { "U+DBFF", "\xed\xaf\xbf", 0, 0 },
    { "U+DC00", "\xed\xb0\x80", 0, 0 },
    { "U+DF80", "\xed\xbe\x80", 0, 0 },
    { "U+DFFF", "\xed\xbf\xbf", 0, 0 },
    /* 5.2 paired surrogates (CESU-8) */
    { "U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 0, 0 },
    { "U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 0, 0 },
    /* 5.3 noncharacters are well-formed UTF-8 */
    { "U+FFFE", "\xef\xbf\xbe", 0, 1 },
    { "U+FDD0", "\xef\xb7\x90", 0, 1 },
};

static const struct {
    const char *in;
    const char *allow;
    int fit;
} checks[] = {
    { "Example Support", NULL, 1 },
    { "B\xc3\xbc" "cher & Co", NULL, 1 },
    { "a\tb", NULL, 0 },
    { "a\tb", "\t", 1 },
    { "line 1\nline 2\n", "\t\n", 1 },
    { "a\rb", "\t\n", 0 },
    { "a\x1b" "b", NULL, 0 },
    { "a\x7f", NULL, 0 },
    { "next line \xc2\x85", NULL, 0 },       /* C1 U+0085 */
    { "CSI \xc2\x9b", NULL, 0 },             /* C1 U+009B */
    { "no-break \xc2\xa0 space", NULL, 1 },  /* U+00A0: first after C1 */
    { "\xed\xa0\x80", NULL, 0 },
    { "\xe0\x80\x8d", NULL, 0 },
};

static const struct {
    const char *in;
    unsigned flags;
    size_t dstsize;
    const char *want;
} clean[] = {
    { "plain", 0, 64, "plain" },
    { "\x1b]0;pwn\x07 x\r\nX-Injected: 1", 0, 64, "?]0;pwn? x??X-Injected: 1" },
    { "tab\there", 0, 64, "tab?here" },
    { "del\x7f", 0, 64, "del?" },
    { "c1 \xc2\x9b" "31m", 0, 64, "c1 ?31m" },
    { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0, 64, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5" },
    { "sur\xed\xa0\x80rogate", 0, 64, "sur???rogate" },
    { "over\xe0\x80\x8dlong", 0, 64, "over???long" },
    { "cut \xe2\x82", 0, 64, "cut ??" },
    { "\xfe\xff", 0, 64, "??" },
    { "stops\0here", 0, 64, "stops" },
    /* never cut inside a character */
    { "a\xc3\xa9", 0, 3, "a" },
    { "a\xc3\xa9", 0, 4, "a\xc3\xa9" },
    { "\xf0\x9f\x98\x80" "x", 0, 4, "" },
    { "abcdef", 0, 4, "abc" },
    { "a\xc3\xa9xyz", 0, 5, "a\xc3\xa9x" },
    { "ab\x01" "cd", 0, 4, "ab?" },
    { "xy", 0, 1, "" },
    /* the ASCII form: every byte from 0x7f up becomes '?' */
    { "b\xc3\xbc" "cher\x1b", MD_SANITIZE_ASCII, 64, "b??cher?" },
};

static void test_domain(void)
{
    static const struct {
        const char *in;
        unsigned flags;
        const char *ascii, *unicode;   /* ascii NULL: refused */
        unsigned info;
    } cases[] = {
        { "Example.COM", 0, "example.com", "", 0 },
        { "example.com.", 0, NULL, NULL, 0 },
        { "example.com.", MD_DOMAIN_ROOT_DOT, "example.com", "", 0 },
        { "example.com..", MD_DOMAIN_ROOT_DOT, NULL, NULL, 0 },
        { ".", MD_DOMAIN_ROOT_DOT, NULL, NULL, 0 },
        { "localhost", 0, "localhost", "", MD_DOMAIN_SINGLE_LABEL },
        { "192.0.2.1", 0, "192.0.2.1", "", MD_DOMAIN_NUMERIC_TLD },
        { "b\xc3\xbc" "cher.test", 0, "xn--bcher-kva.test", "b\xc3\xbc" "cher.test",
          MD_DOMAIN_ULABEL | MD_DOMAIN_IDN },
        { "XN--BCHER-KVA.test", 0, "xn--bcher-kva.test", "b\xc3\xbc" "cher.test", MD_DOMAIN_IDN },
        /* IDNA2008 takes U-labels as they are; MAP maps first (UTS #46) */
        { "B\xc3\x9c" "CHER.test", 0, NULL, NULL, 0 },
        { "B\xc3\x9c" "CHER.test", MD_DOMAIN_MAP, "xn--bcher-kva.test", "b\xc3\xbc" "cher.test",
          MD_DOMAIN_ULABEL | MD_DOMAIN_IDN },
        { "a\xe3\x80\x82" "example", 0, NULL, NULL, 0 },
        { "a\xe3\x80\x82" "example", MD_DOMAIN_MAP, "a.example", "", MD_DOMAIN_ULABEL },
        /* an IDNA2003-only A-label: decodes (MAP accepts it), is no IDNA2008 label */
        { "xn--53h.test", 0, NULL, NULL, 0 },
        { "xn--53h.test", MD_DOMAIN_MAP, "xn--53h.test", "\xe2\x98\x95.test", MD_DOMAIN_IDN },
        { "xn--zz.test", MD_DOMAIN_MAP, NULL, NULL, 0 },
        /* decodes to U+0080 and more: no IDNA allows control characters */
        { "xn--iana.org", MD_DOMAIN_MAP, NULL, NULL, 0 },
        { "xn--iana.org", 0, NULL, NULL, 0 },
        { "-a.test", 0, NULL, NULL, 0 },
        { "a-.test", 0, NULL, NULL, 0 },
        { "a_b.test", 0, NULL, NULL, 0 },
        { "a..test", 0, NULL, NULL, 0 },
        { "a.te\x01st", 0, NULL, NULL, 0 },
        { "a.te\xffst", 0, NULL, NULL, 0 },
        { "", 0, NULL, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ascii[MD_DOMAIN_MAX + 1], uni[MD_DOMAIN_UNICODE_MAX + 1];
        unsigned info = 99;
        md_error err = { 0 };
        md_status st = md_domain_normalize(cases[i].in, strlen(cases[i].in), cases[i].flags, ascii,
                                           sizeof ascii, uni, sizeof uni, &info, &err);
        if (cases[i].ascii == NULL) {
            ok(st == MD_CONFIG && err.text[0] && info == 0, "domain %s refused (flags %u): %s",
               hex(cases[i].in, strlen(cases[i].in)), cases[i].flags, err.text);
            continue;
        }
        is_int(st, MD_OK, "domain %s accepted (flags %u): %s", hex(cases[i].in, strlen(cases[i].in)),
               cases[i].flags, st ? err.text : "");
        is_str(ascii, cases[i].ascii, "A-label form");
        is_str(uni, cases[i].unicode, "U-label form");
        is_int(info, cases[i].info, "facts");
    }
    /* 63-octet labels, 253 octets in all; 254 is too long */
    char name[300];
    size_t o = 0;
    for (int l = 0; l < 4; l++) {
        memset(name + o, 'a' + l, l < 3 ? 63 : 61);
        o += l < 3 ? 63 : 61;
        name[o++] = '.';
    }
    name[--o] = '\0';
    char ascii[MD_DOMAIN_MAX + 1];
    is_int(md_domain_normalize(name, o, 0, ascii, sizeof ascii, NULL, 0, NULL, NULL), MD_OK, "253 octets");
    name[o] = 'z';
    is_int(md_domain_normalize(name, o + 1, 0, ascii, sizeof ascii, NULL, 0, NULL, NULL), MD_CONFIG,
           "254 octets");
}

static void test_buf(void)
{
    md_buf b = { 0 };
    is_str(md_buf_cstr(&b), "", "an empty buffer reads as \"\"");
    ok(b.data == NULL, "... and allocates nothing");
    md_buf_add(&b, "ab", 2);
    md_buf_add(&b, NULL, 0);
    MD_BUF_LIT(&b, "cd");
    md_buf_addstr(&b, "ef");
    md_buf_addf(&b, "%d-%s", 42, "x");
    is_int(b.len, 10, "appended length");
    is_str(md_buf_cstr(&b), "abcdef42-x", "appended bytes, NUL-terminated on demand");
    is_int(b.len, 10, "the NUL is not counted");

    /* printf text longer than the small stack buffer, and growth by doubling */
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    md_buf_addf(&b, "[%s]", big);
    is_int(b.len, 10 + 1001, "long printf text appended whole");
    ok(b.data[10] == '[' && b.data[10 + 1000] == ']', "long printf text in place");
    ok(b.cap >= b.len, "capacity covers the length");

    /* reserve: room written by the caller */
    size_t before = b.len;
    char *p = md_buf_reserve(&b, 5000);
    ok(p == b.data + before && b.cap - b.len >= 5000, "reserve gives room at the end");
    memcpy(p, "zz", 2);
    b.len += 2;
    is_int(b.len, before + 2, "the caller counts what it wrote");

    size_t n = 0;
    char *s = md_buf_steal(&b, &n);
    is_int(n, before + 2, "steal: the length");
    ok(s[n] == '\0' && s[0] == 'a', "steal: NUL-terminated bytes");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "steal leaves the buffer empty");
    free(s);
    s = md_buf_steal(&b, NULL);
    is_str(s, "", "stealing an empty buffer gives \"\"");
    free(s);

    md_buf_add(&b, "x", 1);
    md_buf_free(&b);
    ok(b.data == NULL && b.len == 0, "free leaves the buffer empty");
    md_buf_free(NULL);

    static const struct { long long v; const char *want; } ints[] = {
        { 0, "0" }, { -1, "-1" }, { 1234567890123LL, "1234567890123" },
        { -9223372036854775807LL - 1, "-9223372036854775808" },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        md_json_append_int(&b, ints[i].v);
        is_str(md_buf_cstr(&b), ints[i].want, "JSON integer %s", ints[i].want);
        b.len = 0;
    }
    static const struct { double v; const char *want; } reals[] = {
        { 3.0, "3.0" }, { 0.1, "0.10000000000000001" }, { 1e300, "1.0000000000000001e300" }, { -2.5e-300, "-2.5e-300" }, { 1e22, "1e22" },
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        is_int(md_json_append_real(&b, reals[i].v), 0, "JSON real %s written", reals[i].want);
        is_str(md_buf_cstr(&b), reals[i].want, "JSON real %s", reals[i].want);
        b.len = 0;
    }
    MD_BUF_LIT(&b, "k");
    is_int(md_json_append_real(&b, NAN), -1, "NaN is refused");
    is_int(b.len, 1, "... and nothing written");
    b.len = 0;
    md_json_append_string(&b, "a\"\\\n\x01\x7f\xc2\x85\xc2\xa0", 10);
    is_str(md_buf_cstr(&b), "\"a\\\"\\\\\\n\\u0001\\u007F\\u0085\xc2\xa0\"",
           "JSON string: quote, backslash, LF, C0, DEL and C1 escaped, NBSP kept");
    md_buf_free(&b);
}

int main(void)
{
    test_domain();
    test_buf();
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        size_t n = utf8[i].len ? utf8[i].len : strlen(utf8[i].in);
        is_int(md_utf8_valid(utf8[i].in, n), utf8[i].valid, "UTF-8 %s (%s): %s", utf8[i].what,
               hex(utf8[i].in, n), utf8[i].valid ? "well-formed" : "ill-formed");
    }

    static const struct { const char *in; size_t len; uint32_t cp; } dec[] = {
        { "A", 1, 0x41 }, { "\xc2\x80", 2, 0x80 }, { "\xdf\xbf", 2, 0x7ff },
        { "\xe0\xa0\x80", 3, 0x800 }, { "\xed\x9f\xbf", 3, 0xd7ff }, { "\xef\xbf\xbd", 3, 0xfffd },
        { "\xf0\x90\x80\x80", 4, 0x10000 }, { "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
    };
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        uint32_t cp = 0;
        size_t n = md_utf8_decode(dec[i].in, strlen(dec[i].in), &cp);
        ok(n == dec[i].len && cp == dec[i].cp, "decode %s: %zu bytes, U+%04X (got %zu, U+%04X)",
           hex(dec[i].in, strlen(dec[i].in)), dec[i].len, (unsigned)dec[i].cp, n, (unsigned)cp);
    }
    uint32_t cp;
    is_int(md_utf8_decode("\xe2\x82\xac", 2, &cp), 0, "a sequence cut by len is ill-formed");
    is_int(md_utf8_decode("", 0, &cp), 0, "nothing to decode");

    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        size_t bad = 0;
        const char *why = NULL;
        int rc = md_text_check(checks[i].in, strlen(checks[i].in), checks[i].allow, &bad, &why);
        ok((rc == 0) == checks[i].fit, "text check %s (allow %s): %s%s%s",
           hex(checks[i].in, strlen(checks[i].in)), checks[i].allow ? hex(checks[i].allow, strlen(checks[i].allow)) : "none",
           checks[i].fit ? "fit" : "refused", why ? ": " : "", why ? why : "");
    }
    size_t bad;
    const char *why;
    md_text_check("ok \xed\xa0\x80", 6, NULL, &bad, &why);
    is_int(bad, 3, "the offset of the first ill-formed byte");
    ok(why && strstr(why, "UTF-8"), "and why: %s", why ? why : "(null)");
    md_text_check("ok\x1b", 3, NULL, &bad, &why);
    is_int(bad, 2, "the offset of the control character");
    ok(why && strstr(why, "control"), "and why: %s", why ? why : "(null)");

    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) {
        char out[64];
        size_t n = strlen(clean[i].in);
        if (strcmp(clean[i].in, "stops") == 0)
            n = 10;
        md_sanitize_text(out, clean[i].dstsize, clean[i].in, n, clean[i].flags);
        ok(strcmp(out, clean[i].want) == 0 && md_utf8_valid(out, strlen(out)),
           "sanitize %s (size %zu) -> %s", hex(clean[i].in, n), clean[i].dstsize, hex(out, strlen(out)));
    }
    char inplace[] = "in\x1bplace \xed\xa0\x80 \xc3\xa9";
    md_sanitize_text(inplace, sizeof inplace, inplace, strlen(inplace), 0);
    is_str(inplace, "in?place ??? \xc3\xa9", "in place");
    char *dup = md_sanitize_dup("row\r\nX-Fake: 1\xc2\x9b", 18);
    is_str(dup, "row??X-Fake: 1?", "md_sanitize_dup");
    free(dup);
    char old[16];
    is_str(md_sanitize(old, sizeof old, "b\xc3\xbc\x01", 4), "b???", "md_sanitize is the ASCII form");
    return tap_done();
}
