#!/usr/bin/env python3
"""test_master.py — the pre-fork process model (servers/runtime/master.c) on
its own, through test-master-worker (a master_run() with a trivial blocking
worker, see test-master-worker.c): readiness, address errors, worker
replacement and its logging, the restart-storm guard, graceful shutdown and
its timeout, SIGHUP, --workers 0 and --cpu-affinity.

    python3 test_master.py --worker PATH

Prints TAP; exits non-zero when a check fails.
"""

import argparse
import os
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srvtest as st  # noqa: E402


def info(port, path="/"):
    r = st.get(port, path, timeout=5)
    if r.status != 200:
        raise AssertionError(f"GET {path}: {r}")
    return dict(kv.split("=", 1) for kv in r.body.decode().split())


def pids_answering(port, want, seconds=10.0):
    """PIDs seen answering over fresh connections (blocking workers take
    turns, so a few tries see all of them). Keeps asking for a while: a
    worker still starting (slow under ASan on a busy runner) has not reached
    accept() yet, and 40 quick tries in a row all went to its sibling."""
    seen = set()
    deadline = time.monotonic() + seconds
    while True:
        seen.add(int(info(port)["pid"]))
        if len(seen) >= want or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True, help="test-master-worker binary")
    a = ap.parse_args()
    W = a.worker
    t = st.Tap()
    allowed = sorted(os.sched_getaffinity(0))

    def start(*args, **kw):
        return st.start_server(W, list(args), **kw)

    # ---- readiness, the line, the workers
    def readiness():
        for _ in range(5):
            srv = start("--workers", "2")
            try:
                if not srv.ready_ok:
                    return f"no listening line:\n{srv.text()}"
                # Connect at once, before any worker may have run.
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
                line = [l for l in srv.output() if "listening on" in l][0]
                want = f"test-master-worker: listening on 127.0.0.1:{srv.port} (2 workers)"
                if line != want:
                    return f"line {line!r}, want {want!r}"
            finally:
                srv.stop()
    t.check("readiness: 'listening on' line, then connect succeeds at once", readiness)

    srv = start("--workers", "2", "--graceful-timeout", "5")
    try:
        def workers_ok():
            kids = srv.wait_workers(2)
            if not kids:
                return f"children of master: {srv.workers()}"
            seen = pids_answering(srv.port, 2)
            if seen != set(kids):
                return f"answering pids {seen}, children {kids}"
            d = info(srv.port)
            if int(d["ppid"]) != srv.pid or d["nworkers"] != "2":
                return f"worker says {d}, master {srv.pid}"
            if d["clean"] != "1":
                return "worker started with a non-empty signal mask or non-default dispositions"
        t.check("two workers forked, both serve, children of the master", workers_ok)

        def killed_replaced():
            before = srv.wait_workers(2)
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            after = st.wait_until(
                lambda: (lambda k: k if len(k) == 2 and victim not in k else None)(srv.workers()), 5)
            if not after:
                return f"not replaced: before {before}, now {srv.workers()}"
            for _ in range(10):
                info(srv.port)
            log = srv.text()
            if not re.search(rf"worker \d \(pid {victim}\) killed by SIGKILL; restarting", log):
                return f"no log line for the death:\n{log}"
        t.check("kill -9 a worker: replaced, logged 'killed by SIGKILL', serving", killed_replaced)

        def exit_code_logged():
            r = st.get(srv.port, "/exit?code=3")
            if r.status != 200:
                return f"{r}"
            ok = st.wait_until(lambda: "exited with status 3; restarting" in srv.text(), 5)
            if not ok:
                return srv.text()
            if not srv.wait_workers(2):
                return f"workers {srv.workers()}"
        t.check("a worker exiting with status 3 is logged with it and replaced", exit_code_logged)

        def abort_logged():
            st.get(srv.port, "/abort")
            if not st.wait_until(lambda: "killed by SIGABRT" in srv.text(), 5):
                return srv.text()
            if not srv.wait_workers(2):
                return f"workers {srv.workers()}"
            info(srv.port)
        t.check("a worker dying of SIGABRT is logged by signal name and replaced", abort_logged)

        def sighup():
            kids = srv.wait_workers(2)
            srv.signal(signal.SIGHUP)
            if not st.wait_until(lambda: "SIGHUP ignored" in srv.text(), 3):
                return f"no log line:\n{srv.text()}"
            time.sleep(0.2)
            if srv.proc.poll() is not None or srv.workers() != kids:
                return f"master rc {srv.proc.poll()}, workers {kids} -> {srv.workers()}"
            info(srv.port)
        t.check("SIGHUP is logged and ignored (master and workers stay)", sighup)

        def storm():
            # Three quick deaths in a row: the third restart must wait.
            for _ in range(3):
                kids = srv.wait_workers(2)
                if not kids:
                    return f"workers {srv.workers()}"
                victim = kids[-1]
                os.kill(victim, signal.SIGKILL)
                st.wait_until(lambda: victim not in srv.workers(), 3)
            if not st.wait_until(lambda: "keeps dying; restarting in" in srv.text(), 3):
                return f"no back-off line:\n{srv.text()}"
            if not srv.wait_workers(2, timeout=6):
                return f"not restored after back-off: {srv.workers()}"
        t.check("restart storm: repeated fast deaths back off, then recover", storm)

        def sigterm_in_flight():
            res = {}

            def client():
                try:
                    t0 = time.monotonic()
                    r = st.get(srv.port, "/sleep?ms=600", timeout=10)
                    res["r"], res["dt"] = r, time.monotonic() - t0
                except Exception as e:  # noqa: BLE001
                    res["e"] = e
            th = threading.Thread(target=client)
            th.start()
            time.sleep(0.2)
            kids = srv.workers()
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            rc = srv.wait(8)
            dt = time.monotonic() - t0
            th.join(10)
            if "e" in res:
                return f"in-flight request failed: {res['e']!r}"
            if res["r"].status != 200 or b"slept 600" not in res["r"].body:
                return f"in-flight answer {res['r']}"
            if rc != 0:
                return f"master exit {rc}:\n{srv.text()}"
            if dt > 4.5:
                return f"took {dt:.1f} s (graceful timeout 5)"
            alive = [p for p in kids if st.pid_alive(p)]
            if alive:
                return f"workers still alive: {alive}"
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
                return "port still accepts after the master exited"
            except OSError:
                pass
        t.check("SIGTERM: in-flight request finishes (200), exit 0, workers gone, port closed",
                sigterm_in_flight)
    finally:
        srv.stop()

    # ---- SIGINT behaves like SIGTERM
    def sigint():
        s = start("--workers", "1")
        try:
            info(s.port)
            s.signal(signal.SIGINT)
            rc = s.wait(5)
            return None if rc == 0 else f"exit {rc}:\n{s.text()}"
        finally:
            s.stop()
    t.check("SIGINT: graceful, exit 0", sigint)

    # ---- the graceful timeout kills stragglers
    def straggler():
        s = start("--workers", "1", "--graceful-timeout", "1")
        try:
            r = st.get(s.port, "/ignore-term")
            victim = int(r.body.decode().split("pid=")[1])
            t0 = time.monotonic()
            s.signal(signal.SIGTERM)
            rc = s.wait(6)
            dt = time.monotonic() - t0
            if rc != 0:
                return f"exit {rc}:\n{s.text()}"
            if not 0.8 <= dt <= 3.5:
                return f"exit after {dt:.2f} s, graceful timeout 1 s"
            if st.pid_alive(victim):
                return f"straggler {victim} alive"
            if "still running after the graceful timeout" not in s.text():
                return f"no log line:\n{s.text()}"
        finally:
            s.stop()
    t.check("graceful timeout: a worker ignoring SIGTERM is SIGKILLed, exit 0", straggler)

    # ---- address errors
    def addr_in_use():
        with socket.socket() as hold:
            hold.bind(("127.0.0.1", 0))
            hold.listen(1)
            port = hold.getsockname()[1]
            s = st.Server([W, "--listen", f"127.0.0.1:{port}"], ready=None)
            rc = s.wait(5)
            s.stop()
        one, lines = st.one_line_error(s.text())
        want = f"test-master-worker: cannot listen on 127.0.0.1:{port}: Address already in use"
        if rc in (0, None) or not one or lines[0] != want:
            return f"exit {rc}, output {lines}, want one line {want!r}"
    t.check("address in use: one clear line, exit non-zero", addr_in_use)

    def bad_addr():
        for spec in ["nonsense", "127.0.0.1:99999", "::1:80", "[::1]", "127.0.0.1:"]:
            s = st.Server([W, "--listen", spec], ready=None)
            rc = s.wait(5)
            s.stop()
            one, lines = st.one_line_error(s.text())
            if rc in (0, None) or not one or f"cannot listen on {spec}:" not in lines[0]:
                return f"--listen {spec}: exit {rc}, output {lines}"
    t.check("malformed --listen: one clear line, exit non-zero", bad_addr)

    def any_addr():
        port = st.free_port()
        s = st.Server([W, "--listen", f":{port}", "--workers", "1"], port=port)
        try:
            if not s.ready_ok or f"listening on 0.0.0.0:{port} (1 worker)" not in s.text():
                return s.text()
            info(port)
        finally:
            s.stop()
    t.check("':PORT' listens on 0.0.0.0", any_addr)

    def ipv6():
        try:
            with socket.socket(socket.AF_INET6) as p:
                p.bind(("::1", 0))
        except OSError:
            return True  # no IPv6 loopback here: nothing to check
        port = st.free_port()
        s = st.Server([W, "--listen", f"[::1]:{port}", "--workers", "1"], port=port)
        try:
            if not s.ready_ok or f"listening on [::1]:{port}" not in s.text():
                return s.text()
            with socket.create_connection(("::1", port), timeout=2) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                if b"200 OK" not in c.recv(4096):
                    return "no answer over IPv6"
        finally:
            s.stop()
    t.check("'[::1]:PORT' listens on IPv6 loopback", ipv6)

    # ---- worker count and pinning
    def workers_zero():
        s = start("--workers", "0")
        try:
            n = len(allowed)
            want = f"({n} worker{'s' if n > 1 else ''})"
            if want not in s.text():
                return f"want {want}:\n{s.text()}"
            if not s.wait_workers(n):
                return f"children {s.workers()}"
        finally:
            s.stop()
    t.check("--workers 0: one worker per allowed CPU", workers_zero)

    def affinity():
        n = len(allowed) + 1  # one more than CPUs: the modulo wraps
        s = start("--workers", str(n), "--cpu-affinity")
        try:
            if not s.wait_workers(n):
                return f"children {s.workers()}"
            # Which worker answers a connection is the kernel's choice, so
            # the check does not rely on reaching each one: the workers'
            # CPU lists, as a multiset, must be allowed[i mod count] for
            # i = 0..n-1.
            want = sorted(str(allowed[i % len(allowed)]) for i in range(n))
            have = sorted(st.cpus_allowed_list(pid) for pid in s.workers())
            if have != want:
                return f"workers' Cpus_allowed_list {have}, want {want}"
        finally:
            s.stop()
    t.check("--cpu-affinity: worker i pinned to allowed CPU i mod count", affinity)

    def no_affinity():
        s = start("--workers", "1")
        try:
            kids = s.wait_workers(1)
            want = set(allowed)
            have = st.cpus_allowed_list(kids[0])
            cpus = set()
            for part in have.split(","):
                lo, _, hi = part.partition("-")
                cpus.update(range(int(lo), int(hi or lo) + 1))
            if cpus != want:
                return f"unpinned worker allowed {have}, want {sorted(want)}"
        finally:
            s.stop()
    t.check("without --cpu-affinity workers keep every allowed CPU", no_affinity)

    # ---- workers that cannot start, and a dead master
    def boot_failure():
        s = st.Server([W, "--listen", f"127.0.0.1:{st.free_port()}", "--fail-start", "3"],
                      ready=None)
        rc = s.wait(10)
        s.stop()
        if rc in (0, None) or "giving up" not in s.text():
            return f"exit {rc}:\n{s.text()}"
    t.check("workers that fail at start: master backs off, gives up, exit non-zero",
            boot_failure)

    def master_killed():
        s = start("--workers", "2")
        try:
            kids = s.wait_workers(2)
            os.kill(s.pid, signal.SIGKILL)
            s.wait(5)
            if not st.wait_until(lambda: not any(st.pid_alive(p) for p in kids), 5):
                return f"orphaned workers still alive: {[p for p in kids if st.pid_alive(p)]}"
        finally:
            for p in s.workers():
                os.kill(p, signal.SIGKILL)
            s.stop()
    t.check("SIGKILLed master: the workers go too (no orphans serving)", master_killed)

    return t.finish()


if __name__ == "__main__":
    st.main_guard(main)
