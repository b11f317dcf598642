/*
 * tools/usermail: sending the account emails from the configuration, for
 * maildiag-notify (the only program that links lib/smtp, lib/message and
 * lib/token among the account tools).
 */
#ifndef MAILDIAG_USERMAIL_H
#define MAILDIAG_USERMAIL_H

#include "usercli.h"
#include "cli-send.h"

typedef struct usermail {
    cli_send send;                 /* send.m is the mailer of lib/account */
} usermail;

/*
 * Sets up sending from u's configuration, the way maildiag-send reads it
 * (tools/cli-send.h): [mail] and [token], the environment first.  Without
 * token keys, verify and reset links cannot be made (such emails fail and
 * are logged so).  Opens u's resolver when mail goes straight to MX hosts.
 * Returns 0, or -1 after printing the error; usermail_clear() either way.
 */
int usermail_open(ucli *u, usermail *um);
void usermail_clear(usermail *um);

#endif
