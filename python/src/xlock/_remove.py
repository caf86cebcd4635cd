"""``xlock.remove``: safe removal of idle files, only while holding them [XL-RM-2, XL-RM-3, XL-PSEM-5].
Removal never creates anything [XL-RM-6]."""

from __future__ import annotations

import fcntl
import os

from ._bell import bell_of
from ._capacity import read_capacity
from ._common import NamespaceArg, open_namespace
from ._errors import CapacityMismatch, InvalidArgument, WouldBlock
from ._files import file_error, owner_of, slot_indexes
from ._lockfile import ABSENT, BUSY, LockFile
from ._namespace import Namespace, release_shared
from ._pg import pg_namespace
from ._pg import remove as pg_remove
from ._posix_semaphore import unlink_semaphore
from ._semaphore import MAX_CAPACITY, check_capacity
from .names import EncodedName, NameLike, encoded

__all__ = ["remove"]

KINDS = ("lock", "semaphore", "posix_semaphore")
_LOCK_EX_NB = fcntl.LOCK_EX | fcntl.LOCK_NB


def remove(
    name: NameLike,
    *,
    namespace: NamespaceArg = None,
    kind: str = "lock",
    capacity: int | None = None,
) -> bool:
    """Remove the idle files of a lock (``kind="lock"``) or counting semaphore (``"semaphore"``), or
    unlink a raw POSIX semaphore (``"posix_semaphore"``, see the hazard of XL-PSEM-5).

    A lock file is removed only while holding it exclusively [XL-RM-2]; a semaphore's files only while
    holding every slot [XL-RM-3]; waiters then reopen the path, so removal never yields two holders
    [XL-RM-4]. A semaphore's capacity is the one its capacity file records; ``capacity``, if given, must
    agree (without a capacity file, it says how many slot files to look for; by default those found).
    Nothing is ever created [XL-RM-6].

    Returns True if this call unlinked at least one file (or the raw semaphore), False if there was
    nothing to remove [XL-RM-7]. Raises ``WouldBlock`` if the lock or a permit is held (nothing is
    removed); ``CapacityMismatch`` for a malformed capacity file or another capacity (nothing is
    removed); ``InvalidName``; ``InvalidArgument`` for an unknown ``kind`` or a bad ``capacity``;
    ``InsecureNamespace`` (including a file only its owner may remove); ``XLockOSError``.
    """
    url = pg_namespace(namespace)
    if url is not None:  # nothing to remove there [XL-PG-18]
        return pg_remove(name, url, kind=kind, capacity=capacity)
    n = encoded(name)
    if kind not in KINDS:
        raise InvalidArgument(f"remove: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if capacity is not None:
        if kind != "semaphore":
            raise InvalidArgument(f"remove: capacity applies to kind 'semaphore' only, not {kind!r}")
        check_capacity(f"semaphore {n.text!r}", capacity)
    ns, owned = open_namespace(namespace, False)
    try:
        if kind == "lock":
            return _remove_lock(ns, n)
        if kind == "semaphore":
            return _remove_semaphore(ns, n, capacity)
        return unlink_semaphore(n.semaphore_name("p", ns.dev, ns.ino), repr(n.text))
    finally:
        if owned:
            release_shared(ns)


def _take(ns: Namespace, file_name: str, what: str) -> LockFile | None:
    """The file locked exclusively with the strict re-check [XL-RM-2], or ``None`` if there is none."""
    lock_file = LockFile(ns, file_name, create=False, strict=True)
    got = lock_file.lock(_LOCK_EX_NB)
    if got == ABSENT:
        return None
    if got == BUSY:
        lock_file.close()
        raise WouldBlock(f"{what} ({ns.join(file_name)}) is held; nothing was removed")
    return lock_file


def _unlink(ns: Namespace, file_name: str) -> bool:
    try:
        os.unlink(file_name, dir_fd=ns.require_open())
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise file_error(ns, file_name, exc, "cannot remove") from None
    return True


def _ring(ns: Namespace, word: int) -> None:
    # Waiters on a removed file must notice at once and reopen the path; the bell is not created.
    bell = bell_of(ns, create=False)
    bell.ring(bell.word(word))


def _remove_lock(ns: Namespace, n: EncodedName) -> bool:
    lock_file = _take(ns, n.lock_file, f"lock {n.text!r}")
    if lock_file is None:
        return False
    try:
        removed = _unlink(ns, n.lock_file)
    finally:
        lock_file.close()  # the only descriptor: closing releases the flock
    _ring(ns, n.bell_word("l"))
    return removed


def _remove_semaphore(ns: Namespace, n: EncodedName, capacity: int | None) -> bool:
    recorded = read_capacity(ns, n)  # CapacityMismatch if malformed: nothing is removed [XL-RM-3]
    if recorded is not None and capacity is not None and recorded != capacity:
        raise CapacityMismatch(
            f"semaphore {n.text!r} ({ns.join(n.capacity_file)}, {owner_of(ns, n.capacity_file)}) has "
            f"capacity {recorded}, not {capacity} [XL-RM-3]; nothing was removed"
        )
    if recorded is not None:
        indexes = list(range(recorded))
    elif capacity is not None:
        indexes = list(range(capacity))
    else:  # no capacity file: the slot files left behind, if any
        indexes = [i for i in slot_indexes(ns.require_open(), n.enc) if i < MAX_CAPACITY]
    held: list[LockFile] = []
    removed = False
    try:
        for index in indexes:
            slot = _take(ns, n.slot_file(index), f"semaphore {n.text!r} permit {index}")
            if slot is not None:
                held.append(slot)
        for slot in held:  # [XL-RM-3]: the slot files, then the capacity file, then release
            removed = _unlink(ns, slot.name) or removed
        if recorded is not None:
            removed = _unlink(ns, n.capacity_file) or removed
    finally:
        for slot in held:
            slot.close()
    if held:
        _ring(ns, n.bell_word("s"))
    return removed
