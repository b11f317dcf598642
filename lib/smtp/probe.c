/*
 * lib/smtp probe: our own dialogue for a request that stops after a phase
 * (quit_after).
 *
 * libESMTP cannot stop a session after a chosen phase (it pipelines MAIL,
 * RCPT and DATA), so probes speak a short dialogue themselves on one
 * non-blocking connection: greeting, EHLO (HELO after a 5xx), STARTTLS with
 * the context's SSL_CTX, AUTH PLAIN or LOGIN (only as offered), MAIL, RCPT,
 * QUIT; every wait bounded by the reply deadline and the overall one.  No
 * command is pipelined, so any byte the server sends while no reply is
 * awaited is out of step: before each command the probe looks for such
 * bytes and hands them to the observer, which calls them a protocol error.
 */
#include "config.h"

#include "smtp-int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    smtp_att *a;
    int fd;
    SSL *ssl;
    char buf[4096];
    size_t len;
    int64_t phase_deadline;
    int timed_out, dropped;
} conn;

/* A connected non-blocking socket, or -1 with a->connect_* set. */
static int tcp_connect(smtp_att *a, int timeout_ms)
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
            smtp_note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
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
        smtp_note(a, "connect %s:%u: %s", a->ip, a->port, a->connect_error);
        return -1;
    }
    a->connected = 1;
    smtp_note(a, "connected to %s:%u (%s) in %lld ms", a->ip, a->port, a->host, (long long)(md_now_ms() - t));
    return fd;
}

static int64_t conn_deadline(conn *c)
{
    return c->phase_deadline < c->a->deadline ? c->phase_deadline : c->a->deadline;
}

/* Waits until fd is readable/writable, before the deadline. */
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
                ERR_clear_error();
                c->dropped = !c->timed_out;
                return -1;
            }
            w = r;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (conn_wait(c, POLLOUT) != 0)
                    return -1;
                continue;
            }
            if (w < 0) {
                c->dropped = 1;
                return -1;
            }
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One read into c->buf: wait == 0 takes only what is there now.  Returns
 * 0, or -1 (deadline, closed, nothing there). */
static int conn_read(conn *c, int wait)
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
                    if (!wait || conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) != 0)
                        return -1;
                    continue;
                }
                ERR_clear_error();
                c->dropped = 1;
                return -1;
            }
            r = n;
        } else {
            r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!wait || conn_wait(c, POLLIN) != 0)
                    return -1;
                continue;
            }
            if (r <= 0) {
                c->dropped = 1;
                return -1;
            }
        }
        c->len += (size_t)r;
        return 0;
    }
}

/* Bytes the server sent while no reply was awaited: fed to the observer,
 * which calls them out of step.  Returns 1 when the dialogue must end. */
static int unsolicited(conn *c)
{
    if (c->len == 0 && !c->dropped)
        conn_read(c, 0);
    if (c->len > 0) {
        smtp_feed(c->a, 0, c->buf, c->len, smtp_rel_ms(c->a));
        c->len = 0;
    }
    return c->a->stop == STOP_PROTOCOL || c->dropped;
}

/* Sends one command line.  Returns 0, or -1 when it was not sent (the gate
 * stopped it, the server spoke out of turn, the connection failed). */
static int cmd(conn *c, const char *line, int phase_timeout)
{
    smtp_att *a = c->a;
    char out[1100];
    int n = snprintf(out, sizeof out, "%s\r\n", line);
    if ((size_t)n >= sizeof out || unsolicited(c))
        return -1;
    smtp_stop before = a->stop;
    size_t pending = a->ftail;
    smtp_feed(a, 1, out, (size_t)n, smtp_rel_ms(a));
    if (a->stop != before || a->ftail == pending)
        return -1;   /* the gate said no: nothing goes out */
    c->phase_deadline = md_now_ms() + phase_timeout;
    return conn_write(c, out, (size_t)n);
}

/* Reads one whole reply (all its lines) for phase p.  Returns its code, or
 * -1. */
static int reply(conn *c, md_smtp_phase p)
{
    smtp_att *a = c->a;
    a->got[p] = 0;   /* wait for a new reply (AUTH LOGIN has several) */
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl == NULL) {
            if (c->len >= sizeof c->buf) {
                /* over-long: the observer calls it garbage */
                smtp_feed(a, 0, c->buf, c->len, smtp_rel_ms(a));
                c->len = 0;
            }
            if (a->stop == STOP_PROTOCOL || conn_read(c, 1) != 0)
                return -1;
            continue;
        }
        size_t n = (size_t)(nl - c->buf) + 1;
        smtp_feed(a, 0, c->buf, n, smtp_rel_ms(a));
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        if (a->stop == STOP_PROTOCOL)
            return -1;
        if (a->reply_lines == 0 && a->got[p])
            return a->rep[p].code;
    }
}

static int tls_handshake(conn *c, int timeout)
{
    smtp_att *a = c->a;
    SSL_CTX *sc = smtp_tls_ctx(a->ctx);
    if (sc == NULL || (c->ssl = SSL_new(sc)) == NULL) {
        smtp_note(a, "cannot set up TLS on our side");
        a->tls_handshake_failed = 1;
        return -1;
    }
    SSL_set_fd(c->ssl, c->fd);
    c->phase_deadline = md_now_ms() + timeout;
    smtp_tls_begin(a);
    int ok = -1;
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1) {
            ok = 0;
            break;
        }
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            conn_wait(c, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT) == 0)
            continue;
        unsigned long le = ERR_get_error();
        char eb[160];
        ERR_error_string_n(le, eb, sizeof eb);
        snprintf(a->engine_error, sizeof a->engine_error, "%s", le ? eb : c->timed_out ? "timeout" : "connection closed");
        smtp_note(a, "TLS handshake failed: %s", a->engine_error);
        ERR_clear_error();
        a->tls_handshake_failed = 1;
        break;
    }
    smtp_tls_end();
    if (ok == 0) {
        smtp_tls_record(a, c->ssl);
        if (!smtp_tls_policy_accepts(a)) {
            a->tls_cert_refused = 1;
            smtp_stop_set(a, STOP_CERT, "the certificate does not verify");
            ok = -1;
        }
    }
    return ok;
}

/* AUTH with a mechanism the server offers (PLAIN, else LOGIN).  Returns
 * the final reply code (only 235 is success), or -1. */
static int auth(conn *c, int to)
{
    smtp_att *a = c->a;
    const char *u = a->req->auth_user, *pw = a->req->auth_password;
    size_t ul = strlen(u), pl = strlen(pw);
    if (!smtp_has_cap(a, "AUTH")) {
        smtp_stop_set(a, STOP_AUTH_NOT_OFFERED, "the server offers no AUTH");
        return -1;
    }
    int ret = -1;
    if (smtp_auth_offers(a, "PLAIN")) {
        unsigned char raw[520];
        char b64[800], line[820];
        raw[0] = 0;
        memcpy(raw + 1, u, ul);
        raw[1 + ul] = 0;
        memcpy(raw + 2 + ul, pw, pl);
        EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
        snprintf(line, sizeof line, "AUTH PLAIN %s", b64);
        if (cmd(c, line, to) == 0)
            ret = reply(c, MD_SMTP_PHASE_AUTH);
        OPENSSL_cleanse(raw, sizeof raw);
        OPENSSL_cleanse(line, sizeof line);
        OPENSSL_cleanse(b64, sizeof b64);
        if (ret == 334 && cmd(c, "*", to) == 0)   /* a challenge after the initial response: cancel */
            reply(c, MD_SMTP_PHASE_AUTH);
    } else if (smtp_auth_offers(a, "LOGIN")) {
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
    } else {
        smtp_stop_set(a, STOP_AUTH_UNAVAILABLE,
                      "the server offers no AUTH mechanism we use (PLAIN, LOGIN)");
    }
    return ret;
}

void smtp_probe_run(smtp_att *a)
{
    const md_smtp_request *req = a->req;
    md_smtp_phase q = req->quit_after;
    int to = req->phase_timeout_ms;
    int64_t left = a->deadline - md_now_ms();
    int fd = tcp_connect(a, req->connect_timeout_ms < left ? req->connect_timeout_ms : (int)(left > 0 ? left : 1));
    if (fd < 0)
        return;
    conn c = { .a = a, .fd = fd };
    char line[600];
    int code;
    if (q == MD_SMTP_PHASE_CONNECT)
        goto close;   /* a port check: nothing to say */
    c.phase_deadline = md_now_ms() + to;
    if ((code = reply(&c, MD_SMTP_PHASE_BANNER)) != 220 || q == MD_SMTP_PHASE_BANNER)
        goto quit;
    snprintf(line, sizeof line, "EHLO %s", req->helo);
    if (cmd(&c, line, to) != 0 || (code = reply(&c, MD_SMTP_PHASE_EHLO)) != 250) {
        if (code < 500 || a->stop != STOP_NONE)
            goto quit;
        snprintf(line, sizeof line, "HELO %s", req->helo);
        if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_EHLO) != 250)
            goto quit;
    }
    if (q == MD_SMTP_PHASE_EHLO)
        goto quit;
    if (a->tls != MD_SMTP_TLS_OFF) {
        if (!smtp_has_cap(a, "STARTTLS")) {
            a->tls_not_offered = 1;
            if (a->tls == MD_SMTP_TLS_REQUIRED)
                goto quit;
        } else {
            if (cmd(&c, "STARTTLS", to) != 0 || reply(&c, MD_SMTP_PHASE_STARTTLS) != 220)
                goto quit;
            /* Anything already sent after the 220 came in clear text and
             * would be read as if it had come over TLS (an injection). */
            if (unsolicited(&c))
                goto quit;
            if (tls_handshake(&c, to) != 0)
                goto close;   /* nothing to QUIT on */
            snprintf(line, sizeof line, "EHLO %s", req->helo);
            if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_EHLO) != 250)
                goto quit;
        }
    }
    if (q == MD_SMTP_PHASE_STARTTLS)
        goto quit;
    if (req->auth_user && auth(&c, to) != 235)
        goto quit;
    if (q == MD_SMTP_PHASE_AUTH)
        goto quit;
    snprintf(line, sizeof line, "MAIL FROM:<%s>", req->mail_from);
    if (cmd(&c, line, to) != 0 || reply(&c, MD_SMTP_PHASE_MAIL) / 100 != 2 || q == MD_SMTP_PHASE_MAIL)
        goto quit;
    snprintf(line, sizeof line, "RCPT TO:<%s>", req->rcpt_to);
    if (cmd(&c, line, to) == 0)
        reply(&c, MD_SMTP_PHASE_RCPT);
quit:
    if (!c.dropped && !c.timed_out && a->stop != STOP_PROTOCOL && !a->tls_handshake_failed) {
        /* Be polite but brief: QUIT, and wait a moment for the 221. */
        int64_t save = a->deadline;
        if (cmd(&c, "QUIT", to) == 0) {
            if (a->deadline - md_now_ms() > 1000)
                a->deadline = md_now_ms() + 1000;
            if (reply(&c, MD_SMTP_PHASE_QUIT) < 0 && c.timed_out)
                c.timed_out = 0;   /* a missing 221 changes nothing */
            a->deadline = save;
        }
    }
close:
    if (c.timed_out) {
        a->timed_out = 1;
        smtp_note(a, "no reply before the deadline");
    }
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
        ERR_clear_error();
    }
    close(fd);
}
