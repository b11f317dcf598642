/*
 * lib/base conf: the maildiag configuration file (e.g. /etc/maildiag.conf).
 *
 *   # comment
 *   [store]
 *   uri = sqlite:/var/lib/maildiag/store.db
 *   [product]
 *   by_email = SELECT ... WHERE lower(email) = $1
 *
 * Sections in brackets, "key = value" lines (the value runs to the end of
 * the line, surrounding blanks removed; a value may be continued on lines
 * that start with a blank, so keys start in the first column).  Keys before any section are in section "".
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
md_status md_conf_load(const char *path, md_conf **out, md_error *err);
void md_conf_free(md_conf *c);

/* The value of key in section, or NULL.  Borrowed; valid until free. */
const char *md_conf_get(const md_conf *c, const char *section, const char *key);
/* The path the configuration was read from.  Borrowed. */
const char *md_conf_path(const md_conf *c);

#ifdef __cplusplus
}
#endif
#endif
