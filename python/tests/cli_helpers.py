"""Helpers for the end-to-end tests of the `xlock` command and the driver: real processes, no sleeps.

"It is waiting" is decided by /proc/locks showing the process as a waiter, "it is ready" by a line the
process prints; every wait has a deadline so a broken build fails instead of hanging.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from xlock import _status

XLOCK = [sys.executable, "-m", "xlock"]
DEADLINE = 20.0  # seconds; only reached when something is broken

# A command for `xlock run` that prints "ready", then holds until its stdin reaches EOF.
HOLD = [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"]

# A Python program for the SIGINT tests of `xlock run`: it counts the SIGINTs it takes (printing "int"
# for each), prints "ready" once its handlers are set, and on SIGTERM prints "count N" and exits 0.
SIGINT_COUNTER = (
    "import os, signal\n"
    "count = 0\n"
    "def on_int(signum, frame):\n"
    "    global count\n"
    "    count += 1\n"
    "    os.write(1, b'int\\n')\n"
    "def on_term(signum, frame):\n"
    "    os.write(1, b'count %d\\n' % count)\n"
    "    os._exit(0)\n"
    "signal.signal(signal.SIGINT, on_int)\n"
    "signal.signal(signal.SIGTERM, on_term)\n"
    "os.write(1, b'ready\\n')\n"
    "while True:\n"
    "    signal.pause()\n"
)


def run_xlock(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XLOCK, *args], capture_output=True, text=True, timeout=DEADLINE, env=env, stdin=subprocess.DEVNULL
    )


def start_xlock(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*XLOCK, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = DEADLINE) -> str:
    """The next stdout line of `proc`; fails the test if none comes before the deadline."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output from pid {proc.pid} within {timeout} s"
    return proc.stdout.readline()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.002)


def stopped(pid: int) -> bool:
    """True if `pid` is stopped (state T in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def is_waiting(pid: int) -> bool:
    """True if `pid` is blocked in flock(2), per /proc/locks [XL-INTRO-2]."""
    return any(lock.waiting and lock.pid == pid for lock in _status.read_proc_locks())


def wait_for_waiter(pid: int) -> None:
    wait_until(lambda: is_waiting(pid), f"pid {pid} waits for a lock in /proc/locks")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Close stdin (releasing a HOLD command), wait, return (status, stdout, stderr)."""
    out, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out, err


def hold(ns: Path, name: str, *extra: str) -> subprocess.Popen[str]:
    """An `xlock run` holding `name` until `finish` is called on it; returns once the lock is held."""
    proc = start_xlock("--namespace", str(ns), "run", *extra, name, "--", *HOLD)
    line = read_line(proc)
    assert line == "ready\n", f"holder did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def assert_one_error_line(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("xlock: error: "), stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLOCK_")}
    env.update(extra)
    return env
