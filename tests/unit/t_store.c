/*
 * The store suite: the same tests on every engine.  Without arguments it
 * runs on a fresh SQLite file in a temporary directory; with a URI argument
 * (or MAILDIAG_TEST_STORE) on that store, which must be empty
 * (tests/integration/test_store_pg.py passes a fresh PostgreSQL database).
 */
#include "config.h"
#include "store/store.h"
#include "address/address.h"
#include "store/store_int.h"   /* the version 1 schema, for the migration test */
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];
static const md_store_audit AUD = { "tester", "test", "target", NULL };

static void key_of(const char *addr, char *key)
{
    md_address a;
    md_error err = { 0 };
    key[0] = '\0';
    if (md_address_parse(addr, &a, &err) == MD_OK)
        md_address_key(&a, 0, key, MD_ADDRESS_MAX + 1);
}

static void test_time(void)
{
    static const struct { const char *in; long long want; } cases[] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-11-26T23:43:37Z", 1795736617LL },
        { "2026-11-26 23:43:37+00", 1795736617LL },
        { "2026-11-27T01:43:37+02:00", 1795736617LL },
        { "2026-11-26T21:43:37-0200", 1795736617LL },
        { "2026-11-26T23:43:37.123456Z", 1795736617LL },
        { "2026-11-26", 1795651200LL },
        { "1795736617", 1795736617LL },
        { "2026-13-01", -1 }, { "2026-11-26T25:00", -1 }, { "yesterday", -1 },
        { "2026-11-26T23:43:37Zjunk", -1 }, { "", -1 },
        /* what a four-digit year can write, and so what an export imports */
        { "9999-12-31T23:59:59Z", 253402300799LL },
        { "253402300799", 253402300799LL }, { "253402300800", -1 }, { "999999999999", -1 },
        { "9999-12-31T23:59:59-01:00", -1 }, { "0000-01-01T00:00:00+01:00", -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = -1;
        int rc = md_store_time_parse(cases[i].in, &t);
        if (cases[i].want < 0)
            is_int(rc, -1, "time '%s' rejected", cases[i].in);
        else
            is_int(rc == 0 ? t : -2, cases[i].want, "time '%s'", cases[i].in);
    }
    int64_t first = 0;
    ok(md_store_time_parse("0000-01-01", &first) == 0 && first == -62167219200LL,
       "time '0000-01-01' (%lld)", (long long)first);
    char buf[32];
    md_store_time_format(1795736617LL, buf, sizeof buf);
    is_str(buf, "2026-11-26T23:43:37Z", "time format");
    md_store_time_format(0, buf, sizeof buf);
    is_str(buf, "", "time 0 formats as empty");
    md_store_time_format(-30628670400LL, buf, sizeof buf);
    is_str(buf, "0999-06-01T12:00:00Z", "the year in four digits");
    md_store_time_format(-62167219200LL, buf, sizeof buf);
    is_str(buf, "0000-01-01T00:00:00Z", "the first time there is");
    md_store_time_format(253402300799LL, buf, sizeof buf);
    is_str(buf, "9999-12-31T23:59:59Z", "the last time there is");
}

static md_store *open_fresh(const char *uri)
{
    md_store *s = NULL;
    md_error err = { 0 };
    md_status st = md_store_open(uri, 0, &s, &err);
    ok(st == MD_CONFIG && strcmp(err.stage, "store.init") == 0,
       "opening an empty store asks for init (%s: %s)", err.stage, err.text);
    md_store_free(s);
    st = md_store_open(uri, MD_STORE_CREATE, &s, &err);
    is_int(st, MD_OK, "open with create (%s)", st ? err.text : "");
    if (st != MD_OK)
        return NULL;
    int from = -1;
    is_int(md_store_migrate(s, &from, &err), MD_OK, "migrate (%s)", err.text);
    is_int(from, 0, "migrated from version 0");
    is_int(md_store_migrate(s, &from, &err), MD_OK, "migrate again");
    is_int(from, MD_STORE_SCHEMA_VERSION, "second migrate finds the current version");
    md_store_free(s);
    st = md_store_open(uri, 0, &s, &err);
    is_int(st, MD_OK, "open after init (%s)", st ? err.text : "");
    return s;
}

static void test_accounts(md_store *s)
{
    md_error err = { 0 };
    md_store_account a = { .username = "alice", .email = "Alice@Example.COM", .email_verified = 1,
                           .created_at = 1700000000, .last_login_at = 1790000000 };
    int64_t id_alice = 0, id;
    is_int(md_store_account_add(s, &a, 0, &AUD, &id_alice, &err), MD_OK, "add alice (%s)", err.text);
    ok(id_alice > 0, "alice has an id");
    md_store_account b = { .username = "alice-sso", .email = "alice@example.com",
                           .auth = MD_STORE_SSO, .sso_provider = "Okta" };
    is_int(md_store_account_add(s, &b, 0, &AUD, &id, &err), MD_OK, "add alice-sso");
    md_store_account c = { .username = "js", .email = "john.smith+news@gmail.com",
                           .status = MD_STORE_LOCKED };
    is_int(md_store_account_add(s, &c, 0, &AUD, &id, &err), MD_OK, "add js");
    md_store_account dup = { .username = "alice", .email = "other@example.com" };
    is_int(md_store_account_add(s, &dup, 0, &AUD, &id, &err), MD_PERMFAIL, "duplicate username refused");
    ok(strstr(err.text, "alice") != NULL, "the error names the username (%s)", err.text);
    md_store_account bad = { .username = "bad", .email = "not an address" };
    is_int(md_store_account_add(s, &bad, 0, &AUD, &id, &err), MD_CONFIG, "bad address refused");

    char key[MD_ADDRESS_MAX + 1];
    md_store_account_list l;
    key_of("ALICE@example.com", key);
    is_int(md_store_find_by_email(s, key, &l, &err), MD_OK, "find by email");
    is_int(l.n, 2, "two accounts on alice@example.com");
    if (l.n == 2) {
        is_str(l.v[0].username, "alice", "first by id");
        is_str(l.v[0].email, "Alice@Example.COM", "email kept as given");
        is_int(l.v[0].email_verified, 1, "verified");
        is_int(l.v[0].last_login_at, 1790000000, "last login");
        is_int(l.v[1].auth, MD_STORE_SSO, "second is sso");
        is_str(l.v[1].sso_provider, "Okta", "sso provider");
        is_int(l.v[1].email_verified, 0, "not verified by default");
    }
    md_store_account_list_clear(&l);

    key_of("johnsmith@gmail.com", key);
    is_int(md_store_find_by_email(s, key, &l, &err), MD_OK, "find by email (gmail)");
    is_int(l.n, 0, "no exact match for johnsmith@gmail.com");
    md_store_account_list_clear(&l);
    is_int(md_store_find_also(s, "johnsmith@gmail.com", key, &l, &err), MD_OK, "find also");
    is_int(l.n, 1, "js also matches");
    if (l.n == 1)
        is_int(l.v[0].status, MD_STORE_LOCKED, "js is locked");
    md_store_account_list_clear(&l);
    key_of("john.smith+news@gmail.com", key);
    is_int(md_store_find_also(s, "johnsmith@gmail.com", key, &l, &err), MD_OK, "find also, exact");
    is_int(l.n, 0, "the exact address is not an also-match");
    md_store_account_list_clear(&l);

    is_int(md_store_find_by_username(s, "alice-sso", &l, &err), MD_OK, "find by username");
    is_int(l.n, 1, "one account named alice-sso");
    md_store_account_list_clear(&l);
    is_int(md_store_find_by_username(s, "nobody", &l, &err), MD_OK, "find missing username");
    is_int(l.n, 0, "nobody is nobody");
    md_store_account_list_clear(&l);

    unsigned long n = 0;
    is_int(md_store_domain_accounts(s, "example.com", &n, &err), MD_OK, "domain count");
    is_int(n, 2, "two accounts at example.com");

    /* Sessions. */
    int64_t now = 1800000000;
    md_store_session s1 = { .account_id = id_alice, .created_at = now - 100, .expires_at = now + 3600 };
    md_store_session s2 = { .account_id = id_alice, .created_at = now - 200, .expires_at = now - 1 };
    md_store_session s3 = { .account_id = id_alice, .created_at = now - 300, .expires_at = now + 3600,
                            .revoked_at = now - 50 };
    is_int(md_store_session_add(s, &s1, NULL, &err), MD_OK, "session add (%s)", err.text);
    md_store_session_add(s, &s2, NULL, &err);
    md_store_session_add(s, &s3, NULL, &err);
    md_store_session_list sl;
    is_int(md_store_sessions(s, id_alice, 1, now, &sl, &err), MD_OK, "active sessions");
    is_int(sl.n, 1, "one active session");
    free(sl.v);
    is_int(md_store_sessions(s, id_alice, 0, now, &sl, &err), MD_OK, "all sessions");
    is_int(sl.n, 3, "three sessions");
    if (sl.n == 3)
        is_int(sl.v[0].created_at, now - 100, "newest first");
    free(sl.v);
    unsigned long revoked = 99;
    md_store_audit ra = { "tester", "sessions.revoke", "alice", NULL };
    is_int(md_store_sessions_revoke(s, &id_alice, 1, now, &ra, &revoked, &err), MD_OK, "revoke");
    is_int(revoked, 1, "one session revoked");
    md_store_sessions_revoke(s, &id_alice, 1, now, &ra, &revoked, &err);
    is_int(revoked, 0, "nothing left to revoke");
    md_store_sessions(s, id_alice, 1, now, &sl, &err);
    is_int(sl.n, 0, "no active session after revoke");
    free(sl.v);
}

static void test_suppressions(md_store *s)
{
    md_error err = { 0 };
    md_store_suppression x = { .address = "bounce@example.com", .reason = "hard-bounce",
                               .since = 1790000000, .text = "550 5.1.1 user unknown" };
    is_int(md_store_suppression_add(s, &x, &AUD, &err), MD_OK, "suppress (%s)", err.text);
    md_store_suppression bad = { .address = "x@example.com", .reason = "bored" };
    is_int(md_store_suppression_add(s, &bad, &AUD, &err), MD_CONFIG, "bad reason refused");
    md_store_suppression got;
    is_int(md_store_suppression_get(s, "bounce@example.com", &got, &err), MD_OK, "get");
    is_str(got.reason, "hard-bounce", "reason");
    is_str(got.text, "550 5.1.1 user unknown", "text");
    is_int(got.since, 1790000000, "since");
    md_store_suppression_clear(&got);
    x.reason = "complaint";
    is_int(md_store_suppression_add(s, &x, &AUD, &err), MD_OK, "suppress again replaces");
    md_store_suppression_list l;
    is_int(md_store_suppressions(s, &l, &err), MD_OK, "list");
    is_int(l.n, 1, "one suppression");
    if (l.n)
        is_str(l.v[0].reason, "complaint", "replaced reason");
    md_store_suppression_list_clear(&l);
    is_int(md_store_suppression_get(s, "nobody@example.com", &got, &err), MD_NOTFOUND, "get missing");
    is_int(md_store_suppression_remove(s, "bounce@example.com", &AUD, &err), MD_OK, "remove");
    is_int(md_store_suppression_remove(s, "bounce@example.com", &AUD, &err), MD_NOTFOUND, "remove again");
}

static void test_logs(md_store *s)
{
    md_error err = { 0 };
    for (int i = 0; i < 5; i++) {
        char mid[64];
        snprintf(mid, sizeof mid, "<m%d@example.com>", i);
        md_store_send x = { .at = 1790000000 + i, .kind = "reminder", .to = "log@example.com",
                            .message_id = mid, .outcome = i == 4 ? "rejected" : "sent",
                            .reply = i == 4 ? "550 no" : "250 ok" };
        is_int(md_store_send_add(s, &x, &err), MD_OK, "send log %d", i);
    }
    md_store_send_list l;
    is_int(md_store_send_recent(s, "log@example.com", 3, &l, &err), MD_OK, "recent sends");
    is_int(l.n, 3, "limit 3");
    if (l.n == 3) {
        is_str(l.v[0].outcome, "rejected", "newest first");
        is_str(l.v[0].message_id, "<m4@example.com>", "message id");
    }
    md_store_send_list_clear(&l);

    md_store_audit a = { "ops", "lookup", "someone@example.com", NULL };
    is_int(md_store_audit_add(s, &a, &err), MD_OK, "audit add");
    md_store_audit_list al;
    is_int(md_store_audit_recent(s, 100, &al, &err), MD_OK, "audit recent");
    ok(al.n >= 8, "every change was audited (%zu records)", al.n);
    if (al.n) {
        is_str(al.v[0].action, "lookup", "newest audit record");
        is_str(al.v[0].operator_name, "ops", "operator");
    }
    int revokes = 0;
    for (size_t i = 0; i < al.n; i++)
        revokes += strcmp(al.v[i].action, "sessions.revoke") == 0;
    is_int(revokes, 2, "both revokes are in the audit log");
    md_store_audit_list_clear(&al);
}

static void test_rate(md_store *s)
{
    md_error err = { 0 };
    unsigned long c = 0;
    for (unsigned long i = 1; i <= 3; i++) {
        is_int(md_store_rate_hit(s, "addr:x@example.com", 3600, 1800000000, &c, &err), MD_OK, "hit");
        is_int(c, i, "count %lu", i);
    }
    md_store_rate_hit(s, "addr:x@example.com", 3600, 1800000000 + 3600, &c, &err);
    is_int(c, 1, "a new window starts at 1");
    md_store_rate_hit(s, "addr:y@example.com", 3600, 1800000000, &c, &err);
    is_int(c, 1, "another key has its own count");
    /* 1800000000 is a multiple of 3600: the minute's window and the hour's
     * start at the same second, and still count apart */
    for (int i = 0; i < 4; i++)
        md_store_rate_hit(s, "all", 60, 1800000000, &c, &err);
    is_int(c, 4, "four in the minute's window");
    md_store_rate_hit(s, "all", 3600, 1800000000, &c, &err);
    is_int(c, 1, "the hour's window of the same key, starting the same second, has its own count");
}

static FILE *text_file(const char *text)
{
    FILE *f = tmpfile();
    fputs(text, f);
    rewind(f);
    return f;
}

static void test_import(md_store *s, const char *uri)
{
    md_error err = { 0 };
    unsigned long rows = 0;
    FILE *f = text_file("\xef\xbb\xbf" "email,Username,status,auth,sso_provider,email_verified,created_at,last_login_at,password_changed_at\r\n"
                        "bob@corp.example,bob,active,password,,1,2024-01-02T03:04:05Z,,\r\n"
                        "\"\"\"carol, \\\"\"the boss\\\"\"\"\"@corp.example\",carol,locked,password,,0,,1790000000,\r\n"
                        "\r\n"
                        "dave@corp.example,\"dave, jr\",deactivated,sso,Google,1,,,\r\n"
                        "eve@CORP.example,eve,,,,,,,\n");
    is_int(md_store_import_csv(s, f, 0, &AUD, &rows, &err), MD_OK, "import (%s)", err.text);
    is_int(rows, 4, "4 rows imported");
    fclose(f);
    md_store_account_list l;
    char key[MD_ADDRESS_MAX + 1];
    key_of("bob@corp.example", key);
    md_store_find_by_email(s, key, &l, &err);
    is_int(l.n, 1, "bob imported");
    if (l.n)
        is_int(l.v[0].created_at, 1704164645LL, "created_at parsed");
    md_store_account_list_clear(&l);
    key_of("\"carol, \\\"the boss\\\"\"@corp.example", key);
    md_store_find_by_email(s, key, &l, &err);
    is_int(l.n, 1, "carol with a quoted local part imported (%s)", key);
    md_store_account_list_clear(&l);
    md_store_find_by_username(s, "dave, jr", &l, &err);
    is_int(l.n, 1, "a quoted comma in a field");
    if (l.n) {
        is_int(l.v[0].status, MD_STORE_DEACTIVATED, "dave deactivated");
        is_str(l.v[0].sso_provider, "Google", "dave via Google");
    }
    md_store_account_list_clear(&l);
    unsigned long n = 0;
    md_store_domain_accounts(s, "corp.example", &n, &err);
    is_int(n, 4, "domain counts refreshed by import");

    static const struct { const char *csv, *want; } bad[] = {
        { "username,email\nfrank,frank@corp.example\ngina,not-an-address\n", "line 3" },
        { "username,email\nfrank,frank@corp.example\nbob,bob2@corp.example\n", "line 3" },
        { "username,email,status\nfrank,frank@corp.example,sleeping\n", "line 2" },
        { "username,email,email_verified\nfrank,frank@corp.example,yes\n", "line 2" },
        { "username,email,created_at\nfrank,frank@corp.example,last tuesday\n", "line 2" },
        { "username,email,auth,sso_provider\nfrank,frank@corp.example,password,Okta\n", "line 2" },
        { "username,email\nfrank,frank@corp.example\n\"gina,gina@corp.example\n", "line 3" },
        { "username,email\nfrank,fr\"ank@corp.example\n", "line 2" },
        { "username,mail\nfrank,frank@corp.example\n", "line 1" },
        { "username,email,email\n", "line 1" },
        { "username\nfrank\n", "line 1" },
        { "", "empty" },
        /* a quoted line break is CSV, but no account field may hold one */
        { "username,email,sso_provider,auth\nfrank,frank@corp.example,\"Okta\nEU\",sso\ngina,bad\n",
          "line 2: sso_provider holds a line break" },
        { "username,email\nfrank,frank@corp.example\n,gina@corp.example\n", "line 3" },
        /* a row must have the header's fields: no more, no fewer */
        { "username,email\nfrank,frank@corp.example\ngina,gina@corp.example,extra\n", "line 3: 3 fields" },
        { "username,email,status\nfrank,frank@corp.example,active\ngina,gina@corp.example,active,x,y\n",
          "line 3: 5 fields" },
        { "username,email,status\nfrank,frank@corp.example,active\ngina,gina@corp.example\n", "line 3: 2 fields" },
        /* text must be UTF-8; names shown to people hold no control character */
        { "username,email\nfrank,frank@corp.example\ngi\xffna,gina@corp.example\n", "line 3: username" },
        { "username,email\nfrank,frank@corp.example\ngi\xed\xa0\x80na,gina@corp.example\n", "line 3: username" },
        { "username,email\nfrank,frank@corp.example\ngi\xc0\xaena,gina@corp.example\n", "line 3: username" },
        { "username,email\nfrank,frank@corp.example\ngi\xc2\x9bna,gina@corp.example\n", "line 3: username" },
        { "username,email\nfrank,frank@corp.example\ngi\x1bna,gina@corp.example\n", "line 3: username" },
        { "username,email\nfrank,frank@corp.example\ngina,gi\xc3\x28na@corp.example\n", "line 3: email" },
        { "username,email,auth,sso_provider\nfrank,frank@corp.example,,\ngina,gina@corp.example,sso,Ok\xffta\n",
          "line 3: sso_provider" },
        { "username,email,auth,sso_provider\nfrank,frank@corp.example,,\ngina,gina@corp.example,sso,Ok\x1bta\n",
          "line 3: sso_provider" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = text_file(bad[i].csv);
        rows = 7;
        md_status st = md_store_import_csv(s, f, 0, &AUD, &rows, &err);
        ok(st != MD_OK && strstr(err.text, bad[i].want) != NULL,
           "bad import %zu refused with '%s' (%s)", i, bad[i].want, err.text);
        is_int(rows, 0, "nothing counted");
        fclose(f);
    }
    md_store_find_by_username(s, "frank", &l, &err);
    is_int(l.n, 0, "no partial import: frank is not there");
    md_store_account_list_clear(&l);

    /* Export, import into a second store, export again: the same bytes. */
    char *buf1 = NULL, *buf2 = NULL;
    size_t len1 = 0, len2 = 0;
    FILE *o1 = open_memstream(&buf1, &len1);
    unsigned long exported = 0;
    is_int(md_store_export_csv(s, o1, &exported, &err), MD_OK, "export");
    fclose(o1);
    is_int(exported, 7, "7 accounts exported");
    if (strncmp(uri, "sqlite:", 7) == 0) {
        char uri2[300];
        snprintf(uri2, sizeof uri2, "sqlite:%s/second.db", tmpdir);
        md_store *s2 = NULL;
        if (md_store_open(uri2, MD_STORE_CREATE, &s2, &err) == MD_OK &&
            md_store_migrate(s2, NULL, &err) == MD_OK) {
            FILE *in = fmemopen(buf1, len1, "r");
            is_int(md_store_import_csv(s2, in, 0, &AUD, &rows, &err), MD_OK, "re-import (%s)", err.text);
            fclose(in);
            FILE *o2 = open_memstream(&buf2, &len2);
            md_store_export_csv(s2, o2, NULL, &err);
            fclose(o2);
            ok(len1 == len2 && memcmp(buf1, buf2, len1) == 0, "export -> import -> export is stable");
        } else {
            ok(0, "second store: %s", err.text);
        }
        md_store_free(s2);
    }
    free(buf1);
    free(buf2);
}

/* The indexes of accounts, as text: name and definition of each. */
static char *account_indexes(const char *uri)
{
    db *d = NULL;
    db_result r;
    md_error err = { 0 };
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const char *sql = strncmp(uri, "sqlite:", 7) == 0
        ? "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'accounts' ORDER BY name"
        : "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts'"
          " AND schemaname = current_schema() ORDER BY indexname";
    if (db_open(uri, 0, &d, &err) == MD_OK && db_run(d, sql, NULL, 0, &r, &err) == MD_OK) {
        for (size_t i = 0; i < r.nrows; i++)
            fprintf(f, "%s: %s\n", DB_VAL(&r, i, 0), DB_VAL(&r, i, 1) ? DB_VAL(&r, i, 1) : "(constraint)");
        db_result_clear(&r);
    } else {
        fprintf(f, "error: %s", err.text);
    }
    db_close(d);
    fclose(f);
    return out;
}

/* rows accounts big00000... at five domains, then the line tail (may be NULL). */
static FILE *large_csv(unsigned rows, const char *tail)
{
    FILE *f = tmpfile();
    fputs("email,username,status\n", f);
    for (unsigned i = 0; i < rows; i++)
        fprintf(f, "Big.%05u@d%u.large.example,big%05u,%s\n", i, i % 5, i, i % 3 ? "active" : "locked");
    if (tail)
        fputs(tail, f);
    rewind(f);
    return f;
}

/* 100 accounts bat000... (lines 2-101), line bad_at (if not 0) replaced by
 * bad_text. */
static FILE *batch_csv(unsigned bad_at, const char *bad_text, unsigned bad_at2, const char *bad_text2)
{
    FILE *f = tmpfile();
    fputs("username,email\n", f);
    for (unsigned line = 2; line < 102; line++) {
        if (line == bad_at)
            fputs(bad_text, f);
        else if (line == bad_at2)
            fputs(bad_text2, f);
        else
            fprintf(f, "bat%03u,bat%03u@batch.example\n", line, line);
    }
    rewind(f);
    return f;
}

/* Rows go in several at a time: a refused row still names its own line,
 * wherever it is in its group, and the first wrong line in the file is the
 * one reported, whatever its kind. */
static void test_import_batches(md_store *s)
{
    md_error err = { 0 };
    unsigned long rows = 0;
    md_store_account_list l;
    static const struct { unsigned at; const char *text; unsigned at2; const char *text2;
                          const char *want; md_status st; } bad[] = {
        { 40, "bat035,other@batch.example\n", 0, NULL, "line 40: ", MD_PERMFAIL },   /* same group */
        { 33, "bat002,other@batch.example\n", 0, NULL, "line 33: ", MD_PERMFAIL },   /* first of a group */
        { 80, "bat003,other@batch.example\n", 0, NULL, "line 80: ", MD_PERMFAIL },   /* an earlier group */
        { 101, "bat100,other@batch.example\n", 0, NULL, "line 101: ", MD_PERMFAIL }, /* the last row */
        { 45, "big00001,other@batch.example\n", 0, NULL, "line 45: ", MD_PERMFAIL }, /* in the store */
        { 10, "bat005,other@batch.example\n", 20, "bat020,not-an-address\n", "line 10: ", MD_PERMFAIL },
        { 10, "bat010,not-an-address\n", 20, "bat005,other@batch.example\n", "line 10: ", MD_CONFIG },
        { 70, "bat069,x@batch.example\n", 71, "\"open\n", "line 70: ", MD_PERMFAIL },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = batch_csv(bad[i].at, bad[i].text, bad[i].at2, bad[i].text2);
        rows = 7;
        md_status st = md_store_import_csv(s, f, 0, &AUD, &rows, &err);
        fclose(f);
        is_int(st, bad[i].st, "batch import %zu refused (%s)", i, err.text);
        ok(strstr(err.text, bad[i].want) != NULL, "names the line: '%s' in '%s'", bad[i].want, err.text);
        is_int(rows, 0, "nothing counted");
        md_store_find_by_username(s, "bat002", &l, &err);
        is_int(l.n, 0, "nothing imported");
        md_store_account_list_clear(&l);
    }
    FILE *f = batch_csv(0, NULL, 0, NULL);
    is_int(md_store_import_csv(s, f, 0, &AUD, &rows, &err), MD_OK, "a batch import (%s)", err.text);
    fclose(f);
    is_int(rows, 100, "every row counted");
    static const char *const some[] = { "bat002", "bat033", "bat034", "bat097", "bat098", "bat101" };
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
        md_store_find_by_username(s, some[i], &l, &err);
        is_int(l.n, 1, "%s imported", some[i]);
        md_store_account_list_clear(&l);
    }
    unsigned long n = 0;
    md_store_domain_accounts(s, "batch.example", &n, &err);
    is_int(n, 100, "the domain count");
}

/* An import larger than the store: SQLite makes the lookup indexes again
 * after the rows.  Whether it succeeds or fails at its last line, the
 * store has the same indexes, and the rows all or none. */
static void test_import_large(md_store *s, const char *uri)
{
    enum { N = 25000 };
    md_error err = { 0 };
    unsigned long rows = 0;
    md_store_account_list l;
    char *before = account_indexes(uri);
    ok(strstr(before, "accounts_email") && strstr(before, "accounts_domain"), "the indexes of accounts");
    static const struct { const char *tail, *want; md_status st; } bad[] = {
        { "bad,bad2,active\n", "line 25002: ", MD_CONFIG },                  /* not an address */
        { "other@large.example,big00007,active\n", "line 25002: ", MD_PERMFAIL },  /* a username again */
        { "\"open,x,active\n", "line 25002: ", MD_CONFIG },                 /* CSV syntax */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = large_csv(N, bad[i].tail);
        rows = 7;
        md_status st = md_store_import_csv(s, f, 0, &AUD, &rows, &err);
        fclose(f);
        is_int(st, bad[i].st, "a large import failing at its last line (%s)", err.text);
        ok(strstr(err.text, bad[i].want) != NULL, "names the line: '%s' in '%s'", bad[i].want, err.text);
        is_int(rows, 0, "nothing counted");
        md_store_find_by_username(s, "big00000", &l, &err);
        is_int(l.n, 0, "nothing imported");
        md_store_account_list_clear(&l);
        char *after = account_indexes(uri);
        is_str(after, before, "the indexes as they were");
        free(after);
    }
    FILE *f = large_csv(N, NULL);
    is_int(md_store_import_csv(s, f, 0, &AUD, &rows, &err), MD_OK, "a large import (%s)", err.text);
    fclose(f);
    is_int(rows, N, "every row counted");
    char *after = account_indexes(uri);
    is_str(after, before, "the same indexes after it");
    free(after);
    free(before);
    char key[MD_ADDRESS_MAX + 1];
    key_of("big.12345@D0.large.example", key);
    md_store_find_by_email(s, key, &l, &err);
    is_int(l.n, 1, "found by its address");
    if (l.n) {
        is_str(l.v[0].username, "big12345", "the right account");
        is_int(l.v[0].status, MD_STORE_LOCKED, "with its status");
    }
    md_store_account_list_clear(&l);
    unsigned long n = 0;
    md_store_domain_accounts(s, "d3.large.example", &n, &err);
    is_int(n, N / 5, "the domain counts");
    if (strncmp(uri, "sqlite:", 7) == 0) {
        db *d = NULL;
        db_result r;
        md_status st = db_open(uri, 0, &d, &err);
        if (st == MD_OK)
            st = db_run(d, "PRAGMA integrity_check", NULL, 0, &r, &err);
        if (st == MD_OK) {
            is_str(r.nrows ? DB_VAL(&r, 0, 0) : "", "ok", "the file's integrity (indexes against rows)");
            db_result_clear(&r);
        } else {
            ok(0, "integrity check: %s", err.text);
        }
        /* made again after the rows, the index is defined after every table */
        if (st == MD_OK)
            st = db_run(d, "SELECT (SELECT rowid FROM sqlite_master WHERE name = 'accounts_email')"
                           " > (SELECT max(rowid) FROM sqlite_master WHERE type = 'table')", NULL, 0, &r, &err);
        if (st == MD_OK) {
            is_str(r.nrows ? DB_VAL(&r, 0, 0) : "", "1", "the lookup indexes were made after the rows");
            db_result_clear(&r);
        }
        db_close(d);
    }
}

static void test_product(md_store *s, const char *uri)
{
    md_error err = { 0 };
    /* The store's own file stands in for a product's database, with the
     * product's own column names mapped by SQL. */
    md_store_product p = {
        .uri = uri,
        .by_email = "SELECT id, username AS username, email, CASE WHEN status = 'locked' THEN 'LOCKED'"
                    " ELSE status END AS status, auth, email_verified, '2024-01-02 03:04:05+00' AS created_at"
                    " FROM accounts WHERE email_normalized = $1 ORDER BY id",
        .by_username = "SELECT username, email FROM accounts WHERE username = $1",
        .sessions = "SELECT id, created_at, expires_at, revoked_at FROM sessions WHERE account_id = $1",
    };
    is_int(md_store_use_product(s, &p, &err), MD_OK, "use product mapping (%s)", err.text);
    ok(md_store_has_product(s), "has product");
    md_store_account_list l;
    char key[MD_ADDRESS_MAX + 1];
    key_of("alice@example.com", key);
    is_int(md_store_find_by_email(s, key, &l, &err), MD_OK, "mapped find by email (%s)", err.text);
    is_int(l.n, 2, "two accounts through the mapping");
    if (l.n)
        is_int(l.v[0].created_at, 1704164645LL, "ISO time from the product");
    md_store_account_list_clear(&l);
    md_store_find_by_username(s, "bob", &l, &err);
    is_int(l.n, 1, "mapped find by username");
    if (l.n)
        is_int(l.v[0].email_verified, 1, "no email_verified column: taken as verified");
    md_store_account_list_clear(&l);
    md_store_find_also(s, "johnsmith@gmail.com", key, &l, &err);
    is_int(l.n, 0, "no also query mapped: no hints");
    md_store_account_list_clear(&l);
    int64_t one = 1;
    is_int(md_store_sessions_revoke(s, &one, 1, 1, &AUD, NULL, &err), MD_CONFIG,
           "revoking through a read-only product is refused");
    FILE *f = text_file("username,email\nx,x@example.com\n");
    is_int(md_store_import_csv(s, f, 0, &AUD, NULL, &err), MD_CONFIG, "import into a product refused");
    fclose(f);
    md_store_product badp = p;
    badp.by_email = "SELECT nonsense FROM nowhere WHERE x = $1";
    md_store *s3 = NULL;
    if (md_store_open(uri, 0, &s3, &err) == MD_OK && md_store_use_product(s3, &badp, &err) == MD_OK) {
        md_status st = md_store_find_by_email(s3, key, &l, &err);
        ok(st == MD_CONFIG, "a broken mapping is a configuration error (%s)", err.text);
        md_store_account_list_clear(&l);
    }
    md_store_free(s3);
    badp.by_email = "SELECT username, email FROM accounts WHERE email_normalized = $1; DELETE FROM accounts";
    s3 = NULL;
    if (md_store_open(uri, 0, &s3, &err) == MD_OK && md_store_use_product(s3, &badp, &err) == MD_OK) {
        md_status st = md_store_find_by_email(s3, key, &l, &err);
        ok(st == MD_CONFIG, "a mapping with two statements is refused (%s)", err.text);
        md_store_account_list_clear(&l);
    }
    md_store_free(s3);
}

static size_t audit_count(md_store *s)
{
    md_store_audit_list l;
    md_error err = { 0 };
    if (md_store_audit_recent(s, 100000, &l, &err) != MD_OK)
        return 0;
    size_t n = l.n;
    md_store_audit_list_clear(&l);
    return n;
}

static void test_bounces(md_store *s)
{
    md_error err = { 0 };
    md_store_suppression x[] = {
        { .address = "gone@example.com", .reason = "hard-bounce", .text = "550 5.1.1 user unknown" },
        { .address = "angry@example.com", .reason = "complaint", .text = "abuse report" },
    };
    int applied = -1, already = -1;
    unsigned long changed = 99;
    is_int(md_store_bounce_applied(s, "b1@mx.example.net", &applied, &err), MD_OK, "bounce applied? (%s)", err.text);
    is_int(applied, 0, "a new bounce was not applied");
    size_t audits = audit_count(s);
    is_int(md_store_bounce_apply(s, "b1@mx.example.net", "file:b1.eml", x, 2, "tester", &changed, &already, &err),
           MD_OK, "apply a bounce (%s)", err.text);
    is_int(changed, 2, "two suppressions written");
    is_int(already, 0, "not applied before");
    is_int(audit_count(s), audits + 2, "one audit record per suppression");
    md_store_audit_list al;
    if (md_store_audit_recent(s, 1, &al, &err) == MD_OK && al.n == 1) {
        is_str(al.v[0].action, "bounce.suppress", "audit action");
        ok(al.v[0].detail && strstr(al.v[0].detail, "b1@mx.example.net"), "audit detail names the bounce");
        md_store_audit_list_clear(&al);
    }
    md_store_suppression got;
    is_int(md_store_suppression_get(s, "gone@example.com", &got, &err), MD_OK, "suppressed by the bounce");
    is_str(got.reason, "hard-bounce", "bounce suppression reason");
    is_str(got.text, "550 5.1.1 user unknown", "bounce suppression text");
    ok(got.since > 0, "bounce suppression has a time");
    md_store_suppression_clear(&got);
    md_store_bounce_applied(s, "b1@mx.example.net", &applied, &err);
    is_int(applied, 1, "the bounce is remembered");
    is_int(md_store_bounce_apply(s, "b1@mx.example.net", "file:b1.eml", x, 2, "tester", &changed, &already, &err),
           MD_OK, "apply the same bounce again");
    is_int(already, 1, "second time: already applied");
    is_int(changed, 0, "second time: nothing changed");
    is_int(audit_count(s), audits + 2, "second time: no audit record");
    md_store_suppression y[] = {
        { .address = "gone@example.com", .reason = "complaint", .text = "later" },
        { .address = "new@example.com", .reason = "hard-bounce", .text = "550 5.1.1" },
    };
    is_int(md_store_bounce_apply(s, "b2@mx.example.net", NULL, y, 2, "tester", &changed, &already, &err), MD_OK,
           "a second bounce");
    is_int(changed, 1, "an address already suppressed keeps its suppression");
    md_store_suppression_get(s, "gone@example.com", &got, &err);
    is_str(got.reason, "hard-bounce", "the first reason stays");
    md_store_suppression_clear(&got);
    is_int(md_store_sync_relaxed(s, 1, &err), MD_OK, "relaxed sync for a bounce run (%s)", err.text);
    md_store_suppression z[] = { { .address = "relaxed@example.com", .reason = "hard-bounce", .text = "550" } };
    is_int(md_store_bounce_apply(s, "b4@mx.example.net", NULL, z, 1, "tester", &changed, &already, &err), MD_OK,
           "apply under relaxed sync");
    is_int(md_store_sync_relaxed(s, 0, &err), MD_OK, "full sync again, with a checkpoint (%s)", err.text);
    md_store_bounce_applied(s, "b4@mx.example.net", &applied, &err);
    is_int(applied, 1, "the relaxed commit is there");
    md_store_suppression_remove(s, "relaxed@example.com", &AUD, &err);
    md_store_suppression bad[] = { { .address = "odd@example.com", .reason = "bored" } };
    is_int(md_store_bounce_apply(s, "b3@mx.example.net", NULL, bad, 1, "tester", &changed, &already, &err),
           MD_CONFIG, "a bad reason fails the whole bounce");
    md_store_bounce_applied(s, "b3@mx.example.net", &applied, &err);
    is_int(applied, 0, "and the failed bounce is not remembered");
    is_int(md_store_bounce_apply(s, "", NULL, x, 1, "tester", &changed, &already, &err), MD_CONFIG,
           "a bounce without a key is refused");
    for (size_t i = 0; i < 2; i++) {
        md_store_suppression_remove(s, x[i].address, &AUD, &err);
        md_store_suppression_remove(s, y[i].address, &AUD, &err);
    }
}

/* A store made at schema version 1 (before applied bounces) is refused
 * until init migrates it, keeps its data, and then remembers bounces.
 * On PostgreSQL it lives in a schema of its own in the test database. */
/* The store's own fault reporting: the write check, a migration that
 * carries its audit record, a lost log record that does not go unnoticed.
 * (The faults themselves are made for real in test_store_faults.py.) */
static void test_faults(md_store *s, const char *uri)
{
    md_error err = { 0 }, lost = { 0 };
    int from = -1;
    is_int(md_store_writable(s, &err), MD_OK, "the store takes writes (%s)", err.text);
    is_int(md_store_log_error(s, &err), MD_OK, "no log record lost so far");
    md_store_audit a = { "tester", "init", "faults", NULL };
    is_int(md_store_migrate_audited(s, &a, &from, &err), MD_OK, "migrate with an audit record (%s)", err.text);
    is_int(from, MD_STORE_SCHEMA_VERSION, "nothing to migrate");
    md_store_audit_list al = { 0 };
    is_int(md_store_audit_recent(s, 1, &al, &err), MD_OK, "audit recent");
    is_str(al.n == 1 ? al.v[0].target : "", "faults", "the migration wrote its audit record");
    md_store_audit_list_clear(&al);

    md_store *ro = NULL;
    if (md_store_open(uri, MD_STORE_READONLY, &ro, &err) != MD_OK) {
        ok(0, "open read-only (%s)", err.text);
        return;
    }
    ok(md_store_writable(ro, &err) != MD_OK && strstr(err.text, "read-only"),
       "a store opened read-only does not take writes (%s)", err.text);
    md_store_send x = { .kind = "reminder", .to = "lost@example.com", .outcome = "accepted" };
    md_status st = md_store_send_add(ro, &x, &err);
    ok(st != MD_OK && err.text[0], "a send-log record cannot be written to it (%s)", err.text);
    ok(md_store_audit_add(ro, &a, NULL) != MD_OK, "nor an audit record");
    is_int(md_store_log_error(ro, &lost), st, "the first lost record is remembered");
    is_str(lost.text, err.text, "with its words");
    md_store_free(ro);
    is_int(md_store_log_error(s, &err), MD_OK, "another handle lost nothing");
}

static void test_migration_v1(const char *base)
{
    char uri[600];
    md_error err = { 0 };
    db *d = NULL;
    if (strncmp(base, "sqlite:", 7) == 0) {
        snprintf(uri, sizeof uri, "sqlite:%s/v1.db", tmpdir[0] ? tmpdir : "/tmp");
        if (!tmpdir[0])
            unlink(uri + 7);
    } else {
        if (db_open(base, 0, &d, &err) != MD_OK || db_exec(d, "DROP SCHEMA IF EXISTS v1 CASCADE; CREATE SCHEMA v1", &err) != MD_OK) {
            ok(0, "a schema for the version 1 store (%s)", err.text);
            db_close(d);
            return;
        }
        db_close(d);
        snprintf(uri, sizeof uri, "%s%soptions=-csearch_path%%3Dv1", base, strchr(base, '?') ? "&" : "?");
    }
    d = NULL;
    md_status st = db_open(uri, DB_CREATE, &d, &err);
    if (st == MD_OK)
        st = db_exec(d, store_migration(db_kind_of(d), 1), &err);
    if (st == MD_OK)
        st = db_exec(d, "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at BIGINT NOT NULL);"
                        "INSERT INTO schema_version VALUES (1, 1);"
                        "INSERT INTO suppressions (address, reason, since, bounce_text)"
                        " VALUES ('old@example.com', 'manual', 1790000000, NULL)", &err);
    db_close(d);
    is_int(st, MD_OK, "a version 1 store (%s)", err.text);
    md_store *s = NULL;
    st = md_store_open(uri, 0, &s, &err);
    ok(st == MD_CONFIG && strstr(err.text, "version 1"), "a version 1 store asks for init (%s)", err.text);
    md_store_free(s);
    s = NULL;
    int from = -1;
    is_int(md_store_open(uri, MD_STORE_CREATE, &s, &err), MD_OK, "open the version 1 store to migrate");
    if (s == NULL)
        return;
    is_int(md_store_migrate(s, &from, &err), MD_OK, "migrate from version 1 (%s)", err.text);
    is_int(from, 1, "migrated from version 1");
    md_store_free(s);
    s = NULL;
    is_int(md_store_open(uri, 0, &s, &err), MD_OK, "the migrated store opens (%s)", err.text);
    if (s == NULL)
        return;
    md_store_suppression got;
    is_int(md_store_suppression_get(s, "old@example.com", &got, &err), MD_OK, "the migration keeps the data");
    md_store_suppression_clear(&got);
    md_store_suppression x = { .address = "m@example.com", .reason = "hard-bounce", .text = "550" };
    unsigned long changed = 0;
    int already = 1;
    is_int(md_store_bounce_apply(s, "mig@mx.example.net", NULL, &x, 1, "tester", &changed, &already, &err), MD_OK,
           "the migrated store remembers bounces (%s)", err.text);
    is_int(changed, 1, "and applies them");
    md_store_free(s);
}

int main(int argc, char **argv)
{
    char uri[400];
    const char *env = getenv("MAILDIAG_TEST_STORE");
    test_time();
    if (argc > 1 || (env && *env)) {
        snprintf(uri, sizeof uri, "%s", argc > 1 ? argv[1] : env);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/md-t-store-XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(uri, sizeof uri, "sqlite:%s/store.db", tmpdir);
    }
    printf("# store %s\n", uri);
    md_store *s = open_fresh(uri);
    if (s) {
        printf("# engine %s\n", md_store_engine(s));
        test_accounts(s);
        test_suppressions(s);
        test_bounces(s);
        test_logs(s);
        test_rate(s);
        test_import(s, uri);
        test_import_large(s, uri);
        test_import_batches(s);
        test_product(s, uri);
        test_faults(s, uri);
        md_store_free(s);
        test_migration_v1(uri);
    }
    if (tmpdir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", tmpdir);
    }
    return tap_done();
}
