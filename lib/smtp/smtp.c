/*
 * lib/smtp: sending over libESMTP, probing with a small dialogue of our own,
 * and judging the result (see smtp.h for why each piece is the way it is).
 *
 * Both engines feed the same observer: every line we send goes through
 * on_command(), every line the server sends through on_reply_line().  The
 * observer keeps the transcript (redacted), a FIFO of the phases awaiting a
 * reply (PIPELINING sends MAIL, RCPT and DATA at once), and the reply to each
 * phase; judge() turns that into one outcome and the findings.
 */
#include "config.h"

/* libESMTP's headers need this order (LIBRARIES.md). */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "smtp.h"
#include "mx/mx.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_LINE_MAX 2048     /* RFC 5321 says 512; we allow slack, then call it garbage */
#define REPLY_LINES_MAX 200
#define TRANSCRIPT_MAX 2000     /* lines kept per send */
#define NPHASES (MD_SMTP_PHASE_QUIT + 1)

struct md_smtp_ctx {
    SSL_CTX *ssl;
    char *ca_file;                /* NULL: the system store */
    int ca_loaded;                /* loaded at the first handshake: parsing the
                                   * system store costs ~30 ms, a probe ~1 ms */
    int ca_failed, ssl_failed;
};

static void info_cb(const SSL *ssl, int where, int ret);

/* The SSL_CTX, made at first use: OpenSSL's initialisation (config file,
 * providers) costs more than a whole plain-text probe on loopback. */
static SSL_CTX *ctx_ssl(md_smtp_ctx *ctx)
{
    if (ctx->ssl == NULL && !ctx->ssl_failed) {
        ctx->ssl = SSL_CTX_new(TLS_client_method());
        if (ctx->ssl == NULL) {
            ctx->ssl_failed = 1;
            ERR_clear_error();
            return NULL;
        }
        /* Verification runs, but its verdict is ours to act on (events and
         * SSL_get_verify_result), so the reason reaches the report. */
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_info_callback(ctx->ssl, info_cb);
    }
    return ctx->ssl;
}

static void ctx_load_ca(md_smtp_ctx *ctx)
{
    if (ctx->ca_loaded)
        return;
    ctx->ca_loaded = 1;
    int ok = ctx->ca_file ? SSL_CTX_load_verify_locations(ctx->ssl, ctx->ca_file, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx->ssl);
    if (ok != 1)
        ctx->ca_failed = 1;
    ERR_clear_error();
}

/* ------------------------------------------------------------------------ */
/* Names and explanations                                                    */

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

/* RFC 3463 and the IANA registry, the codes support engineers meet. */
static const struct { const char *code, *words; } enhanced[] = {
    { "2.0.0", "ok" }, { "2.1.0", "sender ok" }, { "2.1.5", "recipient ok" }, { "2.6.0", "message accepted" },
    { "4.1.1", "mailbox unknown (temporarily)" }, { "4.2.0", "mailbox temporarily unavailable" },
    { "4.2.1", "mailbox disabled, not accepting messages for now" },
    { "4.2.2", "mailbox full (over quota), try later" }, { "4.3.0", "mail system problem on the server" },
    { "4.3.1", "the server's mail system is full" }, { "4.3.2", "the server is not accepting mail now" },
    { "4.4.1", "no answer from the next host" }, { "4.4.2", "connection dropped" },
    { "4.4.3", "directory server failure (DNS) on the server's side" },
    { "4.4.5", "the server is congested" }, { "4.5.3", "too many recipients" },
    { "4.7.0", "temporary policy refusal (greylisting, rate limit or reputation)" },
    { "4.7.1", "temporary policy refusal: try again later" },
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
    { "5.6.0", "the content was refused" }, { "5.7.0", "refused by policy" },
    { "5.7.1", "refused by policy (spam filter, blocklist, or relaying denied)" },
    { "5.7.8", "authentication failed (bad user name or password)" },
    { "5.7.9", "the authentication mechanism is too weak" },
    { "5.7.23", "SPF validation failed" }, { "5.7.25", "the sending IP has no reverse DNS (PTR)" },
    { "5.7.26", "the message failed authentication (SPF/DKIM/DMARC)" },
    { "5.7.27", "the sender's domain accepts no mail (null MX)" },
    { "4.7.8", "authentication failed temporarily" },
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
/* Context                                                                   */

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    /* A peer that closes while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    auth_client_init();
}

typedef struct att att;
static __thread att *tls_current;   /* the attempt doing a handshake on this thread */
static void info_cb(const SSL *ssl, int where, int ret);

md_smtp_ctx *md_smtp_ctx_new(const char *ca_file, md_error *err)
{
    pthread_once(&once, global_init);
    if (ca_file && access(ca_file, R_OK) != 0)
        return md_error_set(err, MD_CONFIG, "smtp.tls", "cannot read the CA file %s: %s", ca_file,
                            strerror(errno)), NULL;
    md_smtp_ctx *ctx = md_xcalloc(1, sizeof *ctx);
    ctx->ca_file = ca_file ? md_xstrdup(ca_file) : NULL;
    return ctx;
}

void md_smtp_ctx_free(md_smtp_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->ca_file);
    free(ctx);
}

/* ------------------------------------------------------------------------ */
/* One attempt: one address of one host                                      */

struct att {
    md_smtp_ctx *ctx;
    const md_smtp_request *req;
    md_smtp_result *res;
    md_smtp_tls tls;              /* the effective policy */
    const char *host;             /* name for SNI and certificate checks */
    char ip[64];
    unsigned port;
    int64_t t0, deadline;         /* send start; overall deadline (monotonic ms) */
    int64_t last_activity;

    /* monitor line assembly, per direction */
    char part[2][REPLY_LINE_MAX + 1];
    size_t partlen[2];

    /* phases awaiting a reply */
    md_smtp_phase fifo[128];
    size_t fhead, ftail;
    md_smtp_phase sent;           /* last phase we sent a command for */
    int data_started;             /* 354 seen */
    int data_final;               /* reply after the body seen */
    md_smtp_reply rep[NPHASES];
    int got[NPHASES];
    int reply_lines;              /* lines in the current multi-line reply */
    char ehlo_caps[1024];         /* EHLO keywords, space separated, upper case */

    int64_t starttls_sent, starttls_rtt;
    int drained;                  /* drain_tickets() done for this session */
    int in_auth;
    int auth_failed;
    int protocol_error;
    md_smtp_phase protocol_phase;  /* the reply being read when it went wrong */
    md_smtp_phase line_phase;      /* the phase pending when the current server line began */
    char protocol_what[160];
    int connect_failed, connect_timeout;
    char connect_error[160];
    int tls_cert_refused;         /* policy refused the certificate */
    int tls_handshake_failed;
    int tls_not_offered;
    int aborted;                  /* we cut the connection on purpose */
    int dsn_missing;

    /* libESMTP: the socket, for the watchdog and for aborting */
    int esmtp_fd;                 /* our dup of libESMTP's socket, or -1 */
    size_t msg_pos;
};

static int64_t rel_ms(const att *a) { return md_now_ms() - a->t0; }

static void transcript_add(md_smtp_result *res, int64_t ms, char dir, const char *text, size_t len)
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

static void note(att *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(att *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    transcript_add(a->res, rel_ms(a), '*', buf, strlen(buf));
}

/* The phase whose reply is being read now. */
static md_smtp_phase pending_phase(const att *a)
{
    if (a->fhead < a->ftail)
        return a->fifo[a->fhead % (sizeof a->fifo / sizeof a->fifo[0])];
    if (!a->got[MD_SMTP_PHASE_BANNER])
        return MD_SMTP_PHASE_BANNER;
    return a->data_started ? MD_SMTP_PHASE_DATA : a->sent;
}

static void protocol_error(att *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void abort_session(att *a, const char *why)
{
    if (a->aborted)
        return;
    a->aborted = 1;
    note(a, "maildiag ends the session: %s", why);
    if (a->esmtp_fd >= 0)
        shutdown(a->esmtp_fd, SHUT_RDWR);
}

static void protocol_error(att *a, const char *fmt, ...)
{
    if (a->protocol_error)
        return;
    a->protocol_error = 1;
    a->protocol_phase = pending_phase(a);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->protocol_what, sizeof a->protocol_what, fmt, ap);
    va_end(ap);
    abort_session(a, "the server does not speak SMTP");
}

static void push_phase(att *a, md_smtp_phase p)
{
    if (a->ftail - a->fhead < sizeof a->fifo / sizeof a->fifo[0])
        a->fifo[a->ftail++ % (sizeof a->fifo / sizeof a->fifo[0])] = p;
    a->sent = p;
}

/* A line we send (without CRLF). */
static void on_command(att *a, const char *line, size_t len)
{
    char verb[16];
    size_t v = 0;
    while (v < len && v < sizeof verb - 1 && isalpha((unsigned char)line[v])) {
        verb[v] = (char)toupper((unsigned char)line[v]);
        v++;
    }
    verb[v] = '\0';
    if (a->data_started && !a->data_final)
        return;   /* the terminating "." of the body */
    if (a->aborted)
        return;   /* libESMTP writing into the socket we shut down: nothing arrives */
    md_smtp_phase p = MD_SMTP_PHASE_NONE;
    if (!strcmp(verb, "EHLO") || !strcmp(verb, "HELO")) p = MD_SMTP_PHASE_EHLO;
    else if (!strcmp(verb, "STARTTLS")) {
        p = MD_SMTP_PHASE_STARTTLS;
        a->starttls_sent = md_now_ms();
    }
    else if (!strcmp(verb, "AUTH")) p = MD_SMTP_PHASE_AUTH;
    else if (!strcmp(verb, "MAIL")) p = MD_SMTP_PHASE_MAIL;
    else if (!strcmp(verb, "RCPT")) p = MD_SMTP_PHASE_RCPT;
    else if (!strcmp(verb, "DATA")) p = MD_SMTP_PHASE_DATA;
    else if (!strcmp(verb, "QUIT")) p = MD_SMTP_PHASE_QUIT;
    else if (a->in_auth) p = MD_SMTP_PHASE_AUTH;   /* a SASL response line */

    if (p == MD_SMTP_PHASE_AUTH) {
        /* Keep the verb and mechanism; the rest is a secret. */
        char shown[64];
        if (!strcmp(verb, "AUTH")) {
            const char *mech = line + 4;
            while (*mech == ' ') mech++;
            size_t ml = strcspn(mech, " ");
            snprintf(shown, sizeof shown, "AUTH %.*s%s", (int)(ml > 20 ? 20 : ml), mech,
                     mech[ml] ? " [redacted]" : "");
        } else {
            snprintf(shown, sizeof shown, "[redacted]");
        }
        a->in_auth = 1;
        transcript_add(a->res, rel_ms(a), '>', shown, strlen(shown));
    } else {
        transcript_add(a->res, rel_ms(a), '>', line, len);
    }
    push_phase(a, p);
}

static void set_reply(md_smtp_reply *r, int code, const char *text)
{
    r->code = code;
    r->enhanced[0] = '\0';
    const char *p = text;
    /* "5.1.1 text": class.subject.detail */
    if ((p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.') {
        size_t n = strspn(p, "0123456789.");
        if (n >= 5 && n < sizeof r->enhanced && (p[n] == ' ' || p[n] == '\0')) {
            memcpy(r->enhanced, p, n);
            r->enhanced[n] = '\0';
            p += n;
            while (*p == ' ') p++;
        }
    }
    md_sanitize(r->text, sizeof r->text, p, strlen(p));
}

/* A complete line from the server (without CRLF). */
static void on_reply_line(att *a, const char *line, size_t len)
{
    a->last_activity = md_now_ms();
    transcript_add(a->res, rel_ms(a), '<', line, len);
    if (a->protocol_error)
        return;
    if (len < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]) || line[0] < '2' || line[0] > '5' ||
        (len > 3 && line[3] != ' ' && line[3] != '-')) {
        char s[64];
        md_sanitize(s, sizeof s, line, len > 40 ? 40 : len);
        protocol_error(a, "not an SMTP reply: \"%s\"", s);
        return;
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    int more = len > 3 && line[3] == '-';
    char text[REPLY_LINE_MAX + 1];
    size_t tl = len > 4 ? len - 4 : 0;
    memcpy(text, line + (len > 4 ? 4 : len), tl);
    text[tl] = '\0';

    /* Which phase does this reply answer?  The oldest one waiting; the
     * greeting when nothing was sent; the body's verdict after 354. */
    md_smtp_phase p;
    if (a->fhead < a->ftail)
        p = a->fifo[a->fhead % (sizeof a->fifo / sizeof a->fifo[0])];
    else if (!a->got[MD_SMTP_PHASE_BANNER])
        p = MD_SMTP_PHASE_BANNER;
    else if (a->data_started && !a->data_final)
        p = MD_SMTP_PHASE_DATA;
    else
        p = MD_SMTP_PHASE_NONE;   /* unsolicited (e.g. 421 at any time) */

    if (p == MD_SMTP_PHASE_EHLO && (more || a->reply_lines > 0) && code == 250 && a->reply_lines > 0) {
        /* EHLO keywords: every line but the first. */
        size_t cl = strlen(a->ehlo_caps);
        if (cl + tl + 2 < sizeof a->ehlo_caps) {
            for (size_t i = 0; i < tl; i++)
                a->ehlo_caps[cl + i] = (char)toupper((unsigned char)text[i]);
            a->ehlo_caps[cl + tl] = '\n';
            a->ehlo_caps[cl + tl + 1] = '\0';
        }
    }
    if (more) {
        if (++a->reply_lines > REPLY_LINES_MAX)
            protocol_error(a, "a reply of over %d lines", REPLY_LINES_MAX);
        return;
    }
    a->reply_lines = 0;
    if (a->fhead < a->ftail)
        a->fhead++;
    if (p == MD_SMTP_PHASE_DATA && a->data_started) {
        a->data_final = 1;
        set_reply(&a->rep[MD_SMTP_PHASE_DATA], code, text);
        a->got[MD_SMTP_PHASE_DATA] = 2;
        return;
    }
    if (p == MD_SMTP_PHASE_NONE) {
        if (code == 421 && !a->got[MD_SMTP_PHASE_QUIT]) {
            /* The server is closing: this answers whatever was last sent. */
            set_reply(&a->rep[a->sent ? a->sent : MD_SMTP_PHASE_BANNER], code, text);
            a->got[a->sent ? a->sent : MD_SMTP_PHASE_BANNER] = 1;
        }
        return;
    }
    set_reply(&a->rep[p], code, text);
    a->got[p] = 1;
    if (p == MD_SMTP_PHASE_DATA && code == 354)
        a->data_started = 1;
    if (p == MD_SMTP_PHASE_STARTTLS)
        a->starttls_rtt = md_now_ms() - a->starttls_sent;
    if (p == MD_SMTP_PHASE_AUTH) {
        if (code != 334)
            a->in_auth = 0;
        if (code >= 400 && !a->auth_failed) {
            a->auth_failed = 1;
            /* libESMTP would go on unauthenticated (or try LOGIN with the
             * same wrong password): stop here, the answer is known. */
            abort_session(a, "authentication failed");
        }
    }
}

/* Splits a chunk into lines and feeds them in. */
static void feed(att *a, int writing, const char *buf, size_t len)
{
    int d = writing ? 1 : 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            size_t n = a->partlen[d];
            if (n > 0 && a->part[d][n - 1] == '\r')
                n--;
            if (writing) on_command(a, a->part[d], n);
            else on_reply_line(a, a->part[d], n);
            a->partlen[d] = 0;
            continue;
        }
        if (a->partlen[d] >= REPLY_LINE_MAX) {
            if (!writing && !a->protocol_error) {
                transcript_add(a->res, rel_ms(a), '<', a->part[d], a->partlen[d]);
                protocol_error(a, "a reply line longer than %d bytes (RFC 5321 allows 512)", REPLY_LINE_MAX);
                /* libESMTP may have acted on the first 1 KB already. */
                a->protocol_phase = a->line_phase;
            }
            continue;   /* drop the rest of an over-long line */
        }
        if (!writing && a->partlen[d] == 0)
            a->line_phase = pending_phase(a);
        a->part[d][a->partlen[d]++] = c;
    }
}

static int has_cap(const att *a, const char *kw)
{
    size_t n = strlen(kw);
    for (const char *p = a->ehlo_caps; *p; ) {
        if (strncmp(p, kw, n) == 0 && (p[n] == '\n' || p[n] == ' ' || p[n] == '='))
            return 1;
        const char *nl = strchr(p, '\n');
        if (nl == NULL) break;
        p = nl + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* TLS details                                                               */

static int is_ip_literal(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    att *a = tls_current;
    if (a == NULL || !(where & SSL_CB_HANDSHAKE_START) || !SSL_in_before(ssl))
        return;
    SSL *s = (SSL *)ssl;
    ctx_load_ca(a->ctx);
    if (a->ctx->ca_failed)
        note(a, "could not load the CA certificates%s%s: nothing will verify",
             a->ctx->ca_file ? " from " : "", a->ctx->ca_file ? a->ctx->ca_file : "");
    if (!is_ip_literal(a->host))
        SSL_set_tlsext_host_name(s, a->host);   /* libESMTP sends no SNI itself */
    /* OpenSSL checks the name during the handshake; the result arrives with
     * SSL_get_verify_result like any other verification error. */
    SSL_set1_host(s, a->host);
    snprintf(a->res->tls.peer_name, sizeof a->res->tls.peer_name, "%s", a->host);
}

static void tls_record(att *a, SSL *ssl)
{
    md_smtp_tls_info *t = &a->res->tls;
    if (t->used)
        return;   /* libESMTP reports a bad certificate before STARTTLS_OK */
    t->used = 1;
    snprintf(t->version, sizeof t->version, "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    snprintf(t->cipher, sizeof t->cipher, "%s", c ? SSL_CIPHER_get_name(c) : "");
    t->bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    t->verify_code = SSL_get_verify_result(ssl);
    t->verified = t->verify_code == X509_V_OK;
    if (!t->verified)
        snprintf(t->verify_error, sizeof t->verify_error, "%s",
                 X509_verify_cert_error_string(t->verify_code));
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert) {
        char buf[256];
        X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
        md_sanitize(t->subject, sizeof t->subject, buf, strlen(buf));
        X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof buf);
        md_sanitize(t->issuer, sizeof t->issuer, buf, strlen(buf));
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
            t->not_after = (int64_t)timegm(&tm);
        X509_free(cert);
    } else {
        t->verified = 0;
        snprintf(t->verify_error, sizeof t->verify_error, "no certificate");
    }
    note(a, "TLS %s %s (%d bits), certificate %s, %s", t->version, t->cipher, t->bits,
         t->subject[0] ? t->subject : "(none)",
         t->verified ? "verified" : t->verify_error);
}

/* May the session go on with this certificate? */
static int tls_policy_accepts(const att *a)
{
    return a->req->insecure || a->tls == MD_SMTP_TLS_OPPORTUNISTIC || a->res->tls.verified;
}

/* ------------------------------------------------------------------------ */
/* TCP connect with a deadline                                                */

/* Returns a connected blocking socket, or -1 with a->connect_* set. */
static int tcp_connect(att *a, int timeout_ms)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)a->port);
    if (inet_pton(AF_INET, a->ip, &sin.sin_addr) != 1) {
        a->connect_failed = 1;
        snprintf(a->connect_error, sizeof a->connect_error, "%s is not an IPv4 address", a->ip);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        a->connect_failed = 1;
        snprintf(a->connect_error, sizeof a->connect_error, "socket: %s", strerror(errno));
        return -1;
    }
    int64_t t = md_now_ms();
    int r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    if (r != 0 && errno == EINPROGRESS) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int pr;
        do pr = poll(&pfd, 1, timeout_ms); while (pr < 0 && errno == EINTR);
        if (pr == 0) {
            close(fd);
            a->connect_failed = a->connect_timeout = 1;
            snprintf(a->connect_error, sizeof a->connect_error, "no answer within %d ms", timeout_ms);
            note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        r = soerr ? -1 : 0;
        errno = soerr;
    }
    if (r != 0) {
        int e = errno;
        close(fd);
        a->connect_failed = 1;
        snprintf(a->connect_error, sizeof a->connect_error, "%s", strerror(e));
        note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
        return -1;
    }
    note(a, "connected to %s:%u (%s) in %lld ms", a->ip, a->port, a->host, (long long)(md_now_ms() - t));
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

/* ------------------------------------------------------------------------ */
/* The watchdog: the overall deadline for libESMTP sessions                   */

typedef struct watchdog {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t deadline;
    int fd;
    int stop, fired;
} watchdog;

static void *wd_main(void *arg)
{
    watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t now = md_now_ms();
        if (now >= w->deadline && !w->fired) {
            w->fired = 1;
            if (w->fd >= 0)
                shutdown(w->fd, SHUT_RDWR);
        }
        if (w->fired) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = w->deadline - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int wd_start(watchdog *w, int64_t deadline)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    w->deadline = deadline;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    return pthread_create(&w->th, NULL, wd_main, w);
}

static void wd_set_fd(watchdog *w, int fd)
{
    pthread_mutex_lock(&w->mu);
    w->fd = fd;
    if (w->fired && fd >= 0)
        shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&w->mu);
}

static int wd_fired(watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    int f = w->fired;
    pthread_mutex_unlock(&w->mu);
    return f;
}

static void wd_stop(watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* ------------------------------------------------------------------------ */
/* The libESMTP engine                                                        */

typedef struct esmtp_run {
    att *a;
    watchdog *wd;
} esmtp_run;

/*
 * libESMTP 1.1.0 deadlock after STARTTLS with TLS 1.3: the server's
 * NewSessionTicket records arrive right after the handshake; when they are
 * readable by the time libESMTP polls, it handles "readable" before flushing
 * its EHLO and blocks in SSL_read waiting for a reply to a command it never
 * sent (until the phase timeout).  Seen on loopback every few sessions.
 * Work-around: right after the handshake, wait a little (3 round trips of
 * the STARTTLS exchange, 20..500 ms) for those records and let OpenSSL
 * consume them with SSL_peek, which leaves any application data in place.
 */
static void drain_tickets(att *a, SSL *ssl)
{
    if (a->drained || SSL_version(ssl) != TLS1_3_VERSION)
        return;
    a->drained = 1;
    int fd = SSL_get_fd(ssl);
    if (fd < 0)
        return;
    int64_t wait = a->starttls_rtt * 3;
    wait = wait < 20 ? 20 : wait > 500 ? 500 : wait;
    int64_t until = md_now_ms() + wait;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (int round = 0; round < 4; round++) {
        int64_t left = until - md_now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, round == 0 ? (int)left : 5) <= 0)
            break;
        char c;
        int r = SSL_peek(ssl, &c, 1);
        if (r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
            break;   /* application data (left for libESMTP) or an error */
    }
    ERR_clear_error();
    fcntl(fd, F_SETFL, fl);
}

static void monitor_cb(const char *buf, int len, int writing, void *arg)
{
    esmtp_run *r = arg;
    if (len > 0 && writing != SMTP_CB_HEADERS)
        feed(r->a, writing == SMTP_CB_WRITING, buf, (size_t)len);
}

/* The socket libESMTP just connected: the lowest-numbered TCP socket whose
 * peer is our address and port (one session per thread at a time). */
static int find_session_fd(const att *a)
{
    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        if (getpeername(fd, (struct sockaddr *)&sin, &sl) != 0) {
            if (errno == EBADF && fd > 256)
                break;
            continue;
        }
        char ip[64];
        if (sin.sin_family == AF_INET && ntohs(sin.sin_port) == a->port &&
            inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip) && strcmp(ip, a->ip) == 0)
            return fd;
    }
    return -1;
}

static void event_cb(smtp_session_t session, int event, void *arg, ...)
{
    (void)session;
    esmtp_run *r = arg;
    att *a = r->a;
    va_list ap;
    va_start(ap, arg);
    switch (event) {
    case SMTP_EV_CONNECT: {
        int fd = find_session_fd(a);
        if (fd >= 0) {
            a->esmtp_fd = dup(fd);   /* ours: shutdown() through it, no fd-reuse race */
            wd_set_fd(r->wd, a->esmtp_fd);
        }
        break;
    }
    case SMTP_EV_DISCONNECT:
        wd_set_fd(r->wd, -1);
        break;
    case SMTP_EV_STARTTLS_OK: {
        SSL *ssl = va_arg(ap, SSL *);
        tls_record(a, ssl);
        drain_tickets(a, ssl);
        if (!tls_policy_accepts(a)) {
            /* libESMTP asks about the certificate in the events below;
             * checking here covers the name check, which it does against
             * the numeric address we gave it. */
            a->tls_cert_refused = 1;
            abort_session(a, "the certificate does not verify");
        }
        break;
    }
    case SMTP_EV_INVALID_PEER_CERTIFICATE: {
        long vr = va_arg(ap, long);
        int *ok = va_arg(ap, int *);
        SSL *ssl = va_arg(ap, SSL *);
        tls_record(a, ssl);
        drain_tickets(a, ssl);   /* libESMTP's QUIT after a refusal stalls the same way */
        a->res->tls.verify_code = vr;
        a->res->tls.verified = 0;
        snprintf(a->res->tls.verify_error, sizeof a->res->tls.verify_error, "%s",
                 X509_verify_cert_error_string(vr));
        *ok = tls_policy_accepts(a);
        if (!*ok)
            a->tls_cert_refused = 1;
        /* libESMTP leaves the verification error in OpenSSL's error queue;
         * its next SSL_write then reads as failed and the session stalls. */
        ERR_clear_error();
        break;
    }
    case SMTP_EV_NO_PEER_CERTIFICATE: {
        int *ok = va_arg(ap, int *);
        a->res->tls.verified = 0;
        snprintf(a->res->tls.verify_error, sizeof a->res->tls.verify_error, "no certificate");
        *ok = tls_policy_accepts(a);
        if (!*ok)
            a->tls_cert_refused = 1;
        break;
    }
    case SMTP_EV_WRONG_PEER_CERTIFICATE: {
        int *ok = va_arg(ap, int *);
        *ok = 1;   /* libESMTP compared with the IP address; OpenSSL checked the real name */
        ERR_clear_error();
        break;
    }
    case SMTP_EV_WEAK_CIPHER: {
        int bits = va_arg(ap, int);
        int *ok = va_arg(ap, int *);
        note(a, "weak cipher: %d bits", bits);
        *ok = 1;
        break;
    }
    case SMTP_EV_EXTNA_DSN: {
        int *quit = va_arg(ap, int *);
        *quit = 0;
        a->dsn_missing = 1;
        break;
    }
    case SMTP_EV_EXTNA_STARTTLS:
        a->tls_not_offered = 1;
        break;
    case SMTP_EV_SYNTAXWARNING: {
        int *quit = va_arg(ap, int *);
        *quit = 0;
        break;
    }
    default:
        break;   /* other events carry arguments we do not read */
    }
    va_end(ap);
}

static const char *msg_cb(void **ctx, int *len, void *arg)
{
    (void)ctx;
    att *a = arg;
    if (len == NULL) {   /* rewind */
        a->msg_pos = 0;
        return NULL;
    }
    size_t left = a->req->len - a->msg_pos;
    if (left == 0) {
        *len = 0;
        return NULL;
    }
    size_t n = left > 65536 ? 65536 : left;
    const char *p = a->req->data + a->msg_pos;
    a->msg_pos += n;
    *len = (int)n;
    return p;
}

static int interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    att *a = arg;
    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_PASS)
            result[i] = (char *)a->req->auth_password;
        else if (req[i].flags & AUTH_USER)
            result[i] = (char *)a->req->auth_user;
        else
            result[i] = NULL;
        if (result[i] == NULL)
            return 0;
    }
    return 1;
}

static void copy_status(md_smtp_reply *r, const smtp_status_t *st)
{
    if (st == NULL || st->code == 0)
        return;
    r->code = st->code;
    if (st->enh_class)
        snprintf(r->enhanced, sizeof r->enhanced, "%d.%d.%d", st->enh_class, st->enh_subject, st->enh_detail);
    if (st->text) {
        const char *t = st->text;
        /* libESMTP leaves the enhanced code in the text when it parsed it. */
        if (r->enhanced[0] && strncmp(t, r->enhanced, strlen(r->enhanced)) == 0)
            t += strlen(r->enhanced);
        while (*t == ' ') t++;
        size_t n = strcspn(t, "\r\n");
        md_sanitize(r->text, sizeof r->text, t, n);
    }
}

static long phase_ms(const att *a, int want)
{
    int64_t left = a->deadline - md_now_ms();
    long v = want < left ? want : (long)left;
    return v < 1000 ? 1000 : v;   /* libESMTP's floor, even with the override */
}

static void run_esmtp(att *a, watchdog *wd)
{
    const md_smtp_request *req = a->req;
    int phase_to = req->phase_timeout_ms;
    smtp_session_t s = smtp_create_session();
    auth_context_t authctx = NULL;
    esmtp_run r = { a, wd };
    char hp[96];
    snprintf(hp, sizeof hp, "%s:%u", a->ip, a->port);
    smtp_set_server(s, hp);
    if (req->helo)
        smtp_set_hostname(s, req->helo);
    smtp_set_timeout(s, Timeout_GREETING | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a, phase_to));
    smtp_set_timeout(s, Timeout_ENVELOPE | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a, phase_to));
    smtp_set_timeout(s, Timeout_DATA | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a, phase_to));
    smtp_set_timeout(s, Timeout_TRANSFER | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a, phase_to));
    smtp_set_timeout(s, Timeout_DATA2 | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a, phase_to));
    smtp_set_monitorcb(s, monitor_cb, &r, 0);
    smtp_set_eventcb(s, event_cb, &r);
    smtp_starttls_enable(s, a->tls == MD_SMTP_TLS_OFF ? Starttls_DISABLED
                          : a->tls == MD_SMTP_TLS_REQUIRED ? Starttls_REQUIRED : Starttls_ENABLED);
    /* Never let libESMTP make its own SSL_CTX (upstream issue #30). */
    if (a->tls != MD_SMTP_TLS_OFF) {
        SSL_CTX *sc = ctx_ssl(a->ctx);
        if (sc)
            smtp_starttls_set_ctx(s, sc);
        else
            smtp_starttls_enable(s, Starttls_DISABLED);
    }
    if (req->auth_user) {
        authctx = auth_create_context();
        auth_set_mechanism_flags(authctx, AUTH_PLUGIN_PLAIN, 0);
        auth_set_interact_cb(authctx, interact, a);
        smtp_auth_set_context(s, authctx);
    }
    smtp_message_t m = smtp_add_message(s);
    smtp_set_reverse_path(m, req->mail_from);
    smtp_set_messagecb(m, msg_cb, a);
    smtp_recipient_t rc = smtp_add_recipient(m, req->rcpt_to);
    if (req->dsn) {
        smtp_dsn_set_ret(m, Ret_HDRS);
        const char *envid = req->dsn_envid ? req->dsn_envid : req->message_id;
        if (envid) {
            /* ENVID is xtext; our ids are printable ASCII without '+' or '='. */
            char clean[128];
            size_t j = 0;
            for (const char *p = envid; *p && j + 1 < sizeof clean; p++)
                if (*p > 32 && *p < 127 && *p != '+' && *p != '=' && *p != '<' && *p != '>')
                    clean[j++] = *p;
            clean[j] = '\0';
            if (j)
                smtp_dsn_set_envid(m, clean);
        }
        smtp_dsn_set_notify(rc, Notify_SUCCESS | Notify_FAILURE | Notify_DELAY);
    }
    a->esmtp_fd = -1;
    tls_current = a;
    smtp_start_session(s);
    tls_current = NULL;
    int e = smtp_errno();
    /* The statuses are the authority for MAIL, RCPT and the message. */
    copy_status(&a->rep[MD_SMTP_PHASE_MAIL], smtp_reverse_path_status(m));
    const smtp_status_t *rs = smtp_recipient_status(rc);
    if (rs && rs->code) {
        copy_status(&a->rep[MD_SMTP_PHASE_RCPT], rs);
        a->got[MD_SMTP_PHASE_RCPT] = 1;
    }
    const smtp_status_t *ms = smtp_message_transfer_status(m);
    if (ms && ms->code && a->data_started) {
        copy_status(&a->rep[MD_SMTP_PHASE_DATA], ms);
        a->got[MD_SMTP_PHASE_DATA] = 2;
    }
    /* A reply cut by our deadline also reads as bad syntax to libESMTP. */
    if (e && !a->protocol_error && !a->aborted && !(wd && wd_fired(wd)) &&
        (e == SMTP_ERR_INVALID_RESPONSE_SYNTAX || e == SMTP_ERR_STATUS_MISMATCH ||
         e == SMTP_ERR_INVALID_RESPONSE_STATUS || e == SMTP_ERR_UNTERMINATED_RESPONSE)) {
        char eb[128];
        protocol_error(a, "%s", smtp_strerror(e, eb, sizeof eb) ? eb : "invalid reply");
    }
    smtp_destroy_session(s);
    if (authctx)
        auth_destroy_context(authctx);
    if (a->esmtp_fd >= 0) {
        wd_set_fd(wd, -1);
        close(a->esmtp_fd);
        a->esmtp_fd = -1;
    }
}

/* ------------------------------------------------------------------------ */
/* The probe engine (--quit-after): our own short dialogue                    */

typedef struct conn {
    att *a;
    int fd;
    SSL *ssl;
    char buf[4096];
    size_t len;
    int64_t phase_deadline;
    int timed_out, dropped;
} conn;

static int64_t conn_deadline(conn *c)
{
    return c->phase_deadline < c->a->deadline ? c->phase_deadline : c->a->deadline;
}

/* Waits for fd to become readable/writable before the deadline. */
static int conn_wait(conn *c, short ev)
{
    int64_t left = conn_deadline(c) - md_now_ms();
    if (left <= 0) {
        c->timed_out = 1;
        return -1;
    }
    struct pollfd p = { .fd = c->fd, .events = ev };
    int r;
    do r = poll(&p, 1, (int)left); while (r < 0 && errno == EINTR);
    if (r == 0) {
        c->timed_out = 1;
        return -1;
    }
    return r < 0 ? -1 : 0;
}

static int conn_write(conn *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, s, (int)n);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                    conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
                    continue;
                c->dropped = !c->timed_out;
                return -1;
            }
            w = r;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (conn_wait(c, POLLOUT) != 0) return -1;
                continue;
            }
            if (w < 0) { c->dropped = 1; return -1; }
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into c->buf.  Returns 0, or -1 (timeout, closed). */
static int conn_fill(conn *c)
{
    for (;;) {
        if (c->len >= sizeof c->buf)
            return 0;
        ssize_t r;
        if (c->ssl) {
            int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    if (conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) != 0) return -1;
                    continue;
                }
                c->dropped = 1;
                return -1;
            }
            r = n;
        } else {
            r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (conn_wait(c, POLLIN) != 0) return -1;
                continue;
            }
            if (r <= 0) { c->dropped = 1; return -1; }
        }
        c->len += (size_t)r;
        return 0;
    }
}

/* Sends one command line (shown via on_command). */
static int cmd(conn *c, const char *line, int phase_timeout)
{
    on_command(c->a, line, strlen(line));
    c->phase_deadline = md_now_ms() + phase_timeout;
    char out[1100];
    int n = snprintf(out, sizeof out, "%s\r\n", line);
    return conn_write(c, out, (size_t)n);
}

/* Reads one whole reply (all its lines) through on_reply_line.  Returns its
 * code, or -1. */
static int reply(conn *c, md_smtp_phase p)
{
    att *a = c->a;
    a->got[p] = 0;   /* wait for a new reply (AUTH LOGIN has several) */
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl == NULL) {
            if (c->len >= sizeof c->buf) {
                /* over-long: feed() marks it and we stop */
                feed(a, 0, c->buf, c->len);
                c->len = 0;
            }
            if (a->protocol_error)
                return -1;
            if (conn_fill(c) != 0)
                return -1;
            continue;
        }
        size_t n = (size_t)(nl - c->buf) + 1;
        feed(a, 0, c->buf, n);
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        if (a->protocol_error)
            return -1;
        if (a->reply_lines == 0 && a->got[p])
            return a->rep[p].code;
    }
}

static int tls_handshake(conn *c, int timeout)
{
    att *a = c->a;
    SSL_CTX *sc = ctx_ssl(a->ctx);
    if (sc == NULL || (c->ssl = SSL_new(sc)) == NULL) {
        note(a, "cannot set up TLS on our side");
        a->tls_handshake_failed = 1;
        return -1;
    }
    SSL_set_fd(c->ssl, c->fd);
    c->phase_deadline = md_now_ms() + timeout;
    tls_current = a;
    int ok = -1;
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1) { ok = 0; break; }
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
            continue;
        unsigned long le = ERR_get_error();
        char eb[160];
        ERR_error_string_n(le, eb, sizeof eb);
        note(a, "TLS handshake failed: %s", le ? eb : c->timed_out ? "timeout" : "connection closed");
        ERR_clear_error();
        a->tls_handshake_failed = 1;
        break;
    }
    tls_current = NULL;
    if (ok == 0) {
        tls_record(a, c->ssl);
        if (!tls_policy_accepts(a)) {
            a->tls_cert_refused = 1;
            ok = -1;
        }
    }
    return ok;
}

static int auth_probe(conn *c, int to)
{
    att *a = c->a;
    const char *u = a->req->auth_user, *pw = a->req->auth_password ? a->req->auth_password : "";
    size_t ul = strlen(u), pl = strlen(pw);
    if (ul > 255 || pl > 255)
        return -1;
    int ret = -1;
    if (has_cap(a, "AUTH") && (strstr(a->ehlo_caps, " PLAIN") || strstr(a->ehlo_caps, "AUTH=PLAIN"))) {
        unsigned char raw[520];
        raw[0] = 0;
        memcpy(raw + 1, u, ul);
        raw[1 + ul] = 0;
        memcpy(raw + 2 + ul, pw, pl);
        char b64[800], line[820];
        EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
        snprintf(line, sizeof line, "AUTH PLAIN %s", b64);
        OPENSSL_cleanse(raw, sizeof raw);
        if (cmd(c, line, to) == 0)
            ret = reply(c, MD_SMTP_PHASE_AUTH);
        OPENSSL_cleanse(line, sizeof line);
        OPENSSL_cleanse(b64, sizeof b64);
    } else {
        char b64[400];
        if (cmd(c, "AUTH LOGIN", to) != 0 || (ret = reply(c, MD_SMTP_PHASE_AUTH)) != 334)
            return ret;
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)u, (int)ul);
        if (cmd(c, b64, to) != 0 || (ret = reply(c, MD_SMTP_PHASE_AUTH)) != 334)
            return ret;
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)pw, (int)pl);
        if (cmd(c, b64, to) == 0)
            ret = reply(c, MD_SMTP_PHASE_AUTH);
        OPENSSL_cleanse(b64, sizeof b64);
    }
    return ret;
}

static void run_probe(att *a, int fd)
{
    const md_smtp_request *req = a->req;
    md_smtp_phase q = req->quit_after;
    int to = req->phase_timeout_ms;
    conn c = { .a = a, .fd = fd };
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    char line[600];
    int code;
    if (q == MD_SMTP_PHASE_CONNECT)
        goto quit;
    c.phase_deadline = md_now_ms() + to;
    if ((code = reply(&c, MD_SMTP_PHASE_BANNER)) != 220 || q == MD_SMTP_PHASE_BANNER)
        goto quit;
    char host[256];
    if (req->helo)
        snprintf(host, sizeof host, "%s", req->helo);
    else if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    snprintf(line, sizeof line, "EHLO %s", host);
    if (cmd(&c, line, to) != 0 || (code = reply(&c, MD_SMTP_PHASE_EHLO)) != 250) {
        if (code < 500)
            goto quit;
        snprintf(line, sizeof line, "HELO %s", host);
        if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_EHLO) != 250)
            goto quit;
    }
    if (q == MD_SMTP_PHASE_EHLO)
        goto quit;
    if (a->tls != MD_SMTP_TLS_OFF) {
        if (!has_cap(a, "STARTTLS")) {
            a->tls_not_offered = 1;
            if (a->tls == MD_SMTP_TLS_REQUIRED)
                goto quit;
        } else {
            if (cmd(&c, "STARTTLS", to) != 0 || reply(&c, MD_SMTP_PHASE_STARTTLS) != 220)
                goto quit;
            if (tls_handshake(&c, to) != 0)
                goto quit;   /* a failed handshake leaves nothing to QUIT on */
            a->ehlo_caps[0] = '\0';
            a->got[MD_SMTP_PHASE_EHLO] = 0;
            snprintf(line, sizeof line, "EHLO %s", host);
            if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_EHLO) != 250)
                goto quit;
        }
    }
    if (q == MD_SMTP_PHASE_STARTTLS)
        goto quit;
    if (req->auth_user && has_cap(a, "AUTH")) {
        if (auth_probe(&c, to) != 235)
            goto quit;
    }
    if (q == MD_SMTP_PHASE_AUTH)
        goto quit;
    snprintf(line, sizeof line, "MAIL FROM:<%s>", req->mail_from);
    if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_MAIL) / 100 != 2 || q == MD_SMTP_PHASE_MAIL)
        goto quit;
    snprintf(line, sizeof line, "RCPT TO:<%s>", req->rcpt_to);
    if (cmd(&c, line, to) == 0)
        reply(&c, MD_SMTP_PHASE_RCPT);
quit:
    if (!c.dropped && !c.timed_out && !a->protocol_error && !a->tls_handshake_failed) {
        /* Be polite but brief: QUIT, and wait a moment for the 221. */
        int64_t save = a->deadline;
        if (cmd(&c, "QUIT", to) == 0) {
            if (a->deadline - md_now_ms() > 1000)
                a->deadline = md_now_ms() + 1000;
            reply(&c, MD_SMTP_PHASE_QUIT);
            a->deadline = save;
        }
    }
    if (c.timed_out)
        note(a, "no reply before the deadline");
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    a->last_activity = c.timed_out ? 0 : md_now_ms();
    a->aborted = a->aborted || c.timed_out;
}

/* ------------------------------------------------------------------------ */
/* Judgement                                                                  */

static md_smtp_outcome by_code(int code)
{
    return code >= 500 ? MD_SMTP_REJECTED : code >= 400 ? MD_SMTP_DEFERRED : MD_SMTP_ACCEPTED;
}

static void reply_finding(md_report *rep, const char *id_rej, const char *id_def, const char *what,
                          const md_smtp_reply *r, int greylist)
{
    const char *words = md_smtp_enhanced_explain(r->enhanced);
    md_finding *f = md_report_add(rep, r->code >= 500 ? id_rej : id_def, MD_SEV_DEFAULT,
                                  "%s: %d%s%s%s%s", what, r->code, r->enhanced[0] ? " " : "", r->enhanced,
                                  *words ? " - " : "", words);
    md_finding_add_evidence(f, "%d %s%s%s", r->code, r->enhanced, r->enhanced[0] ? " " : "", r->text);
    if (greylist)
        md_report_add(rep, "smtp.greylisted", MD_SEV_DEFAULT,
                      "greylisting: the server asks to retry later; a real MTA retries and gets through");
}

static void set_res_reply(md_smtp_result *res, const md_smtp_reply *r)
{
    if (r)
        res->reply = *r;
}

/* Decides the attempt.  Returns the outcome and sets res fields. */
static md_smtp_outcome judge(att *a, int timed_out, md_report *rep)
{
    md_smtp_result *res = a->res;
    const md_smtp_request *req = a->req;
    md_smtp_phase q = req->quit_after;
    md_smtp_reply *R = a->rep;
    res->reply.code = 0;

#define END(o, ph, r) do { res->phase = (ph); set_res_reply(res, r); return (o); } while (0)

    if (a->connect_failed) {
        md_report_add(rep, a->connect_timeout ? "smtp.connect.timeout" : "smtp.connect.failed",
                      MD_SEV_DEFAULT, "%s (%s:%u): %s", a->host, a->ip, a->port, a->connect_error);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_CONNECT, NULL);
    }
    if (q == MD_SMTP_PHASE_CONNECT) {
        md_report_add(rep, "smtp.probe_ok", MD_SEV_DEFAULT, "connected to %s (%s:%u)", a->host, a->ip, a->port);
        END(MD_SMTP_ACCEPTED, MD_SMTP_PHASE_CONNECT, NULL);
    }
    md_smtp_phase cur = a->sent ? a->sent : MD_SMTP_PHASE_BANNER;
    if (a->data_started && !a->got[MD_SMTP_PHASE_DATA])
        cur = MD_SMTP_PHASE_DATA;
    if (a->protocol_error) {
        md_report_add(rep, "smtp.protocol", MD_SEV_DEFAULT, "%s at %s: %s", a->host,
                      md_smtp_phase_name(a->protocol_phase), a->protocol_what);
        END(MD_SMTP_FAILED, a->protocol_phase, NULL);
    }
    if (a->got[MD_SMTP_PHASE_BANNER] && R[MD_SMTP_PHASE_BANNER].code != 220) {
        reply_finding(rep, "smtp.banner.rejected", "smtp.banner.rejected", "the server refused the session",
                      &R[MD_SMTP_PHASE_BANNER], 0);
        END(by_code(R[MD_SMTP_PHASE_BANNER].code), MD_SMTP_PHASE_BANNER, &R[MD_SMTP_PHASE_BANNER]);
    }
    if (!a->got[MD_SMTP_PHASE_BANNER])
        goto cut;
    if (q == MD_SMTP_PHASE_BANNER)
        goto probe_ok;
    if (!a->got[MD_SMTP_PHASE_EHLO])
        goto cut;
    if (R[MD_SMTP_PHASE_EHLO].code != 250) {
        reply_finding(rep, "smtp.ehlo.rejected", "smtp.ehlo.rejected", "EHLO refused", &R[MD_SMTP_PHASE_EHLO], 0);
        END(by_code(R[MD_SMTP_PHASE_EHLO].code), MD_SMTP_PHASE_EHLO, &R[MD_SMTP_PHASE_EHLO]);
    }
    res->tls.offered = has_cap(a, "STARTTLS") || res->tls.used;
    if (a->tls != MD_SMTP_TLS_OFF && !res->tls.used && !res->tls.offered) {
        if (a->tls == MD_SMTP_TLS_REQUIRED) {
            md_report_add(rep, "tls.not_offered", MD_SEV_DEFAULT,
                          "%s does not offer STARTTLS and TLS is required (--tls opportunistic to send anyway)", a->host);
            END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, NULL);
        }
        md_report_add(rep, "tls.not_offered_opportunistic", MD_SEV_DEFAULT, "%s does not offer STARTTLS", a->host);
    }
    if (a->got[MD_SMTP_PHASE_STARTTLS] && R[MD_SMTP_PHASE_STARTTLS].code != 220) {
        reply_finding(rep, "tls.handshake_failed", "tls.handshake_failed", "STARTTLS refused",
                      &R[MD_SMTP_PHASE_STARTTLS], 0);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, &R[MD_SMTP_PHASE_STARTTLS]);
    }
    if (a->tls_handshake_failed || (a->got[MD_SMTP_PHASE_STARTTLS] && !res->tls.used && !a->tls_cert_refused)) {
        md_report_add(rep, "tls.handshake_failed", MD_SEV_DEFAULT, "the TLS handshake with %s failed", a->host);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, NULL);
    }
    if (res->tls.used) {
        const char *id = "tls.cert_invalid";
        switch (res->tls.verify_code) {
        case X509_V_OK: id = NULL; break;
        case X509_V_ERR_CERT_HAS_EXPIRED: id = "tls.cert_expired"; break;
        case X509_V_ERR_CERT_NOT_YET_VALID: id = "tls.cert_not_yet_valid"; break;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: id = "tls.cert_self_signed"; break;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: id = "tls.cert_unknown_ca"; break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: id = "tls.cert_name_mismatch"; break;
        }
        if (id) {
            md_finding *f = md_report_add(rep, id, a->tls_cert_refused ? MD_SEV_DEFAULT : MD_SEV_WARNING,
                                          "%s: %s (checked name %s)%s", a->host, res->tls.verify_error,
                                          res->tls.peer_name, a->tls_cert_refused ? "" :
                                          req->insecure ? "; continued: --insecure" : "; continued: opportunistic TLS");
            md_finding_add_evidence(f, "subject %s", res->tls.subject);
            md_finding_add_evidence(f, "issuer %s", res->tls.issuer);
            if (a->tls_cert_refused)
                END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, NULL);
            md_report_add(rep, "tls.cert_unverified", MD_SEV_DEFAULT, "the message went over TLS with an unverified certificate");
        } else {
            md_report_add(rep, "tls.ok", MD_SEV_DEFAULT, "%s, %s, certificate for %s verified", res->tls.version,
                          res->tls.cipher, res->tls.peer_name);
            int64_t left = res->tls.not_after - (int64_t)time(NULL);
            if (res->tls.not_after && left < 14 * 86400)
                md_report_add(rep, "tls.cert_expiring", MD_SEV_DEFAULT, "the certificate expires in %lld days",
                              (long long)(left / 86400));
        }
    } else if (a->tls_cert_refused) {
        md_report_add(rep, "tls.cert_invalid", MD_SEV_DEFAULT, "%s: %s", a->host, res->tls.verify_error);
        END(MD_SMTP_FAILED, MD_SMTP_PHASE_STARTTLS, NULL);
    }
    if (q == MD_SMTP_PHASE_EHLO || q == MD_SMTP_PHASE_STARTTLS)
        goto probe_ok;
    if (req->auth_user) {
        if (a->auth_failed) {
            md_smtp_reply *r = &R[MD_SMTP_PHASE_AUTH];
            md_finding *f = md_report_add(rep, "auth.failed", MD_SEV_DEFAULT,
                                          "%s refused the user name or password for %s: %d %s", a->host,
                                          req->auth_user, r->code, r->enhanced);
            md_finding_add_evidence(f, "%d %s %s", r->code, r->enhanced, r->text);
            END(MD_SMTP_FAILED, MD_SMTP_PHASE_AUTH, r);
        }
        if (!a->got[MD_SMTP_PHASE_AUTH]) {
            if (!has_cap(a, "AUTH") && (a->got[MD_SMTP_PHASE_MAIL] || q != MD_SMTP_PHASE_NONE)) {
                md_report_add(rep, "auth.not_offered", MD_SEV_DEFAULT,
                              "%s offers no AUTH%s", a->host, res->tls.used ? "" : " (many servers offer it only after STARTTLS)");
                END(MD_SMTP_FAILED, MD_SMTP_PHASE_AUTH, NULL);
            }
            if (!a->got[MD_SMTP_PHASE_MAIL])
                goto cut;
        } else {
            res->auth_used = 1;
            md_report_add(rep, "auth.ok", MD_SEV_DEFAULT, "authenticated as %s", req->auth_user);
        }
    }
    if (q == MD_SMTP_PHASE_AUTH)
        goto probe_ok;
    if (!a->got[MD_SMTP_PHASE_MAIL] && !R[MD_SMTP_PHASE_MAIL].code)
        goto cut;
    if (R[MD_SMTP_PHASE_MAIL].code / 100 != 2) {
        int c = R[MD_SMTP_PHASE_MAIL].code;
        reply_finding(rep, "smtp.mail.rejected", "smtp.mail.deferred", "sender refused", &R[MD_SMTP_PHASE_MAIL],
                      md_smtp_is_greylisting(c, R[MD_SMTP_PHASE_MAIL].enhanced, R[MD_SMTP_PHASE_MAIL].text));
        END(by_code(c), MD_SMTP_PHASE_MAIL, &R[MD_SMTP_PHASE_MAIL]);
    }
    if (q == MD_SMTP_PHASE_MAIL)
        goto probe_ok;
    if (a->dsn_missing && req->dsn)
        md_report_add(rep, "smtp.dsn_unsupported", MD_SEV_DEFAULT, "%s does not offer DSN: sent without it", a->host);
    else if (req->dsn && has_cap(a, "DSN"))
        res->dsn_used = 1;
    if (!a->got[MD_SMTP_PHASE_RCPT])
        goto cut;
    if (R[MD_SMTP_PHASE_RCPT].code / 100 != 2) {
        md_smtp_reply *r = &R[MD_SMTP_PHASE_RCPT];
        res->greylisted = md_smtp_is_greylisting(r->code, r->enhanced, r->text);
        reply_finding(rep, "smtp.rcpt.rejected", "smtp.rcpt.deferred", req->rcpt_to, r, res->greylisted);
        END(by_code(r->code), MD_SMTP_PHASE_RCPT, r);
    }
    if (q == MD_SMTP_PHASE_RCPT)
        goto probe_ok;
    if (!a->got[MD_SMTP_PHASE_DATA])
        goto cut;
    md_smtp_reply *d = &R[MD_SMTP_PHASE_DATA];
    if (a->got[MD_SMTP_PHASE_DATA] == 2 && d->code / 100 == 2) {
        md_smtp_queue_id(d->text, res->queue_id, sizeof res->queue_id);
        md_report_add(rep, "smtp.accepted", MD_SEV_DEFAULT, "accepted by %s%s%s", a->host,
                      res->queue_id[0] ? " as " : "", res->queue_id);
        END(MD_SMTP_ACCEPTED, MD_SMTP_PHASE_DATA, d);
    }
    if (d->code >= 400 && d->code != 354) {
        res->greylisted = md_smtp_is_greylisting(d->code, d->enhanced, d->text);
        reply_finding(rep, "smtp.data.rejected", "smtp.data.deferred", "message refused", d, res->greylisted);
        END(by_code(d->code), MD_SMTP_PHASE_DATA, d);
    }
    goto cut;

probe_ok:
    md_report_add(rep, "smtp.probe_ok", MD_SEV_DEFAULT, "%s answered up to %s; quit there as asked", a->host,
                  md_smtp_phase_name(q));
    {
        md_smtp_phase p = q;
        while (p > MD_SMTP_PHASE_BANNER && !a->got[p]) p--;
        END(MD_SMTP_ACCEPTED, q, &R[p]);
    }
cut:
    /* The dialogue ended without a verdict: deadline or a dropped line. */
    if (a->got[MD_SMTP_PHASE_QUIT] || (a->sent && R[a->sent].code == 421)) {
        md_smtp_reply *r = &R[a->sent];
        if (r->code == 421) {
            reply_finding(rep, "smtp.banner.rejected", "smtp.banner.rejected", "the server closed the session", r, 0);
            END(MD_SMTP_DEFERRED, cur, r);
        }
    }
    if (timed_out) {
        md_report_add(rep, "smtp.timeout", MD_SEV_DEFAULT, "%s stopped answering at %s: the deadline passed",
                      a->host, md_smtp_phase_name(cur));
    } else {
        md_report_add(rep, "smtp.dropped", MD_SEV_DEFAULT, "%s closed the connection at %s", a->host,
                      md_smtp_phase_name(cur));
    }
    END(MD_SMTP_FAILED, cur, NULL);
#undef END
}

/* One address: connect, run an engine, judge. */
static md_smtp_outcome attempt(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res,
                               const char *host, const char *ip, unsigned port, md_smtp_tls tls,
                               int64_t t0, int64_t deadline, md_report *rep)
{
    att *a = md_xcalloc(1, sizeof *a);
    a->ctx = ctx;
    a->req = req;
    a->res = res;
    a->tls = tls;
    a->host = host;
    snprintf(a->ip, sizeof a->ip, "%s", ip);
    a->port = port;
    a->t0 = t0;
    a->deadline = deadline;
    a->esmtp_fd = -1;
    memset(&res->tls, 0, sizeof res->tls);
    snprintf(res->host, sizeof res->host, "%s", host);
    snprintf(res->address, sizeof res->address, "%s", ip);
    res->port = port;

    int64_t left = deadline - md_now_ms();
    int cto = req->connect_timeout_ms < left ? req->connect_timeout_ms : (int)(left > 0 ? left : 1);
    int fd = tcp_connect(a, cto);
    int timed_out = 0;
    if (fd >= 0) {
        if (req->quit_after != MD_SMTP_PHASE_NONE) {
            run_probe(a, fd);
            close(fd);
            timed_out = md_now_ms() >= deadline || a->last_activity == 0;
        } else {
            /* libESMTP connects again, to the address we just reached: that
             * connect cannot hang, ours had the deadline. */
            close(fd);
            watchdog wd;
            int have_wd = wd_start(&wd, deadline) == 0;
            run_esmtp(a, have_wd ? &wd : NULL);
            if (have_wd) {
                timed_out = wd_fired(&wd);
                wd_stop(&wd);
            }
            if (!timed_out && a->last_activity &&
                md_now_ms() - a->last_activity >= req->phase_timeout_ms - 100)
                timed_out = 1;
            if (!timed_out && !a->last_activity && md_now_ms() - t0 >= req->phase_timeout_ms - 100)
                timed_out = 1;
        }
    }
    if (a->partlen[0] > 0 && !a->protocol_error) {
        char shown[REPLY_LINE_MAX + 32];
        int n = snprintf(shown, sizeof shown, "%.*s (incomplete line)", (int)a->partlen[0], a->part[0]);
        transcript_add(res, rel_ms(a), '<', shown, (size_t)n);
    }
    md_smtp_outcome o = judge(a, timed_out, rep);
    free(a);
    return o;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                      */

typedef struct mx_wait { md_report *rep; } mx_wait;

static void mx_done(void *arg, md_report *rep)
{
    ((mx_wait *)arg)->rep = rep;
}

static void add_finding_copy(md_report *dst, const md_finding *f)
{
    md_finding *n = md_report_add(dst, f->id, f->severity, "%s", f->summary);
    for (size_t i = 0; i < f->nevidence; i++)
        md_finding_add_evidence(n, "%s", f->evidence[i]);
}

md_status md_smtp_send(md_smtp_ctx *ctx, const md_smtp_request *req_in, md_smtp_result *res,
                       md_error *err)
{
    memset(res, 0, sizeof *res);
    md_smtp_request req = *req_in;
    int64_t t0 = md_now_ms();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    res->started_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    res->findings = md_report_new("maildiag-send", req.rcpt_to ? req.rcpt_to : "");
    res->outcome = MD_SMTP_FAILED;
    if (req.message_id)
        snprintf(res->message_id, sizeof res->message_id, "%s", req.message_id);
    if (req.timeout_ms <= 0) req.timeout_ms = 60000;
    if (req.connect_timeout_ms <= 0) req.connect_timeout_ms = req.timeout_ms < 10000 ? req.timeout_ms : 10000;
    if (req.phase_timeout_ms <= 0) req.phase_timeout_ms = req.timeout_ms < 30000 ? req.timeout_ms : 30000;
    if (req.mail_from == NULL) req.mail_from = "";
    if (req.rcpt_to == NULL || strchr(req.rcpt_to, '@') == NULL || strpbrk(req.rcpt_to, "\r\n<> ") ||
        strpbrk(req.mail_from, "\r\n<> "))
        return md_error_set(err, MD_CONFIG, "smtp.request", "the envelope addresses must be plain addresses");
    if (req.quit_after == MD_SMTP_PHASE_NONE && req.data == NULL)
        return md_error_set(err, MD_CONFIG, "smtp.request", "no message to send");
    if (req.auth_user && (strpbrk(req.auth_user, "\r\n") || !req.auth_password || strpbrk(req.auth_password, "\r\n")))
        return md_error_set(err, MD_CONFIG, "smtp.request", "AUTH needs a user and a password without line breaks");
    int64_t deadline = t0 + req.timeout_ms;

    if (req.server) {
        snprintf(res->route, sizeof res->route, "relay");
        if (req.server[0] == '[' || strchr(req.server, ':') != strrchr(req.server, ':'))
            return md_error_set(err, MD_CONFIG, "smtp.server",
                                "--server: IPv6 literals are not supported (libESMTP cannot connect to them): use a host name");
        char host[256];
        unsigned port = 587;
        const char *colon = strchr(req.server, ':');
        size_t hl = colon ? (size_t)(colon - req.server) : strlen(req.server);
        if (hl == 0 || hl >= sizeof host)
            return md_error_set(err, MD_CONFIG, "smtp.server", "--server: no host name");
        memcpy(host, req.server, hl);
        host[hl] = '\0';
        if (colon) {
            char *end;
            unsigned long p = strtoul(colon + 1, &end, 10);
            if (*end || p == 0 || p > 65535)
                return md_error_set(err, MD_CONFIG, "smtp.server", "--server: bad port '%s'", colon + 1);
            port = (unsigned)p;
        }
        md_smtp_tls tls = req.tls ? req.tls : port == 587 ? MD_SMTP_TLS_REQUIRED : MD_SMTP_TLS_OPPORTUNISTIC;
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
        int gr = getaddrinfo(host, NULL, &hints, &ai);
        if (gr != 0 || ai == NULL) {
            md_report_add(res->findings, "smtp.resolve.failed", MD_SEV_DEFAULT, "%s: %s", host,
                          gr ? gai_strerror(gr) : "no IPv4 address");
            res->phase = MD_SMTP_PHASE_RESOLVE;
            snprintf(res->host, sizeof res->host, "%s", host);
            res->outcome = gr == EAI_AGAIN ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
            res->elapsed_ms = md_now_ms() - t0;
            return MD_OK;
        }
        for (struct addrinfo *p = ai; p; p = p->ai_next) {
            char ip[64];
            inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, ip, sizeof ip);
            res->outcome = attempt(ctx, &req, res, host, ip, port, tls, t0, deadline, res->findings);
            if (res->outcome != MD_SMTP_FAILED || res->phase != MD_SMTP_PHASE_CONNECT || md_now_ms() >= deadline)
                break;
        }
        freeaddrinfo(ai);
        res->elapsed_ms = md_now_ms() - t0;
        return MD_OK;
    }

    /* Direct: the MX route of the recipient's domain. */
    snprintf(res->route, sizeof res->route, "direct");
    if (req.dns == NULL)
        return md_error_set(err, MD_CONFIG, "smtp.request", "the direct route needs a resolver");
    const char *domain = strrchr(req.rcpt_to, '@') + 1;
    mx_wait w = { NULL };
    md_mx_check(req.dns, domain, NULL, mx_done, &w);
    while (w.rep == NULL && md_now_ms() < deadline)
        md_dns_step(req.dns, 100);
    res->phase = MD_SMTP_PHASE_RESOLVE;
    if (w.rep == NULL) {
        md_report_add(res->findings, "smtp.no_route", MD_SEV_WARNING, "the MX lookup for %s did not finish in time", domain);
        res->outcome = MD_SMTP_DEFERRED;
        res->elapsed_ms = md_now_ms() - t0;
        return MD_OK;
    }
    json_t *j = md_report_to_json(w.rep);
    json_t *mx = json_object_get(j, "mx");
    unsigned port = req.direct_port ? req.direct_port : 25;
    md_smtp_tls tls = req.tls ? req.tls : MD_SMTP_TLS_OPPORTUNISTIC;
    size_t tried = 0, i;
    json_t *h;
    md_report *last = NULL;
    int temporary = md_report_has(w.rep, "dns.temporary");
    res->outcome = temporary ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
    json_array_foreach(mx, i, h) {
        const char *name = json_string_value(json_object_get(h, "host"));
        json_t *addrs = json_object_get(h, "addresses"), *ad;
        size_t k;
        if (name == NULL || strcmp(name, ".") == 0)
            continue;
        json_array_foreach(addrs, k, ad) {
            const char *ip = json_string_value(ad);
            if (ip == NULL)
                continue;
            if (strchr(ip, ':')) {
                md_report_add_detail(res->findings, "%s %s skipped: libESMTP cannot connect to IPv6 literals", name, ip);
                continue;
            }
            if (md_now_ms() >= deadline)
                break;
            tried++;
            md_report *tmp = md_report_new("maildiag-send", req.rcpt_to);
            res->outcome = attempt(ctx, &req, res, name, ip, port, tls, t0, deadline, tmp);
            /* 4xx or no conversation: next address; 5xx (and a refused
             * password, which the next host would refuse too): the answer. */
            int next = res->outcome == MD_SMTP_DEFERRED ||
                       (res->outcome == MD_SMTP_FAILED && res->phase != MD_SMTP_PHASE_AUTH);
            if (next) {
                md_finding *f = md_report_add(res->findings, "smtp.host_failed", MD_SEV_DEFAULT, "%s (%s): %s at %s",
                                              name, ip, md_smtp_outcome_name(res->outcome), md_smtp_phase_name(res->phase));
                for (size_t x = 0; x < md_report_count(tmp); x++)
                    md_finding_add_evidence(f, "%s: %s", md_report_get(tmp, x)->id, md_report_get(tmp, x)->summary);
                md_report_free(last);
                last = tmp;
                continue;
            }
            for (size_t x = 0; x < md_report_count(tmp); x++)
                add_finding_copy(res->findings, md_report_get(tmp, x));
            md_report_free(tmp);
            goto out;
        }
    }
    /* No host gave an answer: the last one's findings say why. */
    if (last)
        for (size_t x = 0; x < md_report_count(last); x++)
            add_finding_copy(res->findings, md_report_get(last, x));
    if (tried == 0) {
        for (size_t x = 0; x < md_report_count(w.rep); x++) {
            const md_finding *f = md_report_get(w.rep, x);
            if (f->severity != MD_SEV_OK)
                add_finding_copy(res->findings, f);
        }
        md_report_add(res->findings, "smtp.no_route", MD_SEV_DEFAULT, "no MX host of %s has an IPv4 address to try", domain);
        res->phase = MD_SMTP_PHASE_RESOLVE;
    }
out:
    md_report_free(last);
    json_decref(j);
    md_report_free(w.rep);
    res->elapsed_ms = md_now_ms() - t0;
    return MD_OK;
}

void md_smtp_result_clear(md_smtp_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->ntranscript; i++)
        free(res->transcript[i].text);
    free(res->transcript);
    md_report_free(res->findings);
    memset(res, 0, sizeof *res);
}

json_t *md_smtp_result_json(const md_smtp_result *res, const char *to)
{
    json_t *o = json_object();
    json_object_set_new(o, "to", json_string(to ? to : ""));
    json_object_set_new(o, "route", json_string(res->route));
    json_object_set_new(o, "result", json_string(md_smtp_outcome_name(res->outcome)));
    json_object_set_new(o, "phase", json_string(md_smtp_phase_name(res->phase)));
    json_t *r = json_object();
    json_object_set_new(r, "code", res->reply.code ? json_integer(res->reply.code) : json_null());
    json_object_set_new(r, "enhanced", res->reply.enhanced[0] ? json_string(res->reply.enhanced) : json_null());
    json_object_set_new(r, "text", json_string(res->reply.text));
    const char *words = md_smtp_enhanced_explain(res->reply.enhanced);
    if (*words)
        json_object_set_new(r, "explanation", json_string(words));
    json_object_set_new(o, "reply", r);
    json_object_set_new(o, "queue_id", res->queue_id[0] ? json_string(res->queue_id) : json_null());
    json_object_set_new(o, "message_id", res->message_id[0] ? json_string(res->message_id) : json_null());
    json_object_set_new(o, "host", json_string(res->host));
    json_object_set_new(o, "address", json_string(res->address));
    json_object_set_new(o, "port", json_integer(res->port));
    json_object_set_new(o, "elapsed_ms", json_integer(res->elapsed_ms));
    {
        char buf[48];
        time_t st = (time_t)(res->started_ms / 1000);
        struct tm tm;
        gmtime_r(&st, &tm);
        size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(res->started_ms % 1000));
        json_object_set_new(o, "started", json_string(buf));
    }
    if (res->greylisted)
        json_object_set_new(o, "greylisted", json_true());
    json_t *t = json_object();
    const md_smtp_tls_info *ti = &res->tls;
    json_object_set_new(t, "used", json_boolean(ti->used));
    json_object_set_new(t, "offered", json_boolean(ti->offered));
    if (ti->used) {
        json_object_set_new(t, "version", json_string(ti->version));
        json_object_set_new(t, "cipher", json_string(ti->cipher));
        json_object_set_new(t, "bits", json_integer(ti->bits));
        json_object_set_new(t, "verified", json_boolean(ti->verified));
        json_object_set_new(t, "peer_name", json_string(ti->peer_name));
        json_object_set_new(t, "subject", json_string(ti->subject));
        json_object_set_new(t, "issuer", json_string(ti->issuer));
        if (ti->not_after) {
            char buf[40];
            time_t na = (time_t)ti->not_after;
            struct tm tm;
            gmtime_r(&na, &tm);
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_object_set_new(t, "not_after", json_string(buf));
        }
        if (!ti->verified)
            json_object_set_new(t, "verify_error", json_string(ti->verify_error));
    }
    json_object_set_new(o, "tls", t);
    json_t *tr = json_array();
    for (size_t i = 0; i < res->ntranscript; i++) {
        json_t *l = json_object();
        json_object_set_new(l, "ms", json_integer(res->transcript[i].ms));
        char d[2] = { res->transcript[i].dir, 0 };
        json_object_set_new(l, "dir", json_string(d));
        json_object_set_new(l, "text", json_string(res->transcript[i].text));
        json_array_append_new(tr, l);
    }
    json_object_set_new(o, "transcript", tr);
    return o;
}
