#!/usr/bin/env python3
"""Integration tests of what loadgen adds to ab: --json (the contract in the
README), --sweep with --warmup, --threads, --http1.1 (with chunked bodies),
--rate, read timeouts, the success-only latency (null, never NaN, when there
was no success), SIGINT during a sweep and -g with threads.
Runs the real binary against tests/loadgen/httpd.py on 127.0.0.1.
`--engine E` runs every case on that event loop (77 when it is unusable)."""
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import ENGINE_ARGS, LOADGEN, check, figure, finish, lg, start  # noqa: E402

TMP = tempfile.mkdtemp(prefix="loadgen-features-")


def no_nan(doc):
    def walk(x):
        if isinstance(x, float):
            return math.isfinite(x)
        if isinstance(x, dict):
            return all(walk(v) for v in x.values())
        if isinstance(x, list):
            return all(walk(v) for v in x)
        return True
    return walk(doc)


RATE_KEYS = {"corrected", "target_rps", "per_connection_rps", "schedule_s", "scheduled", "sent",
             "sent_rps", "kept", "late", "drain_s", "latency_ms_uncorrected",
             "histogram_uncorrected"}
LEVEL_KEYS = {"concurrency", "requests", "complete", "failed", "failures", "non2xx",
              "keepalive_requests", "duration_s", "rps", "bytes_total", "bytes_html",
              "transfer_kbps", "latency_ms", "cpu", "histogram"}


def check_level(name, lv, complete):
    check(name + " keys", set(lv) == LEVEL_KEYS, sorted(set(lv) ^ LEVEL_KEYS))
    check(name + " complete", lv["complete"] == complete, lv["complete"])
    check(name + " failures keys", set(lv["failures"]) == {"connect", "receive", "length",
          "exceptions", "timeout", "truncated", "status"}, lv["failures"])
    lat = lv["latency_ms"]
    check(name + " latency keys", set(lat) == {"min", "mean", "stdev", "p50", "p90", "p99",
          "p999", "max"}, lat)
    if lat["min"] is not None:
        check(name + " latency order", lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
              <= lat["p999"] <= lat["max"] * 1.01 and lat["min"] <= lat["mean"] <= lat["max"], lat)
    h = lv["histogram"]
    if lv["failed"] == 0 and lv["non2xx"] == 0:
        check(name + " histogram", h["unit"] == "us" and
              sum(c for _, c in h["buckets"]) == lv["complete"], h["buckets"][:3])
    check(name + " cpu", lv["cpu"]["user_s"] >= 0 and lv["cpu"]["sys_s"] >= 0, lv["cpu"])


def main():
    skip = start("features")
    if skip is not None:
        return skip
    srv = httpd.Server(body=b"y" * 100).start()
    url = "http://127.0.0.1:%d/" % srv.port
    try:
        # --sweep, --warmup, --json
        jf = os.path.join(TMP, "sweep.json")
        rc, out, err = lg(["-k", "-q", "-n", "300", "--sweep", "1,2,4", "--warmup", "0.2",
                           "--json", jf, url])
        check("sweep exit", rc == 0, (rc, err))
        doc = json.load(open(jf))
        check("json schema", doc["schema"] == "corobench/loadgen/v1" and doc["tool"] == "loadgen"
              and doc["http"] == "1.0" and doc["keepalive"] is True and doc["method"] == "GET"
              and doc["threads"] == 1 and doc["url"] == url, {k: doc[k] for k in doc if k != "levels"})
        check("json levels", [lv["concurrency"] for lv in doc["levels"]] == [1, 2, 4])
        for lv in doc["levels"]:
            check_level("level %d" % lv["concurrency"], lv, 300)
            check("level %d keepalive" % lv["concurrency"], lv["keepalive_requests"] == 300
                  and lv["failed"] == 0 and lv["requests"] == 300 and lv["bytes_html"] == 30000)
        check("json finite", no_nan(doc))
        check("sweep prints a report per level", out.count("Complete requests:") == 3)

        # --warmup goes on into the timed load on its connections (as
        # h2load's --warm-up-time): c connections in all, not c for the
        # warm-up and c more for the timed load, whose first requests would
        # each carry a connect; -n counts the timed requests only
        srv_w = httpd.Server(body=b"w" * 10).start()
        try:
            url_w = "http://127.0.0.1:%d/" % srv_w.port
            rc, out, err = lg(["-k", "-c", "4", "-n", "200", "--warmup", "0.3", url_w])
            srv_w.wait_idle()
            check("warmup keeps its connections", rc == 0 and srv_w.conns == 4
                  and figure(out, "Complete requests") == 200
                  and figure(out, "Keep-Alive requests") == 200
                  and figure(out, "HTML transferred") == 2000
                  and srv_w.heads > 200, (rc, srv_w.conns, srv_w.heads, out[-600:]))
        finally:
            srv_w.stop()

        # --json without --sweep: one level at -c
        jf1 = os.path.join(TMP, "one.json")
        rc, out, err = lg(["-n", "50", "-c", "5", "--json", jf1, url])
        doc = json.load(open(jf1))
        check("single level", rc == 0 and len(doc["levels"]) == 1
              and doc["levels"][0]["concurrency"] == 5 and doc["keepalive"] is False)

        # --threads: exact merge
        gp = os.path.join(TMP, "threads.tsv")
        rc, out, err = lg(["-k", "-n", "2000", "-c", "8", "--threads", "2", "-g", gp, url])
        check("threads complete", rc == 0 and figure(out, "Complete requests") == 2000
              and figure(out, "Keep-Alive requests") == 2000 and figure(out, "Failed requests") == 0
              and figure(out, "HTML transferred") == 200000, out[-900:])
        check("threads heartbeat", err.count("Completed ") == 10 and "Finished 2000 requests" in err, err)
        rows = open(gp).read().splitlines()
        check("threads -g rows", len(rows) == 2001 and rows[0].startswith("starttime\t"), len(rows))

        # --rate: open model, paced
        jr = os.path.join(TMP, "rate.json")
        t0 = time.time()
        rc, out, err = lg(["-k", "-n", "100", "-c", "4", "--rate", "200", "--json", jr, url])
        el = time.time() - t0
        check("rate paced", rc == 0 and figure(out, "Complete requests") == 100 and 0.4 <= el < 5,
              (rc, el))
        lv = json.load(open(jr))["levels"][0]
        check_level("rate level", {k: v for k, v in lv.items() if k != "rate"}, 100)
        rate = lv.get("rate") or {}
        check("rate json keys", set(rate) == RATE_KEYS, sorted(set(rate) ^ RATE_KEYS))
        check("rate json figures", rate.get("corrected") is True and rate["target_rps"] == 200
              and rate["per_connection_rps"] == 50 and rate["scheduled"] == 100
              and rate["sent"] == 100 and abs(rate["schedule_s"] - 0.5) < 1e-9
              and rate["kept"] is True and set(rate["late"]) == {
                  "threshold_ms", "count", "busy", "mean_ms", "p50_ms", "p99_ms", "max_ms"}
              and sum(c for _, c in rate["histogram_uncorrected"]["buckets"]) == 100
              and rate["latency_ms_uncorrected"]["p50"] <= lv["latency_ms"]["p50"], rate)
        # the text report: measured means, no closed-loop formula
        check("rate report", not re.search(r"^Time per request:.*\(mean\)$", out, re.M) and
              "(mean, from each request's intended start)" in out and
              "actual start: uncorrected" in out and "Target rate:            200.00" in out and
              "\nUncorrected: the same" in out, out[-2500:])
        # -t with --rate: the schedule is -t long, not capped at ab's 50000
        rc, out, err = lg(["-k", "-t", "1", "-c", "2", "--rate", "300", "--json", jr, url])
        lv = json.load(open(jr))["levels"][0]
        # (a request due just before -t's end that a loaded machine starts
        # after it is answered but not counted as sent, and the load
        # was offered until its start: complete >= sent, duration_s >= 1)
        check("rate -t schedule", rc == 0 and lv["rate"]["scheduled"] == 300
              and 1.0 <= lv["duration_s"] < 1.1 and lv["rate"]["kept"] is True
              and 297 <= lv["rate"]["sent"] <= lv["complete"] <= 300,
              (rc, lv.get("rate", {}).get("sent"), lv.get("complete")))
        # a rate the connections cannot carry (a server that never answers):
        # reported not kept, the sent ones waited for up to -s, no NaN
        mute = socket.socket()
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        rc, out, err = lg(["-k", "-t", "1", "-c", "2", "-s", "1", "--rate", "100", "--json", jr,
                           "http://127.0.0.1:%d/" % mute.getsockname()[1]], timeout=20)
        mute.close()
        doc = json.load(open(jr))
        lv = doc["levels"][0]
        check("rate not kept", rc == 0 and lv["rate"]["kept"] is False
              and lv["rate"]["scheduled"] == 100 and 2 <= lv["rate"]["sent"] <= 6
              and lv["complete"] == 0 and lv["requests"] == lv["failures"]["timeout"] >= 2
              and "NOT kept" in out and no_nan(doc),
              (rc, lv.get("rate", {}).get("sent"), lv["failures"], out[-800:]))
    finally:
        srv.stop()

    # --http1.1 with chunked bodies, with and without -k
    srv = httpd.Server(body=b"z" * 50, chunked=True).start()
    url = "http://127.0.0.1:%d/" % srv.port
    try:
        rc, out, err = lg(["--http1.1", "-k", "-n", "200", "-c", "4", "-s", "5", url], timeout=30)
        check("http1.1 chunked keepalive", rc == 0 and figure(out, "Complete requests") == 200
              and figure(out, "Keep-Alive requests") == 200 and figure(out, "Failed requests") == 0,
              out[-700:])
        rc, out, err = lg(["--http1.1", "-n", "20", url], timeout=30)
        check("http1.1 close", rc == 0 and figure(out, "Complete requests") == 20
              and figure(out, "Failed requests") == 0, out[-700:])
    finally:
        srv.stop()

    # only error pages: latency is null in JSON, no NaN anywhere
    srv = httpd.Server(status=500).start()
    try:
        jf = os.path.join(TMP, "err.json")
        rc, out, err = lg(["-k", "-n", "20", "--json", jf, "http://127.0.0.1:%d/" % srv.port])
        lv = json.load(open(jf))["levels"][0]
        check("non2xx latency null", lv["non2xx"] == 20 and lv["latency_ms"]["p50"] is None
              and lv["histogram"]["buckets"] == [] and "nan" not in out.lower(), lv)
    finally:
        srv.stop()

    # read timeout: a listener that never answers
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    jf = os.path.join(TMP, "timeout.json")
    rc, out, err = lg(["-n", "2", "-s", "1", "--json", jf,
                       "http://127.0.0.1:%d/" % mute.getsockname()[1]], timeout=20)
    lv = json.load(open(jf))["levels"][0]
    check("timeout counted", rc == 0 and lv["failures"]["timeout"] == 2 and lv["complete"] == 0
          and lv["latency_ms"]["mean"] is None and "nan" not in out.lower()
          and "No successful requests" in out, (rc, out[-600:], lv["failures"]))
    mute.close()

    # SIGINT during the second level: the report, exit 1, the first level kept
    srv = httpd.Server().start()
    try:
        jf = os.path.join(TMP, "int.json")
        # level 1 runs 0-2 s, level 2 from 2 s: interrupt in the middle of it
        p = subprocess.Popen([LOADGEN] + ENGINE_ARGS +
                             ["-k", "-t", "2", "--sweep", "1,2", "--json", jf,
                              "http://127.0.0.1:%d/" % srv.port],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        doc = json.load(open(jf))
        check("sigint", p.returncode == 1 and out.count("Complete requests:") == 2
              and len(doc["levels"]) == 1 and doc["levels"][0]["concurrency"] == 1,
              (p.returncode, len(doc["levels"]), err[-300:]))
    finally:
        srv.stop()

    # (TLS: tests/loadgen/tls.py)
    rc, out, err = lg(["--bogus", "http://127.0.0.1:1/"])
    check("bad long option", rc == 22 and "Usage:" in err, err[:200])
    rc, out, err = lg(["--help"])
    check("help lists long options", rc == 0 and "--sweep" in out and "--threads" in out
          and not err, (rc, err[:200]))

    return finish()


if __name__ == "__main__":
    sys.exit(main())
