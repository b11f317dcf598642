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
    const char *note = json_string_value(json_object_get(node, "note"));
    const char *dom = json_string_value(json_object_get(node, "domain"));
    if (note) {   /* a term or an include lint did not follow, and why */
        const char *via = json_string_value(json_object_get(node, "via"));
        const char *what = dom ? dom : json_string_value(json_object_get(node, "term"));
        md_report_add_detail(rep, "%*s%s %s: %s", depth * 2, "", via ? via : "term",
                             what ? what : "?", note);
        return;
    }
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
    md_report_add_findings_json(rep, json_object_get(obj, "findings"), "spf.internal");
    return rep;
}

md_severity spf_report_json_append(md_buf *b, json_t *obj)
{
    /* The line md_report_write_json(md_spf_report(tool, obj)) writes, built
     * without the detour through a report and a second JSON tree (which
     * cost a third of a bulk run): schema_version, the fields, status,
     * findings (evidence only when there is some). */
    MD_BUF_LIT(b, "{\"schema_version\":1");
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        if (strcmp(key, "findings") == 0 || strcmp(key, "status") == 0
            || strcmp(key, "schema_version") == 0 || strcmp(key, "tool") == 0)
            continue;
        MD_BUF_LIT(b, ",");
        md_json_append_string(b, key, strlen(key));
        MD_BUF_LIT(b, ":");
        if (md_json_append(b, val) != 0)
            MD_BUF_LIT(b, "null");
    }
    md_severity worst = MD_SEV_OK;
    md_buf f = { 0 };
    size_t i;
    json_t *fd;
    json_array_foreach(json_object_get(obj, "findings"), i, fd) {
        const char *id = json_string_value(json_object_get(fd, "id"));
        const char *sum = json_string_value(json_object_get(fd, "summary"));
        int sev = md_severity_parse(json_string_value(json_object_get(fd, "severity")) ?: "unknown");
        md_severity s = sev < 0 ? MD_SEV_UNKNOWN : (md_severity)sev;
        id = id && md_catalogue_find(id) ? id : "spf.internal";
        sum = sum ? sum : "";
        if (i > 0)
            MD_BUF_LIT(&f, ",");
        MD_BUF_LIT(&f, "{\"id\":");
        md_json_append_string(&f, id, strlen(id));
        MD_BUF_LIT(&f, ",\"severity\":\"");
        md_buf_add(&f, md_severity_name(s), strlen(md_severity_name(s)));
        MD_BUF_LIT(&f, "\",\"summary\":");
        md_json_append_string(&f, sum, strlen(sum));
        json_t *ev = json_object_get(fd, "evidence");
        if (json_array_size(ev) > 0) {
            MD_BUF_LIT(&f, ",\"evidence\":");
            if (md_json_append(&f, ev) != 0)
                MD_BUF_LIT(&f, "[]");
        }
        MD_BUF_LIT(&f, "}");
        worst = md_severity_worst(worst, s);
    }
    MD_BUF_LIT(b, ",\"status\":\"");
    md_buf_add(b, md_severity_name(worst), strlen(md_severity_name(worst)));
    MD_BUF_LIT(b, "\",\"findings\":[");
    if (f.len)
        md_buf_add(b, f.data, f.len);
    MD_BUF_LIT(b, "]}\n");
    free(f.data);
    return worst;
}
