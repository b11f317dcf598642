/*
 * libFuzzer target: the account import (lib/store/csv.c, md_store_import_csv:
 * the RFC 4180 reader, the header, every row's checks, the inserts) over any
 * file contents, into one SQLite store in memory (sqlite::memory:) that is
 * emptied after each input.
 *
 * What is checked, besides no crash and no leak:
 *  - all or nothing: an import that succeeds leaves exactly *rows accounts
 *    and one audit record; one that fails leaves no account, no audit
 *    record, no domain count, and reports 0 rows and a message free of
 *    control characters;
 *  - what an import took, md_store_export_csv writes as CSV that imports
 *    again, to the same accounts (the export of the second import is the
 *    export of the first, byte for byte).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names itself before the abort libFuzzer reports. */
#define check(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort(); \
    } \
} while (0)

static md_store *store;

/* sql is a literal: db_run caches statements by their text, kept. */
static long count(const char *sql)
{
    db_result r;
    check(db_run(store->own, sql, NULL, 0, &r, NULL) == MD_OK && r.nrows == 1);
    long n = strtol(DB_VAL(&r, 0, 0), NULL, 10);
    db_result_clear(&r);
    return n;
}

#define ACCOUNTS "SELECT count(*) FROM accounts"
#define AUDITS "SELECT count(*) FROM audit_log"
#define DOMAINS "SELECT count(*) FROM domain_stats"

static void empty(void)
{
    check(db_exec(store->own, "DELETE FROM accounts; DELETE FROM audit_log; DELETE FROM domain_stats",
                  NULL) == MD_OK);
}

/* Imports size bytes of text; checks all or nothing.  Returns the status. */
static md_status import(const void *text, size_t size, unsigned long *rows)
{
    static char nothing[1];
    FILE *in = fmemopen(size ? (void *)text : nothing, size, "r");
    check(in != NULL);
    const md_store_audit audit = { "fuzz", "import", "fuzz.csv", NULL };
    md_error err = { 0 };
    md_status st = md_store_import_csv(store, in, 0, &audit, rows, &err);
    fclose(in);
    if (st == MD_OK) {
        check(count(ACCOUNTS) == (long)*rows && count(AUDITS) == 1);
    } else {
        size_t bad;
        const char *why;
        check(*rows == 0 && count(ACCOUNTS) == 0 && count(AUDITS) == 0 &&
              count(DOMAINS) == 0);
        check(err.text[0] != '\0' && md_text_check(err.text, strlen(err.text), NULL, &bad, &why) == 0);
    }
    return st;
}

static char *export(size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    check(f != NULL);
    unsigned long rows = 0;
    md_error err;
    check(md_store_export_csv(store, f, &rows, &err) == MD_OK);
    check(fclose(f) == 0);
    check(rows == (unsigned long)count(ACCOUNTS));
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (store == NULL) {
        md_error err;
        check(md_store_open("sqlite::memory:", MD_STORE_CREATE, &store, &err) == MD_OK);
        check(md_store_migrate(store, NULL, &err) == MD_OK);
    }
    if (size > 65536)
        return 0;
    unsigned long rows = 0;
    if (import(data, size, &rows) == MD_OK) {
        size_t len1 = 0, len2 = 0;
        char *first = export(&len1);
        empty();
        unsigned long again = 0;
        check(import(first, len1, &again) == MD_OK && again == rows);
        char *second = export(&len2);
        check(len1 == len2 && memcmp(first, second, len1) == 0);
        free(first);
        free(second);
    }
    empty();
    return 0;
}
