#!/usr/bin/env python3
"""test_costbreak.py — scripts/costbreak: its reading of `perf script` (every
category, a versioned symbol, the call that entered the kernel) on a crafted
profile, then a brief real run on a tiny proxy scenario (coro and async, one
second each at c = 8, two rounds): every category per style, shares adding
up to 100%, µs per request adding up to the sampled total, the sampled CPU
close to the CPU schedstat measured, the TCP figures (segments per request,
the worker's 8 client sockets) and latency, one line per round and style,
the command line and every command printed, the JSON written, and every
process it started gone. Bad usage and an unknown
server get clear refusals. Skipped (exit 77, one line) where perf is not
installed, or while the servers and loadgen are not built."""
import json
import os
import runpy
import shutil
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import costtool  # noqa: E402  (what the two cost-script tests share)

BUILD, SOURCE = costtool.BUILD, costtool.SOURCE

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


def main():
    status = costtool.not_ready()
    if status is not None:
        return status
    if not shutil.which("perf"):
        print("skipped: perf is not installed (scripts/deps --perf)")
        return 77
    cb = check_parsing()
    tool = os.path.join(SOURCE, "scripts", "costbreak")
    tmp = tempfile.mkdtemp(prefix="corobench-test-costbreak-")
    try:
        scen = costtool.tiny_scenario(tmp, "tiny-cost", "costbreak, briefly")

        def run(*args):
            return costtool.run_tool(tool, BUILD, *args)

        rc, out = run(scen, "--level", "0")
        assert rc == 2 and "must be positive" in out, (rc, out)
        rc, out = run(scen, "--repeat", "0")
        assert rc == 2 and "must be positive" in out, (rc, out)
        tcp = cb.tcp_counters()
        assert tcp.get("Tcp.OutSegs", 0) > 0 and "TcpExt.DelayedACKs" in tcp, sorted(tcp)[:8]
        costtool.refuses_unknown_server(run, scen)

        out_json = os.path.join(tmp, "cost.json")
        rc, out = run(scen, "--level", "8", "--seconds", "1", "--warmup", "0.5",
                      "--frequency", "999", "--repeat", "2", "--json", out_json)
        print(out)
        assert rc == 0, rc
        assert "command: scripts/costbreak %s --level 8" % scen in out, out
        for needle in ("perf record -e cpu-clock -F 999 -g -k CLOCK_MONOTONIC -p ",
                       "loadgen -q -k --sweep 8 -t 3 ", "category", "total (perf)",
                       "measured (schedstat)", "async − coro µs/req", "gap async − coro",
                       "=== round 2 of 2", "client ACKs/answer", "segments without data"):
            assert needle in out, needle
        for c in cb.CATEGORIES:
            assert "\n" + c + " " in out, c
        with open(out_json) as f:
            doc = json.load(f)
        assert doc["schema"] == "corobench/costbreak/v1" and doc["level"] == 8, doc["schema"]
        assert [s["server"] for s in doc["styles"]] == ["coro", "async"], doc["styles"]
        assert len(doc["rounds"]) == 2 and doc["rounds"][0]["styles"] == doc["styles"], \
            len(doc["rounds"])
        for s in doc["rounds"][0]["styles"] + doc["rounds"][1]["styles"]:
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
            # a proxied request: its request and answer on the client's
            # connection and on the upstream's, each a segment at least
            t = s["tcp"]
            assert t["segments_per_request"] >= 2, t
            assert t["client_sockets"] == 8 and t["client_acks_per_answer"] >= 0, t
            # at c = 8 the stub and loadgen sleep between requests: the
            # worker's sends wake them (counted by perf stat's tracepoint)
            assert t["wakeups_per_request"] is not None and t["wakeups_per_request"] > 0, t
            assert s["latency"]["p99_ms"] > 0, s["latency"]
            for pid in (s["worker_pid"], s["master_pid"]):
                assert not costtool.alive(pid), "pid %d left running" % pid
        assert doc["gap"] is not None and "pp" in doc["gap"], doc["gap"]
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
