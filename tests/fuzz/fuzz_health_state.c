/*
 * libFuzzer target: lib/health's state, as a later run reads it.  The input
 * is a state file's text; when it parses, it is compared with a result that
 * holds every check, listed and not listed IPs, known and unknown statuses,
 * and the next state is made from both (what carries over from a check that
 * cannot see).  A state is ours, but a disk, a person with an editor or an
 * older version can leave anything there.  What is checked: no crash, no
 * leak, a parse failure leaves nothing, and the next state is again a state
 * this version reads.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "health/health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static md_health_result *result(void)
{
    static const char *const ids[MD_HEALTH_NCHECKS][2] = {
        { "spf.fail", NULL }, { "dkim.ok", NULL }, { "dns.temporary", NULL }, { "dnsbl.listed", "dnsbl.unusable" },
        { "rdns.missing", NULL }, { "relay.cert_expiring", NULL }, { "health.timeout", NULL },
    };
    md_health_result *r = md_xcalloc(1, sizeof *r);
    r->run = md_report_new("fuzz", NULL);
    r->started = 1796119200;
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        md_health_check *c = &r->checks[i];
        c->ran = 1;
        c->report = md_report_new("fuzz", NULL);
        for (int k = 0; k < 2 && ids[i][k]; k++)
            md_report_add(c->report, ids[i][k], MD_SEV_DEFAULT, "x");
        c->status = md_report_status(c->report);
    }
    static const struct { const char *ip, *zone; md_dnsbl_state st; } l[] = {
        { "192.0.2.10", "bl.example", MD_DNSBL_LISTED }, { "192.0.2.11", "bl.example", MD_DNSBL_NOT_LISTED },
        { "192.0.2.12", "bl.example", MD_DNSBL_UNKNOWN }, { "192.0.2.10", "dead.example", MD_DNSBL_UNUSABLE },
    };
    r->listings = md_xcalloc(4, sizeof *r->listings);
    for (size_t i = 0; i < 4; i++) {
        snprintf(r->listings[i].ip, sizeof r->listings[i].ip, "%s", l[i].ip);
        snprintf(r->listings[i].zone, sizeof r->listings[i].zone, "%s", l[i].zone);
        r->listings[i].state = l[i].st;
    }
    r->nlistings = 4;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    md_health_state *st = NULL;
    md_error err = { 0 };
    if (md_health_state_parse((const char *)data, size, "fuzz", &st, &err) != MD_OK) {
        if (st != NULL)
            abort();   /* documented: nothing on failure */
        return 0;
    }
    md_health_result *r = result();
    md_health_compare(r, st);
    char *text = md_health_state_text(r, st);
    md_health_state *again = NULL;
    if (text == NULL || md_health_state_parse(text, strlen(text), "next", &again, &err) != MD_OK)
        abort();   /* what a run writes, the next run reads */
    md_health_compare(r, again);
    free(text);
    md_health_state_free(again);
    md_health_state_free(st);
    md_health_result_free(r);
    return 0;
}
