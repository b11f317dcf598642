"""Shared helpers for the maildiag-mx integration tests (stdlib only).

MxTestCase runs maildiag-mx against a resolver on 127.0.0.1 and checks results
against the contract: JSON Lines, one object per domain, exit code = worst status
(critical 2 > warning 1 > unknown 3 > ok 0).
"""

import re
import unittest

import mdlab

STATUS_RC = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
RANK = {"critical": 3, "warning": 2, "unknown": 1, "ok": 0}  # monitoring-plugins order
STATES = {"ok": "OK", "warning": "WARNING", "critical": "CRITICAL", "unknown": "UNKNOWN"}
NOT_OK = "not-ok"  # expected status: anything but ok


def worst(statuses):
    statuses = list(statuses)
    return max(statuses, key=lambda s: RANK[s]) if statuses else "ok"


def host_name(h):
    return (h or "").rstrip(".").lower()


class MxTestCase(unittest.TestCase):
    """Set cls.resolver (e.g. "127.0.0.1:PORT") before use; tool paths come from the env."""

    resolver = None
    timeout = 2
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.mx_bin = mdlab.tool_path("maildiag-mx")

    # ---------------------------------------------------------------- running

    def mx(self, *args, json=True, stdin=None, env=None, resolver=True, timeout=None,
           bin_argv=None):
        argv = list(bin_argv or [self.mx_bin])
        if resolver and self.resolver:
            argv += ["--resolver", self.resolver]
        if timeout is not False:
            argv += ["--timeout", str(timeout if timeout is not None else self.timeout)]
        if json:
            argv.append("--json")
        argv += list(args)
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        return mdlab.run_tool(argv, stdin=stdin, env=env)

    def results(self, run, expect_count=None):
        objs = mdlab.json_results(run)
        for o in objs:
            self.check_schema(o, run)
        if expect_count is not None:
            self.assertEqual(len(objs), expect_count,
                             "number of JSON objects: got %d, want %d\n%s"
                             % (len(objs), expect_count, run))
        return objs

    def by_input(self, run, inputs):
        """Results keyed by their "input" field; exactly one per given input."""
        objs = self.results(run, expect_count=len(inputs))
        got = {}
        for o in objs:
            self.assertNotIn(o.get("input"), got, "duplicate result for input %r\n%s"
                             % (o.get("input"), run))
            got[o.get("input")] = o
        self.assertEqual(sorted(got), sorted(inputs),
                         "inputs in the results: got %r, want %r\n%s"
                         % (sorted(got), sorted(inputs), run))
        return got

    # ---------------------------------------------------------------- checks

    def check_schema(self, o, run):
        ctx = "\nobject: %r\n%s" % (o, run)
        self.assertIsInstance(o, dict, "a JSON line is not an object" + ctx)
        self.assertEqual(o.get("schema_version"), 1, "schema_version: want 1" + ctx)
        for key in ("input", "domain", "status", "findings"):
            self.assertIn(key, o, "missing key %r" % key + ctx)
        self.assertIn(o["status"], STATUS_RC, "status %r is not ok|warning|critical|unknown"
                      % (o["status"],) + ctx)
        self.assertIsInstance(o["findings"], list, "findings is not a list" + ctx)
        for f in o["findings"]:
            for key in ("id", "severity", "summary"):
                self.assertIn(key, f, "finding without %r" % key + ctx)
            self.assertIn(f["severity"], STATUS_RC, "bad finding severity" + ctx)
            self.assertTrue(re.match(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", f["id"]),
                            "finding id %r is not dotted lower case" % (f["id"],) + ctx)
        mx = o.get("mx", [])
        self.assertIsInstance(mx, list, "mx is not a list" + ctx)
        for m in mx:
            for key in ("host", "preference", "addresses"):
                self.assertIn(key, m, "mx entry without %r" % key + ctx)
            self.assertIsInstance(m["preference"], int, "preference is not an integer" + ctx)
            self.assertIsInstance(m["addresses"], list, "addresses is not a list" + ctx)
        if o["findings"]:
            want = worst(f["severity"] for f in o["findings"])
            self.assertEqual(o["status"], want, "status %r is not the worst finding severity %r"
                             % (o["status"], want) + ctx)
        d = o["domain"]
        if isinstance(d, str) and d and o["status"] != "unknown":
            self.assertEqual(d, d.lower(), "domain not lower case" + ctx)
            self.assertFalse(d.endswith("."), "domain has a trailing dot" + ctx)

    def finding(self, o, fid):
        for f in o["findings"]:
            if f["id"] == fid:
                return f
        return None

    def assertFinding(self, o, fid, run, severity=None):
        f = self.finding(o, fid)
        self.assertIsNotNone(f, "finding %r: got ids %r, want it present\n%s"
                             % (fid, [x["id"] for x in o["findings"]], run))
        if severity:
            self.assertEqual(f["severity"], severity, "severity of %s: got %r, want %r\n%s"
                             % (fid, f["severity"], severity, run))
        return f

    def assertNoFinding(self, o, fid, run):
        self.assertIsNone(self.finding(o, fid), "finding %r: present, want absent\n%s"
                          % (fid, run))

    def assertStatus(self, o, status, run):
        if status == NOT_OK:
            self.assertNotEqual(o["status"], "ok", "status of %s: got ok, want not ok\n%s"
                                % (o.get("input"), run))
        else:
            self.assertEqual(o["status"], status, "status of %s: got %r, want %r\n%s"
                             % (o.get("input"), o["status"], status, run))

    def assertRc(self, run, rc):
        self.assertEqual(run.rc, rc, "exit code: got %r, want %r\n%s" % (run.rc, rc, run))

    def assertHealthy(self, o, run):
        self.assertStatus(o, "ok", run)
        bad = [f for f in o["findings"] if f["severity"] in ("warning", "critical")]
        self.assertEqual(bad, [], "healthy domain has warning/critical findings\n%s" % run)

    def assertNoTextLineFor(self, run, name):
        for line in run.out.splitlines():
            self.assertFalse(line.startswith(name + ":") or line.startswith(name + ".:"),
                             "line for %s present, want hidden: %r\n%s" % (name, line, run))

    def assertTextDomain(self, run, name, status, fid=None):
        state = STATES[status]
        pat = r"^%s\.?: %s\b" % (re.escape(name), state)
        self.assertTrue(re.search(pat, run.out, re.M),
                        "human text: want a line %r, got:\n%s" % (name + ": " + state, run))
        if fid:
            self.assertTrue(re.search(r"^\s+.*%s" % re.escape(fid), run.out, re.M),
                            "human text: want an indented line naming %s\n%s" % (fid, run))

    def check_case(self, domain, status, fid=None, rc=None, severity=None):
        """Run one domain with --json and check status, finding and exit code."""
        run = self.mx(domain)
        o = self.by_input(run, [domain])[domain]
        self.assertStatus(o, status, run)
        if fid:
            self.assertFinding(o, fid, run, severity)
        elif status == "ok":
            self.assertHealthy(o, run)
        want_rc = rc if rc is not None else STATUS_RC.get(o["status"])
        self.assertRc(run, want_rc)
        return o, run
