#!/usr/bin/env python3
"""--plugin in every checking tool (maildiag-mx, -spf, -auth, the send probe,
maildiag-user lookup): one status line that names the first finding of the
state shown, with the count of subjects in it, and perfdata exactly as the
monitoring-plugins guidelines give it, parsed here the way they do; -w/-c
thresholds in monitoring-plugins range syntax where a number makes sense
(mx and the send probe: time in seconds; spf: the DNS-querying terms used).

DNS comes from the scripted responder, SMTP from smtp-sink, both on 127.0.0.1.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_plugin.py Plugin.test_mx
"""

import os
import re
import shutil
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import smtplab  # noqa: E402

RULES = [
    ("ok.plugin.test", "MX", "answer", [("MX", 10, "mx.ok.plugin.test")]),
    ("mx.ok.plugin.test", "A", "answer", [("A", "192.0.2.10")]),
    ("mx.ok.plugin.test", "AAAA", "nodata"),
    ("ok.plugin.test", "A", "answer", [("A", "192.0.2.11")]),
    ("ok.plugin.test", "TXT", "answer", [("TXT", "v=spf1 a mx -all")]),   # 2 DNS-querying terms
    ("parked.plugin.test", "MX", "answer", [("MX", 0, ".")]),
    ("parked.plugin.test", "TXT", "answer", [("TXT", "v=spf1 -all")]),
    (".plugin.test", "*", "nodata"),
]


def tool(name):
    return mdlab.tool_path("maildiag-" + name)


class Plugin(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-mx")
        cls.dns = mdlab.ScriptedDns(RULES).start()
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-plugin-")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def plugin(self, argv):
        r = mdlab.run_tool(argv + ["--plugin"], timeout=60)
        label, state, text, perf = mdlab.parse_plugin(r.out)
        self.assertEqual(r.rc, mdlab.STATUS_EXIT[state], r)
        self.assertEqual(r.err, "", r)
        return label, state, text, {p["label"]: p for p in perf}

    def assertCounts(self, perf, noun, total, by_state):
        self.assertEqual(perf[noun]["value"], total)
        for st in ("critical", "warning", "unknown", "ok"):
            self.assertEqual(perf[st]["value"], by_state.get(st, 0), st)

    def test_mx(self):
        mx = [tool("mx"), "--resolver", self.dns.resolver]
        label, state, text, perf = self.plugin(mx + ["ok.plugin.test", "parked.plugin.test"])
        self.assertEqual((label, state), ("MX", "critical"))
        # the first finding of the state shown, and how many are in it
        self.assertTrue(text.startswith("parked.plugin.test"), text)
        self.assertIn("null MX", text)
        self.assertTrue(text.endswith("(1 of 2 domains critical)"), text)
        self.assertCounts(perf, "domains", 2, {"critical": 1, "ok": 1})
        self.assertEqual((perf["time"]["uom"], perf["time"]["min"]), ("s", "0"))
        label, state, text, perf = self.plugin(mx + ["ok.plugin.test"])
        self.assertEqual(state, "ok")
        self.assertTrue(text.endswith("(1 of 1 domain ok)"), text)
        # thresholds on the run's time (seconds, monitoring-plugins ranges);
        # a run on loopback may take under the millisecond the time is
        # measured in: '@0:100' alerts inside 0..100, so for any time
        _, state, text, perf = self.plugin(mx + ["-w", "@0:100", "ok.plugin.test"])
        self.assertEqual(state, "warning")
        self.assertIn("past the warning threshold @0:100", text)
        self.assertEqual(perf["time"]["warn"], "@0:100")
        _, state, _, perf = self.plugin(mx + ["-w", "@0:100", "-c", "@0:100", "ok.plugin.test"])
        self.assertEqual(state, "critical")
        self.assertEqual((perf["time"]["warn"], perf["time"]["crit"]), ("@0:100", "@0:100"))
        _, state, _, _ = self.plugin(mx + ["-w", "100", "-c", "200", "ok.plugin.test"])
        self.assertEqual(state, "ok")
        # a threshold never hides a worse result
        _, state, text, _ = self.plugin(mx + ["-w", "@0:100", "parked.plugin.test"])
        self.assertEqual(state, "critical")
        self.assertIn("null MX", text)
        # nothing checked is UNKNOWN
        _, state, text, _ = self.plugin(mx + ["--file", "/dev/null"])
        self.assertEqual(state, "unknown")

    def test_spf(self):
        spf = [tool("spf"), "--resolver", self.dns.resolver]
        _, state, text, perf = self.plugin(spf + ["ok.plugin.test"])
        self.assertEqual(state, "ok")
        self.assertEqual(perf["lookups"]["value"], 2)
        self.assertEqual((perf["lookups"]["min"], perf["lookups"]["max"]), ("0", "10"))
        self.assertEqual(perf["void_lookups"]["max"], "2")
        # the ranges of monitoring-plugins on the lookups used (2)
        for w, want in (("3", "ok"), ("1", "warning"), ("5:", "warning"), ("@1:3", "warning"),
                        ("~:1", "warning"), ("~:2", "ok")):
            with self.subTest(w=w):
                self.assertEqual(self.plugin(spf + ["-w", w, "ok.plugin.test"])[1], want)
        self.assertEqual(self.plugin(spf + ["-w", "1", "-c", "1", "ok.plugin.test"])[1], "critical")
        # an evaluation
        label, state, text, perf = self.plugin(spf + ["--no-libspf2", "--ip", "192.0.2.200", "--from",
                                                      "a@parked.plugin.test"])
        self.assertEqual((label, state), ("SPF", "critical"))
        self.assertIn("fail", text)
        r = mdlab.run_tool(spf + ["--plugin", "-w", "x:y", "ok.plugin.test"])
        self.assertEqual(r.rc, 3, r)

    def test_auth(self):
        label, state, text, perf = self.plugin([tool("auth"), "--resolver", self.dns.resolver, "parked.plugin.test"])
        self.assertEqual((label, state), ("AUTH", "critical"))
        self.assertTrue(text.startswith("parked.plugin.test"), text)
        self.assertCounts(perf, "domains", 1, {"critical": 1})

    def test_send_probe(self):
        send = [tool("send"), "--from", "noreply@example.com", "--to", "a@example.com", "--quit-after", "rcpt"]
        with smtplab.Sink() as sink:
            relay = ["--server", "127.0.0.1:%d" % sink.port, "--tls", "off"]
            label, state, text, perf = self.plugin(send + relay)
            self.assertEqual((label, state), ("SMTP", "ok"))
            self.assertIn("a@example.com: ", text)
            self.assertTrue(text.endswith("(1 of 1 send ok)"), text)
            self.assertCounts(perf, "sends", 1, {"ok": 1})
            self.assertEqual(perf["time"]["uom"], "s")
            # a probe on loopback may take under a millisecond, which the
            # time gives as 0: thresholds that alert inside 0..60 ('@')
            _, state, text, perf = self.plugin(send + relay + ["-w", "@0:60", "-c", "60"])
            self.assertEqual(state, "warning")
            self.assertEqual((perf["time"]["warn"], perf["time"]["crit"]), ("@0:60", "60"))
            _, state, _, _ = self.plugin(send + relay + ["-c", "@0:60"])
            self.assertEqual(state, "critical")
        with smtplab.Sink(args=["-f", "RCPT"]) as reject:
            _, state, text, _ = self.plugin(send + ["--server", "127.0.0.1:%d" % reject.port, "--tls", "off"])
            self.assertEqual(state, "critical")
            self.assertIn("500 5.3.0", text)   # the first critical finding: the refusal, in the server's words

    def test_user_lookup(self):
        store = "sqlite:" + os.path.join(self.tmp, "store.db")
        user = [tool("user"), "-C", "/dev/null", "--store", store, "--no-dns"]
        mdlab.run_tool(user + ["init"])
        r = mdlab.run_tool(user + ["import", "-"],
                           stdin=b"username,email,auth,sso_provider,email_verified\npat,pat@corp.test,sso,Okta,1\n")
        self.assertEqual(r.rc, 0, r)
        label, state, text, perf = self.plugin(user + ["lookup", "pat@corp.test"])
        self.assertEqual((label, state), ("USER", "warning"))
        self.assertTrue(text.startswith("pat@corp.test: "), text)
        self.assertIn("SSO", text)
        self.assertEqual(perf["accounts"]["value"], 1)
        r = mdlab.run_tool(user + ["--plugin", "audit"])
        self.assertEqual(r.rc, 3, r)


class Parser(unittest.TestCase):
    """The parser used above refuses what monitoring-plugins would."""

    def test_refuses(self):
        for bad in ("MX OK 1 domain", "MX OK - x | a=1;;;;;;", "MX OK - x | a b=1", "MX FINE - x",
                    "MX OK - x | a=1x", "MX OK - x\nsecond line"):
            with self.subTest(line=bad):
                with self.assertRaises(AssertionError):
                    mdlab.parse_plugin(bad)
        label, state, text, perf = mdlab.parse_plugin("MX OK - fine | 'a b'=1.5s;2;3;0;10 c=2;;;")
        self.assertEqual(perf[0]["label"], "a b")
        self.assertEqual((perf[0]["warn"], perf[0]["max"]), ("2", "10"))
        self.assertTrue(re.match(r"^fine$", text))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
