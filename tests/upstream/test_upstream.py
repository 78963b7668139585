#!/usr/bin/env python3
"""test_upstream.py — the upstream stub (servers/upstream) from the outside:
its flags and messages, the readiness line, every per-request override
(?delay ?size ?status ?close ?reset ?stall), keep-alive for HTTP/1.1 and
1.0, pipelining, request bodies, the error answers and a clean SIGTERM.

Usage: test_upstream.py [PATH-TO-UPSTREAM]; without it the binary is looked
up under $COROBENCH_BUILD/servers/upstream/upstream.
"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

PATTERN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
EXE = None


def pattern(n):
    return (PATTERN * (n // 64 + 1))[:n]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream:
    """One upstream process on a free port, stopped by its PID."""

    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [EXE, "--listen", f"127.0.0.1:{self.port}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ready = self.proc.stdout.readline()
        if "listening on" not in self.ready:
            self.proc.kill()
            raise RuntimeError(f"upstream did not start: {self.ready!r} "
                               f"{self.proc.stderr.read()!r}")

    def conn(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, timeout=5):
        c = self.conn(timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read(), r
        finally:
            c.close()

    def stats(self):
        _, body, _ = self.get("/_stats")
        return dict((k, int(v)) for k, v in (l.split() for l in body.decode().splitlines()))

    def raw(self, data, timeout=2):
        """Send raw bytes, read until the peer closes or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            out = b""
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    out += b
            except socket.timeout:
                pass
            return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=10)


class Flags(unittest.TestCase):
    def test_help_lists_every_flag_with_default(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: upstream [OPTION]...", r.stdout)
        for flag, default in [("--listen ADDR", "(default: 127.0.0.1:9000)"),
                              ("--delay-ms D", "(default: 0)"),
                              ("--wake-per-request", "(default: off)"),
                              ("--size BYTES", "(default: 64)"),
                              ("--backlog N", "(default: 4096)"),
                              ("--quiet", "(default: off)")]:
            line = next((l for l in r.stdout.splitlines() if flag in l), "")
            self.assertIn(default, line, flag)
        for word in ("--help", "--version", "?delay=", "?size=", "?status=", "?close=1",
                     "?reset=1", "?stall=1"):
            self.assertIn(word, r.stdout)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^upstream \d+\.\d+\.\d+\n$")

    def test_bad_flags(self):
        for args, msg in [
            (["--size", "abc"], "upstream: --size: 'abc' is not a number (0..1073741824)"),
            (["--delay-ms=99999999"], "upstream: --delay-ms: '99999999' is out of range (0..3600000)"),
            (["--nope"], "upstream: unknown flag '--nope'"),
            (["--size"], "upstream: --size needs a value (BYTES)"),
            (["--quiet=1"], "upstream: --quiet takes no value"),
            (["stray"], "upstream: unexpected argument 'stray'"),
        ]:
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg + "\n", r.stderr, args)
            self.assertIn("Try 'upstream --help'.", r.stderr)

    def test_bad_listen(self):
        for addr in ("nope", "127.0.0.1:99999", "[::1]80", "256.1.1.1:80"):
            r = run("--listen", addr)
            self.assertEqual(r.returncode, 1, addr)
            self.assertIn(f"upstream: cannot listen on {addr}: ", r.stderr)

    def test_port_in_use(self):
        u = Upstream()
        try:
            r = run("--listen", f"127.0.0.1:{u.port}")
            self.assertEqual(r.returncode, 1)
            self.assertIn("Address already in use", r.stderr)
        finally:
            u.stop()

    def test_ipv6_and_equals_form(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
                port = s.getsockname()[1]
        except OSError:
            self.skipTest("no IPv6 loopback")
        p = subprocess.Popen([EXE, f"--listen=[::1]:{port}", "--size=5"],
                             stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), f"upstream: listening on [::1]:{port}\n")
            c = http.client.HTTPConnection("::1", port, timeout=5)
            c.request("GET", "/")
            self.assertEqual(c.getresponse().read(), b"ABCDE")
            c.close()
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=5)
            p.stdout.close()

    def test_sigterm_and_sigint_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            u = Upstream()
            self.assertEqual(u.get("/")[0], 200)
            u.proc.send_signal(sig)
            self.assertEqual(u.proc.wait(timeout=5), 0)
            self.assertIn("upstream: stopped after 1 requests on 1 connections",
                          u.proc.stdout.read())
            u.stop()

    def test_quiet(self):
        u = Upstream("--quiet")
        self.assertEqual(u.ready, f"upstream: listening on 127.0.0.1:{u.port}\n")
        u.proc.send_signal(signal.SIGTERM)
        self.assertEqual(u.proc.wait(timeout=5), 0)
        self.assertEqual(u.proc.stdout.read(), "")
        u.stop()


class Answers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.u = Upstream("--delay-ms", "30", "--size", "1000")

    @classmethod
    def tearDownClass(cls):
        assert cls.u.stop() == 0, "upstream did not exit 0 on SIGTERM"

    def test_readiness_line(self):
        self.assertEqual(self.u.ready, f"upstream: listening on 127.0.0.1:{self.u.port}\n")

    def test_default_answer(self):
        t0 = time.monotonic()
        status, body, r = self.u.get("/")
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 200)
        self.assertEqual(body, pattern(1000))
        self.assertEqual(r.getheader("Content-Length"), "1000")
        self.assertGreaterEqual(elapsed, 0.025)

    def test_delay_override(self):
        t0 = time.monotonic()
        self.assertEqual(self.u.get("/?delay=0")[0], 200)
        fast = time.monotonic() - t0
        t0 = time.monotonic()
        self.assertEqual(self.u.get("/?delay=200")[0], 200)
        slow = time.monotonic() - t0
        self.assertLess(fast, 0.2)
        self.assertGreaterEqual(slow, 0.19)

    def test_size_override(self):
        for n in (0, 1, 63, 64, 65, 100000, 200000):
            status, body, _ = self.u.get(f"/x/y?a=b&size={n}&delay=0")
            self.assertEqual(status, 200)
            self.assertEqual(len(body), n)
            self.assertEqual(body, pattern(n))

    def test_status_override(self):
        for code in (200, 404, 500, 502, 503):
            status, body, _ = self.u.get(f"/?status={code}&size=10")
            self.assertEqual(status, code)
            self.assertEqual(body, pattern(10))
        status, body, _ = self.u.get("/?status=204")
        self.assertEqual((status, body), (204, b""))

    def test_bad_override_is_400(self):
        for q in ("size=abc", "delay=-1", "status=99", "status=600", "close=2"):
            status, _, r = self.u.get("/?" + q)
            self.assertEqual(status, 400, q)
            self.assertEqual(r.getheader("Connection"), "close")

    def test_close(self):
        c = self.u.conn()
        c.request("GET", "/?close=1")
        with self.assertRaises(http.client.RemoteDisconnected):
            c.getresponse()
        c.close()

    def test_reset_mid_body(self):
        c = self.u.conn()
        c.request("GET", "/?reset=1&size=10000")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Length"), "10000")
        with self.assertRaises(http.client.IncompleteRead) as cm:
            r.read()
        self.assertEqual(len(cm.exception.partial), 5000)
        c.close()

    def test_stall(self):
        c = self.u.conn(timeout=0.5)
        c.request("GET", "/?stall=1")
        with self.assertRaises(socket.timeout):
            c.getresponse()
        c.close()
        # the stalled connection goes away with its client
        time.sleep(0.1)
        self.assertEqual(self.u.get("/?delay=0")[0], 200)

    def test_keepalive_http11(self):
        before = self.u.stats()
        c = self.u.conn()
        for i in range(5):
            c.request("GET", f"/?delay=0&size={i}")
            r = c.getresponse()
            self.assertEqual(r.read(), pattern(i))
            self.assertIsNone(r.getheader("Connection"))
        c.close()
        after = self.u.stats()
        # one connection for the five, one for the second stats call
        self.assertEqual(after["connections"] - before["connections"], 2)
        self.assertEqual(after["requests"] - before["requests"], 6)

    def test_http11_connection_close(self):
        out = self.u.raw(b"GET /?delay=0&size=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)
        self.assertIn(b"\r\nConnection: close\r\n", out)
        self.assertTrue(out.endswith(b"\r\n\r\nABC"))  # and closed: raw() returned

    def test_http10(self):
        # no keep-alive asked: answered, then closed
        out = self.u.raw(b"GET /?delay=0&size=3 HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"Connection: close", out)
        self.assertTrue(out.endswith(b"ABC"))
        # keep-alive asked: kept, two answers on one connection
        with socket.create_connection(("127.0.0.1", self.u.port), timeout=2) as s:
            for _ in range(2):
                s.sendall(b"GET /?size=2 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                data = b""
                while not data.endswith(b"AB"):
                    data += s.recv(4096)
                self.assertIn(b"Connection: keep-alive\r\n", data)

    def test_pipelined_in_order(self):
        reqs = b"".join(b"GET /?delay=%d&size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (d, n)
                        for d, n in ((60, 1), (0, 2), (20, 3)))
        reqs += b"GET /?size=4 HTTP/1.1\r\nConnection: close\r\n\r\n"
        out = self.u.raw(reqs)
        bodies = [part.split(b"\r\n\r\n", 1)[1][:4] for part in out.split(b"HTTP/1.1 ")[1:]]
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 4)
        self.assertEqual([b[: i + 1] for i, b in enumerate(bodies)],
                         [b"A", b"AB", b"ABC", b"ABCD"])

    def test_request_body_skipped(self):
        c = self.u.conn()
        c.request("POST", "/?delay=0&size=5", body=b"x" * 50000)
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"ABCDE"))
        c.request("GET", "/?delay=0&size=2")  # same connection still in step
        self.assertEqual(c.getresponse().read(), b"AB")
        c.close()

    def test_head(self):
        c = self.u.conn()
        c.request("HEAD", "/?delay=0&size=77")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Length"), "77")
        self.assertEqual(r.read(), b"")
        c.close()

    def test_malformed_is_400(self):
        out = self.u.raw(b"NONSENSE\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out)

    def test_chunked_is_501(self):
        out = self.u.raw(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 501 "), out)

    def test_huge_head_is_431(self):
        out = self.u.raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out)

    def test_many_delayed_at_once(self):
        # 200 connections waiting on their timers at the same time
        socks = []
        try:
            for _ in range(200):
                s = socket.create_connection(("127.0.0.1", self.u.port), timeout=5)
                s.sendall(b"GET /?delay=300&size=8 HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            t0 = time.monotonic()
            for s in socks:
                data = b""
                while not data.endswith(b"ABCDEFGH"):
                    data += s.recv(4096)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            for s in socks:
                s.close()

    def test_never_early(self):
        # Requests with different delays in flight together, on separate
        # connections and pipelined on one: an answer can leave the stub only
        # after its request arrived, which was after the client sent it, so
        # each must take its full delay as the client measures it.
        delays = (30, 0, 45, 5, 30, 12, 60, 1)
        socks = []
        try:
            t0 = []
            for d in delays:
                s = socket.create_connection(("127.0.0.1", self.u.port), timeout=5)
                t0.append(time.monotonic())
                s.sendall(b"GET /?delay=%d&size=3 HTTP/1.1\r\nHost: x\r\n\r\n" % d)
                socks.append(s)
            for d, s, t in zip(delays, socks, t0):
                data = b""
                while not data.endswith(b"ABC"):
                    data += s.recv(4096)
                self.assertGreaterEqual(time.monotonic() - t, d / 1000.0, "delay %d" % d)
            s = socks[0]
            t = time.monotonic()
            s.sendall(b"GET /?size=1 HTTP/1.1\r\n\r\nGET /?delay=10&size=2 HTTP/1.1\r\n\r\n")
            data = b""
            while not data.endswith(b"AB"):
                data += s.recv(4096)
            self.assertGreaterEqual(time.monotonic() - t, 0.040)
        finally:
            for s in socks:
                s.close()

    def test_half_closed_client_gets_its_answer(self):
        # The client's side ends while its answer waits: the answer still
        # comes (Connection: close), then the stub closes.
        with socket.create_connection(("127.0.0.1", self.u.port), timeout=5) as s:
            s.sendall(b"GET /?size=4 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK\r\n"), out)
        self.assertIn(b"Connection: close\r\n", out)
        self.assertTrue(out.endswith(b"\r\n\r\nABCD"), out)

    def test_client_gone_while_waiting(self):
        # Clients that leave before their delayed answer: their connections
        # are closed at once, and the answers of the others still come.
        before = self.u.stats()["open"]
        gone = [socket.create_connection(("127.0.0.1", self.u.port), timeout=5)
                for _ in range(20)]
        for s in gone:
            s.sendall(b"GET /?delay=200 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.05)
        for s in gone:
            s.close()
        self.assertEqual(self.u.get("/?size=5")[:2], (200, b"ABCDE"))
        deadline = time.monotonic() + 2
        while self.u.stats()["open"] > before + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        # +1: the /_stats request's own connection
        self.assertLessEqual(self.u.stats()["open"], before + 1)

    def test_stats(self):
        s = self.u.stats()
        self.assertGreaterEqual(s["connections"], 1)
        self.assertGreaterEqual(s["requests"], 1)
        self.assertGreaterEqual(s["open"], 1)


class Ticking(unittest.TestCase):
    """While answers wait and requests come fast (at least two per grain,
    1/128 of --delay-ms, over four grains), requests that arrive wake
    nobody: the stub collects them on its timer, once per grain, and an
    answer still leaves its full delay after its request arrived."""

    def stream(self, *flags):
        # 400 connections, then one request each, in 40 bursts of 10 one
        # millisecond apart: 10 requests per grain of 1 ms (the most a grain
        # gets, at --delay-ms 128 and up).
        u = Upstream("--delay-ms", "1000", "--size", "8", *flags)
        socks = []
        try:
            for _ in range(400):
                socks.append(socket.create_connection(("127.0.0.1", u.port), timeout=10))
            time.sleep(0.05)  # every accept done: from here on only requests wake
            base = u.stats()
            sent = []
            for i, s in enumerate(socks):
                sent.append(time.monotonic())
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                if i % 10 == 9:
                    time.sleep(0.001)
            for s, t in zip(socks, sent):
                data = b""
                while not data.endswith(b"ABCDEFGH"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "connection closed")
                    data += chunk
                self.assertGreaterEqual(time.monotonic() - t, 1.0, "answered early")
            after = u.stats()
        finally:
            for s in socks:
                s.close()
            self.assertEqual(u.stop(), 0)
        self.assertEqual(after["requests"] - base["requests"], 401)  # and /_stats
        return after["wakeups"] - base["wakeups"]

    def test_requests_collected_on_the_timer(self):
        # Woken per burst until the rate is known (four grains), then by
        # nobody; --wake-per-request: at least once per burst.
        ticking = self.stream()
        waking = self.stream("--wake-per-request")
        self.assertGreaterEqual(waking, 40)
        self.assertLess(ticking, waking / 2, "ticking %d, waking %d" % (ticking, waking))


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        EXE = sys.argv.pop(1)
    else:
        EXE = os.path.join(os.environ.get("COROBENCH_BUILD", "build"), "servers", "upstream",
                           "upstream")
    unittest.main(verbosity=2)
