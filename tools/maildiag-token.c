/*
 * maildiag-token: check or issue the signed tokens in verify and reset links
 * ("the user says the link expired").  Over lib/token and lib/report.  The
 * manual is maildiag-token.1 beside this file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "token/token.h"

static const char *prog = "maildiag-token";

typedef struct options {
    const char *cmd, *token, *kind, *account, *key_file, *state_file, *config_path;
    unsigned ttl;
    int64_t now;
    int throwaway, show_config;
    cli_format format;
} options;

static void usage(void)
{
    printf("Usage: %s verify [OPTION]... TOKEN      ('-' reads TOKEN from stdin)\n"
           "       %s issue --kind KIND --account ID [OPTION]...\n"
           "Check a token from a verify or reset link (valid, expired, wrong kind, bad\n"
           "signature, not yet valid, stale), or issue one for scripts.\n"
           "verify exit: 0 valid, 1 test token, 2 not valid, 3 usage or key error.\n\n"
           "  -k, --key-file FILE    keys, one hex key a line (default MAILDIAG_TOKEN_KEYS, else\n"
           "                         [token] key_file)\n"
           "      --kind KIND        verify: the kind expected; issue: the kind to sign\n"
           "      --account ID       issue: the account id\n"
           "      --state-file FILE  account state the token is bound to ('-' = stdin;\n"
           "                         default MAILDIAG_TOKEN_STATE, else unbound / unchecked)\n"
           "      --ttl SECONDS      issue: lifetime (default %d)\n"
           "      --throwaway        issue: sign with a throwaway key (a test token)\n"
           "      --now UNIXTIME     the time to judge or issue at (default now)\n"
           "  -j, --json             one JSON object\n"
           CLI_HELP_CONFIG
           "      --show-config      show the settings in effect and exit\n"
           CLI_HELP_COMMON, prog, prog, MD_TOKEN_TTL_DEFAULT);
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { O_KIND = 256, O_ACCOUNT, O_STATE, O_TTL, O_THROWAWAY, O_NOW, O_SHOW };
    static const struct option longopts[] = {
        { "key-file", required_argument, NULL, 'k' },
        { "kind", required_argument, NULL, O_KIND },
        { "account", required_argument, NULL, O_ACCOUNT },
        { "state-file", required_argument, NULL, O_STATE },
        { "ttl", required_argument, NULL, O_TTL },
        { "throwaway", no_argument, NULL, O_THROWAWAY },
        { "now", required_argument, NULL, O_NOW },
        { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'C' },
        { "show-config", no_argument, NULL, O_SHOW },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    unsigned now;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:jC:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': o->key_file = optarg; break;
        case O_KIND: o->kind = optarg; break;
        case O_ACCOUNT: o->account = optarg; break;
        case O_STATE: o->state_file = optarg; break;
        case O_TTL:
            if (cli_parse_uint(prog, "--ttl", optarg, 366 * 86400, &o->ttl) != 0)
                return -1;
            break;
        case O_THROWAWAY: o->throwaway = 1; break;
        case O_NOW:
            if (cli_parse_uint(prog, "--now", optarg, 4000000000u, &now) != 0)
                return -1;
            o->now = now;
            break;
        case 'j': if (cli_format_set(prog, &o->format, CLI_JSON) != 0) return -1; break;
        case 'C': o->config_path = optarg; break;
        case O_SHOW: o->show_config = 1; break;
        default: return cli_option_common(c, prog, argv, usage);
        }
    }
    if (o->show_config)
        return 0;
    if (optind >= argc)
        return cli_usage_error(prog, "say 'verify TOKEN' or 'issue'"), -1;
    o->cmd = argv[optind++];
    if (strcmp(o->cmd, "verify") == 0) {
        if (optind + 1 != argc)
            return cli_usage_error(prog, "verify takes exactly one TOKEN"), -1;
        o->token = argv[optind];
    } else if (strcmp(o->cmd, "issue") == 0) {
        if (optind != argc || !o->kind || !o->account)
            return cli_usage_error(prog, "issue needs --kind and --account and no other argument"), -1;
    } else {
        return cli_usage_error(prog, "unknown command '%s' (verify or issue)", o->cmd), -1;
    }
    return 0;
}

static void fmt_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, size, "%" PRId64, t);
}

/* Judges a token into a report. */
static md_report *judge(const md_token_keys *keys, const options *o, const char *token,
                        const char *state)
{
    md_token_claims c;
    md_token_verdict v = md_token_verify(keys, token, o->kind, state, o->now, &c);
    md_report *rep = md_report_new(prog, "token");
    char iss[40], exp[40];
    fmt_time(c.issued, iss, sizeof iss);
    fmt_time(c.expires, exp, sizeof exp);
    md_report_set(rep, "verdict", json_string(md_token_verdict_name(v)));
    if (v != MD_TOKEN_MALFORMED) {
        md_report_set(rep, "kind", json_string(c.kind));
        json_t *acc = json_string(c.account);
        md_report_set(rep, "account", acc ? acc : json_string("(not UTF-8)"));
        md_report_set(rep, "issued", json_string(iss));
        md_report_set(rep, "expires", json_string(exp));
        md_report_set(rep, "test", json_boolean(c.test));
        md_report_set(rep, "authentic", json_boolean(c.key_index >= 0));
        if (c.key_index >= 0)
            md_report_set(rep, "key_index", json_integer(c.key_index));
        md_report_set(rep, "state_checked", json_boolean(state != NULL));
        md_report_add_detail(rep, "kind %s, account %s%s", c.kind, c.account,
                             c.key_index < 0 ? " (unauthenticated: claims as written in the token)" : "");
        md_report_add_detail(rep, "issued %s, expires %s", iss, exp);
    }
    switch (v) {
    case MD_TOKEN_VALID:
        if (c.test)
            md_report_add(rep, "token.test", MD_SEV_DEFAULT, "a test token (throwaway key), valid until %s", exp);
        else
            md_report_add(rep, "token.valid", MD_SEV_DEFAULT, "valid until %s (%" PRId64 " s left)%s",
                          exp, c.expires - o->now, state ? "" : "; account state not checked");
        break;
    case MD_TOKEN_EXPIRED:
        md_report_add(rep, "token.expired", MD_SEV_DEFAULT, "expired at %s, %" PRId64 " s ago", exp,
                      o->now - c.expires);
        break;
    case MD_TOKEN_NOT_YET_VALID:
        md_report_add(rep, "token.not_yet_valid", MD_SEV_DEFAULT, "issued at %s, %" PRId64 " s in the future",
                      iss, c.issued - o->now);
        break;
    case MD_TOKEN_WRONG_KIND:
        md_report_add(rep, "token.wrong_kind", MD_SEV_DEFAULT, "a %s token, not %s", c.kind, o->kind);
        break;
    case MD_TOKEN_STALE:
        md_report_add(rep, "token.stale", MD_SEV_DEFAULT,
                      "the account state changed since %s: the link was used or the password changed", iss);
        break;
    case MD_TOKEN_BAD_SIGNATURE:
        md_report_add(rep, "token.bad_signature", MD_SEV_DEFAULT, "%s",
                      c.test ? "a test token: its throwaway key is gone, it cannot verify"
                             : "no key verifies it: altered, forged, or signed with a key not in this key file");
        break;
    case MD_TOKEN_MALFORMED:
        md_report_add(rep, "token.malformed", MD_SEV_DEFAULT, "not a maildiag token (truncated link?)");
        break;
    }
    return rep;
}

int main(int argc, char **argv)
{
    options o = { .ttl = MD_TOKEN_TTL_DEFAULT, .now = (int64_t)time(NULL) };
    md_error err = { 0 };
    md_token_keys *keys = NULL;
    md_conf *conf = NULL;
    char *state = NULL, *token = NULL;
    int rc = MD_EXIT_UNKNOWN;

    int p = parse_options(argc, argv, &o);
    if (p != 0)
        return p > 0 ? MD_EXIT_OK : MD_EXIT_UNKNOWN;
    if (cli_config_load(prog, o.config_path, &conf, NULL) != 0)
        goto done;
    const char *key_file = o.key_file ? o.key_file : getenv("MAILDIAG_TOKEN_KEYS");
    if (key_file == NULL || *key_file == '\0')
        key_file = cli_conf(conf, "token", "key_file");
    if (o.show_config) {
        cli_line(stdout, "config = %s", conf ? md_conf_path(conf) : "(none)");
        cli_line(stdout, "token.key_file = %s", key_file ? key_file : "(none)");
        rc = fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
        goto done;
    }
    if (o.throwaway)
        keys = md_token_keys_throwaway(&err);
    else if (key_file && *key_file)
        keys = md_token_keys_load(key_file, &err);
    else
        md_error_set(&err, MD_CONFIG, "token.key", "no key: give --key-file, MAILDIAG_TOKEN_KEYS or [token]"
                     " key_file%s", strcmp(o.cmd, "issue") == 0 ? " (or --throwaway)" : "");
    if (keys == NULL) {
        cli_fail(prog, "config.error", "%s", err.text);
        goto done;
    }
    if (o.state_file) {
        if ((state = cli_read_secret_file(prog, "state", o.state_file)) == NULL)
            goto done;
    } else if (getenv("MAILDIAG_TOKEN_STATE")) {
        state = md_xstrdup(getenv("MAILDIAG_TOKEN_STATE"));
    }
    if (strcmp(o.cmd, "issue") == 0) {
        char *t = md_token_issue(keys, o.kind, o.account, state ? state : "", o.now, o.ttl, &err);
        if (t == NULL) {
            cli_fail(prog, "input.invalid", "%s", err.text);
            goto done;
        }
        if (o.format == CLI_JSON) {
            md_report *rep = md_report_new(prog, "token");
            md_report_set(rep, "token", json_string(t));
            md_report_set(rep, "kind", cli_json_text(o.kind));
            md_report_set(rep, "issued", json_integer(o.now));
            md_report_set(rep, "expires", json_integer(o.now + o.ttl));
            md_report_write_json(rep, stdout);
            md_report_free(rep);
        } else {
            printf("%s\n", t);
        }
        free(t);
        rc = fflush(stdout) == 0 ? MD_EXIT_OK : cli_write_failed(prog, errno);
        goto done;
    }
    token = strcmp(o.token, "-") == 0 ? cli_read_secret_file(prog, "token", "-") : md_xstrdup(o.token);
    if (token == NULL)
        goto done;
    md_report *rep = judge(keys, &o, token, state);
    if (o.format == CLI_JSON)
        md_report_write_json(rep, stdout);
    else
        md_report_write_text(rep, stdout, md_color_wanted(stdout) ? MD_TEXT_COLOR : 0);
    rc = md_severity_exit_code(md_report_status(rep));
    md_report_free(rep);
    if (fflush(stdout) != 0)
        rc = cli_write_failed(prog, errno);
done:
    md_conf_free(conf);
    md_token_keys_free(keys);
    cli_secret_free(state);
    free(token);
    return rc;
}
