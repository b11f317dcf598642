/* tools/selfmail: what the owner of an address gets from maildiag-selfcheck. */
#include "config.h"
#include "selfmail.h"
#include "usermail.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The plan for one request: which email each account gets. */
static char *plan_text(const md_store_account_list *acc, md_account_want want)
{
    size_t cap = 64 + acc->n * 96, o = 0;
    char *s = md_xmalloc(cap);
    s[0] = '\0';
    if (acc->n == 0)
        return strcpy(s, "no-account");
    for (size_t i = 0; i < acc->n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%.60s:%s", i ? " " : "", acc->v[i].username,
                              md_account_mail_name(md_account_mail_for(&acc->v[i], want)));
    return s;
}

/* The request was accepted before this runs (the answer does not wait
 * for it), so a store that is unavailable for a while (another writer's
 * lock, a PostgreSQL restart) is waited out this long rather than the
 * request dropped.  SQLite locks are waited out by the busy timeout of a
 * patient store (MD_STORE_PATIENT); a lost connection by opening it anew. */
#define STORE_PATIENCE_MS 60000

typedef md_status (*store_step)(ucli *u, void *arg, md_error *err);

/* Runs step on the store (opened patient when needed), and again on the
 * store opened anew while it fails for a reason that passes, until
 * deadline.  0 when step succeeded. */
static int patiently(ucli *u, int64_t deadline, store_step step, void *arg)
{
    long pause_ms = 100;
    for (;;) {
        md_error err = { 0 };
        md_status st = MD_TEMPFAIL;   /* the store opened a moment ago in the parent */
        if ((u->store || ucli_open_store(u, MD_STORE_PATIENT) == 0) && (st = step(u, arg, &err)) == MD_OK)
            return 0;
        md_store_free(u->store);
        u->store = NULL;
        if (st != MD_TEMPFAIL || md_now_ms() + pause_ms > deadline)
            return -1;
        struct timespec ts = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        pause_ms = pause_ms < 1000 ? pause_ms * 2 : 2000;
    }
}

typedef struct plan_step {
    const char *key;
    md_account_want want;
    md_store_account_list *acc;
} plan_step;

/* Reads the accounts on the address and writes the audit record of the
 * plan: nothing may be sent without it. */
static md_status plan_audited(ucli *u, void *arg, md_error *err)
{
    plan_step *p = arg;
    char action[32];
    md_store_account_list_clear(p->acc);
    md_status st = md_store_find_by_email(u->store, p->key, p->acc, err);
    if (st != MD_OK)
        return st;
    snprintf(action, sizeof action, "selfcheck.%s", md_account_want_name(p->want));
    char *plan = plan_text(p->acc, p->want);
    md_store_audit a = { "selfcheck", action, p->key, plan };
    st = md_store_audit_add(u->store, &a, err);
    free(plan);
    return st;
}

static md_status audit_one(ucli *u, void *arg, md_error *err)
{
    return md_store_audit_add(u->store, arg, err);
}

void selfmail_run(ucli *u, const char *to, const char *key, md_account_want want)
{
    md_error err = { 0 }, lost;
    md_store_account_list acc = { 0 };
    usermail um = { 0 };
    int64_t deadline = md_now_ms() + STORE_PATIENCE_MS;
    plan_step p = { key, want, &acc };
    if (patiently(u, deadline, plan_audited, &p) != 0) {
        md_store_account_list_clear(&acc);
        return;
    }
    unsigned n = 0;
    if (usermail_open(u, &um) == 0)
        md_account_mail_request(u->store, &um.send.m, to, key, want, &acc, &n, &err);
    else {
        md_store_send rec = { .at = (int64_t)time(NULL), .kind = (char *)md_account_want_name(want),
                              .to = (char *)key, .outcome = "failed",
                              .reply = "sending is not configured ([mail] in the configuration)" };
        md_store_send_add(u->store, &rec, &err);
    }
    if (md_store_log_error(u->store, &lost) != MD_OK) {
        /* An email went out, or was tried, and its send-log record did not
         * get in (the store failed after the audit record): nobody hears
         * this process, so the audit log says so. */
        char detail[2 * MD_ERROR_TEXT_MAX + 40];
        snprintf(detail, sizeof detail, "a send-log record was lost: %s%s%s", lost.text,
                 lost.peer[0] ? ": " : "", lost.peer);
        md_store_audit a = { "selfcheck", "selfcheck.send_log_lost", key, detail };
        md_store_free(u->store);   /* its connection may be the one that failed */
        u->store = NULL;
        patiently(u, md_now_ms() + STORE_PATIENCE_MS, audit_one, &a);
    }
    usermail_clear(&um);
    md_store_account_list_clear(&acc);
}
