#!/usr/bin/env python3
"""maildiag-auth against a real authoritative server (NSD on 127.0.0.1) serving
tests/zones/auth.test.zone, reports.test.zone and bare.test.zone: DMARC (own and
organizational-domain records, tags, external report authorization), DKIM keys
(parsed by OpenSSL: sizes, revoked, testing), MTA-STS, TLS-RPT, BIMI, SPF lint and MX.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import os
import shutil
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

NSD = None
TMP = None
BIN = None
RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def setUpModule():
    global NSD, TMP, BIN
    BIN = mdlab.tool_path("maildiag-auth")
    TMP = tempfile.mkdtemp(prefix="mdtest-auth-")
    NSD = mdlab.Nsd({z: mdlab.zone_path(z + ".zone")
                     for z in ("auth.test", "reports.test", "bare.test")}, workdir=TMP)
    NSD.start()


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class Auth(unittest.TestCase):
    maxDiff = None

    def auth(self, domain, *args, json=True, env=None):
        argv = [BIN, "--resolver", NSD.resolver, "--timeout", "2"]
        if json:
            argv.append("--json")
        run = mdlab.run_tool(argv + list(args) + [domain], env=env)
        if not json:
            return None, run
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), 1, run)
        o = objs[0]
        self.assertEqual(run.rc, RC[o["status"]], "exit code follows the worst severity\n%s" % run)
        return o, run

    def ids(self, o):
        return {f["id"]: f["severity"] for f in o["findings"]}

    def assertFinding(self, o, fid, severity, run):
        got = self.ids(o)
        self.assertIn(fid, got, "finding %s: got %r\n%s" % (fid, got, run))
        self.assertEqual(got[fid], severity, "severity of %s\n%s" % (fid, run))

    def test_good_domain(self):
        o, run = self.auth("good.auth.test", "--dkim-selector", "sel1", "--dkim-selector", "ed")
        self.assertEqual(o["status"], "ok", run)
        self.assertEqual(o["dmarc"]["policy"], "reject")
        self.assertEqual([(k["selector"], k["key_type"], k["key_bits"]) for k in o["dkim"]],
                         [("sel1", "rsa", 2048), ("ed", "ed25519", 256)], run)
        rua = {r["uri"]: r for r in o["dmarc"]["rua"]}
        self.assertTrue(rua["mailto:agg@reports.test"]["authorized"], run)
        for fid in ("dmarc.ok", "dkim.ok", "mtasts.ok", "tlsrpt.ok", "bimi.present", "spf.ok"):
            self.assertFinding(o, fid, "ok", run)
        self.assertEqual(o["spf"]["record"], "v=spf1 ip4:192.0.2.0/24 -all")
        self.assertEqual(o["mx"]["mx"][0]["host"], "mx.good.auth.test", run)
        self.assertEqual(o["mx"]["status"], "ok", run)

    def test_bare_domain(self):
        o, run = self.auth("bare.test")
        self.assertEqual(o["status"], "critical", run)
        self.assertFinding(o, "dmarc.missing", "critical", run)
        self.assertFinding(o, "dkim.none_found", "warning", run)
        self.assertFinding(o, "spf.no_record", "warning", run)
        self.assertFinding(o, "mtasts.absent", "ok", run)
        self.assertFinding(o, "tlsrpt.absent", "ok", run)
        self.assertFinding(o, "mx.implicit", "warning", run)

    def test_dmarc_cases(self):
        o, run = self.auth("pnone.auth.test")
        self.assertFinding(o, "dmarc.p_none", "warning", run)
        o, run = self.auth("pnone.auth.test", "--no-reset-mail")
        self.assertFinding(o, "dmarc.p_none", "ok", run)
        o, run = self.auth("multi.auth.test")
        self.assertFinding(o, "dmarc.multiple", "critical", run)
        o, run = self.auth("badp.auth.test")
        self.assertFinding(o, "dmarc.syntax", "critical", run)
        o, run = self.auth("badtags.auth.test")
        self.assertFinding(o, "dmarc.syntax", "warning", run)
        self.assertEqual(o["dmarc"]["policy"], "reject", run)
        o, run = self.auth("pct.auth.test")
        self.assertFinding(o, "dmarc.pct", "warning", run)
        o, run = self.auth("unauth.auth.test")
        self.assertFinding(o, "dmarc.rua_unauthorized", "warning", run)
        o, run = self.auth("norua.auth.test")
        self.assertFinding(o, "dmarc.no_rua", "warning", run)

    def test_dmarc_organizational_domain(self):
        o, run = self.auth("sub.inherit.auth.test")
        self.assertEqual(o["org_domain"], "auth.test", run)
        self.assertEqual(o["dmarc"]["found_at"], "auth.test", run)
        self.assertEqual(o["dmarc"]["policy"], "reject", "sp= applies to a subdomain\n%s" % run)
        self.assertFinding(o, "dmarc.inherited", "ok", run)

    def test_dkim_cases(self):
        for sel, fid, sev in (("weak", "dkim.key_weak", "critical"),
                              ("short", "dkim.key_short", "warning"),
                              ("long", "dkim.ok", "ok"), ("ed", "dkim.ok", "ok"),
                              ("revoked", "dkim.revoked", "critical"),
                              ("testing", "dkim.testing", "warning"),
                              ("garbage", "dkim.key_invalid", "critical"),
                              ("absent", "dkim.missing", "critical")):
            o, run = self.auth("dk.auth.test", "--dkim-selector", sel)
            self.assertFinding(o, fid, sev, run)
        o, run = self.auth("dk.auth.test", "--dkim-selector", "short")
        self.assertEqual(o["dkim"][0]["key_bits"], 1024, run)
        o, run = self.auth("dk.auth.test", "--dkim-selector", "testing")
        self.assertEqual(o["dkim"][0]["key_bits"], 2048, "key split across strings\n%s" % run)

    def test_default_selectors(self):
        o, run = self.auth("dk.auth.test", env={"MAILDIAG_DKIM_SELECTORS": "nope,long"})
        self.assertEqual([k["selector"] for k in o["dkim"]], ["long"], run)
        self.assertNotIn("dkim.missing", self.ids(o), run)

    def test_mtasts_tlsrpt(self):
        o, run = self.auth("bad.auth.test")
        self.assertFinding(o, "mtasts.invalid", "warning", run)
        self.assertFinding(o, "tlsrpt.invalid", "warning", run)
        o, run = self.auth("nohost.auth.test")
        self.assertFinding(o, "mtasts.policy_host", "warning", run)

    def test_input_forms(self):
        o, run = self.auth("GOOD.Auth.Test.", "--dkim-selector", "sel1")
        self.assertEqual((o["domain"], o["status"]), ("good.auth.test", "ok"), run)
        o, run = self.auth("bücher.auth.test")
        self.assertEqual(o["domain"], "xn--bcher-kva.auth.test", run)
        o, run = self.auth("bad..name")
        self.assertEqual(o["status"], "unknown", run)
        self.assertFinding(o, "input.invalid_domain", "unknown", run)

    def test_text_and_usage(self):
        _, run = self.auth("good.auth.test", "--dkim-selector", "sel1", json=False)
        self.assertEqual(run.rc, 0, run)
        self.assertIn("DKIM sel1: rsa 2048 bits", run.out, run)
        for args in ([], ["--bogus", "x.test"], ["--dkim-selector", "", "x.test"]):
            run = mdlab.run_tool([BIN] + args)
            self.assertEqual(run.rc, 3, run)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
