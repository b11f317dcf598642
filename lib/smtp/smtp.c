/*
 * lib/smtp: the public API (see smtp.h): the request checked in one place,
 * the relay and direct routes, one attempt per address with the engine the
 * request needs, the opportunistic-TLS fallback, and the result described
 * into a report.
 */
#include "config.h"

#include <stddef.h>
#include <openssl/ssl.h>
#include <auth-client.h>

#include "smtp-int.h"
#include "address/address.h"
#include "dns/name.h"
#include "mx/mx.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Context                                                                   */

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    /* A peer that closes while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    auth_client_init();
}

md_smtp_ctx *md_smtp_ctx_new(const char *ca_file, md_error *err)
{
    pthread_once(&once, global_init);
    if (ca_file && access(ca_file, R_OK) != 0)
        return md_error_set(err, MD_CONFIG, "smtp.tls", "cannot read the CA file %s: %s", ca_file,
                            strerror(errno)), NULL;
    md_smtp_ctx *ctx = md_xcalloc(1, sizeof *ctx);
    ctx->ca_file = ca_file ? md_xstrdup(ca_file) : NULL;
    return ctx;
}

void md_smtp_ctx_free(md_smtp_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->ca_file);
    free(ctx);
}

int md_smtp_tls_parse(const char *word)
{
    static const struct { const char *word; md_smtp_tls tls; } words[] = {
        { "required", MD_SMTP_TLS_REQUIRED },
        { "opportunistic", MD_SMTP_TLS_OPPORTUNISTIC },
        { "off", MD_SMTP_TLS_OFF },
    };
    for (size_t i = 0; word && i < sizeof words / sizeof words[0]; i++)
        if (strcmp(word, words[i].word) == 0)
            return (int)words[i].tls;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* What reaches the wire                                                     */

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

int md_smtp_helo_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 255 || has_control(name))
        return 0;
    if (name[0] == '[') {
        /* address-literal: [IPv4] or [IPv6:address] (RFC 5321 4.1.3) */
        char buf[64];
        unsigned char b[16];
        if (name[n - 1] != ']' || n - 2 >= sizeof buf)
            return 0;
        memcpy(buf, name + 1, n - 2);
        buf[n - 2] = '\0';
        if (strncasecmp(buf, "IPv6:", 5) == 0)
            return inet_pton(AF_INET6, buf + 5, b) == 1;
        return inet_pton(AF_INET, buf, b) == 1;
    }
    /* Domain: LDH labels of 1..63, none starting or ending with '-'. */
    if (n > 253)
        return 0;
    const char *p = name;
    for (;;) {
        size_t l = 0;
        while (p[l] && p[l] != '.') {
            if (!isalnum((unsigned char)p[l]) && p[l] != '-')
                return 0;
            l++;
        }
        if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
            return 0;
        if (p[l] == '\0')
            return 1;
        p += l + 1;
    }
}

/* An envelope address as it goes on the wire: exactly an RFC 5321
 * Mailbox (lib/address, the one grammar: nothing trimmed, no control
 * character, no display name), sent with its domain in A-labels; a
 * non-ASCII local part needs SMTPUTF8, which libESMTP cannot send.  The
 * sender may be the null reverse-path. */
static md_status envelope(const char *what, const char *in, char *out, size_t size, int empty_ok, md_error *err)
{
    if ((in == NULL || *in == '\0') && !empty_ok)
        return md_error_set(err, MD_CONFIG, "smtp.request", "no %s address", what);
    md_address a;
    md_error e = { 0 };
    unsigned opts = MD_ADDRESS_OPT_EXACT | (empty_ok ? MD_ADDRESS_OPT_NULL_PATH : 0);
    if (md_address_parse_len(in ? in : "", in ? strlen(in) : 0, opts, &a, &e) != MD_OK)
        return md_error_set(err, MD_CONFIG, "smtp.request", "the %s address is not valid: %s", what, e.text);
    if (a.flags & MD_ADDRESS_UTF8_LOCAL)
        return md_error_set(err, MD_CONFIG, "smtp.request",
                            "the %s address has a non-ASCII local part: that needs SMTPUTF8 (RFC 6531), "
                            "which libESMTP cannot send", what);
    if (strlen(a.ascii) >= size)
        return md_error_set(err, MD_CONFIG, "smtp.request", "the %s address is too long", what);
    snprintf(out, size, "%s", a.ascii);
    return MD_OK;
}

typedef struct checked {
    char helo[256];
    char from[512];
    char to[512];
    char envid[128];
} checked;

/* The one check of every value that reaches the wire, for both engines:
 * the EHLO name, the envelope, the AUTH user, the DSN envelope id. */
static md_status check_request(md_smtp_request *req, checked *ck, md_error *err)
{
    if (req->quit_after == MD_SMTP_PHASE_NONE && req->data == NULL)
        return md_error_set(err, MD_CONFIG, "smtp.request", "no message to send");
    if (envelope("sender", req->mail_from, ck->from, sizeof ck->from, 1, err) != MD_OK ||
        envelope("recipient", req->rcpt_to, ck->to, sizeof ck->to, 0, err) != MD_OK)
        return MD_CONFIG;
    req->mail_from = ck->from;
    req->rcpt_to = ck->to;

    if (req->helo) {
        if (!md_smtp_helo_valid(req->helo))
            return md_error_set(err, MD_CONFIG, "smtp.helo",
                                "the EHLO name must be a domain name or an address literal ([192.0.2.1]), "
                                "without spaces or control characters");
        snprintf(ck->helo, sizeof ck->helo, "%s", req->helo);
    } else {
        if (gethostname(ck->helo, sizeof ck->helo) != 0)
            snprintf(ck->helo, sizeof ck->helo, "localhost");
        ck->helo[sizeof ck->helo - 1] = '\0';
        if (!md_smtp_helo_valid(ck->helo))
            return md_error_set(err, MD_CONFIG, "smtp.helo", "this host's name is not a valid EHLO name%s%s",
                                req->helo_advice ? ": " : "", req->helo_advice ? req->helo_advice : "");
    }
    req->helo = ck->helo;

    if (req->auth_user) {
        if (*req->auth_user == '\0' || has_control(req->auth_user) || strlen(req->auth_user) > 255)
            return md_error_set(err, MD_CONFIG, "smtp.request",
                                "the AUTH user must be 1 to 255 bytes without control characters");
        if (req->auth_password == NULL || strpbrk(req->auth_password, "\r\n") || strlen(req->auth_password) > 255)
            return md_error_set(err, MD_CONFIG, "smtp.request",
                                "AUTH needs a password of at most 255 bytes without line breaks");
    }

    ck->envid[0] = '\0';
    if (req->dsn) {
        /* RFC 3461 4.4: printable US-ASCII, at most 100 characters (libESMTP
         * writes it as xtext).  By default the Message-ID without <>. */
        if (req->dsn_envid) {
            const unsigned char *p = (const unsigned char *)req->dsn_envid;
            for (; *p; p++)
                if (*p < 0x20 || *p >= 0x7f)
                    break;
            if (*p || strlen(req->dsn_envid) > 100)
                return md_error_set(err, MD_CONFIG, "smtp.request",
                                    "the DSN envelope id must be printable ASCII, at most 100 characters");
            snprintf(ck->envid, sizeof ck->envid, "%s", req->dsn_envid);
        } else if (req->message_id) {
            size_t j = 0;
            for (const char *p = req->message_id; *p && j + 1 < sizeof ck->envid; p++)
                if (*p > 32 && *p < 127 && *p != '<' && *p != '>')
                    ck->envid[j++] = *p;
            ck->envid[j] = '\0';
            if (j > 100)
                ck->envid[0] = '\0';
        }
        req->dsn_envid = ck->envid[0] ? ck->envid : NULL;
    }
    return MD_OK;
}

/* ------------------------------------------------------------------------ */
/* Attempts                                                                  */

/* One address, one connection, one engine run, judged into rep.  *tls_fault
 * says whether STARTTLS failed on the server's side (refused, handshake). */
static md_smtp_outcome attempt_once(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res,
                                    const char *host, const char *ip, unsigned port, md_smtp_tls tls,
                                    int64_t t0, int64_t deadline, md_report *rep, int *tls_fault)
{
    smtp_att *a = md_xcalloc(1, sizeof *a);
    a->ctx = ctx;
    a->req = req;
    a->res = res;
    a->tls = tls;
    a->host = host;
    snprintf(a->ip, sizeof a->ip, "%s", ip);
    a->port = port;
    a->t0 = t0;
    a->deadline = deadline;
    a->child_fd = -1;
    memset(&res->tls, 0, sizeof res->tls);
    res->final_reply_ms = 0;
    snprintf(res->host, sizeof res->host, "%s", host);
    snprintf(res->address, sizeof res->address, "%s", ip);
    res->port = port;

    if (req->quit_after != MD_SMTP_PHASE_NONE)
        smtp_probe_run(a);
    else
        smtp_esmtp_run(a);
    if (a->partlen[0] > 0 && a->stop != STOP_PROTOCOL) {
        char shown[REPLY_LINE_MAX + 32];
        int n = snprintf(shown, sizeof shown, "%.*s (incomplete line)", (int)a->partlen[0], a->part[0]);
        smtp_transcript_add(res, smtp_rel_ms(a), '<', shown, (size_t)n);
    }
    md_smtp_outcome o = smtp_judge(a, rep);
    *tls_fault = tls == MD_SMTP_TLS_OPPORTUNISTIC && o == MD_SMTP_FAILED && res->phase == MD_SMTP_PHASE_STARTTLS &&
                 !a->tls_cert_refused && (a->got[MD_SMTP_PHASE_STARTTLS] || a->tls_handshake_failed);
    free(a);
    return o;
}

static void copy_findings(md_report *dst, const md_report *src)
{
    for (size_t i = 0; i < md_report_count(src); i++) {
        const md_finding *f = md_report_get(src, i);
        md_finding *n = md_report_add(dst, f->id, f->severity, "%s", f->summary);
        for (size_t k = 0; k < f->nevidence; k++)
            md_finding_add_evidence(n, "%s", f->evidence[k]);
    }
}

/* An attempt with opportunistic TLS's fallback: when the server offers
 * STARTTLS and then fails it (454, or a broken handshake), the message goes
 * in plaintext on a new connection, as Postfix's smtp_tls_security_level =
 * may does, with a warning that names the server's TLS fault.  Required TLS
 * never falls back. */
static md_smtp_outcome attempt(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res,
                               const char *host, const char *ip, unsigned port, md_smtp_tls tls,
                               int64_t t0, int64_t deadline, md_report *rep)
{
    md_report *first = md_report_new("smtp", req->rcpt_to);
    int fault = 0;
    md_smtp_outcome o = attempt_once(ctx, req, res, host, ip, port, tls, t0, deadline, first, &fault);
    if (!fault || md_now_ms() >= deadline) {
        copy_findings(rep, first);
        md_report_free(first);
        return o;
    }
    char why[700];
    if (res->reply.code)
        snprintf(why, sizeof why, "%d%s%s %s", res->reply.code, res->reply.enhanced[0] ? " " : "",
                 res->reply.enhanced, res->reply.text);
    else
        snprintf(why, sizeof why, "the TLS handshake failed");
    md_finding *f = md_report_add(rep, "tls.fallback_plaintext", MD_SEV_DEFAULT,
                                  "%s offered STARTTLS, then failed it (%s): %s in plaintext on a new connection, "
                                  "as opportunistic TLS allows", host, why,
                                  req->quit_after ? "probed again" : "sent");
    for (size_t i = 0; i < md_report_count(first); i++)
        md_finding_add_evidence(f, "%s: %s", md_report_get(first, i)->id, md_report_get(first, i)->summary);
    md_report_free(first);
    smtp_transcript_add(res, md_now_ms() - t0, '*', "a new connection without STARTTLS (opportunistic TLS)", 53);
    o = attempt_once(ctx, req, res, host, ip, port, MD_SMTP_TLS_OFF, t0, deadline, rep, &fault);
    res->tls.offered = 1;
    return o;
}

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */

#ifdef MD_TEST_HOOKS
unsigned smtp_test_direct_port(void)
{
    const char *p = getenv("MAILDIAG_SMTP_PORT");
    char *end;
    if (p == NULL || *p == '\0')
        return 0;
    unsigned long v = strtoul(p, &end, 10);
    return *end == '\0' && v >= 1 && v <= 65535 ? (unsigned)v : 0;
}
#endif

/* The MX check's answer.  On the heap: when the deadline passes first, the
 * check is still queued on the caller's resolver and may finish during a
 * later md_dns_step of the caller's; it then frees what it finds. */
static md_status relay(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res, int64_t t0,
                       int64_t deadline, md_error *err)
{
    snprintf(res->route, sizeof res->route, "relay");
    if (req->server[0] == '[' || strchr(req->server, ':') != strrchr(req->server, ':'))
        return md_error_set(err, MD_CONFIG, "smtp.server",
                            "the server is an IPv6 literal, which libESMTP cannot connect to: use a host name");
    char host[256];
    unsigned port = 587;
    const char *colon = strchr(req->server, ':');
    size_t hl = colon ? (size_t)(colon - req->server) : strlen(req->server);
    if (hl == 0 || hl >= sizeof host)
        return md_error_set(err, MD_CONFIG, "smtp.server", "the server has no host name");
    memcpy(host, req->server, hl);
    host[hl] = '\0';
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end || p == 0 || p > 65535)
            return md_error_set(err, MD_CONFIG, "smtp.server", "the server's port '%s' is not a port number",
                                colon + 1);
        port = (unsigned)p;
    }
    md_smtp_tls tls = req->tls ? req->tls : port == 587 ? MD_SMTP_TLS_REQUIRED : MD_SMTP_TLS_OPPORTUNISTIC;
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int gr = getaddrinfo(host, NULL, &hints, &ai);
    if (gr != 0 || ai == NULL) {
        /* EAI_AGAIN: the resolver could not answer, which says nothing
         * about the name: unknown, never "no such host". */
        if (gr == EAI_AGAIN)
            md_report_add(res->findings, "dns.temporary", MD_SEV_UNKNOWN,
                          "the address lookup for the relay %s failed temporarily (%s): the route is unknown",
                          host, gai_strerror(gr));
        else
            md_report_add(res->findings, "smtp.resolve.failed", MD_SEV_DEFAULT, "%s: %s", host,
                          gr ? gai_strerror(gr) : "no IPv4 address");
        res->phase = MD_SMTP_PHASE_RESOLVE;
        snprintf(res->host, sizeof res->host, "%s", host);
        res->outcome = gr == EAI_AGAIN ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
        return MD_OK;
    }
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        char ip[64];
        inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, ip, sizeof ip);
        res->outcome = attempt(ctx, req, res, host, ip, port, tls, t0, deadline, res->findings);
        if (res->outcome != MD_SMTP_FAILED || res->phase != MD_SMTP_PHASE_CONNECT || md_now_ms() >= deadline)
            break;
    }
    freeaddrinfo(ai);
    return MD_OK;
}

static md_status direct(md_smtp_ctx *ctx, const md_smtp_request *req, md_smtp_result *res, int64_t t0,
                        int64_t deadline, md_error *err)
{
    snprintf(res->route, sizeof res->route, "direct");
    if (req->dns == NULL)
        return md_error_set(err, MD_CONFIG, "smtp.request", "the direct route needs a resolver");
    const char *domain = strrchr(req->rcpt_to, '@') + 1;
    md_error merr = { 0 };
    md_mx_route *route = md_mx_resolve_wait(req->dns, domain, deadline, &merr);
    res->phase = MD_SMTP_PHASE_RESOLVE;
    if (route == NULL) {
        /* The deadline came before the MX answers: the route is unknown,
         * not missing.  A recipient domain that is no domain name is. */
        if (merr.status == MD_TEMPFAIL)
            md_report_add(res->findings, "dns.temporary", MD_SEV_UNKNOWN,
                          "the MX lookup for %s did not finish in time: the route is unknown", domain);
        else
            md_report_add(res->findings, "smtp.no_route", MD_SEV_WARNING, "%s", merr.text);
        res->outcome = merr.status == MD_TEMPFAIL ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
        return MD_OK;
    }
    /* The route's own verdict: its findings explain a route with nothing
     * to try, and a lookup that failed makes the send deferred. */
    md_report *judged = md_report_new("mx", domain);
    md_mx_route_evaluate(route, &(md_mx_options){ .no_details = 1 }, judged);
    unsigned port = req->direct_port ? req->direct_port : smtp_test_direct_port();
    if (port == 0)
        port = 25;
    md_smtp_tls tls = req->tls ? req->tls : MD_SMTP_TLS_OPPORTUNISTIC;
    size_t tried = 0, internal = 0, i;
    md_report *last = NULL;
    res->outcome = md_report_has(judged, "dns.temporary") ? MD_SMTP_DEFERRED : MD_SMTP_FAILED;
    for (i = 0; i < route->nhosts; i++) {
        const md_mx_host *h = &route->hosts[i];
        const char *name = h->host;
        if (name[0] == '\0' || h->ip_literal)
            continue;   /* a null MX; an address where a name belongs (RFC 5321 5.1) */
        for (size_t k = 0; k < h->naddresses; k++) {
            const char *ip = h->addresses[k];
            if (strchr(ip, ':')) {
                md_report_add_detail(res->findings, "%s %s skipped: libESMTP cannot connect to IPv6 literals", name, ip);
                continue;
            }
            md_mx_addr_class cls = md_mx_address_class(ip);
            if (cls != MD_MX_ADDR_PUBLIC && !req->allow_internal) {
                /* An MX record is the recipient domain's word, and anyone
                 * can publish one: it must not steer us into this host or
                 * its network. */
                md_report_add(res->findings, "mx.target_internal", MD_SEV_WARNING,
                              "MX host %s resolves to %s, a %s address: not connecting (allow_internal to allow)",
                              name, ip, md_mx_address_class_name(cls));
                internal++;
                continue;
            }
            if (md_now_ms() >= deadline)
                break;
            tried++;
            md_report *tmp = md_report_new("smtp", req->rcpt_to);
            res->outcome = attempt(ctx, req, res, name, ip, port, tls, t0, deadline, tmp);
            /* 4xx or no conversation: next address; 5xx (and a refused
             * password, which the next host would refuse too): the answer. */
            int next = res->outcome == MD_SMTP_DEFERRED ||
                       (res->outcome == MD_SMTP_FAILED && res->phase != MD_SMTP_PHASE_AUTH);
            if (next) {
                md_finding *f = md_report_add(res->findings, "smtp.host_failed", MD_SEV_DEFAULT, "%s (%s): %s at %s",
                                              name, ip, md_smtp_outcome_name(res->outcome), md_smtp_phase_name(res->phase));
                for (size_t x = 0; x < md_report_count(tmp); x++)
                    md_finding_add_evidence(f, "%s: %s", md_report_get(tmp, x)->id, md_report_get(tmp, x)->summary);
                md_report_free(last);
                last = tmp;
                continue;
            }
            copy_findings(res->findings, tmp);
            md_report_free(tmp);
            goto out;
        }
    }
    /* No host gave an answer: the last one's findings say why. */
    if (last)
        copy_findings(res->findings, last);
    if (tried == 0) {
        for (size_t x = 0; x < md_report_count(judged); x++) {
            const md_finding *f = md_report_get(judged, x);
            if (f->severity != MD_SEV_OK)
                md_report_add(res->findings, f->id, f->severity, "%s", f->summary);
        }
        /* A route whose lookup failed is unknown (the MX check's
         * dns.temporary says so), not missing. */
        if (internal)
            md_report_add(res->findings, "smtp.no_route", MD_SEV_DEFAULT,
                          "every MX address of %s is internal: nothing was sent", domain);
        else if (md_report_status(judged) != MD_SEV_UNKNOWN)
            md_report_add(res->findings, "smtp.no_route", MD_SEV_DEFAULT,
                          "no MX host of %s has an IPv4 address to try", domain);
        res->phase = MD_SMTP_PHASE_RESOLVE;
    }
out:
    md_report_free(last);
    md_report_free(judged);
    md_mx_route_free(route);
    return MD_OK;
}

md_status md_smtp_send(md_smtp_ctx *ctx, const md_smtp_request *req_in, md_smtp_result *res,
                       md_error *err)
{
    memset(res, 0, sizeof *res);
    md_smtp_request req = *req_in;
    checked ck;
    int64_t t0 = md_now_ms();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    res->started_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    res->findings = md_report_new("smtp", req.rcpt_to && !has_control(req.rcpt_to) ? req.rcpt_to : "");
    res->outcome = MD_SMTP_FAILED;
    if (req.message_id)
        snprintf(res->message_id, sizeof res->message_id, "%s", req.message_id);
    if (req.timeout_ms <= 0) req.timeout_ms = 60000;
    if (req.connect_timeout_ms <= 0) req.connect_timeout_ms = req.timeout_ms < 10000 ? req.timeout_ms : 10000;
    if (req.phase_timeout_ms <= 0) req.phase_timeout_ms = req.timeout_ms < 30000 ? req.timeout_ms : 30000;
    if (check_request(&req, &ck, err) != MD_OK)
        return MD_CONFIG;
    int64_t deadline = t0 + req.timeout_ms;
    md_status st = req.server ? relay(ctx, &req, res, t0, deadline, err) : direct(ctx, &req, res, t0, deadline, err);
    res->elapsed_ms = md_now_ms() - t0;
    return st;
}

void md_smtp_result_clear(md_smtp_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->ntranscript; i++)
        free(res->transcript[i].text);
    free(res->transcript);
    md_report_free(res->findings);
    memset(res, 0, sizeof *res);
}

void md_smtp_describe(const md_smtp_result *res, const char *to, md_report *rep)
{
    md_report_set(rep, "to", json_string(to ? to : ""));
    md_report_set(rep, "route", json_string(res->route));
    md_report_set(rep, "result", json_string(md_smtp_outcome_name(res->outcome)));
    md_report_set(rep, "phase", json_string(md_smtp_phase_name(res->phase)));
    json_t *r = json_object();
    json_object_set_new(r, "code", res->reply.code ? json_integer(res->reply.code) : json_null());
    json_object_set_new(r, "enhanced", res->reply.enhanced[0] ? json_string(res->reply.enhanced) : json_null());
    json_object_set_new(r, "text", json_string(res->reply.text));
    const char *words = md_smtp_explain(res->phase, &res->reply);
    if (*words)
        json_object_set_new(r, "explanation", json_string(words));
    md_report_set(rep, "reply", r);
    md_report_set(rep, "queue_id", res->queue_id[0] ? json_string(res->queue_id) : json_null());
    md_report_set(rep, "message_id", res->message_id[0] ? json_string(res->message_id) : json_null());
    md_report_set(rep, "host", json_string(res->host));
    md_report_set(rep, "address", json_string(res->address));
    md_report_set(rep, "port", json_integer(res->port));
    md_report_set(rep, "elapsed_ms", json_integer(res->elapsed_ms));
    {
        char buf[48];
        time_t st = (time_t)(res->started_ms / 1000);
        struct tm tm;
        gmtime_r(&st, &tm);
        size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, sizeof buf - n, ".%03dZ", (int)(res->started_ms % 1000));
        md_report_set(rep, "started", json_string(buf));
    }
    if (res->greylisted)
        md_report_set(rep, "greylisted", json_true());
    if (res->dsn_used)
        md_report_set(rep, "dsn", json_true());
    json_t *t = json_object();
    const md_smtp_tls_info *ti = &res->tls;
    json_object_set_new(t, "used", json_boolean(ti->used));
    json_object_set_new(t, "offered", json_boolean(ti->offered));
    if (ti->used) {
        json_object_set_new(t, "version", json_string(ti->version));
        json_object_set_new(t, "cipher", json_string(ti->cipher));
        json_object_set_new(t, "bits", json_integer(ti->bits));
        json_object_set_new(t, "verified", json_boolean(ti->verified));
        json_object_set_new(t, "peer_name", json_string(ti->peer_name));
        json_object_set_new(t, "subject", json_string(ti->subject));
        json_object_set_new(t, "issuer", json_string(ti->issuer));
        if (ti->not_after) {
            char buf[40];
            time_t na = (time_t)ti->not_after;
            struct tm tm;
            gmtime_r(&na, &tm);
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_object_set_new(t, "not_after", json_string(buf));
        }
        if (!ti->verified)
            json_object_set_new(t, "verify_error", json_string(ti->verify_error));
    }
    md_report_set(rep, "tls", t);
    json_t *tr = json_array();
    for (size_t i = 0; i < res->ntranscript; i++) {
        json_t *l = json_object();
        json_object_set_new(l, "ms", json_integer(res->transcript[i].ms));
        char d[2] = { res->transcript[i].dir, 0 };
        json_object_set_new(l, "dir", json_string(d));
        json_object_set_new(l, "text", json_string(res->transcript[i].text));
        json_array_append_new(tr, l);
    }
    md_report_set(rep, "transcript", tr);
}
