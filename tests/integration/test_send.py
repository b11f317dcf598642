#!/usr/bin/env python3
"""maildiag-send against real SMTP servers on loopback: Postfix's smtp-sink (accept,
5xx and 4xx at RCPT, byte-for-byte delivery), aiosmtpd (STARTTLS with certificates made
here, AUTH PLAIN/LOGIN, 550 5.1.1, greylisting), the DNS lab (NSD) for direct-to-MX
routing, and a scripted hostile server (hang, drop mid-DATA, garbage, 1 MB line,
1 byte a second).  Also maildiag-token.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_send.py SinkCases.test_accept_byte_for_byte
"""

import base64
import json
import os
import shutil
import stat
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
PKI = None
FROM = "noreply@example.com"
TO = "user@example.com"
RC = {"accepted": 0, "deferred": 1, "rejected": 2, "failed": 2}
STATUS_RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
# the statuses a result can print: accepted is ok, or warning when a finding
# warns (no STARTTLS offered ...); the exit status is always the one printed
RESULT_STATUS = {"accepted": ("ok", "warning"), "deferred": ("warning", "unknown"),
                 "rejected": ("critical",), "failed": ("critical", "unknown")}


def setUpModule():
    global TMP
    mdlab.tool_path("maildiag-send")
    TMP = tempfile.mkdtemp(prefix="mdtest-send-")
    os.chmod(TMP, 0o711)   # smtp-sink runs as nobody and writes its dumps below


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def pki():
    global PKI
    if PKI is None:
        d = os.path.join(TMP, "pki")
        os.mkdir(d)
        PKI = smtplab.make_pki(d)
    return PKI


class SendCase(unittest.TestCase):
    maxDiff = None

    def send(self, *args, env=None, timeout=30):
        argv = [mdlab.tool_path("maildiag-send"), "--from", FROM] + list(args)
        return mdlab.run_tool(argv, env=env, timeout=timeout)

    def result(self, run):
        """The one JSON object of a --json send."""
        lines = [l for l in run.out.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "one JSON object expected\n%s" % run)
        try:
            return json.loads(lines[0])
        except ValueError as e:
            self.fail("bad JSON (%s)\n%s" % (e, run))

    def assertOutcome(self, run, result, phase=None):
        j = self.result(run)
        self.assertEqual(j["result"], result, "result\n%s" % run)
        if phase:
            self.assertEqual(j["phase"], phase, "phase\n%s" % run)
        self.assertIn(j["status"], RESULT_STATUS[result], "status\n%s" % run)
        self.assertEqual(run.rc, STATUS_RC[j["status"]], "exit code = the status printed\n%s" % run)
        for k in ("to", "route", "result", "phase", "reply", "queue_id", "message_id", "tls",
                  "transcript", "findings"):
            self.assertIn(k, j, "JSON key %s\n%s" % (k, run))
        return j

    def ids(self, j):
        return [f["id"] for f in j["findings"]]


class SinkCases(SendCase):
    """Postfix smtp-sink: accept, reject, defer, exact bytes."""

    def test_accept_byte_for_byte(self):
        d = tempfile.mkdtemp(dir=TMP)
        tdir = tempfile.mkdtemp(dir=TMP)
        # A line starting with '.' checks dot-stuffing on the way.
        with open(os.path.join(tdir, "reset.txt"), "w") as f:
            f.write(".hidden dot line\nReset: {{link}}\nbye\n")
        saved = os.path.join(TMP, "sent.eml")
        with smtplab.Sink(dump_dir=d) as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "-T", "reset",
                            "--template-dir", tdir, "--save-message", saved, "--json")
            j = self.assertOutcome(run, "accepted", "data")
            time.sleep(0.2)
            dumps = sink.dumps()
        self.assertEqual(len(dumps), 1, "one message dumped\n%s" % run)
        with open(saved, "rb") as f:
            sent = f.read()
        got = dumps[0]
        # smtp-sink puts its own X-*/Received lines before the message.
        i = got.find(b"Date: ")
        self.assertGreaterEqual(i, 0, got[:400])
        # smtp-sink writes its dump with LF line ends and one blank line after
        # the message: compare in that form (the CRLF bytes: test_exact_bytes_crlf).
        self.assertEqual(got[i:], sent.replace(b"\r\n", b"\n") + b"\n",
                         "delivered bytes differ from the composed message")
        self.assertIn(b"\r\n.hidden dot line", sent.replace(b"=\r\n", b""))
        self.assertIn(j["message_id"].encode(), sent)
        self.assertEqual(j["route"], "relay")
        self.assertEqual(j["reply"]["code"], 250)
        dirs = {l["dir"] for l in j["transcript"]}
        self.assertTrue({">", "<"} <= dirs, j["transcript"])
        self.assertTrue(all(isinstance(l["ms"], int) for l in j["transcript"]))

    def test_reject_at_rcpt(self):
        with smtplab.Sink(args=["-f", "RCPT"]) as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--json")
        j = self.assertOutcome(run, "rejected", "rcpt")
        self.assertEqual(j["reply"]["code"] // 100, 5, run)
        self.assertIn("smtp.rcpt.rejected", self.ids(j))

    def test_defer_at_rcpt(self):
        with smtplab.Sink(args=["-r", "RCPT"]) as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--json")
        j = self.assertOutcome(run, "deferred", "rcpt")
        self.assertEqual(j["reply"]["code"] // 100, 4, run)
        self.assertIn("smtp.rcpt.deferred", self.ids(j))

    def test_refusals_before_the_envelope(self):
        cases = [(["-f", "CONNECT"], "rejected", "banner", "smtp.banner.rejected"),
                 (["-f", "EHLO,HELO"], "rejected", "ehlo", "smtp.ehlo.rejected"),
                 (["-f", "MAIL"], "rejected", "mail", "smtp.mail.rejected"),
                 (["-r", "MAIL"], "deferred", "mail", "smtp.mail.deferred"),
                 (["-f", "."], "rejected", "data", "smtp.data.rejected"),
                 (["-Q", "RCPT"], "deferred", "rcpt", "smtp.rcpt.deferred")]
        for args, result, phase, finding in cases:
            with smtplab.Sink(args=args) as sink:
                for probe in ([], ["--quit-after", "rcpt"]) if phase != "data" else ([],):
                    run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--json", *probe)
                    j = self.assertOutcome(run, result, phase)
                    self.assertIn(finding, self.ids(j), run)

    def test_quit_after_rcpt_sends_nothing(self):
        d = tempfile.mkdtemp(dir=TMP)
        with smtplab.Sink(dump_dir=d) as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--quit-after", "rcpt", "--json")
            time.sleep(0.2)
            dumps = sink.dumps()
        j = self.assertOutcome(run, "accepted", "rcpt")
        self.assertIn("smtp.probe_ok", self.ids(j))
        sent = [l["text"] for l in j["transcript"] if l["dir"] == ">"]
        self.assertNotIn("DATA", sent, run)
        self.assertEqual(sent[-1], "QUIT", run)
        self.assertEqual(dumps, [], "a probe must not deliver")

    def test_quit_after_each_phase(self):
        with smtplab.Sink() as sink:
            for phase in ("connect", "banner", "ehlo", "mail", "rcpt"):
                run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--quit-after", phase, "--json")
                j = self.assertOutcome(run, "accepted", phase)

    def test_count_sends_many(self):
        d = tempfile.mkdtemp(dir=TMP)
        with smtplab.Sink(dump_dir=d) as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--tls", "off", "--to", TO,
                            "--to", "b@example.com", "--count", "3", "--json")
            time.sleep(0.3)
            n = len(sink.dumps())
        self.assertEqual(run.rc, 0, run)
        self.assertEqual(len([l for l in run.out.splitlines() if l.strip()]), 6, run)
        self.assertEqual(n, 6, run)

    def test_dsn(self):
        with smtplab.Sink() as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--dsn", "--json")
        j = self.assertOutcome(run, "accepted", "data")
        sent = [l["text"] for l in j["transcript"] if l["dir"] == ">"]
        mail = [t for t in sent if t.startswith("MAIL FROM")][0]
        rcpt = [t for t in sent if t.startswith("RCPT TO")][0]
        self.assertIn("RET=HDRS", mail, run)
        self.assertIn("ENVID=", mail, run)
        self.assertIn("NOTIFY=SUCCESS,FAILURE,DELAY", rcpt, run)
        self.assertRegex(j["started"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        with smtplab.Sink(args=["-N"]) as sink:   # no DSN offered
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "--dsn", "--json")
        j = self.assertOutcome(run, "accepted", "data")
        self.assertIn("smtp.dsn_unsupported", self.ids(j))

    def test_text_verdict(self):
        with smtplab.Sink() as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--to", TO, "-v")
        # accepted, with the warning that smtp-sink offers no STARTTLS: exit 1, as printed
        self.assertEqual(run.rc, 1, run)
        self.assertIn("user@example.com: WARNING", run.out)
        self.assertRegex(run.out.splitlines()[0], r"^user@example.com: accepted by 127\.0\.0\.1 in \d+ ms$")
        self.assertIn("> MAIL FROM:<noreply@example.com>", run.out)

    def test_connection_refused(self):
        port = mdlab.free_port()
        run = self.send("--server", "127.0.0.1:%d" % port, "--to", TO, "--json")
        j = self.assertOutcome(run, "failed", "connect")
        self.assertIn("smtp.connect.failed", self.ids(j))


class TlsAuthCases(SendCase):
    """aiosmtpd with STARTTLS (certificates made here) and AUTH."""

    @classmethod
    def setUpClass(cls):
        smtplab.aiosmtpd_python()
        cls.pki = pki()
        cls.pwfile = os.path.join(TMP, "pw-%d" % os.getpid())
        with open(cls.pwfile, "w") as f:
            f.write("s3cret-Pa55\n")
        os.chmod(cls.pwfile, 0o600)

    def server(self, cert="good", **kw):
        return smtplab.Aio(cert=self.pki[cert], key=self.pki["key"], user="alice",
                           password_file=self.pwfile, **kw)

    def test_starttls_auth_good(self):
        sni = os.path.join(TMP, "sni-%d.log" % os.getpid())
        with self.server(sni_log=sni) as srv:
            run = self.send("--server", "localhost:%d" % srv.port, "--tls", "required", "--ca-file",
                            self.pki["ca"], "--user", "alice", "--password-file", self.pwfile, "--to", TO, "--json")
        j = self.assertOutcome(run, "accepted", "data")
        self.assertTrue(j["tls"]["used"] and j["tls"]["verified"], j["tls"])
        self.assertEqual(j["tls"]["peer_name"], "localhost")
        self.assertIn("tls.ok", self.ids(j))
        self.assertIn("smtp.auth.ok", self.ids(j))
        self.assertRegex(j["queue_id"] or "", r"^TEST\d+$")
        with open(sni) as f:
            self.assertEqual(f.read().split(), ["localhost"], "SNI sent (libESMTP sends none by itself)")
        text = run.out
        for secret in ("s3cret-Pa55", base64.b64encode(b"s3cret-Pa55").decode(),
                       base64.b64encode(b"\0alice\0s3cret-Pa55").decode()):
            self.assertNotIn(secret, text, "secret in the transcript")

    def test_password_from_env(self):
        with self.server() as srv:
            run = self.send("--server", "localhost:%d" % srv.port, "--ca-file", self.pki["ca"], "--user", "alice",
                            "--to", TO, "--json", env={"MAILDIAG_SMTP_PASSWORD": "s3cret-Pa55"})
        self.assertOutcome(run, "accepted", "data")

    def test_bad_password_is_auth_failure(self):
        bad = os.path.join(TMP, "bad-pw")
        with open(bad, "w") as f:
            f.write("wrong\n")
        os.chmod(bad, 0o600)
        with self.server(save_dir=tempfile.mkdtemp(dir=TMP)) as srv:
            for probe in ([], ["--quit-after", "auth"]):
                run = self.send("--server", "localhost:%d" % srv.port, "--ca-file", self.pki["ca"], "--user", "alice",
                                "--password-file", bad, "--to", TO, "--json", *probe)
                j = self.assertOutcome(run, "failed", "auth")
                self.assertIn("smtp.auth.failed", self.ids(j))
                self.assertEqual(j["reply"]["code"], 535, run)
                self.assertNotIn("MAIL FROM", " ".join(l["text"] for l in j["transcript"]),
                                 "must not go on unauthenticated")
                self.assertNotIn("wrong", run.out)

    def test_auth_login_only(self):
        bad = os.path.join(TMP, "bad-pw2")
        with open(bad, "w") as f:
            f.write("wrong\n")
        os.chmod(bad, 0o600)
        with self.server(login_only=True) as srv:
            for probe in ([], ["--quit-after", "auth"], ["--quit-after", "rcpt"]):
                run = self.send("--server", "localhost:%d" % srv.port, "--ca-file", self.pki["ca"], "--user", "alice",
                                "--password-file", self.pwfile, "--to", TO, "--json", *probe)
                j = self.assertOutcome(run, "accepted")
                self.assertIn("smtp.auth.ok", self.ids(j))
                self.assertIn("AUTH LOGIN", " ".join(l["text"] for l in j["transcript"]))
                run = self.send("--server", "localhost:%d" % srv.port, "--ca-file", self.pki["ca"], "--user", "alice",
                                "--password-file", bad, "--to", TO, "--json", *probe)
                j = self.assertOutcome(run, "failed", "auth")
                self.assertIn("smtp.auth.failed", self.ids(j))

    def test_loose_password_file_refused(self):
        loose = os.path.join(TMP, "loose-pw")
        with open(loose, "w") as f:
            f.write("x\n")
        os.chmod(loose, 0o644)
        run = self.send("--server", "localhost:1", "--user", "alice", "--password-file", loose, "--to", TO)
        self.assertEqual(run.rc, 3, run)
        self.assertIn("readable by other users", run.err)

    def test_name_mismatch(self):
        with self.server(cert="wrongname") as srv:
            run = self.send("--server", "localhost:%d" % srv.port, "--tls", "required", "--ca-file", self.pki["ca"],
                            "--to", TO, "--json")
        j = self.assertOutcome(run, "failed", "starttls")
        self.assertIn("tls.cert_name_mismatch", self.ids(j))
        self.assertNotIn("MAIL FROM", " ".join(l["text"] for l in j["transcript"]))

    def test_expired_certificate(self):
        with self.server(cert="expired") as srv:
            for probe in ([], ["--quit-after", "starttls"]):
                run = self.send("--server", "localhost:%d" % srv.port, "--tls", "required", "--ca-file",
                                self.pki["ca"], "--to", TO, "--json", *probe)
                j = self.assertOutcome(run, "failed", "starttls")
                self.assertIn("tls.cert_expired", self.ids(j))
                self.assertTrue(j["tls"]["not_after"], j["tls"])

    def test_unknown_ca_and_insecure(self):
        with self.server() as srv:
            run = self.send("--server", "localhost:%d" % srv.port, "--tls", "required", "--to", TO, "--json")
            j = self.assertOutcome(run, "failed", "starttls")
            self.assertIn("tls.cert_unknown_ca", self.ids(j))
            run = self.send("--server", "localhost:%d" % srv.port, "--tls", "required", "--insecure",
                            "--user", "alice", "--password-file", self.pwfile, "--to", TO, "--json")
            j = self.assertOutcome(run, "accepted", "data")
            self.assertIn("tls.cert_unverified", self.ids(j))

    def test_many_tls_sessions_one_process(self):
        # libESMTP 1.1.0 crashes on the second STARTTLS session with its own SSL_CTX.
        with self.server() as srv:
            run = self.send("--server", "localhost:%d" % srv.port, "--ca-file", self.pki["ca"], "--user", "alice",
                            "--password-file", self.pwfile, "--to", TO, "--count", "3", "--json")
        self.assertEqual(run.rc, 0, run)
        self.assertEqual([json.loads(l)["result"] for l in run.out.splitlines()], ["accepted"] * 3)

    def test_tls_required_not_offered(self):
        with smtplab.Sink() as sink:
            run = self.send("--server", "127.0.0.1:%d" % sink.port, "--tls", "required", "--to", TO, "--json")
        j = self.assertOutcome(run, "failed", "starttls")
        self.assertIn("tls.not_offered", self.ids(j))

    def test_exact_bytes_crlf(self):
        save = tempfile.mkdtemp(dir=TMP)
        saved = os.path.join(TMP, "sent-crlf.eml")
        with smtplab.Aio(save_dir=save) as srv:
            run = self.send("--server", "127.0.0.1:%d" % srv.port, "--to", TO, "-T", "username",
                            "--username", "alice", "--username", "al\u00efce.work", "--save-message", saved, "--json")
            self.assertOutcome(run, "accepted", "data")
            time.sleep(0.2)
        with open(saved, "rb") as f:
            sent = f.read()
        with open(os.path.join(save, "1.eml"), "rb") as f:
            got = f.read()
        self.assertEqual(got, sent, "aiosmtpd received other bytes than composed")

    def test_550_511_explained(self):
        with smtplab.Aio(rcpt_reply="550 5.1.1 <user@example.com>: Recipient address rejected: User unknown") as srv:
            run = self.send("--server", "127.0.0.1:%d" % srv.port, "--to", TO, "--json")
        j = self.assertOutcome(run, "rejected", "rcpt")
        self.assertEqual((j["reply"]["code"], j["reply"]["enhanced"]), (550, "5.1.1"))
        self.assertIn("no such mailbox", j["reply"]["explanation"])

    def test_greylisting(self):
        with smtplab.Aio(rcpt_reply="451 4.7.1 Greylisted, please try again later") as srv:
            run = self.send("--server", "127.0.0.1:%d" % srv.port, "--to", TO, "--json")
        j = self.assertOutcome(run, "deferred", "rcpt")
        self.assertTrue(j.get("greylisted"), j)
        self.assertIn("smtp.greylisted", self.ids(j))


class DirectCases(SendCase):
    """Direct to the MX hosts of the DNS lab zone send.test."""

    @classmethod
    def setUpClass(cls):
        # The MX hosts listen on a loopback port, not 25: lib/smtp's test hook.
        mdlab.require_test_hooks("MAILDIAG_SMTP_PORT")
        cls.nsd = mdlab.Nsd({"send.test": mdlab.zone_path("send.test.zone")}, workdir=tempfile.mkdtemp(dir=TMP))
        cls.nsd.start()
        cls.port = mdlab.free_port()
        cls.ok_dir = tempfile.mkdtemp(dir=TMP)
        cls.sinks = [smtplab.Sink(port=cls.port, dump_dir=cls.ok_dir).start(),
                     smtplab.Sink(port=cls.port, host="127.0.0.3", args=["-r", "RCPT"]).start(),
                     smtplab.Sink(port=cls.port, host="127.0.0.4", args=["-f", "RCPT"]).start()]

    @classmethod
    def tearDownClass(cls):
        for s in cls.sinks:
            s.stop()
        cls.nsd.stop()

    def direct(self, to):
        return self.send("--direct", "--allow-internal", "--resolver", self.nsd.resolver, "--to", to, "--json",
                         "--timeout", "10", env={"MAILDIAG_SMTP_PORT": str(self.port)})

    def test_first_refuses_second_accepts(self):
        run = self.direct("user@refused.send.test")
        j = self.assertOutcome(run, "accepted", "data")
        self.assertEqual(j["route"], "direct")
        self.assertEqual(j["host"], "mx2.refused.send.test")
        self.assertIn("smtp.host_failed", self.ids(j))
        self.assertIn("127.0.0.2", " ".join(l["text"] for l in j["transcript"]))

    def test_first_defers_second_accepts(self):
        run = self.direct("user@tempfail.send.test")
        j = self.assertOutcome(run, "accepted", "data")
        self.assertEqual(j["host"], "mx2.tempfail.send.test")

    def test_5xx_stops(self):
        run = self.direct("user@hardfail.send.test")
        j = self.assertOutcome(run, "rejected", "rcpt")
        self.assertEqual(j["host"], "mx1.hardfail.send.test")
        self.assertNotIn("127.0.0.1:", " ".join(l["text"] for l in j["transcript"]))

    def test_internal_mx_refused(self):
        # Without --allow-internal an MX on 127.0.0.x is refused: nothing is sent.
        before = len(os.listdir(self.ok_dir))
        for probe in ([], ["--quit-after", "rcpt"]):
            run = self.send("--direct", "--resolver", self.nsd.resolver, "--to", "user@refused.send.test", "--json",
                            "--timeout", "10", *probe, env={"MAILDIAG_SMTP_PORT": str(self.port)})
            j = self.assertOutcome(run, "failed", "resolve")
            self.assertIn("mx.target_internal", self.ids(j))
            self.assertIn("127.0.0.1", json.dumps(j["findings"]))
            self.assertFalse([l for l in j["transcript"] if l["dir"] in "<>"], j["transcript"])
        time.sleep(0.2)
        self.assertEqual(len(os.listdir(self.ok_dir)), before)

    def test_null_mx(self):
        run = self.direct("user@nullmx.send.test")
        j = self.assertOutcome(run, "failed", "resolve")
        self.assertIn("mx.null", self.ids(j))


class HostileCases(SendCase):
    """Each bad server behaviour ends inside the deadline with the right finding."""

    def hostile(self, mode, *extra, timeout="3"):
        with smtplab.Hostile(mode) as h:
            run = self.send("--server", "127.0.0.1:%d" % h.port, "--to", TO, "--timeout", timeout, "--json",
                            *extra, timeout=20)
        return run

    def check(self, mode, finding, phase=None, extra=()):
        for probe in ([], ["--quit-after", "rcpt"]):
            run = self.hostile(mode, *(list(extra) + probe))
            self.assertLess(run.elapsed, 5.0, "took too long\n%s" % run)
            j = self.assertOutcome(run, "failed", phase)
            self.assertIn(finding, self.ids(j), run)

    def test_connect_timeout(self):
        with smtplab.SynHang() as sh:
            for probe in ([], ["--quit-after", "banner"]):
                run = self.send("--server", "127.0.0.1:%d" % sh.port, "--to", TO, "--timeout", "2", "--json",
                                *probe, timeout=20)
                self.assertLess(run.elapsed, 4.0, "took too long\n%s" % run)
                j = self.assertOutcome(run, "failed", "connect")
                self.assertIn("smtp.connect.timeout", self.ids(j))

    def test_hang(self):
        self.check("hang", "smtp.timeout", "banner")

    def test_drop_mid_data(self):
        run = self.hostile("drop_data")
        j = self.assertOutcome(run, "failed", "data")
        self.assertIn("smtp.dropped", self.ids(j))

    def test_garbage(self):
        self.check("garbage", "smtp.protocol", "banner")

    def test_one_megabyte_line(self):
        self.check("longline", "smtp.protocol", "banner")

    def test_one_byte_per_second(self):
        self.check("slow", "smtp.timeout", "banner")

    def test_engine_crash_is_engine_failed(self):
        # libESMTP runs in a child process; a crash there (here: SIGSEGV sent to
        # it while it waits for a greeting) is smtp.engine_failed, at once.
        import signal
        import subprocess
        with smtplab.Hostile("hang") as h:
            argv = [mdlab.tool_path("maildiag-send"), "--from", FROM, "--server", "127.0.0.1:%d" % h.port,
                    "--to", TO, "--timeout", "20", "--json"]
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=mdlab.tool_env())
            child, end = None, time.monotonic() + 10
            while child is None and time.monotonic() < end:
                for pid in os.listdir("/proc"):
                    try:
                        with open("/proc/%s/stat" % pid) as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                    except (OSError, IndexError):
                        continue
                    if pid.isdigit() and int(fields[1]) == p.pid and h.connections > 0:
                        child = int(pid)
                time.sleep(0.02)
            self.assertIsNotNone(child, "no engine child found")
            t0 = time.monotonic()
            os.kill(child, signal.SIGSEGV)
            out, err = p.communicate(timeout=20)
        self.assertLess(time.monotonic() - t0, 5)
        j = json.loads(out)
        self.assertEqual((j["result"], p.returncode), ("failed", 2), out)
        self.assertIn("smtp.engine_failed", self.ids(j))
        # signal 11; under AddressSanitizer, whose handler reports it, exit status 1
        self.assertRegex(json.dumps(j), r"libESMTP's process (died of signal 11|exited with status 1)")

    def test_greylisting_recognised(self):
        run = self.hostile("greylist")
        j = self.assertOutcome(run, "deferred", "rcpt")
        self.assertIn("smtp.greylisted", self.ids(j))


class InjectionCases(SendCase):
    """Nothing the user gives reaches the wire as a command of its own."""

    def test_ehlo_name_injection(self):
        bad = "client.example\r\nRCPT TO:<injected@victim.example>"
        for value in (bad, "client.example\nRSET", "client example", "-client.example", "client..example",
                      "[300.1.2.3]", "client.example\x01", "\u00e9.example"):
            with smtplab.Hostile("record") as h:
                for probe in ([], ["--quit-after", "rcpt"]):
                    run = self.send("--server", "127.0.0.1:%d" % h.port, "--tls", "off", "--to", TO,
                                    "--helo", value, *probe)
                    self.assertEqual(run.rc, 3, run)
                    self.assertIn("EHLO name", run.err)
                time.sleep(0.1)
                self.assertEqual((h.connections, h.lines), (0, []), "nothing may reach the server")
        with smtplab.Hostile("record") as h:
            for value in ("client.example", "[127.0.0.1]", "[IPv6:::1]", "a-b.c0.example"):
                run = self.send("--server", "127.0.0.1:%d" % h.port, "--tls", "off", "--to", TO, "--helo", value)
                self.assertEqual(run.rc, 0, run)
            time.sleep(0.1)
            self.assertEqual([l for l in h.lines if l.startswith(b"EHLO")],
                             [b"EHLO client.example", b"EHLO [127.0.0.1]", b"EHLO [IPv6:::1]", b"EHLO a-b.c0.example"])
            self.assertFalse([l for l in h.lines if b"injected" in l])

    def test_envelope_and_auth_user_injection(self):
        with smtplab.Hostile("record") as h:
            for args in (["--to", TO, "--user", "bob\r\nMAIL FROM:<x@y>"],
                         ["--to", TO, "--from", "a@example.com\r\nRCPT TO:<injected@victim.example>"]):
                for probe in ([], ["--quit-after", "rcpt"]):
                    run = self.send("--server", "127.0.0.1:%d" % h.port, "--tls", "off", *args, *probe,
                                    env={"MAILDIAG_SMTP_PASSWORD": "pw"})
                    self.assertEqual(run.rc, 3, run)
            time.sleep(0.1)
            self.assertEqual(h.connections, 0)


class AuthCases(SendCase):
    """AUTH is done only when the server says 235, with a mechanism it offers;
    with a user configured nothing goes out unauthenticated."""

    def auth(self, mode, *extra):
        out = []
        with smtplab.Hostile(mode) as h:
            for probe in ([], ["--quit-after", "rcpt"], ["--quit-after", "auth"]):
                run = self.send("--server", "127.0.0.1:%d" % h.port, "--tls", "off", "--to", TO, "--user", "bob",
                                "--json", *extra, *probe, env={"MAILDIAG_SMTP_PASSWORD": "s3cret"})
                out.append((run, self.result(run)))
            time.sleep(0.1)
            lines = list(h.lines)
        self.assertFalse([l for l in lines if l.upper().startswith((b"MAIL", b"RCPT", b"DATA", b"BDAT"))],
                         "nothing may be sent unauthenticated: %r" % lines)
        return out, lines

    def test_no_common_mechanism(self):
        out, lines = self.auth("auth_cram")
        for run, j in out:
            self.assertOutcome(run, "failed", "auth")
            self.assertIn("smtp.auth.unavailable", self.ids(j), run)
            self.assertNotIn("smtp.auth.ok", self.ids(j))
            self.assertIn("CRAM-MD5", json.dumps(j["findings"]))
        # only offered mechanisms: no AUTH LOGIN (or any AUTH) to a CRAM-MD5-only server
        self.assertFalse([l for l in lines if l.upper().startswith(b"AUTH")], lines)

    def test_challenge_then_close(self):
        out, _ = self.auth("auth_close334")
        for run, j in out:
            self.assertOutcome(run, "failed", "auth")
            self.assertIn("smtp.auth.failed", self.ids(j), run)
            self.assertNotIn("smtp.auth.ok", self.ids(j), run)

    def test_250_is_not_235(self):
        out, _ = self.auth("auth_250")
        for run, j in out:
            self.assertOutcome(run, "failed", "auth")
            self.assertIn("smtp.auth.failed", self.ids(j), run)
            self.assertNotIn("smtp.auth.ok", self.ids(j), run)
            self.assertIn("235", json.dumps(j["findings"]))

    def test_no_auth_offered(self):
        out, lines = self.auth("record")
        for run, j in out:
            self.assertOutcome(run, "failed", "auth")
            self.assertIn("smtp.auth.not_offered", self.ids(j), run)


class DesyncCases(SendCase):
    """Replies matched to commands by count and class: extra lines after the
    greeting are a protocol error, not the answers to our commands."""

    def test_extra_lines_after_banner(self):
        with smtplab.Hostile("extra_banner") as h:
            for probe in ([], ["--quit-after", "rcpt"], ["--quit-after", "mail"]):
                run = self.send("--server", "127.0.0.1:%d" % h.port, "--tls", "off", "--to", TO, "--json", *probe)
                j = self.assertOutcome(run, "failed")
                self.assertIn("smtp.protocol", self.ids(j), run)
                self.assertNotIn("smtp.probe_ok", self.ids(j), run)
            time.sleep(0.1)
            self.assertFalse([l for l in h.lines if l.startswith((b"MAIL", b"RCPT"))], h.lines)


class MessageCases(SendCase):

    def test_dry_run_prints_message(self):
        run = self.send("--dry-run", "--to", TO, "-T", "verify")
        self.assertEqual(run.rc, 0, run)
        self.assertIn("X-Maildiag-Test: yes", run.out)
        self.assertIn("Auto-Submitted: auto-generated", run.out)
        self.assertIn("test link", run.out.replace("=\n", ""))

    def test_header_injection_refused(self):
        for args in (["--to", "a@example.com\r\nBcc: x@example.net"], ["--to", TO, "--from-name", "x\nBcc: y@example.net"],
                     ["--to", TO, "--product", "p\r\nBcc: z@example.net"]):
            run = self.send("--dry-run", *args)
            self.assertEqual(run.rc, 3, run)
            self.assertNotIn("Bcc:", run.out, run)

    # Ill-formed UTF-8 (Markus Kuhn's stress-test categories) and a C1 control.
    BAD_UTF8 = {"surrogate": b"\xed\xa0\x80", "overlong CR": b"\xe0\x80\x8d",
                "over U+10FFFF": b"\xf4\x90\x80\x80", "cut short": b"\xe2\x82",
                "stray continuation": b"\x80", "FE": b"\xfe", "C1 CSI": b"\xc2\x9b"}

    def assertRefused(self, run, field, what):
        self.assertEqual(run.rc, 3, "%s: %s\n%s" % (field, what, run))
        self.assertEqual(run.out, "", "nothing composed: %s: %s\n%s" % (field, what, run))
        self.assertIn(field, run.err, "%s: %s\n%s" % (field, what, run))
        self.assertTrue("UTF-8" in run.err or "control" in run.err,
                        "a clear reason: %s: %s\n%s" % (field, what, run))

    def test_invalid_utf8_refused(self):
        for what, raw in self.BAD_UTF8.items():
            v = os.fsdecode(b"x" + raw + b"y")
            for opt, field in (("--product", "product"), ("--username", "username"),
                               ("--from-name", "from_name")):
                run = self.send("--dry-run", "--to", TO, "-T", "verify", opt, v)
                self.assertRefused(run, field, what)
            run = self.send("--dry-run", "--to", os.fsdecode(b"u" + raw + b"@example.com"))
            self.assertRefused(run, "--to", what)

    def test_invalid_utf8_template_refused(self):
        for what, raw in self.BAD_UTF8.items():
            d = tempfile.mkdtemp(dir=TMP)
            for ext in ("subject", "txt", "html"):
                with open(os.path.join(d, "plain." + ext), "wb") as f:
                    f.write(b"Hello {{to}}\n" + (b"line " + raw + b"\n" if ext != "subject" else b""))
                run = self.send("--dry-run", "--to", TO, "--template-dir", d)
                if ext == "subject":
                    self.assertEqual(run.rc, 0, run)
                    with open(os.path.join(d, "plain.subject"), "wb") as f:
                        f.write(b"Hi " + raw + b"\n")
                    run = self.send("--dry-run", "--to", TO, "--template-dir", d)
                self.assertRefused(run, "plain." + ext, what)
                if ext != "subject":
                    self.assertIn("line 2", run.err, run)
                os.unlink(os.path.join(d, "plain." + ext))

    def test_error_echo_is_escaped(self):
        path = os.path.join(TMP, "rcpts.txt")
        with open(path, "wb") as f:
            f.write(b"ok@example.com\n\x1b]0;pwn\x07@example.com\nc1\xc2\x9b@example.com\n"
                    b"bad\xed\xa0\x80@example.com\n")
        p = subprocess.run([mdlab.tool_path("maildiag-send"), "--from", FROM, "--dry-run", "--file", path],
                           capture_output=True, timeout=30, env=mdlab.tool_env())
        self.assertEqual(p.returncode, 3, p.stderr)
        unsafe = [b for b in p.stderr if (b < 0x20 and b != 0x0a) or b == 0x7f]
        unsafe += [p.stderr[i + 1] for i in range(len(p.stderr) - 1)
                   if p.stderr[i] == 0xc2 and 0x80 <= p.stderr[i + 1] <= 0x9f]
        self.assertEqual(unsafe, [], p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 3, p.stderr)
        self.assertIn(b"?]0;pwn?@example.com", p.stderr)
        p.stderr.decode("utf-8")   # well-formed: the surrogate became '?'

    def test_valid_utf8_kept(self):
        run = self.send("--dry-run", "--to", TO, "-T", "verify", "--product", "B\u00fccher \U0001f4da",
                        "--from-name", "\u00c9quipe", "--username", "j\u00f6rg")
        self.assertEqual(run.rc, 0, run)
        self.assertIn("=?UTF-8?B?", run.out, run)

    def test_usage_errors(self):
        for args in ([], ["--to", TO], ["--to", TO, "--server", "x", "--direct"], ["--to", TO, "-T", "nope", "--dry-run"],
                     ["--to", TO, "--server", "[::1]:25"], ["--to", TO, "--server", "h", "--quit-after", "data"]):
            run = self.send(*args)
            self.assertEqual(run.rc, 3, run)


class TokenCases(unittest.TestCase):

    def token(self, *args, env=None):
        return mdlab.run_tool([mdlab.tool_path("maildiag-token")] + list(args), env=env)

    def test_issue_verify_cycle(self):
        keys = os.path.join(TMP, "keys")
        with open(keys, "w") as f:
            f.write("# test keys\n" + "ab" * 32 + "\n")
        os.chmod(keys, 0o600)
        t = self.token("issue", "-k", keys, "--kind", "reset", "--account", "42", "--ttl", "60", "--now", "1000")
        self.assertEqual(t.rc, 0, t)
        tok = t.out.strip()
        cases = [(["--now", "1030"], 0, "valid"), (["--now", "1060"], 2, "expired"),
                 (["--now", "500"], 2, "not_yet_valid"), (["--now", "1030", "--kind", "verify"], 2, "wrong_kind")]
        for extra, rc, verdict in cases:
            r = self.token("verify", "-k", keys, "--json", tok, *extra)
            self.assertEqual(r.rc, rc, r)
            self.assertEqual(json.loads(r.out)["verdict"], verdict, r)
        r = self.token("verify", "--json", tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"),
                       env={"MAILDIAG_TOKEN_KEYS": keys})
        self.assertEqual(json.loads(r.out)["verdict"], "bad_signature", r)
        os.chmod(keys, 0o644)
        r = self.token("verify", "-k", keys, tok)
        self.assertEqual(r.rc, 3, r)
        self.assertIn("permissions", r.err)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
