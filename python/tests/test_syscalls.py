"""The system calls of the hot paths, counted with strace on a real process: each path does what the spec
requires and nothing more, and a counting semaphore's acquisition does not grow with the permits held.

Expected, per cycle (``stat`` is any of fstat/newfstatat/statx/lstat, as the libc and path spell it):

* ``with xlock.Lock(name):`` (create, acquire, release, close) in a private namespace, after the first
  object of that namespace: ``lstat`` of the namespace path (the re-confirmation of XL-NS-16),
  ``openat`` of the lock file [XL-LOCK-1], ``fstat`` of it [XL-LOCK-5], ``flock`` [XL-LOCK-7], the
  re-check ``fstat`` [XL-LOCK-8], ``flock(LOCK_UN)`` [XL-LOCK-9] (the ring costs no call when nobody
  waits [XL-BELL-6]), ``close``: 7 calls, the raw cycle's 4 plus the three checks.
* a reused ``Lock``: ``flock``, re-check, ``flock(LOCK_UN)``: 3 calls, timed or not (one try before the
  bell is touched [XL-WAIT-12]).
* ``Semaphore`` of capacity 256 with 255 permits held by others: the round starts at the slot released
  last [XL-CSEM-5], so the same 3 calls as at capacity 1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CYCLES = 5
STAT = "stat"
PER_USE = ["stat", "openat", STAT, "flock", STAT, "flock", "close"]
REUSED = ["flock", STAT, "flock"]

SCRIPT = r"""
import os, sys, xlock
ns, cycles = sys.argv[1], int(sys.argv[2])

def mark(what):
    os.access("/xlock-strace-" + what, os.F_OK)

def per_use():
    with xlock.Lock("w", namespace=ns):
        pass

lock = xlock.Lock("r", namespace=ns)
def reused():
    lock.acquire()
    lock.release()

def timed():
    assert lock.acquire(timeout=5)
    lock.release()

others = xlock.Semaphore("pool", 256, namespace=ns)
for _ in range(255):
    others.acquire()
sem = xlock.Semaphore("pool", 256, namespace=ns)
def semaphore():
    assert sem.acquire(timeout=5)
    sem.release()

for name, run in (("per_use", per_use), ("reused", reused), ("timed", timed), ("semaphore", semaphore)):
    run()  # the first cycle opens what later ones reuse
    mark(name + "-begin")
    for _ in range(cycles):
        run()
    mark(name + "-end")
"""

_CALL = re.compile(r"^(?:\d+ +)?([a-z0-9_]+)\(")
_STATS = {"fstat", "newfstatat", "statx", "lstat", "stat", "fstatat64"}
_IGNORED = {"mmap", "munmap", "mprotect", "brk", "madvise"}  # the allocator's, not xlock's


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (./bootstrap installs it)")
    ns = tmp_path_factory.mktemp("syscalls") / "ns"
    out = ns.parent / "trace"
    done = subprocess.run(
        [
            strace,
            "-f",
            "-e",
            "trace=%file,%desc",
            "-o",
            str(out),
            sys.executable,
            "-c",
            SCRIPT,
            str(ns),
            str(CYCLES),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return _sections(Path(out).read_text().splitlines())


def _sections(lines: list[str]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        marker = re.search(r'access\("/xlock-strace-([a-z_]+)-(begin|end)"', line)
        if marker:
            current = sections.setdefault(marker.group(1), []) if marker.group(2) == "begin" else None
            continue
        call = _CALL.match(line)
        if current is not None and call and call.group(1) not in _IGNORED:
            current.append(STAT if call.group(1) in _STATS else call.group(1))
    return sections


@pytest.mark.parametrize(
    ("path", "expected"),
    [("per_use", PER_USE), ("reused", REUSED), ("timed", REUSED), ("semaphore", REUSED)],
)
def test_system_calls_per_cycle(traced: dict[str, list[str]], path: str, expected: list[str]) -> None:
    assert traced[path] == expected * CYCLES, f"{path}: {traced[path]}"
