/*
 * tools/usermail: sending the account emails from the configuration, for
 * maildiag-notify (the only program that links lib/smtp, lib/message and
 * lib/token among the account tools).
 */
#ifndef MAILDIAG_USERMAIL_H
#define MAILDIAG_USERMAIL_H

#include "usercli.h"
#include "account/notify.h"

typedef struct usermail {
    md_account_mailer mailer;
    md_smtp_ctx *smtp;
    md_token_keys *keys;
    char *password;
} usermail;

/*
 * Sets up sending from u's configuration:
 *   [mail]  from (or MAILDIAG_FROM), from_name, product, template_dir (or
 *           MAILDIAG_TEMPLATE_DIR), server HOST[:PORT] (relay; without it,
 *           straight to the recipient's MX, port direct_port, default 25),
 *           tls (required, opportunistic,
 *           off), user, password_file (or MAILDIAG_SMTP_PASSWORD), helo,
 *           ca_file, timeout (seconds, default 60)
 *   [token] key_file (or MAILDIAG_TOKEN_KEYS), verify_url, reset_url,
 *           ttl (seconds)
 * Without token keys, verify and reset links cannot be made (such emails
 * fail and are logged so).  Opens u's resolver when mail goes straight to
 * MX hosts.  Returns 0, or -1 after printing the error; usermail_clear()
 * either way.
 */
int usermail_open(ucli *u, usermail *um);
void usermail_clear(usermail *um);

#endif
