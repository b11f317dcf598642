#!/usr/bin/env python3
"""maildiag-mx under valgrind: no leaks, no invalid reads or writes, on every
path (answers, NXDOMAIN, null MX, IDN, invalid input, SERVFAIL, silence,
garbage, truncation) against the real NSD lab and the scripted responder.

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
        cls.bin = mdlab.real_binary("maildiag-mx")
        cls.nsd = mdlab.Nsd({"mx.test": mdlab.zone_path("mx.test.zone"),
                             "xn--bcher-kva.test": mdlab.zone_path("xn--bcher-kva.test.zone")})
        cls.nsd.start()
        cls.scripted = mdlab.ScriptedDns([
            ("servfail.fail.test", "*", "servfail"),
            ("refused.fail.test", "*", "refused"),
            ("hang.fail.test", "*", "hang"),
            ("garbage.fail.test", "*", "malformed"),
        ])
        cls.scripted.start()

    @classmethod
    def tearDownClass(cls):
        cls.nsd.stop()
        cls.scripted.stop()

    def check(self, rc, out, err, want_rc):
        self.assertNotEqual(rc, 99, "valgrind found errors:\n" + err)
        self.assertEqual(rc, want_rc, "exit code\nstdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertNotIn("definitely lost", err)

    def test_lab_cases_json(self):
        domains = ["ok.mx.test", "nullmx.mx.test", "implicit.mx.test", "none.mx.test",
                   "nxdomain.mx.test", "cname-target.mx.test", "ip-literal.mx.test",
                   "partial.mx.test", "unresolvable.mx.test", "b\u00fccher.test", "",
                   "foo..test", "x" * 300]
        rc, out, err = run([self.bin, "--resolver", self.nsd.resolver, "--timeout", "3",
                            "--json"] + domains)
        self.check(rc, out, err, 2)
        self.assertEqual(len(out.splitlines()), len(domains))

    def test_bulk_text_from_stdin(self):
        stdin = ("# comment\nok.mx.test\npartial.mx.test\n\nsorted.mx.test\n" * 20).encode()
        rc, out, err = run([self.bin, "--resolver", self.nsd.resolver, "--file", "-",
                            "--concurrency", "7"], stdin=stdin)
        self.check(rc, out, err, 1)

    def test_failures(self):
        rc, out, err = run([self.bin, "--resolver", self.scripted.resolver, "--timeout", "1",
                            "--json", "servfail.fail.test", "refused.fail.test",
                            "hang.fail.test", "garbage.fail.test"])
        self.check(rc, out, err, 3)

    def test_plugin_and_usage_error(self):
        rc, out, err = run([self.bin, "--resolver", self.nsd.resolver, "--plugin", "ok.mx.test"])
        self.check(rc, out, err, 0)
        rc, out, err = run([self.bin, "--bogus"])
        self.check(rc, out, err, 3)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
