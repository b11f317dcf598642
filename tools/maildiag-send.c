/*
 * maildiag-send: send the product's email (verify, reset, username, plain)
 * to an address now, through the relay or straight to the MX hosts, and show
 * what the server answered; with --await, whether it arrived in the
 * recipient's mailbox.  Over lib/message, lib/token, lib/smtp, lib/arrival,
 * lib/report; the settings as the account emails read them (cli-send.h).
 * The manual is maildiag-send.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-send.h"
#include "arrival/arrival.h"
#include "base/input.h"
#include "message/message.h"
#include "smtp/smtp.h"
#include "token/token.h"

static const char *prog = "maildiag-send";

typedef struct options {
    cli_send s;                    /* from, route, TLS, AUTH, keys, links: options, env, [mail], [token] */
    const char *template_name, *config_path, *link_base, *account, *save;
    char **to, **usernames, **files;
    size_t nto, nusernames, nfiles;
    unsigned count;
    cli_dns dns;
    cli_format format;
    cli_plugin plugin;
    int dry_run, verbose, quiet, show_config, direct_given;
    md_conf *conf;
    /* --await: the mailbox is opened before the first send */
    md_arrival_options await;
    const char *await_password_file;
    const char **authserv_ids;
    size_t nauthserv_ids;
    int await_set;                 /* an --await-* option was given */
    md_arrival *arrival;           /* the open mailbox, or NULL ... */
    md_arrival_result *mailbox_down; /* ... and why it could not be opened: nothing is sent */
} options;

/* What a run did, for the exit status, the plugin line and an interrupt. */
typedef struct run {
    size_t done;                   /* sends finished (results written) */
    md_tally tally;
    double slowest;                /* seconds, for -w/-c */
    cli_progress progress;
} run;

static void usage(void)
{
    printf("Usage: %s --to ADDRESS [OPTION]...\n"
           "Send the product's email now and show the receiving server's answer.\n"
           "Exit: the status shown: 0 ok (accepted), 1 warning (deferred, or accepted with a\n"
           "warning), 2 critical (rejected, could not complete; with --await: not found),\n"
           "3 unknown (the route's DNS lookup failed; usage or own error; mailbox unreadable).\n\n"
           "      --to ADDRESS       recipient (repeatable: one send each)\n"
           "  -f, --file FILE        more recipients, one a line ('-' = stdin)\n"
           "      --count N          send N times to each recipient (benchmarks; default 1)\n"
           "  -T, --template NAME    verify, reset, username or plain (default plain)\n"
           "      --from ADDRESS     sender (default MAILDIAG_FROM, else [mail] from, else\n"
           "                         maildiag@HOSTNAME)\n"
           "      --from-name NAME   sender display name\n"
           "      --server HOST[:PORT]  relay (port default 587: STARTTLS required there;\n"
           "                         default [mail] server)\n"
           "      --direct           straight to the recipient domain's MX hosts (port 25)\n"
           "      --allow-internal   --direct may connect to loopback, private and other\n"
           "                         internal MX addresses (refused by default)\n"
           "      --tls POLICY       required, opportunistic or off\n"
           "      --insecure         do not verify certificates (diagnosis only)\n"
           "      --ca-file FILE     trust these CA certificates instead of the system store\n"
           "      --user USER        AUTH user; the password comes from --password-file\n"
           "      --password-file FILE  or the environment MAILDIAG_SMTP_PASSWORD\n"
           "  -t, --timeout SECONDS  budget for each send, all hosts (default 60)\n"
           "      --quit-after PHASE probe: connect, banner, ehlo, starttls, auth, mail or rcpt\n"
           "      --dsn              ask for delivery status notifications (when offered)\n"
           "      --helo NAME        EHLO name (default the host name)\n"
           "      --template-dir DIR template overrides (default MAILDIAG_TEMPLATE_DIR)\n"
           "      --product NAME     {{product}} in the templates (default Example)\n"
           "      --username NAME    {{username}}; repeat for the username template's list\n"
           "      --link-base URL    verify/reset link, the token is appended (default [token]\n"
           "                         reset_url or verify_url, else https://example.com/TEMPLATE?token=)\n"
           "      --account ID       account id in the token (default the address)\n"
           "      --key-file FILE    token keys (default MAILDIAG_TOKEN_KEYS, else [token]\n"
           "                         key_file; none: a throwaway key)\n"
           "  -r, --resolver IP[:PORT]  DNS server for --direct (default MAILDIAG_RESOLVER,\n"
           "                         else [dns] resolver, else the system resolver)\n"
           "      --dry-run          print the exact message instead of sending it\n"
           "      --save-message FILE  also write the exact message sent to FILE\n"
           "      --await URL        after an accepted send, wait for the message in this mailbox:\n"
           "                         imaps://USER@HOST[:PORT][/FOLDER] (TLS) or imap://... (STARTTLS\n"
           "                         when offered); FOLDER default INBOX; Junk folders too\n"
           "      --await-timeout SECONDS  how long to wait after each send (default 60)\n"
           "      --await-password-file FILE  the IMAP password (or MAILDIAG_IMAP_PASSWORD)\n"
           "      --await-ca-file FILE  trust these CA certificates for the IMAP server\n"
           "      --await-insecure   do not verify the IMAP server's certificate\n"
           "      --await-delete     delete the message from the mailbox once found\n"
           "      --await-authserv-id ID  trust the receiver's Authentication-Results with\n"
           "                         this authserv-id only (repeatable; default the topmost's)\n"
           CLI_HELP_CONFIG
           "      --show-config      show the settings in effect (options, environment, file)\n"
           "  -j, --json             one JSON object per send\n"
           "  -p, --plugin           one monitoring-plugin status line with perfdata\n"
           "  -w, --warning RANGE    --plugin: warning when the slowest send's time in seconds\n"
           "                         is outside RANGE (monitoring-plugins ranges: 5 is 0..5)\n"
           "  -c, --critical RANGE   --plugin: the same for critical\n"
           "  -q, --quiet            show only sends whose status is not OK\n"
           "  -v, --verbose          show the transcript\n"
           CLI_HELP_COMMON, prog);
}

static int await_timeout(const char *arg, options *o)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v <= 0 || v > MD_ARRIVAL_TIMEOUT_MAX_MS / 1000)
        return cli_usage_error(prog, "--await-timeout: '%s' is not a number of seconds between 0 and %u",
                               arg, MD_ARRIVAL_TIMEOUT_MAX_MS / 1000), -1;
    o->await.timeout_ms = v * 1000 < 1 ? 1 : (unsigned)(v * 1000);
    return 0;
}

static void push(char ***v, size_t *n, char *s)
{
    *v = md_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_FROM = 256, O_FROMNAME, O_TLS, O_CA, O_PWFILE, O_DSN, O_HELO, O_TDIR, O_PRODUCT,
           O_USERNAME, O_LINK, O_ACCOUNT, O_KEY, O_DRY, O_SAVE, O_INTERNAL, O_TO, O_COUNT, O_SERVER,
           O_DIRECT, O_INSECURE, O_USER, O_QUIT, O_SHOW, O_AWAIT, O_AWAIT_TIMEOUT, O_AWAIT_PW,
           O_AWAIT_CA, O_AWAIT_INSECURE, O_AWAIT_DELETE, O_AWAIT_ID };
    static const struct option lo[] = {
        { "template", 1, NULL, 'T' }, { "to", 1, NULL, O_TO }, { "file", 1, NULL, 'f' },
        { "count", 1, NULL, O_COUNT }, { "from", 1, NULL, O_FROM }, { "from-name", 1, NULL, O_FROMNAME },
        { "server", 1, NULL, O_SERVER }, { "direct", 0, NULL, O_DIRECT }, { "tls", 1, NULL, O_TLS },
        { "allow-internal", 0, NULL, O_INTERNAL }, { "insecure", 0, NULL, O_INSECURE },
        { "ca-file", 1, NULL, O_CA }, { "user", 1, NULL, O_USER }, { "password-file", 1, NULL, O_PWFILE },
        { "timeout", 1, NULL, 't' }, { "quit-after", 1, NULL, O_QUIT }, { "dsn", 0, NULL, O_DSN },
        { "helo", 1, NULL, O_HELO }, { "template-dir", 1, NULL, O_TDIR }, { "product", 1, NULL, O_PRODUCT },
        { "username", 1, NULL, O_USERNAME }, { "link-base", 1, NULL, O_LINK },
        { "account", 1, NULL, O_ACCOUNT }, { "key-file", 1, NULL, O_KEY }, { "resolver", 1, NULL, 'r' },
        { "dry-run", 0, NULL, O_DRY }, { "save-message", 1, NULL, O_SAVE }, { "config", 1, NULL, 'C' },
        { "show-config", 0, NULL, O_SHOW }, { "json", 0, NULL, 'j' }, { "plugin", 0, NULL, 'p' },
        { "warning", 1, NULL, 'w' }, { "critical", 1, NULL, 'c' }, { "quiet", 0, NULL, 'q' },
        { "await", 1, NULL, O_AWAIT }, { "await-timeout", 1, NULL, O_AWAIT_TIMEOUT },
        { "await-password-file", 1, NULL, O_AWAIT_PW }, { "await-ca-file", 1, NULL, O_AWAIT_CA },
        { "await-insecure", 0, NULL, O_AWAIT_INSECURE }, { "await-delete", 0, NULL, O_AWAIT_DELETE },
        { "await-authserv-id", 1, NULL, O_AWAIT_ID },
        { "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    md_smtp_request *r = &o->s.m.route;
    md_message_request *m = &o->s.m.message;
    double secs;
    int c, ph;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":T:f:t:r:C:jpw:c:qvhV", lo, NULL)) != -1) {
        switch (c) {
        case 'T': o->template_name = optarg; break;
        case O_TO: push(&o->to, &o->nto, optarg); break;
        case 'f': push(&o->files, &o->nfiles, optarg); break;
        case O_COUNT:
            if (cli_parse_uint(prog, "--count", optarg, 10000000, &o->count) != 0) return -1;
            break;
        case O_FROM: m->from = optarg; break;
        case O_FROMNAME: m->from_name = optarg; break;
        case O_SERVER: r->server = optarg; break;
        case O_DIRECT: o->s.direct = 1; break;
        case O_INTERNAL: r->allow_internal = o->s.allow_internal_given = 1; break;
        case O_TLS:
            if ((ph = md_smtp_tls_parse(optarg)) < 0)
                return cli_usage_error(prog, "--tls: required, opportunistic or off"), -1;
            r->tls = (md_smtp_tls)ph;
            o->s.tls_given = 1;
            break;
        case O_INSECURE: r->insecure = 1; break;
        case O_CA: o->s.ca_file = optarg; break;
        case O_USER: r->auth_user = optarg; break;
        case O_PWFILE: o->s.password_file = optarg; break;
        case 't':
            if (cli_parse_timeout(prog, optarg, &secs) != 0) return -1;
            r->timeout_ms = (int)(secs * 1000);
            o->s.timeout_given = 1;
            break;
        case O_QUIT:
            if ((ph = md_smtp_phase_parse(optarg)) < 0)
                return cli_usage_error(prog, "--quit-after: connect, banner, ehlo, starttls, auth, mail or rcpt"), -1;
            r->quit_after = (md_smtp_phase)ph;
            break;
        case O_DSN: r->dsn = 1; break;
        case O_HELO: r->helo = optarg; break;
        case O_TDIR: m->template_dir = optarg; break;
        case O_PRODUCT: m->product = optarg; break;
        case O_USERNAME: push(&o->usernames, &o->nusernames, optarg); break;
        case O_LINK: o->link_base = optarg; break;
        case O_ACCOUNT: o->account = optarg; break;
        case O_KEY: o->s.key_file = optarg; break;
        case 'r': if (cli_dns_add_resolver(&o->dns, prog, optarg) != 0) return -1; break;
        case O_DRY: o->dry_run = 1; break;
        case O_SAVE: o->save = optarg; break;
        case 'C': o->config_path = optarg; break;
        case O_SHOW: o->show_config = 1; break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case 'p': if (cli_format_set(prog, &o->format, CLI_PLUGIN) != 0) return -1; break;
        case 'w': if (cli_range_parse(prog, "-w", optarg, &o->plugin.warn) != 0) return -1; break;
        case 'c': if (cli_range_parse(prog, "-c", optarg, &o->plugin.crit) != 0) return -1; break;
        case 'q': o->quiet = 1; break;
        case O_AWAIT: o->await.url = optarg; break;
        case O_AWAIT_TIMEOUT:
            if (await_timeout(optarg, o) != 0) return -1;
            o->await_set = 1;
            break;
        case O_AWAIT_PW: o->await_password_file = optarg; o->await_set = 1; break;
        case O_AWAIT_CA: o->await.ca_file = optarg; o->await_set = 1; break;
        case O_AWAIT_INSECURE: o->await.insecure = 1; o->await_set = 1; break;
        case O_AWAIT_DELETE: o->await.delete_found = 1; o->await_set = 1; break;
        case O_AWAIT_ID:
            o->authserv_ids = md_xrealloc(o->authserv_ids, (o->nauthserv_ids + 2) * sizeof *o->authserv_ids);
            o->authserv_ids[o->nauthserv_ids++] = optarg;
            o->authserv_ids[o->nauthserv_ids] = NULL;
            o->await.authserv_ids = o->authserv_ids;
            o->await_set = 1;
            break;
        case 'v': o->verbose = 1; break;
        default: return cli_option_common(c, prog, argv, usage);
        }
    }
    if (optind < argc)
        return cli_usage_error(prog, "unexpected argument '%s' (recipients go with --to)", argv[optind]), -1;
    if (o->show_config)
        return 0;
    if (o->nto == 0 && o->nfiles == 0)
        return cli_usage_error(prog, "no recipient: give --to ADDRESS"), -1;
    if (r->server && o->s.direct)
        return cli_usage_error(prog, "--server and --direct are two routes: give one"), -1;
    if (!md_message_template_known(o->template_name))
        return cli_usage_error(prog, "--template: verify, reset, username or plain"), -1;
    if (o->await_set && !o->await.url)
        return cli_usage_error(prog, "the --await-* options go with --await URL"), -1;
    if (o->await.url && (o->dry_run || r->quit_after != MD_SMTP_PHASE_NONE))
        return cli_usage_error(prog, "--await waits for a message sent: not with --dry-run or --quit-after"), -1;
    if (o->dry_run && o->format == CLI_PLUGIN)
        return cli_usage_error(prog, "--dry-run sends nothing to check: not with --plugin"), -1;
    return cli_plugin_check(prog, o->format, &o->plugin);
}

/* The configuration, then the defaults; the route must be known.  0 or -1. */
static int settle(options *o)
{
    md_smtp_request *r = &o->s.m.route;
    if (cli_config_load(prog, o->config_path, &o->conf, NULL) != 0 ||
        cli_config_dns(prog, o->conf, &o->dns) != 0 || cli_send_settle(prog, o->conf, &o->s, 0) != 0)
        return -1;
    if (o->show_config)
        return 0;
    if (!o->dry_run && !o->s.direct && r->server == NULL)
        return cli_usage_error(prog, "say where to send: --server HOST[:PORT], [mail] server or --direct"), -1;
    md_message_request *m = &o->s.m.message;
    m->template_name = o->template_name;
    m->usernames = (const char *const *)o->usernames;
    m->nusernames = o->nusernames;
    m->username = o->nusernames ? o->usernames[0] : NULL;
    m->test_send = 1;
    m->test_sender = prog;
    r->mail_from = m->from;
    return 0;
}

#ifdef MD_SEND_AWAIT
/* --await: the password, then the mailbox, opened before the first send.
 * Returns 0 (o->arrival open, or o->mailbox_down saying why not), or -1
 * after reporting the error (a bad URL, no password). */
static int open_mailbox(options *o, char **password)
{
    md_error err = { 0 };
    if (o->await.url == NULL)
        return 0;
    if (o->await_password_file)
        *password = cli_read_secret_file(prog, "IMAP password", o->await_password_file);
    else if (getenv("MAILDIAG_IMAP_PASSWORD") && *getenv("MAILDIAG_IMAP_PASSWORD"))
        *password = md_xstrdup(getenv("MAILDIAG_IMAP_PASSWORD"));
    else
        cli_fail(prog, "config.error", "--await needs the IMAP password: --await-password-file FILE or "
                 "MAILDIAG_IMAP_PASSWORD");
    if (*password == NULL)
        return -1;
    o->await.password = *password;
    md_status st = md_arrival_open(&o->await, &o->arrival, &err);
    if (st == MD_CONFIG)
        return cli_fail(prog, "usage.error", "--await: %s", err.text), -1;
    if (st != MD_OK) {
        o->mailbox_down = md_xcalloc(1, sizeof *o->mailbox_down);
        md_arrival_open_failed(o->await.url, &err, o->mailbox_down);
    }
    return 0;
}

/* --await: the arrival of the message just sent (or why it was not
 * awaited) into the send's report, and its JSON into *json. */
static void await_arrival(options *o, const md_message *m, md_smtp_result *res, json_t **json)
{
    md_arrival_result ar;
    md_error err = { 0 };
    md_arrival_sent sent = { m->data, m->len, m->message_id, res->final_reply_ms, res->host, res->queue_id };
    if (res->outcome == MD_SMTP_ACCEPTED && isatty(STDERR_FILENO))
        cli_error(prog, "waiting up to %g s for %s in %s", (o->await.timeout_ms ? o->await.timeout_ms
                  : MD_ARRIVAL_TIMEOUT_DEFAULT_MS) / 1000.0, m->message_id, o->await.url);
    if (res->outcome != MD_SMTP_ACCEPTED)
        md_arrival_not_awaited(o->arrival, md_smtp_outcome_name(res->outcome), &ar);
    else if (md_arrival_wait(o->arrival, &sent, &ar, &err) != MD_OK)
        md_arrival_open_failed(o->await.url, &err, &ar);   /* not reached: we compose the Message-ID */
    md_arrival_report(&ar, res->findings);
    md_report *desc = md_report_new("arrival", NULL);   /* the field goes after the send's */
    md_arrival_describe(&ar, desc);
    *json = json_incref(json_object_get(md_report_fields(desc), "arrival"));
    md_report_free(desc);
    md_arrival_result_clear(&ar);
}
#else
/* maildiag-send itself loads neither libcurl nor GMime, which a process
 * per message would pay for at every start: with --await, main() runs
 * maildiag-send-await, this program built with lib/arrival, instead.  Here
 * no mailbox is ever open. */
static int open_mailbox(options *o, char **password)
{
    (void)o, (void)password;
    return 0;
}

static void await_arrival(options *o, const md_message *m, md_smtp_result *res, json_t **json)
{
    (void)o, (void)m, (void)res, (void)json;
}
#endif

static unsigned text_flags(void)
{
    return md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE : MD_TEXT_EVIDENCE;
}

/* Writes one result (the report, in the format asked), counts it, and
 * frees nothing.  -q leaves out the ok ones; --plugin writes at the end. */
static void emit(options *o, run *r, md_report *rep, double secs)
{
    md_severity st = md_report_status(rep);
    md_tally_add(&r->tally, st);
    cli_plugin_add(&o->plugin, rep);
    if (secs > r->slowest)
        r->slowest = secs;
    r->done++;
    if (o->format == CLI_PLUGIN || (o->quiet && st == MD_SEV_OK))
        return;
    cli_progress_end(&r->progress);
    if (o->format == CLI_JSON)
        md_report_write_json(rep, stdout);
    else
        md_report_write_text(rep, stdout, text_flags());
}

/* A send that could not be made (a bad address, a template error): the
 * words on stderr, and its result: input.invalid, status unknown. */
static void failed(options *o, run *r, const char *to, const char *id, const md_error *err)
{
    cli_error(prog, "%s: %s", to, err->text);   /* both may quote what was given */
    md_report *rep = md_report_new(prog, to);
    md_report_set(rep, "to", cli_json_text(to));
    md_report_add(rep, id, MD_SEV_UNKNOWN, "%s", err->text);
    if (o->format == CLI_TEXT) {   /* the words are on stderr; count it only */
        md_tally_add(&r->tally, MD_SEV_UNKNOWN);
        cli_plugin_add(&o->plugin, rep);
        r->done++;
    } else {
        emit(o, r, rep, 0);
    }
    md_report_free(rep);
}

#ifdef MD_SEND_AWAIT
/* --await with a mailbox that cannot be read: nothing is sent (the
 * message could not be looked for); the report says why. */
static void mailbox_down(options *o, run *r, const char *to)
{
    md_report *rep = md_report_new(prog, to);
    md_arrival_report(o->mailbox_down, rep);
    md_report_add_detail(rep, "nothing was sent: the mailbox to watch cannot be read");
    md_report_set(rep, "to", json_string(to));
    md_report_set(rep, "sent", json_false());
    md_arrival_describe(o->mailbox_down, rep);
    emit(o, r, rep, 0);
    md_report_free(rep);
}
#else
static void mailbox_down(options *o, run *r, const char *to)
{
    (void)o, (void)r, (void)to;
}
#endif

/* The verdict line ("TO: accepted by HOST as QID in N ms"); with --await it
 * is shown before the wait. */
static void print_verdict(const options *o, const md_smtp_result *r, const char *to)
{
    char what[1200];
    if (r->outcome == MD_SMTP_ACCEPTED && o->s.m.route.quit_after)
        snprintf(what, sizeof what, "probe ok: %s answered up to %s", r->host, md_smtp_phase_name(r->phase));
    else if (r->outcome == MD_SMTP_ACCEPTED)
        snprintf(what, sizeof what, "accepted by %s%s%s", r->host, r->queue_id[0] ? " as " : "", r->queue_id);
    else
        snprintf(what, sizeof what, "%s by %s at %s%s%d %s %s", md_smtp_outcome_name(r->outcome),
                 r->host[0] ? r->host : "-", md_smtp_phase_name(r->phase), r->reply.code ? ": " : "",
                 r->reply.code, r->reply.enhanced, r->reply.text);
    if (r->outcome != MD_SMTP_ACCEPTED && r->reply.code == 0)
        snprintf(what, sizeof what, "%s at %s (%s)", md_smtp_outcome_name(r->outcome),
                 md_smtp_phase_name(r->phase), r->host[0] ? r->host : "no host");
    cli_line(stdout, "%s: %s in %lld ms", to, what, (long long)r->elapsed_ms);
    fflush(stdout);
}

/* The message of one send: composed (with a fresh token for a link), and
 * saved with --save-message.  MD_OK with *out, or err. */
static md_status compose(options *o, const char *to, md_message **out, md_error *err)
{
    md_message_request mr = o->s.m.message;
    const char *t = mr.template_name;
    char *token = NULL, *link = NULL;
    md_status st = MD_OK;
    mr.to = to;
    if (!strcmp(t, "verify") || !strcmp(t, "reset")) {
        int64_t now = (int64_t)time(NULL), ttl = o->s.m.ttl ? o->s.m.ttl : MD_TOKEN_TTL_DEFAULT;
        token = md_token_issue(o->s.keys, t, o->account ? o->account : to, "", now, ttl, err);
        if (token == NULL)
            return err->status ? err->status : MD_INTERNAL;
        const char *base = o->link_base ? o->link_base : !strcmp(t, "reset") ? o->s.m.reset_url
                                                                             : o->s.m.verify_url;
        link = md_token_link(base, t, token);
        mr.link = link;
        mr.expires = now + ttl;
        mr.link_is_test = md_token_keys_throwaway_p(o->s.keys);
    }
    if ((st = md_message_compose(&mr, out, err)) == MD_OK && o->save) {
        FILE *f = fopen(o->save, "wb");
        int bad = f == NULL || fwrite((*out)->data, 1, (*out)->len, f) != (*out)->len;
        if ((f && fclose(f) != 0) || bad)
            st = md_error_set(err, MD_CONFIG, "save", "cannot write %s", o->save);
    }
    free(token);
    free(link);
    return st;
}

/* --dry-run: the exact message, raw or as {"message": ...}. */
static void dry_run(options *o, run *r, const char *to, const md_message *m)
{
    if (o->format != CLI_JSON) {
        fwrite(m->data, 1, m->len, stdout);
        md_tally_add(&r->tally, MD_SEV_OK);
        r->done++;
        return;
    }
    md_report *rep = md_report_new(prog, to);
    md_report_set(rep, "to", cli_json_text(to));
    md_report_set(rep, "message_id", json_string(m->message_id));
    md_report_set(rep, "message", json_stringn(m->data, m->len));
    emit(o, r, rep, 0);
    md_report_free(rep);
}

/* Composes and sends (or prints) one message to one address. */
static void one(options *o, run *r, const char *to)
{
    md_error err = { 0 };
    md_message *m = NULL;
    const md_smtp_request *route = &o->s.m.route;
    if (md_message_check_address("--to", to, &err) != MD_OK ||
        md_message_check_address("--from", o->s.m.message.from, &err) != MD_OK) {
        failed(o, r, to, "input.invalid", &err);
        return;
    }
    if (o->mailbox_down) {
        mailbox_down(o, r, to);
        return;
    }
    /* a probe sends no message: nothing to compose */
    if ((route->quit_after == MD_SMTP_PHASE_NONE || o->dry_run || o->save) && compose(o, to, &m, &err) != MD_OK) {
        failed(o, r, to, strcmp(err.stage, "token.key") == 0 ? "config.error" : "input.invalid", &err);
        return;
    }
    if (o->dry_run) {
        dry_run(o, r, to, m);
        md_message_free(m);
        return;
    }
    md_smtp_request sr = *route;
    sr.rcpt_to = to;
    sr.data = m ? m->data : NULL;
    sr.len = m ? m->len : 0;
    sr.message_id = m ? m->message_id : NULL;
    md_smtp_result res;
    md_status st = md_smtp_send(o->s.smtp, &sr, &res, &err);
    if (st != MD_OK) {
        md_smtp_result_clear(&res);
        md_message_free(m);
        failed(o, r, to, "input.invalid", &err);
        return;
    }
    /* Stopped by a signal while it ran: its result is not to be trusted
     * unless the server accepted the message. */
    if (cli_interrupted && res.outcome != MD_SMTP_ACCEPTED) {
        md_smtp_result_clear(&res);
        md_message_free(m);
        return;
    }
    json_t *arrival = NULL;
    if (o->format == CLI_TEXT && !(o->quiet && !o->arrival && md_report_status(res.findings) == MD_SEV_OK)) {
        cli_progress_end(&r->progress);
        print_verdict(o, &res, to);
    }
    if (o->arrival)
        await_arrival(o, m, &res, &arrival);
    if (o->format == CLI_JSON) {
        md_smtp_describe(&res, to, res.findings);
        if (arrival)
            md_report_set(res.findings, "arrival", json_incref(arrival));
    }
    emit(o, r, res.findings, res.elapsed_ms / 1000.0);
    for (size_t i = 0; o->format == CLI_TEXT && o->verbose && i < res.ntranscript; i++)
        cli_line(stdout, "  %6lld ms %c %s", (long long)res.transcript[i].ms, res.transcript[i].dir,
                 res.transcript[i].text);
    json_decref(arrival);
    md_smtp_result_clear(&res);
    md_message_free(m);
}

/* The sends, one after another, until the input ends, a signal comes or
 * the reader of the output goes away.  Returns 0, or an exit code. */
static int send_all(options *o, run *r)
{
    md_error err = { 0 };
    md_input *in = md_input_new(o->to, o->nto, o->files, o->nfiles);
    size_t planned = o->nto * o->count;
    const char *to;
    int rc = 0;
    r->progress.enabled &= o->nfiles > 0 || planned > 1;
    while (rc == 0 && !cli_interrupted && (to = md_input_next(in, &err)) != NULL) {
        char *addr = md_xstrdup(to);   /* md_input reuses its buffer */
        for (unsigned i = 0; i < o->count && !cli_interrupted; i++) {
            one(o, r, addr);
            cli_progress_update(&r->progress, "sends", r->done + 1, r->done);
            errno = 0;
            if (fflush(stdout) != 0 || ferror(stdout)) {
                rc = cli_write_failed(prog, errno);
                break;
            }
        }
        free(addr);
    }
    cli_progress_end(&r->progress);
    if (rc == 0 && md_input_failed(in))
        rc = cli_fail(prog, "input.invalid", "%s", err.text);
    md_input_free(in);
    return rc;
}

int main(int argc, char **argv)
{
    options o = { .count = 1, .template_name = "plain", .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } };
    run r = { 0 };
    char *imap_password = NULL;
    int rc = MD_EXIT_UNKNOWN;

    cli_plugin_init(&o.plugin, "SMTP", "send", "sends");
    o.plugin.measure = "time";
    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
#ifndef MD_SEND_AWAIT
    if (o.await.url) {
        const char *path = cli_helper_path("maildiag-send-await");
        fflush(NULL);
        execv(path, argv);
        cli_fail(prog, "config.error", "--await: cannot run %s: %s", path, strerror(errno));
        goto done;
    }
#endif
    if (settle(&o) != 0)
        goto done;
    if (o.show_config) {
        cli_show_config(stdout, o.conf, &o.dns, prog);
        cli_send_show(&o.s, stdout);
        rc = fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
        goto done;
    }
    md_smtp_request *route = &o.s.m.route;
    int links = !strcmp(o.template_name, "verify") || !strcmp(o.template_name, "reset");
    unsigned flags = CLI_SEND_THROWAWAY | (o.dry_run ? CLI_SEND_NO_SMTP | CLI_SEND_NO_AUTH : 0)
                   | (route->quit_after == MD_SMTP_PHASE_CONNECT ? CLI_SEND_NO_AUTH : 0)
                   | (links && (route->quit_after == MD_SMTP_PHASE_NONE || o.dry_run || o.save) ? CLI_SEND_KEYS : 0);
    if (cli_send_open(prog, &o.s, flags) != 0 || open_mailbox(&o, &imap_password) != 0)
        goto done;
    if (o.s.direct && !o.dry_run && (route->dns = cli_dns_open(&o.dns, prog, 0)) == NULL)
        goto done;
    md_tally_init(&r.tally);
    cli_progress_init(&r.progress);
    cli_interrupt_install();
    if ((rc = send_all(&o, &r)) != 0)
        goto done;
    if (cli_interrupted) {
        fflush(stdout);
        rc = cli_interrupt_exit(prog, "sends", r.done, &r.tally);
    } else if (o.format == CLI_PLUGIN) {
        rc = cli_plugin_finish(prog, &o.plugin, r.slowest, &(cli_perf){ .label = "time", .value = r.slowest,
                               .uom = "s", .warn = o.plugin.warn.text, .crit = o.plugin.crit.text, .min = "0" }, 1);
    } else if (r.done == 0) {
        rc = cli_fail(prog, "input.invalid", "nothing sent: the input held no recipient");   /* never green */
    } else {
        rc = md_severity_exit_code(r.tally.worst);
    }
done:
    md_dns_free(o.s.m.route.dns);
    cli_send_clear(&o.s);
#ifdef MD_SEND_AWAIT
    md_arrival_free(o.arrival);
    md_arrival_result_clear(o.mailbox_down);
    free(o.mailbox_down);
#endif
    cli_secret_free(imap_password);
    md_conf_free(o.conf);
    free(o.authserv_ids);
    cli_dns_clear(&o.dns);
    free(o.to); free(o.usernames); free(o.files);
    return rc;
}
