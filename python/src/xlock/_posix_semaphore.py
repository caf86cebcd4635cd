"""``xlock.PosixSemaphore``: the raw POSIX named semaphore of a (namespace, name) (§11)."""

from __future__ import annotations

import errno
import os
import threading
import time
from types import TracebackType
from typing import Any

from . import _fork, _libc
from ._async import acquire_in_worker
from ._common import NamespaceArg, deadline_from, describe_timeout, open_namespace
from ._doorbell import fix_semaphore_mode, open_semaphore
from ._errors import Cancelled, InsecureNamespace, InvalidArgument, NotHeld, Timeout, WouldBlock, XLockOSError
from ._libc import ffi, lib
from ._namespace import Namespace
from .names import NameLike, name_to_str, semaphore_name

__all__ = ["SEM_VALUE_MAX", "PosixSemaphore"]

SEM_VALUE_MAX = 2**31 - 1
# Longest single sem_clockwait, so that a pending Python signal handler runs soon [XL-WAIT-9].
_SLICE_NS = 50_000_000


class PosixSemaphore:
    """The raw POSIX named semaphore (kind ``p``) of a name in a namespace, for programs that only speak
    ``sem_open``.

    Unlike ``Semaphore``, its permits are NOT returned when a holder dies [XL-PSEM-1]. ``value`` (0 to
    ``SEM_VALUE_MAX``, default 1) applies only if this call creates it [XL-PSEM-2]. The object counts
    the permits it holds and refuses to release more [XL-PSEM-4].

    Hazard [XL-PSEM-5]: ``unlink()`` removes the name at once; processes that have it open keep using the
    old semaphore while later openers get a new one, so unlink only when no participant runs.

    Raises at construction: ``InvalidName``; ``InvalidArgument`` for a bad ``value``;
    ``InsecureNamespace`` if the semaphore is owned by a user other than you, root or the namespace's
    owner in a non-shared namespace [XL-PSEM-3]; ``XLockOSError`` if ``sem_open`` fails.

    Attributes: ``name``, ``sem_name`` (the POSIX name, ``/xl1p...``), ``namespace``, ``held``.
    """

    def __init__(
        self,
        name: NameLike,
        *,
        value: int = 1,
        namespace: NamespaceArg = None,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._handle: Any = None
        self.name = name_to_str(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SEM_VALUE_MAX:
            raise InvalidArgument(
                f"POSIX semaphore {self.name!r}: value must be an integer from 0 to {SEM_VALUE_MAX}, "
                f"not {value!r}"
            )
        ns, owned = open_namespace(namespace, allow_unsupported_fs)
        self.namespace: Namespace = ns
        self._owns_namespace = owned
        self.sem_name = semaphore_name("p", ns.dev, ns.ino, self.name)
        try:
            try:
                handle = open_semaphore(self.sem_name, ns.file_mode, value)
            except OSError as exc:
                raise XLockOSError(
                    exc.errno or 0,
                    f"cannot open POSIX semaphore {self.sem_name} for {self.name!r}: {exc.strerror}",
                ) from None
            try:
                self._check_owner(ns)
            except BaseException:
                lib.sem_close(handle)
                raise
        except BaseException:
            if owned:
                ns.close()
            raise
        self._handle = handle
        self._closed = False
        self._held = 0
        self._mutex = threading.Lock()
        _fork.track(self)

    def _check_owner(self, ns: Namespace) -> None:
        # [XL-PSEM-3]
        st = fix_semaphore_mode(self.sem_name, ns.file_mode)
        if st is None:
            return  # not Linux's /dev/shm layout: nothing to check
        if st.st_uid in (os.geteuid(), 0, ns.uid) or ns.shared:
            return
        raise InsecureNamespace(
            f"POSIX semaphore {self.sem_name} for {self.name!r} (/dev/shm/sem.{self.sem_name[1:]}) is "
            f"owned by uid {st.st_uid}, not by you, root or the owner of namespace {ns.path} [XL-PSEM-3]: "
            f"remove it (xlock.remove(..., kind='posix_semaphore')) if you did not expect it"
        )

    @property
    def held(self) -> int:
        """How many permits this object holds."""
        return self._held

    def locked(self) -> bool:
        """True if this object holds at least one permit."""
        return self._held > 0

    def _live_handle(self) -> Any:
        if self._closed:
            raise InvalidArgument(f"POSIX semaphore {self.name!r} ({self.sem_name}) is closed")
        return self._handle

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> None:
        """Take one permit: ``sem_trywait`` (``blocking=False``), or wait without end or ``timeout``
        seconds with ``sem_clockwait`` on CLOCK_MONOTONIC [XL-PSEM-4].

        Raises ``WouldBlock``, ``Timeout``, ``InvalidArgument`` (``blocking=False`` with a timeout, bad
        timeout, closed), ``XLockOSError``; a signal handler's exception propagates.
        """
        self._acquire(blocking, timeout, deadline_from(timeout), None)

    def _acquire(
        self, blocking: bool, timeout: float | None, deadline_ns: int | None, cancel: threading.Event | None
    ) -> None:
        if not blocking and timeout is not None:
            raise InvalidArgument(f"POSIX semaphore {self.name!r}: blocking=False takes no timeout")
        handle = self._live_handle()
        ts: Any = None  # this call's own timespec, allocated on the first wait
        while True:
            if lib.sem_trywait(handle) == 0:
                break
            err = ffi.errno
            if err not in (errno.EAGAIN, errno.EINTR):
                raise self._os_error(err, "sem_trywait")
            if not blocking:
                raise WouldBlock(f"POSIX semaphore {self.name!r} ({self.sem_name}) has no permit free")
            now = time.monotonic_ns()
            if deadline_ns is not None and now >= deadline_ns:
                raise Timeout(
                    f"POSIX semaphore {self.name!r} ({self.sem_name}): no permit {describe_timeout(timeout)}"
                )
            if self._closed:
                self._live_handle()  # raises: closed by another thread while we waited
            if cancel is not None and cancel.is_set():
                raise Cancelled(
                    f"waiting for POSIX semaphore {self.name!r} ({self.sem_name}) was cancelled; "
                    f"nothing is held"
                )
            # Sleep in slices so that Ctrl-C is handled promptly [XL-WAIT-9].
            wake = now + _SLICE_NS if deadline_ns is None else min(deadline_ns, now + _SLICE_NS)
            if ts is None:
                ts = ffi.new("struct timespec *")
            if self._wait_until(handle, wake, ts):
                break
        with self._mutex:
            self._held += 1

    def _wait_until(self, handle: Any, wake_ns: int, ts: Any) -> bool:
        if _libc.HAVE_CLOCKWAIT:
            ts.tv_sec, ts.tv_nsec = divmod(wake_ns, 1_000_000_000)
            rc = lib.sem_clockwait(handle, _libc.CLOCK_MONOTONIC, ts)
        else:
            remaining = max(0, wake_ns - time.monotonic_ns())
            ts.tv_sec, ts.tv_nsec = divmod(time.time_ns() + remaining, 1_000_000_000)
            rc = lib.sem_timedwait(handle, ts)
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
        handle = self._live_handle()
        with self._mutex:
            if self._held <= 0:
                raise NotHeld(f"POSIX semaphore {self.name!r} ({self.sem_name}): this object holds no permit")
            if lib.sem_post(handle) != 0:
                raise self._os_error(ffi.errno, "sem_post")
            self._held -= 1

    def value(self) -> int:
        """The semaphore's current value (``sem_getvalue``)."""
        out = ffi.new("int *")
        if lib.sem_getvalue(self._live_handle(), out) != 0:
            raise self._os_error(ffi.errno, "sem_getvalue")
        return int(out[0])

    def unlink(self) -> bool:
        """Remove the semaphore's name (``sem_unlink``); True if it existed. See the hazard above
        [XL-PSEM-5]. Raises ``XLockOSError``.
        """
        if lib.sem_unlink(self.sem_name.encode("ascii")) == 0:
            return True
        err = ffi.errno
        if err == errno.ENOENT:
            return False
        raise self._os_error(err, "sem_unlink")

    def _os_error(self, err: int, call: str) -> XLockOSError:
        return XLockOSError(
            err, f"{call} on POSIX semaphore {self.sem_name} ({self.name!r}) failed: {os.strerror(err)}"
        )

    def close(self) -> None:
        """Stop using the semaphore (permits held are NOT posted back). Idempotent.

        A wait in another thread ends within one wait slice with ``InvalidArgument``. The handle itself
        (``sem_close``) is released when the object is collected, so no thread can still be using it.
        """
        if self._closed:
            return
        self._closed = True
        self._held = 0
        if self._owns_namespace:
            self.namespace.close()

    def _after_fork_in_child(self) -> None:
        self._mutex = threading.Lock()
        self._held = 0  # the child holds none of the parent's permits [XL-HOLD-7]

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            lib.sem_close(handle)

    def __enter__(self) -> PosixSemaphore:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def acquire_async(self, timeout: float | None = None) -> None:
        """Take one permit without blocking the event loop; a cancelled wait takes nothing."""
        deadline_ns = deadline_from(timeout)
        try:
            self.acquire(blocking=False)
            return
        except WouldBlock:
            pass

        def wait(cancel: threading.Event) -> None:
            self._acquire(True, timeout, deadline_ns, cancel)

        await acquire_in_worker(wait, lambda _: self.release())

    async def __aenter__(self) -> PosixSemaphore:
        await self.acquire_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<xlock.PosixSemaphore {self.name!r} sem_name={self.sem_name!r} held={self._held}>"
