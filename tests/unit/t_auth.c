/* Unit tests for lib/auth: tag lists, organizational domains, DKIM keys, and
 * the pure record evaluators (DMARC, DKIM, MTA-STS, TLS-RPT, BIMI) over
 * answers from a table: no DNS. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "auth/auth.h"
#include "tap.h"

/* Throwaway public keys (also in tests/zones/auth.test.zone). */
#define K1024 "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDZsSFSZNflOjeEoKuc0MqeEMiLSgoJxtkacITiQeVTMx3UVovy/ulR8K2J41IB+n4W9X27yTYHLYsZTkJRhucgZc1C1cLEQeFnqB5WGgY3MQPMbQt/rTW0fulYKBP2r0uVg8tnTuJ9Volo7836tjrsFwMddktuc0IuBinlOHalxQIDAQAB"
#define KED "hK/Pa7xpkgT965Qs2P+mUjlEco1eRP8FMCOJ8Y9bdfE="

/* The answers an evaluator may ask for: name and type to an outcome, with
 * one TXT string or one address; anything else is NXDOMAIN. */
typedef struct fake {
    const char *name;
    int type;
    md_dns_outcome outcome;
    const char *data;
} fake;

static const fake answers[] = {
    { "ex.test._report._dmarc.reports.test", MD_DNS_TXT, MD_DNS_ANSWER, "v=DMARC1" },
    { "ex.test._report._dmarc.down.test", MD_DNS_TXT, MD_DNS_SERVFAIL, NULL },
    { "mta-sts.ex.test", MD_DNS_A, MD_DNS_ANSWER, "192.0.2.80" },
    { "mta-sts.nohost.test", MD_DNS_A, MD_DNS_NXDOMAIN, NULL },
    { "mta-sts.nohost.test", MD_DNS_AAAA, MD_DNS_NXDOMAIN, NULL },
    { NULL, 0, 0, NULL }
};

static int asked;

static md_dns_answer *fake_resolve(void *arg, const char *name, int type)
{
    (void)arg;
    asked++;
    md_dns_answer *a = md_xcalloc(1, sizeof *a);
    a->type = type;
    a->qname = md_xstrdup(name);
    a->outcome = MD_DNS_NXDOMAIN;
    for (const fake *f = answers; f->name; f++) {
        if (strcmp(f->name, name) != 0 || f->type != type)
            continue;
        a->outcome = f->outcome;
        if (f->outcome != MD_DNS_ANSWER)
            break;
        a->n = 1;
        if (type == MD_DNS_TXT) {
            a->txt = md_xcalloc(1, sizeof *a->txt);
            a->txt[0].data = md_xstrdup(f->data);
            a->txt[0].len = strlen(f->data);
        } else {
            a->addr = md_xcalloc(1, sizeof *a->addr);
            a->addr[0].family = 2;   /* AF_INET */
            snprintf(a->addr[0].text, sizeof a->addr[0].text, "%s", f->data);
        }
        break;
    }
    return a;
}

static const md_auth_answers table = { fake_resolve, NULL };

/* The finding ids of rep from index from, space-separated. */
static char *ids(const md_report *rep, size_t from)
{
    static char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = from; i < md_report_count(rep) && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "",
                              md_report_get(rep, i)->id);
    return buf;
}

/* Every finding is in the catalogue (an unknown id would carry the
 * "internal" evidence lib/report adds). */
static int all_catalogued(const md_report *rep)
{
    for (size_t i = 0; i < md_report_count(rep); i++)
        if (md_catalogue_find(md_report_get(rep, i)->id) == NULL)
            return 0;
    return 1;
}

static void test_dmarc(void)
{
    static const struct {
        const char *record, *domain, *found_at;
        int sends_reset;
        const char *policy, *want;
    } cases[] = {
        { "v=DMARC1; p=reject; rua=mailto:d@ex.test", "ex.test", NULL, 1, "reject", "dmarc.ok" },
        { "v=DMARC1; p=none; rua=mailto:d@ex.test", "ex.test", NULL, 1, "none", "dmarc.p_none" },
        { "v=DMARC1; p=reject", "ex.test", NULL, 1, "reject", "dmarc.no_rua dmarc.ok" },
        { "v=DMARC1; p=maybe", "ex.test", NULL, 1, NULL, "dmarc.syntax" },
        { "v=DMARC1; p=maybe; rua=mailto:d@ex.test", "ex.test", NULL, 1, "none",
          "dmarc.syntax dmarc.p_none" },
        { "v=DMARC1; p=reject; pct=150; adkim=x; rua=mailto:d@ex.test", "ex.test", NULL, 1,
          "reject", "dmarc.syntax dmarc.syntax dmarc.ok" },
        { "v=DMARC1; p=reject; pct=50; rua=mailto:d@ex.test", "ex.test", NULL, 1, "reject",
          "dmarc.pct dmarc.ok" },
        { "v=DMARC1; p=quarantine; sp=reject; rua=mailto:d@ex.test", "a.ex.test", "ex.test", 1,
          "reject", "dmarc.ok dmarc.inherited" },
        { "v=DMARC1; p=reject; rua=mailto:a@reports.test,mailto:b@down.test,https://x.test;"
          " ruf=mailto:f@other.test!10m", "ex.test", NULL, 1, "reject",
          "dns.temporary dmarc.syntax dmarc.rua_unauthorized dmarc.ok" },
        { "v=DMARC1; p=reject; reject", "ex.test", NULL, 1, NULL, "dmarc.syntax" },
        { "v=DMARC1; p=none; fo=0:x; aspf=q; sp=maybe", "ex.test", NULL, 0, "none",
          "dmarc.syntax dmarc.syntax dmarc.syntax dmarc.no_rua dmarc.p_none" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_report *rep = md_report_new("t", "x");
        md_auth_config cfg = { .sends_reset = cases[i].sends_reset };
        md_auth_dmarc d;
        md_auth_dmarc_evaluate(cases[i].domain, cases[i].found_at, cases[i].record,
                               strlen(cases[i].record), &cfg, &table, &d, rep);
        is_str(ids(rep, 0), cases[i].want, "DMARC '%s': findings", cases[i].record);
        is_str(d.policy, cases[i].policy, "DMARC '%s': policy", cases[i].record);
        ok(d.found && strcmp(d.record, cases[i].record) == 0, "DMARC '%s': record kept",
           cases[i].record);
        ok(all_catalogued(rep), "DMARC '%s': catalogue ids", cases[i].record);
        md_auth_dmarc_clear(&d);
        md_report_free(rep);
    }
    /* the authorizations, typed */
    md_report *rep = md_report_new("t", "x");
    md_auth_dmarc d;
    const char *rec = "v=DMARC1; p=reject; rua=mailto:a@Reports.test,mailto:b@down.test,"
                      "mailto:c@ex.test, mailto:e@other.test";
    md_auth_dmarc_evaluate("ex.test", NULL, rec, strlen(rec), NULL, &table, &d, rep);
    is_int(d.nrua, 4, "four mailto: destinations");
    ok(d.nrua == 4 && d.rua[0].external && d.rua[0].authorized == MD_AUTH_AUTHZ_YES
       && strcmp(d.rua[0].domain, "reports.test") == 0, "authorized external destination");
    ok(d.nrua == 4 && d.rua[1].authorized == MD_AUTH_AUTHZ_UNKNOWN, "SERVFAIL: unknown");
    ok(d.nrua == 4 && !d.rua[2].external && d.rua[2].authorized == MD_AUTH_AUTHZ_INTERNAL,
       "own domain: nothing to authorize");
    ok(d.nrua == 4 && d.rua[3].authorized == MD_AUTH_AUTHZ_NO, "NXDOMAIN: not authorized");
    md_auth_dmarc_clear(&d);
    md_report_free(rep);
    /* without answers every further question fails temporarily */
    rep = md_report_new("t", "x");
    rec = "v=DMARC1; p=reject; rua=mailto:a@reports.test";
    md_auth_dmarc_evaluate("ex.test", NULL, rec, strlen(rec), NULL, NULL, &d, rep);
    is_str(ids(rep, 0), "dns.temporary dmarc.ok", "no answers: the authorization is unknown");
    md_auth_dmarc_clear(&d);
    md_report_free(rep);
}

static void test_dkim(void)
{
    static const struct {
        const char *record, *want, *type;
        int bits, revoked, testing;
    } cases[] = {
        { "v=DKIM1; k=rsa; p=" K1024, "dkim.key_short", "rsa", 1024, 0, 0 },
        { "v=DKIM1; k=ed25519; p=" KED, "dkim.ok", "ed25519", 256, 0, 0 },
        { "v=DKIM1; k=rsa; p=", "dkim.revoked", NULL, 0, 1, 0 },
        { "v=DKIM1; k=ed25519; t=y; p=" KED, "dkim.ok dkim.testing", "ed25519", 256, 0, 1 },
        { "v=DKIM1; t=s:y; p=", "dkim.revoked dkim.testing", NULL, 0, 1, 1 },
        { "v=DKIM1; p=AAAAbm90IGEga2V5", "dkim.key_invalid", NULL, 0, 0, 0 },
        { "v=DKIM2; p=abc", "dkim.syntax", NULL, 0, 0, 0 },
        { "k=rsa", "dkim.syntax", NULL, 0, 0, 0 },
        { "v=DKIM1; p=a; p=b", "dkim.syntax", NULL, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_report *rep = md_report_new("t", "x");
        md_auth_dkim k = { 0 };
        md_auth_dkim_evaluate("s._domainkey.ex.test", cases[i].record, strlen(cases[i].record),
                              &k, rep);
        is_str(ids(rep, 0), cases[i].want, "DKIM '%.40s': findings", cases[i].record);
        is_str(k.key_type, cases[i].type, "DKIM '%.40s': key type", cases[i].record);
        ok(k.key_bits == cases[i].bits && k.revoked == cases[i].revoked
           && k.testing == cases[i].testing, "DKIM '%.40s': bits %d, revoked %d, testing %d",
           cases[i].record, k.key_bits, k.revoked, k.testing);
        ok(all_catalogued(rep), "DKIM '%.40s': catalogue ids", cases[i].record);
        md_auth_dkim_clear(&k);
        md_report_free(rep);
    }
    md_report *rep = md_report_new("t", "x");
    md_auth_dkim k = { 0 };
    md_auth_dkim_evaluate("s._domainkey.ex.test", "v=DKIM1; p=\0x", sizeof "v=DKIM1; p=\0x" - 1, &k, rep);
    is_str(ids(rep, 0), "dkim.syntax", "a NUL byte in a key record is a syntax error");
    md_auth_dkim_clear(&k);
    md_report_free(rep);
}

static void test_policies(void)
{
    static const struct {
        int which;   /* 0 MTA-STS, 1 TLS-RPT, 2 BIMI */
        const char *domain, *record, *want;
        int found;
    } cases[] = {
        { 0, "ex.test", "v=STSv1; id=20240101T000000", "mtasts.ok", 1 },
        { 0, "ex.test", "v=STSv1; id=not-valid!", "mtasts.invalid", 1 },
        { 0, "ex.test", "v=STSv1; id", "mtasts.invalid", 0 },
        { 0, "nohost.test", "v=STSv1; id=abc123", "mtasts.policy_host", 1 },
        { 1, "ex.test", "v=TLSRPTv1; rua=mailto:tls@ex.test,https://r.test/x", "tlsrpt.ok", 1 },
        { 1, "ex.test", "v=TLSRPTv1; rua=ftp://r.test", "tlsrpt.invalid", 1 },
        { 1, "ex.test", "v=TLSRPTv1;", "tlsrpt.invalid", 1 },
        { 1, "ex.test", "v=TLSRPTv1; rua", "tlsrpt.invalid", 0 },
        { 2, "ex.test", "v=BIMI1; l=https://ex.test/logo.svg", "bimi.present", 1 },
        { 2, "ex.test", "v=BIMI1; l=http://ex.test/logo.svg", "bimi.invalid", 1 },
        { 2, "ex.test", "v=BIMI1; l", "bimi.invalid", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_report *rep = md_report_new("t", "x");
        md_auth_policy p;
        const char *r = cases[i].record;
        if (cases[i].which == 0)
            md_auth_mtasts_evaluate(cases[i].domain, r, strlen(r), &table, &p, rep);
        else if (cases[i].which == 1)
            md_auth_tlsrpt_evaluate(cases[i].domain, r, strlen(r), &p, rep);
        else
            md_auth_bimi_evaluate(cases[i].domain, r, strlen(r), &p, rep);
        is_str(ids(rep, 0), cases[i].want, "'%s': findings", r);
        is_int(p.found, cases[i].found, "'%s': found", r);
        ok(!p.found || (p.tags.n > 0 && strcmp(p.tags.v[0].name, "v") == 0), "'%s': tags", r);
        ok(all_catalogued(rep), "'%s': catalogue ids", r);
        md_auth_policy_clear(&p);
        md_report_free(rep);
    }
}

int main(void)
{
    char msg[160];
    md_auth_tags t;
    int rc = md_auth_tags_parse("v=DMARC1; p=reject ;RUA = mailto:a@b.test;; ", 44, &t, msg, sizeof msg);
    ok(rc == 0, "tag list parses (%s)", rc == 0 ? "" : msg);
    is_str(md_auth_tags_get(&t, "p"), "reject", "p trimmed");
    is_str(md_auth_tags_get(&t, "rua"), "mailto:a@b.test", "tag names lower-cased");
    ok(t.n == 3 && strcmp(t.v[0].name, "v") == 0 && strcmp(t.v[2].name, "rua") == 0,
       "tags in the order written");
    md_auth_tags_clear(&t);
    rc = md_auth_tags_parse("v=DMARC1; p=none; p=reject", 26, &t, msg, sizeof msg);
    ok(rc == -1 && t.n == 0, "a tag twice is an error: %s", msg);
    md_auth_tags_clear(&t);
    rc = md_auth_tags_parse("v=DMARC1; reject", 16, &t, msg, sizeof msg);
    ok(rc == -1, "a tag without '=' is an error: %s", msg);
    md_auth_tags_clear(&t);
    rc = md_auth_tags_parse("v=DMARC1; p=r\xc3\xa9ject", 19, &t, msg, sizeof msg);
    ok(rc == 0 && strcmp(md_auth_tags_get(&t, "p"), "r??ject") == 0, "values are printable ASCII");
    md_auth_tags_clear(&t);

    static const struct { const char *in, *want; } org[] = {
        { "mail.example.com", "example.com" },
        { "example.com", "example.com" },
        { "a.b.example.co.uk", "example.co.uk" },
        { "sub.inherit.auth.test", "auth.test" },
    };
    for (size_t i = 0; i < sizeof org / sizeof org[0]; i++) {
        char *o = md_auth_org_domain(org[i].in);
        is_str(o, org[i].want, "organizational domain of %s", org[i].in);
        free(o);
    }

    int bits = 0;
    char type[16];
    ok(md_auth_dkim_key(K1024, "rsa", &bits, type, sizeof type) == 0, "RSA SubjectPublicKeyInfo");
    is_int(bits, 1024, "RSA key size");
    is_str(type, "rsa", "RSA key type");
    ok(md_auth_dkim_key("AAAAbm90IGEga2V5", "rsa", &bits, type, sizeof type) == -1, "garbage key fails");
    ok(md_auth_dkim_key("!!!", "rsa", &bits, type, sizeof type) == -1, "bad base64 fails");
    ok(md_auth_dkim_key(KED, "ed25519", &bits, type, sizeof type) == 0
       && strcmp(type, "ed25519") == 0, "ed25519 raw key");

    asked = 0;
    test_dmarc();
    test_dkim();
    test_policies();
    ok(asked > 0, "further questions went to the answer table (%d)", asked);
    return tap_done();
}
