#!/usr/bin/env python3
"""The io_uring engine against the epoll engine: same options, same server
(tests/loadgen/httpd.py, restarted for each run so its request counter, which
drives varying lengths, resets and closes, starts equal). Checks the same
report lines with the same deterministic figures (compat.py's rules), the
same exit status and stderr, -g and -e files of identical structure (header,
columns, row count), the same JSON counts with "engine" naming the loop that
ran, a server that hangs up after promising keep-alive, --rate on io_uring
(the same counts and rate figures as on epoll), and Ctrl-C's report. Exits 77 (skipped)
when io_uring is unusable on this kernel or loadgen was built without it."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compat  # noqa: E402
import httpd  # noqa: E402

LOADGEN = compat.LOADGEN
TMP = tempfile.mkdtemp(prefix="loadgen-engines-")
failures = []
GP_ROW = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \d{4}\t\d+\t\d+\t\d+\t\d+\t\d+$")
CSV_ROW = re.compile(r"^(\d+),\d+\.\d{3}$")
JSON_COUNTS = ("concurrency", "requests", "complete", "failed", "failures", "non2xx",
               "keepalive_requests", "bytes_total", "bytes_html")


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)))
    if not cond:
        failures.append(name)


def run(engine, args, server_kw, url_fn=None, timeout=60):
    """One run on a fresh server; @G, @E and @J in args become files."""
    srv = httpd.Server(**server_kw).start() if server_kw is not None else None
    files = {}
    a = []
    for x in args:
        if x in ("@G", "@E", "@J"):
            files[x] = os.path.join(TMP, "%s%s" % (engine, x[1:]))
            x = files[x]
        a.append(x)
    try:
        port = srv.port if srv else compat.free_port()
        url = url_fn(port) if url_fn else "http://127.0.0.1:%d/" % port
        p = subprocess.run([LOADGEN, "--engine", engine] + a + [url], capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr, files
    finally:
        if srv:
            srv.stop()


def gnuplot_shape(path):
    lines = open(path).read().splitlines()
    bad = [ln for ln in lines[1:] if not GP_ROW.match(ln)]
    return lines[0], len(lines), bad[:2]


def csv_shape(path):
    lines = open(path).read().splitlines()
    return lines[0], [CSV_ROW.match(ln).group(1) if CSV_ROW.match(ln) else ln
                      for ln in lines[1:]]


def compare(name, args, server_kw, url_fn=None):
    res = {e: run(e, args, server_kw, url_fn) for e in ("epoll", "uring")}
    (rc_e, out_e, err_e, f_e), (rc_u, out_u, err_u, f_u) = res["epoll"], res["uring"]
    check(name + ": exit", rc_e == rc_u, (rc_e, rc_u, err_u[-300:]))
    ne, nu = compat.normalize(out_e, LOADGEN), compat.normalize(out_u, LOADGEN)
    check(name + ": report", ne == nu, "\n".join(
        "  epoll: %r\n  uring: %r" % (a, b) for a, b in zip(ne, nu) if a != b)
        or (len(ne), len(nu)))
    check(name + ": stderr", compat.normalize(err_e, LOADGEN) == compat.normalize(err_u, LOADGEN),
          (err_e[-300:], err_u[-300:]))
    if "@G" in args:
        ge, gu = gnuplot_shape(f_e["@G"]), gnuplot_shape(f_u["@G"])
        check(name + ": -g structure", ge == gu and not ge[2] and ge[0] ==
              "starttime\tseconds\tctime\tdtime\tttime\twait", (ge, gu))
    if "@E" in args:
        ce, cu = csv_shape(f_e["@E"]), csv_shape(f_u["@E"])
        check(name + ": -e structure", ce == cu and ce[0] == "Percentage served,Time in ms"
              and ce[1] == [str(i) for i in range(101)], (ce[:1], cu[:1]))
    if "@J" in args:
        je, ju = json.load(open(f_e["@J"])), json.load(open(f_u["@J"]))
        check(name + ": json engine", je["engine"] == "epoll" and ju["engine"] == "uring",
              (je["engine"], ju["engine"]))
        le = [{k: lv[k] for k in JSON_COUNTS} for lv in je["levels"]]
        lu = [{k: lv[k] for k in JSON_COUNTS} for lv in ju["levels"]]
        check(name + ": json counts", le == lu, (le, lu))
    return res


def main():
    if not os.access(LOADGEN, os.X_OK):
        print("loadgen not built at", LOADGEN)
        return 1
    if compat.engine_unusable("uring"):
        print("io_uring unusable here: skipping")
        return 77
    post = os.path.join(TMP, "post.txt")
    with open(post, "w") as f:
        f.write("a=1&b=" + "z" * 3000)
    plain = {}
    compare("keepalive", ["-k", "-n", "500", "-c", "5", "--json", "@J"], plain)
    compare("close", ["-n", "100", "-c", "4", "--json", "@J"], plain)
    compare("threads", ["-k", "-n", "2000", "-c", "8", "--threads", "2", "--json", "@J"],
            {"body": b"t" * 3000})
    compare("post", ["-k", "-n", "300", "-c", "3", "-p", post, "-T", "text/plain"], plain)
    compare("head", ["-k", "-n", "100", "-i"], plain)
    compare("large body", ["-k", "-n", "200", "-c", "2", "--json", "@J"],
            {"body": b"L" * 200000})
    compare("vary", ["-k", "-n", "200", "-c", "1", "--json", "@J"], {"vary": 5})
    compare("vary -l", ["-k", "-n", "200", "-c", "4", "-l"], {"vary": 5})
    compare("resets -r", ["-n", "60", "-r", "--json", "@J"], {"drop_every": 5})
    compare("resets -k -r", ["-k", "-n", "60", "-r", "--json", "@J"], {"drop_every": 5})
    compare("resets, no -r", ["-k", "-n", "60"], {"drop_every": 5})
    compare("server closes", ["-k", "-n", "50", "-c", "1", "--json", "@J"], {"close_every": 7})
    compare("non2xx", ["-k", "-n", "50", "--json", "@J"], {"status": 404})
    compare("http1.1 chunked", ["--http1.1", "-k", "-n", "200", "-c", "4", "--json", "@J"],
            {"chunked": True, "body": b"c" * 40})
    compare("http1.1 close", ["--http1.1", "-n", "40", "-c", "2"], {"chunked": True})
    compare("gnuplot csv", ["-k", "-n", "300", "-c", "3", "-g", "@G", "-e", "@E"], plain)
    compare("verbose", ["-n", "3", "-v", "2"], plain)
    compare("refused", ["-n", "10"], None)
    compare("refused -r", ["-n", "10", "-r"], None)

    # -s: a listener that never answers; both count two timeouts
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    port = mute.getsockname()[1]
    compare("timeout", ["-n", "2", "-s", "1", "--json", "@J"], None,
            lambda p: "http://127.0.0.1:%d/" % port)
    mute.close()

    # keep-alive promised, then a hang-up: the next request meets a reset;
    # whether the error flag is seen beside the end of stream is a race
    # (for ab too), so only the deterministic figures must match
    figs = {}
    for engine in ("epoll", "uring"):
        rc, out, err, f = run(engine, ["-k", "-n", "60", "-c", "1"], {"hangup_every": 7})
        split = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)",
                          out)
        figs[engine] = (rc, re.findall(r"^(Complete requests|Keep-Alive requests|Total transferred|"
                                       r"HTML transferred):\s+(\d+)", out, re.M),
                        split.groups()[:3] if split else None)
        check("hang-up %s: exceptions at most one per hang-up" % engine,
              split and int(split.group(4)) <= 7, out[-500:])
    check("hang-up: same figures", figs["epoll"] == figs["uring"], figs)

    # --rate runs on io_uring too: the same counts and schedule as epoll's
    rates = {}
    for engine in ("epoll", "uring"):
        rc, out, err, f = run(engine, ["-k", "-n", "50", "-c", "2", "--rate", "500", "--json",
                                       "@J"], {})
        doc = json.load(open(f["@J"]))
        lv = doc["levels"][0]
        rates[engine] = (rc, lv["complete"], lv["rate"]["scheduled"], lv["rate"]["sent"],
                         lv["rate"]["kept"], "Target rate:" in out)
        check("rate on %s" % engine, doc["engine"] == engine, doc.get("engine"))
    check("rate: same on both", rates["epoll"] == rates["uring"] ==
          (0, 50, 50, 50, True, True), rates)
    rc, out, err, f = run("auto", ["-n", "3", "-v", "2"], {})
    check("auto picks uring", "INFO: engine == uring" in out, out[:400])

    # Ctrl-C: the report for what was done, exit 1, on both
    for engine in ("epoll", "uring"):
        srv = httpd.Server().start()
        try:
            p = subprocess.Popen([LOADGEN, "--engine", engine, "-k", "-t", "20",
                                  "http://127.0.0.1:%d/" % srv.port],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            done = compat.re.search(r"Complete requests:\s+(\d+)", out)
            check("sigint " + engine, p.returncode == 1 and done and int(done.group(1)) > 0
                  and "Percentage of the requests" in out, (p.returncode, out[-300:]))
        finally:
            srv.stop()

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
