#!/usr/bin/env python3
"""test_runner_h2.py — scripts/bench's HTTP/2 path against nginx (cleartext h2
with prior knowledge, `listen ... http2`) and the real loadgen:

  - a streams sweep ("sweep": "streams") over fixed connections, with h2load's
    reference series: both series measured at every level, each point saying
    its protocol, connections and streams, the file passing check_result.py;
  - a server that speaks only HTTP/1 in an h2 scenario is refused (verified
    with curl --http2-prior-knowledge), not timed;
  - a connections sweep with fixed streams per connection;
  - check_result.py rejects HTTP/2 fields that contradict each other.

Exits 77 (skipped) when nginx, h2load or curl is not installed or loadgen is
not built.
"""
import copy
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

NEEDED = ("loadgen/loadgen", "scenarios/scenario-check", "plots/result2dat")


def run(tmp, doc):
    path = os.path.join(tmp, doc["name"] + ".json")
    with open(path, "w") as f:
        json.dump(doc, f)
    cmd = [sys.executable, os.path.join(SOURCE, "scripts", "bench"), path, "--build", BUILD,
           "--results", os.path.join(tmp, "results"), "--no-plot"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150,
                       check=False)
    out = r.stdout.decode("utf-8", "replace")
    print(out)
    with open(os.path.join(tmp, "results", doc["name"], "latest.json")) as f:
        return r.returncode, out, json.load(f)


def schema_problems(doc, complete=True):
    c = check_result.Checker()
    c.check(doc, complete=complete)
    return c.problems


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def streams_sweep(tmp):
    doc = {"name": "h2-tiny", "purpose": "the runner's HTTP/2 path, seconds long",
           "protocol": "h2", "sweep": "streams", "connections": 2, "levels": [1, 4],
           "seconds": 1, "warmup_s": 0.2, "repetitions": 1, "h2load_reference": True,
           "expect": {"status": 200, "body": "Hello, World!"},
           "servers": [
               {"kind": "nginx"},
               # answers HTTP/1 only: the h2 verification must refuse it
               {"kind": "external", "name": "h1only", "app": "static",
                "start": [sys.executable, "-m", "http.server", "--bind", "{host}", "{port}"],
                "ready_url": "http://{host}:{port}/", "cwd": "scenarios",
                "h2load_reference": False}]}
    rc, out, res = run(tmp, doc)
    expect(rc == 1, "a refused server must make the run exit 1, got %d" % rc)
    expect(schema_problems(res) == [], "schema: %s" % schema_problems(res))
    expect(res["sweep"] == "streams" and res["connections"] == 2, "top-level sweep fields")
    names = [s["server"] for s in res["series"]]
    expect(names == ["nginx", "nginx-h2load", "h1only"], "series %s" % names)
    ng, ref, h1 = res["series"]
    expect(ng["status"] == "ok" and ng["protocol"] == "h2", "nginx: %s" % ng["status"])
    expect("over HTTP/2" in ng["verified"]["detail"], ng["verified"])
    for pt, m in zip(ng["points"], (1, 4)):
        expect(pt["protocol"] == "h2" and pt["connections"] == 2 and pt["streams"] == m and
               pt["in_flight"] == 2 * m, "nginx point shape %s" % pt)
        expect(pt["median"]["rps"] > 0 and pt["median"]["failed"] == 0, "nginx figures")
        expect(pt["histogram"]["buckets"], "nginx histogram")
    expect(ref["kind"] == "h2load" and ref["reference_of"] == "nginx" and
           ref["status"] == "ok", "h2load series: %s %s" % (ref["status"], ref["errors"]))
    expect(ref["command"][0] == "h2load" and "-m" in ref["command"], ref["command"])
    for pt, m in zip(ref["points"], (1, 4)):
        med = pt["median"]
        expect(pt["streams"] == m and med["rps"] > 0 and med["complete"] > 0 and
               med["mean_ms"] is not None and med["p99_ms"] is None,
               "h2load point %s" % pt)
    expect(h1["status"] == "refused", "an HTTP/1-only server must be refused: %s" % h1)
    expect("HTTP/2" in h1["verified"]["detail"], h1["verified"])
    expect(all(p["gap"] == "refused" for p in h1["points"]), "refused gaps")
    expect("REFUSED" in out and "nginx-h2load" in out, "the log names both")
    return res


def connections_sweep(tmp):
    doc = {"name": "h2-conns", "purpose": "fixed streams per connection",
           "protocol": "h2", "streams": 3, "levels": [1, 2], "requests": 300,
           "warmup_s": 0, "repetitions": 1,
           "expect": {"status": 200, "body": "Hello, World!"}, "servers": [{"kind": "nginx"}]}
    rc, out, res = run(tmp, doc)
    expect(rc == 0, "exit %d" % rc)
    expect(schema_problems(res) == [], "schema: %s" % schema_problems(res))
    expect(res["sweep"] == "connections" and res["connections"] is None, "sweep fields")
    s = res["series"][0]
    expect(s["streams"] == 3 and s["connections"] is None, "series shape")
    for pt, c in zip(s["points"], (1, 2)):
        expect(pt["connections"] == c and pt["streams"] == 3 and pt["in_flight"] == 3 * c,
               "point shape %s" % pt)
        expect(pt["median"]["complete"] == 300, "requests per level: %s" % pt["median"])


def schema_rejects(res):
    for mutate, needle in (
            (lambda d: d["series"][0]["points"][0].update(streams=9), "must equal the level"),
            (lambda d: d["series"][0]["points"][0].update(protocol="h3"), "expected h1 or h2"),
            (lambda d: d["series"][0]["points"][1].update(in_flight=5), "connections x streams"),
            (lambda d: d.update(sweep="threads"), "sweep"),
            (lambda d: d["series"][1].pop("reference_of"), "reference_of"),
            (lambda d: [p.update(protocol="h1") for p in d["series"][0]["points"]],
             "must be null over HTTP/1")):
        d = copy.deepcopy(res)
        mutate(d)
        probs = schema_problems(d)
        expect(any(needle in p for p in probs), "expected a problem with %r, got %s" %
               (needle, probs))
    # a file from before the HTTP/2 fields is still valid
    d = copy.deepcopy(res)
    for k in ("sweep", "connections"):
        d.pop(k)
    d["series"] = [d["series"][0]]
    d["series"][0] = {k: v for k, v in d["series"][0].items()
                      if k not in ("protocol", "connections", "streams")}
    for p in d["series"][0]["points"]:
        for k in ("protocol", "connections", "streams", "in_flight"):
            p.pop(k)
    expect(schema_problems(d) == [], "old-style file: %s" % schema_problems(d))


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    missing = [t for t in ("nginx", "h2load", "curl") if not shutil.which(t)]
    missing += [b for b in NEEDED if not os.access(os.path.join(BUILD, b), os.X_OK)]
    if missing:
        print("skipped: missing %s" % ", ".join(missing))
        return 77
    tmp = tempfile.mkdtemp(prefix="corobench-test-h2-")
    try:
        res = streams_sweep(tmp)
        connections_sweep(tmp)
        schema_rejects(res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
