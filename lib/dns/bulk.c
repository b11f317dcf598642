/* lib/dns bulk: bounded-concurrency checks over lazily read items. */
#include "config.h"
#include "bulk.h"

typedef struct bulk_state {
    const md_bulk_config *cfg;
    size_t active, started, finished;
    int stop;
} bulk_state;

static void on_done(void *arg, md_report *rep)
{
    bulk_state *b = arg;
    b->active--;
    b->finished++;
    if (!b->stop && b->cfg->output(b->cfg->output_arg, rep) != 0)
        b->stop = 1;
    md_report_free(rep);
}

md_status md_bulk_run(md_dns *dns, md_input *in, const md_bulk_config *cfg, md_error *err)
{
    bulk_state b = { cfg, 0, 0, 0, 0 };
    unsigned conc = cfg->concurrency ? cfg->concurrency : MD_BULK_CONCURRENCY_DEFAULT;
    int progress_ms = cfg->progress_ms > 0 ? cfg->progress_ms : 200;
    int64_t next_progress = md_now_ms() + progress_ms;
    int more = 1;

    while (!b.stop) {
        while (more && b.active < conc) {
            const char *item = md_input_next(in, err);
            if (item == NULL) {
                more = 0;
                break;
            }
            b.active++;
            b.started++;
            cfg->start(dns, item, cfg->check_arg, on_done, &b);
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
    if (b.stop) {
        /* Let the checks still running finish quietly, so nothing leaks. */
        while (b.active > 0)
            md_dns_step(dns, 100);
        return md_error_set(err, MD_INTERNAL, "output", "cannot write the results");
    }
    if (md_input_failed(in))
        return MD_CONFIG;
    return MD_OK;
}
