/*
 * lib/base: status codes, the error record, and small helpers shared by every
 * maildiag module.
 *
 * A library function returns an md_status and, on failure, fills a
 * caller-owned md_error with the stage ("dns.mx"), our own words, and the
 * peer's words (already sanitized and bounded).  It never prints, never exits.
 */
#ifndef MAILDIAG_BASE_H
#define MAILDIAG_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_status {
    MD_OK = 0,
    MD_NOTFOUND,   /* the thing looked for does not exist (permanent) */
    MD_TEMPFAIL,   /* try again later: timeouts, SERVFAIL, 4xx */
    MD_PERMFAIL,   /* a permanent failure from the peer: 5xx */
    MD_PROTOCOL,   /* the peer spoke garbage */
    MD_CONFIG,     /* bad configuration or usage */
    MD_NOMEM,      /* out of memory */
    MD_INTERNAL    /* a bug or a system failure on our side */
} md_status;

#define MD_ERROR_STAGE_MAX 32
#define MD_ERROR_TEXT_MAX  256

typedef struct md_error {
    md_status status;
    char stage[MD_ERROR_STAGE_MAX];  /* "dns.mx", "config" ... */
    char text[MD_ERROR_TEXT_MAX];    /* our one-line explanation */
    char peer[MD_ERROR_TEXT_MAX];    /* what the peer said, sanitized; may be "" */
} md_error;

/* Returns the short name of a status ("tempfail"); never NULL. */
const char *md_status_name(md_status st);

/* Fills err (if not NULL) and returns st.  text is printf-style. */
md_status md_error_set(md_error *err, md_status st, const char *stage,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stores the peer's words in err->peer, sanitized (see md_sanitize). */
void md_error_set_peer(md_error *err, const char *peer, size_t len);

/* Clears err to "no error". */
void md_error_clear(md_error *err);

/*
 * Copies at most len bytes of untrusted src into dst (size dstsize, always
 * NUL-terminated), replacing control characters and bytes >= 0x7f by '?'.
 * Returns dst.
 */
char *md_sanitize(char *dst, size_t dstsize, const char *src, size_t len);

/* Monotonic clock in milliseconds. */
int64_t md_now_ms(void);

/* Allocation helpers that never return NULL for a non-zero size: they abort
 * on exhaustion, as maildiag cannot report anything useful without memory. */
void *md_xmalloc(size_t n);
void *md_xcalloc(size_t n, size_t size);
void *md_xrealloc(void *p, size_t n);
char *md_xstrdup(const char *s);
char *md_xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees with free(). */
char *md_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The library's version string, e.g. "0.1.0". */
const char *md_version(void);

#ifdef __cplusplus
}
#endif
#endif
