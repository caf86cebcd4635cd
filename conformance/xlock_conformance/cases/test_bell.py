"""The bell (§9a): one 4 KiB file of futex words per namespace, created by the first lock or counting
semaphore that needs it, announced on by timed waiters and rung by every release, across drivers."""

from __future__ import annotations

import os
import stat
from typing import Any

from xlock_conformance.checks import (
    BELL,
    BELL_SIZE,
    assert_order,
    bell_word,
    draft1_doorbells,
    latency_verdict,
    read_bell_word,
    release_hands_over,
    unlink_quietly,
)
from xlock_conformance.lab import WAKE_DEADLINE
from xlock_conformance.plugin import spec

NAMES = [f"bell-{i}" for i in range(12)]


@spec("XL-BELL-1", "XL-BELL-2", "XL-BELL-7", "XL-ENC-4", "XL-SEM-2", "XL-NS-13", "XL-THREAT-2")
def test_bell_file(one, lab):
    """After locks and counting semaphores are used, the namespace holds their own files and exactly one
    bell: `.xlock-bell`, a regular file of 4096 bytes with the namespace file mode, owned by the user; 12
    names make no more files than their own plus the bell, and nothing in /dev/shm."""
    d = lab.start(one, need=["lock"])
    expected = {BELL}
    for name in NAMES:
        r = d.call("open", kind="lock", name=name, namespace=lab.ns)
        d.call("try_acquire", handle=r["handle"])
        d.call("release", handle=r["handle"])
        expected.add(name + ".lock")
    if "semaphore" in d.capabilities:
        for name in NAMES[:3]:
            h = lab.open(d, name, kind="semaphore", capacity=2)
            d.call("try_acquire", handle=h)
            d.call("release", handle=h)
            expected |= {name + ".sem", name + ".0.slot"}
    leftover = draft1_doorbells(lab.ns, NAMES)
    unlink_quietly(leftover)
    assert not leftover, (
        f"locks and counting semaphores made {leftover[:3]} in /dev/shm [XL-SEM-2, XL-THREAT-2]"
    )
    present = set(os.listdir(lab.ns))
    assert present == expected, (
        f"after using {len(NAMES)} locks the namespace holds, beyond what was expected, "
        f"{sorted(present - expected)[:10]}, and lacks {sorted(expected - present)[:10]}: one bell per "
        "namespace whatever the number of names, no other file [XL-BELL-1, XL-BELL-7, XL-ENC-4]"
    )
    st = os.lstat(os.path.join(lab.ns, BELL))
    got = (stat.S_ISREG(st.st_mode), st.st_size, stat.S_IMODE(st.st_mode), st.st_uid)
    assert got == (True, BELL_SIZE, 0o600, os.geteuid()), (
        f"{lab.ns}/{BELL} is (regular {got[0]}, {got[1]} bytes, mode {oct(got[2])}, uid {got[3]}); want a "
        f"regular file of {BELL_SIZE} bytes with the namespace file mode 0o600, owned by uid {os.geteuid()} "
        "[XL-BELL-1, XL-BELL-2, XL-NS-13]"
    )


def _kinds(a, b):
    kinds: list[tuple[str, str, dict[str, Any]]] = [("lock", "l", {})]
    if "semaphore" in a.capabilities and "semaphore" in b.capabilities:
        kinds.append(("semaphore", "s", {"capacity": 1}))
    return kinds


@spec("XL-BELL-4", "XL-BELL-5", "XL-BELL-6", "XL-WAIT-12", "XL-CSEM-6")
def test_bell_rung(pair, lab):
    """A timed waiter in one driver announces itself on its name's bell word (bit 0 set), and the release
    in the other driver rings that word (bits 1..31 count one more ring) and wakes it: the wake-up goes
    through the bell, whichever binding waits and whichever releases."""
    need = ["lock", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    for kind, letter, extra in _kinds(a, b):
        word = bell_word(letter, "rung")
        ha, hb = lab.open(a, "rung", kind=kind, **extra), lab.open(b, "rung", kind=kind, **extra)
        for holder, hh, waiter, hw in ((a, ha, b, hb), (b, hb, a, ha)):
            holder.call("acquire", handle=hh, timeout_ms=1000)
            rid = waiter.send("acquire", handle=hw, timeout_ms=10_000)
            waiter.no_reply_within(rid, 0.1, f"driver '{holder.label}' holds the {kind}")
            before = read_bell_word(lab.ns, word)
            assert before is not None and before & 1, (
                f"driver '{waiter.label}' has waited 100 ms in a timed acquire of the {kind}, but bit 0 of "
                f"its bell word {word} in {lab.ns}/{BELL} is not set (word = {before!r}): a timed waiter "
                "announces itself before it tries and sleeps [XL-BELL-5, XL-WAIT-12]"
            )
            released = holder.call("release", handle=hh)
            got = waiter.wait(rid, WAKE_DEADLINE)
            assert got.ok, f"driver '{waiter.label}': timed acquire failed with {got.error} after the release"
            assert_order(released, got, holder, waiter)
            after = read_bell_word(lab.ns, word)
            assert after is not None and (after >> 1) == ((before >> 1) + 1) % 2**31, (
                f"driver '{holder.label}' released the {kind} while driver '{waiter.label}' waited; its bell "
                "word "
                f"{word} went from {before:#x} to {after!r:}: a release rings the word of its name when bit "
                "0 is set (FUTEX_WAKE_OP adding 1: one more ring counted in bits 1..31) [XL-BELL-6]"
            )
            waiter.call("release", handle=hw)


WAITERS = 3


@spec("XL-BELL-6", "XL-WAIT-12", "XL-LOCK-7")
def test_bell_shared_waiters(pair, lab):
    """Several timed SHARED waiters of a lock, in both drivers, all wake on one release of the exclusive
    holder (every waiter on a bell word wakes on a ring) and then hold together."""
    need = ["lock", "shared", "timeout", "clock"]
    holder = lab.start(pair[0], need=need)
    waiters = [lab.start(pair[(i + 1) % 2], need=need) for i in range(WAITERS)]
    hh = lab.open(holder, "many")
    handles = [lab.open(w, "many", shared=True) for w in waiters]
    for _round in range(2):
        holder.call("acquire", handle=hh)
        rids = [w.send("acquire", handle=h, timeout_ms=10_000) for w, h in zip(waiters, handles)]
        for w, rid in zip(waiters, rids):
            w.no_reply_within(rid, 0.05, f"driver '{holder.label}' holds the lock exclusively")
        released = holder.call("release", handle=hh)
        latencies = []
        for w, rid in zip(waiters, rids):
            got = w.wait(rid, WAKE_DEADLINE)
            assert got.ok, (
                f"driver '{w.label}': a shared timed waiter failed with {got.error} after the release: "
                "every waiter of a shared lock wakes on one release [XL-BELL-6]"
            )
            assert_order(released, got, holder, w)
            latencies.append((got["mono_ns"] - released["mono_ns"]) / 1e6)
        latency_verdict(
            latencies,
            f"{WAITERS} shared waiters ({', '.join(w.label for w in waiters)}) of one release "
            f"by driver '{holder.label}'",
        )
        holder.fails("WOULD_BLOCK", "try_acquire", handle=hh, why=f"{WAITERS} shared holders hold the lock")
        for w, h in zip(waiters, handles):
            w.call("release", handle=h)


@spec("XL-BELL-8", "XL-WAIT-7")
def test_bell_unusable_falls_back(pair, lab):
    """A bell that cannot be opened (a directory at `.xlock-bell`, planted before anyone used the
    namespace) never makes acquisition or release fail: timed waiters in both drivers end by the safety
    poll."""
    need = ["lock", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    os.mkdir(os.path.join(lab.ns, BELL), 0o700)
    for kind, _letter, extra in _kinds(a, b):
        ha, hb = lab.open(a, "nobell", kind=kind, **extra), lab.open(b, "nobell", kind=kind, **extra)
        for holder, hh, waiter, hw in ((a, ha, b, hb), (b, hb, a, ha)):
            holder.call("acquire", handle=hh, timeout_ms=1000)
            release_hands_over(
                holder, hh, waiter, hw, f"driver '{holder.label}' holds the {kind}", window=0.1
            )
            waiter.call("release", handle=hw)
    assert os.path.isdir(os.path.join(lab.ns, BELL)), "the directory planted at the bell's path was replaced"
