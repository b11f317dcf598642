/* Unit tests for lib/mx judging: a table of gathered routes and the verdict. */
#include "config.h"
#include <stdlib.h>
#include "mx/mx.h"
#include "dns/name.h"
#include "tap.h"

typedef struct hspec {
    const char *host;
    unsigned pref;
    md_dns_outcome a, aaaa;
    const char *addr;     /* one address or NULL */
    const char *cname;    /* alias target or NULL */
} hspec;

typedef struct tcase {
    const char *name;
    md_dns_outcome mx;
    int implicit;
    hspec hosts[4];
    size_t nhosts;
    md_severity want_status;
    const char *want_ids[4];   /* findings expected, in order */
} tcase;

#define OKH(h, p, addr) { h, p, MD_DNS_ANSWER, MD_DNS_NODATA, addr, NULL }
#define A MD_DNS_ANSWER
#define ND MD_DNS_NODATA
#define NX MD_DNS_NXDOMAIN

static const tcase cases[] = {
    { "healthy", A, 0, { OKH("mx1.ok.test", 10, "192.0.2.1"), OKH("mx2.ok.test", 20, "192.0.2.2") }, 2,
      MD_SEV_OK, { NULL } },
    { "nxdomain", NX, 0, { { 0 } }, 0, MD_SEV_CRITICAL, { "domain.nxdomain" } },
    { "servfail on MX", MD_DNS_SERVFAIL, 0, { { 0 } }, 0, MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "timeout on MX", MD_DNS_TIMEOUT, 0, { { 0 } }, 0, MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "refused on MX", MD_DNS_REFUSED, 0, { { 0 } }, 0, MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "bad reply on MX", MD_DNS_BADRESP, 0, { { 0 } }, 0, MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "null MX", A, 0, { { "", 0, 0, 0, NULL, NULL } }, 1, MD_SEV_CRITICAL, { "mx.null" } },
    { "null MX mixed", A, 0, { { "", 0, 0, 0, NULL, NULL }, OKH("mx.test", 10, "192.0.2.1") }, 2,
      MD_SEV_CRITICAL, { "mx.null", "mx.null_mixed" } },
    { "implicit", ND, 1, { OKH("implicit.test", 0, "192.0.2.3") }, 1, MD_SEV_WARNING, { "mx.implicit" } },
    { "implicit AAAA only", ND, 1, { { "v6.test", 0, ND, A, "2001:db8::1", NULL } }, 1,
      MD_SEV_WARNING, { "mx.implicit" } },
    { "none", ND, 1, { { "none.test", 0, ND, ND, NULL, NULL } }, 1, MD_SEV_CRITICAL, { "mx.none" } },
    { "implicit, A servfail", ND, 1, { { "sf.test", 0, MD_DNS_SERVFAIL, ND, NULL, NULL } }, 1,
      MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "cname target", A, 0, { { "alias.test", 10, A, ND, "192.0.2.4", "real.test" } }, 1,
      MD_SEV_WARNING, { "mx.target_cname" } },
    { "ip literal only", A, 0, { { "192.0.2.25", 10, 0, 0, NULL, NULL } }, 1,
      MD_SEV_CRITICAL, { "mx.target_ip_literal" } },
    { "ip literal plus good host", A, 0, { { "192.0.2.25", 10, 0, 0, NULL, NULL },
      OKH("mx.test", 20, "192.0.2.5") }, 2, MD_SEV_WARNING, { "mx.target_ip_literal" } },
    { "partial", A, 0, { OKH("mx1.test", 10, "192.0.2.6"), { "gone.test", 20, NX, NX, NULL, NULL } }, 2,
      MD_SEV_WARNING, { "mx.target_unresolvable" } },
    { "unresolvable only", A, 0, { { "noaddr.test", 10, ND, ND, NULL, NULL } }, 1,
      MD_SEV_CRITICAL, { "mx.target_unresolvable" } },
    { "two unresolvable", A, 0, { { "a.test", 10, ND, ND, NULL, NULL }, { "b.test", 20, NX, NX, NULL, NULL } }, 2,
      MD_SEV_CRITICAL, { "mx.target_unresolvable", "mx.target_unresolvable" } },
    { "host temp fail, other fine", A, 0, { OKH("mx1.test", 10, "192.0.2.7"),
      { "sf.test", 20, MD_DNS_SERVFAIL, MD_DNS_TIMEOUT, NULL, NULL } }, 2, MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "only host temp fail", A, 0, { { "sf.test", 10, MD_DNS_SERVFAIL, ND, NULL, NULL } }, 1,
      MD_SEV_UNKNOWN, { "dns.temporary" } },
    { "loopback target", A, 0, { OKH("lo.test", 10, "127.0.0.1") }, 1, MD_SEV_WARNING, { "mx.target_localhost" } },
    { "private target", A, 0, { OKH("rfc1918.test", 10, "10.1.2.3") }, 1, MD_SEV_WARNING, { "mx.target_internal" } },
    { "mapped loopback", A, 0, { OKH("m.test", 10, "::ffff:127.0.0.2") }, 1, MD_SEV_WARNING, { "mx.target_localhost" } },
    { "link-local v6", A, 0, { OKH("ll.test", 10, "fe80::1") }, 1, MD_SEV_WARNING, { "mx.target_internal" } },
};

/* md_mx_address_class: the one classification the MX check and the
 * sender's refusal of internal targets share. */
static void test_address_class(void)
{
    static const struct { const char *ip; md_mx_addr_class want; } t[] = {
        { "192.0.2.1", MD_MX_ADDR_PUBLIC }, { "8.8.8.8", MD_MX_ADDR_PUBLIC }, { "2001:db8::1", MD_MX_ADDR_PUBLIC },
        { "127.0.0.1", MD_MX_ADDR_LOOPBACK }, { "127.255.255.254", MD_MX_ADDR_LOOPBACK }, { "::1", MD_MX_ADDR_LOOPBACK },
        { "0.0.0.0", MD_MX_ADDR_UNSPECIFIED }, { "0.1.2.3", MD_MX_ADDR_UNSPECIFIED }, { "::", MD_MX_ADDR_UNSPECIFIED },
        { "10.0.0.1", MD_MX_ADDR_PRIVATE }, { "172.16.0.1", MD_MX_ADDR_PRIVATE }, { "172.31.255.255", MD_MX_ADDR_PRIVATE },
        { "172.32.0.1", MD_MX_ADDR_PUBLIC }, { "172.15.255.255", MD_MX_ADDR_PUBLIC },
        { "192.168.1.1", MD_MX_ADDR_PRIVATE }, { "fc00::1", MD_MX_ADDR_PRIVATE }, { "fdff::1", MD_MX_ADDR_PRIVATE },
        { "fec0::1", MD_MX_ADDR_PRIVATE },
        { "169.254.169.254", MD_MX_ADDR_LINK_LOCAL }, { "fe80::1", MD_MX_ADDR_LINK_LOCAL },
        { "febf::1", MD_MX_ADDR_LINK_LOCAL },
        { "100.64.0.1", MD_MX_ADDR_CGNAT }, { "100.127.255.255", MD_MX_ADDR_CGNAT },
        { "100.63.255.255", MD_MX_ADDR_PUBLIC }, { "100.128.0.0", MD_MX_ADDR_PUBLIC },
        { "224.0.0.1", MD_MX_ADDR_MULTICAST }, { "239.255.255.250", MD_MX_ADDR_MULTICAST }, { "ff02::1", MD_MX_ADDR_MULTICAST },
        { "240.0.0.1", MD_MX_ADDR_RESERVED }, { "255.255.255.255", MD_MX_ADDR_RESERVED },
        { "::ffff:127.0.0.1", MD_MX_ADDR_LOOPBACK }, { "::ffff:10.0.0.1", MD_MX_ADDR_PRIVATE },
        { "::ffff:169.254.1.1", MD_MX_ADDR_LINK_LOCAL }, { "::ffff:192.0.2.1", MD_MX_ADDR_PUBLIC },
        { "::127.0.0.1", MD_MX_ADDR_LOOPBACK }, { "64:ff9b::a00:1", MD_MX_ADDR_PRIVATE },
        { "not-an-ip", MD_MX_ADDR_INVALID }, { "", MD_MX_ADDR_INVALID },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        is_str(md_mx_address_class_name(md_mx_address_class(t[i].ip)), md_mx_address_class_name(t[i].want),
               "address class of %s", t[i].ip);
    is_int(md_mx_address_class(NULL), MD_MX_ADDR_INVALID, "address class of NULL");
}

static void build(const tcase *c, md_mx_route *r)
{
    memset(r, 0, sizeof *r);
    r->domain = md_xstrdup("domain.test");
    r->mx = c->mx;
    r->implicit = c->implicit;
    r->nhosts = c->nhosts;
    r->hosts = md_xcalloc(c->nhosts ? c->nhosts : 1, sizeof *r->hosts);
    for (size_t i = 0; i < c->nhosts; i++) {
        const hspec *s = &c->hosts[i];
        md_mx_host *h = &r->hosts[i];
        h->host = md_xstrdup(s->host);
        h->preference = s->pref;
        h->ip_literal = s->host[0] && md_dns_name_is_ip_literal(s->host);
        h->resolved = s->host[0] != '\0' && !h->ip_literal;
        h->a = s->a;
        h->aaaa = s->aaaa;
        if (s->addr) {
            h->addresses = md_xcalloc(1, sizeof *h->addresses);
            h->addresses[0] = md_xstrdup(s->addr);
            h->naddresses = 1;
        }
        if (s->cname) {
            h->cnames = md_xcalloc(1, sizeof *h->cnames);
            h->cnames[0] = md_xstrdup(s->cname);
            h->ncnames = 1;
        }
    }
}

int main(void)
{
    test_address_class();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *c = &cases[i];
        md_mx_route r;
        build(c, &r);
        md_report *rep = md_report_new("t", "domain.test");
        md_mx_route_evaluate(&r, NULL, rep);
        is_str(md_severity_name(md_report_status(rep)), md_severity_name(c->want_status),
               "%s: status", c->name);
        size_t want_n = 0;
        while (want_n < 4 && c->want_ids[want_n])
            want_n++;
        is_int(md_report_count(rep), want_n, "%s: number of findings", c->name);
        for (size_t k = 0; k < want_n && k < md_report_count(rep); k++)
            is_str(md_report_get(rep, k)->id, c->want_ids[k], "%s: finding %zu", c->name, k);
        json_t *j = md_report_to_json(rep);
        /* an implicit MX without an address is no route: empty list */
        size_t want_mx = c->implicit && c->hosts[0].addr == NULL ? 0 : c->nhosts;
        is_int(json_array_size(json_object_get(j, "mx")), want_mx, "%s: mx list in JSON", c->name);
        json_decref(j);
        md_report_free(rep);
        md_mx_route_clear(&r);
    }
    return tap_done();
}
