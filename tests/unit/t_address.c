/* Unit tests for lib/address: parsing, keys, provider hints, typos. */
#include "config.h"
#include "address/address.h"
#include "tap.h"

static void test_parse(void)
{
    static const struct {
        const char *in;
        const char *ascii;     /* NULL: must be rejected */
        const char *display;
    } cases[] = {
        { "alice@example.com", "alice@example.com", "alice@example.com" },
        { "  Alice@Example.COM ", "Alice@example.com", "Alice@example.com" },
        { "<bob@example.com>", "bob@example.com", "bob@example.com" },
        { "first.last+tag@example.com", "first.last+tag@example.com", NULL },
        { "o'neil@example.com", "o'neil@example.com", NULL },
        { "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com", NULL },
        { "\"john doe\"@example.com", "\"john doe\"@example.com", NULL },
        { "\"a@b\"@example.com", "\"a@b\"@example.com", NULL },
        { "\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com", NULL },
        { "\"\"@example.com", "\"\"@example.com", NULL },
        { "user@b\xc3\xbc" "cher.test", "user@xn--bcher-kva.test", "user@b\xc3\xbc" "cher.test" },
        { "user@xn--bcher-kva.test", "user@xn--bcher-kva.test", "user@b\xc3\xbc" "cher.test" },
        { "j\xc3\xb6rg@example.com", "j\xc3\xb6rg@example.com", NULL },
        { "user@example.com.", "user@example.com", NULL },
        { "user@[192.0.2.1]", "user@[192.0.2.1]", NULL },
        { "user@[ipv6:2001:DB8::1]", "user@[IPv6:2001:db8::1]", NULL },
        { "user@localhost", "user@localhost", NULL },
        { "", NULL, NULL },
        { "   ", NULL, NULL },
        { "alice", NULL, NULL },
        { "@example.com", NULL, NULL },
        { "alice@", NULL, NULL },
        { ".alice@example.com", NULL, NULL },
        { "alice.@example.com", NULL, NULL },
        { "al..ice@example.com", NULL, NULL },
        { "al ice@example.com", NULL, NULL },
        { "a(b)@example.com", NULL, NULL },
        { "a,b@example.com", NULL, NULL },
        { "a\"b@example.com", NULL, NULL },
        { "\"unclosed@example.com", NULL, NULL },
        { "\"a\"b\"@example.com", NULL, NULL },
        { "\"a\\\"@example.com", NULL, NULL },
        { "Alice <alice@example.com>", NULL, NULL },
        { "<alice@example.com", NULL, NULL },
        { "alice@exa mple.com", NULL, NULL },
        { "alice@example..com", NULL, NULL },
        { "alice@-example.com", NULL, NULL },
        { "alice@192.0.2.1", NULL, NULL },
        { "alice@[192.0.2.300]", NULL, NULL },
        { "alice@[2001:db8::1]", NULL, NULL },
        { "alice@[example.com]", NULL, NULL },
        { "a\rb@example.com", NULL, NULL },
        { "a\nBcc: x@example.com", NULL, NULL },
        { "a\xff@example.com", NULL, NULL },
        { "a\xc0\xaf@example.com", NULL, NULL },
        { "\"a\x01\"@example.com", NULL, NULL },
        { "a@under_score.com", NULL, NULL },
    };
    md_address a;
    md_error err = { 0 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_status st = md_address_parse(cases[i].in, &a, &err);
        if (cases[i].ascii == NULL) {
            ok(st == MD_CONFIG && err.text[0], "rejected: '%s' (%s)", cases[i].in,
               st == MD_CONFIG ? err.text : "accepted");
        } else {
            is_int(st, MD_OK, "accepted: '%s' (%s)", cases[i].in, st ? err.text : "");
            is_str(a.ascii, cases[i].ascii, "ascii form of '%s'", cases[i].in);
            if (cases[i].display)
                is_str(a.display, cases[i].display, "display form of '%s'", cases[i].in);
        }
    }

    /* Length limits: local part 64 octets, address 254. */
    char buf[400], local[80];
    memset(local, 'a', 64);
    local[64] = '\0';
    snprintf(buf, sizeof buf, "%s@example.com", local);
    is_int(md_address_parse(buf, &a, &err), MD_OK, "64-octet local part accepted");
    snprintf(buf, sizeof buf, "%sa@example.com", local);
    is_int(md_address_parse(buf, &a, &err), MD_CONFIG, "65-octet local part rejected");
    /* 64 + 1 + 189 = 254 */
    char dom[200];
    size_t o = 0;
    while (o + 50 <= 150) {
        memset(dom + o, 'd', 49);
        dom[o + 49] = '.';
        o += 50;
    }
    memset(dom + o, 'e', 185 - o);
    memcpy(dom + 185, ".com", 5);   /* 189 characters */
    snprintf(buf, sizeof buf, "%s@%s", local, dom);
    is_int(strlen(buf), 254, "test address is 254 characters");
    is_int(md_address_parse(buf, &a, &err), MD_OK, "254-character address accepted");
    snprintf(buf, sizeof buf, "%s@e%s", local, dom);
    is_int(md_address_parse(buf, &a, &err), MD_CONFIG, "255-character address rejected");
}

static void test_key(void)
{
    static const struct {
        const char *in;
        unsigned flags;
        const char *key, *provider;   /* provider "" = no rule */
    } cases[] = {
        { "Alice@Example.COM", 0, "alice@example.com", "" },
        { "Alice@Example.COM", MD_ADDRESS_CASE_SENSITIVE, "Alice@example.com", "" },
        { "\"alice\"@example.com", 0, "alice@example.com", "" },
        { "\"Al\\ice\"@example.com", 0, "alice@example.com", "" },
        { "\"john doe\"@example.com", 0, "\"john doe\"@example.com", "" },
        { "\"a\\\\b\"@example.com", 0, "\"a\\\\b\"@example.com", "" },
        { "\"a..b\"@example.com", 0, "\"a..b\"@example.com", "" },
        { "J\xc3\x96RG@example.com", 0, "j\xc3\x96rg@example.com", "" },
        { "user@B\xc3\x9c" "CHER.test", 0, "user@xn--bcher-kva.test", "" },
        { "John.Smith+news@gmail.com", 0, "john.smith+news@gmail.com", "johnsmith@gmail.com" },
        { "johnsmith@googlemail.com", 0, "johnsmith@googlemail.com", "johnsmith@gmail.com" },
        { "j.o.h.n.smith@GMAIL.com", 0, "j.o.h.n.smith@gmail.com", "johnsmith@gmail.com" },
        { "+tag@gmail.com", 0, "+tag@gmail.com", "" },
        { "john.smith+news@example.com", 0, "john.smith+news@example.com", "" },
        { "\"john.smith\"@gmail.com", 0, "john.smith@gmail.com", "" },
    };
    md_address a;
    md_error err = { 0 };
    char key[MD_ADDRESS_MAX + 1], pk[MD_ADDRESS_MAX + 1];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (md_address_parse(cases[i].in, &a, &err) != MD_OK) {
            ok(0, "parse '%s': %s", cases[i].in, err.text);
            continue;
        }
        is_int(md_address_key(&a, cases[i].flags, key, sizeof key), MD_OK, "key of '%s'", cases[i].in);
        is_str(key, cases[i].key, "key of '%s' (flags %u)", cases[i].in, cases[i].flags);
        int has = md_address_provider_key(&a, pk, sizeof pk);
        is_int(has, cases[i].provider[0] != '\0', "provider rule applies to '%s'", cases[i].in);
        is_str(pk, cases[i].provider, "provider key of '%s'", cases[i].in);
    }
}

static void test_distance(void)
{
    static const struct { const char *a, *b; unsigned max, want; } cases[] = {
        { "gmail.com", "gmail.com", 2, 0 },
        { "gmial.com", "gmail.com", 2, 1 },     /* swap */
        { "gmail.co", "gmail.com", 2, 1 },      /* delete */
        { "gmaill.com", "gmail.com", 2, 1 },    /* insert */
        { "gmakl.com", "gmail.com", 2, 1 },     /* substitute */
        { "gmal.con", "gmail.com", 2, 2 },
        { "example.org", "gmail.com", 2, 3 },   /* capped at max + 1 */
        { "", "abc", 5, 3 },
        { "ab", "ba", 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(md_address_distance(cases[i].a, cases[i].b, cases[i].max), cases[i].want,
               "distance '%s' '%s'", cases[i].a, cases[i].b);
}

static void test_suggest(void)
{
    static const md_domain_count popular[] = {
        { "corp-mail.example", 500 }, { "bigco.example", 300 }, { "smallco.example", 25 },
    };
    static const struct {
        const char *domain;
        unsigned long accounts;
        md_address_mx mx;
        const char *want;   /* "" = no suggestion */
    } cases[] = {
        { "gmial.com", 0, MD_ADDRESS_MX_UNKNOWN, "gmail.com" },
        { "hotmial.com", 0, MD_ADDRESS_MX_UNKNOWN, "hotmail.com" },
        { "yaho.com", 0, MD_ADDRESS_MX_UNKNOWN, "yahoo.com" },
        { "gmail.co", 0, MD_ADDRESS_MX_UNKNOWN, "gmail.com" },
        { "gmail.cm", 0, MD_ADDRESS_MX_NONE, "gmail.com" },
        { "gmailcom", 0, MD_ADDRESS_MX_UNKNOWN, "gmail.com" },
        { "outlok.com", 0, MD_ADDRESS_MX_UNKNOWN, "outlook.com" },
        { "hotmail.co.ukk", 0, MD_ADDRESS_MX_UNKNOWN, "hotmail.co.uk" },
        { "protonmial.cmo", 0, MD_ADDRESS_MX_UNKNOWN, "protonmail.com" },   /* 2 edits, long */
        { "gmal.con", 0, MD_ADDRESS_MX_UNKNOWN, "" },                    /* 2 edits, short */
        { "aol.con", 0, MD_ADDRESS_MX_UNKNOWN, "aol.com" },              /* short: TLD only */
        { "aok.com", 0, MD_ADDRESS_MX_UNKNOWN, "" },                     /* short: not TLD */
        { "gmail.com", 0, MD_ADDRESS_MX_UNKNOWN, "" },                   /* a provider */
        { "mail.com", 0, MD_ADDRESS_MX_UNKNOWN, "" },                    /* a provider too */
        { "ymail.com", 0, MD_ADDRESS_MX_UNKNOWN, "" },
        { "example.com", 0, MD_ADDRESS_MX_UNKNOWN, "" },
        { "corp-mial.example", 0, MD_ADDRESS_MX_UNKNOWN, "corp-mail.example" },
        { "bigco.exmaple", 3, MD_ADDRESS_MX_UNKNOWN, "bigco.example" },
        { "smallco.exampl", 0, MD_ADDRESS_MX_UNKNOWN, "smallco.example" },
        { "bigco.exmaple", 40, MD_ADDRESS_MX_UNKNOWN, "" },              /* 300/10 < 40 */
        /* many accounts: never, unless DNS says no mail route */
        { "gmial.com", 25, MD_ADDRESS_MX_WORKS, "" },
        { "gmial.com", 25, MD_ADDRESS_MX_UNKNOWN, "" },
        { "gmial.com", 25, MD_ADDRESS_MX_NONE, "gmail.com" },
        { "gmial.com", 19, MD_ADDRESS_MX_WORKS, "gmail.com" },
        { "[192.0.2.1]", 0, MD_ADDRESS_MX_UNKNOWN, "" },
    };
    char sug[MD_DNS_NAME_MAX + 1];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_address_typo_facts f = { .popular = popular, .npopular = 3,
                                    .accounts = cases[i].accounts, .mx = cases[i].mx };
        int got = md_address_suggest(cases[i].domain, &f, sug, sizeof sug, NULL);
        is_int(got, cases[i].want[0] != '\0', "suggest for '%s' (%lu accounts, mx %d)",
               cases[i].domain, cases[i].accounts, (int)cases[i].mx);
        is_str(sug, cases[i].want, "suggestion for '%s'", cases[i].domain);
    }
    ok(md_address_suggest("gmial.com", NULL, sug, sizeof sug, NULL) == 1, "facts may be NULL");
}

int main(void)
{
    test_parse();
    test_key();
    test_distance();
    test_suggest();
    return tap_done();
}
