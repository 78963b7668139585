#!/usr/bin/env python3
"""test_slowread.py — the write timeout, for either server binary
(coro-server or async-server), with --keepalive-timeout 1:

  steady reader   a client with a 4 KiB receive buffer pipelines tens of
                  thousands of GETs and reads 4 KiB every 5 ms: it is served
                  every answer. The server's send buffer grows to megabytes
                  (tcp_wmem) and the kernel reports room again only once a
                  third of it has drained, which takes this reader longer
                  than the timeout: the timeout must run from the last time
                  the client took bytes, not from the server's last write
                  (servers/core/clock.h, core_stall).
  long heads      the same with 330-byte request heads: the head the server
                  had begun to read when its answers filled the socket waits
                  there; the time the client spends reading those answers is
                  not time it took to send the head (core_h1_sent).
  stopped reader  a client that pipelines and never reads is dropped: the
                  worker holds its descriptor no longer than two timeouts
                  (and a margin) after its first push (it never took a
                  byte; the server's socket fills a moment after).

Timing: nothing here needs the machine to be fast. The readers only have to
keep reading; the stopped reader's bound is generous (2 x 1 s + 4 s).

Usage:
    python3 test_slowread.py --server PATH [--only REGEX]

TAP on stdout. Standard library only; every process is stopped by its PID.
"""

import argparse
import os
import re
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvtest as st  # noqa: E402

KA = 1  # --keepalive-timeout: the read and write timeout
STATUS = b"HTTP/1.1 200 "
# Each case is bounded: a reader that has not finished by then fails.
CASE_LIMIT = 90.0


def small_rcvbuf_conn(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    s.connect(("127.0.0.1", port))
    return s


def h1_flood(port):
    """The stopped reader's HTTP/1.1 connection, and the bytes it pushes
    (pipelined GETs, the same each time)."""
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 1000
    return small_rcvbuf_conn(port), lambda: req


def steady_reader(port, nreq, pad=0, chunk=4096, nap=0.005):
    """Pipeline nreq GETs (a writer thread) and read chunk bytes every nap
    seconds until every answer is in. Returns None, or what went wrong."""
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if pad:
        head += b"X-Pad: " + b"p" * pad + b"\r\n"
    req = head + b"\r\n"
    s = small_rcvbuf_conn(port)
    send_err = []

    def push():
        try:
            s.sendall(req * nreq)
        except OSError as e:
            send_err.append(e)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    s.settimeout(10)
    got, tail = 0, b""
    t0 = time.monotonic()
    why = None
    try:
        while got < nreq:
            if time.monotonic() - t0 > CASE_LIMIT:
                why = f"still reading after {CASE_LIMIT:.0f} s"
                break
            try:
                d = s.recv(chunk)
            except ConnectionResetError:
                why = "the server reset the connection"
                break
            except socket.timeout:
                why = "no answer byte for 10 s"
                break
            if not d:
                why = "the server closed the connection"
                break
            buf = tail + d
            got += buf.count(STATUS) - tail.count(STATUS)
            tail = buf[-(len(STATUS) - 1):]
            time.sleep(nap)
    finally:
        s.close()
        pusher.join(5)
    dt = time.monotonic() - t0
    if why:
        extra = f"; the client's send failed: {send_err[0]!r}" if send_err else ""
        return (f"{why} after {got} of {nreq} answers in {dt:.1f} s, reading "
                f"{chunk} B every {nap * 1000:.0f} ms (a reader that kept draining; "
                f"--keepalive-timeout {KA}){extra}")
    return None


class Suite:
    def __init__(self, args):
        self.bin = args.server
        self.only = re.compile(args.only) if args.only else None
        self.t = st.Tap()

    def check(self, name, fn, *a):
        if self.only and not self.only.search(name):
            return
        self.t.check(name, fn, *a)

    def start(self, extra=()):
        args = ["--workers", "1", "--app", "hello", "--quiet", "--graceful-timeout", "5",
                "--keepalive-timeout", str(KA), *extra]
        srv = st.start_worker(self.bin, args)
        st.get(srv.port, "/", timeout=10)  # a worker opens some descriptors lazily
        time.sleep(0.1)
        srv.base_fds = st.fd_count(srv.wpid)
        return srv

    def run(self):
        srv = self.start()
        try:
            # ~128-byte answers: 45,000 of them (5.8 MB) fill the server's send
            # buffer even at its 4 MiB autotuning ceiling.
            self.check("steady reader: 45,000 pipelined GETs, 4 KiB read every 5 ms "
                       "through a 4 KiB receive buffer: every answer, no reset",
                       steady_reader, srv.port, 45000)
            self.check("long heads: the same with 330-byte request heads: every answer, "
                       "no reset", steady_reader, srv.port, 40000, 290)
            self.check(f"stopped reader: pipelines, never reads: dropped within "
                       f"{2 * KA + 4} s of its first push", self._stopped, srv)
            self.check("the worker serves on", self._normal, srv)
            self.check("no error lines", lambda: st.logs_clean([srv]))
        finally:
            srv.stop()
        return self.t.finish()

    def _stopped(self, srv, flood=h1_flood):
        """flood(port): a connection with a small receive buffer, and a
        function that gives the next bytes it pushes. It never reads: the
        server's wait to write begins once its answers fill the socket, a
        moment after the first push, so the bound counts from there."""
        st.wait_until(lambda: st.fd_count(srv.wpid) <= srv.base_fds, 5.0, step=0.05)
        base = st.fd_count(srv.wpid)
        s, more = flood(srv.port)
        s.setblocking(False)
        if not st.wait_until(lambda: st.fd_count(srv.wpid) > base, 5.0, step=0.01):
            s.close()
            return "the worker never took the connection (its descriptors did not grow)"
        limit = 2 * KA + 4
        t0 = time.monotonic()
        stuck = gone = None
        pushing, how = True, "its sends never stalled"
        out = b""
        try:
            # Push until the server has taken nothing for half a second (its
            # answers fill both buffers) or cuts the connection; meanwhile
            # and then, watch for the worker to let go of it. A partial send
            # keeps its rest: HTTP/2 frames must not be cut.
            while gone is None and time.monotonic() - t0 < limit + 1:
                if pushing:
                    try:
                        out = out or more()
                        out = out[s.send(out):]
                        stuck = None
                    except BlockingIOError:
                        stuck = stuck or time.monotonic()
                        if time.monotonic() - stuck > 0.5:
                            pushing = False
                            how = f"its sends stalled after {stuck - t0:.1f} s"
                    except OSError as e:
                        pushing = False
                        how = f"its send failed after {time.monotonic() - t0:.1f} s ({e.strerror})"
                if st.fd_count(srv.wpid) <= base:
                    gone = time.monotonic()
                time.sleep(0.005)
        finally:
            s.close()
        if gone is None:
            return (f"a client that never read is still connected "
                    f"{time.monotonic() - t0:.1f} s after its first push, {how} "
                    f"(--keepalive-timeout {KA})")
        self.t.note(f"stopped reader: dropped {gone - t0:.1f} s after its first push; {how}")
        return None

    def _normal(self, srv):
        r = st.get(srv.port, "/", timeout=10)
        if r.status != 200 or r.body != b"Hello, World!":
            return f"after the cases: {r!r}"
        if srv.proc.poll() is not None:
            return f"master exited {srv.proc.returncode}"
        return None


def main(suite=None, doc=__doc__):
    """Also test_h2_slowread.py's, with its suite and docstring."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--only", help="run only the checks whose name matches")
    return (suite or Suite)(ap.parse_args()).run()


if __name__ == "__main__":
    sys.exit(st.main_guard(main))
