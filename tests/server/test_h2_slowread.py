#!/usr/bin/env python3
"""test_h2_slowread.py — the write timeout over cleartext HTTP/2 (prior
knowledge), for either server binary, with --keepalive-timeout 1 (the cases
of test_slowread.py, which does HTTP/1.1; its server and stopped-reader
check are reused here):

  steady reader   a client with a 4 KiB receive buffer opens 80,000 streams
                  (GET / of hello, 83 bytes of frames each: 6.6 MB, more
                  than the server's send buffer at its 4 MiB autotuning
                  ceiling) and reads 4 KiB every 10 ms: every stream is
                  answered 200 in full, nothing is reset, and no GOAWAY
                  comes before the last answer (async's idle timer must not
                  count a connection whose answers wait for the socket as
                  idle; coro does not read then at all).
  stopped reader  a client that opens streams and never reads is dropped
                  within two timeouts and a margin of its first push, and
                  the worker serves a new HTTP/2 client.

No speed is needed: the reader only has to go on reading, and the dropped
client's bound (2 x 1 s + 4 s) leaves room for a loaded machine.

    python3 test_h2_slowread.py --server PATH [--only REGEX]

TAP on stdout; standard library only; processes are stopped by their PID.
"""

import itertools
import os
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvtest as st  # noqa: E402
import test_slowread as sr  # noqa: E402
from h2wire import (DATA, END_HEADERS, END_STREAM, GOAWAY, H2, HEADERS,  # noqa: E402
                    RST_STREAM, S_INITIAL_WINDOW_SIZE, WINDOW_UPDATE, ename, frame,
                    h2_request, req_block, status_of)

WINDOW_MAX = (1 << 31) - 1
BODY = b"Hello, World!"
GET = req_block("GET", "/")
BATCH = 500  # streams per send
# Streams one server read can open (64 KiB of ~25-byte HEADERS frames) stay
# open until their answers are flushed: the limit must be above that.
MAX_STREAMS = 10000


def h2_open(port):
    """A connection with a 4 KiB receive buffer whose windows never stop
    the server: every answer's DATA may go out at once."""
    h = H2(port, timeout=10, rcvbuf=4096)
    h.ready((S_INITIAL_WINDOW_SIZE, WINDOW_MAX))
    h.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WINDOW_MAX - 65535)))
    return h


def gets(ids, n):
    """n GETs of /, on the next n stream ids."""
    return b"".join(frame(HEADERS, END_STREAM | END_HEADERS, next(ids), GET) for _ in range(n))


def h2_flood(port):
    """test_slowread's stopped reader, over HTTP/2: new streams each push."""
    h = h2_open(port)
    ids = itertools.count(1, 2)
    return h.sock, lambda: gets(ids, BATCH)


def steady_reader(port, nreq, chunk=4096, nap=0.01):
    """Open nreq streams (a writer thread) and take chunk bytes of frames
    every nap seconds until every stream has ended. Returns None, or what
    went wrong."""
    h = h2_open(port)
    # The writer's own socket object (same descriptor): its send timeout is
    # not the reader's.
    w = h.sock.dup()
    w.settimeout(sr.CASE_LIMIT)
    send_err = []

    def push():
        ids = itertools.count(1, 2)
        try:
            for i in range(0, nreq, BATCH):
                w.sendall(gets(ids, min(BATCH, nreq - i)))
        except OSError as e:
            send_err.append(e)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    ended = ok = body = taken = 0
    why = None
    t0 = time.monotonic()
    try:
        while ended < nreq:
            if time.monotonic() - t0 > sr.CASE_LIMIT:
                why = f"still reading after {sr.CASE_LIMIT:.0f} s"
                break
            try:
                f = h.read_frame(10)
            except TimeoutError:
                why = "no frame for 10 s"
                break
            if f is None:
                why = "the server closed the connection"
                break
            h.frames.clear()  # counted here: do not keep 160,000 frames
            t, fl, sid, p = f
            if t == HEADERS:
                ok += status_of(p) == 200
            elif t == DATA:
                body += len(p)
            elif t == RST_STREAM:
                why = f"RST_STREAM({ename(int.from_bytes(p[:4], 'big'))}) on stream {sid}"
                break
            elif t == GOAWAY:
                why = (f"GOAWAY({ename(int.from_bytes(p[4:8], 'big'))}, last stream "
                       f"{int.from_bytes(p[:4], 'big') & 0x7FFFFFFF}) before the last answer")
                break
            if t in (HEADERS, DATA) and fl & END_STREAM:
                ended += 1
            taken += 9 + len(p)
            if taken >= chunk:
                taken -= chunk
                time.sleep(nap)
    finally:
        h.close()
        w.close()
        pusher.join(5)
    dt = time.monotonic() - t0
    if not why and (ok != nreq or body != nreq * len(BODY)):
        why = f"{ok} answers 200 and {body} body bytes, want {nreq} and {nreq * len(BODY)}"
    if why:
        extra = f"; the client's send failed: {send_err[0]!r}" if send_err else ""
        return (f"{why}, after {ended} of {nreq} streams ended in {dt:.1f} s, reading "
                f"{chunk} B every {nap * 1000:.0f} ms (a reader that kept draining; "
                f"--keepalive-timeout {sr.KA}){extra}")
    return None


class Suite(sr.Suite):
    def run(self):
        srv = self.start(("--h2-max-streams", str(MAX_STREAMS)))
        try:
            self.check("steady reader: 80,000 streams, 4 KiB read every 10 ms through a "
                       "4 KiB receive buffer: every answer, no reset, no early GOAWAY",
                       steady_reader, srv.port, 80000)
            self.check(f"stopped reader: opens streams, never reads: dropped within "
                       f"{2 * sr.KA + 4} s of its first push",
                       self._stopped, srv, h2_flood)
            self.check("the worker serves a new HTTP/2 client", self._h2_normal, srv)
            self.check("no error lines", lambda: st.logs_clean([srv]))
        finally:
            srv.stop()
        return self.t.finish()

    def _h2_normal(self, srv):
        status, body = h2_request(srv.port, timeout=10)
        if (status, body) != (200, BODY):
            return f"after the cases: {status} {body!r}"
        return self._normal(srv)


if __name__ == "__main__":
    sys.exit(st.main_guard(lambda: sr.main(Suite, __doc__)))
