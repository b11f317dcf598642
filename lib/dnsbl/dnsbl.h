/*
 * lib/dnsbl: the reputation of our sending IPs (and sending domains) on DNS
 * blocklists, RFC 5782, together with each IP's forward-confirmed reverse
 * DNS and HELO name (lib/rdns).  Meant for the diagnosis of our sending
 * IPs, each checked on an md_dns shared with other modules.
 *
 * What a list says (RFC 5782 section 2):
 *  - the query is A of the subject under the list's zone: IPv4 octets
 *    reversed ("10.2.0.192.bl.test"), IPv6 as 32 reversed nibbles, or a
 *    domain name as it is ("example.com.dbl.test", section 2.3);
 *  - an A answer with values in 127.0.0.0/8 means listed; every value is a
 *    return code and all of them are kept (lists use them for sub-lists), and
 *    the TXT record of the same name is then asked for the reason (sanitized,
 *    at most MD_DNSBL_REASON_MAX bytes);
 *  - NXDOMAIN means not listed; NODATA (the name exists, no A) is not a
 *    listing either, and is reported as such;
 *  - a timeout, SERVFAIL, REFUSED or bad reply means unknown for that
 *    subject on that list: never "not listed".
 *
 * When a list is unusable (its answers are shown but never count as listed
 * or not listed):
 *  - an answer outside 127.0.0.0/8: a wildcard, or a resolver that rewrites
 *    NXDOMAIN into the address of its own web server;
 *  - 127.255.255.0/24, the operator's error codes rather than listings:
 *    .252 the list name is misspelt, .254 queries through a public/open
 *    resolver are refused, .255 too many queries; and 127.0.0.1 as an answer,
 *    which lists use to say "query refused" (it is also the test point no
 *    list may list);
 *  - the test points of RFC 5782 section 5, asked once per list per kind of
 *    subject and shared by every subject of the run: 127.0.0.2 (IPv6
 *    ::ffff:7f00:2, domain lists TEST) must be listed and 127.0.0.1
 *    (::ffff:7f00:1, INVALID) must not be.  A list that lists 127.0.0.1
 *    lists everything; one that does not list 127.0.0.2 is dead, retired or
 *    not serving this kind of subject; one that answers REFUSED to the test
 *    points refuses us.  A test point lookup that failed leaves the list's
 *    usability unknown, and with it every answer of the list.
 *
 * Findings (default severities in lib/report/catalogue.c):
 *  - dnsbl.listed, critical: subject, zone, return code(s), TXT reason;
 *  - dnsbl.unusable, warning: which list, for which kind of subject, and why;
 *  - dns.temporary, unknown: a lookup failed, and what is unknown because of it;
 *  - rdns.missing, rdns.mismatch, helo.mismatch: see rdns/rdns.h.
 *
 * Gathering (md_dnsbl_start) queues every lookup at once on the caller's
 * md_dns (identical queries of other modules are merged by lib/dns); TXT and
 * forward lookups follow as answers arrive.  Judging is pure (md_dnsbl_classify,
 * md_dnsbl_judge_zone, md_dnsbl_combine), and so is md_dnsbl_result_report.
 * Uses lib/dns, lib/rdns and lib/report only.
 */
#ifndef MAILDIAG_DNSBL_H
#define MAILDIAG_DNSBL_H

#include <stddef.h>
#include "base/base.h"
#include "dns/dns.h"
#include "rdns/rdns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_DNSBL_REASON_MAX 256   /* bytes of TXT reason kept, NUL included */
#define MD_DNSBL_ADDRS_MAX 16     /* A records kept per answer; the rest are counted */

/* What one list says about one subject. */
typedef enum md_dnsbl_state {
    MD_DNSBL_NOT_LISTED = 0,  /* NXDOMAIN or NODATA from a usable list */
    MD_DNSBL_LISTED,          /* return codes in 127.0.0.0/8 from a usable list */
    MD_DNSBL_UNUSABLE,        /* the list cannot be used: the answer does not count */
    MD_DNSBL_UNKNOWN          /* a lookup failed: nothing is known */
} md_dnsbl_state;

/* "not_listed", "listed", "unusable", "unknown". */
MD_API const char *md_dnsbl_state_name(md_dnsbl_state s);

typedef enum md_dnsbl_zone_state {
    MD_DNSBL_ZONE_USABLE = 0,
    MD_DNSBL_ZONE_UNUSABLE,
    MD_DNSBL_ZONE_UNKNOWN     /* a test point lookup failed */
} md_dnsbl_zone_state;

/* "usable", "unusable", "unknown". */
MD_API const char *md_dnsbl_zone_state_name(md_dnsbl_zone_state s);

/* Why a list is unusable: bits. */
#define MD_DNSBL_WHY_LISTS_ALL       0x01u  /* lists the test point that must not be listed */
#define MD_DNSBL_WHY_MISSES_TEST     0x02u  /* does not list the test point that must be */
#define MD_DNSBL_WHY_REFUSED         0x04u  /* REFUSED to a test point, or answered 127.0.0.1 */
#define MD_DNSBL_WHY_NOT_LOOPBACK    0x08u  /* answered an address outside 127.0.0.0/8 */
#define MD_DNSBL_WHY_TYPO            0x10u  /* 127.255.255.252 */
#define MD_DNSBL_WHY_PUBLIC_RESOLVER 0x20u  /* 127.255.255.254 */
#define MD_DNSBL_WHY_EXCESSIVE       0x40u  /* 127.255.255.255 */
#define MD_DNSBL_WHY_ERROR_CODE      0x80u  /* another 127.255.255.x */

/* The short name of one bit ("lists_all", "misses_test", "refused",
 * "not_loopback", "typo", "public_resolver", "excessive", "error_code"), or
 * NULL for anything else. */
MD_API const char *md_dnsbl_why_name(unsigned bit);

/* The kinds of subject; a list's test points differ by kind. */
typedef enum md_dnsbl_kind {
    MD_DNSBL_IPV4 = 0,
    MD_DNSBL_IPV6,
    MD_DNSBL_DOMAIN,
    MD_DNSBL_NKINDS
} md_dnsbl_kind;

/* "ipv4", "ipv6", "domain". */
MD_API const char *md_dnsbl_kind_name(md_dnsbl_kind k);

/*
 * The RFC 5782 query name of an IP (text, see md_rdns_addr_parse) on an IP
 * list zone, or of a domain on a domain list zone (domain_list 1), into out
 * (size >= MD_RDNS_REVERSE_MAX for IPs).  Neither input is validated here
 * beyond its length.  Returns 0, or -1 when subject is not an IP (for an IP
 * list) or the name does not fit 253 characters.
 */
MD_API int md_dnsbl_query_name(const char *subject, const char *zone, int domain_list,
                               char *out, size_t outsize);

/*
 * Classifies one A lookup on a list: UNKNOWN for a temporary outcome
 * (md_dns_outcome_is_temporary), NOT_LISTED for NXDOMAIN and NODATA,
 * UNUSABLE (*why = MD_DNSBL_WHY_* bits) when any record is outside
 * 127.0.0.0/8, in 127.255.255.0/24 or 127.0.0.1, else LISTED.  Pure.
 */
MD_API md_dnsbl_state md_dnsbl_classify(md_dns_outcome outcome, const md_dns_addr *addr, size_t n,
                                        unsigned *why);

/* One A lookup on a list. */
typedef struct md_dnsbl_lookup {
    char *qname;              /* the name asked */
    md_dns_outcome outcome;
    char detail[128];         /* lib/dns's words for a failure; "" otherwise */
    char **addresses;         /* the A records as text, at most MD_DNSBL_ADDRS_MAX */
    size_t naddresses;
    size_t nanswers;          /* A records in the answer (>= naddresses) */
    md_dnsbl_state state;     /* md_dnsbl_classify of this lookup alone */
    unsigned why;             /* its MD_DNSBL_WHY_* bits */
} md_dnsbl_lookup;

/*
 * Judges a list for one kind of subject from the lookups of its two test
 * points, already classified: must_list (127.0.0.2, ::ffff:7f00:2, TEST)
 * and must_not (127.0.0.1, ::ffff:7f00:1, INVALID).  Any reason to distrust
 * the list makes it UNUSABLE (*why says which); otherwise a failed lookup
 * makes it UNKNOWN.  REFUSED to a test point is a reason (the list refuses
 * us); other failures are not.  Pure.
 */
MD_API md_dnsbl_zone_state md_dnsbl_judge_zone(const md_dnsbl_lookup *must_list,
                                               const md_dnsbl_lookup *must_not, unsigned *why);

/*
 * What one answer finally says, given its list's state: a failed lookup
 * stays UNKNOWN, an unusable answer stays UNUSABLE, then an unusable list
 * makes it UNUSABLE and a list of unknown usability makes it UNKNOWN.  Pure.
 */
MD_API md_dnsbl_state md_dnsbl_combine(md_dnsbl_zone_state zone, md_dnsbl_state answer);

/* A list's test points for one kind of subject. */
typedef struct md_dnsbl_tests {
    int asked;                   /* some subject of this kind was looked up */
    md_dnsbl_lookup must_list;
    md_dnsbl_lookup must_not;
    md_dnsbl_zone_state state;   /* the test points, and every answer of this kind */
    unsigned why;
} md_dnsbl_tests;

typedef struct md_dnsbl_zone {
    char *zone;                  /* lower case A-labels, no trailing dot */
    int domain_list;             /* 1: a domain list (RFC 5782 2.3); 0: an IP list */
    md_dnsbl_tests tests[MD_DNSBL_NKINDS];
} md_dnsbl_zone;

/* One subject on one list. */
typedef struct md_dnsbl_listing {
    char *subject;               /* canonical IP text, or the domain in A-labels */
    md_dnsbl_kind kind;
    size_t zone;                 /* index into md_dnsbl_result.zones */
    md_dnsbl_lookup a;
    char **codes;                /* the 127.0.0.0/8 return codes (not the error codes), sorted */
    size_t ncodes;
    int txt_asked;               /* asked when the A answer is a listing */
    md_dns_outcome txt;
    char *reason;                /* the TXT records, sanitized and bounded; NULL: none */
    md_dnsbl_state state;        /* final: md_dnsbl_combine with the list's state */
} md_dnsbl_listing;

typedef struct md_dnsbl_result {
    md_dnsbl_zone *zones;        /* IP lists first, then domain lists, as configured */
    size_t nzones;
    md_dnsbl_listing *listings;  /* each subject on each list of its kind, subject-major */
    size_t nlistings;
    md_rdns_result **rdns;       /* one per IP, in the order of the IPs; NULL when skipped */
    size_t nrdns;
} md_dnsbl_result;

/* Frees r and everything it holds; NULL is a no-op. */
MD_API void md_dnsbl_result_free(md_dnsbl_result *r);

/* One of our sending IPs and the HELO/EHLO name it announces. */
typedef struct md_dnsbl_sender {
    const char *ip;              /* IPv4 or IPv6 text */
    const char *helo;            /* NULL: no HELO check */
} md_dnsbl_sender;

typedef struct md_dnsbl_config {
    const md_dnsbl_sender *senders;     /* our sending IPs */
    size_t nsenders;
    const char *const *zones;           /* IP lists ("zen.example.test") */
    size_t nzones;
    const char *const *domains;         /* our sending domains, for the domain lists */
    size_t ndomains;
    const char *const *domain_zones;    /* domain lists (RFC 5782 2.3) */
    size_t ndomain_zones;
    int no_rdns;                        /* 1: skip reverse DNS and HELO checks */
} md_dnsbl_config;

/* Called once with the judged result, which passes to the callee: free it
 * with md_dnsbl_result_free(). */
typedef void (*md_dnsbl_done_fn)(void *arg, md_dnsbl_result *r);

/*
 * Starts checking cfg (copied: cfg and its strings may go after the call).
 * Duplicate IPs, domains and zones are checked once.  Queues every lookup on
 * dns and returns MD_OK; done is then called exactly once, from inside
 * md_dns_step()/md_dns_run(), never from here.  Returns MD_CONFIG with err
 * set, queues nothing and never calls done when an IP, domain, zone or HELO
 * name is invalid, when zones are given without IPs (or domain zones
 * without domains), or when there is nothing to check.  If dns is freed
 * before done runs, the check's memory is lost: run the loop to the end.
 */
MD_API md_status md_dnsbl_start(md_dns *dns, const md_dnsbl_config *cfg, md_dnsbl_done_fn done,
                                void *arg, md_error *err);

/*
 * The same, synchronously: drives dns until the check ends (other queries
 * on dns progress too).  Never call it from inside a callback of the same
 * md_dns.  Returns the judged result (caller frees with
 * md_dnsbl_result_free()), or NULL with err set.
 */
MD_API md_dnsbl_result *md_dnsbl_check(md_dns *dns, const md_dnsbl_config *cfg, md_error *err);

/*
 * Adds the findings for r (above), human detail lines, and the structured
 * fields "dnsbl" ({"zones": [...], "listings": [...]}) and, unless reverse
 * DNS was skipped, "rdns" ([...], each as md_rdns_describe describes it) to
 * rep.  Pure.
 */
MD_API void md_dnsbl_result_report(const md_dnsbl_result *r, md_report *rep);

#ifdef __cplusplus
}
#endif
#endif
