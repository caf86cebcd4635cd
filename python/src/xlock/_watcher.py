"""One thread per process that waits on the bell words of every asyncio waiter at once (``futex_waitv``)
and wakes each waiter's event loop on a ring or at its wake-up time, so that any number of waiting
``async with`` tasks cost one thread and never block their loop [XL-WAIT-12].

A waiter (``_handle``) announces on its word and tries in its loop's thread, both without blocking, then
awaits ``wait_ring``; the thread resolves that future when the word no longer holds the announced value
(a ring) or at ``wake_ns`` (the next safety poll or the deadline [XL-WAIT-7]). Without ``futex_waitv``
(Linux before 5.16), or beyond its 128 words, waiters are woken by their safety polls alone. In a shared
namespace words are read with ``pread`` only [XL-BELL-5].
"""

from __future__ import annotations

import errno
import os
import threading
import time

from . import _libc
from ._libc import ffi, lib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any

__all__ = ["wait_ring"]

_SYS_FUTEX_WAITV = 449  # the same on x86_64 and in the generic table (aarch64)
_FUTEX2_SIZE_U32 = 0x02
_FUTEX2_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 1 | 128
_MAX_WORDS = 127  # futex_waitv takes 128; one is the thread's own control word
_IDLE_NS = 3600 * 1_000_000_000


class _Entry:
    __slots__ = ("bell", "future", "loop", "value", "wake_ns", "word")

    def __init__(self, loop: Any, future: Any, bell: Any, word: Any, value: int | None, wake_ns: int) -> None:
        self.loop, self.future, self.bell, self.word, self.value, self.wake_ns = (
            loop,
            future,
            bell,
            word,
            value,
            wake_ns,
        )


def _resolve(future: Any) -> None:  # in the waiter's loop
    if not future.done():
        future.set_result(None)


class _Watcher:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._entries: list[_Entry] = []
        self._control = ffi.new("uint32_t *")  # bumped (and woken) when an entry is added
        self._thread: threading.Thread | None = None
        self._waitv = True

    def add(self, entry: _Entry) -> None:
        with self._mutex:
            self._entries.append(entry)
            self._control[0] = (self._control[0] + 1) & 0xFFFFFFFF
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="xlock-bell-watcher", daemon=True)
                self._thread.start()
        lib.syscall(
            ffi.cast("long", _libc.SYS_FUTEX),
            self._control,
            ffi.cast("int", _FUTEX_WAKE_PRIVATE),
            ffi.cast("uint32_t", 1),
            ffi.NULL,
            ffi.NULL,
            ffi.cast("uint32_t", 0),
        )

    def _run(self) -> None:
        ts = ffi.new("struct timespec *")
        vec = ffi.new("uint64_t[]", 3 * (_MAX_WORDS + 1))
        while True:
            with self._mutex:
                control = self._control[0]
                entries = self._entries
                now = time.monotonic_ns()
                keep = []
                for entry in entries:
                    if entry.future.done():
                        continue  # cancelled: nothing to wake
                    if entry.wake_ns <= now or _rang(entry):
                        _wake(entry)
                    else:
                        keep.append(entry)
                self._entries = keep
            wake_ns = min((e.wake_ns for e in keep), default=now + _IDLE_NS)
            ts.tv_sec, ts.tv_nsec = divmod(wake_ns, 1_000_000_000)
            self._wait(vec, control, keep, ts)

    def _wait(self, vec: Any, control: int, entries: list[_Entry], ts: Any) -> None:
        """Sleep until the control word changes, one of the entries' words changes, or ``ts``."""
        words: dict[int, tuple[Any, int]] = {}
        if self._waitv:
            for entry in entries:
                if entry.value is not None and len(words) < _MAX_WORDS:
                    words.setdefault(int(ffi.cast("uintptr_t", entry.word)), (entry, entry.value))
        slots = [(int(ffi.cast("uintptr_t", self._control)), control, _FUTEX2_SIZE_U32 | _FUTEX2_PRIVATE)]
        slots += [(addr, value, _FUTEX2_SIZE_U32) for addr, (_, value) in words.items()]
        for i, (addr, value, flags) in enumerate(slots):
            vec[3 * i], vec[3 * i + 1], vec[3 * i + 2] = value, addr, flags
        if self._waitv:
            rc = lib.syscall(
                ffi.cast("long", _SYS_FUTEX_WAITV),
                vec,
                ffi.cast("unsigned int", len(slots)),
                ffi.cast("unsigned int", 0),
                ts,
                ffi.cast("int", _libc.CLOCK_MONOTONIC),
            )
            err = ffi.errno
            if rc >= 0 or err in (errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR):
                return
            if err != errno.ENOSYS:
                # a word that faults (a truncated shared bell [XL-BELL-8]): wake everyone once; their
                # next announce fails and they go on with the safety poll alone
                for entry in entries:
                    entry.value = None
                    _wake(entry)
                return
            self._waitv = False  # no futex_waitv: the safety polls alone from now on
        # The control word only, until the earliest wake-up.
        lib.syscall(
            ffi.cast("long", _libc.SYS_FUTEX),
            self._control,
            ffi.cast("int", _libc.FUTEX_WAIT_BITSET | 128),
            ffi.cast("uint32_t", control),
            ts,
            ffi.NULL,
            ffi.cast("uint32_t", _libc.FUTEX_BITSET_MATCH_ANY),
        )


def _rang(entry: _Entry) -> bool:
    """True if the entry's word no longer holds the announced value (read as the bell allows)."""
    if entry.value is None:
        return False
    bell = entry.bell
    if bell.shared:
        now = bell.read_word(entry.word)
        return now is None or now != entry.value
    return bool(entry.word[0] != entry.value)


def _wake(entry: _Entry) -> None:
    try:
        entry.loop.call_soon_threadsafe(_resolve, entry.future)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more


_watcher = _Watcher()


def _after_fork_in_child() -> None:
    global _watcher
    _watcher = _Watcher()  # the thread did not survive the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


async def wait_ring(bell: Any, word: Any, value: int | None, wake_ns: int) -> None:
    """Return when ``word`` of ``bell`` no longer holds ``value`` (a ring), at ``wake_ns``
    (CLOCK_MONOTONIC), or a little earlier (a spurious wake-up costs the waiter one try). ``value``
    ``None``: a bell that cannot be used, wait until ``wake_ns``."""
    import asyncio

    loop = asyncio.get_running_loop()
    if value is None or word is None:
        await asyncio.sleep(max(0.0, (wake_ns - time.monotonic_ns()) / 1e9))
        return
    future = loop.create_future()
    _watcher.add(_Entry(loop, future, bell, word, value, wake_ns))
    await future
