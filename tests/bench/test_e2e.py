#!/usr/bin/env python3
"""test_e2e.py — a tiny scenario run end to end with the real binaries:
upstream, coro-server, async-server, loadgen, scenario-check, result2dat and
gnuplot, then the run's charts (the CPU-per-request one too) and its HTML page,
whose path the runner prints; every point's cost figures and each series'
instructions per request (results/SCHEMA.md) are measured. Two levels of about a second each, one
repetition per server. Exits 77 (skipped) while the servers or loadgen are not
built yet."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_result  # noqa: E402

NEEDED = ("servers/coro/coro-server", "servers/async/async-server",
          "servers/upstream/upstream", "loadgen/loadgen", "scenarios/scenario-check",
          "plots/result2dat")


def run_tiny(tmp, name, purpose, repetitions=1):
    """scripts/bench on a tiny proxy scenario (coro and async, levels 1 and 8,
    a second each) into tmp/results: (its output, the result file, the
    result). Also used by tests/report/test_browser.py."""
    scen = os.path.join(tmp, name + ".json")
    with open(scen, "w") as f:
        json.dump({
            "name": name, "purpose": purpose,
            "upstream": {"delay_ms": 5, "size": 512}, "levels": [1, 8],
            "seconds": 1, "warmup_s": 0.2, "repetitions": repetitions, "keepalive": True,
            "expect": {"status": 200, "body_upstream": 1},
            "servers": [{"kind": "coro", "app": "proxy"},
                        {"kind": "async", "app": "proxy-async"}]}, f)
    r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "bench"), scen,
                        "--build", BUILD, "--results", os.path.join(tmp, "results")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150,
                       check=False)
    out = r.stdout.decode("utf-8", "replace")
    print(out)
    assert r.returncode == 0, "scripts/bench exited %d" % r.returncode
    path = os.path.join(tmp, "results", name, "latest.json")
    with open(path) as f:
        return out, path, json.load(f)


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    missing = [b for b in NEEDED if not os.access(os.path.join(BUILD, b), os.X_OK)]
    if missing:
        print("skipped: not built yet: %s" % ", ".join(missing))
        return 77
    tmp = tempfile.mkdtemp(prefix="corobench-test-e2e-")
    try:
        out, _, doc = run_tiny(tmp, "e2e-tiny", "the bench pipeline end to end, seconds long")
        c = check_result.Checker()
        c.check(doc, complete=True)
        assert not c.problems, c.problems
        for s in doc["series"]:
            assert s["status"] == "ok", (s["server"], s["status"], s["errors"])
            assert s["verified"]["ok"]
            for pt in s["points"]:
                m = pt["median"]
                assert m["complete"] > 0 and m["rps"] > 0, (s["server"], pt["level"], m)
                assert m["failed"] == 0, (s["server"], pt["level"], m["failures"])
                # every request waits 5 ms on the upstream
                assert m["mean_ms"] >= 4.5, (s["server"], pt["level"], m["mean_ms"])
                # the cost of a point (results/SCHEMA.md): the server's and the
                # upstream's CPU, the load generator's split, the server's
                # context switches and read/write calls, all measured
                for k in ("server_cpu", "upstream_cpu", "loadgen_cpu",
                          "server_csw_voluntary"):
                    assert m[k] is not None and m[k] > 0, (s["server"], pt["level"], k, m[k])
                # (a split is the clock tick's sample: a part may be 0)
                for k in ("loadgen_cpu_user", "loadgen_cpu_sys", "server_syscr",
                          "server_syscw", "server_csw_involuntary"):
                    assert m[k] is not None and m[k] >= 0, (s["server"], pt["level"], k)
            # instructions per request: counted where valgrind runs the build,
            # else the reason
            ic = s["icount"]
            assert ic["case"] == "%s:%s" % (s["kind"], s["app"]), ic
            if shutil.which("valgrind") and not os.environ.get("ASAN_OPTIONS") and \
                    "sanitizer" not in (ic["note"] or ""):
                assert ic["ir_per_request"] > 1000, ic
            else:
                assert ic["ir_per_request"] is None and ic["note"], ic
        assert doc["cost_method"]["cpu"] in ("schedstat", "clock ticks"), doc["cost_method"]
        if shutil.which("gnuplot"):
            assert "-throughput.png" in out and "-throughput.svg" in out, out
            assert "-cost.png" in out and "-cost.svg" in out, out
        page = os.path.join(tmp, "results", "e2e-tiny", doc["stamp"] + ".html")
        assert "report: " in out and out.split("report: ", 1)[1].split()[0].endswith(
            doc["stamp"] + ".html"), out
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for s in doc["series"]:
            for lv in doc["levels"]:
                assert 'data-server="%s" data-level="%d"' % (s["server"], lv) in text, lv
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
