"""What loadgen's integration tests share: the binary (from $COROBENCH_BUILD,
with `--engine E` from the test's command line), running it, reading ab's
report figures, recording checks, free ports (nginx.py's), the engine probe
(77 when the engine asked for is unusable here), and stopping a process the
test started by its PID. nginx itself: nginx.py. Standard library only."""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nginx import free_port  # noqa: E402,F401  (for the tests that import it from here)

BUILD = os.environ.get("COROBENCH_BUILD", ".")
LOADGEN = os.path.abspath(os.path.join(BUILD, "loadgen", "loadgen"))
ENGINE = sys.argv[sys.argv.index("--engine") + 1] if "--engine" in sys.argv else None
ENGINE_ARGS = ["--engine", ENGINE] if ENGINE else []
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:900]))
    if not cond:
        failures.append(name)
    return cond


def lg(args, timeout=60, cwd=None, engine=True):
    """(exit status, stdout, stderr) of loadgen; -1 when it overran timeout."""
    try:
        p = subprocess.run([LOADGEN] + (ENGINE_ARGS if engine else []) + args,
                           capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return -1, "", "(timed out)"
    return p.returncode, p.stdout, p.stderr


def figure(out, label):
    m = re.search(r"^%s:\s+(\d+)" % re.escape(label), out, re.M)
    return int(m.group(1)) if m else None


def figures(out):
    return {k: figure(out, k) for k in ("Complete requests", "Failed requests",
                                         "Keep-Alive requests", "HTML transferred",
                                         "Non-2xx responses", "Concurrency Level",
                                         "Document Length")}


def start(name):
    """The test's preamble: the binary is there, the engine usable. None to
    go on, else the exit status to return (1, or 77 for skipped)."""
    if not os.access(LOADGEN, os.X_OK):
        print("loadgen not built at", LOADGEN)
        return 1
    if ENGINE:
        rc, out, err = lg(["-n", "1", "http://127.0.0.1:1/"], timeout=30)
        if "unusable here" in err:
            print("%s: --engine %s unusable here: skipping" % (name, ENGINE))
            return 77
    return None


def finish():
    print("%d failed" % len(failures))
    return 1 if failures else 0


def stop(p, sig=signal.SIGTERM, grace=10):
    """Stops a process the test started, by its PID (killed after grace s)."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
    p.wait()

