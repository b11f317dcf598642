/* lib/report: reports, severities and renderers. */
#include "config.h"
#include "report.h"
#include "base/base.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct md_report {
    char *tool;
    char *subject;
    md_finding *findings;
    size_t nfindings, cap;
    char **details;
    size_t ndetails;
    json_t *data;       /* fields set with md_report_set, in order */
};

static const char *const sev_names[] = { "ok", "warning", "critical", "unknown" };
static const char *const sev_labels[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

static int sev_valid(md_severity s)
{
    return s >= MD_SEV_OK && s <= MD_SEV_UNKNOWN;
}

const char *md_severity_name(md_severity sev)
{
    return sev_valid(sev) ? sev_names[sev] : "unknown";
}

const char *md_severity_label(md_severity sev)
{
    return sev_valid(sev) ? sev_labels[sev] : "UNKNOWN";
}

int md_severity_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, sev_names[i]) == 0)
            return i;
    return -1;
}

static int sev_rank(md_severity s)
{
    switch (s) {
    case MD_SEV_CRITICAL: return 3;
    case MD_SEV_WARNING: return 2;
    case MD_SEV_UNKNOWN: return 1;
    default: return 0;
    }
}

md_severity md_severity_worst(md_severity a, md_severity b)
{
    return sev_rank(b) > sev_rank(a) ? b : a;
}

int md_severity_exit_code(md_severity sev)
{
    return sev_valid(sev) ? (int)sev : 3;
}

md_report *md_report_new(const char *tool, const char *subject)
{
    md_report *rep = md_xcalloc(1, sizeof *rep);
    rep->tool = md_xstrdup(tool ? tool : "");
    /* shown to people: no control characters, UTF-8 kept */
    rep->subject = md_sanitize_dup(subject ? subject : "", subject ? strlen(subject) : 0);
    rep->data = json_object();
    if (rep->data == NULL)
        abort();
    return rep;
}

void md_report_free(md_report *rep)
{
    if (rep == NULL)
        return;
    for (size_t i = 0; i < rep->nfindings; i++) {
        md_finding *f = &rep->findings[i];
        free(f->id);
        free(f->summary);
        for (size_t j = 0; j < f->nevidence; j++)
            free(f->evidence[j]);
        free(f->evidence);
    }
    free(rep->findings);
    for (size_t i = 0; i < rep->ndetails; i++)
        free(rep->details[i]);
    free(rep->details);
    json_decref(rep->data);
    free(rep->tool);
    free(rep->subject);
    free(rep);
}

/* vasprintf into a sanitized single line.  Most lines fit the stack buffer,
 * so they are formatted once. */
static char *line_vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static char *line_vfmt(const char *fmt, va_list ap)
{
    if (strcmp(fmt, "%s") == 0) {
        /* most lines are one string: no printf machinery for them */
        const char *s = va_arg(ap, const char *);
        if (s == NULL)
            s = "(null)";
        return md_sanitize_dup(s, strlen(s));
    }
    char small[256];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0)
        n = 0;
    char *raw;
    if ((size_t)n < sizeof small) {
        raw = md_xstrndup(small, (size_t)n);
    } else {
        raw = md_xmalloc((size_t)n + 1);
        vsnprintf(raw, (size_t)n + 1, fmt, ap);
    }
    /* Keep UTF-8 (U-labels are shown to people) but never a control
     * character or an ill-formed byte. */
    return md_sanitize_text(raw, (size_t)n + 1, raw, (size_t)n, 0);
}

md_finding *md_report_add(md_report *rep, const char *id, md_severity sev,
                          const char *fmt, ...)
{
    const md_catalogue_entry *e = md_catalogue_find(id);
    if (rep->nfindings == rep->cap) {
        rep->cap = rep->cap ? rep->cap * 2 : 4;
        rep->findings = md_xrealloc(rep->findings, rep->cap * sizeof *rep->findings);
    }
    md_finding *f = &rep->findings[rep->nfindings++];
    memset(f, 0, sizeof *f);
    f->id = md_xstrdup(id);
    if (sev == MD_SEV_DEFAULT)
        sev = e ? e->severity : MD_SEV_UNKNOWN;
    f->severity = sev_valid(sev) ? sev : MD_SEV_UNKNOWN;
    va_list ap;
    va_start(ap, fmt);
    f->summary = line_vfmt(fmt, ap);
    va_end(ap);
    if (e == NULL) {
        f->severity = MD_SEV_UNKNOWN;
        md_finding_add_evidence(f, "internal: finding id %s is not in the catalogue", id);
    }
    return f;
}

void md_finding_add_evidence(md_finding *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = line_vfmt(fmt, ap);
    va_end(ap);
    f->evidence = md_xrealloc(f->evidence, (f->nevidence + 1) * sizeof *f->evidence);
    f->evidence[f->nevidence++] = line;
}

void md_report_add_findings(md_report *rep, const md_report *from)
{
    for (size_t i = 0; i < from->nfindings; i++) {
        const md_finding *src = &from->findings[i];
        if (rep->nfindings == rep->cap) {
            rep->cap = rep->cap ? rep->cap * 2 : 4;
            rep->findings = md_xrealloc(rep->findings, rep->cap * sizeof *rep->findings);
        }
        /* already sanitized and checked against the catalogue when added */
        md_finding *f = &rep->findings[rep->nfindings++];
        f->id = md_xstrdup(src->id);
        f->severity = src->severity;
        f->summary = md_xstrdup(src->summary);
        f->nevidence = src->nevidence;
        f->evidence = src->nevidence ? md_xcalloc(src->nevidence, sizeof *f->evidence) : NULL;
        for (size_t j = 0; j < src->nevidence; j++)
            f->evidence[j] = md_xstrdup(src->evidence[j]);
    }
}

void md_report_add_detail(md_report *rep, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = line_vfmt(fmt, ap);
    va_end(ap);
    rep->details = md_xrealloc(rep->details, (rep->ndetails + 1) * sizeof *rep->details);
    rep->details[rep->ndetails++] = line;
}

void md_report_set(md_report *rep, const char *key, json_t *val)
{
    if (val == NULL)
        return;
    json_object_set_new(rep->data, key, val);
}

void md_report_set_subject(md_report *rep, const char *subject)
{
    free(rep->subject);
    rep->subject = md_sanitize_dup(subject ? subject : "", subject ? strlen(subject) : 0);
}

json_t *md_report_fields(const md_report *rep)
{
    return rep->data;
}

const char *md_report_subject(const md_report *rep)
{
    return rep->subject;
}

size_t md_report_count(const md_report *rep)
{
    return rep->nfindings;
}

const md_finding *md_report_get(const md_report *rep, size_t i)
{
    return i < rep->nfindings ? &rep->findings[i] : NULL;
}

int md_report_has(const md_report *rep, const char *id)
{
    for (size_t i = 0; i < rep->nfindings; i++)
        if (strcmp(rep->findings[i].id, id) == 0)
            return 1;
    return 0;
}

md_severity md_report_status(const md_report *rep)
{
    md_severity worst = MD_SEV_OK;
    for (size_t i = 0; i < rep->nfindings; i++)
        worst = md_severity_worst(worst, rep->findings[i].severity);
    return worst;
}

json_t *md_report_to_json(const md_report *rep)
{
    /* Read back from the one renderer, so the tree and the line can never
     * disagree.  Not for bulk paths: they write the line. */
    md_buf b = { 0 };
    json_t *o = NULL;
    if (md_report_append_json(rep, &b) == 0)
        o = json_loadb(b.data, b.len, 0, NULL);
    md_buf_free(&b);
    return o;
}

/* Appends a summary or evidence line: sanitized when it was added
 * (line_vfmt), so well-formed UTF-8. */
static void append_text(md_buf *b, const char *s)
{
    md_json_append_string(b, s, strlen(s));
}

int md_report_append_json(const md_report *rep, md_buf *b)
{
    /* Written straight from the report into one buffer, without a merged
     * jansson tree built only to be printed and deleted: bulk tools write
     * one report per item. */
    const char *key;
    json_t *val;
    int rc = 0;

    MD_BUF_LIT(b, "{\"schema_version\":1");
    json_object_foreach(rep->data, key, val) {
        MD_BUF_LIT(b, ",");
        md_json_append_string(b, key, strlen(key));
        MD_BUF_LIT(b, ":");
        if (md_json_append(b, val) != 0) {
            MD_BUF_LIT(b, "null");
            rc = -1;
        }
    }
    md_report_append_json_end(rep, b);
    return rc;
}

void md_report_append_json_end(const md_report *rep, md_buf *b)
{
    MD_BUF_LIT(b, ",\"status\":\"");
    const char *st = md_severity_name(md_report_status(rep));
    md_buf_add(b, st, strlen(st));
    MD_BUF_LIT(b, "\",\"findings\":[");
    for (size_t i = 0; i < rep->nfindings; i++) {
        const md_finding *f = &rep->findings[i];
        const char *sev = md_severity_name(f->severity);
        if (i)
            MD_BUF_LIT(b, ",");
        MD_BUF_LIT(b, "{\"id\":");
        md_json_append_string(b, f->id, strlen(f->id));
        MD_BUF_LIT(b, ",\"severity\":\"");
        md_buf_add(b, sev, strlen(sev));
        MD_BUF_LIT(b, "\",\"summary\":");
        append_text(b, f->summary);
        if (f->nevidence > 0) {
            MD_BUF_LIT(b, ",\"evidence\":[");
            for (size_t j = 0; j < f->nevidence; j++) {
                if (j)
                    MD_BUF_LIT(b, ",");
                append_text(b, f->evidence[j]);
            }
            MD_BUF_LIT(b, "]");
        }
        MD_BUF_LIT(b, "}");
    }
    MD_BUF_LIT(b, "]}\n");
}

int md_report_write_json(const md_report *rep, FILE *out)
{
    md_buf b = { 0 };
    int rc = md_report_append_json(rep, &b);
    if (rc == 0 && fwrite(b.data, 1, b.len, out) != b.len)
        rc = -1;
    md_buf_free(&b);
    return rc;
}

const char *md_severity_color(md_severity s, unsigned flags)
{
    if (!(flags & MD_TEXT_COLOR))
        return "";
    switch (s) {
    case MD_SEV_OK: return "\033[32m";
    case MD_SEV_WARNING: return "\033[33m";
    case MD_SEV_CRITICAL: return "\033[31m";
    default: return "\033[35m";
    }
}

static const char *sev_color(md_severity s)
{
    return md_severity_color(s, MD_TEXT_COLOR);
}

void md_text_line(FILE *out, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    md_sanitize_text(buf, sizeof buf, buf, strlen(buf), 0);
    fputs(buf, out);
    fputc('\n', out);
}

int md_report_write_text(const md_report *rep, FILE *out, unsigned flags)
{
    int color = (flags & MD_TEXT_COLOR) != 0;
    md_severity st = md_report_status(rep);

    fprintf(out, "%s: %s%s%s\n", rep->subject, color ? sev_color(st) : "",
            md_severity_label(st), color ? "\033[0m" : "");
    for (size_t i = 0; i < rep->ndetails; i++)
        fprintf(out, "  %s\n", rep->details[i]);
    for (size_t i = 0; i < rep->nfindings; i++) {
        const md_finding *f = &rep->findings[i];
        fprintf(out, "  %s%-8s%s %s: %s\n", color ? sev_color(f->severity) : "",
                md_severity_label(f->severity), color ? "\033[0m" : "", f->id, f->summary);
        if (flags & MD_TEXT_EVIDENCE)
            for (size_t j = 0; j < f->nevidence; j++)
                fprintf(out, "           | %s\n", f->evidence[j]);
    }
    return ferror(out) ? -1 : 0;
}

void md_tally_init(md_tally *t)
{
    memset(t, 0, sizeof *t);
    t->worst = MD_SEV_OK;
}

void md_tally_add(md_tally *t, md_severity sev)
{
    if (!sev_valid(sev))
        sev = MD_SEV_UNKNOWN;
    t->n[sev]++;
    t->worst = md_severity_worst(t->worst, sev);
}

unsigned long md_tally_total(const md_tally *t)
{
    return t->n[0] + t->n[1] + t->n[2] + t->n[3];
}

int md_plugin_write(FILE *out, const char *label, md_severity state,
                    const char *summary, const char *perfdata)
{
    /* '|' separates perfdata in the plugin protocol: keep it out of text. */
    fprintf(out, "%s %s - ", label, md_severity_label(state));
    for (const char *p = summary; *p; p++)
        fputc(*p == '|' || *p == '\n' ? ' ' : *p, out);
    if (perfdata != NULL && *perfdata)
        fprintf(out, " | %s", perfdata);
    fputc('\n', out);
    return ferror(out) ? -1 : 0;
}

int md_color_wanted(FILE *out)
{
    const char *nc = getenv("NO_COLOR");
    if (nc != NULL && *nc)
        return 0;
    /* A terminal that cannot show escape sequences (Emacs shells, some CI
     * logs) says so with TERM=dumb, as ls and grep honour. */
    const char *term = getenv("TERM");
    if (term != NULL && strcmp(term, "dumb") == 0)
        return 0;
    return isatty(fileno(out));
}

/* --- a jansson tree as compact JSON ------------------------------------- */

static int json_append_value(md_buf *b, const json_t *v, int depth)
{
    if (depth > 2048)   /* jansson's own dump limit is the same order */
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        json_t *o = (json_t *)v;
        md_buf_add(b, "{", 1);
        for (void *it = json_object_iter(o); it != NULL; it = json_object_iter_next(o, it)) {
            if (it != json_object_iter(o))
                md_buf_add(b, ",", 1);
            md_json_append_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
            md_buf_add(b, ":", 1);
            if (json_append_value(b, json_object_iter_value(it), depth + 1) != 0)
                return -1;
        }
        md_buf_add(b, "}", 1);
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;
        md_buf_add(b, "[", 1);
        json_array_foreach(v, i, val) {
            if (i > 0)
                md_buf_add(b, ",", 1);
            if (json_append_value(b, val, depth + 1) != 0)
                return -1;
        }
        md_buf_add(b, "]", 1);
        return 0;
    }
    case JSON_STRING:
        md_json_append_string(b, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        md_json_append_int(b, json_integer_value(v));
        return 0;
    case JSON_REAL:
        return md_json_append_real(b, json_real_value(v));
    case JSON_TRUE:
        md_buf_add(b, "true", 4);
        return 0;
    case JSON_FALSE:
        md_buf_add(b, "false", 5);
        return 0;
    default:
        md_buf_add(b, "null", 4);
        return 0;
    }
}

int md_json_append(md_buf *b, const json_t *v)
{
    size_t len = b->len;
    if (v == NULL || json_append_value(b, v, 0) != 0) {
        b->len = len;
        return -1;
    }
    return 0;
}
