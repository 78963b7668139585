#!/usr/bin/env python3
"""idle_conns.py — hold N idle keep-alive connections open on a server and
report the resident memory (VmRSS) of its worker processes.

Each connection sends one GET and reads the answer (so the worker has served
a request on it and parked it in its keep-alive wait), then stays open and
silent. With --pid MASTER, the RSS of MASTER's children (the workers) is read
from /proc before and after.

    idle_conns.py --port 8080 --count 10000 --pid MASTER_PID [--hold 2]

The server needs --worker-connections and --keepalive-timeout above N and
the hold time, and both sides an open-file limit above N (ulimit -n).
Standard library only.
"""

import argparse
import resource
import selectors
import socket
import sys
import time


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def report(label, pids):
    for p in pids:
        print(f"{label}: worker {p} VmRSS {rss_kib(p) / 1024:.1f} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--pid", type=int, help="the server's master PID")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds to hold them idle")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.count + 100)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    workers = children(a.pid) if a.pid else []
    report("before", workers)

    req = f"GET / HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    socks = []
    answered = 0
    t0 = time.monotonic()
    # Connect in batches so the listen backlog never overflows.
    batch = 500
    for start in range(0, a.count, batch):
        pending = {}
        for _ in range(min(batch, a.count - start)):
            s = socket.create_connection((a.host, a.port), timeout=10)
            s.sendall(req)
            s.setblocking(False)
            socks.append(s)
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    sys.exit(f"connection closed by the server after {answered} answers")
                pending[s] += data
                if b"\r\n\r\n" in pending[s]:
                    del pending[s]
                    sel.unregister(s)
                    answered += 1
        if pending:
            sys.exit(f"{len(pending)} connections not answered in time")
    print(f"{answered} connections open and idle after {time.monotonic() - t0:.1f} s",
          flush=True)
    time.sleep(a.hold)
    report(f"with {answered} idle connections", workers)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
