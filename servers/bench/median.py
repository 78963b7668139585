#!/usr/bin/env python3
"""median.py — reads hello.sh's lines "NAME REQ/S US_PER_REQUEST" on stdin and
prints, per server, the medians and every run."""
import collections
import statistics
import sys

runs = collections.OrderedDict()
for line in sys.stdin:
    p = line.split()
    try:
        runs.setdefault(p[0], []).append([float(x) for x in p[1:3]])
    except (ValueError, IndexError):
        continue
for name, v in runs.items():
    rps = [x[0] for x in v]
    us = [x[1] for x in v if len(x) > 1]
    line = f"{name}: median {statistics.median(rps):.0f} req/s (runs {' '.join(f'{x:.0f}' for x in rps)})"
    if us:
        line += f"; server CPU median {statistics.median(us):.1f} us/request (runs {' '.join(f'{x:.1f}' for x in us)})"
    print(line)
