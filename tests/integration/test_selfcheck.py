#!/usr/bin/env python3
"""maildiag-selfcheck: the same bytes and the same time whether or not an
account exists; rate limits that hold under 20 concurrent processes (SQLite
and a PostgreSQL cluster started here); public facts only.  NSD on
127.0.0.1 serves tests/zones/user.test.zone for the MX checks.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import pglab  # noqa: E402

NSD = None
TMP = None
STORE = None
MIN_TIME = 0.2
RUNS = 50

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
alice,alice@corp.user.test,active,password,,1
pat,pat@corp.user.test,active,sso,Okta,1
gone,gone@corp.user.test,deactivated,password,,1
"""


def setUpModule():
    global NSD, TMP, STORE
    mdlab.tool_path("maildiag-selfcheck")
    TMP = tempfile.mkdtemp(prefix="mdtest-selfcheck-")
    NSD = mdlab.Nsd({"user.test": mdlab.zone_path("user.test.zone")}, workdir=TMP)
    NSD.start()
    STORE = new_store("main")


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def new_store(name, uri=None):
    uri = uri or "sqlite:" + os.path.join(TMP, name + ".db")
    user = mdlab.tool_path("maildiag-user")
    for args, stdin in ((["init"], None), (["import", "-"], ACCOUNTS)):
        r = subprocess.run([user, "--config", "/dev/null", "--store", uri] + args, input=stdin,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    return uri


def write_conf(name, store, per_address="1000/3600", overall="100000/60"):
    path = os.path.join(TMP, name + ".conf")
    with open(path, "w") as f:
        f.write("[store]\nuri = %s\n[selfcheck]\nper_address = %s\noverall = %s\nmin_time = %s\n"
                % (store, per_address, overall, MIN_TIME))
    os.chmod(path, 0o600)
    return path


def selfcheck_argv(addr, conf, *extra, want="reset", dns=True):
    argv = [mdlab.tool_path("maildiag-selfcheck"), "--config", conf, "--want", want]
    argv += ["--resolver", NSD.resolver, "--timeout", "2"] if dns else ["--no-dns"]
    return argv + list(extra) + [addr]


def run(addr, conf, *extra, **kw):
    argv = selfcheck_argv(addr, conf, *extra, **kw)
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, timeout=60, env=mdlab.tool_env())
    return mdlab.Run(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)


class Enumeration(unittest.TestCase):
    """An attacker must not learn whether alice@corp.user.test has an account."""

    def test_same_bytes_same_time(self):
        conf = write_conf("enum", STORE)
        for want in ("username", "verify", "reset"):
            for fmt in ([], ["--json"]):
                a = run("alice@corp.user.test", conf, *fmt, want=want)
                b = run("nobody@corp.user.test", conf, *fmt, want=want)
                self.assertEqual(a.rc, 0, str(a))
                self.assertEqual(b.rc, 0, str(b))
                self.assertEqual(a.out.replace(b"alice", b"X"), b.out.replace(b"nobody", b"X"),
                                 "%s\n%s" % (a, b))
                self.assertEqual(a.err, b"")
                self.assertEqual(b.err, b"")
        # An account holder, an SSO account, a deactivated one and nobody: the
        # same words (the address itself aside).
        outs = set()
        for local in ("alice", "pat", "gone", "nobody"):
            r = run(local + "@corp.user.test", conf, want="reset")
            self.assertEqual(r.rc, 0, str(r))
            outs.add(r.out.replace(local.encode() + b"@", b"X@"))
        self.assertEqual(len(outs), 1, outs)

        # Identical bytes for two addresses of the same length, one with an
        # account and one without, 50 runs each, interleaved; and their time
        # distributions.
        have, missing = "alice@corp.user.test", "zelda@corp.user.test"
        t_have, t_missing = [], []
        out_have, out_missing = set(), set()
        for _ in range(RUNS):
            a = run(have, conf)
            b = run(missing, conf)
            t_have.append(a.elapsed)
            t_missing.append(b.elapsed)
            out_have.add(a.out.replace(b"alice", b"X"))
            out_missing.add(b.out.replace(b"zelda", b"X"))
            self.assertEqual((a.rc, b.rc), (0, 0), "%s\n%s" % (a, b))
        self.assertEqual(out_have, out_missing)
        self.assertEqual(len(out_have), 1)
        self.assertGreaterEqual(min(t_have + t_missing), MIN_TIME)
        med_a, med_b = statistics.median(t_have), statistics.median(t_missing)
        mad = statistics.median([abs(t - med_a) for t in t_have] + [abs(t - med_b) for t in t_missing])
        print("# %d runs each: median %.4f s (account) vs %.4f s (none), MAD %.4f s"
              % (RUNS, med_a, med_b, mad))
        self.assertLess(abs(med_a - med_b), max(0.010, 3 * mad),
                        "time distributions differ: %r vs %r" % (sorted(t_have), sorted(t_missing)))
        # Every request was still handled privately: one audit record each.
        db = sqlite3.connect(STORE[len("sqlite:"):])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            n = db.execute("SELECT count(*) FROM audit_log WHERE action = 'selfcheck.reset' AND target IN (?, ?)",
                           (have, missing)).fetchone()[0]
            if n >= 2 * RUNS:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(n, 2 * RUNS)
        plans = {r[0] for r in db.execute("SELECT detail FROM audit_log WHERE target = ?", (missing,))}
        self.assertEqual(plans, {"no-account"})
        db.close()


class PublicFacts(unittest.TestCase):
    def test_typo(self):
        conf = write_conf("facts", STORE)
        r = run("someone@gmial.com", conf, "--json", dns=False)
        self.assertEqual(r.rc, 1, str(r))
        o = json.loads(r.out)
        self.assertEqual(o["typo"]["suggestion"], "gmail.com")
        self.assertIn("selfcheck.accepted", [f["id"] for f in o["findings"]])

    def test_no_mail_domain(self):
        conf = write_conf("facts2", STORE)
        r = run("x@nomail.user.test", conf)
        self.assertEqual(r.rc, 2, str(r))
        self.assertIn(b"cannot receive email", r.out)

    def test_invalid(self):
        conf = write_conf("facts3", STORE)
        r = run("not-an-address", conf, dns=False)
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn(b"not a valid email address", r.out)
        self.assertGreaterEqual(r.elapsed, MIN_TIME)

    def test_usage(self):
        r = subprocess.run([mdlab.tool_path("maildiag-selfcheck"), "a@b.test"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("--want", r.stderr)
        r = subprocess.run([mdlab.tool_path("maildiag-selfcheck"), "--help"], capture_output=True, text=True)
        man = os.path.join(_TESTS, "..", "tools", "maildiag-selfcheck.1")
        with open(man) as f:
            text = f.read()
        for opt in ("--want", "--store", "--config", "--min-time", "--wait", "--json", "--no-dns"):
            self.assertIn(opt, r.stdout)
            self.assertIn(opt.replace("-", "\\-"), text)


def concurrent(test, store, per_address, overall, addrs):
    """20 processes at once; returns their exit codes."""
    conf = write_conf("conc-%d" % abs(hash((store, per_address, overall))), store, per_address, overall)
    procs = [subprocess.Popen(selfcheck_argv(a, conf, "--min-time", "0", dns=False), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=mdlab.tool_env()) for a in addrs]
    rcs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        test.assertEqual(err, b"", err)
        rcs.append(p.returncode)
    return rcs


class RateLimits(unittest.TestCase):
    def check_engine(self, store):
        # per address: 5 allowed out of 20 at once
        rcs = concurrent(self, store, "5/3600", "100000/60", ["rl@corp.user.test"] * 20)
        self.assertEqual(sorted(rcs), [0] * 5 + [1] * 15, rcs)
        # +tag/dot spellings of one gmail mailbox share the limit
        rcs = concurrent(self, store, "3/3600", "100000/60",
                         ["g.m+%d@gmail.com" % i for i in range(10)])
        self.assertEqual(sorted(rcs), [0] * 3 + [1] * 7, rcs)
        # overall: 7 allowed out of 20 different addresses
        rcs = concurrent(self, store, "1000/3600", "7/3600", ["o%d@corp.user.test" % i for i in range(20)])
        self.assertEqual(sorted(rcs), [0] * 7 + [1] * 13, rcs)

    def test_sqlite(self):
        self.check_engine(new_store("rl"))

    def test_postgresql(self):
        with pglab.PgCluster() as pg:
            self.check_engine(new_store("rlpg", uri=pg.create_database("rl")))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
