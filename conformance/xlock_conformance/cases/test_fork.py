"""Fork: a forked child holds nothing, never unlocks the parent's lock, and does not keep it alive."""

from __future__ import annotations

import os
import signal

from xlock_conformance.lab import BLOCKED_WINDOW, WAKE_DEADLINE
from xlock_conformance.plugin import spec

NAME = "conformance-fork"
OBSERVE_MS = 3_000  # the observer's timed acquire: freed by the holder's death, it answers long before


def _alive(pid):
    """True while `pid` runs (a zombie is dead): /proc/<pid>/stat field 3 is the state."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@spec("XL-HOLD-7", "XL-HOLD-8")
def test_fork_child_holds_nothing(pair, lab):
    """The holder forks while holding; its child's release, locked and try-acquire see nothing held and
    leave the parent's lock alone. Then the holder is SIGKILLed while its child lingers: the lock is free
    at once, since the child closed the inherited descriptor (at the latest before its try-acquire) that
    shares the parent's open file description."""
    for holder_spec, observer_spec in (pair, pair[::-1]):
        holder = lab.start(holder_spec, need=["lock", "fork"])
        observer = lab.start(observer_spec, need=["lock", "timeout"])
        hh, ho = lab.open(holder, NAME), lab.open(observer, NAME)
        holder.call("acquire", handle=hh)
        r = holder.call("fork_check", handle=hh, timeout=10.0)
        child = r.get("child_pid")
        assert isinstance(child, int) and not isinstance(child, bool) and child > 0 and child != holder.pid, (
            f"driver '{holder.label}': fork_check child_pid {child!r} is not a forked child of pid "
            f"{holder.pid}"
        )
        try:
            seen = {k: r.get(k) for k in ("release", "locked", "try_acquire")}
            assert seen == {"release": "NOT_HELD", "locked": False, "try_acquire": "WOULD_BLOCK"}, (
                f"driver '{holder.label}' holds the lock and forks; its child reports {seen}, want release "
                "NOT_HELD and locked false (the child holds nothing and must not flock(LOCK_UN) the parent's "
                "open file description) [XL-HOLD-7], and try_acquire WOULD_BLOCK (the parent holds it; a "
                "child that flocks an inherited descriptor is granted the parent's lock twice) [XL-HOLD-8]"
            )
            assert holder.call("locked", handle=hh)["locked"] is True, (
                f"driver '{holder.label}': locked is false after its forked child's release [XL-HOLD-7]"
            )
            observer.fails(
                "WOULD_BLOCK",
                "try_acquire",
                handle=ho,
                why=f"driver '{holder.label}' holds the lock, whatever its forked child did [XL-HOLD-7]",
            )
            assert _alive(child), f"the forked child {child} of driver '{holder.label}' did not stay alive"
            # The holder dies, its child lingers: nothing else may keep the lock.
            rid = observer.send("acquire", handle=ho, timeout_ms=OBSERVE_MS)
            observer.no_reply_within(rid, BLOCKED_WINDOW, f"driver '{holder.label}' holds the lock")
            _kill(holder.pid)
            got = observer.wait(rid, OBSERVE_MS / 1000 + WAKE_DEADLINE)
            assert _alive(child), f"the forked child {child} died with its parent: the case proves nothing"
            assert got.ok, (
                f"driver '{holder.label}' was SIGKILLed while holding the lock; its forked child {child} "
                "still "
                f"lives, and driver '{observer.label}' gets {got.error} ({got.get('message')}): the child "
                "keeps "
                "an inherited lock-file descriptor, and with it the dead parent's lock, alive: the child "
                "must close inherited descriptors before its next acquisition [XL-HOLD-8]"
            )
            observer.call("release", handle=ho)
            observer.call("close", handle=ho)
        finally:
            _kill(child)
