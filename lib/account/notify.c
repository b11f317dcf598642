/* lib/account notify: account emails through lib/message, lib/token, lib/smtp. */
#include "config.h"
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *template_for(md_account_mail mail, int no_account)
{
    if (no_account)
        return "no-account";
    switch (mail) {
    case MD_ACCOUNT_MAIL_REMINDER: return "username";
    case MD_ACCOUNT_MAIL_VERIFY: return "verify";
    case MD_ACCOUNT_MAIL_RESET: return "reset";
    case MD_ACCOUNT_MAIL_VERIFIED: return "verified";
    case MD_ACCOUNT_MAIL_EXPLAIN_SSO: return "explain-sso";
    case MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED: return "explain-deactivated";
    case MD_ACCOUNT_MAIL_EXPLAIN_LOCKED: return "explain-locked";
    }
    return "no-account";
}

const char *md_account_token_state(const md_store_account *a, const char *kind, char *buf,
                                   size_t size)
{
    if (strcmp(kind, "reset") == 0)
        snprintf(buf, size, "reset:%s:%s:%lld", md_store_status_name(a->status),
                 md_store_auth_name(a->auth), (long long)a->password_changed_at);
    else
        snprintf(buf, size, "verify:%d:%s", a->email_verified, a->email);
    return buf;
}

static void log_send(md_store *s, const char *key, const md_account_sent *x)
{
    md_error e;
    md_store_send rec = { .at = (int64_t)time(NULL), .kind = (char *)x->kind, .to = (char *)key,
                          .message_id = x->message_id[0] ? (char *)x->message_id : NULL,
                          .outcome = (char *)md_smtp_outcome_name(x->outcome),
                          .reply = x->reply[0] ? (char *)x->reply : NULL };
    md_store_send_add(s, &rec, &e);
}

md_status md_account_mail_one(md_store *s, const md_account_mailer *m, const char *to,
                              const char *key, md_account_mail mail,
                              const md_store_account *a, const char *const *usernames,
                              size_t nusernames, md_account_sent *sent, md_error *err)
{
    md_message *msg = NULL;
    char *token = NULL, *link = NULL, state[512];
    md_status st = MD_OK;
    memset(sent, 0, sizeof *sent);
    snprintf(sent->kind, sizeof sent->kind, "%s",
             a == NULL ? "no-account" : md_account_mail_name(mail));
    sent->outcome = MD_SMTP_FAILED;
    sent->status = MD_SEV_UNKNOWN;

    md_message_request mr = m->message;
    mr.template_name = template_for(mail, a == NULL);
    mr.to = to;
    mr.username = a ? a->username : NULL;
    mr.usernames = usernames;
    mr.nusernames = nusernames;
    if (a && (mail == MD_ACCOUNT_MAIL_VERIFY || mail == MD_ACCOUNT_MAIL_RESET)) {
        const char *kind = mail == MD_ACCOUNT_MAIL_RESET ? "reset" : "verify";
        int64_t now = (int64_t)time(NULL), ttl = m->ttl ? m->ttl : MD_TOKEN_TTL_DEFAULT;
        char account[32];
        if (m->keys == NULL) {
            st = md_error_set(err, MD_CONFIG, "account.token", "no token keys: cannot make a %s link", kind);
            goto fail;
        }
        snprintf(account, sizeof account, "%lld", (long long)a->id);
        token = md_token_issue(m->keys, kind, account, md_account_token_state(a, kind, state, sizeof state),
                               now, ttl, err);
        if (token == NULL) {
            st = err ? err->status : MD_INTERNAL;
            goto fail;
        }
        const char *base = mail == MD_ACCOUNT_MAIL_RESET ? m->reset_url : m->verify_url;
        link = md_token_link(base, kind, token);
        mr.link = link;
        mr.expires = now + ttl;
        mr.link_is_test = md_token_keys_throwaway_p(m->keys);
    }
    st = md_message_compose(&mr, &msg, err);
    if (st != MD_OK)
        goto fail;
    snprintf(sent->message_id, sizeof sent->message_id, "%s", msg->message_id);

    md_smtp_request req = m->route;
    req.mail_from = m->message.from;
    req.rcpt_to = to;
    req.data = msg->data;
    req.len = msg->len;
    req.message_id = msg->message_id;
    md_smtp_result res;
    st = md_smtp_send(m->smtp, &req, &res, err);
    if (st == MD_OK) {
        sent->outcome = res.outcome;
        sent->status = md_report_status(res.findings);
        if (res.reply.code)
            snprintf(sent->reply, sizeof sent->reply, "%d%s%s %s", res.reply.code,
                     res.reply.enhanced[0] ? " " : "", res.reply.enhanced, res.reply.text);
        else {
            /* No reply decided it (connect, TLS, a refused MX address ...): the
             * first finding that is not ok says why. */
            const char *why = "";
            for (size_t i = 0; i < md_report_count(res.findings) && !*why; i++)
                if (md_report_get(res.findings, i)->severity != MD_SEV_OK)
                    why = md_report_get(res.findings, i)->summary;
            snprintf(sent->reply, sizeof sent->reply, "%s at %s%s%s", md_smtp_outcome_name(res.outcome),
                     md_smtp_phase_name(res.phase), *why ? ": " : "", why);
        }
    }
    md_smtp_result_clear(&res);
    if (st != MD_OK)
        goto fail;
    log_send(s, key, sent);
    goto done;
fail:
    /* The send log says that it failed, and why, whatever the cause. */
    snprintf(sent->reply, sizeof sent->reply, "%s", err ? err->text : "failed");
    sent->outcome = MD_SMTP_FAILED;
    sent->status = MD_SEV_UNKNOWN;
    log_send(s, key, sent);
done:
    md_message_free(msg);
    free(token);
    free(link);
    return st;
}

md_status md_account_mail_request(md_store *s, const md_account_mailer *m, const char *to,
                                  const char *key, md_account_want want,
                                  const md_store_account_list *acc, unsigned *n, md_error *err)
{
    md_account_sent sent;
    md_store_suppression sup;
    md_status st = md_store_suppression_get(s, key, &sup, err);
    *n = 0;
    if (st == MD_OK) {
        md_store_send rec = { .at = (int64_t)time(NULL), .kind = (char *)md_account_want_name(want),
                              .to = (char *)key, .outcome = "suppressed", .reply = sup.reason };
        md_store_send_add(s, &rec, err);
        md_store_suppression_clear(&sup);
        return MD_OK;
    }
    if (st != MD_NOTFOUND)
        return st;
    if (acc->n == 0) {
        (*n)++;
        return md_account_mail_one(s, m, to, key, MD_ACCOUNT_MAIL_REMINDER, NULL, NULL, 0, &sent, err);
    }
    /* One reminder lists every username that gets one. */
    const char **names = md_xcalloc(acc->n + 1, sizeof *names);
    size_t nn = 0;
    const md_store_account *first = NULL;
    for (size_t i = 0; i < acc->n; i++)
        if (md_account_mail_for(&acc->v[i], want) == MD_ACCOUNT_MAIL_REMINDER) {
            names[nn++] = acc->v[i].username;
            if (first == NULL)
                first = &acc->v[i];
        }
    st = MD_OK;
    if (nn > 0) {
        (*n)++;
        st = md_account_mail_one(s, m, to, key, MD_ACCOUNT_MAIL_REMINDER, first, names, nn, &sent, err);
    }
    for (size_t i = 0; st == MD_OK && i < acc->n; i++) {
        md_account_mail mail = md_account_mail_for(&acc->v[i], want);
        if (mail == MD_ACCOUNT_MAIL_REMINDER)
            continue;
        (*n)++;
        st = md_account_mail_one(s, m, to, key, mail, &acc->v[i], NULL, 0, &sent, err);
    }
    free(names);
    return st;
}
