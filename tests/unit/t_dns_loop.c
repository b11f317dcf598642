/*
 * Unit tests for the lib/dns event loop against a scripted UDP responder
 * running in a thread on 127.0.0.1 (a free port).  The responder answers
 * every A query with 192.0.2.1 after a delay, or stays silent for names
 * starting with "silent", and counts what it receives, so the tests can see
 * merging, the cache, the in-flight window and the timeout budget.
 */
#include "config.h"
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dns/dns.h"
#include "mx/mx.h"
#include "tap.h"

static int srv_fd;
static atomic_int srv_queries, srv_inflight_max, srv_stop;
static int srv_delay_ms = 50;

typedef struct pending {
    struct sockaddr_in from;
    unsigned char buf[512];
    ssize_t len;
    int64_t due;
} pending;

static void *responder(void *arg)
{
    (void)arg;
    pending *q = calloc(4096, sizeof *q);
    size_t nq = 0;
    while (!atomic_load(&srv_stop)) {
        struct pollfd p = { srv_fd, POLLIN, 0 };
        poll(&p, 1, 5);
        for (;;) {
            pending in;
            socklen_t sl = sizeof in.from;
            in.len = recvfrom(srv_fd, in.buf, sizeof in.buf, MSG_DONTWAIT,
                              (struct sockaddr *)&in.from, &sl);
            if (in.len < 12)
                break;
            atomic_fetch_add(&srv_queries, 1);
            if (in.buf[12] == 6 && memcmp(in.buf + 13, "silent", 6) == 0)
                continue;   /* never answered */
            in.due = md_now_ms() + srv_delay_ms;
            if (nq < 4096)
                q[nq++] = in;
            if ((int)nq > atomic_load(&srv_inflight_max))
                atomic_store(&srv_inflight_max, (int)nq);
        }
        int64_t now = md_now_ms();
        for (size_t i = 0; i < nq;) {
            if (q[i].due > now) {
                i++;
                continue;
            }
            unsigned char *b = q[i].buf;
            size_t n = (size_t)q[i].len;
            b[2] = 0x81;        /* QR, RD */
            b[3] = 0x80;        /* RA, NOERROR */
            b[7] = 1;           /* ANCOUNT 1 */
            static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1 };
            memcpy(b + n, rr, sizeof rr);
            sendto(srv_fd, b, n + sizeof rr, 0, (struct sockaddr *)&q[i].from, sizeof q[i].from);
            q[i] = q[--nq];
        }
    }
    free(q);
    return NULL;
}

typedef struct got {
    int calls;
    md_dns_outcome outcome;
    int from_cache;
    int64_t at;
} got;

static void cb(void *arg, const md_dns_answer *a)
{
    got *g = arg;
    g->calls++;
    g->outcome = a->outcome;
    g->from_cache = a->from_cache;
    g->at = md_now_ms();
}

static md_dns *open_dns(const char *server, double timeout, unsigned window, int no_cache)
{
    const char *servers[] = { server };
    md_dns_config cfg = { servers, 1, timeout, window, 0, no_cache };
    md_error err;
    md_dns *d = md_dns_new(&cfg, &err);
    if (d == NULL)
        printf("# md_dns_new: %s\n", err.text);
    return d;
}

int main(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    char server[64];
    pthread_t th;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    srv_fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20;
    setsockopt(srv_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (bind(srv_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(srv_fd, (struct sockaddr *)&sa, &sl) != 0) {
        printf("1..0 # SKIP cannot bind a UDP socket on 127.0.0.1\n");
        return 77;
    }
    snprintf(server, sizeof server, "127.0.0.1:%u", ntohs(sa.sin_port));
    pthread_create(&th, NULL, responder, NULL);

    /* 1. 500 identical queries while in flight: one reaches the server. */
    md_dns *d = open_dns(server, 2, 0, 1);
    got *g = calloc(500, sizeof *g);
    atomic_store(&srv_queries, 0);
    for (int i = 0; i < 500; i++)
        md_dns_query(d, "Same.Example.TEST.", MD_DNS_A, cb, &g[i]);
    md_dns_run(d);
    int all = 1;
    for (int i = 0; i < 500; i++)
        all &= g[i].calls == 1 && g[i].outcome == MD_DNS_ANSWER;
    ok(all, "500 merged queries: every callback called once with the answer");
    is_int(atomic_load(&srv_queries), 1, "merged: the server saw one query");
    md_dns_stats st;
    md_dns_get_stats(d, &st);
    is_int(st.merged, 499, "stats: 499 merged");

    /* 2. no cache: asking again after the answer goes to the server again. */
    got g2 = { 0 };
    md_dns_query(d, "same.example.test", MD_DNS_A, cb, &g2);
    md_dns_run(d);
    is_int(atomic_load(&srv_queries), 2, "no_cache: a later query is sent again");
    md_dns_free(d);
    free(g);

    /* 3. cache: a later identical query is answered from memory, and its
     *    callback still runs from the loop, not inside md_dns_query. */
    d = open_dns(server, 2, 0, 0);
    atomic_store(&srv_queries, 0);
    got c1 = { 0 }, c2 = { 0 };
    md_dns_query(d, "cached.example.test", MD_DNS_A, cb, &c1);
    md_dns_run(d);
    md_dns_query(d, "cached.example.test", MD_DNS_A, cb, &c2);
    is_int(c2.calls, 0, "cache hit is not delivered re-entrantly");
    md_dns_run(d);
    ok(c2.calls == 1 && c2.from_cache && c2.outcome == MD_DNS_ANSWER, "cache hit delivered from the loop");
    is_int(atomic_load(&srv_queries), 1, "cache: the server saw one query");
    md_dns_free(d);

    /* 4. the window bounds queries in flight; 3000 distinct names all finish. */
    d = open_dns(server, 5, 64, 1);
    atomic_store(&srv_queries, 0);
    atomic_store(&srv_inflight_max, 0);
    g = calloc(3000, sizeof *g);
    for (int i = 0; i < 3000; i++) {
        char name[64];
        snprintf(name, sizeof name, "n%d.example.test", i);
        md_dns_query(d, name, MD_DNS_A, cb, &g[i]);
    }
    is_int(md_dns_pending(d), 3000, "3000 queued");
    md_dns_run(d);
    int done = 0;
    for (int i = 0; i < 3000; i++)
        done += g[i].calls == 1 && g[i].outcome == MD_DNS_ANSWER;
    is_int(done, 3000, "all 3000 answered");
    ok(atomic_load(&srv_inflight_max) <= 64, "window 64 respected (server saw at most %d waiting)",
       atomic_load(&srv_inflight_max));
    free(g);
    md_dns_free(d);

    /* 5. md_dns_resolve: one query, synchronously, with an owned answer. */
    d = open_dns(server, 2, 0, 1);
    md_dns_answer *ra = md_dns_resolve(d, "sync.example.test", MD_DNS_A);
    ok(ra->outcome == MD_DNS_ANSWER && ra->n == 1 && strcmp(ra->addr[0].text, "192.0.2.1") == 0,
       "md_dns_resolve returns the answer (%s)", md_dns_outcome_name(ra->outcome));
    md_dns_answer_free(ra);
    md_dns_free(d);

    /* 6. a silent server: the timeout is the whole budget, retries included. */
    d = open_dns(server, 0.6, 0, 1);
    got s = { 0 };
    int64_t t0 = md_now_ms();
    md_dns_query(d, "silent.example.test", MD_DNS_A, cb, &s);
    md_dns_run(d);
    int64_t took = s.at - t0;
    is_int(s.outcome, MD_DNS_TIMEOUT, "silent server: timeout");
    ok(took >= 300 && took <= 1100, "budget 0.6 s kept: took %lld ms", (long long)took);
    md_dns_free(d);

    /* 7. lib/mx's blocking gathering: the deadline ends the wait, the
     * abandoned gathering frees itself when its query times out, and a
     * name that is no domain is refused before any query. */
    d = open_dns(server, 0.8, 0, 1);
    md_error me = { 0 };
    t0 = md_now_ms();
    md_mx_route *route = md_mx_resolve_wait(d, "silent.example.test", t0 + 200, &me);
    took = md_now_ms() - t0;
    ok(route == NULL && me.status == MD_TEMPFAIL && strcmp(me.stage, "mx.timeout") == 0,
       "md_mx_resolve_wait: the deadline gives a temporary failure (%s: %s)", me.stage, me.text);
    ok(took >= 150 && took <= 700, "md_mx_resolve_wait: kept its deadline: %lld ms", (long long)took);
    md_dns_run(d);   /* the abandoned gathering ends here; ASan and valgrind see its memory go */
    is_int((int)md_dns_pending(d), 0, "the abandoned gathering's query ended");
    md_error_clear(&me);
    route = md_mx_resolve_wait(d, "-not-a-host-.example", 0, &me);
    ok(route == NULL && me.status == MD_CONFIG, "md_mx_resolve_wait: a non-domain is refused (%s)", me.text);
    md_error_clear(&me);
    ok(md_mx_resolve(d, "", NULL, NULL, &me) == MD_CONFIG, "md_mx_resolve: the empty name is refused");
    md_dns_free(d);

    atomic_store(&srv_stop, 1);
    pthread_join(th, NULL);
    close(srv_fd);
    return tap_done();
}
