"""The lifecycle every xlock object shares (``Lock``, ``Semaphore``, ``PosixSemaphore``): the namespace it
uses, introspection, ``with`` and ``async with``, asyncio acquisition, fork and collection.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Callable, TypeVar

from . import _fork
from ._async import acquire_in_worker
from ._common import FOREVER_NS, NamespaceArg, deadline_from, open_namespace
from ._errors import WouldBlock
from ._namespace import Namespace
from .names import EncodedName, NameLike, encoded

__all__ = ["Handle"]

H = TypeVar("H", bound="Handle")


class Handle:
    """Base of the xlock objects. A subclass implements ``_acquire``, ``release``, ``close``, ``_undo``
    and ``_after_fork_in_child`` (which the at-fork handler calls in a child [XL-HOLD-7, XL-HOLD-8]).

    Attributes: ``name``, ``namespace`` (the namespace directory's path), ``namespace_identity``
    (``(dev, ino)``) and ``path``.
    """

    _closed = True
    _ns: Namespace
    _owns_namespace = False
    _name: EncodedName

    def _set_name(self, name: NameLike) -> None:
        """Validate and encode the name, once, before any other argument is checked [XL-NAME-3]."""
        self._name = encoded(name)

    def _open_namespace(self, namespace: NamespaceArg, allow_unsupported_fs: bool) -> None:
        """Open (or share) the namespace [XL-NS-1], after every argument was checked."""
        self._ns, self._owns_namespace = open_namespace(namespace, allow_unsupported_fs)

    def _opened(self) -> None:
        """The object is ready: from now on ``close`` and the at-fork handler apply to it."""
        self._closed = False
        _fork.track(self)

    def _release_namespace(self) -> None:
        if self._owns_namespace:
            self._ns.close()

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
        raise NotImplementedError

    def _undo(self, owner: object, got: Any) -> None:
        """Give back what an abandoned asyncio acquisition got."""
        raise NotImplementedError

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def acquire_async(self, timeout: float | None = None) -> Any:
        return await self._acquire_async(timeout)

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
        """Acquire without blocking the event loop: one try here, then the wait in a worker thread; if the
        awaiting task is cancelled, the wait ends within one wait slice and nothing stays held."""
        owner = self._async_owner()
        deadline_ns = deadline_from(timeout)
        try:
            return self._acquire(owner, False, None, None, None)
        except WouldBlock:
            pass

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
        self.acquire()
        return self

    async def __aenter__(self: H) -> H:
        await self.acquire_async()
        return self

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
