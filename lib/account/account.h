/*
 * lib/account: what the state of the accounts behind an address means for
 * the emails a product sends (verification, password reset, username
 * reminder), in findings and plain words.  Pure: the caller gathers the
 * facts from lib/store, lib/address and lib/mx.
 *
 * Severities (a lookup's status, and so the exit code of a tool that shows it):
 *   ok       an account on the address can receive the product's emails
 *   warning  something a user or support can act on: no account, a typo,
 *            SSO-only, locked, never verified, a pending change, look-alike
 *            accounts, the last email failed
 *   critical no email can reach it: suppressed, the domain takes no mail,
 *            or the only accounts are deactivated
 *   unknown  the facts could not be gathered (DNS temporary failure)
 * A deactivated account beside one that can receive email is a warning.
 */
#ifndef MAILDIAG_ACCOUNT_H
#define MAILDIAG_ACCOUNT_H

#include "address/address.h"
#include "report/report.h"
#include "store/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a person asks for on the self-service path. */
typedef enum md_account_want {
    MD_ACCOUNT_WANT_USERNAME = 0,
    MD_ACCOUNT_WANT_VERIFY,
    MD_ACCOUNT_WANT_RESET
} md_account_want;

/* What one account gets in answer. */
typedef enum md_account_mail {
    MD_ACCOUNT_MAIL_REMINDER = 0,  /* its username */
    MD_ACCOUNT_MAIL_VERIFY,        /* a fresh verification link */
    MD_ACCOUNT_MAIL_RESET,         /* a password-reset link */
    MD_ACCOUNT_MAIL_VERIFIED,      /* "already verified": no link needed */
    MD_ACCOUNT_MAIL_EXPLAIN_SSO,   /* "sign in through PROVIDER": never a reset link */
    MD_ACCOUNT_MAIL_EXPLAIN_DEACTIVATED,
    MD_ACCOUNT_MAIL_EXPLAIN_LOCKED
} md_account_mail;

/* "username", "verify", "reset"; parse returns -1 when unknown. */
MD_API const char *md_account_want_name(md_account_want w);
MD_API int md_account_want_parse(const char *s);
/* "reminder", "verify", "reset", "verified", "explain-sso" ... */
MD_API const char *md_account_mail_name(md_account_mail m);

/* The answer one account gets for a request. */
MD_API md_account_mail md_account_mail_for(const md_store_account *a, md_account_want want);

/* Whether the account can receive the product's emails at all (active or
 * locked; deactivated accounts get none). */
MD_API int md_account_can_receive(const md_store_account *a);

/* Everything known about one address. */
typedef struct md_account_facts {
    const md_address *address;             /* parsed address */
    const char *key;                       /* its lookup key */
    const md_store_account_list *accounts; /* the accounts on it */
    const unsigned *active_sessions;       /* per account, or NULL */
    const md_store_account_list *also;     /* provider look-alikes, or NULL */
    const md_store_suppression *suppression; /* NULL when not suppressed */
    const md_store_send_list *sent;        /* recent sends, newest first, or NULL */
    md_address_mx mx;                      /* the domain's mail route */
    int mx_checked;                        /* DNS was asked */
    const char *mx_detail;                 /* words for the route, or NULL */
    const char *typo;                      /* suggested domain, or NULL */
    int64_t now;
    const char *suppression_advice;        /* what to do about a suppression, in the
                                            * caller's words (address.suppressed's
                                            * summary ends with it); NULL = none */
} md_account_facts;

/*
 * Adds findings, detail lines and the JSON fields "address", "accounts",
 * "also_matches", "suppression", "sent", "domain", "typo" to rep.
 */
MD_API void md_account_evaluate(const md_account_facts *f, md_report *rep);

#ifdef __cplusplus
}
#endif

/* ------------------------------------------------------- gathering facts */
#include "dns/dns.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct md_account_options {
    unsigned key_flags;       /* MD_ADDRESS_CASE_SENSITIVE ... */
    unsigned long many;       /* "many accounts" for typo suggestions; 0 = default */
    unsigned sent_limit;      /* recent sends listed; 0 = 10 */
    const char *suppression_advice;  /* md_account_facts.suppression_advice */
} md_account_options;

/* What anyone may learn about an address: nothing about accounts. */
typedef struct md_account_public {
    md_address address;
    char key[MD_ADDRESS_MAX + 1];        /* lookup key */
    char pkey[MD_ADDRESS_MAX + 1];       /* provider key, or "" */
    md_address_mx mx;
    int mx_checked;
    char mx_detail[256];
    char typo[MD_ADDRESS_DOMAIN_MAX + 1];     /* suggested domain, or "" */
} md_account_public;

/*
 * Parses input and gathers the public facts: the domain's mail route
 * through lib/mx when dns is not NULL, and a typo suggestion (which uses
 * the store's per-domain counts).  MD_CONFIG for an invalid address (err
 * says why), a store error otherwise.
 */
MD_API md_status md_account_public_facts(md_store *s, md_dns *dns, const char *input,
                                         const md_account_options *o, md_account_public *out,
                                         md_error *err);

/*
 * The whole picture behind an address (support only): public facts plus
 * accounts, sessions, look-alikes, suppression and recent sends, evaluated
 * into rep with md_account_evaluate.
 */
MD_API md_status md_account_lookup(md_store *s, md_dns *dns, const char *input,
                                   const md_account_options *o, int64_t now, md_report *rep,
                                   md_error *err);

/* The same for the account named username; MD_NOTFOUND when none. */
MD_API md_status md_account_lookup_username(md_store *s, md_dns *dns, const char *username,
                                            const md_account_options *o, int64_t now, md_report *rep,
                                            md_error *err);

#ifdef __cplusplus
}
#endif
#endif
