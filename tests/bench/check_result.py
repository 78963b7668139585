#!/usr/bin/env python3
"""check_result.py — check a result file against results/SCHEMA.md
(corobench/result/v2, and the v1 files written before it).

    check_result.py FILE [--complete]

Prints one line per problem (JSON path: what is wrong) and exits 1 when there
is any, 0 when the file conforms. --complete also requires a finished run in
which every point of every `ok` series has data. Python 3 standard library only.
"""
import json
import math
import re
import sys

FAILURE_KINDS = ("connect", "receive", "length", "exceptions", "timeout", "truncated", "status")
INT_FIGS = ("requests", "complete", "failed", "non2xx")
NUM_FIGS = ("duration_s", "rps", "transfer_kbps")
OPT_FIGS = ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
            "loadgen_cpu", "loadgen_core_busy", "server_cpu")
# corobench/result/v2's cost figures (results/SCHEMA.md, "Cost figures"):
# present in every set of figures, null when not measured, never negative.
COST_FIGS = ("server_cpu_user", "server_cpu_sys", "upstream_cpu", "loadgen_cpu_user",
             "loadgen_cpu_sys", "server_syscr", "server_syscw", "server_csw_voluntary",
             "server_csw_involuntary")
SCHEMAS = ("corobench/result/v1", "corobench/result/v2")
COST_CPU = ("schedstat", "clock ticks")
STATUSES = ("ok", "partial", "crashed", "refused", "failed", "skipped", "running")
GAPS = ("crashed", "refused", "skipped", "failed", "not run")
KINDS = ("coro", "async", "nginx", "external", "h2load")
PROTOCOLS = ("h1", "h2")
SWEEPS = ("connections", "streams", "rate")
# the open model's figures (rate sweeps; null in every set of figures of a
# concurrency sweep, and absent from files before issue 15)
RATE_FIGS = ("target_rps", "sent_rps", "late", "late_busy", "late_p99_ms", "late_max_ms",
             "drain_s", "mean_uncorrected_ms", "p50_uncorrected_ms", "p90_uncorrected_ms",
             "p99_uncorrected_ms", "p999_uncorrected_ms", "max_uncorrected_ms")
KNEE_KEYS = ("factor", "unloaded_p99_ms", "rate", "rps", "p99_ms", "beyond", "repetitions",
             "min", "max")


class Checker:
    def __init__(self):
        self.problems = []
        self.sweep = "connections"
        self.v2 = True
        self.complete_run = True

    def bad(self, path, msg):
        self.problems.append("%s: %s" % (path or "(top)", msg))

    def typ(self, path, v, types, nullable=False):
        if v is None:
            if not nullable:
                self.bad(path, "missing or null")
            return False
        if isinstance(v, bool) and bool not in types:
            self.bad(path, "is a boolean, expected %s" % "/".join(t.__name__ for t in types))
            return False
        if not isinstance(v, types):
            self.bad(path, "is %s, expected %s" % (type(v).__name__,
                                                   "/".join(t.__name__ for t in types)))
            return False
        if isinstance(v, float) and not math.isfinite(v):
            self.bad(path, "is not a finite number")
            return False
        return True

    def figures(self, path, f, median=False):
        if not self.typ(path, f, (dict,)):
            return
        for k in INT_FIGS:
            v = f.get(k)
            num = (int, float) if median else (int,)
            if self.typ("%s.%s" % (path, k), v, num, nullable=median) and v < 0:
                self.bad("%s.%s" % (path, k), "is negative")
        for k in NUM_FIGS:
            v = f.get(k)
            if self.typ("%s.%s" % (path, k), v, (int, float), nullable=median) and v < 0:
                self.bad("%s.%s" % (path, k), "is negative")
        for k in OPT_FIGS + (COST_FIGS if self.v2 else ()):
            if k not in f:
                self.bad("%s.%s" % (path, k), "missing (null when not measured)")
                continue
            v = f[k]
            if self.typ("%s.%s" % (path, k), v, (int, float), nullable=True) and v < 0:
                self.bad("%s.%s" % (path, k), "is negative")
        lat = [f.get(k) for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
        if not median and all(isinstance(x, (int, float)) for x in lat):
            if any(a > b * 1.0001 + 1e-9 for a, b in zip(lat, lat[1:])):
                self.bad(path, "latencies do not rise min <= p50 <= p90 <= p99 <= p99.9 <= max")
        if self.v2 and not median:
            self.cost_parts(path, f, "server_cpu", ("server_cpu_user", "server_cpu_sys"))
            self.cost_parts(path, f, "loadgen_cpu", ("loadgen_cpu_user", "loadgen_cpu_sys"))
        fl = f.get("failures")
        if self.typ(path + ".failures", fl, (dict,)):
            for k in FAILURE_KINDS:
                self.typ("%s.failures.%s" % (path, k), fl.get(k), (int, float))
        if self.sweep == "rate":
            for k in RATE_FIGS:
                v = f.get(k)
                nullable = median or k not in ("target_rps", "sent_rps", "late", "late_busy")
                if self.typ("%s.%s" % (path, k), v, (int, float), nullable=nullable) and v < 0:
                    self.bad("%s.%s" % (path, k), "is negative")
            self.typ(path + ".rate_kept", f.get("rate_kept"), (bool,), nullable=median)
            if isinstance(f.get("late"), int) and isinstance(f.get("late_busy"), int) and \
                    f["late_busy"] > f["late"]:
                self.bad(path + ".late_busy", "more than late")
        else:
            for k in RATE_FIGS:
                if f.get(k) is not None:
                    self.bad("%s.%s" % (path, k), "must be null outside a rate sweep")
            if "rate_kept" in f:
                self.bad(path + ".rate_kept", "only in a rate sweep")

    def cost_parts(self, path, f, whole, parts):
        """A split figure: both parts or neither, and they add up to the whole."""
        vals = [f.get(k) for k in parts]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == 1:
            self.bad("%s.%s" % (path, parts[0]), "%s and %s go together (both or neither)"
                     % parts)
        w = f.get(whole)
        if len(nums) == 2 and isinstance(w, (int, float)) and \
                abs(sum(nums) - w) > 1e-6 + 1e-6 * abs(w):
            self.bad("%s.%s" % (path, parts[0]), "%s + %s is %r, not %s (%r)" % (
                parts[0], parts[1], sum(nums), whole, w))

    def check(self, doc, complete=False):
        if not self.typ("", doc, (dict,)):
            return
        if doc.get("schema") not in SCHEMAS:
            self.bad("schema", "is %r, expected one of %s" % (doc.get("schema"),
                                                               ", ".join(SCHEMAS)))
        self.v2 = doc.get("schema") != "corobench/result/v1"
        self.complete_run = doc.get("complete") is True
        if self.v2:
            cm = doc.get("cost_method")
            if self.typ("cost_method", cm, (dict,)):
                if cm.get("cpu") not in COST_CPU:
                    self.bad("cost_method.cpu", "is %r, expected one of %s" % (
                        cm.get("cpu"), ", ".join(COST_CPU)))
                for k in ("clk_tck", "split_min_ticks"):
                    if self.typ("cost_method." + k, cm.get(k), (int,)) and cm[k] < 1:
                        self.bad("cost_method." + k, "must be at least 1")
                if self.typ("cost_method.sample_interval_s", cm.get("sample_interval_s"),
                            (int, float)) and cm["sample_interval_s"] <= 0:
                    self.bad("cost_method.sample_interval_s", "must be positive")
        for k in ("scenario", "scenario_file", "stamp", "started"):
            self.typ(k, doc.get(k), (str,))
        if isinstance(doc.get("scenario"), str) and \
                not re.fullmatch(r"[A-Za-z0-9_.-]+", doc["scenario"]):
            self.bad("scenario", "is not a plain name")
        self.typ("scenario_doc", doc.get("scenario_doc"), (dict,))
        self.typ("finished", doc.get("finished"), (str,), nullable=True)
        self.typ("complete", doc.get("complete"), (bool,))
        if complete and (doc.get("complete") is not True or doc.get("finished") is None):
            self.bad("complete", "the run did not finish")
        g = doc.get("git")
        if self.typ("git", g, (dict,)):
            c = g.get("commit")
            if c is not None and not (isinstance(c, str) and re.fullmatch(r"[0-9a-f]{40}", c)):
                self.bad("git.commit", "is not 40 hex digits or null")
            self.typ("git.dirty", g.get("dirty"), (bool,), nullable=True)
        h = doc.get("host")
        if self.typ("host", h, (dict,)):
            self.typ("host.cores", h.get("cores"), (int,))
            self.typ("host.kernel", h.get("kernel"), (str,))
            self.typ("host.cpu_model", h.get("cpu_model"), (str,), nullable=True)
        self.typ("tools", doc.get("tools"), (dict,))
        p = doc.get("pinning")
        if self.typ("pinning", p, (dict,)):
            for role in ("server", "loadgen", "upstream"):
                v = p.get(role, "missing")
                if v == "missing":
                    self.bad("pinning." + role, "missing")
                elif v is not None and not (isinstance(v, list) and v and
                                            all(isinstance(x, int) and x >= 0 for x in v)):
                    self.bad("pinning." + role, "must be a non-empty list of CPU numbers or null")
        up = doc.get("upstream")
        if up is not None and self.typ("upstream", up, (dict,)):
            self.typ("upstream.delay_ms", up.get("delay_ms"), (int,))
            self.typ("upstream.size", up.get("size"), (int,))
            if "wake_per_request" in up:  # files from before it lack it
                self.typ("upstream.wake_per_request", up["wake_per_request"], (bool,))
        levels = doc.get("levels")
        if self.typ("levels", levels, (list,)):
            if not levels or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                                     for x in levels):
                self.bad("levels", "must be positive integers")
            elif any(a >= b for a, b in zip(levels, levels[1:])):
                self.bad("levels", "must rise")
        # HTTP/2 fields (optional: files from before them lack them)
        self.sweep = doc.get("sweep", "connections")
        if self.sweep not in SWEEPS:
            self.bad("sweep", "is %r, expected one of %s" % (self.sweep, ", ".join(SWEEPS)))
        if "connections" in doc:
            c = doc["connections"]
            if self.sweep == "streams":
                if self.typ("connections", c, (int,)) and c < 1:
                    self.bad("connections", "must be at least 1")
            elif c is not None:
                self.bad("connections", "must be null unless the levels are streams")
        series = doc.get("series")
        if not self.typ("series", series, (list,)):
            return
        for i, s in enumerate(series):
            self.series("series[%d]" % i, s, levels if isinstance(levels, list) else [],
                        complete)

    def icount(self, path, s):
        """A v2 series' instructions per request: an object for coro and async
        series (null only while it runs or in an interrupted run), null for the
        others."""
        if "icount" not in s:
            self.bad(path, "missing (null when not a coro or async series)")
            return
        ic = s["icount"]
        if s.get("kind") not in ("coro", "async"):
            if ic is not None:
                self.bad(path, "must be null for a %s series" % s.get("kind"))
            return
        if ic is None and (s.get("status") == "running" or not self.complete_run):
            return  # counted after the sweeps: an interrupted run may lack it
        if not self.typ(path, ic, (dict,)):
            return
        ir = ic.get("ir_per_request")
        if self.typ(path + ".ir_per_request", ir, (int, float), nullable=True) and ir <= 0:
            self.bad(path + ".ir_per_request", "must be positive")
        note = ic.get("note")
        self.typ(path + ".note", note, (str,), nullable=True)
        if ir is None and not note:
            self.bad(path + ".note", "an uncounted icount must say why")
        if self.typ(path + ".case", ic.get("case"), (str,)) and \
                ic["case"] != "%s:%s" % (s.get("kind"), s.get("app")):
            self.bad(path + ".case", "is %r, expected the series' KIND:APP" % ic["case"])
        n1, n2 = ic.get("n1"), ic.get("n2")
        if self.typ(path + ".n1", n1, (int,)) and self.typ(path + ".n2", n2, (int,)) and \
                not 0 < n1 < n2:
            self.bad(path + ".n2", "must be larger than n1 (and n1 positive)")
        self.typ(path + ".seconds", ic.get("seconds"), (int, float), nullable=True)

    def shape(self, path, s, pt):
        """The optional protocol/connections/streams/in_flight of a point."""
        proto = pt.get("protocol", s.get("protocol", "h1"))
        if proto not in PROTOCOLS:
            self.bad(path + ".protocol", "is %r, expected h1 or h2" % proto)
            return
        if "connections" in pt and self.typ(path + ".connections", pt["connections"], (int,)):
            if pt["connections"] < 1:
                self.bad(path + ".connections", "must be at least 1")
            elif self.sweep == "connections" and pt["connections"] != pt.get("level"):
                self.bad(path + ".connections", "must equal the level (levels are connections)")
        if "streams" in pt:
            m = pt["streams"]
            if proto == "h1" and m is not None:
                self.bad(path + ".streams", "must be null over HTTP/1")
            elif proto == "h2" and self.typ(path + ".streams", m, (int,)):
                if m < 1:
                    self.bad(path + ".streams", "must be at least 1")
                elif self.sweep == "streams" and m != pt.get("level"):
                    self.bad(path + ".streams", "must equal the level (levels are streams)")
        if "in_flight" in pt and self.typ(path + ".in_flight", pt["in_flight"], (int,)):
            c, m = pt.get("connections"), pt.get("streams")
            if isinstance(c, int) and pt["in_flight"] != c * (m if isinstance(m, int) else 1):
                self.bad(path + ".in_flight", "must be connections x streams")

    def series(self, path, s, levels, complete):
        if not self.typ(path, s, (dict,)):
            return
        for k in ("server", "kind", "app", "path", "status"):
            self.typ("%s.%s" % (path, k), s.get(k), (str,))
        if s.get("kind") not in KINDS:
            self.bad(path + ".kind", "unknown kind %r" % s.get("kind"))
        if s.get("kind") == "h2load":
            self.typ(path + ".reference_of", s.get("reference_of"), (str,))
        if s.get("protocol", "h1") not in PROTOCOLS:
            self.bad(path + ".protocol", "is %r, expected h1 or h2" % s.get("protocol"))
        for k in ("connections", "streams"):
            if k in s and self.typ("%s.%s" % (path, k), s[k], (int,), nullable=True) and \
                    s[k] < 1:
                self.bad("%s.%s" % (path, k), "must be at least 1")
        # how the row waits and what runs it (optional: older files lack them)
        if s.get("style") not in (None, "implicit", "explicit"):
            self.bad(path + ".style", "is %r, expected implicit, explicit or null" %
                     s.get("style"))
        if "runtime" in s:
            self.typ(path + ".runtime", s["runtime"], (str,), nullable=True)
        if s.get("status") not in STATUSES:
            self.bad(path + ".status", "unknown status %r" % s.get("status"))
        self.typ(path + ".workers", s.get("workers"), (int,))
        for k in ("crashes", "errors", "warnings", "points"):
            self.typ("%s.%s" % (path, k), s.get(k), (list,))
        for j, c in enumerate(s.get("crashes") or []):
            cp = "%s.crashes[%d]" % (path, j)
            if self.typ(cp, c, (dict,)):
                self.typ(cp + ".repetition", c.get("repetition"), (int,))
                self.typ(cp + ".level", c.get("level"), (int,), nullable=True)
                self.typ(cp + ".exit", c.get("exit"), (str,))
        if s.get("status") == "crashed" and not s.get("crashes"):
            self.bad(path + ".crashes", "a crashed series must say where it crashed")
        if self.v2:
            self.icount(path + ".icount", s)
        v = s.get("verified")
        if v is not None and self.typ(path + ".verified", v, (dict,)):
            self.typ(path + ".verified.ok", v.get("ok"), (bool,))
        if self.sweep == "rate":
            self.knee(path + ".knee", s, levels)
        pts = s.get("points") or []
        if [p.get("level") if isinstance(p, dict) else None for p in pts] != list(levels):
            self.bad(path + ".points", "must hold one point per level, in the order of levels")
        for j, pt in enumerate(pts):
            pp = "%s.points[%d]" % (path, j)
            if not self.typ(pp, pt, (dict,)):
                continue
            self.shape(pp, s, pt)
            reps = pt.get("repetitions")
            if not self.typ(pp + ".repetitions", reps, (list,)):
                continue
            gap = pt.get("gap")
            if reps:
                if gap is not None:
                    self.bad(pp + ".gap", "must be null when the point has data")
                for r, f in enumerate(reps):
                    self.figures("%s.repetitions[%d]" % (pp, r), f)
                self.figures(pp + ".median", pt.get("median"), median=True)
            else:
                if gap not in GAPS:
                    self.bad(pp + ".gap", "a point without data needs a gap reason (%s), not %r"
                             % (", ".join(GAPS), gap))
                if pt.get("median") is not None:
                    self.bad(pp + ".median", "must be null when there are no repetitions")
                if complete and s.get("status") == "ok":
                    self.bad(pp, "an ok series lacks data at this level")
            self.histogram(pp + ".histogram", pt.get("histogram"))
            # one histogram per repetition (files before issue 15 lack them)
            keys = ["histograms"] + (["histograms_uncorrected"] if self.sweep == "rate" else [])
            for key in keys:
                hs = pt.get(key)
                if hs is None and key == "histograms":
                    continue
                if self.typ("%s.%s" % (pp, key), hs, (list,)):
                    if len(hs) != len(reps):
                        self.bad("%s.%s" % (pp, key), "must hold one per repetition")
                    for k, h in enumerate(hs):
                        self.histogram("%s.%s[%d]" % (pp, key, k), h)
            if self.sweep == "rate" and pt.get("target_rps") != pt.get("level"):
                self.bad(pp + ".target_rps", "must equal the level (levels are rates)")

    def histogram(self, path, h):
        """A histogram object: unit us, [upper_us, count] buckets, bounds rising."""
        if not self.typ(path, h, (dict,)):
            return
        if h.get("unit") != "us":
            self.bad(path + ".unit", "must be 'us'")
        b = h.get("buckets")
        if self.typ(path + ".buckets", b, (list,)):
            prev = -1
            for k, x in enumerate(b):
                if not (isinstance(x, list) and len(x) == 2 and
                        all(isinstance(y, (int, float)) and y >= 0 for y in x)):
                    self.bad("%s.buckets[%d]" % (path, k), "must be [upper_us, count]")
                    break
                if x[0] <= prev:
                    self.bad("%s.buckets[%d]" % (path, k), "bounds must rise")
                    break
                prev = x[0]

    def knee(self, path, s, levels):
        """A rate sweep's series knee (results/SCHEMA.md): null until a point has
        data, else its fields, the rate one of the levels (or null)."""
        k = s.get("knee", "missing")
        if k == "missing":
            self.bad(path, "missing (null before any point has data)")
            return
        if k is None:
            if any(isinstance(p, dict) and p.get("median") for p in s.get("points") or []):
                self.bad(path, "null although a point has data")
            return
        if not self.typ(path, k, (dict,)):
            return
        for key in KNEE_KEYS:
            if key not in k:
                self.bad("%s.%s" % (path, key), "missing")
        if self.typ(path + ".factor", k.get("factor"), (int, float)) and k["factor"] <= 1:
            self.bad(path + ".factor", "must be above 1")
        self.typ(path + ".beyond", k.get("beyond"), (bool,))
        for key in ("rate", "min", "max"):
            v = k.get(key)
            if v is not None and v not in levels:
                self.bad("%s.%s" % (path, key), "%r is not one of the levels" % v)
        for key in ("unloaded_p99_ms", "rps", "p99_ms"):
            self.typ("%s.%s" % (path, key), k.get(key), (int, float), nullable=True)
        if self.typ(path + ".repetitions", k.get("repetitions"), (list,)):
            for j, v in enumerate(k["repetitions"]):
                if v is not None and v not in levels:
                    self.bad("%s.repetitions[%d]" % (path, j), "%r is not one of the levels"
                             % v)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print("usage: check_result.py FILE [--complete]", file=sys.stderr)
        return 2
    try:
        with open(args[0]) as f:
            doc = json.load(f, parse_constant=lambda c: float("nan"))
    except (OSError, ValueError) as e:
        print("%s: %s" % (args[0], e))
        return 1
    c = Checker()
    c.check(doc, complete="--complete" in sys.argv)
    for p in c.problems:
        print("%s: %s" % (args[0], p))
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
