#!/usr/bin/env python3
"""test_h2_server.py — cleartext HTTP/2 against a real server binary.

Starts the server (and the upstream stub) on free 127.0.0.1 ports and talks
to it with the real `curl` and `h2load` binaries and a small raw-socket
HTTP/2 client (frames built by hand, for the cases no client does on
purpose):

  every app          over h2 with prior knowledge (curl --http2-prior-knowledge)
                     and through the HTTP/1.1 h2c upgrade (curl --http2 http://)
  limits             413 and 431 on their stream only; --h2-max-streams in
                     the server's SETTINGS
  streams            100 concurrent streams on one connection (h2load -m 100);
                     --async N caps the streams in flight
  upgrade queued     an h2c upgrade that waits for an --async slot, with the
                     preface and another stream already behind it
  client reset       RST_STREAM while proxy-async waits on the upstream: the
                     fetch is cancelled, the connection and worker keep serving
  graceful shutdown  SIGTERM with streams in flight: GOAWAY(NO_ERROR), the
                     streams finish, the master exits 0
  malformed frames   GOAWAY with an error, the worker is still the same process
  idle timeout       an idle h2 connection gets GOAWAY(NO_ERROR) and is closed

    python3 test_h2_server.py --server PATH --upstream-bin PATH [--only REGEX]

Exit 0 when every check passed, 1 otherwise — also when the server does not
speak HTTP/2 (a worker whose HTTP/2 broke must turn CI red, not skip) — and
77 (skipped) only when curl or h2load is not installed. Standard library
only; every process is stopped by its PID.
"""

import argparse
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
import srvtest as st  # noqa: E402
from h2wire import (ACK, CANCEL, DATA, END_HEADERS, END_STREAM, GOAWAY, H2,  # noqa: E402
                    HEADERS, NO_ERROR, PING, RST_STREAM, SETTINGS, frame)

SKIP = 77
PATTERN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
UP_SIZE = 1234

SETTINGS_MAX_CONCURRENT_STREAMS = 3


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


# ---------------------------------------------------------------- raw HTTP/2


def hpack_get(path, authority="127.0.0.1"):
    """A GET header block: indexed :method GET and :scheme http, literal
    :path and :authority with indexed names, no Huffman, no indexing."""
    def lit(index, value):
        v = value.encode()
        assert len(v) < 127
        return bytes([index]) + bytes([len(v)]) + v  # 0000xxxx: without indexing
    return b"\x82\x86" + lit(4, path) + lit(1, authority)


class H2Raw(H2):
    """One HTTP/2 connection driven frame by frame (h2wire.H2), with this
    suite's shorthands."""

    def preface(self):
        self.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))

    def get(self, stream, path):
        self.send(frame(HEADERS, END_STREAM | END_HEADERS, stream, hpack_get(path)))

    def frames_until(self, pred, timeout=5.0):
        """Read frames until pred(frame) is true or EOF; returns all read."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return out
            out.append(f)
            if pred(f):
                return out


def goaway_of(frames):
    """(last_stream_id, error_code) of the first GOAWAY, or None."""
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[:4], "big") & 0x7FFFFFFF, int.from_bytes(p[4:8], "big")
    return None


def stream_answer(frames, stream):
    """(saw HEADERS, DATA bytes, ended) of one stream."""
    hdr, body, ended = False, b"", False
    for t, fl, s, p in frames:
        if s != stream:
            continue
        if t == HEADERS:
            hdr = True
        elif t == DATA:
            body += p
        if t in (HEADERS, DATA) and fl & END_STREAM:
            ended = True
    return hdr, body, ended


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, a):
        self.bin = a.server
        self.upbin = a.upstream_bin
        self.only = re.compile(a.only) if a.only else None
        self.t = st.Tap()
        self.up = None
        self.started = []
        self.tmp = tempfile.mkdtemp(prefix="h2test.")

    def check(self, name, fn, *args, **kw):
        if self.only and not self.only.search(name):
            return None
        return self.t.check(name, fn, *args, **kw)

    def start(self, app="hello", extra=(), upstream=None, workers=1):
        args = ["--workers", str(workers), "--app", app, "--graceful-timeout", "10", "--quiet",
                "--upstream", upstream or self.upurl()]
        args += list(extra)
        srv = st.start_server(self.bin, args)
        self.started.append(srv)
        if not srv.ready_ok:
            out = srv.text()
            srv.stop()
            raise AssertionError(f"server did not start ({' '.join(args)}):\n{out}")
        return srv

    def upurl(self, query=""):
        return f"http://127.0.0.1:{self.up.port}/{query}"

    def curl(self, port, path="/", mode="prior", data=None, headers=(), timeout=20,
             ok_rc=(0,)):
        """(status, http_version, body) from the real curl."""
        out = os.path.join(self.tmp, "body")
        argv = ["curl", "-sS", "-o", out, "-w", "%{http_code} %{http_version}",
                "--max-time", str(timeout)]
        argv.append("--http2-prior-knowledge" if mode == "prior" else "--http2")
        for h in headers:
            argv += ["-H", h]
        if data is not None:
            path_data = os.path.join(self.tmp, "post")
            with open(path_data, "wb") as f:
                f.write(data)
            argv += ["--data-binary", "@" + path_data, "-H", "Content-Type: application/x-test"]
        argv.append(f"http://127.0.0.1:{port}{path}")
        r = subprocess.run(argv, capture_output=True, timeout=timeout + 5)
        if r.returncode not in ok_rc:
            raise AssertionError(f"curl exit {r.returncode}: {r.stderr.decode()[:300]}")
        code, ver = r.stdout.decode().split()
        with open(out, "rb") as f:
            body = f.read()
        return int(code), ver, body

    def expect(self, port, path="/", status=200, body=None, mode="prior", data=None,
               headers=(), ok_rc=(0,)):
        code, ver, got = self.curl(port, path, mode, data, headers, ok_rc=ok_rc)
        if ver != "2":
            return f"HTTP version {ver}, want 2"
        if code != status:
            return f"status {code}, want {status}; body {got[:200]!r}"
        if body is not None and got != body:
            return f"body {got[:200]!r} (len {len(got)}), want {body[:200]!r} (len {len(body)})"
        return None

    @staticmethod
    def h2load(port, path="/", n=1000, c=1, m=100, timeout=60):
        """h2load's summary as a dict plus its wall time."""
        t0 = time.monotonic()
        r = subprocess.run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                            f"http://127.0.0.1:{port}{path}"],
                           capture_output=True, text=True, timeout=timeout)
        dt = time.monotonic() - t0
        m_req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored", r.stdout)
        m_st = re.search(r"status codes: (\d+) 2xx", r.stdout)
        if r.returncode != 0 or not m_req or not m_st:
            raise AssertionError(f"h2load exit {r.returncode}:\n{r.stdout}\n{r.stderr}")
        keys = ("total", "started", "done", "succeeded", "failed", "errored")
        res = dict(zip(keys, map(int, m_req.groups())))
        res["2xx"] = int(m_st.group(1))
        res["secs"] = dt
        res["text"] = r.stdout
        return res

    @staticmethod
    def lives(srv, kids):
        if srv.proc.poll() is not None:
            raise AssertionError(f"master exited {srv.proc.returncode}:\n{srv.text()}")
        if srv.workers() != kids:
            raise AssertionError(f"workers changed {kids} -> {srv.workers()}:\n{srv.text()}")

    def upstream_open(self):
        """The upstream's open connections, its /_stats one excluded."""
        body = st.get(self.up.port, "/_stats").body.decode()
        return int(re.search(r"open (\d+)", body).group(1)) - 1

    # ---- does the server speak HTTP/2 at all?

    def probe(self):
        srv = self.start("hello")
        try:
            r = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{http_version}",
                                "--max-time", "5", "--http2-prior-knowledge",
                                f"http://127.0.0.1:{srv.port}/"],
                               capture_output=True, text=True, timeout=10)
            return r.stdout.strip() == "2", r.stdout.strip() or r.stderr.strip()
        finally:
            srv.stop()

    # ---- every app, both ways in

    def apps(self):
        up_body = pattern(UP_SIZE)
        cases = [
            ("hello", "/", None, b"Hello, World!"),
            ("hello", "/x/y?z=1", None, b"Hello, World!"),
            ("json", "/", None, b'{"message":"Hello, World!"}'),
            ("echo", "/", b"the body, with bytes \x00\xff\r\n", None),
            ("echo", "/", pattern(300 * 1024), None),  # flow control both ways
            ("sleep", "/?ms=100", None, b"slept 100 ms\n"),
            ("cpu", "/?us=1000", None, None),
            ("proxy", "/", None, up_body),
            ("proxy-async", "/", None, up_body),
            ("fanout", "/?n=3", None, up_body * 3),
        ]
        by_app = {}
        for app, path, data, body in cases:
            by_app.setdefault(app, []).append((path, data, body))
        for app, items in by_app.items():
            names = [f"app {app} over h2 ({mode}): {path}{' POST %d B' % len(d) if d else ''}"
                     for mode in ("prior knowledge", "h2c upgrade") for path, d, _ in items]
            if self.only and not any(self.only.search(n) for n in names):
                continue
            with self.start(app) as srv:
                for mode, tag in (("prior", "prior knowledge"), ("upgrade", "h2c upgrade")):
                    for path, data, body in items:
                        want = data if app == "echo" else body
                        label = f"app {app} over h2 ({tag}): {path}" + \
                            (f" POST {len(data)} B" if data else "")
                        if app == "cpu":
                            def cpu(mode=mode):
                                code, ver, got = self.curl(srv.port, "/?us=1000", mode)
                                if ver != "2" or code != 200 or not got.startswith(b"busy 1000"):
                                    return f"{code} HTTP/{ver} {got!r}"
                            self.check(label, cpu)
                        else:
                            self.check(label, self.expect, srv.port, path, 200, want, mode,
                                       data)

        if self.want("head over h2"):
            with self.start("hello") as srv:
                def head():
                    r = subprocess.run(["curl", "-sS", "-I", "--http2-prior-knowledge",
                                        f"http://127.0.0.1:{srv.port}/"],
                                       capture_output=True, text=True, timeout=10)
                    if not r.stdout.startswith("HTTP/2 200") or \
                            "content-length: 13" not in r.stdout.lower():
                        return f"{r.stdout!r} {r.stderr!r}"
                self.check("head over h2: HEAD answers the head, content-length 13", head)

    def want(self, *names):
        return not self.only or any(self.only.search(n) for n in names)

    def has_flag(self, name):
        """The server's --help lists --NAME (--async is async-server's own)."""
        r = subprocess.run([self.bin, "--help"], capture_output=True, text=True, timeout=10)
        return f"--{name} " in r.stdout

    # ---- limits and settings

    def limits(self):
        if not self.want("limits"):
            return
        with self.start("echo", extra=["--max-body", "1000", "--h2-max-streams", "7"]) as srv:
            kids = srv.wait_workers(1)
            # The 413 goes out before the body ends, so RST_STREAM(NO_ERROR)
            # follows it (RFC 9113 8.1). curl 7.88 then fails with exit 92
            # most of the time, while it is still uploading (a curl bug);
            # h2load counts the answers, so it is the client here.
            def h2load_413():
                path = os.path.join(self.tmp, "big")
                with open(path, "wb") as f:
                    f.write(b"x" * 5000)
                r = subprocess.run(["h2load", "-n", "3", "-c", "1", "-d", path,
                                    f"http://127.0.0.1:{srv.port}/"],
                                   capture_output=True, text=True, timeout=20)
                m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx", r.stdout)
                if not m or m.group(3) != "3":
                    return r.stdout + r.stderr
            self.check("limits: a body over --max-body gets 413 over h2, 3 times on one "
                       "connection (h2load -d)", h2load_413)
            self.check("limits: ...and a body within it comes back",
                       self.expect, srv.port, "/", 200, b"y" * 900, "prior", b"y" * 900)
            self.check("limits: a header block over 8 KiB gets 431 over h2",
                       self.expect, srv.port, "/", 431, None, "prior", None,
                       ["X-Big: " + "b" * 9000])

            def settings():
                with H2Raw(srv.port) as h:
                    h.preface()
                    f = h.read_frame()
                    if not f or f[0] != SETTINGS:
                        return f"first frame {f}, want SETTINGS"
                    p = f[3]
                    vals = {int.from_bytes(p[i:i + 2], "big"): int.from_bytes(p[i + 2:i + 6], "big")
                            for i in range(0, len(p) - 5, 6)}
                    if vals.get(SETTINGS_MAX_CONCURRENT_STREAMS) != 7:
                        return f"SETTINGS {vals}, want MAX_CONCURRENT_STREAMS 7"
            self.check("limits: --h2-max-streams 7 is the server's "
                       "SETTINGS_MAX_CONCURRENT_STREAMS", settings)
            self.check("limits: the worker is the same process after all that",
                       self.lives, srv, kids)

    # ---- many streams on one connection

    def streams(self):
        if self.want("streams: 100 concurrent"):
            with self.start("hello") as srv:
                def hundred():
                    r = self.h2load(srv.port, n=1000, c=1, m=100)
                    if r["succeeded"] != 1000 or r["2xx"] != 1000:
                        return r["text"]
                self.check("streams: 100 concurrent streams on one connection "
                           "(h2load -n 1000 -c 1 -m 100), all 1000 answered 200", hundred)
        if self.want("streams: proxy-async"):
            with self.start("proxy-async", upstream=self.upurl("?delay=300")) as srv:
                def overlap():
                    r = self.h2load(srv.port, n=100, c=1, m=100)
                    self.t.note(f"100 streams, 300 ms upstream: {r['secs']:.2f} s")
                    if r["succeeded"] != 100:
                        return r["text"]
                    if r["secs"] > 5:
                        return f"100 streams of 300 ms each took {r['secs']:.2f} s: " \
                               "they did not wait concurrently"
                self.check("streams: proxy-async, 100 streams waiting at once on one "
                           "connection finish together", overlap)
        if self.want("streams: --async") and not self.has_flag("async"):
            self.t.skip("streams: --async caps streams in flight", "no --async flag")
        elif self.want("streams: --async"):
            with self.start("proxy-async", upstream=self.upurl("?delay=300"),
                            extra=["--async", "5"]) as srv:
                def capped():
                    r = self.h2load(srv.port, n=20, c=1, m=20)
                    self.t.note(f"--async 5, 20 streams of 300 ms: {r['secs']:.2f} s")
                    if r["succeeded"] != 20:
                        return r["text"]
                    if r["secs"] < 1.1:
                        return f"20 streams took {r['secs']:.2f} s with --async 5: " \
                               "more than 5 ran at once (want >= 4 x 300 ms)"
                self.check("streams: --async 5 caps streams in flight (20 streams of a "
                           "300 ms upstream take 4 rounds), all answered", capped)

    # ---- the h2c upgrade behind a busy worker

    def upgrade_queued(self):
        if not self.want("upgrade queued"):
            return
        if not self.has_flag("async"):
            self.t.skip("upgrade queued behind --async 1", "no --async flag")
            return
        with self.start("proxy-async", upstream=self.upurl("?delay=300"),
                        extra=["--async", "1"]) as srv:
            def queued():
                res = {}

                def h1():
                    res["h1"] = st.get(srv.port, timeout=10)
                th = threading.Thread(target=h1)
                th.start()
                time.sleep(0.1)  # the HTTP/1.1 request holds the only slot
                with H2Raw(srv.port) as h:
                    # The upgrade request, the preface and stream 3 in one send:
                    # all of it waits, unparsed, until the slot frees.
                    h.send(b"GET /one HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                           b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n" +
                           b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0) +
                           frame(HEADERS, END_STREAM | END_HEADERS, 3, hpack_get("/three")))
                    deadline = time.monotonic() + 5
                    while b"\r\n\r\n" not in h.buf and time.monotonic() < deadline:
                        h.sock.settimeout(deadline - time.monotonic())
                        chunk = h.sock.recv(65536)
                        if not chunk:
                            break
                        h.buf += chunk
                    head, sep, h.buf = h.buf.partition(b"\r\n\r\n")
                    if not head.startswith(b"HTTP/1.1 101"):
                        return f"first answer {head[:80]!r}, want 101"
                    fr = []
                    while not (stream_answer(fr, 1)[2] and stream_answer(fr, 3)[2]):
                        f = h.read_frame(max(0.01, deadline - time.monotonic()))
                        if f is None:
                            break
                        fr.append(f)
                    for sid in (1, 3):
                        hdr, body, ended = stream_answer(fr, sid)
                        if not (hdr and ended and body == pattern(UP_SIZE)):
                            return f"stream {sid}: headers {hdr}, ended {ended}, " \
                                   f"{len(body)} body bytes; frames {[f[:3] for f in fr]}"
                th.join(10)
                r = res.get("h1")
                if r is None or r.status != 200:
                    return f"the HTTP/1.1 request: {r}"
            self.check("upgrade queued: an h2c upgrade (with the preface and stream 3 "
                       "behind it) waiting for the only --async slot is served after it",
                       queued)

    # ---- a stream reset by the client

    def client_reset(self):
        if not self.want("client reset"):
            return
        with self.start("proxy-async", upstream=self.upurl("?stall=1"),
                        extra=["--upstream-timeout", "30000"]) as srv:
            kids = srv.wait_workers(1)

            def reset():
                with H2Raw(srv.port) as h:
                    h.preface()
                    h.get(1, "/")
                    h.get(3, "/")
                    if not st.wait_until(lambda: self.upstream_open() == 2, 5):
                        return f"the upstream never saw the 2 fetches ({self.upstream_open()})"
                    h.send(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
                    if not st.wait_until(lambda: self.upstream_open() == 1, 5):
                        return f"stream 1's fetch was not cancelled: upstream has " \
                               f"{self.upstream_open()} open"
                    # The same connection goes on: a PING is answered.
                    h.send(frame(PING, 0, 0, b"12345678"))
                    fr = h.frames_until(lambda f: f[0] == PING and f[1] & ACK, 5)
                    if not fr or fr[-1][0] != PING:
                        return f"no PING ACK after the reset: {fr}"
                    if any(f[2] == 1 and f[0] in (HEADERS, DATA) for f in fr):
                        return "stream 1 was answered after its reset"
                    h.send(frame(RST_STREAM, 0, 3, struct.pack(">I", CANCEL)))
                if not st.wait_until(lambda: self.upstream_open() == 0, 5):
                    return f"fetches left open upstream: {self.upstream_open()}"
            self.check("client reset: RST_STREAM cancels that stream's upstream fetch, "
                       "the connection keeps working", reset)

            def gone():
                with H2Raw(srv.port) as h:
                    h.preface()
                    for sid in range(1, 21, 2):
                        h.get(sid, "/")
                    if not st.wait_until(lambda: self.upstream_open() == 10, 5):
                        return f"the upstream saw {self.upstream_open()} of 10 fetches"
                if not st.wait_until(lambda: self.upstream_open() == 0, 5):
                    return f"fetches left open upstream after the client left: " \
                           f"{self.upstream_open()}"
                self.lives(srv, kids)
            self.check("client reset: a client that closes the connection with 10 streams "
                       "waiting cancels all 10 fetches; the worker lives", gone)
        with self.start("proxy-async", upstream=self.upurl("?delay=200")) as srv:
            kids = srv.wait_workers(1)

            def after():
                with H2Raw(srv.port) as h:
                    h.preface()
                    for sid in (1, 3, 5):
                        h.get(sid, "/")
                    h.send(frame(RST_STREAM, 0, 3, struct.pack(">I", CANCEL)))
                    fr_all = []
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        f = h.read_frame(deadline - time.monotonic())
                        if f is None:
                            break
                        fr_all.append(f)
                        if stream_answer(fr_all, 1)[2] and stream_answer(fr_all, 5)[2]:
                            break
                    for sid in (1, 5):
                        hdr, body, ended = stream_answer(fr_all, sid)
                        if not (hdr and ended and body == pattern(UP_SIZE)):
                            return f"stream {sid}: headers {hdr}, ended {ended}, " \
                                   f"{len(body)} body bytes"
                    if stream_answer(fr_all, 3)[0]:
                        return "stream 3 was answered after its reset"
                self.expect(srv.port, "/", 200, pattern(UP_SIZE))
                self.lives(srv, kids)
            self.check("client reset: the other streams of the connection are answered, "
                       "then new connections are served by the same worker", after)

    # ---- graceful shutdown

    def graceful(self):
        if self.want("graceful: raw"):
            srv = self.start("proxy-async", upstream=self.upurl("?delay=800"))
            try:
                def raw():
                    with H2Raw(srv.port) as h:
                        h.preface()
                        h.get(1, "/")
                        h.get(3, "/")
                        time.sleep(0.3)
                        srv.signal(signal.SIGTERM)
                        fr = h.frames_until(lambda f: False, 8)  # until EOF
                        ga = goaway_of(fr)
                        if ga is None or ga[1] != NO_ERROR:
                            return f"GOAWAY {ga}, want NO_ERROR; frames " \
                                   f"{[f[:3] for f in fr]}"
                        if ga[0] != 3:
                            return f"GOAWAY names last stream {ga[0]}, want 3"
                        for sid in (1, 3):
                            hdr, body, ended = stream_answer(fr, sid)
                            if not (hdr and ended and body == pattern(UP_SIZE)):
                                return f"stream {sid} not answered in full after GOAWAY"
                        if not h.eof:
                            return "the connection was not closed after the last stream"
                    rc = srv.wait(10)
                    if rc != 0:
                        return f"master exit {rc}:\n{srv.text()}"
                self.check("graceful: raw: SIGTERM sends GOAWAY(NO_ERROR, last stream 3), "
                           "streams 1 and 3 finish, then close, master exits 0", raw)
            finally:
                srv.stop()
        if self.want("graceful: h2load"):
            srv = self.start("proxy-async", upstream=self.upurl("?delay=1000"))
            try:
                def load():
                    res = {}

                    def run():
                        try:
                            res["r"] = self.h2load(srv.port, n=60, c=2, m=30, timeout=30)
                        except Exception as e:  # noqa: BLE001
                            res["e"] = e
                    th = threading.Thread(target=run)
                    th.start()
                    # Wait until every stream waits on the upstream.
                    ok = st.wait_until(lambda: self.upstream_open() >= 1, 5)
                    time.sleep(0.3)
                    t0 = time.monotonic()
                    srv.signal(signal.SIGTERM)
                    rc = srv.wait(15)
                    dt = time.monotonic() - t0
                    th.join(30)
                    if "e" in res:
                        return f"h2load: {res['e']}"
                    r = res["r"]
                    if not ok:
                        return "the upstream never saw a fetch"
                    if r["succeeded"] != 60:
                        return r["text"]
                    if rc != 0:
                        return f"master exit {rc} after {dt:.2f} s:\n{srv.text()}"
                    self.t.note(f"SIGTERM with 60 streams in flight: exit after {dt:.2f} s")
                self.check("graceful: h2load: SIGTERM with 60 streams in flight on 2 "
                           "connections: all 60 answered 200, master exits 0", load)
            finally:
                srv.stop()

    # ---- malformed frames

    def malformed(self):
        if not self.want("malformed"):
            return
        with self.start("hello") as srv:
            kids = srv.wait_workers(1)
            garbage = [
                ("garbage bytes", b"\xff" * 64),
                ("SETTINGS of 5 bytes", frame(SETTINGS, 0, 0, b"\x00" * 5)),
                ("HEADERS on stream 0", frame(HEADERS, END_STREAM | END_HEADERS, 0,
                                              hpack_get("/"))),
                ("a bad HPACK block", frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                            b"\xff\xff\xff\xff\xff")),
                ("DATA on an idle stream", frame(DATA, 0, 7, b"abc")),
            ]
            for what, junk in garbage:
                def bad(junk=junk):
                    with H2Raw(srv.port) as h:
                        h.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0) + junk)
                        fr = h.frames_until(lambda f: False, 5)  # until EOF
                        ga = goaway_of(fr)
                        if ga is None or ga[1] == NO_ERROR:
                            return f"GOAWAY {ga}, want one with an error; frames " \
                                   f"{[f[:3] for f in fr]}"
                        if not h.eof:
                            return "the connection stayed open"
                    self.lives(srv, kids)
                    return self.expect(srv.port, "/", 200, b"Hello, World!")
                self.check(f"malformed: preface then {what}: GOAWAY with an error, close, "
                           "the same worker serves on", bad)

    # ---- idle timeout

    def idle(self):
        if not self.want("idle"):
            return
        with self.start("hello", extra=["--keepalive-timeout", "1"]) as srv:
            def idle():
                with H2Raw(srv.port) as h:
                    h.preface()
                    h.get(1, "/")
                    t0 = time.monotonic()
                    fr = h.frames_until(lambda f: False, 5)
                    dt = time.monotonic() - t0
                    if not stream_answer(fr, 1)[2]:
                        return "stream 1 not answered"
                    ga = goaway_of(fr)
                    if ga != (1, NO_ERROR):
                        return f"GOAWAY {ga}, want (1, NO_ERROR)"
                    if not h.eof or not 0.5 < dt < 4:
                        return f"closed {h.eof} after {dt:.2f} s (keep-alive timeout 1 s)"
            self.check("idle: an idle h2 connection gets GOAWAY(NO_ERROR) and is closed "
                       "after --keepalive-timeout", idle)

    # ---- logs

    BAD_LOG = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                         r"runtime error:|restarting it|killing it|core dumped|"
                         r"Segmentation fault|Aborted")

    def logs_clean(self):
        bad = []
        for srv in self.started:
            srv.stop()
            hits = [l for l in srv.output() if self.BAD_LOG.search(l)]
            if hits:
                bad.append(f"{' '.join(srv.argv[1:])}:\n  " + "\n  ".join(hits[:10]))
        return "\n".join(bad) or None

    def run(self):
        missing = [b for b in ("curl", "h2load") if not shutil.which(b)]
        if missing:
            print(f"1..0 # SKIP {' and '.join(missing)} not installed "
                  "(Debian: curl, nghttp2-client)", flush=True)
            return SKIP
        port = st.free_port()
        self.up = st.Server([self.upbin, "--listen", f"127.0.0.1:{port}", "--size",
                             str(UP_SIZE), "--quiet"], port=port)
        self.started.append(self.up)
        try:
            if not self.up.ready_ok:
                self.t.ok(False, "the upstream stub starts", self.up.text())
                return self.t.finish()
            speaks, seen = self.probe()
            if not self.t.ok(speaks, f"{os.path.basename(self.bin)} answers over cleartext "
                             "HTTP/2 with prior knowledge",
                             f"curl --http2-prior-knowledge saw {seen!r}, not HTTP/2"):
                return self.t.finish()
            self.t.note(f"server {self.bin}; curl and h2load from PATH")
            for section in (self.apps, self.limits, self.streams, self.upgrade_queued,
                            self.client_reset,
                            self.graceful, self.malformed, self.idle):
                try:
                    section()
                except Exception as e:  # noqa: BLE001
                    self.t.ok(False, f"section {section.__name__} ran to its end", f"{e}")
        finally:
            self.up.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.t.check(f"logs: no sanitizer report or worker death in {len(self.started)} "
                     "server runs", self.logs_clean)
        return self.t.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="coro-server or async-server binary")
    ap.add_argument("--upstream-bin", required=True, help="the upstream stub binary")
    ap.add_argument("--only", help="run only the checks whose name matches this regex")
    return Suite(ap.parse_args()).run()


if __name__ == "__main__":
    st.main_guard(main)
