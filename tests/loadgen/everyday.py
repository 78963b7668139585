#!/usr/bin/env python3
"""loadgen for everyday use, beside ab's meaning (issue 19): --duration with
a unit and no 50,000-request cap (the cap itself is checked in test_opts.c);
-t with a non-integer refused in one line with the --duration that says it;
--help and --version exit 0 on stdout wherever they are, -h and -V keep ab's
meaning; a bad URL gets one line that says what is wrong; --format us prints
the report's times in microseconds (the longest request is the JSON's, exact).
Runs the real binary against tests/loadgen/httpd.py on 127.0.0.1; `--engine
E` runs on that event loop (77 when it is unusable)."""
import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402
from harness import check, figure, finish, lg, start  # noqa: E402


def main():
    skip = start("everyday")
    if skip is not None:
        return skip
    tmp = tempfile.mkdtemp(prefix="loadgen-everyday-")
    srv = httpd.Server().start()
    url = "http://127.0.0.1:%d/" % srv.port
    try:
        # --duration: a time with a unit
        rc, out, err = lg(["-q", "-k", "--duration", "500ms", "-c", "2", url])
        m = re.search(r"^Time taken for tests:\s+([0-9.]+) seconds", out, re.M)
        check("--duration 500ms", rc == 0 and m and 0.45 <= float(m.group(1)) < 5
              and figure(out, "Complete requests") > 0 and figure(out, "Failed requests") == 0,
              (rc, out[-500:], err[-200:]))
        rc, out, err = lg(["-q", "-k", "--duration", "30s", "-n", "200", url])
        check("--duration with -n: -n ends it", rc == 0 and figure(out, "Complete requests") == 200,
              (rc, out[-300:]))

        # -t: whole seconds as ab's, anything else refused with a hint
        for arg, hint in (("1s", "--duration 1s"), ("0.5", "--duration 0.5s")):
            rc, out, err = lg(["-t", arg, url])
            check("-t %s refused with a hint" % arg, rc == 22 and len(err.splitlines()) == 1
                  and hint in err and "ab would read" in err and not out, (rc, err, out[:200]))
        rc, out, err = lg(["-q", "-k", "-t", "1", "-n", "100", url])
        check("-t 1 as ab's", rc == 0 and figure(out, "Complete requests") == 100, (rc, err))

        # --help and --version: stdout, exit 0 (the servers' convention)
        for args in (["--help"], [url, "--help"], ["-n", "5", "--help", url]):
            rc, out, err = lg(args, engine=False)
            check("%s" % " ".join(args).replace(url, "URL"), rc == 0 and not err
                  and out.startswith("Usage: ") and "--duration" in out and "--pipeline" in out,
                  (rc, err[:200]))
        rc, out, err = lg(["--version"], engine=False)
        check("--version", rc == 0 and re.fullmatch(r"loadgen \d+\.\d+\.\d+\n", out) and not err,
              (rc, out, err))
        rc, out, err = lg(["-V"], engine=False)
        check("-V is ab's banner", rc == 0 and out.startswith("This is loadgen"), (rc, out))
        rc, out, err = lg(["-h"], engine=False)
        check("-h is ab's usage, exit 22", rc == 22 and err.startswith("Usage: ") and not out,
              (rc, err[:100]))

        # a bad URL: one line, what is wrong and what a URL looks like
        for bad, what in (("127.0.0.1:8080", "no path"), ("ftp://h/x", "http://"),
                          ("http://h:0/", "port"), ("http:///", "no host")):
            rc, out, err = lg(["-n", "3", bad])
            check("bad URL %s" % bad, rc == 22 and len(err.splitlines()) == 1
                  and "invalid URL '%s'" % bad in err and what in err
                  and "e.g. http://127.0.0.1:8080/" in err, (rc, err))

        # --format us: the tables in microseconds
        jf = os.path.join(tmp, "us.json")
        rc, out, err = lg(["-k", "-n", "300", "-c", "2", "--format", "us", "--json", jf, url])
        lv = json.load(open(jf))["levels"][0]
        longest = re.search(r"^ 100%\s+(\d+) \(longest request\)", out, re.M)
        total = re.search(r"^Total:\s+(\d+)\s+(\d+)\s+([0-9.]+)\s+(\d+)\s+(\d+)$", out, re.M)
        check("--format us tables", rc == 0 and "Connection Times (us)" in out
              and "served within a certain time (us)" in out and "[us] (mean)" in out
              and "[ms]" not in out and longest and total, out[-1200:])
        if longest and total:
            want = round(lv["latency_ms"]["max"] * 1000)
            check("--format us: the longest request is the JSON's, in us",
                  int(longest.group(1)) == want == int(total.group(5)),
                  (longest.group(1), total.group(5), want))
            check("--format us: min <= mean <= max", int(total.group(1)) <= int(total.group(2))
                  <= int(total.group(5)), total.groups())
        rc, out, err = lg(["-S", "-n", "20", "--format", "us", url])
        check("--format us with -S", rc == 0 and re.search(r"^Total:\s+\d+\s+\d+\s+\d+$", out, re.M),
              out[-400:])
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
