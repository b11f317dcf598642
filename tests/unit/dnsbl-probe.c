/*
 * dnsbl-probe: a test driver for lib/dnsbl while no tool calls it yet.
 * Built for `make check` only, never installed.
 *
 *   dnsbl-probe --resolver IP:PORT [--timeout S] [--zone Z]... [--domain D]...
 *               [--domain-zone Z]... [--helo NAME] [--no-rdns] [--sync]
 *               [--per-ip] [--stats] [--text] IP...
 *
 * Prints the report as one JSON line (--text: human text) and exits with the
 * report's status (0 ok, 1 warning, 2 critical, 3 unknown); 3 and a message
 * on stderr for bad usage.  --sync uses md_dnsbl_check instead of
 * md_dnsbl_start + md_dns_run.  --per-ip starts one check per IP, all at once
 * on the same md_dns, and prints one report each, in IP order.  --stats
 * prints the md_dns counters as a JSON line on stderr.
 */
#include "config.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dnsbl/dnsbl.h"

typedef struct slot {
    md_dnsbl_result *r;
} slot;

static void on_done(void *arg, md_dnsbl_result *r)
{
    ((slot *)arg)->r = r;
}

static void usage(void)
{
    fputs("usage: dnsbl-probe --resolver IP:PORT [--timeout S] [--zone Z]... [--domain D]...\n"
          "       [--domain-zone Z]... [--helo NAME] [--no-rdns] [--sync] [--per-ip] [--stats]\n"
          "       [--text] IP...\n", stderr);
}

static int render(md_report *rep, int text)
{
    if (text ? md_report_write_text(rep, stdout, MD_TEXT_EVIDENCE) : md_report_write_json(rep, stdout))
        return -1;
    return md_severity_exit_code(md_report_status(rep));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "resolver", required_argument, NULL, 'r' }, { "timeout", required_argument, NULL, 't' },
        { "zone", required_argument, NULL, 'z' }, { "domain", required_argument, NULL, 'd' },
        { "domain-zone", required_argument, NULL, 'D' }, { "helo", required_argument, NULL, 'H' },
        { "no-rdns", no_argument, NULL, 'n' }, { "sync", no_argument, NULL, 's' },
        { "per-ip", no_argument, NULL, 'p' }, { "stats", no_argument, NULL, 'S' },
        { "text", no_argument, NULL, 'T' }, { NULL, 0, NULL, 0 }
    };
    const char *servers[8], *zones[32], *domains[32], *dzones[32], *helo = NULL;
    size_t nservers = 0, nzones = 0, ndomains = 0, ndzones = 0;
    int no_rdns = 0, sync = 0, per_ip = 0, stats = 0, text = 0, c;
    double timeout = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': if (nservers < 8) servers[nservers++] = optarg; break;
        case 't': timeout = atof(optarg); break;
        case 'z': if (nzones < 32) zones[nzones++] = optarg; break;
        case 'd': if (ndomains < 32) domains[ndomains++] = optarg; break;
        case 'D': if (ndzones < 32) dzones[ndzones++] = optarg; break;
        case 'H': helo = optarg; break;
        case 'n': no_rdns = 1; break;
        case 's': sync = 1; break;
        case 'p': per_ip = 1; break;
        case 'S': stats = 1; break;
        case 'T': text = 1; break;
        default: usage(); return 3;
        }
    }
    size_t nips = (size_t)(argc - optind);
    md_dnsbl_sender *senders = calloc(nips ? nips : 1, sizeof *senders);
    for (size_t i = 0; i < nips; i++) {
        senders[i].ip = argv[optind + (int)i];
        senders[i].helo = helo;
    }

    md_error err;
    md_dns_config dcfg = { servers, nservers, timeout, 0, 0, 0 };
    md_dns *dns = md_dns_new(&dcfg, &err);
    if (dns == NULL) {
        fprintf(stderr, "dnsbl-probe: %s\n", err.text);
        free(senders);
        return 3;
    }

    /* One run over everything, or (--per-ip) one run per IP, all at once. */
    size_t nruns = per_ip && nips > 0 ? nips : 1;
    md_dnsbl_config *cfgs = calloc(nruns, sizeof *cfgs);
    slot *slots = calloc(nruns, sizeof *slots);
    int rc = 0;
    for (size_t i = 0; i < nruns; i++) {
        md_dnsbl_config *cfg = &cfgs[i];
        cfg->senders = per_ip ? &senders[i] : senders;
        cfg->nsenders = per_ip ? (nips ? 1 : 0) : nips;
        cfg->zones = zones;
        cfg->nzones = nzones;
        cfg->domains = domains;
        cfg->ndomains = ndomains;
        cfg->domain_zones = dzones;
        cfg->ndomain_zones = ndzones;
        cfg->no_rdns = no_rdns;
        md_status st = sync ? ((slots[i].r = md_dnsbl_check(dns, cfg, &err)) ? MD_OK : err.status)
                            : md_dnsbl_start(dns, cfg, on_done, &slots[i], &err);
        if (st != MD_OK) {
            fprintf(stderr, "dnsbl-probe: %s\n", err.text);
            rc = 3;
            break;
        }
    }
    md_dns_run(dns);

    md_severity worst = MD_SEV_OK;
    for (size_t i = 0; rc == 0 && i < nruns; i++) {
        md_report *rep = md_report_new("dnsbl-probe", per_ip ? senders[i].ip : "sending IPs");
        md_dnsbl_result_report(slots[i].r, rep);
        worst = md_severity_worst(worst, md_report_status(rep));
        if (render(rep, text) < 0)
            rc = 3;
        md_report_free(rep);
    }
    if (rc == 0)
        rc = md_severity_exit_code(worst);
    if (stats) {
        md_dns_stats s;
        md_dns_get_stats(dns, &s);
        fprintf(stderr, "{\"queries\":%lu,\"sent\":%lu,\"merged\":%lu,\"cache_hits\":%lu}\n",
                s.queries, s.sent, s.merged, s.cache_hits);
    }
    for (size_t i = 0; i < nruns; i++)
        md_dnsbl_result_free(slots[i].r);
    free(slots);
    free(cfgs);
    free(senders);
    md_dns_free(dns);
    return rc;
}
