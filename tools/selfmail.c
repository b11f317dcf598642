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

void selfmail_run(ucli *u, const char *to, const char *key, md_account_want want)
{
    md_error err = { 0 };
    md_store_account_list acc = { 0 };
    usermail um = { 0 };
    if (ucli_open_store(u, 0) != 0)
        return;
    if (md_store_find_by_email(u->store, key, &acc, &err) != MD_OK)
        return;
    char action[32];
    snprintf(action, sizeof action, "selfcheck.%s", md_account_want_name(want));
    char *plan = plan_text(&acc, want);
    md_store_audit a = { "selfcheck", action, key, plan };
    md_store_audit_add(u->store, &a, &err);
    free(plan);
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
