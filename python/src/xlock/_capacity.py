"""The capacity file of a counting semaphore: read, or created atomically [XL-CSEM-3, XL-CSEM-4]."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading

from ._errors import CapacityMismatch, InsecureNamespace, os_error
from ._namespace import Namespace
from .names import capacity_file_name, temp_capacity_file_name

__all__ = ["capacity_content", "ensure_capacity", "read_capacity"]

_MAX_CAPACITY_FILE = 64
_CONTENT = re.compile(rb"xlock/1 semaphore capacity=(0|[1-9][0-9]*)\n\Z")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Threads of one process share the temporary file name (it holds the pid): create one at a time.
_creating = threading.Lock()


def capacity_content(capacity: int) -> bytes:
    return b"xlock/1 semaphore capacity=%d\n" % capacity


def read_capacity(ns: Namespace, name: str) -> int | None:
    """Return the capacity recorded in the capacity file, ``None`` if there is none.

    Raises ``InsecureNamespace`` for a symlink or non-regular file, ``CapacityMismatch`` for content
    that is not exactly of the form of XL-CSEM-3.
    """
    file_name = capacity_file_name(name)
    path = ns.join(file_name)
    try:
        fd = os.open(file_name, _OPEN_FLAGS, dir_fd=ns.require_open())
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise InsecureNamespace(
                f"{path} is a symbolic link; xlock never follows links in a namespace [XL-LOCK-4]: remove "
                f"it if you did not create it, and check who can write to {ns.path}"
            ) from None
        raise os_error(exc, f"cannot open {path}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InsecureNamespace(f"{path} is not a regular file [XL-CSEM-3]: remove it")
        data = os.read(fd, _MAX_CAPACITY_FILE + 1)
    except OSError as exc:
        raise os_error(exc, f"cannot read {path}") from None
    finally:
        os.close(fd)
    match = _CONTENT.match(data) if len(data) <= _MAX_CAPACITY_FILE else None
    if match is None:
        raise CapacityMismatch(
            f"semaphore {name!r}: capacity file {path} does not hold 'xlock/1 semaphore capacity=N' "
            f"(found {data[:_MAX_CAPACITY_FILE]!r}) [XL-CSEM-3]: while the semaphore is idle, remove it with "
            f"xlock.remove({name!r}, kind='semaphore', capacity=N)"
        )
    return int(match.group(1))


def ensure_capacity(ns: Namespace, name: str, capacity: int) -> None:
    """Check the capacity file against ``capacity``, creating it if missing [XL-CSEM-3, XL-CSEM-4].

    Raises ``CapacityMismatch`` (giving both capacities), ``InsecureNamespace``, ``XLockOSError``.
    """
    while True:
        found = read_capacity(ns, name)
        if found is None:
            _create(ns, name, capacity)
            found = read_capacity(ns, name)
            if found is None:
                continue  # removed between creation and reading: start over
        if found != capacity:
            raise CapacityMismatch(
                f"semaphore {name!r} ({ns.join(capacity_file_name(name))}) has capacity {found}, but "
                f"capacity {capacity} was asked for [XL-CSEM-3]: use capacity={found}, or remove the "
                f"semaphore while it is idle"
            )
        return


def _create(ns: Namespace, name: str, capacity: int) -> None:
    final = capacity_file_name(name)
    with _creating:
        temp = temp_capacity_file_name(name, os.getpid())
        dirfd = ns.require_open()
        try:
            fd = os.open(temp, _TEMP_FLAGS, ns.file_mode, dir_fd=dirfd)
        except FileExistsError:
            os.unlink(temp, dir_fd=dirfd)  # left by a dead process that had our pid
            fd = os.open(temp, _TEMP_FLAGS, ns.file_mode, dir_fd=dirfd)
        except OSError as exc:
            raise os_error(exc, f"cannot create {ns.join(temp)}") from None
        try:
            try:
                os.fchmod(fd, ns.file_mode)
                os.write(fd, capacity_content(capacity))
            finally:
                os.close(fd)
            try:
                os.link(temp, final, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
            except FileExistsError:
                pass  # another participant won; the caller reads and compares [XL-CSEM-4]
        except OSError as exc:
            raise os_error(exc, f"cannot create {ns.join(final)}") from None
        finally:
            try:
                os.unlink(temp, dir_fd=dirfd)
            except OSError:
                pass
