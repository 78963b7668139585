#!/usr/bin/env python3
"""test_coro_server.py — what only coro-server has, over real sockets (the
shared suite tests/server/test_server.py covers everything both servers do):

  --worker-connections N   at the cap the worker stops accepting; the next
                           client is served as soon as a connection ends
  --stack-size KIB         range checked; 32 KiB stacks serve 300
                           concurrent sleeping requests
  graceful timeout         a request still running when --graceful-timeout
                           runs out is unwound (answered), the exit is 0
  HTTP/2 streams           each stream is a coroutine of its own:
                           --worker-connections counts connections, not
                           streams; --h2-max-streams caps the streams that
                           run at once; a client reset cancels a parked
                           blocking-style stream (the worker does not wait
                           for it at shutdown); 32 KiB stacks carry the
                           session (prior knowledge and upgrade)

The HTTP/2 checks need h2load and curl (Debian: nghttp2-client, curl) and
are skipped without them; the shared tests/h2/test_h2_server.py covers what
both servers do over HTTP/2.

    python3 test_coro_server.py --server PATH

Prints TAP; exits non-zero when a check fails. Standard library only.
"""

import argparse
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

REQ = b"GET /?ms=%d HTTP/1.1\r\nHost: t\r\n\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, binary, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--workers", "1", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            if b"listening on" in line:
                # keep draining stderr so the server never blocks on it
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return
        self.stop()
        raise RuntimeError("server did not start")

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def read_answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def check_cap(binary):
    srv = Server(binary, "--app", "sleep", "--worker-connections", "2", "--quiet")
    try:
        a, b = srv.connect(), srv.connect()
        for s in (a, b):
            s.sendall(REQ % 0)
            if read_answer(s)[0] != 200:
                return "the first two connections were not served"
        c = srv.connect()  # the kernel completes it; the worker must not take it
        c.sendall(REQ % 0)
        c.settimeout(0.5)
        try:
            got = c.recv(100)
            return f"a third connection was served beyond the cap of 2: {got[:30]!r}"
        except socket.timeout:
            pass
        a.close()  # one ends: the worker accepts again
        c.settimeout(5)
        t0 = time.monotonic()
        status, _ = read_answer(c)
        if status != 200:
            return f"the waiting client got {status} after a slot freed"
        if time.monotonic() - t0 > 2:
            return "accepting did not resume promptly after a connection ended"
        b.close()
        c.close()
        return None
    finally:
        srv.stop()


def check_stack_range(binary):
    for bad in ("16", "0", "65537"):
        rc = subprocess.run([binary, "--stack-size", bad], capture_output=True,
                            timeout=10).returncode
        if rc != 2:
            return f"--stack-size {bad}: exit {rc}, want 2"
    return None


def check_small_stacks(binary):
    srv = Server(binary, "--app", "sleep", "--stack-size", "32", "--quiet")
    try:
        n = 300
        socks = [srv.connect(10) for _ in range(n)]
        t0 = time.monotonic()
        for s in socks:
            s.sendall(REQ % 200)
        bad = 0
        for s in socks:
            status, body = read_answer(s)
            if status != 200 or body != b"slept 200 ms\n":
                bad += 1
            s.close()
        dt = time.monotonic() - t0
        if bad:
            return f"{bad} of {n} answers wrong"
        if dt > 3:
            return f"{n} concurrent 200 ms sleeps took {dt:.2f} s (not concurrent?)"
        return None
    finally:
        rc = srv.stop()
        if rc != 0:
            return f"exit status {rc}"


def check_graceful_timeout(binary):
    srv = Server(binary, "--app", "sleep", "--graceful-timeout", "1")
    s = srv.connect(10)
    s.sendall(REQ % 8000)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    status, _ = read_answer(s)
    # Wait for the exit the first SIGTERM started: a second one (stop())
    # could land after the master gave its signals back and kill it (-15).
    try:
        rc = srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = srv.stop(timeout=5)
    dt = time.monotonic() - t0
    if status != 200:
        return f"the request cut by the graceful timeout got {status}, want its answer"
    if rc != 0:
        return f"exit status {rc}, want 0 (the worker should unwind before the master kills it)"
    if dt > 2.5:
        return f"shutdown took {dt:.2f} s with --graceful-timeout 1"
    return None


# ---- HTTP/2


def h2load(port, path, n, c, m, timeout=30):
    """(succeeded, 2xx, seconds, text) of an h2load run."""
    t0 = time.monotonic()
    r = subprocess.run(["h2load", "-n", str(n), "-c", str(c), "-m", str(m),
                        f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, text=True, timeout=timeout)
    dt = time.monotonic() - t0
    ok = re.search(r"(\d+) succeeded", r.stdout)
    st = re.search(r"status codes: (\d+) 2xx", r.stdout)
    if not ok or not st:
        raise RuntimeError(f"h2load exit {r.returncode}: {r.stdout} {r.stderr}")
    return int(ok.group(1)), int(st.group(1)), dt, r.stdout


def have_h2_tools():
    return shutil.which("h2load") and shutil.which("curl")


def check_h2_conn_cap(binary):
    # One connection allowed, 50 streams of 300 ms on it: streams are
    # coroutines, not connections, so they all sleep at once.
    srv = Server(binary, "--app", "sleep", "--worker-connections", "1", "--quiet")
    try:
        ok, n2xx, dt, text = h2load(srv.port, "/?ms=300", 50, 1, 50)
        if ok != 50 or n2xx != 50:
            return text
        if dt > 2.5:
            return f"50 streams of 300 ms on one connection took {dt:.2f} s: not concurrent"
        return None
    finally:
        srv.stop()


def check_h2_max_streams(binary):
    # SETTINGS_MAX_CONCURRENT_STREAMS 5 is enforced: of 7 streams opened at
    # once, 5 run (and are answered), the 2 beyond the cap are refused.
    srv = Server(binary, "--app", "sleep", "--h2-max-streams", "5", "--quiet")
    try:
        s = srv.connect()
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
        fr = read_frames(s, lambda f: f[0] == 4 and not f[1] & 1, 5)  # the server's SETTINGS
        # No SETTINGS ACK: until it comes, nghttp2 refuses the streams over
        # the cap (RST_STREAM REFUSED_STREAM); after it, they would be a
        # connection error (GOAWAY PROTOCOL_ERROR).
        ids = list(range(1, 15, 2))
        s.sendall(b"".join(frame(1, 0x5, i, hpack_get("/?ms=300")) for i in ids))
        done = set()
        fr = read_frames(s, lambda f: (f[0] in (0, 3) and (f[0] == 3 or f[1] & 1)
                                       and not done.add(f[2]) and len(done) == 7), 5)
        answered = {f[2] for f in fr if f[0] == 0 and f[1] & 1}
        reset = {f[2] for f in fr if f[0] == 3}
        s.close()
        if len(answered) != 5 or len(reset) != 2 or answered & reset:
            return f"answered {sorted(answered)}, reset {sorted(reset)}: want 5 and 2"
        return None
    finally:
        srv.stop()


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_get(path):
    # :method GET, :scheme http (indexed), :path and :authority literal
    p, a = path.encode(), b"t"
    return b"\x82\x86" + bytes([4, len(p)]) + p + bytes([1, len(a)]) + a


def read_frames(s, until, timeout):
    """Frames (type, flags, stream, payload) until until(frame) or EOF."""
    buf, out = b"", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            ln = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + ln:
                break
            f = (buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + ln])
            buf = buf[9 + ln:]
            out.append(f)
            if until(f):
                return out
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return out


def check_h2_reset_blocking(binary):
    # sleep is blocking style: the stream's coroutine is parked in
    # app_sleep_ms. A client reset must cancel it: stream 3 is served at
    # once, stream 1 never answers, and SIGTERM does not wait 8 s for it.
    srv = Server(binary, "--app", "sleep", "--quiet")
    try:
        s = srv.connect()
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) +
                  frame(1, 0x5, 1, hpack_get("/?ms=8000")))
        time.sleep(0.2)
        s.sendall(frame(3, 0, 1, struct.pack(">I", 8)) + frame(1, 0x5, 3, hpack_get("/?ms=0")))
        fr = read_frames(s, lambda f: f[0] == 0 and f[2] == 3 and f[1] & 1, 5)
        if not any(f[0] == 0 and f[2] == 3 and f[3] == b"slept 0 ms\n" for f in fr):
            return f"stream 3 not answered: {[f[:3] for f in fr]}"
        if any(f[2] == 1 and f[0] in (0, 1) for f in fr):
            return "stream 1 answered after its reset"
        t0 = time.monotonic()
        rc = srv.stop(timeout=15)
        dt = time.monotonic() - t0
        s.close()
        if rc != 0:
            return f"exit status {rc}"
        if dt > 3:
            return f"shutdown took {dt:.2f} s: the reset stream's sleep was not cancelled"
        return None
    finally:
        srv.stop()


def check_h2_small_stacks(binary):
    srv = Server(binary, "--app", "echo", "--stack-size", "32", "--quiet")
    try:
        ok, n2xx, dt, text = h2load(srv.port, "/", 300, 3, 100)
        if ok != 300 or n2xx != 300:
            return text
        body = b"z" * 100000
        for mode in ("--http2-prior-knowledge", "--http2"):
            r = subprocess.run(["curl", "-sS", mode, "--data-binary", "@-",
                                "-w", "\n%{http_version}", f"http://127.0.0.1:{srv.port}/"],
                               input=body, capture_output=True, timeout=20)
            if r.stdout != body + b"\n2":
                return f"curl {mode}: {r.stdout[-40:]!r} {r.stderr!r}"
        return None
    finally:
        rc = srv.stop()
        if rc != 0:
            return f"exit status {rc}"


def check_shared_answer_buffer(binary):
    """Cleartext answers gather in one buffer of the worker while its
    connection runs (coro_server.c, conn_share): a connection parked with
    an answer in it keeps it, one parked with it empty gives it up, and
    every connection gets its own answers, in order, and nothing else."""
    srv = Server(binary, "--app", "sleep", "--quiet")

    def get(ms):
        return b"GET /?ms=%d HTTP/1.1\r\nHost: t\r\n\r\n" % ms

    def expect(s, *mss):
        data = b""
        for ms in mss:
            while True:  # one whole answer in data (read_answer reads past it)
                head, sep, rest = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if sep and m and len(rest) >= int(m.group(1)):
                    break
                chunk = s.recv(4096)
                if not chunk:
                    return "closed before 'slept %d ms'" % ms
                data += chunk
            n = int(m.group(1))
            body, data = rest[:n], rest[n:]
            if not head.startswith(b"HTTP/1.1 200 ") or body != b"slept %d ms\n" % ms:
                return "wanted 'slept %d ms', got %r" % (ms, head[:12] + b" " + body)
        s.settimeout(0.2)
        try:
            data += s.recv(4096)
        except socket.timeout:
            pass
        s.settimeout(5)
        return "bytes after the answers: %r" % data if data else None

    try:
        # a's first answer waits in the buffer while its second sleeps;
        # b and c answer meanwhile from their own
        a, b, c = srv.connect(), srv.connect(), srv.connect()
        a.sendall(get(0) + get(300))
        time.sleep(0.05)
        c.sendall(get(100))
        b.sendall(get(0))
        for s, mss in ((b, (0,)), (c, (100,)), (a, (0, 300))):
            err = expect(s, *mss)
            if err:
                return err
        # d parks with the buffer empty and loses it to e, whose first
        # answer waits in it while d answers
        d, e = srv.connect(), srv.connect()
        d.sendall(get(200) + get(0))
        time.sleep(0.05)
        e.sendall(get(0) + get(300))
        for s, mss in ((d, (200, 0)), (e, (0, 300))):
            err = expect(s, *mss)
            if err:
                return err
        for s in (a, b, c, d, e):
            s.close()
        return None
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    a = ap.parse_args()
    checks = [
        ("--worker-connections 2: the third waits, then is served", check_cap),
        ("--stack-size out of range is refused", check_stack_range),
        ("--stack-size 32: 300 concurrent sleeping requests", check_small_stacks),
        ("graceful timeout unwinds what still runs, exit 0", check_graceful_timeout),
        ("the worker's answer buffer: own answers in order, nothing else",
         check_shared_answer_buffer),
        ("h2: --worker-connections 1 still runs 50 streams of one connection at once",
         check_h2_conn_cap),
        ("h2: --h2-max-streams 5 caps the streams running at once", check_h2_max_streams),
        ("h2: a client reset cancels a stream parked in a blocking-style sleep",
         check_h2_reset_blocking),
        ("h2: --stack-size 32 carries the session: 300 streams, a 100 KB echo (both ways in)",
         check_h2_small_stacks),
    ]
    failed = 0
    for i, (name, fn) in enumerate(checks, 1):
        if name.startswith("h2:") and not have_h2_tools():
            print(f"ok {i} - {name} # SKIP h2load or curl not installed")
            continue
        try:
            err = fn(a.server)
        except Exception as e:  # noqa: BLE001
            err = repr(e)
        if err:
            failed += 1
            print(f"not ok {i} - {name}\n#   {err}")
        else:
            print(f"ok {i} - {name}")
        sys.stdout.flush()
    print(f"1..{len(checks)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
