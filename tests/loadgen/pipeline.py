#!/usr/bin/env python3
"""loadgen --pipeline N: N HTTP/1.x requests in flight on each keep-alive
connection, the answers cut from the stream in order.

Against tests/loadgen/httpd.py (which answers pipelined requests in order):
bodies of varying length (Content-Length), chunked bodies, HEAD, every figure
exact (HTML transferred is the sum of the bodies the server sent, so an answer
cut one byte wrong shows); a server that closes every 7th connection after
answering (the requests it did not answer go out again: all -n complete, none
failed, each answer counted once, in HTML transferred too, and the server
answering each request once), and one that resets the connection after its
answer while loadgen's send is still going (that failed send must not put the
answered request out again); resets with -r (each reset is one failed
request); and the option's refusals. Against both workers (coro-server and
async-server, hello app, one worker; skipped when they are not built):
--pipeline 16 gets every answer, and the worker's own counter shows each
request once. `--engine E` runs on that event loop (77 when it is
unusable)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import (BUILD, ENGINE, check, figure, figures, finish, free_port, lg,  # noqa: E402
                     start, stop)

BODY = b"Hello, world!\n"


def worker_case(kind, n):
    exe = os.path.join(BUILD, "servers", kind, kind + "-server")
    if not os.access(exe, os.X_OK):
        print("skip %s: not built" % kind)
        return
    port = free_port()
    p = subprocess.Popen([exe, "--listen", "127.0.0.1:%d" % port, "--workers", "1", "--app",
                          "hello", "--quiet", "--stats-path", "/_stats"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stats = "http://127.0.0.1:%d/_stats" % port
        for _ in range(100):
            try:
                urllib.request.urlopen(stats, timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        before = json.load(urllib.request.urlopen(stats, timeout=5))["requests"]
        for extra in ([], ["--http1.1"]):
            rc, out, err = lg(extra + ["-q", "-k", "--pipeline", "16", "-n", str(n), "-c", "4",
                                       "http://127.0.0.1:%d/" % port])
            f = figures(out)
            check("%s %s --pipeline 16: every answer" % (kind, " ".join(extra) or "HTTP/1.0"),
                  rc == 0 and f["Complete requests"] == n and f["Failed requests"] == 0
                  and f["Keep-Alive requests"] == n and f["HTML transferred"] == 13 * n
                  and f["Concurrency Level"] == 64 and "Pipelined connections:  4 (up to 16"
                  in out, (rc, f, err[-300:]))
        after = json.load(urllib.request.urlopen(stats, timeout=5))["requests"]
        # the stats request itself counts once
        check("%s saw each request once" % kind, after - before == 2 * n + 1, after - before)
    finally:
        stop(p)


def main():
    skip = start("pipeline")
    if skip is not None:
        return skip

    # varying lengths: every answer cut exactly where its Content-Length says
    n, vary = 500, 7
    lens = [len(BODY) + k % vary for k in range(1, n + 1)]
    # chunked: ab counts the framing as body bytes, so does loadgen
    framed = sum(len(b"%x\r\n" % ln) + ln + len(b"\r\n0\r\n\r\n") for ln in lens)
    for extra, kw, name, want_html in (([], {}, "content-length", sum(lens)),
                                       (["--http1.1"], {"chunked": True}, "chunked", framed),
                                       (["--http1.1"], {}, "http/1.1 content-length", sum(lens))):
        srv = httpd.Server(vary=vary, **kw).start()
        try:
            rc, out, err = lg(extra + ["-q", "-k", "-l", "--pipeline", "8", "-n", str(n), "-c", "3",
                                       "http://127.0.0.1:%d/" % srv.port])
            f = figures(out)
            check("%s: all complete, none failed" % name,
                  rc == 0 and f["Complete requests"] == n and f["Failed requests"] == 0
                  and f["Keep-Alive requests"] == n, (rc, f, err[-300:]))
            check("%s: HTML transferred exact" % name, f["HTML transferred"] == want_html,
                  (f["HTML transferred"], want_html))
            check("%s: the server answered each once" % name, srv.count == n, srv.count)
        finally:
            srv.stop()

    # HEAD: answers without bodies
    srv = httpd.Server().start()
    try:
        rc, out, err = lg(["-q", "-k", "-i", "--pipeline", "8", "-n", "300", "-c", "2",
                           "http://127.0.0.1:%d/" % srv.port])
        f = figures(out)
        check("HEAD pipelined", rc == 0 and f["Complete requests"] == 300
              and f["Failed requests"] == 0 and f["HTML transferred"] == 0, (rc, f, err[-300:]))
        # one request in flight is the plain keep-alive path
        rc, out, err = lg(["-q", "-k", "--pipeline", "1", "-n", "100", "http://127.0.0.1:%d/" % srv.port])
        check("--pipeline 1 is plain keep-alive", rc == 0 and figure(out, "Complete requests") == 100
              and "Pipelined" not in out and figure(out, "Concurrency Level") == 1, out[-400:])
    finally:
        srv.stop()

    # the server ends every 7th connection after answering: what it did not
    # answer goes out again, nothing fails, and each answer counts once: in
    # Complete requests, in HTML transferred (exactly the bodies the server
    # sent) and at the server (no answered request goes out again, even
    # when a send fails because the server has closed: "Write errors")
    srv = httpd.Server(close_every=7).start()
    try:
        rc, out, err = lg(["-q", "-k", "--pipeline", "8", "-n", "300", "-c", "2",
                           "http://127.0.0.1:%d/" % srv.port])
        f = figures(out)
        check("server closes: all complete", rc == 0 and f["Complete requests"] == 300
              and f["Failed requests"] == 0
              and 0 < 300 - f["Keep-Alive requests"] <= 300 // 7 + 2, (rc, f, err[-300:]))
        check("server closes: HTML transferred exact", f["HTML transferred"] == 300 * len(BODY),
              (f["HTML transferred"], 300 * len(BODY), figure(out, "Write errors")))
        check("server closes: the server answered each once", srv.count == 300,
              (srv.count, figure(out, "Write errors")))
    finally:
        srv.stop()

    # the same race made certain: the server answers the first request with
    # Connection: close as soon as its head is in, and resets the connection
    # 0.3 s later (httpd.py's close_unread) while loadgen is still sending
    # the 4 pipelined POSTs of 8 MiB (more than the socket buffers hold with
    # the server not reading), so the send fails after the whole answer was
    # read. That answer counts once (before the fix it went out again: 70
    # bytes, the server answering 5). -r in case the reset reaches loadgen's
    # read before its send (io_uring: a receive error then, the answer a
    # failure, the rest sent again): each answer counts once either way.
    with tempfile.NamedTemporaryFile() as post:
        post.write(b"x" * (8 << 20))
        post.flush()
        srv = httpd.Server(close_unread=1).start()
        try:
            rc, out, err = lg(["-q", "-k", "-r", "--pipeline", "4", "-n", "4", "-c", "1", "-p",
                               post.name, "http://127.0.0.1:%d/" % srv.port])
            f = figures(out)
            werr = figure(out, "Write errors") or 0
            check("send fails after a whole answer: each answer counts once",
                  rc == 0 and f["Complete requests"] == 4 and srv.count == 4
                  and f["HTML transferred"] == 4 * len(BODY)
                  and (werr, f["Failed requests"]) in ((1, 0), (0, 1)),
                  (rc, f, werr, srv.count, err[-300:]))
            if ENGINE == "epoll":
                # epoll: the failed send is met first (ev_epoll's dispatch),
                # the answer is good, and not kept alive
                check("send fails after a whole answer: a write error, the answer good",
                      werr == 1 and f["Failed requests"] == 0 and f["Keep-Alive requests"] == 3,
                      (f, werr))
        finally:
            srv.stop()

    # resets with -r: the request being answered fails, the rest go again
    srv = httpd.Server(drop_every=10).start()
    try:
        rc, out, err = lg(["-q", "-k", "-r", "--pipeline", "4", "-n", "200", "-c", "1",
                           "http://127.0.0.1:%d/" % srv.port])
        f = figures(out)
        m = re.search(r"\(Connect: 0, Receive: (\d+), Length: 0, Exceptions: 0\)", out)
        check("resets with -r", rc == 0 and f["Complete requests"] == 200 and m
              and int(m.group(1)) == f["Failed requests"] > 0
              and f["Keep-Alive requests"] == 200 - f["Failed requests"], (rc, f, out[-600:]))
        # without -r a reset ends the run as ab's does (104)
        rc, out, err = lg(["-q", "-k", "--pipeline", "4", "-n", "200", "-c", "1",
                           "http://127.0.0.1:%d/" % srv.port])
        check("reset without -r", rc == 104 and "apr_socket_recv: Connection reset by peer (104)"
              in err, (rc, err[-300:]))
    finally:
        srv.stop()

    # refusals
    for args, what in ((["--pipeline", "4", "-n", "5"], "needs -k"),
                       (["-k", "--h2", "--pipeline", "4", "-n", "5"], "--streams"),
                       (["-k", "--pipeline", "0", "-n", "5"], "1..1024")):
        rc, out, err = lg(args + ["http://127.0.0.1:1/"])
        check("refused: %s" % what, rc == 22 and what in err, (rc, err[:200]))

    for kind in ("coro", "async"):
        worker_case(kind, 20000)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
