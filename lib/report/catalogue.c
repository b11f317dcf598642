/*
 * The findings catalogue: every id maildiag emits.  Keep ids stable; JSON
 * consumers, monitoring rules and the man pages key on them.
 */
#include "config.h"
#include "report.h"

#include <string.h>

static const md_catalogue_entry catalogue[] = {
    /* input */
    { "input.invalid_domain", MD_SEV_UNKNOWN, "the domain given is not a valid domain name" },
    /* dns */
    { "dns.temporary", MD_SEV_UNKNOWN, "a DNS lookup failed temporarily (SERVFAIL, REFUSED, timeout, bad reply)" },
    { "domain.nxdomain", MD_SEV_CRITICAL, "the domain does not exist (NXDOMAIN)" },
    /* mx: RFC 5321 section 5.1, RFC 7505 */
    { "mx.ok", MD_SEV_OK, "mail is routed to MX hosts that have addresses" },
    { "mx.null", MD_SEV_CRITICAL, "null MX: the domain accepts no mail (RFC 7505)" },
    { "mx.null_mixed", MD_SEV_CRITICAL, "a null MX published together with other MX records" },
    { "mx.implicit", MD_SEV_WARNING, "no MX record: mail goes to the domain's own address (implicit MX)" },
    { "mx.none", MD_SEV_CRITICAL, "no MX record and no address: mail cannot be delivered" },
    { "mx.target_cname", MD_SEV_WARNING, "an MX target is an alias (CNAME), which RFC 2181 10.3 forbids" },
    { "mx.target_ip_literal", MD_SEV_WARNING, "an MX target is an IP address, not a host name" },
    { "mx.target_unresolvable", MD_SEV_WARNING, "an MX target host has no address" },
    { "mx.target_localhost", MD_SEV_WARNING, "an MX target resolves to a loopback or unspecified address" },
    /* --- spf, dmarc, dkim, mtasts, tlsrpt, bimi (issue 3: lib/spf, lib/auth) --- */
    /* SPF evaluation results, RFC 7208 2.6: severity follows the exit-code
     * mapping of maildiag-spf (pass 0; neutral, none, softfail 1; fail,
     * permerror 2; temperror 3). */
    { "spf.pass", MD_SEV_OK, "SPF pass: the address is a permitted sender" },
    { "spf.neutral", MD_SEV_WARNING, "SPF neutral: the domain makes no assertion about the address" },
    { "spf.none", MD_SEV_WARNING, "SPF none: no SPF record (or no usable domain)" },
    { "spf.softfail", MD_SEV_WARNING, "SPF softfail: the address is probably not permitted" },
    { "spf.fail", MD_SEV_CRITICAL, "SPF fail: the address is not permitted" },
    { "spf.permerror", MD_SEV_CRITICAL, "SPF permerror: the records cannot be evaluated" },
    { "spf.temperror", MD_SEV_UNKNOWN, "SPF temperror: a temporary DNS error stopped the evaluation" },
    /* why an evaluation ended in an error, and lint findings */
    { "spf.lookup_limit", MD_SEV_CRITICAL, "more than 10 DNS-querying terms in total (RFC 7208 4.6.4)" },
    { "spf.lookups_near_limit", MD_SEV_WARNING, "9 or 10 DNS-querying terms: one more include breaks SPF" },
    { "spf.void_limit", MD_SEV_CRITICAL, "more than 2 void lookups (RFC 7208 4.6.4)" },
    { "spf.void_lookups", MD_SEV_WARNING, "terms name domains with no records (void lookups)" },
    { "spf.mx_limit", MD_SEV_CRITICAL, "an mx term with more than 10 MX hosts (RFC 7208 4.6.4)" },
    { "spf.syntax", MD_SEV_CRITICAL, "syntax error in an SPF record (RFC 7208 4.6: permerror)" },
    { "spf.multiple_records", MD_SEV_CRITICAL, "more than one SPF record at a name (RFC 7208 4.5: permerror)" },
    { "spf.include_no_record", MD_SEV_CRITICAL, "an include names a domain without SPF (permerror)" },
    { "spf.redirect_no_record", MD_SEV_CRITICAL, "redirect= names a domain without SPF (permerror)" },
    { "spf.redirect_ignored", MD_SEV_WARNING, "redirect= next to 'all' is never used (RFC 7208 6.1)" },
    { "spf.dns_temporary", MD_SEV_UNKNOWN, "a DNS lookup for SPF failed temporarily (temperror)" },
    { "spf.invalid_domain", MD_SEV_WARNING, "the identity's domain is not a usable domain name (RFC 7208 4.3: none)" },
    { "spf.no_record", MD_SEV_WARNING, "the domain publishes no SPF record" },
    { "spf.pass_all", MD_SEV_CRITICAL, "'+all': every address passes" },
    { "spf.neutral_all", MD_SEV_WARNING, "'?all': every other address is neutral" },
    { "spf.ptr", MD_SEV_WARNING, "the ptr mechanism is used (RFC 7208 5.5: do not)" },
    { "spf.too_long", MD_SEV_WARNING, "the SPF TXT answer does not fit a 512-byte UDP reply" },
    { "spf.ok", MD_SEV_OK, "the SPF record is valid and within limits" },
    { "spf.libspf2_differs", MD_SEV_OK, "libspf2 alone would answer differently; the RFC 7208 answer is used" },
    { "spf.libspf2_crashed", MD_SEV_OK, "libspf2 crashed or hung on this input (isolated); the RFC 7208 result stands" },
    { "spf.engine_failed", MD_SEV_UNKNOWN, "the SPF evaluation crashed or overran its deadline (temperror)" },
    { "input.invalid_line", MD_SEV_UNKNOWN, "a bulk input line is not in the expected form" },
    /* DMARC, RFC 7489 */
    { "dmarc.ok", MD_SEV_OK, "a DMARC policy of quarantine or reject is published" },
    { "dmarc.missing", MD_SEV_CRITICAL, "no DMARC record at the domain or its organizational domain" },
    { "dmarc.multiple", MD_SEV_CRITICAL, "more than one DMARC record (RFC 7489 6.6.3: none applies)" },
    { "dmarc.syntax", MD_SEV_WARNING, "a DMARC tag is missing or invalid (critical when p= is unusable)" },
    { "dmarc.p_none", MD_SEV_WARNING, "DMARC p=none: spoofed mail is not stopped" },
    { "dmarc.pct", MD_SEV_WARNING, "DMARC pct= below 100" },
    { "dmarc.no_rua", MD_SEV_WARNING, "no DMARC aggregate report address (rua=)" },
    { "dmarc.rua_unauthorized", MD_SEV_WARNING, "an external report destination lacks its authorization record (RFC 7489 7.1)" },
    { "dmarc.inherited", MD_SEV_OK, "the DMARC record comes from the organizational domain" },
    /* DKIM, RFC 6376, RFC 8301, RFC 8463 */
    { "dkim.ok", MD_SEV_OK, "a DKIM key of adequate size is published" },
    { "dkim.missing", MD_SEV_CRITICAL, "no DKIM key at a selector that was asked for" },
    { "dkim.none_found", MD_SEV_WARNING, "no DKIM key at any of the usual selectors" },
    { "dkim.multiple", MD_SEV_WARNING, "several TXT records at one DKIM selector" },
    { "dkim.syntax", MD_SEV_CRITICAL, "a DKIM key record cannot be parsed" },
    { "dkim.revoked", MD_SEV_CRITICAL, "a DKIM key is revoked (empty p=)" },
    { "dkim.key_invalid", MD_SEV_CRITICAL, "a DKIM public key cannot be parsed" },
    { "dkim.key_weak", MD_SEV_CRITICAL, "an RSA DKIM key under 1024 bits (RFC 8301: verifiers reject it)" },
    { "dkim.key_short", MD_SEV_WARNING, "an RSA DKIM key under 2048 bits" },
    { "dkim.testing", MD_SEV_WARNING, "a DKIM key is in testing mode (t=y)" },
    /* MTA-STS, RFC 8461; TLS-RPT, RFC 8460; BIMI */
    { "mtasts.ok", MD_SEV_OK, "MTA-STS is announced" },
    { "mtasts.absent", MD_SEV_OK, "no MTA-STS record (optional)" },
    { "mtasts.multiple", MD_SEV_WARNING, "more than one MTA-STS record" },
    { "mtasts.invalid", MD_SEV_WARNING, "the MTA-STS record is invalid" },
    { "mtasts.policy_host", MD_SEV_WARNING, "the MTA-STS policy host mta-sts.DOMAIN has no address" },
    { "tlsrpt.ok", MD_SEV_OK, "TLS-RPT reports are requested" },
    { "tlsrpt.absent", MD_SEV_OK, "no TLS-RPT record (optional)" },
    { "tlsrpt.multiple", MD_SEV_WARNING, "more than one TLS-RPT record" },
    { "tlsrpt.invalid", MD_SEV_WARNING, "the TLS-RPT record is invalid" },
    { "bimi.present", MD_SEV_OK, "a BIMI record is published (noted)" },
    { "bimi.multiple", MD_SEV_WARNING, "more than one BIMI record" },
    { "bimi.invalid", MD_SEV_WARNING, "the BIMI record is invalid" },
    /* --- end spf, dmarc, dkim, mtasts, tlsrpt, bimi --- */
};

const md_catalogue_entry *md_catalogue_find(const char *id)
{
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++)
        if (strcmp(catalogue[i].id, id) == 0)
            return &catalogue[i];
    return NULL;
}

const md_catalogue_entry *md_catalogue_all(size_t *n)
{
    *n = sizeof catalogue / sizeof catalogue[0];
    return catalogue;
}
