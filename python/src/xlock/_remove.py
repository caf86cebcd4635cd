"""``xlock.remove``: safe removal of idle files, only while holding them [XL-RM-2, XL-RM-3, XL-PSEM-5]."""

from __future__ import annotations

import errno
import fcntl
import os

from . import _libc
from ._capacity import read_capacity
from ._common import NamespaceArg, open_namespace
from ._doorbell import Doorbell
from ._errors import CapacityMismatch, InvalidArgument, WouldBlock, os_error
from ._lockfile import LockFile, open_existing
from ._namespace import Namespace
from .names import NameLike, capacity_file_name, lock_file_name, name_to_str, semaphore_name, slot_file_name

__all__ = ["remove"]

_KINDS = ("lock", "semaphore", "posix_semaphore")


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
    [XL-RM-4]. ``capacity`` (semaphores) defaults to the one recorded in the capacity file.

    Returns True if something was removed, False if there was nothing. Raises ``WouldBlock`` if the lock
    or a permit is held (nothing is removed); ``CapacityMismatch``; ``InvalidName``; ``InvalidArgument``
    for an unknown ``kind``; ``InsecureNamespace``; ``XLockOSError``.
    """
    text = name_to_str(name)
    if kind not in _KINDS:
        raise InvalidArgument(f"remove: kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    ns, owned = open_namespace(namespace, False)
    try:
        if kind == "lock":
            return _remove_lock(ns, text)
        if kind == "semaphore":
            return _remove_semaphore(ns, text, capacity)
        return _unlink_posix(ns, text)
    finally:
        if owned:
            ns.close()


def _lock_existing(ns: Namespace, file_name: str, what: str) -> LockFile | None:
    """Open an existing file and take it with LOCK_EX | LOCK_NB, then check strictly that the path still
    names it, so that we never unlink a file we do not hold [XL-RM-2]."""
    while True:
        opened = open_existing(ns, file_name)
        if opened is None:
            return None
        lock_file = LockFile(ns, file_name)
        lock_file.adopt(*opened)
        try:
            fcntl.flock(lock_file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise WouldBlock(f"{what} ({ns.join(file_name)}) is held; nothing was removed") from None
        except OSError as exc:
            lock_file.close()
            raise os_error(exc, f"flock on {ns.join(file_name)} failed") from None
        if lock_file.path_names_it():
            return lock_file
        lock_file.close()  # replaced meanwhile: look again


def _unlink(ns: Namespace, file_name: str) -> None:
    try:
        os.unlink(file_name, dir_fd=ns.require_open())
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise os_error(exc, f"cannot remove {ns.join(file_name)}") from None


def _remove_lock(ns: Namespace, name: str) -> bool:
    file_name = lock_file_name(name)
    lock_file = _lock_existing(ns, file_name, f"lock {name!r}")
    if lock_file is None:
        return False
    try:
        _unlink(ns, file_name)
    finally:
        lock_file.close()  # the only descriptor: closing releases the flock
    # Waiters on the removed file must notice at once and reopen the path [XL-RM-2].
    bell = Doorbell(semaphore_name("l", ns.dev, ns.ino, name), ns.file_mode)
    bell.ring()
    bell.close()
    return True


def _remove_semaphore(ns: Namespace, name: str, capacity: int | None) -> bool:
    malformed = False
    try:
        recorded = read_capacity(ns, name)
    except CapacityMismatch:  # a capacity file of the wrong form: removable given the capacity
        if capacity is None:
            raise InvalidArgument(
                f"semaphore {name!r}: {ns.join(capacity_file_name(name))} is malformed; pass capacity= "
                f"to remove its files while holding every slot"
            ) from None
        recorded, malformed = None, True
    if capacity is None:
        if recorded is None:
            return False
        capacity = recorded
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= 1000:
        raise InvalidArgument(f"semaphore {name!r}: capacity must be an integer from 1 to 1000 [XL-CSEM-1]")
    if recorded is not None and recorded != capacity:
        raise CapacityMismatch(
            f"semaphore {name!r} ({ns.join(capacity_file_name(name))}) has capacity {recorded}, not "
            f"{capacity} [XL-CSEM-3]; nothing was removed"
        )
    held: list[LockFile] = []
    removed = recorded is not None or malformed
    try:
        for index in range(capacity):
            slot = _lock_existing(ns, slot_file_name(name, index), f"semaphore {name!r} permit {index}")
            if slot is not None:
                held.append(slot)
        for slot in held:  # [XL-RM-3]: the slot files, then the capacity file, then release
            _unlink(ns, slot.name)
            removed = True
        if recorded is not None or malformed:
            _unlink(ns, capacity_file_name(name))
    finally:
        for slot in held:
            slot.close()
    if held:
        bell = Doorbell(semaphore_name("s", ns.dev, ns.ino, name), ns.file_mode)
        bell.ring()
        bell.close()
    return removed


def _unlink_posix(ns: Namespace, name: str) -> bool:
    sem_name = semaphore_name("p", ns.dev, ns.ino, name)
    if _libc.lib.sem_unlink(sem_name.encode("ascii")) == 0:
        return True
    err = _libc.ffi.errno
    if err == errno.ENOENT:
        return False
    raise os_error(OSError(err, os.strerror(err)), f"cannot unlink POSIX semaphore {sem_name} for {name!r}")
