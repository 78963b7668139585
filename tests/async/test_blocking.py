#!/usr/bin/env python3
"""test_blocking.py — the blocking-call pitfall of the explicit-async worker,
measured.

With one worker and an upstream that answers after 50 ms, the blocking-style
`proxy` app blocks the whole async-server worker on every fetch, so it serves
about 1 / 50 ms = 20 requests/s whatever the concurrency; the explicit
`proxy-async` app keeps the loop free and scales with concurrency. That is
the 2012 post's collapse of uWSGI's early numbers, kept on purpose.

Usage: test_blocking.py [--server BIN] [--upstream-bin BIN]
(defaults: build/servers/async/async-server and build/servers/upstream/upstream
under $COROBENCH_BUILD). Output: TAP. Standard library only; every process
started here is stopped by its PID.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

DELAY_MS = 50
SECONDS = 2.0


def start(argv, pattern, stream):
    """Start argv, wait for its readiness line; return (proc, address)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(pattern, line)
        if m:
            # Keep draining the pipe so the child never blocks on it.
            threading.Thread(target=lambda: [None for _ in pipe], daemon=True).start()
            if stream == "stdout":
                threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    stop(proc)
    raise RuntimeError(f"{argv[0]} did not become ready: {''.join(lines)!r}")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def get(sock, buf):
    """One keep-alive GET / on sock; returns (status, leftover bytes)."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    need = int(m.group(1)) if m else 0
    while len(rest) < need:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[need:]


def rate(addr, concurrency, seconds):
    """Requests/s over `concurrency` keep-alive connections for `seconds`."""
    host, port = split_addr(addr)
    done = [0] * concurrency
    errors = []
    start_evt = threading.Event()
    t_end = [0.0]

    def client(i):
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = b""
            start_evt.wait()
            while time.monotonic() < t_end[0]:
                status, buf = get(s, buf)
                if status != 200:
                    errors.append(status)
                    break
                done[i] += 1
            s.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(0.2)  # connections up
    t0 = time.monotonic()
    t_end[0] = t0 + seconds
    start_evt.set()
    for t in threads:
        t.join(timeout=seconds + 15)
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"client errors: {errors[:3]}")
    return sum(done) / elapsed


def main():
    build = os.environ.get("COROBENCH_BUILD", "build")
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default=os.path.join(build, "servers/async/async-server"))
    ap.add_argument("--upstream-bin", default=os.path.join(build, "servers/upstream/upstream"))
    args = ap.parse_args()

    n = 0
    failed = 0

    def ok(cond, name, detail=""):
        nonlocal n, failed
        n += 1
        print(f"{'ok' if cond else 'not ok'} {n} - {name}", flush=True)
        if not cond:
            failed += 1
            for line in str(detail).splitlines():
                print(f"#   {line}", flush=True)

    up, up_addr = start([args.upstream_bin, "--listen", "127.0.0.1:0", "--delay-ms", str(DELAY_MS),
                         "--size", "64"], r"listening on (\S+)", "stdout")
    try:
        rates = {}
        for app in ("proxy", "proxy-async"):
            srv, addr = start([args.server, "--listen", "127.0.0.1:0", "--workers", "1", "--app", app,
                               "--upstream", f"http://{up_addr}/", "--quiet"],
                              r"listening on (\S+)", "stderr")
            try:
                for c in (1, 10):
                    rates[(app, c)] = rate(addr, c, SECONDS)
                    print(f"# {app} c={c}: {rates[(app, c)]:.1f} req/s", flush=True)
            finally:
                stop(srv)
                ok(srv.returncode == 0, f"{app}: server exits 0 on SIGTERM", f"exit {srv.returncode}")
        # A blocked worker serves at most one request per upstream delay
        # (1000/DELAY_MS req/s), whatever the concurrency. The upper bounds are
        # the point; the lower bound is loose because a shared CI runner can
        # slow the loop down but never speed it past the bound.
        bound = 1000.0 / DELAY_MS
        for c in (1, 10):
            r = rates[("proxy", c)]
            ok(0.4 * bound <= r <= 1.1 * bound,
               f"proxy (blocking) at c={c} serves ~{bound:.0f} req/s, no more (got {r:.1f})")
        p1, p10 = rates[("proxy", 1)], rates[("proxy", 10)]
        ok(p10 <= 1.2 * p1, f"proxy (blocking) does not scale: c=10 {p10:.1f} req/s <= 1.2 x c=1 {p1:.1f}")
        r1, r10 = rates[("proxy-async", 1)], rates[("proxy-async", 10)]
        ok(r10 > 5 * r1, f"proxy-async scales: c=10 {r10:.1f} req/s > 5 x c=1 {r1:.1f} req/s")
    finally:
        stop(up)
    print(f"1..{n}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
