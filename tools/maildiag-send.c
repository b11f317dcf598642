/*
 * maildiag-send: send the product's email (verify, reset, username, plain)
 * to an address now, through the relay or straight to the MX hosts, and show
 * what the server answered; with --await, whether it arrived in the
 * recipient's mailbox.  Over lib/message, lib/token, lib/smtp, lib/arrival,
 * lib/report.  The manual is maildiag-send.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "arrival/arrival.h"
#include "base/input.h"
#include "message/message.h"
#include "smtp/smtp.h"
#include "token/token.h"

static const char *prog = "maildiag-send";

typedef struct options {
    md_message_request msg;
    md_smtp_request smtp;
    char **to, **usernames, **files;
    size_t nto, nusernames, nfiles;
    unsigned count;
    const char *link_base, *account, *key_file, *password_file, *ca_file, *save;
    double timeout;
    cli_dns dns;
    int direct, dry_run, json, verbose;
    /* --await: the mailbox is opened before the first send */
    md_arrival_options await;
    const char *await_password_file;
    const char **authserv_ids;
    size_t nauthserv_ids;
    int await_set;                 /* an --await-* option was given */
    md_arrival *arrival;           /* the open mailbox, or NULL ... */
    md_arrival_result *mailbox_down; /* ... and why it could not be opened: nothing is sent */
} options;

static void usage(void)
{
    printf("Usage: %s --to ADDRESS [OPTION]...\n"
           "Send the product's email now and show the receiving server's answer.\n"
           "Exit: 0 accepted, 1 deferred, 2 rejected or could not complete, 3 usage/own error;\n"
           "with --await the worst status: 2 also when not found, 1 in Junk, 3 mailbox unreadable.\n\n"
           "  -T, --template NAME    verify, reset, username or plain (default plain)\n"
           "  -t, --to ADDRESS       recipient (repeatable: one send each)\n"
           "  -f, --file FILE        more recipients, one a line ('-' = stdin)\n"
           "  -n, --count N          send N times to each recipient (benchmarks; default 1)\n"
           "      --from ADDRESS     sender (default MAILDIAG_FROM, else maildiag@HOSTNAME)\n"
           "      --from-name NAME   sender display name\n"
           "  -s, --server HOST[:PORT]  relay (port default 587: STARTTLS required there)\n"
           "  -d, --direct           straight to the recipient domain's MX hosts (port 25)\n"
           "      --allow-internal   --direct may connect to loopback, private and other\n"
           "                         internal MX addresses (refused by default)\n"
           "      --tls POLICY       required, opportunistic or off\n"
           "  -k, --insecure         do not verify certificates (diagnosis only)\n"
           "      --ca-file FILE     trust these CA certificates instead of the system store\n"
           "  -u, --user USER        AUTH user; the password comes from --password-file\n"
           "      --password-file FILE  or the environment MAILDIAG_SMTP_PASSWORD\n"
           "      --timeout SECONDS  budget for each send, all hosts (default 60)\n"
           "  -q, --quit-after PHASE connect, banner, ehlo, starttls, auth, mail or rcpt\n"
           "      --dsn              ask for delivery status notifications (when offered)\n"
           "      --helo NAME        EHLO name (default the host name)\n"
           "      --template-dir DIR template overrides (default MAILDIAG_TEMPLATE_DIR)\n"
           "      --product NAME     {{product}} in the templates (default Example)\n"
           "      --username NAME    {{username}}; repeat for the username template's list\n"
           "      --link-base URL    verify/reset link, the token is appended\n"
           "                         (default https://example.com/TEMPLATE?token=)\n"
           "      --account ID       account id in the token (default the address)\n"
           "      --key-file FILE    token keys (default MAILDIAG_TOKEN_KEYS; none: throwaway key)\n"
           "  -r, --resolver IP[:PORT]  DNS server for --direct (default MAILDIAG_RESOLVER)\n"
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
           "  -j, --json             one JSON object per send\n"
           "  -v, --verbose          show the transcript\n"
           "  -h, --help             show this help\n"
           "  -V, --version          show the version\n", prog);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_FROM = 256, O_FROMNAME, O_TLS, O_CA, O_PWFILE, O_TIMEOUT, O_DSN, O_HELO, O_TDIR,
           O_PRODUCT, O_USERNAME, O_LINK, O_ACCOUNT, O_KEY, O_DRY, O_SAVE, O_INTERNAL,
           O_AWAIT, O_AWAIT_TIMEOUT, O_AWAIT_PW, O_AWAIT_CA, O_AWAIT_INSECURE, O_AWAIT_DELETE, O_AWAIT_ID };
    static const struct option lo[] = {
        { "template", 1, NULL, 'T' }, { "to", 1, NULL, 't' }, { "file", 1, NULL, 'f' },
        { "count", 1, NULL, 'n' }, { "from", 1, NULL, O_FROM }, { "from-name", 1, NULL, O_FROMNAME },
        { "server", 1, NULL, 's' }, { "direct", 0, NULL, 'd' }, { "tls", 1, NULL, O_TLS },
        { "allow-internal", 0, NULL, O_INTERNAL },
        { "insecure", 0, NULL, 'k' }, { "ca-file", 1, NULL, O_CA }, { "user", 1, NULL, 'u' },
        { "password-file", 1, NULL, O_PWFILE }, { "timeout", 1, NULL, O_TIMEOUT },
        { "quit-after", 1, NULL, 'q' }, { "dsn", 0, NULL, O_DSN }, { "helo", 1, NULL, O_HELO },
        { "template-dir", 1, NULL, O_TDIR }, { "product", 1, NULL, O_PRODUCT },
        { "username", 1, NULL, O_USERNAME }, { "link-base", 1, NULL, O_LINK },
        { "account", 1, NULL, O_ACCOUNT }, { "key-file", 1, NULL, O_KEY },
        { "resolver", 1, NULL, 'r' }, { "dry-run", 0, NULL, O_DRY }, { "save-message", 1, NULL, O_SAVE }, { "json", 0, NULL, 'j' },
        { "await", 1, NULL, O_AWAIT }, { "await-timeout", 1, NULL, O_AWAIT_TIMEOUT },
        { "await-password-file", 1, NULL, O_AWAIT_PW }, { "await-ca-file", 1, NULL, O_AWAIT_CA },
        { "await-insecure", 0, NULL, O_AWAIT_INSECURE }, { "await-delete", 0, NULL, O_AWAIT_DELETE },
        { "await-authserv-id", 1, NULL, O_AWAIT_ID },
        { "verbose", 0, NULL, 'v' }, { "help", 0, NULL, 'h' }, { "version", 0, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c, ph;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":T:t:f:n:s:dku:q:r:jvhV", lo, NULL)) != -1) {
        switch (c) {
        case 'T': o->msg.template_name = optarg; break;
        case 't':
            o->to = md_xrealloc(o->to, (o->nto + 1) * sizeof *o->to);
            o->to[o->nto++] = optarg;
            break;
        case 'f':
            o->files = md_xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
            o->files[o->nfiles++] = optarg;
            break;
        case 'n':
            if (cli_parse_uint(prog, "--count", optarg, 10000000, &o->count) != 0) return -1;
            break;
        case O_FROM: o->msg.from = optarg; break;
        case O_FROMNAME: o->msg.from_name = optarg; break;
        case 's': o->smtp.server = optarg; break;
        case 'd': o->direct = 1; break;
        case O_INTERNAL: o->smtp.allow_internal = 1; break;
        case O_TLS:
            if ((ph = md_smtp_tls_parse(optarg)) < 0)
                return cli_usage_error(prog, "--tls: required, opportunistic or off"), -1;
            o->smtp.tls = (md_smtp_tls)ph;
            break;
        case 'k': o->smtp.insecure = 1; break;
        case O_CA: o->ca_file = optarg; break;
        case 'u': o->smtp.auth_user = optarg; break;
        case O_PWFILE: o->password_file = optarg; break;
        case O_TIMEOUT: if (cli_parse_timeout(prog, optarg, &o->timeout) != 0) return -1; break;
        case 'q':
            if ((ph = md_smtp_phase_parse(optarg)) < 0)
                return cli_usage_error(prog, "--quit-after: connect, banner, ehlo, starttls, auth, mail or rcpt"), -1;
            o->smtp.quit_after = (md_smtp_phase)ph;
            break;
        case O_DSN: o->smtp.dsn = 1; break;
        case O_HELO: o->smtp.helo = optarg; break;
        case O_TDIR: o->msg.template_dir = optarg; break;
        case O_PRODUCT: o->msg.product = optarg; break;
        case O_USERNAME:
            o->usernames = md_xrealloc(o->usernames, (o->nusernames + 1) * sizeof *o->usernames);
            o->usernames[o->nusernames++] = optarg;
            break;
        case O_LINK: o->link_base = optarg; break;
        case O_ACCOUNT: o->account = optarg; break;
        case O_KEY: o->key_file = optarg; break;
        case 'r': if (cli_dns_add_resolver(&o->dns, prog, optarg) != 0) return -1; break;
        case O_DRY: o->dry_run = 1; break;
        case O_SAVE: o->save = optarg; break;
        case 'j': o->json = 1; break;
        case O_AWAIT: o->await.url = optarg; break;
        case O_AWAIT_TIMEOUT: {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(v) || v <= 0 || v > MD_ARRIVAL_TIMEOUT_MAX_MS / 1000)
                return cli_usage_error(prog, "--await-timeout: '%s' is not a number of seconds between 0 and %u",
                                       optarg, MD_ARRIVAL_TIMEOUT_MAX_MS / 1000), -1;
            o->await.timeout_ms = v * 1000 < 1 ? 1 : (unsigned)(v * 1000);
            o->await_set = 1;
            break;
        }
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
        case 'h': usage(); return 1;
        case 'V': cli_version(prog); return 1;
        case ':': return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]), -1;
        default: return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]), -1;
        }
    }
    if (optind < argc)
        return cli_usage_error(prog, "unexpected argument '%s' (recipients go with --to)", argv[optind]), -1;
    if (o->nto == 0 && o->nfiles == 0)
        return cli_usage_error(prog, "no recipient: give --to ADDRESS"), -1;
    if (!o->dry_run && !o->direct == !o->smtp.server)
        return cli_usage_error(prog, "say where to send: --server HOST[:PORT] or --direct"), -1;
    if (!md_message_template_known(o->msg.template_name))
        return cli_usage_error(prog, "--template: verify, reset, username or plain"), -1;
    if (o->await_set && !o->await.url)
        return cli_usage_error(prog, "the --await-* options go with --await URL"), -1;
    if (o->await.url && (o->dry_run || o->smtp.quit_after != MD_SMTP_PHASE_NONE))
        return cli_usage_error(prog, "--await waits for a message sent: not with --dry-run or --quit-after"), -1;
    return 0;
}

/* Fills the options' defaults from the environment; loads secrets.  Returns
 * 0 or prints and returns -1. */
static int settle(options *o, char *from_buf, size_t fbsize, char **password)
{
    if (o->msg.from == NULL && (o->msg.from = getenv("MAILDIAG_FROM")) == NULL) {
        char host[200];
        if (gethostname(host, sizeof host) != 0 || strchr(host, '.') == NULL)
            snprintf(host, sizeof host, "localhost.localdomain");
        snprintf(from_buf, fbsize, "maildiag@%s", host);
        o->msg.from = from_buf;
    }
    if (o->msg.template_dir == NULL)
        o->msg.template_dir = getenv("MAILDIAG_TEMPLATE_DIR");
    o->msg.usernames = (const char *const *)o->usernames;
    o->msg.nusernames = o->nusernames;
    if (o->nusernames && o->msg.username == NULL)
        o->msg.username = o->usernames[0];
    o->msg.test_send = 1;
    o->msg.test_sender = prog;
    o->smtp.mail_from = o->msg.from;
    o->smtp.timeout_ms = (int)(o->timeout * 1000);
    if (o->smtp.auth_user && !o->dry_run && o->smtp.quit_after != MD_SMTP_PHASE_CONNECT) {
        if (o->password_file)
            *password = cli_read_secret_file(prog, "password", o->password_file);
        else if (getenv("MAILDIAG_SMTP_PASSWORD"))
            *password = md_xstrdup(getenv("MAILDIAG_SMTP_PASSWORD"));
        else
            fprintf(stderr, "%s: --user needs a password: --password-file FILE or MAILDIAG_SMTP_PASSWORD\n", prog);
        if (*password == NULL)
            return -1;
        o->smtp.auth_password = *password;
    }
    return 0;
}

/* --await: the password, then the mailbox, opened before the first send.
 * Returns 0 (o->arrival open, or o->mailbox_down saying why not), or -1
 * after printing a usage error (a bad URL, no password). */
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
        fprintf(stderr, "%s: --await needs the IMAP password: --await-password-file FILE or "
                "MAILDIAG_IMAP_PASSWORD\n", prog);
    if (*password == NULL)
        return -1;
    o->await.password = *password;
    md_status st = md_arrival_open(&o->await, &o->arrival, &err);
    if (st == MD_CONFIG) {
        cli_error(prog, "--await: %s", err.text);
        return -1;
    }
    if (st != MD_OK) {
        o->mailbox_down = md_xcalloc(1, sizeof *o->mailbox_down);
        md_arrival_open_failed(o->await.url, &err, o->mailbox_down);
    }
    return 0;
}

/* --await: the arrival of the message just sent (or why it was not
 * awaited) into the send's report, and its JSON into *json.  Returns the
 * exit code: the report's status, the same that it prints. */
static int await_arrival(options *o, const md_message *m, md_smtp_result *res, json_t **json)
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
    return md_severity_exit_code(md_report_status(res->findings));
}

/* --await with a mailbox that cannot be read: nothing is sent (the
 * message could not be looked for); the report says why. */
static int mailbox_down(const options *o, const char *to)
{
    md_report *rep = md_report_new("maildiag-send", to);
    md_arrival_report(o->mailbox_down, rep);
    md_report_add_detail(rep, "nothing was sent: the mailbox to watch cannot be read");
    if (o->json) {
        md_report_set(rep, "to", json_string(to));
        md_report_set(rep, "sent", json_false());
        md_arrival_describe(o->mailbox_down, rep);
        md_report_write_json(rep, stdout);
    } else {
        md_report_write_text(rep, stdout, md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE : MD_TEXT_EVIDENCE);
    }
    int rc = md_severity_exit_code(md_report_status(rep));
    md_report_free(rep);
    return rc;
}

static int exit_for(md_smtp_outcome o)
{
    return o == MD_SMTP_ACCEPTED ? 0 : o == MD_SMTP_DEFERRED ? 1 : 2;
}

/* The verdict line ("TO: accepted by HOST as QID in N ms"); with --await it
 * is shown before the wait. */
static void print_verdict(const options *o, const md_smtp_result *r, const char *to)
{
    char what[1200];
    if (r->outcome == MD_SMTP_ACCEPTED && o->smtp.quit_after)
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
    printf("%s: %s in %lld ms\n", to, what, (long long)r->elapsed_ms);
}

/* The report (status, details, findings) and, with -v, the transcript. */
static void print_report(const options *o, const md_smtp_result *r)
{
    md_report_write_text(r->findings, stdout, md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE : MD_TEXT_EVIDENCE);
    for (size_t i = 0; o->verbose && i < r->ntranscript; i++)
        printf("  %6lld ms %c %s\n", (long long)r->transcript[i].ms, r->transcript[i].dir, r->transcript[i].text);
}

/* Composes and sends (or prints) one message to one address.  Returns the
 * exit code of that send. */
static int one(options *o, md_smtp_ctx *ctx, const md_token_keys *keys, const char *to)
{
    md_error err = { 0 };
    md_message *m = NULL;
    char *token = NULL, *link = NULL;
    const char *t = o->msg.template_name;
    int rc = MD_EXIT_UNKNOWN;
    md_message_request mr = o->msg;
    mr.to = to;
    if (md_message_check_address("--to", to, &err) != MD_OK ||
        md_message_check_address("--from", o->msg.from, &err) != MD_OK)
        goto fail;
    if (o->mailbox_down) {
        rc = mailbox_down(o, to);
        goto done;
    }
    if (o->smtp.quit_after != MD_SMTP_PHASE_NONE && !o->dry_run && !o->save)
        goto send;   /* a probe sends no message: nothing to compose */
    if (!strcmp(t, "verify") || !strcmp(t, "reset")) {
        int64_t now = (int64_t)time(NULL);
        token = md_token_issue(keys, t, o->account ? o->account : to, "", now, MD_TOKEN_TTL_DEFAULT, &err);
        if (token == NULL)
            goto fail;
        link = md_token_link(o->link_base, t, token);
        mr.link = link;
        mr.expires = now + MD_TOKEN_TTL_DEFAULT;
        mr.link_is_test = md_token_keys_throwaway_p(keys);
    }
    if (md_message_compose(&mr, &m, &err) != MD_OK)
        goto fail;
    if (o->save) {
        FILE *f = fopen(o->save, "wb");
        int bad = f == NULL || fwrite(m->data, 1, m->len, f) != m->len;
        if ((f && fclose(f) != 0) || bad) {
            md_error_set(&err, MD_CONFIG, "save", "cannot write %s", o->save);
            goto fail;
        }
    }
    if (o->dry_run) {
        fwrite(m->data, 1, m->len, stdout);
        rc = MD_EXIT_OK;
        goto done;
    }
send:;
    md_smtp_request sr = o->smtp;
    sr.rcpt_to = to;
    sr.data = m ? m->data : NULL;
    sr.len = m ? m->len : 0;
    sr.message_id = m ? m->message_id : NULL;
    md_smtp_result res;
    if (md_smtp_send(ctx, &sr, &res, &err) != MD_OK) {
        md_smtp_result_clear(&res);
        goto fail;
    }
    json_t *arrival = NULL;
    if (!o->json) {
        print_verdict(o, &res, to);
        fflush(stdout);
    }
    rc = o->arrival ? await_arrival(o, m, &res, &arrival) : exit_for(res.outcome);
    if (o->json) {
        md_smtp_describe(&res, to, res.findings);
        if (arrival)
            md_report_set(res.findings, "arrival", json_incref(arrival));
        md_report_write_json(res.findings, stdout);
    } else {
        print_report(o, &res);
    }
    json_decref(arrival);
    md_smtp_result_clear(&res);
    goto done;
fail:
    cli_error(prog, "%s: %s", to, err.text);   /* both may quote what was given */
done:
    md_message_free(m);
    free(token);
    free(link);
    return rc;
}

static int worst(int a, int b)
{
    static const int rank[4] = { 0, 2, 3, 1 };   /* critical > warning > unknown > ok */
    return rank[b] > rank[a] ? b : a;
}

int main(int argc, char **argv)
{
    options o = { .count = 1, .timeout = 60, .msg.template_name = "plain",
                  .smtp.helo_advice = "give one (--helo)", .smtp.tls_advice = "--tls opportunistic to send anyway" };
    md_error err = { 0 };
    md_smtp_ctx *ctx = NULL;
    md_token_keys *keys = NULL;
    md_input *in = NULL;
    char from[256], *password = NULL, *imap_password = NULL;
    int rc = MD_EXIT_UNKNOWN, any = 0;

    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if (settle(&o, from, sizeof from, &password) != 0 || open_mailbox(&o, &imap_password) != 0)
        goto done;
    const char *kf = o.key_file ? o.key_file : getenv("MAILDIAG_TOKEN_KEYS");
    int need_keys = (!strcmp(o.msg.template_name, "verify") || !strcmp(o.msg.template_name, "reset")) &&
                    (o.smtp.quit_after == MD_SMTP_PHASE_NONE || o.dry_run || o.save);
    if (need_keys)
        keys = kf && *kf ? md_token_keys_load(kf, &err) : md_token_keys_throwaway(&err);
    if ((need_keys && keys == NULL) || (!o.dry_run && (ctx = md_smtp_ctx_new(o.ca_file, &err)) == NULL)) {
        cli_error(prog, "%s", err.text);
        goto done;
    }
    if (o.direct && !o.dry_run && (o.smtp.dns = cli_dns_open(&o.dns, prog, 0)) == NULL)
        goto done;
    in = md_input_new(o.to, o.nto, o.files, o.nfiles);
    const char *to;
    rc = MD_EXIT_OK;
    while ((to = md_input_next(in, &err)) != NULL) {
        char *addr = md_xstrdup(to);   /* md_input reuses its buffer */
        for (unsigned i = 0; i < o.count; i++) {
            rc = any++ ? worst(rc, one(&o, ctx, keys, addr)) : one(&o, ctx, keys, addr);
            fflush(stdout);
        }
        free(addr);
    }
    if (md_input_failed(in)) {
        cli_error(prog, "%s", err.text);
        rc = MD_EXIT_UNKNOWN;
    }
done:
    md_input_free(in);
    md_dns_free(o.smtp.dns);
    md_smtp_ctx_free(ctx);
    md_token_keys_free(keys);
    cli_secret_free(password);
    md_arrival_free(o.arrival);
    md_arrival_result_clear(o.mailbox_down);
    free(o.mailbox_down);
    cli_secret_free(imap_password);
    free(o.authserv_ids);
    cli_dns_clear(&o.dns);
    free(o.to); free(o.usernames); free(o.files);
    return rc;
}
