/*
 * lib/smtp observer: what both engines show of the dialogue, taken in one
 * line at a time.
 *
 * Every line we write passes through on_command() before it goes out, every
 * line the server sends through on_reply_line().  The observer keeps the
 * transcript (AUTH secrets redacted), the replies awaited in order (PIPELINING
 * sends MAIL, RCPT and DATA at once), the last reply per phase, the EHLO
 * keywords and the AUTH state.  Replies are matched to commands by count and
 * by code class: a reply when none is awaited (other than 421, which RFC 5321
 * allows at any time), a 354 to anything but DATA, or a 334 to anything but
 * AUTH means the dialogue is out of step, and the session is ended as a
 * protocol error rather than judged from replies that answer other commands.
 */
#include "config.h"

#include "smtp-int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int64_t smtp_rel_ms(const smtp_att *a)
{
    return md_now_ms() - a->t0;
}

void smtp_transcript_add(md_smtp_result *res, int64_t ms, char dir, const char *text, size_t len)
{
    if (res->ntranscript >= TRANSCRIPT_MAX)
        return;
    if (res->ntranscript % 64 == 0)
        res->transcript = md_xrealloc(res->transcript, (res->ntranscript + 64) * sizeof *res->transcript);
    char clean[600];
    md_sanitize(clean, sizeof clean, text, len > 512 ? 512 : len);
    if (len > 512)
        snprintf(clean + 512, sizeof clean - 512, "... (%zu bytes)", len);
    md_smtp_line *l = &res->transcript[res->ntranscript++];
    l->ms = ms;
    l->dir = dir;
    l->text = md_xstrdup(clean);
}

static void add_line(smtp_att *a, int64_t ms, char dir, const char *text, size_t len)
{
    if (!a->quiet)
        smtp_transcript_add(a->res, ms, dir, text, len);
}

void smtp_note(smtp_att *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (a->child_fd >= 0)
        smtp_child_note(a, smtp_rel_ms(a), buf, strlen(buf));
    else
        smtp_transcript_add(a->res, smtp_rel_ms(a), '*', buf, strlen(buf));
}

void smtp_stop_set(smtp_att *a, smtp_stop why, const char *fmt, ...)
{
    if (a->stop != STOP_NONE)
        return;
    a->stop = why;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->stop_what, sizeof a->stop_what, fmt, ap);
    va_end(ap);
    if (why == STOP_PROTOCOL)
        a->protocol_phase = smtp_pending_phase(a);
}

md_smtp_phase smtp_pending_phase(const smtp_att *a)
{
    if (a->fhead < a->ftail)
        return a->fifo[a->fhead % FIFO_MAX].phase;
    if (!a->got[MD_SMTP_PHASE_BANNER])
        return MD_SMTP_PHASE_BANNER;
    return a->data_started ? MD_SMTP_PHASE_DATA : a->sent;
}

/* ------------------------------------------------------------------------ */
/* EHLO keywords                                                             */

/* Each line of the last EHLO reply (its first line excepted), upper case. */
static const char *next_cap(const char *p, const char **end)
{
    *end = strchr(p, '\n');
    return *end ? p : NULL;
}

int smtp_has_cap(const smtp_att *a, const char *kw)
{
    size_t n = strlen(kw);
    const char *end;
    for (const char *p = a->ehlo_caps; (p = next_cap(p, &end)) != NULL; p = end + 1)
        if ((size_t)(end - p) >= n && strncmp(p, kw, n) == 0 && (p[n] == '\n' || p[n] == ' ' || p[n] == '='))
            return 1;
    return 0;
}

int smtp_auth_offers(const smtp_att *a, const char *mech)
{
    size_t n = strlen(mech);
    const char *end;
    for (const char *p = a->ehlo_caps; (p = next_cap(p, &end)) != NULL; p = end + 1) {
        /* "AUTH PLAIN LOGIN", or the pre-RFC 2554 form "AUTH=PLAIN LOGIN" */
        if (end - p < 5 || strncmp(p, "AUTH", 4) != 0 || (p[4] != ' ' && p[4] != '='))
            continue;
        for (const char *t = p + 5; t < end; ) {
            while (t < end && *t == ' ')
                t++;
            size_t tl = 0;
            while (t + tl < end && t[tl] != ' ')
                tl++;
            if (tl == n && strncmp(t, mech, n) == 0)
                return 1;
            t += tl;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The gate                                                                  */

smtp_stop smtp_gate(const smtp_att *a, md_smtp_phase next, const char *line, size_t len)
{
    if (a->req->auth_user == NULL)
        return STOP_NONE;
    if (next == MD_SMTP_PHASE_AUTH && len > 5 && strncasecmp(line, "AUTH ", 5) == 0) {
        /* libESMTP tries the next mechanism with the same password after a
         * refusal (which locks accounts sooner); and we use PLAIN or LOGIN
         * only, the mechanisms both engines speak. */
        if (a->auth_failed)
            return STOP_AUTH_FAILED;
        const char *m = line + 5;
        size_t ml = 0;
        while (5 + ml < len && m[ml] != ' ')
            ml++;
        if (!(ml == 5 && (strncasecmp(m, "PLAIN", 5) == 0 || strncasecmp(m, "LOGIN", 5) == 0)))
            return STOP_AUTH_UNAVAILABLE;
    }
    if (next == MD_SMTP_PHASE_MAIL && !a->auth_ok) {
        /* With a user configured, AUTH is required: no MAIL FROM without a
         * 235 (a relay that lets us through unauthenticated is not the
         * route the product's mail takes). */
        if (a->auth_sent)
            return STOP_AUTH_FAILED;
        if (!smtp_has_cap(a, "AUTH"))
            return STOP_AUTH_NOT_OFFERED;
        return STOP_AUTH_UNAVAILABLE;
    }
    return STOP_NONE;
}

static const char *stop_words(const smtp_att *a, smtp_stop s, md_smtp_phase p)
{
    switch (s) {
    case STOP_AUTH_NOT_OFFERED: return "the server offers no AUTH";
    case STOP_AUTH_UNAVAILABLE: return "the server offers no AUTH mechanism we use (PLAIN, LOGIN)";
    case STOP_AUTH_FAILED:
        return p == MD_SMTP_PHASE_AUTH ? "no second try after the server refused AUTH"
             : a->auth_failed ? "the server did not accept AUTH (no 235)" : "AUTH did not finish";
    default: return "";
    }
}

/* ------------------------------------------------------------------------ */
/* Lines we write                                                            */

static void push(smtp_att *a, md_smtp_phase p, const char *verb, int last)
{
    if (a->ftail - a->fhead < FIFO_MAX) {
        smtp_pending *e = &a->fifo[a->ftail++ % FIFO_MAX];
        e->phase = p;
        snprintf(e->verb, sizeof e->verb, "%s", verb);
        e->last = last;
    }
    if (p != MD_SMTP_PHASE_NONE)
        a->sent = p;
}

static void on_command(smtp_att *a, const char *line, size_t len, int64_t ms)
{
    if (a->stop == STOP_PROTOCOL || (a->stop != STOP_NONE && !(len == 4 && strncasecmp(line, "QUIT", 4) == 0)))
        return;   /* nothing more goes out but a polite QUIT */
    if (a->data_started && !a->data_final)
        return;   /* the "." that ends the body (the body itself is not shown) */
    char verb[12];
    size_t v = 0;
    while (v < len && v < sizeof verb - 1 && isalpha((unsigned char)line[v])) {
        verb[v] = (char)toupper((unsigned char)line[v]);
        v++;
    }
    verb[v] = '\0';
    md_smtp_phase p = MD_SMTP_PHASE_NONE;
    int last = 0;
    if (v < len && line[v] != ' ')
        verb[0] = '\0';   /* not a command word */
    if (a->in_auth) {
        p = MD_SMTP_PHASE_AUTH;   /* a SASL response line, whatever it looks like */
        snprintf(verb, sizeof verb, "AUTH");
    }
    else if (!strcmp(verb, "EHLO") || !strcmp(verb, "HELO")) p = MD_SMTP_PHASE_EHLO;
    else if (!strcmp(verb, "STARTTLS")) p = MD_SMTP_PHASE_STARTTLS;
    else if (!strcmp(verb, "AUTH") && len > 5) p = MD_SMTP_PHASE_AUTH;
    else if (!strcmp(verb, "MAIL")) p = MD_SMTP_PHASE_MAIL;
    else if (!strcmp(verb, "RCPT")) p = MD_SMTP_PHASE_RCPT;
    else if (!strcmp(verb, "DATA")) p = MD_SMTP_PHASE_DATA;
    else if (!strcmp(verb, "BDAT")) {
        p = MD_SMTP_PHASE_DATA;
        last = len >= 5 && strncasecmp(line + len - 5, " LAST", 5) == 0;
    }
    else if (!strcmp(verb, "QUIT")) p = MD_SMTP_PHASE_QUIT;

    smtp_stop g = smtp_gate(a, p, line, len);
    if (g != STOP_NONE) {
        smtp_stop_set(a, g, "stopped before %s: %s", p == MD_SMTP_PHASE_MAIL ? "MAIL FROM" : verb,
                      stop_words(a, g, p));
        if (!a->quiet) {
            char n[256];
            int k = snprintf(n, sizeof n, "maildiag ends the session: %s", a->stop_what);
            add_line(a, ms, '*', n, (size_t)k);
        }
        return;
    }

    if (p == MD_SMTP_PHASE_AUTH) {
        /* Keep the verb and the mechanism; the rest is a secret. */
        char shown[64];
        if (!a->in_auth) {
            const char *mech = line + 5;
            size_t ml = 0;
            while (5 + ml < len && mech[ml] != ' ')
                ml++;
            md_sanitize(a->auth_mech, sizeof a->auth_mech, mech, ml > 20 ? 20 : ml);
            snprintf(shown, sizeof shown, "AUTH %s%s", a->auth_mech, 5 + ml < len ? " [redacted]" : "");
            a->in_auth = 1;
            a->auth_sent = 1;
        } else {
            snprintf(shown, sizeof shown, "[redacted]");
        }
        add_line(a, ms, '>', shown, strlen(shown));
    } else {
        add_line(a, ms, '>', line, len);
    }
    if (p == MD_SMTP_PHASE_EHLO)
        a->ehlo_caps[0] = '\0';          /* the keywords of this EHLO replace the last ones */
    if (p == MD_SMTP_PHASE_STARTTLS)
        a->starttls_sent = md_now_ms();   /* for the TLS 1.3 ticket wait (esmtp.c) */
    if (last)
        a->bdat_last_sent = 1;
    push(a, p, verb, last);
}

/* ------------------------------------------------------------------------ */
/* Lines the server sends                                                    */

static void protocol_error(smtp_att *a, md_smtp_phase at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void protocol_error(smtp_att *a, md_smtp_phase at, const char *fmt, ...)
{
    if (a->stop != STOP_NONE)
        return;
    a->stop = STOP_PROTOCOL;
    a->protocol_phase = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->stop_what, sizeof a->stop_what, fmt, ap);
    va_end(ap);
}

/* Whether a reply with this code can answer verb. */
static int class_expected(const char *verb, int final_of_body, int code)
{
    int cls = code / 100;
    if (!strcmp(verb, "QUIT"))
        return code == 221 || cls == 4 || cls == 5;   /* RFC 5321 4.3.2: 221, nothing else succeeds */
    /* RFC 5321 4.3.2: the greeting succeeds with 220 only, EHLO and HELO
     * with 250 only; another 2xx there is neither a yes nor a no (the
     * judge would read it as the end of a dialogue that went well). */
    if (!strcmp(verb, "greeting"))
        return code == 220 || cls == 4 || cls == 5;
    if (!strcmp(verb, "EHLO") || !strcmp(verb, "HELO"))
        return code == 250 || cls == 4 || cls == 5;
    if (final_of_body)
        return cls == 2 || cls == 4 || cls == 5;
    if (!strcmp(verb, "DATA"))
        return cls == 3 || cls == 4 || cls == 5;
    if (!strcmp(verb, "AUTH"))
        return cls >= 2 && cls <= 5;
    return cls == 2 || cls == 4 || cls == 5;
}

static void on_reply_line(smtp_att *a, const char *line, size_t len, int64_t ms)
{
    a->last_activity = md_now_ms();
    add_line(a, ms, '<', line, len);
    if (a->stop == STOP_PROTOCOL || a->blind)
        return;
    /* RFC 5321 4.2: three digits, the first 2-5, the second 0-5, then a
     * space, a hyphen (more lines follow) or the end. */
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
        !isdigit((unsigned char)line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        char s[64];
        md_sanitize(s, sizeof s, line, len > 40 ? 40 : len);
        protocol_error(a, smtp_pending_phase(a), "not an SMTP reply: \"%s\"", s);
        return;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    int more = len > 3 && line[3] == '-';
    const char *text = line + (len > 4 ? 4 : len);
    size_t tl = len > 4 ? len - 4 : 0;

    /* What does this reply answer?  The oldest command waiting; the greeting
     * before anything was sent; the message's verdict after 354 and the body. */
    smtp_pending none = { MD_SMTP_PHASE_NONE, "", 0 };
    const smtp_pending *w = &none;
    int final_of_body = 0;
    if (a->fhead < a->ftail)
        w = &a->fifo[a->fhead % FIFO_MAX];
    else if (!a->got[MD_SMTP_PHASE_BANNER]) {
        static const smtp_pending banner = { MD_SMTP_PHASE_BANNER, "greeting", 0 };
        w = &banner;
    } else if (a->data_started && !a->data_final) {
        static const smtp_pending body = { MD_SMTP_PHASE_DATA, ".", 1 };
        w = &body;
        final_of_body = 1;
    } else if (code == 421) {
        /* The server is closing: it answers whatever was last sent. */
        if (!more) {
            md_smtp_phase p = a->sent ? a->sent : MD_SMTP_PHASE_BANNER;
            smtp_reply_set(&a->rep[p], code, text, tl);
            a->got[p] = 1;
        }
        return;
    } else {
        if (a->reply_lines == 0) {
            char s[64];
            md_sanitize(s, sizeof s, line, len > 40 ? 40 : len);
            protocol_error(a, a->sent ? a->sent : MD_SMTP_PHASE_BANNER,
                           "a reply nobody asked for: \"%s\" (the replies are out of step with the commands)", s);
        }
        return;
    }
    md_smtp_phase p = w->phase;
    if (a->reply_lines > 0 && code != a->reply_code) {
        protocol_error(a, p, "the lines of one reply carry different codes (%d, then %d)", a->reply_code, code);
        return;
    }

    if (p == MD_SMTP_PHASE_EHLO && code == 250 && a->reply_lines > 0) {
        size_t cl = strlen(a->ehlo_caps);
        if (cl + tl + 2 < sizeof a->ehlo_caps) {
            for (size_t i = 0; i < tl; i++)
                a->ehlo_caps[cl + i] = (char)toupper((unsigned char)text[i]);
            a->ehlo_caps[cl + tl] = '\n';
            a->ehlo_caps[cl + tl + 1] = '\0';
        }
    }
    if (more) {
        a->reply_code = code;
        if (++a->reply_lines > REPLY_LINES_MAX)
            protocol_error(a, p, "a reply of over %d lines", REPLY_LINES_MAX);
        return;
    }
    a->reply_lines = 0;
    if (!class_expected(w->verb, final_of_body, code)) {
        protocol_error(a, p, "the reply %d to %s is out of step (the replies do not answer the commands sent)",
                       code, w->verb[0] ? w->verb : "the command");
        return;
    }
    smtp_pending cur = *w;
    if (a->fhead < a->ftail)
        a->fhead++;

    switch (p) {
    case MD_SMTP_PHASE_DATA:
        smtp_reply_set(&a->rep[p], code, text, tl);
        if (final_of_body || (cur.last && !strcmp(cur.verb, "BDAT"))) {
            if (!a->data_final)
                a->res->final_reply_ms = a->res->started_ms + ms;
            a->data_final = 1;
            a->got[p] = 2;
        } else if (!strcmp(cur.verb, "DATA")) {
            a->got[p] = 1;
            if (code == 354)
                a->data_started = 1;
        } else {
            /* a BDAT chunk: a refusal is the verdict */
            a->got[p] = code >= 400 ? 2 : 1;
        }
        break;
    case MD_SMTP_PHASE_AUTH:
        smtp_reply_set(&a->rep[p], code, text, tl);
        a->got[p] = 1;
        if (code != 334) {
            a->in_auth = 0;
            /* RFC 4954: 235 is the only success; a 250 is not. */
            if (code == 235)
                a->auth_ok = 1;
            else
                a->auth_failed = 1;
        }
        break;
    case MD_SMTP_PHASE_NONE:
        break;   /* RSET, NOOP ... */
    default:
        smtp_reply_set(&a->rep[p], code, text, tl);
        a->got[p] = 1;
        if (p == MD_SMTP_PHASE_STARTTLS)
            a->starttls_rtt = md_now_ms() - a->starttls_sent;
        break;
    }
}

void smtp_feed(smtp_att *a, int written, const char *buf, size_t len, int64_t ms)
{
    int d = written ? 1 : 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            size_t n = a->partlen[d];
            if (n > 0 && a->part[d][n - 1] == '\r')
                n--;
            if (written)
                on_command(a, a->part[d], n, ms);
            else
                on_reply_line(a, a->part[d], n, ms);
            a->partlen[d] = 0;
            continue;
        }
        if (a->partlen[d] >= REPLY_LINE_MAX) {
            if (!written && a->stop != STOP_PROTOCOL) {
                add_line(a, ms, '<', a->part[d], a->partlen[d]);
                /* libESMTP may have acted on the first 1 KB already. */
                protocol_error(a, a->line_phase, "a reply line longer than %d bytes (RFC 5321 allows 512)",
                               REPLY_LINE_MAX);
            }
            continue;   /* drop the rest of an over-long line */
        }
        if (!written && a->partlen[d] == 0)
            a->line_phase = smtp_pending_phase(a);
        a->part[d][a->partlen[d]++] = c;
    }
}
