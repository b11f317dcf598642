/* Unit tests for lib/base conf: syntax, sections, permission checks. */
#include "config.h"
#include "base/conf.h"
#include "tap.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

int main(void)
{
    md_conf *c = NULL;
    md_error err = { 0 };
    snprintf(dir, sizeof dir, "/tmp/md-t-conf-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;

    const char *p = write_file("ok.conf",
                               "# maildiag\nglobal = 1\n[store]\nuri = sqlite:/tmp/x.db \n"
                               "[product]\nby_email = SELECT username, email\n"
                               "   FROM users WHERE email = $1\n; comment\n[Store]\nuri = sqlite:/tmp/y.db\n",
                               0644);
    is_int(md_conf_load(p, &c, &err), MD_OK, "load (%s)", err.text);
    is_str(md_conf_get(c, "", "global"), "1", "key before any section");
    is_str(md_conf_get(c, "store", "uri"), "sqlite:/tmp/y.db", "the last value wins, sections case-insensitive");
    is_str(md_conf_get(c, "product", "by_email"), "SELECT username, email FROM users WHERE email = $1",
           "continuation lines");
    ok(md_conf_get(c, "store", "missing") == NULL, "missing key");
    md_conf_free(c);

    static const struct { const char *text; mode_t mode; const char *want; } bad[] = {
        { "[store]\nuri = x\n", 0664, "others can change" },
        { "[store]\nuri = x\n", 0646, "others can change" },
        { "[smtp]\npassword = hunter2\n", 0644, "everyone can read" },
        { "[store]\nuri = postgresql://u:secret@db/x\n", 0604, "everyone can read" },
        { "[store\n", 0600, ":1:" },
        { "[store]\njust words\n", 0600, ":2:" },
        { "= value\n", 0600, ":1:" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_file("bad.conf", bad[i].text, bad[i].mode);
        md_status st = md_conf_load(p, &c, &err);
        ok(st == MD_CONFIG && strstr(err.text, bad[i].want) != NULL, "refused: %s (%s)", bad[i].want,
           err.text);
        md_conf_free(c);
        c = NULL;
    }
    p = write_file("secret.conf", "[smtp]\npassword = hunter2\n", 0640);
    is_int(md_conf_load(p, &c, &err), MD_OK, "secrets readable by the group only are accepted");
    md_conf_free(c);
    p = write_file("pgok.conf", "[store]\nuri = postgresql://u@db/x\n", 0644);
    is_int(md_conf_load(p, &c, &err), MD_OK, "a URI without a password may be world-readable");
    md_conf_free(c);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.conf", dir);
    is_int(md_conf_load(missing, &c, &err), MD_NOTFOUND, "missing file");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", dir);
    return tap_done();
}
