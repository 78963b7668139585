#!/usr/bin/env python3
"""repro.py — minimal reproductions of the server bugs test_hostile.py found
(results/HISTORY.md, "Findings"), one per bug, for the servers' owners:

    python3 tests/hostile/repro.py c1 SERVER   # stack use-after-return (ASan build)
    python3 tests/hostile/repro.py h1 SERVER   # slowloris is never cut off
    python3 tests/hostile/repro.py h2 SERVER   # unread answers: how long kept
    python3 tests/hostile/repro.py h3 SERVER   # fd exhaustion: is it logged

Each prints one line with what it saw and exits 1 when the bug shows.
Standard library only; every process is stopped by its PID.
"""

import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "server"))
import srvtest as st  # noqa: E402


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start(binary, *args, env=None):
    srv = st.start_server(binary, ["--workers", "1", "--keepalive-timeout", "2", *args], env=env)
    if not srv.ready_ok:
        sys.exit(f"server did not start:\n{srv.text()}")
    return srv, srv.wait_workers(1)[0]


def c1(binary):
    env = dict(os.environ, ASAN_OPTIONS="detect_stack_use_after_return=1")
    srv, _ = start(binary, "--quiet", env=env)
    st.get(srv.port)
    time.sleep(0.3)
    srv.stop()
    bad = [l for l in srv.output() if "AddressSanitizer" in l or " in conn_cleanup" in l]
    print("C1:", " | ".join(bad[:2]) if bad else "no report (not an ASan build, or fixed)")
    return 1 if bad else 0


def h1(binary):
    srv, _ = start(binary, "--quiet")
    s = socket.create_connection(("127.0.0.1", srv.port))
    t0 = time.monotonic()
    closed = False
    for b in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 60:
        try:
            s.send(bytes([b]))
        except OSError:
            closed = True
            break
        time.sleep(1)
        if time.monotonic() - t0 > 8:
            break
    srv.stop()
    print(f"H1: one byte a second, --keepalive-timeout 2: "
          f"{'closed' if closed else 'still open'} after {time.monotonic() - t0:.0f} s")
    return 0 if closed else 1


def h2(binary):
    srv, w = start(binary, "--quiet", "--app", "hello")
    c = st.Conn(srv.port)
    c.request()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.setblocking(False)
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 1000
    last = time.monotonic()
    while time.monotonic() - last < 1:  # pipeline until the server stops reading
        try:
            c.sock.send(req)
            last = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    during = fds(w)
    t1 = time.monotonic()
    while fds(w) >= during and time.monotonic() - t1 < 90:
        time.sleep(0.5)
    dt = time.monotonic() - last
    srv.stop()
    print(f"H2: answers never read, --keepalive-timeout 2: closed {dt:.1f} s after the "
          "client's last send")
    return 1 if dt > 10 else 0


def h3(binary):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        srv, w = start(binary)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # async-server raises its soft limit to the hard one: pin the worker's.
    try:
        resource.prlimit(w, resource.RLIMIT_NOFILE, (64, 64))
    except (OSError, AttributeError):
        pass
    socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(100)]
    time.sleep(1.5)
    for s in socks:
        s.close()
    r = st.get(srv.port, timeout=5)
    srv.stop()
    lines = srv.output()[1:-2]  # between "listening" and the shutdown lines
    print(f"H3: RLIMIT_NOFILE 64, 100 connections: then {r.status}; log lines: {lines}")
    return 0 if lines else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("c1", "h1", "h2", "h3"):
        sys.exit(__doc__)
    sys.exit(globals()[sys.argv[1]](sys.argv[2]))
