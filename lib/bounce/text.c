/*
 * lib/bounce text: non-standard bounces, read from their human text.
 *
 * These bounces follow no grammar, so this is heuristics, kept small and
 * bounded:
 *
 *  1. Recognise the bounce by a fixed phrase its software writes (Exim:
 *     "This message was created automatically by mail delivery software",
 *     qmail: "This is the qmail-send program", Exchange: "Delivery has
 *     failed to these recipients or groups", Gmail: "Address not found" ...),
 *     or, for others ("generic"), by a sender named MAILER-DAEMON,
 *     postmaster or "Mail Delivery ..." together with a subject such as
 *     "Undelivered Mail" or "failure notice".  Anything else is not a bounce.
 *  2. Stop at the line that starts the copy of the original message
 *     ("------ This is a copy of the message", "--- Below this line is a
 *     copy of the message", "Original message headers:"); only the first
 *     BOUNCE_TEXT_SCAN_MAX bytes and TEXT_MAX_LINES lines are read.
 *  3. Addresses: a line that is only an address ("  user@example.com",
 *     "<user@example.com>:"), "ADDR (ADDR)" (Exchange), or the address after
 *     "delivered to " / "message to " (Gmail, Exchange).  Each must parse
 *     as an RFC 5321 address (lib/address).
 *  4. Outcome per address: the first RFC 3463 code ("5.1.1", also in
 *     "550-5.1.1", "#550 5.1.1", "(#5.1.1)") in the lines from the address to
 *     the next address (at most TEXT_WINDOW lines); without one, the class
 *     of an SMTP reply code (550 -> 5.0.0); without that, the bounce's own
 *     wording ("This is a permanent error" -> 5.0.0, "has not yet been
 *     delivered" -> 4.0.0).  x.0.0 is RFC 3463's "other or undefined".
 *     Class 5 is failed, class 4 delayed.  No outcome at all is an error.
 */
#include "config.h"
#include "bounce_int.h"
#include "address/address.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT_MAX_LINES 2000
#define TEXT_WINDOW 25
#define TEXT_LINE_MAX 1000   /* longer lines are read up to here */

enum { VERDICT_NONE = 0, VERDICT_FAIL, VERDICT_DELAY };

static const struct {
    const char *phrase;
    const char *format;
} families[] = {
    { "This is the qmail-send program", "qmail" },
    { "This message was created automatically by mail delivery software", "exim" },
    { "Delivery has failed to these recipients or groups", "exchange" },
    { "Delivery is delayed to these recipients or groups", "exchange" },
    { "Diagnostic information for administrators", "exchange" },
    { "Your message wasn't delivered to", "gmail" },
    { "The email account that you tried to reach does not exist", "gmail" },
    { "** Address not found **", "gmail" },
    { "There was a temporary problem delivering your message", "gmail" },
};

static const char *const fail_phrases[] = {
    "permanent error", "could not be delivered", "couldn't be delivered",
    "wasn't able to deliver", "Delivery has failed", "wasn't delivered",
    "Address not found", "does not exist", "permanently", "giving up",
};

static const char *const delay_phrases[] = {
    "has not yet been delivered", "Delivery is delayed", "temporary problem",
    "will retry", "will be retried", "still trying", "Delivery incomplete",
    "temporary failure", "delayed",
};

static const char *const generic_subjects[] = {
    "undelivered", "undeliverable", "delivery status notification", "mail delivery failed",
    "failure notice", "returned mail", "delivery failure", "could not be delivered",
    "delivery delayed", "delayed mail", "non-delivery", "not delivered",
};

static const char *const copy_markers[] = {
    "This is a copy of the message", "Below this line is a copy of the message",
    "Original message headers", "Original message", "Original Message",
    "Returned message", "The original message",
};

/* Case-insensitive search of needle in hay[0..n).  The first byte is
 * compared inline: strncasecmp only runs where it can match. */
static const char *find_ci(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || m > n)
        return NULL;
    char lo = (char)tolower((unsigned char)needle[0]), up = (char)toupper((unsigned char)needle[0]);
    for (size_t i = 0; i + m <= n; i++)
        if ((hay[i] == lo || hay[i] == up) && strncasecmp(hay + i + 1, needle + 1, m - 1) == 0)
            return hay + i;
    return NULL;
}

typedef struct line {
    const char *p;
    size_t n;      /* trimmed */
} line;

/* An RFC 3463 code in l, with its digits bounded by non-digits and dots;
 * *reply receives an SMTP reply code on the line (0 when none). */
static int find_codes(const line *l, char *status, size_t ssize, int *reply)
{
    const char *p = l->p;
    size_t n = l->n;
    int found = 0;
    *reply = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int edge = i == 0 || !(isdigit((unsigned char)p[i - 1]) || p[i - 1] == '.');
        if (!edge || (c != '2' && c != '4' && c != '5'))
            continue;
        if (!found && i + 1 < n && p[i + 1] == '.') {
            size_t j = i + 2, d1 = 0, d2 = 0;
            while (j < n && isdigit((unsigned char)p[j]) && d1 < 4) { j++; d1++; }
            if (d1 >= 1 && d1 <= 3 && j < n && p[j] == '.') {
                j++;
                while (j < n && isdigit((unsigned char)p[j]) && d2 < 4) { j++; d2++; }
                int tail = j == n || !(isdigit((unsigned char)p[j]) ||
                                       (p[j] == '.' && j + 1 < n && isdigit((unsigned char)p[j + 1])));
                if (d2 >= 1 && d2 <= 3 && tail && j - i < ssize) {
                    memcpy(status, p + i, j - i);
                    status[j - i] = '\0';
                    found = 1;
                }
            }
        }
        if (*reply == 0 && i + 2 < n && isdigit((unsigned char)p[i + 1]) && isdigit((unsigned char)p[i + 2]) &&
            (i + 3 == n || p[i + 3] == ' ' || p[i + 3] == '-'))
            *reply = (c - '0') * 100 + (p[i + 1] - '0') * 10 + (p[i + 2] - '0');
    }
    return found;
}

/* The address a line names, by the rules at the top; "" when none. */
static void line_address(const line *l, char *out, size_t size)
{
    char tok[MD_ADDRESS_MAX + 3];
    const char *p = l->p, *e = l->p + l->n;
    out[0] = '\0';
    static const char *const lead[] = { "delivered to ", "message to " };
    int after_lead = 0;
    for (size_t k = 0; k < 2 && !after_lead; k++) {
        const char *f = find_ci(p, l->n, lead[k]);
        if (f) {
            p = f + strlen(lead[k]);
            after_lead = 1;
        }
    }
    while (p < e && (*p == '<' || *p == ' '))
        p++;
    size_t n = 0;
    while (p + n < e && p[n] != '>' && p[n] != ' ' && p[n] != ',' && p[n] != '\t' && n < sizeof tok - 1)
        n++;
    while (n > 0 && (p[n - 1] == '.' || p[n - 1] == ':' || p[n - 1] == ';'))
        n--;
    if (n == 0 || n > MD_ADDRESS_MAX || memchr(p, '@', n) == NULL)
        return;
    const char *rest = p + n;
    while (rest < e && (*rest == '>' || *rest == ':' || *rest == '.' || *rest == ' '))
        rest++;
    /* a lone address, or "ADDR (...)" (Exchange); after "delivered to",
     * anything may follow */
    if (!after_lead && rest < e && *rest != '(')
        return;
    memcpy(tok, p, n);
    tok[n] = '\0';
    md_address a;
    md_error err;
    if (n < size && md_address_parse(tok, &a, &err) == MD_OK)
        memcpy(out, tok, n + 1);
}

static int verdict_of(const char *t, size_t n)
{
    for (size_t i = 0; i < sizeof fail_phrases / sizeof fail_phrases[0]; i++)
        if (find_ci(t, n, fail_phrases[i]))
            return VERDICT_FAIL;
    for (size_t i = 0; i < sizeof delay_phrases / sizeof delay_phrases[0]; i++)
        if (find_ci(t, n, delay_phrases[i]))
            return VERDICT_DELAY;
    return VERDICT_NONE;
}

static const char *family_of(const char *t, size_t n, const char *from, const char *subject)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (find_ci(t, n, families[i].phrase))
            return families[i].format;
    if (from == NULL || subject == NULL)
        return NULL;
    size_t fl = strlen(from), sl = strlen(subject);
    if (!find_ci(from, fl, "mailer-daemon") && !find_ci(from, fl, "postmaster") &&
        !find_ci(from, fl, "mail delivery"))
        return NULL;
    for (size_t i = 0; i < sizeof generic_subjects / sizeof generic_subjects[0]; i++)
        if (find_ci(subject, sl, generic_subjects[i]))
            return "generic";
    return NULL;
}

static int is_copy_marker(const line *l)
{
    const char *p = l->p;
    size_t n = l->n;
    while (n > 0 && (*p == '-' || *p == ' ' || *p == '=' || *p == '*')) {
        p++;
        n--;
    }
    for (size_t i = 0; i < sizeof copy_markers / sizeof copy_markers[0]; i++) {
        size_t m = strlen(copy_markers[i]);
        if (n >= m && strncasecmp(p, copy_markers[i], m) == 0)
            return 1;
    }
    return 0;
}

md_status bounce_text_read(md_bounce *b, const char *text, size_t len, const char *from,
                           const char *subject, size_t *copy, md_error *err)
{
    *copy = len;
    if (len > BOUNCE_TEXT_SCAN_MAX)
        len = BOUNCE_TEXT_SCAN_MAX;
    line *lines = md_xcalloc(TEXT_MAX_LINES, sizeof *lines);
    size_t nl = 0, i = 0, body_end = len;
    while (i < len && nl < TEXT_MAX_LINES) {
        const char *nlp = memchr(text + i, '\n', len - i);
        size_t e = nlp ? (size_t)(nlp - text) : len;
        line l = { text + i, e - i };
        while (l.n > 0 && isspace((unsigned char)*l.p)) {
            l.p++;
            l.n--;
        }
        while (l.n > 0 && isspace((unsigned char)l.p[l.n - 1]))
            l.n--;
        if (l.n > TEXT_LINE_MAX)
            l.n = TEXT_LINE_MAX;
        size_t next = nlp ? e + 1 : len;
        if (l.n && is_copy_marker(&l)) {
            *copy = next;
            body_end = i;
            break;
        }
        lines[nl++] = l;
        i = next;
    }
    md_status st = MD_OK;
    const char *format = family_of(text, body_end, from, subject);
    if (format == NULL)
        goto done;
    int verdict = verdict_of(text, body_end);
    b->kind = MD_BOUNCE_TEXT;
    b->standard = 0;
    b->format = format;
    /* the addresses and the line each was first seen on */
    for (size_t k = 0; k < nl; k++) {
        char addr[MD_ADDRESS_MAX + 1];
        line_address(&lines[k], addr, sizeof addr);
        if (!addr[0])
            continue;
        md_bounce_recipient *r = NULL;
        for (size_t j = 0; j < b->nrcpt; j++)
            if (strcasecmp(b->rcpt[j].address, addr) == 0)
                r = &b->rcpt[j];
        if (r == NULL) {
            if ((r = bounce_add_rcpt(b)) == NULL)
                break;
            r->address = bounce_clean(addr, strlen(addr));
            r->field = md_xstrdup("text");
        }
        if (r->status[0])
            continue;
        /* its window: to the next line naming another address */
        int reply = 0;
        size_t diag = 0, first = 0;   /* line numbers + 1; 0 = none */
        for (size_t w = k + 1; w < nl && w <= k + TEXT_WINDOW; w++) {
            char other[MD_ADDRESS_MAX + 1], status[16];
            int rc;
            line_address(&lines[w], other, sizeof other);
            if (other[0] && strcasecmp(other, addr) != 0)
                break;
            if (other[0])
                continue;
            if (find_codes(&lines[w], status, sizeof status, &rc)) {
                snprintf(r->status, sizeof r->status, "%s", status);
                diag = w + 1;
                break;
            }
            if (rc && reply == 0) {
                reply = rc;
                diag = w + 1;
            }
            if (first == 0 && lines[w].n)
                first = w + 1;
        }
        if (diag == 0)
            diag = first;
        if (diag && r->diagnostic == NULL)
            r->diagnostic = bounce_clean(lines[diag - 1].p, lines[diag - 1].n);
        if (!r->status[0] && (reply / 100 == 4 || reply / 100 == 5))
            snprintf(r->status, sizeof r->status, "%d.0.0", reply / 100);
    }
    if (b->nrcpt == 0) {
        st = md_error_set(err, MD_PROTOCOL, "bounce.text",
                          "a %s bounce that names no recipient address in its first %zu lines",
                          format, nl);
        goto done;
    }
    for (size_t j = 0; j < b->nrcpt; j++) {
        md_bounce_recipient *r = &b->rcpt[j];
        if (!r->status[0] && verdict != VERDICT_NONE)
            snprintf(r->status, sizeof r->status, "%s", verdict == VERDICT_FAIL ? "5.0.0" : "4.0.0");
        if (!r->status[0]) {
            st = md_error_set(err, MD_PROTOCOL, "bounce.text",
                              "a %s bounce for %s without a status code or wording that says "
                              "whether the failure is permanent", format, r->address);
            goto done;
        }
        r->action = r->status[0] == '5' ? MD_BOUNCE_FAILED
                  : r->status[0] == '4' ? MD_BOUNCE_DELAYED : MD_BOUNCE_DELIVERED;
    }
done:
    free(lines);
    return st;
}
