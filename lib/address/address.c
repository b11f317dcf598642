/* lib/address: the RFC 5321 Mailbox grammar, lookup keys, typo suggestions
 * (see address.h for the grammar and the decisions behind it). */
#include "config.h"
#include "address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STAGE "input.address"
/* Text longer than this is refused before the grammar looks at it. */
#define TEXT_MAX 4096

static md_status bad(md_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static md_status bad(md_error *err, const char *fmt, ...)
{
    char text[MD_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* a message cut at its size must not end inside a character */
    md_sanitize_text(text, sizeof text, text, strlen(text), 0);
    return md_error_set(err, MD_CONFIG, STAGE, "%s", text);
}

/* RFC 5322 3.2.3 atext, ASCII part. */
static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 5321 Let-dig: an ASCII letter or digit, whatever the locale. */
static int is_let_dig(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Blanks that input handling removes around an address: SP, TAB, and the
 * spaces and invisible characters that copying from a page brings. */
static int is_blank(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200b) ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff;
}

/* The 1-based character position of offset off in text (valid UTF-8 up
 * to off), as a person counts. */
static size_t pos(const char *text, size_t off)
{
    size_t n = 0;
    for (size_t i = 0; i < off; i++)
        if (((unsigned char)text[i] & 0xc0) != 0x80)
            n++;
    return n + 1;
}

/* Length of the (well-formed, checked before) UTF-8 character at s. */
static size_t char_len(const char *s, size_t avail)
{
    uint32_t cp;
    size_t n = md_utf8_decode(s, avail, &cp);
    return n ? n : 1;
}

/* What a control character is called in a message. */
static const char *control_name(uint32_t cp, char *buf, size_t size)
{
    switch (cp) {
    case 0: return "a NUL byte";
    case '\t': return "a tab";
    case '\n': return "a line feed (LF, a line break)";
    case '\r': return "a carriage return (CR, a line break)";
    default:
        snprintf(buf, size, "the control character U+%04X", (unsigned)cp);
        return buf;
    }
}

static md_status too_long(md_error *err, size_t n)
{
    return bad(err, "the address is %zu octets long (at most 254: the path of RFC 5321 4.5.3.1.3 is"
                    " 256 octets with its angle brackets)", n);
}

/* --- address literals (RFC 5321 4.1.3) ------------------------------------ */

/* IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0..255. */
static int is_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255)
            return 0;
    }
    return i == n;
}

/* The ':'-separated IPv6-hex groups of s[0..n) (n may be 0: none); the last
 * may be an IPv4 address when v4_ok.  Returns the number of hex groups, or
 * -1 with *why set; *v4 says whether an IPv4 part ended it. */
static int hex_groups(const char *s, size_t n, int v4_ok, int *v4, const char **why)
{
    int groups = 0;
    *v4 = 0;
    if (n == 0)
        return 0;
    size_t i = 0;
    for (;;) {
        const char *colon = memchr(s + i, ':', n - i);
        size_t end = colon ? (size_t)(colon - s) : n;
        size_t len = end - i;
        if (len == 0) {
            *why = "it has an empty group (a ':' at the start or the end, or ':::')";
            return -1;
        }
        if (colon == NULL && v4_ok && memchr(s + i, '.', len) != NULL) {
            if (!is_ipv4(s + i, len)) {
                *why = "its IPv4 part is not four numbers from 0 to 255 separated by dots";
                return -1;
            }
            *v4 = 1;
            return groups;
        }
        if (len > 4) {
            *why = "a group has more than 4 hexadecimal digits";
            return -1;
        }
        for (size_t k = i; k < end; k++)
            if (!is_hex((unsigned char)s[k])) {
                *why = "a group holds a character that is not a hexadecimal digit";
                return -1;
            }
        groups++;
        if (colon == NULL)
            return groups;
        i = end + 1;
    }
}

/* IPv6-addr = IPv6-full / IPv6-comp / IPv6v4-full / IPv6v4-comp, with the
 * group counts of RFC 5321 4.1.3 ("::" stands for at least two groups). */
static int is_ipv6(const char *s, size_t n, const char **why)
{
    const char *dc = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == ':') {
            dc = s + i;
            break;
        }
    int v4 = 0, v4l = 0;
    if (dc == NULL) {
        int g = hex_groups(s, n, 1, &v4, why);
        if (g < 0)
            return 0;
        if (g != (v4 ? 6 : 8)) {
            *why = v4 ? "it needs 6 groups before its IPv4 part, or '::'"
                      : "it needs 8 groups, or '::' for two or more groups of zeros";
            return 0;
        }
        return 1;
    }
    size_t ln = (size_t)(dc - s);
    const char *r = dc + 2;
    size_t rn = n - ln - 2;
    for (size_t i = 0; i + 1 < rn; i++)
        if (r[i] == ':' && r[i + 1] == ':') {
            *why = "'::' appears twice";
            return 0;
        }
    if (rn > 0 && r[0] == ':') {
        *why = "it has ':::'";
        return 0;
    }
    int gl = hex_groups(s, ln, 0, &v4l, why);
    if (gl < 0)
        return 0;
    int gr = hex_groups(r, rn, 1, &v4, why);
    if (gr < 0)
        return 0;
    if (gl + gr > (v4 ? 4 : 6)) {
        *why = v4 ? "with '::' and an IPv4 part at most 4 groups may be written ('::' stands for"
                    " at least two groups of zeros)"
                  : "with '::' at most 6 groups may be written ('::' stands for at least two"
                    " groups of zeros)";
        return 0;
    }
    return 1;
}

/* Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig, here for a Standardized-tag. */
static int is_ldh_str(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_let_dig((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

/* The address literal d[0..n) ("[" ... "]"), at offset off of text. */
static md_status parse_literal(const char *text, const char *d, size_t n, size_t off,
                               size_t total, md_address *out, md_error *err)
{
    const char *close = memchr(d, ']', n);
    if (close == NULL)
        return bad(err, "the address literal opened with '[' at character %zu has no closing ']'"
                        " (RFC 5321 4.1.3)", pos(text, off));
    const char *in = d + 1;
    size_t len = (size_t)(close - in);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80 || c == ' ' || c == '[' || c == '\\')
            return bad(err, "the address literal holds %s at character %zu; an address literal is"
                            " printable ASCII without spaces, '[', '\\' or ']' (RFC 5321 4.1.3)",
                       c >= 0x80 ? "a non-ASCII character" : c == ' ' ? "a space" : c == '[' ? "'['" : "a backslash",
                       pos(text, off + 1 + i));
    }
    if ((size_t)(close - d) != n - 1)
        return bad(err, "text follows the address literal's ']' at character %zu (RFC 5321 4.1.3)",
                   pos(text, off + (size_t)(close - d)));
    if (len == 0)
        return bad(err, "the address literal [] is empty (RFC 5321 4.1.3)");
    const char *colon = memchr(in, ':', len);
    const char *why = "";
    if (n > MD_ADDRESS_DOMAIN_MAX)   /* the canonical form below is as long as d */
        return too_long(err, total);
    if (colon == NULL) {
        if (!is_ipv4(in, len))
            return bad(err, "the address literal [%.*s] is not an IPv4 address (four numbers from 0"
                            " to 255 separated by dots); an IPv6 address needs the tag, as in"
                            " [IPv6:2001:db8::1] (RFC 5321 4.1.3)", (int)(len > 60 ? 60 : len), in);
        memcpy(out->domain, d, n);
        out->domain[n] = '\0';
    } else {
        size_t tl = (size_t)(colon - in);
        const char *rest = colon + 1;
        size_t rl = len - tl - 1;
        if (tl == 4 && strncasecmp(in, "IPv6", 4) == 0) {
            if (!is_ipv6(rest, rl, &why))
                return bad(err, "the address literal [%.*s] is not an IPv6 address: %s (RFC 5321 4.1.3)",
                           (int)(len > 60 ? 60 : len), in, why);
            memcpy(out->domain, "[IPv6:", 6);   /* the tag's spelling in the RFC */
            for (size_t i = 0; i < rl; i++)
                out->domain[6 + i] = lower(rest[i]);
            memcpy(out->domain + 6 + rl, "]", 2);
        } else if (is_ipv6(in, len, &why)) {
            return bad(err, "an IPv6 address literal needs its tag, as in [IPv6:%.*s] (RFC 5321 4.1.3)",
                       (int)(len > 60 ? 60 : len), in);
        } else if (!is_ldh_str(in, tl) || rl == 0) {
            return bad(err, "the address literal [%.*s] is neither an IPv4 address, nor 'IPv6:' and an"
                            " IPv6 address, nor a tag, ':' and content (RFC 5321 4.1.3)",
                       (int)(len > 60 ? 60 : len), in);
        } else {
            /* dcontent (%d33-90 / %d94-126) holds after the checks above. */
            return bad(err, "the address literal's tag '%.*s' is not registered with IANA, which RFC"
                            " 5321 4.1.3 requires (only 'IPv6' is)", (int)(tl > 40 ? 40 : tl), in);
        }
    }
    out->flags |= MD_ADDRESS_LITERAL;
    return MD_OK;
}

/* --- the local part (RFC 5321 4.1.2, RFC 6531 3.3) --------------------- */

/* The local part at the start of s[0..n) (offset off of text): its length
 * up to the '@' into *llen. */
static md_status parse_local(const char *text, const char *s, size_t n, size_t off, size_t *llen,
                             md_address *out, md_error *err)
{
    size_t i = 0;
    if (s[0] == '"') {
        out->flags |= MD_ADDRESS_QUOTED;
        for (i = 1;;) {
            if (i >= n)
                return bad(err, "the quoted local part opened at character %zu has no closing quote"
                                " (RFC 5321 4.1.2)", pos(text, off));
            unsigned char c = (unsigned char)s[i];
            if (c == '"') {
                i++;
                break;
            }
            if (c == '\\') {
                if (i + 1 >= n)
                    return bad(err, "the quoted local part ends with a backslash at character %zu and"
                                    " has no closing quote (RFC 5321 4.1.2)", pos(text, off + i));
                unsigned char e = (unsigned char)s[i + 1];
                if (e < 32 || e > 126)
                    return bad(err, "the backslash at character %zu escapes a non-ASCII character;"
                                    " inside quotes a backslash escapes only printable ASCII or a space"
                                    " (RFC 5321 4.1.2 quoted-pairSMTP)", pos(text, off + i));
                i += 2;
                continue;
            }
            if (c >= 0x80) {
                out->flags |= MD_ADDRESS_UTF8_LOCAL;
                i += char_len(s + i, n - i);
                continue;
            }
            i++;   /* qtextSMTP: printable ASCII and space but '"' and '\' */
        }
        if (i >= n)
            return bad(err, "the address has no '@' after its quoted local part");
        if (s[i] != '@') {
            if (s[i] == '.')
                return bad(err, "the quoted string ending at character %zu is joined to more text by a"
                                " dot; a quoted string must be the whole local part (\"a\".b is obsolete"
                                " RFC 5322 syntax, not RFC 5321 4.1.2)", pos(text, off + i - 1));
            if (s[i] == ' ' || s[i] == '(')
                return bad(err, "%s follows the closing quote at character %zu; comments and folding"
                                " white space are message-header syntax (RFC 5322), not part of an"
                                " address (RFC 5321 4.1.2)", s[i] == ' ' ? "a space" : "a comment",
                           pos(text, off + i - 1));
            return bad(err, "the quoted string ending at character %zu is followed by more text where"
                            " '@' must come; a quoted string must be the whole local part (RFC 5321 4.1.2)",
                       pos(text, off + i - 1));
        }
        *llen = i;
        return MD_OK;
    }
    for (;;) {
        if (i >= n)
            return bad(err, "the address has no '@'");
        unsigned char c = (unsigned char)s[i];
        if (c == '@')
            break;
        if (c == '.') {
            if (i == 0)
                return bad(err, "the local part starts with a dot (RFC 5321 4.1.2)");
            if (s[i - 1] == '.')
                return bad(err, "the local part has two dots in a row at character %zu (RFC 5321 4.1.2)",
                           pos(text, off + i - 1));
            if (i + 1 < n && s[i + 1] == '@')
                return bad(err, "the local part ends with a dot (RFC 5321 4.1.2)");
            i++;
            continue;
        }
        if (c >= 0x80) {
            out->flags |= MD_ADDRESS_UTF8_LOCAL;
            i += char_len(s + i, n - i);
            continue;
        }
        if (is_atext(c)) {
            i++;
            continue;
        }
        size_t p = pos(text, off + i);
        switch (c) {
        case ' ':
            return bad(err, "a space at character %zu; a space in the local part must be inside quotes,"
                            " as in \"john doe\"@example.com (RFC 5321 4.1.2)", p);
        case '"':
            return bad(err, "a quote at character %zu; quotes must enclose the whole local part"
                            " (RFC 5321 4.1.2)", p);
        case '(':
        case ')':
            return bad(err, "a comment ('%c') at character %zu; comments are message-header syntax"
                            " (RFC 5322 3.2.2), not part of an address (RFC 5321 4.1.2)", c, p);
        case '\\':
            return bad(err, "a backslash at character %zu; outside quotes a local part cannot escape"
                            " anything (RFC 5321 4.1.2)", p);
        default:
            return bad(err, "'%c' at character %zu is not allowed in a local part outside quotes"
                            " (RFC 5321 4.1.2)", c, p);
        }
    }
    if (i == 0)
        return bad(err, "nothing comes before the '@': the local part is empty (RFC 5321 4.1.2)");
    *llen = i;
    return MD_OK;
}

/* --- the Mailbox ------------------------------------------------------------ */

/* local "@" domain into dst; the lengths were checked before. */
static void join(char *dst, size_t size, const char *local, const char *domain)
{
    size_t l = strlen(local), d = strlen(domain);
    if (l + 1 + d >= size) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, local, l);
    dst[l] = '@';
    memcpy(dst + l + 1, domain, d + 1);
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) on s[0..n), which
 * starts at offset off of text. */
static md_status parse_mailbox(const char *text, const char *s, size_t n, size_t off,
                               md_address *out, md_error *err)
{
    size_t llen = 0;
    md_status st = parse_local(text, s, n, off, &llen, out, err);
    if (st != MD_OK)
        return st;
    const char *d = s + llen + 1;
    size_t dn = n - llen - 1, doff = off + llen + 1;
    if (dn == 0)
        return bad(err, "nothing comes after the '@': the domain is missing (RFC 5321 4.1.2)");
    if (llen > MD_ADDRESS_LOCAL_MAX)
        return bad(err, "the local part is %zu octets long (at most 64: RFC 5321 4.5.3.1.1)", llen);
    if (d[0] == '[') {
        if ((st = parse_literal(text, d, dn, doff, n, out, err)) != MD_OK)
            return st;
    } else {
        /* What only an address can hold gets its own words; the domain's
         * own rules are lib/base's. */
        for (size_t i = 0; i < dn; i++) {
            unsigned char c = (unsigned char)d[i];
            if (c == '@')
                return bad(err, "a second '@' at character %zu; outside quotes an address has one '@'"
                                " (RFC 5321 4.1.2)", pos(text, doff + i));
            if (c == '(' || c == ')')
                return bad(err, "a comment ('%c') at character %zu; comments are message-header syntax"
                                " (RFC 5322 3.2.2), not part of an address (RFC 5321 4.1.2)", c,
                           pos(text, doff + i));
            if (c == '[' || c == ']')
                return bad(err, "'%c' at character %zu; an address literal is the whole domain, as in"
                                " user@[192.0.2.1] (RFC 5321 4.1.3)", c, pos(text, doff + i));
            if (c == ',' || c == ';')
                return bad(err, "'%c' at character %zu; give one address (a list of addresses is"
                                " message-header syntax, RFC 5322 3.4)", c, pos(text, doff + i));
        }
        unsigned info = 0;
        char uni[MD_DOMAIN_UNICODE_MAX + 1];
        md_error derr;
        if (md_domain_normalize(d, dn, 0, out->domain, sizeof out->domain, uni, sizeof uni, &info,
                                &derr) != MD_OK)
            return bad(err, "%s", derr.text);
        if (info & MD_DOMAIN_SINGLE_LABEL)
            out->flags |= MD_ADDRESS_SINGLE_LABEL;
        if (info & MD_DOMAIN_NUMERIC_TLD)
            out->flags |= MD_ADDRESS_NUMERIC_TLD;
        if (info & MD_DOMAIN_IDN)
            out->flags |= MD_ADDRESS_IDN;
        if (info & MD_DOMAIN_ULABEL)
            out->flags |= MD_ADDRESS_NON_ASCII;
        size_t ul = strlen(uni), al = strlen(out->domain);
        if (n > MD_ADDRESS_MAX)
            return too_long(err, n);
        if (llen + 1 + ul > MD_ADDRESS_MAX)
            return bad(err, "the address is %zu octets long with U-labels (at most 254: the path of"
                            " RFC 5321 4.5.3.1.3 is 256 octets with its angle brackets)", llen + 1 + ul);
        if (llen + 1 + al > MD_ADDRESS_MAX)
            return bad(err, "the address is %zu octets long with its domain in A-labels (at most 254:"
                            " the path of RFC 5321 4.5.3.1.3 is 256 octets with its angle brackets)",
                       llen + 1 + al);
        memcpy(out->domain_unicode, uni, ul + 1);
    }
    if (out->flags & MD_ADDRESS_UTF8_LOCAL)
        out->flags |= MD_ADDRESS_NON_ASCII;
    if (n > MD_ADDRESS_MAX)
        return too_long(err, n);

    memcpy(out->mailbox, s, n);
    out->mailbox[n] = '\0';
    memcpy(out->local, s, llen);
    out->local[llen] = '\0';
    join(out->ascii, sizeof out->ascii, out->local, out->domain);
    join(out->display, sizeof out->display, out->local,
         out->domain_unicode[0] ? out->domain_unicode : out->domain);
    return MD_OK;
}

static md_status null_path(unsigned opts, md_address *out, md_error *err, const char *given)
{
    if (opts & MD_ADDRESS_OPT_NULL_PATH) {
        out->flags |= MD_ADDRESS_NULL;
        return MD_OK;
    }
    if (given[0] == '\0')
        return bad(err, "no address given (the text is empty%s)",
                   out->flags & MD_ADDRESS_TRIMMED ? " but for blanks" : "");
    return bad(err, "'<>' is the null reverse-path, not a mailbox (RFC 5321 4.1.2)");
}

md_status md_address_parse_len(const char *text, size_t len, unsigned opts, md_address *out,
                               md_error *err)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return bad(err, "no address given");
    if (len > TEXT_MAX)
        return bad(err, "the text is %zu octets long; an address is at most 254 (RFC 5321 4.5.3.1.3)", len);
    /* Well-formed UTF-8 first: every later step walks characters. */
    size_t b = 0, e = len;
    int seen = 0;
    for (size_t i = 0, n; i < len; i += n) {
        uint32_t cp;
        if ((n = md_utf8_decode(text + i, len - i, &cp)) == 0)
            return bad(err, "the text holds bytes that are not UTF-8 at octet %zu (an overlong form, a"
                            " surrogate, a cut-short or otherwise ill-formed sequence)", i + 1);
        if (!(opts & MD_ADDRESS_OPT_EXACT) && !is_blank(cp)) {
            if (!seen)
                b = i;
            seen = 1;
            e = i + n;
        }
    }
    if (!(opts & MD_ADDRESS_OPT_EXACT)) {
        if (!seen)
            b = e = len;
        if (b > 0 || e < len)
            out->flags |= MD_ADDRESS_TRIMMED;
    }
    for (size_t i = b, n; i < e; i += n) {
        uint32_t cp;
        n = md_utf8_decode(text + i, e - i, &cp);
        if (md_unicode_is_control(cp)) {
            char name[40];
            return bad(err, "the text holds %s at character %zu; no control character may be part of an"
                            " address", control_name(cp, name, sizeof name), pos(text, i));
        }
    }
    const char *s = text + b;
    size_t n = e - b, off = b;
    if (n == 0)
        return null_path(opts, out, err, "");
    if (s[0] == '<') {
        if (opts & MD_ADDRESS_OPT_EXACT)
            return bad(err, "the address is in angle brackets; give it without them");
        if (s[n - 1] != '>')
            return bad(err, "the text opens '<' at character %zu but does not end with '>'", pos(text, off));
        s++;
        n -= 2;
        off++;
        out->flags |= MD_ADDRESS_BRACKETS;
        if (n == 0)
            return null_path(opts, out, err, "<>");
        if (s[0] == '<' || s[n - 1] == '>')
            return bad(err, "the address is in two pairs of angle brackets; one pair at most");
    } else if (s[n - 1] == '>' && memchr(s, '<', n) != NULL) {
        return bad(err, "a display name or other text comes before '<' at character %zu; give the"
                        " address alone, as in alice@example.com", pos(text, off + (size_t)((const char *)memchr(s, '<', n) - s)));
    }
    /* Exact text: a space at an edge is a pasting slip, named as such (other
     * blanks are what the grammar makes of them: a NBSP is RFC 6531 atext). */
    if ((opts & MD_ADDRESS_OPT_EXACT) && (s[0] == ' ' || s[n - 1] == ' '))
        return bad(err, "the address has a space at its %s; give it without blanks around it",
                   s[0] == ' ' ? "start" : "end");
    if (s[0] == '@' && memchr(s, ':', n) != NULL)
        return bad(err, "the text starts with a source route ('@host:'), obsolete syntax that is not"
                        " part of a mailbox (RFC 5321 4.1.2); give the mailbox alone");
    unsigned changed = out->flags;
    md_status st = parse_mailbox(text, s, n, off, out, err);
    out->flags |= changed;
    return st;
}

md_status md_address_parse(const char *input, md_address *out, md_error *err)
{
    return md_address_parse_len(input, input ? strlen(input) : 0, 0, out, err);
}

md_status md_address_check(const char *mailbox, unsigned opts, unsigned *flags, md_error *err)
{
    md_address *a = md_xmalloc(sizeof *a);
    md_status st = md_address_parse_len(mailbox, mailbox ? strlen(mailbox) : 0,
                                        opts | MD_ADDRESS_OPT_EXACT, a, err);
    if (flags)
        *flags = st == MD_OK ? a->flags : 0;
    free(a);
    return st;
}

static const struct { unsigned flag; const char *name, *note; } flag_words[] = {
    { MD_ADDRESS_QUOTED, "quoted",
      "the local part is a quoted string: valid (RFC 5321 4.1.2), but many systems refuse such addresses" },
    { MD_ADDRESS_LITERAL, "literal",
      "the domain is an address literal (an IP address in brackets): valid (RFC 5321 4.1.3), but most"
      " servers refuse mail to one" },
    { MD_ADDRESS_SINGLE_LABEL, "single_label",
      "the domain is a single label: valid syntax, but mail needs a fully qualified domain"
      " (RFC 5321 2.3.5)" },
    { MD_ADDRESS_NUMERIC_TLD, "numeric_tld",
      "the domain's last label is all digits, which no top-level domain is (RFC 3696 2); an IP"
      " address goes in brackets, as in user@[192.0.2.1]" },
    { MD_ADDRESS_UTF8_LOCAL, "utf8_local",
      "the local part is not ASCII: only servers that offer SMTPUTF8 (RFC 6531) can take the address" },
    { MD_ADDRESS_NON_ASCII, "non_ascii",
      "the address is not ASCII: as given, only servers that offer SMTPUTF8 (RFC 6531) can take it" },
    { MD_ADDRESS_IDN, "idn", "the domain is internationalized: it is used in its A-label form" },
    { MD_ADDRESS_NULL, "null", "the null reverse-path <>" },
    { MD_ADDRESS_TRIMMED, "trimmed", "the blanks around the address were removed" },
    { MD_ADDRESS_BRACKETS, "brackets", "the angle brackets around the address were removed" },
};

const char *md_address_flag_note(unsigned flag)
{
    for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++)
        if (flag_words[i].flag == flag)
            return flag_words[i].note;
    return NULL;
}

const char *md_address_flag_name(unsigned flag)
{
    for (size_t i = 0; i < sizeof flag_words / sizeof flag_words[0]; i++)
        if (flag_words[i].flag == flag)
            return flag_words[i].name;
    return NULL;
}

/* --- lookup keys ---------------------------------------------------------- */

/* Whether s[0..n) is a Dot-string (atext, UTF-8 or single inner dots). */
static int is_dot_string(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0 || u[0] == '.' || u[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (u[i] == '.' && u[i + 1] == '.')
            return 0;
        if (u[i] != '.' && u[i] < 0x80 && !is_atext(u[i]))
            return 0;
    }
    return 1;
}

md_status md_address_key(const md_address *a, unsigned flags, char *key, size_t size)
{
    char local[MD_ADDRESS_LOCAL_MAX + 1];
    size_t o = 0;
    if (size)
        key[0] = '\0';
    if ((a->flags & MD_ADDRESS_NULL) || a->local[0] == '\0')
        return MD_CONFIG;
    if (a->flags & MD_ADDRESS_QUOTED) {
        /* The content, escapes removed; the parser checked the form. */
        char content[MD_ADDRESS_LOCAL_MAX + 1];
        size_t cl = 0, n = strlen(a->local);
        for (size_t i = 1; i + 1 < n; i++) {
            if (a->local[i] == '\\')
                i++;
            content[cl++] = a->local[i];
        }
        content[cl] = '\0';
        if (is_dot_string(content, cl)) {
            memcpy(local, content, cl + 1);
            o = cl;
        } else {
            /* Re-quoted with only '"' and '\' escaped: never longer than
             * the quoted form it came from. */
            local[o++] = '"';
            for (size_t i = 0; i < cl; i++) {
                if (content[i] == '"' || content[i] == '\\')
                    local[o++] = '\\';
                local[o++] = content[i];
            }
            local[o++] = '"';
            local[o] = '\0';
        }
    } else {
        o = strlen(a->local);
        memcpy(local, a->local, o + 1);
    }
    if (!(flags & MD_ADDRESS_CASE_SENSITIVE))
        for (size_t i = 0; i < o; i++)
            if (local[i] >= 'A' && local[i] <= 'Z')
                local[i] = (char)(local[i] - 'A' + 'a');
    if ((size_t)snprintf(key, size, "%s@%s", local, a->domain) >= size) {
        if (size)
            key[0] = '\0';
        return MD_CONFIG;
    }
    return MD_OK;
}

int md_address_provider_key(const md_address *a, char *key, size_t size)
{
    if (size)
        key[0] = '\0';
    if (a->flags & (MD_ADDRESS_QUOTED | MD_ADDRESS_LITERAL | MD_ADDRESS_NULL))
        return 0;
    if (strcmp(a->domain, "gmail.com") != 0 && strcmp(a->domain, "googlemail.com") != 0)
        return 0;
    char local[MD_ADDRESS_LOCAL_MAX + 1];
    size_t o = 0;
    for (const char *p = a->local; *p && *p != '+'; p++)
        if (*p != '.')
            local[o++] = lower(*p);
    local[o] = '\0';
    if (o == 0)
        return 0;
    return (size_t)snprintf(key, size, "%s@gmail.com", local) < size;
}

unsigned md_address_distance(const char *a, const char *b, unsigned max)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 255 || lb > 255)
        return max + 1;
    if ((la > lb ? la - lb : lb - la) > max)
        return max + 1;
    /* Three rows of the optimal-string-alignment matrix. */
    unsigned rows[3][256];
    unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned rowmin = cur[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
            if (v < rowmin)
                rowmin = v;
        }
        if (rowmin > max)
            return max + 1;
        unsigned *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > max ? max + 1 : prev[lb];
}

/* Common mailbox providers, most used first (the order breaks ties).
 * Neighbours that are real providers themselves are listed too (mail.com
 * is one edit from gmail.com) so they never get a suggestion. */
static const char *const providers[] = {
    "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com",
    "live.com", "msn.com", "googlemail.com", "hotmail.co.uk", "yahoo.co.uk", "yahoo.fr",
    "hotmail.fr", "protonmail.com", "proton.me", "me.com", "mac.com", "mail.com",
    "gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "yandex.ru", "mail.ru",
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "orange.fr", "free.fr",
    "libero.it", "qq.com", "163.com", "fastmail.com", "zoho.com", "ymail.com",
    "rocketmail.com", "btinternet.com", "bigpond.com", "shaw.ca", "rogers.com",
    "laposte.net", "wanadoo.fr", "hey.com", "pm.me", "tutanota.com", "aim.com",
};

int md_address_is_common_provider(const char *domain)
{
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++)
        if (strcmp(providers[i], domain) == 0)
            return 1;
    return 0;
}

/* One edit for names under 12 characters, two from 12 on. */
static unsigned allowed_distance(const char *cand)
{
    return strlen(cand) >= 12 ? 2 : 1;
}

/* For short candidates: everything before the last dot identical. */
static int same_but_tld(const char *domain, const char *cand)
{
    const char *dd = strrchr(domain, '.'), *cd = strrchr(cand, '.');
    if (dd == NULL || cd == NULL || dd - domain != cd - cand)
        return 0;
    return strncmp(domain, cand, (size_t)(dd - domain)) == 0;
}

static unsigned candidate_distance(const char *domain, const char *cand)
{
    unsigned max = allowed_distance(cand);
    unsigned d = md_address_distance(domain, cand, max);
    if (d == 0 || d > max)
        return 0;
    if (strlen(cand) < 8 && !same_but_tld(domain, cand))
        return 0;
    return d;
}

int md_address_suggest(const char *domain, const md_address_typo_facts *facts,
                       char *suggestion, size_t size, unsigned *distance)
{
    static const md_address_typo_facts none = { 0 };
    if (facts == NULL)
        facts = &none;
    unsigned long many = facts->many ? facts->many : MD_ADDRESS_MANY_DEFAULT;
    if (size)
        suggestion[0] = '\0';
    if (domain == NULL || domain[0] == '\0' || domain[0] == '[')
        return 0;
    if (md_address_is_common_provider(domain))
        return 0;
    /* Many accounts at a domain are evidence that it is real; only DNS
     * saying it cannot receive mail overrides that. */
    if (facts->accounts >= many && facts->mx != MD_ADDRESS_MX_NONE)
        return 0;

    const char *best = NULL;
    unsigned best_d = 0;
    unsigned long best_n = 0;
    for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
        unsigned d = candidate_distance(domain, providers[i]);
        if (d && (best == NULL || d < best_d)) {
            best = providers[i];
            best_d = d;
            best_n = (unsigned long)-1;   /* providers outrank store domains on a tie */
        }
    }
    for (size_t i = 0; i < facts->npopular; i++) {
        const md_domain_count *c = &facts->popular[i];
        if (c->accounts < many || c->accounts / 10 < facts->accounts ||
            strcmp(c->domain, domain) == 0)
            continue;
        unsigned d = candidate_distance(domain, c->domain);
        if (d && (best == NULL || d < best_d || (d == best_d && c->accounts > best_n))) {
            best = c->domain;
            best_d = d;
            best_n = c->accounts;
        }
    }
    if (best == NULL)
        return 0;
    if ((size_t)snprintf(suggestion, size, "%s", best) >= size) {
        suggestion[0] = '\0';
        return 0;
    }
    if (distance)
        *distance = best_d;
    return 1;
}
