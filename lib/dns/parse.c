/*
 * lib/dns: parsing replies.  We walk the sections ourselves because the
 * c-ares 1.18 parsers do not sort MX, return SUCCESS with no data for a
 * CNAME-only answer, do not check owner names, and fail on a CNAME target
 * holding '*'.  Names are decoded as ares_expand_name decodes them, but
 * into a buffer on the stack: an owner is only compared, never kept.
 */
#include "config.h"
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ares.h>

#define MAX_CHAIN 16
#define MAX_RECORDS 4096

const char *md_dns_outcome_name(md_dns_outcome o)
{
    static const char *const names[] = {
        "answer", "nodata", "nxdomain", "servfail", "refused", "timeout", "badresp", "error"
    };
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "error";
}

int md_dns_outcome_is_temporary(md_dns_outcome o)
{
    return !(o == MD_DNS_ANSWER || o == MD_DNS_NODATA || o == MD_DNS_NXDOMAIN);
}

void md_dns_answer_clear(md_dns_answer *a)
{
    if (a == NULL)
        return;
    free(a->qname);
    for (size_t i = 0; i < a->ncnames; i++)
        free(a->cnames[i]);
    free(a->cnames);
    for (size_t i = 0; a->mx && i < a->n; i++)
        free(a->mx[i].host);
    free(a->mx);
    for (size_t i = 0; a->txt && i < a->n; i++)
        free(a->txt[i].data);
    free(a->txt);
    free(a->addr);
    for (size_t i = 0; a->names && i < a->n; i++)
        free(a->names[i]);
    free(a->names);
    memset(a, 0, sizeof *a);
}

void md_dns_answer_free(md_dns_answer *a)
{
    md_dns_answer_clear(a);
    free(a);
}

md_dns_answer *md_dns_answer_copy(const md_dns_answer *a)
{
    md_dns_answer *c = md_xcalloc(1, sizeof *c);
    *c = *a;
    c->qname = a->qname ? md_xstrdup(a->qname) : NULL;
    c->cnames = a->ncnames ? md_xcalloc(a->ncnames, sizeof *c->cnames) : NULL;
    for (size_t i = 0; i < a->ncnames; i++)
        c->cnames[i] = md_xstrdup(a->cnames[i]);
    c->mx = NULL;
    c->txt = NULL;
    c->addr = NULL;
    c->names = NULL;
    if (a->mx) {
        c->mx = md_xcalloc(a->n, sizeof *c->mx);
        for (size_t i = 0; i < a->n; i++) {
            c->mx[i].preference = a->mx[i].preference;
            c->mx[i].host = md_xstrdup(a->mx[i].host);
        }
    }
    if (a->txt) {
        c->txt = md_xcalloc(a->n, sizeof *c->txt);
        for (size_t i = 0; i < a->n; i++) {
            c->txt[i].len = a->txt[i].len;
            c->txt[i].data = md_xstrndup(a->txt[i].data, a->txt[i].len);
        }
    }
    if (a->addr) {
        c->addr = md_xcalloc(a->n, sizeof *c->addr);
        memcpy(c->addr, a->addr, a->n * sizeof *c->addr);
    }
    if (a->names) {
        c->names = md_xcalloc(a->n, sizeof *c->names);
        for (size_t i = 0; i < a->n; i++)
            c->names[i] = md_xstrdup(a->names[i]);
    }
    return c;
}

/* Lower-cases a name and drops one trailing dot, in place. */
static void name_canon(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

static int name_eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

typedef struct rr {
    size_t owner;             /* offset of the owner name */
    int type;
    uint32_t ttl;
    size_t rdoff, rdlen;
} rr;

static md_status badresp(md_dns_answer *out, const char *why)
{
    out->outcome = MD_DNS_BADRESP;
    snprintf(out->detail, sizeof out->detail, "malformed reply: %s", why);
    return MD_PROTOCOL;
}

/* Text of a name: a name that decodes to more (escapes included) goes
 * through ares_expand_name instead. */
#define NAME_TEXT_MAX 1024
/* Pointers followed in one name before c-ares gives up on it. */
#define MAX_INDIRS 50

/* How ares_expand_name writes a byte of a label, and then our lower case. */
enum { CH_COPY, CH_UPPER, CH_ESCAPE, CH_DDD };

static unsigned char char_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return CH_COPY;   /* nearly every byte of every name */
    if (c < 0x20 || c > 0x7e)
        return CH_DDD;
    if (c >= 'A' && c <= 'Z')
        return CH_UPPER;
    if (c == '"' || c == '.' || c == ';' || c == '\\' || c == '(' || c == ')' || c == '@' || c == '$')
        return CH_ESCAPE;
    return CH_COPY;
}

/*
 * Decodes the (possibly compressed) name at buf+off into out (outsize
 * bytes) with the rules of c-ares 1.18's ares_expand_name, so that names
 * read the same whichever decodes them: \DDD for an unprintable byte (a
 * label of one NUL byte is copied as it is), a backslash before
 * . \ " ; ( ) @ $, pointers anywhere before the end of the message, at most
 * MAX_INDIRS of them, the root as "".  The text is then made canonical:
 * lower case, one trailing dot dropped.  out may be NULL to only check the
 * name.  Returns 0 and the wire length in *used; -1 for a name c-ares
 * would refuse; -2 when the text does not fit out.
 */
static int name_decode(const unsigned char *buf, size_t len, size_t off, char *out,
                       size_t outsize, size_t *used)
{
    size_t p = off, n = 0, wire = 0;
    int indir = 0;

    if (off >= len)
        return -1;
    while (buf[p]) {
        unsigned top = buf[p] & 0xc0;
        if (top == 0xc0) {
            if (p + 1 >= len)
                return -1;
            size_t to = (size_t)(buf[p] & 0x3f) << 8 | buf[p + 1];
            if (to >= len)
                return -1;
            if (indir == 0)
                wire = p + 2 - off;
            if (++indir > MAX_INDIRS || (size_t)indir > len)
                return -1;
            p = to;
        } else if (top == 0) {
            size_t l = buf[p];
            if (p + l + 1 >= len)
                return -1;
            if (out != NULL) {
                if (n + 4 * l + 1 >= outsize)
                    return -2;
                for (size_t i = 1; i <= l; i++) {
                    unsigned char c = buf[p + i];
                    switch (char_class(c)) {
                    case CH_COPY:
                        out[n++] = (char)c;
                        break;
                    case CH_UPPER:
                        out[n++] = (char)(c + ('a' - 'A'));
                        break;
                    case CH_ESCAPE:
                        out[n++] = '\\';
                        out[n++] = (char)c;
                        break;
                    default:
                        if (l == 1 && c == 0) {
                            out[n++] = (char)c;
                            break;
                        }
                        out[n++] = '\\';
                        out[n++] = (char)('0' + c / 100);
                        out[n++] = (char)('0' + c % 100 / 10);
                        out[n++] = (char)('0' + c % 10);
                        break;
                    }
                }
                out[n++] = '.';
            }
            p += l + 1;
        } else {
            return -1;     /* RFC 1035 4.1.4: the label types 01 and 10 are reserved */
        }
    }
    *used = indir ? wire : p + 1 - off;
    if (out == NULL)
        return 0;
    if (n > 0)
        n--;               /* the dot after the last label */
    out[n] = '\0';
    n = strlen(out);       /* a label of one NUL byte ends the text */
    if (n > 0 && out[n - 1] == '.')
        out[n - 1] = '\0';
    return 0;
}

/* Decodes the name at buf+off into a new canonical string.  Returns 0, or
 * -1 when the name cannot be decoded. */
static int expand(const unsigned char *buf, size_t len, size_t off, char **name, size_t *used)
{
    char text[NAME_TEXT_MAX];
    int rc = name_decode(buf, len, off, text, sizeof text, used);
    if (rc == 0) {
        *name = md_xstrdup(text);
        return 0;
    }
    if (rc == -1)
        return -1;
    /* Too long for text: rare enough to let c-ares allocate it. */
    char *s = NULL;
    long enclen = 0;
    if (ares_expand_name(buf + off, buf, (int)len, &s, &enclen) != ARES_SUCCESS)
        return -1;
    /* c-ares allocates with malloc() unless ares_library_init_mem() installs
     * other allocators, which maildiag never does. */
    *name = s;
    name_canon(*name);
    *used = (size_t)enclen;
    return 0;
}

/* Whether the owner of r is the canonical name want. */
static int owner_is(const unsigned char *buf, size_t len, const rr *r, const char *want)
{
    char text[NAME_TEXT_MAX];
    size_t used;
    int rc = name_decode(buf, len, r->owner, text, sizeof text, &used);
    if (rc == 0)
        return strcmp(text, want) == 0;
    char *owner;
    if (expand(buf, len, r->owner, &owner, &used) != 0)
        return 0;
    rc = strcmp(owner, want) == 0;
    free(owner);
    return rc;
}

/* The wire length of the (possibly compressed) name at buf+off, without
 * decoding it: for records whose owner we never look at. */
static int skip_name(const unsigned char *buf, size_t len, size_t off, size_t *used)
{
    size_t p = off;
    for (int labels = 0; labels < 128; labels++) {
        if (p >= len)
            return -1;
        unsigned l = buf[p];
        if ((l & 0xc0) == 0xc0) {
            /* RFC 1035 4.1.4: a pointer refers to a prior occurrence. */
            if (p + 1 >= len || (((size_t)(l & 0x3f) << 8) | buf[p + 1]) >= p)
                return -1;
            *used = p + 2 - off;
            return 0;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0) {
            *used = p + 1 - off;
            return 0;
        }
        p += 1 + l;
    }
    return -1;
}

/* Copies s into buf, or into a new *heap string when it does not fit (the
 * previous one freed); returns where it went. */
static const char *set_text(char *buf, size_t size, char **heap, const char *s)
{
    size_t n = strlen(s);
    char *old = *heap;
    const char *at;
    if (n < size) {
        memcpy(buf, s, n + 1);
        *heap = NULL;
        at = buf;
    } else {
        *heap = md_xstrdup(s);
        at = *heap;
    }
    free(old);
    return at;
}

static int cmp_mx(const void *a, const void *b)
{
    const md_dns_mx *x = a, *y = b;
    if (x->preference != y->preference)
        return x->preference < y->preference ? -1 : 1;
    return strcmp(x->host, y->host);
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static md_status decode_record(const unsigned char *buf, size_t len, const rr *r,
                               int type, md_dns_answer *out)
{
    const unsigned char *rd = buf + r->rdoff;
    size_t i = out->n;
    switch (type) {
    case MD_DNS_A:
    case MD_DNS_AAAA: {
        size_t want = type == MD_DNS_A ? 4 : 16;
        if (r->rdlen != want)
            return badresp(out, "address record of the wrong length");
        out->addr = md_xrealloc(out->addr, (i + 1) * sizeof *out->addr);
        md_dns_addr *a = &out->addr[i];
        memset(a, 0, sizeof *a);
        a->family = type == MD_DNS_A ? AF_INET : AF_INET6;
        memcpy(a->bytes, rd, want);
        inet_ntop(a->family, a->bytes, a->text, sizeof a->text);
        break;
    }
    case MD_DNS_MX: {
        char *host;
        size_t used;
        if (r->rdlen < 3 || expand(buf, len, r->rdoff + 2, &host, &used) != 0)
            return badresp(out, "MX record cannot be decoded");
        if (used + 2 != r->rdlen) {   /* the name decoded, bytes are left over */
            free(host);
            return badresp(out, "MX record cannot be decoded");
        }
        out->mx = md_xrealloc(out->mx, (i + 1) * sizeof *out->mx);
        out->mx[i].preference = get16(rd);
        out->mx[i].host = host;
        break;
    }
    case MD_DNS_TXT: {
        char *data = md_xmalloc(r->rdlen + 1);
        size_t o = 0, p = 0;
        while (p < r->rdlen) {
            size_t sl = rd[p++];
            if (p + sl > r->rdlen) {
                free(data);
                return badresp(out, "TXT string runs past its record");
            }
            memcpy(data + o, rd + p, sl);
            o += sl;
            p += sl;
        }
        data[o] = '\0';
        out->txt = md_xrealloc(out->txt, (i + 1) * sizeof *out->txt);
        out->txt[i].data = data;
        out->txt[i].len = o;
        break;
    }
    case MD_DNS_PTR:
    case MD_DNS_CNAME: {
        char *name;
        size_t used;
        if (expand(buf, len, r->rdoff, &name, &used) != 0)
            return badresp(out, "name in record cannot be decoded");
        if (used != r->rdlen) {
            free(name);
            return badresp(out, "name in record cannot be decoded");
        }
        out->names = md_xrealloc(out->names, (i + 1) * sizeof *out->names);
        out->names[i] = name;
        break;
    }
    default:
        return MD_OK;   /* types we do not decode are only counted */
    }
    out->n++;
    return MD_OK;
}

md_status md_dns_parse(const unsigned char *buf, size_t len, const char *qname,
                       int type, md_dns_answer *out)
{
    md_status st = MD_OK;
    rr few[16];
    rr *rrs = few;
    size_t nrr = 0;
    char cur_text[NAME_TEXT_MAX], *cur_heap = NULL;
    const char *current;

    memset(out, 0, sizeof *out);
    out->type = type;
    out->qname = md_xstrdup(qname);
    name_canon(out->qname);
    out->ttl = UINT32_MAX;

    if (buf == NULL || len < 12)
        return badresp(out, "shorter than a DNS header");
    unsigned rcode = buf[3] & 0x0f;
    size_t qd = get16(buf + 4), an = get16(buf + 6), ns = get16(buf + 8);
    size_t off = 12;

    for (size_t i = 0; i < qd; i++) {
        size_t used;
        if (skip_name(buf, len, off, &used) != 0)
            return badresp(out, "question cannot be decoded");
        off += used + 4;
        if (off > len)
            return badresp(out, "question runs past the end");
    }
    if (an + ns > MAX_RECORDS)
        return badresp(out, "too many records");
    if (an + ns > sizeof few / sizeof few[0])
        rrs = md_xcalloc(an + ns, sizeof *rrs);
    for (size_t i = 0; i < an + ns; i++) {
        rr *r = &rrs[nrr];
        size_t used;
        /* Answer owners are compared later: check now that they decode.
         * Authority owners are never compared: only skip them. */
        if (i < an ? name_decode(buf, len, off, NULL, 0, &used) != 0
                   : skip_name(buf, len, off, &used) != 0) {
            st = badresp(out, "record owner cannot be decoded");
            goto done;
        }
        r->owner = off;
        nrr++;
        off += used;
        if (off + 10 > len) {
            st = badresp(out, "record header runs past the end");
            goto done;
        }
        r->type = get16(buf + off);
        r->ttl = get32(buf + off + 4);
        r->rdlen = get16(buf + off + 8);
        r->rdoff = off + 10;
        off += 10 + r->rdlen;
        if (off > len) {
            st = badresp(out, "record data runs past the end");
            goto done;
        }
        if (i >= an)   /* authority: only the SOA matters, for negative TTLs */
            r->type = r->type == 6 ? -6 : -1;
    }

    /* Follow the CNAME chain from the question name. */
    current = set_text(cur_text, sizeof cur_text, &cur_heap, out->qname);
    if (type != MD_DNS_CNAME) {
        for (int hops = 0; hops < MAX_CHAIN; hops++) {
            size_t i;
            for (i = 0; i < nrr; i++)
                if (rrs[i].type == MD_DNS_CNAME && owner_is(buf, len, &rrs[i], current))
                    break;
            if (i == nrr)
                break;
            char *target;
            size_t used;
            if (expand(buf, len, rrs[i].rdoff, &target, &used) != 0) {
                st = badresp(out, "CNAME target cannot be decoded");
                goto done;
            }
            for (size_t k = 0; k < out->ncnames; k++)
                if (name_eq(out->cnames[k], target)) {   /* a loop */
                    free(target);
                    st = badresp(out, "CNAME loop");
                    goto done;
                }
            out->cnames = md_xrealloc(out->cnames, (out->ncnames + 1) * sizeof *out->cnames);
            out->cnames[out->ncnames++] = target;
            if (rrs[i].ttl < out->ttl)
                out->ttl = rrs[i].ttl;
            current = set_text(cur_text, sizeof cur_text, &cur_heap, target);
        }
    }
    for (size_t i = 0; i < nrr; i++) {
        if (rrs[i].type != type || !owner_is(buf, len, &rrs[i], current))
            continue;
        if (out->n >= MAX_RECORDS)
            break;
        if ((st = decode_record(buf, len, &rrs[i], type, out)) != MD_OK)
            goto done;
        if (rrs[i].ttl < out->ttl)
            out->ttl = rrs[i].ttl;
    }
    if (out->mx && out->n > 1)
        qsort(out->mx, out->n, sizeof *out->mx, cmp_mx);

    switch (rcode) {
    case 0:
        out->outcome = out->n > 0 ? MD_DNS_ANSWER : MD_DNS_NODATA;
        break;
    case 2:
        out->outcome = MD_DNS_SERVFAIL;
        snprintf(out->detail, sizeof out->detail, "the server answered SERVFAIL");
        break;
    case 3:
        out->outcome = MD_DNS_NXDOMAIN;
        break;
    case 5:
        out->outcome = MD_DNS_REFUSED;
        snprintf(out->detail, sizeof out->detail, "the server answered REFUSED");
        break;
    default:
        out->outcome = MD_DNS_BADRESP;
        snprintf(out->detail, sizeof out->detail, "the server answered rcode %u (%s)", rcode,
                 rcode == 1 ? "FORMERR" : rcode == 4 ? "NOTIMP" : "unexpected");
        break;
    }
    if (out->outcome == MD_DNS_NODATA || out->outcome == MD_DNS_NXDOMAIN) {
        for (size_t i = 0; i < nrr; i++) {
            if (rrs[i].type != -6 || rrs[i].rdlen < 22)
                continue;
            /* SOA: the negative TTL is min(record TTL, MINIMUM field). */
            uint32_t min = get32(buf + rrs[i].rdoff + rrs[i].rdlen - 4);
            uint32_t t = rrs[i].ttl < min ? rrs[i].ttl : min;
            if (t < out->ttl)
                out->ttl = t;
        }
    }
    if (out->ttl == UINT32_MAX)
        out->ttl = 0;

done:
    if (st != MD_OK) {
        /* Drop partial data: a bad reply carries no records. */
        md_dns_answer keep = *out;
        keep.qname = NULL;
        keep.cnames = NULL;
        keep.ncnames = 0;
        md_dns_answer_clear(&keep);
        for (size_t i = 0; i < out->ncnames; i++)
            free(out->cnames[i]);
        free(out->cnames);
        out->cnames = NULL;
        out->ncnames = 0;
        out->n = 0;
        out->mx = NULL;
        out->txt = NULL;
        out->addr = NULL;
        out->names = NULL;
        out->ttl = 0;
    }
    if (rrs != few)
        free(rrs);
    free(cur_heap);
    return st;
}
