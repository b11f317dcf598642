/* Unit tests for lib/base conf: syntax, sections, permission checks. */
#include "config.h"
#include "base/conf.h"
#include "tap.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *write_bytes(const char *name, const char *text, size_t len, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    return write_bytes(name, text, strlen(text), mode);
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
    is_int(md_conf_line(c, "store", "uri"), 10, "the line of the value that wins");
    is_int(md_conf_line(c, "product", "by_email"), 6, "the line of a continued value is its key's");
    is_int(md_conf_line(c, "", "global"), 2, "the line of a key before any section");
    is_int(md_conf_line(c, "store", "missing"), 0, "no line for a missing key");
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
    /* (a) A NUL byte hid an over-long line: "comment = a", a NUL, padding
     * to the old 8,191-byte buffer, then text that was read as a line of
     * its own and opened OTHER.db.  A NUL byte anywhere is an error with
     * its line, and so is an over-long line. */
    {
        static char nul[9000];
        size_t n = 0;
        n += (size_t)snprintf(nul + n, sizeof nul - n, "[store]\ncomment = a");
        nul[n++] = '\0';
        while (n < 8 + 8191)
            nul[n++] = 'x';
        n += (size_t)snprintf(nul + n, sizeof nul - n, "uri = sqlite:OTHER.db\n");
        p = write_bytes("nul.conf", nul, n, 0600);
        c = NULL;
        md_status st = md_conf_load(p, &c, &err);
        ok(st == MD_CONFIG && strstr(err.text, ":2:") && strstr(err.text, "NUL"),
           "a NUL byte is an error with its line (%s)", err.text);
        ok(c == NULL || md_conf_get(c, "store", "uri") == NULL, "nothing after the NUL is read as a line");
        md_conf_free(c);
        p = write_bytes("nul2.conf", "# fine\n; also fine\n[store]\nuri = x\n# a \0 in a comment\n", 42, 0600);
        ok(md_conf_load(p, &c, &err) == MD_CONFIG && strstr(err.text, ":5:") && strstr(err.text, "NUL"),
           "a NUL byte in a comment too (%s)", err.text);
        memset(nul, 'y', sizeof nul);
        memcpy(nul, "[store]\nuri = ", 14);
        nul[sizeof nul - 1] = '\n';
        p = write_bytes("long.conf", nul, sizeof nul, 0600);
        ok(md_conf_load(p, &c, &err) == MD_CONFIG && strstr(err.text, ":2:") && strstr(err.text, "long"),
           "an over-long line is an error with its line (%s)", err.text);
        char line[400];
        snprintf(line, sizeof line, "[store]\nuri = %0300d\n", 7);
        p = write_file("long2.conf", line, 0600);
        ok(md_conf_load(p, &c, &err) == MD_CONFIG && strstr(err.text, ":2:") && strstr(err.text, "long"),
           "a 306-character line is over the limit (%s)", err.text);
    }

    /* (b) Continuation never crosses a section header: an indented line
     * after [b] is a key of [b], not more of [a]'s value. */
    p = write_file("sect.conf", "[a]\nk = v\n    more of v\n[b]\n  x = y\n\tmore of y\nz = w\n", 0600);
    is_int(md_conf_load(p, &c, &err), MD_OK, "an indented key after a section (%s)", err.text);
    is_str(md_conf_get(c, "a", "k"), "v more of v", "[a] k keeps its own continuation only");
    is_str(md_conf_get(c, "b", "x"), "y more of y", "an indented key after [b] is in [b], and continues");
    is_str(md_conf_get(c, "b", "z"), "w", "a key in the first column");
    md_conf_free(c);
    c = NULL;

    /* An indented [section] line is a section line too: inih alone would
     * have read it as more of the value above (with the whole section
     * after it), and our handler as a second value for that key. */
    p = write_file("isect.conf", "[a]\nk = v\n  [b]\nx = y\n\t[ c ]\n  z = w\n", 0600);
    is_int(md_conf_load(p, &c, &err), MD_OK, "indented section lines (%s)", err.text);
    is_str(md_conf_get(c, "a", "k"), "v", "an indented [b] ends the value above");
    is_str(md_conf_get(c, "b", "x"), "y", "and starts [b]");
    is_str(md_conf_get(c, "c", "z"), "w", "an indented key after an indented [ c ]");
    ok(md_conf_get(c, "a", "x") == NULL, "x is not in [a]");
    md_conf_free(c);
    c = NULL;
    p = write_file("isect2.conf", "[a]\nk = v\n  []\n", 0600);
    ok(md_conf_load(p, &c, &err) == MD_CONFIG && strstr(err.text, ":3:") && strstr(err.text, "section"),
       "an indented empty section is refused (%s)", err.text);
    md_conf_free(c);
    c = NULL;

    /* (c) An empty section name is an error with its line. */
    static const struct { const char *text, *want; } sections[] = {
        { "a = 1\n[]\nk = v\n", ":2:" },
        { "a = 1\n\n[   ]\nk = v\n", ":3:" },
        { "[store]\nuri = x\n[a_section_name_that_is_far_longer_than_fifty_characters_in_all]\n", ":3:" },
        { "[store]\nuri = x\n[unclosed\n", ":3:" },
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        p = write_file("bad.conf", sections[i].text, 0600);
        c = NULL;
        md_status st = md_conf_load(p, &c, &err);
        ok(st == MD_CONFIG && strstr(err.text, sections[i].want) && strstr(err.text, "section"),
           "section %zu refused at %s (%s)", i, sections[i].want, err.text);
        md_conf_free(c);
    }

    /* Comments as users write them: whole lines with '#' or ';', and after
     * a value (the README's "tls = required ; required, opportunistic or off"). */
    p = write_file("readme.conf",
                   "# maildiag\n; another comment\n[mail]\nfrom = noreply@example.com\n"
                   "server = smtp.example.com:587        ; a relay; without it, the recipient's MX hosts\n"
                   "tls = required                       ; required, opportunistic or off\n"
                   "user = maildiag                      # AUTH, with password_file = FILE\n"
                   "[token]\nreset_url = https://app.example.com/reset?token=#frag;x\n"
                   "[product]\nby_email = SELECT id\n    FROM users ; the table\n"
                   "  # a comment line inside a continued value\n    WHERE email = $1\n"
                   "[ spaced ]\nk = v\n", 0600);
    is_int(md_conf_load(p, &c, &err), MD_OK, "the README's configuration loads (%s)", err.text);
    is_str(md_conf_get(c, "mail", "tls"), "required", "an inline ';' comment is dropped");
    is_str(md_conf_get(c, "mail", "server"), "smtp.example.com:587", "also with ';' inside it");
    is_str(md_conf_get(c, "mail", "user"), "maildiag", "an inline '#' comment is dropped");
    is_str(md_conf_get(c, "token", "reset_url"), "https://app.example.com/reset?token=#frag;x",
           "'#' and ';' without a blank before them are text");
    is_str(md_conf_get(c, "product", "by_email"), "SELECT id FROM users WHERE email = $1",
           "continuation lines, with their comments dropped");
    is_str(md_conf_get(c, "spaced", "k"), "v", "blanks around a section name");
    ok(md_conf_get(c, "mail", "nonesuch") == NULL && md_conf_get(c, "nosection", "k") == NULL,
       "unknown keys and sections are simply absent");
    md_conf_free(c);
    c = NULL;

    /* A continued value is trimmed as a first line is (inih: isspace). */
    p = write_file("vt.conf", "[s]\nk = a\v\n  b\v ; c\n\tc\f\n", 0600);
    is_int(md_conf_load(p, &c, &err), MD_OK, "white space other than blanks (%s)", err.text);
    is_str(md_conf_get(c, "s", "k"), "a b c", "trimmed on continuation lines too");
    md_conf_free(c);
    c = NULL;

    p = write_file("crlf.conf", "\xef\xbb\xbf[store]\r\nuri = sqlite:/tmp/z.db\r\nname: colon\r\n"
                   "empty =\r\n  continued\r\n", 0600);
    is_int(md_conf_load(p, &c, &err), MD_OK, "CRLF and a byte-order mark (%s)", err.text);
    is_str(md_conf_get(c, "store", "uri"), "sqlite:/tmp/z.db", "CRLF: value without CR");
    is_str(md_conf_get(c, "store", "name"), "colon", "key: value");
    is_str(md_conf_get(c, "store", "empty"), "continued", "an empty value continued");
    md_conf_free(c);
    c = NULL;

    /* A CR only ends a line before the LF: old Mac line ends (CR alone)
     * made one line of the file, and the first value held all the rest. */
    static const struct { const char *text, *want; } crs[] = {
        { "[store]\ruri = a\rpassword = x\r", ":1:" },
        { "[store]\nuri = a\rb\n", ":2:" },
        { "[store]\nuri = a\r\r\n", ":2:" },
        { "[store]\nuri = a\n  b\rc\n", ":3:" },
    };
    for (size_t i = 0; i < sizeof crs / sizeof crs[0]; i++) {
        p = write_file("cr.conf", crs[i].text, 0600);
        c = NULL;
        md_status st = md_conf_load(p, &c, &err);
        ok(st == MD_CONFIG && strstr(err.text, crs[i].want) && strstr(err.text, "carriage return"),
           "a CR inside a line is refused at %s (%s)", crs[i].want, err.text);
        md_conf_free(c);
    }

    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.conf", dir);
    is_int(md_conf_load(missing, &c, &err), MD_NOTFOUND, "missing file");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# cannot remove %s\n", dir);
    return tap_done();
}
