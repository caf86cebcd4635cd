"""Quick benchmarks for the Python reference implementation (not run by tox; tox -e bench runs run.py).

1. Uncontended acquire+release of ``xlock.Lock`` against a bare ``fcntl.flock(LOCK_EX)`` +
   ``fcntl.flock(LOCK_UN)`` pair on the same file: ns per pair and the ratio.
2. Wake-up latency: a holder process releases at a recorded CLOCK_MONOTONIC instant; a waiter process
   (xlock timed wait with timeout=10 s, xlock untimed wait, or a raw blocking ``fcntl.flock``) reports
   when it got the lock. Medians over repeats.

3. With ``--breakdown``: what the pieces of an uncontended acquire+release cost, measured back to back
   in one run (syscalls make the Python code around them slower, so pieces timed alone add up to less).

    PYTHONPATH=python/src python bench/py_quick.py [--pairs N] [--rounds N] [--breakdown]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit

import xlock
from xlock._libc import ffi, lib

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


def bench_breakdown(pairs: int, repeats: int) -> list[tuple[str, float]]:
    """ns per step for the calls an uncontended acquire+release makes, alone and back to back."""
    with tempfile.TemporaryDirectory() as tmp:
        lock = xlock.Lock("bench", namespace=os.path.join(tmp, "ns"))
        lock.acquire()
        lock.release()  # creates the doorbell
        fd = os.open(lock.path, os.O_RDONLY)
        bell = lib.sem_open(lock.doorbell.encode("ascii"), 0)
        statx_buf = ffi.new("char[]", 256)
        env = {
            "flock": fcntl.flock,
            "fd": fd,
            "ex": fcntl.LOCK_EX,
            "exnb": fcntl.LOCK_EX | fcntl.LOCK_NB,
            "un": fcntl.LOCK_UN,
            "statx": lib.statx,
            "empty": ffi.new("char[]", b""),
            "buf": statx_buf,
            "nlink": ffi.cast("uint32_t *", statx_buf + 16),
            "fstat": os.fstat,
            "getvalue": lib.sem_getvalue,
            "bell": bell,
            "value": ffi.new("int *"),
            "mutex": threading.Lock(),
            "get_ident": threading.get_ident,
            "acquire": lock.acquire,
            "release": lock.release,
        }
        recheck = "statx(fd, empty, 0x1000, 0x4, buf) == 0 and nlink[0] != 0"
        ring = "getvalue(bell, value) == 0 and value[0] == 0"
        calls = f"flock(fd, exnb); {recheck}; flock(fd, un); {ring}"
        steps = [
            ("raw flock(LOCK_EX) + flock(LOCK_UN)", "flock(fd, ex); flock(fd, un)"),
            ("xlock.Lock acquire() + release()", "acquire(); release()"),
            ("its C calls alone: flock, statx nlink, flock, sem_getvalue", calls),
            (
                "  same with os.fstat(fd).st_nlink for statx",
                calls.replace(recheck, "fstat(fd).st_nlink != 0"),
            ),
            ("  same without the re-check", calls.replace(f"; {recheck}", "")),
            (
                "  C calls + 2 mutex pairs + get_ident",
                "mutex.acquire(); "
                + calls.replace(
                    "; flock(fd, un)", "; get_ident(); mutex.release(); mutex.acquire(); flock(fd, un)"
                ).replace(f"; {ring}", f"; mutex.release(); {ring}"),
            ),
            ('alone: statx(fd, "", AT_EMPTY_PATH, STATX_NLINK) + nlink', recheck),
            ("alone: os.fstat(fd).st_nlink", "fstat(fd).st_nlink != 0"),
            ("alone: sem_getvalue + test", ring),
            ("alone: threading.Lock acquire + release", "mutex.acquire(); mutex.release()"),
        ]
        times: dict[str, list[float]] = {label: [] for label, _ in steps}
        for _ in range(repeats):  # interleaved, so that a busy moment hits every step alike
            for label, stmt in steps:
                times[label].append(timeit.timeit(stmt, globals=env, number=pairs) / pairs * 1e9)
        lib.sem_close(bell)
        os.close(fd)
        lock.close()
    return [(label, statistics.median(times[label])) for label, _ in steps]


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
    parser.add_argument("--breakdown", action="store_true", help="only the cost of each piece, in ns")
    args = parser.parse_args()

    if args.breakdown:
        print(f"uncontended acquire+release, by piece, median of {args.repeats} x {args.pairs}:")
        for label, ns in bench_breakdown(args.pairs, args.repeats):
            print(f"  {label:62s}: {ns:6.0f} ns")
        return

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
