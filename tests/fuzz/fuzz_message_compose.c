/*
 * libFuzzer target: lib/message's composition (md_message_compose) with
 * hostile values.  The input: one byte of settings, then the values split
 * at NUL bytes, in this order: product, from_name, to, subject, username,
 * link, from, and the rest usernames.  An empty value is not given (NULL),
 * except to and from, which then take a fixed address.
 *   byte 0: bits 0-3 the template (the built-in ones, in order, then an
 *           unknown name), bit 4 a test send, bit 5 a test link, bit 6 an
 *           expiry date, bit 7 a Message-ID domain of its own
 *
 * What is checked, besides no crash and no leak:
 *  - a value with a control character or bytes that are not UTF-8 (by this
 *    file's own reading of UTF-8) is refused, never emitted;
 *  - a message composed has exactly the header fields meant, in order
 *    (Date, From, To, Subject, Message-ID, MIME-Version, Auto-Submitted,
 *    X-Maildiag-Test for a test send, Content-Type): parsed by splitting at
 *    the first CRLF CRLF and unfolding, so a value that smuggled in a line
 *    break ("Bcc: ...") shows as a field too many;
 *  - no CR or LF but in CRLF line ends, anywhere in the message;
 *  - every line at most 998 octets (RFC 5322 2.1.1);
 *  - the MIME boundary line appears three times exactly (two parts and the
 *    close): no value reproduces it;
 *  - the decoded subject is clean text and the Message-ID "<...@...>".
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "message/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names itself before the abort libFuzzer reports. */
#define check(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort(); \
    } \
} while (0)

/* Whether s is well-formed UTF-8 (Unicode 15, table 3-7) without a C0 or C1
 * control character or DEL: written here again rather than taken from
 * lib/base, so that a fault there cannot hide itself. */
static int good_text(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf, cp;
        if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
        else if (c == 0xe0) n = 3, lo = 0xa0, cp = c & 0x0f;
        else if (c >= 0xe1 && c <= 0xef) n = 3, hi = c == 0xed ? 0x9f : 0xbf, cp = c & 0x0f;
        else if (c == 0xf0) n = 4, lo = 0x90, cp = c & 0x07;
        else if (c >= 0xf1 && c <= 0xf3) n = 4, cp = c & 0x07;
        else if (c == 0xf4) n = 4, hi = 0x8f, cp = c & 0x07;
        else return 0;
        for (size_t i = 1; i < n; i++) {
            unsigned b = s[i];
            if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
                return 0;
            cp = cp << 6 | (b & 0x3f);
        }
        if (cp >= 0x80 && cp <= 0x9f)
            return 0;
        s += n;
    }
    return 1;
}

/* The header fields of msg in order, names only, each followed by '\n'. */
static char *field_names(const char *msg, size_t hlen)
{
    char *out = malloc(hlen + 1);
    size_t o = 0;
    check(out != NULL);
    for (size_t i = 0; i < hlen;) {
        const char *crlf = memmem(msg + i, hlen - i, "\r\n", 2);
        size_t end = crlf ? (size_t)(crlf - msg) : hlen;
        if (msg[i] == ' ' || msg[i] == '\t') {
            check(o > 0);   /* a continuation needs a field to continue */
        } else {
            const char *colon = memchr(msg + i, ':', end - i);
            check(colon != NULL && colon > msg + i);
            for (const char *c = msg + i; c < colon; c++) {
                check(*c > 0x20 && *c < 0x7f);   /* RFC 5322 ftext */
                out[o++] = *c;
            }
            out[o++] = '\n';
        }
        i = end + 2;
    }
    out[o] = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const templates[] = {
        "verify", "reset", "username", "plain", "no-account", "explain-sso",
        "explain-deactivated", "explain-locked", "verified", "nonesuch",
    };
    if (size < 1 || size > 16384)
        return 0;
    const unsigned flags = data[0];

    /* the values, NUL-terminated copies */
    char *buf = malloc(size);
    check(buf != NULL);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    enum { PRODUCT, FROM_NAME, TO, SUBJECT, USERNAME, LINK, FROM, NFIXED };
    const char *v[NFIXED] = { 0 };
    const char *users[64];
    size_t nusers = 0, nv = 0;
    const char *end = buf + size - 1;
    for (char *p = buf;;) {
        size_t l = strlen(p);
        if (nv < NFIXED)
            v[nv++] = l ? p : NULL;
        else if (nusers < sizeof users / sizeof users[0])
            users[nusers++] = p;
        if (p + l >= end)
            break;
        p += l + 1;
    }

    md_message_request req = {
        .template_name = templates[(flags & 15) % (sizeof templates / sizeof templates[0])],
        .from = v[FROM] ? v[FROM] : "noreply@example.com",
        .from_name = v[FROM_NAME],
        .to = v[TO] ? v[TO] : "maria@example.net",
        .subject = v[SUBJECT],
        .product = v[PRODUCT],
        .username = v[USERNAME],
        .usernames = users,
        .nusernames = nusers,
        .link = v[LINK],
        .expires = flags & 0x40 ? 1767229200 : 0,
        .test_send = !!(flags & 0x10),
        .link_is_test = !!(flags & 0x20),
        .date = 1767225600,
        .message_id_domain = flags & 0x80 ? "mail.example.com" : NULL,
    };

    /* what must be refused: a control character or bytes not UTF-8 in any value */
    int bad = 0;
    const char *texts[] = { req.from_name, req.subject, req.product, req.username, req.link,
                            req.from, req.to };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        bad |= texts[i] != NULL && !good_text(texts[i]);
    for (size_t i = 0; i < nusers; i++)
        bad |= !good_text(users[i]);

    md_message *m = NULL;
    md_error err = { 0 };
    md_status st = md_message_compose(&req, &m, &err);
    if (st != MD_OK) {
        check(m == NULL && st == MD_CONFIG && err.text[0] != '\0');
        free(buf);
        return 0;
    }
    check(!bad);
    check(m != NULL && m->data != NULL && strlen(m->data) == m->len);

    /* line ends and lengths, everywhere */
    size_t col = 0;
    for (size_t i = 0; i < m->len; i++) {
        char c = m->data[i];
        if (c == '\r') {
            check(i + 1 < m->len && m->data[i + 1] == '\n');
            i++;
            col = 0;
            continue;
        }
        check(c != '\n');
        check(++col <= 998);
    }
    check(m->len >= 2 && memcmp(m->data + m->len - 2, "\r\n", 2) == 0);

    /* the header fields */
    const char *sep = strstr(m->data, "\r\n\r\n");
    check(sep != NULL);
    char *names = field_names(m->data, (size_t)(sep - m->data) + 2);
    const char *want = req.test_send
        ? "Date\nFrom\nTo\nSubject\nMessage-ID\nMIME-Version\nAuto-Submitted\nX-Maildiag-Test\nContent-Type\n"
        : "Date\nFrom\nTo\nSubject\nMessage-ID\nMIME-Version\nAuto-Submitted\nContent-Type\n";
    check(strcmp(names, want) == 0);
    free(names);

    /* the boundary: the last field's parameter, then three delimiter lines */
    static const char ct[] = "\r\nContent-Type: multipart/alternative; boundary=\"";
    const char *b = strstr(m->data, ct);
    check(b != NULL && b < sep);
    b += sizeof ct - 1;
    const char *bend = strchr(b, '"');
    check(bend != NULL);
    size_t blen = (size_t)(bend - b);
    size_t delims = 0;
    for (const char *line = sep + 4; line < m->data + m->len;) {
        const char *e = strstr(line, "\r\n");
        if (e == NULL)
            break;
        if ((size_t)(e - line) >= blen + 2 && line[0] == '-' && line[1] == '-' &&
            memcmp(line + 2, b, blen) == 0)
            delims++;
        line = e + 2;
    }
    check(delims == 3);

    check(m->subject != NULL && good_text(m->subject));
    size_t idl = strlen(m->message_id);
    check(idl > 3 && m->message_id[0] == '<' && m->message_id[idl - 1] == '>' &&
          strchr(m->message_id, '@') != NULL);
    check(good_text(m->message_id));
    md_message_free(m);
    free(buf);
    return 0;
}
