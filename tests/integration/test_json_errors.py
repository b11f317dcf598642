#!/usr/bin/env python3
"""Machine-readable always: with --json, every run prints exactly one JSON value
per result, errors included.  An invalid address, a missing store, an
unreadable key file, a bad configuration file, a usage error after --json give

    {"schema_version": 1, "status": "unknown",
     "findings": [{"id": "input.invalid" | "store.error" | "config.error" | "usage.error",
                   "severity": "unknown", "summary": "..."}]}

on standard output (the message on standard error), exit 3; maildiag-user
lookup --json says a store failure with a store.error finding; maildiag-send
--json --dry-run gives one object holding the message.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_json_errors.py JsonErrors.test_user
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

IDS = {"input.invalid", "store.error", "config.error", "usage.error", "bounce.mailbox_error"}


def tool(name):
    return mdlab.tool_path("maildiag-" + name)


class JsonErrors(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-mx")
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-jsonerr-")
        cls.bad_conf = cls.file("bad.conf", "[mail\nfrom = x\n")
        cls.not_a_store = cls.file("not-a-store.db", "this is no SQLite file\n" * 100)
        cls.missing = os.path.join(cls.tmp, "missing", "store.db")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def file(cls, name, text, mode=0o600):
        path = os.path.join(cls.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def one_error(self, argv, want_id, stdin=None, exact=True):
        """argv fails: exit 3, one JSON value, the error object with want_id
        (exact: nothing else in it), the words on stderr.  Returns the object."""
        keys = ("schema_version", "status", "findings")
        r = mdlab.run_tool(argv, stdin=stdin, timeout=60)
        self.assertEqual(r.rc, 3, r)
        try:
            j = json.loads(r.out)
        except ValueError:
            self.fail("stdout is not one JSON value\n%s" % r)
        self.assertIsInstance(j, dict, r)
        for k in keys:
            self.assertIn(k, j, r)
        if exact:
            self.assertEqual(set(j), set(keys), r)
        self.assertEqual((j["schema_version"], j["status"]), (1, "unknown"), r)
        ids = [f["id"] for f in j["findings"]]
        self.assertIn(want_id, ids, r)
        f = j["findings"][ids.index(want_id)]
        self.assertEqual(f["severity"], "unknown", r)
        self.assertTrue(f["summary"], r)
        self.assertTrue(r.err.strip(), "the message goes to stderr too\n%s" % r)
        return j

    def test_usage_errors_after_json(self):
        for name, argv in (("mx", ["--json", "--bogus", "x.test"]), ("spf", ["--json", "--ip", "192.0.2.1"]),
                           ("auth", ["--json"]), ("send", ["--json"]), ("token", ["--json", "verify"]),
                           ("user", ["--json", "lookup"]), ("selfcheck", ["--json", "a@example.com"]),
                           ("user", ["--json", "bounces"])):
            with self.subTest(tool=name, argv=argv):
                self.one_error([tool(name)] + argv, "usage.error")

    def test_bad_config_file(self):
        for name, argv in (("mx", ["x.test"]), ("spf", ["x.test"]), ("auth", ["x.test"]),
                           ("send", ["--to", "a@example.com", "--dry-run"]), ("token", ["verify", "x"]),
                           ("user", ["lookup", "a@example.com"])):
            with self.subTest(tool=name):
                self.one_error([tool(name), "--json", "-C", self.bad_conf] + argv, "config.error")

    def test_invalid_address(self):
        j = self.one_error([tool("send"), "--json", "--to", "a..b@example.com", "--dry-run"], "input.invalid",
                           exact=False)
        self.assertEqual(j["to"], "a..b@example.com")   # the result of that send
        self.one_error([tool("spf"), "--json", "--ip", "192.0.2.1", "--from", "a@@b.test"], "input.invalid")
        store = "sqlite:" + os.path.join(self.tmp, "store.db")
        mdlab.run_tool([tool("user"), "-C", "/dev/null", "--store", store, "init"])
        self.one_error([tool("user"), "-C", "/dev/null", "--store", store, "--json", "remind", "x@"],
                       "input.invalid")
        # lookup and selfcheck answer with their own report, as documented
        for argv in ([tool("user"), "-C", "/dev/null", "--store", store, "--no-dns", "--json", "lookup", "x@"],
                     [tool("selfcheck"), "-C", "/dev/null", "--store", store, "--no-dns", "--min-time", "0",
                      "--json", "--want", "reset", "x@"]):
            self.one_error(argv, "address.invalid", exact=False)

    def test_remind_without_mail_settings(self):
        store = os.path.join(self.tmp, "remind.db")
        conf = self.file("nomail.conf", "[store]\nuri = sqlite:%s\n" % store)
        user = [tool("user"), "-C", conf, "--no-dns"]
        mdlab.run_tool(user + ["init"])
        mdlab.run_tool(user + ["import", "-"], stdin=b"username,email\nann,ann@corp.test\n")
        self.one_error(user + ["--json", "remind", "ann@corp.test"], "config.error")

    def test_store_errors(self):
        for uri in ("sqlite:" + self.missing, "sqlite:" + self.not_a_store):
            for args in (["lookup", "a@example.com"], ["audit"], ["suppression", "list"], ["export"]):
                with self.subTest(uri=uri, args=args):
                    self.one_error([tool("user"), "-C", "/dev/null", "--no-dns", "--store", uri, "--json"] + args,
                                   "store.error")
        # no store at all
        self.one_error([tool("user"), "-C", "/dev/null", "--no-dns", "--json", "lookup", "a@example.com"],
                       "store.error", stdin=None)
        # the self-check says it in its one report, without the why
        j = self.one_error([tool("selfcheck"), "-C", "/dev/null", "--store", "sqlite:" + self.missing,
                            "--no-dns", "--min-time", "0", "--json", "--want", "reset", "a@example.com"],
                           "store.error", exact=False)
        self.assertNotIn(self.missing, json.dumps(j))

    def test_key_files(self):
        loose = self.file("loose.keys", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0o644)
        for kf in (os.path.join(self.tmp, "no-such.keys"), loose):
            with self.subTest(key_file=kf):
                self.one_error([tool("token"), "--json", "--key-file", kf, "verify", "x.y"], "config.error")
                self.one_error([tool("send"), "--json", "--key-file", kf, "-T", "reset", "--to", "a@example.com",
                                "--dry-run"], "config.error")
        self.one_error([tool("send"), "--json", "--to", "a@example.com", "--server", "127.0.0.1:1", "--user", "u",
                        "--password-file", os.path.join(self.tmp, "no-such.pw")], "config.error")

    def test_empty_input(self):
        for name, argv in (("mx", ["--file", "/dev/null"]), ("spf", ["--file", "/dev/null"]),
                           ("send", ["--file", "/dev/null", "--dry-run"])):
            with self.subTest(tool=name):
                self.one_error([tool(name), "--json"] + argv, "input.invalid")

    def test_bounces(self):
        self.one_error([tool("user"), "-C", "/dev/null", "--json", "bounces", "--maildir", self.tmp],
                       "bounce.mailbox_error")

    def test_dry_run_is_one_object(self):
        r = mdlab.run_tool([tool("send"), "--json", "--dry-run", "--from", "noreply@example.com",
                            "--to", "a@example.com", "-T", "reset"])
        self.assertEqual(r.rc, 0, r)
        j = json.loads(r.out)   # one value, not the raw message
        self.assertTrue(j["message"].startswith("Date: "), r)
        self.assertIn("\r\nTo: a@example.com\r\n", j["message"])
        self.assertIn(j["message_id"], j["message"])
        self.assertEqual((j["to"], j["status"]), ("a@example.com", "ok"), r)
        # several: one object per message, one per line
        r = mdlab.run_tool([tool("send"), "--json", "--dry-run", "--to", "a@example.com", "--count", "2"])
        self.assertEqual(len(mdlab.json_results(r)), 2, r)

    def test_ids_are_in_the_catalogue(self):
        # the ids these errors use are catalogued: a run with an uncatalogued id says "internal"
        for want in ("input.invalid", "store.error", "config.error", "usage.error"):
            self.assertIn(want, IDS)
        j = self.one_error([tool("mx"), "--json", "--bogus"], "usage.error")
        self.assertNotIn("evidence", j["findings"][0], "an uncatalogued id gets 'internal' evidence")


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
