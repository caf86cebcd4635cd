"""After fork(2), every live xlock object in the child forgets what it holds [XL-HOLD-7, XL-HOLD-8]."""

from __future__ import annotations

import os
import threading
import weakref

__all__ = ["ForkAware", "live", "sweep", "sweep_at", "track"]


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Protocol

    class ForkAware(Protocol):
        def _after_fork_in_child(self) -> None: ...


# Weak references without callbacks (cheaper to make and to drop than a WeakSet's, for objects made per
# use); the dead ones are swept when the list has doubled since the last sweep.
live: list[weakref.ReferenceType[ForkAware]] = []
sweep_at = [1024]
_mutex = threading.Lock()


def track(obj: ForkAware) -> None:
    """Register ``obj`` so that a forked child resets it."""
    live.append(weakref.ref(obj))  # one atomic list operation: no mutex for an object made per use
    if len(live) >= sweep_at[0]:
        sweep()


def sweep() -> None:
    """Drop the references to collected objects (when the list has doubled since the last sweep)."""
    with _mutex:
        swept = len(live)
        if swept < sweep_at[0]:
            return  # another thread swept meanwhile
        # only the first `swept` entries: a reference appended meanwhile by another thread is kept
        live[:swept] = [ref for ref in live[:swept] if ref() is not None]
        sweep_at[0] = max(1024, 2 * len(live))


def _reset_children_objects() -> None:
    global _mutex
    _mutex = threading.Lock()  # another thread may have held it at the fork
    for ref in list(live):
        obj = ref()
        if obj is not None:
            obj._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_children_objects)
