/*
 * maildiag-why: why did the user not get the email?  One diagnosis of an
 * address over every layer (address, account, domain, recipient, sender,
 * send) that names the first broken one.  The work is lib/diag's; this
 * parses options, opens what the configuration names, renders, exits.
 * The manual is maildiag-why.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diag/diag.h"

static const char *prog = "maildiag-why";

#define WHY_CONFIG_DEFAULT "/etc/maildiag.conf"

typedef struct options {
    const char *config;
    const char *address;
    cli_dns dns;
    double timeout;              /* the whole run */
    md_diag_options run;
    int json, plugin, quiet, verbose, show_config;
} options;

/* The next steps that name our commands and options; lib/diag words the
 * rest. */
static const char *advice(const char *id)
{
    static const struct { const char *id, *advice; } ours[] = {
        { "address.suppressed", "fix the cause (the bounce text says it), then 'maildiag-user suppression remove ADDRESS'" },
        { "address.last_send_failed", "read the reply of the last send; run maildiag-why --send to try again" },
        { "account.none", "search by username (maildiag-user lookup --username) or other addresses of the user" },
        { "account.unverified", "send a fresh verification link (maildiag-why --email verify --send)" },
        { "dns.temporary", "rerun later; if it persists, check the resolver (--resolver) and the domain's name servers" },
        { "spf.permerror", "fix our SPF record (maildiag-spf shows where it breaks)" },
        { "diag.timeout", "rerun with a longer --timeout" },
    };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (strcmp(ours[i].id, id) == 0)
            return ours[i].advice;
    return NULL;
}

static void usage(void)
{
    printf("Usage: %s [OPTION]... ADDRESS\n"
           "Why did ADDRESS not get the product's email?  Checks the address, the accounts on it,\n"
           "the domain's MX route, the recipient's servers (MAIL and RCPT, never DATA), our own\n"
           "sending setup, and optionally sends the email for real; names the first broken layer.\n\n"
           "      --email KIND       which email is missing: reset, verify, username or any\n"
           "                         (default any)\n"
           "      --send             also send that email for real, through [mail] server or direct\n"
           "      --no-probe         no SMTP connection to the recipient's servers\n"
           "      --show-config      print the effective configuration, secrets masked, and exit\n"
           CLI_HELP_CONFIG
           "  -r, --resolver IP[:PORT]  DNS server to ask (repeatable; IPv6 as [ADDR]:PORT);\n"
           "                         default MAILDIAG_RESOLVER, else [dns] resolver, else the\n"
           "                         system resolver\n"
           "  -t, --timeout SECONDS  budget of the whole run (default 30)\n"
           "  -j, --json             one JSON object\n"
           "  -p, --plugin           one monitoring-plugin line\n"
           "  -q, --quiet            only the verdict line\n"
           "  -v, --verbose          also the findings that are ok\n"
           CLI_HELP_COMMON
           "\nExit status: 0 ok, 1 warning, 2 critical, 3 unknown (usage and configuration\n"
           "errors too), the worst over the layers; the same with --json and --plugin.\n", prog);
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

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_EMAIL = 256, O_SEND, O_NOPROBE, O_SHOW };
    static const struct option lo[] = {
        { "email", 1, NULL, O_EMAIL }, { "send", 0, NULL, O_SEND },
        { "no-probe", 0, NULL, O_NOPROBE }, { "show-config", 0, NULL, O_SHOW },
        { "config", 1, NULL, 'C' }, { "resolver", 1, NULL, 'r' }, { "timeout", 1, NULL, 't' },
        { "json", 0, NULL, 'j' }, { "plugin", 0, NULL, 'p' }, { "quiet", 0, NULL, 'q' },
        { "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    /* --json decides how errors are told, wherever it stands */
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        o->json |= strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0;
    int c, e;
    char buf[80];
    md_error err;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:r:t:jpqvhV", lo, NULL)) != -1) {
        switch (c) {
        case O_EMAIL:
            if ((e = md_diag_email_parse(optarg)) < 0)
                return usage_fail(o, "--email: '%s': reset, verify, username or any", optarg);
            o->run.email = (md_diag_email)e;
            break;
        case O_SEND: o->run.send = 1; break;
        case O_NOPROBE: o->run.no_probe = 1; break;
        case O_SHOW: o->show_config = 1; break;
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
    if (o->json + o->plugin + o->quiet > 1)
        return usage_fail(o, "--json, --plugin and --quiet choose the output: give one");
    if (o->show_config)
        return optind < argc ? usage_fail(o, "--show-config takes no address") : 0;
    if (optind == argc)
        return usage_fail(o, "no address given");
    if (argc - optind > 1)
        return usage_fail(o, "one address at a time ('%s' is extra)", argv[optind + 1]);
    o->address = argv[optind];
    return 0;
}

/* A configuration or store error: text on standard error, or the JSON. */
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
    return MD_EXIT_UNKNOWN;
}

/* The configuration: -C, else MAILDIAG_CONFIG, else the default when it
 * exists ("/dev/null": none).  Returns 0 or the exit code. */
static int load_config(const options *o, md_conf **conf, md_diag_settings *s)
{
    md_error err = { 0 };
    const char *path = o->config;
    int given = path != NULL;
    if (path == NULL && (path = getenv("MAILDIAG_CONFIG")) != NULL && *path)
        given = 1;
    if (path == NULL || *path == '\0')
        path = WHY_CONFIG_DEFAULT;
    if (strcmp(path, "/dev/null") != 0) {
        md_status st = md_conf_load(path, conf, &err);
        if (st != MD_OK && (st != MD_NOTFOUND || given))
            return fail(o, "config.error", "configuration: %s", err.text);
    }
    if (md_diag_settings_load(*conf, s, &err) != MD_OK)
        return fail(o, "config.error", "configuration: %s", err.text);
    const char *env = getenv("MAILDIAG_STORE");
    if (env && *env)
        s->store_uri = env;
    return 0;
}

/* The store of [store] uri (read-only), mapped to a product's database by
 * [product] as the account tools do.  A store that cannot be opened is the
 * account layer's unknown, not the end of the diagnosis. */
static md_store *open_store(const md_conf *conf, const char *uri, char *why, size_t size)
{
    md_error err = { 0 };
    md_store *st = NULL;
    signal(SIGXFSZ, SIG_IGN);
    if (md_store_open(uri, MD_STORE_READONLY, &st, &err) == MD_OK) {
        const char *puri = md_conf_get(conf, "product", "uri");
        if (puri == NULL || *puri == '\0')
            return st;
        md_store_product p = { puri, md_conf_get(conf, "product", "by_email"),
                               md_conf_get(conf, "product", "by_username"),
                               md_conf_get(conf, "product", "also"),
                               md_conf_get(conf, "product", "sessions"),
                               md_conf_get(conf, "product", "domain_count") };
        if (md_store_use_product(st, &p, &err) == MD_OK)
            return st;
    }
    snprintf(why, size, "%s%s%s", err.text, err.peer[0] ? ": " : "", err.peer);
    md_store_free(st);
    return NULL;
}

/* --show-config: the file read and the settings as INI, [dns] first. */
static int show_config(const md_conf *conf, const cli_dns *d, const md_diag_settings *set)
{
    printf("config = %s\n\n[dns]\nresolver =", conf ? md_conf_path(conf) : "(none)");
    for (size_t i = 0; i < d->nservers; i++)
        printf(" %s", d->servers[i]);
    printf("%s\ntimeout = %g\n\n", d->nservers ? "" : " (the system resolver)", d->timeout);
    return md_diag_settings_write(set, stdout) == 0 && fflush(stdout) == 0 ? MD_EXIT_OK
                                                                        : cli_write_failed(prog, errno);
}

static int render(const options *o, const md_diag_result *r)
{
    int rc = md_severity_exit_code(r->status);
    if (o->json) {
        json_t *j = md_diag_result_json(r);
        md_buf b = { 0 };
        md_json_append(&b, j);
        MD_BUF_LIT(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        free(b.data);
        json_decref(j);
    } else if (o->plugin) {
        char perf[64];
        snprintf(perf, sizeof perf, "elapsed=%lldms", (long long)r->elapsed_ms);
        md_plugin_write(stdout, "WHY", r->status, r->verdict.set ? r->verdict.summary
                        : "nothing found that stops the email", perf);
    } else if (o->quiet) {
        cli_line(stdout, "%s", r->verdict.set ? r->verdict.summary : "Nothing found that stops the email.");
    } else {
        unsigned flags = MD_TEXT_EVIDENCE | (md_color_wanted(stdout) ? MD_TEXT_COLOR : 0) |
                         (o->verbose ? MD_DIAG_TEXT_ALL : 0);
        md_diag_write_text(r, stdout, flags);
    }
    if (fflush(stdout) != 0)
        return cli_write_failed(prog, 0);
    return rc;
}

int main(int argc, char **argv)
{
    options o = { .timeout = 30, .run.advice = advice };
    md_conf *conf = NULL;
    md_diag_settings set = { 0 };
    md_diag_config cfg = { 0 };
    md_diag_result *r = NULL;
    md_token_keys *keys = NULL;
    char *password = NULL, why[600] = "";
    md_error err = { 0 };
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        rc = rc > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if ((rc = load_config(&o, &conf, &set)) != 0)
        goto done;
    o.dns.timeout = MD_DNS_TIMEOUT_DEFAULT;   /* [dns] timeout may say otherwise */
    if (cli_config_dns(prog, conf, &o.dns) != 0 || cli_dns_settle(&o.dns, prog) != 0) {
        rc = MD_EXIT_UNKNOWN;
        goto done;
    }
    if (o.show_config) {
        rc = show_config(conf, &o.dns, &set);
        goto done;
    }
    rc = MD_EXIT_UNKNOWN;
    o.run.timeout_ms = (int)(o.timeout * 1000);
    if (o.timeout < o.dns.timeout)   /* no query outlasts the run */
        o.dns.timeout = o.timeout;
    cfg.settings = &set;
    cfg.account.many = set.typo_many;
    cfg.account.key_flags = set.case_sensitive ? MD_ADDRESS_CASE_SENSITIVE : 0;
    if (set.store_uri && (cfg.store = open_store(conf, set.store_uri, why, sizeof why)) == NULL)
        cfg.store_error = why;
    if ((cfg.dns = cli_dns_open(&o.dns, prog, 0)) == NULL) {
        rc = fail(&o, "config.error", "the resolver cannot be set up");
        goto done;
    }
    if ((!o.run.no_probe || o.run.send) && (cfg.smtp = md_smtp_ctx_new(set.ca_file, &err)) == NULL) {
        rc = fail(&o, "config.error", "SMTP: %s", err.text);
        goto done;
    }
    if (o.run.send && set.user) {
        if (set.password_file)
            password = cli_read_secret_file(prog, "password", set.password_file);
        else if (getenv("MAILDIAG_SMTP_PASSWORD"))
            password = md_xstrdup(getenv("MAILDIAG_SMTP_PASSWORD"));
        if (password == NULL) {
            rc = fail(&o, "config.error", "[mail] user needs password_file (or MAILDIAG_SMTP_PASSWORD)");
            goto done;
        }
        cfg.password = password;
    }
    const char *kf = set.key_file ? set.key_file : getenv("MAILDIAG_TOKEN_KEYS");
    if (o.run.send && kf && *kf && (o.run.email == MD_DIAG_EMAIL_RESET || o.run.email == MD_DIAG_EMAIL_VERIFY)) {
        if ((keys = md_token_keys_load(kf, &err)) == NULL) {
            rc = fail(&o, "config.error", "token keys: %s", err.text);
            goto done;
        }
        cfg.keys = keys;
    }
    if (md_diag_run(&cfg, o.address, &o.run, &r, &err) != MD_OK) {
        rc = fail(&o, "config.error", "%s", err.text);
        goto done;
    }
    rc = render(&o, r);
done:
    md_diag_result_free(r);
    md_token_keys_free(keys);
    cli_secret_free(password);
    md_smtp_ctx_free(cfg.smtp);
    md_dns_free(cfg.dns);
    md_store_free(cfg.store);
    md_diag_settings_clear(&set);
    md_conf_free(conf);
    cli_dns_clear(&o.dns);
    return rc;
}
