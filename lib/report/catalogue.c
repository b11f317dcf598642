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
    { "mx.too_many_hosts", MD_SEV_WARNING, "more MX hosts than maildiag resolves (32); the rest were not checked" },
    { "mx.target_localhost", MD_SEV_WARNING, "an MX target resolves to a loopback or unspecified address" },
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
