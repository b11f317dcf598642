/*
 * Unit tests for lib/address: the RFC 5321 Mailbox grammar (with RFC 6531
 * UTF-8 and the input handling every tool shares), lookup keys, provider
 * hints, typo suggestions.  The grammar cases follow the categories of the
 * classic address test sets (isemail's among them), each sorted by what
 * RFC 5321 4.1.2/4.1.3 says; where this grammar and isemail disagree, the
 * case says why.
 */
#include "config.h"
#include "address/address.h"
#include "tap.h"

#define Q MD_ADDRESS_QUOTED
#define L MD_ADDRESS_LITERAL
#define S1 MD_ADDRESS_SINGLE_LABEL
#define NT MD_ADDRESS_NUMERIC_TLD
#define U8 (MD_ADDRESS_UTF8_LOCAL | MD_ADDRESS_NON_ASCII)
#define UL (MD_ADDRESS_IDN | MD_ADDRESS_NON_ASCII)
#define ID MD_ADDRESS_IDN

typedef struct gcase {
    const char *in;
    const char *ascii;   /* NULL: refused */
    unsigned flags;      /* accepted: md_address.flags exactly */
    const char *why;     /* refused: a part of the message (NULL: any) */
} gcase;

#define V(in, ascii, flags) { in, ascii, flags, NULL }
#define R(in, why) { in, NULL, 0, why }

static const gcase grammar[] = {
    /* --- plain dot-strings ------------------------------------------------- */
    V("test@iana.org", "test@iana.org", 0),
    V("test@nominet.org.uk", "test@nominet.org.uk", 0),
    V("a@iana.org", "a@iana.org", 0),
    V("test.test@iana.org", "test.test@iana.org", 0),
    V("first.middle.last@iana.org", "first.middle.last@iana.org", 0),
    V("123@iana.org", "123@iana.org", 0),
    V("test@123.com", "test@123.com", 0),
    V("xn--test@iana.org", "xn--test@iana.org", 0),
    V("Alice@Example.COM", "Alice@example.com", 0),
    V("first.last+tag@example.com", "first.last+tag@example.com", 0),
    V("o'neil@example.com", "o'neil@example.com", 0),
    V("!#$%&'*+-/=?^_`{|}~@iana.org", "!#$%&'*+-/=?^_`{|}~@iana.org", 0),
    V("-@iana.org", "-@iana.org", 0),
    V("{}@iana.org", "{}@iana.org", 0),
    V("a.-.b@iana.org", "a.-.b@iana.org", 0),
    /* dots: RFC 5321 4.1.2 Dot-string = Atom *("." Atom) */
    R(".test@example.com", "the local part starts with a dot (RFC 5321 4.1.2)"),
    R("test.@example.com", "the local part ends with a dot (RFC 5321 4.1.2)"),
    R("test..test@example.com", "two dots in a row at character 5 (RFC 5321 4.1.2)"),
    R("test...test@example.com", "two dots in a row"),
    R(".@example.com", "starts with a dot"),
    R("..@example.com", "starts with a dot"),
    /* specials outside quotes */
    R("a b@example.com", "a space at character 2"),
    R("a,b@example.com", "',' at character 2"),
    R("a;b@example.com", "';' at character 2"),
    R("a:b@example.com", "':' at character 2"),
    R("a<b@example.com", "'<' at character 2"),
    R("a>b@example.com", "'>' at character 2"),
    R("a[b@example.com", "'[' at character 2"),
    R("a]b@example.com", "']' at character 2"),
    R("a\"b@example.com", "quotes must enclose the whole local part"),
    R("a\\b@example.com", "a backslash at character 2"),
    R("test\\@test@iana.org", "a backslash at character 5"),
    R("a@b@example.com", "a second '@' at character 4"),
    R("test@test@iana.org", "a second '@'"),
    /* missing parts */
    R("alice", "the address has no '@'"),
    R("test_exa-mple.com", "no '@'"),
    R("@", "the local part is empty"),
    R("@example.com", "the local part is empty (RFC 5321 4.1.2)"),
    R("@io", "local part is empty"),
    R("alice@", "the domain is missing"),
    R("test@", "the domain is missing"),

    /* --- quoted strings: DQUOTE *QcontentSMTP DQUOTE ------------------------ */
    V("\"test\"@iana.org", "\"test\"@iana.org", Q),
    V("\"john doe\"@example.com", "\"john doe\"@example.com", Q),
    V("\"\"@iana.org", "\"\"@iana.org", Q),                     /* zero QcontentSMTP */
    V("\"\\a\"@iana.org", "\"\\a\"@iana.org", Q),
    V("\"\\\"\"@iana.org", "\"\\\"\"@iana.org", Q),
    V("\"\\\\\"@iana.org", "\"\\\\\"@iana.org", Q),
    V("\"test\\\\blah\"@iana.org", "\"test\\\\blah\"@iana.org", Q),
    V("\"test\\blah\"@iana.org", "\"test\\blah\"@iana.org", Q),
    V("\"test\\\"blah\"@iana.org", "\"test\\\"blah\"@iana.org", Q),
    V("\"test\\ test\"@iana.org", "\"test\\ test\"@iana.org", Q),   /* quoted-pair of SP */
    V("\"a@b\"@example.com", "\"a@b\"@example.com", Q),
    V("\".a..b.\"@example.com", "\".a..b.\"@example.com", Q),
    V("\"(comment)\"@example.com", "\"(comment)\"@example.com", Q),
    V("\"<>[]:;,\"@example.com", "\"<>[]:;,\"@example.com", Q),
    V("\" \"@example.com", "\" \"@example.com", Q),
    V("\"~\"@example.com", "\"~\"@example.com", Q),
    V("\"j\xc3\xb6rg\"@example.com", "\"j\xc3\xb6rg\"@example.com", Q | U8),
    R("\"unclosed@example.com", "has no closing quote"),
    R("\"test\"test@iana.org", "where '@' must come"),
    R("\"test\"\"test\"@iana.org", "where '@' must come"),
    R("\"first\\\\\"last\"@iana.org", "where '@' must come"),
    R("test\"text\"@iana.org", "a quote at character 5"),
    R("\"a\\\"@example.com", "no closing quote"),
    R("\"a\\", "ends with a backslash"),
    R("\"\\\xc3\xa9\"@example.com", "escapes a non-ASCII character"),   /* quoted-pairSMTP is %d32-126 */
    R("\"test\\\xc2\xa9\"@iana.org", "escapes a non-ASCII character"),
    R("\"a\"", "no '@' after its quoted local part"),
    /* obsolete RFC 5322 local parts (obs-local-part): not RFC 5321 */
    R("\"test\".\"test\"@iana.org", "joined to more text by a dot"),
    R("\"test\".test@iana.org", "joined to more text by a dot"),
    R("test.\"test\"@iana.org", "a quote at character 6"),
    R("\"a\" @example.com", "a space follows the closing quote"),

    /* --- comments and folding white space: RFC 5322 only -------------------- */
    R("(comment)test@iana.org", "a comment ('(') at character 1"),
    R("((comment)test@iana.org", "a comment"),
    R("test(comment)@iana.org", "a comment ('(') at character 5"),
    R("test(comment)test@iana.org", "a comment"),
    R("test@(comment)iana.org", "a comment ('(') at character 6"),
    R("test@iana.org(comment)", "a comment"),
    R("test@(comment)[255.255.255.255]", "a comment"),
    R("test.(comment)test@iana.org", "a comment"),
    R("\"a\"(comment)@example.com", "a comment follows the closing quote"),
    R("test @iana.org", "a space at character 5"),
    R("test@ iana.org", "holds a space"),
    R("test@ iana .com", "holds a space"),
    R("test . test@iana.org", "a space"),
    R("test@iana.org\r\n", "a carriage return"),
    R("\r\n test@iana.org", "a carriage return (CR, a line break) at character 1"),
    R(" \r\n test@iana.org", "a carriage return"),
    R("\"test\r\n blah\"@iana.org", "a carriage return (CR, a line break) at character 6"),
    R("test@iana.org \r\n ", "carriage return"),

    /* --- control characters and ill-formed UTF-8 --------------------------- */
    R("a\rb@example.com", "a carriage return"),
    R("a\nBcc: x@example.com", "a line feed (LF, a line break) at character 2"),
    R("a\tb@example.com", "a tab at character 2"),
    R("\"a\tb\"@example.com", "a tab"),
    R("\"a\x01\"@example.com", "U+0001"),
    R("a\x1b[31m@example.com", "U+001B"),
    R("a\x7f@example.com", "U+007F"),
    R("a\xc2\x85@example.com", "U+0085"),                   /* C1: NEL */
    R("a@exa\xc2\x9bmple.com", "U+009B"),
    R("a\xff@example.com", "not UTF-8 at octet 2"),
    R("a\xc0\xaf@example.com", "not UTF-8"),                /* overlong '/' */
    R("a\xed\xa0\x80@example.com", "not UTF-8"),            /* surrogate */
    R("a\xe2\x82@example.com", "not UTF-8"),                /* cut short */
    R("a\x80@example.com", "not UTF-8"),                    /* stray continuation */
    R("a@b\xc3\xbc" "cher.te\xf5st", "not UTF-8"),
    R("\"\xf4\x90\x80\x80\"@example.com", "not UTF-8"),     /* above U+10FFFF */

    /* --- UTF-8 local parts (RFC 6531 3.3: atext =/ UTF8-non-ascii) ---------- */
    V("j\xc3\xb6rg@example.com", "j\xc3\xb6rg@example.com", U8),
    V("\xe7\x94\xa8\xe6\x88\xb7@example.com", "\xe7\x94\xa8\xe6\x88\xb7@example.com", U8),
    V("\xd0\xbf\xd0\xbe\xd1\x87\xd1\x82\xd0\xb0.\xd1\x82\xd0\xb5\xd1\x81\xd1\x82@example.com",
      "\xd0\xbf\xd0\xbe\xd1\x87\xd1\x82\xd0\xb0.\xd1\x82\xd0\xb5\xd1\x81\xd1\x82@example.com", U8),
    V("\xf0\x9f\x98\x80@example.com", "\xf0\x9f\x98\x80@example.com", U8),
    /* isemail refuses typographic quotes (it predates RFC 6531); here they
     * are UTF8-non-ascii atext like any other non-ASCII character */
    V("\xe2\x80\x9ctest\xe2\x80\x9d@iana.org", "\xe2\x80\x9ctest\xe2\x80\x9d@iana.org", U8),
    V("j\xc3\xb6rg@b\xc3\xbc" "cher.test", "j\xc3\xb6rg@xn--bcher-kva.test", U8 | UL),
    R("j\xc3\xb6rg.@example.com", "ends with a dot"),

    /* --- domains: sub-domain = Let-dig [Ldh-str] ---------------------------- */
    V("test@mason-dixon.com", "test@mason-dixon.com", 0),
    V("test@c--n.com", "test@c--n.com", 0),
    V("test@ab--cd.example", "test@ab--cd.example", 0),       /* R-LDH: Ldh-str allows it */
    V("test@iana.a", "test@iana.a", 0),
    V("test@a.b.c.d.e.f.example", "test@a.b.c.d.e.f.example", 0),
    V("test@EXAMPLE.com", "test@example.com", 0),
    V("test@3com.example", "test@3com.example", 0),
    R("test@-example.com", "the domain label '-example' starts with a hyphen"),
    R("test@example-.com", "the domain label 'example-' ends with a hyphen"),
    R("test@iana.org-", "ends with a hyphen"),
    R("test@iana-.com", "ends with a hyphen"),
    R("test@.iana.org", "the domain starts with a dot"),
    R("test@iana.org.", "the domain ends with a dot"),
    R("user@example.com.", "trailing dot"),
    R("test@iana..com", "the domain has two dots in a row"),
    R("test@iana/icann.org", "holds '/'"),
    R("a@under_score.com", "holds '_'"),
    R("a@exa!mple.com", "holds '!'"),
    R("a@exa\"mple.com", "holds '\"'"),
    R("test@a[255.255.255.255]", "'[' at character 7"),
    R("test@[255.255.255.255]x", "text follows the address literal's ']'"),
    /* grammatical, flagged */
    V("test@iana", "test@iana", S1),
    V("user@localhost", "user@localhost", S1),
    V("test@iana.123", "test@iana.123", NT),
    V("test@255.255.255.255", "test@255.255.255.255", NT),      /* a domain name, not a literal */
    V("test@123", "test@123", S1 | NT),
    /* IDN: U-labels (IDNA2008, kept as A-labels) and A-labels */
    V("user@b\xc3\xbc" "cher.test", "user@xn--bcher-kva.test", UL),
    V("user@xn--bcher-kva.test", "user@xn--bcher-kva.test", ID),
    V("user@XN--BCHER-KVA.test", "user@xn--bcher-kva.test", ID),
    V("test@xn--hxajbheg2az3al.xn--jxalpdlp", "test@xn--hxajbheg2az3al.xn--jxalpdlp", ID),
    V("test@\xcf\x80\xce\xb1\xcf\x81\xce\xac\xce\xb4\xce\xb5\xce\xb9\xce\xb3\xce\xbc\xce\xb1."
      "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae", "test@xn--hxajbheg2az3al.xn--jxalpdlp", UL),
    V("user@stra\xc3\x9f" "e.de", "user@xn--strae-oqa.de", UL),   /* IDNA2008: ß is PVALID */
    V("user@B\xc3\xbc" "cher.test", "user@xn--bcher-kva.test", UL),  /* ASCII case only */
    V("user@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95", "user@xn--fsqu00a.xn--0zwm56d", UL),
    R("user@B\xc3\x9c" "CHER.test", "not a valid IDNA2008 U-label"),   /* Ü is DISALLOWED */
    R("user@bu\xcc\x88" "cher.test", "normalization form C"),         /* NFD */
    R("user@\xe2\x98\x83.com", "not a valid IDNA2008 U-label"),       /* a snowman */
    R("user@exa\xc2\xad" "mple.com", "not a valid IDNA2008 U-label"),   /* soft hyphen */
    R("user@\xef\xbd\x85x.com", "not a valid IDNA2008 U-label"),        /* fullwidth e */
    R("user@a\xe3\x80\x82" "b.com", "not a valid IDNA2008 U-label"),    /* ideographic full stop */
    R("user@xn--zz.test", "not an A-label"),
    R("user@xn--53h.com", "not a valid A-label"),                     /* IDNA2003 only */
    R("user@xn--.test", "ends with a hyphen"),
    R("user@b\xc3\xbc" "cher_.test", "holds '_'"),

    /* --- address literals (RFC 5321 4.1.3) ---------------------------------- */
    V("test@[255.255.255.255]", "test@[255.255.255.255]", L),
    V("test@[0.0.0.0]", "test@[0.0.0.0]", L),
    V("test@[192.000.002.001]", "test@[192.000.002.001]", L),    /* Snum = 1*3DIGIT */
    R("test@[255.255.255]", "is not an IPv4 address"),
    R("test@[255.255.255.255.255]", "is not an IPv4 address"),
    R("test@[255.255.255.256]", "is not an IPv4 address"),
    R("test@[1.2.3.0004]", "is not an IPv4 address"),
    R("test@[1.2.3.]", "is not an IPv4 address"),
    R("test@[1..2.3]", "is not an IPv4 address"),
    R("test@[]", "is empty"),
    R("test@[192.0.2.1", "has no closing ']'"),
    R("test@[[192.0.2.1]]", "'['"),
    R("test@[192.0.2.1 ]", "a space"),
    R("test@[RFC-5322-domain-literal]", "is not an IPv4 address"),
    R("test@[RFC-5322]-domain-literal]", "text follows"),
    R("test@[RFC-5322-[domain-literal]", "'['"),
    R("test@[RFC 5322 domain literal]", "a space"),
    R("test@[\xc3\xa9]", "non-ASCII"),
    /* IPv6-full */
    V("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888]",
      "test@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888]", L),
    V("test@[ipv6:ABCD:EF01:2345:6789:ABCD:EF01:2345:6789]",
      "test@[IPv6:abcd:ef01:2345:6789:abcd:ef01:2345:6789]", L),
    V("test@[IPv6:0:0:0:0:0:0:0:1]", "test@[IPv6:0:0:0:0:0:0:0:1]", L),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777]", "needs 8 groups"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999]", "needs 8 groups"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:888G]", "not a hexadecimal digit"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:88888]", "more than 4 hexadecimal digits"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:]", "empty group"),
    R("test@[IPv6:]", "needs 8 groups"),
    R("test@[1111:2222:3333:4444:5555:6666:7777:8888]", "needs its tag"),
    R("test@[2001:db8::1]", "needs its tag, as in [IPv6:2001:db8::1]"),
    R("test@[IPv4:192.0.2.1]", "tag 'IPv4' is not registered"),
    /* IPv6-comp: "::" stands for at least two groups, so at most 6 beside it */
    V("test@[IPv6:1111:2222:3333:4444:5555::8888]", "test@[IPv6:1111:2222:3333:4444:5555::8888]", L),
    V("test@[IPv6:::3333:4444:5555:6666:7777:8888]", "test@[IPv6:::3333:4444:5555:6666:7777:8888]", L),
    V("test@[IPv6:1111:2222:3333:4444:5555:6666::]", "test@[IPv6:1111:2222:3333:4444:5555:6666::]", L),
    V("test@[IPv6:::]", "test@[IPv6:::]", L),
    V("test@[IPv6:::1]", "test@[IPv6:::1]", L),
    V("test@[IPv6:2001:db8::]", "test@[IPv6:2001:db8::]", L),
    /* isemail calls these deprecated (RFC 4291 allows "::" for one group);
     * RFC 5321's IPv6-comp does not */
    R("test@[IPv6:1111:2222:3333:4444:5555:6666::8888]", "at most 6 groups"),
    R("test@[IPv6:1:2:3:4:5:6:7::]", "at most 6 groups"),
    R("test@[IPv6:::2:3:4:5:6:7:8]", "at most 6 groups"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666::7777:8888]", "at most 6 groups"),
    R("test@[IPv6::3333:4444:5555:6666:7777:8888]", "empty group"),
    R("test@[IPv6:1111::4444:5555::8888]", "'::' appears twice"),
    R("test@[IPv6:1111:::5555]", "':::'"),
    R("test@[IPv6:1::2:]", "empty group"),
    R("test@[IPv6::]", "empty group"),
    R("test@[IPv6:::::]", "'::' appears twice"),
    /* IPv6v4-full: 6 groups and an IPv4 address */
    V("test@[IPv6:1111:2222:3333:4444:5555:6666:255.255.255.255]",
      "test@[IPv6:1111:2222:3333:4444:5555:6666:255.255.255.255]", L),
    R("test@[IPv6:1111:2222:3333:4444:5555:255.255.255.255]", "6 groups before its IPv4 part"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:7777:255.255.255.255]", "6 groups before its IPv4 part"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666:255.255.255.256]", "IPv4 part is not"),
    R("test@[IPv6:255.255.255.255:1111:2222:3333:4444:5555:6666]", "a group"),
    /* IPv6v4-comp: at most 4 groups beside "::", then an IPv4 address */
    V("test@[IPv6:1111:2222:3333:4444::255.255.255.255]", "test@[IPv6:1111:2222:3333:4444::255.255.255.255]", L),
    V("test@[IPv6:::255.255.255.255]", "test@[IPv6:::255.255.255.255]", L),
    V("test@[IPv6:::ffff:192.0.2.1]", "test@[IPv6:::ffff:192.0.2.1]", L),
    V("test@[IPv6:1111::2222:255.255.255.255]", "test@[IPv6:1111::2222:255.255.255.255]", L),
    R("test@[IPv6:1111:2222:3333:4444:5555::255.255.255.255]", "at most 4 groups"),
    R("test@[IPv6:1111:2222:3333:4444:5555:6666::255.255.255.255]", "at most 4 groups"),
    R("test@[IPv6:1111:2222:3333:4444:::255.255.255.255]", "':::'"),
    R("test@[IPv6::255.255.255.255]", "empty group"),
    R("test@[IPv6:1.2.3.4::]", "a group"),
    /* General-address-literal: the tag must be registered, and only IPv6 is */
    R("test@[x-tag:content]", "tag 'x-tag' is not registered with IANA"),
    R("test@[tag:]", "neither an IPv4 address"),
    R("test@[tag-:x]", "neither an IPv4 address"),
    R("test@[:x]", "neither an IPv4 address"),

    /* --- several addresses, display names, routes, the null path ------------ */
    R("a@example.com, b@example.com", "',' at character 14; give one address"),
    R("a@example.com;b@example.com", "';' at character 14"),
    R("Alice <alice@example.com>", "a display name or other text comes before '<' at character 7"),
    R("\"Alice\" <alice@example.com>", "display name"),
    R("<alice@example.com", "does not end with '>'"),
    R("alice@example.com>", "holds '>'"),
    R("<<alice@example.com>>", "two pairs of angle brackets"),
    R("<@relay.example:alice@example.com>", "source route"),
    R("@a.example,@b.example:alice@example.com", "source route"),
    R("<>", "'<>' is the null reverse-path, not a mailbox (RFC 5321 4.1.2)"),
    R("", "no address given"),
    R("   ", "no address given"),
};

static void test_grammar(void)
{
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++) {
        const gcase *c = &grammar[i];
        md_address a;
        md_error err = { 0 };
        md_status st = md_address_parse(c->in, &a, &err);
        if (c->ascii == NULL) {
            ok(st == MD_CONFIG && err.text[0] && strcmp(err.stage, "input.address") == 0,
               "refused: '%s' (%s)", c->in, st == MD_CONFIG ? err.text : "accepted");
            if (st == MD_CONFIG && c->why)
                ok(strstr(err.text, c->why) != NULL, "why '%s' is refused\n#   got:  %s\n#   want: ...%s...",
                   c->in, err.text, c->why);
        } else {
            is_int(st, MD_OK, "accepted: '%s' (%s)", c->in, st ? err.text : "");
            if (st != MD_OK)
                continue;
            is_str(a.ascii, c->ascii, "A-label form of '%s'", c->in);
            is_int(a.flags, c->flags, "flags of '%s'", c->in);
        }
    }
    /* The display form and the U-label domain. */
    md_address a;
    md_error err;
    md_address_parse("user@xn--bcher-kva.test", &a, &err);
    is_str(a.display, "user@b\xc3\xbc" "cher.test", "an A-label is shown as its U-label");
    is_str(a.domain_unicode, "b\xc3\xbc" "cher.test", "the domain's U-label form");
    md_address_parse("user@example.com", &a, &err);
    is_str(a.domain_unicode, "", "no U-label form for an ASCII domain");
}

/* "x" * n */
static char *rep(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
    return dst;
}

/* Labels of the given lengths ('d'... and the last 'e'...), dot-separated. */
static char *labels(char *dst, const size_t *lens, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            dst[o++] = '.';
        memset(dst + o, i + 1 < n ? 'd' : 'e', lens[i]);
        o += lens[i];
    }
    dst[o] = '\0';
    return dst;
}

static md_status parse(const char *s, md_address *a, md_error *err)
{
    return md_address_parse_len(s, strlen(s), 0, a, err);
}

static void test_lengths(void)
{
    char buf[1200], local[300], label[300], dom[300];
    md_address a;
    md_error err;

    /* the local part: 64 octets as written (RFC 5321 4.5.3.1.1) */
    snprintf(buf, sizeof buf, "%s@example.com", rep(local, 'a', 64));
    is_int(parse(buf, &a, &err), MD_OK, "64-octet local part accepted");
    snprintf(buf, sizeof buf, "%s@example.com", rep(local, 'a', 65));
    is_int(parse(buf, &a, &err), MD_CONFIG, "65-octet local part refused");
    ok(strstr(err.text, "the local part is 65 octets long (at most 64: RFC 5321 4.5.3.1.1)") != NULL,
       "its message: %s", err.text);
    snprintf(buf, sizeof buf, "\"%s\"@example.com", rep(local, 'a', 62));
    is_int(parse(buf, &a, &err), MD_OK, "quoted local part of 64 octets with its quotes accepted");
    snprintf(buf, sizeof buf, "\"%s\"@example.com", rep(local, 'a', 63));
    is_int(parse(buf, &a, &err), MD_CONFIG, "quoted local part of 65 octets with its quotes refused");
    snprintf(buf, sizeof buf, "\"%s\\\\\"@example.com", rep(local, 'a', 61));
    is_int(parse(buf, &a, &err), MD_CONFIG, "a backslash counts: 61 + 2 + 2 quotes = 65 octets refused");
    /* UTF-8 counts in octets: 32 two-octet characters are 64 octets */
    local[0] = '\0';
    for (int i = 0; i < 32; i++)
        strcat(local, "\xc3\xa9");
    snprintf(buf, sizeof buf, "%s@example.com", local);
    is_int(parse(buf, &a, &err), MD_OK, "32 x U+00E9 (64 octets) accepted");
    snprintf(buf, sizeof buf, "%sa@example.com", local);
    is_int(parse(buf, &a, &err), MD_CONFIG, "32 x U+00E9 and 'a' (65 octets) refused");

    /* labels: 63 octets (RFC 1035 2.3.4) */
    snprintf(buf, sizeof buf, "a@%s.com", rep(label, 'l', 63));
    is_int(parse(buf, &a, &err), MD_OK, "63-octet label accepted");
    snprintf(buf, sizeof buf, "a@%s.com", rep(label, 'l', 64));
    is_int(parse(buf, &a, &err), MD_CONFIG, "64-octet label refused");
    ok(strstr(err.text, "is 64 octets long (at most 63") != NULL, "its message: %s", err.text);

    /* the address: 254 octets (the 256-octet path minus its brackets) */
    /* 64 + 1 + 189 = 254; the domain is 3 labels of 49 and 'e'*35 + ".com" */
    static const size_t l189[] = { 49, 49, 49, 35 };
    strcat(labels(dom, l189, 4), ".com");
    is_int(strlen(dom), 189, "test domain is 189 octets");
    snprintf(buf, sizeof buf, "%s@%s", rep(local, 'a', 64), dom);
    is_int(strlen(buf), 254, "test address is 254 octets");
    is_int(parse(buf, &a, &err), MD_OK, "254-octet address accepted (%s)", err.text);
    snprintf(buf, sizeof buf, "%s@e%s", local, dom);
    is_int(parse(buf, &a, &err), MD_CONFIG, "255-octet address refused");
    ok(strstr(err.text, "is 255 octets long (at most 254") != NULL, "its message: %s", err.text);
    /* a 253-octet domain: the longest DNS name, but with a local part over 254 */
    static const size_t l253[] = { 63, 63, 63, 61 }, l254[] = { 63, 63, 63, 62 };
    labels(dom, l253, 4);
    is_int(strlen(dom), 253, "253-octet domain");
    snprintf(buf, sizeof buf, "a@%s", dom);
    is_int(parse(buf, &a, &err), MD_CONFIG, "a@ and a 253-octet domain (255 octets) refused");
    labels(dom, l254, 4);
    snprintf(buf, sizeof buf, "a@%s", dom);
    is_int(parse(buf, &a, &err), MD_CONFIG, "a 254-octet domain refused");
    /* a literal counts like a domain */
    snprintf(buf, sizeof buf, "%s@[IPv6:1111:2222:3333:4444:5555:6666:255.255.255.255]", rep(local, 'a', 64));
    is_int(parse(buf, &a, &err), MD_OK, "64-octet local part at an IPv6 literal accepted");

    /* IDN: both forms must fit.  'ü' * 20 is 40 octets as a U-label and
     * xn--tdaaaaaaaaaaaaaaaaaaaaa (26) as an A-label. */
    char ul[64] = "";
    for (int i = 0; i < 20; i++)
        strcat(ul, "\xc3\xbc");
    /* 64 + 1 + 40*4+3 (four U-labels) = 228 as given; 64 + 1 + 26*4+3 = 172 with A-labels */
    snprintf(buf, sizeof buf, "%s@%s.%s.%s.%s", rep(local, 'a', 64), ul, ul, ul, ul);
    is_int(parse(buf, &a, &err), MD_OK, "IDN address of 228 octets with U-labels accepted (%s)", err.text);
    /* six U-labels: 64 + 1 + 40*6+5 = 310 octets as given, 64 + 1 + 26*6+5 = 226 with A-labels */
    snprintf(buf, sizeof buf, "%s@%s.%s.%s.%s.%s.%s", local, ul, ul, ul, ul, ul, ul);
    is_int(parse(buf, &a, &err), MD_CONFIG, "IDN address of 310 octets with U-labels refused");
    ok(strstr(err.text, "is 310 octets long") != NULL, "its message: %s", err.text);
    /* the same given with A-labels: 226 octets as given, but its U-label
     * form (what an SMTPUTF8 server gets) is 310 */
    snprintf(buf, sizeof buf, "%s@xn--tdaaaaaaaaaaaaaaaaaaaa.xn--tdaaaaaaaaaaaaaaaaaaaa.xn--tdaaaaaaaaaaaaaaaaaaaa."
             "xn--tdaaaaaaaaaaaaaaaaaaaa.xn--tdaaaaaaaaaaaaaaaaaaaa.xn--tdaaaaaaaaaaaaaaaaaaaa", local);
    is_int(parse(buf, &a, &err), MD_CONFIG, "A-labels whose U-label form is over 254 octets refused");
    ok(strstr(err.text, "is 310 octets long with U-labels") != NULL, "its message: %s", err.text);
    /* text far over any limit is refused before the grammar reads it */
    char big[5000];
    rep(big, 'a', 4999);
    big[10] = '@';
    is_int(parse(big, &a, &err), MD_CONFIG, "4999 octets refused");
    ok(strstr(err.text, "4999 octets long") != NULL, "its message: %s", err.text);
}

/* Bytes a C string cannot hold, and the lengths md_address_parse_len takes. */
static void test_bytes(void)
{
    md_address a;
    md_error err;
    is_int(md_address_parse_len("a\0b@example.com", 15, 0, &a, &err), MD_CONFIG, "a NUL inside refused");
    ok(strstr(err.text, "a NUL byte at character 2") != NULL, "its message: %s", err.text);
    is_int(md_address_parse_len("a@example.com\0", 14, 0, &a, &err), MD_CONFIG, "a NUL at the end refused");
    is_int(md_address_parse_len("\0a@example.com", 14, 0, &a, &err), MD_CONFIG, "a NUL at the start refused");
    is_int(md_address_parse_len("a@example.comXYZ", 13, 0, &a, &err), MD_OK, "only len octets are read");
    is_str(a.ascii, "a@example.com", "... and only they are kept");
    is_int(md_address_parse_len(NULL, 0, 0, &a, &err), MD_CONFIG, "NULL refused");
    is_int(md_address_parse(NULL, &a, &err), MD_CONFIG, "NULL refused by md_address_parse");
}

static void test_input_handling(void)
{
    static const struct {
        const char *in;
        unsigned opts;
        const char *ascii;   /* NULL: refused; "" the null path */
        unsigned flags;
    } cases[] = {
        { "  Alice@Example.COM ", 0, "Alice@example.com", MD_ADDRESS_TRIMMED },
        { "\ta@example.com\t", 0, "a@example.com", MD_ADDRESS_TRIMMED },
        { "\xc2\xa0" "a@example.com\xc2\xa0", 0, "a@example.com", MD_ADDRESS_TRIMMED },
        { "\xe2\x80\x8b" "a@example.com\xef\xbb\xbf", 0, "a@example.com", MD_ADDRESS_TRIMMED },
        { "\xe3\x80\x80" "a@example.com", 0, "a@example.com", MD_ADDRESS_TRIMMED },
        { "<bob@example.com>", 0, "bob@example.com", MD_ADDRESS_BRACKETS },
        { " <bob@example.com> ", 0, "bob@example.com", MD_ADDRESS_BRACKETS | MD_ADDRESS_TRIMMED },
        { "<\"a b\"@example.com>", 0, "\"a b\"@example.com", MD_ADDRESS_BRACKETS | Q },
        { "< bob@example.com>", 0, NULL, 0 },          /* nothing inside the brackets is trimmed */
        { "a@example.com\n", 0, NULL, 0 },            /* a line break is no blank */
        { "\xc2\xa0" "a" "\xc2\xa0" "b@example.com", 0, "a\xc2\xa0" "b@example.com", MD_ADDRESS_TRIMMED | U8 },
        { "<>", MD_ADDRESS_OPT_NULL_PATH, "", MD_ADDRESS_NULL | MD_ADDRESS_BRACKETS },
        { " <> ", MD_ADDRESS_OPT_NULL_PATH, "", MD_ADDRESS_NULL | MD_ADDRESS_BRACKETS | MD_ADDRESS_TRIMMED },
        { "", MD_ADDRESS_OPT_NULL_PATH, "", MD_ADDRESS_NULL },
        { "a@example.com", MD_ADDRESS_OPT_NULL_PATH, "a@example.com", 0 },
        { "<<>>", MD_ADDRESS_OPT_NULL_PATH, NULL, 0 },
        { "<a@example.com>", MD_ADDRESS_OPT_NULL_PATH, "a@example.com", MD_ADDRESS_BRACKETS },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_address a;
        md_error err = { 0 };
        md_status st = md_address_parse_len(cases[i].in, strlen(cases[i].in), cases[i].opts, &a, &err);
        if (cases[i].ascii == NULL) {
            is_int(st, MD_CONFIG, "input handling refuses '%s' (%s)", cases[i].in, st ? err.text : "accepted");
            continue;
        }
        is_int(st, MD_OK, "input handling accepts '%s' (%s)", cases[i].in, st ? err.text : "");
        is_str(a.ascii, cases[i].ascii, "'%s' read as", cases[i].in);
        is_int(a.flags, cases[i].flags, "flags of '%s'", cases[i].in);
    }
    /* a NBSP inside the local part is RFC 6531 atext: only the outer ones go */
    md_address a;
    md_error err;
    md_address_parse("\xc2\xa0\xc2\xa0x\xc2\xa0@example.com", &a, &err);
    is_str(a.local, "x\xc2\xa0", "blanks are removed around the address only");
    is_str(a.mailbox, "x\xc2\xa0@example.com", "the mailbox as given, without them");
}

static void test_exact(void)
{
    static const struct { const char *in; unsigned opts; md_status want; } cases[] = {
        { "a@example.com", 0, MD_OK },
        { "\"john doe\"@example.com", 0, MD_OK },
        { "j\xc3\xb6rg@b\xc3\xbc" "cher.test", 0, MD_OK },
        { "a@[IPv6:::1]", 0, MD_OK },
        { " a@example.com", 0, MD_CONFIG },
        { "a@example.com ", 0, MD_CONFIG },
        { "\xc2\xa0" "a@example.com", 0, MD_OK },        /* as given: RFC 6531 atext */
        { "a@example.com\xc2\xa0", 0, MD_CONFIG },       /* not a valid U-label */
        { "<a@example.com>", 0, MD_CONFIG },
        { "<>", 0, MD_CONFIG },
        { "<>", MD_ADDRESS_OPT_NULL_PATH, MD_CONFIG },   /* exact: "" is the null path */
        { "", MD_ADDRESS_OPT_NULL_PATH, MD_OK },
        { "", 0, MD_CONFIG },
        { ".a@example.com", 0, MD_CONFIG },
        { "a.@example.com", 0, MD_CONFIG },
        { "a@-example.com", 0, MD_CONFIG },
        { "a@example.com\r\nBcc: x@example.com", 0, MD_CONFIG },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_error err = { 0 };
        unsigned flags = 99;
        md_status st = md_address_check(cases[i].in, cases[i].opts, &flags, &err);
        is_int(st, cases[i].want, "md_address_check('%s', %u) (%s)", cases[i].in, cases[i].opts,
               st ? err.text : "accepted");
        if (st != MD_OK)
            is_int(flags, 0, "no flags for a refused address");
    }
    unsigned flags;
    md_address_check("\"x\"@[192.0.2.1]", 0, &flags, NULL);
    is_int(flags, Q | L, "md_address_check gives the flags");
    is_int(md_address_check(NULL, 0, NULL, NULL), MD_CONFIG, "md_address_check(NULL)");
    md_error err;
    md_address_check(" a@example.com", 0, NULL, &err);
    ok(strstr(err.text, "space at its start") != NULL, "exact: a space is named: %s", err.text);
    md_address_check("<a@example.com>", 0, NULL, &err);
    ok(strstr(err.text, "angle brackets") != NULL, "exact: brackets are named: %s", err.text);
}

/* Every accepted address parses again from each of its forms, to the same
 * key, and every form fits the limits. */
static void test_roundtrip(void)
{
    for (size_t i = 0; i < sizeof grammar / sizeof grammar[0]; i++) {
        if (grammar[i].ascii == NULL)
            continue;
        md_address a, b;
        md_error err;
        char key[MD_ADDRESS_MAX + 1], key2[MD_ADDRESS_MAX + 1];
        if (md_address_parse(grammar[i].in, &a, &err) != MD_OK)
            continue;   /* test_grammar said so */
        md_address_key(&a, 0, key, sizeof key);
        const char *forms[] = { a.mailbox, a.ascii, a.display, key };
        int good = 1;
        for (size_t f = 0; f < 4; f++) {
            if (strlen(forms[f]) > MD_ADDRESS_MAX ||
                md_address_parse_len(forms[f], strlen(forms[f]), MD_ADDRESS_OPT_EXACT, &b, &err) != MD_OK ||
                md_address_key(&b, 0, key2, sizeof key2) != MD_OK || strcmp(key, key2) != 0) {
                good = 0;
                printf("#   form %zu '%s' gives '%s'\n", f, forms[f], key2);
            }
        }
        ok(good, "every form of '%s' parses again to the key '%s'", grammar[i].in, key);
    }
}

static void test_flag_words(void)
{
    int good = 1;
    for (unsigned bit = 1; bit <= MD_ADDRESS_BRACKETS; bit <<= 1)
        if (!md_address_flag_note(bit) || !md_address_flag_name(bit))
            good = 0;
    ok(good, "every flag has a note and a name");
    ok(md_address_flag_note(0) == NULL && md_address_flag_note(Q | L) == NULL, "no note for 0 or two flags");
    is_str(md_address_flag_name(MD_ADDRESS_QUOTED), "quoted", "a flag's name");
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
        { "user@B\xc3\xbc" "CHER.test", 0, "user@xn--bcher-kva.test", "" },
        { "user@XN--BCHER-KVA.test", 0, "user@xn--bcher-kva.test", "" },
        { "\"\"@example.com", 0, "\"\"@example.com", "" },
        { "\"A\\ B\"@example.com", 0, "\"a b\"@example.com", "" },
        { "\"a\\\"b\"@example.com", 0, "\"a\\\"b\"@example.com", "" },
        { "\"j\xc3\xb6rg\"@example.com", 0, "j\xc3\xb6rg@example.com", "" },
        { "a@[IPv6:2001:DB8::1]", 0, "a@[IPv6:2001:db8::1]", "" },
        { "a@[ipv6:::FFFF:192.0.2.1]", 0, "a@[IPv6:::ffff:192.0.2.1]", "" },
        { "A@[192.0.2.1]", 0, "a@[192.0.2.1]", "" },
        { " <John.Smith@Gmail.com> ", 0, "john.smith@gmail.com", "johnsmith@gmail.com" },
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
    char sug[MD_ADDRESS_DOMAIN_MAX + 1];
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
    test_grammar();
    test_lengths();
    test_bytes();
    test_input_handling();
    test_exact();
    test_roundtrip();
    test_flag_words();
    test_key();
    test_distance();
    test_suggest();
    return tap_done();
}
