#!/usr/bin/env python3
"""maildiag-health against real servers on 127.0.0.1: NSD serving tests/zones/health.test.zone
(sending domains whose SPF, DKIM and DMARC are good, warn-worthy or broken; two blocklists)
and the reverse zone of our IPs, Postfix submission relays with Dovecot SASL whose
certificates expire when the test says (30, 10 and 3 days), a Postfix MX with Dovecot IMAP
for the seed mailbox, and prometheus-node-exporter reading the textfile.

Each check's ok, warning and critical; the plugin line and its perfdata read as
monitoring-plugins read them; the exit code in every output; the textfile through
node_exporter; what changed across two runs with NSD restarted on a changed zone; the lock
with two runs at once; the deadline with a DNS server that never answers; a dead resolver
(unknown, never "no record"); the cron and systemd files installed by make (DESTDIR) and
accepted by systemd-analyze; valgrind over the tool's paths."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("MAILDIAG_TESTS_DIR", os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "lab"))
import mdlab  # noqa: E402
import mta  # noqa: E402
import promlab  # noqa: E402

STATUSES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
CHECKS = ["spf", "dkim", "dmarc", "dnsbl", "rdns", "relay", "send"]
DNS_CHECKS = ["spf", "dkim", "dmarc", "dnsbl", "rdns"]
# what a failed lookup must never be reported as
ABSENCE = ("spf.none", "spf.no_record", "dkim.missing", "dmarc.missing", "rdns.missing", "rdns.mismatch",
           "dnsbl.listed", "helo.mismatch", "domain.nxdomain")

# monitoring-plugins' perfdata: 'label'=value[UOM];[warn];[crit];[min];[max], where warn
# and crit are ranges ([@][start:][end], start may be ~).  UOMs of the guidelines, and d
# (days, as the relay certificate's cert_days gives it; Icinga 2 reads it as days).
NUM = r"-?[0-9]+(?:\.[0-9]+)?"
RANGE = r"@?(?:(?:~|%s)?:)?(?:%s)?" % (NUM, NUM)
PERF = re.compile(r"^(?P<label>'[^'=]+'|[^'= ]+)=(?P<value>%s)(?P<uom>s|ms|us|%%|B|KB|MB|TB|c|d)?"
                  r"(?:;(?P<warn>%s)?(?:;(?P<crit>%s)?(?:;(?P<min>%s)?(?:;(?P<max>%s)?)?)?)?)?$"
                  % (NUM, RANGE, RANGE, NUM, NUM))
PLUGIN = re.compile(r"^MAILDIAG HEALTH (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|]*?)"
                    r"(?: \| (?P<perf>[^|]*))?$")


def parse_plugin(out):
    """(state, text, {label: (value, uom, warn, crit, min, max)}, long lines), as a
    monitoring-plugins reader splits the output; AssertionError when it cannot."""
    lines = out.splitlines()
    m = PLUGIN.match(lines[0]) if lines else None
    if not m:
        raise AssertionError("not a plugin status line: %r" % (lines[0] if lines else out))
    perf = {}
    for tok in (m.group("perf") or "").split():
        p = PERF.match(tok)
        if not p:
            raise AssertionError("perfdata %r is not label=value[UOM];[warn];[crit];[min];[max]" % tok)
        label = p.group("label").strip("'")
        if label in perf:
            raise AssertionError("perfdata label %s twice" % label)
        perf[label] = (float(p.group("value")), p.group("uom") or "", p.group("warn") or None,
                       p.group("crit") or None, p.group("min") or None, p.group("max") or None)
    for line in lines[1:]:
        if "|" in line:
            raise AssertionError("long output holds a '|' (more perfdata?): %r" % line)
    return m.group("state"), m.group("text"), perf, lines[1:]


class Lab(unittest.TestCase):
    """NSD, the relays (certificates of 30, 10 and 3 days), the MX with IMAP, configs."""

    @classmethod
    def setUpClass(cls):
        cls.tool = mdlab.tool_path("maildiag-health")
        cls.dir = tempfile.mkdtemp(prefix="md-health-")
        cls.zones = {"health.test": mdlab.zone_path("health.test.zone"),
                     "113.0.203.in-addr.arpa": mdlab.zone_path("113.0.203.in-addr.arpa.zone")}
        cls.started = []
        try:
            cls.ns = cls.start(mdlab.Nsd(cls.zones, workdir=cls.dir))
            cls.pki = mta.Pki(os.path.join(cls.dir, "pki"))
            now = int(time.time())
            cls.mx = cls.start(mta.PostfixMx(domain="lab.test", users=("seed",), pki=cls.pki))
            cls.imap = cls.start(mta.DovecotImap(cls.mx, password="imap-secret", pki=cls.pki))
            cls.relay = cls.start(mta.PostfixSubmission(relay_to=cls.mx, pki=cls.pki))
            # expiring in 10 days (an hour over, so that the whole days left are 10)
            cls.expiry10 = now + 10 * 86400 + 3600
            cls.relay10 = cls.start(mta.PostfixSubmission(pki=cls.pki, cert_not_after=cls.expiry10))
            cls.expiry3 = now + 3 * 86400 + 3600
            cls.relay3 = cls.start(mta.PostfixSubmission(pki=cls.pki, cert_not_after=cls.expiry3))
        except BaseException:
            cls.stop_all()
            raise
        cls.pw = cls.secret("smtp.pw", cls.relay.password)
        cls.imap_pw = cls.secret("imap.pw", "imap-secret")
        cls.n = 0

    @classmethod
    def start(cls, server):
        server.start()
        cls.started.append(server)
        return server

    @classmethod
    def stop_all(cls):
        for s in reversed(cls.started):
            s.stop()
        cls.started = []

    @classmethod
    def tearDownClass(cls):
        cls.stop_all()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def secret(cls, name, text):
        path = os.path.join(cls.dir, name)
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)
        return path

    def conf(self, sender="noreply@good.health.test", ips="203.0.113.10", helo="mta.good.health.test",
             selectors="s1, ed", zones="bl.health.test", relay=None, mail_from=None, user=True,
             password_file=None, extra="", checks=None, ca_file=True):
        """A configuration file; relay None: the relay with the 30-day certificate; ca_file
        False: no [mail] ca_file (the system's CA store)."""
        relay = relay or self.relay
        text = "[sender]\nfrom = %s\n" % sender
        if ips:
            text += "ips = %s\n" % ips
        if helo:
            text += "helo = %s\n" % helo
        if selectors:
            text += "dkim_selectors = %s\n" % selectors
        if zones:
            text += "[dnsbl]\nzones = %s\n" % zones
        port = relay if isinstance(relay, int) else relay.port
        text += "[mail]\nserver = 127.0.0.1:%d\ntls = required\n" % port
        if ca_file:
            text += "ca_file = %s\n" % self.pki.ca_file
        if mail_from:
            text += "from = %s\n" % mail_from
        if user:
            text += "user = %s\npassword_file = %s\n" % (self.relay.user, password_file or self.pw)
        if checks or extra:
            text += "[health]\n" + ("checks = %s\n" % checks if checks else "") + extra
        type(self).n += 1
        path = os.path.join(self.dir, "c%d.conf" % self.n)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def state(self):
        type(self).n += 1
        return os.path.join(self.dir, "state%d.json" % self.n)

    def run_health(self, conf, *args, resolver=None, state=None, timeout=60, env=None):
        argv = [self.tool, "-C", conf, "-r", resolver or self.ns.resolver,
                "--state", state or self.state()] + list(args)
        return mdlab.run_tool(argv, timeout=timeout, env=env)

    def health(self, conf, *args, **kw):
        """--json: the one object, its contract checked; exit code = status."""
        run = self.run_health(conf, "--json", *args, **kw)
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), 1, "exactly one JSON value\n%s" % run)
        o = objs[0]
        self.check_contract(o, run)
        return o, run

    def check_contract(self, o, run):
        self.assertEqual(list(o), ["schema_version", "status", "started", "elapsed_ms", "timeout_ms", "checks",
                                   "findings", "changes", "previous_run", "perfdata"], run)
        self.assertEqual(o["schema_version"], 1)
        self.assertEqual(run.rc, STATUSES[o["status"]], "exit code = status\n%s" % run)
        rank = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}
        worst = "ok"
        names = [c["check"] for c in o["checks"]]
        self.assertEqual(names, [c for c in CHECKS if c in names], "checks in their order")
        for c in o["checks"]:
            self.assertEqual(list(c), ["check", "status", "findings", "duration_ms", "timed_out", "data"], run)
            self.assertIsInstance(c["duration_ms"], int)
            self.assertGreaterEqual(c["duration_ms"], 0)
            sev = "ok"
            for f in c["findings"]:
                self.assertTrue({"id", "severity", "summary"} <= set(f), f)
                sev = max(sev, f["severity"], key=rank.get)
            self.assertEqual(c["status"], sev, "a check's status is its worst finding\n%s" % run)
            worst = max(worst, c["status"], key=rank.get)
        for f in o["findings"]:
            worst = max(worst, f["severity"], key=rank.get)
        self.assertEqual(o["status"], worst, "the run's status is the worst check's")

    def check(self, o, name):
        found = [c for c in o["checks"] if c["check"] == name]
        self.assertTrue(found, "no check %s in %s" % (name, [c["check"] for c in o["checks"]]))
        return found[0]

    def ids(self, o, name):
        return [f["id"] for f in self.check(o, name)["findings"]]

    def assertCheck(self, o, run, name, status, fid=None):
        c = self.check(o, name)
        self.assertEqual(c["status"], status, "%s\n%s" % (json.dumps(c, indent=1)[:3000], run.err))
        if fid:
            self.assertIn(fid, self.ids(o, name), run)


class Checks(Lab):
    # --- everything healthy ---------------------------------------------------------------

    def test_healthy(self):
        o, run = self.health(self.conf())
        self.assertEqual([c["check"] for c in o["checks"]], CHECKS[:-1], "send is not asked without a seed")
        self.assertEqual(o["status"], "ok", run)
        self.assertEqual(run.rc, 0)
        for fid, name in (("spf.pass", "spf"), ("dkim.ok", "dkim"), ("dmarc.ok", "dmarc"),
                          ("dmarc.aligned", "dmarc"), ("smtp.probe_ok", "relay"), ("tls.ok", "relay"),
                          ("smtp.auth.ok", "relay")):
            self.assertIn(fid, self.ids(o, name), run)
        self.assertIsNone(o["changes"], "a first run has nothing to compare with")
        relay = self.check(o, "relay")["data"]
        self.assertEqual(relay["server"], "127.0.0.1:%d" % self.relay.port)
        self.assertGreater(relay["certificate"]["days_left"], 21)
        # one connection, QUIT right after AUTH: no MAIL, no RCPT
        lines = [t["text"] for t in relay["probe"]["transcript"] if t["dir"] == ">"]
        self.assertTrue(any(l.startswith("AUTH") for l in lines), lines)
        self.assertEqual(lines[-1], "QUIT", lines)
        self.assertFalse([l for l in lines if l.upper().startswith(("MAIL", "RCPT", "DATA"))], lines)
        log = self.relay.log()
        self.assertGreaterEqual(len(re.findall(r"smtpd\[\d+\]: connect from", log)), 1)
        dkim = self.check(o, "dkim")["data"]["dkim"]
        self.assertEqual([(k["selector"], k["key_type"]) for k in dkim], [("s1", "rsa"), ("ed", "ed25519")])

    # --- each check: ok, warning, critical ---------------------------------------------------

    def test_spf(self):
        for sender, status, fid in (("noreply@good.health.test", "ok", "spf.pass"),
                                    ("noreply@warn.health.test", "warning", "spf.softfail"),
                                    ("noreply@bad.health.test", "critical", "spf.fail"),
                                    ("noreply@near.health.test", "warning", "spf.lookups_near_limit"),
                                    ("noreply@over.health.test", "critical", "spf.lookup_limit")):
            with self.subTest(sender=sender):
                o, run = self.health(self.conf(sender=sender), "--only", "spf")
                self.assertCheck(o, run, "spf", status, fid)
                self.assertEqual([c["check"] for c in o["checks"]], ["spf"], "--only")

    def test_dkim(self):
        for sender, sel, status, fid in (("noreply@good.health.test", "s1, ed", "ok", "dkim.ok"),
                                         ("noreply@warn.health.test", "s1", "warning", "dkim.key_short"),
                                         ("noreply@warn.health.test", "t1", "warning", "dkim.testing"),
                                         ("noreply@bad.health.test", "s1", "critical", "dkim.missing")):
            with self.subTest(selector=sel, sender=sender):
                o, run = self.health(self.conf(sender=sender, selectors=sel), "--only", "dkim")
                self.assertCheck(o, run, "dkim", status, fid)

    def test_dmarc(self):
        for sender, mail_from, status, fid in (
                ("noreply@good.health.test", None, "ok", "dmarc.ok"),
                ("noreply@warn.health.test", None, "warning", "dmarc.p_none"),
                ("noreply@bad.health.test", None, "critical", "dmarc.missing"),
                # From strict.health.test, MAIL FROM and DKIM mail.strict.health.test: aspf=s, adkim=s
                ("bounce@mail.strict.health.test", "noreply@strict.health.test", "critical", "dmarc.unaligned"),
                ("bounce@mail.relaxed.health.test", "noreply@relaxed.health.test", "ok", "dmarc.aligned")):
            with self.subTest(sender=sender):
                o, run = self.health(self.conf(sender=sender, mail_from=mail_from, selectors="s1"),
                                     "--only", "dmarc")
                self.assertCheck(o, run, "dmarc", status, fid)
        # p=none is a warning because we send password resets: the summary says so
        o, run = self.health(self.conf(sender="noreply@warn.health.test"), "--only", "dmarc")
        [f] = [f for f in self.check(o, "dmarc")["findings"] if f["id"] == "dmarc.p_none"]
        self.assertIn("password-reset", f["summary"])

    def test_dnsbl(self):
        o, run = self.health(self.conf(ips="203.0.113.10"), "--only", "dnsbl")
        self.assertCheck(o, run, "dnsbl", "ok")
        o, run = self.health(self.conf(ips="203.0.113.10, 203.0.113.66"), "--only", "dnsbl")
        self.assertCheck(o, run, "dnsbl", "critical", "dnsbl.listed")
        [f] = [f for f in self.check(o, "dnsbl")["findings"] if f["id"] == "dnsbl.listed"]
        self.assertIn("203.0.113.66", f["summary"])
        self.assertIn("sent spam to our traps", f["summary"])
        # a list that does not list its own test point is unusable: a warning, not a listing
        o, run = self.health(self.conf(ips="203.0.113.66", zones="deadbl.health.test"), "--only", "dnsbl")
        self.assertCheck(o, run, "dnsbl", "warning", "dnsbl.unusable")
        self.assertNotIn("dnsbl.listed", self.ids(o, "dnsbl"))

    def test_rdns(self):
        for ip, helo, status, fid in (("203.0.113.10", "mta.good.health.test", "ok", None),
                                      ("203.0.113.10", "mta66.good.health.test", "warning", "helo.mismatch"),
                                      ("203.0.113.30", None, "critical", "rdns.mismatch"),
                                      ("203.0.113.40", None, "critical", "rdns.missing")):
            with self.subTest(ip=ip, helo=helo):
                o, run = self.health(self.conf(ips=ip, helo=helo), "--only", "rdns")
                self.assertCheck(o, run, "rdns", status, fid)

    def test_relay_certificate(self):
        # 10 days left: a warning at -w 21, ok at -w 5 -c 2
        o, run = self.health(self.conf(relay=self.relay10), "--only", "relay", "-w", "21", "-c", "7")
        self.assertCheck(o, run, "relay", "warning", "relay.cert_expiring")
        self.assertEqual(run.rc, 1)
        cert = self.check(o, "relay")["data"]["certificate"]
        self.assertEqual(cert["not_after"], self.expiry10)
        self.assertEqual(cert["days_left"], 10)
        self.assertNotIn("tls.cert_expiring", self.ids(o, "relay"), "the thresholds decide, not a fixed 14 days")
        o, run = self.health(self.conf(relay=self.relay10), "--only", "relay", "-w", "5", "-c", "2")
        self.assertCheck(o, run, "relay", "ok")
        # 3 days left: critical at -c 7
        o, run = self.health(self.conf(relay=self.relay3), "--only", "relay", "-c", "7")
        self.assertCheck(o, run, "relay", "critical", "relay.cert_expiring")
        self.assertEqual(run.rc, 2)

    def test_relay_ca_file(self):
        # the lab CA is in no system store: without [mail] ca_file the relay's certificate
        # does not verify (critical, and no AUTH over a connection that is not trusted);
        # with it, the same relay is ok
        o, run = self.health(self.conf(ca_file=False), "--only", "relay")
        self.assertEqual(self.check(o, "relay")["status"], "critical", run)
        self.assertTrue({"tls.cert_unknown_ca", "tls.cert_self_signed", "tls.cert_invalid"}
                        & set(self.ids(o, "relay")), run)
        self.assertEqual(run.rc, 2)
        o, run = self.health(self.conf(), "--only", "relay")
        self.assertCheck(o, run, "relay", "ok", "tls.ok")

    def test_relay_auth_refused(self):
        bad = self.secret("wrong.pw", "not-the-password")
        o, run = self.health(self.conf(password_file=bad), "--only", "relay")
        self.assertCheck(o, run, "relay", "critical", "smtp.auth.failed")

    def test_relay_down(self):
        port = mdlab.free_port()
        o, run = self.health(self.conf(relay=port), "--only", "relay")
        self.assertCheck(o, run, "relay", "critical", "smtp.connect.failed")
        self.assertNotIn("certificate", self.check(o, "relay")["data"])

    def test_send_and_arrival(self):
        extra = ("seed = seed@lab.test\nseed_mailbox = imaps://seed@127.0.0.1:%d/INBOX\n"
                 "seed_password_file = %s\nseed_ca_file = %s\n"
                 % (self.imap.imaps_port, self.imap_pw, self.pki.ca_file))
        conf = self.conf(extra=extra)
        o, run = self.health(conf, "--only", "relay,send")
        self.assertCheck(o, run, "send", "ok", "smtp.accepted")
        self.assertIn("delivery.found", self.ids(o, "send"), run)
        data = self.check(o, "send")["data"]
        self.assertEqual(data["send"]["result"], "accepted")
        self.assertTrue(data["arrival"]["found"], data["arrival"])
        self.assertEqual(data["arrival"]["deleted"], 1, "the test email is removed once found")
        self.assertIn("delivery_time=", o["perfdata"])
        # the default checks include send once a seed is configured
        o, run = self.health(conf)
        self.assertEqual([c["check"] for c in o["checks"]], CHECKS)

    def test_not_configured(self):
        o, run = self.health(self.conf(selectors=None, zones=None), "--only", "dkim,dnsbl,send")
        for name, what in (("dkim", "[sender] dkim_selectors"), ("dnsbl", "[dnsbl] zones"),
                           ("send", "[health] seed")):
            self.assertCheck(o, run, name, "unknown", "health.not_configured")
            self.assertIn(what, self.check(o, name)["findings"][0]["summary"])
        self.assertEqual(run.rc, 3)
        # [health] checks chooses the default set
        o, run = self.health(self.conf(checks="spf, relay"))
        self.assertEqual([c["check"] for c in o["checks"]], ["spf", "relay"])


class Outputs(Lab):
    def test_plugin_line(self):
        # .66 listed; the relay's certificate has 10 days
        conf = self.conf(ips="203.0.113.10, 203.0.113.66", helo=None, relay=self.relay10)
        run = self.run_health(conf)      # stdout is not a terminal: the plugin output
        state, text, perf, long = parse_plugin(run.out)
        self.assertEqual((state, run.rc), ("CRITICAL", 2), run)
        self.assertTrue(text.startswith("dnsbl: 203.0.113.66 listed on bl.health.test; relay: "), text)
        self.assertIn("ok: spf, dkim, dmarc, rdns", text)
        for label in ("time", "dns_time", "smtp_time"):
            self.assertEqual(perf[label][1], "s", label)
            self.assertLess(perf[label][0], 30)
        self.assertEqual(perf["cert_days"][:4], (10.0, "d", "21:", "7:"), "alert below 21 and 7 days")
        self.assertEqual(perf["dnsbl_listed"][:4], (1.0, "", None, "0"))
        self.assertTrue(any(l.startswith("[CRITICAL] dnsbl") for l in long), long)
        self.assertTrue(any("dnsbl.listed" in l for l in long), long)
        # -q: the status line alone, without perfdata
        run = self.run_health(conf, "-q")
        self.assertEqual(run.rc, 2)
        self.assertEqual(len(run.out.splitlines()), 1, run)
        self.assertNotIn("|", run.out)

    def test_exit_code_in_every_format(self):
        conf = self.conf(relay=self.relay10)
        prom = os.path.join(self.dir, "rc.prom")
        for args in (["--json"], ["--plugin"], ["-q"], ["--prometheus", prom], []):
            with self.subTest(args=args):
                run = self.run_health(conf, "--only", "relay", *args)
                self.assertEqual(run.rc, 1, run)
        self.assertEqual(mdlab.json_results(self.run_health(conf, "--only", "relay", "--json"))[0]["status"],
                         "warning")
        run = self.run_health(conf, "--only", "relay", "--prometheus", prom)
        self.assertEqual(run.out, "", "--prometheus prints nothing (cron mails what is printed)")

    def test_prometheus_through_node_exporter(self):
        textdir = os.path.join(self.dir, "textfile")
        os.makedirs(textdir, exist_ok=True)
        path = os.path.join(textdir, "maildiag.prom")
        conf = self.conf(ips="203.0.113.10, 203.0.113.66", helo=None, relay=self.relay10,
                         zones="bl.health.test, deadbl.health.test")
        t0 = time.time()
        run = self.run_health(conf, "--prometheus", path)
        self.assertEqual(run.rc, 2, run)
        with promlab.NodeExporter(textdir) as ne:
            m = ne.scrape()
            text = ne.scrape_text()
        L = frozenset
        self.assertEqual(m.get(("node_textfile_scrape_error", L())), 0.0, text)
        self.assertEqual(m[("maildiag_health_status", L())], 2.0)
        for name, want in (("spf", 0), ("dkim", 0), ("dmarc", 0), ("dnsbl", 2), ("rdns", 0), ("relay", 1)):
            self.assertEqual(m[("maildiag_check_status", L({("check", name)}))], want, name)
            self.assertGreaterEqual(m[("maildiag_check_duration_seconds", L({("check", name)}))], 0)
        self.assertEqual(m[("maildiag_tls_cert_expiry_timestamp_seconds",
                            L({("server", "127.0.0.1:%d" % self.relay10.port)}))], float(self.expiry10))
        self.assertEqual(m[("maildiag_dnsbl_listed", L({("ip", "203.0.113.66"), ("zone", "bl.health.test")}))], 1)
        self.assertEqual(m[("maildiag_dnsbl_listed", L({("ip", "203.0.113.10"), ("zone", "bl.health.test")}))], 0)
        unusable = m[("maildiag_dnsbl_listed", L({("ip", "203.0.113.10"), ("zone", "deadbl.health.test")}))]
        self.assertNotEqual(unusable, unusable, "an unusable list is NaN, not 0")
        last = m[("maildiag_last_run_timestamp_seconds", L())]
        self.assertTrue(t0 - 1 <= last <= time.time(), last)
        for fam in ("maildiag_health_status", "maildiag_check_status", "maildiag_check_duration_seconds",
                    "maildiag_tls_cert_expiry_timestamp_seconds", "maildiag_dnsbl_listed",
                    "maildiag_last_run_timestamp_seconds"):
            self.assertIn("# HELP %s " % fam, text)
            self.assertIn("# TYPE %s gauge" % fam, text)
        self.assertEqual([f for f in os.listdir(textdir) if not f.endswith(".prom")], [],
                         "no temporary file left beside the textfile")

    def test_usage_errors(self):
        for argv in (["--json", "--plugin"], ["--json", "--prometheus", "x.prom"], ["--json", "-w", "7", "-c", "30"],
                     ["--json", "--only", "mx"], ["--json", "extra"], ["--json", "-w", "soon"]):
            with self.subTest(argv=argv):
                run = mdlab.run_tool([self.tool, "-C", "/dev/null"] + argv)
                self.assertEqual(run.rc, 3, run)
                [o] = mdlab.json_results(run)
                self.assertEqual([f["id"] for f in o["findings"]], ["usage.error"], run)

    def test_config_errors(self):
        conf = self.conf(extra="seed = not an address\n")
        run = mdlab.run_tool([self.tool, "-C", conf, "--json", "--state", self.state()])
        self.assertEqual(run.rc, 3, run)
        [o] = mdlab.json_results(run)
        self.assertEqual(o["findings"][0]["id"], "config.error")
        self.assertRegex(o["findings"][0]["summary"], r"%s:\d+: \[health\] seed: " % re.escape(conf))
        run = mdlab.run_tool([self.tool, "-C", os.path.join(self.dir, "missing.conf"), "--plugin"])
        self.assertEqual(run.rc, 3, run)
        self.assertTrue(run.out.startswith("MAILDIAG HEALTH UNKNOWN - configuration: "), run)

    def test_man_page(self):
        man = os.path.join(os.path.dirname(mdlab.tests_dir()), "tools", "maildiag-health.1")
        with open(man) as f:
            text = f.read()
        blocks = re.findall(r"^\.nf\n(.*?)^\.fi", text, re.S | re.M)
        unescape = lambda b: b.replace("\\-", "-").replace("\\e", "\\").replace("\\(en", "-")
        ini = [unescape(b) for b in blocks if "[sender]" in b]
        self.assertTrue(ini, "the man page has an INI example")
        conf = os.path.join(self.dir, "man.conf")
        with open(conf, "w") as f:
            f.write(ini[0])
        os.chmod(conf, 0o600)
        # it loads: the run gets to its checks (the lookups fail: nothing answers there)
        dead = "127.0.0.1:%d" % mdlab.free_port()
        env = {"MAILDIAG_SMTP_PASSWORD": "x", "MAILDIAG_IMAP_PASSWORD": "x"}
        run = self.run_health(conf, "--json", "--only", "spf", "--timeout", "2", resolver=dead, env=env)
        [o] = mdlab.json_results(run)
        self.assertEqual([c["check"] for c in o["checks"]], ["spf"], run)
        # the alert rules are YAML Prometheus reads, on metrics the tool writes
        rules = [unescape(b) for b in blocks if "alert:" in b]
        self.assertTrue(rules, "the man page has an alert rule example")
        try:
            import yaml
        except ImportError:
            yaml = None
        if yaml:
            doc = yaml.safe_load(rules[0])
            exprs = [r["expr"] for g in doc["groups"] for r in g["rules"]]
            self.assertTrue(exprs)
            for e in exprs:
                self.assertRegex(e, r"maildiag_")
        help_text = mdlab.run_tool([self.tool, "--help"]).out
        for opt in ("--only", "--warning", "--critical", "--state", "--prometheus", "--plugin", "--json",
                    "--config", "--resolver", "--timeout", "--quiet", "--verbose"):
            self.assertIn(opt, help_text)
            self.assertIn(opt.replace("-", "\\-"), text, "the man page documents %s" % opt)


class Changes(Lab):
    def test_newly_listed_across_runs(self):
        """Run 1 clean; NSD restarted on a zone that lists 203.0.113.10; run 2 says
        "newly listed ... since <run 1>"; the listing removed again: "no longer listed"."""
        with open(self.zones["health.test"]) as f:
            zone = f.read()
        path = os.path.join(self.dir, "changing.zone")

        def serve(listed):
            with open(path, "w") as f:
                f.write(zone + ("10.113.0.203.bl IN A 127.0.0.2\n" if listed else ""))
            return mdlab.Nsd(dict(self.zones, **{"health.test": path}), workdir=self.dir).start()

        conf = self.conf(ips="203.0.113.10")
        state = self.state()
        ns = serve(False)
        try:
            o1, run = self.health(conf, "--only", "dnsbl,spf", resolver=ns.resolver, state=state)
            self.assertCheck(o1, run, "dnsbl", "ok")
        finally:
            ns.stop()
        when = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(o1["started"]))
        ns = serve(True)
        try:
            o2, run = self.health(conf, "--only", "dnsbl,spf", resolver=ns.resolver, state=state)
            self.assertCheck(o2, run, "dnsbl", "critical", "dnsbl.listed")
            self.assertEqual(o2["previous_run"], when)
            [ch] = o2["changes"]
            self.assertEqual((ch["check"], ch["kind"], ch["ip"], ch["zone"]),
                             ("dnsbl", "listed", "203.0.113.10", "bl.health.test"))
            self.assertEqual(ch["summary"], "dnsbl: 203.0.113.10 newly listed on bl.health.test since %s" % when)
            # the plugin output says it too (a third run: still listed, no news)
            run = self.run_health(conf, "--only", "dnsbl,spf", resolver=ns.resolver, state=state)
            state_word, text, perf, long = parse_plugin(run.out)
            self.assertIn("no change since", "\n".join(long), run)
        finally:
            ns.stop()
        ns = serve(False)
        try:
            o3, run = self.health(conf, "--only", "dnsbl", resolver=ns.resolver, state=state)
        finally:
            ns.stop()
        self.assertEqual(sorted(c["kind"] for c in o3["changes"]), ["fixed", "unlisted"], o3["changes"])
        self.assertIn("dnsbl: 203.0.113.10 no longer listed on bl.health.test",
                      [c["summary"] for c in o3["changes"]])
        self.assertIn("dnsbl: fixed", " ".join(c["summary"] for c in o3["changes"]))

    def test_unknown_claims_nothing(self):
        """A listed IP, then a run where DNS fails: not "no longer listed", and the next good
        run does not call the listing new."""
        conf = self.conf(ips="203.0.113.66")
        state = self.state()
        o, run = self.health(conf, "--only", "dnsbl", state=state)
        self.assertCheck(o, run, "dnsbl", "critical", "dnsbl.listed")
        with mdlab.ScriptedDns([(".test", "*", "servfail"), (".arpa", "*", "servfail")]) as sd:
            o, run = self.health(conf, "--only", "dnsbl", state=state, resolver=sd.resolver)
        self.assertCheck(o, run, "dnsbl", "unknown", "dns.temporary")
        self.assertEqual([c["kind"] for c in o["changes"]], ["status"], o["changes"])
        o, run = self.health(conf, "--only", "dnsbl", state=state)
        self.assertNotIn("listed", [c["kind"] for c in o["changes"]], o["changes"])


class Failures(Lab):
    HANG = [(".test", "*", "hang"), (".arpa", "*", "hang")]

    def test_deadline_silent_dns(self):
        with mdlab.ScriptedDns(self.HANG) as sd:
            t0 = time.monotonic()
            o, run = self.health(self.conf(), "--timeout", "3", resolver=sd.resolver)
            elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 3 + 1.5, run)
        text = json.dumps(o)
        for name in DNS_CHECKS:
            c = self.check(o, name)
            self.assertEqual(c["status"], "unknown", json.dumps(c)[:2000])
            self.assertTrue({"health.timeout", "dns.temporary", "spf.temperror"} & set(self.ids(o, name)), c)
            self.assertLessEqual(c["duration_ms"], 3000 + 500)
        self.assertTrue(any("health.timeout" in self.ids(o, n) for n in DNS_CHECKS), "the deadline is named")
        for absent in ABSENCE:
            self.assertNotIn('"%s"' % absent, text, "a lookup that never came back is not an absence")
        # the relay needs no DNS: it is checked meanwhile, within the same deadline
        self.assertCheck(o, run, "relay", "ok", "smtp.auth.ok")

    def test_dead_resolver(self):
        dead = "127.0.0.1:%d" % mdlab.free_port()    # nothing listens there
        t0 = time.monotonic()
        o, run = self.health(self.conf(), "--timeout", "4", resolver=dead)
        self.assertLess(time.monotonic() - t0, 4 + 1.5, run)
        for name in DNS_CHECKS:
            self.assertEqual(self.check(o, name)["status"], "unknown", run)
        text = json.dumps(o)
        for absent in ABSENCE:
            self.assertNotIn('"%s"' % absent, text, "a failed lookup is not an absence")
        self.assertEqual(o["status"], "unknown")
        self.assertEqual(run.rc, 3)

    def test_lock(self):
        """Two runs at once: the second exits 3 at once and leaves the state alone."""
        state = self.state()
        conf = self.conf()
        self.health(conf, "--only", "relay", state=state)            # a state to protect
        with open(state, "rb") as f:
            before = f.read()
        with mdlab.ScriptedDns(self.HANG) as sd:
            first = subprocess.Popen([self.tool, "-C", conf, "-r", sd.resolver, "--state", state, "--timeout", "4",
                                      "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=mdlab.tool_env())
            try:
                # wait until the first run holds the lock (its file beside the state)
                end = time.monotonic() + 5
                while True:
                    with open(state + ".lock", "a") as lf:
                        try:
                            fcntl.flock(lf, fcntl.LOCK_EX | fcntl.LOCK_NB)
                            fcntl.flock(lf, fcntl.LOCK_UN)
                        except BlockingIOError:
                            break
                    self.assertLess(time.monotonic(), end, "the first run never took the lock")
                    time.sleep(0.02)
                t0 = time.monotonic()
                run = self.run_health(conf, state=state, resolver=sd.resolver)
                self.assertLess(time.monotonic() - t0, 1.0, "the second run gives up at once\n%s" % run)
                self.assertEqual(run.rc, 3, run)
                self.assertIn("another maildiag-health run holds the lock", run.err)
                self.assertTrue(run.out.startswith("MAILDIAG HEALTH UNKNOWN - another maildiag-health run"), run)
                run = self.run_health(conf, "--json", state=state, resolver=sd.resolver)
                [o] = mdlab.json_results(run)
                self.assertEqual([f["id"] for f in o["findings"]], ["health.locked"], run)
                with open(state, "rb") as f:
                    self.assertEqual(f.read(), before, "the second run left the state alone")
            finally:
                out, err = first.communicate(timeout=30)
        self.assertEqual(first.returncode, 3, err)
        with open(state, "rb") as f:
            self.assertNotEqual(f.read(), before, "the first run wrote its state")
        # free again: the lock file stays, the lock does not
        o, run = self.health(conf, "--only", "relay", state=state)
        self.assertEqual(run.rc, 0, run)

    def test_state_unwritable(self):
        """No folder for the state: no lock can be taken beside it, so nothing runs."""
        run = self.run_health(self.conf(), "--json", "--only", "relay",
                              state=os.path.join(self.dir, "nodir", "health.json"))
        self.assertEqual(run.rc, 3, run)
        [o] = mdlab.json_results(run)
        self.assertEqual([f["id"] for f in o["findings"]], ["health.state_error"], run)
        self.assertIn("cannot open the lock file", o["findings"][0]["summary"])


class Install(unittest.TestCase):
    """make's install rules for the cron file and the systemd units, run for those files
    only (make install-cronDATA install-systemdsystemunitDATA install-binPROGRAMS
    install-man1 DESTDIR=...): a whole `make install` from inside `make check` would rebuild and relink
    whatever is out of date under the running tests; these rules only copy files that `make
    all` made.  systemd-analyze verify then reads the installed units under --root."""

    def test_installed_and_verified(self):
        bindir = os.environ.get("MAILDIAG_BIN_DIR")
        if not bindir:
            raise mdlab.LabSkip("MAILDIAG_BIN_DIR is not set")
        build = os.path.dirname(bindir)
        dest = tempfile.mkdtemp(prefix="md-install-")
        try:
            def var(name):
                # the Makefile's own value, as make expands it
                p = subprocess.run(["make", "-s", "-C", build, "--no-print-directory",
                                    "--eval=md-print-var: ; @echo $(%s)" % name, "md-print-var"],
                                   capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                # under make check, a sub-make may still say where it is
                return [l for l in p.stdout.splitlines() if not l.startswith("make[")][-1].strip()
            units, crond, bin_ = var("systemdsystemunitdir"), var("crondir"), var("bindir")
            sysconf = var("sysconfdir")
            self.assertEqual(crond, sysconf + "/cron.d")
            p = subprocess.run(["make", "-s", "-C", build, "install-cronDATA",
                                "install-systemdsystemunitDATA", "install-binPROGRAMS", "install-man1",
                                "DESTDIR=" + dest], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue(os.path.isfile(os.path.join(dest + var("man1dir"), "maildiag-health.1")),
                            "the units' Documentation= page is installed")
            # cron(8) skips files in cron.d whose names hold a dot
            cron = os.path.join(dest + crond, "maildiag-health")
            service = os.path.join(dest + units, "maildiag-health.service")
            timer = os.path.join(dest + units, "maildiag-health.timer")
            for f in (cron, service, timer):
                self.assertTrue(os.path.isfile(f), "installed: %s" % f)
            with open(cron) as f:
                line = [l for l in f if l.strip() and not l.startswith("#") and "=" not in l.split()[0]]
            self.assertEqual(len(line), 1, line)
            # quiet where systemd runs (the timer's job) and until the configuration exists
            self.assertRegex(line[0], r"^\*/5 \* \* \* \* root \[ -d /run/systemd/system \] \|\| "
                             r"\[ ! -r %s/maildiag\.conf \] \|\| %s/maildiag-health --prometheus /\S+\.prom$"
                             % (re.escape("/etc"), re.escape(bin_)))
            cmd = line[0].split(" root ", 1)[1].strip()
            # run by sh as cron would, with the paths pointed at a folder of ours: no
            # configuration there, so it must do nothing and succeed
            fake = cmd.replace("/etc/maildiag.conf", os.path.join(dest, "absent.conf"))
            fake = fake.replace("[ -d /run/systemd/system ]", "false")
            p = subprocess.run(["sh", "-c", fake], capture_output=True, text=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""), "no configuration: quiet")
            with open(service) as f:
                text = f.read()
            self.assertIn("ExecStart=%s/maildiag-health --prometheus " % bin_, text)
            self.assertNotRegex(text, r"@[a-z_]+@", "every placeholder substituted")
            if shutil.which("systemd-analyze") is None:
                self.skipTest("systemd-analyze is not installed: the units were not verified")
            # systemd-analyze --root needs the targets the units name (sysinit.target ...)
            targets = os.path.join(dest, "usr", "lib", "systemd", "system")
            os.makedirs(targets, exist_ok=True)
            for d in ("/usr/lib/systemd/system", "/lib/systemd/system"):
                if os.path.isdir(d):
                    for t in os.listdir(d):
                        if t.endswith(".target") and not os.path.exists(os.path.join(targets, t)):
                            shutil.copy(os.path.join(d, t), targets)
            # --man=no: man(1) looks for Documentation= pages on the host, not under --root
            # (installed just above)
            p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=" + dest,
                                service[len(dest):].lstrip("/"),
                                timer[len(dest):].lstrip("/")], cwd=dest, capture_output=True, text=True)
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), "systemd-analyze verify")
        finally:
            shutil.rmtree(dest, ignore_errors=True)


class Valgrind(Lab):
    """maildiag-health's paths under valgrind: a full run (the DNS checks, the relay and
    send threads, libESMTP's child, the arrival wait), the deadline with DNS silent, the
    lock held, a configuration error."""

    def vg(self, *args, conf=None, resolver=None, state=None):
        why = mdlab.valgrind_skip_reason()
        if why:
            self.skipTest(why)
        argv = [mdlab.real_binary("maildiag-health"), "-C", conf, "-r", resolver or self.ns.resolver,
                "--state", state or self.state()] + ([] if "--prometheus" in args else ["--json"]) + list(args)
        rc, out, err = mdlab.valgrind_run(argv, timeout=600)
        self.assertNotEqual(rc, 99, "valgrind found errors:\n" + err)
        return rc, out

    def test_valgrind(self):
        extra = ("seed = seed@lab.test\nseed_mailbox = imaps://seed@127.0.0.1:%d/INBOX\n"
                 "seed_password_file = %s\nseed_ca_file = %s\n"
                 % (self.imap.imaps_port, self.imap_pw, self.pki.ca_file))
        conf = self.conf(ips="203.0.113.10, 203.0.113.66", extra=extra)
        state = self.state()
        rc, out = self.vg("--timeout", "60", conf=conf, state=state)
        o = json.loads(out)
        self.assertEqual(rc, 2, out)
        self.assertTrue(self.check(o, "send")["data"]["arrival"]["found"], out)
        rc, out = self.vg("--timeout", "60", "--prometheus", os.path.join(self.dir, "vg.prom"), conf=conf,
                          state=state)
        self.assertEqual((rc, out), (2, ""))
        with mdlab.ScriptedDns(Failures.HANG) as sd:
            rc, out = self.vg("--timeout", "3", conf=self.conf(), resolver=sd.resolver)
        self.assertEqual(rc, 3, out)
        lockstate = self.state()
        with open(lockstate + ".lock", "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            rc, out = self.vg(conf=self.conf(), state=lockstate)
        self.assertEqual(rc, 3, out)
        rc, out = self.vg(conf=self.conf(extra="checks = mx\n"))
        self.assertEqual(rc, 3, out)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
