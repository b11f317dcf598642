/*
 * libFuzzer target: lib/bounce's md_bounce_parse, which reads whatever
 * lands in a bounce mailbox (MIME through GMime, the RFC 3464 and RFC 5965
 * field groups, the text heuristics of non-standard bounces).  The seeds are
 * the fixtures of tests/fixtures/bounces.  What is checked: no crash, no
 * leak, an error comes without a result, and a result holds together
 * (a key, every recipient with an address, every status an RFC 3463 code,
 * a description whose every field and recipient is there and renders).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce/bounce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    md_bounce *b = NULL;
    md_error err = { 0 };
    md_status st = md_bounce_parse((const char *)data, size, &b, &err);
    if (st != MD_OK) {
        if (b != NULL || err.text[0] == '\0')
            abort();
        return 0;
    }
    if (b == NULL || b->key == NULL)
        abort();
    for (size_t i = 0; i < b->nrcpt; i++) {
        const md_bounce_recipient *r = &b->rcpt[i];
        if (r->address == NULL || (r->status[0] && !md_bounce_status_valid(r->status, strlen(r->status))))
            abort();
    }
    /* a string jansson refuses (not UTF-8) would leave its field out */
    md_report *rep = md_report_new("fuzz", NULL);
    md_bounce_describe(b, rep);
    json_t *j = md_report_fields(rep);
    json_t *rs = json_object_get(j, "recipients");
    if (json_object_size(j) != 13 || json_array_size(rs) != b->nrcpt)
        abort();
    for (size_t i = 0; i < b->nrcpt; i++)
        if (json_object_size(json_array_get(rs, i)) != 6)
            abort();
    md_buf out = { 0 };
    if (md_report_append_json(rep, &out) != 0)
        abort();
    md_buf_free(&out);
    md_report_free(rep);
    free(md_bounce_message_id((const char *)data, size));
    md_bounce_free(b);
    return 0;
}
