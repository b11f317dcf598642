/*
 * lib/dns: the c-ares event loop.
 *
 * Design:
 *  - one c-ares channel, ARES_FLAG_NOCHECKRESP so SERVFAIL/REFUSED reach us
 *    as themselves, NOSEARCH, DNS only;
 *  - c-ares' per-try timeout doubles every round (timeout << try/nservers),
 *    so we size the first try so that all tries fit the whole budget;
 *  - a table keyed by (type, name) merges identical queries and keeps
 *    delivered answers until their TTL ends (bounded: see cache_trim);
 *  - two FIFOs of queries waiting for the window, follow-ups first, and the
 *    window itself (dns.h says how it adapts);
 *  - poll() over the sockets c-ares reports, with a fixed tick for timeout
 *    processing, because ares_timeout() walks every pending query.
 *
 * Every entry is on at most one list at a time, so one pair of links serves
 * them all: a queue (waiting), the live list (in flight and counted in the
 * window, oldest first) or a cache segment (answered and kept).
 */
#include "config.h"
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <ares.h>

#define TICK_MS 20
#define MAX_TTL 300u
#define MAX_SOCKS 64

/* The window (dns.h): the retransmission timeout before the first answer
 * and its clock granularity (a query's answer is not expected sooner than
 * one tick of the loop), in microseconds; the share of late answers that
 * cuts it; the share of queries presumed lost, over what the rounds before
 * lost, that stops its growth; the fewest queries over which a round is
 * judged; how many times the window the queries in flight may be once the
 * server has dropped some. */
#define RTO_INITIAL_US 50000
#define RTO_MIN_US     (TICK_MS * 1000)
#define LATE_SHARE     16
#define LOST_MARGIN    (1.0 / 16)
#define LOST_USUAL_FIRST (1.0 / 8)
#define ROUND_MIN      64
#define INFLIGHT_PER_WINDOW 8
/* Attempts (tries x servers) whose times the window knows; an answer to a
 * later one is not taken as loss. */
#define ATTEMPTS_KNOWN 8

/* The probation segment of the cache (cache_trim) holds at most this share
 * of it. */
#define PROBATION_SHARE 4

typedef struct waiter {
    md_dns_cb cb;
    void *arg;
    struct waiter *next;
} waiter;

enum { E_QUEUED, E_INFLIGHT, E_DONE };

typedef struct entry entry;

typedef struct elist {
    entry *head, *tail;       /* oldest first */
    size_t n;
} elist;

struct entry {
    char *name;               /* canonical: lower case, no trailing dot */
    int type;
    unsigned hash;
    int state;
    waiter *waiters, *wtail;
    md_dns_answer answer;     /* E_DONE */
    int64_t expires;          /* E_DONE: ms, monotonic */
    int64_t sent_us;          /* E_INFLIGHT: handed to c-ares, monotonic */
    struct entry *hnext;      /* hash chain */
    elist *on;                /* the list it is on, or NULL */
    struct entry *prev, *next;
    struct entry *dnext;      /* answers waiting to be delivered from the loop */
    int pending_delivery;
    md_dns *dns;
};

struct md_dns {
    ares_channel ch;
    entry **buckets;
    size_t nbuckets, nentries;
    elist urgent, fresh;      /* waiting for the window: follow-ups, then new */
    elist live;               /* in flight and counted in the window */
    size_t ninflight;         /* in flight in all, presumed lost included */
    size_t inflight_cap;
    elist probation, kept;    /* cached answers (cache_trim) */
    size_t cache_max;
    int no_cache;
    /* the window (dns.h) */
    double cwnd, ssthresh, wmin, wmax;
    int in_use;               /* the last dispatch filled the window */
    int64_t srtt_us, rttvar_us, rto_us, rto_max_us;
    int64_t attempt_us[ATTEMPTS_KNOWN]; /* when c-ares sends attempt k, after the first */
    int attempts;
    size_t round_len;         /* queries judged together: the window when it began */
    size_t round_ok, round_lost, round_late;
    int dropped;              /* the window was ever cut: the server drops */
    double lost_usual;        /* share presumed lost in recent rounds (silent names) */
    int lossy;                /* the last round lost more than usual */
    int depth;                /* callbacks running: queries asked now are follow-ups */
    struct pollfd socks[MAX_SOCKS];
    size_t nsocks;
    int64_t last_tick;
    md_dns_stats stats;
    entry *dhead, *dtail;     /* cache hits to deliver on the next step */
    waiter *spare;            /* waiters delivered, for reuse */
    int cancelled;            /* md_dns_cancel: end every query, send none */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void list_push(elist *l, entry *e)
{
    e->on = l;
    e->next = NULL;
    e->prev = l->tail;
    if (l->tail)
        l->tail->next = e;
    else
        l->head = e;
    l->tail = e;
    l->n++;
}

static void list_unlink(entry *e)
{
    elist *l = e->on;
    if (l == NULL)
        return;
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
    e->on = NULL;
    l->n--;
}

static unsigned hash_name(const char *s, int type)
{
    unsigned h = 2166136261u ^ (unsigned)type;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* The canonical form of name (lower case, no trailing dot) in buf, or in a
 * new string (*heap, caller frees) when it does not fit: a cache hit, most
 * of the queries in a bulk run, then needs no allocation. */
static char *canon(const char *name, char *buf, size_t size, char **heap)
{
    size_t n = strlen(name);
    char *s = buf;
    *heap = NULL;
    if (n >= size)
        s = *heap = md_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)name[i]);
    s[n] = '\0';
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = '\0';
    return s;
}

/* --- server specs ------------------------------------------------------- */

static int parse_port(const char *s, unsigned *port)
{
    char *end;
    if (*s == '\0')
        return -1;
    unsigned long p = strtoul(s, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535 || !isdigit((unsigned char)*s))
        return -1;
    *port = (unsigned)p;
    return 0;
}

md_status md_dns_server_parse(const char *spec, char *out, size_t outsize, md_error *err)
{
    char host[64];
    unsigned port = 53;
    unsigned char bin[16];
    const char *colon;

    if (spec == NULL || *spec == '\0')
        return md_error_set(err, MD_CONFIG, "dns.resolver", "empty resolver address");
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || (size_t)(close - spec - 1) >= sizeof host)
            goto bad;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        if (close[1] == ':') {
            if (parse_port(close + 2, &port) != 0)
                goto bad;
        } else if (close[1] != '\0') {
            goto bad;
        }
        if (inet_pton(AF_INET6, host, bin) != 1)
            goto bad;
        snprintf(out, outsize, "[%s]:%u", host, port);
        return MD_OK;
    }
    colon = strchr(spec, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        /* bare IPv6 address, default port */
        if (strlen(spec) >= sizeof host || inet_pton(AF_INET6, spec, bin) != 1)
            goto bad;
        snprintf(out, outsize, "[%s]:%u", spec, port);
        return MD_OK;
    }
    size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
    if (hl == 0 || hl >= sizeof host)
        goto bad;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (colon != NULL && parse_port(colon + 1, &port) != 0)
        goto bad;
    if (inet_pton(AF_INET, host, bin) != 1)
        goto bad;
    snprintf(out, outsize, "%s:%u", host, port);
    return MD_OK;
bad:
    return md_error_set(err, MD_CONFIG, "dns.resolver",
                        "bad resolver address '%.64s': want IPv4[:PORT], IPv6 or [IPv6]:PORT",
                        spec);
}

char **md_dns_server_list_split(const char *list, size_t *n)
{
    char **out = NULL;
    size_t cnt = 0;
    const char *p = list;

    *n = 0;
    if (list == NULL)
        return NULL;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p > start) {
            out = md_xrealloc(out, (cnt + 2) * sizeof *out);
            out[cnt++] = md_xstrndup(start, (size_t)(p - start));
            out[cnt] = NULL;
        }
    }
    *n = cnt;
    return out;
}

void md_dns_server_list_free(char **list)
{
    if (list == NULL)
        return;
    for (char **p = list; *p; p++)
        free(*p);
    free(list);
}

/* --- socket tracking ---------------------------------------------------- */

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    md_dns *dns = data;
    size_t i;
    for (i = 0; i < dns->nsocks; i++)
        if (dns->socks[i].fd == fd)
            break;
    if (!readable && !writable) {
        if (i < dns->nsocks)
            dns->socks[i] = dns->socks[--dns->nsocks];
        return;
    }
    if (i == dns->nsocks) {
        if (dns->nsocks == MAX_SOCKS)
            return;   /* c-ares opens a handful; the tick still drives it */
        dns->nsocks++;
    }
    dns->socks[i].fd = fd;
    dns->socks[i].events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
    dns->socks[i].revents = 0;
}

/* --- channel ------------------------------------------------------------ */

md_dns *md_dns_new(const md_dns_config *cfg, md_error *err)
{
    md_dns_config def = { 0 };
    struct ares_options opt;
    int mask, rc;
    char *csv = NULL;

    if (cfg == NULL)
        cfg = &def;
    md_dns *dns = md_xcalloc(1, sizeof *dns);
    dns->inflight_cap = cfg->window ? cfg->window : MD_DNS_INFLIGHT_MAX;
    dns->wmax = cfg->window ? cfg->window : MD_DNS_WINDOW_MAX;
    dns->wmin = dns->wmax < MD_DNS_WINDOW_MIN ? dns->wmax : MD_DNS_WINDOW_MIN;
    dns->cwnd = dns->wmax < MD_DNS_WINDOW_INITIAL ? dns->wmax : MD_DNS_WINDOW_INITIAL;
    dns->ssthresh = dns->wmax;
    dns->round_len = ROUND_MIN;
    dns->lost_usual = LOST_USUAL_FIRST;
    dns->stats.window = dns->stats.window_peak = (unsigned)dns->cwnd;
    dns->cache_max = cfg->cache_max ? cfg->cache_max : MD_DNS_CACHE_DEFAULT;
    dns->no_cache = cfg->no_cache;
    dns->nbuckets = 1024;
    dns->buckets = md_xcalloc(dns->nbuckets, sizeof *dns->buckets);

    /* Validate the servers before touching c-ares, for a clear message. */
    size_t csvlen = 0;
    for (size_t i = 0; i < cfg->nservers; i++) {
        char one[80];
        if (md_dns_server_parse(cfg->servers[i], one, sizeof one, err) != MD_OK)
            goto fail;
        size_t l = strlen(one);
        csv = md_xrealloc(csv, csvlen + l + 2);
        if (csvlen)
            csv[csvlen++] = ',';
        memcpy(csv + csvlen, one, l + 1);
        csvlen += l;
    }

    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        md_error_set(err, MD_INTERNAL, "dns.init", "c-ares: %s", ares_strerror(rc));
        goto fail;
    }

    /* c-ares makes nservers*tries attempts; attempt k waits
     * timeout << (k / nservers).  Pick tries and a first timeout so that the
     * sum, nservers * timeout * (2^tries - 1), fits the budget. */
    double budget = cfg->timeout > 0 ? cfg->timeout : MD_DNS_TIMEOUT_DEFAULT;
    size_t nserv = cfg->nservers ? cfg->nservers : 1;
    int tries = 3;
    while (tries > 1 && budget * 1000.0 / ((double)nserv * ((1 << tries) - 1)) < 250.0)
        tries--;
    int first_ms = (int)(budget * 1000.0 / ((double)nserv * ((1 << tries) - 1)));
    if (first_ms < 10)
        first_ms = 10;
    /* A query unanswered for a whole first try has been sent again: it is
     * presumed lost by then at the latest. */
    dns->rto_max_us = (int64_t)first_ms * 1000;
    dns->rto_us = RTO_INITIAL_US < dns->rto_max_us ? RTO_INITIAL_US : dns->rto_max_us;
    dns->stats.rto_ms = (unsigned)(dns->rto_us / 1000);

    memset(&opt, 0, sizeof opt);
    /* STAYOPEN: a sequential caller (an SPF worker asks one query at a time)
     * would otherwise open, configure and close a UDP socket per query. */
    opt.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH | ARES_FLAG_STAYOPEN;
    /* Attempt k waits first_ms << (k / nservers), as c-ares 1.18 times it. */
    dns->attempts = tries * (int)nserv < ATTEMPTS_KNOWN ? tries * (int)nserv : ATTEMPTS_KNOWN;
    for (int k = 1; k < dns->attempts; k++)
        dns->attempt_us[k] = dns->attempt_us[k - 1] + ((int64_t)first_ms << ((k - 1) / (int)nserv)) * 1000;
    opt.timeout = first_ms;
    opt.tries = tries;
    opt.ndots = 1;
    opt.lookups = (char *)"b";
    opt.sock_state_cb = sock_state_cb;
    opt.sock_state_cb_data = dns;
    opt.socket_receive_buffer_size = 4 << 20;
    mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS
         | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF;
    rc = ares_init_options(&dns->ch, &opt, mask);
    if (rc != ARES_SUCCESS) {
        md_error_set(err, MD_CONFIG, "dns.init", "cannot set up the resolver: %s",
                     ares_strerror(rc));
        ares_library_cleanup();
        goto fail;
    }
    if (csv != NULL) {
        rc = ares_set_servers_ports_csv(dns->ch, csv);
        if (rc != ARES_SUCCESS) {
            md_error_set(err, MD_CONFIG, "dns.resolver", "c-ares refused the resolver list '%s': %s",
                         csv, ares_strerror(rc));
            ares_destroy(dns->ch);
            ares_library_cleanup();
            goto fail;
        }
    }
    free(csv);
    dns->last_tick = md_now_ms();
    return dns;
fail:
    free(csv);
    free(dns->buckets);
    free(dns);
    return NULL;
}

static void entry_free(entry *e)
{
    waiter *w = e->waiters;
    while (w) {
        waiter *n = w->next;
        free(w);
        w = n;
    }
    md_dns_answer_clear(&e->answer);
    free(e->name);
    free(e);
}

static void table_unlink(md_dns *dns, entry *e)
{
    entry **pp = &dns->buckets[e->hash & (dns->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    dns->nentries--;
}

static void table_grow(md_dns *dns)
{
    size_t nb = dns->nbuckets * 2;
    entry **b = md_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < dns->nbuckets; i++) {
        entry *e = dns->buckets[i];
        while (e) {
            entry *n = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(dns->buckets);
    dns->buckets = b;
    dns->nbuckets = nb;
}

void md_dns_free(md_dns *dns)
{
    if (dns == NULL)
        return;
    /* Mark everything done first so callbacks fired by ares_destroy
     * (ARES_EDESTRUCTION) find nothing to deliver. */
    for (size_t i = 0; i < dns->nbuckets; i++)
        for (entry *e = dns->buckets[i]; e; e = e->hnext)
            e->dns = NULL;
    ares_destroy(dns->ch);
    ares_library_cleanup();
    for (size_t i = 0; i < dns->nbuckets; i++) {
        entry *e = dns->buckets[i];
        while (e) {
            entry *n = e->hnext;
            entry_free(e);
            e = n;
        }
    }
    while (dns->spare) {
        waiter *w = dns->spare;
        dns->spare = w->next;
        free(w);
    }
    free(dns->buckets);
    free(dns);
}

/* --- the cache --------------------------------------------------------------
 *
 * Two segments, as in 2Q and segmented LRU: a new answer goes on probation;
 * an answer asked for again is moved to the kept segment (to its end, on
 * every later use).  Trimming takes probation's oldest first while it holds
 * more than its share, so the answers asked for once (every domain's own MX
 * in a bulk run) never push out the ones that many checks share (the MX
 * hosts of a large provider).
 */

static void cache_add(md_dns *dns, entry *e)
{
    list_push(&dns->probation, e);
}

static void cache_used(md_dns *dns, entry *e)
{
    list_unlink(e);
    list_push(&dns->kept, e);
}

static void cache_drop(md_dns *dns, entry *e)
{
    list_unlink(e);
    table_unlink(dns, e);
    entry_free(e);
}

/* Drops the oldest answers while the cache is over its size. */
static void cache_trim(md_dns *dns)
{
    while (dns->probation.n + dns->kept.n > dns->cache_max) {
        elist *l = dns->probation.n > dns->cache_max / PROBATION_SHARE || dns->kept.n == 0
                 ? &dns->probation : &dns->kept;
        if (l->head == NULL || l->head->pending_delivery)
            break;
        cache_drop(dns, l->head);
    }
}

static void deliver(md_dns *dns, entry *e)
{
    waiter *w = e->waiters;
    e->waiters = e->wtail = NULL;
    dns->depth++;
    while (w) {
        waiter *n = w->next;
        w->cb(w->arg, &e->answer);
        w->next = dns->spare;
        dns->spare = w;
        w = n;
    }
    dns->depth--;
}

/* --- the window -------------------------------------------------------------- */

static void window_set(md_dns *dns, double w)
{
    if (w > dns->wmax)
        w = dns->wmax;
    if (w < dns->wmin)
        w = dns->wmin;
    dns->cwnd = w;
    dns->stats.window = (unsigned)w;
    if (dns->stats.window > dns->stats.window_peak)
        dns->stats.window_peak = dns->stats.window;
}

/* RFC 6298, section 2, on one round-trip sample. */
static void rtt_sample(md_dns *dns, int64_t r)
{
    if (dns->srtt_us == 0) {
        dns->srtt_us = r > 0 ? r : 1;
        dns->rttvar_us = r / 2;
    } else {
        int64_t d = dns->srtt_us > r ? dns->srtt_us - r : r - dns->srtt_us;
        dns->rttvar_us += (d - dns->rttvar_us) / 4;
        dns->srtt_us += (r - dns->srtt_us) / 8;
    }
    /* RTO = SRTT + max(G, 4 RTTVAR), G the granularity of our clock: the
     * loop's tick, at which queries are found overdue. */
    int64_t rto = dns->srtt_us + (4 * dns->rttvar_us > RTO_MIN_US ? 4 * dns->rttvar_us : RTO_MIN_US);
    if (rto > dns->rto_max_us)
        rto = dns->rto_max_us;
    dns->rto_us = rto;
    dns->stats.rto_ms = (unsigned)(rto / 1000);
}

static void cut(md_dns *dns, double to)
{
    dns->ssthresh = to > dns->wmin ? to : dns->wmin;
    window_set(dns, dns->ssthresh);
    dns->dropped = 1;
    dns->stats.cuts++;
}

/*
 * Ends a round once a window's worth of queries has been answered in time
 * or presumed lost, and judges it:
 *  - more presumed lost than answered in time, with some answered: the
 *    server or the path drops queries (a rate limit, a full socket buffer):
 *    the window becomes what got through;
 *  - else more than 1/LATE_SHARE of the answers answered a query c-ares
 *    had sent again: halved.
 * A round with nothing answered in time tells nothing (every name silent,
 * or the server down): the window stays.  A few silent names (under half)
 * never cut it.
 */
static void round_step(md_dns *dns)
{
    size_t done = dns->round_ok + dns->round_lost;
    if (done < dns->round_len)
        return;
    if (dns->round_ok > 0 && dns->round_lost > dns->round_ok)
        cut(dns, dns->cwnd * (double)dns->round_ok / (double)done);
    else if (dns->round_late * LATE_SHARE > dns->round_ok + dns->round_late)
        cut(dns, dns->cwnd / 2);
    /* Losing more than usual, even without a cut, ends slow start and holds
     * the window for a round: the server may have started to drop.  What is
     * usual starts at LOST_USUAL_FIRST and follows the rounds, a quarter of
     * the way each round: a share of silent names up to that holds nothing,
     * a larger one slows the growth for a few rounds. */
    double share = (double)dns->round_lost / (double)done;
    dns->lossy = share > 2 * dns->lost_usual + LOST_MARGIN;
    if (dns->lossy && dns->ssthresh > dns->cwnd)
        dns->ssthresh = dns->cwnd;
    dns->lost_usual += (share - dns->lost_usual) / 4;
    dns->round_ok = dns->round_lost = dns->round_late = 0;
    dns->round_len = dns->cwnd > ROUND_MIN ? (size_t)dns->cwnd : ROUND_MIN;
}

/* A query has finished: what it says about the server.  live: it still
 * counted against the window (not presumed lost yet); answered: a reply
 * came (any rcode); timeouts: its tries that went unanswered; good: an
 * answer, NODATA or NXDOMAIN (a SERVFAIL or REFUSED came in time but is no
 * reason to grow). */
static void window_on_done(md_dns *dns, int live, int answered, int timeouts, int good,
                           int64_t rtt_us)
{
    if (answered && timeouts == 0)
        rtt_sample(dns, rtt_us);   /* Karn: only first tries are unambiguous */
    if (answered && timeouts > 0) {
        dns->stats.late++;
        /* An answer that comes within a round trip or so of c-ares sending
         * the query again answers the new try: the one before was lost.
         * One that comes at some other time answers a try the server was
         * slow with (a recursive resolver chasing a slow authoritative
         * server): no loss, however late. */
        int64_t since = timeouts < dns->attempts ? rtt_us - dns->attempt_us[timeouts] : -1;
        if (since >= 0 && since < 2 * dns->rto_us)
            dns->round_late++;
    }
    if (!live)
        return;                    /* counted when it was presumed lost */
    if (!answered) {
        dns->round_lost++;         /* the whole budget within one RTO: tiny budgets */
    } else {
        dns->round_ok++;
        /* Grow while answers come in time, the window is the limit, and
         * neither this round nor the last lost more than usual (a server
         * starting to drop stops it before the cut). */
        double done = (double)(dns->round_ok + dns->round_lost);
        if (timeouts == 0 && good && dns->in_use && !dns->lossy &&
            dns->round_lost <= (2 * dns->lost_usual + LOST_MARGIN) * done)
            window_set(dns, dns->cwnd + (dns->cwnd < dns->ssthresh ? 1.0 : 1.0 / dns->cwnd));
    }
    round_step(dns);
}

/* Queries unanswered after the retransmission timeout leave the window. */
static void window_expire(md_dns *dns, int64_t now)
{
    while (dns->live.head && now - dns->live.head->sent_us >= dns->rto_us) {
        list_unlink(dns->live.head);
        dns->stats.presumed_lost++;
        dns->round_lost++;
        round_step(dns);
    }
}

/* --- answers ------------------------------------------------------------------ */

static void ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    entry *e = arg;
    md_dns *dns = e->dns;

    if (dns == NULL) {          /* md_dns_free in progress */
        return;
    }
    int live = e->on == &dns->live;
    list_unlink(e);
    dns->ninflight--;
    if (abuf != NULL && alen > 0 && status != ARES_ETIMEOUT) {
        md_dns_parse(abuf, (size_t)alen, e->name, e->type, &e->answer);
    } else {
        memset(&e->answer, 0, sizeof e->answer);
        e->answer.type = e->type;
        e->answer.qname = md_xstrdup(e->name);
        switch (status) {
        case ARES_ETIMEOUT:
            e->answer.outcome = MD_DNS_TIMEOUT;
            snprintf(e->answer.detail, sizeof e->answer.detail, "no reply within the time limit");
            break;
        case ARES_EBADRESP:
        case ARES_EFORMERR:
            e->answer.outcome = MD_DNS_BADRESP;
            snprintf(e->answer.detail, sizeof e->answer.detail, "bad reply: %s", ares_strerror(status));
            break;
        case ARES_ESERVFAIL:
            e->answer.outcome = MD_DNS_SERVFAIL;
            snprintf(e->answer.detail, sizeof e->answer.detail, "the server answered SERVFAIL");
            break;
        case ARES_EREFUSED:
            e->answer.outcome = MD_DNS_REFUSED;
            snprintf(e->answer.detail, sizeof e->answer.detail, "the server answered REFUSED");
            break;
        case ARES_ENOTFOUND:
            e->answer.outcome = MD_DNS_NXDOMAIN;
            break;
        case ARES_ENODATA:
            e->answer.outcome = MD_DNS_NODATA;
            break;
        case ARES_ECANCELLED:
            e->answer.outcome = MD_DNS_ERROR;
            snprintf(e->answer.detail, sizeof e->answer.detail, "cancelled: the run was interrupted");
            break;
        default:
            e->answer.outcome = MD_DNS_ERROR;
            snprintf(e->answer.detail, sizeof e->answer.detail, "%s", ares_strerror(status));
            break;
        }
    }
    if (e->answer.outcome < 8)
        dns->stats.outcomes[e->answer.outcome]++;
    if (status != ARES_ECANCELLED && !dns->cancelled) {
        /* c-ares hands over abuf for every reply it matched to the query,
         * whatever its rcode. */
        md_dns_outcome o = e->answer.outcome;
        window_on_done(dns, live, abuf != NULL && alen > 0, timeouts,
                       o == MD_DNS_ANSWER || o == MD_DNS_NODATA || o == MD_DNS_NXDOMAIN,
                       now_us() - e->sent_us);
    }

    uint32_t ttl = e->answer.ttl < MAX_TTL ? e->answer.ttl : MAX_TTL;
    int keep = !dns->no_cache && !md_dns_outcome_is_temporary(e->answer.outcome) && ttl > 0;
    e->state = E_DONE;
    e->expires = md_now_ms() + (int64_t)ttl * 1000;
    if (keep) {
        cache_add(dns, e);
        deliver(dns, e);
        cache_trim(dns);
    } else {
        /* Unlink before delivering, so a callback asking again starts a
         * fresh query instead of joining this finished one. */
        table_unlink(dns, e);
        deliver(dns, e);
        entry_free(e);
    }
}

/* --- queries ------------------------------------------------------------------ */

static entry *table_find(md_dns *dns, const char *cn, int type, unsigned h)
{
    for (entry *e = dns->buckets[h & (dns->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, cn) == 0)
            return e;
    return NULL;
}

void md_dns_query(md_dns *dns, const char *name, int type, md_dns_cb cb, void *arg)
{
    char text[256], *heap;
    char *cn = canon(name, text, sizeof text, &heap);
    unsigned h = hash_name(cn, type);
    entry *e = table_find(dns, cn, type, h);
    elist *q = dns->depth > 0 ? &dns->urgent : &dns->fresh;

    dns->stats.queries++;
    if (e != NULL && e->state == E_DONE && !e->pending_delivery && e->expires <= md_now_ms()) {
        cache_drop(dns, e);
        e = NULL;
    }
    waiter *w = dns->spare;
    if (w != NULL)
        dns->spare = w->next;
    else
        w = md_xmalloc(sizeof *w);
    w->cb = cb;
    w->arg = arg;
    w->next = NULL;
    if (e == NULL) {
        e = md_xcalloc(1, sizeof *e);
        e->name = heap ? heap : md_xstrdup(cn);
        heap = NULL;
        e->type = type;
        e->hash = h;
        e->dns = dns;
        e->state = E_QUEUED;
        e->hnext = dns->buckets[h & (dns->nbuckets - 1)];
        dns->buckets[h & (dns->nbuckets - 1)] = e;
        if (++dns->nentries > dns->nbuckets)
            table_grow(dns);
        list_push(q, e);
    } else if (e->state == E_DONE) {
        dns->stats.cache_hits++;
        if (e->on != NULL)
            cache_used(dns, e);
    } else {
        dns->stats.merged++;
        /* A follow-up joining the query of a new check: it waits no longer
         * than a follow-up of its own would. */
        if (e->state == E_QUEUED && q == &dns->urgent && e->on == &dns->fresh) {
            list_unlink(e);
            list_push(q, e);
        }
    }
    if (e->wtail)
        e->wtail->next = w;
    else
        e->waiters = w;
    e->wtail = w;
    /* Cached answers are delivered from the loop, never re-entrantly. */
    if (e->state == E_DONE && !e->pending_delivery) {
        e->pending_delivery = 1;
        if (dns->dtail)
            dns->dtail->dnext = e;
        else
            dns->dhead = e;
        dns->dtail = e;
    }
    free(heap);
}

static void deliver_cached(md_dns *dns)
{
    while (dns->dhead) {
        entry *list = dns->dhead;
        dns->dhead = dns->dtail = NULL;
        while (list) {
            entry *e = list;
            list = e->dnext;
            e->dnext = NULL;
            e->pending_delivery = 0;
            e->answer.from_cache = 1;
            deliver(dns, e);
            e->answer.from_cache = 0;
        }
    }
    cache_trim(dns);
}

/* Free places in the window, within the bounds on queries in flight. */
static size_t window_places(const md_dns *dns)
{
    size_t w = (size_t)dns->cwnd, cap = dns->inflight_cap;
    if (dns->dropped) {
        /* The server drops queries: those presumed lost may be real losses
         * whose retries c-ares still sends; keep them in proportion. */
        double most = (dns->cwnd > dns->ssthresh ? dns->cwnd : dns->ssthresh) * INFLIGHT_PER_WINDOW;
        if (most < (double)cap)
            cap = (size_t)most;
    }
    size_t a = w > dns->live.n ? w - dns->live.n : 0;
    size_t b = cap > dns->ninflight ? cap - dns->ninflight : 0;
    return a < b ? a : b;
}

static void dispatch(md_dns *dns)
{
    size_t places = dns->cancelled ? SIZE_MAX : window_places(dns);
    int64_t now = 0;
    while (places > 0 && (dns->urgent.head || dns->fresh.head)) {
        entry *e = dns->urgent.head ? dns->urgent.head : dns->fresh.head;
        list_unlink(e);
        e->state = E_INFLIGHT;
        dns->ninflight++;
        places--;
        if (dns->cancelled) {
            /* Its callbacks may queue more: the loop ends those too. */
            ares_cb(e, ARES_ECANCELLED, 0, NULL, 0);
            continue;
        }
        if (now == 0)
            now = now_us();
        e->sent_us = now;
        list_push(&dns->live, e);
        dns->stats.sent++;
        if (dns->ninflight > dns->stats.inflight_peak)
            dns->stats.inflight_peak = (unsigned)dns->ninflight;
        /* May call ares_cb synchronously (bad name, no memory): fine, the
         * entry is in flight and accounted for. */
        ares_query(dns->ch, e->name, 1 /* C_IN */, e->type, ares_cb, e);
    }
    /* Answers grow the window only while it is the limit (RFC 7661): a
     * caller asking little must not inflate it for a later burst. */
    if (!dns->cancelled)
        dns->in_use = window_places(dns) == 0;
}

void md_dns_cancel(md_dns *dns)
{
    dns->cancelled = 1;
    /* In-flight queries end now with ARES_ECANCELLED; queued ones (and any
     * their callbacks add) end in dispatch(). */
    ares_cancel(dns->ch);
    deliver_cached(dns);
    dispatch(dns);
}

size_t md_dns_step(md_dns *dns, int max_wait_ms)
{
    deliver_cached(dns);
    dispatch(dns);
    if (dns->ninflight == 0)
        return md_dns_pending(dns);

    int wait = TICK_MS;
    if (max_wait_ms >= 0 && max_wait_ms < wait)
        wait = max_wait_ms;
    if (dns->live.head && (dns->urgent.head || dns->fresh.head)) {
        /* Queries wait for the window: wake up when the oldest query in it
         * is presumed lost. */
        int64_t left = dns->live.head->sent_us + dns->rto_us - now_us();
        int ms = left <= 0 ? 0 : (int)((left + 999) / 1000);
        if (ms < wait)
            wait = ms;
    }
    int n = poll(dns->socks, dns->nsocks, wait);
    if (n > 0) {
        /* Copy: callbacks may change the socket set. */
        struct pollfd ready[MAX_SOCKS];
        size_t nready = dns->nsocks;
        memcpy(ready, dns->socks, nready * sizeof *ready);
        for (size_t i = 0; i < nready; i++) {
            if (ready[i].revents == 0)
                continue;
            ares_socket_t rfd = (ready[i].revents & (POLLIN | POLLERR | POLLHUP)) ? ready[i].fd : ARES_SOCKET_BAD;
            ares_socket_t wfd = (ready[i].revents & POLLOUT) ? ready[i].fd : ARES_SOCKET_BAD;
            ares_process_fd(dns->ch, rfd, wfd);
        }
    }
    int64_t now = md_now_ms();
    if (n <= 0 || now - dns->last_tick >= TICK_MS) {
        ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        dns->last_tick = now;
    }
    window_expire(dns, now_us());
    deliver_cached(dns);
    dispatch(dns);
    return md_dns_pending(dns);
}

void md_dns_run(md_dns *dns)
{
    while (md_dns_step(dns, -1) > 0)
        ;
}

typedef struct resolve_slot {
    int done;
    md_dns_answer *ans;
} resolve_slot;

static void resolve_cb(void *arg, const md_dns_answer *a)
{
    resolve_slot *s = arg;
    s->ans = md_dns_answer_copy(a);
    s->done = 1;
}

md_dns_answer *md_dns_resolve(md_dns *dns, const char *name, int type)
{
    resolve_slot s = { 0, NULL };
    md_dns_query(dns, name, type, resolve_cb, &s);
    while (!s.done && md_dns_step(dns, -1) > 0)
        ;
    if (s.done)
        return s.ans;
    md_dns_answer *a = md_xcalloc(1, sizeof *a);   /* cannot happen: every query ends */
    a->outcome = MD_DNS_ERROR;
    a->type = type;
    a->qname = md_xstrdup(name);
    snprintf(a->detail, sizeof a->detail, "internal: the query was lost");
    return a;
}

size_t md_dns_pending(const md_dns *dns)
{
    return dns->urgent.n + dns->fresh.n + dns->ninflight + (dns->dhead != NULL);
}

size_t md_dns_room(const md_dns *dns)
{
    size_t places = window_places(dns), queued = dns->urgent.n + dns->fresh.n;
    return places > queued ? places - queued : 0;
}

void md_dns_get_stats(const md_dns *dns, md_dns_stats *out)
{
    *out = dns->stats;
}
