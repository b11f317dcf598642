#!/usr/bin/env python3
"""maildiag-send --await against the mail-server lab (tests/lab/mta.py): a real
Postfix 3.7 MX delivers into Maildirs that a real Dovecot 2.3 serves over IMAPS
and IMAP+STARTTLS with the lab CA.

The receiving Postfix plays a receiver that concludes something about our mail:
header_checks PREPENDs an Authentication-Results of its own (authserv-id
mx.lab.test) above its Received field for mail to authed@, and an access-map
PREPEND adds a Received-SPF (as policyd-spf does) for authed@ and spfonly@.  It
also puts a forged Authentication-Results with its own authserv-id and all
"pass" among the message's own fields (above X-Maildiag-Test), where a sender's
forgery sits: it must be ignored everywhere.

Asserted: arrival in INBOX (found, folder, latency >= 0 and plausible, exit 0);
in Junk (junk_users: delivery.junk, exit 1); never arrives (discard: not_found
after the timeout and not before, exit 2, beside smtp.accepted); the receiver's
Authentication-Results and Received-SPF parsed, the forgery ignored,
--await-authserv-id; IMAP server down, wrong password, missing folder, TLS
failure, a server that never greets, a server that dies during the wait: a
clear delivery.mailbox_error, exit 3, no hang; imap:// with STARTTLS and
without TLS (delivery.plaintext); --await-delete leaves no copy; a rejected send
does not wait; the printed status equals the exit code in text and JSON; usage
errors; valgrind over the new paths.

Needs root and the lab's packages (scripts/install-deps); exit 77 otherwise.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_arrival.py Arrival.test_inbox
"""

import imaplib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import mta  # noqa: E402

TMP = None
PW = "arrival-lab-pw"
FROM = "noreply@example.com"
RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
REAL_AR = ("mx.lab.test; spf=pass smtp.mailfrom=example.com; dkim=none (no signature); "
           "dmarc=fail (p=reject) header.from=example.com")
FORGED_AR = ("mx.lab.test; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; "
             "dmarc=pass header.from=example.com")
RSPF = ("softfail (mx.lab.test: domain of example.com does not designate 127.0.0.1 as permitted "
        "sender) client-ip=127.0.0.1; envelope-from=noreply@example.com; helo=vm; receiver=mx.lab.test;")


def setUpModule():
    global TMP
    mdlab.tool_path("maildiag-send")
    if os.geteuid() != 0:
        raise mdlab.LabSkip("the mail-server lab needs root (Postfix and Dovecot switch users)")
    TMP = tempfile.mkdtemp(prefix="mdtest-arrival-")
    os.chmod(TMP, 0o755)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def header_checks():
    path = os.path.join(TMP, "header_checks")
    with open(path, "w") as f:
        # the receiver's own, above its Received field (only for authed@)
        f.write("/^Received: .*by mx\\.lab\\.test .*for <authed@lab\\.test>/ PREPEND "
                "Authentication-Results: %s\n" % REAL_AR)
        # a forgery among the message's own fields, with the receiver's authserv-id
        f.write("/^X-Maildiag-Test:/ PREPEND Authentication-Results: %s\n" % FORGED_AR)
    past = time.time() - 60
    os.utime(path, (past, past))
    return "regexp:" + path


def pwfile(text=PW):
    fd, path = tempfile.mkstemp(prefix="pw-", dir=TMP)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, 0o600)
    return path


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pki = mta.Pki(os.path.join(TMP, "pki"))
        cls.mx = mta.PostfixMx(
            workdir=TMP, pki=pki, users=("maria", "authed", "spfonly", "eve", "delme", "plain", "spammy"),
            junk_users=("junky",), discard=("gone",),
            access={"authed@lab.test": "PREPEND Received-SPF: " + RSPF,
                    "spfonly@lab.test": "PREPEND Received-SPF: " + RSPF},
            extra_main={"header_checks": header_checks()}).start()
        # gone@ has a mailbox that Postfix never fills (its mail is discarded)
        cls.imap = mta.DovecotImap(cls.mx, users=list(cls.mx.users) + ["gone"], password=PW, workdir=TMP).start()
        cls.pwfile = pwfile()
        cls.bin = mdlab.tool_path("maildiag-send")

    @classmethod
    def tearDownClass(cls):
        cls.imap.stop()
        cls.mx.stop()

    def url(self, user, folder="", scheme="imaps", port=None):
        port = port or (self.imap.imaps_port if scheme == "imaps" else self.imap.port)
        return "%s://%s@127.0.0.1:%d/%s" % (scheme, user, port, folder)

    def send(self, to, *extra, url=None, json_out=True, timeout=60, env=None, ca=True):
        argv = [self.bin, "--server", "127.0.0.1:%d" % self.mx.port, "--tls", "required",
                "--ca-file", self.mx.ca_file, "--from", FROM, "--to", to,
                "--await", url or self.url(to.split("@")[0]), "--await-password-file", self.pwfile]
        if ca:
            argv += ["--await-ca-file", self.mx.ca_file]
        argv += list(extra)
        if json_out:
            argv.append("--json")
        run = mdlab.run_tool(argv, env=env, timeout=timeout)
        j = None
        if json_out:
            objs = mdlab.json_results(run)
            self.assertEqual(len(objs), 1, run)
            j = objs[0]
            self.assertEqual(run.rc, RC[j["status"]], "the exit code is the status printed\n%s" % run)
        else:
            m = re.search(r"^%s: (OK|WARNING|CRITICAL|UNKNOWN)$" % re.escape(to), run.out, re.M)
            self.assertTrue(m, run)
            self.assertEqual(run.rc, RC[m.group(1).lower()], "the exit code is the status printed\n%s" % run)
        return run, j

    def ids(self, j):
        return [f["id"] for f in j["findings"]]

    def finding(self, j, fid):
        return [f for f in j["findings"] if f["id"] == fid][0]

    def in_mailbox(self, user, msgid, folder="INBOX"):
        for p in self.mx.maildir(user, folder):
            with open(p, "rb") as f:
                if msgid.encode() in f.read():
                    return True
        return False


class Arrival(Lab):
    def test_inbox(self):
        t0 = time.time()
        run, j = self.send("maria@lab.test")
        a = j["arrival"]
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(j["result"], "accepted")
        self.assertTrue(a["found"], run)
        self.assertEqual(a["outcome"], "found")
        self.assertEqual(a["folder"], "INBOX")
        self.assertFalse(a["junk"])
        self.assertEqual(a["folders"], ["INBOX", "Junk"])
        self.assertIn("delivery.found", self.ids(j))
        self.assertNotIn("delivery.plaintext", self.ids(j))
        self.assertEqual(a["tls"], "TLSv1.3")
        # latency: INTERNALDATE (whole seconds) minus the final reply: >= 0, small on loopback,
        # never more than the wait itself took
        self.assertIsInstance(a["latency_ms"], int)
        self.assertGreaterEqual(a["latency_ms"], 0)
        self.assertLessEqual(a["latency_ms"], a["elapsed_ms"] + 1000 + j["elapsed_ms"])
        self.assertLess(a["latency_ms"], 5000)
        self.assertGreaterEqual(a["polls"], 1)
        self.assertLess(a["elapsed_ms"], 10000)
        idate = time.mktime(time.strptime(a["internal_date"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        self.assertLessEqual(abs(idate - t0), 10, a["internal_date"])
        self.assertTrue(self.in_mailbox("maria", j["message_id"]))
        # the forgery among our own fields is there, and ignored: the receiver said nothing
        self.assertEqual(a["auth"], {})
        self.assertEqual(a["headers"], {"authentication_results": [], "received_spf": []})
        self.assertEqual(a["ignored_headers"], 1)
        self.assertNotIn("delivery.auth_failed", self.ids(j))

    def test_inbox_text(self):
        run, _ = self.send("maria@lab.test", json_out=False)
        self.assertEqual(run.rc, 0, run)
        self.assertIn("delivery.found: arrived in 'INBOX'", run.out)
        self.assertRegex(run.out, r"arrival: in INBOX, found by look \d+ after \d+ ms")

    def test_junk(self):
        run, j = self.send("junky@lab.test")
        a = j["arrival"]
        self.assertEqual(run.rc, 1, run)
        self.assertEqual(j["status"], "warning")
        self.assertTrue(a["found"])
        self.assertEqual(a["folder"], "Junk")
        self.assertTrue(a["junk"])
        f = self.finding(j, "delivery.junk")
        self.assertEqual(f["severity"], "warning")
        self.assertIn("Junk", f["summary"])
        text, _ = self.send("junky@lab.test", json_out=False)
        self.assertEqual(text.rc, 1, text)
        self.assertRegex(text.out, re.compile(r"^junky@lab\.test: WARNING$", re.M))

    def test_never_arrives(self):
        timeout = 3
        t0 = time.monotonic()
        run, j = self.send("gone@lab.test", "--await-timeout", str(timeout))
        wall = time.monotonic() - t0
        a = j["arrival"]
        self.assertEqual(run.rc, 2, run)
        self.assertEqual(j["result"], "accepted")          # the send's verdict, beside
        self.assertFalse(a["found"])
        self.assertEqual(a["outcome"], "not_found")
        self.assertIsNone(a["folder"])
        self.assertIn("within 3 s", a["reason"])
        self.assertIn("smtp.accepted", self.ids(j))
        f = self.finding(j, "delivery.not_found")
        self.assertEqual(f["severity"], "critical")
        self.assertIn(j["queue_id"], f["summary"])
        # never before the timeout, and not much after it
        self.assertGreaterEqual(a["elapsed_ms"], timeout * 1000)
        self.assertLess(a["elapsed_ms"], timeout * 1000 + 1500)
        self.assertGreaterEqual(wall, timeout)
        self.assertLess(wall, timeout + 4)
        # looks at 0, 0.2, 0.6, 1.4, 3.0 s (200 ms doubling to 2 s, the last one at the timeout)
        self.assertGreaterEqual(a["polls"], 4)
        self.assertLessEqual(a["polls"], 6)
        st = self.mx.wait_status(to="gone@lab.test")
        self.assertEqual(st["status"], "sent")              # discarded by Postfix, "delivered"

    def test_rejected_send_does_not_wait(self):
        t0 = time.monotonic()
        run, j = self.send("nosuchuser@lab.test", "--await-timeout", "30", url=self.url("maria"))
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(run.rc, 2, run)
        self.assertEqual(j["result"], "rejected")
        a = j["arrival"]
        self.assertEqual(a["outcome"], "not_awaited")
        self.assertFalse(a["found"])
        self.assertEqual(a["polls"], 0)
        self.assertIn("rejected", a["reason"])
        self.assertIn("delivery.not_awaited", self.ids(j))
        self.assertNotIn("delivery.not_found", self.ids(j))

    def test_delete(self):
        run, j = self.send("delme@lab.test", "--await-delete")
        a = j["arrival"]
        self.assertEqual(run.rc, 0, run)
        self.assertTrue(a["found"])
        self.assertTrue(a["deleted"], run)
        self.assertNotIn("delivery.delete_failed", self.ids(j))
        self.assertFalse(self.in_mailbox("delme", j["message_id"]), "the message is still in the Maildir")
        # and over IMAP, in every folder
        c = imaplib.IMAP4_SSL("127.0.0.1", self.imap.imaps_port, ssl_context=self.imap.ssl_context())
        c.login("delme", PW)
        for folder in ("INBOX", "Junk"):
            c.select(folder, readonly=True)
            typ, data = c.search(None, "HEADER", "Message-ID", j["message_id"])
            self.assertEqual(data, [b""], folder)
        c.logout()

    def test_user_percent_decoded(self):
        # the login name is the URL's user, percent-decoded: maria@lab.test
        url = "imaps://maria%%40lab.test@127.0.0.1:%d/" % self.imap.imaps_port
        run, j = self.send("maria@lab.test", url=url)
        self.assertEqual(run.rc, 0, run)
        self.assertTrue(j["arrival"]["found"])
        self.assertEqual(j["arrival"]["mailbox"], url)
        self.assertRegex(self.imap.log(), r"Login: user=<maria@lab\.test>")

    def test_spam_named_folder_is_watched(self):
        # a folder named Spam at any level, without \Junk, is watched too
        c = imaplib.IMAP4_SSL("127.0.0.1", self.imap.imaps_port, ssl_context=self.imap.ssl_context())
        c.login("spammy", PW)
        c.create("Archive.Spam")
        c.create("Archive.Spamfilter")
        c.logout()
        run, j = self.send("spammy@lab.test")
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(j["arrival"]["folders"][0], "INBOX")
        self.assertEqual(sorted(j["arrival"]["folders"][1:]), ["Archive.Spam", "Junk"])

    def test_several_sends_one_connection(self):
        run = mdlab.run_tool([self.bin, "--server", "127.0.0.1:%d" % self.mx.port, "--tls", "required",
                              "--ca-file", self.mx.ca_file, "--from", FROM, "--to", "eve@lab.test",
                              "--count", "3", "--json", "--await", self.url("eve"),
                              "--await-password-file", self.pwfile, "--await-ca-file", self.mx.ca_file])
        objs = mdlab.json_results(run)
        self.assertEqual(run.rc, 0, run)
        self.assertEqual([o["arrival"]["found"] for o in objs], [True] * 3)
        self.assertEqual(len({o["message_id"] for o in objs}), 3)
        logins = len(re.findall(r"imap-login: (?:Info: )?Login: user=<eve>,", self.imap.log()))
        self.assertEqual(logins, 1, "one IMAP connection for every send:\n" + self.imap.log()[-3000:])


class ReceiverVerdict(Lab):
    """What the receiver concluded, from its own fields only."""

    def test_authentication_results(self):
        run, j = self.send("authed@lab.test")
        a = j["arrival"]
        self.assertTrue(a["found"], run)
        # the receiver's (spf pass, dkim none, dmarc fail), not the forgery's (all pass)
        self.assertEqual(a["auth"], {"spf": "pass", "dkim": "none", "dmarc": "fail"})
        self.assertEqual(a["authserv_id"], "mx.lab.test")
        self.assertEqual(a["headers"]["authentication_results"], [REAL_AR])
        self.assertEqual(a["headers"]["received_spf"], [RSPF])
        self.assertEqual(a["ignored_headers"], 1)           # the forgery
        self.assertEqual(run.rc, 1, run)
        f = self.finding(j, "delivery.auth_failed")
        self.assertEqual(f["severity"], "warning")
        self.assertIn("spf=pass dkim=none dmarc=fail", f["summary"])
        self.assertIn("mx.lab.test", f["summary"])
        self.assertTrue(any(REAL_AR in e for e in f["evidence"]))
        self.assertFalse(any("dkim=pass" in e for e in f["evidence"]))
        # the stored message holds both: the receiver's above Received, the forgery among ours
        path = [p for p in self.mx.maildir("authed") if j["message_id"].encode() in open(p, "rb").read()][0]
        head = open(path, "rb").read().split(b"\n\n")[0].decode()
        self.assertLess(head.index(REAL_AR), head.index("Received: from"))
        self.assertLess(head.index("Message-ID:"), head.index(FORGED_AR))

    def test_received_spf_alone(self):
        run, j = self.send("spfonly@lab.test")
        a = j["arrival"]
        self.assertEqual(a["auth"], {"spf": "softfail"})
        self.assertEqual(a["headers"]["received_spf"], [RSPF])
        self.assertEqual(a["headers"]["authentication_results"], [])
        self.assertEqual(run.rc, 1, run)
        self.assertIn("spf=softfail", self.finding(j, "delivery.auth_failed")["summary"])

    def test_configured_authserv_id(self):
        # another trusted id: the receiver's Authentication-Results is not taken,
        # Received-SPF (no authserv-id) still is
        run, j = self.send("authed@lab.test", "--await-authserv-id", "other.example")
        a = j["arrival"]
        self.assertEqual(a["auth"], {"spf": "softfail"})
        self.assertEqual(a["headers"]["authentication_results"], [])
        self.assertEqual(a["ignored_headers"], 2)
        # the lab's id, in another case: taken
        run, j = self.send("authed@lab.test", "--await-authserv-id", "MX.LAB.TEST")
        self.assertEqual(j["arrival"]["auth"], {"spf": "pass", "dkim": "none", "dmarc": "fail"})

    def test_text(self):
        run, _ = self.send("authed@lab.test", json_out=False)
        self.assertEqual(run.rc, 1, run)
        self.assertIn("receiver mx.lab.test: spf=pass dkim=none dmarc=fail", run.out)
        self.assertIn("WARNING  delivery.auth_failed", run.out)


class MailboxErrors(Lab):
    """The mailbox cannot be read: a clear finding, exit 3, nothing sent, no hang."""

    def broken(self, to, url, *extra, env=None, text=None, stage=None, within=10):
        before = len(self.mx.queue_ids())
        t0 = time.monotonic()
        run, j = self.send(to, "--await-timeout", "20", *extra, url=url, env=env)
        self.assertLess(time.monotonic() - t0, within, run)
        self.assertEqual(run.rc, 3, run)
        self.assertEqual(j["status"], "unknown")
        self.assertFalse(j["sent"])
        a = j["arrival"]
        self.assertEqual(a["outcome"], "mailbox_error")
        self.assertFalse(a["found"])
        f = self.finding(j, "delivery.mailbox_error")
        self.assertEqual(f["severity"], "unknown")
        if text:
            self.assertIn(text, f["summary"])
        if stage:
            self.assertEqual(a["error"]["stage"], stage)
        self.assertEqual(len(self.mx.queue_ids()), before, "nothing may be sent")
        return j

    def test_server_down(self):
        port = mdlab.free_port()
        self.broken("maria@lab.test", self.url("maria", port=port), text="cannot connect", stage="imap.connect")

    def test_wrong_password(self):
        self.broken("maria@lab.test", self.url("maria"), "--await-password-file", pwfile("wrong"),
                    text="wrong user name or password", stage="imap.login")

    def test_missing_folder(self):
        self.broken("maria@lab.test", self.url("maria", "NoSuchFolder"), text="'NoSuchFolder' cannot be selected",
                    stage="imap.select")

    def test_tls_failure(self):
        # no --await-ca-file: the system store does not know the lab CA
        before = len(self.mx.queue_ids())
        run, j = self.send("maria@lab.test", "--await-timeout", "20", ca=False)
        self.assertEqual(run.rc, 3, run)
        self.assertFalse(j["sent"])
        self.assertEqual(j["arrival"]["error"]["stage"], "imap.tls")
        self.assertIn("TLS", self.finding(j, "delivery.mailbox_error")["summary"])
        self.assertEqual(len(self.mx.queue_ids()), before)

    def test_server_never_greets(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]
        conns = []
        stop = threading.Event()

        def accept():
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    conns.append(srv.accept()[0])
                except OSError:
                    pass
        th = threading.Thread(target=accept, daemon=True)
        th.start()
        try:
            t0 = time.monotonic()
            run, j = self.send("maria@lab.test", "--await-timeout", "2", url=self.url("maria", port=port))
            took = time.monotonic() - t0
            self.assertEqual(run.rc, 3, run)
            self.assertEqual(j["arrival"]["error"]["stage"], "imap.timeout")
            self.assertLess(took, 6, "bounded by --await-timeout")
        finally:
            stop.set()
            th.join()
            for c in conns:
                c.close()
            srv.close()

    def test_server_dies_during_the_wait(self):
        imap = mta.DovecotImap(self.mx, users=["gone"], password=PW, workdir=TMP).start()
        try:
            argv = [self.bin, "--server", "127.0.0.1:%d" % self.mx.port, "--tls", "required",
                    "--ca-file", self.mx.ca_file, "--from", FROM, "--to", "gone@lab.test", "--json",
                    "--await", "imaps://gone@127.0.0.1:%d/" % imap.imaps_port,
                    "--await-password-file", self.pwfile, "--await-ca-file", self.mx.ca_file,
                    "--await-timeout", "30"]
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=mdlab.tool_env())
            time.sleep(2)
            imap.stop()
            out, err = p.communicate(timeout=40)
            took = time.monotonic() - t0
        finally:
            imap.stop()
        j = json.loads(out)
        self.assertEqual(p.returncode, 3, (out, err))
        self.assertEqual(j["result"], "accepted")
        self.assertEqual(j["arrival"]["outcome"], "mailbox_error")
        self.assertLess(took, 15, "the wait ends when the mailbox goes, not at the timeout")
        self.assertIn("delivery.mailbox_error", self.ids(j))


class Starttls(Lab):
    def test_imap_starttls(self):
        run, j = self.send("maria@lab.test", url=self.url("maria", scheme="imap"))
        self.assertEqual(run.rc, 0, run)
        self.assertTrue(j["arrival"]["found"])
        self.assertEqual(j["arrival"]["tls"], "TLSv1.3")
        self.assertNotIn("delivery.plaintext", self.ids(j))

    def test_imap_without_tls_warns(self):
        imap = mta.DovecotImap(self.mx, users=["plain"], password=PW, workdir=TMP, tls=False).start()
        try:
            run, j = self.send("plain@lab.test", url="imap://plain@127.0.0.1:%d/" % imap.port, ca=False)
        finally:
            imap.stop()
        self.assertEqual(run.rc, 1, run)
        a = j["arrival"]
        self.assertTrue(a["found"])
        self.assertIsNone(a["tls"])
        f = self.finding(j, "delivery.plaintext")
        self.assertEqual(f["severity"], "warning")
        self.assertIn("without TLS", f["summary"])


class Usage(unittest.TestCase):
    def run_send(self, *argv, env=None):
        return mdlab.run_tool([mdlab.tool_path("maildiag-send")] + list(argv), env=env)

    def test_usage_errors(self):
        base = ["--server", "127.0.0.1:1", "--to", "a@lab.test"]
        for extra, words in (
                (["--await-timeout", "5"], "go with --await"),
                (["--await", "imaps://u@127.0.0.1/", "--dry-run"], "not with --dry-run"),
                (["--await", "imaps://u@127.0.0.1/", "--quit-after", "rcpt"], "not with --dry-run or --quit-after"),
                (["--await", "imaps://u@127.0.0.1/", "--await-timeout", "0"], "--await-timeout"),
                (["--await", "imaps://u@127.0.0.1/", "--await-timeout", "x"], "--await-timeout"),
                (["--await", "imaps://u:pw@127.0.0.1/"], "must not hold the password"),
                (["--await", "imaps://127.0.0.1/"], "names no user"),
                (["--await", "http://u@127.0.0.1/"], "imaps:// or imap://")):
            run = self.run_send(*(base + extra), env={"MAILDIAG_IMAP_PASSWORD": "x"})
            self.assertEqual(run.rc, 3, run)
            self.assertIn(words, run.err, run)
        run = self.run_send(*(base + ["--await", "imaps://u@127.0.0.1/"]), env={"MAILDIAG_IMAP_PASSWORD": ""})
        self.assertEqual(run.rc, 3, run)
        self.assertIn("needs the IMAP password", run.err)

    def test_help_lists_the_options(self):
        run = self.run_send("--help")
        for opt in ("--await URL", "--await-timeout", "--await-password-file", "--await-ca-file",
                    "--await-insecure", "--await-delete", "--await-authserv-id"):
            self.assertIn(opt, run.out)


class Valgrind(Lab):
    """The new paths under valgrind: found (with the receiver's fields and a delete),
    not found, a mailbox that cannot be opened."""

    def vg(self, to, *extra, url=None):
        why = mdlab.valgrind_skip_reason()
        if why:
            self.skipTest(why)
        argv = [mdlab.real_binary("maildiag-send"), "--server", "127.0.0.1:%d" % self.mx.port,
                "--tls", "required", "--ca-file", self.mx.ca_file, "--from", FROM, "--to", to, "--json",
                "--await", url or self.url(to.split("@")[0]), "--await-password-file", self.pwfile,
                "--await-ca-file", self.mx.ca_file] + list(extra)
        rc, out, err = mdlab.valgrind_run(argv, timeout=600)
        self.assertNotEqual(rc, 99, "valgrind found errors:\n" + err)
        return rc, json.loads(out)

    def test_valgrind(self):
        rc, j = self.vg("authed@lab.test", "--await-delete")
        self.assertEqual(rc, 1)
        self.assertTrue(j["arrival"]["found"])
        # valgrind is slow (the TLS handshake alone takes seconds, more on a
        # busy machine), and the timeout also bounds opening the mailbox
        rc, j = self.vg("gone@lab.test", "--await-timeout", "25")
        self.assertEqual(rc, 2, j)
        rc, j = self.vg("maria@lab.test", url=self.url("maria", "NoSuchFolder"))
        self.assertEqual(rc, 3)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
