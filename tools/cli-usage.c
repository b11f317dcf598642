/* tools/cli-usage: usage errors and --version, apart from the rest of
 * tools/cli so that a program that needs only these (the dispatcher) does
 * not link lib/dns and load c-ares (the tools link --as-needed). */
#include "config.h"
#include "cli.h"

#include <getopt.h>

#include <stdarg.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>

void cli_vline(FILE *out, const char *fmt, va_list ap)
{
    char small[1024];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        n = 0;
    char *line = (size_t)n < sizeof small ? small : md_xmalloc((size_t)n + 1);
    if (line != small)
        vsnprintf(line, (size_t)n + 1, fmt, ap);
    md_sanitize_text(line, (size_t)n + 1, line, (size_t)n, 0);
    fputs(line, out);
    fputc('\n', out);
    if (line != small)
        free(line);
}

void cli_line(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vline(out, fmt, ap);
    va_end(ap);
}

static void vprefixed(const char *prog, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vprefixed(const char *prog, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void vprefixed(const char *prog, const char *fmt, va_list ap)
{
    char small[1024];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        n = 0;
    char *msg = (size_t)n < sizeof small ? small : md_xmalloc((size_t)n + 1);
    if (msg != small)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    cli_line(stderr, "%s: %s", prog, msg);
    if (msg != small)
        free(msg);
}

void cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprefixed(prog, fmt, ap);
    va_end(ap);
}

void cli_row(FILE *out, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i] ? fields[i] : "";
        char *clean = md_sanitize_dup(f, strlen(f));
        fputs(clean, out);
        fputc(i + 1 < n ? '\t' : '\n', out);
        free(clean);
    }
}

void (*cli_json_hook)(const char *id, const char *msg);

/* The message, formatted and sanitized, to stderr (and to the JSON error
 * object when --json was seen). */
static void vfail(const char *prog, const char *id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vfail(const char *prog, const char *id, const char *fmt, va_list ap)
{
    char small[1024];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        n = 0;
    char *msg = (size_t)n < sizeof small ? small : md_xmalloc((size_t)n + 1);
    if (msg != small)
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    md_sanitize_text(msg, (size_t)n + 1, msg, (size_t)n, 0);
    cli_line(stderr, "%s: %s", prog, msg);
    if (cli_json_hook)
        cli_json_hook(id, msg);
    if (msg != small)
        free(msg);
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(prog, "usage.error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    return MD_EXIT_UNKNOWN;
}

int cli_fail(const char *prog, const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(prog, id, fmt, ap);
    va_end(ap);
    return MD_EXIT_UNKNOWN;
}

int cli_version(const char *prog)
{
    printf("%s (maildiag) %s\n", prog, md_version());
    return MD_EXIT_OK;
}

int cli_option_common(int c, const char *prog, char *const *argv, void (*usage)(void))
{
    switch (c) {
    case 'h':
        usage();
        return 1;
    case 'V':
        cli_version(prog);
        return 1;
    case ':':
        cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
        return -1;
    default:
        cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
        return -1;
    }
}
