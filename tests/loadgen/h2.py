#!/usr/bin/env python3
"""Integration tests of loadgen --h2 against a real HTTP/2 server: nginx,
listening for cleartext HTTP/2 with prior knowledge (`listen PORT http2;`),
one worker, a temporary config on free ports, stopped by PID. Covers -n with
-c and --streams, the report's lines, the JSON fields ("http": "2",
"streams"), --threads, --sweep crossed with --sweep-streams, -t, streams
reset by the server, GOAWAY after keepalive_requests (loadgen reconnects),
non-2xx, POST bodies, a peer that does not speak HTTP/2, a peer that never
answers (-s timeouts), a refused connection, --rate and the option errors.
Skipped (77) only when nginx is not installed; an installed nginx that does
not start fails the test."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nginx  # noqa: E402

BUILD = os.environ.get("COROBENCH_BUILD", ".")
LOADGEN = os.path.join(BUILD, "loadgen", "loadgen")
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)))
    if not cond:
        failures.append(name)


def lg(args, timeout=60):
    p = subprocess.run([LOADGEN] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def figure(out, label):
    m = re.search(r"^%s:\s+(\d+)" % re.escape(label), out, re.M)
    return int(m.group(1)) if m else None


def start_nginx(tmp, port, port_goaway):
    return nginx.start(tmp, """  access_log off;
  server {
    listen 127.0.0.1:%(p)d http2;
    keepalive_requests 100000000;
    location / { return 200 "hello\\n"; }
    location /reset { return 444; }
    location /missing { return 404; }
  }
  server {
    listen 127.0.0.1:%(g)d http2;
    keepalive_requests 50;
    location / { return 200 "hello\\n"; }
  }""" % {"p": port, "g": port_goaway}, (port, port_goaway))


def not_h2_server():
    """Answers every connection with an HTTP/1.1 error and closes it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)

    def serve():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                c.recv(4096)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    return s


def main():
    if not os.access(LOADGEN, os.X_OK):
        print("loadgen not built at", LOADGEN)
        return 1
    if not shutil.which("nginx"):
        print("nginx not installed: skipped")
        return 77
    tmp = tempfile.mkdtemp(prefix="loadgen-h2-")
    port, port_g = nginx.free_port(), nginx.free_port()
    ng = start_nginx(tmp, port, port_g)
    if ng is None:
        print("FAIL: nginx is installed but did not start on 127.0.0.1 with cleartext "
              "HTTP/2 (`listen ... http2`): see its error log, %s/error.log" % tmp)
        return 1
    url = "http://127.0.0.1:%d/" % port
    try:
        run_tests(tmp, url, port, port_g)
    finally:
        nginx.stop(ng)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(failures) if failures else "all passed")
    return 1 if failures else 0


def run_tests(tmp, url, port, port_g):
    # -n N completes N with -c 2 --streams 10
    rc, out, err = lg(["--h2", "-n", "1000", "-c", "2", "--streams", "10", url])
    check("basic exit 0", rc == 0, (rc, err))
    check("basic complete", figure(out, "Complete requests") == 1000, out)
    check("basic no failures", figure(out, "Failed requests") == 0, out)
    check("basic keep-alive counts streams", figure(out, "Keep-Alive requests") == 1000, out)
    check("basic concurrency is streams in flight", figure(out, "Concurrency Level") == 20, out)
    check("basic h2 line", "HTTP/2 connections:     2 (up to 10 streams each)" in out, out)
    check("basic document length", figure(out, "Document Length") == 6, out)
    check("basic html bytes", figure(out, "HTML transferred") == 6000, out)
    check("basic server name", "Server Software:        nginx" in out, out)
    check("basic percentiles", "100%" in out and "Connection Times (ms)" in out, out)
    check("basic progress lines", "Completed 100 requests" in err and
          "Finished 1000 requests" in err, err)

    # the alias and the JSON fields
    jf = os.path.join(tmp, "a.json")
    rc, out, err = lg(["-q", "--h2", "-n", "600", "-c", "3", "--max-streams", "4",
                       "--json", jf, url])
    doc = json.load(open(jf))
    check("json exit 0", rc == 0, err)
    check("json http", doc.get("http") == "2" and doc.get("keepalive") is True, doc)
    check("json schema", doc.get("schema") == "corobench/loadgen/v1", doc.get("schema"))
    lv = doc["levels"][0]
    check("json level", lv["concurrency"] == 3 and lv["streams"] == 4 and
          lv["complete"] == 600 and lv["failed"] == 0 and lv["keepalive_requests"] == 600,
          {k: lv[k] for k in ("concurrency", "complete", "failed")})
    check("json reset key", lv["failures"].get("reset") == 0, lv["failures"])
    check("json histogram", sum(c for _, c in lv["histogram"]["buckets"]) == 600,
          lv["histogram"]["buckets"][:3])
    check("json latency", lv["latency_ms"]["min"] is not None and
          lv["latency_ms"]["min"] <= lv["latency_ms"]["p50"] <= lv["latency_ms"]["max"],
          lv["latency_ms"])

    # --threads: connections and requests spread, results merged
    rc, out, err = lg(["-q", "--h2", "--threads", "2", "-n", "2000", "-c", "4",
                       "--streams", "8", url])
    check("threads complete", rc == 0 and figure(out, "Complete requests") == 2000 and
          figure(out, "Failed requests") == 0, out + err)

    # --sweep over connections crossed with --sweep-streams
    jf = os.path.join(tmp, "s.json")
    rc, out, err = lg(["-q", "--h2", "-n", "400", "--sweep", "1,2",
                       "--sweep-streams", "1,10", "--json", jf, url])
    doc = json.load(open(jf))
    got = [(lv["concurrency"], lv["streams"], lv["complete"]) for lv in doc["levels"]]
    check("sweep levels", rc == 0 and got == [(1, 1, 400), (1, 10, 400), (2, 1, 400),
                                              (2, 10, 400)], (got, err))
    check("sweep reports", out.count("Complete requests:      400") == 4, out)

    # -t: a time limit ends the run with what completed
    t0 = time.monotonic()
    rc, out, err = lg(["-q", "--h2", "-t", "1", "-n", "100000000", "-c", "2",
                       "--streams", "5", url])
    dt = time.monotonic() - t0
    check("time limit", rc == 0 and dt < 5 and figure(out, "Complete requests") > 0 and
          figure(out, "Failed requests") == 0, (dt, out, err))

    # a POST body goes out as DATA (small: nginx's `return` answers before
    # reading a body and may reset the rest of a large one)
    body = os.path.join(tmp, "body")
    with open(body, "wb") as f:
        f.write(b"x" * 1000)
    rc, out, err = lg(["-q", "--h2", "-n", "50", "-c", "1", "--streams", "5", "-p", body,
                       "-T", "text/plain", url])
    check("post", rc == 0 and figure(out, "Complete requests") == 50 and
          figure(out, "Failed requests") == 0 and
          figure(out, "Total body sent") >= 50 * 1000, out + err)

    # a server that resets every stream: each one fails, the run ends
    rc, out, err = lg(["-q", "--h2", "-n", "100", "-c", "2", "--streams", "5",
                       url + "reset"])
    check("reset counted", rc == 0 and figure(out, "Complete requests") == 100 and
          figure(out, "Failed requests") == 100 and "Reset: 100)" in out, out + err)

    # non-2xx: counted as ab counts them
    rc, out, err = lg(["-q", "--h2", "-n", "100", "-c", "2", "--streams", "5",
                       url + "missing"])
    check("non-2xx", rc == 0 and figure(out, "Non-2xx responses") == 100 and
          figure(out, "Complete requests") == 100, out + err)

    # GOAWAY after 50 requests a connection: loadgen reconnects and finishes
    # -n; the streams the GOAWAY refused count as resets (as h2load counts them)
    t0 = time.monotonic()
    rc, out, err = lg(["-q", "--h2", "-n", "1000", "-c", "2", "--streams", "10",
                       "http://127.0.0.1:%d/" % port_g])
    dt = time.monotonic() - t0
    ok = figure(out, "Complete requests") == 1000
    failed = figure(out, "Failed requests") or 0
    check("goaway reconnects", rc == 0 and ok and dt < 10, (dt, out, err))
    check("goaway refused streams are resets",
          failed == 0 or "Reset: %d)" % failed in out, out)

    # a peer that does not speak HTTP/2: streams fail, no hang
    srv = not_h2_server()
    rc, out, err = lg(["-q", "--h2", "-n", "50", "-c", "2", "--streams", "5",
                       "http://127.0.0.1:%d/" % srv.getsockname()[1]], timeout=20)
    srv.close()
    check("not h2 peer", rc == 0 and figure(out, "Failed requests") == 50, out + err)

    # -s: streams nobody answers time out (RST_STREAM CANCEL), the run ends
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    t0 = time.monotonic()
    rc, out, err = lg(["-q", "--h2", "-n", "10", "-c", "1", "--streams", "5", "-s", "1",
                       "http://127.0.0.1:%d/" % silent.getsockname()[1]], timeout=20)
    dt = time.monotonic() - t0
    silent.close()
    check("stream timeout", rc == 0 and figure(out, "Failed requests") == 10 and
          "(Timeout: 10, Truncated: 0, Status: 0, Reset: 0)" in out and dt < 8,
          (dt, out, err))

    # refused connection: ab's message and exit status
    dead = nginx.free_port()
    rc, out, err = lg(["--h2", "-n", "10", "-c", "2", "http://127.0.0.1:%d/" % dead])
    check("refused exit 111", rc == 111 and
          "apr_socket_recv: Connection refused (111)" in err, (rc, err))
    rc, out, err = lg(["-q", "-r", "--h2", "-n", "10", "-c", "2",
                       "http://127.0.0.1:%d/" % dead])
    check("refused with -r", rc == 0 and figure(out, "Failed requests") == 20 and
          "Receive: 10" in out, (rc, out, err))

    # option errors
    rc, out, err = lg(["--sweep-streams", "1,2", url])
    check("sweep-streams needs --h2", rc == 22 and "needs --h2" in err, (rc, err))
    rc, out, err = lg(["--streams", "2", url])
    check("streams needs --h2", rc == 22 and "--streams needs --h2" in err, (rc, err))
    rc, out, err = lg(["--h2", "--streams", "0", url])
    check("streams range", rc == 22, (rc, err))
    rc, out, err = lg(["--h2", "--rate", "200", "-n", "40", "-c", "2", "--streams", "2", url])
    check("rate over h2", rc == 0 and figure(out, "Complete requests") == 40 and
          "Target rate:            200.00 [#/sec] (kept" in out, (rc, out[-900:], err))
    rc, out, err = lg(["-h"])
    check("help lists --streams", "--streams N" in err and "h2load's -m" in err, err)


if __name__ == "__main__":
    sys.exit(main())
