#!/usr/bin/env python3
"""maildiag-mx under valgrind: no leaks, no invalid reads or writes, on every
path (answers, NXDOMAIN, null MX, IDN, invalid input, SERVFAIL, silence,
garbage, truncation) against the real NSD lab and the scripted responder.

Skipped (exit 77) in the sanitizer build, where valgrind cannot run, and when
valgrind is not installed.
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("MAILDIAG_TESTS_DIR", os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "lab"))
import mdlab  # noqa: E402

VALGRIND = ["valgrind", "-q", "--leak-check=full",
            "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--error-exitcode=99"]


def real_binary(name):
    """The ELF behind libtool's wrapper script (valgrind must run the real one)."""
    wrapper = mdlab.tool_path(name)
    with open(wrapper, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return wrapper      # not a libtool wrapper (a .libs/ may be stale)
    libs = os.path.join(os.path.dirname(wrapper), ".libs")
    for cand in ("lt-" + name, name):
        p = os.path.join(libs, cand)
        if os.path.isfile(p):
            return p
    return wrapper


def run(argv, stdin=None):
    env = mdlab.tool_env({"LD_LIBRARY_PATH": os.path.join(
        os.path.dirname(mdlab.tool_path("maildiag-mx")), "..", "lib", ".libs")})
    p = subprocess.run(VALGRIND + argv, input=stdin, capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Valgrind(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.environ.get("MAILDIAG_SANITIZERS") == "yes":
            raise unittest.SkipTest("sanitizer build: valgrind cannot run ASan binaries")
        if shutil.which("valgrind") is None:
            raise unittest.SkipTest("valgrind is not installed")
        cls.bin = real_binary("maildiag-mx")
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
