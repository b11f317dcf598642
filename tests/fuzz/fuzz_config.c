/*
 * libFuzzer target: the configuration file parser (lib/base/conf.c: our
 * line reader in front of libinih, the handler, the permission rules) over
 * any file contents.  The file is a memfd, read through /proc/self/fd/N
 * as md_conf_load opens a path; mode 0600, then 0644.
 *
 * conf.c is compiled into this target (and so not taken from the library)
 * because md_conf has no iterator, and what is checked concerns every
 * entry the parser keeps:
 *  - no crash, no leak;
 *  - a section name holds no CR, LF or ']', no blank at either end, and
 *    fewer than 50 bytes; a key is not empty, holds no CR, LF, '=' or ':',
 *    does not start a comment or a section, and has no white space at
 *    either end; a value holds no CR or LF, no white space at either end,
 *    and at most 64 KiB;
 *  - md_conf_get finds every entry (the last of equal names wins);
 *  - a refusal has a message free of control characters;
 *  - the same file readable by everyone is refused exactly when an entry is
 *    a secret (a password key, a URI with a password).
 */
#include "base/conf.c"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check names itself before the abort libFuzzer reports. */
#define check(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort(); \
    } \
} while (0)

static int fd = -1;
static char path[64];

static void text_ok(const char *s)
{
    size_t bad;
    const char *why;
    check(md_text_check(s, strlen(s), NULL, &bad, &why) == 0);
}

static int space_at_ends(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]));
}

static md_status load(mode_t mode, md_conf **c, md_error *err)
{
    check(fchmod(fd, mode) == 0);
    md_error_clear(err);
    md_status st = md_conf_load(path, c, err);
    check(st == MD_OK || st == MD_CONFIG);
    check((st == MD_OK) == (*c != NULL));
    if (st != MD_OK)
        text_ok(err->text);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz_config", MFD_CLOEXEC);
        check(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (size > 1 << 20)
        return 0;
    check(ftruncate(fd, 0) == 0);
    check(pwrite(fd, data, size, 0) == (ssize_t)size);

    md_conf *c = NULL;
    md_error err;
    if (load(0600, &c, &err) != MD_OK)
        return 0;
    int secrets = 0;
    for (size_t i = 0; i < c->n; i++) {
        const entry *e = &c->v[i];
        check(strpbrk(e->section, "\r\n]") == NULL && strlen(e->section) < CONF_SECTION_MAX);
        size_t sl = strlen(e->section);
        check(sl == 0 || (!blank(e->section[0]) && !blank(e->section[sl - 1])));
        check(e->key[0] != '\0' && strpbrk(e->key, "\r\n=:") == NULL && !space_at_ends(e->key));
        check(e->key[0] != ';' && e->key[0] != '#' && e->key[0] != '[');
        check(strpbrk(e->value, "\r\n") == NULL && !space_at_ends(e->value));
        check(strlen(e->value) <= CONF_VALUE_MAX);
        const char *got = md_conf_get(c, e->section, e->key);
        check(got != NULL);
        size_t last = i;
        for (size_t k = i + 1; k < c->n; k++)
            if (strcasecmp(c->v[k].section, e->section) == 0 && strcasecmp(c->v[k].key, e->key) == 0)
                last = k;
        check(got == c->v[last].value);
        secrets |= secret_key(e->key) || secret_value(e->value);
    }
    check(strcmp(md_conf_path(c), path) == 0);
    md_conf_free(c);

    c = NULL;
    md_status st = load(0644, &c, &err);
    check((st == MD_OK) == !secrets);
    md_conf_free(c);
    return 0;
}
