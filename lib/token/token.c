/*
 * lib/token: HMAC-SHA256 signed tokens (see token.h for the format).
 * OpenSSL does the cryptography: HMAC(), EVP base64, CRYPTO_memcmp,
 * OPENSSL_cleanse; new keys come from the kernel (md_random_bytes).
 */
#include "config.h"
#include "token.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

struct md_token_keys {
    size_t n;
    int throwaway;
    unsigned char key[MD_TOKEN_KEYS_MAX][MD_TOKEN_KEY_MAX];
    size_t len[MD_TOKEN_KEYS_MAX];
};

#define MAGIC "mdt1"
#define FP_BYTES 12   /* state fingerprint: 96 bits of HMAC is plenty */

char *md_token_link(const char *base, const char *kind, const char *token)
{
    return base ? md_xasprintf("%s%s", base, token)
                : md_xasprintf("https://example.com/%s?token=%s", kind, token);
}

char *md_base64url_encode(const unsigned char *data, size_t len)
{
    char *out = md_xmalloc(4 * ((len + 2) / 3) + 1);
    int n = len ? EVP_EncodeBlock((unsigned char *)out, data, (int)len) : 0;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+') out[i] = '-';
        else if (out[i] == '/') out[i] = '_';
        else if (out[i] == '=') { out[i] = '\0'; break; }
    }
    return out;
}

unsigned char *md_base64url_decode(const char *text, size_t len, size_t *outlen)
{
    *outlen = 0;
    if (len % 4 == 1 || len > 4 * MD_TOKEN_MAX)
        return NULL;
    size_t padded = (len + 3) / 4 * 4;
    char *tmp = md_xmalloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '-') c = '+';
        else if (c == '_') c = '/';
        else if (!isalnum((unsigned char)c)) { free(tmp); return NULL; }
        tmp[i] = c;
    }
    for (size_t i = len; i < padded; i++)
        tmp[i] = '=';
    tmp[padded] = '\0';
    unsigned char *out = md_xmalloc(padded / 4 * 3 + 1);
    int n = padded ? EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded) : 0;
    free(tmp);
    if (n < 0) { free(out); return NULL; }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    n -= (int)(padded - len);
    /* OpenSSL ignores the spare bits of the last character (RFC 4648 3.5
     * lets a decoder reject them when they are not zero): four spellings of
     * one MAC would all verify.  The one canonical spelling is what the
     * encoder writes, so compare with it. */
    char *canon = md_base64url_encode(out, (size_t)n);
    int same = strlen(canon) == len && memcmp(canon, text, len) == 0;
    free(canon);
    if (!same) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)n;
    return out;
}

static md_token_keys *keys_alloc(void)
{
    return md_xcalloc(1, sizeof(md_token_keys));
}

void md_token_keys_free(md_token_keys *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

int md_token_keys_throwaway_p(const md_token_keys *k) { return k->throwaway; }
size_t md_token_keys_count(const md_token_keys *k) { return k->n; }

md_token_keys *md_token_keys_throwaway(md_error *err)
{
    md_token_keys *k = keys_alloc();
    if (md_random_bytes(k->key[0], 32) != 0) {
        md_token_keys_free(k);
        md_error_set(err, MD_INTERNAL, "token.key", "the system random generator failed");
        return NULL;
    }
    k->len[0] = 32;
    k->n = 1;
    k->throwaway = 1;
    return k;
}

md_token_keys *md_token_keys_from_memory(const unsigned char *const *keys, const size_t *len,
                                         size_t n, md_error *err)
{
    if (n == 0 || n > MD_TOKEN_KEYS_MAX) {
        md_error_set(err, MD_CONFIG, "token.key", "between 1 and %d keys are needed", MD_TOKEN_KEYS_MAX);
        return NULL;
    }
    md_token_keys *k = keys_alloc();
    for (size_t i = 0; i < n; i++) {
        if (len[i] < MD_TOKEN_KEY_MIN || len[i] > MD_TOKEN_KEY_MAX) {
            md_token_keys_free(k);
            md_error_set(err, MD_CONFIG, "token.key", "key %zu: a key has %d to %d bytes",
                         i + 1, MD_TOKEN_KEY_MIN, MD_TOKEN_KEY_MAX);
            return NULL;
        }
        memcpy(k->key[i], keys[i], len[i]);
        k->len[i] = len[i];
    }
    k->n = n;
    return k;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Parses one key line (already trimmed).  Returns its length or -1. */
static long parse_hex_key(const char *s, unsigned char *out)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 < MD_TOKEN_KEY_MIN || n / 2 > MD_TOKEN_KEY_MAX)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int h = hexval((unsigned char)s[i]), l = hexval((unsigned char)s[i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i / 2] = (unsigned char)(h << 4 | l);
    }
    return (long)(n / 2);
}

md_token_keys *md_token_keys_load(const char *path, md_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        md_error_set(err, MD_CONFIG, "token.key", "cannot open the key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    /* fstat on the opened file: no window between the check and the read. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        md_error_set(err, MD_CONFIG, "token.key", "the key file %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        close(fd);
        md_error_set(err, MD_CONFIG, "token.key",
                     "the key file %s has loose permissions %04o (other users may read or change it): chmod 600 it",
                     path, (unsigned)(st.st_mode & 07777));
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        md_error_set(err, MD_INTERNAL, "token.key", "cannot read %s", path);
        return NULL;
    }
    md_token_keys *k = keys_alloc();
    char line[2 * MD_TOKEN_KEY_MAX + 64];
    unsigned lineno = 0;
    int bad = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *p = line, *e;
        while (isspace((unsigned char)*p)) p++;
        if ((e = strchr(p, '#')) != NULL) *e = '\0';
        e = p + strlen(p);
        while (e > p && isspace((unsigned char)e[-1])) *--e = '\0';
        if (*p == '\0')
            continue;
        if (k->n == MD_TOKEN_KEYS_MAX) {
            md_error_set(err, MD_CONFIG, "token.key", "%s: more than %d keys", path, MD_TOKEN_KEYS_MAX);
            bad = 1;
            break;
        }
        long len = parse_hex_key(p, k->key[k->n]);
        if (len < 0) {
            md_error_set(err, MD_CONFIG, "token.key",
                         "%s line %u: a key is %d to %d bytes written as hex (e.g. openssl rand -hex 32)",
                         path, lineno, MD_TOKEN_KEY_MIN, MD_TOKEN_KEY_MAX);
            bad = 1;
            break;
        }
        k->len[k->n++] = (size_t)len;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (!bad && k->n == 0) {
        md_error_set(err, MD_CONFIG, "token.key", "the key file %s holds no key", path);
        bad = 1;
    }
    if (bad) {
        md_token_keys_free(k);
        return NULL;
    }
    return k;
}

static int kind_ok(const char *kind)
{
    size_t n = strlen(kind);
    if (n == 0 || n >= MD_TOKEN_KIND_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)kind[i]) || isdigit((unsigned char)kind[i]) ||
              kind[i] == '_' || kind[i] == '-'))
            return 0;
    return 1;
}

static void mac(const md_token_keys *k, size_t i, const void *data, size_t len,
                unsigned char out[32])
{
    unsigned int olen = 32;
    HMAC(EVP_sha256(), k->key[i], (int)k->len[i], data, len, out, &olen);
}

/* The state fingerprint under key i: HMAC(key, "state\0" kind "\0" account "\0" state). */
static char *state_fp(const md_token_keys *k, size_t i, const char *kind, const char *account,
                      const char *state)
{
    char *in = md_xasprintf("state%c%s%c%s%c%s", 0, kind, 0, account, 0, state);
    size_t inlen = 5 + 1 + strlen(kind) + 1 + strlen(account) + 1 + strlen(state);
    unsigned char m[32];
    mac(k, i, in, inlen, m);
    free(in);
    return md_base64url_encode(m, FP_BYTES);
}

char *md_token_issue(const md_token_keys *k, const char *kind, const char *account,
                     const char *state, int64_t issued, int64_t ttl, md_error *err)
{
    if (!kind_ok(kind)) {
        md_error_set(err, MD_CONFIG, "token.issue", "a token kind is 1-%d characters of a-z 0-9 _ -",
                     MD_TOKEN_KIND_MAX - 1);
        return NULL;
    }
    size_t alen = strlen(account);
    if (alen == 0 || alen > MD_TOKEN_ACCOUNT_MAX) {
        md_error_set(err, MD_CONFIG, "token.issue", "an account id has 1 to %d bytes", MD_TOKEN_ACCOUNT_MAX);
        return NULL;
    }
    if (ttl <= 0 || ttl > 366 * 86400) {
        md_error_set(err, MD_CONFIG, "token.issue", "a token lives between 1 second and a year");
        return NULL;
    }
    char *acc = md_base64url_encode((const unsigned char *)account, alen);
    char *fp = state_fp(k, 0, kind, account, state ? state : "");
    char *payload = md_xasprintf(MAGIC " %s %s %" PRId64 " %" PRId64 " %s %s", kind, acc,
                                 issued, issued + ttl, fp, k->throwaway ? "t" : "-");
    unsigned char m[32];
    mac(k, 0, payload, strlen(payload), m);
    char *p64 = md_base64url_encode((const unsigned char *)payload, strlen(payload));
    char *m64 = md_base64url_encode(m, sizeof m);
    char *tok = md_xasprintf("%s.%s", p64, m64);
    free(acc); free(fp); free(payload); free(p64); free(m64);
    return tok;
}

const char *md_token_verdict_name(md_token_verdict v)
{
    switch (v) {
    case MD_TOKEN_VALID: return "valid";
    case MD_TOKEN_EXPIRED: return "expired";
    case MD_TOKEN_NOT_YET_VALID: return "not_yet_valid";
    case MD_TOKEN_WRONG_KIND: return "wrong_kind";
    case MD_TOKEN_STALE: return "stale";
    case MD_TOKEN_BAD_SIGNATURE: return "bad_signature";
    case MD_TOKEN_MALFORMED: return "malformed";
    }
    return "malformed";
}

static int parse_i64(const char *s, int64_t *out)
{
    if (*s == '\0' || strlen(s) > 12)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

md_token_verdict md_token_verify(const md_token_keys *k, const char *token,
                                 const char *want_kind, const char *state, int64_t now,
                                 md_token_claims *claims)
{
    md_token_claims c;
    memset(&c, 0, sizeof c);
    c.key_index = -1;
    if (claims)
        *claims = c;
    size_t tlen = token ? strlen(token) : 0;
    const char *dot = token ? strchr(token, '.') : NULL;
    if (tlen == 0 || tlen > MD_TOKEN_MAX || dot == NULL)
        return MD_TOKEN_MALFORMED;

    size_t plen = 0, mlen = 0;
    unsigned char *payload = md_base64url_decode(token, (size_t)(dot - token), &plen);
    unsigned char *m = md_base64url_decode(dot + 1, strlen(dot + 1), &mlen);
    md_token_verdict v = MD_TOKEN_MALFORMED;
    char *acc = NULL;
    if (payload == NULL || m == NULL || mlen != 32 || memchr(payload, 0, plen) != NULL)
        goto done;
    payload[plen] = '\0';

    /* Split "mdt1 kind acc issued expires fp flags". */
    char *f[8];
    size_t nf = 0;
    char *save = NULL;
    char *copy = md_xstrdup((char *)payload);
    for (char *t = strtok_r(copy, " ", &save); t && nf < 8; t = strtok_r(NULL, " ", &save))
        f[nf++] = t;
    if (nf != 7 || strcmp(f[0], MAGIC) != 0 || !kind_ok(f[1]) ||
        parse_i64(f[3], &c.issued) != 0 || parse_i64(f[4], &c.expires) != 0 ||
        (strcmp(f[6], "t") != 0 && strcmp(f[6], "-") != 0)) {
        free(copy);
        goto done;
    }
    size_t alen = 0;
    acc = (char *)md_base64url_decode(f[2], strlen(f[2]), &alen);
    if (acc == NULL || alen == 0 || alen > MD_TOKEN_ACCOUNT_MAX || memchr(acc, 0, alen)) {
        free(copy);
        goto done;
    }
    acc[alen] = '\0';
    snprintf(c.kind, sizeof c.kind, "%s", f[1]);
    memcpy(c.account, acc, alen + 1);
    c.test = f[6][0] == 't';
    char fp[32];
    snprintf(fp, sizeof fp, "%s", f[5]);
    free(copy);

    /* Try every key; the comparison is constant-time for each. */
    for (size_t i = 0; i < k->n; i++) {
        unsigned char want[32];
        mac(k, i, payload, plen, want);
        if (CRYPTO_memcmp(want, m, 32) == 0 && c.key_index < 0)
            c.key_index = (int)i;
    }
    if (c.key_index < 0) { v = MD_TOKEN_BAD_SIGNATURE; goto done; }
    if (want_kind && strcmp(want_kind, c.kind) != 0) { v = MD_TOKEN_WRONG_KIND; goto done; }
    if (c.issued > now + MD_TOKEN_SKEW) { v = MD_TOKEN_NOT_YET_VALID; goto done; }
    if (now >= c.expires) { v = MD_TOKEN_EXPIRED; goto done; }
    if (state) {
        char *want_fp = state_fp(k, (size_t)c.key_index, c.kind, c.account, state);
        int same = strlen(want_fp) == strlen(fp) &&
                   CRYPTO_memcmp(want_fp, fp, strlen(fp)) == 0;
        free(want_fp);
        if (!same) { v = MD_TOKEN_STALE; goto done; }
    }
    v = MD_TOKEN_VALID;
done:
    if (claims)
        *claims = c;
    free(payload);
    free(m);
    free(acc);
    return v;
}
