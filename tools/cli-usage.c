/* tools/cli-usage: usage errors and --version, apart from the rest of
 * tools/cli so that a program that needs only these (the dispatcher) does
 * not link lib/dns and load c-ares (the tools link --as-needed). */
#include "config.h"
#include "cli.h"

#include <getopt.h>

#include <stdarg.h>
#include <stdio.h>

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
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
