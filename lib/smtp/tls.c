/*
 * lib/smtp TLS: the one SSL_CTX, SNI, the name to verify, certificate details.
 *
 * libESMTP 1.1.0 must never make its own SSL_CTX (it caches one statically and
 * frees it with the session: the second STARTTLS session in a process
 * crashes), so both engines use the context's.  libESMTP sends no SNI and
 * checks the certificate name against the address it connected to: the info
 * callback sets SNI and the host name for OpenSSL to verify at the start of
 * each handshake, for either engine.  Verification runs with
 * SSL_VERIFY_NONE so that the handshake completes and the reason reaches the
 * report; whether the session may go on is our policy (required TLS needs a
 * verified certificate unless the request is insecure; opportunistic takes
 * any).
 */
#include "config.h"

#include "smtp-int.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static __thread smtp_att *current;   /* the attempt doing a handshake on this thread */

static void info_cb(const SSL *ssl, int where, int ret);

SSL_CTX *smtp_tls_ctx(md_smtp_ctx *ctx)
{
    /* Made at first use: OpenSSL's initialisation (config file, providers)
     * costs more than a whole plain-text probe on loopback. */
    if (ctx->ssl == NULL && !ctx->ssl_failed) {
        ctx->ssl = SSL_CTX_new(TLS_client_method());
        if (ctx->ssl == NULL) {
            ctx->ssl_failed = 1;
            ERR_clear_error();
            return NULL;
        }
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_info_callback(ctx->ssl, info_cb);
    }
    return ctx->ssl;
}

void smtp_tls_load_ca(md_smtp_ctx *ctx)
{
    if (ctx->ca_loaded || smtp_tls_ctx(ctx) == NULL)
        return;
    ctx->ca_loaded = 1;
    int ok = ctx->ca_file ? SSL_CTX_load_verify_locations(ctx->ssl, ctx->ca_file, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx->ssl);
    if (ok != 1)
        ctx->ca_failed = 1;
    ERR_clear_error();
}

void smtp_tls_begin(smtp_att *a)
{
    current = a;
}

void smtp_tls_end(void)
{
    current = NULL;
}

static int is_ip_literal(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    smtp_att *a = current;
    if (a == NULL || !(where & SSL_CB_HANDSHAKE_START) || !SSL_in_before(ssl))
        return;
    SSL *s = (SSL *)ssl;
    smtp_tls_load_ca(a->ctx);
    if (a->ctx->ca_failed)
        smtp_note(a, "could not load the CA certificates%s%s: nothing will verify",
                  a->ctx->ca_file ? " from " : "", a->ctx->ca_file ? a->ctx->ca_file : "");
    if (!is_ip_literal(a->host))
        SSL_set_tlsext_host_name(s, a->host);
    /* OpenSSL checks the name during the handshake; the result arrives with
     * SSL_get_verify_result like any other verification error. */
    SSL_set1_host(s, a->host);
    snprintf(a->res->tls.peer_name, sizeof a->res->tls.peer_name, "%s", a->host);
}

void smtp_tls_record(smtp_att *a, SSL *ssl)
{
    md_smtp_tls_info *t = &a->res->tls;
    if (t->used)
        return;   /* libESMTP reports a bad certificate before STARTTLS_OK */
    t->used = 1;
    snprintf(t->version, sizeof t->version, "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    snprintf(t->cipher, sizeof t->cipher, "%s", c ? SSL_CIPHER_get_name(c) : "");
    t->bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    t->verify_code = SSL_get_verify_result(ssl);
    t->verified = t->verify_code == X509_V_OK;
    if (!t->verified)
        snprintf(t->verify_error, sizeof t->verify_error, "%s", X509_verify_cert_error_string(t->verify_code));
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (cert) {
        char buf[256];
        X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
        md_sanitize(t->subject, sizeof t->subject, buf, strlen(buf));
        X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof buf);
        md_sanitize(t->issuer, sizeof t->issuer, buf, strlen(buf));
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
            t->not_after = (int64_t)timegm(&tm);
        X509_free(cert);
    } else {
        t->verified = 0;
        snprintf(t->verify_error, sizeof t->verify_error, "no certificate");
    }
    smtp_note(a, "TLS %s %s (%d bits), certificate %s, %s", t->version, t->cipher, t->bits,
              t->subject[0] ? t->subject : "(none)", t->verified ? "verified" : t->verify_error);
}

int smtp_tls_policy_accepts(const smtp_att *a)
{
    return a->req->insecure || a->tls == MD_SMTP_TLS_OPPORTUNISTIC || a->res->tls.verified;
}

const char *smtp_tls_verify_finding(long verify_code)
{
    switch (verify_code) {
    case X509_V_OK: return NULL;
    case X509_V_ERR_CERT_HAS_EXPIRED: return "tls.cert_expired";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "tls.cert_not_yet_valid";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return "tls.cert_self_signed";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return "tls.cert_unknown_ca";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return "tls.cert_name_mismatch";
    }
    return "tls.cert_invalid";
}
