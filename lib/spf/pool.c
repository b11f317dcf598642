/*
 * lib/spf pool: worker processes for SPF evaluation (see pool.h).
 */
#include "config.h"
#include "pool.h"
#include "spf-int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES (8u << 20)   /* one result; bigger means a runaway worker */

typedef struct worker {
    pid_t pid;
    int to, from;            /* request pipe (write end), result pipe (read end) */
    int busy;
    void *tag;
    json_t *req;             /* the request in flight */
    json_t *partial;         /* its RFC result, while libspf2 runs */
    int64_t started;
    char *buf;
    size_t len, cap;
} worker;

struct md_spf_pool {
    worker *w;
    unsigned n;
    md_dns_config dns;
    char **servers;
    int64_t deadline_ms;
};

/* Each request is answered with two lines: the RFC result (written before
 * libspf2 runs, so a libspf2 crash cannot take it along), then libspf2's
 * verdict {"libspf2", "findings" (added), "queries" (all)}. */
static FILE *worker_out;
static size_t worker_nfind;

static int put_line(json_t *j)
{
    if (json_dumpf(j, worker_out, JSON_COMPACT) != 0 || fputc('\n', worker_out) == EOF
        || fflush(worker_out) != 0)
        return -1;
    return 0;
}

static void first_line(void *arg, json_t *out)
{
    (void)arg;
    worker_nfind = json_array_size(json_object_get(out, "findings"));
    json_object_set_new(out, "libspf2", json_pack("{s:b}", "ran", 0));
    if (put_line(out) != 0)
        _exit(71);
    json_object_del(out, "libspf2");
}

static void worker_main(md_spf_pool *p, int in, int out) __attribute__((noreturn));
static void worker_main(md_spf_pool *p, int in, int out)
{
    md_error err = { 0 };
    FILE *fin = fdopen(in, "r");
    worker_out = fdopen(out, "w");
    md_dns *dns = md_dns_new(&p->dns, &err);
    char *line = NULL;
    size_t cap = 0;
    signal(SIGPIPE, SIG_DFL);
    if (fin == NULL || worker_out == NULL || dns == NULL)
        _exit(70);
    while (getline(&line, &cap, fin) > 0) {
        json_t *rq = json_loads(line, 0, NULL);
        json_t *res = NULL;
        worker_nfind = (size_t)-1;
        if (rq != NULL) {
            md_spf_request r = {
                .ip = json_string_value(json_object_get(rq, "ip")),
                .sender = json_string_value(json_object_get(rq, "sender")),
                .helo = json_string_value(json_object_get(rq, "helo")),
                .identity = json_integer_value(json_object_get(rq, "identity")) ? MD_SPF_ID_HELO
                                                                                 : MD_SPF_ID_MAILFROM,
                .domain = json_string_value(json_object_get(rq, "domain")),
                .receiver = json_string_value(json_object_get(rq, "receiver")),
                .no_libspf2 = json_is_true(json_object_get(rq, "no_libspf2")),
                .deadline = json_real_value(json_object_get(rq, "deadline")),
            };
            md_error_clear(&err);
            res = spf_evaluate_staged(dns, &r, 0, first_line, NULL, &err);
            json_decref(rq);
        }
        json_t *second;
        if (res == NULL || worker_nfind == (size_t)-1) {
            json_t *e = json_pack("{s:s, s:s}", "result", "temperror", "request_error",
                                  res ? "internal" : err.text[0] ? err.text : "bad request");
            if (put_line(e) != 0)
                _exit(71);
            json_decref(e);
            second = json_object();
        } else {
            json_t *f = json_object_get(res, "findings"), *add = json_array();
            for (size_t i = worker_nfind; i < json_array_size(f); i++)
                json_array_append(add, json_array_get(f, i));
            second = json_pack("{s:O, s:o, s:O}", "libspf2", json_object_get(res, "libspf2"),
                               "findings", add, "queries", json_object_get(res, "queries"));
        }
        if (put_line(second) != 0)
            _exit(71);
        json_decref(second);
        json_decref(res);
    }
    /* The pool closed our request pipe: done.  No exit handlers: they
     * belong to the parent. */
    _exit(0);
}

static int spawn(md_spf_pool *p, unsigned i)
{
    int a[2], b[2];
    if (pipe(a) != 0)
        return -1;
    if (pipe(b) != 0) {
        close(a[0]); close(a[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(a[0]); close(a[1]); close(b[0]); close(b[1]);
        return -1;
    }
    if (pid == 0) {
        for (unsigned k = 0; k < p->n; k++)
            if (k != i && p->w[k].pid > 0) {
                close(p->w[k].to);
                close(p->w[k].from);
            }
        close(a[1]);
        close(b[0]);
        worker_main(p, a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    fcntl(b[0], F_SETFL, fcntl(b[0], F_GETFL) | O_NONBLOCK);
    fcntl(a[1], F_SETFD, FD_CLOEXEC);
    fcntl(b[0], F_SETFD, FD_CLOEXEC);
    worker *w = &p->w[i];
    w->pid = pid;
    w->to = a[1];
    w->from = b[0];
    w->busy = 0;
    w->len = 0;
    return 0;
}

static void reap(worker *w, int kill_it, int *status)
{
    if (w->pid <= 0)
        return;
    if (kill_it)
        kill(w->pid, SIGKILL);
    close(w->to);
    close(w->from);
    while (waitpid(w->pid, status, 0) < 0 && errno == EINTR)
        ;
    w->pid = 0;
}

md_spf_pool *md_spf_pool_new(const md_spf_pool_config *cfg, md_error *err)
{
    md_spf_pool *p = md_xcalloc(1, sizeof *p);
    signal(SIGPIPE, SIG_IGN);   /* a dead worker must not kill the tool */
    p->n = cfg->workers ? cfg->workers : 1;
    p->w = md_xcalloc(p->n, sizeof *p->w);
    p->dns = cfg->dns;
    p->servers = md_xcalloc(cfg->dns.nservers + 1, sizeof *p->servers);
    for (size_t i = 0; i < cfg->dns.nservers; i++)
        p->servers[i] = md_xstrdup(cfg->dns.servers[i]);
    p->dns.servers = (const char *const *)p->servers;
    p->deadline_ms = (int64_t)((cfg->deadline > 0 ? cfg->deadline : 30.0) * 1000.0);
    /* Fail early, in the parent, on a bad resolver. */
    md_dns *probe = md_dns_new(&p->dns, err);
    if (probe == NULL) {
        md_spf_pool_free(p);
        return NULL;
    }
    md_dns_free(probe);
    for (unsigned i = 0; i < p->n; i++)
        if (spawn(p, i) != 0) {
            md_error_set(err, MD_INTERNAL, "spf.pool", "cannot start an SPF worker: %s",
                         strerror(errno));
            md_spf_pool_free(p);
            return NULL;
        }
    return p;
}

void md_spf_pool_free(md_spf_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        int st;
        worker *w = &p->w[i];
        reap(w, w->busy, &st);
        json_decref(w->req);
        json_decref(w->partial);
        free(w->buf);
    }
    free(p->w);
    for (char **s = p->servers; s && *s; s++)
        free(*s);
    free(p->servers);
    free(p);
}

int md_spf_pool_has_idle(const md_spf_pool *p)
{
    for (unsigned i = 0; i < p->n; i++)
        if (!p->w[i].busy)
            return 1;
    return 0;
}

size_t md_spf_pool_busy(const md_spf_pool *p)
{
    size_t n = 0;
    for (unsigned i = 0; i < p->n; i++)
        n += p->w[i].busy != 0;
    return n;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The result for a request whose worker died or overran. */
static json_t *failed_result(const json_t *rq, const char *why)
{
    const char *sender = json_string_value(json_object_get(rq, "sender"));
    const char *helo = json_string_value(json_object_get(rq, "helo"));
    const char *dom = json_string_value(json_object_get(rq, "domain"));
    if (dom == NULL) {
        const char *at = sender && *sender ? strrchr(sender, '@') : NULL;
        dom = at ? at + 1 : sender && *sender ? sender : helo ? helo : "";
    }
    return json_pack("{s:s, s:O, s:O, s:O, s:s, s:n, s:i, s:i, s:n, s:s, s:n, s:[{s:s, s:s, s:s, s:[s]}]}",
                     "domain", dom, "ip", json_object_get(rq, "ip"),
                     "sender", json_object_get(rq, "sender"), "helo", json_object_get(rq, "helo"),
                     "result", "temperror", "explanation", "lookups", 0, "void_lookups", 0,
                     "mechanism", "error", why, "tree",
                     "findings", "id", "spf.engine_failed", "severity", "unknown",
                     "summary", "the SPF evaluation did not finish: reported as temperror",
                     "evidence", why);
}

md_status md_spf_pool_submit(md_spf_pool *p, const md_spf_request *req, void *tag, md_error *err)
{
    unsigned i;
    for (i = 0; i < p->n && p->w[i].busy; i++)
        ;
    if (i == p->n)
        return md_error_set(err, MD_TEMPFAIL, "spf.pool", "no idle worker");
    worker *w = &p->w[i];
    if (w->pid <= 0 && spawn(p, i) != 0)
        return md_error_set(err, MD_INTERNAL, "spf.pool", "cannot start an SPF worker: %s",
                            strerror(errno));
    json_t *rq = json_pack("{s:s?, s:s?, s:s?, s:i, s:s?, s:s?, s:b, s:f}",
                           "ip", req->ip, "sender", req->sender, "helo", req->helo,
                           "identity", req->identity == MD_SPF_ID_HELO,
                           "domain", req->domain, "receiver", req->receiver,
                           "no_libspf2", req->no_libspf2,
                           "deadline", req->deadline > 0 ? req->deadline
                                       : (double)p->deadline_ms / 1000.0 * 0.8);
    char *s = json_dumps(rq, JSON_COMPACT);
    size_t n = strlen(s);
    s = md_xrealloc(s, n + 2);
    s[n++] = '\n';
    s[n] = '\0';
    w->busy = 1;
    w->tag = tag;
    w->req = rq;
    w->started = md_now_ms();
    w->len = 0;
    if (write_all(w->to, s, n) != 0) {
        /* Dead worker: the result is produced by md_spf_pool_next. */
        kill(w->pid, SIGKILL);
    }
    free(s);
    return MD_OK;
}

/* Finishes worker i's request with result r (NULL: it failed, why says
 * how), replacing the worker when it is gone. */
static json_t *finish(md_spf_pool *p, unsigned i, json_t *r, const char *why, void **tag)
{
    worker *w = &p->w[i];
    if (r == NULL && w->partial != NULL) {
        /* The worker died or hung inside libspf2, after the RFC result. */
        int st = 0;
        char msg[200];
        reap(w, 1, &st);
        if (why)
            snprintf(msg, sizeof msg, "libspf2: %s", why);
        else if (WIFSIGNALED(st))
            snprintf(msg, sizeof msg, "libspf2 was killed by signal %d (%s)", WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
        else
            snprintf(msg, sizeof msg, "libspf2's process exited with status %d",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        r = w->partial;
        w->partial = NULL;
        json_object_set_new(r, "libspf2", json_pack("{s:b, s:s}", "ran", 1, "crashed", msg));
        json_array_append_new(json_object_get(r, "findings"),
            json_pack("{s:s, s:s, s:s, s:[s]}", "id", "spf.libspf2_crashed", "severity", "ok",
                      "summary", "libspf2 crashed or hung on this input (isolated); the RFC 7208"
                      " result does not depend on it", "evidence", msg));
    } else if (r == NULL) {
        int st = 0;
        int timed_out = why != NULL;
        reap(w, 1, &st);
        char msg[200];
        if (timed_out)
            snprintf(msg, sizeof msg, "%s", why);
        else if (WIFSIGNALED(st))
            snprintf(msg, sizeof msg, "the evaluation process was killed by signal %d (%s)"
                     " inside libspf2 or the DNS layer", WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            snprintf(msg, sizeof msg, "the evaluation process exited with status %d",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        r = failed_result(w->req, msg);
    }
    if (w->partial != NULL) {
        /* r is the second line: merge it into the RFC result. */
        json_t *full = w->partial;
        w->partial = NULL;
        json_t *l2 = json_object_get(r, "libspf2");
        if (l2)
            json_object_set(full, "libspf2", l2);
        if (json_object_get(r, "queries"))
            json_object_set(full, "queries", json_object_get(r, "queries"));
        json_array_extend(json_object_get(full, "findings"), json_object_get(r, "findings"));
        json_decref(r);
        r = full;
    }
    *tag = w->tag;
    json_decref(w->req);
    w->req = NULL;
    w->busy = 0;
    w->len = 0;
    return r;
}

json_t *md_spf_pool_next(md_spf_pool *p, void **tag)
{
    struct pollfd *pf = md_xcalloc(p->n, sizeof *pf);
    json_t *out = NULL;
    for (;;) {
        int64_t now = md_now_ms(), wait = -1;
        unsigned np = 0;
        for (unsigned i = 0; i < p->n; i++) {
            worker *w = &p->w[i];
            pf[i].fd = -1;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            if (!w->busy)
                continue;
            np++;
            int64_t left = w->started + p->deadline_ms - now;
            if (left <= 0) {
                char why[120];
                snprintf(why, sizeof why, "the evaluation did not finish within %.1f s: killed",
                         (double)p->deadline_ms / 1000.0);
                out = finish(p, i, NULL, why, tag);
                goto done;
            }
            if (wait < 0 || left < wait)
                wait = left;
            pf[i].fd = w->from;
        }
        if (np == 0)
            goto done;
        int k = poll(pf, p->n, (int)wait);
        if (k < 0 && errno != EINTR)
            goto done;
        for (unsigned i = 0; i < p->n && k > 0; i++) {
            worker *w = &p->w[i];
            if (pf[i].fd < 0 || pf[i].revents == 0)
                continue;
            for (;;) {
                if (w->cap - w->len < 65536) {
                    w->cap = w->cap ? w->cap * 2 : 131072;
                    w->buf = md_xrealloc(w->buf, w->cap);
                }
                ssize_t r = read(w->from, w->buf + w->len, w->cap - w->len - 1);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r <= 0) {            /* EOF: the worker died */
                    out = finish(p, i, NULL, NULL, tag);
                    goto done;
                }
                w->len += (size_t)r;
                char *nl = memchr(w->buf, '\n', w->len);
                if (nl != NULL && w->partial == NULL) {
                    *nl = '\0';
                    w->partial = json_loads(w->buf, 0, NULL);
                    size_t used = (size_t)(nl + 1 - w->buf);
                    memmove(w->buf, nl + 1, w->len - used);
                    w->len -= used;
                    if (w->partial == NULL) {
                        out = finish(p, i, NULL, "the evaluation process sent a bad result", tag);
                        goto done;
                    }
                    nl = memchr(w->buf, '\n', w->len);
                }
                if (nl != NULL) {
                    *nl = '\0';
                    json_t *res = json_loads(w->buf, 0, NULL);
                    if (res == NULL) {
                        out = finish(p, i, NULL, "the evaluation process sent a bad result", tag);
                    } else {
                        out = finish(p, i, res, NULL, tag);
                    }
                    goto done;
                }
                if (w->len > LINE_MAX_BYTES) {
                    out = finish(p, i, NULL, "the evaluation process sent an oversized result", tag);
                    goto done;
                }
            }
        }
    }
done:
    free(pf);
    return out;
}
