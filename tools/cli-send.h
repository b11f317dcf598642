/*
 * tools/cli-send: the sending settings of maildiag-send and of the account
 * emails (maildiag-notify, for maildiag-user remind and maildiag-selfcheck),
 * read one way: an option given on the command line, else the environment,
 * else the configuration file, else the default.
 *
 *   [mail]  from (MAILDIAG_FROM), from_name, product, template_dir
 *           (MAILDIAG_TEMPLATE_DIR), server HOST[:PORT] (a relay; without it
 *           the recipient's MX hosts), tls (required, opportunistic, off),
 *           user, password_file (else MAILDIAG_SMTP_PASSWORD), helo,
 *           ca_file, timeout (seconds, default 60), allow_internal (yes,
 *           no), direct_port (default 25)
 *   [token] key_file (MAILDIAG_TOKEN_KEYS), verify_url, reset_url, ttl
 *
 * Compiled into the programs that send (maildiag-send, maildiag-notify)
 * only: opening pulls in lib/smtp and lib/token, which the account tools
 * must not load (tools/usercli.h).
 */
#ifndef MAILDIAG_CLI_SEND_H
#define MAILDIAG_CLI_SEND_H

#include "cli.h"
#include "account/notify.h"

typedef struct cli_send {
    /* What is sent and how: set the fields given as options (borrowed
     * strings), then cli_send_settle fills the rest.  m.smtp and m.keys are
     * set by cli_send_open. */
    md_account_mailer m;
    const char *password_file;   /* --password-file / [mail] password_file */
    const char *ca_file;         /* --ca-file / [mail] ca_file */
    const char *key_file;        /* --key-file / MAILDIAG_TOKEN_KEYS / [token] key_file */
    int direct;                  /* --direct: the MX hosts even when [mail] server is set */
    int tls_given, timeout_given, allow_internal_given;
    /* owned */
    char *password;
    md_smtp_ctx *smtp;
    md_token_keys *keys;
    char from_buf[300];
} cli_send;

#define CLI_SEND_ACCOUNT    0x1u  /* the account emails: a sender must be configured */
#define CLI_SEND_NO_AUTH    0x2u  /* open: no password needed (nothing reaches AUTH) */
#define CLI_SEND_NO_SMTP    0x4u  /* open: no SMTP context (nothing is sent: --dry-run) */
#define CLI_SEND_KEYS       0x8u  /* open: token keys are needed (verify, reset links) */
#define CLI_SEND_THROWAWAY 0x10u  /* open: without a key file, a throwaway key */

/* Fills what the options left unset from the environment, then from c
 * (may be NULL), then the defaults, checking every value used.  Returns 0,
 * or -1 after cli_fail (config.error). */
int cli_send_settle(const char *prog, const md_conf *c, cli_send *s, unsigned flags);

/* Reads the AUTH password, makes the SMTP context (one SSL_CTX), loads
 * the token keys, as flags say.  Returns 0, or -1 after cli_fail
 * (config.error); cli_send_clear either way. */
int cli_send_open(const char *prog, cli_send *s, unsigned flags);
void cli_send_clear(cli_send *s);

/* The settings in effect, one "key = value" line each (--show-config);
 * the password itself never. */
void cli_send_show(const cli_send *s, FILE *out);

#endif
