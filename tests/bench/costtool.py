"""costtool.py — what test_costbreak.py and test_costratio.py share: the
tiny proxy scenario both scripts run briefly, running a script of scripts/
on it, and whether a process they started is still there."""
import json
import os
import subprocess
import sys


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


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
