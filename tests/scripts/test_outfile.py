#!/usr/bin/env python3
"""scripts/outfile.py, the one output-file rule of the Python scripts, and
the scripts that follow it.

The module: a new file is made, a plain one replaced whole with its
permissions kept and nothing left beside it; a symlink stays a symlink and
fills its target (made when missing); a FIFO's reader gets the whole file; a
file with another hard link changes under both names; a link to /dev/null
leaves both alone; "-" is standard output; check() refuses a missing folder
and a folder in one line; install() puts another program's file in place by
the same rule; point() (the runner's latest.json) makes or moves its own
symlink and writes through anything else the user put there.

The scripts (on the committed results/baseline/ci.json): export -o and
compare --json / --bench-json through symlinks and a FIFO, "-" as standard
output, and every script refusing an output it cannot write before doing any
work (export, compare, report, icount, plot, trend)."""
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get("COROBENCH_SOURCE") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(SOURCE, "scripts")
sys.path.insert(0, SCRIPTS)
import outfile  # noqa: E402

RESULT = os.path.join(SOURCE, "results", "baseline", "ci.json")
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:800]))
    if not cond:
        failures.append(name)


def fifo_read(path):
    got = []
    t = threading.Thread(target=lambda: got.append(open(path, "rb").read()), daemon=True)
    t.start()
    return t, got


def script(args, timeout=120):
    p = subprocess.run([sys.executable, os.path.join(SCRIPTS, args[0])] + args[1:],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def module_cases(d):
    # a new file, then a plain one replaced (permissions kept, nothing left)
    p = os.path.join(d, "plain.txt")
    outfile.write_text(p, "one")
    os.chmod(p, 0o640)
    outfile.write_text(p, "two")
    check("plain file replaced", open(p).read() == "two"
          and stat.S_IMODE(os.stat(p).st_mode) == 0o640)
    check("nothing left beside it", sorted(os.listdir(d)) == ["plain.txt"], os.listdir(d))

    # a symlink stays one; a dangling one gets its target made
    os.symlink("plain.txt", os.path.join(d, "link"))
    outfile.write_json(os.path.join(d, "link"), {"a": 1})
    check("symlink kept, target filled", os.path.islink(os.path.join(d, "link"))
          and open(p).read() == '{"a": 1}\n')
    os.symlink("made.txt", os.path.join(d, "dangling"))
    outfile.check(os.path.join(d, "dangling"))
    outfile.write_text(os.path.join(d, "dangling"), "x")
    check("dangling symlink: target made", os.path.islink(os.path.join(d, "dangling"))
          and open(os.path.join(d, "made.txt")).read() == "x")

    # a FIFO's reader gets it all; a hard link changes under both names
    f = os.path.join(d, "fifo")
    os.mkfifo(f)
    t, got = fifo_read(f)
    outfile.write_bytes(f, b"y" * 300000)
    t.join(10)
    check("FIFO reader gets it all", got == [b"y" * 300000]
          and stat.S_ISFIFO(os.lstat(f).st_mode))
    h1, h2 = os.path.join(d, "h1"), os.path.join(d, "h2")
    outfile.write_text(h1, "old")
    os.link(h1, h2)
    outfile.write_text(h1, "new")
    check("hard link written in place", open(h2).read() == "new"
          and os.stat(h1).st_ino == os.stat(h2).st_ino)
    os.symlink("/dev/null", os.path.join(d, "null"))
    outfile.write_text(os.path.join(d, "null"), "z")
    check("a link to a device", os.path.islink(os.path.join(d, "null"))
          and stat.S_ISCHR(os.stat("/dev/null").st_mode))

    # "-" is standard output
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r); import outfile; "
                        "outfile.write_json('-', {'b': 2})" % SCRIPTS],
                       capture_output=True, text=True)
    check("'-' is stdout", r.stdout == '{"b": 2}\n' and not os.path.exists("-"), r)

    # check(): one line, before any work
    for bad, why in ((os.path.join(d, "no", "x"), "does not exist"), (d, "is a folder")):
        try:
            outfile.check(bad)
            check("check refuses: %s" % why, False, "accepted")
        except outfile.OutfileError as e:
            check("check refuses: %s" % why, why in str(e) and "\n" not in str(e), e)

    # install(): another program's file, by the same rule
    part = outfile.part_name(p)
    with open(part, "w") as fh:
        fh.write("from gnuplot")
    outfile.install(part, os.path.join(d, "link"))
    check("install through a symlink", os.path.islink(os.path.join(d, "link"))
          and open(p).read() == "from gnuplot" and not os.path.exists(part))

    # point(): the runner's latest.json
    res = os.path.join(d, "r1.json")
    outfile.write_text(res, "result 1")
    latest = os.path.join(d, "latest.json")
    outfile.point(latest, "r1.json", res)
    check("point makes a symlink", os.readlink(latest) == "r1.json")
    outfile.write_text(os.path.join(d, "r2.json"), "result 2")
    outfile.point(latest, "r2.json", os.path.join(d, "r2.json"))
    check("point moves its own symlink", os.readlink(latest) == "r2.json")
    os.unlink(latest)
    os.mkdir(os.path.join(d, "mine"))
    os.symlink(os.path.join("mine", "copy.json"), latest)
    outfile.point(latest, "r1.json", res)
    check("point writes through the user's symlink", os.readlink(latest) == "mine/copy.json"
          and open(os.path.join(d, "mine", "copy.json")).read() == "result 1")
    os.unlink(latest)
    os.mkfifo(latest)
    t, got = fifo_read(latest)
    outfile.point(latest, "r2.json", os.path.join(d, "r2.json"))
    t.join(10)
    check("point writes through a FIFO", got == [b"result 2"]
          and stat.S_ISFIFO(os.lstat(latest).st_mode))


def script_cases(d):
    # export -o through a symlink and a FIFO; "-"
    os.symlink("target.csv", os.path.join(d, "out.csv"))
    rc, out, err = script(["export", RESULT, "--format", "csv", "-o", os.path.join(d, "out.csv")])
    csv = open(os.path.join(d, "target.csv")).read() if rc == 0 else ""
    check("export -o symlink", rc == 0 and os.path.islink(os.path.join(d, "out.csv"))
          and csv.startswith("scenario,"), (rc, err, csv[:100]))
    f = os.path.join(d, "csv.fifo")
    os.mkfifo(f)
    t, got = fifo_read(f)
    rc, out, err = script(["export", RESULT, "--format", "csv", "-o", f])
    t.join(20)
    check("export -o FIFO", rc == 0 and got and got[0].decode() == csv, (rc, err))
    rc, out, err = script(["export", RESULT, "--format", "csv", "-o", "-"])
    check("export -o -", rc == 0 and out == csv, (rc, err))

    # compare --json and --bench-json through symlinks
    os.symlink("rep.json", os.path.join(d, "j"))
    os.symlink("bench.json", os.path.join(d, "b.json"))
    rc, out, err = script(["compare", RESULT, RESULT, "--json", os.path.join(d, "j"),
                           "--bench-json", os.path.join(d, "b.json")])
    check("compare --json/--bench-json through symlinks", rc in (0, 1)
          and os.path.islink(os.path.join(d, "j")) and os.path.islink(os.path.join(d, "b.json"))
          and open(os.path.join(d, "rep.json")).read().startswith("{")
          and open(os.path.join(d, "bench.json")).read().startswith("[")
          and os.path.isfile(os.path.join(d, "b.smaller.json")), (rc, err[-400:]))

    # refused before any work, in one line
    missing = os.path.join(d, "none", "x")
    for args in (["export", RESULT, "--format", "csv", "-o", missing],
                 ["compare", RESULT, RESULT, "--json", missing],
                 ["compare", RESULT, RESULT, "--bench-json", missing + ".json"],
                 ["report", RESULT, "-o", missing],
                 ["icount", "measure", "-o", d],
                 ["plot", RESULT, "--outdir", os.path.join(d, "plain.txt")],
                 ["trend", "--out", os.path.join(d, "plain.txt")]):
        t0 = time.monotonic()
        rc, out, err = script(args, timeout=60)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        check("%s refuses its output at once" % " ".join(args[:2]),
              rc != 0 and time.monotonic() - t0 < 20 and len(lines) == 1
              and ("does not exist" in err or "is a folder" in err or "not a folder" in err
                   or "cannot make the folder" in err), (rc, err[-400:]))


def main():
    d = tempfile.mkdtemp(prefix="corobench-outfile-")
    try:
        m = os.path.join(d, "module")
        os.mkdir(m)
        module_cases(m)
        s = os.path.join(d, "scripts")
        os.mkdir(s)
        with open(os.path.join(s, "plain.txt"), "w") as f:
            f.write("not a folder")
        script_cases(s)
    finally:
        subprocess.run(["rm", "-rf", d])
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
