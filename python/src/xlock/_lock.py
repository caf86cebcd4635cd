"""``xlock.Lock``: a named lock, exclusive or shared, on one lock file of a namespace (§6, §7, §9)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from errno import EINTR
from weakref import ref as _weakref

from ._bell import ACQUIRED, TIMED_OUT, bell_of, wait_file, wait_loop
from ._common import (
    IN_PROCESS_SLICE_S,
    UNTIMED,
    NamespaceArg,
    acquire_timeout,
    check_timeout,
    claim_in_process,
    current_owner_matches,
    current_task_or_none,
    deadline_from,
    describe_timeout,
    open_namespace,
    seconds_until,
)
from ._errors import Cancelled, InvalidArgument, NotHeld, Timeout, WouldBlock
from ._fork import live as _live
from ._fork import sweep as _sweep
from ._fork import sweep_at as _sweep_at
from ._handle import Handle
from ._libc import COMPILED, ffi, lib
from ._lockfile import BUSY, FLOCK_FAILED, LOCKED, TIMEDOUT, WAITED, LockFile
from ._namespace import release_shared, shared_namespace
from ._pg import pg_lock_class, pg_namespace
from .names import _ENCODED, NameLike, encoded

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar

    L = TypeVar("L", bound="Lock")

__all__ = ["Lock", "RLock"]

_flock = fcntl.flock
_LOCK_SH, _LOCK_EX, _LOCK_NB, _LOCK_UN = fcntl.LOCK_SH, fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN
_get_ident = threading.get_ident
_monotonic_ns = time.monotonic_ns
_sched_yield = os.sched_yield
_NUMBERS = (int, float)
# The compiled module's single calls (None in ABI mode): flock + re-check, flock(LOCK_UN) + ring, and the
# hold's fast acquire and release (see _cdef: struct xl_hold).
_xl_lock = lib.xl_lock if COMPILED else None
_xl_unlock_ring = lib.xl_unlock_ring if COMPILED else None
_xl_hold_lock: Any = lib.xl_hold_lock if COMPILED else None  # used only with a hold (compiled)
_xl_hold_unlock: Any = lib.xl_hold_unlock if COMPILED else None
_xl_hold_wait: Any = lib.xl_hold_wait if COMPILED else None
_xl_hold_wait_step: Any = lib.xl_hold_wait_step if COMPILED else None
# The hold's states that Python reads or sets (_cdef's enum: XL_FREE, XL_TRYING, XL_HELD, XL_SLOW, ...).
_FREE, _HELD, _SLOW, _WAITING = 0, 2, 3, 5
# xl_hold_wait's and xl_hold_wait_step's own result (_cdef: XL_CLOSED); the others are _lockfile's
_CLOSED_WHILE_WAITING = 8
# The owner close records for a thread waiting in C (xl_hold_wait, xl_hold_wait_step): it matches no
# thread, and tells close that the descriptors are still in use; that thread finishes the close when its
# wait returns.
_WAITING_IN_C = object()
_HOLD = ffi.typeof("struct xl_hold *") if COMPILED else None


class Lock(Handle):
    """A named lock shared by every process (in any language) using the same namespace.

    ``Lock(name)`` opens (creating if needed) the lock file ``enc(name).lock`` in the namespace chosen
    per XL-NS-1 and keeps it open; acquiring is ``flock(2)`` on it, exclusive, or shared with
    ``shared=True``. The object is safe to share between threads; two objects for one name exclude each
    other even in one thread [XL-HOLD-1]. With ``reentrant=True`` (or ``xlock.RLock(name)``) the holding
    thread may acquire again (counted) [XL-HOLD-4].

    It follows ``threading.Lock``: ``acquire()`` returns ``True``, ``acquire(blocking=False)`` and
    ``acquire(timeout=s)`` return ``False`` when the lock stays held elsewhere; ``with lock:`` waits at
    most ``timeout`` seconds (the constructor's, default without end) and raises ``Timeout``; ``@lock``
    decorates a function or a coroutine function.

    Raises at construction: ``InvalidName`` [XL-NAME-3], ``InvalidArgument`` (bad namespace path),
    ``InsecureNamespace`` (unsafe namespace, or a symlink/FIFO/... at the lock file path [XL-LOCK-4,
    XL-LOCK-5]), ``UnsupportedFilesystem`` [XL-NS-10], ``XLockOSError``.

    Attributes: ``name``, ``path`` (the lock file), ``namespace`` (the directory's path),
    ``namespace_identity`` (``(dev, ino)``), ``bell_word`` (the word of the namespace's bell that wakes
    its waiters), ``shared``, ``reentrant``.
    """

    # _owner: None = free; set with _count 0 = an acquisition is in progress; _count > 0 = held (the
    # holder's acquisitions, > 1 only when reentrant [XL-HOLD-4]). _cond: made on first need. (Class
    # defaults: an object made per use sets none of them.)
    #
    # _hold (compiled, not reentrant): a C struct xl_hold through which acquire and release take and give
    # the object without the mutex, in one C call each. While _owner is None its state is free, or held
    # (or being tried or released) by that fast path; the slow path below (waits, errors, close, asyncio)
    # takes the object from it under the mutex (state "slow", _owner set) and gives it back with _unown.
    _owner: object = None
    _count = 0
    _waiters = 0
    _cond: threading.Condition | None = None
    _hold: Any = None
    shared = False
    reentrant = False
    _op, _op_nb = _LOCK_EX, _LOCK_EX | _LOCK_NB

    def __init__(
        self,
        name: NameLike,
        *,
        namespace: NamespaceArg = None,
        shared: bool = False,
        reentrant: bool = False,
        timeout: float | None = UNTIMED,
        allow_unsupported_fs: bool = False,
    ) -> None:
        if (type(namespace) is not str or namespace[:1] != "/") and self._became_pg_lock(
            name, namespace, shared, reentrant, timeout, allow_unsupported_fs
        ):
            return
        # Handle's _set_name, _set_default_timeout and _open_namespace, inline for an object made per use:
        # the name first [XL-NAME-3], the timeout, then the namespace [XL-NS-1]
        self._name = (_ENCODED.get(name) if type(name) is str else None) or encoded(name)  # cached: no call
        if timeout != UNTIMED:  # the class default: without end
            self._default_timeout = check_timeout(timeout)
        if type(namespace) is str:  # open_namespace's common case, inline
            ns = self._ns = shared_namespace(namespace, allow_unsupported_fs)
            self._owns_namespace = True
        else:
            ns, self._owns_namespace = open_namespace(namespace, allow_unsupported_fs)
            self._ns = ns
        try:
            lock_file = self._file = LockFile(ns, self._name.lock_file)
            lock_file.open()  # opens (creates) and checks the file now
            bell = self._bell = ns.bell or bell_of(ns, create=True)  # [XL-BELL-1]
        except BaseException:
            self._file_close()
            self._release_namespace()
            raise
        if shared:  # the class defaults are exclusive and not reentrant
            self.shared = True
            self._op, self._op_nb = _LOCK_SH, _LOCK_SH | _LOCK_NB
        if reentrant:
            self.reentrant = True
        self.bell_word: int = self._name.bell_word("l")
        # xl_unlock_ring's arguments after the descriptor: the word (or NULL), the bell's fd, shared
        ring_args, template = bell.for_lock(self.bell_word, self._op_nb)
        self._ring_args: tuple[Any, int, bool] = ring_args
        self._word = None if bell.words is None else ring_args[0]
        self._mutex = threading.Lock()
        if template is not None and not reentrant:
            # a copy of the bell's free hold for this word and operation, given the open file
            hold = self._hold = ffi.new(_HOLD, template)
            if lock_file.args is None:  # the strict re-check: the file's name and identity too
                lib.xl_hold_give(hold, lock_file.fd, *lock_file.check_args())
            else:
                hold.fd = lock_file.fd
        # Handle._opened, inline: close and the at-fork handler apply from now on
        self._closed = False
        _live.append(_weakref(self))
        if len(_live) >= _sweep_at[0]:
            _sweep()

    def _became_pg_lock(
        self,
        name: NameLike,
        namespace: NamespaceArg,
        shared: bool,
        reentrant: bool,
        timeout: float | None,
        allow_unsupported_fs: bool,
    ) -> bool:
        """A postgresql:// namespace (given, or in XLOCK_NAMESPACE) makes a PostgreSQL lock, the same API
        [XL-PG-1]: this object becomes a ``PgLock`` (not a subclass; the two share no layout but
        ``__dict__``) and is set up as one. Dispatching here rather than in ``__new__`` keeps a Python
        ``__new__`` out of every ``xlock.Lock(...)``: an object made per use pays for each call."""
        url = pg_namespace(namespace) if type(self) is Lock or type(self) is RLock else None
        if url is None:
            return False
        self.__class__ = pg_lock_class()  # type: ignore[assignment]
        self.__init__(  # type: ignore[misc]
            name,
            namespace=url,
            shared=shared,
            reentrant=reentrant,
            timeout=timeout,
            allow_unsupported_fs=allow_unsupported_fs,
        )
        return True

    @property
    def path(self) -> str:
        """The lock file's path."""
        return self._file.path

    # -- acquisition ---------------------------------------------------------------------------------

    def acquire(self, blocking: bool = True, timeout: float | None = UNTIMED) -> bool:
        """Acquire the lock; ``True`` once held, ``False`` if it is held elsewhere when ``blocking=False``
        or still held when ``timeout`` seconds have passed (as ``threading.Lock.acquire``).

        ``acquire()`` waits without end in a blocking ``flock`` [XL-WAIT-2]; ``acquire(timeout=s)`` waits
        at most ``s`` seconds (``-1``, ``None``, a negative ``s``, infinity or a timeout too large to
        represent mean without end), woken by the releaser's ring of the bell [XL-WAIT-12];
        ``acquire(blocking=False)`` makes one attempt [XL-WAIT-1]. ``False`` comes no earlier than the
        deadline; ``timeout=0`` is one attempt.

        Raises ``AlreadyHeld`` if this thread holds this non-reentrant object [XL-HOLD-3];
        ``InvalidArgument`` (a ``ValueError``) for ``blocking=False`` with a timeout, a NaN or non-number
        timeout or a closed object; ``InsecureNamespace`` if the lock file was replaced by a symlink or
        non-regular file; ``XLockOSError``. A signal handler's exception (``KeyboardInterrupt``)
        propagates; nothing is held afterwards [XL-WAIT-9].
        """
        if timeout is None or timeout == UNTIMED or (blocking and type(timeout) in _NUMBERS and timeout >= 0):
            hold = self._hold
            if hold is None:
                if self._try_fast():
                    return True
            else:
                rc = _xl_hold_lock(hold)  # the hot path: one C call [XL-WAIT-12]
                if rc == LOCKED:
                    return True
                if rc == BUSY and blocking and timeout != 0:  # held elsewhere: the wait runs in C too
                    return self._hold_waited_until(hold, timeout)
        seconds = acquire_timeout(blocking, timeout)
        try:
            self._acquire(_get_ident(), blocking, seconds, None, None)
        except (WouldBlock, Timeout):
            return False
        return True

    def _try_fast(self) -> bool:
        """The hot path of an object without a hold (ABI mode, reentrant), timed or not: one non-blocking
        attempt of the lock-file cycle (one C call on the compiled path) under the object's mutex, before
        any deadline or bell [XL-WAIT-12]. False: the slow path decides, waits and reports."""
        mutex = self._mutex
        mutex.acquire()
        try:
            if self._owner is not None:
                return False
            lock_file = self._file  # a closed descriptor (-1) fails the flock: the slow path reopens
            if _xl_lock is not None:
                if _xl_lock(lock_file.fd, self._op_nb, *(lock_file.args or lock_file.check_args())) != LOCKED:
                    return False
            elif not lock_file.try_locking(self._op_nb):
                return False
            self._owner = _get_ident()
            self._count = 1
            return True
        except Exception:
            return False
        finally:
            mutex.release()

    def _hold_waited_until(self, hold: Any, timeout: float | None) -> bool:
        """A thread's wait on the compiled path once its first try found the lock held elsewhere, in C:
        untimed, ``xl_hold_wait`` (a blocking flock [XL-WAIT-2]); timed, ``xl_hold_wait_step`` in state
        WAITING [XL-WAIT-12]. Either ends HELD by this thread with nothing left to do in Python. A signal
        returns to Python, whose handlers run as the loop goes round (PEP 475); if one raises, nothing is
        held [XL-WAIT-9]. A close meanwhile is finished here (InvalidArgument). Anything else (the object
        busy in this process, a file to reopen, an error) goes to the slow path, with the same deadline."""
        seconds = check_timeout(timeout)
        start = deadline = None
        if seconds is not None:
            start = _monotonic_ns()
            deadline = start + int(seconds * 1e9)
        # From here to the first C call nothing runs a signal's handler: what C kept is this wait's.
        try:
            if deadline is None:
                rc = _xl_hold_wait(hold)
                while rc == FLOCK_FAILED and ffi.errno == EINTR:
                    rc = _xl_hold_wait(hold)
            else:
                rc = _xl_hold_wait_step(hold, 1, start, deadline)
                while rc == WAITED:  # a safety poll or a signal
                    rc = _xl_hold_wait_step(hold, 0, start, deadline)
        except BaseException:
            self._hold_interrupted(hold)
            raise
        if rc == LOCKED:
            return True
        if hold.waiters > 0:  # threads of this process waited for the object while this one had it
            self._wake_waiter()
        if rc == TIMEDOUT:
            return False
        if rc == _CLOSED_WHILE_WAITING:
            self._hold_closed()
            raise self._closed_error()
        try:
            self._acquire(_get_ident(), True, seconds, None, deadline)
        except (WouldBlock, Timeout):
            return False
        return True

    def _hold_interrupted(self, hold: Any) -> None:
        """A signal's handler raised during a wait in C, between steps or as a call returned (before
        Python saw its outcome, which C kept): let go of what the wait got [XL-WAIT-9]."""
        rc = lib.xl_hold_last()
        if rc == LOCKED:  # HELD by this thread
            _xl_hold_unlock(hold)
        elif rc == WAITED and lib.xl_hold_swap(hold, _WAITING, _FREE) == _SLOW:
            self._hold_closed()  # closed meanwhile
        elif rc == _CLOSED_WHILE_WAITING:
            self._hold_closed()
        if hold.waiters > 0:
            self._wake_waiter()

    def _hold_closed(self) -> None:
        """A wait in C learnt that close took the object (C released what it got): finish the close."""
        with self._mutex:
            self._owner = None
        self._finish_close()

    def __enter__(self: L) -> L:
        # Raises Timeout when the default timeout passes: a `with` body never runs unlocked.
        hold = self._hold
        if hold is None:
            if self._try_fast():
                return self
        else:
            rc = _xl_hold_lock(hold)
            if rc == LOCKED:
                return self
            if rc == BUSY and self._default_timeout != 0:  # held elsewhere: the wait runs in C too
                if self._hold_waited_until(hold, self._default_timeout):
                    return self
                raise self._timeout(self._default_timeout)
        self._acquire(_get_ident(), True, self._default_timeout, None, None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        # release's fast path, inline: one C call
        hold = self._hold
        waiters = -1 if hold is None else _xl_hold_unlock(hold)
        if waiters < 0:  # not held on the fast path: release decides
            self.release()
        elif waiters:
            self._wake_waiter()

    def _sync_owner(self) -> object:
        return _get_ident()

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
            raise InvalidArgument(f"lock {self.name!r} ({self.path}): blocking=False takes no timeout")

        hold = self._hold

        def wait() -> None:  # one slice, so that signals and cancellation are noticed
            if cancel is not None and cancel.is_set():
                raise self._cancelled()
            if self._cond is None:  # made on first need, under the mutex: most objects never wait
                self._cond = threading.Condition(self._mutex)
            self._waiters += 1
            # counted in the hold too, then its state read: a fast release in between is not missed
            state = _FREE if hold is None else lib.xl_hold_waiting(hold, 1)
            try:
                if hold is None or state != _FREE:
                    self._cond.wait(seconds_until(deadline_ns, IN_PROCESS_SLICE_S))
            finally:
                self._waiters -= 1
                if hold is not None:
                    lib.xl_hold_waiting(hold, -1)

        with self._mutex:
            busy = "is held by another thread of this process through the same Lock object"
            take = None if hold is None else self._take_hold
            if claim_in_process(self, owner, blocking, timeout, deadline_ns, self._what, busy, wait, take):
                return  # a reentrant hold, counted
        try:
            if not blocking:
                if not self._try_file():
                    raise WouldBlock(f"lock {self.name!r} ({self.path}) is held elsewhere")
            elif deadline_ns is None and cancel is None:
                self._file.lock(self._op)  # untimed: a blocking flock [XL-WAIT-2]
            elif not self._try_file():  # step 0: one try before the bell is touched [XL-WAIT-12]
                if COMPILED:
                    outcome = wait_file(
                        self._bell, self._word, self._file, self._op_nb, deadline_ns, cancel, self._check_open
                    )
                else:
                    outcome = wait_loop(self._bell, self._word, self._try_file, deadline_ns, cancel)
                if outcome != ACQUIRED:
                    raise self._timeout(timeout) if outcome == TIMED_OUT else self._cancelled()
        except BaseException:
            self._abandon_acquisition()
            raise
        with self._mutex:
            closed = self._closed
            if closed:  # closed by another thread while we waited: we release (and ring), finish the close
                self._file.unlock()
                self._unown()
            elif hold is not None and type(owner) is int:
                # a thread's acquisition: the fast path holds it from now on, and releases it in one call
                self._owner = None
                lock_file = self._file
                lib.xl_hold_pass(hold, owner, lock_file.fd, *(lock_file.args or lock_file.check_args()))
            else:
                self._count = 1
        if closed:
            self._bell.ring(self._word)  # [XL-LOCK-9]
            self._finish_close()
            raise self._closed_error()

    def _abandon_acquisition(self) -> None:
        # Whatever interrupted us (timeout, signal, cancel), leave nothing held [XL-WAIT-9, XL-ERR-4].
        self._file.unlock()
        with self._mutex:
            self._unown()
            closed = self._closed
            if self._waiters:
                self._notify_one()
        if closed:
            self._finish_close()

    def _try_file(self) -> bool:
        """One non-blocking attempt of the lock-file cycle."""
        if self._closed:
            raise self._closed_error()
        return self._file.lock(self._op_nb) != BUSY

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> InvalidArgument:
        return InvalidArgument(
            f"lock {self.name!r} ({self.path}) was closed while acquiring; nothing is held"
        )

    def _what(self) -> str:
        return f"lock {self.name!r} ({self.path})"

    def _timeout(self, timeout: float | None) -> Timeout:
        return Timeout(f"lock {self.name!r} ({self.path}) not acquired {describe_timeout(timeout)}")

    def _cancelled(self) -> Cancelled:
        return Cancelled(f"waiting for lock {self.name!r} ({self.path}) was cancelled; nothing is held")

    # -- release ----------------------------------------------------------------------------------------

    def release(self) -> None:
        """Release the lock and ring the bell [XL-LOCK-9, XL-WAIT-6].

        Any thread may release a non-reentrant object [XL-HOLD-5]; a reentrant one only from the holding
        thread, and the file lock goes when the count reaches zero [XL-HOLD-4]. Raises ``NotHeld`` if this
        object does not hold the lock (or, reentrant, the caller is not the holder) [XL-HOLD-6].
        """
        hold = self._hold
        if hold is not None:
            waiters = _xl_hold_unlock(hold)  # held on the fast path: one C call
            if waiters >= 0:
                if waiters:
                    self._wake_waiter()
                return
        mutex = self._mutex
        mutex.acquire()
        try:
            if not self._count:
                raise self._not_held()
            if self.reentrant:
                if not current_owner_matches(self._owner):
                    raise NotHeld(
                        f"reentrant lock {self.name!r} ({self.path}) is held by another thread; only "
                        f"the holder may release it [XL-HOLD-4]"
                    )
                if self._count > 1:
                    self._count -= 1
                    return
            if _xl_unlock_ring is not None:
                # compiled: flock(LOCK_UN) and the ring in one call [XL-LOCK-9, XL-BELL-6]
                _xl_unlock_ring(self._file.fd, *self._ring_args)
            else:
                _flock(self._file.fd, _LOCK_UN)  # as _unlock_held, inline: the hot path
            if hold is None:  # _unown, inline: the ABI mode's hot path
                self._owner = None
                self._count = 0
            else:
                self._unown()
            if self._waiters:
                self._notify_one()
        finally:
            mutex.release()
        word = self._word
        # ABI mode: the ring, whose private-namespace test (no waiter announced) is done here inline
        if _xl_unlock_ring is None and word is not None and (self._bell.shared or word[0] & 1):
            self._bell.ring(word)

    def _undo(self, owner: object, got: Any) -> None:
        """Release on behalf of ``owner`` (an asyncio task), from any thread."""
        with self._mutex:
            if not self._count or self._owner is not owner:
                raise self._not_held()
            if self._count > 1:
                self._count -= 1
                return
            self._unlock_held()
        self._bell.ring(self._word)

    def _unlock_held(self) -> None:
        """``flock(LOCK_UN)`` of the held file and hand the object to the next thread; under the mutex."""
        _flock(self._file.fd, _LOCK_UN)
        self._unown()
        if self._waiters:
            self._notify_one()

    def _unown(self) -> None:
        """The slow path lets the object go (under the mutex): no owner, nothing held, and, unless closed,
        the hold back to free with the file's current descriptor and re-check arguments."""
        self._owner = None
        self._count = 0
        if self._hold is not None and not self._closed:
            self._give_hold()

    def _give_hold(self) -> None:
        lock_file = self._file
        lib.xl_hold_give(self._hold, lock_file.fd, *(lock_file.args or lock_file.check_args()))

    def _reset_hold(self) -> None:
        """A new hold (after construction and in a forked child), free with the file as it is now."""
        lock_file = self._file
        lib.xl_hold_init(
            self._hold,
            self._op_nb,
            *self._ring_args,
            lock_file.fd,
            *(lock_file.args or lock_file.check_args()),
        )

    def _take_hold(self) -> object:
        """``claim_in_process``'s ``take``: under the mutex, with no owner recorded, take the object from
        the fast path: ``None`` when taken; else the fast holder's thread ident (0 while a try or release
        runs)."""
        hold = self._hold
        if lib.xl_hold_swap(hold, _FREE, _SLOW) == _FREE:
            return None
        owner: int = hold.owner
        return owner

    def _seize_hold(self) -> bool:
        """Close's take-over, under the mutex with no owner recorded: the object is taken from the fast
        path, and True if the fast path held the lock (the caller unlocks it). A thread waiting in C is
        recorded as the owner ``_WAITING_IN_C``: the descriptors stay open for it, and it finishes the
        close when its wait returns. A try or release in another thread lasts one or two system calls:
        yield until it is over."""
        hold = self._hold
        while True:
            state = lib.xl_hold_swap(hold, _FREE, _SLOW)
            if state == _FREE or state == _SLOW:
                return False
            if state == _HELD and lib.xl_hold_swap(hold, _HELD, _SLOW) == _HELD:
                return True
            if state == _WAITING and lib.xl_hold_swap(hold, _WAITING, _SLOW) == _WAITING:
                self._owner = _WAITING_IN_C
                return False
            _sched_yield()

    def _wake_waiter(self) -> None:
        """A fast release (or try) freed the object while threads of this process waited: wake one."""
        with self._mutex:
            if self._waiters:
                self._notify_one()

    def _notify_one(self) -> None:
        """Wake one thread waiting for this object; under the mutex, with ``_waiters`` > 0 (so the
        condition exists)."""
        if self._cond is not None:
            self._cond.notify()

    def _not_held(self) -> NotHeld:
        return NotHeld(f"lock {self.name!r} ({self.path}) is not held by this object; nothing released")

    def locked(self) -> bool:
        """True if this object holds the lock (not whether someone else does)."""
        return self._count > 0 or (self._hold is not None and self._hold.state == _HELD)

    # -- lifetime -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the lock if held and close the descriptors [XL-HOLD-10]. Idempotent.

        A timed acquisition in progress in another thread ends soon with ``InvalidArgument``, holding
        nothing; an untimed one when its ``flock`` returns. That thread then closes the descriptors.
        """
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            if self._hold is not None and self._owner is None and self._seize_hold():
                self._owner, self._count = _get_ident(), 1  # held on the fast path: released below
            ring = False
            if self._count:
                self._file.unlock()
                self._owner = None
                self._count = 0
                ring = True
            acquiring = self._owner is not None  # that thread still uses the descriptors
            if self._cond is not None:
                self._cond.notify_all()
        if ring:
            self._bell.ring(self._word)
        if not acquiring:
            self._finish_close()

    def __del__(self) -> None:
        # Collected: no other thread can reach the object (an acquiring thread holds a reference), so
        # close() without its mutex and notifications, as cheap as an object per use needs [XL-HOLD-10].
        try:
            if self._closed:
                return
            self._closed = True
            if self._count or (self._hold is not None and self._hold.state == _HELD):
                self._file.unlock()
                self._bell.ring(self._word)
            self._file.close()  # _finish_close, inline
            if self._owns_namespace:
                self._owns_namespace = False
                release_shared(self._ns)
        except Exception:
            pass

    def _close_for_inheritors(self) -> None:
        """Close without ``flock(LOCK_UN)``: processes that inherited the held open file description
        (``xlock run``'s COMMAND and its children) keep the lock until the last one closes it, as after
        flock(1) [XL-HOLD-9]; if none is left, closing frees it. The bell is rung either way."""
        with self._mutex:
            if not self._closed and self._hold is not None and self._owner is None and self._seize_hold():
                self._owner, self._count = _get_ident(), 1  # held on the fast path
            if self._count and not self._closed:
                self._file.close()
                self._unown()
        self.close()
        self._bell.ring(self._word)

    def _file_close(self) -> None:
        lock_file = getattr(self, "_file", None)
        if lock_file is not None:
            lock_file.close()

    def _finish_close(self) -> None:
        # The bell's mapping stays until the object is collected: a release in another thread may still
        # ring it, and no thread runs a method of an object being collected.
        self._file.close()
        if self._owns_namespace:  # Handle._release_namespace, inline
            self._owns_namespace = False
            release_shared(self._ns)

    def _after_fork_in_child(self) -> None:
        # [XL-HOLD-7, XL-HOLD-8]: the child holds nothing, never unlocks the parent's open file
        # description, and closes the inherited descriptor now; the next acquire opens a new one.
        self._mutex = threading.Lock()
        self._cond = None
        self._owner = None
        self._count = 0
        self._waiters = 0
        if not self._closed:
            self._file.close()
            if self._hold is not None:
                self._reset_hold()  # free, with no descriptor: the next acquire opens one

    # -- asyncio ----------------------------------------------------------------------------------------

    def _async_owner(self) -> object:
        return current_task_or_none()

    async def acquire_async(self, timeout: float | None = None) -> Literal[True]:
        """Acquire without blocking the event loop; returns ``True`` (as ``asyncio.Lock.acquire``), raises
        ``Timeout`` when ``timeout`` seconds pass first, and otherwise raises like ``acquire``.

        The holder is the calling asyncio task (for ``AlreadyHeld`` and reentrancy). The wait runs in a
        worker thread; if the task is cancelled, the wait ends within one wait slice and nothing stays
        held. Other tasks sharing this object wait for it like threads do.
        """
        await self._acquire_async(check_timeout(timeout))
        return True

    def _async_word(self) -> Any:
        return None if self._bell.words is None else self._word

    def _release_async(self) -> None:
        task = current_task_or_none()
        if task is not None and self._owner is task:
            self._undo(task, None)
        else:
            self.release()

    def __repr__(self) -> str:
        mode = "shared" if self.shared else "exclusive"
        state = "closed" if self._closed else "held" if self.locked() else "not held"
        return f"<xlock.{type(self).__name__} {self.name!r} {mode} {state} path={self.path!r}>"


class RLock(Lock):
    """The reentrant lock of a name, as ``threading.RLock`` [XL-HOLD-4]: ``Lock(name, reentrant=True)``.

    The holding thread (or asyncio task) may acquire it again; each acquire needs its release, and the
    lock file is unlocked by the last. Only the holder may release it (else ``NotHeld``, a
    ``RuntimeError``).
    """

    def __init__(
        self,
        name: NameLike,
        *,
        namespace: NamespaceArg = None,
        shared: bool = False,
        timeout: float | None = UNTIMED,
        allow_unsupported_fs: bool = False,
    ) -> None:
        super().__init__(
            name,
            namespace=namespace,
            shared=shared,
            reentrant=True,
            timeout=timeout,
            allow_unsupported_fs=allow_unsupported_fs,
        )
