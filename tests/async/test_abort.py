#!/usr/bin/env python3
"""test_abort.py — clients that leave while their request waits on an
explicit fetch: async-server must cancel the fetch (the upstream sees its
connections close), free the request (no sanitizer report at exit when built
with ASan), keep serving, and stop at once on SIGTERM since nothing is left in
flight.

Usage: test_abort.py [--server BIN] [--upstream-bin BIN]. Output: TAP.
Standard library only; every process started here is stopped by its PID.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

CLIENTS = 20


def start(argv, stream):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    other = proc.stderr if stream == "stdout" else proc.stdout
    lines = []
    drained = []
    threading.Thread(target=lambda: drained.extend(other), daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = pipe.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening on (\S+)", line)
        if m:
            rest = lines if stream == "stderr" else drained
            threading.Thread(target=lambda: rest.extend(pipe), daemon=True).start()
            return proc, m.group(1), (lines if stream == "stderr" else drained)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{argv[0]} did not become ready: {''.join(lines)!r}")


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def http_get(addr, path, timeout=5):
    s = socket.create_connection(split_addr(addr), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def upstream_open(addr):
    """Connections the upstream has open, not counting the one asking."""
    body = http_get(addr, "/_stats").partition(b"\r\n\r\n")[2].decode()
    m = re.search(r"open (\d+)", body)
    return int(m.group(1)) - 1 if m else -1


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

    up, up_addr, _ = start([args.upstream_bin, "--listen", "127.0.0.1:0", "--delay-ms", "5",
                            "--size", "32"], "stdout")
    srv = None
    try:
        # ?stall=1: the upstream never answers, so every fetch waits until
        # the client leaves (or the 10 s upstream timeout, far beyond this test).
        srv, addr, log = start([args.server, "--listen", "127.0.0.1:0", "--workers", "1",
                                "--app", "proxy-async", "--upstream", f"http://{up_addr}/?stall=1",
                                "--upstream-timeout", "10000"], "stderr")
        socks = []
        for _ in range(CLIENTS):
            s = socket.create_connection(split_addr(addr), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            socks.append(s)
        deadline = time.monotonic() + 5
        while upstream_open(up_addr) < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)
        opened = upstream_open(up_addr)
        ok(opened == CLIENTS, f"{CLIENTS} fetches waiting at the upstream", f"open: {opened}")
        for s in socks:
            s.close()
        deadline = time.monotonic() + 5
        while upstream_open(up_addr) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        left = upstream_open(up_addr)
        ok(left == 0, "the fetches are cancelled when their clients leave", f"still open: {left}")

        t0 = time.monotonic()
        srv.terminate()
        try:
            rc = srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = srv.wait()
        took = time.monotonic() - t0
        ok(rc == 0, "SIGTERM: exit 0", f"exit {rc}")
        ok(took < 3, f"SIGTERM: stops at once, nothing left in flight ({took:.2f} s)")
        time.sleep(0.2)
        text = "".join(log)
        ok("Sanitizer" not in text and "runtime error" not in text,
           "no sanitizer report (leaks of cancelled requests)", text[-3000:])
    finally:
        for p in (srv, up):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    print(f"1..{n}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
