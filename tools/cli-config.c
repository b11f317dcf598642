/* tools/cli-config: the one configuration file of every tool (cli.h). */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_config_load(const char *prog, const char *path, md_conf **out, const char **used_path)
{
    md_error err = { 0 };
    int named = path != NULL;
    *out = NULL;
    if (used_path)
        *used_path = NULL;
    if (path == NULL && (path = getenv("MAILDIAG_CONFIG")) != NULL && *path)
        named = 1;
    if (path == NULL || *path == '\0')
        path = CLI_CONFIG_DEFAULT;
    if (strcmp(path, "/dev/null") == 0)
        return 0;   /* explicitly none */
    md_status st = md_conf_load(path, out, &err);
    if (st == MD_NOTFOUND && !named)
        return 0;   /* no system-wide file: options and defaults only */
    if (st != MD_OK) {
        cli_fail(prog, "config.error", "configuration: %s", err.text);
        return -1;
    }
    if (used_path)
        *used_path = md_conf_path(*out);
    return 0;
}

const char *cli_conf(const md_conf *c, const char *section, const char *key)
{
    const char *v = c ? md_conf_get(c, section, key) : NULL;
    return v && *v ? v : NULL;
}

int cli_conf_seconds(const char *prog, const md_conf *c, const char *section, const char *key,
                     double max, double *out)
{
    const char *v = cli_conf(c, section, key);
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d <= 0 || d > max) {
        cli_fail(prog, "config.error", "%s: [%s] %s = '%s' is not a number of seconds between 0 and %g",
                 md_conf_path(c), section, key, v, max);
        return -1;
    }
    *out = d;
    return 0;
}

int cli_conf_bool(const char *prog, const md_conf *c, const char *section, const char *key, int *out)
{
    const char *v = cli_conf(c, section, key);
    if (v == NULL)
        return 0;
    if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
        cli_fail(prog, "config.error", "%s: [%s] %s must be yes or no, not '%s'", md_conf_path(c),
                 section, key, v);
        return -1;
    }
    *out = strcmp(v, "yes") == 0;
    return 0;
}

int cli_config_dns(const char *prog, const md_conf *c, cli_dns *d)
{
    const char *r = cli_conf(c, "dns", "resolver");
    if (r) {
        /* checked now, so a bad value is an error even when -r wins */
        char buf[80];
        md_error err;
        size_t n = 0;
        char **list = md_dns_server_list_split(r, &n);
        int bad = n == 0;
        for (size_t i = 0; i < n && !bad; i++)
            bad = md_dns_server_parse(list[i], buf, sizeof buf, &err) != MD_OK;
        md_dns_server_list_free(list);
        if (bad) {
            cli_fail(prog, "config.error", "%s: [dns] resolver = '%s' is not a list of IP[:PORT]",
                     md_conf_path(c), r);
            return -1;
        }
        free(d->conf_resolver);
        d->conf_resolver = md_xstrdup(r);
    }
    double t = d->timeout;
    if (cli_conf_seconds(prog, c, "dns", "timeout", 3600, &t) != 0)
        return -1;
    if (!d->timeout_set)
        d->timeout = t;
    return 0;
}

void cli_show_config(FILE *out, const md_conf *c, cli_dns *d, const char *prog)
{
    cli_line(out, "config = %s", c ? md_conf_path(c) : "(none)");
    if (cli_dns_settle(d, prog) != 0)
        return;
    char list[1024] = "";
    size_t o = 0;
    for (size_t i = 0; i < d->nservers && o < sizeof list - 100; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? " " : "", d->servers[i]);
    cli_line(out, "dns.resolver = %s", d->nservers ? list : "(the system resolver)");
    cli_line(out, "dns.timeout = %g", d->timeout);
}
