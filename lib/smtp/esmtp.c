/*
 * lib/smtp libESMTP engine: one libESMTP session, run in a forked child.
 *
 * Why a child.  libESMTP 1.1.0 has no connect timeout, its per-read timeouts
 * never fire against a server that trickles one byte a second, and its socket
 * is its own: nothing outside can cut a session short without guessing which
 * descriptor is libESMTP's.  The parent forks a child per session and kills
 * it (SIGKILL) when the connect deadline (until the child reports the
 * connection) or the overall deadline passes.  The server sees one connection
 * per send.  A fault inside libESMTP (a crash, an abort) ends the child, not
 * the program, and is judged smtp.engine_failed, never "accepted".  A fork
 * costs well under a millisecond next to a session.
 *
 * What crosses the pipe.  The child streams length-framed events as they
 * happen, so that after a kill the parent still holds the evidence up to
 * that point: the bytes libESMTP reads and is about to write (its monitor
 * callback), the connection, notes, TLS details, libESMTP's per-recipient,
 * reverse-path and message statuses (from its event callback, and again at
 * the end), what the child decided, and smtp_errno().  Frame: type (1 byte),
 * payload length (4), time in ms since the send started (8), payload.  The
 * parent runs the same observer over the same bytes, so it reaches the same
 * state as the child.
 *
 * What the child decides.  libESMTP calls its monitor callback with the
 * bytes it is about to write before writing them (seen against Postfix: a
 * child that exits there leaves no trace of the command in the server's
 * log).  The child's observer applies the gate there (smtp_gate): with a
 * user configured, MAIL FROM never goes out without a 235 to AUTH, and no
 * second mechanism is tried after a refusal; libESMTP itself goes on
 * unauthenticated after a 535, after a 250 to AUTH, and when the server
 * offers no mechanism it has.  A protocol error read from the server ends
 * the child at once, before libESMTP acts on the reply.  Ending means
 * exiting: the kernel closes the connection.
 *
 * CHUNKING.  Against a server that offers CHUNKING (Postfix 3.7 does),
 * libESMTP sends RCPT and the body with BDAT and shows neither the commands
 * nor their replies nor QUIT to the monitor.  The observer then stops matching
 * replies (a->blind) and the statuses carry the verdict; the transcript
 * shows them as notes.  With BDAT, libESMTP's message status is the reply to
 * the last chunk, so the size is declared with SIZE= on MAIL FROM (when
 * offered): a message over the server's limit is refused there, 552 5.3.4,
 * instead of as "discarded after an earlier error" at the last chunk.
 */
#include "config.h"

/* libESMTP's headers need this order. */
#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "smtp-int.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

enum {
    F_CONNECT = 'c',              /* libESMTP connected */
    F_READ = 'r',                 /* bytes from the server */
    F_WRITE = 'w',                /* bytes about to be written */
    F_NOTE = 'n',                 /* a note for the transcript */
    F_TLS = 't',                  /* md_smtp_tls_info */
    F_STATUS = 's',               /* phase (1 byte), code (4), text */
    F_BODY = 'b',                 /* libESMTP is reading the message */
    F_FLAGS = 'f',                /* child_flags */
    F_END = 'e'                   /* smtp_errno (4), its words; the session returned */
};
#define FRAME_HEAD 13
#define FRAME_CHUNK 16384         /* bigger monitor chunks travel in several frames */
#define CHILD_STOPPED 10          /* exit code: the child ended the session on purpose */

typedef struct child_flags {
    int tls_cert_refused;
    int tls_not_offered;
    int dsn_missing;
    int stop;
    int protocol_phase;
    char stop_what[200];
} child_flags;

/* ------------------------------------------------------------------------ */
/* The child                                                                 */

static void emit(smtp_att *a, int type, int64_t ms, const void *p, size_t n)
{
    unsigned char head[FRAME_HEAD];
    uint32_t len = (uint32_t)n;
    head[0] = (unsigned char)type;
    memcpy(head + 1, &len, 4);
    memcpy(head + 5, &ms, 8);
    /* One write per frame: each write wakes the parent. */
    struct iovec iov[2] = { { head, sizeof head }, { (void *)p, n } };
    int cnt = n ? 2 : 1;
    struct iovec *v = iov;
    while (cnt > 0) {
        ssize_t w = writev(a->child_fd, v, cnt);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(1);   /* the parent is gone */
        while (cnt > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
}

void smtp_child_note(smtp_att *a, int64_t ms, const char *text, size_t len)
{
    emit(a, F_NOTE, ms, text, len);
}

static void emit_flags(smtp_att *a)
{
    child_flags f;
    memset(&f, 0, sizeof f);
    f.tls_cert_refused = a->tls_cert_refused;
    f.tls_not_offered = a->tls_not_offered;
    f.dsn_missing = a->dsn_missing;
    f.stop = a->stop;
    f.protocol_phase = a->protocol_phase;
    snprintf(f.stop_what, sizeof f.stop_what, "%s", a->stop_what);
    emit(a, F_FLAGS, smtp_rel_ms(a), &f, sizeof f);
}

static void emit_chunked(smtp_att *a, int type, int64_t ms, const char *buf, size_t len)
{
    do {
        size_t n = len > FRAME_CHUNK ? FRAME_CHUNK : len;
        emit(a, type, ms, buf, n);
        buf += n;
        len -= n;
    } while (len > 0);
}

static void emit_status(smtp_att *a, md_smtp_phase p, const smtp_status_t *st)
{
    if (st == NULL || st->code == 0)
        return;
    char buf[600];
    buf[0] = (char)p;
    int32_t code = st->code;
    memcpy(buf + 1, &code, 4);
    size_t n = 5;
    /* libESMTP takes the enhanced code out of the text when the server
     * announced ENHANCEDSTATUSCODES: put it back for the one parser. */
    if (st->enh_class)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%d.%d.%d ", st->enh_class, st->enh_subject, st->enh_detail);
    if (st->text && n < sizeof buf) {
        /* A multi-line reply arrives as one text, a line each: take the
         * last, as the observer does (Exim's verdict on BDAT LAST is
         * "250-0 byte chunk, total N" then "250 OK id=..."). */
        const char *t = st->text;
        for (const char *nl; (nl = strchr(t, '\n')) != NULL && nl[1] != '\0' && nl[1] != '\r'; )
            t = nl + 1;
        size_t tl = strcspn(t, "\r\n");
        if (tl > sizeof buf - n)
            tl = sizeof buf - n;
        memcpy(buf + n, t, tl);
        n += tl;
    }
    emit(a, F_STATUS, smtp_rel_ms(a), buf, n);
}

static void child_stop(smtp_att *a) __attribute__((noreturn));
static void child_stop(smtp_att *a)
{
    emit_flags(a);
    _exit(CHILD_STOPPED);
}

/* libESMTP went on without showing RCPT (CHUNKING): from here on, replies
 * are not matched to commands. */
static void progress(smtp_att *a, md_smtp_phase p)
{
    if (a->blind || a->sent >= MD_SMTP_PHASE_RCPT)
        return;
    a->blind = 1;
    a->sent = p;
    if (!a->quiet) {
        static const char why[] = "libESMTP shows neither RCPT nor BDAT nor their replies (the server offers "
                                  "CHUNKING): the 'status' lines below are libESMTP's statuses";
        smtp_transcript_add(a->res, smtp_rel_ms(a), '*', why, sizeof why - 1);
    }
}

/*
 * libESMTP 1.1.0 stalls after STARTTLS with TLS 1.3: the server's
 * NewSessionTicket records arrive right after the handshake; when they are
 * readable by the time libESMTP polls, it handles "readable" before flushing
 * its EHLO and blocks in SSL_read waiting for a reply to a command it never
 * sent.  Right after the handshake, wait a little (3 round trips of the
 * STARTTLS exchange, 20..500 ms) for those records and let OpenSSL consume
 * them with SSL_peek, which leaves any application data in place.
 */
static int drained;

static void drain_tickets(smtp_att *a, SSL *ssl)
{
    if (drained || SSL_version(ssl) != TLS1_3_VERSION)
        return;
    drained = 1;
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
    smtp_att *a = arg;
    if (len <= 0 || writing == SMTP_CB_HEADERS)
        return;
    int64_t ms = smtp_rel_ms(a);
    int w = writing == SMTP_CB_WRITING;
    smtp_feed(a, w, buf, (size_t)len, ms);
    if (w && a->stop != STOP_NONE)
        child_stop(a);   /* before libESMTP writes a byte of it */
    emit_chunked(a, w ? F_WRITE : F_READ, ms, buf, (size_t)len);
    if (a->stop == STOP_PROTOCOL)
        child_stop(a);   /* before libESMTP acts on it */
}

static void tls_sent(smtp_att *a)
{
    emit(a, F_TLS, smtp_rel_ms(a), &a->res->tls, sizeof a->res->tls);
}

static void event_cb(smtp_session_t session, int event, void *arg, ...)
{
    (void)session;
    smtp_att *a = arg;
    va_list ap;
    va_start(ap, arg);
    switch (event) {
    case SMTP_EV_CONNECT:
        a->connected = 1;
        emit(a, F_CONNECT, smtp_rel_ms(a), "", 0);
        break;
    case SMTP_EV_MAILSTATUS: {
        (void)va_arg(ap, const char *);
        smtp_message_t m = va_arg(ap, smtp_message_t);
        emit_status(a, MD_SMTP_PHASE_MAIL, smtp_reverse_path_status(m));
        break;
    }
    case SMTP_EV_RCPTSTATUS: {
        (void)va_arg(ap, const char *);
        smtp_recipient_t r = va_arg(ap, smtp_recipient_t);
        progress(a, MD_SMTP_PHASE_RCPT);
        emit_status(a, MD_SMTP_PHASE_RCPT, smtp_recipient_status(r));
        break;
    }
    case SMTP_EV_MESSAGEDATA: {
        static int body_seen;   /* one session per child */
        if (!body_seen) {
            body_seen = 1;
            progress(a, MD_SMTP_PHASE_DATA);
            emit(a, F_BODY, smtp_rel_ms(a), "", 0);
        }
        break;
    }
    case SMTP_EV_MESSAGESENT: {
        smtp_message_t m = va_arg(ap, smtp_message_t);
        emit_status(a, MD_SMTP_PHASE_DATA, smtp_message_transfer_status(m));
        break;
    }
    case SMTP_EV_STARTTLS_OK: {
        SSL *ssl = va_arg(ap, SSL *);
        smtp_tls_record(a, ssl);
        drain_tickets(a, ssl);
        tls_sent(a);
        if (!smtp_tls_policy_accepts(a)) {
            /* libESMTP asked about the certificate in the events below;
             * this covers the name, which OpenSSL checked against the MX
             * name while libESMTP compares with the numeric address. */
            a->tls_cert_refused = 1;
            smtp_stop_set(a, STOP_CERT, "the certificate does not verify");
            child_stop(a);
        }
        break;
    }
    case SMTP_EV_INVALID_PEER_CERTIFICATE: {
        long vr = va_arg(ap, long);
        int *ok = va_arg(ap, int *);
        SSL *ssl = va_arg(ap, SSL *);
        smtp_tls_record(a, ssl);
        drain_tickets(a, ssl);   /* libESMTP's QUIT after a refusal stalls the same way */
        a->res->tls.verify_code = vr;
        a->res->tls.verified = 0;
        snprintf(a->res->tls.verify_error, sizeof a->res->tls.verify_error, "%s",
                 X509_verify_cert_error_string(vr));
        tls_sent(a);
        *ok = smtp_tls_policy_accepts(a);
        if (!*ok) {
            a->tls_cert_refused = 1;
            emit_flags(a);
        }
        /* libESMTP leaves the verification error in OpenSSL's error queue;
         * its next SSL_write then reads as failed and the session stalls. */
        ERR_clear_error();
        break;
    }
    case SMTP_EV_NO_PEER_CERTIFICATE: {
        int *ok = va_arg(ap, int *);
        a->res->tls.verified = 0;
        snprintf(a->res->tls.verify_error, sizeof a->res->tls.verify_error, "no certificate");
        tls_sent(a);
        *ok = smtp_tls_policy_accepts(a);
        if (!*ok) {
            a->tls_cert_refused = 1;
            emit_flags(a);
        }
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
        smtp_note(a, "weak cipher: %d bits", bits);
        *ok = 1;
        break;
    }
    case SMTP_EV_EXTNA_DSN: {
        int *quit = va_arg(ap, int *);
        *quit = 0;
        a->dsn_missing = 1;
        emit_flags(a);
        break;
    }
    case SMTP_EV_EXTNA_STARTTLS:
        a->tls_not_offered = 1;
        emit_flags(a);
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
    smtp_att *a = arg;
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
    smtp_att *a = arg;
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

static long phase_ms(const smtp_att *a)
{
    int64_t left = a->deadline - md_now_ms();
    long v = a->req->phase_timeout_ms < left ? a->req->phase_timeout_ms : (long)left;
    return v < 1000 ? 1000 : v;   /* libESMTP's floor, even with the override */
}

static void child_main(smtp_att *a, pid_t parent) __attribute__((noreturn));
static void child_main(smtp_att *a, pid_t parent)
{
    /* Never outlive the parent (it would wait on nobody's deadline). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
#if defined(HAVE_VALGRIND_VALGRIND_H) && defined(VALGRIND_CLO_CHANGE)
    /* Under valgrind, this process is a copy of the parent that ends with
     * _exit: the blocks it holds at the end are the parent's (a caller's
     * open SQLite page cache reads as "possibly lost"), not leaks.
     * Memory errors are still reported. */
    VALGRIND_CLO_CHANGE("--leak-check=no");
#endif
    const md_smtp_request *req = a->req;
    smtp_session_t s = smtp_create_session();
    auth_context_t authctx = NULL;
    char hp[96];
    snprintf(hp, sizeof hp, "%s:%u", a->ip, a->port);
    smtp_set_server(s, hp);
    smtp_set_hostname(s, req->helo);
    static const int timeouts[] = { Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER, Timeout_DATA2 };
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
        smtp_set_timeout(s, timeouts[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, phase_ms(a));
    smtp_set_monitorcb(s, monitor_cb, a, 0);
    smtp_set_eventcb(s, event_cb, a);
    smtp_starttls_enable(s, a->tls == MD_SMTP_TLS_OFF ? Starttls_DISABLED
                          : a->tls == MD_SMTP_TLS_REQUIRED ? Starttls_REQUIRED : Starttls_ENABLED);
    if (a->tls != MD_SMTP_TLS_OFF) {
        SSL_CTX *sc = smtp_tls_ctx(a->ctx);   /* never libESMTP's own (see tls.c) */
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
    smtp_size_set_estimate(m, (unsigned long)req->len);
    smtp_recipient_t rc = smtp_add_recipient(m, req->rcpt_to);
    if (req->dsn) {
        smtp_dsn_set_ret(m, Ret_HDRS);
        if (req->dsn_envid)
            smtp_dsn_set_envid(m, req->dsn_envid);   /* libESMTP encodes it as xtext */
        smtp_dsn_set_notify(rc, Notify_SUCCESS | Notify_FAILURE | Notify_DELAY);
    }
    smtp_tls_begin(a);
    smtp_start_session(s);
    smtp_tls_end();
    int32_t e = smtp_errno();
    emit_status(a, MD_SMTP_PHASE_MAIL, smtp_reverse_path_status(m));
    emit_status(a, MD_SMTP_PHASE_RCPT, smtp_recipient_status(rc));
    emit_status(a, MD_SMTP_PHASE_DATA, smtp_message_transfer_status(m));
    emit_flags(a);
    char end[160];
    memcpy(end, &e, 4);
    if (smtp_strerror(e, end + 4, sizeof end - 4) == NULL)
        end[4] = '\0';
    emit(a, F_END, smtp_rel_ms(a), end, 4 + strlen(end + 4));
    smtp_destroy_session(s);
    if (authctx)
        auth_destroy_context(authctx);
    _exit(0);
}

/* ------------------------------------------------------------------------ */
/* The parent                                                                */

static void take_status(smtp_att *a, md_smtp_phase p, int code, const char *text, size_t len, int64_t ms)
{
    if (p != MD_SMTP_PHASE_MAIL && p != MD_SMTP_PHASE_RCPT && p != MD_SMTP_PHASE_DATA)
        return;
    md_smtp_reply r;
    smtp_reply_set(&r, code, text, len);
    int seen = a->got[p] && a->rep[p].code == r.code && strcmp(a->rep[p].text, r.text) == 0;
    a->rep[p] = r;
    if (p == MD_SMTP_PHASE_DATA) {
        a->got[p] = 2;
        if (!a->data_final)   /* with CHUNKING the status is all there is to see */
            a->res->final_reply_ms = a->res->started_ms + ms;
        a->data_final = 1;
    } else {
        a->got[p] = 1;
    }
    if (a->blind && !seen) {
        char line[700];
        int n = snprintf(line, sizeof line, "status %s: %d%s%s %s", p == MD_SMTP_PHASE_MAIL ? "MAIL FROM" :
                         p == MD_SMTP_PHASE_RCPT ? "RCPT TO" : "message", r.code, r.enhanced[0] ? " " : "",
                         r.enhanced, r.text);
        smtp_transcript_add(a->res, ms, '*', line, (size_t)n);
    }
}

static void take_frame(smtp_att *a, int type, int64_t ms, const char *p, size_t n)
{
    switch (type) {
    case F_CONNECT: {
        char line[400];
        int k = snprintf(line, sizeof line, "connected to %s:%u (%s)", a->ip, a->port, a->host);
        a->connected = 1;
        smtp_transcript_add(a->res, ms, '*', line, (size_t)k);
        break;
    }
    case F_READ:
    case F_WRITE:
        smtp_feed(a, type == F_WRITE, p, n, ms);
        break;
    case F_NOTE:
        smtp_transcript_add(a->res, ms, '*', p, n);
        break;
    case F_TLS:
        if (n == sizeof a->res->tls)
            memcpy(&a->res->tls, p, n);
        break;
    case F_STATUS:
        if (n >= 5) {
            int32_t code;
            memcpy(&code, p + 1, 4);
            take_status(a, (md_smtp_phase)(unsigned char)p[0], code, p + 5, n - 5, ms);
        }
        break;
    case F_BODY:
        progress(a, MD_SMTP_PHASE_DATA);
        break;
    case F_FLAGS:
        if (n == sizeof(child_flags)) {
            child_flags f;
            memcpy(&f, p, n);
            a->tls_cert_refused |= f.tls_cert_refused;
            a->tls_not_offered |= f.tls_not_offered;
            a->dsn_missing |= f.dsn_missing;
            if (f.stop != STOP_NONE && a->stop == STOP_NONE) {
                a->stop = (smtp_stop)f.stop;
                a->protocol_phase = (md_smtp_phase)f.protocol_phase;
                snprintf(a->stop_what, sizeof a->stop_what, "%s", f.stop_what);
                if (f.stop != STOP_PROTOCOL) {
                    char line[300];
                    int k = snprintf(line, sizeof line, "maildiag ends the session: %s", f.stop_what);
                    smtp_transcript_add(a->res, ms, '*', line, (size_t)k);
                }
            }
        }
        break;
    case F_END:
        if (n >= 4) {
            int32_t e;
            memcpy(&e, p, 4);
            a->esmtp_errno = e;
            if (e != 0 && n > 4)
                snprintf(a->engine_error, sizeof a->engine_error, "%.*s", (int)(n - 4 > 150 ? 150 : n - 4), p + 4);
        }
        break;
    }
}

/* Reads what the child sent; returns 0 at the end of the pipe, 1 otherwise. */
static int take_input(smtp_att *a, int fd, md_buf *in)
{
    char *room = md_buf_reserve(in, 65536);
    ssize_t r = read(fd, room, in->cap - in->len);
    if (r < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (r == 0)
        return 0;
    in->len += (size_t)r;
    size_t off = 0;
    while (in->len - off >= FRAME_HEAD) {
        uint32_t n;
        int64_t ms;
        memcpy(&n, in->data + off + 1, 4);
        memcpy(&ms, in->data + off + 5, 8);
        if (n > FRAME_CHUNK * 2) {   /* cannot happen; never trust a length blindly */
            a->engine_failed = 1;
            snprintf(a->engine_error, sizeof a->engine_error, "a malformed event from the engine");
            return 0;
        }
        if (in->len - off < FRAME_HEAD + n)
            break;
        take_frame(a, (unsigned char)in->data[off], ms, in->data + off + FRAME_HEAD, n);
        off += FRAME_HEAD + n;
    }
    memmove(in->data, in->data + off, in->len - off);
    in->len -= off;
    return 1;
}

void smtp_esmtp_run(smtp_att *a)
{
    const md_smtp_request *req = a->req;
    if (a->tls != MD_SMTP_TLS_OFF)
        smtp_tls_load_ca(a->ctx);   /* once, in the parent: every child shares it */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        a->engine_failed = 1;
        snprintf(a->engine_error, sizeof a->engine_error, "pipe: %s", strerror(errno));
        return;
    }
    pid_t parent = getpid();
    int64_t started = md_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        a->engine_failed = 1;
        snprintf(a->engine_error, sizeof a->engine_error, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        a->child_fd = p[1];
        a->quiet = 1;
        child_main(a, parent);
    }
    close(p[1]);

    int64_t left = a->deadline - started;
    int64_t connect_by = started + (req->connect_timeout_ms < left ? req->connect_timeout_ms : left);
    md_buf in = { 0 };
    int killed = 0;
    for (;;) {
        int64_t now = md_now_ms();
        int64_t limit = a->connected ? a->deadline : (connect_by < a->deadline ? connect_by : a->deadline);
        if (!killed && now >= limit) {
            kill(pid, SIGKILL);
            killed = 1;
            if (!a->connected) {
                a->connect_failed = a->connect_timeout = 1;
                snprintf(a->connect_error, sizeof a->connect_error, "no answer within %lld ms",
                         (long long)(now - started));
                smtp_note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
            } else {
                a->timed_out = 1;
                smtp_note(a, "no reply before the deadline: maildiag ends the session");
            }
        }
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        int wait = killed ? 2000 : (int)(limit - now);
        int pr = poll(&pf, 1, wait < 0 ? 0 : wait);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0 && !take_input(a, p[0], &in))
            break;
        if (pr == 0 && killed)
            break;   /* the write end outlived the child (inherited elsewhere): stop waiting */
    }
    md_buf_free(&in);
    close(p[0]);

    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (killed)
        return;
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == CHILD_STOPPED)) {
        if (!a->connected && !a->connect_failed) {
            a->connect_failed = 1;
            int e = a->esmtp_errno;
            snprintf(a->connect_error, sizeof a->connect_error, "%s",
                     e < 0 ? strerror(-e) : a->engine_error[0] ? a->engine_error : "no connection");
            smtp_note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
        }
        /* libESMTP gave up waiting for a reply (its own per-reply timeout). */
        if (!a->timed_out && a->connected && a->stop == STOP_NONE &&
            md_now_ms() - (a->last_activity ? a->last_activity : started) >= req->phase_timeout_ms - 100)
            a->timed_out = 1;
        return;
    }
    a->engine_failed = 1;
    if (WIFSIGNALED(st))
        snprintf(a->engine_error, sizeof a->engine_error, "libESMTP's process died of signal %d (%s)",
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(a->engine_error, sizeof a->engine_error, "libESMTP's process exited with status %d",
                 WEXITSTATUS(st));
    smtp_note(a, "%s", a->engine_error);
}
