/*
 * libFuzzer target: lib/spf's record parser and macro expander (RFC 7208
 * sections 4.6, 5, 7), the guard that decides what may reach libspf2.
 * The input is one TXT record's text.  What is checked: no crash, no leak,
 * the parser and md_spf_record_check agree, and every macro-string of a
 * record that parsed expands (bounded) with hostile macro values.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Macro values as an attacker would choose them: long, dotted, odd bytes. */
static const char *vars(void *arg, char letter)
{
    (void)arg;
    switch (letter) {
    case 's': return "strong.local-part+tag@a.b.c.d.e.f.g.h.example.com";
    case 'l': return "strong.local-part+tag";
    case 'o': case 'd': case 'h': return "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.example.com";
    case 'i': return "192.0.2.10";
    case 'p': return "unknown";
    case 'v': return "in-addr";
    case 'c': return "192.0.2.10";
    case 'r': return "mx.example.com";
    case 't': return "1700000000";
    default: return NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    const char *txt = (const char *)data;
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';

    spf_macro_vars v = { vars, NULL };
    /* the raw input as an explanation string (exp= TXT, RFC 7208 6.2) */
    free(spf_macro_expand(txt, size, &v, 1));
    if (!md_spf_is_record(txt, size)) {   /* the parser's precondition */
        free(copy);
        return 0;
    }
    char msg[256];
    int checked = md_spf_record_check(copy, msg, sizeof msg);

    spf_record *r = spf_record_parse(txt, size);
    if (r == NULL)
        abort();   /* documented: never NULL */
    if (!r->bad && strlen(copy) == size && checked != 0)
        abort();   /* the checker refuses what the parser accepts */
    if (!r->bad) {
        for (size_t i = 0; i < r->nterms; i++) {
            const char *arg = r->terms[i].arg;
            if (arg != NULL) {
                char *x = spf_macro_expand(arg, strlen(arg), &v, 0);
                free(x);
            }
        }
        if (r->exp != NULL)
            free(spf_macro_expand(r->exp, strlen(r->exp), &v, 0));
    }
    spf_record_free(r);
    free(copy);
    return 0;
}
