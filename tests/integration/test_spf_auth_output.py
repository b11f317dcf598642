#!/usr/bin/env python3
"""The exact output of maildiag-spf and maildiag-auth, JSON and text, over every
case of the test zones (NSD on 127.0.0.1) and of a scripted responder (SERVFAIL,
silence, include loops and fan-out), compared byte for byte with the expected
output in tests/integration/golden/.  The JSON and text the tools print are a
documented contract (the man pages, README.md): a change to them shows here as a
diff, to be reviewed and, when it is meant, regenerated with

    MAILDIAG_REGEN_GOLDEN=1 make check TESTS=tests/integration/test_spf_auth_output.py

(or run this file with MAILDIAG_BIN_DIR and MAILDIAG_TESTS_DIR set).  The cases
that make libspf2 crash or hang (MAILDIAG_SPF_FAULT) need a build configured
with --enable-test-hooks; without it they are skipped.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR, MAILDIAG_TEST_HOOKS.
Exit 0 pass, 1 fail, 77 skip.
"""

import difflib
import os
import re
import shutil
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))
sys.path.insert(0, os.path.join(_TESTS, "integration"))

import mdlab  # noqa: E402
from test_spf import HOSTILE_TREES  # noqa: E402

NSD = None
SD = None
TMP = None
GOLDEN = os.path.join(_TESTS, "integration", "golden")
IP = "192.0.2.10"

# Every name of spf.test that publishes a TXT record, in zone order.
SPF_NAMES = ("pass fail softfail neutral nospf pass6 amx helo total six1 six2 eleventh ten"
             " void3 void2 mx11 syntax badcidr two redirall redir redirnone spf10 loop macro"
             " ir badmacro bigdigit bigdigit2 multi incnone incok plusall qall ptr near long"
             " good nxdomain").split()
AUTH_DOMAINS = ("good pnone multi badp badtags pct unauth norua dk bad nohost sub.inherit"
                " nothing").split()
DKIM_SELECTORS = "sel1 ed weak short long revoked testing garbage absent".split()

# The scripted responder: temporary failures everywhere maildiag-auth and
# maildiag-spf look, and the hostile include trees of test_spf.py.
SCRIPTED = [
    ("servfail.fail.test", "TXT", "servfail"),
    ("hang.fail.test", "TXT", "hang"),
    ("amx.fail.test", "TXT", "answer", [("TXT", "v=spf1 a:down.fail.test -all")]),
    ("down.fail.test", "*", "servfail"),
    ("good.fail.test", "TXT", "answer", [("TXT", "v=spf1 ip4:192.0.2.10 -all")]),
    ("mxdown.fail.test", "TXT", "answer", [("TXT", "v=spf1 mx:down.fail.test -all")]),
    ("exdown.fail.test", "TXT", "answer", [("TXT", "v=spf1 exists:down.fail.test -all")]),
    ("incdown.fail.test", "TXT", "answer", [("TXT", "v=spf1 include:servfail.fail.test -all")]),
    ("_dmarc.tmp.test", "TXT", "servfail"),
    ("sel._domainkey.tmp.test", "TXT", "servfail"),
    ("_mta-sts.tmp.test", "TXT", "servfail"),
    ("_smtp._tls.tmp.test", "TXT", "servfail"),
    ("default._bimi.tmp.test", "TXT", "servfail"),
    ("tmp.test", "TXT", "servfail"),
    ("tmp.test", "MX", "servfail"),
    ("_dmarc.ext.test", "TXT", "answer",
     [("TXT", "v=DMARC1; p=reject; rua=mailto:a@down.fail.test,mailto:b@ext.test,"
       "https://x.test; ruf=mailto:f@elsewhere.test!10m")]),
    ("ext.test._report._dmarc.down.fail.test", "TXT", "servfail"),
    ("_mta-sts.ext.test", "TXT", "answer", [("TXT", "v=STSv1; id=abc"), ("TXT", "v=STSv1; id=def")]),
    ("_smtp._tls.ext.test", "TXT", "answer", [("TXT", "v=TLSRPTv1; rua=https://r.test/x")]),
    ("default._bimi.ext.test", "TXT", "answer", [("TXT", "v=BIMI1; l=http://x.test/l.svg")]),
    ("mta-sts.ext.test", "*", "servfail"),
    ("_dmarc.org.test", "TXT", "answer",
     [("TXT", "v=DMARC1; p=bogus; sp=maybe; rua=mailto:r@org.test; fo=0:x; aspf=q")]),
    ("sel._domainkey.org.test", "TXT", "answer",
     [("TXT", "v=DKIM1; p=AAAA; t=s:y"), ("TXT", "v=DKIM1; p=")]),
    ("k2._domainkey.org.test", "TXT", "answer", [("TXT", "v=DKIM2; p=abc")]),
    ("k3._domainkey.org.test", "TXT", "answer", [("TXT", "k=rsa")]),
    ("k4._domainkey.org.test", "TXT", "answer", [("TXT", "v=DKIM1; p=a; p=b")]),
    ("_mta-sts.org.test", "TXT", "answer", [("TXT", "v=STSv1; id")]),
    ("_smtp._tls.org.test", "TXT", "answer", [("TXT", "v=TLSRPTv1;")]),
] + HOSTILE_TREES


def setUpModule():
    global NSD, SD, TMP
    mdlab.tool_path("maildiag-spf")
    mdlab.tool_path("maildiag-auth")
    TMP = tempfile.mkdtemp(prefix="mdtest-golden-")
    NSD = mdlab.Nsd({z: mdlab.zone_path(z + ".zone")
                     for z in ("spf.test", "auth.test", "reports.test", "bare.test")},
                    workdir=TMP)
    NSD.start()
    SD = mdlab.ScriptedDns(SCRIPTED).start()


def tearDownModule():
    if SD:
        SD.stop()
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def spf_cases():
    """(name, argv after the tool and resolver, stdin, env) of maildiag-spf."""
    ev = lambda *a: list(a)  # noqa: E731
    cases = []
    for n in SPF_NAMES:
        cases.append(("eval %s" % n, "nsd", ev("--ip", IP, "--from", "user@%s.spf.test" % n,
                                                "--helo", "mail.example.com"), None, None))
        cases.append(("lint %s" % n, "nsd", ev("%s.spf.test" % n), None, None))
    cases += [
        ("eval pass6 v6", "nsd", ev("--ip", "2001:db8::1", "--from", "u@pass6.spf.test"), None, None),
        ("eval pass6 v6 fail", "nsd", ev("--ip", "2001:db9::1", "--from", "u@pass6.spf.test"), None, None),
        ("eval mapped", "nsd", ev("--ip", "::ffff:192.0.2.10", "--from", "u@pass.spf.test"), None, None),
        ("eval loop", "nsd", ev("--ip", "127.0.0.1", "--from", "u@loop.spf.test"), None, None),
        ("eval macro strong", "nsd", ev("--ip", IP, "--from", "strong@macro.spf.test",
                                        "--helo", "h.example.com"), None, None),
        ("eval macro strong-bad", "nsd", ev("--ip", IP, "--from", "strong-bad@macro.spf.test"), None, None),
        ("eval bigdigit a.b", "nsd", ev("--ip", IP, "--from", "a.b@bigdigit.spf.test"), None, None),
        ("eval bigdigit2 a.b", "nsd", ev("--ip", IP, "--from", "a.b@bigdigit2.spf.test"), None, None),
        ("eval helo null sender", "nsd", ev("--ip", IP, "--from", "", "--helo", "helo.spf.test"), None, None),
        ("eval helo identity", "nsd", ev("--ip", IP, "--from", "x@fail.spf.test", "--helo",
                                         "helo.spf.test", "--identity", "helo"), None, None),
        ("eval helo only", "nsd", ev("--ip", IP, "--helo", "helo.spf.test"), None, None),
        ("eval domain arg", "nsd", ev("--ip", IP, "pass.spf.test"), None, None),
        ("eval domain override", "nsd", ev("--ip", IP, "--from", "u@fail.spf.test",
                                           "pass.spf.test"), None, None),
        ("eval empty local", "nsd", ev("--ip", IP, "--from", "@pass.spf.test"), None, None),
        ("eval no at", "nsd", ev("--ip", IP, "--from", "pass.spf.test"), None, None),
        ("eval quoted local", "nsd", ev("--ip", IP, "--from", '"a b"@pass.spf.test'), None, None),
        ("eval utf8 local", "nsd", ev("--ip", IP, "--from", "j\u00fcrgen@pass.spf.test"), None, None),
        ("eval receiver", "nsd", ev("--ip", IP, "--from", "u@fail.spf.test", "--receiver",
                                    "mx.example.org"), None, None),
        ("eval no-libspf2", "nsd", ev("--ip", IP, "--from", "u@total.spf.test", "--no-libspf2"), None, None),
        ("eval bad domain", "nsd", ev("--ip", IP, "--from", "u@localhost"), None, None),
        ("eval quiet pass", "nsd", ev("--quiet", "--ip", IP, "--from", "u@pass.spf.test"), None, None),
        ("bulk", "nsd", ev("--file", "-", "--concurrency", "1"),
         "".join("%s u@%s.spf.test mail.example.com\n" % (IP, d)
                 for d in ("pass", "fail", "total", "void3", "two", "mx11", "redir", "macro"))
         + "# comment\n\nnot-an-ip x@y.test\n192.0.2.1\n2001:db8::1 <> helo.spf.test\n", None),
        ("bulk quiet", "nsd", ev("--quiet", "--file", "-", "--concurrency", "1"),
         "%s u@pass.spf.test\n%s u@fail.spf.test\n" % (IP, IP), None),
        ("lint several", "nsd", ev("good.spf.test", "bad..name", "b\u00fccher.spf.test",
                                   "x"), None, None),
        ("lint quiet", "nsd", ev("--quiet", "good.spf.test", "total.spf.test"), None, None),
        # input that is not text: bytes that are not UTF-8, control characters
        ("lint not utf-8", "nsd", ev("\udcff.spf.test", "a\x01b.spf.test"), None, None),
        ("bulk not utf-8", "nsd", ev("--file", "-", "--concurrency", "1"),
         b"192.0.2.10 \xff@pass.spf.test\n\xff bad line\n192.0.2.10 u@pass.spf.test h\x01.test\n",
         None),
        ("eval servfail", "sd", ev("--ip", IP, "--from", "u@servfail.fail.test"), None, None),
        ("eval amx servfail", "sd", ev("--ip", IP, "--from", "u@amx.fail.test"), None, None),
        ("eval mx servfail", "sd", ev("--ip", IP, "--from", "u@mxdown.fail.test"), None, None),
        ("eval exists servfail", "sd", ev("--ip", IP, "--from", "u@exdown.fail.test"), None, None),
        ("eval include servfail", "sd", ev("--ip", IP, "--from", "u@incdown.fail.test"), None, None),
        ("eval hang", "sd", ev("--timeout", "1", "--ip", IP, "--from", "u@hang.fail.test"), None, None),
        ("lint servfail", "sd", ev("servfail.fail.test", "amx.fail.test", "incdown.fail.test"), None, None),
    ]
    for dom in ("fan3.loop.test", "fan9.loop.test", "a.cycle.test", "wide.test", "dia.test",
                "dia12.test"):
        cases.append(("lint %s" % dom, "sd", ev(dom), None, None))
        cases.append(("eval %s" % dom, "sd", ev("--ip", IP, "--from", "u@" + dom), None, None))
    return cases


def auth_cases():
    cases = []
    for d in AUTH_DOMAINS:
        cases.append(("auth %s" % d, "nsd", ["%s.auth.test" % d], None, None))
    cases += [
        ("auth good selectors", "nsd", ["--dkim-selector", "sel1", "--dkim-selector", "ed", "good.auth.test"], None, None),
        ("auth dk selectors", "nsd", [a for s in DKIM_SELECTORS for a in ("--dkim-selector", s)]
         + ["dk.auth.test"], None, None),
        ("auth dk env selectors", "nsd", ["dk.auth.test"], None,
         {"MAILDIAG_DKIM_SELECTORS": "nope,long weak"}),
        ("auth pnone no-reset", "nsd", ["--no-reset-mail", "pnone.auth.test"], None, None),
        ("auth several", "nsd", ["bare.test", "GOOD.Auth.Test.", "b\u00fccher.auth.test", "bad..name",
                                 "localhost"], None, None),
        ("auth not utf-8", "nsd", ["\udcff.test", "a\x01b.test"], None, None),
        ("auth tmp", "sd", ["--dkim-selector", "sel", "tmp.test"], None, None),
        ("auth ext", "sd", ["ext.test"], None, None),
        ("auth org", "sd", ["--dkim-selector", "sel", "--dkim-selector", "k2", "--dkim-selector", "k3", "--dkim-selector", "k4", "org.test"], None, None),
        ("auth org subdomain", "sd", ["a.b.org.test"], None, None),
        ("auth loop", "sd", ["fan9.loop.test", "wide.test"], None, None),
    ]
    return cases


FAULT_CASES = [
    ("fault libspf2-crash", ["--deadline", "2", "--ip", IP, "--from", "u@pass.spf.test"],
     "libspf2-crash"),
    ("fault libspf2-hang", ["--deadline", "2", "--ip", IP, "--from", "u@fail.spf.test"],
     "libspf2-hang"),
    ("fault walk-hang", ["--deadline", "2", "--ip", IP, "--from", "u@pass.spf.test"], "walk-hang"),
]


# How the crash the libspf2-crash fault causes shows depends on the build:
# under AddressSanitizer its SIGSEGV handler reports and exits 1.
CRASH = re.compile(r"the evaluation with libspf2 (killed by signal 11 \(Segmentation fault\)"
                   r"|exited with status 1); evaluated again")


def render(tool, cases, fmt_json):
    """The cases' outputs as one text, resolver addresses and how a worker
    crashed replaced."""
    out = []
    binp = mdlab.tool_path(tool)
    for name, where, args, stdin, env in cases:
        res = NSD.resolver if where == "nsd" else SD.resolver
        argv = [binp, "--resolver", res, "--timeout", "2"] + (["--json"] if fmt_json else []) + args
        if isinstance(stdin, str):
            stdin = stdin.encode()
        run = mdlab.run_tool(argv, stdin=stdin, env=env, timeout=60)
        text = run.out.replace(NSD.resolver, "NSD").replace(SD.resolver, "SCRIPTED")
        text = CRASH.sub("the evaluation with libspf2 CRASHED; evaluated again", text)
        out.append("### %s %s (%s)\n" % (tool, name, "json" if fmt_json else "text"))
        out.append("exit %s\n%s" % (run.rc, text))
        if text and not text.endswith("\n"):
            out.append("\n")
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

    def test_spf_json(self):
        self.compare("spf.json.txt", render("maildiag-spf", spf_cases(), True))

    def test_spf_text(self):
        self.compare("spf.text.txt", render("maildiag-spf", spf_cases(), False))

    def test_auth_json(self):
        self.compare("auth.json.txt", render("maildiag-auth", auth_cases(), True))

    def test_auth_text(self):
        self.compare("auth.text.txt", render("maildiag-auth", auth_cases(), False))

    def test_spf_faults(self):
        mdlab.require_test_hooks("MAILDIAG_SPF_FAULT")
        cases = [(n, "nsd", a, None, {"MAILDIAG_SPF_FAULT": f}) for n, a, f in FAULT_CASES]
        self.compare("spf.faults.txt", render("maildiag-spf", cases, True)
                     + render("maildiag-spf", cases, False))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
