/*
 * libFuzzer target: lib/token's verification (md_token_verify) and its
 * base64url codec, over any token text, with a fixed key set of two keys.
 * The seeds are tokens md_token_issue made with those keys (states "",
 * "pw1" or "pw2"), so the fuzzer starts from the real thing and bends it.
 *
 * What is checked, besides no crash and no leak:
 *  - only tokens made by md_token_issue with one of the keys verify: the
 *    fuzzer cannot forge a MAC, so a token whose signature verifies must be
 *    one md_token_issue writes for its claims, byte for byte (one spelling:
 *    no other base64 spelling, padding or separator gets through);
 *  - the verdict is one of the seven, the key index is -1 exactly when no
 *    key verified it, and claims that parsed hold a kind of [a-z0-9_-] and
 *    an account of 1 to 256 bytes;
 *  - md_base64url_decode takes only what md_base64url_encode writes, and
 *    what it decodes encodes back to the same text.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600   /* 2026-01-01, the seeds' issue time */

/* A failed check names itself before the abort libFuzzer reports. */
#define check(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort(); \
    } \
} while (0)

/* keys[0]: both keys, the first signs; keys[1]: the second alone, to
 * re-issue what the second key signed. */
static md_token_keys *keys[2];

static void setup(void)
{
    static unsigned char k0[32], k1[48];
    for (size_t i = 0; i < sizeof k0; i++)
        k0[i] = (unsigned char)(0x11 * i + 1);
    for (size_t i = 0; i < sizeof k1; i++)
        k1[i] = (unsigned char)(0x3b * i + 7);
    const unsigned char *both[2] = { k0, k1 };
    const size_t len[2] = { sizeof k0, sizeof k1 };
    keys[0] = md_token_keys_from_memory(both, len, 2, NULL);
    keys[1] = md_token_keys_from_memory(both + 1, len + 1, 1, NULL);
    check(keys[0] != NULL && keys[1] != NULL);
}

static int kind_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n >= MD_TOKEN_KIND_MAX)
        return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
            return 0;
    return 1;
}

/* A token whose signature verified is one md_token_issue writes. */
static void issued_by_us(const char *token, const md_token_claims *c)
{
    static const char *const states[] = { "", "pw1", "pw2" };
    check(c->key_index == 0 || c->key_index == 1);
    int found = 0;
    for (size_t i = 0; i < 3 && !found; i++) {
        char *t = md_token_issue(keys[c->key_index], c->kind, c->account, states[i], c->issued,
                                 c->expires - c->issued, NULL);
        found = t != NULL && strcmp(t, token) == 0;
        free(t);
    }
    check(found);
}

static void codec(const char *text, size_t len)
{
    size_t n = 0;
    unsigned char *raw = md_base64url_decode(text, len, &n);
    if (raw != NULL) {
        char *again = md_base64url_encode(raw, n);
        check(strlen(again) == len && memcmp(again, text, len) == 0);
        free(again);
        free(raw);
    }
    /* and the text as bytes, there and back */
    char *enc = md_base64url_encode((const unsigned char *)text, len);
    unsigned char *dec = md_base64url_decode(enc, strlen(enc), &n);
    if (len <= 3 * MD_TOKEN_MAX)
        check(dec != NULL && n == len && memcmp(dec, text, len) == 0);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys[0] == NULL)
        setup();
    if (size > 4 * MD_TOKEN_MAX)
        return 0;
    char *token = malloc(size + 1);
    check(token != NULL);
    memcpy(token, data, size);
    token[size] = '\0';
    codec(token, size);

    static const char *const kinds[] = { NULL, "verify", "reset" };
    static const char *const states[] = { NULL, "", "pw1" };
    static const int64_t nows[] = { NOW, NOW + 3599, NOW + 3600, NOW - 61 };
    for (size_t i = 0; i < 3; i++) {
        md_token_claims c;
        md_token_verdict v = md_token_verify(keys[0], token, kinds[i], states[i], nows[i], &c);
        check((unsigned)v <= MD_TOKEN_MALFORMED);
        check((c.key_index < 0) == (v == MD_TOKEN_MALFORMED || v == MD_TOKEN_BAD_SIGNATURE));
        check(c.key_index >= -1 && c.key_index < 2);
        if (v != MD_TOKEN_MALFORMED) {
            check(kind_ok(c.kind));
            size_t al = strnlen(c.account, sizeof c.account);
            check(al >= 1 && al <= MD_TOKEN_ACCOUNT_MAX);
        }
        if (c.key_index >= 0)
            issued_by_us(token, &c);
        if (v == MD_TOKEN_VALID)
            check(nows[i] < c.expires && c.issued <= nows[i] + MD_TOKEN_SKEW);
        check(md_token_verdict_name(v)[0] != '\0');
    }
    /* the second key, on its own, verifies what it signed and nothing else */
    md_token_claims c;
    md_token_verdict v = md_token_verify(keys[1], token, NULL, NULL, NOW, &c);
    check(c.key_index == -1 || c.key_index == 0);
    if (c.key_index == 0) {
        c.key_index = 1;
        issued_by_us(token, &c);
    }
    (void)v;
    free(token);
    return 0;
}
