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

__version__ = "0.1.0"
SPEC_VERSION = "xlock/1"

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
