/* A DNS answer table in memory, written as text (see answer_table.h). */
#include "config.h"
#include "answer_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct answer_table {
    md_dns_answer *a[ANSWER_TABLE_MAX];
    size_t n;
    size_t asked;
};

static const struct { const char *word; md_dns_outcome o; } outcomes[] = {
    { "nxdomain", MD_DNS_NXDOMAIN }, { "nodata", MD_DNS_NODATA },
    { "servfail", MD_DNS_SERVFAIL }, { "refused", MD_DNS_REFUSED },
    { "timeout", MD_DNS_TIMEOUT }, { "badresp", MD_DNS_BADRESP }, { "error", MD_DNS_ERROR },
};

static char *canon(const char *s, size_t n)
{
    char *c = md_xstrndup(s, n);
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t l = strlen(c);
    if (l > 1 && c[l - 1] == '.')
        c[l - 1] = '\0';
    return c;
}

static int type_of(const char *s, size_t n)
{
    static const struct { const char *name; int type; } types[] = {
        { "TXT", MD_DNS_TXT }, { "A", MD_DNS_A }, { "AAAA", MD_DNS_AAAA },
        { "MX", MD_DNS_MX }, { "PTR", MD_DNS_PTR },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i].name) == n && strncasecmp(s, types[i].name, n) == 0)
            return types[i].type;
    return 0;
}

static md_dns_answer *entry(answer_table *t, const char *name, int type, int create)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->a[i]->type == type && strcmp(t->a[i]->qname, name) == 0)
            return t->a[i];
    if (!create || t->n == ANSWER_TABLE_MAX)
        return NULL;
    md_dns_answer *a = md_xcalloc(1, sizeof *a);
    a->type = type;
    a->qname = md_xstrdup(name);
    a->outcome = MD_DNS_NODATA;
    a->ttl = 300;
    t->a[t->n++] = a;
    return a;
}

/* Adds one record (data[0..n)) to a; 0, or -1 when it is not one. */
static int add_record(md_dns_answer *a, const char *data, size_t n)
{
    if (a->n >= ANSWER_TABLE_RECORDS || (a->outcome != MD_DNS_ANSWER && a->outcome != MD_DNS_NODATA))
        return -1;
    char *s = md_xstrndup(data, n);
    int rc = 0;
    size_t k = a->n;
    switch (a->type) {
    case MD_DNS_TXT:
        a->txt = md_xrealloc(a->txt, (k + 1) * sizeof *a->txt);
        a->txt[k].data = s;
        a->txt[k].len = n;
        s = NULL;
        break;
    case MD_DNS_A:
    case MD_DNS_AAAA: {
        md_dns_addr ad = { .family = a->type == MD_DNS_A ? AF_INET : AF_INET6 };
        if (inet_pton(ad.family, s, ad.bytes) != 1) {
            rc = -1;
            break;
        }
        inet_ntop(ad.family, ad.bytes, ad.text, sizeof ad.text);
        a->addr = md_xrealloc(a->addr, (k + 1) * sizeof *a->addr);
        a->addr[k] = ad;
        break;
    }
    case MD_DNS_MX: {
        char *end;
        unsigned long pref = strtoul(s, &end, 10);
        if (end == s || *end != ' ' || pref > 65535) {
            rc = -1;
            break;
        }
        while (*end == ' ')
            end++;
        a->mx = md_xrealloc(a->mx, (k + 1) * sizeof *a->mx);
        a->mx[k].preference = (unsigned)pref;
        a->mx[k].host = strcmp(end, ".") == 0 ? md_xstrdup("") : canon(end, strlen(end));
        break;
    }
    default:
        a->names = md_xrealloc(a->names, (k + 1) * sizeof *a->names);
        a->names[k] = canon(s, n);
        break;
    }
    free(s);
    if (rc == 0) {
        a->n++;
        a->outcome = MD_DNS_ANSWER;
    }
    return rc;
}

answer_table *answer_table_parse(const char *text, size_t len)
{
    answer_table *t = md_xcalloc(1, sizeof *t);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *sp1 = memchr(p, ' ', (size_t)(le - p));
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(le - sp1 - 1)) : NULL;
        int type = sp2 ? type_of(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : 0;
        if (type != 0 && sp1 > p && memchr(p, '\0', (size_t)(sp1 - p)) == NULL) {
            char *name = canon(p, (size_t)(sp1 - p));
            const char *data = sp2 + 1;
            size_t dn = (size_t)(le - data);
            md_dns_answer *a = entry(t, name, type, 1);
            int word = 0;
            for (size_t i = 0; a && i < sizeof outcomes / sizeof outcomes[0]; i++)
                if (strlen(outcomes[i].word) == dn && strncmp(data, outcomes[i].word, dn) == 0
                    && a->n == 0) {
                    a->outcome = outcomes[i].o;
                    snprintf(a->detail, sizeof a->detail, "the table says %s", outcomes[i].word);
                    word = 1;
                }
            if (a && !word)
                add_record(a, data, dn);
            free(name);
        }
        p = le + 1;
    }
    return t;
}

void answer_table_free(answer_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        md_dns_answer_free(t->a[i]);
    free(t);
}

md_dns_answer *answer_table_resolve(void *arg, const char *name, int type)
{
    answer_table *t = arg;
    t->asked++;
    char *c = canon(name, strlen(name));
    const md_dns_answer *a = entry(t, c, type, 0);
    md_dns_answer *r;
    if (a != NULL) {
        r = md_dns_answer_copy(a);
    } else {
        r = md_xcalloc(1, sizeof *r);
        r->type = type;
        r->qname = md_xstrdup(c);
        r->outcome = MD_DNS_NXDOMAIN;
    }
    free(c);
    return r;
}

size_t answer_table_asked(const answer_table *t)
{
    return t->asked;
}
