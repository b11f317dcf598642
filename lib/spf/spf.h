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
 *     ("libspf2" in the JSON) and a disagreement is reported with the rule
 *     libspf2 breaks.  Where libspf2 alone would be wrong, ours is the answer.
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

#include <jansson.h>
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
const char *md_spf_code_name(md_spf_code c);
/* Parses a name as above (case-insensitive); -1 when unknown. */
int md_spf_code_parse(const char *name);
/* The severity of an evaluation result: pass ok; neutral, none, softfail
 * warning; fail, permerror critical; temperror unknown. */
md_severity md_spf_code_severity(md_spf_code c);

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

/*
 * Evaluates req over dns (which must not be shared with an event loop that
 * is running: this function drives it).  Returns a new JSON object
 *   {"domain","ip","sender","helo","identity","result","explanation",
 *    "explanation_source","lookups","void_lookups","mechanism","error",
 *    "tree","queries","received_spf","authentication_results","libspf2",
 *    "findings":[{id,severity,summary,evidence}]}
 * or NULL with err set when the request itself is unusable (bad IP).
 * Caller decrefs.
 */
json_t *md_spf_evaluate(md_dns *dns, const md_spf_request *req, md_error *err);

/* Lint of DOMAIN's record (no client address): record, syntax with
 * position, lookup count over the whole tree, void lookups, +all/?all, ptr,
 * record size, includes without SPF.  Returns a new JSON object like
 * md_spf_evaluate's (without ip/result) with "findings".  Caller decrefs. */
json_t *md_spf_lint(md_dns *dns, const char *domain, md_error *err);

/* Turns an evaluation or lint object into a report for the tool: the fields
 * are copied, the findings added, detail lines written.  Caller frees. */
md_report *md_spf_report(const char *tool, json_t *obj);

/*
 * Syntax check of one SPF record (text after selection).  Returns 0 when
 * valid; otherwise -1 with a message "at column N: ..." in msg.
 */
int md_spf_record_check(const char *record, char *msg, size_t msgsize);

/* Whether a TXT string is an SPF version 1 record ("v=spf1" alone or
 * followed by a space, case-insensitive). */
int md_spf_is_record(const char *txt, size_t len);

#ifdef __cplusplus
}
#endif
#endif
