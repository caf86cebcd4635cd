"""Benchmarks for the Python reference implementation (not run by tox).

1. Uncontended acquire+release of ``xlock.Lock`` against a bare ``fcntl.flock(LOCK_EX)`` +
   ``fcntl.flock(LOCK_UN)`` pair on the same file: ns per pair and the ratio.
2. Wake-up latency: a holder process releases at a recorded CLOCK_MONOTONIC instant; a waiter process
   (xlock timed wait with timeout=10 s, xlock untimed wait, or a raw blocking ``fcntl.flock``) reports
   when it got the lock. Medians over repeats.

    python python/bench/bench_uncontended.py [--pairs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import xlock

ACTOR = r"""
import fcntl, os, sys, time, xlock
ns, mode = sys.argv[1], sys.argv[2]
lock = xlock.Lock("bench-wake", namespace=ns)
fd = os.open(lock.path, os.O_RDONLY)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "acquire":
        if mode == "raw":
            fcntl.flock(fd, fcntl.LOCK_EX)
        elif mode == "timed":
            lock.acquire(timeout=10)
        else:
            lock.acquire()
        print(time.monotonic_ns(), flush=True)
    elif cmd == "release":
        t = time.monotonic_ns()
        if mode == "raw":
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            lock.release()
        print(t, flush=True)
"""


def bench_uncontended(pairs: int, repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ns = os.path.join(tmp, "ns")
        lock = xlock.Lock("bench", namespace=ns)
        fd = os.open(lock.path, os.O_RDONLY)
        flock, ex, un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN

        def raw() -> None:
            for _ in range(pairs):
                flock(fd, ex)
                flock(fd, un)

        def xl() -> None:
            acquire, release = lock.acquire, lock.release
            for _ in range(pairs):
                acquire()
                release()

        lock.acquire()
        lock.release()  # opens the doorbell once, outside the measurement
        raw_ns = statistics.median(timeit.repeat(raw, number=1, repeat=repeats)) / pairs * 1e9
        xl_ns = statistics.median(timeit.repeat(xl, number=1, repeat=repeats)) / pairs * 1e9
        os.close(fd)
        lock.close()
    return raw_ns, xl_ns


class Actor:
    def __init__(self, ns: str, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ACTOR, ns, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def read_ns(self) -> int:
        assert self.proc.stdout is not None
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def bench_wakeup(waiter_mode: str, rounds: int) -> float:
    """Median µs from the holder's release to the waiter's acquisition."""
    holder_mode = "raw" if waiter_mode == "raw" else "untimed"
    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        ns = os.path.join(tmp, "ns")
        xlock.Namespace(ns).close()
        holder, waiter = Actor(ns, holder_mode), Actor(ns, waiter_mode)
        try:
            for _ in range(rounds):
                holder.send("acquire")
                holder.read_ns()
                waiter.send("acquire")
                time.sleep(0.03)  # let the waiter settle into its wait (benchmark only)
                holder.send("release")
                released = holder.read_ns()
                acquired = waiter.read_ns()
                latencies.append((acquired - released) / 1000)
                waiter.send("release")
                waiter.read_ns()
        finally:
            holder.close()
            waiter.close()
    return statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=100_000, help="acquire+release pairs per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=30, help="hand-offs per wake-up benchmark")
    args = parser.parse_args()

    raw_ns, xl_ns = bench_uncontended(args.pairs, args.repeats)
    print(f"uncontended, median of {args.repeats} x {args.pairs} pairs:")
    print(f"  fcntl.flock LOCK_EX + LOCK_UN : {raw_ns:8.0f} ns/pair")
    print(f"  xlock.Lock acquire + release  : {xl_ns:8.0f} ns/pair")
    print(f"  ratio                         : {xl_ns / raw_ns:8.2f} x")
    print(f"wake-up after a release in another process, median of {args.rounds}:")
    for mode, label in (
        ("raw", "blocking fcntl.flock waiter  "),
        ("untimed", "xlock untimed acquire()      "),
        ("timed", "xlock acquire(timeout=10)    "),
    ):
        print(f"  {label}: {bench_wakeup(mode, args.rounds):8.1f} us")


if __name__ == "__main__":
    main()
