/*
 * libFuzzer target: lib/address's Mailbox grammar (md_address_parse_len,
 * every option) and lib/base's domain checks, over any bytes.  What is
 * checked besides no crash and no leak:
 *  - an accepted address keeps the limits in every form: local part <= 64
 *    octets, mailbox, A-label form, display form and key <= 254, domain
 *    <= 253; each is UTF-8 without control characters;
 *  - every form parses again as exact text, to the same key, and the key
 *    is a fixed point (parsing it gives it back);
 *  - exact text never reports trimming or brackets; the null path only
 *    with MD_ADDRESS_OPT_NULL_PATH; md_address_check agrees with the parser;
 *  - a refusal has a message (stage input.address) that is safe to print.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static int clean(const char *s)
{
    size_t bad;
    const char *why;
    return md_text_check(s, strlen(s), NULL, &bad, &why) == 0;
}

/* Parses form as exact text and checks that it gives the key want. */
static void again(const char *form, const char *want)
{
    md_address b;
    md_error err;
    char key[MD_ADDRESS_MAX + 1];
    check(md_address_parse_len(form, strlen(form), MD_ADDRESS_OPT_EXACT, &b, &err) == MD_OK);
    check(md_address_key(&b, 0, key, sizeof key) == MD_OK);
    check(strcmp(key, want) == 0);
}

static void one(const char *text, size_t len, unsigned opts)
{
    md_address a;
    md_error err = { 0 };
    md_status st = md_address_parse_len(text, len, opts, &a, &err);
    if (st != MD_OK) {
        check(st == MD_CONFIG && err.text[0] != '\0' && clean(err.text));
        check(strcmp(err.stage, "input.address") == 0);
        return;
    }
    if (opts & MD_ADDRESS_OPT_EXACT)
        check(!(a.flags & MD_ADDRESS_CHANGED));
    if (a.flags & MD_ADDRESS_NULL) {
        check(opts & MD_ADDRESS_OPT_NULL_PATH);
        check(a.mailbox[0] == '\0' && a.ascii[0] == '\0' && a.local[0] == '\0');
        return;
    }
    check(strlen(a.local) >= 1 && strlen(a.local) <= MD_ADDRESS_LOCAL_MAX);
    check(strlen(a.mailbox) <= MD_ADDRESS_MAX && strlen(a.ascii) <= MD_ADDRESS_MAX);
    check(strlen(a.display) <= MD_ADDRESS_MAX && strlen(a.domain) <= MD_ADDRESS_DOMAIN_MAX);
    check(clean(a.mailbox) && clean(a.ascii) && clean(a.display) && clean(a.domain_unicode));
    for (const char *p = a.domain; *p; p++)
        check((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
    int non_ascii = 0;
    for (const char *p = a.local; *p; p++)
        non_ascii |= (unsigned char)*p >= 0x80;
    check(non_ascii == !!(a.flags & MD_ADDRESS_UTF8_LOCAL));
    check(!(a.flags & MD_ADDRESS_LITERAL) == (a.domain[0] != '['));

    char key[MD_ADDRESS_MAX + 1], key2[MD_ADDRESS_MAX + 1];
    check(md_address_key(&a, 0, key, sizeof key) == MD_OK);
    check(strlen(key) <= strlen(a.ascii) && clean(key));
    check(md_address_key(&a, MD_ADDRESS_CASE_SENSITIVE, key2, sizeof key2) == MD_OK);
    again(a.mailbox, key);
    again(a.ascii, key);
    again(a.display, key);
    again(key, key);

    unsigned flags = 0;
    if (opts & MD_ADDRESS_OPT_EXACT) {
        char *z = malloc(len + 1);
        if (z == NULL)
            return;
        memcpy(z, text, len);
        z[len] = '\0';
        if (strlen(z) == len) {
            check(md_address_check(z, opts, &flags, NULL) == MD_OK);
            check(flags == a.flags);
        }
        free(z);
    }
    char pk[MD_ADDRESS_MAX + 1];
    md_address_provider_key(&a, pk, sizeof pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const char *text = (const char *)data;
    for (unsigned opts = 0; opts < 4; opts++)
        one(text, size, opts);

    /* the domain checks on their own, both ways */
    char ascii[MD_DOMAIN_MAX + 1], uni[MD_DOMAIN_UNICODE_MAX + 1];
    for (unsigned f = 0; f < 4; f++) {
        unsigned info;
        md_error err;
        if (md_domain_normalize(text, size, f, ascii, sizeof ascii, uni, sizeof uni, &info, &err) != MD_OK)
            continue;
        check(strlen(ascii) >= 1 && strlen(ascii) <= MD_DOMAIN_MAX && clean(uni));
        for (const char *p = ascii; *p; p++)
            check((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.');
    }
    return 0;
}
