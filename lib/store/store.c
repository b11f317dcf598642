/* lib/store: accounts, sessions, suppressions, send and audit logs, rate
 * limits, over lib/store/db.c. */
#include "config.h"
#include "store_int.h"
#include "address/address.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ small bits */

static const char *const status_names[] = { "active", "deactivated", "locked" };
static const char *const auth_names[] = { "password", "sso" };

const char *md_store_status_name(md_store_status st)
{
    return (unsigned)st < 3 ? status_names[st] : "active";
}

const char *md_store_auth_name(md_store_auth a)
{
    return (unsigned)a < 2 ? auth_names[a] : "password";
}

int md_store_status_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s && strcasecmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

int md_store_auth_parse(const char *s)
{
    for (int i = 0; i < 2; i++)
        if (s && strcasecmp(s, auth_names[i]) == 0)
            return i;
    return -1;
}

int md_store_suppression_reason_valid(const char *r)
{
    return r && (strcmp(r, "hard-bounce") == 0 || strcmp(r, "complaint") == 0 ||
                 strcmp(r, "manual") == 0);
}

/* What ISO 8601's four-digit years can write: 0000-01-01T00:00:00Z to
 * 9999-12-31T23:59:59Z.  md_store_time_parse takes nothing outside, so an
 * export (md_store_time_format) always imports again. */
#define TIME_MIN (-62167219200LL)
#define TIME_MAX 253402300799LL

void md_store_time_format(int64_t t, char *buf, size_t size)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        if (size)
            buf[0] = '\0';
        return;
    }
    /* %Y would write the year 999 as "999": four digits, always */
    snprintf(buf, size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H.
 * Hinnant's days_from_civil); d may pass the month's end. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int md_store_time_parse(const char *s, int64_t *t)
{
    if (s == NULL || *s == '\0')
        return -1;
    size_t n = strlen(s);
    if (strspn(s, "0123456789") == n) {
        if (n > 12 || strtoll(s, NULL, 10) > TIME_MAX)
            return -1;
        *t = strtoll(s, NULL, 10);
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    long off = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi))
            return -1;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &se))
                return -1;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om = 0, sign = *p == '-' ? -1 : 1;
            if (digits(p + 1, 2, &oh))
                return -1;
            p += 3;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p)) {
                if (digits(p, 2, &om))
                    return -1;
                p += 2;
            }
            if (oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 3600L + om * 60L);
        }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    /* What timegm gives (a day past the month's end counts on into the
     * next, as timegm normalizes it), by arithmetic: glibc's timegm
     * searches for the time by repeated conversions, and an import runs
     * this for up to three columns of every row. */
    int64_t v = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    if (v - off < TIME_MIN || v - off > TIME_MAX)
        return -1;
    *t = v - off;
    return 0;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t val_int(const char *v)
{
    return v ? strtoll(v, NULL, 10) : 0;
}

static char *dup_or_null(const char *v)
{
    return v ? md_xstrdup(v) : NULL;
}

/* --------------------------------------------------------- open / schema */

static md_status schema_version(db *d, int *version, md_error *err)
{
    db_result r;
    *version = 0;
    const char *probe = db_kind_of(d) == DB_SQLITE
        ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        : "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_version'";
    md_status st = db_run(d, probe, NULL, 0, &r, err);
    if (st != MD_OK)
        return st;
    int exists = r.nrows == 1 && val_int(DB_VAL(&r, 0, 0)) > 0;
    db_result_clear(&r);
    if (!exists)
        return MD_OK;
    st = db_run(d, "SELECT max(version) FROM schema_version", NULL, 0, &r, err);
    if (st != MD_OK)
        return st;
    if (r.nrows == 1)
        *version = (int)val_int(DB_VAL(&r, 0, 0));
    db_result_clear(&r);
    return MD_OK;
}

md_status md_store_open(const char *uri, unsigned flags, md_store **out, md_error *err)
{
    *out = NULL;
    md_store *s = md_xcalloc(1, sizeof *s);
    unsigned dflags = ((flags & MD_STORE_CREATE) ? DB_CREATE : 0) |
                      ((flags & MD_STORE_READONLY) ? DB_READONLY : 0) |
                      ((flags & MD_STORE_PATIENT) ? DB_PATIENT : 0);
    md_status st = db_open(uri, dflags, &s->own, err);
    if (st == MD_OK && !(flags & MD_STORE_CREATE)) {
        int v;
        st = schema_version(s->own, &v, err);
        if (st == MD_OK && v != MD_STORE_SCHEMA_VERSION)   /* none or older: store.init */
            st = md_error_set(err, MD_CONFIG, v < MD_STORE_SCHEMA_VERSION ? "store.init" : "store.schema",
                              v == 0 ? "the store has no maildiag schema yet"
                              : v < MD_STORE_SCHEMA_VERSION
                              ? "the store's schema is version %d, older than %d"
                              : "the store's schema is version %d, newer than this maildiag (%d)",
                              v, MD_STORE_SCHEMA_VERSION);
    }
    if (st != MD_OK) {
        md_store_free(s);
        return st;
    }
    *out = s;
    return MD_OK;
}

void md_store_free(md_store *s)
{
    if (s == NULL)
        return;
    db_close(s->own);
    db_close(s->product);
    free(s->p_email);
    free(s->p_username);
    free(s->p_also);
    free(s->p_sessions);
    free(s->p_domain_count);
    free(s);
}

const char *md_store_engine(const md_store *s)
{
    return db_kind_of(s->own) == DB_SQLITE ? "sqlite" : "postgresql";
}

md_status md_store_migrate(md_store *s, int *from, md_error *err)
{
    return md_store_migrate_audited(s, NULL, from, err);
}

md_status md_store_migrate_audited(md_store *s, const md_store_audit *audit, int *from,
                                   md_error *err)
{
    int v = 0;
    if (from)
        *from = 0;
    md_status st = db_begin(s->own, 1, err);
    if (st != MD_OK)
        return st;
    st = db_exec(s->own, "CREATE TABLE IF NOT EXISTS schema_version ("
                         " version INTEGER NOT NULL, applied_at BIGINT NOT NULL)", err);
    if (st == MD_OK)
        st = schema_version(s->own, &v, err);
    if (from)
        *from = v;
    if (st == MD_OK && v > MD_STORE_SCHEMA_VERSION)
        st = md_error_set(err, MD_CONFIG, "store.schema",
                          "the store's schema is version %d, newer than this maildiag (%d)",
                          v, MD_STORE_SCHEMA_VERSION);
    for (int next = v + 1; st == MD_OK && next <= MD_STORE_SCHEMA_VERSION; next++) {
        st = db_exec(s->own, store_migration(db_kind_of(s->own), next), err);
        if (st == MD_OK) {
            db_param p[] = { db_int(next), db_int(now_s()) };
            st = db_run(s->own, "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                        p, 2, NULL, err);
        }
    }
    if (st == MD_OK)
        st = store_audit_write(s, audit, err);
    if (st != MD_OK) {
        db_rollback(s->own);
        return st;
    }
    return db_commit(s->own, err);
}

md_status md_store_writable(md_store *s, md_error *err)
{
    return db_writable(s->own, err);
}

md_status md_store_log_error(const md_store *s, md_error *err)
{
    if (s->log_err.status != MD_OK && err)
        *err = s->log_err;
    return s->log_err.status;
}

/* Keeps the first failure of a log write for md_store_log_error. */
static md_status log_failed(md_store *s, md_status st, const md_error *e)
{
    if (st != MD_OK && s->log_err.status == MD_OK) {
        s->log_err = *e;
        s->log_err.status = st;
    }
    return st;
}

/* --------------------------------------------------------------- accounts */

void md_store_account_list_clear(md_store_account_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].username);
        free(l->v[i].email);
        free(l->v[i].sso_provider);
        free(l->v[i].pending_email);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Reads a time column: Unix seconds or ISO 8601 (a product's database). */
static int64_t val_time(const char *v)
{
    int64_t t = 0;
    if (v == NULL || md_store_time_parse(v, &t) != 0)
        return 0;
    return t;
}

static int val_bool(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "t") == 0 || strcasecmp(v, "true") == 0 ||
                 strcasecmp(v, "yes") == 0);
}

/* Accounts from rows, by column name, so a product's mapping can return
 * its columns in any order. */
static md_status rows_to_accounts(db_result *r, md_store_account_list *out, md_error *err)
{
    int c_id = db_col(r, "id"), c_user = db_col(r, "username"), c_email = db_col(r, "email"),
        c_status = db_col(r, "status"), c_auth = db_col(r, "auth"),
        c_sso = db_col(r, "sso_provider"), c_ver = db_col(r, "email_verified"),
        c_pend = db_col(r, "pending_email"), c_cr = db_col(r, "created_at"),
        c_ll = db_col(r, "last_login_at"), c_pw = db_col(r, "password_changed_at");
    if (c_user < 0 || c_email < 0)
        return md_error_set(err, MD_CONFIG, "store.mapping",
                            "the account query returns no column named 'username' or 'email'");
    out->v = md_xcalloc(r->nrows + 1, sizeof *out->v);
    out->n = 0;
#define COL(c) ((c) >= 0 ? DB_VAL(r, i, (size_t)(c)) : NULL)
    for (size_t i = 0; i < r->nrows; i++) {
        md_store_account *a = &out->v[out->n++];
        a->id = val_int(COL(c_id));
        a->username = md_xstrdup(COL(c_user) ? COL(c_user) : "");
        a->email = md_xstrdup(COL(c_email) ? COL(c_email) : "");
        int stv = md_store_status_parse(COL(c_status));
        a->status = stv < 0 ? MD_STORE_ACTIVE : (md_store_status)stv;
        int au = md_store_auth_parse(COL(c_auth));
        a->auth = au < 0 ? MD_STORE_PASSWORD : (md_store_auth)au;
        a->sso_provider = dup_or_null(COL(c_sso));
        a->email_verified = c_ver < 0 ? 1 : val_bool(COL(c_ver));
        a->pending_email = dup_or_null(COL(c_pend));
        a->created_at = val_time(COL(c_cr));
        a->last_login_at = val_time(COL(c_ll));
        a->password_changed_at = val_time(COL(c_pw));
    }
#undef COL
    return MD_OK;
}

#define ACCOUNT_COLS "id, username, email, status, auth, sso_provider, email_verified, " \
                     "pending_email, created_at, last_login_at, password_changed_at"

static md_status find_accounts(md_store *s, const char *own_sql, const char *product_sql,
                               const db_param *p, size_t np, md_store_account_list *out,
                               md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    db *d = s->own;
    const char *sql = own_sql;
    if (s->product) {
        d = s->product;
        sql = product_sql;
        if (sql == NULL)
            return MD_OK;   /* optional query not mapped: nothing found */
    }
    md_status st = db_run(d, sql, p, np, &r, err);
    if (st != MD_OK)
        return st;
    st = rows_to_accounts(&r, out, err);
    db_result_clear(&r);
    return st;
}

md_status md_store_find_by_email(md_store *s, const char *key, md_store_account_list *out,
                                 md_error *err)
{
    db_param p[] = { db_text(key) };
    return find_accounts(s, "SELECT " ACCOUNT_COLS " FROM accounts WHERE email_normalized = $1 ORDER BY id",
                         s->p_email, p, 1, out, err);
}

md_status md_store_find_also(md_store *s, const char *pkey, const char *key,
                             md_store_account_list *out, md_error *err)
{
    db_param p[] = { db_text(pkey), db_text(key) };
    if (s->product) {
        /* The mapping sees only $1; drop the exact matches here. */
        md_status st = find_accounts(s, NULL, s->p_also, p, 1, out, err);
        if (st != MD_OK)
            return st;
        size_t o = 0;
        for (size_t i = 0; i < out->n; i++) {
            char k[MD_ADDRESS_MAX + 1], pk[MD_ADDRESS_MAX + 1], dom[MD_ADDRESS_DOMAIN_MAX + 1];
            int same = store_address_keys(out->v[i].email, 0, k, pk, dom, NULL, NULL) == MD_OK &&
                       strcmp(k, key) == 0;
            if (same) {
                free(out->v[i].username);
                free(out->v[i].email);
                free(out->v[i].sso_provider);
                free(out->v[i].pending_email);
            } else {
                out->v[o++] = out->v[i];
            }
        }
        out->n = o;
        return MD_OK;
    }
    return find_accounts(s, "SELECT " ACCOUNT_COLS " FROM accounts WHERE email_canonical = $1"
                            " AND email_normalized <> $2 ORDER BY id LIMIT 20",
                         NULL, p, 2, out, err);
}

md_status md_store_find_by_username(md_store *s, const char *username,
                                    md_store_account_list *out, md_error *err)
{
    db_param p[] = { db_text(username) };
    return find_accounts(s, "SELECT " ACCOUNT_COLS " FROM accounts WHERE username = $1",
                         s->p_username, p, 1, out, err);
}

md_status store_address_keys(const char *email, unsigned key_flags, char *key, char *pkey,
                             char *domain, char *mailbox, md_error *err)
{
    md_address a;
    md_status st = md_address_parse(email, &a, err);
    if (st != MD_OK)
        return st;
    if (md_address_key(&a, key_flags, key, MD_ADDRESS_MAX + 1) != MD_OK)
        return md_error_set(err, MD_CONFIG, "input.address", "the address is too long");
    md_address_provider_key(&a, pkey, MD_ADDRESS_MAX + 1);
    strcpy(domain, a.domain);
    if (mailbox)
        strcpy(mailbox, a.mailbox);
    return MD_OK;
}

#define INSERT_COLS \
    " INTO accounts (username, email, email_normalized, email_canonical, email_domain," \
    " email_verified, status, auth, sso_provider, pending_email, created_at, last_login_at," \
    " password_changed_at) VALUES "
#define INSERT_NCOLS 13

/* The 13 values of one row, in INSERT_COLS's order. */
static void row_params(const store_row *r, db_param *p)
{
    const md_store_account *a = &r->a;
    p[0] = db_text(a->username);
    p[1] = db_text(r->email);
    p[2] = db_text(r->key);
    p[3] = db_text(r->pkey[0] ? r->pkey : NULL);
    p[4] = db_text(r->dom);
    p[5] = db_int(a->email_verified ? 1 : 0);
    p[6] = db_text(md_store_status_name(a->status));
    p[7] = db_text(md_store_auth_name(a->auth));
    p[8] = db_text(a->sso_provider);
    p[9] = db_text(a->pending_email);
    p[10] = db_int(a->created_at ? a->created_at : now_s());
    p[11] = db_int0(a->last_login_at);
    p[12] = db_int0(a->password_changed_at);
}

md_status store_insert_account(md_store *s, const md_store_account *a, unsigned key_flags,
                               int64_t *id, md_error *err)
{
    char key[MD_ADDRESS_MAX + 1], pkey[MD_ADDRESS_MAX + 1], dom[MD_ADDRESS_DOMAIN_MAX + 1];
    char email[MD_ADDRESS_MAX + 1];
    md_status st = store_address_keys(a->email, key_flags, key, pkey, dom, email, err);
    if (st != MD_OK)
        return st;
    store_row r = { .a = *a, .email = email, .key = key, .pkey = pkey, .dom = dom };
    return store_insert_row(s, &r, id, err);
}

md_status store_insert_row(md_store *s, const store_row *r, int64_t *id, md_error *err)
{
    db_param p[INSERT_NCOLS];
    row_params(r, p);
    static const char *const sql =
        "INSERT" INSERT_COLS "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
    static const char *const sql_id =
        "INSERT" INSERT_COLS "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id";
    md_status st;
    if (id == NULL) {
        st = db_run(s->own, sql, p, INSERT_NCOLS, NULL, err);
    } else {
        db_result res;
        st = db_run(s->own, sql_id, p, INSERT_NCOLS, &res, err);
        if (st == MD_OK) {
            *id = res.nrows ? val_int(DB_VAL(&res, 0, 0)) : 0;
            db_result_clear(&res);
        }
    }
    if (st == MD_PERMFAIL)
        md_error_set(err, MD_PERMFAIL, "store.account", "the username '%s' exists already",
                     r->a.username);
    return st;
}

/* One INSERT of STORE_INSERT_BATCH rows, with positional parameters (a
 * statement only SQLite runs). */
#define ROW1 "(?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define ROW4 ROW1 "," ROW1 "," ROW1 "," ROW1
#define ROW16 ROW4 "," ROW4 "," ROW4 "," ROW4
_Static_assert(STORE_INSERT_BATCH == 32, "the batch INSERT has 32 rows");

md_status store_insert_batch(md_store *s, const store_row *rows, size_t *done, md_error *err)
{
    static const char *const sql = "INSERT OR FAIL" INSERT_COLS ROW16 "," ROW16;
    db_param p[STORE_INSERT_BATCH * INSERT_NCOLS];
    if (db_kind_of(s->own) != DB_SQLITE)
        return md_error_set(err, MD_INTERNAL, "store.account", "a batch insert is for SQLite only");
    for (size_t i = 0; i < STORE_INSERT_BATCH; i++)
        row_params(&rows[i], p + i * INSERT_NCOLS);
    md_status st = db_run(s->own, sql, p, STORE_INSERT_BATCH * INSERT_NCOLS, NULL, err);
    int64_t n = db_changes(s->own);
    *done = st == MD_OK ? STORE_INSERT_BATCH : n >= 0 && n < STORE_INSERT_BATCH ? (size_t)n : 0;
    return st;
}

md_status store_refresh_domains(md_store *s, md_error *err)
{
    md_status st = db_run(s->own, "DELETE FROM domain_stats", NULL, 0, NULL, err);
    if (st == MD_OK)
        st = db_run(s->own, "INSERT INTO domain_stats (domain, accounts)"
                            " SELECT email_domain, count(*) FROM accounts GROUP BY email_domain",
                    NULL, 0, NULL, err);
    return st;
}

md_status store_audit_write(md_store *s, const md_store_audit *a, md_error *err)
{
    if (a == NULL)
        return MD_OK;
    db_param p[] = { db_int(now_s()), db_text(a->operator_name ? a->operator_name : "?"),
                     db_text(a->action), db_text(a->target ? a->target : ""), db_text(a->detail) };
    return db_run(s->own, "INSERT INTO audit_log (at, operator, action, target, detail)"
                          " VALUES ($1, $2, $3, $4, $5)", p, 5, NULL, err);
}

static md_status read_only(md_error *err, const char *what)
{
    return md_error_set(err, MD_CONFIG, "store.product",
                        "accounts are read from the product's database, read-only: %s there", what);
}

/* Runs body inside one write transaction with the audit record. */
#define WRITE_TX(s, audit, err, body) do { \
    md_status st_ = db_begin((s)->own, 1, (err)); \
    if (st_ != MD_OK) return st_; \
    st_ = (body); \
    if (st_ == MD_OK) st_ = store_audit_write((s), (audit), (err)); \
    if (st_ != MD_OK) { db_rollback((s)->own); return st_; } \
    return db_commit((s)->own, (err)); \
} while (0)

static md_status add_account_body(md_store *s, const md_store_account *a, unsigned key_flags,
                                  int64_t *id, md_error *err)
{
    md_status st = store_insert_account(s, a, key_flags, id, err);
    if (st != MD_OK)
        return st;
    char key[MD_ADDRESS_MAX + 1], pkey[MD_ADDRESS_MAX + 1], dom[MD_ADDRESS_DOMAIN_MAX + 1];
    store_address_keys(a->email, key_flags, key, pkey, dom, NULL, NULL);
    db_param p[] = { db_text(dom) };
    return db_run(s->own, "INSERT INTO domain_stats (domain, accounts) VALUES ($1, 1)"
                          " ON CONFLICT (domain) DO UPDATE SET accounts = domain_stats.accounts + 1",
                  p, 1, NULL, err);
}

md_status md_store_account_add(md_store *s, const md_store_account *a, unsigned key_flags,
                               const md_store_audit *audit, int64_t *id, md_error *err)
{
    if (s->product)
        return read_only(err, "add accounts");
    WRITE_TX(s, audit, err, add_account_body(s, a, key_flags, id, err));
}

/* --------------------------------------------------------------- sessions */

md_status md_store_sessions(md_store *s, int64_t account_id, int active_only, int64_t now,
                            md_store_session_list *out, md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    db *d = s->own;
    const char *sql = active_only
        ? "SELECT id, account_id, created_at, last_seen_at, expires_at, revoked_at FROM sessions"
          " WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC"
        : "SELECT id, account_id, created_at, last_seen_at, expires_at, revoked_at FROM sessions"
          " WHERE account_id = $1 ORDER BY created_at DESC, id DESC";
    if (s->product) {
        d = s->product;
        sql = s->p_sessions;
        if (sql == NULL)
            return MD_OK;
    }
    db_param p[] = { db_int(account_id), db_int(now) };
    md_status st = db_run(d, sql, p, s->product ? 1 : (active_only ? 2 : 1), &r, err);
    if (st != MD_OK)
        return st;
    int c_id = db_col(&r, "id"), c_cr = db_col(&r, "created_at"), c_ls = db_col(&r, "last_seen_at"),
        c_ex = db_col(&r, "expires_at"), c_rv = db_col(&r, "revoked_at");
    out->v = md_xcalloc(r.nrows + 1, sizeof *out->v);
#define COL(c) ((c) >= 0 ? DB_VAL(&r, i, (size_t)(c)) : NULL)
    for (size_t i = 0; i < r.nrows; i++) {
        md_store_session x = {
            .id = val_int(COL(c_id)), .account_id = account_id, .created_at = val_time(COL(c_cr)),
            .last_seen_at = val_time(COL(c_ls)), .expires_at = val_time(COL(c_ex)),
            .revoked_at = val_time(COL(c_rv)),
        };
        if (active_only && s->product && (x.revoked_at || (x.expires_at && x.expires_at <= now)))
            continue;
        out->v[out->n++] = x;
    }
#undef COL
    db_result_clear(&r);
    return MD_OK;
}

md_status md_store_session_add(md_store *s, const md_store_session *x, int64_t *id,
                               md_error *err)
{
    if (s->product)
        return read_only(err, "add sessions");
    db_result r;
    db_param p[] = { db_int(x->account_id), db_int(x->created_at ? x->created_at : now_s()),
                     db_int0(x->last_seen_at), db_int(x->expires_at), db_int0(x->revoked_at) };
    md_status st = db_run(s->own, "INSERT INTO sessions (account_id, created_at, last_seen_at,"
                                  " expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                          p, 5, &r, err);
    if (st != MD_OK)
        return st;
    if (id)
        *id = r.nrows ? val_int(DB_VAL(&r, 0, 0)) : 0;
    db_result_clear(&r);
    return MD_OK;
}

static md_status revoke_body(md_store *s, const int64_t *ids, size_t n, int64_t now,
                             unsigned long *revoked, md_error *err)
{
    *revoked = 0;
    for (size_t i = 0; i < n; i++) {
        db_result r;
        db_param p[] = { db_int(now), db_int(ids[i]) };
        md_status st = db_run(s->own, "UPDATE sessions SET revoked_at = $1 WHERE account_id = $2"
                                      " AND revoked_at IS NULL AND expires_at > $1", p, 2, &r, err);
        if (st != MD_OK)
            return st;
        *revoked += (unsigned long)r.changes;
        db_result_clear(&r);
    }
    return MD_OK;
}

md_status md_store_sessions_revoke(md_store *s, const int64_t *account_ids, size_t n,
                                   int64_t now, const md_store_audit *audit,
                                   unsigned long *revoked, md_error *err)
{
    unsigned long dummy;
    if (revoked == NULL)
        revoked = &dummy;
    if (s->product)
        return read_only(err, "revoke sessions");
    WRITE_TX(s, audit, err, revoke_body(s, account_ids, n, now, revoked, err));
}

/* ------------------------------------------------------------ suppressions */

void md_store_suppression_clear(md_store_suppression *x)
{
    if (x == NULL)
        return;
    free(x->address);
    free(x->reason);
    free(x->text);
    memset(x, 0, sizeof *x);
}

void md_store_suppression_list_clear(md_store_suppression_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        md_store_suppression_clear(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static md_status suppressions_query(md_store *s, const char *sql, const db_param *p, size_t np,
                                    md_store_suppression_list *out, md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    md_status st = db_run(s->own, sql, p, np, &r, err);
    if (st != MD_OK)
        return st;
    out->v = md_xcalloc(r.nrows + 1, sizeof *out->v);
    for (size_t i = 0; i < r.nrows; i++) {
        md_store_suppression *x = &out->v[out->n++];
        x->address = md_xstrdup(DB_VAL(&r, i, 0) ? DB_VAL(&r, i, 0) : "");
        x->reason = md_xstrdup(DB_VAL(&r, i, 1) ? DB_VAL(&r, i, 1) : "");
        x->since = val_int(DB_VAL(&r, i, 2));
        x->text = dup_or_null(DB_VAL(&r, i, 3));
    }
    db_result_clear(&r);
    return MD_OK;
}

md_status md_store_suppression_get(md_store *s, const char *key, md_store_suppression *out,
                                   md_error *err)
{
    md_store_suppression_list l;
    db_param p[] = { db_text(key) };
    memset(out, 0, sizeof *out);
    md_status st = suppressions_query(s, "SELECT address, reason, since, bounce_text FROM suppressions"
                                         " WHERE address = $1", p, 1, &l, err);
    if (st != MD_OK)
        return st;
    if (l.n == 0) {
        free(l.v);
        return MD_NOTFOUND;
    }
    *out = l.v[0];
    free(l.v);
    return MD_OK;
}

md_status md_store_suppressions(md_store *s, md_store_suppression_list *out, md_error *err)
{
    return suppressions_query(s, "SELECT address, reason, since, bounce_text FROM suppressions"
                                 " ORDER BY since DESC, address", NULL, 0, out, err);
}

md_status store_suppression_put(md_store *s, const md_store_suppression *x, md_error *err)
{
    if (!md_store_suppression_reason_valid(x->reason))
        return md_error_set(err, MD_CONFIG, "store.suppression",
                            "the reason must be hard-bounce, complaint or manual");
    db_param p[] = { db_text(x->address), db_text(x->reason), db_int(x->since ? x->since : now_s()),
                     db_text(x->text) };
    return db_run(s->own, "INSERT INTO suppressions (address, reason, since, bounce_text)"
                          " VALUES ($1, $2, $3, $4) ON CONFLICT (address) DO UPDATE SET"
                          " reason = excluded.reason, since = excluded.since,"
                          " bounce_text = excluded.bounce_text", p, 4, NULL, err);
}

md_status md_store_suppression_add(md_store *s, const md_store_suppression *x,
                                   const md_store_audit *audit, md_error *err)
{
    WRITE_TX(s, audit, err, store_suppression_put(s, x, err));
}

static md_status suppression_remove_body(md_store *s, const char *key, md_error *err)
{
    db_result r;
    db_param p[] = { db_text(key) };
    md_status st = db_run(s->own, "DELETE FROM suppressions WHERE address = $1", p, 1, &r, err);
    if (st != MD_OK)
        return st;
    int64_t n = r.changes;
    db_result_clear(&r);
    if (n == 0)
        return md_error_set(err, MD_NOTFOUND, "store.suppression", "%s is not suppressed", key);
    return MD_OK;
}

md_status md_store_suppression_remove(md_store *s, const char *key,
                                      const md_store_audit *audit, md_error *err)
{
    WRITE_TX(s, audit, err, suppression_remove_body(s, key, err));
}

/* ---------------------------------------------------------------- send log */

void md_store_send_list_clear(md_store_send_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].kind);
        free(l->v[i].to);
        free(l->v[i].message_id);
        free(l->v[i].outcome);
        free(l->v[i].reply);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

md_status md_store_send_add(md_store *s, const md_store_send *x, md_error *err)
{
    md_error e;
    db_param p[] = { db_int(x->at ? x->at : now_s()), db_text(x->kind), db_text(x->to),
                     db_text(x->message_id), db_text(x->outcome), db_text(x->reply) };
    md_status st = db_run(s->own, "INSERT INTO send_log (at, kind, to_address, message_id, outcome, reply)"
                                  " VALUES ($1, $2, $3, $4, $5, $6)", p, 6, NULL, &e);
    if (st != MD_OK && err)
        *err = e;
    return log_failed(s, st, &e);
}

md_status md_store_send_recent(md_store *s, const char *key, unsigned limit,
                               md_store_send_list *out, md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    db_param p[] = { db_text(key), db_int(limit) };
    md_status st = db_run(s->own, "SELECT at, kind, to_address, message_id, outcome, reply"
                                  " FROM send_log WHERE to_address = $1 ORDER BY at DESC, id DESC"
                                  " LIMIT $2", p, 2, &r, err);
    if (st != MD_OK)
        return st;
    out->v = md_xcalloc(r.nrows + 1, sizeof *out->v);
    for (size_t i = 0; i < r.nrows; i++) {
        md_store_send *x = &out->v[out->n++];
        x->at = val_int(DB_VAL(&r, i, 0));
        x->kind = md_xstrdup(DB_VAL(&r, i, 1) ? DB_VAL(&r, i, 1) : "");
        x->to = md_xstrdup(DB_VAL(&r, i, 2) ? DB_VAL(&r, i, 2) : "");
        x->message_id = dup_or_null(DB_VAL(&r, i, 3));
        x->outcome = md_xstrdup(DB_VAL(&r, i, 4) ? DB_VAL(&r, i, 4) : "");
        x->reply = dup_or_null(DB_VAL(&r, i, 5));
    }
    db_result_clear(&r);
    return MD_OK;
}

/* --------------------------------------------------------------- audit log */

void md_store_audit_list_clear(md_store_audit_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].operator_name);
        free(l->v[i].action);
        free(l->v[i].target);
        free(l->v[i].detail);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

md_status md_store_audit_add(md_store *s, const md_store_audit *a, md_error *err)
{
    md_error e;
    md_status st = store_audit_write(s, a, &e);   /* one statement: its own transaction */
    if (st != MD_OK && err)
        *err = e;
    return log_failed(s, st, &e);
}

md_status md_store_audit_recent(md_store *s, unsigned limit, md_store_audit_list *out,
                                md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    db_param p[] = { db_int(limit) };
    md_status st = db_run(s->own, "SELECT at, operator, action, target, detail FROM audit_log"
                                  " ORDER BY id DESC LIMIT $1", p, 1, &r, err);
    if (st != MD_OK)
        return st;
    out->v = md_xcalloc(r.nrows + 1, sizeof *out->v);
    for (size_t i = 0; i < r.nrows; i++) {
        md_store_audit_entry *x = &out->v[out->n++];
        x->at = val_int(DB_VAL(&r, i, 0));
        x->operator_name = md_xstrdup(DB_VAL(&r, i, 1) ? DB_VAL(&r, i, 1) : "");
        x->action = md_xstrdup(DB_VAL(&r, i, 2) ? DB_VAL(&r, i, 2) : "");
        x->target = md_xstrdup(DB_VAL(&r, i, 3) ? DB_VAL(&r, i, 3) : "");
        x->detail = dup_or_null(DB_VAL(&r, i, 4));
    }
    db_result_clear(&r);
    return MD_OK;
}

/* ------------------------------------------------------------- rate limits */

static md_status rate_body(md_store *s, const char *key, int64_t start, int64_t now,
                           unsigned long *count, md_error *err)
{
    db_result r;
    db_param p[] = { db_text(key), db_int(start) };
    /* One atomic upsert: concurrent callers each see their own count. */
    md_status st = db_run(s->own, "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1)"
                                  " ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limits.count + 1"
                                  " RETURNING count", p, 2, &r, err);
    if (st != MD_OK)
        return st;
    *count = r.nrows ? (unsigned long)val_int(DB_VAL(&r, 0, 0)) : 0;
    db_result_clear(&r);
    db_param q[] = { db_int(now - 86400) };
    return db_run(s->own, "DELETE FROM rate_limits WHERE window_start < $1", q, 1, NULL, err);
}

static md_status rate_tx(md_store *s, const char *key, int64_t start, int64_t now,
                         unsigned long *count, md_error *err)
{
    WRITE_TX(s, NULL, err, rate_body(s, key, start, now, count, err));
}

md_status md_store_rate_hit(md_store *s, const char *key, unsigned window, int64_t now,
                            unsigned long *count, md_error *err)
{
    if (window == 0)
        window = 1;
    int64_t start = now - now % (int64_t)window;
    /* The window's length is part of the counter's key: windows of
     * different lengths can start at the same second (a minute's and an
     * hour's, at the top of the hour), and must not share a count. */
    char *k = md_xasprintf("%s/%us", key, window);
    md_status st = rate_tx(s, k, start, now, count, err);
    free(k);
    return st;
}

/* ---------------------------------------------------------- domain counts */

void md_store_domain_list_clear(md_store_domain_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->domain[i]);
    free(l->domain);
    free(l->accounts);
    memset(l, 0, sizeof *l);
}

md_status md_store_domain_accounts(md_store *s, const char *domain, unsigned long *n,
                                   md_error *err)
{
    db_result r;
    *n = 0;
    db *d = s->own;
    const char *sql = "SELECT accounts FROM domain_stats WHERE domain = $1";
    if (s->product) {
        d = s->product;
        sql = s->p_domain_count;
        if (sql == NULL)
            return MD_OK;
    }
    db_param p[] = { db_text(domain) };
    md_status st = db_run(d, sql, p, 1, &r, err);
    if (st != MD_OK)
        return st;
    if (r.nrows && r.ncols)
        *n = (unsigned long)val_int(DB_VAL(&r, 0, 0));
    db_result_clear(&r);
    return MD_OK;
}

md_status md_store_popular_domains(md_store *s, unsigned long min, md_store_domain_list *out,
                                   md_error *err)
{
    db_result r;
    memset(out, 0, sizeof *out);
    if (s->product)
        return MD_OK;   /* the product's mapping gives counts per domain only */
    /* The index on (accounts, domain) read backwards: no sort, and it stops
     * at the 1000 most used domains however many domains qualify. */
    db_param p[] = { db_int((int64_t)min) };
    md_status st = db_run(s->own, "SELECT domain, accounts FROM domain_stats WHERE accounts >= $1"
                                  " ORDER BY accounts DESC, domain DESC LIMIT 1000", p, 1, &r, err);
    if (st != MD_OK)
        return st;
    out->domain = md_xcalloc(r.nrows + 1, sizeof *out->domain);
    out->accounts = md_xcalloc(r.nrows + 1, sizeof *out->accounts);
    for (size_t i = 0; i < r.nrows; i++) {
        out->domain[i] = md_xstrdup(DB_VAL(&r, i, 0) ? DB_VAL(&r, i, 0) : "");
        out->accounts[i] = (unsigned long)val_int(DB_VAL(&r, i, 1));
    }
    out->n = r.nrows;
    db_result_clear(&r);
    return MD_OK;
}

/* -------------------------------------------- a product's own database */

md_status md_store_use_product(md_store *s, const md_store_product *p, md_error *err)
{
    if (p->by_email == NULL || p->by_username == NULL)
        return md_error_set(err, MD_CONFIG, "store.mapping",
                            "the product mapping needs both by_email and by_username queries");
    db *d;
    md_status st = db_open(p->uri, DB_READONLY, &d, err);
    if (st != MD_OK)
        return st;
    db_close(s->product);
    s->product = d;
    s->p_email = md_xstrdup(p->by_email);
    s->p_username = md_xstrdup(p->by_username);
    s->p_also = p->also ? md_xstrdup(p->also) : NULL;
    s->p_sessions = p->sessions ? md_xstrdup(p->sessions) : NULL;
    s->p_domain_count = p->domain_count ? md_xstrdup(p->domain_count) : NULL;
    return MD_OK;
}

int md_store_has_product(const md_store *s)
{
    return s->product != NULL;
}
