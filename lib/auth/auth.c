/*
 * lib/auth: DMARC, DKIM, MTA-STS, TLS-RPT, BIMI, SPF lint and the MX route
 * of one sending domain (see auth.h).
 */
#include "config.h"
#include "auth.h"

#include <ctype.h>
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
#include "report/report.h"
#include "spf/spf.h"

/* --- small helpers ------------------------------------------------------ */

static json_t *text(const char *s, size_t len)
{
    char *b = md_xmalloc(len + 1);
    md_sanitize(b, len + 1, s, len);
    json_t *j = json_string(b);
    free(b);
    return j;
}

static void add(json_t *findings, const char *id, md_severity sev, const char *summary,
                const char *evidence)
{
    json_t *f = json_pack("{s:s, s:s, s:o, s:[]}", "id", id, "severity", md_severity_name(sev),
                          "summary", text(summary, strlen(summary)), "evidence");
    if (evidence && *evidence)
        json_array_append_new(json_object_get(f, "evidence"), text(evidence, strlen(evidence)));
    json_array_append_new(findings, f);
}

static void temp(json_t *findings, const md_dns_answer *a, const char *what)
{
    char ev[300];
    snprintf(ev, sizeof ev, "TXT %s: %s %s", a->qname, md_dns_outcome_name(a->outcome), a->detail);
    char sum[160];
    snprintf(sum, sizeof sum, "the %s lookup failed temporarily", what);
    add(findings, "dns.temporary", MD_SEV_UNKNOWN, sum, ev);
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

json_t *md_auth_tags_parse(const char *s, size_t len, char *msg, size_t msgsize)
{
    json_t *o = json_object();
    size_t i = 0;
    if (memchr(s, '\0', len) != NULL) {
        snprintf(msg, msgsize, "NUL byte in the record");
        json_decref(o);
        return NULL;
    }
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
        if (eq == NULL || ne == a) {
            snprintf(msg, msgsize, "'%.*s' is not tag=value", (int)(b - a > 60 ? 60 : b - a), s + a);
            json_decref(o);
            return NULL;
        }
        char name[64];
        size_t nl = ne - a < sizeof name - 1 ? ne - a : sizeof name - 1;
        for (size_t k = 0; k < nl; k++) {
            unsigned char c = (unsigned char)s[a + k];
            if (!isalnum(c) && c != '_') {
                snprintf(msg, msgsize, "bad tag name '%.*s'", (int)nl, s + a);
                json_decref(o);
                return NULL;
            }
            name[k] = (char)tolower(c);
        }
        name[nl] = '\0';
        size_t va = (size_t)(eq - s) + 1;
        while (va < b && isspace((unsigned char)s[va]))
            va++;
        if (json_object_get(o, name) != NULL) {
            snprintf(msg, msgsize, "tag '%s' appears twice", name);
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, name, text(s + va, b - va));
    }
    return o;
}

char *md_auth_org_domain(const char *domain)
{
    static const psl_ctx_t *psl;
    if (psl == NULL)
        psl = psl_builtin();
    const char *r = psl ? psl_registrable_domain(psl, domain) : NULL;
    return md_xstrdup(r ? r : domain);
}

static const char *tag(json_t *tags, const char *name)
{
    return json_string_value(json_object_get(tags, name));
}

/* --- DMARC (RFC 7489) --------------------------------------------------- */

static int policy_ok(const char *p)
{
    return p && (strcasecmp(p, "none") == 0 || strcasecmp(p, "quarantine") == 0
                 || strcasecmp(p, "reject") == 0);
}

/* The _dmarc records at name: 0 found, 1 one (text in *rec), -1 several,
 * -2 temporary failure. */
static int dmarc_fetch(md_dns *dns, const char *name, char **rec, json_t *findings)
{
    char q[300];
    snprintf(q, sizeof q, "_dmarc.%s", name);
    md_dns_answer *a = md_dns_resolve(dns, q, MD_DNS_TXT);
    int rc = 0;
    if (md_dns_outcome_is_temporary(a->outcome)) {
        temp(findings, a, "DMARC");
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

/* RFC 7489 7.1: a report destination outside the domain's organizational
 * domain must publish DOMAIN._report._dmarc.DEST with v=DMARC1. */
static void dmarc_uris(md_dns *dns, const char *domain, const char *org, const char *tagname,
                       const char *list, json_t *findings, json_t *out)
{
    json_t *arr = json_array();
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
            add(findings, "dmarc.syntax", MD_SEV_WARNING,
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
        json_t *entry = json_pack("{s:o, s:o, s:b}", "uri", text(u, strlen(u)),
                                  "domain", text(dest, strlen(dest)),
                                  "external", strcasecmp(dorg, org) != 0);
        if (strcasecmp(dorg, org) != 0) {
            char q[600];
            snprintf(q, sizeof q, "%s._report._dmarc.%s", domain, dest);
            md_dns_answer *a = md_dns_resolve(dns, q, MD_DNS_TXT);
            int ok = 0;
            for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++)
                if (starts_version(a->txt[i].data, a->txt[i].len, "DMARC1"))
                    ok = 1;
            json_object_set_new(entry, "authorized", json_boolean(ok));
            if (md_dns_outcome_is_temporary(a->outcome))
                temp(findings, a, "DMARC report authorization");
            else if (!ok) {
                snprintf(ev, sizeof ev, "%s=%s: no v=DMARC1 record at %s", tagname, u, q);
                add(findings, "dmarc.rua_unauthorized", MD_SEV_WARNING,
                    "an external DMARC report destination has not authorized the reports"
                    " (RFC 7489 7.1): they will not be sent", ev);
            }
            md_dns_answer_free(a);
        }
        json_array_append_new(arr, entry);
        free(dorg);
        free(dest);
    }
    free(copy);
    json_object_set_new(out, tagname, arr);
}

static json_t *dmarc_check(md_dns *dns, const char *domain, const char *org,
                           const md_auth_config *cfg, json_t *findings)
{
    char *rec = NULL;
    const char *at = domain;
    int rc = dmarc_fetch(dns, domain, &rec, findings);
    if (rc == 0 && strcasecmp(org, domain) != 0) {
        at = org;
        rc = dmarc_fetch(dns, org, &rec, findings);
    }
    if (rc == -2)
        return json_null();
    if (rc == 0) {
        add(findings, "dmarc.missing", MD_SEV_CRITICAL,
            "no DMARC record at the domain or its organizational domain: receivers such as"
            " Gmail and Yahoo require one from bulk senders", domain);
        return json_null();
    }
    if (rc == -1) {
        add(findings, "dmarc.multiple", MD_SEV_CRITICAL,
            "more than one DMARC record: receivers ignore them all (RFC 7489 6.6.3)", at);
        free(rec);
        return json_null();
    }
    json_t *out = json_pack("{s:o, s:s, s:b}", "record", text(rec, strlen(rec)), "found_at", at,
                            "inherited", at != domain);
    char msg[160], ev[600];
    snprintf(ev, sizeof ev, "_dmarc.%s: %s", at, rec);
    json_t *tags = md_auth_tags_parse(rec, strlen(rec), msg, sizeof msg);
    free(rec);
    if (tags == NULL) {
        add(findings, "dmarc.syntax", MD_SEV_CRITICAL, "the DMARC record cannot be parsed", ev);
        json_object_set_new(out, "error", json_string(msg));
        return out;
    }
    json_object_set(out, "tags", tags);
    /* the policy that applies: sp= at the organizational domain for a subdomain */
    const char *p = tag(tags, "p"), *sp = tag(tags, "sp");
    const char *applies = at != domain && sp ? sp : p;
    if (!policy_ok(p)) {
        if (tag(tags, "rua")) {
            add(findings, "dmarc.syntax", MD_SEV_WARNING,
                "p= is missing or invalid: with rua= present receivers treat it as p=none"
                " (RFC 7489 6.6.3)", ev);
            applies = "none";
        } else {
            add(findings, "dmarc.syntax", MD_SEV_CRITICAL,
                "p= is missing or invalid: receivers ignore the record", ev);
            json_decref(tags);
            return out;
        }
    }
    if (sp && !policy_ok(sp))
        add(findings, "dmarc.syntax", MD_SEV_WARNING, "sp= is not none, quarantine or reject", ev);
    if (!policy_ok(applies))
        applies = p;
    json_object_set_new(out, "policy", json_string(policy_ok(applies) ? applies : "none"));
    const char *pct = tag(tags, "pct");
    if (pct) {
        char *end;
        long v = strtol(pct, &end, 10);
        if (*pct == '\0' || *end != '\0' || v < 0 || v > 100)
            add(findings, "dmarc.syntax", MD_SEV_WARNING, "pct= is not an integer 0..100", ev);
        else if (v < 100)
            add(findings, "dmarc.pct", MD_SEV_WARNING,
                "pct= below 100: the policy applies to only part of the failing mail", ev);
    }
    for (const char *const *t = (const char *const[]){ "adkim", "aspf", NULL }; *t; t++) {
        const char *v = tag(tags, *t);
        if (v && strcasecmp(v, "r") != 0 && strcasecmp(v, "s") != 0) {
            char s[80];
            snprintf(s, sizeof s, "%s= is not r or s", *t);
            add(findings, "dmarc.syntax", MD_SEV_WARNING, s, ev);
        }
    }
    const char *fo = tag(tags, "fo");
    if (fo) {
        char *c = md_xstrdup(fo), *save = NULL;
        for (char *x = strtok_r(c, ":", &save); x; x = strtok_r(NULL, ":", &save)) {
            while (isspace((unsigned char)*x))
                x++;
            if (strlen(x) != 1 || strchr("01ds", x[0]) == NULL) {
                add(findings, "dmarc.syntax", MD_SEV_WARNING, "fo= holds a value other than 0, 1, d, s", ev);
                break;
            }
        }
        free(c);
    }
    if (tag(tags, "rua"))
        dmarc_uris(dns, at, org, "rua", tag(tags, "rua"), findings, out);
    else
        add(findings, "dmarc.no_rua", MD_SEV_WARNING,
            "no rua=: nobody receives the aggregate reports that show failing mail", ev);
    if (tag(tags, "ruf"))
        dmarc_uris(dns, at, org, "ruf", tag(tags, "ruf"), findings, out);
    if (policy_ok(applies) && strcasecmp(applies, "none") == 0)
        add(findings, "dmarc.p_none", cfg->sends_reset ? MD_SEV_WARNING : MD_SEV_OK,
            "DMARC policy none: spoofed password-reset mail from this domain is not stopped", ev);
    else if (policy_ok(applies))
        add(findings, "dmarc.ok", MD_SEV_OK, "DMARC policy enforced", ev);
    if (at != domain)
        add(findings, "dmarc.inherited", MD_SEV_OK,
            "the DMARC record comes from the organizational domain", ev);
    json_decref(tags);
    return out;
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

static json_t *dkim_one(md_dns *dns, const char *domain, const char *sel, int explicit_sel,
                        json_t *findings)
{
    char q[300], ev[700];
    snprintf(q, sizeof q, "%s._domainkey.%s", sel, domain);
    md_dns_answer *a = md_dns_resolve(dns, q, MD_DNS_TXT);
    json_t *o = json_pack("{s:s, s:s}", "selector", sel, "name", q);
    if (md_dns_outcome_is_temporary(a->outcome)) {
        temp(findings, a, "DKIM key");
        json_object_set_new(o, "found", json_false());
        md_dns_answer_free(a);
        return o;
    }
    size_t nkeys = 0;
    const md_dns_txt *rec = NULL;
    for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++) {
        rec = &a->txt[i];
        nkeys++;
    }
    json_object_set_new(o, "found", json_boolean(nkeys > 0));
    if (nkeys == 0) {
        if (explicit_sel) {
            snprintf(ev, sizeof ev, "%s: %s", q, md_dns_outcome_name(a->outcome));
            add(findings, "dkim.missing", MD_SEV_CRITICAL,
                "no DKIM key at the selector: signatures with it fail", ev);
        }
        md_dns_answer_free(a);
        return o;
    }
    if (nkeys > 1) {
        snprintf(ev, sizeof ev, "%s: %zu TXT records", q, nkeys);
        add(findings, "dkim.multiple", MD_SEV_WARNING,
            "several TXT records at a DKIM selector: verifiers may pick any", ev);
    }
    json_object_set_new(o, "record", text(rec->data, rec->len));
    snprintf(ev, sizeof ev, "%s: %.*s", q, (int)(rec->len > 600 ? 600 : rec->len), rec->data);
    char msg[160];
    json_t *tags = md_auth_tags_parse(rec->data, rec->len, msg, sizeof msg);
    if (tags == NULL) {
        add(findings, "dkim.syntax", MD_SEV_CRITICAL, "the DKIM key record cannot be parsed", ev);
        md_dns_answer_free(a);
        return o;
    }
    const char *v = tag(tags, "v"), *k = tag(tags, "k"), *p = tag(tags, "p"), *t = tag(tags, "t");
    if ((v && strcmp(v, "DKIM1") != 0) || p == NULL) {
        add(findings, "dkim.syntax", MD_SEV_CRITICAL,
            p == NULL ? "the DKIM key record has no p= tag" : "v= is not DKIM1", ev);
    } else if (*p == '\0') {
        add(findings, "dkim.revoked", MD_SEV_CRITICAL, "the DKIM key is revoked (empty p=)", ev);
        json_object_set_new(o, "revoked", json_true());
    } else {
        int bits = 0;
        char type[16];
        if (md_auth_dkim_key(p, k, &bits, type, sizeof type) != 0) {
            add(findings, "dkim.key_invalid", MD_SEV_CRITICAL,
                "the DKIM public key cannot be parsed", ev);
        } else {
            json_object_set_new(o, "key_type", json_string(type));
            json_object_set_new(o, "key_bits", json_integer(bits));
            char s[160];
            if (strcmp(type, "rsa") == 0 && bits < 1024) {
                snprintf(s, sizeof s, "RSA key of %d bits: under 1024, verifiers reject it", bits);
                add(findings, "dkim.key_weak", MD_SEV_CRITICAL, s, ev);
            } else if (strcmp(type, "rsa") == 0 && bits < 2048) {
                snprintf(s, sizeof s, "RSA key of %d bits: under the recommended 2048", bits);
                add(findings, "dkim.key_short", MD_SEV_WARNING, s, ev);
            } else {
                snprintf(s, sizeof s, "DKIM key found: %s, %d bits", type, bits);
                add(findings, "dkim.ok", MD_SEV_OK, s, ev);
            }
        }
    }
    if (t) {
        char *c = md_xstrdup(t), *save = NULL;
        for (char *x = strtok_r(c, ":", &save); x; x = strtok_r(NULL, ":", &save)) {
            while (isspace((unsigned char)*x))
                x++;
            if (strcmp(x, "y") == 0 || strncmp(x, "y ", 2) == 0) {
                json_object_set_new(o, "testing", json_true());
                add(findings, "dkim.testing", MD_SEV_WARNING,
                    "t=y: the domain is testing DKIM; verifiers may ignore failures", ev);
            }
        }
        free(c);
    }
    json_decref(tags);
    md_dns_answer_free(a);
    return o;
}

static json_t *dkim_check(md_dns *dns, const char *domain, const md_auth_config *cfg,
                          json_t *findings)
{
    json_t *arr = json_array();
    if (cfg->nselectors > 0) {
        for (size_t i = 0; i < cfg->nselectors; i++)
            json_array_append_new(arr, dkim_one(dns, domain, cfg->selectors[i], 1, findings));
        return arr;
    }
    const char *env = getenv("MAILDIAG_DKIM_SELECTORS");
    size_t n = 0;
    char **list = md_dns_server_list_split(env && *env ? env : MD_AUTH_DKIM_DEFAULT_SELECTORS, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = dkim_one(dns, domain, list[i], 0, findings);
        if (json_is_true(json_object_get(o, "found"))) {
            json_array_append_new(arr, o);
            found = 1;
        } else {
            json_decref(o);
        }
    }
    md_dns_server_list_free(list);
    if (!found)
        add(findings, "dkim.none_found", MD_SEV_WARNING,
            "no DKIM key at the usual selectors: give the selector your mail is signed with"
            " (--dkim-selector)", env && *env ? env : MD_AUTH_DKIM_DEFAULT_SELECTORS);
    return arr;
}

/* --- MTA-STS, TLS-RPT, BIMI -------------------------------------------- */

/* The one TXT record at name starting with v=VERSION: 1 (*tags, *rec set),
 * 0 none, -1 several (finding added), -2 temporary. */
static int versioned(md_dns *dns, const char *name, const char *version, const char *prefix,
                     json_t **tags, char **rec, json_t *findings)
{
    md_dns_answer *a = md_dns_resolve(dns, name, MD_DNS_TXT);
    int n = 0;
    *tags = NULL;
    *rec = NULL;
    if (md_dns_outcome_is_temporary(a->outcome)) {
        temp(findings, a, prefix);
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
        add(findings, id, MD_SEV_WARNING, "more than one record: receivers ignore them", name);
        free(*rec);
        *rec = NULL;
        return -1;
    }
    if (n == 1) {
        char msg[160];
        *tags = md_auth_tags_parse(*rec, strlen(*rec), msg, sizeof msg);
        if (*tags == NULL) {
            char id[40], ev[600];
            snprintf(id, sizeof id, "%s.invalid", prefix);
            snprintf(ev, sizeof ev, "%s: %s (%s)", name, *rec, msg);
            add(findings, id, MD_SEV_WARNING, "the record cannot be parsed", ev);
        }
    }
    return n;
}

static json_t *mtasts_check(md_dns *dns, const char *domain, json_t *findings)
{
    char q[300], ev[600];
    json_t *tags;
    char *rec;
    snprintf(q, sizeof q, "_mta-sts.%s", domain);
    int n = versioned(dns, q, "STSv1", "mtasts", &tags, &rec, findings);
    if (n == 0)
        add(findings, "mtasts.absent", MD_SEV_OK, "no MTA-STS record (optional)", q);
    if (n != 1 || tags == NULL) {
        free(rec);
        return json_null();
    }
    json_t *o = json_pack("{s:o, s:O}", "record", text(rec, strlen(rec)), "tags", tags);
    snprintf(ev, sizeof ev, "%s: %s", q, rec);
    const char *id = tag(tags, "id");
    int idok = id && *id && strlen(id) <= 32;
    for (const char *p = id ? id : ""; *p; p++)
        if (!isalnum((unsigned char)*p))
            idok = 0;
    if (!idok) {
        add(findings, "mtasts.invalid", MD_SEV_WARNING,
            "the MTA-STS id= must be 1 to 32 letters and digits (RFC 8461 3.1)", ev);
    } else {
        snprintf(q, sizeof q, "mta-sts.%s", domain);
        md_dns_answer *a4 = md_dns_resolve(dns, q, MD_DNS_A), *a6 = md_dns_resolve(dns, q, MD_DNS_AAAA);
        if (a4->n == 0 && a6->n == 0 && !md_dns_outcome_is_temporary(a4->outcome)) {
            char e2[400];
            snprintf(e2, sizeof e2, "%s: %s", q, md_dns_outcome_name(a4->outcome));
            add(findings, "mtasts.policy_host", MD_SEV_WARNING,
                "MTA-STS is announced but the policy host has no address", e2);
        } else {
            add(findings, "mtasts.ok", MD_SEV_OK,
                "MTA-STS announced (the HTTPS policy file is not fetched by this check)", ev);
        }
        md_dns_answer_free(a4);
        md_dns_answer_free(a6);
    }
    json_decref(tags);
    free(rec);
    return o;
}

static json_t *tlsrpt_check(md_dns *dns, const char *domain, json_t *findings)
{
    char q[300], ev[600];
    json_t *tags;
    char *rec;
    snprintf(q, sizeof q, "_smtp._tls.%s", domain);
    int n = versioned(dns, q, "TLSRPTv1", "tlsrpt", &tags, &rec, findings);
    if (n == 0)
        add(findings, "tlsrpt.absent", MD_SEV_OK, "no TLS-RPT record (optional)", q);
    if (n != 1 || tags == NULL) {
        free(rec);
        return json_null();
    }
    json_t *o = json_pack("{s:o, s:O}", "record", text(rec, strlen(rec)), "tags", tags);
    snprintf(ev, sizeof ev, "%s: %s", q, rec);
    const char *rua = tag(tags, "rua");
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
        add(findings, "tlsrpt.ok", MD_SEV_OK, "TLS-RPT reports requested", ev);
    else
        add(findings, "tlsrpt.invalid", MD_SEV_WARNING,
            "TLS-RPT rua= must list mailto: or https: URIs (RFC 8460 3)", ev);
    json_decref(tags);
    free(rec);
    return o;
}

static json_t *bimi_check(md_dns *dns, const char *domain, json_t *findings)
{
    char q[300], ev[600];
    json_t *tags;
    char *rec;
    snprintf(q, sizeof q, "default._bimi.%s", domain);
    int n = versioned(dns, q, "BIMI1", "bimi", &tags, &rec, findings);
    if (n != 1 || tags == NULL) {
        free(rec);
        return json_null();
    }
    json_t *o = json_pack("{s:o, s:O}", "record", text(rec, strlen(rec)), "tags", tags);
    snprintf(ev, sizeof ev, "%s: %s", q, rec);
    const char *l = tag(tags, "l");
    if (l && *l && strncasecmp(l, "https://", 8) != 0)
        add(findings, "bimi.invalid", MD_SEV_WARNING, "the BIMI logo l= is not an https: URL", ev);
    else
        add(findings, "bimi.present", MD_SEV_OK, "BIMI record present (noted, not validated)", ev);
    json_decref(tags);
    free(rec);
    return o;
}

/* --- MX route (lib/mx) -------------------------------------------------- */

typedef struct mx_slot {
    md_report *rep;
} mx_slot;

static void mx_done(void *arg, md_report *rep)
{
    ((mx_slot *)arg)->rep = rep;
}

static json_t *mx_check(md_dns *dns, const char *domain, json_t *findings)
{
    mx_slot s = { NULL };
    md_mx_check(dns, domain, NULL, mx_done, &s);
    md_dns_run(dns);
    if (s.rep == NULL)
        return json_null();
    json_t *j = md_report_to_json(s.rep);
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "findings") == 0) {
            size_t i;
            json_t *f;
            json_array_foreach(v, i, f)
                json_array_append(findings, f);
        } else if (strcmp(key, "schema_version") != 0 && strcmp(key, "tool") != 0) {
            json_object_set(out, key, v);
        }
    }
    json_decref(j);
    md_report_free(s.rep);
    return out;
}

/* --- all ---------------------------------------------------------------- */

json_t *md_auth_check(md_dns *dns, const char *domain_in, const md_auth_config *cfg, md_error *err)
{
    md_auth_config def = { .sends_reset = 1 };
    if (cfg == NULL)
        cfg = &def;
    /* IDN to A-labels, lower case, LDH labels (lib/dns/name.h) */
    char ascii[MD_DNS_NAME_MAX + 1];
    if (md_dns_name_normalize(domain_in, ascii, sizeof ascii, NULL, 0, err) != MD_OK)
        return NULL;
    if (strchr(ascii, '.') == NULL) {
        md_error_set(err, MD_CONFIG, "auth", "'%.80s' is not a domain with at least two labels",
                     domain_in);
        return NULL;
    }
    char *domain = md_xstrdup(ascii);
    char *org = md_auth_org_domain(domain);
    json_t *findings = json_array();
    json_t *out = json_pack("{s:s, s:s}", "domain", domain, "org_domain", org);
    json_object_set_new(out, "dmarc", dmarc_check(dns, domain, org, cfg, findings));
    json_object_set_new(out, "dkim", dkim_check(dns, domain, cfg, findings));
    json_object_set_new(out, "mta_sts", mtasts_check(dns, domain, findings));
    json_object_set_new(out, "tls_rpt", tlsrpt_check(dns, domain, findings));
    json_object_set_new(out, "bimi", bimi_check(dns, domain, findings));
    md_error e2 = { 0 };
    md_report *srep = md_report_new("spf", NULL);
    md_spf_result *spf = NULL;
    if (md_spf_lint(dns, domain, &spf, srep, &e2) == MD_OK) {
        for (size_t i = 0; i < md_report_count(srep); i++) {
            const md_finding *f = md_report_get(srep, i);
            json_t *jf = json_pack("{s:s, s:s, s:s, s:[]}", "id", f->id,
                                   "severity", md_severity_name(f->severity), "summary", f->summary,
                                   "evidence");
            for (size_t j = 0; j < f->nevidence; j++)
                json_array_append_new(json_object_get(jf, "evidence"), json_string(f->evidence[j]));
            json_array_append_new(findings, jf);
        }
        /* the lint as maildiag-spf describes it, without its query trace */
        md_report *tmp = md_report_new("spf", NULL);
        md_spf_describe(spf, tmp, MD_SPF_DESCRIBE_NO_QUERIES | MD_SPF_DESCRIBE_JSON_ONLY);
        json_object_set(out, "spf", md_report_fields(tmp));
        md_report_free(tmp);
    }
    md_spf_result_free(spf);
    md_report_free(srep);
    json_object_set_new(out, "mx", mx_check(dns, domain, findings));
    json_object_set_new(out, "findings", findings);
    free(org);
    free(domain);
    return out;
}

/* --- report ------------------------------------------------------------- */

md_report *md_auth_report(const char *tool, json_t *obj)
{
    const char *dom = json_string_value(json_object_get(obj, "domain"));
    md_report *rep = md_report_new(tool, dom ? dom : "?");
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "findings") != 0 && strcmp(key, "status") != 0
            && strcmp(key, "schema_version") != 0 && strcmp(key, "tool") != 0)
            md_report_set(rep, key, json_incref(val));
    }
    json_t *d = json_object_get(obj, "dmarc");
    if (json_object_get(obj, "org_domain") == NULL)
        goto findings;   /* the domain was not usable: nothing was looked up */
    md_report_add_detail(rep, "DMARC: %s%s%s", json_string_value(json_object_get(d, "record"))
                         ?: "(none)", json_is_true(json_object_get(d, "inherited")) ? " (from " : "",
                         json_is_true(json_object_get(d, "inherited"))
                         ? json_string_value(json_object_get(d, "found_at")) : "");
    if (json_is_true(json_object_get(d, "inherited")))
        md_report_add_detail(rep, "  (policy found at the organizational domain)");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(obj, "dkim"), i, k) {
        if (json_object_get(k, "key_bits"))
            md_report_add_detail(rep, "DKIM %s: %s %lld bits", json_string_value(json_object_get(k, "selector")),
                                 json_string_value(json_object_get(k, "key_type")),
                                 (long long)json_integer_value(json_object_get(k, "key_bits")));
        else
            md_report_add_detail(rep, "DKIM %s: %s", json_string_value(json_object_get(k, "selector")),
                                 json_is_true(json_object_get(k, "found")) ? "no usable key" : "no key");
    }
    static const char *const names[][2] = {
        { "mta_sts", "MTA-STS" }, { "tls_rpt", "TLS-RPT" }, { "bimi", "BIMI" }, { "spf", "SPF" },
    };
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++)
        md_report_add_detail(rep, "%s: %s", names[n][1],
                             json_string_value(json_object_get(json_object_get(obj, names[n][0]),
                                                               "record")) ?: "(none)");
    json_t *m;
    json_array_foreach(json_object_get(json_object_get(obj, "mx"), "mx"), i, m)
        md_report_add_detail(rep, "MX %lld %s", (long long)json_integer_value(json_object_get(m, "preference")),
                             json_string_value(json_object_get(m, "host")) ?: "?");
findings:;
    md_report_add_findings_json(rep, json_object_get(obj, "findings"), "auth.internal");
    return rep;
}
