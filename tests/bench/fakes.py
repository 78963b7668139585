#!/usr/bin/env python3
"""fakes.py — stand-ins for the real binaries, so that the bench runner's own
logic (verification, crash handling, result files) is tested even before, or
independently of, the servers and loadgen.

    fakes.py upstream --listen ADDR --delay-ms D --size BYTES
    fakes.py server   --listen ADDR --app NAME [--upstream URL] [--workers N] ...
    fakes.py loadgen  [-k] [-t S | -n N] [-s T] --sweep 1,2 --warmup W --json FILE URL
    fakes.py loadgen  [-k] -t S -c C --rate R --warmup W --json FILE URL

The fake server speaks the same flags as coro-server/async-server and prints
the same readiness line. Environment knobs make it misbehave on purpose:
FAKE_WRONG=1 answers a wrong body; FAKE_CRASH_AFTER=N kills itself with
SIGSEGV after N requests. The fake loadgen writes corobench/loadgen/v1 JSON
and prints ab's "Concurrency Level:" line after each level; with --rate it
paces each connection (R/C each, first starts 1/R apart), times each request
from its intended start and from its send, and writes the level's "rate"
object as loadgen does. FAKE_LOADGEN_FAILED=N makes it report N more failed
requests per level.
"""
import http.client
import http.server
import json
import math
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse


def parse_flags(argv):
    flags, pos = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--quiet", "--cpu-affinity", "-k", "-q"):
            flags[a] = True
        elif a.startswith("-"):
            flags[a] = argv[i + 1]
            i += 1
        else:
            pos.append(a)
        i += 1
    return flags, pos


def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host or "127.0.0.1", int(port)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def serve(addr, handler, banner):
    srv = Server(split_addr(addr), handler)
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=srv.shutdown).start())
    sys.stderr.write(banner + "\n")
    sys.stderr.flush()
    srv.serve_forever(poll_interval=0.05)


def upstream(argv):
    f, _ = parse_flags(argv)
    delay = int(f.get("--delay-ms", "0")) / 1000.0
    body = (b"x" * int(f.get("--size", "1024")))

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    serve(f["--listen"], H, "upstream: listening on %s" % f["--listen"])


def server(argv):
    f, _ = parse_flags(argv)
    app = f.get("--app", "hello")
    up = f.get("--upstream")
    wrong = os.environ.get("FAKE_WRONG") == "1"
    crash_after = int(os.environ.get("FAKE_CRASH_AFTER", "0"))
    count = [0]
    lock = threading.Lock()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with lock:
                count[0] += 1
                n = count[0]
            if crash_after and n > crash_after:
                os.kill(os.getpid(), signal.SIGSEGV)
            if app in ("proxy", "proxy-async"):
                u = urllib.parse.urlsplit(up)
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
                c.request("GET", u.path or "/")
                body = c.getresponse().read()
                c.close()
            else:
                body = b"Hello, World!"
            if wrong:
                body = b"wrong"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if self.request_version == "HTTP/1.0" and \
                    self.headers.get("Connection", "").lower() == "keep-alive":
                self.send_header("Connection", "keep-alive")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    prog = os.path.basename(sys.argv[0])
    serve(f["--listen"], H, "%s: listening on %s (1 workers)" % (prog, f["--listen"]))


def loadgen(argv):
    if argv and argv[0] in ("--version", "-V"):
        print("loadgen (fake) 0.0.0")
        return
    f, pos = parse_flags(argv)
    url = urllib.parse.urlsplit(pos[-1])
    path = url.path + ("?" + url.query if url.query else "")
    rate = float(f.get("--rate", "0"))
    levels = [int(f["-c"])] if rate else [int(x) for x in f["--sweep"].split(",")]
    secs = float(f["-t"]) if "-t" in f else None
    nreq = int(f["-n"]) if "-n" in f else None
    warm = float(f.get("--warmup", "0"))
    keep = "-k" in f
    stop = [False]
    signal.signal(signal.SIGINT, lambda *a: stop.__setitem__(0, True))
    out_levels = []

    def run_level(c, seconds, count, record):
        lat, unc, fails, nbytes, late = [], [], [0], [0], [0]
        lock = threading.Lock()
        left = [count if count is not None else 1 << 62]
        start = time.monotonic()
        deadline = start + seconds if seconds is not None else None

        def worker(j):
            conn = None
            k = 0
            while not stop[0]:
                with lock:
                    if left[0] <= 0:
                        break
                    left[0] -= 1
                due = start + (j + k * c) / rate if rate else None
                k += 1
                if due is not None and deadline and due >= deadline:
                    break
                if due is not None and due > time.monotonic():
                    time.sleep(due - time.monotonic())
                if deadline and time.monotonic() >= deadline:
                    break
                t0 = time.monotonic()
                if due is not None and t0 - due > 0.001:
                    with lock:
                        late[0] += 1
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
                    conn.request("GET", path, headers={} if keep else {"Connection": "close"})
                    r = conn.getresponse()
                    b = r.read()
                    if not keep:
                        conn.close()
                        conn = None
                    with lock:
                        now = time.monotonic()
                        lat.append((now - (due if due is not None else t0)) * 1000)
                        unc.append((now - t0) * 1000)
                        nbytes[0] += len(b)
                except (OSError, http.client.HTTPException):
                    with lock:
                        fails[0] += 1
                    conn = None
                    time.sleep(0.01)

        t0 = time.monotonic()
        cpu0 = os.times()
        ts = [threading.Thread(target=worker, args=(j,)) for j in range(c)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dur = max(time.monotonic() - t0, 1e-6)
        cpu1 = os.times()
        if not record:
            return None
        lat.sort()
        unc.sort()

        def pct(p, vals=lat):
            return vals[min(len(vals) - 1, int(p / 100.0 * len(vals)))] if vals else None

        def hist(vals):
            buckets = {}
            for v in vals:
                u = int(v * 1000) + 1
                buckets[u] = buckets.get(u, 0) + 1
            return {"unit": "us", "buckets": sorted([k, v] for k, v in buckets.items())}

        if rate:
            dur = seconds  # the schedule: -t
        lv = {
            "concurrency": c, "requests": len(lat) + fails[0], "complete": len(lat),
            "failed": fails[0],
            "failures": {"connect": 0, "receive": fails[0], "length": 0, "exceptions": 0,
                         "timeout": 0, "truncated": 0, "status": 0},
            "non2xx": 0, "keepalive_requests": len(lat) if keep else 0, "duration_s": dur,
            "rps": len(lat) / dur, "bytes_total": nbytes[0], "bytes_html": nbytes[0],
            "transfer_kbps": nbytes[0] / 1024.0 / dur,
            "latency_ms": {"min": lat[0] if lat else None,
                           "mean": sum(lat) / len(lat) if lat else None, "stdev": 0.0,
                           "p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9),
                           "max": lat[-1] if lat else None},
            "cpu": {"user_s": cpu1.user - cpu0.user, "sys_s": cpu1.system - cpu0.system},
            "histogram": hist(lat),
        }
        if rate:
            due = int(math.ceil(rate * seconds - 1e-9))
            sent = len(lat) + fails[0]
            lv["rate"] = {
                "corrected": True, "target_rps": rate, "per_connection_rps": rate / c,
                "schedule_s": seconds, "scheduled": due, "sent": sent,
                "sent_rps": sent / seconds, "kept": sent >= 0.99 * due,
                "late": {"threshold_ms": 1.0, "count": late[0], "busy": 0, "mean_ms": 0.0,
                         "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0},
                "drain_s": 0.0,
                "latency_ms_uncorrected": {
                    "min": unc[0] if unc else None,
                    "mean": sum(unc) / len(unc) if unc else None, "stdev": 0.0,
                    "p50": pct(50, unc), "p90": pct(90, unc), "p99": pct(99, unc),
                    "p999": pct(99.9, unc), "max": unc[-1] if unc else None},
                "histogram_uncorrected": hist(unc)}
        return lv

    extra_failed = int(os.environ.get("FAKE_LOADGEN_FAILED", "0"))
    for c in levels:
        if stop[0]:
            break
        if warm > 0:
            run_level(c, warm, None, False)
        lv = run_level(c, secs, nreq, True)
        if stop[0]:
            break
        if extra_failed:
            lv["failed"] += extra_failed
            lv["requests"] += extra_failed
            lv["failures"]["receive"] += extra_failed
        out_levels.append(lv)
        print("Concurrency Level:      %d\nFailed requests:        %d\n"
              "Requests per second:    %.2f [#/sec] (mean)" % (c, lv["failed"], lv["rps"]),
              flush=True)
        if rate:
            print("Target rate:            %.2f [#/sec] (%s: ...)" % (
                rate, "kept" if lv["rate"]["kept"] else "NOT kept"), flush=True)
    doc = {"schema": "corobench/loadgen/v1", "tool": "loadgen", "version": "0.0.0-fake",
           "url": pos[-1], "method": "GET", "keepalive": keep, "http": "1.0",
           "threads": 1, "levels": out_levels}
    tmp = f["--json"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, f["--json"])
    if stop[0]:
        sys.exit(1)  # as loadgen (and ab) after SIGINT: the report, then status 1


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if "--version" in sys.argv[2:] or "-V" in sys.argv[2:]:
        print("%s (fake) 0.0.0" % mode)
        sys.exit(0)
    {"upstream": upstream, "server": server, "loadgen": loadgen}[mode](sys.argv[2:])
