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
    /* accounts, addresses, store, self-service (issue 5: maildiag-user, maildiag-selfcheck) */
    { "account.ok", MD_SEV_OK, "an account on the address receives every product email" },
    { "account.none", MD_SEV_WARNING, "no account uses this address" },
    { "account.sso", MD_SEV_WARNING, "SSO-only account: password-reset emails are never sent" },
    { "account.deactivated", MD_SEV_CRITICAL, "deactivated account: the product sends it no email" },
    { "account.locked", MD_SEV_WARNING, "locked account: no reset link until support unlocks it" },
    { "account.unverified", MD_SEV_WARNING, "the address was never verified: only verification emails are sent" },
    { "account.pending_change", MD_SEV_WARNING, "an unconfirmed change of address is pending" },
    { "account.also_matches", MD_SEV_WARNING, "another spelling of the same mailbox (dots, +tag) has an account" },
    { "address.invalid", MD_SEV_UNKNOWN, "the address given is not a valid email address" },
    { "address.typo", MD_SEV_WARNING, "the domain looks like a typo of a common or much-used domain" },
    { "address.suppressed", MD_SEV_CRITICAL, "the address is suppressed (bounce, complaint, manual): nothing is sent" },
    { "address.no_mail", MD_SEV_CRITICAL, "the address's domain cannot receive mail" },
    { "address.dns_temporary", MD_SEV_UNKNOWN, "whether the domain receives mail could not be found out" },
    { "address.last_send_failed", MD_SEV_WARNING, "the last email sent to the address did not go through" },
    { "store.error", MD_SEV_UNKNOWN, "the account store could not be read or written" },
    { "selfcheck.accepted", MD_SEV_OK, "the request was accepted; an email is on its way to the address" },
    { "selfcheck.rate_limited", MD_SEV_WARNING, "too many requests for this address or overall: try later" },
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
