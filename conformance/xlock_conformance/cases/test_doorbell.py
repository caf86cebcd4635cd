"""A doorbell that cannot be opened never makes acquisition or release fail: waiters fall back to the
safety poll (XL-WAIT-8)."""

from __future__ import annotations

import os

from xlock_conformance.checks import blocked_then_freed, ns_identity, sem_name
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
