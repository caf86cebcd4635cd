"""Wake-up: a timed waiter is woken by the release itself (its ring of the bell), not by a slow poll."""

from __future__ import annotations

from xlock_conformance.checks import assert_order, latency_verdict, spread_delays
from xlock_conformance.lab import WAKE_DEADLINE
from xlock_conformance.plugin import spec

ROUNDS = 8
WAIT_MS = 10_000


def _measure(lab, pair, kind, extra):
    """Alternate holder and waiter for ROUNDS rounds; returns release-to-acquire latencies in ms per waiter,
    from the drivers' own CLOCK_MONOTONIC stamps (a system-wide clock)."""
    need = ["lock", "timeout", "clock"] + (["semaphore"] if kind == "semaphore" else [])
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    handles = {a: lab.open(a, "wake", kind=kind, **extra), b: lab.open(b, "wake", kind=kind, **extra)}
    holder, waiter = a, b
    holder.call("acquire", handle=handles[holder])
    latencies: dict[str, list[float]] = {a.label: [], b.label: []}
    for delay in spread_delays(ROUNDS):
        rid = waiter.send("acquire", handle=handles[waiter], timeout_ms=WAIT_MS)
        waiter.no_reply_within(rid, delay, f"driver '{holder.label}' holds the {kind}")
        released = holder.call("release", handle=handles[holder])
        got = waiter.wait(rid, WAKE_DEADLINE)
        assert got.ok, f"driver '{waiter.label}': timed acquire failed with {got.error} after the release"
        assert_order(released, got, holder, waiter)
        latencies[waiter.label].append((got["mono_ns"] - released["mono_ns"]) / 1e6)
        holder, waiter = waiter, holder
    return latencies


def _verdict(per_waiter, kind):
    # Each waiter is judged on its own: a slow poller paired with a good driver must not hide in the median.
    for label, latencies in per_waiter.items():
        latency_verdict(latencies, f"driver '{label}' as a timed {kind} waiter")


@spec("XL-WAIT-12", "XL-BELL-6", "XL-BELL-4")
def test_wakeup_lock(pair, lab):
    _verdict(_measure(lab, pair, "lock", {}), "lock")


@spec("XL-WAIT-11", "XL-CSEM-6", "XL-WAIT-12")
def test_wakeup_semaphore(pair, lab):
    _verdict(_measure(lab, pair, "semaphore", {"capacity": 1}), "semaphore")
