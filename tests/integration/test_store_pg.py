#!/usr/bin/env python3
"""The store suite (tests/unit/t_store) on a real PostgreSQL cluster started
here, the same tests the unit run does on SQLite; then maildiag-user against
that cluster.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import subprocess
import sys
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import pglab  # noqa: E402

PG = None


def setUpModule():
    global PG
    mdlab.tool_path("maildiag-user")
    PG = pglab.PgCluster().start()


def tearDownModule():
    if PG:
        PG.stop()


def t_store_path():
    bindir = os.environ.get("MAILDIAG_BIN_DIR", "")
    path = os.path.join(os.path.dirname(bindir), "tests", "unit", "t_store")
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest("tests/unit/t_store is not built (%s)" % path)
    return path


class StoreSuiteOnPostgres(unittest.TestCase):
    def test_store_suite(self):
        uri = PG.create_database("suite")
        r = subprocess.run([t_store_path(), uri], capture_output=True, text=True, errors="replace", timeout=120)
        failed = [l for l in r.stdout.splitlines() if l.startswith("not ok") or l.startswith("#   ")]
        self.assertIn("# engine postgresql", r.stdout)
        self.assertEqual(r.returncode, 0, "t_store on PostgreSQL failed:\n%s\n%s" % ("\n".join(failed), r.stderr))
        self.assertGreater(r.stdout.count("\nok "), 100)


class UserToolOnPostgres(unittest.TestCase):
    def run_user(self, uri, *args, stdin=None):
        argv = [mdlab.tool_path("maildiag-user"), "--store", uri, "--no-dns", "--config", "/dev/null"] + list(args)
        return subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=60,
                              env=mdlab.tool_env())

    def test_init_import_lookup(self):
        uri = PG.create_database("tool")
        r = self.run_user(uri, "init")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("created", r.stdout)
        r = self.run_user(uri, "import", "-", stdin="email,username,auth,sso_provider,email_verified\n"
                          "pat@example.com,pat,sso,Okta,1\nkim@example.com,kim,password,,1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_user(uri, "--json", "lookup", "PAT@example.com")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        o = json.loads(r.stdout)
        self.assertEqual([a["username"] for a in o["accounts"]], ["pat"])
        self.assertEqual(o["accounts"][0]["auth"], "sso")
        self.assertIn("account.sso", [f["id"] for f in o["findings"]])
        r = self.run_user(uri, "--json", "lookup", "kim@example.com")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        audit = PG.psql("SELECT action || ' ' || target FROM audit_log ORDER BY id", db="tool").split("\n")
        self.assertIn("lookup PAT@example.com", audit)
        self.assertIn("import -", audit)

    def test_unreachable_server_is_an_error(self):
        port = mdlab.free_port()
        r = self.run_user("postgresql://postgres@127.0.0.1:%d/x?connect_timeout=2" % port, "lookup", "a@example.com")
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot connect to PostgreSQL", r.stderr)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
