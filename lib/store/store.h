/*
 * lib/store: the account store.  One interface, two engines, chosen by URI:
 *   sqlite:PATH            the embedded default (a file; WAL; busy timeout)
 *   postgresql://...       PostgreSQL through libpq (postgres:// too)
 *
 * maildiag's own schema (created and migrated by md_store_migrate):
 * accounts, sessions, suppressions, the send log, the audit log, rate-limit
 * counters, per-domain account counts (for typo suggestions), and the bounce
 * messages already applied (version 2).
 *
 * For a product that keeps its accounts in its own database, a mapping
 * (md_store_product) gives the SQL to run for each account lookup; that
 * database is opened read-only, and everything else (suppressions, send
 * log, audit, rate limits) stays in maildiag's own store.
 *
 * All SQL is prepared; values are bound, never spliced.  Every write is one
 * transaction, and a change and its audit record commit together.  Times are
 * Unix seconds (UTC); 0 means "never / unknown".
 *
 * Faults.  A write that fails leaves the store as it was: its transaction
 * is rolled back whole (an import of any size, a migration, a change with
 * its audit record).  err->text names the file or server and the cause;
 * err->peer holds SQLite's or the server's own words.
 *  - SQLite file locked by another process's write transaction: writes
 *    wait the busy timeout (10 s; 60 s with MD_STORE_PATIENT), then
 *    MD_TEMPFAIL "... is locked by another process (waited 10 s for it)".
 *    Reads do not wait: in WAL mode they see the last committed state,
 *    never the other transaction's.
 *  - Read-only file, directory without write permission (SQLite creates
 *    the -wal and -shm files beside the store), read-only file system:
 *    MD_CONFIG "cannot write to ...: <why>".  A directory where the WAL
 *    index cannot be created fails every use, reads included.
 *  - A file that is not SQLite: MD_CONFIG "... is not a maildiag store";
 *    a damaged one: MD_INTERNAL "... is damaged"; both when opened, and
 *    nothing is written to them.
 *  - Disk full, disk quota, file size limit (RLIMIT_FSIZE; the process
 *    must ignore SIGXFSZ to see it as an error): MD_TEMPFAIL naming it.
 *  - md_store_send_add and md_store_audit_add remember their first failure
 *    for md_store_log_error.
 *  - PostgreSQL unreachable: md_store_open fails with MD_TEMPFAIL within the
 *    connect_timeout (10 s unless the URI sets one); a server that stops or
 *    restarts under a command: MD_TEMPFAIL "lost the connection", its
 *    transaction rolled back by the server.  Each md_store_open connects
 *    anew: nothing stale survives a restart.
 */
#ifndef MAILDIAG_STORE_H
#define MAILDIAG_STORE_H

#include <stdio.h>
#include <stdint.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_STORE_SCHEMA_VERSION 2

typedef struct md_store md_store;

#define MD_STORE_CREATE   0x1u   /* SQLite: create the file (to initialise the store) */
#define MD_STORE_READONLY 0x2u   /* open read-only */
#define MD_STORE_PATIENT  0x4u   /* SQLite: a write waits up to 60 s, not 10, for another
                                  * process's lock: for a detached process nobody waits for */

/*
 * Opens the store at uri.  Without MD_STORE_CREATE, the schema must be at
 * the current version.  Caller frees with md_store_free().  MD_CONFIG for
 * a bad URI; MD_CONFIG with stage "store.init" when the store must be
 * initialised first (an SQLite file that does not exist, a database without
 * maildiag's schema or with an older one: md_store_migrate makes or
 * updates it), stage "store.schema" when its schema is newer than this
 * library's; MD_TEMPFAIL when PostgreSQL cannot be reached.
 */
MD_API md_status md_store_open(const char *uri, unsigned flags, md_store **out, md_error *err);
MD_API void md_store_free(md_store *s);

/* "sqlite" or "postgresql". */
MD_API const char *md_store_engine(const md_store *s);

/* Creates or migrates the schema to MD_STORE_SCHEMA_VERSION in one
 * transaction.  *from receives the version found (0 = empty). */
MD_API md_status md_store_migrate(md_store *s, int *from, md_error *err);
/* The same, with the audit record (may be NULL; md_store_audit is below)
 * in that transaction: a store that cannot take the record is not migrated
 * either. */
struct md_store_audit;
MD_API md_status md_store_migrate_audited(md_store *s, const struct md_store_audit *audit, int *from,
                                          md_error *err);

/*
 * Whether a write would succeed now: MD_OK, or the error the write would
 * get (read-only, locked beyond the busy timeout, server gone).  Writes
 * nothing.  For a caller about to do what cannot be undone (send an email,
 * hand out data) that must then record it: a check, not a reservation.
 */
MD_API md_status md_store_writable(md_store *s, md_error *err);

/*
 * MD_OK, or the status of the first md_store_send_add or md_store_audit_add
 * on s that failed, with err filled as it was.  For callers whose log
 * records are written on their behalf (lib/account logs every send and
 * returns the send's own status): a lost record must not go unnoticed.
 */
MD_API md_status md_store_log_error(const md_store *s, md_error *err);

/* ---------------------------------------------------------------- accounts */

typedef enum md_store_status {
    MD_STORE_ACTIVE = 0, MD_STORE_DEACTIVATED, MD_STORE_LOCKED
} md_store_status;

typedef enum md_store_auth { MD_STORE_PASSWORD = 0, MD_STORE_SSO } md_store_auth;

/* "active" / "deactivated" / "locked", "password" / "sso". */
MD_API const char *md_store_status_name(md_store_status st);
MD_API const char *md_store_auth_name(md_store_auth a);
/* Parse the names above; return -1 when unknown. */
MD_API int md_store_status_parse(const char *s);
MD_API int md_store_auth_parse(const char *s);

typedef struct md_store_account {
    int64_t id;
    char *username;
    char *email;               /* as the account holds it */
    char *sso_provider;        /* NULL unless auth is sso (may be NULL then too) */
    char *pending_email;       /* an email change not yet confirmed, or NULL */
    md_store_status status;
    md_store_auth auth;
    int email_verified;
    int64_t created_at, last_login_at, password_changed_at;
} md_store_account;

typedef struct md_store_account_list {
    md_store_account *v;
    size_t n;
} md_store_account_list;

MD_API void md_store_account_list_clear(md_store_account_list *l);

/* The accounts whose normalized email is key (md_address_key), by id. */
MD_API md_status md_store_find_by_email(md_store *s, const char *key, md_store_account_list *out,
                                        md_error *err);
/* Accounts whose provider key (md_address_provider_key) is pkey but whose
 * normalized email is not key: the "also matches" hints. */
MD_API md_status md_store_find_also(md_store *s, const char *pkey, const char *key,
                                    md_store_account_list *out, md_error *err);
/* The account named username (0 or 1 in the list). */
MD_API md_status md_store_find_by_username(md_store *s, const char *username,
                                           md_store_account_list *out, md_error *err);

/* The operating user and action written to the audit log with a change. */
typedef struct md_store_audit {
    const char *operator_name;   /* who (the caller's user name, or the name it was given) */
    const char *action;          /* "lookup", "sessions.revoke", "import" ... */
    const char *target;          /* the address, username or file */
    const char *detail;          /* may be NULL */
} md_store_audit;

/*
 * Adds one account (email is parsed and normalized here).  Fails with
 * MD_PERMFAIL when the username exists, MD_CONFIG for a bad address.
 * Writes *id if not NULL.  One transaction, with the audit record.
 */
MD_API md_status md_store_account_add(md_store *s, const md_store_account *a, unsigned key_flags,
                                      const md_store_audit *audit, int64_t *id, md_error *err);

/* --------------------------------------------------------------- sessions */

typedef struct md_store_session {
    int64_t id, account_id;
    int64_t created_at, last_seen_at, expires_at, revoked_at;
} md_store_session;

typedef struct md_store_session_list {
    md_store_session *v;
    size_t n;
} md_store_session_list;

/* Sessions of one account, newest first; with active_only, only those
 * neither revoked nor expired at now.  out->v: caller frees with free(). */
MD_API md_status md_store_sessions(md_store *s, int64_t account_id, int active_only, int64_t now,
                                   md_store_session_list *out, md_error *err);
MD_API md_status md_store_session_add(md_store *s, const md_store_session *ses, int64_t *id,
                                      md_error *err);
/* Revokes every active session of the given accounts at now; *revoked
 * receives the count.  One transaction with the audit record. */
MD_API md_status md_store_sessions_revoke(md_store *s, const int64_t *account_ids, size_t n,
                                          int64_t now, const md_store_audit *audit,
                                          unsigned long *revoked, md_error *err);

/* ------------------------------------------------------------ suppressions */

typedef struct md_store_suppression {
    char *address;     /* normalized */
    char *reason;      /* "hard-bounce", "complaint", "manual" */
    int64_t since;
    char *text;        /* the bounce text, or NULL */
} md_store_suppression;

typedef struct md_store_suppression_list {
    md_store_suppression *v;
    size_t n;
} md_store_suppression_list;

MD_API void md_store_suppression_clear(md_store_suppression *x);
MD_API void md_store_suppression_list_clear(md_store_suppression_list *l);
/* Whether reason is one of the three names. */
MD_API int md_store_suppression_reason_valid(const char *reason);

/* The suppression of key, or MD_NOTFOUND.  Caller clears *out. */
MD_API md_status md_store_suppression_get(md_store *s, const char *key, md_store_suppression *out,
                                          md_error *err);
MD_API md_status md_store_suppressions(md_store *s, md_store_suppression_list *out, md_error *err);
/* Adds or replaces a suppression (one transaction with the audit record). */
MD_API md_status md_store_suppression_add(md_store *s, const md_store_suppression *x,
                                          const md_store_audit *audit, md_error *err);
/* Removes it; MD_NOTFOUND when there was none. */
MD_API md_status md_store_suppression_remove(md_store *s, const char *key,
                                             const md_store_audit *audit, md_error *err);

/* ---------------------------------------------------------------- send log */

typedef struct md_store_send {
    int64_t at;
    char *kind;         /* "reminder", "verify", "reset", "no-account", "explain" ... */
    char *to;           /* normalized address */
    char *message_id;   /* may be NULL */
    char *outcome;      /* "accepted", "deferred", "rejected", "failed", "suppressed" */
    char *reply;        /* the server's reply, or NULL */
} md_store_send;

typedef struct md_store_send_list {
    md_store_send *v;
    size_t n;
} md_store_send_list;

MD_API void md_store_send_list_clear(md_store_send_list *l);
MD_API md_status md_store_send_add(md_store *s, const md_store_send *x, md_error *err);
/* The last limit sends to key, newest first. */
MD_API md_status md_store_send_recent(md_store *s, const char *key, unsigned limit,
                                      md_store_send_list *out, md_error *err);

/* --------------------------------------------------------------- audit log */

typedef struct md_store_audit_entry {
    int64_t at;
    char *operator_name, *action, *target, *detail;
} md_store_audit_entry;

typedef struct md_store_audit_list {
    md_store_audit_entry *v;
    size_t n;
} md_store_audit_list;

MD_API void md_store_audit_list_clear(md_store_audit_list *l);
/* Writes one audit record on its own (for reads such as lookups). */
MD_API md_status md_store_audit_add(md_store *s, const md_store_audit *a, md_error *err);
/* The last limit records, newest first. */
MD_API md_status md_store_audit_recent(md_store *s, unsigned limit, md_store_audit_list *out,
                                       md_error *err);

/* ------------------------------------------------------------- rate limits */

/*
 * Counts one event for key in the fixed window of window seconds holding
 * now, atomically (SQLite BEGIN IMMEDIATE; PostgreSQL INSERT ... ON
 * CONFLICT DO UPDATE), and writes the window's count including this event
 * to *count.  Counters of windows that ended a day ago are dropped.
 */
MD_API md_status md_store_rate_hit(md_store *s, const char *key, unsigned window, int64_t now,
                                   unsigned long *count, md_error *err);

/* --------------------------------------------------------- domain counts */

typedef struct md_store_domain_list {
    char **domain;
    unsigned long *accounts;
    size_t n;
} md_store_domain_list;

MD_API void md_store_domain_list_clear(md_store_domain_list *l);
/* Accounts whose address is at domain. */
MD_API md_status md_store_domain_accounts(md_store *s, const char *domain, unsigned long *n,
                                          md_error *err);
/* Domains with at least min accounts, most used first: the 1000 most used. */
MD_API md_status md_store_popular_domains(md_store *s, unsigned long min, md_store_domain_list *out,
                                          md_error *err);

/* ------------------------------------------------------- import / export */

/*
 * Imports accounts from CSV (RFC 4180: quoted fields, doubled quotes,
 * CRLF or LF).  The header row names the columns, in any order:
 *   username,email,status,auth,sso_provider,email_verified,created_at,
 *   last_login_at,password_changed_at
 * (only username and email are required; times ISO 8601 or Unix seconds).
 * The whole import is one transaction: on any error nothing is imported and
 * err says "LINE N: ..." (stage "store.import").  *rows receives the count.
 */
MD_API md_status md_store_import_csv(md_store *s, FILE *in, unsigned key_flags,
                                     const md_store_audit *audit, unsigned long *rows, md_error *err);
/* Writes every account as CSV with the header above, by id. */
MD_API md_status md_store_export_csv(md_store *s, FILE *out, unsigned long *rows, md_error *err);

/* Formats t as ISO 8601 UTC ("2026-11-26T23:43:37Z", the year in four
 * digits); "" for 0. */
MD_API void md_store_time_format(int64_t t, char *buf, size_t size);
/* Parses ISO 8601 ("2026-11-26", "2026-11-26T23:43:37Z", with +hh:mm
 * offsets) or Unix seconds, from 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z (what md_store_time_format can write); returns 0
 * and sets *t, or -1. */
MD_API int md_store_time_parse(const char *s, int64_t *t);

/* --------------------------------------------------------- applied bounces */

/* Whether the bounce message known by key (its Message-ID, or "sha256:HEX"
 * of a message without one) has been applied. */
MD_API md_status md_store_bounce_applied(md_store *s, const char *key, int *applied, md_error *err);

/*
 * Applies what one bounce message asks for: the suppressions x[0..n), each
 * with an audit record (action "bounce.suppress", by operator_name), and a
 * record of the message under key (from source, e.g. the mailbox URL), all
 * in one transaction.  An address already suppressed keeps its suppression
 * and is not counted.  *changed receives the suppressions written.  When
 * key was applied before, nothing is written and *already is 1, so running
 * over the same mailbox twice changes nothing.
 */
MD_API md_status md_store_bounce_apply(md_store *s, const char *key, const char *source,
                                       const md_store_suppression *x, size_t n,
                                       const char *operator_name, unsigned long *changed, int *already,
                                       md_error *err);

/*
 * For a run whose writes can be redone (bounces: the mailbox is read again
 * and applied bounces are skipped), relaxed = 1 lets SQLite commits skip
 * their fsync (synchronous=NORMAL: each transaction stays atomic and the
 * file consistent, but the last ones may be lost in a power cut).
 * relaxed = 0 restores synchronous=FULL and makes every commit so far
 * durable with one checkpoint; call it before reporting success.  A no-op
 * on PostgreSQL, whose commits stay synchronous.
 */
MD_API md_status md_store_sync_relaxed(md_store *s, int relaxed, md_error *err);

/* -------------------------------------------- a product's own database */

/*
 * The SQL to run against a product's database, each with $1 bound:
 *   by_email     $1 = the normalized address   (required)
 *   by_username  $1 = the username             (required)
 *   also         $1 = the provider key          (optional)
 *   sessions     $1 = the account id            (optional)
 *   domain_count $1 = a domain; one row, one number (optional)
 * Account queries name their columns: id, username, email, status, auth,
 * sso_provider, email_verified, pending_email, created_at, last_login_at,
 * password_changed_at (only username and email are required; status and
 * auth take the names above; times Unix seconds or ISO 8601).  Sessions:
 * id, created_at, last_seen_at, expires_at, revoked_at.
 */
typedef struct md_store_product {
    const char *uri;
    const char *by_email, *by_username, *also, *sessions, *domain_count;
} md_store_product;

/* Reads accounts from the product's database (opened read-only) instead
 * of the own store from now on.  Writes to accounts and sessions then fail
 * with MD_CONFIG. */
MD_API md_status md_store_use_product(md_store *s, const md_store_product *p, md_error *err);
/* Whether accounts come from a product's database. */
MD_API int md_store_has_product(const md_store *s);

#ifdef __cplusplus
}
#endif
#endif
