#!/usr/bin/env python3
"""test_diff.py — the two workers, byte for byte: the same raw HTTP/1.1 and
HTTP/2 exchanges go to coro-server and async-server (same flags, same app,
one worker each) and each must give back the same bytes (the Date header
aside) and end the connection the same way: closed (EOF), reset (RST) or
kept open.

Only how a request waits may differ between the two; everything a client can
see must not. The cases: well-formed requests and pipelines, malformed heads,
request smuggling (where the test asks for equality only: which verdict is
right is another issue's business), a bad request in the middle of a
pipeline, every limit (header bytes, header count, URI, body declared and
chunked, HTTP/2 streams), 100-continue, the h2c upgrade, HTTP/2 by prior
knowledge, slow and half-closing clients, upstream failures through the proxy
apps (tests/hostile/fakeup.py), descriptor exhaustion (a low
RLIMIT_NOFILE on each worker), and a few exchanges over the other
transports: a Unix-domain socket (--unix) and TLS (--tls-cert, compared
decrypted; the certificate is made with openssl in a temporary folder).

Usage:
    python3 test_diff.py --coro PATH --async PATH [--only REGEX] [--list]

TAP on stdout; a failed case prints both transcripts. Standard library only;
every process is stopped by its PID.
"""

import argparse
import os
import re
import resource
import shutil
import socket
import ssl
import tempfile
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "hostile"))
import h2wire as hw  # noqa: E402
import srvtest as st  # noqa: E402
from fakeup import FakeUpstream  # noqa: E402

KA = 5            # --keepalive-timeout of most pairs, seconds
KA_SLOW = 2       # ... of the pair that checks the timeouts
QUIET = 1.2       # a connection not closed this long after the last step is "open"
MAX_BODY = 16384
COMMON = ["--workers", "1", "--quiet", "--max-body", str(MAX_BODY), "--h2-max-streams", "8",
          "--upstream-timeout", "500"]

# ---------------------------------------------------------------- transcripts


class Steps:
    """What a client does on one connection, in order."""

    def __init__(self):
        self.items = []

    def send(self, data):
        self.items.append(("send", data))
        return self

    def sleep(self, s):
        self.items.append(("sleep", s))
        return self

    def wait_for(self, marker, timeout=3.0):
        """Read until marker has arrived (or timeout)."""
        self.items.append(("wait", marker, timeout))
        return self

    def shut(self):
        """shutdown(SHUT_WR): the client's FIN."""
        self.items.append(("shut",))
        return self

    def trickle(self, data, every):
        """data one byte at a time, every seconds apart, stopping when the
        server closes."""
        self.items.append(("trickle", data, every))
        return self


def run_steps(port, steps, quiet=QUIET, end_wait=None, connect=None):
    """Run steps on a fresh connection; returns (received bytes, ending)
    with ending "eof", "rst" or "open" (nothing ended within quiet seconds of
    the last step; end_wait overrides quiet). connect: how to open it (a
    Unix-domain or a TLS socket); TCP to port by default."""
    if connect:
        s = connect()
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    got = bytearray()
    ending = None

    def pull(timeout):
        nonlocal ending
        if ending:
            return False
        s.settimeout(max(timeout, 0.001))
        try:
            d = s.recv(262144)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            ending = "rst"
            return False
        if not d:
            ending = "eof"
            return False
        got.extend(d)
        return True

    def drain(seconds):
        end = time.monotonic() + seconds
        while not ending and time.monotonic() < end:
            pull(end - time.monotonic())

    try:
        for item in steps.items:
            if ending:
                break
            kind = item[0]
            if kind == "send":
                try:
                    s.sendall(item[1])
                except (BrokenPipeError, ConnectionResetError):
                    drain(0.2)
                    ending = ending or "rst"
            elif kind == "sleep":
                drain(item[1])
            elif kind == "wait":
                end = time.monotonic() + item[2]
                while item[1] not in got and not ending and time.monotonic() < end:
                    pull(end - time.monotonic())
            elif kind == "shut":
                s.shutdown(socket.SHUT_WR)
            elif kind == "trickle":
                for b in item[1]:
                    drain(item[2])
                    if ending:
                        break
                    try:
                        s.send(bytes([b]))
                    except OSError:
                        ending = ending or "rst"
                        break
        drain(end_wait if end_wait is not None else quiet)
    finally:
        s.close()
    return bytes(got), ending or "open"


DATE_RE = re.compile(rb"\r\nDate: [^\r\n]*\r\n")


def norm_h1(data):
    return DATE_RE.sub(b"\r\nDate: <date>\r\n", data)


def norm_block(block):
    """A response header block with the date field's value masked (the
    client asked for no dynamic table, so the block is self-contained)."""
    return [(kind, idx, name, b"<date>" if idx == 33 and kind not in ("idx", "size") else value)
            for kind, idx, name, value in hw.block_fields(block)]  # 33: date, RFC 7541


def norm_h2(data):
    """The server's frames, a HEADERS block's date masked, grouped by stream
    (in order within each): how the frames of different streams interleave
    is the scheduler's business, what each stream gets is not. Trailing
    bytes that are no whole frame are kept as they are."""
    streams, i = {}, 0
    while len(data) - i >= 9:
        n = int.from_bytes(data[i:i + 3], "big")
        if len(data) - i < 9 + n:
            break
        ftype, flags = data[i + 3], data[i + 4]
        sid = int.from_bytes(data[i + 5:i + 9], "big") & 0x7FFFFFFF
        payload = data[i + 9:i + 9 + n]
        if ftype in (hw.HEADERS, hw.CONTINUATION):
            payload = norm_block(payload)
        streams.setdefault(sid, []).append((ftype, flags, payload))
        i += 9 + n
    return sorted(streams.items()), data[i:]


def normalize(kind, data):
    if kind == "h1":
        return norm_h1(data)
    if kind == "h2":
        return norm_h2(data)
    # "up": HTTP/1.1 up to the end of a 101 (answers before it included),
    # HTTP/2 after it
    at = data.find(b"HTTP/1.1 101 ")
    cut = data.find(b"\r\n\r\n", at) if at >= 0 else -1
    if cut < 0:
        return norm_h1(data)
    return norm_h1(data[:cut + 4]), norm_h2(data[cut + 4:])


def show(data, limit=600):
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + f"... ({len(data)} bytes)"


# ---------------------------------------------------------------- requests

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def get(path="/", extra=b"", version=b"1.1", method=b"GET"):
    return method + b" " + path.encode() + b" HTTP/" + version + b"\r\nHost: t\r\n" + extra + \
        b"\r\n"


def post(body, extra=b"", path="/"):
    return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: " + \
        b"%d" % len(body) + b"\r\n" + extra + b"\r\n" + body


def h2_hello(*pairs):
    """Client preface and SETTINGS (no dynamic HPACK table, so answers can be
    compared byte for byte)."""
    return hw.PREFACE + hw.settings((hw.S_HEADER_TABLE_SIZE, 0), *pairs)


def h2_get(sid, path="/", method="GET", extra=()):
    return hw.frame(hw.HEADERS, hw.END_STREAM | hw.END_HEADERS, sid,
                    hw.req_block(method, path, extra))


def h2_post(sid, body, path="/", declare=True):
    extra = (("content-length", str(len(body))),) if declare else ()
    return hw.frame(hw.HEADERS, hw.END_HEADERS, sid, hw.req_block("POST", path, extra)) + \
        hw.frame(hw.DATA, hw.END_STREAM, sid, body)


def upgrade_req(settings_b64=b"AAMAAABkAARAAAAAAAIAAAAA", path="/"):
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, "
            b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: " + settings_b64 + b"\r\n\r\n")


# ---------------------------------------------------------------- cases
#
# A case: (name, pair, kind, steps, expect, schedule). pair names a server
# pair (see PAIRS); kind says how to compare ("h1", "h2", "up"); expect is a
# regex the transcript's bytes must match on both servers (a sanity check
# that the exchange did what it is meant to), or None where the test asks
# for equality only (smuggling: both workers' verdicts may be wrong today);
# schedule, for the proxy pairs, is what their fake upstreams do.


def cases():
    c = []

    def add(name, pair, kind, steps, expect, schedule=None):
        c.append((name, pair, kind, steps, expect, schedule))

    ok = rb"^HTTP/1.1 200 OK\r\n"
    # ---- well-formed
    add("GET, keep-alive", "echo", "h1", Steps().send(get()), ok)
    add("GET HTTP/1.0 (closes)", "echo", "h1", Steps().send(get(version=b"1.0")),
        rb"^HTTP/1.0 200 OK\r\n")
    add("GET HTTP/1.0 with Connection: keep-alive", "echo", "h1",
        Steps().send(get(version=b"1.0", extra=b"Connection: keep-alive\r\n")),
        rb"^HTTP/1.0 200 OK\r\n")
    add("GET with Connection: close", "echo", "h1",
        Steps().send(get(extra=b"Connection: close\r\n")), ok)
    add("HEAD: the head only", "hello", "h1", Steps().send(get(method=b"HEAD")), ok)
    add("HEAD HTTP/1.0", "hello", "h1", Steps().send(get(method=b"HEAD", version=b"1.0")),
        rb"^HTTP/1.0 200")
    add("POST with Content-Length", "echo", "h1", Steps().send(post(b"x" * 1000)), ok)
    add("POST chunked", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     st.chunked([b"abc", b"d" * 300, b"e"])), ok)
    add("three pipelined GETs in one write", "hello", "h1", Steps().send(get() * 3), ok)
    add("pipeline GET, HEAD, POST, GET HTTP/1.0", "echo", "h1",
        Steps().send(get() + get(method=b"HEAD") + post(b"body") + get(version=b"1.0")), ok)
    add("a request split across writes", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHo").sleep(0.1).send(b"st: t\r\nContent-Le")
        .sleep(0.1).send(b"ngth: 5\r\n\r\nab").sleep(0.1).send(b"cde"), ok)
    add("1,000 pipelined GETs", "hello", "h1", Steps().send(get() * 1000), ok)
    add("query string and odd but legal target", "echo", "h1",
        Steps().send(get("/a/b;c?x=1&y=%20")), ok)
    # ---- a bad request in a pipeline
    add("pipeline: GET, malformed, GET", "hello", "h1",
        Steps().send(get() + b"GARBAGE\r\n\r\n" + get()), ok)
    add("pipeline: GET, header too big, GET", "hello", "h1",
        Steps().send(get() + get(extra=b"X-Big: " + b"a" * 9000 + b"\r\n") + get()), ok)
    add("pipeline: POST over --max-body, then GET", "echo", "h1",
        Steps().send(post(b"b" * 100) + post(b"z" * (MAX_BODY + 1)) + get()), ok)
    # ---- 100-continue
    add("Expect: 100-continue, body after the 100", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        .wait_for(b"100 Continue").send(b"body"), rb"^HTTP/1.1 100 Continue\r\n\r\n")
    add("Expect: 100-continue with the body at once", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                     b"Expect: 100-continue\r\n\r\nbody"), rb"HTTP/1.1 200")
    add("Expect: 100-continue over --max-body", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999\r\n"
                     b"Expect: 100-continue\r\n\r\n"), rb"^HTTP/1.1 413")
    # ---- malformed heads
    bad = rb"^HTTP/1.1 400 Bad Request\r\n"
    add("garbage request line", "hello", "h1", Steps().send(b"HELLO\r\n\r\n"), bad)
    add("HTTP/1.2", "hello", "h1", Steps().send(get(version=b"1.2")), None)
    add("HTTP/2.0 request line that is not the preface", "hello", "h1",
        Steps().send(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"), None)
    add("lowercase method", "hello", "h1", Steps().send(get(method=b"get")), bad)
    add("NUL in a header value", "hello", "h1", Steps().send(get(extra=b"X-A: a\x00b\r\n")),
        bad)
    add("space in a header name", "hello", "h1", Steps().send(get(extra=b"X A: b\r\n")), bad)
    add("bare LF line ends", "hello", "h1", Steps().send(b"GET / HTTP/1.1\nHost: t\n\n"), None)
    add("3,000 CRLFs before a request", "hello", "h1", Steps().send(b"\r\n" * 3000 + get()),
        None)
    add("a TLS ClientHello", "hello", "h1",
        Steps().send(bytes.fromhex("16030100a5010000a10303") + b"\x00" * 60), bad)
    add("PRI * HTTP/2.0 with a wrong rest", "hello", "h1",
        Steps().send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), bad)
    # ---- smuggling: equality only
    sm = SMUGGLED
    lsm = b"%x" % len(sm)
    n5 = b"%d" % (5 + len(sm))
    smug = [
        ("CL.TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + n5 +
         b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + sm),
        ("TE.CL", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         b"Content-Length: 4\r\n\r\n" + lsm + b"\r\n" + sm + b"\r\n0\r\n\r\n"),
        ("TE.TE chunked then identity", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
         b"chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + sm),
        ("TE with a space before the colon", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " +
         n5 + b"\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + sm),
        ("TE xchunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
         b"0\r\n\r\n" + sm),
        ("TE chunked, identity", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, "
         b"identity\r\n\r\n0\r\n\r\n" + sm),
        ("TE by obs-fold", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: x\r\n chunked"
         b"\r\n\r\n0\r\n\r\n" + sm),
        ("TE with a vertical tab", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + n5 +
         b"\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + sm),
        ("two Content-Lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
         b"Content-Length: " + b"%d" % len(sm) + b"\r\n\r\n" + sm),
        ("Content-Length list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, " +
         b"%d" % len(sm) + b"\r\n\r\n" + sm),
        ("Content-Length with a sign", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +" +
         b"%d" % len(sm) + b"\r\n\r\n" + sm),
        ("chunk size 0x5", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0x5\r\nhello\r\n0\r\n\r\n" + sm),
        ("bare CR in a header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + sm),
        ("GET with a body by Content-Length", b"GET / HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: " + b"%d" % len(sm) + b"\r\n\r\n" + sm),
    ]
    for name, data in smug:
        add(f"smuggling: {name}", "echo", "h1", Steps().send(data), None)
    # ---- limits
    add("header block over 8 KiB", "hello", "h1",
        Steps().send(get(extra=b"X-Big: " + b"a" * 9000 + b"\r\n")),
        rb"^HTTP/1.1 431")
    add("101 header lines", "hello", "h1",
        Steps().send(get(extra=b"".join(b"X-%d: v\r\n" % i for i in range(101)))),
        rb"^HTTP/1.1 431")
    add("100 header lines (at the limit)", "hello", "h1",
        Steps().send(get(extra=b"".join(b"X-%d: v\r\n" % i for i in range(99)))), ok)
    add("64 KiB URI", "hello", "h1", Steps().send(get("/" + "u" * 65536)), rb"^HTTP/1.1 4")
    add("Content-Length over --max-body", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" %
                     (MAX_BODY + 1)), rb"^HTTP/1.1 413")
    add("Content-Length 2^64", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551616"
                     b"\r\n\r\n"), rb"^HTTP/1.1 4")
    add("chunked body over --max-body", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     st.chunked([b"c" * 8000] * 3)), rb"^HTTP/1.1 413")
    add("a 1 MiB header line that never ends", "hello", "h1",
        Steps().send(b"GET / HTTP/1.1\r\nX-Long: " + b"l" * (1 << 20)), rb"^HTTP/1.1 431")
    # ---- client endings
    add("half-close after a full request", "echo", "h1", Steps().send(get()).shut(), ok)
    add("half-close after three pipelined requests", "echo", "h1",
        Steps().send(get() * 3).shut(), ok)
    add("half-close in the middle of a head", "echo", "h1",
        Steps().send(b"GET / HTTP/1.1\r\nHo").shut(), None)
    add("half-close in the middle of a body", "echo", "h1",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc").shut(), None)
    add("half-close while the app waits (sleep 200 ms)", "sleep", "h1",
        Steps().send(get("/?ms=200")).shut(), ok)
    add("half-close while proxy-async waits on its upstream", "proxy-async", "h1",
        Steps().send(get()).sleep(0.1).shut().sleep(0.5), None, ["slow:300"])
    # ---- slow clients (keep-alive timeout KA_SLOW)
    # (0.3 s, not 0.4: the deadline is KA_SLOW after the first byte, and a
    # byte every 0.4 s falls due at that very moment, so whether the close
    # met an unread byte (RST) or not (EOF) was a coin toss per worker; at
    # 0.3 s it falls between two bytes, 0.1 s from either)
    add("slow header: one byte every 0.3 s past the head deadline", "slow", "h1",
        Steps().trickle(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 20, 0.3), None)
    add("idle connection, never a byte", "slow", "h1", Steps(), None)
    add("idle after an answer: closed by the keep-alive timeout", "slow", "h1",
        Steps().send(get()).sleep(KA_SLOW + 1.5), ok)
    add("10 bytes of the client preface, then silence", "slow", "h1",
        Steps().send(hw.PREFACE[:10]).sleep(KA_SLOW + 1.5), None)
    # ---- keep-alive off (--keepalive-timeout 0)
    add("keep-alive off: two pipelined GETs get one answer and a close", "noka", "h1",
        Steps().send(get() * 2), ok)
    add("keep-alive off: an idle connection is not closed at once", "noka", "h1",
        Steps().sleep(0.5), None)
    add("keep-alive off: h2 by prior knowledge", "noka", "h2",
        Steps().send(h2_hello() + h2_get(1)), None)
    # ---- the h2c upgrade
    add("h2c upgrade, then the preface", "hello", "up",
        Steps().send(upgrade_req()).wait_for(b"\r\n\r\n").send(h2_hello()),
        rb"^HTTP/1.1 101 Switching Protocols\r\n")
    add("h2c upgrade of a POST with a body (served as HTTP/1.1: no upgrade with a body)",
        "echo", "up",
        Steps().send(b"POST / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\nContent-Length: 3\r\n\r\nabc")
        .wait_for(b"\r\n\r\n").send(h2_hello()), None)
    add("h2c upgrade with malformed HTTP2-Settings: served as HTTP/1.1", "hello", "up",
        Steps().send(upgrade_req(b"!!notbase64!!")), ok)
    add("h2c upgrade with ENABLE_PUSH=2: served as HTTP/1.1", "hello", "up",
        Steps().send(upgrade_req(b"AAIAAAAC")), ok)
    add("h2c upgrade, then HTTP/1.1 instead of the preface", "hello", "up",
        Steps().send(upgrade_req()).wait_for(b"\r\n\r\n").send(get()), None)
    add("h2c upgrade, then silence (no preface): closed after the read timeout", "slow", "up",
        Steps().send(upgrade_req()).sleep(KA_SLOW + 1.5), rb"^HTTP/1.1 101")
    add("h2c upgrade after a pipelined GET", "hello", "up",
        Steps().send(get() + upgrade_req()).wait_for(b"Switching").send(h2_hello()), ok)
    add("Upgrade: websocket is plain HTTP/1.1", "hello", "h1",
        Steps().send(get(extra=b"Connection: Upgrade\r\nUpgrade: websocket\r\n")), ok)
    # ---- HTTP/2 by prior knowledge
    add("h2: GET", "hello", "h2", Steps().send(h2_hello() + h2_get(1)), None)
    add("h2: HEAD", "hello", "h2", Steps().send(h2_hello() + h2_get(1, method="HEAD")), None)
    add("h2: POST echo, two streams", "echo", "h2",
        Steps().send(h2_hello() + h2_post(1, b"p" * 500) + h2_post(3, b"q", declare=False)),
        None)
    add("h2: header block over 8 KiB gets 431", "hello", "h2",
        Steps().send(h2_hello() + h2_get(1, extra=(("x-big", "b" * 9000),))), None)
    add("h2: body over --max-body gets 413", "echo", "h2",
        Steps().send(h2_hello() +
                     hw.frame(hw.HEADERS, hw.END_HEADERS, 1, hw.req_block("POST", "/")) +
                     hw.frame(hw.DATA, 0, 1, b"z" * 16000) +
                     hw.frame(hw.DATA, hw.END_STREAM, 1, b"y" * 1000)), None)
    add("h2: a DATA frame over the frame size limit (GOAWAY, then a lingering close)",
        "echo", "h2", Steps().send(h2_hello() + h2_post(1, b"z" * 16385)), None)
    add("h2: 12 streams against --h2-max-streams 8", "sleep", "h2",
        Steps().send(h2_hello() + b"".join(h2_get(i, "/?ms=100") for i in range(1, 24, 2)))
        .sleep(0.5), None)
    add("h2: garbage after the preface", "hello", "h2",
        Steps().send(hw.PREFACE + b"\x00\x00\x04\x99garbage!" * 4), None)
    add("h2: HEADERS before SETTINGS", "hello", "h2",
        Steps().send(hw.PREFACE + h2_get(1)), None)
    add("h2: 20 bytes of the preface, then EOF", "hello", "h2",
        Steps().send(hw.PREFACE[:20]).shut(), None)
    add("h2: client reset of a stream waiting on its upstream", "proxy-async", "h2",
        Steps().send(h2_hello() + h2_get(1)).sleep(0.1).send(hw.rst(1) + h2_get(3))
        .sleep(0.6), None, ["slow:300", "ok"])
    add("h2: idle connection gets GOAWAY after the keep-alive timeout", "slow", "h2",
        Steps().send(h2_hello() + h2_get(1)).sleep(2 * KA_SLOW + 1), None)
    # ---- other transports: the same bytes over a Unix-domain socket and,
    # decrypted, over TLS (the pairs "unix" and "tls": echo)
    for t in ("unix", "tls"):
        add(f"{t}: GET, keep-alive", t, "h1", Steps().send(get()), ok)
        add(f"{t}: POST, then a pipeline of 100 GETs", t, "h1",
            Steps().send(post(b"y" * 3000) + get() * 100), ok)
        add(f"{t}: a request split across writes", t, "h1",
            Steps().send(b"POST / HTTP/1.1\r\nHo").sleep(0.1).send(b"st: t\r\nContent-Le")
            .sleep(0.1).send(b"ngth: 3\r\n\r\nabc"), ok)
        add(f"{t}: a malformed request (400, then the close)", t, "h1",
            Steps().send(get(extra=b"X A: b\r\n")), bad)
        add(f"{t}: CONNECT (405, then the close)", t, "h1",
            Steps().send(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"), rb"^HTTP/1.1 405")
        add(f"{t}: HTTP/1.0 (closes)", t, "h1", Steps().send(get(version=b"1.0")),
            rb"^HTTP/1.0 200 OK\r\n")
        add(f"{t}: h2, two streams", t, "h2",
            Steps().send(h2_hello() + h2_post(1, b"p" * 500) + h2_get(3)), None)
    add("tls: Upgrade: h2c is HTTP/1.1 there", "tls", "h1", Steps().send(upgrade_req()), ok)
    return c


def upstream_cases():
    """(name, app, schedule, path): through proxy and proxy-async, against
    each pair's own FakeUpstream."""
    out = []
    for app in ("proxy", "proxy-async"):
        for kind in ("ok", "close", "reset", "cl-long", "garbage", "status:500", "stall",
                     "cl-short", "101", "cl-cl", "cl-te", "chunked", "no-content"):
            out.append((f"upstream {kind} via {app}", app, [kind]))
    return out


# ---------------------------------------------------------------- servers


class Pair:
    """coro-server and async-server started with the same flags; transport
    "tcp", "unix" (each its own --unix socket in tmp) or "tls" (the
    certificate in tmp)."""

    def __init__(self, bins, args, upstreams=None, transport="tcp", tmp=None):
        self.srv = {}
        self.ups = upstreams or {}
        self.connect = {}
        for name, path in bins.items():
            extra = list(args)
            if name in self.ups:
                extra += ["--upstream", self.ups[name].url("/")]
            if transport == "unix":
                sock = os.path.join(tmp, name + ".sock")
                extra += ["--unix", sock]
                self.connect[name] = lambda p=sock: unix_socket(p)
            elif transport == "tls":
                cert, key = st.make_cert(tmp)
                extra += ["--tls-cert", cert, "--tls-key", key]
            srv = st.start_server(path, COMMON + extra)
            if transport == "tls":
                self.connect[name] = lambda port=srv.port, c=cert: st.tls_client(port, c)
            if not srv.ready_ok:
                raise RuntimeError(f"{name} did not start: {srv.text()}")
            srv.wpid = srv.wait_workers(1)[0]
            self.srv[name] = srv

    def each(self, fn):
        """fn(name, server) on both servers at once; {name: result}."""
        out, errs = {}, {}

        def run(name):
            try:
                out[name] = fn(name, self.srv[name])
            except Exception as e:  # noqa: BLE001 - reported as the case's failure
                errs[name] = f"{type(e).__name__}: {e}"

        ths = [threading.Thread(target=run, args=(n,)) for n in self.srv]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        if errs:
            raise RuntimeError(errs)
        return out

    def alive(self):
        return [n for n, s in self.srv.items() if st.children_of(s.pid) != [s.wpid]]

    def stop(self):
        for s in self.srv.values():
            s.stop()
        for u in self.ups.values():
            u.stop()

    def logs(self):
        return {n: s.text() for n, s in self.srv.items()}


def unix_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


PAIRS = {
    "hello": (["--app", "hello", "--keepalive-timeout", str(KA)], False),
    "echo": (["--app", "echo", "--keepalive-timeout", str(KA)], False),
    "sleep": (["--app", "sleep", "--keepalive-timeout", str(KA)], False),
    "slow": (["--app", "hello", "--keepalive-timeout", str(KA_SLOW)], False),
    "noka": (["--app", "hello", "--keepalive-timeout", "0"], False),
    "proxy": (["--app", "proxy", "--keepalive-timeout", str(KA)], True),
    "proxy-async": (["--app", "proxy-async", "--keepalive-timeout", str(KA)], True),
    "unix": (["--app", "echo", "--keepalive-timeout", str(KA)], False),
    "tls": (["--app", "echo", "--keepalive-timeout", str(KA)], False),
}


class Diff:
    def __init__(self, a):
        self.bins = {"coro": a.coro, "async": getattr(a, "async")}
        self.only = re.compile(a.only) if a.only else None
        self.t = st.Tap()
        self.pairs = {}
        self.tmp = tempfile.mkdtemp(prefix="corobench-diff-")

    def pair(self, name):
        if name not in self.pairs:
            args, up = PAIRS[name]
            ups = {n: FakeUpstream() for n in self.bins} if up else None
            transport = name if name in ("unix", "tls") else "tcp"
            self.pairs[name] = Pair(self.bins, args, ups, transport, self.tmp)
        return self.pairs[name]

    def compare(self, name, kind, got, expect):
        """got: {server: (bytes, ending)}. None when equal (and expected)."""
        (cb, ce), (ab, ae) = got["coro"], got["async"]
        nc, na = normalize(kind, cb), normalize(kind, ab)
        if nc != na or ce != ae:
            return (f"coro  ({ce}, {len(cb)} bytes): {show(cb)}\n"
                    f"async ({ae}, {len(ab)} bytes): {show(ab)}")
        if expect is not None and not re.search(expect, cb):
            return f"both gave what the case does not expect ({expect!r}): {show(cb)}"
        if kind != "h1" and not cb and ce == "open":
            return "nothing came back at all"
        return None

    def case(self, name, pair, kind, steps, expect, schedule=None):
        if self.only and not self.only.search(name):
            return
        p = self.pair(pair)

        def run():
            for u in p.ups.values():
                u.set_schedule(schedule or ["ok"])
            got = p.each(lambda n, s: run_steps(s.port, steps, connect=p.connect.get(n)))
            bad = self.compare(name, kind, got, expect)
            gone = p.alive()
            if gone:
                return f"worker replaced: {gone}\n" + (bad or "")
            return bad
        self.t.check(f"{name}: same bytes and ending", run)

    def upstream(self, name, app, schedule):
        if self.only and not self.only.search(name):
            return
        p = self.pair(app)

        def run():
            for u in p.ups.values():
                u.set_schedule(schedule)
            got = p.each(lambda n, s: run_steps(s.port, Steps().send(get()), quiet=QUIET))
            return self.compare(name, "h1", got, rb"^HTTP/1.1 (20[04]|50[024])")
        self.t.check(f"{name}: same bytes and ending", run)

    def fd_exhaustion(self):
        name = "descriptor exhaustion: a request queued behind a full table is served " \
            "once descriptors free up"
        if self.only and not self.only.search(name):
            return
        p = self.pair("echo")

        def one(n, srv):
            limit = 40
            # The soft limit only: raising a hard limit back needs a privilege.
            soft, hard = resource.prlimit(srv.wpid, resource.RLIMIT_NOFILE)
            resource.prlimit(srv.wpid, resource.RLIMIT_NOFILE, (limit, hard))
            holders = []
            try:
                for _ in range(limit + 5):
                    holders.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
                time.sleep(0.3)
                res = {}

                def waiter():
                    res["t"] = run_steps(srv.port, Steps().send(post(b"queued")).sleep(0.5),
                                         quiet=2.0)
                th = threading.Thread(target=waiter)
                th.start()
                time.sleep(0.5)
                for h in holders:
                    h.close()
                holders = []
                th.join()
                return res["t"]
            finally:
                for h in holders:
                    h.close()
                resource.prlimit(srv.wpid, resource.RLIMIT_NOFILE, (soft, hard))

        def run():
            got = p.each(one)
            bad = self.compare(name, "h1", got, rb"^HTTP/1.1 200 OK\r\n")
            gone = p.alive()
            if gone:
                return f"worker replaced: {gone}"
            quiet = [n for n, t in p.logs().items() if "out of file descriptors" not in t]
            if quiet:
                return f"{quiet}: never ran out of descriptors (the case did not test it)"
            return bad
        self.t.check(f"{name}: same bytes and ending", run)

    def self_check(self):
        """The comparison itself must see a difference where there is one."""
        name = "self-check: different exchanges compare as different"
        if self.only and not self.only.search(name):
            return
        p = self.pair("hello")

        def run():
            srv = p.srv["coro"]
            a = run_steps(srv.port, Steps().send(get()))
            b = run_steps(srv.port, Steps().send(get(method=b"HEAD")))
            c = run_steps(srv.port, Steps().send(get(extra=b"Connection: close\r\n")))
            if self.compare("", "h1", {"coro": a, "async": b}, None) is None:
                return "GET and HEAD compared equal"
            if self.compare("", "h1", {"coro": a, "async": c}, None) is None:
                return "keep-alive and close compared equal"
            return None
        self.t.check(name, run)

    def run(self):
        st.raise_nofile()
        try:
            self.self_check()
            for cs in cases():
                self.case(*cs)
            for name, app, schedule in upstream_cases():
                self.upstream(name, app, schedule)
            self.fd_exhaustion()
            for pname, p in self.pairs.items():
                for n, text in p.logs().items():
                    bad = [l for l in text.splitlines()
                           if re.search(r"Sanitizer|runtime error:|restarting|killing", l)]
                    self.t.ok(not bad, f"{pname} pair, {n}: no sanitizer report or worker "
                              "death in the log", "\n".join(bad[:20]))
        finally:
            for p in self.pairs.values():
                p.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.t.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coro", required=True, help="coro-server binary")
    ap.add_argument("--async", required=True, help="async-server binary")
    ap.add_argument("--only", help="run the cases whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--server-flag", action="append", default=[], metavar="FLAG",
                    help="one more flag for both servers (repeatable), e.g. --send-at-once")
    a = ap.parse_args()
    COMMON.extend(a.server_flag)
    if a.list:
        names = [c[0] for c in cases()] + [u[0] for u in upstream_cases()]
        print("\n".join(names))
        print(f"{len(names) + 2} cases (with the descriptor exhaustion and the self-check)")
        return 0
    return Diff(a).run()


if __name__ == "__main__":
    st.main_guard(main)
