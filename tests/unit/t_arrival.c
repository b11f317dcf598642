/*
 * lib/arrival without a mailbox: the grammars of Authentication-Results
 * (RFC 8601) and Received-SPF (RFC 7208 9.1), table-driven, and which of a
 * stored message's fields are the receiver's: above the message as sent,
 * the topmost authserv-id or the ones configured, never a forgery inside
 * our own fields.  The wait itself runs against Dovecot in
 * tests/integration/test_arrival.py.
 */
#include "config.h"
#include "arrival/arrival.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- Authentication-Results */

typedef struct ar_case {
    const char *in;
    md_status st;
    const char *id;          /* authserv-id */
    int none;
    size_t nresult, skipped;
    const char *want;        /* "method=result[!]" joined by ' ' ('!' = malformed) */
    const char *props;       /* of the first result: "ptype.property=value" joined by '|' */
    const char *reason;      /* of the first result */
    unsigned version, method_version;
} ar_case;

static const ar_case ar_cases[] = {
    { "mx.example.com; spf=pass smtp.mailfrom=example.com", MD_OK, "mx.example.com", 0, 1, 0,
      "spf=pass", "smtp.mailfrom=example.com", "", 1, 0 },
    { "mx.example.com 1; none", MD_OK, "mx.example.com", 1, 0, 0, "", "", "", 1, 0 },
    { "example.org; none (nothing was checked)", MD_OK, "example.org", 1, 0, 0, "", "", "", 1, 0 },
    { "example.org 2 ;none", MD_OK, "example.org", 1, 0, 0, "", "", "", 2, 0 },
    /* comments wherever CFWS may stand, nested, with quoted pairs */
    { "(c1) mx.example.com (c2) ; (c3) dkim (c4) = (c5) pass (c6) header.d (c7) = (c8) example.com (c9)",
      MD_OK, "mx.example.com", 0, 1, 0, "dkim=pass", "header.d=example.com", "", 1, 0 },
    { "mx.x; spf=pass (a (nested (deep \\) still) comment) x) smtp.mailfrom=a@b.c", MD_OK, "mx.x", 0, 1, 0,
      "spf=pass", "smtp.mailfrom=a@b.c", "", 1, 0 },
    { "\"mx example\"; dmarc=fail header.from=example.com", MD_OK, "mx example", 0, 1, 0, "dmarc=fail",
      "header.from=example.com", "", 1, 0 },
    /* Gmail's shape: three methods, header.b with base64 characters */
    { "mx.google.com;\r\n       dkim=pass header.i=@gmail.com header.s=20230601 header.b=AbC/+d=;\r\n"
      "       spf=pass (google.com: domain of x@gmail.com designates 192.0.2.1 as permitted sender) "
      "smtp.mailfrom=x@gmail.com;\r\n       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=gmail.com",
      MD_OK, "mx.google.com", 0, 3, 0, "dkim=pass spf=pass dmarc=pass",
      "header.i=@gmail.com|header.s=20230601|header.b=AbC/+d=", "", 1, 0 },
    { "mx.x; dkim=fail reason=\"signature verification failed\" header.d=example.com", MD_OK, "mx.x", 0, 1, 0,
      "dkim=fail", "header.d=example.com", "signature verification failed", 1, 0 },
    { "mx.x; dkim=fail reason=bad header.d=example.com", MD_OK, "mx.x", 0, 1, 0, "dkim=fail",
      "header.d=example.com", "bad", 1, 0 },
    { "mx.x; dkim/1=pass header.d=a.example", MD_OK, "mx.x", 0, 1, 0, "dkim=pass", "header.d=a.example", "", 1, 1 },
    { "mx.x; dkim / 2 = pass", MD_OK, "mx.x", 0, 1, 0, "dkim=pass", "", "", 1, 2 },
    { "MX.X; SPF=PASS smtp.MailFrom=A@B.example", MD_OK, "MX.X", 0, 1, 0, "spf=pass", "smtp.mailfrom=A@B.example",
      "", 1, 0 },
    { "mx.x; auth=pass smtp.auth=\"user name\"", MD_OK, "mx.x", 0, 1, 0, "auth=pass", "smtp.auth=user name", "", 1, 0 },
    { "mx.x; iprev=pass policy.iprev=192.0.2.1 (mail.example.com)", MD_OK, "mx.x", 0, 1, 0, "iprev=pass",
      "policy.iprev=192.0.2.1", "", 1, 0 },
    { "mx.x; dkim=fail reason=\"bad\x01sig\"", MD_OK, "mx.x", 0, 1, 0, "dkim=fail", "", "bad?sig", 1, 0 },
    { "mx.x; spf=pass(c)smtp.mailfrom=a", MD_OK, "mx.x", 0, 1, 0, "spf=pass", "smtp.mailfrom=a", "", 1, 0 },
    { "mx.x; spf=pass;", MD_OK, "mx.x", 0, 1, 0, "spf=pass", "", "", 1, 0 },
    /* Exchange Online: no authserv-id, "action=none" and "reason=100" that the grammar has no room for */
    { "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none (message not signed) "
      "header.d=none;dmarc=none action=none header.from=example.com;compauth=pass reason=100",
      MD_OK, "", 0, 4, 0, "spf=pass dkim=none dmarc=none! compauth=pass", "smtp.mailfrom=example.com", "", 1, 0 },
    /* a broken result is skipped, a broken property keeps its result */
    { "mx.x; =pass; spf=fail", MD_OK, "mx.x", 0, 1, 1, "spf=fail", "", "", 1, 0 },
    { "mx.x; spf; dkim=pass", MD_OK, "mx.x", 0, 1, 1, "dkim=pass", "", "", 1, 0 },
    { "mx.x; spf=pass,smtp.mailfrom=a; dkim=pass", MD_OK, "mx.x", 0, 2, 0, "spf=pass! dkim=pass", "", "", 1, 0 },
    { "mx.x; spf=pass (oops", MD_OK, "mx.x", 0, 1, 0, "spf=pass!", "", "", 1, 0 },
    { "mx.x; spf=pass smtp.mailfrom=\"a@b; dkim=pass", MD_OK, "mx.x", 0, 1, 0, "spf=pass!", "", "", 1, 0 },
    { "mx.x; spf=pass smtp.mailfrom=a (x;y) ; dkim=fail", MD_OK, "mx.x", 0, 2, 0, "spf=pass dkim=fail",
      "smtp.mailfrom=a", "", 1, 0 },
    { "mx.x; none; spf=pass", MD_OK, "mx.x", 0, 1, 1, "spf=pass", "", "", 1, 0 },
    { "mx.x; spf-=pass; dkim=pass", MD_OK, "mx.x", 0, 1, 1, "dkim=pass", "", "", 1, 0 },
    /* the field itself broken */
    { "", MD_PROTOCOL, "", 0, 0, 0, "", "", "", 1, 0 },
    { "   (only a comment)  ", MD_PROTOCOL, "", 0, 0, 0, "", "", "", 1, 0 },
    { "mx.x", MD_PROTOCOL, "mx.x", 0, 0, 0, "", "", "", 1, 0 },
    { "mx.x spf=pass", MD_PROTOCOL, "mx.x", 0, 0, 0, "", "", "", 1, 0 },
    { "\"mx.x; spf=pass", MD_PROTOCOL, "", 0, 0, 0, "", "", "", 1, 0 },
    { "(mx.x; spf=pass", MD_PROTOCOL, "", 0, 0, 0, "", "", "", 1, 0 },
    { "mx.x 1234567890; none", MD_PROTOCOL, "mx.x", 0, 0, 0, "", "", "", 1, 0 },
    { "mx.x 1x; none", MD_PROTOCOL, "mx.x", 0, 0, 0, "", "", "", 1, 0 },
};

static void joined_results(const md_authres *a, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->nresult && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s=%s%s", i ? " " : "", a->result[i].method,
                              a->result[i].result, a->result[i].malformed ? "!" : "");
}

static void joined_props(const md_authres *a, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    if (a->nresult == 0)
        return;
    const md_authres_result *r = &a->result[0];
    for (size_t i = 0; i < r->nprop && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s.%s=%s", i ? "|" : "", r->prop[i].ptype,
                              r->prop[i].property, r->prop[i].value);
}

/* The first 40 bytes of a case for its test name, one line. */
static const char *shown(const char *in)
{
    static char buf[48];
    size_t i = 0;
    for (; in[i] && i < 40; i++)
        buf[i] = (unsigned char)in[i] < 0x20 ? '?' : in[i];
    buf[i] = '\0';
    return buf;
}

static void test_authres(void)
{
    for (size_t i = 0; i < sizeof ar_cases / sizeof ar_cases[0]; i++) {
        const ar_case *c = &ar_cases[i];
        md_authres *a = malloc(sizeof *a);
        md_error err = { 0 };
        md_status st = md_arrival_authres_parse(c->in, strlen(c->in), a, &err);
        char got[600], props[600];
        is_int(st, c->st, "authres %zu '%s': status (%s)", i, shown(c->in), err.text);
        if (st == MD_OK) {
            joined_results(a, got, sizeof got);
            joined_props(a, props, sizeof props);
            is_str(a->authserv_id, c->id, "authres %zu: authserv-id", i);
            is_int(a->none, c->none, "authres %zu: none", i);
            is_int(a->nresult, c->nresult, "authres %zu: results", i);
            is_int(a->skipped, c->skipped, "authres %zu: skipped", i);
            is_str(got, c->want, "authres %zu: method=result", i);
            is_str(props, c->props, "authres %zu: properties", i);
            is_str(a->nresult ? a->result[0].reason : "", c->reason, "authres %zu: reason", i);
            is_int(a->version, c->version, "authres %zu: version", i);
            is_int(a->nresult ? a->result[0].method_version : 0, c->method_version, "authres %zu: method version", i);
        } else {
            ok(strstr(err.text, "byte") != NULL || strstr(err.text, "longer") != NULL,
               "authres %zu: the error says where: %s", i, err.text);
        }
        free(a);
    }
}

static void test_authres_bounds(void)
{
    md_authres *a = malloc(sizeof *a);
    md_error err = { 0 };
    /* more results than are kept */
    char buf[4096] = "mx.x";
    for (int i = 0; i < MD_AUTHRES_RESULTS_MAX + 5; i++)
        strcat(buf, "; spf=pass");
    is_int(md_arrival_authres_parse(buf, strlen(buf), a, &err), MD_OK, "many results parse");
    is_int(a->nresult, MD_AUTHRES_RESULTS_MAX, "at most %d results kept", MD_AUTHRES_RESULTS_MAX);
    is_int(a->skipped, 5, "the rest counted as skipped");
    /* comments nested deeper than allowed */
    char deep[200] = "mx.x; spf=pass ";
    for (int i = 0; i < 40; i++)
        strcat(deep, "(");
    for (int i = 0; i < 40; i++)
        strcat(deep, ")");
    is_int(md_arrival_authres_parse(deep, strlen(deep), a, &err), MD_OK, "deep comments: the field parses");
    ok(a->nresult == 1 && a->result[0].malformed, "deep comments: the result is kept, marked malformed");
    /* a value longer than the limit */
    size_t n = MD_AUTHRES_INPUT_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    memcpy(big, "mx.x; spf=pass ", 15);
    is_int(md_arrival_authres_parse(big, n, a, &err), MD_PROTOCOL, "over %u bytes refused", MD_AUTHRES_INPUT_MAX);
    /* a long property value is cut, not overrun */
    memcpy(big, "mx.x; spf=pass smtp.mailfrom=", 29);
    is_int(md_arrival_authres_parse(big, 2000, a, &err), MD_OK, "a 2000-byte property value");
    is_int(strlen(a->result[0].prop[0].value), sizeof a->result[0].prop[0].value - 1, "cut to fit its field");
    /* NUL inside: the value ends there for the strings, not for the parser */
    static const char nul[] = "mx.x; spf=pass smtp.mailfrom=a\0b; dkim=fail";
    is_int(md_arrival_authres_parse(nul, sizeof nul - 1, a, &err), MD_OK, "a NUL byte inside");
    free(big);
    free(a);
}

/* ------------------------------------------------------------ Received-SPF */

typedef struct rs_case {
    const char *in;
    md_status st;
    const char *result, *comment;
    size_t nkv;
    int malformed;
    const char *kv;          /* "key=value" joined by '|' */
} rs_case;

static const rs_case rs_cases[] = {
    { "pass (mx.example.com: domain of a@b.example designates 192.0.2.1 as permitted sender) client-ip=192.0.2.1; "
      "envelope-from=\"a@b.example\"; helo=mail.b.example; receiver=mx.example.com; identity=mailfrom;",
      MD_OK, "pass", "mx.example.com: domain of a@b.example designates 192.0.2.1 as permitted sender", 5, 0,
      "client-ip=192.0.2.1|envelope-from=a@b.example|helo=mail.b.example|receiver=mx.example.com|identity=mailfrom" },
    /* policyd-spf's shape: capitalised, IPv6 and <UNKNOWN> unquoted */
    { "Pass (mailfrom) identity=mailfrom; client-ip=2001:db8::1; helo=x.example; envelope-from=a@b.example; "
      "receiver=<UNKNOWN>", MD_OK, "pass", "mailfrom", 5, 0,
      "identity=mailfrom|client-ip=2001:db8::1|helo=x.example|envelope-from=a@b.example|receiver=<UNKNOWN>" },
    { "softfail", MD_OK, "softfail", "", 0, 0, "" },
    { "  none  ", MD_OK, "none", "", 0, 0, "" },
    { "TempError (dns (nested)) problem=\"timeout\"", MD_OK, "temperror", "dns (nested)", 1, 0, "problem=timeout" },
    { "permerror client-ip = 192.0.2.1 ; x-extra=1", MD_OK, "permerror", "", 2, 0, "client-ip=192.0.2.1|x-extra=1" },
    { "fail client-ip", MD_OK, "fail", "", 0, 1, "" },
    { "neutral client-ip=1.2.3.4 garbage", MD_OK, "neutral", "", 0, 1, "" },
    { "pass (c\x1b[2J) client-ip=1", MD_OK, "pass", "c?[2J", 1, 0, "client-ip=1" },
    { "bogus (x)", MD_PROTOCOL, "", "", 0, 0, "" },
    { "passclient-ip=1", MD_PROTOCOL, "", "", 0, 0, "" },
    { "fail (comment", MD_PROTOCOL, "", "", 0, 0, "" },
    { "", MD_PROTOCOL, "", "", 0, 0, "" },
};

static void test_received_spf(void)
{
    for (size_t i = 0; i < sizeof rs_cases / sizeof rs_cases[0]; i++) {
        const rs_case *c = &rs_cases[i];
        md_received_spf r;
        md_error err = { 0 };
        md_status st = md_arrival_received_spf_parse(c->in, strlen(c->in), &r, &err);
        is_int(st, c->st, "received-spf %zu '%s': status (%s)", i, shown(c->in), err.text);
        if (st != MD_OK)
            continue;
        char kv[800];
        size_t o = 0;
        kv[0] = '\0';
        for (size_t k = 0; k < r.nkv; k++)
            o += (size_t)snprintf(kv + o, sizeof kv - o, "%s%s=%s", k ? "|" : "", r.kv[k].key, r.kv[k].value);
        is_str(r.result, c->result, "received-spf %zu: result", i);
        is_str(r.comment, c->comment, "received-spf %zu: comment", i);
        is_int(r.nkv, c->nkv, "received-spf %zu: pairs", i);
        is_int(r.malformed, c->malformed, "received-spf %zu: malformed", i);
        is_str(kv, c->kv, "received-spf %zu: key=value", i);
    }
}

/* ------------------------------------------------- the receiver's fields */

#define SENT_TOP \
    "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n" \
    "From: noreply@example.com\r\n" \
    "To: maria@lab.test\r\n" \
    "Subject: test\r\n" \
    "Message-ID: <abc.1@example.com>\r\n" \
    "MIME-Version: 1.0\r\n"
#define SENT_REST \
    "X-Maildiag-Test: yes\r\n" \
    "Content-Type: text/plain\r\n" \
    "\r\n" \
    "Authentication-Results: mx.lab.test; spf=pass; dkim=pass; dmarc=pass\r\n"   /* in the body: text */

/* What we sent: a forged Authentication-Results among our own fields,
 * claiming the receiver's authserv-id, all pass. */
static const char sent[] = SENT_TOP
    "Authentication-Results: mx.lab.test; spf=pass smtp.mailfrom=example.com; dkim=pass; dmarc=pass\r\n"
    "Received-SPF: pass (forged) client-ip=192.0.2.1\r\n"
    SENT_REST;

#define TRACE \
    "Return-Path: <noreply@example.com>\r\n" \
    "Delivered-To: maria@lab.test\r\n"

typedef struct auth_case {
    const char *name, *above;      /* fields above the message sent */
    const char *const *ids;
    md_status st;
    const char *spf, *dkim, *dmarc, *id;
    size_t nauthres, nreceived_spf, ignored, unreadable;
} auth_case;

static const char *const other_ids[] = { "other.test", NULL };
static const char *const lab_ids[] = { "OTHER.test", "MX.lab.test", NULL };

static const auth_case auth_cases[] = {
    { "the receiver's fields, the forgeries ignored",
      TRACE "Authentication-Results: mx.lab.test;\r\n\tspf=fail smtp.mailfrom=example.com;\r\n dkim=none;\r\n"
      " dmarc=fail header.from=example.com\r\n"
      "Received-SPF: fail (mx.lab.test: 127.0.0.1 is not permitted) client-ip=127.0.0.1;\r\n"
      "Received: from x by mx.lab.test\r\n", NULL, MD_OK, "fail", "none", "fail", "mx.lab.test", 1, 1, 2, 0 },
    { "no fields of the receiver: nothing said", TRACE "Received: from x by mx.lab.test\r\n", NULL, MD_OK,
      "", "", "", "", 0, 0, 2, 0 },
    { "a relay's below the receiver's: the topmost id only",
      "Authentication-Results: mx.lab.test; spf=pass\r\n" "Received: from relay by mx.lab.test\r\n"
      "Authentication-Results: relay.example; spf=fail; dkim=fail\r\n" "Received: from us by relay.example\r\n",
      NULL, MD_OK, "pass", "", "", "mx.lab.test", 1, 0, 3, 0 },
    { "configured ids: other ids are not trusted",
      "Authentication-Results: mx.lab.test; spf=pass; dkim=pass\r\n"
      "Received-SPF: softfail (x) client-ip=127.0.0.1\r\n", other_ids, MD_OK, "softfail", "", "", "", 0, 1, 3, 0 },
    { "configured ids, compared without case",
      "Authentication-Results: mx.lab.test; spf=pass; dkim=pass; dmarc=pass\r\n"
      "Authentication-Results: relay.example; dkim=fail\r\n", lab_ids, MD_OK, "pass", "pass", "pass",
      "mx.lab.test", 1, 0, 3, 0 },
    { "two of the receiver's: dkim passes when one signature passes",
      "Authentication-Results: mx.lab.test; dkim=fail header.d=a.example\r\n"
      "Authentication-Results: mx.lab.test; dkim=pass header.d=b.example; dmarc=pass\r\n", NULL, MD_OK,
      "", "pass", "pass", "mx.lab.test", 2, 0, 2, 0 },
    { "none: nothing applied", "Authentication-Results: mx.lab.test; none\r\n", NULL, MD_OK, "none", "none", "none",
      "mx.lab.test", 1, 0, 2, 0 },
    { "none, but Received-SPF says", "Authentication-Results: mx.lab.test; none\r\nReceived-SPF: pass client-ip=1\r\n",
      NULL, MD_OK, "pass", "none", "none", "mx.lab.test", 1, 1, 2, 0 },
    { "the topmost Received-SPF only",
      "Received-SPF: neutral (a) client-ip=1\r\nReceived: x\r\nReceived-SPF: fail (b) client-ip=2\r\n", NULL, MD_OK,
      "neutral", "", "", "", 0, 1, 3, 0 },
    { "unreadable fields of the receiver",
      "Authentication-Results: ;;;\r\nReceived-SPF: maybe\r\nAuthentication-Results: mx.lab.test; dmarc=fail\r\n",
      NULL, MD_OK, "", "", "fail", "mx.lab.test", 1, 0, 2, 2 },
    { "Exchange Online's field without authserv-id",
      "Authentication-Results: spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=none "
      "(message not signed) header.d=none;dmarc=none action=none header.from=example.com;compauth=pass reason=100\r\n",
      NULL, MD_OK, "pass", "none", "none", "", 1, 0, 2, 0 },
};

static char *stored(const char *above, const char *msg)
{
    return md_xasprintf("%s%s", above, msg);
}

static void test_auth_read(void)
{
    for (size_t i = 0; i < sizeof auth_cases / sizeof auth_cases[0]; i++) {
        const auth_case *c = &auth_cases[i];
        char *s = stored(c->above, sent);
        md_arrival_auth a;
        md_error err = { 0 };
        md_status st = md_arrival_auth_read(s, strlen(s), sent, sizeof sent - 1, c->ids, &a, &err);
        is_int(st, c->st, "%s: status (%s)", c->name, err.text);
        is_str(a.spf, c->spf, "%s: spf", c->name);
        is_str(a.dkim, c->dkim, "%s: dkim", c->name);
        is_str(a.dmarc, c->dmarc, "%s: dmarc", c->name);
        is_str(a.authserv_id, c->id, "%s: authserv-id", c->name);
        is_int(a.nauthres, c->nauthres, "%s: Authentication-Results read", c->name);
        is_int(a.nreceived_spf, c->nreceived_spf, "%s: Received-SPF read", c->name);
        is_int(a.ignored, c->ignored, "%s: ignored", c->name);
        is_int(a.unreadable, c->unreadable, "%s: unreadable", c->name);
        for (size_t k = 0; k < a.nauthres; k++)
            ok(strstr(a.authres[k], "forged") == NULL && strchr(a.authres[k], '\t') == NULL &&
               strchr(a.authres[k], '\n') == NULL, "%s: value %zu unfolded, not the forgery", c->name, k);
        md_arrival_auth_clear(&a);
        free(s);
    }
    /* the first case's value, unfolded */
    char *s = stored(auth_cases[0].above, sent);
    md_arrival_auth a;
    md_error err = { 0 };
    md_arrival_auth_read(s, strlen(s), sent, sizeof sent - 1, NULL, &a, &err);
    is_str(a.nauthres ? a.authres[0] : "", "mx.lab.test; spf=fail smtp.mailfrom=example.com; dkim=none; "
           "dmarc=fail header.from=example.com", "unfolded value kept for the report");
    md_arrival_auth_clear(&a);
    free(s);

    /* A forgery the receiver's own software put among our fields (the lab's
     * header_checks does this) sits where a sender's would: ignored. */
    static const char plain[] = SENT_TOP SENT_REST;
    s = md_xasprintf("%sAuthentication-Results: mx.lab.test; spf=fail\r\n%.*s"
                     "Authentication-Results: mx.lab.test; spf=pass; dkim=pass; dmarc=pass\r\n%s",
                     TRACE, (int)(strlen(SENT_TOP)), plain, plain + strlen(SENT_TOP));
    is_int(md_arrival_auth_read(s, strlen(s), plain, sizeof plain - 1, NULL, &a, &err), MD_OK, "inserted: status");
    is_str(a.spf, "fail", "inserted among our fields: ignored, the receiver's read");
    is_str(a.dkim, "", "inserted among our fields: its dkim=pass not taken");
    is_int(a.ignored, 1, "inserted among our fields: counted as ignored");
    md_arrival_auth_clear(&a);
    free(s);

    /* Not our message: no Message-ID field equal to ours */
    static const char other[] = "Message-ID: <abc.1@example.com>x\r\nSubject: <abc.1@example.com>\r\n\r\n";
    is_int(md_arrival_auth_read(other, sizeof other - 1, sent, sizeof sent - 1, NULL, &a, &err), MD_NOTFOUND,
           "a Message-ID that only contains ours is another message");
    md_arrival_auth_clear(&a);
    static const char noid[] = "Subject: x\r\n\r\nbody\r\n";
    is_int(md_arrival_auth_read(sent, sizeof sent - 1, noid, sizeof noid - 1, NULL, &a, &err), MD_CONFIG,
           "a message sent without Message-ID");
    md_arrival_auth_clear(&a);
    /* our Message-ID folded onto the next line still matches */
    s = md_xasprintf("Authentication-Results: mx.lab.test; dkim=pass\r\nDate: x\r\nFrom: a\r\nTo: b\r\n"
                     "Subject: c\r\nMessage-ID:\r\n <abc.1@example.com>\r\n\r\n");
    is_int(md_arrival_auth_read(s, strlen(s), sent, sizeof sent - 1, NULL, &a, &err), MD_OK, "folded Message-ID");
    is_str(a.dkim, "pass", "folded Message-ID: the receiver's field read");
    md_arrival_auth_clear(&a);
    free(s);
    md_arrival_auth_clear(NULL);
}

/* ------------------------------------------------------------- the report */

static void test_report(void)
{
    md_arrival_result r;
    md_error e = { 0 };
    md_error_set(&e, MD_PERMFAIL, "imap.login", "refused the login of \xff\x1b[2J");
    md_arrival_open_failed("imaps://u@127.0.0.1:1/INBOX", &e, &r);
    md_report *rep = md_report_new("t", "x");
    md_arrival_report(&r, rep);
    is_int(md_report_status(rep), MD_SEV_UNKNOWN, "open failed: unknown");
    ok(md_report_has(rep, "delivery.mailbox_error"), "open failed: delivery.mailbox_error");
    md_arrival_describe(&r, rep);
    json_t *j = json_object_get(md_report_fields(rep), "arrival");
    char *txt = json_dumps(j, JSON_COMPACT);
    ok(txt && strstr(txt, "\"found\":false") && strstr(txt, "\"stage\":\"imap.login\"") && !strstr(txt, "\x1b"),
       "open failed: JSON found false, the stage, no control bytes: %s", txt ? txt : "(null)");
    free(txt);
    md_report_free(rep);
    md_arrival_result_clear(&r);

    md_arrival_not_awaited(NULL, "rejected", &r);
    rep = md_report_new("t", "x");
    md_arrival_report(&r, rep);
    ok(md_report_has(rep, "delivery.not_awaited") && md_report_count(rep) == 1, "not awaited: one finding");
    md_report_free(rep);
    md_arrival_result_clear(&r);
    md_arrival_result_clear(NULL);

    is_str(md_arrival_outcome_name(MD_ARRIVAL_NOT_FOUND), "not_found", "outcome names");
    md_arrival_options o = { .url = "imaps://u@127.0.0.1/INBOX", .password = "x", .timeout_ms = 86400001u };
    md_arrival *a = NULL;
    is_int(md_arrival_open(&o, &a, &e), MD_CONFIG, "a timeout over a day is refused before connecting");
    o.timeout_ms = 1000;
    o.url = "imaps://127.0.0.1/INBOX";
    is_int(md_arrival_open(&o, &a, &e), MD_CONFIG, "a URL without user is refused");
    md_arrival_free(a);
    md_arrival_free(NULL);
}

/* ---------------------------------------------------------------- latency */

static void test_latency(void)
{
    static const struct {
        int64_t idate, reply, found, latency, skew;
        const char *what;
    } c[] = {
        { 1000, 999400, 1000200, 600, 0, "stored 600 ms after the reply (by whole seconds)" },
        { 1000, 1000700, 1000900, 0, 0, "stored within the reply's second: 0, no skew" },
        { 1000, 1001000, 1001200, 0, 0, "exactly one second before: still the resolution" },
        { 1000, 1005500, 1005700, 0, 4500, "5.5 s before the reply: the server's clock is behind" },
        { 1010, 1000000, 1000300, 300, -9700, "after it was found: the server's clock is ahead" },
        { 1002, 1000000, 1003000, 2000, 0, "2 s, found a second later" },
        { 0, 1000000, 1000300, -1, 0, "no INTERNALDATE: unknown" },
        { 1000, 0, 1000300, -1, 0, "no final reply time: unknown" },
        { 1002, 1000000, 0, 2000, 0, "found time unknown: not bounded above" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int64_t lat, skew;
        md_arrival_latency(c[i].idate, c[i].reply, c[i].found, &lat, &skew);
        is_int(lat, c[i].latency, "latency: %s", c[i].what);
        is_int(skew, c[i].skew, "skew: %s", c[i].what);
    }
}

static void test_catalogue(void)
{
    static const struct { const char *id; md_severity sev; } ids[] = {
        { "delivery.found", MD_SEV_OK }, { "delivery.junk", MD_SEV_WARNING },
        { "delivery.not_found", MD_SEV_CRITICAL }, { "delivery.mailbox_error", MD_SEV_UNKNOWN },
        { "delivery.not_awaited", MD_SEV_UNKNOWN }, { "delivery.auth_failed", MD_SEV_WARNING },
        { "delivery.plaintext", MD_SEV_WARNING }, { "delivery.clock_skew", MD_SEV_OK },
        { "delivery.delete_failed", MD_SEV_WARNING },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const md_catalogue_entry *e = md_catalogue_find(ids[i].id);
        ok(e != NULL && e->severity == ids[i].sev, "catalogue: %s (%s)", ids[i].id, md_severity_name(ids[i].sev));
    }
}

int main(void)
{
    test_latency();
    test_catalogue();
    test_authres();
    test_authres_bounds();
    test_received_spf();
    test_auth_read();
    test_report();
    return tap_done();
}
