"""gunicorn_app.py — the 2012 post's gunicorn app: a WSGI app that fetches the
upstream with `requests`, written as plain blocking code.

Run under `gunicorn -k gevent`: the gevent worker monkey-patches the socket
module before loading the app, so the blocking-looking `session.get()` parks
this greenlet and the worker serves other requests meanwhile — the implicit
coroutine style that servers/coro reproduces in C.

The upstream URL comes from $UPSTREAM_URL (scripts/bench sets it). One
Session per process keeps upstream connections alive, as libcurl does in the
C workers; its pool is sized for the highest concurrency the scenarios use so
that no connection is thrown away under load.
"""
import os

import requests
from requests.adapters import HTTPAdapter

UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:9000/")

session = requests.Session()
session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=2000))


def app(environ, start_response):
    try:
        r = session.get(UPSTREAM, timeout=30)
    except requests.Timeout as exc:
        body = ("upstream timed out: %s\n" % exc).encode()
        start_response("504 Gateway Timeout", [("Content-Type", "text/plain"),
                                               ("Content-Length", str(len(body)))])
        return [body]
    except requests.RequestException as exc:
        body = ("upstream failed: %s\n" % exc).encode()
        start_response("502 Bad Gateway", [("Content-Type", "text/plain"),
                                           ("Content-Length", str(len(body)))])
        return [body]
    # The upstream's status is passed on, as the C apps do
    # (servers/app/README.md).
    body = r.content
    start_response("%d %s" % (r.status_code, r.reason or "Status"),
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
