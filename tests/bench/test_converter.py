#!/usr/bin/env python3
"""test_converter.py — result2dat on a crafted result (corobench/result/v2,
and its v1 form): the data files hold the right medians and min–max ranges, a
level without data becomes a gap, the distribution is the median over the
repetitions' histograms at each percentile (the merged histogram of a result
that has only that), the cost file holds CPU per request (median over median req/s,
min–max of the repetitions' ratios) in the bands the result has — the server's
user and system shares of its CPU, its CPU where a point has no split, the
upstream's, the load generator's — with their tops in the stack and the total,
meta.gp carries the titles, Little's bound, the cost bands, the instructions
per request and which series have cost rows; a rate sweep's columns (target,
uncorrected percentiles, kept), its knee file and its uncorrected
distribution; the schema checker accepts the crafted files and names the
field of each broken variant (the v2 cost fields and the rate sweep's among
them); scripts/plot draws PNG and SVG from them, the hockey stick for the
rate sweep."""
import copy
import json
import math
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


def figures(rps, mean, mx, p50=None, split=True):
    """One repetition's figures. The cost: server 0.5 cores (0.2 user, 0.3
    system; no split with split=False, as a level with too few clock ticks),
    upstream 0.1, loadgen 0.2 (0.05 user, 0.15 system); per request one read
    and one write call, 0.5 voluntary and 0.1 involuntary context switches."""
    p50 = p50 if p50 is not None else mean * 0.9
    return {"requests": 100, "complete": 100, "failed": 0,
            "failures": {k: 0 for k in check_result.FAILURE_KINDS}, "non2xx": 0,
            "duration_s": 1.0, "rps": rps, "transfer_kbps": 10.0, "min_ms": p50 * 0.5,
            "mean_ms": mean, "p50_ms": p50, "p90_ms": min(mean * 1.2, mx),
            "p99_ms": min(mean * 1.5, mx), "p999_ms": min(mean * 1.8, mx), "max_ms": mx,
            "loadgen_cpu": 0.2, "loadgen_core_busy": 0.3, "server_cpu": 0.5,
            "server_cpu_user": 0.2 if split else None, "server_cpu_sys": 0.3 if split else None,
            "upstream_cpu": 0.1, "loadgen_cpu_user": 0.05, "loadgen_cpu_sys": 0.15,
            "server_syscr": float(rps), "server_syscw": float(rps),
            "server_csw_voluntary": rps * 0.5, "server_csw_involuntary": rps * 0.1}


def median(vals):
    vals = sorted(v for v in vals if v is not None)
    return vals[len(vals) // 2] if vals else None


def point(level, reps, hist):
    med = {k: median(r[k] for r in reps) for k in check_result.INT_FIGS +
           check_result.NUM_FIGS + check_result.OPT_FIGS + check_result.COST_FIGS}
    med["failures"] = {k: 0 for k in check_result.FAILURE_KINDS}
    return {"level": level, "gap": None, "repetitions": reps, "median": med,
            "histogram": {"unit": "us", "buckets": hist}}


def crafted():
    s1 = [point(1, [figures(48, 20.5, 22), figures(50, 20.0, 21), figures(49, 20.2, 30)],
                [[20000, 90], [21000, 9], [30000, 1]]),
          point(10, [figures(480, 20.8, 25), figures(470, 21.0, 26), figures(490, 20.4, 40)],
                [[20000, 900], [25000, 99], [40000, 1]])]
    s2 = [point(1, [figures(45, 22.0, 23, split=False)] * 3, [[22000, 300]]),
          {"level": 10, "gap": "crashed", "repetitions": [], "median": None,
           "histogram": {"unit": "us", "buckets": []}}]
    base = {"server": "", "kind": "coro", "app": "proxy", "workers": 1, "path": "/",
            "command": None, "version": None, "loadgen_version": None, "status": "ok",
            "verified": {"ok": True, "detail": "x", "url_path": "/"}, "crashes": [],
            "errors": [], "warnings": []}
    a = dict(base, server="coro", points=s1,
             icount={"ir_per_request": 49541.2, "case": "coro:proxy", "n1": 500, "n2": 2500,
                     "seconds": 3.1, "note": None})
    b = dict(base, server="async", kind="async", app="proxy-async", status="crashed",
             crashes=[{"repetition": 1, "level": 10, "exit": "killed by SIGSEGV"}], points=s2,
             icount={"ir_per_request": None, "case": "async:proxy-async", "n1": 500,
                     "n2": 2500, "seconds": None, "note": "not measured (--no-icount)"})
    return {"schema": "corobench/result/v2", "scenario": "crafted",
            "scenario_file": "crafted.json", "scenario_doc": {"plot_level": 10},
            "stamp": "20260101T000000Z", "started": "2026-01-01T00:00:00+00:00",
            "finished": "2026-01-01T00:01:00+00:00", "complete": True,
            "git": {"commit": "0" * 40, "dirty": False},
            "host": {"hostname": "h", "cpu_model": "Test \"CPU\"", "cores": 2,
                     "kernel": "6.1", "allowed_cpus": [0, 1]},
            "tools": {"loadgen": "loadgen 0.1.0"},
            "pinning": {"server": [0], "loadgen": [1], "upstream": None, "taskset": True,
                        "allowed_cpus": [0, 1]},
            "upstream": {"delay_ms": 20, "size": 1024, "version": None},
            "levels": [1, 10], "series": [a, b],
            "cost_method": {"cpu": "schedstat", "clk_tck": 100, "sample_interval_s": 0.1,
                            "split_min_ticks": 10}}


def hist_of(samples):
    """A histogram object of samples in µs (each value its own bucket)."""
    counts = {}
    for v in samples:
        counts[v] = counts.get(v, 0) + 1
    return {"unit": "us", "buckets": [[k, n] for k, n in sorted(counts.items())]}


def rate_figures(target, rps, p99, kept=True):
    """One repetition's figures at one rate of a rate sweep."""
    f = figures(rps, p99 / 2, p99 * 1.5, p50=p99 / 3)
    f.update({"target_rps": target, "sent_rps": rps, "rate_kept": kept, "late": 3,
              "late_busy": 1, "late_p99_ms": 0.2, "late_max_ms": 2.0, "drain_s": 0.01,
              "mean_uncorrected_ms": p99 / 4, "p50_uncorrected_ms": p99 / 4,
              "p90_uncorrected_ms": p99 / 3, "p99_uncorrected_ms": p99 / 2,
              "p999_uncorrected_ms": p99 / 1.8, "max_uncorrected_ms": p99})
    f["p99_ms"], f["p999_ms"] = p99, p99 * 1.2
    return f


def rate_crafted():
    """A rate sweep of one server: 100, 200, 400 requests/s, three
    repetitions; p99 10, 12, then 50 ms (400 not kept): the knee is 200."""
    doc = crafted()
    doc["levels"] = [100, 200, 400]
    doc["sweep"] = "rate"
    doc["connections"] = None
    doc["scenario_doc"] = {"plot_level": 400, "knee_factor": 2, "rates": [100, 200, 400],
                           "rate_connections": [4, 8, 32]}
    pts = []
    for rate, conns, p99s, kept in ((100, 4, (10, 11, 9), True), (200, 8, (12, 30, 13), True),
                                    (400, 32, (50, 60, 15), False)):
        reps = [rate_figures(rate, rate * (1 if kept else 0.8), p) for p in p99s]
        pt = point(rate, reps, [[1000 * p99s[0], 300]])
        for k in check_result.RATE_FIGS:
            pt["median"][k] = median(r[k] for r in reps)
        pt["median"]["rate_kept"] = kept
        for r in reps:
            r["rate_kept"] = kept
        pt.update(connections=conns, streams=None, in_flight=conns, target_rps=rate,
                  histograms=[hist_of([1000 * p] * 100) for p in p99s],
                  histograms_uncorrected=[hist_of([500 * p] * 100) for p in p99s])
        pts.append(pt)
    s = dict(doc["series"][0], points=pts,
             knee={"factor": 2, "unloaded_p99_ms": 10, "rate": 200, "rps": 200, "p99_ms": 13,
                   "beyond": True, "repetitions": [200, 100, 400], "min": 100, "max": 400})
    doc["series"] = [s]
    return doc


def as_v1(doc):
    """The crafted result as a corobench/result/v1 file: no cost method, no
    icount, none of v2's cost figures."""
    d = copy.deepcopy(doc)
    d["schema"] = "corobench/result/v1"
    del d["cost_method"]
    for s in d["series"]:
        del s["icount"]
        for p in s["points"]:
            for f in p["repetitions"] + ([p["median"]] if p["median"] else []):
                for k in check_result.COST_FIGS:
                    f.pop(k, None)  # a repetition may be listed twice
    return d


def rows(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            # numbers, and quoted labels (cost-N.dat's last column) as strings
            out.append([x.strip('"') if x.startswith('"') else float(x)
                        for x in line.split()] if line.strip() else None)
    return out


def convert(conv, doc, path, out):
    """Writes doc to path and result2dat's files into the new folder out."""
    with open(path, "w") as f:
        json.dump(doc, f)
    os.makedirs(out)
    r = subprocess.run([conv, path, out], stderr=subprocess.PIPE, check=False)
    assert r.returncode == 0, r.stderr


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    conv = os.path.join(BUILD, "plots", "result2dat")
    tmp = tempfile.mkdtemp(prefix="corobench-test-conv-")
    try:
        doc = crafted()
        # the schema checker accepts it ...
        c = check_result.Checker()
        c.check(doc, complete=False)
        assert not c.problems, c.problems
        # ... and names the field of each broken variant
        broken = [
            (lambda d: d.__setitem__("schema", "x"), "schema"),
            (lambda d: d["series"][0]["points"][0]["repetitions"][0].__setitem__("rps", "1"),
             "series[0].points[0].repetitions[0].rps"),
            (lambda d: d["series"][1]["points"][1].__setitem__("gap", None),
             "series[1].points[1].gap"),
            (lambda d: d["series"][0].__setitem__("points", d["series"][0]["points"][:1]),
             "series[0].points"),
            (lambda d: d["series"][1].__setitem__("crashes", []), "series[1].crashes"),
            (lambda d: d["git"].__setitem__("commit", "abc"), "git.commit"),
            (lambda d: d["pinning"].__setitem__("server", []), "pinning.server"),
            (lambda d: d["series"][0]["points"][0]["histogram"]["buckets"].reverse(),
             "series[0].points[0].histogram.buckets[1]"),
            (lambda d: d["series"][0]["points"][0]["repetitions"][0].__setitem__("max_ms", 1.0),
             "series[0].points[0].repetitions[0]: latencies do not rise"),
            (lambda d: d["series"][0].__setitem__("style", "green"), "series[0].style"),
            (lambda d: d["series"][0].__setitem__("runtime", 3), "series[0].runtime"),
            # the v2 cost fields
            (lambda d: d["series"][0]["points"][0]["repetitions"][0].pop("upstream_cpu"),
             "series[0].points[0].repetitions[0].upstream_cpu"),
            (lambda d: d["series"][0]["points"][0]["median"].__setitem__("server_syscr", -1),
             "series[0].points[0].median.server_syscr"),
            (lambda d: d["series"][0]["points"][0]["repetitions"][1].__setitem__(
                "server_cpu_sys", None), "series[0].points[0].repetitions[1].server_cpu_user"),
            (lambda d: d["series"][0]["points"][0]["repetitions"][2].__setitem__(
                "server_cpu_user", 0.3), "series[0].points[0].repetitions[2].server_cpu_user"),
            (lambda d: d["series"][0]["points"][1]["repetitions"][0].__setitem__(
                "loadgen_cpu_sys", 0.5), "series[0].points[1].repetitions[0].loadgen_cpu_user"),
            (lambda d: d.pop("cost_method"), "cost_method"),
            (lambda d: d["cost_method"].__setitem__("cpu", "guess"), "cost_method.cpu"),
            (lambda d: d["series"][0].pop("icount"), "series[0].icount"),
            (lambda d: d["series"][0]["icount"].__setitem__("case", "async:proxy"),
             "series[0].icount.case"),
            (lambda d: d["series"][1]["icount"].__setitem__("note", None),
             "series[1].icount.note"),
            (lambda d: d["series"][0]["icount"].__setitem__("ir_per_request", -3),
             "series[0].icount.ir_per_request"),
            (lambda d: d["series"][0].update(kind="nginx"), "series[0].icount"),
        ]
        for mutate, field in broken:
            d = copy.deepcopy(doc)
            mutate(d)
            c = check_result.Checker()
            c.check(d)
            assert any(p.startswith(field) for p in c.problems), (field, c.problems)
        c = check_result.Checker()
        c.check(doc, complete=True)
        assert not c.problems, c.problems  # a crashed series may have gaps
        # a v1 file (no cost method, icount or v2 cost figures) is still valid
        c = check_result.Checker()
        c.check(as_v1(doc), complete=True)
        assert not c.problems, c.problems

        res_dir = os.path.join(tmp, "results", "crafted")
        os.makedirs(res_dir)
        res = os.path.join(res_dir, "20260101T000000Z.json")
        out = os.path.join(tmp, "dat")
        convert(conv, doc, res, out)
        s1 = rows(os.path.join(out, "series-1.dat"))
        assert len(s1) == 2, s1
        lvl, rps, lo, hi = s1[0][:4]
        assert (lvl, rps, lo, hi) == (1, 49, 48, 50), s1[0]
        assert s1[1][5:7] == [20.4, 21.0], s1[1]          # mean min, max
        assert s1[1][7:10] == [26, 25, 40], s1[1]         # longest median, min, max
        assert len(s1[0]) == 22, s1[0]
        assert all(math.isnan(x) for x in s1[0][17:22]), s1[0]   # no rate columns
        s2 = rows(os.path.join(out, "series-2.dat"))
        assert s2[0][0] == 1 and s2[1] is None, s2       # the crash is a gap
        # level 10, only the merged histogram (1000 samples: 900 at 20 ms, 99
        # at 25, 1 at 40): its percentiles, from 0 to the maximum
        d1 = rows(os.path.join(out, "dist-1.dat"))

        def at(d, pct):
            return next(x for x in d if x[0] >= pct)
        assert d1[0][0] == 0 and d1[0][1] == 1 and d1[-1][1] == 1000, (d1[0], d1[-1])
        assert at(d1, 50)[2] == 20 and at(d1, 95)[2] == 25 and at(d1, 99.8)[2] == 25, d1
        assert d1[-1][2] == 40 and math.isnan(d1[-1][3]), d1[-1]
        assert all(a[1] <= b[1] and a[2] <= b[2] for a, b in zip(d1, d1[1:])), d1
        # with each repetition's histogram, the rule of every chart: at each
        # percentile the median over the repetitions. Here 10, 20 and 30 ms
        # flat, with a 2 % tail at 90 ms in the third: 20 ms at every
        # percentile, the maximum too (merged, the top 0.7 % would be 90)
        mdoc = copy.deepcopy(doc)
        mpt = mdoc["series"][0]["points"][1]
        mpt["histograms"] = [hist_of([10000] * 100), hist_of([20000] * 100),
                             hist_of([30000] * 98 + [90000] * 2)]
        mres, mout = os.path.join(tmp, "median.json"), os.path.join(tmp, "datm")
        convert(conv, mdoc, mres, mout)
        dm = rows(os.path.join(mout, "dist-1.dat"))
        assert len(dm) == 240 and all(x[2] == 20 for x in dm), dm
        assert dm[-1][1] == 100, dm[-1]                    # 1/(1-p) up to 100 samples
        assert rows(os.path.join(out, "dist-2.dat")) == []   # no data at level 10
        # CPU per request in five bands at 48..50 req/s: server 0.5 cores (0.2
        # user + 0.3 system, unsplit in series 2), upstream 0.1, loadgen 0.2
        us = lambda cores, rps: cores / rps * 1e6  # noqa: E731
        c1 = rows(os.path.join(out, "cost-1.dat"))
        assert len(c1) == 2 and len(c1[0]) == 1 + 5 * 3 + 5 + 3 + 2, c1
        lvl, user, user_lo, user_hi, sys_, _, _, unsplit, _, _, up, up_lo, up_hi, lg = c1[0][:14]
        assert lvl == 1 and abs(user - us(0.2, 49)) < 1 and abs(sys_ - us(0.3, 49)) < 1, c1[0]
        assert abs(user_lo - us(0.2, 50)) < 1 and abs(user_hi - us(0.2, 48)) < 1, c1[0]
        assert unsplit == 0, c1[0]                    # the split holds all of it
        assert abs(up - us(0.1, 49)) < 1 and abs(lg - us(0.2, 49)) < 1, c1[0]
        assert abs(up_lo - us(0.1, 50)) < 1 and abs(up_hi - us(0.1, 48)) < 1, c1[0]
        tops, total = c1[0][16:21], c1[0][21:24]
        for got, want in zip(tops, (0.2, 0.5, 0.5, 0.6, 0.8)):
            assert abs(got - us(want, 49)) < 1, (tops, want)
        assert abs(total[0] - us(0.8, 49)) < 1 and abs(total[1] - us(0.8, 50)) < 1 and \
            abs(total[2] - us(0.8, 48)) < 1, total
        c2 = rows(os.path.join(out, "cost-2.dat"))
        assert c2[1] is None                          # the crash is a gap
        assert math.isnan(c2[0][1]) and math.isnan(c2[0][4]), c2[0]   # no split ...
        assert abs(c2[0][7] - us(0.5, 45)) < 1, c2[0]                 # ... all unsplit
        assert [round(x) for x in c2[0][16:21]] == [0, 0] + \
            [round(us(x, 45)) for x in (0.5, 0.6, 0.8)], c2[0]
        meta = open(os.path.join(out, "meta.gp")).read()
        for want in ("ncost = 5", 'cost_title[1] = "server, user"',
                     'cost_title[2] = "server, system"',
                     'cost_title[3] = "server, unsplit (under 10 clock ticks)"',
                     'cost_title[4] = "upstream stub"', 'cost_title[5] = "load generator"',
                     'cost_key[3] = "server_cpu"', "hascost[1] = 1", "hascost[2] = 1",
                     'icount[1] = "49,541 instructions/request (callgrind, c = 1)"',
                     'icount[2] = ""', "level_ratio_min = 10"):
            assert want in meta, (want, meta)
        # the highest stack: series 2 at 45 req/s
        assert abs(float(meta.split("cost_max = ")[1].split()[0]) - us(0.8, 45)) < 1, meta
        # the y axis fits the levels with 10 or more requests in flight (here
        # level 10, at most us(0.8, 470) with its 8 % headroom); the bars of
        # level 1, ten times taller, are cut at its top and carry their total
        ytop = float(meta.split("cost_ytop = ")[1].split()[0])
        assert abs(ytop - us(0.8, 470) * 1.08) < 1, meta
        assert "cost_clipped = 2" in meta and "fit_in_flight = 10" in meta, meta
        assert abs(c1[0][24] - us(0.8, 49)) < 1 and c1[0][25] == "16,327", c1[0]
        assert math.isnan(c1[1][24]) and c1[1][25] == "", c1[1]      # level 10 fits
        assert abs(c2[0][24] - us(0.8, 45)) < 1 and c2[0][25] == "17,778", c2[0]
        # a streams sweep over 10 connections: level 1 is 10 requests in
        # flight, so every bar fits and none is cut
        sdoc = copy.deepcopy(doc)
        sdoc.update(sweep="streams", connections=10)
        sres, sout = os.path.join(tmp, "streams.json"), os.path.join(tmp, "dats")
        convert(conv, sdoc, sres, sout)
        smeta = open(os.path.join(sout, "meta.gp")).read()
        assert "cost_clipped = 0" in smeta and "in_flight = 10" in smeta, smeta
        assert abs(float(smeta.split("cost_ytop = ")[1].split()[0]) - us(0.8, 45) * 1.08) < 1
        assert all(math.isnan(r[24]) and r[25] == "" for r in
                   rows(os.path.join(sout, "cost-1.dat")) if r), smeta
        # the v1 form: the server's CPU unsplit, the load generator's, no icount
        v1, out1 = os.path.join(tmp, "v1.json"), os.path.join(tmp, "dat1")
        convert(conv, as_v1(doc), v1, out1)
        meta1 = open(os.path.join(out1, "meta.gp")).read()
        for want in ("ncost = 2", 'cost_title[1] = "server (unsplit)"',
                     'cost_title[2] = "load generator"', 'icount[1] = ""'):
            assert want in meta1, (want, meta1)
        c1 = rows(os.path.join(out1, "cost-1.dat"))
        assert len(c1[0]) == 1 + 2 * 3 + 2 + 3 + 2 and abs(c1[0][1] - us(0.5, 49)) < 1, c1[0]
        # a result without a cost figure: no cost rows, ncost = 0
        nocost = copy.deepcopy(doc)
        for s in nocost["series"]:
            for pt in s["points"]:
                for f in pt["repetitions"] + ([pt["median"]] if pt["median"] else []):
                    for k in ("server_cpu", "loadgen_cpu") + check_result.COST_FIGS:
                        f[k] = None
        nres, out2 = os.path.join(tmp, "nocost.json"), os.path.join(tmp, "dat2")
        convert(conv, nocost, nres, out2)
        assert rows(os.path.join(out2, "cost-1.dat")) == []
        meta2 = open(os.path.join(out2, "meta.gp")).read()
        assert "ncost = 0" in meta2 and "hascost[1] = 0" in meta2, meta2
        for want in ('nseries = 2', 'title[1] = "coro (proxy)"',
                     'title[2] = "async (proxy-async) — crashed"', "delay_ms = 20",
                     "plot_level = 10", "hasdist[2] = 0", "set xtics (1, 10)",
                     'Test \\"CPU\\"'):
            assert want in meta, (want, meta)
        assert "lstyle[1] = 1" in meta and "lstyle[2] = 2" in meta and "styled = 0" in meta

        # labelled rows: the style and runtime in the key, a colour family per
        # style (common.gp's 11.. implicit, 21.. explicit, 31.. unlabelled)
        sdoc = copy.deepcopy(doc)
        third = dict(copy.deepcopy(sdoc["series"][0]), server="nginx", kind="nginx",
                     icount=None)
        sdoc["series"].append(third)
        sdoc["series"][0].update(style="implicit", runtime="go1.19.8")
        sdoc["series"][1].update(style="explicit", runtime="Node.js v20")
        c = check_result.Checker()
        c.check(sdoc, complete=True)
        assert not c.problems, c.problems
        sres = os.path.join(res_dir, "20260101T000001Z.json")
        with open(sres, "w") as f:
            json.dump(sdoc, f)
        r = subprocess.run([conv, sres, out], stderr=subprocess.PIPE, check=False)
        assert r.returncode == 0, r.stderr
        meta = open(os.path.join(out, "meta.gp")).read()
        for want in ('title[1] = "coro (proxy, implicit, go1.19.8)"',
                     'title[2] = "async (proxy-async, explicit, Node.js v20) — crashed"',
                     'title[3] = "nginx (proxy)"', 'shorttitle[1] = "coro (proxy, implicit)"',
                     'shorttitle[2] = "async (proxy-async, explicit) — crashed"',
                     "lstyle[1] = 11", "lstyle[2] = 21",
                     "lstyle[3] = 31", "styled = 1"):
            assert want in meta, (want, meta)

        # a rate sweep: the open model's columns, the knee, the uncorrected
        # distribution; the checker names its broken fields
        rdoc = rate_crafted()
        c = check_result.Checker()
        c.check(rdoc, complete=True)
        assert not c.problems, c.problems
        for mutate, field in [
                (lambda d: d["series"][0]["points"][0]["repetitions"][0].pop("target_rps"),
                 "series[0].points[0].repetitions[0].target_rps"),
                (lambda d: d["series"][0]["points"][1]["repetitions"][1].__setitem__(
                    "rate_kept", "yes"), "series[0].points[1].repetitions[1].rate_kept"),
                (lambda d: d["series"][0]["points"][0].__setitem__("histograms", []),
                 "series[0].points[0].histograms"),
                (lambda d: d["series"][0]["points"][2].pop("histograms_uncorrected"),
                 "series[0].points[2].histograms_uncorrected"),
                (lambda d: d["series"][0]["knee"].__setitem__("rate", 300),
                 "series[0].knee.rate"),
                (lambda d: d["series"][0].pop("knee"), "series[0].knee"),
                (lambda d: d["series"][0]["points"][1].__setitem__("target_rps", 100),
                 "series[0].points[1].target_rps"),
                (lambda d: d.__setitem__("sweep", "rates"), "sweep")]:
            d = copy.deepcopy(rdoc)
            mutate(d)
            c = check_result.Checker()
            c.check(d)
            assert any(p.startswith(field) for p in c.problems), (field, c.problems)
        # ... and a concurrency sweep may not carry rate figures
        d = copy.deepcopy(doc)
        d["series"][0]["points"][0]["repetitions"][0]["target_rps"] = 100
        c = check_result.Checker()
        c.check(d)
        assert any(p.startswith("series[0].points[0].repetitions[0].target_rps")
                   for p in c.problems), c.problems
        rres = os.path.join(res_dir, "20260101T000002Z.json")
        rout = os.path.join(tmp, "datr")
        convert(conv, rdoc, rres, rout)
        r1 = rows(os.path.join(rout, "series-1.dat"))
        assert [x[17] for x in r1] == [100, 200, 400], r1            # the target
        assert [x[19] for x in r1] == [5, 6.5, 25], r1               # p99 uncorrected
        assert [x[21] for x in r1] == [1, 1, 0], r1                  # kept
        knee = open(os.path.join(rout, "knee-1.dat")).read()
        assert '200 13 "coro: knee 200 (100-400)"' in knee, knee
        meta = open(os.path.join(rout, "meta.gp")).read()
        # (the levels of a rate sweep are rates: every cost bar fits the axis)
        for want in ("rate_sweep = 1", "knee_factor = 2", "knee_limit[1] = 20",
                     'level_name = "rate"', "set xtics (100, 200, 400)", "cost_clipped = 0"):
            assert want in meta, (want, meta)
        dr = rows(os.path.join(rout, "dist-1.dat"))                 # rate 400: 50/60/15
        assert at(dr, 50)[2] == 50 and at(dr, 50)[3] == 25, dr
        # a concurrency sweep has no knee file and no rate in meta.gp
        assert not os.path.exists(os.path.join(out, "knee-1.dat"))
        assert "rate_sweep = 0" in open(os.path.join(out, "meta.gp")).read()

        # garbage in: a clear refusal, not a crash
        bad = os.path.join(tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"schema": "corobench/result/v1", "series": 3}')
        r = subprocess.run([conv, bad, out], stderr=subprocess.PIPE, check=False)
        assert r.returncode == 1 and b"series" in r.stderr, r.stderr

        if shutil.which("gnuplot"):
            r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "plot"), res,
                                "--build", BUILD], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, check=False)
            assert r.returncode == 0, r.stderr.decode()
            written = r.stdout.decode().split()
            for chart in ("throughput", "mean", "longest", "percentiles", "distribution",
                          "cost"):
                for fmt in ("png", "svg"):
                    p = os.path.join(res_dir, "20260101T000000Z-%s.%s" % (chart, fmt))
                    assert os.path.getsize(p) > 1000, p
                    assert any(w.endswith(os.path.basename(p)) for w in written), written
            with open(os.path.join(res_dir, "20260101T000000Z-throughput.svg")) as f:
                svg = f.read()
            assert "Little" in svg and "filled points" not in svg
            r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "plot"), sres,
                                "--build", BUILD, "--format", "svg"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, check=False)
            assert r.returncode == 0, r.stderr.decode()
            with open(os.path.join(res_dir, "20260101T000001Z-throughput.svg")) as f:
                svg = f.read()
            # the key says which colours are which style
            assert "implicit: blues/greens, filled points" in svg, svg[:2000]
            assert "coro (proxy, implicit, go1.19.8)" in svg
            with open(os.path.join(res_dir, "20260101T000000Z-cost.svg")) as f:
                svg = f.read()
            for want in ("coro (proxy)", "49,541 instructions/request", "server, system",
                         "server, unsplit (under 10 clock ticks)", "upstream stub",
                         "load generator", "total",
                         # level 1's cut bars: their totals, and the note that says why
                         "16,327", "17,778", "10 or more requests in flight"):
                assert want in svg, want
            # the rate sweep: the hockey stick with its knee, achieved against target
            r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "plot"), rres,
                                "--build", BUILD, "--format", "svg"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, check=False)
            assert r.returncode == 0, r.stderr.decode()
            assert "-hockey.svg" in r.stdout.decode(), r.stdout
            with open(os.path.join(res_dir, "20260101T000002Z-hockey.svg")) as f:
                svg = f.read()
            assert "coro: knee 200 (100-400)" in svg and "achieved requests/s" in svg
            with open(os.path.join(res_dir, "20260101T000002Z-throughput.svg")) as f:
                svg = f.read()
            assert "target: achieved = offered" in svg and "Little" not in svg
            with open(os.path.join(res_dir, "20260101T000002Z-distribution.svg")) as f:
                svg = f.read()
            assert "uncorrected" in svg and "median over repetitions" in svg
            # no hockey stick for a concurrency sweep
            assert not os.path.exists(os.path.join(res_dir, "20260101T000000Z-hockey.svg"))
            # a v1 result's cost chart: drawn, with the bands it has
            r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "plot"), v1,
                                "--build", BUILD, "--format", "svg", "--outdir", out1],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
            assert r.returncode == 0, r.stderr.decode()
            with open(os.path.join(out1, "v1-cost.svg")) as f:
                svg = f.read()
            assert "server (unsplit)" in svg and "server, user" not in svg
            # the v1 file has level 1's bars cut as well: their total has no
            # upstream stub, 0.7 cores at 49 req/s
            assert "14,286" in svg
            # without cost figures the other charts are drawn, the cost chart is not
            r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "plot"), nres,
                                "--build", BUILD, "--format", "svg", "--outdir", out2],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
            assert r.returncode == 0, r.stderr.decode()
            assert "nocost-throughput.svg" in r.stdout.decode(), r.stdout
            assert not any(ln.endswith("-cost.svg") for ln in r.stdout.decode().split()), \
                r.stdout
        else:
            print("gnuplot not installed: charts not drawn")
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
