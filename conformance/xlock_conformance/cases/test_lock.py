"""Locks: exclusion between every pair of drivers, in every mode, with every kind of wait."""

from __future__ import annotations

import os
import time

from xlock_conformance.checks import (
    BELL,
    assert_order,
    message_names,
    release_hands_over,
    timed_failure,
)
from xlock_conformance.plugin import spec

NAME = "conformance-x"


def _directions(lab, pair, need):
    """(holder, contender) both ways round; for a binding paired with itself, two instances."""
    a = lab.start(pair[0], need=need)
    b = lab.start(pair[1], need=need)
    return [(a, b), (b, a)]


@spec("XL-LOCK-7", "XL-LOCK-11", "XL-WAIT-1", "XL-WAIT-2", "XL-WAIT-3", "XL-ERR-3", "XL-HOLD-1", "XL-RM-5")
def test_lock_exclusive(pair, lab):
    path = os.path.join(lab.ns, NAME + ".lock")
    inode = None
    for holder, other in _directions(lab, pair, ["lock", "timeout"]):
        hh, ho = lab.open(holder, NAME), lab.open(other, NAME)
        inode = inode or os.stat(path).st_ino
        holder.call("acquire", handle=hh)
        r = other.fails(
            "WOULD_BLOCK", "try_acquire", handle=ho, why=f"driver '{holder.label}' holds it exclusively"
        )
        message_names(r, NAME, path, other)
        timed_failure(other, ho, 0)  # timeout 0 is one attempt that fails with TIMEOUT, not WOULD_BLOCK
        r = timed_failure(other, ho, 250)
        message_names(r, NAME, path, other)
        assert holder.call("locked", handle=hh)["locked"] is True, (
            f"{holder.label}: locked is false while held"
        )
        assert other.call("locked", handle=ho)["locked"] is False, (
            f"{other.label}: locked is true after failures"
        )
        got, released = release_hands_over(
            holder, hh, other, ho, f"driver '{holder.label}' holds the lock exclusively", timeout_ms=None
        )
        assert_order(released, got, holder, other)
        holder.fails("WOULD_BLOCK", "try_acquire", handle=hh)
        other.call("release", handle=ho)
        holder.call("close", handle=hh)
        other.call("close", handle=ho)
    assert os.stat(path).st_ino == inode, (
        f"{path} is another file than the one the first open created: lock files are never renamed, "
        "replaced or recreated while they exist [XL-RM-1, XL-RM-5]"
    )


@spec("XL-LOCK-7", "XL-LOCK-11", "XL-HOLD-1")
def test_lock_shared(pair, lab):
    for first, second in _directions(lab, pair, ["lock", "shared", "timeout"]):
        s1 = lab.open(first, NAME, shared=True)
        s2 = lab.open(second, NAME, shared=True)
        x2 = lab.open(second, NAME)
        x1 = lab.open(first, NAME)
        # shared with shared: both hold
        first.call("try_acquire", handle=s1)
        second.call("acquire", handle=s2, timeout_ms=1000)
        # shared excludes exclusive, both ways round
        second.fails("WOULD_BLOCK", "try_acquire", handle=x2, why="both drivers hold it shared")
        timed_failure(first, x1, 100)
        first.call("release", handle=s1)
        second.fails(
            "WOULD_BLOCK", "try_acquire", handle=x2, why="its own shared object holds the lock"
        )  # two objects exclude [XL-HOLD-1]
        got, released = release_hands_over(
            second, s2, first, x1, f"driver '{second.label}' holds the lock shared", timeout_ms=None
        )
        assert_order(released, got, second, first)
        # exclusive excludes shared
        second.fails(
            "WOULD_BLOCK", "try_acquire", handle=s2, why=f"driver '{first.label}' holds it exclusively"
        )
        timed_failure(second, s2, 100)
        first.call("release", handle=x1)
        second.call("try_acquire", handle=s2)
        second.call("release", handle=s2)
        for d, hs in ((first, (s1, x1)), (second, (s2, x2))):
            for h in hs:
                d.call("close", handle=h)


@spec("XL-HOLD-1", "XL-HOLD-3", "XL-HOLD-6", "XL-ERR-4", "XL-RM-1")
def test_lock_one_driver(one, lab):
    d = lab.start(one, need=["lock", "timeout"])
    h1, h2 = lab.open(d, NAME), lab.open(d, NAME)
    d.fails("NOT_HELD", "release", handle=h1)
    d.call("acquire", handle=h1)
    d.fails("WOULD_BLOCK", "try_acquire", handle=h2)  # two objects exclude even in one process
    d.fails("ALREADY_HELD", "acquire", handle=h1, timeout=2.0)  # never a self-deadlock
    d.fails("ALREADY_HELD", "acquire", handle=h1, timeout_ms=100)
    d.fails("ALREADY_HELD", "try_acquire", handle=h1)
    assert d.call("locked", handle=h1)["locked"] is True, "a failed acquire changed the held lock [XL-ERR-4]"
    d.fails("WOULD_BLOCK", "try_acquire", handle=h2)
    d.fails("NOT_HELD", "release", handle=h2)
    d.call("release", handle=h1)
    d.fails("NOT_HELD", "release", handle=h1)
    d.call("try_acquire", handle=h2)
    d.call("release", handle=h2)
    assert os.path.exists(os.path.join(lab.ns, NAME + ".lock")), "the lock file must persist after release"


@spec("XL-HOLD-10")
def test_lock_close_releases(pair, lab):
    for holder, other in _directions(lab, pair, ["lock"]):
        hh, ho = lab.open(holder, NAME), lab.open(other, NAME)
        holder.call("acquire", handle=hh)
        other.fails("WOULD_BLOCK", "try_acquire", handle=ho, why=f"driver '{holder.label}' holds it")
        holder.call("close", handle=hh)
        r = other.request("try_acquire", handle=ho)
        assert r.ok, (
            f"driver '{holder.label}' closed its held lock object, yet driver '{other.label}' still "
            f"gets {r.error}: closing a held object must release it [XL-HOLD-10]"
        )
        other.call("release", handle=ho)
        other.call("close", handle=ho)
        if "semaphore" in holder.capabilities and "semaphore" in other.capabilities:
            sh = lab.open(holder, NAME, kind="semaphore", capacity=1)
            so = lab.open(other, NAME, kind="semaphore", capacity=1)
            holder.call("acquire", handle=sh)
            other.fails("WOULD_BLOCK", "try_acquire", handle=so)
            holder.call("close", handle=sh)
            r = other.request("try_acquire", handle=so)
            assert r.ok, (
                f"driver '{holder.label}' closed a semaphore object holding a permit, yet driver "
                f"'{other.label}' still gets {r.error} [XL-HOLD-10]"
            )
            other.call("close", handle=so)


@spec("XL-HOLD-4")
def test_lock_reentrant(pair, lab):
    for holder, other in _directions(lab, pair, ["lock", "reentrant"]):
        hh, ho = lab.open(holder, NAME, reentrant=True), lab.open(other, NAME)
        holder.call("acquire", handle=hh)
        holder.call("acquire", handle=hh)
        holder.call("try_acquire", handle=hh)
        for _ in range(2):
            holder.call("release", handle=hh)
            other.fails(
                "WOULD_BLOCK",
                "try_acquire",
                handle=ho,
                why=f"the reentrant object of driver '{holder.label}' still holds it",
            )
            assert holder.call("locked", handle=hh)["locked"] is True, "a reentrant object released too early"
        holder.call("release", handle=hh)
        other.call("try_acquire", handle=ho)
        holder.fails("NOT_HELD", "release", handle=hh)
        other.call("release", handle=ho)
        holder.call("close", handle=hh)
        other.call("close", handle=ho)


def _proc_locks(path, waiters=False):
    """Holders (or, with `waiters`, blocked waiters) of `path` in /proc/locks as (type, mode, pid)
    [XL-INTRO-2]: `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INO 0 EOF`, waiters with `->` after `N:`."""
    st = os.stat(path)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    found = set()
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            is_waiter = len(fields) > 1 and fields[1] == "->"
            if is_waiter:
                fields = fields[:1] + fields[2:]
            if is_waiter == waiters and len(fields) >= 6 and fields[5] == key:
                found.add((fields[1], fields[3], int(fields[4])))
    # A set: /proc/locks is read page by page while other processes lock and unlock, and then lists one
    # lock several times under different ordinals; the same (type, mode, pid) on one file is one entry here.
    return sorted(found)


@spec("XL-LOCK-7", "XL-INTRO-2", "XL-CSEM-2")
def test_lock_is_flock(one, lab):
    """The kernel's own table says what a driver holds: a FLOCK (never a POSIX record lock), WRITE for
    exclusive and READ for shared, placed by the process the hello named."""
    d = lab.start(one, need=["lock", "shared"])
    for shared, mode in ((False, "WRITE"), (True, "READ")):
        r = d.call("open", kind="lock", name=f"kernel-{mode.lower()}", namespace=lab.ns, shared=shared)
        d.call("acquire", handle=r["handle"])
        held = _proc_locks(r["path"])
        assert held == [("FLOCK", mode, d.pid)], (
            f"driver '{d.label}' holds {r['path']} {'shared' if shared else 'exclusively'}; /proc/locks "
            f"shows {held or 'nothing'}, want [('FLOCK', '{mode}', {d.pid})] (flock(2), by the hello pid) "
            "[XL-LOCK-7]"
        )
        d.call("release", handle=r["handle"])
        assert _proc_locks(r["path"]) == [], f"after release /proc/locks still shows {_proc_locks(r['path'])}"
    if "semaphore" in d.capabilities:
        h = lab.open(d, "kernel-sem", kind="semaphore", capacity=2)
        slot = d.call("acquire", handle=h)["slot"]
        path = os.path.join(lab.ns, f"kernel-sem.{slot}.slot")
        held = _proc_locks(path)
        assert held == [("FLOCK", "WRITE", d.pid)], (
            f"driver '{d.label}' holds permit {slot}; /proc/locks shows {held or 'nothing'} for {path}, want "
            f"an exclusive FLOCK by pid {d.pid} [XL-CSEM-2]"
        )


@spec("XL-WAIT-2")
def test_lock_untimed_in_kernel(pair, lab):
    """An untimed acquire waits in a blocking flock(2): the kernel lists it as a waiter (`->`) in
    /proc/locks, which no polling loop produces."""
    for holder, waiter in _directions(lab, pair, ["lock"]):
        hh, hw = lab.open(holder, NAME), lab.open(waiter, NAME)
        holder.call("acquire", handle=hh)
        rid = waiter.send("acquire", handle=hw)
        path = os.path.join(lab.ns, NAME + ".lock")
        deadline = time.monotonic() + 3.0
        while ("FLOCK", "WRITE", waiter.pid) not in _proc_locks(path, waiters=True):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"driver '{waiter.label}' (pid {waiter.pid}) has waited 3 s in an untimed acquire, but "
                    f"/proc/locks lists no blocked flock by it on {path} (waiters: "
                    f"{_proc_locks(path, waiters=True)}): untimed waits block in flock(2), no polling "
                    "[XL-WAIT-2]"
                )
            waiter.no_reply_within(rid, 0.01, f"driver '{holder.label}' holds the lock")
        holder.call("release", handle=hh)
        got = waiter.wait(rid, 3.0)
        assert got.ok, f"driver '{waiter.label}': untimed acquire failed with {got.error}"
        waiter.call("release", handle=hw)
        holder.call("close", handle=hh)
        waiter.call("close", handle=hw)


@spec("XL-LOCK-2", "XL-LOCK-7")
def test_lock_create_race(available, lab):
    """Six processes of every available binding open the same 30 new locks at once: every open succeeds
    (EEXIST means another creator won: open it) and all end up on one file per name (exactly one of the
    six gets each lock)."""
    drivers = [lab.start(available[i % len(available)], need=["lock"]) for i in range(6)]
    names = [f"race-{i}" for i in range(30)]
    sent = [(d, [d.send("open", kind="lock", name=n, namespace=lab.ns) for n in names]) for d in drivers]
    handles = {}
    for d, rids in sent:  # pipelined: every driver works through its list while the others do
        for name, rid in zip(names, rids):
            r = d.wait(rid, 10.0)
            assert r.ok, f"driver '{d.label}': open lock {name!r} failed with {r.error}: {r.get('message')}"
            handles[(d, name)] = r["handle"]
    for name in names:
        winners = [d.label for d in drivers if d.request("try_acquire", handle=handles[(d, name)]).ok]
        assert len(winners) == 1, f"lock {name!r} created concurrently is held by {winners}: want exactly one"
    present = sorted(f for f in os.listdir(lab.ns) if f != BELL)  # and the bell, made when first needed
    assert present == sorted(n + ".lock" for n in names), f"unexpected files after the race: {present[:10]}"
