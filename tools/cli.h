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
    char **servers;       /* from --resolver, else MAILDIAG_RESOLVER */
    size_t nservers;
    double timeout;       /* seconds */
} cli_dns;

/* Adds one --resolver value (validated).  Returns 0, or -1 after printing
 * a usage error. */
int cli_dns_add_resolver(cli_dns *d, const char *prog, const char *spec);
/* Parses --timeout.  Returns 0, or -1 after printing a usage error. */
int cli_parse_timeout(const char *prog, const char *s, double *out);
/* Parses a positive integer option.  Returns 0, or -1 after a usage error. */
int cli_parse_uint(const char *prog, const char *opt, const char *s, unsigned max, unsigned *out);
/* Creates the resolver from the options (env MAILDIAG_RESOLVER when no
 * --resolver was given).  Prints the error and returns NULL on failure. */
md_dns *cli_dns_open(cli_dns *d, const char *prog, unsigned window);
void cli_dns_clear(cli_dns *d);

/* Prints "PROG: message\nTry 'PROG --help'." (the message sanitized: it
 * quotes what the user typed) and returns MD_EXIT_UNKNOWN. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* --help lines for the options above, so every tool words them alike. */
#define CLI_HELP_DNS \
    "  -r, --resolver IP[:PORT]  DNS server to ask (repeatable; IPv6 as [ADDR]:PORT);\n" \
    "                         default MAILDIAG_RESOLVER, else the system resolver\n" \
    "  -t, --timeout SECONDS  budget for each DNS query, retries included (default 5)\n"
#define CLI_HELP_COMMON \
    "  -h, --help             show this help\n" \
    "  -V, --version          show the version\n"

/* Progress line on stderr, only when stderr is a terminal. */
typedef struct cli_progress {
    int enabled;
    int64_t start_ms;
    int shown;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_update(cli_progress *p, const char *what, size_t started, size_t finished);
void cli_progress_end(cli_progress *p);

#endif

/* --- interruption and output errors (bulk runs) ---------------------------
 * cli_interrupt_install catches SIGINT and SIGTERM without SA_RESTART, so a
 * blocking wait returns: the first one sets cli_interrupted to the signal
 * number, and the tool ends its run at a complete result (see
 * md_bulk_config.cancel); a second one kills the process as usual. */
extern volatile sig_atomic_t cli_interrupted;
void cli_interrupt_install(void);
/* After an interrupted run: prints "PROG: interrupted by SIGINT after N
 * WHAT (...)" with the tally to stderr and returns 128 + the signal number
 * (130 for SIGINT, 143 for SIGTERM), the shell's convention. */
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
 * md_address_parse_len(opts).  Returns 0, or -1 after printing the error. */
int cli_address(const char *prog, const char *what, const char *text, unsigned opts, md_address *a);
/* Prints that error line for err, for a tool that parsed by itself. */
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
