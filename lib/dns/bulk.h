/*
 * lib/dns bulk: run a check over many items concurrently on one md_dns.
 *
 * At most `concurrency` checks are active; items are read lazily from an
 * md_input and each report is handed to the output callback as soon as its
 * check finishes (completion order, not input order), then freed, so memory
 * stays flat however many items there are.
 */
#ifndef MAILDIAG_DNS_BULK_H
#define MAILDIAG_DNS_BULK_H

#include <signal.h>
#include "base/input.h"
#include "dns/dns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A check reports back by calling done(done_arg, report) exactly once,
 * giving up ownership of the report; it may do so before it returns. */
typedef void (*md_check_done_fn)(void *done_arg, md_report *rep);
typedef void (*md_check_start_fn)(md_dns *dns, const char *item, void *check_arg,
                                  md_check_done_fn done, void *done_arg);

/* Called with each finished report (borrowed: freed after it returns).
 * Returning non-zero stops the run (e.g. a write error). */
typedef int (*md_bulk_output_fn)(void *arg, const md_report *rep);

/* Called about every progress_ms with items started and finished. */
typedef void (*md_bulk_progress_fn)(void *arg, size_t started, size_t finished);

typedef struct md_bulk_config {
    unsigned concurrency;          /* 0 = MD_BULK_CONCURRENCY_DEFAULT */
    md_check_start_fn start;
    void *check_arg;
    md_bulk_output_fn output;
    void *output_arg;
    md_bulk_progress_fn progress;  /* may be NULL */
    void *progress_arg;
    int progress_ms;               /* 0 = 200 */
    int ordered;                   /* 1: output in input order (holds finished
                                    * reports until earlier ones finish: for a
                                    * handful of items, not for bulk files) */
    const volatile sig_atomic_t *cancel;  /* may be NULL; when *cancel becomes
                                    * non-zero (a signal handler sets it), no
                                    * item starts, the checks in progress are
                                    * cancelled (md_dns_cancel) and their
                                    * reports dropped: the output ends with
                                    * the last complete report */
} md_bulk_config;

#define MD_BULK_CONCURRENCY_DEFAULT 2000

/* Counts of a run, for the caller's summary. */
typedef struct md_bulk_stats {
    size_t started;     /* items read and started */
    size_t output;      /* reports handed to the output callback */
} md_bulk_stats;

/* Runs every item of in through cfg->start.  Returns MD_OK, or MD_CONFIG
 * when the input could not be read (err says why; reports already written
 * stay written), MD_INTERNAL when the output callback stopped the run, or
 * MD_TEMPFAIL (stage "interrupted") when *cfg->cancel stopped it.  stats
 * may be NULL. */
MD_API md_status md_bulk_run(md_dns *dns, md_input *in, const md_bulk_config *cfg,
                             md_bulk_stats *stats, md_error *err);

#ifdef __cplusplus
}
#endif
#endif
