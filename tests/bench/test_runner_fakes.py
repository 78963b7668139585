#!/usr/bin/env python3
"""test_runner_fakes.py — scripts/bench against stand-ins (fakes.py) for the
servers, the upstream and loadgen, so the runner's own behaviour is tested
whatever state the real binaries are in:

  - a clean run: exit 0, a result that passes the schema checker, latest.json,
    a table, charts;
  - a server that answers wrong is refused, not timed, and the run says so;
  - a server that crashes mid-sweep is reported by name and level, the run goes
    on with the next server, the result marks the gap;
  - missing packages stop the run before any timing, with the scenario's hint;
  - a path that is not an origin-form request target stops it at once;
  - an optional server whose packages are missing is skipped with one line and
    the run succeeds; an external server's build command runs before it
    starts (a failing one fails that server only); every series records its
    style and runtime;
  - a rate scenario: one loadgen run per rate with its connections, the
    rate figures, one histogram per repetition (corrected and uncorrected),
    the table and each server's knee; the knee's rule on its own (knee_of);
  - Ctrl-C (SIGINT) or SIGTERM stops the run, keeps the result, says it was
    interrupted (not that loadgen failed), and leaves no process;
  - failed requests are a problem of their series (partial, exit 1);
  - "interleave": every server started first, then each level of each
    repetition on every server in turn; a crash there ends that server only.
"""
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_result  # noqa: E402

TAG = "corobench-test-%s" % uuid.uuid4().hex


def scenario(path, levels=(1, 2), seconds=1, reps=2, extra_servers=(), **more):
    doc = {"name": "fake-tiny", "purpose": "runner test against stand-ins",
           "upstream": {"delay_ms": 2, "size": 64}, "levels": list(levels),
           "seconds": seconds, "warmup_s": 0, "repetitions": reps,
           "expect": {"status": 200, "body_upstream": 1},
           "servers": [{"kind": "coro", "app": "proxy"},
                       {"kind": "async", "app": "proxy-async"}] + list(extra_servers)}
    doc.update(more)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def leftovers():
    """PIDs of processes that carry this test's tag in their environment."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if TAG.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


def run(tmp, scen, env_extra=None, args=(), timeout=90):
    env = dict(os.environ)
    env["CBTEST_TAG"] = TAG
    env.update(env_extra or {})
    cmd = [sys.executable, os.path.join(SOURCE, "scripts", "bench"), scen, "--build", BUILD,
           "--results", os.path.join(tmp, "results"), "--loadgen-bin",
           os.path.join(tmp, "loadgen"), "--coro-bin", os.path.join(tmp, "server"),
           "--async-bin", os.path.join(tmp, "server"), "--upstream-bin",
           os.path.join(tmp, "upstream")] + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                       timeout=timeout, check=False)
    out = r.stdout.decode("utf-8", "replace")
    print(out)
    return r.returncode, out


def latest(tmp):
    p = os.path.join(tmp, "results", "fake-tiny", "latest.json")
    with open(p) as f:
        return p, json.load(f)


def check_schema(path, complete=False):
    with open(path) as f:
        doc = json.load(f)
    c = check_result.Checker()
    c.check(doc, complete=complete)
    assert not c.problems, c.problems


def main():
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    tmp = tempfile.mkdtemp(prefix="corobench-test-runner-")
    try:
        for mode in ("upstream", "server", "loadgen"):
            w = os.path.join(tmp, mode)
            with open(w, "w") as f:
                f.write('#!/bin/sh\nexec "%s" "%s" %s "$@"\n' % (
                    sys.executable, os.path.join(HERE, "fakes.py"), mode))
            os.chmod(w, 0o755)
        scen = scenario(os.path.join(tmp, "tiny.json"))

        # 1. a clean run
        rc, out = run(tmp, scen)
        assert rc == 0, rc
        assert "verified: status 200, 64 bytes as expected" in out
        assert re.search(r"coro rep 2/2: c=2 done, [0-9.]+ req/s, 0 failed", out), out
        path, doc = latest(tmp)
        assert os.path.islink(path)
        check_schema(path, complete=True)
        assert [s["status"] for s in doc["series"]] == ["ok", "ok"]
        pt = doc["series"][0]["points"][1]
        assert pt["level"] == 2 and len(pt["repetitions"]) == 2 and pt["median"]["rps"] > 0
        assert pt["median"]["server_cpu"] is not None
        assert "result: " in out and "latest: " in out
        assert re.search(r"^server +c +req/s +mean ms +p99 ms +max ms +failed +srv µs/req "
                         r"+up µs/req$", out, re.M), out
        assert re.search(r"^async +2 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +0 +[0-9.]+ +[0-9.-]+$",
                         out, re.M), out
        # a stand-in binary is not counted by scripts/icount, and the result says why
        assert pt["median"]["server_csw_voluntary"] is not None
        ic = doc["series"][0]["icount"]
        assert ic["ir_per_request"] is None and "not this build's binary" in ic["note"], ic
        if shutil.which("gnuplot"):
            assert "chart: " in out and "-throughput.png" in out, out

        # 1b. latest.json that the user made a symlink elsewhere stays one and
        # gets the result through it (scripts/outfile.py's rule); a results
        # folder that cannot be made stops the run before anything starts
        rdir = os.path.join(tmp, "results", "fake-tiny")
        os.makedirs(os.path.join(tmp, "mine"), exist_ok=True)
        os.unlink(os.path.join(rdir, "latest.json"))
        os.symlink(os.path.join("..", "..", "mine", "latest-copy.json"),
                   os.path.join(rdir, "latest.json"))
        scen1b = scenario(os.path.join(tmp, "tiny1b.json"), levels=(1,), reps=1)
        rc, out = run(tmp, scen1b, args=["--no-plot"])
        assert rc == 0, rc
        stamp = re.search(r"result: (\S+)", out).group(1)
        with open(os.path.join(tmp, "mine", "latest-copy.json")) as f:
            mine = f.read()
        with open(stamp if os.path.isabs(stamp) else os.path.join(os.getcwd(), stamp)) as f:
            assert mine == f.read(), "latest.json's target lacks the result"
        assert os.readlink(os.path.join(rdir, "latest.json")).startswith(".."), "link replaced"
        os.unlink(os.path.join(rdir, "latest.json"))
        not_dir = os.path.join(tmp, "not-a-folder")
        with open(not_dir, "w") as f:
            f.write("x")
        env = dict(os.environ, CBTEST_TAG=TAG)
        r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "bench"), scen1b,
                            "--build", BUILD, "--results", not_dir, "--no-plot"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=60)
        o = r.stdout.decode()
        assert r.returncode == 1 and "cannot write the result" in o and "== coro" not in o, o

        # 2. a wrong answer is refused
        rc, out = run(tmp, scen, {"FAKE_WRONG": "1"}, ["--no-plot"])
        assert rc == 1, rc
        assert "REFUSED: coro answers wrong" in out and "REFUSED: async answers wrong" in out
        path, doc = latest(tmp)
        check_schema(path)
        for s in doc["series"]:
            assert s["status"] == "refused" and s["verified"]["ok"] is False
            assert all(p["gap"] == "refused" and not p["repetitions"] for p in s["points"])

        # 3. a crash mid-sweep: named with its level; the next server still runs
        scen3 = scenario(os.path.join(tmp, "tiny3.json"), levels=(1, 2, 4), seconds=1, reps=1)
        rc, out = run(tmp, scen3, {"FAKE_CRASH_AFTER": "15"}, ["--no-plot"])
        assert rc == 1, rc
        assert "CRASH: server coro killed by SIGSEGV during repetition 1 at concurrency" in out
        assert "== async" in out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        s = doc["series"][0]
        assert s["status"] == "crashed" and s["crashes"][0]["exit"] == "killed by SIGSEGV"
        lvl = s["crashes"][0]["level"]
        gaps = [p["level"] for p in s["points"] if p["gap"] == "crashed"]
        assert lvl in gaps and gaps[-1] == 4, (lvl, gaps)

        # 4. a missing requirement stops the run before timing, with the hint
        ext = {"kind": "external", "name": "ghost", "app": "none",
               "start": ["no-such-server-%s" % TAG[-8:], "{listen}"],
               "ready_url": "http://{host}:{port}/",
               "requires": ["no-such-server-%s" % TAG[-8:]],
               "missing_hint": "run scripts/deps --reference"}
        scen4 = scenario(os.path.join(tmp, "tiny4.json"), extra_servers=[ext])
        rc, out = run(tmp, scen4, args=["--no-plot"])
        assert rc == 1 and "run scripts/deps --reference" in out and "== coro" not in out, out

        # 4b. optional rows: a missing one is skipped with one line, the run
        # succeeds; a built one runs, with its style and runtime recorded
        ghost = dict(ext, optional=True)
        built = {"kind": "external", "name": "built", "app": "proxy", "style": "explicit",
                 "build": ["cp", os.path.join(tmp, "server"), "{tmp}/built-server"],
                 "start": ["{tmp}/built-server", "--listen", "{listen}", "--app", "proxy",
                           "--upstream", "{upstream}"],
                 "runtime_version": ["{tmp}/built-server", "--version"],
                 "ready_url": "http://{host}:{port}/"}
        scen4b = scenario(os.path.join(tmp, "tiny4b.json"), levels=(1,), reps=1,
                          extra_servers=[ghost, built])
        rc, out = run(tmp, scen4b, args=["--no-plot"])
        assert rc == 0, rc
        skip_lines = [ln for ln in out.splitlines() if "SKIPPED" in ln]
        assert skip_lines == ["== ghost: SKIPPED: ghost needs no-such-server-%s, which is not "
                              "installed: run scripts/deps --reference" % TAG[-8:]], skip_lines
        assert "problems:" not in out, out
        assert re.search(r"== built: built in [0-9.]+ s \(cp ", out), out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        st = {s["server"]: s for s in doc["series"]}
        assert st["ghost"]["status"] == "skipped" and st["built"]["status"] == "ok", st
        assert st["built"]["runtime"] == "server (fake) 0.0.0", st["built"]["runtime"]
        assert [st[n]["style"] for n in ("coro", "async", "ghost", "built")] == \
            ["implicit", "explicit", None, "explicit"]
        assert st["coro"]["runtime"].startswith("C: libevent "), st["coro"]["runtime"]

        # 4c. a build that fails fails its server, named, and the run says so
        broken = dict(built, name="broken", build=["false"])
        with open(os.path.join(tmp, "tiny4c.json"), "w") as f:
            json.dump({"name": "fake-tiny", "purpose": "a failing build", "levels": [1],
                       "seconds": 1, "warmup_s": 0, "repetitions": 1,
                       "upstream": {"delay_ms": 2, "size": 64},
                       "expect": {"status": 200, "body_upstream": 1},
                       "servers": [broken]}, f)
        rc, out = run(tmp, os.path.join(tmp, "tiny4c.json"), args=["--no-plot"])
        assert rc == 1, rc
        assert "== broken: FAILED: the build command false exited with status 1" in out, out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        assert doc["series"][0]["status"] == "failed", doc["series"][0]

        # 4d. a path that is not an origin-form request target stops the run at
        # once, with the file, the field and what is wrong (it used to pass,
        # and the runner then waited 20 s for a server that could not answer)
        with open(os.path.join(tmp, "tiny4d.json"), "w") as f:
            json.dump({"name": "fake-tiny", "purpose": "a path with a space", "levels": [1],
                       "seconds": 1, "warmup_s": 0, "repetitions": 1, "path": "/a b",
                       "upstream": {"delay_ms": 2, "size": 64},
                       "servers": [{"kind": "coro", "app": "proxy"}]}, f)
        t0 = time.monotonic()
        rc, out = run(tmp, os.path.join(tmp, "tiny4d.json"), args=["--no-plot"])
        assert rc == 1 and time.monotonic() - t0 < 15, (rc, time.monotonic() - t0)
        assert "tiny4d.json: path: a space at offset 2" in out and "== coro" not in out, out

        # 7. a rate scenario: the open model, its figures and knees
        with open(os.path.join(tmp, "rates.json"), "w") as f:
            json.dump({"name": "fake-tiny", "purpose": "rates against stand-ins",
                       "upstream": {"delay_ms": 2, "size": 64}, "rates": [20, 40],
                       "connections": [2, 4], "knee_factor": 3, "seconds": 1,
                       "warmup_s": 0, "repetitions": 2,
                       "expect": {"status": 200, "body_upstream": 1},
                       "servers": [{"kind": "coro", "app": "proxy"},
                                   {"kind": "async", "app": "proxy-async"}]}, f)
        rc, out = run(tmp, os.path.join(tmp, "rates.json"), args=["--no-plot"])
        assert rc == 0, rc
        assert re.search(r"coro rep 2/2: rate=40: the rate was (kept|NOT kept)", out), out
        assert re.search(r"^server +rate +req/s +kept +p50 ms +p99 ms +p99 unc ms +late "
                         r"+failed +srv µs/req$", out, re.M), out
        assert re.search(r"^async +knee: (40|20) requests/s \(p99 within 3x the unloaded", out,
                         re.M) or "knee: none" in out, out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        assert doc["sweep"] == "rate" and doc["levels"] == [20, 40], doc["levels"]
        for s in doc["series"]:
            assert s["knee"]["factor"] == 3 and len(s["knee"]["repetitions"]) == 2, s["knee"]
            for pt, conns in zip(s["points"], (2, 4)):
                assert pt["target_rps"] == pt["level"] and pt["connections"] == conns, pt
                assert len(pt["histograms"]) == len(pt["histograms_uncorrected"]) == 2
                m = pt["median"]
                assert m["target_rps"] == pt["level"] and isinstance(m["rate_kept"], bool)
                assert m["p99_uncorrected_ms"] is not None, m
        # the knee's rule on its own: the highest kept rate whose p99 stays
        # within the factor of the unloaded p99, the smallest of the kept
        # rates' (a stall at the lowest rate moves neither)
        knee_of = runpy.run_path(os.path.join(SOURCE, "scripts", "bench"))["knee_of"]
        rates = [100, 200, 400, 800]
        assert knee_of(rates, [10, 15, 19, 80], [True] * 4, 2) == (400, 10, True)
        assert knee_of(rates, [10, 15, 19, 20], [True] * 4, 2) == (800, 10, False)
        assert knee_of(rates, [40, 10, 12, 30], [True] * 4, 2) == (400, 10, True)
        assert knee_of(rates, [10, 25, 12, 40], [True] * 4, 2) == (400, 10, True)
        assert knee_of(rates, [10, 11, 12, 13], [True, True, False, False], 2) == \
            (200, 10, True)
        assert knee_of(rates, [10, 11, None, None], [True] * 4, 2) == (200, 10, False)
        assert knee_of(rates, [10, 11, 12, 13], [False] * 4, 2) == (None, None, True)
        assert knee_of(rates, [None] * 4, [True] * 4, 2) == (None, None, False)

        # 5. Ctrl-C (SIGINT) and SIGTERM: the result is kept, says "interrupted"
        # (not that loadgen failed), nothing is left running
        for n, sig in ((5, signal.SIGINT), (6, signal.SIGTERM)):
            scen5 = scenario(os.path.join(tmp, "tiny%d.json" % n), levels=(1, 2, 3, 4), seconds=2,
                             reps=3)
            env = dict(os.environ, CBTEST_TAG=TAG)
            p = subprocess.Popen([sys.executable, os.path.join(SOURCE, "scripts", "bench"), scen5,
                                  "--build", BUILD, "--results", os.path.join(tmp, "results"),
                                  "--no-plot", "--loadgen-bin", os.path.join(tmp, "loadgen"),
                                  "--coro-bin", os.path.join(tmp, "server"), "--async-bin",
                                  os.path.join(tmp, "server"), "--upstream-bin",
                                  os.path.join(tmp, "upstream")],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            # Interrupt inside the coro sweep, once its first level is done.
            killer = threading.Timer(60, p.kill)  # never hang the test
            killer.start()
            seen = []
            for raw in p.stdout:
                seen.append(raw.decode("utf-8", "replace"))
                if "coro rep 1/3: c=1 done" in seen[-1]:
                    time.sleep(0.3)
                    p.send_signal(sig)
                    break
            out = "".join(seen) + p.communicate(timeout=60)[0].decode("utf-8", "replace")
            killer.cancel()
            print(out)
            assert p.returncode == 130, p.returncode
            assert "bench: interrupted" in out
            assert "loadgen exited with status" not in out, "an interruption is not a failure"
            assert re.search(r"INTERRUPTED: interrupted during coro repetition 1 \(levels "
                             r"[0-9,]+ not measured\)", out), out
            assert "problems:" not in out, out
            path, doc = latest(tmp)
            check_schema(path)
            assert doc["complete"] is False and doc["interrupted"] is True
            assert doc["series"][0]["points"][0]["repetitions"], "the finished levels were lost"
            assert any(w.startswith("interrupted during coro repetition 1")
                       for w in doc["series"][0]["warnings"]), doc["series"][0]["warnings"]
            assert not doc["series"][0]["errors"], doc["series"][0]["errors"]
            time.sleep(0.5)
            left = leftovers()
            assert not left, "processes left running: %s" % left

        # 8. failed requests are a problem of the series: partial, exit 1
        rc, out = run(tmp, scen, {"FAKE_LOADGEN_FAILED": "3"}, ["--no-plot"])
        assert rc == 1, rc
        assert re.search(r"FAILURES: coro: requests failed or answered non-2xx \(c=1: 6 "
                         r"failed, 0 non-2xx of \d+ requests", out), out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        assert [s["status"] for s in doc["series"]] == ["partial", "partial"], doc["series"]
        assert doc["series"][0]["points"][0]["median"]["failed"] == 3

        # 9. interleaved: level by level, server by server, every repetition
        scen9 = scenario(os.path.join(tmp, "tiny9.json"), interleave=True)
        rc, out = run(tmp, scen9, args=["--no-plot"])
        assert rc == 0, rc
        order = re.findall(r"^  (coro|async) rep (\d)/2: sweeping c=(\d)", out, re.M)
        assert order == [(s, r, c) for r in "12" for c in "12" for s in ("coro", "async")], \
            order
        starts = [m.start() for m in re.finditer(r"^== ", out, re.M)]
        assert len(starts) == 2 and starts[1] < out.index("sweeping"), "not all started first"
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        assert doc["scenario_doc"]["interleave"] is True
        for s in doc["series"]:
            assert s["status"] == "ok", s
            assert all(len(p["repetitions"]) == 2 for p in s["points"]), s["points"]

        # 10. interleaved, a crash: that server stops, its gaps are marked,
        # nothing is left running
        rc, out = run(tmp, scen9, {"FAKE_CRASH_AFTER": "15"}, ["--no-plot"])
        assert rc == 1, rc
        assert "CRASH: server coro killed by SIGSEGV" in out, out
        path, doc = latest(tmp)
        check_schema(path, complete=True)
        assert doc["series"][0]["status"] == "crashed"
        assert any(p["gap"] == "crashed" or len(p["repetitions"]) < 2
                   for p in doc["series"][0]["points"])
        time.sleep(0.5)
        left = leftovers()
        assert not left, "processes left running: %s" % left
        print("ok")
        return 0
    finally:
        for pid in leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
