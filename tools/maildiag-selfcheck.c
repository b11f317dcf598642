/*
 * maildiag-selfcheck: the self-service path for a person who did not get an
 * email (behind a web form or a restricted command).  It must not tell
 * anyone whether an account exists, so:
 *  - the terminal gets only public facts (a typo in the domain, whether the
 *    domain takes mail, a rate limit), in words that do not depend on the
 *    accounts, after a fixed minimum time;
 *  - everything that depends on the accounts happens in a child process
 *    that emails the owner of the address (the answer, or "no account") and
 *    writes the send and audit logs; the parent does not wait for it, so
 *    neither the words nor the time differ.
 * Rate limits per address and overall live in the store.  Manual:
 * maildiag-selfcheck.1.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usercli.h"

static const char *prog = "maildiag-selfcheck";

typedef struct options {
    ucli u;
    cli_format format;
    int want;              /* md_account_want, -1 = not given */
    double min_time;       /* seconds; < 0 = from the config, else 2 */
    int wait;              /* --wait: wait for the email before exiting */
    int show_config;       /* --show-config */
    const char *address;
} options;

typedef struct limits {
    unsigned long per_address, per_address_window, overall, overall_window;
} limits;

static void usage(void)
{
    printf("Usage: %s [OPTION]... ADDRESS --want username|verify|reset\n"
           "Self-service help for a missing email that never tells whether an account exists:\n"
           "the same words, after the same time, for every address; the answer goes by email\n"
           "to the address itself.\n\n"
           "      --want WHAT           username (a reminder), verify (a fresh verification link)\n"
           "                            or reset (a password-reset link)\n"
           "      --store URI           sqlite:PATH or postgresql://... (default MAILDIAG_STORE,\n"
           "                            else [store] uri in the configuration)\n"
           CLI_HELP_CONFIG
           "      --show-config         show the settings in effect and exit\n"
           "  -m, --min-time SECONDS    answer no sooner than this (default 2, [selfcheck] min_time)\n"
           "      --wait                wait until the email is sent before exiting (testing only:\n"
           "                            the time then depends on the accounts)\n"
           "  -j, --json                JSON output (one object)\n"
           "      --no-dns              do not check whether the domain takes mail\n"
           CLI_HELP_DNS
           CLI_HELP_COMMON "\n"
           "Exit: the status of the answer: 0 request accepted, 1 rate-limited or a likely typo,\n"
           "2 the domain takes no mail, 3 invalid address, usage or service error, or whether the\n"
           "domain takes mail could not be checked (a DNS failure).\n", prog);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_WAIT = 256, OPT_NODNS, OPT_WANT, OPT_STORE, OPT_SHOW };
    static const struct option longopts[] = {
        { "want", required_argument, NULL, OPT_WANT }, { "store", required_argument, NULL, OPT_STORE },
        { "config", required_argument, NULL, 'C' }, { "show-config", no_argument, NULL, OPT_SHOW },
        { "min-time", required_argument, NULL, 'm' },
        { "wait", no_argument, NULL, OPT_WAIT }, { "json", no_argument, NULL, 'j' },
        { "no-dns", no_argument, NULL, OPT_NODNS }, { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' }, { NULL, 0, NULL, 0 }
    };
    int c;
    char *end;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:m:jr:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_WANT:
            if ((o->want = md_account_want_parse(optarg)) < 0) {
                cli_usage_error(prog, "--want: '%s' is not username, verify or reset", optarg);
                return -1;
            }
            break;
        case OPT_STORE: o->u.store_uri = optarg; break;
        case 'C': o->u.config_path = optarg; break;
        case OPT_SHOW: o->show_config = 1; break;
        case 'm':
            errno = 0;
            o->min_time = strtod(optarg, &end);
            if (errno || *end || end == optarg || !isfinite(o->min_time) || o->min_time < 0 ||
                o->min_time > 60) {
                cli_usage_error(prog, "--min-time: '%s' is not a number of seconds from 0 to 60", optarg);
                return -1;
            }
            break;
        case OPT_WAIT: o->wait = 1; break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case OPT_NODNS: o->u.no_dns = 1; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->u.dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    if (o->show_config)
        return 0;
    if (optind != argc - 1) {
        cli_usage_error(prog, optind >= argc ? "no ADDRESS given" : "give exactly one ADDRESS");
        return -1;
    }
    if (o->want < 0) {
        cli_usage_error(prog, "--want username|verify|reset is required");
        return -1;
    }
    o->address = argv[optind];
    return 0;
}

/* "N/SECONDS" from the config, else the default. */
static int parse_limit(const ucli *u, const char *key, unsigned long *n, unsigned long *win)
{
    const char *v = ucli_conf(u, "selfcheck", key);
    if (v == NULL)
        return 0;
    char *end;
    unsigned long a = strtoul(v, &end, 10), b;
    if (end == v || *end != '/' || (b = strtoul(end + 1, &end, 10)) == 0 || *end || a == 0) {
        cli_error(prog, "configuration: [selfcheck] %s must be N/SECONDS (like 5/3600)", key);
        return -1;   /* the answer says the service is unavailable: the why is the operator's */
    }
    *n = a;
    *win = b;
    return 0;
}

static int load_settings(options *o, limits *l)
{
    *l = (limits){ 5, 3600, 300, 60 };
    if (parse_limit(&o->u, "per_address", &l->per_address, &l->per_address_window) != 0 ||
        parse_limit(&o->u, "overall", &l->overall, &l->overall_window) != 0)
        return -1;
    const char *v = ucli_conf(&o->u, "selfcheck", "min_time");
    char *end = NULL;
    double t = v ? strtod(v, &end) : 2.0;
    if (v && (*end || end == v || !isfinite(t) || t < 0 || t > 60)) {
        cli_error(prog, "configuration: [selfcheck] min_time must be a number of seconds from 0 to 60");
        return -1;
    }
    if (o->min_time < 0)
        o->min_time = t;
    return 0;
}

/* --show-config: the settings this tool reads, as they apply. */
static int show_config(options *o, const limits *l)
{
    const char *uri = o->u.store_uri;
    if (uri == NULL && getenv("MAILDIAG_STORE") && *getenv("MAILDIAG_STORE"))
        uri = getenv("MAILDIAG_STORE");
    if (uri == NULL)
        uri = ucli_conf(&o->u, "store", "uri");
    cli_show_config(stdout, o->u.conf, &o->u.dns, prog);
    cli_line(stdout, "store.uri = %s", uri && !strstr(uri, "@") ? uri : uri ? "(set; not shown: it may hold a password)"
                                                                         : "(none)");
    cli_line(stdout, "selfcheck.min_time = %g", o->min_time);
    cli_line(stdout, "selfcheck.per_address = %lu/%lu", l->per_address, l->per_address_window);
    cli_line(stdout, "selfcheck.overall = %lu/%lu", l->overall, l->overall_window);
    return fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
}

/* Counts this request against both limits.  Returns 1 when over a limit. */
static int rate_limited(ucli *u, const md_account_public *p, const limits *l, md_error *err,
                        md_status *st)
{
    char key[MD_ADDRESS_MAX + 32];
    unsigned long n = 0, all = 0;
    int64_t now = (int64_t)time(NULL);
    /* +tag and dot variants of one gmail mailbox share one limit. */
    snprintf(key, sizeof key, "selfcheck:%s", p->pkey[0] ? p->pkey : p->key);
    *st = md_store_rate_hit(u->store, key, (unsigned)l->per_address_window, now, &n, err);
    if (*st == MD_OK)
        *st = md_store_rate_hit(u->store, "selfcheck:*", (unsigned)l->overall_window, now, &all, err);
    return *st == MD_OK && (n > l->per_address || all > l->overall);
}

/* Forks the private part into a detached child with standard streams on
 * /dev/null.  Returns the child's pid in the parent, 0 in the child, -1
 * when there is no child (then the caller does the work itself). */
static pid_t dispatch(void)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    setsid();
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

/* The private part: maildiag-notify emails the owner of the address and
 * writes the send and audit logs (tools/selfmail).  The child becomes it
 * (and never returns); without a child, it runs while the answer waits. */
static void send_private(options *o, const md_account_public *pub, pid_t child)
{
    /* A resolver inherited across fork shares its sockets with the parent. */
    md_dns_free(o->u.resolver);
    o->u.resolver = NULL;
    json_t *req = ucli_notify_request(&o->u, "selfcheck");
    json_object_set_new(req, "to", json_string(pub->address.ascii));
    json_object_set_new(req, "key", json_string(pub->key));
    json_object_set_new(req, "want", json_string(md_account_want_name((md_account_want)o->want)));
    if (child < 0) {
        ucli_notify_run(&o->u, req, NULL);
        json_decref(req);
        return;
    }
    ucli_notify_exec(&o->u, req);
    /* Still here: the helper could not run.  The send log says so. */
    md_error err;
    md_store_send rec = { .at = (int64_t)time(NULL), .kind = (char *)md_account_want_name((md_account_want)o->want),
                          .to = (char *)pub->key, .outcome = "failed",
                          .reply = "cannot run maildiag-notify (the helper that sends)" };
    if (ucli_open_store(&o->u, 0) == 0)
        md_store_send_add(o->u.store, &rec, &err);
    json_decref(req);
    ucli_clear(&o->u);
    _exit(0);
}

static void pad_until(int64_t deadline_ms)
{
    for (int64_t left; (left = deadline_ms - md_now_ms()) > 0;) {
        struct timespec ts = { (time_t)(left / 1000), (long)(left % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* The answer: words that depend only on public facts. */
static void render(const options *o, md_report *rep, const char *const *lines, size_t n)
{
    if (o->format == CLI_JSON) {
        md_report_write_json(rep, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (lines[i])
            cli_line(stdout, "%s", lines[i]);   /* they quote the address given */
}

int main(int argc, char **argv)
{
    options o = { .u = { .prog = prog, .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } }, .want = -1,
                  .min_time = -1 };
    int64_t t0 = md_now_ms();
    int p = parse_options(argc, argv, &o);
    if (p != 0)
        return p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
    if (o.show_config) {
        limits l;
        p = ucli_load_config(&o.u) != 0 || load_settings(&o, &l) != 0 ? MD_EXIT_UNKNOWN : show_config(&o, &l);
        ucli_clear(&o.u);
        return p;
    }
    /* From here on every error is part of the one answer (its report), which
     * says no more than that the service is unavailable. */
    cli_json_hook = NULL;

    md_error err = { 0 };
    md_account_public *pub = md_xcalloc(1, sizeof *pub);
    md_report *rep = md_report_new(prog, o.address);
    limits lim;
    md_status st = MD_INTERNAL;
    int invalid = 0;
    pid_t child = 0;
    const char *lines[6] = { 0 };
    char l0[1400], l1[1400], l2[400];
    const char *what = o.want == MD_ACCOUNT_WANT_USERNAME ? "a username reminder"
                     : o.want == MD_ACCOUNT_WANT_VERIFY ? "a new verification link" : "a password reset";

    if (ucli_load_config(&o.u) != 0 || load_settings(&o, &lim) != 0) {
        md_report_add(rep, "config.error", MD_SEV_DEFAULT, "the service is unavailable at the moment");
        lines[0] = "The service is unavailable at the moment; please try again later.";
        goto done;
    }
    md_report_set(rep, "want", json_string(md_account_want_name((md_account_want)o.want)));
    if (ucli_open_store(&o.u, 0) != 0 || ucli_open_dns(&o.u) != 0) {
        lines[0] = "The service is unavailable at the moment; please try again later.";
        goto done;
    }
    st = md_account_public_facts(o.u.store, o.u.resolver, o.address, &o.u.aopt, pub, &err);
    if (st == MD_CONFIG) {
        md_report_add(rep, "address.invalid", MD_SEV_DEFAULT, "not a valid email address: %s", err.text);
        snprintf(l0, sizeof l0, "That is not a valid email address: %s.", err.text);
        lines[0] = l0;
        invalid = 1;
        goto done;
    }
    if (st == MD_OK) {
        cli_address_findings(rep, &pub->address);
        md_report_set(rep, "address", json_string(pub->address.display));
        md_report_set(rep, "domain", json_pack("{s:s,s:s}", "name", pub->address.domain, "mail",
                                               !pub->mx_checked ? "not_checked" : pub->mx == MD_ADDRESS_MX_WORKS
                                               ? "ok" : pub->mx == MD_ADDRESS_MX_NONE ? "none" : "unknown"));
        if (rate_limited(&o.u, pub, &lim, &err, &st)) {
            md_report_add(rep, "selfcheck.rate_limited", MD_SEV_DEFAULT,
                          "too many requests for this address or overall: nothing was sent; try again later");
            lines[0] = "Too many requests for this address. Nothing was sent; please try again later.";
        } else if (st == MD_OK && pub->mx_checked && pub->mx == MD_ADDRESS_MX_NONE) {
            md_report_add(rep, "address.no_mail", MD_SEV_DEFAULT,
                          "the domain %s cannot receive email: nothing was sent", pub->address.domain);
            snprintf(l0, sizeof l0, "The domain %s cannot receive email, so nothing can be sent to %s."
                     " Please check the address.", pub->address.domain, pub->address.display);
            lines[0] = l0;
        } else if (st == MD_OK) {
            md_report_add(rep, "selfcheck.accepted", MD_SEV_DEFAULT,
                          "an email about %s is on its way to %s", what, pub->address.display);
            snprintf(l0, sizeof l0, "We are sending an email about %s to %s. If an account uses this"
                     " address, the email has what you asked for; if none does, it says so.", what,
                     pub->address.display);
            lines[0] = l0;
            lines[1] = "If it has not arrived in 15 minutes, look in the spam folder.";
            md_store_free(o.u.store);   /* never carry a database connection across fork */
            o.u.store = NULL;
            child = dispatch();
            if (child <= 0)   /* the child; or no process to spare: answer late */
                send_private(&o, pub, child);
        }
        if (st == MD_OK && pub->mx_checked && pub->mx == MD_ADDRESS_MX_UNKNOWN) {
            /* A failed lookup is no answer: the request goes on, and the
             * status says that whether the domain takes mail is unknown. */
            md_report_add(rep, "address.dns_temporary", MD_SEV_DEFAULT,
                          "could not find out whether %s receives mail: the DNS lookup failed",
                          pub->address.domain);
            snprintf(l2, sizeof l2, "We could not check whether the domain %s receives email"
                     " (a temporary DNS failure).", pub->address.domain);
            lines[3] = l2;
        }
        if (st == MD_OK && pub->typo[0]) {
            md_finding *f = md_report_add(rep, "address.typo", MD_SEV_DEFAULT,
                                          "%s looks like a typo: did you mean %s@%s?", pub->address.domain,
                                          pub->address.local, pub->typo);
            md_finding_add_evidence(f, "suggestion: %s", pub->typo);
            md_report_set(rep, "typo", json_pack("{s:s,s:s}", "domain", pub->address.domain, "suggestion", pub->typo));
            snprintf(l1, sizeof l1, "Did you mean %s@%s? The domain %s looks like a typo.",
                     pub->address.local, pub->typo, pub->address.domain);
            lines[2] = l1;
        }
    }
    if (st != MD_OK) {
        ucli_error(&o.u, "store", &err);   /* the why is the operator's, on standard error */
        md_report_add(rep, "store.error", MD_SEV_DEFAULT, "the service is unavailable at the moment");
        lines[0] = "The service is unavailable at the moment; please try again later.";
        lines[1] = lines[2] = lines[3] = NULL;
    }
done:
    pad_until(t0 + (int64_t)llround((o.min_time < 0 ? 2.0 : o.min_time) * 1000.0));
    if (!md_report_count(rep))
        md_report_add(rep, "store.error", MD_SEV_DEFAULT, "the service is unavailable at the moment");
    render(&o, rep, lines, sizeof lines / sizeof lines[0]);
    if (invalid)   /* the words every tool gives a bad address, for whoever runs this */
        cli_address_error(prog, NULL, o.address, &err);
    int rc = md_severity_exit_code(md_report_status(rep));
    if (fflush(stdout) != 0)
        rc = MD_EXIT_UNKNOWN;
    if (child > 0 && o.wait)
        waitpid(child, NULL, 0);
    md_report_free(rep);
    free(pub);
    ucli_clear(&o.u);
    return rc;
}
