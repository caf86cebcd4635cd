"""``xlock.PosixSemaphore``: the raw POSIX named semaphore of a (namespace, name) (§11), opened, created
and checked on its own descriptor, never with ``sem_open`` [XL-PSEM-2, XL-PSEM-3].
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

from . import _libc
from ._common import UNTIMED, NamespaceArg, check_timeout, deadline_from, describe_timeout
from ._errors import Cancelled, InsecureNamespace, InvalidArgument, NotHeld, Timeout, WouldBlock, XLockOSError
from ._files import MAX_ROUNDS, describe_uid, publish
from ._handle import Handle
from ._libc import ffi, lib
from ._namespace import Namespace
from .names import NameLike

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Literal

__all__ = ["SEM_VALUE_MAX", "PosixSemaphore", "semaphore_path", "unlink_semaphore"]

SEM_VALUE_MAX = 2**31 - 1
SHM_PREFIX = "/dev/shm/sem."
# Longest single sem_clockwait, so that a pending Python signal handler runs soon [XL-WAIT-9].
_SLICE_NS = 50_000_000
_OPEN_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def semaphore_path(semaphore_name: str) -> str:
    """The file glibc uses for a named semaphore on Linux: ``/dev/shm/sem.`` || name without ``/``."""
    return SHM_PREFIX + semaphore_name[1:]


def _owner_text(path: str) -> str:
    try:
        return f"owned by {describe_uid(os.lstat(path).st_uid)}"
    except OSError:
        return "owner unknown"


def _refused(path: str, why: str, what: str) -> InsecureNamespace:
    return InsecureNamespace(
        f"POSIX semaphore {path} for {what} {why} ({_owner_text(path)}) [XL-PSEM-3]: if you did not "
        f"expect it, ask its owner (or root) to remove it, or use another namespace"
    )


def _open_error(path: str, exc: OSError, what: str) -> Exception:
    err = exc.errno or 0
    if err in (errno.EACCES, errno.EPERM):
        return _refused(path, "may not be opened by you (permission denied)", what)
    if err == errno.ELOOP:
        return _refused(path, "is a symbolic link", what)
    if err in (errno.ENXIO, errno.EISDIR):
        return _refused(path, "is not a regular file", what)
    return XLockOSError(err, f"cannot open POSIX semaphore {path} for {what}: {exc.strerror}")


def _create(path: str, mode: int, value: int, what: str) -> None:
    """Create the semaphore's file as glibc's ``sem_open`` does: a temporary file holding an initialised
    ``sem_t``, linked to its name [XL-PSEM-2]. A name that exists by then is another creator's."""
    image = ffi.new("char[]", _libc.SEM_T_SIZE)
    if lib.sem_init(image, 1, ffi.cast("unsigned int", value)) != 0:
        err = ffi.errno
        raise XLockOSError(err, f"sem_init for {what} failed: {os.strerror(err)}")
    try:
        publish(
            None, path, lambda r: f"{path}.{r}.tmp", mode, lambda fd: _write_all(fd, bytes(ffi.buffer(image)))
        )
    except OSError as exc:
        raise _open_error(path, exc, what) from None


def _write_all(fd: int, data: bytes) -> None:
    if os.write(fd, data) != len(data):
        raise OSError(errno.EIO, "short write")


def _open(path: str, ns: Namespace, value: int, what: str) -> tuple[int, Any]:
    """Open (or create) the semaphore's file, check it on the descriptor and map it [XL-PSEM-2, XL-PSEM-3].
    Returns (fd, mapping)."""
    for _ in range(MAX_ROUNDS):
        try:
            fd = os.open(path, _OPEN_FLAGS)
            break
        except FileNotFoundError:
            _create(path, ns.file_mode, value, what)
        except OSError as exc:
            raise _open_error(path, exc, what) from None
    else:
        raise XLockOSError(errno.EAGAIN, f"{path} keeps being created and removed; try again")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refused(path, f"is not a regular file (mode {st.st_mode:o})", what)
        if st.st_size < _libc.SEM_T_SIZE:
            raise _refused(path, f"has {st.st_size} bytes, fewer than a sem_t ({_libc.SEM_T_SIZE})", what)
        if not ns.shared and st.st_uid not in (os.geteuid(), 0, ns.uid):
            raise _refused(path, f"is not owned by you, root or the owner of namespace {ns.path}", what)
        if st.st_uid == os.geteuid() and st.st_mode & 0o7777 != ns.file_mode:
            os.fchmod(fd, ns.file_mode)  # [XL-NS-13]
        addr = lib.mmap(
            ffi.NULL, _libc.SEM_T_SIZE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED, fd, 0
        )
        if addr == _libc.MAP_FAILED:
            err = ffi.errno
            raise XLockOSError(err, f"cannot map POSIX semaphore {path} for {what}: {os.strerror(err)}")
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, XLockOSError) or isinstance(exc, InsecureNamespace):
            raise
        raise XLockOSError(exc.errno or 0, f"cannot check {path} for {what}: {exc.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd, addr


def unlink_semaphore(semaphore_name: str, what: str) -> bool:
    """Remove a raw semaphore's name (``unlink`` of its file) [XL-PSEM-5]; True if it existed.

    Raises ``InsecureNamespace`` if it belongs to another user who alone may remove it, ``XLockOSError``.
    """
    path = semaphore_path(semaphore_name)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise InsecureNamespace(
                f"cannot remove POSIX semaphore {path} for {what}: permission denied ({_owner_text(path)}); "
                f"ask its owner or root to remove it"
            ) from None
        raise XLockOSError(
            exc.errno or 0, f"cannot remove POSIX semaphore {path} for {what}: {exc.strerror}"
        ) from None
    return True


class PosixSemaphore(Handle):
    """The raw POSIX named semaphore (kind ``p``) of a name in a namespace, for programs that only speak
    ``sem_open``.

    Unlike ``Semaphore``, its permits are NOT returned when a holder dies [XL-PSEM-1]. ``value`` (0 to
    ``SEM_VALUE_MAX``, default 1) applies only if this call creates it [XL-PSEM-2]. The object counts
    the permits it holds and refuses to release more [XL-PSEM-4]; closing it posts back the permits it
    holds [XL-PSEM-6]. After ``fork`` the child's object holds none [XL-HOLD-11].

    Hazard [XL-PSEM-5]: ``unlink()`` removes the name at once; processes that have it open keep using the
    old semaphore while later openers get a new one, so unlink only when no participant runs. A namespace
    directory removed and created again may get the same raw semaphore names [XL-PSEM-7].

    Raises at construction: ``InvalidName``; ``InvalidArgument`` for a bad ``value``;
    ``InsecureNamespace`` if the semaphore's file is not a regular file of at least ``sizeof(sem_t)``
    bytes, or is owned by a user other than you, root or the namespace's owner in a non-shared
    namespace [XL-PSEM-3]; ``XLockOSError``.

    Attributes: ``name``, ``semaphore_name`` (the POSIX name, ``/xl1p...``), ``path`` (its file in
    ``/dev/shm``), ``namespace``, ``namespace_identity``, ``held``.
    """

    def __init__(
        self,
        name: NameLike,
        *,
        value: int = 1,
        namespace: NamespaceArg = None,
        timeout: float | None = UNTIMED,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._set_name(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEM_VALUE_MAX:
            raise InvalidArgument(
                f"POSIX semaphore {self._name.text!r}: value must be an integer from 0 to {SEM_VALUE_MAX}, "
                f"not {value!r} [XL-PSEM-2]"
            )
        self._set_default_timeout(timeout)
        self._open_namespace(namespace, allow_unsupported_fs)
        ns = self._ns
        self.semaphore_name: str = self._name.semaphore_name("p", ns.dev, ns.ino)
        self.path: str = semaphore_path(self.semaphore_name)
        try:
            self._fd, self._addr = _open(self.path, ns, value, f"{self._name.text!r}")
        except BaseException:
            self._release_namespace()
            raise
        self._sem = self._addr
        self._held = 0
        self._mutex = threading.Lock()
        self._opened()

    @property
    def sem_name(self) -> str:
        """Deprecated alias of ``semaphore_name``."""
        import warnings

        warnings.warn("PosixSemaphore.sem_name is deprecated; use semaphore_name", DeprecationWarning, 2)
        return self.semaphore_name

    @property
    def held(self) -> int:
        """How many permits this object holds."""
        return self._held

    def locked(self) -> bool:
        """True if this object holds at least one permit."""
        return self._held > 0

    def _live(self) -> Any:
        if self._closed:
            raise InvalidArgument(f"POSIX semaphore {self.name!r} ({self.semaphore_name}) is closed")
        return self._sem

    # ``acquire(blocking=True, timeout=-1) -> bool`` is Handle's: take one permit with ``sem_trywait``
    # (``blocking=False``), or wait without end or ``timeout`` seconds with ``sem_clockwait`` on
    # CLOCK_MONOTONIC [XL-PSEM-4]; ``False`` when no permit came. Raises ``InvalidArgument``
    # (``blocking=False`` with a timeout, NaN or non-number timeout, closed), ``XLockOSError``; a signal
    # handler's exception propagates.

    def _acquire(
        self,
        owner: object,
        blocking: bool,
        timeout: float | None,
        cancel: threading.Event | None,
        deadline_ns: int | None,
    ) -> None:
        if deadline_ns is None:
            deadline_ns = deadline_from(timeout)
        if not blocking and timeout is not None:
            raise InvalidArgument(f"POSIX semaphore {self.name!r}: blocking=False takes no timeout")
        sem = self._live()
        ts: Any = None  # this call's own timespec, allocated on the first wait
        while True:
            if lib.sem_trywait(sem) == 0:
                break
            err = ffi.errno
            if err not in (errno.EAGAIN, errno.EINTR):
                raise self._os_error(err, "sem_trywait")
            if not blocking:
                raise WouldBlock(f"POSIX semaphore {self.name!r} ({self.semaphore_name}) has no permit free")
            now = time.monotonic_ns()
            if deadline_ns is not None and now >= deadline_ns:
                raise Timeout(
                    f"POSIX semaphore {self.name!r} ({self.semaphore_name}): no permit "
                    f"{describe_timeout(timeout)}"
                )
            self._live()  # raises if closed by another thread while we waited
            if cancel is not None and cancel.is_set():
                raise Cancelled(
                    f"waiting for POSIX semaphore {self.name!r} ({self.semaphore_name}) was cancelled; "
                    f"nothing is held"
                )
            # Sleep in slices so that Ctrl-C is handled promptly [XL-WAIT-9].
            wake = now + _SLICE_NS if deadline_ns is None else min(deadline_ns, now + _SLICE_NS)
            if ts is None:
                ts = ffi.new("struct timespec *")
            if self._wait_until(sem, wake, ts):
                break
        with self._mutex:
            self._held += 1

    def _wait_until(self, sem: Any, wake_ns: int, ts: Any) -> bool:
        if _libc.HAVE_CLOCKWAIT:
            ts.tv_sec, ts.tv_nsec = divmod(wake_ns, 1_000_000_000)
            rc = lib.sem_clockwait(sem, _libc.CLOCK_MONOTONIC, ts)
        else:
            remaining = max(0, wake_ns - time.monotonic_ns())
            ts.tv_sec, ts.tv_nsec = divmod(time.time_ns() + remaining, 1_000_000_000)
            rc = lib.sem_timedwait(sem, ts)
        if rc == 0:
            return True
        err = ffi.errno
        if err not in (errno.ETIMEDOUT, errno.EINTR, errno.EAGAIN):
            raise self._os_error(err, "sem_clockwait")
        return False

    def release(self) -> None:
        """Give one permit back (``sem_post``). Raises ``NotHeld`` if this object holds none
        [XL-PSEM-4], ``XLockOSError`` (``EOVERFLOW``) if the value would pass ``SEM_VALUE_MAX``.
        """
        sem = self._live()
        with self._mutex:
            if self._held <= 0:
                raise NotHeld(
                    f"POSIX semaphore {self.name!r} ({self.semaphore_name}): this object holds no permit"
                )
            if lib.sem_post(sem) != 0:
                raise self._os_error(ffi.errno, "sem_post")
            self._held -= 1

    def _undo(self, owner: object, got: Any) -> None:
        self.release()

    def value(self) -> int:
        """The semaphore's current value (``sem_getvalue``)."""
        out = ffi.new("int *")
        if lib.sem_getvalue(self._live(), out) != 0:
            raise self._os_error(ffi.errno, "sem_getvalue")
        return int(out[0])

    def unlink(self) -> bool:
        """Remove the semaphore's name; True if it existed. See the hazard above [XL-PSEM-5]. Raises
        ``InsecureNamespace`` (another user's, which only they or root may remove), ``XLockOSError``.
        """
        return unlink_semaphore(self.semaphore_name, repr(self.name))

    def _os_error(self, err: int, call: str) -> XLockOSError:
        return XLockOSError(
            err,
            f"{call} on POSIX semaphore {self.semaphore_name} ({self.name!r}) failed: {os.strerror(err)}",
        )

    def close(self) -> None:
        """Post back every permit this object holds and stop using the semaphore [XL-PSEM-6]. Idempotent.

        A wait in another thread ends within one wait slice with ``InvalidArgument``. The mapping is
        released when the object is collected, so no thread can still be using it.
        """
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            held, self._held = self._held, 0
            for _ in range(held):
                lib.sem_post(self._sem)
        self._release_namespace()

    def _dispose(self) -> None:
        addr, self._addr = getattr(self, "_addr", None), None
        if addr is not None:
            lib.munmap(addr, _libc.SEM_T_SIZE)
            os.close(self._fd)

    def _after_fork_in_child(self) -> None:
        self._mutex = threading.Lock()
        self._held = 0  # the child holds none of the parent's permits [XL-HOLD-11]

    async def acquire_async(self, timeout: float | None = None) -> Literal[True]:
        """Take one permit without blocking the event loop; returns ``True``, raises ``Timeout`` when
        ``timeout`` seconds pass first; a cancelled wait takes nothing."""
        await self._acquire_async(check_timeout(timeout))
        return True

    def __repr__(self) -> str:
        return (
            f"<xlock.PosixSemaphore {self.name!r} semaphore_name={self.semaphore_name!r} held={self._held}>"
        )
