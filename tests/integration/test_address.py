#!/usr/bin/env python3
"""One address grammar (lib/address, RFC 5321 4.1.2 Mailbox) for every tool
that takes an address: each tool below gets the same addresses, and all of
them must accept the same ones and refuse the same ones, a refusal being
exit 3 with "not a valid email address" and the reason on stderr.

Tools and entry points: maildiag-user lookup, remind, sessions list,
suppression add, import (a CSV row); maildiag-selfcheck; maildiag-spf
--from and a --file line; and maildiag-send --dry-run --to (lib/message's
check of a header address: exact text, so no input handling there).
Stores are SQLite files made here; no DNS is asked (--no-dns, or a
resolver on a closed loopback port for maildiag-spf).

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

TMP = None
DEAD_RESOLVER = "127.0.0.1:9"   # discard port: nothing answers DNS there

# (address, lookup key) for the valid ones: the key is what every tool
# stores and compares (A-labels, lower case, quotes only where needed).
GOOD = [
    ("alice@example.test", "alice@example.test"),
    ("Alice.Smith+tag@Example.TEST", "alice.smith+tag@example.test"),
    ("!#$%&'*+-/=?^_`{|}~@example.test", "!#$%&'*+-/=?^_`{|}~@example.test"),
    ('"john doe"@example.test', '"john doe"@example.test'),
    ('"john"@example.test', "john@example.test"),
    ('""@example.test', '""@example.test'),
    ('"a\\"b"@example.test', '"a\\"b"@example.test'),
    ("user@[192.0.2.1]", "user@[192.0.2.1]"),
    ("user@[IPv6:2001:DB8::1]", "user@[IPv6:2001:db8::1]"),
    ("user@[IPv6:::ffff:192.0.2.1]", "user@[IPv6:::ffff:192.0.2.1]"),
    ("j\u00f6rg@example.test", "j\u00f6rg@example.test"),
    ("user@b\u00fccher.test", "user@xn--bcher-kva.test"),
    ("user@xn--bcher-kva.test", "user@xn--bcher-kva.test"),
    ("user@localhost", "user@localhost"),
    ("user@192.0.2.1", "user@192.0.2.1"),
    ("a" * 64 + "@example.test", "a" * 64 + "@example.test"),
    ("user@" + "d" * 63 + ".test", "user@" + "d" * 63 + ".test"),
]

# (address, a part of the reason)
BAD = [
    (".test@example.test", "the local part starts with a dot (RFC 5321 4.1.2)"),
    ("test.@example.test", "the local part ends with a dot (RFC 5321 4.1.2)"),
    ("test@-example.test", "starts with a hyphen"),
    ("test@example-.test", "ends with a hyphen"),
    ("te..st@example.test", "two dots in a row"),
    ("john doe@example.test", "a space at character 5"),
    ("(comment)test@example.test", "a comment"),
    ('"test".test@example.test', "joined to more text by a dot"),
    ("test@example.test.", "ends with a dot"),
    ("a@b@example.test", "a second '@'"),
    ("test@exa_mple.test", "holds '_'"),
    ("user@[2001:db8::1]", "needs its tag"),
    ("user@[IPv6:1:2:3:4:5:6:7::]", "at most 6 groups"),
    ("user@[192.0.2.256]", "not an IPv4 address"),
    ("user@[x-tag:stuff]", "not registered"),
    ("user@B\u00dcCHER.test", "not a valid IDNA2008 U-label"),
    ("user@xn--zz.test", "not an A-label"),
    ("a" * 65 + "@example.test", "65 octets long"),
    ("a" * 64 + "@" + ".".join(["d" * 63] * 3) + ".test", "octets long (at most 254"),
    ("user@" + "d" * 64 + ".test", "64 octets long"),
    ("Alice <alice@example.test>", "display name"),
    ("alice", "no '@'"),
    ("@example.test", "the local part is empty"),
    ("alice@", "the domain is missing"),
    ("a\rb@example.test", "carriage return"),
    ("a\tb@example.test", "a tab"),
    ("a\x1b[0m@example.test", "U+001B"),
    ("<>", "null reverse-path"),
    ("", "no address given"),
]
# The null reverse-path: no Mailbox, but what MAIL FROM (maildiag-spf
# --from and its --file lines) may be; every other entry point refuses it.
NULL_PATH = ("<>", "")

# What input handling takes (typed text) and exact text does not.
TYPED = [
    ("  alice@example.test  ", "alice@example.test"),
    ("<alice@example.test>", "alice@example.test"),
    ("\u00a0alice@example.test\u200b", "alice@example.test"),
]


def setUpModule():
    global TMP
    for t in ("maildiag-user", "maildiag-selfcheck", "maildiag-spf", "maildiag-send"):
        mdlab.tool_path(t)
    TMP = tempfile.mkdtemp(prefix="mdtest-address-")


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def run(argv, stdin=None):
    return mdlab.run_tool(argv, stdin=stdin.encode() if stdin is not None else None)


_stores = 0


def new_store():
    global _stores
    _stores += 1
    uri = "sqlite:" + os.path.join(TMP, "s%d.db" % _stores)
    r = run([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", uri, "init"])
    assert r.rc == 0, str(r)
    return uri


def user(uri, *args, stdin=None):
    return run([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--no-dns", "--store", uri]
               + list(args), stdin=stdin)


class Verdict:
    """What one tool made of one address: accepted (with the key it used,
    when it shows one) or refused (exit 3, with the reason)."""

    def __init__(self, tool, run, accepted, key=None):
        self.tool, self.run, self.accepted, self.key = tool, run, accepted, key


class Tools:
    """Each entry point, run on one address; returns a Verdict."""

    def __init__(self):
        self.uri = new_store()            # stays without accounts: remind sends nothing
        self.import_uri = new_store()
        self.selfcheck_uri = new_store()
        self.n = 0

    def refused(self, r):
        return r.rc == 3 and "not a valid email address" in r.err

    def lookup(self, addr):
        r = user(self.uri, "--json", "lookup", addr)
        if self.refused(r):
            return Verdict("user lookup", r, False)
        o = json.loads(r.out) if r.rc in (0, 1, 2) else {}
        return Verdict("user lookup", r, r.rc in (0, 1, 2), o.get("address_key"))

    def remind(self, addr):
        r = user(self.uri, "remind", addr)   # no account here: nothing is sent
        return Verdict("user remind", r, False if self.refused(r) else r.rc == 1)

    def sessions(self, addr):
        r = user(self.uri, "sessions", "list", addr)
        return Verdict("user sessions", r, False if self.refused(r) else r.rc == 1)

    def suppression(self, addr):
        r = user(self.uri, "--json", "suppression", "add", addr, "--reason", "manual")
        if self.refused(r):
            return Verdict("user suppression", r, False)
        key = json.loads(r.out)["address"] if r.rc == 0 else None
        if r.rc == 0:
            user(self.uri, "suppression", "remove", addr)
        return Verdict("user suppression", r, r.rc == 0, key)

    def import_row(self, addr):
        self.n += 1
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerows([["username", "email"], ["imp%d" % self.n, addr]])
        r = user(self.import_uri, "import", "-", stdin=buf.getvalue())
        # a row's address error names the line, in the import's own words
        if r.rc == 3 and "line 2" in r.err:
            return Verdict("user import", r, False)
        key = None
        if r.rc == 0:
            db = sqlite3.connect(self.import_uri[len("sqlite:"):])
            row = db.execute("SELECT email_normalized FROM accounts WHERE username = ?",
                             ("imp%d" % self.n,)).fetchone()
            db.close()
            key = row[0] if row else None
        return Verdict("user import", r, r.rc == 0, key)

    def selfcheck(self, addr):
        r = run([mdlab.tool_path("maildiag-selfcheck"), "--config", "/dev/null", "--store",
                 self.selfcheck_uri, "--no-dns", "--min-time", "0", "--want", "reset", "--json", addr])
        if self.refused(r):
            return Verdict("selfcheck", r, False)
        return Verdict("selfcheck", r, r.rc in (0, 1))

    def spf_from(self, addr):
        r = run([mdlab.tool_path("maildiag-spf"), "--resolver", DEAD_RESOLVER, "--timeout", "0.3",
                 "--no-libspf2", "--json", "--ip", "192.0.2.10", "--from", addr])
        if self.refused(r):
            return Verdict("spf --from", r, False)
        objs = mdlab.json_results(r) if r.out.strip() else []
        return Verdict("spf --from", r, len(objs) == 1, objs[0].get("sender") if objs else None)

    def spf_file(self, addr):
        r = run([mdlab.tool_path("maildiag-spf"), "--resolver", DEAD_RESOLVER, "--timeout", "0.3",
                 "--no-libspf2", "--json", "--file", "-"], stdin="192.0.2.10 %s\n" % addr)
        objs = mdlab.json_results(r) if r.out.strip() else []
        bad = [o for o in objs if any(f["id"] == "input.invalid_line" for f in o.get("findings", []))]
        if len(objs) == 1 and bad and "not a valid email address" in bad[0]["findings"][0]["summary"]:
            return Verdict("spf --file", r, False)
        return Verdict("spf --file", r, len(objs) == 1 and not bad, objs[0].get("sender") if objs else None)

    def send(self, addr):
        r = run([mdlab.tool_path("maildiag-send"), "--from", "noreply@example.test", "--dry-run",
                 "-T", "plain", "--to", addr])
        return Verdict("send --to", r, r.rc == 0)


class Agreement(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = Tools()

    def typed_tools(self, addr):
        """Every entry point that reads typed text (input handling on)."""
        t = self.t
        vs = [t.lookup(addr), t.remind(addr), t.sessions(addr), t.suppression(addr), t.import_row(addr),
              t.selfcheck(addr), t.spf_from(addr)]
        if addr and not any(c.isspace() for c in addr):   # a --file line splits on blanks
            vs.append(t.spf_file(addr))
        return vs

    def assertAllAccept(self, addr, key, vs):
        for v in vs:
            self.assertTrue(v.accepted, "%s refused %r\n%s" % (v.tool, addr, v.run))
            if v.key is not None and v.tool.startswith("user"):
                self.assertEqual(v.key, key, "%s: key of %r\n%s" % (v.tool, addr, v.run))

    def assertAllRefuse(self, addr, why, vs):
        for v in vs:
            if addr in NULL_PATH and v.tool.startswith("spf"):
                self.assertTrue(v.accepted, "%s refused the null path %r\n%s" % (v.tool, addr, v.run))
                continue
            self.assertFalse(v.accepted, "%s accepted %r\n%s" % (v.tool, addr, v.run))
            self.assertEqual(v.run.rc, 3, "%s: exit code for %r\n%s" % (v.tool, addr, v.run))
            words = v.run.err if v.tool not in ("spf --file",) else v.run.out
            if v.tool not in ("user import", "send --to"):
                self.assertIn(why, words, "%s: reason for %r\n%s" % (v.tool, addr, v.run))

    def test_good_addresses(self):
        for addr, key in GOOD:
            with self.subTest(addr=addr):
                self.assertAllAccept(addr, key, self.typed_tools(addr) + [self.t.send(addr)])

    def test_bad_addresses(self):
        for addr, why in BAD:
            with self.subTest(addr=addr):
                vs = self.typed_tools(addr)
                if addr != "":   # maildiag-send reads an empty --to as "no --to" (usage)
                    vs.append(self.t.send(addr))
                self.assertAllRefuse(addr, why, vs)

    def test_typed_text(self):
        # input handling: the typed-text tools agree; the header check
        # (exact text) refuses, and says why
        for addr, key in TYPED:
            with self.subTest(addr=addr):
                vs = [v for v in self.typed_tools(addr)]
                self.assertAllAccept(addr, key, vs)
                s = self.t.send(addr)
                self.assertEqual(s.run.rc, 3, str(s.run))

    def test_spf_sender_in_a_labels(self):
        v = self.t.spf_from("J\u00f6rg@B\u00fccher.test")
        self.assertTrue(v.accepted, str(v.run))
        self.assertEqual(v.key, "J\u00f6rg@xn--bcher-kva.test", str(v.run))
        v = self.t.spf_from("<>")
        self.assertTrue(v.accepted, str(v.run))
        self.assertEqual(json.loads(v.run.out)["identity"], "helo", str(v.run))


class Regressions(unittest.TestCase):
    """The three disagreements between the tools before one grammar."""

    def test_quoted_local_part_everywhere(self):
        # maildiag-user took "john doe"@example.com; maildiag-send refused it
        t = Tools()
        for v in (t.lookup('"john doe"@example.test'), t.send('"john doe"@example.test')):
            self.assertTrue(v.accepted, "%s\n%s" % (v.tool, v.run))

    def test_dots_and_hyphens_refused_everywhere(self):
        # maildiag-send took these; RFC 5321 4.1.2 does not
        t = Tools()
        for addr in (".test@example.com", "test.@example.com", "test@-example.com"):
            for v in (t.send(addr), t.lookup(addr), t.remind(addr)):
                self.assertEqual(v.run.rc, 3, "%s %r\n%s" % (v.tool, addr, v.run))

    def test_bad_address_words(self):
        uri = new_store()
        r = user(uri, "lookup", "test.@example.com")
        self.assertEqual(r.rc, 3, str(r))
        self.assertEqual(r.out, "", str(r))
        self.assertEqual(r.err.strip(), "maildiag-user: 'test.@example.com': not a valid email address:"
                                         " the local part ends with a dot (RFC 5321 4.1.2)")
        r = user(uri, "--json", "lookup", "test.@example.com")
        self.assertEqual(r.rc, 3, str(r))
        o = json.loads(r.out)
        self.assertEqual([f["id"] for f in o["findings"]], ["address.invalid"], str(r))
        self.assertIn("not a valid email address", r.err)

    def test_trimmed_is_noted(self):
        uri = new_store()
        r = user(uri, "--json", "lookup", " <Bob@Example.test> ")
        self.assertEqual(r.rc, 1, str(r))
        o = json.loads(r.out)
        self.assertIn("address.trimmed", [f["id"] for f in o["findings"]], str(r))
        self.assertEqual(o["address_key"], "bob@example.test")
        r = user(uri, "suppression", "add", "  bob@example.test", "--reason", "manual")
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("note: 'bob@example.test': the blanks around the address were removed", r.err)

    def test_unusual_is_noted_not_refused(self):
        uri = new_store()
        r = user(uri, "--json", "lookup", '"a b"@[192.0.2.1]')
        self.assertEqual(r.rc, 1, str(r))   # account.none, as for any address without one
        o = json.loads(r.out)
        unusual = [f["summary"] for f in o["findings"] if f["id"] == "address.unusual"]
        self.assertEqual(len(unusual), 2, str(r))
        self.assertTrue(all(f["severity"] == "ok" for f in o["findings"] if f["id"] == "address.unusual"))

    def test_import_keeps_the_mailbox(self):
        uri = new_store()
        r = user(uri, "import", "-", stdin="username,email\nx, <x@Example.test> \n")
        self.assertEqual(r.rc, 0, str(r))
        db = sqlite3.connect(uri[len("sqlite:"):])
        self.assertEqual(db.execute("SELECT email, email_normalized FROM accounts").fetchone(),
                         ("x@Example.test", "x@example.test"))
        db.close()


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
