#!/usr/bin/env python3
"""maildiag-spf and maildiag-auth under valgrind: no leaks, no invalid reads or
writes, in the tool and in its evaluation workers (valgrind follows the forks),
on the main paths: evaluation (pass, fail with exp, lookup limit, syntax error,
macros), HELO identity, bulk, lint, SERVFAIL, and every maildiag-auth check.

Skipped (exit 77) in the sanitizer build, where valgrind cannot run, and when
valgrind is not installed.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("MAILDIAG_TESTS_DIR", os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "lab"))
import mdlab  # noqa: E402




def run(argv, stdin=None):
    return mdlab.valgrind_run(argv, stdin=stdin)


class Valgrind(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = mdlab.valgrind_skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.spf = mdlab.real_binary("maildiag-spf")
        cls.auth = mdlab.real_binary("maildiag-auth")
        cls.nsd = mdlab.Nsd({z: mdlab.zone_path(z + ".zone")
                             for z in ("spf.test", "auth.test", "reports.test", "bare.test")})
        cls.nsd.start()
        cls.scripted = mdlab.ScriptedDns([("servfail.fail.test", "*", "servfail")])
        cls.scripted.start()

    @classmethod
    def tearDownClass(cls):
        cls.scripted.stop()
        cls.nsd.stop()

    def clean(self, argv, stdin=None):
        rc, out, err = run(argv, stdin)
        self.assertNotEqual(rc, 99, "valgrind found errors:\n%s\n%s" % (" ".join(argv), err))
        self.assertIn(rc, (0, 1, 2, 3), "exit %s\n%s" % (rc, err))
        self.assertNotIn("==", err, "valgrind output:\n%s" % err)

    def test_evaluations(self):
        r = ["--resolver", self.nsd.resolver, "--timeout", "2"]
        for sender in ("u@pass.spf.test", "u@fail.spf.test", "u@total.spf.test",
                       "u@syntax.spf.test", "strong@macro.spf.test", "u@ir.spf.test",
                       "u@void3.spf.test", "@pass.spf.test"):
            self.clean([self.spf] + r + ["--json", "--ip", "192.0.2.10", "--from", sender,
                                         "--helo", "mail.example.com"])
        self.clean([self.spf] + r + ["--ip", "2001:db8::1", "--from", "", "--helo", "helo.spf.test"])

    def test_bulk_and_lint(self):
        r = ["--resolver", self.nsd.resolver, "--timeout", "2"]
        lines = "".join("192.0.2.10 u@%s.spf.test h.example.com\n" % d
                        for d in ("pass", "fail", "total", "two", "mx11", "redir")) + "bad line\n"
        self.clean([self.spf] + r + ["--json", "--file", "-", "--concurrency", "2"], stdin=lines.encode())
        self.clean([self.spf] + r + ["total.spf.test", "long.spf.test", "two.spf.test",
                                     "syntax.spf.test", "nospf.spf.test", "bad..name"])

    def test_servfail(self):
        self.clean([self.spf, "--resolver", self.scripted.resolver, "--timeout", "1", "--json",
                    "--ip", "192.0.2.10", "--from", "u@servfail.fail.test"])

    def test_auth(self):
        r = ["--resolver", self.nsd.resolver, "--timeout", "2", "--json"]
        self.clean([self.auth] + r + ["--dkim-selector", "sel1", "--dkim-selector", "ed", "good.auth.test", "bare.test",
                                      "sub.inherit.auth.test", "unauth.auth.test", "multi.auth.test",
                                      "badtags.auth.test", "bad.auth.test", "bad..name"])
        self.clean([self.auth] + r + ["--dkim-selector", "weak", "--dkim-selector", "garbage",
                                      "--dkim-selector", "revoked", "--dkim-selector", "testing",
                                      "--dkim-selector", "absent", "dk.auth.test"])


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
