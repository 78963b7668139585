#!/usr/bin/env python3
"""tests/fuzz/verdicts.py — the HTTP/1.1 seeds named after an attack or a
strict rule must keep their verdict, not only "no crash" (issue 19).

tests/fuzz/http1-verdicts names seeds of corpus/http1 and what the codec must
make of each (the seed and its "-bytewise" twin, whose byte 0 cuts the reads
differently):

    reject STATUS     no request at all, then the error STATUS (the worker
                      answers it with Connection: close and closes)
    serve N           N requests, the last one keeping the connection open
    serve N close     N requests, the last one closing the connection (what
                      follows it is never parsed)

This script checks the table against the codec through http1_dump, built
with the one-pass fast path and without it (tests/http/meson.build): both must
agree with the table. test_hostile.py (section "seeds") sends the same seeds
to each worker and checks the same verdicts on the wire, the close included.

Usage: verdicts.py TABLE CORPUS_DIR DUMP [DUMP...]     (TAP on stdout)
"""
import os
import re
import struct
import subprocess
import sys


def load(table):
    """[(seed name, kind, status or count, close)] from the table file."""
    rows = []
    with open(table) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            ok = (len(line) == 3 and line[1] == "reject" and line[2].isdigit()) or \
                 (len(line) in (3, 4) and line[1] == "serve" and line[2].isdigit() and
                  line[3:] in ([], ["close"]))
            if not ok:
                raise SystemExit(f"{table}:{n}: want 'SEED reject STATUS' or "
                                 f"'SEED serve N [close]', got {' '.join(line)!r}")
            rows.append((line[0], line[1], int(line[2]), line[3:] == ["close"]))
    return rows


def seed_files(corpus, name):
    """The seed and its bytewise twin: [(file name, read size, bytes)]."""
    out = []
    for f in (name, name + "-bytewise"):
        path = os.path.join(corpus, f)
        if os.path.exists(path):
            with open(path, "rb") as fh:
                data = fh.read()
            if data:
                out.append((f, data[0] or 1, data[1:]))  # byte 0 as fuzz_http1.c reads it
    return out


def dump(exe, chunk, data):
    rec = struct.pack("<IB", len(data), chunk) + data
    return subprocess.run([exe], input=rec, capture_output=True, check=True,
                          timeout=30).stdout.decode("latin-1")


def verdict_of(out):
    """(requests, error status or None, last request keeps the connection)."""
    reqs = re.findall(r"\[R u\d+ .*?v1\.\d ka(\d)", out)
    err = re.search(r"\[E(\d+)\]", out)
    eof_err = re.search(r"\[eof E(\d+)\]", out)
    status = int(err.group(1)) if err else (f"eof {eof_err.group(1)}" if eof_err else None)
    return len(reqs), status, bool(reqs) and reqs[-1] == "1"


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    table, corpus, dumps = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = load(table)
    n = failed = 0
    for name, kind, num, close in rows:
        files = seed_files(corpus, name)
        want = f"{kind} {num}" + (" close" if close else "")
        if not files:
            n += 1
            failed += 1
            print(f"not ok {n} - {name}: no such seed in {corpus}")
            continue
        for f, chunk, data in files:
            for exe in dumps:
                n += 1
                reqs, status, ka = verdict_of(dump(exe, chunk, data))
                if kind == "reject":
                    good = reqs == 0 and status == num
                else:
                    good = reqs == num and status is None and ka != close
                got = f"{reqs} requests, error {status}, last keep-alive {ka}"
                if good:
                    print(f"ok {n} - {f} ({os.path.basename(exe)}): {want}")
                else:
                    failed += 1
                    print(f"not ok {n} - {f} ({os.path.basename(exe)}): want {want}, got {got}")
    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
