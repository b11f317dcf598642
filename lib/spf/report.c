/*
 * lib/spf report: the typed result (md_spf_result) freed, made for the
 * cases without an evaluation, and described into an md_report: the
 * structured fields of the JSON contract (maildiag-spf(1), README.md) and
 * the human detail lines.  lib/report renders both; nothing here writes
 * JSON or text itself.
 */
#include "config.h"
#include "spf-int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *md_spf_via_name(md_spf_via v)
{
    switch (v) {
    case MD_SPF_VIA_INCLUDE: return "include";
    case MD_SPF_VIA_REDIRECT: return "redirect";
    default: return "top";
    }
}

const char *md_spf_by_name(md_spf_by by)
{
    switch (by) {
    case MD_SPF_BY_LIBSPF2: return "libspf2";
    case MD_SPF_BY_LINT: return "lint";
    default: return "walk";
    }
}

/* --- the result's life ---------------------------------------------------- */

void spf_node_free(md_spf_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nchildren; i++)
        spf_node_free(n->children[i]);
    free(n->children);
    free(n->domain);
    free(n->term);
    free(n->record);
    free(n->error);
    free(n->matched);
    free(n);
}

static void libspf2_clear(md_spf_libspf2 *l)
{
    free(l->why);
    free(l->crashed);
    free(l->result);
    free(l->reason);
    free(l->error);
    free(l->override);
    memset(l, 0, sizeof *l);
}

void md_spf_result_free(md_spf_result *r)
{
    if (r == NULL)
        return;
    free(r->domain);
    free(r->ip);
    free(r->sender);
    free(r->helo);
    free(r->explanation);
    free(r->mechanism);
    free(r->error);
    free(r->record);
    spf_node_free(r->tree);
    for (size_t i = 0; i < r->nqueries; i++) {
        free(r->queries[i].name);
        free(r->queries[i].detail);
    }
    free(r->queries);
    free(r->received_spf);
    free(r->authentication_results);
    libspf2_clear(&r->libspf2);
    free(r);
}

md_spf_result *md_spf_result_invalid(const char *domain)
{
    md_spf_result *r = md_xcalloc(1, sizeof *r);
    r->kind = MD_SPF_INVALID;
    r->domain = md_xstrdup(domain ? domain : "");
    r->result = MD_SPF_TEMPERROR;
    return r;
}

md_spf_result *spf_result_failed(const char *ip, const char *sender, const char *helo,
                                 const char *domain, const char *why, md_report *rep)
{
    md_spf_result *r = md_xcalloc(1, sizeof *r);
    if (domain == NULL) {   /* the domain the request would have checked */
        const char *at = sender && *sender ? strrchr(sender, '@') : NULL;
        domain = at ? at + 1 : sender && *sender ? sender : helo ? helo : "";
    }
    r->kind = MD_SPF_FAILED;
    r->domain = md_xstrdup(domain);
    r->ip = ip ? md_xstrdup(ip) : NULL;
    r->sender = sender ? md_xstrdup(sender) : NULL;
    r->helo = helo ? md_xstrdup(helo) : NULL;
    r->result = MD_SPF_TEMPERROR;
    r->error = md_xstrdup(why);
    md_finding *f = md_report_add(rep, "spf.engine_failed", MD_SEV_UNKNOWN, "%s",
                                  "the SPF evaluation did not finish: reported as temperror");
    md_finding_add_evidence(f, "%s", why);
    return r;
}

void spf_result_crashed(md_spf_result *r, md_report *rep, const char *how)
{
    libspf2_clear(&r->libspf2);
    r->libspf2.ran = 1;
    r->libspf2.crashed = md_xstrdup(how);
    md_finding *f = md_report_add(rep, "spf.libspf2_crashed", MD_SEV_OK, "%s",
                                  "libspf2 crashed or hung on this input (isolated); the RFC 7208"
                                  " result does not depend on it");
    if (*how)
        md_finding_add_evidence(f, "%s", how);
}

/* --- described into a report --------------------------------------------- */

/* Untrusted text (records, names, the sender) as a JSON string: control
 * characters and ill-formed bytes become '?', UTF-8 is kept (a sender's
 * local part may be UTF-8), a NUL byte ends it.  NULL is null. */
static json_t *jtext(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t len = strlen(s);
    char small[512];
    char *b = len < sizeof small ? small : md_xmalloc(len + 1);
    md_sanitize_text(b, len + 1, s, len, 0);
    json_t *j = json_string_nocheck(b);           /* sanitized: well-formed UTF-8 */
    if (b != small)
        free(b);
    return j;
}

/* One of our own ASCII literals. */
static json_t *jlit(const char *s)
{
    return json_string_nocheck(s);
}

/* Sets a member whose key is one of ours (a literal: no UTF-8 check). */
static void jset(json_t *o, const char *key, json_t *v)
{
    json_object_set_new_nocheck(o, key, v);
}

static const char *type_name(int t)
{
    switch (t) {
    case MD_DNS_A: return "A";
    case MD_DNS_AAAA: return "AAAA";
    case MD_DNS_MX: return "MX";
    case MD_DNS_TXT: return "TXT";
    case MD_DNS_PTR: return "PTR";
    default: return "?";
    }
}

static const char *node_note(const md_spf_node *n)
{
    switch (n->kind) {
    case MD_SPF_NODE_LOOP: return "a loop: not followed again";
    case MD_SPF_NODE_SEEN: return "linted above: its terms count again";
    case MD_SPF_NODE_MACRO: return "target uses macros: depends on the sender, not followed";
    default: return NULL;
    }
}

static json_t *node_json(const md_spf_node *n)
{
    json_t *o = json_object();
    if (n->kind == MD_SPF_NODE_MACRO) {
        jset(o, "term", jtext(n->term));
        jset(o, "note", jlit(node_note(n)));
        return o;
    }
    jset(o, "domain", jtext(n->domain));
    jset(o, "via", jlit(md_spf_via_name(n->via)));
    if (n->kind == MD_SPF_NODE_LOOP) {
        jset(o, "note", jlit(node_note(n)));
        return o;
    }
    if (n->kind == MD_SPF_NODE_SEEN) {
        jset(o, "lookups", json_integer(n->lookups));
        jset(o, "note", jlit(node_note(n)));
        return o;
    }
    jset(o, "record", jtext(n->record));
    jset(o, "lookups", json_integer(n->lookups));
    json_t *children = json_array();
    for (size_t i = 0; i < n->nchildren; i++)
        json_array_append_new(children, node_json(n->children[i]));
    jset(o, "children", children);
    if (n->error)
        jset(o, "error", jtext(n->error));
    if (n->matched)
        jset(o, "matched", jtext(n->matched));
    if (n->has_result)
        jset(o, "result", jlit(md_spf_code_name(n->result)));
    return o;
}

static json_t *queries_json(const md_spf_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->nqueries; i++) {
        const md_spf_query *q = &r->queries[i];
        json_t *o = json_object();
        jset(o, "name", jtext(q->name));
        jset(o, "type", jlit(type_name(q->type)));
        jset(o, "outcome", jlit(md_dns_outcome_name(q->outcome)));
        jset(o, "records", json_integer((json_int_t)q->records));
        jset(o, "by", jlit(md_spf_by_name(q->by)));
        if (q->detail)
            jset(o, "detail", jtext(q->detail));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *libspf2_json(const md_spf_libspf2 *l)
{
    json_t *o = json_object();
    jset(o, "ran", json_boolean(l->ran));
    if (!l->ran) {
        jset(o, "why", jtext(l->why));
    } else if (l->crashed) {
        jset(o, "crashed", jtext(l->crashed));
    } else {
        jset(o, "result", jtext(l->result));
        jset(o, "reason", jtext(l->reason));
        if (l->error)
            jset(o, "error", jtext(l->error));
        jset(o, "agrees", json_boolean(l->agrees));
        if (l->override)
            jset(o, "override", jtext(l->override));
    }
    return o;
}

/* How a node without a record reads: "(no SPF record)", unless its TXT
 * lookup failed, which says nothing about the record. */
static const char *no_record_text(const md_spf_result *r, const md_spf_node *n)
{
    for (size_t i = 0; n->domain && i < r->nqueries; i++)
        if (r->queries[i].type == MD_DNS_TXT && md_dns_outcome_is_temporary(r->queries[i].outcome)
            && strcasecmp(r->queries[i].name, n->domain) == 0)
            return "(SPF record unknown: the lookup failed)";
    return "(no SPF record)";
}

static void tree_lines(md_report *rep, const md_spf_result *r, const md_spf_node *n, int depth)
{
    if (n == NULL || depth > 40)
        return;
    const char *note = node_note(n);
    if (note) {   /* a term or an include lint did not follow, and why */
        int macro = n->kind == MD_SPF_NODE_MACRO;
        md_report_add_detail(rep, "%*s%s %s: %s", depth * 2, "",
                             macro ? "term" : md_spf_via_name(n->via),
                             macro ? (n->term ? n->term : "?") : n->domain, note);
        return;
    }
    md_report_add_detail(rep, "%*s%s %s (%s%s%s, %d lookups): %s", depth * 2, "",
                         md_spf_via_name(n->via), n->domain,
                         n->has_result ? "result " : "",
                         n->has_result ? md_spf_code_name(n->result) : "",
                         n->has_result ? "" : "lint", n->lookups,
                         n->record ? n->record : no_record_text(r, n));
    for (size_t i = 0; i < n->nchildren; i++)
        tree_lines(rep, r, n->children[i], depth + 1);
}

void md_spf_describe(const md_spf_result *r, md_report *rep, unsigned flags)
{
    const char *dom = r->domain ? r->domain : "?";
    int text = !(flags & MD_SPF_DESCRIBE_JSON_ONLY);   /* the subject and details are text only */
    if (text && r->ip) {
        char *subject = md_xasprintf("%s from %s", dom, r->ip);
        md_report_set_subject(rep, subject);
        free(subject);
    } else if (text) {
        md_report_set_subject(rep, dom);
    }
    md_report_set(rep, "domain", jtext(r->domain));
    switch (r->kind) {
    case MD_SPF_LINT:
        md_report_set(rep, "record", jtext(r->record));
        md_report_set(rep, "lookups", json_integer(r->lookups));
        md_report_set(rep, "void_lookups", json_integer(r->void_lookups));
        md_report_set(rep, "tree", r->tree ? node_json(r->tree) : json_null());
        if (!(flags & MD_SPF_DESCRIBE_NO_QUERIES))
            md_report_set(rep, "queries", queries_json(r));
        if (text)
            tree_lines(rep, r, r->tree, 0);
        return;
    case MD_SPF_INVALID:
        md_report_set(rep, "result", jlit(md_spf_code_name(r->result)));
        break;
    case MD_SPF_FAILED:   /* the request's own words, null where it had none */
        md_report_set(rep, "ip", jtext(r->ip));
        md_report_set(rep, "sender", jtext(r->sender));
        md_report_set(rep, "helo", jtext(r->helo));
        md_report_set(rep, "result", jlit(md_spf_code_name(r->result)));
        md_report_set(rep, "explanation", json_null());
        md_report_set(rep, "lookups", json_integer(r->lookups));
        md_report_set(rep, "void_lookups", json_integer(r->void_lookups));
        md_report_set(rep, "mechanism", json_null());
        md_report_set(rep, "error", jtext(r->error));
        md_report_set(rep, "tree", json_null());
        break;
    case MD_SPF_EVALUATION:
        md_report_set(rep, "ip", jtext(r->ip));
        md_report_set(rep, "sender", jtext(r->sender));
        md_report_set(rep, "helo", jtext(r->helo));
        md_report_set(rep, "identity", jlit(r->identity == MD_SPF_ID_HELO ? "helo" : "mailfrom"));
        md_report_set(rep, "result", jlit(md_spf_code_name(r->result)));
        md_report_set(rep, "explanation", jtext(r->explanation));
        if (r->explanation && r->explanation_source == MD_SPF_EXP_RECORD)
            md_report_set(rep, "explanation_source", jlit("exp"));
        md_report_set(rep, "lookups", json_integer(r->lookups));
        md_report_set(rep, "void_lookups", json_integer(r->void_lookups));
        md_report_set(rep, "mechanism", jtext(r->mechanism));
        md_report_set(rep, "error", jtext(r->error));
        md_report_set(rep, "tree", r->tree ? node_json(r->tree) : json_null());
        md_report_set(rep, "received_spf", jtext(r->received_spf));
        md_report_set(rep, "authentication_results", jtext(r->authentication_results));
        md_report_set(rep, "libspf2", libspf2_json(&r->libspf2));
        if (!(flags & MD_SPF_DESCRIBE_NO_QUERIES))
            md_report_set(rep, "queries", queries_json(r));
        break;
    }
    if (!text)
        return;
    md_report_add_detail(rep, "result: %s%s%s (%d DNS lookups, %d void)",
                         md_spf_code_name(r->result), r->mechanism ? ", matched " : "",
                         r->mechanism ? r->mechanism : "", r->lookups, r->void_lookups);
    if (r->explanation)
        md_report_add_detail(rep, "explanation: %s", r->explanation);
    if (r->received_spf)
        md_report_add_detail(rep, "%s", r->received_spf);
    tree_lines(rep, r, r->tree, 0);
}
