#!/usr/bin/env python3
"""The layering of lib/, as lib/README.md's table states it, holds in the code.

For every source and header of lib/MODULE/:
  - a quoted include names a header of the same module, "config.h", or a
    public header (one Makefile.am installs) of a module in a lower layer:
    never a module beside or above, never another module's private header,
    never a tool's header;
  - the header exists.
And every folder of lib/ has a row in the table and a paragraph
("**MODULE**") in lib/README.md.

Environment: MAILDIAG_TESTS_DIR (the source tree's tests/).  Exit 0 pass,
1 fail, 77 skip.
"""

import glob
import os
import re
import sys
import unittest

_TESTS = os.environ.get("MAILDIAG_TESTS_DIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_TESTS, "lab"))

import mdlab  # noqa: E402

TOP = os.path.dirname(os.path.abspath(_TESTS))
LIB = os.path.join(TOP, "lib")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layers():
    """{module: layer} from the table of lib/README.md."""
    path = os.path.join(LIB, "README.md")
    if not os.path.isfile(path):
        raise mdlab.LabSkip("no lib/README.md in %s" % LIB)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for m in re.finditer(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, re.M):
        for entry in m.group(2).split(","):
            name = entry.strip().split(" ")[0]
            if name:
                out[name] = int(m.group(1))
    return out, text


def public_headers():
    """lib/MODULE/FILE.h that Makefile.am installs."""
    with open(os.path.join(TOP, "Makefile.am"), encoding="utf-8") as f:
        am = f.read()
    out = set()
    for m in re.finditer(r"md\w+_HEADERS\s*\+?=((?:[^\n]*\\\n)*[^\n]*)", am):
        out.update(re.findall(r"lib/[a-z]+/[\w-]+\.h", m.group(1)))
    return out


def modules():
    return sorted(d for d in os.listdir(LIB) if os.path.isdir(os.path.join(LIB, d)))


def violations(table, public):
    bad = []
    for mod in modules():
        here = table.get(mod)
        for src in sorted(glob.glob(os.path.join(LIB, mod, "*.[ch]"))):
            rel = os.path.relpath(src, TOP)
            with open(src, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                if inc == "config.h":
                    continue
                if "/" not in inc:
                    if not os.path.isfile(os.path.join(LIB, mod, inc)):
                        bad.append("%s: includes \"%s\", which is not a header of lib/%s (a tool's?)"
                                   % (rel, inc, mod))
                    continue
                other = inc.split("/")[0]
                target = "lib/" + inc
                if not os.path.isfile(os.path.join(TOP, target)):
                    bad.append("%s: includes \"%s\", which is not in lib/" % (rel, inc))
                    continue
                if other == mod:
                    continue
                if other not in table:
                    continue   # reported as a module without a row
                if here is not None and table[other] >= here:
                    bad.append("%s: includes \"%s\": %s is in layer %d, not below %s's layer %d"
                               % (rel, inc, other, table[other], mod, here))
                if target not in public:
                    bad.append("%s: includes \"%s\", a private header of lib/%s" % (rel, inc, other))
    return bad


class Layering(unittest.TestCase):
    maxDiff = None

    def test_every_module_has_a_row_and_a_paragraph(self):
        table, text = layers()
        for mod in modules():
            self.assertIn(mod, table, "lib/%s has no row in lib/README.md's table of layers" % mod)
            self.assertIn("**%s**" % mod, text, "lib/%s has no paragraph in lib/README.md" % mod)

    def test_includes_go_down_only(self):
        table, _ = layers()
        bad = violations(table, public_headers())
        self.assertEqual(bad, [], "forbidden includes:\n" + "\n".join(bad))

    def test_the_check_catches(self):
        # the same check over a table where report sits above smtp must fail
        table, _ = layers()
        upside = dict(table)
        upside["report"] = max(table.values()) + 1
        self.assertTrue(violations(upside, public_headers()), "an upside-down table passed")
        self.assertIn("lib/report/report.h", public_headers())
        self.assertNotIn("lib/smtp/smtp-int.h", public_headers())


if __name__ == "__main__":
    sys.exit(mdlab.run_tests())
