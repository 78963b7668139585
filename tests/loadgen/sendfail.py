#!/usr/bin/env python3
"""A failed send without --pipeline: each request counted once.

httpd.py's reset_unread=N resets the connection (SO_LINGER 0, no answer) as
soon as the Nth request's head is in, its body unread. The requests are
POSTs of 24 MiB (-p, a temporary file): more than the socket buffers hold
with the server not reading, so loadgen's send is still going when the reset
comes and fails part way (ECONNRESET; on epoll the error is met by the
pending send, on io_uring by the send's completion); with one connection
on a kept-alive one (the request before it was answered on it).

As in ab, the failed send is one complete request, failed by its length
(nothing read) and counted in "Write errors"; the connection starts again.
What is checked: Complete requests, Failed requests and its split, Write
errors, Keep-Alive requests and HTML transferred exact (ab 2.3's figures for
the first case; ab is not run here, as its outcome is a race: waiting to
write, it may meet the reset in its read first, which without -r ends the
run, "apr_socket_recv: Connection reset by peer (104)"); and at the server,
exactly -n requests seen (heads read). Before the fix the failed request was
also given back to -n: one more request went out than -n allowed, as the
run's last, and was never counted (the server saw n + 1; on epoll even with
one connection, whose last answer's keep-alive send went out before the run
ended; ab does the same, unchecked here).

The same at once (the send fails in ev_send() itself): httpd.py's
answer_reset=N answers the Nth request while loadgen is stopped (SIGSTOP,
until every thread is), then resets the connection and lets loadgen go on:
it finds the answer and the reset together, and its next send on that
kept-alive connection fails (ECONNRESET; EPIPE on io_uring, whose receive
took the error first). The failed request never reaches the server: it
sees n - 1 requests (before the fix n on epoll). ab 2.3 counts the poll
event's error flag beside the answer as an exception, after the read (its
poll loop), and the failed send as a Write error and a Length failure
(write_request(), close_connection()): Failed 2 (Length 1, Exceptions 1),
Write errors 1. With the Nth the last of -n, no send follows: Failed 1
(Exceptions 1). epoll reports the error flag beside the answer; io_uring
reports the error as a completion of its own after it, which loadgen
ignored (Exceptions 0), and with the last answer kept for later and read
as a receive error that ended the run (exit 104). Checked: ab's figures on
the engine under test (and ab's own, where ab is installed: its outcome is
not a race here); and in the io_uring instance, both engines run on the
same cases (the first, a middle and the last request) and report the same
counters, each failure once, none past -n.

The same with --pipeline 2 and 4 (ab has none), on both engines, in the
cases whose outcome is no race: the reset after the last answer, with every
request answered, fails nothing (before the fix io_uring, and epoll when the
reset came with the answer's edge, read it as a receive error that ended the
run, exit 104); a request in flight at the reset is a receive error (with
-r one failed request; without -r the run ends, as in ab and pipeline.py),
the requests behind it go again. (With --pipeline 2 and a middle request the
outcome is a race on either engine: whether the next request went out
before the reset.)

`--engine E` runs on that event loop (77 when it is unusable)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import (ENGINE, ENGINE_ARGS, LOADGEN, check, figure, figures, finish,  # noqa: E402
                     lg, start)

BODY = b"Hello, world!\n"
POST = 24 << 20


def split(out):
    """The failures' split, (Connect, Receive, Length, Exceptions)."""
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def run(n, c, nth, post):
    """(exit status, stdout, stderr, requests the server saw) of loadgen
    against a server that resets the nth request part way."""
    srv = httpd.Server(reset_unread=nth).start()
    try:
        rc, out, err = lg(["-k", "-n", str(n), "-c", str(c), "-p", post,
                           "http://127.0.0.1:%d/" % srv.port], timeout=120)
        # the client has exited: once every connection is served, every
        # request it sent has been seen
        idle = srv.wait_idle()
        return rc, out, err, srv.heads if idle else None
    finally:
        srv.stop()


def at_once(n, nth, cmd=None):
    """(exit status, stdout, stderr, requests the server saw) of loadgen (or
    cmd, ab) against a server that answers the nth request, then resets."""
    srv = httpd.Server(answer_reset=nth).start()
    try:
        p = subprocess.Popen((cmd or [LOADGEN] + ENGINE_ARGS) +
                             ["-k", "-n", str(n), "-c", "1", "http://127.0.0.1:%d/" % srv.port],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        srv.client_pid = p.pid
        try:
            out, err = p.communicate(timeout=60)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rc = -1
        idle = srv.wait_idle()
        return rc, out, err, srv.heads if idle else None
    finally:
        srv.stop()


def counters(rc, out):
    """What a run of at_once() reports, as ab counts it."""
    f = figures(out)
    sp = split(out) or (0, 0, 0, 0)
    return {"exit": rc, "Complete": f["Complete requests"], "Failed": f["Failed requests"],
            "Connect": sp[0], "Receive": sp[1], "Length": sp[2], "Exceptions": sp[3],
            "Write errors": figure(out, "Write errors") or 0,
            "Send request failed!": out.count("Send request failed!"),
            "Keep-Alive": f["Keep-Alive requests"], "HTML": f["HTML transferred"]}


def ab_counts(n, nth):
    """ab 2.3's counters when the nth of n requests' answer comes with a
    reset (ab -k -n n -c 1; for 1 < nth <= n)."""
    last = nth == n
    return {"exit": 0, "Complete": n, "Failed": 1 if last else 2, "Connect": 0, "Receive": 0,
            "Length": 0 if last else 1, "Exceptions": 1, "Write errors": 0 if last else 1,
            "Send request failed!": 0 if last else 1, "Keep-Alive": n if last else n - 1,
            "HTML": (n if last else n - 1) * len(BODY)}


def once(c, n):
    """Nothing counted twice or past -n: the split adds up to Failed, one
    exception (the error flag, once), one Write error per failed send and
    no more Length failures than failed sends."""
    return (c["exit"] == 0 and c["Complete"] == n
            and c["Failed"] == c["Connect"] + c["Receive"] + c["Length"] + c["Exceptions"]
            and c["Exceptions"] == 1 and c["Write errors"] == c["Send request failed!"] <= 1
            and c["Length"] == c["Write errors"] and c["Keep-Alive"] <= n)


def both(n, nth, args):
    """at_once()'s counters on each engine, with the requests the server
    saw ("heads")."""
    got = {}
    for e in ("epoll", "uring"):
        rc, out, err, heads = at_once(n, nth, [LOADGEN, "--engine", e] + args)
        got[e] = dict(counters(rc, out), heads=heads, stderr=err[-200:] if rc else "")
    return got


def pipelined(n, nth):
    """With --pipeline: the reset after the last answer fails nothing (no
    request meets it); a request in flight at it fails (-r: a receive
    error; without -r the run ends, as ab's and pipeline.py's), the
    requests behind it, never read, go again."""
    last = nth == n
    k = n if last else n - 1
    return {"exit": 0, "Complete": n, "Failed": 0 if last else 1, "Connect": 0,
            "Receive": 0 if last else 1, "Length": 0, "Exceptions": 0, "Write errors": 0,
            "Send request failed!": 0, "Keep-Alive": k, "HTML": k * len(BODY), "heads": k,
            "stderr": ""}


def main():
    skip = start("sendfail")
    if skip is not None:
        return skip
    with tempfile.NamedTemporaryFile() as post:
        post.write(b"x" * POST)
        post.flush()
        for n, c, nth in ((3, 1, 2), (6, 2, 3)):
            name = "-n %d -c %d, request %d reset part way" % (n, c, nth)
            rc, out, err, heads = run(n, c, nth, post.name)
            f = figures(out)
            werr = figure(out, "Write errors")
            check(name + ": each request counted once",
                  rc == 0 and f["Complete requests"] == n and f["Failed requests"] == 1
                  and split(out) == (0, 0, 1, 0) and werr == 1
                  and out.count("Send request failed!") == 1
                  and f["Keep-Alive requests"] == n - 1
                  and f["HTML transferred"] == (n - 1) * len(BODY),
                  (rc, f, werr, split(out), err[-300:]))
            check(name + ": the server saw exactly -n requests", heads == n, (heads, n))

    n = 4
    ab = shutil.which("ab")
    for nth in (2, n):
        name = "-n %d, answer %d with a reset" % (n, nth)
        rc, out, err, heads = at_once(n, nth)
        c = counters(rc, out)
        check(name + ": ab's counts, each failure once", c == ab_counts(n, nth) and once(c, n),
              (c, err[-300:]))
        # the failed send never reaches the server (ab sends it: n there)
        check(name + ": the server saw the requests that went out",
              heads == (n if nth == n else n - 1), (heads, n))
        if ab:
            rc, out, err, _ = at_once(n, nth, [ab])
            check(name + ": ab itself counts so", counters(rc, out) == ab_counts(n, nth),
                  (counters(rc, out), err[-300:]))
    if ENGINE == "uring":
        # both engines (this one is usable, so the comparison can run)
        for nth in (1, 2, n):
            name = "-n %d, answer %d with a reset, epoll and io_uring" % (n, nth)
            got = both(n, nth, [])
            check(name + ": the same counters", got["epoll"] == got["uring"], got)
            check(name + ": each failure once, none past -n",
                  all(once(c, n) for c in got.values()), got)
        # --pipeline, in the cases whose outcome is no race (all -n sent by
        # the time the reset comes, or a request in flight at it)
        for pipe, nth, r in ((2, n, []), (4, n, []), (2, 1, ["-r"]), (4, 1, ["-r"]),
                             (4, 3, ["-r"])):
            name = "--pipeline %d %s-n %d, answer %d with a reset, epoll and io_uring" % (
                pipe, "-r " if r else "", n, nth)
            got = both(n, nth, ["--pipeline", str(pipe)] + r)
            check(name + ": the same counters", got["epoll"] == got["uring"], got)
            check(name + ": " + ("nothing failed" if nth == n else
                                 "the request in flight failed, the rest went again"),
                  all(c == pipelined(n, nth) for c in got.values()), got)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
