"""loadgen --mpi under mpirun on this machine (issue 17), against the upstream
stub: 1, 2 and 4 ranks (--oversubscribe, loopback; --allow-run-as-root, as
CI runs as root). Checks that the total of requests is exact and split as
rank_share() says (remainders to the first ranks), that -c and --rate are
split too (and --h2's connections, --streams kept per connection, against
nginx when it is installed), that the merged histogram is the sum of the ranks' own (the JSON's
per_rank) with their extremes, that rank 0's report keeps ab's layout (the
same labels, in the same order, as one process's), the refusals (-c fewer
than the ranks, -g, mpirun without --mpi), a server that refuses every rank
(each rank's reason, no report), and a rank killed mid-run (the job fails
soon with mpirun's word on which rank died, no report). Skipped (77) with the
reason when mpirun is missing or loadgen was built without Open MPI."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "loadgen"))
from harness import LOADGEN, BUILD, check, finish, free_port, stop  # noqa: E402,F401
import nginx  # noqa: E402

UPSTREAM = os.path.abspath(os.path.join(BUILD, "servers", "upstream", "upstream"))
MPIRUN = shutil.which("mpirun")
MPI_ARGS = ["--oversubscribe", "--allow-run-as-root"]


def mpirun(n, args, timeout=120, mpi=True):
    """(exit status, stdout, stderr) of n ranks of loadgen; -1 on overrun."""
    cmd = [MPIRUN] + MPI_ARGS + ["-n", str(n), LOADGEN] + (["--mpi"] if mpi else []) + args
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "", "(timed out)"
    return p.returncode, p.stdout, p.stderr


def share(total, k, n):
    return total // n + (1 if k < total % n else 0)


def labels(out):
    """ab's report as its labels, in order (the figures left out)."""
    return [m.group(1) for m in re.finditer(r"^([A-Z][A-Za-z -]+?):", out, re.M)]


def buckets(level):
    return {u: c for u, c in level["histogram"]["buckets"]}


def check_level(name, level, n, requests, conc):
    per = level.get("per_rank") or []
    check(name + ": one per_rank object per rank", len(per) == n, len(per))
    check(name + ": all requests complete, exactly", level["complete"] == requests,
          level["complete"])
    check(name + ": -n split as rank_share() says",
          [p["requests"] for p in per] == [share(requests, k, n) for k in range(n)],
          [p["requests"] for p in per])
    check(name + ": -c split as rank_share() says",
          [p["concurrency"] for p in per] == [share(conc, k, n) for k in range(n)],
          [p["concurrency"] for p in per])
    check(name + ": ranks in order", [p["rank"] for p in per] == list(range(n)))
    total = {}
    for p in per:
        for u, c in buckets(p).items():
            total[u] = total.get(u, 0) + c
    check(name + ": merged histogram = sum of the ranks' histograms",
          buckets(level) == total, (buckets(level), total))
    check(name + ": merged count = sum of the ranks' counts",
          sum(total.values()) == level["complete"] - level["failed"] - level["non2xx"])
    lat = level["latency_ms"]
    check(name + ": merged min/max = extremes of the ranks'",
          lat["min"] == min(p["latency_ms"]["min"] for p in per if p["complete"])
          and lat["max"] == max(p["latency_ms"]["max"] for p in per), lat)
    check(name + ": bytes summed",
          level["bytes_total"] == sum(p["bytes_total"] for p in per))
    check(name + ": duration the longest rank's",
          level["duration_s"] == max(p["duration_s"] for p in per))


def skip_reason():
    """Why this suite cannot run here (mpirun missing, loadgen built without
    Open MPI), or None."""
    if not MPIRUN:
        return "mpirun not found (Debian openmpi-bin, scripts/deps --mpi)"
    rc = subprocess.run([LOADGEN, "--mpi", "-n", "1", "http://127.0.0.1:1/"],
                        capture_output=True, text=True, timeout=60)
    return rc.stderr.strip() if "built without Open MPI" in rc.stderr else None


def main():
    for path in (LOADGEN, UPSTREAM):
        if not os.access(path, os.X_OK):
            print("not built:", path)
            return 1
    why = skip_reason()
    if why:
        print("skipped: " + why)
        return 77
    tmp = tempfile.mkdtemp(prefix="lg-mpi-")
    port = free_port()
    up = subprocess.Popen([UPSTREAM, "--listen", "127.0.0.1:%d" % port, "--quiet"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = up.stdout.readline()
        if "listening" not in ready:
            print("upstream did not start:", ready)
            return 1
        url = "http://127.0.0.1:%d/" % port
        run(tmp, url, port)
    finally:
        stop(up)
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


def run(tmp, url, port):
    # one process: the layout to keep
    p = subprocess.run([LOADGEN, "-n", "1001", "-c", "4", "-k", url], capture_output=True,
                       text=True, timeout=120)
    solo = labels(p.stdout)
    check("one process runs", p.returncode == 0 and "Requests per second" in p.stdout,
          p.stderr)

    for n in (1, 2, 4):
        out = os.path.join(tmp, "r%d.json" % n)
        rc, so, se = mpirun(n, ["-n", "1001", "-c", "5", "-k", "--json", out, url])
        name = "%d ranks" % n
        if not check(name + ": exit 0", rc == 0, se + so):
            continue
        check(name + ": ab's layout, one report", labels(so) == solo
              and so.count("Requests per second") == 1, (labels(so), solo))
        check(name + ": report's total exact", re.search(r"^Complete requests:\s+1001$", so,
                                                         re.M) is not None, so)
        doc = json.load(open(out))
        check(name + ": JSON ranks and hosts", doc.get("ranks") == n
              and len(doc.get("hosts", [])) == n, doc.get("hosts"))
        check_level(name, doc["levels"][0], n, 1001, 5)

    # a sweep: every level split, each started together
    out = os.path.join(tmp, "sweep.json")
    rc, so, se = mpirun(2, ["-n", "300", "--sweep", "2,3", "-k", "--json", out, url])
    if check("sweep on 2 ranks: exit 0", rc == 0, se):
        doc = json.load(open(out))
        for lvl, c in zip(doc["levels"], (2, 3)):
            check_level("sweep -c %d" % c, lvl, 2, 300, c)

    # --rate: the target split, the schedules summed
    out = os.path.join(tmp, "rate.json")
    rc, so, se = mpirun(2, ["--rate", "400", "-n", "201", "-c", "3", "-k", "--json", out, url])
    if check("--rate on 2 ranks: exit 0", rc == 0, se):
        lvl = json.load(open(out))["levels"][0]
        per = lvl["per_rank"]
        check("--rate: each rank's target is its share",
              [q["rate"]["target_rps"] for q in per] == [200.0, 200.0],
              [q["rate"]["target_rps"] for q in per])
        check("--rate: the total target and schedule",
              lvl["rate"]["target_rps"] == 400.0 and lvl["rate"]["scheduled"] == 201
              and sum(q["rate"]["scheduled"] for q in per) == 201, lvl["rate"])
        check_level("--rate", lvl, 2, 201, 3)

    h2(tmp)

    # refusals
    rc, so, se = mpirun(4, ["-n", "100", "-c", "3", url])
    check("-c 3 on 4 ranks: refused, once, with the reason",
          rc != 0 and se.count("-c 3 is fewer connections than the 4 ranks") == 1
          and "Requests per second" not in so, se)
    rc, so, se = mpirun(2, ["-n", "100", "-g", os.path.join(tmp, "g.tsv"), url])
    check("-g with --mpi: refused", rc != 0 and "-g does not go with --mpi" in se, se)
    rc, so, se = mpirun(2, ["-n", "100", url], mpi=False)
    check("mpirun without --mpi: refused", rc != 0 and "without --mpi" in se
          and "Requests per second" not in so, se)

    # every rank refused by the server: each says so, no report
    # The port stays bound (not listening) through the run: connects are
    # refused, and no listener started meanwhile can take it (mpirun's own
    # out-of-band TCP port once did, and the ranks talked HTTP to it).
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d/" % hold.getsockname()[1]
    rc, so, se = mpirun(2, ["-n", "10", "-c", "2", dead])
    hold.close()
    check("refused on 2 ranks: fails with each rank's reason",
          rc != 0 and "rank 0 of 2" in se and "rank 1 of 2" in se
          and "Connection refused" in se and "Requests per second" not in so, se + so)

    # a rank killed mid-run: the job ends soon, saying which, with no report
    cmd = [MPIRUN] + MPI_ARGS + ["-n", "2", LOADGEN, "--mpi", "--duration", "60s", "-c", "2",
                                 "-k", url + "?delay=20"]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 30
    while victim is None and time.time() < deadline and job.poll() is None:
        time.sleep(0.2)
        victim = rank_pid(job.pid, 1)
    if not check("a rank to kill", victim is not None):
        stop(job)
        return
    time.sleep(1.5)  # past the barrier, mid-run
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    try:
        so, se = job.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        stop(job)
        so, se = job.communicate()
        check("killed rank: the job ended", False, "still running 45 s after the kill")
        return
    took = time.time() - t0
    print("job ended %.1f s after the kill, status %d" % (took, job.returncode))
    check("killed rank: the job fails, well before its 60 s",
          job.returncode != 0 and took < 30, (job.returncode, took))
    check("killed rank: mpirun says which rank died",
          re.search(r"rank 1 .*exited on signal 9", se) is not None, se)
    check("killed rank: no report presented", "Requests per second" not in so
          and "Complete requests" not in so, so)


def h2(tmp):
    """--h2 on 2 ranks against nginx's cleartext HTTP/2 (skipped without
    nginx): the connections split, --streams per connection on each rank."""
    if not shutil.which("nginx"):
        print("skip --h2: nginx not installed")
        return
    port = free_port()
    d = os.path.join(tmp, "nginx")
    os.makedirs(d)
    ng = nginx.start(d, """  access_log off;
  server {
    listen 127.0.0.1:%d http2;
    keepalive_requests 100000000;
    location / { return 200 "hello\\n"; }
  }""" % port, (port,))
    if ng is None:
        print("skip --h2: nginx did not start (no cleartext HTTP/2?)")
        return
    try:
        out = os.path.join(tmp, "h2.json")
        rc, so, se = mpirun(2, ["--h2", "-n", "999", "-c", "3", "--streams", "4", "--json",
                                out, "http://127.0.0.1:%d/" % port])
        if check("--h2 on 2 ranks: exit 0", rc == 0, se):
            lvl = json.load(open(out))["levels"][0]
            check("--h2: streams per connection on every rank",
                  lvl["streams"] == 4 and [q["streams"] for q in lvl["per_rank"]] == [4, 4],
                  lvl["per_rank"])
            check("--h2: report's streams in flight the total",
                  re.search(r"^Concurrency Level:\s+12$", so, re.M) is not None, so)
            check_level("--h2", lvl, 2, 999, 3)
    finally:
        nginx.stop(ng)


def rank_pid(parent, rank):
    """The PID of the given rank among mpirun's children (by the rank Open MPI
    put in its environment), or None."""
    try:
        kids = open("/proc/%d/task/%d/children" % (parent, parent)).read().split()
    except OSError:
        return None
    for kid in kids:
        try:
            env = open("/proc/%s/environ" % kid, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env:
            return int(kid)
    return None


if __name__ == "__main__":
    sys.exit(main())
