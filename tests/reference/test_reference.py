#!/usr/bin/env python3
"""test_reference.py — one reference server of scenarios/reference/ (Go
net/http, Node.js http, Python asyncio + aiohttp), started exactly as the
`successors` scenario starts it, checked against the upstream stub:

  - `--version` names the runtime (what the result records);
  - hello answers "Hello, World!"; the connection is kept alive over HTTP/1.1
    and over HTTP/1.0 with Connection: keep-alive (what loadgen -k speaks);
  - proxy answers the upstream's body, and 20 requests in a row reuse one
    upstream connection (the pool keeps them alive);
  - fanout answers ?n= bodies (default 4, clamped to 1..64, a bad n is the
    default), and its 8 calls run at once: against a 300 ms upstream the
    answer comes before 8 x 300 ms, the least a one-by-one fetch could take;
  - a failed upstream gives what the C apps give: 502 for a 5xx answer or a
    refused connection, 504 past --upstream-timeout;
  - SIGTERM, sent to its PID, stops it with status 0.

    test_reference.py go|node|aiohttp --upstream-bin PATH

Exit 0 when every check passed, 1 otherwise, 77 (skipped) with one line
when the runtime is not installed. Needs COROBENCH_BUILD and
COROBENCH_SOURCE (meson test sets them). Standard library only; every
process started here is stopped by its PID.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import srvtest as st  # noqa: E402

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE")
# test name -> the server's name in scenarios/successors.json
ROWS = {"go": "go-nethttp", "node": "node-http", "aiohttp": "aiohttp"}
SIZE = 1000
SLOW_MS = 300


def load_bench():
    """scripts/bench as a module: its placeholder expansion and requirement
    check are the ones the scenario's commands go through."""
    path = os.path.join(SOURCE, "scripts", "bench")
    loader = importlib.machinery.SourceFileLoader("corobench_bench", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def scenario_row(name):
    check = os.path.join(BUILD, "scenarios", "scenario-check")
    r = subprocess.run([check, os.path.join(SOURCE, "scenarios", "successors.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    for srv in json.loads(r.stdout)["servers"]:
        if srv["name"] == name:
            return srv
    raise RuntimeError("no server %s in scenarios/successors.json" % name)


class Reference:
    """Starts the scenario's row with a given app and upstream."""

    def __init__(self, bench, row, tmp):
        self.bench = bench
        self.row = row
        self.tmp = tmp

    def subst(self, port, app, upstream):
        return {"host": "127.0.0.1", "port": str(port), "listen": "127.0.0.1:%d" % port,
                "upstream": upstream, "workers": "1", "source": SOURCE, "build": BUILD,
                "tmp": self.tmp, "app": app, "name": self.row["name"]}

    def command(self, key, port=0, app="hello", upstream=""):
        sub = self.subst(port, app, upstream)
        return [self.bench.Runner.expand(a, sub) for a in self.row[key]]

    def env(self, port=0, app="hello", upstream=""):
        env = dict(os.environ)
        sub = self.subst(port, app, upstream)
        for k, v in self.row["env"].items():
            env[k] = self.bench.Runner.expand(v, sub)
        return env

    def start(self, app, upstream, extra=()):
        srv = None
        for _ in range(3):  # another process may take the free port first
            port = st.free_port()
            argv = self.command("start", port, app, upstream) + list(extra)
            srv = st.Server(argv, port=port, ready="connect", ready_timeout=20,
                            env=self.env(port, app, upstream))
            if srv.ready_ok:
                return srv
            srv.stop()
            if "in use" not in srv.text():
                break
        raise RuntimeError("%s did not start: %s" % (self.row["name"], srv.text()))


def upstream_stats(port):
    body = st.get(port, "/_stats").body.decode()
    return {k: int(v) for k, v in (ln.split() for ln in body.splitlines() if ln.strip())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runtime", choices=sorted(ROWS))
    ap.add_argument("--upstream-bin", required=True)
    a = ap.parse_args()
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    bench = load_bench()
    row = scenario_row(ROWS[a.runtime])
    missing = bench.Runner.missing_requirements(row)
    if missing:
        print("skipped: %s is not installed (%s)" % (", ".join(missing), row["missing_hint"]))
        return 77

    t = st.Tap()
    tmp = tempfile.mkdtemp(prefix="corobench-test-ref-")
    ref = Reference(bench, row, tmp)
    up = None
    try:
        if row["build"]:
            r = subprocess.run(ref.command("build"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=ref.env(), timeout=900,
                               check=False)
            if not t.ok(r.returncode == 0, "the scenario's build command builds it",
                        r.stdout.decode("utf-8", "replace")):
                return t.finish()

        r = subprocess.run(ref.command("runtime_version"), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=ref.env(), timeout=30, check=False)
        version = r.stdout.decode("utf-8", "replace").strip()
        want = {"go": "go1.", "node": "Node.js v", "aiohttp": "aiohttp "}[a.runtime]
        t.ok(r.returncode == 0 and len(version.splitlines()) == 1 and want in version,
             "--version prints one line naming the runtime: %s" % version, version)

        up = st.start_server(a.upstream_bin, ["--delay-ms", "5", "--size", str(SIZE),
                                              "--quiet"])
        if not t.ok(up.ready_ok, "the upstream stub starts", up.text()):
            return t.finish()
        base = "http://127.0.0.1:%d/" % up.port
        expected = st.get(up.port, "/").body
        assert len(expected) == SIZE

        # ---- hello, and keep-alive towards the client
        srv = ref.start("hello", base)
        try:
            def hello():
                r = st.get(srv.port)
                if (r.status, r.body) != (200, b"Hello, World!"):
                    return "answered %r" % r
                if not (r.header("content-type") or "").startswith("text/plain"):
                    return "Content-Type %r" % r.header("content-type")
            t.check("hello: 200 'Hello, World!' text/plain", hello)

            def keepalive(version, headers):
                with st.Conn(srv.port) as c:
                    for i in range(3):
                        r = c.request(version=version, headers=headers)
                        if (r.status, r.body) != (200, b"Hello, World!"):
                            return "request %d answered %r" % (i + 1, r)
                    if version == "1.0" and (r.header("connection") or "").lower() != \
                            "keep-alive":
                        return "no Connection: keep-alive in %r" % r.headers
                    if c.at_eof(0.2):
                        return "the connection was closed"
            t.check("hello: 3 requests on one HTTP/1.1 connection",
                    keepalive, "1.1", None)
            t.check("hello: 3 requests on one HTTP/1.0 keep-alive connection (loadgen -k)",
                    keepalive, "1.0", [("Connection", "keep-alive")])
        finally:
            code = srv.stop()
        t.ok(code == 0, "SIGTERM to its PID stops it with status 0", "exit %r" % code)

        # ---- proxy: the upstream's body, over pooled upstream connections
        srv = ref.start("proxy", base)
        try:
            def proxy():
                r = st.get(srv.port)
                if (r.status, r.body) != (200, expected):
                    return "answered %r" % r
            t.check("proxy: 200 with the upstream's %d bytes" % SIZE, proxy)

            def pooled():
                before = upstream_stats(up.port)
                with st.Conn(srv.port) as c:
                    for i in range(20):
                        r = c.request()
                        if (r.status, r.body) != (200, expected):
                            return "request %d answered %r" % (i + 1, r)
                after = upstream_stats(up.port)
                new = after["connections"] - before["connections"] - 1  # our /_stats
                fetched = after["requests"] - before["requests"] - 1
                if fetched != 20 or new > 1:
                    return "20 requests: %d upstream fetches over %d new connections" % (
                        fetched, new)
            t.check("proxy: 20 requests in a row reuse one upstream connection", pooled)
        finally:
            srv.stop()

        # ---- fanout
        srv = ref.start("fanout", base)
        try:
            for query, n in (("?n=8", 8), ("", 4), ("?n=0", 1), ("?n=65", 64),
                             ("?n=x", 4), ("?n=2&m=1", 2)):
                def fan(query=query, n=n):
                    r = st.get(srv.port, "/" + query, timeout=30)
                    if (r.status, r.body) != (200, expected * n):
                        return "answered %d with %d bytes" % (r.status, len(r.body))
                t.check("fanout /%s: the upstream's body %d times" % (query, n), fan)
        finally:
            srv.stop()
        srv = ref.start("fanout", base + "?delay=%d" % SLOW_MS)
        try:
            def parallel():
                t0 = time.monotonic()
                r = st.get(srv.port, "/?n=8", timeout=30)
                took = time.monotonic() - t0
                if r.status != 200 or len(r.body) != 8 * SIZE:
                    return "answered %r" % r
                if took >= 8 * SLOW_MS / 1000:
                    return "took %.2f s: the 8 calls ran one after the other" % took
            t.check("fanout: 8 calls of %d ms each run at once" % SLOW_MS, parallel)
        finally:
            srv.stop()

        # ---- a failing upstream
        closed = st.free_port()
        for app in ("proxy", "fanout"):
            for what, url, extra, status in (
                    ("a 503 answer", base + "?status=503", (), 502),
                    ("a refused connection", "http://127.0.0.1:%d/" % closed, (), 502),
                    ("a stall past --upstream-timeout 300", base + "?stall=1",
                     ("--upstream-timeout", "300"), 504)):
                srv = ref.start(app, url, extra)
                try:
                    def failing():
                        r = st.get(srv.port, timeout=30)
                        if r.status != status or not r.body:
                            return "answered %r, expected %d with a reason" % (r, status)
                    t.check("%s: %s gives %d" % (app, what, status), failing)
                finally:
                    srv.stop()
        return t.finish()
    finally:
        if up is not None:
            up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    st.main_guard(main)
