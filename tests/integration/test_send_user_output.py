#!/usr/bin/env python3
"""The exact output of maildiag-send against Postfix's smtp-sink and of
maildiag-user lookup over an SQLite store made here (NSD on 127.0.0.1 for the
MX check), JSON and text, with exit codes and standard error, compared byte
for byte with tests/integration/golden/.  What changes from run to run (ports,
milliseconds, the start time, Message-IDs) is replaced by fixed words first;
nothing else is.  A change shows here as a diff, to be reviewed and, when it
is meant, regenerated with

    MAILDIAG_REGEN_GOLDEN=1 make check TESTS=tests/integration/test_send_user_output.py

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import difflib
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import smtplab  # noqa: E402

GOLDEN = os.path.join(_TESTS, "integration", "golden")
TMP = None
NSD = None
FROM = "noreply@example.com"
TO = "user@example.com"
HELO = "client.example.com"

# Fixed times only: the output must not depend on the day it runs.
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
ACCOUNTS += "".join("u%d,u%d@corp.user.test,active,password,,1,,\n" % (i, i) for i in range(30))
ACCOUNTS += "".join("b%d,b%d@corb.user.test,active,password,,1,,\n" % (i, i) for i in range(25))
# an account made without created_at is made "now": give every one a date
ACCOUNTS = re.sub(r",1,,", ",1,2024-01-01T00:00:00Z,", re.sub(r",0,,", ",0,2024-01-01T00:00:00Z,", ACCOUNTS))
T0 = 1793000000          # 2026-10-25: before every send of the store's log
FAR = 4102444800         # 2100-01-01: sessions that stay active


def setUpModule():
    global TMP, NSD
    mdlab.tool_path("maildiag-send")
    mdlab.tool_path("maildiag-user")
    TMP = tempfile.mkdtemp(prefix="mdtest-golden-su-")
    os.chmod(TMP, 0o711)   # smtp-sink runs as nobody
    NSD = mdlab.Nsd({"user.test": mdlab.zone_path("user.test.zone")}, workdir=TMP)
    NSD.start()


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def send_cases():
    """(name, smtp-sink arguments, maildiag-send arguments after --server)."""
    base = ["--to", TO, "--helo", HELO]
    return [
        ("accept", [], base),
        ("accept reset", [], base + ["-T", "reset"]),
        ("accept dsn", [], base + ["--dsn"]),
        ("probe rcpt", [], base + ["--quit-after", "rcpt"]),
        ("probe ehlo", [], base + ["--quit-after", "ehlo"]),
        ("reject rcpt", ["-f", "RCPT"], base),
        ("drop at rcpt", ["-q", "RCPT"], base),
        ("reject data", ["-f", "."], base),
        ("tls required not offered", [], base + ["--tls", "required"]),
        ("two recipients", [], base + ["--to", "b@example.com"]),
    ]


def send_errors():
    """maildiag-send runs refused before a connection (no server needed)."""
    base = ["--to", TO, "--helo", HELO]
    return [
        ("ipv6 server", ["--server", "[::1]:25"] + base),
        ("no host", ["--server", ":25"] + base),
        ("bad port", ["--server", "127.0.0.1:99999"] + base),
        ("bad helo", ["--server", "127.0.0.1:1", "--to", TO, "--helo", "bad name"]),
        ("bad tls", ["--server", "127.0.0.1:1", "--to", TO, "--tls", "maybe"]),
    ]


def normalize(text, port=None):
    """What differs from run to run, made fixed."""
    if port:
        text = text.replace("127.0.0.1:%d" % port, "127.0.0.1:PORT")
        text = text.replace('"port":%d' % port, '"port":PORT')
    text = re.sub(r'"(ms|elapsed_ms)":\d+', r'"\1":N', text)
    text = re.sub(r'"started":"[^"]*"', '"started":"TIME"', text)
    text = re.sub(r'\b[0-9a-f]{32}\.\d+@', 'MSGID@', text)   # Message-ID, DSN ENVID
    text = re.sub(r' in \d+ ms\b', ' in N ms', text)
    text = re.sub(r'^ +\d+ ms ([*<>]) ', r'  N ms \1 ', text, flags=re.M)   # -v transcript
    return text


def block(title, run, port=None):
    out = ["### %s\n" % title, "exit %s\n" % run.rc, normalize(run.out, port)]
    if run.out and not run.out.endswith("\n"):
        out.append("\n")
    if run.err:
        out.append("--- stderr\n")
        out.append(normalize(run.err, port))
        if not run.err.endswith("\n"):
            out.append("\n")
    return "".join(out)


def render_send(fmt_json):
    out = []
    tool = mdlab.tool_path("maildiag-send")
    opts = ["--json"] if fmt_json else ["-v"]
    for name, sink_args, args in send_cases():
        with smtplab.Sink(args=sink_args) as sink:
            argv = [tool, "--from", FROM, "--server", "127.0.0.1:%d" % sink.port] + opts + args
            run = mdlab.run_tool(argv, timeout=60)
            out.append(block("maildiag-send %s (%s)" % (name, "json" if fmt_json else "text"),
                             run, sink.port))
    for name, args in send_errors():
        run = mdlab.run_tool([tool, "--from", FROM] + opts + args, timeout=60)
        out.append(block("maildiag-send %s (%s)" % (name, "json" if fmt_json else "text"), run))
    return "".join(out)


def user_run(uri, *args):
    argv = [mdlab.tool_path("maildiag-user"), "--store", uri, "--config", "/dev/null",
            "--resolver", NSD.resolver, "--timeout", "2"] + list(args)
    return mdlab.run_tool(argv, timeout=60)


def make_store():
    path = os.path.join(TMP, "lookup.db")
    uri = "sqlite:" + path
    if os.path.exists(path):
        return uri
    for args, stdin in ((["init"], None), (["import", "-"], ACCOUNTS.encode())):
        argv = [mdlab.tool_path("maildiag-user"), "--store", uri, "--config", "/dev/null",
                "--no-dns"] + args
        run = mdlab.run_tool(argv, stdin=stdin)
        assert run.rc == 0, str(run)
    db = sqlite3.connect(path)
    aid = db.execute("SELECT id FROM accounts WHERE username = 'alice'").fetchone()[0]
    db.executemany("INSERT INTO sessions (account_id, created_at, last_seen_at, expires_at, revoked_at)"
                   " VALUES (?, ?, ?, ?, ?)",
                   [(aid, T0, T0 + 60, FAR, None), (aid, T0, None, FAR, None),
                    (aid, T0 - 9000, None, T0 - 10, None)])
    db.execute("INSERT INTO suppressions (address, reason, since, bounce_text) VALUES"
               " ('bounced@corp.user.test', 'hard-bounce', ?, '550 5.1.1 user unknown')", (T0,))
    db.execute("INSERT INTO send_log (at, kind, to_address, message_id, outcome, reply) VALUES"
               " (?, 'reset', 'fresh@corp.user.test', '<m1@x>', 'rejected', '550 5.7.1 blocked')",
               (T0 + 100,))
    db.commit()
    db.close()
    return uri


LOOKUPS = [
    ["alice@corp.user.test"], ["Alice@CORP.user.test"], ["pat@corp.user.test"],
    ["gone@corp.user.test"], ["lock@corp.user.test"], ["fresh@corp.user.test"],
    ["nobody@corp.user.test"], ["bounced@corp.user.test"], ["x@nomail.user.test"],
    ["twin@corp.user.test"], ["alice@crop.user.test"], ["b1@corb.user.test"],
    ["someone@gmial.com"], ["JohnSmith@googlemail.com"], ["--username", "pat"],
    ["--username", "no-such-user"], ["not an address"],
]


def render_user(fmt_json):
    uri = make_store()
    out = []
    for args in LOOKUPS:
        run = user_run(uri, *((["--json"] if fmt_json else []) + ["lookup"] + args))
        out.append(block("maildiag-user lookup %s (%s)" % (" ".join(args), "json" if fmt_json else "text"),
                         run).replace(NSD.resolver, "NSD"))
    return "".join(out)


class Output(unittest.TestCase):
    maxDiff = None

    def compare(self, fname, got):
        path = os.path.join(GOLDEN, fname)
        if os.environ.get("MAILDIAG_REGEN_GOLDEN") == "1":
            os.makedirs(GOLDEN, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(got)
            return
        with open(path, encoding="utf-8") as f:
            want = f.read()
        if got != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                "expected " + fname, "got", n=2))
            self.fail("output differs from %s:\n%s" % (path, diff[:20000]))

    def test_send_json(self):
        self.compare("send.json.txt", render_send(True))

    def test_send_text(self):
        self.compare("send.text.txt", render_send(False))

    def test_user_json(self):
        self.compare("user.json.txt", render_user(True))

    def test_user_text(self):
        self.compare("user.text.txt", render_user(False))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
