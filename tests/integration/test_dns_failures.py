#!/usr/bin/env python3
"""A DNS failure is never an absence: with the resolver answering SERVFAIL, and
with no resolver at all (a port nothing listens on), every tool that asks DNS
reports dns.temporary (or its module's form of it) and status UNKNOWN for what
depended on the lookup, exits 3, and never says "no DKIM key", "no route",
"no such domain" or "no record".

DNS comes from the scripted responder (tests/lab/dnsscript.py) on 127.0.0.1.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_dns_failures.py DnsFailures.test_auth
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

# Findings that state an absence: none may follow from a lookup that failed.
ABSENCES = {"dkim.none_found", "dkim.missing", "smtp.no_route", "smtp.resolve.failed",
            "domain.nxdomain", "mx.none", "mx.target_unresolvable", "spf.no_record",
            "spf.none", "spf.include_no_record", "spf.redirect_no_record", "dmarc.missing",
            "mtasts.absent", "tlsrpt.absent", "address.no_mail"}
# Words of the text output that state an absence.
ABSENT_WORDS = ("(none)", "no address", "(no SPF record)", "no key", "no route",
                "does not exist", "cannot receive email")
TEMPORARY = {"dns.temporary", "spf.dns_temporary", "address.dns_temporary"}

ACCOUNTS = ("username,email,status,auth,email_verified\n"
            "alice,alice@shop.fail.test,active,password,1\nbob,bob@shop.fail.test,active,password,1\n")


class DnsFailures(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-mx")
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-dnsfail-")
        cls.servfail = mdlab.ScriptedDns([
            # a record that is there, whose terms' targets cannot be looked up
            ("terms.fail.test", "TXT", "answer", [("TXT", "v=spf1 a:down.fail.test mx:down.fail.test -all")]),
            (".test", "*", "servfail")])
        cls.servfail.start()
        # nothing listens there: every query is refused by the kernel at once
        cls.dead = "127.0.0.1:%d" % mdlab.free_port()
        cls.conf = os.path.join(cls.tmp, "maildiag.conf")
        with open(cls.conf, "w") as f:
            # no relay: the account emails go straight to the MX hosts
            f.write("[mail]\nfrom = noreply@example.com\n")
        os.chmod(cls.conf, 0o600)
        cls.store = "sqlite:" + os.path.join(cls.tmp, "store.db")
        csv = os.path.join(cls.tmp, "accounts.csv")
        with open(csv, "w") as f:
            f.write(ACCOUNTS)
        for args in (["init"], ["import", csv]):
            r = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "--config", cls.conf,
                                "--store", cls.store, "--no-dns"] + args)
            assert r.rc == 0, str(r)

    @classmethod
    def tearDownClass(cls):
        cls.servfail.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def resolvers(self):
        return (("servfail", self.servfail.resolver), ("no server", self.dead))

    def run_json(self, argv):
        r = mdlab.run_tool(argv + ["--json"], timeout=60)
        objs = mdlab.json_results(r)
        self.assertEqual(len(objs), 1, "one JSON object\n%s" % r)
        return r, objs[0]

    def assertUnknownNotAbsent(self, argv, ids_key="findings"):
        """Text and JSON: status unknown, exit 3, a temporary-failure finding,
        no finding or words of absence."""
        r, j = self.run_json(argv)
        ids = {f["id"] for f in j[ids_key]}
        self.assertEqual(j["status"], "unknown", r)
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(ids & TEMPORARY, "a dns.temporary finding\n%s" % r)
        self.assertFalse(ids & ABSENCES, "a failed lookup reported as an absence\n%s" % r)
        t = mdlab.run_tool(argv, timeout=60)
        self.assertEqual(t.rc, 3, t)
        self.assertIn("UNKNOWN", t.out, t)
        for words in ABSENT_WORDS:
            self.assertNotIn(words, t.out, t)
        return j

    def test_mx(self):
        for name, res in self.resolvers():
            with self.subTest(resolver=name):
                self.assertUnknownNotAbsent([mdlab.tool_path("maildiag-mx"), "--resolver", res,
                                             "--timeout", "2", "shop.fail.test"])

    def test_spf(self):
        spf = mdlab.tool_path("maildiag-spf")
        for name, res in self.resolvers():
            with self.subTest(resolver=name, what="lint"):
                self.assertUnknownNotAbsent([spf, "--resolver", res, "--timeout", "2", "shop.fail.test"])
            with self.subTest(resolver=name, what="evaluation"):
                j = self.assertUnknownNotAbsent([spf, "--resolver", res, "--timeout", "2", "--no-libspf2",
                                                 "--ip", "192.0.2.1", "--from", "a@shop.fail.test"])
                self.assertEqual(j["result"], "temperror")
        with self.subTest(what="lint of a record whose terms' lookups fail"):
            # the void-lookup count and the receiver's result are unknown: not "valid"
            j = self.assertUnknownNotAbsent([spf, "--resolver", self.servfail.resolver, "terms.fail.test"])
            self.assertNotIn("spf.ok", {f["id"] for f in j["findings"]})

    def test_auth(self):
        for name, res in self.resolvers():
            with self.subTest(resolver=name):
                j = self.assertUnknownNotAbsent([mdlab.tool_path("maildiag-auth"), "--resolver", res,
                                                 "--timeout", "2", "shop.fail.test"])
                # the records whose lookup failed are not absent (null) either
                for k in ("dmarc", "mta_sts", "tls_rpt", "bimi"):
                    self.assertIsNotNone(j[k], "%s: a failed lookup is not null (absent)" % k)
                    self.assertEqual(j[k].get("lookup"), "failed", k)

    def test_send_direct_and_probe(self):
        send = mdlab.tool_path("maildiag-send")
        for name, res in self.resolvers():
            for probe in ([], ["--quit-after", "rcpt"]):
                with self.subTest(resolver=name, probe=probe):
                    j = self.assertUnknownNotAbsent([send, "--from", "noreply@example.com", "--direct",
                                                     "--resolver", res, "--to", "a@shop.fail.test"] + probe)
                    self.assertEqual(j["phase"], "resolve")

    def user(self, *args):
        return [mdlab.tool_path("maildiag-user"), "--config", self.conf, "--store", self.store] + list(args)

    def test_user_lookup(self):
        for name, res in self.resolvers():
            with self.subTest(resolver=name):
                j = self.assertUnknownNotAbsent(self.user("--resolver", res, "--timeout", "2",
                                                          "lookup", "bob@shop.fail.test"))
                self.assertEqual(j["domain"]["mail"], "unknown")

    def test_user_remind(self):
        for name, res in self.resolvers():
            with self.subTest(resolver=name):
                r, j = self.run_json(self.user("--resolver", res, "--timeout", "2",
                                               "remind", "alice@shop.fail.test"))
                self.assertEqual(j["status"], "unknown", r)
                self.assertEqual(r.rc, 3, r)
                self.assertNotIn("no_route", j["reply"], r)
                self.assertNotIn("no MX host", j["reply"], r)
                t = mdlab.run_tool(self.user("--resolver", res, "--timeout", "2",
                                             "remind", "alice@shop.fail.test"))
                self.assertEqual(t.rc, 3, t)

    def test_selfcheck(self):
        for name, res in self.resolvers():
            with self.subTest(resolver=name):
                argv = [mdlab.tool_path("maildiag-selfcheck"), "--config", self.conf, "--store", self.store,
                        "--min-time", "0", "--wait", "--resolver", res, "--timeout", "2", "--want", "username",
                        "alice@shop.fail.test"]
                r, j = self.run_json(argv)
                ids = {f["id"] for f in j["findings"]}
                self.assertEqual(j["status"], "unknown", r)
                self.assertEqual(r.rc, 3, r)
                self.assertIn("address.dns_temporary", ids, r)
                self.assertEqual(j["domain"]["mail"], "unknown", r)
                t = mdlab.run_tool(argv)
                self.assertEqual(t.rc, 3, t)
                self.assertIn("could not check whether the domain", t.out, t)
                for words in ABSENT_WORDS:
                    self.assertNotIn(words, t.out, t)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
