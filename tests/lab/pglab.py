"""A throwaway PostgreSQL cluster for tests (python3 standard library only).

    with PgCluster() as pg:
        uri = pg.create_database("t1")   # postgresql://postgres@127.0.0.1:PORT/t1

initdb and pg_ctl refuse to run as root: as root they run as the postgres
user (runuser) on a temporary directory that user owns.  The server listens
on 127.0.0.1 only, on a free port, with its socket in the temporary
directory; it is stopped by pid and the directory removed afterwards.

Fault tests stop, start and restart the server in between, on the same port
and data: server_stop(), server_start(), server_restart().
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import mdlab


def find_bin(name):
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name), reverse=True)
    if not cands:
        raise mdlab.LabSkip("%s not found under /usr/lib/postgresql/*/bin (Debian package postgresql)" % name)
    return cands[0]


class PgCluster:
    START_TIMEOUT = 30.0

    def __init__(self):
        self.dir = None
        self.port = None
        self.pid = None
        self.user = None

    def _as_owner(self, argv):
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--"] + argv
        return argv

    def _run(self, argv, **kw):
        return subprocess.run(self._as_owner(argv), capture_output=True, text=True, **kw)

    def start(self):
        initdb = find_bin("initdb")
        find_bin("pg_ctl")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise mdlab.LabSkip("running as root and there is no postgres user to run initdb as")
            self.user = "postgres"
        else:
            pw = pwd.getpwuid(os.geteuid())
            self.user = pw.pw_name
        self.dir = tempfile.mkdtemp(prefix="mdlab-pg-")
        os.chmod(self.dir, 0o700)
        if os.geteuid() == 0:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        r = self._run([initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--no-sync", "--no-locale"])
        if r.returncode != 0:
            self.stop()
            raise mdlab.LabError("initdb failed:\n%s%s" % (r.stdout, r.stderr))
        deadline = time.monotonic() + self.START_TIMEOUT
        for _attempt in range(5):
            self.port = mdlab.free_port()
            r = self._pg_ctl("start")
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                break
        if r.returncode != 0:
            log = self._log()
            self.stop()
            raise mdlab.LabError("pg_ctl start failed:\n%s%s\n%s" % (r.stdout, r.stderr, log))
        self._read_pid()
        return self

    def _pg_ctl(self, action, *extra):
        opts = "-k %s -p %d -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60" % (
            self.dir, self.port)
        return self._run([find_bin("pg_ctl"), "-D", os.path.join(self.dir, "data"), "-o", opts, "-l",
                          os.path.join(self.dir, "log"), "-w", "-t", "20", action] + list(extra))

    def _log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def _read_pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            self.pid = int(f.readline().strip())

    # For fault tests: the server stopped and started again on the same port
    # and data directory (pg_ctl -m fast: sessions are terminated, their
    # open transactions rolled back).

    def server_stop(self):
        r = self._pg_ctl("stop", "-m", "fast")
        if r.returncode != 0:
            raise mdlab.LabError("pg_ctl stop failed:\n%s%s" % (r.stdout, r.stderr))
        self.pid = None

    def server_start(self):
        r = self._pg_ctl("start")
        if r.returncode != 0:
            raise mdlab.LabError("pg_ctl start failed (port %d):\n%s%s\n%s" % (self.port, r.stdout, r.stderr,
                                                                               self._log()))
        self._read_pid()

    def server_restart(self):
        r = self._pg_ctl("restart", "-m", "fast")
        if r.returncode != 0:
            raise mdlab.LabError("pg_ctl restart failed:\n%s%s\n%s" % (r.stdout, r.stderr, self._log()))
        self._read_pid()

    def psql(self, sql, db="postgres"):
        psql = shutil.which("psql") or find_bin("psql")
        r = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-d", db, "-At", "-c", sql],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise mdlab.LabError("psql failed: %s\n%s" % (sql, r.stderr))
        return r.stdout

    def create_database(self, name):
        self.psql("CREATE DATABASE %s" % name)
        return self.uri(name)

    def uri(self, name):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)   # fast shutdown
            except ProcessLookupError:
                pass
            end = time.monotonic() + 15
            while time.monotonic() < end:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.pid = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
