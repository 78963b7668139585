#!/usr/bin/env python3
"""A small threaded HTTP/1.x server for loadgen's tests (standard library only).

It answers every request with a fixed body, keeps connections alive the way
HTTP/1.0 (Connection: Keep-Alive) and HTTP/1.1 clients expect, and can vary
the body length, answer with another status, or drop every Nth request with
a TCP reset, so ab and loadgen can be compared on failures too; a few modes
make a client's send fail on a kept-alive connection (close_unread,
reset_unread, answer_reset), one leaves a request unanswered (no_answer,
for -s), one answers with a head over 8 KiB (big_head). Run it alone
(`httpd.py --port 0`, prints the port) or import Server.
"""
import argparse
import os
import signal
import socket
import socketserver
import struct
import threading
import time


class Behaviour:
    """What the server answers (shared by the TCP and the Unix-socket server)."""
    daemon_threads = True

    def behave(self, body=b"Hello, world!\n", status=200, vary=0, drop_every=0,
               close_every=0, chunked=False, hangup_every=0, close_unread=0, reset_unread=0,
               answer_reset=0, no_answer=0, big_head=0):
        self.body = body
        self.status = status
        self.vary = vary              # body length grows by (n % vary) bytes
        self.drop_every = drop_every  # every Nth request: reset, no answer
        self.close_every = close_every
        # every Nth response says keep-alive, then the server hangs up anyway
        self.hangup_every = hangup_every
        # the Nth request (once) is answered as soon as its head is in, with
        # Connection: close; after a pause long enough for the client to
        # read the answer the socket is closed with the request's body (and
        # whatever came after it) unread, which on Linux is a reset with no
        # end of stream before it. A client still sending (a body bigger
        # than the socket buffers) sees its send fail after it has the
        # whole answer: the answer counts, its request must not go again.
        self.close_unread = close_unread
        # the Nth request head (once, in the order the heads come) gets no
        # answer: as soon as it is in
        # the connection is reset (SO_LINGER 0) with its body unread. A
        # client still sending it (a body bigger than the socket buffers)
        # sees its send fail part way, on a kept-alive connection when N > 1
        # and the requests before were answered on it.
        self.reset_unread = reset_unread
        # the Nth request is answered (keep-alive as usual) while the client
        # (process client_pid, which the test sets) is stopped, then the
        # connection is reset and the client let go on: it finds the answer
        # and the reset together, so its next send on that kept-alive
        # connection fails at once (ECONNRESET, or EPIPE once a receive has
        # taken the error), whatever the timing
        self.answer_reset = answer_reset
        self.client_pid = None
        # the Nth request head (once, in the order the heads come) gets no
        # answer, ever: its connection stays open, what comes after on it
        # read and dropped unparsed, until the client closes it (a server
        # stuck on one request while it answers the others: the client's
        # -s timeout)
        self.no_answer = no_answer
        # the Nth answer (once) carries a header of 9000 bytes: a head over
        # ab's 8 KiB, which the client drops with its connection
        self.big_head = big_head
        self.chunked = chunked
        self.count = 0
        self.heads = 0   # request heads read: every request the server saw
        self.active = 0  # connections being served
        self.conns = 0   # connections accepted
        self.lock = threading.Lock()

    def next_n(self):
        with self.lock:
            self.count += 1
            return self.count

    def take_close_unread(self):
        """Whether the request whose head just came is the close_unread one
        (counted here, so that it is the Nth however the threads run)."""
        with self.lock:
            if self.count + 1 != self.close_unread:
                return False
            self.count += 1
            return True

    def head_seen(self):
        """The number of the request whose head just came, in the order the
        heads came (reset_unread's N, whatever the connections)."""
        with self.lock:
            self.heads += 1
            return self.heads

    def serving(self, d):
        with self.lock:
            self.active += d
            if d > 0:
                self.conns += 1

    def wait_idle(self, timeout=10.0):
        """Waits (up to timeout s) until no connection is being served: once
        the client has exited, every request it sent has been seen. Whether
        it got there."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.active == 0:
                    return True
            time.sleep(0.02)
        return False

    def start(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


def _stopped(pid):
    """Whether every thread of process pid is stopped (SIGSTOP took)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
        for t in tasks:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
        return True
    except OSError:
        return False


def _tcp_open(lport, rport):
    """Whether a TCP connection from local port lport to rport is still
    there (/proc/net/tcp; a reset one is unhashed at once)."""
    want = ":%04X" % lport, ":%04X" % rport
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            col = ln.split()
            if col[1].endswith(want[0]) and col[2].endswith(want[1]):
                return True
    return False


def _until(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def answer_then_reset(srv, sock, answer):
    """answer_reset's: the answer and a reset reach the stopped client."""
    if not _until(lambda: srv.client_pid is not None):
        return
    pid = srv.client_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        _until(lambda: _stopped(pid))
        cport, sport = sock.getpeername()[1], sock.getsockname()[1]
        sock.sendall(answer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        # the reset has reached the client's socket when it is gone
        if sock.family == socket.AF_INET:
            _until(lambda: not _tcp_open(cport, sport))
    finally:
        os.kill(pid, signal.SIGCONT)


class Server(Behaviour, socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def __init__(self, **kw):
        super().__init__(("127.0.0.1", 0), Handler)
        self.behave(**kw)

    @property
    def port(self):
        return self.server_address[1]


class UnixServer(Behaviour, socketserver.ThreadingUnixStreamServer):
    """The same answers on a Unix-domain socket at path (with the standard
    library's small listen queue, 5, so that a burst of connects finds it
    full)."""

    def __init__(self, path, **kw):
        super().__init__(path, Handler)
        self.behave(**kw)
        self.path = path

    def stop(self):
        super().stop()
        try:
            os.unlink(self.path)
        except OSError:
            pass


REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.serving(1)
        try:
            self.serve()
        finally:
            self.server.serving(-1)

    def serve(self):
        srv = self.server
        sock = self.request
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            method = lines[0].split(b" ")[0]
            version = lines[0].rsplit(b" ", 1)[-1]
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                headers[k.strip().lower()] = v.strip()
            clen = int(headers.get(b"content-length", b"0") or 0)
            nth = srv.head_seen()
            if nth == srv.no_answer:
                while True:
                    try:
                        if not sock.recv(65536):
                            return
                    except OSError:
                        return
            if nth == srv.reset_unread:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                return
            if srv.close_unread and srv.take_close_unread():
                body = srv.body
                try:
                    sock.sendall(b"HTTP/1.1 200 OK\r\nServer: corotest/1.0\r\n"
                                 b"Content-Type: text/plain\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n%s" % (len(body), body))
                    time.sleep(0.3)
                except OSError:
                    pass
                sock.close()
                return
            # (in pieces joined once: a body of many MiB would cost a copy
            # of all read so far per recv())
            parts, have = [buf], len(buf)
            while have < clen:
                try:
                    data = sock.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                parts.append(data)
                have += len(data)
            buf = b"".join(parts)[clen:]
            n = srv.next_n()
            if srv.drop_every and n % srv.drop_every == 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                return
            conn = headers.get(b"connection", b"").lower()
            if version == b"HTTP/1.1":
                keep = conn != b"close"
            else:
                keep = conn == b"keep-alive"
            if srv.close_every and n % srv.close_every == 0:
                keep = False
            body = srv.body
            if srv.vary:
                body = body + b"x" * (n % srv.vary)
            status = srv.status
            out = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, "Other").encode()),
                   b"Server: corotest/1.0", b"Content-Type: text/plain"]
            if srv.chunked and version == b"HTTP/1.1":
                out.append(b"Transfer-Encoding: chunked")
                payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
            else:
                out.append(b"Content-Length: %d" % len(body))
                payload = body
            if method == b"HEAD":
                payload = b""
            if srv.big_head and n == srv.big_head:
                out.append(b"X-Big: " + b"b" * 9000)
            if keep and version != b"HTTP/1.1":
                out.append(b"Connection: keep-alive")
            elif not keep:
                out.append(b"Connection: close")
            if srv.answer_reset and n == srv.answer_reset:
                answer_then_reset(srv, sock, b"\r\n".join(out) + b"\r\n\r\n" + payload)
                return
            try:
                sock.sendall(b"\r\n".join(out) + b"\r\n\r\n" + payload)
            except OSError:
                return
            if srv.hangup_every and n % srv.hangup_every == 0:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if not keep:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--body-size", type=int, default=14)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--vary", type=int, default=0)
    ap.add_argument("--drop-every", type=int, default=0)
    args = ap.parse_args()
    srv = Server(body=b"x" * args.body_size, status=args.status, vary=args.vary,
                 drop_every=args.drop_every)
    print(srv.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
