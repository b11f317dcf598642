/*
 * lib/token: signed, expiring tokens for the links in verify and reset
 * emails.
 *
 * A token is   base64url(payload) "." base64url(HMAC-SHA256(key, payload))
 * with the payload the text
 *   "mdt1" SP kind SP base64url(account) SP issued SP expires SP statefp SP flags
 * (issued/expires in Unix seconds; flags "t" for a test token signed with a
 * throwaway key, else "-").
 *
 * statefp binds the token to the account state: it is an HMAC of the state
 * string the application passes (say, the password hash and the verified
 * flag), so a reset token dies as soon as the password changes, and a verify
 * token as soon as the address is verified: that is how a token is
 * "invalidated by use" without a server-side list.  The state itself never
 * appears in the token.
 *
 * Keys: a key file holds one key per line (hex, at least 32 bytes = 64 hex
 * digits; '#' comments), first line signs, every line verifies (rotation:
 * add the new key on top, remove the old one after the longest expiry).
 * A file readable or writable by "other" users, or writable by the group,
 * is refused, as msmtp refuses loose password files.
 *
 * Comparison of MACs is constant-time (CRYPTO_memcmp).
 */
#ifndef MAILDIAG_TOKEN_H
#define MAILDIAG_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MD_TOKEN_KEY_MIN 32      /* bytes */
#define MD_TOKEN_KEY_MAX 128     /* bytes */
#define MD_TOKEN_KEYS_MAX 16     /* keys in one file */
#define MD_TOKEN_KIND_MAX 16     /* "verify", "reset": [a-z0-9_-], at most 15 */
#define MD_TOKEN_ACCOUNT_MAX 256 /* account id bytes */
#define MD_TOKEN_MAX 1024        /* longest token accepted for parsing */
#define MD_TOKEN_TTL_DEFAULT 3600 /* seconds */
#define MD_TOKEN_SKEW 60         /* seconds of clock skew tolerated on issued-at */

typedef struct md_token_keys md_token_keys;

/* Loads keys from path (permissions checked first).  Returns NULL and fills
 * err (MD_CONFIG) when the file is missing, loose, empty or malformed.
 * Caller frees with md_token_keys_free(). */
MD_API md_token_keys *md_token_keys_load(const char *path, md_error *err);
/* One random key that exists only in this process: tokens it signs carry the
 * test flag.  Returns NULL only if the system RNG fails (err filled). */
MD_API md_token_keys *md_token_keys_throwaway(md_error *err);
/* Keys from memory (tests, applications with their own key store): n keys
 * of len[i] bytes each, first signs.  Copied.  NULL + err when a length is
 * out of range. */
MD_API md_token_keys *md_token_keys_from_memory(const unsigned char *const *keys, const size_t *len,
                                                size_t n, md_error *err);
MD_API void md_token_keys_free(md_token_keys *k);
/* Whether k is a throwaway key set. */
MD_API int md_token_keys_throwaway_p(const md_token_keys *k);
MD_API size_t md_token_keys_count(const md_token_keys *k);

typedef struct md_token_claims {
    char kind[MD_TOKEN_KIND_MAX];
    char account[MD_TOKEN_ACCOUNT_MAX + 1];
    int64_t issued, expires;     /* Unix seconds */
    int test;                    /* signed with a throwaway key */
    int key_index;               /* which key verified it; -1 when none did */
} md_token_claims;

/*
 * Issues a token for (kind, account, state) valid from issued for ttl
 * seconds.  state may be "" (no binding) but not NULL.  Returns a new string
 * (caller frees with free()), or NULL with err filled (MD_CONFIG for a bad
 * kind or account: empty, too long, kind outside [a-z0-9_-]).
 */
MD_API char *md_token_issue(const md_token_keys *k, const char *kind, const char *account,
                            const char *state, int64_t issued, int64_t ttl, md_error *err);

typedef enum md_token_verdict {
    MD_TOKEN_VALID = 0,
    MD_TOKEN_EXPIRED,            /* now >= expires */
    MD_TOKEN_NOT_YET_VALID,      /* issued more than MD_TOKEN_SKEW in the future */
    MD_TOKEN_WRONG_KIND,         /* signed, but for another purpose */
    MD_TOKEN_STALE,              /* the account state changed since (used, password changed) */
    MD_TOKEN_BAD_SIGNATURE,      /* no key verifies it: forged, altered, or another key set */
    MD_TOKEN_MALFORMED           /* not a maildiag token at all */
} md_token_verdict;

/* "valid", "expired", "not_yet_valid", "wrong_kind", "stale", "bad_signature",
 * "malformed". */
MD_API const char *md_token_verdict_name(md_token_verdict v);

/*
 * Verifies token at time now.  want_kind NULL accepts any kind; state NULL
 * skips the state check (support looking at a token without the account).
 * Checks in this order: malformed, signature, kind, not yet valid, expired,
 * stale.  *claims (if not NULL) is filled whenever the token parses, even
 * with a bad signature (then claims->key_index is -1 and nothing in it is
 * authentic).
 */
MD_API md_token_verdict md_token_verify(const md_token_keys *k, const char *token,
                                        const char *want_kind, const char *state, int64_t now,
                                        md_token_claims *claims);

/*
 * The link of a verify or reset email: base with token appended
 * ("https://app.example.com/reset?token=" + token), the way the product's
 * verify and reset pages take it; when base is NULL, the placeholder
 * "https://example.com/KIND?token=TOKEN".  Caller frees with free().
 */
MD_API char *md_token_link(const char *base, const char *kind, const char *token);

/* base64url without padding (RFC 4648 section 5).  Return new strings /
 * buffers (caller frees with free()); decode sets *outlen and returns NULL
 * on anything but the one canonical spelling the encoder writes: no
 * padding, white space or other characters, and the spare bits of the
 * last character zero (so a token has exactly one spelling). */
MD_API char *md_base64url_encode(const unsigned char *data, size_t len);
MD_API unsigned char *md_base64url_decode(const char *text, size_t len, size_t *outlen);

#ifdef __cplusplus
}
#endif
#endif
