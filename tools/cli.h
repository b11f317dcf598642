/*
 * tools/cli: what every maildiag tool's command line has in common:
 * resolver and timeout options, output format, progress line, usage errors.
 * Presentation only; the work is in lib/.
 */
#ifndef MAILDIAG_CLI_H
#define MAILDIAG_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <jansson.h>
#include "base/base.h"
#include "dns/dns.h"
#include "report/report.h"
#include "address/address.h"

#define MD_EXIT_OK 0
#define MD_EXIT_WARNING 1
#define MD_EXIT_CRITICAL 2
#define MD_EXIT_UNKNOWN 3

typedef enum { CLI_TEXT, CLI_JSON, CLI_PLUGIN } cli_format;

typedef struct cli_dns {
    char **servers;       /* from --resolver, else MAILDIAG_RESOLVER, else [dns] resolver */
    size_t nservers;
    double timeout;       /* seconds */
    int timeout_set;      /* --timeout was given (the configuration's does not apply) */
    char *conf_resolver;  /* [dns] resolver of the configuration (cli_config_dns) */
} cli_dns;

/* Adds one --resolver value (validated).  Returns 0, or -1 after printing
 * a usage error. */
int cli_dns_add_resolver(cli_dns *d, const char *prog, const char *spec);
/* Parses --timeout.  Returns 0, or -1 after printing a usage error. */
int cli_parse_timeout(const char *prog, const char *s, double *out);
/* Parses a positive integer option.  Returns 0, or -1 after a usage error. */
int cli_parse_uint(const char *prog, const char *opt, const char *s, unsigned max, unsigned *out);
/* Completes d->servers: without --resolver, the servers of MAILDIAG_RESOLVER,
 * else those of [dns] resolver in the configuration (else none: the system
 * resolver).  Returns 0, or -1 after cli_fail (config.error). */
int cli_dns_settle(cli_dns *d, const char *prog);
/* Creates the resolver from the options (cli_dns_settle first).  Reports
 * the error (cli_fail) and returns NULL on failure. */
md_dns *cli_dns_open(cli_dns *d, const char *prog, unsigned window);
void cli_dns_clear(cli_dns *d);

/* Prints "PROG: message\nTry 'PROG --help'." (the message sanitized: it
 * quotes what the user typed) and returns MD_EXIT_UNKNOWN.  After --json
 * was seen, also the usage.error object on standard output (cli_fail). */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The end of a run that produced no result: "PROG: message" on standard
 * error and, after --json was seen, the one JSON value of the run on
 * standard output:
 *   {"schema_version":1,"status":"unknown","findings":[{"id":ID,
 *    "severity":"unknown","summary":MESSAGE}]}
 * with ID input.invalid, store.error, config.error or usage.error.
 * Returns MD_EXIT_UNKNOWN.
 */
int cli_fail(const char *prog, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Set once --json is seen (cli_format_set): errors are JSON too
 * (cli_json_error).  A hook, so that the dispatcher, which only needs
 * usage errors, links no lib/report. */
extern void (*cli_json_hook)(const char *id, const char *msg);

/* Sets the output format from -j/--json or -p/--plugin.  Two different
 * formats are a usage error (no "last one wins").  Returns 0 or -1 after
 * the usage error. */
int cli_format_set(const char *prog, cli_format *f, cli_format want);

/*
 * Text output that quotes stored, user- or peer-supplied text goes through
 * these, so no control character reaches a terminal: each formats its
 * line, then passes it through md_sanitize_text (control characters,
 * TAB and LF included, and ill-formed UTF-8 become '?'; UTF-8 text stays),
 * then ends it with a newline.
 */
/* "PROG: message" on standard error. */
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line on out. */
void cli_line(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_vline(FILE *out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* One row of n fields separated by TABs, each sanitized (a NULL field is
 * empty), so a field can neither add a column nor a row. */
void cli_row(FILE *out, const char *const *fields, size_t n);
/* With --json a run prints exactly one JSON value, errors included: this
 * prints {"schema_version":1,"status":"unknown","findings":[{"id":ID,
 * "severity":"unknown","summary":MESSAGE}]} on standard output (ID from
 * the catalogue: usage.error, config.error, store.error, input.invalid)
 * and returns MD_EXIT_UNKNOWN.  The message is sanitized like every
 * finding's. */
int cli_json_error(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "PROG VERSION" and returns 0. */
int cli_version(const char *prog);

/* The getopt cases every tool shares, for a switch's default branch:
 * -h/--help (calls usage), -V/--version, a missing value and an unknown
 * option.  Returns 1 when the tool should exit 0 (help, version shown) and
 * -1 after a usage error. */
int cli_option_common(int c, const char *prog, char *const *argv, void (*usage)(void));

/* The DNS options -r/--resolver and -t/--timeout.  Returns 0 when c was one
 * of them and its value is good, -1 after a usage error, 1 when c is not a
 * DNS option (hand it to cli_option_common). */
int cli_dns_option(int c, const char *prog, const char *arg, cli_dns *d);

/* Both of the above for a switch's default branch: the DNS options, then the
 * shared ones.  Returns 0 to go on parsing, 1 to exit 0, -1 after a usage
 * error. */
int cli_option_default(int c, const char *prog, char *const *argv, cli_dns *d,
                       void (*usage)(void));

/* --help lines for the options above, so every tool words them alike
 * (maildiag(1) has the table of the options every tool shares). */
#define CLI_HELP_CONFIG \
    "  -C, --config FILE      configuration file (default MAILDIAG_CONFIG, else\n" \
    "                         /etc/maildiag.conf when it exists; /dev/null: none)\n"
#define CLI_HELP_DNS \
    "  -r, --resolver IP[:PORT]  DNS server to ask (repeatable; IPv6 as [ADDR]:PORT);\n" \
    "                         default MAILDIAG_RESOLVER, else [dns] resolver, else the\n" \
    "                         system resolver\n" \
    "  -t, --timeout SECONDS  budget for each DNS query, retries included (default 5)\n"
#define CLI_HELP_COMMON \
    "  -h, --help             show this help\n" \
    "  -V, --version          show the version\n"

/* Progress line on stderr, only when stderr is a terminal. */
typedef struct cli_progress {
    int enabled;
    int64_t start_ms, last_ms;
    int shown;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_update(cli_progress *p, const char *what, size_t started, size_t finished);
/* A progress line of the caller's words (at most ten a second). */
void cli_progress_text(cli_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_progress_end(cli_progress *p);

/* --- interruption and output errors (bulk runs) ---------------------------
 * cli_interrupt_install catches SIGINT and SIGTERM without SA_RESTART, so a
 * blocking wait returns: the first one sets cli_interrupted to the signal
 * number, and the tool ends its run at a complete result (see
 * md_bulk_config.cancel); a second one kills the process as usual. */
extern volatile sig_atomic_t cli_interrupted;
void cli_interrupt_install(void);
/* After an interrupted run: prints "PROG: interrupted by SIGINT after N
 * WHAT (...)" with the tally (when t is not NULL) to stderr and returns 128
 * + the signal number (130 for SIGINT, 143 for SIGTERM), the shell's
 * convention. */
int cli_interrupt_exit(const char *prog, const char *what, size_t done, const md_tally *t);

/* Call when writing the results to stdout failed, with the errno of the
 * failed call.  When the reader went away (EPIPE: `| head -1`), the process
 * ends quietly by SIGPIPE, as cat and grep do.  Otherwise prints "PROG:
 * cannot write the results: REASON" and returns MD_EXIT_UNKNOWN. */
int cli_write_failed(const char *prog, int errnum);

/* --- the program's own directory -------------------------------------------
 * Writes the directory holding the running executable (from
 * /proc/self/exe) to dir, or "" when it is unknown or does not fit.  In a
 * libtool build tree that is the .libs/ directory, whose parent holds the
 * siblings (the other tools, the helpers): the parent is written then. */
void cli_self_dir(char *dir, size_t size);
/* The path of the internal helper program name: beside this program when
 * it is there (a build tree: tests, distcheck), else in the configured
 * libexec directory (an installed tool is in bindir, the helpers are not).
 * A static buffer. */
const char *cli_helper_path(const char *name);

/* --- secrets (maildiag-send, maildiag-token) -------------------------------
 * Reads a secret (password, token state) from path ("-" = standard input),
 * without its final newline.  A file readable by other users is refused
 * (like msmtp's password files).  Returns a new string (free with
 * cli_secret_free, which wipes it), or NULL after printing the error. */
char *cli_read_secret_file(const char *prog, const char *what, const char *path);
void cli_secret_free(char *s);

/* --- addresses (lib/address): every tool answers alike ---------------------
 * A bad address is reported as "PROG: [WHAT ]'TEXT': not a valid email
 * address: REASON" on standard error (TEXT sanitized and cut at 200
 * octets), and the tool exits MD_EXIT_UNKNOWN. */
/* Parses text, given as WHAT ("--from"; NULL for an operand), with
 * md_address_parse_len(opts).  Returns 0, or -1 after ending the run with
 * that error (cli_fail: input.invalid). */
int cli_address(const char *prog, const char *what, const char *text, unsigned opts, md_address *a);
/* Prints that error line for err, for a tool that parsed by itself and
 * reports the address in its own result (stderr only). */
void cli_address_error(const char *prog, const char *what, const char *text, const md_error *err);
/* Prints "PROG: note: [WHAT ]'MAILBOX': NOTE" on standard error for each
 * flag of a in mask (MD_ADDRESS_CHANGED, MD_ADDRESS_UNUSUAL ...). */
void cli_address_notes(const char *prog, const char *what, const md_address *a, unsigned mask);
/* Adds the findings for a's flags to rep: address.trimmed when input
 * handling removed something, address.unusual for each unusual flag (both
 * severity ok: they inform, they do not change the exit code). */
void cli_address_findings(md_report *rep, const md_address *a);

/* Stored text as a JSON string: kept exactly when it is well-formed UTF-8
 * (JSON escapes its control characters), else sanitized (json_string
 * refuses it, and a row would vanish).  NULL gives JSON null. */
json_t *cli_json_text(const char *s);

/* --- the configuration file (every tool: -C, --config) ----------------------
 * One file for every tool, each reading what it needs: [dns] (every tool
 * that asks DNS), [store], [product], [selfcheck] (maildiag-user,
 * maildiag-selfcheck), [mail] and [token] (maildiag-send and the account
 * emails: tools/cli-send.h), [token] (maildiag-token).  An option given on
 * the command line wins over the environment, which wins over the file. */
#include "base/conf.h"
#define CLI_CONFIG_DEFAULT "/etc/maildiag.conf"

/* Loads path (from -C), else MAILDIAG_CONFIG, else CLI_CONFIG_DEFAULT.
 * "/dev/null" is no file.  A missing default file is no error (*out NULL);
 * a missing file that was named is.  Returns 0 with *out (caller frees with
 * md_conf_free; NULL without a file), or -1 after cli_fail (config.error).
 * *used_path (may be NULL) receives the path read, or NULL. */
int cli_config_load(const char *prog, const char *path, md_conf **out, const char **used_path);
/* A value of the configuration, or NULL when unset or empty. */
const char *cli_conf(const md_conf *c, const char *section, const char *key);
/* [dns] resolver (the servers, as for --resolver) and timeout (seconds)
 * as defaults of d.  Returns 0, or -1 after cli_fail (config.error). */
int cli_config_dns(const char *prog, const md_conf *c, cli_dns *d);
/* --show-config: "config = PATH" (or "(none)") and the DNS settings in
 * effect, one "key = value" line each. */
void cli_show_config(FILE *out, const md_conf *c, cli_dns *d, const char *prog);
/* A number of seconds in (0, max] from section/key into *out (unchanged
 * when unset).  Returns 0, or -1 after cli_fail (config.error). */
int cli_conf_seconds(const char *prog, const md_conf *c, const char *section, const char *key,
                     double max, double *out);
/* "yes" or "no" from section/key into *out (unchanged when unset).  Returns
 * 0, or -1 after cli_fail (config.error). */
int cli_conf_bool(const char *prog, const md_conf *c, const char *section, const char *key, int *out);

/* --- the monitoring-plugin output (-p, --plugin; -w, --warning; -c, --critical)
 * One status line as the monitoring-plugins guidelines give it:
 *   LABEL STATE - TEXT | 'label'=value[UOM];[warn];[crit];[min];[max] ...
 * TEXT names the first finding of the state shown (after its subject,
 * unless the summary starts with it), with the count of subjects in that
 * state: "parked.example publishes a null MX ... (1 of 2 domains
 * critical)". */

/* A threshold range (monitoring-plugins: "10" alerts outside 0..10, "10:"
 * below 10, "~:10" above 10, "10:20" outside, "@10:20" inside). */
typedef struct cli_range {
    const char *text;    /* as given; NULL when no threshold was given */
    int inside;          /* '@': alert inside the range */
    double lo, hi;       /* -INFINITY / INFINITY for an open end */
} cli_range;

/* Parses text for opt (-w or -c).  Returns 0, or -1 after a usage error. */
int cli_range_parse(const char *prog, const char *opt, const char *text, cli_range *r);
/* Whether v raises the alert of r (0 when r is not set). */
int cli_range_alert(const cli_range *r, double v);

typedef struct cli_plugin {
    const char *label;         /* "MX" */
    const char *noun, *nouns;  /* "domain", "domains" */
    md_tally tally;
    char first[4][512];        /* per severity: the first finding, "SUBJECT: SUMMARY" */
    cli_range warn, crit;      /* -w, -c */
    const char *measure;       /* what the thresholds measure ("time", "lookups"), or NULL */
} cli_plugin;

/* Zeroes p for label and its subjects' nouns. */
void cli_plugin_init(cli_plugin *p, const char *label, const char *noun, const char *nouns);
/* Counts one result, keeping its first finding of its status. */
void cli_plugin_add(cli_plugin *p, const md_report *rep);

/* One performance datum. */
typedef struct cli_perf {
    const char *label;
    double value;
    const char *uom;           /* "s", "" ... */
    int integer;               /* write the value without decimals */
    const char *warn, *crit;   /* ranges as given, or NULL */
    const char *min, *max;     /* or NULL */
} cli_perf;

/*
 * Writes the status line: the state is the worst of the results and of
 * the thresholds applied to measured (when p->measure is set); the
 * perfdata are the counts (nouns, critical, warning, unknown, ok) and then
 * perf[0..nperf).  An empty tally is UNKNOWN ("no domains checked").
 * Returns the exit code of the state written, or cli_write_failed's.
 */
int cli_plugin_finish(const char *prog, cli_plugin *p, double measured, const cli_perf *perf,
                      size_t nperf);

/* -w/-c given without --plugin: a usage error (the thresholds change the
 * status only in the plugin line).  Returns 0 or -1. */
int cli_plugin_check(const char *prog, cli_format f, const cli_plugin *p);

#endif
