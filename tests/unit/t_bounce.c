/*
 * lib/bounce over every fixture in tests/fixtures/bounces: the kind, the
 * format, the recipients with action and status, the original Message-ID,
 * and for malformed reports the error and where it points.  Then inputs
 * that are no message at all.
 */
#include "config.h"
#include "bounce/bounce.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures/bounces"
#endif

typedef struct want_rcpt {
    const char *address, *action, *status, *diag_part;
} want_rcpt;

static const struct fixture {
    const char *file;
    const char *kind;          /* NULL: an error is expected */
    const char *format;
    int standard;
    const char *original_id;   /* NULL: none */
    const char *feedback;      /* ARF feedback type */
    size_t nrcpt;
    want_rcpt r[3];
    const char *error;         /* a part of the error text */
} fixtures[] = {
    { "postfix-unknown-user.eml", "dsn", "rfc3464", 1, "reset-1234@app.example.com", NULL, 1,
      { { "nobody@example.net", "failed", "5.1.1", "User unknown in virtual mailbox table" } }, NULL },
    /* captured from the lab's Postfix and Exim (tests/integration/test_bounces.py) */
    { "postfix-lab-dsn.eml", "dsn", "rfc3464", 1, "live-postfix-1@app.lab.test", NULL, 1,
      { { "nobody@lab.test", "failed", "5.1.1", "user unknown" } }, NULL },
    { "exim-lab-dsn.eml", "dsn", "rfc3464", 1, "live-exim-1@app.lab.test", NULL, 1,
      { { "ghost@lab.test", "failed", "5.0.0", NULL } }, NULL },
    { "postfix-delayed.eml", "dsn", "rfc3464", 1, "verify-77@app.example.com", NULL, 1,
      { { "slow@example.org", "delayed", "4.4.1", "Connection timed out" } }, NULL },
    { "dsn-two-recipients.eml", "dsn", "rfc3464", 1, "remind-5@app.example.com", NULL, 2,
      { { "team@example.com", "failed", "5.2.1", "550 5.2.1 Mailbox disabled" },
        { "happy@example.com", "delivered", "2.0.0", NULL } }, NULL },
    { "exim-dsn.eml", "dsn", "rfc3464", 1, "welcome-9@app.example.com", NULL, 1,
      { { "ghost@example.org", "failed", "5.0.0", NULL } }, NULL },
    { "exchange-ndr.eml", "dsn", "rfc3464", 1, "welcome-ex-1@app.example.com", NULL, 1,
      { { "Former.Employee@corp.example.com", "failed", "5.1.10", "RESOLVER.ADR.RecipientNotFound" } }, NULL },
    { "gmail-dsn.eml", "dsn", "rfc3464", 1, "verify-g-1@app.example.com", NULL, 1,
      { { "no.such.person@gmail.test", "failed", "5.1.1", "tried to reach does not exist" } }, NULL },
    { "exim-text-failed.eml", "text", "exim", 0, "verify-31337@app.example.com", NULL, 1,
      { { "nobody@example.org", "failed", "5.1.1", "550-5.1.1 The email account" } }, NULL },
    { "exim-text-delayed.eml", "text", "exim", 0, NULL, NULL, 1,
      { { "later@example.org", "delayed", "4.3.0", "451 4.3.0" } }, NULL },
    { "qmail.eml", "text", "qmail", 0, "reset-qm-42@app.example.com", NULL, 2,
      { { "nobody@example.net", "failed", "5.1.1", "Remote host said: 550 5.1.1" },
        { "old.user@example.net", "failed", "5.1.1", "no mailbox here by that name" } }, NULL },
    { "exchange-text.eml", "text", "exchange", 0, "remind-ex-8@app.example.com", NULL, 1,
      { { "pat.doe@old.example.net", "failed", "5.1.1", "RESOLVER.ADR.RecipNotFound" } }, NULL },
    { "gmail-text.eml", "text", "gmail", 0, "reset-g-2@app.example.com", NULL, 1,
      { { "gone.user@gmail.test", "failed", "5.1.1", "tried to reach does not exist" } }, NULL },
    { "generic-mailer-daemon.eml", "text", "generic", 0, NULL, NULL, 1,
      { { "closed@example.test", "failed", "5.2.1", "mailbox is disabled" } }, NULL },
    { "arf-abuse.eml", "arf", "rfc5965", 1, "reset-arf-3@app.example.com", "abuse", 1,
      { { "complainer@hotmail.example", NULL, NULL, NULL } }, NULL },
    { "arf-redacted.eml", "arf", "rfc5965", 1, "remind-y-4@app.example.com", "abuse", 1,
      { { "spammy.user@yahoo.test", NULL, NULL, NULL } }, NULL },
    { "arf-not-spam.eml", "arf", "rfc5965", 1, "news-1@app.example.com", "not-spam", 1,
      { { "fan@example.org", NULL, NULL, NULL } }, NULL },
    { "not-bounce-reply.eml", "none", NULL, 0, NULL, NULL, 0, { { 0 } }, NULL },
    { "not-bounce-mdn.eml", "none", NULL, 0, NULL, NULL, 0, { { 0 } }, NULL },
    { "not-bounce-vacation.eml", "none", NULL, 0, NULL, NULL, 0, { { 0 } }, NULL },
    { "malformed-no-status-part.eml", NULL, NULL, 0, NULL, NULL, 0, { { 0 } },
      "has no message/delivery-status part" },
    { "malformed-bad-status.eml", NULL, NULL, 0, NULL, NULL, 0, { { 0 } },
      "part 2 (message/delivery-status) line 3: Status 'five.one.one' is not an RFC 3463 status code" },
    { "malformed-no-action.eml", NULL, NULL, 0, NULL, NULL, 0, { { 0 } },
      "part 1 (message/delivery-status) line 7: a recipient without Action" },
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap)
            buf = realloc(buf, cap = cap ? cap * 2 : 8192);
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

static void test_fixture(const struct fixture *fx)
{
    char path[512];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, fx->file);
    char *data = slurp(path, &len);
    ok(data != NULL, "%s: read", fx->file);
    if (data == NULL)
        return;
    md_bounce *b = NULL;
    md_error err = { 0 };
    md_status st = md_bounce_parse(data, len, &b, &err);
    if (fx->kind == NULL) {
        is_int(st, MD_PROTOCOL, "%s: malformed report is an error", fx->file);
        ok(b == NULL, "%s: no result with the error", fx->file);
        ok(strstr(err.text, fx->error) != NULL, "%s: error says where", fx->file);
        char *id = md_bounce_message_id(data, len);
        ok(id && strstr(id, "malformed-"), "%s: its Message-ID can still be named (%s)", fx->file, id ? id : "none");
        free(id);
        if (strstr(err.text, fx->error) == NULL)
            printf("#   got:  '%s'\n#   want: '...%s...'\n", err.text, fx->error);
        md_bounce_free(b);
        free(data);
        return;
    }
    free(data);
    is_int(st, MD_OK, "%s: parsed (%s)", fx->file, err.text);
    if (b == NULL)
        return;
    ok(b->key && (b->message_id ? strcmp(b->key, b->message_id) == 0 : strncmp(b->key, "sha256:", 7) == 0),
       "%s: key (%s)", fx->file, b->key ? b->key : "none");
    is_str(md_bounce_kind_name(b->kind), fx->kind, "%s: kind", fx->file);
    is_str(b->format, fx->format, "%s: format", fx->file);
    is_int(b->standard, fx->standard, "%s: standard", fx->file);
    is_str(b->original_message_id, fx->original_id, "%s: original Message-ID", fx->file);
    if (fx->feedback)
        is_str(b->feedback_type, fx->feedback, "%s: feedback type", fx->file);
    is_int(b->nrcpt, fx->nrcpt, "%s: recipients", fx->file);
    for (size_t i = 0; i < fx->nrcpt && i < b->nrcpt; i++) {
        const md_bounce_recipient *r = &b->rcpt[i];
        const want_rcpt *w = &fx->r[i];
        is_str(r->address, w->address, "%s: recipient %zu address", fx->file, i + 1);
        is_str(r->action ? md_bounce_action_name(r->action) : NULL, w->action,
               "%s: recipient %zu action", fx->file, i + 1);
        is_str(r->status[0] ? r->status : NULL, w->status, "%s: recipient %zu status", fx->file, i + 1);
        if (w->diag_part) {
            ok(r->diagnostic && strstr(r->diagnostic, w->diag_part),
               "%s: recipient %zu diagnostic has '%s'", fx->file, i + 1, w->diag_part);
            if (!(r->diagnostic && strstr(r->diagnostic, w->diag_part)))
                printf("#   got:  '%s'\n", r->diagnostic ? r->diagnostic : "(null)");
        }
    }
    md_report *rep = md_report_new("t_bounce", NULL);
    md_bounce_describe(b, rep);
    json_t *j = md_report_fields(rep);
    ok(json_object_size(j) == 13 && json_array_size(json_object_get(j, "recipients")) == b->nrcpt,
       "%s: described (13 fields, a JSON object per recipient)", fx->file);
    md_report_free(rep);
    md_bounce_free(b);
}

/* Input that is not a message at all, or barely: never a crash, never a
 * bounce. */
static void test_garbage(void)
{
    static const struct { const char *name, *data; size_t len; } cases[] = {
        { "empty", "", 0 },
        { "NUL bytes", "\0\0\0\0", 4 },
        { "binary", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16 },
        { "no header", "just some text\nwith lines\n", 26 },
        { "header only", "Subject: hi\n", 12 },
        { "report without boundary", "Content-Type: multipart/report; report-type=delivery-status\n\nx\n", 62 },
        { "ARF, reported To without address",
          "Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\n"
          "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n\n--b\n"
          "Content-Type: message/rfc822\n\nTo: undisclosed-recipients:;, \"\" <>\nSubject: x\n\nx\n--b--\n", 0 },
        { "unterminated ds",
          "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
          "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b.test\n"
          "Action: failed\nStatus: 5.1.1", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_bounce *b = NULL;
        md_error err = { 0 };
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
        md_status st = md_bounce_parse(cases[i].data, len, &b, &err);
        for (size_t k = 0; b && k < b->nrcpt; k++)
            ok(b->rcpt[k].address != NULL, "garbage '%s': recipient %zu has an address", cases[i].name, k + 1);
        ok(st != MD_OK || (b && b->kind != MD_BOUNCE_TEXT),
           "garbage '%s': no crash, no invented bounce (%s)", cases[i].name, st ? err.text : "ok");
        if (st == MD_OK)
            ok(b->key && strncmp(b->key, "sha256:", 7) == 0 && strlen(b->key) == 7 + 64,
               "garbage '%s': keyed by its SHA-256", cases[i].name);
        if (strcmp(cases[i].name, "unterminated ds") == 0) {
            is_int(st, MD_OK, "an unterminated last part still parses");
            ok(b && b->nrcpt == 1 && strcmp(b->rcpt[0].status, "5.1.1") == 0, "its recipient is read");
        }
        md_bounce_free(b);
    }
    md_bounce_free(NULL);
}

/* Mutated fixtures (cut short, bytes flipped, NUL, CR, LF and boundary-like
 * lines put in) from a fixed seed: md_bounce_parse must return, and what it
 * returns must hold together.  Under the sanitizer build this is a small
 * fuzz run of the entry point. */
static void test_mutations(void)
{
    unsigned long seed = 0x6d6431u, runs = 0, bad = 0;
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        char path[512];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, fixtures[f].file);
        char *orig = slurp(path, &len);
        if (orig == NULL || len == 0) {
            free(orig);
            continue;
        }
        for (int k = 0; k < 60; k++) {
            char *d = malloc(len + 64);
            size_t n = len;
            memcpy(d, orig, len);
            for (int m = 0; m < 1 + k % 4; m++) {
                seed = seed * 6364136223846793005ul + 1442695040888963407ul;
                size_t at = (size_t)(seed >> 33) % n;
                switch ((seed >> 20) % 5) {
                case 0: n = at + 1; break;                                   /* cut */
                case 1: d[at] ^= (char)(1u << ((seed >> 8) % 8)); break;     /* flip */
                case 2: d[at] = "\0\r\n:;<>-"[(seed >> 8) % 9]; break;
                case 3:                                                      /* a boundary-like line */
                    if (n + 4 <= len + 64) {
                        memmove(d + at + 4, d + at, n - at);
                        memcpy(d + at, "\n--\n", 4);
                        n += 4;
                    }
                    break;
                default: memset(d + at, ' ', (n - at) < 8 ? n - at : 8); break;
                }
            }
            md_bounce *b = NULL;
            md_error err = { 0 };
            md_status st = md_bounce_parse(d, n, &b, &err);
            runs++;
            if (st == MD_OK) {
                if (b == NULL || b->key == NULL)
                    bad++;
                for (size_t i = 0; b && i < b->nrcpt; i++) {
                    const md_bounce_recipient *r = &b->rcpt[i];
                    if (r->address == NULL || (r->status[0] && !md_bounce_status_valid(r->status, strlen(r->status))))
                        bad++;
                }
                md_report *rep = md_report_new("t_bounce", NULL);
                md_bounce_describe(b, rep);
                md_report_free(rep);
            } else if (b != NULL || err.text[0] == '\0') {
                bad++;
            }
            md_bounce_free(b);
            free(d);
        }
        free(orig);
    }
    ok(runs > 1000, "%lu mutated messages parsed", runs);
    is_int(bad, 0, "every result of a mutated message holds together");
}

/* A diagnostic in UTF-8 (RFC 6533) stays readable; control bytes and
 * ill-formed bytes do not pass. */
static void test_text_kept(void)
{
    const char *m =
        "From: MAILER-DAEMON@mx.example.test\nSubject: Undelivered Mail\nMessage-ID: <u8@mx.example.test>\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\n"
        "Final-Recipient: rfc822; jos\xc3\xa9@example.test\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 Bo\xc3\xaete inconnue \x1b[31m\xff\n--b--\n";
    md_bounce *b = NULL;
    md_error err = { 0 };
    is_int(md_bounce_parse(m, strlen(m), &b, &err), MD_OK, "UTF-8 report parsed (%s)", err.text);
    if (b && b->nrcpt == 1) {
        is_str(b->rcpt[0].address, "jos\xc3\xa9@example.test", "UTF-8 address kept");
        const char *d = b->rcpt[0].diagnostic;
        /* GMime reads the stray 0xff as Latin-1 (its fallback charset): 'ÿ' */
        static const char want[] = "550 5.1.1 Bo\xc3\xaete inconnue ?[31m";
        ok(d && strncmp(d, want, sizeof want - 1) == 0 && !strchr(d, 0x1b),
           "UTF-8 kept, ESC replaced (%s)", d ? d : "(null)");
        ok(d && md_utf8_valid(d, strlen(d)), "the diagnostic is well-formed UTF-8");
    }
    md_bounce_free(b);
}

static void test_status(void)
{
    static const struct { const char *s; int want; } cases[] = {
        { "5.1.1", 1 }, { "4.7.500", 1 }, { "2.0.0", 1 }, { "5.1.10", 1 },
        { "3.1.1", 0 }, { "5.1", 0 }, { "5.1.1234", 0 }, { "5..1", 0 }, { "five", 0 }, { "5.1.1.", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(md_bounce_status_valid(cases[i].s, strlen(cases[i].s)), cases[i].want, "status '%s'", cases[i].s);
}

int main(void)
{
    test_status();
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        test_fixture(&fixtures[i]);
    test_garbage();
    test_text_kept();
    test_mutations();
    return tap_done();
}
