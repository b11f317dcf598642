/*
 * lib/smtp judgement: what the dialogue means.
 *
 * The outcome of MAIL, RCPT and the message comes from libESMTP's own
 * statuses when libESMTP sent it (esmtp.c stores them in a->rep), from the
 * replies our dialogue read when the probe ran; the greeting, EHLO,
 * STARTTLS and AUTH from the observer.  The transcript is evidence for the
 * reader, never the authority: with CHUNKING, libESMTP shows neither RCPT
 * nor BDAT in it.  Words for a reply come from the phase it answered and
 * its text as well as its code: 454 4.7.0 to STARTTLS is a broken TLS setup
 * on the server, to RCPT a temporary policy refusal.
 */
#include "config.h"

#include "smtp-int.h"

#include <ctype.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

static const char *const phase_names[NPHASES] = {
    "none", "resolve", "connect", "banner", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit"
};

const char *md_smtp_phase_name(md_smtp_phase p)
{
    return (unsigned)p < NPHASES ? phase_names[p] : "none";
}

int md_smtp_phase_parse(const char *name)
{
    for (int i = MD_SMTP_PHASE_CONNECT; i <= MD_SMTP_PHASE_RCPT; i++)
        if (strcasecmp(name, phase_names[i]) == 0)
            return i;
    return -1;
}

const char *md_smtp_outcome_name(md_smtp_outcome o)
{
    switch (o) {
    case MD_SMTP_ACCEPTED: return "accepted";
    case MD_SMTP_DEFERRED: return "deferred";
    case MD_SMTP_REJECTED: return "rejected";
    case MD_SMTP_FAILED: return "failed";
    }
    return "failed";
}

/* ------------------------------------------------------------------------ */
/* Replies                                                                   */

/* Length of a valid enhanced status code at the start of text whose class
 * is cls, followed by a space or the end; 0 when there is none.  RFC 3463:
 * class "2"/"4"/"5", subject and detail of 1 to 3 digits. */
static size_t enhanced_len(const char *t, size_t len, int cls)
{
    /* RFC 2034 3: only 2xx, 4xx and 5xx replies carry one (a 334 or 354
     * whose text starts "3.0.0" says nothing of the kind) */
    if (cls != 2 && cls != 4 && cls != 5)
        return 0;
    if (len < 5 || t[0] != (char)('0' + cls) || t[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < len && isdigit((unsigned char)t[i]) && d < 4) i++, d++;
    if (d == 0 || d > 3 || i >= len || t[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < len && isdigit((unsigned char)t[i]) && d < 4) i++, d++;
    if (d == 0 || d > 3 || (i < len && t[i] != ' '))
        return 0;
    return i;
}

void smtp_reply_set(md_smtp_reply *r, int code, const char *text, size_t len)
{
    r->code = code;
    r->enhanced[0] = '\0';
    /* Like Postfix's client: a code whose class differs from the reply's
     * first digit is not taken (it would contradict the reply). */
    size_t n = enhanced_len(text, len, code / 100);
    if (n > 0 && n < sizeof r->enhanced) {
        memcpy(r->enhanced, text, n);
        r->enhanced[n] = '\0';
        text += n;
        len -= n;
        while (len > 0 && *text == ' ')
            text++, len--;
    }
    md_sanitize(r->text, sizeof r->text, text, len);
}

/* RFC 3463 and the IANA registry, the codes support engineers meet. */
static const struct { const char *code, *words; } enhanced[] = {
    { "2.0.0", "ok" }, { "2.1.0", "sender ok" }, { "2.1.5", "recipient ok" }, { "2.6.0", "message accepted" },
    { "2.7.0", "authentication succeeded" },
    { "4.1.1", "mailbox unknown (temporarily)" }, { "4.2.0", "mailbox temporarily unavailable" },
    { "4.2.1", "mailbox disabled, not accepting messages for now" },
    { "4.2.2", "mailbox full (over quota), try later" }, { "4.3.0", "mail system problem on the server" },
    { "4.3.1", "the server's mail system is full" }, { "4.3.2", "the server is not accepting mail now" },
    { "4.4.1", "no answer from the next host" }, { "4.4.2", "connection dropped" },
    { "4.4.3", "directory server failure (DNS) on the server's side" },
    { "4.4.5", "the server is congested" }, { "4.5.3", "too many recipients" },
    { "4.7.0", "temporary refusal for a security or policy reason" },
    { "4.7.1", "temporary policy refusal: try again later" },
    { "4.7.8", "authentication failed temporarily" },
    { "4.7.26", "the message must be authenticated (SPF/DKIM) for this receiver" },
    { "5.0.0", "permanent failure" }, { "5.1.0", "bad address" },
    { "5.1.1", "no such mailbox (the address does not exist)" },
    { "5.1.2", "the recipient's domain does not exist or accepts no mail" },
    { "5.1.3", "the address is malformed" }, { "5.1.6", "the mailbox has moved" },
    { "5.1.7", "the sender address is invalid" }, { "5.1.8", "the sender's domain is invalid" },
    { "5.1.10", "the recipient's domain publishes a null MX" },
    { "5.2.0", "mailbox unavailable" }, { "5.2.1", "mailbox disabled, not accepting messages" },
    { "5.2.2", "mailbox full (over quota)" }, { "5.2.3", "the message is too big for the mailbox" },
    { "5.3.0", "mail system problem" }, { "5.3.4", "the message is too big for the server" },
    { "5.4.1", "the server accepts no mail for this recipient" }, { "5.4.4", "unable to route" },
    { "5.4.6", "routing loop" }, { "5.5.0", "protocol error" },
    { "5.5.1", "invalid command" }, { "5.5.2", "syntax error" }, { "5.5.4", "invalid command arguments" },
    { "5.6.0", "the content was refused" }, { "5.7.0", "refused for a security or policy reason" },
    { "5.7.1", "refused by policy (spam filter, blocklist, or relaying denied)" },
    { "5.7.8", "authentication failed (bad user name or password)" },
    { "5.7.9", "the authentication mechanism is too weak" },
    { "5.7.11", "the server requires TLS for this" },
    { "5.7.23", "SPF validation failed" }, { "5.7.25", "the sending IP has no reverse DNS (PTR)" },
    { "5.7.26", "the message failed authentication (SPF/DKIM/DMARC)" },
    { "5.7.27", "the sender's domain accepts no mail (null MX)" },
};

const char *md_smtp_enhanced_explain(const char *code)
{
    if (code == NULL)
        return "";
    for (size_t i = 0; i < sizeof enhanced / sizeof enhanced[0]; i++)
        if (strcmp(enhanced[i].code, code) == 0)
            return enhanced[i].words;
    if (code[0] == '4' && code[1] == '.')
        return "temporary failure";
    if (code[0] == '5' && code[1] == '.')
        return "permanent failure";
    return "";
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

int md_smtp_is_greylisting(int code, const char *enh, const char *text)
{
    if (code < 400 || code >= 500)
        return 0;
    if (text && (contains_ci(text, "greylist") || contains_ci(text, "graylist") ||
                 contains_ci(text, "try again later") || contains_ci(text, "please retry") ||
                 contains_ci(text, "postgrey") || contains_ci(text, "deferred for")))
        return 1;
    return code == 450 && enh && strcmp(enh, "4.7.1") == 0;
}

/* Greylisting only happens to an envelope or a message. */
static int greylisting_at(md_smtp_phase p, const md_smtp_reply *r)
{
    return (p == MD_SMTP_PHASE_MAIL || p == MD_SMTP_PHASE_RCPT || p == MD_SMTP_PHASE_DATA) &&
           md_smtp_is_greylisting(r->code, r->enhanced, r->text);
}

/* Words for a reply by phase, code, enhanced code and text; the first rule
 * that matches wins.  phase NONE, code 0, NULL: any. */
static const struct rule {
    md_smtp_phase phase;
    int code;                     /* exact, or 4 / 5 for the class */
    const char *enh, *text;
    const char *words;
} rules[] = {
    { MD_SMTP_PHASE_BANNER, 554, NULL, NULL, "the server refuses this client at the greeting (a blocklist, no reverse DNS, or policy)" },
    { MD_SMTP_PHASE_NONE, 421, NULL, NULL, "the server is closing the session (busy, rate limit, or shutting down)" },
    { MD_SMTP_PHASE_EHLO, 5, NULL, NULL, "the server refused our EHLO name" },
    { MD_SMTP_PHASE_STARTTLS, 454, NULL, NULL, "the server offered STARTTLS but cannot do TLS now: its TLS setup is broken (certificate, key or TLS service)" },
    { MD_SMTP_PHASE_STARTTLS, 4, NULL, NULL, "the server cannot start TLS now: a fault on its side" },
    { MD_SMTP_PHASE_STARTTLS, 5, NULL, NULL, "the server refused STARTTLS although it offered it" },
    { MD_SMTP_PHASE_AUTH, 535, NULL, NULL, "authentication failed: the user name or password is not accepted" },
    { MD_SMTP_PHASE_AUTH, 534, NULL, NULL, "the server finds the mechanism too weak (it may want TLS first)" },
    { MD_SMTP_PHASE_AUTH, 538, NULL, NULL, "the server requires TLS before AUTH" },
    { MD_SMTP_PHASE_AUTH, 504, NULL, NULL, "the server does not support this AUTH mechanism" },
    { MD_SMTP_PHASE_AUTH, 454, NULL, NULL, "temporary authentication failure on the server (its password service is unavailable)" },
    { MD_SMTP_PHASE_AUTH, 4, NULL, NULL, "temporary authentication failure" },
    { MD_SMTP_PHASE_AUTH, 2, NULL, NULL, "not an AUTH success: only 235 means authenticated (RFC 4954)" },
    { MD_SMTP_PHASE_MAIL, 0, "5.3.4", NULL, "the message is bigger than the server accepts (its SIZE limit)" },
    { MD_SMTP_PHASE_MAIL, 552, NULL, NULL, "the message is bigger than the server accepts (its SIZE limit)" },
    { MD_SMTP_PHASE_DATA, 0, "5.3.4", NULL, "the message is bigger than the server accepts (its SIZE limit)" },
    { MD_SMTP_PHASE_DATA, 552, NULL, "size", "the message is bigger than the server accepts (its SIZE limit)" },
    { MD_SMTP_PHASE_MAIL, 530, NULL, NULL, "the server wants AUTH before MAIL FROM (a submission server)" },
    { MD_SMTP_PHASE_MAIL, 0, "5.7.0", "authentication", "the server wants AUTH before MAIL FROM (a submission server)" },
    { MD_SMTP_PHASE_RCPT, 0, NULL, "relay access denied", "relaying denied: this server takes mail for other domains only from authenticated or local senders" },
    { MD_SMTP_PHASE_RCPT, 0, NULL, "relaying denied", "relaying denied: this server takes mail for other domains only from authenticated or local senders" },
    { MD_SMTP_PHASE_RCPT, 0, NULL, "relay not permitted", "relaying denied: this server takes mail for other domains only from authenticated or local senders" },
    { MD_SMTP_PHASE_RCPT, 550, NULL, "user unknown", "no such mailbox (the address does not exist)" },
};

static int rule_matches(const struct rule *ru, md_smtp_phase phase, const md_smtp_reply *r)
{
    if (ru->phase != MD_SMTP_PHASE_NONE && ru->phase != phase)
        return 0;
    if (ru->code >= 100 && ru->code != r->code)
        return 0;
    if (ru->code > 0 && ru->code < 10 && r->code / 100 != ru->code)
        return 0;
    if (ru->enh && strcmp(ru->enh, r->enhanced) != 0)
        return 0;
    if (ru->text && !contains_ci(r->text, ru->text))
        return 0;
    return 1;
}

const char *md_smtp_explain(md_smtp_phase phase, const md_smtp_reply *r)
{
    if (r == NULL || r->code == 0)
        return "";
    if (greylisting_at(phase, r))
        return "greylisting: the server asks to retry later; a real MTA retries and gets through";
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rule_matches(&rules[i], phase, r))
            return rules[i].words;
    const char *w = md_smtp_enhanced_explain(r->enhanced);
    if (*w)
        return w;
    return r->code >= 500 ? "permanent failure" : r->code >= 400 ? "temporary failure" : "";
}

int md_smtp_queue_id(const char *text, char *out, size_t size)
{
    static const char *const marks[] = { "queued as ", "queued as: ", "id=", "Queued! ", "Ok: ", NULL };
    if (text == NULL)
        return 0;
    for (int i = 0; marks[i]; i++) {
        const char *p = NULL;
        for (const char *h = text; *h && p == NULL; h++)
            if (strncasecmp(h, marks[i], strlen(marks[i])) == 0)
                p = h + strlen(marks[i]);
        if (p == NULL)
            continue;
        size_t n = 0;
        while (p[n] && (isalnum((unsigned char)p[n]) || strchr("-._@<>=+/", p[n])) && n + 1 < size)
            n++;
        while (n > 0 && strchr(".>", p[n - 1]))
            n--;
        if (*p == '<') { p++; n = n ? n - 1 : 0; }
        if (n >= 4) {
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The verdict                                                               */

static md_smtp_outcome by_code(int code)
{
    return code >= 500 ? MD_SMTP_REJECTED : code >= 400 ? MD_SMTP_DEFERRED : MD_SMTP_ACCEPTED;
}

/* A finding for a refusal: "what: 550 5.1.1 - words", the reply as evidence. */
static void reply_finding(md_report *rep, const char *id_rej, const char *id_def, const char *what,
                          md_smtp_phase phase, const md_smtp_reply *r)
{
    const char *words = md_smtp_explain(phase, r);
    md_finding *f = md_report_add(rep, r->code >= 500 ? id_rej : id_def, MD_SEV_DEFAULT,
                                  "%s: %d%s%s%s%s", what, r->code, r->enhanced[0] ? " " : "", r->enhanced,
                                  *words ? " - " : "", words);
    md_finding_add_evidence(f, "%d %s%s%s", r->code, r->enhanced, r->enhanced[0] ? " " : "", r->text);
}

/* A refusal of the envelope or the message: its finding, and greylisting or
 * the size limit as findings of their own. */
static md_smtp_outcome refused(smtp_att *a, md_report *rep, md_smtp_phase p, const char *id_rej,
                               const char *id_def, const char *what)
{
    md_smtp_reply *r = &a->rep[p];
    if (r->code < 400 || r->code > 599) {
        /* Neither a success nor a refusal.  libESMTP reads a reply's code
         * with strtol (any number), and with CHUNKING its status is all we
         * see of RCPT and the message: "55 ..." or "150 ..." there decides
         * nothing, and is not an acceptance. */
        md_finding *f = md_report_add(rep, "smtp.protocol", MD_SEV_DEFAULT,
                                      "%s at %s: the reply code %d is not an SMTP reply to it", a->host,
                                      md_smtp_phase_name(p), r->code);
        md_finding_add_evidence(f, "%d %s", r->code, r->text);
        return MD_SMTP_FAILED;
    }
    if (strcmp(r->enhanced, "5.3.4") == 0 || (r->code == 552 && p == MD_SMTP_PHASE_MAIL)) {
        md_finding *f = md_report_add(rep, "smtp.size_exceeded", MD_SEV_DEFAULT,
                                      "%s refused the message as too big (%zu bytes): %d %s - %s", a->host,
                                      a->req->len, r->code, r->enhanced, md_smtp_explain(p, r));
        md_finding_add_evidence(f, "%d %s %s", r->code, r->enhanced, r->text);
    } else {
        reply_finding(rep, id_rej, id_def, what, p, r);
    }
    if (greylisting_at(p, r)) {
        a->res->greylisted = 1;
        md_report_add(rep, "smtp.greylisted", MD_SEV_DEFAULT,
                      "greylisting: the server asks to retry later; a real MTA retries and gets through");
    }
    return by_code(r->code);
}

static void tls_findings(smtp_att *a, md_report *rep)
{
    md_smtp_result *res = a->res;
    const char *id = smtp_tls_verify_finding(res->tls.verify_code);
    if (id == NULL && res->tls.verified) {
        md_report_add(rep, "tls.ok", MD_SEV_DEFAULT, "%s, %s, certificate for %s verified", res->tls.version,
                      res->tls.cipher, res->tls.peer_name);
        int64_t left = res->tls.not_after - (int64_t)time(NULL);
        if (res->tls.not_after && left < 14 * 86400)
            md_report_add(rep, "tls.cert_expiring", MD_SEV_DEFAULT, "the certificate expires in %lld days",
                          (long long)(left / 86400));
        return;
    }
    if (id == NULL)
        id = "tls.cert_invalid";
    md_finding *f = md_report_add(rep, id, a->tls_cert_refused ? MD_SEV_DEFAULT : MD_SEV_WARNING,
                                  "%s: %s (checked name %s)%s", a->host, res->tls.verify_error,
                                  res->tls.peer_name, a->tls_cert_refused ? "" :
                                  a->req->insecure ? "; continued: certificate checks are off"
                                                   : "; continued: opportunistic TLS");
    md_finding_add_evidence(f, "subject %s", res->tls.subject);
    md_finding_add_evidence(f, "issuer %s", res->tls.issuer);
    if (!a->tls_cert_refused)
        md_report_add(rep, "tls.cert_unverified", MD_SEV_DEFAULT, "the message went over TLS with an unverified certificate");
}

static void offered_mechs(const smtp_att *a, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = a->ehlo_caps;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > 5 && strncmp(p, "AUTH", 4) == 0 && (p[4] == ' ' || p[4] == '='))
            snprintf(out, size, "%.*s", (int)(n - 5 > 120 ? 120 : n - 5), p + 5);
        p = nl ? nl + 1 : NULL;
    }
}

/* The AUTH verdict.  Returns -1 to go on, else the outcome. */
static int judge_auth(smtp_att *a, md_report *rep)
{
    const md_smtp_request *req = a->req;
    md_smtp_reply *r = &a->rep[MD_SMTP_PHASE_AUTH];
    char mechs[128];
    offered_mechs(a, mechs, sizeof mechs);
    if (a->auth_ok) {
        a->res->auth_used = 1;
        md_report_add(rep, "smtp.auth.ok", MD_SEV_DEFAULT, "authenticated as %s (%s)", req->auth_user, a->auth_mech);
        return -1;
    }
    if (a->stop == STOP_AUTH_NOT_OFFERED || (!a->auth_sent && a->got[MD_SMTP_PHASE_EHLO] &&
                                             !smtp_has_cap(a, "AUTH") && a->stop != STOP_NONE)) {
        md_report_add(rep, "smtp.auth.not_offered", MD_SEV_DEFAULT, "%s offers no AUTH%s: nothing was sent", a->host,
                      a->res->tls.used ? "" : " (many servers offer it only after STARTTLS)");
        return MD_SMTP_FAILED;
    }
    if (a->stop == STOP_AUTH_UNAVAILABLE) {
        md_finding *f = md_report_add(rep, "smtp.auth.unavailable", MD_SEV_DEFAULT,
                                      "%s offers AUTH %s, none of which maildiag uses (PLAIN, LOGIN): nothing was sent",
                                      a->host, mechs);
        md_finding_add_evidence(f, "AUTH %s", mechs);
        return MD_SMTP_FAILED;
    }
    if (a->auth_failed || a->auth_sent) {
        md_finding *f;
        if (a->auth_failed && r->code >= 200 && r->code < 300) {
            f = md_report_add(rep, "smtp.auth.failed", MD_SEV_DEFAULT,
                              "%s answered %d to AUTH %s for %s: only 235 means authenticated (RFC 4954); nothing was sent",
                              a->host, r->code, a->auth_mech, req->auth_user);
        } else if (a->auth_failed) {
            f = md_report_add(rep, "smtp.auth.failed", r->code < 500 ? MD_SEV_WARNING : MD_SEV_DEFAULT,
                              "%s refused AUTH %s for %s: %d%s%s - %s", a->host, a->auth_mech, req->auth_user,
                              r->code, r->enhanced[0] ? " " : "", r->enhanced, md_smtp_explain(MD_SMTP_PHASE_AUTH, r));
        } else {
            f = md_report_add(rep, "smtp.auth.failed", MD_SEV_DEFAULT,
                              "AUTH %s for %s did not finish: %s", a->auth_mech, req->auth_user,
                              a->timed_out ? "no reply before the deadline" : "the server closed the connection");
        }
        if (r->code)
            md_finding_add_evidence(f, "%d %s %s", r->code, r->enhanced, r->text);
        if (a->auth_failed)
            a->res->reply = *r;   /* not a 334 challenge: it decided nothing */
        return a->auth_failed && r->code >= 400 && r->code < 500 ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
    }
    return -2;   /* AUTH not reached */
}

md_smtp_outcome smtp_judge(smtp_att *a, md_report *rep)
{
    md_smtp_result *res = a->res;
    const md_smtp_request *req = a->req;
    md_smtp_phase q = req->quit_after;
    md_smtp_reply *R = a->rep;
    res->reply.code = 0;

#define END(o, ph, r) do { res->phase = (ph); if (r) res->reply = *(r); return (o); } while (0)

    if (a->connect_failed) {
        md_report_add(rep, a->connect_timeout ? "smtp.connect.timeout" : "smtp.connect.failed",
                      MD_SEV_DEFAULT, "%s (%s:%u): %s", a->host, a->ip, a->port, a->connect_error);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_CONNECT, (md_smtp_reply *)NULL);
    }
    if (q == MD_SMTP_PHASE_CONNECT) {
        md_report_add(rep, "smtp.probe_ok", MD_SEV_DEFAULT, "connected to %s (%s:%u)", a->host, a->ip, a->port);
        END(MD_SMTP_ACCEPTED, MD_SMTP_PHASE_CONNECT, (md_smtp_reply *)NULL);
    }
    md_smtp_phase cur = a->sent ? a->sent : MD_SMTP_PHASE_BANNER;
    if (a->data_started && !a->got[MD_SMTP_PHASE_DATA])
        cur = MD_SMTP_PHASE_DATA;
    if (a->stop == STOP_PROTOCOL) {
        md_finding *f = md_report_add(rep, "smtp.protocol", MD_SEV_DEFAULT, "%s at %s: %s", a->host,
                                      md_smtp_phase_name(a->protocol_phase), a->stop_what);
        if (a->got[MD_SMTP_PHASE_DATA] == 2 && R[MD_SMTP_PHASE_DATA].code / 100 == 2)
            md_finding_add_evidence(f, "the server had answered the message with %d %s", R[MD_SMTP_PHASE_DATA].code,
                                    R[MD_SMTP_PHASE_DATA].text);
        END(MD_SMTP_FAILED, a->protocol_phase, (md_smtp_reply *)NULL);
    }
    if (a->got[MD_SMTP_PHASE_BANNER] && R[MD_SMTP_PHASE_BANNER].code != 220) {
        reply_finding(rep, "smtp.banner.rejected", "smtp.banner.rejected", "the server refused the session",
                      MD_SMTP_PHASE_BANNER, &R[MD_SMTP_PHASE_BANNER]);
        END(by_code(R[MD_SMTP_PHASE_BANNER].code), MD_SMTP_PHASE_BANNER, &R[MD_SMTP_PHASE_BANNER]);
    }
    if (!a->got[MD_SMTP_PHASE_BANNER])
        goto cut;
    if (q == MD_SMTP_PHASE_BANNER)
        goto probe_ok;
    if (!a->got[MD_SMTP_PHASE_EHLO])
        goto cut;
    if (R[MD_SMTP_PHASE_EHLO].code != 250) {
        reply_finding(rep, "smtp.ehlo.rejected", "smtp.ehlo.rejected", "EHLO refused", MD_SMTP_PHASE_EHLO,
                      &R[MD_SMTP_PHASE_EHLO]);
        END(by_code(R[MD_SMTP_PHASE_EHLO].code), MD_SMTP_PHASE_EHLO, &R[MD_SMTP_PHASE_EHLO]);
    }

    /* TLS */
    res->tls.offered = res->tls.used || a->got[MD_SMTP_PHASE_STARTTLS] || smtp_has_cap(a, "STARTTLS");
    if (a->tls != MD_SMTP_TLS_OFF && !res->tls.offered) {
        if (a->tls == MD_SMTP_TLS_REQUIRED) {
            const char *adv = a->req->tls_advice;
            md_report_add(rep, "tls.not_offered", MD_SEV_DEFAULT, "%s does not offer STARTTLS and TLS is required%s%s%s",
                          a->host, adv ? " (" : "", adv ? adv : "", adv ? ")" : "");
            END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, (md_smtp_reply *)NULL);
        }
        md_report_add(rep, "tls.not_offered_opportunistic", MD_SEV_DEFAULT, "%s does not offer STARTTLS", a->host);
    }
    if (a->got[MD_SMTP_PHASE_STARTTLS] && R[MD_SMTP_PHASE_STARTTLS].code != 220) {
        md_smtp_reply *r = &R[MD_SMTP_PHASE_STARTTLS];
        md_finding *f = md_report_add(rep, "tls.starttls_refused", MD_SEV_DEFAULT,
                                      "%s offered STARTTLS, then refused it: %d%s%s - %s", a->host, r->code,
                                      r->enhanced[0] ? " " : "", r->enhanced, md_smtp_explain(MD_SMTP_PHASE_STARTTLS, r));
        md_finding_add_evidence(f, "%d %s %s", r->code, r->enhanced, r->text);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, r);
    }
    if (a->tls_handshake_failed || (a->got[MD_SMTP_PHASE_STARTTLS] && !res->tls.used && !a->tls_cert_refused)) {
        md_report_add(rep, "tls.handshake_failed", MD_SEV_DEFAULT, "the TLS handshake with %s failed%s%s", a->host,
                      a->engine_error[0] ? ": " : "", a->engine_error);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, (md_smtp_reply *)NULL);
    }
    if (res->tls.used) {
        tls_findings(a, rep);
        if (a->tls_cert_refused)
            END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, (md_smtp_reply *)NULL);
    } else if (a->tls_cert_refused) {
        md_report_add(rep, "tls.cert_invalid", MD_SEV_DEFAULT, "%s: %s", a->host, res->tls.verify_error);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, (md_smtp_reply *)NULL);
    }
    if (q == MD_SMTP_PHASE_EHLO || q == MD_SMTP_PHASE_STARTTLS)
        goto probe_ok;

    if (req->auth_user) {
        int o = judge_auth(a, rep);
        if (o >= 0) {
            res->phase = MD_SMTP_PHASE_AUTH;
            return (md_smtp_outcome)o;
        }
        if (o == -2 && !a->got[MD_SMTP_PHASE_MAIL])
            goto cut;
    }
    if (q == MD_SMTP_PHASE_AUTH)
        goto probe_ok;

    if (!a->got[MD_SMTP_PHASE_MAIL])
        goto cut;
    if (R[MD_SMTP_PHASE_MAIL].code / 100 != 2)
        END(refused(a, rep, MD_SMTP_PHASE_MAIL, "smtp.mail.rejected", "smtp.mail.deferred", "sender refused"),
            MD_SMTP_PHASE_MAIL, &R[MD_SMTP_PHASE_MAIL]);
    if (q == MD_SMTP_PHASE_MAIL)
        goto probe_ok;
    if (req->dsn && q == MD_SMTP_PHASE_NONE) {
        if (a->dsn_missing || !smtp_has_cap(a, "DSN"))
            md_report_add(rep, "smtp.dsn_unsupported", MD_SEV_DEFAULT, "%s does not offer DSN: sent without it", a->host);
        else
            res->dsn_used = 1;
    }
    if (!a->got[MD_SMTP_PHASE_RCPT])
        goto cut;
    if (R[MD_SMTP_PHASE_RCPT].code / 100 != 2)
        END(refused(a, rep, MD_SMTP_PHASE_RCPT, "smtp.rcpt.rejected", "smtp.rcpt.deferred", req->rcpt_to),
            MD_SMTP_PHASE_RCPT, &R[MD_SMTP_PHASE_RCPT]);
    if (q == MD_SMTP_PHASE_RCPT)
        goto probe_ok;
    if (!a->got[MD_SMTP_PHASE_DATA])
        goto cut;
    md_smtp_reply *d = &R[MD_SMTP_PHASE_DATA];
    if (a->got[MD_SMTP_PHASE_DATA] == 2 && d->code / 100 == 2) {
        md_smtp_queue_id(d->text, res->queue_id, sizeof res->queue_id);
        md_finding *f = md_report_add(rep, "smtp.accepted", MD_SEV_DEFAULT, "accepted by %s%s%s", a->host,
                                      res->queue_id[0] ? " as " : "", res->queue_id);
        md_finding_add_evidence(f, "%d %s%s%s", d->code, d->enhanced, d->enhanced[0] ? " " : "", d->text);
        if (a->engine_failed)
            md_report_add(rep, "smtp.engine_failed", MD_SEV_WARNING,
                          "the SMTP engine failed after the server accepted the message: %s", a->engine_error);
        END(MD_SMTP_ACCEPTED, MD_SMTP_PHASE_DATA, d);
    }
    if (d->code >= 400 && d->code != 354)
        END(refused(a, rep, MD_SMTP_PHASE_DATA, "smtp.data.rejected", "smtp.data.deferred", "message refused"),
            MD_SMTP_PHASE_DATA, d);
    goto cut;

probe_ok:
    md_report_add(rep, "smtp.probe_ok", MD_SEV_DEFAULT, "%s answered up to %s; quit there as asked", a->host,
                  md_smtp_phase_name(q));
    {
        md_smtp_phase p = q;
        while (p > MD_SMTP_PHASE_BANNER && !a->got[p])
            p--;
        END(MD_SMTP_ACCEPTED, q, &R[p]);
    }
cut:
    /* The dialogue ended without a verdict. */
    if (a->sent && R[a->sent].code == 421) {
        reply_finding(rep, "smtp.banner.rejected", "smtp.banner.rejected", "the server closed the session",
                      a->sent, &R[a->sent]);
        END(MD_SMTP_DEFERRED, cur, &R[a->sent]);
    }
    if (a->engine_failed) {
        md_report_add(rep, "smtp.engine_failed", MD_SEV_DEFAULT, "the SMTP engine failed at %s: %s; "
                      "whether the server got the message is unknown", md_smtp_phase_name(cur), a->engine_error);
    } else if (a->timed_out) {
        md_report_add(rep, "smtp.timeout", MD_SEV_DEFAULT, "%s stopped answering at %s: the deadline passed",
                      a->host, md_smtp_phase_name(cur));
    } else {
        md_report_add(rep, "smtp.dropped", MD_SEV_DEFAULT, "%s closed the connection at %s", a->host,
                      md_smtp_phase_name(cur));
    }
    END(MD_SMTP_FAILED, cur, (md_smtp_reply *)NULL);
#undef END
}
