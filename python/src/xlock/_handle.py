"""The lifecycle every xlock object shares (``Lock``, ``Semaphore``, ``PosixSemaphore``): the namespace it
uses, introspection, the ``threading`` protocol (``acquire`` returns a bool, ``with``, a decorator),
``async with``, asyncio acquisition, fork and collection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Coroutine
from types import TracebackType

from . import _fork
from ._async import acquire_in_worker, take_worker
from ._bell import next_poll_ns
from ._common import (
    FOREVER_NS,
    UNTIMED,
    NamespaceArg,
    acquire_timeout,
    check_timeout,
    deadline_from,
    open_namespace,
)
from ._decorator import hold_while_running
from ._errors import Timeout, WouldBlock
from ._namespace import Namespace, release_shared
from ._watcher import wait_ring
from .names import EncodedName, NameLike, encoded

__all__ = ["Handle"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Callable, Literal, ParamSpec, TypeVar, overload

    H = TypeVar("H", bound="Handle")
    R = TypeVar("R")
    P = ParamSpec("P")


class Handle:
    """Base of the xlock objects. A subclass implements ``_acquire``, ``release``, ``close``, ``_undo``
    and ``_after_fork_in_child`` (which the at-fork handler calls in a child [XL-HOLD-7, XL-HOLD-8]).

    It follows ``threading.Lock``'s protocol: ``acquire(blocking=True, timeout=-1)`` returns ``True`` when
    it got the lock (or permit) and ``False`` when a non-blocking or timed attempt did not; ``with`` waits
    for the object's default ``timeout`` and raises ``Timeout`` when it passes; the object decorates
    functions and coroutine functions.

    Attributes: ``name``, ``namespace`` (the namespace directory's path), ``namespace_identity``
    (``(dev, ino)``), ``path`` and ``timeout`` (the default of ``with``, seconds or ``None``).
    """

    _closed = True
    _default_timeout: float | None = None
    _ns: Namespace
    _owns_namespace = False
    _name: EncodedName

    def _set_name(self, name: NameLike) -> None:
        """Validate and encode the name, once, before any other argument is checked [XL-NAME-3]."""
        self._name = encoded(name)

    def _open_namespace(self, namespace: NamespaceArg, allow_unsupported_fs: bool) -> None:
        """Open (or share) the namespace [XL-NS-1], after every argument was checked."""
        self._ns, self._owns_namespace = open_namespace(namespace, allow_unsupported_fs)

    def _set_default_timeout(self, timeout: object) -> None:
        self._default_timeout = check_timeout(timeout)

    @property
    def timeout(self) -> float | None:
        """How long ``with`` (and the decorator) waits, in seconds; ``None`` is without end. Set it with
        the constructor's ``timeout=`` or here; ``-1`` or ``None`` mean without end."""
        return self._default_timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._set_default_timeout(value)

    def _opened(self) -> None:
        """The object is ready: from now on ``close`` and the at-fork handler apply to it."""
        self._closed = False
        _fork.track(self)

    def _release_namespace(self) -> None:
        if self._owns_namespace:
            self._owns_namespace = False
            release_shared(self._ns)

    @property
    def name(self) -> str:
        return self._name.text

    @property
    def namespace(self) -> str:
        """The namespace directory's path [XL-INTRO-1]."""
        return self._ns.path

    @property
    def namespace_identity(self) -> tuple[int, int]:
        """(``st_dev``, ``st_ino``) of the namespace directory [XL-INTRO-1]."""
        return self._ns.dev, self._ns.ino

    @property
    def sharing(self) -> str:
        """``"private"``, ``"group-shared"`` or ``"world-shared"`` [XL-NS-15]."""
        return self._ns.sharing

    @property
    def closed(self) -> bool:
        return self._closed

    # -- what subclasses provide --------------------------------------------------------------------

    def _acquire(
        self,
        owner: object,
        blocking: bool,
        timeout: float | None,
        cancel: threading.Event | None,
        deadline_ns: int | None,
    ) -> Any:
        """Acquire or raise (``WouldBlock``, ``Timeout``, ...); ``timeout`` is checked, ``None`` untimed."""
        raise NotImplementedError

    def _undo(self, owner: object, got: Any) -> None:
        """Give back what an abandoned asyncio acquisition got."""
        raise NotImplementedError

    def _sync_owner(self) -> object:
        """Who holds after a synchronous acquire (the thread, for a lock)."""
        return None

    def acquire(self, blocking: bool = True, timeout: float | None = UNTIMED) -> bool:
        """``True`` once acquired; ``False`` if ``blocking=False`` found it held elsewhere or ``timeout``
        seconds passed first, exactly as ``threading.Lock.acquire``. ``timeout=-1`` (or ``None``) waits
        without end; a timeout with ``blocking=False`` is a ``ValueError`` (``InvalidArgument``)."""
        seconds = acquire_timeout(blocking, timeout)
        try:
            self._acquire(self._sync_owner(), blocking, seconds, None, None)
        except (WouldBlock, Timeout):
            return False
        return True

    async def acquire_async(self, timeout: float | None = None) -> Literal[True]:
        """Acquire without blocking the event loop; returns ``True`` (as ``asyncio.Lock.acquire``) or
        raises ``Timeout`` when ``timeout`` seconds pass first."""
        await self._acquire_async(check_timeout(timeout))
        return True

    def release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _dispose(self) -> None:
        """Free what must outlive ``close`` until no thread can use it any more (at collection)."""

    def _after_fork_in_child(self) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------

    def _async_owner(self) -> object:
        return None

    async def _acquire_async(self, timeout: float | None) -> Any:
        """Acquire without blocking the event loop [XL-WAIT-12]: every try is non-blocking and runs in the
        loop's thread; between tries the task awaits a ring of its bell word or its next safety poll,
        which one thread of the process watches for every waiter (``_watcher``). A cancelled task stops
        between tries and so holds nothing. Objects without a bell (raw POSIX semaphores) wait in a worker
        thread while one of the few is free, else try at the safety polls from the loop."""
        owner = self._async_owner()
        deadline_ns = deadline_from(timeout)
        try:
            return self._acquire(owner, False, None, None, None)
        except WouldBlock:
            pass
        bell = getattr(self, "_bell", None)
        if bell is None and take_worker():
            return await self._acquire_in_worker(owner, timeout, deadline_ns)
        word = None if bell is None else self._async_word()
        start = time.monotonic_ns()
        while True:
            value = None if word is None or bell is None else bell.announce(word)
            try:
                return self._acquire(owner, False, None, None, None)
            except WouldBlock:
                pass
            now = time.monotonic_ns()
            if deadline_ns is not None and now >= deadline_ns:
                # one last attempt that raises the object's own Timeout (the deadline has passed, so it
                # does not wait)
                return self._acquire(owner, True, timeout, None, deadline_ns)
            wake = next_poll_ns(start, now)
            if deadline_ns is not None and deadline_ns < wake:
                wake = deadline_ns
            await wait_ring(bell, word, value, wake)

    def _async_word(self) -> Any:
        """The bell word an asyncio waiter of this object announces on, or ``None``."""
        return None

    async def _acquire_in_worker(self, owner: object, timeout: float | None, deadline_ns: int | None) -> Any:
        def wait(cancel: threading.Event) -> Any:
            # Untimed waits also run the bell loop in the worker, so that cancellation is noticed.
            return self._acquire(
                owner, True, timeout, cancel, FOREVER_NS if deadline_ns is None else deadline_ns
            )

        undo: Callable[[Any], None] = lambda got: self._undo(owner, got)  # noqa: E731
        return await acquire_in_worker(wait, undo)

    def _release_async(self) -> None:
        self.release()

    def __enter__(self: H) -> H:
        # Raises Timeout when the default timeout passes: a `with` body never runs unlocked.
        self._acquire(self._sync_owner(), True, self._default_timeout, None, None)
        return self

    async def __aenter__(self: H) -> H:
        await self._acquire_async(self._default_timeout)
        return self

    if TYPE_CHECKING:  # the overloads, for type checkers only

        @overload
        def __call__(
            self, func: Callable[P, Coroutine[Any, Any, R]]
        ) -> Callable[P, Coroutine[Any, Any, R]]: ...

        @overload
        def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Use the object as a decorator: every call of ``func`` runs holding it (``with``), and a
        coroutine function's under ``async with``."""
        return hold_while_running(self, func)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release_async()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
            self._dispose()
        except Exception:
            pass
