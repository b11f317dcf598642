/*
 * lib/auth: DMARC, DKIM, MTA-STS, TLS-RPT, BIMI, SPF lint and the MX route
 * of one sending domain (see auth.h).  Each check is a fetch, here at the
 * end of the file, over a pure evaluation of the record text.
 */
#include "config.h"
#include "auth.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpsl.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dns/name.h"
#include "mx/mx.h"

/* --- small helpers ------------------------------------------------------ */

/* A copy of s[0..len) as printable ASCII (other bytes '?', up to a NUL):
 * what the records, tag values and findings of this module show. */
static char *ascii_dup(const char *s, size_t len)
{
    char *b = md_xmalloc(len + 1);
    md_sanitize(b, len + 1, s, len);
    return b;
}

static void add(md_report *rep, const char *id, md_severity sev, const char *summary,
                const char *evidence)
{
    char *sum = ascii_dup(summary, strlen(summary));
    md_finding *f = md_report_add(rep, id, sev, "%s", sum);
    free(sum);
    if (evidence && *evidence) {
        char *ev = ascii_dup(evidence, strlen(evidence));
        md_finding_add_evidence(f, "%s", ev);
        free(ev);
    }
}

static void temp(md_report *rep, const md_dns_answer *a, const char *what)
{
    /* the record's name, as people write it, for the finding ids' prefixes */
    what = strcmp(what, "mtasts") == 0 ? "MTA-STS" : strcmp(what, "tlsrpt") == 0 ? "TLS-RPT"
         : strcmp(what, "bimi") == 0 ? "BIMI" : what;
    char ev[300];
    snprintf(ev, sizeof ev, "TXT %s: %s %s", a->qname, md_dns_outcome_name(a->outcome), a->detail);
    char sum[160];
    snprintf(sum, sizeof sum, "the %s lookup failed temporarily", what);
    add(rep, "dns.temporary", MD_SEV_UNKNOWN, sum, ev);
}

/* The answer to one further question of an evaluator: from ans, or, with
 * none, a temporary failure (the question could not be asked). */
static md_dns_answer *ask(const md_auth_answers *ans, const char *name, int type)
{
    if (ans != NULL && ans->resolve != NULL)
        return ans->resolve(ans->arg, name, type);
    md_dns_answer *a = md_xcalloc(1, sizeof *a);
    a->outcome = MD_DNS_ERROR;
    a->type = type;
    a->qname = md_xstrdup(name);
    snprintf(a->detail, sizeof a->detail, "no DNS lookups in this evaluation");
    return a;
}

/* Whether s (len bytes) starts with "v=VERSION" followed by ';', blank or end. */
static int starts_version(const char *s, size_t len, const char *version)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= len || (s[i] != 'v' && s[i] != 'V'))
        return 0;
    i++;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i >= len || s[i] != '=')
        return 0;
    i++;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t vl = strlen(version);
    if (len - i < vl || strncmp(s + i, version, vl) != 0)
        return 0;
    i += vl;
    return i == len || s[i] == ';' || s[i] == ' ' || s[i] == '\t';
}

/* --- tag lists ------------------------------------------------------------ */

void md_auth_tags_clear(md_auth_tags *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].value);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

const char *md_auth_tags_get(const md_auth_tags *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return t->v[i].value;
    return NULL;
}

static int tags_fail(md_auth_tags *t, char *msg, size_t msgsize, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int tags_fail(md_auth_tags *t, char *msg, size_t msgsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msgsize, fmt, ap);
    va_end(ap);
    md_auth_tags_clear(t);
    return -1;
}

int md_auth_tags_parse(const char *s, size_t len, md_auth_tags *out, char *msg, size_t msgsize)
{
    size_t i = 0, cap = 0;
    out->v = NULL;
    out->n = 0;
    if (memchr(s, '\0', len) != NULL)
        return tags_fail(out, msg, msgsize, "NUL byte in the record");
    while (i < len) {
        size_t st = i;
        while (i < len && s[i] != ';')
            i++;
        size_t a = st, b = i;
        while (a < b && isspace((unsigned char)s[a]))
            a++;
        while (b > a && isspace((unsigned char)s[b - 1]))
            b--;
        i++;   /* past ';' */
        if (a == b)
            continue;   /* empty element: "a=b;;" and a trailing ';' are fine */
        const char *eq = memchr(s + a, '=', b - a);
        size_t ne = eq ? (size_t)(eq - s) : b;
        while (ne > a && isspace((unsigned char)s[ne - 1]))
            ne--;
        if (eq == NULL || ne == a)
            return tags_fail(out, msg, msgsize, "'%.*s' is not tag=value",
                             (int)(b - a > 60 ? 60 : b - a), s + a);
        char name[64];
        size_t nl = ne - a < sizeof name - 1 ? ne - a : sizeof name - 1;
        for (size_t k = 0; k < nl; k++) {
            unsigned char c = (unsigned char)s[a + k];
            if (!isalnum(c) && c != '_')
                return tags_fail(out, msg, msgsize, "bad tag name '%.*s'", (int)nl, s + a);
            name[k] = (char)tolower(c);
        }
        name[nl] = '\0';
        size_t va = (size_t)(eq - s) + 1;
        while (va < b && isspace((unsigned char)s[va]))
            va++;
        if (md_auth_tags_get(out, name) != NULL)
            return tags_fail(out, msg, msgsize, "tag '%s' appears twice", name);
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->v = md_xrealloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n].name = md_xstrdup(name);
        out->v[out->n].value = ascii_dup(s + va, b - va);
        out->n++;
    }
    return 0;
}

char *md_auth_org_domain(const char *domain)
{
    static const psl_ctx_t *psl;
    if (psl == NULL)
        psl = psl_builtin();
    const char *r = psl ? psl_registrable_domain(psl, domain) : NULL;
    return md_xstrdup(r ? r : domain);
}

/* --- DMARC (RFC 7489) --------------------------------------------------- */

static int policy_ok(const char *p)
{
    return p && (strcasecmp(p, "none") == 0 || strcasecmp(p, "quarantine") == 0
                 || strcasecmp(p, "reject") == 0);
}

static void uris_clear(md_auth_report_uri *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].uri);
        free(u[i].domain);
    }
    free(u);
}

void md_auth_dmarc_clear(md_auth_dmarc *d)
{
    free(d->record);
    free(d->found_at);
    free(d->error);
    md_auth_tags_clear(&d->tags);
    free(d->policy);
    uris_clear(d->rua, d->nrua);
    uris_clear(d->ruf, d->nruf);
    memset(d, 0, sizeof *d);
}

/* RFC 7489 7.1: a report destination outside the domain's organizational
 * domain must publish AT._report._dmarc.DEST with v=DMARC1. */
static md_auth_report_uri *dmarc_uris(const char *at, const char *org, const char *tagname,
                                      const char *list, const md_auth_answers *ans,
                                      size_t *n, md_report *rep)
{
    md_auth_report_uri *arr = NULL;
    *n = 0;
    char *copy = md_xstrdup(list), *save = NULL;
    for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*u))
            u++;
        size_t ul = strlen(u);
        while (ul > 0 && isspace((unsigned char)u[ul - 1]))
            u[--ul] = '\0';
        char ev[1100];
        snprintf(ev, sizeof ev, "%s=%s", tagname, u);
        if (strncasecmp(u, "mailto:", 7) != 0 || strchr(u, '@') == NULL) {
            add(rep, "dmarc.syntax", MD_SEV_WARNING,
                "a DMARC report address is not a mailto: URI", ev);
            continue;
        }
        char *dest = md_xstrdup(strrchr(u, '@') + 1);
        char *bang = strchr(dest, '!');
        if (bang)
            *bang = '\0';
        for (char *p = dest; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        char *dorg = md_auth_org_domain(dest);
        arr = md_xrealloc(arr, (*n + 1) * sizeof *arr);
        md_auth_report_uri *e = &arr[(*n)++];
        e->uri = md_xstrdup(u);
        e->domain = dest;
        e->external = strcasecmp(dorg, org) != 0;
        e->authorized = MD_AUTH_AUTHZ_INTERNAL;
        if (e->external) {
            char q[600];
            snprintf(q, sizeof q, "%s._report._dmarc.%s", at, dest);
            md_dns_answer *a = ask(ans, q, MD_DNS_TXT);
            int ok = 0;
            for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++)
                if (starts_version(a->txt[i].data, a->txt[i].len, "DMARC1"))
                    ok = 1;
            e->authorized = ok ? MD_AUTH_AUTHZ_YES : MD_AUTH_AUTHZ_NO;
            if (md_dns_outcome_is_temporary(a->outcome)) {
                e->authorized = MD_AUTH_AUTHZ_UNKNOWN;
                temp(rep, a, "DMARC report authorization");
            } else if (!ok) {
                snprintf(ev, sizeof ev, "%s=%s: no v=DMARC1 record at %s", tagname, u, q);
                add(rep, "dmarc.rua_unauthorized", MD_SEV_WARNING,
                    "an external DMARC report destination has not authorized the reports"
                    " (RFC 7489 7.1): they will not be sent", ev);
            }
            md_dns_answer_free(a);
        }
        free(dorg);
    }
    free(copy);
    return arr;
}

void md_auth_dmarc_evaluate(const char *domain, const char *found_at, const char *text,
                            size_t len, const md_auth_config *cfg, const md_auth_answers *ans,
                            md_auth_dmarc *out, md_report *rep)
{
    md_auth_config def = { .sends_reset = 1 };
    if (cfg == NULL)
        cfg = &def;
    const char *at = found_at ? found_at : domain;
    int inherited = strcasecmp(at, domain) != 0;
    memset(out, 0, sizeof *out);
    out->found = 1;
    out->record = md_xstrndup(text, len);
    out->found_at = md_xstrdup(at);
    out->inherited = inherited;
    char msg[160], ev[600];
    snprintf(ev, sizeof ev, "_dmarc.%s: %.*s", at, (int)len, text);
    if (md_auth_tags_parse(text, len, &out->tags, msg, sizeof msg) != 0) {
        add(rep, "dmarc.syntax", MD_SEV_CRITICAL, "the DMARC record cannot be parsed", ev);
        out->error = md_xstrdup(msg);
        return;
    }
    const md_auth_tags *tags = &out->tags;
    /* the policy that applies: sp= at the organizational domain for a subdomain */
    const char *p = md_auth_tags_get(tags, "p"), *sp = md_auth_tags_get(tags, "sp");
    const char *applies = inherited && sp ? sp : p;
    if (!policy_ok(p)) {
        if (md_auth_tags_get(tags, "rua")) {
            add(rep, "dmarc.syntax", MD_SEV_WARNING,
                "p= is missing or invalid: with rua= present receivers treat it as p=none"
                " (RFC 7489 6.6.3)", ev);
            applies = "none";
        } else {
            add(rep, "dmarc.syntax", MD_SEV_CRITICAL,
                "p= is missing or invalid: receivers ignore the record", ev);
            return;
        }
    }
    if (sp && !policy_ok(sp))
        add(rep, "dmarc.syntax", MD_SEV_WARNING, "sp= is not none, quarantine or reject", ev);
    if (!policy_ok(applies))
        applies = p;
    out->policy = md_xstrdup(policy_ok(applies) ? applies : "none");
    const char *pct = md_auth_tags_get(tags, "pct");
    if (pct) {
        char *end;
        long v = strtol(pct, &end, 10);
        if (*pct == '\0' || *end != '\0' || v < 0 || v > 100)
            add(rep, "dmarc.syntax", MD_SEV_WARNING, "pct= is not an integer 0..100", ev);
        else if (v < 100)
            add(rep, "dmarc.pct", MD_SEV_WARNING,
                "pct= below 100: the policy applies to only part of the failing mail", ev);
    }
    for (const char *const *t = (const char *const[]){ "adkim", "aspf", NULL }; *t; t++) {
        const char *v = md_auth_tags_get(tags, *t);
        if (v && strcasecmp(v, "r") != 0 && strcasecmp(v, "s") != 0) {
            char s[80];
            snprintf(s, sizeof s, "%s= is not r or s", *t);
            add(rep, "dmarc.syntax", MD_SEV_WARNING, s, ev);
        }
    }
    const char *fo = md_auth_tags_get(tags, "fo");
    if (fo) {
        char *c = md_xstrdup(fo), *save = NULL;
        for (char *x = strtok_r(c, ":", &save); x; x = strtok_r(NULL, ":", &save)) {
            while (isspace((unsigned char)*x))
                x++;
            if (strlen(x) != 1 || strchr("01ds", x[0]) == NULL) {
                add(rep, "dmarc.syntax", MD_SEV_WARNING, "fo= holds a value other than 0, 1, d, s", ev);
                break;
            }
        }
        free(c);
    }
    char *org = md_auth_org_domain(domain);
    const char *rua = md_auth_tags_get(tags, "rua"), *ruf = md_auth_tags_get(tags, "ruf");
    if (rua) {
        out->has_rua = 1;
        out->rua = dmarc_uris(at, org, "rua", rua, ans, &out->nrua, rep);
    } else {
        add(rep, "dmarc.no_rua", MD_SEV_WARNING,
            "no rua=: nobody receives the aggregate reports that show failing mail", ev);
    }
    if (ruf) {
        out->has_ruf = 1;
        out->ruf = dmarc_uris(at, org, "ruf", ruf, ans, &out->nruf, rep);
    }
    free(org);
    if (policy_ok(applies) && strcasecmp(applies, "none") == 0)
        add(rep, "dmarc.p_none", cfg->sends_reset ? MD_SEV_WARNING : MD_SEV_OK,
            "DMARC policy none: spoofed password-reset mail from this domain is not stopped", ev);
    else if (policy_ok(applies))
        add(rep, "dmarc.ok", MD_SEV_OK, "DMARC policy enforced", ev);
    if (inherited)
        add(rep, "dmarc.inherited", MD_SEV_OK,
            "the DMARC record comes from the organizational domain", ev);
}

/* --- DKIM (RFC 6376 3.6.1) --------------------------------------------- */

int md_auth_dkim_key(const char *b64, const char *k, int *bits, char *type, size_t typesize)
{
    size_t n = strlen(b64);
    char *clean = md_xmalloc(n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)b64[i]))
            clean[m++] = b64[i];
    clean[m] = '\0';
    unsigned char *der = md_xmalloc(m / 4 * 3 + 4);
    int rc = -1;
    int dl = m % 4 == 0 && m > 0 ? EVP_DecodeBlock(der, (unsigned char *)clean, (int)m) : -1;
    if (dl > 0) {
        /* EVP_DecodeBlock counts the padding as zero bytes */
        if (m >= 1 && clean[m - 1] == '=')
            dl--;
        if (m >= 2 && clean[m - 2] == '=')
            dl--;
        EVP_PKEY *pk = NULL;
        const unsigned char *p = der;
        if (k && strcasecmp(k, "ed25519") == 0 && dl == 32)
            pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32);
        if (pk == NULL) {
            p = der;
            pk = d2i_PUBKEY(NULL, &p, dl);
        }
        if (pk == NULL) {
            p = der;
            pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dl);   /* PKCS#1 RSAPublicKey */
        }
        if (pk != NULL) {
            *bits = EVP_PKEY_get_bits(pk);
            int id = EVP_PKEY_get_base_id(pk);
            snprintf(type, typesize, "%s", id == EVP_PKEY_RSA ? "rsa" : id == EVP_PKEY_ED25519
                                           ? "ed25519" : "other");
            EVP_PKEY_free(pk);
            rc = 0;
        }
    }
    free(der);
    free(clean);
    return rc;
}

void md_auth_dkim_clear(md_auth_dkim *k)
{
    free(k->selector);
    free(k->name);
    free(k->record);
    free(k->key_type);
    memset(k, 0, sizeof *k);
}

void md_auth_dkim_evaluate(const char *name, const char *text, size_t len, md_auth_dkim *out,
                           md_report *rep)
{
    char ev[700];
    free(out->record);
    out->record = md_xstrndup(text, len);
    snprintf(ev, sizeof ev, "%s: %.*s", name, (int)(len > 600 ? 600 : len), text);
    char msg[160];
    md_auth_tags tags;
    if (md_auth_tags_parse(text, len, &tags, msg, sizeof msg) != 0) {
        add(rep, "dkim.syntax", MD_SEV_CRITICAL, "the DKIM key record cannot be parsed", ev);
        md_auth_tags_clear(&tags);
        return;
    }
    const char *v = md_auth_tags_get(&tags, "v"), *k = md_auth_tags_get(&tags, "k");
    const char *p = md_auth_tags_get(&tags, "p"), *t = md_auth_tags_get(&tags, "t");
    if ((v && strcmp(v, "DKIM1") != 0) || p == NULL) {
        add(rep, "dkim.syntax", MD_SEV_CRITICAL,
            p == NULL ? "the DKIM key record has no p= tag" : "v= is not DKIM1", ev);
    } else if (*p == '\0') {
        add(rep, "dkim.revoked", MD_SEV_CRITICAL, "the DKIM key is revoked (empty p=)", ev);
        out->revoked = 1;
    } else {
        int bits = 0;
        char type[16];
        if (md_auth_dkim_key(p, k, &bits, type, sizeof type) != 0) {
            add(rep, "dkim.key_invalid", MD_SEV_CRITICAL,
                "the DKIM public key cannot be parsed", ev);
        } else {
            free(out->key_type);
            out->key_type = md_xstrdup(type);
            out->key_bits = bits;
            char s[160];
            if (strcmp(type, "rsa") == 0 && bits < 1024) {
                snprintf(s, sizeof s, "RSA key of %d bits: under 1024, verifiers reject it", bits);
                add(rep, "dkim.key_weak", MD_SEV_CRITICAL, s, ev);
            } else if (strcmp(type, "rsa") == 0 && bits < 2048) {
                snprintf(s, sizeof s, "RSA key of %d bits: under the recommended 2048", bits);
                add(rep, "dkim.key_short", MD_SEV_WARNING, s, ev);
            } else {
                snprintf(s, sizeof s, "DKIM key found: %s, %d bits", type, bits);
                add(rep, "dkim.ok", MD_SEV_OK, s, ev);
            }
        }
    }
    if (t) {
        char *c = md_xstrdup(t), *save = NULL;
        for (char *x = strtok_r(c, ":", &save); x; x = strtok_r(NULL, ":", &save)) {
            while (isspace((unsigned char)*x))
                x++;
            if (strcmp(x, "y") == 0 || strncmp(x, "y ", 2) == 0) {
                out->testing = 1;
                add(rep, "dkim.testing", MD_SEV_WARNING,
                    "t=y: the domain is testing DKIM; verifiers may ignore failures", ev);
            }
        }
        free(c);
    }
    md_auth_tags_clear(&tags);
}

/* --- MTA-STS, TLS-RPT, BIMI -------------------------------------------- */

void md_auth_policy_clear(md_auth_policy *p)
{
    free(p->record);
    md_auth_tags_clear(&p->tags);
    memset(p, 0, sizeof *p);
}

/* The tag list of a versioned record published at name: 0 with out found,
 * or -1 (finding PREFIX.invalid added). */
static int policy_parse(const char *name, const char *prefix, const char *text, size_t len,
                        md_auth_policy *out, md_report *rep)
{
    char msg[160];
    memset(out, 0, sizeof *out);
    if (md_auth_tags_parse(text, len, &out->tags, msg, sizeof msg) != 0) {
        char id[40], ev[600];
        snprintf(id, sizeof id, "%s.invalid", prefix);
        snprintf(ev, sizeof ev, "%s: %.*s (%s)", name, (int)len, text, msg);
        add(rep, id, MD_SEV_WARNING, "the record cannot be parsed", ev);
        md_auth_tags_clear(&out->tags);
        return -1;
    }
    out->found = 1;
    out->record = md_xstrndup(text, len);
    return 0;
}

void md_auth_mtasts_evaluate(const char *domain, const char *text, size_t len,
                             const md_auth_answers *ans, md_auth_policy *out, md_report *rep)
{
    char q[300], ev[600];
    snprintf(q, sizeof q, "_mta-sts.%s", domain);
    if (policy_parse(q, "mtasts", text, len, out, rep) != 0)
        return;
    snprintf(ev, sizeof ev, "%s: %.*s", q, (int)len, text);
    const char *id = md_auth_tags_get(&out->tags, "id");
    int idok = id && *id && strlen(id) <= 32;
    for (const char *p = id ? id : ""; *p; p++)
        if (!isalnum((unsigned char)*p))
            idok = 0;
    if (!idok) {
        add(rep, "mtasts.invalid", MD_SEV_WARNING,
            "the MTA-STS id= must be 1 to 32 letters and digits (RFC 8461 3.1)", ev);
        return;
    }
    snprintf(q, sizeof q, "mta-sts.%s", domain);
    md_dns_answer *a4 = ask(ans, q, MD_DNS_A), *a6 = ask(ans, q, MD_DNS_AAAA);
    if (a4->n == 0 && a6->n == 0 && !md_dns_outcome_is_temporary(a4->outcome)) {
        char e2[400];
        snprintf(e2, sizeof e2, "%s: %s", q, md_dns_outcome_name(a4->outcome));
        add(rep, "mtasts.policy_host", MD_SEV_WARNING,
            "MTA-STS is announced but the policy host has no address", e2);
    } else {
        add(rep, "mtasts.ok", MD_SEV_OK,
            "MTA-STS announced (the HTTPS policy file is not fetched by this check)", ev);
    }
    md_dns_answer_free(a4);
    md_dns_answer_free(a6);
}

void md_auth_tlsrpt_evaluate(const char *domain, const char *text, size_t len,
                             md_auth_policy *out, md_report *rep)
{
    char q[300], ev[600];
    snprintf(q, sizeof q, "_smtp._tls.%s", domain);
    if (policy_parse(q, "tlsrpt", text, len, out, rep) != 0)
        return;
    snprintf(ev, sizeof ev, "%s: %.*s", q, (int)len, text);
    const char *rua = md_auth_tags_get(&out->tags, "rua");
    int ok = rua && *rua;
    if (ok) {
        char *c = md_xstrdup(rua), *save = NULL;
        for (char *u = strtok_r(c, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*u))
                u++;
            if (strncasecmp(u, "mailto:", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
                ok = 0;
        }
        free(c);
    }
    if (ok)
        add(rep, "tlsrpt.ok", MD_SEV_OK, "TLS-RPT reports requested", ev);
    else
        add(rep, "tlsrpt.invalid", MD_SEV_WARNING,
            "TLS-RPT rua= must list mailto: or https: URIs (RFC 8460 3)", ev);
}

void md_auth_bimi_evaluate(const char *domain, const char *text, size_t len,
                           md_auth_policy *out, md_report *rep)
{
    char q[300], ev[600];
    snprintf(q, sizeof q, "default._bimi.%s", domain);
    if (policy_parse(q, "bimi", text, len, out, rep) != 0)
        return;
    snprintf(ev, sizeof ev, "%s: %.*s", q, (int)len, text);
    const char *l = md_auth_tags_get(&out->tags, "l");
    if (l && *l && strncasecmp(l, "https://", 8) != 0)
        add(rep, "bimi.invalid", MD_SEV_WARNING, "the BIMI logo l= is not an https: URL", ev);
    else
        add(rep, "bimi.present", MD_SEV_OK, "BIMI record present (noted, not validated)", ev);
}

/* --- the fetches ------------------------------------------------------------ */

static md_dns_answer *dns_resolve(void *arg, const char *name, int type)
{
    return md_dns_resolve(arg, name, type);
}

/* The _dmarc records at name: 0 found, 1 one (text in *rec), -1 several,
 * -2 temporary failure. */
static int dmarc_fetch(md_dns *dns, const char *name, char **rec, md_report *rep)
{
    char q[300];
    snprintf(q, sizeof q, "_dmarc.%s", name);
    md_dns_answer *a = md_dns_resolve(dns, q, MD_DNS_TXT);
    int rc = 0;
    if (md_dns_outcome_is_temporary(a->outcome)) {
        temp(rep, a, "DMARC");
        rc = -2;
    } else {
        for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++)
            if (starts_version(a->txt[i].data, a->txt[i].len, "DMARC1")) {
                if (rc == 0)
                    *rec = md_xstrndup(a->txt[i].data, a->txt[i].len);
                rc = rc == 0 ? 1 : -1;
            }
    }
    md_dns_answer_free(a);
    return rc;
}

static void dmarc_check(md_dns *dns, const char *domain, const char *org,
                        const md_auth_config *cfg, md_auth_dmarc *out, md_report *rep)
{
    char *rec = NULL;
    const char *at = domain;
    int rc = dmarc_fetch(dns, domain, &rec, rep);
    if (rc == 0 && strcasecmp(org, domain) != 0) {
        at = org;
        rc = dmarc_fetch(dns, org, &rec, rep);
    }
    out->unknown = rc == -2;
    if (rc == 0)
        add(rep, "dmarc.missing", MD_SEV_CRITICAL,
            "no DMARC record at the domain or its organizational domain: receivers such as"
            " Gmail and Yahoo require one from bulk senders", domain);
    if (rc == -1)
        add(rep, "dmarc.multiple", MD_SEV_CRITICAL,
            "more than one DMARC record: receivers ignore them all (RFC 7489 6.6.3)", at);
    if (rc == 1) {
        md_auth_answers ans = { dns_resolve, dns };
        md_auth_dmarc_evaluate(domain, at, rec, strlen(rec), cfg, &ans, out, rep);
    }
    free(rec);
}

/* One selector.  A lookup that failed temporarily is o->unknown: a selector
 * asked for gets its dns.temporary finding here; for probed selectors,
 * *probe_failed (when not NULL) collects the evidence for one finding. */
static void dkim_one(md_dns *dns, const char *domain, const char *sel, int explicit_sel,
                     md_auth_dkim *o, md_report *rep, md_buf *probe_failed)
{
    char q[300], ev[700];
    snprintf(q, sizeof q, "%s._domainkey.%s", sel, domain);
    md_dns_answer *a = md_dns_resolve(dns, q, MD_DNS_TXT);
    memset(o, 0, sizeof *o);
    o->selector = md_xstrdup(sel);
    o->name = md_xstrdup(q);
    if (md_dns_outcome_is_temporary(a->outcome)) {
        o->unknown = 1;
        if (probe_failed == NULL) {
            temp(rep, a, "DKIM key");
        } else {
            int n = snprintf(ev, sizeof ev, "%sTXT %s: %s %s", probe_failed->len ? "\n" : "", a->qname,
                             md_dns_outcome_name(a->outcome), a->detail);
            md_buf_add(probe_failed, ev, n < 0 ? 0 : (size_t)n < sizeof ev ? (size_t)n : sizeof ev - 1);
        }
        md_dns_answer_free(a);
        return;
    }
    size_t nkeys = 0;
    const md_dns_txt *rec = NULL;
    for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++) {
        rec = &a->txt[i];
        nkeys++;
    }
    o->found = nkeys > 0;
    if (nkeys == 0) {
        if (explicit_sel) {
            snprintf(ev, sizeof ev, "%s: %s", q, md_dns_outcome_name(a->outcome));
            add(rep, "dkim.missing", MD_SEV_CRITICAL,
                "no DKIM key at the selector: signatures with it fail", ev);
        }
        md_dns_answer_free(a);
        return;
    }
    if (nkeys > 1) {
        snprintf(ev, sizeof ev, "%s: %zu TXT records", q, nkeys);
        add(rep, "dkim.multiple", MD_SEV_WARNING,
            "several TXT records at a DKIM selector: verifiers may pick any", ev);
    }
    md_auth_dkim_evaluate(q, rec->data, rec->len, o, rep);
    md_dns_answer_free(a);
}

static void dkim_check(md_dns *dns, const char *domain, const md_auth_config *cfg,
                       md_auth_result *r, md_report *rep)
{
    if (cfg->nselectors > 0) {
        r->dkim = md_xcalloc(cfg->nselectors, sizeof *r->dkim);
        for (size_t i = 0; i < cfg->nselectors; i++)
            dkim_one(dns, domain, cfg->selectors[i], 1, &r->dkim[r->ndkim++], rep, NULL);
        return;
    }
    const char *probe = cfg->probe_selectors && *cfg->probe_selectors
                        ? cfg->probe_selectors : MD_AUTH_DKIM_DEFAULT_SELECTORS;
    size_t n = 0;
    char **list = md_dns_server_list_split(probe, &n);
    r->dkim = md_xcalloc(n + 1, sizeof *r->dkim);
    md_buf failed = { 0 };
    size_t nfailed = 0;
    for (size_t i = 0; i < n; i++) {
        md_auth_dkim *o = &r->dkim[r->ndkim];
        dkim_one(dns, domain, list[i], 0, o, rep, &failed);
        nfailed += o->unknown != 0;
        if (o->found)
            r->ndkim++;
        else
            md_auth_dkim_clear(o);
    }
    md_dns_server_list_free(list);
    if (nfailed) {
        /* Not "no key": the selectors that could not be asked may hold one. */
        char sum[200];
        snprintf(sum, sizeof sum, "the DKIM key lookup failed temporarily at %zu of %zu usual selectors%s",
                 nfailed, n, r->ndkim ? "" : ": whether the domain publishes a key is unknown");
        md_finding *f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN, "%s", sum);
        for (char *line = failed.data, *end = failed.data + failed.len; line && line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            char *ev = ascii_dup(line, (size_t)((nl ? nl : end) - line));
            md_finding_add_evidence(f, "%s", ev);
            free(ev);
            line = nl ? nl + 1 : NULL;
        }
    }
    free(failed.data);
    if (r->ndkim == 0 && nfailed == 0) {
        char sum[400];
        snprintf(sum, sizeof sum, "no DKIM key at the usual selectors%s%s",
                 cfg->selector_advice ? ": " : "", cfg->selector_advice ? cfg->selector_advice : "");
        add(rep, "dkim.none_found", MD_SEV_WARNING, sum, probe);
    }
}

/* The one TXT record at name starting with v=VERSION: 1 (*rec set), 0 none,
 * -1 several (finding added), -2 temporary. */
static int versioned(md_dns *dns, const char *name, const char *version, const char *prefix,
                     char **rec, md_report *rep)
{
    md_dns_answer *a = md_dns_resolve(dns, name, MD_DNS_TXT);
    int n = 0;
    *rec = NULL;
    if (md_dns_outcome_is_temporary(a->outcome)) {
        temp(rep, a, prefix);
        md_dns_answer_free(a);
        return -2;
    }
    for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++)
        if (starts_version(a->txt[i].data, a->txt[i].len, version)) {
            if (n++ == 0)
                *rec = md_xstrndup(a->txt[i].data, a->txt[i].len);
        }
    md_dns_answer_free(a);
    if (n > 1) {
        char id[40];
        snprintf(id, sizeof id, "%s.multiple", prefix);
        add(rep, id, MD_SEV_WARNING, "more than one record: receivers ignore them", name);
        free(*rec);
        *rec = NULL;
        return -1;
    }
    return n;
}

static void policies_check(md_dns *dns, const char *domain, md_auth_result *r, md_report *rep)
{
    char q[300], *rec;
    snprintf(q, sizeof q, "_mta-sts.%s", domain);
    int n = versioned(dns, q, "STSv1", "mtasts", &rec, rep);
    r->mta_sts.unknown = n == -2;
    if (n == 0)
        add(rep, "mtasts.absent", MD_SEV_OK, "no MTA-STS record (optional)", q);
    if (n == 1) {
        md_auth_answers ans = { dns_resolve, dns };
        md_auth_mtasts_evaluate(domain, rec, strlen(rec), &ans, &r->mta_sts, rep);
    }
    free(rec);
    snprintf(q, sizeof q, "_smtp._tls.%s", domain);
    n = versioned(dns, q, "TLSRPTv1", "tlsrpt", &rec, rep);
    r->tls_rpt.unknown = n == -2;
    if (n == 0)
        add(rep, "tlsrpt.absent", MD_SEV_OK, "no TLS-RPT record (optional)", q);
    if (n == 1)
        md_auth_tlsrpt_evaluate(domain, rec, strlen(rec), &r->tls_rpt, rep);
    free(rec);
    snprintf(q, sizeof q, "default._bimi.%s", domain);
    n = versioned(dns, q, "BIMI1", "bimi", &rec, rep);
    r->bimi.unknown = n == -2;
    if (n == 1)
        md_auth_bimi_evaluate(domain, rec, strlen(rec), &r->bimi, rep);
    free(rec);
}

/* --- MX route (lib/mx) -------------------------------------------------- */

/* The route judged by lib/mx, as a report of its own: its fields as
 * maildiag-mx gives them, and its findings. */
static md_report *mx_judged(const md_auth_result *r)
{
    md_report *m = md_report_new("mx", r->domain);
    md_report_set(m, "input", json_string(r->domain));
    md_report_set(m, "domain", json_string(r->mx->domain));
    if (r->mx->unicode)
        md_report_set(m, "domain_unicode", json_string(r->mx->unicode));
    md_mx_route_evaluate(r->mx, &(md_mx_options){ .no_details = 1 }, m);
    return m;
}

/* --- all ---------------------------------------------------------------- */

void md_auth_result_free(md_auth_result *r)
{
    if (r == NULL)
        return;
    free(r->domain);
    free(r->org_domain);
    md_auth_dmarc_clear(&r->dmarc);
    for (size_t i = 0; i < r->ndkim; i++)
        md_auth_dkim_clear(&r->dkim[i]);
    free(r->dkim);
    md_auth_policy_clear(&r->mta_sts);
    md_auth_policy_clear(&r->tls_rpt);
    md_auth_policy_clear(&r->bimi);
    md_spf_result_free(r->spf);
    md_mx_route_free(r->mx);
    free(r);
}

md_status md_auth_check(md_dns *dns, const char *domain_in, const md_auth_config *cfg,
                        md_auth_result **out, md_report *rep, md_error *err)
{
    md_auth_config def = { .sends_reset = 1 };
    if (cfg == NULL)
        cfg = &def;
    *out = NULL;
    /* IDN to A-labels, lower case, LDH labels (lib/dns/name.h) */
    char ascii[MD_DNS_NAME_MAX + 1];
    if (md_dns_name_normalize(domain_in, ascii, sizeof ascii, NULL, 0, err) != MD_OK)
        return err->status;
    if (strchr(ascii, '.') == NULL)
        return md_error_set(err, MD_CONFIG, "auth", "'%.80s' is not a domain with at least two"
                            " labels", domain_in);
    md_auth_result *r = md_xcalloc(1, sizeof *r);
    r->domain = md_xstrdup(ascii);
    r->org_domain = md_auth_org_domain(r->domain);
    dmarc_check(dns, r->domain, r->org_domain, cfg, &r->dmarc, rep);
    dkim_check(dns, r->domain, cfg, r, rep);
    policies_check(dns, r->domain, r, rep);
    md_error e2 = { 0 };
    if (md_spf_lint(dns, r->domain, &r->spf, rep, &e2) != MD_OK)
        r->spf = NULL;
    md_error e3 = { 0 };
    r->mx = md_mx_resolve_wait(dns, r->domain, 0, &e3);
    if (r->mx != NULL) {
        md_report *m = mx_judged(r);
        md_report_add_findings(rep, m);
        md_report_free(m);
    }
    *out = r;
    return MD_OK;
}

/* --- described into a report ------------------------------------------------ */

/* Module text as a JSON string: printable ASCII, as the checks show it. */
static json_t *jascii(const char *s)
{
    if (s == NULL)
        return json_null();
    char *b = ascii_dup(s, strlen(s));
    json_t *j = json_string_nocheck(b);
    free(b);
    return j;
}

/* Names given by a person (selectors): UTF-8 kept, controls replaced. */
static json_t *jtext(const char *s)
{
    char *b = md_sanitize_dup(s, strlen(s));
    json_t *j = json_string_nocheck(b);
    free(b);
    return j;
}

static json_t *tags_json(const md_auth_tags *t)
{
    json_t *o = json_object();
    for (size_t i = 0; i < t->n; i++)
        json_object_set_new(o, t->v[i].name, jascii(t->v[i].value));
    return o;
}

static json_t *uris_json(const md_auth_report_uri *u, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "uri", jascii(u[i].uri));
        json_object_set_new(o, "domain", jascii(u[i].domain));
        json_object_set_new(o, "external", json_boolean(u[i].external));
        if (u[i].external)
            json_object_set_new(o, "authorized", json_boolean(u[i].authorized == MD_AUTH_AUTHZ_YES));
        json_array_append_new(a, o);
    }
    return a;
}

/* A record whose lookup failed is not an absent one (null): an object
 * without a record that says so. */
static json_t *lookup_failed_json(void)
{
    return json_pack("{s:n,s:s}", "record", "lookup", "failed");
}

static json_t *dmarc_json(const md_auth_dmarc *d)
{
    if (!d->found)
        return d->unknown ? lookup_failed_json() : json_null();
    json_t *o = json_object();
    json_object_set_new(o, "record", jascii(d->record));
    json_object_set_new(o, "found_at", jascii(d->found_at));
    json_object_set_new(o, "inherited", json_boolean(d->inherited));
    if (d->error) {
        json_object_set_new(o, "error", jtext(d->error));
        return o;
    }
    json_object_set_new(o, "tags", tags_json(&d->tags));
    if (d->policy)
        json_object_set_new(o, "policy", jascii(d->policy));
    if (d->has_rua)
        json_object_set_new(o, "rua", uris_json(d->rua, d->nrua));
    if (d->has_ruf)
        json_object_set_new(o, "ruf", uris_json(d->ruf, d->nruf));
    return o;
}

static json_t *dkim_json(const md_auth_dkim *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "selector", jtext(k->selector));
    json_object_set_new(o, "name", jtext(k->name));
    json_object_set_new(o, "found", json_boolean(k->found));
    if (k->unknown)
        json_object_set_new(o, "lookup", json_string("failed"));
    if (k->record)
        json_object_set_new(o, "record", jascii(k->record));
    if (k->revoked)
        json_object_set_new(o, "revoked", json_true());
    if (k->key_type) {
        json_object_set_new(o, "key_type", jascii(k->key_type));
        json_object_set_new(o, "key_bits", json_integer(k->key_bits));
    }
    if (k->testing)
        json_object_set_new(o, "testing", json_true());
    return o;
}

static json_t *policy_json(const md_auth_policy *p)
{
    if (!p->found)
        return p->unknown ? lookup_failed_json() : json_null();
    json_t *o = json_object();
    json_object_set_new(o, "record", jascii(p->record));
    json_object_set_new(o, "tags", tags_json(&p->tags));
    return o;
}

/* What a detail line shows for a record whose lookup failed. */
#define UNKNOWN_TEXT "(unknown: the lookup failed)"

void md_auth_describe(const md_auth_result *r, md_report *rep)
{
    md_report_set_subject(rep, r->domain);
    md_report_set(rep, "domain", jascii(r->domain));
    md_report_set(rep, "org_domain", jascii(r->org_domain));
    md_report_set(rep, "dmarc", dmarc_json(&r->dmarc));
    json_t *dk = json_array();
    for (size_t i = 0; i < r->ndkim; i++)
        json_array_append_new(dk, dkim_json(&r->dkim[i]));
    md_report_set(rep, "dkim", dk);
    md_report_set(rep, "mta_sts", policy_json(&r->mta_sts));
    md_report_set(rep, "tls_rpt", policy_json(&r->tls_rpt));
    md_report_set(rep, "bimi", policy_json(&r->bimi));
    if (r->spf != NULL) {
        /* the lint as lib/spf describes it, without its query trace */
        md_report *tmp = md_report_new("spf", NULL);
        md_spf_describe(r->spf, tmp, MD_SPF_DESCRIBE_NO_QUERIES | MD_SPF_DESCRIBE_JSON_ONLY);
        md_report_set(rep, "spf", json_incref(md_report_fields(tmp)));
        md_report_free(tmp);
    }
    json_t *mx = json_null();
    if (r->mx != NULL) {   /* the MX check's fields and status */
        md_report *m = mx_judged(r);
        mx = json_copy(md_report_fields(m));
        json_object_set_new(mx, "status", json_string(md_severity_name(md_report_status(m))));
        md_report_free(m);
    }
    md_report_set(rep, "mx", mx);

    char *rec = r->dmarc.found ? ascii_dup(r->dmarc.record, strlen(r->dmarc.record)) : NULL;
    md_report_add_detail(rep, "DMARC: %s%s%s", rec ? rec : r->dmarc.unknown ? UNKNOWN_TEXT : "(none)",
                         r->dmarc.inherited ? " (from " : "",
                         r->dmarc.inherited ? r->dmarc.found_at : "");
    free(rec);
    if (r->dmarc.inherited)
        md_report_add_detail(rep, "  (policy found at the organizational domain)");
    for (size_t i = 0; i < r->ndkim; i++) {
        const md_auth_dkim *k = &r->dkim[i];
        if (k->key_type)
            md_report_add_detail(rep, "DKIM %s: %s %d bits", k->selector, k->key_type, k->key_bits);
        else
            md_report_add_detail(rep, "DKIM %s: %s", k->selector, k->found ? "no usable key"
                                 : k->unknown ? UNKNOWN_TEXT : "no key");
    }
    const struct { const char *label; const md_auth_policy *p; } pol[] = {
        { "MTA-STS", &r->mta_sts }, { "TLS-RPT", &r->tls_rpt }, { "BIMI", &r->bimi },
    };
    for (size_t n = 0; n < sizeof pol / sizeof pol[0]; n++) {
        char *t = pol[n].p->found ? ascii_dup(pol[n].p->record, strlen(pol[n].p->record)) : NULL;
        md_report_add_detail(rep, "%s: %s", pol[n].label, t ? t : pol[n].p->unknown ? UNKNOWN_TEXT : "(none)");
        free(t);
    }
    md_report_add_detail(rep, "SPF: %s", r->spf && r->spf->record ? r->spf->record
                         : r->spf == NULL || md_report_has(rep, "spf.dns_temporary") ? UNKNOWN_TEXT : "(none)");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(mx, "mx"), i, m)
        md_report_add_detail(rep, "MX %lld %s",
                             (long long)json_integer_value(json_object_get(m, "preference")),
                             json_string_value(json_object_get(m, "host")) ?: "?");
}
