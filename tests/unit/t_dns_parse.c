/* Unit tests for lib/dns parsing: replies built byte by byte. */
#include "config.h"
#include <stdlib.h>
#include "dns/dns.h"
#include "tap.h"

typedef struct pkt {
    unsigned char b[2048];
    size_t n;
} pkt;

static void put8(pkt *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void put16(pkt *p, unsigned v) { put8(p, v >> 8); put8(p, v & 0xff); }
static void put32(pkt *p, unsigned long v) { put16(p, (unsigned)(v >> 16)); put16(p, (unsigned)(v & 0xffff)); }

static void name(pkt *p, const char *s)
{
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        put8(p, (unsigned)l);
        memcpy(p->b + p->n, s, l);
        p->n += l;
        s += l + (dot != NULL);
    }
    put8(p, 0);
}

static void header(pkt *p, unsigned rcode, unsigned qd, unsigned an, unsigned ns)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode);
    put16(p, qd);
    put16(p, an);
    put16(p, ns);
    put16(p, 0);
}

static void question(pkt *p, const char *q, unsigned type)
{
    name(p, q);
    put16(p, type);
    put16(p, 1);
}

/* Record header; returns the offset of RDLENGTH to patch. */
static size_t rr(pkt *p, const char *owner, unsigned type, unsigned long ttl)
{
    if (owner)
        name(p, owner);
    else {           /* compression pointer to the question name at 12 */
        put16(p, 0xc00c);
    }
    put16(p, type);
    put16(p, 1);
    put32(p, ttl);
    size_t at = p->n;
    put16(p, 0);
    return at;
}

static void rdlen(pkt *p, size_t at)
{
    size_t l = p->n - at - 2;
    p->b[at] = (unsigned char)(l >> 8);
    p->b[at + 1] = (unsigned char)(l & 0xff);
}

int main(void)
{
    pkt p;
    md_dns_answer a;
    size_t at;

    /* MX out of order, with compression; sorted by preference then host. */
    header(&p, 0, 1, 3, 0);
    question(&p, "Example.TEST", 15);
    at = rr(&p, NULL, 15, 300); put16(&p, 20); name(&p, "mx2.example.test"); rdlen(&p, at);
    at = rr(&p, NULL, 15, 60); put16(&p, 10); name(&p, "MXb.example.test"); rdlen(&p, at);
    at = rr(&p, NULL, 15, 300); put16(&p, 10); name(&p, "mxa.example.test"); rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "example.test.", 15, &a), MD_OK, "MX parses");
    is_int(a.outcome, MD_DNS_ANSWER, "MX outcome answer");
    is_int(a.n, 3, "three MX");
    is_str(a.mx[0].host, "mxa.example.test", "first by preference, then name");
    is_str(a.mx[1].host, "mxb.example.test", "host lower-cased");
    is_int(a.mx[2].preference, 20, "last has preference 20");
    is_int(a.ttl, 60, "lowest TTL");
    is_str(a.qname, "example.test", "qname canonical");
    md_dns_answer_clear(&a);

    /* Null MX. */
    header(&p, 0, 1, 1, 0);
    question(&p, "nullmx.test", 15);
    at = rr(&p, NULL, 15, 300); put16(&p, 0); put8(&p, 0); rdlen(&p, at);
    md_dns_parse(p.b, p.n, "nullmx.test", 15, &a);
    ok(a.outcome == MD_DNS_ANSWER && a.n == 1 && a.mx[0].host[0] == '\0' && a.mx[0].preference == 0,
       "null MX gives host \"\"");
    md_dns_answer_clear(&a);

    /* CNAME chain, then A at the end of the chain; an unrelated A is ignored. */
    header(&p, 0, 1, 4, 0);
    question(&p, "mx.example.test", 1);
    at = rr(&p, "mid.example.test", 5, 300); name(&p, "real.example.test"); rdlen(&p, at);
    at = rr(&p, NULL, 5, 300); name(&p, "mid.example.test"); rdlen(&p, at);
    at = rr(&p, "other.example.test", 1, 300); put32(&p, 0xc0000263UL); rdlen(&p, at);
    at = rr(&p, "real.example.test", 1, 300); put32(&p, 0xc0000219UL); rdlen(&p, at);
    md_dns_parse(p.b, p.n, "mx.example.test", 1, &a);
    is_int(a.outcome, MD_DNS_ANSWER, "A through CNAME chain");
    is_int(a.ncnames, 2, "chain of two");
    is_str(a.ncnames == 2 ? a.cnames[1] : NULL, "real.example.test", "chain end");
    is_int(a.n, 1, "only the chain end's A");
    is_str(a.n ? a.addr[0].text : NULL, "192.0.2.25", "address text");
    md_dns_answer_clear(&a);

    /* CNAME whose target has no A: NODATA with the chain. */
    header(&p, 0, 1, 1, 0);
    question(&p, "alias.test", 15);
    at = rr(&p, NULL, 5, 300); name(&p, "target.test"); rdlen(&p, at);
    md_dns_parse(p.b, p.n, "alias.test", 15, &a);
    ok(a.outcome == MD_DNS_NODATA && a.ncnames == 1, "CNAME-only answer is NODATA with chain");
    md_dns_answer_clear(&a);

    /* CNAME loop is a bad response. */
    header(&p, 0, 1, 2, 0);
    question(&p, "a.test", 1);
    at = rr(&p, "a.test", 5, 300); name(&p, "b.test"); rdlen(&p, at);
    at = rr(&p, "b.test", 5, 300); name(&p, "a.test"); rdlen(&p, at);
    md_dns_parse(p.b, p.n, "a.test", 1, &a);
    is_int(a.outcome, MD_DNS_BADRESP, "CNAME loop is badresp");
    md_dns_answer_clear(&a);

    /* NXDOMAIN with SOA: negative TTL is min(ttl, minimum). */
    header(&p, 3, 1, 0, 1);
    question(&p, "nx.test", 15);
    at = rr(&p, "test", 6, 3600);
    name(&p, "ns.test"); name(&p, "host.test");
    put32(&p, 1); put32(&p, 2); put32(&p, 3); put32(&p, 4); put32(&p, 120);
    rdlen(&p, at);
    md_dns_parse(p.b, p.n, "nx.test", 15, &a);
    is_int(a.outcome, MD_DNS_NXDOMAIN, "NXDOMAIN");
    is_int(a.ttl, 120, "negative TTL from SOA minimum");
    md_dns_answer_clear(&a);

    /* NOERROR, no records: NODATA. */
    header(&p, 0, 1, 0, 0);
    question(&p, "nodata.test", 15);
    md_dns_parse(p.b, p.n, "nodata.test", 15, &a);
    is_int(a.outcome, MD_DNS_NODATA, "NODATA");
    md_dns_answer_clear(&a);

    static const struct { unsigned rcode; md_dns_outcome want; } rc[] = {
        { 2, MD_DNS_SERVFAIL }, { 5, MD_DNS_REFUSED }, { 1, MD_DNS_BADRESP }, { 4, MD_DNS_BADRESP },
    };
    for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) {
        header(&p, rc[i].rcode, 1, 0, 0);
        question(&p, "x.test", 1);
        md_dns_parse(p.b, p.n, "x.test", 1, &a);
        is_int(a.outcome, rc[i].want, "rcode %u -> %s", rc[i].rcode, md_dns_outcome_name(rc[i].want));
        md_dns_answer_clear(&a);
    }

    /* TXT: strings of one record joined without separator; two records. */
    header(&p, 0, 1, 2, 0);
    question(&p, "txt.test", 16);
    at = rr(&p, NULL, 16, 300);
    put8(&p, 6); memcpy(p.b + p.n, "v=spf1", 6); p.n += 6;
    put8(&p, 5); memcpy(p.b + p.n, " -all", 5); p.n += 5;
    rdlen(&p, at);
    at = rr(&p, NULL, 16, 300); put8(&p, 0); rdlen(&p, at);
    md_dns_parse(p.b, p.n, "txt.test", 16, &a);
    is_int(a.n, 2, "two TXT records");
    is_str(a.n ? a.txt[0].data : NULL, "v=spf1 -all", "strings joined");
    is_int(a.n > 1 ? (long long)a.txt[1].len : -1, 0, "empty TXT record");
    md_dns_answer *copy = md_dns_answer_copy(&a);
    is_str(copy->txt[0].data, "v=spf1 -all", "deep copy");
    md_dns_answer_free(copy);
    md_dns_answer_clear(&a);

    /* Malformed: record data past the end, TXT string past its record,
     * A of the wrong length, header only, pointer loop. */
    header(&p, 0, 1, 1, 0);
    question(&p, "bad.test", 1);
    at = rr(&p, NULL, 1, 300); put32(&p, 1); rdlen(&p, at);
    p.n -= 2;
    is_int(md_dns_parse(p.b, p.n, "bad.test", 1, &a), MD_PROTOCOL, "truncated rdata");
    is_int(a.outcome, MD_DNS_BADRESP, "truncated rdata is badresp");
    md_dns_answer_clear(&a);

    header(&p, 0, 1, 1, 0);
    question(&p, "bad.test", 16);
    at = rr(&p, NULL, 16, 300); put8(&p, 9); put8(&p, 'x'); rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "bad.test", 16, &a), MD_PROTOCOL, "TXT string overruns");
    is_int(a.n, 0, "no partial data kept");
    md_dns_answer_clear(&a);

    header(&p, 0, 1, 1, 0);
    question(&p, "bad.test", 1);
    at = rr(&p, NULL, 1, 300); put16(&p, 1); rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "bad.test", 1, &a), MD_PROTOCOL, "A of 2 bytes");
    md_dns_answer_clear(&a);

    is_int(md_dns_parse(p.b, 5, "bad.test", 1, &a), MD_PROTOCOL, "shorter than a header");
    md_dns_answer_clear(&a);

    /* A name that decodes but leaves bytes in its record: badresp, and the
     * decoded name is not kept (the sanitizer build checks it is freed). */
    header(&p, 0, 1, 1, 0);
    question(&p, "bad.test", 15);
    at = rr(&p, NULL, 15, 300); put16(&p, 10); name(&p, "mx.bad.test"); put16(&p, 0xabcd);
    rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "bad.test", 15, &a), MD_PROTOCOL, "MX with trailing bytes");
    ok(a.outcome == MD_DNS_BADRESP && a.n == 0, "MX with trailing bytes is badresp, nothing kept");
    md_dns_answer_clear(&a);
    header(&p, 0, 1, 1, 0);
    question(&p, "1.2.0.192.in-addr.arpa", 12);
    at = rr(&p, NULL, 12, 300); name(&p, "host.bad.test"); put8(&p, 0); rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "1.2.0.192.in-addr.arpa", 12, &a), MD_PROTOCOL,
           "PTR with trailing bytes");
    ok(a.outcome == MD_DNS_BADRESP && a.n == 0, "PTR with trailing bytes is badresp, nothing kept");
    md_dns_answer_clear(&a);

    header(&p, 0, 1, 0, 0);
    put16(&p, 0xc00c);   /* question name pointing at itself */
    put16(&p, 1);
    put16(&p, 1);
    is_int(md_dns_parse(p.b, p.n, "bad.test", 1, &a), MD_PROTOCOL, "compression loop");
    md_dns_answer_clear(&a);

    /* Names read as c-ares 1.18 reads them: unprintable bytes as \DDD, a
     * backslash before . \ " ; ( ) @ $, lower case; a pointer may point
     * forward; 50 pointers in one name are followed, 51 are not. */
    header(&p, 0, 1, 1, 0);
    question(&p, "odd.test", 15);
    at = rr(&p, NULL, 15, 300); put16(&p, 10);
    put8(&p, 6); memcpy(p.b + p.n, "We.Ird", 6); p.n += 6;
    put8(&p, 6); memcpy(p.b + p.n, "sp ace", 6); p.n += 6;
    put8(&p, 3); put8(&p, 1); put8(&p, 'X'); put8(&p, 0xe9);
    put8(&p, 4); memcpy(p.b + p.n, "@$;\\", 4); p.n += 4;
    put8(&p, 0); rdlen(&p, at);
    is_int(md_dns_parse(p.b, p.n, "odd.test", 15, &a), MD_OK, "odd MX target parses");
    is_str(a.n ? a.mx[0].host : NULL, "we\\.ird.sp ace.\\001x\\233.\\@\\$\\;\\\\",
           "odd MX target escaped as c-ares does");
    md_dns_answer_clear(&a);

    for (int hops = 50; hops <= 51; hops++) {
        /* a TXT record whose data is a chain of pointers ending in "z",
         * then an A record owned by a pointer to that chain */
        header(&p, 0, 0, 2, 0);
        name(&p, "z");
        put16(&p, 16); put16(&p, 1); put32(&p, 60);
        at = p.n; put16(&p, 0);
        size_t chain = p.n;
        for (int k = 0; k < hops - 1; k++)
            put16(&p, 0xc000 | (unsigned)(chain + 2 * (k + 1)));
        name(&p, "z");
        rdlen(&p, at);
        put16(&p, 0xc000 | (unsigned)chain);
        put16(&p, 1); put16(&p, 1); put32(&p, 60); put16(&p, 4); put32(&p, 0xc0000201UL);
        md_dns_parse(p.b, p.n, "z", 1, &a);
        if (hops == 50)
            ok(a.outcome == MD_DNS_ANSWER && a.n == 1, "owner through 50 pointers is read");
        else
            is_int(a.outcome, MD_DNS_BADRESP, "owner through 51 pointers is a bad reply");
        md_dns_answer_clear(&a);
    }

    header(&p, 0, 1, 1, 0);
    question(&p, "fwd.test", 15);
    at = rr(&p, NULL, 15, 300); put16(&p, 10);
    put16(&p, 0xc000 | (unsigned)(p.n + 2 + 10 + 2));   /* to the name after this record */
    rdlen(&p, at);
    put16(&p, 0xc00c); put16(&p, 16); put16(&p, 1); put32(&p, 0); put16(&p, 0);
    name(&p, "later.test");
    is_int(md_dns_parse(p.b, p.n, "fwd.test", 15, &a), MD_OK, "forward pointer parses");
    is_str(a.n ? a.mx[0].host : NULL, "later.test", "forward pointer followed");
    md_dns_answer_clear(&a);

    /* Server specs. */
    static const struct { const char *in, *want; } specs[] = {
        { "127.0.0.1", "127.0.0.1:53" }, { "127.0.0.1:5353", "127.0.0.1:5353" },
        { "::1", "[::1]:53" }, { "[::1]:5353", "[::1]:5353" }, { "[2001:db8::1]", "[2001:db8::1]:53" },
        { "127.0.0.1:0", NULL }, { "127.0.0.1:70000", NULL }, { "localhost", NULL },
        { "[::1]x", NULL }, { "", NULL }, { "1.2.3.4:", NULL }, { "1.2.3.4:5x", NULL },
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char out[80];
        md_error err;
        md_status st = md_dns_server_parse(specs[i].in, out, sizeof out, &err);
        if (specs[i].want)
            is_str(st == MD_OK ? out : err.text, specs[i].want, "server spec '%s'", specs[i].in);
        else
            is_int(st, MD_CONFIG, "server spec '%s' rejected", specs[i].in);
    }
    size_t n;
    char **list = md_dns_server_list_split(" 127.0.0.1:53,[::1]:5353  192.0.2.1 ", &n);
    is_int(n, 3, "server list split");
    is_str(list ? list[1] : NULL, "[::1]:5353", "second server");
    md_dns_server_list_free(list);
    return tap_done();
}
