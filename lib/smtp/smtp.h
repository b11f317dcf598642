/*
 * lib/smtp: send one message (or probe a server) over SMTP with libESMTP,
 * and say exactly what happened.
 *
 * Routes:
 *  - relay: one server "HOST[:PORT]" (default port 587), e.g. the product's
 *    submission server; STARTTLS required by default on port 587,
 *    opportunistic elsewhere; AUTH PLAIN/LOGIN with a user and password;
 *    the host name is resolved with getaddrinfo (IPv4), outside the deadline;
 *  - direct: the recipient domain's MX hosts from lib/mx, each host and
 *    each address in order; a connection failure or a 4xx moves on to the
 *    next address, a 5xx stops (that is the answer).
 *
 * Around libESMTP 1.1.0's traps (see shared/LIBRARIES.md):
 *  - one application SSL_CTX (in md_smtp_ctx) is handed to every session,
 *    so the second STARTTLS session does not crash; SNI and the host name to
 *    verify are set from an info callback at handshake start;
 *  - the TCP connect is done first by us, non-blocking, under the connect
 *    deadline, and closed; libESMTP then connects to the same numeric
 *    address (never to a name: no blocking getaddrinfo; IPv6 literals are
 *    impossible in smtp_set_server, so IPv6 addresses are skipped with a
 *    note).  The server sees one extra connection closed before its greeting;
 *  - a watchdog thread enforces the overall deadline by shutting the socket
 *    down, since libESMTP's per-read timeouts never fire against a server
 *    that sends one byte per second;
 *  - AUTH failure is read from the transcript (libESMTP carries on
 *    unauthenticated after a 535); the transcript redacts AUTH secrets;
 *  - the outcome comes from the statuses, never the return code.
 *
 * Probes (quit_after): libESMTP cannot stop a session after a chosen phase
 * (it pipelines MAIL, RCPT and DATA), so probes run a small dialogue of our
 * own (connect, banner, EHLO, STARTTLS with the same SSL_CTX, AUTH, MAIL,
 * RCPT, QUIT) with the same deadlines, transcript and result.
 *
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
const char *md_smtp_phase_name(md_smtp_phase p);
int md_smtp_phase_parse(const char *name);

typedef enum md_smtp_outcome {
    MD_SMTP_ACCEPTED = 0,          /* 250 after DATA (or the probe reached its phase) */
    MD_SMTP_DEFERRED,              /* 4xx somewhere: try later */
    MD_SMTP_REJECTED,              /* 5xx: the answer is no */
    MD_SMTP_FAILED                 /* could not complete: connect, TLS, AUTH, timeout, garbage */
} md_smtp_outcome;

/* "accepted", "deferred", "rejected", "failed". */
const char *md_smtp_outcome_name(md_smtp_outcome o);

typedef struct md_smtp_ctx md_smtp_ctx;

/* Process-wide setup (SIGPIPE ignored, auth_client_init) and the one
 * SSL_CTX (system CA paths).  ca_file may be NULL (system store).  NULL +
 * err on failure.  Free with md_smtp_ctx_free. */
md_smtp_ctx *md_smtp_ctx_new(const char *ca_file, md_error *err);
void md_smtp_ctx_free(md_smtp_ctx *ctx);

typedef struct md_smtp_request {
    /* route: server != NULL is the relay route; else direct to the MX hosts
     * of the recipient's domain, resolved with dns (borrowed). */
    const char *server;            /* "HOST[:PORT]", "[IPv6]:PORT" is refused */
    md_dns *dns;                   /* direct route only */
    unsigned direct_port;          /* direct route: 0 = 25 (tests use another) */
    const char *helo;              /* EHLO name; NULL = the host name */
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
    int timeout_ms;                /* the whole attempt, all hosts; 0 = 60000 */
    int connect_timeout_ms;        /* per address; 0 = min(10000, timeout) */
    int phase_timeout_ms;          /* per reply; 0 = min(30000, timeout) */
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
    int auth_used;                 /* AUTH succeeded */
    int dsn_used;
    int64_t elapsed_ms;
    int64_t started_ms;            /* wall clock (Unix ms) at the start: transcript ms are relative to it */
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
md_status md_smtp_send(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res,
                       md_error *err);
void md_smtp_result_clear(md_smtp_result *res);

/* The words for an RFC 3463 enhanced status code ("5.1.1" -> "no such
 * mailbox"); "" when unknown.  Static. */
const char *md_smtp_enhanced_explain(const char *code);
/* Whether a 4xx reply reads as greylisting. */
int md_smtp_is_greylisting(int code, const char *enhanced, const char *text);
/* Extracts a queue id from a 250 reply to DATA ("queued as ABC123",
 * "Ok: queued as ...", "OK id=..."); returns 1 and fills out, or 0. */
int md_smtp_queue_id(const char *text, char *out, size_t size);

/* The result as JSON: {"to","route","result","phase","reply","queue_id",
 * "message_id","host","address","elapsed_ms","tls","transcript"} (the
 * findings are added by the caller's report).  New reference. */
json_t *md_smtp_result_json(const md_smtp_result *res, const char *to);

#ifdef __cplusplus
}
#endif
#endif
