/*
 * maildiag-user: the accounts behind an address, for support engineers.
 * Lookup (every account, its state, and what that means for the product's
 * emails), sessions, suppressions, bulk import/export, the audit log.
 * Over lib/address, lib/store, lib/account.  Manual: maildiag-user.1.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "usercli.h"

static const char *prog = "maildiag-user";

typedef struct options {
    ucli u;
    cli_format format;
    const char *username;    /* --username */
    const char *reason;      /* --reason */
    const char *text;        /* --text */
    unsigned limit;          /* --limit */
    char **args;             /* subcommand and its operands */
    int nargs;
    int bounces;             /* an option of the bounces command was given */
    int show_config;         /* --show-config */
    char **argv;             /* as given, for maildiag-bounces */
} options;

static void usage(void)
{
    printf("Usage: %s [OPTION]... COMMAND [ARG]...\n"
           "The accounts behind an email address, and the states that stop the product's emails.\n\n"
           "Commands:\n"
           "  init                       create or migrate the store's schema\n"
           "  lookup ADDRESS             every account on ADDRESS and what stops its emails\n"
           "  lookup --username NAME     the same, from the account's username\n"
           "  remind ADDRESS             send the username reminder (all usernames on ADDRESS)\n"
           "  sessions list|revoke ADDRESS|--username NAME\n"
           "                             list, or revoke every session of, the accounts\n"
           "  suppression list           suppressed addresses\n"
           "  suppression add ADDRESS --reason hard-bounce|complaint|manual [--text TEXT]\n"
           "  suppression remove ADDRESS after the cause is fixed\n"
           "  import FILE.csv            load accounts (one transaction; '-' = stdin)\n"
           "  export [FILE.csv]          dump every account as CSV (default stdout)\n"
           "  audit [--limit N]          the latest audit records (default 20)\n"
           "  bounces --mailbox URL | --maildir DIR | --file PATH [--since DATE] [--apply]\n"
           "                             suppress the addresses of hard bounces and complaints\n\n"
           "Options:\n"
           "      --store URI            sqlite:PATH or postgresql://... (default: MAILDIAG_STORE,\n"
           "                             else 'uri' in [store] of the configuration)\n"
           CLI_HELP_CONFIG
           "      --show-config          show the settings in effect and exit\n"
           "      --username NAME        look up by username instead of address\n"
           "      --operator NAME        who is working, for the audit log (default: login name)\n"
           "      --reason REASON        suppression add: hard-bounce, complaint or manual\n"
           "      --text TEXT            suppression add: the bounce text\n"
           "      --limit N              audit: records shown\n"
           "  -j, --json                 JSON output (one object)\n"
           "  -p, --plugin               lookup: one monitoring-plugin status line with perfdata\n"
           "      --no-dns               lookup: do not check the domain's MX\n"
           CLI_HELP_DNS
           CLI_HELP_COMMON "\n"
           "Options of bounces:\n"
           "      --mailbox URL          imaps://USER@HOST[:PORT][/FOLDER], or imap://... (STARTTLS\n"
           "                             when offered)\n"
           "      --mailbox-password-file FILE  the IMAP password (else MAILDIAG_IMAP_PASSWORD)\n"
           "      --ca-file FILE         CA certificates for the IMAP server\n"
           "      --insecure             do not verify the IMAP server's certificate\n"
           "      --maildir DIR          read a Maildir (new/ and cur/) instead\n"
           "      --file PATH            read one message file (repeatable)\n"
           "      --since DATE           only messages that arrived on or after DATE\n"
           "      --apply                write the suppressions (default: show what would change)\n"
           "      --max-messages N       read at most N messages (default 10000)\n"
           "      --max-size KB          skip larger messages (default 10240)\n"
           "      --deadline SECONDS     budget of the whole IMAP session (-t: of each operation,\n"
           "                             default 30)\n\n"
           "The exit status is the status of the answer: lookup 0 when an account on the address\n"
           "can receive the product's emails, 1 when there are findings a user can act on, 2 when\n"
           "no email can reach it, 3 on errors (the domain's DNS lookup failed, a store error).\n"
           "remind: the send's status (0 accepted, 1 deferred or no account, 2 rejected, failed or\n"
           "suppressed, 3 the route's DNS lookup failed).  Other commands: 0 done, 1 nothing to do\n"
           "(bounces: or a malformed report skipped), 3 error.\n", prog);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_OPERATOR = 256, OPT_REASON, OPT_TEXT, OPT_NODNS, OPT_BOUNCES, OPT_BOUNCES_FLAG, OPT_STORE,
           OPT_USERNAME, OPT_LIMIT, OPT_SHOW };
    static const struct option longopts[] = {
        { "store", required_argument, NULL, OPT_STORE }, { "config", required_argument, NULL, 'C' },
        { "show-config", no_argument, NULL, OPT_SHOW },
        { "username", required_argument, NULL, OPT_USERNAME },
        { "operator", required_argument, NULL, OPT_OPERATOR },
        { "reason", required_argument, NULL, OPT_REASON }, { "text", required_argument, NULL, OPT_TEXT },
        { "limit", required_argument, NULL, OPT_LIMIT }, { "json", no_argument, NULL, 'j' },
        { "plugin", no_argument, NULL, 'p' },
        { "no-dns", no_argument, NULL, OPT_NODNS }, { "resolver", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        /* bounces: read by maildiag-bounces, which cmd_bounces runs */
        { "mailbox", required_argument, NULL, OPT_BOUNCES },
        { "mailbox-password-file", required_argument, NULL, OPT_BOUNCES },
        { "ca-file", required_argument, NULL, OPT_BOUNCES }, { "maildir", required_argument, NULL, OPT_BOUNCES },
        { "file", required_argument, NULL, OPT_BOUNCES }, { "since", required_argument, NULL, OPT_BOUNCES },
        { "max-messages", required_argument, NULL, OPT_BOUNCES },
        { "max-size", required_argument, NULL, OPT_BOUNCES }, { "deadline", required_argument, NULL, OPT_BOUNCES },
        { "apply", no_argument, NULL, OPT_BOUNCES_FLAG }, { "insecure", no_argument, NULL, OPT_BOUNCES_FLAG },
        { NULL, 0, NULL, 0 }
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":C:jpr:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_STORE: o->u.store_uri = optarg; break;
        case 'C': o->u.config_path = optarg; break;
        case OPT_SHOW: o->show_config = 1; break;
        case OPT_USERNAME: o->username = optarg; break;
        case OPT_OPERATOR: o->u.operator_name = optarg; break;
        case OPT_REASON: o->reason = optarg; break;
        case OPT_TEXT: o->text = optarg; break;
        case OPT_LIMIT:
            if (cli_parse_uint(prog, "--limit", optarg, 100000, &o->limit) != 0)
                return -1;
            break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case 'p': if (cli_format_set(prog, &o->format, CLI_PLUGIN) != 0) return -1; break;
        case OPT_NODNS: o->u.no_dns = 1; break;
        case OPT_BOUNCES: case OPT_BOUNCES_FLAG: o->bounces = 1; break;
        default: {
            int rc = cli_option_default(c, prog, argv, &o->u.dns, usage);
            if (rc != 0)
                return rc;
            break;
        }
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    if (o->nargs == 0 && !o->show_config) {
        cli_usage_error(prog, "no command given (init, lookup, remind, sessions, suppression, import, export, audit, bounces)");
        return -1;
    }
    if (o->format == CLI_PLUGIN && (o->nargs == 0 || strcmp(o->args[0], "lookup") != 0)) {
        cli_usage_error(prog, "--plugin goes with lookup");
        return -1;
    }
    return 0;
}

/* Checks the operand count of a command: want operands after the command
 * words (words = 1 or 2), or none when --username is given. */
static int operands(const options *o, int words, int min, int max, const char *what)
{
    int n = o->nargs - words;
    if (n < min || n > max) {
        cli_usage_error(prog, "%s", what);
        return -1;
    }
    return 0;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* Prints a one-line result: text (sanitized: it quotes addresses, names
 * and servers' replies), or {"command", fields..., "status"} written as the
 * reports are (md_json_append: no raw control character either).  Returns
 * the exit code of sev: the status shown is the exit status. */
static int result(const options *o, const char *command, md_severity sev, json_t *fields,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int result(const options *o, const char *command, md_severity sev, json_t *fields,
                  const char *fmt, ...)
{
    if (o->format == CLI_JSON) {
        json_t *j = json_object();
        json_object_set_new(j, "schema_version", json_integer(1));
        json_object_set_new(j, "command", json_string(command));
        if (fields)
            json_object_update(j, fields);
        json_object_set_new(j, "status", json_string(md_severity_name(sev)));
        md_buf b = { 0 };
        md_json_append(&b, j);
        MD_BUF_LIT(&b, "\n");
        fwrite(b.data, 1, b.len, stdout);
        free(b.data);
        json_decref(j);
    } else if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        cli_vline(stdout, fmt, ap);
        va_end(ap);
    }
    json_decref(fields);
    return md_severity_exit_code(sev);
}

static int cmd_init(options *o)
{
    md_error err;
    int from = 0;
    if (operands(o, 1, 0, 0, "init takes no operand") != 0 || ucli_open_store(&o->u, MD_STORE_CREATE) != 0)
        return MD_EXIT_UNKNOWN;
    md_store_audit a = { ucli_operator(&o->u), "init", md_store_engine(o->u.store), NULL };
    if (md_store_migrate_audited(o->u.store, &a, &from, &err) != MD_OK) {
        ucli_error(&o->u, "init", &err);
        return MD_EXIT_UNKNOWN;
    }
    return result(o, "init", MD_SEV_OK, json_pack("{s:i,s:i}", "from_version", from, "version",
                                                  MD_STORE_SCHEMA_VERSION),
                  "%s store: schema version %d (%s)", md_store_engine(o->u.store), MD_STORE_SCHEMA_VERSION,
                  from == 0 ? "created" : from == MD_STORE_SCHEMA_VERSION ? "already current" : "migrated");
}

static int cmd_lookup(options *o)
{
    md_error err = { 0 };
    md_address addr;
    const char *target = o->username ? o->username : (o->nargs > 1 ? o->args[1] : NULL);
    if (operands(o, 1, o->username ? 0 : 1, o->username ? 0 : 1,
                 "lookup takes one ADDRESS, or --username NAME") != 0 ||
        ucli_open_store(&o->u, 0) != 0 || ucli_open_dns(&o->u) != 0)
        return MD_EXIT_UNKNOWN;
    md_report *rep = md_report_new(prog, target);
    md_status st;
    o->u.aopt.suppression_advice = "fix the cause, then 'maildiag-user suppression remove'";
    if (o->username) {
        st = md_account_lookup_username(o->u.store, o->u.resolver, target, &o->u.aopt, now_s(), rep, &err);
    } else if ((st = md_address_parse(target, &addr, &err)) == MD_OK) {
        cli_address_findings(rep, &addr);
        st = md_account_lookup(o->u.store, o->u.resolver, addr.mailbox, &o->u.aopt, now_s(), rep, &err);
    }
    int rc = MD_EXIT_UNKNOWN, invalid = 0;
    if (st == MD_CONFIG && err.stage[0] && strcmp(err.stage, "input.address") == 0) {
        /* A bad address: the words on stderr, as every tool does; the
         * report (JSON) and the audit record as for any lookup. */
        invalid = 1;
        md_report_set(rep, "address", cli_json_text(target));
        md_report_add(rep, "address.invalid", MD_SEV_DEFAULT, "not a valid email address: %s", err.text);
        if (o->username)
            cli_error(prog, "the address of the account '%s' is not a valid email address: %s", target,
                      err.text);
        else
            cli_address_error(prog, NULL, target, &err);
        st = MD_OK;
    } else if (st == MD_NOTFOUND) {
        md_report_set(rep, "username", json_string(target));
        md_report_set(rep, "accounts", json_array());
        md_report_add(rep, "account.none", MD_SEV_DEFAULT, "%s", err.text);
        st = MD_OK;
    }
    if (st != MD_OK) {
        ucli_error(&o->u, "lookup", &err);
    } else {
        md_store_audit a = { ucli_operator(&o->u), o->username ? "lookup.username" : "lookup", target, NULL };
        if (md_store_audit_add(o->u.store, &a, &err) != MD_OK) {
            ucli_error(&o->u, "audit log", &err);   /* no unaudited answers */
        } else if (o->format == CLI_PLUGIN) {
            cli_plugin p;
            cli_plugin_init(&p, "USER", "address", "addresses");
            cli_plugin_add(&p, rep);
            json_t *acc = json_object_get(md_report_fields(rep), "accounts");
            cli_perf perf = { .label = "accounts", .value = (double)json_array_size(acc), .integer = 1,
                              .min = "0" };
            rc = cli_plugin_finish(prog, &p, 0, &perf, 1);
        } else {
            if (o->format == CLI_JSON)
                md_report_write_json(rep, stdout);
            else if (!invalid)
                md_report_write_text(rep, stdout, md_color_wanted(stdout) ? MD_TEXT_COLOR | MD_TEXT_EVIDENCE
                                                                          : MD_TEXT_EVIDENCE);
            rc = md_severity_exit_code(md_report_status(rep));
        }
    }
    md_report_free(rep);
    return rc;
}

/* The username reminder: one email listing every username on the address
 * that can receive one; the server's verdict printed and logged. */
static int cmd_remind(options *o)
{
    md_error err = { 0 };
    md_address a;
    char key[MD_ADDRESS_MAX + 1];
    md_store_account_list acc = { 0 };
    md_store_suppression sup;
    if (operands(o, 1, 1, 1, "remind takes one ADDRESS") != 0)
        return MD_EXIT_UNKNOWN;
    const char *target = o->args[1];
    if (cli_address(prog, NULL, target, 0, &a) != 0)
        return MD_EXIT_UNKNOWN;
    cli_address_notes(prog, NULL, &a, MD_ADDRESS_CHANGED | MD_ADDRESS_UNUSUAL);
    md_address_key(&a, o->u.aopt.key_flags, key, sizeof key);
    if (ucli_open_store(&o->u, 0) != 0)
        return MD_EXIT_UNKNOWN;
    md_status st = md_store_suppression_get(o->u.store, key, &sup, &err);
    if (st == MD_OK) {
        int rc = result(o, "remind", MD_SEV_CRITICAL, json_pack("{s:s,s:s,s:s}", "address", a.display,
                                                                "outcome", "suppressed", "reason", sup.reason),
                        "%s is suppressed (%s): nothing sent; 'maildiag-user suppression remove' once the"
                        " cause is fixed", a.display, sup.reason);
        md_store_suppression_clear(&sup);
        return rc;
    }
    if ((st != MD_NOTFOUND) || md_store_find_by_email(o->u.store, key, &acc, &err) != MD_OK) {
        ucli_error(&o->u, "remind", &err);
        return MD_EXIT_UNKNOWN;
    }
    size_t nn = 0;
    json_t *jn = json_array();
    for (size_t i = 0; i < acc.n; i++)
        if (md_account_mail_for(&acc.v[i], MD_ACCOUNT_WANT_USERNAME) == MD_ACCOUNT_MAIL_REMINDER) {
            json_array_append_new(jn, json_string(acc.v[i].username));
            nn++;
        }
    int rc = MD_EXIT_UNKNOWN;
    if (nn == 0) {
        rc = result(o, "remind", MD_SEV_WARNING, json_pack("{s:s,s:s,s:o}", "address", a.display, "outcome",
                                                           "no_account", "usernames", jn),
                    "no account on %s can receive a reminder: nothing sent", a.display);
    } else if (md_store_writable(o->u.store, &err) != MD_OK) {
        /* A reminder that could not be logged must not go out. */
        ucli_error(&o->u, "remind: nothing was sent", &err);
        json_decref(jn);
    } else {
        /* Sending is maildiag-notify's (see usercli.h): it sends and writes
         * the send log; the audit record and the answer are ours. */
        json_t *req = ucli_notify_request(&o->u, "remind"), *rep = NULL;
        json_object_set_new(req, "to", json_string(a.ascii));
        json_object_set_new(req, "key", json_string(key));
        json_object_set(req, "usernames", jn);
        if (ucli_notify_run(&o->u, req, &rep) == 0) {
            const char *outcome = json_string_value(json_object_get(rep, "outcome"));
            const char *reply = json_string_value(json_object_get(rep, "reply"));
            const char *mid = json_string_value(json_object_get(rep, "message_id"));
            outcome = outcome ? outcome : "failed";
            reply = reply ? reply : "";
            char detail[700];
            snprintf(detail, sizeof detail, "%s: %s", outcome, reply);
            md_store_audit au = { ucli_operator(&o->u), "remind", key, detail };
            md_status logged = md_store_audit_add(o->u.store, &au, &err);
            /* The exit status is the send's status (a route whose DNS
             * lookup failed is unknown, not deferred). */
            const char *status = json_string_value(json_object_get(rep, "status"));
            int sev = md_severity_parse(json_string_value(json_object_get(rep, "send_status")));
            if (status == NULL || strcmp(status, "ok") != 0 || sev < 0 || logged != MD_OK)
                sev = MD_SEV_UNKNOWN;
            rc = result(o, "remind", (md_severity)sev, json_pack("{s:s,s:O,s:s,s:s,s:s}", "address", a.display,
                                                                 "usernames", jn, "outcome", outcome, "reply",
                                                                 reply, "message_id", mid ? mid : ""),
                        "reminder for %zu username%s to %s: %s: %s", nn, nn == 1 ? "" : "s", a.display,
                        outcome, reply);
            if (logged != MD_OK)   /* the answer above says unknown: this says why (stderr only) */
                cli_error(prog, "remind: the reminder's audit record was not written: %s%s%s", err.text,
                          err.peer[0] ? ": " : "", err.peer);
        } else {
            /* the helper said why on stderr; with --json the run still has its one value */
            rc = cli_json_hook ? cli_json_error("config.error", "remind: nothing was sent: the sending"
                                                " helper stopped (its words are on standard error)")
                               : MD_EXIT_UNKNOWN;
        }
        json_decref(rep);
        json_decref(req);
        json_decref(jn);
    }
    md_store_account_list_clear(&acc);
    return rc;
}

/* The accounts named by ADDRESS or --username. */
static int target_accounts(options *o, const char *target, md_store_account_list *acc)
{
    md_error err;
    md_status st;
    if (o->username) {
        st = md_store_find_by_username(o->u.store, target, acc, &err);
    } else {
        md_address a;
        char key[MD_ADDRESS_MAX + 1];
        if (cli_address(prog, NULL, target, 0, &a) != 0)
            return -1;
        cli_address_notes(prog, NULL, &a, MD_ADDRESS_CHANGED);
        md_address_key(&a, o->u.aopt.key_flags, key, sizeof key);
        st = md_store_find_by_email(o->u.store, key, acc, &err);
    }
    if (st != MD_OK) {
        ucli_error(&o->u, "sessions", &err);
        return -1;
    }
    return 0;
}

static int cmd_sessions(options *o)
{
    md_error err;
    md_store_account_list acc = { 0 };
    int revoke = o->nargs > 1 && strcmp(o->args[1], "revoke") == 0;
    if (o->nargs < 2 || (!revoke && strcmp(o->args[1], "list") != 0))
        return cli_usage_error(prog, "sessions list|revoke ADDRESS|--username NAME");
    const char *target = o->username ? o->username : (o->nargs > 2 ? o->args[2] : NULL);
    if (operands(o, 2, o->username ? 0 : 1, o->username ? 0 : 1,
                 "sessions list|revoke takes one ADDRESS, or --username NAME") != 0 ||
        ucli_open_store(&o->u, 0) != 0 || target_accounts(o, target, &acc) != 0)
        return MD_EXIT_UNKNOWN;
    int rc = MD_EXIT_OK;
    if (acc.n == 0) {
        rc = result(o, revoke ? "sessions.revoke" : "sessions.list", MD_SEV_WARNING,
                    json_pack("{s:i}", "accounts", 0), "no account on %s", target);
    } else if (revoke) {
        int64_t *ids = md_xcalloc(acc.n, sizeof *ids);
        for (size_t i = 0; i < acc.n; i++)
            ids[i] = acc.v[i].id;
        unsigned long n = 0;
        md_store_audit a = { ucli_operator(&o->u), "sessions.revoke", target, NULL };
        if (md_store_sessions_revoke(o->u.store, ids, acc.n, now_s(), &a, &n, &err) != MD_OK) {
            ucli_error(&o->u, "sessions revoke", &err);
            rc = MD_EXIT_UNKNOWN;
        } else {
            rc = result(o, "sessions.revoke", n ? MD_SEV_OK : MD_SEV_WARNING,
                        json_pack("{s:i,s:i}", "accounts", (int)acc.n, "revoked", (int)n),
                        "revoked %lu session%s of %zu account%s on %s", n, n == 1 ? "" : "s", acc.n,
                        acc.n == 1 ? "" : "s", target);
        }
        free(ids);
    } else {
        json_t *arr = json_array();
        int64_t now = now_s();
        for (size_t i = 0; i < acc.n && rc == MD_EXIT_OK; i++) {
            md_store_session_list sl;
            if (md_store_sessions(o->u.store, acc.v[i].id, 0, now, &sl, &err) != MD_OK) {
                ucli_error(&o->u, "sessions", &err);
                rc = MD_EXIT_UNKNOWN;
                break;
            }
            for (size_t j = 0; j < sl.n; j++) {
                const md_store_session *x = &sl.v[j];
                const char *state = x->revoked_at ? "revoked" : x->expires_at <= now ? "expired" : "active";
                char cr[32], ls[32], ex[32];
                md_store_time_format(x->created_at, cr, sizeof cr);
                md_store_time_format(x->last_seen_at, ls, sizeof ls);
                md_store_time_format(x->expires_at, ex, sizeof ex);
                json_array_append_new(arr, json_pack("{s:o,s:s,s:s,s:s,s:s}", "username",
                                                     cli_json_text(acc.v[i].username), "state", state,
                                                     "created_at", cr, "last_seen_at", ls, "expires_at", ex));
                if (o->format != CLI_JSON) {
                    char c2[48], l2[48], e2[48];
                    snprintf(c2, sizeof c2, "created %s", cr);
                    snprintf(l2, sizeof l2, "last seen %s", ls[0] ? ls : "never");
                    snprintf(e2, sizeof e2, "expires %s", ex);
                    const char *row[] = { acc.v[i].username, state, c2, l2, e2 };
                    cli_row(stdout, row, 5);
                }
            }
            free(sl.v);
        }
        if (o->format == CLI_JSON && rc == MD_EXIT_OK)
            result(o, "sessions.list", MD_SEV_OK, json_pack("{s:o}", "sessions", arr), NULL);
        else {
            if (rc == MD_EXIT_OK && json_array_size(arr) == 0)
                cli_line(stdout, "no sessions for the %zu account%s on %s", acc.n, acc.n == 1 ? "" : "s", target);
            json_decref(arr);
        }
    }
    md_store_account_list_clear(&acc);
    return rc;
}

static int suppression_key(options *o, const char *addr, char *key)
{
    md_address a;
    if (cli_address(prog, NULL, addr, 0, &a) != 0)
        return -1;
    cli_address_notes(prog, NULL, &a, MD_ADDRESS_CHANGED);
    md_address_key(&a, o->u.aopt.key_flags, key, MD_ADDRESS_MAX + 1);
    return 0;
}

static int cmd_suppression(options *o)
{
    md_error err;
    char key[MD_ADDRESS_MAX + 1];
    const char *sub = o->nargs > 1 ? o->args[1] : "";
    int list = strcmp(sub, "list") == 0, add = strcmp(sub, "add") == 0, rm = strcmp(sub, "remove") == 0;
    if (!list && !add && !rm)
        return cli_usage_error(prog, "suppression list|add|remove [ADDRESS]");
    if (operands(o, 2, list ? 0 : 1, list ? 0 : 1, list ? "suppression list takes no operand"
                                                        : "suppression add|remove takes one ADDRESS") != 0)
        return MD_EXIT_UNKNOWN;
    if (add && !md_store_suppression_reason_valid(o->reason))
        return cli_usage_error(prog, "suppression add needs --reason hard-bounce, complaint or manual");
    if (!list && suppression_key(o, o->args[2], key) != 0)
        return MD_EXIT_UNKNOWN;
    if (ucli_open_store(&o->u, 0) != 0)
        return MD_EXIT_UNKNOWN;
    if (list) {
        md_store_suppression_list l;
        if (md_store_suppressions(o->u.store, &l, &err) != MD_OK) {
            ucli_error(&o->u, "suppression list", &err);
            return MD_EXIT_UNKNOWN;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < l.n; i++) {
            char since[32];
            md_store_time_format(l.v[i].since, since, sizeof since);
            /* the bounce text is a peer's words: anything may be in it */
            json_array_append_new(arr, json_pack("{s:o,s:o,s:s,s:o}", "address",
                                                 cli_json_text(l.v[i].address), "reason",
                                                 cli_json_text(l.v[i].reason), "since", since,
                                                 "text", cli_json_text(l.v[i].text)));
            if (o->format != CLI_JSON) {
                const char *row[] = { l.v[i].address, l.v[i].reason, since, l.v[i].text };
                cli_row(stdout, row, 4);
            }
        }
        md_store_suppression_list_clear(&l);
        if (o->format == CLI_JSON)
            result(o, "suppression.list", MD_SEV_OK, json_pack("{s:o}", "suppressions", arr), NULL);
        else
            json_decref(arr);
        return MD_EXIT_OK;
    }
    md_store_audit a = { ucli_operator(&o->u), add ? "suppression.add" : "suppression.remove", key, o->reason };
    if (add) {
        md_store_suppression x = { .address = key, .reason = (char *)o->reason, .since = now_s(),
                                   .text = (char *)o->text };
        if (md_store_suppression_add(o->u.store, &x, &a, &err) != MD_OK) {
            ucli_error(&o->u, "suppression add", &err);
            return MD_EXIT_UNKNOWN;
        }
        return result(o, "suppression.add", MD_SEV_OK, json_pack("{s:s}", "address", key),
                      "suppressed %s (%s)", key, o->reason);
    }
    md_status st = md_store_suppression_remove(o->u.store, key, &a, &err);
    if (st == MD_NOTFOUND) {
        return result(o, "suppression.remove", MD_SEV_WARNING, json_pack("{s:s,s:b}", "address", key, "removed", 0),
                      "%s was not suppressed", key);
    }
    if (st != MD_OK) {
        ucli_error(&o->u, "suppression remove", &err);
        return MD_EXIT_UNKNOWN;
    }
    return result(o, "suppression.remove", MD_SEV_OK, json_pack("{s:s,s:b}", "address", key, "removed", 1),
                  "%s is no longer suppressed", key);
}

/* The CSV of an import, read through a stream that ends with a read
 * error once SIGINT or SIGTERM came: lib/store then rolls the import's one
 * transaction back, whole.  It also draws the progress line. */
typedef struct import_src {
    FILE *f;
    long long done, size;      /* bytes read; the file's size, or -1 */
    cli_progress progress;
} import_src;

static ssize_t import_read(void *cookie, char *buf, size_t n)
{
    import_src *src = cookie;
    if (cli_interrupted) {
        errno = EINTR;
        return -1;
    }
    size_t got = fread(buf, 1, n, src->f);
    if (got == 0 && ferror(src->f))
        return -1;
    src->done += (long long)got;
    if (src->size > 0)
        cli_progress_text(&src->progress, "import: %.1f of %.1f MB read (%lld%%)", src->done / 1e6,
                          src->size / 1e6, src->done * 100 / src->size);
    else
        cli_progress_text(&src->progress, "import: %.1f MB read", src->done / 1e6);
    return (ssize_t)got;
}

static int cmd_import(options *o)
{
    md_error err = { 0 };
    unsigned long rows = 0;
    if (operands(o, 1, 1, 1, "import takes one FILE.csv ('-' = stdin)") != 0)
        return MD_EXIT_UNKNOWN;
    const char *path = o->args[1];
    import_src src = { .f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r"), .size = -1 };
    if (src.f == NULL)
        return cli_fail(prog, "input.invalid", "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(src.f), &st) == 0 && S_ISREG(st.st_mode))
        src.size = (long long)st.st_size;
    int rc = MD_EXIT_UNKNOWN;
    if (ucli_open_store(&o->u, 0) == 0) {
        FILE *in = fopencookie(&src, "r", (cookie_io_functions_t){ .read = import_read });
        setvbuf(in, NULL, _IOFBF, 1 << 16);
        cli_progress_init(&src.progress);
        cli_interrupt_install();
        md_store_audit a = { ucli_operator(&o->u), "import", path, NULL };
        md_status done = md_store_import_csv(o->u.store, in, o->u.aopt.key_flags, &a, &rows, &err);
        cli_progress_end(&src.progress);
        fclose(in);
        if (done != MD_OK && cli_interrupted) {
            char what[200];
            snprintf(what, sizeof what, "bytes of %s read: nothing was imported (the import is one"
                     " transaction, rolled back whole)", path);
            rc = cli_interrupt_exit(prog, what, (size_t)src.done, NULL);
        } else if (done != MD_OK) {
            ucli_error(&o->u, path, &err);
        } else {
            rc = result(o, "import", MD_SEV_OK, json_pack("{s:I}", "accounts", (json_int_t)rows),
                        "imported %lu account%s from %s", rows, rows == 1 ? "" : "s", path);
            if (cli_interrupted)   /* it came after the commit */
                rc = cli_interrupt_exit(prog, "accounts imported (committed before the signal came)", rows, NULL);
        }
    }
    if (src.f != stdin)
        fclose(src.f);
    return rc;
}

static int cmd_export(options *o)
{
    md_error err = { 0 };
    unsigned long rows = 0;
    if (operands(o, 1, 0, 1, "export takes at most one FILE.csv") != 0)
        return MD_EXIT_UNKNOWN;
    const char *path = o->nargs > 1 ? o->args[1] : "-";
    int std = strcmp(path, "-") == 0;
    FILE *f = std ? stdout : NULL;
    int rc = MD_EXIT_UNKNOWN;
    if (ucli_open_store(&o->u, 0) != 0) {
        /* said why; an export's file is not even created */
    } else if (md_store_writable(o->u.store, &err) != MD_OK) {
        /* no export that its audit record cannot follow */
        ucli_error(&o->u, "export: nothing was exported", &err);
    } else if (f == NULL && (f = fopen(path, "w")) == NULL) {
        cli_fail(prog, "input.invalid", "%s: %s", path, strerror(errno));
    } else {
        md_store_audit a = { ucli_operator(&o->u), "export", path, NULL };
        md_status st = md_store_export_csv(o->u.store, f, &rows, &err);
        if (st != MD_OK && std && ferror(stdout))
            return cli_write_failed(prog, errno ? errno : EIO);   /* the reader went away */
        if (st == MD_OK) {
            char n[32];
            snprintf(n, sizeof n, "%lu accounts", rows);
            a.detail = n;
            st = md_store_audit_add(o->u.store, &a, &err);
        }
        if (st != MD_OK)
            ucli_error(&o->u, "export", &err);
        else if (!std)
            rc = result(o, "export", MD_SEV_OK, json_pack("{s:I}", "accounts", (json_int_t)rows),
                        "exported %lu account%s to %s", rows, rows == 1 ? "" : "s", path);
        else
            rc = MD_EXIT_OK;
    }
    if (!std && f && fclose(f) != 0 && rc == MD_EXIT_OK)
        rc = cli_fail(prog, "input.invalid", "%s: %s", path, strerror(errno));
    return rc;
}

static int cmd_audit(options *o)
{
    md_error err;
    md_store_audit_list l;
    if (operands(o, 1, 0, 0, "audit takes no operand") != 0 || ucli_open_store(&o->u, 0) != 0)
        return MD_EXIT_UNKNOWN;
    if (md_store_audit_recent(o->u.store, o->limit ? o->limit : 20, &l, &err) != MD_OK) {
        ucli_error(&o->u, "audit", &err);
        return MD_EXIT_UNKNOWN;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < l.n; i++) {
        char at[32];
        md_store_time_format(l.v[i].at, at, sizeof at);
        json_array_append_new(arr, json_pack("{s:s,s:o,s:o,s:o,s:o}", "at", at, "operator",
                                             cli_json_text(l.v[i].operator_name), "action",
                                             cli_json_text(l.v[i].action), "target",
                                             cli_json_text(l.v[i].target), "detail",
                                             cli_json_text(l.v[i].detail)));
        if (o->format != CLI_JSON) {
            const char *row[] = { at, l.v[i].operator_name, l.v[i].action, l.v[i].target, l.v[i].detail };
            cli_row(stdout, row, 5);
        }
    }
    md_store_audit_list_clear(&l);
    if (o->format == CLI_JSON)
        result(o, "audit", MD_SEV_OK, json_pack("{s:o}", "records", arr), NULL);
    else
        json_decref(arr);
    return MD_EXIT_OK;
}

/* bounces is maildiag-bounces's, so that the other commands never load
 * libcurl and GMime: it gets the command line as it was given. */
static int cmd_bounces(options *o)
{
    ucli_helper_exec(&o->u, "maildiag-bounces", o->argv);
    return MD_EXIT_UNKNOWN;
}

/* A URI as shown: its password, if any, replaced by "***". */
static void uri_shown(const char *uri, char *out, size_t size)
{
    const char *scheme = strstr(uri, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon)
        snprintf(out, size, "%.*s:***%s", (int)(colon - uri), uri, at);
    else
        snprintf(out, size, "%s", uri);
}

/* --show-config: the settings this tool reads, as they apply. */
static int show_config(options *o)
{
    const char *uri = o->u.store_uri, *from = "--store";
    if (uri == NULL && getenv("MAILDIAG_STORE") && *getenv("MAILDIAG_STORE"))
        uri = getenv("MAILDIAG_STORE"), from = "MAILDIAG_STORE";
    if (uri == NULL && (uri = ucli_conf(&o->u, "store", "uri")) != NULL)
        from = "[store] uri";
    char shown[1024];
    cli_show_config(stdout, o->u.conf, &o->u.dns, prog);
    uri_shown(uri ? uri : "", shown, sizeof shown);
    cli_line(stdout, "store.uri = %s%s%s%s", uri ? shown : "(none)", uri ? " (" : "", uri ? from : "", uri ? ")" : "");
    cli_line(stdout, "store.local_part_case = %s",
             o->u.aopt.key_flags & MD_ADDRESS_CASE_SENSITIVE ? "sensitive" : "insensitive");
    cli_line(stdout, "store.typo_many = %lu", o->u.aopt.many ? o->u.aopt.many : (unsigned long)MD_ADDRESS_MANY_DEFAULT);
    const char *product = ucli_conf(&o->u, "product", "uri");
    uri_shown(product ? product : "", shown, sizeof shown);
    cli_line(stdout, "product.uri = %s", product ? shown : "(none: the accounts are in the store)");
    static const char *const queries[] = { "by_email", "by_username", "also", "sessions", "domain_count" };
    for (size_t i = 0; product && i < sizeof queries / sizeof queries[0]; i++)
        cli_line(stdout, "product.%s = %s", queries[i], ucli_conf(&o->u, "product", queries[i]) ? "(set)" : "(none)");
    return MD_EXIT_OK;
}

int main(int argc, char **argv)
{
    options o = { .u = { .prog = prog, .dns = { .timeout = MD_DNS_TIMEOUT_DEFAULT } } };
    int rc = MD_EXIT_UNKNOWN;
    o.argv = md_xcalloc((size_t)argc + 1, sizeof *o.argv);   /* getopt reorders argv */
    memcpy(o.argv, argv, (size_t)argc * sizeof *argv);
    int p = parse_options(argc, argv, &o);
    if (p != 0) {
        rc = p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
        goto done;
    }
    if (ucli_load_config(&o.u) != 0)
        goto done;
    if (o.show_config) {
        rc = show_config(&o);
        goto done;
    }
    const char *cmd = o.args[0];
    if (o.bounces && strcmp(cmd, "bounces") != 0) {
        rc = cli_usage_error(prog, "--mailbox, --maildir, --file, --since, --apply ... belong to bounces");
        goto done;
    }
    if (strcmp(cmd, "init") == 0)
        rc = cmd_init(&o);
    else if (strcmp(cmd, "lookup") == 0)
        rc = cmd_lookup(&o);
    else if (strcmp(cmd, "remind") == 0)
        rc = cmd_remind(&o);
    else if (strcmp(cmd, "sessions") == 0)
        rc = cmd_sessions(&o);
    else if (strcmp(cmd, "suppression") == 0)
        rc = cmd_suppression(&o);
    else if (strcmp(cmd, "import") == 0)
        rc = cmd_import(&o);
    else if (strcmp(cmd, "export") == 0)
        rc = cmd_export(&o);
    else if (strcmp(cmd, "audit") == 0)
        rc = cmd_audit(&o);
    else if (strcmp(cmd, "bounces") == 0)
        rc = cmd_bounces(&o);
    else
        rc = cli_usage_error(prog, "unknown command '%s'", cmd);
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = cli_write_failed(prog, errno);
done:
    ucli_clear(&o.u);
    free(o.argv);
    return rc;
}
