/* Unit tests for lib/smtp's pure helpers: enhanced codes, greylisting,
 * queue ids, phase names, request validation; and the observer and judge
 * over scripted dialogues. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "smtp/smtp-int.h"
#include "tap.h"

/* A dialogue through the observer and the judge, as the engines feed them:
 * "<..." a line from the server, ">..." a command we write, "!R550 ..." a
 * libESMTP status (M, R or D: MAIL, RCPT, the message), "!B" libESMTP
 * stopping to show the dialogue (CHUNKING).  Returns the outcome; *id
 * receives the first finding's id. */
static md_smtp_outcome dialogue(const char *const *script, md_smtp_phase quit_after, md_smtp_phase *phase,
                                char *id, size_t idsize)
{
    md_smtp_request req = { .server = "mx.example.net", .helo = "client.example.org",
                            .mail_from = "a@example.com", .rcpt_to = "b@example.net",
                            .quit_after = quit_after, .tls = MD_SMTP_TLS_OFF };
    md_smtp_result res = { 0 };
    smtp_att *a = md_xcalloc(1, sizeof *a);
    a->req = &req;
    a->res = &res;
    a->tls = MD_SMTP_TLS_OFF;
    a->host = "mx.example.net";
    a->child_fd = -1;
    a->t0 = md_now_ms();
    for (; *script; script++) {
        const char *l = *script;
        if (l[0] == '!' && l[1] == 'B') {
            a->blind = 1;
            a->sent = MD_SMTP_PHASE_DATA;
        } else if (l[0] == '!') {
            md_smtp_phase p = l[1] == 'M' ? MD_SMTP_PHASE_MAIL : l[1] == 'R' ? MD_SMTP_PHASE_RCPT
                                                                              : MD_SMTP_PHASE_DATA;
            char *end;
            int code = (int)strtol(l + 2, &end, 10);
            smtp_reply_set(&a->rep[p], code, end + (*end == ' '), strlen(end + (*end == ' ')));
            a->got[p] = p == MD_SMTP_PHASE_DATA ? 2 : 1;
        } else {
            char line[600];
            int n = snprintf(line, sizeof line, "%s\r\n", l + 1);
            smtp_feed(a, l[0] == '>', line, (size_t)n, 0);
        }
    }
    md_report *rep = md_report_new("t_smtp", NULL);
    md_smtp_outcome o = smtp_judge(a, rep);
    *phase = res.phase;
    snprintf(id, idsize, "%s", md_report_count(rep) ? md_report_get(rep, 0)->id : "");
    md_report_free(rep);
    md_smtp_result_clear(&res);
    free(a);
    return o;
}

int main(void)
{
    struct { const char *code, *want; } ex[] = {
        { "5.1.1", "no such mailbox (the address does not exist)" },
        { "5.2.2", "mailbox full (over quota)" },
        { "5.7.1", "refused by policy (spam filter, blocklist, or relaying denied)" },
        { "4.2.2", "mailbox full (over quota), try later" },
        { "5.9.9", "permanent failure" }, { "4.9.9", "temporary failure" }, { "", "" }, { "2.0.0", "ok" },
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        is_str(md_smtp_enhanced_explain(ex[i].code), ex[i].want, "explain %s", ex[i].code);
    is_str(md_smtp_enhanced_explain(NULL), "", "explain NULL");

    /* The one parser of enhanced status codes (RFC 3463, RFC 2034). */
    struct { int code; const char *text, *enh, *rest; } en[] = {
        { 250, "2.1.5 Ok", "2.1.5", "Ok" },
        { 550, "5.7.26 Unauthenticated email is not accepted", "5.7.26", "Unauthenticated email is not accepted" },
        { 550, "4.1.1 mismatched class", "", "4.1.1 mismatched class" },
        { 354, "3.0.0 go ahead", "", "3.0.0 go ahead" },
        { 334, "3.0.0 VXNlcm5hbWU6", "", "3.0.0 VXNlcm5hbWU6" },
        { 550, "5.1234.1 too many digits", "", "5.1234.1 too many digits" },
        { 550, "5.1.1", "5.1.1", "" },
    };
    for (size_t i = 0; i < sizeof en / sizeof en[0]; i++) {
        md_smtp_reply r;
        smtp_reply_set(&r, en[i].code, en[i].text, strlen(en[i].text));
        is_str(r.enhanced, en[i].enh, "%d %s: enhanced code", en[i].code, en[i].text);
        is_str(r.text, en[i].rest, "%d %s: text", en[i].code, en[i].text);
    }

    struct { int code; const char *enh, *text; int want; } gl[] = {
        { 450, "4.2.0", "Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/", 1 },
        { 451, "4.7.1", "Please try again later", 1 },
        { 450, "4.7.1", "Service unavailable", 1 },
        { 452, "4.2.2", "Mailbox full", 0 },
        { 550, "5.7.1", "greylisted", 0 },
        { 421, "4.3.2", "Service shutting down", 0 },
    };
    for (size_t i = 0; i < sizeof gl / sizeof gl[0]; i++)
        is_int(md_smtp_is_greylisting(gl[i].code, gl[i].enh, gl[i].text), gl[i].want, "greylisting: %d %s", gl[i].code, gl[i].text);

    struct { const char *text, *want; } q[] = {
        { "Ok: queued as 4Bq7Zp3xYzz", "4Bq7Zp3xYzz" },
        { "2.0.0 OK queued as TEST0001", "TEST0001" },
        { "OK id=1qXyZa-0003Ab-2C", "1qXyZa-0003Ab-2C" },
        { "2.0.0 Ok: queued as <ABCD1234@mx.example>", "ABCD1234@mx.example" },
        { "Ok", NULL }, { "", NULL },
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        char out[64] = "";
        int got = md_smtp_queue_id(q[i].text, out, sizeof out);
        is_str(got ? out : NULL, q[i].want, "queue id from '%s'", q[i].text);
    }

    struct { const char *name; int want; } helo[] = {
        { "mail.example.com", 1 }, { "localhost", 1 }, { "a-b.c0", 1 }, { "[192.0.2.1]", 1 },
        { "[IPv6:2001:db8::1]", 1 }, { "[ipv6:::1]", 1 },
        { "", 0 }, { "a b", 0 }, { "a\r\nRSET", 0 }, { "-a.example", 0 }, { "a-.example", 0 },
        { "a..example", 0 }, { ".example", 0 }, { "example.", 0 }, { "[300.1.1.1]", 0 }, { "[2001:db8::1]", 0 },
        { "[IPv6:1.2.3.4]", 0 }, { "a_b.example", 0 }, { "\xc3\xa9.example", 0 },
    };
    for (size_t i = 0; i < sizeof helo / sizeof helo[0]; i++)
        is_int(md_smtp_helo_valid(helo[i].name), helo[i].want, "EHLO name '%s'", helo[i].name);

    struct { const char *word; int want; } tls[] = {
        { "required", MD_SMTP_TLS_REQUIRED }, { "opportunistic", MD_SMTP_TLS_OPPORTUNISTIC },
        { "off", MD_SMTP_TLS_OFF }, { "", -1 }, { "on", -1 }, { "required ", -1 }, { NULL, -1 },
    };
    for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++)
        is_int(md_smtp_tls_parse(tls[i].word), tls[i].want, "TLS policy '%s'", tls[i].word ? tls[i].word : "(null)");

    /* Words from phase and text, not the code alone. */
    md_smtp_reply r454 = { 454, "4.7.0", "TLS not available due to local problem" };
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_STARTTLS, &r454), "TLS") != NULL, "454 at STARTTLS is a TLS fault");
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_STARTTLS, &r454), "greylist") == NULL, "454 at STARTTLS is not greylisting");
    md_smtp_reply grey = { 450, "4.2.0", "<a@b>: Recipient address rejected: Greylisted" };
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_RCPT, &grey), "greylisting") != NULL, "450 greylisted at RCPT");
    md_smtp_reply relay = { 554, "5.7.1", "<a@b>: Relay access denied" };
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_RCPT, &relay), "relaying denied") != NULL, "relay denied at RCPT");
    md_smtp_reply big = { 552, "5.3.4", "Message size exceeds fixed limit" };
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_MAIL, &big), "SIZE") != NULL, "552 5.3.4 at MAIL");
    md_smtp_reply a250 = { 250, "2.0.0", "Ok" };
    ok(strstr(md_smtp_explain(MD_SMTP_PHASE_AUTH, &a250), "235") != NULL, "250 to AUTH is not success");

    const char *phases[] = { "connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt" };
    for (size_t i = 0; i < 7; i++)
        is_str(md_smtp_phase_name((md_smtp_phase)md_smtp_phase_parse(phases[i])), phases[i], "phase %s round trip", phases[i]);
    is_int(md_smtp_phase_parse("data"), -1, "data is not a --quit-after phase");
    is_int(md_smtp_phase_parse("RCPT"), MD_SMTP_PHASE_RCPT, "phases are case-insensitive");
    is_str(md_smtp_outcome_name(MD_SMTP_DEFERRED), "deferred", "outcome name");

    /* Replies that are neither yes nor no decide nothing, and never read
     * as "accepted". */
    static const char *const greet[] = { "<220 mx ESMTP", ">EHLO client.example.org", "<250-mx", "<250 CHUNKING",
                                         ">MAIL FROM:<a@example.com>", "<250 2.1.0 Ok", "!B", NULL };
    struct { const char *const *head; const char *tail[4]; md_smtp_phase quit; md_smtp_outcome want;
             const char *id; const char *what; } dl[] = {
        { greet, { "!R550 5.7.1 Relay access denied" }, MD_SMTP_PHASE_NONE, MD_SMTP_REJECTED,
          "smtp.rcpt.rejected", "CHUNKING: RCPT refused by status" },
        { greet, { "!R55 relay access denied" }, MD_SMTP_PHASE_NONE, MD_SMTP_FAILED,
          "smtp.protocol", "CHUNKING: RCPT status 55 (libESMTP reads codes with strtol)" },
        { greet, { "!R150 go on" }, MD_SMTP_PHASE_NONE, MD_SMTP_FAILED, "smtp.protocol", "CHUNKING: RCPT status 150" },
        { greet, { "!R250 2.1.5 Ok", "!D650 no" }, MD_SMTP_PHASE_NONE, MD_SMTP_FAILED, "smtp.protocol",
          "CHUNKING: message status 650" },
        { greet, { "!R250 2.1.5 Ok", "!D250 2.0.0 Ok: queued as 4Xyz12" }, MD_SMTP_PHASE_NONE, MD_SMTP_ACCEPTED,
          "smtp.accepted", "CHUNKING: accepted by status" },
        { NULL, { "<250 mx.example.net hello", ">QUIT", "<221 bye" }, MD_SMTP_PHASE_BANNER, MD_SMTP_FAILED,
          "smtp.protocol", "a 250 greeting is not one" },
        { NULL, { "<220 mx", ">EHLO client.example.org", "<251 hello", ">QUIT" }, MD_SMTP_PHASE_EHLO,
          MD_SMTP_FAILED, "smtp.protocol", "251 to EHLO" },
        { NULL, { "<220 mx", ">HELO client.example.org", "<250 hello", ">QUIT" }, MD_SMTP_PHASE_EHLO,
          MD_SMTP_ACCEPTED, "smtp.probe_ok", "250 to HELO" },
    };
    for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++) {
        const char *script[16];
        size_t n = 0;
        for (const char *const *h = dl[i].head; h && *h; h++)
            script[n++] = *h;
        for (size_t k = 0; k < 4 && dl[i].tail[k]; k++)
            script[n++] = dl[i].tail[k];
        script[n] = NULL;
        md_smtp_phase ph;
        char id[64];
        is_str(md_smtp_outcome_name(dialogue(script, dl[i].quit, &ph, id, sizeof id)),
               md_smtp_outcome_name(dl[i].want), "%s: outcome", dl[i].what);
        is_str(id, dl[i].id, "%s: finding", dl[i].what);
    }

    /* Bad requests are refused before any network work. */
    md_error err;
    md_smtp_ctx *ctx = md_smtp_ctx_new(NULL, &err);
    ok(ctx != NULL, "context");
    md_smtp_result res;
    struct { md_smtp_request rq; const char *what; } bad[] = {
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com\r\nRCPT TO:<c@x>", .quit_after = MD_SMTP_PHASE_RCPT }, "CRLF in recipient" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com>", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "bracket in sender" },
        { { .server = "[::1]:25", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "IPv6 literal" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com" }, "no message" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT, .auth_user = "u", .auth_password = "p\nw" }, "CRLF in password" },
        { { .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "direct without resolver" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT, .helo = "x.example\r\nRCPT TO:<c@x>" }, "CRLF in the EHLO name" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT, .helo = "bad name" }, "space in the EHLO name" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT, .auth_user = "u\x01", .auth_password = "p" }, "control character in the AUTH user" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .data = "x", .len = 1, .dsn = 1, .dsn_envid = "id\r\nRSET" }, "CRLF in the DSN envelope id" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "m\xc3\xbcller@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "non-ASCII local part (SMTPUTF8)" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com\x7f", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "DEL in the sender" },
        { { .server = ":25", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "no server host" },
        { { .server = "127.0.0.1:99999", .mail_from = "a@example.com", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "server port out of range" },
        /* lib/address's grammar, exactly: what RFC 5321 4.1.2 forbids never reaches the wire */
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = ".test@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "a local part that starts with a dot" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "test.@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "a local part that ends with a dot" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "test@-example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "a label that starts with a hyphen" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = " b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "a blank before the recipient (nothing is trimmed on the wire)" },
        { { .server = "127.0.0.1:1", .mail_from = "Alice <a@example.com>", .rcpt_to = "b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "a display name in the sender" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "a..b@example.com", .quit_after = MD_SMTP_PHASE_RCPT }, "two dots in a row" },
        { { .server = "127.0.0.1:1", .mail_from = "a@example.com", .rcpt_to = "", .quit_after = MD_SMTP_PHASE_RCPT }, "the null path as recipient" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        is_int(md_smtp_send(ctx, &bad[i].rq, &res, &err), MD_CONFIG, "refused: %s", bad[i].what);
        /* the facts only: which option or setting gave the value is the caller's to say */
        ok(strstr(err.text, "--") == NULL && strstr(err.text, "[mail]") == NULL,
           "%s: no option named (%s)", bad[i].what, err.text);
        md_smtp_result_clear(&res);
    }
    md_smtp_ctx_free(ctx);
    md_smtp_ctx_free(NULL);
    md_smtp_result_clear(NULL);
    return tap_done();
}
