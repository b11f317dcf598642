/* lib/store bounce: the bounce messages applied, and their suppressions in
 * one transaction with them. */
#include "config.h"
#include "store_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

md_status md_store_bounce_applied(md_store *s, const char *key, int *applied, md_error *err)
{
    db_result r;
    db_param p[] = { db_text(key) };
    *applied = 0;
    md_status st = db_run(s->own, "SELECT 1 FROM bounces_applied WHERE message_key = $1", p, 1, &r, err);
    if (st != MD_OK)
        return st;
    *applied = r.nrows > 0;
    db_result_clear(&r);
    return MD_OK;
}

static md_status apply_body(md_store *s, const char *key, const char *source,
                            const md_store_suppression *x, size_t n, const char *operator_name,
                            unsigned long *changed, int *already, md_error *err)
{
    db_result r;
    db_param p[] = { db_text(key), db_int((int64_t)time(NULL)), db_text(source), db_int((int64_t)n) };
    /* First, so that of two concurrent runs only one gets past here. */
    md_status st = db_run(s->own, "INSERT INTO bounces_applied (message_key, applied_at, source, suppressions)"
                                  " VALUES ($1, $2, $3, $4) ON CONFLICT (message_key) DO NOTHING",
                          p, 4, &r, err);
    if (st != MD_OK)
        return st;
    *already = r.changes == 0;
    db_result_clear(&r);
    for (size_t i = 0; i < n && !*already; i++) {
        db_param q[] = { db_text(x[i].address) };
        st = db_run(s->own, "SELECT 1 FROM suppressions WHERE address = $1", q, 1, &r, err);
        if (st != MD_OK)
            return st;
        int exists = r.nrows > 0;
        db_result_clear(&r);
        if (exists)
            continue;
        if ((st = store_suppression_put(s, &x[i], err)) != MD_OK)
            return st;
        char detail[900];
        snprintf(detail, sizeof detail, "%s from bounce %s: %s", x[i].reason, key,
                 x[i].text ? x[i].text : "");
        md_store_audit a = { operator_name, "bounce.suppress", x[i].address, detail };
        if ((st = store_audit_write(s, &a, err)) != MD_OK)
            return st;
        (*changed)++;
    }
    return MD_OK;
}

md_status md_store_bounce_apply(md_store *s, const char *key, const char *source,
                                const md_store_suppression *x, size_t n,
                                const char *operator_name, unsigned long *changed, int *already,
                                md_error *err)
{
    unsigned long c = 0;
    int a = 0;
    if (changed)
        *changed = 0;
    if (already)
        *already = 0;
    if (key == NULL || *key == '\0')
        return md_error_set(err, MD_CONFIG, "store.bounce", "a bounce needs a key (its Message-ID)");
    md_status st = db_begin(s->own, 1, err);
    if (st != MD_OK)
        return st;
    st = apply_body(s, key, source, x, n, operator_name, &c, &a, err);
    if (st == MD_OK && a) {
        db_rollback(s->own);   /* nothing was written */
    } else if (st == MD_OK) {
        st = db_commit(s->own, err);
    } else {
        db_rollback(s->own);
    }
    if (st == MD_OK) {
        if (changed)
            *changed = c;
        if (already)
            *already = a;
    }
    return st;
}

md_status md_store_sync_relaxed(md_store *s, int relaxed, md_error *err)
{
    if (db_kind_of(s->own) != DB_SQLITE)
        return MD_OK;
    if (relaxed)
        return db_exec(s->own, "PRAGMA synchronous=NORMAL", err);
    /* FULL again, and a checkpoint that syncs the WAL and then the database
     * file: what the NORMAL commits wrote is on disk when this returns. */
    md_status st = db_exec(s->own, "PRAGMA synchronous=FULL", err);
    return st == MD_OK ? db_exec(s->own, "PRAGMA wal_checkpoint(FULL)", err) : st;
}
