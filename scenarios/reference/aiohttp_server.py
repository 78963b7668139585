#!/usr/bin/python3
"""aiohttp_server.py — the Python asyncio reference server: today's explicit
style in Python.

One process, one asyncio event loop, aiohttp's server. A handler is a
coroutine, and every upstream call is an explicit `await` on one shared
aiohttp.ClientSession — what uWSGI + grequests made explicit in 2012, and
what servers/async does with app_fetch_async(). The apps answer exactly what
servers/app/apps answer, so scripts/bench verifies them the same way:

    hello   "Hello, World!"
    proxy   one upstream GET, its body back
    fanout  ?n= (default 4, 1..64) upstream GETs at once (asyncio.gather),
            their bodies concatenated in order

A failed fetch answers 502 (connection failed or reset, malformed answer,
upstream 5xx) or 504 (timed out) with the reason as the body, as the C apps
do. The session's connector keeps upstream connections alive with no cap on
their number, as the C workers' libcurl pool does.

The interpreter is Debian's (/usr/bin/python3): python3-aiohttp installs
aiohttp for it, and an interpreter found first on PATH (a pyenv or venv one)
may not have it.
"""
import argparse
import asyncio
import platform
import resource
import sys

MAX_FANOUT = 64
DEFAULT_FANOUT = 4


def runtime_version():
    try:
        import aiohttp
        lib = "aiohttp %s" % aiohttp.__version__
    except ImportError:
        lib = "no aiohttp"
    return "%s %s, %s" % (platform.python_implementation(), platform.python_version(), lib)


class UpstreamError(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status
        self.why = why


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="aiohttp_server.py",
                                 description="The asyncio + aiohttp reference server.")
    ap.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                    help="where to listen (default %(default)s)")
    ap.add_argument("--app", default="hello", choices=("hello", "proxy", "fanout"),
                    help="the app (default %(default)s)")
    ap.add_argument("--upstream", default="http://127.0.0.1:9000/", metavar="URL",
                    help="what proxy and fanout fetch (default %(default)s)")
    ap.add_argument("--upstream-timeout", type=int, default=10000, metavar="MS",
                    help="upstream fetch timeout, whole transfer, ms (then 504; "
                         "default %(default)s)")
    ap.add_argument("--version", action="store_true",
                    help="print the runtime's version and exit")
    a = ap.parse_args(argv)
    host, sep, port = a.listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        ap.error("bad --listen '%s' (HOST:PORT)" % a.listen)
    a.host, a.port = host.strip("[]") or "0.0.0.0", int(port)
    if a.upstream_timeout < 1:
        ap.error("--upstream-timeout must be at least 1")
    return a


def raise_nofile():
    """Client and upstream sockets both count: c = 1000 needs over 2000."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fanout_n(request):
    """?n= read as the C apps do (app_query_ulong): decimal digits only, else
    the default; then clamped to 1..64."""
    v = request.query.get("n", "")
    n = int(v) if v and len(v) <= 18 and v.isascii() and v.isdigit() else DEFAULT_FANOUT
    return min(max(n, 1), MAX_FANOUT)


def make_app(args):
    import aiohttp
    from aiohttp import web

    upstream = args.upstream
    timeout = aiohttp.ClientTimeout(total=args.upstream_timeout / 1000.0, connect=2.0)
    state = {}

    async def fetch():
        try:
            async with state["session"].get(upstream) as r:
                body = await r.read()
        except asyncio.TimeoutError:
            raise UpstreamError(504, "upstream timed out")
        except aiohttp.ClientConnectorError:
            raise UpstreamError(502, "upstream connection failed")
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                ConnectionResetError, aiohttp.ClientOSError):
            raise UpstreamError(502, "upstream connection reset")
        except aiohttp.ClientError:
            raise UpstreamError(502, "upstream sent a malformed answer")
        if r.status >= 500:
            raise UpstreamError(502, "upstream answered with an error status")
        return body

    def answer(status, body):
        return web.Response(status=status, body=body, content_type="text/plain")

    async def hello(request):
        return answer(200, b"Hello, World!")

    async def proxy(request):
        try:
            return answer(200, await fetch())
        except UpstreamError as e:
            return answer(e.status, e.why.encode())

    async def fanout(request):
        calls = [fetch() for _ in range(fanout_n(request))]
        # every call runs to its end, as the C fanout waits for all of them;
        # the answer is then the first failure in order, if any
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, UpstreamError):
                return answer(r.status, r.why.encode())
            if isinstance(r, BaseException):
                raise r
        return answer(200, b"".join(results))

    async def session_ctx(app):
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            state["session"] = session
            yield

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}",
                         {"hello": hello, "proxy": proxy, "fanout": fanout}[args.app])
    return app


def main(argv):
    args = parse_args(argv)
    if args.version:
        print(runtime_version())
        return 0
    try:
        from aiohttp import web
    except ImportError:
        print("aiohttp_server.py: aiohttp is not installed for %s (run scripts/deps "
              "--reference: python3-aiohttp)" % sys.executable, file=sys.stderr)
        return 1
    raise_nofile()
    # keepalive_timeout: the C workers' --keepalive-timeout; SIGTERM/SIGINT
    # stop it, giving requests in flight 5 s.
    web.run_app(make_app(args), host=args.host, port=args.port, backlog=4096,
                access_log=None, print=None, keepalive_timeout=5, shutdown_timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
