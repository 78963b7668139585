"""srvtest.py — what the server tests share: TAP output, starting a pre-fork
server and waiting for its "listening on" line, finding its workers, and a
small raw-socket HTTP/1.1 client (the tests need control over every byte, so
http.client is used only where plain requests suffice).

Standard library only. Every process started here is stopped by its PID.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

# ---------------------------------------------------------------- TAP output


class Tap:
    """TAP 13 lines on stdout; the plan comes last (meson reads that)."""

    def __init__(self):
        self.n = 0
        self.failed = []

    def ok(self, cond, name, detail=""):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"not ok {self.n} - {name}", flush=True)
            for line in str(detail).splitlines() or [""]:
                print(f"#   {line}", flush=True)
        return cond

    def skip(self, name, why):
        self.n += 1
        print(f"ok {self.n} - {name} # SKIP {why}", flush=True)

    def note(self, msg):
        for line in str(msg).splitlines():
            print(f"# {line}", flush=True)

    def check(self, name, fn, *args, **kw):
        """Run fn; it returns None/True (pass) or a failure string, or raises."""
        try:
            res = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - any error is a failed check
            detail = f"{type(e).__name__}: {e}\n" + traceback.format_exc(limit=3)
            return self.ok(False, name, detail)
        if res is None or res is True:
            return self.ok(True, name)
        return self.ok(False, name, res)

    def finish(self):
        print(f"1..{self.n}", flush=True)
        if self.failed:
            print(f"# {len(self.failed)} of {self.n} checks failed:", flush=True)
            for name in self.failed:
                print(f"#   {name}", flush=True)
            return 1
        print(f"# all {self.n} checks passed", flush=True)
        return 0


# ---------------------------------------------------------------- processes


def raise_nofile(want=8192):
    """Raise the soft fd limit (children inherit it, servers included)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid):
    """PIDs whose parent is pid (by /proc/*/stat: /proc/PID/task/*/children
    needs CONFIG_PROC_CHILDREN, which not every kernel has)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and rest[0] != "Z" and int(rest[1]) == pid:
            out.append(int(d))
    return sorted(out)


def fd_count(pid):
    """Descriptors pid holds (-1 when it is gone): a worker's count falls
    back once the clients it dropped are gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("latin-1")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def cpus_allowed_list(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return None


def wait_until(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


LISTEN_RE = re.compile(r"listening on (\S+)")


class Server:
    """A pre-fork server (or the upstream stub) started on 127.0.0.1:PORT.

    stderr (and stdout) are read by a thread into .lines so a chatty server
    can never block on a full pipe."""

    def __init__(self, argv, port=None, ready="line", ready_timeout=10.0, env=None):
        self.argv = list(argv)
        self.port = port
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready_at = None
        self.ready_ok = False
        if ready == "line":
            self.ready_ok = self._wait_line(ready_timeout)
        elif ready == "connect":
            self.ready_ok = self._wait_connect(ready_timeout)

    def _read(self):
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        with self._lock:
            return list(self.lines)

    def text(self):
        return "\n".join(self.output())

    def _wait_line(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output():
                if LISTEN_RE.search(line):
                    self.ready_at = time.monotonic()
                    return True
            if self.proc.poll() is not None:
                time.sleep(0.05)  # let the reader catch the last lines
                return False
            time.sleep(0.005)
        return False

    def _wait_connect(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.ready_at = time.monotonic()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def workers(self):
        return children_of(self.pid)

    def wait_workers(self, n, timeout=5.0):
        return wait_until(lambda: len(self.workers()) == n and self.workers(), timeout)

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, then SIGKILL the master and any worker left."""
        kids = self.workers() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        for k in kids:
            if pid_alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._reader.join(timeout=2)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_server(binary, args, tries=3, **kw):
    """Start binary --listen 127.0.0.1:PORT ARGS on a free port; retries on
    a port another process took in between. Returns a ready Server (check
    .ready_ok)."""
    srv = None
    for _ in range(tries):
        port = free_port()
        srv = Server([binary, "--listen", f"127.0.0.1:{port}", *args], port=port, **kw)
        if srv.ready_ok:
            return srv
        srv.stop()
        if "in use" not in srv.text():
            return srv
    return srv


def start_worker(binary, args, **kw):
    """start_server() for tests that watch the worker (--workers 1 in args):
    a ready Server with .kids and .wpid (the worker), or AssertionError
    with the server's output (it is stopped then)."""
    srv = start_server(binary, args, **kw)
    if not srv.ready_ok:
        out = srv.text()
        srv.stop()
        raise AssertionError(f"server did not start ({' '.join(args)}):\n{out}")
    kids = srv.wait_workers(1)
    if not kids:
        srv.stop()
        raise AssertionError("no worker process")
    srv.kids = kids
    srv.wpid = kids[0]
    return srv


# ---------------------------------------------------------------- raw HTTP


class Response:
    def __init__(self, status, reason, version, headers, body):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} body={self.body[:80]!r}>"


class Conn:
    """One client connection with a read buffer; parses responses itself."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout

    @classmethod
    def over(cls, sock, timeout=10.0):
        """A Conn on a socket opened elsewhere (AF_UNIX, TLS)."""
        c = cls.__new__(cls)
        c.sock, c.buf, c.timeout = sock, b"", timeout
        return c

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head=False):
        """Read one response (a 1xx interim one is returned as is)."""
        status_line = self._line().decode("latin-1")
        m = re.match(r"HTTP/(\d)\.(\d) (\d{3}) ?(.*)$", status_line)
        if not m:
            raise ValueError(f"bad status line {status_line!r}")
        version = (int(m.group(1)), int(m.group(2)))
        status = int(m.group(3))
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        resp = Response(status, m.group(4), version, headers, b"")
        if head or 100 <= status < 200 or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
            resp.body = body
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            # Body runs to EOF.
            try:
                while True:
                    self._fill()
            except (ConnectionError, OSError):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def request(self, method="GET", path="/", headers=None, body=b"", version="1.1"):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(head=(method == "HEAD"))

    def at_eof(self, timeout=2.0):
        """True when the server closes (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            self.buf += data
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method="GET", path="/", headers=None, body=b"", version="1.1"):
    if isinstance(body, str):
        body = body.encode()
    hdrs = list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if "host" not in names and version != "1.0":
        hdrs.insert(0, ("Host", "127.0.0.1"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
    return head.encode("latin-1") + b"\r\n" + body


def get(port, path="/", timeout=10.0, **kw):
    """One request on a fresh connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request(path=path, **kw)


def chunked(parts):
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------- many clients


def many_connections(port, n, request, timeout=30.0, connect_all_first=True):
    """Open n connections at once (non-blocking, one selector), then send
    request on each and read one complete response (Content-Length framed).
    Returns (answered_ok, statuses dict, errors list)."""
    import selectors

    sel = selectors.DefaultSelector()
    socks = {}
    errors = []
    deadline = time.monotonic() + timeout
    if isinstance(request, str):
        request = request.encode()

    def parse_done(buf):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = buf[:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        clen = int(m.group(1)) if m else 0
        if len(buf) >= end + 4 + clen:
            return int(head.split(" ", 2)[1])
        return None

    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, 115):  # EINPROGRESS
            errors.append(f"connect {i}: errno {rc}")
            s.close()
            continue
        socks[s] = {"i": i, "state": "connecting", "buf": b"", "out": request}
        sel.register(s, selectors.EVENT_WRITE)

    connected = 0
    statuses = {}
    done = 0
    pending = len(socks)
    # Phase 1: wait until every connection is established (so all n are
    # open at the same time), phase 2: send and read.
    phase_send = not connect_all_first
    while pending and time.monotonic() < deadline:
        events = sel.select(timeout=0.5)
        for key, mask in events:
            s = key.fileobj
            st = socks[s]
            if st["state"] == "connecting" and mask & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    errors.append(f"connect {st['i']}: errno {err}")
                    st["state"] = "dead"
                    sel.unregister(s)
                    pending -= 1
                    continue
                st["state"] = "connected"
                connected += 1
                if phase_send:
                    st["state"] = "sending"
                else:
                    sel.modify(s, selectors.EVENT_READ)  # an early close shows up here
            elif st["state"] == "sending" and mask & selectors.EVENT_WRITE:
                try:
                    sent = s.send(st["out"])
                except BlockingIOError:
                    continue
                except OSError as e:
                    errors.append(f"send {st['i']}: {e}")
                    st["state"] = "dead"
                    sel.unregister(s)
                    pending -= 1
                    continue
                st["out"] = st["out"][sent:]
                if not st["out"]:
                    st["state"] = "reading"
                    sel.modify(s, selectors.EVENT_READ)
            elif mask & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data = None
                    errors.append(f"recv {st['i']}: {e}")
                if not data:
                    if data is not None:
                        errors.append(f"conn {st['i']}: closed before an answer ({st['state']})")
                    st["state"] = "dead"
                    sel.unregister(s)
                    pending -= 1
                    continue
                st["buf"] += data
                code = parse_done(st["buf"])
                if code is not None:
                    statuses[code] = statuses.get(code, 0) + 1
                    done += 1
                    st["state"] = "done"
                    sel.unregister(s)
                    pending -= 1
        if not phase_send and connected + len(errors) >= len(socks):
            phase_send = True
            for s, st in socks.items():
                if st["state"] == "connected":
                    st["state"] = "sending"
                    sel.modify(s, selectors.EVENT_WRITE)
    if pending:
        errors.append(f"{pending} connections unanswered after {timeout:.0f} s")
    for s in socks:
        s.close()
    sel.close()
    return statuses.get(200, 0), statuses, errors


def make_cert(folder, name="c"):
    """A self-signed certificate for 127.0.0.1 and its key in folder, made
    with the openssl command (once): (cert, key)."""
    cert, key = os.path.join(folder, name + ".crt"), os.path.join(folder, name + ".key")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return cert, key


def tls_client(port, cert, alpn=("h2", "http/1.1"), timeout=5.0):
    """A TLS connection to 127.0.0.1:port trusting cert, offering alpn."""
    import ssl
    ctx = ssl.create_default_context(cafile=cert)
    ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


# What a server's log must never hold: a sanitizer report, a worker death.
BAD_LOG = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                     r"runtime error:|restarting it|killing it|core dumped|"
                     r"Segmentation fault|Aborted")


def logs_clean(servers):
    """Stop each server and scan its log for BAD_LOG: None, or what was
    found per server."""
    bad = []
    for srv in servers:
        srv.stop()
        hits = [ln for ln in srv.output() if BAD_LOG.search(ln)]
        if hits:
            bad.append(f"{' '.join(srv.argv[1:])}:\n  " + "\n  ".join(hits[:10]))
    return "\n".join(bad) if bad else None


def one_line_error(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return len(lines) == 1, lines


def main_guard(fn):
    """Run fn() -> exit code; an unexpected exception is a failure."""
    try:
        code = fn()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("Bail out! the test script itself failed", flush=True)
        code = 1
    sys.exit(code)
