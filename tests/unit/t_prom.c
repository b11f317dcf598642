/* lib/report prom: the exposition text, name checks, escaping, atomic files. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/prom.h"
#include "tap.h"

static char *render(const md_prom *p)
{
    md_buf out = { 0 };
    md_prom_render(p, &out);
    return md_buf_steal(&out, NULL);
}

static void test_render(void)
{
    md_error err;
    md_prom *p = md_prom_new();
    is_int(md_prom_family(p, "maildiag_health_status", MD_PROM_GAUGE,
                          "Worst status: 0 ok, 1 warning, 2 critical, 3 unknown.", &err), MD_OK,
           "declare a gauge");
    is_int(md_prom_family(p, "maildiag_check_status", MD_PROM_GAUGE, "Status of one check.", &err),
           MD_OK, "declare a second gauge");
    is_int(md_prom_family(p, "maildiag_unused", MD_PROM_COUNTER, "never sampled", &err), MD_OK,
           "declare a family without samples");
    /* samples added out of family order come out grouped */
    const char *spf[] = { "check", "spf", NULL };
    const char *dkim[] = { "check", "dkim", NULL };
    is_int(md_prom_sample(p, "maildiag_check_status", spf, 0, &err), MD_OK, "sample spf");
    is_int(md_prom_sample(p, "maildiag_health_status", NULL, 2, &err), MD_OK, "sample health");
    is_int(md_prom_sample(p, "maildiag_check_status", dkim, 2, &err), MD_OK, "sample dkim");
    char *t = render(p);
    is_str(t,
           "# HELP maildiag_health_status Worst status: 0 ok, 1 warning, 2 critical, 3 unknown.\n"
           "# TYPE maildiag_health_status gauge\n"
           "maildiag_health_status 2\n"
           "# HELP maildiag_check_status Status of one check.\n"
           "# TYPE maildiag_check_status gauge\n"
           "maildiag_check_status{check=\"spf\"} 0\n"
           "maildiag_check_status{check=\"dkim\"} 2\n",
           "families grouped in declaration order; unsampled families left out");
    free(t);
    md_prom_free(p);
}

static void test_values_and_escaping(void)
{
    md_error err;
    md_prom *p = md_prom_new();
    md_prom_family(p, "v", MD_PROM_GAUGE, "back\\slash and\nnewline", &err);
    const char *l1[] = { "a", "1", NULL };
    const char *l2[] = { "a", "2", NULL };
    const char *l3[] = { "a", "3", NULL };
    const char *l4[] = { "a", "4", NULL };
    const char *hostile[] = { "zone", "bl\"x\\y\nz\x1b[31m", NULL };
    md_prom_sample(p, "v", l1, 0.012, &err);
    md_prom_sample(p, "v", l2, NAN, &err);
    md_prom_sample(p, "v", l3, INFINITY, &err);
    md_prom_sample(p, "v", l4, 1.7e9, &err);
    is_int(md_prom_sample(p, "v", hostile, -1, &err), MD_OK, "a hostile label value is accepted");
    char *t = render(p);
    ok(strstr(t, "# HELP v back\\\\slash and?newline\n") != NULL,
       "HELP is one line, backslash escaped: %s", t);
    ok(strstr(t, "v{a=\"1\"} 0.012\n") != NULL, "a fraction");
    ok(strstr(t, "v{a=\"2\"} NaN\n") != NULL, "NaN");
    ok(strstr(t, "v{a=\"3\"} +Inf\n") != NULL, "+Inf");
    ok(strstr(t, "v{a=\"4\"} 1700000000\n") != NULL, "a large integer in full");
    ok(strstr(t, "v{zone=\"bl\\\"x\\\\y?z?[31m\"} -1\n") != NULL,
       "quote and backslash escaped, controls sanitized: %s", t);
    for (const char *c = t; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\n') {
            ok(0, "no control byte in the output (found 0x%02x)", (unsigned char)*c);
            break;
        }
    free(t);
    md_prom_free(p);
}

static void test_refusals(void)
{
    md_error err;
    md_prom *p = md_prom_new();
    static const struct { const char *name; int good; } names[] = {
        { "maildiag_ok", 1 }, { "a:b_c9", 1 }, { "_x", 1 }, { "9lives", 0 },
        { "bad-name", 0 }, { "", 0 }, { "sp ace", 0 }, { "uni\xc3\xa9", 0 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        is_int(md_prom_family(p, names[i].name, MD_PROM_GAUGE, "h", &err) == MD_OK,
               names[i].good, "metric name '%s'", names[i].name);
    is_int(md_prom_family(p, "maildiag_ok", MD_PROM_GAUGE, "h", &err), MD_CONFIG,
           "a family declared twice");
    is_int(md_prom_sample(p, "undeclared", NULL, 1, &err), MD_CONFIG, "an undeclared family");
    const char *badlabel[] = { "with-dash", "x", NULL };
    is_int(md_prom_sample(p, "maildiag_ok", badlabel, 1, &err), MD_CONFIG, "a bad label name");
    const char *reserved[] = { "__name__", "x", NULL };
    is_int(md_prom_sample(p, "maildiag_ok", reserved, 1, &err), MD_CONFIG, "a reserved label name");
    const char *twice[] = { "a", "1", "a", "2", NULL };
    is_int(md_prom_sample(p, "maildiag_ok", twice, 1, &err), MD_CONFIG, "a label twice");
    const char *one[] = { "a", "1", NULL };
    is_int(md_prom_sample(p, "maildiag_ok", one, 1, &err), MD_OK, "a labelled sample");
    is_int(md_prom_sample(p, "maildiag_ok", one, 2, &err), MD_CONFIG, "the same labels twice");
    md_prom_free(p);
}

static void test_file(void)
{
    md_error err;
    char dir[] = "/tmp/md-prom-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return;
    }
    char path[128], other[160];
    snprintf(path, sizeof path, "%s/maildiag.prom", dir);
    md_prom *p = md_prom_new();
    md_prom_family(p, "maildiag_last_run_timestamp_seconds", MD_PROM_GAUGE, "End of the last run.",
                   &err);
    md_prom_sample(p, "maildiag_last_run_timestamp_seconds", NULL, 1764590400, &err);
    mode_t old = umask(077);
    is_int(md_prom_write_file(p, path, &err), MD_OK, "write the textfile");
    umask(old);
    struct stat st;
    is_int(stat(path, &st), 0, "the file is there");
    is_int(st.st_mode & 0777, 0644, "readable by the collector whatever the umask");
    FILE *f = fopen(path, "r");
    char buf[512] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    ok(strstr(buf, "maildiag_last_run_timestamp_seconds 1764590400\n") != NULL, "content: %s", buf);
    /* no temporary file is left behind */
    snprintf(other, sizeof other, "%s.tmp.%ld", path, (long)getpid());
    ok(access(other, F_OK) != 0, "no temporary file left");
    /* a directory that does not exist: an error, nothing written */
    snprintf(other, sizeof other, "%s/missing/maildiag.prom", dir);
    is_int(md_prom_write_file(p, other, &err), MD_INTERNAL, "a missing directory is an error");
    ok(strstr(err.text, "missing") != NULL, "the error names the file: %s", err.text);
    unlink(path);
    rmdir(dir);
    md_prom_free(p);
}

int main(void)
{
    test_render();
    test_values_and_escaping();
    test_refusals();
    test_file();
    return tap_done();
}
