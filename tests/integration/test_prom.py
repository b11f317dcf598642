#!/usr/bin/env python3
"""lib/report prom through a real prometheus-node-exporter: the textfile written by
the library (tests/unit/prom-write) is read by node_exporter's textfile collector
without a scrape error, and every sample comes back with its value and labels.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import math
import os
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import promlab  # noqa: E402


def label_set(**kw):
    return frozenset(kw.items())


class Textfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        bindir = os.environ.get("MAILDIAG_BIN_DIR")
        if not bindir:
            raise mdlab.LabSkip("MAILDIAG_BIN_DIR is not set")
        cls.writer = os.path.join(os.path.dirname(bindir), "tests", "unit", "prom-write")
        if not os.access(cls.writer, os.X_OK):
            raise mdlab.LabSkip("tests/unit/prom-write is not built")
        cls.tmp = tempfile.TemporaryDirectory(prefix="md-prom-")
        cls.textdir = os.path.join(cls.tmp.name, "textfile")
        os.mkdir(cls.textdir)
        cls.ne = promlab.NodeExporter(cls.textdir)
        cls.ne.start()

    @classmethod
    def tearDownClass(cls):
        cls.ne.stop()
        cls.tmp.cleanup()

    def test_node_exporter_reads_it(self):
        path = os.path.join(self.textdir, "maildiag.prom")
        run = subprocess.run([self.writer, path], capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        m = self.ne.scrape()
        self.assertEqual(m.get(("node_textfile_scrape_error", frozenset())), 0.0,
                         "node_exporter could not read the file:\n" + self.ne.scrape_text())
        self.assertEqual(m[("maildiag_health_status", frozenset())], 2.0)
        self.assertEqual(m[("maildiag_check_status", label_set(check="spf"))], 0.0)
        self.assertEqual(m[("maildiag_check_status", label_set(check="dkim"))], 2.0)
        self.assertAlmostEqual(m[("maildiag_check_duration_seconds", label_set(check="spf"))], 0.012)
        self.assertTrue(math.isnan(m[("maildiag_check_duration_seconds", label_set(check="dkim"))]))
        # a label value with a quote, a backslash and a newline survives escaping
        self.assertEqual(m[("maildiag_dnsbl_listed", label_set(ip="192.0.2.10", zone='bl"x\\y?z.test'))], 1.0)
        self.assertEqual(m[("maildiag_tls_cert_expiry_timestamp_seconds",
                            label_set(server="smtp.example.com:587"))], 1767225600.0)
        # the file's modification time is exported too: the collector saw our file
        self.assertIn(("node_textfile_mtime_seconds", label_set(file=path)), m)

    def test_rewrite_is_atomic(self):
        path = os.path.join(self.textdir, "again.prom")
        for _ in range(20):
            run = subprocess.run([self.writer, path], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
        left = [f for f in os.listdir(self.textdir) if not f.endswith(".prom")]
        self.assertEqual(left, [], "no temporary file is left in the directory")
        m = self.ne.scrape()
        self.assertEqual(m.get(("node_textfile_scrape_error", frozenset())), 0.0)

    def test_missing_directory_is_an_error(self):
        run = subprocess.run([self.writer, os.path.join(self.tmp.name, "nodir", "x.prom")],
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 3)
        self.assertIn("nodir", run.stderr)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
