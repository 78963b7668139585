#!/usr/bin/env python3
"""test_browser.py — the report page of a real run, as headless Chromium shows
it (driven through chromedriver by scripts/chromium.py):

  - a tiny scenario run end to end with the real binaries (scripts/bench: two
    servers, two levels, two repetitions), which writes the page and prints
    its path;
  - in the browser: no console error, nothing loaded but the page itself,
    every chart drawn with a non-zero size and its lines inside it, the
    per-level table's rows exactly the run's servers and levels, a click on
    a heading sorts the table; scripts/report --screenshot saves the whole
    page (kept under the build folder: tests/report/report-browser.png) or its
    top;
  - the same run with hostile strings in every field the page shows: still no
    console error and no element made from them;
  - against a baseline (the run itself): the verdict's rows, no regression;
  - a page with a script error is caught, so "no console error" means something.

Exits 77 (skipped) with one line when Chromium or chromedriver is missing
(`scripts/deps --browser`) or the binaries are not built.
"""
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
sys.path.insert(0, os.path.join(SOURCE or "", "scripts"))
sys.path.insert(0, os.path.join(SOURCE or "", "tests", "bench"))
from page import HOSTILE, hostile  # noqa: E402
from test_e2e import NEEDED, run_tiny  # noqa: E402

# What the page looks like to the browser, in one call.
INSPECT = """
var figs = Array.prototype.map.call(document.querySelectorAll('figure[data-chart]'),
  function (f) {
    var svg = f.querySelector('svg'), r = svg ? svg.getBoundingClientRect() : null;
    var lines = svg ? svg.querySelectorAll('path') : [];
    var inside = 0;
    Array.prototype.forEach.call(lines, function (p) {
      var b = p.getBoundingClientRect();
      if ((b.width > 0 || b.height > 0) && b.left >= r.left - 1 && b.right <= r.right + 1 &&
          b.top >= r.top - 1 && b.bottom <= r.bottom + 1) inside++;
    });
    return {chart: f.getAttribute('data-chart'), width: r ? r.width : 0,
            height: r ? r.height : 0, paths: lines.length, inside: inside};
  });
var rows = Array.prototype.map.call(document.querySelectorAll('#levels tbody tr'),
  function (tr) { return [tr.getAttribute('data-server'), tr.getAttribute('data-level'),
                          tr.cells[0].textContent, tr.cells[1].textContent]; });
return {figures: figs, rows: rows, resources: performance.getEntriesByType('resource').length,
        imgs: document.querySelectorAll('img, iframe, object, embed').length,
        title: document.title, text: document.body.innerText};
"""

SORT = """
var want = arguments[0];
var th = Array.prototype.filter.call(document.querySelectorAll('#levels thead th'),
  function (h) { return h.textContent === want; })[0];
th.click();
var col = th.cellIndex;
function values() {
  return Array.prototype.map.call(document.querySelectorAll('#levels tbody tr'), function (tr) {
    var v = tr.cells[col].getAttribute('data-v'); return v === '' ? null : parseFloat(v); });
}
var up = values();
th.click();
return [up, values()];
"""


def skip(msg):
    print("skipped: " + msg)
    return 77


def run_bench(tmp):
    """A tiny real run; the page bench wrote and printed."""
    out, result, doc = run_tiny(tmp, "browser-tiny",
                                "the report page of a real run, in a real browser",
                                repetitions=2)
    page = [ln.split("report: ", 1)[1].strip() for ln in out.splitlines()
            if ln.startswith("report: ")]
    assert len(page) == 1 and page[0].endswith(".html"), "bench did not print the page"
    assert os.path.realpath(page[0]) == os.path.realpath(
        os.path.join(tmp, "results", "browser-tiny", doc["stamp"] + ".html")), page
    return doc, result, page[0]


def report(*args):
    r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "report")] +
                       list(args) + ["--build", BUILD], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip().splitlines()[0]


def png_size(path):
    """(width, height) from a PNG's header."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", head
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def check_page(b, path, doc, charts=6):
    b.open("file://" + os.path.abspath(path))
    errors = b.console_errors()
    assert errors == [], errors
    got = b.run(INSPECT)
    assert got["resources"] == 0 and got["imgs"] == 0, got
    figs = got["figures"]
    assert len(figs) == charts, [f["chart"] for f in figs]
    for f in figs:
        assert f["width"] > 300 and f["height"] > 150, f
        assert f["paths"] > 0 and f["inside"] > 0, f
    want = [[s["server"], str(lv)] for s in doc["series"] for lv in doc["levels"]]
    assert [r[:2] for r in got["rows"]] == want, (got["rows"], want)
    assert [[r[2], r[3]] for r in got["rows"]] == want, got["rows"]
    return got


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    import chromium
    if chromium.missing():
        return skip("%s not installed (scripts/deps --browser installs them)" %
                    " and ".join(chromium.missing()))
    missing = [n for n in NEEDED if not os.access(os.path.join(BUILD, n), os.X_OK)]
    if missing:
        return skip("not built yet: %s" % ", ".join(missing))
    tmp = tempfile.mkdtemp(prefix="corobench-test-browser-")
    try:
        doc, result, page = run_bench(tmp)
        with chromium.Browser() as b:
            got = check_page(b, page, doc)
            print("ok: %d charts drawn (%s), %d rows, no console error, nothing fetched" % (
                len(got["figures"]), ", ".join("%s %dx%d" % (f["chart"], f["width"],
                                                            f["height"])
                                               for f in got["figures"]), len(got["rows"])))
            up, down = b.run(SORT, "req/s")
            nums = [v for v in up if v is not None]
            assert nums == sorted(nums) and down[:len(nums)] == sorted(nums, reverse=True), \
                (up, down)
            print("ok: sorted by req/s, both ways")
            # scripts/report --screenshot: the whole page, or its top
            shot = os.path.join(BUILD, "tests", "report", "report-browser.png")
            os.makedirs(os.path.dirname(shot), exist_ok=True)
            height = b.run("return document.documentElement.scrollHeight")
            report(result, "-o", os.path.join(tmp, "shot.html"), "--screenshot", shot)
            assert png_size(shot) == (1280, height), (png_size(shot), height)
            top = os.path.join(tmp, "top.png")
            report(result, "-o", os.path.join(tmp, "shot.html"), "--screenshot", top,
                   "--screenshot-height", "900")
            assert png_size(top) == (1280, 900), png_size(top)
            print("ok: screenshot %s (%dx%d, %d bytes)" % (shot, 1280, height,
                                                          os.path.getsize(shot)))

            bad = hostile(doc)
            bad_path = os.path.join(tmp, "hostile.json")
            with open(bad_path, "w") as f:
                json.dump(bad, f)
            hp = report(bad_path)
            got = check_page(b, hp, bad)
            assert ("purpose " + HOSTILE) in got["text"], got["text"][:400]
            print("ok: hostile strings shown as text, no console error")

            vp = report(result, result, "-o", os.path.join(tmp, "verdict.html"))
            got = check_page(b, vp, doc)
            n = b.run("return document.querySelectorAll('#verdict table.verdict tbody tr')"
                      ".length")
            assert n == len(doc["series"]) * len(doc["levels"]), n
            assert "against the baseline: no regression" in got["text"], got["text"][:600]
            print("ok: the verdict against a baseline, %d rows" % n)

            broken = os.path.join(tmp, "broken.html")
            with open(broken, "w") as f:
                f.write("<!DOCTYPE html><title>x</title><script>no_such_function();</script>")
            b.open("file://" + broken)
            assert any("no_such_function" in e for e in b.console_errors()), \
                "a script error went unseen"
            print("ok: a page's script error is seen")
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
