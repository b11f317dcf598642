/*
 * maildiag-mx: where does mail for DOMAIN go, and is that route healthy?
 * RFC 5321 section 5.1 routing and RFC 7505 null MX, over lib/dns, lib/mx,
 * lib/report.  The manual is maildiag-mx.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "base/input.h"
#include "dns/bulk.h"
#include "mx/mx.h"

static const char *prog = "maildiag-mx";

typedef struct options {
    cli_dns dns;
    char **files;
    size_t nfiles;
    unsigned concurrency;
    cli_format format;
    cli_plugin plugin;         /* --plugin: the status line; -w/-c: the run's time in seconds */
    const char *config_path;
    int quiet, show_config;
} options;

typedef struct run {
    const options *o;
    cli_plugin *plugin;       /* o's, counting the results for --plugin */
    md_tally tally;
    unsigned text_flags;
    cli_progress progress;
    int write_errno;          /* errno of the failed write, when one failed */
} run;

static void usage(void)
{
    printf("Usage: %s [OPTION]... DOMAIN...\n"
           "Check where mail for each DOMAIN goes (MX, null MX, implicit MX) and whether\n"
           "every MX host resolves.  Exit: 0 ok, 1 warning, 2 critical, 3 unknown.\n\n"
           "  -f, --file FILE        read domains from FILE, one a line ('-' = stdin, '#' comments)\n"
           "      --concurrency N    domains checked at once (default %d)\n"
           "  -j, --json             one JSON object per domain, one per line\n"
           "  -p, --plugin           one monitoring-plugin status line with perfdata\n"
           "  -w, --warning RANGE    --plugin: warning when the run's time in seconds is outside\n"
           "                         RANGE (monitoring-plugins ranges: 2 is 0..2)\n"
           "  -c, --critical RANGE   --plugin: the same for critical\n"
           CLI_HELP_DNS
           CLI_HELP_CONFIG
           "      --show-config      show the settings in effect and exit\n"
           "  -q, --quiet            show only domains with problems\n"
           CLI_HELP_COMMON, prog, MD_BULK_CONCURRENCY_DEFAULT);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_CONCURRENCY = 256, O_SHOW };
    static const struct option longopts[] = {
        { "file", required_argument, NULL, 'f' },
        { "concurrency", required_argument, NULL, O_CONCURRENCY },
        { "json", no_argument, NULL, 'j' },
        { "plugin", no_argument, NULL, 'p' },
        { "warning", required_argument, NULL, 'w' },
        { "critical", required_argument, NULL, 'c' },
        { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'C' },
        { "show-config", no_argument, NULL, O_SHOW },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:jpw:c:r:t:C:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->files = md_xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
            o->files[o->nfiles++] = optarg;
            break;
        case O_CONCURRENCY:
            if (cli_parse_uint(prog, "--concurrency", optarg, 1000000, &o->concurrency) != 0)
                return -1;
            break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case 'p': if (cli_format_set(prog, &o->format, CLI_PLUGIN) != 0) return -1; break;
        case 'w': if (cli_range_parse(prog, "-w", optarg, &o->plugin.warn) != 0) return -1; break;
        case 'c': if (cli_range_parse(prog, "-c", optarg, &o->plugin.crit) != 0) return -1; break;
        case 'C': o->config_path = optarg; break;
        case O_SHOW: o->show_config = 1; break;
        case 'q': o->quiet = 1; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    if (optind >= argc && o->nfiles == 0 && !o->show_config) {
        cli_usage_error(prog, "no domain given (give DOMAIN... or --file FILE)");
        return -1;
    }
    return cli_plugin_check(prog, o->format, &o->plugin);
}

static int output(void *arg, const md_report *rep)
{
    run *r = arg;
    md_severity st = md_report_status(rep);
    md_tally_add(&r->tally, st);
    if (r->o->format == CLI_PLUGIN)
        cli_plugin_add(r->plugin, rep);
    if (r->o->format == CLI_PLUGIN || (r->o->quiet && st == MD_SEV_OK))
        return 0;
    cli_progress_end(&r->progress);
    errno = 0;
    int w = r->o->format == CLI_JSON ? md_report_write_json(rep, stdout)
                                     : md_report_write_text(rep, stdout, r->text_flags);
    if (w != 0)
        r->write_errno = errno ? errno : EIO;
    return w;
}

static void progress(void *arg, size_t started, size_t finished)
{
    run *r = arg;
    cli_progress_update(&r->progress, "domains", started, finished);
}

int main(int argc, char **argv)
{
    options o = { .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    run r = { .o = &o, .plugin = &o.plugin };
    md_conf *conf = NULL;
    md_error err = { 0 };
    md_input *in = NULL;
    md_dns *dns = NULL;
    int rc = MD_EXIT_UNKNOWN;

    cli_plugin_init(&o.plugin, "MX", "domain", "domains");
    o.plugin.measure = "time";
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
    md_tally_init(&r.tally);
    cli_progress_init(&r.progress);
    r.text_flags = md_color_wanted(stdout) ? MD_TEXT_COLOR : 0;
    in = md_input_new(argv + optind, (size_t)(argc - optind), o.files, o.nfiles);

    md_mx_options mo = { .no_details = o.format != CLI_TEXT };
    md_bulk_config bc = {
        .concurrency = o.concurrency, .start = md_mx_check, .check_arg = &mo,
        .output = output, .output_arg = &r, .progress = progress, .progress_arg = &r,
        .ordered = o.nfiles == 0,   /* a few names typed by hand: keep their order */
        .cancel = &cli_interrupted,
    };
    md_bulk_stats bs;
    cli_interrupt_install();
    int64_t t0 = md_now_ms();
    md_status st = md_bulk_run(dns, in, &bc, &bs, &err);
    cli_progress_end(&r.progress);
    if (st == MD_TEMPFAIL && cli_interrupted) {
        fflush(stdout);
        rc = cli_interrupt_exit(prog, "domains", bs.output, &r.tally);
        goto done;
    }
    errno = 0;
    if (st == MD_INTERNAL || fflush(stdout) != 0) {
        rc = cli_write_failed(prog, r.write_errno ? r.write_errno : errno);
        goto done;
    }
    if (st != MD_OK) {
        cli_fail(prog, "input.invalid", "%s", err.text);
        goto done;
    }
    if (o.format == CLI_PLUGIN) {   /* the state of the line, thresholds included */
        double secs = (double)(md_now_ms() - t0) / 1000.0;
        cli_perf time = { .label = "time", .value = secs, .uom = "s", .warn = o.plugin.warn.text,
                          .crit = o.plugin.crit.text, .min = "0" };
        rc = cli_plugin_finish(prog, &o.plugin, secs, &time, 1);
        goto done;
    }
    if (md_tally_total(&r.tally) == 0) {
        /* Nothing checked is not a healthy result. */
        cli_fail(prog, "input.invalid", "no domains checked: the input held none");
        goto done;
    }
    rc = md_severity_exit_code(r.tally.worst);
done:
    md_input_free(in);
    md_dns_free(dns);
    md_conf_free(conf);
    cli_dns_clear(&o.dns);
    free(o.files);
    return rc;
}
