/*
 * dns-shaper: a UDP forwarder for scripts/bench/mx that stands between the
 * tools and NSD and gives the path the faults of the world outside loopback.
 * Not part of the product: the benchmark compiles it with cc.
 *
 *   -d MS       every reply waits MS milliseconds (a distant server)
 *   -s PREFIX   queries whose first label starts with PREFIX are dropped
 *               (names whose servers never answer)
 *   -w PREFIX   replies to queries whose first label starts with PREFIX
 *   -W MS       wait MS more milliseconds (slow names; default 1000)
 *   -r QPS      queries beyond QPS a second (bursts of QPS/10) are dropped,
 *               as a resolver limiting each client's rate does
 *
 * Usage: dns-shaper [-d MS] [-s PREFIX] [-w PREFIX -W MS] [-r QPS] LISTEN_PORT UPSTREAM_PORT
 * Both on 127.0.0.1.  Prints "ready" on stdout once it listens.  Queries are
 * forwarded under ids of its own, so any number of clients can share it.
 * UDP only: a truncated reply is passed on as it is; a reply over 512
 * bytes is not held back.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 4096
#define HELD 512            /* replies held back are at most this long (no EDNS) */
#define QLEN 16384          /* replies waiting for their time, per queue */

typedef struct slot {       /* a forwarded query, by the id it was sent under */
    struct sockaddr_in client;
    uint16_t id;
    uint8_t slow, used;
} slot;

typedef struct held {       /* a reply waiting for its time */
    int64_t due;
    struct sockaddr_in to;
    uint16_t len;
    unsigned char buf[HELD];
} held;

typedef struct queue {      /* FIFO: every entry of one queue waits as long */
    held *h;
    size_t head, n;
    int64_t wait;
} queue;

static slot slots[65536];

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int first_label_has(const unsigned char *b, size_t len, const char *prefix, size_t plen)
{
    return plen > 0 && len > 12 + plen && b[12] >= plen && memcmp(b + 13, prefix, plen) == 0;
}

static int open_udp(unsigned port, int bind_it)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 8 << 20;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (bind_it ? bind(fd, (struct sockaddr *)&sa, sizeof sa) : connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        perror("dns-shaper: bind/connect");
        exit(2);
    }
    return fd;
}

/* Sends the replies of q that are due. */
static void flush(int fd, queue *q, int64_t now)
{
    while (q->n > 0 && q->h[q->head].due <= now) {
        held *h = &q->h[q->head];
        sendto(fd, h->buf, h->len, 0, (struct sockaddr *)&h->to, sizeof h->to);
        q->head = (q->head + 1) % QLEN;
        q->n--;
    }
}

int main(int argc, char **argv)
{
    const char *silent = "", *slowp = "";
    int64_t delay = 0, slow = 1000, qps = 0;
    int opt;
    while ((opt = getopt(argc, argv, "d:s:w:W:r:")) != -1) {
        switch (opt) {
        case 'd': delay = atoi(optarg); break;
        case 's': silent = optarg; break;
        case 'w': slowp = optarg; break;
        case 'W': slow = atoi(optarg); break;
        case 'r': qps = atoi(optarg); break;
        default: return 2;
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "usage: dns-shaper [-d MS] [-s PREFIX] [-w PREFIX -W MS] [-r QPS] "
                "LISTEN_PORT UPSTREAM_PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = open_udp((unsigned)atoi(argv[optind]), 1);
    int ufd = open_udp((unsigned)atoi(argv[optind + 1]), 0);
    queue q[2] = { { calloc(QLEN, sizeof(held)), 0, 0, delay * 1000 },
                   { calloc(QLEN, sizeof(held)), 0, 0, (delay + slow) * 1000 } };
    size_t lsil = strlen(silent), lslow = strlen(slowp);
    uint16_t next_id = 0;
    double tokens = qps / 10.0;     /* token bucket of -r */
    int64_t refilled = now_us();
    static unsigned char bufs[BATCH][PKT];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];

    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int64_t now = now_us(), wait_us = -1;
        for (int k = 0; k < 2; k++)
            if (q[k].n > 0) {
                int64_t w = q[k].h[q[k].head].due - now;
                if (wait_us < 0 || w < wait_us)
                    wait_us = w < 0 ? 0 : w;
            }
        struct pollfd p[2] = { { lfd, POLLIN, 0 }, { ufd, POLLIN, 0 } };
        poll(p, 2, wait_us < 0 ? 1000 : (int)((wait_us + 999) / 1000));
        for (int side = 0; side < 2; side++) {
            if (!(p[side].revents & POLLIN))
                continue;
            for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){ bufs[i], PKT };
                msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i],
                                                   .msg_iov = &iov[i], .msg_iovlen = 1 };
            }
            int n = recvmmsg(p[side].fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            now = now_us();
            for (int i = 0; i < n; i++) {
                unsigned char *b = bufs[i];
                size_t len = msgs[i].msg_len;
                if (len < 12)
                    continue;
                uint16_t id = (uint16_t)(b[0] << 8 | b[1]);
                if (side == 0) {            /* a query from a client */
                    if (first_label_has(b, len, silent, lsil))
                        continue;
                    if (qps > 0) {
                        tokens += (double)(now - refilled) * qps / 1e6;
                        refilled = now;
                        if (tokens > qps / 10.0)
                            tokens = qps / 10.0;
                        if (tokens < 1)
                            continue;
                        tokens -= 1;
                    }
                    slot *s = &slots[next_id];
                    s->client = from[i];
                    s->id = id;
                    s->slow = (uint8_t)first_label_has(b, len, slowp, lslow);
                    s->used = 1;
                    b[0] = (unsigned char)(next_id >> 8);
                    b[1] = (unsigned char)next_id;
                    next_id++;
                    send(ufd, b, len, 0);
                } else {                    /* a reply from upstream */
                    slot *s = &slots[id];
                    if (!s->used)
                        continue;
                    s->used = 0;
                    b[0] = (unsigned char)(s->id >> 8);
                    b[1] = (unsigned char)s->id;
                    queue *qq = &q[s->slow];
                    if (qq->wait == 0 || len > HELD) {
                        sendto(lfd, b, len, 0, (struct sockaddr *)&s->client, sizeof s->client);
                        continue;
                    }
                    if (qq->n == QLEN)
                        continue;           /* a full queue drops, as a router would */
                    held *h = &qq->h[(qq->head + qq->n++) % QLEN];
                    h->due = now + qq->wait;
                    h->to = s->client;
                    h->len = (uint16_t)len;
                    memcpy(h->buf, b, len);
                }
            }
        }
        now = now_us();
        flush(lfd, &q[0], now);
        flush(lfd, &q[1], now);
    }
}
