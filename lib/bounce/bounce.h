/*
 * lib/bounce: what a message in a bounce mailbox says about the emails we
 * sent: a delivery status notification (RFC 3464), an abuse complaint
 * (ARF, RFC 5965), one of the common non-standard bounces, or nothing of
 * the kind.
 *
 * MIME is parsed by GMime 3 (Debian libgmime-3.0-dev; docs/LIBRARIES.md,
 * "GMime", says what it does and does not do for us).  RFC 3464 and RFC 5965
 * have no support in GMime; their field groups are RFC 5322 header blocks,
 * so each group is handed to GMime's header parser and only the
 * splitting into groups, the field syntax of each value (address-type;
 * address, RFC 3463 status codes) and the choice of fields are ours.
 *
 * Standard reports are read strictly: a multipart/report whose report part
 * is missing, a recipient group without Action or with a Status that is not
 * an RFC 3463 code, and the like are errors that say where (part and line),
 * never a guess.  Non-standard bounces (Exim's and qmail's text, Exchange's
 * text NDR, Gmail's "Address not found") are recognised by the fixed
 * phrases those programs write and read with bounded text heuristics
 * (lib/bounce/text.c documents them); their results carry standard = 0.
 *
 * Every string in a result comes from the message and is sanitized
 * (md_sanitize_text: well-formed UTF-8 is kept, control characters and
 * ill-formed bytes become '?') and bounded.
 */
#ifndef MAILDIAG_BOUNCE_H
#define MAILDIAG_BOUNCE_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"
#include "report/report.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_BOUNCE_MAX_SIZE   (32u << 20)   /* larger input is refused */
#define MD_BOUNCE_MAX_RCPT   1000          /* recipients read from one report */
#define MD_BOUNCE_TEXT_MAX   512           /* a diagnostic, a subject ... */

typedef enum md_bounce_kind {
    MD_BOUNCE_NONE = 0,   /* not a bounce (a reply, a read receipt, spam ...) */
    MD_BOUNCE_DSN,        /* RFC 3464 multipart/report; report-type=delivery-status */
    MD_BOUNCE_ARF,        /* RFC 5965 multipart/report; report-type=feedback-report */
    MD_BOUNCE_TEXT        /* a non-standard bounce read from its text */
} md_bounce_kind;

typedef enum md_bounce_action {
    MD_BOUNCE_ACTION_NONE = 0,   /* ARF: a complaint has no action */
    MD_BOUNCE_FAILED,
    MD_BOUNCE_DELAYED,
    MD_BOUNCE_DELIVERED,
    MD_BOUNCE_RELAYED,
    MD_BOUNCE_EXPANDED
} md_bounce_action;

typedef struct md_bounce_recipient {
    char *address;       /* Original-Recipient, else Final-Recipient (DSN); Original-Rcpt-To,
                          * else the reported message's To (ARF); the address from the text */
    char *field;         /* where address came from: "Original-Recipient", "To", "text" ... */
    md_bounce_action action;
    char status[16];     /* RFC 3463 "5.1.1"; "" for ARF */
    char *diagnostic;    /* Diagnostic-Code text (after "smtp;"), or the text line; may be NULL */
    char *remote_mta;    /* Remote-MTA (after "dns;"); may be NULL */
} md_bounce_recipient;

typedef struct md_bounce {
    md_bounce_kind kind;
    int standard;                 /* 1 for DSN and ARF, 0 for text heuristics */
    const char *format;           /* "rfc3464", "rfc5965", "exim", "qmail", "exchange",
                                   * "gmail", "generic"; static */
    char *message_id;             /* the bounce's own Message-ID, without <>; may be NULL */
    char *key;                    /* message_id, or "sha256:HEX" of the whole message when it
                                   * has none: what remembers a bounce once applied */
    char *original_message_id;    /* our email's Message-ID, without <>; may be NULL */
    char *from, *subject;         /* of the bounce; may be NULL */
    char *reporting_mta;          /* DSN Reporting-MTA, ARF Reporting-MTA / User-Agent */
    char *feedback_type;          /* ARF: "abuse", "fraud", "virus", "other", ... */
    int64_t date;                 /* the bounce's Date, Unix seconds; 0 unknown */
    int64_t arrival_date;         /* Arrival-Date of the report; 0 unknown */
    md_bounce_recipient *rcpt;
    size_t nrcpt;
} md_bounce;

/*
 * Parses one message, data[0..len) (anything: it need not be a message,
 * need not be NUL-terminated).  On MD_OK *out receives the result, whose
 * kind may be MD_BOUNCE_NONE; caller frees with md_bounce_free().  On error
 * *out is NULL and err says why and where ("part 2 (message/delivery-status)
 * line 7: ..."): MD_PROTOCOL for a malformed report or input that is no
 * message at all, MD_CONFIG for input over MD_BOUNCE_MAX_SIZE.
 * Thread-safe.
 */
MD_API md_status md_bounce_parse(const char *data, size_t len, md_bounce **out, md_error *err);
MD_API void md_bounce_free(md_bounce *b);

/* The Message-ID of data[0..len) (without <>, sanitized), for naming a
 * message that md_bounce_parse refused; NULL when it has none.  Caller
 * frees. */
MD_API char *md_bounce_message_id(const char *data, size_t len);

/* "none", "dsn", "arf", "text". */
MD_API const char *md_bounce_kind_name(md_bounce_kind k);
/* "", "failed", "delayed", "delivered", "relayed", "expanded". */
MD_API const char *md_bounce_action_name(md_bounce_action a);

/* Whether s[0..len) is an RFC 3463 status code: class 2, 4 or 5, then a
 * subject and a detail of 1 to 3 digits each ("5.1.1", "4.7.500"). */
MD_API int md_bounce_status_valid(const char *s, size_t len);

/* Whether an ARF feedback type reports a complaint a sender must act on
 * (abuse, fraud, virus, other); not-spam and auth-failure do not. */
MD_API int md_bounce_is_complaint(const md_bounce *b);

/* Describes b into rep: the structured fields "kind", "standard",
 * "format", "message_id", "key", "original_message_id", "from", "subject",
 * "date", "arrival_date", "reporting_mta", "feedback_type", "recipients":
 * [{"address", "field", "action", "status", "diagnostic", "remote_mta"}],
 * in that order (absent values are null; dates ISO 8601 UTC).  Adds no
 * findings. */
MD_API void md_bounce_describe(const md_bounce *b, md_report *rep);

#ifdef __cplusplus
}
#endif
#endif
