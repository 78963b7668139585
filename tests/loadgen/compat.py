#!/usr/bin/env python3
"""Compatibility test: real ab (apache2-utils) against loadgen.

Both run with the same options against the same small local server
(tests/loadgen/httpd.py, restarted for each run so its request counter, which
drives varying lengths and dropped connections, starts equal). The check:
the same report lines in the same order with the same labels, the same
deterministic figures (Complete/Failed requests and their split, Document
Length, Total and HTML transferred, Non-2xx, Keep-Alive requests), the same
progress lines, the same exit code, and -g/-e files in ab's column layout.
Exits 77 (meson's "skipped") when ab is not installed. `--engine E` runs
loadgen with that event loop (epoll or uring; 77 when uring is unusable here).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import ENGINE, ENGINE_ARGS, LOADGEN, free_port  # noqa: E402

AB = shutil.which("ab")

# Figures that must be identical; everything else (times, rates) may differ.
EXACT = {"Server Software", "Server Hostname", "Document Path",
         "Document Length", "Concurrency Level", "Complete requests", "Failed requests",
         "Write errors", "Non-2xx responses", "Keep-Alive requests", "Total transferred",
         "HTML transferred"}
# ab sends "User-Agent: ApacheBench/2.3", loadgen its own name: the bytes sent
# per request differ by that much.
UA_DELTA = len("loadgen/0.1.0") - len("ApacheBench/2.3")
BANNER = re.compile(r"^(This is |Copyright 1996|Licensed to|Part of corobench|and The Apache|"
                    r" This is | Copyright 1996| Licensed to| Part of corobench| and The Apache)")
SANE = re.compile(r"^(ERROR: The median|WARNING: The median|       deviation apart|"
                  r"        These results)")
NUM = re.compile(r"\d+(\.\d+)?")


def normalize(text, prog):
    """Lines as (kind, text) with non-deterministic figures masked."""
    out = []
    for line in text.splitlines():
        line = line.replace(prog, "PROG")
        if BANNER.match(line) or SANE.match(line) or line.startswith("INFO: engine =="):
            continue  # (-v 2 names loadgen's event loop; ab has none)
        if line.startswith("User-Agent: "):
            line = "User-Agent: X"
        m = re.match(r"^([A-Za-z][A-Za-z0-9 -]*):\s+(.*)$", line)
        html = re.match(r"^<tr [^>]*><th colspan=2 [^>]*>([^<:]+):</th><td colspan=2 [^>]*>(.*)</td></tr>$", line)
        if html:
            label, value = html.group(1), html.group(2)
            out.append(label + ": " + (value if label in EXACT else NUM.sub("#", value)))
        elif m and m.group(1) == "Total body sent":
            out.append("Total body sent: (checked apart)")
        elif m and m.group(1) in EXACT:
            out.append(line)
        elif line.startswith("   (Connect:"):
            out.append(line)
        else:
            out.append(" ".join(NUM.sub("#", line).split()))
    return out


def run(cmd, server_kw, url_fn, timeout=60):
    srv = httpd.Server(**server_kw).start() if server_kw is not None else None
    try:
        port = srv.port if srv else free_port()
        cmd = [x.replace("@P", str(port)) for x in cmd]
        url = url_fn(port)
        p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    finally:
        if srv:
            srv.stop()


def engine_unusable(engine):
    """loadgen refuses an engine it cannot run before connecting anywhere."""
    p = subprocess.run([LOADGEN, "--engine", engine, "-n", "1", "http://127.0.0.1:1/"],
                       capture_output=True, text=True, timeout=30)
    return "unusable here" in p.stderr


# Refused command lines: the same messages, then ab's usage text
USAGE_CASES = ("c-over-n", "bad-flag", "bad-flag-grouped", "missing-argument")
# Refused with one line that says what is wrong instead of ab's 45 lines of
# usage (issue 19): ab's first words, the same exit status
HINT_CASES = {"bad-url": "PROG: invalid URL '127.0.0.1:"}


def usage_differs(err_a, err_l):
    """ab's messages before the usage line, word for word (ab names itself
    by its base name in apr_getopt()'s messages, by its path elsewhere), and
    every line of ab's usage text in loadgen's, its TLS options too."""
    def lines(err, prog):
        base = os.path.basename(prog)
        return [("PROG" + ln[len(base):]) if ln.startswith(base + ": ") else ln
                for ln in normalize(err, prog)]
    ea, el = lines(err_a, AB), lines(err_l, LOADGEN)
    problems = []
    ua = next((i for i, ln in enumerate(ea) if ln.startswith("Usage: ")), len(ea))
    ul = next((i for i, ln in enumerate(el) if ln.startswith("Usage: ")), len(el))
    if ea[:ua] != el[:ul]:
        problems.append("messages differ:\n  ab: %r\n  lg: %r" % (ea[:ua], el[:ul]))
    if ul == len(el) or el[ul] != "Usage: PROG [options] [http[s]://]hostname[:port]/path":
        problems.append("no usage line: %r" % el[ul:ul + 1])
    missing = [ln for ln in ea[ua + 1:] if ln not in el]
    if missing:
        problems.append("ab's usage lines missing: %r" % missing)
    return problems


def check_gnuplot(path, n):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "starttime\tseconds\tctime\tdtime\tttime\twait", lines[0]
    assert len(lines) - 1 == n, (len(lines), n)
    row = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \d{4}\t\d+\t\d+\t\d+\t\d+\t\d+$")
    last = -1
    for ln in lines[1:]:
        assert row.match(ln), repr(ln)
        ttime = int(ln.split("\t")[4])
        assert ttime >= last, "rows are not sorted by ttime as ab writes them"
        last = ttime


def check_csv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "Percentage served,Time in ms", lines[0]
    assert len(lines) == 102, len(lines)
    for i, ln in enumerate(lines[1:]):
        assert re.match(r"^%d,\d+\.\d{3}$" % i, ln), ln


def main():
    if not AB:
        print("ab (apache2-utils) not installed: skipping")
        return 77
    if not os.access(LOADGEN, os.X_OK):
        print("loadgen not built at", LOADGEN)
        return 1
    if ENGINE and engine_unusable(ENGINE):
        print("--engine %s unusable here: skipping" % ENGINE)
        return 77
    tmp = tempfile.mkdtemp(prefix="loadgen-compat-")
    post = os.path.join(tmp, "post.txt")
    with open(post, "w") as f:
        f.write("a=1&b=2&c=" + "z" * 300)
    url = lambda p: "http://127.0.0.1:%d/path?q=1" % p  # noqa: E731
    plain = {}
    cases = [
        ("plain", ["-n", "40"], plain, url),
        ("keepalive", ["-k", "-n", "400", "-c", "5"], plain, url),
        ("concurrency", ["-n", "300", "-c", "10"], plain, url),
        ("timelimit", ["-t", "5", "-n", "200", "-c", "2"], plain, url),
        ("post", ["-n", "20", "-p", post, "-T", "application/x-www-form-urlencoded"], plain, url),
        ("put", ["-n", "20", "-u", post], plain, url),
        ("head", ["-n", "20", "-i"], plain, url),
        ("head-keepalive", ["-n", "20", "-i", "-k"], plain, url),
        ("method", ["-n", "20", "-m", "DELETE"], plain, url),
        ("headers", ["-n", "20", "-H", "X-One: 1", "-H", "Accept: text/plain"], plain, url),
        ("cookie", ["-n", "20", "-C", "session=abc"], plain, url),
        ("auth", ["-n", "20", "-A", "user:secret", "-P", "proxy:pw"], plain, url),
        ("vary-l", ["-n", "50", "-l"], {"vary": 7}, url),
        ("vary-no-l", ["-n", "50"], {"vary": 7}, url),
        ("vary-keepalive", ["-n", "60", "-k"], {"vary": 5}, url),
        ("no-percentiles", ["-n", "20", "-d"], plain, url),
        ("no-confidence", ["-n", "20", "-S"], plain, url),
        ("quiet", ["-n", "300", "-q"], plain, url),
        ("verbose", ["-n", "3", "-v", "2"], plain, url),
        ("non2xx", ["-n", "30", "-k"], {"status": 404}, url),
        ("html", ["-n", "10", "-w"], plain, url),
        ("drops-r", ["-n", "40", "-r"], {"drop_every": 5}, url),
        ("drops-no-r", ["-n", "40"], {"drop_every": 5}, url),
        ("drops-keepalive-r", ["-k", "-n", "40", "-r"], {"drop_every": 5}, url),
        ("server-closes-keepalive", ["-k", "-n", "50", "-c", "2"], {"close_every": 7}, url),
        ("refused", ["-n", "10"], None, lambda p: "http://127.0.0.1:%d/" % p),
        # -r against a closed port: ab counts two receive errors and one
        # exception per poll event (Receive 10, Exceptions 5 for -n 10)
        ("refused-r", ["-r", "-n", "10"], None, lambda p: "http://127.0.0.1:%d/" % p),
        ("refused-r-odd", ["-r", "-n", "5", "-v", "1"], None,
         lambda p: "http://127.0.0.1:%d/" % p),
        ("refused-r-c", ["-r", "-n", "12", "-c", "3"], None,
         lambda p: "http://127.0.0.1:%d/" % p),
        ("bad-url", ["-n", "10"], None, lambda p: "127.0.0.1:%d" % p),
        ("bad-flag", ["-W", "x", "-n", "10"], None, url),
        ("bad-flag-grouped", ["-kj", "-n", "10"], None, url),
        ("missing-argument", ["-k"], None, lambda p: "-n"),
        ("c-over-n", ["-n", "2", "-c", "5"], plain, url),
        ("proxy", ["-n", "10", "-X", "127.0.0.1:@P"], plain,
         lambda p: "http://example.invalid/via/proxy"),
        ("bind-window-timeout", ["-n", "20", "-B", "127.0.0.1", "-b", "65536", "-s", "5"], plain, url),
        ("gnuplot", ["-n", "30", "-c", "3", "-g", "@G"], plain, url),
        ("csv", ["-n", "60", "-e", "@E"], plain, url),  # ab reads past its array for n <= 50
    ]
    failures = 0
    for name, args, server_kw, url_fn in cases:
        res = {}
        files = {}
        for tool, exe in (("ab", AB), ("loadgen", LOADGEN)):
            a = []
            for x in args:
                if x in ("@G", "@E"):
                    files[(tool, x)] = os.path.join(tmp, "%s-%s%s" % (name, tool, x[1:]))
                    x = files[(tool, x)]
                a.append(x)
            res[tool] = run([exe] + (ENGINE_ARGS if tool == "loadgen" else []) + a,
                            server_kw, url_fn)
        (rc_a, out_a, err_a), (rc_l, out_l, err_l) = res["ab"], res["loadgen"]
        problems = []
        if rc_a != rc_l:
            problems.append("exit code: ab %d, loadgen %d" % (rc_a, rc_l))
        na, nl = normalize(out_a, AB), normalize(out_l, LOADGEN)
        sent_a = re.search(r"Total body sent:\s+(\d+)", out_a)
        sent_l = re.search(r"Total body sent:\s+(\d+)", out_l)
        done_l = re.search(r"Complete requests:\s+(\d+)", out_l)
        if sent_a and sent_l and done_l:
            want = int(sent_a.group(1)) + UA_DELTA * int(done_l.group(1))
            if int(sent_l.group(1)) != want:
                problems.append("Total body sent: loadgen %s, want %d" % (sent_l.group(1), want))
        if name in USAGE_CASES:
            problems += usage_differs(err_a, err_l)
        elif name in HINT_CASES:
            el = [ln.replace(LOADGEN, "PROG") for ln in err_l.splitlines()]
            ea = [ln.replace(AB, "PROG") for ln in err_a.splitlines()]
            if len(el) != 1 or not el[0].startswith(HINT_CASES[name]) or "e.g. http://" not in el[0]:
                problems.append("want one line with the hint, got %r" % el[:3])
            if not ea or not ea[0].startswith("PROG: invalid URL"):
                problems.append("ab said %r" % ea[:1])
        else:
            ea, el = normalize(err_a, AB), normalize(err_l, LOADGEN)
            if ea != el:
                problems.append("stderr differs:\n  ab: %r\n  lg: %r" % (ea, el))
        if na != nl:
            import difflib
            problems.append("stdout differs:\n" + "\n".join(difflib.unified_diff(na, nl, "ab", "loadgen", lineterm="")))
        if "@G" in args and not problems:
            done = int(re.search(r"Complete requests:\s+(\d+)", out_l).group(1))
            for tool in ("ab", "loadgen"):
                try:
                    check_gnuplot(files[(tool, "@G")], done)
                except AssertionError as e:
                    problems.append("%s -g file: %s" % (tool, e))
        if "@E" in args and not problems:
            for tool in ("ab", "loadgen"):
                try:
                    check_csv(files[(tool, "@E")])
                except AssertionError as e:
                    problems.append("%s -e file: %s" % (tool, e))
        if problems:
            failures += 1
            print("FAIL %s (%s)" % (name, " ".join(args)))
            for p in problems:
                print("  " + p.replace("\n", "\n  "))
        else:
            print("ok   %s (%s)" % (name, " ".join(args)))
    shutil.rmtree(tmp, ignore_errors=True)
    print("%d of %d cases differ" % (failures, len(cases)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
