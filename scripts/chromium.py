"""scripts/chromium.py — drive headless Chromium through chromedriver's
WebDriver HTTP API (JSON over HTTP on 127.0.0.1), for the HTML report's
screenshot (scripts/report --screenshot) and its browser test
(tests/report/test_browser.py). Python 3 standard library only.

    with chromium.Browser() as b:      # starts chromedriver and a fresh headless Chromium
        b.open("file:///.../page.html")
        b.run("return document.title")  # JavaScript in the page, its value back
        b.console_errors()              # the page's console errors and failed loads
        b.screenshot("page.png")        # the whole page, not only the window

missing() says what is not installed (Debian: chromium, chromium-driver;
`scripts/deps --browser`). Chromium runs with a fresh profile in a temporary
folder, no sandbox when root (it refuses to start otherwise), and with its
background networking, QUIC, component updates and sync turned off: on a
machine without network it would otherwise stall on refused connections.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import outfile  # noqa: E402  (the output-file rule every script follows)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class BrowserError(Exception):
    """chromedriver or Chromium failed: the message says what and how."""


def find_chromium():
    for n in CHROMIUM_NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


def missing():
    """What is missing to drive a browser here (a list of package names), or []."""
    out = []
    if not find_chromium():
        out.append("chromium")
    if not shutil.which("chromedriver"):
        out.append("chromium-driver")
    return out


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One chromedriver process and one Chromium session, stopped by close()."""

    def __init__(self, width=1280, height=900, timeout=60.0):
        if missing():
            raise BrowserError("not installed: %s (scripts/deps --browser installs it)" %
                               ", ".join(missing()))
        self.timeout = timeout
        self.width = width
        self.tmp = tempfile.mkdtemp(prefix="corobench-chromium-")
        self.port = _free_port()
        self.log = open(os.path.join(self.tmp, "chromedriver.log"), "wb")
        self.driver = subprocess.Popen(
            ["chromedriver", "--port=%d" % self.port, "--allowed-ips=127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.session = None
        try:
            self._wait_ready()
            args = list(FLAGS) + ["--window-size=%d,%d" % (width, height),
                                  "--user-data-dir=" + os.path.join(self.tmp, "profile")]
            if os.geteuid() == 0:
                args.append("--no-sandbox")
            caps = {"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": find_chromium(), "args": args},
                "goog:loggingPrefs": {"browser": "ALL"},
                "timeouts": {"pageLoad": int(timeout * 1000), "script": int(timeout * 1000)},
            }}}
            value = self._call("POST", "/session", caps)
            self.session = value["sessionId"]
        except BaseException:
            self.close()
            raise

    # -- plumbing
    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.driver.poll() is not None:
                raise BrowserError("chromedriver exited with status %d; its log: %s" %
                                   (self.driver.returncode, self._log_tail()))
            try:
                v = self._call("GET", "/status", timeout=2)
                if v.get("ready"):
                    return
            except (OSError, BrowserError):
                pass
            time.sleep(0.1)
        raise BrowserError("chromedriver did not answer on port %d within 20 s" % self.port)

    def _log_tail(self):
        try:
            with open(os.path.join(self.tmp, "chromedriver.log"), "rb") as f:
                return f.read()[-800:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def _call(self, method, path, body=None, timeout=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout or self.timeout + 30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json; charset=utf-8"})
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise BrowserError("chromedriver answered %s %s with %d and no JSON: %r" %
                               (method, path, r.status, raw[:200]))
        value = doc.get("value")
        if r.status != 200:
            err = value if isinstance(value, dict) else {}
            raise BrowserError("%s %s: %s: %s" % (method, path, err.get("error", r.status),
                                                  (err.get("message") or "")[:500]))
        return value

    def _s(self, path):
        return "/session/%s%s" % (self.session, path)

    # -- what callers use
    def open(self, url):
        self._call("POST", self._s("/url"), {"url": url})

    def run(self, script, *args):
        """Runs script (a function body: `return ...`) in the page; its value."""
        return self._call("POST", self._s("/execute/sync"), {"script": script,
                                                             "args": list(args)})

    def console_errors(self):
        """The console messages of level SEVERE since the last call: script
        errors, failed resource loads, console.error()."""
        entries = self._call("POST", self._s("/se/log"), {"type": "browser"}) or []
        return [e.get("message", "") for e in entries if e.get("level") == "SEVERE"]

    def screenshot(self, path, max_height=None):
        """The whole page (or its top max_height CSS pixels) as PNG at path,
        written atomically."""
        height = self.run("return Math.ceil(Math.max(document.documentElement.scrollHeight,"
                          " document.body ? document.body.scrollHeight : 0))")
        width = self.run("return Math.ceil(document.documentElement.scrollWidth)")
        height = max(1, int(height))
        if max_height:
            height = min(height, int(max_height))
        shot = self._call("POST", self._s("/goog/cdp/execute"), {
            "cmd": "Page.captureScreenshot",
            "params": {"format": "png", "captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": max(int(width), self.width),
                                "height": height, "scale": 1}}})
        data = base64.b64decode(shot["data"])
        outfile.write_bytes(path, data)
        return len(data)

    def close(self):
        try:
            if self.session:
                self._call("DELETE", self._s(""), timeout=20)
        except (OSError, BrowserError):
            pass
        self.session = None
        if self.driver.poll() is None:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait(5)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
