#!/usr/bin/env python3
"""-s without --h2: a request that times out is spent, and the run still ends.

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
figures. `--engine E` runs on that event loop (77 when it is unusable)."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import check, figures, finish, lg, start  # noqa: E402

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
    return finish()


if __name__ == "__main__":
    sys.exit(main())
