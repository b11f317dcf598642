#!/usr/bin/env python3
"""maildiag-mx against a scripted DNS responder (tests/lab/dnsscript.py) on 127.0.0.1
for what real servers never do: SERVFAIL, REFUSED, silence, malformed and truncated
replies.  Temporary failures must give dns.temporary / unknown / exit 3, never a
fallback to the domain's A/AAAA (RFC 5321 5.1 allows that only when there is no MX).

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
from mxtest import MxTestCase  # noqa: E402

# bait: the domain itself has addresses, so a wrong fallback to A/AAAA would "work"
BAIT = [("A", "192.0.2.60"), ("AAAA", "2001:db8::60")]


def temp_fail(name, action):
    return [(name, "MX", action), (name, "*", "answer", BAIT)]


RULES = (
    temp_fail("servfail.fail.test", "servfail")
    + temp_fail("refused.fail.test", "refused")
    + temp_fail("hang.fail.test", "hang")
    + temp_fail("malformed.fail.test", "malformed")
    + [
        # complete only over TCP
        ("tc.fail.test", "MX", "truncate", [("MX", 10, "mx.tc.fail.test"),
                                            ("MX", 20, "mx2.tc.fail.test")]),
        ("mx.tc.fail.test", "*", "answer", [("A", "192.0.2.51"), ("AAAA", "2001:db8::51")]),
        ("mx2.tc.fail.test", "*", "answer", [("A", "192.0.2.52")]),
        # the MX answer is fine, the MX host's address lookups fail temporarily
        ("hostfail.fail.test", "MX", "answer", [("MX", 10, "mx.hostfail.fail.test")]),
        ("mx.hostfail.fail.test", "*", "servfail"),
        # the MX host's address lookups never get an answer
        ("hosthang.fail.test", "MX", "answer", [("MX", 10, "mx.hosthang.fail.test")]),
        ("mx.hosthang.fail.test", "*", "hang"),
        # one good MX host, the other one's address lookups fail temporarily
        ("halfbad.fail.test", "MX", "answer", [("MX", 10, "mx.good.fail.test"),
                                               ("MX", 20, "mx.hostfail.fail.test")]),
        # 20 MX records: too long for 512 bytes of UDP, so the answer needs TCP
        ("big.fail.test", "MX", "answer",
         [("MX", (i * 7) % 20 * 5, "mail-exchanger-%02d.big.fail.test" % i) for i in range(20)]),
        (".big.fail.test", "A", "answer", [("A", "192.0.2.70")]),
        (".big.fail.test", "AAAA", "nodata"),
        # a healthy domain
        ("good.fail.test", "MX", "answer", [("MX", 10, "mx.good.fail.test")]),
        ("mx.good.fail.test", "*", "answer", [("A", "192.0.2.61"), ("AAAA", "2001:db8::61")]),
        # permanent: NXDOMAIN stays critical, never temporary
        ("nx.fail.test", "*", "nxdomain"),
    ]
)

SD = None


def setUpModule():
    global SD
    mdlab.tool_path("maildiag-mx")
    SD = mdlab.ScriptedDns(RULES).start()
    MxTestCase.resolver = SD.resolver


def tearDownModule():
    if SD:
        SD.stop()


class MxFailures(MxTestCase):

    def setUp(self):
        SD.clear_log()

    def log_text(self):
        return "responder log: %r" % (SD.log,)

    def assertNoFallback(self, domain, run):
        for t in ("A", "AAAA"):
            self.assertEqual(SD.queries(name=domain, qtype=t), [],
                             "fallback to %s for %s after a temporary MX failure: got %s "
                             "queries, want none\n%s\n%s"
                             % (t, domain, t, run, self.log_text()))

    def check_temporary(self, domain, timeout=2, max_seconds=None):
        run = self.mx(domain, timeout=timeout)
        o = self.by_input(run, [domain])[domain]
        self.assertStatus(o, "unknown", run)
        self.assertFinding(o, "dns.temporary", run, "unknown")
        for fid in ("domain.nxdomain", "mx.none", "mx.implicit", "mx.null"):
            self.assertNoFinding(o, fid, run)
        self.assertRc(run, 3)
        self.assertTrue(SD.queries(name=domain, qtype="MX"),
                        "the responder saw no MX query for %s\n%s" % (domain, self.log_text()))
        self.assertNoFallback(domain, run)
        if max_seconds is not None:
            self.assertLess(run.elapsed, max_seconds, "took %.2f s, want < %s s\n%s"
                            % (run.elapsed, max_seconds, run))
        return o, run

    def test_servfail(self):
        self.check_temporary("servfail.fail.test")

    def test_refused(self):
        self.check_temporary("refused.fail.test")

    def test_malformed(self):
        self.check_temporary("malformed.fail.test")

    def test_hang_timeout(self):
        self.check_temporary("hang.fail.test", timeout=1, max_seconds=3.0)

    def test_servfail_text_mode(self):
        run = self.mx("servfail.fail.test", json=False)
        self.assertRc(run, 3)
        self.assertTextDomain(run, "servfail.fail.test", "unknown", "dns.temporary")

    def test_truncated_udp_retried_over_tcp(self):
        run = self.mx("tc.fail.test")
        o = self.by_input(run, ["tc.fail.test"])["tc.fail.test"]
        self.assertHealthy(o, run)
        self.assertRc(run, 0)
        self.assertTrue(SD.queries(name="tc.fail.test", qtype="MX", transport="tcp"),
                        "no MX query over TCP after TC=1\n%s\n%s" % (run, self.log_text()))
        hosts = [(m["host"].rstrip(".").lower(), m["preference"], sorted(m["addresses"]))
                 for m in o["mx"]]
        self.assertEqual(hosts, [("mx.tc.fail.test", 10, ["192.0.2.51", "2001:db8::51"]),
                                 ("mx2.tc.fail.test", 20, ["192.0.2.52"])],
                         "mx list from the TCP answer\n%s" % run)

    def test_big_mx_set_over_tcp(self):
        run = self.mx("big.fail.test")
        o = self.by_input(run, ["big.fail.test"])["big.fail.test"]
        self.assertHealthy(o, run)
        self.assertRc(run, 0)
        self.assertTrue(SD.queries(name="big.fail.test", qtype="MX", transport="tcp"),
                        "no MX query over TCP\n%s" % self.log_text())
        want = sorted(((i * 7) % 20 * 5, "mail-exchanger-%02d.big.fail.test" % i)
                      for i in range(20))
        self.assertEqual([(m["preference"], m["host"].rstrip(".").lower()) for m in o["mx"]],
                         want, "all 20 MX records, sorted by preference\n%s" % run)
        for m in o["mx"]:
            self.assertEqual(m["addresses"], ["192.0.2.70"], "addresses\n%s" % run)

    def test_mx_host_address_servfail(self):
        run = self.mx("hostfail.fail.test")
        o = self.by_input(run, ["hostfail.fail.test"])["hostfail.fail.test"]
        self.assertFinding(o, "dns.temporary", run, "unknown")
        # temporary is not permanent: no "unresolvable" verdict from a SERVFAIL
        self.assertStatus(o, "unknown", run)
        self.assertNoFinding(o, "mx.target_unresolvable", run)
        self.assertRc(run, 3)
        self.assertTrue(SD.queries(name="mx.hostfail.fail.test"),
                        "no address query for the MX host\n%s" % self.log_text())

    def test_mx_host_address_hang(self):
        run = self.mx("hosthang.fail.test", timeout=1)
        o = self.by_input(run, ["hosthang.fail.test"])["hosthang.fail.test"]
        self.assertFinding(o, "dns.temporary", run, "unknown")
        self.assertStatus(o, "unknown", run)
        self.assertNoFinding(o, "mx.target_unresolvable", run)
        self.assertRc(run, 3)
        self.assertLess(run.elapsed, 3.0, "took %.2f s with --timeout 1\n%s"
                        % (run.elapsed, run))

    def test_one_mx_host_temporary_other_fine(self):
        run = self.mx("halfbad.fail.test")
        o = self.by_input(run, ["halfbad.fail.test"])["halfbad.fail.test"]
        self.assertFinding(o, "dns.temporary", run, "unknown")
        # a SERVFAIL is no proof that the host has no address
        self.assertNoFinding(o, "mx.target_unresolvable", run)
        self.assertNotIn(o["status"], ("critical",), "status\n%s" % run)
        self.assertEqual(run.rc, {"ok": 0, "warning": 1, "unknown": 3}[o["status"]],
                         "exit code follows the status\n%s" % run)
        hosts = {m["host"].rstrip(".").lower(): m for m in o.get("mx", [])}
        self.assertEqual(hosts.get("mx.good.fail.test", {}).get("addresses"),
                         ["192.0.2.61", "2001:db8::61"], "the good host's addresses\n%s" % run)

    def test_nxdomain_is_permanent(self):
        run = self.mx("nx.fail.test")
        o = self.by_input(run, ["nx.fail.test"])["nx.fail.test"]
        self.assertStatus(o, "critical", run)
        self.assertFinding(o, "domain.nxdomain", run)
        self.assertNoFinding(o, "dns.temporary", run)
        self.assertRc(run, 2)

    def test_hang_does_not_block_others(self):
        domains = ["hang.fail.test", "good.fail.test", "servfail.fail.test"]
        run = self.mx(*domains, timeout=1)
        got = self.by_input(run, domains)
        self.assertHealthy(got["good.fail.test"], run)
        self.assertFinding(got["hang.fail.test"], "dns.temporary", run)
        self.assertFinding(got["servfail.fail.test"], "dns.temporary", run)
        self.assertRc(run, 3)
        self.assertLess(run.elapsed, 3.0, "took %.2f s with --timeout 1\n%s"
                        % (run.elapsed, run))
        self.assertNoFallback("hang.fail.test", run)
        self.assertNoFallback("servfail.fail.test", run)

    def test_hang_concurrent_budget(self):
        # the budget is per query, not per domain in sequence: 20 silent domains
        # with --timeout 1 finish in about 1 s, not 20 s
        domains = ["hang.fail.test"] + ["x%d.hang.fail.test" % i for i in range(19)]
        SD.add_rule(".hang.fail.test", "*", "hang")
        run = self.mx(*domains, timeout=1)
        got = self.by_input(run, domains)
        for d in domains:
            self.assertFinding(got[d], "dns.temporary", run)
        self.assertRc(run, 3)
        self.assertLess(run.elapsed, 4.0, "took %.2f s\n%s" % (run.elapsed, run))


class MxResolvers(MxTestCase):

    def setUp(self):
        SD.clear_log()

    def test_dead_resolver_is_temporary(self):
        dead = "127.0.0.1:%d" % mdlab.free_port()  # nothing listens there
        run = self.mx("--resolver", dead, "good.fail.test", resolver=False, timeout=1)
        o = self.by_input(run, ["good.fail.test"])["good.fail.test"]
        self.assertStatus(o, "unknown", run)
        self.assertFinding(o, "dns.temporary", run, "unknown")
        self.assertRc(run, 3)
        self.assertLess(run.elapsed, 3.0, "took %.2f s\n%s" % (run.elapsed, run))

    def test_second_resolver_used(self):
        dead = "127.0.0.1:%d" % mdlab.free_port()
        run = self.mx("--resolver", dead, "--resolver", SD.resolver, "good.fail.test",
                      resolver=False, timeout=2)
        o = self.by_input(run, ["good.fail.test"])["good.fail.test"]
        self.assertHealthy(o, run)
        self.assertRc(run, 0)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
