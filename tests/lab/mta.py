"""Real mail servers for maildiag's tests: Postfix, Exim, Dovecot (python3 stdlib only).

Every server listens on 127.0.0.1 only, on free ports, runs from a private temporary
directory of its own (config, queue/spool, logs, Maildirs, certificates), is started in
well under a second and stopped by process group.  Use them as context managers (or
start() in setUpClass / stop() in tearDownClass) so that a failing test still stops
them.  Nothing is ever sent beyond 127.0.0.1 and nothing queries DNS.

Classes (signatures in brief; each has start() -> self, stop(), log(), wait_log(),
ca_file, ssl_context(), dir, port):

  PostfixMx(workdir=None, domain="lab.test", users=("maria",), tls=True, tlsmgr=True,
            access=None, size_limit=None, bounce_users=(), discard=(), junk_users=(),
            port=None, hostname="mx.lab.test", pki=None, extra_main=None)
      Postfix 3.7 smtpd as the receiving MX of a virtual mailbox domain: Maildirs
      mail/<user>/ (postmaster and bounces always exist), 550 5.1.1 for unknown users,
      554 5.7.1 Relay access denied for other domains (127.0.0.1 is not in mynetworks),
      access {address: "450 4.2.0 ..." | "554 5.7.1 ..." | "DISCARD"}, bounce_users
      (accepted, then a real multipart/report DSN 5.1.1 to the envelope sender: use
      mx.bounce_address = bounces@lab.test to read it from the lab), discard (accepted
      and dropped), junk_users (delivered to mail/<user>/.Junk/), size_limit (SIZE,
      552 5.3.4), STARTTLS with a lab certificate, tlsmgr=False for "454 4.7.0 TLS not
      available due to local problem".  Helpers: maildir(user, folder="INBOX"),
      wait_delivered(user, count, timeout, folder), queue_ids(), queue_id_of(message_id),
      log_status(queue_id=None, to=None), wait_status(to=None, queue_id=None, timeout),
      queue() (postqueue -j), flush() (postqueue -c DIR -f), bounce_address, address(u).

  PostfixSubmission(user="sender@lab.test", password="secret", relay_to=None,
            workdir=None, port=None, hostname="smtp.lab.test", tls=True,
            require_tls=False, pki=None, size_limit=None, accounts=None, extra_main=None,
            cert_not_after=None)
      Postfix as a port-587 style relay with real AUTH: Dovecot is its SASL server over
      a unix socket (passwd-file account user/password, plus accounts {user: pw}).  AUTH
      is offered only after STARTTLS; a wrong password gets 535 5.7.8; without AUTH
      nothing is relayed (554 5.7.1 Relay access denied).  Authenticated mail goes to
      relay_to (a PostfixMx/Exim/object with .port, a port, or (host, port): relayhost
      [127.0.0.1]:PORT) or, with relay_to=None, into its own Maildir: outbox(),
      wait_outbox(count).  require_tls=True: 530 5.7.0 before STARTTLS.  Same log and
      queue helpers as PostfixMx; user, password.

  Exim(workdir=None, domain="lab.test", users=("maria",), tls=True, greylist=(),
       size_limit=None, port=None, hostname="mx2.lab.test", pki=None, extra_main=None)
      Exim 4.96 as a second receiving MX: Maildirs mail/<user>/, "550 5.1.1 <a>: user
      unknown", "550 5.7.1 relay not permitted", greylist addresses get "450 4.2.0
      greylisted, try later".  maildir(), wait_delivered(), log() (mainlog).

  DovecotImap(mx=None, users=None, password="secret", passwords=None, domain=None,
              mail_dir=None, workdir=None, pki=None, hostname="imap.lab.test",
              port=None, imaps_port=None, tls=True)
      Dovecot 2.3 IMAP over a PostfixMx's Maildirs (what Postfix delivers is visible):
      port (IMAP + STARTTLS) and imaps_port (implicit TLS), login "maria" or
      "maria@lab.test", mailboxes INBOX, Junk (\Junk), Sent (\Sent), Trash (\Trash),
      IDLE.  maildir(user, folder).  tls=False: no TLS at all (no STARTTLS offered,
      no imaps_port), for clients that must notice plaintext.

  Pki(directory)   a test CA (EC P-256, openssl): issue(hostname) -> (cert, key) with
                   subjectAltName hostname, localhost, IP 127.0.0.1; ca_file.  Pass one
                   Pki (or mx.pki) as pki= to several servers so clients trust one CA.
                   issue(..., not_after=UNIX_SECONDS) expires at exactly that instant (past:
                   expired); PostfixMx and PostfixSubmission take cert_not_after= for theirs.

Quick use (more in docs/LAB.md):

    import mta
    with mta.PostfixMx(bounce_users=("gone",)) as mx, mta.DovecotImap(mx, password="pw") as imap:
        s = smtplib.SMTP("127.0.0.1", mx.port)
        s.starttls(context=mx.ssl_context())          # trusts the lab CA only
        s.sendmail(mx.bounce_address, ["maria@lab.test"], raw_bytes)
        [path] = mx.wait_delivered("maria", 1)
        c = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=imap.ssl_context())
        c.login("maria", "pw")

EHLO keywords (measured on Debian 12 with the lab's configuration):

    PostfixMx          PIPELINING, SIZE 10240000, VRFY, ETRN, STARTTLS,
                       ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8, CHUNKING
    PostfixSubmission  the same; after STARTTLS: AUTH PLAIN LOGIN instead of STARTTLS
    Exim               SIZE 52428800, 8BITMIME, PIPELINING, PIPECONNECT, CHUNKING,
                       STARTTLS, SMTPUTF8, HELP (no DSN, no ENHANCEDSTATUSCODES)

How the servers run: all in the foreground, each in a session (process group) of its
own started here, so that the pid and process group are known without pid files:
Postfix as "master -c CONFIG_DIR" (not "postfix start": that daemonizes, and its
postfix-script integrity checks cost time; the queue directories are made here),
Dovecot as "dovecot -F -c FILE", Exim as "exim4 -C FILE -bdf".  stop() sends SIGTERM
to the process group (again every 0.25 s: a child forked at that moment can miss it),
SIGKILL after 5 s, kills any process whose command line or environment still names
the private directory, and removes the directory.  Stdout/stderr go to a file in that
directory (never a pipe, so nothing waits for an EOF the daemons never send).

Cleanup when a test goes wrong: an exception inside a with block stops the server; an
atexit hook stops servers still running when the test process exits; a SIGTERM to the
test process (when it has no SIGTERM handler of its own) exits through that hook; and
each server has a watchdog process that waits for EOF on a pipe from the test process
(it comes even after SIGKILL), then kills the server's process group and every process
naming its directory, and removes the directory.

Requirements: root (Postfix's master, Dovecot and Exim switch users); Debian packages
postfix, dovecot-core, dovecot-imapd, openssl (scripts/install-deps); Exim unpacked by
scripts/install-deps into /opt/maildiag-lab/exim4 because exim4-daemon-light conflicts
with postfix (MAILDIAG_EXIM overrides the binary).  A missing piece raises
mdlab.LabSkip, so a test class skips with the reason (exit 77 through run_tests()).

MAILDIAG_LAB_KEEP=1 keeps the temporary directories (printed to stderr) for debugging.
"""

import atexit
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import mdlab
from mdlab import LabError, LabSkip

LOOPBACK = "127.0.0.1"

POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
POSTFIX_DAEMON_DIR = "/usr/lib/postfix/sbin"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
# The one place that knows where scripts/install-deps unpacks Exim.
EXIM_DEFAULT = "/opt/maildiag-lab/exim4/usr/sbin/exim4"

START_TIMEOUT = 15.0


def exim_binary():
    return os.environ.get("MAILDIAG_EXIM") or EXIM_DEFAULT


def _keep():
    return os.environ.get("MAILDIAG_LAB_KEEP", "") not in ("", "0")


def _need_root(what):
    if os.geteuid() != 0:
        raise LabSkip("%s needs root (it switches to its own users); run the tests as root" % what)


def _need_exe(path, package):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise LabSkip("%s is not installed (%s)" % (path, package))


def _ids(user):
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise LabSkip("there is no %s user (is the package installed?)" % user)
    return pw.pw_uid, pw.pw_gid


def _write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    # Postfix waits (300 ms steps, up to 2 s) while a config file or table looks
    # "just modified" (mtime within the last second): date every lab file back.
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid)


def _make_maildir(path, uid, gid, folder=False):
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
    if folder:
        open(os.path.join(path, "maildirfolder"), "a").close()
    _chown_tree(path, uid, gid)


def _maildir_files(path):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        try:
            names = os.listdir(d)
        except OSError:
            continue
        out += [os.path.join(d, n) for n in names if not n.startswith(".")]
    # Maildir names start with the delivery time: sorting gives arrival order
    return sorted(out, key=lambda p: (os.path.basename(p).split(".")[0], os.path.basename(p)))


def read_greeting(port, timeout=1.0):
    """The first reply line of the server on 127.0.0.1:port (b"" on failure)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.settimeout(timeout)
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            return buf
    except OSError:
        return b""


def _port_busy(port):
    """True if 127.0.0.1:port cannot be bound (someone listens there)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def _wait_greeting(port, proc, prefix, deadline, logf):
    """Waits until 127.0.0.1:port greets with prefix (b"220" / b"* OK").  Returns None if
    the process exited first (so the caller may retry another port)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        g = read_greeting(port, timeout=0.5)
        if g.startswith(prefix):
            return g
        time.sleep(0.03)
    raise LabError("nothing greeted on 127.0.0.1:%d within %.0f s; log:\n%s"
                   % (port, START_TIMEOUT, logf()))


# ---------------------------------------------------------------- processes

def _proc_text(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except OSError:
        return b""


def marked_pids(marker):
    """pids (not this process) whose command line or environment contains marker."""
    m = marker.encode()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        if m in _proc_text(pid, "cmdline") or m in _proc_text(pid, "environ"):
            stat = _proc_text(pid, "stat").decode("ascii", "replace")
            if stat and stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X"):
                out.append(pid)
    return out


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_pids(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


_WATCHDOG = r"""
import os, shutil, signal, sys, time
marker = sys.stdin.readline().strip().encode()   # not in argv: the sweep must not see itself
keep = sys.stdin.readline().strip() == "keep"
pgids = set()
for line in sys.stdin:
    line = line.strip()
    if line.isdigit():
        pgids.add(int(line))
def group():
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == os.getpid():
            continue
        try:
            st = open("/proc/%s/stat" % e, "rb").read().decode("ascii", "replace")
            f = st[st.rindex(")") + 2:].split()
            if f[0] in ("Z", "X"):
                continue
            if int(f[2]) in pgids:
                out.append(int(e)); continue
            for n in ("cmdline", "environ"):
                if marker in open("/proc/%s/%s" % (e, n), "rb").read():
                    out.append(int(e)); break
        except (OSError, ValueError):
            pass
    return out
for sig in (signal.SIGTERM, signal.SIGKILL):
    for p in group():
        try:
            os.kill(p, sig)
        except OSError:
            pass
    if sig == signal.SIGTERM and group():
        time.sleep(1.0)
if not keep:
    shutil.rmtree(marker.decode(), ignore_errors=True)
"""


class _Watchdog:
    """A process that waits for EOF on a pipe from this process (which happens when
    this process stops the server, exits, or is killed), then kills the server's
    process groups and every process naming the marker (the lab's private directory),
    and removes that directory (unless MAILDIAG_LAB_KEEP).  Registered pgids are sent
    over the pipe."""

    def __init__(self, marker):
        self.proc = subprocess.Popen([sys.executable or "/usr/bin/python3", "-c", _WATCHDOG],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.proc.stdin.write(marker.encode() + (b"\nkeep\n" if _keep() else b"\nremove\n"))
        self.proc.stdin.flush()

    def add_group(self, pgid):
        try:
            self.proc.stdin.write(b"%d\n" % pgid)
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def close(self, wait=True):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if wait:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_LIVE = []     # started servers, oldest first


def _stop_all_at_exit():
    for srv in reversed(list(_LIVE)):     # a DovecotImap before the PostfixMx it reads
        try:
            srv.stop()
        except Exception:   # noqa: BLE001 - best effort at exit
            pass


atexit.register(_stop_all_at_exit)


def _sigterm_exits():
    """A SIGTERM to the test process runs atexit (and so stops the servers) instead of
    killing it outright; only installed when nobody else handles SIGTERM."""
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    except ValueError:   # not the main thread
        pass


class _Server:
    """Private temporary directory, process start/stop by pid and process group,
    watchdog, context manager."""

    KIND = "server"
    STOP_GRACE = 5.0     # seconds between SIGTERM and SIGKILL to the process group

    def __init__(self, workdir=None):
        self.workdir = workdir
        self.dir = None
        self.procs = []
        self.watchdog = None
        self.pki = None

    # subclasses: _setup() writes config, _launch() starts processes and waits
    def start(self):
        if self.dir is not None:
            raise LabError("%s already started" % self.KIND)
        self._check()
        self.dir = tempfile.mkdtemp(prefix="mdlab-%s-" % self.KIND, dir=self.workdir)
        os.chmod(self.dir, 0o755)    # the servers' own users traverse it
        _LIVE.append(self)
        _sigterm_exits()
        try:
            self.watchdog = _Watchdog(self.dir)
            self._setup()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _check(self):
        pass

    def _setup(self):
        pass

    def _launch(self):
        pass

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _spawn(self, argv, log_name, env=None):
        out = open(self.path(log_name), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, cwd=self.dir, env=env)
        finally:
            out.close()
        self.procs.append(p)
        if self.watchdog:
            self.watchdog.add_group(p.pid)
        return p

    def _stop_proc(self, p):
        """SIGTERM to the process group (its id is the pid started here, in a session of
        its own), repeated every 0.25 s (a child forked at that moment can miss the
        first: Dovecot's master then waits 5 s for it), then SIGKILL to the group if
        anything is left after STOP_GRACE."""
        end = time.monotonic() + self.STOP_GRACE
        while p.poll() is None or mdlab._live_group_members(p.pid):
            if time.monotonic() > end:
                _kill_group(p.pid, signal.SIGKILL)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                break
            _kill_group(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                pass
            else:
                time.sleep(0.01)

    def _stop_procs(self):
        for p in reversed(self.procs):
            self._stop_proc(p)
        self.procs = []

    def stop(self):
        """Stops every process of this server (also after a failed start) and removes
        the temporary directory.  Safe to call twice."""
        try:
            self._stop_procs()
        finally:
            if self.dir:
                left = marked_pids(self.dir)
                if left:
                    _kill_pids(left, signal.SIGKILL)
            if self.watchdog:
                self.watchdog.close()
                self.watchdog = None
            if self in _LIVE:
                _LIVE.remove(self)
            if self.dir:
                if _keep():
                    sys.stderr.write("mta: kept %s\n" % self.dir)
                else:
                    shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log(self):
        """The server's log text (subclasses say which files)."""
        return ""

    def wait_log(self, pattern, timeout=10.0, flags=re.M):
        """Waits until log() matches the regex pattern; returns the match object."""
        rx = re.compile(pattern, flags)
        end = time.monotonic() + timeout
        while True:
            m = rx.search(self.log())
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError("log did not match %r within %.0f s:\n%s"
                                     % (pattern, timeout, self.log()[-4000:]))
            time.sleep(0.05)

    # TLS helpers for clients
    @property
    def ca_file(self):
        return self.pki.ca_file if self.pki else None

    def ssl_context(self):
        """A client SSLContext that trusts the lab CA (and checks the name/IP)."""
        return ssl.create_default_context(cafile=self.ca_file)


# ---------------------------------------------------------------- certificates

class Pki:
    """A test CA and server certificates (EC P-256, made with openssl in directory).

        pki = Pki(dir); cert, key = pki.issue("mx.lab.test")
        pki.ca_file   # PEM of the CA, for clients

    Certificates name the host, localhost and IP 127.0.0.1 (subjectAltName), so that
    clients connecting to 127.0.0.1 verify them with hostname checking on.  Keys are
    world-readable: Exim reads its key as the Exim user."""

    def __init__(self, directory, cn="maildiag lab CA"):
        if shutil.which("openssl") is None:
            raise LabSkip("openssl is not installed")
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_file = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self._n = 0
        if not os.path.exists(self.ca_file):
            self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", self.ca_key, "-out", self.ca_file, "-days", "30",
                          "-subj", "/CN=%s" % cn,
                          "-addext", "basicConstraints=critical,CA:TRUE",
                          "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _openssl(self, *argv):
        p = subprocess.run(["openssl"] + list(argv), cwd=self.dir, capture_output=True)
        if p.returncode != 0:
            raise LabError("openssl %s: %s" % (" ".join(argv), p.stderr.decode(errors="replace")))

    def issue(self, hostname, extra_names=(), days=30, not_after=None, not_before=None):
        """(cert_path, key_path) for hostname (+ localhost, 127.0.0.1), valid for days from now;
        or, with not_after (Unix seconds, any instant, past or future), exactly until then,
        from not_before (default an hour ago): an expired certificate, or one that expires
        in 10 days to the second, for tests of expiry warnings."""
        self._n += 1
        base = os.path.join(self.dir, "%s-%d" % (re.sub(r"[^A-Za-z0-9.-]", "_", hostname), self._n))
        key, csr, cert, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
        names = [hostname] + [n for n in extra_names if n != hostname] + ["localhost"]
        _write(ext, "subjectAltName=%s,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
                    "subjectKeyIdentifier=hash\n"
               % ",".join("DNS:" + n for n in names))
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % hostname)
        if not_after is None:
            self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_file, "-CAkey", self.ca_key,
                          "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext)
        else:
            # "openssl x509 -req" of OpenSSL 3.0 takes whole days from now only; "openssl ca"
            # takes both dates (-startdate, -enddate), with a minimal CA database of its own.
            start = time.time() - 3600 if not_before is None else not_before
            self._openssl("ca", "-batch", "-config", self._ca_config(), "-notext",
                          "-in", csr, "-out", cert, "-cert", self.ca_file, "-keyfile", self.ca_key,
                          "-startdate", _asn1_time(start), "-enddate", _asn1_time(not_after),
                          "-extfile", ext)
        os.chmod(key, 0o644)
        return cert, key

    def _ca_config(self):
        conf = os.path.join(self.dir, "ca.cnf")
        if not os.path.exists(conf):
            db = os.path.join(self.dir, "ca-db")
            os.makedirs(os.path.join(db, "new"), exist_ok=True)
            _write(os.path.join(db, "index.txt"), "")
            _write(os.path.join(db, "serial"), "1000\n")
            _write(conf, "[ca]\ndefault_ca = lab\n[lab]\ndatabase = %s/index.txt\nserial = %s/serial\n"
                         "new_certs_dir = %s/new\ndefault_md = sha256\npolicy = any\n"
                         "unique_subject = no\ncopy_extensions = none\n[any]\ncommonName = supplied\n"
                   % (db, db, db))
        return conf


def _asn1_time(t):
    """Unix seconds as openssl ca's GeneralizedTime, YYYYMMDDHHMMSSZ."""
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(int(t)))


class _Maildirs:
    """maildir()/wait_delivered() over maildir_path(user, folder)."""

    def maildir(self, user, folder="INBOX"):
        """Paths of the messages (new/ and cur/) in the user's folder, oldest first."""
        return _maildir_files(self.maildir_path(user, folder))

    def wait_delivered(self, user, count=1, timeout=10.0, folder="INBOX"):
        """Waits until the folder holds at least count messages; returns their paths."""
        end = time.monotonic() + timeout
        while True:
            got = self.maildir(user, folder)
            if len(got) >= count:
                return got
            if time.monotonic() > end:
                raise AssertionError("%s/%s holds %d message(s), %d expected after %.0f s; log:\n%s"
                                     % (user, folder, len(got), count, timeout, self.log()[-4000:]))
            time.sleep(0.05)


# ---------------------------------------------------------------- Postfix

_LOG_STATUS = re.compile(
    r"postfix[^\[]*/(?P<agent>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,"
    r"(?: orig_to=<(?P<orig_to>[^>]*)>,)? relay=(?P<relay>[^,]*),.*?"
    r"(?: dsn=(?P<dsn>[\d.]+),)? status=(?P<status>\w+)(?: \((?P<text>.*)\))?$", re.M)
_LOG_QID = re.compile(r"postfix[^\[]*/[\w-]+\[\d+\]: (?P<qid>[0-9A-F]{6,}|[0-9B-Zb-z]{12,}): ")


class _Postfix(_Server):
    """What PostfixMx and PostfixSubmission share: a master in the foreground with its
    own config_directory, queue and data directories, maillog_file via postlogd."""

    KIND = "postfix"

    def __init__(self, workdir=None, port=None, hostname="mx.lab.test", tls=True,
                 tlsmgr=True, pki=None, size_limit=None, extra_main=None, cert_not_after=None):
        super().__init__(workdir)
        self.cert_not_after = cert_not_after
        self.want_port = port
        self.port = None
        self.hostname = hostname
        self.tls = tls
        self.tlsmgr = tlsmgr
        self.pki = pki
        self.size_limit = size_limit
        self.extra_main = dict(extra_main or {})
        self.master = None

    def _check(self):
        _need_root("Postfix")
        for b in (POSTCONF, POSTQUEUE, os.path.join(POSTFIX_DAEMON_DIR, "master"),
                  os.path.join(POSTFIX_DAEMON_DIR, "postlogd")):
            _need_exe(b, "Debian package postfix")
        self.uid, self.gid = _ids("postfix")
        try:
            self.postdrop_gid = grp.getgrnam("postdrop").gr_gid
        except KeyError:
            raise LabSkip("there is no postdrop group (Debian package postfix)")

    @property
    def config_dir(self):
        return self.path("etc")

    @property
    def queue_dir(self):
        return self.path("queue")

    @property
    def maillog(self):
        return self.path("maillog")

    @property
    def mail_dir(self):
        return self.path("mail")

    def _queue_dirs(self):
        q, own, gid = self.queue_dir, self.uid, self.gid
        os.makedirs(q, mode=0o755)
        os.makedirs(self.path("data"), mode=0o700)
        os.chown(self.path("data"), own, gid)
        for d in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
                  "incoming", "private", "saved", "trace"):
            os.mkdir(os.path.join(q, d), 0o700)
            os.chown(os.path.join(q, d), own, gid)
        for d, mode in (("maildrop", 0o730), ("public", 0o710)):
            os.mkdir(os.path.join(q, d))
            os.chown(os.path.join(q, d), own, self.postdrop_gid)
            os.chmod(os.path.join(q, d), mode)
        os.mkdir(os.path.join(q, "pid"), 0o755)

    def _main_common(self):
        d = self.dir
        main = [
            ("compatibility_level", "3.6"),
            ("queue_directory", self.queue_dir),
            ("data_directory", self.path("data")),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            # logging through postlogd (in master.cf) into the lab directory
            ("maillog_file", self.maillog),
            ("maillog_file_prefixes", d),
            ("myhostname", self.hostname),
            ("mydomain", self.hostname.split(".", 1)[1] if "." in self.hostname else "lab.test"),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            ("relay_domains", ""),
            ("relayhost", ""),
            # Nobody is "local": 127.0.0.1 must not be trusted to relay.
            ("mynetworks", ""),
            ("inet_interfaces", LOOPBACK),
            ("inet_protocols", "ipv4"),
            ("smtp_bind_address", LOOPBACK),
            # No DNS anywhere: no reverse lookup of clients, no MX/A lookups by the
            # client (relayhost is an [IP]), nothing reaches the host's resolver.
            ("smtpd_peername_lookup", "no"),
            ("smtp_dns_support_level", "disabled"),
            ("lmtp_dns_support_level", "disabled"),
            ("smtp_host_lookup", "native"),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("local_recipient_maps", ""),
            ("biff", "no"),
            ("smtpd_banner", "$myhostname ESMTP Postfix (maildiag lab)"),
            # short retry times so that a deferred message in a test moves quickly
            ("queue_run_delay", "5s"),
            ("minimal_backoff_time", "5s"),
            ("maximal_backoff_time", "10s"),
            ("virtual_mailbox_limit", "0"),
            ("smtpd_tls_loglevel", "1"),
        ]
        if self.tls:
            main += [("smtpd_tls_security_level", "may"),
                     ("smtpd_tls_chain_files", "%s, %s" % (self.key_file, self.cert_file))]
        else:
            main += [("smtpd_tls_security_level", "none")]
        if self.size_limit is not None:
            main.append(("message_size_limit", str(int(self.size_limit))))
        return main

    def _master_common(self):
        # service type private unpriv chroot wakeup maxproc command
        rows = [
            "%s:%d inet n - n - - smtpd" % (LOOPBACK, self.port),
            "pickup unix n - n 60 1 pickup",        # postqueue -f and sendmail need it
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "virtual unix - n n - - virtual",
            "smtp unix - - n - - smtp",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        if self.tlsmgr:
            rows.append("tlsmgr unix - - n 1000? 1 tlsmgr")
        return rows

    def _write_config(self, main, master_rows):
        os.makedirs(self.config_dir, exist_ok=True)
        lines = ["# made by tests/lab/mta.py (%s)" % type(self).__name__]
        merged = {}
        for k, v in main + sorted(self.extra_main.items()):
            merged.pop(k, None)        # a later setting of a name replaces the earlier one
            merged[k] = v
        for k, v in merged.items():
            lines.append("%s = %s" % (k, v))
        _write(os.path.join(self.config_dir, "main.cf"), "\n".join(lines) + "\n")
        _write(os.path.join(self.config_dir, "master.cf"),
               "# made by tests/lab/mta.py: only the services the lab needs\n"
               + "\n".join(master_rows) + "\n")

    def _table(self, name, mapping):
        """A texthash: table in the config directory (read when a daemon starts; no postmap)."""
        path = os.path.join(self.config_dir, name)
        _write(path, "".join("%s %s\n" % (k, v) for k, v in mapping.items()))
        return "texthash:" + path

    def _setup(self):
        if self.pki is None and self.tls:
            self.pki = Pki(self.path("pki"))
        if self.tls:
            self.cert_file, self.key_file = self.pki.issue(self.hostname, not_after=self.cert_not_after)
        os.makedirs(self.mail_dir, mode=0o755)
        os.chown(self.mail_dir, self.uid, self.gid)
        self._queue_dirs()

    def _launch(self):
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in range(5):
            self.port = self.want_port or mdlab.free_port()
            self._write_all_config()
            env = dict(os.environ, MAIL_CONFIG=self.config_dir)
            env.pop("MAIL_DEBUG", None)
            self.master = self._spawn([os.path.join(POSTFIX_DAEMON_DIR, "master"), "-c",
                                       self.config_dir], "master.out", env=env)
            if _wait_greeting(self.port, self.master, b"220", deadline, self.log) is not None:
                self._wait_postlogd(deadline)
                self._wait_probe_logged(deadline)
                return
            rc = self.master.wait()
            self.procs.remove(self.master)
            # The master's fatal errors before postlogd runs go to syslog only (there is
            # no /dev/log here): find out the usual reasons ourselves.
            busy = _port_busy(self.port)
            if busy and not self.want_port and attempt < 4 and time.monotonic() < deadline:
                continue
            raise LabError("postfix master exited with %s on port %d%s; log:\n%s\n%s"
                           % (rc, self.port, " (127.0.0.1:%d is in use)" % self.port if busy else "",
                              self.log(), self._check_output()))

    def _wait_probe_logged(self, deadline):
        """Waits until smtpd has logged the session of the greeting check that
        found it ready (postlogd writes a moment later): tests count sessions
        in the log, and a line arriving during a test would be counted there."""
        end = min(deadline, time.monotonic() + 5)
        while time.monotonic() < end:
            log = _read(self.maillog)
            c = len(re.findall(r"smtpd\[\d+\]: connect from ", log))
            d = len(re.findall(r"smtpd\[\d+\]: disconnect from ", log))
            if c >= 1 and c == d:
                return
            time.sleep(0.02)

    def _check_output(self):
        """What "postconf -n" and "postfix check" say about the lab's configuration."""
        out = []
        for argv in ([POSTCONF, "-c", self.config_dir, "-n"],
                     ["/usr/sbin/postfix", "-c", self.config_dir, "check"]):
            try:
                p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                if p.returncode != 0 or p.stderr.strip():
                    out.append("%s: exit %d\n%s" % (" ".join(argv), p.returncode, p.stderr.strip()))
            except (OSError, subprocess.TimeoutExpired) as e:
                out.append("%s: %s" % (" ".join(argv), e))
        return "\n".join(out)

    def _wait_postlogd(self, deadline):
        # The first lines go through postlogd: wait until the maillog exists so that
        # log() never races the start.
        while not os.path.exists(self.maillog) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _write_all_config(self):
        raise NotImplementedError

    # ------------------------------------------------------------ log and queue helpers
    def log(self):
        """The maillog (plus the master's own stdout/stderr, where early errors go)."""
        if not self.dir:
            return ""
        return _read(self.maillog) + _read(self.path("master.out"))

    def queue_ids(self):
        """Queue ids in the order they first appear in the maillog."""
        seen = []
        for m in _LOG_QID.finditer(self.log()):
            if m.group("qid") not in seen:
                seen.append(m.group("qid"))
        return seen

    def log_status(self, queue_id=None, to=None):
        """Delivery attempts logged for a queue id and/or recipient, oldest first:
        dicts with qid, agent, to, orig_to, relay, dsn, status (sent, bounced,
        deferred, expired...), text."""
        out = []
        for m in _LOG_STATUS.finditer(self.log()):
            d = m.groupdict()
            if queue_id and d["qid"] != queue_id:
                continue
            if to and d["to"].lower() != to.lower() and (d["orig_to"] or "").lower() != to.lower():
                continue
            out.append(d)
        return out

    def wait_status(self, to=None, queue_id=None, timeout=10.0, final=True):
        """Waits for a logged delivery status for the recipient / queue id and returns
        the latest one; with final=True a "deferred" is not enough."""
        end = time.monotonic() + timeout
        while True:
            st = [s for s in self.log_status(queue_id, to)
                  if not final or s["status"] != "deferred"]
            if st:
                return st[-1]
            if time.monotonic() > end:
                raise AssertionError("no %sdelivery status for %s within %.0f s; log:\n%s"
                                     % ("final " if final else "", to or queue_id, timeout,
                                        self.log()[-4000:]))
            time.sleep(0.05)

    def queue_id_of(self, message_id):
        """The queue id that cleanup logged for a Message-ID (with or without <>)."""
        mid = message_id.strip("<>")
        m = re.search(r": ([0-9A-Za-z]+): message-id=<%s>" % re.escape(mid), self.log())
        return m.group(1) if m else None

    def postqueue(self, *args):
        p = subprocess.run([POSTQUEUE, "-c", self.config_dir] + list(args),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout + p.stderr

    def flush(self):
        """postqueue -f: retry every deferred message now."""
        rc, out = self.postqueue("-f")
        if rc != 0:
            raise LabError("postqueue -f failed: %s" % out)

    def queue(self):
        """The queue listing (postqueue -j): a list of dicts, one per message."""
        import json
        rc, out = self.postqueue("-j")
        return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


class PostfixMx(_Maildirs, _Postfix):
    """A real Postfix smtpd as the receiving MX of `domain` on 127.0.0.1:port.

    users        local parts with a Maildir under mail/<user>/ (postmaster and bounces
                 are always added: use bounce_address as envelope sender to receive DSNs)
    access       {key: action} for check_recipient_access, e.g.
                 {"grey@lab.test": "450 4.2.0 greylisted, try later",
                  "blocked@lab.test": "554 5.7.1 policy", "drop@lab.test": "DISCARD"}
                 (keys are Postfix access keys: use full addresses)
    bounce_users accepted at RCPT, then bounced by a pipe transport exiting 67
                 (EX_NOUSER): a real DSN (5.1.1) goes to the envelope sender
    discard      accepted at RCPT and silently discarded (discard transport)
    junk_users   users whose mail is delivered to mail/<user>/.Junk/ (Dovecot: "Junk")
    size_limit   message_size_limit (SIZE in EHLO; 552 5.3.4 when exceeded)
    tls          STARTTLS with a certificate of the lab CA (ca_file)
    tlsmgr       False: no tlsmgr in master.cf, so STARTTLS is offered but answered
                 "454 4.7.0 TLS not available due to local problem"
    pki          a Pki to issue the certificate from (default: one of its own)
    extra_main   more main.cf settings {name: value}

    Names without "@" in bounce_users, discard and junk_users get "@domain".
    Mail for other domains is refused (554 5.7.1 Relay access denied): 127.0.0.1 is
    not in mynetworks.  Mail that would leave the lab (a DSN to a sender outside the
    domain, a postmaster notice) goes to the discard transport: it is logged as
    status=sent (... nothing leaves the lab) and never sent.
    """

    KIND = "postfix-mx"

    def __init__(self, workdir=None, domain="lab.test", users=("maria",), tls=True, tlsmgr=True,
                 access=None, size_limit=None, bounce_users=(), discard=(), junk_users=(),
                 port=None, hostname="mx.lab.test", pki=None, extra_main=None, cert_not_after=None):
        super().__init__(workdir=workdir, port=port, hostname=hostname, tls=tls, tlsmgr=tlsmgr,
                         pki=pki, size_limit=size_limit, extra_main=extra_main,
                         cert_not_after=cert_not_after)
        self.domain = domain.lower()
        self.users = []
        for u in list(users) + ["postmaster", "bounces"]:
            u = self._local(u)
            if u not in self.users:
                self.users.append(u)
        self.access = dict(access or {})
        self.bounce_users = [self._addr(a) for a in bounce_users]
        self.discard = [self._addr(a) for a in discard]
        self.junk_users = [self._addr(a) for a in junk_users]
        for a in self.junk_users:
            if a.split("@")[0] not in self.users:
                self.users.append(a.split("@")[0])

    def maildir_path(self, user, folder="INBOX"):
        """mail/<user>/ (INBOX) or mail/<user>/.<folder>/ (Maildir++)."""
        u = self._local(user)
        if folder in ("INBOX", "", None):
            return os.path.join(self.mail_dir, u)
        return os.path.join(self.mail_dir, u, "." + folder.lstrip("."))

    def _addr(self, a):
        return a.lower() if "@" in a else "%s@%s" % (a.lower(), self.domain)

    def _local(self, a):
        a = a.lower()
        if "@" in a:
            lp, dom = a.rsplit("@", 1)
            if dom != self.domain:
                raise LabError("user %s is not in the lab domain %s" % (a, self.domain))
            return lp
        return a

    @property
    def bounce_address(self):
        """Envelope sender whose DSNs land in the lab's own "bounces" mailbox."""
        return "bounces@" + self.domain

    def address(self, user):
        return self._addr(user)

    def _setup(self):
        super()._setup()
        for u in self.users:
            _make_maildir(os.path.join(self.mail_dir, u), self.uid, self.gid)
            _make_maildir(os.path.join(self.mail_dir, u, ".Junk"), self.uid, self.gid, folder=True)

    def _write_all_config(self):
        os.makedirs(self.config_dir, exist_ok=True)
        vmail = {}
        for u in self.users:
            a = "%s@%s" % (u, self.domain)
            vmail[a] = "%s/.Junk/" % u if a in self.junk_users else "%s/" % u
        transport = {}
        for a in self.bounce_users:
            vmail.setdefault(a, "_bounce/")     # listed, so RCPT accepts it
            transport[a] = "labbounce:"
        for a in self.discard:
            vmail.setdefault(a, "_discard/")
            transport[a] = "discard:lab discard list"
        main = self._main_common() + [
            ("virtual_mailbox_domains", self.domain),
            ("virtual_mailbox_base", self.mail_dir),
            ("virtual_mailbox_maps", self._table("vmailbox", vmail)),
            ("virtual_uid_maps", "static:%d" % self.uid),
            ("virtual_gid_maps", "static:%d" % self.gid),
            ("transport_maps", self._table("transport", transport)),
            # Anything not for the virtual domain (a DSN to an outside sender, a notice
            # to postmaster@$myhostname) is discarded: nothing may leave 127.0.0.1.
            ("default_transport", "discard:nothing leaves the lab"),
            ("relay_transport", "discard:nothing leaves the lab"),
            # MX role: mail for the domain from anyone, relaying denied with 554 5.7.1
            ("smtpd_relay_restrictions", "reject_unauth_destination"),
            ("smtpd_recipient_restrictions",
             "check_recipient_access " + self._table("access", self.access)),
        ]
        rows = self._master_common() + [
            # a DSN with 5.1.1 for bounce_users: the program exits EX_NOUSER (67)
            "labbounce unix - n n - - pipe flags=q user=nobody argv=/bin/sh -c {exit 67}",
        ]
        self._write_config(main, rows)

# ---------------------------------------------------------------- Dovecot

class _Dovecot(_Server):
    """dovecot -F -c FILE with base_dir, state_dir and log_path in the lab directory and a
    passwd-file passdb/userdb.  Subclasses say which protocols and listeners it has."""

    KIND = "dovecot"
    # SIGTERM to the master alone takes 1.1 s (it sleeps 1 s for its log process;
    # up to 6 s right after start; "doveadm stop" 3 s); SIGTERM to the whole process
    # group ends every Dovecot process at once.

    def __init__(self, workdir=None, accounts=None, uid=None, gid=None, mail_dir=None, pki=None,
                 hostname="imap.lab.test"):
        super().__init__(workdir)
        self.accounts = dict(accounts or {})    # login name -> (password, home)
        self.uid, self.gid = uid, gid
        self.mail_dir = mail_dir
        self.pki = pki
        self.hostname = hostname
        self.master = None
        self.cert_file = self.key_file = None

    def _check(self):
        _need_root("Dovecot")
        _need_exe(DOVECOT, "Debian package dovecot-core")
        _ids("dovecot")
        _ids("dovenull")
        if self.uid is None:
            self.uid, self.gid = _ids("postfix") if os.path.exists(POSTCONF) else _ids("nobody")

    @property
    def conf(self):
        return self.path("dovecot.conf")

    def _accounts_file(self):
        lines = []
        for name, (password, home) in sorted(self.accounts.items()):
            for ch in ":\n":
                if ch in name or ch in password:
                    raise LabError("account name/password may not contain %r" % ch)
            lines.append("%s:{PLAIN}%s:%d:%d::%s::" % (name, password, self.uid, self.gid, home or ""))
        return _write(self.path("passwd"), "\n".join(lines) + "\n", 0o640)

    def _conf_common(self, protocols):
        d = self.dir
        pw = self._accounts_file()
        os.chown(pw, 0, _ids("dovecot")[1])
        lines = [
            "# made by tests/lab/mta.py (%s)" % type(self).__name__,
            "base_dir = %s" % self.path("run"),
            "state_dir = %s" % self.path("state"),
            "instance_name = mdlab-%s" % os.path.basename(d),
            "log_path = %s" % self.path("dovecot.log"),
            "info_log_path = %s" % self.path("dovecot.log"),
            "listen = %s" % LOOPBACK,
            "protocols = %s" % protocols,
            "default_internal_user = dovecot",
            "default_login_user = dovenull",
            "first_valid_uid = %d" % min(self.uid, 500),
            "first_valid_gid = %d" % min(self.gid, 1),
            "auth_mechanisms = plain login",
            "auth_failure_delay = 0",      # a wrong password answers at once (default: 2 s)
            # no anvil auth penalty either (it delays every later login from 127.0.0.1,
            # successful ones too, by 2-15 s after a failure)
            "service anvil {",
            "  unix_listener anvil-auth-penalty {",
            "    mode = 0",
            "  }",
            "}",
            "disable_plaintext_auth = yes",
            "passdb {",
            "  driver = passwd-file",
            "  args = scheme=PLAIN username_format=%%u %s" % pw,
            "}",
            "userdb {",
            "  driver = passwd-file",
            "  args = username_format=%%u %s" % pw,
            "}",
        ]
        if self.pki is not None:
            if self.cert_file is None:
                self.cert_file, self.key_file = self.pki.issue(self.hostname)
            lines += ["ssl = yes", "ssl_cert = <%s" % self.cert_file,
                      "ssl_key = <%s" % self.key_file]
            if os.path.exists("/usr/share/dovecot/dh.pem"):
                lines.append("ssl_dh = </usr/share/dovecot/dh.pem")
        else:
            lines.append("ssl = no")
        return lines

    def _write_conf(self):
        raise NotImplementedError

    def _ready(self):
        return True

    def _launch(self):
        os.makedirs(self.path("state"), mode=0o755, exist_ok=True)
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in range(5):
            self._write_conf()
            chk = subprocess.run([DOVECOT, "-c", self.conf, "-n"], capture_output=True, text=True)
            if chk.returncode != 0:
                raise LabError("dovecot rejected %s:\n%s%s" % (self.conf, chk.stdout, chk.stderr))
            self.master = self._spawn([DOVECOT, "-F", "-c", self.conf], "dovecot.out")
            while time.monotonic() < deadline and self.master.poll() is None:
                if self._ready():
                    return
                time.sleep(0.03)
            if self.master.poll() is None:
                raise LabError("dovecot did not get ready within %.0f s; log:\n%s"
                               % (START_TIMEOUT, self.log()))
            rc = self.master.wait()
            self.procs.remove(self.master)
            text = self.log()
            if ("Address already in use" in text and not self._fixed_ports() and attempt < 4
                    and time.monotonic() < deadline):
                for n in ("dovecot.log", "dovecot.out"):
                    try:
                        os.unlink(self.path(n))
                    except OSError:
                        pass
                continue
            raise LabError("dovecot exited with %s; log:\n%s" % (rc, text))

    def _fixed_ports(self):
        return False

    def log(self):
        if not self.dir:
            return ""
        return _read(self.path("dovecot.log")) + _read(self.path("dovecot.out"))


class DovecotImap(_Dovecot):
    """Dovecot IMAP on 127.0.0.1: port (IMAP, STARTTLS) and imaps_port (implicit TLS).

        with PostfixMx(users=("maria",)) as mx, DovecotImap(mx, password="pw") as imap:
            c = imaplib.IMAP4("127.0.0.1", imap.port); c.starttls(imap.ssl_context())
            c.login("maria", "pw")     # or "maria@lab.test"

    mx         a PostfixMx whose Maildirs (mail/<user>/, folders as Maildir++ .Name/)
               this server reads: mail Postfix delivers is visible over IMAP.  Its users,
               domain, Maildir owner (postfix) and CA are used.
    users      without mx: local parts; mail_dir: the Maildir base (default: own dir)
    password   every user's password; passwords: {user: password} overrides
    Mailboxes: INBOX, Junk (\\Junk, the .Junk folder PostfixMx junk_users deliver to),
    Sent (\\Sent), Trash (\\Trash).  IDLE is in the capabilities (Dovecot's default).
    LOGIN/AUTHENTICATE PLAIN need TLS except from 127.0.0.1 (Dovecot treats loopback
    as secure).
    tls        False: ssl = no and no imaps listener (imaps_port stays None): STARTTLS
               is not offered, and logins from 127.0.0.1 go in plaintext."""

    KIND = "dovecot-imap"

    def __init__(self, mx=None, users=None, password="secret", passwords=None, domain=None,
                 mail_dir=None, workdir=None, pki=None, hostname="imap.lab.test", port=None,
                 imaps_port=None, tls=True):
        super().__init__(workdir=workdir, pki=(pki or (mx.pki if mx is not None else None)) if tls else None,
                         hostname=hostname)
        self.tls = tls
        self.mx = mx
        self.domain = domain or (mx.domain if mx is not None else "lab.test")
        self.users = list(users if users is not None else (mx.users if mx is not None else ("maria",)))
        self.password = password
        self.passwords = dict(passwords or {})
        self.want_ports = (port, imaps_port)
        self.port = self.imaps_port = None
        self._mail_dir_arg = mail_dir

    def _fixed_ports(self):
        return any(self.want_ports)

    def _setup(self):
        if self.mx is not None:
            if self.mx.dir is None:
                raise LabError("start the PostfixMx before the DovecotImap that reads its Maildirs")
            self.mail_dir = self.mx.mail_dir
            self.uid, self.gid = self.mx.uid, self.mx.gid
        else:
            self.mail_dir = self._mail_dir_arg or self.path("mail")
            os.makedirs(self.mail_dir, exist_ok=True)
            os.chown(self.mail_dir, self.uid, self.gid)
        if self.pki is None and self.tls:
            self.pki = Pki(self.path("pki"))
        for u in self.users:
            home = os.path.join(self.mail_dir, u)
            if not os.path.isdir(home):
                _make_maildir(home, self.uid, self.gid)
            pw = self.passwords.get(u, self.password)
            self.accounts[u] = (pw, home)
            self.accounts["%s@%s" % (u, self.domain)] = (pw, home)

    def _write_conf(self):
        self.port = self.want_ports[0] or mdlab.free_port()
        self.imaps_port = None
        if self.tls:
            self.imaps_port = self.want_ports[1] or mdlab.free_port()
            while self.imaps_port == self.port:
                self.imaps_port = mdlab.free_port()
        lines = self._conf_common("imap") + [
            # Maildir++ under the user's home: INBOX = <home>/, folder X = <home>/.X/
            "mail_location = maildir:%s/%%n" % self.mail_dir,
            "mail_uid = %d" % self.uid,
            "mail_gid = %d" % self.gid,
            "namespace inbox {",
            "  inbox = yes",
            "  mailbox Junk {",
            "    special_use = \\Junk",
            "    auto = subscribe",
            "  }",
            "  mailbox Sent {",
            "    special_use = \\Sent",
            "    auto = subscribe",
            "  }",
            "  mailbox Trash {",
            "    special_use = \\Trash",
            "    auto = subscribe",
            "  }",
            "}",
            "login_greeting = Dovecot (maildiag lab) ready.",
            "protocol imap {",
            "  mail_max_userip_connections = 100",
            "}",
            "service imap-login {",
            "  inet_listener imap {",
            "    address = %s" % LOOPBACK,
            "    port = %d" % self.port,
            "  }",
        ]
        if self.imaps_port:
            lines += [
                "  inet_listener imaps {",
                "    address = %s" % LOOPBACK,
                "    port = %d" % self.imaps_port,
                "    ssl = yes",
                "  }",
            ]
        lines.append("}")
        _write(self.conf, "\n".join(lines) + "\n")

    def _ready(self):
        if not read_greeting(self.port, 0.5).startswith(b"* OK"):
            return False
        if not self.imaps_port:
            return True
        try:
            with socket.create_connection((LOOPBACK, self.imaps_port), timeout=0.5):
                return True
        except OSError:
            return False

    def maildir(self, user, folder="INBOX"):
        u = user.split("@")[0].lower()
        p = os.path.join(self.mail_dir, u)
        if folder not in ("INBOX", "", None):
            p = os.path.join(p, "." + folder)
        return _maildir_files(p)


class _DovecotSasl(_Dovecot):
    """Dovecot as SASL server only (no IMAP): an auth socket for Postfix."""

    KIND = "dovecot-sasl"

    @property
    def socket_path(self):
        return self.path("run", "auth-postfix")

    def _setup(self):
        pass

    def _write_conf(self):
        lines = self._conf_common("none") + [
            "service auth {",
            "  unix_listener auth-postfix {",     # in base_dir
            "    mode = 0666",
            "  }",
            "}",
        ]
        _write(self.conf, "\n".join(lines) + "\n")

    def _ready(self):
        return os.path.exists(self.socket_path)


# ---------------------------------------------------------------- Postfix submission

class PostfixSubmission(_Postfix):
    """Postfix as a port-587 style submission relay on 127.0.0.1:port with real AUTH.

        with PostfixMx() as mx, PostfixSubmission(relay_to=mx) as sub:
            s = smtplib.SMTP("127.0.0.1", sub.port)
            s.starttls(context=sub.ssl_context()); s.login(sub.user, sub.password)
            s.sendmail(sub.user, ["maria@lab.test"], msg)   # relayed to mx

    user, password  the SASL account (Dovecot passwd-file; PLAIN and LOGIN)
    relay_to        None: every accepted message is delivered into this server's own
                    Maildir "outbox" (outbox() lists it; nothing is relayed anywhere);
                    a PostfixMx/Exim/any object with .port, or a port number, or
                    (host, port): relayhost = [127.0.0.1]:PORT (opportunistic TLS)
    require_tls     True: smtpd_tls_security_level = encrypt (MAIL before STARTTLS gets
                    530 5.7.0); default "may" so that the unauthenticated relay denial
                    (554 5.7.1) can be tested without TLS
    AUTH is offered only after STARTTLS (smtpd_tls_auth_only = yes); a wrong password
    gets 535 5.7.8 at once (Dovecot's failure delay and auth penalty are off); without
    AUTH nothing is relayed: 554 5.7.1 Relay access denied (127.0.0.1 is not in
    mynetworks).  The Dovecot SASL server lives in a directory inside this one.
    """

    KIND = "postfix-sub"

    def __init__(self, user="sender@lab.test", password="secret", relay_to=None, workdir=None,
                 port=None, hostname="smtp.lab.test", tls=True, require_tls=False, pki=None,
                 size_limit=None, accounts=None, extra_main=None, cert_not_after=None):
        super().__init__(workdir=workdir, port=port, hostname=hostname, tls=tls, tlsmgr=True,
                         pki=pki, size_limit=size_limit, extra_main=extra_main,
                         cert_not_after=cert_not_after)
        self.user = user
        self.password = password
        self.more_accounts = dict(accounts or {})
        self.relay_to = relay_to
        self.require_tls = require_tls
        self.sasl = None

    def _check(self):
        super()._check()
        _need_exe(DOVECOT, "Debian package dovecot-core")

    def _relay_hostport(self):
        r = self.relay_to
        if r is None:
            return None
        if isinstance(r, int):
            return LOOPBACK, r
        if isinstance(r, (tuple, list)):
            return r[0], int(r[1])
        return LOOPBACK, int(r.port)

    def _setup(self):
        super()._setup()
        _make_maildir(os.path.join(self.mail_dir, "outbox"), self.uid, self.gid)
        accounts = {self.user: (self.password, "")}
        for u, pw in self.more_accounts.items():
            accounts[u] = (pw, "")
        self.sasl = _DovecotSasl(workdir=self.dir, accounts=accounts, uid=self.uid, gid=self.gid)
        self.sasl.start()

    def _write_all_config(self):
        main = self._main_common() + [
            ("smtpd_sasl_auth_enable", "yes"),
            ("smtpd_sasl_type", "dovecot"),
            ("smtpd_sasl_path", self.sasl.socket_path),
            ("smtpd_sasl_security_options", "noanonymous"),
            ("smtpd_tls_auth_only", "yes"),
            ("smtpd_relay_restrictions", "permit_sasl_authenticated, reject_unauth_destination"),
            ("smtpd_recipient_restrictions", ""),
            ("virtual_mailbox_base", self.mail_dir),
            ("virtual_uid_maps", "static:%d" % self.uid),
            ("virtual_gid_maps", "static:%d" % self.gid),
        ]
        if self.require_tls and self.tls:
            main = [(k, "encrypt" if k == "smtpd_tls_security_level" else v) for k, v in main]
        hp = self._relay_hostport()
        if hp:
            main += [("relayhost", "[%s]:%d" % hp),
                     ("default_transport", "smtp"),
                     ("relay_transport", "smtp"),
                     ("smtp_tls_security_level", "may")]
        else:
            main += [("default_transport", "outbox"), ("relay_transport", "outbox")]
        rows = self._master_common() + [
            # capture mode: every message goes into mail/outbox/ (a Maildir)
            "outbox unix - n n - - virtual -o virtual_mailbox_maps=static:outbox/",
        ]
        self._write_config(main, rows)

    def outbox(self):
        """Paths of the messages captured in the outbox Maildir (relay_to=None)."""
        return _maildir_files(os.path.join(self.mail_dir, "outbox"))

    def wait_outbox(self, count=1, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            got = self.outbox()
            if len(got) >= count:
                return got
            if time.monotonic() > end:
                raise AssertionError("outbox holds %d message(s), %d expected; log:\n%s"
                                     % (len(got), count, self.log()[-4000:]))
            time.sleep(0.05)

    def log(self):
        text = super().log()
        if self.sasl is not None and self.sasl.dir:
            text += self.sasl.log()
        return text

    def _stop_procs(self):
        super()._stop_procs()
        if self.sasl is not None:
            self.sasl.stop()


# ---------------------------------------------------------------- Exim

class Exim(_Maildirs, _Server):
    """Exim 4 (Debian 12's exim4-daemon-light binary, unpacked by scripts/install-deps
    into /opt/maildiag-lab/exim4, never installed: it conflicts with postfix) as a
    second receiving MX of `domain` on 127.0.0.1:port.

        with Exim(users=("maria",), greylist=("grey",)) as ex:
            smtplib.SMTP("127.0.0.1", ex.port) ...; ex.wait_delivered("maria", 1)

    users      local parts delivered to Maildirs mail/<user>/ (owned by Debian-exim)
    greylist   addresses (or local parts) answered "450 4.2.0 greylisted, try later" at RCPT
    size_limit message_size_limit (Exim's default: 50 MB)
    tls        STARTTLS with a certificate of the lab CA (ca_file); False: not offered
    Unknown users: "550 5.1.1 <addr>: user unknown" at RCPT; other domains: "550 5.7.1
    relay not permitted".  Mail Exim itself would send out (a bounce to an outside
    sender) is routed to :blackhole:, so nothing leaves 127.0.0.1.

    Exim runs as "exim4 -C CONFIG -bdf" (foreground daemon).  Because CONFIG is not in
    Debian's TRUSTED_CONFIG_LIST, Exim gives up root at once and runs entirely as its
    compiled-in exim user Debian-exim (which install-deps creates): the spool, log and
    mail directories belong to that user, the high port needs no privilege, and the
    key is world-readable.  exim_path points re-executions (delivery) at the private
    binary; otherwise Exim re-execs /usr/sbin/exim4 and every delivery fails.
    """

    KIND = "exim"

    def __init__(self, workdir=None, domain="lab.test", users=("maria",), tls=True, greylist=(),
                 size_limit=None, port=None, hostname="mx2.lab.test", pki=None, extra_main=None):
        super().__init__(workdir)
        self.domain = domain.lower()
        self.users = []
        for u in list(users) + ["postmaster"]:
            u = u.lower().split("@")[0]
            if u not in self.users:
                self.users.append(u)
        self.greylist = [a.lower() if "@" in a else "%s@%s" % (a.lower(), self.domain)
                         for a in greylist]
        self.tls = tls
        self.size_limit = size_limit
        self.want_port = port
        self.port = None
        self.hostname = hostname
        self.pki = pki
        self.extra_main = dict(extra_main or {})
        self.bin = exim_binary()
        self.daemon = None

    def _check(self):
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            raise LabSkip("Exim is not unpacked at %s (scripts/install-deps does it; or set "
                          "MAILDIAG_EXIM to an exim4 binary)" % self.bin)
        _need_root("Exim")
        self.uid, self.gid = _ids("Debian-exim")
        v = subprocess.run([self.bin, "-C", "/dev/null", "-bV"], capture_output=True, text=True)
        if v.returncode != 0:
            raise LabSkip("%s -bV fails: %s" % (self.bin, (v.stdout + v.stderr).strip()[:300]))

    @property
    def conf(self):
        return self.path("exim.conf")

    @property
    def mail_dir(self):
        return self.path("mail")

    def maildir_path(self, user, folder="INBOX"):
        u = user.lower().split("@")[0]
        if folder in ("INBOX", "", None):
            return os.path.join(self.mail_dir, u)
        return os.path.join(self.mail_dir, u, "." + folder.lstrip("."))

    def _setup(self):
        if self.pki is None and self.tls:
            self.pki = Pki(self.path("pki"))
        for d in ("spool", "log", "mail"):
            os.mkdir(self.path(d), 0o750 if d != "mail" else 0o755)
            os.chown(self.path(d), self.uid, self.gid)
        for u in self.users:
            _make_maildir(self.maildir_path(u), self.uid, self.gid)
        # lsearch tables: key: value (the value becomes the untainted $local_part_data
        # used in the Maildir path; Exim 4.94+ refuses tainted file names)
        _write(self.path("users"), "".join("%s: %s\n" % (u, u) for u in self.users))
        _write(self.path("greylist"), "".join("%s: yes\n" % a for a in self.greylist))
        if self.tls:
            self.cert_file, self.key_file = self.pki.issue(self.hostname)

    def _write_conf(self):
        main = [
            ("primary_hostname", self.hostname),
            ("exim_path", self.bin),
            ("qualify_domain", self.domain),
            ("daemon_smtp_ports", str(self.port)),
            ("local_interfaces", LOOPBACK),
            ("spool_directory", self.path("spool")),
            ("log_file_path", self.path("log", "%slog")),
            ("pid_file_path", self.path("spool", "exim-daemon.pid")),
            ("keep_environment", ""),
            # no DNS, no ident: nothing leaves 127.0.0.1
            ("host_lookup", ""),
            ("rfc1413_hosts", ""),
            ("never_users", "root"),
            # a port in use: exit at once (the default retries 9 times, 30 s apart)
            ("daemon_startup_retries", "0"),
            ("acl_smtp_rcpt", "acl_check_rcpt"),
            ("timeout_frozen_after", "1h"),
            ("ignore_bounce_errors_after", "1m"),
        ]
        if self.tls:
            main += [("tls_advertise_hosts", "*"),
                     ("tls_certificate", self.cert_file),
                     ("tls_privatekey", self.key_file)]
        else:
            main += [("tls_advertise_hosts", "")]
        if self.size_limit is not None:
            main.append(("message_size_limit", str(int(self.size_limit))))
        merged = {}
        for k, v in main + sorted(self.extra_main.items()):
            merged.pop(k, None)
            merged[k] = v
        text = ["# made by tests/lab/mta.py (Exim)",
                "domainlist local_domains = %s" % self.domain]
        text += ["%s = %s" % kv for kv in merged.items()]
        text += [
            "",
            "begin acl",
            "acl_check_rcpt:",
            "  deny    domains = !+local_domains",
            "          message = 550 5.7.1 relay not permitted",
            "  defer   condition = ${lookup{$local_part@$domain}lsearch{%s}{yes}{no}}"
            % self.path("greylist"),
            "          message = 450 4.2.0 greylisted, try later",
            "  deny    !verify = recipient",
            "          message = 550 5.1.1 <$local_part@$domain>: user unknown",
            "  accept",
            "",
            "begin routers",
            "lab_users:",
            "  driver = accept",
            "  domains = +local_domains",
            "  local_parts = lsearch;%s" % self.path("users"),
            "  transport = lab_maildir",
            "# anything for elsewhere (a bounce to an outside sender) is dropped",
            "outside:",
            "  driver = redirect",
            "  domains = !+local_domains",
            "  data = :blackhole:",
            "",
            "begin transports",
            "lab_maildir:",
            "  driver = appendfile",
            "  directory = %s/$local_part_data" % self.mail_dir,
            "  maildir_format",
            "  create_directory",
            "  delivery_date_add",
            "  envelope_to_add",
            "  return_path_add",
            "  user = Debian-exim",
            "  mode = 0600",
            "",
        ]
        _write(self.conf, "\n".join(text) + "\n")

    def _launch(self):
        deadline = time.monotonic() + START_TIMEOUT
        for attempt in range(5):
            self.port = self.want_port or mdlab.free_port()
            self._write_conf()
            chk = subprocess.run([self.bin, "-C", self.conf, "-bV"], capture_output=True, text=True)
            if chk.returncode != 0:
                raise LabError("exim rejected %s:\n%s%s" % (self.conf, chk.stdout, chk.stderr))
            self.daemon = self._spawn([self.bin, "-C", self.conf, "-bdf"], "exim.out")
            if _wait_greeting(self.port, self.daemon, b"220", deadline, self.log) is not None:
                return
            rc = self.daemon.wait()
            self.procs.remove(self.daemon)
            text = self.log()
            if ("Address already in use" in text and not self.want_port and attempt < 4
                    and time.monotonic() < deadline):
                continue
            raise LabError("exim exited with %s on port %d; log:\n%s" % (rc, self.port, text))

    def log(self):
        """mainlog, paniclog and the daemon's stdout/stderr (rejectlog repeats mainlog)."""
        if not self.dir:
            return ""
        return "".join(_read(self.path("log", n)) for n in ("mainlog", "paniclog")) \
            + _read(self.path("exim.out"))
