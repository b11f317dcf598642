/*
 * lib/imap without a real server: URLs that are refused before any
 * connection, a port where nothing listens, a server that accepts and then
 * says nothing, and one that speaks something else.  Each must fail with
 * its own status and stage, and quickly.  The real Dovecot is in
 * tests/integration/test_bounces.py.
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

int main(void)
{
    test_urls();
    test_down();
    test_server("silent server", NULL, MD_TEMPFAIL, "imap.timeout", 4000, NULL);
    /* libcurl waits for an IMAP greeting, so another protocol is a timeout */
    test_server("not IMAP", "HTTP/1.1 400 Bad Request\r\n\r\n", MD_TEMPFAIL, "imap.timeout", 4000, "HTTP/1.1 400");
    test_server("refused greeting", "* BYE go away\r\n", MD_PROTOCOL, "imap.protocol", 4000, "BYE go away");
    test_deadline();
    return tap_done();
}
