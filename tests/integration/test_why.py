#!/usr/bin/env python3
"""maildiag-why against real servers on 127.0.0.1: NSD serving tests/zones/why.test.zone
(and the reverse zone of our sending IPs), Postfix as the recipients' MX (the lab's
PostfixMx), and a SQLite store made here with maildiag-user.  Each address fails at a
different layer; the verdict must name that layer and the finding."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("MAILDIAG_TESTS_DIR", os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "lab"))
import mdlab  # noqa: E402
import mta  # noqa: E402

LAYERS = ["address", "account", "domain", "recipient", "sender", "send"]
STATUSES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}

ACCOUNTS = """username,email,status,auth,sso_provider,email_verified
maria,maria@inbox.why.test,active,password,,1
ssouser,sso@inbox.why.test,active,sso,Okta,1
gone,gone@inbox.why.test,active,password,,1
nobody,nobody@inbox.why.test,active,password,,1
parked,user@nullmx.why.test,active,password,,1
"""

SENDER = {  # [sender] for our good IP, a listed one, one SPF does not authorize
    "good": ("198.51.100.10", "mta.shop.why.test"),
    "listed": ("198.51.100.66", "mta66.shop.why.test"),
    "spffail": ("198.51.100.20", "mta20.shop.why.test"),
}


class SilentSmtp:
    """Accepts connections and never says a word (no banner)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop_flag = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class Why(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tool = mdlab.tool_path("maildiag-why")
        user = mdlab.tool_path("maildiag-user")
        cls.dir = tempfile.mkdtemp(prefix="md-why-")
        zones = {"why.test": mdlab.zone_path("why.test.zone"),
                 "100.51.198.in-addr.arpa": mdlab.zone_path("100.51.198.in-addr.arpa.zone")}
        cls.ns = mdlab.Nsd(zones, workdir=cls.dir).start()
        try:
            cls.mx = mta.PostfixMx(domain="inbox.why.test",
                                   users=("maria", "sso", "gone"), hostname="mx.why.test").start()
        except BaseException:
            cls.ns.stop()
            raise
        cls.store = "sqlite:" + os.path.join(cls.dir, "store.db")
        csv = os.path.join(cls.dir, "accounts.csv")
        with open(csv, "w") as f:
            f.write(ACCOUNTS)
        for argv in (["init"], ["import", csv],
                     ["suppression", "add", "gone@inbox.why.test", "--reason", "hard-bounce",
                      "--text", "550 5.1.1 <gone@inbox.why.test>: mailbox unavailable"]):
            run = mdlab.run_tool([user, "--store", cls.store] + argv)
            assert run.rc == 0, str(run)
        cls.confs = {k: cls.write_conf(k, *v) for k, v in SENDER.items()}
        cls.confs["nosender"] = cls.write_conf("nosender", None, None)

    @classmethod
    def tearDownClass(cls):
        cls.mx.stop()
        cls.ns.stop()
        subprocess.run(["rm", "-rf", cls.dir])

    @classmethod
    def write_conf(cls, name, ip, helo, direct_port=None, extra=""):
        text = ""
        if ip:
            text += ("[sender]\nfrom = noreply@shop.why.test\nips = %s\nhelo = %s\n"
                     "dkim_selectors = s1\n[dnsbl]\nzones = bl.why.test\n" % (ip, helo))
        text += ("[mail]\nfrom = noreply@shop.why.test\ndirect_port = %d\nallow_internal = yes\n"
                 "ca_file = %s\n[store]\nuri = %s\ntypo_many = 3\n%s"
                 % (direct_port or cls.mx.port, cls.mx.ca_file, cls.store, extra))
        path = os.path.join(cls.dir, name + ".conf")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def why(self, address, conf="good", args=(), resolver=None, timeout=30):
        argv = [self.tool, "-C", self.confs.get(conf, conf), "-r", resolver or self.ns.resolver,
                "--json"] + list(args) + [address]
        run = mdlab.run_tool(argv, timeout=timeout)
        objs = mdlab.json_results(run)
        self.assertEqual(len(objs), 1, "exactly one JSON value\n%s" % run)
        self.check_contract(objs[0], run)
        return objs[0], run

    def check_contract(self, o, run):
        """Every key of the JSON contract, with its type; layers in order; exit == status."""
        self.assertEqual(list(o), ["schema_version", "address", "email", "status", "verdict",
                                   "layers", "elapsed_ms"], run)
        self.assertEqual(o["schema_version"], 1)
        self.assertIsInstance(o["address"], str)
        self.assertIn(o["email"], ("any", "reset", "verify", "username"))
        self.assertIn(o["status"], STATUSES)
        self.assertEqual(run.rc, STATUSES[o["status"]], "exit code = status\n%s" % run)
        self.assertIsInstance(o["elapsed_ms"], int)
        names = [l["layer"] for l in o["layers"]]
        self.assertEqual(names, [n for n in LAYERS if n in names], "layers in order")
        self.assertEqual(len(set(names)), len(names))
        worst = "ok"
        rank = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}
        for l in o["layers"]:
            self.assertEqual(list(l), ["layer", "status", "findings", "data"], run)
            self.assertIn(l["status"], STATUSES)
            self.assertIsInstance(l["data"], dict)
            sev = "ok"
            for f in l["findings"]:
                self.assertTrue({"id", "severity", "summary"} <= set(f), f)
                self.assertTrue(set(f) <= {"id", "severity", "summary", "evidence", "advice"}, f)
                self.assertIn(f["severity"], STATUSES)
                sev = max(sev, f["severity"], key=rank.get)
            self.assertEqual(l["status"], sev, "a layer's status is its worst finding")
            worst = max(worst, l["status"], key=rank.get)
        self.assertEqual(o["status"], worst)
        v = o["verdict"]
        if v is None:
            self.assertEqual(o["status"], "ok")
        else:
            self.assertEqual(list(v), ["layer", "id", "severity", "summary"])
            first = [l for l in o["layers"] if l["status"] != "ok"][0]
            self.assertEqual(v["layer"], first["layer"], "the verdict blames the first broken layer")
            self.assertIn(v["id"], [f["id"] for f in first["findings"]])
            self.assertTrue(v["summary"][-1] in ".?" and "\n" not in v["summary"], v["summary"])
            self.assertFalse(v["summary"].endswith("?.") or v["summary"].endswith(".."), v["summary"])

    def layer(self, o, name):
        found = [l for l in o["layers"] if l["layer"] == name]
        return found[0] if found else None

    def ids(self, o, name):
        return [f["id"] for f in self.layer(o, name)["findings"]]

    def assertVerdict(self, o, run, layer, fid):
        self.assertIsNotNone(o["verdict"], run)
        self.assertEqual((o["verdict"]["layer"], o["verdict"]["id"]), (layer, fid), run)

    # --- one address for each layer -----------------------------------------------

    def test_healthy(self):
        o, run = self.why("maria@inbox.why.test")
        self.assertIsNone(o["verdict"], run)
        self.assertEqual(o["status"], "ok")
        self.assertEqual([l["layer"] for l in o["layers"]],
                         ["address", "account", "domain", "recipient", "sender"], run)
        self.assertIn("smtp.probe_ok", self.ids(o, "recipient"))
        self.assertIn("tls.ok", self.ids(o, "recipient"))
        self.assertIn("account.ok", self.ids(o, "account"))
        sender = self.layer(o, "sender")["data"]
        self.assertEqual(sender["spf"][0]["result"], "pass", run)
        self.assertEqual(sender["dkim"][0]["key_bits"], 2048, run)
        self.assertEqual(sender["dmarc"]["policy"], "reject", run)
        # the probe never sends DATA
        transcript = [t["text"] for t in self.layer(o, "recipient")["data"]["probe"]["transcript"]]
        self.assertFalse([t for t in transcript if t.upper().startswith("DATA")], transcript)
        self.assertTrue([t for t in transcript if t.upper().startswith("RCPT TO")], transcript)

    def test_healthy_text(self):
        run = mdlab.run_tool([self.tool, "-C", self.confs["good"], "-r", self.ns.resolver,
                              "maria@inbox.why.test"])
        self.assertEqual(run.rc, 0, run)
        self.assertTrue(run.out.startswith("Nothing found that stops"), run)
        for name in ("address", "account", "domain", "recipient", "sender"):
            self.assertRegex(run.out, r"(?m)^  %s +OK" % name)

    def test_typo(self):
        o, run = self.why("maria@inbxo.why.test")
        self.assertVerdict(o, run, "address", "address.typo")
        self.assertIn("maria@inbox.why.test", o["verdict"]["summary"])
        self.assertIn("domain.nxdomain", self.ids(o, "domain"))

    def test_sso_reset(self):
        o, run = self.why("sso@inbox.why.test", args=["--email", "reset"])
        self.assertVerdict(o, run, "account", "account.sso")
        self.assertTrue(o["verdict"]["summary"].startswith("The password-reset email"), run)
        # a verification email is not stopped by SSO
        o, run = self.why("sso@inbox.why.test", args=["--email", "verify"])
        self.assertIsNone(o["verdict"], run)

    def test_suppressed(self):
        o, run = self.why("gone@inbox.why.test")
        self.assertVerdict(o, run, "account", "address.suppressed")
        self.assertIn("mailbox unavailable", o["verdict"]["summary"])
        self.assertEqual(run.rc, 2)

    def test_null_mx(self):
        o, run = self.why("user@nullmx.why.test", args=["--email", "reset"])
        self.assertVerdict(o, run, "domain", "mx.null")
        self.assertEqual(o["verdict"]["summary"],
                         "The password-reset email cannot arrive: nullmx.why.test publishes a null"
                         " MX, so it accepts no mail.")
        self.assertEqual(self.layer(o, "account")["status"], "ok", run)
        self.assertEqual(self.ids(o, "recipient"), ["diag.skipped"], run)

    def test_no_mailbox(self):
        o, run = self.why("nobody@inbox.why.test")
        self.assertVerdict(o, run, "recipient", "smtp.rcpt.rejected")
        self.assertIn("the mailbox does not exist", o["verdict"]["summary"])
        self.assertIn("5.1.1", o["verdict"]["summary"])

    def test_listed(self):
        o, run = self.why("maria@inbox.why.test", conf="listed")
        self.assertVerdict(o, run, "sender", "dnsbl.listed")
        self.assertIn("198.51.100.66", o["verdict"]["summary"])

    def test_spf_fail(self):
        o, run = self.why("maria@inbox.why.test", conf="spffail")
        self.assertVerdict(o, run, "sender", "spf.fail")
        self.assertIn("does not authorize our IP 198.51.100.20", o["verdict"]["summary"])

    def test_two_layers_earlier_wins(self):
        o, run = self.why("nobody@inbox.why.test", conf="spffail")
        self.assertEqual(self.layer(o, "recipient")["status"], "critical")
        self.assertEqual(self.layer(o, "sender")["status"], "critical")
        self.assertVerdict(o, run, "recipient", "smtp.rcpt.rejected")

    def test_invalid_address(self):
        o, run = self.why("maria@@inbox.why.test", conf="nosender")
        self.assertVerdict(o, run, "address", "address.invalid")
        self.assertEqual(run.rc, 3)

    # --- unknown is never absence -----------------------------------------------------

    def test_servfail(self):
        rules = [("inbox.why.test", "MX", "servfail")]
        with mdlab.ScriptedDns(rules) as sd:
            o, run = self.why("maria@inbox.why.test", conf="nosender", resolver=sd.resolver,
                              args=["--timeout", "5"])
        self.assertEqual(self.layer(o, "domain")["status"], "unknown", run)
        self.assertIn("dns.temporary", self.ids(o, "domain"))
        for absent in ("mx.none", "mx.null", "domain.nxdomain", "mx.implicit"):
            self.assertNotIn(absent, json.dumps(o))
        self.assertEqual(self.ids(o, "recipient"), ["diag.skipped"])
        self.assertVerdict(o, run, "domain", "dns.temporary")

    def test_dead_resolver(self):
        port = mdlab.free_port()   # nothing listens there
        t0 = time.monotonic()
        o, run = self.why("maria@inbox.why.test", resolver="127.0.0.1:%d" % port,
                          args=["--timeout", "3"], timeout=20)
        self.assertLess(time.monotonic() - t0, 6, run)
        self.assertEqual(o["status"], "unknown", run)
        for name in ("domain", "sender"):
            self.assertEqual(self.layer(o, name)["status"], "unknown", run)
        text = json.dumps(o)
        for absent in ("mx.none", "dkim.missing", "dmarc.missing", "rdns.missing", "spf.none",
                       "domain.nxdomain"):
            self.assertNotIn('"%s"' % absent, text, "a failed lookup is not an absence")

    def test_timeout_silent_server(self):
        silent = SilentSmtp()
        try:
            conf = self.write_conf("silent", *SENDER["good"], direct_port=silent.port)
            t0 = time.monotonic()
            o, run = self.why("maria@inbox.why.test", conf=conf, args=["--timeout", "2"])
            elapsed = time.monotonic() - t0
        finally:
            silent.close()
        self.assertLess(elapsed, 3.5, run)
        self.assertEqual(self.layer(o, "recipient")["status"], "unknown", run)
        self.assertIn("diag.timeout", self.ids(o, "recipient"))
        self.assertVerdict(o, run, "recipient", "diag.timeout")

    # --- send, configuration ------------------------------------------------------------

    def test_send(self):
        o, run = self.why("maria@inbox.why.test", args=["--send", "--email", "reset"])
        send = self.layer(o, "send")
        self.assertIsNotNone(send, run)
        self.assertEqual(send["status"], "ok", run)
        self.assertIn("smtp.accepted", [f["id"] for f in send["findings"]])
        qid = send["data"]["send"]["queue_id"]
        self.assertTrue(qid and re.match(r"^[0-9A-Za-z]+$", qid), run)
        self.assertIn(qid, self.mx.queue_ids())
        self.assertEqual(self.mx.wait_status(queue_id=qid)["status"], "sent")

    def test_show_config_masks(self):
        conf = self.write_conf("secret", *SENDER["good"])
        with open(conf) as f:
            text = f.read().replace("uri = " + self.store,
                                    "uri = postgresql://app:s3cret@db.why.test/accounts")
        with open(conf, "w") as f:
            f.write(text)
        run = mdlab.run_tool([self.tool, "-C", conf, "--show-config"])
        self.assertEqual(run.rc, 0, run)
        self.assertNotIn("s3cret", run.out)
        self.assertIn("uri = postgresql://app:****@db.why.test/accounts", run.out)
        self.assertIn("ips = 198.51.100.10", run.out)
        self.assertIn("[dnsbl]\nzones = bl.why.test", run.out)

    def test_config_error(self):
        conf = self.write_conf("badip", "198.51.100.300", "mta.shop.why.test")
        run = mdlab.run_tool([self.tool, "-C", conf, "--json", "maria@inbox.why.test"])
        self.assertEqual(run.rc, 3, run)
        [o] = mdlab.json_results(run)
        self.assertEqual(o["status"], "unknown")
        self.assertEqual(o["findings"][0]["id"], "config.error")
        self.assertIn("%s:3: [sender] ips: '198.51.100.300'" % conf, o["findings"][0]["summary"])
        run = mdlab.run_tool([self.tool, "-C", conf, "maria@inbox.why.test"])
        self.assertEqual(run.rc, 3)
        self.assertIn("[sender] ips", run.err)

    def test_usage_errors(self):
        for argv in (["--json"], ["--json", "--email", "password", "a@b.test"],
                     ["--json", "--plugin", "a@b.test"], ["--json", "a@b.test", "c@d.test"]):
            run = mdlab.run_tool([self.tool, "-C", "/dev/null"] + argv)
            self.assertEqual(run.rc, 3, run)
            [o] = mdlab.json_results(run)
            self.assertEqual([f["id"] for f in o["findings"]], ["usage.error"], run)

    def test_man_page_example_loads(self):
        man = os.path.join(os.path.dirname(mdlab.tests_dir()), "tools", "maildiag-why.1")
        with open(man) as f:
            text = f.read()
        blocks = re.findall(r"^\.nf\n(.*?)^\.fi", text, re.S | re.M)
        ini = [b for b in blocks if "[sender]" in b]
        self.assertTrue(ini, "the man page has an INI example")
        conf = os.path.join(self.dir, "man.conf")
        with open(conf, "w") as f:
            f.write(ini[0].replace("\\-", "-").replace("\\e", "\\").replace("\\(en", "-"))
        os.chmod(conf, 0o600)
        run = mdlab.run_tool([self.tool, "-C", conf, "--show-config"])
        self.assertEqual(run.rc, 0, run)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
