"""h2wire: a raw HTTP/2 client for the integration tests, driven frame by
frame: RFC 9113's codes, frame and HPACK builders (never Huffman, no
indexing), a :status reader, and H2, one connection that answers SETTINGS
by itself. Shared by tests/h2 (normal use) and tests/hostile (abuse).
Standard library only."""

import socket
import struct
import time


# Frame types, flags, settings and error codes of RFC 9113.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE, \
    S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = range(1, 7)
ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
          "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
          "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
          "HTTP_1_1_REQUIRED"]
(NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED,
 FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR,
 ENHANCE_YOUR_CALM) = range(12)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def ename(code):
    return ERRORS[code] if code < len(ERRORS) else f"0x{code:x}"


# ---------------------------------------------------------------- frames, HPACK


def frame(ftype, flags, stream, payload=b"", length=None):
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def rst(stream, code=CANCEL):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def hp_int(value, prefix, flags=0):
    top = (1 << prefix) - 1
    if value < top:
        return bytes([flags | value])
    out = [flags | top]
    value -= top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hp_str(s):
    if isinstance(s, str):
        s = s.encode()
    return hp_int(len(s), 7) + s  # never Huffman


def hp_lit(name, value):
    """Literal field without indexing, new name."""
    return b"\x00" + hp_str(name) + hp_str(value)


def hp_lit_idx(index, value):
    """Literal field without indexing, name from the static table."""
    return hp_int(index, 4) + hp_str(value)


def req_block(method="GET", path="/", extra=()):
    m = {"GET": b"\x82", "POST": b"\x83"}.get(method) or hp_lit_idx(2, method)
    return m + b"\x86" + hp_lit_idx(4, path) + hp_lit_idx(1, "127.0.0.1") + \
        b"".join(hp_lit(k, v) for k, v in extra)


# The digits of RFC 7541's Huffman code: all a :status needs. The client asks
# for a dynamic table of 0, so a response block is static indexes and
# literals only.
HUFF_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4",
               "011011": "5", "011100": "6", "011101": "7", "011110": "8", "011111": "9"}
STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}


def _dec_int(b, i, prefix):
    top = (1 << prefix) - 1
    v = b[i] & top
    i += 1
    if v < top:
        return v, i
    m = 0
    while True:
        v += (b[i] & 0x7F) << m
        m += 7
        i += 1
        if not b[i - 1] & 0x80:
            return v, i


def _dec_str(b, i):
    huff = b[i] & 0x80
    n, i = _dec_int(b, i, 7)
    raw = b[i:i + n]
    if not huff:
        return raw, i + n
    bits, out, cur = "".join(f"{x:08b}" for x in raw), "", ""
    for c in bits:
        cur += c
        if cur in HUFF_DIGITS:
            out += HUFF_DIGITS[cur]
            cur = ""
    return out.encode(), i + n


def _raw_str(b, i):
    """A string literal as it stands (Huffman flag and length included)."""
    n, j = _dec_int(b, i, 7)
    return b[i:j + n], j + n


def block_fields(block):
    """The representations of a header block (no dynamic table), in order:
    ("idx", index, None, None) for an indexed field, ("size", size, None,
    None) for a table size update, and (pattern, index, name, value) for a
    literal, pattern its first byte's high bits, name (None when indexed) and
    value the raw string literals (decode them with _dec_str(raw, 0))."""
    i = 0
    while i < len(block):
        b = block[i]
        if b & 0x80:
            idx, i = _dec_int(block, i, 7)
            yield "idx", idx, None, None
            continue
        if b & 0xE0 == 0x20:
            size, i = _dec_int(block, i, 5)
            yield "size", size, None, None
            continue
        idx, i = _dec_int(block, i, 6 if b & 0x40 else 4)
        name = None
        if idx == 0:
            name, i = _raw_str(block, i)
        value, i = _raw_str(block, i)
        yield b & 0xF0, idx, name, value


def status_of(block):
    """The :status of a response header block (no dynamic table), or None."""
    for kind, idx, name, value in block_fields(block):
        if kind == "size":
            continue
        if kind == "idx":
            if idx in STATIC_STATUS:
                return STATIC_STATUS[idx]
            continue
        if 8 <= idx <= 14 or (name is not None and _dec_str(name, 0)[0] == b":status"):
            try:
                return int(_dec_str(value, 0)[0])
            except ValueError:
                return None
    return None


class H2:
    """One HTTP/2 connection driven frame by frame. Answers the server's
    SETTINGS with an ACK (unless told not to); asks for a dynamic HPACK
    table of 0 so that status_of() can read every answer."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        """rcvbuf: SO_RCVBUF set before connect (it sets the TCP window), for
        a client that reads slowly through a small buffer."""
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.auto_ack = True
        self.frames = []  # everything read

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """Send; False when the server has closed (reset or broken pipe)."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def handshake(self, *pairs):
        self.send(PREFACE + settings((S_HEADER_TABLE_SIZE, 0), *pairs))

    def ready(self, *pairs, auto_ack=False):
        """Handshake and wait until both sides' SETTINGS are acknowledged,
        so that nothing the client sends later is interleaved with an ACK;
        then answer nothing by itself unless auto_ack."""
        self.handshake(*pairs)
        if not self.until(lambda f: f[0] == SETTINGS and f[1] & ACK, 3):
            raise AssertionError("the server never acknowledged the client's SETTINGS")
        self.auto_ack = auto_ack

    def read_frame(self, timeout=5.0):
        """(type, flags, stream, payload); None at EOF or reset; raises
        TimeoutError when no complete frame comes in time."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
             self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        self.frames.append(f)
        if f[0] == SETTINGS and not f[1] & ACK and self.auto_ack:
            self.try_send(frame(SETTINGS, ACK, 0))
        return f

    def until(self, pred, timeout=5.0):
        """Read until pred(frame), EOF or the time is up. Returns the frame
        that matched, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                f = self.read_frame(left)
            except TimeoutError:
                return None
            if f is None:
                return None
            if pred(f):
                return f

    def goaway(self, timeout=5.0):
        """(error code, seconds) of the server's GOAWAY with an error, or
        (None, seconds) at EOF / timeout without one. A GOAWAY(NO_ERROR)
        (idle or shutdown) is noted but waited past."""
        t0 = time.monotonic()
        f = self.until(lambda f: f[0] == GOAWAY and int.from_bytes(f[3][4:8], "big") != 0,
                       timeout)
        if f is None:
            return None, time.monotonic() - t0
        return int.from_bytes(f[3][4:8], "big"), time.monotonic() - t0

    def closed_within(self, timeout):
        """Reads (and drops) frames until EOF; True when EOF came in time."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.read_frame(left) is None:
                    return True
            except TimeoutError:
                return False
        return True

    def answer(self, stream, timeout=5.0):
        """(status, body, RST_STREAM code or None, GOAWAY code or None) of a
        stream: its frames already read, then more until it ends, is reset,
        or the connection goes ("EOF")."""
        st = {"status": None, "body": b""}

        def take(f):
            t, fl, s, p = f
            if t == GOAWAY and int.from_bytes(p[4:8], "big") != 0:
                return st["status"], st["body"], None, int.from_bytes(p[4:8], "big")
            if s != stream:
                return None
            if t == HEADERS:
                st["status"] = status_of(p[1 + p[0]:] if fl & PADDED else p)
            elif t == DATA:
                st["body"] += p[1:len(p) - p[0]] if fl & PADDED else p
            elif t == RST_STREAM:
                return st["status"], st["body"], int.from_bytes(p[:4], "big"), None
            if t in (HEADERS, DATA) and fl & END_STREAM:
                return st["status"], st["body"], None, None
            return None

        for f in self.frames:
            r = take(f)
            if r is not None:
                return r
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"stream {stream}: no end in time (status {st['status']}, "
                                   f"{len(st['body'])} body bytes)")
            try:
                f = self.read_frame(left)
            except TimeoutError:
                continue
            if f is None:
                return st["status"], st["body"], None, "EOF"
            if f[0] == DATA and f[3]:
                n = len(f[3])
                self.try_send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", n)) +
                              frame(WINDOW_UPDATE, 0, f[2], struct.pack(">I", n)))
            r = take(f)
            if r is not None:
                return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def h2_request(port, method="GET", path="/", body=b"", timeout=5.0):
    """One request on a fresh HTTP/2 connection: (status, body)."""
    with H2(port, timeout) as c:
        c.handshake()
        if body:
            c.send(frame(HEADERS, END_HEADERS, 1, req_block(method, path)) +
                   frame(DATA, END_STREAM, 1, body))
        else:
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, req_block(method, path)))
        status, got, code, gone = c.answer(1, timeout)
        if code is not None or gone is not None:
            raise AssertionError(f"normal h2 request: RST_STREAM {code} / GOAWAY {gone}")
        return status, got
