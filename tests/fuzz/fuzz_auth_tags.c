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
    json_t *tags = md_auth_tags_parse((const char *)data, size, msg, sizeof msg);
    if (tags == NULL)
        return 0;
    const char *p = json_string_value(json_object_get(tags, "p"));
    const char *k = json_string_value(json_object_get(tags, "k"));
    if (p != NULL) {
        int bits = 0;
        char type[32];
        (void)md_auth_dkim_key(p, k, &bits, type, sizeof type);
    }
    json_decref(tags);
    return 0;
}
