/* lib/health without a network: check names, the [health] settings, a run
 * whose checks lack their settings, the state across runs (what changed,
 * what an unknown check cannot claim, --only keeping the others), the lock
 * on its own file, the perfdata and plugin line, the Prometheus textfile. */
#include "config.h"
#include "health/health.h"
#include "tap.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A result made by hand: checks in mask, each with the findings given as
 * "id" (catalogue severity) ..., NULL between checks. */
static md_health_result *result(int64_t started, unsigned mask, const char *const *ids)
{
    md_health_result *r = calloc(1, sizeof *r);
    r->run = md_report_new("t", NULL);
    r->program = "maildiag-health";
    r->started = started;
    r->warn_days = 21;
    r->crit_days = 7;
    r->dns_ms = r->smtp_ms = r->send_ms = r->delivery_ms = -1;
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        if (!(mask & (1u << i)))
            continue;
        md_health_check *c = &r->checks[i];
        c->ran = 1;
        c->report = md_report_new("t", md_health_check_name((md_health_check_id)i));
        for (; *ids; ids++)
            md_report_add(c->report, *ids, MD_SEV_DEFAULT, "%s here", *ids);
        ids++;
        c->status = md_report_status(c->report);
        r->status = md_severity_worst(r->status, c->status);
    }
    return r;
}

static void listing(md_health_result *r, const char *ip, const char *zone, md_dnsbl_state st)
{
    r->listings = realloc(r->listings, (r->nlistings + 1) * sizeof *r->listings);
    md_health_listing *l = &r->listings[r->nlistings++];
    snprintf(l->ip, sizeof l->ip, "%s", ip);
    snprintf(l->zone, sizeof l->zone, "%s", zone);
    l->state = st;
    r->dnsbl_listed += st == MD_DNSBL_LISTED;
}

static const md_health_change *change(const md_health_result *r, md_health_change_kind k)
{
    for (size_t i = 0; i < r->nchanges; i++)
        if (r->changes[i].kind == k)
            return &r->changes[i];
    return NULL;
}

/* Saves r over the state at path (loading what is there first) and returns
 * r compared with that previous state. */
static void cycle(const char *path, md_health_result *r)
{
    md_health_state *prev = NULL;
    md_error err = { 0 };
    md_status st = md_health_state_load(path, &prev, &err);
    ok(st == MD_OK || st == MD_NOTFOUND, "state loads (%s)", err.text);
    md_health_compare(r, prev);
    is_int(md_health_state_save(path, r, prev, &err), MD_OK, "state saved (%s)", err.text);
    md_health_state_free(prev);
}

static void test_names_settings(void)
{
    is_str(md_health_check_name(MD_HEALTH_RELAY), "relay", "relay's name");
    is_int(md_health_check_parse("dnsbl"), MD_HEALTH_DNSBL, "parse dnsbl");
    is_int(md_health_check_parse("DNSBL"), -1, "names are exact");
    unsigned m = 0;
    md_error err = { 0 };
    is_int(md_health_checks_parse("spf, relay send", &m, &err), MD_OK, "a list");
    is_int(m, 1u << MD_HEALTH_SPF | 1u << MD_HEALTH_RELAY | 1u << MD_HEALTH_SEND, "its mask");
    is_int(md_health_checks_parse("spf,mx", &m, &err), MD_CONFIG, "an unknown check");
    ok(strstr(err.text, "'mx' is not a check") != NULL, "names it: %s", err.text);
    is_int(md_health_checks_parse(" , ", &m, &err), MD_CONFIG, "an empty list");

    md_conf *c = NULL;
    md_health_settings h;
    const char *p = write_file("h.conf", "[health]\nseed = seed@lab.test\n"
                                         "seed_mailbox = imaps://seed@127.0.0.1:993/INBOX\n"
                                         "seed_password_file = /etc/maildiag/imap.pw\n");
    is_int(md_conf_load(p, &c, &err), MD_OK, "load (%s)", err.text);
    is_int(md_health_settings_load(c, &h, &err), MD_OK, "good [health] (%s)", err.text);
    is_str(h.seed, "seed@lab.test", "seed");
    is_int(md_health_default_checks(&h), MD_HEALTH_ALL, "with a seed, send is a default check");
    md_conf_free(c);
    is_int(md_health_default_checks(NULL), MD_HEALTH_ALL & ~(1u << MD_HEALTH_SEND), "without, it is not");

    static const struct { const char *text; const char *want; } bad[] = {
        { "[health]\nchecks = spf, mx\n", "h.conf:2: [health] checks: 'mx' is not a check" },
        { "[health]\nseed = not an address\n", "h.conf:2: [health] seed: 'not an address' is not an email" },
        { "[health]\nseed_mailbox = imaps://seed@127.0.0.1\n", "[health] seed_mailbox: needs seed" },
        { "[health]\nseed = a@b.test\nseed_mailbox = pop3://x\n", "h.conf:3: [health] seed_mailbox: an imaps://" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_file("h.conf", bad[i].text);
        is_int(md_conf_load(p, &c, &err), MD_OK, "load bad %zu", i);
        is_int(md_health_settings_load(c, &h, &err), MD_CONFIG, "bad %zu refused", i);
        ok(strstr(err.text, bad[i].want) != NULL, "bad %zu: got '%s', want '%s'", i, err.text, bad[i].want);
        md_conf_free(c);
    }
}

/* A run whose checks cannot run: each is unknown (never left out) and
 * names the setting it needs; nothing touches the network. */
static void test_not_configured(void)
{
    md_diag_settings s = { 0 };
    md_health_settings h = { 0 };
    md_health_config cfg = { .settings = &s, .health = &h };
    md_health_options opt = { .checks = 1u << MD_HEALTH_RELAY | 1u << MD_HEALTH_SEND, .timeout_ms = 1000 };
    md_health_result *r = NULL;
    md_error err = { 0 };
    is_int(md_health_run(&cfg, &opt, &r, &err), MD_CONFIG, "relay and send need an SMTP context");
    md_smtp_ctx *smtp = md_smtp_ctx_new(NULL, &err);
    cfg.smtp = smtp;
    opt.warn_days = 3;
    opt.crit_days = 7;
    is_int(md_health_run(&cfg, &opt, &r, &err), MD_CONFIG, "critical above warning is refused");
    opt.warn_days = opt.crit_days = 0;
    is_int(md_health_run(&cfg, &opt, &r, &err), MD_OK, "a run (%s)", err.text);
    is_int(r->status, MD_SEV_UNKNOWN, "unknown");
    for (int i = MD_HEALTH_RELAY; i <= MD_HEALTH_SEND; i++) {
        is_int(r->checks[i].ran, 1, "%s is in the result", md_health_check_name((md_health_check_id)i));
        ok(md_report_has(r->checks[i].report, "health.not_configured"), "%s: health.not_configured",
           md_health_check_name((md_health_check_id)i));
    }
    ok(strstr(md_report_get(r->checks[MD_HEALTH_RELAY].report, 0)->summary, "[mail] server") != NULL,
       "relay names [mail] server");
    is_int(r->checks[MD_HEALTH_SPF].ran, 0, "a check not asked for is not in it");
    is_int(r->warn_days, MD_HEALTH_WARN_DAYS_DEFAULT, "default thresholds");
    md_health_result_free(r);
    md_smtp_ctx_free(smtp);
}

static void test_changes(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/health.json", dir);
    const unsigned all = 1u << MD_HEALTH_SPF | 1u << MD_HEALTH_DKIM | 1u << MD_HEALTH_DNSBL;
    const int64_t t1 = 1796119200;   /* 2026-12-01T10:00Z */

    /* run 1: dkim warns, nothing listed */
    static const char *const ids1[] = { "spf.pass", NULL, "dkim.key_short", NULL, NULL };
    md_health_result *r = result(t1, all, ids1);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_NOT_LISTED);
    cycle(path, r);
    is_int(r->compared, 0, "a first run compares with nothing");
    md_health_result_free(r);

    /* run 2: listed, dkim fixed, spf fails */
    static const char *const ids2[] = { "spf.fail", NULL, "dkim.ok", NULL, "dnsbl.listed", NULL };
    r = result(t1 + 300, all, ids2);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_LISTED);
    cycle(path, r);
    is_int(r->compared, 1, "the second compares");
    is_int(r->previous, t1, "with the first run's time");
    const md_health_change *ch = change(r, MD_HEALTH_CHANGE_LISTED);
    ok(ch != NULL, "newly listed");
    if (ch)
        is_str(ch->summary, "dnsbl: 192.0.2.10 newly listed on bl.example since 2026-12-01T10:00Z", "its words");
    ch = change(r, MD_HEALTH_CHANGE_FIXED);
    ok(ch && ch->check == MD_HEALTH_DKIM, "dkim fixed");
    if (ch)
        is_str(ch->summary, "dkim: fixed (warning since 2026-12-01T10:00Z)", "its words");
    ch = change(r, MD_HEALTH_CHANGE_NEW);
    ok(ch && ch->check == MD_HEALTH_SPF && strcmp(ch->finding, "spf.fail") == 0, "spf: new spf.fail");
    md_health_result_free(r);

    /* run 3: the lists cannot be asked (unknown), spf cannot either: nothing
     * is claimed gone, and the state keeps what they last saw */
    static const char *const ids3[] = { "dns.temporary", NULL, "dkim.ok", NULL, "dns.temporary", NULL };
    r = result(t1 + 600, all, ids3);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_UNKNOWN);
    cycle(path, r);
    ok(change(r, MD_HEALTH_CHANGE_UNLISTED) == NULL, "unknown is not 'no longer listed'");
    ok(change(r, MD_HEALTH_CHANGE_RESOLVED) == NULL, "nor 'resolved'");
    ok(change(r, MD_HEALTH_CHANGE_FIXED) == NULL, "nor 'fixed'");
    ch = change(r, MD_HEALTH_CHANGE_STATUS);
    ok(ch && strcmp(ch->summary, "spf: now unknown (critical since 2026-12-01T10:05Z)") == 0,
       "the status moved to unknown: %s", ch ? ch->summary : "(none)");
    md_health_result_free(r);

    /* run 4: known again, still listed: no news; spf passes again */
    static const char *const ids4[] = { "spf.pass", NULL, "dkim.ok", NULL, "dnsbl.listed", NULL };
    r = result(t1 + 900, all, ids4);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_LISTED);
    cycle(path, r);
    ok(change(r, MD_HEALTH_CHANGE_LISTED) == NULL, "still listed is not newly listed");
    ch = change(r, MD_HEALTH_CHANGE_FIXED);
    ok(ch && ch->check == MD_HEALTH_SPF, "spf fixed");
    if (ch)
        is_str(ch->summary, "spf: fixed (critical since 2026-12-01T10:05Z)", "from what it was when last seen");
    is_int(r->nchanges, 1, "dkim, ok before and after, is no news");
    md_health_result_free(r);

    /* run 5: only spf (--only): dnsbl's state stays as it was */
    static const char *const ids5[] = { "spf.pass", NULL, NULL };
    r = result(t1 + 1200, 1u << MD_HEALTH_SPF, ids5);
    cycle(path, r);
    is_int(r->nchanges, 0, "no change");
    md_health_result_free(r);

    /* run 6: delisted, known */
    static const char *const ids6[] = { "spf.pass", NULL, "dkim.ok", NULL, NULL };
    r = result(t1 + 1500, all, ids6);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_NOT_LISTED);
    cycle(path, r);
    ch = change(r, MD_HEALTH_CHANGE_UNLISTED);
    ok(ch != NULL, "no longer listed");
    if (ch)
        is_str(ch->summary, "dnsbl: 192.0.2.10 no longer listed on bl.example", "its words");
    ok(change(r, MD_HEALTH_CHANGE_FIXED) && change(r, MD_HEALTH_CHANGE_FIXED)->check == MD_HEALTH_DNSBL,
       "dnsbl fixed");
    json_t *j = md_health_result_json(r);
    is_int(json_array_size(json_object_get(j, "changes")), r->nchanges, "JSON has the changes");
    json_decref(j);
    md_health_result_free(r);

    /* a state that is not ours is refused, not half-read */
    const char *bad = write_file("bad.json", "{\"schema_version\": 7, \"checks\": {}}");
    md_health_state *st = NULL;
    md_error err = { 0 };
    is_int(md_health_state_load(bad, &st, &err), MD_PROTOCOL, "another schema");
    bad = write_file("bad.json", "{\"checks\":");
    is_int(md_health_state_load(bad, &st, &err), MD_PROTOCOL, "truncated JSON");
    snprintf(path, sizeof path, "%s/none.json", dir);
    is_int(md_health_state_load(path, &st, &err), MD_NOTFOUND, "no state yet");
    snprintf(path, sizeof path, "%s/nodir/health.json", dir);
    r = result(t1, 1u << MD_HEALTH_SPF, ids5);
    is_int(md_health_state_save(path, r, NULL, &err), MD_INTERNAL, "an unwritable state is an error");
    md_health_result_free(r);
}

static void test_lock(void)
{
    char path[128], cmd[400];
    snprintf(path, sizeof path, "%s/locked.json", dir);
    md_health_lock *a = NULL, *b = NULL;
    md_error err = { 0 };
    is_int(md_health_lock_take(path, &a, &err), MD_OK, "first lock (%s)", err.text);
    is_int(md_health_lock_take(path, &b, &err), MD_TEMPFAIL, "a second is refused at once");
    ok(strstr(err.text, "another run holds the lock") != NULL, "and says so: %s", err.text);
    /* a run replaces the state by rename: the lock, on its own file, holds */
    static const char *const ids[] = { "spf.pass", NULL, NULL };
    md_health_result *r = result(1796119200, 1u << MD_HEALTH_SPF, ids);
    is_int(md_health_state_save(path, r, NULL, &err), MD_OK, "state written under the lock");
    is_int(md_health_state_save(path, r, NULL, &err), MD_OK, "and replaced");
    md_health_result_free(r);
    is_int(md_health_lock_take(path, &b, &err), MD_TEMPFAIL, "still held after the rename");
    md_health_lock_release(a);
    is_int(md_health_lock_take(path, &b, &err), MD_OK, "free once released");
    md_health_lock_release(b);
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *p = popen(cmd, "r");
    char out[16] = "";
    if (p && fgets(out, sizeof out, p) == NULL)
        out[0] = '\0';
    if (p)
        pclose(p);
    is_int(atoi(out), 0, "no temporary file is left");
}

/* label=value[UOM];[warn];[crit];[min];[max], each label once */
static int perf_ok(const char *perf, char *why, size_t size)
{
    char *copy = strdup(perf), *save = NULL;
    int good = 1;
    for (char *t = strtok_r(copy, " ", &save); t && good; t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        char *end;
        if (eq == NULL || eq == t) {
            snprintf(why, size, "no label in '%s'", t);
            good = 0;
            break;
        }
        strtod(eq + 1, &end);
        if (end == eq + 1) {
            snprintf(why, size, "no value in '%s'", t);
            good = 0;
        }
        while (good && *end && *end != ';')
            if (!strchr("smu%BKMGTcd", *end++)) {
                snprintf(why, size, "bad unit in '%s'", t);
                good = 0;
            }
        int semis = 0;
        for (char *q = end; *q; q++)
            semis += *q == ';';
        if (semis > 4) {
            snprintf(why, size, "too many fields in '%s'", t);
            good = 0;
        }
    }
    free(copy);
    return good;
}

static void test_outputs(void)
{
    static const char *const ids[] = { "spf.pass", NULL, "dnsbl.listed", NULL, "relay.cert_expiring", NULL, NULL };
    md_health_result *r = result(1796119200, 1u << MD_HEALTH_SPF | 1u << MD_HEALTH_DNSBL | 1u << MD_HEALTH_RELAY,
                                 ids);
    listing(r, "192.0.2.10", "bl.example", MD_DNSBL_LISTED);
    listing(r, "192.0.2.10", "dead.example", MD_DNSBL_UNUSABLE);
    r->dnsbl_known = 1;
    r->dns_ms = 12;
    r->smtp_ms = 210;
    r->elapsed_ms = 215;
    r->cert_not_after = r->started + 41 * 86400 + 5;
    snprintf(r->relay, sizeof r->relay, "smtp.example:587");
    md_report_add(r->checks[MD_HEALTH_SPF].report, "spf.pass", MD_SEV_OK, "a | in a summary");
    char perf[512], why[200] = "";
    md_health_perfdata(r, perf, sizeof perf);
    is_str(perf, "time=0.215s;;;0 dns_time=0.012s;;;0 smtp_time=0.210s;;;0 cert_days=41d;21:;7:"
                 " dnsbl_listed=1;;0;0", "perfdata");
    ok(perf_ok(perf, why, sizeof why), "perfdata parses as monitoring-plugins read it %s", why);

    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    md_health_write_plugin(r, m, 0);
    fclose(m);
    ok(strncmp(buf, "MAILDIAG HEALTH CRITICAL - dnsbl: 192.0.2.10 listed on bl.example; relay: ", 74) == 0,
       "the failing checks first, worst first: %.120s", buf);
    int bars = 0;
    for (const char *q = buf; *q && *q != '\n'; q++)
        bars += *q == '|';
    is_int(bars, 1, "one '|' on the first line: a '|' in a summary is not taken for perfdata");
    ok(strstr(buf, "; ok: spf | time=") != NULL, "then the ok ones, then the perfdata");
    free(buf);

    char path[128];
    snprintf(path, sizeof path, "%s/maildiag.prom", dir);
    md_error err = { 0 };
    is_int(md_health_write_prometheus(r, path, &err), MD_OK, "textfile written (%s)", err.text);
    const char *text = slurp(path);
    ok(text && strstr(text, "# TYPE maildiag_health_status gauge\nmaildiag_health_status 2\n"), "health status");
    ok(text && strstr(text, "maildiag_check_status{check=\"relay\"} 1\n"), "a check's status");
    ok(text && strstr(text, "maildiag_dnsbl_listed{ip=\"192.0.2.10\",zone=\"bl.example\"} 1\n"), "listed");
    ok(text && strstr(text, "maildiag_dnsbl_listed{ip=\"192.0.2.10\",zone=\"dead.example\"} NaN\n"),
       "an unusable zone is NaN, not 'not listed'");
    ok(text && strstr(text, "maildiag_tls_cert_expiry_timestamp_seconds{server=\"smtp.example:587\"} 1799661605\n"),
       "certificate expiry");
    ok(text && strstr(text, "maildiag_last_run_timestamp_seconds 1796119200\n"), "last run");
    snprintf(path, sizeof path, "%s/nodir/maildiag.prom", dir);
    is_int(md_health_write_prometheus(r, path, &err), MD_INTERNAL, "an unwritable textfile is an error");
    md_health_note(r, "health.prometheus_error", "%s", err.text);
    is_int(r->status, MD_SEV_CRITICAL, "a note does not hide a critical check");
    md_health_result_free(r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/md-t-health-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    test_names_settings();
    test_not_configured();
    test_changes();
    test_lock();
    test_outputs();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
