#!/usr/bin/env python3
"""maildiag-mx against a real authoritative server (NSD on 127.0.0.1) serving
tests/zones/mx.test.zone and tests/zones/xn--bcher-kva.test.zone.

Environment: MAILDIAG_BIN_DIR (built maildiag-mx, maildiag), MAILDIAG_TESTS_DIR
(source tests/ dir).  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_mx.py MxCases.test_nullmx
"""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
from mxtest import MxTestCase, NOT_OK, STATUS_RC  # noqa: E402

NSD = None
TMP = None
BULK_N = 1000


def bulk_zone(path, n):
    """bulk.test: d<i>.bulk.test; i%10==0 null MX, i%10==1 implicit MX, else one MX with A."""
    lines = ["$ORIGIN bulk.test.", "$TTL 300",
             "@ IN SOA ns1.bulk.test. hostmaster.bulk.test. 1 3600 600 86400 300",
             "@ IN NS ns1.bulk.test.", "ns1 IN A 192.0.2.53"]
    for i in range(n):
        if i % 10 == 0:
            lines.append("d%d IN MX 0 ." % i)
        elif i % 10 == 1:
            lines.append("d%d IN A 198.51.100.%d" % (i, i % 250 + 1))
        else:
            lines.append("d%d IN MX 10 mx.d%d.bulk.test." % (i, i))
            lines.append("mx.d%d IN A 198.51.100.%d" % (i, i % 250 + 1))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def bulk_want(i):
    return {0: "critical", 1: "warning"}.get(i % 10, "ok")


def setUpModule():
    global NSD, TMP
    mdlab.tool_path("maildiag-mx")  # skip (77) early when the tool is not built
    TMP = tempfile.mkdtemp(prefix="mdtest-mx-")
    bulk = os.path.join(TMP, "bulk.test.zone")
    bulk_zone(bulk, BULK_N)
    NSD = mdlab.Nsd({"mx.test": mdlab.zone_path("mx.test.zone"),
                     "xn--bcher-kva.test": mdlab.zone_path("xn--bcher-kva.test.zone"),
                     "bulk.test": bulk}, workdir=TMP)
    NSD.start()
    MxTestCase.resolver = NSD.resolver


def tearDownModule():
    if NSD:
        NSD.stop()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def mxset(o):
    return [(m["host"].rstrip(".").lower(), m["preference"], sorted(m["addresses"]))
            for m in o.get("mx", [])]


# (domain, status, finding id, finding severity) -- the contract, one zone sub-domain each
CASES = {
    "ok": ("ok.mx.test", "ok", None, None),
    "nullmx": ("nullmx.mx.test", "critical", "mx.null", "critical"),
    "implicit": ("implicit.mx.test", "warning", "mx.implicit", "warning"),
    "none": ("none.mx.test", "critical", "mx.none", "critical"),
    "nxdomain": ("nxdomain.mx.test", "critical", "domain.nxdomain", "critical"),
    "cname_target": ("cname-target.mx.test", "warning", "mx.target_cname", "warning"),
    "ip_literal": ("ip-literal.mx.test", NOT_OK, "mx.target_ip_literal", None),
    "ip_literal_mixed": ("ip-literal-mixed.mx.test", "warning", "mx.target_ip_literal", None),
    "partial": ("partial.mx.test", "warning", "mx.target_unresolvable", "warning"),
    "unresolvable": ("unresolvable.mx.test", "critical", "mx.target_unresolvable", "critical"),
    "unresolvable_nx": ("unresolvable-nx.mx.test", "critical", "mx.target_unresolvable",
                        "critical"),
    "sorted": ("sorted.mx.test", "ok", None, None),
    "idn_alabel": ("xn--bcher-kva.test", "ok", None, None),
}


class MxCases(MxTestCase):
    """One test per zone case, --json: status, finding id (+severity), exit code."""

    def test_ok(self):
        o, run = self.check_case(*CASES["ok"][:3])
        self.assertEqual(o["domain"], "ok.mx.test")
        self.assertEqual(mxset(o), [("mx1.ok.mx.test", 10, ["192.0.2.10", "2001:db8::10"]),
                                    ("mx2.ok.mx.test", 20, ["192.0.2.11", "2001:db8::11"])],
                         "mx list\n%s" % run)
        self.assertIsNone(o.get("domain_unicode"), "domain_unicode is only for IDN: got %r\n%s"
                          % (o.get("domain_unicode"), run))

    def test_nullmx(self):
        self.check_case(*CASES["nullmx"][:3], severity="critical")

    def test_implicit(self):
        o, run = self.check_case(*CASES["implicit"][:3], severity="warning")
        self.assertEqual(mxset(o), [("implicit.mx.test", 0, ["192.0.2.20", "2001:db8::20"])],
                         "implicit MX: the mx list holds the domain itself, preference 0\n%s"
                         % run)

    def test_none(self):
        self.check_case(*CASES["none"][:3], severity="critical")

    def test_nxdomain(self):
        o, run = self.check_case(*CASES["nxdomain"][:3], severity="critical")
        self.assertNoFinding(o, "dns.temporary", run)

    def test_cname_target(self):
        o, run = self.check_case(*CASES["cname_target"][:3], severity="warning")
        hosts = {m["host"].rstrip(".").lower(): m for m in o.get("mx", [])}
        self.assertIn("alias.cname-target.mx.test", hosts, "mx list\n%s" % run)
        self.assertIn("192.0.2.30", hosts["alias.cname-target.mx.test"]["addresses"],
                      "addresses of a CNAME MX target come through the CNAME\n%s" % run)

    def test_ip_literal(self):
        o, run = self.check_case(*CASES["ip_literal"][:3])
        self.assertNotEqual(run.rc, 0, "exit code must not be 0\n%s" % run)

    def test_ip_literal_beside_good_mx(self):
        self.check_case(*CASES["ip_literal_mixed"][:3], rc=1)

    def test_partial(self):
        o, run = self.check_case(*CASES["partial"][:3], severity="warning")
        hosts = {m["host"].rstrip(".").lower(): m for m in o.get("mx", [])}
        self.assertEqual(sorted(hosts), ["mx1.partial.mx.test", "mx2.partial.mx.test"],
                         "mx list\n%s" % run)
        self.assertEqual(hosts["mx1.partial.mx.test"]["addresses"], ["192.0.2.31"])
        self.assertEqual(hosts["mx2.partial.mx.test"]["addresses"], [])

    def test_unresolvable_nodata(self):
        o, run = self.check_case(*CASES["unresolvable"][:3], severity="critical")
        self.assertNoFinding(o, "dns.temporary", run)

    def test_unresolvable_nxdomain(self):
        o, run = self.check_case(*CASES["unresolvable_nx"][:3], severity="critical")
        self.assertNoFinding(o, "dns.temporary", run)

    def test_too_many_hosts(self):
        run = self.mx("many.mx.test")
        o = self.by_input(run, ["many.mx.test"])["many.mx.test"]
        self.assertEqual(len(o["mx"]), 34, "every MX is listed\n%s" % run)
        unresolved = [m["host"] for m in o["mx"] if m.get("resolved") is False]
        self.assertEqual(unresolved, ["mx32.many.mx.test", "mx33.many.mx.test"],
                         "the two over the limit are marked\n%s" % run)
        ids = [f["id"] for f in o["findings"]]
        self.assertIn("mx.too_many_hosts", ids, run)
        self.assertEqual(o["status"], "warning", run)

    def test_sorted_by_preference(self):
        o, run = self.check_case(*CASES["sorted"][:3])
        self.assertEqual([(m["preference"], m["host"].rstrip(".").lower()) for m in o["mx"]],
                         [(10, "mx-c.sorted.mx.test"), (20, "mx-a.sorted.mx.test"),
                          (30, "mx-b.sorted.mx.test")],
                         "MX records must come back sorted by preference (zone order is "
                         "30, 10, 20)\n%s" % run)

    def test_idn_unicode_input(self):
        run = self.mx("bücher.test")
        o = self.by_input(run, ["bücher.test"])["bücher.test"]
        self.assertEqual(o["domain"], "xn--bcher-kva.test", "A-label form\n%s" % run)
        self.assertEqual(o.get("domain_unicode"), "bücher.test", "U-label form\n%s" % run)
        self.assertHealthy(o, run)
        self.assertEqual(mxset(o), [("mail.xn--bcher-kva.test", 10,
                                     ["192.0.2.40", "2001:db8::40"])], "mx list\n%s" % run)
        self.assertRc(run, 0)

    def test_idn_alabel_input(self):
        o, run = self.check_case(*CASES["idn_alabel"][:3])
        self.assertEqual(o["domain"], "xn--bcher-kva.test")
        self.assertEqual(o.get("domain_unicode"), "bücher.test",
                         "an A-label IDN input also carries its U-label form\n%s" % run)

    def test_trailing_dot_and_case(self):
        inputs = ["ok.mx.test.", "OK.Mx.TEST", "NullMX.mx.test.", "xn--bcher-kva.test."]
        run = self.mx(*inputs)
        got = self.by_input(run, inputs)
        for i in inputs:
            self.assertEqual(got[i]["domain"], i.rstrip(".").lower(), "domain\n%s" % run)
            self.assertNoFinding(got[i], "input.invalid_domain", run)
        self.assertStatus(got["ok.mx.test."], "ok", run)
        self.assertStatus(got["OK.Mx.TEST"], "ok", run)
        self.assertStatus(got["NullMX.mx.test."], "critical", run)
        self.assertStatus(got["xn--bcher-kva.test."], "ok", run)
        self.assertRc(run, 2)


class MxText(MxTestCase):
    """Human text: same exit code as --json, DOMAIN: STATE line, finding ids named."""

    def check_text(self, key):
        domain, status, fid, _ = CASES[key]
        j = self.mx(domain)
        t = self.mx(domain, json=False)
        self.assertEqual(t.rc, j.rc, "exit code text vs json: got %r, want %r (json)\n%s\n%s"
                         % (t.rc, j.rc, t, j))
        self.assertEqual(t.rc, STATUS_RC[status], "exit code\n%s" % t)
        self.assertTextDomain(t, domain, status, fid)
        self.assertFalse(t.out.lstrip().startswith("{"), "text mode printed JSON\n%s" % t)

    def test_text_ok(self):
        self.check_text("ok")
        t = self.mx("ok.mx.test", json=False)
        self.assertIn("mx1.ok.mx.test", t.out, "text names the MX hosts\n%s" % t)

    def test_text_nullmx(self):
        self.check_text("nullmx")

    def test_text_implicit(self):
        self.check_text("implicit")

    def test_text_nxdomain(self):
        self.check_text("nxdomain")

    def test_text_partial(self):
        self.check_text("partial")

    def test_text_invalid(self):
        j = self.mx("foo..test")
        t = self.mx("foo..test", json=False)
        self.assertEqual(t.rc, j.rc, "exit code text vs json\n%s\n%s" % (t, j))
        self.assertRc(t, 3)
        self.assertIn("input.invalid_domain", t.out + t.err, "text names the finding\n%s" % t)


class MxMulti(MxTestCase):
    """Several domains per call; exit code = worst (critical > warning > unknown > ok)."""

    def check_multi(self, domains, rc, *extra):
        run = self.mx(*(list(extra) + domains))
        got = self.by_input(run, domains)
        for d in domains:
            c = next((c for c in CASES.values() if c[0] == d), None)
            if c:
                self.assertStatus(got[d], c[1], run)
                if c[2]:
                    self.assertFinding(got[d], c[2], run)
        self.assertRc(run, rc)
        t = self.mx(*(list(extra) + domains), json=False)
        self.assertEqual(t.rc, run.rc, "exit code text vs json\n%s\n%s" % (t, run))
        return got, run

    def test_worst_critical(self):
        self.check_multi(["ok.mx.test", "implicit.mx.test", "nullmx.mx.test"], 2)

    def test_worst_warning(self):
        self.check_multi(["ok.mx.test", "implicit.mx.test", "sorted.mx.test"], 1)

    def test_all_ok(self):
        self.check_multi(["ok.mx.test", "sorted.mx.test", "xn--bcher-kva.test"], 0)

    def test_warning_beats_unknown(self):
        self.check_multi(["implicit.mx.test", "foo..test"], 1)

    def test_unknown_beats_ok(self):
        self.check_multi(["ok.mx.test", "foo..test"], 3)

    def test_critical_beats_unknown(self):
        self.check_multi(["foo..test", "none.mx.test"], 2)

    def test_concurrency_option(self):
        self.check_multi(["ok.mx.test", "implicit.mx.test", "nullmx.mx.test",
                          "partial.mx.test"], 2, "--concurrency", "2")

    def test_every_case_in_one_call(self):
        domains = [c[0] for c in CASES.values()]
        run = self.mx(*domains)
        got = self.by_input(run, domains)
        for d, status, fid, _ in CASES.values():
            self.assertStatus(got[d], status, run)
            if fid:
                self.assertFinding(got[d], fid, run)
        self.assertRc(run, 2)

    def test_quiet_hides_ok(self):
        run = self.mx("-q", "ok.mx.test", "nullmx.mx.test", json=False)
        self.assertRc(run, 2)
        self.assertNoTextLineFor(run, "ok.mx.test")
        self.assertNotIn("mx1.ok.mx.test", run.out, "-q must hide ok domains\n%s" % run)
        self.assertTextDomain(run, "nullmx.mx.test", "critical", "mx.null")

    def test_quiet_all_ok(self):
        run = self.mx("-q", "ok.mx.test", "sorted.mx.test", json=False)
        self.assertRc(run, 0)
        self.assertNoTextLineFor(run, "ok.mx.test")
        self.assertNoTextLineFor(run, "sorted.mx.test")


class MxFile(MxTestCase):

    FILE = ("# domains to check\n"
            "ok.mx.test\n"
            "\n"
            "   \n"
            "nullmx.mx.test   # trailing comment\n"
            "# implicit.mx.test is not commented out below\n"
            "implicit.mx.test\n")
    WANT = {"ok.mx.test": "ok", "nullmx.mx.test": "critical", "implicit.mx.test": "warning"}

    def check_file_run(self, run):
        objs = self.results(run, expect_count=3)
        got = {o["domain"]: o for o in objs}
        self.assertEqual(sorted(got), sorted(self.WANT), "domains read from the file\n%s" % run)
        for d, s in self.WANT.items():
            self.assertStatus(got[d], s, run)
        self.assertRc(run, 2)

    def test_file(self):
        path = os.path.join(TMP, "domains.txt")
        with open(path, "w") as f:
            f.write(self.FILE)
        self.check_file_run(self.mx("--file", path))

    def test_file_stdin(self):
        self.check_file_run(self.mx("--file", "-", stdin=self.FILE))

    def test_file_crlf(self):
        run = self.mx("--file", "-", stdin="ok.mx.test\r\nimplicit.mx.test\r\n")
        got = {o["domain"]: o for o in self.results(run, expect_count=2)}
        self.assertEqual(sorted(got), ["implicit.mx.test", "ok.mx.test"],
                         "CRLF line ends\n%s" % run)
        self.assertRc(run, 1)

    def test_file_missing(self):
        run = self.mx("--file", os.path.join(TMP, "no-such-file.txt"))
        self.assertRc(run, 3)

    def test_bulk(self):
        domains = ["d%d.bulk.test" % i for i in range(BULK_N)]
        t0 = time.monotonic()
        run = self.mx("--file", "-", "--concurrency", "50", stdin="\n".join(domains) + "\n")
        elapsed = time.monotonic() - t0
        got = self.by_input(run, domains)
        wrong = [(d, got[d]["status"], bulk_want(i)) for i, d in enumerate(domains)
                 if got[d]["status"] != bulk_want(i)]
        self.assertEqual(wrong[:10], [], "%d of %d bulk results wrong (got, want), first 10; "
                         "command: %s" % (len(wrong), BULK_N, run.cmd()))
        self.assertRc(run, 2)
        self.assertLess(elapsed, 20, "bulk of %d domains took %.1f s" % (BULK_N, elapsed))
        print("\n  bulk: %d domains in %.2f s" % (BULK_N, elapsed), end=" ", flush=True)


class MxPlugin(MxTestCase):

    def check_plugin(self, domains, state, rc):
        run = self.mx("--plugin", *domains, json=False)
        first = run.out.splitlines()[0] if run.out else ""
        self.assertTrue(re.match(r"^MX %s\b" % state, first),
                        "plugin line: want 'MX %s ...', got %r\n%s" % (state, first, run))
        self.assertIn("|", first, "plugin line has no perfdata\n%s" % run)
        self.assertRegex(first.split("|", 1)[1], r"\bdomains=%d\b" % len(domains),
                         "perfdata domains=%d\n%s" % (len(domains), run))
        self.assertRc(run, rc)

    def test_plugin_ok(self):
        self.check_plugin(["ok.mx.test"], "OK", 0)

    def test_plugin_warning(self):
        self.check_plugin(["ok.mx.test", "implicit.mx.test"], "WARNING", 1)

    def test_plugin_critical(self):
        self.check_plugin(["ok.mx.test", "implicit.mx.test", "nullmx.mx.test"], "CRITICAL", 2)

    def test_plugin_unknown(self):
        self.check_plugin(["ok.mx.test", "foo..test"], "UNKNOWN", 3)


class MxUsage(MxTestCase):

    def test_unknown_option(self):
        run = self.mx("--no-such-option", "ok.mx.test", json=False)
        self.assertRc(run, 3)
        self.assertTrue(run.err.strip(), "usage error says something on stderr\n%s" % run)

    def test_no_domain(self):
        run = self.mx(json=False)
        self.assertRc(run, 3)

    def test_bad_timeout(self):
        run = self.mx("ok.mx.test", json=False, timeout="abc")
        self.assertRc(run, 3)

    def test_missing_option_value(self):
        run = mdlab.run_tool([self.mx_bin, "ok.mx.test", "--timeout"])
        self.assertRc(run, 3)

    def test_bad_resolver_spec(self):
        for spec in ("not-an-address", "127.0.0.1:99999", "300.1.2.3"):
            with self.subTest(spec):
                run = mdlab.run_tool([self.mx_bin, "--resolver", spec, "--timeout", "1",
                                      "ok.mx.test"])
                self.assertRc(run, 3)
                self.assertEqual(run.out.strip(), "", "no result on a usage error\n%s" % run)

    def test_bad_concurrency(self):
        for n in ("0", "-1", "many"):
            with self.subTest(n):
                self.assertRc(self.mx("--concurrency", n, "ok.mx.test", json=False), 3)

    def test_help(self):
        run = mdlab.run_tool([self.mx_bin, "--help"])
        self.assertRc(run, 0)
        self.assertIn("--resolver", run.out, "--help lists the options on stdout\n%s" % run)

    def test_version(self):
        run = mdlab.run_tool([self.mx_bin, "--version"])
        self.assertRc(run, 0)
        self.assertTrue(run.out.strip(), "--version prints a version\n%s" % run)


class MxInvalidInput(MxTestCase):

    BAD = {
        "empty": "",
        "too_long": ".".join(["a" * 60] * 5) + ".test",  # 309 characters
        "long_label": "a" * 64 + ".mx.test",
        "space": "exa mple.test",
        "empty_label": "foo..test",
    }

    def test_bad_inputs_with_a_good_one(self):
        inputs = list(self.BAD.values()) + ["ok.mx.test"]
        run = self.mx(*inputs)
        got = self.by_input(run, inputs)
        for name, bad in self.BAD.items():
            self.assertStatus(got[bad], "unknown", run)
            self.assertFinding(got[bad], "input.invalid_domain", run, "unknown")
        self.assertHealthy(got["ok.mx.test"], run)
        self.assertRc(run, 3)

    def test_each_bad_input_alone(self):
        for name, bad in self.BAD.items():
            with self.subTest(name):
                run = self.mx(bad)
                o = self.by_input(run, [bad])[bad]
                self.assertStatus(o, "unknown", run)
                self.assertFinding(o, "input.invalid_domain", run, "unknown")
                self.assertRc(run, 3)

    def test_bad_inputs_in_file(self):
        run = self.mx("--file", "-", stdin="exa mple.test\nfoo..test\nimplicit.mx.test\n")
        objs = self.results(run, expect_count=3)
        bad = [o for o in objs if self.finding(o, "input.invalid_domain")]
        self.assertEqual(len(bad), 2, "invalid lines in --file\n%s" % run)
        self.assertRc(run, 1)


class MxEnvAndDispatcher(MxTestCase):

    def test_env_resolver(self):
        run = self.mx("ok.mx.test", resolver=False, env={"MAILDIAG_RESOLVER": self.resolver})
        self.assertHealthy(self.by_input(run, ["ok.mx.test"])["ok.mx.test"], run)
        self.assertRc(run, 0)

    def test_dispatcher_same_json(self):
        try:
            disp = mdlab.tool_path("maildiag")
        except mdlab.LabSkip as e:
            self.skipTest(str(e))
        domains = ["ok.mx.test", "nullmx.mx.test", "implicit.mx.test", "bücher.test"]
        a = self.mx(*domains)
        b = self.mx(*domains, bin_argv=[disp, "mx"])
        ra = self.by_input(a, domains)
        rb = self.by_input(b, domains)
        self.assertEqual(rb, ra, "maildiag mx vs maildiag-mx JSON\n%s\n%s" % (b, a))
        self.assertEqual(b.rc, a.rc, "exit codes\n%s\n%s" % (b, a))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
