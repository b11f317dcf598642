/* lib/dns bulk: bounded-concurrency checks over lazily read items. */
#include "config.h"
#include "bulk.h"

#include <stdlib.h>
#include <string.h>

typedef struct bulk_state {
    const md_bulk_config *cfg;
    size_t active, started, finished, output;
    int stop;                 /* the output failed */
    int cancelled;            /* *cfg->cancel was seen */
    /* ordered mode: finished reports by input position, and the next to print */
    md_report **held;
    size_t nheld, next_out;
} bulk_state;

typedef struct item {
    bulk_state *b;
    size_t seq;
} item;

static void emit(bulk_state *b, md_report *rep)
{
    if (!b->stop && !b->cancelled) {
        if (b->cfg->output(b->cfg->output_arg, rep) != 0)
            b->stop = 1;
        else
            b->output++;
    }
    md_report_free(rep);
}

static void on_done(void *arg, md_report *rep)
{
    item *it = arg;
    bulk_state *b = it->b;
    size_t seq = it->seq;
    free(it);
    b->active--;
    b->finished++;
    if (!b->cfg->ordered) {
        emit(b, rep);
        return;
    }
    if (seq >= b->nheld) {
        size_t n = seq + 16;
        b->held = md_xrealloc(b->held, n * sizeof *b->held);
        memset(b->held + b->nheld, 0, (n - b->nheld) * sizeof *b->held);
        b->nheld = n;
    }
    b->held[seq] = rep;
    while (b->next_out < b->nheld && b->held[b->next_out]) {
        emit(b, b->held[b->next_out]);
        b->held[b->next_out++] = NULL;
    }
}

static int cancel_seen(bulk_state *b)
{
    return b->cfg->cancel != NULL && *b->cfg->cancel != 0;
}

static void drop_held(bulk_state *b)
{
    for (size_t i = 0; i < b->nheld; i++)
        md_report_free(b->held[i]);
    free(b->held);
}

md_status md_bulk_run(md_dns *dns, md_input *in, const md_bulk_config *cfg,
                      md_bulk_stats *stats, md_error *err)
{
    bulk_state b = { .cfg = cfg };
    unsigned conc = cfg->concurrency ? cfg->concurrency : MD_BULK_CONCURRENCY_MAX;
    int progress_ms = cfg->progress_ms > 0 ? cfg->progress_ms : 200;
    int64_t next_progress = md_now_ms() + progress_ms;
    int more = 1;

    while (!b.stop && !(b.cancelled = cancel_seen(&b))) {
        /* One check at least: dns may be shared with other work that
         * fills the window. */
        while (more && b.active < conc && (b.active == 0 || md_dns_room(dns) > 0)) {
            const char *line = md_input_next(in, err);
            if (line == NULL) {
                more = 0;
                break;
            }
            item *it = md_xmalloc(sizeof *it);
            it->b = &b;
            it->seq = b.started;
            b.active++;
            b.started++;
            cfg->start(dns, line, cfg->check_arg, on_done, it);
        }
        if (!more && b.active == 0)
            break;
        md_dns_step(dns, 100);
        if (cfg->progress) {
            int64_t now = md_now_ms();
            if (now >= next_progress) {
                cfg->progress(cfg->progress_arg, b.started, b.finished);
                next_progress = now + progress_ms;
            }
        }
    }
    if (cfg->progress)
        cfg->progress(cfg->progress_arg, b.started, b.finished);
    if (b.cancelled) {
        /* The checks still running end at once with cancelled queries;
         * their reports are dropped by emit(). */
        md_dns_cancel(dns);
        while (b.active > 0 && md_dns_step(dns, 0) > 0)
            ;
    } else if (b.stop) {
        /* Let the checks still running finish quietly, so nothing leaks. */
        while (b.active > 0)
            md_dns_step(dns, 100);
    }
    drop_held(&b);
    if (stats) {
        stats->started = b.started;
        stats->output = b.output;
    }
    if (b.cancelled)
        return md_error_set(err, MD_TEMPFAIL, "interrupted", "interrupted after %zu results",
                            b.output);
    if (b.stop)
        return md_error_set(err, MD_INTERNAL, "output", "cannot write the results");
    if (md_input_failed(in))
        return MD_CONFIG;
    return MD_OK;
}
