/*
 * lib/arrival: did the message we sent arrive?  A server's 250 to the
 * message is not what the user asked: it can still end in Junk, be dropped
 * without a word, or bounce later.  This module watches the recipient's
 * mailbox over IMAP (lib/imap) for the Message-ID we sent and reports where
 * it landed, how long after the server's final reply, and what the
 * receiver concluded about it (SPF, DKIM, DMARC).
 *
 * The wait.  md_arrival_open connects, logs in and selects the folder of
 * the URL (INBOX by default) before the send, so that a mailbox that
 * cannot be read is known before a test message goes out, and so that the
 * login is not part of what is measured; it also finds every Junk folder
 * (marked \Junk, RFC 6154, or named Junk or Spam at any level, any case)
 * and notes each folder's UIDNEXT: only messages that arrive later are
 * searched.  md_arrival_wait then looks, on that one connection, until the
 * message is found or the timeout ends:
 *   - the selected folder: NOOP (a search alone does not see a message
 *     that arrived since the last command, see lib/imap), then UID SEARCH
 *     HEADER Message-ID from its first new UID;
 *   - every other folder: STATUS; only when its UIDNEXT moved is it
 *     selected and searched (nothing is reopened that need not be).
 * The server's search is a substring match: each message it names is
 * fetched (read-only: \Seen stays as it was) and taken only when one of
 * its Message-ID fields is exactly ours.
 *
 * No IDLE: the server would tell us the moment the message arrives, but
 * libcurl cannot run IDLE (docs/LIBRARIES.md, "libcurl", says why), so the
 * wait polls: at once, then after 200 ms, doubling to at most 2 s between
 * looks, the last look when the timeout ends, never later.  The default
 * timeout, 60 s, is longer than a loaded MTA's queue run and a content
 * filter take for a message to a mailbox that works, and short enough for
 * a person to wait at a terminal; greylisting receivers need minutes (and
 * then the send says "deferred", and nothing is awaited).  A server that stops answering
 * ends the wait at most MD_ARRIVAL_GRACE_MS after the timeout.
 *
 * Latency: from the wall-clock time of the final reply to the message
 * (md_smtp_result.final_reply_ms) to the message's INTERNALDATE, the time
 * the mailbox server stored it, which IMAP gives in whole seconds: the
 * figure is a lower bound that may be up to 999 ms short.  It is never
 * negative and never more than our own clock saw (the time the look that
 * found it ended): outside those bounds the two clocks disagree, and the
 * skew is reported instead of a latency that cannot be true.
 *
 * What the receiver concluded: its Authentication-Results (RFC 8601) and
 * Received-SPF (RFC 7208 9.1) fields.  Anyone can write those fields into
 * a message, so only the receiver's own are read (RFC 8601 section 5 and
 * 7.1): fields the message held when it left us can never be the
 * receiver's, and every MTA adds its trace and authentication fields at
 * the top (RFC 5321 4.4, RFC 8601 4), so only the fields above the first
 * field of the message as sent count (found from our Message-ID field's
 * place in the message sent and in the message stored).  Among those, the
 * Authentication-Results with a trusted authserv-id: the ones configured,
 * else that of the topmost field, which the last MTA (the receiver's)
 * added; and the topmost Received-SPF.  Everything else is counted as
 * ignored.  A receiver that appends its fields below the message's own
 * is not read (they sit where a sender's forgeries sit).
 *
 * Strings in every result are sanitized (md_sanitize_text) and bounded.
 */
#ifndef MAILDIAG_ARRIVAL_H
#define MAILDIAG_ARRIVAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_ARRIVAL_TIMEOUT_DEFAULT_MS 60000u
#define MD_ARRIVAL_TIMEOUT_MAX_MS     86400000u   /* a day */
#define MD_ARRIVAL_POLL_FIRST_MS      200u
#define MD_ARRIVAL_POLL_MAX_MS        2000u
#define MD_ARRIVAL_GRACE_MS           5000u       /* the last look's answer, at most */

/* ------------------------------------------------ the receiver's fields */

#define MD_AUTHRES_INPUT_MAX   16384   /* a longer field value is refused */
#define MD_AUTHRES_RESULTS_MAX 16      /* results kept from one field */
#define MD_AUTHRES_PROPS_MAX   8       /* properties kept per result */

typedef struct md_authres_prop {
    char ptype[16];        /* "smtp", "header", "body", "policy" ...; lower case */
    char property[32];     /* "mailfrom", "d", "from" ...; lower case */
    char value[160];       /* quoted-string unquoted; cut to fit */
} md_authres_prop;

typedef struct md_authres_result {
    char method[32];       /* "spf", "dkim", "dmarc", "arc" ...; lower case */
    unsigned method_version;   /* "dkim/1=pass": 1; 0 when not given */
    char result[24];       /* "pass", "fail", "none" ...; lower case */
    char reason[160];      /* reason=..., "" when none */
    md_authres_prop prop[MD_AUTHRES_PROPS_MAX];
    size_t nprop;
    int malformed;         /* what followed method=result broke the grammar and was skipped */
} md_authres_result;

typedef struct md_authres {
    char authserv_id[256];
    int no_authserv_id;    /* the field starts with method=result, as Exchange Online writes it:
                            * read anyway, with authserv_id "" */
    unsigned version;      /* authres-version; 1 when not given */
    int none;              /* "; none": the receiver applied no method */
    md_authres_result result[MD_AUTHRES_RESULTS_MAX];
    size_t nresult;
    size_t skipped;        /* results without a readable method=result, or over the maximum */
} md_authres;

/*
 * Parses an Authentication-Results value (after the colon, unfolded) by
 * the grammar of RFC 8601 2.2: CFWS (nested comments, quoted pairs)
 * anywhere it allows, authserv-id (token or quoted-string), version,
 * "none", method[/version]=result, reason=, ptype.property=pvalue.  A
 * pvalue is a quoted-string or a run of printable characters other than
 * ';', '(', ')', '"' and '\': receivers write DKIM signature pieces
 * (header.b) with '/', '+' and '=' unquoted, which the grammar's value does
 * not allow.  A result whose properties break the grammar keeps its
 * method=result (malformed = 1); a result without one is skipped (counted).
 * MD_OK, or MD_PROTOCOL with err saying what and at which byte when the
 * field has no authserv-id, nothing after it, or is longer than
 * MD_AUTHRES_INPUT_MAX.  *out is always initialized.  Thread-safe.
 */
MD_API md_status md_arrival_authres_parse(const char *value, size_t len, md_authres *out, md_error *err);

typedef struct md_received_spf_kv {
    char key[32];          /* "client-ip", "envelope-from", "receiver" ...; lower case */
    char value[160];
} md_received_spf_kv;

typedef struct md_received_spf {
    char result[16];       /* pass, fail, softfail, neutral, none, temperror, permerror */
    char comment[256];     /* the comment after the result (the receiver's words), "" if none */
    md_received_spf_kv kv[12];
    size_t nkv;
    int malformed;         /* the key-value list broke the grammar: the rest was skipped */
} md_received_spf;

/*
 * Parses a Received-SPF value (RFC 7208 9.1): result, an optional comment,
 * key=value pairs separated by ';'.  Values are dot-atoms or quoted
 * strings by the grammar; an unquoted run of other printable characters
 * (client-ip=2001:db8::1, receiver=<UNKNOWN>, as real receivers write) is
 * taken too.  MD_PROTOCOL when the result is not one of the seven of RFC
 * 7208 2.6 (any case) or the value is longer than MD_AUTHRES_INPUT_MAX.
 */
MD_API md_status md_arrival_received_spf_parse(const char *value, size_t len, md_received_spf *out, md_error *err);

/* What the receiver concluded about a stored message. */
typedef struct md_arrival_auth {
    /* "pass", "fail", "none" ... as the receiver wrote them (lower case);
     * "" when it said nothing: no field of its own, or the method not in
     * it.  spf: from Authentication-Results, else Received-SPF.  dkim:
     * "pass" when any signature passed, else the first result.  A field
     * that says "none" (no method applied) gives "none" to those not
     * otherwise known. */
    char spf[24], dkim[24], dmarc[24];
    char authserv_id[256];       /* of the fields read; "" when none */
    char **authres;              /* the values read (unfolded, sanitized), topmost first */
    size_t nauthres;
    char **received_spf;
    size_t nreceived_spf;
    size_t ignored;              /* fields of either kind not trusted (the sender's part, other ids) */
    size_t unreadable;           /* fields in the receiver's part that did not parse */
} md_arrival_auth;

/*
 * Reads the receiver's fields (see the top of this file) from a stored
 * message, stored[0..len), given the message as we sent it, sent[0..sent_len)
 * (where its own fields begin, and its Message-ID).  authserv_ids: the
 * trusted authserv-ids (NULL-terminated, compared without case), or NULL
 * for the topmost field's.  Caller clears *out with md_arrival_auth_clear
 * (also after a failure).  MD_NOTFOUND when stored holds no Message-ID
 * field equal to ours (another message), MD_CONFIG when sent has none,
 * MD_PROTOCOL when either is not a message GMime can read.
 */
MD_API md_status md_arrival_auth_read(const char *stored, size_t len, const char *sent, size_t sent_len,
                                      const char *const *authserv_ids, md_arrival_auth *out, md_error *err);
MD_API void md_arrival_auth_clear(md_arrival_auth *a);

/* ---------------------------------------------------------------- the wait */

typedef struct md_arrival_options {
    const char *url;             /* imaps://USER@HOST[:PORT][/FOLDER] or imap://... (lib/imap) */
    const char *password;        /* copied, never logged */
    const char *ca_file;         /* PEM CA bundle for the IMAP server; NULL = the system's */
    int insecure;                /* do not verify the IMAP server's certificate */
    unsigned timeout_ms;         /* the wait after each send; 0 = MD_ARRIVAL_TIMEOUT_DEFAULT_MS.
                                  * Also bounds md_arrival_open. */
    int delete_found;            /* remove the message once found (STORE \Deleted + UID EXPUNGE) */
    const char *const *authserv_ids;  /* trusted authserv-ids, NULL-terminated; NULL: the topmost
                                       * field's.  Borrowed: valid until md_arrival_free */
} md_arrival_options;

typedef struct md_arrival md_arrival;

/*
 * Connects, logs in, selects the folder, lists the Junk folders and notes
 * where their new messages start (see the top).  Caller frees with
 * md_arrival_free().  MD_CONFIG for a bad URL, a missing password or a
 * timeout over MD_ARRIVAL_TIMEOUT_MAX_MS (nothing was connected);
 * otherwise the status and err of lib/imap (stage "imap.connect",
 * "imap.tls", "imap.login", "imap.select", "imap.timeout" ...) when the
 * mailbox cannot be read.
 */
MD_API md_status md_arrival_open(const md_arrival_options *o, md_arrival **out, md_error *err);
MD_API void md_arrival_free(md_arrival *a);
/* Sets the wait of the next md_arrival_wait to timeout_ms (1 ms to
 * MD_ARRIVAL_TIMEOUT_MAX_MS): a caller with a deadline of its own waits for
 * what is left of it once the message is sent. */
MD_API void md_arrival_set_timeout(md_arrival *a, unsigned timeout_ms);

/* The message sent, as md_arrival_wait needs it.  Borrowed. */
typedef struct md_arrival_sent {
    const char *data;            /* the message as sent (its header is what counts) */
    size_t len;
    const char *message_id;      /* "<...>", exactly as in its Message-ID field */
    int64_t final_reply_ms;      /* md_smtp_result.final_reply_ms; 0 unknown: no latency */
    const char *accepted_by;     /* the server that accepted it, for the report; may be NULL */
    const char *queue_id;        /* its queue id there; may be NULL */
} md_arrival_sent;

typedef enum md_arrival_outcome {
    MD_ARRIVAL_FOUND = 0,
    MD_ARRIVAL_NOT_FOUND,        /* not in any folder watched when the timeout ended */
    MD_ARRIVAL_MAILBOX_ERROR,    /* the mailbox could not be read: whether it arrived is unknown */
    MD_ARRIVAL_NOT_AWAITED       /* the send was not accepted: nothing to wait for */
} md_arrival_outcome;

typedef struct md_arrival_result {
    md_arrival_outcome outcome;
    char *mailbox;               /* the URL watched (it never holds a password); sanitized */
    char **folders;              /* the folders watched, the URL's first */
    size_t nfolders;
    char *folder;                /* where it was found; NULL otherwise */
    int junk;                    /* folder is a Junk folder */
    uint32_t uid;
    int64_t internal_date;       /* Unix seconds; 0 unknown */
    int64_t latency_ms;          /* -1 unknown (no INTERNALDATE or no final reply time) */
    int64_t clock_skew_ms;       /* > 0: the server's clock is behind ours by at least this;
                                  * < 0: ahead by at least -this; 0: nothing seen */
    unsigned polls;              /* looks at the mailbox (one per round over the folders) */
    int64_t elapsed_ms;          /* from the start of the wait to its end */
    unsigned timeout_ms;
    int delete_asked;
    int deleted;                 /* 1 expunged; 2 only marked \Deleted (no UIDPLUS: an EXPUNGE
                                  * would remove other messages too) */
    md_error delete_error;       /* when deleting failed (status != MD_OK) */
    int tls;                     /* the mailbox was read over TLS */
    char tls_version[16];
    md_arrival_auth auth;
    char reason[300];            /* why it was not found, or not awaited; sanitized */
    md_error error;              /* MD_ARRIVAL_MAILBOX_ERROR: what failed */
    char accepted_by[256], queue_id[64];
} md_arrival_result;

/*
 * Waits for the message sent (see the top): fills *out (clear with
 * md_arrival_result_clear, also after a failure).  Returns MD_OK when the
 * wait reached an outcome, found or not, or the mailbox failed
 * (MD_ARRIVAL_MAILBOX_ERROR, out->error says how); MD_CONFIG when sent has
 * no usable Message-ID (printable ASCII, at most 250 characters).  Blocks
 * for at most the timeout plus MD_ARRIVAL_GRACE_MS.
 */
MD_API md_status md_arrival_wait(md_arrival *a, const md_arrival_sent *sent, md_arrival_result *out, md_error *err);

/* Fills *out for a send that was not accepted (why: "rejected" ...): no
 * wait.  a may be NULL. */
MD_API void md_arrival_not_awaited(const md_arrival *a, const char *why, md_arrival_result *out);
/* Fills *out for a mailbox that could not be opened (err from
 * md_arrival_open); url as given. */
MD_API void md_arrival_open_failed(const char *url, const md_error *err, md_arrival_result *out);
MD_API void md_arrival_result_clear(md_arrival_result *r);

/*
 * The findings of a result into rep: delivery.found (ok), delivery.junk
 * (warning), delivery.not_found (critical), delivery.mailbox_error,
 * delivery.not_awaited (unknown), delivery.auth_failed (warning: any of
 * spf, dkim, dmarc known and not pass), delivery.plaintext (warning: read
 * without TLS), delivery.clock_skew (ok), delivery.delete_failed
 * (warning); and one detail line.
 */
MD_API void md_arrival_report(const md_arrival_result *r, md_report *rep);

/* Describes r into rep: the structured field "arrival" of the send's JSON
 * contract, {"mailbox", "folders", "outcome", "found", "folder", "junk",
 * "uid", "internal_date", "latency_ms", "clock_skew_ms", "auth": {"spf",
 * "dkim", "dmarc"} (a method the receiver said nothing about is absent),
 * "authserv_id", "headers": {"authentication_results": [...],
 * "received_spf": [...]}, "ignored_headers", "polls", "elapsed_ms",
 * "timeout_ms", "deleted", "tls", "reason", "error"}.  Adds no findings
 * (md_arrival_report does). */
MD_API void md_arrival_describe(const md_arrival_result *r, md_report *rep);

/*
 * The latency of a message stored at internal_date (Unix seconds, the
 * mailbox server's clock, whole seconds) after the final reply at
 * final_reply_ms and found at found_ms (Unix ms, our clock; 0 unknown):
 * *latency_ms is internal_date - final reply, kept within [0, found -
 * final reply]; -1 when either time is unknown.  *clock_skew_ms is > 0 when
 * INTERNALDATE lies more than its one-second resolution before the final
 * reply (the server's clock is behind by at least that), < 0 when it lies
 * after the message was found (ahead by at least -that), else 0.
 */
MD_API void md_arrival_latency(int64_t internal_date, int64_t final_reply_ms, int64_t found_ms, int64_t *latency_ms,
                               int64_t *clock_skew_ms);

/* "found", "not_found", "mailbox_error", "not_awaited". */
MD_API const char *md_arrival_outcome_name(md_arrival_outcome o);

#ifdef __cplusplus
}
#endif
#endif
