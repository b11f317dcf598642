/*
 * lib/spf libspf2: libspf2 1.2.10 evaluating over our DNS data.
 *
 * Its DNS layer is replaced: lookups are answered by the caller's function
 * (the evaluation's answer table over lib/dns), never by res_nquery, so
 * libspf2 uses the same resolver, timeouts and trace as the rest of maildiag
 * and never drives an event loop re-entrantly.
 *
 * Guards, because libspf2 aborts or misbehaves on some inputs:
 *  - type 99 (SPF) is answered NO_DATA without asking (RFC 7208 3.1);
 *  - a TXT string that looks like an SPF record but fails our syntax check,
 *    or any other TXT string whose macros are malformed (libspf2 may read it
 *    as an explanation), is withheld: CVE-2023-42118 is an underflow in
 *    libspf2's macro parser, unpatched in Debian 12;
 *  - so is one with a digit transformer over 128 (%{l999r}): valid, but
 *    libspf2 refuses it and reads long digit strings with int overflow.  The
 *    walk does not ask libspf2 at all when a record it evaluated has one
 *    (eval.c); this is for what libspf2 fetches beyond the walk;
 *  - NULL is never returned to libspf2 (it would abort);
 *  - its log handlers are silenced (a library never prints); its fatal
 *    handler aborts, which the worker pool turns into a finding.
 */
#include "config.h"
#include "spf-int.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spf2/spf.h>

#ifdef MD_TEST_HOOKS
int spf_test_fault(const char *name)
{
    const char *fault = getenv("MAILDIAG_SPF_FAULT");
    return fault != NULL && strcmp(fault, name) == 0;
}
#endif

typedef struct layer_ctx {
    spf_lookup_fn lookup;
    void *arg;
} layer_ctx;

static void quiet(const char *file, int line, const char *msg)
{
    (void)file; (void)line; (void)msg;
}

static void fatal(const char *file, int line, const char *msg) __attribute__((noreturn));
static void fatal(const char *file, int line, const char *msg)
{
    (void)file; (void)line; (void)msg;
    abort();
}

static int txt_safe(const md_dns_txt *t)
{
    size_t bad;
    const char *why;
    if (memchr(t->data, '\0', t->len) != NULL)
        return 0;
    if (!spf_macro_libspf2_fits(t->data, t->len))
        return 0;
    if (md_spf_is_record(t->data, t->len)) {
        spf_record *r = spf_record_parse(t->data, t->len);
        int ok = !r->bad;
        spf_record_free(r);
        return ok;
    }
    return spf_macro_check(t->data, t->len, 1, &bad, &why) == 0;
}

static SPF_dns_rr_t *layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type rr_type,
                                  int should_cache)
{
    layer_ctx *c = srv->hook;
    int type;
    (void)should_cache;
    switch (rr_type) {
    case ns_t_a: type = MD_DNS_A; break;
    case ns_t_aaaa: type = MD_DNS_AAAA; break;
    case ns_t_mx: type = MD_DNS_MX; break;
    case ns_t_txt: type = MD_DNS_TXT; break;
    case ns_t_ptr: type = MD_DNS_PTR; break;
    default:
        return SPF_dns_rr_new_init(srv, domain, rr_type, 0, NO_DATA);
    }
    const md_dns_answer *a = c->lookup ? c->lookup(c->arg, domain, type) : NULL;
    int herr;
    if (a == NULL)
        herr = TRY_AGAIN;
    else if (a->outcome == MD_DNS_ANSWER)
        herr = a->n ? NETDB_SUCCESS : NO_DATA;
    else if (a->outcome == MD_DNS_NODATA)
        herr = NO_DATA;
    else if (a->outcome == MD_DNS_NXDOMAIN)
        herr = HOST_NOT_FOUND;
    else
        herr = TRY_AGAIN;
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, rr_type, a ? (int)a->ttl : 0, herr);
    if (rr == NULL || herr != NETDB_SUCCESS)
        return rr ? rr : SPF_dns_rr_new_init(srv, domain, rr_type, 0, TRY_AGAIN);
    int n = 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t need;
        switch (type) {
        case MD_DNS_A: need = sizeof(struct in_addr); break;
        case MD_DNS_AAAA: need = sizeof(struct in6_addr); break;
        case MD_DNS_MX: need = strlen(a->mx[i].host) + 1; break;
        case MD_DNS_TXT:
            if (!txt_safe(&a->txt[i]))
                continue;
            need = a->txt[i].len + 1;
            break;
        default: need = strlen(a->names[i]) + 1; break;
        }
        if (SPF_dns_rr_buf_realloc(rr, n, need) != SPF_E_SUCCESS)
            break;
        switch (type) {
        case MD_DNS_A: memcpy(&rr->rr[n]->a, a->addr[i].bytes, 4); break;
        case MD_DNS_AAAA: memcpy(&rr->rr[n]->aaaa, a->addr[i].bytes, 16); break;
        case MD_DNS_MX: memcpy(rr->rr[n]->mx, a->mx[i].host, need); break;
        case MD_DNS_TXT:
            memcpy(rr->rr[n]->txt, a->txt[i].data, a->txt[i].len);
            rr->rr[n]->txt[a->txt[i].len] = '\0';
            break;
        default: memcpy(rr->rr[n]->ptr, a->names[i], need); break;
        }
        n++;
    }
    rr->num_rr = n;
    if (n == 0)
        rr->herrno = type == MD_DNS_TXT && a->n ? TRY_AGAIN : NO_DATA;
    return rr;
}

static void layer_destroy(SPF_dns_server_t *srv)
{
    free(srv);
}

/* One libspf2 server per process, made on first use: its setup (default
 * explanation and local policy compiled, DNS layer) is the same for every
 * request, and an SPF worker evaluates thousands.  The layer reads ctx,
 * which each evaluation points at its own answer table.  It lives until
 * the process exits (a worker, or the child of an isolated evaluation). */
static layer_ctx the_ctx;
static SPF_server_t *the_server;

static SPF_server_t *server(void)
{
    if (the_server != NULL)
        return the_server;
    SPF_dns_server_t *layer = calloc(1, sizeof *layer);
    if (layer == NULL)
        return NULL;
    layer->lookup = layer_lookup;
    layer->destroy = layer_destroy;
    layer->name = "maildiag";
    layer->hook = &the_ctx;
    the_server = SPF_server_new_dns(layer, 0);
    if (the_server == NULL) {
        SPF_dns_free(layer);
        return NULL;
    }
    SPF_server_set_rec_dom(the_server, "maildiag");
    return the_server;
}

static void run_libspf2(spf_lookup_fn lookup, void *arg, const char *ip,
                        const char *sender, const char *helo, int helo_identity,
                        spf_libspf2_out *out)
{
    memset(out, 0, sizeof *out);
    /* The isolation tests make this stage fail the ways libspf2 can (test
     * builds only: spf-int.h). */
    if (spf_test_fault("libspf2-crash"))
        raise(SIGSEGV);
    if (spf_test_fault("libspf2-hang"))
        for (;;)
            pause();
    SPF_error_handler = fatal;
    SPF_warning_handler = quiet;
    SPF_info_handler = quiet;
    SPF_debug_handler = quiet;

    SPF_server_t *srv = server();
    if (srv == NULL) {
        snprintf(out->error, sizeof out->error, "SPF_server_new_dns failed");
        return;
    }
    the_ctx = (layer_ctx){ lookup, arg };
    SPF_request_t *req = SPF_request_new(srv);
    SPF_response_t *resp = NULL;
    SPF_errcode_t rc = strchr(ip, ':') ? SPF_request_set_ipv6_str(req, ip)
                                       : SPF_request_set_ipv4_str(req, ip);
    if (rc == SPF_E_SUCCESS && helo && *helo)
        rc = SPF_request_set_helo_dom(req, helo);
    if (rc == SPF_E_SUCCESS && !helo_identity && sender && *sender)
        rc = SPF_request_set_env_from(req, sender) == 0 ? SPF_E_SUCCESS : SPF_E_INVALID_OPT;
    if (rc != SPF_E_SUCCESS) {
        snprintf(out->error, sizeof out->error, "libspf2 refused the request: %s", SPF_strerror(rc));
        snprintf(out->result, sizeof out->result, "error");
        goto done;
    }
    SPF_request_query_mailfrom(req, &resp);
    if (resp == NULL) {
        snprintf(out->result, sizeof out->result, "error");
        goto done;
    }
    SPF_result_t res = SPF_response_result(resp);
    snprintf(out->result, sizeof out->result, "%s",
             res == SPF_RESULT_INVALID ? "invalid" : SPF_strresult(res));
    snprintf(out->reason, sizeof out->reason, "%s", SPF_strreason(SPF_response_reason(resp)));
    out->errcode = SPF_response_errcode(resp);
    if (out->errcode != SPF_E_SUCCESS)
        snprintf(out->error, sizeof out->error, "%s", SPF_strerror(out->errcode));
done:
    SPF_response_free(resp);
    SPF_request_free(req);
    the_ctx = (layer_ctx){ NULL, NULL };
}

/*
 * With isolate, libspf2 runs in a child process of its own: it aborts on
 * some inputs (SPF_ASSERT_NOTNULL, its fatal error handler) and has an
 * unpatched macro flaw, and the RFC verdict must survive that.  (The pool's
 * workers pass isolate 0: the worker itself is the isolation, and it sends
 * the RFC verdict before libspf2 starts.)  The child inherits the
 * answer table (copy-on-write), so the prefetched data costs nothing to
 * hand over; its result comes back as a fixed-size struct over a pipe.
 */
void spf_libspf2_evaluate(spf_lookup_fn lookup, void *arg, const char *ip,
                          const char *sender, const char *helo, int helo_identity,
                          int64_t deadline_ms, int isolate, spf_libspf2_out *out)
{
    int fd[2];
    memset(out, 0, sizeof *out);
    if (!isolate) {
        run_libspf2(lookup, arg, ip, sender, helo, helo_identity, out);
        return;
    }
    if (pipe(fd) != 0) {
        snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        snprintf(out->error, sizeof out->error, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        spf_libspf2_out o;
        close(fd[0]);
        run_libspf2(lookup, arg, ip, sender, helo, helo_identity, &o);
        ssize_t w = write(fd[1], &o, sizeof o);
        _exit(w == (ssize_t)sizeof o ? 0 : 1);
    }
    close(fd[1]);
    size_t got = 0;
    int timed_out = 0;
    while (got < sizeof *out) {
        int64_t left = deadline_ms - md_now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = { .fd = fd[0], .events = POLLIN };
        int k = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            timed_out = k == 0;
            if (k == 0)
                continue;
            break;
        }
        ssize_t r = read(fd[0], (char *)out + got, sizeof *out - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd[0]);
    if (got < sizeof *out)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (got == sizeof *out) {
        out->result[sizeof out->result - 1] = '\0';
        out->reason[sizeof out->reason - 1] = '\0';
        out->error[sizeof out->error - 1] = '\0';
        return;
    }
    memset(out, 0, sizeof *out);
    out->crashed = 1;
    if (timed_out)
        snprintf(out->error, sizeof out->error, "libspf2 did not finish in time: killed");
    else if (WIFSIGNALED(st))
        snprintf(out->error, sizeof out->error, "libspf2 was killed by signal %d (%s)",
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(out->error, sizeof out->error, "libspf2 exited with status %d",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
