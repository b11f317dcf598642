/* lib/base: status codes, error record, sanitizing, clocks, allocation. */
#include "config.h"
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

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

size_t md_utf8_decode(const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    /* Unicode table 3-7: the lead byte fixes the length and the range of
     * the second byte; that range is what excludes overlong forms (E0, F0),
     * surrogates (ED) and code points over U+10FFFF (F4). */
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    uint32_t v;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2; v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3; v = c & 0x0f;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4; v = c & 0x07;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;   /* continuation byte, C0, C1, F5..FF */
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return n;
}

int md_utf8_valid(const char *s, size_t len)
{
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n)
        if ((n = md_utf8_decode(s + i, len - i, &cp)) == 0)
            return 0;
    return 1;
}

int md_unicode_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

int md_text_check(const char *s, size_t len, const char *allow, size_t *bad, const char **why)
{
    uint32_t cp;
    for (size_t i = 0, n; i < len; i += n) {
        if ((n = md_utf8_decode(s + i, len - i, &cp)) == 0) {
            *bad = i;
            *why = "bytes that are not UTF-8 (an overlong form, a surrogate, a cut-short"
                   " or otherwise ill-formed sequence)";
            return -1;
        }
        if (md_unicode_is_control(cp) &&
            !(cp != 0 && cp < 0x80 && allow != NULL && strchr(allow, (int)cp) != NULL)) {
            *bad = i;
            *why = cp == '\r' || cp == '\n' ? "a line break" : "a control character";
            return -1;
        }
    }
    return 0;
}

char *md_sanitize_text(char *dst, size_t dstsize, const char *src, size_t len, unsigned flags)
{
    size_t i = 0, o = 0;
    if (dstsize == 0)
        return dst;
    while (src != NULL && i < len && src[i] != '\0') {
        /* printable ASCII, nearly all text, is copied in runs */
        size_t run = i;
        while (run < len && (unsigned char)src[run] >= 0x20 && (unsigned char)src[run] < 0x7f)
            run++;
        if (run > i) {
            size_t k = run - i;
            if (k > dstsize - 1 - o)
                k = dstsize - 1 - o;
            memmove(dst + o, src + i, k);   /* dst may be src: o <= i */
            o += k;
            i += k;
            if (i < run)
                break;   /* dst is full */
            continue;
        }
        uint32_t cp;
        size_t n = md_utf8_decode(src + i, len - i, &cp);
        if (n == 0 || md_unicode_is_control(cp) || ((flags & MD_SANITIZE_ASCII) && cp >= 0x80)) {
            /* one '?' per byte: per byte is also what the ASCII form did */
            if (n == 0 || (flags & MD_SANITIZE_ASCII))
                n = 1;
            if (o + 1 >= dstsize)
                break;
            dst[o++] = '?';
        } else {
            if (o + n >= dstsize)
                break;   /* never half a character */
            memmove(dst + o, src + i, n);   /* dst may be src: o <= i */
            o += n;
        }
        i += n;
    }
    dst[o] = '\0';
    return dst;
}

char *md_sanitize_dup(const char *src, size_t len)
{
    char *out = md_xmalloc(len + 1);
    return md_sanitize_text(out, len + 1, src, len, 0);
}

char *md_sanitize(char *dst, size_t dstsize, const char *src, size_t len)
{
    return md_sanitize_text(dst, dstsize, src, len, MD_SANITIZE_ASCII);
}

int64_t md_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int md_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int md_write_all(int fd, const void *s, size_t n)
{
    const char *p = s;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;   /* no progress: never loop on it */
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
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
