#!/usr/bin/env python3
"""test_coro_server.py — what only coro-server has, over real sockets (the
shared suite tests/server/test_server.py covers everything both servers do):

  --worker-connections N   at the cap the worker stops accepting; the next
                           client is served as soon as a connection ends
  --stack-size KIB         range checked; 32 KiB stacks serve 300
                           concurrent sleeping requests
  graceful timeout         a request still running when --graceful-timeout
                           runs out is unwound (answered), the exit is 0

    python3 test_coro_server.py --server PATH

Prints TAP; exits non-zero when a check fails. Standard library only.
"""

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time

REQ = b"GET /?ms=%d HTTP/1.1\r\nHost: t\r\n\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--workers", "1", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            if b"listening on" in line:
                # keep draining stderr so the server never blocks on it
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return
        self.stop()
        raise RuntimeError("server did not start")

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def read_answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def check_cap(binary):
    srv = Server(binary, "--app", "sleep", "--worker-connections", "2", "--quiet")
    try:
        a, b = srv.connect(), srv.connect()
        for s in (a, b):
            s.sendall(REQ % 0)
            if read_answer(s)[0] != 200:
                return "the first two connections were not served"
        c = srv.connect()  # the kernel completes it; the worker must not take it
        c.sendall(REQ % 0)
        c.settimeout(0.5)
        try:
            got = c.recv(100)
            return f"a third connection was served beyond the cap of 2: {got[:30]!r}"
        except socket.timeout:
            pass
        a.close()  # one ends: the worker accepts again
        c.settimeout(5)
        t0 = time.monotonic()
        status, _ = read_answer(c)
        if status != 200:
            return f"the waiting client got {status} after a slot freed"
        if time.monotonic() - t0 > 2:
            return "accepting did not resume promptly after a connection ended"
        b.close()
        c.close()
        return None
    finally:
        srv.stop()


def check_stack_range(binary):
    for bad in ("16", "0", "65537"):
        rc = subprocess.run([binary, "--stack-size", bad], capture_output=True,
                            timeout=10).returncode
        if rc != 2:
            return f"--stack-size {bad}: exit {rc}, want 2"
    return None


def check_small_stacks(binary):
    srv = Server(binary, "--app", "sleep", "--stack-size", "32", "--quiet")
    try:
        n = 300
        socks = [srv.connect(10) for _ in range(n)]
        t0 = time.monotonic()
        for s in socks:
            s.sendall(REQ % 200)
        bad = 0
        for s in socks:
            status, body = read_answer(s)
            if status != 200 or body != b"slept 200 ms\n":
                bad += 1
            s.close()
        dt = time.monotonic() - t0
        if bad:
            return f"{bad} of {n} answers wrong"
        if dt > 3:
            return f"{n} concurrent 200 ms sleeps took {dt:.2f} s (not concurrent?)"
        return None
    finally:
        rc = srv.stop()
        if rc != 0:
            return f"exit status {rc}"


def check_graceful_timeout(binary):
    srv = Server(binary, "--app", "sleep", "--graceful-timeout", "1")
    s = srv.connect(10)
    s.sendall(REQ % 8000)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    status, _ = read_answer(s)
    rc = srv.stop(timeout=10)
    dt = time.monotonic() - t0
    if status != 200:
        return f"the request cut by the graceful timeout got {status}, want its answer"
    if rc != 0:
        return f"exit status {rc}, want 0 (the worker should unwind before the master kills it)"
    if dt > 2.5:
        return f"shutdown took {dt:.2f} s with --graceful-timeout 1"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    a = ap.parse_args()
    checks = [
        ("--worker-connections 2: the third waits, then is served", check_cap),
        ("--stack-size out of range is refused", check_stack_range),
        ("--stack-size 32: 300 concurrent sleeping requests", check_small_stacks),
        ("graceful timeout unwinds what still runs, exit 0", check_graceful_timeout),
    ]
    failed = 0
    for i, (name, fn) in enumerate(checks, 1):
        try:
            err = fn(a.server)
        except Exception as e:  # noqa: BLE001
            err = repr(e)
        if err:
            failed += 1
            print(f"not ok {i} - {name}\n#   {err}")
        else:
            print(f"ok {i} - {name}")
        sys.stdout.flush()
    print(f"1..{len(checks)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
