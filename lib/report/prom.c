/* lib/report prom: the Prometheus text format and node_exporter textfiles. */
#include "config.h"
#include "prom.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct sample {
    char *labels;            /* rendered: {a="b",c="d"} or "" */
    double value;
} sample;

typedef struct family {
    char *name, *help;
    md_prom_type type;
    sample *samples;
    size_t nsamples;
} family;

struct md_prom {
    family *fam;
    size_t nfam;
};

md_prom *md_prom_new(void)
{
    return md_xcalloc(1, sizeof(md_prom));
}

void md_prom_free(md_prom *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nfam; i++) {
        for (size_t k = 0; k < p->fam[i].nsamples; k++)
            free(p->fam[i].samples[k].labels);
        free(p->fam[i].samples);
        free(p->fam[i].name);
        free(p->fam[i].help);
    }
    free(p->fam);
    free(p);
}

static int name_ok(const char *s, int metric)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *c = s; *c; c++) {
        int alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_'
                    || (metric && *c == ':');
        int digit = *c >= '0' && *c <= '9';
        if (!alpha && !(digit && c != s))
            return 0;
    }
    /* names starting with "__" are reserved for Prometheus itself */
    return metric || strncmp(s, "__", 2) != 0;
}

static family *find(const md_prom *p, const char *name)
{
    for (size_t i = 0; i < p->nfam; i++)
        if (strcmp(p->fam[i].name, name) == 0)
            return &p->fam[i];
    return NULL;
}

md_status md_prom_family(md_prom *p, const char *name, md_prom_type type, const char *help,
                         md_error *err)
{
    if (!name_ok(name, 1))
        return md_error_set(err, MD_CONFIG, "prom", "'%s' is not a valid metric name",
                            name ? name : "");
    if (find(p, name) != NULL)
        return md_error_set(err, MD_CONFIG, "prom", "metric %s is declared twice", name);
    p->fam = md_xrealloc(p->fam, (p->nfam + 1) * sizeof *p->fam);
    family *f = &p->fam[p->nfam++];
    memset(f, 0, sizeof *f);
    f->name = md_xstrdup(name);
    f->type = type;
    /* HELP text: one line; backslash and newline escaped by the format */
    f->help = md_sanitize_dup(help ? help : "", help ? strlen(help) : 0);
    return MD_OK;
}

/* A label value or HELP text, escaped as the format asks. */
static void put_escaped(md_buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            md_buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            md_buf_add(b, "\\n", 2);
        else if (quote && *s == '"')
            md_buf_add(b, "\\\"", 2);
        else
            md_buf_add(b, s, 1);
    }
}

md_status md_prom_sample(md_prom *p, const char *name, const char *const *labels, double value,
                         md_error *err)
{
    family *f = find(p, name ? name : "");
    if (f == NULL)
        return md_error_set(err, MD_CONFIG, "prom", "metric %s is not declared",
                            name ? name : "");
    md_buf b = { 0 };
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!name_ok(labels[i], 0) || labels[i + 1] == NULL) {
            md_buf_free(&b);
            return md_error_set(err, MD_CONFIG, "prom", "bad label '%s' on metric %s",
                                labels[i], name);
        }
        for (size_t k = 0; k < i; k += 2)
            if (strcmp(labels[k], labels[i]) == 0) {
                md_buf_free(&b);
                return md_error_set(err, MD_CONFIG, "prom", "label '%s' twice on metric %s",
                                    labels[i], name);
            }
        md_buf_addstr(&b, i == 0 ? "{" : ",");
        md_buf_addstr(&b, labels[i]);
        md_buf_addstr(&b, "=\"");
        char *clean = md_sanitize_dup(labels[i + 1], strlen(labels[i + 1]));
        put_escaped(&b, clean, 1);
        free(clean);
        md_buf_addstr(&b, "\"");
    }
    if (b.len > 0)
        md_buf_addstr(&b, "}");
    for (size_t k = 0; k < f->nsamples; k++)
        if (strcmp(f->samples[k].labels, md_buf_cstr(&b)) == 0) {
            md_buf_free(&b);
            return md_error_set(err, MD_CONFIG, "prom", "metric %s has the same labels twice",
                                name);
        }
    f->samples = md_xrealloc(f->samples, (f->nsamples + 1) * sizeof *f->samples);
    f->samples[f->nsamples].labels = md_buf_steal(&b, NULL);
    f->samples[f->nsamples].value = value;
    f->nsamples++;
    return MD_OK;
}

static void put_value(md_buf *b, double v)
{
    char num[40];
    if (isnan(v))
        snprintf(num, sizeof num, "NaN");
    else if (isinf(v))
        snprintf(num, sizeof num, v > 0 ? "+Inf" : "-Inf");
    else if (fabs(v) < 1e15 && v == (double)(long long)v)   /* the cast only where it is defined */
        snprintf(num, sizeof num, "%lld", (long long)v);
    else {
        /* the shortest form that reads back as v: 0.037, not 0.036999999999999998 */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, v);
            if (strtod(num, NULL) == v)
                break;
        }
    }
    md_buf_addstr(b, num);
}

void md_prom_render(const md_prom *p, md_buf *out)
{
    for (size_t i = 0; i < p->nfam; i++) {
        const family *f = &p->fam[i];
        if (f->nsamples == 0)
            continue;   /* a family without samples says nothing */
        md_buf_addstr(out, "# HELP ");
        md_buf_addstr(out, f->name);
        md_buf_addstr(out, " ");
        put_escaped(out, f->help, 0);
        md_buf_addstr(out, "\n# TYPE ");
        md_buf_addstr(out, f->name);
        md_buf_addstr(out, f->type == MD_PROM_COUNTER ? " counter\n" : " gauge\n");
        for (size_t k = 0; k < f->nsamples; k++) {
            md_buf_addstr(out, f->name);
            md_buf_addstr(out, f->samples[k].labels);
            md_buf_addstr(out, " ");
            put_value(out, f->samples[k].value);
            md_buf_addstr(out, "\n");
        }
    }
}

md_status md_prom_write_file(const md_prom *p, const char *path, md_error *err)
{
    md_buf text = { 0 };
    md_prom_render(p, &text);

    /* PATH.tmp.PID: same directory (rename is atomic only within one file
     * system), and no ".prom" ending for the collector to pick up. */
    char *tmp = md_xasprintf("%s.tmp.%ld", path, (long)getpid());
    char *dir = md_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, strlen(dir) + 1, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';

    md_status st = MD_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        st = md_error_set(err, MD_INTERNAL, "prom.write", "cannot create %s: %s", tmp,
                          strerror(errno));
        goto done;
    }
    /* the mode of a file others read, whatever the umask */
    if (fchmod(fd, 0644) != 0 || md_write_all(fd, text.data, text.len) != 0 || fsync(fd) != 0) {
        st = md_error_set(err, MD_INTERNAL, "prom.write", "cannot write %s: %s", tmp,
                          strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    if (close(fd) != 0) {
        st = md_error_set(err, MD_INTERNAL, "prom.write", "cannot write %s: %s", tmp,
                          strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = md_error_set(err, MD_INTERNAL, "prom.write", "cannot replace %s: %s", path,
                          strerror(errno));
        unlink(tmp);
        goto done;
    }
    /* the rename itself survives a crash once the directory is synced */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
done:
    free(dir);
    free(tmp);
    md_buf_free(&text);
    return st;
}
