/*
 * lib/base buf: the one growable byte buffer of the library, and the
 * writer of JSON text into it.
 *
 * Every module that builds text or bytes of unknown length (a message, an
 * exposition, a macro expansion, a frame read from a pipe) appends to an
 * md_buf instead of keeping a pointer, a length and a capacity of its own.
 *
 * The JSON writer here writes values (strings, numbers) byte for byte as
 * jansson's json_dumpb(..., JSON_COMPACT) writes them (docs/LIBRARIES.md,
 * "jansson", has what that is), so that output
 * written piecewise and output dumped from a tree are the same bytes;
 * lib/report walks jansson trees with it (md_json_append), and no header
 * of lib/base needs jansson.
 */
#ifndef MAILDIAG_BASE_BUF_H
#define MAILDIAG_BASE_BUF_H

#include <stddef.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* data[0..len) holds the bytes (not NUL-terminated unless md_buf_cstr was
 * called), cap the room allocated.  Zero-initialise (md_buf b = { 0 });
 * the owner frees with md_buf_free() or takes data with md_buf_steal(). */
typedef struct md_buf {
    char *data;
    size_t len, cap;
} md_buf;

/* Appends n bytes of s.  Memory comes from md_xrealloc: an append never
 * fails (the process aborts on exhaustion, as md_xmalloc does). */
MD_API void md_buf_add(md_buf *b, const void *s, size_t n);
/* Appends a NUL-terminated string (without its NUL). */
MD_API void md_buf_addstr(md_buf *b, const char *s);
/* Appends a string literal (its length known at compile time). */
#define MD_BUF_LIT(b, lit) md_buf_add((b), (lit), sizeof(lit) - 1)
/* Appends printf-style text. */
MD_API void md_buf_addf(md_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Makes room for n more bytes and returns where they go (data + len),
 * for a caller that writes them itself (read(2) into the buffer); it then
 * adds what it wrote to len.  The pointer is valid until the next call
 * that grows b.
 */
MD_API char *md_buf_reserve(md_buf *b, size_t n);
/* NUL-terminates the bytes (the NUL is not counted in len) and returns
 * data, "" for an empty buffer.  Borrowed: valid until b changes. */
MD_API const char *md_buf_cstr(md_buf *b);
/* Hands the bytes over, NUL-terminated: returns them (caller frees with
 * free()), their length in *len when len is not NULL, and leaves b empty. */
MD_API char *md_buf_steal(md_buf *b, size_t *len);
/* Frees what b holds and leaves it empty; NULL is a no-op. */
MD_API void md_buf_free(md_buf *b);

/* --- JSON text ------------------------------------------------------- */

/*
 * Appends s[0..n) as a JSON string (quotes included), escaped as jansson
 * escapes it: '"', '\\', and control characters as \b \f \n \r \t or
 * \u00XX.  One difference: DEL and the C1 controls (U+0080..U+009F), which
 * jansson writes raw, are written as \u escapes (the same string), so that
 * no terminal acts on JSON output.  s is taken as it is: callers hand it
 * well-formed UTF-8.
 */
MD_API void md_json_append_string(md_buf *b, const char *s, size_t n);
/* Appends an integer as JSON writes it. */
MD_API void md_json_append_int(md_buf *b, long long v);
/* Appends a real as jansson writes it (%.17g, always with a '.' or an
 * exponent, the exponent without '+' or leading zeros).  Returns 0, or -1
 * (b unchanged) for a NaN or an infinity, which JSON cannot hold. */
MD_API int md_json_append_real(md_buf *b, double v);

#ifdef __cplusplus
}
#endif
#endif
