"""Opening lock and slot files safely (§6) and re-checking that a locked file is still the path's file."""

from __future__ import annotations

import errno
import os
import stat

from . import _libc
from ._errors import InsecureNamespace, os_error
from ._namespace import Namespace

__all__ = ["LockFile", "open_existing", "open_or_create"]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY  # [XL-LOCK-1]
_CREATE_FLAGS = _OPEN_FLAGS | os.O_CREAT | os.O_EXCL  # [XL-LOCK-2]


def _refuse_link(ns: Namespace, file_name: str) -> InsecureNamespace:
    return InsecureNamespace(
        f"{ns.join(file_name)} is a symbolic link; xlock never follows links in a namespace [XL-LOCK-4]: "
        f"remove the link if you did not create it, and check who can write to {ns.path}"
    )


def _check_regular(ns: Namespace, file_name: str, fd: int) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InsecureNamespace(
            f"{ns.join(file_name)} is not a regular file (mode {st.st_mode:o}) [XL-LOCK-5]: remove it, "
            f"and check who can write to {ns.path}"
        )
    return st


def open_existing(ns: Namespace, file_name: str) -> tuple[int, os.stat_result] | None:
    """Open an existing lock/slot file [XL-LOCK-1, XL-LOCK-4, XL-LOCK-5]; ``None`` if it does not exist."""
    try:
        fd = os.open(file_name, _OPEN_FLAGS, dir_fd=ns.require_open())
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise _refuse_link(ns, file_name) from None
        raise os_error(exc, f"cannot open {ns.join(file_name)}") from None
    return fd, _check_regular(ns, file_name, fd)


def open_or_create(ns: Namespace, file_name: str) -> tuple[int, os.stat_result]:
    """Open a lock/slot file, creating it with the namespace file mode if missing [XL-LOCK-1..5]."""
    while True:
        opened = open_existing(ns, file_name)
        if opened is not None:
            return opened
        try:
            fd = os.open(file_name, _CREATE_FLAGS, ns.file_mode, dir_fd=ns.require_open())
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue  # another creator won (or a link appeared): open it as existing [XL-LOCK-2]
            raise os_error(exc, f"cannot create {ns.join(file_name)}") from None
        try:
            os.fchmod(fd, ns.file_mode)  # independent of the umask [XL-LOCK-3]
        except OSError as exc:
            os.close(fd)
            raise os_error(exc, f"cannot chmod {ns.join(file_name)}") from None
        return fd, _check_regular(ns, file_name, fd)


class LockFile:
    """One lock or slot file: its name, its open descriptor (or -1) and the recorded identity [XL-LOCK-6].

    ``still_linked()`` is the re-check of XL-LOCK-8: ``statx(nsfd, name, AT_SYMLINK_NOFOLLOW)`` into a
    preallocated buffer, comparing ``stx_ino`` and the (major, minor) pair read as one 64-bit word. It
    measured faster than ``os.stat(name, dir_fd=..., follow_symlinks=False)``, which allocates a result.
    """

    __slots__ = (
        "_buf",
        "_cname",
        "_dev",
        "_devpair",
        "_devpair_ptr",
        "_ino",
        "_ino_ptr",
        "_ns",
        "fd",
        "name",
    )

    def __init__(self, ns: Namespace, file_name: str) -> None:
        self._ns = ns
        self.name = file_name
        self._cname = os.fsencode(file_name)
        self.fd = -1
        self._dev = self._ino = self._devpair = -1
        self._buf = _libc.ffi.new("char[]", _libc.STATX_BUFFER_SIZE)
        self._ino_ptr = _libc.ffi.cast("uint64_t *", self._buf + _libc.STATX_INO_OFFSET)
        self._devpair_ptr = _libc.ffi.cast("uint64_t *", self._buf + _libc.STATX_DEV_MAJOR_OFFSET)

    def open(self) -> None:
        """Open (or create) the file and record its identity. Raises like ``open_or_create``."""
        fd, st = open_or_create(self._ns, self.name)
        self._record(fd, st)

    def adopt(self, fd: int, st: os.stat_result) -> None:
        """Use an already opened descriptor (from ``open_existing``)."""
        self._record(fd, st)

    def _record(self, fd: int, st: os.stat_result) -> None:
        self.fd = fd
        self._dev = st.st_dev
        self._ino = st.st_ino
        # stx_dev_major then stx_dev_minor, two u32 read as one u64 (little- or big-endian host).
        pair = _libc.ffi.new("uint32_t[2]", [os.major(st.st_dev), os.minor(st.st_dev)])
        self._devpair = int(_libc.ffi.cast("uint64_t *", pair)[0])

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def forget(self) -> None:
        """Drop an inherited descriptor after fork without touching its lock [XL-HOLD-8]."""
        self.close()

    def still_linked(self) -> bool:
        """True if the path still names the open file (same dev and ino) [XL-LOCK-8]."""
        if (
            _statx(self._ns.fd, self._cname, _AT_SYMLINK_NOFOLLOW, _STATX_INO, self._buf) == 0
            and self._ino_ptr[0] == self._ino
            and self._devpair_ptr[0] == self._devpair
        ):
            return True
        return self._still_linked_slow()

    def _still_linked_slow(self) -> bool:
        try:
            st = os.stat(self.name, dir_fd=self._ns.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, f"cannot stat {self._ns.join(self.name)}") from None
        return st.st_ino == self._ino and st.st_dev == self._dev


def _statx_missing(dirfd: int, name: bytes, flags: int, mask: int, buf: object) -> int:
    return -1  # no statx in this libc: still_linked() falls back to os.stat


_statx = _libc.lib.statx if _libc.HAVE_STATX else _statx_missing
_AT_SYMLINK_NOFOLLOW = _libc.AT_SYMLINK_NOFOLLOW
_STATX_INO = _libc.STATX_INO
