/* lib/store csv: bulk import and export of accounts (RFC 4180 CSV). */
#include "config.h"
#include "store_int.h"
#include "address/address.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CSV_FIELD_MAX 4096
#define CSV_FIELDS_MAX 32

enum col { C_USERNAME, C_EMAIL, C_STATUS, C_AUTH, C_SSO, C_VERIFIED, C_CREATED, C_LOGIN,
           C_PWCHANGED, C_N };

static const char *const col_names[C_N] = {
    "username", "email", "status", "auth", "sso_provider", "email_verified", "created_at",
    "last_login_at", "password_changed_at",
};

/* One record at a time, its fields side by side in text: a file of any
 * size is read in this fixed space, with no allocation per field. */
typedef struct csv_reader {
    FILE *in;
    unsigned long line;        /* physical line the reader is on (1-based) */
    char *fields[CSV_FIELDS_MAX + 1];
    /* whether the field is printable ASCII only (0x20-0x7e), which needs
     * no UTF-8 or control character check */
    unsigned char plain[CSV_FIELDS_MAX + 1];
    size_t nfields;
    char text[(CSV_FIELDS_MAX + 1) * (CSV_FIELD_MAX + 1)];   /* NUL-terminated fields */
} csv_reader;

/* Reads one record.  Returns 1 with fields, 0 at the end, -1 on a syntax
 * error (err says where). */
static int csv_next(csv_reader *r, unsigned long *start_line, md_error *err)
{
    r->nfields = 0;
    /* The reader is the stream's only user: no lock per character. */
    int c = getc_unlocked(r->in);
    if (c == EOF)
        return 0;
    *start_line = r->line;
    char *field = r->text;
    size_t len = 0;
    int quoted = 0, after_quote = 0, field_started = 0, plain = 1;
    for (;; c = getc_unlocked(r->in)) {
        if (quoted) {
            if (c == EOF)
                return md_error_set(err, MD_CONFIG, "store.import",
                                    "line %lu: a quoted field is not closed", *start_line), -1;
            if (c == '"') {
                int n = getc_unlocked(r->in);
                if (n == '"') {
                    c = '"';
                } else {
                    ungetc(n, r->in);
                    quoted = 0;
                    after_quote = 1;
                    continue;
                }
            } else if (c == '\n') {
                r->line++;
            }
        } else if (c == ',' || c == '\n' || c == '\r' || c == EOF) {
            if (c == '\r') {
                int n = getc_unlocked(r->in);
                if (n != '\n')
                    return md_error_set(err, MD_CONFIG, "store.import",
                                        "line %lu: a carriage return outside quotes", r->line), -1;
                c = '\n';
            }
            if (r->nfields == CSV_FIELDS_MAX)
                return md_error_set(err, MD_CONFIG, "store.import",
                                    "line %lu: more than %d fields", r->line, CSV_FIELDS_MAX), -1;
            field[len] = '\0';
            r->plain[r->nfields] = (unsigned char)plain;
            r->fields[r->nfields++] = field;
            field += len + 1;
            len = 0;
            quoted = after_quote = field_started = 0;
            plain = 1;
            if (c == ',')
                continue;
            if (c == '\n')
                r->line++;
            return 1;
        } else if (after_quote) {
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: text after a closing quote", r->line), -1;
        } else if (c == '"') {
            if (field_started)
                return md_error_set(err, MD_CONFIG, "store.import",
                                    "line %lu: a quote inside an unquoted field", r->line), -1;
            quoted = 1;
            field_started = 1;
            continue;
        }
        if (c == '\0')
            return md_error_set(err, MD_CONFIG, "store.import", "line %lu: a NUL byte",
                                r->line), -1;
        if (len >= CSV_FIELD_MAX)
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: a field is longer than %d bytes", r->line,
                                CSV_FIELD_MAX), -1;
        field[len++] = (char)c;
        plain &= c >= 0x20 && c < 0x7f;
        field_started = 1;
    }
}

static int blank_record(const csv_reader *r)
{
    return r->nfields == 1 && r->fields[0][0] == '\0';
}

static md_status header(csv_reader *r, int *map, md_error *err)
{
    for (int i = 0; i < C_N; i++)
        map[i] = -1;
    for (size_t f = 0; f < r->nfields; f++) {
        char *name = r->fields[f];
        if (f == 0 && (unsigned char)name[0] == 0xef && (unsigned char)name[1] == 0xbb &&
            (unsigned char)name[2] == 0xbf)   /* a UTF-8 byte-order mark */
            memmove(name, name + 3, strlen(name + 3) + 1);
        while (*name == ' ')
            name++;
        size_t n = strlen(name);
        while (n && name[n - 1] == ' ')
            name[--n] = '\0';
        int found = -1;
        for (int i = 0; i < C_N; i++)
            if (strcasecmp(name, col_names[i]) == 0)
                found = i;
        if (found < 0) {
            char safe[64];
            md_sanitize(safe, sizeof safe, name, n);
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line 1: unknown column '%s' (known: username, email, status, auth,"
                                " sso_provider, email_verified, created_at, last_login_at,"
                                " password_changed_at)", safe);
        }
        if (map[found] >= 0)
            return md_error_set(err, MD_CONFIG, "store.import", "line 1: the column '%s' appears twice",
                                col_names[found]);
        map[found] = (int)f;
    }
    if (map[C_USERNAME] < 0 || map[C_EMAIL] < 0)
        return md_error_set(err, MD_CONFIG, "store.import",
                            "line 1: the header must name the columns username and email");
    return MD_OK;
}

static md_status row_time(const char *v, const char *col, unsigned long line, int64_t *t,
                          md_error *err)
{
    *t = 0;
    if (v == NULL || *v == '\0')
        return MD_OK;
    if (md_store_time_parse(v, t) != 0) {
        char safe[64];
        md_sanitize(safe, sizeof safe, v, strlen(v));
        return md_error_set(err, MD_CONFIG, "store.import",
                            "line %lu: %s '%s' is not an ISO 8601 time", line, col, safe);
    }
    return MD_OK;
}

static md_status row_account(csv_reader *r, const int *map, size_t ncols, unsigned long line,
                             md_store_account *a, md_error *err)
{
    /* RFC 4180 2.4: every record has the header's number of fields.  A
     * surplus field is a comma too many or a column shifted: importing the
     * row silently would store the wrong values in the right columns. */
    if (r->nfields != ncols)
        return md_error_set(err, MD_CONFIG, "store.import", "line %lu: %zu fields, the header has %zu",
                            line, r->nfields, ncols);
    const char *v[C_N];
    for (int i = 0; i < C_N; i++) {
        v[i] = map[i] >= 0 ? r->fields[map[i]] : NULL;
        /* Every value is text shown to people and written to JSON: UTF-8;
         * the names they read hold no control character either (C1 too). */
        size_t bad;
        const char *why;
        int shown = i == C_USERNAME || i == C_SSO;
        if (v[i] && !r->plain[map[i]] &&
            md_text_check(v[i], strlen(v[i]), shown ? NULL : "\t", &bad, &why) != 0)
            return md_error_set(err, MD_CONFIG, "store.import", "line %lu: %s holds %s at byte %zu",
                                line, col_names[i], why, bad + 1);
    }
    memset(a, 0, sizeof *a);
    if (v[C_USERNAME] == NULL || v[C_USERNAME][0] == '\0')
        return md_error_set(err, MD_CONFIG, "store.import", "line %lu: the username is empty", line);
    if (v[C_EMAIL] == NULL || v[C_EMAIL][0] == '\0')
        return md_error_set(err, MD_CONFIG, "store.import", "line %lu: the email is empty", line);
    a->username = (char *)v[C_USERNAME];
    a->email = (char *)v[C_EMAIL];
    if (v[C_STATUS] && *v[C_STATUS]) {
        int s = md_store_status_parse(v[C_STATUS]);
        if (s < 0)
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: status must be active, deactivated or locked", line);
        a->status = (md_store_status)s;
    }
    if (v[C_AUTH] && *v[C_AUTH]) {
        int au = md_store_auth_parse(v[C_AUTH]);
        if (au < 0)
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: auth must be password or sso", line);
        a->auth = (md_store_auth)au;
    }
    if (v[C_SSO] && *v[C_SSO]) {
        if (a->auth != MD_STORE_SSO)
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: sso_provider is given but auth is not sso", line);
        a->sso_provider = (char *)v[C_SSO];
    }
    if (v[C_VERIFIED] && *v[C_VERIFIED]) {
        if (strcmp(v[C_VERIFIED], "0") != 0 && strcmp(v[C_VERIFIED], "1") != 0)
            return md_error_set(err, MD_CONFIG, "store.import",
                                "line %lu: email_verified must be 0 or 1", line);
        a->email_verified = v[C_VERIFIED][0] == '1';
    }
    md_status st = row_time(v[C_CREATED], "created_at", line, &a->created_at, err);
    if (st == MD_OK)
        st = row_time(v[C_LOGIN], "last_login_at", line, &a->last_login_at, err);
    if (st == MD_OK)
        st = row_time(v[C_PWCHANGED], "password_changed_at", line, &a->password_changed_at, err);
    return st;
}

/* ------------------------------------------------------------------ import */

/*
 * An import into SQLite.  Its rows go in 32 to a statement (batch_insert),
 * each against the unique index on username, so that a duplicate is
 * refused with its line.  The other indexes of accounts only serve lookups:
 * once the import has brought as many rows as the store had (and at least
 * IMPORT_DEFER_MIN, or from its first rows into an empty store, where
 * remaking them sorts only the import's rows), they are dropped, and made again after the last row in the same
 * transaction: one sort each, instead of a B-tree insertion per row and
 * index, which in an index larger than the page cache reads and writes back
 * a page for nearly every row.  Readers meanwhile see the last commit,
 * indexes and all (WAL); an error or a crash rolls the drop back with the
 * rows.  A small import into a large store keeps the indexes: remaking them
 * would cost more than it saves.  PostgreSQL keeps them always: DROP INDEX
 * there locks the table against every reader until the commit.
 *
 * The page cache is made larger for the import (the rows' newest pages and
 * the sorts stay in memory instead of going through the WAL and temporary
 * files) and set back after it.
 *
 * CHECK constraints are not evaluated for the import's statements: every
 * checked value comes from a closed set here (md_store_status_name,
 * md_store_auth_name, 0 or 1), and SQLite evaluates the IN lists of the
 * accounts table's checks by building a temporary B-tree for every row.
 */
#define IMPORT_DEFER_MIN 10000
#define IMPORT_CACHE_KIB 65536

typedef struct import_state {
    md_store *s;
    int sqlite;
    int64_t existing;          /* the accounts before the import (SQLite: the highest id) */
    int deferred;              /* whether the lookup indexes were dropped */
    char **create;             /* their CREATE INDEX statements, to run after the rows */
    size_t ncreate;
    int checks_off;            /* ignore_check_constraints is on */
    long long cache_size;      /* the page cache size to set back (cache_set) */
    int cache_set;
} import_state;

static md_status import_prepare(import_state *x, md_error *err)
{
    db *d = x->s->own;
    if (!x->sqlite)
        return MD_OK;
    db_result r;
    md_status st = db_run(d, "PRAGMA cache_size", NULL, 0, &r, err);
    if (st != MD_OK)
        return st;
    const char *v = r.nrows ? DB_VAL(&r, 0, 0) : NULL;
    if (v) {
        x->cache_size = strtoll(v, NULL, 10);
        x->cache_set = 1;
    }
    db_result_clear(&r);
    if (x->cache_set) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA cache_size = -%d", IMPORT_CACHE_KIB);
        st = db_exec(d, sql, err);
        if (st != MD_OK)
            return st;
    }
    st = db_exec(d, "PRAGMA ignore_check_constraints = ON", err);
    if (st != MD_OK)
        return st;
    x->checks_off = 1;
    st = db_run(d, "SELECT coalesce(max(id), 0) FROM accounts", NULL, 0, &r, err);
    if (st != MD_OK)
        return st;
    x->existing = r.nrows && DB_VAL(&r, 0, 0) ? strtoll(DB_VAL(&r, 0, 0), NULL, 10) : 0;
    db_result_clear(&r);
    return MD_OK;
}

/* Sets back what import_prepare changed; after the commit or rollback. */
static void import_restore(import_state *x)
{
    db *d = x->s->own;
    if (x->checks_off)
        db_exec(d, "PRAGMA ignore_check_constraints = OFF", NULL);
    if (x->cache_set) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA cache_size = %lld", x->cache_size);
        db_exec(d, sql, NULL);
    }
    for (size_t i = 0; i < x->ncreate; i++)
        free(x->create[i]);
    free(x->create);
    x->create = NULL;
    x->ncreate = 0;
}

/* Drops the indexes of accounts that are neither unique nor a constraint's,
 * keeping their CREATE statements. */
static md_status import_defer(import_state *x, md_error *err)
{
    db *d = x->s->own;
    db_result r;
    md_status st = db_run(d, "SELECT m.name, m.sql FROM sqlite_master m"
                             " JOIN pragma_index_list('accounts') l ON l.name = m.name"
                             " WHERE m.type = 'index' AND m.sql IS NOT NULL AND l.\"unique\" = 0"
                             " ORDER BY m.rowid", NULL, 0, &r, err);
    if (st != MD_OK)
        return st;
    x->deferred = 1;
    x->create = md_xcalloc(r.nrows + 1, sizeof *x->create);
    for (size_t i = 0; st == MD_OK && i < r.nrows; i++) {
        const char *name = DB_VAL(&r, i, 0), *sql = DB_VAL(&r, i, 1);
        /* DDL takes no parameters: the name, from the schema, is quoted */
        char *drop = md_xasprintf("DROP INDEX \"%s\"", name);
        if (strchr(name, '"') != NULL) {
            st = md_error_set(err, MD_INTERNAL, "store.import", "an index name with a quote: %s", name);
        } else {
            x->create[x->ncreate++] = md_xstrdup(sql);
            st = db_exec(d, drop, err);
        }
        free(drop);
    }
    db_result_clear(&r);
    return st;
}

/* After the last row: the dropped indexes, then the domain counts. */
static md_status import_finish(import_state *x, md_error *err)
{
    md_status st = MD_OK;
    for (size_t i = 0; st == MD_OK && i < x->ncreate; i++)
        st = db_exec(x->s->own, x->create[i], err);
    if (st == MD_OK)
        st = store_refresh_domains(x->s, err);
    return st;
}

/* err, from a step after the rows, as "after line N: ...". */
static md_status after_rows(md_status st, unsigned long line, md_error *err)
{
    if (st != MD_OK && err) {
        md_error e = *err;
        md_error_set(err, st, "store.import", "after line %lu: %s", line, e.text);
        md_error_set_peer(err, e.peer, strlen(e.peer));
    }
    return st;
}

/* The most text one row keeps in a batch: username and sso_provider, the
 * address as stored, its two keys, its domain. */
#define ROW_TEXT_MAX (2 * (CSV_FIELD_MAX + 1) + 3 * (MD_ADDRESS_MAX + 1) + MD_ADDRESS_DOMAIN_MAX + 1)

/* Rows read and checked, not inserted yet; their text in one fixed buffer. */
typedef struct import_batch {
    size_t n, len;
    unsigned long line[STORE_INSERT_BATCH];
    store_row rows[STORE_INSERT_BATCH];
    char text[STORE_INSERT_BATCH * ROW_TEXT_MAX];
} import_batch;

static const char *batch_put(import_batch *b, const char *v)
{
    if (v == NULL)
        return NULL;
    size_t n = strlen(v) + 1;
    char *at = b->text + b->len;
    memcpy(at, v, n);
    b->len += n;
    return at;
}

/* Inserts the rows of b, in one statement when it is full and the store
 * SQLite, else one by one, and empties it.  A row refused names its line:
 * when the statement stops at a row (a duplicate username), that row is
 * inserted alone for its error.  The import fails then: the rows before it
 * go with the rollback. */
static md_status batch_insert(import_state *x, import_batch *b, unsigned long *rows,
                              md_error *err)
{
    md_status st = MD_OK;
    md_error e2, be;
    unsigned long line = b->n ? b->line[b->n - 1] : 0;
    size_t i = 0;
    if (x->sqlite && b->n == STORE_INSERT_BATCH) {
        size_t done = 0;
        st = store_insert_batch(x->s, b->rows, &done, &be);
        if (st == MD_PERMFAIL) {
            i = done;   /* the row it stopped at, again alone for its words */
        } else if (st != MD_OK) {
            e2 = be;
            goto fail;  /* a full disk, an I/O error: not a row's fault */
        } else {
            i = b->n;
        }
    }
    for (; i < b->n; i++) {
        line = b->line[i];
        md_status rst = store_insert_row(x->s, &b->rows[i], NULL, &e2);
        if (rst != MD_OK || st != MD_OK) {
            if (rst == MD_OK)   /* alone it went in: the statement's error */
                e2 = be;
            else
                st = rst;
            goto fail;
        }
    }
    *rows += b->n;
    b->n = b->len = 0;
    if (x->sqlite && !x->deferred && (*rows >= IMPORT_DEFER_MIN || x->existing == 0) &&
        (int64_t)*rows >= x->existing &&
        (st = import_defer(x, &e2)) != MD_OK)
        goto fail;
    return MD_OK;
fail:
    md_error_set(err, st, "store.import", "line %lu: %s", line, e2.text);
    md_error_set_peer(err, e2.peer, strlen(e2.peer));
    return st;
}

/* Reads the next row into b; MD_OK with *more 0 at the end of the file. */
static md_status batch_read(csv_reader *r, const int *map, size_t ncols, unsigned key_flags,
                            import_batch *b, unsigned long *line, int *more, md_error *err)
{
    int rc;
    while ((rc = csv_next(r, line, err)) > 0 && blank_record(r))
        ;
    *more = rc > 0;
    if (rc < 0)
        return MD_CONFIG;
    if (rc == 0)
        return ferror(r->in) ? md_error_set(err, MD_CONFIG, "store.import", "cannot read the file") : MD_OK;
    store_row *row = &b->rows[b->n];
    char key[MD_ADDRESS_MAX + 1], pkey[MD_ADDRESS_MAX + 1], dom[MD_ADDRESS_DOMAIN_MAX + 1];
    char email[MD_ADDRESS_MAX + 1];
    md_status st = row_account(r, map, ncols, *line, &row->a, err);
    if (st != MD_OK)
        return st;
    md_error e2;
    st = store_address_keys(row->a.email, key_flags, key, pkey, dom, email, &e2);
    if (st != MD_OK) {
        md_error_set(err, st, "store.import", "line %lu: %s", *line, e2.text);
        md_error_set_peer(err, e2.peer, strlen(e2.peer));
        return st;
    }
    row->a.username = (char *)batch_put(b, row->a.username);
    row->a.sso_provider = (char *)batch_put(b, row->a.sso_provider);
    row->a.email = NULL;
    row->email = batch_put(b, email);
    row->key = batch_put(b, key);
    row->pkey = batch_put(b, pkey);
    row->dom = batch_put(b, dom);
    b->line[b->n++] = *line;
    return MD_OK;
}

static md_status import_body(import_state *x, csv_reader *r, unsigned key_flags,
                             unsigned long *rows, unsigned long *line, md_error *err)
{
    int map[C_N];
    int rc = csv_next(r, line, err);
    if (rc <= 0)
        return rc < 0 ? MD_CONFIG
                      : md_error_set(err, MD_CONFIG, "store.import", "the file is empty (no header row)");
    md_status st = header(r, map, err);
    if (st != MD_OK)
        return st;
    size_t ncols = r->nfields;
    import_batch *b = md_xcalloc(1, sizeof *b);
    for (int more = 1; st == MD_OK && more;) {
        md_error rerr;
        md_status rst = batch_read(r, map, ncols, key_flags, b, line, &more, &rerr);
        /* The rows before a wrong one go in first: an error among them
         * comes earlier in the file. */
        if (b->n == STORE_INSERT_BATCH || !more || rst != MD_OK)
            st = batch_insert(x, b, rows, err);
        if (st == MD_OK && rst != MD_OK) {
            st = rst;
            if (err)
                *err = rerr;
        }
    }
    free(b);
    if (st == MD_OK)
        st = after_rows(import_finish(x, err), *line, err);
    return st;
}

md_status md_store_import_csv(md_store *s, FILE *in, unsigned key_flags,
                              const md_store_audit *audit, unsigned long *rows, md_error *err)
{
    unsigned long dummy, line = 1;
    if (rows == NULL)
        rows = &dummy;
    *rows = 0;
    if (s->product)
        return md_error_set(err, MD_CONFIG, "store.product",
                            "accounts are read from the product's database, read-only: import there");
    md_status st = db_begin(s->own, 1, err);
    if (st != MD_OK)
        return st;
    import_state x = { .s = s, .sqlite = db_kind_of(s->own) == DB_SQLITE };
    csv_reader *r = md_xcalloc(1, sizeof *r);
    r->in = in;
    r->line = 1;
    st = import_prepare(&x, err);
    if (st == MD_OK)
        st = import_body(&x, r, key_flags, rows, &line, err);
    free(r);
    if (st == MD_OK && audit) {
        char detail[64];
        snprintf(detail, sizeof detail, "%lu accounts", *rows);
        md_store_audit a = *audit;
        a.detail = detail;
        st = after_rows(store_audit_write(s, &a, err), line, err);
    }
    if (st == MD_OK)
        st = after_rows(db_commit(s->own, err), line, err);
    else
        db_rollback(s->own);
    import_restore(&x);
    if (st != MD_OK)
        *rows = 0;
    return st;
}

static void csv_field(FILE *out, const char *v, int last)
{
    if (v == NULL)
        v = "";
    if (strpbrk(v, ",\"\r\n") != NULL || v[0] == ' ' || (*v && v[strlen(v) - 1] == ' ')) {
        putc('"', out);
        for (const char *p = v; *p; p++) {
            if (*p == '"')
                putc('"', out);
            putc(*p, out);
        }
        putc('"', out);
    } else {
        fputs(v, out);
    }
    fputs(last ? "\r\n" : ",", out);
}

md_status md_store_export_csv(md_store *s, FILE *out, unsigned long *rows, md_error *err)
{
    unsigned long dummy;
    if (rows == NULL)
        rows = &dummy;
    *rows = 0;
    if (s->product)
        return md_error_set(err, MD_CONFIG, "store.product",
                            "accounts are in the product's database: export from there");
    for (int i = 0; i < C_N; i++)
        csv_field(out, col_names[i], i == C_N - 1);
    int64_t after = 0;
    for (;;) {
        /* Pages keyed on id keep memory flat for any number of accounts. */
        db_result r;
        db_param p[] = { db_int(after) };
        md_status st = db_run(s->own, "SELECT id, username, email, status, auth, sso_provider,"
                                      " email_verified, created_at, last_login_at, password_changed_at"
                                      " FROM accounts WHERE id > $1 ORDER BY id LIMIT 5000",
                              p, 1, &r, err);
        if (st != MD_OK)
            return st;
        if (r.nrows == 0) {
            db_result_clear(&r);
            break;
        }
        for (size_t i = 0; i < r.nrows; i++) {
            char t[3][32];
            for (int k = 0; k < 3; k++) {
                const char *v = DB_VAL(&r, i, 7 + (size_t)k);
                md_store_time_format(v ? strtoll(v, NULL, 10) : 0, t[k], sizeof t[k]);
            }
            csv_field(out, DB_VAL(&r, i, 1), 0);
            csv_field(out, DB_VAL(&r, i, 2), 0);
            csv_field(out, DB_VAL(&r, i, 3), 0);
            csv_field(out, DB_VAL(&r, i, 4), 0);
            csv_field(out, DB_VAL(&r, i, 5), 0);
            csv_field(out, DB_VAL(&r, i, 6), 0);
            csv_field(out, t[0], 0);
            csv_field(out, t[1], 0);
            csv_field(out, t[2], 1);
            (*rows)++;
        }
        after = strtoll(DB_VAL(&r, r.nrows - 1, 0), NULL, 10);
        db_result_clear(&r);
    }
    if (ferror(out))
        return md_error_set(err, MD_INTERNAL, "store.export", "cannot write the CSV");
    return MD_OK;
}
