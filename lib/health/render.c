/* lib/health render: a health run as JSON, as a monitoring-plugin line
 * with perfdata, as text, and as a node_exporter textfile (see health.h). */
#include "config.h"
#include "health.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report/prom.h"

/* Checks in the order a reader wants them: worst first (critical, warning,
 * unknown, ok), then in their own order. */
static size_t order(const md_health_result *r, md_health_check_id *out)
{
    static const md_severity rank[] = { MD_SEV_CRITICAL, MD_SEV_WARNING, MD_SEV_UNKNOWN, MD_SEV_OK };
    size_t n = 0;
    for (size_t k = 0; k < sizeof rank / sizeof rank[0]; k++)
        for (int i = 0; i < MD_HEALTH_NCHECKS; i++)
            if (r->checks[i].ran && r->checks[i].status == rank[k])
                out[n++] = (md_health_check_id)i;
    return n;
}

/* The first finding that makes the check's status. */
static const md_finding *first(const md_health_check *c)
{
    for (size_t i = 0; i < md_report_count(c->report); i++)
        if (md_report_get(c->report, i)->severity == c->status)
            return md_report_get(c->report, i);
    return NULL;
}

/* One short phrase for a check that is not ok: its listings for dnsbl
 * ("192.0.2.10 listed on bl.example"), else its first finding's summary. */
static void headline(const md_health_result *r, md_health_check_id id, char *out, size_t size)
{
    const md_health_check *c = &r->checks[id];
    out[0] = '\0';
    if (id == MD_HEALTH_DNSBL && r->dnsbl_listed > 0 && c->status == MD_SEV_CRITICAL) {
        size_t len = 0;
        for (size_t i = 0; i < r->nlistings && len + 1 < size; i++)
            if (r->listings[i].state == MD_DNSBL_LISTED)
                len += (size_t)snprintf(out + len, size - len, "%s%s listed on %s", len ? ", " : "",
                                        r->listings[i].ip, r->listings[i].zone);
        return;
    }
    const md_finding *f = first(c);
    if (f == NULL)
        return;
    snprintf(out, size, "%s", f->summary);
    if (strlen(f->summary) > 160)
        snprintf(out + 157, size - 157, "...");
}

/* --- JSON --------------------------------------------------------------------------- */

static json_t *findings_json(const md_report *rep)
{
    json_t *j = md_report_to_json(rep);
    json_t *f = json_incref(json_object_get(j, "findings"));
    json_decref(j);
    return f ? f : json_array();
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    md_health_time(t, buf, sizeof buf);
    return json_string(buf);
}

json_t *md_health_result_json(const md_health_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(1));
    json_object_set_new(o, "status", json_string(md_severity_name(r->status)));
    json_object_set_new(o, "started", json_integer(r->started));
    json_object_set_new(o, "elapsed_ms", json_integer(r->elapsed_ms));
    json_object_set_new(o, "timeout_ms", json_integer(r->timeout_ms));
    json_t *checks = json_array();
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        const md_health_check *c = &r->checks[i];
        if (!c->ran)
            continue;
        json_t *e = json_object();
        json_object_set_new(e, "check", json_string(md_health_check_name((md_health_check_id)i)));
        json_object_set_new(e, "status", json_string(md_severity_name(c->status)));
        json_object_set_new(e, "findings", findings_json(c->report));
        json_object_set_new(e, "duration_ms", json_integer(c->duration_ms));
        json_object_set_new(e, "timed_out", json_boolean(c->timed_out));
        json_object_set(e, "data", md_report_fields(c->report));
        json_array_append_new(checks, e);
    }
    json_object_set_new(o, "checks", checks);
    json_object_set_new(o, "findings", findings_json(r->run));
    if (!r->compared) {
        json_object_set_new(o, "changes", json_null());
        json_object_set_new(o, "previous_run", json_null());
    } else {
        json_t *a = json_array();
        for (size_t i = 0; i < r->nchanges; i++) {
            const md_health_change *ch = &r->changes[i];
            json_t *e = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "check", md_health_check_name(ch->check), "kind",
                                  md_health_change_kind_name(ch->kind), "summary", ch->summary, "since",
                                  time_json(ch->since), "from", md_severity_name(ch->from), "to",
                                  md_severity_name(ch->to));
            if (ch->finding)
                json_object_set_new(e, "finding", json_string(ch->finding));
            if (ch->ip)
                json_object_set_new(e, "ip", json_string(ch->ip));
            if (ch->zone)
                json_object_set_new(e, "zone", json_string(ch->zone));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "changes", a);
        json_object_set_new(o, "previous_run", time_json(r->previous));
    }
    char perf[1024];
    md_health_perfdata(r, perf, sizeof perf);
    json_object_set_new(o, "perfdata", json_string(perf));
    return o;
}

/* --- the plugin line -------------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t size, len;
} sbuf;

static void add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(sbuf *b, const char *fmt, ...)
{
    if (b->len >= b->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    b->len = n < 0 ? b->size : b->len + (size_t)n;
    if (b->len >= b->size)
        b->len = b->size - 1;
}

void md_health_perfdata(const md_health_result *r, char *out, size_t size)
{
    /* label=value[UOM];[warn];[crit];[min];[max] (monitoring-plugins'
     * guidelines).  cert_days alerts below its thresholds: the range "W:"
     * is outside when the value is under W. */
    sbuf b = { out, size, 0 };
    out[0] = '\0';
    add(&b, "time=%.3fs;;;0", r->elapsed_ms / 1000.0);
    if (r->dns_ms >= 0)
        add(&b, " dns_time=%.3fs;;;0", r->dns_ms / 1000.0);
    if (r->smtp_ms >= 0)
        add(&b, " smtp_time=%.3fs;;;0", r->smtp_ms / 1000.0);
    if (r->send_ms >= 0)
        add(&b, " send_time=%.3fs;;;0", r->send_ms / 1000.0);
    if (r->delivery_ms >= 0)
        add(&b, " delivery_time=%.3fs;;;0", r->delivery_ms / 1000.0);
    if (r->cert_not_after) {
        int64_t left = r->cert_not_after - r->started;
        long long days = left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
        add(&b, " cert_days=%lldd;%d:;%d:", days, r->warn_days, r->crit_days);
    }
    if (r->checks[MD_HEALTH_DNSBL].ran && r->dnsbl_known && r->nlistings > 0)
        add(&b, " dnsbl_listed=%lu;;0;0", r->dnsbl_listed);
}

/* Text for the plugin protocol: one line, no '|' (it starts perfdata). */
static void plugin_clean(char *s)
{
    md_sanitize_text(s, strlen(s) + 1, s, strlen(s), 0);
    for (char *p = s; *p; p++)
        if (*p == '|')
            *p = '/';
}

static int plugin_line(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int plugin_line(FILE *out, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    plugin_clean(buf);
    fputs(buf, out);
    return fputc('\n', out);
}

int md_health_write_plugin(const md_health_result *r, FILE *out, unsigned flags)
{
    md_health_check_id ids[MD_HEALTH_NCHECKS];
    size_t n = order(r, ids);
    char summary[4096], one[600];
    sbuf b = { summary, sizeof summary, 0 };
    summary[0] = '\0';
    size_t nok = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->checks[ids[i]].status == MD_SEV_OK) {
            nok++;
            continue;
        }
        headline(r, ids[i], one, sizeof one);
        add(&b, "%s%s: %s", b.len ? "; " : "", md_health_check_name(ids[i]), one);
    }
    for (size_t i = 0; i < md_report_count(r->run); i++)
        add(&b, "%s%s", b.len ? "; " : "", md_report_get(r->run, i)->summary);
    if (nok == n)
        add(&b, "%sall %zu checks ok:", b.len ? "; " : "", n);
    else if (nok)
        add(&b, "; ok:");
    for (size_t i = 0, k = 0; i < n; i++)
        if (r->checks[ids[i]].status == MD_SEV_OK)
            add(&b, "%s %s", k++ ? "," : "", md_health_check_name(ids[i]));
    plugin_clean(summary);
    char perf[1024];
    md_health_perfdata(r, perf, sizeof perf);
    /* the service as monitoring-plugins name theirs: the program's name in
     * capitals, words apart ("MAILDIAG HEALTH") */
    char service[64];
    size_t sn = 0;
    for (const char *p = r->program ? r->program : "health"; *p && sn + 1 < sizeof service; p++)
        service[sn++] = *p == '-' || *p == '_' ? ' ' : *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
    service[sn] = '\0';
    md_plugin_write(out, service, r->status, summary, flags & MD_HEALTH_PLUGIN_SHORT ? NULL : perf);
    if (flags & MD_HEALTH_PLUGIN_SHORT)
        return ferror(out) ? -1 : 0;
    /* the long output */
    char when[32];
    md_health_time(r->previous, when, sizeof when);
    if (r->nchanges) {
        plugin_line(out, "changes since %s:", when);
        for (size_t i = 0; i < r->nchanges; i++)
            plugin_line(out, "%s", r->changes[i].summary);
    } else if (r->compared) {
        plugin_line(out, "no change since %s", when);
    }
    for (size_t i = 0; i < n; i++) {
        const md_health_check *c = &r->checks[ids[i]];
        plugin_line(out, "[%s] %s (%.3f s)", md_severity_label(c->status), md_health_check_name(ids[i]),
                    c->duration_ms / 1000.0);
        for (size_t k = 0; k < md_report_count(c->report); k++) {
            const md_finding *f = md_report_get(c->report, k);
            if (f->severity != MD_SEV_OK)
                plugin_line(out, "  %s %s: %s", md_severity_label(f->severity), f->id, f->summary);
        }
    }
    return ferror(out) ? -1 : 0;
}

/* --- text ------------------------------------------------------------------------------- */

int md_health_write_text(const md_health_result *r, FILE *out, unsigned flags)
{
    const char *reset = flags & MD_TEXT_COLOR ? "\033[0m" : "";
    md_health_check_id ids[MD_HEALTH_NCHECKS];
    size_t n = order(r, ids);
    fprintf(out, "%s: %s%s%s (%.2f s)\n\n", r->program ? r->program : "health", md_severity_color(r->status, flags),
            md_severity_label(r->status),
            reset, r->elapsed_ms / 1000.0);
    char one[600];
    for (int i = 0; i < MD_HEALTH_NCHECKS; i++) {
        const md_health_check *c = &r->checks[i];
        if (!c->ran)
            continue;
        headline(r, (md_health_check_id)i, one, sizeof one);
        if (c->status == MD_SEV_OK) {
            fprintf(out, "  %-6s %s%s%s\n", md_health_check_name((md_health_check_id)i), md_severity_color(c->status, flags),
                    md_severity_label(c->status), reset);
            continue;
        }
        fprintf(out, "  %-6s %s%-8s%s ", md_health_check_name((md_health_check_id)i), md_severity_color(c->status, flags),
                md_severity_label(c->status), reset);
        md_text_line(out, "%s", one);
    }
    for (size_t i = 0; i < md_report_count(r->run); i++) {
        const md_finding *f = md_report_get(r->run, i);
        fprintf(out, "  %s%s%s ", md_severity_color(f->severity, flags), md_severity_label(f->severity), reset);
        md_text_line(out, "%s: %s", f->id, f->summary);
    }
    char when[32];
    md_health_time(r->previous, when, sizeof when);
    if (!r->compared)
        fputs("\nNo earlier run to compare with.\n", out);
    else if (r->nchanges == 0)
        fprintf(out, "\nNo change since %s.\n", when);
    else {
        fprintf(out, "\nChanges since %s:\n", when);
        for (size_t i = 0; i < r->nchanges; i++)
            md_text_line(out, "  %s", r->changes[i].summary);
    }
    for (size_t i = 0; i < n; i++) {
        const md_health_check *c = &r->checks[ids[i]];
        int header = 0;
        for (size_t k = 0; k < md_report_count(c->report); k++) {
            const md_finding *f = md_report_get(c->report, k);
            if (f->severity == MD_SEV_OK && !(flags & MD_HEALTH_TEXT_ALL))
                continue;
            if (!header++)
                fprintf(out, "\n%s:\n", md_health_check_name(ids[i]));
            fprintf(out, "  %s%s%s ", md_severity_color(f->severity, flags), md_severity_label(f->severity), reset);
            md_text_line(out, "%s: %s", f->id, f->summary);
            for (size_t e = 0; (flags & MD_TEXT_EVIDENCE) && e < f->nevidence; e++)
                md_text_line(out, "      %s", f->evidence[e]);
            const char *a = r->advice && r->advice(f->id) ? r->advice(f->id) : md_diag_advice(f->id);
            if (a && f->severity != MD_SEV_OK)
                md_text_line(out, "      next: %s", a);
        }
    }
    return ferror(out) ? -1 : 0;
}

/* --- Prometheus ------------------------------------------------------------------------------ */

md_status md_health_write_prometheus(const md_health_result *r, const char *path, md_error *err)
{
    md_prom *p = md_prom_new();
    md_status st = MD_OK;
#define FAM(name, help) \
    if (st == MD_OK) st = md_prom_family(p, name, MD_PROM_GAUGE, help, err)
    FAM("maildiag_health_status", "Worst status of the last health run: 0 ok, 1 warning, 2 critical, 3 unknown.");
    FAM("maildiag_check_status", "Status of each check of the last run: 0 ok, 1 warning, 2 critical, 3 unknown.");
    FAM("maildiag_check_duration_seconds", "Time each check of the last run took to its answer.");
    FAM("maildiag_tls_cert_expiry_timestamp_seconds", "When the relay's TLS certificate expires (Unix time); NaN when not known.");
    FAM("maildiag_dnsbl_listed", "Whether a sending IP is listed on a DNS blocklist: 1 listed, 0 not, NaN unknown or the list unusable.");
    FAM("maildiag_last_run_timestamp_seconds", "When the last health run started (Unix time).");
#undef FAM
    if (st == MD_OK)
        st = md_prom_sample(p, "maildiag_health_status", NULL, (double)r->status, err);
    for (int i = 0; st == MD_OK && i < MD_HEALTH_NCHECKS; i++) {
        const md_health_check *c = &r->checks[i];
        if (!c->ran)
            continue;
        const char *labels[] = { "check", md_health_check_name((md_health_check_id)i), NULL };
        st = md_prom_sample(p, "maildiag_check_status", labels, (double)c->status, err);
        if (st == MD_OK)
            st = md_prom_sample(p, "maildiag_check_duration_seconds", labels, c->duration_ms / 1000.0, err);
    }
    if (st == MD_OK && r->checks[MD_HEALTH_RELAY].ran && r->relay[0]) {
        const char *labels[] = { "server", r->relay, NULL };
        st = md_prom_sample(p, "maildiag_tls_cert_expiry_timestamp_seconds", labels,
                            r->cert_not_after ? (double)r->cert_not_after : NAN, err);
    }
    for (size_t i = 0; st == MD_OK && i < r->nlistings; i++) {
        const md_health_listing *l = &r->listings[i];
        const char *labels[] = { "ip", l->ip, "zone", l->zone, NULL };
        double v = l->state == MD_DNSBL_LISTED ? 1 : l->state == MD_DNSBL_NOT_LISTED ? 0 : NAN;
        st = md_prom_sample(p, "maildiag_dnsbl_listed", labels, v, err);
    }
    if (st == MD_OK)
        st = md_prom_sample(p, "maildiag_last_run_timestamp_seconds", NULL, (double)r->started, err);
    if (st == MD_OK)
        st = md_prom_write_file(p, path, err);
    md_prom_free(p);
    return st;
}
