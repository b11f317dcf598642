#!/usr/bin/env python3
"""The store under faults, with real SQLite files and a real PostgreSQL
cluster (tests/lab/pglab.py): what maildiag-user and maildiag-selfcheck do
when the store is locked, read-only, damaged or full, or when its server
stops or restarts.  Every failure is a clear error naming the file or the
server and the cause, exit 3, and the store exactly as it was (row counts
and a hash of a dump, or the file's bytes); the rate limit and the audit
log stay exact under 20 concurrent self-checks while the store is locked
or restarted.

The faults are real: another process's write transaction (the sqlite3
shell, a Python sqlite3 connection), file modes checked as the user nobody
(runuser: the tests run as root, and root passes every permission check),
a read-only bind mount and a 512 KiB tmpfs (they need CAP_SYS_ADMIN: a test
that cannot mount skips and says why), RLIMIT_FSIZE, pg_ctl stop, start and
restart.  Emails go to Postfix's smtp-sink on 127.0.0.1.  Under valgrind
(class Valgrind; skipped in the sanitizer build) the failing commands leak
nothing; in the sanitizer build every command here runs under ASan+UBSan.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_store_faults.py Locked.test_writers_wait_then_fail
"""

import hashlib
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import pglab  # noqa: E402
import smtplab  # noqa: E402

BUSY_TIMEOUT = 10          # lib/store/db.c: DB_BUSY_TIMEOUT_MS
LOCKED = "is locked by another process (waited %d s for it)" % BUSY_TIMEOUT
TMP = None
SINK = None
KEYS = None

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
alice,alice@corp.test,active,password,,1
bob,bob@corp.test,active,password,,1
carol,carol@corp.test,active,password,,1
"""
BOUNCE = os.path.join(_TESTS, "fixtures", "bounces", "postfix-unknown-user.eml")   # nobody@example.net, 5.1.1
NEW_ROWS = "username,email\n" + "".join("n%d,n%d@new.test\n" % (i, i) for i in range(3))


def big_csv(n=20000):
    return "username,email,status\n" + "".join("user%05d,user%05d@bulk.test,active\n" % (i, i) for i in range(n))


def setUpModule():
    global TMP, SINK, KEYS
    mdlab.tool_path("maildiag-user")
    mdlab.tool_path("maildiag-selfcheck")
    TMP = tempfile.mkdtemp(prefix="mdtest-faults-")
    os.chmod(TMP, 0o755)   # the nobody cases go through it
    dump = os.path.join(TMP, "sink")
    os.mkdir(dump)
    SINK = smtplab.Sink(dump_dir=dump).start()
    KEYS = os.path.join(TMP, "token.keys")
    with open(KEYS, "w") as f:
        f.write("cd" * 32 + "\n")
    os.chmod(KEYS, 0o600)


def tearDownModule():
    if SINK:
        SINK.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


# ---------------------------------------------------------------- running the tools

def conf_for(dirpath, uri, name="maildiag.conf", per_address="1000/3600", overall="100000/60", mail=True):
    path = os.path.join(dirpath, name)
    with open(path, "w") as f:
        f.write("[store]\nuri = %s\n[selfcheck]\nmin_time = 0\nper_address = %s\noverall = %s\n"
                % (uri, per_address, overall))
        if mail:
            f.write("[mail]\nfrom = noreply@product.test\nserver = 127.0.0.1:%d\ntls = off\ntimeout = 10\n"
                    "[token]\nkey_file = %s\nreset_url = https://app.product.test/reset?token=\n"
                    % (SINK.port, KEYS))
    os.chmod(path, 0o600 if mail else 0o644)   # nobody reads the ones without keys
    return path


def run(argv, stdin=None, as_nobody=False, preexec_fn=None, timeout=180, env=None):
    if as_nobody:
        argv = ["runuser", "-u", "nobody", "--"] + argv
    t0 = time.monotonic()
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, errors="replace", timeout=timeout,
                       env=env or mdlab.tool_env(), preexec_fn=preexec_fn)
    return mdlab.Run(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def user_argv(conf, *args):
    return [mdlab.tool_path("maildiag-user"), "--config", conf, "--no-dns"] + list(args)


def selfcheck_argv(conf, addr, *extra):
    return [mdlab.tool_path("maildiag-selfcheck"), "--config", conf, "--no-dns", "--min-time", "0",
            "--want", "reset"] + list(extra) + [addr]


def user(conf, *args, **kw):
    return run(user_argv(conf, *args), **kw)


def new_store(name, csv=ACCOUNTS, uri=None):
    """A store (SQLite in its own directory unless uri is given) with
    accounts, an active session of alice's and a suppression of
    bounced@corp.test: something for every write command to change."""
    d = os.path.join(TMP, name)
    os.mkdir(d)
    os.chmod(d, 0o755)
    path = os.path.join(d, "store.db")
    uri = uri or "sqlite:" + path
    conf = conf_for(d, uri)
    for args, stdin in ((["init"], None), (["import", "-"], csv),
                        (["suppression", "add", "bounced@corp.test", "--reason", "hard-bounce"], None)):
        r = user(conf, *args, stdin=stdin)
        assert r.rc == 0, str(r)
    now = int(time.time())
    sql = ("INSERT INTO sessions (account_id, created_at, expires_at)"
           " SELECT id, %d, %d FROM accounts WHERE username = 'alice'" % (now, now + 86400))
    if uri.startswith("sqlite:"):
        db = sqlite3.connect(path)
        db.execute(sql)
        db.commit()
        db.close()
    return conf, path, uri


def snapshot(path):
    """Every table's row count and a hash of a dump of the whole store, read
    through SQLite (the WAL included) on a read-only connection."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        counts = {t: db.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
                  for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")}
        dump = hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
    finally:
        db.close()
    return counts, dump


def pg_snapshot(pg, dbname):
    counts = {}
    for t in pg.psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                     " ORDER BY 1", db=dbname).split():
        rows = pg.psql("SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), ''))"
                       " FROM %s x" % t, db=dbname).strip()
        counts[t] = rows
    return counts


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sink_count():
    return len([n for n in os.listdir(SINK.dump_dir) if n.startswith("msg.")])


def checkpoint(path):
    """Folds the WAL into the file and removes -wal and -shm (the last
    connection of Python's sqlite3 closes without persisting them)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for ext in ("-wal", "-shm"):
        assert not os.path.exists(path + ext), path + ext


def nobody_ids():
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        raise unittest.SkipTest("no user nobody to check file permissions as")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        raise unittest.SkipTest("the permission cases run the tools as nobody: need root and runuser")
    return pw.pw_uid, pw.pw_gid


def chown_tree(d, uid, gid):
    os.chown(d, uid, gid)
    for n in os.listdir(d):
        os.chown(os.path.join(d, n), uid, gid)


class Holder:
    """A write transaction held open on an SQLite store by another process:
    the sqlite3 shell (via="sqlite3") or a Python sqlite3 connection
    (via="python"), BEGIN EXCLUSIVE plus the statements given, until
    release(commit=False).  It queues for the lock like any writer (busy
    timeout 60 s)."""

    PY = ("import sqlite3, sys\n"
          "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
          "db.execute('BEGIN EXCLUSIVE')\n"
          "for s in sys.argv[2:]:\n"
          "    db.execute(s)\n"
          "print('held', flush=True)\n"
          "db.execute('COMMIT' if sys.stdin.readline().strip() == 'commit' else 'ROLLBACK')\n"
          "print('done', flush=True)\n")

    def __init__(self, path, *sql, via="python"):
        self.path, self.sql, self.via, self.proc = path, list(sql), via, None

    def __enter__(self):
        if self.via == "sqlite3":
            if shutil.which("sqlite3") is None:
                raise unittest.SkipTest("the sqlite3 shell is not installed (Debian package sqlite3)")
            self.proc = subprocess.Popen(["sqlite3", "-batch", self.path], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.proc.stdin.write(".timeout 60000\nBEGIN EXCLUSIVE;\n%s\nSELECT 'held';\n"
                                  % "\n".join(s + ";" for s in self.sql))
            self.proc.stdin.flush()
        else:
            self.proc = subprocess.Popen([sys.executable, "-c", self.PY, self.path] + self.sql,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        line = self.proc.stdout.readline().strip()
        if line != "held":
            self.proc.kill()
            raise AssertionError("the lock holder (%s) did not take the lock: %r %s"
                                 % (self.via, line, self.proc.stderr.read()))
        return self

    def release(self, commit=False):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if self.via == "sqlite3":
            p.stdin.write("%s;\nSELECT 'done';\n.quit\n" % ("COMMIT" if commit else "ROLLBACK"))
        else:
            p.stdin.write("commit\n" if commit else "rollback\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
        assert "done" in out and p.returncode == 0, "the lock holder failed: %r %r" % (out, err)

    def release_after(self, seconds, commit=False):
        t = threading.Timer(seconds, self.release, kwargs={"commit": commit})
        t.start()
        return t

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        return False


def start_all(argvs, as_nobody=False):
    """Starts every argv at once; returns the Popen objects."""
    out = []
    for argv in argvs:
        if as_nobody:
            argv = ["runuser", "-u", "nobody", "--"] + argv
        out.append((argv, time.monotonic(), subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            errors="replace", env=mdlab.tool_env())))
    return out


def wait_all(started, timeout=180):
    runs = []
    for argv, t0, p in started:
        out, err = p.communicate(timeout=timeout)
        runs.append(mdlab.Run(argv, p.returncode, out, err, time.monotonic() - t0))
    return runs


# The commands that write, each with what it writes:
#   (name, maildiag-user arguments)
def writers(export_to):
    return [
        ("init", ["init"]),                                               # the audit record of init
        ("import", ["import", "-"]),                                       # accounts
        ("suppression add", ["suppression", "add", "new@corp.test", "--reason", "manual"]),
        ("suppression remove", ["suppression", "remove", "bounced@corp.test"]),
        ("sessions revoke", ["sessions", "revoke", "alice@corp.test"]),
        ("remind", ["remind", "bob@corp.test"]),                          # the send log
        ("lookup", ["lookup", "alice@corp.test"]),                        # the audit record of a read
        ("export", ["export", export_to]),                                 # the same
        ("bounces", ["bounces", "--file", BOUNCE, "--apply"]),             # a suppression
    ]


class FaultCase(unittest.TestCase):
    def assertFailedClearly(self, r, *words):
        """Exit 3, every word in the error, no sanitizer report."""
        self.assertEqual(r.rc, 3, str(r))
        for w in words:
            self.assertIn(w, r.err, str(r))
        self.assertNotIn("Sanitizer", r.err, str(r))

    def assertNothingClaimed(self, name, r):
        """A failed command printed no answer; bounces prints its message,
        and must not call it suppressed."""
        if name == "bounces":
            self.assertNotIn(": suppressed", r.out, str(r))
            if r.out:
                self.assertIn("NOT suppressed (the store failed)", r.out, str(r))
        else:
            self.assertEqual(r.out, "", "%s answered although it could not record it:\n%s" % (name, r))

    def assertClean(self, r, rcs=(0,)):
        self.assertIn(r.rc, rcs, str(r))
        self.assertNotIn("Sanitizer", r.err, str(r))


# ---------------------------------------------------------------- 1. a locked SQLite file

class Locked(FaultCase):
    """Another process holds the write lock: writers wait the busy timeout
    and fail, changing nothing; readers do not wait (WAL)."""

    def test_writers_wait_then_fail(self):
        conf, path, _ = new_store("locked")
        export_to = os.path.join(TMP, "locked-export.csv")
        before, mails = snapshot(path), sink_count()
        with Holder(path, "INSERT INTO audit_log (at, operator, action, target) VALUES (1, 'x', 'held', 'y')",
                    via="python") as h:
            cmds = writers(export_to)
            started = start_all([user_argv(conf, *args) for _, args in cmds] +
                                [selfcheck_argv(conf, "alice@corp.test")])
            runs = wait_all(started)
            h.release()
        for (name, _), r in zip(cmds, runs):
            with self.subTest(command=name):
                self.assertFailedClearly(r, path, LOCKED)
                self.assertGreater(r.elapsed, BUSY_TIMEOUT - 0.5, "%s did not wait the busy timeout" % name)
                self.assertNothingClaimed(name, r)
        sc = runs[-1]
        self.assertFailedClearly(sc, path, LOCKED)
        self.assertIn("The service is unavailable", sc.out)
        self.assertIn("nothing was sent", runs[5].err)
        self.assertIn("nothing was exported", runs[7].err)
        self.assertFalse(os.path.exists(export_to), "export created its file")
        self.assertEqual(snapshot(path), before, "the store changed")
        time.sleep(0.3)
        self.assertEqual(sink_count(), mails, "an email went out")
        # Released: the same store takes writes at once.
        r = user(conf, "suppression", "add", "new@corp.test", "--reason", "manual")
        self.assertClean(r)

    def test_remind_reports_a_lost_send_log_record(self):
        # The lock comes after remind found the store writable, while the
        # email is being sent (the SMTP server never answers; [mail]
        # timeout 2 s), and outlasts the busy timeout of the send-log
        # write: remind says the record was lost and exits 3; its audit
        # record, written once the lock is gone, keeps the outcome.
        conf, path, _ = new_store("locked-remind")
        with smtplab.Hostile("hang") as hang:
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("server = 127.0.0.1:%d\ntls = off\ntimeout = 10" % SINK.port,
                                     "server = 127.0.0.1:%d\ntls = off\ntimeout = 2" % hang.port))
            (argv, t0, p), = start_all([user_argv(conf, "remind", "bob@corp.test")])
            deadline = time.monotonic() + 30
            while not hang.conns and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(hang.conns, "remind never connected to the SMTP server")
            with Holder(path, via="python") as h:
                t = h.release_after(BUSY_TIMEOUT + 5)
                out, err = p.communicate(timeout=120)
                t.join()
        r = mdlab.Run(argv, p.returncode, out, err, time.monotonic() - t0)
        print("\n# " + r.err.strip().replace("\n", "\n# "))
        self.assertFailedClearly(r, "send log record was lost", path, LOCKED)
        self.assertIn("reminder for 1 username to bob@corp.test: failed", r.out)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("SELECT count(*) FROM send_log WHERE to_address = 'bob@corp.test'").fetchone(), (0,))
        self.assertEqual(db.execute("SELECT detail FROM audit_log WHERE action = 'remind'").fetchall()[-1][0][:7], "failed:")
        db.close()

    def test_sqlite3_shell_holds_the_lock(self):
        conf, path, _ = new_store("locked-shell")
        before = snapshot(path)
        with Holder(path, "DELETE FROM suppressions", via="sqlite3") as h:
            runs = wait_all(start_all([user_argv(conf, "init"),
                                       user_argv(conf, "suppression", "add", "x@corp.test", "--reason", "manual")]))
            h.release()
        for r in runs:
            self.assertFailedClearly(r, path, LOCKED)
        self.assertEqual(snapshot(path), before)

    def test_readers_see_the_last_commit_without_waiting(self):
        # WAL: a reader during another process's write transaction neither
        # waits nor sees that transaction's rows; once it commits, the next
        # read sees them.  lookup and export are reads that write an audit
        # record: they are writers here (test_writers_wait_then_fail).
        conf, path, _ = new_store("wal")
        with Holder(path, "INSERT INTO suppressions (address, reason, since) VALUES ('pending@corp.test', 'manual', 1)",
                    "UPDATE sessions SET revoked_at = 2",
                    "INSERT INTO audit_log (at, operator, action, target) VALUES (3, 'x', 'uncommitted', 'y')",
                    via="sqlite3") as h:
            reads = [user(conf, "--json", "suppression", "list"), user(conf, "--json", "audit"),
                     user(conf, "--json", "sessions", "list", "alice@corp.test")]
            for r in reads:
                self.assertClean(r)
                self.assertLess(r.elapsed, BUSY_TIMEOUT / 2, "a reader waited for the writer:\n%s" % r)
            sup, aud, ses = (json.loads(r.out) for r in reads)
            self.assertEqual([s["address"] for s in sup["suppressions"]], ["bounced@corp.test"])
            self.assertNotIn("uncommitted", [a["action"] for a in aud["records"]])
            self.assertEqual([s["state"] for s in ses["sessions"]], ["active"])
            h.release(commit=True)
        sup = json.loads(user(conf, "--json", "suppression", "list").out)
        self.assertEqual(sorted(s["address"] for s in sup["suppressions"]), ["bounced@corp.test", "pending@corp.test"])
        ses = json.loads(user(conf, "--json", "sessions", "list", "alice@corp.test").out)
        self.assertEqual([s["state"] for s in ses["sessions"]], ["revoked"])

    def test_a_short_lock_is_waited_out(self):
        conf, path, _ = new_store("locked-short")
        with Holder(path, via="python") as h:
            t = h.release_after(2.0)
            r = user(conf, "suppression", "add", "late@corp.test", "--reason", "manual")
            t.join()
        self.assertClean(r)
        self.assertGreater(r.elapsed, 1.5, "the write did not wait for the lock:\n%s" % r)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("SELECT count(*) FROM suppressions WHERE address = 'late@corp.test'").fetchone(), (1,))
        self.assertEqual(db.execute("SELECT count(*) FROM audit_log WHERE action = 'suppression.add'"
                                    " AND target = 'late@corp.test'").fetchone(), (1,))
        db.close()


# ---------------------------------------------------------------- 2. read-only file, directory, file system

class ReadOnly(FaultCase):
    """Permissions are checked as nobody (root passes them all); a read-only
    file system with a bind mount, as root."""

    def check_refused(self, conf, path, why, as_nobody, reads_work, export_to, snap=True):
        # snap=False where reading as root would create the -wal and -shm
        # files the case is about; the file's bytes are compared instead.
        before = snapshot(path) if snap else None
        digest, mails = sha256_file(path), sink_count()
        for name, args in writers(export_to):
            with self.subTest(command=name):
                r = run(user_argv(conf, *args), stdin=NEW_ROWS, as_nobody=as_nobody)
                self.assertFailedClearly(r, path, why)
                self.assertNothingClaimed(name, r)
        r = run(selfcheck_argv(conf, "alice@corp.test"), as_nobody=as_nobody)
        self.assertFailedClearly(r, path, why)
        self.assertIn("The service is unavailable", r.out)
        for args in (["audit"], ["suppression", "list"], ["sessions", "list", "alice@corp.test"]):
            r = run(user_argv(conf, *args), as_nobody=as_nobody)
            if reads_work:
                self.assertClean(r)
            else:
                self.assertFailedClearly(r, path, why)
        self.assertFalse(os.path.exists(export_to), "export created its file")
        self.assertEqual(sha256_file(path), digest, "the file changed")
        if before is not None:
            self.assertEqual(snapshot(path), before, "the store changed")
        time.sleep(0.3)
        self.assertEqual(sink_count(), mails, "an email went out")

    def test_read_only_file(self):
        # The file is 0444; its directory, -wal and -shm are nobody's.
        # Reads work; every write fails, and so do the reads that must
        # leave an audit record (lookup, export): the audit log is a
        # security record, so no answer goes out unrecorded.
        uid, gid = nobody_ids()
        conf, path, uri = new_store("ro-file")
        nconf = conf_for(os.path.dirname(path), uri, name="nobody.conf", mail=False)
        chown_tree(os.path.dirname(path), uid, gid)
        os.chmod(path, 0o444)
        out = os.path.join(TMP, "ro-file-out")
        os.mkdir(out)
        os.chown(out, uid, gid)
        self.check_refused(nconf, path, "this user has no write permission on it", True, True,
                           os.path.join(out, "export.csv"))

    def test_directory_not_writable(self):
        # The file is nobody's and writable, its directory is not: SQLite
        # cannot create the -wal and -shm files, so nothing works, reads
        # included, and no file appears beside the store.
        uid, gid = nobody_ids()
        conf, path, uri = new_store("ro-dir")
        nconf = conf_for(TMP, uri, name="ro-dir.conf", mail=False)
        checkpoint(path)
        os.chown(path, uid, gid)
        listing = sorted(os.listdir(os.path.dirname(path)))
        out = os.path.join(TMP, "ro-dir-out")
        os.mkdir(out)
        os.chown(out, uid, gid)
        self.check_refused(nconf, path, "its directory is not writable", True, False, os.path.join(out, "export.csv"),
                           snap=False)
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))), listing)

    def test_read_only_file_system(self):
        # A read-only bind mount, as root: the kernel refuses what
        # permissions would let root do.
        for with_wal in (True, False):
            with self.subTest(wal_files=with_wal):
                conf, path, uri = new_store("ro-mount-%d" % with_wal)
                if with_wal:   # maildiag keeps them between runs (SQLITE_FCNTL_PERSIST_WAL)
                    self.assertClean(user(conf, "audit"))
                    self.assertTrue(os.path.exists(path + "-wal") and os.path.exists(path + "-shm"))
                else:
                    checkpoint(path)
                mnt = os.path.join(TMP, "ro-mount-%d-mnt" % with_wal)
                os.mkdir(mnt)
                src = os.path.dirname(path)
                r = subprocess.run(["mount", "--bind", src, mnt], capture_output=True, text=True)
                if r.returncode != 0:
                    self.skipTest("cannot bind-mount (needs CAP_SYS_ADMIN): %s" % r.stderr.strip())
                try:
                    r = subprocess.run(["mount", "-o", "remount,bind,ro", mnt], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    mpath = os.path.join(mnt, "store.db")
                    mconf = conf_for(TMP, "sqlite:" + mpath, name="ro-mount-%d.conf" % with_wal)
                    why = "it is on a read-only file system"
                    self.check_refused(mconf, mpath, why, False, with_wal,
                                       os.path.join(TMP, "ro-mount-%d-export.csv" % with_wal), snap=with_wal)
                finally:
                    if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                        subprocess.run(["umount", "-l", mnt], capture_output=True)
                    os.rmdir(mnt)


# ---------------------------------------------------------------- 3. corrupt files

def damaged(name):
    """(path, the words of the error) for each kind of damage: random bytes,
    a text file, a valid store cut in the middle (at a page boundary, and
    not)."""
    d = os.path.join(TMP, name)
    os.mkdir(d)
    out = []
    p = os.path.join(d, "random.db")
    with open(p, "wb") as f:
        f.write(os.urandom(65536))
    out.append((p, "is not a maildiag store"))
    p = os.path.join(d, "text.db")
    with open(p, "w") as f:
        f.write("This is a text file, not a database.\n" * 200)
    out.append((p, "is not a maildiag store"))
    _, good, _ = new_store(name + "-good", csv=big_csv(3000))
    checkpoint(good)
    with open(good, "rb") as f:
        data = f.read()
    for cut, label in ((len(data) // 2 // 4096 * 4096, "page"), (len(data) // 2 + 1000, "odd")):
        p = os.path.join(d, "truncated-%s.db" % label)
        with open(p, "wb") as f:
            f.write(data[:cut])
        out.append((p, "is damaged"))
    return out


class Corrupt(FaultCase):
    def test_damaged_files_are_refused_and_left_alone(self):
        for path, words in damaged("corrupt"):
            conf = conf_for(os.path.dirname(path), "sqlite:" + path, name=os.path.basename(path) + ".conf")
            digest = sha256_file(path)
            export_to = path + ".export.csv"
            for name, args in [("init", ["init"])] + writers(export_to)[1:] + [("audit", ["audit"])]:
                with self.subTest(file=os.path.basename(path), command=name):
                    r = user(conf, *args, stdin=NEW_ROWS)
                    self.assertFailedClearly(r, path, words)
                    self.assertNothingClaimed(name, r)
            r = run(selfcheck_argv(conf, "alice@corp.test"))
            self.assertFailedClearly(r, path, words)
            self.assertEqual(sha256_file(path), digest, "%s changed: init must never repair" % path)
            self.assertFalse(os.path.exists(export_to))
            if os.path.exists(path + "-wal"):   # SQLite may create an empty one to read
                self.assertEqual(os.path.getsize(path + "-wal"), 0, "something was written for %s" % path)


# ---------------------------------------------------------------- 4. disk full, file size limit

class Full(FaultCase):
    def check_import_rolls_back(self, conf, path, words, **kw):
        before = snapshot(path)
        r = user(conf, "import", "-", stdin=big_csv(), **kw)
        self.assertFailedClearly(r, path, *words)
        self.assertRegex(r.err, r"line \d+: ")
        self.assertEqual(snapshot(path), before, "the import did not roll back whole")
        return r

    def test_disk_full(self):
        d = os.path.join(TMP, "full")
        os.mkdir(d)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", d],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs CAP_SYS_ADMIN): %s" % r.stderr.strip())
        try:
            path = os.path.join(d, "store.db")
            conf = conf_for(TMP, "sqlite:" + path, name="full.conf")
            for args, stdin in ((["init"], None), (["import", "-"], ACCOUNTS)):
                self.assertClean(user(conf, *args, stdin=stdin))
            self.check_import_rolls_back(conf, path, ["the disk is full"])
            # The transaction's pages are given back: the store goes on.
            self.assertClean(user(conf, "suppression", "add", "after@corp.test", "--reason", "manual"))
            self.assertClean(user(conf, "lookup", "alice@corp.test"))
        finally:
            if subprocess.run(["umount", d], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", d], capture_output=True)

    def test_file_size_limit(self):
        _, path, _ = new_store("fsize")
        conf = os.path.join(TMP, "fsize", "maildiag.conf")
        limit = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) + 128 * 1024

        def limited():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)   # what a shell gives its children

        # The limit is real: a process that keeps SIGXFSZ's default dies of it.
        probe = subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(TMP, "fsize", "probe"), "bs=1M",
                                "count=1"], capture_output=True, preexec_fn=limited)
        self.assertEqual(probe.returncode, -signal.SIGXFSZ, probe)
        self.check_import_rolls_back(conf, path, ["file size limit"], preexec_fn=limited)   # exit 3, not the signal
        self.assertClean(user(conf, "suppression", "add", "after@corp.test", "--reason", "manual"))


# ---------------------------------------------------------------- 5. PostgreSQL stopped and restarted

class Postgres(FaultCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pglab.PgCluster().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        if self.pg.pid is None:   # a failed test left it stopped
            self.pg.server_start()

    def store(self, name, csv=ACCOUNTS):
        uri = self.pg.create_database(name)
        return new_store("pg-" + name, csv=csv, uri=uri)[0], uri

    def activity(self, where):
        return self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE %s" % where).strip()

    def wait_activity(self, where, what, timeout=30):
        deadline = time.monotonic() + timeout
        while self.activity(where) == "0":
            if time.monotonic() > deadline:
                self.fail("PostgreSQL never showed %s" % what)
            time.sleep(0.05)

    def test_server_down_fails_fast_and_up_works(self):
        conf, uri = self.store("down")
        self.pg.server_stop()
        try:
            for args in (["init"], ["lookup", "alice@corp.test"], ["import", "-"],
                         ["suppression", "add", "x@corp.test", "--reason", "manual"], ["audit"]):
                with self.subTest(command=args[0]):
                    r = user(conf, *args, stdin=NEW_ROWS)
                    self.assertFailedClearly(r, "cannot connect to PostgreSQL", "Connection refused")
                    self.assertLess(r.elapsed, 5, "a refused connection took long:\n%s" % r)
            r = run(selfcheck_argv(conf, "alice@corp.test"))
            self.assertFailedClearly(r, "cannot connect to PostgreSQL")
            self.assertIn("The service is unavailable", r.out)
        finally:
            self.pg.server_start()
        # No manual step: the next command connects anew.
        self.assertClean(user(conf, "lookup", "alice@corp.test"))
        self.assertClean(user(conf, "suppression", "add", "x@corp.test", "--reason", "manual"))

    def test_restart_between_commands(self):
        conf, uri = self.store("restart")
        self.assertClean(user(conf, "lookup", "alice@corp.test"))
        self.pg.server_restart()
        self.assertClean(user(conf, "lookup", "alice@corp.test"))
        self.assertClean(user(conf, "import", "-", stdin=NEW_ROWS))

    def test_unanswering_server_is_bounded(self):
        # A server that accepts the connection and says nothing (hung, or
        # a black hole): connect_timeout (10 s by default) ends the wait.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        try:
            uri = "postgresql://postgres@127.0.0.1:%d/x" % s.getsockname()[1]
            conf = conf_for(TMP, uri, name="blackhole.conf", mail=False)
            r = user(conf, "lookup", "alice@corp.test")
            self.assertFailedClearly(r, "cannot connect to PostgreSQL", "timeout")
            self.assertLess(r.elapsed, 20, "not bounded by connect_timeout:\n%s" % r)
        finally:
            s.close()

    def test_import_in_flight(self):
        conf, uri = self.store("inflight")
        dbname = uri.rsplit("/", 1)[1]
        before = pg_snapshot(self.pg, dbname)
        p = subprocess.Popen(user_argv(conf, "import", "-"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=mdlab.tool_env())
        rows = big_csv(4000).splitlines(True)
        p.stdin.write("".join(rows[:2001]))
        p.stdin.flush()
        # The import has inserted what it was given and waits for more,
        # inside its transaction.
        self.wait_activity("datname = '%s' AND application_name = 'maildiag' AND state = 'idle in transaction'"
                           % dbname, "the import's open transaction")
        self.pg.server_stop()
        try:
            try:
                p.stdin.write("".join(rows[2001:]))
                p.stdin.close()
            except BrokenPipeError:
                pass   # the import ended first (it lost its server) and stopped reading
            try:
                p.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            p.stdin = None   # closed, whatever the close said: communicate() must not flush it
            out, err = p.communicate(timeout=60)
        finally:
            self.pg.server_start()
        r = mdlab.Run(p.args, p.returncode, out, err, 0)
        self.assertFailedClearly(r, "lost the connection to PostgreSQL")
        self.assertEqual(out, "")
        # one line, ours: libpq prints nothing of its own (the server's
        # "FATAL: terminating connection" came raw on standard error)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertEqual(pg_snapshot(self.pg, dbname), before, "the import left rows behind")
        # The next import works without any manual step.
        self.assertClean(user(conf, "import", "-", stdin=NEW_ROWS))

    def test_migration_in_flight(self):
        # init stopped in the middle of its migration (blocked by another
        # session's uncommitted table of the same name, then the server
        # stops): nothing of the migration stays, and init after the
        # restart creates the whole schema.
        uri = self.pg.create_database("mig")
        conf = conf_for(TMP, uri, name="mig.conf", mail=False)
        psql = shutil.which("psql") or pglab.find_bin("psql")
        blocker = subprocess.Popen([psql, "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
                                    "-d", "mig"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        blocker.stdin.write("BEGIN; CREATE TABLE rate_limits (x int);\n")
        blocker.stdin.flush()
        self.wait_activity("datname = 'mig' AND application_name = 'psql' AND state = 'idle in transaction'",
                           "the blocking session")
        init = subprocess.Popen(user_argv(conf, "init"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=mdlab.tool_env())
        self.wait_activity("datname = 'mig' AND application_name = 'maildiag' AND wait_event_type = 'Lock'",
                           "init waiting in the middle of its migration")
        self.pg.server_stop()
        try:
            out, err = init.communicate(timeout=60)
            blocker.communicate(timeout=30)
        finally:
            self.pg.server_start()
        r = mdlab.Run(init.args, init.returncode, out, err, 0)
        self.assertFailedClearly(r, "PostgreSQL")
        self.assertNotIn("SQLSTATE ?", r.err)
        tables = self.pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                              db="mig").strip()
        self.assertEqual(tables, "0", "a half-applied migration stayed")
        r = user(conf, "init")
        self.assertClean(r)
        self.assertIn("created", r.out)

    def test_accepted_request_survives_a_restart(self):
        # The answer "an email is on its way" is given before the private
        # half runs.  Here that half waits for its audit record (another
        # session holds audit_log) when the server restarts under it: it
        # tries again, records, and sends; nothing is lost or unaudited.
        conf, uri = self.store("child")
        dbname = uri.rsplit("/", 1)[1]
        psql = shutil.which("psql") or pglab.find_bin("psql")
        blocker = subprocess.Popen([psql, "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres",
                                    "-d", dbname], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        blocker.stdin.write("BEGIN; LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE;\n")
        blocker.stdin.flush()
        self.wait_activity("datname = '%s' AND application_name = 'psql' AND state = 'idle in transaction'" % dbname,
                           "the session holding audit_log")
        mails = sink_count()
        p = subprocess.Popen(selfcheck_argv(conf, "alice@corp.test", "--wait"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=mdlab.tool_env())
        self.wait_activity("datname = '%s' AND application_name = 'maildiag' AND wait_event_type = 'Lock'" % dbname,
                           "the private half waiting to write its audit record")
        self.pg.server_restart()
        out, err = p.communicate(timeout=120)
        blocker.communicate(timeout=30)
        self.assertEqual((p.returncode, err), (0, ""), out + err)
        self.assertIn("We are sending an email", out)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM audit_log WHERE action = 'selfcheck.reset'"
                                      " AND target = 'alice@corp.test'", db=dbname).strip(), "1")
        self.assertEqual(self.pg.psql("SELECT count(*) FROM send_log WHERE to_address = 'alice@corp.test'",
                                      db=dbname).strip(), "1")
        deadline = time.monotonic() + 10
        while sink_count() == mails and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(sink_count(), mails + 1)

    def test_lost_send_log_record_is_audited(self):
        # The server restarts while the private half is sending (the SMTP
        # server never answers; [mail] timeout 3 s): the send-log record of
        # that attempt cannot be written on the dead connection.  The loss
        # is not silent: an audit record says so.
        with smtplab.Hostile("hang") as hang:
            uri = self.pg.create_database("lost")
            conf = new_store("pg-lost", uri=uri)[0]
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(text.replace("server = 127.0.0.1:%d\ntls = off\ntimeout = 10" % SINK.port,
                                     "server = 127.0.0.1:%d\ntls = off\ntimeout = 3" % hang.port))
            p = subprocess.Popen(selfcheck_argv(conf, "alice@corp.test", "--wait"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=mdlab.tool_env())
            deadline = time.monotonic() + 30
            while not hang.conns and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(hang.conns, "the private half never connected to the SMTP server")
            self.pg.server_restart()
            out, err = p.communicate(timeout=120)
        self.assertEqual((p.returncode, err), (0, ""), out + err)
        rows = self.pg.psql("SELECT action || ' ' || coalesce(detail, '') FROM audit_log"
                            " WHERE target = 'alice@corp.test' ORDER BY id", db="lost").splitlines()
        self.assertEqual([r.split(" ")[0] for r in rows], ["selfcheck.reset", "selfcheck.send_log_lost"], rows)
        self.assertIn("PostgreSQL", rows[1])
        self.assertEqual(self.pg.psql("SELECT count(*) FROM send_log", db="lost").strip(), "0")

    def test_valgrind_connection_refused(self):
        why = mdlab.valgrind_skip_reason()
        if why:
            self.skipTest(why)
        conf, _ = self.store("vg")
        self.pg.server_stop()
        try:
            rc, out, err = mdlab.valgrind_run([mdlab.real_binary("maildiag-user"), "--config", conf, "--no-dns",
                                               "lookup", "alice@corp.test"])
        finally:
            self.pg.server_start()
        self.assertEqual(rc, 3, err)
        self.assertIn("Connection refused", err)


# ---------------------------------------------------------------- 6. rate limit and audit log, 20 at once

def addr_counts(runs):
    return sorted(r.rc for r in runs)


class Concurrent(FaultCase):
    """20 self-checks for one address, at most 5 allowed, while the store
    is locked or restarted in the middle.  Exact: never more than 5
    accepted; every accepted one has its audit record, its send-log record
    and its email (each process waits for its private half with --wait);
    every failure said why."""

    N, LIMIT = 20, 5

    def launch(self, conf, addr, fault, ready, first=8, gap=0.1, background=False):
        """Starts `first` self-checks, waits until ready() (some have
        counted), starts fault() (in a thread if background), then the
        rest one every gap seconds; returns the runs."""
        argv = selfcheck_argv(conf, addr, "--wait")
        started = start_all([argv] * first)
        deadline = time.monotonic() + 60
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        failed = []

        def run_fault():
            try:
                fault()
            except BaseException as e:   # reported by the test, not lost in the thread
                failed.append(e)

        t = threading.Thread(target=run_fault)
        t.start()
        if not background:
            t.join()
        for _ in range(self.N - first):
            started += start_all([argv])
            time.sleep(gap)
        runs = wait_all(started, timeout=240)
        t.join()
        if failed:
            raise failed[0]
        return runs

    def check_exact(self, runs, log_count, addr, mails_before, failure_words):
        accepted = [r for r in runs if r.rc == 0]
        for r in runs:
            self.assertIn(r.rc, (0, 1, 3), str(r))
            self.assertNotIn("Sanitizer", r.err, str(r))
            if r.rc == 0:
                self.assertIn("We are sending an email", r.out, str(r))
                self.assertEqual(r.err, "", str(r))
            elif r.rc == 1:
                self.assertIn("Too many requests", r.out, str(r))
                self.assertEqual(r.err, "", str(r))
            else:
                self.assertIn("The service is unavailable", r.out, str(r))
                self.assertTrue(any(w in r.err for w in failure_words), "no clear error:\n%s" % r)
        self.assertLessEqual(len(accepted), self.LIMIT, addr_counts(runs))
        audit, sends, lost = log_count("audit"), log_count("send"), log_count("lost")
        self.assertEqual(audit, len(accepted), "audit records %d, accepted %d: %s" % (audit, len(accepted),
                                                                                      addr_counts(runs)))
        # A send-log record lost to the outage after the email went out is
        # in the audit log as lost (the private half has nobody to tell).
        self.assertEqual(sends + lost, len(accepted), "send-log records %d (and %d audited as lost), accepted %d"
                         % (sends, lost, len(accepted)))
        deadline = time.monotonic() + 10
        while sink_count() - mails_before < len(accepted) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        self.assertEqual(sink_count() - mails_before, len(accepted), "emails sent != accepted")
        n_failed = len([r for r in runs if r.rc == 3])
        print("# %s: %d accepted, %d rate-limited, %d failed (longest %.1f s); %d send-log records lost and audited"
              % (addr, len(accepted), len(runs) - len(accepted) - n_failed, n_failed, max(r.elapsed for r in runs),
                 lost))
        return len(accepted), n_failed

    def sqlite_hits(self, path, addr, n=2):
        def ready():
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
            c = db.execute("SELECT coalesce(sum(count), 0) FROM rate_limits WHERE key LIKE ?",
                           ("selfcheck:%s%%" % addr,)).fetchone()[0]
            db.close()
            return c >= n
        return ready

    # what check_exact counts, for one address ($1)
    COUNTS = {"audit": "SELECT count(*) FROM audit_log WHERE action = 'selfcheck.reset' AND target = $1",
              "lost": "SELECT count(*) FROM audit_log WHERE action = 'selfcheck.send_log_lost' AND target = $1",
              "send": "SELECT count(*) FROM send_log WHERE kind = 'reset' AND to_address = $1"}

    def sqlite_counter(self, path, addr):
        def count(what):
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
            n = db.execute(self.COUNTS[what].replace("$1", "?"), (addr,)).fetchone()[0]
            db.close()
            return n
        return count

    def test_sqlite_lock_in_the_middle(self):
        conf, path, _ = new_store("conc-sqlite")
        conf = conf_for(os.path.dirname(path), "sqlite:" + path, name="limits.conf",
                        per_address="%d/3600" % self.LIMIT)
        # A lock shorter than the busy timeout: everyone waits, nobody fails,
        # and exactly LIMIT are accepted.
        h = Holder(path, via="python")
        mails = sink_count()
        runs = self.launch(conf, "alice@corp.test", lambda: (h.__enter__(), h.release_after(3.0)),
                           self.sqlite_hits(path, "alice@corp.test"))
        h.__exit__()
        n_ok, n_failed = self.check_exact(runs, self.sqlite_counter(path, "alice@corp.test"), "alice@corp.test",
                                          mails, [LOCKED])
        self.assertEqual((n_ok, n_failed), (self.LIMIT, 0), addr_counts(runs))
        # A lock longer than the busy timeout: the self-checks that came
        # during it fail, each saying why; the private halves of those
        # accepted before it wait it out.
        h = Holder(path, via="python")
        mails = sink_count()
        runs = self.launch(conf, "bob@corp.test", lambda: (h.__enter__(), h.release_after(BUSY_TIMEOUT + 3)),
                           self.sqlite_hits(path, "bob@corp.test"))
        h.__exit__()
        n_ok, n_failed = self.check_exact(runs, self.sqlite_counter(path, "bob@corp.test"), "bob@corp.test",
                                          mails, [LOCKED])
        self.assertGreater(n_failed, 0, "the lock stopped nobody: %s" % addr_counts(runs))

    def test_postgresql_restart_in_the_middle(self):
        with pglab.PgCluster() as pg:
            uri = pg.create_database("conc")
            conf, _, _ = new_store("conc-pg", uri=uri)
            conf = conf_for(os.path.dirname(conf), uri, name="limits.conf", per_address="%d/3600" % self.LIMIT)

            def count(what):
                return int(pg.psql(self.COUNTS[what].replace("$1", "'alice@corp.test'"), db="conc"))

            def ready():
                return int(pg.psql("SELECT coalesce(sum(count), 0) FROM rate_limits", db="conc")) >= 2

            mails = sink_count()
            runs = self.launch(conf, "alice@corp.test", pg.server_restart, ready, gap=0.05, background=True)
            self.check_exact(runs, count, "alice@corp.test", mails,
                             ["cannot connect to PostgreSQL", "lost the connection to PostgreSQL",
                              "PostgreSQL server is shutting down"])
            n = int(pg.psql("SELECT coalesce(sum(count), 0) FROM rate_limits WHERE key LIKE 'selfcheck:alice%'",
                            db="conc"))
            self.assertLessEqual(n, self.N)


# ---------------------------------------------------------------- 7. no leaks on the error paths

class Valgrind(FaultCase):
    """The failing commands of the SQLite cases under valgrind: exit 3, no
    leak, no invalid access (the sanitizer build runs everything above
    under ASan+UBSan instead)."""

    @classmethod
    def setUpClass(cls):
        why = mdlab.valgrind_skip_reason()
        if why:
            raise unittest.SkipTest(why)

    def vg(self, conf, *args, stdin=None, prog="maildiag-user", as_nobody=False, preexec_fn=None):
        argv = mdlab.VALGRIND + [mdlab.real_binary(prog), "--config", conf, "--no-dns"] + list(args)
        if as_nobody:
            argv = ["runuser", "-u", "nobody", "--"] + argv
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, errors="replace",
                           env=mdlab.valgrind_env(), timeout=300, preexec_fn=preexec_fn)
        self.assertNotEqual(p.returncode, 99, "valgrind found errors in %s:\n%s" % (args, p.stderr))
        self.assertEqual(p.returncode, 3, "%s:\n%s%s" % (args, p.stdout, p.stderr))
        self.assertNotIn("definitely lost", p.stderr)
        return p

    def test_locked(self):
        conf, path, _ = new_store("vg-locked")
        with Holder(path, via="python") as h:
            out = []
            threads = [threading.Thread(target=lambda a=a: out.append(self.vg(conf, *a, stdin=NEW_ROWS)))
                       for a in (["init"], ["lookup", "alice@corp.test"], ["remind", "bob@corp.test"],
                                 ["export", os.path.join(TMP, "vg-export.csv")])]
            for t in threads:
                t.start()
            sc = self.vg(conf, "--min-time", "0", "--want", "reset", "alice@corp.test", prog="maildiag-selfcheck")
            for t in threads:
                t.join()
            h.release()
        self.assertEqual(len(out), len(threads))
        for p in out + [sc]:
            self.assertIn(LOCKED, p.stderr)

    def test_read_only_and_directory(self):
        uid, gid = nobody_ids()
        conf, path, uri = new_store("vg-ro")
        nconf = conf_for(os.path.dirname(path), uri, name="nobody.conf", mail=False)
        chown_tree(os.path.dirname(path), uid, gid)
        os.chmod(path, 0o444)
        for args in (["lookup", "alice@corp.test"], ["suppression", "add", "x@corp.test", "--reason", "manual"],
                     ["init"]):
            p = self.vg(nconf, *args, as_nobody=True)
            self.assertIn("no write permission", p.stderr)
        conf, path, uri = new_store("vg-dir")
        nconf = conf_for(TMP, uri, name="vg-dir.conf", mail=False)
        checkpoint(path)
        os.chown(path, uid, gid)
        p = self.vg(nconf, "audit", as_nobody=True)
        self.assertIn("directory is not writable", p.stderr)

    def test_corrupt(self):
        # one of each error: not SQLite (text), damaged (cut mid-page)
        for path, words in damaged("vg-corrupt")[1::2]:
            conf = conf_for(os.path.dirname(path), "sqlite:" + path, name=os.path.basename(path) + ".conf")
            for args in (["init"], ["lookup", "alice@corp.test"]):
                p = self.vg(conf, *args)
                self.assertIn(words, p.stderr)

    def test_file_size_limit(self):
        _, path, _ = new_store("vg-fsize")
        conf = os.path.join(TMP, "vg-fsize", "maildiag.conf")
        limit = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) + 128 * 1024

        def limited():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)

        before = snapshot(path)
        p = self.vg(conf, "import", "-", stdin=big_csv(5000), preexec_fn=limited)
        self.assertIn("file size limit", p.stderr)
        self.assertEqual(snapshot(path), before)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
