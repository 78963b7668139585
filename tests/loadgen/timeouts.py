#!/usr/bin/env python3
"""-s: a request that times out (waiting for its answer, or for its connect)
is spent, and the run still ends.

httpd.py's no_answer=3 never answers the third request head it reads (the
connection stays open until loadgen closes it) and answers every other one
at once. loadgen -n 4 -c 2 -s 1 against it: one connection waits on request
3 while the other carries the rest; with -k (and with --pipeline) that other
connection then idles, kept alive, with nothing left to send. The timed-out
request fails as a Timeout, is not complete, and its place in -n is spent
(it does not go out again): the run ends with Complete requests 3, Failed
requests 1 (Timeout: 1), the JSON's requests 4 = complete 3 + timeout 1, and
the server saw exactly 4 request heads. Before the fix the run never ended
with a connection idling: it ended at -n complete requests only, and the
timed-out one was neither complete nor given back (here a subprocess timeout
makes that a failure, not a hang).

With --pipeline 2 the request behind the unanswered one on its connection,
if any, is given back and goes out again on the next connection (the server
dropped its bytes unparsed: still 4 heads). Without -k no connection idles
(each closes after its answer), so the run ended before too: the same
figures.

A connect that takes longer than -s is the request it was for timing out:
against a listener whose accept queue is full (backlog 0, filled by the test)
a TCP connect never completes and a Unix one finds no room (loadgen waits
for it); loadgen -n 2 -s 1, alone and with -k -c 2, and with --h2, ends with
two Timeouts, Complete requests 0, the JSON's requests 2. Before, each
connect was tried again for ever, a Timeout every -s: the run never ended.
A head over 8 KiB (httpd.py's big_head=3) is not complete either, as in
ab, and spends its place the same way: -n 4 -c 2 with and without -k ends
with Complete requests 3, Failed 1 (before, with -k, it never ended).
`--engine E` runs on that event loop (77 when it is unusable; the --h2
cases, which run on epoll whatever --engine says, only with epoll)."""
import json
import os
import re
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import ENGINE, check, figures, finish, lg, start  # noqa: E402

BODY = b"Hello, world!\n"
N = 4


def run(args, jf):
    """(exit status, stdout, stderr, heads the server read) of loadgen -n N
    -c 2 -s 1 with args against a server that never answers request 3."""
    srv = httpd.Server(no_answer=3).start()
    try:
        # the run takes -s and at most one -s scan more (about 2 s); a run
        # that does not end is stopped at 30 s and fails
        rc, out, err = lg(args + ["-n", str(N), "-c", "2", "-s", "1", "--json", jf,
                                  "http://127.0.0.1:%d/" % srv.port], timeout=30)
        idle = srv.wait_idle()
        return rc, out, err, srv.heads if idle else None
    finally:
        srv.stop()


def full_listener(tmp=None):
    """(listener, the connection that fills its queue, loadgen's address
    arguments): a listener with a backlog of 0 and one connection made here,
    never accepted, so its accept queue is full. A TCP connect to it then
    never completes (its SYN is dropped); a Unix one (tmp given) says EAGAIN
    and loadgen waits for room."""
    if tmp:
        path = os.path.join(tmp, "full.sock")
        lst = socket.socket(socket.AF_UNIX)
        lst.bind(path)
        lst.listen(0)
        fill = socket.socket(socket.AF_UNIX)
        fill.connect(path)
        return lst, fill, ["--unix", path, "http://full.test/"]
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fill = socket.create_connection(lst.getsockname(), timeout=5)
    return lst, fill, ["http://127.0.0.1:%d/" % lst.getsockname()[1]]


def connects(tmp):
    """-s on a connect that never completes: each spends its request."""
    jf = os.path.join(tmp, "c.json")
    cases = [("tcp", [], None, True), ("tcp -k -c 2", ["-k", "-c", "2"], None, True),
             ("unix", [], tmp, True)]
    if ENGINE != "uring":  # (--h2 runs on epoll whatever --engine says)
        cases += [("h2 tcp", ["--h2"], None, False), ("h2 unix", ["--h2"], tmp, False)]
    for name, args, unix, engine in cases:
        lst, fill, addr = full_listener(unix)
        try:
            if os.path.exists(jf):
                os.unlink(jf)
            rc, out, err = lg(args + ["-n", "2", "-s", "1", "--json", jf] + addr,
                              timeout=30, engine=engine)
        finally:
            fill.close()
            lst.close()
            if unix:
                os.unlink(os.path.join(unix, "full.sock"))
        f = figures(out)
        check("connect " + name + ": the run ends", rc == 0, (rc, err[-300:]))
        check("connect " + name + ": one Timeout per request",
              f["Complete requests"] == 0 and f["Failed requests"] == 2
              and re.search(r"\(Timeout: 2, Truncated: 0, Status: 0(, Reset: 0)?\)", out),
              (f, out[-900:]))
        lv = json.load(open(jf))["levels"][0] if os.path.exists(jf) else {}
        check("connect " + name + ": JSON requests = complete + timeout",
              lv.get("requests") == 2 and lv.get("complete") == 0
              and lv.get("failures", {}).get("timeout") == 2, lv)


def big_head():
    """A head over 8 KiB (httpd.py's big_head=3): as in ab the connection is
    dropped and the request is not complete (Failed 1, Non-2xx 1); its place
    is spent, so the run ends with the other connection kept alive and idle
    (before, it waited for ever for a fourth complete request; ab waits for
    its -s and exits with "The timeout specified has expired")."""
    for name, args, ka in (("-k", ["-k"], N - 1), ("without -k", [], None)):
        srv = httpd.Server(big_head=3).start()
        try:
            rc, out, err = lg(args + ["-n", str(N), "-c", "2",
                                      "http://127.0.0.1:%d/" % srv.port], timeout=30)
            idle = srv.wait_idle()
            heads = srv.heads if idle else None
        finally:
            srv.stop()
        f = figures(out)
        check("head too big " + name + ": the run ends", rc == 0, (rc, err[-300:]))
        check("head too big " + name + ": not complete, counted once",
              f["Complete requests"] == N - 1 and f["Failed requests"] == 1
              and f["Non-2xx responses"] == 1 and f["Keep-Alive requests"] == ka
              and f["HTML transferred"] == (N - 1) * len(BODY), (f, out[-900:]))
        check("head too big " + name + ": the server read exactly -n request heads",
              heads == N, (heads, N))


def main():
    skip = start("timeouts")
    if skip is not None:
        return skip
    with tempfile.TemporaryDirectory() as tmp:
        jf = os.path.join(tmp, "t.json")
        for name, args, ka in (("-k", ["-k"], N - 1),
                               ("-k --pipeline 2", ["-k", "--pipeline", "2"], N - 1),
                               ("without -k", [], None)):
            if os.path.exists(jf):
                os.unlink(jf)
            rc, out, err, heads = run(args, jf)
            f = figures(out)
            check(name + ": the run ends", rc == 0, (rc, err[-300:]))
            check(name + ": the timed-out request failed, not complete",
                  f["Complete requests"] == N - 1 and f["Failed requests"] == 1
                  and "(Timeout: 1, Truncated: 0, Status: 0)" in out
                  and f["Keep-Alive requests"] == ka
                  and f["HTML transferred"] == (N - 1) * len(BODY), (f, out[-900:]))
            lv = json.load(open(jf))["levels"][0] if os.path.exists(jf) else {}
            check(name + ": JSON requests = complete + timeout",
                  lv.get("requests") == N and lv.get("complete") == N - 1
                  and lv.get("failed") == 1 and lv.get("failures", {}).get("timeout") == 1,
                  lv)
            check(name + ": the server read exactly -n request heads", heads == N, (heads, N))
        connects(tmp)
    big_head()
    return finish()


if __name__ == "__main__":
    sys.exit(main())
