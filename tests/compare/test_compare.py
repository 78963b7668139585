#!/usr/bin/env python3
"""tests/compare/test_compare.py — scripts/compare's verdicts and exit codes on
crafted results (better, worse, within noise, other host, schema mismatch,
missing levels, a crashed level, different scenarios, missing file; failed
requests and non-2xx answers on any host; a series, point or figure missing
from the new run; the yardstick ratios against nginx), its Markdown, JSON,
benchmark-JSON and calibration outputs; scripts/icount's callgrind parser
(totals and per-object self cost) and thresholds; scripts/trend's history
line; scripts/ratios' table of each row against our faster worker.

Every input is written by this file into a temporary folder: no server runs.
Python 3 standard library only.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("COROBENCH_SOURCE") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPARE = os.path.join(SOURCE, "scripts", "compare")
ICOUNT = os.path.join(SOURCE, "scripts", "icount")
TREND = os.path.join(SOURCE, "scripts", "trend")
RATIOS = os.path.join(SOURCE, "scripts", "ratios")

LEVELS = [1, 10, 100]
HOST = {"hostname": "bench-a", "cpu_model": "Test CPU", "cores": 2,
        "machine_id": "0123456789abcdef", "boot_id": "fedcba9876543210"}


def figures(rps, mean, p99, cpu=0.5):
    return {"requests": 10000, "complete": 10000, "failed": 0, "non2xx": 0,
            "failures": {"connect": 0}, "duration_s": 2.0, "rps": rps, "mean_ms": mean,
            "p50_ms": mean, "p90_ms": mean * 1.5, "p99_ms": p99, "p999_ms": p99 * 1.2,
            "max_ms": p99 * 2, "server_cpu": cpu}


def point(level, rps, scatter=0.005):
    """Three repetitions around rps, close together (a quiet machine)."""
    reps = [figures(rps * f, 10.0 / f, 20.0 / f) for f in (1 - scatter, 1.0, 1 + scatter)]
    return {"level": level, "gap": None, "repetitions": reps, "median": reps[1],
            "histogram": {"unit": "us", "buckets": []}}


def result(rps_by_server, scenario="ci", host=HOST, levels=LEVELS):
    series = []
    for name, kind, app in (("coro-hello", "coro", "hello"), ("async-hello", "async", "hello")):
        series.append({"server": name, "kind": kind, "app": app, "status": "ok",
                       "errors": [], "warnings": [],
                       "points": [point(lv, rps_by_server[name] * lv) for lv in levels]})
    return {"schema": "corobench/result/v1", "scenario": scenario, "stamp": "20260101T000000Z",
            "complete": True, "git": {"commit": "a" * 40, "dirty": False}, "host": dict(host),
            "scenario_doc": {"name": scenario, "levels": levels, "seconds": 2},
            "levels": levels, "series": series}


BASE = {"coro-hello": 1000.0, "async-hello": 1100.0}


class Compare(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-compare-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, doc):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            if isinstance(doc, str):
                f.write(doc)
            else:
                json.dump(doc, f)
        return p

    def run_compare(self, base, new, *extra):
        b = base if isinstance(base, str) else self.write("base.json", base)
        n = new if isinstance(new, str) else self.write("new.json", new)
        r = subprocess.run([sys.executable, COMPARE, b, n, "--noise", "none"] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def calibrate(self, runs):
        """scripts/compare --calibrate RUNS: (the noise file's path, its JSON)."""
        noise = os.path.join(self.tmp, "noise.json")
        r = subprocess.run([sys.executable, COMPARE, "--calibrate", "-o", noise] + runs,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(noise) as f:
            return noise, json.load(f)

    def verdicts(self, out, server):
        return [ln.rstrip().split("  ")[-1].strip() for ln in out.splitlines()
                if ln.startswith(server + " ")]

    def test_identical_is_within_noise(self):
        rc, out, err = self.run_compare(result(BASE), result(BASE))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.verdicts(out, "coro-hello"), ["within noise"] * 3)
        self.assertIn("no regression", out)

    def test_small_change_is_within_noise(self):
        rc, out, err = self.run_compare(result(BASE), result({"coro-hello": 970.0,
                                                               "async-hello": 1100.0}))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.verdicts(out, "coro-hello"), ["within noise"] * 3)

    def test_better(self):
        rc, out, err = self.run_compare(result(BASE), result({"coro-hello": 1500.0,
                                                               "async-hello": 1650.0}))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.verdicts(out, "coro-hello"), ["better"] * 3)
        self.assertIn("+50.0%", out)

    def test_worse_same_host(self):
        rc, out, err = self.run_compare(result(BASE), result({"coro-hello": 600.0,
                                                               "async-hello": 1100.0}))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(self.verdicts(out, "coro-hello"), ["worse"] * 3)
        self.assertEqual(self.verdicts(out, "async-hello"), ["within noise"] * 3)
        self.assertIn("regression: coro-hello c=1: req/s -40.0%", out)
        # the within-run ratio sees it too, and names who lost ground
        self.assertIn("coro-hello lost ground", out)

    def test_other_host_absolute_is_information_only(self):
        # Everything 40% slower on a slower machine: ratios unchanged, no alarm.
        other = dict(HOST, hostname="ci-runner", cpu_model="Other CPU")
        rc, out, err = self.run_compare(result(BASE), result(
            {"coro-hello": 600.0, "async-hello": 660.0}, host=other))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("worse (info)", out)
        self.assertIn("within-run ratios decide", out)

    def test_same_name_other_boot_is_information_only(self):
        # A CI runner cloned from the baseline machine's image: same hostname,
        # CPU model and cores, but another boot. Its CPU per request is off by
        # half (seen in CI); absolute figures must not decide there.
        runner = dict(HOST, boot_id="0000000000000000")
        rc, out, err = self.run_compare(result(BASE), result(
            {"coro-hello": 600.0, "async-hello": 660.0}, host=runner))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("boot_id fedcba9876543210 vs 0000000000000000", out)
        # a baseline written before machine ids were recorded never gates
        old = dict(HOST)
        del old["machine_id"], old["boot_id"]
        rc, out, err = self.run_compare(result(BASE, host=old), result(
            {"coro-hello": 600.0, "async-hello": 660.0}))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("machine_id unknown vs 0123456789abcdef", out)

    def test_other_host_ratio_regression(self):
        other = dict(HOST, hostname="ci-runner")
        rc, out, err = self.run_compare(result(BASE), result(
            {"coro-hello": 600.0, "async-hello": 1100.0}, host=other))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("coro-hello/async-hello", out)

    def test_absolute_gate_forced(self):
        other = dict(HOST, hostname="ci-runner")
        rc, out, _ = self.run_compare(result(BASE), result(
            {"coro-hello": 600.0, "async-hello": 660.0}, host=other), "--absolute", "gate")
        self.assertEqual(rc, 1, out)

    def test_latency_worse(self):
        new = result(BASE)
        for s in new["series"]:
            if s["server"] == "async-hello":
                for p in s["points"]:
                    for f in p["repetitions"]:
                        f["p99_ms"] *= 3
        rc, out, err = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("async-hello c=100: p99 ms +200.0%", out)

    def test_failures_are_a_regression(self):
        new = result(BASE)
        for f in new["series"][0]["points"][2]["repetitions"]:
            f["failed"] = 500
        rc, out, _ = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 1, out)
        self.assertIn("coro-hello c=100: 5.00% of requests failed (baseline 0.00%", out)

    def test_failures_gate_on_another_host(self):
        # Absolute figures are information there; failed requests are not.
        other = dict(HOST, hostname="ci-runner", boot_id="0000000000000000")
        for key, what in (("failed", "of requests failed"),
                          ("non2xx", "of answers were not 2xx")):
            new = result(BASE, host=other)
            for s in new["series"]:
                for p in s["points"]:
                    for f in p["repetitions"] + [p["median"]]:
                        f[key] = 500
            rc, out, _ = self.run_compare(result(BASE), new)
            self.assertEqual(rc, 1, out)
            self.assertIn("regression: async-hello c=10: 5.00% " + what, out)
            self.assertIn("absolute figures are for information only", out)

    def test_failures_within_the_margin(self):
        # 0.05 points above the baseline's share (0.1 points allowed): passes.
        base, new = result(BASE), result(BASE)
        for doc, n in ((base, 10), (new, 15)):
            for f in doc["series"][0]["points"][0]["repetitions"]:
                f["failed"] = n
        rc, out, _ = self.run_compare(base, new)
        self.assertEqual(rc, 0, out)
        for f in new["series"][0]["points"][0]["repetitions"]:
            f["failed"] = 50
        rc, out, _ = self.run_compare(base, new)
        self.assertEqual(rc, 1, out)
        self.assertIn("0.50% of requests failed (baseline 0.10%", out)

    def test_one_failed_repetition_counts(self):
        # The median of the repetitions would hide it: the sum does not.
        new = result(BASE)
        new["series"][1]["points"][1]["repetitions"][0]["failed"] = 3000
        rc, out, _ = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 1, out)
        self.assertIn("async-hello c=10: 10.00% of requests failed", out)

    def test_noise_band_widens_with_scatter(self):
        # A -15% change is worse on a quiet run but within the noise of a
        # run whose repetitions scatter by ±20%.
        new = result({"coro-hello": 850.0, "async-hello": 1100.0})
        rc, _, _ = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 1)
        noisy = copy.deepcopy(new)
        for s in noisy["series"]:
            s["points"] = [point(lv, (850.0 if s["server"] == "coro-hello" else 1100.0) * lv,
                                 scatter=0.2) for lv in LEVELS]
        rc, out, _ = self.run_compare(result(BASE), noisy)
        self.assertIn("within noise", self.verdicts(out, "coro-hello")[0])

    def test_schema_mismatch(self):
        bad = result(BASE)
        bad["schema"] = "corobench/result/v3"
        rc, out, err = self.run_compare(result(BASE), bad)
        self.assertEqual(rc, 2)
        self.assertIn("schema", err)
        self.assertIn("corobench/result/v3", err)

    def test_v1_baseline_v2_run(self):
        """A v1 baseline compares with a v2 run (server CPU's grain differs,
        not its meaning), and the comparison says so."""
        new = result(BASE)
        new["schema"] = "corobench/result/v2"
        rc, out, err = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 0, err)
        self.assertIn("clock ticks", out)
        self.assertIn("corobench/result/v2", out)

    def test_different_scenarios(self):
        rc, _, err = self.run_compare(result(BASE), result(BASE, scenario="hello"))
        self.assertEqual(rc, 2)
        self.assertIn("different scenarios", err)

    def test_scenario_fields_a_newer_checker_adds(self):
        # A server key the baseline's scenario-check did not write yet is no
        # change of the scenario; a key both have with other values is.
        base, new = result(BASE), result(BASE)
        base["scenario_doc"]["servers"] = [{"name": "coro-hello", "kind": "coro"}]
        new["scenario_doc"]["servers"] = [{"name": "coro-hello", "kind": "coro",
                                           "style": "implicit", "optional": False}]
        rc, out, err = self.run_compare(base, new)
        self.assertEqual(rc, 0, out + err)
        new["scenario_doc"]["servers"][0]["kind"] = "async"
        rc, _, err = self.run_compare(base, new)
        self.assertEqual(rc, 2)
        self.assertIn("differs between the two runs in: servers", err)

    def test_missing_levels_in_the_levels_list(self):
        rc, _, err = self.run_compare(result(BASE), result(BASE, levels=[1, 10]))
        self.assertEqual(rc, 2)
        self.assertIn("different concurrency levels", err)

    def test_missing_point_is_a_regression(self):
        new = result(BASE)
        new["series"][1]["points"][2] = {"level": 100, "gap": "crashed", "repetitions": [],
                                         "median": None}
        new["series"][1]["status"] = "crashed"
        rc, out, _ = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 1, out)
        self.assertIn("missing", self.verdicts(out, "async-hello")[2])
        self.assertIn("async-hello: crashed", out)

    def test_point_list_shorter_than_levels(self):
        # A point missing from a run whose server did not break: the run
        # cannot be judged (exit 2), never "n/a" and a pass.
        new = result(BASE)
        del new["series"][0]["points"][2]
        rc, out, err = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 2, out)
        self.assertIn("missing: coro-hello c=100: no measured point in the new run", out)
        self.assertIn("ERROR: the new run lacks", out)
        self.assertIn("cannot be judged", err)

    def test_missing_series(self):
        new = result(BASE)
        del new["series"][1]
        rc, out, _ = self.run_compare(result(BASE), new)
        self.assertEqual(rc, 2, out)
        self.assertIn("missing: async-hello: the series is missing from the new run", out)

    def test_missing_figure(self):
        new = result(BASE)
        new["series"][0]["points"][1]["median"]["server_cpu"] = None
        for f in new["series"][0]["points"][1]["repetitions"]:
            f["server_cpu"] = None
        rc, out, _ = self.run_compare(result(BASE), new, "--absolute", "info")
        self.assertEqual(rc, 2, out)
        self.assertIn("missing: coro-hello c=10: cpu µs/req is missing from the new run's point",
                      out)

    def test_missing_file(self):
        rc, _, err = self.run_compare(result(BASE), os.path.join(self.tmp, "nope.json"))
        self.assertEqual(rc, 2)
        self.assertIn("nope.json: no such file", err)

    def test_not_json(self):
        rc, _, err = self.run_compare(result(BASE), self.write("bad.json", "{not json"))
        self.assertEqual(rc, 2)
        self.assertIn("not valid JSON", err)

    def test_markdown(self):
        rc, out, _ = self.run_compare(result(BASE), result({"coro-hello": 600.0,
                                                             "async-hello": 1100.0}),
                                      "--markdown")
        self.assertEqual(rc, 1)
        self.assertTrue(out.startswith("### corobench compare: REGRESSION"), out[:80])
        self.assertIn("| server | c | req/s base |", out)
        self.assertIn("| **worse** |", out)

    def test_bench_json(self):
        path = os.path.join(self.tmp, "bench.json")
        rc, out, err = self.run_compare(result(BASE), result(BASE), "--bench-json", path)
        self.assertEqual(rc, 0, err)
        with open(path) as f:
            bigger = json.load(f)
        with open(os.path.join(self.tmp, "bench.smaller.json")) as f:
            smaller = json.load(f)
        names = {e["name"]: e for e in bigger}
        self.assertIn("coro-hello c=100 req/s", names)
        e = names["coro-hello c=100 req/s"]
        self.assertEqual(e["unit"], "req/s")
        self.assertAlmostEqual(e["value"], 100000.0)
        self.assertTrue(e["range"].startswith("± "))
        self.assertIn("ratio coro-hello/async-hello c=1 req/s", names)
        self.assertTrue(all(isinstance(x["value"], (int, float)) for x in bigger + smaller))
        self.assertIn("async-hello c=10 p99 ms", {x["name"] for x in smaller})

    def test_json_report(self):
        # --json -: the report as data on stdout (what scripts/report renders),
        # the same verdicts and findings as the text, the same exit status
        new = result({"coro-hello": 600.0, "async-hello": 1100.0})
        rc, text, _ = self.run_compare(result(BASE), new)
        rc2, out, err = self.run_compare(result(BASE), new, "--json", "-")
        self.assertEqual((rc, rc2), (1, 1), err)
        doc = json.loads(out)
        self.assertEqual(doc["schema"], "corobench/compare/v1")
        self.assertTrue(doc["regression"])
        self.assertTrue(doc["summary"].startswith("REGRESSION"), doc["summary"])
        self.assertEqual(doc["table"]["head"][:3], ["server", "c", "req/s base"])
        rows = {(r[0], r[1]): r[-1] for r in doc["table"]["rows"]}
        self.assertEqual(rows[("coro-hello", "1")], "worse")
        self.assertEqual(rows[("async-hello", "100")], "within noise")
        self.assertEqual(self.verdicts(text, "coro-hello"),
                         [r[-1] for r in doc["table"]["rows"] if r[0] == "coro-hello"])
        for finding in doc["regressions"]:
            self.assertIn("regression: " + finding, text)
        self.assertTrue(doc["ratios"]["rows"])
        # a file beside the text report
        path = os.path.join(self.tmp, "report.json")
        rc, out, _ = self.run_compare(result(BASE), result(BASE), "--json", path)
        self.assertEqual(rc, 0)
        self.assertIn("no regression", out)
        with open(path) as f:
            self.assertEqual(json.load(f)["summary"], "no regression")

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed")
    def test_plot(self):
        out = os.path.join(self.tmp, "charts")
        rc, _, err = self.run_compare(result(BASE), result({"coro-hello": 960.0,
                                                             "async-hello": 1100.0}),
                                      "--plot", out)
        self.assertEqual(rc, 0, err)
        for ext in ("png", "svg"):
            p = os.path.join(out, "compare-ci-hello." + ext)
            self.assertTrue(os.path.getsize(p) > 1000, p)
        with open(os.path.join(out, "compare-ci-hello.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_calibrate_and_use_bands(self):
        runs = []
        for i, f in enumerate((0.98, 1.0, 1.02, 0.99, 1.01)):
            runs.append(self.write("run%d.json" % i, result(
                {"coro-hello": 1000.0 * f, "async-hello": 1100.0 * f})))
        noise, doc = self.calibrate(runs)
        self.assertEqual(doc["schema"], "corobench/noise/v1")
        band = doc["bands"]["coro-hello@100:rps"]
        # sd of log over the five runs ≈ 1.6%: 4·√2·sd ≈ 9%
        self.assertGreater(band, 0.05)
        self.assertLess(band, 0.15)
        self.assertEqual(doc["bands"]["ratio:coro-hello/async-hello@10:rps"], 0.03)
        # -7% is inside that band, -20% is not
        b = self.write("b.json", result(BASE))
        for rps, want in ((930.0, 0), (800.0, 1)):
            n = self.write("n.json", result({"coro-hello": rps, "async-hello": 1100.0 * rps
                                             / 1000.0}))
            r = subprocess.run([sys.executable, COMPARE, b, n, "--noise", noise],
                               stdout=subprocess.PIPE, timeout=60)
            self.assertEqual(r.returncode, want, r.stdout.decode())

    def test_too_noisy_rows_do_not_gate(self):
        # A calibrated band of +80% is wider than the gating limit (50%): a
        # -45% there is information; the same change on a quiet row gates.
        bands = {"coro-hello@%d:%s" % (lv, m): 0.8 for lv in LEVELS
                 for m in ("rps", "mean_ms", "p99_ms", "cpu_us")}
        bands.update({"ratio:coro-hello/async-hello@%d:rps" % lv: 0.8 for lv in LEVELS})
        noise = self.write("noise.json", {"schema": "corobench/noise/v1", "scenario": "ci",
                                          "runs": ["a", "b", "c"], "bands": bands})
        slow = {"coro-hello": 550.0, "async-hello": 1100.0}
        rc, out, _ = self.run_compare(result(BASE), result(slow), "--noise", noise)
        self.assertEqual(rc, 0, out)
        self.assertIn("too noisy to gate", out)
        self.assertEqual(self.verdicts(out, "coro-hello"), ["worse (noisy)"] * 3)
        slow = {"coro-hello": 1000.0, "async-hello": 600.0}
        rc, out, _ = self.run_compare(result(BASE), result(slow), "--noise", noise)
        self.assertEqual(rc, 1, out)

    def test_saturated_load_generator_is_not_the_servers_fault(self):
        new = result({"coro-hello": 600.0, "async-hello": 1100.0})
        for p in new["series"][0]["points"]:
            p["median"] = dict(p["median"], loadgen_core_busy=1.0)
        rc, out, _ = self.run_compare(result(BASE), new)
        self.assertIn("core was saturated", out)
        # server CPU per request (cpu constant, fewer req/s) still gates
        self.assertIn("regression: coro-hello c=1: cpu µs/req", out)
        self.assertNotIn("regression: coro-hello c=1: req/s", out)
        self.assertEqual(rc, 1)

    def with_nginx(self, rps, nginx_rps=5000.0, host=HOST, cpu=None):
        doc = result(rps, host=host)
        doc["series"].insert(1, {"server": "nginx", "kind": "nginx", "app": "hello",
                                 "status": "ok", "points": [point(lv, nginx_rps * lv)
                                                            for lv in LEVELS]})
        if cpu:
            for s in doc["series"]:
                for p in s["points"]:
                    for f in p["repetitions"] + [p["median"]]:
                        f["server_cpu"] *= cpu.get(s["server"], 1.0)
        return doc

    def test_yardstick_catches_a_shared_slowdown(self):
        # Both servers slower, nginx unchanged, on another machine (40%) or
        # another boot of a cloned runner (10%, the drill: req/s x 0.9,
        # so CPU per request x 1.11): absolute rows cannot gate there, and the
        # coro/async ratio cannot move; the yardstick ratios do.
        for f, host, rps, cpu in ((0.6, dict(HOST, hostname="ci-runner"), "-40.0%", "+66.7%"),
                                  (0.9, dict(HOST, boot_id="0000000000000000"), "-10.0%",
                                   "+11.1%")):
            new = self.with_nginx({"coro-hello": 1000.0 * f, "async-hello": 1100.0 * f},
                                  host=host)
            rc, out, _ = self.run_compare(self.with_nginx(BASE), new)
            self.assertEqual(rc, 1, out)
            self.assertIn("coro-hello/nginx c=all: coro-hello req/s against the yardstick " +
                          rps, out)
            self.assertIn("async-hello/nginx c=all: async-hello cpu µs/req against the "
                          "yardstick " + cpu, out)
            self.assertIn("ours/nginx c=all: our servers (coro-hello, async-hello) cpu µs/req "
                          "against the yardstick " + cpu, out)
            self.assertNotIn("lost ground", out)
            # the levels are shown, for information
            self.assertIn("information only: coro-hello/nginx c=1: coro-hello req/s", out)

    def test_yardstick_cpu_sees_a_slowdown_the_load_generator_hides(self):
        # The load generator is the bottleneck (req/s unchanged, its core
        # saturated): our servers burn 12% more CPU per request, nginx not.
        runner = dict(HOST, boot_id="0000000000000000")
        base = self.with_nginx(BASE)
        new = self.with_nginx(BASE, host=runner, cpu={"coro-hello": 1.12, "async-hello": 1.12})
        for doc in (base, new):
            for s in doc["series"]:
                for p in s["points"]:
                    for f in p["repetitions"] + [p["median"]]:
                        f["loadgen_core_busy"] = 0.99
        rc, out, _ = self.run_compare(base, new)
        self.assertEqual(rc, 1, out)
        self.assertIn("coro-hello/nginx c=all: coro-hello cpu µs/req against the yardstick "
                      "+12.0%", out)
        self.assertNotIn("req/s against the yardstick", out.split("information only")[0])

    def test_yardstick_levels_alone_do_not_gate(self):
        # One level 20% worse, the others unchanged: the mean over the levels
        # moves 6%, inside its band; the level is printed for information.
        runner = dict(HOST, boot_id="0000000000000000")
        new = self.with_nginx(BASE, host=runner, cpu={"coro-hello": 1.0})
        for p in new["series"][0]["points"][2:]:
            for f in p["repetitions"] + [p["median"]]:
                f["server_cpu"] *= 1.2
        rc, out, _ = self.run_compare(self.with_nginx(BASE), new)
        self.assertEqual(rc, 0, out)
        self.assertIn("information only: coro-hello/nginx c=100: coro-hello cpu µs/req against "
                      "the yardstick +20.0%", out)

    def test_paired_repetitions(self):
        # An interleaved run: repetition i of both servers share what the
        # machine did; the ratio is the median of the pairs' ratios, so one
        # slow moment (x0.5 for both) does not move it.
        base, new = self.with_nginx(BASE), self.with_nginx(BASE)
        for s in new["series"]:
            for p in s["points"]:
                p["repetitions"][0] = dict(p["repetitions"][0],
                                           rps=p["repetitions"][0]["rps"] * 0.5,
                                           server_cpu=p["repetitions"][0]["server_cpu"])
        rc, out, _ = self.run_compare(base, new, "--absolute", "info")
        self.assertEqual(rc, 0, out)

    def test_shared_ratio_and_calibrated_reference(self):
        # Six no-change runs whose CPU per request wobbles by ~1% per server
        # and level; the calibration weighs the components, keeps each
        # ratio's mean as the reference for this baseline, and narrows the
        # bands; then a shared +11% CPU per request fails, a clean run passes.
        wobble = [0.99, 1.01, 1.0, 0.985, 1.012, 1.004]
        runs = []
        for i, w in enumerate(wobble):
            cpu = {"coro-hello": w, "async-hello": wobble[-1 - i]}
            runs.append(self.write("run%d.json" % i, self.with_nginx(BASE, cpu=cpu)))
        noise, doc = self.calibrate(runs)
        w = doc["weights"]["ratio:ours/nginx:cpu_us"]
        self.assertEqual(sorted(w), ["async-hello@1", "async-hello@10", "async-hello@100",
                                     "coro-hello@1", "coro-hello@10", "coro-hello@100"])
        self.assertAlmostEqual(sum(w.values()), 1.0, places=2)
        ref = doc["reference"]["ratio:ours/nginx@all:cpu_us"]
        self.assertLess(ref["band"], doc["bands"]["ratio:ours/nginx@all:cpu_us"])
        self.assertIsNone(doc["baseline"])
        base = self.with_nginx(BASE)
        doc["baseline"] = base["stamp"]  # what scripts/baseline --calibrate writes
        with open(noise, "w") as f:
            json.dump(doc, f)
        runner = dict(HOST, boot_id="0000000000000000")
        rc, out, _ = self.run_compare(base, self.with_nginx(BASE, host=runner), "--noise",
                                      noise)
        self.assertEqual(rc, 0, out)
        self.assertIn("within-run ratios are compared with their mean over those runs", out)
        slow = self.with_nginx(BASE, host=runner, cpu={"coro-hello": 1 / 0.9,
                                                       "async-hello": 1 / 0.9})
        rc, out, _ = self.run_compare(base, slow, "--noise", noise)
        self.assertEqual(rc, 1, out)
        self.assertIn("regression: ours/nginx c=all: our servers (coro-hello, async-hello) "
                      "cpu µs/req against the yardstick +11.", out)
        # another baseline: the reference no longer applies, the bands widen
        other = self.with_nginx(BASE)
        other["stamp"] = "20260202T000000Z"
        rc, out, _ = self.run_compare(other, self.with_nginx(BASE, host=runner), "--noise",
                                      noise)
        self.assertIn("made with another baseline", out)

    def test_noise_for_another_scenario(self):
        noise = self.write("noise.json", {"schema": "corobench/noise/v1", "scenario": "hello",
                                          "bands": {}})
        rc, _, err = self.run_compare(result(BASE), result(BASE), "--noise", noise)
        self.assertEqual(rc, 2)
        self.assertIn("scenario 'hello'", err)


CALLGRIND = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  coro-server --listen 127.0.0.1:1 --workers 1
part: 1

desc: I1 cache:
positions: line
events: Ir
summary: 123456789

ob=(1) /usr/lib/libc.so.6
fl=(1) ???
fn=(1) malloc
0 100
fn=(2) free
0 50

totals: 123456789
"""


# Two objects, compressed names, a call whose inclusive cost (the line after
# calls=) belongs to the callee, relative positions: coro-server's own cost
# is 10 + 20 + 5 = 35, libc's 100 + 7 = 107.
CALLGRIND_OBJECTS = """# callgrind format
version: 1
pid: 77
positions: line
events: Ir Dr

ob=(1) /build/servers/coro/coro-server
fl=(1) codec.c
fn=(1) parse
10 10 1
+2 20 2
cob=(2) /usr/lib/x86_64-linux-gnu/libc.so.6
cfl=(2) ???
cfn=(2) memcpy
calls=3 0
+1 300 30
-1 5

ob=(2)
fl=(2)
fn=(2)
0 100 10
* 7

totals: 142 13
"""


class Icount(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-icount-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_icount(self, *args):
        r = subprocess.run([sys.executable, ICOUNT] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_parse_callgrind_output(self):
        p = os.path.join(self.tmp, "callgrind.out.4242")
        with open(p, "w") as f:
            f.write(CALLGRIND)
        rc, out, err = self.run_icount("parse", p)
        self.assertEqual(rc, 0, err)
        self.assertIn("Ir 123456789", out)

    def test_parse_takes_ir_among_several_events(self):
        p = os.path.join(self.tmp, "cg")
        with open(p, "w") as f:
            f.write(CALLGRIND.replace("events: Ir", "events: Ir Dr Dw")
                    .replace("totals: 123456789", "totals: 1000 200 300")
                    .replace("summary: 123456789", "summary: 1000 200 300"))
        rc, out, _ = self.run_icount("parse", p)
        self.assertEqual(rc, 0)
        self.assertIn("Ir 1000", out)

    def test_parse_rejects_truncated_output(self):
        p = os.path.join(self.tmp, "cg")
        with open(p, "w") as f:
            f.write(CALLGRIND.split("summary:")[0])
        rc, _, err = self.run_icount("parse", p)
        self.assertEqual(rc, 2)
        self.assertIn("without a 'totals:'", err)

    def test_self_cost_by_object(self):
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader("icount_mod", ICOUNT)
        spec = importlib.util.spec_from_loader("icount_mod", loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        by = mod.self_cost_by_object(CALLGRIND_OBJECTS)
        self.assertEqual(by, {"/build/servers/coro/coro-server": 35,
                              "/usr/lib/x86_64-linux-gnu/libc.so.6": 107})
        self.assertEqual(mod.self_cost_by_object(CALLGRIND_OBJECTS, "Dr"),
                         {"/build/servers/coro/coro-server": 3,
                          "/usr/lib/x86_64-linux-gnu/libc.so.6": 10})
        p = os.path.join(self.tmp, "cg")
        with open(p, "w") as f:
            f.write(CALLGRIND_OBJECTS)
        self.assertEqual(mod.ir_of(p, "coro-server"), (142, 35))

    def counts(self, name, per_hello, per_proxy, spread=0.0, own=None, own_spread=0.0):
        doc = {"schema": "corobench/icount/v1", "entries": [
            {"server": "coro", "app": "hello", "n1": 500, "n2": 2500,
             "ir_per_request": per_hello, "spread": 0.0001},
            {"server": "coro", "app": "proxy", "n1": 500, "n2": 2500,
             "ir_per_request": per_proxy, "spread": spread}]}
        if own is not None:
            doc["entries"][1].update(own_ir_per_request=own, own_spread=own_spread)
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            json.dump(doc, f)
        return p

    def test_check_threshold(self):
        base = self.counts("base.json", 5000, 60000, spread=0.02)
        ok = self.counts("ok.json", 5050, 62000)          # +1%, +3.3% (< 3 x 2%)
        bad = self.counts("bad.json", 5500, 60000)        # +10%
        rc, out, _ = self.run_icount("check", "--baseline", base, "--new", ok)
        self.assertEqual(rc, 0, out)
        self.assertIn("+6.0%", out)  # the proxy's threshold: 3 x its 2% spread
        # a timing-dependent case never gets less than 5%
        base2 = self.counts("base2.json", 5000, 60000, spread=0.005)
        rc, out, _ = self.run_icount("check", "--baseline", base2, "--new",
                                     self.counts("n2.json", 5000, 62400))  # +4%
        self.assertEqual(rc, 0, out)
        self.assertIn("+5.0%", out)
        rc, out, _ = self.run_icount("check", "--baseline", base, "--new", bad)
        self.assertEqual(rc, 1, out)
        self.assertIn("coro hello: +10.00% instructions per request", out)

    def test_check_own_instructions(self):
        # The proxy's total may drift by 4% (libcurl, malloc: a 5% floor);
        # its own part is exact enough for 2%: +3% there is a regression.
        base = self.counts("base.json", 5000, 60000, spread=0.005, own=12000, own_spread=0.0005)
        rc, out, _ = self.run_icount("check", "--baseline", base, "--new", self.counts(
            "n1.json", 5000, 62400, own=12100))
        self.assertEqual(rc, 0, out)
        rc, out, _ = self.run_icount("check", "--baseline", base, "--new", self.counts(
            "n2.json", 5000, 61000, own=12360))
        self.assertEqual(rc, 1, out)
        self.assertIn("coro proxy: +3.00% own instructions per request (12000 -> 12360; "
                      "threshold 2.0%)", out)
        # an old baseline without own counts: a note, no gate on them
        rc, out, _ = self.run_icount("check", "--baseline", self.counts("old.json", 5000, 60000),
                                     "--new", self.counts("n3.json", 5000, 60000, own=99999))
        self.assertEqual(rc, 0, out)
        self.assertIn("the baseline has no own count", out)

    def test_check_missing_baseline(self):
        rc, _, err = self.run_icount("check", "--baseline", os.path.join(self.tmp, "x.json"),
                                     "--new", os.path.join(self.tmp, "y.json"))
        self.assertEqual(rc, 2)
        self.assertIn("no such file", err)


class Trend(unittest.TestCase):
    def test_append(self):
        tmp = tempfile.mkdtemp(prefix="test-trend-")
        try:
            res = os.path.join(tmp, "r.json")
            with open(res, "w") as f:
                json.dump(result(BASE), f)
            hist = os.path.join(tmp, "history.jsonl")
            for _ in range(2):
                r = subprocess.run([sys.executable, TREND, "append", res, "--history", hist,
                                    "--verdict", "ok"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr.decode())
            with open(hist) as f:
                lines = [json.loads(x) for x in f]
            self.assertEqual(len(lines), 2)
            self.assertEqual(lines[0]["commit"], "a" * 40)
            self.assertEqual(lines[0]["rps"]["coro-hello"]["100"], 100000.0)
            self.assertIn("coro-hello/async-hello", lines[0]["ratios"])
            if shutil.which("gnuplot"):
                out = os.path.join(tmp, "charts")
                r = subprocess.run([sys.executable, TREND, "--history", hist, "--out", out,
                                    "--format", "png"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                self.assertTrue(os.path.getsize(os.path.join(out, "trend-rps.png")) > 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Ratios(unittest.TestCase):
    """scripts/ratios: each row against the faster of coro and async, per level."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="corobench-test-ratios-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_ratios(self, doc, *args):
        path = os.path.join(self.tmp, "r.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        r = subprocess.run([sys.executable, RATIOS, path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def doc(self):
        doc = result(BASE)  # async 1100 x level, coro 1000 x level
        go = copy.deepcopy(doc["series"][0])
        go.update(server="go", kind="external", app="proxy", style="implicit",
                  runtime="go1.19.8")
        for p in go["points"]:
            for f in p["repetitions"]:
                f["rps"] /= 2      # half coro's req/s: 0.45 of async's
                f["p99_ms"] *= 3   # 3 x the workers' p99
        go["points"][2]["median"]["failed"] = 7
        node = dict(copy.deepcopy(go), server="node", status="skipped", style="explicit")
        doc["series"] += [go, node]
        return doc

    def test_table(self):
        rc, out, err = self.run_ratios(self.doc(), "--levels", "10,100")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "| server | style | runtime | c = 10 req/s | p99 ms | "
                                   "CPU µs/req | c = 100 req/s | p99 ms | CPU µs/req |")
        # the faster worker is async: 1.00 x itself, coro 0.91 x
        # server CPU 0.5 core: 0.5 / 11000 req/s = 45.5 µs per request
        self.assertIn("| async-hello (hello) | - | - | 11,000 (1.00×) | 20 (1.00×) | "
                      "45.5 (1.00×) |", out)
        self.assertIn("| coro-hello (hello) | - | - | 10,000 (0.91×) | 20 (1.00×) | "
                      "50 (1.10×) |", out)
        self.assertIn("| go (proxy) | implicit | go1.19.8 | 5,000 (0.45×) | 60 (3.00×) | "
                      "100 (2.20×) | 50,000 (0.45×) (7 failed) | 60 (3.00×) | 10 (2.20×) |", out)
        self.assertIn("| node (proxy) | explicit | go1.19.8 | skipped | - | - | skipped | - "
                      "| - |", out)
        self.assertIn("c = 10: async-hello; c = 100: async-hello.", out)

    def test_bad_levels(self):
        rc, _, err = self.run_ratios(self.doc(), "--levels", "10,30")
        self.assertEqual(rc, 2)
        self.assertIn("--levels: 30 not among the run's levels 1,10,100", err)

    def test_not_a_result(self):
        rc, _, err = self.run_ratios({"schema": "x"})
        self.assertEqual(rc, 2)
        self.assertIn("schema", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
