"""After fork(2), every live xlock object in the child forgets what it holds [XL-HOLD-7, XL-HOLD-8]."""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["ForkAware", "track"]


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def track(obj: ForkAware) -> None:
    """Register ``obj`` so that a forked child resets it."""
    _live.add(obj)


def _reset_children_objects() -> None:
    for obj in list(_live):
        obj._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_children_objects)
