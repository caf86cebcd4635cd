"""``xlock.Semaphore``: the crash-safe counting semaphore of §10, one slot file per permit."""

from __future__ import annotations

import fcntl
import threading
from types import TracebackType

from . import _fork
from ._async import acquire_in_worker
from ._capacity import ensure_capacity
from ._common import NamespaceArg, deadline_from, describe_timeout, open_namespace
from ._doorbell import ACQUIRED, TIMED_OUT, Doorbell, wait_loop
from ._errors import Cancelled, InvalidArgument, NotHeld, Timeout, WouldBlock, os_error
from ._lockfile import LockFile
from ._namespace import Namespace
from .names import NameLike, capacity_file_name, name_to_str, semaphore_name, slot_file_name

__all__ = ["MAX_CAPACITY", "Semaphore"]

MAX_CAPACITY = 1000
_LOCK_EX_NB = fcntl.LOCK_EX | fcntl.LOCK_NB
_FOREVER_NS = 1 << 62


class Semaphore:
    """A counting semaphore of ``capacity`` permits whose permits come back when a holder dies.

    Permit ``i`` is an exclusive ``flock`` on the slot file ``enc(name).i.slot`` [XL-CSEM-2]; every
    participant must agree on the capacity, recorded in ``enc(name).sem`` [XL-CSEM-3]. One object may
    hold several permits (one per acquire) and is safe to share between threads.

    Raises at construction: ``InvalidName``; ``InvalidArgument`` if ``capacity`` is not an integer from 1
    to 1000 [XL-CSEM-1]; ``CapacityMismatch`` if the semaphore exists with another capacity;
    ``InsecureNamespace``, ``UnsupportedFilesystem``, ``XLockOSError`` as for ``Lock``.

    Attributes: ``name``, ``capacity``, ``path`` (the capacity file), ``namespace``, ``doorbell``.
    """

    def __init__(
        self,
        name: NameLike,
        capacity: int,
        *,
        namespace: NamespaceArg = None,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._closed = True
        self.name = name_to_str(name)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidArgument(
                f"semaphore {self.name!r}: capacity must be an integer from 1 to {MAX_CAPACITY}, not "
                f"{capacity!r} [XL-CSEM-1]"
            )
        ns, owned = open_namespace(namespace, allow_unsupported_fs)
        try:
            ensure_capacity(ns, self.name, capacity)
        except BaseException:
            if owned:
                ns.close()
            raise
        self.namespace: Namespace = ns
        self._owns_namespace = owned
        self.capacity = capacity
        self.path = ns.join(capacity_file_name(self.name))
        self.doorbell = semaphore_name("s", ns.dev, ns.ino, self.name)
        self._bell = Doorbell(self.doorbell, ns.file_mode)
        self._slots = [LockFile(ns, slot_file_name(self.name, i)) for i in range(capacity)]
        self._mine: list[int] = []  # slot indexes held, most recent last
        self._mutex = threading.Lock()
        self._closed = False
        _fork.track(self)

    @property
    def held(self) -> int:
        """How many permits this object holds."""
        return len(self._mine)

    def locked(self) -> bool:
        """True if this object holds at least one permit."""
        return bool(self._mine)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> int:
        """Acquire one permit and return its slot index (0-based).

        Tries the slots in order [XL-CSEM-5]; if all are busy, waits (without end, or ``timeout``
        seconds) in the doorbell loop [XL-WAIT-11]. Raises ``WouldBlock`` (``blocking=False``, no permit
        free), ``Timeout``, ``InvalidArgument`` (``blocking=False`` with a timeout, bad timeout, closed),
        ``InsecureNamespace``, ``XLockOSError``; a signal handler's exception propagates, holding nothing
        new.
        """
        return self._acquire(blocking, timeout, None, None)

    def _acquire(
        self,
        blocking: bool,
        timeout: float | None,
        cancel: object | None,
        deadline_ns: int | None,
    ) -> int:
        if not blocking and timeout is not None:
            raise InvalidArgument(f"semaphore {self.name!r} ({self.path}): blocking=False takes no timeout")
        if deadline_ns is None:
            deadline_ns = deadline_from(timeout)
        got: list[int] = []

        def attempt() -> bool:
            index = self._try_slots()
            if index < 0:
                return False
            got.append(index)
            return True

        if attempt():
            return got[0]
        if not blocking:
            raise WouldBlock(f"semaphore {self.name!r} ({self.path}): all {self.capacity} permits are held")
        assert cancel is None or isinstance(cancel, threading.Event)
        outcome, _ = wait_loop(
            self._bell, attempt, _FOREVER_NS if deadline_ns is None else deadline_ns, cancel
        )
        if outcome == ACQUIRED:
            return got[0]
        if outcome == TIMED_OUT:
            raise Timeout(
                f"semaphore {self.name!r} ({self.path}): no permit free {describe_timeout(timeout)}"
            )
        raise Cancelled(f"waiting for semaphore {self.name!r} ({self.path}) was cancelled; nothing is held")

    def _try_slots(self) -> int:
        """One pass over the slots [XL-CSEM-5]; returns the slot now held, or -1."""
        with self._mutex:
            if self._closed:
                raise InvalidArgument(f"semaphore {self.name!r} ({self.path}) is closed")
            mine = self._mine
            for index, slot in enumerate(self._slots):
                if index in mine:
                    continue  # flock on our own descriptor would "succeed" again
                if self._try_slot(slot):
                    mine.append(index)
                    return index
            return -1

    @staticmethod
    def _try_slot(slot: LockFile) -> bool:
        while True:
            if slot.fd < 0:
                slot.open()
            try:
                fcntl.flock(slot.fd, _LOCK_EX_NB)
            except BlockingIOError:
                return False
            except OSError as exc:
                raise os_error(exc, f"flock on slot file {slot.name} failed") from None
            try:
                linked = slot.still_linked()
            except BaseException:
                fcntl.flock(slot.fd, fcntl.LOCK_UN)
                raise
            if linked:
                return True
            fcntl.flock(slot.fd, fcntl.LOCK_UN)  # removed or replaced: reopen [XL-LOCK-8]
            slot.close()

    def release(self) -> None:
        """Return the most recently acquired permit and ring the doorbell [XL-CSEM-6].

        Raises ``NotHeld`` if this object holds no permit.
        """
        with self._mutex:
            if not self._mine:
                raise NotHeld(f"semaphore {self.name!r} ({self.path}): this object holds no permit")
            index = self._mine.pop()
            fcntl.flock(self._slots[index].fd, fcntl.LOCK_UN)
        self._bell.ring()

    def _release_index(self, index: int) -> None:
        with self._mutex:
            if index not in self._mine:
                raise NotHeld(f"semaphore {self.name!r} ({self.path}): permit {index} is not held")
            self._mine.remove(index)
            fcntl.flock(self._slots[index].fd, fcntl.LOCK_UN)
        self._bell.ring()

    def close(self) -> None:
        """Return every permit held and close the descriptors. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            returned = bool(self._mine)
            self._mine.clear()
            for slot in self._slots:
                slot.close()  # closing the only descriptor releases its flock
        if returned:
            self._bell.ring()
        # The doorbell's mapping stays until the object is collected (__del__): a waiter or releaser
        # in another thread may still use it.
        if self._owns_namespace:
            self.namespace.close()

    def _after_fork_in_child(self) -> None:
        # [XL-CSEM-6]: XL-HOLD-7 and XL-HOLD-8 apply to slot descriptors.
        self._mutex = threading.Lock()
        self._mine = []
        if not self._closed:
            for slot in self._slots:
                slot.forget()

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True):
                self.close()
            bell = getattr(self, "_bell", None)
            if bell is not None:
                bell.close()
        except Exception:
            pass

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def acquire_async(self, timeout: float | None = None) -> int:
        """Acquire one permit without blocking the event loop; returns the slot index.

        Raises like ``acquire``. If the awaiting task is cancelled, nothing stays held.
        """
        deadline_ns = deadline_from(timeout)
        try:
            return self._acquire(False, None, None, None)
        except WouldBlock:
            pass

        def wait(cancel: threading.Event) -> int:
            return self._acquire(True, timeout, cancel, _FOREVER_NS if deadline_ns is None else deadline_ns)

        return await acquire_in_worker(wait, self._release_index)

    async def __aenter__(self) -> Semaphore:
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
        return (
            f"<xlock.Semaphore {self.name!r} capacity={self.capacity} held={len(self._mine)} "
            f"path={self.path!r}>"
        )
