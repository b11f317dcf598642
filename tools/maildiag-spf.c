/*
 * maildiag-spf: what will a receiver's SPF check (RFC 7208) say about mail
 * from an address, and what is wrong with a domain's SPF record?  Over
 * lib/spf (libspf2 in isolated workers, plus the RFC rules it lacks),
 * lib/dns, lib/report.  The manual is maildiag-spf.1 beside this file.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "base/input.h"
#include "spf/pool.h"

static const char *prog = "maildiag-spf";

typedef struct options {
    cli_dns dns;
    const char *ip, *from, *helo, *receiver;
    md_address from_addr;      /* --from parsed; from points to its A-label form */
    int helo_identity;
    char **files;
    size_t nfiles;
    unsigned workers;
    double deadline;
    cli_format format;
    cli_plugin plugin;         /* --plugin; -w/-c: the DNS-querying terms used */
    const char *config_path;
    int quiet, no_libspf2, show_config;
} options;

typedef struct run {
    const options *o;
    md_tally tally;
    unsigned text_flags;
    int write_errno;           /* errno of a failed write to stdout; 0 = none */
    cli_progress progress;     /* bulk: a line on stderr when it is a terminal */
    size_t started, finished;
    cli_plugin *plugin;        /* o's, counting the results for --plugin */
    int lookups, void_lookups; /* --plugin: the most of any result */
} run;

static void usage(void)
{
    printf("Usage: %s [OPTION]... DOMAIN...                 lint DOMAIN's SPF record\n"
           "  or:  %s --ip IP --from ADDRESS [--helo NAME] [DOMAIN]   evaluate (RFC 7208)\n"
           "  or:  %s --file FILE                           evaluate 'IP ADDRESS [HELO]' lines\n"
           "Exit for an evaluation: 0 pass; 1 neutral, none, softfail; 2 fail, permerror;\n"
           "3 temperror.  Lint: 0 ok, 1 warning, 2 critical, 3 unknown.\n\n"
           "  -i, --ip IP            the sending client's address (IPv4 or IPv6)\n"
           "  -F, --from ADDRESS     MAIL FROM; \"\" or <> is the null reverse-path (then the\n"
           "                         HELO identity is checked)\n"
           "  -H, --helo NAME        the HELO/EHLO name\n"
           "  -I, --identity ID      mailfrom (default) or helo\n"
           "  -f, --file FILE        evaluate one 'IP ADDRESS [HELO]' a line ('-' = stdin)\n"
           "      --concurrency N    worker processes (default: the number of CPUs, at least 2)\n"
           "      --deadline SECONDS time limit for one evaluation; past it the worker is\n"
           "                         killed and the result is temperror (default 30)\n"
           "  -R, --receiver NAME    authserv-id for the header lines (default maildiag)\n"
           "      --no-libspf2       skip the libspf2 cross-evaluation\n"
           "  -j, --json             one JSON object per evaluation or domain, one per line\n"
           "  -p, --plugin           one monitoring-plugin status line with perfdata\n"
           "  -w, --warning RANGE    --plugin: warning when the DNS-querying terms used (the most\n"
           "                         of any result; RFC 7208 allows 10) are outside RANGE\n"
           "                         (monitoring-plugins ranges: 8 is 0..8)\n"
           "  -c, --critical RANGE   --plugin: the same for critical\n"
           CLI_HELP_DNS
           CLI_HELP_CONFIG
           "      --show-config      show the settings in effect and exit\n"
           "  -q, --quiet            show only results with problems\n"
           CLI_HELP_COMMON, prog, prog, prog);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_CONCURRENCY = 256, O_DEADLINE, O_NOLIBSPF2, O_SHOW };
    static const struct option longopts[] = {
        { "ip", required_argument, NULL, 'i' }, { "from", required_argument, NULL, 'F' },
        { "helo", required_argument, NULL, 'H' }, { "identity", required_argument, NULL, 'I' },
        { "file", required_argument, NULL, 'f' }, { "concurrency", required_argument, NULL, O_CONCURRENCY },
        { "receiver", required_argument, NULL, 'R' }, { "deadline", required_argument, NULL, O_DEADLINE },
        { "no-libspf2", no_argument, NULL, O_NOLIBSPF2 },
        { "json", no_argument, NULL, 'j' }, { "plugin", no_argument, NULL, 'p' },
        { "warning", required_argument, NULL, 'w' }, { "critical", required_argument, NULL, 'c' },
        { "resolver", required_argument, NULL, 'r' }, { "timeout", required_argument, NULL, 't' },
        { "config", required_argument, NULL, 'C' }, { "show-config", no_argument, NULL, O_SHOW },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' }, { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:F:H:I:f:R:jpw:c:r:t:C:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': o->ip = optarg; break;
        case 'F': o->from = optarg; break;
        case 'H': o->helo = optarg; break;
        case 'I':
            if (strcmp(optarg, "helo") != 0 && strcmp(optarg, "mailfrom") != 0)
                return cli_usage_error(prog, "--identity must be mailfrom or helo"), -1;
            o->helo_identity = strcmp(optarg, "helo") == 0;
            break;
        case 'f':
            o->files = md_xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
            o->files[o->nfiles++] = optarg;
            break;
        case O_CONCURRENCY:
            if (cli_parse_uint(prog, "--concurrency", optarg, 256, &o->workers) != 0)
                return -1;
            break;
        case 'R': o->receiver = optarg; break;
        case O_DEADLINE:
            if (cli_parse_timeout(prog, optarg, &o->deadline) != 0)
                return -1;
            break;
        case O_NOLIBSPF2: o->no_libspf2 = 1; break;
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
    if (o->show_config)
        return 0;
    if (cli_plugin_check(prog, o->format, &o->plugin) != 0)
        return -1;
    /* MAIL FROM: a Mailbox or the null reverse-path; evaluated in A-labels. */
    if (o->from) {
        if (cli_address(prog, "--from", o->from, MD_ADDRESS_OPT_NULL_PATH, &o->from_addr) != 0)
            return -1;
        cli_address_notes(prog, "--from", &o->from_addr, MD_ADDRESS_CHANGED);
        o->from = o->from_addr.ascii;
    }
    unsigned char b[16];
    if (o->ip && inet_pton(AF_INET, o->ip, b) != 1 && inet_pton(AF_INET6, o->ip, b) != 1)
        return cli_fail(prog, "input.invalid", "--ip '%s' is not an IPv4 or IPv6 address", o->ip), -1;
    if (o->ip && o->nfiles)
        return cli_usage_error(prog, "give --ip or --file, not both"), -1;
    if (o->ip && o->from == NULL && o->helo == NULL && optind >= argc)
        return cli_usage_error(prog, "--ip needs --from ADDRESS, --helo NAME or a DOMAIN"), -1;
    if (o->ip && argc - optind > 1)
        return cli_usage_error(prog, "--ip evaluates one DOMAIN"), -1;
    if (!o->ip && optind >= argc && o->nfiles == 0)
        return cli_usage_error(prog, "no domain given (give DOMAIN..., --ip IP --from ADDRESS,"
                               " or --file FILE)"), -1;
    return 0;
}

/* Writes one report (and frees it). */
static void emit(run *r, md_report *rep)
{
    md_severity st = md_report_status(rep);
    md_tally_add(&r->tally, st);
    if (r->o->format == CLI_PLUGIN) {
        cli_plugin_add(r->plugin, rep);
        json_t *f = md_report_fields(rep);
        int n = (int)json_integer_value(json_object_get(f, "lookups"));
        int v = (int)json_integer_value(json_object_get(f, "void_lookups"));
        r->lookups = n > r->lookups ? n : r->lookups;
        r->void_lookups = v > r->void_lookups ? v : r->void_lookups;
    } else if (!(r->o->quiet && st == MD_SEV_OK)) {
        errno = 0;
        int rc = r->o->format == CLI_JSON ? md_report_write_json(rep, stdout)
                                          : md_report_write_text(rep, stdout, r->text_flags);
        if (rc != 0 && r->write_errno == 0)
            r->write_errno = errno ? errno : EIO;
    }
    md_report_free(rep);
}

/* A result from the pool, already rendered by its worker (--plugin: the
 * typed result, described here). */
static void emit_rendered(run *r, md_spf_pool_result *res)
{
    if (res->report != NULL) {
        r->finished++;
        md_spf_describe(res->result, res->report, 0);
        emit(r, res->report);
        res->report = NULL;   /* emit freed it */
        md_spf_pool_result_clear(res);
        return;
    }
    md_tally_add(&r->tally, res->status);
    r->finished++;
    cli_progress_end(&r->progress);
    errno = 0;
    if (!(r->o->quiet && res->status == MD_SEV_OK) && res->rendered && r->write_errno == 0
        && fwrite(res->rendered, 1, res->len, stdout) != res->len)
        r->write_errno = errno ? errno : EIO;
    md_spf_pool_result_clear(res);
}

/* One "IP ADDRESS [HELO]" line of --file into req (pointing into line and
 * *from).  Returns 0, or -1 with why (the address's fault in *err, else
 * err->text ""). */
static int parse_line(char *line, md_spf_request *req, md_address *from, md_error *err)
{
    char *save = NULL;
    err->text[0] = '\0';
    req->ip = strtok_r(line, " \t", &save);
    req->sender = strtok_r(NULL, " \t", &save);
    req->helo = strtok_r(NULL, " \t", &save);
    unsigned char b[16];
    if (req->ip == NULL || req->sender == NULL || strtok_r(NULL, " \t", &save) != NULL
        || (inet_pton(AF_INET, req->ip, b) != 1 && inet_pton(AF_INET6, req->ip, b) != 1))
        return -1;
    /* the same grammar as --from: a Mailbox, or <> for the null path */
    if (md_address_parse_len(req->sender, strlen(req->sender), MD_ADDRESS_OPT_NULL_PATH, from, err) != MD_OK)
        return -1;
    req->sender = from->ascii;
    return 0;
}

static void bad_line(run *r, const char *line, const md_error *err)
{
    char summary[MD_ERROR_TEXT_MAX + 48];
    if (err->text[0])
        snprintf(summary, sizeof summary, "ADDRESS is not a valid email address: %s", err->text);
    md_report *rep = md_report_new(prog, NULL);
    md_spf_result *res = md_spf_result_invalid("");
    md_spf_describe(res, rep, 0);
    md_spf_result_free(res);
    md_finding *f = md_report_add(rep, "input.invalid_line", MD_SEV_UNKNOWN, "%s",
                                  err->text[0] ? summary : "not an 'IP ADDRESS [HELO]' line");
    md_finding_add_evidence(f, "%s", line);
    emit(r, rep);
}

/* Evaluations through the worker pool: the --ip request, or every line. */
static int evaluate(run *r, const options *o, md_input *in, const char *domain, md_error *err)
{
    md_dns_config dc = { .servers = (const char *const *)o->dns.servers,
                         .nservers = o->dns.nservers, .timeout = o->dns.timeout };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned dflt = ncpu < 2 ? 2 : ncpu > 16 ? 16 : (unsigned)ncpu;
    md_spf_pool_config pc = { .dns = dc, .workers = o->workers ? o->workers : (o->ip ? 1 : dflt),
                              .deadline = o->deadline > 0 ? o->deadline : 30, .tool = prog,
                              .output = o->format == CLI_JSON ? MD_SPF_OUT_JSON
                                      : o->format == CLI_PLUGIN ? MD_SPF_OUT_OBJECT : MD_SPF_OUT_TEXT,
                              .text_flags = r->text_flags, .cancel = &cli_interrupted };
    md_spf_pool *pool = md_spf_pool_new(&pc, err);
    if (pool == NULL)
        return -1;
    const char *item;
    int first = 1;
    md_spf_pool_result res;
    while (!cli_interrupted && r->write_errno == 0) {
        md_spf_request req = { .receiver = o->receiver, .no_libspf2 = o->no_libspf2,
                               .identity = o->helo_identity ? MD_SPF_ID_HELO : MD_SPF_ID_MAILFROM,
                               .deadline = (o->deadline > 0 ? o->deadline : 30) * 0.8 };
        char line[MD_INPUT_LINE_MAX];
        md_address from;
        md_error lerr;
        if (o->ip) {
            if (!first)
                break;
            req.ip = o->ip;
            req.helo = o->helo;
            req.domain = domain;
            /* DOMAIN without --from: its policy, as postmaster@DOMAIN */
            snprintf(line, sizeof line, "postmaster@%s", domain ? domain : "");
            req.sender = o->from ? o->from : domain ? line : "";
            if (o->from == NULL && domain == NULL)
                req.identity = MD_SPF_ID_HELO;
        } else {
            if ((item = md_input_next(in, err)) == NULL)
                break;
            snprintf(line, sizeof line, "%s", item);
            if (parse_line(line, &req, &from, &lerr) != 0) {
                bad_line(r, item, &lerr);
                continue;
            }
        }
        first = 0;
        while (!md_spf_pool_has_idle(pool) && !cli_interrupted)
            if (md_spf_pool_next(pool, &res))
                emit_rendered(r, &res);
        if (cli_interrupted || md_spf_pool_submit(pool, &req, NULL, err) != MD_OK)
            break;
        if (++r->started % 64 == 0)
            cli_progress_update(&r->progress, "evaluations", r->started, r->finished);
    }
    /* After an interrupt or a write error, the evaluations in flight are
     * dropped: md_spf_pool_free kills their workers. */
    while (!cli_interrupted && r->write_errno == 0 && md_spf_pool_next(pool, &res))
        emit_rendered(r, &res);
    cli_progress_end(&r->progress);
    md_spf_pool_free(pool);
    return md_input_failed(in) ? -1 : 0;
}

static int lint(run *r, md_input *in, const options *o, md_error *err)
{
    md_dns *dns = cli_dns_open((cli_dns *)&o->dns, prog, 0);
    const char *d;
    if (dns == NULL)
        return -2;
    while (!cli_interrupted && r->write_errno == 0 && (d = md_input_next(in, err)) != NULL) {
        int utf8 = md_utf8_valid(d, strlen(d));
        md_report *rep = md_report_new(prog, utf8 ? d : "(not UTF-8)");
        md_spf_result *res = NULL;
        md_error lerr = { 0 };
        if (utf8 && md_spf_lint(dns, d, &res, rep, &lerr) == MD_OK) {
            md_spf_describe(res, rep, 0);
        } else {
            md_report_set(rep, "domain", json_string(utf8 ? d : "(not UTF-8)"));
            md_finding *f = md_report_add(rep, "input.invalid_domain", MD_SEV_UNKNOWN,
                                          "not a usable domain name");
            md_finding_add_evidence(f, "%s", d);
        }
        md_spf_result_free(res);
        if (cli_interrupted) {      /* cut short: not a result */
            md_report_free(rep);
            break;
        }
        emit(r, rep);
    }
    md_dns_free(dns);
    return md_input_failed(in) ? -1 : 0;
}

int main(int argc, char **argv)
{
    options o = { .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    run r = { .o = &o };
    md_error err = { 0 };
    md_input *in = NULL;
    int rc = MD_EXIT_UNKNOWN;

    md_conf *conf = NULL;
    cli_plugin_init(&o.plugin, "SPF", "result", "results");
    o.plugin.measure = "lookups";
    r.plugin = &o.plugin;
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
    if (cli_dns_settle(&o.dns, prog) != 0)   /* the workers get the servers */
        goto done;
    md_tally_init(&r.tally);
    cli_progress_init(&r.progress);
    r.text_flags = MD_TEXT_EVIDENCE | (md_color_wanted(stdout) ? MD_TEXT_COLOR : 0);
    in = md_input_new(o.ip ? NULL : argv + optind, o.ip ? 0 : (size_t)(argc - optind),
                      o.files, o.nfiles);
    cli_interrupt_install();
    int st = (o.ip || o.nfiles) ? evaluate(&r, &o, in, o.ip && optind < argc ? argv[optind] : NULL, &err)
                                : lint(&r, in, &o, &err);
    if (cli_interrupted && r.write_errno == 0) {
        fflush(stdout);
        rc = cli_interrupt_exit(prog, "results", (size_t)md_tally_total(&r.tally), &r.tally);
        goto done;
    }
    errno = 0;
    if (r.write_errno != 0 || fflush(stdout) != 0) {
        rc = cli_write_failed(prog, r.write_errno ? r.write_errno : errno);
        goto done;
    }
    if (st == -1) {
        cli_fail(prog, "input.invalid", "%s", err.text);
        goto done;
    }
    if (st == 0 && o.format == CLI_PLUGIN) {
        cli_perf perf[] = {
            { .label = "lookups", .value = r.lookups, .integer = 1, .warn = o.plugin.warn.text,
              .crit = o.plugin.crit.text, .min = "0", .max = "10" },
            { .label = "void_lookups", .value = r.void_lookups, .integer = 1, .min = "0", .max = "2" },
        };
        rc = cli_plugin_finish(prog, &o.plugin, r.lookups, perf, 2);
        goto done;
    }
    if (st == 0 && md_tally_total(&r.tally) == 0) {
        /* Nothing checked is not a healthy result. */
        cli_fail(prog, "input.invalid", "nothing checked: the input held no lines");
        goto done;
    }
    if (st == 0)
        rc = md_severity_exit_code(r.tally.worst);
done:
    md_conf_free(conf);
    md_input_free(in);
    cli_dns_clear(&o.dns);
    free(o.files);
    return rc;
}
