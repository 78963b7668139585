#!/usr/bin/env python3
"""loadgen --unix PATH: the load over a Unix-domain socket, the URL still
giving the Host header, the path and the report's host and port.

Against tests/loadgen/httpd.py listening on a Unix socket (the standard
library's listen queue of 5, so that a burst of -c 50 connects finds it full
and loadgen must try again rather than fail): one connection per request,
keep-alive, --pipeline, the Host header sent; against nginx listening on both
127.0.0.1:PORT and unix:PATH (skipped without nginx), the same deterministic
report lines over either (HTTP/1.0, -k, --http1.1, and --h2 over a Unix
socket); a missing socket, a path too long and the options --unix does not go
with. `--engine E` runs on that event loop (77 when it is unusable)."""
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compat  # noqa: E402  (its normalize(): the report without timings)
import httpd  # noqa: E402
import nginx  # noqa: E402
from harness import LOADGEN, check, figures, finish, free_port, lg, start  # noqa: E402


def python_server(tmp):
    path = os.path.join(tmp, "py.sock")
    seen = []

    class Recording(httpd.Handler):
        def handle(self):
            head = self.request.recv(4096, socket.MSG_PEEK)
            seen.append(head.split(b"\r\n\r\n")[0])
            super().handle()

    srv = httpd.UnixServer(path)
    srv.RequestHandlerClass = Recording
    srv.start()
    url = "http://unix.test:8080/x?y=1"
    try:
        for args, name, n in ((["-n", "300", "-c", "50"], "one connection per request", 300),
                              (["-k", "-n", "2000", "-c", "50"], "keep-alive", 2000),
                              (["-k", "--pipeline", "8", "-n", "2000", "-c", "10"], "pipelined",
                               2000)):
            rc, out, err = lg(["-q", "--unix", path] + args + [url])
            f = figures(out)
            check("python server: %s" % name, rc == 0 and f["Complete requests"] == n
                  and f["Failed requests"] == 0 and f["HTML transferred"] == 14 * n,
                  (rc, f, err[-300:]))
        check("report names the URL's host and port",
              "Server Hostname:        unix.test" in out and "Server Port:            8080" in out
              and "Document Path:          /x?y=1" in out, out[:600])
        check("the Host header is the URL's", seen and all(
            b"\r\nHost: unix.test:8080\r\n" in h and h.startswith(b"GET /x?y=1 HTTP/1.0")
            for h in seen), seen[:2])
    finally:
        srv.stop()


SERVERS = """  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:%(p)d;
    listen unix:%(u)s;
    location / { return 200 "hello over nginx\\n"; }
  }
  server {
    listen unix:%(u2)s http2;
    location / { return 200 "hello over nginx h2\\n"; }
  }
"""


def nginx_cases(tmp):
    port = free_port()
    u, u2 = os.path.join(tmp, "ng.sock"), os.path.join(tmp, "ng2.sock")
    ng = nginx.start(tmp, SERVERS % {"p": port, "u": u, "u2": u2}, [port, u, u2]) \
        if shutil.which("nginx") else None
    if ng is None:
        print("skip nginx cases: nginx missing or did not start")
        return
    url = "http://127.0.0.1:%d/" % port
    try:
        for args in (["-n", "200", "-c", "4"], ["-k", "-n", "2000", "-c", "8"],
                     ["-k", "--http1.1", "-n", "2000", "-c", "8"]):
            rc_t, out_t, err_t = lg(args + [url])
            rc_u, out_u, err_u = lg(args + ["--unix", u, url])
            same = compat.normalize(out_t, LOADGEN) == compat.normalize(out_u, LOADGEN)
            check("nginx: %s over a Unix socket reports as over TCP" % " ".join(args),
                  rc_t == rc_u == 0 and same and figures(out_u)["Failed requests"] == 0,
                  (rc_t, rc_u, out_u[-500:], err_u[-300:]))
        rc, out, err = lg(["--h2", "--streams", "10", "-n", "1000", "-c", "2", "--unix", u2, url])
        f = figures(out)
        check("nginx: --h2 over a Unix socket", rc == 0 and f["Complete requests"] == 1000
              and f["Failed requests"] == 0 and f["HTML transferred"] == 1000 * 20,
              (rc, f, err[-300:]))
    finally:
        nginx.stop(ng)


def main():
    skip = start("unix")
    if skip is not None:
        return skip
    tmp = tempfile.mkdtemp(prefix="loadgen-unix-")
    try:
        python_server(tmp)
        nginx_cases(tmp)
        # no socket there: ab's connect failures (aborted after 10)
        rc, out, err = lg(["-n", "5", "--unix", os.path.join(tmp, "none.sock"),
                           "http://localhost/"])
        check("missing socket", rc == 2 and "No such file or directory (2)" in err, (rc, err))
        rc, out, err = lg(["-n", "5", "--unix", "/" + "x" * 200, "http://localhost/"])
        check("path too long", rc == 1 and "too long" in err and len(err.splitlines()) == 1, err)
        for extra, what in ((["-X", "127.0.0.1:1"], "-X"), (["-B", "127.0.0.1"], "-B")):
            rc, out, err = lg(["-n", "5", "--unix", "/tmp/x.sock"] + extra + ["http://localhost/"])
            check("--unix with %s refused" % what, rc == 1 and what in err, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
