"""``xlock.Semaphore``: the crash-safe counting semaphore of §10, one slot file per permit."""

from __future__ import annotations

import fcntl
import threading
import time

from ._bell import ACQUIRED, TIMED_OUT, bell_of, wait_loop
from ._capacity import ensure_capacity
from ._common import UNTIMED, NamespaceArg, check_timeout, deadline_from, describe_timeout
from ._errors import Cancelled, InvalidArgument, NotHeld, Timeout, WouldBlock
from ._handle import Handle
from ._libc import COMPILED, ffi, lib
from ._lockfile import LOCKED, TIMEDOUT, WAITED, LockFile
from ._pg import open_semaphore, pg_namespace
from .names import NameLike

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Literal

__all__ = ["MAX_CAPACITY", "Semaphore", "check_capacity"]

MAX_CAPACITY = 1000
_LOCK_EX_NB = fcntl.LOCK_EX | fcntl.LOCK_NB
_xl_sem_wait_step: Any = lib.xl_sem_wait_step if COMPILED else None
_FALL_BACK, _TIMED_OUT_IN_C = -1, -2  # _wait_in_c's answers besides a slot index


def check_capacity(what: str, capacity: object) -> int:
    """``capacity`` if it is an integer from 1 to 1000 [XL-CSEM-1]; else ``InvalidArgument``."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidArgument(
            f"{what}: capacity must be an integer from 1 to {MAX_CAPACITY}, not {capacity!r} [XL-CSEM-1]"
        )
    return capacity


class Semaphore(Handle):
    """A counting semaphore of ``capacity`` permits whose permits come back when a holder dies.

    Permit ``i`` is an exclusive ``flock`` on the slot file ``enc(name).i.slot`` [XL-CSEM-2]; every
    participant must agree on the capacity, recorded in ``enc(name).sem`` [XL-CSEM-3]. One object may
    hold several permits (one per acquire) and is safe to share between threads.

    It follows ``threading.Semaphore``: ``acquire()`` returns ``True`` (``False`` when ``blocking=False``
    or ``timeout`` found no permit free); the permit's slot index is then ``slot`` (the most recent) and
    ``slots`` (all held); ``with`` waits at most the constructor's ``timeout``; ``@sem`` decorates.

    Raises at construction: ``InvalidName``; ``InvalidArgument`` if ``capacity`` is not an integer from 1
    to 1000 [XL-CSEM-1]; ``CapacityMismatch`` if the semaphore exists with another capacity;
    ``InsecureNamespace``, ``UnsupportedFilesystem``, ``XLockOSError`` as for ``Lock``.

    Attributes: ``name``, ``capacity``, ``path`` (the capacity file), ``namespace``,
    ``namespace_identity``, ``bell_word``, ``slot``, ``slots``, ``held``, ``timeout``.
    """

    def __new__(
        cls, name: NameLike, capacity: int, *, namespace: NamespaceArg = None, **options: Any
    ) -> Semaphore:
        # A postgresql:// namespace (given or in XLOCK_NAMESPACE) is a PostgreSQL semaphore [XL-PG-13].
        url = pg_namespace(namespace) if cls is Semaphore else None
        if url is not None:
            # a PgSemaphore: the same API, not a subclass
            pg_semaphore: Semaphore = open_semaphore(name, capacity, url, **options)  # type: ignore[assignment]
            return pg_semaphore
        return super().__new__(cls)

    def __init__(
        self,
        name: NameLike,
        capacity: int,
        *,
        namespace: NamespaceArg = None,
        timeout: float | None = UNTIMED,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._set_name(name)
        self.capacity = check_capacity(f"semaphore {self._name.text!r}", capacity)
        self._set_default_timeout(timeout)
        self._open_namespace(namespace, allow_unsupported_fs)
        ns = self._ns
        try:
            ensure_capacity(ns, self._name, capacity)
            self._bell = bell_of(ns, create=True)  # [XL-BELL-1]
        except BaseException:
            self._release_namespace()
            raise
        self.path: str = ns.join(self._name.capacity_file)
        self.bell_word: int = self._name.bell_word("s")
        self._word = self._bell.word(self.bell_word)
        self._slots = [LockFile(ns, self._name.slot_file(i)) for i in range(capacity)]
        self._mine: list[int] = []  # slot indexes held, most recent last
        # Where the next round starts: the slot released last, a free-slot hint that keeps acquisition
        # flat in the number of permits held elsewhere [XL-CSEM-5].
        self._hint = 0
        self._mutex = threading.Lock()
        # A thread waits in C (_wait_in_c): the object's other threads find every slot busy meanwhile, and
        # close leaves the slot descriptors to that thread.
        self._waiting_in_c = False
        self._opened()

    @property
    def held(self) -> int:
        """How many permits this object holds."""
        return len(self._mine)

    @property
    def slot(self) -> int | None:
        """The slot index (0-based) of the permit acquired last and still held, or ``None``."""
        mine = self._mine
        return mine[-1] if mine else None

    @property
    def slots(self) -> tuple[int, ...]:
        """The slot indexes of every permit this object holds, in the order acquired."""
        return tuple(self._mine)

    def locked(self) -> bool:
        """True if this object holds at least one permit."""
        return bool(self._mine)

    # ``acquire(blocking=True, timeout=-1) -> bool`` is Handle's: one permit, its index in ``slot``. It
    # tries the slots it does not hold [XL-CSEM-5]; if all are busy, it waits (without end, or
    # ``timeout`` seconds) in the bell loop [XL-WAIT-11]. Raises ``InvalidArgument`` (``blocking=False``
    # with a timeout, NaN or non-number timeout, closed), ``InsecureNamespace``, ``XLockOSError``; a
    # signal handler's exception propagates, holding nothing new.

    def _acquire(
        self,
        owner: object,
        blocking: bool,
        timeout: float | None,
        cancel: threading.Event | None,
        deadline_ns: int | None,
    ) -> int:
        if deadline_ns is None:
            deadline_ns = deadline_from(timeout)
        if not blocking and timeout is not None:
            raise InvalidArgument(f"semaphore {self.name!r} ({self.path}): blocking=False takes no timeout")
        got: list[int] = []

        def attempt() -> bool:
            index = self._try_slots()
            if index < 0:
                return False
            got.append(index)
            return True

        if attempt():  # step 0: one try before the bell is touched [XL-WAIT-12]
            return got[0]
        if not blocking:
            raise WouldBlock(f"semaphore {self.name!r} ({self.path}): all {self.capacity} permits are held")
        if cancel is None and _xl_sem_wait_step is not None:
            index = self._wait_in_c(deadline_ns)
            if index >= 0:
                return index
            if index == _TIMED_OUT_IN_C:
                raise Timeout(
                    f"semaphore {self.name!r} ({self.path}): no permit free {describe_timeout(timeout)}"
                )
        outcome = wait_loop(self._bell, self._word, attempt, deadline_ns, cancel)
        if outcome == ACQUIRED:
            return got[0]
        if outcome == TIMED_OUT:
            raise Timeout(
                f"semaphore {self.name!r} ({self.path}): no permit free {describe_timeout(timeout)}"
            )
        raise Cancelled(f"waiting for semaphore {self.name!r} ({self.path}) was cancelled; nothing is held")

    def _wait_in_c(self, deadline_ns: int | None) -> int:
        """A thread's wait on the compiled path, in C [XL-WAIT-12, XL-CSEM-5]: ``xl_sem_wait_step`` over
        the slot descriptors until a slot is held (its index, recorded), or the deadline passes
        (``_TIMED_OUT_IN_C``). ``_FALL_BACK`` when the Python loop must wait instead: another thread of this
        object holds a permit or waits in C, a slot file is not open, a shared namespace (its re-check
        names each file), or the step found a file to reopen or an error to report. A signal returns to
        Python, whose handlers run as the loop goes round; if one raises, nothing is held [XL-WAIT-9]."""
        rc, index, got, claimed = WAITED, -1, None, False
        try:  # from before the claim: a handler raising anywhere after it finds the cleanup below
            with self._mutex:
                self._check_open()
                fds = [slot.fd for slot in self._slots]
                if self._mine or self._waiting_in_c or self._ns.shared or min(fds) < 0:
                    return _FALL_BACK
                self._waiting_in_c = claimed = True
                start = self._hint
            bell, word = self._bell, self._word
            c_fds, got = ffi.new("int[]", fds), ffi.new("int *", -1)
            start_ns, deadline = time.monotonic_ns(), -1 if deadline_ns is None else deadline_ns
            while rc == WAITED and not self._closed:  # a safety poll or a signal: handlers run here
                rc = _xl_sem_wait_step(
                    ffi.NULL if word is None else word,
                    bell.fd,
                    bell.shared,
                    c_fds,
                    len(fds),
                    start,
                    got,
                    start_ns,
                    deadline,
                )
        finally:
            if claimed:
                # got, not rc: a handler may raise as the call returns, before rc is set
                index = -1 if got is None else got[0]
                with self._mutex:
                    self._waiting_in_c = False
                    closed = self._closed
                    held = index >= 0 and not closed and rc == LOCKED
                    if held:
                        self._mine.append(index)
                    elif index >= 0:
                        self._slots[index].unlock()  # an exception, or closed meanwhile: nothing is kept
                    if closed:
                        for slot in self._slots:
                            slot.close()  # close left the descriptors to us
                if index >= 0 and not held:
                    self._bell.ring(self._word)  # [XL-CSEM-6]
        if held:
            return index
        if closed:
            self._check_open()
        return _TIMED_OUT_IN_C if rc == TIMEDOUT else _FALL_BACK

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidArgument(f"semaphore {self.name!r} ({self.path}) is closed")

    def _try_slots(self) -> int:
        """One round over the slots this object does not hold [XL-CSEM-5]; the slot now held, or -1 (also
        while another thread of the object waits in C: its round must be the only one)."""
        with self._mutex:
            self._check_open()
            if self._waiting_in_c:
                return -1
            mine = self._mine
            slots = self._slots
            capacity = len(slots)
            start = self._hint
            # every slot once, starting at the hint [XL-CSEM-5]
            for index in range(start, start + capacity):
                if index >= capacity:
                    index -= capacity
                # never a slot it holds: flock on our own descriptor would "succeed" again
                if index not in mine and slots[index].lock(_LOCK_EX_NB) == LOCKED:
                    mine.append(index)
                    return index
            return -1

    def release(self) -> None:
        """Return the most recently acquired permit and ring the bell [XL-CSEM-6].

        Raises ``NotHeld`` if this object holds no permit.
        """
        with self._mutex:
            if not self._mine:
                raise NotHeld(f"semaphore {self.name!r} ({self.path}): this object holds no permit")
            index = self._hint = self._mine.pop()
            self._slots[index].unlock()
        self._bell.ring(self._word)

    def _undo(self, owner: object, got: Any) -> None:
        with self._mutex:
            if got not in self._mine:
                raise NotHeld(f"semaphore {self.name!r} ({self.path}): permit {got} is not held")
            self._mine.remove(got)
            self._hint = got
            self._slots[got].unlock()
        self._bell.ring(self._word)

    def close(self) -> None:
        """Return every permit held and close the descriptors. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            returned = bool(self._mine)
            self._mine.clear()
            if not self._waiting_in_c:  # else that thread closes them when its step returns
                for slot in self._slots:
                    slot.close()  # closing the only descriptor releases its flock
        if returned:
            self._bell.ring(self._word)
        self._release_namespace()

    def _after_fork_in_child(self) -> None:
        # [XL-CSEM-6]: XL-HOLD-7 and XL-HOLD-8 apply to slot descriptors.
        self._mutex = threading.Lock()
        self._mine = []
        self._waiting_in_c = False
        if not self._closed:
            for slot in self._slots:
                slot.close()

    def _async_word(self) -> Any:
        return None if self._bell.words is None else self._word

    async def acquire_async(self, timeout: float | None = None) -> Literal[True]:
        """Acquire one permit without blocking the event loop; returns ``True`` (the index is ``slot``),
        raises ``Timeout`` when ``timeout`` seconds pass first. If the awaiting task is cancelled, nothing
        stays held.
        """
        await self._acquire_async(check_timeout(timeout))
        return True

    def __repr__(self) -> str:
        return (
            f"<xlock.Semaphore {self.name!r} capacity={self.capacity} held={len(self._mine)} "
            f"path={self.path!r}>"
        )
