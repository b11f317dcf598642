#!/usr/bin/env python3
"""Unix manners shared by the tools: a closed pipe ends a run quietly, SIGINT and
SIGTERM end a bulk run at a complete line with a summary on stderr and exit
130/143 (maildiag-mx, -spf, -send --count/--file, maildiag-user import, whose
import rolls back whole, and bounces), empty input is UNKNOWN (never green), a
progress line goes to stderr when it is a terminal, TERM=dumb turns colour off,
and the dispatcher treats an option where a tool name belongs as a usage error.

DNS comes from the scripted responder (tests/lab/dnsscript.py), SMTP from
Postfix's smtp-sink, both on 127.0.0.1.
Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import pty
import select
import signal
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
import smtplab  # noqa: E402

# fast.manners.test answers at once (healthy MX); *.slow.manners.test never
# answers, so a run over them is still busy when the signal comes.
RULES = [
    ("fast.manners.test", "MX", "answer", [("MX", 10, "mx.fast.manners.test")]),
    ("mx.fast.manners.test", "A", "answer", [("A", "192.0.2.10")]),
    ("mx.fast.manners.test", "AAAA", "nodata"),
    (".fast.manners.test", "MX", "answer", [("MX", 10, "mx.fast.manners.test")]),
    ("fast.manners.test", "TXT", "answer", [("TXT", "v=spf1 ip4:192.0.2.0/24 -all")]),
    (".slow.manners.test", "*", "hang"),
]


def popen(argv, env=None, **kw):
    return subprocess.Popen(argv, env=mdlab.tool_env(env), **kw)


class Manners(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mx = mdlab.tool_path("maildiag-mx")
        cls.spf = mdlab.tool_path("maildiag-spf")
        cls.dispatcher = mdlab.tool_path("maildiag")
        cls.dns = mdlab.ScriptedDns(RULES)
        cls.dns.start()
        cls.tmp = tempfile.TemporaryDirectory(prefix="md-manners-")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.tmp.cleanup()

    def write(self, name, lines):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    # ------------------------------------------------------------ closed pipe

    def closed_pipe(self, argv):
        """Reads one line of argv's stdout, closes the pipe, and returns the
        process's exit status and stderr."""
        p = popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = p.stdout.readline()
        self.assertTrue(first, "no output at all from %s" % argv)
        p.stdout.close()
        try:
            err = p.stderr.read()
            rc = p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return rc, err.decode("utf-8", "replace")

    def test_mx_closed_pipe_is_quiet(self):
        names = ["d%05d.fast.manners.test" % i for i in range(20000)]
        path = self.write("mx-many.txt", names)
        rc, err = self.closed_pipe([self.mx, "-r", self.dns.resolver, "--json", "--file", path])
        self.assertEqual(err, "", "a closed pipe must end quietly; stderr: %r" % err)
        self.assertEqual(rc, -signal.SIGPIPE, "ends by SIGPIPE as cat does (rc %r)" % rc)

    def test_spf_closed_pipe_is_quiet(self):
        lines = ["192.0.2.%d user%d@fast.manners.test" % (i % 250 + 1, i) for i in range(6000)]
        path = self.write("spf-many.txt", lines)
        rc, err = self.closed_pipe([self.spf, "-r", self.dns.resolver, "--json", "--no-libspf2",
                                    "--file", path])
        self.assertEqual(err, "", "a closed pipe must end quietly; stderr: %r" % err)
        self.assertEqual(rc, -signal.SIGPIPE, "ends by SIGPIPE as cat does (rc %r)" % rc)

    # ------------------------------------------------------------ signals

    def interrupted(self, argv, sig, want_rc, what, at_least):
        p = popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the fast items finish within a moment, the slow ones never do (their
        # timeout is 30 s): the signal comes while the run is busy (stdout to
        # a pipe is block buffered, so the results are read after the
        # signal).  4 s leaves a loaded machine time to finish the fast ones.
        time.sleep(4.0)
        self.assertIsNone(p.poll(), "the run ended before the signal")
        out = b""
        t0 = time.monotonic()
        p.send_signal(sig)
        try:
            rest, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        took = time.monotonic() - t0
        out += rest
        err = err.decode("utf-8", "replace")
        self.assertEqual(p.returncode, want_rc, "exit after %s: %s; stderr %r" % (sig, p.returncode, err))
        self.assertLess(took, 5.0, "the run must stop promptly (took %.1f s)" % took)
        self.assertTrue(out.endswith(b"\n"), "output ends in the middle of a line: %r" % out[-200:])
        lines = out.decode().splitlines()
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except ValueError:
                self.fail("line %d is not a complete JSON object: %r" % (i + 1, line))
        self.assertIn("interrupted by %s" % ("SIGINT" if sig == signal.SIGINT else "SIGTERM"), err)
        self.assertIn("after %d %s" % (len(lines), what), err)
        self.assertGreaterEqual(len(lines), at_least, "the finished results must all be there")
        return lines

    def mx_bulk_file(self):
        # fast names first, then names that never answer: the run is still busy
        names = ["f%04d.fast.manners.test" % i for i in range(50)]
        names += ["s%05d.slow.manners.test" % i for i in range(200)]
        return self.write("mx-mixed.txt", names)

    def test_mx_sigint_ends_at_a_complete_line(self):
        self.interrupted([self.mx, "-r", self.dns.resolver, "-t", "30", "--json",
                          "--file", self.mx_bulk_file()], signal.SIGINT, 130, "domains", 1)

    def test_mx_sigterm_exit_143(self):
        self.interrupted([self.mx, "-r", self.dns.resolver, "-t", "30", "--json",
                          "--file", self.mx_bulk_file()], signal.SIGTERM, 143, "domains", 1)

    def test_spf_sigint_ends_at_a_complete_line(self):
        lines = ["192.0.2.1 a%d@fast.manners.test" % i for i in range(40)]
        lines += ["192.0.2.1 b%d@s%d.slow.manners.test" % (i, i) for i in range(500)]
        path = self.write("spf-mixed.txt", lines)
        self.interrupted([self.spf, "-r", self.dns.resolver, "-t", "30", "--deadline", "60",
                          "--no-libspf2", "--json", "--file", path],
                         signal.SIGINT, 130, "results", 40)
        # no worker outlives the tool
        time.sleep(0.2)
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        self.assertNotIn(path, ps, "an SPF worker survived the interrupt:\n%s" % ps)

    # ------------------------------------------------------------ empty input

    def test_empty_input_is_unknown(self):
        for argv in ([self.mx, "--plugin", "--file", "/dev/null"],
                     [self.mx, "--json", "--file", "/dev/null"],
                     [self.mx, "--file", "/dev/null"],
                     [self.spf, "--file", "/dev/null"]):
            run = mdlab.run_tool(argv + ["-r", self.dns.resolver])
            self.assertEqual(run.rc, 3, "nothing checked must be UNKNOWN\n%s" % run)
            self.assertNotIn("OK", run.out, run)
        run = mdlab.run_tool([self.mx, "--plugin", "--file", "/dev/null", "-r", self.dns.resolver])
        self.assertTrue(run.out.startswith("MX UNKNOWN - "), run)

    # ------------------------------------------------------------ colour

    def on_tty(self, argv, env):
        """Runs argv with stdout on a pseudo-terminal; returns what it printed."""
        master, slave = pty.openpty()
        e = mdlab.tool_env(env)
        e.pop("NO_COLOR", None)
        p = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, env=e)
        os.close(slave)
        out = b""
        while True:
            try:
                r, _, _ = select.select([master], [], [], 10)
                if not r:
                    break
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=10)
        os.close(master)
        return out

    def test_term_dumb_has_no_colour(self):
        argv = [self.mx, "-r", self.dns.resolver, "fast.manners.test"]
        coloured = self.on_tty(argv, {"TERM": "xterm"})
        self.assertIn(b"\x1b[", coloured, "a colour terminal gets colour (control check)")
        dumb = self.on_tty(argv, {"TERM": "dumb"})
        self.assertIn(b"fast.manners.test", dumb)
        self.assertNotIn(b"\x1b[", dumb, "TERM=dumb must get no escape sequences: %r" % dumb)

    # ------------------------------------------------------------ maildiag-send

    def send_argv(self, port, *extra):
        return [mdlab.tool_path("maildiag-send"), "--from", "noreply@example.com", "--server",
                "127.0.0.1:%d" % port, "--tls", "off", "--to", "a@example.com", "--json"] + list(extra)

    def test_send_closed_pipe_is_quiet_and_stops(self):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        with smtplab.Sink(dump_dir=d) as sink:
            rc, err = self.closed_pipe(self.send_argv(sink.port, "--count", "300"))
            time.sleep(0.3)
            sent = len(sink.dumps())
        self.assertEqual(err, "", "a closed pipe must end quietly; stderr: %r" % err)
        self.assertEqual(rc, -signal.SIGPIPE, "ends by SIGPIPE as cat does (rc %r)" % rc)
        self.assertLess(sent, 300, "sending must stop when nobody reads the results")

    def test_send_sigint_ends_at_a_complete_line(self):
        # smtp-sink waits a second before it answers DATA: the run is busy when the signal comes
        with smtplab.Sink(args=["-w", "1"]) as sink:
            for sig, want in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
                with self.subTest(sig=sig):
                    self.interrupted(self.send_argv(sink.port, "--count", "20"), sig, want, "sends", 1)

    def test_send_empty_input_is_unknown(self):
        for argv in ([], ["--json"], ["--plugin"]):
            run = mdlab.run_tool([mdlab.tool_path("maildiag-send"), "--server", "127.0.0.1:1", "--file",
                                  "/dev/null"] + argv)
            self.assertEqual(run.rc, 3, "nothing sent must be UNKNOWN\n%s" % run)
            self.assertNotIn("OK", run.out, run)

    def test_send_progress_on_a_terminal(self):
        with smtplab.Sink() as sink:
            err = self.stderr_on_tty(self.send_argv(sink.port, "--count", "3"))
        self.assertIn(b"sends done", err)
        with smtplab.Sink() as sink:   # not a terminal: no progress line
            run = mdlab.run_tool(self.send_argv(sink.port, "--count", "3"))
        self.assertNotIn("sends done", run.err)

    # ------------------------------------------------------------ maildiag-user import, bounces

    def new_store(self):
        uri = "sqlite:" + os.path.join(tempfile.mkdtemp(dir=self.tmp.name), "store.db")
        run = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "init"])
        self.assertEqual(run.rc, 0, run)
        return uri

    def test_import_sigint_rolls_back_whole(self):
        for sig, want in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(sig=sig):
                uri = self.new_store()
                p = popen([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "import", "-"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                # half of the file, then the signal while the import waits for the rest
                p.stdin.write(b"username,email\n" + b"".join(b"u%d,u%d@corp.test\n" % (i, i) for i in range(5000)))
                p.stdin.flush()
                time.sleep(1.0)
                self.assertIsNone(p.poll(), "the import ended before the signal")
                p.send_signal(sig)
                try:
                    out, err = p.communicate(timeout=15)
                except BrokenPipeError:
                    out, err = p.stdout.read(), p.stderr.read()
                    p.wait(timeout=15)
                err = err.decode()
                self.assertEqual(p.returncode, want, err)
                self.assertEqual(out, b"", "no result of an import that did not happen")
                self.assertIn("interrupted by %s" % ("SIGINT" if sig == signal.SIGINT else "SIGTERM"), err)
                self.assertIn("nothing was imported", err)
                run = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "--json",
                                      "export"])
                self.assertEqual(run.out.strip().count("\n"), 0, "no account got in:\n%s" % run.out[:500])

    def test_import_progress_on_a_terminal(self):
        uri = self.new_store()
        path = self.write("import.csv", ["username,email"] + ["p%d,p%d@corp.test" % (i, i) for i in range(20000)])
        err = self.stderr_on_tty([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "import", path])
        self.assertIn(b"import: ", err)
        self.assertIn(b"MB read", err)

    def test_export_closed_pipe_is_quiet(self):
        uri = self.new_store()
        path = self.write("export.csv", ["username,email"] + ["e%d,e%d@corp.test" % (i, i) for i in range(20000)])
        run = mdlab.run_tool([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "import", path])
        self.assertEqual(run.rc, 0, run)
        rc, err = self.closed_pipe([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--store", uri, "export"])
        self.assertEqual(err, "", "a closed pipe must end quietly; stderr: %r" % err)
        self.assertEqual(rc, -signal.SIGPIPE, "ends by SIGPIPE as cat does (rc %r)" % rc)

    def test_bounces_sigint(self):
        # a message file that is a pipe nobody writes to: the run waits there for the signal
        fifo = os.path.join(self.tmp.name, "bounce.fifo")
        os.mkfifo(fifo)
        plain = self.write("plain.eml", ["From: a@example.com", "To: b@example.com", "Subject: hi", "", "hello"])
        p = popen([mdlab.tool_path("maildiag-user"), "-C", "/dev/null", "--json", "bounces", "--file", plain,
                   "--file", fifo], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        self.assertIsNone(p.poll(), "the run ended before the signal")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 130, err)
        j = json.loads(out)   # one complete object: what was done
        self.assertEqual(j["counts"]["not_bounces"], 1, out)
        self.assertIn("interrupted by SIGINT", err.decode())

    def stderr_on_tty(self, argv):
        """Runs argv with stderr on a pseudo-terminal (stdout to a pipe); returns stderr."""
        master, slave = pty.openpty()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=mdlab.tool_env())
        os.close(slave)
        err = b""
        while True:
            try:
                r, _, _ = select.select([master], [], [], 30)
                if not r:
                    break
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        p.communicate(timeout=30)
        os.close(master)
        return err

    # ------------------------------------------------------------ colour in every tool

    def test_term_dumb_every_tool(self):
        for argv in ([self.spf, "-r", self.dns.resolver, "fast.manners.test"],
                     [mdlab.tool_path("maildiag-auth"), "-r", self.dns.resolver, "fast.manners.test"],
                     [mdlab.tool_path("maildiag-send"), "--server", "127.0.0.1:1", "--to", "a@example.com"]):
            with self.subTest(tool=os.path.basename(argv[0])):
                coloured = self.on_tty(argv, {"TERM": "xterm"})
                self.assertIn(b"\x1b[", coloured, "a colour terminal gets colour (control check)")
                dumb = self.on_tty(argv, {"TERM": "dumb"})
                self.assertNotIn(b"\x1b[", dumb, "TERM=dumb must get no escape sequences: %r" % dumb)

    # ------------------------------------------------------------ dispatcher

    def test_dispatcher_option_is_usage_error(self):
        run = mdlab.run_tool([self.dispatcher, "--bogus"])
        self.assertEqual(run.rc, 3, run)
        self.assertIn("unknown option '--bogus'", run.err, run)
        self.assertNotIn("maildiag---bogus", run.err, run)
        run = mdlab.run_tool([self.dispatcher, "-x"])
        self.assertEqual(run.rc, 3, run)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
