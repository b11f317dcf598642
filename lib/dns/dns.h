/*
 * lib/dns: the c-ares core.  One channel, driven by poll() with a bounded
 * in-flight window; queries beyond the window wait in a FIFO queue, so many
 * thousands can be queued without slowing anything down.  Identical queries
 * (same name and type) that are queued or in flight are merged, and answers
 * are kept in a small TTL-bounded cache for the life of the resolver.
 *
 * Outcomes are kept distinct: an answer, NODATA, NXDOMAIN, SERVFAIL,
 * REFUSED, a timeout and a bad response are never folded together.
 *
 * Not thread-safe: one md_dns per thread.  Callbacks run inside
 * md_dns_run()/md_dns_step(); they may queue further queries.
 */
#ifndef MAILDIAG_DNS_H
#define MAILDIAG_DNS_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Query types used by maildiag (values are the DNS RR type codes). */
enum {
    MD_DNS_A = 1,
    MD_DNS_CNAME = 5,
    MD_DNS_PTR = 12,
    MD_DNS_MX = 15,
    MD_DNS_TXT = 16,
    MD_DNS_AAAA = 28
};

typedef enum md_dns_outcome {
    MD_DNS_ANSWER = 0,   /* NOERROR with records of the type asked for */
    MD_DNS_NODATA,       /* NOERROR, the name exists, no records of the type */
    MD_DNS_NXDOMAIN,     /* the name does not exist */
    MD_DNS_SERVFAIL,     /* the server answered SERVFAIL */
    MD_DNS_REFUSED,      /* the server answered REFUSED */
    MD_DNS_TIMEOUT,      /* no answer within the budget */
    MD_DNS_BADRESP,      /* a reply we cannot use: malformed, FORMERR, NOTIMP ... */
    MD_DNS_ERROR         /* local failure: no server reachable, out of memory ... */
} md_dns_outcome;

/* "answer", "nodata", "nxdomain", "servfail", "refused", "timeout",
 * "badresp", "error". */
MD_API const char *md_dns_outcome_name(md_dns_outcome o);
/* Whether the outcome is temporary (servfail, refused, timeout, badresp, error). */
MD_API int md_dns_outcome_is_temporary(md_dns_outcome o);

typedef struct md_dns_mx {
    unsigned preference;
    char *host;          /* lower case, no trailing dot; "" for the null MX "." */
} md_dns_mx;

typedef struct md_dns_txt {
    char *data;          /* the record's character-strings joined, NUL-terminated */
    size_t len;          /* may contain NUL bytes: use len */
} md_dns_txt;

typedef struct md_dns_addr {
    int family;          /* AF_INET or AF_INET6 */
    unsigned char bytes[16];
    char text[46];       /* inet_ntop form */
} md_dns_addr;

/* One query's result.  Borrowed by callbacks: valid only during the callback.
 * md_dns_answer_copy() makes an owned copy. */
typedef struct md_dns_answer {
    md_dns_outcome outcome;
    int type;
    char *qname;             /* as asked, lower case, no trailing dot */
    char **cnames;           /* the CNAME chain: targets in order */
    size_t ncnames;
    size_t n;                /* number of records of `type` */
    md_dns_mx *mx;           /* MD_DNS_MX: sorted by preference, then host */
    md_dns_txt *txt;         /* MD_DNS_TXT */
    md_dns_addr *addr;       /* MD_DNS_A, MD_DNS_AAAA */
    char **names;            /* MD_DNS_PTR, MD_DNS_CNAME */
    uint32_t ttl;            /* lowest TTL seen (negative: SOA minimum) */
    int from_cache;
    char detail[128];        /* why, for the failure outcomes; "" otherwise */
} md_dns_answer;

/* Deep copy; caller frees with md_dns_answer_free(). */
MD_API md_dns_answer *md_dns_answer_copy(const md_dns_answer *a);
MD_API void md_dns_answer_free(md_dns_answer *a);

/*
 * Parses a DNS reply (wire format) for the question (qname, type) into out.
 * Follows the CNAME chain from qname; keeps only records of `type` owned by
 * the end of the chain.  Fills outcome from the rcode.  Returns MD_OK, or
 * MD_PROTOCOL when the reply is malformed (out->outcome = MD_DNS_BADRESP).
 * out is owned by the caller: release with md_dns_answer_clear().
 */
MD_API md_status md_dns_parse(const unsigned char *buf, size_t len, const char *qname,
                              int type, md_dns_answer *out);
MD_API void md_dns_answer_clear(md_dns_answer *a);

typedef struct md_dns_config {
    const char *const *servers;  /* "IP", "IP:PORT", "[IPv6]:PORT"; NULL/0 = system */
    size_t nservers;
    double timeout;              /* whole-query budget in seconds incl. retries; 0 = 5 */
    unsigned window;             /* max queries in flight; 0 = default */
    unsigned cache_max;          /* max cached answers; 0 = MD_DNS_CACHE_DEFAULT */
    int no_cache;                /* 1: keep no answers after they are delivered */
} md_dns_config;

#define MD_DNS_TIMEOUT_DEFAULT 5.0
#define MD_DNS_WINDOW_DEFAULT  400
#define MD_DNS_CACHE_DEFAULT   20000

/*
 * Validates one server spec and writes its c-ares form ("1.2.3.4:53",
 * "[2001:db8::1]:53") into out.  Returns MD_OK or MD_CONFIG with err set.
 */
MD_API md_status md_dns_server_parse(const char *spec, char *out, size_t outsize, md_error *err);

/*
 * Splits a list of server specs separated by commas or blanks (the
 * MAILDIAG_RESOLVER form) into a new NULL-terminated array.  Caller frees
 * with md_dns_server_list_free().  Returns NULL for an empty list.
 */
MD_API char **md_dns_server_list_split(const char *list, size_t *n);
MD_API void md_dns_server_list_free(char **list);

typedef struct md_dns md_dns;

/* Creates a resolver.  Returns NULL and fills err on failure (bad server
 * spec, c-ares init failure).  Caller frees with md_dns_free(). */
MD_API md_dns *md_dns_new(const md_dns_config *cfg, md_error *err);
/* Frees the resolver; queries still pending are dropped without callbacks. */
MD_API void md_dns_free(md_dns *dns);

typedef void (*md_dns_cb)(void *arg, const md_dns_answer *answer);

/* Queues a query; cb is called exactly once, from md_dns_run/md_dns_step
 * (never from inside md_dns_query).  name may have a trailing dot. */
MD_API void md_dns_query(md_dns *dns, const char *name, int type, md_dns_cb cb, void *arg);

/*
 * Runs the event loop once: sends queued queries up to the window, waits
 * at most max_wait_ms (-1: until something happens) and processes replies
 * and timeouts.  Returns the number of queries still queued or in flight.
 */
MD_API size_t md_dns_step(md_dns *dns, int max_wait_ms);
/* Runs until no query is queued or in flight. */
MD_API void md_dns_run(md_dns *dns);

/*
 * One query, synchronously: queues it and drives the loop until its answer
 * arrives (other queries queued on dns progress too).  For code that runs on
 * a private md_dns, such as an SPF evaluation in a worker; never call it from
 * inside a callback of the same md_dns.  Never returns NULL: a query that
 * could not finish comes back as MD_DNS_ERROR.  Caller frees with
 * md_dns_answer_free().
 */
MD_API md_dns_answer *md_dns_resolve(md_dns *dns, const char *name, int type);
/* Queued + in flight. */
MD_API size_t md_dns_pending(const md_dns *dns);

/*
 * Ends every queued and in-flight query now, and every query made later on
 * this resolver: their callbacks run (from inside this call, or from the
 * next md_dns_step for queries made afterwards) with MD_DNS_ERROR and the
 * detail "cancelled".  No packet is sent after it.  For a run that was
 * interrupted: the checks in progress finish at once, and free what they
 * hold, instead of waiting for their answers.
 */
MD_API void md_dns_cancel(md_dns *dns);

typedef struct md_dns_stats {
    unsigned long queries;      /* md_dns_query calls */
    unsigned long sent;         /* handed to c-ares */
    unsigned long merged;       /* joined an identical queued/in-flight query */
    unsigned long cache_hits;
    unsigned long outcomes[8];  /* by md_dns_outcome */
} md_dns_stats;

MD_API void md_dns_get_stats(const md_dns *dns, md_dns_stats *out);

#ifdef __cplusplus
}
#endif
#endif
