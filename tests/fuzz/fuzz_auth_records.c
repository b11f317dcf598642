/*
 * libFuzzer target: lib/auth's pure record evaluators (auth.h) over one
 * record's text: DMARC (at the domain and inherited from the organizational
 * domain, for a domain that sends reset mail and one that does not), a DKIM
 * key record, MTA-STS, TLS-RPT and BIMI.  The further questions they ask
 * (report authorizations, the MTA-STS policy host) get answers that depend
 * on the name: authorized, NXDOMAIN, SERVFAIL or no data.
 *
 * What is checked: no crash, no leak; every finding has a catalogue id; a
 * found record is kept; and the results described by md_auth_describe
 * render (lib/report) as JSON that reads back.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static md_dns_answer *answers(void *arg, const char *name, int type)
{
    (void)arg;
    unsigned h = 2166136261u;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    md_dns_answer *a = calloc(1, sizeof *a);
    if (a == NULL)
        abort();
    a->type = type;
    a->qname = strdup(name);
    static const md_dns_outcome kinds[] = { MD_DNS_ANSWER, MD_DNS_NXDOMAIN, MD_DNS_SERVFAIL,
                                            MD_DNS_NODATA };
    a->outcome = kinds[h % 4];
    if (a->outcome == MD_DNS_ANSWER && type == MD_DNS_TXT) {
        a->n = 1;
        a->txt = calloc(1, sizeof *a->txt);
        a->txt[0].data = strdup((h >> 2) & 1 ? "v=DMARC1" : "v=DMARC1x");
        a->txt[0].len = strlen(a->txt[0].data);
    } else if (a->outcome == MD_DNS_ANSWER) {
        a->n = 1;
        a->addr = calloc(1, sizeof *a->addr);
        a->addr[0].family = type == MD_DNS_A ? 2 : 10;
        strcpy(a->addr[0].text, type == MD_DNS_A ? "192.0.2.1" : "2001:db8::1");
    }
    return a;
}

static void catalogued(const md_report *rep)
{
    for (size_t i = 0; i < md_report_count(rep); i++)
        if (md_catalogue_find(md_report_get(rep, i)->id) == NULL)
            abort();
}

static void renders(const md_auth_result *r)
{
    md_report *rep = md_report_new("fuzz", NULL);
    md_auth_describe(r, rep);
    md_buf b = { 0 };
    if (md_report_append_json(rep, &b) != 0)
        abort();
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    if (j == NULL)
        abort();   /* the one renderer wrote something that is not JSON */
    json_decref(j);
    free(b.data);
    md_report_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    const char *text = (const char *)data;
    const md_auth_answers ans = { answers, NULL };
    md_auth_result *r = calloc(1, sizeof *r);
    if (r == NULL)
        return 0;
    r->domain = strdup("mail.example.com");
    r->org_domain = strdup("example.com");
    md_report *rep = md_report_new("fuzz", NULL);

    md_auth_config cfg = { .sends_reset = (int)(size & 1) };
    md_auth_dmarc_evaluate("mail.example.com", NULL, text, size, &cfg, &ans, &r->dmarc, rep);
    if (!r->dmarc.found || r->dmarc.record == NULL
        || (r->dmarc.error != NULL && (r->dmarc.tags.n > 0 || r->dmarc.policy != NULL)))
        abort();
    md_auth_dmarc inherited;
    cfg.sends_reset = !cfg.sends_reset;
    md_auth_dmarc_evaluate("mail.example.com", "example.com", text, size, &cfg, &ans, &inherited,
                           rep);
    if (!inherited.inherited)
        abort();
    md_auth_dmarc_clear(&inherited);

    r->dkim = calloc(1, sizeof *r->dkim);
    if (r->dkim != NULL) {
        r->ndkim = 1;
        r->dkim[0].selector = strdup("s1");
        r->dkim[0].name = strdup("s1._domainkey.mail.example.com");
        r->dkim[0].found = 1;
        md_auth_dkim_evaluate(r->dkim[0].name, text, size, &r->dkim[0], rep);
        if (r->dkim[0].record == NULL || (r->dkim[0].key_type != NULL && r->dkim[0].revoked))
            abort();
    }
    md_auth_mtasts_evaluate(r->domain, text, size, &ans, &r->mta_sts, rep);
    md_auth_tlsrpt_evaluate(r->domain, text, size, &r->tls_rpt, rep);
    md_auth_bimi_evaluate(r->domain, text, size, &r->bimi, rep);
    if ((r->mta_sts.found && r->mta_sts.record == NULL) || r->tls_rpt.found != r->bimi.found
        || r->mta_sts.found != r->bimi.found)
        abort();   /* the same text parses the same way for each */
    catalogued(rep);
    renders(r);
    md_report_free(rep);
    md_auth_result_free(r);
    return 0;
}
