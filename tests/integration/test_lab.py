#!/usr/bin/env python3
"""Self-check of the DNS test lab (tests/lab): NSD serving the fixture zones answers
what each maildiag-mx case needs, and the scripted responder does what its rules say.
Uses the lab's own DNS parser (no dig).  Exit 0 pass, 1 fail, 77 skip.
"""

import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import dnsscript  # noqa: E402
import mdlab  # noqa: E402

ZONES = {"mx.test": mdlab.zone_path("mx.test.zone"),
         "xn--bcher-kva.test": mdlab.zone_path("xn--bcher-kva.test.zone")}


def rrs(res, section="answer", rtype=None):
    return [(n.lower(), t, d) for n, t, _ttl, d in res[section] if rtype is None or t == rtype]


class Parser(unittest.TestCase):

    def test_roundtrip_query(self):
        q = mdlab.build_query("Ok.MX.test", "MX", qid=1234)
        r = mdlab.parse_message(q)
        self.assertEqual((r["id"], r["qr"], r["rd"], r["question"]),
                         (1234, False, True, [("Ok.MX.test", "MX")]))

    def test_compression_loop_rejected(self):
        msg = struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
        with self.assertRaises(ValueError):
            mdlab.parse_message(msg)

    def test_free_port(self):
        p = mdlab.free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", p))
            t.bind(("127.0.0.1", p))
        finally:
            u.close()
            t.close()


class NsdLab(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-lab-")
        cls.ns = mdlab.Nsd(ZONES, workdir=cls.tmp).start()

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()
        os.rmdir(cls.tmp)

    def q(self, name, qtype, **kw):
        return self.ns.query(name, qtype, **kw)

    def test_resolver_string(self):
        self.assertEqual(self.ns.resolver, "127.0.0.1:%d" % self.ns.port)

    def test_soa_every_zone_udp_and_tcp(self):
        for origin in ZONES:
            for tcp in (False, True):
                r = self.q(origin, "SOA", tcp=tcp)
                self.assertEqual(r["rcode_name"], "NOERROR")
                self.assertTrue(r["aa"])
                self.assertEqual(len(rrs(r, rtype="SOA")), 1, r)

    def test_ok(self):
        r = self.q("ok.mx.test", "MX")
        self.assertEqual(sorted(d for _, _, d in rrs(r)),
                         [(10, "mx1.ok.mx.test"), (20, "mx2.ok.mx.test")])
        for h, a, aaaa in (("mx1", "192.0.2.10", "2001:db8::10"),
                           ("mx2", "192.0.2.11", "2001:db8::11")):
            self.assertEqual([d for _, _, d in rrs(self.q(h + ".ok.mx.test", "A"))], [a])
            self.assertEqual([d for _, _, d in rrs(self.q(h + ".ok.mx.test", "AAAA"))], [aaaa])

    def test_nullmx(self):
        self.assertEqual([d for _, _, d in rrs(self.q("nullmx.mx.test", "MX"))], [(0, "")])

    def test_implicit(self):
        r = self.q("implicit.mx.test", "MX")
        self.assertEqual((r["rcode_name"], r["answer"]), ("NOERROR", []))
        self.assertEqual([d for _, _, d in rrs(self.q("implicit.mx.test", "A"))],
                         ["192.0.2.20"])

    def test_none(self):
        for t in ("MX", "A", "AAAA"):
            r = self.q("none.mx.test", t)
            self.assertEqual((r["rcode_name"], r["answer"]), ("NOERROR", []), t)
        self.assertEqual(len(rrs(self.q("none.mx.test", "TXT"))), 1)

    def test_nxdomain(self):
        for name in ("nxdomain.mx.test", "mx2.partial.mx.test", "gone.unresolvable-nx.mx.test"):
            r = self.q(name, "MX")
            self.assertEqual(r["rcode_name"], "NXDOMAIN", name)
            self.assertTrue(r["aa"])
            self.assertEqual(len(rrs(r, "authority", "SOA")), 1)

    def test_cname_target(self):
        self.assertEqual([d for _, _, d in rrs(self.q("cname-target.mx.test", "MX"))],
                         [(10, "alias.cname-target.mx.test")])
        r = self.q("alias.cname-target.mx.test", "A")
        self.assertEqual(rrs(r), [("alias.cname-target.mx.test", "CNAME",
                                   "real.cname-target.mx.test"),
                                  ("real.cname-target.mx.test", "A", "192.0.2.30")])

    def test_ip_literal(self):
        self.assertEqual([d for _, _, d in rrs(self.q("ip-literal.mx.test", "MX"))],
                         [(10, "192.0.2.25")])
        self.assertEqual(sorted(d for _, _, d in rrs(self.q("ip-literal-mixed.mx.test", "MX"))),
                         [(10, "192.0.2.26"), (20, "mx.ip-literal-mixed.mx.test")])

    def test_partial(self):
        self.assertEqual(sorted(d for _, _, d in rrs(self.q("partial.mx.test", "MX"))),
                         [(10, "mx1.partial.mx.test"), (20, "mx2.partial.mx.test")])
        self.assertEqual([d for _, _, d in rrs(self.q("mx1.partial.mx.test", "A"))],
                         ["192.0.2.31"])

    def test_unresolvable_nodata(self):
        for t in ("A", "AAAA"):
            r = self.q("host.unresolvable.mx.test", t)
            self.assertEqual((r["rcode_name"], r["answer"]), ("NOERROR", []))

    def test_sorted_zone_order(self):
        # the fixture relies on NSD sending the zone-file order (30, 10, 20)
        r = self.q("sorted.mx.test", "MX")
        self.assertEqual([d[0] for _, _, d in rrs(r)], [30, 10, 20])

    def test_idn(self):
        self.assertEqual("bücher.test".encode("idna"), b"xn--bcher-kva.test")
        self.assertEqual([d for _, _, d in rrs(self.q("xn--bcher-kva.test", "MX"))],
                         [(10, "mail.xn--bcher-kva.test")])
        self.assertEqual([d for _, _, d in rrs(self.q("mail.xn--bcher-kva.test", "A"))],
                         ["192.0.2.40"])

    def test_out_of_zone_refused(self):
        self.assertEqual(self.q("example.invalid", "A")["rcode_name"], "REFUSED")

    def test_no_rate_limit(self):
        # 600 queries from one client: NSD's default RRL (~200/s per /24) would drop some
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # room for 600 replies
        s.connect(("127.0.0.1", self.ns.port))
        n = 600
        for i in range(n):
            s.send(mdlab.build_query("ok.mx.test", "MX", qid=i))
        got = set()
        deadline = time.monotonic() + 3
        while len(got) < n and time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.2)
            if r:
                msg = s.recv(4096)
                res = mdlab.parse_message(msg)
                if not res["tc"] and res["answer"]:
                    got.add(res["id"])
        s.close()
        self.assertEqual(len(got), n)


class NsdLifecycle(unittest.TestCase):

    def test_stop_kills_and_cleans(self):
        tmp = tempfile.mkdtemp(prefix="mdtest-lab-")
        try:
            with mdlab.Nsd({"mx.test": ZONES["mx.test"]}, workdir=tmp) as ns:
                pid, d, port = ns.proc.pid, ns.dir, ns.port
                self.assertTrue(os.path.isdir(d))
            self.assertFalse(os.path.exists(d), "temp dir left behind")
            self.assertEqual(mdlab._live_group_members(pid), [], "nsd processes left")
            with self.assertRaises(OSError):
                os.kill(pid, 0)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", port))  # the port is free again
            s.close()
        finally:
            os.rmdir(tmp)

    def test_port_taken_retry(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        busy.bind(("127.0.0.1", 0))
        busy_port = busy.getsockname()[1]
        ports = [busy_port]
        real = mdlab.free_port
        mdlab.free_port = lambda: ports.pop(0) if ports else real()
        try:
            with mdlab.Nsd({"mx.test": ZONES["mx.test"]}) as ns:
                self.assertNotEqual(ns.port, busy_port)
                self.assertEqual(ns.query("ok.mx.test", "MX")["rcode_name"], "NOERROR")
        finally:
            mdlab.free_port = real
            busy.close()

    def test_bad_zone_is_an_error(self):
        tmp = tempfile.mkdtemp(prefix="mdtest-lab-")
        bad = os.path.join(tmp, "bad.zone")
        with open(bad, "w") as f:
            f.write("$ORIGIN bad.test.\n@ IN SOA ns. h. 1 2 3 4 5\n@ IN MX notanumber x.\n")
        ns = mdlab.Nsd({"bad.test": bad}, workdir=tmp)
        ns.START_TIMEOUT = 1.0
        try:
            with self.assertRaises(mdlab.LabError) as cm:
                ns.start()
            self.assertIn("bad.test", str(cm.exception))
            self.assertIsNone(ns.proc)
            self.assertIsNone(ns.dir)
        finally:
            os.unlink(bad)
            os.rmdir(tmp)


class Scripted(unittest.TestCase):

    RULES = [
        ("servfail.s.test", "MX", "servfail"),
        ("servfail.s.test", "*", "answer", [("A", "192.0.2.1")]),
        ("refused.s.test", "*", "refused"),
        ("hang.s.test", "*", "hang"),
        ("tc.s.test", "MX", "truncate", [("MX", 10, "mx.tc.s.test")]),
        ("mal.s.test", "MX", "malformed"),
        ("nx.s.test", "*", "nxdomain"),
        ("nodata.s.test", "*", "nodata"),
        ("all.s.test", "*", "answer", [("MX", 5, "mx.all.s.test"), ("A", "192.0.2.2"),
                                       ("AAAA", "2001:db8::2"), ("TXT", "hello", "world")]),
        ("cn.s.test", "*", "answer", [("CNAME", "t.s.test"), ("t.s.test", "A", "192.0.2.3")]),
        (".suffix.s.test", "A", "answer", [("A", "192.0.2.4")]),
        ("*.wild.s.test", "*", "servfail"),
        ("big.s.test", "MX", "answer", [("MX", i, "host-number-%d.big.s.test" % i)
                                        for i in range(40)]),
    ]

    @classmethod
    def setUpClass(cls):
        cls.sd = mdlab.ScriptedDns(cls.RULES).start()

    @classmethod
    def tearDownClass(cls):
        cls.sd.stop()

    def setUp(self):
        self.sd.clear_log()

    def q(self, name, qtype, **kw):
        return self.sd.query(name, qtype, **kw)

    def test_rcodes(self):
        for name, qtype, want in (("servfail.s.test", "MX", "SERVFAIL"),
                                  ("refused.s.test", "A", "REFUSED"),
                                  ("nx.s.test", "MX", "NXDOMAIN"),
                                  ("nodata.s.test", "MX", "NOERROR"),
                                  ("unknown.s.test", "MX", "NXDOMAIN"),
                                  ("x.wild.s.test", "A", "SERVFAIL"),
                                  ("wild.s.test", "A", "NXDOMAIN")):
            for tcp in (False, True):
                r = self.q(name, qtype, tcp=tcp)
                self.assertEqual(r["rcode_name"], want, (name, qtype, tcp))
                self.assertTrue(r["qr"])
                self.assertEqual(r["answer"], [])

    def test_first_matching_rule_wins_by_type(self):
        self.assertEqual(self.q("servfail.s.test", "MX")["rcode_name"], "SERVFAIL")
        r = self.q("servfail.s.test", "A")
        self.assertEqual(rrs(r), [("servfail.s.test", "A", "192.0.2.1")])

    def test_answer_filters_by_type(self):
        self.assertEqual(rrs(self.q("all.s.test", "MX")), [("all.s.test", "MX",
                                                              (5, "mx.all.s.test"))])
        self.assertEqual(rrs(self.q("all.s.test", "AAAA")), [("all.s.test", "AAAA",
                                                                "2001:db8::2")])
        self.assertEqual(rrs(self.q("all.s.test", "TXT")), [("all.s.test", "TXT",
                                                               ("hello", "world"))])
        self.assertEqual(len(self.q("all.s.test", "ANY")["answer"]), 4)

    def test_cname_chain(self):
        self.assertEqual(rrs(self.q("cn.s.test", "A")), [("cn.s.test", "CNAME", "t.s.test"),
                                                         ("t.s.test", "A", "192.0.2.3")])

    def test_suffix(self):
        for name in ("suffix.s.test", "a.b.suffix.s.test"):
            self.assertEqual(rrs(self.q(name, "A")), [(name, "A", "192.0.2.4")])
        self.assertEqual(self.q("xsuffix.s.test", "A")["rcode_name"], "NXDOMAIN")

    def test_question_echoed_exactly(self):
        r = self.q("SerVFail.S.Test", "MX")
        q = mdlab.build_query("SerVFail.S.Test", "MX")
        self.assertEqual(r["raw"][12:12 + len(q) - 12], q[12:])
        self.assertEqual(r["question"], [("SerVFail.S.Test", "MX")])

    def test_truncate(self):
        r = self.q("tc.s.test", "MX")
        self.assertTrue(r["tc"])
        self.assertEqual((r["answer"], r["authority"], r["additional"]), ([], [], []))
        r = self.q("tc.s.test", "MX", tcp=True)
        self.assertFalse(r["tc"])
        self.assertEqual(rrs(r), [("tc.s.test", "MX", (10, "mx.tc.s.test"))])
        self.assertEqual([e["transport"] for e in self.sd.queries(name="tc.s.test")],
                         ["udp", "tcp"])

    def test_udp_512_limit(self):
        r = self.q("big.s.test", "MX")
        self.assertTrue(r["tc"])
        self.assertEqual(r["answer"], [])
        self.assertLessEqual(len(r["raw"]), 512)
        r = self.q("big.s.test", "MX", tcp=True)
        self.assertFalse(r["tc"])
        self.assertEqual(len(r["answer"]), 40)
        self.assertGreater(len(r["raw"]), 512)

    def test_malformed(self):
        for tcp in (False, True):
            qid = 4321
            msg = mdlab.build_query("mal.s.test", "MX", qid=qid)
            raw = self._raw(msg, tcp)
            qid_got, flags, qd, an = struct.unpack("!HHHH", raw[:8])
            self.assertEqual((qid_got, bool(flags & 0x8000), qd, an), (qid, True, 1, 1))
            with self.assertRaises(ValueError):
                mdlab.parse_message(raw)

    def _raw(self, msg, tcp):
        if tcp:
            with socket.create_connection(("127.0.0.1", self.sd.port), timeout=2) as s:
                s.sendall(struct.pack("!H", len(msg)) + msg)
                n = struct.unpack("!H", mdlab._recv_exact(s, 2))[0]
                return mdlab._recv_exact(s, n)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(msg, ("127.0.0.1", self.sd.port))
            return s.recv(65535)

    def test_hang(self):
        for tcp in (False, True):
            t0 = time.monotonic()
            with self.assertRaises(socket.timeout):
                self.q("hang.s.test", "A", tcp=tcp, timeout=0.5)
            self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual([e["transport"] for e in self.sd.queries(name="hang.s.test")],
                         ["udp", "tcp"])

    def test_tcp_several_queries_one_connection(self):
        with socket.create_connection(("127.0.0.1", self.sd.port), timeout=2) as s:
            for i, name in enumerate(("all.s.test", "nx.s.test", "all.s.test")):
                msg = mdlab.build_query(name, "A", qid=100 + i)
                s.sendall(struct.pack("!H", len(msg)) + msg)
                n = struct.unpack("!H", mdlab._recv_exact(s, 2))[0]
                self.assertEqual(mdlab.parse_message(mdlab._recv_exact(s, n))["id"], 100 + i)

    def test_log(self):
        self.q("all.s.test", "AAAA")
        self.q("All.S.Test", "MX", tcp=True)
        self.assertEqual(self.sd.log, [
            {"name": "all.s.test", "type": "AAAA", "transport": "udp"},
            {"name": "All.S.Test", "type": "MX", "transport": "tcp"}])
        self.assertEqual(len(self.sd.queries(name="ALL.s.test.")), 2)
        self.assertEqual(len(self.sd.queries(name="all.s.test", qtype="mx")), 1)
        self.assertEqual(len(self.sd.queries(transport="tcp")), 1)

    def test_garbage_query_survives(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            s.sendto(b"\x12\x34\x00", ("127.0.0.1", self.sd.port))
            s.recv(512)  # FORMERR
        self.assertEqual(self.q("nx.s.test", "A")["rcode_name"], "NXDOMAIN")

    def test_only_loopback(self):
        with self.assertRaises(ValueError):
            dnsscript.DnsScript([], host="0.0.0.0")
        self.assertEqual(self.sd.server.udp.getsockname()[0], "127.0.0.1")
        self.assertEqual(self.sd.server.tcp.getsockname()[0], "127.0.0.1")


class ScriptedStandalone(unittest.TestCase):

    def test_standalone(self):
        tmp = tempfile.mkdtemp(prefix="mdtest-lab-")
        rules = os.path.join(tmp, "rules.json")
        log = os.path.join(tmp, "log.jsonl")
        with open(rules, "w") as f:
            f.write('[["a.s.test", "MX", "answer", [["MX", 10, "mx.a.s.test"]]],'
                    ' ["b.s.test", "*", "servfail"]]')
        port = mdlab.free_port()
        script = os.path.join(_TESTS, "lab", "dnsscript.py")
        p = subprocess.Popen([sys.executable, script, "--port", str(port), "--rules", rules,
                              "--log", log], stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().strip()
            self.assertEqual(line, "ready %d" % port)
            self.assertEqual(rrs(mdlab.query(port, "a.s.test", "MX")),
                             [("a.s.test", "MX", (10, "mx.a.s.test"))])
            self.assertEqual(mdlab.query(port, "b.s.test", "A", tcp=True)["rcode_name"],
                             "SERVFAIL")
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = "killed"
            p.stdout.close()
        self.assertEqual(rc, 0)
        with open(log) as f:
            self.assertEqual(len(f.read().splitlines()), 2)
        for fn in (rules, log):
            os.unlink(fn)
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
