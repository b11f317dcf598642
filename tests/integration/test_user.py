#!/usr/bin/env python3
"""maildiag-user against real SQLite stores made here, with NSD on 127.0.0.1
serving tests/zones/user.test.zone for the MX check of each address's domain.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_user.py Lookup.test_states
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

NSD = None
TMP = None

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified,created_at,last_login_at
alice,alice@corp.user.test,active,password,,1,2024-01-02T03:04:05Z,2026-11-01T10:00:00Z
pat,pat@corp.user.test,active,sso,Okta,1,,
gone,gone@corp.user.test,deactivated,password,,1,,
lock,lock@corp.user.test,locked,password,,1,,
fresh,fresh@corp.user.test,active,password,,0,,
twin1,twin@corp.user.test,active,password,,1,,
twin2,TWIN@corp.user.test,deactivated,password,,1,,
nomail,x@nomail.user.test,active,password,,1,,
js,john.smith+news@gmail.com,active,password,,1,,
bounced,bounced@corp.user.test,active,password,,1,,
"""
# Many accounts at corp.user.test (popular: a typo target) and at corb.user.test
# (a real neighbour with working MX: never called a typo).
ACCOUNTS += "".join("u%d,u%d@corp.user.test,active,password,,1,,\n" % (i, i) for i in range(30))
ACCOUNTS += "".join("b%d,b%d@corb.user.test,active,password,,1,,\n" % (i, i) for i in range(25))


def setUpModule():
    global NSD, TMP
    mdlab.tool_path("maildiag-user")
    TMP = tempfile.mkdtemp(prefix="mdtest-user-")
    NSD = mdlab.Nsd({"user.test": mdlab.zone_path("user.test.zone")}, workdir=TMP)
    NSD.start()


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def user(*args, store=None, stdin=None, dns=True, env=None):
    argv = [mdlab.tool_path("maildiag-user")]
    if store:
        argv += ["--store", store]
    argv += ["--config", "/dev/null"] if "--config" not in args else []
    if dns:
        argv += ["--resolver", NSD.resolver, "--timeout", "2"]
    else:
        argv += ["--no-dns"]
    argv += list(args)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=60,
                       env=mdlab.tool_env(env))
    return mdlab.Run(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


def new_store(name, csv=ACCOUNTS):
    path = os.path.join(TMP, name + ".db")
    uri = "sqlite:" + path
    r = user("init", store=uri, dns=False)
    assert r.rc == 0, str(r)
    if csv:
        r = user("import", "-", store=uri, stdin=csv, dns=False)
        assert r.rc == 0, str(r)
    return uri, path


def ids(o):
    return [f["id"] for f in o["findings"]]


class Lookup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uri, cls.path = new_store("lookup")
        db = sqlite3.connect(cls.path)
        now = int(time.time())
        aid = db.execute("SELECT id FROM accounts WHERE username = 'alice'").fetchone()[0]
        db.executemany("INSERT INTO sessions (account_id, created_at, last_seen_at, expires_at, revoked_at)"
                       " VALUES (?, ?, ?, ?, ?)",
                       [(aid, now - 600, now - 60, now + 3600, None), (aid, now - 900, None, now + 3600, None),
                        (aid, now - 9000, None, now - 10, None)])
        db.execute("INSERT INTO suppressions (address, reason, since, bounce_text) VALUES"
                   " ('bounced@corp.user.test', 'hard-bounce', ?, '550 5.1.1 user unknown')", (now,))
        db.execute("INSERT INTO send_log (at, kind, to_address, message_id, outcome, reply) VALUES"
                   " (?, 'reset', 'fresh@corp.user.test', '<m1@x>', 'rejected', '550 5.7.1 blocked')", (now,))
        db.commit()
        db.close()

    def lookup(self, *args, **kw):
        r = user("--json", "lookup", *args, store=self.uri, **kw)
        self.assertIn(r.rc, (0, 1, 2, 3), str(r))
        try:
            return r, json.loads(r.out)
        except ValueError:
            self.fail("not JSON:\n%s" % r)

    def test_contract(self):
        r, o = self.lookup("Alice@CORP.user.test")
        self.assertEqual(r.rc, 0, str(r))
        for k in ("schema_version", "address", "accounts", "findings", "status", "domain", "suppression", "sent"):
            self.assertIn(k, o)
        a = o["accounts"][0]
        for k in ("username", "status", "auth", "email_verified", "sso_provider", "pending_email",
                  "last_login_at", "active_sessions", "emails", "created_at"):
            self.assertIn(k, a)
        self.assertEqual((a["username"], a["status"], a["auth"], a["email_verified"]),
                         ("alice", "active", "password", True))
        self.assertEqual(a["active_sessions"], 2)
        self.assertEqual(a["last_login_at"], "2026-11-01T10:00:00Z")
        self.assertEqual(a["emails"], {"username": "reminder", "verify": "verified", "reset": "reset"})
        self.assertEqual(o["domain"]["mail"], "ok")
        self.assertEqual(ids(o), ["account.ok"])
        for f in o["findings"]:
            self.assertEqual(set(f) - {"evidence"}, {"id", "severity", "summary"})

    def test_states(self):
        # (address, exit code, finding ids that must be there)
        cases = [
            ("pat@corp.user.test", 1, ["account.sso"]),
            ("gone@corp.user.test", 2, ["account.deactivated"]),
            ("lock@corp.user.test", 1, ["account.locked"]),
            ("fresh@corp.user.test", 1, ["account.unverified", "address.last_send_failed"]),
            ("nobody@corp.user.test", 1, ["account.none"]),
            ("bounced@corp.user.test", 2, ["address.suppressed"]),
            ("x@nomail.user.test", 2, ["address.no_mail"]),
            ("twin@corp.user.test", 1, ["account.ok", "account.deactivated"]),
        ]
        for addr, rc, want in cases:
            with self.subTest(addr=addr):
                r, o = self.lookup(addr)
                self.assertEqual(r.rc, rc, str(r))
                for i in want:
                    self.assertIn(i, ids(o), str(r))
                self.assertEqual(o["status"], {0: "ok", 1: "warning", 2: "critical"}[rc])

    def test_sso_words(self):
        r = user("lookup", "pat@corp.user.test", store=self.uri)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("password-reset emails are never sent; sign in through Okta", r.out)

    def test_twin_deactivated_is_warning_beside_active(self):
        r, o = self.lookup("twin@corp.user.test")
        sev = {f["id"]: f["severity"] for f in o["findings"]}
        self.assertEqual(sev["account.deactivated"], "warning")
        self.assertEqual(sorted(a["username"] for a in o["accounts"]), ["twin1", "twin2"])

    def test_suppression_evidence(self):
        r, o = self.lookup("bounced@corp.user.test")
        f = [f for f in o["findings"] if f["id"] == "address.suppressed"][0]
        self.assertEqual(f["severity"], "critical")
        self.assertIn("550 5.1.1 user unknown", f["evidence"])
        self.assertEqual(o["suppression"]["reason"], "hard-bounce")

    def test_typo_of_popular_domain(self):
        r, o = self.lookup("alice@crop.user.test")
        self.assertEqual(r.rc, 2, str(r))   # crop.user.test does not exist: no mail
        self.assertIn("address.no_mail", ids(o))
        self.assertIn("address.typo", ids(o))
        self.assertEqual(o["typo"]["suggestion"], "corp.user.test")
        self.assertEqual(o["typo"]["address"], "alice@corp.user.test")
        f = [f for f in o["findings"] if f["id"] == "address.typo"][0]
        self.assertIn("did you mean alice@corp.user.test?", f["summary"])

    def test_no_typo_for_real_neighbour(self):
        # corb.user.test: one edit from the popular corp.user.test, but many
        # accounts and working MX.
        r, o = self.lookup("b1@corb.user.test")
        self.assertEqual(r.rc, 0, str(r))
        self.assertNotIn("address.typo", ids(o))

    def test_typo_common_provider(self):
        r, o = self.lookup("someone@gmial.com", dns=False)
        self.assertIn("address.typo", ids(o))
        self.assertEqual(o["typo"]["suggestion"], "gmail.com")
        self.assertEqual(o["domain"]["mail"], "not_checked")

    def test_gmail_also_matches(self):
        r, o = self.lookup("JohnSmith@googlemail.com", dns=False)
        self.assertIn("account.none", ids(o))
        self.assertIn("account.also_matches", ids(o))
        self.assertEqual(o["also_matches"][0]["username"], "js")

    def test_by_username(self):
        r, o = self.lookup("--username", "pat")
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual([a["username"] for a in o["accounts"]], ["pat"])
        r, o = self.lookup("--username", "no-such-user")
        self.assertEqual(r.rc, 1, str(r))
        self.assertEqual(ids(o), ["account.none"])

    def test_invalid_address(self):
        r, o = self.lookup("not an address")
        self.assertEqual(r.rc, 3, str(r))
        self.assertEqual(ids(o), ["address.invalid"])

    def test_text_output(self):
        r = user("lookup", "alice@corp.user.test", store=self.uri)
        self.assertEqual(r.rc, 0, str(r))
        self.assertTrue(r.out.startswith("alice@corp.user.test: OK\n"), r.out)
        self.assertIn("account alice: active, password, verified", r.out)

    def test_audit_of_lookups(self):
        user("lookup", "audit-me@corp.user.test", store=self.uri, dns=False)
        user("--operator", "carol-from-support", "lookup", "audit-me2@corp.user.test", store=self.uri, dns=False)
        r = user("--json", "audit", "--limit", "5", store=self.uri, dns=False)
        recs = json.loads(r.out)["records"]
        targets = {x["target"]: x for x in recs}
        self.assertIn("audit-me@corp.user.test", targets)
        self.assertEqual(targets["audit-me@corp.user.test"]["action"], "lookup")
        self.assertTrue(targets["audit-me2@corp.user.test"]["operator"].startswith("carol-from-support (as "))


class Changes(unittest.TestCase):
    def test_sessions_revoke(self):
        uri, path = new_store("sessions")
        db = sqlite3.connect(path)
        now = int(time.time())
        for name in ("alice", "twin1", "twin2"):
            aid = db.execute("SELECT id FROM accounts WHERE username = ?", (name,)).fetchone()[0]
            db.execute("INSERT INTO sessions (account_id, created_at, expires_at) VALUES (?, ?, ?)",
                       (aid, now - 5, now + 3600))
        db.commit()
        db.close()
        r = user("--json", "sessions", "list", "twin@corp.user.test", store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(len(json.loads(r.out)["sessions"]), 2)
        r = user("--json", "sessions", "revoke", "twin@corp.user.test", store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertEqual(json.loads(r.out)["revoked"], 2)
        r = user("sessions", "revoke", "twin@corp.user.test", store=uri, dns=False)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("revoked 0 sessions", r.out)
        r = user("sessions", "revoke", "--username", "alice", store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("revoked 1 session of 1 account", r.out)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("SELECT count(*) FROM sessions WHERE revoked_at IS NULL").fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM audit_log WHERE action = 'sessions.revoke'").fetchone()[0], 3)
        db.close()

    def test_suppression_cycle(self):
        uri, _ = new_store("suppr", csv=None)
        r = user("suppression", "add", "Bob@Example.com", "--reason", "complaint", "--text", "FBL report",
                 store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        r = user("--json", "suppression", "list", store=uri, dns=False)
        s = json.loads(r.out)["suppressions"]
        self.assertEqual([(x["address"], x["reason"], x["text"]) for x in s],
                         [("bob@example.com", "complaint", "FBL report")])
        r = user("--json", "lookup", "bob@example.com", store=uri, dns=False)
        self.assertEqual(r.rc, 2, str(r))
        r = user("suppression", "remove", "BOB@example.com", store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        r = user("suppression", "remove", "bob@example.com", store=uri, dns=False)
        self.assertEqual(r.rc, 1, str(r))
        r = user("suppression", "add", "bob@example.com", "--reason", "bored", store=uri, dns=False)
        self.assertEqual(r.rc, 3, str(r))

    def test_import_errors_and_atomicity(self):
        uri, path = new_store("imp", csv=None)
        bad = "username,email\nok1,ok1@example.com\nok2,ok2@example.com\nbroken,broken.example.com\n"
        r = user("import", "-", store=uri, stdin=bad, dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("line 4", r.err)
        db = sqlite3.connect(path)
        self.assertEqual(db.execute("SELECT count(*) FROM accounts").fetchone()[0], 0)
        db.close()
        f = os.path.join(TMP, "in.csv")
        with open(f, "w") as fh:
            fh.write("EMAIL , username\nz@example.com,zed\n")
        r = user("import", f, store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))
        self.assertIn("imported 1 account from", r.out)

    def test_import_refuses_extra_fields_and_bad_text(self):
        uri, path = new_store("imp-strict", csv=None)
        for csv, where in ((b"username,email\nok1,ok1@example.com\nx,x@example.com,surplus\n", b"line 3"),
                           (b"username,email\nok1,ok1@example.com\nbad\xff\xfename,b@example.com\n", b"line 3"),
                           (b"username,email\nok1,ok1@example.com\nbad\xed\xa0\x80,b@example.com\n", b"line 3")):
            p = subprocess.run([mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", uri,
                                "import", "-"], input=csv, capture_output=True, timeout=60,
                               env=mdlab.tool_env())
            self.assertEqual(p.returncode, 3, (csv, p.stderr))
            self.assertIn(where, p.stderr, (csv, p.stderr))
            self.assertEqual(terminal_unsafe(p.stderr), [], p.stderr)
            p.stderr.decode("utf-8")
            db = sqlite3.connect(path)
            self.assertEqual(db.execute("SELECT count(*) FROM accounts").fetchone()[0], 0, csv)
            db.close()

    def test_import_killed_midway_loses_nothing_acknowledged(self):
        uri, path = new_store("crash", csv="username,email,email_verified\nkept,kept@example.com,1\n")
        big = os.path.join(TMP, "big.csv")
        with open(big, "w") as f:
            f.write("username,email\n")
            for i in range(300000):
                f.write("c%d,c%d@example.com\n" % (i, i))
        argv = [mdlab.tool_path("maildiag-user"), "--config", "/dev/null", "--store", uri, "import", big]
        for delay in (0.05, 0.3):
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=mdlab.tool_env())
            time.sleep(delay)
            p.kill()   # SIGKILL: no cleanup of any kind
            p.wait()
            db = sqlite3.connect(path)
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            n = db.execute("SELECT count(*) FROM accounts").fetchone()[0]
            db.close()
            self.assertIn(n, (1, 300001), "a killed import left %d accounts" % n)
            if n == 300001:
                break   # it finished before the kill: nothing to learn from this round
        r = user("--json", "lookup", "kept@example.com", store=uri, dns=False)
        self.assertEqual(r.rc, 0, str(r))

    def test_export_roundtrip(self):
        uri, _ = new_store("exp")
        r1 = user("export", store=uri, dns=False)
        self.assertEqual(r1.rc, 0, str(r1))
        self.assertTrue(r1.out.startswith("username,email,status,auth,sso_provider,email_verified,"
                                          "created_at,last_login_at,password_changed_at"))
        uri2, _ = new_store("exp2", csv=r1.out)
        r2 = user("export", store=uri2, dns=False)
        self.assertEqual(r1.out, r2.out)


def user_bytes(*args, store=None):
    """maildiag-user with bytes arguments; stdout and stderr as bytes."""
    argv = [os.fsencode(mdlab.tool_path("maildiag-user")), b"--config", b"/dev/null", b"--no-dns"]
    if store:
        argv += [b"--store", os.fsencode(store)]
    argv += [a if isinstance(a, bytes) else a.encode() for a in args]
    p = subprocess.run(argv, capture_output=True, timeout=60, env=mdlab.tool_env())
    return p.returncode, p.stdout, p.stderr


def terminal_unsafe(data):
    """The control bytes in data a terminal would act on: C0 other than TAB
    and LF, DEL, and C1 (U+0080..U+009F, C2 80..C2 9F in UTF-8)."""
    bad = [b for b in data if (b < 0x20 and b not in (0x09, 0x0a)) or b == 0x7f]
    bad += [data[i + 1] for i in range(len(data) - 1) if data[i] == 0xc2 and 0x80 <= data[i + 1] <= 0x9f]
    return bad


class Terminal(unittest.TestCase):
    """Stored, user- or peer-supplied text never reaches a terminal raw."""

    HOSTILE = b"\x1b]0;pwn\x07 x\r\nX-Injected: 1"

    def assertSafe(self, data, what):
        self.assertEqual(terminal_unsafe(data), [], "%s: %r" % (what, data))

    def test_suppression_list(self):
        uri, _ = new_store("term-suppr", csv=None)
        for addr, text in ((b"a@x.test", self.HOSTILE), (b"b@x.test", b"csi \xc2\x9b" b"31m bad \xff\xfe"),
                           (b"c@x.test", b"tab\there del\x7f")):
            rc, out, err = user_bytes(b"suppression", b"add", addr, b"--reason", b"hard-bounce",
                                      b"--text", text, store=uri)
            self.assertEqual(rc, 0, err)
        rc, out, err = user_bytes(b"suppression", b"list", store=uri)
        self.assertEqual(rc, 0, err)
        self.assertSafe(out + err, "suppression list")
        rows = out.splitlines()
        self.assertEqual(len(rows), 3, out)
        self.assertTrue(all(len(r.split(b"\t")) == 4 for r in rows), out)
        # rows come newest first: the three may straddle a second, so find a@'s row
        row_a = [r for r in rows if r.startswith(b"a@x.test\t")]
        self.assertEqual(len(row_a), 1, out)
        self.assertIn(b"?]0;pwn? x??X-Injected: 1", row_a[0], out)
        rc, out, err = user_bytes(b"--json", b"suppression", b"list", store=uri)
        self.assertEqual(rc, 0, err)
        self.assertSafe(out, "suppression list --json")
        s = json.loads(out)["suppressions"]
        self.assertEqual(len(s), 3, out)
        s_a = [x for x in s if x.get("address", x.get("email")) == "a@x.test"]
        self.assertEqual(len(s_a), 1, out)
        self.assertEqual(s_a[0]["text"], self.HOSTILE.decode(), out)   # JSON keeps the text, escaped

    def test_audit_and_errors(self):
        uri, _ = new_store("term-audit", csv=None)
        rc, out, err = user_bytes(b"--operator", b"op\x1b[31m", b"lookup", b"\x1b]0;pwn\x07\r\nfake", store=uri)
        self.assertSafe(out + err, "lookup")
        rc, out, err = user_bytes(b"audit", store=uri)
        self.assertEqual(rc, 0, err)
        self.assertSafe(out + err, "audit")
        rows = out.splitlines()
        self.assertEqual(len(rows), 2, out)   # the lookup and the init
        self.assertTrue(all(len(r.split(b"\t")) == 5 for r in rows), out)
        rc, out, err = user_bytes(b"--json", b"audit", store=uri)
        self.assertSafe(out, "audit --json")
        for args in ([b"remind", b"a\x1b]0;pwn\x07@x.test"], [b"suppression", b"remove", b"\x1b[2J@x"],
                     [b"sessions", b"list", b"--username", b"\x1b[2Jbob"], [b"no\x1b[2Jcommand"],
                     [b"import", b"/nonexistent/\x1b[2J.csv"]):
            rc, out, err = user_bytes(*args, store=uri)
            self.assertNotEqual(rc, 0, args)
            self.assertSafe(out + err, repr(args))


class Usage(unittest.TestCase):
    def test_errors_exit_3(self):
        uri, _ = new_store("usage", csv=None)
        for args in (["bogus"], ["lookup"], ["lookup", "a@b.test", "c@d.test"], ["sessions", "kill", "a@b.test"],
                     ["--frobnicate", "lookup", "a@b.test"], []):
            with self.subTest(args=args):
                r = user(*args, store=uri, dns=False)
                self.assertEqual(r.rc, 3, str(r))
                self.assertIn("Try 'maildiag-user --help'", r.err)

    def test_help_and_man(self):
        r = user("--help", dns=False)
        self.assertEqual(r.rc, 0)
        man = os.path.join(_TESTS, "..", "tools", "maildiag-user.1")
        with open(man) as f:
            text = f.read()
        for opt in ("--store", "--config", "--username", "--operator", "--json", "--no-dns", "--reason"):
            self.assertIn(opt, r.out)
            self.assertIn(opt.replace("-", "\\-"), text)

    def test_missing_store(self):
        r = user("lookup", "a@example.com", store="sqlite:" + os.path.join(TMP, "none.db"), dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("maildiag-user init", r.err)
        r = user("lookup", "a@example.com", dns=False, env={"MAILDIAG_STORE": ""})
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("no store", r.err)

    def test_config_file(self):
        uri, path = new_store("conf")
        conf = os.path.join(TMP, "maildiag.conf")
        with open(conf, "w") as f:
            f.write("[store]\nuri = %s\nlocal_part_case = insensitive\n" % uri)
        os.chmod(conf, 0o644)
        r = user("--config", conf, "--json", "lookup", "ALICE@corp.user.test", dns=False)
        self.assertEqual(r.rc, 0, str(r))
        os.chmod(conf, 0o666)
        r = user("--config", conf, "lookup", "alice@corp.user.test", dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("others can change it", r.err)
        with open(conf, "w") as f:
            f.write("[store]\nuri = postgresql://u:secret@127.0.0.1:1/x\n")
        os.chmod(conf, 0o644)
        r = user("--config", conf, "lookup", "alice@corp.user.test", dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("everyone can read", r.err)

    def test_product_mapping(self):
        # A "product" database with its own schema, read through the mapping.
        prod = os.path.join(TMP, "product.db")
        db = sqlite3.connect(prod)
        db.executescript("""
            CREATE TABLE users (uid INTEGER PRIMARY KEY, login TEXT, mail TEXT, is_active INTEGER,
                                sso TEXT, confirmed INTEGER, signup TEXT);
            INSERT INTO users VALUES (1, 'pbob', 'Bob@Product.example', 1, NULL, 1, '2025-05-05 05:05:05+00');
            INSERT INTO users VALUES (2, 'pold', 'old@product.example', 0, 'Google', 0, NULL);
        """)
        db.commit()
        db.close()
        uri, _ = new_store("prodown", csv=None)
        conf = os.path.join(TMP, "product.conf")
        with open(conf, "w") as f:
            f.write("[store]\nuri = %s\n[product]\nuri = sqlite:%s\n"
                    "by_email = SELECT uid AS id, login AS username, mail AS email,\n"
                    "    CASE is_active WHEN 1 THEN 'active' ELSE 'deactivated' END AS status,\n"
                    "    CASE WHEN sso IS NULL THEN 'password' ELSE 'sso' END AS auth, sso AS sso_provider,\n"
                    "    confirmed AS email_verified, signup AS created_at FROM users WHERE lower(mail) = $1\n"
                    "by_username = SELECT uid AS id, login AS username, mail AS email FROM users WHERE login = $1\n"
                    % (uri, prod))
        os.chmod(conf, 0o600)
        r = user("--config", conf, "--json", "lookup", "bob@product.example", dns=False)
        self.assertEqual(r.rc, 0, str(r))
        o = json.loads(r.out)
        self.assertEqual(o["accounts"][0]["username"], "pbob")
        self.assertEqual(o["accounts"][0]["created_at"], "2025-05-05T05:05:05Z")
        r = user("--config", conf, "--json", "lookup", "old@product.example", dns=False)
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn("account.deactivated", ids(json.loads(r.out)))
        r = user("--config", conf, "sessions", "revoke", "--username", "pbob", dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn("read-only", r.err)
        r = user("--config", conf, "import", "-", stdin="username,email\nx,x@example.com\n", dns=False)
        self.assertEqual(r.rc, 3, str(r))
        # read-only for real: the product file is unchanged
        db = sqlite3.connect(prod)
        self.assertEqual(db.execute("SELECT count(*) FROM users").fetchone()[0], 2)
        db.close()


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
