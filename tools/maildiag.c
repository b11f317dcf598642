/*
 * maildiag: the dispatcher.  "maildiag mx example.com" runs maildiag-mx;
 * "maildiag" alone lists the tools.  It looks for maildiag-NAME beside
 * itself first (so a build tree or a private prefix works), then on PATH.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const struct tool {
    const char *name;
    const char *what;
} tools[] = {
    { "why", "why an email to an address does not arrive: the first broken layer, in one diagnosis" },
    { "health", "our own sending setup from cron and monitoring: plugin line, JSON, Prometheus" },
    { "mx", "where mail for a domain goes (MX, null MX, implicit MX) and whether it resolves" },
    { "spf", "SPF (RFC 7208): evaluate mail from an address, or lint a domain's record" },
    { "auth", "a sending domain's DMARC, DKIM, MTA-STS, TLS-RPT, BIMI, SPF and MX" },
    { "send", "send the verify/reset/username email now and show the server's answer" },
    { "token", "check (or issue) the signed token of a verify or reset link" },
    { "user", "the accounts behind an address and the states that stop the product's emails" },
    { "selfcheck", "self-service help for a missing email that never tells whether an account exists" },
};

static void list_tools(FILE *out)
{
    fprintf(out, "Usage: maildiag TOOL [ARG]...   (maildiag TOOL --help for a tool's options)\n\n"
                 "Tools:\n");
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++)
        fprintf(out, "  %-10s %s\n", tools[i].name, tools[i].what);
}

int main(int argc, char **argv)
{
    char path[PATH_MAX], dir[PATH_MAX], name[64];

    if (argc < 2) {
        list_tools(stdout);
        return 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        list_tools(stdout);
        return 0;
    }
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "-V") == 0)
        return cli_version("maildiag");
    if (sub[0] == '-')
        return cli_usage_error("maildiag", "unknown option '%s' (maildiag takes a TOOL name first)",
                               sub);
    if (strlen(sub) > 32 || strspn(sub, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(sub)) {
        cli_error("maildiag", "'%s' is not a tool name", sub);
        fputc('\n', stderr);
        list_tools(stderr);
        return MD_EXIT_UNKNOWN;
    }
    snprintf(name, sizeof name, "maildiag-%s", sub);
    argv[1] = name;

    cli_self_dir(dir, sizeof dir);
    if (dir[0] && (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path
        && access(path, X_OK) == 0)
        execv(path, argv + 1);
    execvp(name, argv + 1);
    if (errno == ENOENT) {
        fprintf(stderr, "maildiag: no tool '%s'\n\n", sub);
        list_tools(stderr);
    } else {
        fprintf(stderr, "maildiag: cannot run %s: %s\n", name, strerror(errno));
    }
    return MD_EXIT_UNKNOWN;
}
