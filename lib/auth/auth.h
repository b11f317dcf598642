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
 * The parsers are exposed for unit tests.  Nothing here prints.
 */
#ifndef MAILDIAG_AUTH_H
#define MAILDIAG_AUTH_H

#include <jansson.h>
#include "base/base.h"
#include "dns/dns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Selectors probed when none is given (MAILDIAG_DKIM_SELECTORS, a comma or
 * space separated list, replaces it). */
#define MD_AUTH_DKIM_DEFAULT_SELECTORS "default,selector1,selector2,google,k1,s1,s2,dkim,mail"

typedef struct md_auth_config {
    const char *const *selectors;  /* DKIM selectors to check; NULL/0 = probe defaults */
    size_t nselectors;
    int sends_reset;               /* 1: the domain sends password-reset mail
                                    * (p=none is then a warning); default tools pass 1 */
} md_auth_config;

/*
 * Checks domain over dns (drives it: must not be inside another loop).
 * Returns a new JSON object {"domain", "org_domain", "dmarc", "dkim",
 * "mta_sts", "tls_rpt", "bimi", "spf", "mx", "findings": [...]} with findings
 * from the catalogue (dmarc.*, dkim.*, mtasts.*, tlsrpt.*, bimi.*, spf.*,
 * mx.*); NULL with err set for an unusable domain.  Caller decrefs.
 */
json_t *md_auth_check(md_dns *dns, const char *domain, const md_auth_config *cfg, md_error *err);

/* The check's object as a report for tool (fields copied, findings added,
 * detail lines for the text output).  Caller frees. */
md_report *md_auth_report(const char *tool, json_t *obj);

/*
 * Parses "tag=value; tag=value" (DMARC, DKIM, MTA-STS, TLS-RPT, BIMI
 * syntax): returns a JSON object of tags (names lower-cased, values trimmed),
 * or NULL with a message in msg for a malformed list (empty tag name, missing
 * '=', a tag twice).  Caller decrefs.
 */
json_t *md_auth_tags_parse(const char *text, size_t len, char *msg, size_t msgsize);

/* The organizational domain (RFC 7489 3.2) of domain per the public suffix
 * list; caller frees.  Returns a copy of domain when it has none. */
char *md_auth_org_domain(const char *domain);

/* Key size in bits and type ("rsa", "ed25519") of a DKIM p= value
 * (base64 of a SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey, or a raw 32-byte
 * Ed25519 key when k=ed25519).  Returns 0, or -1 when OpenSSL cannot parse it. */
int md_auth_dkim_key(const char *b64, const char *k, int *bits, char *type, size_t typesize);

#ifdef __cplusplus
}
#endif
#endif
