#!/usr/bin/env python3
"""test_hostile_h2.py — hostile HTTP/2 clients against one server binary
(coro-server or async-server), frame by frame over raw sockets on 127.0.0.1:

  preface      a bad, a short and a truncated client preface; frames before
               the client's SETTINGS
  frames       a frame over SETTINGS_MAX_FRAME_SIZE, unknown frame types (to be
               ignored), a SETTINGS frame with too many entries
  floods       PING and SETTINGS floods never read, CONTINUATION floods (the
               2024 class: header fields, empty frames, HPACK amplification)
  headers      an invalid HPACK block (COMPRESSION_ERROR), header lists over
               the server's limits (431 on the stream)
  streams      streams beyond --h2-max-streams (REFUSED_STREAM), rapid reset
               (HEADERS + RST_STREAM in a loop, CVE-2023-44487)
  window       a client that opens no flow-control window and never sends
               WINDOW_UPDATE: the connection is cut, others are not slowed
  bodies       POST over --max-body (413 on the stream), DATA on a closed or
               idle stream, DATA after an early 413
  upgrade      h2c with malformed HTTP2-Settings (served as HTTP/1.1), an
               upgrade followed by garbage instead of the preface

Each case sends its hostile input and checks the answer (GOAWAY with the
right code, RST_STREAM, a status, or a close) within a bounded time. Then the
same worker (same PID) must serve a normal HTTP/1.1 request and a normal h2
request, and once the hostile connection is gone its live counters
(--stats-path) must be back to one connection (the stats request), no open
stream, no request in flight, no upstream fetch and as many coroutines as
before. The servers: echo, and proxy-async in front of fakeup.py, whose
schedule makes a stream's work last (stall until cancelled, slow:MS).

    python3 test_hostile_h2.py --server PATH [--upstream-bin PATH] [--only REGEX]

Prints TAP; exits non-zero when any check fails. Known server bugs are listed
in XFAIL and reported as "# TODO" (see tests/hostile/README.md). Standard
library only: frames and HPACK are built by hand.
"""

import argparse
import json
import os
import re
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import srvtest as st  # noqa: E402
from fakeup import BODY, FakeUpstream  # noqa: E402

KA = 2  # --keepalive-timeout, seconds
MAX_BODY = 16384  # below the initial stream window: a body over it needs no WINDOW_UPDATE
MAX_STREAMS = 8

from h2wire import *  # noqa: E402,F401,F403 (frames, HPACK, the H2 client)

# Known server bugs (results/HISTORY.md, "HTTP/2 findings"): (servers, check regex, why).
# W1 (a zero flow-control window held the connection forever) is fixed.
XFAIL = []
if os.environ.get("COROBENCH_HOSTILE_STRICT") == "1":
    XFAIL = []


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return -1.0


class Prober:
    """Another client meanwhile: an HTTP/2 request on a fresh connection
    every `every` seconds, each latency recorded (in a thread)."""

    def __init__(self, port, path, every=0.1):
        self.port, self.path, self.every = port, path, every
        self.lat, self.errors = [], []
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            try:
                status, _ = h2_request(self.port, "GET", self.path)
                if status != 200:
                    self.errors.append(f"status {status}")
                self.lat.append(time.monotonic() - t0)
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{type(e).__name__}: {e}")
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        self.th.join(timeout=10)
        return self

    def verdict(self, limit=1.0):
        if self.errors:
            return f"another h2 client failed meanwhile: {self.errors[:3]}"
        if not self.lat:
            return "another h2 client got no answer meanwhile"
        if max(self.lat) > limit:
            return (f"another h2 client waited {max(self.lat) * 1000:.0f} ms meanwhile "
                    f"(limit {limit * 1000:.0f} ms)")
        return None

    def summary(self):
        if not self.lat:
            return "no requests"
        return f"{len(self.lat)} requests, max {max(self.lat) * 1000:.1f} ms"


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, a):
        self.bin = a.server
        self.kind = "async" if "async" in os.path.basename(self.bin) else "coro"
        self.only = re.compile(a.only) if a.only else None
        self.t = st.Tap()
        self.started = []
        self.fake = None  # the upstream of proxy-async: its schedule makes work last

    # ---- plumbing

    def check(self, name, fn, *args, **kw):
        if self.only and not self.only.search(name):
            return None
        why = next((w for kinds, pat, w in XFAIL if self.kind in kinds and re.search(pat, name)),
                   None)
        if why is None:
            return self.t.check(name, fn, *args, **kw)
        try:
            res = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001
            res = f"{type(e).__name__}: {e}"
        self.t.n += 1
        if res is None or res is True:
            print(f"ok {self.t.n} - {name}", flush=True)
            print(f"# known-bug entry now passes, remove it from XFAIL: {why}", flush=True)
        else:
            print(f"not ok {self.t.n} - {name} # TODO {why}", flush=True)
            for line in str(res).splitlines():
                print(f"#   {line}", flush=True)
        return None

    def saw(self, what):
        self.t.note(f"  answered: {what}")

    def start(self, app, extra=()):
        args = ["--workers", "1", "--app", app, "--graceful-timeout", "5", "--quiet",
                "--keepalive-timeout", str(KA), "--max-body", str(MAX_BODY),
                "--h2-max-streams", str(MAX_STREAMS), "--stats-path", "/_stats"] + list(extra)
        if app == "proxy-async":
            if self.fake is None:
                self.fake = FakeUpstream()
            args += ["--upstream", self.fake.url()]
        srv = st.start_worker(self.bin, args)
        self.started.append(srv)
        srv.app = app
        self.h1_ok(srv)
        self.h2_ok(srv)
        time.sleep(0.1)
        srv.base = self.stats(srv)
        srv.base_fds = st.fd_count(srv.wpid)
        return srv

    @staticmethod
    def stats(srv):
        r = st.get(srv.port, "/_stats", timeout=5)
        if r.status != 200:
            raise AssertionError(f"/_stats: {r!r}")
        return json.loads(r.body)

    @staticmethod
    def h1_ok(srv):
        if srv.app == "echo":
            r = st.get(srv.port, "/", method="POST", body=b"h1 ping", timeout=5)
            ok = r.status == 200 and r.body == b"h1 ping"
        else:
            r = st.get(srv.port, "/", timeout=5)
            ok = r.status == 200 and r.body == BODY
        if not ok:
            raise AssertionError(f"a normal HTTP/1.1 request: {r!r}")

    @staticmethod
    def h2_ok(srv):
        if srv.app == "echo":
            status, body = h2_request(srv.port, "POST", "/", b"h2 ping")
            ok = status == 200 and body == b"h2 ping"
        else:
            status, body = h2_request(srv.port, "GET", "/")
            ok = status == 200 and body == BODY
        if not ok:
            raise AssertionError(f"a normal h2 request: status {status}, body {body[:80]!r}")

    def after(self, srv, settle=5.0):
        """The same worker serves HTTP/1.1 and h2, and once the hostile
        connection is gone nothing of it is left."""
        if srv.proc.poll() is not None:
            raise AssertionError(f"master exited {srv.proc.returncode}:\n{srv.text()[-2000:]}")
        if srv.workers() != srv.kids:
            raise AssertionError(f"worker died: {srv.kids} -> {srv.workers()}:\n"
                                 f"{srv.text()[-2000:]}")
        self.h1_ok(srv)
        self.h2_ok(srv)
        keys = ("conns", "inflight", "streams", "fetches", "coros")
        want = {k: srv.base[k] for k in keys}
        last = {}

        def clean():
            s = self.stats(srv)
            last.update(s)
            return all(s[k] == want[k] for k in keys)
        if not st.wait_until(clean, settle, step=0.1):
            got = {k: last.get(k) for k in keys}
            return f"live counters did not come back: {got}, want {want}"
        if srv.app == "proxy-async":
            return None  # libcurl keeps upstream connections: fds are no measure there
        fds = st.wait_until(lambda: st.fd_count(srv.wpid) <= srv.base_fds, 2.0, step=0.05)
        if not fds:
            return f"worker fds {st.fd_count(srv.wpid)}, {srv.base_fds} before"
        return None

    def case(self, srv, name, fn):
        def run():
            if self.fake:
                self.fake.set_schedule([], then="ok")
            res = fn(srv)
            if self.fake:
                self.fake.set_schedule([], then="ok")
            if res:
                return res
            return self.after(srv)
        self.check(name, run)

    # ---- preface

    def preface(self, srv):
        def bad(srv):
            # "PRI * HTTP/2.0" then wrong: not the preface, so HTTP/1.1 (400).
            with st.Conn(srv.port, timeout=5) as c:
                c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
                data, closed = b"", False
                c.sock.settimeout(3)
                try:
                    while True:
                        d = c.sock.recv(65536)
                        if not d:
                            closed = True
                            break
                        data += d
                except OSError:
                    closed = True
            self.saw(f"bad preface: {data[:40]!r}, {'closed' if closed else 'open'}")
            if data and not data.startswith(b"HTTP/1.1 4"):
                return f"a 4xx or a close, got {data[:80]!r}"
            if not closed:
                return "connection left open"
        self.case(srv, "preface: 'PRI * HTTP/2.0' then a wrong rest gets an HTTP/1.1 4xx "
                  "or a close", bad)

        def short(srv):
            with H2(srv.port) as c:
                c.send(PREFACE[:10])
                t0 = time.monotonic()
                ok = c.closed_within(2 * KA + 2)
                dt = time.monotonic() - t0
            self.saw(f"short preface: closed after {dt:.1f} s" if ok else "short preface: open")
            if not ok:
                return f"10 bytes of the preface, then silence: still open after {dt:.1f} s"
        self.case(srv, f"preface: 10 bytes of it then silence: closed within {2 * KA + 2} s",
                  short)

        def cut(srv):
            with H2(srv.port) as c:
                c.send(PREFACE[:20])
                c.sock.shutdown(socket.SHUT_WR)
                ok = c.closed_within(3)
            if not ok:
                return "20 bytes of the preface then EOF: not closed"
        self.case(srv, "preface: 20 bytes of it then EOF: closed", cut)

        def garbage(srv):
            with H2(srv.port) as c:
                c.send(PREFACE + b"\x00\x00\x00garbage garbage garbage")
                code, dt = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"preface + garbage: GOAWAY {ename(code) if code is not None else None}, "
                     f"{'closed' if closed else 'open'}")
            if code not in (PROTOCOL_ERROR, FRAME_SIZE_ERROR) and not closed:
                return f"GOAWAY {code}, and the connection stays open"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "preface then garbage instead of SETTINGS: GOAWAY(PROTOCOL_ERROR), "
                  "close", garbage)

        def no_settings(srv):
            with H2(srv.port) as c:
                c.send(PREFACE + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                       req_block("POST", "/")))
                code, dt = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"HEADERS before SETTINGS: GOAWAY {ename(code) if code is not None else None}")
            if code != PROTOCOL_ERROR:
                return f"GOAWAY {code}, want PROTOCOL_ERROR"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "frames before the client's SETTINGS: GOAWAY(PROTOCOL_ERROR), close",
                  no_settings)

    # ---- frames

    def frames(self, srv):
        def oversized(srv, ftype, stream, n):
            with H2(srv.port) as c:
                c.handshake()
                c.try_send(frame(ftype, 0, stream, b"\x00" * n))
                code, dt = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"frame type {ftype}, {n} B: GOAWAY "
                     f"{ename(code) if code is not None else None}")
            if code != FRAME_SIZE_ERROR:
                return f"GOAWAY {code}, want FRAME_SIZE_ERROR (6)"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "a DATA frame of 16385 B (over SETTINGS_MAX_FRAME_SIZE): "
                  "GOAWAY(FRAME_SIZE_ERROR)", lambda s: oversized(s, DATA, 1, 16385))
        self.case(srv, "a HEADERS frame of 1 MiB: GOAWAY(FRAME_SIZE_ERROR)",
                  lambda s: oversized(s, HEADERS, 1, 1 << 20))
        self.case(srv, "a PING of 9 B: GOAWAY(FRAME_SIZE_ERROR)",
                  lambda s: oversized(s, PING, 0, 9))

        def unknown(srv):
            with H2(srv.port) as c:
                c.handshake()
                junk = b"".join(frame(t, 0xFF, sid, os.urandom(64))
                                for t in (0x0A + 0x20, 0x42, 0xFF) for sid in (0, 1, 7))
                c.send(junk + frame(HEADERS, END_HEADERS, 1, req_block("POST", "/")) +
                       frame(0x77, 0, 1, b"inside a stream") +
                       frame(DATA, END_STREAM, 1, b"still here"))
                status, body, code, gone = c.answer(1)
            self.saw(f"unknown frame types: stream answered {status} {body!r}")
            if (status, body, code, gone) != (200, b"still here", None, None):
                return f"status {status} body {body!r} RST {code} GOAWAY {gone}"
        self.case(srv, "unknown frame types (on stream 0, idle and open streams) are "
                  "ignored: the request around them is served", unknown)

        def many_settings(srv):
            with H2(srv.port) as c:
                c.send(PREFACE + settings(*[(S_ENABLE_PUSH, 0)] * 100))
                code, dt = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"SETTINGS with 100 entries: GOAWAY "
                     f"{ename(code) if code is not None else None}")
            if code is None:
                return "no GOAWAY"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "a SETTINGS frame with 100 entries: GOAWAY (nghttp2 takes 32)",
                  many_settings)

    # ---- floods

    def _flood(self, srv, unit, count, what):
        """Send count copies of unit as fast as the server takes them,
        reading nothing; then read. The server must end it (GOAWAY or a
        close) or take it all, stay bounded in memory, and serve another
        client meanwhile."""
        probe = Prober(srv.port, "/")
        rss0 = rss_kib(srv.wpid)
        peak = rss0
        t0 = time.monotonic()
        with H2(srv.port) as c:
            c.ready()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.sock.settimeout(0.5)
            batch = unit * max(1, 65536 // len(unit))
            per = len(batch) // len(unit)
            sent, stalled, broken = 0, 0, False
            while sent < count and time.monotonic() - t0 < 3 * KA + 2:
                try:
                    c.sock.sendall(batch)
                    sent += per
                except socket.timeout:
                    stalled += 1  # the server stopped reading: backpressure
                except OSError:
                    broken = True
                    break
                peak = max(peak, rss_kib(srv.wpid))
            dt_send = time.monotonic() - t0
            code, _ = c.goaway(2 * KA + 3)
            closed = c.closed_within(2 * KA + 3)
            dt = time.monotonic() - t0
        probe.stop()
        peak = max(peak, rss_kib(srv.wpid))
        verdict = (f"GOAWAY({ename(code)})" if code is not None else "no GOAWAY") + \
            (", closed" if closed else ", open") + \
            f" after {dt:.1f} s; sent {sent} {what} in {dt_send:.1f} s" + \
            (" (send failed: reset)" if broken else "") + \
            f"; RSS {rss0} -> {peak} KiB; other client {probe.summary()}"
        self.saw(f"{what} flood: {verdict}")
        if code != ENHANCE_YOUR_CALM:
            return f"want GOAWAY(ENHANCE_YOUR_CALM): {verdict}"
        if not closed:
            return f"not closed after the GOAWAY: {verdict}"
        if peak - rss0 > 64 * 1024:
            return f"worker RSS grew {(peak - rss0) // 1024} MiB"
        return probe.verdict()

    def floods(self, srv):
        self.case(srv, "PING flood (200,000 PINGs, answers never read): GOAWAY"
                  "(ENHANCE_YOUR_CALM), close, bounded memory, others served",
                  lambda s: self._flood(s, frame(PING, 0, 0, b"12345678"), 200000, "PING"))
        self.case(srv, "SETTINGS flood (200,000 SETTINGS, ACKs never read): GOAWAY"
                  "(ENHANCE_YOUR_CALM), close, bounded memory, others served",
                  lambda s: self._flood(s, settings((S_INITIAL_WINDOW_SIZE, 65535)), 200000,
                                        "SETTINGS"))

        def ping_pong(srv, with_requests):
            """PINGs one at a time, each ACK read (a client that keeps an idle
            connection alive, or costs the server an answer per frame)."""
            n, sid, acks, code = 300, 1, 0, None
            t0 = time.monotonic()
            with H2(srv.port) as c:
                c.ready(auto_ack=True)
                for i in range(n):
                    if with_requests and i % 50 == 49:
                        c.send(frame(HEADERS, END_HEADERS, sid, req_block("POST", "/")) +
                               frame(DATA, END_STREAM, sid, b"r"))
                        if c.answer(sid)[:2] != (200, b"r"):
                            return f"request {sid} between the PINGs failed"
                        sid += 2
                    if not c.try_send(frame(PING, 0, 0, struct.pack(">Q", i))):
                        break
                    f = c.until(lambda f: f[0] in (PING, GOAWAY), 2)
                    if f is None:
                        break
                    if f[0] == GOAWAY:
                        code = int.from_bytes(f[3][4:8], "big")
                        break
                    acks += 1
                closed = c.closed_within(3) if code is not None else None
            dt = time.monotonic() - t0
            self.saw(f"ping-pong{' with a request every 50' if with_requests else ''}: {acks} "
                     f"ACKs, GOAWAY {ename(code) if code is not None else None} after "
                     f"{dt:.1f} s")
            if with_requests:
                if code is not None or acks != n:
                    return f"{acks} of {n} PINGs answered, GOAWAY {code}"
                return None
            if code != ENHANCE_YOUR_CALM:
                return f"{acks} PINGs answered one by one, GOAWAY {code}"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "300 PINGs one at a time, ACKs read, no request: "
                  "GOAWAY(ENHANCE_YOUR_CALM) after 100 (they would hold the connection "
                  "open forever)", lambda s: ping_pong(s, False))
        self.case(srv, "300 PINGs one at a time with a request every 50: all answered, "
                  "no GOAWAY", lambda s: ping_pong(s, True))

        def continuation(srv, first, unit, limit_bytes, what):
            """HEADERS without END_HEADERS, then CONTINUATION frames without it
            for as long as the server takes them (up to limit_bytes)."""
            rss0, peak = rss_kib(srv.wpid), 0
            cpu0 = proc_cpu(srv.wpid)
            probe = Prober(srv.port, "/")
            t0 = time.monotonic()
            with H2(srv.port) as c:
                c.ready()
                c.sock.settimeout(0.5)
                c.send(frame(HEADERS, 0, 1, first))
                batch = frame(CONTINUATION, 0, 1, unit) * max(1, 65536 // (9 + len(unit)))
                sent, broken, code = 0, False, None
                while sent < limit_bytes and time.monotonic() - t0 < 8:
                    try:
                        c.sock.sendall(batch)
                        sent += len(batch)
                    except socket.timeout:
                        continue
                    except OSError:
                        broken = True
                        break
                    peak = max(peak, rss_kib(srv.wpid))
                    if sent % (1 << 20) < len(batch):
                        # Anything from the server yet?
                        g = c.until(lambda f: f[0] == GOAWAY, 0.001)
                        if g is not None or c.eof:
                            code = int.from_bytes(g[3][4:8], "big") if g else None
                            break
                if code is None:
                    code, _ = c.goaway(2)
                closed = c.closed_within(3)
            dt = time.monotonic() - t0
            probe.stop()
            cpu = proc_cpu(srv.wpid) - cpu0
            verdict = ((f"GOAWAY({ename(code)})" if code is not None else "no GOAWAY") +
                       (", closed" if closed else ", open") +
                       f" after {sent / 1048576:.1f} MiB of CONTINUATION in {dt:.1f} s "
                       f"(worker CPU {cpu:.2f} s, RSS {rss0} -> {max(peak, rss0)} KiB)"
                       + (" (send failed: reset)" if broken else "") +
                       f"; other client {probe.summary()}")
            self.saw(f"CONTINUATION flood ({what}): {verdict}")
            if sent >= limit_bytes and not closed:
                return f"the server took {limit_bytes >> 20} MiB of one header block: {verdict}"
            if not closed:
                return f"not closed: {verdict}"
            if code not in (None, ENHANCE_YOUR_CALM, PROTOCOL_ERROR, COMPRESSION_ERROR):
                return f"GOAWAY {ename(code)}"
            if peak - rss0 > 64 * 1024:
                return f"worker RSS grew {(peak - rss0) // 1024} MiB"
            return probe.verdict()

        field = hp_lit("x-flood", "f" * 4000)
        self.case(srv, "CONTINUATION flood of header fields (CVE-2024-27316 class): the "
                  "header block is cut off (GOAWAY or close) within 16 MiB, others served",
                  lambda s: continuation(s, req_block("POST", "/"), field * 4, 16 << 20,
                                         "4 x 4000 B fields a frame"))
        self.case(srv, "CONTINUATION flood of empty frames (CVE-2024-2758 class): cut off "
                  "within 16 MiB, others served",
                  lambda s: continuation(s, req_block("POST", "/"), b"", 16 << 20,
                                         "empty frames"))
        # One 4000-byte field into the dynamic table, then 1-byte references to
        # it: 16 KiB of block decode to 64 MiB of headers.
        amp = b"\x40" + hp_str("x-amp") + hp_str("a" * 4000)
        self.case(srv, "CONTINUATION flood of 1-byte references to a 4 KB indexed field "
                  "(HPACK amplification): cut off within 4 MiB, others served",
                  lambda s: continuation(s, req_block("POST", "/") + amp, b"\xbe" * 16000,
                                         4 << 20, "indexed references"))
        # Over the concurrency limit, nghttp2 refuses the stream and decodes
        # its header block without any callback.
        def refused_flood(srv):
            with H2(srv.port) as hold:
                hold.handshake()
                # Occupy every stream slot with requests whose body never ends.
                hold.send(b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * i,
                                         req_block("POST", "/")) for i in range(MAX_STREAMS)))
                time.sleep(0.2)
                res = continuation(srv, req_block("POST", "/"), field * 4, 16 << 20,
                                   "on a refused stream")
            return res
        self.case(srv, "CONTINUATION flood on a stream refused over --h2-max-streams "
                  "(decoded without callbacks): cut off within 16 MiB", refused_flood)

    # ---- headers

    def headers(self, srv):
        def bad_hpack(srv, block, what):
            with H2(srv.port) as c:
                c.handshake()
                c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
                code, dt = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"{what}: GOAWAY {ename(code) if code is not None else None}")
            if code != COMPRESSION_ERROR:
                return f"GOAWAY {code}, want COMPRESSION_ERROR (9)"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "HEADERS indexing a missing table entry: GOAWAY(COMPRESSION_ERROR)",
                  lambda s: bad_hpack(s, b"\x82\x86\xff\x80\x01", "index 190"))
        self.case(srv, "HEADERS with an integer overflowing 32 bits: "
                  "GOAWAY(COMPRESSION_ERROR)",
                  lambda s: bad_hpack(s, b"\x82\x86\x7f" + b"\xff" * 10 + b"\x01",
                                      "huge integer"))
        self.case(srv, "HEADERS with a string longer than the block: "
                  "GOAWAY(COMPRESSION_ERROR)",
                  lambda s: bad_hpack(s, b"\x82\x86\x00\x7f\xff\x7fabc", "truncated string"))
        self.case(srv, "HEADERS with a table-size update above SETTINGS_HEADER_TABLE_SIZE: "
                  "GOAWAY(COMPRESSION_ERROR)",
                  lambda s: bad_hpack(s, b"\x3f\xe1\xff\x03\x82\x86", "table size 65536"))

        def too_big(srv, extra, what, split=False):
            with H2(srv.port) as c:
                c.handshake()
                block = req_block("POST", "/", extra)
                if split:
                    parts = [block[i:i + 16000] for i in range(0, len(block), 16000)]
                    data = frame(HEADERS, END_STREAM | (END_HEADERS if len(parts) == 1 else 0),
                                 1, parts[0])
                    for k, p in enumerate(parts[1:], 1):
                        data += frame(CONTINUATION, END_HEADERS if k == len(parts) - 1 else 0,
                                      1, p)
                else:
                    data = frame(HEADERS, END_STREAM | END_HEADERS, 1, block)
                c.send(data)
                status, body, code, gone = c.answer(1)
                after = None
                if gone is None:
                    # The connection must still serve a request.
                    c.send(frame(HEADERS, END_HEADERS, 3, req_block("POST", "/")) +
                           frame(DATA, END_STREAM, 3, b"next"))
                    after = c.answer(3)
            self.saw(f"{what}: status {status}, RST {code}, GOAWAY {gone}; next stream "
                     f"{after[:2] if after else None}")
            if status == 431:
                if after and after[:2] != (200, b"next"):
                    return f"431, but the next stream got {after}"
                return None
            if code is not None or gone not in (None, "EOF"):
                return None  # RST_STREAM / GOAWAY: allowed by the brief
            return f"status {status} body {body[:60]!r}, want 431 or a reset"
        self.case(srv, "a 20 KB header value (over the 8 KB header limit, split over "
                  "CONTINUATION): 431 on the stream, the connection serves on",
                  lambda s: too_big(s, [("x-big", "b" * 20000)], "20 KB header", split=True))
        self.case(srv, "200 header fields (over the limit of 100): 431 on the stream, "
                  "the connection serves on",
                  lambda s: too_big(s, [(f"x-h{i}", "v") for i in range(200)], "200 fields"))

    # ---- request rules (issue 19): what HTTP/1.1 refuses, on a stream

    def messaging(self, srv):
        def one(srv, block, what, want_status=None, want_rst=None, body=None):
            with H2(srv.port) as c:
                c.handshake()
                if body is None:
                    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
                else:
                    c.send(frame(HEADERS, END_HEADERS, 1, block) +
                           frame(DATA, END_STREAM, 1, body))
                status, got, code, gone = c.answer(1)
                after = None
                if gone is None:
                    c.send(frame(HEADERS, END_HEADERS, 3, req_block("POST", "/")) +
                           frame(DATA, END_STREAM, 3, b"next"))
                    after = c.answer(3)
            self.saw(f"{what}: status {status}, RST {ename(code) if code is not None else None}"
                     f", GOAWAY {gone}; next stream {after[:2] if after else None}")
            if want_status is not None and status != want_status:
                return f"status {status} (RST {code}, GOAWAY {gone}), want {want_status}"
            if want_rst is not None and (code != want_rst or status is not None):
                return f"status {status}, RST {code}, GOAWAY {gone}; want RST_STREAM({want_rst})"
            if after is None or after[:2] != (200, b"next"):
                return f"the connection did not serve on: {after}"
        # nghttp2 takes a CONNECT with :authority only (RFC 9113 8.5): ours.
        connect = hp_lit_idx(2, "CONNECT") + hp_lit_idx(1, "a:443")
        self.case(srv, "CONNECT (no :protocol): 405 on the stream, the connection serves on",
                  lambda s: one(s, connect, "CONNECT", want_status=405))
        self.case(srv, "TRACE: 405 on the stream", lambda s: one(s, req_block("TRACE", "/"),
                                                                 "TRACE", want_status=405))
        self.case(srv, "PROPFIND (no app serves it): 501 on the stream",
                  lambda s: one(s, req_block("PROPFIND", "/"), "PROPFIND", want_status=501))
        # nghttp2's HTTP messaging checks (RFC 9113 8.2.2, 8.1.1, 8.3): a
        # stream error, the request never reaches the app.
        ext = hp_lit_idx(2, "CONNECT") + b"\x86" + hp_lit_idx(4, "/") + \
            hp_lit_idx(1, "a") + hp_lit(":protocol", "websocket")
        self.case(srv, "extended CONNECT without SETTINGS_ENABLE_CONNECT_PROTOCOL: "
                  "RST_STREAM(PROTOCOL_ERROR)",
                  lambda s: one(s, ext, ":protocol", want_rst=PROTOCOL_ERROR))
        self.case(srv, "content-length 10 with 3 bytes of DATA: RST_STREAM(PROTOCOL_ERROR)",
                  lambda s: one(s, req_block("POST", "/", [("content-length", "10")]),
                                "content-length mismatch", want_rst=PROTOCOL_ERROR, body=b"abc"))
        for name, value in [("connection", "keep-alive"), ("transfer-encoding", "chunked"),
                            ("upgrade", "h2c"), ("keep-alive", "5"), ("proxy-connection", "x"),
                            ("te", "gzip")]:
            self.case(srv, f"connection-specific field '{name}: {value}': "
                      "RST_STREAM(PROTOCOL_ERROR)",
                      lambda s, n=name, v=value: one(s, req_block("GET", "/", [(n, v)]),
                                                     f"{n}: {v}", want_rst=PROTOCOL_ERROR))
        self.case(srv, "'te: trailers' is allowed: 200",
                  lambda s: one(s, req_block("GET", "/", [("te", "trailers")]), "te: trailers",
                                want_status=200))

    # ---- streams

    def streams(self, srv):
        def beyond(srv, acked):
            """MAX_STREAMS + 4 streams at once. Before the client acknowledged
            the server's SETTINGS the extra ones are refused; after, nghttp2
            treats the excess as a connection error (RFC 9113 5.1.2 allows
            PROTOCOL_ERROR as well as REFUSED_STREAM)."""
            n = MAX_STREAMS + 4
            self.fake.set_schedule(["slow:300"] * n, then="ok")
            reqs = b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i,
                                  req_block("GET", "/")) for i in range(n))
            with H2(srv.port) as c:
                if acked:
                    c.ready(auto_ack=True)
                    c.send(reqs)
                else:
                    c.send(PREFACE + settings((S_HEADER_TABLE_SIZE, 0)) + reqs)
                res = {}
                for i in range(n):
                    sid = 1 + 2 * i
                    res[sid] = c.answer(sid, 5)
                    if res[sid][3] is not None:
                        break
            ok = [s for s, r in res.items() if r[0] == 200 and r[2] is None and r[3] is None]
            refused = [s for s, r in res.items() if r[2] == REFUSED_STREAM]
            gone = [r[3] for r in res.values() if r[3] is not None]
            self.saw(f"{n} streams with --h2-max-streams {MAX_STREAMS}, "
                     f"{'after' if acked else 'before'} the SETTINGS ACK: {len(ok)} answered "
                     f"200, {len(refused)} REFUSED_STREAM, GOAWAY "
                     f"{[ename(g) if isinstance(g, int) else g for g in gone]}")
            if acked and gone and gone[0] == PROTOCOL_ERROR:
                return None
            if len(ok) != MAX_STREAMS or len(refused) != n - MAX_STREAMS:
                return f"answers {res}"
        self.case(srv, f"{MAX_STREAMS + 4} streams at once with --h2-max-streams "
                  f"{MAX_STREAMS}, before the client's SETTINGS ACK: {MAX_STREAMS} served, "
                  f"4 RST_STREAM(REFUSED_STREAM)", lambda s: beyond(s, False))
        self.case(srv, f"{MAX_STREAMS + 4} streams at once with --h2-max-streams "
                  f"{MAX_STREAMS}, after the ACK: REFUSED_STREAM or GOAWAY(PROTOCOL_ERROR)",
                  lambda s: beyond(s, True))

        def rapid_reset(srv, n, spread):
            """n HEADERS + RST_STREAM pairs; spread: the RSTs go in a
            separate write after a pause, so the requests really start."""
            cpu0 = proc_cpu(srv.wpid)
            s0 = self.stats(srv)
            self.fake.set_schedule([], then="stall")  # the work lasts until cancelled
            probe = Prober(srv.port, "/_stats")
            t0 = time.monotonic()
            sid, done, code, broken = 1, 0, None, False
            with H2(srv.port) as c:
                c.handshake()
                c.sock.settimeout(2)
                while done < n and time.monotonic() - t0 < 8:
                    k = min(MAX_STREAMS if spread else 100, n - done)
                    ids = [sid + 2 * i for i in range(k)]
                    sid += 2 * k
                    hs = b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i,
                                        req_block("GET", "/")) for i in ids)
                    rs = b"".join(rst(i) for i in ids)
                    try:
                        if spread:
                            c.sock.sendall(hs)
                            time.sleep(0.002)
                            c.sock.sendall(rs)
                        else:
                            c.sock.sendall(b"".join(
                                frame(HEADERS, END_STREAM | END_HEADERS, i,
                                      req_block("GET", "/")) + rst(i) for i in ids))
                    except OSError:
                        broken = True
                        break
                    done += k
                    g = c.until(lambda f: f[0] == GOAWAY, 0.0005)
                    if g is not None or c.eof:
                        code = int.from_bytes(g[3][4:8], "big") if g else None
                        break
                if code is None:
                    g = c.until(lambda f: f[0] == GOAWAY, 1)
                    code = int.from_bytes(g[3][4:8], "big") if g else None
                dt = time.monotonic() - t0
                mid = self.stats(srv)
            probe.stop()
            cpu = proc_cpu(srv.wpid) - cpu0
            reqs = mid["requests"] - s0["requests"] - 1
            verdict = (f"{done} pairs in {dt:.1f} s, "
                       + (f"GOAWAY({ename(code)})" if code is not None else "no GOAWAY")
                       + (" (send failed: reset)" if broken else "")
                       + f"; {reqs} reached the app; worker CPU {cpu:.2f} s; "
                       f"other client {probe.summary()}")
            self.saw(f"rapid reset ({'spread' if spread else 'same write'}): {verdict}")
            # nghttp2's reset rate limit (1.57; Debian's 1.52 has it backported)
            # answers INTERNAL_ERROR.
            if code not in (None, ENHANCE_YOUR_CALM, PROTOCOL_ERROR, INTERNAL_ERROR):
                return f"GOAWAY {ename(code)}: {verdict}"
            if done >= n and code is None and cpu > 0.5 * dt + 1:
                return f"the worker kept busy: {verdict}"
            return probe.verdict()
        self.case(srv, "rapid reset, 5,000 HEADERS + RST_STREAM pairs in the same writes "
                  "(CVE-2023-44487): GOAWAY (nghttp2's reset rate limit) or no work for them, "
                  "others "
                  "served, nothing leaks", lambda s: rapid_reset(s, 5000, False))
        self.case(srv, "rapid reset, 2,000 requests reset in a later write (their handlers "
                  "started): cancelled, others served, nothing leaks",
                  lambda s: rapid_reset(s, 2000, True))

        def reset_inflight(srv):
            """One stream per slot, reset while the app sleeps on it: the
            slots come back (the next full batch is served)."""
            self.fake.set_schedule(["stall"] * MAX_STREAMS, then="ok")
            with H2(srv.port) as c:
                c.handshake()
                ids = [1 + 2 * i for i in range(MAX_STREAMS)]
                c.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i,
                                      req_block("GET", "/")) for i in ids))
                time.sleep(0.2)
                c.send(b"".join(rst(i) for i in ids))
                ids2 = [ids[-1] + 2 + 2 * i for i in range(MAX_STREAMS)]
                c.send(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i,
                                      req_block("GET", "/")) for i in ids2))
                got = [c.answer(i, 3) for i in ids2]
            if any(g[:2] != (200, BODY) for g in got):
                return f"after resetting every slot, the next streams got {got}"
        self.case(srv, "every stream slot reset while its handler waits: the slots are "
                  "free again at once", reset_inflight)

    # ---- window

    def window(self, srv):
        def stall(srv):
            probe = Prober(srv.port, "/")
            t0 = time.monotonic()
            with H2(srv.port) as c:
                c.handshake((S_INITIAL_WINDOW_SIZE, 0))
                c.send(frame(HEADERS, END_HEADERS, 1, req_block("POST", "/")) +
                       frame(DATA, END_STREAM, 1, b"w" * 1000))
                hdr = c.until(lambda f: f[0] == HEADERS and f[2] == 1, 3)
                limit = 2 * KA + 3
                closed = False
                while time.monotonic() - t0 < limit:
                    if c.closed_within(0.5):
                        closed = True
                        break
                dt = time.monotonic() - t0
                data = [f for f in c.frames if f[0] == DATA and f[2] == 1]
                ga = [int.from_bytes(f[3][4:8], "big") for f in c.frames if f[0] == GOAWAY]
            probe.stop()
            self.saw(f"window 0: HEADERS "
                     f"{'sent' if hdr else 'not sent'}, {len(data)} DATA, GOAWAY "
                     f"{[ename(g) for g in ga]}, {'closed' if closed else 'open'} after "
                     f"{dt:.1f} s; other client {probe.summary()}")
            if data and any(f[3] for f in data):
                return "DATA sent into a zero window"
            if not hdr:
                return "no HEADERS (not flow-controlled) for the stalled stream"
            if not closed:
                return (f"a stream stalled on a zero window (never a WINDOW_UPDATE) keeps "
                        f"the connection open {dt:.1f} s (keep-alive timeout {KA} s)")
            return probe.verdict()
        self.case(srv, f"window exhaustion: initial window 0 and never a WINDOW_UPDATE: "
                  f"the connection is cut within {2 * KA + 3} s, others served",
                  stall)

    # ---- bodies

    def bodies(self, srv):
        def big(srv, declared):
            n = MAX_BODY + 40000
            with H2(srv.port) as c:
                c.handshake()
                extra = [("content-length", str(n))] if declared else []
                c.send(frame(HEADERS, END_HEADERS, 1, req_block("POST", "/", extra)))
                # The body in 16 KB frames, as far as the windows let it go.
                sent = 0
                c.sock.settimeout(1)
                while sent < n:
                    k = min(16384, n - sent)
                    if not c.try_send(frame(DATA, END_STREAM if sent + k == n else 0, 1,
                                            b"B" * k)):
                        break
                    sent += k
                    if sent >= 65535 - 16384:
                        break  # the stream's default window: no more without updates
                status, body, code, gone = c.answer(1, 5)
                after = None
                if gone is None:
                    c.send(frame(HEADERS, END_HEADERS, 3, req_block("POST", "/")) +
                           frame(DATA, END_STREAM, 3, b"next"))
                    after = c.answer(3)
            self.saw(f"POST {n} B ({'declared' if declared else 'streamed'}) with --max-body "
                     f"{MAX_BODY}: status {status}, RST {code}, GOAWAY {gone}; next stream "
                     f"{after[:2] if after else None}")
            if status != 413:
                return f"status {status}, RST {code}, GOAWAY {gone}, want 413"
            if after is None or after[:2] != (200, b"next"):
                return f"the connection did not serve on: {after}"
        self.case(srv, "POST with content-length over --max-body: 413 on the stream, the "
                  "connection serves on", lambda s: big(s, True))
        self.case(srv, "POST streaming a body over --max-body (no content-length): 413 on "
                  "the stream, the connection serves on", lambda s: big(s, False))

        def data_closed(srv):
            with H2(srv.port) as c:
                c.handshake()
                c.send(frame(HEADERS, END_HEADERS, 1, req_block("POST", "/")) +
                       frame(DATA, END_STREAM, 1, b"one"))
                first = c.answer(1)
                c.send(frame(DATA, 0, 1, b"after the end") * 10)
                c.send(frame(HEADERS, END_HEADERS, 3, req_block("POST", "/")) +
                       frame(DATA, END_STREAM, 3, b"two"))
                second = c.answer(3)
                rsts = [int.from_bytes(f[3][:4], "big") for f in c.frames
                        if f[0] == RST_STREAM and f[2] == 1]
            # RFC 9113 5.1: a closed stream's frames MAY be a connection error
            # STREAM_CLOSED; nghttp2 (keeping no closed streams) ignores them.
            self.saw(f"DATA on a closed stream: RST {rsts}, then {second}")
            if first[:2] != (200, b"one"):
                return f"the first answer {first}"
            if second[3] is not None:
                if second[3] not in (STREAM_CLOSED, PROTOCOL_ERROR):
                    return f"GOAWAY {second[3]}"
                return None
            if second[:2] != (200, b"two"):
                return f"the next stream after DATA on a closed one: {second}"
        self.case(srv, "DATA on a closed stream: ignored (or STREAM_CLOSED), the connection "
                  "serves on", data_closed)

        def data_idle(srv):
            with H2(srv.port) as c:
                c.handshake()
                c.send(frame(DATA, 0, 41, b"never opened"))
                code, _ = c.goaway(3)
                closed = c.closed_within(3)
            self.saw(f"DATA on an idle stream: GOAWAY {ename(code) if code is not None else None}")
            if code != PROTOCOL_ERROR:
                return f"GOAWAY {code}, want PROTOCOL_ERROR"
            if not closed:
                return "not closed after the GOAWAY"
        self.case(srv, "DATA on an idle stream: GOAWAY(PROTOCOL_ERROR)", data_idle)

        def data_half_closed(srv):
            with H2(srv.port) as c:
                c.handshake()
                # An upload the server has answered early (413 by content-length):
                # the client keeps sending on it.
                c.send(frame(HEADERS, END_HEADERS, 1, req_block(
                    "POST", "/", [("content-length", str(MAX_BODY * 4))])))
                first = c.answer(1)
                ok = c.try_send(frame(DATA, 0, 1, b"x" * 1000) * 5)
                c.send(frame(HEADERS, END_HEADERS, 3, req_block("POST", "/")) +
                       frame(DATA, END_STREAM, 3, b"next"))
                nxt = c.answer(3)
            self.saw(f"DATA after an early 413: {first[:3]}, then stream 3 {nxt[:2]}")
            if first[0] != 413:
                return f"first answer {first}"
            if nxt[:2] != (200, b"next") and nxt[3] not in (STREAM_CLOSED,):
                return f"after DATA on the answered stream: {nxt} (send ok {ok})"
        self.case(srv, "DATA after the server answered 413 and reset the stream: ignored "
                  "or STREAM_CLOSED, the connection serves on", data_half_closed)

    # ---- upgrade

    def upgrade(self, srv):
        def bad_settings(srv, value, what, twice=False):
            hdrs = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                    ("HTTP2-Settings", value)]
            if twice:
                hdrs.append(("HTTP2-Settings", value))
            body = b"upgrade body"
            with st.Conn(srv.port, timeout=5) as c:
                r = c.request("POST", "/", headers=hdrs, body=body)
            self.saw(f"h2c with {what}: HTTP/{r.version[0]}.{r.version[1]} {r.status}")
            if r.status == 101:
                return "101: switched with malformed settings"
            if r.status != 200 or r.body != body:
                return f"{r!r}, want the request served as HTTP/1.1"
        for value, what in (("!!!notbase64!!!", "HTTP2-Settings not base64url"),
                            ("AAMAAABkAAQAAP__A", "HTTP2-Settings of 13 bytes (not 6n)"),
                            ("A", "HTTP2-Settings of one character"),
                            ("AAMAAABk" * 200, "HTTP2-Settings of 1200 bytes"),
                            ("AAIAAAAC", "ENABLE_PUSH=2 in HTTP2-Settings")):
            self.case(srv, f"h2c upgrade with {what}: served as HTTP/1.1",
                      lambda s, v=value, w=what: bad_settings(s, v, w))
        self.case(srv, "h2c upgrade with two HTTP2-Settings headers: served as HTTP/1.1",
                  lambda s: bad_settings(s, "AAMAAABk", "two HTTP2-Settings", True))

        def then_garbage(srv):
            hdrs = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                    ("HTTP2-Settings", "AAMAAABk")]
            with st.Conn(srv.port, timeout=5) as c:
                c.send(st.build_request("POST", "/", headers=hdrs, body=b"up"))
                r = c.read_response()
                if r.status != 101:
                    return f"{r!r}, want 101"
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not the preface
                data, closed = c.buf, False
                c.sock.settimeout(3)
                try:
                    while True:
                        d = c.sock.recv(65536)
                        if not d:
                            closed = True
                            break
                        data += d
                except OSError:
                    closed = True
            codes = [int.from_bytes(data[i + 9 + 4:i + 9 + 8], "big")
                     for i in range(len(data) - 16) if data[i + 3] == GOAWAY and
                     data[i:i + 3] == b"\x00\x00\x08"]
            self.saw(f"h2c then HTTP/1.1 instead of the preface: GOAWAY codes "
                     f"{[ename(x) for x in codes]}, {'closed' if closed else 'open'}")
            if not closed:
                return "connection left open"
        self.case(srv, "h2c upgrade (101) followed by HTTP/1.1 instead of the preface: "
                  "GOAWAY and close", then_garbage)

    # ---- all

    def logs_clean(self):
        return st.logs_clean(self.started)

    def run(self):
        t = self.t
        t.note(f"server {self.bin} ({self.kind})")
        sections = [("echo", "preface", self.preface), ("echo", "frames", self.frames),
                    ("echo", "floods", self.floods), ("echo", "headers", self.headers),
                    ("echo", "window", self.window), ("echo", "bodies", self.bodies),
                    ("echo", "upgrade", self.upgrade), ("echo", "messaging", self.messaging),
                    ("proxy-async", "streams", self.streams)]
        servers = {}
        try:
            for app, name, fn in sections:
                t0 = time.monotonic()
                try:
                    if app not in servers:
                        servers[app] = self.start(app)
                    fn(servers[app])
                except Exception as e:  # noqa: BLE001
                    t.ok(False, f"section {name} ran to its end", f"{type(e).__name__}: {e}")
                t.note(f"section {name}: {time.monotonic() - t0:.1f} s")
        finally:
            for srv in servers.values():
                srv.stop()
            if self.fake:
                self.fake.stop()
        self.t.check(f"logs: no sanitizer report or worker death in {len(self.started)} "
                     "server runs", self.logs_clean)
        return t.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="coro-server or async-server binary")
    ap.add_argument("--upstream-bin", help="unused (no case needs an upstream); accepted "
                    "for symmetry with test_hostile.py")
    ap.add_argument("--only", help="run only the checks whose name matches this regex")
    return Suite(ap.parse_args()).run()


if __name__ == "__main__":
    st.main_guard(main)
