#!/usr/bin/env python3
"""lib/dnsbl and lib/rdns through tests/unit/dnsbl-probe (no tool calls them yet).

Against a real NSD serving fixture blocklists (tests/zones/bl.test.zone) and reverse
zones (2.0.192.in-addr.arpa, 8.b.d.0.1.0.0.2.ip6.arpa, forward names in rdns.test):
RFC 5782 listings, return codes and TXT reasons, NXDOMAIN and NODATA, the test points
of section 5 (a wildcard list, a list without 127.0.0.2, the public-resolver code, a
non-127 answer, a list without the IPv6 test point), a domain list, forward-confirmed
reverse DNS and the HELO name.

Against the scripted responder (tests/lab/dnsscript.py): SERVFAIL, REFUSED, silence and
garbage for list, test-point, PTR, forward and HELO lookups.  Each must be unknown
(dns.temporary), never "not listed", "rdns.missing" or a mismatch.  Also: the test
points are asked once per list per run, and per-IP runs share one md_dns.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

STATUS_RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
V6_10 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
V6_TEST2 = "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"


def probe_path():
    """tests/unit/dnsbl-probe in the build tree (a check program beside the tools' dir)."""
    bindir = os.environ.get("MAILDIAG_BIN_DIR")
    if not bindir:
        raise mdlab.LabSkip("MAILDIAG_BIN_DIR is not set")
    path = os.path.join(os.path.dirname(os.path.abspath(bindir)), "tests", "unit", "dnsbl-probe")
    if not os.access(path, os.X_OK):
        raise mdlab.LabSkip("dnsbl-probe is not built (no executable %s)" % path)
    return path


def real_probe():
    """The ELF behind libtool's wrapper, for valgrind."""
    path = probe_path()
    with open(path, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return path
    for cand in ("lt-dnsbl-probe", "dnsbl-probe"):
        p = os.path.join(os.path.dirname(path), ".libs", cand)
        if os.path.isfile(p):
            return p
    return path


class ProbeCase(unittest.TestCase):
    resolver = None
    maxDiff = None

    def probe(self, *args, timeout=3, want_json=True):
        argv = [probe_path(), "--resolver", self.resolver, "--timeout", str(timeout)] + list(args)
        run = mdlab.run_tool(argv, timeout=60)
        if not want_json:
            return run, None
        objs = mdlab.json_results(run)
        self.assertTrue(objs, "no JSON on stdout\n%s" % run)
        for o in objs:
            self.assertIn(o.get("status"), STATUS_RC, "status\n%s" % run)
        if "--per-ip" not in args:
            self.assertEqual(len(objs), 1, "one report\n%s" % run)
            self.assertEqual(run.rc, STATUS_RC[objs[0]["status"]],
                             "exit code follows the status\n%s" % run)
        return run, (objs if "--per-ip" in args else objs[0])

    # ---------------------------------------------------------------- lookups

    def listing(self, rep, subject, zone, run):
        for l in rep.get("dnsbl", {}).get("listings", []):
            if l["subject"] == subject and l["zone"] == zone:
                return l
        self.fail("no listing for %s on %s\n%s" % (subject, zone, run))

    def zone(self, rep, zone, kind, run):
        for z in rep["dnsbl"]["zones"]:
            if z["zone"] == zone:
                self.assertIn(kind, z["tests"], "tests of %s for %s\n%s" % (zone, kind, run))
                return z["tests"][kind]
        self.fail("no zone %s\n%s" % (zone, run))

    def rdns(self, rep, ip, run):
        for r in rep.get("rdns", []):
            if r["ip"] == ip:
                return r
        self.fail("no rdns for %s\n%s" % (ip, run))

    def findings(self, rep, fid):
        return [f for f in rep["findings"] if f["id"] == fid]

    def assertFinding(self, rep, fid, run, severity=None, contains=()):
        got = self.findings(rep, fid)
        self.assertTrue(got, "want finding %s, got %s\n%s"
                        % (fid, [f["id"] for f in rep["findings"]], run))
        if severity:
            self.assertEqual(got[0]["severity"], severity, "severity of %s\n%s" % (fid, run))
        for c in contains:
            self.assertTrue(any(c in f["summary"] for f in got),
                            "%s summary should contain %r: %s\n%s"
                            % (fid, c, [f["summary"] for f in got], run))
        return got

    def assertNoFinding(self, rep, fid, run):
        self.assertEqual(self.findings(rep, fid), [], "unexpected %s\n%s" % (fid, run))


# ==================================================================== real NSD

class Lab(ProbeCase):

    @classmethod
    def setUpClass(cls):
        probe_path()
        names = ["bl.test", "rdns.test", "2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa"]
        cls.nsd = mdlab.Nsd({z: mdlab.zone_path(z + ".zone") for z in names}).start()
        cls.resolver = cls.nsd.resolver

    @classmethod
    def tearDownClass(cls):
        cls.nsd.stop()

    # ------------------------------------------------------------ blocklists

    def test_listed_with_code_and_reason(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "192.0.2.10")
        l = self.listing(rep, "192.0.2.10", "bl.test", run)
        self.assertEqual(l["state"], "listed", run)
        self.assertEqual(l["query"], "10.2.0.192.bl.test", run)
        self.assertEqual(l["codes"], ["127.0.0.2"], run)
        self.assertEqual(l["reason"], "192.0.2.10 listed: see https://bl.test/lookup?ip=192.0.2.10",
                         run)
        self.assertFinding(rep, "dnsbl.listed", run, "critical",
                           ("192.0.2.10", "bl.test", "127.0.0.2", "see https://bl.test/lookup"))
        self.assertEqual(rep["status"], "critical", run)
        self.assertEqual(self.zone(rep, "bl.test", "ipv4", run)["state"], "usable", run)

    def test_not_listed_nxdomain(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "192.0.2.11")
        l = self.listing(rep, "192.0.2.11", "bl.test", run)
        self.assertEqual((l["state"], l["lookup"]), ("not_listed", "nxdomain"), run)
        self.assertNotIn("txt", l, "no TXT lookup without a listing\n%s" % run)
        self.assertEqual(rep["findings"], [], run)
        self.assertEqual((rep["status"], run.rc), ("ok", 0), run)

    def test_nodata_is_not_a_listing(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "192.0.2.13")
        l = self.listing(rep, "192.0.2.13", "bl.test", run)
        self.assertEqual((l["state"], l["lookup"]), ("not_listed", "nodata"), run)
        self.assertIn("NODATA", l["detail"], run)
        self.assertIn("not a listing", l["detail"], run)
        self.assertNoFinding(rep, "dnsbl.listed", run)
        self.assertEqual(run.rc, 0, run)

    def test_several_codes_and_a_sanitized_bounded_reason(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "192.0.2.12")
        l = self.listing(rep, "192.0.2.12", "bl.test", run)
        self.assertEqual(l["state"], "listed", run)
        self.assertEqual(l["codes"], ["127.0.0.2", "127.0.0.10"], "every code, in order\n%s" % run)
        reason = l["reason"]
        self.assertTrue(reason.startswith("spam source?bell | xxx"), "control byte replaced\n%s"
                        % run)
        self.assertTrue(all(0x20 <= ord(c) < 0x7f for c in reason), "printable only\n%s" % run)
        self.assertLessEqual(len(reason), 255, "bounded\n%s" % run)
        self.assertTrue(reason.endswith("..."), "a cut reason says so\n%s" % run)
        self.assertFinding(rep, "dnsbl.listed", run, "critical", ("127.0.0.2, 127.0.0.10",))

    def test_ipv6_listed(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "2001:db8::10")
        l = self.listing(rep, "2001:db8::10", "bl.test", run)
        self.assertEqual(l["query"], V6_10 + ".bl.test", "32 reversed nibbles\n%s" % run)
        self.assertEqual((l["state"], l["codes"], l["reason"]),
                         ("listed", ["127.0.0.3"], "2001:db8::10 listed"), run)
        t = self.zone(rep, "bl.test", "ipv6", run)
        self.assertEqual(t["state"], "usable", run)
        self.assertEqual(t["must_list"]["query"], V6_TEST2 + ".bl.test", run)
        self.assertFinding(rep, "dnsbl.listed", run, "critical", ("2001:db8::10",))

    def check_unusable(self, zone, ip, why, words, kind="ipv4"):
        run, rep = self.probe("--no-rdns", "--zone", zone, ip)
        l = self.listing(rep, ip, zone, run)
        self.assertEqual(l["state"], "unusable", run)
        t = self.zone(rep, zone, kind, run)
        self.assertEqual(t["state"], "unusable", run)
        self.assertIn(why, t["why"], run)
        self.assertNoFinding(rep, "dnsbl.listed", run)
        self.assertFinding(rep, "dnsbl.unusable", run, "warning", (zone,) + tuple(words))
        self.assertEqual((rep["status"], run.rc), ("warning", 1), run)
        return run, rep

    def test_wildcard_lists_everything(self):
        run, rep = self.check_unusable("wild.bl.test", "192.0.2.11", "lists_all", ("127.0.0.1",))
        l = self.listing(rep, "192.0.2.11", "wild.bl.test", run)
        self.assertEqual(l["addresses"], ["127.0.0.2"], "the answer is shown\n%s" % run)

    def test_missing_test_point(self):
        # notest.bl.test does list 192.0.2.10: still never a listing
        self.check_unusable("notest.bl.test", "192.0.2.10", "misses_test", ("127.0.0.2",))

    def test_public_resolver_code(self):
        self.check_unusable("pubres.bl.test", "192.0.2.10", "public_resolver",
                            ("127.255.255.254", "public resolver"))

    def test_non_loopback_answer(self):
        self.check_unusable("hijack.bl.test", "192.0.2.11", "not_loopback", ("127.0.0.0/8",))

    def test_ipv4_list_without_ipv6_test_point(self):
        run, rep = self.probe("--no-rdns", "--zone", "v4only.bl.test", "192.0.2.10",
                              "2001:db8::10")
        v4 = self.listing(rep, "192.0.2.10", "v4only.bl.test", run)
        self.assertEqual((v4["state"], v4["codes"]), ("listed", ["127.0.0.4"]), run)
        self.assertEqual(self.zone(rep, "v4only.bl.test", "ipv4", run)["state"], "usable", run)
        t6 = self.zone(rep, "v4only.bl.test", "ipv6", run)
        self.assertEqual((t6["state"], t6["why"]), ("unusable", ["misses_test"]), run)
        self.assertEqual(self.listing(rep, "2001:db8::10", "v4only.bl.test", run)["state"],
                         "unusable", run)
        self.assertFinding(rep, "dnsbl.unusable", run, "warning", ("IPv6", "::ffff:7f00:2"))
        self.assertEqual(rep["status"], "critical", run)

    def test_test_points_asked_once_per_list(self):
        run, rep = self.probe("--no-rdns", "--zone", "bl.test", "--zone", "wild.bl.test",
                              "192.0.2.10", "192.0.2.11", "192.0.2.12")
        for z in ("bl.test", "wild.bl.test"):
            t = self.zone(rep, z, "ipv4", run)
            self.assertEqual(t["must_list"]["query"], "2.0.0.127." + z, run)
            self.assertEqual(t["must_not_list"]["query"], "1.0.0.127." + z, run)
        self.assertEqual(len(rep["dnsbl"]["listings"]), 6, run)

    def test_domain_lists(self):
        run, rep = self.probe("--no-rdns", "--domain", "example.com", "--domain",
                              "news.example.com", "--domain-zone", "dbl.bl.test",
                              "--domain-zone", "dblwild.bl.test")
        l = self.listing(rep, "example.com", "dbl.bl.test", run)
        self.assertEqual((l["state"], l["query"], l["codes"]),
                         ("listed", "example.com.dbl.bl.test", ["127.0.1.2"]), run)
        self.assertEqual(l["reason"], "example.com listed on dbl.bl.test", run)
        self.assertEqual(self.listing(rep, "news.example.com", "dbl.bl.test", run)["state"],
                         "not_listed", run)
        t = self.zone(rep, "dbl.bl.test", "domain", run)
        self.assertEqual((t["state"], t["must_list"]["query"], t["must_not_list"]["query"]),
                         ("usable", "test.dbl.bl.test", "invalid.dbl.bl.test"), run)
        tw = self.zone(rep, "dblwild.bl.test", "domain", run)
        self.assertEqual((tw["state"], tw["why"]), ("unusable", ["lists_all"]), run)
        self.assertFinding(rep, "dnsbl.listed", run, "critical", ("example.com", "dbl.bl.test"))
        self.assertFinding(rep, "dnsbl.unusable", run, "warning", ("dblwild.bl.test", "INVALID"))
        self.assertEqual(len(self.findings(rep, "dnsbl.listed")), 1, run)

    def test_sync_and_async_agree(self):
        args = ["--zone", "bl.test", "--zone", "wild.bl.test", "--helo", "mail.rdns.test",
                "192.0.2.10", "192.0.2.11", "2001:db8::10"]
        run_a, rep_a = self.probe(*args)
        run_s, rep_s = self.probe("--sync", *args)
        self.assertEqual(rep_a, rep_s, "async\n%s\nsync\n%s" % (run_a, run_s))

    def test_per_ip_runs_on_one_resolver(self):
        run, reps = self.probe("--per-ip", "--zone", "bl.test", "192.0.2.10", "192.0.2.11",
                               "2001:db8::10")
        self.assertEqual([r["dnsbl"]["listings"][0]["subject"] for r in reps],
                         ["192.0.2.10", "192.0.2.11", "2001:db8::10"], run)
        self.assertEqual([r["dnsbl"]["listings"][0]["state"] for r in reps],
                         ["listed", "not_listed", "listed"], run)
        self.assertEqual(run.rc, 2, run)

    # ------------------------------------------------------------ reverse DNS, HELO

    def test_forward_confirmed_and_helo(self):
        run, rep = self.probe("--helo", "mail.rdns.test", "192.0.2.10")
        r = self.rdns(rep, "192.0.2.10", run)
        self.assertEqual((r["state"], r["confirmed_name"], r["ptr_query"]),
                         ("confirmed", "mail.rdns.test", "10.2.0.192.in-addr.arpa"), run)
        self.assertEqual(r["helo"]["state"], "ok", run)
        self.assertEqual(rep["findings"], [], run)
        self.assertEqual(run.rc, 0, run)

    def test_ptr_does_not_map_back(self):
        run, rep = self.probe("192.0.2.11")
        r = self.rdns(rep, "192.0.2.11", run)
        self.assertEqual((r["state"], r["confirmed_name"]), ("mismatch", None), run)
        self.assertEqual(r["names"][0]["addresses"], ["192.0.2.99"], run)
        self.assertFinding(rep, "rdns.mismatch", run, "critical", ("192.0.2.11", "other.rdns.test"))
        self.assertNoFinding(rep, "rdns.missing", run)

    def test_no_ptr(self):
        run, rep = self.probe("--helo", "mail-v4.rdns.test", "192.0.2.12")
        r = self.rdns(rep, "192.0.2.12", run)
        self.assertEqual((r["state"], r["ptr"]), ("missing", "nxdomain"), run)
        self.assertEqual(r["helo"]["state"], "resolves", run)
        self.assertFinding(rep, "rdns.missing", run, "critical",
                           ("192.0.2.12", "mail-v4.rdns.test"))
        self.assertNoFinding(rep, "helo.mismatch", run)

    def test_ptr_nodata_is_missing(self):
        run, rep = self.probe("192.0.2.15")
        r = self.rdns(rep, "192.0.2.15", run)
        self.assertEqual((r["state"], r["ptr"]), ("missing", "nodata"), run)
        self.assertFinding(rep, "rdns.missing", run, "critical")

    def test_second_ptr_name_confirms(self):
        run, rep = self.probe("192.0.2.13")
        r = self.rdns(rep, "192.0.2.13", run)
        self.assertEqual([n["name"] for n in r["names"]], ["gone.rdns.test", "mail13.rdns.test"],
                         run)
        self.assertEqual((r["state"], r["confirmed_name"]), ("confirmed", "mail13.rdns.test"), run)
        self.assertEqual(rep["findings"], [], run)

    def test_at_most_ten_ptr_names(self):
        run, rep = self.probe("192.0.2.14")
        r = self.rdns(rep, "192.0.2.14", run)
        self.assertEqual(len(r["names"]), 12, run)
        asked = [n["name"] for n in r["names"] if "lookup" in n]
        self.assertEqual(asked, ["n%02d.rdns.test" % i for i in range(1, 11)], run)
        self.assertEqual([n.get("resolved") for n in r["names"][10:]], [False, False], run)
        self.assertEqual(r["state"], "mismatch", run)
        self.assertFinding(rep, "rdns.mismatch", run, "critical", ("only the first",))

    def test_ipv6_reverse(self):
        run, rep = self.probe("2001:db8::10", "2001:db8::11")
        r = self.rdns(rep, "2001:db8::10", run)
        self.assertEqual((r["state"], r["confirmed_name"], r["ptr_query"]),
                         ("confirmed", "mail6.rdns.test", V6_10 + ".ip6.arpa"), run)
        self.assertEqual(self.rdns(rep, "2001:db8::11", run)["state"], "missing", run)
        self.assertFinding(rep, "rdns.missing", run, "critical", ("2001:db8::11",))

    def test_helo_is_not_the_confirmed_name(self):
        run, rep = self.probe("--helo", "helo-other.rdns.test", "192.0.2.10")
        self.assertEqual(self.rdns(rep, "192.0.2.10", run)["helo"]["state"], "mismatch", run)
        self.assertFinding(rep, "helo.mismatch", run, "warning",
                           ("helo-other.rdns.test", "mail.rdns.test"))
        self.assertEqual((rep["status"], run.rc), ("warning", 1), run)

    def test_helo_does_not_resolve(self):
        run, rep = self.probe("--helo", "nx.rdns.test", "192.0.2.10")
        self.assertFinding(rep, "helo.mismatch", run, "warning",
                           ("nx.rdns.test", "does not resolve", "nxdomain"))

    def test_bad_input_is_a_usage_error(self):
        for args in (["--zone", "bl.test", "192.0.2.300"], ["--zone", "bl..test", "192.0.2.10"],
                     ["--helo", "-x-.test", "192.0.2.10"], ["--zone", "bl.test"],
                     ["--no-rdns", "192.0.2.10"]):
            run, _ = self.probe(*args, want_json=False)
            self.assertEqual(run.rc, 3, run)
            self.assertEqual(run.out, "", run)
            self.assertIn("dnsbl-probe: ", run.err, run)


# ==================================================================== failures

def zone_rules(zone, action):
    """Proper test points, then `action` for everything else under zone."""
    return [("2.0.0.127." + zone, "A", "answer", [("A", "127.0.0.2")]),
            ("1.0.0.127." + zone, "*", "nxdomain"),
            ("." + zone, "*", action)]


RULES = (
    zone_rules("servfail.fail.test", "servfail")
    + zone_rules("refused.fail.test", "refused")
    + zone_rules("hang.fail.test", "hang")
    + zone_rules("garbage.fail.test", "malformed")
    + [
        # every lookup of the list fails, test points included
        (".dead.fail.test", "*", "servfail"),
        (".refusing.fail.test", "*", "refused"),
        # the test points fail, the answers themselves come back
        ("2.0.0.127.tpfail.fail.test", "*", "servfail"),
        ("1.0.0.127.tpfail.fail.test", "*", "servfail"),
        ("10.2.0.192.tpfail.fail.test", "A", "answer", [("A", "127.0.0.2")]),
        # a healthy list, for counting queries
        ("2.0.0.127.good.fail.test", "A", "answer", [("A", "127.0.0.2")]),
        ("10.2.0.192.good.fail.test", "*", "answer",
         [("A", "127.0.0.2"), ("TXT", "scripted reason")]),
        # a reason whose separator falls on the bound: 254 + " | " + 1 bytes
        ("30.2.0.192.good.fail.test", "*", "answer",
         [("A", "127.0.0.2"), ("TXT", "a" * 254), ("TXT", "b")]),
        # reverse DNS failures
        ("20.2.0.192.in-addr.arpa", "*", "servfail"),
        ("21.2.0.192.in-addr.arpa", "*", "refused"),
        ("22.2.0.192.in-addr.arpa", "*", "hang"),
        ("25.2.0.192.in-addr.arpa", "*", "malformed"),
        ("0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "*",
         "servfail"),
        # the PTR answers, the forward lookup of its name fails
        ("23.2.0.192.in-addr.arpa", "PTR", "answer", [("PTR", "fwd.rdns.fail.test")]),
        ("fwd.rdns.fail.test", "*", "servfail"),
        # confirmed, but the HELO name's lookup fails
        ("24.2.0.192.in-addr.arpa", "PTR", "answer", [("PTR", "ok.rdns.fail.test")]),
        ("ok.rdns.fail.test", "A", "answer", [("A", "192.0.2.24")]),
        ("helo.rdns.fail.test", "*", "servfail"),
    ]
)


class Failures(ProbeCase):

    @classmethod
    def setUpClass(cls):
        probe_path()
        cls.sd = mdlab.ScriptedDns(RULES).start()
        cls.resolver = cls.sd.resolver

    @classmethod
    def tearDownClass(cls):
        cls.sd.stop()

    def setUp(self):
        self.sd.clear_log()

    def assertUnknown(self, rep, run):
        self.assertFinding(rep, "dns.temporary", run, "unknown")
        for fid in ("dnsbl.listed", "rdns.missing", "rdns.mismatch", "helo.mismatch"):
            self.assertNoFinding(rep, fid, run)

    def check_listing_unknown(self, zone, timeout=3):
        run, rep = self.probe("--no-rdns", "--zone", zone, "192.0.2.10", "192.0.2.11",
                              timeout=timeout)
        for ip in ("192.0.2.10", "192.0.2.11"):
            l = self.listing(rep, ip, zone, run)
            self.assertEqual(l["state"], "unknown", "never not_listed\n%s" % run)
        self.assertEqual(self.zone(rep, zone, "ipv4", run)["state"], "usable", run)
        self.assertUnknown(rep, run)
        self.assertEqual(len(self.findings(rep, "dns.temporary")), 2, run)
        self.assertEqual((rep["status"], run.rc), ("unknown", 3), run)
        return run, rep

    def test_list_servfail(self):
        self.check_listing_unknown("servfail.fail.test")

    def test_list_refused(self):
        self.check_listing_unknown("refused.fail.test")

    def test_list_timeout(self):
        run, _ = self.check_listing_unknown("hang.fail.test", timeout=1)
        self.assertLess(run.elapsed, 4.0, "took %.2f s with --timeout 1\n%s" % (run.elapsed, run))

    def test_list_bad_reply(self):
        self.check_listing_unknown("garbage.fail.test")

    def test_whole_list_servfail(self):
        run, rep = self.probe("--no-rdns", "--zone", "dead.fail.test", "192.0.2.10")
        self.assertEqual(self.zone(rep, "dead.fail.test", "ipv4", run)["state"], "unknown", run)
        self.assertEqual(self.listing(rep, "192.0.2.10", "dead.fail.test", run)["state"],
                         "unknown", run)
        self.assertUnknown(rep, run)
        self.assertFinding(rep, "dns.temporary", run, "unknown", ("test point",))
        self.assertNoFinding(rep, "dnsbl.unusable", run)
        self.assertEqual(run.rc, 3, run)

    def test_whole_list_refused(self):
        # REFUSED to the test points: the list refuses us (unusable); the
        # subject's own lookup failed too, so its state stays unknown
        run, rep = self.probe("--no-rdns", "--zone", "refusing.fail.test", "192.0.2.10")
        t = self.zone(rep, "refusing.fail.test", "ipv4", run)
        self.assertEqual((t["state"], t["why"]), ("unusable", ["refused"]), run)
        self.assertEqual(self.listing(rep, "192.0.2.10", "refusing.fail.test", run)["state"],
                         "unknown", run)
        self.assertFinding(rep, "dnsbl.unusable", run, "warning", ("refuses",))
        self.assertUnknown(rep, run)

    def test_test_points_failed(self):
        # 192.0.2.10 answers 127.0.0.2, 192.0.2.11 NXDOMAIN; neither counts
        # while the list's own test points cannot be checked
        run, rep = self.probe("--no-rdns", "--zone", "tpfail.fail.test", "192.0.2.10",
                              "192.0.2.11")
        self.assertEqual(self.zone(rep, "tpfail.fail.test", "ipv4", run)["state"], "unknown", run)
        for ip in ("192.0.2.10", "192.0.2.11"):
            self.assertEqual(self.listing(rep, ip, "tpfail.fail.test", run)["state"], "unknown",
                             run)
        self.assertUnknown(rep, run)
        self.assertFinding(rep, "dns.temporary", run, "unknown",
                           ("tpfail.fail.test", "192.0.2.10, 192.0.2.11"))
        self.assertEqual(run.rc, 3, run)

    def test_test_points_queried_once_per_list(self):
        ips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        run, rep = self.probe("--no-rdns", "--stats", "--zone", "good.fail.test", *ips)
        self.assertEqual(self.listing(rep, "192.0.2.10", "good.fail.test", run)["reason"],
                         "scripted reason", run)
        for name in ("2.0.0.127.good.fail.test", "1.0.0.127.good.fail.test"):
            self.assertEqual(len(self.sd.queries(name=name, qtype="A")), 1,
                             "%s asked once for 3 IPs\n%s" % (name, run))
        stats = json.loads(run.err.strip().splitlines()[-1])
        # 2 test points + 3 listings + 1 TXT for the one listed
        self.assertEqual(stats["queries"], 6, "%s\n%s" % (stats, run))

    def test_reason_cut_on_the_separator(self):
        run, rep = self.probe("--no-rdns", "--zone", "good.fail.test", "192.0.2.30")
        l = self.listing(rep, "192.0.2.30", "good.fail.test", run)
        self.assertEqual(l["state"], "listed", run)
        self.assertEqual(l["reason"], "a" * 252 + "...", "cut to 255 bytes, marked\n%s" % run)

    def test_per_ip_runs_share_one_resolver(self):
        ips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        run, reps = self.probe("--per-ip", "--no-rdns", "--stats", "--zone", "good.fail.test",
                               *ips)
        self.assertEqual(len(reps), 3, run)
        self.assertEqual([r["dnsbl"]["listings"][0]["state"] for r in reps],
                         ["listed", "not_listed", "not_listed"], run)
        # each run asks its test points; lib/dns merges them into one query each
        self.assertEqual(len(self.sd.queries(name="2.0.0.127.good.fail.test", qtype="A")), 1, run)
        stats = json.loads(run.err.strip().splitlines()[-1])
        self.assertEqual((stats["queries"], stats["sent"]), (10, 6), "%s\n%s" % (stats, run))

    def check_rdns_unknown(self, ip, *extra, timeout=3):
        run, rep = self.probe(*extra, ip, timeout=timeout)
        r = self.rdns(rep, ip, run)
        self.assertEqual(r["state"], "unknown", run)
        self.assertUnknown(rep, run)
        self.assertEqual((rep["status"], run.rc), ("unknown", 3), run)
        return run, rep

    def test_ptr_servfail(self):
        self.check_rdns_unknown("192.0.2.20")

    def test_ptr_refused(self):
        self.check_rdns_unknown("192.0.2.21")

    def test_ptr_timeout(self):
        run, _ = self.check_rdns_unknown("192.0.2.22", timeout=1)
        self.assertLess(run.elapsed, 4.0, "took %.2f s with --timeout 1\n%s" % (run.elapsed, run))

    def test_ptr_bad_reply(self):
        self.check_rdns_unknown("192.0.2.25")

    def test_ip6_ptr_servfail(self):
        self.check_rdns_unknown("2001:db8::20")

    def test_forward_lookup_servfail(self):
        run, rep = self.check_rdns_unknown("192.0.2.23")
        self.assertEqual(self.rdns(rep, "192.0.2.23", run)["names"][0]["lookup"], "servfail", run)

    def test_helo_lookup_servfail(self):
        run, rep = self.probe("--helo", "helo.rdns.fail.test", "192.0.2.24")
        r = self.rdns(rep, "192.0.2.24", run)
        self.assertEqual((r["state"], r["helo"]["state"]), ("confirmed", "unknown"), run)
        self.assertUnknown(rep, run)
        self.assertFinding(rep, "dns.temporary", run, "unknown", ("helo.rdns.fail.test",))

    def test_dead_resolver(self):
        dead = "127.0.0.1:%d" % mdlab.free_port()
        argv = [probe_path(), "--resolver", dead, "--timeout", "1", "--zone", "bl.test",
                "192.0.2.10"]
        run = mdlab.run_tool(argv, timeout=30)
        rep = mdlab.json_results(run)[0]
        self.assertEqual(self.listing(rep, "192.0.2.10", "bl.test", run)["state"], "unknown", run)
        self.assertEqual(self.rdns(rep, "192.0.2.10", run)["state"], "unknown", run)
        self.assertUnknown(rep, run)
        self.assertEqual(run.rc, 3, run)


# ==================================================================== valgrind

class Valgrind(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = mdlab.valgrind_skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.bin = real_probe()
        names = ["bl.test", "rdns.test", "2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa"]
        cls.nsd = mdlab.Nsd({z: mdlab.zone_path(z + ".zone") for z in names}).start()
        cls.sd = mdlab.ScriptedDns(RULES).start()

    @classmethod
    def tearDownClass(cls):
        cls.nsd.stop()
        cls.sd.stop()

    def check(self, argv, want_rc):
        rc, out, err = mdlab.valgrind_run([self.bin] + argv)
        self.assertNotEqual(rc, 99, "valgrind found errors:\n" + err)
        self.assertEqual(rc, want_rc, "exit code\nstdout:\n%s\nstderr:\n%s" % (out, err))

    def test_lab(self):
        zones = []
        for z in ("bl.test", "wild.bl.test", "notest.bl.test", "pubres.bl.test",
                  "hijack.bl.test", "v4only.bl.test"):
            zones += ["--zone", z]
        self.check(["--resolver", self.nsd.resolver, "--timeout", "3", "--helo", "mail.rdns.test",
                    "--domain", "example.com", "--domain-zone", "dbl.bl.test",
                    "--domain-zone", "dblwild.bl.test"] + zones
                   + ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14",
                      "192.0.2.15", "2001:db8::10", "2001:db8::11"], 2)
        self.check(["--resolver", self.nsd.resolver, "--sync", "--per-ip", "--text",
                    "--zone", "bl.test", "192.0.2.10", "192.0.2.11"], 2)

    def test_failures(self):
        zones = []
        for z in ("servfail.fail.test", "refused.fail.test", "hang.fail.test",
                  "garbage.fail.test", "dead.fail.test", "refusing.fail.test",
                  "tpfail.fail.test"):
            zones += ["--zone", z]
        self.check(["--resolver", self.sd.resolver, "--timeout", "1",
                    "--helo", "helo.rdns.fail.test"] + zones
                   + ["192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23", "192.0.2.24",
                      "192.0.2.25", "2001:db8::20"], 1)

    def test_usage_error(self):
        self.check(["--resolver", self.nsd.resolver, "--zone", "bl.test", "192.0.2.300"], 3)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
