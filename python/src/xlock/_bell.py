"""The bell of a namespace (§9): one file of 1024 futex words that releasers ring and timed waiters sleep
on, and the timed-wait loop with its safety poll [XL-WAIT-12, XL-WAIT-7].

A bell that cannot be created, opened, checked or mapped, or a futex call that fails for another reason
than EINTR, EAGAIN or ETIMEDOUT, never fails an acquisition or a release: waits fall back to the safety
poll alone and releases skip the ring.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
import weakref

from . import _libc
from ._files import MAX_ROUNDS, publish
from ._libc import ffi, lib
from ._lockfile import LOCKED, TIMEDOUT, WAITED
from ._namespace import Namespace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = [
    "ACQUIRED",
    "BELL_FILE",
    "CANCELLED",
    "TIMED_OUT",
    "Bell",
    "bell_of",
    "next_poll_ns",
    "wait_file",
    "wait_loop",
]

BELL_FILE = ".xlock-bell"
BELL_SIZE = 4096
ACQUIRED, TIMED_OUT, CANCELLED = 0, 1, 2
_OPEN_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_MS = 1_000_000
_POLLS_NS = (1 * _MS, 3 * _MS, 7 * _MS, 15 * _MS, 31 * _MS)  # then every 16 ms [XL-WAIT-7]
_POLL_EVERY_NS = 16 * _MS
_INT_MAX = 2**31 - 1


def _futex_op(op: int, oparg: int, cmp: int, cmparg: int) -> int:
    return ((op & 0xF) << 28) | ((cmp & 0xF) << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)


# FUTEX_OP_OR = 2, FUTEX_OP_ADD = 1, FUTEX_OP_CMP_EQ = 0.
_OR_1 = _futex_op(2, 1, 0, 0)  # announce a waiter: set bit 0, wake nobody
_ADD_1 = _futex_op(1, 1, 0, 0)  # ring: clear bit 0 and count a ring in one step
# Every variadic argument of syscall(2) cast once to its exact C type (cffi ABI mode).
_SYS_FUTEX = ffi.cast("long", _libc.SYS_FUTEX)
_WAKE_OP = ffi.cast("int", _libc.FUTEX_WAKE_OP)
_WAIT_BITSET = ffi.cast("int", _libc.FUTEX_WAIT_BITSET)
_ZERO = ffi.cast("uint32_t", 0)
_ALL_WAITERS = ffi.cast("uint32_t", _INT_MAX)
_NO_VAL2 = ffi.cast("void *", 0)
_NO_ADDR = ffi.cast("uint32_t *", 0)
_MATCH_ANY = ffi.cast("uint32_t", _libc.FUTEX_BITSET_MATCH_ANY)
_OR_1_C = ffi.cast("uint32_t", _OR_1)
_ADD_1_C = ffi.cast("uint32_t", _ADD_1)
_syscall = lib.syscall
_pread = os.pread
_native = sys.byteorder
# The compiled module's single calls (None in ABI mode) [XL-BELL-5, XL-BELL-6, XL-WAIT-12].
_COMPILED = _libc.COMPILED
_xl_announce = lib.xl_announce if _COMPILED else None
_xl_ring = lib.xl_ring if _COMPILED else None
_xl_sleep = lib.xl_sleep if _COMPILED else None
_xl_wait_step = lib.xl_wait_step if _COMPILED else None
_NULL = ffi.NULL


class Bell:
    """The mapped bell of one namespace, shared by every object of this process in that namespace.

    ``words`` is the mapping as ``uint32_t *`` (``None`` if the bell is unusable, ``state`` says why).
    In a shared namespace the mapping is never read or written from user space: bits are set by the
    kernel (``FUTEX_WAKE_OP``) and words read with ``pread``, so a member truncating the file makes
    futex calls fail with ``EFAULT`` instead of crashing anyone with ``SIGBUS``.
    """

    __slots__ = ("__weakref__", "_addr", "_locks", "dev", "fd", "ino", "shared", "state", "words")

    def __init__(self, ns: Namespace, *, create: bool) -> None:
        self.fd = -1
        self._addr: Any = None
        self.words: Any = None
        self.shared = ns.shared
        self.dev = self.ino = -1
        self._locks: dict[tuple[int, int], tuple[tuple[Any, int, bool], Any, Any]] = {}
        try:
            self.state = self._open(ns, create)
        except OSError as exc:
            self.state = f"unusable: {exc.strerror or exc}"

    def word(self, index: int) -> Any:
        """The address of word ``index`` (``uint32_t *``), or ``None`` if the bell is unusable."""
        words = self.words
        return None if words is None else words + index

    def for_lock(self, index: int, op: int) -> tuple[tuple[Any, int, bool], Any]:
        """What a Lock on word ``index`` with flock operation ``op`` (``LOCK_NB`` included) needs, made
        once per word and operation: the compiled ring's arguments (the word's address, NULL if the bell
        is unusable, the bell's descriptor, whether the namespace is shared) and, compiled, a free
        ``struct xl_hold`` without a file to copy into the new object's hold (else ``None``)."""
        made = self._locks.get((index, op))
        if made is None:
            words = self.words
            ring_args = (_NULL if words is None else words + index, self.fd, self.shared)
            hold = template = None
            if _COMPILED:
                hold = ffi.new("struct xl_hold *")
                lib.xl_hold_init(hold, op, *ring_args, -1, -1, _NULL, 0, 0)
                template = hold[0]  # the struct's value, for ffi.new's initializer; `hold` owns it
            made = self._locks[(index, op)] = (ring_args, template, hold)
        return made[0], made[1]

    def _open(self, ns: Namespace, create: bool) -> str:
        dirfd = ns.require_open()
        for _ in range(MAX_ROUNDS):
            try:
                fd = os.open(BELL_FILE, _OPEN_FLAGS, dir_fd=dirfd)
                break
            except FileNotFoundError:
                if not create:
                    return "absent"
                self._create(ns, dirfd)  # then open what is there, whoever created it
            except OSError as exc:
                return f"unusable: cannot open {ns.join(BELL_FILE)}: {exc.strerror}"
        else:
            return f"unusable: {ns.join(BELL_FILE)} keeps being replaced"
        try:
            problem = _check(ns, os.fstat(fd))
            if problem is None:
                addr = lib.mmap(
                    ffi.NULL, BELL_SIZE, _libc.PROT_READ | _libc.PROT_WRITE, _libc.MAP_SHARED, fd, 0
                )
                if addr == _libc.MAP_FAILED:
                    problem = f"mmap failed: {os.strerror(ffi.errno)}"
        except OSError as exc:
            problem = f"fstat failed: {exc.strerror}"
        if problem is not None:
            os.close(fd)
            return f"unusable: {ns.join(BELL_FILE)} {problem}"
        st = os.fstat(fd)
        self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
        self._addr = addr
        self.words = ffi.cast("uint32_t *", addr)
        return "ok"

    @staticmethod
    def _create(ns: Namespace, dirfd: int) -> None:
        """Create the bell atomically: a full-size temporary file linked to its name [XL-BELL-2]."""
        publish(dirfd, BELL_FILE, lambda r: f"{BELL_FILE}.{r}.tmp", ns.file_mode, _full_size)

    def announce(self, word: Any) -> int | None:
        """Set bit 0 of ``word`` ("a waiter is present") and return the word's value, or ``None`` if the
        bell cannot be used (the caller then relies on the safety poll) [XL-WAIT-12]. Compiled: in a private
        namespace an atomic fetch-or on the mapping [XL-BELL-5]."""
        if _xl_announce is not None:
            got: int = _xl_announce(word, self.fd, self.shared)
            return None if got < 0 else got
        if _syscall(_SYS_FUTEX, word, _WAKE_OP, _ZERO, _NO_VAL2, word, _OR_1_C) < 0:
            return None
        if self.shared:
            return self._pread(word)
        value: int = word[0]
        return value

    def read_word(self, word: Any) -> int | None:
        """The value of ``word`` read with ``pread`` (as in a shared namespace), ``None`` if unreadable."""
        return self._pread(word)

    def _pread(self, word: Any) -> int | None:
        try:
            data = _pread(self.fd, 4, 4 * (word - self.words))
        except OSError:
            return None
        return int.from_bytes(data, _native) if len(data) == 4 else None

    def ring(self, word: Any) -> None:
        """Wake every waiter on ``word`` if one announced itself (bit 0 set); otherwise no system call
        at all [XL-WAIT-6]. ``FUTEX_WAKE_OP`` with ``ADD 1`` clears the bit and counts the ring."""
        if word is None:
            return
        if _xl_ring is not None:
            _xl_ring(word, self.fd, self.shared)
            return
        if self.shared:
            value = self._pread(word)
            if value is None or not value & 1:
                return
        elif not word[0] & 1:
            return
        _syscall(_SYS_FUTEX, word, _WAKE_OP, _ALL_WAITERS, _NO_VAL2, word, _ADD_1_C)

    def sleep(self, word: Any, value: int | None, wake_ns: int, ts: Any) -> None:
        """Sleep until ``wake_ns`` (CLOCK_MONOTONIC) or a ring of ``word`` if it still holds ``value``;
        return early on a signal so Python runs its handlers [XL-WAIT-9]. ``ts`` is the caller's own
        ``struct timespec *``. Without a usable bell, or if the futex call fails, sleep until ``wake_ns``.
        """
        if _xl_sleep is not None:
            _xl_sleep(_NULL if word is None else word, -1 if value is None else value, wake_ns)
            return  # a signal (EINTR): back to Python, which runs its handlers
        if word is not None and value is not None:
            ts.tv_sec, ts.tv_nsec = divmod(wake_ns, 1_000_000_000)
            rc = _syscall(
                _SYS_FUTEX, word, _WAIT_BITSET, ffi.cast("uint32_t", value), ts, _NO_ADDR, _MATCH_ANY
            )
            if rc == 0 or ffi.errno in (errno.EINTR, errno.EAGAIN, errno.ETIMEDOUT):
                return
        remaining = wake_ns - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)

    def __del__(self) -> None:
        addr, self._addr, self.words = self._addr, None, None
        if addr is not None:
            lib.munmap(addr, BELL_SIZE)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _full_size(fd: int) -> None:
    os.ftruncate(fd, BELL_SIZE)


def _check(ns: Namespace, st: os.stat_result) -> str | None:
    """The checks on the bell's descriptor before it is mapped [XL-BELL-3]; ``None`` if it passes."""
    if not stat.S_ISREG(st.st_mode):
        return f"is not a regular file (mode {st.st_mode:o})"
    if st.st_size != BELL_SIZE:
        return f"has {st.st_size} bytes, not {BELL_SIZE}"
    if not ns.shared and st.st_uid not in (os.geteuid(), 0, ns.uid):
        return f"is owned by uid {st.st_uid}, not by you, root or the namespace's owner"
    if st.st_mode & 0o777 & ~ns.file_mode:
        return f"has mode {st.st_mode & 0o777:04o}, which grants more than {ns.file_mode:04o}"
    return None


_bells: weakref.WeakValueDictionary[tuple[int, int], Bell] = weakref.WeakValueDictionary()
_bells_lock = threading.Lock()


def bell_of(ns: Namespace, *, create: bool) -> Bell:
    """The bell of ``ns``, opened once per process and namespace while objects use it [XL-BELL-1].

    A cached bell is reused only while the namespace's ``.xlock-bell`` is still the file it mapped (a
    removed and recreated namespace directory may come back with the same identity). Removal, status
    and raw semaphores pass ``create=False``: they never create the bell.
    """
    cached: Bell | None = ns.bell  # the namespace's descriptor is held: still that directory [XL-NS-16]
    if cached is not None:
        return cached
    key = (ns.dev, ns.ino)
    with _bells_lock:
        bell = _bells.get(key)
        if bell is not None and bell.words is not None:
            try:
                st = os.stat(BELL_FILE, dir_fd=ns.require_open(), follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (bell.dev, bell.ino):
                    ns.bell = bell
                    return bell
            except OSError:
                pass
        bell = Bell(ns, create=create)
        if bell.words is not None:
            _bells[key] = bell
            ns.bell = bell
        return bell


def next_poll_ns(start_ns: int, now_ns: int) -> int:
    """The next safety poll after ``now_ns``: 1, 3, 7, 15 and 31 ms after the start of the call, then
    every 16 ms, whatever wake-ups happened in between [XL-WAIT-7]."""
    elapsed = now_ns - start_ns
    for offset in _POLLS_NS:
        if offset > elapsed:
            return start_ns + offset
    last = _POLLS_NS[-1]
    return start_ns + last + ((elapsed - last) // _POLL_EVERY_NS + 1) * _POLL_EVERY_NS


def wait_loop(
    bell: Bell,
    word: Any,
    attempt: Callable[[], bool],
    deadline_ns: int | None,
    cancel: threading.Event | None,
) -> int:
    """The timed-wait loop of XL-WAIT-12 after a failed first attempt: announce on ``word``, try, sleep
    until a ring, the next safety poll or the deadline; until ``attempt()`` succeeds (``ACQUIRED``), the
    deadline passes (``TIMED_OUT``; ``None`` waits without end) or ``cancel`` is set (``CANCELLED``).
    """
    start = time.monotonic_ns()
    ts = ffi.new("struct timespec *")
    if bell.words is None:
        word = None
    woken = False
    while True:
        if cancel is not None and cancel.is_set():
            return CANCELLED
        # after a wake-up, try first: most wake-ups are a release, and a hand-off should not wait for the
        # announcement; if the try fails, announce and try again before sleeping (no ring is missed)
        if woken and attempt():
            return ACQUIRED
        value = None if word is None else bell.announce(word)
        if attempt():
            return ACQUIRED
        now = time.monotonic_ns()
        if deadline_ns is not None and now >= deadline_ns:
            return TIMED_OUT
        wake = next_poll_ns(start, now)
        if deadline_ns is not None and deadline_ns < wake:
            wake = deadline_ns
        bell.sleep(word, value, wake, ts)
        woken = True


def wait_file(
    bell: Bell,
    word: Any,
    lock_file: Any,
    op_nb: int,
    deadline_ns: int | None,
    cancel: threading.Event | None,
    check: Callable[[], None],
) -> int:
    """``wait_loop`` for one lock file on the compiled path: one C call runs the iterations (announce, try
    with the re-check, deadline, sleep until a ring or the next safety poll) until a safety poll is due, a
    signal comes or the wait ends [XL-WAIT-12, XL-WAIT-7]; cancellation and closing are checked here.
    ``check()`` raises if the object was closed meanwhile; a file found without a name is reopened, at most
    ``MAX_ROUNDS`` times in a row without a wait [XL-LOCK-12]. Returns ``ACQUIRED``, ``TIMED_OUT`` or
    ``CANCELLED``; raises as ``LockFile.lock``."""
    assert _xl_wait_step is not None
    start = time.monotonic_ns()
    if bell.words is None or word is None:
        word = _NULL
    deadline = -1 if deadline_ns is None else deadline_ns
    bell_fd, shared = bell.fd, bell.shared
    rounds = 0
    while True:
        if cancel is not None and cancel.is_set():
            return CANCELLED
        check()
        if lock_file.fd < 0:
            lock_file.open()
        rc = _xl_wait_step(
            word, bell_fd, shared, lock_file.fd, op_nb, *lock_file.check_args(), start, deadline
        )
        if rc == WAITED:
            rounds = 0
        elif rc == LOCKED:
            return ACQUIRED
        elif rc == TIMEDOUT:
            return TIMED_OUT
        else:
            rounds = lock_file.after_failed_try(rc, rounds)
