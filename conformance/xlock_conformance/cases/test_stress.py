"""Stress: many processes of every available binding hammer one lock; no increment is lost."""

from __future__ import annotations

import time

from xlock_conformance.plugin import spec

PROCESSES = 6
ROUNDS = 1000
SEM_ROUNDS = 500


def _hammer(lab, available, kind, rounds, extra, need):
    drivers = [lab.start(available[i % len(available)], need=need) for i in range(PROCESSES)]
    counter = str(lab.tmp / f"counter-{kind}")
    pending = {}
    for i, d in enumerate(drivers):
        h = lab.open(d, "stress", kind=kind, **extra)
        pending[d] = d.send(
            "cycle", handle=h, count=rounds, path=counter, timeout_ms=30_000 if i % 2 else None
        )
    deadline = time.monotonic() + 50
    for d, rid in pending.items():
        got = d.wait(rid, max(deadline - time.monotonic(), 0.1))
        assert got.ok, f"driver '{d.label}': cycle failed with {got.error}: {got.get('message')}"
        assert got.get("count") == rounds, f"driver '{d.label}': cycle of {rounds} replied {got.data}"
    with open(counter) as f:
        value = int(f.read().strip())
    want = rounds * PROCESSES
    mix = ", ".join(d.label for d in drivers)
    assert value == want, (
        f"{PROCESSES} processes ({mix}) x {rounds} rounds: the counter is {value}, want {want}"
    )


@spec("XL-LOCK-7", "XL-WAIT-2", "XL-WAIT-12")
def test_stress_lock(available, lab):
    _hammer(lab, available, "lock", ROUNDS, {}, ["lock", "counter", "timeout"])


@spec("XL-CSEM-5", "XL-WAIT-11")
def test_stress_semaphore(available, lab):
    _hammer(lab, available, "semaphore", SEM_ROUNDS, {"capacity": 1}, ["semaphore", "counter", "timeout"])
