/* tools/cli-plugin: the monitoring-plugin status line, its thresholds and
 * its performance data, as the monitoring-plugins development guidelines
 * give them (cli.h). */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One end of a range: a number, or "~" (open) where allowed. */
static int range_end(const char *s, size_t n, int tilde_ok, double open, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (tilde_ok && strcmp(buf, "~") == 0) {
        *out = open;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || end == buf || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int cli_range_parse(const char *prog, const char *opt, const char *text, cli_range *r)
{
    const char *s = text;
    cli_range x = { .text = text, .lo = 0, .hi = INFINITY };
    if (*s == '@') {
        x.inside = 1;
        s++;
    }
    const char *colon = strchr(s, ':');
    int ok;
    if (colon == NULL)   /* "10": 0..10 */
        ok = range_end(s, strlen(s), 0, 0, &x.hi) == 0;
    else                 /* "10:", "~:10", "10:20" */
        ok = range_end(s, (size_t)(colon - s), 1, -INFINITY, &x.lo) == 0
             && (colon[1] == '\0' || range_end(colon + 1, strlen(colon + 1), 0, 0, &x.hi) == 0);
    if (!ok || x.lo > x.hi) {
        cli_usage_error(prog, "%s: '%s' is not a threshold range (N, N:, ~:N, N:M or @N:M)", opt, text);
        return -1;
    }
    *r = x;
    return 0;
}

int cli_range_alert(const cli_range *r, double v)
{
    if (r->text == NULL)
        return 0;
    int in = v >= r->lo && v <= r->hi;
    return r->inside ? in : !in;
}

void cli_plugin_init(cli_plugin *p, const char *label, const char *noun, const char *nouns)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->noun = noun;
    p->nouns = nouns;
    md_tally_init(&p->tally);
}

void cli_plugin_add(cli_plugin *p, const md_report *rep)
{
    md_severity st = md_report_status(rep);
    md_tally_add(&p->tally, st);
    if (p->first[st][0])
        return;
    const char *subject = md_report_subject(rep);
    for (size_t i = 0; i < md_report_count(rep); i++) {
        const md_finding *f = md_report_get(rep, i);
        if (f->severity == st) {
            /* "SUBJECT: SUMMARY", unless the summary starts with the subject */
            int named = subject == NULL || *subject == '\0'
                        || strncmp(f->summary, subject, strlen(subject)) == 0;
            snprintf(p->first[st], sizeof p->first[st], "%s%s%s", named ? "" : subject, named ? "" : ": ",
                     f->summary);
            return;
        }
    }
    snprintf(p->first[st], sizeof p->first[st], "%s%sno problems found", subject && *subject ? subject : "",
             subject && *subject ? ": " : "");
}

/* A perfdata value: integers as such, else three decimals. */
static void perf_value(md_buf *b, const cli_perf *d)
{
    char num[64];
    int n = d->integer ? snprintf(num, sizeof num, "%.0f", d->value) : snprintf(num, sizeof num, "%.3f", d->value);
    md_buf_add(b, num, (size_t)n);
}

/* 'label'=value[UOM];[warn];[crit];[min];[max] (the label quoted when it
 * holds a blank, '=' or a quote, a quote doubled). */
static void perf_one(md_buf *b, const cli_perf *d)
{
    if (b->len)
        MD_BUF_LIT(b, " ");
    if (strpbrk(d->label, " ='") != NULL) {
        MD_BUF_LIT(b, "'");
        for (const char *c = d->label; *c; c++) {
            if (*c == '\'')
                MD_BUF_LIT(b, "'");
            md_buf_add(b, c, 1);
        }
        MD_BUF_LIT(b, "'");
    } else {
        md_buf_add(b, d->label, strlen(d->label));
    }
    MD_BUF_LIT(b, "=");
    perf_value(b, d);
    if (d->uom)
        md_buf_add(b, d->uom, strlen(d->uom));
    const char *rest[4] = { d->warn, d->crit, d->min, d->max };
    int last = -1;
    for (int i = 0; i < 4; i++)
        if (rest[i])
            last = i;
    /* the counts are written value;;; as the guidelines' examples do */
    if (last < 2)
        last = 2;
    for (int i = 0; i <= last; i++) {
        MD_BUF_LIT(b, ";");
        if (rest[i])
            md_buf_add(b, rest[i], strlen(rest[i]));
    }
}

int cli_plugin_check(const char *prog, cli_format f, const cli_plugin *p)
{
    if ((p->warn.text || p->crit.text) && f != CLI_PLUGIN) {
        cli_usage_error(prog, "-w/--warning and -c/--critical go with --plugin");
        return -1;
    }
    return 0;
}

int cli_plugin_finish(const char *prog, cli_plugin *p, double measured, const cli_perf *perf,
                      size_t nperf)
{
    const md_tally *t = &p->tally;
    unsigned long total = md_tally_total(t);
    md_severity state = total ? t->worst : MD_SEV_UNKNOWN;
    md_severity limit = MD_SEV_OK;
    if (p->measure && cli_range_alert(&p->crit, measured))
        limit = MD_SEV_CRITICAL;
    else if (p->measure && cli_range_alert(&p->warn, measured))
        limit = MD_SEV_WARNING;
    char text[800];
    if (total == 0) {
        snprintf(text, sizeof text, "no %s checked: the input held none", p->nouns);
    } else if (limit != MD_SEV_OK && md_severity_worst(state, limit) == limit && limit != state) {
        /* the threshold decides the state */
        int secs = strcmp(p->measure, "time") == 0;
        snprintf(text, sizeof text, secs ? "%s %.3f s: past the %s threshold %s (%lu %s checked)"
                                         : "%s %g: past the %s threshold %s (%lu %s checked)", p->measure,
                 measured, limit == MD_SEV_CRITICAL ? "critical" : "warning",
                 limit == MD_SEV_CRITICAL ? p->crit.text : p->warn.text, total, total == 1 ? p->noun : p->nouns);
        state = limit;
    } else {
        snprintf(text, sizeof text, "%s (%lu of %lu %s %s)", p->first[state], t->n[state], total,
                 total == 1 ? p->noun : p->nouns, md_severity_name(state));
    }
    md_buf b = { 0 };
    cli_perf counts[] = {
        { .label = p->nouns, .value = (double)total, .integer = 1 },
        { .label = "critical", .value = (double)t->n[MD_SEV_CRITICAL], .integer = 1 },
        { .label = "warning", .value = (double)t->n[MD_SEV_WARNING], .integer = 1 },
        { .label = "unknown", .value = (double)t->n[MD_SEV_UNKNOWN], .integer = 1 },
        { .label = "ok", .value = (double)t->n[MD_SEV_OK], .integer = 1 },
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        perf_one(&b, &counts[i]);
    for (size_t i = 0; i < nperf; i++)
        perf_one(&b, &perf[i]);
    md_buf_add(&b, "", 1);
    errno = 0;
    int w = md_plugin_write(stdout, p->label, state, text, b.data);
    free(b.data);
    if (w != 0 || fflush(stdout) != 0)
        return cli_write_failed(prog, errno);
    return md_severity_exit_code(state);
}
