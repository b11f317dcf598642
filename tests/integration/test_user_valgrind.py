#!/usr/bin/env python3
"""maildiag-user and maildiag-selfcheck under valgrind: no leaks, no invalid
reads or writes, on every command (lookup in all its shapes, sessions,
suppressions, import with errors, export, audit, remind through a real
smtp-sink, and selfcheck including its forked child, which valgrind follows).
The emails are sent by the internal helper maildiag-notify, which remind and
the selfcheck's child exec: valgrind follows the exec (--trace-children) and
writes every process's report to its own log file, which must stay empty
(the child's standard error is /dev/null).

Skipped (exit 77) in the sanitizer build, where valgrind cannot run, and when
valgrind is not installed.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("MAILDIAG_TESTS_DIR", os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "lab"))
import mdlab  # noqa: E402
import smtplab  # noqa: E402


ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
alice,alice@example.com,active,password,,1
alice2,alice@example.com,deactivated,password,,1
pat,pat@example.com,active,sso,Okta,0
js,john.smith+x@gmail.com,locked,password,,1
"""



class Valgrind(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = mdlab.valgrind_skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.user = mdlab.real_binary("maildiag-user")
        cls.selfcheck = mdlab.real_binary("maildiag-selfcheck")
        cls.env = mdlab.tool_env({"LD_LIBRARY_PATH": os.path.join(
            os.path.dirname(mdlab.tool_path("maildiag-user")), "..", "lib", ".libs")})
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-uvg-")
        os.chmod(cls.tmp, 0o755)
        cls.sink = smtplab.Sink().start()
        keys = os.path.join(cls.tmp, "keys")
        with open(keys, "w") as f:
            f.write("cd" * 32 + "\n")
        os.chmod(keys, 0o600)
        cls.db = os.path.join(cls.tmp, "store.db")
        cls.conf = os.path.join(cls.tmp, "maildiag.conf")
        with open(cls.conf, "w") as f:
            f.write("[store]\nuri = sqlite:%s\n[mail]\nfrom = noreply@product.test\nserver = 127.0.0.1:%d\n"
                    "tls = off\n[token]\nkey_file = %s\n[selfcheck]\nmin_time = 0\n" % (cls.db, cls.sink.port, keys))
        os.chmod(cls.conf, 0o600)

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def vg(self, argv, want_rc, stdin=None):
        logs = os.path.join(self.tmp, "vg")
        shutil.rmtree(logs, ignore_errors=True)
        os.mkdir(logs)
        p = subprocess.run(mdlab.VALGRIND + ["--trace-children=yes", "--log-file=%s/%%p.log" % logs] + argv,
                           input=stdin, capture_output=True, env=self.env, timeout=180)
        err = p.stderr.decode(errors="replace")
        reports = []
        for name in sorted(os.listdir(logs)):
            with open(os.path.join(logs, name), errors="replace") as f:
                text = f.read()
            if text.strip():
                reports.append("%s:\n%s" % (name, text))
        self.assertEqual(reports, [], "valgrind found errors in %s (or its helper):\n%s" % (argv, "\n".join(reports)))
        self.assertNotEqual(p.returncode, 99, "valgrind found errors in %s:\n%s" % (argv, err))
        self.assertEqual(p.returncode, want_rc, "%s\nstdout:\n%s\nstderr:\n%s" % (argv, p.stdout.decode(errors="replace"), err))
        self.assertNotIn("definitely lost", err)
        return p

    def u(self, *args, rc=0, stdin=None):
        return self.vg([self.user, "--config", self.conf, "--no-dns"] + list(args), rc, stdin)

    def test_all_commands(self):
        self.u("init")
        self.u("import", "-", stdin=ACCOUNTS.encode())
        self.u("import", "-", rc=3, stdin=b"username,email\nx,not-an-address\n")
        now = int(time.time())
        db = sqlite3.connect(self.db)
        db.execute("INSERT INTO sessions (account_id, created_at, expires_at) VALUES (1, ?, ?)", (now, now + 86400))
        db.commit()
        db.close()
        self.u("lookup", "alice@example.com", rc=1)
        self.u("--json", "lookup", "pat@example.com", rc=1)
        self.u("--json", "lookup", "johnsmith@googlemail.com", rc=1)
        self.u("lookup", "someone@gmial.com", rc=1)
        self.u("lookup", "not an address", rc=3)
        self.u("--json", "lookup", "--username", "js", rc=1)
        self.u("sessions", "list", "alice@example.com")
        self.u("--json", "sessions", "revoke", "--username", "alice")
        self.u("suppression", "add", "b@example.com", "--reason", "hard-bounce", "--text", "550 no")
        self.u("--json", "suppression", "list")
        self.u("suppression", "remove", "b@example.com")
        self.u("export")
        self.u("--json", "audit")
        self.u("remind", "alice@example.com")
        self.u("bogus", rc=3)

    def test_selfcheck_with_child(self):
        self.u("init")
        for want in ("username", "verify", "reset"):
            self.vg([self.selfcheck, "--config", self.conf, "--no-dns", "--wait", "--want", want,
                     "alice@example.com"], 0)
        self.vg([self.selfcheck, "--config", self.conf, "--no-dns", "--json", "--want", "reset", "x@gmial.com"], 1)
        self.vg([self.selfcheck, "--config", self.conf, "--no-dns", "--want", "reset", "nope"], 3)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
