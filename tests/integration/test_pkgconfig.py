#!/usr/bin/env python3
"""maildiag.pc: a program that uses the public headers builds and links with
`pkg-config --cflags --libs maildiag` alone, including the jansson calls it makes
on the trees the library hands out, and the .pc names the licence.

The .pc of the build tree is copied with its directories pointed at the build tree
(the library in lib/.libs, the headers in the source tree's lib/), which is what an
installed copy gives with the installed paths.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR.  Exit 0 pass, 1 fail, 77 skip.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <report/report.h>
#include <dns/dns.h>

int main(void)
{
    md_report *rep = md_report_new("pc-test", "example.com");
    md_report_add(rep, "mx.null", MD_SEV_DEFAULT, "example.com accepts no mail");
    json_t *obj = md_report_to_json(rep);          /* a tree the library hands out */
    char *text = json_dumps(obj, JSON_COMPACT);    /* jansson, called by the program */
    if (text == NULL)
        return 1;
    puts(text);
    printf("outcome=%s\n", md_dns_outcome_name(MD_DNS_SERVFAIL));
    free(text);
    json_decref(obj);
    md_report_free(rep);
    return 0;
}
"""


class PkgConfig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for prog in ("pkg-config", "cc"):
            if shutil.which(prog) is None:
                raise mdlab.LabSkip("%s is not installed" % prog)
        bindir = os.environ.get("MAILDIAG_BIN_DIR")
        if not bindir:
            raise mdlab.LabSkip("MAILDIAG_BIN_DIR is not set")
        cls.build = os.path.dirname(os.path.abspath(bindir))
        cls.src = os.path.dirname(os.path.abspath(mdlab.tests_dir()))
        cls.libdir = os.path.join(cls.build, "lib", ".libs")
        if not os.path.exists(os.path.join(cls.libdir, "libmaildiag.so")):
            raise mdlab.LabSkip("libmaildiag.so is not built in %s" % cls.libdir)
        cls.tmp = tempfile.TemporaryDirectory(prefix="md-pc-")
        with open(os.path.join(cls.build, "lib", "maildiag.pc")) as f:
            cls.pc_text = f.read()
        pc = re.sub(r"(?m)^libdir=.*$", "libdir=" + cls.libdir, cls.pc_text)
        pc = re.sub(r"(?m)^includedir=.*$", "includedir=" + cls.src, pc)
        pc = pc.replace("-I${includedir}/maildiag", "-I${includedir}/lib")
        with open(os.path.join(cls.tmp.name, "maildiag.pc"), "w") as f:
            f.write(pc)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def pkg(self, *args):
        env = dict(os.environ, PKG_CONFIG_PATH=self.tmp.name)
        p = subprocess.run(["pkg-config"] + list(args) + ["maildiag"], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.split()

    def test_links_with_pkg_config_alone(self):
        src = os.path.join(self.tmp.name, "prog.c")
        exe = os.path.join(self.tmp.name, "prog")
        with open(src, "w") as f:
            f.write(PROGRAM)
        flags = self.pkg("--cflags", "--libs")
        san = ["-fsanitize=address,undefined"] if os.environ.get("MAILDIAG_SANITIZERS") == "yes" else []
        cc = subprocess.run(["cc", "-o", exe, src] + san + flags, capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, "cc %s\n%s" % (" ".join(flags), cc.stderr))
        env = dict(os.environ, LD_LIBRARY_PATH=self.libdir)
        run = subprocess.run([exe], capture_output=True, text=True, env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn('"id":"mx.null"', run.stdout)
        self.assertIn("outcome=servfail", run.stdout)

    def test_exports_only_md_symbols(self):
        """libmaildiag.so is built with -fvisibility=hidden: its dynamic symbol
        table holds the MD_API functions of the public headers and nothing of
        what modules share among themselves (db_open, smtp_feed, spf_lint)."""
        if shutil.which("nm") is None:
            self.skipTest("nm (binutils) is not installed")
        p = subprocess.run(["nm", "-D", "--defined-only", os.path.join(self.libdir, "libmaildiag.so")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [l.split()[-1] for l in p.stdout.splitlines() if l.strip()]
        self.assertGreater(len(names), 100, "the public API is exported")
        self.assertEqual([n for n in names if not n.startswith("md_")], [])
        for inside in ("db_open", "smtp_feed", "spf_lint"):
            self.assertNotIn(inside, names)
        # and every function a public header declares is there
        declared = set()
        for root, _, files in os.walk(os.path.join(self.src, "lib")):
            for fn in files:
                if fn.endswith(".h") and not re.search(r"[-_]int\.h$", fn) and fn != "db.h":
                    with open(os.path.join(root, fn)) as f:
                        declared.update(re.findall(r"(?m)^MD_API [^;]*?\b(md_\w+)\s*\(", f.read()))
        self.assertGreater(len(declared), 100)
        self.assertEqual(sorted(declared - set(names)), [], "declared MD_API but not exported")

    def test_tools_load_only_what_they_use(self):
        """A tool loads the shared libraries of the modules it calls, no more
        (the core archive and --as-needed): a process per message or per
        lookup does not pay for the rest at every start.  --await runs the
        maildiag-send-await build, the only send that loads libcurl and GMime."""
        if shutil.which("readelf") is None:
            self.skipTest("readelf (binutils) is not installed")

        def needed(prog):
            p = subprocess.run(["readelf", "-d", os.path.join(self.build, "tools", prog)],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            return " ".join(re.findall(r"\(NEEDED\).*\[(.*?)\]", p.stdout))

        heavy = ("libcurl", "libgmime", "libssl", "libesmtp", "libspf2")
        for prog in ("maildiag-user", "maildiag-selfcheck"):
            self.assertFalse([h for h in heavy if h in needed(prog)], "%s: %s" % (prog, needed(prog)))
        send = needed("maildiag-send")
        self.assertIn("libesmtp", send)
        self.assertFalse([h for h in ("libcurl", "libgmime", "libspf2") if h in send], send)
        self.assertIn("libcurl", needed("maildiag-send-await"))
        self.assertIn("libgmime", needed("maildiag-send-await"))

    def test_names_the_licence(self):
        self.assertIn("license=MIT", self.pc_text)
        self.assertEqual(self.pkg("--variable=license"), ["MIT"])
        with open(os.path.join(self.src, "LICENSE")) as f:
            self.assertIn("MIT License", f.read())


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
