/* lib/spf private declarations shared by its files.  Not installed. */
#ifndef MAILDIAG_SPF_INT_H
#define MAILDIAG_SPF_INT_H

#include "spf.h"

enum { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

typedef struct spf_term {
    char qual;              /* '+', '-', '~', '?' */
    int mech;               /* M_* */
    char *arg;              /* domain-spec, NULL when absent */
    int c4, c6;             /* CIDR lengths, -1 when absent */
    unsigned char addr[16]; /* ip4 / ip6 network */
    char *text;             /* the term as written */
    size_t col;             /* 0-based column in the record */
} spf_term;

typedef struct spf_record {
    spf_term *terms;
    size_t nterms;
    char *redirect, *exp;   /* domain-specs, NULL when absent */
    size_t redirect_col;
    int has_all, has_ptr;
    int bad;                /* syntax error: error says where and why */
    char error[224];
} spf_record;

/* Parses the record text (which starts with "v=spf1").  Never NULL; check
 * ->bad.  Free with spf_record_free(). */
spf_record *spf_record_parse(const char *txt, size_t len);
void spf_record_free(spf_record *r);

int spf_macro_check(const char *s, size_t len, int exp, size_t *bad, const char **why);
/* Whether libspf2 1.2.10 can take the macros of a valid macro-string or
 * record as RFC 7208 means them (docs/LIBRARIES.md, "libspf2"): 0 when a
 * digit transformer is over 128,
 * which it refuses as an error (and, with ten or more digits, reads with
 * signed int overflow, so a huge value could wrap to a small one). */
int spf_macro_libspf2_fits(const char *s, size_t len);
int spf_domain_spec_check(const char *s, size_t len, size_t *bad, const char **why);

/* Macro values: get(arg, letter) returns the value for a lower-case
 * letter (borrowed until the next call), or NULL for "". */
typedef struct spf_macro_vars {
    const char *(*get)(void *arg, char letter);
    void *arg;
} spf_macro_vars;

/* Expands a macro-string; NULL when it is malformed.  Caller frees. */
char *spf_macro_expand(const char *s, size_t len, const spf_macro_vars *v, int exp);

/* libspf2 cross-evaluation (libspf2.c).  lookup answers a DNS question
 * (borrowed answer, NULL only on internal failure). */
typedef const md_dns_answer *(*spf_lookup_fn)(void *arg, const char *name, int type);

typedef struct spf_libspf2_out {
    char result[16];        /* libspf2's result name, "" if it did not run */
    char reason[32];
    int errcode;
    char error[160];
    int crashed;            /* 1: libspf2 crashed, aborted or hung (error says how) */
} spf_libspf2_out;

void spf_libspf2_evaluate(spf_lookup_fn lookup, void *arg, const char *ip,
                          const char *sender, const char *helo, int helo_identity,
                          int64_t deadline_ms, int isolate, spf_libspf2_out *out);

/* Where a walk's DNS answers come from: resolve returns a new answer for
 * (name, type), never NULL, which the walk frees with md_dns_answer_free.
 * md_spf_evaluate and md_spf_lint resolve through lib/dns; tests and the
 * fuzz targets through a table in memory. */
typedef struct spf_source {
    md_dns_answer *(*resolve)(void *arg, const char *name, int type);
    void *arg;
} spf_source;

/* md_spf_evaluate over src, with one knob: isolate 0 runs libspf2 in this
 * process (the pool's workers: the worker is the isolation). */
md_status spf_evaluate(const spf_source *src, const md_spf_request *req, int isolate,
                       md_spf_result **out, md_report *rep, md_error *err);
/* md_spf_lint over src. */
md_status spf_lint(const spf_source *src, const char *domain, md_spf_result **out,
                   md_report *rep, md_error *err);

/* Frees a node and its subtree. */
void spf_node_free(md_spf_node *n);

/* Records that libspf2 crashed or hung (how) on r's request: r->libspf2
 * says so, and rep gets spf.libspf2_crashed.  The RFC 7208 result stands. */
void spf_result_crashed(md_spf_result *r, md_report *rep, const char *how);

/* The result of a request whose evaluation did not finish (MD_SPF_FAILED);
 * the request's fields may be NULL.  Its spf.engine_failed finding, which
 * says why, goes to rep.  Caller frees with md_spf_result_free(). */
md_spf_result *spf_result_failed(const char *ip, const char *sender, const char *helo,
                                 const char *domain, const char *why, md_report *rep);

/* A result and its findings as bytes (the pool's workers send typed
 * results this way; pool.c), appended to b. */
void spf_result_encode(md_buf *b, const md_spf_result *r, const md_report *rep);
/* The result spf_result_encode wrote, its findings added to rep (a new
 * report); or NULL when data[0..len) is not such (then drop rep).  Caller
 * frees with md_spf_result_free(). */
md_spf_result *spf_result_decode(const char *data, size_t len, md_report *rep);

/*
 * Test hooks, only in a build configured with --enable-test-hooks (which
 * defines MD_TEST_HOOKS): whether MAILDIAG_SPF_FAULT names the fault
 * (libspf2-crash, libspf2-hang, walk-hang), which the isolation tests use
 * to make an evaluation fail the ways libspf2 can.  Elsewhere it is the
 * constant 0, and the variable's name is not in the library.
 */
#ifdef MD_TEST_HOOKS
int spf_test_fault(const char *name);
#else
#define spf_test_fault(name) ((void)(name), 0)
#endif

#endif
