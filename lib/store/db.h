/*
 * lib/store db: the private layer under lib/store that hides which database
 * engine runs the SQL.  Not installed.
 *
 * SQL is written once with PostgreSQL-style parameters $1..$n, which SQLite
 * also accepts (as the named parameters "$1"...; docs/LIBRARIES.md, "SQLite
 * and libpq").  Every statement is
 * prepared once per connection and cached; values travel only as bound
 * parameters, never spliced into SQL text.
 */
#ifndef MAILDIAG_STORE_DB_H
#define MAILDIAG_STORE_DB_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

typedef struct db db;

typedef enum db_kind { DB_SQLITE, DB_POSTGRESQL } db_kind;

typedef enum db_type { DB_NULL = 0, DB_TEXT, DB_INT } db_type;

typedef struct db_param {
    db_type type;
    const char *s;
    int64_t i;
} db_param;

static inline db_param db_text(const char *s)
{
    db_param p = { s ? DB_TEXT : DB_NULL, s, 0 };
    return p;
}
static inline db_param db_int(int64_t i)
{
    db_param p = { DB_INT, NULL, i };
    return p;
}
/* An integer where 0 means "none": stored as NULL. */
static inline db_param db_int0(int64_t i)
{
    db_param p = { i ? DB_INT : DB_NULL, NULL, i };
    return p;
}

/* Rows as text (NULL for SQL NULL), column names, rows changed. */
typedef struct db_result {
    size_t nrows, ncols;
    char **names;
    char **vals;          /* nrows * ncols */
    int64_t changes;
} db_result;

#define DB_VAL(r, row, col) ((r)->vals[(row) * (r)->ncols + (col)])

#define DB_READONLY 0x1u  /* open read-only (a product's database) */
#define DB_CREATE   0x2u  /* SQLite: create the file if missing */
#define DB_PATIENT  0x4u  /* SQLite: wait 60 s, not 10, for another writer's lock */

/* Opens "sqlite:PATH" or "postgresql://..." / "postgres://...".  Caller
 * frees with db_close(). */
md_status db_open(const char *uri, unsigned flags, db **out, md_error *err);
void db_close(db *d);
db_kind db_kind_of(const db *d);
/* SQLite: the rows the last INSERT, UPDATE or DELETE changed, also one that
 * failed under OR FAIL (the rows before the failing one stay); -1 for
 * PostgreSQL. */
int64_t db_changes(const db *d);

/* Runs SQL without parameters (DDL, several statements). */
md_status db_exec(db *d, const char *sql, md_error *err);

/* Runs one statement with parameters; res (may be NULL) receives the rows.
 * The prepared statement is cached under sql, which is kept, not copied:
 * sql must stay valid while d is open (a literal, or a string d outlives).
 * Returns MD_OK; MD_TEMPFAIL when the database is busy or unreachable;
 * MD_PERMFAIL on a constraint violation; MD_CONFIG on an SQL error (a bad
 * mapping in the config); MD_INTERNAL otherwise. */
md_status db_run(db *d, const char *sql, const db_param *p, size_t np, db_result *res,
                 md_error *err);
void db_result_clear(db_result *r);
/* Index of the column named name, or -1. */
int db_col(const db_result *r, const char *name);

/* Transactions.  write: the transaction will write (SQLite BEGIN IMMEDIATE,
 * so concurrent writers queue on the lock instead of failing to upgrade). */
md_status db_begin(db *d, int write, md_error *err);
md_status db_commit(db *d, md_error *err);
void db_rollback(db *d);

/* Whether a write would succeed now (see md_store_writable): takes the
 * write lock (SQLite, waiting the busy timeout) or begins a read-write
 * transaction (PostgreSQL), and rolls back. */
md_status db_writable(db *d, md_error *err);

#endif
