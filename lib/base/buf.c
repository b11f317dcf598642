/* lib/base buf: the growable byte buffer and the JSON text writer (see buf.h). */
#include "config.h"
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *md_buf_reserve(md_buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        if (n > SIZE_MAX / 2 - b->len)
            abort();   /* no buffer of half the address space is meant */
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        b->data = md_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void md_buf_add(md_buf *b, const void *s, size_t n)
{
    if (n == 0)
        return;
    memcpy(md_buf_reserve(b, n), s, n);
    b->len += n;
}

void md_buf_addstr(md_buf *b, const char *s)
{
    md_buf_add(b, s, strlen(s));
}

void md_buf_addf(md_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof small) {
        md_buf_add(b, small, (size_t)n);
        return;
    }
    char *p = md_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *md_buf_cstr(md_buf *b)
{
    if (b->data == NULL)
        return "";
    *md_buf_reserve(b, 1) = '\0';
    return b->data;
}

char *md_buf_steal(md_buf *b, size_t *len)
{
    *md_buf_reserve(b, 1) = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void md_buf_free(md_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* --- JSON text ----------------------------------------------------------- */

/* Bytes a JSON string must escape: control characters, '"', '\\'; and
 * the ones we escape so that no terminal acts on JSON output: DEL, and
 * 0xC2, which leads the C1 controls U+0080..U+009F (checked below). */
static const unsigned char json_escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1, [0x7f] = 1, [0xc2] = 1,
};

void md_json_append_string(md_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* room for the worst case (every byte a \u00XX escape) up front, so
     * the loop writes without checks */
    if (n > (SIZE_MAX - 2) / 6)
        abort();
    char *o = md_buf_reserve(b, n * 6 + 2);
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        /* copy the run that needs no escape in one go */
        size_t run = i;
        while (run < n && !json_escaped[(unsigned char)s[run]])
            run++;
        memcpy(o, s + i, run - i);
        o += run - i;
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        i = run + 1;
        if (c == 0xc2) {
            unsigned char c1 = i < n ? (unsigned char)s[i] : 0;
            if (c1 < 0x80 || c1 > 0x9f) {   /* U+00A0 and up: as it is */
                *o++ = (char)c;
                continue;
            }
            c = c1;   /* U+0080..U+009F: written as \u0080..\u009F */
            i++;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

void md_json_append_int(md_buf *b, long long v)
{
    char num[24];
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *e = num + sizeof num, *d = e;
    do
        *--d = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--d = '-';
    md_buf_add(b, d, (size_t)(e - d));
}

int md_json_append_real(md_buf *b, double v)
{
    char num[64];
    if (v != v || v - v != 0)
        return -1;
    int n = snprintf(num, sizeof num, "%.17g", v);
    char *e = strchr(num, 'e');
    if (e == NULL && strchr(num, '.') == NULL) {
        memcpy(num + n, ".0", 3);
        n += 2;
    } else if (e != NULL) {
        char *w = e + 1, *r = e + 1;
        if (*r == '-')
            *w++ = *r++;
        else if (*r == '+')
            r++;
        while (*r == '0' && r[1] != '\0')
            r++;
        memmove(w, r, strlen(r) + 1);
        n = (int)strlen(num);
    }
    md_buf_add(b, num, (size_t)n);
    return 0;
}
