#!/usr/bin/env python3
"""loadgen's output files (--json, -g, -e) never clobber what their name is:
a symlink stays a symlink and its target is filled; a FIFO's reader gets the
whole document; a file with another hard link is written in place (both names
see it); a link to a device leaves the link and the device alone; "-" is
standard output (the report then goes to stderr), and only one output may be
"-"; a plain file is replaced whole, keeping its permissions, with no
temporary file left over; a name in a folder that does not exist, or a
folder, is refused at once, in one line, before any load runs.
Runs the real binary against tests/loadgen/httpd.py on 127.0.0.1;
`--engine E` runs on that event loop (77 when it is unusable)."""
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import check, finish, lg, start  # noqa: E402

# what each output holds, checked on its content
FLAGS = {"--json": "json", "-g": "gnuplot", "-e": "csv"}


def valid(kind, text, n):
    """The text is the whole document an n-request run writes."""
    try:
        if kind == "json":
            doc = json.loads(text)
            return doc["schema"] == "corobench/loadgen/v1" and doc["levels"][0]["complete"] == n
        lines = text.splitlines()
        if kind == "gnuplot":
            return lines[0].startswith("starttime\t") and len(lines) == n + 1
        return lines[0] == "Percentage served,Time in ms" and len(lines) == 102
    except (ValueError, KeyError, IndexError):
        return False


def leftovers(d):
    return [f for f in os.listdir(d) if ".tmp." in f or f.startswith(".loadgen-")]


def main():
    skip = start("outputs")
    if skip is not None:
        return skip
    tmp = tempfile.mkdtemp(prefix="loadgen-outputs-")
    srv = httpd.Server().start()
    url = "http://127.0.0.1:%d/" % srv.port
    n = 20
    try:
        for flag, kind in FLAGS.items():
            d = os.path.join(tmp, kind)
            os.mkdir(d)

            # a symlink: it stays one, its target gets the document
            target = os.path.join(d, "target")
            with open(target, "w") as f:
                f.write("old")
            link = os.path.join(d, "link")
            os.symlink("target", link)
            rc, out, err = lg(["-q", "-n", str(n), flag, link, url])
            check("%s symlink kept" % flag, rc == 0 and os.path.islink(link)
                  and os.readlink(link) == "target", (rc, err))
            check("%s symlink target filled" % flag, valid(kind, open(target).read(), n))

            # a link whose target does not exist yet: the target is created
            dangling = os.path.join(d, "dangling")
            os.symlink("created", dangling)
            rc, out, err = lg(["-q", "-n", str(n), flag, dangling, url])
            check("%s dangling symlink" % flag, rc == 0 and os.path.islink(dangling)
                  and valid(kind, open(os.path.join(d, "created")).read(), n), (rc, err))

            # a FIFO: its reader gets the whole document
            fifo = os.path.join(d, "fifo")
            os.mkfifo(fifo)
            got = []
            reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
            reader.start()
            rc, out, err = lg(["-q", "-n", str(n), flag, fifo, url])
            reader.join(20)
            check("%s fifo reader gets it all" % flag, rc == 0 and got and valid(kind, got[0], n)
                  and stat.S_ISFIFO(os.lstat(fifo).st_mode), (rc, err, got[:1]))

            # "-": the document on stdout, alone; the report on stderr
            rc, out, err = lg(["-q", "-n", str(n), flag, "-", url], cwd=d)
            check("%s - is stdout" % flag, rc == 0 and valid(kind, out, n)
                  and "Complete requests:" in err and not os.path.exists(os.path.join(d, "-")),
                  (rc, out[:200], err[-300:]))

            # another hard link: written in place, both names see it
            h1, h2 = os.path.join(d, "h1"), os.path.join(d, "h2")
            with open(h1, "w") as f:
                f.write("old")
            os.link(h1, h2)
            ino = os.stat(h1).st_ino
            rc, out, err = lg(["-q", "-n", str(n), flag, h1, url])
            check("%s hard link kept" % flag, rc == 0 and os.stat(h1).st_ino == ino
                  and os.stat(h2).st_ino == ino and valid(kind, open(h2).read(), n), (rc, err))

            # a link to a device: the link and /dev/null stay what they are
            devlink = os.path.join(d, "null")
            os.symlink("/dev/null", devlink)
            rc, out, err = lg(["-q", "-n", str(n), flag, devlink, url])
            check("%s device through a link" % flag, rc == 0 and os.path.islink(devlink)
                  and stat.S_ISCHR(os.stat("/dev/null").st_mode), (rc, err))

            # a plain file: replaced whole, its permissions kept
            plain = os.path.join(d, "plain")
            with open(plain, "w") as f:
                f.write("old")
            os.chmod(plain, 0o640)
            rc, out, err = lg(["-q", "-n", str(n), flag, plain, url])
            check("%s plain file replaced" % flag, rc == 0 and valid(kind, open(plain).read(), n)
                  and stat.S_IMODE(os.stat(plain).st_mode) == 0o640, (rc, err))
            check("%s no temporary file left" % flag, not leftovers(d), leftovers(d))

            # refused before the run: a missing folder, a folder
            for bad, why in ((os.path.join(tmp, "missing", "out"), "does not exist"),
                             (d, "is a folder")):
                t0 = time.monotonic()
                rc, out, err = lg(["-q", "-t", "10", flag, bad, url])
                el = time.monotonic() - t0
                check("%s %s refused at once" % (flag, why),
                      rc == 1 and el < 5 and why in err and len(err.splitlines()) == 1
                      and "Benchmarking" not in out, (rc, el, err, out[-200:]))

        # one standard output only
        rc, out, err = lg(["-q", "-n", "5", "--json", "-", "-g", "-", url])
        check("two outputs on stdout refused", rc == 1 and "only one" in err
              and len(err.splitlines()) == 1, (rc, err))
    finally:
        srv.stop()
        subprocess.run(["rm", "-rf", tmp])
    return finish()


if __name__ == "__main__":
    sys.exit(main())
