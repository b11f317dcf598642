/* lib/diag settings: the [sender], [dnsbl], [mail], [token] and [store]
 * values a diagnosis needs, each checked by the module that owns its rule. */
#include "config.h"
#include "diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/domain.h"

typedef struct loader {
    const md_conf *conf;
    md_error *err;
} loader;

static const char *get(const loader *l, const char *section, const char *key)
{
    const char *v = md_conf_get(l->conf, section, key);
    return v && *v ? v : NULL;
}

/* "FILE:LINE: [section] key: why" */
static md_status bad(const loader *l, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static md_status bad(const loader *l, const char *section, const char *key, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return md_error_set(l->err, MD_CONFIG, "config", "%s:%lu: [%s] %s: %s", md_conf_path(l->conf),
                        md_conf_line(l->conf, section, key), section, key, why);
}

/* Splits a list of values separated by commas or blanks into out (at most
 * MD_DIAG_LIST_MAX), pointing into *store, a copy of text. */
static md_status split(const loader *l, const char *section, const char *key, char **store,
                       const char **out, size_t *n)
{
    const char *text = get(l, section, key);
    *n = 0;
    if (text == NULL)
        return MD_OK;
    *store = md_xstrdup(text);
    for (char *save = NULL, *t = strtok_r(*store, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (*n == MD_DIAG_LIST_MAX)
            return bad(l, section, key, "more than %d values", MD_DIAG_LIST_MAX);
        out[(*n)++] = t;
    }
    return MD_OK;
}

static md_status check_domain(const loader *l, const char *section, const char *key,
                              const char *name)
{
    char ascii[MD_DOMAIN_MAX + 1];
    md_error e = { 0 };
    if (md_domain_normalize(name, strlen(name), 0, ascii, sizeof ascii, NULL, 0, NULL, &e) != MD_OK)
        return bad(l, section, key, "'%.80s' is not a domain name: %s", name, e.text);
    return MD_OK;
}

static md_status check_address(const loader *l, const char *section, const char *key,
                               const char *addr)
{
    md_error e = { 0 };
    if (md_address_check(addr, 0, NULL, &e) != MD_OK)
        return bad(l, section, key, "'%.80s' is not an email address: %s", addr, e.text);
    return MD_OK;
}

static md_status yes_no(const loader *l, const char *section, const char *key, int *out)
{
    const char *v = get(l, section, key);
    if (v == NULL)
        return MD_OK;
    if (strcasecmp(v, "yes") == 0)
        *out = 1;
    else if (strcasecmp(v, "no") == 0)
        *out = 0;
    else
        return bad(l, section, key, "'%.40s': yes or no", v);
    return MD_OK;
}

static md_status number(const loader *l, const char *section, const char *key, double min,
                        double max, double *out)
{
    const char *v = get(l, section, key);
    if (v == NULL)
        return MD_OK;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= min && d <= max))
        return bad(l, section, key, "'%.40s' is not a number from %g to %g", v, min, max);
    *out = d;
    return MD_OK;
}

static md_status load(loader *l, md_diag_settings *s)
{
    md_status st;
    /* [mail]: the product's sending settings (the account emails' too) */
    s->mail_from = get(l, "mail", "from");
    if (s->mail_from && (st = check_address(l, "mail", "from", s->mail_from)))
        return st;
    s->from_name = get(l, "mail", "from_name");
    s->product = get(l, "mail", "product");
    s->template_dir = get(l, "mail", "template_dir");
    s->server = get(l, "mail", "server");
    const char *tls = get(l, "mail", "tls");
    if (tls == NULL)
        s->tls = MD_SMTP_TLS_DEFAULT;
    else if (strcmp(tls, "required") == 0)
        s->tls = MD_SMTP_TLS_REQUIRED;
    else if (strcmp(tls, "opportunistic") == 0)
        s->tls = MD_SMTP_TLS_OPPORTUNISTIC;
    else if (strcmp(tls, "off") == 0)
        s->tls = MD_SMTP_TLS_OFF;
    else
        return bad(l, "mail", "tls", "'%.40s': required, opportunistic or off", tls);
    s->user = get(l, "mail", "user");
    s->password_file = get(l, "mail", "password_file");
    s->mail_helo = get(l, "mail", "helo");
    if (s->mail_helo && !md_smtp_helo_valid(s->mail_helo))
        return bad(l, "mail", "helo", "'%.80s' is not a name EHLO can carry", s->mail_helo);
    s->ca_file = get(l, "mail", "ca_file");
    double d = 0;
    if ((st = number(l, "mail", "direct_port", 1, 65535, &d)))
        return st;
    s->direct_port = (unsigned)d;
    if ((st = yes_no(l, "mail", "allow_internal", &s->allow_internal)))
        return st;
    d = 0;
    if ((st = number(l, "mail", "timeout", 0.001, 3600, &d)))
        return st;
    s->send_timeout_ms = (int)(d * 1000);

    /* [token] */
    s->key_file = get(l, "token", "key_file");
    s->verify_url = get(l, "token", "verify_url");
    s->reset_url = get(l, "token", "reset_url");
    d = 0;
    if ((st = number(l, "token", "ttl", 1, 366.0 * 86400, &d)))
        return st;
    s->ttl = (int64_t)d;

    /* [store] */
    s->store_uri = get(l, "store", "uri");
    d = 0;
    if ((st = number(l, "store", "typo_many", 1, 1e9, &d)))
        return st;
    s->typo_many = (unsigned long)d;
    const char *cs = get(l, "store", "local_part_case");
    if (cs && strcasecmp(cs, "sensitive") == 0)
        s->case_sensitive = 1;
    else if (cs && strcasecmp(cs, "insensitive") != 0)
        return bad(l, "store", "local_part_case", "'%.40s': sensitive or insensitive", cs);

    /* [sender]: our side, judged in the sender layer */
    static const char *const keys[] = { "from", "ips", "helo", "dkim_selectors" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        s->has_sender |= get(l, "sender", keys[i]) != NULL;
    s->from = get(l, "sender", "from");
    if (s->from && (st = check_address(l, "sender", "from", s->from)))
        return st;
    if (s->from == NULL)
        s->from = s->mail_from;
    if ((st = split(l, "sender", "ips", &s->lists[0], s->ips, &s->nips)))
        return st;
    for (size_t i = 0; i < s->nips; i++) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, s->ips[i], buf) != 1 && inet_pton(AF_INET6, s->ips[i], buf) != 1)
            return bad(l, "sender", "ips", "'%.60s' is not an IPv4 or IPv6 address", s->ips[i]);
    }
    s->helo = get(l, "sender", "helo");
    if (s->helo && (st = check_domain(l, "sender", "helo", s->helo)))
        return st;
    if ((st = split(l, "sender", "dkim_selectors", &s->lists[1], s->selectors, &s->nselectors)))
        return st;
    for (size_t i = 0; i < s->nselectors; i++)
        if ((st = check_domain(l, "sender", "dkim_selectors", s->selectors[i])))
            return st;
    if (s->has_sender && s->from == NULL)
        return md_error_set(l->err, MD_CONFIG, "config", "%s: [sender] needs from (or [mail] from):"
                            " the domain whose SPF, DKIM and DMARC are ours", md_conf_path(l->conf));

    /* [dnsbl] */
    if ((st = split(l, "dnsbl", "zones", &s->lists[2], s->zones, &s->nzones)))
        return st;
    for (size_t i = 0; i < s->nzones; i++)
        if ((st = check_domain(l, "dnsbl", "zones", s->zones[i])))
            return st;
    return MD_OK;
}

md_status md_diag_settings_load(const md_conf *conf, md_diag_settings *out, md_error *err)
{
    memset(out, 0, sizeof *out);
    if (conf == NULL)
        return MD_OK;
    loader l = { conf, err };
    return load(&l, out);
}

void md_diag_settings_clear(md_diag_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < sizeof s->lists / sizeof s->lists[0]; i++)
        free(s->lists[i]);
    memset(s, 0, sizeof *s);
}

/* --- --show-config ---------------------------------------------------------- */

/* A URI's password ("scheme://user:PASSWORD@host") masked. */
static void masked_uri(const char *v, char *out, size_t size)
{
    const char *s = strstr(v, "://");
    if (s) {
        const char *at = strchr(s + 3, '@'), *colon = strchr(s + 3, ':');
        const char *slash = strchr(s + 3, '/');
        if (at && colon && colon < at && (slash == NULL || at < slash)) {
            snprintf(out, size, "%.*s****%s", (int)(colon + 1 - v), v, at);
            return;
        }
    }
    const char *pw = strstr(v, "password=");
    if (pw) {
        const char *end = strpbrk(pw, " &;");
        snprintf(out, size, "%.*s****%s", (int)(pw + 9 - v), v, end ? end : "");
        return;
    }
    snprintf(out, size, "%s", v);
}

static void kv(FILE *out, const char *key, const char *value)
{
    if (value == NULL)
        return;
    char buf[1200];
    masked_uri(value, buf, sizeof buf);
    /* a value from the file is one line already; a control character from
     * an override must not reach the terminal */
    md_sanitize_text(buf, sizeof buf, buf, strlen(buf), 0);
    fprintf(out, "%s = %s\n", key, buf);
}

static void list(FILE *out, const char *key, const char *const *v, size_t n)
{
    if (n == 0)
        return;
    fprintf(out, "%s = ", key);
    for (size_t i = 0; i < n; i++) {
        char buf[300];
        md_sanitize_text(buf, sizeof buf, v[i], strlen(v[i]), 0);
        fprintf(out, "%s%s", i ? ", " : "", buf);
    }
    fputc('\n', out);
}

int md_diag_settings_write(const md_diag_settings *s, FILE *out)
{
    static const char *const tls[] = { NULL, "required", "opportunistic", "off" };
    char num[32];
    fputs("[sender]\n", out);
    kv(out, "from", s->from);
    list(out, "ips", s->ips, s->nips);
    kv(out, "helo", s->helo);
    list(out, "dkim_selectors", s->selectors, s->nselectors);
    fputs("\n[dnsbl]\n", out);
    list(out, "zones", s->zones, s->nzones);
    fputs("\n[mail]\n", out);
    kv(out, "from", s->mail_from);
    kv(out, "from_name", s->from_name);
    kv(out, "product", s->product);
    kv(out, "template_dir", s->template_dir);
    kv(out, "server", s->server);
    kv(out, "tls", (unsigned)s->tls < 4 ? tls[s->tls] : NULL);
    kv(out, "user", s->user);
    kv(out, "password_file", s->password_file);
    kv(out, "helo", s->mail_helo);
    kv(out, "ca_file", s->ca_file);
    if (s->direct_port) {
        snprintf(num, sizeof num, "%u", s->direct_port);
        kv(out, "direct_port", num);
    }
    kv(out, "allow_internal", s->allow_internal ? "yes" : "no");
    if (s->send_timeout_ms) {
        snprintf(num, sizeof num, "%g", s->send_timeout_ms / 1000.0);
        kv(out, "timeout", num);
    }
    fputs("\n[token]\n", out);
    kv(out, "key_file", s->key_file);
    kv(out, "verify_url", s->verify_url);
    kv(out, "reset_url", s->reset_url);
    if (s->ttl) {
        snprintf(num, sizeof num, "%lld", (long long)s->ttl);
        kv(out, "ttl", num);
    }
    fputs("\n[store]\n", out);
    kv(out, "uri", s->store_uri);
    if (s->typo_many) {
        snprintf(num, sizeof num, "%lu", s->typo_many);
        kv(out, "typo_many", num);
    }
    if (s->case_sensitive)
        kv(out, "local_part_case", "sensitive");
    return ferror(out) ? -1 : 0;
}
