#!/usr/bin/env python3
"""The emails of maildiag-user remind and maildiag-selfcheck, received and
checked by Postfix's smtp-sink on 127.0.0.1: the reminder lists the usernames,
reset and verify emails carry a signed link that maildiag-token accepts, SSO,
deactivated and locked accounts get an explanation and never a link, a missing
account gets the no-account note, suppressed addresses get nothing, and every
attempt is in the send log with the server's reply.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import email
import email.policy
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import smtplab  # noqa: E402

TMP = None
SINK = None
REJECT = None
KEYS = None

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
alice,alice@corp.test,active,password,,1
alice2,alice@corp.test,active,password,,1
old-alice,alice@corp.test,deactivated,password,,1
pat,pat@corp.test,active,sso,Okta,1
gone,gone@corp.test,deactivated,password,,1
lock,lock@corp.test,locked,password,,1
fresh,fresh@corp.test,active,password,,0
bounced,bounced@corp.test,active,password,,1
"""


def setUpModule():
    global TMP, SINK, REJECT, KEYS
    mdlab.tool_path("maildiag-user")
    TMP = tempfile.mkdtemp(prefix="mdtest-notify-")
    os.chmod(TMP, 0o755)
    dump = os.path.join(TMP, "sink")
    os.mkdir(dump)
    SINK = smtplab.Sink(dump_dir=dump).start()
    REJECT = smtplab.Sink(args=["-f", "rcpt"]).start()   # 5xx to every RCPT TO
    KEYS = os.path.join(TMP, "token.keys")
    with open(KEYS, "w") as f:
        f.write("ab" * 32 + "\n")
    os.chmod(KEYS, 0o600)


def tearDownModule():
    for s in (SINK, REJECT):
        if s:
            s.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def setup_store(name, sink):
    db = os.path.join(TMP, name + ".db")
    conf = os.path.join(TMP, name + ".conf")
    with open(conf, "w") as f:
        f.write("[store]\nuri = sqlite:%s\n[mail]\nfrom = noreply@product.test\nproduct = Example\n"
                "server = 127.0.0.1:%d\ntls = off\ntimeout = 10\n[token]\nkey_file = %s\n"
                "reset_url = https://app.product.test/reset?token=\n"
                "verify_url = https://app.product.test/verify?token=\n[selfcheck]\nmin_time = 0\nper_address = 1000/3600\n"
                % (db, sink.port, KEYS))
    os.chmod(conf, 0o600)
    user(conf, "init")
    user(conf, "import", "-", stdin=ACCOUNTS)
    user(conf, "suppression", "add", "bounced@corp.test", "--reason", "hard-bounce")
    return conf, db


def user(conf, *args, stdin=None, check=True):
    r = subprocess.run([mdlab.tool_path("maildiag-user"), "--config", conf, "--no-dns"] + list(args),
                       input=stdin, capture_output=True, text=True, timeout=60, env=mdlab.tool_env())
    if check and r.returncode == 3:
        raise AssertionError("maildiag-user %s: %s" % (args, r.stderr))
    return r


def selfcheck(conf, addr, want):
    return subprocess.run([mdlab.tool_path("maildiag-selfcheck"), "--config", conf, "--no-dns", "--wait",
                           "--want", want, addr], capture_output=True, text=True, timeout=60,
                          env=mdlab.tool_env())


def dump_names():
    return set(n for n in os.listdir(SINK.dump_dir) if n.startswith("msg."))


def new_messages(before, n=1, timeout=10):
    """Messages that arrived since the snapshot before (a set of dump names);
    smtp-sink names its dumps at random, so they are told apart by name."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = sorted(dump_names() - before)
        if len(fresh) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.1)   # a dump is complete once smtp-sink has answered the final dot
    out = []
    for name in sorted(dump_names() - before):
        with open(os.path.join(SINK.dump_dir, name), "rb") as f:
            out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


def text_of(msg):
    return msg.get_body(preferencelist=("plain",)).get_content()


def links(msg):
    return re.findall(r"https://app\.product\.test/(reset|verify)\?token=([A-Za-z0-9_.-]+)", text_of(msg))


class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.conf, cls.db = setup_store("main", SINK)

    def send_log(self, to):
        db = sqlite3.connect(self.db)
        rows = db.execute("SELECT kind, outcome, reply, message_id FROM send_log WHERE to_address = ?"
                          " ORDER BY id", (to,)).fetchall()
        db.close()
        return rows

    def test_remind(self):
        before = dump_names()
        r = user(self.conf, "remind", "Alice@CORP.test")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reminder for 2 usernames to Alice@corp.test: accepted: 250", r.stdout)
        (m,) = new_messages(before)
        self.assertEqual(m["To"], "Alice@corp.test")
        self.assertEqual(m["Subject"], "Your Example username")
        body = text_of(m)
        self.assertIn("alice\n", body)
        self.assertIn("alice2\n", body)
        self.assertNotIn("old-alice", body)          # deactivated: no reminder
        log = self.send_log("alice@corp.test")
        self.assertEqual(log[-1][:2], ("reminder", "accepted"))
        self.assertEqual(log[-1][3], m["Message-ID"])
        r = user(self.conf, "remind", "nobody@corp.test")
        self.assertEqual(r.returncode, 1, r.stdout)
        r = user(self.conf, "remind", "bounced@corp.test")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("suppressed", r.stdout)
        self.assertEqual(len(dump_names() - before), 1)

    def test_selfcheck_reset_link_verifies(self):
        before = dump_names()
        r = selfcheck(self.conf, "alice@corp.test", "reset")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msgs = new_messages(before, 3)
        by_kind = {}
        for m in msgs:
            by_kind.setdefault(m["Subject"], []).append(m)
        self.assertEqual(len(by_kind["Reset your Example password"]), 2)       # alice, alice2
        self.assertEqual(len(by_kind["Your Example account is deactivated"]), 1)  # old-alice
        for m in by_kind["Reset your Example password"]:
            (kind, token), = links(m)
            self.assertEqual(kind, "reset")
            v = subprocess.run([mdlab.tool_path("maildiag-token"), "verify", "--key-file", KEYS,
                                "--kind", "reset", token], capture_output=True, text=True,
                               env=mdlab.tool_env())
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertEqual(links(by_kind["Your Example account is deactivated"][0]), [])

    def test_selfcheck_explanations_never_links(self):
        for addr, want, subject in (("pat@corp.test", "reset", "How to sign in to Example"),
                                    ("gone@corp.test", "reset", "Your Example account is deactivated"),
                                    ("lock@corp.test", "reset", "Your Example account is locked"),
                                    ("alice2@corp.test", "username", "Your Example request"),
                                    ("nobody@corp.test", "reset", "Your Example request"),
                                    ("fresh@corp.test", "verify", "Confirm your email address for Example"),
                                    ("pat@corp.test", "verify", "Your Example address is already confirmed"),
                                    ("pat@corp.test", "username", "Your Example username")):
            with self.subTest(addr=addr, want=want):
                before = dump_names()
                r = selfcheck(self.conf, addr, want)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                (m,) = new_messages(before)
                self.assertEqual(m["Subject"], subject)
                self.assertEqual(m["To"], addr)
                got = links(m)
                if subject.startswith("Confirm"):
                    self.assertEqual([k for k, _ in got], ["verify"])
                else:
                    self.assertEqual(got, [], "no link for %s/%s" % (addr, want))

    def test_selfcheck_suppressed_gets_nothing(self):
        before = dump_names()
        r = selfcheck(self.conf, "bounced@corp.test", "reset")
        self.assertEqual(r.returncode, 0, r.stdout)
        time.sleep(0.3)
        self.assertEqual(dump_names() - before, set())
        self.assertEqual(self.send_log("bounced@corp.test")[-1][:2], ("reset", "suppressed"))


class EnumerationWhileSending(unittest.TestCase):
    """With real emails going out (detached), the answer's bytes and time
    still do not depend on the account."""

    def test_same_bytes_same_time(self):
        conf, db = setup_store("enum", SINK)
        with open(conf) as f:
            text = f.read().replace("min_time = 0\n", "min_time = 0.25\n")
        with open(conf, "w") as f:
            f.write(text)
        times = {"alice": [], "zelda": []}
        outs = {"alice": set(), "zelda": set()}
        before = dump_names()
        for _ in range(20):
            for local in ("alice", "zelda"):
                argv = [mdlab.tool_path("maildiag-selfcheck"), "--config", conf, "--no-dns", "--want", "reset",
                        local + "@corp.test"]
                t0 = time.monotonic()
                r = subprocess.run(argv, capture_output=True, timeout=60, env=mdlab.tool_env())
                times[local].append(time.monotonic() - t0)
                self.assertEqual(r.returncode, 0, r)
                outs[local].add(r.stdout.replace(local.encode(), b"X"))
        self.assertEqual(outs["alice"], outs["zelda"])
        import statistics
        ma, mz = statistics.median(times["alice"]), statistics.median(times["zelda"])
        print("# while sending, 20 runs each: median %.4f s (account) vs %.4f s (none)" % (ma, mz))
        self.assertLess(abs(ma - mz), 0.015)
        # and the emails did go out: 3 per alice request (2 resets, 1 explanation), 1 per zelda
        msgs = new_messages(before, 80, timeout=30)
        self.assertEqual(len(msgs), 80)


class WireValues(unittest.TestCase):
    def test_helo_injection_from_the_config(self):
        # [mail] helo reaches the EHLO line: a bare CR in it is refused when
        # the configuration is read (a CR only ends a line), anything else
        # that is no EHLO name where the setting is read, naming it; either
        # way exit 3 before anything is sent.
        for name, helo, said, where in (
                ("helo-cr", "client.example\rRCPT TO:<injected@victim.example>", "carriage return", "stderr"),
                ("helo-space", "client.example RCPT TO:<injected@victim.example>", "[mail] helo", "stderr")):
            with self.subTest(said=said), smtplab.Hostile("record") as h:
                conf, db = setup_store(name, h)
                with open(conf) as f:
                    text = f.read()
                with open(conf, "w") as f:
                    f.write(text.replace("[mail]\n", "[mail]\nhelo = %s\n" % helo))
                c = sqlite3.connect(db)
                c.execute("DELETE FROM send_log")
                c.commit()
                c.close()
                r = user(conf, "remind", "alice@corp.test", check=False)
                time.sleep(0.1)
                self.assertEqual((h.connections, h.lines), (0, []), "nothing may reach the server")
                self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
                self.assertIn(said, getattr(r, where))


class Rejected(unittest.TestCase):
    def test_rejected_recipient_is_logged(self):
        conf, db = setup_store("reject", REJECT)
        r = user(conf, "remind", "alice@corp.test")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("rejected", r.stdout)
        r = user(conf, "--json", "lookup", "alice@corp.test")
        self.assertIn("address.last_send_failed", r.stdout)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
