"""Doorbells: every release rings one (XL-WAIT-6), and one that cannot be opened never makes acquisition
or release fail: waiters fall back to the safety poll (XL-WAIT-8)."""

from __future__ import annotations

import os

from xlock_conformance.checks import blocked_then_freed, doorbell_value, ns_identity, sem_name
from xlock_conformance.plugin import spec


@spec("XL-WAIT-8", "XL-WAIT-7")
def test_doorbell_unavailable(pair, lab):
    need = ["lock", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    dev, ino = ns_identity(lab.ns)
    kinds = [("lock", "l", {})]
    if "semaphore" in a.capabilities and "semaphore" in b.capabilities:
        kinds.append(("semaphore", "s", {"capacity": 1}))
    blockers = []
    try:
        for kind, letter, extra in kinds:
            # A directory where the semaphore's file would be: sem_open fails (EISDIR) for everyone.
            path = "/dev/shm/sem." + sem_name(letter, dev, ino, "nobell")[1:]
            os.mkdir(path, 0o700)
            blockers.append(path)
            ha, hb = lab.open(a, "nobell", kind=kind, **extra), lab.open(b, "nobell", kind=kind, **extra)
            a.call("acquire", handle=ha, timeout_ms=1000)
            blocked_then_freed(b, "acquire", {"handle": hb, "timeout_ms": 10_000},
                               lambda: a.call("release", handle=ha), f"driver '{a.label}' holds the {kind}")
            b.call("release", handle=hb)
    finally:
        for path in blockers:
            os.rmdir(path)


@spec("XL-WAIT-6", "XL-WAIT-4", "XL-CSEM-6")
def test_doorbell_rung(pair, lab):
    """Every release posts the doorbell if its value is 0, and only then: after a timed waiter has been
    woken (so the doorbell exists) and many releases with nobody waiting, its value is exactly 1."""
    need = ["lock", "timeout", "counter"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    kinds = [("lock", {})]
    if "semaphore" in a.capabilities and "semaphore" in b.capabilities:
        kinds.append(("semaphore", {"capacity": 1}))
    for kind, extra in kinds:
        ra = a.call("open", kind=kind, name="bell", namespace=lab.ns, **extra)
        hb = lab.open(b, "bell", kind=kind, **extra)
        bell = ra["semaphore"]
        for holder, hh, waiter, hw in ((a, ra["handle"], b, hb), (b, hb, a, ra["handle"])):
            holder.call("acquire", handle=hh, timeout_ms=1000)
            blocked_then_freed(waiter, "acquire", {"handle": hw, "timeout_ms": 10_000},
                               lambda: holder.call("release", handle=hh), f"driver '{holder.label}' holds the {kind}",
                               window=0.05)
            waiter.call("release", handle=hw)
            waiter.call("cycle", handle=hw, count=50, path=str(lab.tmp / "counter"), timeout_ms=None)
            value = doorbell_value(bell)
            assert value == 1, (
                f"after driver '{waiter.label}' released the {kind} 51 times with nobody waiting, its doorbell "
                f"{bell} has value {value}; want 1: each release posts it when it is 0, and only then [XL-WAIT-6]")
