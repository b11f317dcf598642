#!/usr/bin/env python3
"""The exit status is the status shown, in every tool and every format: 0 ok,
1 warning, 2 critical, 3 unknown, whether the status is printed as text
("SUBJECT: STATE"), in JSON ("status") or in the monitoring-plugin line.

DNS comes from the scripted responder (tests/lab/dnsscript.py), SMTP from
Postfix's smtp-sink, both on 127.0.0.1; stores are SQLite files made here.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_exit_status.py ExitStatus.test_send
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import smtplab  # noqa: E402

EXIT = mdlab.STATUS_EXIT

RULES = [
    # a healthy route, a strict SPF record
    ("ok.exit.test", "MX", "answer", [("MX", 10, "mx.ok.exit.test")]),
    ("mx.ok.exit.test", "A", "answer", [("A", "192.0.2.10")]),
    ("mx.ok.exit.test", "AAAA", "nodata"),
    ("ok.exit.test", "TXT", "answer", [("TXT", "v=spf1 ip4:192.0.2.0/24 -all")]),
    # no MX but an address (implicit MX: warning); SPF ?all (warning)
    ("warn.exit.test", "MX", "nodata"),
    ("warn.exit.test", "A", "answer", [("A", "192.0.2.20")]),
    ("warn.exit.test", "AAAA", "nodata"),
    ("warn.exit.test", "TXT", "answer", [("TXT", "v=spf1 ?all")]),
    # null MX (critical); SPF +all (critical)
    ("crit.exit.test", "MX", "answer", [("MX", 0, ".")]),
    ("crit.exit.test", "TXT", "answer", [("TXT", "v=spf1 +all")]),
    # every lookup fails (unknown)
    (".sf.exit.test", "*", "servfail"),
    (".exit.test", "*", "nodata"),
]
DOMAINS = ("ok.exit.test", "warn.exit.test", "crit.exit.test", "sf.exit.test")

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
alice,alice@corp.exit.test,active,password,,1
pat,pat@corp.exit.test,active,sso,Okta,1
gone,gone@corp.exit.test,deactivated,password,,1
sam,sam@sf.exit.test,active,password,,1
"""


class ExitStatus(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-mx")
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-exit-")
        os.chmod(cls.tmp, 0o711)
        cls.dns = mdlab.ScriptedDns(RULES).start()
        cls.store = "sqlite:" + os.path.join(cls.tmp, "store.db")
        for args, stdin in ((["init"], None), (["import", "-"], ACCOUNTS.encode())):
            r = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", cls.store,
                                "--no-dns"] + args, stdin=stdin)
            assert r.rc == 0, str(r)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def agree(self, argv, formats=("text", "json", "plugin"), text=mdlab.text_status):
        """Runs argv in each format; the exit status must be the status shown.
        Returns {format: status}."""
        seen = {}
        for fmt in formats:
            extra = {"text": [], "json": ["--json"], "plugin": ["--plugin"]}[fmt]
            r = mdlab.run_tool(argv + extra, timeout=60)
            if fmt == "json":
                objs = mdlab.json_results(r)
                self.assertTrue(objs, r)
                shown = max((o["status"] for o in objs), key=lambda s: ("ok", "unknown", "warning", "critical").index(s))
            elif fmt == "plugin":
                shown = mdlab.parse_plugin(r.out)[1]
            else:
                shown = text(r.out)
            self.assertEqual(r.rc, EXIT[shown], "exit status != status shown (%s)\n%s" % (fmt, r))
            seen[fmt] = shown
        self.assertEqual(len(set(seen.values())), 1, "one status in every format: %s\n%s" % (seen, argv))
        return seen["json"] if "json" in seen else next(iter(seen.values()))

    def test_mx(self):
        got = [self.agree([mdlab.tool_path("maildiag-mx"), "--resolver", self.dns.resolver, d]) for d in DOMAINS]
        self.assertEqual(got, ["ok", "warning", "critical", "unknown"])
        # several domains: the worst, ranked critical > warning > unknown > ok
        self.assertEqual(self.agree([mdlab.tool_path("maildiag-mx"), "--resolver", self.dns.resolver,
                                     "sf.exit.test", "warn.exit.test"], formats=("json", "plugin")), "warning")

    def test_spf(self):
        spf = [mdlab.tool_path("maildiag-spf"), "--resolver", self.dns.resolver]
        got = [self.agree(spf + [d]) for d in DOMAINS]
        self.assertEqual(got, ["ok", "warning", "critical", "unknown"])
        ev = spf + ["--no-libspf2", "--ip", "192.0.2.1", "--from"]
        got = [self.agree(ev + ["a@" + d]) for d in DOMAINS]
        self.assertEqual(got, ["ok", "warning", "ok", "unknown"])   # pass, neutral, pass (+all), temperror

    def test_auth(self):
        auth = [mdlab.tool_path("maildiag-auth"), "--resolver", self.dns.resolver]
        got = [self.agree(auth + [d]) for d in ("crit.exit.test", "sf.exit.test")]
        self.assertEqual(got, ["critical", "unknown"])

    def send_text_status(self, out):
        # the verdict line first, then "TO: STATE"
        return mdlab.text_status("\n".join(out.splitlines()[1:]))

    def test_send(self):
        send = [mdlab.tool_path("maildiag-send"), "--from", "noreply@example.com"]
        with smtplab.Sink() as sink, smtplab.Sink(args=["-f", "RCPT"]) as reject:
            relay = ["--to", "a@example.com", "--server", "127.0.0.1:%d" % sink.port]
            cases = [
                (relay + ["--tls", "off"], "ok"),
                # accepted, with the warning that no STARTTLS was offered: 1, not 0
                (relay, "warning"),
                (["--to", "a@example.com", "--server", "127.0.0.1:%d" % reject.port, "--tls", "off"], "critical"),
                # the route's DNS lookup failed: unknown, not deferred/critical
                (["--direct", "--resolver", self.dns.resolver, "--to", "b@sf.exit.test"], "unknown"),
            ]
            for args, want in cases:
                for probe in ([], ["--quit-after", "rcpt"]):
                    with self.subTest(args=args, probe=probe):
                        got = self.agree(send + args + probe, text=self.send_text_status)
                        self.assertEqual(got, want)

    def test_token(self):
        tok = mdlab.tool_path("maildiag-token")
        keys = os.path.join(self.tmp, "keys")
        with open(keys, "w") as f:
            f.write("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")
        os.chmod(keys, 0o600)
        t = mdlab.run_tool([tok, "issue", "--key-file", keys, "--kind", "reset", "--account", "1",
                            "--ttl", "60", "--now", "1000"]).out.strip()
        for now, want in (("1010", "ok"), ("2000", "critical")):
            self.assertEqual(self.agree([tok, "verify", "--key-file", keys, "--now", now, t],
                                        formats=("text", "json")), want)

    def test_user_lookup(self):
        user = [mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", self.store, "--no-dns", "lookup"]
        got = [self.agree(user + [a]) for a in ("alice@corp.exit.test", "pat@corp.exit.test", "gone@corp.exit.test")]
        self.assertEqual(got, ["ok", "warning", "critical"])
        # the domain's MX lookup failed: unknown
        self.assertEqual(self.agree([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", self.store,
                                     "--resolver", self.dns.resolver, "lookup", "sam@sf.exit.test"]), "unknown")

    def test_user_commands(self):
        user = [mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", self.store, "--no-dns"]
        for args, want in ((["suppression", "list"], "ok"), (["suppression", "remove", "nobody@corp.exit.test"], "warning"),
                           (["sessions", "list", "nobody@corp.exit.test"], "warning"), (["audit"], "ok"),
                           (["remind", "nobody@corp.exit.test"], "warning")):
            with self.subTest(args=args):
                r = mdlab.run_tool(user + ["--json"] + args)
                (j,) = mdlab.json_results(r)
                self.assertEqual(j["status"], want, r)
                self.assertEqual(r.rc, EXIT[want], r)

    def test_selfcheck(self):
        argv = [mdlab.tool_path("maildiag-selfcheck"), "--config", "/dev/null", "--store", self.store,
                "--min-time", "0", "--resolver", self.dns.resolver, "--want", "username"]
        for addr, want in (("a@crit.exit.test", "critical"), ("a@sf.exit.test", "unknown")):
            r = mdlab.run_tool(argv + ["--json", addr])
            (j,) = mdlab.json_results(r)
            self.assertEqual(j["status"], want, r)
            self.assertEqual(r.rc, EXIT[want], r)

    def test_bounces(self):
        d = os.path.join(self.tmp, "maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "new", "1.eml"), "w") as f:
            f.write("From: someone@example.com\nTo: x@example.com\nSubject: hello\n\nnot a bounce\n")
        r = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", self.store,
                            "--json", "bounces", "--maildir", d])
        (j,) = mdlab.json_results(r)
        self.assertEqual(j["status"], "warning", r)    # nothing to do
        self.assertEqual(r.rc, 1, r)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
