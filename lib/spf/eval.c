/*
 * lib/spf eval: check_host() (RFC 7208 section 4) walked over lib/dns, and
 * the combination with libspf2's verdict.  See spf.h for why the walk
 * exists beside libspf2.
 *
 * DNS: every answer is fetched once into a per-evaluation table (the
 * "prefetch"), which libspf2's DNS layer then reads, so both engines see the
 * same data and the trace lists every query with its outcome.  The answers
 * come from a source (spf_source): lib/dns for md_spf_evaluate and
 * md_spf_lint, a table in memory for tests and fuzzing.
 *
 * The walk builds the typed result (spf.h) and adds its findings to the
 * caller's report as it goes; report.c describes the result.
 */
#include "config.h"
#include "spf-int.h"
#include "dns/name.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 32

typedef struct memo {
    char *name;
    int type;
    md_dns_answer *ans;
    struct memo *next;
} memo;

typedef struct ev {
    spf_source src;
    int64_t deadline;
    int family;                 /* 4 or 6 (v4-mapped IPv6 is 4) */
    unsigned char ip[16];
    char ipstr[48];             /* canonical text */
    char inib[80];              /* %{i}: dotted quad or dotted nibbles */
    char *sender, *local, *sdomain, *helo;
    const char *receiver;
    const char *cur;            /* %{d} */
    char *pval;                 /* %{p} last computed */
    char tbuf[24];
    int lookups, voids;
    memo *memo;
    md_spf_query *queries;      /* the trace, handed to the result */
    size_t nqueries, qcap;
    md_spf_node *root;          /* the tree, handed to the result */
    md_spf_by origin;           /* who asks: the walk, libspf2, lint */
    md_report *rep;             /* findings go here */
    /* verdict details */
    const char *err_id;         /* finding id explaining an error result */
    char error[320];
    char mechanism[300];
    char *explanation;
    int withheld;               /* TXT strings withheld from libspf2 */
    char l2_refused[200];       /* why libspf2 is not asked, "" when it is */
} ev;

/* --- the tree ------------------------------------------------------------ */

/* A new node, appended to parent's children, or the root when parent is
 * NULL (a walk has one top: check_host or lint_node at depth 0). */
static md_spf_node *node_new(ev *e, md_spf_node *parent, md_spf_node_kind kind, md_spf_via via,
                             const char *domain)
{
    md_spf_node *n = md_xcalloc(1, sizeof *n);
    n->kind = kind;
    n->via = via;
    n->domain = domain ? md_xstrdup(domain) : NULL;
    if (parent != NULL) {
        parent->children = md_xrealloc(parent->children,
                                       (parent->nchildren + 1) * sizeof *parent->children);
        parent->children[parent->nchildren++] = n;
    } else {
        spf_node_free(e->root);
        e->root = n;
    }
    return n;
}

static void node_set(char **field, const char *s, size_t len)
{
    free(*field);
    *field = md_xstrndup(s, len);
}

/* The findings of a walk: our own text, or text with untrusted parts, which
 * lib/report sanitizes. */
static void add_finding(ev *e, const char *id, md_severity sev, const char *summary,
                        const char *evidence)
{
    md_finding *f = md_report_add(e->rep, id, sev, "%s", summary);
    if (evidence && *evidence)
        md_finding_add_evidence(f, "%s", evidence);
}

/* --- DNS: one table per evaluation ------------------------------------ */

static int name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 253)
        return 0;
    size_t lab = 0;
    for (size_t i = 0; i < len; i++) {
        if (n[i] == '.') {
            if (lab == 0)
                return 0;
            lab = 0;
        } else if (++lab > 63) {
            return 0;
        }
    }
    return 1;
}

static md_dns_answer *fake_answer(const char *name, int type, md_dns_outcome o, const char *why)
{
    md_dns_answer *a = md_xcalloc(1, sizeof *a);
    a->outcome = o;
    a->type = type;
    a->qname = md_xstrdup(name);
    snprintf(a->detail, sizeof a->detail, "%s", why);
    return a;
}

static const char *type_name(int t)
{
    switch (t) {
    case MD_DNS_A: return "A";
    case MD_DNS_AAAA: return "AAAA";
    case MD_DNS_MX: return "MX";
    case MD_DNS_TXT: return "TXT";
    case MD_DNS_PTR: return "PTR";
    default: return "?";
    }
}

static const md_dns_answer *lookup(ev *e, const char *qname, int type)
{
    char *name = md_xstrdup(qname);
    size_t nl = strlen(name);
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)tolower((unsigned char)name[i]);
    if (nl > 1 && name[nl - 1] == '.')
        name[--nl] = '\0';
    for (memo *m = e->memo; m; m = m->next)
        if (m->type == type && strcmp(m->name, name) == 0) {
            free(name);
            return m->ans;
        }
    md_dns_answer *ans;
    if (!name_valid(name)) {
        /* RFC 7208 4.3/5: a name no query can be made for is treated as
         * non-existent. */
        ans = fake_answer(name, type, MD_DNS_NXDOMAIN, "not a valid domain name: not queried");
    } else if (md_now_ms() > e->deadline) {
        ans = fake_answer(name, type, MD_DNS_TIMEOUT, "evaluation time limit reached: not queried");
    } else {
        ans = e->src.resolve(e->src.arg, name, type);
    }
    memo *m = md_xcalloc(1, sizeof *m);
    m->name = name;
    m->type = type;
    m->ans = ans;
    m->next = e->memo;
    e->memo = m;
    if (e->nqueries == e->qcap) {
        e->qcap = e->qcap ? e->qcap * 2 : 16;
        e->queries = md_xrealloc(e->queries, e->qcap * sizeof *e->queries);
    }
    e->queries[e->nqueries++] = (md_spf_query){
        .name = md_xstrndup(name, nl), .type = type, .outcome = ans->outcome, .records = ans->n,
        .by = e->origin, .detail = ans->detail[0] ? md_xstrdup(ans->detail) : NULL };
    return ans;
}

static int is_void(const md_dns_answer *a)
{
    return a->outcome == MD_DNS_NXDOMAIN || a->outcome == MD_DNS_NODATA
        || (a->outcome == MD_DNS_ANSWER && a->n == 0);
}

static int is_temp(const md_dns_answer *a)
{
    return md_dns_outcome_is_temporary(a->outcome);
}

/* --- helpers ------------------------------------------------------------ */

static int cidr_match(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static int addr_match(const ev *e, const md_dns_answer *a, int c4, int c6)
{
    for (size_t i = 0; i < a->n; i++) {
        const md_dns_addr *ad = &a->addr[i];
        if (e->family == 4 && ad->family == AF_INET && cidr_match(ad->bytes, e->ip, c4 < 0 ? 32 : c4))
            return 1;
        if (e->family == 6 && ad->family == AF_INET6 && cidr_match(ad->bytes, e->ip, c6 < 0 ? 128 : c6))
            return 1;
    }
    return 0;
}

static void fail_with(ev *e, const char *id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_with(ev *e, const char *id, const char *fmt, ...)
{
    if (e->err_id != NULL)
        return;   /* keep the first, innermost cause */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof e->error, fmt, ap);
    va_end(ap);
    e->err_id = id;
}

static void reverse_name(const ev *e, char *out, size_t size)
{
    if (e->family == 4) {
        snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", e->ip[3], e->ip[2], e->ip[1], e->ip[0]);
        return;
    }
    size_t n = 0;
    for (int i = 15; i >= 0; i--)
        n += (size_t)snprintf(out + n, size - n, "%x.%x.", e->ip[i] & 0xf, e->ip[i] >> 4);
    snprintf(out + n, size - n, "ip6.arpa");
}

static int is_subdomain(const char *name, const char *dom)
{
    size_t nl = strlen(name), dl = strlen(dom);
    if (dl > 0 && dom[dl - 1] == '.')
        dl--;
    if (nl > 0 && name[nl - 1] == '.')
        nl--;
    if (nl == dl)
        return strncasecmp(name, dom, nl) == 0;
    return nl > dl && name[nl - dl - 1] == '.' && strncasecmp(name + nl - dl, dom, dl) == 0;
}

/* PTR names of the client that resolve back to it (RFC 7208 5.5), at most
 * MD_SPF_MAX_NAMES looked at; DNS errors skip a name. */
static char **validated_names(ev *e, size_t *n)
{
    char rev[80];
    char **out = NULL;
    *n = 0;
    reverse_name(e, rev, sizeof rev);
    const md_dns_answer *p = lookup(e, rev, MD_DNS_PTR);
    if (p->outcome != MD_DNS_ANSWER)
        return NULL;
    size_t lim = p->n < MD_SPF_MAX_NAMES ? p->n : MD_SPF_MAX_NAMES;
    char **names = md_xcalloc(lim + 1, sizeof *names);
    for (size_t i = 0; i < lim; i++)
        names[i] = md_xstrdup(p->names[i]);
    for (size_t i = 0; i < lim; i++) {
        const md_dns_answer *a = lookup(e, names[i], e->family == 4 ? MD_DNS_A : MD_DNS_AAAA);
        if (a->outcome == MD_DNS_ANSWER && addr_match(e, a, -1, -1)) {
            out = md_xrealloc(out, (*n + 1) * sizeof *out);
            out[(*n)++] = names[i];
            names[i] = NULL;
        }
    }
    for (size_t i = 0; i < lim; i++)
        free(names[i]);
    free(names);
    return out;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *macro_var(void *arg, char l)
{
    ev *e = arg;
    switch (l) {
    case 's': return e->sender;
    case 'l': return e->local;
    case 'o': return e->sdomain;
    case 'd': return e->cur;
    case 'i': return e->inib;
    case 'v': return e->family == 4 ? "in-addr" : "ip6";
    case 'h': return e->helo ? e->helo : "";
    case 'c': return e->ipstr;
    case 'r': return e->receiver;
    case 't':
        snprintf(e->tbuf, sizeof e->tbuf, "%lld", (long long)time(NULL));
        return e->tbuf;
    case 'p': {
        size_t n;
        char **v = validated_names(e, &n);
        free(e->pval);
        e->pval = NULL;
        for (size_t i = 0; i < n && !e->pval; i++)
            if (is_subdomain(v[i], e->cur))
                e->pval = md_xstrdup(v[i]);
        if (!e->pval)
            e->pval = md_xstrdup(n > 0 ? v[0] : "unknown");
        free_names(v, n);
        return e->pval;
    }
    default: return "";
    }
}

/* Expands a domain-spec and shortens it to 253 characters by dropping
 * labels on the left (RFC 7208 7.3). */
static char *expand_domain(ev *e, const char *spec)
{
    spf_macro_vars v = { macro_var, e };
    char *s = spf_macro_expand(spec, strlen(spec), &v, 0);
    if (s == NULL)
        return NULL;
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        s[--len] = '\0';
    char *p = s;
    while (strlen(p) > 253) {
        char *dot = strchr(p, '.');
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (p != s)
        memmove(s, p, strlen(p) + 1);
    return s;
}

/* --- check_host() ------------------------------------------------------- */

enum { NOMATCH = 0, MATCH = 1, ERROR = 2 };

static md_spf_code check_host(ev *e, const char *domain, int want_exp, md_spf_via via,
                              md_spf_node *parent, int depth);

/* Counts one DNS-querying term (RFC 7208 4.6.4): 0, or -1 over the limit. */
static int count_term(ev *e, md_spf_node *node, const spf_term *t, const char *what)
{
    e->lookups++;
    node->lookups++;
    if (e->lookups > MD_SPF_MAX_TERMS) {
        fail_with(e, "spf.lookup_limit",
                  "more than %d DNS-querying terms in total: '%s' in %s is number %d",
                  MD_SPF_MAX_TERMS, t ? t->text : what, e->cur, e->lookups);
        return -1;
    }
    return 0;
}

static int count_void(ev *e, const char *what)
{
    if (++e->voids > MD_SPF_MAX_VOID) {
        fail_with(e, "spf.void_limit", "more than %d void lookups: '%s' in %s is number %d",
                  MD_SPF_MAX_VOID, what, e->cur, e->voids);
        return -1;
    }
    return 0;
}

static int temp_error(ev *e, const md_dns_answer *a, const char *what)
{
    fail_with(e, "spf.dns_temporary", "DNS %s lookup of %s for '%s' failed: %s%s%s",
              type_name(a->type), a->qname, what, md_dns_outcome_name(a->outcome),
              a->detail[0] ? ": " : "", a->detail);
    return ERROR;
}

/* The first step with the answer of a, mx or exists: a temporary failure
 * is temperror; a void answer counts against the void limit (permerror past
 * it) and matches nothing.  Returns -1 when the answer holds data to match
 * against, else the term's result, with *code set where it decides one. */
static int answer_gate(ev *e, const md_dns_answer *a, const char *what, md_spf_code *code)
{
    if (is_temp(a)) {
        *code = MD_SPF_TEMPERROR;
        return temp_error(e, a, what);
    }
    if (is_void(a)) {
        if (count_void(e, what) != 0) {
            *code = MD_SPF_PERMERROR;
            return ERROR;
        }
        return NOMATCH;
    }
    return -1;
}

static int eval_term(ev *e, const spf_term *t, const char *domain, md_spf_node *node,
                     int depth, md_spf_code *code)
{
    char *target = NULL;
    int rc = NOMATCH;

    switch (t->mech) {
    case M_ALL:
        return MATCH;
    case M_IP4:
        return e->family == 4 && cidr_match(t->addr, e->ip, t->c4 < 0 ? 32 : t->c4);
    case M_IP6:
        return e->family == 6 && cidr_match(t->addr, e->ip, t->c6 < 0 ? 128 : t->c6);
    default:
        break;
    }
    if (count_term(e, node, t, NULL) != 0) {
        *code = MD_SPF_PERMERROR;
        return ERROR;
    }
    target = t->arg ? expand_domain(e, t->arg) : md_xstrdup(domain);
    if (target == NULL) {
        fail_with(e, "spf.syntax", "cannot expand the macros of '%s' in %s", t->text, domain);
        *code = MD_SPF_PERMERROR;
        return ERROR;
    }
    int atype = e->family == 4 ? MD_DNS_A : MD_DNS_AAAA;
    switch (t->mech) {
    case M_A: {
        const md_dns_answer *a = lookup(e, target, atype);
        if ((rc = answer_gate(e, a, t->text, code)) < 0)
            rc = addr_match(e, a, t->c4, t->c6);
        break;
    }
    case M_MX: {
        const md_dns_answer *m = lookup(e, target, MD_DNS_MX);
        if ((rc = answer_gate(e, m, t->text, code)) >= 0)
            break;
        rc = NOMATCH;
        if (m->n > MD_SPF_MAX_NAMES) {
            fail_with(e, "spf.mx_limit", "'%s' in %s: %s has %zu MX records, over the limit of %d",
                      t->text, domain, target, m->n, MD_SPF_MAX_NAMES);
            *code = MD_SPF_PERMERROR;
            rc = ERROR;
            break;
        }
        size_t n = m->n;
        char **hosts = md_xcalloc(n + 1, sizeof *hosts);
        for (size_t i = 0; i < n; i++)
            hosts[i] = md_xstrdup(m->mx[i].host);
        for (size_t i = 0; i < n && rc == NOMATCH; i++) {
            if (hosts[i][0] == '\0')
                continue;   /* null MX "." */
            const md_dns_answer *a = lookup(e, hosts[i], atype);
            if (is_temp(a)) {
                rc = temp_error(e, a, t->text);
                *code = MD_SPF_TEMPERROR;
            } else if (a->outcome == MD_DNS_ANSWER && addr_match(e, a, t->c4, t->c6)) {
                rc = MATCH;
            }
        }
        free_names(hosts, n);
        break;
    }
    case M_PTR: {
        char rev[80];
        reverse_name(e, rev, sizeof rev);
        const md_dns_answer *p = lookup(e, rev, MD_DNS_PTR);
        if (is_void(p) && count_void(e, t->text) != 0) {
            *code = MD_SPF_PERMERROR;
            rc = ERROR;
            break;
        }
        size_t n;
        char **v = validated_names(e, &n);
        for (size_t i = 0; i < n && rc == NOMATCH; i++)
            if (is_subdomain(v[i], target))
                rc = MATCH;
        free_names(v, n);
        break;
    }
    case M_EXISTS: {
        const md_dns_answer *a = lookup(e, target, MD_DNS_A);
        if ((rc = answer_gate(e, a, t->text, code)) < 0)
            rc = MATCH;
        break;
    }
    case M_INCLUDE: {
        md_spf_code r = check_host(e, target, 0, MD_SPF_VIA_INCLUDE, node, depth + 1);
        switch (r) {
        case MD_SPF_PASS: rc = MATCH; break;
        case MD_SPF_FAIL: case MD_SPF_SOFTFAIL: case MD_SPF_NEUTRAL: rc = NOMATCH; break;
        case MD_SPF_NONE:
            fail_with(e, "spf.include_no_record", "'%s' in %s: %s has no SPF record",
                      t->text, domain, target);
            *code = MD_SPF_PERMERROR;
            rc = ERROR;
            break;
        default:
            *code = r;
            rc = ERROR;
            break;
        }
        break;
    }
    }
    free(target);
    return rc;
}

/* RFC 7208 6.2: the explanation, or NULL when there is none to be had. */
static char *explanation(ev *e, const char *spec)
{
    char *name = expand_domain(e, spec);
    if (name == NULL)
        return NULL;
    const md_dns_answer *a = lookup(e, name, MD_DNS_TXT);
    free(name);
    if (a->outcome != MD_DNS_ANSWER || a->n != 1)
        return NULL;
    const md_dns_txt *t = &a->txt[0];
    if (memchr(t->data, '\0', t->len) != NULL)
        return NULL;
    spf_macro_vars v = { macro_var, e };
    return spf_macro_expand(t->data, t->len, &v, 1);
}

static md_spf_code check_host(ev *e, const char *domain, int want_exp, md_spf_via via,
                              md_spf_node *parent, int depth)
{
    md_spf_node *node = node_new(e, parent, MD_SPF_NODE_RECORD, via, domain);
    md_spf_code code = MD_SPF_NEUTRAL;
    spf_record *rec = NULL;
    const char *saved_cur = e->cur;
    e->cur = domain;

    if (depth > MAX_DEPTH) {
        fail_with(e, "spf.lookup_limit", "include/redirect nesting deeper than %d", MAX_DEPTH);
        code = MD_SPF_PERMERROR;
        goto done;
    }
    /* RFC 7208 4.4, 4.5: the TXT records at the domain, exactly one "v=spf1". */
    const md_dns_answer *a = lookup(e, domain, MD_DNS_TXT);
    if (is_temp(a)) {
        temp_error(e, a, "record lookup");
        code = MD_SPF_TEMPERROR;
        goto done;
    }
    const md_dns_txt *found = NULL;
    size_t nfound = 0;
    for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++)
        if (md_spf_is_record(a->txt[i].data, a->txt[i].len)) {
            found = &a->txt[i];
            nfound++;
        }
    if (nfound == 0) {
        code = MD_SPF_NONE;
        goto done;
    }
    if (nfound > 1) {
        fail_with(e, "spf.multiple_records", "%s publishes %zu SPF records (RFC 7208 4.5: permerror)",
                  domain, nfound);
        code = MD_SPF_PERMERROR;
        goto done;
    }
    node_set(&node->record, found->data, found->len);
    rec = spf_record_parse(found->data, found->len);
    if (rec->bad || memchr(found->data, '\0', found->len) != NULL) {
        fail_with(e, "spf.syntax", "syntax error in the record of %s %s", domain,
                  rec->bad ? rec->error : "(NUL byte)");
        node_set(&node->error, rec->error, strlen(rec->error));
        code = MD_SPF_PERMERROR;
        goto done;
    }
    /* A digit transformer over 128 is valid (RFC 7208 7.1: all parts), but
     * libspf2 1.2.10 refuses it, or with ten or more digits overflows an
     * int reading it (and could take %{d4294967297} as %{d1}).  Its verdict
     * would be about its parser, not the policy, so it is not asked. */
    if (e->l2_refused[0] == '\0' && !spf_macro_libspf2_fits(found->data, found->len))
        snprintf(e->l2_refused, sizeof e->l2_refused,
                 "the record of %.80s has a macro digit transformer over 128: valid (RFC 7208"
                 " 7.1: all parts), but libspf2 1.2.10 refuses it", domain);
    for (size_t i = 0; i < rec->nterms; i++) {
        const spf_term *t = &rec->terms[i];
        md_spf_code ec = MD_SPF_PERMERROR;
        int m = eval_term(e, t, domain, node, depth, &ec);
        if (m == ERROR) {
            code = ec;
            goto done;
        }
        if (m == MATCH) {
            switch (t->qual) {
            case '-': code = MD_SPF_FAIL; break;
            case '~': code = MD_SPF_SOFTFAIL; break;
            case '?': code = MD_SPF_NEUTRAL; break;
            default: code = MD_SPF_PASS; break;
            }
            node_set(&node->matched, t->text, strlen(t->text));
            if (depth == 0 || via == MD_SPF_VIA_REDIRECT)
                snprintf(e->mechanism, sizeof e->mechanism, "%s", t->text);
            if (code == MD_SPF_FAIL && want_exp && rec->exp) {
                free(e->explanation);
                e->explanation = explanation(e, rec->exp);
            }
            goto done;
        }
    }
    /* RFC 7208 6.1: redirect only when no mechanism matched (so never when
     * the record has "all", which always matches). */
    if (rec->redirect) {
        if (count_term(e, node, NULL, "redirect") != 0) {
            code = MD_SPF_PERMERROR;
            goto done;
        }
        char *target = expand_domain(e, rec->redirect);
        if (target == NULL) {
            fail_with(e, "spf.syntax", "cannot expand redirect=%s in %s", rec->redirect, domain);
            code = MD_SPF_PERMERROR;
            goto done;
        }
        code = check_host(e, target, want_exp, MD_SPF_VIA_REDIRECT, node, depth + 1);
        if (code == MD_SPF_NONE) {
            fail_with(e, "spf.redirect_no_record", "redirect=%s in %s: %s has no SPF record",
                      rec->redirect, domain, target);
            code = MD_SPF_PERMERROR;
        }
        free(target);
        goto done;
    }
    code = MD_SPF_NEUTRAL;
done:
    node->has_result = 1;
    node->result = code;
    spf_record_free(rec);
    e->cur = saved_cur;
    return code;
}

/* --- request ------------------------------------------------------------ */

/* RFC 7208 4.3: a usable, multi-label domain name. */
static int domain_ok(const char *d)
{
    if (d == NULL || *d == '\0' || d[0] == '[' || strchr(d, '.') == NULL)
        return 0;
    char *c = md_xstrdup(d);
    size_t l = strlen(c);
    if (l > 1 && c[l - 1] == '.')
        c[l - 1] = '\0';
    int ok = name_valid(c) && strchr(c, '.') != NULL;
    free(c);
    return ok;
}

static int set_ip(ev *e, const char *ip)
{
    unsigned char b[16];
    if (ip == NULL)
        return -1;
    if (inet_pton(AF_INET, ip, b) == 1) {
        e->family = 4;
        memcpy(e->ip, b, 4);
    } else if (inet_pton(AF_INET6, ip, b) == 1) {
        static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
        if (memcmp(b, mapped, 12) == 0) {
            e->family = 4;
            memcpy(e->ip, b + 12, 4);
        } else {
            e->family = 6;
            memcpy(e->ip, b, 16);
        }
    } else {
        return -1;
    }
    inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->ip, e->ipstr, sizeof e->ipstr);
    if (e->family == 4) {
        snprintf(e->inib, sizeof e->inib, "%s", e->ipstr);
    } else {
        size_t n = 0;
        for (int i = 0; i < 16; i++)
            n += (size_t)snprintf(e->inib + n, sizeof e->inib - n, "%s%x.%x", i ? "." : "",
                                  e->ip[i] >> 4, e->ip[i] & 0xf);
    }
    return 0;
}

static void ev_clear(ev *e)
{
    memo *m = e->memo;
    while (m) {
        memo *n = m->next;
        md_dns_answer_free(m->ans);
        free(m->name);
        free(m);
        m = n;
    }
    free(e->sender);
    free(e->local);
    free(e->sdomain);
    free(e->helo);
    free(e->pval);
    free(e->explanation);
    for (size_t i = 0; i < e->nqueries; i++) {
        free(e->queries[i].name);
        free(e->queries[i].detail);
    }
    free(e->queries);
    spf_node_free(e->root);
}

/* The libspf2 DNS layer reads the same table; anything the walk did not
 * need is asked through lib/dns and marked "libspf2" in the trace. */
static const md_dns_answer *libspf2_lookup(void *arg, const char *name, int type)
{
    ev *e = arg;
    return lookup(e, name, type);
}

/* Quotes a header value when it is not a plain token (RFC 5322 atoms plus
 * '@' and '.'); untrusted input is sanitized first, to ASCII (md_sanitize):
 * header lines are ASCII. */
static char *hdr_value(const char *v)
{
    char s[300];
    md_sanitize(s, sizeof s, v ? v : "", v ? strlen(v) : 0);
    int plain = s[0] != '\0';
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-/=?^_`{|}~.@:", *p) == NULL)
            plain = 0;
    if (plain)
        return md_xstrdup(s);
    char q[620];
    size_t n = 0;
    q[n++] = '"';
    for (const char *p = s; *p && n < sizeof q - 3; p++) {
        if (*p == '"' || *p == '\\')
            q[n++] = '\\';
        q[n++] = *p;
    }
    q[n++] = '"';
    q[n] = '\0';
    return md_xstrdup(q);
}

static void headers(ev *e, const md_spf_request *req, md_spf_code code, const char *domain,
                    md_spf_result *out)
{
    char dom[256], cm[600];
    md_sanitize(dom, sizeof dom, domain, strlen(domain));
    switch (code) {
    case MD_SPF_NONE:
        snprintf(cm, sizeof cm, "domain of %s does not provide an SPF record", dom); break;
    case MD_SPF_NEUTRAL:
        snprintf(cm, sizeof cm, "%s is neither permitted nor denied by domain of %s", e->ipstr, dom); break;
    case MD_SPF_PASS:
        snprintf(cm, sizeof cm, "domain of %s designates %s as permitted sender", dom, e->ipstr); break;
    case MD_SPF_FAIL:
        snprintf(cm, sizeof cm, "domain of %s does not designate %s as permitted sender", dom, e->ipstr); break;
    case MD_SPF_SOFTFAIL:
        snprintf(cm, sizeof cm, "transitioning domain of %s does not designate %s as permitted sender",
                 dom, e->ipstr); break;
    case MD_SPF_TEMPERROR:
        snprintf(cm, sizeof cm, "error in processing during lookup of %s", dom); break;
    default:
        snprintf(cm, sizeof cm, "permanent error in processing domain of %s", dom); break;
    }
    for (char *p = cm; *p; p++)
        if (*p == '(' || *p == ')' || *p == '\\')
            *p = '?';
    const char *recv = req->receiver ? req->receiver : "maildiag";
    /* envelope-from is the MAIL FROM as given ("<>" for the null path);
     * smtp.mailfrom below is the identity that was checked */
    const char *given = req->sender && *req->sender ? req->sender : "<>";
    char *from = hdr_value(given), *ident = hdr_value(e->sender), *helo = hdr_value(e->helo ? e->helo : ""),
         *rcv = hdr_value(recv), *mech = hdr_value(e->mechanism);
    int helo_id = req->identity == MD_SPF_ID_HELO || req->sender == NULL || req->sender[0] == '\0';
    char *problem = NULL;
    if (code == MD_SPF_PERMERROR || code == MD_SPF_TEMPERROR)
        problem = hdr_value(e->error[0] ? e->error : md_spf_code_name(code));
    /* Received-SPF: RESULT (RCV: COMMENT) client-ip=..; envelope-from=..;
     * helo=..; receiver=..; identity=..;[ mechanism=..;][ problem=..]
     * (every part is ASCII: sanitized above) */
    const char *const rs[] = {
        "Received-SPF: ", md_spf_code_name(code), " (", rcv, ": ", cm, ") client-ip=", e->ipstr,
        "; envelope-from=", from, "; helo=", helo, "; receiver=", rcv, "; identity=",
        helo_id ? "helo" : "mailfrom", ";", e->mechanism[0] ? " mechanism=" : "",
        e->mechanism[0] ? mech : "", e->mechanism[0] ? ";" : "",
        problem ? " problem=" : "", problem ? problem : "",
    };
    const char *const ar[] = {
        "Authentication-Results: ", rcv, "; spf=", md_spf_code_name(code), " smtp.",
        helo_id ? "helo" : "mailfrom", "=", helo_id ? helo : ident,
    };
    md_buf b = { 0 };
    for (size_t i = 0; i < sizeof rs / sizeof *rs; i++)
        md_buf_add(&b, rs[i], strlen(rs[i]));
    out->received_spf = md_xstrndup(b.data, b.len);
    b.len = 0;
    for (size_t i = 0; i < sizeof ar / sizeof *ar; i++)
        md_buf_add(&b, ar[i], strlen(ar[i]));
    out->authentication_results = md_xstrndup(b.data, b.len);
    md_buf_free(&b);
    free(from); free(ident); free(helo); free(rcv); free(mech); free(problem);
}

static const char *const result_summary[] = {
    "no SPF record: the receiver sees SPF none",
    "SPF neutral: the domain neither permits nor denies this address",
    "SPF pass: the domain designates this address as a permitted sender",
    "SPF fail: the domain does not permit this address",
    "SPF softfail: the domain does not permit this address (transitional)",
    "SPF temperror: a temporary error stopped the evaluation",
    "SPF permerror: the domain's SPF records cannot be evaluated",
};

/* Takes the trace and the tree out of e into r. */
static void hand_over(ev *e, md_spf_result *r)
{
    r->queries = e->queries;
    r->nqueries = e->nqueries;
    r->tree = e->root;
    e->queries = NULL;
    e->nqueries = e->qcap = 0;
    e->root = NULL;
}

md_status spf_evaluate(const spf_source *src, const md_spf_request *req, int isolate,
                       md_spf_result **outp, md_report *rep, md_error *err)
{
    ev e = { .src = *src, .origin = MD_SPF_BY_WALK, .rep = rep };
    *outp = NULL;
    if (spf_test_fault("walk-hang"))
        for (;;)
            pause();
    if (set_ip(&e, req->ip) != 0)
        return md_error_set(err, MD_CONFIG, "spf.request", "'%.64s' is not an IPv4 or IPv6 address",
                            req->ip ? req->ip : "");
    e.receiver = req->receiver ? req->receiver : "maildiag";
    e.deadline = md_now_ms() + (int64_t)((req->deadline > 0 ? req->deadline : 20.0) * 1000.0);
    e.helo = req->helo ? md_xstrdup(req->helo) : NULL;
    const char *from = req->sender ? req->sender : "";
    int helo_id = req->identity == MD_SPF_ID_HELO || from[0] == '\0';
    /* RFC 7208 2.3, 2.4, 4.3: the identity, "postmaster" when the local part
     * is missing. */
    if (helo_id) {
        e.local = md_xstrdup("postmaster");
        e.sdomain = md_xstrdup(e.helo ? e.helo : "");
    } else {
        const char *at = strrchr(from, '@');
        e.local = at && at > from ? md_xstrndup(from, (size_t)(at - from)) : md_xstrdup("postmaster");
        e.sdomain = md_xstrdup(at ? at + 1 : from);
    }
    size_t ll = strlen(e.local), dl = strlen(e.sdomain);
    e.sender = md_xmalloc(ll + dl + 2);
    memcpy(e.sender, e.local, ll);
    e.sender[ll] = '@';
    memcpy(e.sender + ll + 1, e.sdomain, dl + 1);
    const char *domain = req->domain ? req->domain : e.sdomain;

    md_spf_code code;
    if (!domain_ok(domain)) {
        code = MD_SPF_NONE;
        fail_with(&e, "spf.invalid_domain", "'%s' is not a usable domain name (RFC 7208 4.3)", domain);
    } else {
        code = check_host(&e, domain, 1, MD_SPF_VIA_TOP, NULL, 0);
    }
    md_spf_result *out = md_xcalloc(1, sizeof *out);
    out->kind = MD_SPF_EVALUATION;
    out->domain = md_xstrdup(domain);
    out->ip = md_xstrdup(e.ipstr);
    out->sender = md_xstrdup(e.sender);
    out->helo = e.helo ? md_xstrdup(e.helo) : NULL;
    out->identity = helo_id ? MD_SPF_ID_HELO : MD_SPF_ID_MAILFROM;
    out->result = code;
    if (code == MD_SPF_FAIL && e.explanation) {
        out->explanation = md_xstrdup(e.explanation);
        out->explanation_source = MD_SPF_EXP_RECORD;
    }
    out->lookups = e.lookups;
    out->void_lookups = e.voids;
    out->mechanism = e.mechanism[0] ? md_xstrdup(e.mechanism) : NULL;
    out->error = e.err_id && code >= MD_SPF_TEMPERROR ? md_xstrdup(e.error) : NULL;
    headers(&e, req, code, domain, out);

    char id[32];
    snprintf(id, sizeof id, "spf.%s", md_spf_code_name(code));
    md_severity sev = md_spf_code_severity(code);
    add_finding(&e, id, sev, result_summary[code], e.mechanism);
    if (e.err_id && code >= MD_SPF_TEMPERROR)
        add_finding(&e, e.err_id, sev, e.error, NULL);

    /* libspf2's verdict on the same data (see spf.h). */
    md_spf_libspf2 *l2 = &out->libspf2;
    int safe_input = 1;
    for (const char *p = from; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            safe_input = 0;
    for (const char *p = e.helo ? e.helo : ""; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            safe_input = 0;
    int override = req->domain != NULL && strcasecmp(req->domain, e.sdomain) != 0;
    if (req->no_libspf2 || override || !safe_input || strlen(from) > 320
        || (e.helo && strlen(e.helo) > 255) || e.l2_refused[0]) {
        l2->why = md_xstrdup(req->no_libspf2 ? "disabled"
                             : override ? "domain override (libspf2 checks the sender's domain)"
                             : e.l2_refused[0] ? e.l2_refused
                             : "input not safe to hand to libspf2");
    } else {
        spf_libspf2_out lo;
        e.origin = MD_SPF_BY_LIBSPF2;
        spf_libspf2_evaluate(libspf2_lookup, &e, e.ipstr, helo_id ? "" : from, e.helo,
                             req->identity == MD_SPF_ID_HELO, e.deadline, isolate, &lo);
        e.origin = MD_SPF_BY_WALK;
        l2->ran = 1;
        if (lo.crashed) {
            /* The RFC verdict above does not depend on libspf2: keep it, and
             * say what happened (see libspf2.c). */
            spf_result_crashed(out, rep, lo.error);
        } else {
            l2->result = md_xstrdup(lo.result);
            l2->reason = md_xstrdup(lo.reason);
            l2->error = lo.error[0] ? md_xstrdup(lo.error) : NULL;
            l2->agrees = strcmp(lo.result, md_spf_code_name(code)) == 0;
            if (!l2->agrees) {
                char why[600];
                snprintf(why, sizeof why, "libspf2 1.2.10 says %s, RFC 7208 says %s%s%s", lo.result,
                         md_spf_code_name(code), e.err_id ? ": " : "", e.err_id ? e.error : "");
                if (strcmp(lo.reason, "localhost") == 0)
                    snprintf(why, sizeof why, "libspf2 1.2.10 passes loopback clients without"
                             " evaluating; RFC 7208 evaluates %s like any address: %s",
                             e.ipstr, md_spf_code_name(code));
                l2->override = md_xstrdup(why);
                add_finding(&e, "spf.libspf2_differs", MD_SEV_OK,
                            "libspf2 alone would give a different result; the RFC 7208 result is used",
                            why);
            }
        }
    }
    hand_over(&e, out);
    ev_clear(&e);
    *outp = out;
    return MD_OK;
}

static md_dns_answer *dns_resolve(void *arg, const char *name, int type)
{
    return md_dns_resolve(arg, name, type);
}

md_status md_spf_evaluate(md_dns *dns, const md_spf_request *req, md_spf_result **out,
                          md_report *rep, md_error *err)
{
    spf_source src = { dns_resolve, dns };
    return spf_evaluate(&src, req, 1, out, rep, err);
}

/* --- lint --------------------------------------------------------------- */

/*
 * Lint walks the include/redirect tree as a receiver's check_host() would
 * when no mechanism matches (the most it may spend), and stays small for any
 * record set, because a receiver stops where lint stops:
 *  - counting ends at the RFC 7208 4.6.4 limits: the 11th DNS-querying term
 *    or the 3rd void lookup is a permerror, so nothing after it is followed
 *    (spf.lookup_limit, spf.void_limit say which term it was);
 *  - an include or redirect of a domain already on the path is a loop
 *    (spf.include_loop): a receiver goes round it until the term limit;
 *  - a domain is linted once: reached again by another path, it adds the
 *    terms and void lookups its first walk cost, without a second walk,
 *    a second subtree or a second copy of its findings.
 * So at most 11 records are followed, whatever the includes, and each
 * record costs time and output in proportion to its length.
 */
#define LINT_PATH_MAX (MD_SPF_MAX_TERMS + 2)

typedef struct lint_seen {
    char *domain;
    int lookups, voids;          /* what its subtree cost when first walked */
    struct lint_seen *next;
} lint_seen;

typedef struct lint {
    ev *e;
    md_spf_result *top;
    const char *path[LINT_PATH_MAX];   /* from the top domain to the current one */
    int depth;
    lint_seen *seen;
    int stopped;                 /* a limit or a loop: receivers stop here */
} lint;

static void lint_add(lint *l, const char *id, md_severity sev, const char *summary,
                     const char *evidence)
{
    add_finding(l->e, id, sev, summary, evidence);
}

/* Counts one DNS-querying term.  Returns 0, or -1 (walk stopped) over the
 * limit. */
static int lint_count(lint *l, md_spf_node *node, const char *term, const char *domain)
{
    char line[400];
    l->e->lookups++;
    node->lookups++;
    if (l->e->lookups <= MD_SPF_MAX_TERMS)
        return 0;
    snprintf(line, sizeof line, "'%s' in %s is number %d: nothing after it is evaluated",
             term, domain, l->e->lookups);
    lint_add(l, "spf.lookup_limit", MD_SEV_CRITICAL,
             "more than 10 DNS-querying terms: receivers see permerror", line);
    l->stopped = 1;
    return -1;
}

/* A term's lookup failed: whether it is void (or names too many hosts) is
 * unknown, and a receiver reaching the term sees temperror.  Returns 1
 * when a failed (a finding added), else 0. */
static int lint_temp(lint *l, const char *term, const char *domain, const char *type,
                     const md_dns_answer *a)
{
    char line[600];
    if (!is_temp(a))
        return 0;
    snprintf(line, sizeof line, "%s %s for '%s' in %s: %s %s", type, a->qname ? a->qname : "?", term,
             domain, md_dns_outcome_name(a->outcome), a->detail);
    lint_add(l, "spf.dns_temporary", MD_SEV_UNKNOWN,
             "a DNS lookup failed temporarily: receivers would see temperror", line);
    return 1;
}

/* Counts one void lookup.  Returns 0, or -1 (walk stopped) over the limit. */
static int lint_void(lint *l, const char *term, const char *domain)
{
    char line[400];
    if (++l->e->voids <= MD_SPF_MAX_VOID)
        return 0;
    snprintf(line, sizeof line, "'%s' in %s is void lookup number %d", term, domain, l->e->voids);
    lint_add(l, "spf.void_limit", MD_SEV_CRITICAL,
             "more than 2 void lookups: receivers see permerror", line);
    l->stopped = 1;
    return -1;
}

static lint_seen *lint_seen_find(const lint *l, const char *domain)
{
    for (lint_seen *s = l->seen; s; s = s->next)
        if (strcasecmp(s->domain, domain) == 0)
            return s;
    return NULL;
}

static void lint_node(lint *l, const char *domain, md_spf_via via, md_spf_node *parent);

/* Follows include:target or redirect=target (already counted) from the
 * record of domain (node). */
static void lint_follow(lint *l, const char *term, const char *domain, const char *target,
                        md_spf_via via, md_spf_node *node)
{
    char line[600];
    for (int i = 0; i < l->depth; i++) {
        if (strcasecmp(l->path[i], target) != 0)
            continue;
        size_t n = (size_t)snprintf(line, sizeof line, "'%s' in %s: ", term, domain);
        for (int j = i; j < l->depth && n < sizeof line; j++)
            n += (size_t)snprintf(line + n, sizeof line - n, "%s -> ", l->path[j]);
        if (n < sizeof line)
            snprintf(line + n, sizeof line - n, "%s", target);
        lint_add(l, "spf.include_loop", MD_SEV_CRITICAL,
                 "an include/redirect loop: receivers go round it until the limit of 10"
                 " DNS-querying terms and see permerror", line);
        node_new(l->e, node, MD_SPF_NODE_LOOP, via, target);
        l->stopped = 1;
        return;
    }
    const lint_seen *s = lint_seen_find(l, target);
    if (s == NULL) {
        lint_node(l, target, via, node);
        return;
    }
    md_spf_node *seen = node_new(l->e, node, MD_SPF_NODE_SEEN, via, target);
    seen->lookups = s->lookups;
    l->e->lookups += s->lookups;
    l->e->voids += s->voids;
    if (l->e->lookups > MD_SPF_MAX_TERMS || l->e->voids > MD_SPF_MAX_VOID) {
        int terms = l->e->lookups > MD_SPF_MAX_TERMS;
        snprintf(line, sizeof line, "'%s' in %s evaluates %s again: %d more %s bring the total"
                 " past %d", term, domain, target, terms ? s->lookups : s->voids,
                 terms ? "DNS-querying terms" : "void lookups",
                 terms ? MD_SPF_MAX_TERMS : MD_SPF_MAX_VOID);
        if (terms)
            lint_add(l, "spf.lookup_limit", MD_SEV_CRITICAL,
                     "more than 10 DNS-querying terms: receivers see permerror", line);
        else
            lint_add(l, "spf.void_limit", MD_SEV_CRITICAL,
                     "more than 2 void lookups: receivers see permerror", line);
        /* the count a receiver stops at */
        if (l->e->lookups > MD_SPF_MAX_TERMS + 1)
            l->e->lookups = MD_SPF_MAX_TERMS + 1;
        if (l->e->voids > MD_SPF_MAX_VOID + 1)
            l->e->voids = MD_SPF_MAX_VOID + 1;
        l->stopped = 1;
    }
}

static void lint_node(lint *l, const char *domain, md_spf_via via, md_spf_node *parent)
{
    ev *e = l->e;
    md_spf_node *node = node_new(e, parent, MD_SPF_NODE_RECORD, via, domain);
    char ev_line[400];
    if (l->depth >= LINT_PATH_MAX) {   /* not reached: the term limit comes first */
        node->error = md_xstrdup("nested too deep: not followed");
        l->stopped = 1;
        return;
    }
    int depth = l->depth;
    int lookups0 = e->lookups, voids0 = e->voids;
    const md_dns_answer *a = lookup(e, domain, MD_DNS_TXT);
    if (is_temp(a)) {
        snprintf(ev_line, sizeof ev_line, "TXT %s: %s %s", domain, md_dns_outcome_name(a->outcome), a->detail);
        lint_add(l, "spf.dns_temporary", MD_SEV_UNKNOWN,
                 "a DNS lookup failed temporarily: receivers would see temperror", ev_line);
        return;
    }
    const md_dns_txt *found = NULL;
    size_t nfound = 0, wire = 12 + strlen(domain) + 2 + 4;
    for (size_t i = 0; a->outcome == MD_DNS_ANSWER && i < a->n; i++) {
        wire += 2 + 10 + a->txt[i].len + a->txt[i].len / 255 + 1;
        if (md_spf_is_record(a->txt[i].data, a->txt[i].len)) {
            found = &a->txt[i];
            nfound++;
        }
    }
    if (nfound == 0) {
        if (depth == 0) {
            lint_add(l, "spf.no_record", MD_SEV_WARNING,
                     "the domain publishes no SPF record: receivers see SPF none", domain);
        } else {
            snprintf(ev_line, sizeof ev_line, "%s:%s has no SPF record (%s)", md_spf_via_name(via),
                     domain, md_dns_outcome_name(a->outcome));
            lint_add(l, "spf.include_no_record", MD_SEV_CRITICAL,
                     "an include or redirect names a domain without SPF: permerror", ev_line);
        }
        return;
    }
    if (nfound > 1) {
        md_finding *f = md_report_add(e->rep, "spf.multiple_records", MD_SEV_CRITICAL, "%s",
                                      "more than one SPF record: receivers see permerror (RFC 7208 4.5)");
        for (size_t i = 0; i < a->n; i++)
            if (md_spf_is_record(a->txt[i].data, a->txt[i].len))
                md_finding_add_evidence(f, "%.*s", (int)a->txt[i].len, a->txt[i].data);
        return;
    }
    node_set(&node->record, found->data, found->len);
    if (depth == 0)
        node_set(&l->top->record, found->data, found->len);
    if (wire > 512) {
        snprintf(ev_line, sizeof ev_line, "TXT answer for %s is about %zu bytes", domain, wire);
        lint_add(l, "spf.too_long", MD_SEV_WARNING,
                 "the TXT answer does not fit one 512-byte UDP reply (RFC 7208 3.4)", ev_line);
    }
    spf_record *rec = spf_record_parse(found->data, found->len);
    if (rec->bad) {
        snprintf(ev_line, sizeof ev_line, "%s: %s", domain, rec->error);
        lint_add(l, "spf.syntax", MD_SEV_CRITICAL,
                 "syntax error in an SPF record: receivers see permerror", ev_line);
        node_set(&node->error, rec->error, strlen(rec->error));
        spf_record_free(rec);
        return;
    }
    l->path[l->depth++] = domain;
    e->cur = domain;
    for (size_t i = 0; i < rec->nterms && !l->stopped; i++) {
        const spf_term *t = &rec->terms[i];
        snprintf(ev_line, sizeof ev_line, "%s in %s", t->text, domain);
        if (t->mech == M_ALL && t->qual == '+')
            lint_add(l, "spf.pass_all", MD_SEV_CRITICAL,
                     "'+all' lets every address on the Internet pass", ev_line);
        /* ?all inside an include only means "no match" there: harmless */
        if (t->mech == M_ALL && t->qual == '?' && via != MD_SPF_VIA_INCLUDE)
            lint_add(l, "spf.neutral_all", MD_SEV_WARNING,
                     "'?all' makes every other address neutral: SPF protects nothing", ev_line);
        if (t->mech == M_PTR)
            lint_add(l, "spf.ptr", MD_SEV_WARNING,
                     "the ptr mechanism is slow and unreliable; RFC 7208 5.5 says do not use it",
                     ev_line);
        if (t->mech == M_ALL || t->mech == M_IP4 || t->mech == M_IP6)
            continue;
        if (lint_count(l, node, t->text, domain) != 0)
            break;
        if (t->arg && strchr(t->arg, '%')) {
            md_spf_node *m = node_new(e, node, MD_SPF_NODE_MACRO, MD_SPF_VIA_TOP, NULL);
            m->term = md_xstrdup(t->text);
            continue;
        }
        const char *target = t->arg ? t->arg : domain;
        if (t->mech == M_INCLUDE) {
            lint_follow(l, t->text, domain, target, MD_SPF_VIA_INCLUDE, node);
            e->cur = domain;
        } else if (t->mech == M_MX) {
            const md_dns_answer *m = lookup(e, target, MD_DNS_MX);
            if (lint_temp(l, t->text, domain, "MX", m))
                continue;
            if (is_void(m))
                lint_void(l, t->text, domain);
            else if (m->n > MD_SPF_MAX_NAMES)
                lint_add(l, "spf.mx_limit", MD_SEV_CRITICAL,
                         "an mx term names more than 10 MX hosts: permerror", ev_line);
        } else if (t->mech == M_A) {
            const md_dns_answer *a4 = lookup(e, target, MD_DNS_A);
            const md_dns_answer *a6 = lookup(e, target, MD_DNS_AAAA);
            if (lint_temp(l, t->text, domain, "A", a4) || lint_temp(l, t->text, domain, "AAAA", a6))
                continue;
            if (is_void(a4) && is_void(a6))
                lint_void(l, t->text, domain);
        } else if (t->mech == M_EXISTS) {
            const md_dns_answer *ex = lookup(e, target, MD_DNS_A);
            if (!lint_temp(l, t->text, domain, "A", ex) && is_void(ex))
                lint_void(l, t->text, domain);
        }
    }
    if (rec->redirect && !l->stopped) {
        if (rec->has_all) {
            snprintf(ev_line, sizeof ev_line, "redirect=%s in %s", rec->redirect, domain);
            lint_add(l, "spf.redirect_ignored", MD_SEV_WARNING,
                     "redirect= is never used because the record has 'all' (RFC 7208 6.1)",
                     ev_line);
        } else {
            char term[300];
            snprintf(term, sizeof term, "redirect=%s", rec->redirect);
            if (lint_count(l, node, term, domain) == 0 && strchr(rec->redirect, '%') == NULL)
                lint_follow(l, term, domain, rec->redirect, MD_SPF_VIA_REDIRECT, node);
        }
    }
    l->depth--;
    if (!l->stopped) {
        lint_seen *sn = md_xcalloc(1, sizeof *sn);
        sn->domain = md_xstrdup(domain);
        sn->lookups = e->lookups - lookups0;
        sn->voids = e->voids - voids0;
        sn->next = l->seen;
        l->seen = sn;
    }
    spf_record_free(rec);
}

md_status spf_lint(const spf_source *src, const char *domain_in, md_spf_result **outp,
                   md_report *rep, md_error *err)
{
    *outp = NULL;
    /* IDN given by a person: A-labels first (names with '_', such as
     * _spf.example.com, are fine as they are) */
    char ascii[MD_DNS_NAME_MAX + 1];
    const char *domain = domain_in;
    for (const char *p = domain_in; *p; p++)
        if ((unsigned char)*p >= 0x80) {
            if (md_dns_name_normalize(domain_in, ascii, sizeof ascii, NULL, 0, err) != MD_OK)
                return err->status;
            domain = ascii;
            break;
        }
    if (!domain_ok(domain))
        return md_error_set(err, MD_CONFIG, "spf.lint", "'%.80s' is not a usable domain name", domain);
    ev e = { .src = *src, .origin = MD_SPF_BY_LINT, .family = 4, .rep = rep };
    e.deadline = md_now_ms() + 30000;
    e.receiver = "maildiag";
    md_spf_result *out = md_xcalloc(1, sizeof *out);
    out->kind = MD_SPF_LINT;
    out->domain = md_xstrdup(domain);
    size_t first = md_report_count(rep);   /* rep may hold other checks' findings */
    lint l = { .e = &e, .top = out };
    lint_node(&l, domain, MD_SPF_VIA_TOP, NULL);
    while (l.seen) {
        lint_seen *n = l.seen->next;
        free(l.seen->domain);
        free(l.seen);
        l.seen = n;
    }
    /* Past a limit, lint_count and lint_void said where; below them: */
    char line[200];
    snprintf(line, sizeof line, "%d DNS-querying terms over the whole tree", e.lookups);
    if (e.lookups >= MD_SPF_MAX_TERMS - 1 && e.lookups <= MD_SPF_MAX_TERMS)
        add_finding(&e, "spf.lookups_near_limit", MD_SEV_WARNING,
                    "close to the limit of 10 DNS-querying terms", line);
    snprintf(line, sizeof line, "%d void lookups (NXDOMAIN or no data)", e.voids);
    if (e.voids > 0 && e.voids <= MD_SPF_MAX_VOID)
        add_finding(&e, "spf.void_lookups", MD_SEV_WARNING,
                    "terms name domains that do not exist or have no address", line);
    int bad = 0;
    for (size_t i = first; i < md_report_count(rep); i++)
        if (md_report_get(rep, i)->severity != MD_SEV_OK)
            bad = 1;
    if (!bad)
        add_finding(&e, "spf.ok", MD_SEV_OK, "the SPF record is valid and within limits",
                    out->record);
    out->lookups = e.lookups;
    out->void_lookups = e.voids;
    hand_over(&e, out);
    ev_clear(&e);
    *outp = out;
    return MD_OK;
}

md_status md_spf_lint(md_dns *dns, const char *domain, md_spf_result **out, md_report *rep,
                      md_error *err)
{
    spf_source src = { dns_resolve, dns };
    return spf_lint(&src, domain, out, rep, err);
}
