"""Death: SIGKILL a holder; the kernel frees what it held, and waiters in other drivers get it."""

from __future__ import annotations

import time

from xlock_conformance.checks import blocked_then_freed
from xlock_conformance.plugin import spec

NAME = "conformance-death"


@spec("XL-HOLD-10", "XL-WAIT-7", "XL-WAIT-2")
def test_death_lock(pair, lab):
    for holder_spec, waiter_spec in (pair, pair[::-1]):
        holder = lab.start(holder_spec, need=["lock", "timeout"])
        waiter = lab.start(waiter_spec, need=["lock", "timeout"])
        holder.call("acquire", handle=lab.open(holder, NAME))
        # A killed holder rings no bell: the timed waiter notices by its safety poll.
        hw = lab.open(waiter, NAME)
        blocked_then_freed(
            waiter,
            "acquire",
            {"handle": hw, "timeout_ms": 10_000},
            holder.kill,
            f"driver '{holder.label}' holds the lock",
        )
        # And an untimed waiter, blocked in flock(2), is handed the lock when the new holder dies.
        third = lab.start(holder_spec, need=["lock"])
        ht = lab.open(third, NAME)
        blocked_then_freed(
            third, "acquire", {"handle": ht}, waiter.kill, f"driver '{waiter.label}' holds the lock"
        )
        third.call("release", handle=ht)
        third.call("close", handle=ht)


@spec("XL-CSEM-2", "XL-WAIT-11")
def test_death_semaphore(pair, lab):
    need = ["semaphore", "timeout"]
    holder = lab.start(pair[0], need=need)
    w1, w2 = lab.start(pair[1], need=need), lab.start(pair[0], need=need)
    hh = lab.open(holder, NAME, kind="semaphore", capacity=2)
    holder.call("acquire", handle=hh)
    holder.call("acquire", handle=hh)
    h1 = lab.open(w1, NAME, kind="semaphore", capacity=2)
    h2 = lab.open(w2, NAME, kind="semaphore", capacity=2)
    w1.fails("WOULD_BLOCK", "try_acquire", handle=h1)
    rid2 = w2.send("acquire", handle=h2)  # untimed: an infinite deadline, same loop [XL-WAIT-11]
    w2.no_reply_within(rid2, 0.05, f"driver '{holder.label}' holds both permits")
    blocked_then_freed(
        w1,
        "acquire",
        {"handle": h1, "timeout_ms": 10_000},
        holder.kill,
        f"driver '{holder.label}' holds both permits",
    )
    r2 = w2.wait(rid2, 3.0)
    assert r2.ok, f"driver '{w2.label}': the second permit of the killed holder never came: {r2.data}"
    w1.fails("WOULD_BLOCK", "try_acquire", handle=h1)


LOAD_ROUNDS = 2000


def _counter(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


@spec("XL-HOLD-10", "XL-CSEM-2")
def test_death_under_load(available, lab):
    """Four processes of every available binding cycle on a lock (then a semaphore of capacity 2); two are
    SIGKILLed mid-run, wherever they are. The survivors finish, and afterwards nothing is stuck: a fresh
    process takes the lock, or both permits, at once."""
    for kind, extra, permits in (("lock", {}, 1), ("semaphore", {"capacity": 2}, 2)):
        need = ["counter", "timeout", kind]
        drivers = [lab.start(available[i % len(available)], need=need) for i in range(4)]
        counters = [str(lab.tmp / f"{kind}-counter-{i}") for i in range(4)]
        pending = {}
        for i, d in enumerate(drivers):
            h = lab.open(d, "load", kind=kind, **extra)
            pending[d] = d.send(
                "cycle", handle=h, count=LOAD_ROUNDS, path=counters[i], timeout_ms=30_000 if i % 2 else None
            )
        deadline = time.monotonic() + 20
        while sum(_counter(c) for c in counters) < 200:  # a condition with a deadline, not a guess
            assert time.monotonic() < deadline, f"{kind}: the cycles made no progress within 20 s"
            for d, rid in pending.items():
                early = d.poll(rid, 0.005)
                assert early is None or early.ok, f"driver '{d.label}': cycle failed: {early.data}"
        victims, survivors = drivers[:2], drivers[2:]
        for d in victims:
            d.kill()
        for d in survivors:
            got = d.wait(pending[d], 60)
            assert got.ok, f"driver '{d.label}': cycle failed after two others were killed: {got.data}"
        fresh = lab.start(available[-1], need=need)
        h = lab.open(fresh, "load", kind=kind, **extra)
        for _ in range(permits):
            r = fresh.request("try_acquire", handle=h)
            assert r.ok, (
                f"{kind}: after SIGKILLing {', '.join(v.label for v in victims)} mid-run, a fresh "
                f"process gets {r.error}: a lock or permit was left stuck"
            )
        other = lab.open(fresh, "load", kind=kind, **extra)
        fresh.fails(
            "WOULD_BLOCK",
            "try_acquire",
            handle=other,
            why=f"another object of this process holds all {permits} permit(s)",
        )
