"""The error vocabulary of xlock/1 [XL-ERR-1]: one exception class per kind, one common base [XL-ERR-2].

Each class also subclasses the builtin exception users already catch (``TimeoutError`` for a timeout,
``ValueError`` for a bad argument, ...), carries the spec's kind string in ``kind``, and pickles.
"""

from __future__ import annotations

__all__ = [
    "AlreadyHeld",
    "BackendError",
    "Cancelled",
    "CapacityMismatch",
    "InsecureNamespace",
    "Interrupted",
    "InvalidArgument",
    "InvalidName",
    "Lost",
    "NotHeld",
    "Timeout",
    "UnsupportedBackend",
    "UnsupportedFilesystem",
    "WouldBlock",
    "XLockError",
    "XLockOSError",
    "error_for_kind",
]


class XLockError(Exception):
    """Base of every error raised by xlock [XL-ERR-2]. ``kind`` is the spec's error kind."""

    kind: str = ""


class WouldBlock(XLockError, BlockingIOError):
    """A try acquisition (``blocking=False``) found the lock or every permit held elsewhere."""

    kind = "WOULD_BLOCK"


class Timeout(XLockError, TimeoutError):
    """The deadline of a timed acquisition passed before the lock or a permit was free [XL-WAIT-3]."""

    kind = "TIMEOUT"


class InvalidName(XLockError, ValueError):
    """A name breaks the rules of spec §3 (length, control characters, not valid Unicode)."""

    kind = "INVALID_NAME"


class InvalidArgument(XLockError, ValueError):
    """An argument other than the name is invalid (namespace path, capacity, timeout, closed object)."""

    kind = "INVALID_ARGUMENT"


class InsecureNamespace(XLockError, PermissionError):
    """A security check of the namespace directory or of a file in it refused the path (§2, §6)."""

    kind = "INSECURE_NAMESPACE"


class UnsupportedFilesystem(XLockError, OSError):
    """The namespace is on a network or FUSE file system where flock(2) does not exclude [XL-NS-10]."""

    kind = "UNSUPPORTED_FS"


class NotHeld(XLockError, RuntimeError):
    """A release of a lock, permit or semaphore this object does not hold [XL-HOLD-6]."""

    kind = "NOT_HELD"


class AlreadyHeld(XLockError, RuntimeError):
    """The thread that holds a non-reentrant lock object tried to acquire it again [XL-HOLD-3]."""

    kind = "ALREADY_HELD"


class CapacityMismatch(XLockError, ValueError):
    """A counting semaphore's capacity file disagrees with the capacity asked for [XL-CSEM-3]."""

    kind = "CAPACITY_MISMATCH"


class Interrupted(XLockError, InterruptedError):
    """A wait was interrupted by a signal [XL-WAIT-9] (Python normally raises the handler's exception)."""

    kind = "INTERRUPTED"


class Cancelled(XLockError, RuntimeError):
    """A wait was cancelled from elsewhere [XL-WAIT-10]; nothing is held."""

    kind = "CANCELLED"


class Lost(XLockError, RuntimeError):
    """The session of a PostgreSQL-backed holder ended or lost the lock [XL-PG-10]."""

    kind = "LOST"


class UnsupportedBackend(XLockError, RuntimeError):
    """A PostgreSQL backend xlock cannot use: a standby, a pooler, too old a server [XL-PG-6, XL-PG-9]."""

    kind = "UNSUPPORTED_BACKEND"


class BackendError(XLockError, ConnectionError):
    """The PostgreSQL server is unreachable, refused us, or failed a statement [XL-PG-15]."""

    kind = "BACKEND_ERROR"


class XLockOSError(XLockError, OSError):
    """Any other failing system call; ``errno`` is kept (construct as ``XLockOSError(errno, message)``)."""

    kind = "OS_ERROR"


_BY_KIND: dict[str, type[XLockError]] = {
    cls.kind: cls
    for cls in (
        WouldBlock,
        Timeout,
        InvalidName,
        InvalidArgument,
        InsecureNamespace,
        UnsupportedFilesystem,
        NotHeld,
        AlreadyHeld,
        CapacityMismatch,
        Interrupted,
        Cancelled,
        XLockOSError,
        Lost,
        UnsupportedBackend,
        BackendError,
    )
}


def error_for_kind(kind: str) -> type[XLockError]:
    """Return the exception class for a spec error kind such as ``"TIMEOUT"``.

    Raises ``InvalidArgument`` if ``kind`` is not a kind of the spec's error table [XL-ERR-1].
    """
    try:
        return _BY_KIND[kind]
    except (KeyError, TypeError):
        raise InvalidArgument(f"unknown xlock error kind {kind!r}; known: {', '.join(_BY_KIND)}") from None


def os_error(exc: OSError, what: str) -> XLockOSError:
    """Wrap an ``OSError`` from a system call as ``XLockOSError``, keeping errno and file name."""
    detail = exc.strerror or str(exc)
    err = XLockOSError(exc.errno or 0, f"{what}: {detail}")
    err.filename = exc.filename
    return err
