/*
 * libFuzzer target: lib/auth's tag-list parser (the "tag=value; ..." syntax
 * of DMARC, DKIM, MTA-STS, TLS-RPT and BIMI records) and the DKIM public key
 * reader (p= through OpenSSL).  The input is one record's text; when it
 * parses and has p=, the key is read.  What is checked: no crash, no leak.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char msg[256];
    md_auth_tags tags;
    if (md_auth_tags_parse((const char *)data, size, &tags, msg, sizeof msg) != 0) {
        if (tags.n != 0)
            abort();   /* documented: empty on failure */
        md_auth_tags_clear(&tags);
        return 0;
    }
    const char *p = md_auth_tags_get(&tags, "p");
    const char *k = md_auth_tags_get(&tags, "k");
    if (p != NULL) {
        int bits = 0;
        char type[32];
        (void)md_auth_dkim_key(p, k, &bits, type, sizeof type);
    }
    md_auth_tags_clear(&tags);
    return 0;
}
