/* lib/base input: lazily read work items from arguments and files. */
#include "config.h"
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct md_input {
    char *const *args;
    size_t nargs, argi;
    char *const *files;
    size_t nfiles, filei;
    FILE *fp;
    const char *fname;
    unsigned long lineno;
    char *line;
    size_t cap;
    size_t count;
    int failed;
};

md_input *md_input_new(char *const *args, size_t nargs, char *const *files, size_t nfiles)
{
    md_input *in = md_xcalloc(1, sizeof *in);
    in->args = args;
    in->nargs = nargs;
    in->files = files;
    in->nfiles = nfiles;
    return in;
}

void md_input_free(md_input *in)
{
    if (in == NULL)
        return;
    if (in->fp && in->fp != stdin)
        fclose(in->fp);
    free(in->line);
    free(in);
}

static char *trim(char *s)
{
    /* A comment starts at a '#' that begins the line or follows a blank:
     * inside a word it is text ("a#b@example.com" is an address). */
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

const char *md_input_next(md_input *in, md_error *err)
{
    if (in->failed)
        return NULL;
    if (in->argi < in->nargs) {
        in->count++;
        return in->args[in->argi++];
    }
    for (;;) {
        if (in->fp == NULL) {
            if (in->filei >= in->nfiles)
                return NULL;
            in->fname = in->files[in->filei++];
            in->lineno = 0;
            if (strcmp(in->fname, "-") == 0) {
                in->fp = stdin;
            } else if ((in->fp = fopen(in->fname, "r")) == NULL) {
                in->failed = 1;
                md_error_set(err, MD_CONFIG, "input", "cannot read %s: %s", in->fname,
                             strerror(errno));
                return NULL;
            }
        }
        if (in->cap == 0) {
            in->cap = MD_INPUT_LINE_MAX + 1;
            in->line = md_xmalloc(in->cap);
        }
        if (fgets(in->line, (int)in->cap, in->fp) == NULL) {
            int bad = ferror(in->fp);
            if (in->fp != stdin)
                fclose(in->fp);
            in->fp = NULL;
            if (bad) {
                in->failed = 1;
                md_error_set(err, MD_CONFIG, "input", "error reading %s", in->fname);
                return NULL;
            }
            continue;
        }
        in->lineno++;
        size_t len = strlen(in->line);
        if (len > 0 && in->line[len - 1] != '\n' && !feof(in->fp)) {
            /* Over-long line: keep its start, drop the rest. */
            int c;
            while ((c = fgetc(in->fp)) != EOF && c != '\n')
                ;
        }
        char *item = trim(in->line);
        if (*item == '\0')
            continue;
        in->count++;
        return item;
    }
}

int md_input_failed(const md_input *in)
{
    return in->failed;
}

size_t md_input_count(const md_input *in)
{
    return in->count;
}
