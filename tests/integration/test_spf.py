#!/usr/bin/env python3
"""maildiag-spf against a real authoritative server (NSD on 127.0.0.1) serving
tests/zones/spf.test.zone: one sub-domain per RFC 7208 rule, including every case
where libspf2 1.2.10 alone answers wrong (we assert the RFC answer), plus a
scripted responder for SERVFAIL and silence (temperror), lint findings, and the
--file bulk mode.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_spf.py Evaluate.test_total_lookup_limit
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

NSD = None
SD = None
TMP = None
BIN = None
RC = {"pass": 0, "neutral": 1, "none": 1, "softfail": 1, "fail": 2, "permerror": 2,
      "temperror": 3}
KEYS = ("domain", "ip", "sender", "result", "explanation", "lookups", "void_lookups",
        "mechanism", "tree", "findings", "received_spf", "authentication_results")
IP = "192.0.2.10"


def _spf(text):
    return [("TXT", text)]


def _includes(names, tail="-all"):
    return "v=spf1 " + " ".join("include:" + n for n in names) + " " + tail


# Include trees a hostile or careless domain can publish: lint must stay
# small and fast on every one (each (domain, record) visited once, counting
# stops at the RFC 7208 limits).
HOSTILE_TREES = [
    ("fan3.loop.test", "TXT", "answer", _spf(_includes(["fan3.loop.test"] * 3))),
    ("fan9.loop.test", "TXT", "answer", _spf(_includes(["fan9.loop.test"] * 9))),
    ("a.cycle.test", "TXT", "answer", _spf(_includes(["b.cycle.test"]))),
    ("b.cycle.test", "TXT", "answer", _spf(_includes(["a.cycle.test"]))),
    # twelve levels, each name including five names of the next level:
    # 5^12 paths through 61 records
    ("wide.test", "TXT", "answer",
     _spf(_includes(["%s.l1.wide.test" % c for c in "abcde"]))),
    # a diamond: z is reached through x and through y and counts twice (as
    # for a receiver), but is walked and shown once; 10 terms, then 12
    ("dia.test", "TXT", "answer", _spf(_includes(["x.dia.test", "y.dia.test"]))),
    ("dia12.test", "TXT", "answer",
     _spf(_includes(["x.dia.test", "y.dia.test"], "a:h.dia.test a:h.dia.test -all"))),
    ("x.dia.test", "TXT", "answer", _spf(_includes(["z.dia.test"]))),
    ("y.dia.test", "TXT", "answer", _spf(_includes(["z.dia.test"]))),
    ("z.dia.test", "TXT", "answer", _spf("v=spf1 a:h.dia.test mx:h.dia.test a:h.dia.test -all")),
    ("h.dia.test", "A", "answer", [("A", "192.0.2.1")]),
    ("h.dia.test", "MX", "answer", [("MX", 10, "h.dia.test")]),
] + [
    ("*.l%d.wide.test" % k, "TXT", "answer",
     _spf(_includes(["%s.l%d.wide.test" % (c, k + 1) for c in "abcde"])))
    for k in range(1, 12)
] + [
    ("*.l12.wide.test", "TXT", "answer", _spf("v=spf1 ip4:192.0.2.10 -all")),
]


def setUpModule():
    global NSD, SD, TMP, BIN
    BIN = mdlab.tool_path("maildiag-spf")
    TMP = tempfile.mkdtemp(prefix="mdtest-spf-")
    NSD = mdlab.Nsd({"spf.test": mdlab.zone_path("spf.test.zone")}, workdir=TMP)
    NSD.start()
    SD = mdlab.ScriptedDns([
        ("servfail.fail.test", "TXT", "servfail"),
        ("hang.fail.test", "TXT", "hang"),
        ("amx.fail.test", "TXT", "answer", [("TXT", "v=spf1 a:down.fail.test -all")]),
        ("down.fail.test", "*", "servfail"),
        ("good.fail.test", "TXT", "answer", [("TXT", "v=spf1 ip4:192.0.2.10 -all")]),
    ] + HOSTILE_TREES).start()


def tearDownModule():
    if SD:
        SD.stop()
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


class SpfCase(unittest.TestCase):
    maxDiff = None
    resolver = None

    def spf(self, *args, resolver=None, timeout=2, stdin=None, json=True):
        argv = [BIN, "--resolver", resolver or NSD.resolver, "--timeout", str(timeout)]
        if json:
            argv.append("--json")
        argv += list(args)
        return mdlab.run_tool(argv, stdin=stdin.encode() if stdin else None)

    def one(self, run):
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), 1, "want one JSON object\n%s" % run)
        return objs[0]

    def finding(self, o, fid):
        return next((f for f in o["findings"] if f["id"] == fid), None)

    def assertFinding(self, o, fid, run, severity=None):
        f = self.finding(o, fid)
        self.assertIsNotNone(f, "finding %s: got %r\n%s" % (fid, [x["id"] for x in o["findings"]], run))
        if severity:
            self.assertEqual(f["severity"], severity, "severity of %s\n%s" % (fid, run))
        return f

    def lint(self, domain, status, fid=None, severity=None):
        run = self.spf(domain)
        o = self.one(run)
        self.assertEqual(o["status"], status, run)
        self.assertEqual(run.rc, {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}[status], run)
        if fid:
            self.assertFinding(o, fid, run, severity)
        return o, run

    def evaluate(self, domain, result, ip=IP, local="user", helo="mail.example.com", rc=None,
                 finding=None, **kw):
        sender = "%s@%s" % (local, domain) if domain is not None else ""
        run = self.spf("--ip", ip, "--from", sender, "--helo", helo, **kw)
        o = self.one(run)
        for k in KEYS:
            self.assertIn(k, o, "missing key %s\n%s" % (k, run))
        self.assertEqual(o["result"], result, "result for %s from %s\n%s" % (sender, ip, run))
        self.assertEqual(run.rc, RC[result] if rc is None else rc, "exit code\n%s" % run)
        if finding:
            self.assertFinding(o, finding, run)
        return o, run


class Evaluate(SpfCase):

    def test_pass_fail_softfail_neutral_none(self):
        o, run = self.evaluate("pass.spf.test", "pass")
        self.assertEqual(o["mechanism"], "ip4:192.0.2.0/24")
        self.assertFinding(o, "spf.pass", run, "ok")
        o, run = self.evaluate("fail.spf.test", "fail")
        self.assertEqual(o["mechanism"], "-all")
        self.assertEqual(o["explanation"], "192.0.2.10 is not allowed to send mail for fail.spf.test")
        self.evaluate("softfail.spf.test", "softfail")
        self.evaluate("neutral.spf.test", "neutral")
        self.evaluate("nospf.spf.test", "none")
        self.evaluate("nxdomain.spf.test", "none")

    def test_headers(self):
        o, run = self.evaluate("pass.spf.test", "pass")
        self.assertTrue(o["received_spf"].startswith(
            "Received-SPF: pass (maildiag: domain of pass.spf.test designates 192.0.2.10 as"
            " permitted sender) client-ip=192.0.2.10; envelope-from=user@pass.spf.test;"
            " helo=mail.example.com;"), run)
        self.assertEqual(o["authentication_results"],
                         "Authentication-Results: maildiag; spf=pass smtp.mailfrom=user@pass.spf.test")
        o, run = self.evaluate("pass.spf.test", "pass", local='"a b"')
        self.assertIn('envelope-from="\\"a b\\"@pass.spf.test"', o["received_spf"], run)

    def test_ipv6_and_a_mx(self):
        self.evaluate("pass6.spf.test", "pass", ip="2001:db8::1")
        self.evaluate("pass6.spf.test", "fail", ip="2001:db9::1")
        o, run = self.evaluate("amx.spf.test", "pass")
        self.assertEqual(o["mechanism"], "mx")
        self.assertEqual(o["lookups"], 2)

    def test_helo_identity(self):
        run = self.spf("--ip", IP, "--from", "", "--helo", "helo.spf.test")
        o = self.one(run)
        self.assertEqual((o["result"], o["identity"], o["sender"]),
                         ("pass", "helo", "postmaster@helo.spf.test"), run)
        self.assertIn("smtp.helo=helo.spf.test", o["authentication_results"])
        run = self.spf("--ip", IP, "--from", "x@fail.spf.test", "--helo", "helo.spf.test",
                       "--identity", "helo")
        self.assertEqual(self.one(run)["result"], "pass", run)

    # --- where libspf2 1.2.10 alone is wrong: the RFC 7208 answer ---------

    def assertLibspf2Wrong(self, o, run):
        """libspf2 ran on the same data and disagreed; ours is the result."""
        l2 = o["libspf2"]
        self.assertTrue(l2.get("ran"), run)
        if l2.get("crashed"):
            return
        self.assertFalse(l2["agrees"], "libspf2 agreed; this case documents that it is wrong\n%s" % run)
        self.assertFinding(o, "spf.libspf2_differs", run, "ok")

    def test_libspf2_alone_is_wrong(self):
        for dom, res, local in (("total", "permerror", "u"), ("eleventh", "permerror", "u"),
                                ("void3", "permerror", "u"), ("syntax", "permerror", "u"),
                                ("macro", "pass", "strong")):
            o, run = self.evaluate(dom + ".spf.test", res, local=local)
            self.assertLibspf2Wrong(o, run)

    def test_total_lookup_limit(self):
        o, run = self.evaluate("total.spf.test", "permerror", finding="spf.lookup_limit")
        self.assertEqual(o["lookups"], 11, run)
        tree = o["tree"]
        self.assertEqual([c["domain"] for c in tree["children"]],
                         ["six1.spf.test", "six2.spf.test"], run)
        self.assertEqual(tree["children"][0]["lookups"], 6, run)

    def test_eleventh_term_matches(self):
        self.evaluate("eleventh.spf.test", "permerror", finding="spf.lookup_limit")
        o, run = self.evaluate("ten.spf.test", "pass")
        self.assertEqual(o["lookups"], 10)

    def test_void_limit(self):
        o, run = self.evaluate("void3.spf.test", "permerror", finding="spf.void_limit")
        self.assertEqual(o["void_lookups"], 3, run)
        o, run = self.evaluate("void2.spf.test", "pass")
        self.assertEqual(o["void_lookups"], 2, run)

    def test_mx_names_limit(self):
        self.evaluate("mx11.spf.test", "permerror", finding="spf.mx_limit")

    def test_top_level_syntax_error(self):
        o, run = self.evaluate("syntax.spf.test", "permerror", finding="spf.syntax")
        self.assertIn("column 23", o["error"], run)
        self.evaluate("badcidr.spf.test", "permerror", finding="spf.syntax")

    def test_two_records(self):
        self.evaluate("two.spf.test", "permerror", finding="spf.multiple_records")

    def test_redirect_ignored_with_all(self):
        self.evaluate("redirall.spf.test", "fail")
        self.evaluate("redir.spf.test", "pass")
        self.evaluate("redirnone.spf.test", "permerror", finding="spf.redirect_no_record")

    def test_spf10_is_not_spf(self):
        self.evaluate("spf10.spf.test", "none")

    def test_loopback_evaluated(self):
        o, run = self.evaluate("loop.spf.test", "fail", ip="127.0.0.1")
        self.assertEqual(o["mechanism"], "-all")
        l2 = o["libspf2"]
        if l2.get("ran") and not l2.get("crashed"):
            self.assertFalse(l2["agrees"], "libspf2 passes loopback; want it reported\n%s" % run)
            self.assertFinding(o, "spf.libspf2_differs", run, "ok")

    def test_macros(self):
        o, run = self.evaluate("macro.spf.test", "pass", local="strong")
        self.assertTrue(any(q["name"] == "strong.lp.spf.test" for q in o["queries"]), run)
        self.evaluate("macro.spf.test", "pass", local="strong-bad")
        self.evaluate("ir.spf.test", "pass")

    def test_digit_transformer_over_128(self):
        # valid (RFC 7208 7.1: more parts than there are is all of them), and
        # kept from libspf2, which refuses it: no misleading "libspf2 differs"
        for dom in ("bigdigit.spf.test", "bigdigit2.spf.test"):
            o, run = self.evaluate(dom, "pass", local="a.b")
            self.assertEqual(o["mechanism"], "exists:%s.%%{i0001}.bd.spf.test"
                             % ("%{l999r}" if dom.startswith("bigdigit.") else "%{l4294967297r}"), run)
            self.assertTrue(any(q["name"] == "b.a.10.bd.spf.test" for q in o["queries"]), run)
            l2 = o["libspf2"]
            self.assertFalse(l2["ran"], run)
            self.assertIn("128", l2["why"], run)
            self.assertIsNone(self.finding(o, "spf.libspf2_differs"), run)
            o, run = self.lint(dom, "ok", "spf.ok")

    def test_malformed_macro_is_permerror_and_kept_from_libspf2(self):
        o, run = self.evaluate("badmacro.spf.test", "permerror", finding="spf.syntax")

    def test_multi_string_txt(self):
        self.evaluate("multi.spf.test", "pass")

    def test_include(self):
        self.evaluate("incnone.spf.test", "permerror", finding="spf.include_no_record")
        o, run = self.evaluate("incok.spf.test", "pass")
        self.assertEqual(o["mechanism"], "include:pass.spf.test")

    def test_empty_local_part(self):
        # "@domain" is no Mailbox (RFC 5321 4.1.2): --from refuses it as every
        # tool refuses a bad address; a domain's own policy is DOMAIN, checked
        # as postmaster@DOMAIN (RFC 7208 4.3)
        run = self.spf("--ip", IP, "--from", "@pass.spf.test", "--helo", "h.example.com")
        self.assertEqual(run.rc, 3, run)
        self.assertIn("not a valid email address", run.err, run)
        run = self.spf("--ip", IP, "--helo", "h.example.com", "pass.spf.test")
        o = self.one(run)
        self.assertEqual(o["result"], "pass", run)
        self.assertEqual(o["sender"], "postmaster@pass.spf.test", run)
        self.assertEqual(run.rc, 0, run)

    # --- isolation: libspf2 crashing or hanging never kills the tool ------

    def faulty(self, fault, *args):
        mdlab.require_test_hooks("MAILDIAG_SPF_FAULT")
        argv = [BIN, "--resolver", NSD.resolver, "--timeout", "1", "--deadline", "2", "--json"]
        return mdlab.run_tool(argv + list(args), env={"MAILDIAG_SPF_FAULT": fault})

    def test_libspf2_crash_keeps_rfc_result(self):
        for fault in ("libspf2-crash", "libspf2-hang"):
            t0 = time.monotonic()
            run = self.faulty(fault, "--ip", IP, "--from", "u@pass.spf.test")
            o = self.one(run)
            self.assertEqual(o["result"], "pass", run)
            self.assertTrue(o["libspf2"].get("crashed"), run)
            self.assertFinding(o, "spf.libspf2_crashed", run, "ok")
            self.assertEqual(run.rc, 0, run)
            self.assertLess(time.monotonic() - t0, 6, run)

    def test_engine_hang_is_temperror(self):
        run = self.faulty("walk-hang", "--ip", IP, "--from", "u@pass.spf.test")
        o = self.one(run)
        self.assertEqual(o["result"], "temperror", run)
        self.assertFinding(o, "spf.engine_failed", run, "unknown")
        self.assertEqual(run.rc, 3, run)

    def test_bulk_survives_crashes(self):
        mdlab.require_test_hooks("MAILDIAG_SPF_FAULT")
        stdin = "".join("%s u@pass.spf.test\n" % IP for _ in range(6))
        argv = [BIN, "--resolver", NSD.resolver, "--json", "--file", "-", "--concurrency", "2"]
        run = mdlab.run_tool(argv, stdin=stdin.encode(), env={"MAILDIAG_SPF_FAULT": "libspf2-crash"})
        objs = mdlab.json_results(run)
        self.assertEqual([o["result"] for o in objs], ["pass"] * 6, run)

    # --- temporary failures -------------------------------------------------

    def test_servfail_is_temperror(self):
        o, run = self.evaluate("servfail.fail.test", "temperror", resolver=SD.resolver,
                               finding="spf.dns_temporary")
        o, run = self.evaluate("amx.fail.test", "temperror", resolver=SD.resolver)
        self.assertIn("servfail", o["error"], run)

    def test_timeout_is_temperror(self):
        t0 = time.monotonic()
        self.evaluate("hang.fail.test", "temperror", resolver=SD.resolver, timeout=1)
        self.assertLess(time.monotonic() - t0, 8)

    # --- usage ------------------------------------------------------------

    def test_usage(self):
        for args in (["--ip", "300.1.1.1", "--from", "a@b.test"], ["--bogus"], [],
                     ["--ip", IP, "--identity", "x", "--from", "a@b.test"]):
            run = mdlab.run_tool([BIN] + args)
            self.assertEqual(run.rc, 3, run)
            self.assertIn("maildiag-spf", run.err, run)
        run = mdlab.run_tool([BIN, "--help"])
        self.assertEqual(run.rc, 0, run)
        self.assertIn("--ip", run.out)

    def test_text_output(self):
        run = self.spf("--ip", IP, "--from", "u@total.spf.test", json=False)
        self.assertEqual(run.rc, 2, run)
        self.assertIn("spf.lookup_limit", run.out, run)
        self.assertIn("include six1.spf.test", run.out, run)


class Bulk(SpfCase):

    def test_file(self):
        cases = [("pass.spf.test", "pass"), ("fail.spf.test", "fail"),
                 ("total.spf.test", "permerror"), ("void3.spf.test", "permerror"),
                 ("softfail.spf.test", "softfail"), ("nospf.spf.test", "none")] * 20
        path = os.path.join(TMP, "pairs.txt")
        with open(path, "w") as f:
            f.write("# ip sender [helo]\n")
            for d, _ in cases:
                f.write("%s u@%s mail.example.com\n" % (IP, d))
            f.write("not-an-ip x@y.test\n")
        run = self.spf("--file", path, "--concurrency", "4")
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), len(cases) + 1, run)
        got = sorted((o["domain"], o["result"]) for o in objs if o["domain"])
        self.assertEqual(got, sorted(cases))
        bad = [o for o in objs if not o["domain"]]
        self.assertEqual(bad[0]["findings"][0]["id"], "input.invalid_line")
        self.assertEqual(run.rc, 2, run)


class Lint(SpfCase):

    def test_lint_findings(self):
        o, run = self.lint("good.spf.test", "ok", "spf.ok")
        self.assertEqual(o["lookups"], 2, run)
        self.assertEqual(o["record"], "v=spf1 include:pass.spf.test mx -all")
        self.lint("nospf.spf.test", "warning", "spf.no_record")
        self.lint("two.spf.test", "critical", "spf.multiple_records")
        o, run = self.lint("syntax.spf.test", "critical", "spf.syntax")
        self.assertIn("column 23", o["findings"][0]["evidence"][0], run)
        self.lint("total.spf.test", "critical", "spf.lookup_limit")
        self.lint("near.spf.test", "warning", "spf.lookups_near_limit")
        self.lint("void3.spf.test", "critical", "spf.void_limit")
        self.lint("void2.spf.test", "warning", "spf.void_lookups")
        self.lint("plusall.spf.test", "critical", "spf.pass_all")
        self.lint("qall.spf.test", "warning", "spf.neutral_all")
        self.lint("ptr.spf.test", "warning", "spf.ptr")
        self.lint("long.spf.test", "warning", "spf.too_long")
        self.lint("incnone.spf.test", "critical", "spf.include_no_record")
        self.lint("redirall.spf.test", "warning", "spf.redirect_ignored")
        self.lint("mx11.spf.test", "critical", "spf.mx_limit")

    def test_lint_tree(self):
        # lint stops where a receiver stops: the 11th term, a:h3 in six2
        o, run = self.lint("total.spf.test", "critical")
        self.assertEqual(o["lookups"], 11, run)
        self.assertEqual([(c["domain"], c["lookups"]) for c in o["tree"]["children"]],
                         [("six1.spf.test", 6), ("six2.spf.test", 3)], run)
        f = self.finding(o, "spf.lookup_limit")
        self.assertIn("'a:h3.spf.test' in six2.spf.test is number 11", f["evidence"][0], run)


class HostileLint(SpfCase):
    """Include loops and fan-out: the output and the time stay bounded."""

    def brief(self, run):
        return "command: %s\nexit: %s (%.2f s), %d bytes out\nstdout: %s\nstderr: %s" % (
            run.cmd(), run.rc, run.elapsed, len(run.out), run.out[:3000], run.err[:1000])

    def lint_bounded(self, tool, domain, json=True):
        argv = [tool, "--resolver", SD.resolver, "--timeout", "2"]
        if json:
            argv.append("--json")
        run = mdlab.run_tool(argv + [domain], timeout=20)
        self.assertLess(run.elapsed, 2.0, self.brief(run))
        self.assertLess(len(run.out), 64 * 1024, self.brief(run))
        return run

    def lint_finding(self, domain, fid, tool=None):
        run = self.lint_bounded(tool or BIN, domain)
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), 1, self.brief(run))
        o = objs[0]
        if tool in (None, BIN):
            f = self.finding(o, fid)
        else:   # maildiag-auth: the lint findings sit beside the others
            f = next((x for x in o["findings"] if x["id"] == fid), None)
        self.assertIsNotNone(f, "want %s: %r\n%s" % (fid, [x["id"] for x in o["findings"]],
                                                       self.brief(run)))
        self.assertEqual(f["severity"], "critical", self.brief(run))
        self.assertEqual(run.rc, 2, self.brief(run))
        return o, f, run

    def test_self_include(self):
        for dom in ("fan3.loop.test", "fan9.loop.test"):
            o, f, run = self.lint_finding(dom, "spf.include_loop")
            self.assertIn(dom, f["evidence"][0], self.brief(run))
            self.assertLessEqual(o["lookups"], MAX_TERMS + 1, self.brief(run))
            self.lint_bounded(BIN, dom, json=False)

    def test_mutual_include_cycle(self):
        o, f, run = self.lint_finding("a.cycle.test", "spf.include_loop")
        self.assertIn("b.cycle.test", f["evidence"][0], self.brief(run))
        self.assertIn("a.cycle.test", f["evidence"][0], self.brief(run))

    def test_wide_fan_out(self):
        o, f, run = self.lint_finding("wide.test", "spf.lookup_limit")
        self.assertEqual(o["lookups"], MAX_TERMS + 1, self.brief(run))
        self.assertIn("number 11", f["evidence"][0], self.brief(run))
        self.lint_bounded(BIN, "wide.test", json=False)

    def test_diamond_counts_twice_walks_once(self):
        run = self.lint_bounded(BIN, "dia.test")
        o = self.one(run)
        self.assertEqual(o["lookups"], 10, run)
        self.assertFinding(o, "spf.lookups_near_limit", run, "warning")
        x, y = o["tree"]["children"]
        self.assertEqual(x["children"][0]["lookups"], 3, run)
        self.assertIn("record", x["children"][0], run)
        self.assertEqual(y["children"][0]["domain"], "z.dia.test", run)
        self.assertIn("linted above", y["children"][0]["note"], run)
        self.assertNotIn("record", y["children"][0], run)
        o, f, run = self.lint_finding("dia12.test", "spf.lookup_limit")
        self.assertEqual(o["lookups"], 11, run)
        self.assertIn("'a:h.dia.test' in dia12.test is number 11", f["evidence"][0], run)

    def test_auth_lints_the_same_way(self):
        auth = mdlab.tool_path("maildiag-auth")
        self.lint_finding("fan9.loop.test", "spf.include_loop", tool=auth)
        self.lint_finding("wide.test", "spf.lookup_limit", tool=auth)
        self.lint_bounded(auth, "wide.test", json=False)


MAX_TERMS = 10


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
