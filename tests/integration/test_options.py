#!/usr/bin/env python3
"""Same option, same meaning: the options every tool shares (maildiag(1)) have
one letter and one meaning everywhere, a tool's own options take other letters
or long names only, the old long names still work, two output formats are a
usage error, every tool reads the one configuration file (-C), maildiag-send
takes its defaults from [mail] and [token] as the account emails do, and each
tool's --help names the options its manual page documents.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
Run one test: python3 test_options.py Options.test_help_letters
"""

import email
import email.policy
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402
import smtplab  # noqa: E402

TOOLS = ("why", "health", "mx", "spf", "auth", "send", "token", "user", "selfcheck")
# the table of maildiag(1): one letter, one long name, one meaning
COMMON = {"-C": "--config", "-r": "--resolver", "-t": "--timeout", "-j": "--json", "-p": "--plugin",
          "-q": "--quiet", "-w": "--warning", "-c": "--critical", "-v": "--verbose", "-h": "--help",
          "-V": "--version"}
# long names that once had a letter, which every tool still takes
OLD_LONG = {
    "send": ["--to", "--quit-after", "--insecure", "--server", "--direct", "--count", "--user"],
    "spf": ["--concurrency", "--deadline"], "mx": ["--concurrency"], "auth": ["--dkim-selector"],
    "user": ["--store", "--username", "--limit"], "selfcheck": ["--want", "--store"],
}
# letters that two tools gave two meanings: gone from these tools
GONE = {"send": ["-s", "-d", "-k", "-n", "-u"], "spf": ["-d"], "selfcheck": ["-s"],
        "user": ["-s", "-u", "-n"], "auth": ["-s"]}


def tool(name):
    return mdlab.tool_path("maildiag-" + name)


def help_options(name):
    """{short: long} and the set of long names of a tool's --help (the
    options its lines start with)."""
    r = mdlab.run_tool([tool(name), "--help"])
    assert r.rc == 0, str(r)
    shorts, longs = {}, set()
    for line in r.out.splitlines():
        if not line.lstrip().startswith("-"):
            continue
        m = re.match(r"^\s+(-[A-Za-z]), (--[a-z0-9-]+)", line)
        if m:
            shorts[m.group(1)] = m.group(2)
        lm = re.search(r"--[a-z0-9][a-z0-9-]*", line)
        if lm:
            longs.add(lm.group(0))
    return shorts, longs


def man_options(name):
    """The long options documented in OPTIONS (and its subsections) of a tool's
    manual page: the option names of each .TP entry's tag line."""
    path = os.path.join(mdlab.tests_dir(), "..", "tools", "maildiag-%s.1" % name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\.SH OPTIONS\n(.*?)(?=^\.SH )", text, re.S | re.M)
    assert m, "no OPTIONS section in %s" % path
    names = set()
    lines = m.group(1).splitlines()
    for i, line in enumerate(lines[:-1]):
        if line == ".TP":
            names.update("--" + n.replace("\\-", "-")
                         for n in re.findall(r"\\-\\-((?:[a-z0-9]|\\-)+)", lines[i + 1]))
    return names


class Options(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-mx")
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-options-")
        os.chmod(cls.tmp, 0o711)
        cls.dns = mdlab.ScriptedDns([
            ("ok.opt.test", "MX", "answer", [("MX", 10, "mx.ok.opt.test")]),
            ("mx.ok.opt.test", "A", "answer", [("A", "192.0.2.10")]),
            ("mx.ok.opt.test", "AAAA", "nodata"),
            (".opt.test", "*", "nxdomain")]).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def conf(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # ------------------------------------------------------------ letters

    def test_help_letters(self):
        """A letter two tools share means the same in both; the common ones as maildiag(1) says."""
        meaning = {}
        for name in TOOLS:
            shorts, _ = help_options(name)
            for short, long in shorts.items():
                if short in COMMON:
                    self.assertEqual(long, COMMON[short], "maildiag-%s: %s" % (name, short))
                meaning.setdefault(short, {})[name] = long
            for short in GONE.get(name, []):
                self.assertNotIn(short, shorts, "maildiag-%s still has %s" % (name, short))
        for short, by_tool in meaning.items():
            self.assertEqual(len(set(by_tool.values())), 1, "%s means %s" % (short, by_tool))

    def test_gone_letters_refused(self):
        for name, letters in GONE.items():
            for short in letters:
                r = mdlab.run_tool([tool(name), short, "x"])
                self.assertEqual(r.rc, 3, r)
                self.assertIn("unknown option '%s'" % short, r.err, r)
        # -t is send's --timeout now, never --to
        r = mdlab.run_tool([tool("send"), "-t", "a@example.com", "--to", "a@example.com", "--dry-run"])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("--timeout", r.err, r)

    def test_old_long_names(self):
        for name, longs in OLD_LONG.items():
            _, help_longs = help_options(name)
            for long in longs:
                self.assertIn(long, help_longs, "maildiag-%s --help lost %s" % (name, long))
        send = [tool("send"), "--from", "noreply@example.com", "--to", "a@example.com"]
        with smtplab.Sink() as sink:
            r = mdlab.run_tool(send + ["--server", "127.0.0.1:%d" % sink.port, "--quit-after", "rcpt",
                                       "--insecure", "--count", "2", "--json"])
            self.assertEqual([j["result"] for j in mdlab.json_results(r)], ["accepted"] * 2, r)
        r = mdlab.run_tool([tool("spf"), "--resolver", self.dns.resolver, "--concurrency", "1", "--deadline", "5",
                            "--ip", "192.0.2.1", "--from", "a@ok.opt.test", "--json", "--no-libspf2"])
        self.assertEqual(len(mdlab.json_results(r)), 1, r)
        r = mdlab.run_tool([tool("mx"), "--resolver", self.dns.resolver, "--concurrency", "1", "ok.opt.test"])
        self.assertEqual(r.rc, 0, r)

    def test_two_formats_are_a_usage_error(self):
        cases = {"mx": ["ok.opt.test"], "spf": ["ok.opt.test"], "auth": ["ok.opt.test"],
                 "send": ["--to", "a@example.com", "--dry-run"], "user": ["lookup", "a@example.com"]}
        for name, args in cases.items():
            for order in (["--plugin", "--json"], ["--json", "--plugin"], ["-p", "-j"]):
                with self.subTest(tool=name, order=order):
                    dns = ["--resolver", self.dns.resolver] if name != "send" else []
                    r = mdlab.run_tool([tool(name)] + dns + order + args)
                    self.assertEqual(r.rc, 3, r)
                    self.assertIn("two output formats", r.err, r)
        # thresholds belong to the plugin line
        r = mdlab.run_tool([tool("mx"), "-w", "1", "ok.opt.test"])
        self.assertEqual(r.rc, 3, r)

    # ------------------------------------------------------------ the configuration file

    def test_config_everywhere(self):
        """Every tool takes -C; a file that was named must exist, the default need not."""
        missing = os.path.join(self.tmp, "no-such.conf")
        empty = self.conf("empty.conf", "# nothing\n")
        for name in TOOLS:
            with self.subTest(tool=name):
                r = mdlab.run_tool([tool(name), "-C", missing, "--show-config"])
                self.assertEqual(r.rc, 3, r)
                self.assertIn("no such file", r.err, r)
                r = mdlab.run_tool([tool(name), "--config", missing, "--show-config", "--json"])
                self.assertEqual(r.rc, 3, r)
                self.assertEqual(json.loads(r.out)["findings"][0]["id"], "config.error", r)
                r = mdlab.run_tool([tool(name), "-C", empty, "--show-config"])
                self.assertEqual(r.rc, 0, r)
                self.assertIn("config = %s" % empty, r.out, r)
                # MAILDIAG_CONFIG names a file: it must exist too
                r = mdlab.run_tool([tool(name), "--show-config"], env={"MAILDIAG_CONFIG": missing})
                self.assertEqual(r.rc, 3, r)
        if not os.path.exists("/etc/maildiag.conf"):
            for name in TOOLS:
                r = mdlab.run_tool([tool(name), "--show-config"])
                self.assertEqual(r.rc, 0, "a missing default file is no error\n%s" % r)
                self.assertIn("config = (none)", r.out, r)

    def test_dns_from_the_config(self):
        conf = self.conf("dns.conf", "[dns]\nresolver = %s\ntimeout = 2\n" % self.dns.resolver)
        r = mdlab.run_tool([tool("mx"), "-C", conf, "--json", "ok.opt.test"])
        (j,) = mdlab.json_results(r)
        self.assertEqual(j["status"], "ok", r)
        for name in ("mx", "spf", "auth", "send", "user", "selfcheck"):
            r = mdlab.run_tool([tool(name), "-C", conf, "--show-config"])
            self.assertIn("dns.resolver = %s" % self.dns.resolver, r.out, r)
            self.assertIn("dns.timeout = 2", r.out, r)
            # the command line wins over the environment, which wins over the file
            r = mdlab.run_tool([tool(name), "-C", conf, "--show-config"], env={"MAILDIAG_RESOLVER": "127.0.0.9"})
            self.assertIn("dns.resolver = 127.0.0.9", r.out, r)
            r = mdlab.run_tool([tool(name), "-C", conf, "-r", "127.0.0.8", "-t", "3", "--show-config"],
                               env={"MAILDIAG_RESOLVER": "127.0.0.9"})
            self.assertIn("dns.resolver = 127.0.0.8", r.out, r)
            # -t is the timeout of what the tool does: DNS queries, or maildiag-send's sends
            self.assertIn("mail.timeout = 3" if name == "send" else "dns.timeout = 3", r.out, r)
        bad = self.conf("bad-dns.conf", "[dns]\nresolver = not-an-address\n")
        r = mdlab.run_tool([tool("mx"), "-C", bad, "ok.opt.test"])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("[dns] resolver", r.err, r)

    def test_send_reads_mail_and_token(self):
        """maildiag-send's defaults come from [mail] and [token]; options win."""
        keys = self.conf("keys", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")
        d = tempfile.mkdtemp(dir=self.tmp)
        with smtplab.Sink(dump_dir=d) as sink:
            conf = self.conf("mail.conf", "[mail]\nfrom = noreply@product.test\nproduct = Shop\n"
                             "server = 127.0.0.1:%d\ntls = off\nhelo = client.product.test\n"
                             "[token]\nkey_file = %s\nreset_url = https://app.product.test/reset?t=\n"
                             % (sink.port, keys))
            r = mdlab.run_tool([tool("send"), "-C", conf, "--to", "a@example.com", "-T", "reset", "--json"])
            (j,) = mdlab.json_results(r)
            self.assertEqual((j["result"], j["status"], r.rc), ("accepted", "ok", 0), r)
            self.assertIn("EHLO client.product.test", [t["text"] for t in j["transcript"]], r)
            r2 = mdlab.run_tool([tool("send"), "-C", conf, "--to", "b@example.com", "--from", "other@product.test",
                                 "--product", "Other", "--json"])
            self.assertEqual(r2.rc, 0, r2)
            dumps = []
            for _ in range(50):
                dumps = sink.dumps()
                if len(dumps) >= 2:
                    break
                import time
                time.sleep(0.1)
        msgs = [email.message_from_bytes(b[b.find(b"Date: "):], policy=email.policy.default) for b in dumps]
        by_to = {str(m["To"]): m for m in msgs}
        reset = by_to["a@example.com"]
        self.assertIn("noreply@product.test", str(reset["From"]))
        body = reset.get_body(("plain",)).get_content()
        self.assertIn("https://app.product.test/reset?t=", body)
        self.assertIn("Shop", reset["Subject"] + body)
        self.assertNotIn("throwaway", body.lower())   # signed with the configured key
        other = by_to["b@example.com"]
        self.assertIn("other@product.test", str(other["From"]))
        # --show-config says what applies, and where the password would come from
        r = mdlab.run_tool([tool("send"), "-C", conf, "--show-config", "--tls", "required"])
        self.assertIn("mail.server = 127.0.0.1:%d" % sink.port, r.out, r)
        self.assertIn("mail.tls = required", r.out, r)
        self.assertIn("token.key_file = %s" % keys, r.out, r)
        bad = self.conf("bad-mail.conf", "[mail]\ntls = sometimes\n")
        r = mdlab.run_tool([tool("send"), "-C", bad, "--to", "a@example.com", "--dry-run", "--json"])
        self.assertEqual(r.rc, 3, r)
        self.assertEqual(json.loads(r.out)["findings"][0]["id"], "config.error", r)
        self.assertIn("[mail] tls", r.err, r)
        # a bad value of the file is an error even when the option overrides
        # it, as every other value of the file is
        r = mdlab.run_tool([tool("send"), "-C", bad, "--tls", "off", "--to", "a@example.com", "--dry-run"])
        self.assertEqual(r.rc, 3, r)
        self.assertIn("[mail] tls", r.err, r)

    # ------------------------------------------------------------ --help and the manual

    def test_help_names_the_manual_options(self):
        for name in TOOLS:
            with self.subTest(tool=name):
                _, help_longs = help_options(name)
                man = man_options(name)
                self.assertEqual(sorted(man - help_longs), [], "in the manual, not in --help")
                self.assertEqual(sorted(help_longs - man), [], "in --help, not in the manual")

    def test_maildiag_1_has_the_table(self):
        path = os.path.join(mdlab.tests_dir(), "..", "tools", "maildiag.1")
        with open(path, encoding="utf-8") as f:
            text = f.read().replace("\\-", "-")
        for short, long in COMMON.items():
            self.assertRegex(text, re.escape(short) + r"[^\n]*" + re.escape(long), "maildiag(1): %s" % long)


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
