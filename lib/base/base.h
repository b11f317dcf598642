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

/* What the library exports: the functions its public headers declare with
 * MD_API, and nothing else.  It is built with -fvisibility=hidden, so the
 * functions modules share among themselves (db_*, smtp_*, spf_* ...) stay
 * inside libmaildiag.so. */
#define MD_API __attribute__((visibility("default")))

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
MD_API const char *md_status_name(md_status st);

/* Fills err (if not NULL) and returns st.  text is printf-style. */
MD_API md_status md_error_set(md_error *err, md_status st, const char *stage,
                              const char *fmt, ...)
           __attribute__((format(printf, 4, 5)));

/* Stores the peer's words in err->peer, sanitized (see md_sanitize). */
MD_API void md_error_set_peer(md_error *err, const char *peer, size_t len);

/* Clears err to "no error". */
MD_API void md_error_clear(md_error *err);

/* --- UTF-8 (RFC 3629) and untrusted text ------------------------------ */

/*
 * Decodes the character at s[0..len): returns its length (1 to 4) and sets
 * *cp, or returns 0 when s does not start with a well-formed sequence
 * (Unicode 15, table 3-7): a stray continuation byte, 0xC0, 0xC1 or 0xF5 to
 * 0xFF, an overlong form, a surrogate (U+D800..U+DFFF), a code point over
 * U+10FFFF, or a sequence cut short by len.
 */
MD_API size_t md_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Whether s[0..len) is well-formed UTF-8 throughout (U+0000 included). */
MD_API int md_utf8_valid(const char *s, size_t len);
/* Whether cp is a control character: C0 (U+0000..U+001F), DEL (U+007F) or
 * C1 (U+0080..U+009F). */
MD_API int md_unicode_is_control(uint32_t cp);

/*
 * Checks untrusted text that becomes a value (a header, a name, a template,
 * a stored field): well-formed UTF-8 without control characters, except
 * the ASCII ones listed in allow ("\t\n" for a multi-line template, NULL
 * for none).  Returns 0, or -1 with the byte offset of the first problem in
 * *bad and the reason in *why (static text).
 */
MD_API int md_text_check(const char *s, size_t len, const char *allow, size_t *bad, const char **why);

#define MD_SANITIZE_ASCII 0x1u   /* also every byte from 0x7f up becomes '?' */

/*
 * The one sanitizer for untrusted text on its way to a person (a terminal,
 * a log, an error message, a JSON string): copies src[0..len), stopping at
 * a NUL byte, into dst (dstsize bytes, always NUL-terminated, never ending
 * inside a character), keeping well-formed UTF-8 text and replacing each
 * control character (C0 including TAB and LF, DEL, C1) and each byte of an
 * ill-formed sequence by '?'.  The result is well-formed UTF-8 without
 * control characters.  With MD_SANITIZE_ASCII the result is printable
 * ASCII: every byte from 0x7f up becomes '?'.  dst may be src (the result
 * is never longer).  Returns dst.
 */
MD_API char *md_sanitize_text(char *dst, size_t dstsize, const char *src, size_t len, unsigned flags);
/* md_sanitize_text of the whole of src[0..len) into a new string; caller
 * frees with free(). */
MD_API char *md_sanitize_dup(const char *src, size_t len);
/* md_sanitize_text(dst, dstsize, src, len, MD_SANITIZE_ASCII): for text
 * that must be ASCII (header lines, peers' words in transcripts). */
MD_API char *md_sanitize(char *dst, size_t dstsize, const char *src, size_t len);

/* Monotonic clock in milliseconds. */
MD_API int64_t md_now_ms(void);
/* Fills buf with n bytes from the kernel's random generator (getrandom(2),
 * the source OpenSSL's own generator seeds from), without starting
 * OpenSSL's generator and providers, whose set-up costs a short-lived
 * process more than its work.  0, or -1 when none could be had. */
MD_API int md_random_bytes(void *buf, size_t n);
/* Writes s[0..n) to fd whole, through short writes and EINTR.  0, or -1
 * with errno. */
MD_API int md_write_all(int fd, const void *s, size_t n);

/* Allocation helpers that never return NULL for a non-zero size: they abort
 * on exhaustion, as maildiag cannot report anything useful without memory. */
MD_API void *md_xmalloc(size_t n);
MD_API void *md_xcalloc(size_t n, size_t size);
MD_API void *md_xrealloc(void *p, size_t n);
MD_API char *md_xstrdup(const char *s);
MD_API char *md_xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees with free(). */
MD_API char *md_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The library's version string, e.g. "0.1.0". */
MD_API const char *md_version(void);

#ifdef __cplusplus
}
#endif
#endif
