#!/usr/bin/env python3
"""test_export.py — scripts/export's four formats, each against the fields its
format requires:

  - csv: one row per server, level and repetition (a gap: one row saying why),
    the figures of each repetition and its cost per request (CPU in µs, the
    server's calls and context switches in counts; a v1 file's empty);
  - bmf: Bencher Metric Format (an object of benchmarks, each an object of
    measures, each {value, lower_value?, upper_value?} numbers, measure names
    at most 64 characters), value the median, the bounds the min and max;
  - gab: github-action-benchmark's customBiggerIsBetter / customSmallerIsBetter
    lists ({name, unit, value, range?, extra?}), both files with -o;
  - hgrm: HdrHistogram's percentile distribution (header, 4-column lines, a
    3-column 100% line, the #[Mean/#[Max/#[Buckets footer; percentiles rising,
    TotalCount the cumulative count of nearest rank), and, on a real run of
    loadgen against the upstream stub, the very percentiles loadgen prints:
    its JSON p50/p90/p99/p99.9, min and max to the microsecond, ab's table in
    whole milliseconds;
  - unusable input: a clear message and exit status 1.

The loadgen part is skipped (and said so) while loadgen or the upstream stub
is not built. Python 3 standard library only.
"""
import copy
import csv
import io
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT = os.path.join(SOURCE, "scripts", "export")
sys.path.insert(0, os.path.join(SOURCE, "tests", "bench"))
from test_converter import as_v1, crafted  # noqa: E402  (a crash, gaps, 3 repetitions)


def export(*args, ok=True):
    r = subprocess.run([sys.executable, EXPORT] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if ok:
        assert r.returncode == 0, (args, r.stderr.decode())
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_csv(path, doc):
    _, out, _ = export(path, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    for col in ("scenario", "server", "level", "repetition", "gap", "rps", "mean_ms",
                "p99_ms", "failures_connect", "server_cpu", "server_cpu_us_per_request",
                "loadgen_cpu_us_per_request", "server_cpu_user_us_per_request",
                "server_cpu_sys_us_per_request", "upstream_cpu_us_per_request",
                "server_syscr_per_request", "server_syscw_per_request",
                "server_csw_voluntary_per_request", "server_csw_involuntary_per_request"):
        assert col in rows[0], (col, list(rows[0]))
    want = []
    for s in doc["series"]:
        for p in s["points"]:
            want += [(s["server"], str(p["level"]), str(i), r["rps"])
                     for i, r in enumerate(p["repetitions"], 1)] or \
                [(s["server"], str(p["level"]), "", None)]
    got = [(r["server"], r["level"], r["repetition"], float(r["rps"]) if r["rps"] else None)
           for r in rows]
    assert got == want, (got, want)
    for r in rows:
        if r["repetition"]:
            assert not r["gap"], r
            us = float(r["server_cpu_us_per_request"])
            assert abs(us - float(r["server_cpu"]) / float(r["rps"]) * 1e6) < 1e-6, r
            us = float(r["upstream_cpu_us_per_request"])
            assert abs(us - 0.1 / float(r["rps"]) * 1e6) < 1e-6, r
            # counts per request as they are: one read call, 0.5 voluntary switches
            assert abs(float(r["server_syscr_per_request"]) - 1) < 1e-9, r
            assert abs(float(r["server_csw_voluntary_per_request"]) - 0.5) < 1e-9, r
            if r["server"] == "async":   # no split at this level: empty cells
                assert r["server_cpu_user_us_per_request"] == "", r
        else:
            assert r["gap"] == "crashed" and r["rps"] == "", r
    print("ok: csv, %d rows" % len(rows))


def check_bmf(path, doc):
    _, out, _ = export(path, "--format", "bmf")
    bmf = json.loads(out)
    assert isinstance(bmf, dict)
    assert sorted(bmf) == ["crafted/async/c=1", "crafted/coro/c=1", "crafted/coro/c=10"], \
        sorted(bmf)
    for bench, measures in bmf.items():
        assert isinstance(bench, str) and 0 < len(bench) <= 1024, bench
        assert isinstance(measures, dict) and measures, bench
        for slug, m in measures.items():
            assert isinstance(slug, str) and 0 < len(slug) <= 64, slug
            assert isinstance(m, dict) and is_num(m.get("value")), (bench, slug, m)
            assert set(m) <= {"value", "lower_value", "upper_value"}, m
            if "lower_value" in m or "upper_value" in m:
                assert is_num(m["lower_value"]) and is_num(m["upper_value"]), m
                assert m["lower_value"] <= m["value"] <= m["upper_value"], (bench, slug, m)
    t = bmf["crafted/coro/c=1"]["throughput"]
    assert (t["value"], t["lower_value"], t["upper_value"]) == (49, 48, 50), t
    lat = bmf["crafted/coro/c=1"]["latency"]
    assert abs(lat["value"] - 20.2e6) < 1 and abs(lat["upper_value"] - 20.5e6) < 1, lat
    cpu = bmf["crafted/coro/c=1"]["server-cpu-per-request"]
    assert abs(cpu["value"] - 0.5 / 49 * 1e9) < 1, cpu
    cpu = bmf["crafted/coro/c=1"]["server-cpu-sys-per-request"]
    assert abs(cpu["value"] - 0.3 / 49 * 1e9) < 1, cpu
    calls = bmf["crafted/coro/c=1"]["server-syscw-per-request"]
    assert calls == {"value": 1, "lower_value": 1, "upper_value": 1}, calls
    assert "server-cpu-user-per-request" not in bmf["crafted/async/c=1"]  # no split
    print("ok: bmf, %d benchmarks" % len(bmf))


def check_v1(tmp, doc):
    """A corobench/result/v1 file exports too: its CPU per request, and empty
    cells (no measures) where v2's cost figures would be."""
    path = os.path.join(tmp, "v1.json")
    with open(path, "w") as f:
        json.dump(as_v1(doc), f)
    _, out, _ = export(path, "--format", "csv")
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["repetition"]]
    assert rows and all(r["server_cpu_us_per_request"] and r["upstream_cpu_us_per_request"]
                        == "" and r["server_syscr_per_request"] == "" for r in rows), rows[0]
    _, out, _ = export(path, "--format", "bmf")
    m = json.loads(out)["crafted/coro/c=1"]
    assert "server-cpu-per-request" in m and "upstream-cpu-per-request" not in m, sorted(m)
    print("ok: a v1 file exports")


def check_gab(path, tmp):
    def valid(entries, units):
        assert isinstance(entries, list) and entries
        for e in entries:
            assert set(e) <= {"name", "unit", "value", "range", "extra"}, e
            assert isinstance(e["name"], str) and e["name"], e
            assert isinstance(e["unit"], str) and e["unit"] in units, e
            assert is_num(e["value"]), e
            for k in ("range", "extra"):
                assert k not in e or isinstance(e[k], str), e
        assert len({e["name"] for e in entries}) == len(entries), "names repeat"

    _, out, _ = export(path, "--format", "gab")
    bigger = json.loads(out)
    valid(bigger, {"req/s", "ratio"})
    _, out, _ = export(path, "--format", "gab", "--smaller")
    smaller = json.loads(out)
    valid(smaller, {"ms", "us"})
    assert any(e["name"] == "coro c=1 req/s" and e["value"] == 49 for e in bigger), bigger
    o = os.path.join(tmp, "gab.json")
    export(path, "--format", "gab", "-o", o)
    with open(o) as f:
        assert json.load(f) == bigger
    with open(os.path.join(tmp, "gab.smaller.json")) as f:
        assert json.load(f) == smaller
    print("ok: gab, %d bigger-is-better, %d smaller-is-better" % (len(bigger), len(smaller)))


def parse_hgrm(text):
    """[(value ms, percentile 0..1, total count)], footer dict; asserts the layout
    HdrHistogram's outputPercentileDistribution writes."""
    lines = text.split("\n")
    assert re.fullmatch(r"\s+Value\s+Percentile\s+TotalCount\s+1/\(1-Percentile\)", lines[0]), \
        lines[0]
    assert lines[1] == "", lines[1]
    rows, footer, i = [], {}, 2
    while not lines[i].startswith("#"):
        parts = lines[i].split()
        v, p, n = float(parts[0]), float(parts[1]), int(parts[2])
        if p < 1:
            assert len(parts) == 4, lines[i]
            assert abs(float(parts[3]) - 1 / (1 - p)) < 0.01, lines[i]
        else:
            assert len(parts) == 3, lines[i]
        assert re.fullmatch(r"\d+\.\d{3}", parts[0]) and re.fullmatch(r"\d\.\d{12}", parts[1]), \
            lines[i]
        rows.append((v, p, n))
        i += 1
    for ln in lines[i:i + 3]:
        for k, v in re.findall(r"(\w[\w ]*?)\s*=\s*([\d.]+)", ln):
            footer[k.strip()] = float(v)
    assert set(footer) == {"Mean", "StdDeviation", "Max", "Total count", "Buckets",
                           "SubBuckets"}, footer
    assert lines[i + 3:] == [""], lines[i + 3:]
    ps = [r[1] for r in rows]
    assert ps == sorted(ps) and len(set(ps)) == len(ps) and ps[0] == 0 and ps[-1] == 1, ps
    assert [r[0] for r in rows] == sorted(r[0] for r in rows), "values must not fall"
    assert rows[-1][2] == footer["Total count"] and rows[-1][0] == footer["Max"], rows[-1]
    # HdrHistogram's ticks: 10 per half distance's worth at 5 ticks per half
    for want in (0.1, 0.2, 0.5, 0.55, 0.75, 0.775, 0.9, 0.9125):
        assert any(abs(p - want) < 1e-12 for p in ps), (want, ps[:20])
    return rows, footer


def check_hgrm_crafted(path, doc):
    rc, _, err = export(path, "--format", "hgrm", ok=False)
    assert rc == 1 and "--server" in err, err
    _, out, _ = export(path, "--format", "hgrm", "--server", "coro")
    rows, footer = parse_hgrm(out)
    # the plot level (10): buckets 20000 x900, 25000 x99, 40000 x1; max 40 ms exactly
    assert footer["Total count"] == 1000 and footer["Max"] == 40.0, footer
    cums = [0, 900, 999, 1000]
    for v, p, n in rows:
        # TotalCount: the cumulative count of the bucket holding the nearest
        # rank, the first to reach p of the samples (to rounding of p * N)
        assert n in cums and n >= p * 1000 - 1e-6, (v, p, n)
        assert cums[cums.index(n) - 1] <= p * 1000 + 1e-6 or p == 0, (v, p, n)
        # the value: in that bucket (loadgen's: 128 values wide up to 32767 µs,
        # 256 up to 65535), or the exact min at 0%
        upper, width = {900: (20000, 128), 999: (25000, 128), 1000: (40000, 256)}[n]
        assert upper - width < v * 1000 <= upper or p == 0, (v, p, n)
    rc, _, err = export(path, "--format", "hgrm", "--server", "async", "--level", "10",
                        ok=False)
    assert rc == 1 and "no latency histogram" in err, err
    rc, _, err = export(path, "--format", "hgrm", "--server", "nosuch", ok=False)
    assert rc == 1 and "no server" in err, err
    print("ok: hgrm of a crafted result, %d lines" % len(rows))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_hgrm_loadgen(tmp):
    lg = os.path.join(BUILD or "", "loadgen", "loadgen")
    up = os.path.join(BUILD or "", "servers", "upstream", "upstream")
    if not (BUILD and os.access(lg, os.X_OK) and os.access(up, os.X_OK)):
        print("skipped: hgrm against loadgen's own percentiles (loadgen or upstream not built)")
        return
    port = free_port()
    p = subprocess.Popen([up, "--listen", "127.0.0.1:%d" % port, "--delay-ms", "2",
                          "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "upstream did not start"
                time.sleep(0.05)
        # 1001 requests: N*p/100 is never whole for ab's percentiles, so ab's
        # rank (floor(N*p/100) + 1) and the nearest rank are the same sample
        js = os.path.join(tmp, "lg.json")
        r = subprocess.run([lg, "-n", "1001", "-c", "8", "--json", js,
                            "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120, check=False)
        out = r.stdout.decode()
        assert r.returncode == 0, r.stderr.decode()
    finally:
        p.terminate()
        p.wait(10)
    with open(js) as f:
        level = json.load(f)["levels"][0]
    assert level["complete"] == 1001 and level["failed"] == 0 and level["non2xx"] == 0, level
    ab = {int(m.group(1)): int(m.group(2))
          for m in re.finditer(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    assert sorted(ab) == [50, 66, 75, 80, 90, 95, 98, 99, 100], out
    _, text, _ = export(js, "--format", "hgrm")
    rows, footer = parse_hgrm(text)
    at = {round(p * 100, 6): v for v, p, _ in rows}
    lat = level["latency_ms"]
    for key, pct in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("min", 0),
                     ("max", 100)):
        assert abs(at[pct] - lat[key]) < 5e-4, (key, at[pct], lat[key])
    for pct, ms in ab.items():
        # ab's ROUND_MS: (µs + 500) / 1000, integer division
        assert (round(at[pct] * 1000) + 500) // 1000 == ms, (pct, at[pct], ms)
    assert footer["Total count"] == 1001 and footer["Max"] == lat["max"], footer
    assert abs(footer["Mean"] - lat["mean"]) <= 0.01 * lat["mean"], (footer, lat)
    assert footer["SubBuckets"] == 256, footer
    print("ok: hgrm of loadgen's run = its JSON (p50 %.3f, p90 %.3f, p99 %.3f, p99.9 %.3f ms) "
          "and ab's table (%s)" % (lat["p50"], lat["p90"], lat["p99"], lat["p999"],
                                   ", ".join("%d%%: %d" % kv for kv in sorted(ab.items()))))


def check_errors(tmp):
    rc, _, err = export(os.path.join(tmp, "nosuch.json"), "--format", "csv", ok=False)
    assert rc == 1 and "nosuch.json" in err, err
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"schema": "corobench/result/v0"}')
    rc, _, err = export(bad, "--format", "bmf", ok=False)
    assert rc == 1 and "schema" in err, err
    rc, _, err = export(bad, "--format", "pdf", ok=False)
    assert rc == 2 and "invalid choice" in err, err
    print("ok: unusable input refused")


def main():
    tmp = tempfile.mkdtemp(prefix="corobench-test-export-")
    try:
        doc = crafted()
        path = os.path.join(tmp, "crafted.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        check_csv(path, copy.deepcopy(doc))
        check_bmf(path, doc)
        check_gab(path, tmp)
        check_hgrm_crafted(path, doc)
        check_v1(tmp, doc)
        check_hgrm_loadgen(tmp)
        check_errors(tmp)
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
