"""uwsgi_app.py — the 2012 post's uWSGI app: the upstream call is made
explicitly, in a greenlet of its own, and the request waits for its result.

The post used grequests, which is `gevent.spawn(requests.get, url)` plus
`gevent.monkey.patch_all()` on import; grequests is not packaged in Debian, so
this file does those two things itself. Run under uWSGI's gevent loop
(`--gevent N`): each request is a greenlet; the spawned call runs on the same
hub — the explicit style that servers/async reproduces in C.

The upstream URL comes from $UPSTREAM_URL (scripts/bench sets it).
"""
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402

UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:9000/")

session = requests.Session()
session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=2000))


def fetch(url):
    return session.get(url, timeout=30)


def keepalive_headers(environ):
    """uWSGI's --http11-socket keeps an HTTP/1.0 client's connection open when
    it asks for it (ab -k, loadgen -k) but does not say so; an ab-style client
    then waits for the close. Say it, as gunicorn does."""
    if environ.get("SERVER_PROTOCOL") == "HTTP/1.0" and \
            environ.get("HTTP_CONNECTION", "").lower() == "keep-alive":
        return [("Connection", "Keep-Alive")]
    return []


def application(environ, start_response):
    extra = keepalive_headers(environ)
    job = gevent.spawn(fetch, UPSTREAM)
    try:
        r = job.get()
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
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + extra)
    return [body]
