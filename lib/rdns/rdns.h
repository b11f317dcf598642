/*
 * lib/rdns: the reverse DNS of one of our sending IPs, forward-confirmed
 * (FCrDNS, the "iprev" check of RFC 8601 section 3), and whether our HELO
 * name fits it.
 *
 *  - PTR of the reverse name (RFC 1035 3.5 in-addr.arpa, RFC 3596 2.5
 *    ip6.arpa), then A (IPv4) or AAAA (IPv6) of each PTR name, at most
 *    MD_RDNS_NAMES_MAX of them (the limit RFC 7208 4.6.4 sets for the same
 *    walk in SPF's ptr mechanism; receivers bound it alike);
 *    the reverse DNS is forward-confirmed when one of them maps back to the IP;
 *  - the HELO name's own A/AAAA must hold the IP, and when the IP has a
 *    forward-confirmed name the HELO name should be that name.
 *
 * Verdicts and finding ids (default severities in lib/report/catalogue.c):
 *  - rdns.missing, critical: no PTR at all (NXDOMAIN or NODATA).  Receivers
 *    commonly refuse such clients outright (Postfix's
 *    reject_unknown_reverse_client_hostname, most large mailbox providers).
 *  - rdns.mismatch, critical: PTR names exist but none resolves back to the
 *    IP.  Critical rather than warning because receivers treat it like a
 *    missing PTR: Postfix's reject_unknown_client_hostname rejects both, and
 *    large mailbox providers reject both with the same 5.7.25 reply.  An IP in
 *    that state cannot reliably deliver, which is what critical means here.
 *  - helo.mismatch, warning: the HELO name does not resolve to the IP, or is
 *    not the forward-confirmed name.  Receivers score it rather than refuse.
 *  - dns.temporary, unknown: a lookup failed (timeout, SERVFAIL, REFUSED,
 *    bad reply).  A failed PTR lookup is never "no PTR", and a failed forward
 *    lookup is never "does not map back": what depended on it is unknown.
 *
 * Gathering (md_rdns_start) is asynchronous over a caller's md_dns and queues
 * the PTR and HELO lookups at once, the forward lookups as PTR names arrive.
 * Judging (md_rdns_judge) is a pure function of the gathered result.
 * Uses lib/dns and lib/report only.
 */
#ifndef MAILDIAG_RDNS_H
#define MAILDIAG_RDNS_H

#include <stddef.h>
#include "base/base.h"
#include "dns/dns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_RDNS_NAMES_MAX 10     /* PTR names resolved forward; more are listed, not resolved */
#define MD_RDNS_ADDRS_MAX 16     /* addresses kept per forward lookup; the rest are counted */
#define MD_RDNS_REVERSE_MAX 128  /* room for any reverse name built here, NUL included */

/*
 * Parses an IPv4 or IPv6 address given by a person.  An IPv4-mapped IPv6
 * address (::ffff:192.0.2.1) is taken as the IPv4 address it maps, since
 * that is the address receivers see.  out->text is the canonical inet_ntop
 * form.  Returns MD_OK, or MD_CONFIG with err saying what is wrong.
 */
MD_API md_status md_rdns_addr_parse(const char *text, md_dns_addr *out, md_error *err);

/*
 * Writes the reversed form of ip followed by "." and suffix into out:
 * IPv4 octets in reverse order ("10.2.0.192"), IPv6 as 32 nibbles in reverse
 * order.  suffix NULL means the reverse tree, "in-addr.arpa" or "ip6.arpa";
 * a DNSBL zone gives the RFC 5782 query name.  Returns 0, or -1 when the name
 * would not fit out or exceeds 253 characters (out is then "").
 */
MD_API int md_rdns_reverse_name(const md_dns_addr *ip, const char *suffix, char *out, size_t outsize);

typedef enum md_rdns_state {
    MD_RDNS_CONFIRMED = 0,   /* a PTR name resolves back to the IP */
    MD_RDNS_MISSING,         /* no PTR record: NXDOMAIN or NODATA */
    MD_RDNS_MISMATCH,        /* PTR names, none of which resolves back to the IP */
    MD_RDNS_UNKNOWN          /* a lookup failed; nothing is known */
} md_rdns_state;

/* "confirmed", "missing", "mismatch", "unknown". */
MD_API const char *md_rdns_state_name(md_rdns_state s);

typedef enum md_rdns_helo_state {
    MD_RDNS_HELO_NONE = 0,   /* no HELO name was given */
    MD_RDNS_HELO_OK,         /* resolves to the IP and is a forward-confirmed name */
    MD_RDNS_HELO_RESOLVES,   /* resolves to the IP; the IP has no confirmed name to compare
                              * (rdns.missing or rdns.mismatch already says so) */
    MD_RDNS_HELO_MISMATCH,   /* does not resolve to the IP, or is not the confirmed name */
    MD_RDNS_HELO_UNKNOWN     /* its lookup, or the reverse DNS, is unknown */
} md_rdns_helo_state;

/* "none", "ok", "resolves", "mismatch", "unknown". */
MD_API const char *md_rdns_helo_state_name(md_rdns_helo_state s);

/* One forward lookup (A for an IPv4 address, AAAA for IPv6) of a name. */
typedef struct md_rdns_forward {
    char *name;              /* lower case, no trailing dot; NULL: none */
    int asked;               /* the lookup was made (PTR names past the limit are not) */
    md_dns_outcome outcome;
    char detail[128];        /* lib/dns's words for a failure; "" otherwise */
    char **addresses;        /* text form, at most MD_RDNS_ADDRS_MAX */
    size_t naddresses;
    size_t nanswers;         /* records in the answer (>= naddresses) */
    int matches;             /* one of the records is the IP */
} md_rdns_forward;

typedef struct md_rdns_result {
    md_dns_addr ip;
    char *ptr_qname;         /* "10.2.0.192.in-addr.arpa" */
    md_dns_outcome ptr;      /* outcome of the PTR lookup */
    char ptr_detail[128];
    md_rdns_forward *names;  /* PTR names, sorted, without duplicates */
    size_t nnames;
    md_rdns_forward helo;    /* helo.name NULL when no HELO name was given */

    /* Filled by md_rdns_judge(): */
    md_rdns_state state;
    const char *confirmed;   /* first PTR name that maps back; borrowed from names[], or NULL */
    md_rdns_helo_state helo_state;
} md_rdns_result;

/* Frees r and everything it holds; NULL is a no-op. */
MD_API void md_rdns_result_free(md_rdns_result *r);

/* Sets state, confirmed and helo_state from the gathered lookups.  Pure. */
MD_API void md_rdns_judge(md_rdns_result *r);

/* Called once with the judged result, which passes to the callee: free it
 * with md_rdns_result_free(). */
typedef void (*md_rdns_done_fn)(void *arg, md_rdns_result *r);

/*
 * Starts the check of ip (text, see md_rdns_addr_parse) with our HELO name
 * helo (NULL: none; validated with md_dns_name_normalize).  Queues its
 * lookups on dns and returns MD_OK; done is then called exactly once, from
 * inside md_dns_step()/md_dns_run(), never from here.  On bad input returns
 * MD_CONFIG with err set, queues nothing and never calls done.  If dns is
 * freed before done runs, the check's memory is lost: run the loop to the end.
 */
MD_API md_status md_rdns_start(md_dns *dns, const char *ip, const char *helo,
                               md_rdns_done_fn done, void *arg, md_error *err);

/*
 * The same, synchronously: drives dns until the check ends (other queries
 * on dns progress too).  Never call it from inside a callback of the same
 * md_dns.  Returns the judged result (caller frees with
 * md_rdns_result_free()), or NULL with err set on bad input.
 */
MD_API md_rdns_result *md_rdns_check(md_dns *dns, const char *ip, const char *helo, md_error *err);

/* Adds the findings for r (above) and human detail lines to rep.  Pure. */
MD_API void md_rdns_result_report(const md_rdns_result *r, md_report *rep);

/* Describes r into rep: the structured fields "ip", "ptr_query", "ptr",
 * "state", "names", "confirmed_name" and, when a HELO name was given,
 * "helo", in that order.  Adds no findings (md_rdns_result_report does). */
MD_API void md_rdns_describe(const md_rdns_result *r, md_report *rep);

#ifdef __cplusplus
}
#endif
#endif
