"""fakeup.py — a tiny upstream that misbehaves on purpose, for the faults the
C stub (servers/upstream) cannot produce: a Content-Length that lies in
either direction, a garbage status line, a reset after part of the body, and
a schedule that mixes good and bad answers on the same server so that a test
can check that the bad ones do not hurt the good ones.

Each request the fake receives takes the next behaviour from a schedule (a
list, cycled), or the fixed behaviour once the list is used up. Behaviours:

  ok           200, Content-Length, BODY, keep-alive
  slow:MS      ok after MS milliseconds
  stall        read the request, never answer (until the peer goes)
  status:N     N with a short body
  close        close without answering
  reset        head announcing 4096 bytes, 100 bytes, then RST
  cl-long      announces 4096 bytes, sends 10, closes (FIN)
  cl-short     announces 5 bytes, sends 64 (the rest is garbage on the
               connection for whatever comes next), keeps the connection
  garbage      a line that is not HTTP, then close
  no-content   204 with no body
  chunked      200, BODY in two chunks (a good answer)
  big:N        200 with N bytes (Content-Length); big-chunked:N the same chunked
  101          101 Switching Protocols nobody asked for, then silence
  cl-cl        two different Content-Lengths; cl-cl-same two equal ones;
               cl-list "Content-Length: 24, 24"
  cl-te        Content-Length beside Transfer-Encoding: chunked
  te-gzip      Transfer-Encoding: gzip, chunked
  bad-chunk    a chunk size that is not hex; chunk-xx two bytes other than
               CRLF after a chunk's data

Threads only; standard library only; stop() closes every socket it opened.
"""

import socket
import struct
import threading
import time

BODY = b"upstream-body-0123456789"


class FakeUpstream:
    def __init__(self, schedule=("ok",), then="ok"):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1024)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.schedule = list(schedule)
        self.then = then
        self.count = 0          # requests received
        self.conns = 0          # connections accepted
        self.by_kind = {}
        self.stopping = threading.Event()
        self.socks = set()
        self.th = threading.Thread(target=self._accept, daemon=True)
        self.th.start()

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def set_schedule(self, schedule, then="ok"):
        with self.lock:
            self.schedule = list(schedule)
            self.then = then

    def _next(self):
        with self.lock:
            self.count += 1
            kind = self.schedule.pop(0) if self.schedule else self.then
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            return kind

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                self.socks.add(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                _, buf = buf.split(b"\r\n\r\n", 1)  # GETs only: no body
                if not self._answer(s, self._next()):
                    return
        except OSError:
            return
        finally:
            with self.lock:
                self.socks.discard(s)
            try:
                s.close()
            except OSError:
                pass

    @staticmethod
    def _head(status, length, extra=""):
        return (f"HTTP/1.1 {status} X\r\nContent-Length: {length}\r\n{extra}\r\n").encode()

    def _answer(self, s, kind):
        """Write the answer; False when the connection must end."""
        if kind.startswith("slow:"):
            if self.stopping.wait(int(kind[5:]) / 1000.0):
                return False
            kind = "ok"
        if kind == "ok":
            s.sendall(self._head(200, len(BODY)) + BODY)
            return True
        if kind.startswith("status:"):
            s.sendall(self._head(int(kind[7:]), 5) + b"error")
            return True
        if kind == "stall":
            s.settimeout(0.2)
            while not self.stopping.is_set():
                try:
                    if not s.recv(65536):
                        return False
                except socket.timeout:
                    continue
            return False
        if kind == "close":
            return False
        if kind == "reset":
            s.sendall(self._head(200, 4096) + b"r" * 100)
            time.sleep(0.05)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if kind == "cl-long":
            s.sendall(self._head(200, 4096) + b"l" * 10)
            return False
        if kind == "cl-short":
            s.sendall(self._head(200, 5) + b"s" * 64)
            return True
        if kind == "garbage":
            s.sendall(b"SSH-2.0-OpenSSH_9.0 not http\r\n\r\n")
            return False
        chunked = b"Transfer-Encoding: chunked\r\n"
        body = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, BODY[:10], len(BODY) - 10, BODY[10:])
        if kind == "no-content":
            s.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            return True
        if kind == "chunked":
            s.sendall(b"HTTP/1.1 200 OK\r\n" + chunked + b"\r\n" + body)
            return True
        if kind.startswith("big:"):
            n = int(kind[4:])
            s.sendall(self._head(200, n) + b"b" * n)
            return True
        if kind.startswith("big-chunked:"):
            n = int(kind[12:])
            s.sendall(b"HTTP/1.1 200 OK\r\n" + chunked + b"\r\n" +
                      b"".join(b"%x\r\n%s\r\n" % (k, b"c" * k)
                               for k in [4096] * (n // 4096) + ([n % 4096] if n % 4096 else [])) +
                      b"0\r\n\r\n")
            return True
        if kind == "101":
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                      b"Upgrade: websocket\r\n\r\n")
            return self._answer(s, "stall")
        if kind in ("cl-cl", "cl-cl-same", "cl-list"):
            second = {"cl-cl": b"Content-Length: 5\r\n",
                      "cl-cl-same": b"Content-Length: %d\r\n" % len(BODY),
                      "cl-list": b""}[kind]
            first = b"%d, %d" % (len(BODY), len(BODY)) if kind == "cl-list" else b"%d" % len(BODY)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + first + b"\r\n" + second +
                      b"\r\n" + BODY)
            return True
        if kind == "cl-te":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + chunked + b"\r\n" + body)
            return False
        if kind == "te-gzip":
            s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + body)
            return False
        if kind == "bad-chunk":
            s.sendall(b"HTTP/1.1 200 OK\r\n" + chunked + b"\r\nzz\r\n" + BODY + b"\r\n0\r\n\r\n")
            return False
        if kind == "chunk-xx":
            s.sendall(b"HTTP/1.1 200 OK\r\n" + chunked + b"\r\n%x\r\n%sXX0\r\n\r\n" %
                      (len(BODY), BODY))
            return False
        raise ValueError(f"unknown behaviour {kind!r}")

    def stop(self):
        self.stopping.set()
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.th.join(timeout=2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
