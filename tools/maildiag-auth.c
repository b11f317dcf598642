/*
 * maildiag-auth: a sending domain's whole authentication posture in one
 * command: DMARC, DKIM keys, MTA-STS, TLS-RPT, BIMI, SPF lint and the MX
 * route.  Over lib/auth, lib/spf, lib/mx, lib/dns, lib/report.  The manual
 * is maildiag-auth.1 beside this file.
 */
#include "config.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "auth/auth.h"

static const char *prog = "maildiag-auth";

typedef struct options {
    cli_dns dns;
    const char **selectors;
    size_t nselectors;
    int no_reset;
    cli_format format;
} options;

static void usage(void)
{
    printf("Usage: %s [OPTION]... DOMAIN...\n"
           "Check a sending domain's DMARC, DKIM, MTA-STS, TLS-RPT, BIMI, SPF and MX.\n"
           "Exit: 0 ok, 1 warning, 2 critical, 3 unknown.\n\n"
           "  -s, --dkim-selector S  DKIM selector to check (repeatable); default: probe\n"
           "                         MAILDIAG_DKIM_SELECTORS, else %s\n"
           "      --no-reset-mail    the domain sends no password-reset mail (p=none is ok)\n"
           "  -j, --json             one JSON object per domain, one per line\n"
           CLI_HELP_DNS
           CLI_HELP_COMMON, prog, MD_AUTH_DKIM_DEFAULT_SELECTORS);
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        { "dkim-selector", required_argument, NULL, 's' },
        { "no-reset-mail", no_argument, NULL, 'N' },
        { "json", no_argument, NULL, 'j' },
        { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:jr:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (*optarg == '\0' || strlen(optarg) > 200
                || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
                   != strlen(optarg))
                return cli_usage_error(prog, "bad DKIM selector '%s'", optarg), -1;
            o->selectors = md_xrealloc(o->selectors, (o->nselectors + 1) * sizeof *o->selectors);
            o->selectors[o->nselectors++] = optarg;
            break;
        case 'N': o->no_reset = 1; break;
        case 'j': o->format = CLI_JSON; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    if (optind >= argc)
        return cli_usage_error(prog, "no domain given"), -1;
    return 0;
}

int main(int argc, char **argv)
{
    options o = { .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    md_tally tally;
    md_dns *dns = NULL;
    int rc = MD_EXIT_UNKNOWN, werr = 0;

    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if ((dns = cli_dns_open(&o.dns, prog, 0)) == NULL)
        goto done;
    md_tally_init(&tally);
    /* The library words facts; the advice names our option. */
    md_auth_config cfg = { .selectors = o.selectors, .nselectors = o.nselectors,
                           .probe_selectors = getenv("MAILDIAG_DKIM_SELECTORS"),
                           .selector_advice = "give the selector your mail is signed with"
                                              " (--dkim-selector)",
                           .sends_reset = !o.no_reset };
    unsigned flags = md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE : MD_TEXT_EVIDENCE;
    for (int i = optind; i < argc; i++) {
        md_error err = { 0 };
        md_auth_result *res = NULL;
        int utf8 = md_utf8_valid(argv[i], strlen(argv[i]));
        md_report *rep = md_report_new(prog, utf8 ? argv[i] : "(not UTF-8)");
        if (md_auth_check(dns, argv[i], &cfg, &res, rep, &err) == MD_OK) {
            md_auth_describe(res, rep);
        } else {
            md_report_set(rep, "domain", json_string(utf8 ? argv[i] : "(not UTF-8)"));
            md_report_add(rep, "input.invalid_domain", MD_SEV_UNKNOWN, "%s",
                          utf8 ? err.text : "the domain is not valid UTF-8");
        }
        md_auth_result_free(res);
        md_tally_add(&tally, md_report_status(rep));
        if ((o.format == CLI_JSON ? md_report_write_json(rep, stdout)
                                  : md_report_write_text(rep, stdout, flags)) != 0)
            werr = 1;
        md_report_free(rep);
    }
    if (fflush(stdout) != 0 || werr) {
        cli_error(prog, "cannot write the results");
        goto done;
    }
    rc = md_severity_exit_code(tally.worst);
done:
    md_dns_free(dns);
    cli_dns_clear(&o.dns);
    free(o.selectors);
    return rc;
}
