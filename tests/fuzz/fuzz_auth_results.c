/*
 * libFuzzer target: lib/arrival's readers of what a receiver concluded.  The
 * first byte chooses: 'A' an Authentication-Results value (RFC 8601), 'R' a
 * Received-SPF value (RFC 7208 9.1), anything else a whole stored message
 * whose receiver's fields md_arrival_auth_read picks (GMime, the trust
 * rules) against a fixed message sent.  Checked: no crash, no leak, no read
 * past the input (it is copied to a buffer of its exact size), every string
 * in a result NUL-terminated within its field and free of control
 * characters, counts within their bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arrival/arrival.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sent[] =
    "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
    "From: noreply@example.com\r\n"
    "To: maria@lab.test\r\n"
    "Subject: test\r\n"
    "Message-ID: <abc.1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello\r\n";

static void clean(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == size)
        abort();   /* not terminated within its field */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *in = malloc(size - 1 ? size - 1 : 1);
    memcpy(in, data + 1, size - 1);
    size_t n = size - 1;
    if (data[0] == 'A') {
        md_authres *a = malloc(sizeof *a);
        if (md_arrival_authres_parse(in, n, a, NULL) == MD_OK) {
            if (a->nresult > MD_AUTHRES_RESULTS_MAX)
                abort();
            clean(a->authserv_id, sizeof a->authserv_id);
            for (size_t i = 0; i < a->nresult; i++) {
                const md_authres_result *r = &a->result[i];
                clean(r->method, sizeof r->method);
                clean(r->result, sizeof r->result);
                clean(r->reason, sizeof r->reason);
                if (r->nprop > MD_AUTHRES_PROPS_MAX || !r->method[0] || !r->result[0])
                    abort();
                for (size_t k = 0; k < r->nprop; k++) {
                    clean(r->prop[k].ptype, sizeof r->prop[k].ptype);
                    clean(r->prop[k].property, sizeof r->prop[k].property);
                    clean(r->prop[k].value, sizeof r->prop[k].value);
                }
            }
        }
        free(a);
    } else if (data[0] == 'R') {
        md_received_spf r;
        if (md_arrival_received_spf_parse(in, n, &r, NULL) == MD_OK) {
            clean(r.result, sizeof r.result);
            clean(r.comment, sizeof r.comment);
            if (r.nkv > sizeof r.kv / sizeof r.kv[0] || !r.result[0])
                abort();
            for (size_t k = 0; k < r.nkv; k++) {
                clean(r.kv[k].key, sizeof r.kv[k].key);
                clean(r.kv[k].value, sizeof r.kv[k].value);
            }
        }
    } else {
        md_arrival_auth au;
        (void)md_arrival_auth_read(in, n, sent, sizeof sent - 1, NULL, &au, NULL);
        clean(au.spf, sizeof au.spf);
        clean(au.dkim, sizeof au.dkim);
        clean(au.dmarc, sizeof au.dmarc);
        clean(au.authserv_id, sizeof au.authserv_id);
        for (size_t i = 0; i < au.nauthres; i++)
            clean(au.authres[i], strlen(au.authres[i]) + 1);
        for (size_t i = 0; i < au.nreceived_spf; i++)
            clean(au.received_spf[i], strlen(au.received_spf[i]) + 1);
        md_arrival_auth_clear(&au);
    }
    free(in);
    return 0;
}
