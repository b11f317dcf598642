/*
 * lib/health: our own sending setup, checked from cron and monitoring
 * (maildiag-health).  One run makes each check asked for, under one
 * deadline, and gives each its own status, findings and duration; the
 * run's status is the worst of them (md_severity_worst: critical > warning
 * > unknown > ok).
 *
 * Checks (md_health_check_id):
 *   spf    our MAIL FROM domain's SPF authorizes each of our IPs (pass),
 *          within the lookup limits            } lib/diag's sender checks
 *   dkim   each selector has a key, RSA of 2048  } (diag.h), reported one
 *          bits or more or Ed25519, not testing  } by one: the same code
 *   dmarc  a record, its policy (p=none is a     } and findings as the
 *          warning: we send password resets),   } sender layer of
 *          alignment of our From domain          } maildiag-why
 *   dnsbl  none of our IPs on a usable zone (an unusable zone is a warning)
 *   rdns   forward-confirmed reverse DNS of each IP, and the HELO name
 *   relay  [mail] server answers, STARTTLS works with a certificate that
 *          verifies and expires later than the thresholds (relay.cert_expiring:
 *          warning within warn_days, critical within crit_days), AUTH as
 *          [mail] user is accepted: one connection, QUIT before MAIL (lib/smtp's
 *          probe, quit_after AUTH)
 *   send   [health] seed: a real test email through the relay, accepted; with
 *          [health] seed_mailbox, its arrival in that mailbox is awaited
 *          (lib/arrival: INBOX or Junk), and the message is then deleted
 * A check asked for whose settings are missing is unknown
 * (health.not_configured, naming the key), never left out; a check cut off
 * by the deadline is unknown (health.timeout); a lookup that failed is
 * unknown (dns.temporary), never "no record".
 *
 * Concurrency: the DNS of every DNS check is queued at once on the caller's
 * md_dns, driven by this thread only (SPF's evaluation drives it too); relay
 * and send run meanwhile in one thread of their own, on the caller's
 * md_smtp_ctx (which nothing else may use during the run), relay first.
 * Every wait in that thread is bounded by the deadline (lib/smtp's
 * deadlines, the arrival wait), and the run joins it before it returns.
 *
 * Change detection (md_health_compare, md_health_state_*): each run leaves
 * its result in a state file (JSON, replaced atomically: temporary file,
 * fsync, rename, fsync of the directory); the next run says what changed
 * since: a listing that appeared or went, a check that was fixed, a problem
 * (finding id) new or resolved, a status that moved.  A check that is
 * unknown now claims nothing resolved: what it cannot see now is presumed
 * as it was, and stays in the state.  A run of some checks (--only) keeps
 * the others' state as it was.
 *
 * The lock (md_health_lock_take): two overlapping runs (cron, a timer)
 * would compare against and replace one state; the second finds the lock
 * held and gives up at once.
 *
 * Nothing here prints; the renderings write to the caller's stream.
 */
#ifndef MAILDIAG_HEALTH_H
#define MAILDIAG_HEALTH_H

#include <stdio.h>
#include <stdint.h>
#include <jansson.h>
#include "base/base.h"
#include "base/conf.h"
#include "diag/diag.h"
#include "dnsbl/dnsbl.h"
#include "report/report.h"
#include "smtp/smtp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The first five are lib/diag's md_diag_check values. */
typedef enum md_health_check_id {
    MD_HEALTH_SPF = 0,
    MD_HEALTH_DKIM,
    MD_HEALTH_DMARC,
    MD_HEALTH_DNSBL,
    MD_HEALTH_RDNS,
    MD_HEALTH_RELAY,
    MD_HEALTH_SEND,
    MD_HEALTH_NCHECKS
} md_health_check_id;

#define MD_HEALTH_ALL ((1u << MD_HEALTH_NCHECKS) - 1u)
#define MD_HEALTH_DNS_CHECKS ((1u << MD_HEALTH_RELAY) - 1u)

#define MD_HEALTH_TIMEOUT_DEFAULT_MS 30000
#define MD_HEALTH_WARN_DAYS_DEFAULT 21
#define MD_HEALTH_CRIT_DAYS_DEFAULT 7

/* "spf", "dkim", "dmarc", "dnsbl", "rdns", "relay", "send". */
MD_API const char *md_health_check_name(md_health_check_id c);
/* The check named (exactly as above), or -1. */
MD_API int md_health_check_parse(const char *name);
/* A list of check names separated by commas or blanks into *mask (bits
 * 1 << md_health_check_id).  MD_OK, or MD_CONFIG with err naming the
 * unknown check (or saying the list is empty). */
MD_API md_status md_health_checks_parse(const char *list, unsigned *mask, md_error *err);

/* ------------------------------------------------------------ settings */

/*
 * The [health] section.  Strings are borrowed from the md_conf.
 *   checks              the checks a run makes when none are asked for
 *                       (default: spf, dkim, dmarc, dnsbl, rdns, relay, and
 *                       send when seed is set)
 *   seed                the address the send check mails (an address of ours)
 *   seed_mailbox        imaps://USER@HOST[:PORT][/FOLDER]: where the seed's mail
 *                       arrives (lib/imap's URL); needs seed
 *   seed_password_file  its IMAP password (else MAILDIAG_IMAP_PASSWORD)
 *   seed_ca_file        CA certificates for the IMAP server (else the system's)
 *   state               the state file (--state overrides it)
 */
typedef struct md_health_settings {
    unsigned checks;                 /* 0: not set */
    const char *seed, *seed_mailbox, *seed_password_file, *seed_ca_file;
    const char *state;
} md_health_settings;

/* Reads and checks [health] from conf (NULL: nothing set).  MD_OK, or
 * MD_CONFIG with err "FILE:LINE: [health] key: what is wrong". */
MD_API md_status md_health_settings_load(const md_conf *conf, md_health_settings *out, md_error *err);

/* The checks of a run that asks for none: [health] checks, else the default
 * set above. */
MD_API unsigned md_health_default_checks(const md_health_settings *h);

/* ------------------------------------------------------------- the run */

typedef struct md_health_config {
    const md_diag_settings *settings;   /* [sender], [dnsbl], [mail] (required) */
    const md_health_settings *health;   /* [health] (required) */
    md_dns *dns;                        /* required for the DNS checks; its per-query
                                         * timeout should not exceed the run's budget */
    md_smtp_ctx *smtp;                  /* required for relay and send ([mail] ca_file) */
    const char *password;               /* AUTH password for [mail] user, or NULL */
    const char *imap_password;          /* for seed_mailbox, or NULL */
} md_health_config;

typedef struct md_health_options {
    unsigned checks;                    /* bits; 0 = md_health_default_checks */
    int timeout_ms;                     /* the whole run; 0 = MD_HEALTH_TIMEOUT_DEFAULT_MS */
    int warn_days, crit_days;           /* certificate thresholds; both 0 = the defaults */
    const char *program;                /* the caller's name: the text heading and the test
                                         * email's "a test send by NAME"; NULL: "health" */
    md_diag_advice_fn advice;           /* next steps in the caller's words (its options and
                                         * commands), consulted first; NULL: md_diag_advice */
} md_health_options;

typedef struct md_health_check {
    int ran;                            /* asked for: present in every rendering */
    md_severity status;                 /* worst of its findings */
    md_report *report;                  /* findings, fields, detail lines (owned) */
    int timed_out;                      /* cut off by the deadline (health.timeout) */
    int64_t duration_ms;                /* from its start to its answer: the DNS checks
                                         * start with the run, send after relay */
} md_health_check;

/* One of our IPs on one blocklist, for the metrics. */
typedef struct md_health_listing {
    char ip[64];
    char zone[256];
    md_dnsbl_state state;
} md_health_listing;

typedef enum md_health_change_kind {
    MD_HEALTH_CHANGE_LISTED = 0,        /* an IP newly listed on a zone */
    MD_HEALTH_CHANGE_UNLISTED,          /* no longer listed (known: not listed now) */
    MD_HEALTH_CHANGE_FIXED,             /* the check is ok now, and was not */
    MD_HEALTH_CHANGE_NEW,               /* a problem (finding id) that was not there */
    MD_HEALTH_CHANGE_RESOLVED,          /* a problem gone (known: nothing unknown now) */
    MD_HEALTH_CHANGE_STATUS             /* the status moved, and nothing above says how */
} md_health_change_kind;

/* "listed", "unlisted", "fixed", "new", "resolved", "status". */
MD_API const char *md_health_change_kind_name(md_health_change_kind k);

typedef struct md_health_change {
    md_health_check_id check;
    md_health_change_kind kind;
    md_severity from, to;               /* the check's status then and now */
    char *finding;                      /* NEW, RESOLVED: the id; else NULL */
    char *ip, *zone;                    /* LISTED, UNLISTED; else NULL */
    int64_t since;                      /* the previous run of the check (Unix seconds) */
    int64_t was_since;                  /* FIXED, STATUS: since when it had been `from` */
    char *summary;                      /* "dnsbl: 192.0.2.10 newly listed on bl.example
                                         * since 2026-12-01T10:00Z" */
} md_health_change;

typedef struct md_health_result {
    md_health_check checks[MD_HEALTH_NCHECKS];
    md_report *run;                     /* the run's own findings (state, Prometheus file) */
    md_severity status;                 /* worst over the checks that ran and run */
    int64_t started;                    /* Unix seconds */
    int64_t elapsed_ms;
    int timeout_ms;
    int warn_days, crit_days;
    const char *program;                /* from the options (static), never NULL */
    md_diag_advice_fn advice;           /* from the options */
    int64_t dns_ms;                     /* when the last DNS check's answer was in; -1: none ran */
    int64_t smtp_ms;                    /* the relay probe's dialogue; -1: none */
    int64_t send_ms;                    /* the test send's dialogue; -1: none */
    int64_t delivery_ms;                /* its arrival latency; -1: not known */
    char relay[300];                    /* "HOST:PORT" of the relay probed; "" */
    int64_t cert_not_after;             /* its certificate's notAfter (Unix s); 0: not known */
    md_health_listing *listings;        /* each IP on each zone (dnsbl) */
    size_t nlistings;
    int dnsbl_known;                    /* every listing is known (listed or not) */
    unsigned long dnsbl_listed;         /* listings on usable zones */
    /* filled by md_health_compare */
    int compared;                       /* a previous state was there */
    int64_t previous;                   /* the latest previous run among the checks */
    md_health_change *changes;
    size_t nchanges;
} md_health_result;

/*
 * Runs the checks opt asks for (see the top).  Returns MD_OK with *out
 * (caller frees with md_health_result_free), whatever the checks found;
 * MD_CONFIG with err when opt is unusable (thresholds: crit_days above
 * warn_days) or cfg lacks settings.
 */
MD_API md_status md_health_run(const md_health_config *cfg, const md_health_options *opt,
                               md_health_result **out, md_error *err);
MD_API void md_health_result_free(md_health_result *r);

/* Adds a finding of the run itself (health.state_error,
 * health.prometheus_error) and updates r->status. */
MD_API void md_health_note(md_health_result *r, const char *id, const char *fmt, ...)
           __attribute__((format(printf, 3, 4)));

/* --------------------------------------------------- state, changes, lock */

typedef struct md_health_state md_health_state;

/*
 * The default state file: /var/lib/maildiag/health.json when that folder
 * exists and is writable by us, else $XDG_STATE_HOME/maildiag/health.json
 * (or ~/.local/state/maildiag/health.json), whose folders are made (0700)
 * when missing.  MD_OK with the path in out; MD_CONFIG when there is no
 * home to fall back on or the folder cannot be made.
 */
MD_API md_status md_health_state_path_default(char *out, size_t size, md_error *err);

/* Reads the state left by an earlier run.  MD_OK with *out (free with
 * md_health_state_free); MD_NOTFOUND when there is none (a first run);
 * MD_PROTOCOL when the file is not a state this version reads; MD_INTERNAL
 * when it cannot be read.  err says which file and why. */
MD_API md_status md_health_state_load(const char *path, md_health_state **out, md_error *err);
/* The same for a state's text (name is the file, for err).  MD_OK or
 * MD_PROTOCOL. */
MD_API md_status md_health_state_parse(const char *text, size_t len, const char *name, md_health_state **out,
                                       md_error *err);
MD_API void md_health_state_free(md_health_state *st);

/* When prev holds no check that ran now, or is NULL: nothing to compare.
 * Otherwise fills r->changes (see md_health_change) and r->previous. */
MD_API void md_health_compare(md_health_result *r, const md_health_state *prev);

/*
 * Writes r as the new state to path, keeping prev's checks that did not run
 * now and, for those that did, what they cannot see now (see the top).
 * Atomic: PATH.tmp.PID in the same folder, fsync, rename over path, fsync of
 * the folder.  MD_OK, or MD_INTERNAL with err (the old state is untouched).
 */
MD_API md_status md_health_state_save(const char *path, const md_health_result *r,
                                      const md_health_state *prev, md_error *err);
/* The text md_health_state_save writes (JSON).  Caller frees with free();
 * NULL only when jansson cannot render it. */
MD_API char *md_health_state_text(const md_health_result *r, const md_health_state *prev);

typedef struct md_health_lock md_health_lock;

/*
 * Takes the lock of the state file state_path: an flock on STATE.lock beside
 * it, not on the state itself, which each run replaces by a rename (a new
 * inode: a lock held on the old one would no longer exclude anybody).
 * Never waits.  MD_OK with *out (release with md_health_lock_release);
 * MD_TEMPFAIL when another process holds it; MD_INTERNAL when the lock file
 * cannot be made (err says why).
 */
MD_API md_status md_health_lock_take(const char *state_path, md_health_lock **out, md_error *err);
MD_API void md_health_lock_release(md_health_lock *l);

/* ------------------------------------------------------------- renderings */

/* "2026-12-01T10:00Z" (UTC, minutes) of Unix seconds t, into out (>= 18 bytes). */
MD_API void md_health_time(int64_t t, char *out, size_t size);

/*
 * The JSON contract (maildiag-health(1)): {"schema_version": 1, "status",
 * "started", "elapsed_ms", "timeout_ms", "checks": [{"check", "status",
 * "findings": [...], "duration_ms", "timed_out", "data"}], "findings" (the
 * run's own), "changes": null (no earlier run) | [{"check", "kind",
 * "summary", "since", ...}], "previous_run": null | "TIME", "perfdata"}.
 * New reference.
 */
MD_API json_t *md_health_result_json(const md_health_result *r);

/* The perfdata of the plugin line into out: dns_time, smtp_time, send_time,
 * delivery_time (seconds, "s"), cert_days ("d", thresholds "W:" and "C":
 * alert below), dnsbl_listed (critical above 0), each only when measured. */
MD_API void md_health_perfdata(const md_health_result *r, char *out, size_t size);

#define MD_HEALTH_PLUGIN_SHORT 0x1u   /* the first line only, without perfdata */

/*
 * The monitoring-plugin output: "PROGRAM STATE - " (the options' program
 * in capitals, "MAILDIAG HEALTH") and the checks
 * that are not ok, worst first ("dnsbl: 192.0.2.10 listed on bl.example;
 * dmarc: ..."), then how many are ok, then " | " and the perfdata; then
 * the long output: what changed since the last run, and one line per
 * check with its findings that are not ok.  No '|' in the text.  Returns
 * 0, or -1 on a write error.
 */
MD_API int md_health_write_plugin(const md_health_result *r, FILE *out, unsigned flags);

#define MD_HEALTH_TEXT_ALL 0x100u   /* md_health_write_text: ok findings too */

/* Human text: the status line, one line per check, the changes, then the
 * findings that are not ok with their evidence.  flags: MD_TEXT_COLOR,
 * MD_TEXT_EVIDENCE, MD_HEALTH_TEXT_ALL.  Returns 0, or -1 on a write error. */
MD_API int md_health_write_text(const md_health_result *r, FILE *out, unsigned flags);

/*
 * Writes the node_exporter textfile at path (lib/report/prom: atomic):
 * maildiag_health_status, maildiag_check_status{check},
 * maildiag_check_duration_seconds{check},
 * maildiag_tls_cert_expiry_timestamp_seconds{server} (NaN when not known),
 * maildiag_dnsbl_listed{ip,zone} (1 listed, 0 not, NaN unknown or an
 * unusable zone), maildiag_last_run_timestamp_seconds.  Status values are
 * the exit codes: 0 ok, 1 warning, 2 critical, 3 unknown.  MD_OK, or
 * MD_INTERNAL with err (the file is then unchanged).
 */
MD_API md_status md_health_write_prometheus(const md_health_result *r, const char *path, md_error *err);

#ifdef __cplusplus
}
#endif
#endif
