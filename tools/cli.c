/* tools/cli: shared command-line plumbing for the maildiag tools. */
#include "config.h"
#include "cli.h"

#ifndef MD_PKGLIBEXECDIR
#define MD_PKGLIBEXECDIR "/usr/local/libexec/maildiag"
#endif

#include <getopt.h>
#include <limits.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_dns_add_resolver(cli_dns *d, const char *prog, const char *spec)
{
    char buf[80];
    md_error err;
    if (md_dns_server_parse(spec, buf, sizeof buf, &err) != MD_OK) {
        cli_usage_error(prog, "--resolver: %s", err.text);
        return -1;
    }
    d->servers = md_xrealloc(d->servers, (d->nservers + 2) * sizeof *d->servers);
    d->servers[d->nservers++] = md_xstrdup(spec);
    d->servers[d->nservers] = NULL;
    return 0;
}

int cli_parse_timeout(const char *prog, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 3600) {
        cli_usage_error(prog, "--timeout: '%s' is not a number of seconds between 0 and 3600", s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_uint(const char *prog, const char *opt, const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end != '\0' || *s == '-' || v == 0 || v > max) {
        cli_usage_error(prog, "%s: '%s' is not a whole number between 1 and %u", opt, s, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Adds the servers of a list (MAILDIAG_RESOLVER, [dns] resolver).  0 or -1. */
static int add_list(cli_dns *d, const char *prog, const char *list_text, const char *from)
{
    md_error err;
    char buf[80];
    size_t n = 0;
    char **list = md_dns_server_list_split(list_text, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (md_dns_server_parse(list[i], buf, sizeof buf, &err) != MD_OK) {
            cli_fail(prog, "config.error", "%s: %s", from, err.text);
            rc = -1;
            break;
        }
        d->servers = md_xrealloc(d->servers, (d->nservers + 2) * sizeof *d->servers);
        d->servers[d->nservers++] = md_xstrdup(list[i]);
        d->servers[d->nservers] = NULL;
    }
    md_dns_server_list_free(list);
    return rc;
}

int cli_dns_settle(cli_dns *d, const char *prog)
{
    if (d->nservers > 0)
        return 0;   /* --resolver */
    const char *env = getenv("MAILDIAG_RESOLVER");
    if (env && *env)
        return add_list(d, prog, env, "MAILDIAG_RESOLVER");
    if (d->conf_resolver)
        return add_list(d, prog, d->conf_resolver, "[dns] resolver");
    return 0;
}

md_dns *cli_dns_open(cli_dns *d, const char *prog, unsigned window)
{
    md_error err;
    if (cli_dns_settle(d, prog) != 0)
        return NULL;
    md_dns_config cfg = { 0 };
    cfg.servers = (const char *const *)d->servers;
    cfg.nservers = d->nservers;
    cfg.timeout = d->timeout;
    cfg.window = window;
    md_dns *dns = md_dns_new(&cfg, &err);
    if (dns == NULL)
        cli_fail(prog, "config.error", "%s", err.text);
    return dns;
}

void cli_dns_clear(cli_dns *d)
{
    for (size_t i = 0; i < d->nservers; i++)
        free(d->servers[i]);
    free(d->servers);
    d->servers = NULL;
    d->nservers = 0;
    free(d->conf_resolver);
    d->conf_resolver = NULL;
}

/* --- output format, JSON errors -------------------------------------------- */

static void json_error(const char *id, const char *msg)
{
    cli_json_error(id, "%s", msg);
}

int cli_format_set(const char *prog, cli_format *f, cli_format want)
{
    if (want == CLI_JSON)
        cli_json_hook = json_error;
    if (*f != CLI_TEXT && *f != want) {
        cli_usage_error(prog, "--json and --plugin are two output formats: give one");
        return -1;
    }
    *f = want;
    return 0;
}

void cli_progress_init(cli_progress *p)
{
    p->enabled = isatty(STDERR_FILENO);
    p->start_ms = md_now_ms();
    p->shown = 0;
}

void cli_progress_update(cli_progress *p, const char *what, size_t started, size_t finished)
{
    if (!p->enabled)
        return;
    double secs = (double)(md_now_ms() - p->start_ms) / 1000.0;
    fprintf(stderr, "\r\033[K%zu %s done, %zu running, %.0f/s, %.1f s", finished, what,
            started - finished, secs > 0 ? (double)finished / secs : 0.0, secs);
    fflush(stderr);
    p->shown = 1;
}

void cli_progress_text(cli_progress *p, const char *fmt, ...)
{
    if (!p->enabled)
        return;
    int64_t now = md_now_ms();
    if (p->shown && now - p->last_ms < 100)
        return;   /* a terminal line ten times a second is enough */
    p->last_ms = now;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    p->shown = 1;
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled && p->shown)
        fputs("\r\033[K", stderr);
    p->shown = 0;
}

/* --- interruption and output errors ---------------------------------------- */

volatile sig_atomic_t cli_interrupted;

static void on_interrupt(int sig)
{
    cli_interrupted = sig;
}

void cli_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;     /* no SA_RESTART: poll() and read() return */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_interrupt_exit(const char *prog, const char *what, size_t done, const md_tally *t)
{
    int sig = cli_interrupted ? (int)cli_interrupted : SIGINT;
    const char *name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
    if (t)
        fprintf(stderr, "%s: interrupted by %s after %zu %s (%lu critical, %lu warning, "
                "%lu unknown, %lu ok); the output is complete up to there\n", prog, name, done, what,
                t->n[MD_SEV_CRITICAL], t->n[MD_SEV_WARNING], t->n[MD_SEV_UNKNOWN], t->n[MD_SEV_OK]);
    else
        fprintf(stderr, "%s: interrupted by %s after %zu %s\n", prog, name, done, what);
    return 128 + sig;
}

int cli_write_failed(const char *prog, int errnum)
{
    if (errnum == EPIPE) {
        signal(SIGPIPE, SIG_DFL);
        raise(SIGPIPE);
        _exit(128 + SIGPIPE);   /* not reached */
    }
    fprintf(stderr, "%s: cannot write the results: %s\n", prog,
            errnum ? strerror(errnum) : "output error");
    return MD_EXIT_UNKNOWN;
}

/* --- secrets (maildiag-send, maildiag-token) ------------------------------- */
#include <fcntl.h>
#include <sys/stat.h>

char *cli_read_secret_file(const char *prog, const char *what, const char *path)
{
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        cli_fail(prog, "config.error", "cannot open the %s file %s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO)) {
        cli_fail(prog, "config.error", "the %s file %s is readable by other users (mode %04o): chmod 600 it",
                 what, path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return NULL;
    }
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *s = md_xstrdup(buf);
    memset(buf, 0, sizeof buf);
    return s;
}

void cli_secret_free(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}

int cli_dns_option(int c, const char *prog, const char *arg, cli_dns *d)
{
    switch (c) {
    case 'r':
        return cli_dns_add_resolver(d, prog, arg) != 0 ? -1 : 0;
    case 't':
        d->timeout_set = 1;
        return cli_parse_timeout(prog, arg, &d->timeout) != 0 ? -1 : 0;
    default:
        return 1;
    }
}

int cli_option_default(int c, const char *prog, char *const *argv, cli_dns *d,
                       void (*usage)(void))
{
    int rc = cli_dns_option(c, prog, optarg, d);
    return rc == 1 ? cli_option_common(c, prog, argv, usage) : rc;
}

int cli_json_error(const char *id, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    md_report *rep = md_report_new("", NULL);
    md_report_add(rep, id, MD_SEV_UNKNOWN, "%s", text);
    md_report_write_json(rep, stdout);
    md_report_free(rep);
    fflush(stdout);
    return MD_EXIT_UNKNOWN;
}

json_t *cli_json_text(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j == NULL) {
        char *c = md_sanitize_dup(s, strlen(s));
        j = json_string(c);
        free(c);
    }
    return j;
}

void cli_self_dir(char *dir, size_t size)
{
    if (size == 0)
        return;
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    dir[n > 0 && (size_t)n < size - 1 ? n : 0] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        dir[0] = '\0';
        return;
    }
    *slash = '\0';
    size_t l = strlen(dir);
    if (l >= 6 && strcmp(dir + l - 6, "/.libs") == 0)
        dir[l - 6] = '\0';
}

const char *cli_helper_path(const char *name)
{
    static char path[PATH_MAX];
    char dir[PATH_MAX];
    cli_self_dir(dir, sizeof dir);
    if (dir[0] && (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path &&
        access(path, X_OK) == 0)
        return path;
    snprintf(path, sizeof path, "%s/%s", MD_PKGLIBEXECDIR, name);
    return path;
}
