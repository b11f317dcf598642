"""prometheus-node-exporter for the tests: only its textfile collector, on a free
port of 127.0.0.1, reading a directory of the test's, stopped by pid.

    with NodeExporter(textfile_dir) as ne:
        metrics = ne.scrape()          # {(name, frozenset(labels.items())): value}
        ne.scrape_text()               # the raw /metrics text
"""

import os
import shutil
import subprocess
import time
import urllib.request

import mdlab

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"


def parse_metrics(text):
    """The samples of an exposition text: {(name, frozenset of (label, value)): float}.
    Label values are unescaped (\\\\, \\", \\n)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels, i = {}, 0
            while rest[i] != "}":
                eq = rest.index("=", i)
                key = rest[i:eq].lstrip(",")
                j, val = eq + 2, []
                while rest[j] != '"':
                    if rest[j] == "\\":
                        j += 1
                        val.append({"n": "\n"}.get(rest[j], rest[j]))
                    else:
                        val.append(rest[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
            value = rest[i + 1:].split()[0]
        else:
            name, value = line.split()[:2]
            labels = {}
        out[(name, frozenset(labels.items()))] = float(value)
    return out


class NodeExporter:
    def __init__(self, textfile_dir, port=None):
        if not os.path.exists(NODE_EXPORTER):
            raise mdlab.LabSkip("prometheus-node-exporter is not installed")
        self.dir, self.port, self.proc = textfile_dir, port or mdlab.free_port(), None

    def start(self):
        self.log = open(os.path.join(self.dir, "..", "node_exporter.log"), "wb")
        self.proc = subprocess.Popen(
            [NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
             "--collector.textfile.directory=" + self.dir,
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise mdlab.LabError("node_exporter exited with %s" % self.proc.returncode)
            try:
                self.scrape_text()
                return self
            except OSError:
                time.sleep(0.05)
        raise mdlab.LabError("node_exporter does not answer on 127.0.0.1:%d" % self.port)

    def scrape_text(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
            return r.read().decode()

    def scrape(self):
        return parse_metrics(self.scrape_text())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
