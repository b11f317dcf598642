/* lib/diag: the diagnosis pipeline (see diag.h for the layers and the
 * order things run in). */
#include "config.h"
#include "diag.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mx/mx.h"

#define DIAG_TIMEOUT_DEFAULT_MS 30000

static const char *const layer_names[MD_DIAG_NLAYERS] = {
    "address", "account", "domain", "recipient", "sender", "send"
};
static const char *const email_names[] = { "any", "reset", "verify", "username" };

const char *md_diag_layer_name(md_diag_layer_id id)
{
    return (unsigned)id < MD_DIAG_NLAYERS ? layer_names[id] : "unknown";
}

const char *md_diag_email_name(md_diag_email e)
{
    return (unsigned)e < sizeof email_names / sizeof email_names[0] ? email_names[e] : "any";
}

int md_diag_email_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof email_names / sizeof email_names[0]; i++)
        if (strcmp(s, email_names[i]) == 0)
            return (int)i;
    return -1;
}

/* --- the state of one run ---------------------------------------------------- */

typedef struct run {
    const md_diag_config *cfg;
    const md_diag_settings *set;
    const md_diag_options *opt;
    md_diag_result *r;
    int64_t deadline;
    md_dns *dns;
    /* layer 3 */
    int mx_started, mx_pending;
    md_report *mx;
    /* layer 5: lib/diag's sender checks (sender.c) */
    md_diag_sender *snd;
    int cancelled;                /* the deadline cut the DNS off */
} run;

static int64_t remaining(const run *x)
{
    int64_t left = x->deadline - md_now_ms();
    return left > 0 ? left : 0;
}

static md_report *layer_open(run *x, md_diag_layer_id id)
{
    md_diag_layer *l = &x->r->layers[id];
    l->ran = 1;
    if (l->report == NULL)
        l->report = md_report_new("diag", x->r->input);
    return l->report;
}

static void layer_timeout(run *x, md_diag_layer_id id, const char *what)
{
    md_report *rep = layer_open(x, id);
    x->r->layers[id].timed_out = 1;
    md_report_add(rep, "diag.timeout", MD_SEV_DEFAULT,
                  "%s did not finish within the run's budget of %.3g s: unknown",
                  what, (x->opt->timeout_ms ? x->opt->timeout_ms : DIAG_TIMEOUT_DEFAULT_MS) / 1000.0);
}

static void layer_skipped(run *x, md_diag_layer_id id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void layer_skipped(run *x, md_diag_layer_id id, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    md_report_add(layer_open(x, id), "diag.skipped", MD_SEV_DEFAULT, "%s", why);
}

/* Copies finding f into rep with severity sev (its evidence too). */
static void copy_finding(md_report *rep, const md_finding *f, md_severity sev)
{
    md_finding *n = md_report_add(rep, f->id, sev, "%s", f->summary);
    for (size_t i = 0; i < f->nevidence; i++)
        md_finding_add_evidence(n, "%s", f->evidence[i]);
}

static void copy_fields(md_report *to, const md_report *from, const char *const *skip)
{
    const char *k;
    json_t *v;
    json_object_foreach(md_report_fields(from), k, v) {
        int drop = 0;
        for (size_t i = 0; skip && skip[i]; i++)
            drop |= strcmp(k, skip[i]) == 0;
        if (!drop)
            md_report_set(to, k, json_incref(v));
    }
}

/* --- layer 3 and 5: DNS started at once ----------------------------------------- */

static void mx_done(void *arg, md_report *rep)
{
    run *x = arg;
    x->mx = rep;
    x->mx_pending = 0;
}

static void start_dns(run *x)
{
    md_diag_result *r = x->r;
    if (r->address_ok && !(r->address.flags & MD_ADDRESS_LITERAL)) {
        x->mx_started = x->mx_pending = 1;
        md_mx_check(x->dns, r->address.domain, NULL, mx_done, x);
    }
    if (x->set != NULL && x->set->has_sender)
        x->snd = md_diag_sender_start(x->dns, x->set, MD_DIAG_CHECKS_ALL, x->deadline);
}

static int dns_pending(const run *x)
{
    return x->mx_pending || (x->snd && md_diag_sender_pending(x->snd));
}

/* Drives the channel until layers 3 and 5 have their answers or the
 * deadline passes; then what is still out is cancelled (its callbacks run
 * with "cancelled", which the layers read as unknown). */
static void finish_dns(run *x)
{
    while (dns_pending(x) && remaining(x) > 0) {
        int64_t wait = remaining(x);
        md_dns_step(x->dns, wait > 100 ? 100 : (int)wait);
    }
    if (dns_pending(x)) {
        x->cancelled = 1;
        int mx = x->mx_pending;
        if (x->snd)
            md_diag_sender_expire(x->snd);
        md_dns_cancel(x->dns);
        if (mx)
            layer_timeout(x, MD_DIAG_DOMAIN, "the MX lookup");
        if (x->snd && (md_diag_sender_timed_out(x->snd, MD_DIAG_CHECK_DNSBL) ||
                       md_diag_sender_timed_out(x->snd, MD_DIAG_CHECK_RDNS)))
            layer_timeout(x, MD_DIAG_SENDER, "the blocklist and reverse DNS lookups");
        if (x->snd && (md_diag_sender_timed_out(x->snd, MD_DIAG_CHECK_DKIM) ||
                       md_diag_sender_timed_out(x->snd, MD_DIAG_CHECK_DMARC)))
            layer_timeout(x, MD_DIAG_SENDER, "the DKIM and DMARC lookups");
    }
}

/* --- layer 1: address ------------------------------------------------------------- */

static void address_flags(md_report *rep, const md_address *a)
{
    if (a->flags & MD_ADDRESS_CHANGED)
        md_report_add(rep, "address.trimmed", MD_SEV_DEFAULT, "'%s': %s", a->mailbox,
                      md_address_flag_note(a->flags & MD_ADDRESS_TRIMMED ? MD_ADDRESS_TRIMMED
                                                                         : MD_ADDRESS_BRACKETS));
    for (unsigned bit = 1; bit & 0xffffu; bit <<= 1)
        if ((a->flags & MD_ADDRESS_UNUSUAL & bit) && md_address_flag_note(bit))
            md_report_add(rep, "address.unusual", MD_SEV_DEFAULT, "%s: %s", a->mailbox,
                          md_address_flag_note(bit));
}

/* What DNS says of the domain, for typo suggestions: from the domain layer. */
static md_address_mx mx_fact(const run *x)
{
    if (x->mx == NULL)
        return MD_ADDRESS_MX_UNKNOWN;
    md_severity st = md_report_status(x->mx);
    return st == MD_SEV_CRITICAL ? MD_ADDRESS_MX_NONE
         : st == MD_SEV_UNKNOWN ? MD_ADDRESS_MX_UNKNOWN : MD_ADDRESS_MX_WORKS;
}

static void layer_address(run *x)
{
    md_diag_result *r = x->r;
    md_report *rep = layer_open(x, MD_DIAG_ADDRESS);
    md_report_set(rep, "input", json_string(r->input));
    if (!r->address_ok)
        return;   /* address.invalid was added when parsing */
    md_report_set(rep, "mailbox", json_string(r->address.ascii));
    md_report_set(rep, "domain", json_string(r->address.domain));
    address_flags(rep, &r->address);
    if ((r->address.flags & MD_ADDRESS_LITERAL) || md_address_is_common_provider(r->address.domain))
        return;
    /* The typo facts: the store's popular domains, DNS's word on this one. */
    unsigned long many = x->cfg->account.many ? x->cfg->account.many : MD_ADDRESS_MANY_DEFAULT;
    unsigned long here = 0;
    md_store_domain_list pop = { 0 };
    md_error err = { 0 };
    if (x->cfg->store != NULL &&
        (md_store_domain_accounts(x->cfg->store, r->address.domain, &here, &err) != MD_OK ||
         md_store_popular_domains(x->cfg->store, many, &pop, &err) != MD_OK)) {
        md_report_add(rep, "store.error", MD_SEV_DEFAULT,
                      "the store's domain counts could not be read, so typos are judged on the"
                      " common providers only: %s", err.text);
    }
    md_domain_count *dc = md_xcalloc(pop.n + 1, sizeof *dc);
    for (size_t i = 0; i < pop.n; i++)
        dc[i] = (md_domain_count){ pop.domain[i], pop.accounts[i] };
    md_address_typo_facts tf = { .popular = dc, .npopular = pop.n, .accounts = here,
                                 .mx = mx_fact(x), .many = many };
    char sugg[MD_ADDRESS_DOMAIN_MAX + 1];
    if (md_address_suggest(r->address.domain, &tf, sugg, sizeof sugg, NULL)) {
        md_finding *f = md_report_add(rep, "address.typo", MD_SEV_DEFAULT,
                                      "%s looks like a typo: did you mean %s@%s?", r->address.domain,
                                      r->address.local, sugg);
        md_finding_add_evidence(f, "suggestion: %s", sugg);
        md_finding_add_evidence(f, "mail route of %s: %s", r->address.domain,
                                tf.mx == MD_ADDRESS_MX_NONE ? "none" :
                                tf.mx == MD_ADDRESS_MX_WORKS ? "works" : "unknown");
        md_report_set(rep, "typo", json_pack("{s:s,s:s++}", "suggestion", sugg, "address",
                                             r->address.local, "@", sugg));
    }
    free(dc);
    md_store_domain_list_clear(&pop);
}

/* --- layer 2: account -------------------------------------------------------------- */

/* Which emails an account finding stops (lib/account judges the account;
 * this says which of its findings matter for the email asked about). */
static int stops(const char *id, md_diag_email e)
{
    static const struct { const char *id; unsigned mask; } t[] = {
#define M(e) (1u << (e))
        { "account.sso", M(MD_DIAG_EMAIL_RESET) },
        { "account.locked", M(MD_DIAG_EMAIL_RESET) },
        { "account.unverified", M(MD_DIAG_EMAIL_RESET) | M(MD_DIAG_EMAIL_USERNAME) },
        { "account.pending_change", M(MD_DIAG_EMAIL_VERIFY) },
#undef M
    };
    if (e == MD_DIAG_EMAIL_ANY)
        return 1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].id, id) == 0)
            return (t[i].mask >> e) & 1u;
    return 1;   /* deactivated, none, suppressed, a failed last send: every email */
}

static void layer_account(run *x)
{
    md_diag_result *r = x->r;
    if (x->cfg->store == NULL && x->cfg->store_error == NULL)
        return;
    md_report *rep = layer_open(x, MD_DIAG_ACCOUNT);
    if (x->cfg->store == NULL) {
        md_report_add(rep, "store.error", MD_SEV_DEFAULT, "the store could not be opened, so the"
                      " accounts are unknown: %s", x->cfg->store_error);
        return;
    }
    if (!r->address_ok) {
        layer_skipped(x, MD_DIAG_ACCOUNT, "no account lookup: the address is not valid");
        return;
    }
    md_report *tmp = md_report_new("diag", r->input);
    md_error err = { 0 };
    int64_t now = x->opt->now ? x->opt->now : (int64_t)time(NULL);
    /* No resolver: the domain's route is the domain layer's to judge. */
    if (md_account_lookup(x->cfg->store, NULL, r->input, &x->cfg->account, now, tmp, &err) != MD_OK) {
        md_report_add(rep, "store.error", MD_SEV_DEFAULT, "the accounts could not be read: %s%s%s",
                      err.text, err.peer[0] ? ": " : "", err.peer);
        md_report_free(tmp);
        return;
    }
    json_t *acc = json_object_get(md_report_fields(tmp), "accounts");
    size_t naccounts = json_array_size(acc);
    for (size_t i = 0; i < md_report_count(tmp); i++) {
        const md_finding *f = md_report_get(tmp, i);
        if (strcmp(f->id, "address.typo") == 0)
            continue;   /* the address layer's */
        md_severity sev = f->severity;
        if (!stops(f->id, r->email) || (strcmp(f->id, "account.also_matches") == 0 && naccounts > 0))
            sev = MD_SEV_OK;
        copy_finding(rep, f, sev);
    }
    static const char *const skip[] = { "domain", "typo", "address", NULL };
    copy_fields(rep, tmp, skip);
    md_report_free(tmp);
}

/* --- layer 3: domain ---------------------------------------------------------------- */

static void layer_domain(run *x)
{
    md_diag_result *r = x->r;
    if (!r->address_ok) {
        layer_skipped(x, MD_DIAG_DOMAIN, "no MX lookup: the address is not valid");
        return;
    }
    md_report *rep = layer_open(x, MD_DIAG_DOMAIN);
    md_report_set(rep, "domain", json_string(r->address.domain));
    if (r->address.flags & MD_ADDRESS_LITERAL) {
        md_report_add_detail(rep, "an address literal: mail goes to %s itself", r->address.domain);
        return;
    }
    if (x->mx == NULL)
        return;   /* diag.timeout says why */
    int internal_ok = x->set && x->set->allow_internal;
    for (size_t i = 0; i < md_report_count(x->mx); i++) {
        const md_finding *f = md_report_get(x->mx, i);
        /* [mail] allow_internal: loopback and private MX hosts are this
         * setup's own (a lab), not a fault of the domain */
        int internal = strcmp(f->id, "mx.target_localhost") == 0 ||
                       strcmp(f->id, "mx.target_internal") == 0;
        copy_finding(rep, f, internal && internal_ok ? MD_SEV_OK : f->severity);
    }
    copy_fields(rep, x->mx, NULL);
}

/* --- layer 4: recipient -------------------------------------------------------------- */

/* A 5.7.x refusal that names our address or a blocklist: the receiver
 * blocks us (not the mailbox, not the message). */
static int blocks_us(const md_smtp_reply *rep, const md_diag_settings *s)
{
    if (rep->code < 500 || strncmp(rep->enhanced, "5.7.", 4) != 0)
        return 0;
    static const char *const words[] = { "blocklist", "blacklist", "block list", "black list",
                                         "dnsbl", "rbl", "spamhaus", "spamcop", "listed",
                                         "blocked", "reputation" };
    char lower[sizeof rep->text];
    size_t n = strlen(rep->text);
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)((rep->text[i] >= 'A' && rep->text[i] <= 'Z') ? rep->text[i] + 32 : rep->text[i]);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(lower, words[i]))
            return 1;
    for (size_t i = 0; s && i < s->nips; i++)
        if (strstr(rep->text, s->ips[i]))
            return 1;
    return 0;
}

static const char *probe_from(const run *x)
{
    const md_diag_settings *s = x->set;
    return s && s->from ? s->from : s && s->mail_from ? s->mail_from : "";
}

static const char *our_helo(const run *x)
{
    const md_diag_settings *s = x->set;
    return s && s->helo ? s->helo : s ? s->mail_helo : NULL;
}

/* A probe's or a send's result as lib/smtp describes it, as one field of
 * a layer (new reference). */
static json_t *smtp_fields(const md_smtp_result *res, const char *to)
{
    md_report *tmp = md_report_new("smtp", NULL);
    md_smtp_describe(res, to, tmp);
    json_t *o = json_incref(md_report_fields(tmp));
    md_report_free(tmp);
    return o;
}

/* The SMTP findings of res into layer id; a timeout that is the run's
 * deadline, not the server's, is unknown. */
static void smtp_into(run *x, md_diag_layer_id id, md_smtp_result *res, const char *what)
{
    md_report *rep = layer_open(x, id);
    int cut = res->outcome == MD_SMTP_FAILED && remaining(x) < 50;
    for (size_t i = 0; i < md_report_count(res->findings); i++) {
        const md_finding *f = md_report_get(res->findings, i);
        /* a host given up on for the deadline (smtp.host_failed says why
         * in its evidence) was not judged either */
        int timeout = strcmp(f->id, "smtp.timeout") == 0 || strcmp(f->id, "smtp.connect.timeout") == 0 ||
                      (strcmp(f->id, "smtp.host_failed") == 0 && f->nevidence > 0 &&
                       (strncmp(f->evidence[0], "smtp.timeout:", 13) == 0 ||
                        strncmp(f->evidence[0], "smtp.connect.timeout:", 21) == 0));
        copy_finding(rep, f, cut && timeout ? MD_SEV_OK : f->severity);
    }
    if (cut)
        layer_timeout(x, id, what);
}

static void layer_recipient(run *x)
{
    md_diag_result *r = x->r;
    if (x->opt->no_probe)
        return;
    if (!r->address_ok) {
        layer_skipped(x, MD_DIAG_RECIPIENT, "no probe: the address is not valid");
        return;
    }
    if (r->address.flags & MD_ADDRESS_LITERAL) {
        layer_skipped(x, MD_DIAG_RECIPIENT, "no probe: an address literal has no MX hosts to ask");
        return;
    }
    md_severity dom = r->layers[MD_DIAG_DOMAIN].status;
    if (r->layers[MD_DIAG_DOMAIN].timed_out || x->cancelled) {
        layer_timeout(x, MD_DIAG_RECIPIENT, "the probe (the MX route was not known in time)");
        return;
    }
    if (dom == MD_SEV_CRITICAL || dom == MD_SEV_UNKNOWN) {
        layer_skipped(x, MD_DIAG_RECIPIENT, "no probe: %s", dom == MD_SEV_CRITICAL
                      ? "the domain has no usable mail route"
                      : "the domain's mail route is unknown");
        return;
    }
    md_report *rep = layer_open(x, MD_DIAG_RECIPIENT);
    md_error err = { 0 };
    md_smtp_request req = {
        .dns = x->dns, .direct_port = x->set ? x->set->direct_port : 0, .helo = our_helo(x),
        .mail_from = probe_from(x), .rcpt_to = r->address.ascii, .tls = MD_SMTP_TLS_OPPORTUNISTIC,
        .quit_after = MD_SMTP_PHASE_RCPT, .allow_internal = x->set ? x->set->allow_internal : 0,
        .timeout_ms = (int)remaining(x),
    };
    if (req.timeout_ms <= 0) {
        layer_timeout(x, MD_DIAG_RECIPIENT, "the probe");
        return;
    }
    if (md_smtp_send(x->cfg->smtp, &req, &r->probe, &err) != MD_OK) {
        md_report_add(rep, "diag.skipped", MD_SEV_DEFAULT, "the probe could not be made: %s", err.text);
        md_smtp_result_clear(&r->probe);
        return;
    }
    r->probed = 1;
    md_smtp_result *p = &r->probe;
    if (p->outcome == MD_SMTP_REJECTED && blocks_us(&p->reply, x->set)) {
        md_finding *f = md_report_add(rep, "recipient.blocked", MD_SEV_DEFAULT,
                                      "%s refuses mail from us (our IP address or a blocklist is named)",
                                      p->host);
        md_finding_add_evidence(f, "%d %s %s", p->reply.code, p->reply.enhanced, p->reply.text);
    }
    smtp_into(x, MD_DIAG_RECIPIENT, p, "the probe");
    md_report_set(rep, "probe", smtp_fields(p, r->address.ascii));
}

/* --- layer 5: sender ------------------------------------------------------------------- */

static void layer_sender_start(run *x)
{
    /* SPF drives the channel itself: the queries of layers 3 and 5 that are
     * already queued progress while it waits. */
    if (x->snd == NULL)
        return;
    md_report *rep = layer_open(x, MD_DIAG_SENDER);
    md_report_set(rep, "from", json_string(x->set->from));
    json_t *ips = json_array();
    for (size_t i = 0; i < x->set->nips; i++)
        json_array_append_new(ips, json_string(x->set->ips[i]));
    md_report_set(rep, "ips", ips);
    md_report_set(rep, "helo", x->set->helo ? json_string(x->set->helo) : json_null());
    if (x->set->nips == 0)
        md_report_add_detail(rep, "no sending IPs configured ([sender] ips): SPF, blocklists and"
                             " reverse DNS are not checked");
    md_diag_sender_spf(x->snd, rep);
    if (md_diag_sender_timed_out(x->snd, MD_DIAG_CHECK_SPF))
        layer_timeout(x, MD_DIAG_SENDER, "the SPF evaluation");
}

static void layer_sender_finish(run *x)
{
    if (x->snd == NULL)
        return;
    md_report *rep = layer_open(x, MD_DIAG_SENDER);
    static const md_diag_check order[] = { MD_DIAG_CHECK_DKIM, MD_DIAG_CHECK_DMARC,
                                           MD_DIAG_CHECK_DNSBL, MD_DIAG_CHECK_RDNS };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        md_diag_sender_report(x->snd, order[i], rep);
}

/* --- layer 6: send ----------------------------------------------------------------------- */

static void layer_send(run *x)
{
    md_diag_result *r = x->r;
    static const char *const templates[] = { "plain", "reset", "verify", "username" };
    if (!x->opt->send)
        return;
    md_report *rep = layer_open(x, MD_DIAG_SEND);
    if (!r->address_ok) {
        layer_skipped(x, MD_DIAG_SEND, "nothing sent: the address is not valid");
        return;
    }
    const md_diag_settings *s = x->set;
    const char *from = s && s->mail_from ? s->mail_from : probe_from(x);
    if (*from == '\0') {
        layer_skipped(x, MD_DIAG_SEND, "nothing sent: no sender ([mail] from or [sender] from)");
        return;
    }
    if (remaining(x) <= 0) {
        layer_timeout(x, MD_DIAG_SEND, "the send");
        return;
    }
    md_error err = { 0 };
    const char *tpl = templates[r->email];
    md_message_request mr = { .template_name = tpl, .template_dir = s ? s->template_dir : NULL,
                              .from = from, .from_name = s ? s->from_name : NULL,
                              .to = r->address.ascii, .product = s ? s->product : NULL,
                              .test_send = 1 };
    char *token = NULL, *link = NULL;
    md_token_keys *throwaway = NULL;
    md_message *m = NULL;
    if (r->email == MD_DIAG_EMAIL_RESET || r->email == MD_DIAG_EMAIL_VERIFY) {
        const md_token_keys *keys = x->cfg->keys;
        if (keys == NULL)
            keys = throwaway = md_token_keys_throwaway(&err);
        int64_t now = (int64_t)time(NULL), ttl = s && s->ttl ? s->ttl : MD_TOKEN_TTL_DEFAULT;
        if (keys)
            token = md_token_issue(keys, tpl, r->address.ascii, "", now, ttl, &err);
        if (token) {
            const char *base = r->email == MD_DIAG_EMAIL_RESET ? (s ? s->reset_url : NULL)
                                                                : (s ? s->verify_url : NULL);
            link = base ? md_xasprintf("%s%s", base, token)
                        : md_xasprintf("https://example.com/%s?token=%s", tpl, token);
            mr.link = link;
            mr.expires = now + ttl;
            mr.link_is_test = md_token_keys_throwaway_p(keys);
        }
    }
    if ((mr.template_name && (r->email == MD_DIAG_EMAIL_RESET || r->email == MD_DIAG_EMAIL_VERIFY)
         && token == NULL) || md_message_compose(&mr, &m, &err) != MD_OK) {
        layer_skipped(x, MD_DIAG_SEND, "nothing sent: the message could not be made: %s", err.text);
        goto done;
    }
    int budget = (int)remaining(x);
    md_smtp_request req = {
        .server = s ? s->server : NULL, .dns = x->dns, .direct_port = s ? s->direct_port : 0,
        .helo = our_helo(x), .mail_from = from, .rcpt_to = r->address.ascii, .data = m->data,
        .len = m->len, .message_id = m->message_id, .tls = s ? s->tls : MD_SMTP_TLS_DEFAULT,
        .auth_user = s ? s->user : NULL, .auth_password = x->cfg->password,
        .allow_internal = s ? s->allow_internal : 0,
        .timeout_ms = s && s->send_timeout_ms && s->send_timeout_ms < budget ? s->send_timeout_ms : budget,
    };
    if (md_smtp_send(x->cfg->smtp, &req, &r->send, &err) != MD_OK) {
        md_smtp_result_clear(&r->send);
        layer_skipped(x, MD_DIAG_SEND, "nothing sent: %s", err.text);
        goto done;
    }
    r->sent = 1;
    smtp_into(x, MD_DIAG_SEND, &r->send, "the send");
    md_report_set(rep, "send", smtp_fields(&r->send, r->address.ascii));
    md_report_set(rep, "template", json_string(tpl));
done:
    md_message_free(m);
    free(token);
    free(link);
    md_token_keys_free(throwaway);
}

/* --- the verdict ----------------------------------------------------------------------- */

static const char *email_phrase(md_diag_email e)
{
    switch (e) {
    case MD_DIAG_EMAIL_RESET: return "The password-reset email";
    case MD_DIAG_EMAIL_VERIFY: return "The verification email";
    case MD_DIAG_EMAIL_USERNAME: return "The username reminder";
    default: return "The product's emails";
    }
}

static const char *typo_suggestion(const md_report *rep)
{
    json_t *t = json_object_get(md_report_fields(rep), "typo");
    return json_string_value(json_object_get(t, "address"));
}

/* The first of our IPs whose SPF result is fail or softfail, or NULL. */
static const char *spf_failing(const md_report *rep)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(md_report_fields(rep), "spf"), i, e) {
        const char *res = json_string_value(json_object_get(e, "result"));
        if (res && (strcmp(res, "fail") == 0 || strcmp(res, "softfail") == 0))
            return json_string_value(json_object_get(e, "ip"));
    }
    return NULL;
}

/* The reason, in words a user reads: the finding's own summary unless the
 * id has a plainer sentence here. */
static void reason(const md_diag_result *r, md_diag_layer_id layer, const md_finding *f,
                   char *out, size_t size)
{
    const char *dom = r->address_ok ? r->address.domain : "";
    const md_smtp_result *p = layer == MD_DIAG_SEND ? &r->send : &r->probe;
    int smtp = (layer == MD_DIAG_RECIPIENT && r->probed) || (layer == MD_DIAG_SEND && r->sent);
    if (strcmp(f->id, "address.typo") == 0 && typo_suggestion(r->layers[layer].report))
        snprintf(out, size, "the address looks mistyped; did you mean %s?",
                 typo_suggestion(r->layers[layer].report));
    else if (strcmp(f->id, "mx.null") == 0)
        snprintf(out, size, "%s publishes a null MX, so it accepts no mail", dom);
    else if (strcmp(f->id, "domain.nxdomain") == 0)
        snprintf(out, size, "the domain %s does not exist", dom);
    else if (strcmp(f->id, "mx.none") == 0)
        snprintf(out, size, "%s has no MX record and no address, so no mail can be delivered", dom);
    else if (layer == MD_DIAG_DOMAIN && strcmp(f->id, "dns.temporary") == 0)
        snprintf(out, size, "the DNS lookup of where mail for %s goes failed temporarily, so"
                 " nothing after it could be checked", dom);
    else if (smtp && strcmp(f->id, "smtp.rcpt.rejected") == 0 && strncmp(p->reply.enhanced, "5.1.", 4) == 0)
        snprintf(out, size, "the mailbox does not exist: %s answered %d %s %.200s", p->host,
                 p->reply.code, p->reply.enhanced, p->reply.text);
    else if (smtp && strcmp(f->id, "recipient.blocked") == 0)
        snprintf(out, size, "the receiver blocks us: %s answered %d %s %.200s", p->host,
                 p->reply.code, p->reply.enhanced, p->reply.text);
    else if (smtp && (strcmp(f->id, "smtp.rcpt.deferred") == 0 || strcmp(f->id, "smtp.greylisted") == 0 ||
                      strcmp(f->id, "smtp.mail.deferred") == 0))
        snprintf(out, size, "it is deferred (greylisting or a rate limit), so the email will come"
                 " later: %s answered %d %s %.200s", p->host, p->reply.code, p->reply.enhanced, p->reply.text);
    else if ((strcmp(f->id, "spf.fail") == 0 || strcmp(f->id, "spf.softfail") == 0) &&
             layer == MD_DIAG_SENDER && spf_failing(r->layers[layer].report))
        snprintf(out, size, "the SPF record of our sending domain does not authorize our IP %s"
                 " (SPF %s), so receivers refuse or junk our email",
                 spf_failing(r->layers[layer].report), f->id + 4);
    else if (strcmp(f->id, "address.suppressed") == 0)
        snprintf(out, size, "the address is suppressed after a bounce or complaint, so nothing is"
                 " sent to it (%.200s)", f->nevidence ? f->evidence[0] : f->summary);
    else
        snprintf(out, size, "%.400s", f->summary);
}

static void decide(md_diag_result *r)
{
    r->status = MD_SEV_OK;
    for (int i = 0; i < MD_DIAG_NLAYERS; i++) {
        md_diag_layer *l = &r->layers[i];
        if (!l->ran)
            continue;
        l->status = md_report_status(l->report);
        r->status = md_severity_worst(r->status, l->status);
        if (r->verdict.set || l->status == MD_SEV_OK)
            continue;
        for (size_t k = 0; k < md_report_count(l->report); k++) {
            const md_finding *f = md_report_get(l->report, k);
            if (f->severity != l->status)
                continue;
            md_diag_verdict *v = &r->verdict;
            v->set = 1;
            v->layer = (md_diag_layer_id)i;
            v->severity = l->status;
            snprintf(v->id, sizeof v->id, "%s", f->id);
            char why[600];
            reason(r, v->layer, f, why, sizeof why);
            const char *who = email_phrase(r->email);
            if (l->status == MD_SEV_UNKNOWN)
                snprintf(v->summary, sizeof v->summary, "Whether %c%s can arrive is not known: %s.",
                         who[0] + 32, who + 1, why);
            else
                snprintf(v->summary, sizeof v->summary, "%s %s: %s.", who,
                         l->status == MD_SEV_CRITICAL ? "cannot arrive" : "may not arrive", why);
            /* one sentence: no stop after a summary's own stop or question mark */
            size_t n = strlen(v->summary);
            if (n >= 2 && (v->summary[n - 2] == '.' || v->summary[n - 2] == '?'))
                v->summary[n - 1] = '\0';
            break;
        }
    }
}

/* --- the run --------------------------------------------------------------------------- */

md_status md_diag_run(const md_diag_config *cfg, const char *address, const md_diag_options *opt,
                      md_diag_result **out, md_error *err)
{
    static const md_diag_options defaults = { 0 };
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    if (cfg == NULL || cfg->dns == NULL)
        return md_error_set(err, MD_CONFIG, "diag", "a diagnosis needs a resolver");
    if ((opt->send || !opt->no_probe) && cfg->smtp == NULL)
        return md_error_set(err, MD_CONFIG, "diag", "a probe or a send needs an SMTP context");
    int64_t t0 = md_now_ms();
    md_diag_result *r = md_xcalloc(1, sizeof *r);
    r->input = md_xstrdup(address ? address : "");
    r->email = opt->email;
    r->advice = opt->advice;
    run *x = md_xcalloc(1, sizeof *x);
    *x = (run){ .cfg = cfg, .set = cfg->settings, .opt = opt, .r = r, .dns = cfg->dns,
                .deadline = t0 + (opt->timeout_ms > 0 ? opt->timeout_ms : DIAG_TIMEOUT_DEFAULT_MS) };

    md_error aerr = { 0 };
    r->address_ok = md_address_parse(address, &r->address, &aerr) == MD_OK;
    if (!r->address_ok) {
        md_finding *f = md_report_add(layer_open(x, MD_DIAG_ADDRESS), "address.invalid",
                                      MD_SEV_DEFAULT, "not a valid email address: %s", aerr.text);
        md_finding_add_evidence(f, "given: %s", r->input);
    }
    start_dns(x);
    md_dns_step(x->dns, 0);          /* the questions leave now ... */
    layer_account(x);                /* ... while the store is read */
    layer_sender_start(x);
    finish_dns(x);
    layer_domain(x);
    layer_address(x);
    /* the order of the layers in the result; the probe needs the domain's status */
    if (r->layers[MD_DIAG_DOMAIN].ran)
        r->layers[MD_DIAG_DOMAIN].status = md_report_status(r->layers[MD_DIAG_DOMAIN].report);
    layer_recipient(x);
    layer_sender_finish(x);
    layer_send(x);

    md_report_free(x->mx);
    md_diag_sender_free(x->snd);
    free(x);
    decide(r);
    r->elapsed_ms = md_now_ms() - t0;
    *out = r;
    return MD_OK;
}

void md_diag_result_free(md_diag_result *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < MD_DIAG_NLAYERS; i++)
        md_report_free(r->layers[i].report);
    if (r->probed)
        md_smtp_result_clear(&r->probe);
    if (r->sent)
        md_smtp_result_clear(&r->send);
    free(r->input);
    free(r);
}
