/*
 * lib/auth: a sending domain's authentication posture, one call.
 *
 *  - DMARC (RFC 7489): _dmarc at the domain, else at its organizational
 *    domain (public suffix list via libpsl); tags parsed and checked; external
 *    rua/ruf destinations checked for their authorization record (7.1).
 *  - DKIM (RFC 6376): keys at SELECTOR._domainkey; the key parsed by OpenSSL
 *    for its type and size; revoked (empty p=), testing (t=y), strings joined.
 *  - MTA-STS (RFC 8461) _mta-sts and TLS-RPT (RFC 8460) _smtp._tls TXT
 *    records parsed and validated; BIMI default._bimi noted when present.
 *  - SPF lint (lib/spf) and the MX route (lib/mx).
 *
 * Each record check is a fetch (md_auth_check's DNS questions) and a pure
 * evaluation of the record text (md_auth_*_evaluate), which returns a typed
 * result and adds findings (catalogue ids) to a report; the few further
 * questions an evaluation needs (report authorizations, the MTA-STS policy
 * host) go through md_auth_answers, so the evaluators run without DNS in
 * unit tests and fuzz targets.  md_auth_describe turns a result into a
 * report's fields and detail lines, which lib/report renders.  Nothing here
 * prints.
 */
#ifndef MAILDIAG_AUTH_H
#define MAILDIAG_AUTH_H

#include "base/base.h"
#include "dns/dns.h"
#include "mx/mx.h"
#include "report/report.h"
#include "spf/spf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Selectors probed when none is given. */
#define MD_AUTH_DKIM_DEFAULT_SELECTORS "default,selector1,selector2,google,k1,s1,s2,dkim,mail"

typedef struct md_auth_config {
    const char *const *selectors;  /* DKIM selectors to check; NULL/0 = probe */
    size_t nselectors;
    const char *probe_selectors;   /* the selectors probed when none is given, a
                                    * comma or blank separated list; NULL or "" =
                                    * MD_AUTH_DKIM_DEFAULT_SELECTORS */
    const char *selector_advice;   /* what to do when no probed selector has a key,
                                    * in the caller's words (dkim.none_found's
                                    * summary ends with it); NULL = none */
    int sends_reset;               /* 1: the domain sends password-reset mail
                                    * (p=none is then a warning); default tools pass 1 */
} md_auth_config;

/* --- tag lists ---------------------------------------------------------- */

typedef struct md_auth_tag {
    char *name;                    /* lower case: letters, digits, '_' */
    char *value;                   /* trimmed; printable ASCII (other bytes '?') */
} md_auth_tag;

typedef struct md_auth_tags {
    md_auth_tag *v;                /* in the order written */
    size_t n;
} md_auth_tags;

/*
 * Parses "tag=value; tag=value" (DMARC, DKIM, MTA-STS, TLS-RPT, BIMI
 * syntax) into out.  Returns 0; or -1 with a message in msg and out empty
 * for a malformed list (a NUL byte, an empty tag name, a missing '=', a tag
 * twice).  Caller frees with md_auth_tags_clear() either way.
 */
MD_API int md_auth_tags_parse(const char *text, size_t len, md_auth_tags *out, char *msg, size_t msgsize);
/* The value of tag name (lower case), or NULL.  Borrowed from t. */
MD_API const char *md_auth_tags_get(const md_auth_tags *t, const char *name);
/* Frees what t holds and empties it. */
MD_API void md_auth_tags_clear(md_auth_tags *t);

/* The organizational domain (RFC 7489 3.2) of domain per the public suffix
 * list; caller frees.  Returns a copy of domain when it has none. */
MD_API char *md_auth_org_domain(const char *domain);

/* Key size in bits and type ("rsa", "ed25519", "other") of a DKIM p= value
 * (base64 of a SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey, or a raw
 * 32-byte Ed25519 key when k=ed25519).  Returns 0, or -1 when OpenSSL
 * cannot parse it. */
MD_API int md_auth_dkim_key(const char *b64, const char *k, int *bits, char *type, size_t typesize);

/* --- typed results ------------------------------------------------------ */

/* Text in these results is as published (untrusted): records and tag values
 * are printable ASCII after md_auth_tags_parse's rules, names as asked. */

typedef enum md_auth_authz {
    MD_AUTH_AUTHZ_INTERNAL = 0,    /* inside the organizational domain: none needed */
    MD_AUTH_AUTHZ_YES,             /* DOMAIN._report._dmarc.DEST has v=DMARC1 */
    MD_AUTH_AUTHZ_NO,              /* it has not: reports are not sent */
    MD_AUTH_AUTHZ_UNKNOWN          /* the lookup failed temporarily */
} md_auth_authz;

/* One mailto: report destination of rua= or ruf=. */
typedef struct md_auth_report_uri {
    char *uri;
    char *domain;                  /* the destination's domain, lower case */
    int external;                  /* outside the organizational domain */
    md_auth_authz authorized;      /* external: its authorization (RFC 7489 7.1) */
} md_auth_report_uri;

typedef struct md_auth_dmarc {
    int found;                     /* one DMARC record applies; nothing else is set
                                    * otherwise (none, several, lookup failed) */
    int unknown;                   /* the lookup failed temporarily: whether a
                                    * record applies is not known */
    char *record;
    char *found_at;                /* the domain whose _dmarc it is */
    int inherited;                 /* found at the organizational domain */
    char *error;                   /* the tag list does not parse: why (no tags) */
    md_auth_tags tags;
    char *policy;                  /* the policy that applies (sp= for a subdomain;
                                    * "none" when p= is invalid but rua= is there);
                                    * NULL when the record is ignored */
    int has_rua, has_ruf;          /* rua=, ruf= were evaluated */
    md_auth_report_uri *rua, *ruf;
    size_t nrua, nruf;
} md_auth_dmarc;

typedef struct md_auth_dkim {
    char *selector;
    char *name;                    /* SELECTOR._domainkey.DOMAIN */
    int found;                     /* TXT records at name (0 also when the lookup
                                    * failed temporarily) */
    int unknown;                   /* the lookup failed temporarily */
    char *record;                  /* the record evaluated (the last of several) */
    char *key_type;                /* "rsa", "ed25519", "other"; NULL when no key
                                    * was read (syntax, revoked, unparsable) */
    int key_bits;
    int revoked;                   /* empty p= */
    int testing;                   /* t=y */
} md_auth_dkim;

/* MTA-STS, TLS-RPT, BIMI: one versioned tag-list record. */
typedef struct md_auth_policy {
    int found;                     /* one record that parses: record and tags set */
    int unknown;                   /* the lookup failed temporarily */
    char *record;
    md_auth_tags tags;
} md_auth_policy;

typedef struct md_auth_result {
    char *domain;                  /* A-label form, lower case */
    char *org_domain;
    md_auth_dmarc dmarc;
    md_auth_dkim *dkim;            /* the selectors asked for, or the probed ones
                                    * that have a key */
    size_t ndkim;
    md_auth_policy mta_sts, tls_rpt, bimi;
    md_spf_result *spf;            /* the SPF lint, or NULL when it could not run */
    md_mx_route *mx;               /* the MX route (lib/mx); NULL when its
                                    * lookup did not finish */
} md_auth_result;

/* Frees r and everything it holds; NULL is a no-op. */
MD_API void md_auth_result_free(md_auth_result *r);

/*
 * Checks domain over dns (drives it: must not be inside another loop).  On
 * MD_OK, *out is a new result (caller frees with md_auth_result_free())
 * and the findings are added to rep in the order dmarc.*, dkim.*,
 * mtasts.*, tlsrpt.*, bimi.*, spf.* (lint), mx.* (dns.temporary for a
 * lookup that failed).  Returns MD_CONFIG with err set and *out NULL for
 * an unusable domain (nothing is looked up).  cfg may be NULL (defaults,
 * sends_reset 1).
 */
MD_API md_status md_auth_check(md_dns *dns, const char *domain, const md_auth_config *cfg,
                               md_auth_result **out, md_report *rep, md_error *err);

/* Describes r into rep: the subject, the structured fields of the JSON
 * contract (maildiag-auth(1): "domain", "org_domain", "dmarc", "dkim",
 * "mta_sts", "tls_rpt", "bimi", "spf", "mx") and the detail lines of the
 * text output.  Adds no findings. */
MD_API void md_auth_describe(const md_auth_result *r, md_report *rep);

/* --- the pure evaluators ------------------------------------------------ */

/* Further DNS answers an evaluator may need.  resolve returns a new answer
 * (the evaluator frees it with md_dns_answer_free), never NULL.  Passing
 * NULL for the whole struct means no lookups can be made: each such
 * question then counts as failed temporarily. */
typedef struct md_auth_answers {
    md_dns_answer *(*resolve)(void *arg, const char *name, int type);
    void *arg;
} md_auth_answers;

/*
 * DMARC: evaluates the one record (text[0..len)) that applies to domain,
 * found at found_at's _dmarc (domain itself, or its organizational domain:
 * then inherited, and sp= applies).  Fills out (caller frees with
 * md_auth_dmarc_clear()) and adds dmarc.* findings to rep; the external
 * report destinations' authorizations are asked through ans.
 */
MD_API void md_auth_dmarc_evaluate(const char *domain, const char *found_at, const char *text,
                                   size_t len, const md_auth_config *cfg, const md_auth_answers *ans,
                                   md_auth_dmarc *out, md_report *rep);
MD_API void md_auth_dmarc_clear(md_auth_dmarc *d);

/* DKIM: evaluates the key record text[0..len) published at name (for
 * evidence).  Fills out's record, key_type, key_bits, revoked, testing
 * (selector, name and found are the fetch's) and adds dkim.* findings.
 * Caller frees with md_auth_dkim_clear(). */
MD_API void md_auth_dkim_evaluate(const char *name, const char *text, size_t len, md_auth_dkim *out,
                                  md_report *rep);
MD_API void md_auth_dkim_clear(md_auth_dkim *k);

/* MTA-STS (_mta-sts.DOMAIN, v=STSv1): the id= and, through ans, the policy
 * host mta-sts.DOMAIN.  TLS-RPT (_smtp._tls.DOMAIN, v=TLSRPTv1): rua=.  BIMI
 * (default._bimi.DOMAIN, v=BIMI1): l=.  Each fills out (found only when
 * the tag list parses; caller frees with md_auth_policy_clear()) and adds
 * its findings (mtasts.*, tlsrpt.*, bimi.*). */
MD_API void md_auth_mtasts_evaluate(const char *domain, const char *text, size_t len,
                                    const md_auth_answers *ans, md_auth_policy *out, md_report *rep);
MD_API void md_auth_tlsrpt_evaluate(const char *domain, const char *text, size_t len,
                                    md_auth_policy *out, md_report *rep);
MD_API void md_auth_bimi_evaluate(const char *domain, const char *text, size_t len,
                                  md_auth_policy *out, md_report *rep);
MD_API void md_auth_policy_clear(md_auth_policy *p);

#ifdef __cplusplus
}
#endif
#endif
