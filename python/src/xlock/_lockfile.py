"""The lock-file cycle (§6): open or create, flock, re-check, reopen. One routine, ``LockFile.lock``, used
for lock files, slot files and removal.
"""

from __future__ import annotations

import errno
import fcntl
import os

from . import _libc
from ._errors import os_error
from ._files import MAX_ROUNDS, OPEN_FLAGS, file_error, open_file, replaced_error
from ._namespace import Namespace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ABSENT", "BUSY", "FLOCK_FAILED", "LOCKED", "TIMEDOUT", "WAITED", "LockFile"]

LOCKED, BUSY, ABSENT = 0, 1, 2
# Outcomes of the compiled module's calls besides LOCKED and BUSY (_cdef's enum XL_GONE .. XL_TIMEDOUT),
# the one place Python names them: xl_lock's, then the wait steps' (_bell, _lock, _semaphore).
_GONE, FLOCK_FAILED, _CHECK_FAILED, WAITED, TIMEDOUT = 2, 3, 4, 5, 6  # C's spelling: not _bell's TIMED_OUT
_flock = fcntl.flock
_LOCK_NB = fcntl.LOCK_NB
_LOCK_UN = fcntl.LOCK_UN
_xl_lock = _libc.lib.xl_lock if _libc.COMPILED else None
_xl_named = _libc.lib.xl_named if _libc.COMPILED else None
_xl_open_regular = _libc.lib.xl_open_regular if _libc.COMPILED else None
_NULL = _libc.ffi.NULL
# The compiled calls' re-check arguments for the link-count check: no namespace, name or identity.
_NLINK_CHECK = (-1, _NULL, 0, 0)


_EMPTY_PATH = _libc.ffi.new("char[]", b"")  # allocated once, not per call


def _statx_nlink(fd: int, buf: object) -> int:
    """``statx(fd, "", AT_EMPTY_PATH, STATX_NLINK, buf)``."""
    rc: int = _libc.lib.statx(fd, _EMPTY_PATH, _libc.AT_EMPTY_PATH, _libc.STATX_NLINK, buf)
    return rc


def _no_stat_nlink(fd: int, buf: object) -> int:
    return -1  # neither fstat's layout is known nor statx is there: the re-check uses os.fstat


# The ABI mode's link-count re-check [XL-LOCK-8]: a call that fills a buffer whose u32 at NLINK_OFFSET
# is then the link count (see _libc), and returns 0; fstat where struct stat allows it (the cheaper libffi
# call), else statx.
_stat_nlink: Any = (
    _libc.lib.fstat if _libc.FSTAT_NLINK else _statx_nlink if _libc.HAVE_STATX else _no_stat_nlink
)


class LockFile:
    """One lock or slot file: its name, its open descriptor (or -1) and the recorded identity [XL-LOCK-6].

    The re-check after ``flock`` [XL-LOCK-8] is, in a private namespace, that the locked file still has
    a name (``fstat`` or ``statx`` into a preallocated buffer: link count > 0);
    in a shared namespace, and always for the remover [XL-RM-2], the strict one: the path still names
    the recorded (``st_dev``, ``st_ino``).
    """

    __slots__ = (
        "_bname",
        "_cname",
        "_create",
        "_dev",
        "_ino",
        "_nlink",
        "_ns",
        "_out",
        "_stat_buf",
        "_strict",
        "args",
        "fd",
        "name",
    )

    def __init__(self, ns: Namespace, file_name: str, *, create: bool = True, strict: bool = False) -> None:
        self._ns = ns
        self.name = file_name
        self.fd = -1
        self._dev = self._ino = -1
        self._create = create
        self._strict = strict or ns.shared  # [XL-LOCK-8]
        # The strict re-check's name for the compiled path (a C string that lives as long as this object:
        # a Lock's hold keeps a pointer to it); NULL: the link count check.
        self._bname = file_name.encode()
        self._cname: Any = _libc.ffi.new("char[]", self._bname) if self._strict and _libc.COMPILED else _NULL
        # xl_open_regular's out array (dev, ino): only the strict re-check needs them
        self._out: Any = _libc.ffi.new("unsigned long long[2]") if self._strict and _libc.COMPILED else _NULL
        # check_args() while the file is open, for the link-count check (the strict one reads the
        # namespace's descriptor at each call); None otherwise
        self.args: tuple[int, Any, int, int] | None = None
        if _xl_lock is None:
            self._stat_buf = _libc.ffi.new("char[]", _libc.STAT_BUFFER_SIZE)
            self._nlink = _libc.ffi.cast("uint32_t *", self._stat_buf + _libc.NLINK_OFFSET)

    @property
    def path(self) -> str:
        return self._ns.join(self.name)

    def lock(self, op: int) -> int:
        """The whole cycle: open (or create) the file if it is not open, ``flock(fd, op)``, re-check
        [XL-LOCK-8], and on a failed re-check unlock, close, reopen and try again.

        Returns ``LOCKED``; ``BUSY`` if ``op`` has ``LOCK_NB`` and the file is locked elsewhere;
        ``ABSENT`` if the file does not exist and this object does not create. A blocking ``flock``
        interrupted by a signal runs Python's handlers, which may raise. Without waiting (``LOCK_NB``)
        the reopening is bounded [XL-LOCK-8]: ``XLockOSError`` (``EAGAIN``) after ``MAX_ROUNDS``. Raises
        ``InsecureNamespace`` and ``XLockOSError`` as ``open_file``.
        """
        rounds = 0
        while True:
            fd = self.fd
            if fd < 0:
                if not self.open():
                    return ABSENT
                fd = self.fd
            if _xl_lock is not None:
                # compiled: flock and the re-check in one call; a blocking flock waits in it, the GIL released
                rc: int = _xl_lock(fd, op, *self.check_args())
                if rc == LOCKED or rc == BUSY:
                    return rc
                if rc == FLOCK_FAILED and _libc.ffi.errno == errno.EINTR:
                    continue  # a signal: Python runs its handlers as the loop goes round, and they may raise
                # without waiting the reopening is bounded [XL-LOCK-12]; waiting, every round blocks
                rounds = self.after_failed_try(rc, rounds if op & _LOCK_NB else 0)
                continue
            try:
                _flock(fd, op)
            except BlockingIOError:
                return BUSY
            except OSError as exc:
                raise os_error(exc, f"flock on {self.path} failed") from None
            try:
                named = self._still_named(fd)
            except BaseException:
                _flock(fd, _LOCK_UN)
                raise
            if named:
                return LOCKED
            _flock(fd, _LOCK_UN)  # a removed or replaced file: reopen the path [XL-RM-4]
            self.close()
            if op & _LOCK_NB:
                rounds += 1
                if rounds >= MAX_ROUNDS:
                    raise replaced_error(self._ns, self.name)

    def try_locking(self, op: int) -> bool:
        """The ABI-mode hot path: on the open descriptor, one ``flock(op)`` (with ``LOCK_NB``) and the
        re-check [XL-LOCK-8]. True: locked and still named; False: nothing is held (busy, an error, or a
        file without a name: ``lock`` then runs the whole cycle and reports)."""
        fd = self.fd
        try:
            _flock(fd, op)
        except OSError:
            return False
        try:
            # the link-count check of _still_named inline (the common case), else the whole routine
            if not self._strict and _stat_nlink(fd, self._stat_buf) == 0:
                named = self._nlink[0] > 0
            else:
                named = self._still_named(fd)
        except BaseException:
            _flock(fd, _LOCK_UN)
            raise
        if named:
            return True
        _flock(fd, _LOCK_UN)
        return False

    def check_args(self) -> tuple[int, Any, int, int]:
        """The re-check's arguments of the compiled calls: (dirfd, name or NULL, dev, ino)."""
        if not self._strict:
            return _NLINK_CHECK
        return self._ns.fd, self._cname, self._dev, self._ino

    def after_failed_try(self, rc: int, rounds: int) -> int:
        """After a compiled try that neither locked nor found the file busy: a file without a name was
        unlocked again, so close it for a reopen and return ``rounds + 1`` (``XLockOSError``, ``EAGAIN``,
        at ``MAX_ROUNDS``) [XL-LOCK-8, XL-LOCK-12]; a failed ``flock`` or re-check raises."""
        if rc == _GONE:
            self.close()
            rounds += 1
            if rounds >= MAX_ROUNDS:
                raise replaced_error(self._ns, self.name)
            return rounds
        err = _libc.ffi.errno
        exc = OSError(err, os.strerror(err))
        if rc == FLOCK_FAILED:
            raise os_error(exc, f"flock on {self.path} failed")
        if self._strict:
            if self._ns.fd < 0:
                self._ns.require_open()  # raises: the namespace was closed
            raise file_error(self._ns, self.name, exc, "cannot stat")
        raise os_error(exc, f"cannot fstat {self.path}")

    def open(self) -> bool:
        """Open (or create) the file unless it is open, and record its identity [XL-LOCK-1..6]. False if
        it does not exist and this object does not create. Raises as ``open_file``."""
        if self.fd < 0 and _xl_open_regular is not None:
            # compiled: openat and fstat in one call for a regular file that exists [XL-LOCK-1, XL-LOCK-5];
            # anything else (absent, not regular, an error) goes the full way below
            out = self._out
            dirfd = self._ns.fd
            if dirfd < 0:
                self._ns.require_open()  # raises: the namespace was closed
            fd = _xl_open_regular(dirfd, self._bname, OPEN_FLAGS, out)
            if fd >= 0:
                self.fd = fd
                if self._strict:
                    self._dev, self._ino = out[0], out[1]
                else:
                    self.args = _NLINK_CHECK
                return True
        if self.fd < 0:
            opened = open_file(self._ns, self.name, create=self._create)
            if opened is None:
                return False
            fd, st = opened
            self.fd, self._dev, self._ino = fd, st.st_dev, st.st_ino
            if not self._strict:
                self.args = _NLINK_CHECK
        return True

    def _still_named(self, fd: int) -> bool:
        if _xl_named is not None:
            named: int = _xl_named(fd, *self.check_args())
            if named < 0:
                self.after_failed_try(_CHECK_FAILED, 0)  # raises
            return named > 0
        if self._strict:
            try:
                st = os.stat(self.name, dir_fd=self._ns.require_open(), follow_symlinks=False)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise file_error(self._ns, self.name, exc, "cannot stat") from None
            return st.st_ino == self._ino and st.st_dev == self._dev
        if _stat_nlink(fd, self._stat_buf) == 0:
            return bool(self._nlink[0] > 0)
        try:
            return os.fstat(fd).st_nlink > 0  # neither call is usable here
        except OSError as exc:
            raise os_error(exc, f"cannot fstat {self.path}") from None

    def unlock(self) -> None:
        """``flock(LOCK_UN)`` [XL-LOCK-9]; a closed descriptor is nothing to unlock."""
        fd = self.fd
        if fd >= 0:
            try:
                _flock(fd, _LOCK_UN)
            except OSError:
                pass

    def close(self) -> None:
        """Close the descriptor (which drops its flock). After fork this forgets an inherited descriptor
        without unlocking the parent's open file description [XL-HOLD-8]."""
        fd, self.fd = self.fd, -1
        self.args = None
        if fd >= 0:
            os.close(fd)
