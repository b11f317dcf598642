/* lib/base: status codes, error record, sanitizing, clocks, allocation. */
#include "config.h"
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *md_status_name(md_status st)
{
    switch (st) {
    case MD_OK: return "ok";
    case MD_NOTFOUND: return "notfound";
    case MD_TEMPFAIL: return "tempfail";
    case MD_PERMFAIL: return "permfail";
    case MD_PROTOCOL: return "protocol";
    case MD_CONFIG: return "config";
    case MD_NOMEM: return "nomem";
    case MD_INTERNAL: return "internal";
    }
    return "unknown";
}

md_status md_error_set(md_error *err, md_status st, const char *stage,
                       const char *fmt, ...)
{
    if (err == NULL)
        return st;
    err->status = st;
    snprintf(err->stage, sizeof err->stage, "%s", stage ? stage : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    err->peer[0] = '\0';
    return st;
}

void md_error_set_peer(md_error *err, const char *peer, size_t len)
{
    if (err != NULL)
        md_sanitize(err->peer, sizeof err->peer, peer, len);
}

void md_error_clear(md_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

char *md_sanitize(char *dst, size_t dstsize, const char *src, size_t len)
{
    size_t i, o = 0;

    if (dstsize == 0)
        return dst;
    for (i = 0; src != NULL && i < len && src[i] != '\0' && o + 1 < dstsize; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[o] = '\0';
    return dst;
}

int64_t md_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void oom(void)
{
    fputs("maildiag: out of memory\n", stderr);
    abort();
}

void *md_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *md_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *md_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

char *md_xstrdup(const char *s)
{
    return md_xstrndup(s, strlen(s));
}

char *md_xstrndup(const char *s, size_t n)
{
    char *p = md_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *md_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    char *p = md_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

const char *md_version(void)
{
    return PACKAGE_VERSION;
}
