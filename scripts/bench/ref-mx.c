/*
 * ref-mx: the reference of scripts/bench/mx, a bare c-ares loop.  Not part
 * of the product: the benchmark compiles it with cc against libcares.
 *
 * Reads domain names, one a line; keeps WINDOW queries in flight; asks MX,
 * then A and AAAA of every MX host; prints one line per domain:
 *
 *     DOMAIN STATUS HOSTS ADDRESSES
 *
 * STATUS: ok (every MX host has an address), partial (some have), noaddr
 * (none has), nullmx, nomx (NODATA), nxdomain, tempfail (SERVFAIL,
 * REFUSED, timeout, a bad reply).  No cache, no merging of identical
 * queries, no fallback to the implicit MX: the work of a hundred lines.
 *
 * Usage: ref-mx [-w WINDOW] [-t SECONDS] SERVER:PORT < domains
 */
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ares.h>

typedef struct domain {
    char *name;
    int pending, nhosts, null_mx, status;   /* status: -1 not yet known */
    int *has_addr;
    int naddr;
} domain;

typedef struct addr_q {
    domain *d;
    int host, type;
} addr_q;

static ares_channel ch;
static int inflight;
static const char *const status_name[] = { "ok", "partial", "noaddr", "nullmx", "nomx",
                                           "nxdomain", "tempfail" };
enum { S_OK, S_PARTIAL, S_NOADDR, S_NULLMX, S_NOMX, S_NXDOMAIN, S_TEMPFAIL };

static void finish(domain *d)
{
    if (d->status < 0) {
        int with = 0;
        for (int i = 0; i < d->nhosts; i++)
            with += d->has_addr[i];
        d->status = with == d->nhosts ? S_OK : with ? S_PARTIAL : S_NOADDR;
    }
    printf("%s %s %d %d\n", d->name, status_name[d->status], d->nhosts, d->naddr);
    free(d->has_addr);
    free(d->name);
    free(d);
}

static void addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    addr_q *q = arg;
    domain *d = q->d;
    struct ares_addrttl a4[32];
    struct ares_addr6ttl a6[32];
    int n = 32;
    (void)timeouts;
    inflight--;
    if (status == ARES_SUCCESS &&
        (q->type == ns_t_a ? ares_parse_a_reply(abuf, alen, NULL, a4, &n)
                           : ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n)) == ARES_SUCCESS && n > 0) {
        d->has_addr[q->host] = 1;
        d->naddr += n;
    }
    free(q);
    if (--d->pending == 0)
        finish(d);
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    domain *d = arg;
    struct ares_mx_reply *mx = NULL;
    (void)timeouts;
    inflight--;
    d->pending = 1;
    if (status == ARES_ENOTFOUND)
        d->status = S_NXDOMAIN;
    else if (status == ARES_ENODATA)
        d->status = S_NOMX;
    else if (status != ARES_SUCCESS || ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS)
        d->status = status == ARES_SUCCESS ? S_NOMX : S_TEMPFAIL;   /* a CNAME only, or no answer */
    for (struct ares_mx_reply *m = mx; m; m = m->next)
        d->nhosts++;
    d->has_addr = calloc((size_t)d->nhosts + 1, sizeof *d->has_addr);
    int i = 0;
    for (struct ares_mx_reply *m = mx; m; m = m->next, i++) {
        if (m->host[0] == '\0') {
            d->status = S_NULLMX;
            break;
        }
        for (int t = 0; t < 2; t++) {
            addr_q *q = malloc(sizeof *q);
            q->d = d;
            q->host = i;
            q->type = t ? ns_t_aaaa : ns_t_a;
            d->pending++;
            inflight++;
            ares_query(ch, m->host, ns_c_in, q->type, addr_cb, q);
        }
    }
    if (mx == NULL && d->status < 0)
        d->status = S_NOMX;
    ares_free_data(mx);
    if (--d->pending == 0)
        finish(d);
}

int main(int argc, char **argv)
{
    int window = 200, opt;
    double budget = 5.0;
    while ((opt = getopt(argc, argv, "w:t:")) != -1) {
        if (opt == 'w')
            window = atoi(optarg);
        else if (opt == 't')
            budget = atof(optarg);
        else
            return 2;
    }
    if (optind != argc - 1 || window < 1 || budget <= 0) {
        fprintf(stderr, "usage: ref-mx [-w WINDOW] [-t SECONDS] SERVER:PORT < domains\n");
        return 2;
    }
    /* Three tries whose doubling timeouts add up to the budget. */
    struct ares_options o = { .flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH,
                              .timeout = (int)(budget * 1000 / 7), .tries = 3,
                              .lookups = (char *)"b", .socket_receive_buffer_size = 4 << 20 };
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS ||
        ares_init_options(&ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                          ARES_OPT_LOOKUPS | ARES_OPT_SOCK_RCVBUF) != ARES_SUCCESS ||
        ares_set_servers_ports_csv(ch, argv[optind]) != ARES_SUCCESS) {
        fprintf(stderr, "ref-mx: cannot set up c-ares for %s\n", argv[optind]);
        return 2;
    }
    char line[1024];
    int more = 1;
    while (more || inflight > 0) {
        while (more && inflight < window) {
            if (fgets(line, sizeof line, stdin) == NULL) {
                more = 0;
                break;
            }
            line[strcspn(line, " \t\r\n")] = '\0';
            if (line[0] == '\0' || line[0] == '#')
                continue;
            domain *d = calloc(1, sizeof *d);
            d->name = strdup(line);
            d->status = -1;
            inflight++;
            ares_query(ch, d->name, ns_c_in, ns_t_mx, mx_cb, d);
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM), n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++)
            if (ARES_GETSOCK_READABLE(bits, i) || ARES_GETSOCK_WRITABLE(bits, i))
                pfd[n++] = (struct pollfd){ socks[i], (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
                                                           (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0)), 0 };
        struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
        int ms = tvp ? (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000) : 100;
        if (poll(pfd, (nfds_t)n, ms) <= 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (int i = 0; i < n; i++)
            if (pfd[i].revents)
                ares_process_fd(ch, pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
                                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
    }
    ares_destroy(ch);
    ares_library_cleanup();
    return fflush(stdout) == 0 ? 0 : 1;
}
