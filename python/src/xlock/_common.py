"""Small helpers shared by the lock and semaphore objects: namespace arguments, deadlines, owners."""

from __future__ import annotations

import math
import os
import sys
import threading
import time

from ._errors import AlreadyHeld, InvalidArgument, WouldBlock
from ._namespace import Namespace, shared_namespace

__all__ = [
    "FOREVER_NS",
    "IN_PROCESS_SLICE_S",
    "UNTIMED",
    "NamespaceArg",
    "acquire_timeout",
    "check_timeout",
    "claim_in_process",
    "current_owner_matches",
    "deadline_from",
    "open_namespace",
    "seconds_until",
]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Callable, Protocol, Union

    class Claimable(Protocol):
        """What claim_in_process needs of a lock object (xlock.Lock and the PostgreSQL lock)."""

        _closed: bool
        _owner: object
        _count: int
        reentrant: bool

        def _timeout(self, timeout: float | None) -> Exception: ...

    NamespaceArg = Union[str, "os.PathLike[str]", Namespace, None]
else:
    NamespaceArg = "str | os.PathLike[str] | Namespace | None"  # for annotations, never evaluated
# Longest single in-process wait (Condition.wait) before re-checking deadline, cancel and signals.
IN_PROCESS_SLICE_S = 0.02
# A deadline that never comes (~146 years of CLOCK_MONOTONIC); longer timeouts mean "wait for ever".
FOREVER_NS = 1 << 62
# ``timeout=-1``: wait without end, as ``threading.Lock.acquire`` spells it.
UNTIMED = -1


def open_namespace(namespace: NamespaceArg, allow_unsupported_fs: bool) -> tuple[Namespace, bool]:
    """Return (namespace, owned): a given ``Namespace`` is the caller's; a path or ``None`` gives the
    process's shared namespace of that path [XL-NS-16], ``owned``: give it back with ``release_shared``."""
    if type(namespace) is str or namespace is None:  # the common case first: no ABC isinstance
        return shared_namespace(namespace, allow_unsupported_fs), True
    if isinstance(namespace, Namespace):
        namespace.require_open()
        return namespace, False
    if isinstance(namespace, os.PathLike):
        namespace = os.fspath(namespace)
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidArgument(f"namespace must be a str path or an xlock.Namespace, not {namespace!r}")
    return shared_namespace(namespace, allow_unsupported_fs), True


def deadline_from(timeout: float | None) -> int | None:
    """The CLOCK_MONOTONIC deadline in ns of a timeout in seconds, computed once [XL-WAIT-3]; ``None`` if
    untimed (see ``check_timeout``). Raises ``InvalidArgument`` for NaN or a non-number."""
    seconds = check_timeout(timeout)
    if seconds is None:
        return None
    return time.monotonic_ns() + int(seconds * 1e9)


def check_timeout(timeout: object) -> float | None:
    """A timeout argument in seconds, or ``None`` for untimed: ``None``, ``-1`` (``threading``'s default),
    any negative number, infinity and a timeout too large for a deadline are untimed [XL-WAIT-3].

    Raises ``InvalidArgument`` (a ``ValueError``) for NaN or a non-number.
    """
    if timeout is None or (timeout == UNTIMED and type(timeout) is int):
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgument(f"timeout must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout):
        raise InvalidArgument("timeout must be a number of seconds or None, not NaN")
    if timeout < 0 or timeout * 1e9 >= FOREVER_NS:
        return None
    return float(timeout)


def acquire_timeout(blocking: object, timeout: object) -> float | None:
    """The timeout of ``acquire(blocking, timeout)``, checked as ``threading.Lock.acquire`` does: a
    timeout other than ``-1`` (or ``None``) with ``blocking=False`` is a ``ValueError``
    (``InvalidArgument``)."""
    if not blocking and timeout is not None and timeout != UNTIMED:
        raise InvalidArgument(f"can't specify a timeout for a non-blocking call (timeout={timeout!r})")
    return check_timeout(timeout)


def seconds_until(deadline_ns: int | None, cap: float) -> float:
    """Seconds to wait before the next check: until the deadline, but at most ``cap``."""
    if deadline_ns is None:
        return cap
    return max(0.0, min(cap, (deadline_ns - time.monotonic_ns()) / 1e9))


def current_task_or_none() -> object | None:
    """The running asyncio task of this thread, or ``None`` outside a coroutine."""
    # No import of asyncio here (it is slow to import): without asyncio imported no loop can be running.
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    loop = asyncio.events._get_running_loop()
    return None if loop is None else asyncio.current_task(loop)


def current_owner_matches(owner: object) -> bool:
    """True if ``owner`` (a thread ident or an asyncio task) is the caller."""
    if owner == threading.get_ident():
        return True
    return owner is not None and owner is current_task_or_none()


def describe_timeout(timeout: float | None) -> str:
    if timeout is None:
        return "before it was cancelled"
    return f"within {timeout * 1000:g} ms"


def claim_in_process(
    lock: Claimable,
    owner: object,
    blocking: bool,
    timeout: float | None,
    deadline_ns: int | None,
    what: Callable[[], str],
    busy: str,
    wait: Callable[[], object],
    take: Callable[[], object] | None = None,
) -> bool:
    """The in-process part of a lock's acquire, called with the object's mutex held: waits (``wait()``,
    a bounded slice) while another thread (or task) of this process holds or is acquiring the object
    [XL-HOLD-2]. True when a reentrant hold was counted [XL-HOLD-4] (nothing more to do); False when
    ``owner`` now owns the object and acquires it for real. ``what()`` names the object in messages
    (made only when one is raised), ``busy`` ends the WouldBlock message. ``take``, for an object with a
    fast path (``Lock``'s hold), takes the object from it when no owner is recorded: ``None`` when taken,
    else the thread ident of the fast path's holder (``0`` while a fast try or release runs). Raises
    InvalidArgument (closed), AlreadyHeld [XL-HOLD-3], WouldBlock, the object's Timeout, or whatever
    ``wait`` raises."""
    while True:
        if lock._closed:
            raise InvalidArgument(f"{what()} is closed")
        current = lock._owner
        held = lock._count
        if current is None:
            if take is None:
                break
            current = take()
            if current is None:
                break
            held = 1  # held on the fast path (ident 0, a try or release running, matches no caller)
        if held and (current == owner or current_owner_matches(current)):
            if lock.reentrant:
                lock._count += 1  # [XL-HOLD-4]
                return True
            raise AlreadyHeld(
                f"{what()} is already held by this thread; release it first, or create the Lock with "
                f"reentrant=True [XL-HOLD-3]"
            )
        if not blocking:
            raise WouldBlock(f"{what()} {busy}")
        if deadline_ns is not None and time.monotonic_ns() >= deadline_ns:
            raise lock._timeout(timeout)
        wait()
    lock._owner = owner  # acquiring: the object is ours alone until we finish
    return False
