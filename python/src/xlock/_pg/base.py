"""What the PostgreSQL lock and semaphore objects share: the namespace, names, sessions, ``with``, asyncio."""

from __future__ import annotations

import asyncio
import os
import threading
from types import TracebackType
from typing import Any, Callable, Literal, Optional, TypeVar

from .._common import UNTIMED, acquire_timeout, check_timeout, current_task_or_none
from .._decorator import hold_while_running
from .._errors import InvalidArgument, Timeout, WouldBlock
from ..names import NameLike, name_to_str
from .session import Session, open_session
from .url import PgNamespace, parse

__all__ = ["PgHandle", "ceil_ms"]

H = TypeVar("H", bound="PgHandle")
# While cancelling an abandoned asyncio wait, how often the cancel request is repeated (a cancel that
# reaches the server before the statement does cancels nothing).
_RECANCEL_S = 0.05


def ceil_ms(ns: int) -> int:
    """Nanoseconds rounded *up* to whole milliseconds [XL-PG-7]."""
    return -(-ns // 1_000_000)


class PgHandle:
    """Base of ``PgLock`` and ``PgSemaphore``. Attributes: ``name``, ``namespace`` (the URI without its
    password), ``label``, ``key``, ``path`` (``None``: there are no files), ``namespace_identity``
    (``(system_identifier, database)`` of the server) [XL-PG-12], ``timeout`` (how long ``with`` waits).

    They follow the ``threading`` protocol as ``xlock.Lock`` does: ``acquire()`` returns ``True``;
    ``acquire(blocking=False)`` and ``acquire(timeout=s)`` return ``False`` when it stays held elsewhere;
    ``with`` waits at most ``timeout`` and raises ``Timeout``; the object decorates functions.
    """

    _closed = True
    _session: Optional[Session] = None
    _listen: Optional[str] = None
    kind_word = "object"

    _default_timeout: Optional[float] = None

    def _setup(self, name: NameLike, namespace: object, timeout: object) -> None:
        self._name = name_to_str(name)  # the name first [XL-NAME-3]
        self._default_timeout = check_timeout(timeout)
        if not isinstance(namespace, str):
            raise InvalidArgument(f"a PostgreSQL namespace is a URI string, not {namespace!r}")
        self._ns: PgNamespace = parse(namespace)
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self.path: Optional[str] = None
        self.bell_word: Optional[int] = None

    def _describe(self, extra: str) -> None:
        self._what = (
            f"{self.kind_word} {self._name!r} in {self._ns.shown} (label {self._ns.label!r}, {extra})"
        )

    def _open_session(self) -> Session:
        session = open_session(self._ns, self._what, listen=self._listen)
        self._session = session
        return session

    def _live_session(self) -> Session:
        """The object's session, opened again if it was lost or inherited through fork."""
        session = self._session
        if session is None or session.broken:
            if session is not None:
                session.close()
                self._session = None
            session = self._open_session()
        return session

    @property
    def name(self) -> str:
        return self._name

    @property
    def timeout(self) -> Optional[float]:
        """How long ``with`` (and the decorator) waits, in seconds; ``None`` is without end."""
        return self._default_timeout

    @timeout.setter
    def timeout(self, value: Optional[float]) -> None:
        self._default_timeout = check_timeout(value)

    @property
    def namespace(self) -> str:
        """The namespace URI with its password replaced by ``***`` [XL-PG-14]."""
        return self._ns.shown

    @property
    def label(self) -> str:
        return self._ns.label

    @property
    def namespace_identity(self) -> tuple[int, str]:
        """(``system_identifier``, database name) of the server [XL-PG-12]."""
        session = self._live_session()
        return session.system_identifier, session.database

    @property
    def sharing(self) -> str:
        return "database"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backend_pid(self) -> Optional[int]:
        """The server process of this object's session (``pg_locks.pid``), if one is open."""
        session = self._session
        return None if session is None or session.broken else session.backend_pid

    def _forked(self) -> bool:
        """In a forked child, forget what the parent's object held [XL-HOLD-7, XL-PG-16]."""
        if self._pid == os.getpid():
            return False
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._reset_after_fork()
        if self._session is not None:
            self._session.close()  # abandons: never a word on the parent's session
            self._session = None
        return True

    def _reset_after_fork(self) -> None:
        raise NotImplementedError

    def _cancel_wait(self) -> None:
        session = self._session
        if session is not None:
            session.cancel()

    def _acquire_for(self, owner: object, blocking: bool, timeout: Optional[float]) -> Any:
        """Acquire or raise ``WouldBlock``/``Timeout``; what subclasses implement."""
        raise NotImplementedError

    def _sync_owner(self) -> object:
        return threading.get_ident()

    def acquire(self, blocking: bool = True, timeout: Optional[float] = UNTIMED) -> bool:
        """``True`` once acquired; ``False`` if ``blocking=False`` finds it held, or ``timeout`` seconds
        pass first (never earlier; ``timeout=0`` is one attempt) [XL-PG-7]. ``-1`` or ``None``: no end."""
        seconds = acquire_timeout(blocking, timeout)
        try:
            self._acquire_for(self._sync_owner(), bool(blocking), seconds)
        except (WouldBlock, Timeout):
            return False
        return True

    async def acquire_async(self, timeout: Optional[float] = None) -> Literal[True]:
        """Acquire without blocking the event loop; ``True``, or ``Timeout`` when ``timeout`` passes. A
        cancelled task leaves nothing held or waiting [XL-PG-8]."""
        seconds = check_timeout(timeout)
        owner = current_task_or_none()
        await self._acquire_async(lambda: self._acquire_for(owner, True, seconds))
        return True

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate ``func``: each call runs holding the object (``async with`` for coroutines)."""
        return hold_while_running(self, func)

    def release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _undo(self, got: Any) -> None:
        raise NotImplementedError

    async def _acquire_async(self, acquire: Callable[[], Any]) -> Any:
        """Run ``acquire`` in a worker thread; if the awaiting task is cancelled, cancel the server-side
        wait until the worker returns, and give back whatever it got [XL-PG-8]."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, acquire)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._cancelling = True
            try:
                while not future.done():
                    self._cancel_wait()
                    await asyncio.wait({future}, timeout=_RECANCEL_S)
            finally:
                self._cancelling = False
            if not future.cancelled() and future.exception() is None:
                self._undo(future.result())
            raise

    _cancelling = False

    def __enter__(self: H) -> H:
        self._acquire_for(self._sync_owner(), True, self._default_timeout)  # Timeout: the body never runs
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self: H) -> H:
        await self.acquire_async(self._default_timeout)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:
            pass
