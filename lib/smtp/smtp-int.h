/*
 * lib/smtp internals, shared by its files.  Not installed.
 *
 *   smtp.c     the public API: request checks, relay and direct routes, the
 *              opportunistic-TLS fallback, the result and its JSON
 *   observe.c  the observer both engines feed: transcript (redacted), the
 *              matching of replies to commands, EHLO keywords, AUTH state,
 *              and the gate that stops a session before it sends MAIL FROM
 *              unauthenticated
 *   judge.c    phase + reply -> outcome, findings and explanations; the one
 *              parser of enhanced status codes
 *   esmtp.c    the libESMTP engine, run in a forked child that streams
 *              framed events to the parent, which kills it at the deadline
 *   probe.c    our own dialogue for a request that stops after a phase
 *   tls.c      the SSL_CTX, SNI and the name to verify, certificate details
 */
#ifndef MAILDIAG_SMTP_INT_H
#define MAILDIAG_SMTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "smtp.h"

#define REPLY_LINE_MAX 2048     /* RFC 5321 says 512; we allow slack, then call it garbage */
#define REPLY_LINES_MAX 200
#define TRANSCRIPT_MAX 2000     /* lines kept per send */
#define NPHASES (MD_SMTP_PHASE_QUIT + 1)
#define FIFO_MAX 128

struct md_smtp_ctx {
    SSL_CTX *ssl;
    char *ca_file;                /* NULL: the system store */
    int ca_loaded;                /* loaded at first need: a probe that stops
                                   * before STARTTLS never parses the system
                                   * store, which takes longer than such a
                                   * probe (SSL_CTX_set_default_verify_paths
                                   * over Debian 12's ca-certificates bundle:
                                   * tens of milliseconds, timed) */
    int ca_failed, ssl_failed;
};

/* Why we ended a session ourselves. */
typedef enum smtp_stop {
    STOP_NONE = 0,
    STOP_PROTOCOL,                /* the replies are not SMTP, or out of step */
    STOP_CERT,                    /* the TLS policy refuses the certificate */
    STOP_AUTH_NOT_OFFERED,        /* a user is set; the server offers no AUTH */
    STOP_AUTH_UNAVAILABLE,        /* AUTH offered, but no mechanism we use */
    STOP_AUTH_FAILED              /* AUTH ended without 235 */
} smtp_stop;

/* One expected reply: the command it answers. */
typedef struct smtp_pending {
    md_smtp_phase phase;
    char verb[12];                /* "EHLO", "BDAT", "." ... */
    int last;                     /* BDAT ... LAST: its reply is the verdict */
} smtp_pending;

/* One attempt: one address of one host, one engine run. */
typedef struct smtp_att {
    md_smtp_ctx *ctx;
    const md_smtp_request *req;   /* checked; helo and envelope final */
    md_smtp_result *res;
    md_smtp_tls tls;              /* the effective policy */
    const char *host;             /* name for SNI and certificate checks */
    char ip[64];
    unsigned port;
    int64_t t0, deadline;         /* send start; overall deadline (monotonic ms) */
    int64_t last_activity;        /* last server line (monotonic ms); 0 none */
    int child_fd;                 /* in the engine child: the event pipe; else -1 */
    int quiet;                    /* keep no transcript (the child's own copy) */

    /* line assembly, per direction (0 read, 1 written) */
    char part[2][REPLY_LINE_MAX + 1];
    size_t partlen[2];

    /* replies awaited, oldest first (PIPELINING sends several at once) */
    smtp_pending fifo[FIFO_MAX];
    size_t fhead, ftail;
    md_smtp_phase sent;           /* phase of the last command written */
    int data_started;             /* 354 seen: the body, then the final reply */
    int data_final;               /* the final reply to the message seen */
    int bdat_last_sent;           /* BDAT ... LAST written */
    md_smtp_reply rep[NPHASES];   /* the (last) reply per phase */
    int got[NPHASES];             /* 1 reply seen; 2 (DATA) the final reply */
    int reply_lines;              /* lines so far of the current reply */
    int reply_code;               /* its code (continuation lines must agree) */
    char ehlo_caps[2048];         /* keywords of the last EHLO, upper case, '\n' after each */
    int blind;                    /* the engine stopped showing the dialogue (see esmtp.c) */
    int64_t starttls_sent, starttls_rtt;

    /* AUTH */
    int in_auth;                  /* AUTH written, its final reply not yet read */
    int auth_sent;
    int auth_ok;                  /* 235 */
    int auth_failed;              /* a final reply other than 235 */
    char auth_mech[24];

    /* the end */
    smtp_stop stop;               /* we ended the session, and why */
    char stop_what[200];
    md_smtp_phase protocol_phase;  /* STOP_PROTOCOL: the reply being read */
    md_smtp_phase line_phase;      /* the phase pending when the current server line began */
    int connected;
    int connect_failed, connect_timeout;
    char connect_error[160];
    int timed_out;                /* the deadline (or a reply timeout) ended it */
    int tls_cert_refused;
    int tls_handshake_failed;
    int tls_not_offered;
    int dsn_missing;
    int engine_failed;            /* the libESMTP child died on its own */
    char engine_error[160];
    int esmtp_errno;              /* smtp_errno() at the end of the session */
    size_t msg_pos;               /* message callback position (child) */
} smtp_att;

/* observe.c ---------------------------------------------------------------- */

int64_t smtp_rel_ms(const smtp_att *a);
void smtp_transcript_add(md_smtp_result *res, int64_t ms, char dir, const char *text, size_t len);
/* A '*' line; in the engine child it travels to the parent. */
void smtp_note(smtp_att *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Splits a chunk (written: what goes out; else what came in) into lines and
 * takes them in, as seen at ms (relative to a->t0). */
void smtp_feed(smtp_att *a, int written, const char *buf, size_t len, int64_t ms);
/* Marks the session as ended by us (first reason wins). */
void smtp_stop_set(smtp_att *a, smtp_stop why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The phase whose reply is awaited now. */
md_smtp_phase smtp_pending_phase(const smtp_att *a);
/* Whether the last EHLO listed keyword kw ("STARTTLS", "DSN" ...). */
int smtp_has_cap(const smtp_att *a, const char *kw);
/* Whether the last EHLO offered AUTH mechanism mech. */
int smtp_auth_offers(const smtp_att *a, const char *mech);
/* The gate before a command goes out: STOP_NONE, or why it must not (a
 * user is configured and MAIL FROM would go out unauthenticated; a second
 * AUTH after a refused one).  The same for both engines. */
smtp_stop smtp_gate(const smtp_att *a, md_smtp_phase next, const char *line, size_t len);

/* esmtp.c: in the engine child, a note travels to the parent. */
void smtp_child_note(smtp_att *a, int64_t ms, const char *text, size_t len);

/* judge.c ------------------------------------------------------------------ */

/* Fills r from a reply's code and text ("5.1.1 User unknown"): the one
 * place enhanced status codes are parsed (RFC 3463: class.subject.detail,
 * whose class must be the first digit of the code). */
void smtp_reply_set(md_smtp_reply *r, int code, const char *text, size_t len);
/* Decides the attempt: sets res->phase, res->reply, res->queue_id,
 * res->greylisted, res->auth_used, res->dsn_used, res->tls.offered; adds
 * findings to rep; returns the outcome. */
md_smtp_outcome smtp_judge(smtp_att *a, md_report *rep);

/* esmtp.c / probe.c -------------------------------------------------------- */

/* Runs one libESMTP session in a child process; fills a. */
void smtp_esmtp_run(smtp_att *a);
/* Runs the dialogue that stops after req->quit_after on our own
 * connection; fills a. */
void smtp_probe_run(smtp_att *a);

/* smtp.c ------------------------------------------------------------------- */

/*
 * Test hook, only in a build configured with --enable-test-hooks (which
 * defines MD_TEST_HOOKS): the port MAILDIAG_SMTP_PORT names (1 to 65535),
 * which the direct route uses when the request gives none, so that tests
 * reach MX hosts that listen on loopback ports; 0 when unset or not a port.
 * Elsewhere it is the constant 0, and the variable's name is not in the
 * library.
 */
#ifdef MD_TEST_HOOKS
unsigned smtp_test_direct_port(void);
#else
#define smtp_test_direct_port() 0u
#endif

/* tls.c -------------------------------------------------------------------- */

/* The SSL_CTX, made at first use; NULL when OpenSSL cannot make one. */
SSL_CTX *smtp_tls_ctx(md_smtp_ctx *ctx);
/* Loads the CA certificates once (before the engine child is forked, so
 * every child shares them). */
void smtp_tls_load_ca(md_smtp_ctx *ctx);
/* The attempt whose handshake runs on this thread (SNI and the name to
 * verify are set from OpenSSL's info callback). */
void smtp_tls_begin(smtp_att *a);
void smtp_tls_end(void);
/* Records protocol, cipher, certificate and verification of ssl in
 * a->res->tls, with a note. */
void smtp_tls_record(smtp_att *a, SSL *ssl);
/* Whether the policy lets the session go on with this certificate. */
int smtp_tls_policy_accepts(const smtp_att *a);
/* The finding id for an X509_V_* result; NULL for X509_V_OK. */
const char *smtp_tls_verify_finding(long verify_code);

#endif
