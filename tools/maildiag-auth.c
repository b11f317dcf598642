/*
 * maildiag-auth: a sending domain's whole authentication posture in one
 * command: DMARC, DKIM keys, MTA-STS, TLS-RPT, BIMI, SPF lint and the MX
 * route.  Over lib/auth, lib/spf, lib/mx, lib/dns, lib/report.  The manual
 * is maildiag-auth.1 beside this file.
 */
#include "config.h"

#include <errno.h>
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
    int no_reset, quiet, show_config;
    cli_format format;
    const char *config_path;
} options;

static void usage(void)
{
    printf("Usage: %s [OPTION]... DOMAIN...\n"
           "Check a sending domain's DMARC, DKIM, MTA-STS, TLS-RPT, BIMI, SPF and MX.\n"
           "Exit: 0 ok, 1 warning, 2 critical, 3 unknown.\n\n"
           "      --dkim-selector S  DKIM selector to check (repeatable); default: probe\n"
           "                         MAILDIAG_DKIM_SELECTORS, else %s\n"
           "      --no-reset-mail    the domain sends no password-reset mail (p=none is ok)\n"
           "  -j, --json             one JSON object per domain, one per line\n"
           "  -p, --plugin           one monitoring-plugin status line with perfdata\n"
           "  -q, --quiet            show only domains with problems\n"
           CLI_HELP_DNS
           CLI_HELP_CONFIG
           "      --show-config      show the settings in effect and exit\n"
           CLI_HELP_COMMON, prog, MD_AUTH_DKIM_DEFAULT_SELECTORS);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_SELECTOR = 256, O_NORESET, O_SHOW };
    static const struct option longopts[] = {
        { "dkim-selector", required_argument, NULL, O_SELECTOR },
        { "no-reset-mail", no_argument, NULL, O_NORESET },
        { "json", no_argument, NULL, 'j' },
        { "plugin", no_argument, NULL, 'p' },
        { "quiet", no_argument, NULL, 'q' },
        { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'C' },
        { "show-config", no_argument, NULL, O_SHOW },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":jpqr:t:C:hV", longopts, NULL)) != -1) {
        switch (c) {
        case O_SELECTOR:
            if (*optarg == '\0' || strlen(optarg) > 200
                || strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
                   != strlen(optarg))
                return cli_usage_error(prog, "bad DKIM selector '%s'", optarg), -1;
            o->selectors = md_xrealloc(o->selectors, (o->nselectors + 1) * sizeof *o->selectors);
            o->selectors[o->nselectors++] = optarg;
            break;
        case O_NORESET: o->no_reset = 1; break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case 'p': if (cli_format_set(prog, &o->format, CLI_PLUGIN) != 0) return -1; break;
        case 'q': o->quiet = 1; break;
        case 'C': o->config_path = optarg; break;
        case O_SHOW: o->show_config = 1; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    if (optind >= argc && !o->show_config)
        return cli_usage_error(prog, "no domain given"), -1;
    return 0;
}

/* Checks one domain into a new report (caller frees). */
static md_report *check(md_dns *dns, const char *domain, const md_auth_config *cfg)
{
    md_error err = { 0 };
    md_auth_result *res = NULL;
    int utf8 = md_utf8_valid(domain, strlen(domain));
    md_report *rep = md_report_new(prog, utf8 ? domain : "(not UTF-8)");
    if (md_auth_check(dns, domain, cfg, &res, rep, &err) == MD_OK) {
        md_auth_describe(res, rep);
    } else {
        md_report_set(rep, "domain", json_string(utf8 ? domain : "(not UTF-8)"));
        md_report_add(rep, "input.invalid_domain", MD_SEV_UNKNOWN, "%s",
                      utf8 ? err.text : "the domain is not valid UTF-8");
    }
    md_auth_result_free(res);
    return rep;
}

int main(int argc, char **argv)
{
    options o = { .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    cli_plugin plugin;
    md_dns *dns = NULL;
    md_conf *conf = NULL;
    int rc = MD_EXIT_UNKNOWN;

    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if (cli_config_load(prog, o.config_path, &conf, NULL) != 0 || cli_config_dns(prog, conf, &o.dns) != 0)
        goto done;
    if (o.show_config) {
        cli_show_config(stdout, conf, &o.dns, prog);
        rc = fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
        goto done;
    }
    if ((dns = cli_dns_open(&o.dns, prog, 0)) == NULL)
        goto done;
    cli_plugin_init(&plugin, "AUTH", "domain", "domains");
    /* The library words facts; the advice names our option. */
    md_auth_config cfg = { .selectors = o.selectors, .nselectors = o.nselectors,
                           .probe_selectors = getenv("MAILDIAG_DKIM_SELECTORS"),
                           .selector_advice = "give the selector your mail is signed with"
                                              " (--dkim-selector)",
                           .sends_reset = !o.no_reset };
    unsigned flags = md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE : MD_TEXT_EVIDENCE;
    for (int i = optind; i < argc; i++) {
        md_report *rep = check(dns, argv[i], &cfg);
        md_severity st = md_report_status(rep);
        cli_plugin_add(&plugin, rep);
        errno = 0;
        int w = o.format == CLI_PLUGIN || (o.quiet && st == MD_SEV_OK) ? 0
              : o.format == CLI_JSON ? md_report_write_json(rep, stdout) : md_report_write_text(rep, stdout, flags);
        md_report_free(rep);
        if (w != 0 || fflush(stdout) != 0) {
            rc = cli_write_failed(prog, errno);
            goto done;
        }
    }
    rc = o.format == CLI_PLUGIN ? cli_plugin_finish(prog, &plugin, 0, NULL, 0)
                                : md_severity_exit_code(plugin.tally.worst);
done:
    md_dns_free(dns);
    md_conf_free(conf);
    cli_dns_clear(&o.dns);
    free(o.selectors);
    return rc;
}
