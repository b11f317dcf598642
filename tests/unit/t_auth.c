/* Unit tests for lib/auth: tag lists, organizational domains, DKIM keys. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "auth/auth.h"
#include "tap.h"

/* Throwaway public keys (also in tests/zones/auth.test.zone). */
#define K1024 "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDZsSFSZNflOjeEoKuc0MqeEMiLSgoJxtkacITiQeVTMx3UVovy/ulR8K2J41IB+n4W9X27yTYHLYsZTkJRhucgZc1C1cLEQeFnqB5WGgY3MQPMbQt/rTW0fulYKBP2r0uVg8tnTuJ9Volo7836tjrsFwMddktuc0IuBinlOHalxQIDAQAB"

int main(void)
{
    char msg[160];
    json_t *t = md_auth_tags_parse("v=DMARC1; p=reject ;RUA = mailto:a@b.test;; ", 44, msg, sizeof msg);
    ok(t != NULL, "tag list parses (%s)", t ? "" : msg);
    is_str(json_string_value(json_object_get(t, "p")), "reject", "p trimmed");
    is_str(json_string_value(json_object_get(t, "rua")), "mailto:a@b.test", "tag names lower-cased");
    json_decref(t);
    ok(md_auth_tags_parse("v=DMARC1; p=none; p=reject", 26, msg, sizeof msg) == NULL,
       "a tag twice is an error: %s", msg);
    ok(md_auth_tags_parse("v=DMARC1; reject", 16, msg, sizeof msg) == NULL,
       "a tag without '=' is an error: %s", msg);

    static const struct { const char *in, *want; } org[] = {
        { "mail.example.com", "example.com" },
        { "example.com", "example.com" },
        { "a.b.example.co.uk", "example.co.uk" },
        { "sub.inherit.auth.test", "auth.test" },
    };
    for (size_t i = 0; i < sizeof org / sizeof org[0]; i++) {
        char *o = md_auth_org_domain(org[i].in);
        is_str(o, org[i].want, "organizational domain of %s", org[i].in);
        free(o);
    }

    int bits = 0;
    char type[16];
    ok(md_auth_dkim_key(K1024, "rsa", &bits, type, sizeof type) == 0, "RSA SubjectPublicKeyInfo");
    is_int(bits, 1024, "RSA key size");
    is_str(type, "rsa", "RSA key type");
    ok(md_auth_dkim_key("AAAAbm90IGEga2V5", "rsa", &bits, type, sizeof type) == -1, "garbage key fails");
    ok(md_auth_dkim_key("!!!", "rsa", &bits, type, sizeof type) == -1, "bad base64 fails");
    ok(md_auth_dkim_key("hK/Pa7xpkgT965Qs2P+mUjlEco1eRP8FMCOJ8Y9bdfE=", "ed25519", &bits, type,
                        sizeof type) == 0 && strcmp(type, "ed25519") == 0, "ed25519 raw key");
    return tap_done();
}
