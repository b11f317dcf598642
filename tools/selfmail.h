/*
 * tools/selfmail: the private half of maildiag-selfcheck.  Runs in
 * maildiag-notify, which the selfcheck's detached child becomes after the
 * public answer is fixed: looks up the accounts on
 * the address and emails its owner what was asked for (or that no account
 * uses it, or why the account cannot get it), writing the send log and the
 * audit log.  Prints nothing.
 */
#ifndef MAILDIAG_SELFMAIL_H
#define MAILDIAG_SELFMAIL_H

#include "usercli.h"

/* Opens its own store (and resolver) from u's settings.  to is the
 * address in ASCII (A-label domain), key its lookup key. */
void selfmail_run(ucli *u, const char *to, const char *key, md_account_want want);

#endif
