/* tools/usercli: configuration, store and operator for the account tools. */
#include "config.h"
#include "usercli.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *ucli_conf(const ucli *u, const char *section, const char *key)
{
    const char *v = md_conf_get(u->conf, section, key);
    return v && *v ? v : NULL;
}

void ucli_error(const ucli *u, const char *what, const md_error *err)
{
    fprintf(stderr, "%s: %s%s%s%s%s\n", u->prog, what ? what : "", what ? ": " : "", err->text,
            err->peer[0] ? ": " : "", err->peer);
}

int ucli_load_config(ucli *u)
{
    md_error err;
    const char *path = u->config_path;
    int explicit = path != NULL;
    if (path == NULL && (path = getenv("MAILDIAG_CONFIG")) != NULL && *path)
        explicit = 1;
    if (path == NULL || *path == '\0')
        path = UCLI_CONFIG_DEFAULT;
    if (strcmp(path, "/dev/null") == 0)
        return 0;   /* explicitly none */
    md_status st = md_conf_load(path, &u->conf, &err);
    if (st == MD_NOTFOUND && !explicit)
        return 0;   /* no system-wide file: options and defaults only */
    if (st != MD_OK) {
        fprintf(stderr, "%s: configuration: %s\n", u->prog, err.text);
        return -1;
    }
    const char *cs = ucli_conf(u, "store", "local_part_case");
    if (cs && strcasecmp(cs, "sensitive") == 0)
        u->aopt.key_flags |= MD_ADDRESS_CASE_SENSITIVE;
    else if (cs && strcasecmp(cs, "insensitive") != 0) {
        fprintf(stderr, "%s: %s: [store] local_part_case must be sensitive or insensitive\n",
                u->prog, path);
        return -1;
    }
    const char *many = ucli_conf(u, "store", "typo_many");
    if (many) {
        char *end;
        unsigned long v = strtoul(many, &end, 10);
        if (*end || v == 0) {
            fprintf(stderr, "%s: %s: [store] typo_many must be a positive number\n", u->prog, path);
            return -1;
        }
        u->aopt.many = v;
    }
    return 0;
}

int ucli_open_store(ucli *u, unsigned flags)
{
    md_error err;
    const char *uri = u->store_uri;
    if (uri == NULL && (uri = getenv("MAILDIAG_STORE")) != NULL && *uri == '\0')
        uri = NULL;
    if (uri == NULL)
        uri = ucli_conf(u, "store", "uri");
    if (uri == NULL) {
        fprintf(stderr, "%s: no store: give --store URI (sqlite:PATH or postgresql://...),"
                        " MAILDIAG_STORE, or 'uri' in [store] of %s\n", u->prog,
                u->conf ? md_conf_path(u->conf) : UCLI_CONFIG_DEFAULT);
        return -1;
    }
    if (md_store_open(uri, flags, &u->store, &err) != MD_OK) {
        ucli_error(u, "store", &err);
        return -1;
    }
    if (!(flags & MD_STORE_CREATE) && ucli_conf(u, "product", "uri")) {
        md_store_product p = {
            .uri = ucli_conf(u, "product", "uri"),
            .by_email = ucli_conf(u, "product", "by_email"),
            .by_username = ucli_conf(u, "product", "by_username"),
            .also = ucli_conf(u, "product", "also"),
            .sessions = ucli_conf(u, "product", "sessions"),
            .domain_count = ucli_conf(u, "product", "domain_count"),
        };
        if (md_store_use_product(u->store, &p, &err) != MD_OK) {
            ucli_error(u, "product database", &err);
            return -1;
        }
    }
    return 0;
}

int ucli_open_dns(ucli *u)
{
    if (u->no_dns)
        return 0;
    u->resolver = cli_dns_open(&u->dns, u->prog, 0);
    return u->resolver ? 0 : -1;
}

const char *ucli_operator(ucli *u)
{
    char login[64];
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name)
        snprintf(login, sizeof login, "%s", pw->pw_name);
    else
        snprintf(login, sizeof login, "uid %u", (unsigned)getuid());
    if (u->operator_name && strcmp(u->operator_name, login) != 0)
        snprintf(u->operator_buf, sizeof u->operator_buf, "%.80s (as %s)", u->operator_name, login);
    else
        snprintf(u->operator_buf, sizeof u->operator_buf, "%s", login);
    for (char *p = u->operator_buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return u->operator_buf;
}

int ucli_open_mailer(ucli *u)
{
    md_error err = { 0 };
    md_account_mailer *m = &u->mailer;
    memset(m, 0, sizeof *m);
    const char *from = ucli_conf(u, "mail", "from");
    if (from == NULL)
        from = getenv("MAILDIAG_FROM");
    if (from == NULL || *from == '\0') {
        fprintf(stderr, "%s: no sender: set 'from' in [mail] of the configuration (or MAILDIAG_FROM)\n",
                u->prog);
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
    const char *tls = ucli_conf(u, "mail", "tls");
    if (tls == NULL)
        r->tls = MD_SMTP_TLS_DEFAULT;
    else if (strcmp(tls, "required") == 0)
        r->tls = MD_SMTP_TLS_REQUIRED;
    else if (strcmp(tls, "opportunistic") == 0)
        r->tls = MD_SMTP_TLS_OPPORTUNISTIC;
    else if (strcmp(tls, "off") == 0)
        r->tls = MD_SMTP_TLS_OFF;
    else {
        fprintf(stderr, "%s: [mail] tls must be required, opportunistic or off\n", u->prog);
        return -1;
    }
    const char *t = ucli_conf(u, "mail", "timeout");
    r->timeout_ms = t ? (int)(strtod(t, NULL) * 1000) : 60000;
    if (r->timeout_ms <= 0 || r->timeout_ms > 3600000)
        r->timeout_ms = 60000;
    const char *port = ucli_conf(u, "mail", "direct_port");
    if (port == NULL)
        port = getenv("MAILDIAG_SMTP_PORT");
    if (port && *port)
        r->direct_port = (unsigned)strtoul(port, NULL, 10);
    r->auth_user = ucli_conf(u, "mail", "user");
    if (r->auth_user) {
        const char *pf = ucli_conf(u, "mail", "password_file");
        if (pf)
            u->password = cli_read_secret_file(u->prog, "password", pf);
        else if (getenv("MAILDIAG_SMTP_PASSWORD"))
            u->password = md_xstrdup(getenv("MAILDIAG_SMTP_PASSWORD"));
        else
            fprintf(stderr, "%s: [mail] user needs password_file (or MAILDIAG_SMTP_PASSWORD)\n", u->prog);
        if (u->password == NULL)
            return -1;
        r->auth_password = u->password;
    }
    if (r->server == NULL) {   /* straight to the recipient's MX hosts */
        if (u->resolver == NULL && (u->resolver = cli_dns_open(&u->dns, u->prog, 0)) == NULL)
            return -1;
        r->dns = u->resolver;
    }
    if ((u->smtp = md_smtp_ctx_new(ucli_conf(u, "mail", "ca_file"), &err)) == NULL) {
        ucli_error(u, "smtp", &err);
        return -1;
    }
    m->smtp = u->smtp;

    const char *kf = ucli_conf(u, "token", "key_file");
    if (kf == NULL)
        kf = getenv("MAILDIAG_TOKEN_KEYS");
    if (kf && *kf) {
        if ((u->keys = md_token_keys_load(kf, &err)) == NULL) {
            ucli_error(u, "token keys", &err);
            return -1;
        }
        m->keys = u->keys;
    }
    m->verify_url = ucli_conf(u, "token", "verify_url");
    m->reset_url = ucli_conf(u, "token", "reset_url");
    const char *ttl = ucli_conf(u, "token", "ttl");
    m->ttl = ttl ? strtoll(ttl, NULL, 10) : 0;
    return 0;
}

void ucli_clear(ucli *u)
{
    md_smtp_ctx_free(u->smtp);
    u->smtp = NULL;
    md_token_keys_free(u->keys);
    u->keys = NULL;
    if (u->password)
        cli_secret_free(u->password);
    u->password = NULL;
    md_store_free(u->store);
    u->store = NULL;
    md_dns_free(u->resolver);
    u->resolver = NULL;
    md_conf_free(u->conf);
    u->conf = NULL;
    cli_dns_clear(&u->dns);
}
