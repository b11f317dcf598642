/* Unit tests for lib/account: findings, severities and self-service answers. */
#include "config.h"
#include "account/account.h"
#include "tap.h"

static md_store_account acct(const char *user, md_store_status st, md_store_auth auth, int verified)
{
    md_store_account a = { .username = (char *)user, .email = "a@example.com", .status = st,
                           .auth = auth, .email_verified = verified };
    return a;
}

static void test_mail_for(void)
{
    static const struct {
        md_store_status st; md_store_auth auth; int verified;
        md_account_mail username, verify, reset;
    } cases[] = {
        { MD_STORE_ACTIVE, MD_STORE_PASSWORD, 1, MD_ACCOUNT_MAIL_REMINDER, MD_ACCOUNT_MAIL_VERIFIED, MD_ACCOUNT_MAIL_RESET },
        { MD_STORE_ACTIVE, MD_STORE_PASSWORD, 0, MD_ACCOUNT_MAIL_REMINDER, MD_ACCOUNT_MAIL_VERIFY, MD_ACCOUNT_MAIL_RESET },
        { MD_STORE_ACTIVE, MD_STORE_SSO, 1, MD_ACCOUNT_MAIL_REMINDER, MD_ACCOUNT_MAIL_VERIFIED, MD_ACCOUNT_MAIL_EXPLAIN_SSO },
        { MD_STORE_LOCKED, MD_STORE_PASSWORD, 1, MD_ACCOUNT_MAIL_REMINDER, MD_ACCOUNT_MAIL_VERIFIED, MD_ACCOUNT_MAIL_EXPLAIN_LOCKED },
        { MD_STORE_DEACTIVATED, MD_STORE_PASSWORD, 1, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED },
        { MD_STORE_DEACTIVATED, MD_STORE_SSO, 0, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED, MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_store_account a = acct("u", cases[i].st, cases[i].auth, cases[i].verified);
        is_str(md_account_mail_name(md_account_mail_for(&a, MD_ACCOUNT_WANT_USERNAME)),
               md_account_mail_name(cases[i].username), "case %zu: username", i);
        is_str(md_account_mail_name(md_account_mail_for(&a, MD_ACCOUNT_WANT_VERIFY)),
               md_account_mail_name(cases[i].verify), "case %zu: verify", i);
        is_str(md_account_mail_name(md_account_mail_for(&a, MD_ACCOUNT_WANT_RESET)),
               md_account_mail_name(cases[i].reset), "case %zu: reset", i);
    }
    is_int(md_account_want_parse("RESET"), MD_ACCOUNT_WANT_RESET, "want parse");
    is_int(md_account_want_parse("password"), -1, "unknown want");
}

/* Evaluates facts and returns the report's status; *ids gets the ids. */
static md_severity eval(md_store_account *accs, size_t n, const md_store_suppression *sup,
                        md_address_mx mx, const char *typo, char *ids, size_t size)
{
    md_address a;
    md_error err = { 0 };
    md_address_parse("a@example.com", &a, &err);
    md_store_account_list l = { accs, n };
    md_account_facts f = { .address = &a, .key = "a@example.com", .accounts = &l,
                           .suppression = sup, .mx = mx, .mx_checked = mx != MD_ADDRESS_MX_UNKNOWN,
                           .typo = typo };
    md_report *rep = md_report_new("test", "a@example.com");
    md_account_evaluate(&f, rep);
    ids[0] = '\0';
    for (size_t i = 0; i < md_report_count(rep); i++) {
        const md_finding *fd = md_report_get(rep, i);
        snprintf(ids + strlen(ids), size - strlen(ids), "%s%s:%s", i ? " " : "", fd->id,
                 md_severity_name(fd->severity));
    }
    md_severity st = md_report_status(rep);
    json_t *j = md_report_to_json(rep);
    ok(json_object_get(j, "address") && json_is_array(json_object_get(j, "accounts")) &&
       json_is_array(json_object_get(j, "findings")), "JSON contract keys present");
    json_decref(j);
    md_report_free(rep);
    return st;
}

static void test_evaluate(void)
{
    char ids[1024];
    md_store_suppression sup = { .address = "a@example.com", .reason = "hard-bounce", .since = 1 };
    md_store_account ok1 = acct("ok", MD_STORE_ACTIVE, MD_STORE_PASSWORD, 1);
    md_store_account sso = acct("sso", MD_STORE_ACTIVE, MD_STORE_SSO, 1);
    sso.sso_provider = "Okta";
    md_store_account deact = acct("gone", MD_STORE_DEACTIVATED, MD_STORE_PASSWORD, 1);
    md_store_account locked = acct("locked", MD_STORE_LOCKED, MD_STORE_PASSWORD, 1);
    md_store_account unver = acct("new", MD_STORE_ACTIVE, MD_STORE_PASSWORD, 0);

    static const char *const want_ids[] = {
        "account.ok:ok",
        "account.none:warning",
        "account.sso:warning",
        "account.deactivated:critical",
        "account.ok:ok account.deactivated:warning",
        "account.locked:warning",
        "account.unverified:warning",
        "account.ok:ok address.suppressed:critical",
        "account.ok:ok address.no_mail:critical",
        "account.none:warning address.typo:warning",
    };
    struct { md_store_account v[2]; size_t n; const md_store_suppression *sup; md_address_mx mx;
             const char *typo; md_severity want; } cases[] = {
        { { ok1 }, 1, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_OK },
        { { { 0 } }, 0, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_WARNING },
        { { sso }, 1, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_WARNING },
        { { deact }, 1, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_CRITICAL },
        { { ok1, deact }, 2, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_WARNING },
        { { locked }, 1, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_WARNING },
        { { unver }, 1, NULL, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_WARNING },
        { { ok1 }, 1, &sup, MD_ADDRESS_MX_WORKS, NULL, MD_SEV_CRITICAL },
        { { ok1 }, 1, NULL, MD_ADDRESS_MX_NONE, NULL, MD_SEV_CRITICAL },
        { { { 0 } }, 0, NULL, MD_ADDRESS_MX_WORKS, "gmail.com", MD_SEV_WARNING },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_severity st = eval(cases[i].v, cases[i].n, cases[i].sup, cases[i].mx, cases[i].typo,
                              ids, sizeof ids);
        is_str(ids, want_ids[i], "case %zu: findings", i);
        is_int(st, cases[i].want, "case %zu: status", i);
    }
}

/* The suppression's summary states the fact; advice is the caller's words. */
static void test_suppression_advice(void)
{
    md_address a;
    md_error err = { 0 };
    md_address_parse("a@example.com", &a, &err);
    md_store_account_list l = { NULL, 0 };
    md_store_suppression sup = { .address = "a@example.com", .reason = "complaint", .since = 1 };
    static const struct { const char *advice, *want; } cases[] = {
        { NULL, "the address is suppressed (complaint since 1970-01-01T00:00:01Z): nothing is sent to it" },
        { "lift it with the X command", "the address is suppressed (complaint since 1970-01-01T00:00:01Z):"
                                        " nothing is sent to it; lift it with the X command" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_account_facts f = { .address = &a, .key = "a@example.com", .accounts = &l,
                               .suppression = &sup, .suppression_advice = cases[i].advice };
        md_report *rep = md_report_new("test", "a@example.com");
        md_account_evaluate(&f, rep);
        const char *got = NULL;
        for (size_t k = 0; k < md_report_count(rep); k++)
            if (strcmp(md_report_get(rep, k)->id, "address.suppressed") == 0)
                got = md_report_get(rep, k)->summary;
        is_str(got, cases[i].want, "suppression summary, advice %s", cases[i].advice ? "given" : "none");
        md_report_free(rep);
    }
}

int main(void)
{
    test_mail_for();
    test_evaluate();
    test_suppression_advice();
    return tap_done();
}
