#!/usr/bin/env python3
"""maildiag-send, the RCPT probe, maildiag-user remind and maildiag-selfcheck's
email against real mail servers on loopback (tests/lab/mta.py): Postfix 3.7 as
the receiving MX (CHUNKING, PIPELINING, SIZE, DSN, SMTPUTF8, ENHANCEDSTATUSCODES,
STARTTLS from a test CA, Maildir delivery, an access map, a size limit), the
same without tlsmgr (STARTTLS offered, then "454 4.7.0 TLS not available"),
Postfix as a submission relay with Dovecot SASL, and Exim 4.96 as a second
MX.  NSD serves lab.test for the direct route (MAILDIAG_SMTP_PORT, a test hook
of builds configured with --enable-test-hooks, points it at the lab's port;
--allow-internal lets it reach 127.0.0.1).

Each outcome of the JSON contract (accepted, rejected, deferred, failed) is
asserted for both MTAs and every route, and against Postfix also: the delivered
file is byte for byte the composed message (only the trace headers Postfix
prepends differ), one TCP connection per send and per probe (counted in
Postfix's log), 454 without tlsmgr (opportunistic delivers in plaintext with a
warning, required is critical), 552 5.3.4 over the size limit, a DSN requested
and delivered, the certificate verified with --ca-file.

Needs root and the lab's packages (scripts/install-deps); exit 77 otherwise.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_send_mta.py PostfixSend.test_accepted_arrives_byte_for_byte
"""

import json
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
import mta  # noqa: E402

TMP = None
PKI = None
NSD = None
FROM = "noreply@example.com"
STATUS_RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# the statuses each result can print; the exit status is always the one printed
RESULT_STATUS = {"accepted": ("ok", "warning"), "deferred": ("warning", "unknown"),
                 "rejected": ("critical",), "failed": ("critical", "unknown")}
SIZE_LIMIT = 50000          # below a message built from a 64 KB template
ACCESS = {"grey@lab.test": "450 4.2.0 <grey@lab.test>: greylisted, try again later",
          "blocked@lab.test": "554 5.7.1 <blocked@lab.test>: refused by policy"}
# What the MTA puts in front of a delivered message: Postfix's virtual(8) adds
# Return-Path, X-Original-To and Delivered-To, smtpd Received; Exim's appendfile
# Return-path, Envelope-to and Delivery-date.
TRACE = (b"return-path", b"x-original-to", b"delivered-to", b"received", b"envelope-to", b"delivery-date")

ZONE = """$ORIGIN lab.test.
$TTL 300
@   IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300
@   IN NS  ns.lab.test.
ns  IN A   127.0.0.1
@   IN MX  10 mx.lab.test.
mx  IN A   127.0.0.1
"""


def setUpModule():
    global TMP, PKI, NSD
    mdlab.tool_path("maildiag-send")
    if os.geteuid() != 0:
        raise mdlab.LabSkip("the mail-server lab needs root (Postfix, Exim and Dovecot switch users)")
    TMP = tempfile.mkdtemp(prefix="mdtest-sendmta-")
    os.chmod(TMP, 0o755)
    PKI = mta.Pki(os.path.join(TMP, "pki"))
    zone = os.path.join(TMP, "lab.test.zone")
    with open(zone, "w") as f:
        f.write(ZONE)
    NSD = mdlab.Nsd({"lab.test": zone}, workdir=TMP)
    NSD.start()


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def strip_trace(raw):
    """A delivered file without the trace headers the MTA put in front, in CRLF."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    i = 0
    while i < len(lines) and lines[i].split(b":", 1)[0].lower() in TRACE:
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


def big_template_dir():
    d = os.path.join(TMP, "big-templates")
    if not os.path.isdir(d):
        os.mkdir(d)
        with open(os.path.join(d, "plain.txt"), "w") as f:
            f.write(("x" * 70 + "\n") * 900)   # 63,900 bytes: the message is over 60 KB
    return d


def wait_message(server, user, message_id, timeout=20.0):
    """The bytes of the message in user's mailbox whose Message-ID header is
    message_id, waiting for it; None after the timeout."""
    want = re.compile(rb"(?mi)^Message-ID:\s*" + re.escape(message_id.encode()) + rb"\s*$")
    deadline = time.monotonic() + timeout
    while True:
        for path in server.maildir(user):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if want.search(data):
                return data
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def wait_dsn(mx, *needles, timeout=20.0):
    """The first message of the lab's bounces box that holds every needle
    (bytes), waiting for it; None after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        for path in mx.maildir("bounces"):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if all(n in data for n in needles):
                return data
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


class MtaCase(unittest.TestCase):
    """Runs maildiag-send and reads its one JSON object."""
    maxDiff = None

    def send(self, *args, env=None, timeout=60):
        argv = [mdlab.tool_path("maildiag-send"), "--from", FROM, "--json", "--timeout", "20"] + list(args)
        run = mdlab.run_tool(argv, env=env, timeout=timeout)
        lines = [l for l in run.out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "one JSON object expected\n%s" % run)
        try:
            j = json.loads(lines[0])
        except ValueError as e:
            self.fail("bad JSON (%s)\n%s" % (e, run))
        return run, j

    def outcome(self, run, j, result, phase=None, finding=None):
        self.assertEqual(j["result"], result, "result\n%s" % run)
        self.assertIn(j["status"], RESULT_STATUS[result], "status\n%s" % run)
        self.assertEqual(run.rc, STATUS_RC[j["status"]], "exit code = the status printed\n%s" % run)
        if phase:
            self.assertEqual(j["phase"], phase, "phase\n%s" % run)
        if finding:
            self.assertIn(finding, self.ids(j), run)

    def ids(self, j):
        return [f["id"] for f in j["findings"]]

    def direct(self, port, *args):
        # The MX listens on a loopback port, not 25: lib/smtp's test hook.
        mdlab.require_test_hooks("MAILDIAG_SMTP_PORT")
        return self.send("--direct", "--resolver", NSD.resolver, "--allow-internal", *args,
                         env={"MAILDIAG_SMTP_PORT": str(port)})


def counts(server):
    log = server.log()
    return (len(re.findall(r"smtpd\[\d+\]: connect from ", log)),
            len(re.findall(r"smtpd\[\d+\]: disconnect from ", log)))


def connects(server, timeout=5.0):
    """Connections Postfix's smtpd accepted so far, and the sessions it closed,
    once every session is closed (the log of the last one may lag)."""
    end = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        c, d = counts(server)
        if (c, d) != last:
            last, since = (c, d), time.monotonic()
        # closed, and no late line for half a second (a loaded machine
        # writes the log of an earlier session, the lab's readiness probe
        # too, after a while)
        if (c == d and time.monotonic() - since >= 0.5) or time.monotonic() > end:
            return c, d
        time.sleep(0.05)


def wait_sessions(server, closed, timeout=10.0):
    end = time.monotonic() + timeout
    while counts(server)[1] < closed and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(0.2)   # a late "connect from" would show now
    return counts(server)


def sent(j):
    """The command lines we wrote, from the transcript."""
    return [l["text"] for l in j["transcript"] if l["dir"] == ">"]


# ---------------------------------------------------------------- Postfix MX

class PostfixSend(MtaCase):
    """Postfix 3.7 as the receiving MX of lab.test, over both routes."""

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(workdir=TMP, pki=PKI, users=("maria",), access=ACCESS,
                               size_limit=SIZE_LIMIT, bounce_users=("gone",)).start()

    @classmethod
    def tearDownClass(cls):
        cls.mx.stop()

    def relay(self, *args):
        return self.send("--server", "localhost:%d" % self.mx.port, "--ca-file", PKI.ca_file, *args)

    def test_accepted_arrives_byte_for_byte(self):
        saved = os.path.join(TMP, "postfix-sent.eml")
        before = len(self.mx.maildir("maria"))
        c0, d0 = connects(self.mx)
        run, j = self.relay("--to", "maria@lab.test", "-T", "reset", "--tls", "required",
                            "--save-message", saved)
        self.outcome(run, j, "accepted", "data", "smtp.accepted")
        # TLS verified with --ca-file, against the name given (SNI too)
        self.assertTrue(j["tls"]["used"] and j["tls"]["verified"], j["tls"])
        self.assertIn("tls.ok", self.ids(j))
        self.assertEqual(j["reply"]["code"], 250)
        self.assertEqual(j["reply"]["enhanced"], "2.0.0")
        self.assertEqual(self.mx.queue_id_of(j["message_id"]), j["queue_id"], run)
        self.mx.wait_delivered("maria", before + 1)
        got = wait_message(self.mx, "maria", j["message_id"])
        self.assertIsNotNone(got, "%s never reached maria's Maildir" % j["message_id"])
        with open(saved, "rb") as f:
            sent = f.read()
        self.assertEqual(strip_trace(got), sent, "the delivered message differs from the composed one")
        self.assertEqual(self.mx.wait_status(to="maria@lab.test", queue_id=j["queue_id"])["status"], "sent")
        # one connection for the send (the old pre-connect made two)
        self.assertEqual(wait_sessions(self.mx, d0 + 1), (c0 + 1, d0 + 1), self.mx.log()[-2000:])
        # CHUNKING: Postfix logs BDAT; the transcript says why it shows no RCPT
        self.assertRegex(self.mx.log(), r"ehlo=2 starttls=1 mail=1 rcpt=1 bdat=\d+ quit=1")
        self.assertTrue(any("CHUNKING" in l["text"] and l["dir"] == "*" for l in j["transcript"]), j["transcript"])

    def test_rejected_unknown_user(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.relay("--to", "nobody@lab.test", *probe)
            self.outcome(run, j, "rejected", "rcpt", "smtp.rcpt.rejected")
            self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (550, "5.1.1"))
            self.assertIn("no such mailbox", j["reply"]["explanation"])

    def test_rejected_by_policy(self):
        run, j = self.relay("--to", "blocked@lab.test")
        self.outcome(run, j, "rejected", "rcpt", "smtp.rcpt.rejected")
        self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (554, "5.7.1"))

    def test_deferred_greylisted(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.relay("--to", "grey@lab.test", *probe)
            self.outcome(run, j, "deferred", "rcpt", "smtp.rcpt.deferred")
            self.assertEqual(j["reply"]["code"], 450)
            self.assertTrue(j.get("greylisted"), run)
            self.assertIn("smtp.greylisted", self.ids(j))

    def test_failed_tls_required_unverified(self):
        # no --ca-file: the lab CA is unknown, and required TLS does not go on
        c0, d0 = connects(self.mx)
        run, j = self.send("--server", "localhost:%d" % self.mx.port, "--tls", "required", "--to", "maria@lab.test")
        self.outcome(run, j, "failed", "starttls", "tls.cert_unknown_ca")
        self.assertFalse([t for t in sent(j) if t.startswith("MAIL")], run)
        self.assertEqual(wait_sessions(self.mx, d0 + 1), (c0 + 1, d0 + 1))

    def test_probe_one_connection(self):
        c0, d0 = connects(self.mx)
        run, j = self.relay("--to", "maria@lab.test", "--quit-after", "rcpt")
        self.outcome(run, j, "accepted", "rcpt", "smtp.probe_ok")
        self.assertEqual(wait_sessions(self.mx, d0 + 1), (c0 + 1, d0 + 1))
        self.assertRegex(self.mx.log(), r"ehlo=2 starttls=1 mail=1 rcpt=1 quit=1 commands=6")

    def test_size_limit_552(self):
        run, j = self.relay("--to", "maria@lab.test", "--template-dir", big_template_dir())
        self.outcome(run, j, "rejected", "mail", "smtp.size_exceeded")
        self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (552, "5.3.4"))
        self.assertIn("SIZE", j["reply"]["explanation"])
        mail = [t for t in sent(j) if t.startswith("MAIL FROM")]
        self.assertRegex(mail[0], r" SIZE=\d{5,}")

    def test_dsn_requested_and_delivered(self):
        # Postfix sends a success DSN to the envelope sender: the lab's bounces box.
        before = len(self.mx.maildir("bounces"))
        run, j = self.relay("--to", "maria@lab.test", "--from", self.mx.bounce_address, "--dsn")
        self.outcome(run, j, "accepted", "data", "smtp.accepted")
        self.assertTrue(j.get("dsn"), run)
        mail = [t for t in sent(j) if t.startswith("MAIL FROM")][0]
        self.assertIn("RET=HDRS", mail)
        self.assertIn("ENVID=", mail)
        self.mx.wait_delivered("bounces", before + 1)
        # ENVID = the Message-ID; another test's late DSN may also arrive here
        dsn = wait_dsn(self.mx, j["message_id"].strip("<>").encode(), b"Action: delivered")
        self.assertIsNotNone(dsn, "no success DSN naming %s in the bounces box" % j["message_id"])

    def test_dsn_failure_report(self):
        # accepted at RCPT, then bounced by the MX: the DSN reaches the sender
        before = len(self.mx.maildir("bounces"))
        run, j = self.relay("--to", "gone@lab.test", "--from", self.mx.bounce_address, "--dsn")
        self.outcome(run, j, "accepted", "data")
        self.mx.wait_delivered("bounces", before + 1)
        dsn = wait_dsn(self.mx, j["message_id"].strip("<>").encode(), b"Status: 5.1.1")
        self.assertIsNotNone(dsn, "no 5.1.1 DSN naming %s in the bounces box" % j["message_id"])

    def test_direct_route(self):
        before = len(self.mx.maildir("maria"))
        c0, d0 = connects(self.mx)
        run, j = self.direct(self.mx.port, "--to", "maria@lab.test", "--ca-file", PKI.ca_file, "--tls", "required")
        self.outcome(run, j, "accepted", "data", "smtp.accepted")
        self.assertEqual((j["route"], j["host"]), ("direct", "mx.lab.test"))
        self.assertTrue(j["tls"]["verified"], j["tls"])      # checked against the MX name
        self.assertEqual(j["tls"]["peer_name"], "mx.lab.test")
        self.mx.wait_delivered("maria", before + 1)
        for to, result, phase in (("nobody@lab.test", "rejected", "rcpt"), ("grey@lab.test", "deferred", "rcpt")):
            for probe in ([], ["--quit-after", "rcpt"]):
                run, j = self.direct(self.mx.port, "--to", to, *probe)
                self.outcome(run, j, result, phase)
        run, j = self.direct(self.mx.port, "--to", "maria@lab.test", "--quit-after", "rcpt")
        self.outcome(run, j, "accepted", "rcpt", "smtp.probe_ok")
        self.assertEqual(wait_sessions(self.mx, d0 + 6), (c0 + 6, d0 + 6))

    def test_direct_internal_refused(self):
        mdlab.require_test_hooks("MAILDIAG_SMTP_PORT")
        c0, d0 = connects(self.mx)
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.send("--direct", "--resolver", NSD.resolver, "--to", "maria@lab.test", *probe,
                               env={"MAILDIAG_SMTP_PORT": str(self.mx.port)})
            self.outcome(run, j, "failed", "resolve", "mx.target_internal")
            self.assertIn("127.0.0.1", json.dumps(j["findings"]))
        time.sleep(0.3)
        self.assertEqual(connects(self.mx), (c0, d0), "nothing may connect to an internal MX")

    def test_smtputf8_domain_as_a_label(self):
        # Postfix offers SMTPUTF8; an IDN domain goes out as A-labels, no SMTPUTF8 needed
        run, j = self.relay("--to", "maria@lab.test", "--quit-after", "rcpt", "--from", "noreply@b\u00fccher.example")
        self.outcome(run, j, "accepted", "rcpt")
        self.assertIn("MAIL FROM:<noreply@xn--bcher-kva.example>", json.dumps(j["transcript"]))
        run = mdlab.run_tool([mdlab.tool_path("maildiag-send"), "--from", "m\u00fcller@example.com", "--to",
                              "maria@lab.test", "--server", "localhost:%d" % self.mx.port, "--quit-after", "rcpt"])
        self.assertEqual(run.rc, 3, run)
        self.assertIn("SMTPUTF8", run.err)


class PostfixNoTls(MtaCase):
    """Postfix offering STARTTLS without tlsmgr: 454 4.7.0 to STARTTLS."""

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(workdir=TMP, pki=PKI, users=("maria",), tlsmgr=False).start()

    @classmethod
    def tearDownClass(cls):
        cls.mx.stop()

    def test_opportunistic_falls_back_to_plaintext(self):
        before = len(self.mx.maildir("maria"))
        c0, d0 = connects(self.mx)
        run, j = self.send("--server", "127.0.0.1:%d" % self.mx.port, "--to", "maria@lab.test")
        self.outcome(run, j, "accepted", "data", "tls.fallback_plaintext")
        self.assertEqual(j["status"], "warning", run)
        f = [x for x in j["findings"] if x["id"] == "tls.fallback_plaintext"][0]
        self.assertIn("454 4.7.0 TLS not available due to local problem", f["summary"])
        self.assertNotIn("greylist", json.dumps(j).lower())
        self.assertFalse(j["tls"]["used"])
        self.mx.wait_delivered("maria", before + 1)
        # the fallback is a second connection, and only that
        self.assertEqual(wait_sessions(self.mx, d0 + 2), (c0 + 2, d0 + 2))

    def test_required_is_critical(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.send("--server", "127.0.0.1:%d" % self.mx.port, "--to", "maria@lab.test",
                               "--tls", "required", *probe)
            self.outcome(run, j, "failed", "starttls", "tls.starttls_refused")
            self.assertEqual(j["status"], "critical")
            self.assertIn("TLS setup", j["reply"]["explanation"])
            self.assertNotIn("greylist", json.dumps(j).lower())
            self.assertFalse([t for t in sent(j) if t.startswith("MAIL")], run)

    def test_probe_falls_back_too(self):
        run, j = self.send("--server", "127.0.0.1:%d" % self.mx.port, "--to", "maria@lab.test", "--quit-after", "rcpt")
        self.outcome(run, j, "accepted", "rcpt", "tls.fallback_plaintext")


# ---------------------------------------------------------------- Postfix submission

class PostfixSubmission(MtaCase):
    """Postfix with Dovecot SASL relaying to a Postfix MX."""

    @classmethod
    def setUpClass(cls):
        cls.mx = mta.PostfixMx(workdir=TMP, pki=PKI, users=("maria",)).start()
        # its own temporary folder: Dovecot's socket paths must stay short (108 bytes)
        cls.sub = mta.PostfixSubmission(pki=PKI, relay_to=cls.mx, user="app@lab.test",
                                        password="s3cret-Pa55").start()
        cls.pw = os.path.join(TMP, "sub-pw")
        with open(cls.pw, "w") as f:
            f.write("s3cret-Pa55\n")
        os.chmod(cls.pw, 0o600)
        cls.bad = os.path.join(TMP, "sub-bad")
        with open(cls.bad, "w") as f:
            f.write("not-the-password\n")
        os.chmod(cls.bad, 0o600)

    @classmethod
    def tearDownClass(cls):
        cls.sub.stop()
        cls.mx.stop()

    def sub_send(self, *args):
        return self.send("--server", "localhost:%d" % self.sub.port, "--ca-file", PKI.ca_file,
                         "--tls", "required", "--to", "maria@lab.test", *args)

    def test_auth_accepted_and_relayed(self):
        before = len(self.mx.maildir("maria"))
        run, j = self.sub_send("--user", "app@lab.test", "--password-file", self.pw)
        self.outcome(run, j, "accepted", "data", "smtp.auth.ok")
        self.assertIn("smtp.accepted", self.ids(j))
        self.assertNotIn("s3cret", run.out)
        self.mx.wait_delivered("maria", before + 1)
        run, j = self.sub_send("--user", "app@lab.test", "--password-file", self.pw, "--quit-after", "rcpt")
        self.outcome(run, j, "accepted", "rcpt", "smtp.auth.ok")

    def test_wrong_password(self):
        for probe in ([], ["--quit-after", "auth"], ["--quit-after", "rcpt"]):
            run, j = self.sub_send("--user", "app@lab.test", "--password-file", self.bad, *probe)
            self.outcome(run, j, "failed", "auth", "smtp.auth.failed")
            self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (535, "5.7.8"))
            self.assertFalse([t for t in sent(j) if t.startswith("MAIL")], run)
            self.assertNotIn("not-the-password", run.out)
        # one AUTH per session: no second mechanism tried with the same password
        # (Postfix writes its log through postlogd, a moment after the session)
        deadline = time.monotonic() + 10
        while len(re.findall(r"authentication failed", self.sub.log())) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        self.assertEqual(len(re.findall(r"authentication failed", self.sub.log())), 3, self.sub.log()[-3000:])

    def test_no_auth_relay_denied(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.sub_send(*probe)
            self.outcome(run, j, "rejected", "rcpt", "smtp.rcpt.rejected")
            self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (554, "5.7.1"))
            self.assertIn("relaying denied", j["reply"]["explanation"])

    def test_auth_not_offered_before_starttls(self):
        # AUTH only after STARTTLS: with TLS off, a configured user means nothing is sent
        run, j = self.send("--server", "localhost:%d" % self.sub.port, "--tls", "off", "--to", "maria@lab.test",
                           "--user", "app@lab.test", "--password-file", self.pw)
        self.outcome(run, j, "failed", "auth", "smtp.auth.not_offered")
        self.assertFalse([t for t in sent(j) if t.startswith("MAIL")], run)
        self.assertRegex(self.sub.log(), r"disconnect from \S+ ehlo=1 commands=1\n")


# ---------------------------------------------------------------- Exim

class EximSend(MtaCase):
    """Exim 4.96 as the receiving MX of lab.test (CHUNKING, no DSN, no
    ENHANCEDSTATUSCODES)."""

    @classmethod
    def setUpClass(cls):
        cls.ex = mta.Exim(workdir=TMP, pki=PKI, users=("maria",), greylist=("grey",),
                          size_limit=SIZE_LIMIT).start()

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()

    def relay(self, *args):
        return self.send("--server", "localhost:%d" % self.ex.port, "--ca-file", PKI.ca_file, *args)

    def test_accepted_arrives(self):
        saved = os.path.join(TMP, "exim-sent.eml")
        before = len(self.ex.maildir("maria"))
        run, j = self.relay("--to", "maria@lab.test", "--tls", "required", "--save-message", saved, "-T", "verify")
        self.outcome(run, j, "accepted", "data", "smtp.accepted")
        self.assertTrue(j["tls"]["verified"], j["tls"])
        self.assertTrue(j["queue_id"], run)
        self.ex.wait_delivered("maria", before + 1)
        got = wait_message(self.ex, "maria", j["message_id"])
        self.assertIsNotNone(got, "%s never reached maria's mailbox" % j["message_id"])
        with open(saved, "rb") as f:
            self.assertEqual(strip_trace(got), f.read())
        self.assertIn(j["queue_id"], self.ex.log())

    def test_rejected_unknown_user(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.relay("--to", "nobody@lab.test", *probe)
            self.outcome(run, j, "rejected", "rcpt", "smtp.rcpt.rejected")
            self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (550, "5.1.1"))

    def test_deferred_greylisted(self):
        for probe in ([], ["--quit-after", "rcpt"]):
            run, j = self.relay("--to", "grey@lab.test", *probe)
            self.outcome(run, j, "deferred", "rcpt", "smtp.greylisted")

    def test_failed_tls_required_unverified(self):
        run, j = self.send("--server", "localhost:%d" % self.ex.port, "--tls", "required", "--to", "maria@lab.test")
        self.outcome(run, j, "failed", "starttls", "tls.cert_unknown_ca")

    def test_size_limit(self):
        run, j = self.relay("--to", "maria@lab.test", "--template-dir", big_template_dir())
        self.outcome(run, j, "rejected", "mail", "smtp.size_exceeded")
        self.assertEqual(j["reply"]["code"], 552)

    def test_dsn_not_offered(self):
        run, j = self.relay("--to", "maria@lab.test", "--dsn")
        self.outcome(run, j, "accepted", "data", "smtp.dsn_unsupported")

    def test_probe(self):
        run, j = self.relay("--to", "maria@lab.test", "--quit-after", "rcpt")
        self.outcome(run, j, "accepted", "rcpt", "smtp.probe_ok")

    def test_direct_route(self):
        before = len(self.ex.maildir("maria"))
        run, j = self.direct(self.ex.port, "--to", "maria@lab.test", "--ca-file", PKI.ca_file)
        self.outcome(run, j, "accepted", "data", "smtp.accepted")
        self.ex.wait_delivered("maria", before + 1)
        for to, result in (("nobody@lab.test", "rejected"), ("grey@lab.test", "deferred")):
            for probe in ([], ["--quit-after", "rcpt"]):
                run, j = self.direct(self.ex.port, "--to", to, *probe)
                self.outcome(run, j, result, "rcpt")


# ---------------------------------------------------------------- account emails

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
maria,maria@lab.test,active,password,,1
nobody,nobody@lab.test,active,password,,1
grey,grey@lab.test,active,password,,1
"""


class AccountMail(unittest.TestCase):
    """maildiag-user remind and maildiag-selfcheck's email, through a real MTA:
    the send log row says accepted with the server's queue id."""

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-user")
        cls.mx = mta.PostfixMx(workdir=TMP, pki=PKI, users=("maria",), access=ACCESS).start()
        cls.ex = mta.Exim(workdir=TMP, pki=PKI, users=("maria",), greylist=("grey",)).start()
        cls.keys = os.path.join(TMP, "keys")
        with open(cls.keys, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(cls.keys, 0o600)

    @classmethod
    def tearDownClass(cls):
        cls.ex.stop()
        cls.mx.stop()

    def store(self, name, mail):
        db = os.path.join(TMP, name + ".db")
        conf = os.path.join(TMP, name + ".conf")
        with open(conf, "w") as f:
            f.write("[store]\nuri = sqlite:%s\n[mail]\nfrom = noreply@product.test\n%s\ntimeout = 20\n"
                    "[token]\nkey_file = %s\n[selfcheck]\nmin_time = 0\nper_address = 1000/3600\n"
                    % (db, mail, self.keys))
        os.chmod(conf, 0o600)
        self.user(conf, "init")
        self.user(conf, "import", "-", stdin=ACCOUNTS)
        return conf, db

    def user(self, conf, *args, stdin=None, dns=False):
        argv = [mdlab.tool_path("maildiag-user"), "--config", conf]
        argv += ["--resolver", NSD.resolver] if dns else ["--no-dns"]
        r = subprocess.run(argv + list(args), input=stdin, capture_output=True, text=True, timeout=60,
                           env=mdlab.tool_env())
        self.assertNotEqual(r.returncode, 3, "maildiag-user %s: %s" % (args, r.stderr))
        return r

    def selfcheck(self, conf, addr, dns=False):
        argv = [mdlab.tool_path("maildiag-selfcheck"), "--config", conf, "--wait", "--want", "reset"]
        argv += ["--resolver", NSD.resolver, "--timeout", "5"] if dns else ["--no-dns"]
        return subprocess.run(argv + [addr], capture_output=True, text=True, timeout=60, env=mdlab.tool_env())

    def log_rows(self, db, to):
        c = sqlite3.connect(db)
        rows = c.execute("SELECT kind, outcome, reply, message_id FROM send_log WHERE to_address = ? ORDER BY id",
                         (to,)).fetchall()
        c.close()
        return rows

    def routes(self):
        """(name, server, [mail] lines) for each MTA and route."""
        out = []
        for name, srv in (("postfix", self.mx), ("exim", self.ex)):
            out.append((name + "-relay", srv, "server = localhost:%d\ntls = required\nca_file = %s"
                        % (srv.port, PKI.ca_file)))
            out.append((name + "-direct", srv, "direct_port = %d\nallow_internal = yes\nca_file = %s"
                        % (srv.port, PKI.ca_file)))
        return out

    def queue_id_in(self, srv, reply, message_id):
        m = re.search(r"queued as (\S+)|id=(\S+)", reply)
        self.assertTrue(m, reply)
        qid = m.group(1) or m.group(2)
        if isinstance(srv, mta.PostfixMx):
            self.assertEqual(srv.queue_id_of(message_id), qid)
        else:
            self.assertIn(qid, srv.log())
        return qid

    def test_remind(self):
        for name, srv, mail in self.routes():
            with self.subTest(route=name):
                conf, db = self.store("remind-" + name, mail)
                dns = name.endswith("direct")
                before = len(srv.maildir("maria"))
                r = self.user(conf, "--json", "remind", "maria@lab.test", dns=dns)
                j = json.loads(r.stdout)
                self.assertEqual(j["outcome"], "accepted", r.stdout + r.stderr)
                # ok, or warning: Exim's direct route shows a certificate for another name
                self.assertIn(j["status"], ("ok", "warning") if name == "exim-direct" else ("ok",), r.stdout)
                self.assertEqual(r.returncode, STATUS_RC[j["status"]], r.stdout + r.stderr)
                kind, outcome, reply, mid = self.log_rows(db, "maria@lab.test")[-1]
                self.assertEqual((kind, outcome), ("reminder", "accepted"), reply)
                self.queue_id_in(srv, reply, mid)
                srv.wait_delivered("maria", before + 1)
                r = self.user(conf, "remind", "nobody@lab.test", dns=dns)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertEqual(self.log_rows(db, "nobody@lab.test")[-1][1], "rejected")
                r = self.user(conf, "remind", "grey@lab.test", dns=dns)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertEqual(self.log_rows(db, "grey@lab.test")[-1][1], "deferred")

    def test_selfcheck_email(self):
        for name, srv, mail in self.routes():
            with self.subTest(route=name):
                conf, db = self.store("self-" + name, mail)
                before = len(srv.maildir("maria"))
                r = self.selfcheck(conf, "maria@lab.test", dns=name.endswith("direct"))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                kind, outcome, reply, mid = self.log_rows(db, "maria@lab.test")[-1]
                self.assertEqual(outcome, "accepted", reply)
                self.queue_id_in(srv, reply, mid)
                srv.wait_delivered("maria", before + 1)

    def test_failed_is_logged_as_failed(self):
        # required TLS without the lab CA: the send log says failed, and why
        conf, db = self.store("fail", "server = localhost:%d\ntls = required" % self.mx.port)
        r = self.user(conf, "remind", "maria@lab.test")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        row = self.log_rows(db, "maria@lab.test")[-1]
        self.assertEqual(row[1], "failed", row)
        self.assertIn("certificate", row[2])

    def test_direct_internal_refused_without_allow(self):
        c0 = connects(self.mx)
        conf, db = self.store("internal", "direct_port = %d" % self.mx.port)
        r = self.user(conf, "remind", "maria@lab.test", dns=True)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        row = self.log_rows(db, "maria@lab.test")[-1]
        self.assertEqual(row[1], "failed", row)
        self.assertIn("127.0.0.1", row[2])
        r = self.selfcheck(conf, "maria@lab.test", dns=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.log_rows(db, "maria@lab.test")[-1][1], "failed")
        time.sleep(0.3)
        self.assertEqual(connects(self.mx), c0, "nothing may connect to an internal MX")


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
