/*
 * lib/report prom: metrics in the Prometheus text exposition format, written
 * as a node_exporter textfile (its textfile collector reads *.prom files
 * from one directory on every scrape).
 *
 *  - metric families are declared once with their TYPE and HELP, and their
 *    samples are written together after those lines, in the order the
 *    families were declared, whatever order the samples were added in (the
 *    format requires one group per family);
 *  - metric and label names are checked against the format's grammar
 *    ([a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*); label values
 *    are escaped (backslash, double quote, newline) and may hold any UTF-8
 *    text: values from the network (host names, zone names) are sanitized
 *    first;
 *  - the file is written to a temporary file in the same directory, synced
 *    and renamed over the target, so the collector never reads half a file.
 *
 * Nothing here prints.  Not thread-safe: one md_prom per thread.
 */
#ifndef MAILDIAG_REPORT_PROM_H
#define MAILDIAG_REPORT_PROM_H

#include <stddef.h>
#include "base/base.h"
#include "base/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_prom_type { MD_PROM_GAUGE = 0, MD_PROM_COUNTER } md_prom_type;

typedef struct md_prom md_prom;

/* A new, empty set of metrics.  Caller frees with md_prom_free(). */
MD_API md_prom *md_prom_new(void);
MD_API void md_prom_free(md_prom *p);

/*
 * Declares a metric family.  Returns MD_OK, or MD_CONFIG when name is not a
 * valid metric name or was declared before (err says which).
 */
MD_API md_status md_prom_family(md_prom *p, const char *name, md_prom_type type, const char *help,
                                md_error *err);

/*
 * Adds a sample to the declared family name.  labels is NULL or a
 * NULL-terminated list of name, value pairs ("check", "spf", NULL); the
 * values are copied, sanitized and escaped.  value may be NaN or infinite
 * (written as NaN, +Inf, -Inf).  Returns MD_OK, or MD_CONFIG for an
 * undeclared family, a bad label name, or the same label set twice.
 */
MD_API md_status md_prom_sample(md_prom *p, const char *name, const char *const *labels, double value,
                                md_error *err);

/* Appends the whole exposition text to out.  Never fails. */
MD_API void md_prom_render(const md_prom *p, md_buf *out);

/*
 * Writes the exposition to path atomically: a temporary file in path's
 * directory (mode 0644), fsync, rename over path, fsync of the directory.
 * The temporary file does not end in ".prom", so the collector never reads
 * it.  Returns MD_OK, or MD_INTERNAL with err naming the file and the
 * system's reason (the target is then unchanged).
 */
MD_API md_status md_prom_write_file(const md_prom *p, const char *path, md_error *err);

#ifdef __cplusplus
}
#endif
#endif
