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
 * for it), so a store that is unavailable for a while (a lock held beyond
 * the busy timeout, a PostgreSQL restart) is waited out this long rather
 * than the request dropped. */
#define STORE_PATIENCE_MS 60000

/* Opens the store, reads the accounts on key and writes the audit record
 * of the plan, trying again while the store fails for a reason that
 * passes.  0 when done; nothing may be sent without its audit record. */
static int audited_plan(ucli *u, const char *key, md_account_want want, md_store_account_list *acc)
{
    int64_t deadline = md_now_ms() + STORE_PATIENCE_MS;
    long pause_ms = 100;
    char action[32];
    snprintf(action, sizeof action, "selfcheck.%s", md_account_want_name(want));
    for (;;) {
        md_error err = { 0 };
        md_status st = MD_TEMPFAIL;   /* the store opened a moment ago in the parent */
        if (ucli_open_store(u, 0) == 0 && (st = md_store_find_by_email(u->store, key, acc, &err)) == MD_OK) {
            char *plan = plan_text(acc, want);
            md_store_audit a = { "selfcheck", action, key, plan };
            st = md_store_audit_add(u->store, &a, &err);
            free(plan);
            if (st == MD_OK)
                return 0;
        }
        md_store_account_list_clear(acc);
        md_store_free(u->store);
        u->store = NULL;
        if (st != MD_TEMPFAIL || md_now_ms() + pause_ms > deadline)
            return -1;
        struct timespec ts = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        pause_ms = pause_ms < 1000 ? pause_ms * 2 : 2000;
    }
}

void selfmail_run(ucli *u, const char *to, const char *key, md_account_want want)
{
    md_error err = { 0 };
    md_store_account_list acc = { 0 };
    usermail um = { 0 };
    if (audited_plan(u, key, want, &acc) != 0)
        return;
    unsigned n = 0;
    if (usermail_open(u, &um) == 0)
        md_account_mail_request(u->store, &um.mailer, to, key, want, &acc, &n, &err);
    else {
        md_store_send rec = { .at = (int64_t)time(NULL), .kind = (char *)md_account_want_name(want),
                              .to = (char *)key, .outcome = "failed",
                              .reply = "sending is not configured ([mail] in the configuration)" };
        md_store_send_add(u->store, &rec, &err);
    }
    usermail_clear(&um);
    md_store_account_list_clear(&acc);
}
