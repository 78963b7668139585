#!/usr/bin/env python3
"""A small threaded HTTP/1.x server for loadgen's tests (standard library only).

It answers every request with a fixed body, keeps connections alive the way
HTTP/1.0 (Connection: Keep-Alive) and HTTP/1.1 clients expect, and can vary
the body length, answer with another status, or drop every Nth request with
a TCP reset, so ab and loadgen can be compared on failures too. Run it alone
(`httpd.py --port 0`, prints the port) or import Server.
"""
import argparse
import os
import socket
import socketserver
import struct
import threading
import time


class Behaviour:
    """What the server answers (shared by the TCP and the Unix-socket server)."""
    daemon_threads = True

    def behave(self, body=b"Hello, world!\n", status=200, vary=0, drop_every=0,
               close_every=0, chunked=False, hangup_every=0, close_unread=0):
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
        self.chunked = chunked
        self.count = 0
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

    def start(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


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
            while len(buf) < clen:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[clen:]
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
            if keep and version != b"HTTP/1.1":
                out.append(b"Connection: keep-alive")
            elif not keep:
                out.append(b"Connection: close")
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
