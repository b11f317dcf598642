/*
 * lib/spf: Sender Policy Framework, RFC 7208, exactly.
 *
 * How an evaluation runs (md_spf_evaluate):
 *  1. check_host() is walked here, over lib/dns, term by term in RFC order.
 *     This walk fetches every record and address the evaluation needs into
 *     an in-memory answer table, and it enforces what libspf2 1.2.10 gets
 *     wrong (docs/LIBRARIES.md, "libspf2"): 10 DNS terms in total across
 *     includes and redirects, 2 void lookups, 10 names per mx/ptr, syntax
 *     errors anywhere as permerror, DNS failures as temperror, two records as
 *     permerror, v=spf10 not SPF, 127.0.0.1 evaluated normally, macros such
 *     as %{l1r-} and %{ir}.  It also rejects malformed macros and over-long
 *     records, which is what triggers libspf2's CVE-2023-42118.
 *  2. libspf2 then evaluates the same request, its DNS layer reading the
 *     answer table (and lib/dns for anything the walk did not need).
 *  3. The RFC verdict is the walk's; libspf2's result is kept beside it
 *     (md_spf_result.libspf2) and a disagreement is reported with the rule
 *     libspf2 breaks.  Where libspf2 alone would be wrong, ours is the answer.
 *
 * Results are typed (md_spf_result) and come with findings (catalogue ids,
 * added to a caller's md_report); md_spf_describe turns a result into the
 * report's structured fields and detail lines, which lib/report renders.
 *
 * libspf2 has an unpatched macro-parsing flaw and aborts on some inputs, so
 * md_spf_evaluate runs it in a child process of its own, and tools evaluate
 * through md_spf_pool (pool.h): worker processes with a deadline, where a
 * crash or hang is re-run without libspf2 (the RFC result survives with an
 * spf.libspf2_crashed finding) and a failure even then is a temperror with
 * an spf.engine_failed finding.
 */
#ifndef MAILDIAG_SPF_H
#define MAILDIAG_SPF_H

#include "base/base.h"
#include "dns/dns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The seven RFC 7208 results. */
typedef enum md_spf_code {
    MD_SPF_NONE = 0,
    MD_SPF_NEUTRAL,
    MD_SPF_PASS,
    MD_SPF_FAIL,
    MD_SPF_SOFTFAIL,
    MD_SPF_TEMPERROR,
    MD_SPF_PERMERROR
} md_spf_code;

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
MD_API const char *md_spf_code_name(md_spf_code c);
/* Parses a name as above (case-insensitive); -1 when unknown. */
MD_API int md_spf_code_parse(const char *name);
/* The severity of an evaluation result: pass ok; neutral, none, softfail
 * warning; fail, permerror critical; temperror unknown. */
MD_API md_severity md_spf_code_severity(md_spf_code c);

#define MD_SPF_MAX_TERMS 10     /* RFC 7208 4.6.4: DNS-querying terms in total */
#define MD_SPF_MAX_VOID 2       /* RFC 7208 4.6.4: void lookups */
#define MD_SPF_MAX_NAMES 10     /* RFC 7208 4.6.4: MX names per mx, PTR names per ptr */
#define MD_SPF_RECORD_MAX 4096  /* longer records are refused before libspf2 */

typedef enum md_spf_identity { MD_SPF_ID_MAILFROM = 0, MD_SPF_ID_HELO } md_spf_identity;

typedef struct md_spf_request {
    const char *ip;          /* client address, IPv4 or IPv6 text */
    const char *sender;      /* MAIL FROM as given; "" = null reverse-path */
    const char *helo;        /* HELO/EHLO name; may be NULL */
    md_spf_identity identity;/* HELO: check the HELO identity */
    const char *domain;      /* NULL, or the domain to check instead of the
                              * sender's (lint-like evaluation of DOMAIN) */
    const char *receiver;    /* authserv-id for the header lines; NULL = "maildiag" */
    int no_libspf2;          /* 1: skip the libspf2 cross-evaluation */
    double deadline;         /* seconds for the whole evaluation; 0 = 20 */
} md_spf_request;

typedef enum md_spf_via {
    MD_SPF_VIA_TOP = 0,          /* the domain evaluated or linted */
    MD_SPF_VIA_INCLUDE,
    MD_SPF_VIA_REDIRECT
} md_spf_via;

/* "top", "include", "redirect". */
MD_API const char *md_spf_via_name(md_spf_via v);

typedef enum md_spf_node_kind {
    MD_SPF_NODE_RECORD = 0,      /* a domain whose SPF record was looked up */
    MD_SPF_NODE_LOOP,            /* lint: an include/redirect back onto the path,
                                  * not followed again */
    MD_SPF_NODE_SEEN,            /* lint: a domain linted above; its terms count
                                  * again (lookups), it is not walked again */
    MD_SPF_NODE_MACRO            /* lint: a term whose target uses macros (it
                                  * depends on the sender): not followed */
} md_spf_node_kind;

/*
 * One node of the include/redirect tree.  Text (domain, record, terms) is
 * as found in DNS or the request: untrusted, not sanitized (lib/report
 * sanitizes what it shows).
 */
typedef struct md_spf_node {
    md_spf_node_kind kind;
    md_spf_via via;              /* how it was reached (not for MD_SPF_NODE_MACRO) */
    char *domain;                /* NULL for MD_SPF_NODE_MACRO */
    char *term;                  /* MD_SPF_NODE_MACRO: the term as written */
    char *record;                /* the one SPF record found; NULL when none */
    int lookups;                 /* DNS-querying terms counted in this record
                                  * (MD_SPF_NODE_SEEN: its whole subtree) */
    char *error;                 /* why the record was not used (syntax), or NULL */
    char *matched;               /* evaluation: the term that matched, or NULL */
    int has_result;              /* evaluation: result is set (lint: 0) */
    md_spf_code result;          /* evaluation: this record's check_host() result */
    struct md_spf_node **children;
    size_t nchildren;
} md_spf_node;

typedef enum md_spf_by {
    MD_SPF_BY_WALK = 0,          /* the RFC 7208 walk */
    MD_SPF_BY_LIBSPF2,           /* libspf2 asked for something the walk did not */
    MD_SPF_BY_LINT
} md_spf_by;

/* "walk", "libspf2", "lint". */
MD_API const char *md_spf_by_name(md_spf_by by);

/* One DNS question an evaluation or lint asked, with its outcome. */
typedef struct md_spf_query {
    char *name;                  /* lower case, no trailing dot */
    int type;                    /* MD_DNS_A, MD_DNS_TXT ... */
    md_dns_outcome outcome;
    size_t records;              /* records of the type in the answer */
    md_spf_by by;
    char *detail;                /* why, for a failure; NULL when none */
} md_spf_query;

/* libspf2's verdict on the same request and data. */
typedef struct md_spf_libspf2 {
    int ran;                     /* 0: not asked (why says why) */
    char *why;                   /* ran 0: why libspf2 was not asked */
    char *crashed;               /* it crashed, aborted or hung: how; else NULL */
    char *result;                /* its result ("pass" ... "invalid", "error") */
    char *reason;                /* its reason ("mechanism", "localhost" ...) */
    char *error;                 /* its error text, or NULL */
    int agrees;                  /* its result is ours */
    char *override;              /* it disagrees: what it says and why ours stands */
} md_spf_libspf2;

typedef enum md_spf_result_kind {
    MD_SPF_EVALUATION = 0,       /* md_spf_evaluate */
    MD_SPF_LINT,                 /* md_spf_lint: no client, result or headers */
    MD_SPF_FAILED,               /* the evaluation did not finish (the pool's
                                  * workers died twice): temperror, error says how */
    MD_SPF_INVALID               /* the request could not be evaluated at all */
} md_spf_result_kind;

typedef enum md_spf_exp_source {
    MD_SPF_EXP_NONE = 0,
    MD_SPF_EXP_RECORD            /* the record's exp= modifier (RFC 7208 6.2) */
} md_spf_exp_source;

/*
 * What one evaluation or lint found.  Strings are the evaluation's own
 * copies; NULL where the field does not apply.  Free with
 * md_spf_result_free().
 */
typedef struct md_spf_result {
    md_spf_result_kind kind;
    char *domain;                /* the domain evaluated or linted */
    char *ip;                    /* the client, canonical text (not lint) */
    char *sender;                /* the identity checked, local@domain */
    char *helo;                  /* the HELO name, or NULL */
    md_spf_identity identity;    /* which identity was checked */
    md_spf_code result;          /* lint: MD_SPF_NONE, unused */
    char *explanation;           /* fail: the explanation, else NULL */
    md_spf_exp_source explanation_source;
    int lookups;                 /* DNS-querying terms (lint: the most a receiver
                                  * evaluates, up to the 11th, where it stops) */
    int void_lookups;
    char *mechanism;             /* the term that decided, or NULL */
    char *error;                 /* why permerror/temperror, or NULL */
    char *record;                /* lint: the domain's record, or NULL */
    md_spf_node *tree;           /* the top record's node; NULL when nothing
                                  * was looked up (unusable domain) */
    md_spf_query *queries;       /* every DNS question, in order */
    size_t nqueries;
    char *received_spf;          /* the header lines (evaluation) */
    char *authentication_results;
    md_spf_libspf2 libspf2;      /* evaluation */
} md_spf_result;

/* Frees r and everything it holds; NULL is a no-op. */
MD_API void md_spf_result_free(md_spf_result *r);

/*
 * Evaluates req over dns (which must not be shared with an event loop that
 * is running: this function drives it).  On MD_OK, *out is a new result
 * (caller frees with md_spf_result_free()) and its findings (spf.RESULT,
 * why an error result, libspf2's disagreement) are added to rep.  Returns
 * MD_CONFIG with err set, *out NULL and rep untouched, when the request
 * itself is unusable (the IP is not an address).
 */
MD_API md_status md_spf_evaluate(md_dns *dns, const md_spf_request *req, md_spf_result **out,
                                 md_report *rep, md_error *err);

/*
 * Lint of DOMAIN's record (no client address): record, syntax with
 * position, lookup count over the whole tree, void lookups, +all/?all, ptr,
 * record size, includes without SPF.  On MD_OK, *out is a new result of
 * kind MD_SPF_LINT (caller frees with md_spf_result_free()) and the lint
 * findings are added to rep.  Returns MD_CONFIG with err set and *out NULL
 * when domain is not a usable domain name.
 */
MD_API md_status md_spf_lint(md_dns *dns, const char *domain, md_spf_result **out, md_report *rep,
                             md_error *err);

#define MD_SPF_DESCRIBE_NO_QUERIES 0x1u   /* leave the "queries" trace out */
#define MD_SPF_DESCRIBE_JSON_ONLY 0x2u   /* only JSON will be written: no subject, no
                                           * detail lines, which bulk JSON never shows */

/*
 * Describes r into rep: the subject ("DOMAIN from IP", or DOMAIN), the
 * structured fields of the JSON contract (see maildiag-spf(1): "domain",
 * "ip", ..., "tree", "queries", "received_spf", "libspf2") and the human
 * detail lines (result, explanation, Received-SPF, the tree), as flags
 * (MD_SPF_DESCRIBE_*) ask.  Adds no findings: those came with the
 * evaluation.
 */
MD_API void md_spf_describe(const md_spf_result *r, md_report *rep, unsigned flags);

/*
 * A result for a request that could not be evaluated (MD_SPF_INVALID:
 * temperror, no DNS asked), for bulk input that is not a request: domain
 * may be "".  Caller frees with md_spf_result_free().
 */
MD_API md_spf_result *md_spf_result_invalid(const char *domain);

/*
 * Syntax check of one SPF record (text after selection).  Returns 0 when
 * valid; otherwise -1 with a message "at column N: ..." in msg.
 */
MD_API int md_spf_record_check(const char *record, char *msg, size_t msgsize);

/* Whether a TXT string is an SPF version 1 record ("v=spf1" alone or
 * followed by a space, case-insensitive). */
MD_API int md_spf_is_record(const char *txt, size_t len);

#ifdef __cplusplus
}
#endif
#endif
