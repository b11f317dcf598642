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
#include <unistd.h>

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
    int quiet;
} options;

typedef struct run {
    const options *o;
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
           "  -c, --concurrency N    at most N domains checked at once (default: as many as\n"
           "                         the DNS server keeps up with, at most %d)\n"
           "  -j, --json             one JSON object per domain, one per line\n"
           "  -p, --plugin           one monitoring-plugin status line with perfdata\n"
           CLI_HELP_DNS
           "  -q, --quiet            show only domains with problems\n"
           CLI_HELP_COMMON, prog, MD_BULK_CONCURRENCY_MAX);
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        { "file", required_argument, NULL, 'f' },
        { "concurrency", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "plugin", no_argument, NULL, 'p' },
        { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:c:jpr:t:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->files = md_xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
            o->files[o->nfiles++] = optarg;
            break;
        case 'c':
            if (cli_parse_uint(prog, "--concurrency", optarg, 1000000, &o->concurrency) != 0)
                return -1;
            break;
        case 'j': o->format = CLI_JSON; break;
        case 'p': o->format = CLI_PLUGIN; break;
        case 'q': o->quiet = 1; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    if (optind >= argc && o->nfiles == 0) {
        cli_usage_error(prog, "no domain given (give DOMAIN... or --file FILE)");
        return -1;
    }
    return 0;
}

static int output(void *arg, const md_report *rep)
{
    run *r = arg;
    md_severity st = md_report_status(rep);
    md_tally_add(&r->tally, st);
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

static void plugin_line(const run *r, double secs)
{
    const md_tally *t = &r->tally;
    char summary[256], perf[256];
    if (md_tally_total(t) == 0)
        snprintf(summary, sizeof summary, "no domains checked: the input held none");
    else
        snprintf(summary, sizeof summary, "%lu domains: %lu critical, %lu warning, %lu unknown, %lu ok",
                 md_tally_total(t), t->n[MD_SEV_CRITICAL], t->n[MD_SEV_WARNING],
                 t->n[MD_SEV_UNKNOWN], t->n[MD_SEV_OK]);
    snprintf(perf, sizeof perf, "domains=%lu critical=%lu warning=%lu unknown=%lu ok=%lu time=%.3fs",
             md_tally_total(t), t->n[MD_SEV_CRITICAL], t->n[MD_SEV_WARNING],
             t->n[MD_SEV_UNKNOWN], t->n[MD_SEV_OK], secs);
    md_plugin_write(stdout, "MX", md_tally_total(t) ? t->worst : MD_SEV_UNKNOWN, summary, perf);
}

int main(int argc, char **argv)
{
    options o = { .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    run r = { .o = &o };
    md_error err = { 0 };
    md_input *in = NULL;
    md_dns *dns = NULL;
    md_mx_memo *memo = NULL;
    int rc = MD_EXIT_UNKNOWN;

    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if ((dns = cli_dns_open(&o.dns, prog, 0)) == NULL)
        goto done;
    md_tally_init(&r.tally);
    cli_progress_init(&r.progress);
    r.text_flags = md_color_wanted(stdout) ? MD_TEXT_COLOR : 0;
    /* A bulk run writes tens of megabytes: in 64 KiB pieces rather than the
     * 4 KiB stdio picks for a pipe or file (a terminal stays line by line). */
    static char outbuf[1 << 16];
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    in = md_input_new(argv + optind, (size_t)(argc - optind), o.files, o.nfiles);

    memo = md_mx_memo_new();
    md_mx_options mo = { .no_details = o.format != CLI_TEXT, .memo = memo };
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
    if (o.format == CLI_PLUGIN && st == MD_OK)
        plugin_line(&r, (double)(md_now_ms() - t0) / 1000.0);
    errno = 0;
    if (st == MD_INTERNAL || fflush(stdout) != 0) {
        rc = cli_write_failed(prog, r.write_errno ? r.write_errno : errno);
        goto done;
    }
    if (st != MD_OK) {
        cli_error(prog, "%s", err.text);
        goto done;
    }
    if (md_tally_total(&r.tally) == 0) {
        /* Nothing checked is not a healthy result. */
        if (o.format != CLI_PLUGIN)
            cli_error(prog, "no domains checked: the input held none");
        goto done;
    }
    rc = md_severity_exit_code(r.tally.worst);
done:
    md_input_free(in);
    md_dns_free(dns);
    md_mx_memo_free(memo);
    cli_dns_clear(&o.dns);
    free(o.files);
    return rc;
}
