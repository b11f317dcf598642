/* lib/base conf: a small INI-style configuration file, permission-checked. */
#include "config.h"
#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_LINE_MAX 8192
#define CONF_VALUE_MAX 65536

typedef struct entry {
    char *section, *key, *value;
} entry;

struct md_conf {
    char *path;
    entry *v;
    size_t n;
};

void md_conf_free(md_conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].section);
        free(c->v[i].key);
        free(c->v[i].value);
    }
    free(c->v);
    free(c->path);
    free(c);
}

const char *md_conf_get(const md_conf *c, const char *section, const char *key)
{
    if (c == NULL)
        return NULL;
    for (size_t i = c->n; i-- > 0;)   /* the last one given wins */
        if (strcasecmp(c->v[i].section, section) == 0 && strcasecmp(c->v[i].key, key) == 0)
            return c->v[i].value;
    return NULL;
}

const char *md_conf_path(const md_conf *c)
{
    return c ? c->path : "";
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int secret_key(const char *key)
{
    size_t n = strlen(key);
    return strcasecmp(key, "password") == 0 || strcasecmp(key, "secret") == 0 ||
           (n >= 4 && strcasecmp(key + n - 4, "_key") == 0) ||
           (n >= 9 && strcasecmp(key + n - 9, "_password") == 0);
}

/* A URI "scheme://user:password@host" or a "password=" keyword. */
static int secret_value(const char *v)
{
    const char *s = strstr(v, "://");
    if (s) {
        const char *at = strchr(s + 3, '@'), *colon = strchr(s + 3, ':');
        const char *slash = strchr(s + 3, '/');
        if (at && colon && colon < at && (slash == NULL || at < slash))
            return 1;
    }
    return strstr(v, "password=") != NULL;
}

md_status md_conf_load(const char *path, md_conf **out, md_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return md_error_set(err, MD_NOTFOUND, "config", "%s: no such file", path);
        return md_error_set(err, MD_CONFIG, "config", "%s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return md_error_set(err, MD_CONFIG, "config", "%s: not a regular file", path);
    }
    if (sb.st_uid != getuid() && sb.st_uid != 0) {
        fclose(f);
        return md_error_set(err, MD_CONFIG, "config",
                            "%s: refused: owned by uid %u, neither you nor root", path,
                            (unsigned)sb.st_uid);
    }
    if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
        fclose(f);
        return md_error_set(err, MD_CONFIG, "config",
                            "%s: refused: others can change it (mode %03o; chmod go-w)", path,
                            (unsigned)(sb.st_mode & 0777));
    }
    md_conf *c = md_xcalloc(1, sizeof *c);
    c->path = md_xstrdup(path);
    char line[CONF_LINE_MAX], section[128] = "";
    unsigned long ln = 0;
    int secrets = 0;
    md_status st = MD_OK;
    while (fgets(line, sizeof line, f) != NULL) {
        ln++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            st = md_error_set(err, MD_CONFIG, "config", "%s:%lu: line too long", path, ln);
            break;
        }
        int cont = (line[0] == ' ' || line[0] == '\t');
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (cont && c->n > 0) {
            entry *e = &c->v[c->n - 1];
            if (strlen(e->value) + strlen(s) + 2 > CONF_VALUE_MAX) {
                st = md_error_set(err, MD_CONFIG, "config", "%s:%lu: value too long", path, ln);
                break;
            }
            char *nv = md_xasprintf("%s %s", e->value, s);
            free(e->value);
            e->value = nv;
            secrets |= secret_value(nv);
            continue;
        }
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end == NULL || end[1] != '\0' || end - s - 1 >= (long)sizeof section) {
                st = md_error_set(err, MD_CONFIG, "config", "%s:%lu: a section is written [name]",
                                  path, ln);
                break;
            }
            *end = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            st = md_error_set(err, MD_CONFIG, "config", "%s:%lu: expected 'key = value'", path, ln);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (*key == '\0') {
            st = md_error_set(err, MD_CONFIG, "config", "%s:%lu: a value without a key", path, ln);
            break;
        }
        c->v = md_xrealloc(c->v, (c->n + 1) * sizeof *c->v);
        c->v[c->n].section = md_xstrdup(section);
        c->v[c->n].key = md_xstrdup(key);
        c->v[c->n].value = md_xstrdup(val);
        c->n++;
        secrets |= secret_key(key) || secret_value(val);
    }
    if (st == MD_OK && ferror(f))
        st = md_error_set(err, MD_CONFIG, "config", "%s: read error", path);
    fclose(f);
    if (st == MD_OK && secrets && (sb.st_mode & S_IROTH))
        st = md_error_set(err, MD_CONFIG, "config",
                          "%s: refused: it holds a password or key and everyone can read it"
                          " (mode %03o; chmod o-r)", path, (unsigned)(sb.st_mode & 0777));
    if (st != MD_OK) {
        md_conf_free(c);
        return st;
    }
    *out = c;
    return MD_OK;
}
