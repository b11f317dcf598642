/*
 * lib/report: severities, the findings catalogue, reports and their renderers
 * (human text, JSON, monitoring-plugin line).
 *
 * A report is what one check of one subject (a domain, an address, a send)
 * found: a list of findings plus structured data (a JSON object) and human
 * detail lines.  Its status is the worst severity of its findings.
 */
#ifndef MAILDIAG_REPORT_H
#define MAILDIAG_REPORT_H

#include <stdio.h>
#include <stddef.h>
#include <jansson.h>
#include "base/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The numeric values are the monitoring-plugin exit codes. */
typedef enum md_severity {
    MD_SEV_OK = 0,
    MD_SEV_WARNING = 1,
    MD_SEV_CRITICAL = 2,
    MD_SEV_UNKNOWN = 3,
    MD_SEV_DEFAULT = -1   /* md_report_add: take the catalogue's severity */
} md_severity;

/* "ok", "warning", "critical", "unknown". */
MD_API const char *md_severity_name(md_severity sev);
/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
MD_API const char *md_severity_label(md_severity sev);
/* The ANSI colour that starts text of severity sev where flags has
 * MD_TEXT_COLOR (green, yellow, red, magenta for unknown), else "". */
MD_API const char *md_severity_color(md_severity sev, unsigned flags);
/* Parses a name as above (case-insensitive); returns -1 when unknown. */
MD_API int md_severity_parse(const char *name);
/* The worse of a and b, ranked critical > warning > unknown > ok
 * (the order monitoring-plugins use). */
MD_API md_severity md_severity_worst(md_severity a, md_severity b);
/* The process exit code for a severity: 0, 1, 2, 3. */
MD_API int md_severity_exit_code(md_severity sev);

/* The catalogue: every finding id maildiag can emit, with its default
 * severity and a title.  The key that JSON consumers and man pages use. */
typedef struct md_catalogue_entry {
    const char *id;
    md_severity severity;
    const char *title;
} md_catalogue_entry;

/* Returns the entry for id, or NULL.  Borrowed, static. */
MD_API const md_catalogue_entry *md_catalogue_find(const char *id);
/* Returns the whole catalogue; *n receives its length.  Borrowed, static. */
MD_API const md_catalogue_entry *md_catalogue_all(size_t *n);

typedef struct md_finding {
    char *id;
    md_severity severity;
    char *summary;      /* one line, plain words */
    char **evidence;    /* raw records, transcript lines (sanitized) */
    size_t nevidence;
} md_finding;

typedef struct md_report md_report;

/* New empty report for tool about subject (e.g. the domain; NULL for "",
 * to be set with md_report_set_subject).  Both strings are copied.  Caller
 * frees with md_report_free(). */
MD_API md_report *md_report_new(const char *tool, const char *subject);
MD_API void md_report_free(md_report *rep);

/*
 * Adds a finding.  id must be in the catalogue (an unknown id is recorded
 * with severity unknown and "internal: unknown finding id" evidence, so a
 * bug shows instead of vanishing).  sev MD_SEV_DEFAULT takes the catalogue's
 * severity.  Returns the finding, borrowed; valid until the next add or free.
 */
MD_API md_finding *md_report_add(md_report *rep, const char *id, md_severity sev,
                                 const char *fmt, ...)
           __attribute__((format(printf, 4, 5)));
/* Appends one evidence line (sanitized) to f. */
MD_API void md_finding_add_evidence(md_finding *f, const char *fmt, ...)
           __attribute__((format(printf, 2, 3)));

/* Adds a copy of every finding of from to rep, in order (a check that
 * runs another module's check, such as lib/auth running lib/mx, reports
 * both in one list). */
MD_API void md_report_add_findings(md_report *rep, const md_report *from);

/* Appends a human detail line (shown indented under the subject in text
 * output, before the findings). */
MD_API void md_report_add_detail(md_report *rep, const char *fmt, ...)
           __attribute__((format(printf, 2, 3)));

/* Sets a structured field of the JSON object (steals val; a NULL val is
 * ignored).  Keys "tool", "schema_version", "status" and "findings" are
 * reserved.  A field set again keeps its place. */
MD_API void md_report_set(md_report *rep, const char *key, json_t *val);

/* Replaces the subject (copied, sanitized): for a module that describes
 * its result into a report the caller made before the subject was known. */
MD_API void md_report_set_subject(md_report *rep, const char *subject);

/* The structured fields set with md_report_set, as one JSON object in the
 * order they were set.  Borrowed: valid until the next md_report_set or
 * md_report_free (json_incref it to keep it). */
MD_API json_t *md_report_fields(const md_report *rep);

/* Borrowed accessors. */
MD_API const char *md_report_subject(const md_report *rep);
MD_API size_t md_report_count(const md_report *rep);
MD_API const md_finding *md_report_get(const md_report *rep, size_t i);
MD_API int md_report_has(const md_report *rep, const char *id);

/* Worst severity over the findings; MD_SEV_OK when there are none. */
MD_API md_severity md_report_status(const md_report *rep);

/* The report as a new JSON object: {"schema_version", fields set with
 * md_report_set in order, "status", "findings": [...]}, what
 * md_report_append_json writes, read back.  Caller decrefs.  Returns NULL
 * only when a field holds something JSON cannot (a non-finite real). */
MD_API json_t *md_report_to_json(const md_report *rep);

/* Appends v as compact JSON, byte for byte what json_dumpb(v, ...,
 * JSON_COMPACT) writes (object keys in insertion order; docs/LIBRARIES.md,
 * "jansson"), without jansson's
 * per-character callbacks: bulk tools render every result this way.
 * Strings and numbers are written by lib/base's JSON writer (base/buf.h),
 * which escapes DEL and the C1 controls that jansson writes raw.  Returns
 * 0, or -1 (b unchanged) when v holds something jansson would refuse (a
 * non-finite real). */
MD_API int md_json_append(md_buf *b, const json_t *v);

#define MD_TEXT_COLOR    0x1u   /* ANSI colours (callers decide: TTY, NO_COLOR) */
#define MD_TEXT_EVIDENCE 0x2u   /* show evidence lines */

/* Writes the report as human text.  Returns 0, or -1 on a write error. */
MD_API int md_report_write_text(const md_report *rep, FILE *out, unsigned flags);
/* One line of text output from fmt (at most 2047 bytes), sanitized
 * (md_sanitize_text: peers' words and stored text reach it, and no control
 * character may reach a terminal), then a newline. */
MD_API void md_text_line(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The one JSON renderer of reports: appends the report to b as one line of
 * compact JSON, newline included: {"schema_version":1, the fields in the
 * order they were set, "status", "findings":[{"id","severity","summary"
 * [,"evidence":[...]]}]}, escaped as md_json_append escapes.  Returns 0, or
 * -1 when a field holds something JSON cannot (a non-finite real), which
 * is then written as null.  md_report_write_json, md_report_to_json and
 * the SPF pool's workers all render through it.
 */
MD_API int md_report_append_json(const md_report *rep, md_buf *b);
/* The end of that line, from the comma after the last field: ,"status":
 * ...,"findings":[...]}, and the newline.  For a bulk writer that appends
 * "{\"schema_version\":1" and its fields itself, escaped with
 * md_json_append_string as md_report_append_json would, and must give the
 * same bytes. */
MD_API void md_report_append_json_end(const md_report *rep, md_buf *b);
/* md_report_append_json to a stream.  Returns 0, or -1 on a write error or
 * an unwritable field (nothing is written then). */
MD_API int md_report_write_json(const md_report *rep, FILE *out);

/* Counts over many reports, for the summary and the plugin line. */
typedef struct md_tally {
    unsigned long n[4];          /* indexed by md_severity */
    md_severity worst;
} md_tally;

MD_API void md_tally_init(md_tally *t);
MD_API void md_tally_add(md_tally *t, md_severity sev);
MD_API unsigned long md_tally_total(const md_tally *t);

/*
 * Writes the monitoring-plugin status line:
 *   "LABEL STATE - text | perf1=... perf2=..."
 * summary and perfdata are caller text (perfdata may be NULL).
 */
MD_API int md_plugin_write(FILE *out, const char *label, md_severity state,
                           const char *summary, const char *perfdata);

/* Whether colour should be used on this stream: a TTY, NO_COLOR unset or
 * empty, and TERM not "dumb". */
MD_API int md_color_wanted(FILE *out);

#ifdef __cplusplus
}
#endif
#endif
