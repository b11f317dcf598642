/* tools/cli-send: the sending settings, one way for every program that
 * sends (cli-send.h). */
#include "config.h"
#include "cli-send.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address/address.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* option, else environment (name may be NULL), else [section] key. */
static const char *pick(const char *given, const char *envname, const md_conf *c, const char *section,
                        const char *key)
{
    if (given)
        return given;
    if (envname && env(envname))
        return env(envname);
    return cli_conf(c, section, key);
}

static int bad(const char *prog, const md_conf *c, const char *section, const char *key, const char *value,
               const char *what)
{
    return cli_fail(prog, "config.error", "%s%s[%s] %s = '%s': %s", c ? md_conf_path(c) : "",
                    c ? ": " : "", section, key, value, what), -1;
}

int cli_send_settle(const char *prog, const md_conf *c, cli_send *s, unsigned flags)
{
    md_message_request *msg = &s->m.message;
    md_smtp_request *r = &s->m.route;
    md_error err = { 0 };

    msg->from = pick(msg->from, "MAILDIAG_FROM", c, "mail", "from");
    if (msg->from && msg->from == cli_conf(c, "mail", "from")) {
        /* from the file: checked here, so that a bad value names its key
         * (an option's is checked with the message, naming the option) */
        md_address a;
        if (md_address_parse_len(msg->from, strlen(msg->from), 0, &a, &err) != MD_OK)
            return bad(prog, c, "mail", "from", msg->from, err.text);
    }
    if (msg->from == NULL && (flags & CLI_SEND_ACCOUNT))
        return cli_fail(prog, "config.error", "no sender: set 'from' in [mail] of the configuration"
                        " (or MAILDIAG_FROM)"), -1;
    if (msg->from == NULL) {
        char host[200];
        if (gethostname(host, sizeof host) != 0 || strchr(host, '.') == NULL)
            snprintf(host, sizeof host, "localhost.localdomain");
        snprintf(s->from_buf, sizeof s->from_buf, "maildiag@%s", host);
        msg->from = s->from_buf;
    }
    msg->from_name = pick(msg->from_name, NULL, c, "mail", "from_name");
    msg->product = pick(msg->product, NULL, c, "mail", "product");
    msg->template_dir = pick(msg->template_dir, "MAILDIAG_TEMPLATE_DIR", c, "mail", "template_dir");

    if (!s->direct)
        r->server = pick(r->server, NULL, c, "mail", "server");
    r->helo = pick(r->helo, NULL, c, "mail", "helo");
    if (r->helo && !md_smtp_helo_valid(r->helo) && r->helo == cli_conf(c, "mail", "helo"))
        return bad(prog, c, "mail", "helo", r->helo, "not an EHLO name (a domain name or an address literal)");
    const char *tls = cli_conf(c, "mail", "tls");
    int t = tls ? md_smtp_tls_parse(tls) : MD_SMTP_TLS_DEFAULT;
    if (t < 0)   /* checked even when --tls wins, as every value of the file */
        return bad(prog, c, "mail", "tls", tls, "required, opportunistic or off");
    if (tls && !s->tls_given)
        r->tls = (md_smtp_tls)t;
    if (flags & CLI_SEND_ACCOUNT) {
        r->helo_advice = "give one ([mail] helo)";
        r->tls_advice = "[mail] tls = opportunistic to send anyway";
    } else {
        r->helo_advice = "give one (--helo or [mail] helo)";
        r->tls_advice = "--tls opportunistic to send anyway";
    }
    r->auth_user = pick(r->auth_user, NULL, c, "mail", "user");
    s->password_file = pick(s->password_file, NULL, c, "mail", "password_file");
    s->ca_file = pick(s->ca_file, NULL, c, "mail", "ca_file");
    double secs = 60;
    if (cli_conf_seconds(prog, c, "mail", "timeout", 3600, &secs) != 0)
        return -1;
    if (!s->timeout_given)
        r->timeout_ms = (int)(secs * 1000);
    int allow = r->allow_internal;
    if (cli_conf_bool(prog, c, "mail", "allow_internal", &allow) != 0)
        return -1;
    if (!s->allow_internal_given)
        r->allow_internal = allow;
    const char *port = cli_conf(c, "mail", "direct_port");
    if (port) {
        char *end;
        unsigned long p = strtoul(port, &end, 10);
        if (*end || end == port || p == 0 || p > 65535)
            return bad(prog, c, "mail", "direct_port", port, "not a port number");
        r->direct_port = (unsigned)p;
    }

    s->key_file = pick(s->key_file, "MAILDIAG_TOKEN_KEYS", c, "token", "key_file");
    s->m.verify_url = pick(s->m.verify_url, NULL, c, "token", "verify_url");
    s->m.reset_url = pick(s->m.reset_url, NULL, c, "token", "reset_url");
    const char *ttl = cli_conf(c, "token", "ttl");
    if (ttl && s->m.ttl == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(ttl, &end, 10);
        if (errno || *end || end == ttl || v <= 0 || v > 366LL * 86400)
            return bad(prog, c, "token", "ttl", ttl, "not a number of seconds up to a year");
        s->m.ttl = v;
    }
    return 0;
}

int cli_send_open(const char *prog, cli_send *s, unsigned flags)
{
    md_error err = { 0 };
    md_smtp_request *r = &s->m.route;
    if (r->auth_user && !(flags & CLI_SEND_NO_AUTH)) {
        if (s->password_file)
            s->password = cli_read_secret_file(prog, "password", s->password_file);
        else if (env("MAILDIAG_SMTP_PASSWORD"))
            s->password = md_xstrdup(env("MAILDIAG_SMTP_PASSWORD"));
        else
            cli_fail(prog, "config.error", "an AUTH user (%s) needs a password: --password-file FILE,"
                     " [mail] password_file or MAILDIAG_SMTP_PASSWORD", r->auth_user);
        if (s->password == NULL)
            return -1;
        r->auth_password = s->password;
    }
    if (!(flags & CLI_SEND_NO_SMTP)) {
        if ((s->smtp = md_smtp_ctx_new(s->ca_file, &err)) == NULL)
            return cli_fail(prog, "config.error", "%s", err.text), -1;
        s->m.smtp = s->smtp;
    }
    if (flags & CLI_SEND_KEYS) {
        if (s->key_file)
            s->keys = md_token_keys_load(s->key_file, &err);
        else if (flags & CLI_SEND_THROWAWAY)
            s->keys = md_token_keys_throwaway(&err);
        else
            return 0;   /* no links can be made: such emails fail, and are logged so */
        if (s->keys == NULL)
            return cli_fail(prog, "config.error", "token keys: %s", err.text), -1;
        s->m.keys = s->keys;
    }
    return 0;
}

void cli_send_clear(cli_send *s)
{
    md_smtp_ctx_free(s->smtp);
    s->smtp = NULL;
    s->m.smtp = NULL;
    md_token_keys_free(s->keys);
    s->keys = NULL;
    s->m.keys = NULL;
    cli_secret_free(s->password);
    s->password = NULL;
    s->m.route.auth_password = NULL;
}

static void show(FILE *out, const char *key, const char *value)
{
    cli_line(out, "%s = %s", key, value ? value : "(none)");
}

void cli_send_show(const cli_send *s, FILE *out)
{
    const md_smtp_request *r = &s->m.route;
    const char *tls = r->tls == MD_SMTP_TLS_REQUIRED ? "required" : r->tls == MD_SMTP_TLS_OPPORTUNISTIC
                    ? "opportunistic" : r->tls == MD_SMTP_TLS_OFF ? "off"
                    : "default (required on port 587, else opportunistic)";
    char n[32];
    show(out, "mail.from", s->m.message.from);
    show(out, "mail.from_name", s->m.message.from_name);
    show(out, "mail.product", s->m.message.product);
    show(out, "mail.template_dir", s->m.message.template_dir);
    show(out, "mail.server", r->server ? r->server : "(none: the recipient's MX hosts)");
    show(out, "mail.tls", tls);
    show(out, "mail.user", r->auth_user);
    show(out, "mail.password_file", s->password_file);
    show(out, "mail.helo", r->helo ? r->helo : "(the host name)");
    show(out, "mail.ca_file", s->ca_file ? s->ca_file : "(the system store)");
    snprintf(n, sizeof n, "%g", r->timeout_ms / 1000.0);
    show(out, "mail.timeout", n);
    show(out, "mail.allow_internal", r->allow_internal ? "yes" : "no");
    snprintf(n, sizeof n, "%u", r->direct_port ? r->direct_port : 25);
    show(out, "mail.direct_port", n);
    show(out, "token.key_file", s->key_file);
    show(out, "token.verify_url", s->m.verify_url);
    show(out, "token.reset_url", s->m.reset_url);
    snprintf(n, sizeof n, "%lld", (long long)(s->m.ttl ? s->m.ttl : MD_TOKEN_TTL_DEFAULT));
    show(out, "token.ttl", n);
}
