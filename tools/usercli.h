/*
 * tools/usercli: what maildiag-user and maildiag-selfcheck share on the
 * command line: the configuration file, the store (--store URI, with a
 * product's database mapped from the config), the operator recorded in the
 * audit log, and the DNS check of the address's domain.
 */
#ifndef MAILDIAG_USERCLI_H
#define MAILDIAG_USERCLI_H

#include "cli.h"
#include "base/conf.h"
#include "store/store.h"
#include "account/account.h"
#include "account/notify.h"

#define UCLI_CONFIG_DEFAULT "/etc/maildiag.conf"

typedef struct ucli {
    const char *prog;
    const char *store_uri;       /* --store, else MAILDIAG_STORE, else [store] uri */
    const char *config_path;     /* --config, else MAILDIAG_CONFIG, else the default if present */
    const char *operator_name;   /* --operator */
    cli_dns dns;
    int no_dns;                  /* --no-dns */
    md_conf *conf;
    md_store *store;
    md_dns *resolver;
    md_account_options aopt;
    char operator_buf[160];
    /* sending (ucli_open_mailer) */
    md_account_mailer mailer;
    md_smtp_ctx *smtp;
    md_token_keys *keys;
    char *password;
} ucli;

/* Loads the configuration.  Returns 0, or -1 after printing the error. */
int ucli_load_config(ucli *u);
/* Opens the store (flags MD_STORE_*); maps a product's database from the
 * config's [product] section unless MD_STORE_CREATE.  Returns 0 or -1. */
int ucli_open_store(ucli *u, unsigned flags);
/* The resolver for the MX check, or NULL with --no-dns.  Returns 0 or -1. */
int ucli_open_dns(ucli *u);
/*
 * Sets up sending from the configuration:
 *   [mail]  from (or MAILDIAG_FROM), from_name, product, template_dir (or
 *           MAILDIAG_TEMPLATE_DIR), server HOST[:PORT] (relay; without it,
 *           straight to the recipient's MX, port direct_port or
 *           MAILDIAG_SMTP_PORT, default 25), tls (required, opportunistic,
 *           off), user, password_file (or MAILDIAG_SMTP_PASSWORD), helo,
 *           ca_file, timeout (seconds, default 60)
 *   [token] key_file (or MAILDIAG_TOKEN_KEYS), verify_url, reset_url,
 *           ttl (seconds)
 * Without token keys, verify and reset links cannot be made (such emails
 * fail and are logged so).  Returns 0, or -1 after printing the error.
 */
int ucli_open_mailer(ucli *u);

/* Who runs this: the login name of getuid(), with --operator NAME shown
 * as "NAME (as LOGIN)" when they differ.  Borrowed. */
const char *ucli_operator(ucli *u);
/* A config value from section/key, or NULL. */
const char *ucli_conf(const ucli *u, const char *section, const char *key);
/* Prints "PROG: what: err" (with the peer's words when present). */
void ucli_error(const ucli *u, const char *what, const md_error *err);
void ucli_clear(ucli *u);

#endif
