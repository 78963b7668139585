#!/usr/bin/env python3
"""test_costbreak.py — scripts/costbreak: its reading of `perf script` (every
category, a versioned symbol, the call that entered the kernel) on a crafted
profile, then a brief real run on a tiny proxy scenario (coro and async, one
second each at c = 8): every category per style, shares adding up to 100%,
µs per request adding up to the sampled total, the sampled CPU close to the
CPU schedstat measured, the command line and every command printed, the
JSON written, and every process it started gone. Bad usage and an unknown
server get clear refusals. Skipped (exit 77, one line) where perf is not
installed, or while the servers and loadgen are not built."""
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import types

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE")
NEEDED = ("servers/coro/coro-server", "servers/async/async-server",
          "servers/upstream/upstream", "loadgen/loadgen", "scenarios/scenario-check")

# `perf script -F comm,tid,time,period,ip,sym,dso --ns` of a -g recording
CRAFTED = """coro-server  7  10.000000000:    1000000 
\tffffffff8224f5f9 _raw_spin_unlock ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64 ([kernel.kallsyms])
\t           f8350 __GI___libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t d4b4f2030303220 [unknown] ([unknown])

coro-server  7  10.001000000:    1000000 
\tffffffff8224f5f9 tcp_ack ([kernel.kallsyms])
\t           f8350 __libc_recv (/usr/lib/x86_64-linux-gnu/libc.so.6)

coro-server  7  10.002000000:    2000000 
\t           4a0d0 curl_multi_socket_action (/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0)

coro-server  7  10.003000000:    1000000 
\t           1d0d0 event_base_loop (/usr/lib/x86_64-linux-gnu/libevent-2.1.so.7.0.1)

coro-server  7  10.004000000:    1000000 
\t           9a0d0 cfree@GLIBC_2.2.5 (/usr/lib/x86_64-linux-gnu/libc.so.6)

coro-server  7  10.005000000:    1000000 
\t           9a0d0 _int_malloc (/usr/lib/x86_64-linux-gnu/libc.so.6)

coro-server  7  10.006000000:    1000000 
\t           9a0d0 __memmove_avx_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)

coro-server  7  10.007000000:    1000000 
\t            1234 conn_serve (/somewhere/build/servers/coro/coro-server)

coro-server  7  10.008000000:    1000000 
\t           ff0d0 nghttp2_session_send (/usr/lib/x86_64-linux-gnu/libnghttp2.so.14.24.1)
"""


def check_parsing():
    cb = types.SimpleNamespace(**runpy.run_path(os.path.join(SOURCE, "scripts", "costbreak")))
    samples = cb.parse_perf_script(CRAFTED)
    assert len(samples) == 9, samples
    assert samples[0][:2] == (10.0, 1000000) and len(samples[0][2]) == 4, samples[0]
    # the first sample only opens the window: its period is not counted
    cats, by_call, other = cb.breakdown(samples, samples[0][0], "coro-server")
    want = {"kernel": 1e6, "libcurl": 2e6, "libevent": 1e6, "allocator": 2e6,
            "worker code": 1e6, "other libc": 1e6, "other": 1e6}
    assert dict(cats) == want, dict(cats)
    assert dict(by_call) == {"recv (libc.so.6)": 1e6}, by_call
    assert dict(other) == {"libnghttp2.so.14.24.1": 1e6}, other
    cats, by_call, _ = cb.breakdown(samples, 0, "coro-server")
    assert cats["kernel"] == 2e6 and by_call["write (libc.so.6)"] == 1e6, by_call
    print("ok: perf script read, every category, versioned symbols, the entering call")
    return cb


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    if not shutil.which("perf"):
        print("skipped: perf is not installed (scripts/deps --perf)")
        return 77
    missing = [b for b in NEEDED if not os.access(os.path.join(BUILD, b), os.X_OK)]
    if missing:
        print("skipped: not built yet: %s" % ", ".join(missing))
        return 77
    cb = check_parsing()
    tool = os.path.join(SOURCE, "scripts", "costbreak")
    tmp = tempfile.mkdtemp(prefix="corobench-test-costbreak-")
    try:
        scen = os.path.join(tmp, "tiny-cost.json")
        with open(scen, "w") as f:
            json.dump({"name": "tiny-cost", "purpose": "costbreak, briefly",
                       "upstream": {"delay_ms": 5, "size": 512}, "levels": [8],
                       "seconds": 1, "warmup_s": 0.5, "repetitions": 1, "keepalive": True,
                       "expect": {"status": 200, "body_upstream": 1},
                       "servers": [{"kind": "coro", "app": "proxy"},
                                   {"kind": "async", "app": "proxy-async"}]}, f)

        def run(*args):
            r = subprocess.run([sys.executable, tool] + list(args) + ["--build", BUILD],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150,
                               check=False)
            return r.returncode, r.stdout.decode("utf-8", "replace")

        rc, out = run(scen, "--level", "0")
        assert rc == 2 and "must be positive" in out, (rc, out)
        rc, out = run(scen, "--servers", "nginx")
        assert rc == 1 and "no coro or async server nginx" in out, (rc, out)
        print("ok: bad usage and an unknown server refused")

        out_json = os.path.join(tmp, "cost.json")
        rc, out = run(scen, "--level", "8", "--seconds", "1", "--warmup", "0.5",
                      "--frequency", "999", "--json", out_json)
        print(out)
        assert rc == 0, rc
        assert "command: scripts/costbreak %s --level 8" % scen in out, out
        for needle in ("perf record -e cpu-clock -F 999 -g -k CLOCK_MONOTONIC -p ",
                       "loadgen -q -k --sweep 8 -t 3 ", "category", "total (perf)",
                       "measured (schedstat)", "async − coro µs/req", "gap async − coro"):
            assert needle in out, needle
        for c in cb.CATEGORIES:
            assert "\n" + c + " " in out, c
        with open(out_json) as f:
            doc = json.load(f)
        assert doc["schema"] == "corobench/costbreak/v1" and doc["level"] == 8, doc["schema"]
        assert [s["server"] for s in doc["styles"]] == ["coro", "async"], doc["styles"]
        for s in doc["styles"]:
            cats = s["categories"]
            assert list(cats) == list(cb.CATEGORIES), list(cats)
            assert abs(sum(c["share"] for c in cats.values()) - 1) < 1e-9, cats
            assert abs(sum(c["us"] for c in cats.values()) - s["sampled_us"]) < \
                1e-6 * s["sampled_us"], (cats, s["sampled_us"])
            assert s["rps"] > 0 and s["measured_us"] > 0 and s["samples"] >= 10, s
            # perf's samples against schedstat over the same window: the tool
            # reports ±3 pp; a gross error (a wrong unit, a lost window) is
            # far outside this test's wide bound, which load cannot reach
            assert abs(s["accounting_pp"]) < 25, s["accounting_pp"]
            assert cats["kernel"]["share"] > 0, cats
            for pid in (s["worker_pid"], s["master_pid"]):
                assert not alive(pid), "pid %d left running" % pid
        assert doc["gap"] is not None and "pp" in doc["gap"], doc["gap"]
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
