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
                             [--engines epoll,uring] [--counts] [--close]

(--rounds 0 --counts: only the counts, no timed rounds.)

loadgen runs once per engine of --engines (`none`: without --engine, for a
build that predates it). --counts adds the figures that do not depend on
what else the machine runs: system calls per request (`strace -f -c`, all
threads) and user-space instructions per request (`valgrind
--tool=callgrind`, the difference between a long and a short run, so start-up
cancels out), each tool once, unpinned.

With --h2 M, nginx listens for cleartext HTTP/2 (prior knowledge) instead and
only `loadgen --h2 --streams M` and `h2load -m M` run, M streams on each of the
C connections (--counts then counts those two).

With --close, every request has a connection of its own: loadgen and ab run
without -k, and wrk and h2load (which keep connections) are left out.
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
        report(results, args.rounds)
        if args.counts:
            done = lambda out: int(re.search(r"Complete requests:\s+(\d+)", out).group(1))  # noqa: E731
            h2load_done = lambda out: int(re.search(r"(\d+) succeeded", out).group(1))  # noqa: E731
            print_counts(args, {
                name_lg: (lambda k: [args.loadgen, "-q", "--h2", "-n", str(k), "-c", str(c),
                                     "--streams", str(m), url], done),
                name_h2: (lambda k: ["h2load", "-n", str(k), "-c", str(c), "-m", str(m), url],
                          h2load_done)})
    finally:
        ng.send_signal(signal.SIGTERM)
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def count_syscalls(cmd, requests_of):
    """Runs cmd under strace -f -c; returns (system calls, requests)."""
    fd, path = tempfile.mkstemp(prefix="loadgen-strace-")
    os.close(fd)
    try:
        p = subprocess.run(["strace", "-f", "-c", "-o", path] + cmd, capture_output=True,
                           text=True)
        total = 0
        for line in open(path):
            m = re.match(r"^-*\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+\s+)?total$", line.strip())
            if m:
                total = int(m.group(1))
        return total, requests_of(p.stdout + p.stderr)
    finally:
        os.unlink(path)


def count_instructions(cmd, requests_of):
    """Instructions valgrind's callgrind counts in user space for cmd."""
    fd, path = tempfile.mkstemp(prefix="loadgen-callgrind-")
    os.close(fd)
    try:
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + path] +
                           cmd, capture_output=True, text=True)
        m = re.search(r"Collected : (\d+)", p.stderr)
        return int(m.group(1)), requests_of(p.stdout + p.stderr)
    finally:
        os.unlink(path)


def counts(args, url, lg_names):
    """Syscalls and user instructions per request, for each tool."""
    c = args.c
    ka = [] if args.close else ["-k"]
    ab_done = lambda out: int(re.search(r"Complete requests:\s+(\d+)", out).group(1))  # noqa: E731
    wrk_done = lambda out: int(re.search(r"(\d+) requests in", out).group(1))  # noqa: E731
    tools = {}
    for name, flag in lg_names:
        tools[name] = (lambda n, flag=flag: [args.loadgen, "-q"] + ka + ["-n", str(n), "-c", str(c)]
                       + flag + [url], ab_done)
    tools[" ".join(["ab"] + ka)] = (lambda n: ["ab", "-q"] + ka + ["-n", str(n), "-c", str(c), url],
                                    ab_done)
    # wrk runs for a time: 1 s and 3 s give the two request counts
    if not args.close:
        tools["wrk -t1"] = (lambda n: ["wrk", "-t1", "-c%d" % c,
                                       "-d%ds" % (1 if n < 50000 else 3), url], wrk_done)
    print_counts(args, tools)


def print_counts(args, tools):
    """tools: name -> (command for n requests, requests done from its output)."""
    for tool in ("strace", "valgrind"):
        if not shutil.which(tool):
            raise SystemExit(tool + " not found")
    print("%-26s %20s %24s" % ("tool", "syscalls per request", "user instr. per request"))
    for name, (cmd, done) in tools.items():
        sc, n = count_syscalls(cmd(args.n), done)
        i_short, n_short = count_instructions(cmd(20000), done)
        i_long, n_long = count_instructions(cmd(60000), done)
        ipr = (i_long - i_short) / max(1, n_long - n_short)
        print("%-26s %20.3f %24.0f" % (name, sc / n, ipr))


def report(results, rounds):
    if not rounds:
        return  # --rounds 0: only --counts
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
    ap.add_argument("--engines", default="epoll,uring",
                    help="loadgen's --engine values to run, comma-separated; none: no flag")
    ap.add_argument("--counts", action="store_true",
                    help="also syscalls and user instructions per request (strace, callgrind)")
    ap.add_argument("--close", action="store_true",
                    help="a connection per request: loadgen and ab without -k, no wrk/h2load")
    args = ap.parse_args()
    if args.h2:
        return main_h2(args)
    for tool in ("nginx", "ab", "taskset") + (() if args.close else ("wrk", "h2load")):
        if not shutil.which(tool):
            raise SystemExit(tool + " not found")
    tmp = tempfile.mkdtemp(prefix="loadgen-cmp-")
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    ng = start_nginx(tmp, port)
    n, c = args.n, args.c
    ka = [] if args.close else ["-k"]
    ab_name = " ".join(["ab"] + ka)
    lg_names = [("loadgen", [])] if args.engines == "none" else [
        ("loadgen --engine " + e, ["--engine", e]) for e in args.engines.split(",")]
    results = {k: [] for k in [x[0] for x in lg_names] + [ab_name] +
               ([] if args.close else ["wrk -t1", "h2load --h1"])}
    try:
        for _ in range(args.rounds):
            for name, flag in lg_names:
                out, cpu, wall = run([args.loadgen, "-q"] + ka + ["-n", str(n), "-c", str(c)] +
                                     flag + [url])
                rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
                if "Failed requests:        0" not in out:
                    print(name + " failures:", out, file=sys.stderr)
                results[name].append((rps, cpu / n * 1e5, n))
            out, cpu, wall = run(["ab", "-q"] + ka + ["-n", str(n), "-c", str(c), url])
            rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
            results[ab_name].append((rps, cpu / n * 1e5, n))
            if args.close:
                continue
            # wrk runs for a time: aim at about n requests at loadgen's rate
            secs = max(1, round(n / results[lg_names[0][0]][-1][0]))
            out, cpu, wall = run(["wrk", "-t1", "-c%d" % c, "-d%ds" % secs, url])
            done = int(re.search(r"(\d+) requests in", out).group(1))
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            results["wrk -t1"].append((rps, cpu / done * 1e5, done))
            out, cpu, wall = run(["h2load", "--h1", "-n", str(n), "-c", str(c), url])
            rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
            results["h2load --h1"].append((rps, cpu / n * 1e5, n))
        report(results, args.rounds)
        if args.counts:
            counts(args, url, lg_names)
    finally:
        ng.send_signal(signal.SIGTERM)
        ng.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
