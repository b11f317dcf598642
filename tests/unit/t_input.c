/* Unit tests for lib/base input: arguments, files, comments, long lines. */
#include "config.h"
#include <stdlib.h>
#include <unistd.h>
#include "base/input.h"
#include "tap.h"

int main(void)
{
    char path[] = "/tmp/md-input-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("# a comment\n\n  one.test  \ntwo.test # trailing comment\r\n\t\n", f);
    fputs("192.0.2.1 a#b@example.test\t# an address holds '#'\n", f);
    for (int i = 0; i < 5000; i++)
        fputc('x', f);
    fputs("\nlast.test", f);   /* no final newline */
    fclose(f);

    char *args[] = { "arg.test", "" };
    char *files[] = { path };
    md_input *in = md_input_new(args, 2, files, 1);
    md_error err;
    is_str(md_input_next(in, &err), "arg.test", "argument first");
    is_str(md_input_next(in, &err), "", "an empty argument is kept (and later rejected)");
    is_str(md_input_next(in, &err), "one.test", "comment and blank skipped, blanks trimmed");
    is_str(md_input_next(in, &err), "two.test", "trailing comment and CR removed");
    is_str(md_input_next(in, &err), "192.0.2.1 a#b@example.test", "a '#' inside a word is no comment");
    const char *longl = md_input_next(in, &err);
    ok(longl && strlen(longl) == MD_INPUT_LINE_MAX, "over-long line cut to %d", MD_INPUT_LINE_MAX);
    is_str(md_input_next(in, &err), "last.test", "line after the long one intact");
    ok(md_input_next(in, &err) == NULL && !md_input_failed(in), "end");
    is_int(md_input_count(in), 7, "count");
    md_input_free(in);
    unlink(path);

    char *missing[] = { "/nonexistent/md-input" };
    in = md_input_new(NULL, 0, missing, 1);
    ok(md_input_next(in, &err) == NULL && md_input_failed(in), "missing file fails");
    ok(strstr(err.text, "/nonexistent/md-input") != NULL, "error names the file: %s", err.text);
    md_input_free(in);
    return tap_done();
}
