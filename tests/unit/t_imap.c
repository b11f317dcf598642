/*
 * lib/imap without a real server: URLs that are refused before any
 * connection, a port where nothing listens, a server that accepts and then
 * says nothing, and one that speaks something else.  Each must fail with
 * its own status and stage, and quickly.
 *
 * With MAILDIAG_TEST_IMAP=URL (and _PASSWORD, _CA, _MSGID, _FILE, _DELETE
 * set) it runs against that real server instead:
 * tests/integration/test_bounces.py passes a lab Dovecot whose folder holds
 * the message _FILE with Message-ID _MSGID, a \Junk folder, and a message
 * with Message-ID _DELETE that may be deleted.
 */
#include "config.h"
#include "imap/imap.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_urls(void)
{
    static const struct { const char *url, *password, *text; } cases[] = {
        { "http://u@127.0.0.1/", "pw", "imaps:// or imap://" },
        { "imaps://127.0.0.1/INBOX", "pw", "names no user" },
        { "imaps://u:secret@127.0.0.1/INBOX", "pw", "must not hold the password" },
        { "imaps://u@127.0.0.1/INBOX?ALL", "pw", "folder only" },
        { "imaps://u@127.0.0.1/INBOX/;UID=3", "pw", "folder only" },
        { "imaps://u@127.0.0.1/IN%0ABOX", "pw", "control characters" },
        { "imaps://u@127.0.0.1/INBOX", "", "no password" },
        { "not a url", "pw", "not a mailbox URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        md_imap_options o = { .url = cases[i].url, .password = cases[i].password, .timeout_ms = 2000 };
        md_imap *m = NULL;
        md_error err = { 0 };
        md_status st = md_imap_open(&o, &m, &err);
        is_int(st, MD_CONFIG, "url '%s' refused", cases[i].url);
        ok(strstr(err.text, cases[i].text) != NULL, "url '%s': %s", cases[i].url, err.text);
        md_imap_free(m);
    }
    md_imap_free(NULL);
}

/* A listening socket on 127.0.0.1 and its port. */
static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct server {
    int fd;
    const char *say;    /* sent after accepting; NULL = silence */
} server;

static void *serve(void *u)
{
    server *s = u;
    int c = accept(s->fd, NULL, NULL);
    if (c >= 0) {
        if (s->say && write(c, s->say, strlen(s->say)) < 0)
            perror("write");
        char buf[512];
        while (read(c, buf, sizeof buf) > 0)   /* until the client gives up */
            ;
        close(c);
    }
    return NULL;
}

static void test_server(const char *name, const char *say, md_status want, const char *stage, int64_t max_ms,
                        const char *peer)
{
    int port = 0;
    server s = { listener(&port), say };
    pthread_t t;
    ok(s.fd >= 0, "%s: listening", name);
    if (s.fd < 0)
        return;
    pthread_create(&t, NULL, serve, &s);
    char url[80];
    snprintf(url, sizeof url, "imap://u@127.0.0.1:%d/INBOX", port);
    md_imap_options o = { .url = url, .password = "pw", .timeout_ms = 1000 };
    md_imap *m = NULL;
    md_error err = { 0 };
    int64_t t0 = md_now_ms();
    md_status st = md_imap_open(&o, &m, &err);
    int64_t took = md_now_ms() - t0;
    is_int(st, want, "%s: status (%s: %s)", name, err.stage, err.text);
    is_str(err.stage, stage, "%s: stage", name);
    if (peer)
        ok(strstr(err.peer, peer) != NULL, "%s: the server's words are kept (%s)", name, err.peer);
    ok(took < max_ms, "%s: fails within %lld ms (took %lld)", name, (long long)max_ms, (long long)took);
    md_imap_free(m);
    shutdown(s.fd, SHUT_RDWR);
    pthread_join(t, NULL);
    close(s.fd);
}

static void test_down(void)
{
    int port = 0, fd = listener(&port);
    close(fd);   /* nothing listens there now */
    char url[80];
    snprintf(url, sizeof url, "imaps://u@127.0.0.1:%d/", port);
    md_imap_options o = { .url = url, .password = "pw", .timeout_ms = 3000 };
    md_imap *m = NULL;
    md_error err = { 0 };
    md_status st = md_imap_open(&o, &m, &err);
    is_int(st, MD_TEMPFAIL, "server down: tempfail (%s)", err.text);
    is_str(err.stage, "imap.connect", "server down: stage");
    ok(strstr(err.text, "cannot connect") != NULL, "server down: says so");
}

static void test_deadline(void)
{
    int port = 0;
    server s = { listener(&port), NULL };
    pthread_t t;
    pthread_create(&t, NULL, serve, &s);
    char url[80];
    snprintf(url, sizeof url, "imap://u@127.0.0.1:%d/", port);
    md_imap_options o = { .url = url, .password = "pw", .timeout_ms = 10000, .deadline_ms = 700 };
    md_imap *m = NULL;
    md_error err = { 0 };
    int64_t t0 = md_now_ms();
    md_status st = md_imap_open(&o, &m, &err);
    int64_t took = md_now_ms() - t0;
    is_int(st, MD_TEMPFAIL, "the session deadline bounds the first command (%s)", err.text);
    ok(took < 3000, "deadline: took %lld ms", (long long)took);
    shutdown(s.fd, SHUT_RDWR);
    pthread_join(t, NULL);
    close(s.fd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    if (f == NULL)
        return NULL;
    do {
        if (n == cap)
            buf = realloc(buf, cap = cap ? cap * 2 : 8192);
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    *len = n;
    return buf;
}

static void test_live(const char *url)
{
    const char *pw = getenv("MAILDIAG_TEST_IMAP_PASSWORD"), *ca = getenv("MAILDIAG_TEST_IMAP_CA"),
               *msgid = getenv("MAILDIAG_TEST_IMAP_MSGID"), *file = getenv("MAILDIAG_TEST_IMAP_FILE"),
               *del = getenv("MAILDIAG_TEST_IMAP_DELETE");
    md_imap_options o = { .url = url, .password = pw, .ca_file = ca, .timeout_ms = 10000 };
    md_imap *m = NULL;
    md_error err = { 0 };
    printf("# live %s\n", url);
    is_int(md_imap_open(&o, &m, &err), MD_OK, "login (%s %s)", err.text, err.peer);
    if (m == NULL)
        return;
    ok(md_imap_tls(m), "TLS with the test CA (%s)", md_imap_tls_version(m));
    md_imap_folder_list fl;
    is_int(md_imap_list(m, &fl, &err), MD_OK, "list (%s)", err.text);
    is_str(md_imap_junk_folder(&fl), "Junk", "the \\Junk special-use folder is found");
    md_imap_folder_list_clear(&fl);
    md_imap_uids u;
    is_int(md_imap_search_header(m, "Message-ID", msgid, &u, &err), MD_OK, "search by Message-ID (%s)", err.text);
    is_int(u.n, 1, "one message has it");
    size_t want_len = 0;
    char *want = slurp(file, &want_len);
    if (u.n == 1 && want) {
        md_imap_info before, after;
        char *data = NULL;
        size_t len = 0;
        md_imap_fetch_info(m, u.v[0], &before, &err);
        is_int(md_imap_fetch(m, u.v[0], &data, &len, NULL, &err), MD_OK, "fetch (%s)", err.text);
        ok(len == want_len && data && memcmp(data, want, len) == 0, "fetched byte for byte (%zu of %zu bytes)",
           len, want_len);
        is_int(md_imap_fetch_info(m, u.v[0], &after, &err), MD_OK, "info");
        is_int(after.seen, before.seen, "fetch leaves \\Seen as it was");
        ok(after.internal_date > 1000000000, "INTERNALDATE read (%lld)", (long long)after.internal_date);
        is_int(after.size, want_len, "RFC822.SIZE");
        free(data);
        md_imap_options small = o;
        small.max_message = 16;
        md_imap *m2 = NULL;
        if (md_imap_open(&small, &m2, &err) == MD_OK) {
            is_int(md_imap_fetch(m2, u.v[0], &data, &len, NULL, &err), MD_PERMFAIL, "a message over the size limit");
            is_str(err.stage, "imap.size", "over the size limit: stage");
            md_imap_free(m2);
        }
    }
    free(want);
    md_imap_uids_clear(&u);
    is_int(md_imap_search_since(m, 0, &u, &err), MD_OK, "search all");
    ok(u.n >= 2, "search all finds the messages (%zu)", u.n);
    md_imap_info *infos = calloc(u.n + 1, sizeof *infos);
    is_int(md_imap_fetch_infos(m, &u, infos, &err), MD_OK, "the info of every message in one go (%s)", err.text);
    size_t good = 0;
    for (size_t i = 0; i < u.n; i++)
        good += infos[i].uid == u.v[i] && infos[i].size > 0 && infos[i].internal_date > 0;
    is_int(good, u.n, "every message has its info");
    if (u.n) {
        char *data = NULL;
        size_t len = 0;
        is_int(md_imap_fetch_known(m, &infos[0], &data, &len, &err), MD_OK, "fetch with the info known");
        is_int(len, infos[0].size, "as large as RFC822.SIZE said");
        free(data);
        md_imap_info gone = { 0 };
        is_int(md_imap_fetch_known(m, &gone, &data, &len, &err), MD_NOTFOUND, "a message that is gone");
    }
    free(infos);
    md_imap_uids_clear(&u);
    is_int(md_imap_search_header(m, "Message-ID", "no-such-id@nowhere.test", &u, &err), MD_OK, "search: no match");
    is_int(u.n, 0, "no match: no UIDs");
    md_imap_uids_clear(&u);
    is_int(md_imap_search_header(m, "Message-ID", "bad\r\nA1 LOGOUT", &u, &err), MD_CONFIG,
           "a search value with CR LF is refused");
    if (del) {
        md_imap_search_header(m, "Message-ID", del, &u, &err);
        is_int(u.n, 1, "the message to delete is there");
        is_int(md_imap_delete(m, u.v, u.n, &err), MD_OK, "delete (%s)", err.text);
        md_imap_uids_clear(&u);
        md_imap_search_header(m, "Message-ID", del, &u, &err);
        is_int(u.n, 0, "deleted and expunged");
        md_imap_uids_clear(&u);
    }
    is_int(md_imap_select(m, "No Such Folder", &err), MD_NOTFOUND, "a missing folder (%s)", err.text);
    is_str(err.stage, "imap.select", "missing folder: stage");
    ok(strstr(err.peer, "NO") != NULL, "missing folder: the server's words (%s)", err.peer);
    is_int(md_imap_select(m, "Junk", &err), MD_OK, "select Junk");
    is_str(md_imap_folder(m), "Junk", "now in Junk");
    md_imap_free(m);
    /* without the test CA the certificate is not trusted */
    md_imap_options noca = o;
    noca.ca_file = NULL;
    m = NULL;
    is_int(md_imap_open(&noca, &m, &err), MD_PERMFAIL, "TLS without the test CA fails (%s)", err.text);
    is_str(err.stage, "imap.tls", "TLS failure: stage");
    md_imap_free(m);
    noca.insecure = 1;
    m = NULL;
    is_int(md_imap_open(&noca, &m, &err), MD_OK, "--insecure skips the verification");
    md_imap_free(m);
    /* last: Dovecot delays the next logins from this address after a failure */
    md_imap_options bad = o;
    bad.password = "wrong password";
    m = NULL;
    is_int(md_imap_open(&bad, &m, &err), MD_PERMFAIL, "wrong password (%s)", err.text);
    is_str(err.stage, "imap.login", "wrong password: stage");
    ok(strstr(err.peer, "AUTHENTICATIONFAILED") != NULL || strstr(err.peer, "NO") != NULL,
       "wrong password: the server's words (%s)", err.peer);
    md_imap_free(m);
}

/* Which folders are Junk folders: \Junk (RFC 6154), or named Junk or Spam
 * at their last level, in any case; never a \Noselect one. */
static void test_junk_names(void)
{
    static const struct { const char *name; unsigned flags; int junk; } c[] = {
        { "Junk", 0, 1 }, { "SPAM", 0, 1 }, { "INBOX.Spam", 0, 1 }, { "Archive/junk", 0, 1 },
        { "Bulk Mail", MD_IMAP_JUNK, 1 }, { "Junkyard", 0, 0 }, { "Spam.old", 0, 0 }, { "INBOX", 0, 0 },
        { "Junk", MD_IMAP_NOSELECT, 0 }, { "Bulk", MD_IMAP_JUNK | MD_IMAP_NOSELECT, 0 }, { "x.", 0, 0 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        md_imap_folder_info f = { (char *)c[i].name, c[i].flags };
        is_int(md_imap_folder_is_junk(&f), c[i].junk, "junk folder? '%s' (flags %#x)", c[i].name, c[i].flags);
    }
    md_imap_folder_info v[] = { { (char *)"Spam", 0 }, { (char *)"Bulk", MD_IMAP_JUNK } };
    md_imap_folder_list l = { v, 2 };
    is_str(md_imap_junk_folder(&l), "Bulk", "md_imap_junk_folder prefers the \\Junk one to a name");
}

int main(void)
{
    const char *live = getenv("MAILDIAG_TEST_IMAP");
    if (live && *live) {
        test_live(live);
        return tap_done();
    }
    test_urls();
    test_junk_names();
    test_down();
    test_server("silent server", NULL, MD_TEMPFAIL, "imap.timeout", 4000, NULL);
    /* libcurl waits for an IMAP greeting, so another protocol is a timeout */
    test_server("not IMAP", "HTTP/1.1 400 Bad Request\r\n\r\n", MD_TEMPFAIL, "imap.timeout", 4000, "HTTP/1.1 400");
    test_server("refused greeting", "* BYE go away\r\n", MD_PROTOCOL, "imap.protocol", 4000, "BYE go away");
    test_deadline();
    return tap_done();
}
