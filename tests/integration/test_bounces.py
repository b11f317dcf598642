#!/usr/bin/env python3
"""maildiag-user bounces: over the fixtures in tests/fixtures/bounces (--file,
--maildir), and live: a real Postfix (lab) bounces mail for a bounce user
into the bounce mailbox, a real Exim bounces an unroutable address, Dovecot
IMAP serves that mailbox, and maildiag-user reads it over IMAPS and STARTTLS,
applies the suppressions once, and fails fast and clearly with a wrong
password or no server.  tests/unit/t_imap runs its live part against the
same Dovecot.

MAILDIAG_CAPTURE_BOUNCES=DIR also writes the live DSNs there (that is how
tests/fixtures/bounces/postfix-lab-dsn.eml and exim-lab-dsn.eml were made).

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_bounces.py Live.test_apply_twice
"""

import glob
import imaplib
import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

FIXTURES = os.path.join(_TESTS, "fixtures", "bounces")
TMP = None
PASSWORD = "bounce-lab-pw"


def setUpModule():
    global TMP
    mdlab.tool_path("maildiag-user")
    TMP = tempfile.mkdtemp(prefix="mdtest-bounces-")


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def user(*args, store=None, env=None, timeout=120):
    argv = [mdlab.tool_path("maildiag-user"), "--config", "/dev/null"]
    if store:
        argv += ["--store", store]
    return mdlab.run_tool(argv + list(args), env=env, timeout=timeout)


def new_store(name):
    path = os.path.join(TMP, name + ".db")
    if os.path.exists(path):
        os.unlink(path)
    r = user("init", store="sqlite:" + path)
    assert r.rc == 0, str(r)
    return "sqlite:" + path, path


def fixture(name):
    return os.path.join(FIXTURES, name)


def files_args(names):
    out = []
    for n in names:
        out += ["--file", fixture(n)]
    return out


def audit_count(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM audit_log WHERE action = 'bounce.suppress'").fetchone()[0]


def suppressed(path):
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT address, reason FROM suppressions").fetchall())


def valgrind(case, argv, env=None):
    """Runs argv under valgrind, following maildiag-user's exec of maildiag-bounces;
    fails case when any process's report is not empty."""
    why = mdlab.valgrind_skip_reason()
    if why:
        case.skipTest(why)
    logs = tempfile.mkdtemp(prefix="vg-", dir=TMP)
    p = subprocess.run(mdlab.VALGRIND + ["--trace-children=yes", "--log-file=%s/%%p.log" % logs] + argv,
                       capture_output=True, env=mdlab.valgrind_env(env), timeout=600)
    reports = []
    for name in sorted(os.listdir(logs)):
        with open(os.path.join(logs, name), errors="replace") as f:
            text = f.read()
        if text.strip():
            reports.append("%s:\n%s" % (name, text))
    case.assertEqual(reports, [], "valgrind found errors in %s:\n%s" % (argv, "\n".join(reports)))
    return p


GOOD = ["postfix-unknown-user.eml", "postfix-delayed.eml", "exim-text-failed.eml", "qmail.eml",
        "arf-abuse.eml", "not-bounce-reply.eml"]


class Files(unittest.TestCase):
    def test_every_fixture(self):
        names = sorted(os.path.basename(p) for p in glob.glob(fixture("*.eml")))
        r = user("--json", "bounces", *files_args(names))
        self.assertEqual(r.rc, 1, str(r))   # the malformed fixtures make it a warning
        o = json.loads(r.out)
        self.assertEqual(o["command"], "bounces")
        self.assertEqual(o["counts"]["messages"], len(names))
        by = {os.path.basename(m["message"]): m for m in o["messages"]}
        for n in names:
            m = by[n]
            if n.startswith("malformed-"):
                self.assertEqual(m["id"], "bounce.malformed", n)
                self.assertIn("error", m)
            elif n.startswith("not-bounce"):
                self.assertEqual(m["id"], "bounce.none", n)
            else:
                self.assertNotEqual(m["bounce"]["kind"], "none", n)
                self.assertTrue(m["actions"], n)
        self.assertEqual(o["counts"]["malformed"], sum(n.startswith("malformed-") for n in names))
        ids = [a["id"] for a in by["postfix-unknown-user.eml"]["actions"]]
        self.assertEqual(ids, ["bounce.hard"])
        self.assertEqual([a["id"] for a in by["postfix-delayed.eml"]["actions"]], ["bounce.soft"])
        self.assertEqual([a["id"] for a in by["arf-abuse.eml"]["actions"]], ["bounce.complaint"])
        self.assertEqual([a["id"] for a in by["arf-not-spam.eml"]["actions"]], ["bounce.feedback"])
        q = by["qmail.eml"]
        self.assertFalse(q["bounce"]["standard"])
        self.assertEqual([a["result"] for a in q["actions"]], ["would_suppress"] * 2)

    def test_apply_twice_and_lookup(self):
        uri, path = new_store("apply")
        r = user("bounces", "--apply", *files_args(GOOD), store=uri)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("suppressions made", r.out)
        got = suppressed(path)
        self.assertEqual(got.get("nobody@example.net"), "hard-bounce")
        self.assertEqual(got.get("nobody@example.org"), "hard-bounce")
        self.assertEqual(got.get("old.user@example.net"), "hard-bounce")
        self.assertEqual(got.get("complainer@hotmail.example"), "complaint")
        self.assertNotIn("slow@example.org", got)          # delayed: reported only
        audits = audit_count(path)
        self.assertEqual(audits, len(got))
        again = user("--json", "bounces", "--apply", *files_args(GOOD), store=uri)
        self.assertEqual(again.rc, 1, str(again))          # nothing to do
        o = json.loads(again.out)
        self.assertEqual(o["counts"]["suppressed"], 0)
        self.assertEqual(o["counts"]["already"], 5)   # five recipients asked for a suppression
        self.assertEqual(suppressed(path), got)
        self.assertEqual(audit_count(path), audits)
        look = user("--json", "--no-dns", "lookup", "nobody@example.net", store=uri)
        lo = json.loads(look.out)
        fids = [f["id"] for f in lo["findings"]]
        self.assertIn("address.suppressed", fids, str(look))
        text = json.dumps(lo)
        self.assertIn("5.1.1", text)
        self.assertIn("User unknown", text)

    def test_malformed_is_skipped_with_where(self):
        uri, path = new_store("malformed")
        r = user("bounces", "--apply", "--file", fixture("malformed-bad-status.eml"), store=uri)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("malformed-bad-status.eml", r.err)
        self.assertIn("<malformed-2@mail.example.com>", r.err)
        self.assertIn("line 3", r.err)
        self.assertIn("five.one.one", r.err)
        self.assertEqual(suppressed(path), {})

    def test_maildir(self):
        md = os.path.join(TMP, "Maildir")
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for i, n in enumerate(GOOD):
            shutil.copy(fixture(n), os.path.join(md, "cur" if i % 2 else "new", "%d.lab:2," % i))
        r = user("--json", "bounces", "--maildir", md)
        self.assertEqual(r.rc, 0, str(r))
        o = json.loads(r.out)
        self.assertEqual(o["counts"]["messages"], len(GOOD))
        self.assertEqual(o["counts"]["not_bounces"], 1)
        self.assertEqual(o["counts"]["hard"], 4)
        self.assertEqual(o["counts"]["complaints"], 1)
        self.assertEqual(o["counts"]["soft"], 1)

    def test_control_bytes_are_escaped(self):
        p = os.path.join(TMP, "evil.eml")
        with open(p, "wb") as f:
            f.write(open(fixture("postfix-unknown-user.eml"), "rb").read().replace(
                b"Diagnostic-Code: smtp; 550 5.1.1",
                b"Diagnostic-Code: smtp; 550 5.1.1 \x1b[2J\x1b]0;pwned\x07 \xff"))
        r = subprocess.run([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "bounces", "--file", p],
                           capture_output=True, env=mdlab.tool_env(), timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertNotIn(b"\x1b", r.stdout)
        self.assertNotIn(b"\x07", r.stdout)
        self.assertIn(b"?[2J", r.stdout)

    def test_usage_errors(self):
        for args in (["bounces"], ["bounces", "--file", fixture("qmail.eml"), "--maildir", TMP],
                     ["bounces", "--file", fixture("qmail.eml"), "extra"],
                     ["lookup", "x@example.com", "--apply"],
                     ["bounces", "--file", fixture("qmail.eml"), "--since", "yesterday"],
                     ["bounces", "--file", fixture("qmail.eml"), "--ca-file", "/etc/hosts"]):
            r = user(*args)
            self.assertEqual(r.rc, 3, str(r))
        r = user("bounces", "--apply", "--file", fixture("qmail.eml"), env={"MAILDIAG_STORE": ""})
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("no store", r.err)
        r = user("--help")
        self.assertEqual(r.rc, 0)
        self.assertIn("--mailbox-password-file", r.out)


class Valgrind(unittest.TestCase):
    def test_every_fixture_apply(self):
        uri, path = new_store("vg")
        names = sorted(os.path.basename(p) for p in glob.glob(fixture("*.eml")))
        argv = [mdlab.real_binary("maildiag-user"), "--config", "/dev/null", "--store", uri, "bounces",
                "--apply"] + files_args(names)
        p = valgrind(self, argv)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertTrue(suppressed(path))
        p = valgrind(self, argv[:-len(files_args(names))] + ["--json"] + files_args(names[:3]))
        self.assertIn(p.returncode, (0, 1), p.stderr)


class Live(unittest.TestCase):
    """Postfix and Exim make real DSNs; Dovecot serves the bounce mailbox."""

    @classmethod
    def setUpClass(cls):
        try:
            import mta
        except ImportError as e:
            raise unittest.SkipTest("tests/lab/mta.py: %s" % e)
        cls.mta = mta
        cls.servers = []
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls):
        mta = cls.mta
        cls.dir = tempfile.mkdtemp(prefix="bounces-", dir=TMP)
        pki = mta.Pki(os.path.join(cls.dir, "pki"))
        cls.mx = mta.PostfixMx(users=("maria",), bounce_users=("nobody",), pki=pki).start()
        cls.servers.append(cls.mx)
        cls.exim = mta.Exim(users=("maria", "bounces"), pki=pki).start()
        cls.servers.append(cls.exim)
        cls.ca = pki.ca_file
        # Postfix: accepted at RCPT, then bounced with a real DSN to bounces@lab.test
        orig = ("From: <bounces@lab.test>\r\nTo: <nobody@lab.test>\r\nSubject: Reset your password\r\n"
                "Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <live-postfix-1@app.lab.test>\r\n"
                "\r\nreset link\r\n")
        with smtplib.SMTP("127.0.0.1", cls.mx.port, timeout=20) as s:
            s.starttls(context=cls.mx.ssl_context())
            s.sendmail(cls.mx.bounce_address, ["nobody@lab.test"], orig)
        # copies: Dovecot moves what it has seen from new/ to cur/
        cls.postfix_dsn = os.path.join(cls.dir, "postfix-dsn.eml")
        shutil.copy(cls.mx.wait_delivered("bounces", 1, timeout=30)[0], cls.postfix_dsn)
        # Exim: an address no router takes, submitted locally: a real DSN to bounces@lab.test
        orig = (b"From: bounces@lab.test\nTo: ghost@lab.test\nSubject: Welcome\n"
                b"Message-ID: <live-exim-1@app.lab.test>\n\nwelcome\n")
        p = subprocess.run([cls.exim.bin, "-C", cls.exim.conf, "-odi", "-f", "bounces@lab.test", "ghost@lab.test"],
                           input=orig, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise mdlab.LabError("exim local submission: %r" % p)
        cls.exim_dsn = os.path.join(cls.dir, "exim-dsn.eml")
        shutil.copy(cls.exim.wait_delivered("bounces", 1, timeout=30)[0], cls.exim_dsn)
        capture = os.environ.get("MAILDIAG_CAPTURE_BOUNCES")
        if capture:
            shutil.copy(cls.postfix_dsn, os.path.join(capture, "postfix-lab-dsn.eml"))
            shutil.copy(cls.exim_dsn, os.path.join(capture, "exim-lab-dsn.eml"))
        # the bounce mailbox: both DSNs, a malformed report and a reply
        box = cls.mx.maildir_path("bounces")
        extra = [(cls.exim_dsn, "exim"), (fixture("malformed-bad-status.eml"), "malformed"),
                 (fixture("not-bounce-reply.eml"), "reply")]
        for i, (src, tag) in enumerate(extra):
            dst = os.path.join(box, "new", "%d.%s.lab" % (int(time.time()) + i, tag))
            shutil.copy(src, dst)
            os.chown(dst, cls.mx.uid, cls.mx.gid)
        # maria's INBOX for t_imap: a message to fetch byte for byte, one to delete
        cls.exact = os.path.join(cls.dir, "exact.eml")
        with open(cls.exact, "wb") as f:
            f.write(b"From: <maria@lab.test>\r\nTo: <maria@lab.test>\r\nSubject: exact\r\n"
                    b"Message-ID: <imap-exact-1@lab.test>\r\n\r\nbyte for byte\r\nA005 OK not a reply\r\n"
                    b"\r\n.dot\r\n")
        inbox = cls.mx.maildir_path("maria")
        for name, src in (("1.exact.lab", cls.exact), ("2.delete.lab", None)):
            dst = os.path.join(inbox, "new", name)
            if src:
                shutil.copy(src, dst)
            else:
                with open(dst, "wb") as f:
                    f.write(b"Subject: delete me\r\nMessage-ID: <imap-delete-1@lab.test>\r\n\r\nx\r\n")
            os.chown(dst, cls.mx.uid, cls.mx.gid)
        cls.imap = mta.DovecotImap(cls.mx, password=PASSWORD).start()
        cls.servers.append(cls.imap)
        cls.pwfile = os.path.join(cls.dir, "imap.pw")
        with open(cls.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(cls.pwfile, 0o600)

    @classmethod
    def tearDownClass(cls):
        for s in reversed(getattr(cls, "servers", [])):
            s.stop()

    def url(self, tls=True, port=None, user="bounces"):
        if tls:
            return "imaps://%s@127.0.0.1:%d/INBOX" % (user, port or self.imap.imaps_port)
        return "imap://%s@127.0.0.1:%d/INBOX" % (user, port or self.imap.port)

    def bounces(self, *args, store=None, url=None, env=None, timeout=120):
        return user("bounces", "--mailbox", url or self.url(), "--ca-file", self.ca,
                    "--mailbox-password-file", self.pwfile, "--timeout", "10", *args,
                    store=store, env=env, timeout=timeout)

    def test_live_dsns_parse(self):
        r = user("--json", "bounces", "--file", self.postfix_dsn, "--file", self.exim_dsn)
        self.assertEqual(r.rc, 0, str(r))
        o = json.loads(r.out)
        pf, ex = o["messages"]
        self.assertEqual(pf["bounce"]["kind"], "dsn")
        self.assertEqual(pf["bounce"]["original_message_id"], "live-postfix-1@app.lab.test")
        [a] = pf["actions"]
        self.assertEqual((a["address"], a["action"], a["status"], a["id"]),
                         ("nobody@lab.test", "failed", "5.1.1", "bounce.hard"))
        self.assertEqual(ex["bounce"]["kind"], "dsn")
        self.assertEqual(ex["bounce"]["original_message_id"], "live-exim-1@app.lab.test")
        [a] = ex["actions"]
        self.assertEqual((a["address"], a["action"], a["status"]), ("ghost@lab.test", "failed", "5.0.0"))

    def unseen(self):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.imap.imaps_port, ssl_context=self.imap.ssl_context())
        try:
            c.login("bounces", PASSWORD)
            c.select("INBOX")
            typ, data = c.uid("SEARCH", "UNSEEN")
            return len(data[0].split())
        finally:
            c.logout()

    def test_imaps_dry_run(self):
        before = self.unseen()
        t0 = time.monotonic()
        r = self.bounces("--json")
        self.assertEqual(r.rc, 1, str(r))      # a malformed report is in the mailbox
        self.assertLess(time.monotonic() - t0, 30)
        o = json.loads(r.out)
        self.assertTrue(o["tls"])
        c = o["counts"]
        self.assertEqual((c["messages"], c["hard"], c["malformed"], c["not_bounces"], c["would_suppress"]),
                         (4, 2, 1, 1, 2), r.out)
        addrs = sorted(a["address"] for m in o["messages"] for a in m.get("actions", []))
        self.assertEqual(addrs, ["ghost@lab.test", "nobody@lab.test"])
        self.assertRegex(r.err, r"UID \d+ <malformed-2@mail\.example\.com>: malformed report.*line 3")
        self.assertNotIn("not encrypted", r.err)
        self.assertEqual(self.unseen(), before, "reading the mailbox must not mark messages seen")

    def test_starttls(self):
        r = self.bounces("--json", url=self.url(tls=False))
        self.assertEqual(r.rc, 1, str(r))
        o = json.loads(r.out)
        self.assertTrue(o["tls"], "STARTTLS was offered, so it must be used")
        self.assertTrue(o["tls_version"].startswith("TLS"))
        self.assertNotIn("not encrypted", r.err)

    def test_apply_twice(self):
        uri, path = new_store("live")
        r = self.bounces("--apply", store=uri)
        self.assertEqual(r.rc, 1, str(r))      # applied, with the malformed report skipped
        self.assertIn("2 suppressions made", r.out)
        self.assertEqual(suppressed(path), {"nobody@lab.test": "hard-bounce", "ghost@lab.test": "hard-bounce"})
        audits = audit_count(path)
        self.assertEqual(audits, 2)
        look = user("--json", "--no-dns", "lookup", "nobody@lab.test", store=uri)
        self.assertEqual(look.rc, 2, str(look))
        lo = json.loads(look.out)
        sup = [f for f in lo["findings"] if f["id"] == "address.suppressed"]
        self.assertTrue(sup, str(look))
        self.assertIn("5.1.1", json.dumps(lo))
        again = self.bounces("--apply", "--json", store=uri)
        self.assertEqual(again.rc, 1, str(again))
        o = json.loads(again.out)
        self.assertEqual((o["counts"]["suppressed"], o["counts"]["already"]), (0, 2))
        self.assertEqual(audit_count(path), audits)

    def test_server_down(self):
        port = mdlab.free_port()
        t0 = time.monotonic()
        r = self.bounces(url=self.url(port=port), timeout=60)
        self.assertEqual(r.rc, 3, str(r))
        self.assertLess(time.monotonic() - t0, 10, str(r))
        self.assertIn("cannot connect", r.err)

    def test_no_password(self):
        r = user("bounces", "--mailbox", self.url(), "--ca-file", self.ca, env={"MAILDIAG_IMAP_PASSWORD": ""})
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("no IMAP password", r.err)

    def test_valgrind_imaps(self):
        uri, path = new_store("live-vg")
        argv = [mdlab.real_binary("maildiag-user"), "--config", "/dev/null", "--store", uri, "--json", "bounces",
                "--mailbox", self.url(), "--ca-file", self.ca, "--mailbox-password-file", self.pwfile, "--apply"]
        p = valgrind(self, argv)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(len(suppressed(path)), 2)

    def test_zy_imap_library(self):
        bindir = os.environ.get("MAILDIAG_BIN_DIR", "")
        t_imap = os.path.join(os.path.dirname(bindir), "tests", "unit", "t_imap")
        if not os.access(t_imap, os.X_OK):
            self.skipTest("tests/unit/t_imap is not built")
        env = dict(os.environ, MAILDIAG_TEST_IMAP=self.url(user="maria"), MAILDIAG_TEST_IMAP_PASSWORD=PASSWORD,
                   MAILDIAG_TEST_IMAP_CA=self.ca, MAILDIAG_TEST_IMAP_MSGID="<imap-exact-1@lab.test>",
                   MAILDIAG_TEST_IMAP_FILE=self.exact, MAILDIAG_TEST_IMAP_DELETE="<imap-delete-1@lab.test>")
        r = subprocess.run([t_imap], capture_output=True, text=True, errors="replace", env=env, timeout=120)
        failed = [l for l in r.stdout.splitlines() if l.startswith("not ok") or l.startswith("#   ")]
        self.assertIn("# live", r.stdout)
        self.assertEqual(r.returncode, 0, "t_imap live failed:\n%s\n%s" % ("\n".join(failed), r.stderr))

    def test_zz_wrong_password(self):
        bad = os.path.join(self.dir, "bad.pw")
        with open(bad, "w") as f:
            f.write("not the password\n")
        os.chmod(bad, 0o600)
        t0 = time.monotonic()
        r = user("bounces", "--mailbox", self.url(), "--ca-file", self.ca, "--mailbox-password-file", bad,
                 "--timeout", "20", timeout=60)
        self.assertEqual(r.rc, 3, str(r))
        self.assertLess(time.monotonic() - t0, 25, str(r))
        self.assertIn("refused the login", r.err)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
