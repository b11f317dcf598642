/*
 * libFuzzer target: lib/smtp's reading of a dialogue (observe.c: reply
 * lines and multi-line replies, replies matched to commands, EHLO keywords,
 * the AUTH gate) and its judgement (judge.c: phase + replies -> outcome,
 * findings, our words), over a fake attempt: no engine, no socket.
 *
 * The input: two bytes of settings, then a script.  A script line that
 * starts with '>' is a command we write (fed as the engines feed it, with
 * CRLF); one that starts with '!' is a status as the libESMTP engine reports
 * it ("!M550 5.1.1 no", M R or D for MAIL, RCPT, the message); anything else
 * is bytes from the server, fed as they are (bare CR, NUL, over-long lines
 * included) in chunks of a size the settings choose.
 *   byte 0: bits 0-2 quit_after (send, banner, ehlo, starttls, auth, mail,
 *           rcpt, connect), bit 3 an AUTH user, bits 4-5 the TLS policy,
 *           bit 6 the deadline passed, bit 7 the engine failed
 *   byte 1: bits 0-3 the chunk size (0: whole lines), bit 4 TLS in use,
 *           bit 5 DSN asked for, bit 6 the connection failed, bit 7 the
 *           engine found no DSN; with TLS in use, bits 0-1 of the chunk
 *           size pick the certificate's verification result
 * A status's code is any int followed by a space or a hyphen (libESMTP
 * reads it with strtol); "!B" says libESMTP stopped showing the dialogue
 * (CHUNKING).
 *
 * What is checked: no crash, no leak; the outcome is one of the four and
 * the phase one of ours, with at least one finding; the reply that decided
 * it agrees with it (accepted: none or a 2xx, at the end of the dialogue
 * asked for; deferred a 4xx, rejected a 5xx); every finding id is in the catalogue; the
 * findings, their evidence, the transcript, the replies and our words for
 * them (md_smtp_explain for every phase) hold no control character; a
 * reply's enhanced status code is an RFC 3463 code of the reply's class; a
 * queue id is printable.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

#include "smtp/smtp-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names itself before the abort libFuzzer reports. */
#define check(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort(); \
    } \
} while (0)

/* Text a reader sees: UTF-8 without control characters. */
static void clean(const char *s)
{
    size_t bad;
    const char *why;
    check(s != NULL && md_text_check(s, strlen(s), NULL, &bad, &why) == 0);
}

/* RFC 3463: class "." subject "." detail, subject and detail 1-3 digits,
 * the class 2, 4 or 5 and the first digit of the reply code (RFC 2034 3:
 * only 2xx, 4xx and 5xx replies carry one). */
static void enhanced_valid(const char *e, int code)
{
    if (e[0] == '\0')
        return;
    check(code / 100 == 2 || code / 100 == 4 || code / 100 == 5);
    check(e[0] == '0' + code / 100 && e[1] == '.');
    const char *p = e + 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (p[d] >= '0' && p[d] <= '9')
            d++;
        check(d >= 1 && d <= 3);
        p += d;
        if (part == 0)
            check(*p++ == '.');
    }
    check(*p == '\0');
}

static void reply_valid(const md_smtp_reply *r)
{
    check(memchr(r->text, '\0', sizeof r->text) != NULL);
    clean(r->text);
    enhanced_valid(r->enhanced, r->code);
    for (int p = MD_SMTP_PHASE_NONE; p <= MD_SMTP_PHASE_QUIT; p++)
        clean(md_smtp_explain((md_smtp_phase)p, r));
    clean(md_smtp_enhanced_explain(r->enhanced));
    char q[64];
    if (md_smtp_queue_id(r->text, q, sizeof q)) {
        check(strlen(q) >= 4);
        for (const char *c = q; *c; c++)
            check(*c > 0x20 && *c < 0x7f);
    }
}

/* A status as the libESMTP engine reports it: libESMTP reads the code with
 * strtol, so it is any int; esmtp.c drops 0 and takes the rest as
 * take_status does.  "!B": libESMTP stopped showing the dialogue
 * (CHUNKING), as esmtp.c's progress() records it. */
static void status(smtp_att *a, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (s[0] == 'B') {
        if (!a->blind && a->sent < MD_SMTP_PHASE_RCPT) {
            a->blind = 1;
            a->sent = MD_SMTP_PHASE_DATA;
        }
        return;
    }
    md_smtp_phase p = s[0] == 'M' ? MD_SMTP_PHASE_MAIL : s[0] == 'R' ? MD_SMTP_PHASE_RCPT : MD_SMTP_PHASE_DATA;
    /* libESMTP: strtol, then a space or a hyphen, else no reply at all */
    char line[64];
    size_t k = n - 1 < sizeof line - 1 ? n - 1 : sizeof line - 1;
    memcpy(line, s + 1, k);
    line[k] = '\0';
    char *end;
    int code = (int)strtol(line, &end, 10);
    if (end == line || (*end != ' ' && *end != '-') || code == 0)
        return;
    size_t i = 1 + (size_t)(end - line) + 1;
    smtp_reply_set(&a->rep[p], code, s + i, n > i ? n - i : 0);
    if (p == MD_SMTP_PHASE_DATA) {
        a->got[p] = 2;
        a->data_final = 1;
    } else {
        a->got[p] = 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const md_smtp_phase quit[8] = {
        MD_SMTP_PHASE_NONE, MD_SMTP_PHASE_BANNER, MD_SMTP_PHASE_EHLO, MD_SMTP_PHASE_STARTTLS,
        MD_SMTP_PHASE_AUTH, MD_SMTP_PHASE_MAIL, MD_SMTP_PHASE_RCPT, MD_SMTP_PHASE_CONNECT
    };
    static const long verify[4] = { X509_V_OK, X509_V_ERR_CERT_HAS_EXPIRED,
                                    X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY };
    if (size < 2 || size > 32768)
        return 0;
    const unsigned f0 = data[0], f1 = data[1];
    const char *in = (const char *)data + 2;
    size_t n = size - 2;

    md_smtp_request req = { 0 };
    req.server = "mx.example.com";
    req.helo = "client.example.org";
    req.mail_from = "noreply@example.com";
    req.rcpt_to = "maria@example.net";
    req.data = "Subject: x\r\n\r\nx\r\n";
    req.len = strlen(req.data);
    req.quit_after = quit[f0 & 7];
    if (req.quit_after != MD_SMTP_PHASE_NONE)
        req.data = NULL, req.len = 0;
    req.auth_user = f0 & 8 ? "maria" : NULL;
    req.auth_password = f0 & 8 ? "secret" : NULL;
    req.tls = (md_smtp_tls)((f0 >> 4) & 3);
    req.dsn = !!(f1 & 0x20);

    md_smtp_result res = { 0 };
    smtp_att *a = md_xcalloc(1, sizeof *a);
    a->req = &req;
    a->res = &res;
    a->tls = req.tls == MD_SMTP_TLS_DEFAULT ? MD_SMTP_TLS_OPPORTUNISTIC : req.tls;
    a->host = "mx.example.com";
    snprintf(a->ip, sizeof a->ip, "192.0.2.25");
    a->port = 25;
    a->t0 = md_now_ms();
    a->deadline = a->t0 + 60000;
    a->child_fd = -1;
    a->timed_out = !!(f0 & 0x40);
    a->engine_failed = !!(f0 & 0x80);
    if (a->engine_failed)
        snprintf(a->engine_error, sizeof a->engine_error, "the engine died");
    a->connect_failed = !!(f1 & 0x40);
    if (a->connect_failed)
        snprintf(a->connect_error, sizeof a->connect_error, "connection refused");
    a->connected = !a->connect_failed;
    a->dsn_missing = !!(f1 & 0x80);
    if (f1 & 0x10) {
        res.tls.used = 1;
        res.tls.verify_code = verify[f1 & 3];
        res.tls.verified = res.tls.verify_code == X509_V_OK;
        snprintf(res.tls.version, sizeof res.tls.version, "TLSv1.3");
        snprintf(res.tls.cipher, sizeof res.tls.cipher, "TLS_AES_256_GCM_SHA384");
        snprintf(res.tls.peer_name, sizeof res.tls.peer_name, "mx.example.com");
        if (!res.tls.verified)
            snprintf(res.tls.verify_error, sizeof res.tls.verify_error, "certificate verify failed");
        a->tls_cert_refused = !res.tls.verified && a->tls == MD_SMTP_TLS_REQUIRED;
    }
    size_t chunk = f1 & 15;

    int64_t ms = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(in + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - in) + 1 : n;   /* the line with its LF */
        if (in[i] == '>' || in[i] == '!') {
            size_t len = end - i - 1 - (nl != NULL);
            if (in[i] == '!') {
                status(a, in + i + 1, len);
            } else {
                char *cmd = md_xmalloc(len + 2);
                memcpy(cmd, in + i + 1, len);
                memcpy(cmd + len, "\r\n", 2);
                smtp_feed(a, 1, cmd, len + 2, ms);
                free(cmd);
            }
        } else {
            /* server bytes: to the next line that is ours */
            size_t stop = end;
            while (stop < n && in[stop] != '>' && in[stop] != '!') {
                const char *nn = memchr(in + stop, '\n', n - stop);
                stop = nn ? (size_t)(nn - in) + 1 : n;
            }
            end = stop;
            for (size_t k = i; k < end; k += chunk ? chunk : end - k)
                smtp_feed(a, 0, in + k, chunk && chunk < end - k ? chunk : end - k, ms);
            /* and every line on its own through the one reply parser */
            for (size_t k = i; k < end;) {
                const char *e = memchr(in + k, '\n', end - k);
                size_t l = e ? (size_t)(e - in) - k : end - k;
                if (l >= 4) {
                    md_smtp_reply r;
                    int code = (in[k] - '0') * 100 + (in[k + 1] - '0') * 10 + (in[k + 2] - '0');
                    if (code >= 200 && code <= 599) {
                        smtp_reply_set(&r, code, in + k + 4, l - 4);
                        reply_valid(&r);
                    }
                }
                k += l + 1;
            }
        }
        ms += 7;
        i = end;
    }
    if (a->partlen[0] > 0 && a->stop != STOP_PROTOCOL) {   /* as smtp.c does */
        char shown[REPLY_LINE_MAX + 32];
        int k = snprintf(shown, sizeof shown, "%.*s (incomplete line)", (int)a->partlen[0], a->part[0]);
        smtp_transcript_add(&res, ms, '<', shown, (size_t)k);
    }

    md_report *rep = md_report_new("fuzz", NULL);
    md_smtp_outcome o = smtp_judge(a, rep);
    check(o == MD_SMTP_ACCEPTED || o == MD_SMTP_DEFERRED || o == MD_SMTP_REJECTED || o == MD_SMTP_FAILED);
    check((unsigned)res.phase < NPHASES);
    check(md_report_count(rep) > 0);
    int cls = res.reply.code / 100;
    if (o == MD_SMTP_ACCEPTED) {   /* the message, or the probe's last phase */
        check(res.reply.code == 0 || cls == 2);
        check(res.phase == (req.quit_after ? req.quit_after : MD_SMTP_PHASE_DATA));
    }
    if (o == MD_SMTP_DEFERRED)
        check(cls == 4 && res.reply.code > 0);
    if (o == MD_SMTP_REJECTED)
        check(cls == 5 && res.reply.code > 0);
    for (size_t i = 0; i < md_report_count(rep); i++) {
        const md_finding *fd = md_report_get(rep, i);
        check(md_catalogue_find(fd->id) != NULL);
        clean(fd->summary);
        for (size_t k = 0; k < fd->nevidence; k++)
            clean(fd->evidence[k]);
    }
    reply_valid(&res.reply);
    for (int p = 0; p < NPHASES; p++)
        reply_valid(&a->rep[p]);
    clean(md_smtp_outcome_name(o));
    clean(md_smtp_phase_name(res.phase));
    for (const char *c = res.queue_id; *c; c++)
        check(*c > 0x20 && *c < 0x7f);
    for (size_t i = 0; i < res.ntranscript; i++) {
        check(res.transcript[i].dir == '<' || res.transcript[i].dir == '>' || res.transcript[i].dir == '*');
        clean(res.transcript[i].text);
    }
    check(smtp_pending_phase(a) < NPHASES);

    md_report_free(rep);
    md_smtp_result_clear(&res);
    free(a);
    return 0;
}
