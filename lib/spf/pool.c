/*
 * lib/spf pool: worker processes for SPF evaluation (see pool.h).
 *
 * Protocol.  The parent writes each request as a frame, "Q LENGTH\n" then
 * LENGTH bytes: "IDENTITY LIBSPF2 DEADLINE" (LIBSPF2: 0 ask it, 1 do not,
 * 2 only where it can differ) and the string fields (ip,
 * sender, helo, domain, receiver, libspf2 crash note), each a NUL-ended
 * string after '+', or '-' for none (no JSON to build and parse on either
 * side, for every request of a bulk run).  A worker answers with one frame,
 * "F STATUS LENGTH\n" then LENGTH bytes: the result in the pool's output
 * form (the report already rendered as a JSON line or text by lib/report,
 * so the serial parent only copies bytes; or, for typed results, the
 * result and its findings in the binary form of spf_result_encode below);
 * STATUS is its worst severity (0-3).
 *
 * libspf2 runs inside the worker.  When a worker dies or overruns with
 * libspf2 in play, the request is run again on a fresh worker without
 * libspf2, carrying the crash note: the RFC 7208 result survives (finding
 * spf.libspf2_crashed) and only the rare crash pays twice.  If that run
 * fails too, the result is temperror with spf.engine_failed.
 */
#include "config.h"
#include "pool.h"
#include "spf-int.h"
#include "base/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAME_MAX (8u << 20)   /* one result; bigger means a runaway worker */

#define DEPTH_MAX 16

/* The string fields of a request, in wire order. */
enum { RQ_IP, RQ_SENDER, RQ_HELO, RQ_DOMAIN, RQ_RECEIVER, RQ_CRASH, RQ_N };

typedef struct job {
    void *tag;
    char *f[RQ_N];           /* owned copies, NULL when absent */
    int identity_helo, no_libspf2, libspf2_if_needed;
    double deadline;
    int retried;             /* already run again without libspf2 */
} job;

/* A worker evaluates its queue in order, so results come back in order:
 * the head job is the one running.  Several jobs in flight per worker keep
 * it busy while the parent reads and writes. */
typedef struct worker {
    pid_t pid;
    int to, from;            /* request pipe (write end), result pipe (read end) */
    job q[DEPTH_MAX];        /* ring: q[head] .. q[head + n - 1] */
    unsigned head, n;
    int64_t started;         /* when the head job started (about) */
    md_buf pend;             /* requests not yet written (sent in one write
                              * when the pool next waits for results) */
    md_buf in;               /* result bytes read, not yet framed */
} worker;

struct md_spf_pool {
    worker *w;
    unsigned n, depth;
    int filling;             /* taking requests until every queue is full (see
                              * md_spf_pool_has_idle) */
    md_dns_config dns;
    char **servers;
    int64_t deadline_ms;
    md_spf_output output;
    char *tool;
    unsigned text_flags;
    const volatile sig_atomic_t *cancel;
};

void md_spf_pool_result_clear(md_spf_pool_result *r)
{
    if (r == NULL)
        return;
    md_spf_result_free(r->result);
    md_report_free(r->report);
    free(r->rendered);
    memset(r, 0, sizeof *r);
}

/* A result and its findings in the pool's output form: rendered bytes
 * (described into rep, then written by lib/report), or both as they are.
 * Takes res and rep. */
static void shape(md_spf_pool *p, md_spf_result *res, md_report *rep, md_spf_pool_result *out)
{
    out->status = md_report_status(rep);
    if (p->output == MD_SPF_OUT_OBJECT) {
        out->result = res;
        out->report = rep;
        return;
    }
    if (p->output == MD_SPF_OUT_JSON) {
        md_buf b = { 0 };
        if (spf_result_append_json(&b, res, rep, 0) == 0) {
            out->rendered = md_buf_steal(&b, &out->len);
            md_report_free(rep);
            md_spf_result_free(res);
            return;
        }
        md_buf_free(&b);
    }
    md_spf_describe(res, rep, p->output == MD_SPF_OUT_JSON ? MD_SPF_DESCRIBE_JSON_ONLY : 0);
    if (p->output == MD_SPF_OUT_JSON) {
        md_buf b = { 0 };
        md_report_append_json(rep, &b);
        out->rendered = md_buf_steal(&b, &out->len);
    } else {
        FILE *f = open_memstream(&out->rendered, &out->len);
        if (f != NULL) {
            md_report_write_text(rep, f, p->text_flags);
            fclose(f);
        }
    }
    md_report_free(rep);
    md_spf_result_free(res);
}

/* --- typed results over the pipe --------------------------------------------
 *
 * The worker and the parent are the same program, so the form is simple:
 * integers as 4 bytes in host order, strings as a 4-byte length and the
 * bytes (UINT32_MAX for NULL), the tree depth first.  The parent still
 * checks every length against the frame: a worker is where hostile DNS
 * data is handled.
 */
#define NODE_DEPTH_MAX 64

static void put_u32(md_buf *b, uint32_t v)
{
    md_buf_add(b, &v, sizeof v);
}

static void put_str(md_buf *b, const char *s)
{
    if (s == NULL) {
        put_u32(b, UINT32_MAX);
        return;
    }
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    md_buf_add(b, s, n);
}

static void put_node(md_buf *b, const md_spf_node *n)
{
    put_u32(b, n != NULL);
    if (n == NULL)
        return;
    put_u32(b, (uint32_t)n->kind);
    put_u32(b, (uint32_t)n->via);
    put_str(b, n->domain);
    put_str(b, n->term);
    put_str(b, n->record);
    put_u32(b, (uint32_t)n->lookups);
    put_str(b, n->error);
    put_str(b, n->matched);
    put_u32(b, (uint32_t)n->has_result);
    put_u32(b, (uint32_t)n->result);
    put_u32(b, (uint32_t)n->nchildren);
    for (size_t i = 0; i < n->nchildren; i++)
        put_node(b, n->children[i]);
}

void spf_result_encode(md_buf *b, const md_spf_result *r, const md_report *rep)
{
    put_u32(b, (uint32_t)r->kind);
    put_str(b, r->domain);
    put_str(b, r->ip);
    put_str(b, r->sender);
    put_str(b, r->helo);
    put_u32(b, (uint32_t)r->identity);
    put_u32(b, (uint32_t)r->result);
    put_str(b, r->explanation);
    put_u32(b, (uint32_t)r->explanation_source);
    put_u32(b, (uint32_t)r->lookups);
    put_u32(b, (uint32_t)r->void_lookups);
    put_str(b, r->mechanism);
    put_str(b, r->error);
    put_str(b, r->record);
    put_node(b, r->tree);
    put_u32(b, (uint32_t)r->nqueries);
    for (size_t i = 0; i < r->nqueries; i++) {
        const md_spf_query *q = &r->queries[i];
        put_str(b, q->name);
        put_u32(b, (uint32_t)q->type);
        put_u32(b, (uint32_t)q->outcome);
        put_u32(b, (uint32_t)q->records);
        put_u32(b, (uint32_t)q->by);
        put_str(b, q->detail);
    }
    put_str(b, r->received_spf);
    put_str(b, r->authentication_results);
    const md_spf_libspf2 *l = &r->libspf2;
    put_u32(b, (uint32_t)l->ran);
    put_str(b, l->why);
    put_str(b, l->crashed);
    put_str(b, l->result);
    put_str(b, l->reason);
    put_str(b, l->error);
    put_u32(b, (uint32_t)l->agrees);
    put_str(b, l->override);
    size_t n = md_report_count(rep);
    put_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const md_finding *f = md_report_get(rep, i);
        put_str(b, f->id);
        put_u32(b, (uint32_t)f->severity);
        put_str(b, f->summary);
        put_u32(b, (uint32_t)f->nevidence);
        for (size_t j = 0; j < f->nevidence; j++)
            put_str(b, f->evidence[j]);
    }
}

typedef struct reader {
    const char *p, *end;
    int bad;
} reader;

static uint32_t get_u32(reader *r)
{
    uint32_t v = 0;
    if (r->end - r->p < (ptrdiff_t)sizeof v) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, sizeof v);
    r->p += sizeof v;
    return v;
}

/* A count of items of at least min_size bytes each that fit what is left. */
static size_t get_count(reader *r, size_t min_size)
{
    uint32_t n = get_u32(r);
    if ((size_t)(r->end - r->p) / min_size < n) {
        r->bad = 1;
        return 0;
    }
    return n;
}

static uint32_t get_enum(reader *r, uint32_t max)
{
    uint32_t v = get_u32(r);
    if (v > max)
        r->bad = 1;
    return v > max ? 0 : v;
}

static char *get_str(reader *r)
{
    uint32_t n = get_u32(r);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = md_xstrndup(r->p, n);
    r->p += n;
    return s;
}

static md_spf_node *get_node(reader *r, int depth)
{
    if (!get_u32(r) || r->bad)
        return NULL;
    if (depth > NODE_DEPTH_MAX) {
        r->bad = 1;
        return NULL;
    }
    md_spf_node *n = md_xcalloc(1, sizeof *n);
    n->kind = (md_spf_node_kind)get_enum(r, MD_SPF_NODE_MACRO);
    n->via = (md_spf_via)get_enum(r, MD_SPF_VIA_REDIRECT);
    n->domain = get_str(r);
    n->term = get_str(r);
    n->record = get_str(r);
    n->lookups = (int)get_u32(r);
    n->error = get_str(r);
    n->matched = get_str(r);
    n->has_result = (int)get_enum(r, 1);
    n->result = (md_spf_code)get_enum(r, MD_SPF_PERMERROR);
    size_t nc = get_count(r, 4);
    if (nc > 0)
        n->children = md_xcalloc(nc, sizeof *n->children);
    for (size_t i = 0; i < nc && !r->bad; i++) {
        n->children[i] = get_node(r, depth + 1);
        if (n->children[i] == NULL)
            r->bad = 1;
        else
            n->nchildren++;
    }
    return n;
}

md_spf_result *spf_result_decode(const char *data, size_t len, md_report *rep)
{
    reader rd = { data, data + len, 0 };
    reader *r = &rd;
    md_spf_result *res = md_xcalloc(1, sizeof *res);
    res->kind = (md_spf_result_kind)get_enum(r, MD_SPF_INVALID);
    res->domain = get_str(r);
    res->ip = get_str(r);
    res->sender = get_str(r);
    res->helo = get_str(r);
    res->identity = (md_spf_identity)get_enum(r, MD_SPF_ID_HELO);
    res->result = (md_spf_code)get_enum(r, MD_SPF_PERMERROR);
    res->explanation = get_str(r);
    res->explanation_source = (md_spf_exp_source)get_enum(r, MD_SPF_EXP_RECORD);
    res->lookups = (int)get_u32(r);
    res->void_lookups = (int)get_u32(r);
    res->mechanism = get_str(r);
    res->error = get_str(r);
    res->record = get_str(r);
    res->tree = get_node(r, 0);
    size_t nq = get_count(r, 24);
    if (nq > 0)
        res->queries = md_xcalloc(nq, sizeof *res->queries);
    for (size_t i = 0; i < nq && !r->bad; i++) {
        md_spf_query *q = &res->queries[res->nqueries++];
        q->name = get_str(r);
        q->type = (int)get_u32(r);
        q->outcome = (md_dns_outcome)get_enum(r, MD_DNS_ERROR);
        q->records = get_u32(r);
        q->by = (md_spf_by)get_enum(r, MD_SPF_BY_LINT);
        q->detail = get_str(r);
        if (q->name == NULL)
            r->bad = 1;
    }
    res->received_spf = get_str(r);
    res->authentication_results = get_str(r);
    md_spf_libspf2 *l = &res->libspf2;
    l->ran = (int)get_enum(r, 1);
    l->why = get_str(r);
    l->crashed = get_str(r);
    l->result = get_str(r);
    l->reason = get_str(r);
    l->error = get_str(r);
    l->agrees = (int)get_enum(r, 1);
    l->override = get_str(r);
    if (res->domain == NULL)
        r->bad = 1;
    size_t nf = get_count(r, 16);
    for (size_t i = 0; i < nf && !r->bad; i++) {
        char *id = get_str(r);
        md_severity sev = (md_severity)get_enum(r, MD_SEV_UNKNOWN);
        char *summary = get_str(r);
        if (id == NULL || summary == NULL || r->bad) {
            r->bad = 1;
        } else {
            md_finding *f = md_report_add(rep, id, sev, "%s", summary);
            size_t ne = get_count(r, 4);
            for (size_t j = 0; j < ne && !r->bad; j++) {
                char *e = get_str(r);
                if (e == NULL)
                    r->bad = 1;
                else
                    md_finding_add_evidence(f, "%s", e);
                free(e);
            }
        }
        free(id);
        free(summary);
    }
    if (r->bad || r->p != r->end) {
        md_spf_result_free(res);
        return NULL;
    }
    return res;
}

/* --- worker ------------------------------------------------------------- */

/*
 * A worker's JSON lives for one evaluation: built, rendered, freed.  About
 * 150 small jansson allocations per evaluation made malloc and free a
 * sixth of a worker's time, so in a worker jansson allocates from an arena
 * that is emptied after each result is written (free is a no-op).  Nothing
 * JSON outlives an iteration of worker_main's loop.
 */
typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    max_align_t data[];
} arena_chunk;

static arena_chunk *arena;

static void *arena_alloc(size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (arena == NULL || arena->size - arena->used < n) {
        size_t size = n > 65536 ? n : 65536;
        arena_chunk *c = malloc(sizeof *c + size);
        if (c == NULL)
            return NULL;
        c->next = arena;
        c->used = 0;
        c->size = size;
        arena = c;
    }
    void *ptr = (char *)arena->data + arena->used;
    arena->used += n;
    return ptr;
}

static void arena_free(void *ptr)
{
    (void)ptr;
}

/* Empties the arena, keeping one chunk as big as this evaluation needed. */
static void arena_reset(void)
{
    size_t total = 0;
    while (arena != NULL && arena->next != NULL) {
        arena_chunk *next = arena->next;
        total += arena->size;
        free(arena);
        arena = next;
    }
    if (arena == NULL)
        return;
    if (total > 0) {
        total += arena->size;
        free(arena);
        arena = NULL;
        if (arena_alloc(total) != NULL)
            arena->used = 0;
        return;
    }
    arena->used = 0;
}

static FILE *worker_out;

static md_dns_answer *worker_resolve(void *arg, const char *name, int type)
{
    return md_dns_resolve(arg, name, type);
}

static int put_frame(int status, const char *s, size_t n)
{
    if (fprintf(worker_out, "F %d %zu\n", status, n) < 0
        || fwrite(s, 1, n, worker_out) != n || fflush(worker_out) != 0)
        return -1;
    return 0;
}

static void worker_main(md_spf_pool *p, int in, int out) __attribute__((noreturn));
/* Reads one request frame from fin into buf and points r (and *crash)
 * into it.  Returns 1, 0 at the end of input, -1 on a malformed frame. */
static int read_request(FILE *fin, md_buf *buf, md_spf_request *r, const char **crash)
{
    char hdr[64];
    size_t len;
    if (fgets(hdr, sizeof hdr, fin) == NULL)
        return 0;
    char *end;
    if (hdr[0] != 'Q' || hdr[1] != ' ' || (len = strtoul(hdr + 2, &end, 10), *end != '\n')
        || len > FRAME_MAX)
        return -1;
    buf->len = 0;
    if (fread(md_buf_reserve(buf, len + 1), 1, len, fin) != len)
        return -1;
    buf->len = len;
    md_buf_cstr(buf);
    const char *f[RQ_N];
    char *p = buf->data, *lim = buf->data + len;
    /* "IDENTITY LIBSPF2 DEADLINE" */
    if (len < 6 || (p[0] != '0' && p[0] != '1') || p[1] != ' ' || p[2] < '0' || p[2] > '2'
        || p[3] != ' ')
        return -1;
    int helo_id = p[0] == '1', no_l2 = p[2] == '1', l2_if_needed = p[2] == '2';
    double deadline = strtod(p + 4, &end);
    if (*end != '\0')
        return -1;
    p = end + 1;
    for (int k = 0; k < RQ_N; k++) {
        if (p >= lim || (*p != '+' && *p != '-'))
            return -1;
        f[k] = *p == '+' ? p + 1 : NULL;
        p += *p == '+' ? strlen(p) + 1 : 1;
    }
    if (p > lim)
        return -1;
    *r = (md_spf_request){ .ip = f[RQ_IP], .sender = f[RQ_SENDER], .helo = f[RQ_HELO],
                           .identity = helo_id ? MD_SPF_ID_HELO : MD_SPF_ID_MAILFROM,
                           .domain = f[RQ_DOMAIN], .receiver = f[RQ_RECEIVER],
                           .no_libspf2 = no_l2, .libspf2_if_needed = l2_if_needed,
                           .deadline = deadline };
    *crash = f[RQ_CRASH];
    return 1;
}

static void worker_main(md_spf_pool *p, int in, int out) __attribute__((noreturn));
static void worker_main(md_spf_pool *p, int in, int out)
{
    md_error err = { 0 };
    FILE *fin = fdopen(in, "r");
    worker_out = fdopen(out, "w");
    md_dns *dns = md_dns_new(&p->dns, &err);
    md_buf rbuf = { 0 };
    md_spf_request r;
    const char *crash;
    int got;
    signal(SIGPIPE, SIG_DFL);
    /* An interrupt from the terminal reaches the whole process group: the
     * tool decides what happens, and kills its workers when it stops. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    if (fin == NULL || worker_out == NULL || dns == NULL)
        _exit(70);
    /* A result's header and its JSON go out in one write when put_frame
     * flushes: with the pipe's default 4 KiB buffer, stdio wrote the header
     * and then the payload on their own (two system calls a result). */
    setvbuf(worker_out, NULL, _IOFBF, 1 << 16);
    json_set_alloc_funcs(arena_alloc, arena_free);
    spf_source src = { worker_resolve, dns };
    while ((got = read_request(fin, &rbuf, &r, &crash)) != 0) {
        md_spf_result *res = NULL;
        md_report *rep = md_report_new(p->tool, NULL);
        md_error_clear(&err);
        /* isolate 0: this worker is the isolation (see above) */
        if (got > 0 && spf_evaluate(&src, &r, 0, &res, rep, &err) == MD_OK && crash != NULL)
            spf_result_crashed(res, rep, crash);
        if (res == NULL) {
            res = md_spf_result_invalid("");
            md_finding *f = md_report_add(rep, "input.invalid_line", MD_SEV_UNKNOWN, "%s",
                                          "the request cannot be evaluated");
            md_finding_add_evidence(f, "%s", err.text[0] ? err.text : "bad request");
        }
        int rc;
        if (p->output == MD_SPF_OUT_OBJECT) {
            md_buf b = { 0 };
            spf_result_encode(&b, res, rep);
            rc = put_frame((int)md_report_status(rep), md_buf_cstr(&b), b.len);
            md_buf_free(&b);
            md_spf_result_free(res);
            md_report_free(rep);
        } else {
            md_spf_pool_result sr = { 0 };
            shape(p, res, rep, &sr);
            rc = put_frame((int)sr.status, sr.rendered ? sr.rendered : "", sr.len);
            md_spf_pool_result_clear(&sr);
        }
        arena_reset();
        if (rc != 0 || got < 0)
            _exit(71);
    }
    /* The pool closed our request pipe: done.  No exit handlers: they
     * belong to the parent. */
    _exit(0);
}

/* --- parent ------------------------------------------------------------- */

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
    w->in.len = 0;
    w->pend.len = 0;   /* what was queued for the old process is sent again */
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

static job *qjob(worker *w, unsigned k)
{
    return &w->q[(w->head + k) % DEPTH_MAX];
}

static void job_clear(job *j)
{
    for (int k = 0; k < RQ_N; k++) {
        free(j->f[k]);
        j->f[k] = NULL;
    }
}

md_spf_pool *md_spf_pool_new(const md_spf_pool_config *cfg, md_error *err)
{
    md_spf_pool *p = md_xcalloc(1, sizeof *p);
    signal(SIGPIPE, SIG_IGN);   /* a dead worker must not kill the tool */
    p->n = cfg->workers ? cfg->workers : 1;
    p->depth = cfg->depth ? (cfg->depth < DEPTH_MAX ? cfg->depth : DEPTH_MAX) : 8;
    p->filling = 1;
    p->w = md_xcalloc(p->n, sizeof *p->w);
    p->dns = cfg->dns;
    p->servers = md_xcalloc(cfg->dns.nservers + 1, sizeof *p->servers);
    for (size_t i = 0; i < cfg->dns.nservers; i++)
        p->servers[i] = md_xstrdup(cfg->dns.servers[i]);
    p->dns.servers = (const char *const *)p->servers;
    p->deadline_ms = (int64_t)((cfg->deadline > 0 ? cfg->deadline : 30.0) * 1000.0);
    p->output = cfg->output;
    p->tool = md_xstrdup(cfg->tool ? cfg->tool : "spf");
    p->text_flags = cfg->text_flags;
    p->cancel = cfg->cancel;
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
        reap(w, w->n > 0, &st);
        for (unsigned k = 0; k < w->n; k++)
            job_clear(qjob(w, k));
        md_buf_free(&w->in);
        md_buf_free(&w->pend);
    }
    free(p->w);
    for (char **s = p->servers; s && *s; s++)
        free(*s);
    free(p->servers);
    free(p->tool);
    free(p);
}

/* Queues are refilled in batches: once every queue is full, the pool
 * takes requests again only when one has drained to half (p->filling, set
 * by md_spf_pool_next).  Each worker then gets its share in one write and
 * one read, not one system call each per request.  Which worker a request
 * goes to is still md_spf_pool_submit's (domain affinity). */
int md_spf_pool_has_idle(const md_spf_pool *p)
{
    for (unsigned i = 0; i < p->n; i++)
        if (p->w[i].n < p->depth && (p->filling || p->w[i].n <= p->depth / 2))
            return 1;
    return 0;
}

size_t md_spf_pool_busy(const md_spf_pool *p)
{
    size_t n = 0;
    for (unsigned i = 0; i < p->n; i++)
        n += p->w[i].n;
    return n;
}

/* The result for a request whose evaluation failed even without libspf2
 * (why), in the pool's output form. */
static void failed_result(md_spf_pool *p, const job *j, const char *why, md_spf_pool_result *out)
{
    md_report *rep = md_report_new(p->tool, NULL);
    md_spf_result *res = spf_result_failed(j->f[RQ_IP], j->f[RQ_SENDER], j->f[RQ_HELO],
                                           j->f[RQ_DOMAIN], why, rep);
    shape(p, res, rep, out);
}

/* Writes w's pending requests. */
static void flush_reqs(worker *w)
{
    if (w->pend.len == 0)
        return;
    if (w->pid <= 0 || md_write_all(w->to, w->pend.data, w->pend.len) != 0) {
        /* Dead worker: md_spf_pool_next sees the EOF and handles it. */
        if (w->pid > 0)
            kill(w->pid, SIGKILL);
    }
    w->pend.len = 0;
}

/* Queues j's request for w (written by flush_reqs). */
static void send_req(worker *w, const job *j)
{
    md_buf *b = &w->pend;
    char head[64], flags[64];
    /* "%d %d %.3f" by hand: printf's floating point was a quarter of the
     * serial parent's time in a bulk run */
    long long ms = (long long)(j->deadline * 1000.0 + 0.5);
    if (ms < 0 || ms > 999999999999LL)
        ms = 999999999999LL;
    char digits[24], *d = digits + sizeof digits;
    *--d = '\0';
    for (int k = 0; k < 4 || ms > 0; k++) {   /* at least "0.000" */
        if (k == 3)
            *--d = '.';
        *--d = (char)('0' + ms % 10);
        ms /= 10;
    }
    size_t len = (size_t)snprintf(flags, sizeof flags, "%c %c %s", j->identity_helo ? '1' : '0',
                                  j->no_libspf2 ? '1' : j->libspf2_if_needed ? '2' : '0', d) + 1;
    for (int k = 0; k < RQ_N; k++)
        len += j->f[k] ? strlen(j->f[k]) + 2 : 1;
    md_buf_add(b, head, (size_t)snprintf(head, sizeof head, "Q %zu\n", len));
    md_buf_add(b, flags, strlen(flags) + 1);
    for (int k = 0; k < RQ_N; k++) {
        md_buf_add(b, j->f[k] ? "+" : "-", 1);
        if (j->f[k])
            md_buf_add(b, j->f[k], strlen(j->f[k]) + 1);
    }
}

/* Strict UTF-8 (what jansson accepts): results are JSON, so a request
 * whose strings are not UTF-8 cannot be a valid one. */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (p && *p) {
        unsigned c = *p++;
        int n;
        unsigned cp;
        if (c < 0x80)
            continue;
        else if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (int k = 0; k < n; k++, p++) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (*p & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
    }
    return 1;
}

md_status md_spf_pool_submit(md_spf_pool *p, const md_spf_request *req, void *tag, md_error *err)
{
    /* Affinity: the same domain goes to the same worker when it has room,
     * so each worker's resolver cache holds its share of the domains
     * instead of every worker fetching every record. */
    const char *key = req->domain ? req->domain
                    : req->sender && strrchr(req->sender, '@') ? strrchr(req->sender, '@') + 1
                    : req->sender && *req->sender ? req->sender : req->helo ? req->helo : "";
    unsigned h = 2166136261u;
    for (const char *c = key; *c; c++)
        h = (h ^ (unsigned char)(*c | 0x20)) * 16777619u;
    unsigned best = h % p->n;
    if (p->w[best].n >= p->depth) {
        best = p->n;
        for (unsigned i = 0; i < p->n; i++)
            if (p->w[i].n < p->depth && (best == p->n || p->w[i].n < p->w[best].n))
                best = i;
    }
    if (best == p->n)
        return md_error_set(err, MD_TEMPFAIL, "spf.pool", "no idle worker");
    worker *w = &p->w[best];
    if (w->pid <= 0 && spawn(p, best) != 0)
        return md_error_set(err, MD_INTERNAL, "spf.pool", "cannot start an SPF worker: %s",
                            strerror(errno));
    job *j = qjob(w, w->n);
    const char *f[RQ_N] = { req->ip, req->sender, req->helo, req->domain, req->receiver, NULL };
    int valid = 1;
    for (int k = 0; k < RQ_N; k++)
        valid = valid && utf8_ok(f[k]);
    if (!valid) {   /* evaluated as an unusable request */
        memset(f, 0, sizeof f);
        f[RQ_IP] = "invalid";
    }
    for (int k = 0; k < RQ_N; k++)
        j->f[k] = f[k] ? md_xstrdup(f[k]) : NULL;
    j->tag = tag;
    j->identity_helo = valid && req->identity == MD_SPF_ID_HELO;
    j->no_libspf2 = valid && req->no_libspf2;
    j->libspf2_if_needed = req->libspf2_if_needed;
    j->deadline = req->deadline > 0 ? req->deadline : (double)p->deadline_ms / 1000.0 * 0.8;
    j->retried = 0;
    if (w->n++ == 0)
        w->started = md_now_ms();
    send_req(w, j);
    p->filling = 0;
    for (unsigned i = 0; i < p->n; i++)
        if (p->w[i].n < p->depth)
            p->filling = 1;
    return MD_OK;
}

static void pop_head(worker *w, md_spf_pool_result *out)
{
    job *j = qjob(w, 0);
    out->tag = j->tag;
    job_clear(j);
    w->head = (w->head + 1) % DEPTH_MAX;
    w->n--;
    w->started = md_now_ms();
}

/* Worker i died, overran (why), or sent garbage while running its head
 * job.  The head job runs again without libspf2 on a fresh worker (with the
 * crash note), unless it already did: then out gets its failed result and
 * 1 is returned.  The jobs behind it had not started: they are sent again. */
static int fail_worker(md_spf_pool *p, unsigned i, const char *why, md_spf_pool_result *out)
{
    worker *w = &p->w[i];
    int st = 0, ret = 0;
    char msg[200], m2[320];
    reap(w, 1, &st);
    w->in.len = 0;
    if (why)
        snprintf(msg, sizeof msg, "%s", why);
    else if (WIFSIGNALED(st))
        snprintf(msg, sizeof msg, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(msg, sizeof msg, "exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    job *h = qjob(w, 0);
    if (!h->retried && !h->no_libspf2) {
        snprintf(m2, sizeof m2, "the evaluation with libspf2 %s; evaluated again without it", msg);
        h->no_libspf2 = 1;
        free(h->f[RQ_CRASH]);
        h->f[RQ_CRASH] = md_xstrdup(m2);
        h->retried = 1;
    } else {
        snprintf(m2, sizeof m2, "the evaluation process %s", msg);
        failed_result(p, h, m2, out);
        pop_head(w, out);
        ret = 1;
    }
    if (w->n > 0) {
        if (spawn(p, i) == 0) {
            for (unsigned k = 0; k < w->n; k++)
                send_req(w, qjob(w, k));
        } else if (!ret) {
            /* no new worker: this job's result is the failure */
            failed_result(p, h, "cannot start an evaluation process", out);
            pop_head(w, out);
            ret = 1;
        }
    }
    w->started = md_now_ms();
    return ret;
}

/* Takes one frame from w's buffer.  Returns 1 when it filled out (for the
 * head job), 0 when more bytes are needed, -1 on a malformed frame. */
static int frame(md_spf_pool *p, worker *w, md_spf_pool_result *out)
{
    if (w->in.len == 0 || w->n == 0)
        return 0;
    char *nl = memchr(w->in.data, '\n', w->in.len < 64 ? w->in.len : 64);
    if (nl == NULL)
        return w->in.len >= 64 ? -1 : 0;
    /* "F STATUS LENGTH\n", read by hand: sscanf was a tenth of the
     * serial parent's time in a bulk run */
    const char *c = w->in.data;
    if (nl - c < 5 || c[0] != 'F' || c[1] != ' ' || c[2] < '0' || c[2] > '3' || c[3] != ' ')
        return -1;
    int status = c[2] - '0';
    size_t len = 0;
    for (c += 4; c < nl; c++) {
        if (*c < '0' || *c > '9' || len > FRAME_MAX)
            return -1;
        len = len * 10 + (size_t)(*c - '0');
    }
    if (len > FRAME_MAX)
        return -1;
    size_t hdr = (size_t)(nl + 1 - w->in.data);
    if (w->in.len < hdr + len)
        return 0;
    char *payload = w->in.data + hdr;
    if (p->output == MD_SPF_OUT_OBJECT) {
        out->report = md_report_new(p->tool, NULL);
        out->result = spf_result_decode(payload, len, out->report);
        if (out->result == NULL) {
            md_report_free(out->report);
            out->report = NULL;
            return -1;
        }
    } else {
        out->rendered = md_xstrndup(payload, len);
        out->len = len;
    }
    out->status = (md_severity)status;
    memmove(w->in.data, payload + len, w->in.len - hdr - len);
    w->in.len -= hdr + len;
    pop_head(w, out);
    return 1;
}

static int next_result(md_spf_pool *p, md_spf_pool_result *out);

int md_spf_pool_next(md_spf_pool *p, md_spf_pool_result *out)
{
    int got = next_result(p, out);
    for (unsigned i = 0; i < p->n; i++)
        if (p->w[i].n <= p->depth / 2)
            p->filling = 1;
    return got;
}

static int next_result(md_spf_pool *p, md_spf_pool_result *out)
{
    memset(out, 0, sizeof *out);
    /* frames already read */
    for (unsigned i = 0; i < p->n; i++) {
        int f = frame(p, &p->w[i], out);
        if (f > 0)
            return 1;
        if (f < 0 && fail_worker(p, i, "sent a malformed result", out))
            return 1;
    }
    struct pollfd *pf = md_xcalloc(p->n, sizeof *pf);
    int got = 0;
    for (;;) {
        for (unsigned i = 0; i < p->n; i++)
            flush_reqs(&p->w[i]);
        int64_t now = md_now_ms(), wait = -1;
        unsigned np = 0;
        for (unsigned i = 0; i < p->n; i++) {
            worker *w = &p->w[i];
            pf[i].fd = -1;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            if (w->n == 0)
                continue;
            np++;
            int64_t left = w->started + p->deadline_ms - now;
            if (left <= 0) {
                char why[120];
                snprintf(why, sizeof why, "did not finish within %.1f s: killed",
                         (double)p->deadline_ms / 1000.0);
                if (fail_worker(p, i, why, out)) {
                    got = 1;
                    goto done;
                }
                wait = 0;   /* sent again: poll it on the next round */
                continue;
            }
            if (wait < 0 || left < wait)
                wait = left;
            pf[i].fd = w->pid > 0 ? w->from : -1;
        }
        if (np == 0)
            goto done;
        int k = poll(pf, p->n, (int)wait);
        if (k < 0 && (errno != EINTR || (p->cancel != NULL && *p->cancel)))
            goto done;
        for (unsigned i = 0; i < p->n && k > 0; i++) {
            worker *w = &p->w[i];
            if (pf[i].fd < 0 || pf[i].revents == 0)
                continue;
            for (;;) {
                if (w->in.cap - w->in.len < 65536 && w->in.cap > FRAME_MAX * 2) {
                    if (fail_worker(p, i, "sent an oversized result", out)) {
                        got = 1;
                        goto done;
                    }
                    break;
                }
                char *room = md_buf_reserve(&w->in, 65536);
                ssize_t r = read(w->from, room, w->in.cap - w->in.len);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r <= 0) {            /* EOF: the worker died */
                    /* results it finished before dying still count */
                    if (frame(p, w, out) > 0 || fail_worker(p, i, NULL, out)) {
                        got = 1;
                        goto done;
                    }
                    break;
                }
                w->in.len += (size_t)r;
                int f = frame(p, w, out);
                if (f > 0 || (f < 0 && fail_worker(p, i, "sent a malformed result", out))) {
                    got = 1;
                    goto done;
                }
                if (f < 0)
                    break;
            }
        }
    }
done:
    free(pf);
    return got;
}
