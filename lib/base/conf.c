/* lib/base conf: the INI configuration file, parsed by libinih,
 * permission-checked. */
#include "config.h"
#include "conf.h"

#include <ini.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_VALUE_MAX 65536

typedef struct entry {
    char *section, *key, *value;
    unsigned long line;          /* where the key is written, 1-based */
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

unsigned long md_conf_line(const md_conf *c, const char *section, const char *key)
{
    if (c == NULL)
        return 0;
    for (size_t i = c->n; i-- > 0;)
        if (strcasecmp(c->v[i].section, section) == 0 && strcasecmp(c->v[i].key, key) == 0)
            return c->v[i].line;
    return 0;
}

const char *md_conf_path(const md_conf *c)
{
    return c ? c->path : "";
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

/*
 * Parsing is libinih's (Debian's libinih-dev; see conf.h for the syntax).
 * How Debian 12's libinih 55 is built, and why this reader hands it lines
 * itself, refuses long lines, NUL bytes, "[]" and long section names, and
 * sets inih's process-wide switches for its parse only: docs/LIBRARIES.md,
 * "libinih".
 */
#define CONF_SECTION_MAX 50      /* inih's MAX_SECTION, with its NUL */

typedef struct parse {
    FILE *f;
    const char *path;
    md_conf *c;
    md_error *err;
    md_status st;
    unsigned long line;          /* the line inih is working on, 1-based */
    char text[256];              /* that line, for the error message */
    int indented;                /* it starts with a blank */
    int after_section;           /* no key yet since the last [section] */
    int secrets;
} parse;

static int blank(int ch)
{
    return ch == ' ' || ch == '\t';
}

/* Reads one line for inih (an fgets stand-in), refusing what this build
 * of inih would mangle.  Returns str, or NULL at the end or on an error
 * (then p->st is set). */
static char *reader(char *str, int num, void *stream)
{
    parse *p = stream;
    /* inih's buffer must hold the line, a CR, the LF and the NUL */
    size_t max = num > 3 ? (size_t)num - 3 : 0, n = 0;
    int ch = EOF;
    if (p->st != MD_OK)
        return NULL;
    while ((ch = getc(p->f)) != EOF && ch != '\n') {
        if (ch == '\0') {
            p->st = md_error_set(p->err, MD_CONFIG, "config", "%s:%lu: a NUL byte", p->path,
                                 p->line + 1);
            return NULL;
        }
        if (n == max + 1) {   /* room for one CR more: "line\r\n" */
            p->st = md_error_set(p->err, MD_CONFIG, "config",
                                 "%s:%lu: line too long (over %zu characters): continue a long value"
                                 " on lines that start with a blank", p->path, p->line + 1, max);
            return NULL;
        }
        str[n++] = (char)ch;
    }
    if (ch == EOF && n == 0)
        return NULL;
    p->line++;
    if (n > 0 && str[n - 1] == '\r')
        n--;
    if (n > max) {
        p->st = md_error_set(p->err, MD_CONFIG, "config",
                             "%s:%lu: line too long (over %zu characters): continue a long value"
                             " on lines that start with a blank", p->path, p->line, max);
        return NULL;
    }
    /* A CR is a line end only right before the LF: inih would keep one
     * inside a line in the value (old Mac line ends made one value of a
     * whole file). */
    if (memchr(str, '\r', n) != NULL) {
        p->st = md_error_set(p->err, MD_CONFIG, "config",
                             "%s:%lu: a carriage return inside a line (end lines with LF or CR LF)",
                             p->path, p->line);
        return NULL;
    }
    str[n] = '\0';
    snprintf(p->text, sizeof p->text, "%s", str);
    const char *s = str;
    while (blank(*s))
        s++;
    p->indented = s > str;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end != NULL) {
            const char *a = s + 1, *b = end;
            while (a < b && blank(*a))
                a++;
            while (b > a && blank(b[-1]))
                b--;
            if (a == b) {
                p->st = md_error_set(p->err, MD_CONFIG, "config", "%s:%lu: an empty section name",
                                     p->path, p->line);
                return NULL;
            }
            if (end - s - 1 >= CONF_SECTION_MAX) {
                p->st = md_error_set(p->err, MD_CONFIG, "config",
                                     "%s:%lu: a section name longer than %d characters", p->path,
                                     p->line, CONF_SECTION_MAX - 1);
                return NULL;
            }
        }
        p->after_section = 1;
        /* inih reads an indented line after a key as more of its value,
         * whatever it holds (it asks that before it looks for '['): hand
         * it the section line without its indent, so that it ends the
         * value and starts the section, as it does for us. */
        if (s > str) {
            memmove(str, s, strlen(s) + 1);
            p->indented = 0;
        }
    }
    return str;
}

/* Drops an inline comment and the white space before it, as inih does on
 * a key's first line (its find_chars_or_comment and rstrip: ';' or '#'
 * after white space, isspace), so a continued value ends as a first line
 * does. */
static void strip_comment(char *v)
{
    for (char *q = v; *q; q++)
        if ((*q == ';' || *q == '#') && q > v && isspace((unsigned char)q[-1])) {
            *q = '\0';
            break;
        }
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        v[--n] = '\0';
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse *p = user;
    md_conf *c = p->c;
    /* inih calls us again with the previous name for a line that starts
     * with a blank after a key (never after a [section]: it forgets the
     * name there): that is a continuation of the last value. */
    if (p->indented && !p->after_section && c->n > 0) {
        char *more = md_xstrdup(value);
        strip_comment(more);
        entry *e = &c->v[c->n - 1];
        if (*more != '\0' && strlen(e->value) + strlen(more) + 2 > CONF_VALUE_MAX) {
            p->st = md_error_set(p->err, MD_CONFIG, "config", "%s:%lu: value too long", p->path,
                                 p->line);
            free(more);
            return 0;
        }
        if (*more != '\0') {
            char *nv = md_xasprintf("%s%s%s", e->value, *e->value ? " " : "", more);
            free(e->value);
            e->value = nv;
            p->secrets |= secret_value(nv);
        }
        free(more);
        return 1;
    }
    if (*name == '\0') {
        p->st = md_error_set(p->err, MD_CONFIG, "config", "%s:%lu: a value without a key", p->path,
                             p->line);
        return 0;
    }
    /* inih keeps the blanks inside "[ name ]" */
    while (blank(*section))
        section++;
    size_t sl = strlen(section);
    while (sl > 0 && blank(section[sl - 1]))
        sl--;
    c->v = md_xrealloc(c->v, (c->n + 1) * sizeof *c->v);
    c->v[c->n].section = md_xstrndup(section, sl);
    c->v[c->n].key = md_xstrdup(name);
    c->v[c->n].value = md_xstrdup(value);
    c->v[c->n].line = p->line;
    c->n++;
    p->after_section = 0;
    p->secrets |= secret_key(name) || secret_value(value);
    return 1;
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
    parse *p = md_xcalloc(1, sizeof *p);
    *p = (parse){ .f = f, .path = path, .c = c, .err = err, .st = MD_OK };

    /* libinih's switches are process-wide: ours for this parse only */
    static char prefixes[] = ";#";
    bool inl = ini_allow_inline_comments, multi = ini_allow_multiline, stop = ini_stop_on_first_error;
    char *pre = ini_inline_comment_prefixes;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = prefixes;
    ini_allow_multiline = true;
    ini_stop_on_first_error = true;
    int line = ini_parse_stream(reader, p, handler, p);
    ini_allow_inline_comments = inl;
    ini_inline_comment_prefixes = pre;
    ini_allow_multiline = multi;
    ini_stop_on_first_error = stop;

    md_status st = p->st;
    if (st == MD_OK && line != 0) {   /* inih's own refusal, at the line it stopped on */
        const char *s = p->text;
        while (blank(*s))
            s++;
        st = md_error_set(err, MD_CONFIG, "config", "%s:%d: %s", path, line,
                          *s == '[' ? "a section is written [name]"
                                    : "expected 'key = value' (or [section], a comment, or a"
                                      " continuation line that starts with a blank)");
    }
    if (st == MD_OK && ferror(f))
        st = md_error_set(err, MD_CONFIG, "config", "%s: read error", path);
    fclose(f);
    if (st == MD_OK && p->secrets && (sb.st_mode & S_IROTH))
        st = md_error_set(err, MD_CONFIG, "config",
                          "%s: refused: it holds a password or key and everyone can read it"
                          " (mode %03o; chmod o-r)", path, (unsigned)(sb.st_mode & 0777));
    free(p);
    if (st != MD_OK) {
        md_conf_free(c);
        return st;
    }
    *out = c;
    return MD_OK;
}
