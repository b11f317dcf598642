#!/usr/bin/env python3
"""The test hooks exist only in a build configured with --enable-test-hooks.

Without it, the names of the variables the hooks read (MAILDIAG_SPF_FAULT,
MAILDIAG_SMTP_PORT) are in no binary of the build: neither the library nor
any tool or helper (a released build must not be steerable by them).  With
it, the library holds them, which shows that this test looks in the right
places.

Environment: MAILDIAG_BIN_DIR, MAILDIAG_TESTS_DIR, MAILDIAG_TEST_HOOKS.
Exit 0 pass, 1 fail, 77 skip.
"""

import glob
import os
import sys
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

HOOKS = (b"MAILDIAG_SPF_FAULT", b"MAILDIAG_SMTP_PORT")
TOOLS = ("maildiag", "maildiag-mx", "maildiag-spf", "maildiag-auth", "maildiag-send",
         "maildiag-token", "maildiag-user", "maildiag-selfcheck", "maildiag-notify",
         "maildiag-bounces")


def binaries():
    """The ELF files of the build: the shared library and every tool."""
    mdlab.tool_path("maildiag-send")   # skips when the tools are not built
    bindir = os.environ["MAILDIAG_BIN_DIR"]
    libs = sorted(p for p in glob.glob(os.path.join(bindir, "..", "lib", ".libs", "libmaildiag.so*"))
                  if os.path.isfile(p) and not os.path.islink(p))
    if not libs:
        raise mdlab.LabSkip("no libmaildiag.so in the build tree")
    tools = [mdlab.real_binary(t) for t in TOOLS]
    return libs, tools


def holds(path, name):
    with open(path, "rb") as f:
        return name in f.read()


class Hooks(unittest.TestCase):
    def test_names_only_where_built(self):
        libs, tools = binaries()
        if os.environ.get("MAILDIAG_TEST_HOOKS") == "yes":
            for name in HOOKS:
                self.assertTrue(any(holds(p, name) for p in libs),
                                "a build with test hooks: %s should be in %s" % (name.decode(), libs))
            return
        for path in libs + tools:
            for name in HOOKS:
                self.assertFalse(holds(path, name), "%s holds %s: a build without test hooks"
                                 " must not read it" % (path, name.decode()))


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
