/*
 * lib/spf pool: SPF evaluations in worker processes with a deadline.
 *
 * libspf2 1.2.10 aborts on some inputs and has an unpatched macro-parsing
 * flaw (CVE-2023-42118; docs/LIBRARIES.md, "libspf2"), so no evaluation runs
 * in the caller's own process: each worker owns a private md_dns (its own
 * c-ares channel) and evaluates one request at a time.  A worker that crashes, aborts or overruns the
 * deadline is killed and replaced; its request runs again without libspf2
 * (spf.libspf2_crashed), and if that fails too it gets a temperror result
 * with an spf.engine_failed finding (severity unknown) saying what happened.
 *
 * Requests and results travel as length-framed messages over pipes (see
 * pool.c).  Results come back in completion order.  Not thread-safe; one
 * pool per thread.
 */
#ifndef MAILDIAG_SPF_POOL_H
#define MAILDIAG_SPF_POOL_H

#include <signal.h>
#include "spf/spf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_spf_output {
    MD_SPF_OUT_OBJECT = 0,   /* typed results: md_spf_result and its findings */
    MD_SPF_OUT_JSON,         /* rendered by the worker as md_report_write_json would */
    MD_SPF_OUT_TEXT          /* rendered by the worker as md_report_write_text would */
} md_spf_output;

typedef struct md_spf_pool_config {
    md_dns_config dns;       /* each worker's resolver (servers are copied) */
    unsigned workers;        /* 0 = 1 */
    unsigned depth;          /* requests queued per worker; 0 = 8, at most 16 */
    double deadline;         /* seconds per evaluation before the kill; 0 = 30 */
    md_spf_output output;    /* rendering in the workers keeps the parent,
                              * which is serial, out of JSON work */
    const char *tool;        /* report tool name for the rendered outputs */
    unsigned text_flags;     /* MD_TEXT_* for MD_SPF_OUT_TEXT */
    const volatile sig_atomic_t *cancel;  /* may be NULL; when *cancel is set
                              * (by a signal handler), md_spf_pool_next stops
                              * waiting and returns 0.  Workers ignore SIGINT
                              * and SIGTERM: the pool's owner decides. */
} md_spf_pool_config;

typedef struct md_spf_pool_result {
    md_spf_result *result;   /* MD_SPF_OUT_OBJECT: the evaluation (or its
                              * failure: kind MD_SPF_FAILED, MD_SPF_INVALID) */
    md_report *report;       /* MD_SPF_OUT_OBJECT: its findings (describe the
                              * result into it with md_spf_describe) */
    char *rendered;          /* otherwise: the described report, ready to write */
    size_t len;
    md_severity status;      /* worst severity of the findings */
    void *tag;               /* as given to md_spf_pool_submit */
} md_spf_pool_result;

/* Frees what a result holds (not r itself). */
MD_API void md_spf_pool_result_clear(md_spf_pool_result *r);

typedef struct md_spf_pool md_spf_pool;

/* Starts the workers.  Returns NULL with err set on failure.  Caller frees
 * with md_spf_pool_free() (which stops every worker). */
MD_API md_spf_pool *md_spf_pool_new(const md_spf_pool_config *cfg, md_error *err);
MD_API void md_spf_pool_free(md_spf_pool *p);

/* Whether a worker can take another request (its queue is not full). */
MD_API int md_spf_pool_has_idle(const md_spf_pool *p);
/* Requests in flight. */
MD_API size_t md_spf_pool_busy(const md_spf_pool *p);

/* Hands req to an idle worker; tag comes back with the result.  Returns
 * MD_OK, or MD_TEMPFAIL when no worker is idle, or MD_INTERNAL. */
MD_API md_status md_spf_pool_submit(md_spf_pool *p, const md_spf_request *req, void *tag, md_error *err);

/* Waits for the next finished evaluation and fills out (caller clears it
 * with md_spf_pool_result_clear).  Returns 1, or 0 when nothing is in flight or
 * the wait was interrupted by a signal while *cfg->cancel is set. */
MD_API int md_spf_pool_next(md_spf_pool *p, md_spf_pool_result *out);

#ifdef __cplusplus
}
#endif
#endif
