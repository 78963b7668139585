#!/usr/bin/env python3
"""test_e2e.py — a tiny scenario run end to end with the real binaries:
upstream, coro-server, async-server, loadgen, scenario-check, result2dat and
gnuplot. Two levels of about a second each, one repetition per server. Exits
77 (skipped) while the servers or loadgen are not built yet."""
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
        scen = os.path.join(tmp, "e2e-tiny.json")
        with open(scen, "w") as f:
            json.dump({
                "name": "e2e-tiny", "purpose": "the bench pipeline end to end, seconds long",
                "upstream": {"delay_ms": 5, "size": 512}, "levels": [1, 8],
                "seconds": 1, "warmup_s": 0.2, "repetitions": 1, "keepalive": True,
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
        path = os.path.join(tmp, "results", "e2e-tiny", "latest.json")
        with open(path) as f:
            doc = json.load(f)
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
        if shutil.which("gnuplot"):
            assert "-throughput.png" in out and "-throughput.svg" in out, out
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
