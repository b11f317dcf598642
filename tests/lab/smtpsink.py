"""Postfix's smtp-sink on a free 127.0.0.1 port, dumping every message to a
file, for tests that check the emails maildiag sends.

    with SmtpSink(workdir) as sink:
        sink.server                      # "127.0.0.1:PORT"
        msgs = sink.wait_messages(1)     # [{"from", "to", "message": email.message.Message}]
"""

import email
import email.policy
import os
import shutil
import signal
import subprocess
import tempfile
import time

import mdlab

SMTP_SINK = "/usr/sbin/smtp-sink"


class SmtpSink:
    def __init__(self, workdir=None, reject_rcpt=None):
        self.workdir = workdir
        self.reject_rcpt = reject_rcpt
        self.proc = None
        self.dir = None
        self.port = None

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        if not os.access(SMTP_SINK, os.X_OK):
            raise mdlab.LabSkip("%s is not installed (Debian package postfix)" % SMTP_SINK)
        self.dir = tempfile.mkdtemp(prefix="mdlab-sink-", dir=self.workdir)
        os.chmod(self.dir, 0o777)   # smtp-sink writes as nobody
        for _ in range(5):
            self.port = mdlab.free_port()
            argv = [SMTP_SINK, "-u", "nobody", "-h", "sink.test", "-d", os.path.join(self.dir, "%H%M%S.")]
            if self.reject_rcpt:
                argv += ["-f", "rcpt"]
            argv += ["127.0.0.1:%d" % self.port, "64"]
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, start_new_session=True)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    import socket
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                        if s.recv(100).startswith(b"220"):
                            return self
                except OSError:
                    time.sleep(0.05)
            self.stop_process()
        raise mdlab.LabError("smtp-sink did not start")

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                raw = f.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            out.append({"from": msg.get("X-Mail-Args", ""), "to": msg.get_all("X-Rcpt-Args", []),
                        "message": msg, "raw": raw, "file": name})
        return out

    def wait_messages(self, n, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            m = self.messages()
            if len(m) >= n or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def clear(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))

    def stop_process(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)

    def stop(self):
        self.stop_process()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def text_body(msg):
    """The text/plain part of a message, decoded."""
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
