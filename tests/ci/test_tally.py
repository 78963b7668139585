#!/usr/bin/env python3
"""tests/ci/test_tally.py — .ci/tally, the closing line of CI: the counts it
adds up from meson's test logs, and the runs it must fail: a skip outside
its allow-list, a registered test that did not run, a failed test, a log
that is not there. Every input is written into a temporary folder (a fake
build folder with meson-logs/testlog.json, and the registered tests as
`meson test --list` prints them); no test is run.

Python 3 standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("COROBENCH_SOURCE") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLY = os.path.join(SOURCE, ".ci", "tally")

TESTS = ["corobench:http / http1_parse", "corobench:h2 / h2-server-coro",
         "corobench:loadgen / loadgen_engines", "corobench:compare / compare"]


class Tally(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-tally-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build(self, name, results, registered=TESTS, logs=None):
        """A fake build folder: its testlog.json (logs: a test's output) and
        its --list output."""
        b = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(b, "meson-logs"))
        with open(os.path.join(b, "meson-logs", "testlog.json"), "w") as f:
            for test, res in results.items():
                f.write(json.dumps({"name": test, "result": res,
                                    "stdout": (logs or {}).get(test, "")}) + "\n")
        lst = os.path.join(self.tmp, name + ".list")
        with open(lst, "w") as f:
            f.write("ninja: no work to do.\n" + "\n".join(registered) + "\n")
        return b, lst

    def tally(self, *builds):
        args = [sys.executable, TALLY] + [b for b, _ in builds]
        for b, lst in builds:
            args += ["--list-of", "%s=%s" % (b, lst)]
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out = r.stdout.decode()
        return r.returncode, out, out.strip().splitlines()[-1], r.stderr.decode()

    def test_all_pass_two_runs(self):
        ok = {t: "OK" for t in TESTS}
        rc, out, last, err = self.tally(self.build("plain", ok), self.build("asan", ok))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(last, "8 passed, 0 failed, 0 skipped")

    def test_allowed_skip_is_counted_and_passes(self):
        eng = "corobench:loadgen / loadgen_engines"
        res = dict({t: "OK" for t in TESTS}, **{eng: "SKIP"})
        rc, out, last, _ = self.tally(self.build(
            "plain", res, logs={eng: "io_uring unusable here: skipping\n"}))
        self.assertEqual(rc, 0, out)
        self.assertEqual(last, "3 passed, 0 failed, 1 skipped")
        self.assertIn("skipped as allowed: %s (io_uring blocked on this host)" % eng, out)

    def test_allowed_test_skipping_for_another_reason_fails(self):
        # an io_uring test may skip when io_uring is blocked, not when a tool
        # CI installs is missing
        tls = "corobench:loadgen / loadgen_tls_uring"
        res = dict({t: "OK" for t in TESTS}, **{tls: "SKIP"})
        rc, out, last, _ = self.tally(self.build(
            "plain", res, registered=TESTS + [tls],
            logs={tls: "tls: nginx or openssl missing: skipping\n"}))
        self.assertEqual(rc, 1, out)
        self.assertEqual(last, "4 passed, 0 failed, 1 skipped")
        self.assertIn("%s: skipped, but not because io_uring blocked on this host" % tls, out)

    def test_other_skip_fails(self):
        # the HTTP/2 suite of a worker that lost HTTP/2 must not hide as a skip
        res = dict({t: "OK" for t in TESTS}, **{"corobench:h2 / h2-server-coro": "SKIP"})
        rc, out, last, _ = self.tally(self.build("plain", res))
        self.assertEqual(rc, 1, out)
        self.assertEqual(last, "3 passed, 0 failed, 1 skipped")
        self.assertIn("FAIL: %s: corobench:h2 / h2-server-coro: skipped, and it is not "
                      "allowed to skip" % os.path.join(self.tmp, "plain"), out)

    def test_registered_but_not_run_fails(self):
        res = {t: "OK" for t in TESTS[:-1]}
        rc, out, last, _ = self.tally(self.build("plain", res))
        self.assertEqual(rc, 1, out)
        self.assertEqual(last, "3 passed, 0 failed, 0 skipped")
        self.assertIn("1 of the 4 registered tests did not run: corobench:compare / compare",
                      out)

    def test_failures_and_timeouts(self):
        res = dict({t: "OK" for t in TESTS}, **{TESTS[0]: "FAIL", TESTS[3]: "TIMEOUT"})
        rc, out, last, _ = self.tally(self.build("plain", res))
        self.assertEqual(rc, 1, out)
        self.assertEqual(last, "2 passed, 2 failed, 0 skipped")
        self.assertIn("corobench:compare / compare: TIMEOUT", out)

    def test_no_log(self):
        b, lst = self.build("plain", {t: "OK" for t in TESTS})
        os.unlink(os.path.join(b, "meson-logs", "testlog.json"))
        rc, out, last, err = self.tally((b, lst))
        self.assertEqual(rc, 2, out)
        self.assertIn("testlog.json", err)
        self.assertEqual(last, "0 passed, 0 failed, 0 skipped")


if __name__ == "__main__":
    unittest.main(verbosity=2)
