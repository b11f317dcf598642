/*
 * tools/selfmail: the private half of maildiag-selfcheck.  Runs in the
 * child process, after the public answer is fixed: looks up the accounts on
 * the address and emails its owner what was asked for (or that no account
 * uses it, or why the account cannot get it), writing the send log and the
 * audit log.  Prints nothing.
 */
#ifndef MAILDIAG_SELFMAIL_H
#define MAILDIAG_SELFMAIL_H

#include "usercli.h"

/* Opens its own store (and resolver) from u's settings. */
void selfmail_run(ucli *u, const md_account_public *p, md_account_want want);

#endif
