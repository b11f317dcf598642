/*
 * tools/usercli: what maildiag-user and maildiag-selfcheck share on the
 * command line: the configuration file, the store (--store URI, with a
 * product's database mapped from the config), the operator recorded in the
 * audit log, the DNS check of the address's domain, and the requests to
 * maildiag-notify, the internal helper that sends the account emails.
 *
 * The emails are sent by a separate program so that these tools never load
 * OpenSSL, libESMTP or the token code: a lookup starts as fast as the
 * sqlite3 command, and only a run that sends pays for them.
 */
#ifndef MAILDIAG_USERCLI_H
#define MAILDIAG_USERCLI_H

#include "cli.h"
#include "base/conf.h"
#include "store/store.h"
#include "account/account.h"
#include <jansson.h>

typedef struct ucli {
    const char *prog;
    const char *store_uri;       /* --store, else MAILDIAG_STORE, else [store] uri */
    const char *config_path;     /* --config (else MAILDIAG_CONFIG, else the default if present) */
    const char *operator_name;   /* --operator */
    cli_dns dns;
    int no_dns;                  /* --no-dns */
    md_conf *conf;
    md_store *store;
    md_dns *resolver;
    md_account_options aopt;
    char operator_buf[160];
} ucli;

/* Loads the configuration (cli_config_load) and its [dns] and [store]
 * settings.  Returns 0, or -1 after printing the error. */
int ucli_load_config(ucli *u);
/* Opens the store (flags MD_STORE_*); maps a product's database from the
 * config's [product] section unless MD_STORE_CREATE.  Returns 0 or -1. */
int ucli_open_store(ucli *u, unsigned flags);
/* The resolver for the MX check, or NULL with --no-dns.  Returns 0 or -1. */
int ucli_open_dns(ucli *u);
/*
 * A request to maildiag-notify: {"command": command, "prog", "store",
 * "config", "operator", "resolvers", "timeout"} from u's settings (the
 * helper inherits the environment, so MAILDIAG_* settings reach it too).
 * The caller adds the command's fields.  Caller frees with json_decref().
 */
json_t *ucli_notify_request(const ucli *u, const char *command);
/*
 * Runs maildiag-notify with req on its standard input and waits for it;
 * its standard error is ours.  *reply (may be NULL) receives the JSON object
 * it printed (caller frees with json_decref()).  Returns 0 when it exited 0
 * with a reply, else -1 (the helper, or this function, printed why).
 */
int ucli_notify_run(const ucli *u, json_t *req, json_t **reply);
/* Replaces this process by maildiag-notify reading req (for a child that
 * has nothing else to do).  Returns -1 only when that failed. */
int ucli_notify_exec(const ucli *u, json_t *req);
/* The path of maildiag-notify: beside this program (a build tree), else
 * in the package's libexec directory.  Borrowed, static. */
const char *ucli_notify_path(void);
/* The same for any internal helper (maildiag-bounces). */
const char *ucli_helper_path(const char *name);
/* Replaces this process by the helper name, with argv (argv[0] included).
 * Returns -1 only when that failed (after printing why). */
int ucli_helper_exec(const ucli *u, const char *name, char *const *argv);

/* Who runs this: the login name of getuid(), with --operator NAME shown
 * as "NAME (as LOGIN)" when they differ.  Borrowed. */
const char *ucli_operator(ucli *u);
/* A config value from section/key, or NULL. */
const char *ucli_conf(const ucli *u, const char *section, const char *key);
/* Prints "PROG: what: err" (with the peer's words when present) and ends
 * the run as cli_fail does, with the finding id (store.error, config.error
 * ...): after --json, the error is the run's one JSON value. */
void ucli_fail(const ucli *u, const char *id, const char *what, const md_error *err);
/* ucli_fail for the store: store.error. */
void ucli_error(const ucli *u, const char *what, const md_error *err);
void ucli_clear(ucli *u);

#endif
