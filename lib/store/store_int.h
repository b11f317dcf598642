/* lib/store: what store.c, csv.c and schema.c share.  Not installed. */
#ifndef MAILDIAG_STORE_INT_H
#define MAILDIAG_STORE_INT_H

#include "store.h"
#include "db.h"

struct md_store {
    db *own;
    db *product;              /* a product's database, read-only, or NULL */
    char *p_email, *p_username, *p_also, *p_sessions, *p_domain_count;
    md_error log_err;         /* the first failed log write (md_store_log_error) */
};

/* The DDL that takes the schema from version - 1 to version. */
const char *store_migration(db_kind kind, int version);

/* Normalizes an address for the accounts table: lookup key, provider key
 * ("" when none), domain, and, when mailbox is not NULL, the address as it
 * is stored (md_address.mailbox: without blanks or angle brackets around
 * it).  MD_CONFIG with err for a bad address. */
md_status store_address_keys(const char *email, unsigned key_flags, char *key, char *pkey,
                             char *domain, char *mailbox, md_error *err);

/* Inserts one account inside the caller's transaction. */
md_status store_insert_account(md_store *s, const md_store_account *a, unsigned key_flags,
                               int64_t *id, md_error *err);

/* An account whose address store_address_keys has read: email (as
 * stored), key, pkey ("" when none) and dom; a.email is not looked at. */
typedef struct store_row {
    md_store_account a;
    const char *email, *key, *pkey, *dom;
} store_row;
/* store_insert_account for a row read already. */
md_status store_insert_row(md_store *s, const store_row *r, int64_t *id, md_error *err);

/* SQLite only: inserts STORE_INSERT_BATCH rows in one statement inside the
 * caller's transaction.  A row that violates a constraint stops it with
 * MD_PERMFAIL, the rows before it inserted (OR FAIL: no statement journal);
 * *done is then that row's index.  The transaction stays open: the caller
 * rolls it back. */
#define STORE_INSERT_BATCH 32
md_status store_insert_batch(md_store *s, const store_row *rows, size_t *done, md_error *err);
/* Recomputes domain_stats inside the caller's transaction. */
md_status store_refresh_domains(md_store *s, md_error *err);
/* Adds or replaces a suppression inside the caller's transaction. */
md_status store_suppression_put(md_store *s, const md_store_suppression *x, md_error *err);
/* Writes an audit record inside the caller's transaction. */
md_status store_audit_write(md_store *s, const md_store_audit *a, md_error *err);

#endif
