/*
 * lib/mx: where does mail for a domain go?  RFC 5321 section 5.1 routing,
 * RFC 7505 null MX, RFC 2181 10.3 (MX targets must not be aliases).
 *
 *  - MX records sorted by preference, each target resolved to A and AAAA;
 *  - a null MX ("0 .") means the domain accepts no mail;
 *  - no MX but an address: the implicit MX, and only on NODATA: a SERVFAIL or
 *    timeout on the MX query is a temporary failure, never a fallback to A;
 *  - targets that are aliases, IP literals or have no address are findings.
 *
 * The gathering (md_mx_resolve) is asynchronous over lib/dns and gives the
 * route itself, for callers that connect to its hosts (lib/smtp) or read
 * its facts (lib/account, lib/auth, lib/diag); the judgement
 * (md_mx_route_evaluate) is a pure function of the gathered route, so it
 * is tested on its own; md_mx_check is the two together, for bulk runs.
 */
#ifndef MAILDIAG_MX_H
#define MAILDIAG_MX_H

#include "dns/dns.h"
#include "dns/bulk.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_MX_HOSTS_MAX 32   /* targets resolved per domain; more are listed, not resolved */

typedef struct md_mx_host {
    char *host;                  /* lower case, no trailing dot; "" = null MX */
    unsigned preference;
    int ip_literal;              /* the target is an address, not a name */
    int resolved;                /* A/AAAA were asked for */
    md_dns_outcome a, aaaa;      /* outcomes of the two address queries */
    char a_detail[128], aaaa_detail[128];
    char **addresses;            /* text form, A first then AAAA */
    size_t naddresses;
    char **cnames;               /* alias chain met while resolving */
    size_t ncnames;
} md_mx_host;

typedef struct md_mx_route {
    char *domain;                /* A-label form */
    char *unicode;               /* U-label form when the domain is an IDN, else NULL */
    md_dns_outcome mx;           /* outcome of the MX query */
    char mx_detail[128];
    char **mx_cnames;            /* the domain itself is an alias */
    size_t mx_ncnames;
    int implicit;                /* NODATA on MX: hosts[0] is the domain itself */
    md_mx_host *hosts;
    size_t nhosts;
    size_t nlisted;              /* MX records in the answer (>= nhosts) */
} md_mx_route;

/* What kind of address an MX target has: senders on the Internet reach
 * only public ones, and a sender that connects where an MX record says must
 * not be steered into its own host or network (lib/smtp refuses the others
 * unless told to allow them). */
typedef enum md_mx_addr_class {
    MD_MX_ADDR_PUBLIC = 0,
    MD_MX_ADDR_LOOPBACK,          /* 127.0.0.0/8, ::1 */
    MD_MX_ADDR_UNSPECIFIED,       /* 0.0.0.0/8, :: */
    MD_MX_ADDR_PRIVATE,           /* RFC 1918, fc00::/7, fec0::/10 (deprecated site-local) */
    MD_MX_ADDR_LINK_LOCAL,        /* 169.254.0.0/16, fe80::/10 */
    MD_MX_ADDR_CGNAT,             /* 100.64.0.0/10 (RFC 6598 shared address space) */
    MD_MX_ADDR_MULTICAST,         /* 224.0.0.0/4, ff00::/8 */
    MD_MX_ADDR_RESERVED,          /* 240.0.0.0/4, 255.255.255.255 */
    MD_MX_ADDR_INVALID            /* not an address */
} md_mx_addr_class;

/* Classifies an address in text form.  IPv6 forms that carry an IPv4
 * address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
 * 64:ff9b::/96) take the class of that address. */
MD_API md_mx_addr_class md_mx_address_class(const char *text);
/* "public", "loopback", "unspecified", "private", "link-local", "CGNAT",
 * "multicast", "reserved", "invalid". */
MD_API const char *md_mx_address_class_name(md_mx_addr_class c);

/* Frees everything the route holds (not the struct itself). */
MD_API void md_mx_route_clear(md_mx_route *r);
/* Frees a route md_mx_resolve gave (NULL is fine). */
MD_API void md_mx_route_free(md_mx_route *r);

/* Receives a gathered route; it passes to the callee (md_mx_route_free). */
typedef void (*md_mx_resolved_fn)(void *arg, md_mx_route *route);

/*
 * Gathers the route of domain, as a person gives it (validated and
 * converted with md_dns_name_normalize): the MX query, then A and AAAA of
 * every target (at most MD_MX_HOSTS_MAX).  MD_OK: done(arg, route) is
 * called exactly once, from inside md_dns_step().  MD_CONFIG: domain is not
 * a domain name (err says why) and done is never called.
 */
MD_API md_status md_mx_resolve(md_dns *dns, const char *domain, md_mx_resolved_fn done, void *arg,
                               md_error *err);

/*
 * The blocking form: steps dns until the route is gathered, or until
 * deadline_ms (md_now_ms() clock; 0 = until every query of dns is done).
 * Other queries queued on dns progress meanwhile.  NULL with err when
 * domain is not a domain name (MD_CONFIG) or the deadline came first
 * (MD_TEMPFAIL, stage "mx.timeout"; the gathering is abandoned and frees
 * itself when its queries end).
 */
MD_API md_mx_route *md_mx_resolve_wait(md_dns *dns, const char *domain, int64_t deadline_ms,
                                       md_error *err);

typedef struct md_mx_options {
    int no_details;   /* 1: skip the human detail lines (JSON and plugin output
                       * never show them; they cost a tenth of a bulk run) */
} md_mx_options;

/*
 * Judges a gathered route: adds findings, human detail lines (unless
 * opt->no_details) and the "mx" JSON field to rep.  opt may be NULL.
 * Pure: no DNS, no I/O.
 */
MD_API void md_mx_route_evaluate(const md_mx_route *r, const md_mx_options *opt, md_report *rep);

/*
 * Checks one domain as given by a person: md_mx_resolve, then
 * md_mx_route_evaluate into a report.  Calls done(done_arg, report) exactly once, from
 * inside md_dns_step() or, for invalid input, before returning; the report
 * passes to the callee.  check_arg is a const md_mx_options * or NULL.  Matches
 * md_check_start_fn, so it plugs into md_bulk_run.
 */
MD_API void md_mx_check(md_dns *dns, const char *input, void *check_arg,
                        md_check_done_fn done, void *done_arg);

#ifdef __cplusplus
}
#endif
#endif
