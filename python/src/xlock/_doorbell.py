"""The doorbell of a lock or counting semaphore (§9): a POSIX named semaphore that releasers post and
timed waiters sleep on, plus the waiting loop of XL-WAIT-4 with its safety poll [XL-WAIT-7].
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from . import _libc
from ._libc import ffi, lib

__all__ = ["ACQUIRED", "CANCELLED", "TIMED_OUT", "Doorbell", "open_semaphore", "wait_loop"]

ACQUIRED, TIMED_OUT, CANCELLED = 0, 1, 2
FIRST_POLL_NS = 1_000_000  # the first safety poll after 1 ms [XL-WAIT-7]
MAX_POLL_NS = 16_000_000  # doubling up to 16 ms (the spec's ceiling is 50 ms)
_sem_getvalue = lib.sem_getvalue
_sem_post = lib.sem_post


def open_semaphore(sem_name: str, mode: int, value: int) -> Any:
    """``sem_open(name, O_CREAT, mode, value)``; returns the handle or raises ``OSError``.

    ``sem_open`` applies the umask to ``mode``; ``fix_semaphore_mode`` then sets it exactly [XL-NS-13].
    """
    handle = lib.sem_open(
        sem_name.encode("ascii"),
        _libc.O_CREAT,
        ffi.cast("unsigned int", mode),
        ffi.cast("unsigned int", value),
    )
    if handle == _libc.SEM_FAILED:
        err = ffi.errno
        raise OSError(err, os.strerror(err), sem_name)
    return handle


def fix_semaphore_mode(sem_name: str, mode: int) -> os.stat_result | None:
    """chmod ``/dev/shm/sem.NAME`` to ``mode`` if we own it and it differs; return its stat (Linux)."""
    path = "/dev/shm/sem." + sem_name[1:]
    try:
        st = os.stat(path, follow_symlinks=False)
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != mode:
            os.chmod(path, mode, follow_symlinks=False)
    except OSError:
        return None
    return st


class Doorbell:
    """One doorbell, opened lazily once and kept open; unusable doorbells degrade to the safety poll
    alone [XL-WAIT-8]. Doorbells are never unlinked by xlock.
    """

    __slots__ = ("_mode", "name", "opened", "value")

    def __init__(self, sem_name: str, mode: int) -> None:
        self.name = sem_name
        self._mode = mode
        # Public for Lock.release, which inlines ring(): the handle (None: not opened yet; ffi.NULL:
        # could not be opened) and sem_getvalue's out-parameter.
        self.opened: Any = None
        self.value = ffi.new("int *")

    def handle(self) -> Any:
        handle = self.opened
        if handle is None:
            try:
                handle = open_semaphore(self.name, self._mode, 0)
                fix_semaphore_mode(self.name, self._mode)
            except OSError:
                handle = ffi.NULL  # [XL-WAIT-8]: never fail an acquisition or release for this
            self.opened = handle
        return handle

    def ring(self) -> None:
        """Post the doorbell if its value is 0 [XL-WAIT-6]."""
        handle = self.opened
        if handle is None:
            handle = self.handle()
        value = self.value
        if handle and _sem_getvalue(handle, value) == 0 and value[0] == 0:
            _sem_post(handle)

    def post(self) -> None:
        """Post unconditionally (a shared waiter passing the wake-up on [XL-WAIT-5])."""
        handle = self.handle()
        if handle:
            lib.sem_post(handle)

    def drain(self) -> None:
        """Take every pending post [XL-WAIT-4 step 1]."""
        handle = self.handle()
        if handle:
            trywait = lib.sem_trywait
            while trywait(handle) == 0:
                pass

    def sleep_until(self, wake_ns: int, ts: Any) -> None:
        """Wait for a post or until ``wake_ns`` (CLOCK_MONOTONIC); return early on a signal (EINTR), so
        Python runs its signal handlers [XL-WAIT-9]. ``ts`` is the caller's own ``struct timespec *``
        (waiters in several threads must not share one).
        """
        handle = self.handle()
        if not handle:
            remaining = wake_ns - time.monotonic_ns()
            if remaining > 0:
                time.sleep(remaining / 1e9)
            return
        if _libc.HAVE_CLOCKWAIT:
            ts.tv_sec, ts.tv_nsec = divmod(wake_ns, 1_000_000_000)
            lib.sem_clockwait(handle, _libc.CLOCK_MONOTONIC, ts)
        else:
            # One slice on CLOCK_REALTIME, computed for this slice alone [XL-WAIT-4].
            remaining = max(0, wake_ns - time.monotonic_ns())
            ts.tv_sec, ts.tv_nsec = divmod(time.time_ns() + remaining, 1_000_000_000)
            lib.sem_timedwait(handle, ts)
        # A post taken by this wait needs no bookkeeping: the loop drains and tries next anyway.

    def close(self) -> None:
        handle, self.opened = self.opened, None
        if handle:
            lib.sem_close(handle)


def wait_loop(
    bell: Doorbell,
    attempt: Callable[[], bool],
    deadline_ns: int | None,
    cancel: threading.Event | None,
) -> tuple[int, bool]:
    """Run the timed-wait loop of XL-WAIT-4 until ``attempt()`` succeeds, the deadline passes or
    ``cancel`` is set. Returns (outcome, waited): ``ACQUIRED``, ``TIMED_OUT`` or ``CANCELLED``, and
    whether at least one wait happened (for XL-WAIT-5). ``deadline_ns`` ``None`` waits without end.
    """
    poll_ns = FIRST_POLL_NS
    waited = False
    ts = ffi.new("struct timespec *")
    while True:
        bell.drain()
        if attempt():
            return ACQUIRED, waited
        now = time.monotonic_ns()
        if deadline_ns is not None and now >= deadline_ns:
            return TIMED_OUT, waited
        if cancel is not None and cancel.is_set():
            return CANCELLED, waited
        wake = now + poll_ns
        if deadline_ns is not None and deadline_ns < wake:
            wake = deadline_ns
        bell.sleep_until(wake, ts)
        waited = True
        poll_ns = min(poll_ns * 2, MAX_POLL_NS)
