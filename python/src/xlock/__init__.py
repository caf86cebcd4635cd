"""xlock: named, crash-safe, cross-language locks and semaphores on one host (spec xlock/1)."""

from __future__ import annotations

from ._errors import (
    AlreadyHeld,
    Cancelled,
    CapacityMismatch,
    InsecureNamespace,
    Interrupted,
    InvalidArgument,
    InvalidName,
    NotHeld,
    Timeout,
    UnsupportedFilesystem,
    WouldBlock,
    XLockError,
    XLockOSError,
    error_for_kind,
)
from .names import (
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
    "Cancelled",
    "CapacityMismatch",
    "InsecureNamespace",
    "Interrupted",
    "InvalidArgument",
    "InvalidName",
    "NotHeld",
    "Timeout",
    "UnsupportedFilesystem",
    "WouldBlock",
    "XLockError",
    "XLockOSError",
    "__version__",
    "capacity_file_name",
    "default_namespace_path",
    "error_for_kind",
    "lock_file_name",
    "resolve_namespace_path",
    "semaphore_name",
    "slot_file_name",
    "validate_name",
]
