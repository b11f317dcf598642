/* lib/imap: IMAP through libcurl (see imap.h for what libcurl does and does
 * not do, and how this module fills the gaps). */
#include "config.h"
#include "imap.h"
#include "base/buf.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/ssl.h>

#define REPLY_MAX (4u << 20)        /* untagged responses of one command */
#define CURL_BUFFER (512L << 10)    /* libcurl strips response lines over half this */
#define FOLDERS_MAX 10000
#define UID_BATCH 500               /* UIDs in one STORE / EXPUNGE */
#define INFO_BATCH 32               /* UIDs in one FETCH of info: a reply of a few KB (see imap.h) */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_start(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct md_imap {
    CURL *c;
    CURLU *url;
    char *host, *user, *folder;
    long port;
    int implicit_tls;
    unsigned timeout_ms;
    int64_t deadline;              /* md_now_ms() value, 0 = none */
    size_t max_message, max_results;
    char errbuf[CURL_ERROR_SIZE];
    /* per request */
    md_buf body;                   /* write callback data, at most bmax bytes */
    size_t bmax;
    int overflow;
    char last_cmd[24];             /* "LOGIN", "SELECT", "UID FETCH" ... */
    char reply[MD_ERROR_TEXT_MAX]; /* the first NO/BAD/BYE, else the last tagged line; sanitized */
    int refused;                   /* reply holds a NO/BAD/BYE */
    /* the server's state, from the commands sent (on_debug) */
    int readonly;                  /* the folder is open with EXAMINE */
    uint32_t uidvalidity, uidnext; /* of the folder, from its last EXAMINE or SELECT; 0 unknown */
    /* learned from the server */
    int tls;
    char tls_version[16];
    int esearch, uidplus, special_use;
};

/* -------------------------------------------------------------- callbacks */

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
    md_imap *m = u;
    size_t len = size * n;
    if (m->body.len + len > m->bmax) {
        m->overflow = 1;
        return 0;   /* CURLE_WRITE_ERROR: stop the transfer */
    }
    md_buf_add(&m->body, p, len);
    return len;
}

static void note_capabilities(md_imap *m, const char *p, size_t n)
{
    const char *e = p + n;
    for (const char *q = p; q < e; q++) {
        if (*q != ' ')
            continue;
        size_t l = 0;
        while (q + 1 + l < e && q[1 + l] != ' ' && q[1 + l] != ']' && q[1 + l] != '\r' && q[1 + l] != '\n')
            l++;
        if (l == 7 && strncasecmp(q + 1, "ESEARCH", 7) == 0)
            m->esearch = 1;
        else if (l == 7 && strncasecmp(q + 1, "UIDPLUS", 7) == 0)
            m->uidplus = 1;
        else if (l == 11 && strncasecmp(q + 1, "SPECIAL-USE", 11) == 0)
            m->special_use = 1;
    }
}

/* Every server line.  Records whether it came over TLS, the capabilities,
 * and the last reply that can explain a failure. */
static size_t on_line(char *p, size_t size, size_t n, void *u)
{
    md_imap *m = u;
    size_t len = size * n;
    struct curl_tlssessioninfo *tsi = NULL;
    if (curl_easy_getinfo(m->c, CURLINFO_TLS_SSL_PTR, &tsi) == CURLE_OK && tsi) {
        m->tls = tsi->internals != NULL;
        if (m->tls && tsi->backend == CURLSSLBACKEND_OPENSSL && !m->tls_version[0])
            snprintf(m->tls_version, sizeof m->tls_version, "%s", SSL_get_version((SSL *)tsi->internals));
    }
    size_t l = len;
    while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
        l--;
    int untagged = l >= 2 && p[0] == '*' && p[1] == ' ';
    if (l > 12 && (memmem(p, l > 64 ? 64 : l, "CAPABILITY", 10) != NULL))
        note_capabilities(m, p, l);
    if (m->refused || l == 0 || p[0] == '+')
        return len;   /* the refusal stays: libcurl's LOGOUT after it would hide it */
    const char *word = p;
    if (!untagged) {   /* skip the tag */
        word = memchr(p, ' ', l);
        word = word ? word + 1 : p + l;
    } else {
        word = p + 2;
    }
    size_t wl = (size_t)(p + l - word);
    int no = (wl >= 3 && strncasecmp(word, "NO ", 3) == 0) || (wl >= 4 && strncasecmp(word, "BAD ", 4) == 0) ||
             (untagged && wl >= 3 && strncasecmp(word, "BYE", 3) == 0);
    if (no || !untagged) {
        md_sanitize(m->reply, sizeof m->reply, p, l);
        m->refused = no;
    }
    return len;
}

/* What we send: only the command's name is kept (LOGIN's arguments are
 * the password). */
static int on_debug(CURL *c, curl_infotype type, char *p, size_t n, void *u)
{
    md_imap *m = u;
    (void)c;
    if (type != CURLINFO_HEADER_OUT)
        return 0;
    size_t i = 0;
    while (i < n && isalnum((unsigned char)p[i]))   /* the tag */
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return 0;   /* a continuation (SASL data), not a command */
    i++;
    size_t s = i;
    while (i < n && isalpha((unsigned char)p[i]) && i - s < 12)
        i++;
    size_t w = i - s;
    if (w == 0)
        return 0;
    char cmd[24];
    memcpy(cmd, p + s, w);
    cmd[w] = '\0';
    if (strcasecmp(cmd, "UID") == 0 && i < n && p[i] == ' ') {
        size_t s2 = ++i;
        while (i < n && isalpha((unsigned char)p[i]) && i - s2 < 10)
            i++;
        snprintf(cmd + w, sizeof cmd - w, " %.*s", (int)(i - s2), p + s2);
    }
    for (char *q = cmd; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    if (strcmp(cmd, "LOGOUT") == 0)
        return 0;   /* libcurl closing after a failure: the failed command matters */
    if (strcmp(cmd, "SELECT") == 0 || strcmp(cmd, "EXAMINE") == 0)
        m->readonly = cmd[0] == 'E';
    snprintf(m->last_cmd, sizeof m->last_cmd, "%s", cmd);
    return 0;
}

/* ---------------------------------------------------------------- running */

static md_status curl_failure(md_imap *m, CURLcode rc, unsigned ms, md_error *err)
{
    const char *why = m->errbuf[0] ? m->errbuf : curl_easy_strerror(rc);
    md_status st;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        st = md_error_set(err, MD_TEMPFAIL, "imap.connect", "cannot resolve %s: %s", m->host, why);
        break;
    case CURLE_COULDNT_CONNECT:
        st = md_error_set(err, MD_TEMPFAIL, "imap.connect", "cannot connect to %s port %ld: %s",
                          m->host, m->port, why);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        st = md_error_set(err, MD_TEMPFAIL, "imap.timeout", "no answer from %s port %ld within %u ms%s%s",
                          m->host, m->port, ms, m->last_cmd[0] ? " after " : " (connecting or greeting)",
                          m->last_cmd);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        st = md_error_set(err, MD_PERMFAIL, "imap.tls", "TLS with %s port %ld failed: %s", m->host,
                          m->port, why);
        break;
    case CURLE_LOGIN_DENIED:
        if (strcmp(m->last_cmd, "SELECT") == 0 || strcmp(m->last_cmd, "EXAMINE") == 0)
            st = md_error_set(err, MD_NOTFOUND, "imap.select", "the folder '%s' cannot be selected "
                              "(it does not exist, or this user may not read it)", m->folder);
        else
            st = md_error_set(err, MD_PERMFAIL, "imap.login", "%s refused the login of %s "
                              "(wrong user name or password)", m->host, m->user);
        break;
    case CURLE_REMOTE_FILE_NOT_FOUND:
        st = md_error_set(err, MD_NOTFOUND, "imap.fetch", "no such message in '%s'", m->folder);
        break;
    case CURLE_QUOTE_ERROR:
        st = md_error_set(err, MD_PERMFAIL, "imap.command", "%s refused %s", m->host,
                          m->last_cmd[0] ? m->last_cmd : "the command");
        break;
    case CURLE_WRITE_ERROR:
        st = m->overflow ? md_error_set(err, MD_PERMFAIL, "imap.size", "the answer to %s is larger than "
                                        "%zu bytes", m->last_cmd, m->bmax)
                         : md_error_set(err, MD_INTERNAL, "imap", "%s", why);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        st = md_error_set(err, MD_CONFIG, "imap.url", "%s", why);
        break;
    case CURLE_WEIRD_SERVER_REPLY:
        st = md_error_set(err, MD_PROTOCOL, "imap.protocol", "%s sent a reply that is not IMAP: %s",
                          m->host, why);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        st = md_error_set(err, MD_TEMPFAIL, "imap.connect", "the connection to %s broke: %s", m->host, why);
        break;
    default:
        st = md_error_set(err, MD_INTERNAL, "imap", "libcurl: %s", why);
        break;
    }
    if (m->reply[0])
        md_error_set_peer(err, m->reply, strlen(m->reply));
    return st;
}

/* Sets the request URL's path: "/", "/FOLDER", or "/FOLDER/;UID=n". */
static md_status set_path(md_imap *m, const char *folder, uint32_t uid, md_error *err)
{
    char *path = NULL;
    if (folder == NULL) {
        path = md_xstrdup("/");
    } else {
        char *enc = curl_easy_escape(m->c, folder, (int)strlen(folder));
        if (enc == NULL)
            return md_error_set(err, MD_NOMEM, "imap", "out of memory");
        path = uid ? md_xasprintf("/%s/;UID=%u", enc, uid) : md_xasprintf("/%s", enc);
        curl_free(enc);
    }
    char *u = NULL;
    CURLUcode uc = curl_url_set(m->url, CURLUPART_PATH, path, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(m->url, CURLUPART_URL, &u, 0);
    free(path);
    if (uc != CURLUE_OK)
        return md_error_set(err, MD_CONFIG, "imap.url", "cannot build the URL: %s", curl_url_strerror(uc));
    curl_easy_setopt(m->c, CURLOPT_URL, u);
    curl_free(u);
    return MD_OK;
}

/*
 * One request: the custom command (NULL: a fetch by URL) on folder (NULL:
 * none selected), its untagged responses or the literal into m->body (at
 * most bmax bytes).
 */
static md_status run(md_imap *m, const char *folder, uint32_t uid, const char *custom, size_t bmax,
                     md_error *err)
{
    unsigned ms = m->timeout_ms;
    if (m->deadline) {
        int64_t left = m->deadline - md_now_ms();
        if (left <= 0)
            return md_error_set(err, MD_TEMPFAIL, "imap.timeout", "the session's time with %s is over",
                                m->host);
        if ((uint64_t)left < ms)
            ms = (unsigned)left;
    }
    md_status st = set_path(m, folder, uid, err);
    if (st != MD_OK)
        return st;
    m->body.len = 0;
    m->bmax = bmax;
    m->overflow = 0;
    m->last_cmd[0] = '\0';
    m->reply[0] = '\0';
    m->refused = 0;
    m->errbuf[0] = '\0';
    curl_easy_setopt(m->c, CURLOPT_CUSTOMREQUEST, custom);
    curl_easy_setopt(m->c, CURLOPT_TIMEOUT_MS, (long)ms);
    curl_easy_setopt(m->c, CURLOPT_CONNECTTIMEOUT_MS, (long)ms);
    CURLcode rc = curl_easy_perform(m->c);
    if (rc != CURLE_OK)
        return curl_failure(m, rc, ms, err);
    return MD_OK;
}

/* s as an IMAP quoted string. */
static void quoted(char *out, size_t size, const char *s)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *s && o + 3 < size; s++) {
        if (*s == '"' || *s == '\\')
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/*
 * Opens the folder again with EXAMINE (read-only) or SELECT, as a custom
 * command outside libcurl's notion of the selected folder: libcurl still
 * takes the folder as selected (it SELECTed it by URL) and sends no SELECT
 * of its own until it reconnects, so fetches by URL then run read-only and
 * set no \Seen (and Dovecot renames no Maildir file).
 */
static void read_open_codes(md_imap *m);

static md_status reopen(md_imap *m, int readonly, md_error *err)
{
    char name[600], cmd[620];
    quoted(name, sizeof name, m->folder);
    snprintf(cmd, sizeof cmd, "%s %s", readonly ? "EXAMINE" : "SELECT", name);
    md_status st = run(m, NULL, 0, cmd, REPLY_MAX, err);
    if (st == MD_OK)
        read_open_codes(m);
    return st;
}

/* -------------------------------------------------------------- open/free */

static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK || v == NULL)
        return NULL;
    char *out = md_xstrdup(v);
    curl_free(v);
    return out;
}

static md_status parse_url(md_imap *m, const char *url, md_error *err)
{
    m->url = curl_url();
    if (m->url == NULL)
        return md_error_set(err, MD_NOMEM, "imap", "out of memory");
    if (url == NULL || curl_url_set(m->url, CURLUPART_URL, url, 0) != CURLUE_OK)
        return md_error_set(err, MD_CONFIG, "imap.url",
                            "not a mailbox URL (want imaps://USER@HOST[:PORT][/FOLDER] or imap://...)");
    char *scheme = url_part(m->url, CURLUPART_SCHEME, 0), *pw = url_part(m->url, CURLUPART_PASSWORD, 0),
         *query = url_part(m->url, CURLUPART_QUERY, 0), *frag = url_part(m->url, CURLUPART_FRAGMENT, 0),
         *path = url_part(m->url, CURLUPART_PATH, 0), *port = url_part(m->url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
    md_status st = MD_OK;
    m->host = url_part(m->url, CURLUPART_HOST, 0);
    m->user = url_part(m->url, CURLUPART_USER, CURLU_URLDECODE);
    if (scheme == NULL || (strcmp(scheme, "imaps") != 0 && strcmp(scheme, "imap") != 0))
        st = md_error_set(err, MD_CONFIG, "imap.url", "the mailbox URL must start with imaps:// or imap://");
    else if (pw)
        st = md_error_set(err, MD_CONFIG, "imap.url", "the mailbox URL must not hold the password "
                          "(give it in a file or the environment)");
    else if (m->user == NULL || *m->user == '\0')
        st = md_error_set(err, MD_CONFIG, "imap.url", "the mailbox URL names no user (imaps://USER@HOST/...)");
    else if (m->host == NULL || *m->host == '\0')
        st = md_error_set(err, MD_CONFIG, "imap.url", "the mailbox URL names no host");
    else if (query || frag || (path && strchr(path, ';')))
        st = md_error_set(err, MD_CONFIG, "imap.url", "the mailbox URL names a folder only: no ';', '?' or '#'");
    if (st == MD_OK) {
        m->implicit_tls = strcmp(scheme, "imaps") == 0;
        m->port = port ? strtol(port, NULL, 10) : (m->implicit_tls ? 993 : 143);
        int dl = 0;
        char *dec = path ? curl_easy_unescape(NULL, path, 0, &dl) : NULL;
        const char *f = dec ? dec : "";
        while (*f == '/')
            f++;
        size_t fl = strlen(f);
        while (fl > 0 && f[fl - 1] == '/')
            fl--;
        m->folder = fl ? md_xstrndup(f, fl) : md_xstrdup("INBOX");
        if (dec && (size_t)dl != strlen(dec))
            st = md_error_set(err, MD_CONFIG, "imap.url", "the folder name holds a NUL byte");
        for (const char *q = m->folder; *q && st == MD_OK; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                st = md_error_set(err, MD_CONFIG, "imap.url", "the folder name holds control characters");
        curl_free(dec);
        /* userinfo leaves the URL: it goes to libcurl as CURLOPT_USERNAME */
        curl_url_set(m->url, CURLUPART_USER, NULL, 0);
    }
    free(scheme);
    free(pw);
    free(query);
    free(frag);
    free(path);
    free(port);
    return st;
}

md_status md_imap_open(const md_imap_options *o, md_imap **out, md_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_start);
    if (curl_init_rc != CURLE_OK)
        return md_error_set(err, MD_INTERNAL, "imap", "libcurl: %s", curl_easy_strerror(curl_init_rc));
    md_imap *m = md_xcalloc(1, sizeof *m);
    md_status st = parse_url(m, o->url, err);
    if (st == MD_OK && (o->password == NULL || *o->password == '\0'))
        st = md_error_set(err, MD_CONFIG, "imap.login", "no password for %s", m->user);
    if (st == MD_OK && (m->c = curl_easy_init()) == NULL)
        st = md_error_set(err, MD_NOMEM, "imap", "out of memory");
    if (st != MD_OK) {
        md_imap_free(m);
        return st;
    }
    m->timeout_ms = o->timeout_ms ? o->timeout_ms : MD_IMAP_TIMEOUT_DEFAULT_MS;
    m->deadline = o->deadline_ms ? md_now_ms() + o->deadline_ms : 0;
    m->max_message = o->max_message ? o->max_message : MD_IMAP_MAX_MESSAGE_DEFAULT;
    m->max_results = o->max_results ? o->max_results : MD_IMAP_MAX_RESULTS_DEFAULT;
    CURL *c = m->c;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "imap,imaps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERNAME, m->user);
    curl_easy_setopt(c, CURLOPT_PASSWORD, o->password);
    curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(m->implicit_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (o->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    if (o->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, CURL_BUFFER);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, m->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_line);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, m);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, m);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);   /* for on_debug; libcurl prints nothing itself */
    st = run(m, m->folder, 0, "NOOP", REPLY_MAX, err);
    if (st == MD_OK)
        st = reopen(m, 1, err);
    if (st != MD_OK) {
        md_imap_free(m);
        return st;
    }
    *out = m;
    return MD_OK;
}

void md_imap_free(md_imap *m)
{
    if (m == NULL)
        return;
    if (m->c)
        curl_easy_cleanup(m->c);   /* sends LOGOUT on a live connection */
    if (m->url)
        curl_url_cleanup(m->url);
    free(m->host);
    free(m->user);
    free(m->folder);
    md_buf_free(&m->body);
    free(m);
}

int md_imap_tls(const md_imap *m)
{
    return m->tls;
}

const char *md_imap_tls_version(const md_imap *m)
{
    return m->tls_version;
}

const char *md_imap_host(const md_imap *m)
{
    return m->host;
}

const char *md_imap_user(const md_imap *m)
{
    return m->user;
}

const char *md_imap_folder(const md_imap *m)
{
    return m->folder;
}

md_status md_imap_select(md_imap *m, const char *folder, md_error *err)
{
    if (folder == NULL || *folder == '\0')
        return md_error_set(err, MD_CONFIG, "imap.select", "no folder given");
    for (const char *q = folder; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return md_error_set(err, MD_CONFIG, "imap.select", "the folder name holds control characters");
    char *old = m->folder;
    m->folder = md_xstrdup(folder);
    md_status st = run(m, m->folder, 0, "NOOP", REPLY_MAX, err);
    if (st == MD_OK)
        st = reopen(m, 1, err);
    if (st != MD_OK) {
        free(m->folder);
        m->folder = old;
        return st;
    }
    free(old);
    return MD_OK;
}

/* ---------------------------------------------------------------- readers */

/* The next line of the reply body: [*p, returned end), *p moved past it. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *s = *p;
    if (s >= end)
        return NULL;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    *len = (size_t)(e - s);
    while (*len > 0 && s[*len - 1] == '\r')
        (*len)--;
    return s;
}

static int starts_ci(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && strncasecmp(s, word, w) == 0;
}

static void uids_add(md_imap_uids *u, size_t *cap, uint32_t v, size_t max)
{
    if (u->n >= max) {
        u->truncated = 1;
        return;
    }
    if (u->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        u->v = md_xrealloc(u->v, *cap * sizeof *u->v);
    }
    u->v[u->n++] = v;
}

static int cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads a number; returns the position after it, or NULL. */
static const char *read_u32(const char *p, const char *e, uint32_t *v)
{
    uint64_t x = 0;
    const char *s = p;
    while (p < e && isdigit((unsigned char)*p) && p - s < 11)
        x = x * 10 + (uint64_t)(*p++ - '0');
    if (p == s || x == 0 || x > UINT32_MAX)
        return NULL;
    *v = (uint32_t)x;
    return p;
}

/* A response code of EXAMINE / SELECT: "* OK [UIDNEXT 7] ..." (RFC 3501
 * 7.1); 0 when absent or not a number. */
static uint32_t open_code(const char *l, size_t n, const char *code)
{
    size_t cl = strlen(code);
    uint32_t v = 0;
    if (!starts_ci(l, n, "* OK [") || n < 6 + cl + 1 || strncasecmp(l + 6, code, cl) != 0 || l[6 + cl] != ' ')
        return 0;
    const char *e = read_u32(l + 7 + cl, l + n, &v);
    return e && e < l + n && *e == ']' ? v : 0;
}

/* The folder's UIDVALIDITY and UIDNEXT from the untagged responses of the
 * EXAMINE or SELECT just run. */
static void read_open_codes(md_imap *m)
{
    const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
    size_t n;
    uint32_t v;
    m->uidvalidity = m->uidnext = 0;
    while ((l = next_line(&p, end, &n)) != NULL) {
        if ((v = open_code(l, n, "UIDVALIDITY")) != 0)
            m->uidvalidity = v;
        else if ((v = open_code(l, n, "UIDNEXT")) != 0)
            m->uidnext = v;
    }
}

/* "* SEARCH 1 2 3" or "* ESEARCH (TAG "A5") UID ALL 1:3,7" into u. */
static md_status read_search(md_imap *m, md_imap_uids *u, md_error *err)
{
    const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
    size_t n, cap = 0;
    memset(u, 0, sizeof *u);
    while ((l = next_line(&p, end, &n)) != NULL) {
        const char *e = l + n, *q;
        if (starts_ci(l, n, "* SEARCH")) {
            q = l + 8;
            while (q < e) {
                uint32_t v;
                while (q < e && *q == ' ')
                    q++;
                if (q >= e)
                    break;
                if ((q = read_u32(q, e, &v)) == NULL)
                    return md_error_set(err, MD_PROTOCOL, "imap.search", "a SEARCH reply that is not a list of UIDs");
                uids_add(u, &cap, v, m->max_results);
            }
        } else if (starts_ci(l, n, "* ESEARCH")) {
            const char *all = NULL;
            for (q = l; q + 5 <= e; q++)
                if (strncasecmp(q, " ALL ", 5) == 0) {
                    all = q + 5;
                    break;
                }
            if (all == NULL)
                continue;   /* no match: no ALL */
            for (q = all; q < e && *q != ' ';) {
                uint32_t a, b;
                if ((q = read_u32(q, e, &a)) == NULL)
                    return md_error_set(err, MD_PROTOCOL, "imap.search", "an ESEARCH reply with a bad UID set");
                b = a;
                if (q < e && *q == ':' && (q = read_u32(q + 1, e, &b)) == NULL)
                    return md_error_set(err, MD_PROTOCOL, "imap.search", "an ESEARCH reply with a bad UID range");
                if (b < a) {
                    uint32_t t = a;
                    a = b;
                    b = t;
                }
                for (uint64_t v = a; v <= b && !u->truncated; v++)
                    uids_add(u, &cap, (uint32_t)v, m->max_results);
                if (q < e && *q == ',')
                    q++;
            }
        }
    }
    if (m->body.len && m->body.data[m->body.len - 1] != '\n')
        return md_error_set(err, MD_PROTOCOL, "imap.search", "the search reply was cut short");
    if (u->n > 1)
        qsort(u->v, u->n, sizeof *u->v, cmp_uid);
    return MD_OK;
}

static md_status search(md_imap *m, const char *criteria, md_imap_uids *out, md_error *err)
{
    char cmd[900];
    memset(out, 0, sizeof *out);
    snprintf(cmd, sizeof cmd, "UID SEARCH %s%s", m->esearch ? "RETURN (ALL) " : "", criteria);
    md_status st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
    if (st != MD_OK)
        return st;
    return read_search(m, out, err);
}

static int printable_ascii(const char *s, size_t max)
{
    size_t n = 0;
    for (; *s; s++, n++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || n >= max)
            return 0;
    return 1;
}

md_status md_imap_search_header(md_imap *m, const char *field, const char *value, md_imap_uids *out,
                                md_error *err)
{
    return md_imap_search_header_from(m, 0, field, value, out, err);
}

md_status md_imap_search_header_from(md_imap *m, uint32_t min_uid, const char *field, const char *value,
                                     md_imap_uids *out, md_error *err)
{
    char f[260], v[520], crit[820], from[32] = "";
    memset(out, 0, sizeof *out);
    if (field == NULL || value == NULL || !*field || !printable_ascii(field, 100) ||
        !printable_ascii(value, 250) || strpbrk(field, ": ") != NULL)
        return md_error_set(err, MD_CONFIG, "imap.search", "search by header needs a field name and a value "
                            "of printable ASCII (at most 100 and 250 characters)");
    quoted(f, sizeof f, field);
    quoted(v, sizeof v, value);
    if (min_uid > 1)
        snprintf(from, sizeof from, "UID %u:* ", min_uid);
    snprintf(crit, sizeof crit, "%sHEADER %s %s", from, f, v);
    return search(m, crit, out, err);
}

md_status md_imap_noop(md_imap *m, md_error *err)
{
    return run(m, m->folder, 0, "NOOP", REPLY_MAX, err);
}

void md_imap_folder_uids(const md_imap *m, uint32_t *uidvalidity, uint32_t *uidnext)
{
    *uidvalidity = m->uidvalidity;
    *uidnext = m->uidnext;
}

/* The item list of "* STATUS NAME (MESSAGES 3 UIDNEXT 7 UIDVALIDITY 9)":
 * the last parenthesized group of the line (a quoted NAME may hold
 * parentheses; one sent as a literal puts the list on the next line). */
static int read_status(const char *l, size_t n, md_imap_folder_status *out)
{
    const char *e = l + n, *q = NULL;
    if (n < 2 || l[n - 1] != ')')
        return 0;
    for (const char *c = l; c < e; c++)
        if (*c == '(')
            q = c;
    if (q == NULL)
        return 0;
    int got = 0;
    for (q++; q < e - 1;) {
        while (q < e - 1 && *q == ' ')
            q++;
        const char *name = q;
        while (q < e - 1 && *q != ' ')
            q++;
        size_t nl = (size_t)(q - name);
        while (q < e - 1 && *q == ' ')
            q++;
        uint64_t v = 0;
        const char *d = q;
        while (q < e - 1 && isdigit((unsigned char)*q) && v <= UINT32_MAX)
            v = v * 10 + (uint64_t)(*q++ - '0');
        if (q == d || v > UINT32_MAX || (q < e - 1 && *q != ' '))
            return 0;
        if (nl == 8 && strncasecmp(name, "MESSAGES", 8) == 0)
            out->messages = (uint32_t)v;
        else if (nl == 7 && strncasecmp(name, "UIDNEXT", 7) == 0)
            out->uidnext = (uint32_t)v, got = 1;
        else if (nl == 11 && strncasecmp(name, "UIDVALIDITY", 11) == 0)
            out->uidvalidity = (uint32_t)v;
    }
    return got;
}

md_status md_imap_status(md_imap *m, const char *folder, md_imap_folder_status *out, md_error *err)
{
    char name[600], cmd[680];
    memset(out, 0, sizeof *out);
    if (folder == NULL || *folder == '\0' || !printable_ascii(folder, 500))
        return md_error_set(err, MD_CONFIG, "imap.status", "STATUS needs a folder name of printable ASCII");
    if (strcmp(folder, m->folder) == 0)
        return md_error_set(err, MD_CONFIG, "imap.status", "STATUS of the selected folder '%s' "
                            "(RFC 3501 6.3.10: NOOP and a search there instead)", folder);
    quoted(name, sizeof name, folder);
    snprintf(cmd, sizeof cmd, "STATUS %s (MESSAGES UIDNEXT UIDVALIDITY)", name);
    md_error e = { 0 };
    md_status st = run(m, NULL, 0, cmd, REPLY_MAX, &e);
    if (st == MD_PERMFAIL && strcmp(e.stage, "imap.command") == 0) {   /* NO or BAD */
        st = md_error_set(err, MD_NOTFOUND, "imap.status", "STATUS of the folder '%s' was refused (it does "
                          "not exist, or this user may not read it)", folder);
        md_error_set_peer(err, e.peer, strlen(e.peer));
        return st;
    }
    if (st != MD_OK) {
        if (err)
            *err = e;
        return st;
    }
    const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
    size_t n;
    int in_status = 0;
    while ((l = next_line(&p, end, &n)) != NULL) {
        if (starts_ci(l, n, "* STATUS "))
            in_status = 1;
        if (in_status && read_status(l, n, out))
            return MD_OK;
    }
    return md_error_set(err, MD_PROTOCOL, "imap.status", "%s answered STATUS of '%s' without UIDNEXT", m->host,
                        folder);
}

md_status md_imap_search_since(md_imap *m, int64_t since, md_imap_uids *out, md_error *err)
{
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec" };
    char crit[40] = "ALL";
    if (since > 0) {
        struct tm tm;
        time_t t = (time_t)since;
        if (gmtime_r(&t, &tm) == NULL)
            return md_error_set(err, MD_CONFIG, "imap.search", "a date out of range");
        snprintf(crit, sizeof crit, "SINCE %d-%s-%d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
    }
    return search(m, crit, out, err);
}

void md_imap_uids_clear(md_imap_uids *u)
{
    if (u == NULL)
        return;
    free(u->v);
    memset(u, 0, sizeof *u);
}

/* The FETCH line of uid: "* 3 FETCH (UID 7 FLAGS (\Seen) INTERNALDATE
 * "02-Dec-2026 02:08:37 +0000" RFC822.SIZE 145)". */
static int read_info(const char *l, size_t n, uint32_t uid, md_imap_info *out)
{
    const char *e = l + n, *q;
    uint32_t got = 0;
    memset(out, 0, sizeof *out);
    if (!starts_ci(l, n, "* ") || (q = memchr(l, '(', n)) == NULL)
        return 0;
    while (++q < e) {
        if (*q == ' ')
            continue;
        if (e - q > 4 && strncasecmp(q, "UID ", 4) == 0) {
            if ((q = read_u32(q + 4, e, &got)) == NULL)
                return 0;
            q--;
        } else if (e - q > 7 && strncasecmp(q, "FLAGS (", 7) == 0) {
            const char *c = memchr(q, ')', (size_t)(e - q));
            if (c == NULL)
                return 0;
            for (const char *f = q + 7; f + 5 <= c; f++) {
                if (strncasecmp(f, "\\Seen", 5) == 0)
                    out->seen = 1;
                if (f + 8 <= c && strncasecmp(f, "\\Deleted", 8) == 0)
                    out->deleted = 1;
            }
            q = c;
        } else if (e - q > 14 && strncasecmp(q, "INTERNALDATE \"", 14) == 0) {
            const char *c = memchr(q + 14, '"', (size_t)(e - q - 14));
            if (c == NULL || c - q - 14 > 40)
                return 0;
            char d[48];
            memcpy(d, q + 14, (size_t)(c - q - 14));
            d[c - q - 14] = '\0';
            time_t t = curl_getdate(d, NULL);
            out->internal_date = t > 0 ? (int64_t)t : 0;
            q = c;
        } else if (e - q > 12 && strncasecmp(q, "RFC822.SIZE ", 12) == 0) {
            uint64_t s = 0;
            const char *d = q + 12;
            while (d < e && isdigit((unsigned char)*d) && s < ((uint64_t)1 << 40))
                s = s * 10 + (uint64_t)(*d++ - '0');
            out->size = (size_t)s;
            q = d - 1;
        } else {
            while (q < e && *q != ' ' && *q != ')')
                q++;
        }
    }
    out->uid = got;
    return got != 0 && (uid == 0 || got == uid);
}

md_status md_imap_fetch_info(md_imap *m, uint32_t uid, md_imap_info *out, md_error *err)
{
    char cmd[80];
    memset(out, 0, sizeof *out);
    snprintf(cmd, sizeof cmd, "UID FETCH %u (UID FLAGS INTERNALDATE RFC822.SIZE)", uid);
    md_status st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
    if (st != MD_OK)
        return st;
    const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
    size_t n;
    while ((l = next_line(&p, end, &n)) != NULL)
        if (read_info(l, n, uid, out))
            return MD_OK;
    return md_error_set(err, MD_NOTFOUND, "imap.fetch", "no message with UID %u in '%s'", uid, m->folder);
}

/* Appends a UID set of u[0..n) ("3:7,9") to buf, runs joined. */
static char *uid_set(const uint32_t *u, size_t n)
{
    char *set = md_xmalloc(n * 22 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && u[j + 1] == u[j] + 1)
            j++;
        o += (size_t)(j > i ? sprintf(set + o, "%s%u:%u", o ? "," : "", u[i], u[j])
                            : sprintf(set + o, "%s%u", o ? "," : "", u[i]));
        i = j + 1;
    }
    set[o] = '\0';
    return set;
}

md_status md_imap_fetch_infos(md_imap *m, const md_imap_uids *uids, md_imap_info *out, md_error *err)
{
    memset(out, 0, uids->n * sizeof *out);
    for (size_t i = 0; i < uids->n; i += INFO_BATCH) {
        size_t k = uids->n - i < INFO_BATCH ? uids->n - i : INFO_BATCH;
        char *set = uid_set(uids->v + i, k);
        char *cmd = md_xasprintf("UID FETCH %s (UID FLAGS INTERNALDATE RFC822.SIZE)", set);
        free(set);
        md_status st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
        free(cmd);
        if (st != MD_OK)
            return st;
        const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
        size_t n;
        while ((l = next_line(&p, end, &n)) != NULL) {
            md_imap_info in;
            read_info(l, n, 0, &in);
            const uint32_t *hit = in.uid ? bsearch(&in.uid, uids->v + i, k, sizeof *uids->v, cmp_uid) : NULL;
            if (hit)
                out[hit - uids->v] = in;
        }
    }
    return MD_OK;
}

md_status md_imap_fetch_known(md_imap *m, const md_imap_info *info, char **data, size_t *len, md_error *err)
{
    *data = NULL;
    *len = 0;
    if (info->uid == 0)
        return md_error_set(err, MD_NOTFOUND, "imap.fetch", "no such message in '%s'", m->folder);
    if (info->size > m->max_message)
        return md_error_set(err, MD_PERMFAIL, "imap.size", "message UID %u has %zu bytes, more than the "
                            "limit of %zu", info->uid, info->size, m->max_message);
    md_status st = m->readonly ? MD_OK : reopen(m, 1, err);
    if (st == MD_OK)
        st = run(m, m->folder, info->uid, NULL, m->max_message, err);
    if (st == MD_OK && !info->seen && !m->readonly) {   /* libcurl reconnected and SELECTed */
        char cmd[64];
        snprintf(cmd, sizeof cmd, "UID STORE %u -FLAGS.SILENT (\\Seen)", info->uid);
        md_buf body = m->body;
        m->body = (md_buf){ 0 };   /* keep the message across the second request */
        st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
        md_buf_free(&m->body);
        m->body = body;
    }
    if (st != MD_OK)
        return st;
    *data = md_buf_steal(&m->body, len);
    return MD_OK;
}

md_status md_imap_fetch(md_imap *m, uint32_t uid, char **data, size_t *len, md_imap_info *info,
                        md_error *err)
{
    md_imap_info in;
    *data = NULL;
    *len = 0;
    md_status st = md_imap_fetch_info(m, uid, &in, err);
    if (st != MD_OK)
        return st;
    if (info)
        *info = in;
    return md_imap_fetch_known(m, &in, data, len, err);
}

/* STORE +FLAGS.SILENT (\Deleted) of uids, in batches; with expunge, then
 * UID EXPUNGE of each batch (UIDPLUS) or EXPUNGE. */
static md_status store_deleted(md_imap *m, const uint32_t *uids, size_t n, int expunge, md_error *err)
{
    md_status st = m->readonly ? reopen(m, 0, err) : MD_OK;
    for (size_t i = 0; i < n && st == MD_OK; i += UID_BATCH) {
        size_t k = n - i < UID_BATCH ? n - i : UID_BATCH;
        char *set = uid_set(uids + i, k);
        char *cmd = md_xasprintf("UID STORE %s +FLAGS.SILENT (\\Deleted)", set);
        st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
        free(cmd);
        if (st == MD_OK && expunge) {
            cmd = m->uidplus ? md_xasprintf("UID EXPUNGE %s", set) : md_xstrdup("EXPUNGE");
            st = run(m, m->folder, 0, cmd, REPLY_MAX, err);
            free(cmd);
        }
        free(set);
    }
    return st;
}

md_status md_imap_delete(md_imap *m, const uint32_t *uids, size_t n, md_error *err)
{
    return store_deleted(m, uids, n, 1, err);
}

md_status md_imap_flag_deleted(md_imap *m, const uint32_t *uids, size_t n, md_error *err)
{
    return store_deleted(m, uids, n, 0, err);
}

int md_imap_uidplus(const md_imap *m)
{
    return m->uidplus;
}

void md_imap_set_deadline(md_imap *m, unsigned ms)
{
    m->deadline = ms ? md_now_ms() + ms : 0;
}

/* --------------------------------------------------------------------- list */

static const struct {
    const char *attr;
    unsigned flag;
} attrs[] = {
    { "\\Junk", MD_IMAP_JUNK }, { "\\Trash", MD_IMAP_TRASH }, { "\\Sent", MD_IMAP_SENT },
    { "\\Drafts", MD_IMAP_DRAFTS }, { "\\Archive", MD_IMAP_ARCHIVE }, { "\\All", MD_IMAP_ALL },
    { "\\Flagged", MD_IMAP_FLAGGED }, { "\\Noselect", MD_IMAP_NOSELECT },
    { "\\NonExistent", MD_IMAP_NOSELECT },
};

/* "* LIST (\HasNoChildren \Junk) "/" Junk" into f; 0 when the line is not
 * a LIST reply this reader takes (a name sent as a literal is skipped). */
static int read_list(const char *l, size_t n, md_imap_folder_info *f)
{
    const char *e = l + n, *q;
    if (!starts_ci(l, n, "* LIST (") || (q = memchr(l, ')', n)) == NULL)
        return 0;
    f->flags = 0;
    for (const char *a = l + 8; a < q;) {
        size_t w = strcspn(a, " )");
        if (a + w > q)
            w = (size_t)(q - a);
        for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
            if (w == strlen(attrs[i].attr) && strncasecmp(a, attrs[i].attr, w) == 0)
                f->flags |= attrs[i].flag;
        a += w + 1;
    }
    q++;
    while (q < e && *q == ' ')
        q++;
    if (q < e && *q == '"') {   /* the delimiter */
        q++;
        if (q < e && *q == '\\')
            q++;
        q += 2;
    } else if (e - q >= 3 && strncasecmp(q, "NIL", 3) == 0) {
        q += 3;
    } else {
        return 0;
    }
    while (q < e && *q == ' ')
        q++;
    if (q >= e || *q == '{')
        return 0;
    char name[512];
    size_t o = 0;
    if (*q == '"') {
        for (q++; q < e && *q != '"' && o < sizeof name - 1; q++) {
            if (*q == '\\' && q + 1 < e)
                q++;
            name[o++] = *q;
        }
    } else {
        while (q < e && *q != ' ' && o < sizeof name - 1)
            name[o++] = *q++;
    }
    if (o == 0)
        return 0;
    name[o] = '\0';
    f->name = md_xmalloc(o + 1);
    md_sanitize(f->name, o + 1, name, o);
    return 1;
}

md_status md_imap_list(md_imap *m, md_imap_folder_list *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    md_status st = run(m, NULL, 0, m->special_use ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)" : "LIST \"\" \"*\"",
                       REPLY_MAX, err);
    if (st != MD_OK)
        return st;
    const char *p = md_buf_cstr(&m->body), *end = p + m->body.len, *l;
    size_t n, cap = 0;
    while ((l = next_line(&p, end, &n)) != NULL && out->n < FOLDERS_MAX) {
        md_imap_folder_info f = { 0 };
        if (!read_list(l, n, &f))
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->v = md_xrealloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n++] = f;
    }
    return MD_OK;
}

void md_imap_folder_list_clear(md_imap_folder_list *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int md_imap_folder_is_junk(const md_imap_folder_info *f)
{
    if (f->flags & MD_IMAP_NOSELECT)
        return 0;
    if (f->flags & MD_IMAP_JUNK)
        return 1;
    const char *b = f->name, *s;
    for (s = b; *s; s++)   /* the last level of the name */
        if ((*s == '/' || *s == '.') && s[1])
            b = s + 1;
    return strcasecmp(b, "Junk") == 0 || strcasecmp(b, "Spam") == 0;
}

const char *md_imap_junk_folder(const md_imap_folder_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if ((l->v[i].flags & MD_IMAP_JUNK) && !(l->v[i].flags & MD_IMAP_NOSELECT))
            return l->v[i].name;
    for (size_t i = 0; i < l->n; i++)
        if (md_imap_folder_is_junk(&l->v[i]))
            return l->v[i].name;
    return NULL;
}
