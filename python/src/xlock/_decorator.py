"""Every xlock object is also a decorator: the wrapped function runs holding it (``with``), a coroutine
function under ``async with``, so the event loop never blocks."""

from __future__ import annotations

import functools

__all__ = ["hold_while_running"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])


def hold_while_running(held: Any, func: F) -> F:
    """``func`` wrapped so that each call runs inside ``with held`` (``async with held`` for a coroutine
    function). ``held`` is both a context manager and an asynchronous one."""
    if not callable(func):
        from ._errors import InvalidArgument

        raise InvalidArgument(f"an xlock object decorates a function, not {func!r}")
    import inspect  # slow to import; only decorating needs it

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            async with held:
                return await func(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with held:
            return func(*args, **kwargs)

    return run  # type: ignore[return-value]
