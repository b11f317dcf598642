/*
 * maildiag-health: our own sending setup, checked from cron and monitoring:
 * SPF, DKIM, DMARC, blocklists, reverse DNS, the relay (STARTTLS, its
 * certificate, AUTH) and optionally a real test email, each check with its
 * own status, what changed since the last run, as a monitoring-plugin line,
 * JSON or a node_exporter textfile.  The work is lib/health's; this parses,
 * opens what the configuration names, takes the lock, renders, exits.
 * The manual is maildiag-health.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "health/health.h"

static const char *prog = "maildiag-health";

#define HEALTH_CONFIG_DEFAULT "/etc/maildiag.conf"

/* The next steps that name our options; lib/diag's words for the rest. */
static const char *advice(const char *id)
{
    static const struct { const char *id, *advice; } ours[] = {
        { "health.timeout", "rerun with a longer --timeout; if it persists, the slow part is named above" },
        { "health.not_configured", "add the named setting to the configuration, or leave the check out"
                                   " (--only, [health] checks)" },
        { "health.state_error", "check that the state file's folder is writable by the user running"
                                " maildiag-health, or give --state FILE" },
        { "diag.timeout", "rerun with a longer --timeout" },
    };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (strcmp(ours[i].id, id) == 0)
            return ours[i].advice;
    return NULL;
}

typedef struct options {
    const char *config, *state, *prometheus;
    cli_dns dns;
    double timeout;
    md_health_options run;
    int json, plugin, quiet, verbose, show_config;
} options;

static void usage(void)
{
    printf("Usage: %s [OPTION]...\n"
           "Checks our own sending setup as the configuration describes it: SPF, DKIM, DMARC,\n"
           "blocklists, reverse DNS, the relay (STARTTLS, certificate, AUTH) and, with [health]\n"
           "seed, a real test email; says what changed since the last run.\n\n"
           "      --only CHECK,...   only these checks: spf, dkim, dmarc, dnsbl, rdns, relay, send\n"
           "                         (default [health] checks, else all that apply)\n"
           "  -w, --warning DAYS     the relay's certificate expiring within DAYS is a warning\n"
           "                         (default %d)\n"
           "  -c, --critical DAYS    ... and within DAYS critical (default %d)\n"
           "      --state FILE       the last run's result, for what changed (default [health]\n"
           "                         state, else /var/lib/maildiag/health.json when writable,\n"
           "                         else $XDG_STATE_HOME/maildiag/health.json); FILE.lock beside it\n"
           "  -C, --config FILE      configuration file (default MAILDIAG_CONFIG, else\n"
           "                         " HEALTH_CONFIG_DEFAULT ")\n"
           "  -r, --resolver IP[:PORT]  DNS server to ask (repeatable; IPv6 as [ADDR]:PORT);\n"
           "                         default MAILDIAG_RESOLVER, else the system resolver\n"
           "  -t, --timeout SECONDS  budget of the whole run, all checks at once (default 30)\n"
           "  -p, --plugin           monitoring-plugin output: status line with perfdata, then\n"
           "                         the details (the default when standard output is no terminal)\n"
           "  -j, --json             one JSON object\n"
           "      --prometheus FILE  write a node_exporter textfile (atomically), print nothing\n"
           "  -q, --quiet            only the status line\n"
           "  -v, --verbose          also the findings that are ok\n"
           "      --show-config      print the effective configuration, secrets masked, and exit\n"
           CLI_HELP_COMMON
           "\nExit status: 0 ok, 1 warning, 2 critical, 3 unknown (usage and configuration\n"
           "errors, another run holding the lock), the worst over the checks, in every output.\n",
           prog, MD_HEALTH_WARN_DAYS_DEFAULT, MD_HEALTH_CRIT_DAYS_DEFAULT);
}

/* A usage error: text on standard error, and with --json the one JSON
 * value on standard output. */
static int usage_fail(const options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_fail(const options *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_usage_error(prog, "%s", msg);
    if (o->json)
        cli_json_error("usage.error", "%s", msg);
    return -1;
}

static int days(const options *o, const char *opt, const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 0 || v > 3650)
        return usage_fail(o, "%s: '%s' is not a number of days from 0 to 3650", opt, s);
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_ONLY = 256, O_STATE, O_PROM, O_SHOW };
    static const struct option lo[] = {
        { "only", 1, NULL, O_ONLY }, { "state", 1, NULL, O_STATE }, { "prometheus", 1, NULL, O_PROM },
        { "show-config", 0, NULL, O_SHOW },
        { "warning", 1, NULL, 'w' }, { "critical", 1, NULL, 'c' },
        { "config", 1, NULL, 'C' }, { "resolver", 1, NULL, 'r' }, { "timeout", 1, NULL, 't' },
        { "json", 0, NULL, 'j' }, { "plugin", 0, NULL, 'p' }, { "quiet", 0, NULL, 'q' },
        { "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    /* --json decides how errors are told, wherever it stands */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        o->json |= strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0;
    int c, warn = -1, crit = -1;
    char buf[80];
    md_error err;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:r:t:w:c:jpqvhV", lo, NULL)) != -1) {
        switch (c) {
        case O_ONLY:
            if (md_health_checks_parse(optarg, &o->run.checks, &err) != MD_OK)
                return usage_fail(o, "--only: %s", err.text);
            break;
        case O_STATE: o->state = optarg; break;
        case O_PROM: o->prometheus = optarg; break;
        case O_SHOW: o->show_config = 1; break;
        case 'w': if (days(o, "--warning", optarg, &warn)) return -1; break;
        case 'c': if (days(o, "--critical", optarg, &crit)) return -1; break;
        case 'C': o->config = optarg; break;
        case 'r':
            if (md_dns_server_parse(optarg, buf, sizeof buf, &err) != MD_OK)
                return usage_fail(o, "--resolver: %s", err.text);
            if (cli_dns_add_resolver(&o->dns, prog, optarg) != 0)
                return -1;
            break;
        case 't': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v > 0 && v <= 3600))
                return usage_fail(o, "--timeout: '%s' is not a number of seconds between 0 and 3600", optarg);
            o->timeout = v;
            break;
        }
        case 'j': o->json = 1; break;
        case 'p': o->plugin = 1; break;
        case 'q': o->quiet = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(); return 1;
        case 'V': cli_version(prog); return 1;
        case ':': return usage_fail(o, "option '%s' needs a value", argv[optind - 1]);
        default: return usage_fail(o, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o->json + o->plugin + o->quiet + (o->prometheus != NULL) > 1)
        return usage_fail(o, "--json, --plugin, --prometheus and --quiet choose the output: give one");
    if (optind < argc)
        return usage_fail(o, "no operands: the configuration says what to check ('%s' is extra)", argv[optind]);
    o->run.warn_days = warn < 0 ? MD_HEALTH_WARN_DAYS_DEFAULT : warn;
    o->run.crit_days = crit < 0 ? MD_HEALTH_CRIT_DAYS_DEFAULT : crit;
    if (o->run.crit_days > o->run.warn_days)
        return usage_fail(o, "--critical %d is more days than --warning %d: critical comes later",
                          o->run.crit_days, o->run.warn_days);
    if (!o->json && !o->quiet && !o->prometheus && !isatty(STDOUT_FILENO))
        o->plugin = 1;   /* cron, a monitoring agent: the plugin protocol */
    return 0;
}

/* A run that could not be made: text on standard error, or the JSON, or
 * the plugin line a monitoring system reads. */
static int fail(const options *o, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(const options *o, const char *id, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->json)
        return cli_json_error(id, "%s", msg);
    cli_error(prog, "%s", msg);
    if (o->plugin || o->quiet)
        md_plugin_write(stdout, "MAILDIAG HEALTH", MD_SEV_UNKNOWN, msg, NULL);
    return MD_EXIT_UNKNOWN;
}

static int load_config(const options *o, md_conf **conf, md_diag_settings *s, md_health_settings *h)
{
    md_error err = { 0 };
    const char *path = o->config;
    int given = path != NULL;
    if (path == NULL && (path = getenv("MAILDIAG_CONFIG")) != NULL && *path)
        given = 1;
    if (path == NULL || *path == '\0')
        path = HEALTH_CONFIG_DEFAULT;
    /* A file that was named must load; the default may be absent, as for
     * every tool: then each check says what it lacks (health.not_configured). */
    md_status st = MD_OK;
    if (strcmp(path, "/dev/null") != 0 && (st = md_conf_load(path, conf, &err)) != MD_OK &&
        (st != MD_NOTFOUND || given))
        return fail(o, "config.error", "configuration: %s", err.text);
    if (md_diag_settings_load(*conf, s, &err) != MD_OK || md_health_settings_load(*conf, h, &err) != MD_OK)
        return fail(o, "config.error", "configuration: %s", err.text);
    return 0;
}

/* A password from its file (refused when others can read it), else the
 * environment.  NULL after telling why (*rc is then the exit code). */
static char *secret(const options *o, const char *file, const char *env, const char *what, int *rc)
{
    if (file) {
        char *v = cli_read_secret_file(prog, what, file);
        if (v == NULL)
            *rc = fail(o, "config.error", "the %s file %s cannot be used", what, file);
        return v;
    }
    const char *v = getenv(env);
    if (v && *v)
        return md_xstrdup(v);
    *rc = fail(o, "config.error", "the %s is needed: name its file in the configuration, or set %s", what, env);
    return NULL;
}

/* --show-config's [health]: what is set, in the file's words. */
static void show_health(const md_health_settings *h)
{
    printf("\n[health]\nchecks =");
    unsigned checks = md_health_default_checks(h);
    for (int c = 0, n = 0; c < MD_HEALTH_NCHECKS; c++)
        if (checks & (1u << c))
            printf("%s %s", n++ ? "," : "", md_health_check_name((md_health_check_id)c));
    printf("%s\n", h->checks ? "" : "   ; the default: every check that applies");
    const struct { const char *key, *value; } kv[] = {
        { "seed", h->seed }, { "seed_mailbox", h->seed_mailbox },
        { "seed_password_file", h->seed_password_file }, { "seed_ca_file", h->seed_ca_file },
        { "state", h->state },
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (kv[i].value)
            cli_line(stdout, "%s = %s", kv[i].key, kv[i].value);
}

static int render(const options *o, const md_health_result *r)
{
    if (o->prometheus)
        return 0;
    if (o->json) {
        json_t *j = md_health_result_json(r);
        md_buf b = { 0 };
        md_json_append(&b, j);
        MD_BUF_LIT(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        free(b.data);
        json_decref(j);
    } else if (o->plugin || o->quiet) {
        md_health_write_plugin(r, stdout, o->quiet ? MD_HEALTH_PLUGIN_SHORT : 0);
    } else {
        md_health_write_text(r, stdout, MD_TEXT_EVIDENCE | (md_color_wanted(stdout) ? MD_TEXT_COLOR : 0) |
                             (o->verbose ? MD_HEALTH_TEXT_ALL : 0));
    }
    return fflush(stdout) != 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    options o = { .timeout = MD_HEALTH_TIMEOUT_DEFAULT_MS / 1000.0,
                  .run = { .program = "maildiag-health", .advice = advice } };
    md_conf *conf = NULL;
    md_diag_settings set = { 0 };
    md_health_settings hs = { 0 };
    md_health_config cfg = { .settings = &set, .health = &hs };
    md_health_lock *lock = NULL;
    md_health_state *prev = NULL;
    md_health_result *r = NULL;
    char *password = NULL, *imap_password = NULL, state[4096];
    md_error err = { 0 }, state_err = { 0 };
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        rc = rc > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if ((rc = load_config(&o, &conf, &set, &hs)) != 0)
        goto done;
    o.dns.timeout = MD_DNS_TIMEOUT_DEFAULT;   /* [dns] timeout may say otherwise */
    if (cli_config_dns(prog, conf, &o.dns) != 0 || cli_dns_settle(&o.dns, prog) != 0) {
        rc = MD_EXIT_UNKNOWN;
        goto done;
    }
    if (o.show_config) {   /* the file read, [dns], then the settings the checks use */
        cli_show_config(stdout, conf, &o.dns, prog);
        int bad = md_diag_settings_write(&set, stdout) != 0;
        show_health(&hs);
        rc = !bad && fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
        goto done;
    }
    snprintf(state, sizeof state, "%s", o.state ? o.state : hs.state ? hs.state : "");
    if (!state[0] && md_health_state_path_default(state, sizeof state, &err) != MD_OK) {
        rc = fail(&o, "health.state_error", "%s: give --state FILE", err.text);
        goto done;
    }
    md_status st = md_health_lock_take(state, &lock, &err);
    if (st != MD_OK) {
        if (st == MD_TEMPFAIL)   /* a cron run overlapping the last one: it leaves the state alone */
            rc = fail(&o, "health.locked", "another %s run holds the lock %s.lock", prog, state);
        else
            rc = fail(&o, "health.state_error", "%s", err.text);
        goto done;
    }
    unsigned checks = o.run.checks ? o.run.checks : md_health_default_checks(&hs);
    if ((checks & (1u << MD_HEALTH_RELAY | 1u << MD_HEALTH_SEND)) && set.user && set.server &&
        (password = secret(&o, set.password_file, "MAILDIAG_SMTP_PASSWORD", "[mail] password", &rc)) == NULL)
        goto done;
    if ((checks & (1u << MD_HEALTH_SEND)) && hs.seed_mailbox &&
        (imap_password = secret(&o, hs.seed_password_file, "MAILDIAG_IMAP_PASSWORD",
                                "[health] seed mailbox password", &rc)) == NULL)
        goto done;
    rc = MD_EXIT_UNKNOWN;
    if (o.timeout < o.dns.timeout)   /* no query outlasts the run */
        o.dns.timeout = o.timeout;
    if ((cfg.dns = cli_dns_open(&o.dns, prog, 0)) == NULL) {
        rc = fail(&o, "config.error", "the resolver cannot be set up");
        goto done;
    }
    if ((cfg.smtp = md_smtp_ctx_new(set.ca_file, &err)) == NULL) {
        rc = fail(&o, "config.error", "SMTP: %s", err.text);
        goto done;
    }
    cfg.password = password;
    cfg.imap_password = imap_password;
    o.run.timeout_ms = (int)(o.timeout * 1000);
    md_status ls = md_health_state_load(state, &prev, &state_err);
    if (md_health_run(&cfg, &o.run, &r, &err) != MD_OK) {
        rc = fail(&o, "config.error", "%s", err.text);
        goto done;
    }
    if (ls != MD_OK && ls != MD_NOTFOUND)
        md_health_note(r, "health.state_error", "%s: what changed since the last run is unknown", state_err.text);
    md_health_compare(r, prev);
    if (md_health_state_save(state, r, prev, &err) != MD_OK)
        md_health_note(r, "health.state_error", "%s", err.text);
    if (o.prometheus && md_health_write_prometheus(r, o.prometheus, &err) != MD_OK) {
        md_health_note(r, "health.prometheus_error", "%s", err.text);
        cli_error(prog, "%s", err.text);
    }
    rc = render(&o, r) != 0 ? cli_write_failed(prog, 0) : md_severity_exit_code(r->status);
done:
    md_health_result_free(r);
    md_health_state_free(prev);
    md_health_lock_release(lock);
    cli_secret_free(password);
    cli_secret_free(imap_password);
    md_smtp_ctx_free(cfg.smtp);
    md_dns_free(cfg.dns);
    md_diag_settings_clear(&set);
    md_conf_free(conf);
    cli_dns_clear(&o.dns);
    return rc;
}
