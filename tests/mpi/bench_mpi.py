"""scripts/bench with several load hosts (issue 17), on this machine: a tiny
hello scenario on the coro server whose load_hosts names a hostfile of
localhost (2 slots) and whose load_ranks is 2, then the same through
--hosts/--ranks overriding a scenario without them. Checks that the run
completes, that every point has its figures, and that each series records the
ranks and their hosts from loadgen's JSON. Skipped (77) with the reason when
mpirun is missing or loadgen was built without Open MPI."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen_mpi import BUILD, check, finish, skip_reason  # noqa: E402

SOURCE = os.environ.get("COROBENCH_SOURCE", ".")


def bench(tmp, name, scenario, extra):
    scen = os.path.join(tmp, name + ".json")
    with open(scen, "w") as f:
        json.dump(scenario, f)
    r = subprocess.run([sys.executable, os.path.join(SOURCE, "scripts", "bench"), scen,
                        "--build", BUILD, "--results", os.path.join(tmp, "results"),
                        "--no-plot", "--no-icount"] + extra,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    out = r.stdout.decode("utf-8", "replace")
    if not check(name + ": scripts/bench exits 0", r.returncode == 0, out[-1500:]):
        return None
    with open(os.path.join(tmp, "results", name, "latest.json")) as f:
        return json.load(f)


def main():
    why = skip_reason()
    if why:
        print("skipped: " + why)
        return 77
    tmp = tempfile.mkdtemp(prefix="corobench-test-bench-mpi-")
    try:
        hostfile = os.path.join(tmp, "hosts")
        with open(hostfile, "w") as f:
            f.write("localhost slots=2\n")
        base = {"purpose": "loadgen over two ranks", "levels": [2, 4], "seconds": 1,
                "warmup_s": 0.2, "repetitions": 1, "keepalive": True,
                "expect": {"status": 200, "body": "Hello, World!"},
                "servers": [{"kind": "coro", "app": "hello"}]}
        for name, extra_sc, extra_args in (
                ("mpi-scenario", {"load_hosts": hostfile, "load_ranks": 2}, []),
                ("mpi-flags", {}, ["--hosts", hostfile, "--ranks", "2"])):
            res = bench(tmp, name, dict(base, name=name, **extra_sc), extra_args)
            if res is None:
                continue
            s = res["series"][0]
            check(name + ": loadgen ran as 2 ranks", s.get("loadgen_ranks") == 2,
                  s.get("loadgen_ranks"))
            check(name + ": their hosts recorded", isinstance(s.get("loadgen_hosts"), list)
                  and len(s["loadgen_hosts"]) == 2, s.get("loadgen_hosts"))
            pts = s.get("points", [])
            check(name + ": both levels measured",
                  [pt.get("level") for pt in pts] == [2, 4]
                  and all(pt.get("median") for pt in pts), pts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
