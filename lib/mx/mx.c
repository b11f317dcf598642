/* lib/mx: gathering an MX route over lib/dns and judging it. */
#include "config.h"
#include "mx.h"
#include "dns/name.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* --- the route ------------------------------------------------------------ */

static void host_clear(md_mx_host *h)
{
    free(h->host);
    for (size_t i = 0; i < h->naddresses; i++)
        free(h->addresses[i]);
    free(h->addresses);
    for (size_t i = 0; i < h->ncnames; i++)
        free(h->cnames[i]);
    free(h->cnames);
}

void md_mx_route_clear(md_mx_route *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nhosts; i++)
        host_clear(&r->hosts[i]);
    free(r->hosts);
    for (size_t i = 0; i < r->mx_ncnames; i++)
        free(r->mx_cnames[i]);
    free(r->mx_cnames);
    free(r->domain);
    free(r->unicode);
    memset(r, 0, sizeof *r);
}

void md_mx_route_free(md_mx_route *r)
{
    md_mx_route_clear(r);
    free(r);
}

/* --- judging -------------------------------------------------------------- */

static md_mx_addr_class class_v4(uint32_t a)
{
    if ((a >> 24) == 127)
        return MD_MX_ADDR_LOOPBACK;
    if ((a >> 24) == 0)
        return MD_MX_ADDR_UNSPECIFIED;
    if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8)   /* 10/8, 172.16/12, 192.168/16 */
        return MD_MX_ADDR_PRIVATE;
    if ((a >> 16) == 0xa9fe)
        return MD_MX_ADDR_LINK_LOCAL;
    if ((a >> 22) == (100u << 2 | 1))                                    /* 100.64/10 */
        return MD_MX_ADDR_CGNAT;
    if ((a >> 28) == 0xe)
        return MD_MX_ADDR_MULTICAST;
    if ((a >> 28) == 0xf)
        return MD_MX_ADDR_RESERVED;                                      /* 240/4, broadcast */
    return MD_MX_ADDR_PUBLIC;
}

md_mx_addr_class md_mx_address_class(const char *text)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (text == NULL)
        return MD_MX_ADDR_INVALID;
    if (inet_pton(AF_INET, text, &a4) == 1)
        return class_v4(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, text, &a6) != 1)
        return MD_MX_ADDR_INVALID;
    const uint8_t *b = a6.s6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return MD_MX_ADDR_LOOPBACK;
    if (IN6_IS_ADDR_UNSPECIFIED(&a6))
        return MD_MX_ADDR_UNSPECIFIED;
    static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
    if (IN6_IS_ADDR_V4MAPPED(&a6) || IN6_IS_ADDR_V4COMPAT(&a6) || memcmp(b, nat64, 12) == 0)
        return class_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    if ((b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0))   /* fc00::/7, fec0::/10 */
        return MD_MX_ADDR_PRIVATE;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return MD_MX_ADDR_LINK_LOCAL;
    if (b[0] == 0xff)
        return MD_MX_ADDR_MULTICAST;
    return MD_MX_ADDR_PUBLIC;
}

const char *md_mx_address_class_name(md_mx_addr_class c)
{
    static const char *const names[] = { "public", "loopback", "unspecified", "private", "link-local",
                                         "CGNAT", "multicast", "reserved", "invalid" };
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "invalid";
}

static int host_temporary(const md_mx_host *h)
{
    return h->naddresses == 0 && h->resolved
        && (md_dns_outcome_is_temporary(h->a) || md_dns_outcome_is_temporary(h->aaaa));
}

static const char *worse_detail(const md_mx_host *h)
{
    if (md_dns_outcome_is_temporary(h->a))
        return h->a_detail[0] ? h->a_detail : md_dns_outcome_name(h->a);
    return h->aaaa_detail[0] ? h->aaaa_detail : md_dns_outcome_name(h->aaaa);
}

static json_t *host_json(const md_mx_host *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "host", json_string(h->host[0] ? h->host : "."));
    json_object_set_new(o, "preference", json_integer(h->preference));
    json_t *addrs = json_array();
    for (size_t i = 0; i < h->naddresses; i++)
        json_array_append_new(addrs, json_string(h->addresses[i]));
    json_object_set_new(o, "addresses", addrs);
    if (h->resolved) {
        json_object_set_new(o, "a", json_string(md_dns_outcome_name(h->a)));
        json_object_set_new(o, "aaaa", json_string(md_dns_outcome_name(h->aaaa)));
    } else if (h->host[0] && !h->ip_literal) {
        json_object_set_new(o, "resolved", json_false());
    }
    if (h->ncnames) {
        json_t *c = json_array();
        for (size_t i = 0; i < h->ncnames; i++)
            json_array_append_new(c, json_string(h->cnames[i]));
        json_object_set_new(o, "cname", c);
    }
    if (h->ip_literal)
        json_object_set_new(o, "ip_literal", json_true());
    return o;
}

static void host_detail(const md_mx_host *h, int implicit, md_report *rep)
{
    char addrs[512];
    size_t o = 0;
    addrs[0] = '\0';
    for (size_t i = 0; i < h->naddresses && o < sizeof addrs - 50; i++)
        o += (size_t)snprintf(addrs + o, sizeof addrs - o, "%s%s", i ? ", " : "", h->addresses[i]);
    if (h->host[0] == '\0')
        md_report_add_detail(rep, "MX %u .  (null MX: no mail accepted)", h->preference);
    else if (implicit)
        md_report_add_detail(rep, h->naddresses ? "no MX; implicit MX %s -> %s"
                                                : "no MX, and no address at %s%s", h->host, addrs);
    else if (h->ip_literal)
        md_report_add_detail(rep, "MX %u %s  (an IP address, not a host name)", h->preference, h->host);
    else if (!h->resolved)
        md_report_add_detail(rep, "MX %u %s  (not resolved: over %d targets)", h->preference,
                             h->host, MD_MX_HOSTS_MAX);
    else if (h->naddresses == 0)   /* a lookup that failed says nothing about the address */
        md_report_add_detail(rep, "MX %u %s -> %s (A %s, AAAA %s)", h->preference, h->host,
                             md_dns_outcome_is_temporary(h->a) || md_dns_outcome_is_temporary(h->aaaa)
                             ? "address unknown" : "no address",
                             md_dns_outcome_name(h->a), md_dns_outcome_name(h->aaaa));
    else
        md_report_add_detail(rep, "MX %u %s%s%s -> %s", h->preference, h->host,
                             h->ncnames ? " = alias of " : "",
                             h->ncnames ? h->cnames[h->ncnames - 1] : "", addrs);
}

void md_mx_route_evaluate(const md_mx_route *r, const md_mx_options *opt, md_report *rep)
{
    int details = opt == NULL || !opt->no_details;
    const char *d = r->domain;
    json_t *mx = json_array();

    for (size_t i = 0; i < r->nhosts; i++) {
        /* An implicit MX without an address is no route at all. */
        if (!(r->implicit && r->hosts[i].naddresses == 0))
            json_array_append_new(mx, host_json(&r->hosts[i]));
        if (details)
            host_detail(&r->hosts[i], r->implicit, rep);
    }
    md_report_set(rep, "mx", mx);
    md_report_set(rep, "mx_lookup", json_string(md_dns_outcome_name(r->mx)));
    if (r->implicit)
        md_report_set(rep, "implicit_mx", json_true());

    if (md_dns_outcome_is_temporary(r->mx)) {
        md_finding *f = md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                                      "the MX lookup for %s failed (%s): the route is unknown, "
                                      "senders will retry later", d,
                                      r->mx_detail[0] ? r->mx_detail : md_dns_outcome_name(r->mx));
        md_finding_add_evidence(f, "%s MX: %s", d, md_dns_outcome_name(r->mx));
        return;
    }
    if (r->mx == MD_DNS_NXDOMAIN) {
        md_report_add(rep, "domain.nxdomain", MD_SEV_CRITICAL,
                      "%s does not exist (NXDOMAIN): no mail can be delivered to it", d);
        return;
    }

    if (r->implicit) {
        const md_mx_host *h = r->nhosts ? &r->hosts[0] : NULL;
        if (h && h->naddresses > 0) {
            md_report_add(rep, "mx.implicit", MD_SEV_WARNING,
                          "%s has no MX record: senders fall back to its own address "
                          "(implicit MX); publish an MX record", d);
        } else if (h && host_temporary(h)) {
            md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                          "%s has no MX record and its address lookup failed (%s)", d,
                          worse_detail(h));
        } else {
            md_report_add(rep, "mx.none", MD_SEV_CRITICAL,
                          "%s has no MX record and no address: mail cannot be delivered", d);
        }
        return;
    }

    /* MX answer. */
    size_t nnull = 0;
    for (size_t i = 0; i < r->nhosts; i++)
        nnull += r->hosts[i].host[0] == '\0';
    if (nnull > 0) {
        md_report_add(rep, "mx.null", MD_SEV_CRITICAL,
                      "%s publishes a null MX (RFC 7505): it accepts no mail at all", d);
        if (r->nhosts > nnull)
            md_report_add(rep, "mx.null_mixed", MD_SEV_CRITICAL,
                          "%s publishes a null MX together with %zu other MX record(s); "
                          "RFC 7505 forbids that", d, r->nhosts - nnull);
        return;
    }

    size_t usable = 0;
    for (size_t i = 0; i < r->nhosts; i++)
        if (!r->hosts[i].ip_literal && r->hosts[i].naddresses > 0)
            usable++;
    md_severity lost = usable > 0 ? MD_SEV_WARNING : MD_SEV_CRITICAL;

    size_t skipped = 0;
    for (size_t i = 0; i < r->nhosts; i++)
        skipped += !r->hosts[i].resolved && !r->hosts[i].ip_literal;
    if (skipped > 0)
        md_report_add(rep, "mx.too_many_hosts", MD_SEV_WARNING,
                      "%s lists %zu MX hosts; only the first %d were checked", d, r->nhosts,
                      MD_MX_HOSTS_MAX);

    for (size_t i = 0; i < r->nhosts; i++) {
        const md_mx_host *h = &r->hosts[i];
        if (h->ip_literal) {
            md_report_add(rep, "mx.target_ip_literal", lost,
                          "MX %u of %s points at the address %s, not at a host name; "
                          "senders reject or ignore it", h->preference, d, h->host);
        } else if (!h->resolved) {
            continue;   /* over MD_MX_HOSTS_MAX: reported once below */
        } else if (h->naddresses == 0 && host_temporary(h)) {
            /* Always unknown, as the contract says: we do not know whether
             * that host works, even when another one does. */
            md_report_add(rep, "dns.temporary", MD_SEV_UNKNOWN,
                          "the address lookup for MX host %s failed (%s)%s", h->host,
                          worse_detail(h), usable ? "; the other MX hosts have addresses" : "");
        } else if (h->naddresses == 0) {
            md_finding *f = md_report_add(rep, "mx.target_unresolvable", lost,
                                          "MX host %s of %s has no address (A: %s, AAAA: %s)%s",
                                          h->host, d, md_dns_outcome_name(h->a),
                                          md_dns_outcome_name(h->aaaa),
                                          usable ? "; mail goes to the other MX hosts"
                                                 : "; no MX host can receive mail");
            md_finding_add_evidence(f, "%s A %s, AAAA %s", h->host, md_dns_outcome_name(h->a),
                                    md_dns_outcome_name(h->aaaa));
        } else {
            if (h->ncnames > 0)
                md_report_add(rep, "mx.target_cname", MD_SEV_WARNING,
                              "MX host %s is an alias (CNAME) of %s; RFC 2181 10.3 requires the "
                              "MX target to be the host's own name", h->host,
                              h->cnames[h->ncnames - 1]);
            int local = 0, internal = 0;
            for (size_t k = 0; k < h->naddresses; k++) {
                md_mx_addr_class c = md_mx_address_class(h->addresses[k]);
                if ((c == MD_MX_ADDR_LOOPBACK || c == MD_MX_ADDR_UNSPECIFIED) && !local++)
                    md_report_add(rep, "mx.target_localhost", MD_SEV_WARNING,
                                  "MX host %s resolves to %s, a loopback or unspecified address",
                                  h->host, h->addresses[k]);
                else if (c != MD_MX_ADDR_PUBLIC && c != MD_MX_ADDR_LOOPBACK && c != MD_MX_ADDR_UNSPECIFIED &&
                         !internal++)
                    md_report_add(rep, "mx.target_internal", MD_SEV_WARNING,
                                  "MX host %s resolves to %s, a %s address that senders on the Internet "
                                  "cannot reach", h->host, h->addresses[k], md_mx_address_class_name(c));
            }
        }
    }
}

/* --- gathering ------------------------------------------------------------ */

typedef struct mx_job {
    md_dns *dns;
    md_mx_route *route;
    size_t pending;
    md_mx_resolved_fn done;
    void *done_arg;
} mx_job;

typedef struct addr_req {
    mx_job *job;
    size_t host;      /* index into route->hosts */
} addr_req;

static void job_finish(mx_job *job)
{
    md_mx_resolved_fn done = job->done;
    void *arg = job->done_arg;
    md_mx_route *r = job->route;
    free(job);
    done(arg, r);
}

static void on_addr(void *arg, const md_dns_answer *a)
{
    addr_req *req = arg;
    mx_job *job = req->job;
    md_mx_host *h = &job->route->hosts[req->host];

    if (a->type == MD_DNS_A) {
        h->a = a->outcome;
        snprintf(h->a_detail, sizeof h->a_detail, "%s", a->detail);
    } else {
        h->aaaa = a->outcome;
        snprintf(h->aaaa_detail, sizeof h->aaaa_detail, "%s", a->detail);
    }
    for (size_t i = 0; i < a->n; i++) {
        h->addresses = md_xrealloc(h->addresses, (h->naddresses + 1) * sizeof *h->addresses);
        h->addresses[h->naddresses++] = md_xstrdup(a->addr[i].text);
    }
    if (a->ncnames > 0 && h->ncnames == 0) {
        h->cnames = md_xcalloc(a->ncnames, sizeof *h->cnames);
        for (size_t i = 0; i < a->ncnames; i++)
            h->cnames[i] = md_xstrdup(a->cnames[i]);
        h->ncnames = a->ncnames;
    }
    free(req);
    if (--job->pending == 0)
        job_finish(job);
}

static void resolve_host(mx_job *job, size_t i)
{
    md_mx_host *h = &job->route->hosts[i];
    h->resolved = 1;
    for (int k = 0; k < 2; k++) {
        addr_req *req = md_xcalloc(1, sizeof *req);
        req->job = job;
        req->host = i;
        job->pending++;
        md_dns_query(job->dns, h->host, k == 0 ? MD_DNS_A : MD_DNS_AAAA, on_addr, req);
    }
}

static void on_mx(void *arg, const md_dns_answer *a)
{
    mx_job *job = arg;
    md_mx_route *r = job->route;

    r->mx = a->outcome;
    snprintf(r->mx_detail, sizeof r->mx_detail, "%s", a->detail);
    if (a->ncnames > 0) {
        r->mx_cnames = md_xcalloc(a->ncnames, sizeof *r->mx_cnames);
        for (size_t i = 0; i < a->ncnames; i++)
            r->mx_cnames[i] = md_xstrdup(a->cnames[i]);
        r->mx_ncnames = a->ncnames;
    }
    job->pending = 1;   /* held while queries are being queued */
    if (a->outcome == MD_DNS_NODATA) {
        r->implicit = 1;
        r->hosts = md_xcalloc(1, sizeof *r->hosts);
        r->hosts[0].host = md_xstrdup(r->domain);
        r->nhosts = 1;
        resolve_host(job, 0);
    } else if (a->outcome == MD_DNS_ANSWER) {
        int has_null = 0;
        r->nlisted = a->n;
        r->hosts = md_xcalloc(a->n, sizeof *r->hosts);
        r->nhosts = a->n;
        for (size_t i = 0; i < a->n; i++) {
            r->hosts[i].host = md_xstrdup(a->mx[i].host);
            r->hosts[i].preference = a->mx[i].preference;
            if (a->mx[i].host[0] == '\0')
                has_null = 1;
        }
        /* A null MX means no mail: nothing to resolve. */
        size_t resolved = 0;
        for (size_t i = 0; !has_null && i < r->nhosts; i++) {
            md_mx_host *h = &r->hosts[i];
            if (md_dns_name_is_ip_literal(h->host)) {
                h->ip_literal = 1;
            } else if (resolved < MD_MX_HOSTS_MAX) {
                resolved++;
                resolve_host(job, i);
            }
        }
    }
    if (--job->pending == 0)
        job_finish(job);
}

md_status md_mx_resolve(md_dns *dns, const char *domain, md_mx_resolved_fn done, void *arg,
                        md_error *err)
{
    char ascii[MD_DNS_NAME_MAX + 1], unicode[512];
    md_status st = md_dns_name_normalize(domain, ascii, sizeof ascii, unicode, sizeof unicode, err);
    if (st != MD_OK)
        return st;
    mx_job *job = md_xcalloc(1, sizeof *job);
    job->dns = dns;
    job->done = done;
    job->done_arg = arg;
    job->route = md_xcalloc(1, sizeof *job->route);
    job->route->domain = md_xstrdup(ascii);
    job->route->unicode = unicode[0] ? md_xstrdup(unicode) : NULL;
    md_dns_query(dns, ascii, MD_DNS_MX, on_mx, job);
    return MD_OK;
}

/* The blocking form's wait, on the heap: an abandoned gathering may end
 * after its waiter has returned. */
typedef struct mx_wait {
    md_mx_route *route;
    int finished, abandoned;
} mx_wait;

static void wait_done(void *arg, md_mx_route *route)
{
    mx_wait *w = arg;
    if (w->abandoned) {
        md_mx_route_free(route);
        free(w);
        return;
    }
    w->route = route;
    w->finished = 1;
}

md_mx_route *md_mx_resolve_wait(md_dns *dns, const char *domain, int64_t deadline_ms,
                                md_error *err)
{
    mx_wait *w = md_xcalloc(1, sizeof *w);
    if (md_mx_resolve(dns, domain, wait_done, w, err) != MD_OK) {
        free(w);
        return NULL;
    }
    if (deadline_ms == 0) {
        md_dns_run(dns);
    } else {
        int64_t now;
        while (!w->finished && (now = md_now_ms()) < deadline_ms) {
            int64_t left = deadline_ms - now;
            md_dns_step(dns, left < 100 ? (int)left : 100);
        }
    }
    if (!w->finished) {
        w->abandoned = 1;   /* wait_done frees it, if it ever runs */
        md_error_set(err, MD_TEMPFAIL, "mx.timeout", "the MX lookup for %.255s did not finish in time",
                     domain);
        return NULL;
    }
    md_mx_route *r = w->route;
    free(w);
    return r;
}

/* --- the check: gathering and judgement, one report per domain ------------- */

typedef struct check_job {
    const md_mx_options *opt;
    char *input;
    md_check_done_fn done;
    void *done_arg;
} check_job;

static void check_resolved(void *arg, md_mx_route *route)
{
    check_job *job = arg;
    char subject[1024];
    if (route->unicode)
        snprintf(subject, sizeof subject, "%s (%s)", route->unicode, route->domain);
    else
        snprintf(subject, sizeof subject, "%s", route->domain);
    md_report *rep = md_report_new("maildiag-mx", subject);
    json_t *in = json_string(job->input);
    md_report_set(rep, "input", in ? in : json_string("(not UTF-8)"));
    md_report_set(rep, "domain", json_string(route->domain));
    if (route->unicode) {
        md_report_set(rep, "domain_unicode", json_string(route->unicode));
        if (job->opt == NULL || !job->opt->no_details)
            md_report_add_detail(rep, "IDN: %s = %s", route->unicode, route->domain);
    }
    md_mx_route_evaluate(route, job->opt, rep);
    md_mx_route_free(route);
    free(job->input);
    md_check_done_fn done = job->done;
    void *done_arg = job->done_arg;
    free(job);
    done(done_arg, rep);
}

void md_mx_check(md_dns *dns, const char *input, void *check_arg,
                 md_check_done_fn done, void *done_arg)
{
    md_error err;
    check_job *job = md_xcalloc(1, sizeof *job);
    job->opt = check_arg;
    job->input = md_xstrdup(input);
    job->done = done;
    job->done_arg = done_arg;
    if (md_mx_resolve(dns, input, check_resolved, job, &err) != MD_OK) {
        md_report *rep = md_report_new("maildiag-mx", *input ? input : "(empty)");
        /* "domain" holds the input as given, so consumers always find it. */
        json_t *in = json_string(input);
        if (in == NULL)
            in = json_string("(not UTF-8)");
        md_report_set(rep, "input", in);
        md_report_set(rep, "domain", json_incref(in));
        md_report_add(rep, "input.invalid_domain", MD_SEV_UNKNOWN, "%s", err.text);
        free(job->input);
        free(job);
        done(done_arg, rep);
    }
}
