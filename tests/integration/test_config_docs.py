#!/usr/bin/env python3
"""The documented configuration files load: every INI block of README.md (```ini)
and of the manual pages (the CONFIGURATION sections, and the example under
FILES in maildiag(1)) is written to a file and loaded by every tool with the
real parser (--show-config), which must accept it; and the values the tools
show are the ones the block means, read as libinih reads INI (a ';' or '#'
after a blank starts a comment, an indented line continues the value above).

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import glob
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

TOP = os.path.dirname(mdlab.tests_dir())
TOOLS = ("send", "user", "selfcheck", "mx", "spf", "auth", "token", "why", "health")
# the settings --show-config prints, as "section.key"
SHOWN = {"mail.from", "mail.from_name", "mail.product", "mail.template_dir", "mail.server", "mail.tls",
         "mail.user", "mail.password_file", "mail.helo", "mail.ca_file", "mail.timeout",
         "mail.allow_internal", "token.key_file", "token.verify_url", "token.reset_url", "token.ttl",
         "dns.resolver", "dns.timeout", "selfcheck.min_time", "selfcheck.per_address", "selfcheck.overall",
         "store.local_part_case", "store.typo_many"}


def roff_text(s):
    """The text of a roff .nf block as the reader sees it."""
    for a, b in (("\\(aq", "'"), ("\\(dq", '"'), ("\\-", "-"), ("\\e", "\\"), ("\\&", "")):
        s = s.replace(a, b)
    return s


def blocks():
    """(where, text) of every documented INI block."""
    out = []
    with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
        for i, b in enumerate(re.findall(r"^```ini\n(.*?)^```", f.read(), re.S | re.M)):
            out.append(("README.md block %d" % (i + 1), b))
    for path in sorted(glob.glob(os.path.join(TOP, "tools", "*.1"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.basename(path)
        for sect in ("CONFIGURATION", "FILES"):
            m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % sect, text, re.S | re.M)
            if not m:
                continue
            for i, b in enumerate(re.findall(r"^\.nf\n(.*?)^\.fi", m.group(1), re.S | re.M)):
                b = roff_text(b)
                if re.search(r"^\[[a-z]+\]", b, re.M):
                    out.append(("%s %s block %d" % (name, sect, i + 1), b))
    return out


def ini(text):
    """{section.key: value} as libinih (with maildiag's settings) reads text."""
    values, section, last = {}, "", None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t" and last:
            values[last] += " " + re.split(r"[ \t][#;]", stripped, 1)[0].strip()
            continue
        if stripped.startswith("["):
            section = stripped[1:stripped.index("]")].strip()
            last = None
            continue
        m = re.match(r"([^=:]+?)\s*[=:]\s*(.*)$", stripped)
        if m is None:
            raise AssertionError("neither key, section, comment nor continuation: %r" % line)
        key, value = m.group(1), re.split(r"[ \t][#;]", m.group(2), 1)[0].strip()
        last = "%s.%s" % (section, key)
        values[last] = value
    return values


class ConfigDocs(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        mdlab.tool_path("maildiag-user")
        cls.tmp = tempfile.mkdtemp(prefix="mdtest-confdocs-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_blocks_found(self):
        found = [w for w, _ in blocks()]
        self.assertTrue(any(w.startswith("README.md") for w in found), found)
        for page in ("maildiag-user.1", "maildiag-send.1", "maildiag-selfcheck.1", "maildiag.1"):
            self.assertTrue(any(w.startswith(page) for w in found), "%s: %s" % (page, found))

    def test_every_block_loads(self):
        for i, (where, text) in enumerate(blocks()):
            path = os.path.join(self.tmp, "block%d.conf" % i)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(path, 0o600)
            want = ini(text)
            for name in TOOLS:
                with self.subTest(block=where, tool=name):
                    r = mdlab.run_tool([mdlab.tool_path("maildiag-" + name), "--config", path, "--show-config"],
                                       env={"MAILDIAG_STORE": "", "MAILDIAG_FROM": "", "MAILDIAG_TOKEN_KEYS": "",
                                            "MAILDIAG_TEMPLATE_DIR": ""})
                    self.assertEqual(r.rc, 0, "%s does not load:\n%s\n%s" % (where, text, r))
                    shown = dict(l.split(" = ", 1) for l in r.out.splitlines() if " = " in l)
                    for key, value in want.items():
                        if key in SHOWN and key in shown:
                            # numbers as numbers ("60" and "60.0" are one value)
                            got = shown[key]
                            try:
                                self.assertEqual(float(got), float(value), "%s: %s" % (where, key))
                            except ValueError:
                                self.assertEqual(got, value, "%s: %s" % (where, key))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
