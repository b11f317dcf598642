/*
 * libFuzzer target: the whole SPF evaluation walk (RFC 7208 check_host(),
 * lib/spf eval.c) and the lint, over an answer table in memory built from
 * the input (tests/support/answer_table.h), libspf2 left out.  The input's
 * first line is the request, "IP SENDER [HELO [helo]]" (SENDER <> is the
 * null reverse-path; a fourth word "helo" checks the HELO identity); every
 * further line is one answer, "NAME TYPE DATA", where DATA may be an
 * outcome (servfail, timeout, nxdomain ...).
 *
 * What is checked: no crash, no leak; the walk ends within the RFC 7208
 * 4.6.4 limits (at most 11 DNS-querying terms, 3 void lookups, a bounded
 * number of questions and tree nodes); the result is one of the seven; every
 * finding has a catalogue id; the described result renders as valid JSON;
 * and the typed result survives the worker pool's encoding unchanged.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf-int.h"
#include "answer_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Questions a walk may ask: 11 records (the top and 10 include/redirect),
 * each of 10 DNS terms with up to 1 + 10 questions (mx, ptr), the %{p}
 * names, an explanation; far fewer for lint. */
#define WALK_QUESTIONS_MAX 200
#define LINT_QUESTIONS_MAX 100
#define NODES_MAX 64

static size_t nodes(const md_spf_node *n, int depth)
{
    if (n == NULL)
        return 0;
    if (depth > 40)
        abort();   /* deeper than MAX_DEPTH nesting */
    size_t c = 1;
    for (size_t i = 0; i < n->nchildren; i++)
        c += nodes(n->children[i], depth + 1);
    return c;
}

/* The findings are catalogued, the result described renders as JSON that
 * reads back, and it is the same after the pool's encoding. */
static void check(const md_spf_result *r, const md_report *rep)
{
    for (size_t i = 0; i < md_report_count(rep); i++)
        if (md_catalogue_find(md_report_get(rep, i)->id) == NULL)
            abort();
    if ((unsigned)r->result > MD_SPF_PERMERROR || nodes(r->tree, 0) > NODES_MAX)
        abort();
    md_buf enc = { 0 };
    spf_result_encode(&enc, r, rep);
    md_report *rep2 = md_report_new("fuzz", NULL);
    md_spf_result *r2 = spf_result_decode(enc.data, enc.len, rep2);
    if (r2 == NULL)
        abort();
    char *out[2];
    for (int k = 0; k < 2; k++) {
        md_report *d = md_report_new("fuzz", NULL);
        md_report_add_findings(d, k ? rep2 : rep);
        md_spf_describe(k ? r2 : r, d, 0);
        md_buf b = { 0 };
        if (md_report_append_json(d, &b) != 0)
            abort();
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        if (j == NULL)
            abort();   /* the one renderer wrote something that is not JSON */
        json_decref(j);
        md_buf_add(&b, "", 1);
        out[k] = b.data;
        md_report_free(d);
    }
    if (strcmp(out[0], out[1]) != 0)
        abort();
    if (r->kind == MD_SPF_EVALUATION) {   /* the bulk workers' direct JSON: the same bytes */
        md_buf direct = { 0 };
        if (spf_result_append_json(&direct, r, rep, 0) != 0)
            abort();
        md_buf_add(&direct, "", 1);
        if (strcmp(direct.data, out[0]) != 0)
            abort();
        md_buf_free(&direct);
    }
    free(out[0]);
    free(out[1]);
    free(enc.data);
    md_spf_result_free(r2);
    md_report_free(rep2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t first = nl ? (size_t)(nl - text) : size;
    char *req = malloc(first + 1);
    if (req == NULL)
        return 0;
    memcpy(req, text, first);
    req[first] = '\0';
    char *save = NULL;
    char *ip = strtok_r(req, " ", &save), *sender = strtok_r(NULL, " ", &save);
    char *helo = strtok_r(NULL, " ", &save), *ident = strtok_r(NULL, " ", &save);
    answer_table *t = answer_table_parse(nl ? nl + 1 : text + size, nl ? size - first - 1 : 0);
    spf_source src = { answer_table_resolve, t };

    md_spf_request rq = { .ip = ip ? ip : "192.0.2.10",
                          .sender = sender && strcmp(sender, "<>") != 0 ? sender : "",
                          .helo = helo, .no_libspf2 = 1, .libspf2_if_needed = 1, .deadline = 30,
                          .identity = ident && strcmp(ident, "helo") == 0 ? MD_SPF_ID_HELO
                                                                         : MD_SPF_ID_MAILFROM };
    md_report *rep = md_report_new("fuzz", NULL);
    md_spf_result *r = NULL;
    md_error err = { 0 };
    md_status st = spf_evaluate(&src, &rq, 0, &r, rep, &err);
    if (st == MD_OK) {
        if (r == NULL || r->kind != MD_SPF_EVALUATION || r->lookups > MD_SPF_MAX_TERMS + 1
            || r->void_lookups > MD_SPF_MAX_VOID + 1
            || answer_table_asked(t) > WALK_QUESTIONS_MAX || md_report_count(rep) == 0)
            abort();
        check(r, rep);
    } else if (st != MD_CONFIG || r != NULL || md_report_count(rep) != 0) {
        abort();   /* only an unusable IP is refused, and then nothing is reported */
    }
    md_spf_result_free(r);
    md_report_free(rep);

    /* the lint of the domain the evaluation checked */
    const char *dom = rq.sender[0] ? strrchr(rq.sender, '@') : NULL;
    dom = dom ? dom + 1 : rq.sender[0] ? rq.sender : helo ? helo : "example.com";
    size_t asked = answer_table_asked(t);
    rep = md_report_new("fuzz", NULL);
    r = NULL;
    if (spf_lint(&src, dom, &r, rep, &err) == MD_OK) {
        if (r == NULL || r->kind != MD_SPF_LINT || r->lookups > MD_SPF_MAX_TERMS + 1
            || r->void_lookups > MD_SPF_MAX_VOID + 1
            || answer_table_asked(t) - asked > LINT_QUESTIONS_MAX || md_report_count(rep) == 0)
            abort();
        check(r, rep);
    } else if (r != NULL) {
        abort();
    }
    md_spf_result_free(r);
    md_report_free(rep);
    answer_table_free(t);
    free(req);
    return 0;
}
