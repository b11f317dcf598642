"""Minimal NSD runner for scripts/bench (python3 standard library only).

Fallback for when tests/lab/mdlab.py cannot be imported or its Nsd class does not
have the expected API (zones, workdir, port; .port, .resolver, .dir, start/stop,
context manager).  Same idea: NSD on 127.0.0.1 only, as root without dropping
privileges, everything in a private temporary directory, response rate limiting
off (rrl-ratelimit: 0), stopped by pid.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

LOOPBACK = "127.0.0.1"
NSD_BIN = "/usr/sbin/nsd"
NSD_CHECKCONF = "/usr/sbin/nsd-checkconf"


class NsdError(RuntimeError):
    pass


def free_port():
    for _ in range(100):
        port = random.randint(20000, 60000)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind((LOOPBACK, port))
            t.bind((LOOPBACK, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise NsdError("no free UDP+TCP port on 127.0.0.1")


def soa_ok(port, origin, timeout=0.3):
    """True when 127.0.0.1:port answers NOERROR with an answer to `origin SOA`."""
    qid = random.randint(1, 0xFFFF)
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in origin.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode("ascii")
    q += b"\0" + struct.pack("!HH", 6, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (LOOPBACK, port))
            data = s.recv(4096)
        except OSError:
            return False
    if len(data) < 12:
        return False
    rid, flags, _qd, an = struct.unpack("!HHHH", data[:8])
    return rid == qid and (flags & 0xF) == 0 and an > 0


class Nsd:
    START_TIMEOUT = 20.0

    def __init__(self, zones, workdir=None, port=None):
        self.zones = {o.rstrip("."): os.path.abspath(p) for o, p in zones.items()}
        self.workdir = workdir
        self.want_port = port
        self.port = None
        self.proc = None
        self.dir = None

    @property
    def resolver(self):
        return "%s:%d" % (LOOPBACK, self.port)

    def _conf(self):
        d = self.dir
        lines = ["server:",
                 "    ip-address: %s@%d" % (LOOPBACK, self.port),
                 "    port: %d" % self.port,
                 '    username: ""', '    chroot: ""', '    database: ""',
                 '    zonesdir: "%s"' % d,
                 '    pidfile: "%s/nsd.pid"' % d,
                 '    logfile: "%s/nsd.log"' % d,
                 '    zonelistfile: "%s/zone.list"' % d,
                 '    xfrdfile: "%s/xfrd.state"' % d,
                 '    xfrdir: "%s/xfr"' % d,
                 "    rrl-ratelimit: 0",
                 "    receive-buffer-size: 4194304",
                 "    send-buffer-size: 4194304",
                 "    server-count: 1",
                 "    verbosity: 0",
                 "    do-ip6: no",
                 "", "remote-control:", "    control-enable: no", ""]
        for origin, path in sorted(self.zones.items()):
            lines += ["zone:", '    name: "%s"' % origin, '    zonefile: "%s"' % path, ""]
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        return conf

    def start(self):
        for b in (NSD_BIN, NSD_CHECKCONF):
            if not os.access(b, os.X_OK):
                raise NsdError("%s is not installed (Debian package nsd)" % b)
        self.dir = tempfile.mkdtemp(prefix="mdbench-nsd-", dir=self.workdir)
        os.mkdir(os.path.join(self.dir, "xfr"))
        try:
            self.port = self.want_port or free_port()
            conf = self._conf()
            chk = subprocess.run([NSD_CHECKCONF, conf], capture_output=True, text=True)
            if chk.returncode != 0:
                raise NsdError("nsd-checkconf rejected %s: %s%s" % (conf, chk.stdout, chk.stderr))
            log = open(os.path.join(self.dir, "nsd.stderr"), "w")
            self.proc = subprocess.Popen([NSD_BIN, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
            log.close()
            deadline = time.monotonic() + self.START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise NsdError("nsd exited with status %s: %s"
                                   % (self.proc.returncode, self._log()))
                if all(soa_ok(self.port, o) for o in self.zones):
                    return self
                time.sleep(0.05)
            raise NsdError("nsd did not answer within %.0f s: %s"
                           % (self.START_TIMEOUT, self._log()))
        except BaseException:
            self.stop()
            raise

    def _log(self):
        out = []
        for name in ("nsd.log", "nsd.stderr"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, encoding="utf-8", errors="replace") as f:
                    out.append(f.read())
        return "".join(out).strip()

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=5)
            # nsd's children stay in the process group (= p.pid) we created for it.
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                try:
                    os.killpg(p.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.02)
            else:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
