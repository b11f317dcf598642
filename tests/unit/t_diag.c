/* lib/diag: settings are checked with the library that owns each rule and
 * a bad value names its file, line and key; names, advice, the catalogue. */
#include "config.h"
#include "diag/diag.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static const char *write_conf(const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/why.conf", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/md-t-diag-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    md_conf *c = NULL;
    md_error err = { 0 };
    md_diag_settings s;

    const char *p = write_conf("[sender]\nfrom = noreply@shop.example\n"
                               "ips = 192.0.2.10, 2001:db8::10\nhelo = mta.shop.example\n"
                               "dkim_selectors = s1, s2\n[dnsbl]\nzones = zen.example.test bl.example.test\n"
                               "[mail]\ndirect_port = 2525\nallow_internal = yes\n"
                               "[store]\nuri = postgresql://app:hunter2@db.example/accounts\n");
    is_int(md_conf_load(p, &c, &err), MD_OK, "load (%s)", err.text);
    is_int(md_diag_settings_load(c, &s, &err), MD_OK, "good settings (%s)", err.text);
    is_int(s.has_sender, 1, "a [sender] section");
    is_int(s.nips, 2, "two IPs");
    is_str(s.ips[1], "2001:db8::10", "the IPv6 one");
    is_int(s.nselectors, 2, "two selectors");
    is_int(s.nzones, 2, "two zones, blank separated");
    is_int(s.direct_port, 2525, "direct_port");
    is_int(s.allow_internal, 1, "allow_internal");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    md_diag_settings_write(&s, m);
    fclose(m);
    ok(strstr(buf, "hunter2") == NULL, "--show-config masks the URI's password");
    ok(strstr(buf, "uri = postgresql://app:****@db.example/accounts") != NULL, "and keeps the rest");
    ok(strstr(buf, "ips = 192.0.2.10, 2001:db8::10") != NULL, "lists are shown");
    free(buf);
    md_diag_settings_clear(&s);
    md_conf_free(c);

    static const struct { const char *text; const char *want; } bad[] = {
        { "[sender]\nfrom = noreply@@shop.example\n", ":2: [sender] from:" },
        { "[sender]\nfrom = a@shop.example\nips = 192.0.2.300\n", ":3: [sender] ips: '192.0.2.300'" },
        { "[sender]\nfrom = a@shop.example\n\nhelo = mta..shop.example\n", ":4: [sender] helo:" },
        { "[sender]\nfrom = a@shop.example\ndkim_selectors = s1, bad_sel!\n", ":3: [sender] dkim_selectors:" },
        { "[dnsbl]\nzones = zen..example\n", ":2: [dnsbl] zones:" },
        { "[mail]\ndirect_port = 0\n", ":2: [mail] direct_port:" },
        { "[mail]\nallow_internal = maybe\n", ":2: [mail] allow_internal:" },
        { "[sender]\nips = 192.0.2.10\n", "[sender] needs from" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = write_conf(bad[i].text);
        is_int(md_conf_load(p, &c, &err), MD_OK, "load bad %zu", i);
        md_status st = md_diag_settings_load(c, &s, &err);
        is_int(st, MD_CONFIG, "refused: %s", bad[i].want);
        ok(strstr(err.text, bad[i].want) != NULL && strstr(err.text, p) != NULL,
           "the message names the file, line and key (%s)", err.text);
        md_diag_settings_clear(&s);
        md_conf_free(c);
    }
    is_int(md_diag_settings_load(NULL, &s, &err), MD_OK, "no configuration: nothing set");
    is_int(s.has_sender, 0, "no sender layer then");

    static const char *const names[] = { "address", "account", "domain", "recipient", "sender", "send" };
    for (int i = 0; i < MD_DIAG_NLAYERS; i++)
        is_str(md_diag_layer_name((md_diag_layer_id)i), names[i], "layer %d", i);
    is_int(md_diag_email_parse("reset"), MD_DIAG_EMAIL_RESET, "--email reset");
    is_int(md_diag_email_parse("any"), MD_DIAG_EMAIL_ANY, "--email any");
    is_int(md_diag_email_parse("password"), -1, "an unknown email");
    static const char *const ids[] = { "diag.timeout", "diag.skipped", "recipient.blocked",
                                       "config.error", "usage.error", "input.invalid" };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        ok(md_catalogue_find(ids[i]) != NULL, "%s is in the catalogue", ids[i]);
    size_t n = 0;
    const md_catalogue_entry *all = md_catalogue_all(&n);
    (void)all;
    static const char *const advised[] = { "mx.null", "address.typo", "account.sso", "address.suppressed",
                                           "smtp.rcpt.rejected", "spf.fail", "dnsbl.listed", "recipient.blocked" };
    for (size_t i = 0; i < sizeof advised / sizeof advised[0]; i++) {
        ok(md_diag_advice(advised[i]) != NULL, "advice for %s", advised[i]);
        ok(md_catalogue_find(advised[i]) != NULL, "%s is a catalogue id", advised[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
