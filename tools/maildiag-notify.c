/*
 * maildiag-notify: the internal helper that sends the account emails for
 * maildiag-user (remind) and maildiag-selfcheck (the detached child becomes
 * it).  Installed in the package's libexec directory, not on PATH.
 *
 * Why a separate program: only the programs that send load OpenSSL,
 * libESMTP and the token code.  maildiag-user and maildiag-selfcheck start
 * without them, which a lookup needs to answer as fast as the sqlite3
 * command.
 *
 * It reads one JSON request on standard input (ucli_notify_request: the
 * caller's prog, store, config, operator, resolvers, timeout) with:
 *   "command": "remind", "to", "key", "usernames": [...]
 *       sends the username reminder, writes the send log, and prints
 *       {"status": "ok"|"error", "outcome", "send_status" (the send's
 *       severity name), "reply", "message_id"}.
 *   "command": "selfcheck", "to", "key", "want"
 *       what the owner of the address gets from a self-check (tools/selfmail);
 *       prints nothing.
 * Errors go to standard error under the caller's name.  Exit 0 when the
 * request was handled, 3 otherwise.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usercli.h"
#include "usermail.h"
#include "selfmail.h"

#define REQUEST_MAX (1 << 20)

static json_t *read_request(void)
{
    char *buf = md_xmalloc(REQUEST_MAX);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(0, buf + len, REQUEST_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (len += (size_t)r) == REQUEST_MAX)
            break;
    }
    json_error_t je;
    json_t *j = len < REQUEST_MAX ? json_loadb(buf, len, 0, &je) : NULL;
    free(buf);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static const char *str(const json_t *req, const char *key)
{
    const char *s = json_string_value(json_object_get(req, key));
    return s && *s ? s : NULL;
}

/* The caller's settings (ucli_notify_request). */
static int settings(ucli *u, const json_t *req)
{
    u->prog = str(req, "prog") ? str(req, "prog") : "maildiag-notify";
    u->store_uri = str(req, "store");
    u->config_path = str(req, "config");
    u->operator_name = str(req, "operator");
    u->dns.timeout = json_number_value(json_object_get(req, "timeout"));
    if (u->dns.timeout <= 0)
        u->dns.timeout = MD_DNS_TIMEOUT_DEFAULT;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(req, "resolvers"), i, v)
        if (!json_is_string(v) || cli_dns_add_resolver(&u->dns, u->prog, json_string_value(v)) != 0)
            return -1;
    return ucli_load_config(u);
}

static int remind(ucli *u, const json_t *req)
{
    md_error err = { 0 };
    usermail um = { 0 };
    const char *to = str(req, "to"), *key = str(req, "key");
    json_t *jn = json_object_get(req, "usernames");
    size_t n = json_array_size(jn);
    if (to == NULL || key == NULL || n == 0) {
        cli_error(u->prog, "maildiag-notify: incomplete remind request");
        return MD_EXIT_UNKNOWN;
    }
    const char **names = md_xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        if ((names[i] = json_string_value(json_array_get(jn, i))) == NULL) {
            cli_error(u->prog, "maildiag-notify: a username is not a string");
            free(names);
            return MD_EXIT_UNKNOWN;
        }
    /* A reminder uses only the account's username (the first one listed). */
    md_store_account first = { .username = (char *)names[0] };
    int rc = MD_EXIT_UNKNOWN;
    if (ucli_open_store(u, 0) == 0 && usermail_open(u, &um) == 0) {
        md_account_sent sent;
        md_status st = md_account_mail_one(u->store, &um.send.m, to, key, MD_ACCOUNT_MAIL_REMINDER, &first,
                                           names, n, &sent, &err);
        md_error lost;
        if (md_store_log_error(u->store, &lost) != MD_OK) {   /* the send happened: say so */
            cli_error(u->prog, "remind: %s: %s, but its send log record was lost: %s%s%s",
                      to, md_smtp_outcome_name(sent.outcome), lost.text, lost.peer[0] ? ": " : "", lost.peer);
            st = lost.status;
        }
        json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", st == MD_OK ? "ok" : "error",
                              "outcome", md_smtp_outcome_name(sent.outcome),
                              "send_status", md_severity_name(sent.status), "reply", sent.reply,
                              "message_id", sent.message_id);
        json_dumpf(r, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(r);
        rc = fflush(stdout) == 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
    }
    usermail_clear(&um);
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    ucli u = { .prog = "maildiag-notify" };
    (void)argv;
    if (argc > 1 || isatty(0)) {
        fprintf(stderr, "maildiag-notify: internal helper of maildiag-user and maildiag-selfcheck"
                        " (reads a request on standard input); not for direct use\n");
        return MD_EXIT_UNKNOWN;
    }
    json_t *req = read_request();
    int rc = MD_EXIT_UNKNOWN;
    const char *cmd = req ? str(req, "command") : NULL;
    if (cmd == NULL) {
        fprintf(stderr, "maildiag-notify: no valid request on standard input\n");
    } else if (settings(&u, req) != 0) {
        /* said why */
    } else if (strcmp(cmd, "remind") == 0) {
        rc = remind(&u, req);
    } else if (strcmp(cmd, "selfcheck") == 0) {
        int want = str(req, "want") ? md_account_want_parse(str(req, "want")) : -1;
        if (want < 0 || !str(req, "to") || !str(req, "key")) {
            cli_error(u.prog, "maildiag-notify: incomplete selfcheck request");
        } else {
            selfmail_run(&u, str(req, "to"), str(req, "key"), (md_account_want)want);
            rc = MD_EXIT_OK;
        }
    } else {
        cli_error(u.prog, "maildiag-notify: unknown command '%s'", cmd);
    }
    ucli_clear(&u);
    json_decref(req);
    return rc;
}
