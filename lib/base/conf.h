/*
 * lib/base conf: the maildiag configuration file (e.g. /etc/maildiag.conf).
 *
 *   # comment
 *   [store]
 *   uri = sqlite:/var/lib/maildiag/store.db
 *   [product]
 *   by_email = SELECT ... WHERE lower(email) = $1
 *
 * INI as libinih reads it (docs/LIBRARIES.md, "libinih", says how Debian's
 * build is set up and what the reader does about it):
 * sections in brackets (blanks before the bracket and around the name
 * dropped; "[]" is an error), "key = value" (or "key: value") lines, the
 * value's surrounding blanks removed.  '#' and ';' start a comment line,
 * and a '#' or ';' after a blank starts a comment at the end of a line.
 * Keys start in the first column: a line that starts with a blank
 * continues the value of the key above (joined with one space), never
 * across a [section] line (right after one, an indented line is a key).
 * Lines are at most 197 characters (libinih's 200-byte line buffer); a
 * longer line, a NUL byte anywhere or a CR anywhere but right before the
 * LF is an error with its line number.  Keys before any section are in
 * section "".  Unknown sections and keys are kept and simply never asked
 * for.
 *
 * Like msmtp, a file that others could change is refused: it must belong
 * to the running user or root and must not be group- or world-writable; a
 * file holding secrets (a key named password, secret or ending in _key or
 * _password, or a URI with a password) must not be world-readable.
 */
#ifndef MAILDIAG_CONF_H
#define MAILDIAG_CONF_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_conf md_conf;

/*
 * Loads path.  Returns MD_OK with *out (caller frees with md_conf_free),
 * MD_NOTFOUND when the file does not exist, MD_CONFIG with err ("FILE:LINE:
 * ...") for a syntax error or unsafe permissions.
 */
MD_API md_status md_conf_load(const char *path, md_conf **out, md_error *err);
MD_API void md_conf_free(md_conf *c);

/* The value of key in section, or NULL.  Borrowed; valid until free. */
MD_API const char *md_conf_get(const md_conf *c, const char *section, const char *key);
/* The line (1-based) where the value md_conf_get returns is written, for
 * messages that name a bad value's place; 0 when the key is not there. */
MD_API unsigned long md_conf_line(const md_conf *c, const char *section, const char *key);
/* The path the configuration was read from.  Borrowed. */
MD_API const char *md_conf_path(const md_conf *c);

#ifdef __cplusplus
}
#endif
#endif
