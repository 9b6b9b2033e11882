"""What the benchmarks measure the machine and its processes with.

How fast this machine runs Python, so that benchmark figures from different days compare, and
how much CPU a process has used.

The workplace's machines differ: the same code on the same kind of machine has run twice as
slow from one day to the next. Each benchmark prints this figure beside its own: the best of
a few runs of a fixed pure-Python loop, in seconds. Figures taken on a machine where it is
higher were taken on a slower CPU by about that ratio.
"""

from __future__ import annotations

import glob
import time

LOOP_STEPS = 10_000_000


def python_loop_seconds(runs: int = 3) -> float:
    """The best of `runs` timings of LOOP_STEPS integer additions in a Python loop."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        total = 0
        for step in range(LOOP_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return best


def cpu_seconds(pid: int) -> float:
    """CPU time that every thread of process `pid` has had so far (from /proc, to the ns)."""
    total_ns = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as stats:
                total_ns += int(stats.read().split()[0])
        except OSError:  # a thread that ended meanwhile
            continue
    return total_ns / 1e9


def describe() -> str:
    return f"machine   a {LOOP_STEPS:,}-step Python loop takes {python_loop_seconds():.2f} s"


if __name__ == "__main__":
    print(describe())
