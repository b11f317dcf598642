/* tools/usermail: the mailer of maildiag-notify, from the configuration. */
#include "config.h"
#include "usermail.h"

#include <stdlib.h>
#include <string.h>

int usermail_open(ucli *u, usermail *um)
{
    md_error err = { 0 };
    md_account_mailer *m = &um->mailer;
    memset(um, 0, sizeof *um);
    const char *from = ucli_conf(u, "mail", "from");
    if (from == NULL)
        from = getenv("MAILDIAG_FROM");
    if (from == NULL || *from == '\0') {
        cli_error(u->prog, "no sender: set 'from' in [mail] of the configuration (or MAILDIAG_FROM)");
        return -1;
    }
    m->message.from = from;
    m->message.from_name = ucli_conf(u, "mail", "from_name");
    m->message.product = ucli_conf(u, "mail", "product");
    m->message.template_dir = ucli_conf(u, "mail", "template_dir");
    if (m->message.template_dir == NULL)
        m->message.template_dir = getenv("MAILDIAG_TEMPLATE_DIR");

    md_smtp_request *r = &m->route;
    r->server = ucli_conf(u, "mail", "server");
    r->helo = ucli_conf(u, "mail", "helo");
    r->helo_advice = "give one ([mail] helo)";
    r->tls_advice = "[mail] tls = opportunistic to send anyway";
    const char *tls = ucli_conf(u, "mail", "tls");
    int tp = tls ? md_smtp_tls_parse(tls) : MD_SMTP_TLS_DEFAULT;
    if (tp < 0) {
        cli_error(u->prog, "[mail] tls must be required, opportunistic or off");
        return -1;
    }
    r->tls = (md_smtp_tls)tp;
    const char *t = ucli_conf(u, "mail", "timeout");
    r->timeout_ms = t ? (int)(strtod(t, NULL) * 1000) : 60000;
    if (r->timeout_ms <= 0 || r->timeout_ms > 3600000)
        r->timeout_ms = 60000;
    const char *port = ucli_conf(u, "mail", "direct_port");
    if (port && *port)
        r->direct_port = (unsigned)strtoul(port, NULL, 10);
    const char *internal = ucli_conf(u, "mail", "allow_internal");
    if (internal && strcmp(internal, "yes") == 0)
        r->allow_internal = 1;
    else if (internal && strcmp(internal, "no") != 0) {
        fprintf(stderr, "%s: [mail] allow_internal must be yes or no\n", u->prog);
        return -1;
    }
    r->auth_user = ucli_conf(u, "mail", "user");
    if (r->auth_user) {
        const char *pf = ucli_conf(u, "mail", "password_file");
        if (pf)
            um->password = cli_read_secret_file(u->prog, "password", pf);
        else if (getenv("MAILDIAG_SMTP_PASSWORD"))
            um->password = md_xstrdup(getenv("MAILDIAG_SMTP_PASSWORD"));
        else
            cli_error(u->prog, "[mail] user needs password_file (or MAILDIAG_SMTP_PASSWORD)");
        if (um->password == NULL)
            return -1;
        r->auth_password = um->password;
    }
    if (r->server == NULL) {   /* straight to the recipient's MX hosts */
        if (u->resolver == NULL && (u->resolver = cli_dns_open(&u->dns, u->prog, 0)) == NULL)
            return -1;
        r->dns = u->resolver;
    }
    if ((um->smtp = md_smtp_ctx_new(ucli_conf(u, "mail", "ca_file"), &err)) == NULL) {
        ucli_error(u, "smtp", &err);
        return -1;
    }
    m->smtp = um->smtp;

    const char *kf = ucli_conf(u, "token", "key_file");
    if (kf == NULL)
        kf = getenv("MAILDIAG_TOKEN_KEYS");
    if (kf && *kf) {
        if ((um->keys = md_token_keys_load(kf, &err)) == NULL) {
            ucli_error(u, "token keys", &err);
            return -1;
        }
        m->keys = um->keys;
    }
    m->verify_url = ucli_conf(u, "token", "verify_url");
    m->reset_url = ucli_conf(u, "token", "reset_url");
    const char *ttl = ucli_conf(u, "token", "ttl");
    m->ttl = ttl ? strtoll(ttl, NULL, 10) : 0;
    return 0;
}

void usermail_clear(usermail *um)
{
    md_smtp_ctx_free(um->smtp);
    um->smtp = NULL;
    md_token_keys_free(um->keys);
    um->keys = NULL;
    if (um->password)
        cli_secret_free(um->password);
    um->password = NULL;
}
