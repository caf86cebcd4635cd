"""The capacity file of a counting semaphore: read, or created atomically [XL-CSEM-3, XL-CSEM-4]."""

from __future__ import annotations

import errno
import os

from ._errors import CapacityMismatch, os_error
from ._files import MAX_ROUNDS, file_error, open_file, owner_of, publish, replaced_error
from ._namespace import Namespace
from .names import EncodedName

__all__ = ["capacity_content", "ensure_capacity", "read_capacity"]

_MAX_CAPACITY_FILE = 64
_PREFIX = b"xlock/1 semaphore capacity="


def _parse(data: bytes) -> int | None:
    """The capacity of content of exactly the form of XL-CSEM-3 (decimal(N): ASCII digits, no leading
    zero), else ``None``."""
    if len(data) > _MAX_CAPACITY_FILE or not data.startswith(_PREFIX) or not data.endswith(b"\n"):
        return None
    digits = data[len(_PREFIX) : -1]
    if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):  # bytes: ASCII digits
        return None
    return int(digits)


def capacity_content(capacity: int) -> bytes:
    return b"xlock/1 semaphore capacity=%d\n" % capacity


def read_capacity(ns: Namespace, name: EncodedName) -> int | None:
    """Return the capacity recorded in the capacity file, ``None`` if there is none.

    Raises ``InsecureNamespace`` for a symlink or non-regular file, ``CapacityMismatch`` for content
    that is not exactly of the form of XL-CSEM-3, ``XLockOSError``.
    """
    opened = open_file(ns, name.capacity_file, create=False)
    if opened is None:
        return None
    fd = opened[0]
    try:
        data = os.read(fd, _MAX_CAPACITY_FILE + 1)
    except OSError as exc:
        raise os_error(exc, f"cannot read {ns.join(name.capacity_file)}") from None
    finally:
        os.close(fd)
    capacity = _parse(data)
    if capacity is None:
        raise CapacityMismatch(
            f"semaphore {name.text!r}: capacity file {ns.join(name.capacity_file)} "
            f"({owner_of(ns, name.capacity_file)}) is malformed: it does not hold 'xlock/1 semaphore "
            f"capacity=N' (found {data[:_MAX_CAPACITY_FILE]!r}) [XL-CSEM-3]: xlock did not write it; have "
            f"its owner remove it, then open the semaphore again"
        )
    return capacity


def ensure_capacity(ns: Namespace, name: EncodedName, capacity: int) -> None:
    """Check the capacity file against ``capacity``, creating it if missing [XL-CSEM-3, XL-CSEM-4].

    Raises ``CapacityMismatch`` (giving both capacities), ``InsecureNamespace``, ``XLockOSError``
    (``EAGAIN`` if the file keeps vanishing).
    """
    for _ in range(MAX_ROUNDS):
        found = read_capacity(ns, name)
        if found is None:
            _create(ns, name, capacity)
            found = read_capacity(ns, name)
            if found is None:
                continue  # removed between creation and reading: start over
        if found != capacity:
            raise CapacityMismatch(
                f"semaphore {name.text!r} ({ns.join(name.capacity_file)}, "
                f"{owner_of(ns, name.capacity_file)}) has capacity {found}, but capacity {capacity} was "
                f"asked for [XL-CSEM-3]: use capacity={found}, or remove the semaphore while it is idle"
            )
        return
    raise replaced_error(ns, name.capacity_file)


def _create(ns: Namespace, name: EncodedName, capacity: int) -> None:
    """Write the capacity file through a temporary file linked to its name [XL-CSEM-4]. A link that
    exists already is another participant's: the caller reads and compares it."""
    content = capacity_content(capacity)
    try:
        publish(
            ns.require_open(),
            name.capacity_file,
            name.temp_capacity_file,
            ns.capacity_mode,
            lambda fd: _write(fd, content),
        )
    except OSError as exc:
        raise file_error(ns, name.capacity_file, exc, "cannot create") from None


def _write(fd: int, content: bytes) -> None:
    if os.write(fd, content) != len(content):
        raise OSError(errno.EIO, "short write")
