/* lib/health: the run (see health.h): the DNS checks on this thread's
 * channel, relay and send in a thread of their own, one deadline. */
#include "config.h"
#include "health.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address/address.h"
#include "arrival/arrival.h"
#include "message/message.h"

static const char *const check_names[MD_HEALTH_NCHECKS] = {
    "spf", "dkim", "dmarc", "dnsbl", "rdns", "relay", "send"
};

_Static_assert((int)MD_HEALTH_SPF == (int)MD_DIAG_CHECK_SPF && (int)MD_HEALTH_RDNS == (int)MD_DIAG_CHECK_RDNS &&
               (int)MD_HEALTH_RELAY == (int)MD_DIAG_NCHECKS, "the DNS checks are lib/diag's");

const char *md_health_check_name(md_health_check_id c)
{
    return (unsigned)c < MD_HEALTH_NCHECKS ? check_names[c] : "unknown";
}

int md_health_check_parse(const char *name)
{
    for (int i = 0; name && i < MD_HEALTH_NCHECKS; i++)
        if (strcmp(name, check_names[i]) == 0)
            return i;
    return -1;
}

md_status md_health_checks_parse(const char *list, unsigned *mask, md_error *err)
{
    *mask = 0;
    char *copy = md_xstrdup(list ? list : "");
    md_status st = MD_OK;
    for (char *save = NULL, *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        int c = md_health_check_parse(t);
        if (c < 0) {
            st = md_error_set(err, MD_CONFIG, "health.checks", "'%.40s' is not a check (spf, dkim, dmarc,"
                              " dnsbl, rdns, relay, send)", t);
            break;
        }
        *mask |= 1u << c;
    }
    free(copy);
    if (st == MD_OK && *mask == 0)
        st = md_error_set(err, MD_CONFIG, "health.checks", "no check named");
    return st;
}

/* --- settings ---------------------------------------------------------------------- */

static const char *get(const md_conf *conf, const char *key)
{
    const char *v = md_conf_get(conf, "health", key);
    return v && *v ? v : NULL;
}

static md_status bad(const md_conf *conf, const char *key, md_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static md_status bad(const md_conf *conf, const char *key, md_error *err, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return md_error_set(err, MD_CONFIG, "config", "%s:%lu: [health] %s: %s", md_conf_path(conf),
                        md_conf_line(conf, "health", key), key, why);
}

md_status md_health_settings_load(const md_conf *conf, md_health_settings *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    if (conf == NULL)
        return MD_OK;
    md_error e = { 0 };
    const char *checks = get(conf, "checks");
    if (checks && md_health_checks_parse(checks, &out->checks, &e) != MD_OK)
        return bad(conf, "checks", err, "%s", e.text);
    out->seed = get(conf, "seed");
    if (out->seed && md_address_check(out->seed, 0, NULL, &e) != MD_OK)
        return bad(conf, "seed", err, "'%.80s' is not an email address: %s", out->seed, e.text);
    out->seed_mailbox = get(conf, "seed_mailbox");
    if (out->seed_mailbox && strncasecmp(out->seed_mailbox, "imaps://", 8) != 0 &&
        strncasecmp(out->seed_mailbox, "imap://", 7) != 0)
        return bad(conf, "seed_mailbox", err, "an imaps://USER@HOST[:PORT][/FOLDER] URL (or imap://)");
    if (out->seed_mailbox && out->seed == NULL)
        return bad(conf, "seed_mailbox", err, "needs seed, the address whose mailbox it is");
    out->seed_password_file = get(conf, "seed_password_file");
    out->seed_ca_file = get(conf, "seed_ca_file");
    out->state = get(conf, "state");
    return MD_OK;
}

unsigned md_health_default_checks(const md_health_settings *h)
{
    if (h && h->checks)
        return h->checks;
    return MD_HEALTH_DNS_CHECKS | 1u << MD_HEALTH_RELAY | (h && h->seed ? 1u << MD_HEALTH_SEND : 0);
}

/* --- the result ------------------------------------------------------------------- */

void md_health_result_free(md_health_result *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++)
        md_report_free(r->checks[i].report);
    md_report_free(r->run);
    free(r->listings);
    for (size_t i = 0; i < r->nchanges; i++) {
        free(r->changes[i].finding);
        free(r->changes[i].ip);
        free(r->changes[i].zone);
        free(r->changes[i].summary);
    }
    free(r->changes);
    free(r);
}

static void update_status(md_health_result *r)
{
    r->status = md_report_status(r->run);
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        md_health_check *c = &r->checks[i];
        if (!c->ran)
            continue;
        /* cut off by the deadline: unknown, whatever the part that ran
         * said (a conversation cut in the middle is no verdict) */
        c->status = c->timed_out ? MD_SEV_UNKNOWN : md_report_status(c->report);
        r->status = md_severity_worst(r->status, c->status);
    }
}

void md_health_note(md_health_result *r, const char *id, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    md_report_add(r->run, id, MD_SEV_DEFAULT, "%s", text);
    update_status(r);
}

/* --- the run ---------------------------------------------------------------------- */

typedef struct job {
    const md_health_config *cfg;
    md_health_result *r;
    unsigned checks;             /* relay and send, as asked and configured */
    int64_t t0, deadline;
} job;

static int64_t remaining(const job *j)
{
    int64_t left = j->deadline - md_now_ms();
    return left > 0 ? left : 0;
}

static void timeout(const job *j, md_health_check *c, const char *what)
{
    c->timed_out = 1;
    md_report_add(c->report, "health.timeout", MD_SEV_DEFAULT,
                  "%s did not finish within the run's budget of %.3g s: unknown", what,
                  j->r->timeout_ms / 1000.0);
}

static void not_configured(md_health_check *c, const char *what)
{
    md_report_add(c->report, "health.not_configured", MD_SEV_DEFAULT,
                  "this check needs %s in the configuration", what);
}

/* "HOST:PORT" of [mail] server (lib/smtp's default port 587). */
static void relay_name(const char *server, char *out, size_t size)
{
    snprintf(out, size, "%s%s", server, strchr(server, ':') ? "" : ":587");
}

static const char *our_from(const md_diag_settings *s)
{
    return s->mail_from ? s->mail_from : s->from;
}

static const char *our_helo(const md_diag_settings *s)
{
    return s->mail_helo ? s->mail_helo : s->helo;
}

/* A probe's or a send's result as lib/smtp describes it, as one field of
 * the check's report. */
static json_t *smtp_fields(const md_smtp_result *res, const char *to)
{
    md_report *tmp = md_report_new("smtp", NULL);
    md_smtp_describe(res, to, tmp);
    json_t *o = json_incref(md_report_fields(tmp));
    md_report_free(tmp);
    return o;
}

/* The SMTP findings of res into check c; a timeout at the run's deadline
 * (not the server's own) is the deadline's: unknown.  The relay check owns
 * the certificate's expiry (its thresholds), so lib/smtp's fixed 14-day
 * warning is left out. */
static void smtp_findings(const job *j, md_health_check *c, const md_smtp_result *res, const char *what)
{
    int cut = res->outcome == MD_SMTP_FAILED && remaining(j) < 50;
    for (size_t i = 0; i < md_report_count(res->findings); i++) {
        const md_finding *f = md_report_get(res->findings, i);
        if (strcmp(f->id, "tls.cert_expiring") == 0)
            continue;
        int t = strcmp(f->id, "smtp.timeout") == 0 || strcmp(f->id, "smtp.connect.timeout") == 0;
        md_finding *n = md_report_add(c->report, f->id, cut && t ? MD_SEV_OK : f->severity, "%s", f->summary);
        for (size_t e = 0; e < f->nevidence; e++)
            md_finding_add_evidence(n, "%s", f->evidence[e]);
    }
    if (cut)
        timeout(j, c, what);
}

static void cert_expiry(const job *j, md_health_check *c, const md_smtp_result *res)
{
    md_health_result *r = j->r;
    if (!res->tls.used || res->tls.not_after == 0)
        return;
    r->cert_not_after = res->tls.not_after;
    int64_t left = res->tls.not_after - (int64_t)time(NULL);
    int64_t days = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
    char when[32];
    md_health_time(res->tls.not_after, when, sizeof when);
    md_report_set(c->report, "certificate", json_pack("{s:s,s:s,s:I,s:I,s:I,s:b}", "subject", res->tls.subject,
                                                      "issuer", res->tls.issuer, "not_after",
                                                      (json_int_t)res->tls.not_after, "days_left",
                                                      (json_int_t)days, "seconds_left", (json_int_t)left,
                                                      "verified", res->tls.verified));
    if (left <= 0)
        return;   /* tls.cert_expired says so */
    md_severity sev = left < (int64_t)r->crit_days * 86400 ? MD_SEV_CRITICAL
                    : left < (int64_t)r->warn_days * 86400 ? MD_SEV_WARNING : MD_SEV_OK;
    if (sev == MD_SEV_OK) {
        md_report_add_detail(c->report, "the certificate of %s expires on %s, in %lld days", r->relay, when,
                             (long long)days);
        return;
    }
    md_finding *f = md_report_add(c->report, "relay.cert_expiring", sev,
                                  "the certificate of %s expires in %lld days, on %s (%s under %d days)",
                                  r->relay, (long long)days, when, md_severity_name(sev),
                                  sev == MD_SEV_CRITICAL ? r->crit_days : r->warn_days);
    md_finding_add_evidence(f, "subject %s", res->tls.subject);
    md_finding_add_evidence(f, "issuer %s", res->tls.issuer);
}

static void check_relay(const job *j)
{
    md_health_result *r = j->r;
    md_health_check *c = &r->checks[MD_HEALTH_RELAY];
    const md_diag_settings *s = j->cfg->settings;
    int64_t t = md_now_ms();
    relay_name(s->server, r->relay, sizeof r->relay);
    md_report_set(c->report, "server", json_string(r->relay));
    if (remaining(j) <= 0) {
        timeout(j, c, "the relay probe");
        c->duration_ms = md_now_ms() - t;
        return;
    }
    /* The probe ends before MAIL: the envelope is checked, never sent. */
    const char *from = our_from(s);
    md_smtp_request req = {
        .server = s->server, .helo = our_helo(s), .mail_from = from ? from : "",
        .rcpt_to = from ? from : "postmaster@invalid", .tls = s->tls,
        .auth_user = s->user, .auth_password = j->cfg->password,
        .quit_after = s->user ? MD_SMTP_PHASE_AUTH
                    : s->tls == MD_SMTP_TLS_OFF ? MD_SMTP_PHASE_EHLO : MD_SMTP_PHASE_STARTTLS,
        .timeout_ms = (int)remaining(j),
    };
    md_smtp_result res;
    md_error err = { 0 };
    if (md_smtp_send(j->cfg->smtp, &req, &res, &err) != MD_OK) {
        md_report_add(c->report, "config.error", MD_SEV_UNKNOWN, "the relay cannot be probed: %s", err.text);
    } else {
        r->smtp_ms = res.elapsed_ms;
        smtp_findings(j, c, &res, "the relay probe");
        cert_expiry(j, c, &res);
        if (s->user == NULL)
            md_report_add_detail(c->report, "no [mail] user: AUTH is not checked");
        if (s->tls == MD_SMTP_TLS_OFF)
            md_report_add_detail(c->report, "[mail] tls = off: STARTTLS is not checked");
        md_report_set(c->report, "probe", smtp_fields(&res, NULL));
    }
    md_smtp_result_clear(&res);
    c->duration_ms = md_now_ms() - t;
}

static void check_send(const job *j)
{
    md_health_result *r = j->r;
    md_health_check *c = &r->checks[MD_HEALTH_SEND];
    const md_diag_settings *s = j->cfg->settings;
    const md_health_settings *h = j->cfg->health;
    int64_t t = md_now_ms();
    md_arrival *mailbox = NULL;
    md_arrival_result down;
    int have_down = 0;
    md_message *m = NULL;
    md_error err = { 0 };
    md_report_set(c->report, "seed", json_string(h->seed));
    if (remaining(j) <= 0) {
        timeout(j, c, "the test send");
        goto done;
    }
    /* The mailbox is opened first: a mailbox that cannot be read is known
     * before a message goes out, and its login is not part of the wait. */
    if (h->seed_mailbox) {
        md_arrival_options ao = { .url = h->seed_mailbox, .password = j->cfg->imap_password,
                                  .ca_file = h->seed_ca_file, .timeout_ms = (unsigned)remaining(j),
                                  .delete_found = 1 };
        if (md_arrival_open(&ao, &mailbox, &err) != MD_OK) {
            md_arrival_open_failed(h->seed_mailbox, &err, &down);
            have_down = 1;
        }
    }
    md_message_request mr = { .template_name = "plain", .template_dir = s->template_dir, .from = our_from(s),
                              .from_name = s->from_name, .to = h->seed, .subject = "maildiag health check",
                              .product = s->product, .test_send = 1,
                              .test_sender = r->program };
    if (md_message_compose(&mr, &m, &err) != MD_OK) {
        md_report_add(c->report, "config.error", MD_SEV_UNKNOWN, "the test email cannot be made: %s", err.text);
        goto done;
    }
    int left = (int)remaining(j);
    md_smtp_request req = {
        .server = s->server, .helo = our_helo(s), .mail_from = our_from(s), .rcpt_to = h->seed,
        .data = m->data, .len = m->len, .message_id = m->message_id, .tls = s->tls,
        .auth_user = s->user, .auth_password = j->cfg->password,
        .timeout_ms = s->send_timeout_ms && s->send_timeout_ms < left ? s->send_timeout_ms : left,
    };
    md_smtp_result res;
    if (left <= 0) {
        timeout(j, c, "the test send");
        goto done;
    }
    if (md_smtp_send(j->cfg->smtp, &req, &res, &err) != MD_OK) {
        md_report_add(c->report, "config.error", MD_SEV_UNKNOWN, "the test email cannot be sent: %s", err.text);
        md_smtp_result_clear(&res);
        goto done;
    }
    r->send_ms = res.elapsed_ms;
    smtp_findings(j, c, &res, "the test send");
    md_report_set(c->report, "send", smtp_fields(&res, h->seed));
    if (mailbox) {
        md_arrival_result ar;
        md_arrival_sent sent = { m->data, m->len, m->message_id, res.final_reply_ms, res.host, res.queue_id };
        if (res.outcome != MD_SMTP_ACCEPTED) {
            md_arrival_not_awaited(mailbox, md_smtp_outcome_name(res.outcome), &ar);
        } else {
            /* what is left of the run: a message that has not arrived by
             * the deadline did not arrive in the time monitoring allows */
            int64_t wait = remaining(j);
            md_arrival_set_timeout(mailbox, wait > 0 ? (unsigned)wait : 1u);
            if (md_arrival_wait(mailbox, &sent, &ar, &err) != MD_OK)
                md_arrival_open_failed(h->seed_mailbox, &err, &ar);
        }
        if (ar.outcome == MD_ARRIVAL_FOUND && ar.latency_ms >= 0)
            r->delivery_ms = ar.latency_ms;
        md_arrival_report(&ar, c->report);
        md_arrival_describe(&ar, c->report);
        md_arrival_result_clear(&ar);
    }
    md_smtp_result_clear(&res);
done:
    if (have_down) {
        md_arrival_report(&down, c->report);
        md_arrival_describe(&down, c->report);
        md_arrival_result_clear(&down);
    }
    md_arrival_free(mailbox);
    md_message_free(m);
    c->duration_ms = md_now_ms() - t;
}

static void *smtp_thread(void *arg)
{
    const job *j = arg;
    if (j->checks & (1u << MD_HEALTH_RELAY))
        check_relay(j);
    if (j->checks & (1u << MD_HEALTH_SEND))
        check_send(j);
    return NULL;
}

/* The DNS checks: queued at once, SPF driving the channel, then the rest
 * driven until their answers are in or the deadline passes. */
static void dns_checks(const job *j, unsigned checks)
{
    md_health_result *r = j->r;
    md_diag_sender *snd = md_diag_sender_start(j->cfg->dns, j->cfg->settings, checks, j->deadline);
    md_dns_step(j->cfg->dns, 0);     /* the questions leave now */
    if (checks & (1u << MD_HEALTH_SPF))
        md_diag_sender_spf(snd, r->checks[MD_HEALTH_SPF].report);
    while (md_diag_sender_pending(snd) && remaining(j) > 0) {
        int64_t wait = remaining(j);
        md_dns_step(j->cfg->dns, wait > 100 ? 100 : (int)wait);
    }
    if (md_diag_sender_pending(snd)) {
        md_diag_sender_expire(snd);
        md_dns_cancel(j->cfg->dns);
    }
    static const char *const what[] = { "the SPF evaluation", "the DKIM lookups", "the DMARC lookups",
                                        "the blocklist lookups", "the reverse DNS lookups" };
    r->dns_ms = 0;
    for (int i = 0; i < MD_DIAG_NCHECKS; i++) {
        if (!(checks & (1u << i)))
            continue;
        md_health_check *c = &r->checks[i];
        int64_t before = md_now_ms();
        md_diag_sender_report(snd, (md_diag_check)i, c->report);
        int64_t spent = md_now_ms() - before;   /* DMARC may ask a few more questions */
        if (md_diag_sender_timed_out(snd, (md_diag_check)i))
            timeout(j, c, what[i]);
        int64_t ready = md_diag_sender_ready_ms(snd, (md_diag_check)i);
        c->duration_ms = (ready ? ready : before) - j->t0 + spent;
        if (c->duration_ms > r->dns_ms)
            r->dns_ms = c->duration_ms;
    }
    const md_dnsbl_result *bl = md_diag_sender_dnsbl(snd);
    if (bl && (checks & (1u << MD_HEALTH_DNSBL))) {
        r->listings = md_xcalloc(bl->nlistings + 1, sizeof *r->listings);
        r->dnsbl_known = !md_diag_sender_timed_out(snd, MD_DIAG_CHECK_DNSBL);
        for (size_t i = 0; i < bl->nlistings; i++) {
            const md_dnsbl_listing *l = &bl->listings[i];
            md_health_listing *o = &r->listings[r->nlistings++];
            snprintf(o->ip, sizeof o->ip, "%s", l->subject);
            snprintf(o->zone, sizeof o->zone, "%s", bl->zones[l->zone].zone);
            o->state = l->state;
            r->dnsbl_listed += l->state == MD_DNSBL_LISTED;
            if (l->state == MD_DNSBL_UNKNOWN)
                r->dnsbl_known = 0;
        }
    }
    md_diag_sender_free(snd);
}

md_status md_health_run(const md_health_config *cfg, const md_health_options *opt,
                        md_health_result **out, md_error *err)
{
    static const md_health_options defaults = { 0 };
    *out = NULL;
    if (opt == NULL)
        opt = &defaults;
    if (cfg == NULL || cfg->settings == NULL || cfg->health == NULL)
        return md_error_set(err, MD_CONFIG, "health", "a health run needs its settings");
    int warn = opt->warn_days, crit = opt->crit_days;
    if (warn == 0 && crit == 0) {
        warn = MD_HEALTH_WARN_DAYS_DEFAULT;
        crit = MD_HEALTH_CRIT_DAYS_DEFAULT;
    }
    if (warn < 0 || crit < 0 || crit > warn)
        return md_error_set(err, MD_CONFIG, "health", "the certificate thresholds must be 0 or more days,"
                            " critical (%d) no more than warning (%d)", crit, warn);
    unsigned asked = (opt->checks ? opt->checks : md_health_default_checks(cfg->health)) & MD_HEALTH_ALL;
    if ((asked & MD_HEALTH_DNS_CHECKS) && cfg->dns == NULL)
        return md_error_set(err, MD_CONFIG, "health", "the DNS checks need a resolver");
    if ((asked & ~MD_HEALTH_DNS_CHECKS) && cfg->smtp == NULL)
        return md_error_set(err, MD_CONFIG, "health", "relay and send need an SMTP context");

    md_health_result *r = md_xcalloc(1, sizeof *r);
    r->run = md_report_new("health", NULL);
    r->program = opt->program ? opt->program : "health";
    r->advice = opt->advice;
    r->started = (int64_t)time(NULL);
    r->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : MD_HEALTH_TIMEOUT_DEFAULT_MS;
    r->warn_days = warn;
    r->crit_days = crit;
    r->dns_ms = r->smtp_ms = r->send_ms = r->delivery_ms = -1;
    job j = { .cfg = cfg, .r = r, .t0 = md_now_ms() };
    j.deadline = j.t0 + r->timeout_ms;

    const md_diag_settings *s = cfg->settings;
    unsigned dns = 0;
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        if (!(asked & (1u << i)))
            continue;
        md_health_check *c = &r->checks[i];
        c->ran = 1;
        c->report = md_report_new("health", check_names[i]);
        const char *missing = NULL;
        if (i < MD_HEALTH_RELAY)
            missing = md_diag_sender_missing(s, (md_diag_check)i);
        else if (s->server == NULL)
            missing = i == MD_HEALTH_RELAY ? "[mail] server" : "[mail] server (the test email goes through the relay)";
        else if (i == MD_HEALTH_SEND && cfg->health->seed == NULL)
            missing = "[health] seed, the address to mail";
        else if (i == MD_HEALTH_SEND && our_from(s) == NULL)
            missing = "[mail] from";
        if (missing)
            not_configured(c, missing);
        else if (i < MD_HEALTH_RELAY)
            dns |= 1u << i;
        else
            j.checks |= 1u << i;
    }

    pthread_t th;
    int threaded = 0;
    if (j.checks)
        threaded = pthread_create(&th, NULL, smtp_thread, &j) == 0;
    if (dns)
        dns_checks(&j, dns);
    if (threaded)
        pthread_join(th, NULL);
    else if (j.checks)
        smtp_thread(&j);   /* no thread to be had: one after the other, same deadline */
    r->elapsed_ms = md_now_ms() - j.t0;
    update_status(r);
    *out = r;
    return MD_OK;
}
