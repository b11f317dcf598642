/*
 * lib/message: the product's emails, composed from templates.
 *
 * Templates: "verify" (address verification link), "reset" (password-reset
 * link), "username" (username reminder listing the usernames) and "plain"
 * (a simple test message).  Each is a subject, a text part and an HTML part,
 * sent as multipart/alternative.  Built-in defaults are compiled in; a
 * template directory overrides them per file:
 *     DIR/NAME.subject   one line
 *     DIR/NAME.txt       the text part
 *     DIR/NAME.html      the HTML part
 * (a missing file falls back to the built-in one).  Placeholders:
 *     {{product}} {{to}} {{username}} {{usernames}} {{link}} {{expires}}
 * Values are HTML-escaped in the HTML part; {{usernames}} is one per line
 * in text and a <ul> list in HTML.  An unknown placeholder is an error (a
 * typo must not reach a user).
 *
 * Header safety: no CR or LF (nor any other control character) from any
 * input reaches a header.  The from and to addresses must be exactly an
 * RFC 5321 Mailbox (lib/address, md_address_check: no blanks or angle
 * brackets around it, no display name, no control character), which is
 * also a valid RFC 5322 addr-spec; others are refused (MD_CONFIG).  The
 * subject and display names are refused when they hold CR/LF/controls, and
 * encoded as RFC 2047 encoded-words (UTF-8, base64, folded) when not ASCII
 * or too long for one line (a display name is quoted when it fits).
 * Values in bodies go through quoted-printable, so they cannot end the
 * MIME part.  The Message-ID's domain is the sender's in A-labels.
 *
 * Output: the whole message, CRLF line ends, lines <= 78 characters, with
 * Date, Message-ID (random, in the sending domain), From, To, Subject,
 * MIME-Version, Content-Type, Auto-Submitted: auto-generated, and, for test
 * sends, "X-Maildiag-Test: yes".  The same bytes are shown and sent.
 */
#ifndef MAILDIAG_MESSAGE_H
#define MAILDIAG_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_MESSAGE_FIELD_MAX 998   /* longest accepted input value, bytes */

typedef struct md_message_request {
    const char *template_name;   /* "verify", "reset", "username", "plain" */
    const char *template_dir;    /* NULL: built-in templates only */
    const char *from;            /* envelope-style address: "noreply@example.com" */
    const char *from_name;       /* display name, may be NULL; UTF-8 */
    const char *to;              /* recipient address */
    const char *subject;         /* NULL: the template's subject */
    const char *product;         /* {{product}}; NULL = "Example" */
    const char *username;        /* {{username}}; may be NULL */
    const char *const *usernames;/* {{usernames}} for the username template */
    size_t nusernames;
    const char *link;            /* {{link}} for verify / reset */
    int64_t expires;             /* {{expires}} as a UTC date; 0 = none */
    int test_send;               /* add X-Maildiag-Test and a test-send note in the bodies */
    const char *test_sender;     /* the program making the test send, named in both
                                  * ("yes (a test send by NAME)"); NULL: not named.
                                  * 1 to 64 of [A-Za-z0-9._-] */
    int link_is_test;            /* the link's token is signed with a throwaway key: say so,
                                  * beside the link (the next line in text; in HTML after
                                  * the <a> element, or the tag, holding {{link}}) */
    time_t date;                 /* 0 = now */
    const char *message_id_domain; /* NULL: the domain of from */
} md_message_request;

typedef struct md_message {
    char *data;                  /* the message, CRLF, NUL-terminated */
    size_t len;
    char *message_id;            /* "<...@domain>" */
    char *subject;               /* decoded subject, UTF-8 */
} md_message;

/* Composes a message.  Returns MD_OK and *out (caller frees with
 * md_message_free), or MD_CONFIG with err naming the bad field
 * ("message.to", "message.subject", "message.template" ...). */
MD_API md_status md_message_compose(const md_message_request *req, md_message **out, md_error *err);
MD_API void md_message_free(md_message *m);

/* Whether name is a known template. */
MD_API int md_message_template_known(const char *name);

/*
 * Checks an address for use in a header or an SMTP command: exactly an
 * RFC 5321 Mailbox as lib/address defines it (md_address_check with no
 * option: quoted local parts, address literals and UTF-8 (SMTPUTF8) are
 * valid; blanks or angle brackets around it, a display name, the null path
 * and control characters are not).  Returns MD_OK or MD_CONFIG with err
 * ("FIELD: what is wrong", stage given by the caller's field name).
 */
MD_API md_status md_message_check_address(const char *field, const char *addr, md_error *err);

/* RFC 2047 encoding of a header value (UTF-8 in): returns it unchanged
 * when printable ASCII, else encoded-words folded with CRLF SP for a header
 * whose name takes name_len columns.  NULL when value has controls.  Caller
 * frees with free(). */
MD_API char *md_message_encode_header(const char *value, size_t name_len);

#ifdef __cplusplus
}
#endif
#endif
