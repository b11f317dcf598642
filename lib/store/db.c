/* lib/store db: SQLite and PostgreSQL (libpq) behind one small interface. */
#include "config.h"
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sqlite3.h>
#include <libpq-fe.h>
#include <dlfcn.h>

#define DB_BUSY_TIMEOUT_MS 10000
#define DB_BUSY_TIMEOUT_PATIENT_MS 60000
#define DB_MAX_PARAMS 32            /* PostgreSQL */
#define DB_MAX_PARAMS_SQLITE 512    /* SQLite: a multi-row INSERT (store_insert_batch) */

typedef struct stmt_cache {
    const char *sql;        /* the caller's text (static in lib/store) */
    sqlite3_stmt *st;       /* SQLite */
    int *map;               /* SQLite: bind index -> parameter number - 1 */
    int nmap;
    char name[16];          /* PostgreSQL: prepared statement name */
} stmt_cache;

/* libpq is loaded on first use of a postgresql:// store: it drags in about
 * twenty libraries (Kerberos, LDAP, GnuTLS) whose loading makes every
 * process start several milliseconds later (an empty program linked with
 * -lpq against one without, timed over repeated runs on Debian 12), which an
 * SQLite-only lookup should not pay. */
static struct pq_api {
    __typeof__(PQclear) *PQclear;
    __typeof__(PQcmdTuples) *PQcmdTuples;
    __typeof__(PQconnectdbParams) *PQconnectdbParams;
    __typeof__(PQerrorMessage) *PQerrorMessage;
    __typeof__(PQexec) *PQexec;
    __typeof__(PQexecPrepared) *PQexecPrepared;
    __typeof__(PQfinish) *PQfinish;
    __typeof__(PQfname) *PQfname;
    __typeof__(PQgetisnull) *PQgetisnull;
    __typeof__(PQgetvalue) *PQgetvalue;
    __typeof__(PQnfields) *PQnfields;
    __typeof__(PQntuples) *PQntuples;
    __typeof__(PQprepare) *PQprepare;
    __typeof__(PQresultErrorField) *PQresultErrorField;
    __typeof__(PQresultErrorMessage) *PQresultErrorMessage;
    __typeof__(PQresultStatus) *PQresultStatus;
    __typeof__(PQsetNoticeProcessor) *PQsetNoticeProcessor;
    __typeof__(PQstatus) *PQstatus;
} pq;

static md_status pq_load(md_error *err)
{
    static int loaded;
    static const char *const names[] = { "PQclear", "PQcmdTuples", "PQconnectdbParams", "PQerrorMessage", "PQexec", "PQexecPrepared", "PQfinish", "PQfname", "PQgetisnull", "PQgetvalue", "PQnfields", "PQntuples", "PQprepare", "PQresultErrorField", "PQresultErrorMessage", "PQresultStatus", "PQsetNoticeProcessor", "PQstatus" };
    if (loaded)
        return MD_OK;
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return md_error_set(err, MD_CONFIG, "store.open",
                            "PostgreSQL stores need libpq (Debian package libpq5): %s", dlerror());
    void **slot = (void **)&pq;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((slot[i] = dlsym(h, names[i])) == NULL)
            return md_error_set(err, MD_CONFIG, "store.open", "libpq lacks %s", names[i]);
    }
    loaded = 1;
    return MD_OK;
}

struct db {
    db_kind kind;
    sqlite3 *lite;
    unsigned flags;         /* DB_READONLY, DB_CREATE, DB_PATIENT */
    int busy_ms;            /* SQLite: how long a write waits for another's lock */
    char *path;             /* SQLite: the file, for error messages */
    const char *what;       /* SQLite: "SQLite store" or "SQLite database" (read-only) */
    PGconn *pg;
    stmt_cache *cache;
    size_t ncache;
    int in_tx;
};

int64_t db_changes(const db *d)
{
    return d->kind == DB_SQLITE ? (int64_t)sqlite3_changes(d->lite) : -1;
}

db_kind db_kind_of(const db *d)
{
    return d->kind;
}

/* ------------------------------------------------------------- open/close */

static md_status lite_error(db *d, int rc, const char *stage, md_error *err);
static void pg_words(const char *m, char *out, size_t size);

static md_status open_sqlite(db *d, const char *path, unsigned flags, md_error *err)
{
    int oflags = (flags & DB_READONLY) ? SQLITE_OPEN_READONLY
               : SQLITE_OPEN_READWRITE | ((flags & DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
    oflags |= SQLITE_OPEN_NOMUTEX;
    if (*path == '\0')
        return md_error_set(err, MD_CONFIG, "store.open", "sqlite: needs a file path (sqlite:/var/lib/maildiag/store.db)");
    d->path = md_xstrdup(path);
    d->what = (flags & DB_READONLY) ? "SQLite database" : "SQLite store";
    int rc = sqlite3_open_v2(path, &d->lite, oflags, NULL);
    if (rc != SQLITE_OK) {
        if (d->lite == NULL)
            return md_error_set(err, MD_NOMEM, "store.open", "out of memory opening the %s %s", d->what, path);
        sqlite3_extended_result_codes(d->lite, 1);
        return lite_error(d, sqlite3_extended_errcode(d->lite), "store.open", err);
    }
    d->busy_ms = (flags & DB_PATIENT) ? DB_BUSY_TIMEOUT_PATIENT_MS : DB_BUSY_TIMEOUT_MS;
    sqlite3_busy_timeout(d->lite, d->busy_ms);
    sqlite3_extended_result_codes(d->lite, 1);
    /* WAL: readers never block the writer (the mode is stored in the file,
     * so it is set once, when the store is created); synchronous=FULL: a
     * commit that returned survives a power cut, not only a process crash. */
    const char *pragmas = (flags & DB_READONLY) ? "PRAGMA query_only=ON;"
                        : (flags & DB_CREATE)
                        ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                        : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
    if (!(flags & DB_READONLY)) {
        /* Many short processes share one store: keep the WAL and its index
         * between them instead of checkpointing, deleting and recreating
         * them at every exit (the automatic checkpoint every 1000 pages
         * still bounds the WAL). */
        int on = 1;
        sqlite3_file_control(d->lite, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
        sqlite3_db_config(d->lite, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    }
    /* The pragmas read the file's header: a file that is not SQLite, or is
     * damaged, or cannot get its WAL index, fails here, before any write. */
    rc = sqlite3_exec(d->lite, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return lite_error(d, sqlite3_extended_errcode(d->lite), "store.open", err);
    return MD_OK;
}

/* libpq's default prints the server's notices on standard error, among
 * them a "FATAL: terminating connection" that arrives while the session is
 * idle (the server stopping): a library does not print, and that error
 * comes back with the next statement, in our words. */
static void pg_notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static md_status open_pg(db *d, const char *uri, unsigned flags, md_error *err)
{
    /* Keywords before dbname are defaults the URI may override. */
    const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
    const char *vals[] = { "10", "maildiag", uri, NULL };
    md_status st = pq_load(err);
    if (st != MD_OK)
        return st;
    d->pg = pq.PQconnectdbParams(keys, vals, 1);
    if (d->pg == NULL)
        return md_error_set(err, MD_NOMEM, "store.open", "out of memory connecting to PostgreSQL");
    pq.PQsetNoticeProcessor(d->pg, pg_notice_ignore, NULL);
    if (pq.PQstatus(d->pg) != CONNECTION_OK) {
        char line[MD_ERROR_TEXT_MAX];
        pg_words(pq.PQerrorMessage(d->pg), line, sizeof line);
        md_error_set(err, MD_TEMPFAIL, "store.open", "cannot connect to PostgreSQL");
        md_error_set_peer(err, line, strlen(line));
        return MD_TEMPFAIL;
    }
    const char *setup = (flags & DB_READONLY)
        ? "SET default_transaction_read_only = on; SET client_min_messages = warning"
        : "SET client_min_messages = warning";
    return db_exec(d, setup, err);
}

md_status db_open(const char *uri, unsigned flags, db **out, md_error *err)
{
    *out = NULL;
    db *d = md_xcalloc(1, sizeof *d);
    d->flags = flags;
    md_status st;
    if (uri == NULL || *uri == '\0') {
        st = md_error_set(err, MD_CONFIG, "store.open", "no store URI given");
    } else if (strncmp(uri, "sqlite:", 7) == 0) {
        d->kind = DB_SQLITE;
        const char *path = uri + 7;
        if (strncmp(path, "//", 2) == 0)   /* sqlite:///abs/path */
            path += 2;
        st = open_sqlite(d, path, flags, err);
    } else if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
        d->kind = DB_POSTGRESQL;
        st = open_pg(d, uri, flags, err);
    } else {
        st = md_error_set(err, MD_CONFIG, "store.open",
                          "unknown store URI (want sqlite:PATH or postgresql://...)");
    }
    if (st != MD_OK) {
        db_close(d);
        return st;
    }
    *out = d;
    return MD_OK;
}

void db_close(db *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->ncache; i++) {
        if (d->cache[i].st)
            sqlite3_finalize(d->cache[i].st);
        free(d->cache[i].map);
    }
    free(d->cache);
    if (d->lite)
        sqlite3_close(d->lite);
    free(d->path);
    if (d->pg)
        pq.PQfinish(d->pg);
    free(d);
}

/* ------------------------------------------------------------------ errors */

/* Why path cannot be written, from the file system's point of view. */
static const char *readonly_why(const char *path, int rc)
{
    if (rc == SQLITE_READONLY_DIRECTORY)
        return "its directory is not writable, and SQLite must create its -wal and -shm files there";
    if (access(path, W_OK) != 0)
        return errno == EROFS ? "it is on a read-only file system"
             : errno == EACCES || errno == EPERM ? "this user has no write permission on it"
             : strerror(errno);
    if (rc == SQLITE_READONLY_CANTINIT || rc == SQLITE_READONLY_CANTLOCK || rc == SQLITE_READONLY_RECOVERY)
        return "its -shm file (the WAL index) is not writable";
    return "it is read-only";
}

/* The directory of path, in dir. */
static void dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, size, ".");
    else
        snprintf(dir, size, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

/*
 * Why a write found no room, or NULL: the file size limit, a full disk, the
 * quota.  sqlite3_system_errno() is errno when SQLite reports the error,
 * not necessarily the failed write's (under valgrind it is 0 after a write
 * failed with EFBIG), so the limit and the free space are looked at too.
 */
static const char *no_room(const char *path, int sys, int sqlite_full)
{
    static const char *const ext[] = { "", "-wal", "-journal" };
    struct rlimit rl;
    if (sys == EFBIG)
        return "the file size limit (RLIMIT_FSIZE, ulimit -f) is reached";
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
            char f[4200];
            struct stat sb;
            snprintf(f, sizeof f, "%s%s", path, ext[i]);
            if (stat(f, &sb) == 0 && (rlim_t)sb.st_size + 65536 >= rl.rlim_cur)
                return "the file size limit (RLIMIT_FSIZE, ulimit -f) is reached";
        }
    }
    if (sys == EDQUOT)
        return "the disk quota is exceeded";
    char dir[4096];
    struct statvfs vs;
    dir_of(path, dir, sizeof dir);
    if (sys == ENOSPC || sqlite_full ||
        (statvfs(dir, &vs) == 0 && (geteuid() == 0 ? vs.f_bfree : vs.f_bavail) * vs.f_frsize < 65536))
        return "the disk is full";
    return NULL;
}

/* Why the -wal and -shm files beside path could not be created or opened. */
static const char *wal_why(const char *path, int sys)
{
    char dir[4096];
    dir_of(path, dir, sizeof dir);
    if (access(dir, W_OK) != 0 && errno == EROFS)
        return "it is on a read-only file system, where SQLite cannot create its -wal and -shm files";
    if (access(dir, W_OK) != 0)
        return "its directory is not writable, and SQLite must create its -wal and -shm files there";
    return sys ? strerror(sys) : "its -wal or -shm file cannot be opened";
}

/*
 * Our words for a failed SQLite call: what happened to which file, in terms
 * an operator can act on (locked, read-only, disk full, damaged, not a
 * store); SQLite's own message goes to err->peer.  The status says what a
 * caller can do: MD_TEMPFAIL try again later, MD_PERMFAIL a constraint,
 * MD_CONFIG fix the setup or the SQL, MD_INTERNAL a damaged store.
 */
static md_status lite_error(db *d, int rc, const char *stage, md_error *err)
{
    /* errmsg belongs to the last call; "not an error" when rc is ours */
    const char *msg = sqlite3_errcode(d->lite) != SQLITE_OK ? sqlite3_errmsg(d->lite) : "";
    const char *p = d->path, *w = d->what;
    int sys = sqlite3_system_errno(d->lite);
    md_status st;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        st = rc == SQLITE_BUSY_SNAPSHOT
            ? md_error_set(err, MD_TEMPFAIL, stage, "the %s %s was changed by another process during"
                           " this transaction: try again", w, p)
            : md_error_set(err, MD_TEMPFAIL, stage, "the %s %s is locked by another process"
                           " (waited %d s for it)", w, p, d->busy_ms / 1000);
        break;
    case SQLITE_CONSTRAINT:
        return md_error_set(err, MD_PERMFAIL, stage, "constraint violated: %s", msg);
    case SQLITE_ERROR:   /* an SQL error: the words matter (a product's mapping) */
        return md_error_set(err, MD_CONFIG, stage, "SQLite error: %s", msg);
    case SQLITE_READONLY:   /* a directory without write permission fails reads too */
        st = md_error_set(err, MD_CONFIG, stage, "cannot %s the %s %s: %s",
                          rc == SQLITE_READONLY_DIRECTORY ? "use" : "write to", w, p, readonly_why(p, rc));
        break;
    case SQLITE_FULL:
    case SQLITE_IOERR: {
        const char *why = no_room(p, sys, (rc & 0xff) == SQLITE_FULL);
        st = why ? md_error_set(err, MD_TEMPFAIL, stage, "cannot write to the %s %s: %s", w, p, why)
                 : md_error_set(err, MD_INTERNAL, stage, "an I/O error on the %s %s%s%s", w, p, sys ? ": " : "",
                                sys ? strerror(sys) : "");
        break;
    }
    case SQLITE_CORRUPT:
        st = md_error_set(err, MD_INTERNAL, stage, "the %s %s is damaged: restore it from a backup", w, p);
        break;
    case SQLITE_NOTADB:
        st = md_error_set(err, MD_CONFIG, stage, "%s is not a maildiag store (not an SQLite database)", p);
        break;
    case SQLITE_CANTOPEN:
        if (access(p, F_OK) != 0 && errno == ENOENT)   /* a store to be made first: store.init */
            st = md_error_set(err, MD_CONFIG, d->flags & (DB_CREATE | DB_READONLY) ? stage : "store.init",
                              "cannot open the %s %s: %s", w, p,
                              d->flags & DB_CREATE ? "its directory does not exist" : "it does not exist");
        else if (access(p, R_OK) != 0)
            st = md_error_set(err, MD_CONFIG, stage, "cannot open the %s %s: %s", w, p, strerror(errno));
        else   /* the file is there: what failed is its -wal or -shm file */
            st = md_error_set(err, MD_CONFIG, stage, "cannot open the %s %s: %s", w, p, wal_why(p, sys));
        break;
    default:
        st = md_error_set(err, MD_INTERNAL, stage, "SQLite error on %s", p);
        break;
    }
    md_error_set_peer(err, msg, strlen(msg));
    return st;
}

/* libpq's message as one line: its lines that do not start with white
 * space (those are hints continuing the line before), joined by "; ". */
static void pg_words(const char *m, char *out, size_t size)
{
    char line[MD_ERROR_TEXT_MAX * 2];
    size_t o = 0;
    line[0] = '\0';
    for (const char *p = m; p && *p;) {
        size_t n = strcspn(p, "\n");
        if (n > 0 && *p != ' ' && *p != '\t' && o + 2 < sizeof line)
            o += (size_t)snprintf(line + o, sizeof line - o, "%s%.*s", o ? "; " : "", (int)n, p);
        if (o >= sizeof line)
            o = sizeof line - 1;
        p += n + (p[n] == '\n');
    }
    md_sanitize(out, size, line, o);
}

static md_status pg_error(db *d, PGresult *r, const char *stage, md_error *err)
{
    const char *state = r ? pq.PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *why = NULL;
    md_status st;
    if (pq.PQstatus(d->pg) != CONNECTION_OK) {
        st = MD_TEMPFAIL;
        why = "lost the connection to PostgreSQL (the server stopped, restarted or ended the session)";
    } else if (state && strncmp(state, "23", 2) == 0) {      /* integrity constraint */
        st = MD_PERMFAIL;
    } else if (state && (strncmp(state, "40", 2) == 0 ||    /* serialization, deadlock */
                         strncmp(state, "53", 2) == 0 ||    /* resources */
                         strncmp(state, "57", 2) == 0 ||    /* operator intervention */
                         strncmp(state, "08", 2) == 0)) {   /* connection */
        st = MD_TEMPFAIL;
        why = strcmp(state, "53100") == 0 ? "the PostgreSQL server's disk is full"
            : strncmp(state, "57P", 3) == 0 ? "the PostgreSQL server is shutting down or restarting"
            : strncmp(state, "08", 2) == 0 ? "lost the connection to PostgreSQL" : NULL;
    } else if (state && (strncmp(state, "42", 2) == 0 || strncmp(state, "25", 2) == 0)) {
        st = MD_CONFIG;                                   /* syntax, read-only tx */
    } else {
        st = MD_INTERNAL;
    }
    const char *m = r ? pq.PQresultErrorMessage(r) : "";
    if (m == NULL || *m == '\0')
        m = pq.PQerrorMessage(d->pg);
    char line[MD_ERROR_TEXT_MAX];
    pg_words(m, line, sizeof line);
    if (why)
        md_error_set(err, st, stage, "%s", why);
    else
        md_error_set(err, st, stage, "%s (SQLSTATE %s)", st == MD_PERMFAIL ? "constraint violated" : "PostgreSQL error",
                     state ? state : "?");
    md_error_set_peer(err, line, strlen(line));
    if (err && (st == MD_PERMFAIL || st == MD_CONFIG))   /* the words matter here */
        snprintf(err->text, sizeof err->text, "%s", line);
    return st;
}

/* ------------------------------------------------------------------- exec */

md_status db_exec(db *d, const char *sql, md_error *err)
{
    if (d->kind == DB_SQLITE) {
        char *msg = NULL;
        int rc = sqlite3_exec(d->lite, sql, NULL, NULL, &msg);
        sqlite3_free(msg);
        return rc == SQLITE_OK ? MD_OK : lite_error(d, rc, "store.sql", err);
    }
    PGresult *r = pq.PQexec(d->pg, sql);
    ExecStatusType s = pq.PQresultStatus(r);
    md_status st = MD_OK;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        st = pg_error(d, r, "store.sql", err);
    pq.PQclear(r);
    return st;
}

static stmt_cache *cache_find(db *d, const char *sql)
{
    for (size_t i = 0; i < d->ncache; i++)
        if (d->cache[i].sql == sql || strcmp(d->cache[i].sql, sql) == 0)
            return &d->cache[i];
    return NULL;
}

static md_status prepare(db *d, const char *sql, stmt_cache **out, md_error *err)
{
    stmt_cache *c = cache_find(d, sql);
    if (c) {
        *out = c;
        return MD_OK;
    }
    stmt_cache n = { .sql = sql };
    if (d->kind == DB_SQLITE) {
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(d->lite, sql, -1, SQLITE_PREPARE_PERSISTENT, &n.st, &tail);
        if (rc != SQLITE_OK)
            return lite_error(d, rc, "store.prepare", err);
        while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';'))
            tail++;
        if (n.st == NULL || (tail && *tail)) {   /* SQLite would silently skip the rest */
            sqlite3_finalize(n.st);
            return md_error_set(err, MD_CONFIG, "store.prepare",
                                "one SQL statement expected, got %s", n.st ? "more" : "none");
        }
        n.nmap = sqlite3_bind_parameter_count(n.st);
        n.map = md_xcalloc((size_t)n.nmap + 1, sizeof *n.map);
        for (int i = 1; i <= n.nmap; i++) {
            const char *name = sqlite3_bind_parameter_name(n.st, i);
            long k = name && name[0] == '$' ? strtol(name + 1, NULL, 10) : i;
            n.map[i] = k >= 1 && k <= DB_MAX_PARAMS_SQLITE ? (int)k - 1 : -1;
        }
    } else {
        snprintf(n.name, sizeof n.name, "md%zu", d->ncache);
        PGresult *r = pq.PQprepare(d->pg, n.name, sql, 0, NULL);
        if (pq.PQresultStatus(r) != PGRES_COMMAND_OK) {
            md_status st = pg_error(d, r, "store.prepare", err);
            pq.PQclear(r);
            return st;
        }
        pq.PQclear(r);
    }
    d->cache = md_xrealloc(d->cache, (d->ncache + 1) * sizeof *d->cache);
    d->cache[d->ncache] = n;
    *out = &d->cache[d->ncache++];
    return MD_OK;
}

static void result_names(db_result *res, size_t ncols)
{
    res->ncols = ncols;
    res->names = md_xcalloc(ncols + 1, sizeof *res->names);
}

static void result_row(db_result *res, size_t *cap)
{
    if (res->nrows == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        res->vals = md_xrealloc(res->vals, *cap * res->ncols * sizeof *res->vals + 1);
    }
    res->nrows++;
}

static md_status run_sqlite(db *d, stmt_cache *c, const db_param *p, size_t np,
                            db_result *res, md_error *err)
{
    sqlite3_stmt *st = c->st;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (int i = 1; i <= c->nmap; i++) {
        int k = c->map[i];
        if (k < 0 || (size_t)k >= np)
            return md_error_set(err, MD_CONFIG, "store.bind",
                                "the SQL uses parameter %d, but only %zu are given", i, np);
        int rc = SQLITE_OK;
        switch (p[k].type) {
        case DB_NULL: rc = sqlite3_bind_null(st, i); break;
        case DB_TEXT: rc = sqlite3_bind_text(st, i, p[k].s, -1, SQLITE_STATIC); break;
        case DB_INT: rc = sqlite3_bind_int64(st, i, p[k].i); break;
        }
        if (rc != SQLITE_OK)
            return lite_error(d, rc, "store.bind", err);
    }
    size_t cap = 0;
    if (res)
        result_names(res, (size_t)sqlite3_column_count(st));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            md_status s = lite_error(d, rc, "store.step", err);
            sqlite3_reset(st);
            return s;
        }
        if (res == NULL)
            continue;
        if (res->nrows == 0 && res->ncols)
            for (size_t j = 0; j < res->ncols; j++)
                res->names[j] = md_xstrdup(sqlite3_column_name(st, (int)j));
        result_row(res, &cap);
        for (size_t j = 0; j < res->ncols; j++) {
            const unsigned char *v = sqlite3_column_text(st, (int)j);
            DB_VAL(res, res->nrows - 1, j) = v ? md_xstrdup((const char *)v) : NULL;
        }
    }
    if (res) {
        if (res->nrows == 0)
            for (size_t j = 0; j < res->ncols; j++)
                res->names[j] = md_xstrdup(sqlite3_column_name(st, (int)j));
        res->changes = sqlite3_changes(d->lite);
    }
    sqlite3_reset(st);
    return MD_OK;
}

static md_status run_pg(db *d, stmt_cache *c, const db_param *p, size_t np,
                        db_result *res, md_error *err)
{
    char nums[DB_MAX_PARAMS][24];
    const char *vals[DB_MAX_PARAMS];
    if (np > DB_MAX_PARAMS)
        return md_error_set(err, MD_INTERNAL, "store.bind", "too many parameters");
    for (size_t i = 0; i < np; i++) {
        switch (p[i].type) {
        case DB_NULL: vals[i] = NULL; break;
        case DB_TEXT: vals[i] = p[i].s; break;
        case DB_INT:
            snprintf(nums[i], sizeof nums[i], "%" PRId64, p[i].i);
            vals[i] = nums[i];
            break;
        }
    }
    PGresult *r = pq.PQexecPrepared(d->pg, c->name, (int)np, vals, NULL, NULL, 0);
    ExecStatusType s = pq.PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        md_status st = pg_error(d, r, "store.sql", err);
        pq.PQclear(r);
        return st;
    }
    if (res) {
        size_t nr = (size_t)pq.PQntuples(r), nc = (size_t)pq.PQnfields(r);
        result_names(res, nc);
        for (size_t j = 0; j < nc; j++)
            res->names[j] = md_xstrdup(pq.PQfname(r, (int)j));
        res->nrows = nr;
        res->vals = md_xcalloc(nr * nc + 1, sizeof *res->vals);
        for (size_t i = 0; i < nr; i++)
            for (size_t j = 0; j < nc; j++)
                if (!pq.PQgetisnull(r, (int)i, (int)j))
                    DB_VAL(res, i, j) = md_xstrdup(pq.PQgetvalue(r, (int)i, (int)j));
        const char *ct = pq.PQcmdTuples(r);
        res->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
    }
    pq.PQclear(r);
    return MD_OK;
}

md_status db_run(db *d, const char *sql, const db_param *p, size_t np, db_result *res,
                 md_error *err)
{
    stmt_cache *c = NULL;
    if (res)
        memset(res, 0, sizeof *res);
    md_status st = prepare(d, sql, &c, err);
    if (st != MD_OK)
        return st;
    st = d->kind == DB_SQLITE ? run_sqlite(d, c, p, np, res, err) : run_pg(d, c, p, np, res, err);
    if (st != MD_OK && res)
        db_result_clear(res);
    return st;
}

void db_result_clear(db_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nrows * r->ncols; i++)
        free(r->vals[i]);
    free(r->vals);
    if (r->names)
        for (size_t j = 0; j < r->ncols; j++)
            free(r->names[j]);
    free(r->names);
    memset(r, 0, sizeof *r);
}

int db_col(const db_result *r, const char *name)
{
    for (size_t j = 0; j < r->ncols; j++)
        if (r->names[j] && strcmp(r->names[j], name) == 0)
            return (int)j;
    return -1;
}

/* ------------------------------------------------------------ transactions */

md_status db_begin(db *d, int write, md_error *err)
{
    const char *sql = d->kind == DB_SQLITE ? (write ? "BEGIN IMMEDIATE" : "BEGIN") : "BEGIN";
    md_status st = db_exec(d, sql, err);
    if (st == MD_OK)
        d->in_tx = 1;
    return st;
}

md_status db_commit(db *d, md_error *err)
{
    md_status st = db_exec(d, "COMMIT", err);
    if (st != MD_OK)
        db_rollback(d);
    d->in_tx = 0;
    return st;
}

void db_rollback(db *d)
{
    if (d->kind == DB_SQLITE) {
        if (!sqlite3_get_autocommit(d->lite))
            sqlite3_exec(d->lite, "ROLLBACK", NULL, NULL, NULL);
    } else {
        PGresult *r = pq.PQexec(d->pg, "ROLLBACK");
        pq.PQclear(r);
    }
    d->in_tx = 0;
}

md_status db_writable(db *d, md_error *err)
{
    if (d->flags & DB_READONLY)   /* PostgreSQL: BEGIN READ WRITE would override it */
        return md_error_set(err, MD_CONFIG, "store.write", "the store is opened read-only");
    if (d->kind == DB_SQLITE && sqlite3_db_readonly(d->lite, "main") == 1)
        return lite_error(d, SQLITE_READONLY, "store.write", err);   /* opened read-only */
    md_status st = db_exec(d, d->kind == DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN READ WRITE", err);
    if (st == MD_OK)
        db_rollback(d);
    return st;
}
