"""maildiag DNS test lab (python3 standard library only).

    free_port()        a port free on 127.0.0.1 for both UDP and TCP
    Nsd(zones, dir)    NSD serving fixture zones on 127.0.0.1:PORT (context manager)
    ScriptedDns(rules) the scripted responder of dnsscript.py in a thread (context manager)
    query(...)         one DNS query over UDP or TCP to 127.0.0.1, parsed
    run_tests()        unittest main whose exit code follows automake: 0 pass, 1 fail, 77 skip
    Tool helpers       tool_path(), run_tool(), json_results()
    require_test_hooks(VAR)  LabSkip unless the build has the test hooks (--enable-test-hooks)

Every server listens on 127.0.0.1 only; every packet goes to 127.0.0.1 only.
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsscript  # noqa: E402
from dnsscript import build_query, parse_message  # noqa: E402,F401

LOOPBACK = "127.0.0.1"
NSD_BIN = "/usr/sbin/nsd"
NSD_CHECKCONF = "/usr/sbin/nsd-checkconf"


class LabSkip(unittest.SkipTest):
    """A prerequisite of the lab is missing; tests turn it into exit 77."""


class LabError(RuntimeError):
    """The lab could not be set up (a real error, not a skip)."""


# ---------------------------------------------------------------- ports / queries

def free_port():
    """A port that is free on 127.0.0.1 for both UDP and TCP (at the time of the call)."""
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
    raise LabError("no free UDP+TCP port found on 127.0.0.1")


def query(port, qname, qtype="A", tcp=False, timeout=2.0, rd=False):
    """Send one query to 127.0.0.1:port and return parse_message() of the reply.

    Raises socket.timeout if nothing came back in time."""
    qid = random.randint(1, 0xFFFF)
    msg = build_query(qname, qtype, qid=qid, rd=rd)
    if tcp:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack("!H", len(msg)) + msg)
            hdr = _recv_exact(s, 2)
            raw = _recv_exact(s, struct.unpack("!H", hdr)[0])
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.connect((LOOPBACK, port))
            s.send(msg)
            deadline = time.monotonic() + timeout
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                raw = s.recv(65535)
                if len(raw) >= 2 and struct.unpack("!H", raw[:2])[0] == qid:
                    break
    res = parse_message(raw)
    res["raw"] = raw
    if res["id"] != qid:
        raise LabError("reply id %d != query id %d" % (res["id"], qid))
    return res


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise LabError("TCP connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


# ---------------------------------------------------------------- NSD

def _live_group_members(pgid):
    """pids of processes in process group pgid that are not zombies (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] = state, fields[2] = pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


class Nsd:
    """NSD serving {origin: zonefile} on 127.0.0.1:PORT.

        with Nsd({"mx.test": "/path/mx.test.zone"}) as ns:
            ns.port, ns.resolver  # "127.0.0.1:PORT"

    workdir: a directory under which a private temporary directory is made
    (default: the system temp dir); that private directory is removed on exit.
    """

    START_TIMEOUT = 10.0

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

    def _check_installed(self):
        for b in (NSD_BIN, NSD_CHECKCONF):
            if not os.access(b, os.X_OK):
                raise LabSkip("%s is not installed (Debian package nsd)" % b)
        for origin, path in self.zones.items():
            if not os.path.isfile(path):
                raise LabError("zone file for %s missing: %s" % (origin, path))

    def _write_conf(self, port):
        d = self.dir
        lines = [
            "server:",
            '    ip-address: %s@%d' % (LOOPBACK, port),
            "    port: %d" % port,
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            '    zonesdir: "%s"' % d,
            '    pidfile: "%s"' % os.path.join(d, "nsd.pid"),
            '    logfile: "%s"' % os.path.join(d, "nsd.log"),
            '    zonelistfile: "%s"' % os.path.join(d, "zone.list"),
            '    xfrdfile: "%s"' % os.path.join(d, "xfrd.state"),
            '    xfrdir: "%s"' % os.path.join(d, "xfr"),
            "    rrl-ratelimit: 0",
            "    receive-buffer-size: 4194304",
            "    send-buffer-size: 4194304",
            "    verbosity: 0",
            "    server-count: 1",
            "    hide-version: yes",
            "    do-ip6: no",
            "",
            "remote-control:",
            "    control-enable: no",
            "",
        ]
        for origin, path in sorted(self.zones.items()):
            lines += ["zone:", '    name: "%s"' % origin, '    zonefile: "%s"' % path, ""]
        conf = os.path.join(d, "nsd.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        return conf

    def _log_text(self):
        out = []
        for name in ("nsd.log", "nsd.stderr"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                with open(p, encoding="utf-8", errors="replace") as f:
                    out.append(f.read())
        return "".join(out).strip()

    def _answers_all(self):
        for origin in self.zones:
            try:
                r = query(self.port, origin, "SOA", timeout=0.3)
            except (socket.timeout, OSError, ValueError, LabError):
                return False
            if r["rcode"] != 0 or not any(rr[1] == "SOA" for rr in r["answer"]):
                return False
        return True

    def start(self):
        self._check_installed()
        self.dir = tempfile.mkdtemp(prefix="mdlab-nsd-", dir=self.workdir)
        os.mkdir(os.path.join(self.dir, "xfr"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        deadline = time.monotonic() + self.START_TIMEOUT
        attempt = 0
        while True:
            attempt += 1
            self.port = self.want_port or free_port()
            conf = self._write_conf(self.port)
            chk = subprocess.run([NSD_CHECKCONF, conf], capture_output=True, text=True)
            if chk.returncode != 0:
                raise LabError("nsd-checkconf rejected %s:\n%s%s" % (conf, chk.stdout, chk.stderr))
            stderr = open(os.path.join(self.dir, "nsd.stderr"), "w")
            self.proc = subprocess.Popen([NSD_BIN, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=stderr, stderr=stderr, start_new_session=True)
            stderr.close()
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._answers_all():
                    return
                time.sleep(0.05)
            log = self._log_text()
            if self.proc.poll() is None:
                raise LabError("nsd on port %d did not answer SOA for %s within %.0f s; log:\n%s"
                               % (self.port, ", ".join(self.zones), self.START_TIMEOUT, log))
            rc = self.proc.returncode
            self.proc = None
            if ("already in use" in log.lower() and not self.want_port and attempt < 5
                    and time.monotonic() < deadline):
                for name in ("nsd.log", "nsd.stderr"):
                    try:
                        os.unlink(os.path.join(self.dir, name))
                    except OSError:
                        pass
                continue  # port taken between free_port() and nsd's bind: try another
            raise LabError("nsd exited with status %s on port %d; log:\n%s" % (rc, self.port, log))

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None:
            pid = p.pid
            if p.poll() is None:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=5)
            # nsd forks its server and xfrd children into the session we created for it
            # (process group id == pid); kill any straggler of that group.
            end = time.monotonic() + 2.0
            while True:
                live = _live_group_members(pid)
                if not live:
                    break
                if time.monotonic() > end:
                    for child in live:
                        try:
                            os.kill(child, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    break
                time.sleep(0.02)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def query(self, qname, qtype="A", tcp=False, timeout=2.0):
        return query(self.port, qname, qtype, tcp=tcp, timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------- scripted responder

class ScriptedDns:
    """dnsscript.DnsScript in a thread of this process.

        with ScriptedDns([("servfail.x.test", "MX", "servfail"), ...]) as sd:
            sd.port, sd.resolver, sd.queries(name=..., qtype=..., transport=...)
    """

    def __init__(self, rules=(), port=0):
        self.server = dnsscript.DnsScript(rules, port=port)
        self.port = self.server.port

    @property
    def resolver(self):
        return "%s:%d" % (LOOPBACK, self.port)

    @property
    def log(self):
        return list(self.server.log)

    def queries(self, name=None, qtype=None, transport=None):
        return self.server.queries(name, qtype, transport)

    def clear_log(self):
        self.server.clear_log()

    def set_rules(self, rules):
        self.server.set_rules(rules)

    def add_rule(self, *rule):
        self.server.add_rule(*rule)

    def query(self, qname, qtype="A", tcp=False, timeout=2.0):
        return query(self.port, qname, qtype, tcp=tcp, timeout=timeout)

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ---------------------------------------------------------------- paths / tools

def tests_dir():
    d = os.environ.get("MAILDIAG_TESTS_DIR")
    if d:
        return os.path.abspath(d)
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zone_path(name):
    return os.path.join(tests_dir(), "zones", name)


def tool_path(name):
    """Absolute path of a built tool in MAILDIAG_BIN_DIR, or LabSkip."""
    bindir = os.environ.get("MAILDIAG_BIN_DIR")
    if not bindir:
        raise LabSkip("MAILDIAG_BIN_DIR is not set")
    path = os.path.join(bindir, name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise LabSkip("%s is not built (no executable %s)" % (name, path))
    return path


def tool_env(extra=None):
    env = dict(os.environ)
    env.pop("MAILDIAG_RESOLVER", None)
    env["NO_COLOR"] = "1"
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


class Run:
    """Result of running a tool: argv, rc, out, err, elapsed."""

    def __init__(self, argv, rc, out, err, elapsed):
        self.argv, self.rc, self.out, self.err, self.elapsed = argv, rc, out, err, elapsed

    def cmd(self):
        import shlex
        return " ".join(shlex.quote(a) for a in self.argv)

    def __str__(self):
        return ("command: %s\nexit: %s (%.2f s)\nstdout:\n%s\nstderr:\n%s"
                % (self.cmd(), self.rc, self.elapsed, self.out.rstrip(), self.err.rstrip()))


def run_tool(argv, stdin=None, env=None, timeout=30):
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, env=tool_env(env),
                           timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout after %ss" % timeout, e.stdout or b"", e.stderr or b""
    elapsed = time.monotonic() - t0
    return Run(argv, rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
               elapsed)


def json_results(run):
    """Parse JSON Lines stdout into a list of objects; raises AssertionError with context."""
    objs = []
    for i, line in enumerate(run.out.splitlines()):
        if not line.strip():
            continue
        try:
            objs.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("stdout line %d is not JSON (%s): %r\n%s" % (i + 1, e, line, run))
    return objs


# ---------------------------------------------------------------- output formats

STATUS_EXIT = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def text_status(out):
    """The status a report's text shows: its first "SUBJECT: STATE" line, lower case."""
    import re
    for line in out.splitlines():
        m = re.search(r": (OK|WARNING|CRITICAL|UNKNOWN)$", line)
        if m:
            return m.group(1).lower()
    raise AssertionError("no 'SUBJECT: STATE' line in:\n%s" % out)


def parse_plugin(out):
    """A monitoring-plugin line, parsed as the monitoring-plugins guidelines
    give it ("Plugin Output": TEXT | PERFDATA; perfdata items separated by
    blanks, 'label'=value[UOM];[warn];[crit];[min];[max], a label in single
    quotes when it holds blanks or '=', a quote in it doubled).  Returns
    (label, state, text, [{"label", "value", "uom", "warn", "crit", "min",
    "max"}]); raises AssertionError on anything else."""
    import re
    lines = out.splitlines()
    if len(lines) != 1:
        raise AssertionError("a plugin writes one line, not %d:\n%s" % (len(lines), out))
    line = lines[0]
    text, sep, perf = line.partition("|")
    m = re.match(r"^(\S+) (OK|WARNING|CRITICAL|UNKNOWN) - (.+?) ?$", text)
    if not m:
        raise AssertionError("not 'LABEL STATE - text': %r" % line)
    items = []
    rest = perf.strip() if sep else ""
    num = r"-?[0-9]+(?:\.[0-9]+)?"
    rng = r"@?(?:~|%s)?(?::(?:%s)?)?" % (num, num)
    item = re.compile(r"('(?:[^']|'')+'|[^'= ]+)=(%s)(s|ms|us|%%|B|KB|MB|TB|c)?"
                      r"(?:;(%s)?(?:;(%s)?(?:;(%s)?(?:;(%s)?)?)?)?)?(?: |$)" % (num, rng, rng, num, num))
    while rest:
        mm = item.match(rest)
        if not mm:
            raise AssertionError("bad perfdata at %r in %r" % (rest, line))
        label = mm.group(1)
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        items.append({"label": label, "value": float(mm.group(2)), "uom": mm.group(3) or "",
                      "warn": mm.group(4) or "", "crit": mm.group(5) or "", "min": mm.group(6) or "",
                      "max": mm.group(7) or ""})
        rest = rest[mm.end():]
    return m.group(1), m.group(2).lower(), m.group(3), items


# ---------------------------------------------------------------- runner

# --- valgrind: one way for every *_valgrind test -------------------------

VALGRIND = ["valgrind", "-q", "--leak-check=full",
            "--show-leak-kinds=definite,indirect,possible",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--error-exitcode=99"]


# --- test hooks: fault injection only in builds that have it --------------

def require_test_hooks(variable):
    """LabSkip unless the build under test has the test hooks
    (./configure --enable-test-hooks; make check says so in
    MAILDIAG_TEST_HOOKS=yes).  variable names the hook the test needs."""
    if os.environ.get("MAILDIAG_TEST_HOOKS") != "yes":
        raise LabSkip("%s needs a build configured with --enable-test-hooks"
                      " (MAILDIAG_TEST_HOOKS is %r)"
                      % (variable, os.environ.get("MAILDIAG_TEST_HOOKS", "")))


def valgrind_skip_reason():
    """Why valgrind tests cannot run here, or None."""
    if os.environ.get("MAILDIAG_SANITIZERS") == "yes":
        return "sanitizer build: valgrind cannot run ASan binaries"
    if shutil.which("valgrind") is None:
        return "valgrind is not installed"
    return None


def real_binary(name):
    """The ELF behind libtool's wrapper script (valgrind must run the real one)."""
    wrapper = tool_path(name)
    with open(wrapper, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return wrapper      # not a libtool wrapper (a .libs/ may be stale)
    libs = os.path.join(os.path.dirname(wrapper), ".libs")
    for cand in ("lt-" + name, name):
        p = os.path.join(libs, cand)
        if os.path.isfile(p):
            return p
    return wrapper


def valgrind_env(extra=None):
    """tool_env with the build tree's shared library on the path."""
    env = {"LD_LIBRARY_PATH": os.path.join(
        os.environ.get("MAILDIAG_BIN_DIR", "."), "..", "lib", ".libs")}
    env.update(extra or {})
    return tool_env(env)


def valgrind_run(argv, stdin=None, timeout=300, extra=()):
    """Runs argv under VALGRIND (+ extra options); returns (rc, stdout, stderr).
    rc 99 means valgrind found errors or leaks."""
    p = subprocess.run(VALGRIND + list(extra) + list(argv), input=stdin, capture_output=True,
                       env=valgrind_env(), timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def run_tests(argv=None):
    """unittest main for automake: exit 0 pass, 1 fail, 77 when everything was skipped."""
    loader = unittest.TestLoader()
    main_mod = sys.modules["__main__"]
    names = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("-")]
    suite = (loader.loadTestsFromNames(names, main_mod) if names
             else loader.loadTestsFromModule(main_mod))
    try:
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    except LabSkip as e:
        print("SKIP: %s" % e)
        return 77
    except LabError as e:
        print("ERROR: %s" % e)
        return 1
    sys.stdout.flush()
    if not result.wasSuccessful():
        return 1
    if result.skipped and len(result.skipped) >= result.testsRun:
        reasons = sorted({str(r) for _, r in result.skipped})
        print("SKIP: %s" % "; ".join(reasons))
        return 77
    if result.testsRun == 0:
        print("SKIP: no tests ran")
        return 77
    return 0
