#!/usr/bin/env python3
"""test_costratio.py — scripts/costratio: its medians and ratios on crafted
runs, then a brief real run on a tiny proxy scenario (coro and async, one
repetition of two seconds at 300 requests/s): each worker's hello and proxy
CPU per request and the upstream's measured and positive, the ratios their
quotients, the rates reached, the command line printed, the JSON written,
and every process it started gone. Bad usage and an unknown server get
clear refusals. Skipped (exit 77, one line) while the servers and loadgen
are not built."""
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


def check_summary():
    cr = types.SimpleNamespace(**runpy.run_path(os.path.join(SOURCE, "scripts", "costratio")))

    def run(app, rate, worker, upstream=None, rps=None, failed=0, p99=1.0):
        return {"app": app, "rate": rate, "rps": rps or rate, "failed": failed,
                "p99_ms": p99, "short": (rps or rate) < rate * (1 - cr.SHORT),
                "worker_us": worker, "upstream_us": upstream}

    runs = [run("hello", 100, 10.0), run("proxy", 100, 30.0, 12.0, p99=25.0),
            run("hello", 100, 12.0), run("proxy", 100, 30.0, 15.0, p99=21.0),
            run("hello", 100, 11.0), run("proxy", 100, 44.0, 11.0, rps=90, p99=30.0),
            run("hello", 200, 8.0, failed=2), run("proxy", 200, 20.0, 10.0)]
    rows = cr.summarize(runs)
    assert [x["rate"] for x in rows] == [100, 200], rows
    a, b = rows
    # medians of each figure, and the median of the per-repetition ratios
    assert (a["hello_us"], a["proxy_us"], a["upstream_us"]) == (11.0, 30.0, 12.0), a
    assert abs(a["ratio"] - 3.0) < 1e-9, a["ratio"]          # 3.0, 2.5, 4.0
    assert abs(a["upstream_ratio"] - 1.2) < 1e-9, a          # 1.2, 1.25, 1.0
    assert a["proxy_p99_ms"] == 25.0 and a["repetitions"] == 3, a
    assert a["short"] and not b["short"] and b["failed"] == 2, (a, b)
    assert abs(b["ratio"] - 2.5) < 1e-9 and abs(b["upstream_ratio"] - 1.25) < 1e-9, b
    print("ok: medians, per-repetition ratios, short rates and failures")


def main():
    status = costtool.not_ready()
    if status is not None:
        return status
    check_summary()
    tool = os.path.join(SOURCE, "scripts", "costratio")
    tmp = tempfile.mkdtemp(prefix="corobench-test-costratio-")
    try:
        scen = costtool.tiny_scenario(tmp, "tiny-ratio", "costratio, briefly")

        def run(*args):
            return costtool.run_tool(tool, BUILD, *args)

        rc, out = run(scen, "--rates", "0")
        assert rc == 2 and "positive integers" in out, (rc, out)
        costtool.refuses_unknown_server(run, scen)

        out_json = os.path.join(tmp, "ratio.json")
        rc, out = run(scen, "--rates", "300", "--seconds", "2", "--warmup", "0.5",
                      "--connections", "20", "--repetitions", "1", "--json", out_json)
        print(out)
        assert rc == 0, rc
        assert "command: scripts/costratio %s --rates 300" % scen in out, out
        for needle in ("coro: proxy against hello on the same worker",
                       "async: proxy-async against hello on the same worker",
                       "proxy/hello", "upstream/hello", "load average before"):
            assert needle in out, needle
        with open(out_json) as f:
            doc = json.load(f)
        assert doc["schema"] == "corobench/costratio/v1" and doc["rates"] == [300], doc
        assert [s["server"] for s in doc["servers"]] == ["coro", "async"], doc["servers"]
        for s in doc["servers"]:
            assert [r["app"] for r in s["runs"]] == ["hello", s["app"]], s["runs"]
            hello, prox = s["runs"]
            for r in s["runs"]:
                assert r["rps"] > 200 and r["failed"] == 0 and r["worker_us"] > 0, r
                for pid in (r["worker_pid"], r["master_pid"]):
                    assert not costtool.alive(pid), "pid %d left running" % pid
            assert prox["upstream_us"] > 0, prox
            row = s["rows"][0]
            assert abs(row["ratio"] - prox["worker_us"] / hello["worker_us"]) < 1e-9, row
            assert abs(row["upstream_ratio"] -
                       prox["upstream_us"] / hello["worker_us"]) < 1e-9, row
        assert not costtool.alive(doc["servers"][0]["runs"][1]["upstream_pid"]), "upstream left"
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
