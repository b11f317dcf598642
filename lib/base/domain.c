/* lib/base domain: host-name labels and IDNA2008 with libidn2 (see domain.h). */
#include "config.h"
#include "domain.h"

#include <stdlib.h>
#include <string.h>
#include <idn2.h>

#define STAGE "input.domain"

/* A label quoted in a message: sanitized (it may hold anything) and cut
 * after about 40 octets, never inside a character. */
static const char *shown(char *buf, size_t size, const char *s, size_t n)
{
    const size_t keep = 40;
    md_sanitize_text(buf, size < keep + 1 ? size : keep + 1, s, n, 0);
    if (n > keep && strlen(buf) + 4 <= size)
        strcat(buf, "...");
    return buf;
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Why libidn2 refused a U-label, in words. */
static const char *idn_reason(int rc)
{
    switch (rc) {
    case IDN2_DISALLOWED:
        return "it holds a character IDNA2008 does not allow (upper-case letters, symbols and"
               " punctuation are among them: write letters in lower case)";
    case IDN2_NOT_NFC: return "it is not in Unicode normalization form C";
    case IDN2_BIDI: return "it breaks the rules for right-to-left text (RFC 5893)";
    case IDN2_CONTEXTJ:
    case IDN2_CONTEXTJ_NO_RULE:
        return "it holds a zero-width joiner or non-joiner where RFC 5892 allows none";
    case IDN2_CONTEXTO:
    case IDN2_CONTEXTO_NO_RULE:
        return "it holds a character that RFC 5892 allows only in a context it is not in";
    case IDN2_UNASSIGNED: return "it holds a code point that Unicode has not assigned";
    case IDN2_LEADING_COMBINING: return "it starts with a combining mark";
    case IDN2_2HYPHEN: return "it has hyphens in the third and fourth position";
    case IDN2_HYPHEN_STARTEND: return "it starts or ends with a hyphen";
    case IDN2_TOO_BIG_LABEL:
    case IDN2_TOO_BIG_DOMAIN:
    case IDN2_ENCODING_ERROR:
        return "its A-label would be longer than 63 octets";
    default: return idn2_strerror(rc);
    }
}

typedef struct out {
    char ascii[MD_DOMAIN_MAX + 2];
    size_t ao;
    int ascii_full;
    char uni[MD_DOMAIN_UNICODE_MAX + 2];
    size_t uo;
    int uni_full;
} out;

static void put(char *buf, size_t cap, size_t *o, int *full, const char *s, size_t n)
{
    if (*full || *o + n + 1 > cap) {
        *full = 1;
        return;
    }
    memcpy(buf + *o, s, n);
    *o += n;
    buf[*o] = '\0';
}

static void put_label(out *w, int first, const char *a, size_t an, const char *u, size_t un)
{
    if (!first) {
        put(w->ascii, sizeof w->ascii, &w->ao, &w->ascii_full, ".", 1);
        put(w->uni, sizeof w->uni, &w->uo, &w->uni_full, ".", 1);
    }
    put(w->ascii, sizeof w->ascii, &w->ao, &w->ascii_full, a, an);
    put(w->uni, sizeof w->uni, &w->uo, &w->uni_full, u, un);
}

/* An ASCII label s[0..n), lower-cased into lab (n <= 63 checked here). */
static md_status ascii_label(const char *s, size_t n, char *lab, md_error *err)
{
    char q[64];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_ldh(c))
            continue;
        if (c == ' ')
            return md_error_set(err, MD_CONFIG, STAGE,
                                "the domain label '%s' holds a space; a label holds only letters,"
                                " digits and hyphens (RFC 5321 4.1.2)", shown(q, sizeof q, s, n));
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' holds '%c'; a label holds only letters, digits"
                            " and hyphens (RFC 5321 4.1.2)", shown(q, sizeof q, s, n), c);
    }
    if (s[0] == '-' || s[n - 1] == '-')
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' %s with a hyphen; a label begins and ends with a"
                            " letter or digit (RFC 5321 4.1.2)", shown(q, sizeof q, s, n),
                            s[0] == '-' ? "starts" : "ends");
    if (n > MD_DOMAIN_LABEL_MAX)
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' is %zu octets long (at most 63: RFC 1035 2.3.4)",
                            shown(q, sizeof q, s, n), n);
    for (size_t i = 0; i < n; i++)
        lab[i] = lower(s[i]);
    lab[n] = '\0';
    return MD_OK;
}

/* An A-label lab (lower case): it must decode to a valid U-label that
 * encodes back to itself (RFC 5891 5.3, 5.4); with map, decoding is enough.
 * *u receives the U-label (caller frees with idn2_free). */
static md_status a_label(const char *lab, int map, char **u, md_error *err)
{
    char q[64], q2[64];
    *u = NULL;
    int rc = idn2_to_unicode_8z8z(lab, u, 0);
    if (rc != IDN2_OK || *u == NULL || **u == '\0') {
        idn2_free(*u);
        *u = NULL;
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' starts with 'xn--' but is not an A-label: its"
                            " Punycode does not decode (RFC 5891 5.3)", shown(q, sizeof q, lab, strlen(lab)));
    }
    size_t bad;
    const char *why;
    if (md_text_check(*u, strlen(*u), NULL, &bad, &why) != 0) {
        idn2_free(*u);
        *u = NULL;
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' is not an A-label: it decodes to %s (RFC 5891 5.4)",
                            shown(q, sizeof q, lab, strlen(lab)), why);
    }
    if (map)
        return MD_OK;
    char *back = NULL;
    rc = idn2_to_ascii_8z(*u, &back, IDN2_NO_TR46);
    int same = rc == IDN2_OK && back && strcmp(back, lab) == 0;
    idn2_free(back);
    if (same)
        return MD_OK;
    md_error_set(err, MD_CONFIG, STAGE,
                 "the domain label '%s' is not a valid A-label: it decodes to '%s', %s (RFC 5891 5.4)",
                 shown(q, sizeof q, lab, strlen(lab)), shown(q2, sizeof q2, *u, strlen(*u)),
                 rc != IDN2_OK ? "which is not a valid IDNA2008 U-label" : "which does not encode back to it");
    idn2_free(*u);
    *u = NULL;
    return MD_CONFIG;
}

/* A U-label s[0..n) (holds non-ASCII): its A-label into *a (caller frees
 * with idn2_free); ASCII letters lowered, nothing else mapped.  ulab
 * receives the lower-cased U-label. */
static md_status u_label(const char *s, size_t n, char *ulab, size_t ulab_size, char **a,
                         md_error *err)
{
    char q[64];
    *a = NULL;
    if (n >= ulab_size)
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' is %zu octets long, too long for any A-label of at"
                            " most 63 (RFC 1035 2.3.4)", shown(q, sizeof q, s, n), n);
    for (size_t i = 0; i < n; i++)
        ulab[i] = lower(s[i]);
    ulab[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x80 && !is_ldh((unsigned char)s[i]))
            return md_error_set(err, MD_CONFIG, STAGE,
                                "the domain label '%s' holds '%c'; a label holds only letters, digits"
                                " and hyphens (RFC 5321 4.1.2)", shown(q, sizeof q, s, n), s[i]);
    int rc = idn2_to_ascii_8z(ulab, a, IDN2_NO_TR46);
    if (rc != IDN2_OK || *a == NULL) {
        idn2_free(*a);
        *a = NULL;
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' is not a valid IDNA2008 U-label: %s (RFC 5891 5.4)",
                            shown(q, sizeof q, s, n), idn_reason(rc));
    }
    size_t an = strlen(*a);
    if (an > MD_DOMAIN_LABEL_MAX || strncmp(*a, "xn--", 4) != 0) {
        idn2_free(*a);
        *a = NULL;
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain label '%s' is too long: its A-label would be longer than 63"
                            " octets (RFC 1035 2.3.4)", shown(q, sizeof q, s, n));
    }
    return MD_OK;
}

/* The labels of s[0..n), checked and converted into w. */
static md_status labels(const char *s, size_t n, int map, out *w, unsigned *info, md_error *err)
{
    size_t start = 0, nlabels = 0;
    const char *last = s;
    size_t lastn = 0;
    for (;;) {
        const char *dot = memchr(s + start, '.', n - start);
        size_t end = dot ? (size_t)(dot - s) : n;
        size_t ln = end - start;
        const char *l = s + start;
        if (ln == 0)
            return md_error_set(err, MD_CONFIG, STAGE, "%s",
                                start == 0 ? "the domain starts with a dot (an empty label: RFC 5321 4.1.2)"
                                : end == n ? "the domain ends with a dot; write it without the DNS root's"
                                             " trailing dot (RFC 5321 4.1.2)"
                                : "the domain has two dots in a row (an empty label: RFC 5321 4.1.2)");
        int ascii = 1;
        for (size_t i = 0; i < ln; i++)
            if ((unsigned char)l[i] >= 0x80)
                ascii = 0;
        md_status st;
        if (ascii) {
            char lab[MD_DOMAIN_LABEL_MAX + 1];
            if ((st = ascii_label(l, ln, lab, err)) != MD_OK)
                return st;
            if (ln >= 4 && memcmp(lab, "xn--", 4) == 0) {
                char *u;
                if ((st = a_label(lab, map, &u, err)) != MD_OK)
                    return st;
                put_label(w, nlabels == 0, lab, ln, u, strlen(u));
                idn2_free(u);
                *info |= MD_DOMAIN_IDN;
            } else {
                put_label(w, nlabels == 0, lab, ln, lab, ln);
            }
        } else {
            char ulab[4 * MD_DOMAIN_LABEL_MAX + 1], *a;
            if ((st = u_label(l, ln, ulab, sizeof ulab, &a, err)) != MD_OK)
                return st;
            put_label(w, nlabels == 0, a, strlen(a), ulab, ln);
            idn2_free(a);
            *info |= MD_DOMAIN_IDN | MD_DOMAIN_ULABEL;
        }
        nlabels++;
        last = l;
        lastn = ln;
        if (dot == NULL)
            break;
        start = end + 1;
    }
    if (w->ascii_full || w->ao > MD_DOMAIN_MAX)
        return md_error_set(err, MD_CONFIG, STAGE,
                            "the domain is %s%zu octets long%s (at most 253: RFC 1035 2.3.4)",
                            w->ascii_full ? "over " : "", w->ascii_full ? (size_t)MD_DOMAIN_MAX : w->ao,
                            *info & MD_DOMAIN_IDN ? " in A-label form" : "");
    if (nlabels == 1)
        *info |= MD_DOMAIN_SINGLE_LABEL;
    int digits = 1;
    for (size_t i = 0; i < lastn; i++)
        if (last[i] < '0' || last[i] > '9')
            digits = 0;
    if (digits)
        *info |= MD_DOMAIN_NUMERIC_TLD;
    return MD_OK;
}

md_status md_domain_normalize(const char *name, size_t len, unsigned flags, char *ascii,
                              size_t ascii_size, char *unicode, size_t unicode_size,
                              unsigned *info, md_error *err)
{
    unsigned dummy;
    if (info == NULL)
        info = &dummy;
    *info = 0;
    if (ascii_size)
        ascii[0] = '\0';
    if (unicode && unicode_size)
        unicode[0] = '\0';
    if (name == NULL || len == 0)
        return md_error_set(err, MD_CONFIG, STAGE, "the domain is empty");
    size_t bad;
    const char *why;
    if (md_text_check(name, len, NULL, &bad, &why) != 0)
        return md_error_set(err, MD_CONFIG, STAGE, "the domain holds %s at octet %zu", why, bad + 1);
    if ((flags & MD_DOMAIN_ROOT_DOT) && name[len - 1] == '.' && --len == 0)
        return md_error_set(err, MD_CONFIG, STAGE, "the domain is only a dot (the DNS root)");

    out *w = md_xcalloc(1, sizeof *w);
    char *mapped = NULL;
    const char *s = name;
    int non_ascii = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] >= 0x80)
            non_ascii = 1;
    md_status st;
    if ((flags & MD_DOMAIN_MAP) && non_ascii) {
        char *copy = md_xstrndup(name, len);
        int rc = idn2_to_ascii_8z(copy, &mapped, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
        free(copy);
        if (rc != IDN2_OK) {
            st = md_error_set(err, MD_CONFIG, STAGE, "not a valid internationalized domain name: %s",
                              idn2_strerror(rc));
            goto done;
        }
        s = mapped;
        len = strlen(mapped);
        *info |= MD_DOMAIN_ULABEL;
    }
    st = labels(s, len, (flags & MD_DOMAIN_MAP) != 0, w, info, err);
    if (st != MD_OK)
        goto done;
    if (ascii_size <= w->ao) {
        st = md_error_set(err, MD_CONFIG, STAGE, "internal: buffer too small");
        goto done;
    }
    memcpy(ascii, w->ascii, w->ao + 1);
    if (unicode && unicode_size > w->uo && !w->uni_full && strcmp(w->uni, w->ascii) != 0)
        memcpy(unicode, w->uni, w->uo + 1);
done:
    if (st != MD_OK)
        *info = 0;
    idn2_free(mapped);
    free(w);
    return st;
}
