"""asyncio support for objects without a bell (raw POSIX semaphores): a wait runs in a worker thread so
the event loop never blocks; a cancelled wait leaves nothing held (the worker notices the cancel flag
within one wait slice, and whatever it acquired after the cancellation is given back). At most
``MAX_WORKERS`` such threads run at once in a process; a waiter that finds none free polls from its loop.
"""

from __future__ import annotations

import os
import threading

__all__ = ["MAX_WORKERS", "acquire_in_worker", "take_worker"]

MAX_WORKERS = 4
_workers = threading.BoundedSemaphore(MAX_WORKERS)


def take_worker() -> bool:
    """Reserve one of the ``MAX_WORKERS`` worker threads for ``acquire_in_worker``; False if all run."""
    return _workers.acquire(blocking=False)


def _after_fork_in_child() -> None:
    global _workers
    _workers = threading.BoundedSemaphore(MAX_WORKERS)  # the parent's workers are not in the child


os.register_at_fork(after_in_child=_after_fork_in_child)


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Callable, TypeVar

    T = TypeVar("T")


async def acquire_in_worker(acquire: Callable[[threading.Event], T], undo: Callable[[T], None]) -> T:
    """Run ``acquire(cancel_event)`` in a new thread (reserved with ``take_worker``, given back when the
    thread ends) and await its result.

    If the awaiting task is cancelled, ``cancel_event`` is set (the acquisition must then fail soon with
    ``Cancelled``), and a result that arrives anyway is passed to ``undo`` exactly once.
    """
    import asyncio  # loaded already: a coroutine is running (import xlock does not import asyncio)

    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    cancel = threading.Event()
    guard = threading.Lock()
    abandoned = [False]

    def deliver(ok: bool, value: object) -> None:  # in the event loop's thread
        if future.done():  # the task was cancelled meanwhile
            if ok:
                undo(value)  # type: ignore[arg-type]
        elif ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            future.set_exception(value)

    def work() -> None:
        ok = False
        value: object
        try:
            value = acquire(cancel)
            ok = True
        except BaseException as exc:
            value = exc
        finally:
            _workers.release()
        with guard:
            gone = abandoned[0]
        if not gone:
            try:
                loop.call_soon_threadsafe(deliver, ok, value)
                return
            except RuntimeError:  # the loop is closed: nobody will take the result
                pass
        if ok:
            undo(value)  # type: ignore[arg-type]

    try:
        threading.Thread(target=work, name="xlock-async-acquire", daemon=True).start()
    except BaseException:
        _workers.release()
        raise
    try:
        return await future
    except asyncio.CancelledError:
        with guard:
            abandoned[0] = True
        cancel.set()
        if future.done() and not future.cancelled() and future.exception() is None:
            undo(future.result())
        raise
