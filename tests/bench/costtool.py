"""costtool.py — what test_costbreak.py and test_costratio.py share: what
they need built, the tiny proxy scenario both scripts run briefly, running a
script of scripts/ on it, the refusal of an unknown server, and whether a
process they started is still there."""
import json
import os
import subprocess
import sys


BUILD = os.environ.get("COROBENCH_BUILD")
SOURCE = os.environ.get("COROBENCH_SOURCE")
NEEDED = ("servers/coro/coro-server", "servers/async/async-server",
          "servers/upstream/upstream", "loadgen/loadgen", "scenarios/scenario-check")


def not_ready():
    """None when the tests can run, else their exit status (1: not run by
    meson test; 77: skipped, not built yet), with one line said."""
    if not BUILD or not SOURCE:
        print("COROBENCH_BUILD and COROBENCH_SOURCE must be set (meson test does)")
        return 1
    missing = [b for b in NEEDED if not os.access(os.path.join(BUILD, b), os.X_OK)]
    if missing:
        print("skipped: not built yet: %s" % ", ".join(missing))
        return 77
    return None


def tiny_scenario(tmp, name, purpose):
    """A coro proxy and an async proxy-async behind a 5 ms upstream, one
    level of 8 connections for a second: the path of the file written."""
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump({"name": name, "purpose": purpose,
                   "upstream": {"delay_ms": 5, "size": 512}, "levels": [8],
                   "seconds": 1, "warmup_s": 0.5, "repetitions": 1, "keepalive": True,
                   "expect": {"status": 200, "body_upstream": 1},
                   "servers": [{"kind": "coro", "app": "proxy"},
                               {"kind": "async", "app": "proxy-async"}]}, f)
    return path


def run_tool(tool, build, *args):
    """(exit status, stdout and stderr) of `tool ARGS --build BUILD`."""
    r = subprocess.run([sys.executable, tool] + list(args) + ["--build", build],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150,
                       check=False)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def refuses_unknown_server(run, scen):
    rc, out = run(scen, "--servers", "nginx")
    assert rc == 1 and "no coro or async server nginx" in out, (rc, out)
    print("ok: bad usage and an unknown server refused")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
