/*
 * lib/spf report: an evaluation or lint object as an md_report.
 */
#include "config.h"
#include "spf-int.h"

#include <string.h>

static void tree_lines(md_report *rep, json_t *node, int depth)
{
    if (!json_is_object(node) || depth > 40)
        return;
    const char *rec = json_string_value(json_object_get(node, "record"));
    const char *res = json_string_value(json_object_get(node, "result"));
    md_report_add_detail(rep, "%*s%s %s (%s%s%s, %lld lookups): %s", depth * 2, "",
                         json_string_value(json_object_get(node, "via")),
                         json_string_value(json_object_get(node, "domain")),
                         res ? "result " : "", res ? res : "",
                         res ? "" : "lint",
                         (long long)json_integer_value(json_object_get(node, "lookups")),
                         rec ? rec : "(no SPF record)");
    json_t *c = json_object_get(node, "children");
    size_t i;
    json_t *v;
    json_array_foreach(c, i, v)
        tree_lines(rep, v, depth + 1);
}

md_report *md_spf_report(const char *tool, json_t *obj)
{
    const char *dom = json_string_value(json_object_get(obj, "domain"));
    const char *ip = json_string_value(json_object_get(obj, "ip"));
    char *subject = ip ? md_xasprintf("%s from %s", dom ? dom : "?", ip) : md_xstrdup(dom ? dom : "?");
    md_report *rep = md_report_new(tool, subject);
    free(subject);
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "findings") == 0 || strcmp(key, "status") == 0
            || strcmp(key, "schema_version") == 0 || strcmp(key, "tool") == 0)
            continue;
        md_report_set(rep, key, json_incref(val));
    }
    const char *res = json_string_value(json_object_get(obj, "result"));
    if (res) {
        const char *mech = json_string_value(json_object_get(obj, "mechanism"));
        md_report_add_detail(rep, "result: %s%s%s (%lld DNS lookups, %lld void)", res,
                             mech ? ", matched " : "", mech ? mech : "",
                             (long long)json_integer_value(json_object_get(obj, "lookups")),
                             (long long)json_integer_value(json_object_get(obj, "void_lookups")));
        const char *exp = json_string_value(json_object_get(obj, "explanation"));
        if (exp)
            md_report_add_detail(rep, "explanation: %s", exp);
        const char *rs = json_string_value(json_object_get(obj, "received_spf"));
        if (rs)
            md_report_add_detail(rep, "%s", rs);
    }
    tree_lines(rep, json_object_get(obj, "tree"), 0);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(obj, "findings"), i, f) {
        int sev = md_severity_parse(json_string_value(json_object_get(f, "severity")) ?: "unknown");
        md_finding *fd = md_report_add(rep, json_string_value(json_object_get(f, "id")) ?: "spf.internal",
                                       sev < 0 ? MD_SEV_UNKNOWN : (md_severity)sev, "%s",
                                       json_string_value(json_object_get(f, "summary")) ?: "");
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(f, "evidence"), j, e)
            md_finding_add_evidence(fd, "%s", json_string_value(e) ?: "");
    }
    return rep;
}

json_t *spf_report_json(json_t *obj)
{
    /* The object md_report_to_json(md_spf_report(obj)) gives, built without
     * the detour (which cost a third of a bulk run): schema_version, the
     * fields, status, findings (evidence only when there is some). */
    json_t *o = json_object();
    json_object_set_new(o, "schema_version", json_integer(1));
    md_severity worst = MD_SEV_OK;
    json_t *arr = json_array();
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "findings") != 0 && strcmp(key, "status") != 0
            && strcmp(key, "schema_version") != 0 && strcmp(key, "tool") != 0)
            json_object_set(o, key, val);
    }
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(obj, "findings"), i, f) {
        const char *id = json_string_value(json_object_get(f, "id"));
        int sev = md_severity_parse(json_string_value(json_object_get(f, "severity")) ?: "unknown");
        md_severity s = sev < 0 ? MD_SEV_UNKNOWN : (md_severity)sev;
        json_t *jf = json_pack("{s:s, s:s, s:O}", "id", id && md_catalogue_find(id) ? id : "spf.internal",
                               "severity", md_severity_name(s), "summary",
                               json_object_get(f, "summary") ?: json_string(""));
        json_t *ev = json_object_get(f, "evidence");
        if (json_array_size(ev) > 0)
            json_object_set(jf, "evidence", ev);
        json_array_append_new(arr, jf);
        worst = md_severity_worst(worst, s);
    }
    json_object_set_new(o, "status", json_string(md_severity_name(worst)));
    json_object_set_new(o, "findings", arr);
    return o;
}
