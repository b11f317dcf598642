/*
 * lib/base input: the items a bulk tool works through, from the command line
 * and then from files ("-" is standard input), one item a line, '#' starting
 * a comment, blank lines skipped.  Lines are read lazily, so memory stays
 * flat however long the file is.
 */
#ifndef MAILDIAG_INPUT_H
#define MAILDIAG_INPUT_H

#include <stddef.h>
#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_INPUT_LINE_MAX 4096   /* longer lines are cut (and so fail validation) */

typedef struct md_input md_input;

/* args: items given directly (borrowed; must outlive the reader).
 * files: paths to read after them ("-" = stdin).  Caller frees with
 * md_input_free(). */
MD_API md_input *md_input_new(char *const *args, size_t nargs, char *const *files, size_t nfiles);
MD_API void md_input_free(md_input *in);

/*
 * Next item, trimmed of surrounding blanks and of a comment (from a '#'
 * that starts the line or follows a blank; a '#' inside a word is kept).
 * Returns a pointer valid until the next call, or NULL at the end or on an
 * error (then md_input_error() tells; err holds the file and errno text).
 * An item that is empty on the command line is returned as "".
 */
MD_API const char *md_input_next(md_input *in, md_error *err);
/* Whether the reader stopped on an error. */
MD_API int md_input_failed(const md_input *in);
/* Items returned so far. */
MD_API size_t md_input_count(const md_input *in);

#ifdef __cplusplus
}
#endif
#endif
