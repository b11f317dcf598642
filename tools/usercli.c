/* tools/usercli: configuration, store and operator for the account tools. */
#include "config.h"
#include "usercli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOTIFY_NAME "maildiag-notify"
#define NOTIFY_REPLY_MAX (1 << 20)

const char *ucli_conf(const ucli *u, const char *section, const char *key)
{
    const char *v = md_conf_get(u->conf, section, key);
    return v && *v ? v : NULL;
}

void ucli_fail(const ucli *u, const char *id, const char *what, const md_error *err)
{
    cli_fail(u->prog, id, "%s%s%s%s%s", what ? what : "", what ? ": " : "", err->text,
             err->peer[0] ? ": " : "", err->peer);
}

void ucli_error(const ucli *u, const char *what, const md_error *err)
{
    ucli_fail(u, "store.error", what, err);
}

int ucli_load_config(ucli *u)
{
    const char *path = NULL;
    if (cli_config_load(u->prog, u->config_path, &u->conf, &path) != 0 ||
        cli_config_dns(u->prog, u->conf, &u->dns) != 0)
        return -1;
    const char *cs = ucli_conf(u, "store", "local_part_case");
    if (cs && strcasecmp(cs, "sensitive") == 0)
        u->aopt.key_flags |= MD_ADDRESS_CASE_SENSITIVE;
    else if (cs && strcasecmp(cs, "insensitive") != 0)
        return cli_fail(u->prog, "config.error", "%s: [store] local_part_case must be sensitive or insensitive",
                        path), -1;
    const char *many = ucli_conf(u, "store", "typo_many");
    if (many) {
        char *end;
        unsigned long v = strtoul(many, &end, 10);
        if (*end || v == 0)
            return cli_fail(u->prog, "config.error", "%s: [store] typo_many must be a positive number", path), -1;
        u->aopt.many = v;
    }
    return 0;
}

int ucli_open_store(ucli *u, unsigned flags)
{
    md_error err;
    const char *uri = u->store_uri;
    if (uri == NULL && (uri = getenv("MAILDIAG_STORE")) != NULL && *uri == '\0')
        uri = NULL;
    if (uri == NULL)
        uri = ucli_conf(u, "store", "uri");
    if (uri == NULL) {
        cli_fail(u->prog, "store.error", "no store: give --store URI (sqlite:PATH or postgresql://...),"
                 " MAILDIAG_STORE, or 'uri' in [store] of %s",
                 u->conf ? md_conf_path(u->conf) : CLI_CONFIG_DEFAULT);
        return -1;
    }
    /* A store write past the file size limit (ulimit -f) must fail with
     * EFBIG, which lib/store reports, not kill us in mid-transaction. */
    signal(SIGXFSZ, SIG_IGN);
    if (md_store_open(uri, flags, &u->store, &err) != MD_OK) {
        if (strcmp(err.stage, "store.init") == 0)   /* the command that does it is ours to name */
            snprintf(err.text + strlen(err.text), sizeof err.text - strlen(err.text), " (run 'maildiag-user init')");
        ucli_error(u, "store", &err);
        return -1;
    }
    if (!(flags & MD_STORE_CREATE) && ucli_conf(u, "product", "uri")) {
        md_store_product p = {
            .uri = ucli_conf(u, "product", "uri"),
            .by_email = ucli_conf(u, "product", "by_email"),
            .by_username = ucli_conf(u, "product", "by_username"),
            .also = ucli_conf(u, "product", "also"),
            .sessions = ucli_conf(u, "product", "sessions"),
            .domain_count = ucli_conf(u, "product", "domain_count"),
        };
        if (md_store_use_product(u->store, &p, &err) != MD_OK) {
            ucli_error(u, "product database", &err);
            return -1;
        }
    }
    return 0;
}

int ucli_open_dns(ucli *u)
{
    if (u->no_dns)
        return 0;
    u->resolver = cli_dns_open(&u->dns, u->prog, 0);
    return u->resolver ? 0 : -1;
}

const char *ucli_operator(ucli *u)
{
    char login[64];
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name)
        snprintf(login, sizeof login, "%s", pw->pw_name);
    else
        snprintf(login, sizeof login, "uid %u", (unsigned)getuid());
    if (u->operator_name && strcmp(u->operator_name, login) != 0)
        snprintf(u->operator_buf, sizeof u->operator_buf, "%.80s (as %s)", u->operator_name, login);
    else
        snprintf(u->operator_buf, sizeof u->operator_buf, "%s", login);
    /* --operator is typed by a person and stored in the audit log */
    return md_sanitize_text(u->operator_buf, sizeof u->operator_buf, u->operator_buf,
                            strlen(u->operator_buf), 0);
}

void ucli_clear(ucli *u)
{
    md_store_free(u->store);
    u->store = NULL;
    md_dns_free(u->resolver);
    u->resolver = NULL;
    md_conf_free(u->conf);
    u->conf = NULL;
    cli_dns_clear(&u->dns);
}

json_t *ucli_notify_request(const ucli *u, const char *command)
{
    json_t *r = json_pack("{s:s,s:s}", "command", command, "prog", u->prog);
    if (u->store_uri)
        json_object_set_new(r, "store", json_string(u->store_uri));
    if (u->config_path)
        json_object_set_new(r, "config", json_string(u->config_path));
    if (u->operator_name)
        json_object_set_new(r, "operator", json_string(u->operator_name));
    json_t *rs = json_array();
    for (size_t i = 0; i < u->dns.nservers; i++)
        json_array_append_new(rs, json_string(u->dns.servers[i]));
    json_object_set_new(r, "resolvers", rs);
    json_object_set_new(r, "timeout", json_real(u->dns.timeout));
    return r;
}

const char *ucli_notify_path(void)
{
    return ucli_helper_path(NOTIFY_NAME);
}

const char *ucli_helper_path(const char *name)
{
    return cli_helper_path(name);
}

int ucli_helper_exec(const ucli *u, const char *name, char *const *argv)
{
    const char *path = ucli_helper_path(name);
    fflush(NULL);
    execv(path, argv);
    fprintf(stderr, "%s: cannot run %s: %s\n", u->prog, path, strerror(errno));
    return -1;
}

int ucli_notify_run(const ucli *u, json_t *req, json_t **reply)
{
    const char *path = ucli_notify_path();
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, rc = -1, status = 0;
    char *text = json_dumps(req, JSON_COMPACT), *buf = NULL;
    size_t len = 0;
    pid_t pid = -1;
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    if (reply)
        *reply = NULL;
    if (text == NULL || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        cli_error(u->prog, "cannot run %s: %s", path, strerror(errno));
        goto done;
    }
    fflush(NULL);
    if ((pid = fork()) < 0) {
        cli_error(u->prog, "cannot run %s: %s", path, strerror(errno));
        goto done;
    }
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(MD_EXIT_UNKNOWN);
        execl(path, NOTIFY_NAME, (char *)NULL);
        cli_error(u->prog, "cannot run %s: %s", path, strerror(errno));
        _exit(MD_EXIT_UNKNOWN);
    }
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    /* A helper that dies early must not kill us with SIGPIPE. */
    sigaction(SIGPIPE, &ign, &old);
    int wrote = md_write_all(in[1], text, strlen(text));
    sigaction(SIGPIPE, &old, NULL);
    close(in[1]);
    in[1] = -1;
    buf = md_xmalloc(NOTIFY_REPLY_MAX + 1);
    for (;;) {
        ssize_t r = read(out[0], buf + len, NOTIFY_REPLY_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == NOTIFY_REPLY_MAX)
            break;
    }
    close(out[0]);
    out[0] = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (wrote != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        goto done;   /* the helper said why on our standard error */
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    if (!json_is_object(j)) {
        cli_error(u->prog, "%s gave no answer", path);
        json_decref(j);
        goto done;
    }
    if (reply)
        *reply = j;
    else
        json_decref(j);
    rc = 0;
done:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    free(buf);
    free(text);
    return rc;
}

int ucli_notify_exec(const ucli *u, json_t *req)
{
    const char *path = ucli_notify_path();
    int p[2];
    char *text = json_dumps(req, JSON_COMPACT);
    /* The request is small (an address and settings): it fits in the pipe,
     * so it can be written before the helper runs. */
    if (text == NULL || strlen(text) > 32768 || pipe(p) != 0) {
        free(text);
        return -1;
    }
    int wrote = md_write_all(p[1], text, strlen(text));
    free(text);
    close(p[1]);
    if (wrote != 0 || dup2(p[0], 0) < 0) {
        close(p[0]);
        return -1;
    }
    if (p[0] != 0)
        close(p[0]);
    fflush(NULL);
    execl(path, NOTIFY_NAME, (char *)NULL);
    cli_error(u->prog, "cannot run %s: %s", path, strerror(errno));
    return -1;
}
