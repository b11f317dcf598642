/*
 * lib/spf record: RFC 7208 section 4.6.1 and 12 (ABNF) syntax, and macro
 * (section 7) validation and expansion.  Everything here is pure: no DNS.
 *
 * The parser is strict on purpose: a syntax error anywhere in the record is
 * a permerror (4.6), and a malformed macro must never reach libspf2, whose
 * macro parser has CVE-2023-42118.
 */
#include "config.h"
#include "spf-int.h"
#include "base/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *md_spf_code_name(md_spf_code c)
{
    static const char *const names[] = {
        "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"
    };
    return (unsigned)c < 7 ? names[c] : "temperror";
}

int md_spf_code_parse(const char *name)
{
    for (int i = 0; i < 7; i++)
        if (strcasecmp(name, md_spf_code_name((md_spf_code)i)) == 0)
            return i;
    return -1;
}

md_severity md_spf_code_severity(md_spf_code c)
{
    switch (c) {
    case MD_SPF_PASS: return MD_SEV_OK;
    case MD_SPF_NEUTRAL: case MD_SPF_NONE: case MD_SPF_SOFTFAIL: return MD_SEV_WARNING;
    case MD_SPF_FAIL: case MD_SPF_PERMERROR: return MD_SEV_CRITICAL;
    default: return MD_SEV_UNKNOWN;
    }
}

int md_spf_is_record(const char *txt, size_t len)
{
    return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

/* --- macros (RFC 7208 7.1) --------------------------------------------- */

static int is_macro_letter(int c)
{
    return strchr("slodiphcrtv", tolower(c)) != NULL && c != '\0';
}

static int is_delim(int c)
{
    return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/* Validates a macro-string of len bytes.  Returns 0, or -1 with the offset
 * of the problem in *bad and a message. */
int spf_macro_check(const char *s, size_t len, int exp, size_t *bad, const char **why)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 1 >= len) {
                *bad = i; *why = "'%' at the end of a macro string";
                return -1;
            }
            char n = s[i + 1];
            if (n == '%' || n == '_' || n == '-') {
                i++;
                continue;
            }
            if (n != '{') {
                *bad = i; *why = "'%' must be followed by '{', '%', '_' or '-'";
                return -1;
            }
            size_t j = i + 2;
            if (j >= len || !is_macro_letter(s[j])) {
                *bad = i; *why = "unknown macro letter";
                return -1;
            }
            if (!exp && strchr("crtCRT", s[j]) != NULL) {
                *bad = i; *why = "macro letters c, r and t are only allowed in exp= text";
                return -1;
            }
            j++;
            size_t d0 = j;
            while (j < len && isdigit((unsigned char)s[j]))
                j++;
            if (j > d0) {
                /* RFC 7208 7.1: a nonzero number of right-hand parts; more
                 * than there are means all of them, so any length of digits
                 * is valid.  Only zero (however many zeros) is an error; the
                 * value itself is never computed here. */
                size_t k = d0;
                while (k < j && s[k] == '0')
                    k++;
                if (k == j) {
                    *bad = i; *why = "digit transformer 0 (RFC 7208 7.1: at least one part)";
                    return -1;
                }
            }
            if (j < len && (s[j] == 'r' || s[j] == 'R'))
                j++;
            while (j < len && is_delim(s[j]))
                j++;
            if (j >= len || s[j] != '}') {
                *bad = i; *why = "unterminated or malformed macro";
                return -1;
            }
            i = j;
            continue;
        }
        if (exp ? (c < 0x20 || c > 0x7e) : (c < 0x21 || c > 0x7e)) {
            *bad = i; *why = "character not allowed in a macro string";
            return -1;
        }
    }
    return 0;
}

/* libspf2 1.2.10 (spf_compile.c, SPF_c_parse_var) reads the transformer
 * digits into an int with no overflow check and refuses values over 128
 * (SPF_E_BIG_SUBDOM).  See spf-int.h. */
#define LIBSPF2_TRANSFORMER_MAX 128

int spf_macro_libspf2_fits(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '%')
            continue;
        if (s[i + 1] != '{') {   /* %% %_ %-: skip the escaped character */
            i++;
            continue;
        }
        size_t j = i + 3;        /* after "%{" and the letter */
        unsigned long v = 0;
        while (j < len && isdigit((unsigned char)s[j])) {
            v = v * 10 + (unsigned long)(s[j++] - '0');
            if (v > LIBSPF2_TRANSFORMER_MAX)
                return 0;
        }
        i = j - 1;
    }
    return 1;
}

/* Whether a valid macro-string ends with a macro-expand. */
static int ends_with_macro(const char *s, size_t len)
{
    int last = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (s[i + 1] == '{')
                while (i < len && s[i] != '}')
                    i++;
            else
                i++;
            last = 1;
        } else {
            last = 0;
        }
    }
    return last;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
int spf_domain_spec_check(const char *s, size_t len, size_t *bad, const char **why)
{
    if (len == 0) {
        *bad = 0; *why = "empty domain";
        return -1;
    }
    if (spf_macro_check(s, len, 0, bad, why) != 0)
        return -1;
    if (ends_with_macro(s, len))
        return 0;
    size_t end = len;
    if (s[end - 1] == '.')
        end--;
    size_t start = end;
    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == 0) {
        *bad = 0; *why = "domain must have at least two labels";
        return -1;
    }
    /* toplabel = ( *alphanum ALPHA *alphanum ) /
     *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
    size_t tl = end - start;
    int alpha = 0, dash = 0;
    for (size_t k = start; k < end; k++) {
        unsigned char c = (unsigned char)s[k];
        if (isalpha(c))
            alpha = 1;
        else if (c == '-')
            dash = 1;
        else if (!isdigit(c))
            goto badtop;
    }
    if (tl == 0 || s[start] == '-' || s[end - 1] == '-' || (!alpha && !dash))
        goto badtop;
    return 0;
badtop:
    *bad = start; *why = "bad top-level label";
    return -1;
}

/* --- record parsing (RFC 7208 4.6.1, 5, 6) ----------------------------- */

static const struct { const char *name; int mech; } mechs[] = {
    { "all", M_ALL }, { "include", M_INCLUDE }, { "a", M_A }, { "mx", M_MX },
    { "ptr", M_PTR }, { "ip4", M_IP4 }, { "ip6", M_IP6 }, { "exists", M_EXISTS },
};

static int parse_cidr(const char *s, size_t len, int max)
{
    if (len == 0 || len > 3)
        return -1;
    if (len > 1 && s[0] == '0')
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* Splits [ "/" ip4-cidr ] [ "//" ip6-cidr ] off the end of s.  Returns the
 * length left, or -1 on a malformed cidr. */
static long split_dual_cidr(const char *s, size_t len, int *c4, int *c6, int allow4)
{
    *c4 = -1; *c6 = -1;
    size_t e = len;
    size_t d = e;
    while (d > 0 && isdigit((unsigned char)s[d - 1]))
        d--;
    if (d < e && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
        if ((*c6 = parse_cidr(s + d, e - d, 128)) < 0)
            return -1;
        e = d - 2;
        d = e;
        while (d > 0 && isdigit((unsigned char)s[d - 1]))
            d--;
    }
    if (d < e && d >= 1 && s[d - 1] == '/' && allow4) {
        if ((*c4 = parse_cidr(s + d, e - d, 32)) < 0)
            return -1;
        e = d - 1;
    }
    /* A '/' left at the end is a cidr we could not read. */
    if (e > 0 && s[e - 1] == '/')
        return -1;
    return (long)e;
}

static int parse_ip4(const char *s, size_t len, unsigned char out[4])
{
    int part = 0;
    size_t i = 0;
    while (part < 4) {
        size_t st = i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i == st || i - st > 3 || (i - st > 1 && s[st] == '0'))
            return -1;
        int v = 0;                  /* not atoi: s is not NUL-terminated */
        for (size_t k = st; k < i; k++)
            v = v * 10 + (s[k] - '0');
        if (v > 255)
            return -1;
        out[part++] = (unsigned char)v;
        if (part < 4) {
            if (i >= len || s[i] != '.')
                return -1;
            i++;
        }
    }
    return i == len ? 0 : -1;
}

/* At most 60 bytes of a term in a message; a term is not NUL-terminated
 * (the record comes with its length). */
#define TERM_SHOWN(tl) ((int)((tl) < 60 ? (tl) : 60))

static void rec_error(spf_record *r, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rec_error(spf_record *r, size_t col, const char *fmt, ...)
{
    char m[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(r->error, sizeof r->error, "at column %zu: %s", col + 1, m);
}

void spf_record_free(spf_record *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nterms; i++) {
        free(r->terms[i].text);
        free(r->terms[i].arg);
    }
    free(r->terms);
    free(r->redirect);
    free(r->exp);
    free(r);
}

spf_record *spf_record_parse(const char *txt, size_t len)
{
    spf_record *r = md_xcalloc(1, sizeof *r);
    if (len > MD_SPF_RECORD_MAX) {
        snprintf(r->error, sizeof r->error, "record of %zu bytes is over %d", len, MD_SPF_RECORD_MAX);
        r->bad = 1;
        return r;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c < 0x20 || c > 0x7e) {
            char hex[8];
            snprintf(hex, sizeof hex, "0x%02x", c);
            rec_error(r, i, "byte %s is not allowed in a record (US-ASCII only)", hex);
            r->bad = 1;
            return r;
        }
    }
    size_t i = 6;   /* after "v=spf1" */
    while (i < len) {
        while (i < len && txt[i] == ' ')
            i++;
        if (i >= len)
            break;
        size_t st = i;
        while (i < len && txt[i] != ' ')
            i++;
        const char *t = txt + st;
        size_t tl = i - st;
        size_t bad = 0;
        const char *why = NULL;

        /* modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
        size_t nl = 0;
        while (nl < tl && (isalnum((unsigned char)t[nl]) || t[nl] == '-' || t[nl] == '_' || t[nl] == '.'))
            nl++;
        if (nl < tl && t[nl] == '=') {
            if (nl == 0 || !isalpha((unsigned char)t[0])) {
                rec_error(r, st, "bad modifier name in '%.*s'", TERM_SHOWN(tl), t);
                goto fail;
            }
            const char *v = t + nl + 1;
            size_t vl = tl - nl - 1;
            int is_redir = nl == 8 && strncasecmp(t, "redirect", 8) == 0;
            int is_exp = nl == 3 && strncasecmp(t, "exp", 3) == 0;
            if (is_redir || is_exp) {
                if ((is_redir && r->redirect) || (is_exp && r->exp)) {
                    rec_error(r, st, "modifier '%s' appears twice", is_redir ? "redirect" : "exp");
                    goto fail;
                }
                if (spf_domain_spec_check(v, vl, &bad, &why) != 0) {
                    rec_error(r, st + nl + 1 + bad, "%s", why);
                    goto fail;
                }
                char *val = md_xstrndup(v, vl);
                if (is_redir) {
                    r->redirect = val;
                    r->redirect_col = st;
                } else {
                    r->exp = val;
                }
            } else if (spf_macro_check(v, vl, 0, &bad, &why) != 0) {
                rec_error(r, st + nl + 1 + bad, "%s", why);
                goto fail;
            }
            continue;
        }

        /* directive = [ qualifier ] mechanism */
        spf_term term = { .qual = '+', .c4 = -1, .c6 = -1 };
        size_t p = 0;
        if (t[0] == '+' || t[0] == '-' || t[0] == '~' || t[0] == '?')
            term.qual = t[p++];
        size_t ms = p;
        while (p < tl && isalnum((unsigned char)t[p]))
            p++;
        term.mech = -1;
        for (size_t k = 0; k < sizeof mechs / sizeof mechs[0]; k++)
            if (strlen(mechs[k].name) == p - ms && strncasecmp(t + ms, mechs[k].name, p - ms) == 0)
                term.mech = mechs[k].mech;
        if (term.mech < 0 || (p < tl && t[p] != ':' && t[p] != '/')) {
            rec_error(r, st, "unknown mechanism '%.*s'", TERM_SHOWN(tl), t);
            goto fail;
        }
        const char *a = t + p;
        size_t al = tl - p;
        switch (term.mech) {
        case M_ALL:
            if (al != 0) {
                rec_error(r, st, "'all' takes no argument: '%.*s'", TERM_SHOWN(tl), t);
                goto fail;
            }
            break;
        case M_INCLUDE:
        case M_EXISTS:
            if (al < 1 || a[0] != ':' || spf_domain_spec_check(a + 1, al - 1, &bad, &why) != 0) {
                if (al < 1 || a[0] != ':')
                    rec_error(r, st, "'%.*s' needs ':domain'", TERM_SHOWN(tl), t);
                else
                    rec_error(r, st + p + 1 + bad, "%s", why);
                goto fail;
            }
            term.arg = md_xstrndup(a + 1, al - 1);
            break;
        case M_A:
        case M_MX:
        case M_PTR: {
            long dl = (long)al;
            if (term.mech != M_PTR) {
                dl = split_dual_cidr(a, al, &term.c4, &term.c6, 1);
                if (dl < 0) {
                    rec_error(r, st, "bad CIDR length in '%.*s'", TERM_SHOWN(tl), t);
                    goto fail;
                }
            }
            if (dl > 0) {
                if (a[0] != ':' || spf_domain_spec_check(a + 1, (size_t)dl - 1, &bad, &why) != 0) {
                    if (a[0] != ':')
                        rec_error(r, st, "unexpected text in '%.*s'", TERM_SHOWN(tl), t);
                    else
                        rec_error(r, st + p + 1 + bad, "%s", why);
                    goto fail;
                }
                term.arg = md_xstrndup(a + 1, (size_t)dl - 1);
            }
            break;
        }
        case M_IP4: {
            int c6;
            long dl = al > 0 ? split_dual_cidr(a, al, &term.c4, &c6, 1) : -1;
            if (dl < 2 || a[0] != ':' || c6 >= 0 || parse_ip4(a + 1, (size_t)dl - 1, term.addr) != 0) {
                rec_error(r, st, "bad ip4 network in '%.*s'", TERM_SHOWN(tl), t);
                goto fail;
            }
            break;
        }
        case M_IP6: {
            char buf[64];
            long dl = -1;
            if (al > 0) {
                /* ip6-cidr-length = "/" ... : one slash here */
                size_t e = al;
                while (e > 0 && isdigit((unsigned char)a[e - 1]))
                    e--;
                if (e < al && e > 0 && a[e - 1] == '/') {
                    if ((term.c6 = parse_cidr(a + e, al - e, 128)) < 0)
                        dl = -1;
                    else
                        dl = (long)e - 1;
                } else {
                    dl = (long)al;
                }
            }
            if (dl < 2 || a[0] != ':' || (size_t)dl - 1 >= sizeof buf) {
                rec_error(r, st, "bad ip6 network in '%.*s'", TERM_SHOWN(tl), t);
                goto fail;
            }
            memcpy(buf, a + 1, (size_t)dl - 1);
            buf[dl - 1] = '\0';
            if (inet_pton(AF_INET6, buf, term.addr) != 1) {
                rec_error(r, st, "bad ip6 network in '%.*s'", TERM_SHOWN(tl), t);
                goto fail;
            }
            break;
        }
        }
        term.text = md_xstrndup(t, tl);
        term.col = st;
        r->terms = md_xrealloc(r->terms, (r->nterms + 1) * sizeof *r->terms);
        r->terms[r->nterms++] = term;
        if (term.mech == M_ALL)
            r->has_all = 1;
        if (term.mech == M_PTR)
            r->has_ptr = 1;
    }
    return r;
fail:
    r->bad = 1;
    return r;
}

int md_spf_record_check(const char *record, char *msg, size_t msgsize)
{
    size_t len = strlen(record);
    if (!md_spf_is_record(record, len)) {
        snprintf(msg, msgsize, "at column 1: not an SPF record (must start with 'v=spf1')");
        return -1;
    }
    spf_record *r = spf_record_parse(record, len);
    int rc = r->bad ? -1 : 0;
    if (r->bad)
        snprintf(msg, msgsize, "%s", r->error);
    else if (msgsize)
        msg[0] = '\0';
    spf_record_free(r);
    return rc;
}

/* --- macro expansion (RFC 7208 7.3, 7.4) ------------------------------- */

static void url_escape(md_buf *b, const char *s, size_t l)
{
    for (size_t i = 0; i < l; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            md_buf_add(b, &s[i], 1);
        } else {
            md_buf_addf(b, "%%%02X", c);
        }
    }
}

char *spf_macro_expand(const char *s, size_t len, const spf_macro_vars *v, int exp)
{
    size_t bad;
    const char *why;
    if (spf_macro_check(s, len, exp, &bad, &why) != 0)
        return NULL;
    md_buf b = { 0 };
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            md_buf_add(&b, s + i, 1);
            continue;
        }
        char c = s[++i];
        if (c == '%') { md_buf_add(&b, "%", 1); continue; }
        if (c == '_') { md_buf_add(&b, " ", 1); continue; }
        if (c == '-') { md_buf_add(&b, "%20", 3); continue; }
        /* %{ letter digits [r] delims }: i is at '{' */
        i++;
        char letter = s[i++];
        /* Any value over the number of parts means all of them: saturate
         * instead of wrapping (%{d4294967297} is not %{d1}). */
        size_t digits = 0;
        while (isdigit((unsigned char)s[i])) {
            size_t d = (size_t)(s[i++] - '0');
            digits = digits > (SIZE_MAX - d) / 10 ? SIZE_MAX : digits * 10 + d;
        }
        int rev = 0;
        if (s[i] == 'r' || s[i] == 'R') { rev = 1; i++; }
        char delims[16] = "";
        size_t nd = 0;
        while (s[i] != '}') {
            if (nd < sizeof delims - 1 && strchr(delims, s[i]) == NULL)
                delims[nd++] = s[i];
            i++;
        }
        delims[nd] = '\0';
        if (nd == 0)
            strcpy(delims, ".");
        const char *val = v->get(v->arg, (char)tolower((unsigned char)letter));
        if (val == NULL)
            val = "";
        /* split, reverse, keep the rightmost `digits` parts, join with '.' */
        size_t vl = strlen(val);
        size_t nparts = 1;
        for (size_t k = 0; k < vl; k++)
            if (strchr(delims, val[k]))
                nparts++;
        const char **ps = md_xcalloc(nparts, sizeof *ps);
        size_t *pl = md_xcalloc(nparts, sizeof *pl);
        size_t pi = 0, ps0 = 0;
        for (size_t k = 0; k <= vl; k++) {
            if (k == vl || strchr(delims, val[k])) {
                ps[pi] = val + ps0;
                pl[pi] = k - ps0;
                pi++;
                ps0 = k + 1;
            }
        }
        if (rev) {
            for (size_t a = 0, z = nparts - 1; a < z; a++, z--) {
                const char *tp = ps[a]; ps[a] = ps[z]; ps[z] = tp;
                size_t tl = pl[a]; pl[a] = pl[z]; pl[z] = tl;
            }
        }
        size_t first = 0;
        if (digits > 0 && digits < nparts)
            first = nparts - digits;
        md_buf piece = { 0 };
        for (size_t k = first; k < nparts; k++) {
            if (k > first)
                md_buf_add(&piece, ".", 1);
            md_buf_add(&piece, ps[k], pl[k]);
        }
        if (isupper((unsigned char)letter))
            url_escape(&b, piece.data, piece.len);
        else
            md_buf_add(&b, piece.data, piece.len);
        md_buf_free(&piece);
        free(ps);
        free(pl);
    }
    return md_buf_steal(&b, NULL);
}
