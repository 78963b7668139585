#!/usr/bin/env python3
"""test_listeners.py — how one server binary (coro-server or async-server)
listens, over real sockets on 127.0.0.1 and in a temporary folder:

  spread      --workers 2: one SO_REUSEPORT socket per worker, so new
              connections spread over both (each gets at least a third of
              400, by /_stats's pid); a second server on the same port is
              refused, not let into the group; --shared-listener still serves
  unix        --unix PATH: HTTP/1.1 and h2 (curl --unix-socket), pipelined
              requests; the file is removed at exit; a regular file there is
              refused with one line and left alone; a stale socket file is
              taken over, a live one refused
  tls         --tls-cert/--tls-key with a certificate made here (openssl):
              curl over https, HTTP/1.1 and h2 (ALPN), also over --unix; a
              missing or mismatched certificate or key is one line at start,
              exit 2; an h2c upgrade is not offered over TLS; cleartext on a
              TLS port is cut off

    python3 test_listeners.py --server PATH [--only REGEX]

TAP on stdout. Needs curl (and openssl for the TLS section). Standard library
only otherwise; every process started here is stopped by its PID.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import srvtest as st  # noqa: E402



def curl(*args, timeout=10):
    """curl -s with args; (exit status, stdout bytes, stderr text)."""
    r = subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 5)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


class Suite:
    def __init__(self, a):
        self.bin = a.server
        self.only = re.compile(a.only) if a.only else None
        self.t = st.Tap()
        self.started = []
        self.tmp = tempfile.mkdtemp(prefix="corobench-listeners-")

    def check(self, name, fn, *args, **kw):
        if self.only and not self.only.search(name):
            return None
        return self.t.check(name, fn, *args, **kw)

    def start(self, args, port=None, expect_ok=True):
        base = ["--graceful-timeout", "5", "--quiet"]
        if port is None:
            srv = st.start_server(self.bin, base + list(args))
        else:
            srv = st.Server([self.bin, "--listen", f"127.0.0.1:{port}", *base, *args],
                            port=port)
        self.started.append(srv)
        if expect_ok and not srv.ready_ok:
            out = srv.text()
            srv.stop()
            raise AssertionError(f"server did not start ({' '.join(args)}):\n{out}")
        return srv

    def run_fail(self, args):
        """Run the binary expecting it to refuse to start: (status, output)."""
        r = subprocess.run([self.bin, "--listen", "127.0.0.1:0", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    # ---- spread over workers

    @staticmethod
    def pids_of(port, n):
        """Open n connections at once, then ask /_stats on each: the pids."""
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
        pids = []
        try:
            for s in socks:
                s.sendall(b"GET /_stats HTTP/1.1\r\nHost: x\r\n\r\n")
            for s in socks:
                r = st.Conn.over(s).read_response()
                pids.append(json.loads(r.body)["pid"])
        finally:
            for s in socks:
                s.close()
        return pids

    def spread(self):
        def even():
            with self.start(["--workers", "2", "--app", "hello", "--stats-path", "/_stats"]) \
                    as srv:
                kids = srv.wait_workers(2)
                if not kids:
                    return f"workers {srv.workers()}"
                counts = {k: 0 for k in kids}
                for _ in range(10):  # 10 rounds of 40 connections at once
                    for pid in self.pids_of(srv.port, 40):
                        counts[pid] = counts.get(pid, 0) + 1
                self.t.note(f"spread: 400 connections over 2 workers: {sorted(counts.values())}")
                if set(counts) != set(kids):
                    return f"answers from {sorted(counts)}, workers {kids}"
                low = min(counts.values())
                # A fair coin gives fewer than 134 of 400 with p < 1e-10.
                if low < 400 // 3:
                    return f"one worker got {low} of 400 connections: {counts}"
        self.check("spread: 2 workers, 10 rounds of 40 connections: each worker accepts "
                   "at least a third", even)

        def not_joined():
            with self.start(["--workers", "2", "--app", "hello"]) as a:
                b = self.start(["--workers", "2", "--app", "hello"], port=a.port,
                               expect_ok=False)
                try:
                    if b.ready_ok:
                        return "a second server joined the first one's SO_REUSEPORT group"
                    if b.wait(10) is None or b.proc.returncode == 0:
                        return f"the second server did not fail: {b.text()}"
                    if "in use" not in b.text():
                        return f"no 'in use' in {b.text()!r}"
                finally:
                    b.stop()
                r = st.get(a.port)
                if r.status != 200:
                    return f"the first server after it: {r!r}"
        self.check("spread: a second --workers 2 server on the same port is refused "
                   "(address in use), not let into the group", not_joined)

        def shared():
            with self.start(["--workers", "2", "--app", "hello", "--shared-listener"]) as srv:
                for _ in range(5):
                    r = st.get(srv.port)
                    if r.status != 200:
                        return f"{r!r}"
        self.check("spread: --shared-listener (one socket for both workers) serves", shared)

    # ---- Unix-domain sockets

    def unix(self):
        path = os.path.join(self.tmp, "s.sock")

        def serve():
            with self.start(["--workers", "1", "--app", "echo", "--unix", path]) as srv:
                if "listening on unix:" + path not in srv.text():
                    return f"readiness line: {srv.text()!r}"
                if not os.path.exists(path):
                    return "no socket file"
                rc, out, err = curl("--unix-socket", path, "http://x/", "-d", "over unix")
                if rc != 0 or out != b"over unix":
                    return f"HTTP/1.1: curl {rc} {out!r} {err}"
                rc, out, err = curl("--http2-prior-knowledge", "--unix-socket", path,
                                    "http://x/", "-d", "h2 over unix")
                if rc != 0 or out != b"h2 over unix":
                    return f"h2: curl {rc} {out!r} {err}"
                # Pipelined requests in one write, and answers in order.
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(10)
                    s.connect(path)
                    s.sendall(b"".join(st.build_request("POST", "/", body=b"p%d" % i)
                                       for i in range(20)))
                    c = st.Conn.over(s)
                    got = [c.read_response().body for _ in range(20)]
                    if got != [b"p%d" % i for i in range(20)]:
                        return f"pipelined answers {got}"
                srv.signal(signal.SIGTERM)
                if srv.wait(10) != 0:
                    return f"exit {srv.proc.returncode}: {srv.text()}"
                if os.path.exists(path):
                    return "the socket file is still there after exit"
        self.check("unix: --unix PATH serves HTTP/1.1 and h2 (curl --unix-socket) and a "
                   "pipeline in order; the file is removed at exit", serve)

        def refuses_file():
            plain = os.path.join(self.tmp, "not-a-socket")
            with open(plain, "w") as f:
                f.write("keep me\n")
            rc, out = self.run_fail(["--workers", "1", "--unix", plain])
            lines = [l for l in out.splitlines() if l.strip()]
            with open(plain) as f:
                kept = f.read() == "keep me\n"
            if rc == 0 or len(lines) != 1 or "not a socket" not in lines[0] or not kept:
                return f"exit {rc}, output {out!r}, file kept {kept}"
        self.check("unix: an existing regular file at PATH is refused with one line (exit "
                   "non-zero) and left untouched", refuses_file)

        def stale_and_live():
            stale = os.path.join(self.tmp, "stale.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(stale)
            s.close()  # a socket file nobody listens on: a killed server's
            with self.start(["--workers", "1", "--app", "hello", "--unix", stale]) as srv:
                rc, out, err = curl("--unix-socket", stale, "http://x/")
                if rc != 0 or out != b"Hello, World!":
                    return f"over the stale file's path: curl {rc} {out!r} {err}"
                rc2, out2 = self.run_fail(["--workers", "1", "--unix", stale])
                if rc2 == 0 or "a server is listening there" not in out2:
                    return f"a second server on a live socket: exit {rc2}: {out2!r}"
                rc, out, err = curl("--unix-socket", stale, "http://x/")
                if rc != 0 or out != b"Hello, World!":
                    return f"the first server after the refused second: {rc} {out!r}"
        self.check("unix: a stale socket file is taken over; a live one is refused",
                   stale_and_live)

    # ---- TLS

    def tls(self):
        if not shutil.which("openssl"):
            self.t.skip("tls: every check", "openssl (the command) is not installed")
            return
        cert, key = st.make_cert(self.tmp, "a")
        other_cert, other_key = st.make_cert(self.tmp, "b")
        args = ["--workers", "1", "--app", "echo", "--tls-cert", cert, "--tls-key", key]

        def https():
            with self.start(args) as srv:
                url = f"https://127.0.0.1:{srv.port}/"
                for flag, want in (("--http1.1", "1.1"), ("--http2", "2")):
                    rc, out, err = curl("--cacert", cert, flag, url, "-d", "over tls",
                                        "-w", " %{http_version}")
                    if rc != 0 or out != b"over tls " + want.encode():
                        return f"curl {flag}: {rc} {out!r} {err}"
                # Two requests on one connection, each protocol.
                for flag in ("--http1.1", "--http2"):
                    rc, out, err = curl("--cacert", cert, flag, url + "a", url + "b", "-d",
                                        "k", "-w", "%{num_connects}")
                    if rc != 0 or out != b"k1k0":
                        return f"keep-alive {flag}: {rc} {out!r} {err}"
                # A body bigger than a TLS record and the socket buffer.
                big = os.path.join(self.tmp, "big")
                with open(big, "wb") as f:
                    f.write(bytes(range(256)) * 3000)
                for flag in ("--http1.1", "--http2"):
                    rc, out, err = curl("--cacert", cert, flag, url, "--data-binary", "@" + big)
                    if rc != 0 or out != bytes(range(256)) * 3000:
                        return f"768,000-byte echo {flag}: {rc} {len(out)} bytes {err}"
        self.check("tls: curl over https with a self-signed certificate: HTTP/1.1 and h2 "
                   "(ALPN), keep-alive, a 768,000-byte body echoed", https)

        def pipelined_and_upgrade():
            with self.start(args) as srv:
                with st.tls_client(srv.port, cert, ("http/1.1",), 10) as s:
                    s.sendall(b"".join(st.build_request("POST", "/", body=b"t%d" % i)
                                       for i in range(20)))
                    c = st.Conn.over(s)
                    got = [c.read_response().body for _ in range(20)]
                    if got != [b"t%d" % i for i in range(20)]:
                        return f"pipelined answers {got}"
                    # h2c is cleartext HTTP/2: over TLS it is plain HTTP/1.1.
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings"
                              b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"
                              b"\r\n\r\n")
                    r = c.read_response()
                    if r.status != 200:
                        return f"Upgrade: h2c over TLS: {r!r}"
        self.check("tls: 20 pipelined requests answered in order; Upgrade: h2c over TLS is "
                   "served as HTTP/1.1 (no 101)", pipelined_and_upgrade)

        def cleartext():
            with self.start(args) as srv:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    s.settimeout(5)
                    got = b""
                    try:
                        while True:
                            d = s.recv(4096)
                            if not d:
                                break
                            got += d
                    except (socket.timeout, ConnectionResetError):
                        pass
                if b"HTTP/1.1" in got:
                    return f"a cleartext request on the TLS port was answered: {got[:80]!r}"
                rc, out, err = curl("--cacert", cert, f"https://127.0.0.1:{srv.port}/", "-d", "x")
                if rc != 0 or out != b"x":
                    return f"the worker after it: {rc} {out!r} {err}"
        self.check("tls: cleartext HTTP on the TLS port gets no HTTP answer; the worker "
                   "serves on", cleartext)

        def trickled():
            # A TLS client that trickles ciphertext yields no plaintext: the
            # read deadline must bound the whole wait, not each byte.
            import ssl
            ka = 1
            with self.start(["--workers", "1", "--app", "hello", "--keepalive-timeout", str(ka),
                             "--tls-cert", cert, "--tls-key", key]) as srv:
                ctx = ssl.create_default_context(cafile=cert)

                def client():
                    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
                    return i, o, ctx.wrap_bio(i, o, server_hostname="127.0.0.1")
                # (a) the ClientHello, a byte at a time
                i, o, ob = client()
                try:
                    ob.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                hello = o.read()
                a = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                # (b) a full handshake, then a request's one record, a byte at a time
                b = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                i, o, ob = client()
                while True:
                    try:
                        ob.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        b.sendall(o.read())
                        i.write(b.recv(65536))
                b.sendall(o.read())
                ob.write(st.build_request(headers=[("X-Slow", "a" * 64)]))
                record = o.read()
                limit = 2 * ka + 2
                t0 = time.monotonic()
                closed = {}
                k = 0
                while time.monotonic() - t0 < limit + 1 and len(closed) < 2:
                    for name, sock, data in (("handshake", a, hello), ("record", b, record)):
                        if name in closed:
                            continue
                        try:
                            sock.send(data[k:k + 1] if k < len(data) - 1 else b"")
                            sock.settimeout(0.25)
                            if not sock.recv(65536):
                                closed[name] = time.monotonic() - t0
                        except socket.timeout:
                            pass
                        except OSError:
                            closed[name] = time.monotonic() - t0
                    k += 1
                a.close()
                b.close()
                if len(closed) < 2:
                    return (f"still open after {limit + 1} s of a byte every 0.5 s "
                            f"(keep-alive timeout {ka} s): closed {closed}")
                rc, out, err = curl("--cacert", cert, f"https://127.0.0.1:{srv.port}/")
                if rc != 0 or out != b"Hello, World!":
                    return f"the worker after it: {rc} {out!r} {err}"
        self.check("tls: a handshake or a request record trickled a byte at a time is cut "
                   "off by the read deadline; the worker serves on", trickled)

        def h2_never_read():
            # Over TLS the answers wait as records in the TLS layer, not in
            # the connection's buffer: the HTTP/2 read throttle must see them.
            import ssl
            import h2wire as hw
            with self.start(args) as srv:
                kids = srv.wait_workers(1)
                if not kids:
                    return f"workers {srv.workers()}"

                def rss():
                    with open(f"/proc/{kids[0]}/status") as f:
                        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
                ctx = ssl.create_default_context(cafile=cert)
                ctx.set_alpn_protocols(["h2"])
                raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                big = 2**31 - 1
                s.sendall(hw.PREFACE + hw.settings((hw.S_HEADER_TABLE_SIZE, 0),
                                                   (hw.S_INITIAL_WINDOW_SIZE, big)) +
                          hw.frame(hw.WINDOW_UPDATE, 0, 0, (big - 65535).to_bytes(4, "big")))
                rss0 = peak = rss()
                body = b"x" * 16000
                sid, t0 = 1, time.monotonic()
                s.settimeout(0.5)
                try:
                    while time.monotonic() - t0 < 4:
                        s.sendall(hw.frame(hw.HEADERS, hw.END_HEADERS, sid,
                                           hw.req_block("POST", "/")) +
                                  hw.frame(hw.DATA, hw.END_STREAM, sid, body))
                        sid += 2
                        if sid % 64 == 1:
                            peak = max(peak, rss())
                except OSError:
                    pass  # the socket filled up: the worker stopped reading
                peak = max(peak, rss())
                s.close()
                if peak - rss0 > 64 * 1024:
                    return (f"worker RSS {rss0} -> {peak} KiB for {sid // 2} streams "
                            "of echoed answers never read")
                rc, out, err = curl("--cacert", cert, "--http2", f"https://127.0.0.1:{srv.port}/",
                                    "-d", "after")
                if rc != 0 or out != b"after":
                    return f"the worker after it: {rc} {out!r} {err}"
        self.check("tls: an h2 client that never reads (windows 2^31-1, 16 KB POSTs echoed): "
                   "the worker stops reading, its RSS grows < 64 MiB; it serves on",
                   h2_never_read)

        def over_unix():
            path = os.path.join(self.tmp, "tls.sock")
            with self.start(["--workers", "2", "--app", "echo", "--unix", path,
                             "--tls-cert", cert, "--tls-key", key]):
                for flag in ("--http1.1", "--http2"):
                    rc, out, err = curl("--cacert", cert, "--unix-socket", path, flag,
                                        "https://127.0.0.1/", "-d", "tls+unix")
                    if rc != 0 or out != b"tls+unix":
                        return f"{flag}: curl {rc} {out!r} {err}"
        self.check("tls: over --unix too (HTTP/1.1 and h2, 2 workers)", over_unix)

        def bad_files():
            garbage = os.path.join(self.tmp, "garbage.pem")
            with open(garbage, "w") as f:
                f.write("not a certificate\n")
            cases = [
                (["--tls-cert", os.path.join(self.tmp, "nope.crt"), "--tls-key", key],
                 "--tls-cert " + os.path.join(self.tmp, "nope.crt") + ": No such file"),
                (["--tls-cert", cert, "--tls-key", os.path.join(self.tmp, "nope.key")],
                 "--tls-key " + os.path.join(self.tmp, "nope.key") + ": No such file"),
                (["--tls-cert", garbage, "--tls-key", key], "not a PEM certificate"),
                (["--tls-cert", cert, "--tls-key", garbage], "not a PEM private key"),
                (["--tls-cert", cert, "--tls-key", other_key], "does not match"),
                (["--tls-cert", cert], "--tls-cert and --tls-key go together"),
            ]
            for extra, want in cases:
                rc, out = self.run_fail(["--workers", "1", *extra])
                lines = [l for l in out.splitlines() if l.strip() and not l.startswith("Try ")]
                if rc != 2 or len(lines) != 1 or want not in lines[0]:
                    return f"{extra}: exit {rc}, output {out!r}, want one line with {want!r}"
        self.check("tls: a missing, garbage or mismatched certificate or key is one line at "
                   "start, exit 2", bad_files)

    # ---- all

    def logs_clean(self):
        return st.logs_clean(self.started)

    def run(self):
        t = self.t
        t.note(f"server {self.bin}")
        try:
            for name, fn in (("spread", self.spread), ("unix", self.unix),
                             ("tls", self.tls)):
                if self.only and not self.only.search(name):
                    continue
                t0 = time.monotonic()
                try:
                    fn()
                except Exception as e:  # noqa: BLE001
                    t.ok(False, f"section {name} ran to its end", f"{type(e).__name__}: {e}")
                t.note(f"section {name}: {time.monotonic() - t0:.1f} s")
            t.check(f"logs: no sanitizer report or worker death in {len(self.started)} "
                    "server runs", self.logs_clean)
        finally:
            for srv in self.started:
                srv.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return t.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True, help="coro-server or async-server binary")
    ap.add_argument("--only", help="run only the checks whose name matches this regex")
    return Suite(ap.parse_args()).run()


if __name__ == "__main__":
    st.main_guard(main)
