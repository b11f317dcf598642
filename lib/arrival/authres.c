/* lib/arrival: the grammars of Authentication-Results (RFC 8601 2.2) and
 * Received-SPF (RFC 7208 9.1) over an unfolded field value.  Every read is
 * bounded by the value's length; comments nest at most COMMENT_DEPTH deep. */
#include "config.h"
#include "arrival.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define COMMENT_DEPTH 32

typedef struct lex {
    const char *s, *p, *e;
    const char *why;          /* the first error, static text */
    size_t at;                /* its byte offset */
} lex;

static int fail(lex *x, const char *why)
{
    if (x->why == NULL) {
        x->why = why;
        x->at = (size_t)(x->p - x->s);
    }
    return -1;
}

static int at_end(const lex *x)
{
    return x->p >= x->e;
}

static int wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A comment at x->p (on '('), its text without the outer parentheses into
 * out (may be NULL).  RFC 5322 3.2.2: ctext, quoted-pair, nested comments. */
static int comment(lex *x, char *out, size_t size)
{
    int depth = 0;
    size_t o = 0;
    const char *start = x->p;
    while (x->p < x->e) {
        char c = *x->p++;
        if (c == '\\') {
            if (x->p >= x->e)
                break;
            c = *x->p++;
        } else if (c == '(') {
            if (++depth > COMMENT_DEPTH)
                return fail(x, "comments nested too deep");
            if (depth == 1)
                continue;
        } else if (c == ')') {
            if (--depth == 0) {
                if (out)
                    md_sanitize_text(out, size, out, o, 0);
                return 0;
            }
        }
        if (out && o + 1 < size)
            out[o++] = wsp(c) ? ' ' : c;
    }
    x->p = start;
    if (out)
        out[0] = '\0';
    return fail(x, "a comment without its ')'");
}

/* [CFWS]: returns 1 when something was skipped, 0 when nothing, -1 on an
 * error.  The first comment's text goes to first (may be NULL). */
static int cfws_keep(lex *x, char *first, size_t size)
{
    int any = 0;
    while (x->p < x->e) {
        if (wsp(*x->p)) {
            x->p++;
        } else if (*x->p == '(') {
            if (comment(x, first, size) != 0)
                return -1;
            first = NULL;
        } else {
            break;
        }
        any = 1;
    }
    return any;
}

static int cfws(lex *x)
{
    return cfws_keep(x, NULL, 0);
}

static int is_keyword_char(char c)
{
    return isalnum((unsigned char)c) || c == '-';
}

/* Keyword (ldh-str: letters, digits, hyphens, not ending in a hyphen),
 * lower-cased into out.  0, or -1 when there is none. */
static int keyword(lex *x, char *out, size_t size)
{
    const char *s = x->p;
    while (x->p < x->e && is_keyword_char(*x->p))
        x->p++;
    size_t n = (size_t)(x->p - s);
    if (n == 0 || s[n - 1] == '-') {
        x->p = s;
        return fail(x, "a keyword (letters, digits, '-') was expected");
    }
    size_t k = n < size - 1 ? n : size - 1;
    for (size_t i = 0; i < k; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[k] = '\0';
    return 0;
}

/* RFC 2045 token character: US-ASCII, not SPACE, not a control, not a
 * tspecial. */
static int is_token_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 0x20 && u < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* quoted-string (RFC 5322 3.2.4; UTF-8 allowed, RFC 6532) at x->p, its
 * content into out (cut to fit; FWS inside kept as one space). */
static int quoted_string(lex *x, char *out, size_t size)
{
    const char *start = x->p;
    size_t o = 0;
    x->p++;   /* the opening quote */
    while (x->p < x->e) {
        char c = *x->p++;
        if (c == '"') {
            md_sanitize_text(out, size, out, o, 0);
            return 0;
        }
        if (c == '\\') {
            if (x->p >= x->e)
                break;
            c = *x->p++;
        }
        if (o + 1 < size)
            out[o++] = wsp(c) ? ' ' : c;
    }
    x->p = start;
    out[0] = '\0';
    return fail(x, "a quoted string without its closing '\"'");
}

/* value = token / quoted-string (RFC 2045), into out. */
static int value(lex *x, char *out, size_t size)
{
    if (x->p < x->e && *x->p == '"')
        return quoted_string(x, out, size);
    const char *s = x->p;
    while (x->p < x->e && is_token_char(*x->p))
        x->p++;
    if (x->p == s)
        return fail(x, "a value (a token or a quoted string) was expected");
    md_sanitize_text(out, size, s, (size_t)(x->p - s), 0);
    return 0;
}

/* A lenient value: a quoted-string (and what follows it up to the next
 * space, for local-part@domain) or a run of printable characters (UTF-8
 * too) other than ';', '(', ')', '"' and '\'. */
static int loose_value(lex *x, char *out, size_t size)
{
    size_t o = 0;
    if (x->p < x->e && *x->p == '"') {
        if (quoted_string(x, out, size) != 0)
            return -1;
        o = strlen(out);
    }
    const char *s = x->p;
    while (x->p < x->e && (unsigned char)*x->p > 0x20 && *x->p != 0x7f && strchr(";()\"\\", *x->p) == NULL)
        x->p++;
    size_t n = (size_t)(x->p - s);
    if (o == 0 && n == 0)
        return fail(x, "a value was expected");
    if (n > 0 && o + 1 < size) {
        size_t k = n < size - 1 - o ? n : size - 1 - o;
        memcpy(out + o, s, k);
        md_sanitize_text(out + o, size - o, out + o, k, 0);
    }
    return 0;
}

/* 1*DIGIT as a small number (at most 9 digits). */
static int number(lex *x, unsigned *out)
{
    const char *s = x->p;
    unsigned v = 0;
    while (x->p < x->e && isdigit((unsigned char)*x->p) && x->p - s < 9)
        v = v * 10 + (unsigned)(*x->p++ - '0');
    if (x->p == s || (x->p < x->e && isdigit((unsigned char)*x->p)))
        return fail(x, "a version number (1 to 9 digits) was expected");
    *out = v;
    return 0;
}

/* Skips to the next ';' outside quoted strings and comments (or the end). */
static void skip_resinfo(lex *x)
{
    while (x->p < x->e && *x->p != ';') {
        if (*x->p == '"') {
            lex t = *x;
            char dummy[2];
            if (quoted_string(&t, dummy, sizeof dummy) != 0) {
                x->p = x->e;
                return;
            }
            x->p = t.p;
        } else if (*x->p == '(') {
            lex t = *x;
            if (comment(&t, NULL, 0) != 0) {
                x->p = x->e;
                return;
            }
            x->p = t.p;
        } else {
            x->p++;
        }
    }
}

static void set_error(md_error *err, const lex *x, const char *what)
{
    md_error_set(err, MD_PROTOCOL, what, "%s at byte %zu", x->why ? x->why : "malformed", x->at);
}

/* The rest of one resinfo after method=result: [CFWS reasonspec]
 * [CFWS 1*propspec], up to ';' or the end.  -1 when it breaks the grammar. */
static int resinfo_rest(lex *x, md_authres_result *r)
{
    int props = 0, reason = 0;
    for (;;) {
        int sp = cfws(x);
        if (sp < 0)
            return -1;
        if (at_end(x) || *x->p == ';')
            return 0;
        if (sp == 0)
            return fail(x, "a space was expected between the parts of a result");
        char k[32];
        if (keyword(x, k, sizeof k) != 0 || cfws(x) < 0 || at_end(x))
            return -1;
        if (*x->p == '=' && strcmp(k, "reason") == 0 && !props && !reason) {
            x->p++;
            if (cfws(x) < 0 || value(x, r->reason, sizeof r->reason) != 0)
                return -1;
            reason = 1;
            continue;
        }
        if (*x->p != '.')
            return fail(x, "a property (ptype.property=value) or reason= was expected");
        x->p++;
        md_authres_prop p;
        memset(&p, 0, sizeof p);
        memcpy(p.ptype, k, strnlen(k, sizeof p.ptype - 1));   /* cut to fit: ptypes are short words */
        if (cfws(x) < 0 || keyword(x, p.property, sizeof p.property) != 0 || cfws(x) < 0)
            return -1;
        if (at_end(x) || *x->p != '=')
            return fail(x, "'=' was expected after a property");
        x->p++;
        if (cfws(x) < 0 || loose_value(x, p.value, sizeof p.value) != 0)
            return -1;
        props = 1;
        if (r->nprop < MD_AUTHRES_PROPS_MAX)
            r->prop[r->nprop++] = p;
    }
}

static md_status read_results(lex *xp, md_authres *out, int semi);

md_status md_arrival_authres_parse(const char *v, size_t len, md_authres *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    out->version = 1;
    lex x = { v, v, v + len, NULL, 0 };
    if (len > MD_AUTHRES_INPUT_MAX)
        return md_error_set(err, MD_PROTOCOL, "authres", "longer than %u bytes", MD_AUTHRES_INPUT_MAX);
    if (cfws(&x) < 0 || at_end(&x) || value(&x, out->authserv_id, sizeof out->authserv_id) != 0) {
        if (!x.why)
            fail(&x, "no authserv-id");
        set_error(err, &x, "authres");
        return MD_PROTOCOL;
    }
    int sp = cfws(&x);
    if (sp < 0) {
        set_error(err, &x, "authres");
        return MD_PROTOCOL;
    }
    if (!at_end(&x) && (*x.p == '=' || *x.p == '/')) {
        /* "spf=pass ...": no authserv-id, as Exchange Online writes it.
         * Read on from the start, as if after the ';'. */
        out->authserv_id[0] = '\0';
        out->no_authserv_id = 1;
        x.p = v;
        return read_results(&x, out, 0);
    }
    if (sp > 0 && !at_end(&x) && isdigit((unsigned char)*x.p)) {
        if (number(&x, &out->version) != 0 || cfws(&x) < 0) {
            set_error(err, &x, "authres.version");
            return MD_PROTOCOL;
        }
    }
    if (at_end(&x) || *x.p != ';') {
        fail(&x, at_end(&x) ? "no result after the authserv-id ('none' or method=result)"
                            : "';' was expected after the authserv-id");
        set_error(err, &x, "authres");
        return MD_PROTOCOL;
    }
    return read_results(&x, out, 1);
}

/* 1*resinfo, or no-result, from x->p: at a ';' (semi) or at the first
 * method (no authserv-id). */
static md_status read_results(lex *xp, md_authres *out, int semi)
{
    lex x = *xp;
    for (size_t n = 0; !at_end(&x); n++) {
        if (semi || n > 0)
            x.p++;   /* ';' */
        x.why = NULL;
        if (cfws(&x) < 0) {
            out->skipped++;
            skip_resinfo(&x);
            continue;
        }
        if (at_end(&x))
            break;   /* a ';' at the end: nothing follows it */
        md_authres_result r;
        memset(&r, 0, sizeof r);
        if (keyword(&x, r.method, sizeof r.method) != 0) {
            out->skipped++;
            skip_resinfo(&x);
            continue;
        }
        lex t = x;
        if (n == 0 && strcmp(r.method, "none") == 0 && cfws(&t) >= 0 && at_end(&t)) {
            out->none = 1;   /* no-result: "; none" and nothing else */
            break;
        }
        int ok = cfws(&x) >= 0;
        if (ok && !at_end(&x) && *x.p == '/') {
            x.p++;
            ok = cfws(&x) >= 0 && number(&x, &r.method_version) == 0 && cfws(&x) >= 0;
        }
        ok = ok && !at_end(&x) && *x.p == '=';
        if (ok) {
            x.p++;
            ok = cfws(&x) >= 0 && keyword(&x, r.result, sizeof r.result) == 0;
        }
        if (!ok) {
            out->skipped++;
            skip_resinfo(&x);
            continue;
        }
        if (resinfo_rest(&x, &r) != 0) {
            r.malformed = 1;
            skip_resinfo(&x);
        }
        if (out->nresult < MD_AUTHRES_RESULTS_MAX)
            out->result[out->nresult++] = r;
        else
            out->skipped++;
    }
    return MD_OK;
}

/* -------------------------------------------------------- Received-SPF */

static const char *const spf_results[] = { "pass", "fail", "softfail", "neutral", "none", "temperror",
                                           "permerror" };

md_status md_arrival_received_spf_parse(const char *v, size_t len, md_received_spf *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    lex x = { v, v, v + len, NULL, 0 };
    if (len > MD_AUTHRES_INPUT_MAX)
        return md_error_set(err, MD_PROTOCOL, "received_spf", "longer than %u bytes", MD_AUTHRES_INPUT_MAX);
    char res[16];
    if (cfws(&x) < 0 || keyword(&x, res, sizeof res) != 0) {
        set_error(err, &x, "received_spf");
        return MD_PROTOCOL;
    }
    int known = 0;
    for (size_t i = 0; i < sizeof spf_results / sizeof spf_results[0]; i++)
        if (strcmp(res, spf_results[i]) == 0)
            known = 1;
    if (!known)
        return md_error_set(err, MD_PROTOCOL, "received_spf", "'%s' is not an SPF result (RFC 7208 2.6)", res);
    snprintf(out->result, sizeof out->result, "%s", res);
    int sp = cfws_keep(&x, out->comment, sizeof out->comment);
    if (sp < 0) {
        set_error(err, &x, "received_spf");
        return MD_PROTOCOL;
    }
    if (at_end(&x))
        return MD_OK;
    if (sp == 0) {
        fail(&x, "a space was expected after the result");
        set_error(err, &x, "received_spf");
        return MD_PROTOCOL;
    }
    /* key-value-list = key-value-pair *( ";" [CFWS] key-value-pair ) [";"] */
    while (!at_end(&x)) {
        md_received_spf_kv kv;
        memset(&kv, 0, sizeof kv);
        const char *s = x.p;
        while (x.p < x.e && (isalnum((unsigned char)*x.p) || strchr("-_.", *x.p)))
            x.p++;
        int ok = x.p > s && isalpha((unsigned char)*s);
        if (ok) {
            size_t n = (size_t)(x.p - s), k = n < sizeof kv.key - 1 ? n : sizeof kv.key - 1;
            for (size_t i = 0; i < k; i++)
                kv.key[i] = (char)tolower((unsigned char)s[i]);
            ok = cfws(&x) >= 0 && !at_end(&x) && *x.p == '=';
        }
        if (ok) {
            x.p++;
            ok = cfws(&x) >= 0 && loose_value(&x, kv.value, sizeof kv.value) == 0 && cfws(&x) >= 0;
        }
        ok = ok && (at_end(&x) || *x.p == ';');
        if (!ok) {
            out->malformed = 1;
            break;
        }
        if (out->nkv < sizeof out->kv / sizeof out->kv[0])
            out->kv[out->nkv++] = kv;
        if (!at_end(&x)) {
            x.p++;   /* ';' */
            if (cfws(&x) < 0) {
                out->malformed = 1;
                break;
            }
        }
    }
    return MD_OK;
}
