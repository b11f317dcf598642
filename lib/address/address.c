/* lib/address: RFC 5321 mailbox parsing, lookup keys, typo suggestions. */
#include "config.h"
#include "address.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static md_status bad(md_error *err, const char *msg)
{
    return md_error_set(err, MD_CONFIG, "input.address", "%s", msg);
}

/* RFC 5322 atext (ASCII part). */
static int is_atext(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid.
 * Rejects overlongs, surrogates and code points above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07; }
    else return 0;
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Whether s[0..n) is a dot-string: atext (or UTF-8) runs separated by
 * single dots, not starting or ending with one. */
static int is_dot_string(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0 || u[0] == '.' || u[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n;) {
        if (u[i] == '.') {
            if (u[i + 1] == '.')
                return 0;
            i++;
        } else if (u[i] >= 0x80) {
            size_t l = utf8_len(u + i, n - i);
            if (l == 0)
                return 0;
            i += l;
        } else if (is_atext(u[i])) {
            i++;
        } else {
            return 0;
        }
    }
    return 1;
}

/* Validates a quoted-string local part s[0..n) (quotes included) and
 * writes its content, escapes removed, to content (size >= n). */
static md_status check_quoted(const char *s, size_t n, char *content, size_t *clen,
                              md_error *err)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    if (n < 2 || u[n - 1] != '"')
        return bad(err, "the quoted local part has no closing quote");
    for (size_t i = 1; i < n - 1;) {
        unsigned char c = u[i];
        if (c == '\\') {
            if (i + 1 >= n - 1)
                return bad(err, "the quoted local part ends with a lone backslash");
            unsigned char q = u[i + 1];
            if (q < 0x20 || q > 0x7e)   /* RFC 5321 quoted-pairSMTP: %d92 %d32-126 */
                return bad(err, "the quoted local part escapes a control character");
            content[o++] = (char)q;
            i += 2;
        } else if (c == '"') {
            return bad(err, "the quoted local part has a quote inside it; write it as \\\"");
        } else if (c >= 0x80) {
            size_t l = utf8_len(u + i, n - 1 - i);
            if (l == 0)
                return bad(err, "the local part is not valid UTF-8");
            memcpy(content + o, u + i, l);
            o += l;
            i += l;
        } else if (c < 0x20 || c == 0x7f) {
            return bad(err, "the local part contains a control character");
        } else {
            content[o++] = (char)c;
            i++;
        }
    }
    content[o] = '\0';
    *clen = o;
    return MD_OK;
}

static md_status parse_literal(const char *d, size_t n, md_address *out, md_error *err)
{
    char inner[MD_DNS_NAME_MAX + 1];
    if (n < 3 || d[n - 1] != ']' || n - 2 >= sizeof inner)
        return bad(err, "the domain literal is not of the form [192.0.2.1] or [IPv6:2001:db8::1]");
    memcpy(inner, d + 1, n - 2);
    inner[n - 2] = '\0';
    /* RFC 5321 4.1.3: IPv4 bare, IPv6 only with the "IPv6:" tag. */
    int tagged = strncasecmp(inner, "IPv6:", 5) == 0;
    if (!md_dns_name_is_ip_literal(inner) && !(tagged && md_dns_name_is_ip_literal(inner + 5)))
        return bad(err, "the domain literal is not an IP address");
    if (!tagged && strchr(inner, ':') != NULL)
        return bad(err, "an IPv6 domain literal needs the tag: [IPv6:2001:db8::1]");
    for (size_t i = 0; i < n; i++)
        out->domain[i] = (char)tolower((unsigned char)d[i]);
    out->domain[n] = '\0';
    if (tagged)
        memcpy(out->domain + 1, "IPv6:", 5);   /* the tag's conventional spelling */
    out->literal = 1;
    return MD_OK;
}

md_status md_address_parse(const char *input, md_address *out, md_error *err)
{
    char buf[2048];
    memset(out, 0, sizeof *out);
    if (input == NULL)
        return bad(err, "no address given");
    while (*input == ' ' || *input == '\t')
        input++;
    size_t n = strlen(input);
    while (n > 0 && (input[n - 1] == ' ' || input[n - 1] == '\t' || input[n - 1] == '\n' ||
                     input[n - 1] == '\r'))
        n--;
    if (n == 0)
        return bad(err, "empty address");
    if (n >= sizeof buf)
        return md_error_set(err, MD_CONFIG, "input.address",
                            "the address is %zu characters long (at most %d)", n, MD_ADDRESS_MAX);
    memcpy(buf, input, n);
    buf[n] = '\0';
    char *s = buf;
    if (s[0] == '<') {
        if (s[n - 1] != '>')
            return bad(err, "the address opens '<' but does not close it");
        s[n - 1] = '\0';
        s++;
        n -= 2;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return bad(err, "the address contains a control character");

    char *at = strrchr(s, '@');   /* a quoted local part may hold '@'; a domain never */
    if (at == NULL)
        return bad(err, "the address has no '@'");
    size_t llen = (size_t)(at - s);
    const char *dom = at + 1;
    size_t dlen = strlen(dom);
    if (llen == 0)
        return bad(err, "the address has nothing before the '@'");
    if (dlen == 0)
        return bad(err, "the address has no domain after the '@'");
    if (llen > MD_ADDRESS_LOCAL_MAX)
        return md_error_set(err, MD_CONFIG, "input.address",
                            "the part before the '@' is %zu characters long (at most %d)",
                            llen, MD_ADDRESS_LOCAL_MAX);

    if (s[0] == '"') {
        char content[MD_ADDRESS_LOCAL_MAX + 1];
        size_t clen;
        md_status st = check_quoted(s, llen, content, &clen, err);
        if (st != MD_OK)
            return st;
        out->quoted = 1;
    } else {
        if (memchr(s, '"', llen) != NULL)
            return bad(err, "a quote may only enclose the whole part before the '@'");
        if (!is_dot_string(s, llen)) {
            for (size_t i = 0; i < llen; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x80 && c != '.' && !is_atext(c))
                    return md_error_set(err, MD_CONFIG, "input.address",
                                        "the part before the '@' contains '%c', which needs quotes", c);
            }
            if (s[0] == '.' || s[llen - 1] == '.')
                return bad(err, "the part before the '@' starts or ends with a dot");
            if (memmem(s, llen, "..", 2) != NULL)
                return bad(err, "the part before the '@' has two dots in a row");
            return bad(err, "the part before the '@' is not valid UTF-8");
        }
    }
    memcpy(out->local, s, llen);
    out->local[llen] = '\0';

    if (dom[0] == '[') {
        md_status st = parse_literal(dom, dlen, out, err);
        if (st != MD_OK)
            return st;
    } else {
        md_error derr;
        if (md_dns_name_normalize(dom, out->domain, sizeof out->domain, out->domain_unicode,
                                  sizeof out->domain_unicode, &derr) != MD_OK)
            return md_error_set(err, MD_CONFIG, "input.address", "the domain: %s", derr.text);
    }
    size_t total = llen + 1 + strlen(out->domain);
    if (total > MD_ADDRESS_MAX)
        return md_error_set(err, MD_CONFIG, "input.address",
                            "the address is %zu characters long (at most %d)", total, MD_ADDRESS_MAX);
    /* Lengths were checked above; build without printf truncation games. */
    size_t dl = strlen(out->domain);
    memcpy(out->ascii, out->local, llen);
    out->ascii[llen] = '@';
    memcpy(out->ascii + llen + 1, out->domain, dl + 1);
    const char *shown = out->domain_unicode[0] ? out->domain_unicode : out->domain;
    size_t sl = strlen(shown);
    if (llen + 1 + sl >= sizeof out->display)
        sl = sizeof out->display - llen - 2;
    memcpy(out->display, out->local, llen);
    out->display[llen] = '@';
    memcpy(out->display + llen + 1, shown, sl);
    out->display[llen + 1 + sl] = '\0';
    return MD_OK;
}

md_status md_address_key(const md_address *a, unsigned flags, char *key, size_t size)
{
    char local[2 * MD_ADDRESS_LOCAL_MAX + 3];
    size_t o = 0;
    if (a->quoted) {
        char content[MD_ADDRESS_LOCAL_MAX + 1];
        size_t clen;
        if (check_quoted(a->local, strlen(a->local), content, &clen, NULL) != MD_OK)
            return md_error_set(NULL, MD_CONFIG, "input.address", "invalid");
        if (is_dot_string(content, clen)) {
            memcpy(local, content, clen + 1);
            o = clen;
        } else {
            local[o++] = '"';
            for (size_t i = 0; i < clen; i++) {
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
    if ((size_t)snprintf(key, size, "%s@%s", local, a->domain) >= size)
        return MD_CONFIG;
    return MD_OK;
}

int md_address_provider_key(const md_address *a, char *key, size_t size)
{
    if (size)
        key[0] = '\0';
    if (a->quoted || a->literal)
        return 0;
    if (strcmp(a->domain, "gmail.com") != 0 && strcmp(a->domain, "googlemail.com") != 0)
        return 0;
    char local[MD_ADDRESS_LOCAL_MAX + 1];
    size_t o = 0;
    for (const char *p = a->local; *p && *p != '+'; p++)
        if (*p != '.')
            local[o++] = (char)tolower((unsigned char)*p);
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
