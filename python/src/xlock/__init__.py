"""xlock: named, crash-safe, cross-language locks and semaphores on one host (spec xlock/1)."""

from __future__ import annotations

from . import _platform  # noqa: F401  (first: refuses a platform other than Linux, spec §15)
from ._errors import (
    AlreadyHeld,
    BackendError,
    Cancelled,
    CapacityMismatch,
    InsecureNamespace,
    Interrupted,
    InvalidArgument,
    InvalidName,
    Lost,
    NotHeld,
    Timeout,
    UnsupportedBackend,
    UnsupportedFilesystem,
    WouldBlock,
    XLockError,
    XLockOSError,
    error_for_kind,
)
from ._lock import Lock, RLock
from ._namespace import Namespace
from ._posix_semaphore import PosixSemaphore
from ._remove import remove
from ._semaphore import Semaphore
from .names import (
    bell_word,
    capacity_file_name,
    default_namespace_path,
    lock_file_name,
    resolve_namespace_path,
    semaphore_name,
    slot_file_name,
    validate_name,
)

__version__ = "0.2.0"
SPEC_VERSION = "xlock/1"


def build_info() -> dict[str, str]:
    """How this xlock reaches libc: ``{"ffi": "compiled", ...}`` with the compiled module (cffi API mode,
    built by ``pip install`` when a C compiler is present: the hot paths are single C calls), or
    ``{"ffi": "abi", "reason": ...}`` with cffi's ABI mode (no compiler, ``XLOCK_FFI=abi``, or a stale
    build). Also ``"version"`` and ``"spec"``."""
    from . import _libc

    info = {"ffi": _libc.MODE, "version": __version__, "spec": SPEC_VERSION}
    if _libc.MODE_REASON:
        info["reason"] = _libc.MODE_REASON
    return info


__all__ = [
    "SPEC_VERSION",
    "AlreadyHeld",
    "BackendError",
    "Cancelled",
    "CapacityMismatch",
    "InsecureNamespace",
    "Interrupted",
    "InvalidArgument",
    "InvalidName",
    "Lock",
    "Lost",
    "Namespace",
    "NotHeld",
    "PosixSemaphore",
    "RLock",
    "Semaphore",
    "Timeout",
    "UnsupportedBackend",
    "UnsupportedFilesystem",
    "WouldBlock",
    "XLockError",
    "XLockOSError",
    "__version__",
    "bell_word",
    "build_info",
    "capacity_file_name",
    "default_namespace_path",
    "error_for_kind",
    "lock_file_name",
    "remove",
    "resolve_namespace_path",
    "semaphore_name",
    "slot_file_name",
    "validate_name",
]
