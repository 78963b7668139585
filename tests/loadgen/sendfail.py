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
it reads the answer, and its next send on that kept-alive connection fails
(ECONNRESET; EPIPE on io_uring, whose receive took the error first). The
failed request never reaches the server: it sees n - 1 requests (before the
fix n on epoll). On epoll the error flag comes beside the answer and counts
as an exception too, as in ab (ab 2.3: Length 1, Exceptions 1, Write errors
1); on io_uring the error is a completion of its own, met while the request
is going out, and is not.

`--engine E` runs on that event loop (77 when it is unusable)."""
import os
import re
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


def at_once(n, nth):
    """(exit status, stdout, stderr, requests the server saw) of loadgen
    against a server that answers the nth request, then resets."""
    srv = httpd.Server(answer_reset=nth).start()
    try:
        p = subprocess.Popen([LOADGEN] + ENGINE_ARGS +
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
    name = "-n %d, request 3's send fails at once" % n
    rc, out, err, heads = at_once(n, 2)
    f = figures(out)
    werr = figure(out, "Write errors")
    # the exception beside it: epoll's, not io_uring's (either without --engine)
    sp = split(out)
    exc = sp[3] if sp else None
    check(name + ": each request counted once",
          rc == 0 and f["Complete requests"] == n
          and exc in {"epoll": (1,), "uring": (0,)}.get(ENGINE, (0, 1))
          and f["Failed requests"] == 1 + exc and sp == (0, 0, 1, exc) and werr == 1
          and out.count("Send request failed!") == 1 and f["Keep-Alive requests"] == n - 1
          and f["HTML transferred"] == (n - 1) * len(BODY), (rc, f, werr, sp, err[-300:]))
    check(name + ": the server saw the n - 1 that went out", heads == n - 1, (heads, n - 1))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
