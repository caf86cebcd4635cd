"""Interop: util-linux flock(1) on a lock file path excludes with every driver."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from xlock_conformance.checks import (
    blocked_then_freed,
    flock_hold,
    flock_release,
    latency_verdict,
    spread_delays,
)
from xlock_conformance.lab import WAKE_DEADLINE
from xlock_conformance.plugin import spec

NAME = "conformance-flock"


def _flock(*args):
    return subprocess.run(["flock", *args], capture_output=True, timeout=10).returncode


@spec("XL-LOCK-11", "XL-FOREIGN-1", "XL-WAIT-7", "XL-CSEM-7")
def test_flock_interop(one, lab):
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock(1) is not installed")
    d = lab.start(one, need=["lock", "shared", "timeout"])
    r = d.call("open", kind="lock", name=NAME, namespace=lab.ns)
    h, path = r["handle"], r["path"]
    # flock(1) holds: the driver is excluded; its timed waiter notices flock's release by the safety poll.
    proc = flock_hold(path, "-x")
    try:
        d.fails("WOULD_BLOCK", "try_acquire", handle=h, why="util-linux flock(1) holds the lock file")

        def release_flock():
            flock_release(proc)

        blocked_then_freed(
            d, "acquire", {"handle": h, "timeout_ms": 10_000}, release_flock, "flock(1) holds the lock file"
        )
    finally:
        proc.kill()
        proc.wait()
    # The driver holds: flock(1) is excluded, in both modes.
    assert _flock("-n", "-x", path, "true") == 1, "flock -n -x succeeded while the driver held the lock"
    assert _flock("-n", "-s", path, "true") == 1, "flock -n -s succeeded while the driver held the lock"
    d.call("release", handle=h)
    assert _flock("-n", "-x", path, "true") == 0, "flock -n -x failed after the driver released"
    # Shared with shared.
    hs = lab.open(d, NAME, shared=True)
    d.call("acquire", handle=hs)
    assert _flock("-n", "-s", path, "true") == 0, "flock -n -s failed while the driver held the lock shared"
    assert _flock("-n", "-x", path, "true") == 1, (
        "flock -n -x succeeded while the driver held the lock shared"
    )
    d.call("release", handle=hs)
    # A permit of a counting semaphore is a flock on a slot file.
    if "semaphore" in d.capabilities:
        hsem = lab.open(d, NAME, kind="semaphore", capacity=1)
        slot = os.path.join(lab.ns, NAME + ".0.slot")
        d.call("try_acquire", handle=hsem)
        assert _flock("-n", "-x", slot, "true") == 1, (
            "flock -n -x on slot 0 succeeded while the driver held it"
        )
        d.call("release", handle=hsem)
        proc = flock_hold(slot, "-x")
        try:
            d.fails("WOULD_BLOCK", "try_acquire", handle=hsem, why="flock(1) holds the only slot file")
        finally:
            proc.kill()
            proc.wait()


@spec("XL-WAIT-7", "XL-FOREIGN-1")
def test_flock_wakeup(one, lab):
    """flock(1) rings no bell: a timed waiter notices its release by the safety poll, whose interval
    never exceeds 50 ms. Measured from just before flock(1) is told to exit to the driver's mono_ns
    (both CLOCK_MONOTONIC), 4 rounds at spread phases."""
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock(1) is not installed")
    d = lab.start(one, need=["lock", "timeout", "clock"])
    r = d.call("open", kind="lock", name=NAME, namespace=lab.ns)
    h, path = r["handle"], r["path"]
    latencies = []
    for delay in spread_delays(4):
        proc = flock_hold(path, "-x")
        try:
            rid = d.send("acquire", handle=h, timeout_ms=10_000)
            d.no_reply_within(rid, 0.05 + delay, "flock(1) holds the lock file")
            released = time.monotonic_ns()
            flock_release(proc)
            got = d.wait(rid, WAKE_DEADLINE)
            assert got.ok, f"driver '{d.label}': timed acquire failed with {got.error} after flock(1) exited"
        finally:
            proc.kill()
            proc.wait()
        latencies.append((got["mono_ns"] - released) / 1e6)
        d.call("release", handle=h)
    latency_verdict(
        latencies,
        f"driver '{d.label}' waiting on a lock held by flock(1)",
        median_bound=75.0,
        cause="the safety poll of a timed waiter must run at least every 50 ms [XL-WAIT-7]",
    )
