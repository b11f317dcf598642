/* lib/account: account state -> findings and the self-service answer. */
#include "config.h"
#include "account.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const want_names[] = { "username", "verify", "reset" };
static const char *const mail_names[] = {
    "reminder", "verify", "reset", "verified", "explain-sso", "explain-deactivated",
    "explain-locked",
};

const char *md_account_want_name(md_account_want w)
{
    return (unsigned)w < 3 ? want_names[w] : "username";
}

int md_account_want_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s && strcasecmp(s, want_names[i]) == 0)
            return i;
    return -1;
}

const char *md_account_mail_name(md_account_mail m)
{
    return (unsigned)m < sizeof mail_names / sizeof mail_names[0] ? mail_names[m] : "reminder";
}

int md_account_can_receive(const md_store_account *a)
{
    return a->status != MD_STORE_DEACTIVATED;
}

md_account_mail md_account_mail_for(const md_store_account *a, md_account_want want)
{
    if (a->status == MD_STORE_DEACTIVATED)
        return MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED;
    switch (want) {
    case MD_ACCOUNT_WANT_VERIFY:
        return a->email_verified ? MD_ACCOUNT_MAIL_VERIFIED : MD_ACCOUNT_MAIL_VERIFY;
    case MD_ACCOUNT_WANT_RESET:
        if (a->auth == MD_STORE_SSO)
            return MD_ACCOUNT_MAIL_EXPLAIN_SSO;
        /* Locking can be a security measure: a reset link must not undo it. */
        if (a->status == MD_STORE_LOCKED)
            return MD_ACCOUNT_MAIL_EXPLAIN_LOCKED;
        return MD_ACCOUNT_MAIL_RESET;
    case MD_ACCOUNT_WANT_USERNAME:
    default:
        return MD_ACCOUNT_MAIL_REMINDER;
    }
}

static json_t *jtime(int64_t t)
{
    char buf[32];
    if (t == 0)
        return json_null();
    md_store_time_format(t, buf, sizeof buf);
    return json_string(buf);
}

/* Stored text as a JSON string.  json_string refuses ill-formed UTF-8;
 * what it takes is kept exactly (JSON escapes control characters), what it
 * refuses is sanitized (well-formed text kept, the rest '?'). */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j == NULL) {
        char *c = md_sanitize_dup(s, strlen(s));
        j = json_string(c);
        free(c);
    }
    return j;
}

static const char *sso_name(const md_store_account *a)
{
    return a->sso_provider && *a->sso_provider ? a->sso_provider : "the company's identity provider";
}

static json_t *account_json(const md_store_account *a, unsigned sessions)
{
    json_t *o = json_object();
    json_object_set_new(o, "username", jstr(a->username));
    json_object_set_new(o, "email", jstr(a->email));
    json_object_set_new(o, "status", json_string(md_store_status_name(a->status)));
    json_object_set_new(o, "auth", json_string(md_store_auth_name(a->auth)));
    json_object_set_new(o, "sso_provider", jstr(a->auth == MD_STORE_SSO ? a->sso_provider : NULL));
    json_object_set_new(o, "email_verified", json_boolean(a->email_verified));
    json_object_set_new(o, "pending_email", jstr(a->pending_email));
    json_object_set_new(o, "created_at", jtime(a->created_at));
    json_object_set_new(o, "last_login_at", jtime(a->last_login_at));
    json_object_set_new(o, "password_changed_at", jtime(a->password_changed_at));
    json_object_set_new(o, "active_sessions", json_integer(sessions));
    /* Which of the product's emails this account gets. */
    json_t *m = json_object();
    for (int w = 0; w < 3; w++) {
        md_account_mail mail = md_account_mail_for(a, (md_account_want)w);
        json_object_set_new(m, want_names[w], json_string(md_account_mail_name(mail)));
    }
    json_object_set_new(o, "emails", m);
    return o;
}

/* One account's findings.  others_ok: another account on the address can
 * receive email (a deactivated one then is no longer critical). */
static void account_findings(const md_store_account *a, int others_ok, md_report *rep)
{
    const char *u = a->username;
    int fine = 1;
    if (a->status == MD_STORE_DEACTIVATED) {
        md_report_add(rep, "account.deactivated", others_ok ? MD_SEV_WARNING : MD_SEV_DEFAULT,
                      "account %s is deactivated: the product sends it no email at all;"
                      " support can reactivate it", u);
        return;
    }
    if (a->status == MD_STORE_LOCKED) {
        md_report_add(rep, "account.locked", MD_SEV_DEFAULT,
                      "account %s is locked: sign-in fails and no password-reset link is sent"
                      " until support unlocks it", u);
        fine = 0;
    }
    if (a->auth == MD_STORE_SSO) {
        md_report_add(rep, "account.sso", MD_SEV_DEFAULT,
                      "account %s signs in through %s (SSO): password-reset emails are never sent;"
                      " sign in through %s", u, sso_name(a), sso_name(a));
        fine = 0;
    }
    if (!a->email_verified) {
        md_report_add(rep, "account.unverified", MD_SEV_DEFAULT,
                      "account %s never verified its address: only verification emails are sent"
                      " until it does; send a fresh verification link", u);
        fine = 0;
    }
    if (a->pending_email && *a->pending_email) {
        md_report_add(rep, "account.pending_change", MD_SEV_DEFAULT,
                      "account %s has an unconfirmed change of address to %s: the confirmation"
                      " email went there, not here", u, a->pending_email);
        fine = 0;
    }
    if (fine)
        md_report_add(rep, "account.ok", MD_SEV_DEFAULT,
                      "account %s: active, verified, password sign-in: every product email is sent", u);
}

static void add_domain(const md_account_facts *f, md_report *rep)
{
    const md_address *a = f->address;
    json_t *d = json_object();
    json_object_set_new(d, "name", json_string(a->domain));
    if (a->domain_unicode[0])
        json_object_set_new(d, "unicode", jstr(a->domain_unicode));
    const char *mail = !f->mx_checked ? "not_checked"
                     : f->mx == MD_ADDRESS_MX_WORKS ? "ok"
                     : f->mx == MD_ADDRESS_MX_NONE ? "none" : "unknown";
    json_object_set_new(d, "mail", json_string(mail));
    if (f->mx_detail)
        json_object_set_new(d, "detail", jstr(f->mx_detail));
    md_report_set(rep, "domain", d);
    if (!f->mx_checked)
        return;
    if (f->mx == MD_ADDRESS_MX_NONE)
        md_report_add(rep, "address.no_mail", MD_SEV_DEFAULT,
                      "the domain %s cannot receive mail (%s): no email can reach this address",
                      a->domain, f->mx_detail ? f->mx_detail : "no mail route");
    else if (f->mx == MD_ADDRESS_MX_UNKNOWN)
        md_report_add(rep, "address.dns_temporary", MD_SEV_DEFAULT,
                      "could not find out whether %s receives mail (%s)", a->domain,
                      f->mx_detail ? f->mx_detail : "DNS failed temporarily");
}

static void add_sent(const md_account_facts *f, md_report *rep)
{
    json_t *arr = json_array();
    for (size_t i = 0; f->sent && i < f->sent->n; i++) {
        const md_store_send *x = &f->sent->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "at", jtime(x->at));
        json_object_set_new(o, "kind", jstr(x->kind));
        json_object_set_new(o, "message_id", jstr(x->message_id));
        json_object_set_new(o, "outcome", jstr(x->outcome));
        json_object_set_new(o, "reply", jstr(x->reply));
        json_array_append_new(arr, o);
        char when[32];
        md_store_time_format(x->at, when, sizeof when);
        md_report_add_detail(rep, "sent %s %s: %s%s%s", when, x->kind, x->outcome,
                             x->reply ? " - " : "", x->reply ? x->reply : "");
    }
    md_report_set(rep, "sent", arr);
    if (f->sent && f->sent->n > 0) {
        const md_store_send *last = &f->sent->v[0];
        /* "accepted" (lib/smtp's word), "sent", or held back on purpose. */
        if (strcmp(last->outcome, "accepted") != 0 && strcmp(last->outcome, "sent") != 0 &&
            strcmp(last->outcome, "suppressed") != 0) {
            md_finding *fd = md_report_add(rep, "address.last_send_failed", MD_SEV_DEFAULT,
                                           "the last email to this address (%s) was %s%s%s",
                                           last->kind, last->outcome, last->reply ? ": " : "",
                                           last->reply ? last->reply : "");
            if (last->reply)
                md_finding_add_evidence(fd, "%s", last->reply);
        }
    }
}

void md_account_evaluate(const md_account_facts *f, md_report *rep)
{
    const md_address *a = f->address;
    const md_store_account_list *acc = f->accounts;
    size_t n = acc ? acc->n : 0;

    md_report_set(rep, "address", jstr(a->display));
    md_report_set(rep, "address_key", jstr(f->key));

    size_t receivers = 0;
    for (size_t i = 0; i < n; i++)
        receivers += md_account_can_receive(&acc->v[i]) != 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const md_store_account *x = &acc->v[i];
        unsigned ses = f->active_sessions ? f->active_sessions[i] : 0;
        json_array_append_new(arr, account_json(x, ses));
        char last[32];
        md_store_time_format(x->last_login_at, last, sizeof last);
        md_report_add_detail(rep, "account %s: %s, %s%s%s, %s, last login %s, %u active session%s",
                             x->username, md_store_status_name(x->status),
                             md_store_auth_name(x->auth), x->auth == MD_STORE_SSO ? " via " : "",
                             x->auth == MD_STORE_SSO ? sso_name(x) : "",
                             x->email_verified ? "verified" : "not verified",
                             last[0] ? last : "never", ses, ses == 1 ? "" : "s");
        int others_ok = receivers > (md_account_can_receive(x) ? 1u : 0u);
        account_findings(x, others_ok, rep);
    }
    md_report_set(rep, "accounts", arr);

    if (n == 0)
        md_report_add(rep, "account.none", MD_SEV_DEFAULT,
                      "no account uses the address %s: the product sends it no account emails",
                      a->display);

    json_t *also = json_array();
    for (size_t i = 0; f->also && i < f->also->n; i++) {
        const md_store_account *x = &f->also->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "username", jstr(x->username));
        json_object_set_new(o, "email", jstr(x->email));
        json_array_append_new(also, o);
        md_report_add(rep, "account.also_matches", MD_SEV_DEFAULT,
                      "account %s uses %s, which %s delivers to the same mailbox (dots and +tags"
                      " ignored): the person may have signed up with that spelling",
                      x->username, x->email, a->domain);
    }
    md_report_set(rep, "also_matches", also);

    if (f->suppression) {
        const md_store_suppression *s = f->suppression;
        json_t *o = json_object();
        json_object_set_new(o, "reason", jstr(s->reason));
        json_object_set_new(o, "since", jtime(s->since));
        json_object_set_new(o, "text", jstr(s->text));
        md_report_set(rep, "suppression", o);
        char since[32];
        md_store_time_format(s->since, since, sizeof since);
        md_finding *fd = md_report_add(rep, "address.suppressed", MD_SEV_DEFAULT,
                                       "the address is suppressed (%s since %s): nothing is sent to it%s%s",
                                       s->reason, since, f->suppression_advice ? "; " : "",
                                       f->suppression_advice ? f->suppression_advice : "");
        if (s->text && *s->text)
            md_finding_add_evidence(fd, "%s", s->text);
    } else {
        md_report_set(rep, "suppression", json_null());
    }

    if (f->typo && *f->typo) {
        json_t *o = json_object();
        json_object_set_new(o, "domain", json_string(a->domain));
        json_object_set_new(o, "suggestion", jstr(f->typo));
        char *fixed = md_xasprintf("%s@%s", a->local, f->typo);
        json_object_set_new(o, "address", jstr(fixed));
        md_report_set(rep, "typo", o);
        md_finding *fd = md_report_add(rep, "address.typo", MD_SEV_DEFAULT,
                                       "%s looks like a typo: did you mean %s?", a->domain, fixed);
        md_finding_add_evidence(fd, "suggestion: %s", f->typo);
        free(fixed);
    }
    add_domain(f, rep);
    add_sent(f, rep);
}
