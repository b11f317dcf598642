/*
 * lib/smtp: send one message (or probe a server) over SMTP with libESMTP,
 * and say exactly what happened.
 *
 * Routes:
 *  - relay: one server "HOST[:PORT]" (default port 587), e.g. the product's
 *    submission server; STARTTLS required by default on port 587,
 *    opportunistic elsewhere; AUTH PLAIN or LOGIN with a user and password;
 *    the host name is resolved with getaddrinfo (IPv4), outside the deadline;
 *  - direct: the recipient domain's MX hosts from lib/mx, each host and
 *    each address in order; a connection failure or a 4xx moves on to the
 *    next address, a 5xx stops (that is the answer).  MX addresses that are
 *    not public (md_mx_address_class: loopback, private, link-local, CGNAT,
 *    multicast ...) are refused with mx.target_internal unless
 *    allow_internal is set: anyone can publish an MX record, and it must not
 *    steer a send into this host or its network.
 *
 * IPv6: libESMTP's smtp_set_server splits "host:port" at the first colon,
 * so it cannot take an IPv6 literal, and giving it a name would hand it a
 * blocking getaddrinfo that is not bounded by our deadline and may pick
 * other addresses than the ones judged.  IPv6 MX addresses are therefore
 * skipped (said in the result's details), and a relay "[::1]:25" is
 * refused; an IPv6-only MX host reads as "no IPv4 address to try".
 *
 * Engines, chosen by quit_after:
 *  - a send runs one libESMTP session in a forked child process (esmtp.c).
 *    The parent kills the child (SIGKILL) when the connect deadline passes
 *    before libESMTP reports the connection, or when the whole-send deadline
 *    passes; the child streams its events (the bytes read and about to be
 *    written, TLS details, libESMTP's statuses) to the parent as they
 *    happen, so a killed session still has its evidence.  One TCP connection
 *    per send; a crash inside libESMTP is smtp.engine_failed, never a
 *    verdict.  md_smtp_send therefore forks: the child touches only the
 *    request and the context, and leaves with _exit;
 *  - a probe (quit_after) runs our own short dialogue (probe.c) on one
 *    non-blocking connection with the same deadlines, since libESMTP cannot
 *    stop after a chosen phase.
 *
 * The verdict (judge.c) comes from libESMTP's reverse-path, recipient and
 * message statuses (or the probe's replies) and, for the greeting, EHLO,
 * STARTTLS and AUTH, from the replies matched to their commands by count and
 * code class; the transcript is evidence shown to the reader.  Extensions:
 * PIPELINING and CHUNKING (BDAT) as libESMTP chooses them (it shows no RCPT
 * or BDAT in the transcript with CHUNKING; the statuses carry the verdict);
 * SIZE (the message size is declared, so a too-large message is refused at
 * MAIL FROM with 552 5.3.4: smtp.size_exceeded); DSN (NOTIFY, RET, ENVID);
 * ENHANCEDSTATUSCODES (parsed in one place); SMTPUTF8 is never needed: a
 * non-ASCII domain is sent as A-labels, and a non-ASCII local part, which
 * would need it, is refused (libESMTP cannot send the SMTPUTF8 parameter).
 *
 * Everything that reaches the wire (EHLO name, envelope, AUTH user, DSN
 * envelope id) is checked once in md_smtp_send, for both engines: a control
 * character or an invalid EHLO name is MD_CONFIG, before any connection.
 *
 * TLS (tls.c): one application SSL_CTX per context, handed to every session
 * (libESMTP 1.1.0 crashes on its second STARTTLS session with its own);
 * SNI and the name to verify set at handshake start; required TLS needs a
 * verified certificate (unless insecure), opportunistic takes any and, when
 * the server offers STARTTLS and then fails it (454, a broken handshake),
 * sends in plaintext on a new connection (tls.fallback_plaintext), as
 * Postfix's smtp_tls_security_level = may does.
 *
 * AUTH: with a user configured, AUTH is required: only 235 counts (RFC 4954);
 * only offered mechanisms are used (PLAIN, else LOGIN); when none is usable,
 * or AUTH fails, the session ends before MAIL FROM (libESMTP would go on
 * unauthenticated: the child stops it in the monitor callback, which runs
 * before libESMTP writes).  AUTH secrets are redacted from the transcript.
 *
 * docs/LIBRARIES.md describes the libESMTP behaviour all this relies on.
 * One md_smtp_ctx per thread; sends on one context are sequential.
 */
#ifndef MAILDIAG_SMTP_H
#define MAILDIAG_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"
#include "dns/dns.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_smtp_tls {
    MD_SMTP_TLS_DEFAULT = 0,       /* required on port 587, else opportunistic */
    MD_SMTP_TLS_REQUIRED,
    MD_SMTP_TLS_OPPORTUNISTIC,
    MD_SMTP_TLS_OFF
} md_smtp_tls;

/* The TLS policy named by word: "required", "opportunistic" or "off";
 * -1 for any other word (or NULL).  The one parser of the policy
 * for every caller (an option, a configuration setting). */
MD_API int md_smtp_tls_parse(const char *word);

typedef enum md_smtp_phase {
    MD_SMTP_PHASE_NONE = 0,
    MD_SMTP_PHASE_RESOLVE,         /* finding the server / MX hosts */
    MD_SMTP_PHASE_CONNECT,
    MD_SMTP_PHASE_BANNER,
    MD_SMTP_PHASE_EHLO,
    MD_SMTP_PHASE_STARTTLS,
    MD_SMTP_PHASE_AUTH,
    MD_SMTP_PHASE_MAIL,
    MD_SMTP_PHASE_RCPT,
    MD_SMTP_PHASE_DATA,            /* DATA, the body and the final reply */
    MD_SMTP_PHASE_QUIT
} md_smtp_phase;

/* "connect", "banner", ... ; md_smtp_phase_parse returns -1 when unknown. */
MD_API const char *md_smtp_phase_name(md_smtp_phase p);
MD_API int md_smtp_phase_parse(const char *name);

typedef enum md_smtp_outcome {
    MD_SMTP_ACCEPTED = 0,          /* 250 after DATA (or the probe reached its phase) */
    MD_SMTP_DEFERRED,              /* 4xx somewhere: try later */
    MD_SMTP_REJECTED,              /* 5xx: the answer is no */
    MD_SMTP_FAILED                 /* could not complete: connect, TLS, AUTH, timeout, garbage */
} md_smtp_outcome;

/* "accepted", "deferred", "rejected", "failed". */
MD_API const char *md_smtp_outcome_name(md_smtp_outcome o);

typedef struct md_smtp_ctx md_smtp_ctx;

/* Process-wide setup (SIGPIPE ignored, auth_client_init) and the one
 * SSL_CTX (system CA paths).  ca_file may be NULL (system store).  NULL +
 * err on failure.  Free with md_smtp_ctx_free. */
MD_API md_smtp_ctx *md_smtp_ctx_new(const char *ca_file, md_error *err);
MD_API void md_smtp_ctx_free(md_smtp_ctx *ctx);

typedef struct md_smtp_request {
    /* route: server != NULL is the relay route; else direct to the MX hosts
     * of the recipient's domain, resolved with dns (borrowed). */
    const char *server;            /* "HOST[:PORT]", "[IPv6]:PORT" is refused */
    md_dns *dns;                   /* direct route only */
    unsigned direct_port;          /* direct route: 0 = 25 */
    const char *helo;              /* EHLO name; NULL = the host name (checked too) */
    const char *mail_from;         /* envelope sender; "" = null sender */
    const char *rcpt_to;           /* one recipient */
    const char *data;              /* the message (CRLF), from md_message; */
    size_t len;                    /*   NULL with quit_after set */
    const char *message_id;        /* for the result, may be NULL */
    md_smtp_tls tls;
    int insecure;                  /* do not verify certificates (diagnosis only) */
    const char *auth_user;         /* AUTH when not NULL */
    const char *auth_password;     /*   borrowed; never logged */
    int dsn;                       /* DSN NOTIFY=SUCCESS,FAILURE,DELAY + ENVID when offered */
    const char *dsn_envid;         /*   NULL: the message id */
    md_smtp_phase quit_after;      /* MD_SMTP_PHASE_NONE: send the message */
    int allow_internal;            /* direct route: connect to non-public MX addresses (tests) */
    int timeout_ms;                /* the whole attempt, all hosts; 0 = 60000 */
    int connect_timeout_ms;        /* per address; 0 = min(10000, timeout) */
    int phase_timeout_ms;          /* per reply; 0 = min(30000, timeout) */
    /* The caller's words for what its user can change, in its own terms (an
     * option, a setting), appended to the fact that calls for them; NULL:
     * the fact alone. */
    const char *helo_advice;       /* helo NULL and this host's name is no EHLO name */
    const char *tls_advice;        /* TLS required, the server offers no STARTTLS */
} md_smtp_request;

typedef struct md_smtp_reply {
    int code;                      /* 250, 550 ...; 0 = none */
    char enhanced[16];             /* "5.1.1" or "" */
    char text[512];                /* sanitized */
} md_smtp_reply;

typedef struct md_smtp_line {
    int64_t ms;                    /* since the start of the attempt */
    char dir;                      /* '>' we sent, '<' server said, '*' note (connect, TLS) */
    char *text;                    /* sanitized, AUTH secrets redacted */
} md_smtp_line;

typedef struct md_smtp_tls_info {
    int used;                      /* STARTTLS completed */
    int offered;                   /* the server listed STARTTLS */
    int verified;                  /* certificate chain and name verify */
    char version[16];              /* "TLSv1.3" */
    char cipher[64];
    int bits;
    char peer_name[128];           /* the name checked (SNI) */
    char subject[256];             /* certificate subject, sanitized */
    char issuer[256];
    int64_t not_after;             /* Unix seconds; 0 = unknown */
    char verify_error[128];        /* OpenSSL's words when it did not verify */
    long verify_code;              /* X509_V_* */
} md_smtp_tls_info;

typedef struct md_smtp_result {
    md_smtp_outcome outcome;
    md_smtp_phase phase;           /* where it ended (RCPT for a rejected recipient ...) */
    md_smtp_reply reply;           /* the reply that decided it */
    char host[256];                /* the server that answered (MX name or relay) */
    char address[64];              /* its IP address */
    unsigned port;
    char route[16];                /* "relay" or "direct" */
    char queue_id[64];             /* from "250 ... queued as X" when printed */
    char message_id[256];          /* copied from the request */
    int greylisted;                /* a 4xx recognised as greylisting */
    int auth_used;                 /* AUTH succeeded (235) */
    int dsn_used;
    int64_t elapsed_ms;
    int64_t started_ms;            /* wall clock (Unix ms) at the start: transcript ms are relative to it */
    int64_t final_reply_ms;        /* wall clock (Unix ms) when the final reply to the message (after
                                    * DATA's dot, or to BDAT LAST) arrived, in the attempt that decided
                                    * the outcome; 0 when none did.  Where a delivery's latency starts */
    md_smtp_tls_info tls;
    md_smtp_line *transcript;      /* every host tried, in order */
    size_t ntranscript;
    md_report *findings;           /* ids smtp.*, tls.*, auth.* (owned) */
} md_smtp_result;

/*
 * Sends (or probes) as req says.  Always fills *res (free with
 * md_smtp_result_clear), also on failure; returns MD_OK when the dialogue
 * reached an outcome (accepted, deferred, rejected, or failed on the
 * server's side), MD_CONFIG for a bad request (err says which field),
 * MD_INTERNAL for our own failures.  Blocks until done or the deadline.
 */
MD_API md_status md_smtp_send(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res,
                              md_error *err);
MD_API void md_smtp_result_clear(md_smtp_result *res);

/* The words for an RFC 3463 enhanced status code ("5.1.1" -> "no such
 * mailbox"); "" when unknown.  Static. */
MD_API const char *md_smtp_enhanced_explain(const char *code);
/* Our words for a reply, from the phase it answered and its text as well as
 * its code: 454 4.7.0 to STARTTLS is a TLS fault on the server, to RCPT a
 * temporary policy refusal; greylisting only to MAIL, RCPT or the message.
 * "" when none.  Static. */
MD_API const char *md_smtp_explain(md_smtp_phase phase, const md_smtp_reply *r);
/* Whether a 4xx reply's words read as greylisting (any phase; see
 * md_smtp_explain for where greylisting can happen). */
MD_API int md_smtp_is_greylisting(int code, const char *enhanced, const char *text);
/* Whether name may follow EHLO: a domain of LDH labels, or an address
 * literal ([192.0.2.1], [IPv6:2001:db8::1]); no spaces or controls. */
MD_API int md_smtp_helo_valid(const char *name);
/* Extracts a queue id from a 250 reply to DATA ("queued as ABC123",
 * "Ok: queued as ...", "OK id=..."); returns 1 and fills out, or 0. */
MD_API int md_smtp_queue_id(const char *text, char *out, size_t size);

/*
 * Describes res, the send to to (as the caller gave it), into rep: the
 * structured fields of the JSON contract (maildiag-send(1)) in this order:
 * "to", "route", "result", "phase", "reply" {"code", "enhanced", "text"
 * [, "explanation"]}, "queue_id", "message_id", "host", "address", "port",
 * "elapsed_ms", "started", "greylisted" and "dsn" when true, "tls",
 * "transcript".  Adds no findings: res->findings holds them (a caller that
 * renders res->findings describes into it).
 */
MD_API void md_smtp_describe(const md_smtp_result *res, const char *to, md_report *rep);

#ifdef __cplusplus
}
#endif
#endif
