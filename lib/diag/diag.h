/*
 * lib/diag: why did an email not arrive?  One diagnosis over every layer
 * an email crosses, naming the first one that is broken.
 *
 * Layers, in this order (md_diag_layer_id); each runs as far as it can and
 * all are reported, and the verdict blames the first one that is not ok:
 *  1. address    the one address grammar (lib/address) and a typo
 *                suggestion from the store's popular domains and what DNS
 *                says of the domain (md_address_suggest);
 *  2. account    with a store: the accounts on the address, judged by
 *                lib/account, and what stops the email asked for;
 *  3. domain     the recipient domain's MX route (lib/mx);
 *  4. recipient  the probe: the MX hosts in order, port 25 (or
 *                direct_port), banner, EHLO, STARTTLS and its certificate,
 *                MAIL and RCPT for the address, QUIT, never DATA (lib/smtp's
 *                direct route with quit_after RCPT);
 *  5. sender     our side: SPF of our MAIL FROM domain for each of our IPs
 *                (lib/spf), our DKIM keys and DMARC policy (lib/auth's
 *                evaluators), each IP on each blocklist and its
 *                forward-confirmed reverse DNS and HELO name (lib/dnsbl,
 *                lib/rdns);
 *  6. send       with send: the product's email for real (lib/message,
 *                lib/smtp), through the relay or direct.
 * A layer that cannot run is absent (no store, no probe asked, no send
 * asked, no sender configured).  A layer whose input is missing because
 * an earlier one failed (no route to probe, an invalid address) is
 * unknown with diag.skipped; a layer cut off by the run's deadline is
 * unknown with diag.timeout.  A lookup that failed makes what depends on
 * it unknown, never "no record".
 *
 * Concurrency: the DNS of layers 3 and 5 is queued at once on the caller's
 * md_dns (lib/mx, lib/dnsbl, lib/rdns start asynchronously; DMARC and DKIM
 * records are fetched here and judged by lib/auth's pure evaluators); the
 * store is read while those packets travel, and lib/spf, which drives the
 * channel itself, progresses the other queries while it waits.  The probe
 * then finds the MX answers in lib/dns's cache.
 *
 * Nothing here prints.  md_diag_result_json and md_diag_write_text are the
 * renderings every caller shares (maildiag-why; later health, selfcheck).
 */
#ifndef MAILDIAG_DIAG_H
#define MAILDIAG_DIAG_H

#include <stdio.h>
#include "base/base.h"
#include "base/conf.h"
#include "address/address.h"
#include "account/account.h"
#include "dns/dns.h"
#include "dnsbl/dnsbl.h"
#include "report/report.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "token/token.h"
#include "message/message.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum md_diag_layer_id {
    MD_DIAG_ADDRESS = 0,
    MD_DIAG_ACCOUNT,
    MD_DIAG_DOMAIN,
    MD_DIAG_RECIPIENT,
    MD_DIAG_SENDER,
    MD_DIAG_SEND,
    MD_DIAG_NLAYERS
} md_diag_layer_id;

/* "address", "account", "domain", "recipient", "sender", "send". */
MD_API const char *md_diag_layer_name(md_diag_layer_id id);

/* Which email is missing. */
typedef enum md_diag_email {
    MD_DIAG_EMAIL_ANY = 0,
    MD_DIAG_EMAIL_RESET,
    MD_DIAG_EMAIL_VERIFY,
    MD_DIAG_EMAIL_USERNAME
} md_diag_email;

/* "any", "reset", "verify", "username"; parse returns -1 when unknown. */
MD_API const char *md_diag_email_name(md_diag_email e);
MD_API int md_diag_email_parse(const char *s);

/* ------------------------------------------------------------ settings */

#define MD_DIAG_LIST_MAX 16   /* IPs, selectors, zones: more is a config error */

/*
 * What maildiag-why needs from the configuration file, read and checked
 * once (md_diag_settings_load), so every caller validates alike.  Strings
 * are borrowed from the md_conf (or set by the caller to its own, e.g. a
 * command-line override) and must outlive the settings.
 *
 *   [sender]  from (our From and MAIL FROM; default [mail] from),
 *             ips, helo, dkim_selectors
 *   [dnsbl]   zones
 *   [mail]    from, from_name, product, template_dir, server, tls, user,
 *             password_file, helo, ca_file, direct_port, allow_internal,
 *             timeout
 *   [token]   key_file, verify_url, reset_url, ttl
 *   [store]   uri, typo_many, local_part_case (as the account tools read them)
 */
typedef struct md_diag_settings {
    /* [sender]: has_sender when the section names any of its keys */
    int has_sender;
    const char *from;
    const char *ips[MD_DIAG_LIST_MAX];
    size_t nips;
    const char *helo;
    const char *selectors[MD_DIAG_LIST_MAX];
    size_t nselectors;
    /* [dnsbl] */
    const char *zones[MD_DIAG_LIST_MAX];
    size_t nzones;
    /* [mail] */
    const char *mail_from, *from_name, *product, *template_dir;
    const char *server;              /* relay HOST[:PORT]; NULL: direct */
    md_smtp_tls tls;
    const char *user, *password_file, *mail_helo, *ca_file;
    unsigned direct_port;            /* 0 = 25 */
    int allow_internal;
    int send_timeout_ms;             /* [mail] timeout; 0 = the run's budget */
    /* [token] */
    const char *key_file, *verify_url, *reset_url;
    int64_t ttl;
    /* [store] */
    const char *store_uri;
    unsigned long typo_many;         /* "many accounts" for typo suggestions; 0 = default */
    int case_sensitive;              /* local_part_case = sensitive */
    /* storage for the split lists (each value copied once) */
    char *lists[3];
} md_diag_settings;

/*
 * Reads and checks the settings from conf (may be NULL: nothing set).
 * Each value is checked with the library that owns its rule: from with the
 * address grammar (md_address_check), ips with inet_pton (IPv4 or IPv6),
 * helo with the domain rules (md_domain_normalize), selectors and zones as
 * domain names, direct_port 1..65535, allow_internal yes or no, tls
 * required, opportunistic or off.  Returns MD_OK, or MD_CONFIG with err
 * "FILE:LINE: [section] key: what is wrong" (stage "config").  Free with
 * md_diag_settings_clear (also after a failure).
 */
MD_API md_status md_diag_settings_load(const md_conf *conf, md_diag_settings *out, md_error *err);
MD_API void md_diag_settings_clear(md_diag_settings *s);

/*
 * Writes the effective settings as INI to out, secrets masked: a URI's
 * password and any password value become "****" (password_file names a
 * file and is shown).  Returns 0, or -1 on a write error.
 */
MD_API int md_diag_settings_write(const md_diag_settings *s, FILE *out);

/* ------------------------------------- our sending setup, check by check */

/*
 * The sender-side checks of [sender] and [dnsbl], each on its own: the
 * sender layer of a diagnosis, and the DNS checks of maildiag-health.
 *
 *   spf    our MAIL FROM domain's SPF for each of our IPs (lib/spf, the RFC
 *          7208 walk), with spf.lookups_near_limit when a pass needs 9 or 10
 *          of the 10 DNS-querying terms;
 *   dkim   the key at each selector of our MAIL FROM domain (lib/auth's
 *          evaluator: size, type, revoked, testing);
 *   dmarc  the record that applies to our From domain ([mail] from, else
 *          [sender] from), its policy (p=none is a warning: we send password
 *          resets), and alignment (RFC 7489 3.1, as the record's aspf and
 *          adkim ask) of the From domain with MAIL FROM and with the DKIM
 *          signing domain, which is the MAIL FROM domain, where the selectors
 *          are published: dmarc.aligned, dmarc.partly_aligned,
 *          dmarc.unaligned;
 *   dnsbl  each IP on each zone (lib/dnsbl, RFC 5782, with the test points);
 *   rdns   each IP's forward-confirmed reverse DNS and our HELO name
 *          (lib/rdns).
 *
 * md_diag_sender_start queues the DNS of dkim, dmarc, dnsbl and rdns at
 * once on the caller's md_dns, where it runs alongside whatever else the
 * caller queued; md_diag_sender_spf, which drives the channel itself (lib/spf
 * evaluates synchronously), progresses them while it waits.  The caller then
 * drives the channel (md_dns_step) while md_diag_sender_pending, and at its
 * deadline calls md_diag_sender_expire and md_dns_cancel: what was still out
 * is then unknown (dns.temporary "cancelled"), and md_diag_sender_timed_out
 * says which checks the deadline cut off, so that the caller can say so in
 * its own words.  Then each check is reported into a report of the caller's
 * choosing (findings, fields "spf", "dkim", "dmarc", "dnsbl", "rdns", and
 * detail lines).  A lookup that failed is unknown, never "no record".
 */
typedef enum md_diag_check {
    MD_DIAG_CHECK_SPF = 0,
    MD_DIAG_CHECK_DKIM,
    MD_DIAG_CHECK_DMARC,
    MD_DIAG_CHECK_DNSBL,
    MD_DIAG_CHECK_RDNS,
    MD_DIAG_NCHECKS
} md_diag_check;

#define MD_DIAG_CHECKS_ALL ((1u << MD_DIAG_NCHECKS) - 1u)

/* "spf", "dkim", "dmarc", "dnsbl", "rdns". */
MD_API const char *md_diag_check_name(md_diag_check c);

/* What check c needs from s that is not there ("[sender] ips"), or NULL
 * when it can run.  Static text. */
MD_API const char *md_diag_sender_missing(const md_diag_settings *s, md_diag_check c);

typedef struct md_diag_sender md_diag_sender;

/*
 * Starts the checks in the bitmask checks (1 << MD_DIAG_CHECK_*) of our
 * side as s describes it (borrowed: s and dns must outlive the result);
 * deadline_ms is on md_now_ms's clock and bounds SPF and the DMARC
 * evaluator's further questions.  A check that lacks its settings reports
 * nothing (see md_diag_sender_missing).  Never fails.  Free with
 * md_diag_sender_free.
 */
MD_API md_diag_sender *md_diag_sender_start(md_dns *dns, const md_diag_settings *s, unsigned checks,
                                            int64_t deadline_ms);
/* Evaluates SPF for each of our IPs into rep, driving the channel (so the
 * other checks progress meanwhile), at most until the deadline.  Once. */
MD_API void md_diag_sender_spf(md_diag_sender *x, md_report *rep);
/* Whether any DNS of dkim, dmarc, dnsbl or rdns is still out; whether
 * check c's is. */
MD_API int md_diag_sender_pending(const md_diag_sender *x);
MD_API int md_diag_sender_check_pending(const md_diag_sender *x, md_diag_check c);
/* The deadline passed: every check still waiting is timed out, and nothing
 * more is asked.  Call md_dns_cancel next. */
MD_API void md_diag_sender_expire(md_diag_sender *x);
/* Whether the deadline cut check c off (SPF: an evaluation could not start,
 * or ended in temperror at the deadline). */
MD_API int md_diag_sender_timed_out(const md_diag_sender *x, md_diag_check c);
/* md_now_ms when check c's answers were all in (SPF: when its evaluations
 * ended); 0 while they are not. */
MD_API int64_t md_diag_sender_ready_ms(const md_diag_sender *x, md_diag_check c);
/* Reports check c (not SPF: md_diag_sender_spf reports as it runs) into
 * rep.  Call when its answers are in or the run was cancelled. */
MD_API void md_diag_sender_report(md_diag_sender *x, md_diag_check c, md_report *rep);
/* The judged blocklist result, or NULL (not asked, not started, not in
 * yet).  Borrowed: valid until md_diag_sender_free. */
MD_API const md_dnsbl_result *md_diag_sender_dnsbl(const md_diag_sender *x);
/* Frees x; answers still out are cancelled first (md_dns_cancel, which ends
 * every query on the channel).  NULL is a no-op. */
MD_API void md_diag_sender_free(md_diag_sender *x);

/* ------------------------------------------------------------- the run */

/* What the caller brings: resources (borrowed) and settings. */
typedef struct md_diag_config {
    const md_diag_settings *settings;
    md_dns *dns;                     /* required; its per-query timeout should not
                                      * exceed the run's budget */
    md_store *store;                 /* NULL: no account layer, typo from the
                                      * built-in providers only */
    const char *store_error;         /* a store is configured but could not be
                                      * opened: why (the account layer is then
                                      * unknown, store.error) */
    md_account_options account;
    md_smtp_ctx *smtp;               /* required for the probe and the send */
    const char *password;            /* AUTH password for the relay (send), or NULL */
    const md_token_keys *keys;       /* send of verify/reset: link keys (NULL: a
                                      * throwaway key, and the link says so) */
} md_diag_config;

/* What to do next about a finding (by id), in the caller's words: its
 * commands and options.  Returns static text, or NULL for md_diag_advice's
 * words. */
typedef const char *(*md_diag_advice_fn)(const char *id);

typedef struct md_diag_options {
    md_diag_email email;
    int send;                        /* layer 6 */
    int no_probe;                    /* no layer 4 */
    int timeout_ms;                  /* the whole run; 0 = 30000 */
    int64_t now;                     /* Unix seconds for the store; 0 = time() */
    md_diag_advice_fn advice;        /* the renderings' next steps; NULL: md_diag_advice */
} md_diag_options;

typedef struct md_diag_layer {
    int ran;                         /* 0: absent from the result */
    md_severity status;
    md_report *report;               /* findings, fields, detail lines (owned) */
    int timed_out;                   /* cut off by the deadline: diag.timeout */
} md_diag_layer;

typedef struct md_diag_verdict {
    int set;                         /* 0: nothing is wrong */
    md_diag_layer_id layer;
    char id[64];                     /* the finding that decides */
    md_severity severity;
    char summary[768];               /* one sentence for the user */
} md_diag_verdict;

typedef struct md_diag_result {
    char *input;                     /* the address as given */
    md_diag_email email;
    int address_ok;
    md_address address;              /* valid when address_ok */
    md_diag_layer layers[MD_DIAG_NLAYERS];
    md_diag_verdict verdict;
    md_severity status;              /* worst over the layers that ran */
    int64_t elapsed_ms;
    md_diag_advice_fn advice;        /* from the options, for the renderings */
    int probed;                      /* probe holds a result */
    md_smtp_result probe;
    int sent;                        /* send holds a result */
    md_smtp_result send;
} md_diag_result;

/*
 * Diagnoses address (as typed by a person) for the email opt asks about,
 * within opt->timeout_ms.  Returns MD_OK with *out (caller frees with
 * md_diag_result_free), whatever the diagnosis found, an invalid address
 * included (layer address unknown: address.invalid); MD_CONFIG with err
 * when cfg lacks what it must hold (dns, smtp with a probe or send).
 */
MD_API md_status md_diag_run(const md_diag_config *cfg, const char *address,
                             const md_diag_options *opt, md_diag_result **out, md_error *err);
MD_API void md_diag_result_free(md_diag_result *r);

/*
 * The JSON contract (maildiag-why(1)): {"schema_version": 1, "address",
 * "email", "status", "verdict": null | {"layer", "id", "severity",
 * "summary"}, "layers": [{"layer", "status", "findings": [...], and the
 * layer's fields}], "elapsed_ms"}.  New reference.
 */
MD_API json_t *md_diag_result_json(const md_diag_result *r);

/* What to do next about a finding, in a support engineer's words that name
 * no tool or option, or NULL.  Static. */
MD_API const char *md_diag_advice(const char *id);

#define MD_DIAG_TEXT_ALL 0x100u   /* md_diag_write_text: ok findings too */

/* Human text: the verdict sentence, one line per layer with its status,
 * then each finding that is not ok with its evidence and what to do next.
 * flags are MD_TEXT_COLOR, MD_TEXT_EVIDENCE and MD_DIAG_TEXT_ALL.  Returns 0, or -1 on a write error. */
MD_API int md_diag_write_text(const md_diag_result *r, FILE *out, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
