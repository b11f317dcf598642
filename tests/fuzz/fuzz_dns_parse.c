/*
 * libFuzzer target: lib/dns's reply parser (md_dns_parse) over any bytes, as
 * the answer to each question type maildiag asks.  The first byte picks the
 * type; the rest is the reply.  What is checked: no crash, no leak, no
 * out-of-bounds read (ASan), and an answer that is internally consistent.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[] = { MD_DNS_MX, MD_DNS_TXT, MD_DNS_A, MD_DNS_AAAA,
                                 MD_DNS_CNAME, MD_DNS_PTR };
    static const char *const names[] = { "example.com", "mx.example.com",
                                         "a.b.example.com", "10.2.0.192.in-addr.arpa" };
    if (size < 1)
        return 0;
    int type = types[data[0] % (sizeof types / sizeof types[0])];
    const char *qname = names[(data[0] >> 4) % (sizeof names / sizeof names[0])];
    md_dns_answer a;
    memset(&a, 0, sizeof a);
    md_status st = md_dns_parse(data + 1, size - 1, qname, type, &a);
    if (st == MD_OK && a.outcome == MD_DNS_ANSWER) {
        /* every record the parser hands out is complete */
        for (size_t i = 0; i < a.n; i++) {
            if (type == MD_DNS_MX && a.mx[i].host == NULL)
                abort();
            if (type == MD_DNS_TXT && (a.txt[i].data == NULL || a.txt[i].data[a.txt[i].len] != '\0'))
                abort();
            if ((type == MD_DNS_PTR || type == MD_DNS_CNAME) && a.names[i] == NULL)
                abort();
        }
        for (size_t i = 1; type == MD_DNS_MX && i < a.n; i++)
            if (a.mx[i - 1].preference > a.mx[i].preference)
                abort();   /* sorted by preference */
        md_dns_answer *copy = md_dns_answer_copy(&a);
        md_dns_answer_free(copy);
    }
    md_dns_answer_clear(&a);
    return 0;
}
