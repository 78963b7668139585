#!/usr/bin/env python3
"""Differential test of http1.c's one-pass fast path against llhttp alone.

Generates N inputs (seeded, reproducible) around the fast path's edges:
plain GET/HEAD requests and their near misses (other methods and versions,
targets with odd bytes, the headers llhttp treats specially in any case,
whitespace, obs-fold, bare LF, bodies, pipelines, requests that end the
connection, random byte mutations), fed whole and in small chunks. Both
builds of tests/http/http1_dump must print the same thing for every input.

    diff_fastpath.py FAST_DUMP SLOW_DUMP [--seed S] [--count N]
"""
import argparse
import random
import struct
import subprocess
import sys

METHODS = [b"GET", b"GET", b"GET", b"HEAD", b"POST", b"PUT", b"get", b"GETX", b"OPTIONS"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9",
            b"http/1.1", b"HTTP/1.", b""]
SPECIAL = [b"Connection", b"connection", b"CONNECTION", b"Proxy-Connection",
           b"Content-Length", b"content-length", b"Transfer-Encoding", b"Upgrade", b"Expect",
           b"Host", b"Keep-Alive"]
CONN_VALUES = [b"keep-alive", b"close", b"Keep-Alive", b"CLOSE", b"keep-alive, upgrade",
               b"upgrade", b"", b" keep-alive", b"keep-alive ", b"te, close"]
HOST_VALUES = [b"127.0.0.1", b"127.0.0.1:8080", b"example.com", b"x", b"[::1]:80", b"a..b",
               b"a/b", b"a b", b"a:b", b"[::1", b"a@b", b"%41_~"]
TARGET_BYTES = b"abcxyz019/?=&%-._~!$'()*+,;:@#[] \t\x7f\x80\xff\"<>\\^`{|}"
NAME_BYTES = b"abcdefXYZ-_!#$%&'*+.^`|~019 :\t\x00\x7f\x80("
VALUE_BYTES = b"abcdef 0123456789;=,./\t\"()\x7f\x80\xff\x01:"


def rnd_bytes(rng, alphabet, lo, hi):
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def header(rng):
    r = rng.random()
    if r < 0.3:
        name = rng.choice(SPECIAL)
        if name.lower() in (b"connection", b"proxy-connection"):
            value = rng.choice(CONN_VALUES)
        elif name.lower() == b"content-length":
            value = rng.choice([b"0", b"5", b"12", b"100", b"-1", b"5, 5", b"abc", b" 3"])
        elif name.lower() == b"transfer-encoding":
            value = rng.choice([b"chunked", b"gzip, chunked", b"identity", b"chunked, gzip"])
        elif name.lower() == b"expect":
            value = rng.choice([b"100-continue", b"nothing"])
        else:
            value = rnd_bytes(rng, b"abc.:019", 1, 12)
    elif r < 0.8:
        name = rnd_bytes(rng, b"abcdefghijklmnopqrstuvwxyzABC-_", 1, 16)
        value = rnd_bytes(rng, b"abcdefgh 0123456789;=,./", 1, 30)
    else:
        name = rnd_bytes(rng, NAME_BYTES, 0, 10)
        value = rnd_bytes(rng, VALUE_BYTES, 0, 20)
    sep = rng.choice([b": ", b": ", b": ", b":", b" : ", b":  ", b":\t"])
    end = rng.choice([b"\r\n"] * 8 + [b"\n", b" \r\n", b"\t\r\n", b"\r\n "])
    return name + sep + value + end


def request(rng):
    method = rng.choice(METHODS)
    target = b"/" + rnd_bytes(rng, b"abc/?=&%09", 0, 20)
    if rng.random() < 0.15:
        target = rng.choice([b"", b"*", b"http://h/x", b"/" + rnd_bytes(rng, TARGET_BYTES, 0, 8)])
    version = rng.choice(VERSIONS)
    line = method + b" " + target + (b" " + version if version else b"")
    line += rng.choice([b"\r\n"] * 10 + [b"\n", b" \r\n", b"\r"])
    heads = [header(rng) for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9]))]
    if rng.random() < 0.1:
        heads.insert(rng.randrange(len(heads) + 1), b" folded continuation\r\n")
    body = b""
    if method in (b"POST", b"PUT") and rng.random() < 0.7:
        body = rnd_bytes(rng, b"abcdef", 0, 20)
        if rng.random() < 0.5:
            heads.append(b"Content-Length: %d\r\n" % len(body))
        else:
            heads.append(b"Transfer-Encoding: chunked\r\n")
            body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    end = rng.choice([b"\r\n"] * 12 + [b"\n", b"", b"\r"])
    return line + b"".join(heads) + end + body


def plain_request(rng):
    """The fast path's shape, with at most one small deviation."""
    line = rng.choice([b"GET", b"GET", b"HEAD"]) + b" /" + rnd_bytes(rng, b"abc/?=&%09-._~", 0, 20)
    line += b" " + rng.choice([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]) + b"\r\n"
    heads = [rnd_bytes(rng, b"abcdefghijklmnopqrstuvwxyzABC-_", 1, 16) + b": " +
             rnd_bytes(rng, b"abcdefgh 0123456789;=,./", 1, 30).strip() + b"x\r\n"
             for _ in range(rng.choice([0, 1, 2, 3, 5, 7, 8, 9]))]
    if rng.random() < 0.6:
        heads.insert(rng.randrange(len(heads) + 1),
                     rng.choice([b"Connection", b"connection"]) + b": " +
                     rng.choice(CONN_VALUES[:4]) + b"\r\n")
    # HTTP/1.1 needs exactly one valid Host: mostly one, sometimes none,
    # two, or a value http1_host_ok() refuses (then llhttp's path answers).
    r = rng.random()
    nhost = 1 if r < 0.85 else (0 if r < 0.92 else 2)
    for _ in range(nhost):
        heads.insert(rng.randrange(len(heads) + 1),
                     rng.choice([b"Host", b"host", b"HOST"]) + b": " +
                     rng.choice(HOST_VALUES) + b"\r\n")
    if rng.random() < 0.3:
        heads.insert(rng.randrange(len(heads) + 1), header(rng))
    return line + b"".join(heads) + b"\r\n"


def record(rng):
    make = plain_request if rng.random() < 0.6 else request
    data = b"".join(make(rng) for _ in range(rng.choice([1, 1, 2, 3])))
    if rng.random() < 0.15:
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    chunk = rng.choice([0, 0, 0, 1, 2, 7, 13, 64])
    return struct.pack("<IB", len(data), chunk) + data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fast")
    ap.add_argument("slow")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--count", type=int, default=40000)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    recs = [record(rng) for _ in range(args.count)]
    blob = b"".join(recs)
    outs = []
    for exe in (args.fast, args.slow):
        r = subprocess.run([exe], input=blob, stdout=subprocess.PIPE, timeout=300)
        if r.returncode != 0:
            print("%s exited %d" % (exe, r.returncode))
            return 1
        outs.append(r.stdout.split(b"\n"))
    fast, slow = outs
    if len(fast) != len(slow):
        print("line counts differ: %d vs %d" % (len(fast), len(slow)))
        return 1
    diffs = [i for i in range(len(fast)) if fast[i] != slow[i]]
    taken = sum(1 for line in fast if line.startswith(b"[R"))
    print("%d inputs (seed %d), %d parsed to at least one request; %d differ" % (
        args.count, args.seed, taken, len(diffs)))
    for i in diffs[:5]:
        print("input %r" % recs[i][5:])
        print("  fast: %r" % fast[i])
        print("  slow: %r" % slow[i])
    # The fast path must actually be exercised, or the test proves nothing.
    plain = sum(1 for line in fast if b"[R u" in line and b"m=GET|" in line)
    if plain < args.count // 20:
        print("only %d inputs gave a GET: the generator no longer reaches the fast path" % plain)
        return 1
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
