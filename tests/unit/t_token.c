/* Unit tests for lib/token: round trip, every verdict, rotation, tampering,
 * base64url, key files and their permissions. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "token/token.h"
#include "tap.h"

static const unsigned char K1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char K2[32] = "fedcba9876543210fedcba9876543210";

static md_token_keys *keys(const unsigned char *a, const unsigned char *b)
{
    const unsigned char *k[2] = { a, b };
    size_t len[2] = { 32, 32 };
    md_error err;
    return md_token_keys_from_memory(k, len, b ? 2 : 1, &err);
}

static char *write_file(const char *text, mode_t mode)
{
    char *path = strdup("/tmp/md-token-XXXXXX");
    int fd = mkstemp(path);
    if (write(fd, text, strlen(text)) < 0)
        abort();
    close(fd);
    chmod(path, mode);
    return path;
}

int main(void)
{
    md_error err;
    const int64_t T = 1700000000;

    /* base64url round trips over lengths 0..7 (padding cases). */
    const unsigned char raw[] = { 0xfb, 0xff, 0xbf, 0x00, 0x3e, 0x3f, 0x41 };
    for (size_t n = 0; n <= sizeof raw; n++) {
        char *e = md_base64url_encode(raw, n);
        size_t dl;
        unsigned char *d = md_base64url_decode(e, strlen(e), &dl);
        ok(d && dl == n && memcmp(d, raw, n) == 0 && !strpbrk(e, "+/="), "base64url round trip %zu bytes (%s)", n, e);
        free(e); free(d);
    }
    size_t dl;
    ok(md_base64url_decode("ab+c", 4, &dl) == NULL, "'+' is not base64url");
    ok(md_base64url_decode("abcde", 5, &dl) == NULL, "length 5 mod 4 == 1 is invalid");

    md_token_keys *k1 = keys(K1, NULL), *k21 = keys(K2, K1), *k2 = keys(K2, NULL);
    char *t = md_token_issue(k1, "reset", "acct-42", "pwhash-v1", T, 3600, &err);
    ok(t != NULL, "issue");
    md_token_claims c;
    struct { const md_token_keys *k; const char *kind, *state; int64_t now; md_token_verdict want; const char *what; } cases[] = {
        { k1, "reset", "pwhash-v1", T + 10, MD_TOKEN_VALID, "valid" },
        { k1, NULL, NULL, T + 10, MD_TOKEN_VALID, "valid, any kind, state unchecked" },
        { k1, "verify", "pwhash-v1", T + 10, MD_TOKEN_WRONG_KIND, "a reset token is not a verify token" },
        { k1, "reset", "pwhash-v2", T + 10, MD_TOKEN_STALE, "password changed: stale" },
        { k1, "reset", "", T + 10, MD_TOKEN_STALE, "empty state differs" },
        { k1, "reset", "pwhash-v1", T + 3600, MD_TOKEN_EXPIRED, "expired exactly at expiry" },
        { k1, "reset", "pwhash-v1", T - MD_TOKEN_SKEW - 1, MD_TOKEN_NOT_YET_VALID, "issued in the future" },
        { k1, "reset", "pwhash-v1", T - MD_TOKEN_SKEW, MD_TOKEN_VALID, "within clock skew" },
        { k2, "reset", "pwhash-v1", T + 10, MD_TOKEN_BAD_SIGNATURE, "another key" },
        { k21, "reset", "pwhash-v1", T + 10, MD_TOKEN_VALID, "rotation: old key second still verifies" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_token_verdict v = md_token_verify(cases[i].k, t, cases[i].kind, cases[i].state, cases[i].now, &c);
        is_str(md_token_verdict_name(v), md_token_verdict_name(cases[i].want), "%s", cases[i].what);
    }
    md_token_verify(k21, t, NULL, NULL, T, &c);
    is_int(c.key_index, 1, "rotation: verified by key 2 of 2");
    is_str(c.account, "acct-42", "claims: account");
    is_str(c.kind, "reset", "claims: kind");
    is_int(c.expires - c.issued, 3600, "claims: ttl");
    ok(!c.test, "not a test token");

    /* Tampering: flip each character of the token. */
    int all_bad = 1;
    for (size_t i = 0; t[i]; i++) {
        char *m = strdup(t);
        m[i] = m[i] == 'A' ? 'B' : 'A';
        if (strcmp(m, t) != 0 && md_token_verify(k1, m, NULL, NULL, T, NULL) == MD_TOKEN_VALID)
            all_bad = 0;
        free(m);
    }
    ok(all_bad, "no single-character change of the token verifies");

    /* One spelling only: the last character of the MAC (43 characters for
     * 32 bytes) carries 2 spare bits, and so may the payload's.  Every
     * alphabet value in those places: exactly one verifies. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t tl = strlen(t), dot = (size_t)(strchr(t, '.') - t);
    size_t places[2] = { tl - 1, dot - 1 };
    for (size_t pl = 0; pl < 2; pl++) {
        int verified = 0;
        char *m = strdup(t);
        for (size_t a = 0; a < 64; a++) {
            m[places[pl]] = alphabet[a];
            if (md_token_verify(k1, m, NULL, NULL, T + 10, NULL) == MD_TOKEN_VALID)
                verified++;
        }
        is_int(verified, 1, "the %s's last character: exactly one of 64 verifies",
               pl == 0 ? "MAC" : "payload");
        free(m);
    }
    /* Strict decoding: spare bits, padding, white space, other characters. */
    static const struct { const char *in; int valid; } strict[] = {
        { "QQ", 1 }, { "QR", 0 }, { "QV", 0 }, { "Qf", 0 },   /* "A": 4 spare bits */
        { "QUI", 1 }, { "QUJ", 0 }, { "QUL", 0 },             /* "AB": 2 spare bits */
        { "QUJD", 1 }, { "QQ==", 0 }, { "QQ=", 0 }, { "QU I", 0 }, { "QUI\n", 0 },
        { " QUI", 0 }, { "QUJ*", 0 }, { "Q", 0 }, { "", 1 },
    };
    for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
        size_t n;
        unsigned char *d = md_base64url_decode(strict[i].in, strlen(strict[i].in), &n);
        ok((d != NULL) == strict[i].valid, "base64url case %zu ('%.*s') is %s", i,
           (int)strcspn(strict[i].in, "\n"), strict[i].in, strict[i].valid ? "valid" : "invalid");
        free(d);
    }
    const char *junk[] = { "", "abc", ".", "a.b", "bm90IGEgdG9rZW4.AAAA", NULL };
    for (size_t i = 0; junk[i]; i++)
        is_int(md_token_verify(k1, junk[i], NULL, NULL, T, NULL), MD_TOKEN_MALFORMED, "malformed: '%s'", junk[i]);
    ok(md_token_verify(k1, NULL, NULL, NULL, T, NULL) == MD_TOKEN_MALFORMED, "NULL is malformed");
    free(t);

    /* Accounts with spaces and non-ASCII survive (base64url inside). */
    t = md_token_issue(k1, "verify", "user name \xc3\xa9", "", T, 60, &err);
    is_int(md_token_verify(k1, t, "verify", "", T, &c), MD_TOKEN_VALID, "account with spaces");
    is_str(c.account, "user name \xc3\xa9", "account round trip");
    free(t);
    ok(md_token_issue(k1, "Reset!", "a", "", T, 60, &err) == NULL, "bad kind refused");
    ok(md_token_issue(k1, "reset", "", "", T, 60, &err) == NULL, "empty account refused");
    ok(md_token_issue(k1, "reset", "a", "", T, 0, &err) == NULL, "zero ttl refused");

    /* Throwaway keys mark the token as a test token. */
    md_token_keys *tk = md_token_keys_throwaway(&err);
    t = md_token_issue(tk, "reset", "a", "", T, 60, &err);
    ok(md_token_verify(tk, t, NULL, NULL, T, &c) == MD_TOKEN_VALID && c.test, "throwaway: valid and test");
    ok(md_token_verify(k1, t, NULL, NULL, T, &c) == MD_TOKEN_BAD_SIGNATURE && c.test, "throwaway token fails elsewhere, claims say test");
    free(t);
    md_token_keys_free(tk);

    /* Key files. */
    char hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", K1[i]);
    char *text = malloc(300);
    snprintf(text, 300, "# rotation: newest first\n%s\n\n  %s  # old\n", hex, hex);
    char *good = write_file(text, 0600), *loose = write_file(text, 0644), *gw = write_file(text, 0620);
    char *shortk = write_file("abcd\n", 0600), *empty = write_file("# nothing\n", 0600);
    md_token_keys *fk = md_token_keys_load(good, &err);
    ok(fk && md_token_keys_count(fk) == 2, "key file with comments: 2 keys");
    t = md_token_issue(fk, "reset", "a", "s", T, 60, &err);
    is_int(md_token_verify(k1, t, "reset", "s", T, NULL), MD_TOKEN_VALID, "file key equals memory key");
    free(t);
    md_token_keys_free(fk);
    ok(md_token_keys_load(loose, &err) == NULL && strstr(err.text, "permissions"), "world-readable key file refused: %s", err.text);
    ok(md_token_keys_load(gw, &err) == NULL, "group-writable key file refused");
    ok(md_token_keys_load(shortk, &err) == NULL && strstr(err.text, "line 1"), "short key refused: %s", err.text);
    ok(md_token_keys_load(empty, &err) == NULL, "empty key file refused");
    ok(md_token_keys_load("/nonexistent/keys", &err) == NULL, "missing key file refused");
    unlink(good); unlink(loose); unlink(gw); unlink(shortk); unlink(empty);
    free(good); free(loose); free(gw); free(shortk); free(empty); free(text);
    md_token_keys_free(k1); md_token_keys_free(k2); md_token_keys_free(k21);
    md_token_keys_free(NULL);

    /* the link of a verify or reset email */
    char *l = md_token_link("https://app.example.com/r?t=", "reset", "abc.def");
    is_str(l, "https://app.example.com/r?t=abc.def", "link: base + token");
    free(l);
    l = md_token_link(NULL, "verify", "abc.def");
    is_str(l, "https://example.com/verify?token=abc.def", "link: the placeholder without a base");
    free(l);
    return tap_done();
}
