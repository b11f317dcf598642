/* lib/account lookup: gathers the facts about an address from the store,
 * DNS (lib/mx) and lib/address, then judges them (account.c). */
#include "config.h"
#include "account.h"
#include "mx/mx.h"

#include <stdlib.h>
#include <string.h>

/* The domain's route through lib/mx: critical = no mail, unknown = could
 * not tell, ok or warning = mail has a route. */
static void check_mx(md_dns *dns, md_account_public *p)
{
    md_error err = { 0 };
    md_mx_route *route = md_mx_resolve_wait(dns, p->address.domain, 0, &err);
    p->mx_checked = 1;
    if (route == NULL) {
        p->mx = MD_ADDRESS_MX_UNKNOWN;
        snprintf(p->mx_detail, sizeof p->mx_detail, "%s", err.text);
        return;
    }
    md_report *judged = md_report_new("mx", route->domain);
    md_mx_route_evaluate(route, &(md_mx_options){ .no_details = 1 }, judged);
    md_mx_route_free(route);
    md_severity st = md_report_status(judged);
    p->mx = st == MD_SEV_CRITICAL ? MD_ADDRESS_MX_NONE
          : st == MD_SEV_UNKNOWN ? MD_ADDRESS_MX_UNKNOWN : MD_ADDRESS_MX_WORKS;
    for (size_t i = 0; i < md_report_count(judged); i++) {
        const md_finding *f = md_report_get(judged, i);
        if (f->severity == st && st != MD_SEV_OK) {
            snprintf(p->mx_detail, sizeof p->mx_detail, "%s: %s", f->id, f->summary);
            break;
        }
    }
    md_report_free(judged);
}

md_status md_account_public_facts(md_store *s, md_dns *dns, const char *input,
                                  const md_account_options *o, md_account_public *out,
                                  md_error *err)
{
    static const md_account_options defaults = { 0 };
    if (o == NULL)
        o = &defaults;
    memset(out, 0, sizeof *out);
    md_status st = md_address_parse(input, &out->address, err);
    if (st != MD_OK)
        return st;
    if (md_address_key(&out->address, o->key_flags, out->key, sizeof out->key) != MD_OK)
        return md_error_set(err, MD_CONFIG, "input.address", "the address is too long");
    md_address_provider_key(&out->address, out->pkey, sizeof out->pkey);
    if (dns != NULL && !(out->address.flags & MD_ADDRESS_LITERAL))
        check_mx(dns, out);

    unsigned long many = o->many ? o->many : MD_ADDRESS_MANY_DEFAULT;
    unsigned long here = 0;
    md_store_domain_list pop = { 0 };
    md_address_mx mx = out->mx_checked ? out->mx : MD_ADDRESS_MX_UNKNOWN;
    if ((out->address.flags & MD_ADDRESS_LITERAL) || md_address_is_common_provider(out->address.domain))
        return MD_OK;   /* never a typo: spare the store the queries */
    st = md_store_domain_accounts(s, out->address.domain, &here, err);
    if (st != MD_OK || (here >= many && mx != MD_ADDRESS_MX_NONE))
        return st;      /* a much-used domain that may take mail: never a typo */
    st = md_store_popular_domains(s, many, &pop, err);
    if (st != MD_OK)
        return st;
    md_domain_count *dc = md_xcalloc(pop.n + 1, sizeof *dc);
    for (size_t i = 0; i < pop.n; i++) {
        dc[i].domain = pop.domain[i];
        dc[i].accounts = pop.accounts[i];
    }
    md_address_typo_facts tf = { .popular = dc, .npopular = pop.n, .accounts = here, .mx = mx,
                                 .many = many };
    md_address_suggest(out->address.domain, &tf, out->typo, sizeof out->typo, NULL);
    free(dc);
    md_store_domain_list_clear(&pop);
    return MD_OK;
}

static md_status evaluate(md_store *s, md_account_public *p, md_store_account_list *acc,
                          const md_account_options *o, int64_t now, md_report *rep,
                          md_error *err)
{
    md_store_account_list also = { 0 };
    md_store_suppression sup = { 0 };
    md_store_send_list sent = { 0 };
    unsigned *sessions = md_xcalloc(acc->n + 1, sizeof *sessions);
    md_status st = MD_OK;
    int suppressed = 0;

    for (size_t i = 0; st == MD_OK && i < acc->n; i++) {
        md_store_session_list sl;
        st = md_store_sessions(s, acc->v[i].id, 1, now, &sl, err);
        if (st == MD_OK) {
            sessions[i] = (unsigned)sl.n;
            free(sl.v);
        }
    }
    if (st == MD_OK && p->pkey[0])
        st = md_store_find_also(s, p->pkey, p->key, &also, err);
    if (st == MD_OK) {
        st = md_store_suppression_get(s, p->key, &sup, err);
        suppressed = st == MD_OK;
        if (st == MD_NOTFOUND)
            st = MD_OK;
    }
    if (st == MD_OK)
        st = md_store_send_recent(s, p->key, o->sent_limit ? o->sent_limit : 10, &sent, err);
    if (st == MD_OK) {
        md_account_facts f = {
            .address = &p->address, .key = p->key, .accounts = acc, .active_sessions = sessions,
            .also = &also, .suppression = suppressed ? &sup : NULL, .sent = &sent, .mx = p->mx,
            .mx_checked = p->mx_checked, .mx_detail = p->mx_detail[0] ? p->mx_detail : NULL,
            .typo = p->typo[0] ? p->typo : NULL, .now = now,
            .suppression_advice = o->suppression_advice,
        };
        md_account_evaluate(&f, rep);
    }
    free(sessions);
    md_store_account_list_clear(&also);
    md_store_suppression_clear(&sup);
    md_store_send_list_clear(&sent);
    return st;
}

md_status md_account_lookup(md_store *s, md_dns *dns, const char *input,
                            const md_account_options *o, int64_t now, md_report *rep,
                            md_error *err)
{
    static const md_account_options defaults = { 0 };
    if (o == NULL)
        o = &defaults;
    md_account_public *p = md_xmalloc(sizeof *p);
    md_store_account_list acc = { 0 };
    md_status st = md_account_public_facts(s, dns, input, o, p, err);
    if (st == MD_OK)
        st = md_store_find_by_email(s, p->key, &acc, err);
    if (st == MD_OK)
        st = evaluate(s, p, &acc, o, now, rep, err);
    md_store_account_list_clear(&acc);
    free(p);
    return st;
}

md_status md_account_lookup_username(md_store *s, md_dns *dns, const char *username,
                                     const md_account_options *o, int64_t now, md_report *rep,
                                     md_error *err)
{
    static const md_account_options defaults = { 0 };
    if (o == NULL)
        o = &defaults;
    md_store_account_list acc = { 0 };
    md_status st = md_store_find_by_username(s, username, &acc, err);
    if (st != MD_OK)
        return st;
    if (acc.n == 0) {
        md_store_account_list_clear(&acc);
        return md_error_set(err, MD_NOTFOUND, "store.account", "no account is named '%s'", username);
    }
    md_account_public *p = md_xmalloc(sizeof *p);
    st = md_account_public_facts(s, dns, acc.v[0].email, o, p, err);
    if (st == MD_OK)
        st = evaluate(s, p, &acc, o, now, rep, err);
    md_store_account_list_clear(&acc);
    free(p);
    return st;
}
