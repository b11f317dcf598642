/* lib/bounce: what bounce.c and text.c share.  Not installed. */
#ifndef MAILDIAG_BOUNCE_INT_H
#define MAILDIAG_BOUNCE_INT_H

#include "bounce.h"

/* Non-standard bounces are read from at most this much of their text. */
#define BOUNCE_TEXT_SCAN_MAX (64u << 10)

/* A new zeroed recipient at the end of b->rcpt, or NULL when b already
 * holds MD_BOUNCE_MAX_RCPT. */
md_bounce_recipient *bounce_add_rcpt(md_bounce *b);

/* s[0..len) with line breaks and tabs as single spaces, trimmed, sanitized
 * (UTF-8 kept) and cut at MD_BOUNCE_TEXT_MAX bytes (never inside a character); NULL when nothing is left.  Caller
 * frees. */
char *bounce_clean(const char *s, size_t len);

/*
 * Reads a non-standard bounce from the human-readable text of a message
 * (text[0..len), already decoded) and the bounce's From and Subject (may
 * be NULL).  Sets b->kind to MD_BOUNCE_TEXT and adds the recipients, or
 * leaves b->kind MD_BOUNCE_NONE when the text is not one of the bounces
 * text.c knows.  *copy receives the offset in text where a copy of the
 * original message starts (len when there is none).  MD_PROTOCOL with err
 * when the text is a bounce but names no recipient or no outcome.
 */
md_status bounce_text_read(md_bounce *b, const char *text, size_t len, const char *from,
                           const char *subject, size_t *copy, md_error *err);

#endif
