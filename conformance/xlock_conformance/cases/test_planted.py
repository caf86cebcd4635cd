"""Planted bells: whatever another user or a careless admin leaves at `.xlock-bell`, or does to the bell
later, no driver crashes, acquisition and release work, timed waits keep their deadline (+ 50 ms) and a
release still reaches a timed waiter (by the safety poll)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time

from xlock_conformance.checks import (
    BELL,
    NOBODY,
    bell_word,
    describe,
    plant,
    release_hands_over,
    timed_failure,
)
from xlock_conformance.plugin import spec

OVERRUN = 0.05  # XL-THREAT-2: a wait ends no later than its deadline plus 50 ms
TIMED_MS = 150


def _bounded_timeout(driver, handle, timeout_ms, why):
    """A timed acquire of a held lock fails with TIMEOUT, not before its deadline and not later than
    deadline + 50 ms (measured here, so it includes the reply's trip)."""
    t0 = time.monotonic()
    timed_failure(driver, handle, timeout_ms)
    took = time.monotonic() - t0
    assert took <= timeout_ms / 1000 + OVERRUN, (
        f"driver '{driver.label}': a timed acquire of {timeout_ms} ms on a held lock ({why}) returned "
        "TIMEOUT after "
        f"{took * 1000:.0f} ms: no object another party controls may push a wait past its deadline + 50 ms "
        "[XL-THREAT-2, XL-WAIT-12]"
    )


def _exercise(a, b, ns, why):
    """Both drivers open a lock in `ns`; a holds; b's timed wait keeps its deadline; a's release reaches
    b's timed wait; both can still take and release it."""
    ha = a.call("open", kind="lock", name="planted", namespace=ns)["handle"]
    hb = b.call("open", kind="lock", name="planted", namespace=ns)["handle"]
    a.call("acquire", handle=ha, timeout_ms=1000)
    _bounded_timeout(b, hb, TIMED_MS, why)
    release_hands_over(a, ha, b, hb, f"driver '{a.label}' holds the lock ({why})", window=0.05)
    b.call("release", handle=hb)
    a.call("try_acquire", handle=ha)
    a.call("release", handle=ha)
    for d, h in ((a, ha), (b, hb)):
        d.call("close", handle=h)


# (label, what is planted, the namespace's mode, planted by: None = root, the namespace's owner; or NOBODY)
PLANTS = [
    ("empty file", "empty", 0o700, None),
    ("4095-byte file", "short", 0o700, None),
    ("4096-byte file of another user", "full", 0o700, NOBODY),
    ("FIFO", "fifo", 0o700, None),
    ("symbolic link to a 4096-byte file", "symlink", 0o700, None),
    ("directory", "dir", 0o700, None),
    ("empty file", "empty", 0o1777, NOBODY),
    ("4095-byte file", "short", 0o1777, NOBODY),
    ("FIFO", "fifo", 0o1777, NOBODY),
    ("symbolic link to a 4096-byte file", "symlink", 0o1777, NOBODY),
    ("directory", "dir", 0o1777, NOBODY),
]


@spec("XL-BELL-3", "XL-BELL-8", "XL-WAIT-7", "XL-WAIT-12", "XL-THREAT-2", "XL-THREAT-3", "XL-THREAT-5")
def test_bell_planted(one, lab):
    """An empty file, a 4095-byte file, another user's 4096-byte file (private namespace), a FIFO, a
    symlink or a directory at `.xlock-bell`, planted by root in a private namespace or by uid 65534 in a
    world-shared 1777 one: the bell is not used and never changed, everything else works."""
    need = ["lock", "timeout"]
    a, b = lab.start(one, need=need), lab.start(one, need=need)
    for i, (label, what, mode, uid) in enumerate(PLANTS):
        ns = lab.make_dir(f"plant-{i}", mode)
        path = os.path.join(ns, BELL)
        if (
            uid is not None and mode == 0o700
        ):  # another user's file in a private namespace: root puts it there
            plant(path, what)
            os.chown(path, uid, uid)
        else:
            plant(path, what, uid)
        before = describe(path)
        where = (
            f"{label} at {path} (namespace mode {oct(mode)}, planted by "
            f"{'its owner' if uid is None else f'uid {uid}'})"
        )
        _exercise(a, b, ns, where)
        assert describe(path) == before, f"{where}: the planted object was changed or replaced [XL-BELL-3]"


@spec("XL-BELL-5", "XL-BELL-8", "XL-WAIT-12", "XL-THREAT-3")
def test_bell_truncated(pair, lab):
    """In a world-shared namespace a member truncates the bell to 0 bytes after both drivers mapped it: no
    driver crashes (the bell is only touched by the kernel there: futex and pread), timed waits keep
    their deadline, releases still reach timed waiters."""
    need = ["lock", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    ns = lab.make_dir("world", 0o1777)
    ha = a.call("open", kind="lock", name="trunc", namespace=ns)["handle"]
    hb = b.call("open", kind="lock", name="trunc", namespace=ns)["handle"]
    for holder, hh, waiter, hw in ((a, ha, b, hb), (b, hb, a, ha)):  # both map the bell and use it
        holder.call("acquire", handle=hh)
        release_hands_over(holder, hh, waiter, hw, "the other driver holds the lock", window=0.05)
        waiter.call("release", handle=hw)
    bell = os.path.join(ns, BELL)
    assert os.path.getsize(bell) == 4096, f"{bell} is not 4096 bytes after both drivers used the lock"
    os.truncate(bell, 0)
    for d, h in ((a, ha), (b, hb)):  # a release right after the truncation (its ring reads the word first)
        d.call("try_acquire", handle=h)
        d.call("release", handle=h)
    for holder, hh, waiter, hw in ((a, ha, b, hb), (b, hb, a, ha)):
        holder.call("acquire", handle=hh)
        _bounded_timeout(waiter, hw, TIMED_MS, f"the bell {bell} was truncated to 0 bytes")
        release_hands_over(
            holder, hh, waiter, hw, f"driver '{holder.label}' holds the lock (bell truncated)", window=0.05
        )
        waiter.call("release", handle=hw)


@spec("XL-WAIT-12", "XL-THREAT-3", "XL-THREAT-5", "XL-BELL-6")
def test_bell_flood(one, lab):
    """A bell whose words all hold 0xFFFFFFFF, and a co-member ringing every word continuously (futex
    FUTEX_WAKE_OP on its own mapping): a timed acquire of a held lock still ends with TIMEOUT within its
    deadline + 50 ms, and the driver serves on."""
    need = ["lock", "timeout"]
    a, b = lab.start(one, need=need), lab.start(one, need=need)
    bell = os.path.join(lab.ns, BELL)
    plant(bell, "ones")
    ha, hb = lab.open(a, "flood"), lab.open(b, "flood")
    a.call("acquire", handle=ha)
    flooder = subprocess.Popen(
        [sys.executable, "-m", "xlock_conformance.flood", bell, str(bell_word("l", "flood"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        sel = selectors.DefaultSelector()
        assert flooder.stdout is not None and flooder.stderr is not None
        sel.register(flooder.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=10) or flooder.stdout.readline() != b"ringing\n":
            raise AssertionError(
                f"the flooding helper did not start: {os.read(flooder.stderr.fileno(), 2000)!r}"
            )
        for timeout_ms in (0, TIMED_MS, 400):
            _bounded_timeout(b, hb, timeout_ms, "a member rings every bell word continuously")
    finally:
        flooder.kill()
        flooder.wait()
    a.call("release", handle=ha)
    b.call("try_acquire", handle=hb)
