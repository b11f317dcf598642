/*
 * lib/account notify: the emails maildiag sends about accounts.
 *
 *   reminder      the usernames on the address          (template "username")
 *   verify        a fresh verification link             (template "verify")
 *   reset         a password-reset link                 (template "reset")
 *   no-account    "someone asked; no account uses this address"
 *   verified      "already verified: no link needed"
 *   explain-sso, explain-deactivated, explain-locked
 *                 why the account cannot get what was asked, and what to do
 *
 * Links carry a lib/token token bound to the account's state (a reset token
 * dies when the password changes or the account is locked; a verify token
 * when the address is verified).  Messages are composed by lib/message, sent
 * by lib/smtp, and every attempt is written to the send log with its outcome
 * and the server's reply.  Suppressed addresses get nothing.
 */
#ifndef MAILDIAG_ACCOUNT_NOTIFY_H
#define MAILDIAG_ACCOUNT_NOTIFY_H

#include "account/account.h"
#include "message/message.h"
#include "smtp/smtp.h"
#include "token/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_account_mailer {
    md_message_request message;    /* from, from_name, product, template_dir (borrowed) */
    md_smtp_ctx *smtp;             /* borrowed */
    md_smtp_request route;         /* server or dns/direct_port, helo, tls, auth, timeouts;
                                    * mail_from, rcpt_to and data are filled per message */
    const md_token_keys *keys;     /* for links; NULL: verify and reset cannot be sent */
    const char *verify_url;        /* the token is appended; NULL = https://example.com/verify?token= */
    const char *reset_url;
    int64_t ttl;                   /* link lifetime, seconds; 0 = MD_TOKEN_TTL_DEFAULT */
} md_account_mailer;

/* What happened to one email. */
typedef struct md_account_sent {
    char kind[24];                 /* "reminder", "reset", "no-account" ... */
    char message_id[256];
    md_smtp_outcome outcome;
    md_severity status;            /* the send's status, the worst of its findings
                                    * (unknown: the route's DNS lookup failed, or
                                    * the email could not be composed or sent) */
    char reply[600];               /* "250 2.0.0 Ok: queued as X", or our words */
} md_account_sent;

/* The state a token is bound to, for kind "reset" or "verify" (so a token
 * stops working once used or overtaken).  Writes into buf. */
MD_API const char *md_account_token_state(const md_store_account *a, const char *kind, char *buf,
                                          size_t size);

/*
 * Sends one email of kind mail about account a (NULL for the no-account
 * note) to the address (key = its lookup key, for the send log); usernames
 * for the reminder.  Fills *sent; writes the send log.  Returns MD_OK when
 * the attempt reached an outcome (see sent->outcome), else an error (bad
 * configuration, store failure).
 */
MD_API md_status md_account_mail_one(md_store *s, const md_account_mailer *m, const char *to,
                                     const char *key, md_account_mail mail,
                                     const md_store_account *a, const char *const *usernames,
                                     size_t nusernames, md_account_sent *sent, md_error *err);

/*
 * The self-service answer to one request: every email it causes (a
 * reminder listing all usernames that can receive one; a link per account
 * that gets one; one explanation per other account; or the no-account
 * note).  Nothing goes to a suppressed address (one send-log record says
 * so).  *n receives the number of emails attempted.
 */
MD_API md_status md_account_mail_request(md_store *s, const md_account_mailer *m, const char *to,
                                         const char *key, md_account_want want,
                                         const md_store_account_list *acc, unsigned *n, md_error *err);

#ifdef __cplusplus
}
#endif
#endif
