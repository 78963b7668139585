#!/usr/bin/env python3
"""test_limits.py — a worker's live counters and its behaviour at resource
limits, for either server binary (coro-server or async-server):

  SIGUSR1      to the master (forwarded) or to a worker: one "stats" line
               per worker whose counts match a known state (idle keep-alive
               connections, a request waiting on a stalled upstream, and
               nothing left over after the upstream timeout: no leaked fetch)
  stats-path   --stats-path PATH answers the counters as JSON; without the
               flag the same path reaches the app
  fd limit     under a low RLIMIT_NOFILE the worker pauses accept, logs one
               line for the episode (not one per attempt), and serves again
               once descriptors are free
  coroutines   (coro-server) --max-coroutines caps live coroutines, says so
               once, and resumes when one ends

Usage:
    python3 test_limits.py --server PATH --upstream-bin PATH [--only REGEX]

TAP on stdout. Standard library only; every process is stopped by its PID.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvtest as st  # noqa: E402

STATS_RE = re.compile(r"^(\S+)\[(\d+)\]: stats (.*)$")
FD_RE = re.compile(r"out of file descriptors")
CAP_RE = re.compile(r"coroutine cap reached")


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def h2_get(path):
    """Preface, SETTINGS and a GET on stream 1 (HPACK: indexed :method GET
    and :scheme http, literal :path and :authority, no Huffman)."""
    def lit(index, value):
        v = value.encode()
        return bytes([index, len(v)]) + v
    block = b"\x82\x86" + lit(4, path) + lit(1, "127.0.0.1")
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0) +
            h2_frame(1, 0x5, 1, block))  # HEADERS, END_STREAM | END_HEADERS


def h2_read_until_end(sock, timeout=5.0):
    """Read frames until stream 1 ends (END_STREAM or RST_STREAM)."""
    buf = b""
    sock.settimeout(timeout)
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            ftype, flags = buf[3], buf[4]
            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            buf = buf[9 + n:]
            if stream == 1 and (ftype == 3 or (ftype in (0, 1) and flags & 1)):
                return True
        chunk = sock.recv(65536)
        if not chunk:
            return False
        buf += chunk


def parse_stats(line):
    m = STATS_RE.match(line)
    if not m:
        return None
    out = {"prog": m.group(1), "pid": int(m.group(2))}
    for kv in m.group(3).split():
        k, _, v = kv.partition("=")
        out[k] = int(v)
    return out


class Suite:
    def __init__(self, a):
        self.bin = a.server
        self.upbin = a.upstream_bin
        self.coro = "coro" in os.path.basename(self.bin)
        self.only = re.compile(a.only) if a.only else None
        self.t = st.Tap()
        self.up = None
        self.started = []

    def check(self, name, fn, *args, **kw):
        if self.only and not self.only.search(name):
            return None
        return self.t.check(name, fn, *args, **kw)

    def start(self, app="hello", workers=1, extra=(), upstream=None):
        args = ["--workers", str(workers), "--app", app, "--graceful-timeout", "5",
                "--upstream", upstream or self.upurl(), *extra]
        srv = st.start_server(self.bin, args)
        self.started.append(srv)
        if not srv.ready_ok:
            out = srv.text()
            srv.stop()
            raise AssertionError(f"server did not start ({' '.join(args)}):\n{out}")
        if not srv.wait_workers(workers):
            raise AssertionError(f"{workers} workers did not come up:\n{srv.text()}")
        return srv

    def upurl(self, query=""):
        return f"http://127.0.0.1:{self.up.port}/{query}"

    @staticmethod
    def usr1(srv, pid=None, want=1, timeout=5.0):
        """Signal srv (or one worker); the stats lines that follow, parsed."""
        before = len(srv.output())
        os.kill(pid or srv.pid, signal.SIGUSR1)

        def new_lines():
            got = [parse_stats(l) for l in srv.output()[before:]]
            got = [g for g in got if g]
            return got if len(got) >= want else None
        got = st.wait_until(new_lines, timeout)
        if not got:
            raise AssertionError(f"no stats line after SIGUSR1:\n{srv.text()}")
        return got

    def stats_until(self, srv, pred, timeout=5.0):
        """SIGUSR1 until pred(stats) holds; the last stats seen."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.usr1(srv)[-1]
            if pred(s) or time.monotonic() >= deadline:
                return s
            time.sleep(0.05)

    # ---- SIGUSR1

    def sigusr1(self):
        with self.start(workers=2) as srv:
            kids = srv.workers()

            def to_master():
                got = self.usr1(srv, want=2)
                pids = sorted(g["pid"] for g in got)
                if pids != kids:
                    return f"stats lines from {pids}, workers are {kids}"
                keys = ["conns", "inflight", "streams", "fetches", "coros", "stack_pool",
                        "requests"]
                for g in got:
                    missing = [k for k in keys if k not in g]
                    if missing:
                        return f"keys {missing} missing in {g}"
                    if g["prog"] != os.path.basename(self.bin):
                        return f"line names {g['prog']!r}"
                    if not self.coro and (g["coros"] or g["stack_pool"]):
                        return f"async worker reports coroutines: {g}"
                if srv.workers() != kids or srv.proc.poll() is not None:
                    return "SIGUSR1 killed a process"
                return None
            self.check("SIGUSR1 to the master: one stats line per worker, all keys, "
                       "nobody dies", to_master)

        with self.start(workers=1) as srv:
            (wpid,) = srv.workers()

            def idle_conns():
                conns = []
                try:
                    for _ in range(5):
                        c = st.Conn(srv.port)
                        r = c.request()
                        if r.status != 200:
                            return f"status {r.status}"
                        conns.append(c)
                    s = self.stats_until(srv, lambda s: s["conns"] == 5)
                    if (s["conns"], s["inflight"], s["fetches"]) != (5, 0, 0):
                        return f"5 idle keep-alive connections: {s}"
                    if s["requests"] < 5:
                        return f"requests={s['requests']} after 5 served"
                    if self.coro and s["coros"] != 5:
                        return f"coros={s['coros']} with 5 connections"
                finally:
                    for c in conns:
                        c.close()
                s = self.stats_until(srv, lambda s: s["conns"] == 0)
                if (s["conns"], s["inflight"], s["coros"]) != (0, 0, 0):
                    return f"after closing them all: {s}"
                if self.coro and s["stack_pool"] < 1:
                    return f"no stack back in the pool: {s}"
                return None
            self.check("SIGUSR1: 5 idle keep-alive connections -> conns=5, then 0 "
                       "after they close", idle_conns)

            def to_worker():
                (g,) = self.usr1(srv, pid=wpid)
                return None if g["pid"] == wpid else f"line from {g['pid']}, not {wpid}"
            self.check("SIGUSR1 straight to a worker: its own line", to_worker)

        # A request waiting on an upstream that never answers holds one
        # fetch; the upstream timeout ends it and nothing is left.
        with self.start(app="proxy-async", upstream=self.upurl("?stall=1"),
                        extra=["--upstream-timeout", "1500"]) as srv:
            def stalled_fetch():
                res = {}

                def client():
                    try:
                        res["r"] = st.get(srv.port, timeout=10)
                    except Exception as e:  # noqa: BLE001
                        res["e"] = e
                th = threading.Thread(target=client, daemon=True)
                th.start()
                s = self.stats_until(srv, lambda s: s["fetches"] == 1, timeout=1.2)
                if (s["fetches"], s["inflight"], s["conns"]) != (1, 1, 1):
                    return f"while the upstream stalls: {s}"
                th.join(10)
                if "r" not in res:
                    return f"no answer: {res.get('e')}"
                if res["r"].status != 504:
                    return f"status {res['r'].status}, want 504"
                s = self.stats_until(srv, lambda s: s["conns"] == 0 and s["fetches"] == 0)
                if (s["fetches"], s["inflight"], s["conns"], s["coros"]) != (0, 0, 0, 0):
                    return f"after the timeout: {s} (leaked?)"
                return None
            self.check("SIGUSR1: proxy-async on a stalled upstream -> fetches=1, then 0 "
                       "after the 504 (no leaked fetch)", stalled_fetch)

            def h2_stream_gone():
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                try:
                    sock.sendall(h2_get("/"))
                    s = self.stats_until(srv, lambda s: s["fetches"] == 1, timeout=1.2)
                    if (s["streams"], s["fetches"], s["inflight"], s["conns"]) != (1, 1, 1, 1):
                        return f"an HTTP/2 stream waiting on the upstream: {s}"
                finally:
                    sock.close()  # the client goes away mid-request
                s = self.stats_until(srv, lambda s: s["conns"] == 0 and s["fetches"] == 0,
                                     timeout=1.0)
                if (s["streams"], s["fetches"], s["inflight"], s["conns"], s["coros"]) != \
                        (0, 0, 0, 0, 0):
                    return f"after the client left (before the upstream timeout): {s}"
                return None
            self.check("SIGUSR1: an HTTP/2 stream on a stalled upstream -> streams=1 "
                       "fetches=1; the client leaves -> all 0 at once", h2_stream_gone)

        with self.start(extra=["--keepalive-timeout", "30"]) as srv:
            def h2_close_after_last_frame():
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                try:
                    sock.sendall(h2_get("/"))
                    if not h2_read_until_end(sock):
                        return "no answer on stream 1"
                    # A last frame (a SETTINGS ACK) and the FIN in one
                    # segment (corked), so the server sees both in one
                    # readiness edge and its read of the frame is short.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    sock.sendall(h2_frame(4, 1, 0))
                finally:
                    sock.close()
                s = self.stats_until(srv, lambda s: s["conns"] == 0, timeout=1.0)
                if (s["conns"], s["streams"], s["coros"]) != (0, 0, 0):
                    return f"1 s after the client closed (keep-alive timeout 30 s): {s}"
                return None
            def h1_request_and_fin():
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    sock.sendall(st.build_request())
                    sock.shutdown(socket.SHUT_WR)  # the FIN rides with the request
                    data = b""
                    while True:
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data.startswith(b"HTTP/1.1 200"):
                        return f"answer {data[:60]!r}"
                finally:
                    sock.close()
                s = self.stats_until(srv, lambda s: s["conns"] == 0, timeout=1.0)
                return None if s["conns"] == 0 else f"1 s later: {s}"
            self.check("SIGUSR1: an HTTP/1.1 request and its FIN in one segment: answered, "
                       "then the connection ends at once", h1_request_and_fin)

            self.check("SIGUSR1: an HTTP/2 client's last frame and FIN in one segment end "
                       "the connection at once (conns=0)", h2_close_after_last_frame)

    # ---- --stats-path

    def stats_path(self):
        with self.start(extra=["--stats-path", "/_stats"]) as srv:
            (wpid,) = srv.workers()

            def json_answer():
                r = st.get(srv.port, "/_stats")
                if r.status != 200:
                    return f"status {r.status}"
                ct = r.header("content-type") or ""
                if "json" not in ct:
                    return f"content-type {ct!r}"
                d = json.loads(r.body)
                if d.get("pid") != wpid:
                    return f"pid {d.get('pid')}, worker is {wpid}"
                # The stats request itself is the one connection and request.
                if (d["conns"], d["inflight"], d["fetches"]) != (1, 1, 0):
                    return f"counts {d}"
                for k in ("streams", "coros", "stack_pool", "requests", "accept_pauses"):
                    if not isinstance(d.get(k), int):
                        return f"{k} missing: {d}"
                return None
            self.check("--stats-path /_stats: JSON with the worker's counters", json_answer)

            def others_reach_app():
                for path in ("/", "/_stats/x", "/_statsx"):
                    r = st.get(srv.port, path)
                    if r.status != 200 or r.body != b"Hello, World!":
                        return f"{path}: {r!r}"
                return None
            self.check("--stats-path: every other path still reaches the app",
                       others_reach_app)

        with self.start() as srv:
            def off_by_default():
                r = st.get(srv.port, "/_stats")
                return None if r.body == b"Hello, World!" else f"{r!r}"
            self.check("without --stats-path, /_stats is the app's", off_by_default)

        def bad_path():
            out = st.start_server(self.bin, ["--stats-path", "x"], ready_timeout=3)
            self.started.append(out)
            rc = out.wait(5)
            text = out.text()
            out.stop()
            if rc != 2 or "stats-path" not in text:
                return f"rc {rc}: {text}"
            return None
        self.check("--stats-path without a leading '/' is refused (exit 2)", bad_path)

    # ---- file descriptors

    def fd_limit(self):
        with self.start(extra=["--keepalive-timeout", "30"]) as srv:
            (wpid,) = srv.workers()
            limit = 48
            resource.prlimit(wpid, resource.RLIMIT_NOFILE, (limit, limit))

            def exhaust():
                socks = []
                try:
                    # More than the worker can hold: the rest wait in the
                    # backlog (the kernel completes their handshake).
                    for _ in range(limit + 20):
                        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                        socks.append(s)
                    found = st.wait_until(
                        lambda: [l for l in srv.output() if FD_RE.search(l)], 5)
                    if not found:
                        return f"no 'out of file descriptors' line:\n{srv.text()}"
                    time.sleep(0.6)  # several 100 ms retries, still out
                    lines = [l for l in srv.output() if FD_RE.search(l)]
                    if len(lines) != 1:
                        return f"{len(lines)} lines for one episode:\n" + "\n".join(lines)
                    if "pausing accept" not in lines[0] or "open" not in lines[0]:
                        return f"line: {lines[0]}"
                    if not st.pid_alive(wpid):
                        return "the worker died"
                finally:
                    for s in socks:
                        s.close()
                # Descriptors free again: a request is served.
                r = st.wait_until(lambda: _try_get(srv.port), 10, step=0.1)
                if not r or r.status != 200:
                    return f"no answer after the clients closed: {r}"
                resumed = st.wait_until(
                    lambda: [l for l in srv.output() if "accepting" in l and "again" in l], 3)
                if len(resumed or []) != 1:
                    return f"resume lines: {resumed}"
                s = self.stats_until(srv, lambda s: s["accept_pauses"] == 1)
                if s["accept_pauses"] != 1:
                    return f"accept_pauses={s['accept_pauses']}"
                if st.children_of(srv.pid) != [wpid]:
                    return "the worker was replaced"
                return None
            self.check(f"fd limit {limit}: accept pauses with one log line, serves again "
                       "when descriptors free up", exhaust)

            def cpu_calm():
                # A second episode, held for a second: no busy loop meanwhile.
                socks = []
                try:
                    for _ in range(limit + 10):
                        socks.append(socket.create_connection(("127.0.0.1", srv.port),
                                                              timeout=5))
                    st.wait_until(lambda: len([l for l in srv.output()
                                               if FD_RE.search(l)]) == 2, 5)
                    t0 = _cpu_ticks(wpid)
                    time.sleep(1.0)
                    used = _cpu_ticks(wpid) - t0
                    lines = [l for l in srv.output() if FD_RE.search(l)]
                    if len(lines) != 2:
                        return f"{len(lines)} lines after two episodes"
                    tick = os.sysconf("SC_CLK_TCK")
                    if used > 0.3 * tick:
                        return f"worker used {used / tick:.2f} s of CPU in 1 s while paused"
                finally:
                    for s in socks:
                        s.close()
                r = st.wait_until(lambda: _try_get(srv.port), 10, step=0.1)
                return None if r and r.status == 200 else f"no answer afterwards: {r}"
            self.check("fd limit: paused accept does not spin (CPU < 30% over 1 s), "
                       "second episode logs once more", cpu_calm)

    # ---- the coroutine cap (coro-server)

    def coro_cap(self):
        if not self.coro:
            return
        with self.start(extra=["--max-coroutines", "3", "--keepalive-timeout", "30"]) as srv:
            def capped():
                conns = []
                try:
                    for _ in range(3):
                        c = st.Conn(srv.port)
                        if c.request().status != 200:
                            return "no answer below the cap"
                        conns.append(c)
                    extra = st.Conn(srv.port, timeout=5)
                    conns.append(extra)
                    extra.send(st.build_request())
                    if not extra.at_eof(0.5) and extra.buf:
                        return f"answered beyond the cap: {extra.buf[:60]!r}"
                    s = self.usr1(srv)[-1]
                    if s["coros"] != 3:
                        return f"coros={s['coros']} at a cap of 3"
                    lines = [l for l in srv.output() if CAP_RE.search(l)]
                    if len(lines) != 1:
                        return f"{len(lines)} cap lines: {lines}"
                    conns.pop(0).close()
                    r = extra.read_response()
                    if r.status != 200:
                        return f"status {r.status} once a coroutine ended"
                    return None
                finally:
                    for c in conns:
                        c.close()
            self.check("--max-coroutines 3: a 4th connection waits, one log line, "
                       "served when one ends", capped)

    def logs_clean(self):
        bad = []
        for srv in self.started:
            for line in srv.output():
                if "Sanitizer" in line or "runtime error" in line or "died" in line \
                        or "killed by" in line:
                    bad.append(line)
        return "\n".join(bad[:20]) or None

    def run(self):
        st.raise_nofile()
        self.up = st.start_server(self.upbin, [])
        if not self.up.ready_ok:
            self.t.ok(False, "upstream stub starts", self.up.text())
            self.up.stop()
            return self.t.finish()
        try:
            for section in (self.sigusr1, self.stats_path, self.fd_limit, self.coro_cap):
                try:
                    section()
                except Exception as e:  # noqa: BLE001
                    self.t.ok(False, f"section {section.__name__} ran to its end", f"{e}")
        finally:
            for srv in self.started:
                srv.stop()
            self.up.stop()
        self.t.check(f"logs: no sanitizer report or worker death in {len(self.started)} "
                     "server runs", self.logs_clean)
        return self.t.finish()


def _try_get(port):
    try:
        return st.get(port, "/", timeout=2)
    except OSError:
        return None


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="coro-server or async-server binary")
    ap.add_argument("--upstream-bin", required=True, help="the upstream stub binary")
    ap.add_argument("--only", help="run only the checks whose name matches this regex")
    return Suite(ap.parse_args()).run()


if __name__ == "__main__":
    st.main_guard(main)
