#!/usr/bin/env python3
"""test_page.py — scripts/report's page, read as HTML without a browser (the
browser test is test_browser.py), from a crafted result whose strings carry
markup:

  - self-contained: the only script is the page's own (inline), no element
    loads anything (every href a fragment or a data: download), a
    Content-Security-Policy that forbids loading;
  - escaped: each hostile string from the result shows as text and adds no
    element or attribute;
  - complete: every chart scripts/plot draws is inline SVG with ids unique in
    the page; the per-level table has one row per server and level, gaps too;
    each warning of the run is listed (a crash, the series' errors and warnings,
    a saturated load generator core, a rate not kept, failed requests);
    the exports are what scripts/export writes;
  - with a baseline, scripts/compare's verdict and its rows; a baseline compare
    refuses: exit 2, its message, no page;
  - a rate sweep: the hockey stick after the throughput chart, each server's
    knee with its spread, whether each rate was kept, the uncorrected p99,
    and a rate not kept (by loadgen's verdict) among the warnings.

Python 3 standard library only.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE, "tests", "bench"))
from page import HOSTILE, Page, hostile  # noqa: E402
from test_converter import crafted, rate_crafted  # noqa: E402


def report(*args):
    cmd = [sys.executable, os.path.join(SOURCE, "scripts", "report")] + list(args)
    if BUILD:
        cmd += ["--build", BUILD]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def charts_drawn():
    return bool(shutil.which("gnuplot") and BUILD and
                os.access(os.path.join(BUILD, "plots", "result2dat"), os.X_OK))


def main():
    tmp = tempfile.mkdtemp(prefix="corobench-test-page-")
    try:
        doc = hostile(crafted())
        res_dir = os.path.join(tmp, "results", "crafted")
        os.makedirs(res_dir)
        path = os.path.join(res_dir, "20260101T000000Z.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        rc, out, err = report(path)
        assert rc == 0, err
        page_path = os.path.join(res_dir, "20260101T000000Z.html")
        assert out.strip().endswith("20260101T000000Z.html"), out
        with open(page_path, encoding="utf-8") as f:
            text = f.read()
        page = Page(text)

        # self-contained, and nothing from the result became markup
        tags = [t for t, _ in page.elements]
        assert tags.count("script") == 1 and not page.elements[tags.index("script")][1], \
            "one inline script, no src"
        assert "img" not in tags and "iframe" not in tags and "link" not in tags, set(tags)
        for tag, attrs in page.elements:
            for k, v in attrs.items():
                assert not k.startswith("on"), (tag, k, v)
                if k in ("href", "xlink:href", "src"):
                    assert v.startswith(("#", "data:")), (tag, k, v)
        csp = [a for t, a in page.elements if t == "meta" and
               a.get("http-equiv") == "Content-Security-Policy"]
        assert csp and "default-src 'none'" in csp[0]["content"], csp
        assert tmp not in text, "the page names a folder of this machine"
        for where in ("purpose ", "host", "cpu", "loadgen", "warning ", "error ", "version",
                      "coro"):
            assert where + HOSTILE in page.text, where
        print("ok: self-contained, every string from the result escaped")

        # one row per server and level, in the run's order, gaps included
        want = [(s["server"], str(lv)) for s in doc["series"] for lv in doc["levels"]]
        assert page.rows == want, (page.rows, want)
        w = page.text[page.text.index("Warnings"):]
        for needle in ("status crashed", "killed by SIGSEGV during repetition 1 at c=10",
                       "error " + HOSTILE, "warning " + HOSTILE,
                       "load generator's core was above 90% busy (median) at c=1 (95%)",
                       "target rate was not kept at c=1", "failed requests at c=1 (3 failed"):
            assert needle in w, needle
        print("ok: %d table rows, warnings listed" % len(page.rows))

        # every chart inline, ids unique in the page
        figures = [a["data-chart"] for t, a in page.elements if t == "figure"]
        if charts_drawn():
            assert figures == ["throughput", "cost", "mean", "longest", "percentiles",
                               "distribution"], figures
            assert tags.count("svg") == len(figures), tags.count("svg")
            ids = [a["id"] for _, a in page.elements if "id" in a]
            assert len(ids) == len(set(ids)), "ids repeat"
            print("ok: %d charts inline" % len(figures))
        else:
            assert not figures and "charts not drawn" in page.text
            print("charts not checked: gnuplot or result2dat missing (the page says so)")

        # the exports are scripts/export's
        links = {a["download"]: a["href"] for t, a in page.elements if t == "a" and
                 "download" in a}
        csv_name = [n for n in links if n.endswith(".csv")][0]
        got = base64.b64decode(links[csv_name].split(",", 1)[1]).decode("utf-8")
        r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "export"), path,
                            "--format", "csv"], stdout=subprocess.PIPE, check=True)
        assert got == r.stdout.decode("utf-8"), "the CSV download differs from scripts/export"
        assert any(n.endswith(".bmf.json") for n in links) and \
            any(n.endswith(".smaller.json") for n in links) and \
            any(n.endswith(".hgrm") for n in links), sorted(links)
        print("ok: %d downloads" % len(links))

        # against a baseline: compare's verdict; the new run lost half its req/s
        base = os.path.join(tmp, "base.json")
        with open(base, "w") as f:
            json.dump(crafted(), f)
        slow = crafted()
        for pt in slow["series"][0]["points"]:
            for fig in pt["repetitions"] + ([pt["median"]] if pt["median"] else []):
                fig["rps"] /= 2
        slow_path = os.path.join(tmp, "slow.json")
        with open(slow_path, "w") as f:
            json.dump(slow, f)
        rc, out, err = report(slow_path, base, "-o", os.path.join(tmp, "v.html"))
        assert rc == 0, err
        with open(os.path.join(tmp, "v.html"), encoding="utf-8") as f:
            vp = Page(f.read())
        assert "against the baseline: REGRESSION" in vp.text, vp.text[:500]
        verdict_rows = [(a["data-server"], a["data-level"]) for t, a in vp.elements
                        if t == "tr" and "data-server" in a and "data-level" in a]
        assert ("coro", "1") in verdict_rows and verdict_rows.count(("coro", "1")) == 2, \
            verdict_rows  # the level table's row and the verdict's
        # (the crafted host has no machine-id: the within-run ratio decides)
        assert "regression: coro/async c=1: ratio -50.0%" in vp.text, vp.text[-3000:]
        print("ok: the verdict against a baseline")

        other = crafted()
        other["scenario"] = "another"
        opath = os.path.join(tmp, "other.json")
        with open(opath, "w") as f:
            json.dump(other, f)
        out_html = os.path.join(tmp, "refused.html")
        rc, out, err = report(path, opath, "-o", out_html)
        assert rc == 2 and "different scenarios" in err and not os.path.exists(out_html), \
            (rc, err)
        rc, out, err = report(os.path.join(tmp, "nosuch.json"))
        assert rc == 1 and "nosuch.json" in err, (rc, err)
        print("ok: unusable input refused")

        # a rate sweep: its charts, knees, columns and warnings
        rdoc = rate_crafted()
        rpath = os.path.join(res_dir, "20260101T000002Z.json")
        with open(rpath, "w") as f:
            json.dump(rdoc, f)
        rc, out, err = report(rpath)
        assert rc == 0, err
        with open(rpath[:-5] + ".html", encoding="utf-8") as f:
            rp = Page(f.read())
        figures = [a["data-chart"] for t, a in rp.elements if t == "figure"]
        if charts_drawn():
            assert figures[:2] == ["throughput", "hockey"], figures
        knees = rp.text[rp.text.index("The knee: the highest rate"):]
        knees = knees[:knees.index("Every server and level")]
        for needle in ("knee, req/s offered", "coro", "200", "100–400", "200, 100, 400",
                       "the rates above it left the limit or were not kept"):
            assert needle in knees, (needle, knees)
        assert "requests/s offered, over 4, 8, 32 connections" in rp.text, rp.text[:3000]
        heads = rp.text[rp.text.index("Medians over the repetitions (the run"):]
        for needle in ("kept", "p99 uncorrected ms", "late", "from each request's intended"):
            assert needle in heads, needle
        w = rp.text[rp.text.index("Warnings"):]
        assert "target rate was not kept at rate=400 (320 req/s started of 400)" in w, w[:2000]
        assert "rate=100" not in w.split("Charts")[0], w[:2000]
        print("ok: a rate sweep's page")
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
