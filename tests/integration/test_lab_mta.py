#!/usr/bin/env python3
"""Self-check of the mail-server lab (tests/lab/mta.py): real Postfix (MX and submission
with Dovecot SASL), Exim and Dovecot IMAP on 127.0.0.1, exercised with Python's own
smtplib / imaplib / ssl only (not maildiag's tools), and a check that the lab leaves no
process behind, even when the test process fails or is killed.

A server whose software is missing skips its test class with the reason; when every
class is skipped the exit status is 77.  Exit 0 pass, 1 fail.
Run one class: python3 test_lab_mta.py PostfixMxLab
"""

import email
import email.policy
import imaplib
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import time
import unittest
import uuid

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
_LAB = os.path.join(_TESTS, "lab")
sys.path.insert(0, _LAB)

import mdlab  # noqa: E402
import mta  # noqa: E402

HOST = "127.0.0.1"


def token():
    return uuid.uuid4().hex[:16]


def message(tok, to="maria@lab.test", sender="bounces@lab.test", body=None):
    """A complete RFC 5322 message (CRLF) that Postfix and Exim store without adding headers:
    8-bit UTF-8 and a line starting with a dot (dot-stuffing both ways)."""
    body = body if body is not None else (
        "Hello %s\r\n.a line that starts with a dot\r\nUTF-8: gr\u00fc\u00dfe, \u65e5\u672c\r\n"
        "last line\r\n" % tok)
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: lab %s\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@lab.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s"
            % (sender, to, tok, tok, body)).encode("utf-8")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def wait_token(server, user, tok, folder="INBOX", timeout=10.0):
    """The path of the message in user's folder that contains tok."""
    end = time.monotonic() + timeout
    while True:
        for p in server.maildir(user, folder):
            if tok.encode() in read(p):
                return p
        if time.monotonic() > end:
            raise AssertionError("no message with %s in %s/%s after %.0f s; log:\n%s"
                                 % (tok, user, folder, timeout, server.log()[-3000:]))
        time.sleep(0.05)


def ehlo_keywords(smtp):
    code, text = smtp.ehlo("client.lab.test")
    assert code == 250, (code, text)
    return [l.split()[0].upper() for l in text.decode().splitlines()[1:]], text.decode()


class _Smtp:
    """smtplib.SMTP with a timeout, closed at the end of the test."""

    def smtp(self, port):
        s = smtplib.SMTP(HOST, port, local_hostname="client.lab.test", timeout=10)
        self.addCleanup(self._close, s)
        return s

    @staticmethod
    def _close(s):
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


# ---------------------------------------------------------------- Postfix MX

class PostfixMxLab(_Smtp, unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(
            users=("maria", "ana"),
            access={"grey@lab.test": "450 4.2.0 greylisted, try later",
                    "blocked@lab.test": "554 5.7.1 policy",
                    "dropall@lab.test": "DISCARD"},
            bounce_users=("gone",), discard=("void",), junk_users=("junky",),
            size_limit=200000)
        cls.mx.start()

    @classmethod
    def tearDownClass(cls):
        cls.mx.stop()

    def test_ehlo_capabilities(self):
        kw, text = ehlo_keywords(self.smtp(self.mx.port))
        for k in ("PIPELINING", "CHUNKING", "DSN", "STARTTLS", "SMTPUTF8", "8BITMIME",
                  "ENHANCEDSTATUSCODES", "SIZE"):
            self.assertIn(k, kw, text)
        self.assertIn("SIZE 200000", text)
        self.assertTrue(text.startswith("mx.lab.test"), text)

    def test_starttls_with_lab_ca(self):
        s = self.smtp(self.mx.port)
        s.ehlo()
        code, _ = s.starttls(context=self.mx.ssl_context())
        self.assertEqual(code, 220)
        cert = s.sock.getpeercert()
        self.assertIn(("DNS", "mx.lab.test"), cert["subjectAltName"])
        self.assertIn(("IP Address", "127.0.0.1"), cert["subjectAltName"])
        kw, text = ehlo_keywords(s)
        self.assertNotIn("STARTTLS", kw, text)
        # the lab CA is not a public one: a default client context refuses it
        s2 = self.smtp(self.mx.port)
        s2.ehlo()
        with self.assertRaises(ssl.SSLCertVerificationError):
            s2.starttls(context=ssl.create_default_context())

    def test_delivery_byte_exact(self):
        tok = token()
        raw = message(tok)
        s = self.smtp(self.mx.port)
        s.starttls(context=self.mx.ssl_context())
        refused = s.sendmail("bounces@lab.test", ["maria@lab.test"], raw, mail_options=["BODY=8BITMIME"])
        self.assertEqual(refused, {})
        stored = read(wait_token(self.mx, "maria", tok))
        lf = raw.replace(b"\r\n", b"\n")
        self.assertTrue(stored.endswith(lf), "stored:\n%r\nsent:\n%r" % (stored, lf))
        added = [l.split(b":")[0] for l in stored[:-len(lf)].split(b"\n")
                 if l and not l[:1].isspace()]
        self.assertEqual(added, [b"Return-Path", b"X-Original-To", b"Delivered-To", b"Received"])
        st = self.mx.wait_status(to="maria@lab.test", queue_id=self.mx.queue_id_of(tok + "@lab.test"))
        self.assertEqual((st["status"], st["dsn"], st["relay"]), ("sent", "2.0.0", "virtual"))

    def test_unknown_user_550_511(self):
        s = self.smtp(self.mx.port)
        s.ehlo()
        s.mail("bounces@lab.test")
        code, text = s.rcpt("nobody@lab.test")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.1.1 "), text)

    def test_relaying_denied_554_571(self):
        s = self.smtp(self.mx.port)
        s.ehlo()
        s.mail("bounces@lab.test")
        code, text = s.rcpt("someone@example.com")
        self.assertEqual(code, 554)
        self.assertIn(b"5.7.1", text)
        self.assertIn(b"Relay access denied", text)

    def test_access_map(self):
        s = self.smtp(self.mx.port)
        s.ehlo()
        s.mail("bounces@lab.test")
        self.assertEqual(s.rcpt("grey@lab.test"),
                         (450, b"4.2.0 <grey@lab.test>: Recipient address rejected: greylisted, try later"))
        self.assertEqual(s.rcpt("blocked@lab.test"),
                         (554, b"5.7.1 <blocked@lab.test>: Recipient address rejected: policy"))
        s.rset()
        tok = token()
        # DISCARD: accepted at RCPT and DATA, then thrown away (the whole message)
        refused = s.sendmail("bounces@lab.test", ["dropall@lab.test", "ana@lab.test"], message(tok))
        self.assertEqual(refused, {})
        self.mx.wait_log(r"discard: RCPT from .*<dropall@lab\.test>: Recipient address triggers DISCARD")
        time.sleep(0.3)
        self.assertFalse(any(tok.encode() in read(p) for p in self.mx.maildir("ana")))

    def test_bounce_user_gets_real_dsn(self):
        tok = token()
        s = self.smtp(self.mx.port)
        refused = s.sendmail(self.mx.bounce_address, ["gone@lab.test"], message(tok, to="gone@lab.test"))
        self.assertEqual(refused, {})   # accepted at RCPT: the bounce comes later
        qid = self.mx.queue_id_of(tok + "@lab.test")
        st = self.mx.wait_status(to="gone@lab.test", queue_id=qid)
        self.assertEqual((st["status"], st["dsn"]), ("bounced", "5.1.1"))
        dsn = email.message_from_bytes(read(wait_token(self.mx, "bounces", tok)),
                                       policy=email.policy.default)
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        self.assertEqual(dsn["Return-Path"], "<>")
        parts = {p.get_content_type(): p for p in dsn.iter_parts()}
        self.assertIn("message/delivery-status", parts)
        status = parts["message/delivery-status"].as_string()
        self.assertIn("Status: 5.1.1", status)
        self.assertIn("Final-Recipient: rfc822; gone@lab.test", status)
        self.assertIn("Action: failed", status)

    def test_discard_list(self):
        tok = token()
        s = self.smtp(self.mx.port)
        self.assertEqual(s.sendmail("bounces@lab.test", ["void@lab.test"], message(tok)), {})
        st = self.mx.wait_status(to="void@lab.test", queue_id=self.mx.queue_id_of(tok + "@lab.test"))
        self.assertEqual((st["agent"], st["status"], st["relay"]), ("discard", "sent", "none"))

    def test_size_limit_552_534(self):
        s = self.smtp(self.mx.port)
        s.ehlo()
        big = message(token(), body=("y" * 76 + "\r\n") * 3000)    # 234 kB > 200000
        # declared with SIZE=: refused at MAIL FROM
        code, text = s.mail("bounces@lab.test", ["SIZE=%d" % len(big)])
        self.assertEqual((code, text[:5]), (552, b"5.3.4"), text)
        s.rset()
        # not declared: refused at the end of DATA
        s.mail("bounces@lab.test")
        s.rcpt("maria@lab.test")
        code, text = s.data(big)
        self.assertEqual((code, text[:5]), (552, b"5.3.4"), text)

    def test_junk_user_lands_in_junk(self):
        tok = token()
        s = self.smtp(self.mx.port)
        self.assertEqual(s.sendmail("bounces@lab.test", ["junky@lab.test"], message(tok)), {})
        path = wait_token(self.mx, "junky", tok, folder="Junk")
        self.assertIn(os.sep + ".Junk" + os.sep, path)
        self.assertEqual(self.mx.maildir("junky"), [])

    def test_queue_helpers(self):
        tok = token()
        s = self.smtp(self.mx.port)
        s.sendmail("bounces@lab.test", ["ana@lab.test"], message(tok))
        qid = self.mx.queue_id_of("<%s@lab.test>" % tok)
        self.assertIn(qid, self.mx.queue_ids())
        self.mx.wait_log(r"%s: removed" % qid)
        self.assertEqual([st["status"] for st in self.mx.log_status(qid)], ["sent"])
        self.assertNotIn(qid, [q["queue_id"] for q in self.mx.queue()])
        self.mx.flush()   # postqueue -c DIR -f works on the lab's own queue


class PostfixNoTlsmgrLab(_Smtp, unittest.TestCase):

    def test_starttls_offered_then_454(self):
        with mta.PostfixMx(tlsmgr=False) as mx:
            s = self.smtp(mx.port)
            kw, text = ehlo_keywords(s)
            self.assertIn("STARTTLS", kw, text)
            self.assertEqual(s.docmd("STARTTLS"),
                             (454, b"4.7.0 TLS not available due to local problem"))
            # the session goes on in plain text
            self.assertEqual(s.mail("bounces@lab.test")[0], 250)


# ---------------------------------------------------------------- submission

class SubmissionLab(_Smtp, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(users=("maria",)).start()
        try:
            cls.sub = mta.PostfixSubmission(user="sender@lab.test", password="s3cret pass",
                                            relay_to=cls.mx, pki=cls.mx.pki).start()
        except BaseException:
            cls.mx.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sub.stop()
        cls.mx.stop()

    def tls_session(self):
        s = self.smtp(self.sub.port)
        s.ehlo()
        s.starttls(context=self.sub.ssl_context())
        s.ehlo()
        return s

    def test_no_auth_before_starttls(self):
        kw, text = ehlo_keywords(self.smtp(self.sub.port))
        self.assertIn("STARTTLS", kw, text)
        self.assertNotIn("AUTH", kw, text)

    def test_relay_without_auth_554_571(self):
        s = self.smtp(self.sub.port)
        s.ehlo()
        s.mail("sender@lab.test")
        code, text = s.rcpt("maria@lab.test")
        self.assertEqual(code, 554)
        self.assertIn(b"5.7.1", text)
        self.assertIn(b"Relay access denied", text)

    def test_auth_offered_after_starttls(self):
        s = self.tls_session()
        self.assertIn("auth", s.esmtp_features)
        self.assertIn("PLAIN", s.esmtp_features["auth"].split())

    def test_wrong_password_535_578(self):
        s = self.tls_session()
        s.user, s.password = "sender@lab.test", "wrong"
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.auth("PLAIN", s.auth_plain)
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.8 "), cm.exception.smtp_error)

    def test_auth_plain_235_and_relay(self):
        s = self.tls_session()
        s.user, s.password = self.sub.user, self.sub.password
        code, text = s.auth("PLAIN", s.auth_plain)
        self.assertEqual((code, text), (235, b"2.7.0 Authentication successful"))
        tok = token()
        self.assertEqual(s.sendmail(self.sub.user, ["maria@lab.test"],
                                    message(tok, sender=self.sub.user)), {})
        wait_token(self.mx, "maria", tok)
        st = self.sub.wait_status(to="maria@lab.test", queue_id=self.sub.queue_id_of(tok + "@lab.test"))
        self.assertEqual((st["agent"], st["status"]), ("smtp", "sent"))
        self.assertIn("127.0.0.1[127.0.0.1]:%d" % self.mx.port, st["relay"])


class SubmissionCaptureLab(_Smtp, unittest.TestCase):

    def test_capture_into_outbox_and_require_tls(self):
        with mta.PostfixSubmission(user="u1", password="p1", require_tls=True) as sub:
            s = self.smtp(sub.port)
            s.ehlo()
            self.assertEqual(s.docmd("MAIL FROM:<u1@lab.test>"),
                             (530, b"5.7.0 Must issue a STARTTLS command first"))
            s.starttls(context=sub.ssl_context())
            s.login("u1", "p1")
            tok = token()
            s.sendmail("u1@lab.test", ["someone@example.com"], message(tok, to="someone@example.com"))
            [path] = sub.wait_outbox(1)
            self.assertIn(tok.encode(), read(path))


# ---------------------------------------------------------------- Exim

class EximLab(_Smtp, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ex = mta.Exim(users=("maria",), greylist=("grey",)).start()

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()

    def test_ehlo_capabilities(self):
        kw, text = ehlo_keywords(self.smtp(self.ex.port))
        for k in ("PIPELINING", "CHUNKING", "STARTTLS", "SIZE", "8BITMIME", "SMTPUTF8"):
            self.assertIn(k, kw, text)
        # Exim 4.96's defaults (recorded in docs/LAB.md): no DSN, no ENHANCEDSTATUSCODES
        self.assertNotIn("DSN", kw, text)
        self.assertNotIn("ENHANCEDSTATUSCODES", kw, text)

    def test_delivery_over_starttls(self):
        tok = token()
        raw = message(tok)
        s = self.smtp(self.ex.port)
        s.ehlo()
        s.starttls(context=self.ex.ssl_context())
        self.assertEqual(s.sendmail("a@example.com", ["maria@lab.test"], raw,
                                    mail_options=["BODY=8BITMIME"]), {})
        stored = read(wait_token(self.ex, "maria", tok))
        self.assertTrue(stored.endswith(raw.replace(b"\r\n", b"\n")), stored)
        self.ex.wait_log(r"=> maria <maria@lab\.test> R=lab_users T=lab_maildir")

    def test_unknown_user_550(self):
        s = self.smtp(self.ex.port)
        s.ehlo()
        s.mail("a@example.com")
        self.assertEqual(s.rcpt("nobody@lab.test"), (550, b"5.1.1 <nobody@lab.test>: user unknown"))
        self.assertEqual(s.rcpt("x@example.com"), (550, b"5.7.1 relay not permitted"))

    def test_greylist_450(self):
        s = self.smtp(self.ex.port)
        s.ehlo()
        s.mail("a@example.com")
        self.assertEqual(s.rcpt("grey@lab.test"), (450, b"4.2.0 greylisted, try later"))


# ---------------------------------------------------------------- Dovecot

class DovecotLab(_Smtp, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(users=("maria",), junk_users=("junky",)).start()
        try:
            cls.imap = mta.DovecotImap(cls.mx, password="imap-pw").start()
            # two messages through Postfix, before any test runs
            cls.tok, cls.junk_tok = token(), token()
            s = smtplib.SMTP(HOST, cls.mx.port, timeout=10)
            s.sendmail("bounces@lab.test", ["maria@lab.test"], message(cls.tok))
            s.sendmail("bounces@lab.test", ["junky@lab.test"], message(cls.junk_tok, to="junky@lab.test"))
            s.quit()
            cls.raw = message(cls.tok)
            wait_token(cls.mx, "maria", cls.tok)
            wait_token(cls.mx, "junky", cls.junk_tok, folder="Junk")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "imap", None):
            cls.imap.stop()
        cls.mx.stop()

    def imaps(self):
        c = imaplib.IMAP4_SSL(HOST, self.imap.imaps_port, ssl_context=self.imap.ssl_context(),
                              timeout=10)
        self.addCleanup(self._logout, c)
        return c

    def imap_starttls(self):
        c = imaplib.IMAP4(HOST, self.imap.port, timeout=10)
        self.addCleanup(self._logout, c)
        self.assertIn("STARTTLS", c.capabilities)
        c.starttls(ssl_context=self.imap.ssl_context())
        return c

    @staticmethod
    def _logout(c):
        try:
            c.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def fetch_token(self, c, tok, mailbox="INBOX"):
        typ, _ = c.select(mailbox, readonly=True)
        self.assertEqual(typ, "OK")
        typ, data = c.search(None, "SUBJECT", '"lab %s"' % tok)
        self.assertEqual(typ, "OK")
        nums = data[0].split()
        self.assertEqual(len(nums), 1, data)
        typ, data = c.fetch(nums[0], "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        return data[0][1]

    def test_login_and_wrong_password(self):
        c = self.imap_starttls()
        self.assertEqual(c.login("maria", "imap-pw")[0], "OK")
        c2 = self.imaps()
        with self.assertRaises(imaplib.IMAP4.error):
            c2.login("maria", "wrong")
        self.assertEqual(c2.login("maria@lab.test", "imap-pw")[0], "OK")

    def test_list_shows_junk_special_use(self):
        c = self.imaps()
        c.login("maria", "imap-pw")
        typ, data = c.list()
        self.assertEqual(typ, "OK")
        lines = [l.decode() for l in data]
        self.assertTrue(any("\\Junk" in l and l.endswith(" Junk") for l in lines), lines)
        self.assertTrue(any(l.endswith(" INBOX") for l in lines), lines)

    def test_postfix_message_over_imaps(self):
        c = self.imaps()
        c.login("maria", "imap-pw")
        got = self.fetch_token(c, self.tok)
        self.assertTrue(got.endswith(self.raw), got)     # IMAP gives CRLF back

    def test_postfix_message_over_starttls(self):
        c = self.imap_starttls()
        c.login("maria@lab.test", "imap-pw")
        got = self.fetch_token(c, self.tok)
        self.assertTrue(got.endswith(self.raw), got)

    def test_junk_folder_over_imap(self):
        c = self.imaps()
        c.login("junky", "imap-pw")
        got = self.fetch_token(c, self.junk_tok, mailbox="Junk")
        self.assertIn(self.junk_tok.encode(), got)

    def test_idle_sees_new_delivery(self):
        c = self.imaps()
        self.assertIn("IDLE", c.capabilities)
        c.login("maria", "imap-pw")
        c.select("INBOX")
        c.send(b"I1 IDLE\r\n")
        self.assertTrue(c.readline().startswith(b"+ "))
        tok = token()
        s = self.smtp(self.mx.port)
        s.sendmail("bounces@lab.test", ["maria@lab.test"], message(tok))
        c.sock.settimeout(10)
        line = b""
        while b"EXISTS" not in line:
            line = c.readline()
            self.assertTrue(line, "connection closed while idling")
        c.send(b"DONE\r\n")
        while not line.startswith(b"I1 "):
            line = c.readline()
        self.assertTrue(line.startswith(b"I1 OK"), line)


# ---------------------------------------------------------------- cleanup

_CHILD = r"""
import os, sys, time
sys.path.insert(0, %(lab)r)
import mta
mx = mta.PostfixMx().start()
imap = mta.DovecotImap(mx).start()
sub = mta.PostfixSubmission(relay_to=mx).start()
servers = [mx, imap, sub]
try:
    servers.append(mta.Exim().start())
except mta.LabSkip:
    pass
print(" ".join(s.dir for s in servers) + " " + sub.sasl.dir, flush=True)
if sys.argv[1] == "fail":
    with mta.PostfixMx() as inner:
        print(inner.dir, flush=True)
        raise AssertionError("a failing test")
time.sleep(60)
"""


class CleanupLab(unittest.TestCase):
    """What the lab starts is gone afterwards: after stop(), after an exception in a
    with block, when the test process gets SIGTERM (atexit), and when it is killed
    (SIGKILL: only the watchdogs run)."""

    def child(self, mode):
        mta._need_root("the lab")
        p = subprocess.Popen([sys.executable, "-c", _CHILD % {"lab": _LAB}, mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        dirs = p.stdout.readline().split()
        if not dirs:
            p.kill()
            out, err = p.communicate()
            if "LabSkip" in err:
                raise unittest.SkipTest(err.strip().splitlines()[-1])
            self.fail("child did not start its servers:\n%s%s" % (out, err))
        return p, dirs

    def assertGone(self, dirs, timeout=8.0):
        """No live process names one of the lab directories (command line or environment)."""
        end = time.monotonic() + timeout
        while True:
            left = {d: mta.marked_pids(d) for d in dirs}
            left = {d: pids for d, pids in left.items() if pids}
            if not left:
                return
            if time.monotonic() > end:
                self.fail("processes left behind: %s" % {
                    d: [(p, mta._proc_text(p, "cmdline")) for p in pids] for d, pids in left.items()})
            time.sleep(0.1)

    def test_stop_leaves_nothing(self):
        mx = mta.PostfixMx().start()
        imap = mta.DovecotImap(mx).start()
        pgids = [p.pid for p in mx.procs + imap.procs]
        d = [mx.dir, imap.dir]
        imap.stop()
        mx.stop()
        for pg in pgids:
            self.assertEqual(mdlab._live_group_members(pg), [])
        self.assertFalse(any(os.path.exists(x) for x in d))
        self.assertEqual([mta.marked_pids(x) for x in d], [[], []])

    def test_failing_test_process_leaves_nothing(self):
        p, dirs = self.child("fail")
        out, err = p.communicate(timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AssertionError: a failing test", err)
        dirs += out.split()     # the PostfixMx of the failing with block
        self.assertEqual(len(dirs), len(set(dirs)))
        self.assertGone(dirs)
        # with-block: stopped by __exit__; the others: stopped by the atexit hook
        self.assertEqual([d for d in dirs if os.path.exists(d)], [])

    def test_terminated_test_process_leaves_nothing(self):
        p, dirs = self.child("sleep")
        p.send_signal(signal.SIGTERM)     # the lab's SIGTERM handler exits through atexit
        p.wait(timeout=30)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM)
        self.assertGone(dirs)
        self.assertEqual([d for d in dirs if os.path.exists(d)], [])

    def test_killed_test_process_leaves_nothing(self):
        p, dirs = self.child("sleep")
        self.addCleanup(lambda: [shutil.rmtree(d, ignore_errors=True) for d in dirs])
        self.assertTrue(all(mta.marked_pids(d) for d in dirs), "the servers should be running")
        p.send_signal(signal.SIGKILL)
        p.wait()
        # nobody ran stop(): the watchdogs kill the servers and remove their directories
        self.assertGone(dirs)
        end = time.monotonic() + 5
        while any(os.path.exists(d) for d in dirs) and time.monotonic() < end:
            time.sleep(0.1)
        self.assertEqual([d for d in dirs if os.path.exists(d)], [])


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
