#!/usr/bin/env python3
"""Measures loadgen against ab, wrk and h2load on the same nginx.

nginx (one worker, `return 200`, temporary config and pid/logs in a temporary
folder, a free port) runs pinned to CPU 0; each load generator runs alone,
pinned to CPU 1, for about N keep-alive requests at concurrency C. For each
tool it prints requests/s and the CPU seconds (user+sys, from the kernel's
accounting of the finished child) per 100,000 requests. Rounds are
interleaved and the median of each figure is reported, because the machine
may be shared. Usage:

    loadgen/compare_tools.py BUILD/loadgen/loadgen [-n 200000] [-c 50] [--rounds 3]

With --h2 M, nginx listens for cleartext HTTP/2 (prior knowledge) instead and
only `loadgen --h2 --streams M` and `h2load -m M` run, M streams on each of the
C connections.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_nginx(tmp, port, h2=False):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
daemon off;
master_process off;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path %(t)s;
  proxy_temp_path %(t)s;
  fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s;
  scgi_temp_path %(t)s;
  server {
    listen 127.0.0.1:%(p)d%(h2)s;
    location / { return 200 "hello\\n"; }
  }
}
""" % {"t": tmp, "p": port, "h2": " http2" if h2 else ""})
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-p", tmp, "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            if h2:  # no HTTP/1 on an h2c-only port: a connection is enough
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            else:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=1).read()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("nginx did not start")


def run(cmd):
    """Runs cmd pinned to CPU 1; returns (stdout, cpu seconds, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(["taskset", "-c", "1"] + cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return p.stdout + p.stderr, cpu, wall


def main_h2(args):
    for tool in ("nginx", "h2load", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(tool + " not found")
    tmp = tempfile.mkdtemp(prefix="loadgen-cmp-")
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    ng = start_nginx(tmp, port, h2=True)
    n, c, m = args.n, args.c, args.h2
    name_lg = "loadgen --h2 --streams %d" % m
    name_h2 = "h2load -m %d" % m
    results = {name_lg: [], name_h2: []}
    try:
        for _ in range(args.rounds):
            out, cpu, wall = run([args.loadgen, "-q", "--h2", "-n", str(n), "-c", str(c),
                                  "--streams", str(m), url])
            rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
            if "Failed requests:        0" not in out:
                print("loadgen failures:", out, file=sys.stderr)
            results[name_lg].append((rps, cpu / n * 1e5, n))
            out, cpu, wall = run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m), url])
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            if " 0 failed" not in out:
                print("h2load failures:", out, file=sys.stderr)
            results[name_h2].append((rps, cpu / n * 1e5, n))
    finally:
        ng.send_signal(signal.SIGTERM)
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args.rounds)
    return 0


def report(results, rounds):
    w = max(len(k) for k in results)
    print("%-*s %12s %22s %10s" % (w, "tool", "requests/s", "CPU s per 100k req", "requests"))
    for k, v in results.items():
        print("%-*s %12.0f %22.3f %10d" % (w, k, statistics.median(x[0] for x in v),
                                          statistics.median(x[1] for x in v),
                                          int(statistics.median(x[2] for x in v))))
    print("rounds:", rounds, " all (rps, cpu/100k):")
    for k, v in results.items():
        print("  %-*s %s" % (w, k, ", ".join("(%.0f, %.3f)" % (a, b) for a, b, _ in v)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("loadgen")
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--h2", type=int, default=0, metavar="M",
                    help="HTTP/2 with M streams per connection: loadgen --h2 vs h2load")
    args = ap.parse_args()
    if args.h2:
        return main_h2(args)
    for tool in ("nginx", "ab", "wrk", "h2load", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(tool + " not found")
    tmp = tempfile.mkdtemp(prefix="loadgen-cmp-")
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    ng = start_nginx(tmp, port)
    n, c = args.n, args.c
    results = {k: [] for k in ("loadgen", "ab -k", "wrk -t1", "h2load --h1")}
    try:
        for _ in range(args.rounds):
            out, cpu, wall = run([args.loadgen, "-q", "-k", "-n", str(n), "-c", str(c), url])
            rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
            results["loadgen"].append((rps, cpu / n * 1e5, n))
            out, cpu, wall = run(["ab", "-q", "-k", "-n", str(n), "-c", str(c), url])
            rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
            results["ab -k"].append((rps, cpu / n * 1e5, n))
            # wrk runs for a time: aim at about n requests at loadgen's rate
            secs = max(1, round(n / results["loadgen"][-1][0]))
            out, cpu, wall = run(["wrk", "-t1", "-c%d" % c, "-d%ds" % secs, url])
            done = int(re.search(r"(\d+) requests in", out).group(1))
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            results["wrk -t1"].append((rps, cpu / done * 1e5, done))
            out, cpu, wall = run(["h2load", "--h1", "-n", str(n), "-c", str(c), url])
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            results["h2load --h1"].append((rps, cpu / n * 1e5, n))
    finally:
        ng.send_signal(signal.SIGTERM)
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
