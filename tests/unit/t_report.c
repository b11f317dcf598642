/* Unit tests for lib/report: severity ranking, reports, JSON, plugin line. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "report/report.h"
#include "tap.h"

int main(void)
{
    static const struct { md_severity a, b, want; } worst[] = {
        { MD_SEV_OK, MD_SEV_OK, MD_SEV_OK },
        { MD_SEV_OK, MD_SEV_UNKNOWN, MD_SEV_UNKNOWN },
        { MD_SEV_UNKNOWN, MD_SEV_WARNING, MD_SEV_WARNING },
        { MD_SEV_WARNING, MD_SEV_UNKNOWN, MD_SEV_WARNING },
        { MD_SEV_CRITICAL, MD_SEV_UNKNOWN, MD_SEV_CRITICAL },
        { MD_SEV_WARNING, MD_SEV_CRITICAL, MD_SEV_CRITICAL },
    };
    for (size_t i = 0; i < sizeof worst / sizeof worst[0]; i++)
        is_int(md_severity_worst(worst[i].a, worst[i].b), worst[i].want, "worst(%s, %s)",
               md_severity_name(worst[i].a), md_severity_name(worst[i].b));
    is_int(md_severity_exit_code(MD_SEV_OK), 0, "exit ok");
    is_int(md_severity_exit_code(MD_SEV_WARNING), 1, "exit warning");
    is_int(md_severity_exit_code(MD_SEV_CRITICAL), 2, "exit critical");
    is_int(md_severity_exit_code(MD_SEV_UNKNOWN), 3, "exit unknown");
    is_int(md_severity_parse("Critical"), MD_SEV_CRITICAL, "parse Critical");
    is_int(md_severity_parse("bogus"), -1, "parse bogus");

    /* Every catalogue id is unique and has a title. */
    size_t n;
    const md_catalogue_entry *cat = md_catalogue_all(&n);
    int dup = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            dup += strcmp(cat[i].id, cat[j].id) == 0;
    is_int(dup, 0, "catalogue ids are unique (%zu ids)", n);

    md_report *rep = md_report_new("t", "example.test");
    is_int(md_report_status(rep), MD_SEV_OK, "empty report is ok");
    md_report_add(rep, "mx.implicit", MD_SEV_DEFAULT, "no MX");
    is_int(md_report_status(rep), MD_SEV_WARNING, "catalogue default severity used");
    md_report_add(rep, "dns.temporary", MD_SEV_DEFAULT, "servfail");
    is_int(md_report_status(rep), MD_SEV_WARNING, "warning outranks unknown");
    md_finding *f = md_report_add(rep, "no.such.id", MD_SEV_OK, "bug\nline");
    is_int(f->severity, MD_SEV_UNKNOWN, "unknown id recorded as unknown");
    is_str(f->summary, "bug?line", "control characters replaced in summaries");
    ok(md_report_has(rep, "mx.implicit") && !md_report_has(rep, "mx.none"), "md_report_has");
    /* The one sanitizer: C1 controls and ill-formed UTF-8 too, UTF-8 kept. */
    f = md_report_add(rep, "mx.implicit", MD_SEV_DEFAULT, "csi \xc2\x9b" "31m sur \xed\xa0\x80 b\xc3\xbc" "cher");
    is_str(f->summary, "csi ?31m sur ??? b\xc3\xbc" "cher", "C1 and ill-formed UTF-8 replaced, UTF-8 kept");
    md_finding_add_evidence(f, "esc \x1b]0;pwn\x07 del \x7f");
    is_str(f->evidence[0], "esc ?]0;pwn? del ?", "evidence sanitized");
    md_report *rs = md_report_new("t", "a\x1b[2J\xc2\x85\xe0\x80\x8d@b\xc3\xbc" "cher.test");
    is_str(md_report_subject(rs), "a?[2J????@b\xc3\xbc" "cher.test", "subject sanitized");
    md_report_free(rs);

    md_report_set(rep, "domain", json_string("example.test"));
    json_t *j = md_report_to_json(rep);
    is_int(json_integer_value(json_object_get(j, "schema_version")), 1, "schema_version");
    is_str(json_string_value(json_object_get(j, "status")), "warning", "json status");
    is_str(json_string_value(json_object_get(j, "domain")), "example.test", "json field set");
    is_int(json_array_size(json_object_get(j, "findings")), 4, "json findings");
    is_str(json_string_value(json_object_get(json_array_get(json_object_get(j, "findings"), 0), "id")),
           "mx.implicit", "json finding id");
    json_decref(j);

    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    md_report_write_json(rep, mem);
    fclose(mem);
    ok(len > 0 && buf[len - 1] == '\n' && strchr(buf, '\n') == buf + len - 1,
       "JSON output is exactly one line");
    free(buf);

    /* The streamed JSON is byte for byte what jansson makes of the same
     * report built as a tree by hand, including escapes, UTF-8 and invalid
     * bytes; md_report_to_json reads it back to that tree. */
    {
        md_report *r2 = md_report_new("t", "s");
        md_report_set(r2, "domain", json_string("b\xc3\xbc" "cher.test"));
        md_report_set(r2, "mx", json_pack("[{s:s,s:i,s:[s]}]", "host", "mx.test", "preference", 10,
                                          "addresses", "192.0.2.1"));
        md_report_set(r2, "flag", json_true());
        md_finding *f2 = md_report_add(r2, "mx.implicit", MD_SEV_DEFAULT,
                                       "quote \" back\\slash u\xc3\xbc");
        md_finding_add_evidence(f2, "bad \xff byte");
        md_finding_add_evidence(f2, "ev2");
        md_report_add(r2, "dns.temporary", MD_SEV_DEFAULT, "x");
        char *got = NULL;
        size_t gotlen = 0;
        FILE *gm = open_memstream(&got, &gotlen);
        md_report_write_json(r2, gm);
        fclose(gm);
        json_t *hand = json_pack("{s:i, s:s, s:[{s:s,s:i,s:[s]}], s:b, s:s, s:["
                                 "{s:s, s:s, s:s, s:[s, s]}, {s:s, s:s, s:s}]}",
                                 "schema_version", 1, "domain", "b\xc3\xbc" "cher.test",
                                 "mx", "host", "mx.test", "preference", 10, "addresses", "192.0.2.1",
                                 "flag", 1, "status", "warning", "findings",
                                 "id", "mx.implicit", "severity", "warning",
                                 "summary", "quote \" back\\slash u\xc3\xbc",
                                 "evidence", "bad ? byte", "ev2",
                                 "id", "dns.temporary", "severity", "unknown", "summary", "x");
        char *want = json_dumps(hand, JSON_COMPACT | JSON_PRESERVE_ORDER);
        size_t wl = strlen(want);
        ok(gotlen == wl + 1 && memcmp(got, want, wl) == 0 && got[wl] == '\n',
           "streamed JSON equals jansson's rendering");
        if (!(gotlen == wl + 1 && memcmp(got, want, wl) == 0))
            printf("#   got:  %s#   want: %s\n", got, want);
        json_t *jo = md_report_to_json(r2);
        ok(jo != NULL && json_equal(jo, hand), "md_report_to_json reads the line back");
        json_decref(jo);
        json_decref(hand);
        free(got);
        free(want);

        /* findings copied from another report keep ids, severities, text */
        md_report *r3 = md_report_new("t", "s");
        md_report_add(r3, "dmarc.ok", MD_SEV_OK, "first");
        md_report_add_findings(r3, r2);
        ok(md_report_count(r3) == 3 && strcmp(md_report_get(r3, 1)->id, "mx.implicit") == 0
           && md_report_get(r3, 1)->nevidence == 2 && md_report_status(r3) == MD_SEV_WARNING,
           "md_report_add_findings appends copies");
        md_report_set_subject(r3, "new\x1bsubject");
        is_str(md_report_subject(r3), "new?subject", "subject replaced, sanitized");
        ok(json_object_size(md_report_fields(r3)) == 0
           && json_is_object(md_report_fields(r2)) && json_object_size(md_report_fields(r2)) == 3,
           "md_report_fields: the fields set, in a borrowed object");
        md_report_free(r3);
        md_report_free(r2);
    }

    mem = open_memstream(&buf, &len);
    md_report_write_text(rep, mem, 0);
    fclose(mem);
    ok(strstr(buf, "example.test: WARNING\n") == buf, "text starts with subject and state");
    ok(strstr(buf, "mx.implicit: no MX") != NULL, "text names the finding id");
    free(buf);
    md_report_free(rep);
    md_report_free(NULL);

    mem = open_memstream(&buf, &len);
    md_plugin_write(mem, "MX", MD_SEV_CRITICAL, "a|b", "domains=2");
    fclose(mem);
    is_str(buf, "MX CRITICAL - a b | domains=2\n", "plugin line; '|' kept out of the text");
    free(buf);

    md_tally t;
    md_tally_init(&t);
    md_tally_add(&t, MD_SEV_OK);
    md_tally_add(&t, MD_SEV_UNKNOWN);
    md_tally_add(&t, MD_SEV_WARNING);
    is_int(t.worst, MD_SEV_WARNING, "tally worst");
    is_int(md_tally_total(&t), 3, "tally total");

    /* md_json_append writes what json_dumpb(JSON_COMPACT) writes */
    static const char *const docs[] = {
        "{}", "[]", "null", "[true,false,null]", "0", "-9223372036854775807",
        "[-9223372036854775808,9223372036854775807,-1,10]",
        "{\"a\":1,\"b\":[1,2,{\"c\":\"d\"}],\"e\":{}}",
        "\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"",
        "\"ctl \\u0001 \\u001f del \x7f utf8 \u00e9\u4e2d \\ud83d\\ude00\"",
        "\"c1 \\u0080 \\u009b nbsp \\u00a0 \\u00c2\"",
        "[1.5,0.1,1e300,-2.5e-300,3.0,100000000000000000000.0,1e-07]",
        "{\"z\":1,\"a\":2,\"m\":3}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        char raw[512] = "", want[1024];
        size_t wn = v ? json_dumpb(v, raw, sizeof raw - 1, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
        raw[wn] = '\0';
        /* jansson writes DEL and C1 raw; md_json_append escapes them */
        size_t o = 0;
        for (size_t k = 0; raw[k]; k++) {
            unsigned char c = (unsigned char)raw[k];
            if (c == 0x7f || (c == 0xc2 && (unsigned char)raw[k + 1] >= 0x80 &&
                              (unsigned char)raw[k + 1] <= 0x9f))
                o += (size_t)snprintf(want + o, sizeof want - o, "\\u%04X",
                                      c == 0x7f ? 0x7fu : (unsigned char)raw[++k]);
            else
                want[o++] = (char)c;
        }
        want[o] = '\0';
        md_buf b = { 0 };
        int rc = v != NULL ? md_json_append(&b, v) : -1;
        ok(rc == 0, "md_json_append %zu", i);
        md_buf_add(&b, "", 1);
        is_str(b.data, want, "md_json_append %zu as jansson", i);
        free(b.data);
        json_decref(v);
    }
    json_t *nul = json_stringn("a\0b", 3);
    md_buf nb = { 0 };
    md_json_append(&nb, nul);
    ok(nb.len == 10 && memcmp(nb.data, "\"a\\u0000b\"", 10) == 0, "NUL inside a string escaped");
    free(nb.data);
    json_decref(nul);
    return tap_done();
}
