"""SMTP servers for maildiag's send tests, all on loopback, all stopped by pid.

    Sink(port, args, dump_dir)   Postfix's smtp-sink (real server): accept, -f/-r rejects, -d dumps
    Aio(port, ...)               aiosmtpd (python3-aiosmtpd, real server): STARTTLS, AUTH, custom replies
    Hostile(mode)                a scripted server for what real servers never do
    make_pki(dir)                a CA and server certificates (good, wrong name, expired) via openssl

Stdlib only; aiosmtpd runs in a Debian python (/usr/bin/python3) subprocess when the
interpreter running the tests does not have it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import mdlab

LOOPBACK = "127.0.0.1"


def wait_port(host, port, proc=None, timeout=10.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise mdlab.LabError("server exited with %s before listening on %s:%d" % (proc.returncode, host, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise mdlab.LabError("nothing listens on %s:%d after %.0f s" % (host, port, timeout))


def stop_proc(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Sink:
    """smtp-sink on HOST:PORT.  dump_dir gets one file per message (-d)."""

    def __init__(self, port=None, args=(), dump_dir=None, host=LOOPBACK):
        self.bin = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None)
        if self.bin is None:
            raise mdlab.LabSkip("smtp-sink not installed (Debian package postfix)")
        self.host, self.port, self.args, self.dump_dir = host, port or mdlab.free_port(), list(args), dump_dir
        self.proc = None

    def start(self):
        argv = [self.bin, "-h", "sink.send.test"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]   # smtp-sink refuses to run as root
        if self.dump_dir:
            os.chmod(self.dump_dir, 0o777)   # written by nobody
            argv += ["-d", os.path.join(self.dump_dir, "msg.")]
        argv += self.args + ["%s:%d" % (self.host, self.port), "256"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.host, self.port, self.proc)
        return self

    def stop(self):
        stop_proc(self.proc)

    def dumps(self):
        if not self.dump_dir:
            return []
        names = sorted(n for n in os.listdir(self.dump_dir) if n.startswith("msg."))
        out = []
        for n in names:
            with open(os.path.join(self.dump_dir, n), "rb") as f:
                out.append(f.read())
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def aiosmtpd_python():
    """An interpreter that can import aiosmtpd, or LabSkip."""
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return py
    raise mdlab.LabSkip("aiosmtpd not installed (Debian package python3-aiosmtpd)")


class Aio:
    """tests/lab/smtpserver.py (aiosmtpd) on 127.0.0.1:PORT."""

    def __init__(self, port=None, cert=None, key=None, user=None, password_file=None,
                 rcpt_reply=None, save_dir=None, require_starttls=False, login_only=False, sni_log=None):
        self.py = aiosmtpd_python()
        self.port = port or mdlab.free_port()
        self.argv = [self.py, os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtpserver.py"),
                     "--port", str(self.port)]
        if cert:
            self.argv += ["--cert", cert, "--key", key]
        if user:
            self.argv += ["--user", user, "--password-file", password_file]
        if rcpt_reply:
            self.argv += ["--rcpt-reply", rcpt_reply]
        if save_dir:
            self.argv += ["--save", save_dir]
        if require_starttls:
            self.argv += ["--require-starttls"]
        if login_only:
            self.argv += ["--login-only"]
        if sni_log:
            self.argv += ["--sni-log", sni_log]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready"):
            stop_proc(self.proc)
            raise mdlab.LabError("aiosmtpd did not start: %r" % line)
        return self

    def stop(self):
        stop_proc(self.proc)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def make_pki(d):
    """CA + server certificates in d: good.pem (mx.send.test, localhost), wrongname.pem
    (other.send.test), expired.pem (expired yesterday).  Returns a dict of paths."""
    if shutil.which("openssl") is None:
        raise mdlab.LabSkip("openssl not installed")

    def run(*argv):
        p = subprocess.run(["openssl"] + list(argv), cwd=d, capture_output=True)
        if p.returncode != 0:
            raise mdlab.LabError("openssl %s: %s" % (" ".join(argv), p.stderr.decode()))

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "30", "-subj", "/CN=maildiag test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=mx.send.test")
    paths = {"ca": os.path.join(d, "ca.pem"), "key": os.path.join(d, "srv.key")}
    for name, sans, days in (("good", "DNS:mx.send.test,DNS:localhost", "30"),
                             ("wrongname", "DNS:other.send.test", "30"),
                             ("expired", "DNS:mx.send.test,DNS:localhost", "-1")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % sans)
        run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", name + ".pem", "-days", days, "-extfile", name + ".ext")
        paths[name] = os.path.join(d, name + ".pem")
    return paths


class SynHang:
    """A listening socket whose accept queue is full and never drained: the kernel
    drops further SYNs, so a connect() to it hangs (the connect-deadline test)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []

    def start(self):
        for _ in range(4):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect((LOOPBACK, self.port))
            except (BlockingIOError, OSError):
                pass
            self.fill.append(c)
        time.sleep(0.2)
        return self

    def stop(self):
        for c in self.fill:
            c.close()
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Hostile:
    """A scripted SMTP server on 127.0.0.1 doing one bad thing:
    hang (accept, never greet), drop_data (close in the middle of DATA), garbage
    (non-SMTP replies), longline (a 1 MB reply line), slow (greeting at 1 byte a second),
    greylist (450 at RCPT), record (a plain server), auth_cram (offers only AUTH
    CRAM-MD5), auth_close334 (answers AUTH with an empty 334 challenge, then closes),
    auth_250 (answers AUTH with 250 instead of 235), extra_banner (three unsolicited
    250 lines right after the greeting, in the same write).  Every command line a
    client sends is kept, in order, in .lines (bytes), and .connections counts the
    connections.  Each connection is served by a thread; stop() closes all."""

    EHLO = {"auth_cram": b"250-hostile.send.test\r\n250-PIPELINING\r\n250-AUTH CRAM-MD5\r\n250 ENHANCEDSTATUSCODES\r\n",
            "auth_close334": b"250-hostile.send.test\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n",
            "auth_250": b"250-hostile.send.test\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"}

    def __init__(self, mode):
        self.mode = mode
        self.lines = []
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.conns = []
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _lines(self, c):
        buf = b""
        while not self.stopping.is_set():
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                with self.lock:
                    self.lines.append(line)
                yield line

    def _serve(self, c):
        m = self.mode
        try:
            if m == "hang":
                self.stopping.wait(60)
                return
            if m == "garbage":
                c.sendall(b"HELLO? this is not SMTP\r\n")
                self.stopping.wait(60)
                return
            if m == "longline":
                c.sendall(b"220 " + b"x" * (1024 * 1024) + b"\r\n")
                self.stopping.wait(60)
                return
            if m == "slow":
                for ch in b"220 slow.send.test ESMTP a very slow greeting that never seems to end\r\n":
                    if self.stopping.wait(1.0):
                        return
                    c.sendall(bytes([ch]))
                self.stopping.wait(60)
                return
            c.sendall(b"220 hostile.send.test ESMTP\r\n" +
                      (b"250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" if m == "extra_banner" else b""))
            in_data = False
            for line in self._lines(c):
                if in_data:
                    if m == "drop_data":
                        c.close()   # mid-DATA: the message never completes
                        return
                    if line == b".":
                        in_data = False
                        c.sendall(b"250 2.0.0 Ok\r\n")
                    continue
                verb = line.split(b" ", 1)[0].upper()
                if verb == b"EHLO":
                    c.sendall(self.EHLO.get(m, b"250-hostile.send.test\r\n250 ENHANCEDSTATUSCODES\r\n"))
                elif verb == b"AUTH" and m == "auth_close334":
                    c.sendall(b"334 \r\n")
                    c.close()
                    return
                elif verb == b"AUTH" and m == "auth_250":
                    c.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == b"AUTH":
                    c.sendall(b"504 5.5.4 Unrecognized authentication type\r\n")
                elif verb == b"RCPT" and m == "greylist":
                    c.sendall(b"450 4.2.0 <user@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go ahead\r\n")
                    in_data = True
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 2.0.0 Ok\r\n")
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        if self.thread:
            self.thread.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
