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
    { "mx.target_internal", MD_SEV_WARNING, "an MX target resolves to an internal address (private, link-local, CGNAT, multicast, reserved; loopback when sending)" },
    /* accounts, addresses, store, self-service (lib/account, lib/address, lib/store) */
    { "account.ok", MD_SEV_OK, "an account on the address receives every product email" },
    { "account.none", MD_SEV_WARNING, "no account uses this address" },
    { "account.sso", MD_SEV_WARNING, "SSO-only account: password-reset emails are never sent" },
    { "account.deactivated", MD_SEV_CRITICAL, "deactivated account: the product sends it no email" },
    { "account.locked", MD_SEV_WARNING, "locked account: no reset link until support unlocks it" },
    { "account.unverified", MD_SEV_WARNING, "the address was never verified: only verification emails are sent" },
    { "account.pending_change", MD_SEV_WARNING, "an unconfirmed change of address is pending" },
    { "account.also_matches", MD_SEV_WARNING, "another spelling of the same mailbox (dots, +tag) has an account" },
    { "address.invalid", MD_SEV_UNKNOWN, "the address given is not a valid email address" },
    { "address.trimmed", MD_SEV_OK, "blanks or angle brackets around the address given were removed" },
    { "address.unusual", MD_SEV_OK, "a valid address that some servers refuse (quoted local part, address"
                                    " literal, one-label or numeric domain, non-ASCII local part)" },
    { "address.typo", MD_SEV_WARNING, "the domain looks like a typo of a common or much-used domain" },
    { "address.suppressed", MD_SEV_CRITICAL, "the address is suppressed (bounce, complaint, manual): nothing is sent" },
    { "address.no_mail", MD_SEV_CRITICAL, "the address's domain cannot receive mail" },
    { "address.dns_temporary", MD_SEV_UNKNOWN, "whether the domain receives mail could not be found out" },
    { "address.last_send_failed", MD_SEV_WARNING, "the last email sent to the address did not go through" },
    { "store.error", MD_SEV_UNKNOWN, "the account store could not be read or written" },
    { "selfcheck.accepted", MD_SEV_OK, "the request was accepted; an email is on its way to the address" },
    { "selfcheck.rate_limited", MD_SEV_WARNING, "too many requests for this address or overall: try later" },
    /* --- spf, dmarc, dkim, mtasts, tlsrpt, bimi (lib/spf, lib/auth) --- */
    /* SPF evaluation results, RFC 7208 2.6: the severity is the exit code a
     * check of one result gives (pass 0; neutral, none, softfail 1; fail,
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
    { "spf.include_loop", MD_SEV_CRITICAL, "an include/redirect loop: receivers reach the 10-term limit (permerror)" },
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
    /* --- send / token (lib/smtp, lib/message, lib/token) --- */
    /* smtp: the outcome of a send or probe */
    { "smtp.accepted", MD_SEV_OK, "the server accepted the message" },
    { "smtp.probe_ok", MD_SEV_OK, "the dialogue reached the phase it was to stop after" },
    { "smtp.rcpt.rejected", MD_SEV_CRITICAL, "the server rejected the recipient (5xx)" },
    { "smtp.rcpt.deferred", MD_SEV_WARNING, "the server deferred the recipient (4xx): try again later" },
    { "smtp.greylisted", MD_SEV_WARNING, "the server greylists: a retry after a few minutes is expected to pass" },
    { "smtp.mail.rejected", MD_SEV_CRITICAL, "the server rejected the sender (MAIL FROM)" },
    { "smtp.mail.deferred", MD_SEV_WARNING, "the server deferred the sender (MAIL FROM, 4xx)" },
    { "smtp.data.rejected", MD_SEV_CRITICAL, "the server rejected the message content (DATA, 5xx)" },
    { "smtp.data.deferred", MD_SEV_WARNING, "the server deferred the message content (DATA, 4xx)" },
    { "smtp.connect.failed", MD_SEV_CRITICAL, "could not connect to the SMTP server (refused, unreachable)" },
    { "smtp.connect.timeout", MD_SEV_CRITICAL, "the TCP connection was not established before the deadline" },
    { "smtp.resolve.failed", MD_SEV_CRITICAL, "the SMTP server name does not resolve" },
    { "smtp.banner.rejected", MD_SEV_CRITICAL, "the server refused the session in its greeting (554 or 421)" },
    { "smtp.ehlo.rejected", MD_SEV_CRITICAL, "the server refused EHLO and HELO" },
    { "smtp.timeout", MD_SEV_CRITICAL, "the server stopped answering: the deadline passed" },
    { "smtp.dropped", MD_SEV_CRITICAL, "the server closed the connection in the middle of the dialogue" },
    { "smtp.protocol", MD_SEV_CRITICAL, "the server's reply is not valid SMTP (garbage, over-long line)" },
    { "smtp.host_failed", MD_SEV_WARNING, "one MX host could not take the message; the next one was tried" },
    { "smtp.no_route", MD_SEV_CRITICAL, "the recipient domain has no usable MX route" },
    { "smtp.dsn_unsupported", MD_SEV_WARNING, "DSN was requested but the server does not offer it" },
    { "smtp.size_exceeded", MD_SEV_CRITICAL, "the server refused the message as bigger than it accepts (552 5.3.4)" },
    { "smtp.engine_failed", MD_SEV_CRITICAL, "the SMTP engine (libESMTP, in its own process) failed: whether the server got the message is unknown" },
    /* tls */
    { "tls.ok", MD_SEV_OK, "TLS is in use and the certificate verifies for the host name" },
    { "tls.not_offered", MD_SEV_CRITICAL, "TLS is required but the server does not offer STARTTLS" },
    { "tls.not_offered_opportunistic", MD_SEV_WARNING, "the server does not offer STARTTLS: the message travels in clear" },
    { "tls.handshake_failed", MD_SEV_CRITICAL, "the TLS handshake failed" },
    { "tls.starttls_refused", MD_SEV_CRITICAL, "the server offered STARTTLS, then refused it (a TLS fault on its side)" },
    { "tls.fallback_plaintext", MD_SEV_WARNING, "STARTTLS failed; the message went in plaintext on a new connection (opportunistic TLS)" },
    { "tls.cert_expired", MD_SEV_CRITICAL, "the server's certificate has expired" },
    { "tls.cert_not_yet_valid", MD_SEV_CRITICAL, "the server's certificate is not valid yet" },
    { "tls.cert_self_signed", MD_SEV_CRITICAL, "the server's certificate is self-signed" },
    { "tls.cert_unknown_ca", MD_SEV_CRITICAL, "the server's certificate is issued by an unknown authority" },
    { "tls.cert_name_mismatch", MD_SEV_CRITICAL, "the server's certificate does not name the host connected to" },
    { "tls.cert_invalid", MD_SEV_CRITICAL, "the server's certificate does not verify" },
    { "tls.cert_unverified", MD_SEV_WARNING, "the certificate was not verified (checks turned off, or opportunistic TLS)" },
    { "tls.cert_expiring", MD_SEV_WARNING, "the server's certificate expires within 14 days" },
    /* auth */
    { "smtp.auth.ok", MD_SEV_OK, "authentication succeeded (235)" },
    { "smtp.auth.failed", MD_SEV_CRITICAL, "AUTH did not succeed (a refusal, a reply other than 235, or a dropped exchange): nothing was sent" },
    { "smtp.auth.unavailable", MD_SEV_CRITICAL, "a user is configured but the server offers no AUTH mechanism maildiag uses (PLAIN, LOGIN): nothing was sent" },
    { "smtp.auth.not_offered", MD_SEV_CRITICAL, "a user is configured but the server offers no AUTH: nothing was sent" },
    /* token */
    { "token.valid", MD_SEV_OK, "the token is valid" },
    { "token.test", MD_SEV_WARNING, "a test token, signed with a throwaway key: no product will accept it" },
    { "token.expired", MD_SEV_CRITICAL, "the token has expired" },
    { "token.not_yet_valid", MD_SEV_CRITICAL, "the token is issued in the future (clock skew?)" },
    { "token.wrong_kind", MD_SEV_CRITICAL, "the token is for another purpose (e.g. a verify token used to reset)" },
    { "token.stale", MD_SEV_CRITICAL, "the account changed since the token was issued (used, or password changed)" },
    { "token.bad_signature", MD_SEV_CRITICAL, "no key verifies the token: altered, forged, or signed with another key" },
    { "token.malformed", MD_SEV_CRITICAL, "this is not a maildiag token" },
    /* --- end send / token --- */
    /* --- reputation of our sending IPs: lib/dnsbl (RFC 5782), lib/rdns --- */
    { "dnsbl.listed", MD_SEV_CRITICAL, "a sending IP or domain is listed on a DNS blocklist" },
    { "dnsbl.unusable", MD_SEV_WARNING, "a DNS blocklist fails its RFC 5782 test points or refuses us: its answers do not count" },
    { "rdns.missing", MD_SEV_CRITICAL, "a sending IP has no reverse DNS (PTR)" },
    { "rdns.mismatch", MD_SEV_CRITICAL, "a sending IP's reverse DNS does not resolve back to it (not forward-confirmed)" },
    { "helo.mismatch", MD_SEV_WARNING, "the HELO name does not resolve to the sending IP, or is not its forward-confirmed name" },
    /* --- end reputation --- */
    /* bounces (lib/bounce): one id per recipient of a message */
    { "bounce.hard", MD_SEV_CRITICAL, "a hard bounce (failed, 5.x.x): the address gets suppressed" },
    { "bounce.soft", MD_SEV_WARNING, "a delay or temporary failure (4.x.x): reported, nothing suppressed" },
    { "bounce.complaint", MD_SEV_CRITICAL, "an abuse complaint (ARF): the address gets suppressed" },
    { "bounce.feedback", MD_SEV_OK, "a feedback report that is no complaint (not-spam, auth-failure)" },
    { "bounce.delivered", MD_SEV_OK, "a delivery report that is no failure (delivered, relayed, expanded)" },
    { "bounce.none", MD_SEV_OK, "the message is not a bounce: skipped" },
    { "bounce.malformed", MD_SEV_WARNING, "a report that cannot be read safely: skipped, nothing applied" },
    { "bounce.mailbox_error", MD_SEV_UNKNOWN, "the bounce mailbox could not be read (IMAP server down, TLS, login, folder, Maildir)" },
    /* --- end bounces --- */
    /* arrival (lib/arrival): did a message that was sent arrive */
    { "delivery.found", MD_SEV_OK, "the message arrived in the folder watched" },
    { "delivery.junk", MD_SEV_WARNING, "the message arrived in a Junk folder" },
    { "delivery.not_found", MD_SEV_CRITICAL, "the server accepted the message, but it did not arrive in the mailbox (nor its Junk folders) within the timeout" },
    { "delivery.mailbox_error", MD_SEV_UNKNOWN, "the mailbox could not be read (IMAP server down, TLS, login, folder): whether the message arrived is unknown" },
    { "delivery.not_awaited", MD_SEV_UNKNOWN, "the send was not accepted: its arrival was not awaited" },
    { "delivery.auth_failed", MD_SEV_WARNING, "the receiver's SPF, DKIM or DMARC result for the message is not pass" },
    { "delivery.plaintext", MD_SEV_WARNING, "the mailbox was read without TLS: the IMAP password went in clear" },
    { "delivery.clock_skew", MD_SEV_OK, "the mailbox server's clock and ours disagree: the latency is bounded by what our clock saw" },
    { "delivery.delete_failed", MD_SEV_WARNING, "the test message, found, could not be removed from the mailbox as asked" },
    /* --- end arrival --- */
    /* why: the diagnosis over every layer (lib/diag, maildiag-why) */
    { "diag.timeout", MD_SEV_UNKNOWN, "a layer was cut off by the run's time budget (--timeout): its result is unknown" },
    { "diag.skipped", MD_SEV_UNKNOWN, "a layer could not run because what it needs from an earlier layer is missing or broken" },
    { "recipient.blocked", MD_SEV_CRITICAL, "the recipient's server refuses our mail by policy (5.7.x naming our IP or a blocklist)" },
    /* errors of a run, in the one JSON value a tool prints with --json */
    { "config.error", MD_SEV_UNKNOWN, "the configuration file is missing, unsafe or holds a bad value" },
    { "usage.error", MD_SEV_UNKNOWN, "the command line is not valid" },
    { "input.invalid", MD_SEV_UNKNOWN, "the input given cannot be used" },
    /* --- end why --- */
    /* DMARC alignment of our own mail (lib/diag's sender checks: why and health) */
    { "dmarc.aligned", MD_SEV_OK, "our From domain aligns with SPF (MAIL FROM) and DKIM (d=), as the record's aspf/adkim ask" },
    { "dmarc.partly_aligned", MD_SEV_WARNING, "only one of SPF and DKIM aligns with our From domain: DMARC rests on one mechanism" },
    { "dmarc.unaligned", MD_SEV_CRITICAL, "neither SPF nor DKIM aligns with our From domain: DMARC fails for our mail" },
    /* health: our own sending setup from cron and monitoring (lib/health, maildiag-health) */
    { "health.timeout", MD_SEV_UNKNOWN, "a check was cut off by the run's deadline: its result is unknown" },
    { "health.not_configured", MD_SEV_UNKNOWN, "a check was asked for but the configuration lacks what it needs" },
    { "health.locked", MD_SEV_UNKNOWN, "another run holds the lock: this run checked nothing" },
    { "health.state_error", MD_SEV_UNKNOWN, "the state file could not be read or written: what changed since the last run is unknown" },
    { "health.prometheus_error", MD_SEV_UNKNOWN, "the Prometheus textfile could not be written" },
    { "relay.cert_expiring", MD_SEV_WARNING, "the relay's certificate expires within -w DAYS (critical within -c DAYS)" },
    /* --- end health --- */
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
