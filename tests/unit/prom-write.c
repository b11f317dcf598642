/*
 * prom-write: a test driver for lib/report prom, so that tests can hand a
 * textfile to a real node_exporter.  Built for `make check` only.
 *
 *   prom-write PATH
 *
 * Writes a fixed set of metrics shaped like maildiag-health's (a status, a
 * labelled status per check, durations, a hostile label value, NaN) to PATH
 * atomically.  Exit 0, or 3 with the error on stderr.
 */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include "report/prom.h"

int main(int argc, char **argv)
{
    md_error err = { 0 };
    if (argc != 2) {
        fprintf(stderr, "usage: prom-write PATH\n");
        return 3;
    }
    md_prom *p = md_prom_new();
    const char *spf[] = { "check", "spf", NULL }, *dkim[] = { "check", "dkim", NULL };
    const char *zone[] = { "ip", "192.0.2.10", "zone", "bl\"x\\y\nz.test", NULL };
    const char *srv[] = { "server", "smtp.example.com:587", NULL };
    int rc = md_prom_family(p, "maildiag_health_status", MD_PROM_GAUGE,
                            "Worst status of the run: 0 ok, 1 warning, 2 critical, 3 unknown.", &err)
          || md_prom_family(p, "maildiag_check_status", MD_PROM_GAUGE, "Status of one check.", &err)
          || md_prom_family(p, "maildiag_check_duration_seconds", MD_PROM_GAUGE,
                            "Time one check took.", &err)
          || md_prom_family(p, "maildiag_dnsbl_listed", MD_PROM_GAUGE,
                            "1 when the IP is listed on the zone.", &err)
          || md_prom_family(p, "maildiag_tls_cert_expiry_timestamp_seconds", MD_PROM_GAUGE,
                            "When the relay's certificate expires.", &err)
          || md_prom_sample(p, "maildiag_check_status", dkim, 2, &err)
          || md_prom_sample(p, "maildiag_health_status", NULL, 2, &err)
          || md_prom_sample(p, "maildiag_check_status", spf, 0, &err)
          || md_prom_sample(p, "maildiag_check_duration_seconds", spf, 0.012, &err)
          || md_prom_sample(p, "maildiag_check_duration_seconds", dkim, NAN, &err)
          || md_prom_sample(p, "maildiag_dnsbl_listed", zone, 1, &err)
          || md_prom_sample(p, "maildiag_tls_cert_expiry_timestamp_seconds", srv, 1767225600, &err)
          || md_prom_write_file(p, argv[1], &err);
    md_prom_free(p);
    if (rc != 0) {
        fprintf(stderr, "prom-write: %s\n", err.text);
        return 3;
    }
    return 0;
}
