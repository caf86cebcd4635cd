"""PostgreSQL namespaces (spec §16): the same names and API on session advisory locks of a database.

Importing this package imports nothing else (not psycopg); only opening an object, removal and status
do. Entry points for the rest of xlock: ``pg_namespace`` (is this namespace argument a PostgreSQL URI?),
``open_lock``, ``open_semaphore``, ``remove`` and ``keys_of`` (the pure mapping [XL-PG-3]).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any, Optional

    from .lock import PgLock
    from .semaphore import PgSemaphore

__all__ = ["SCHEMES", "keys_of", "open_lock", "open_semaphore", "pg_lock_class", "pg_namespace", "remove"]

SCHEMES = ("postgresql://", "postgres://")  # [XL-PG-1]


def pg_namespace(namespace: object) -> Optional[str]:
    """The PostgreSQL URI that ``namespace`` (or, if it is ``None``, ``XLOCK_NAMESPACE``) gives, else
    ``None``: a path, a ``Namespace`` object or no setting keep the local namespace [XL-PG-1, XL-NS-1]."""
    if namespace is None:
        namespace = os.environ.get("XLOCK_NAMESPACE")
    return namespace if isinstance(namespace, str) and namespace.startswith(SCHEMES) else None


def open_lock(name: Any, url: str, **options: Any) -> PgLock:
    return pg_lock_class()(name, namespace=url, **options)


def pg_lock_class() -> type[PgLock]:
    """``PgLock``, imported on first need (psycopg is loaded only for PostgreSQL namespaces)."""
    from .lock import PgLock

    return PgLock


def open_semaphore(name: Any, capacity: Any, url: str, **options: Any) -> PgSemaphore:
    from .semaphore import PgSemaphore

    return PgSemaphore(name, capacity, namespace=url, **options)


def keys_of(name: Any, label: str = "default") -> dict[str, int]:
    """The keys of a name under a label, without a connection [XL-PG-3]: lock, slot 0, slot 999."""
    from .keys import key

    return {"l": key("l", label, name), "s0": key("s", label, name, 0), "s999": key("s", label, name, 999)}


def remove(name: Any, url: str, kind: str = "lock", capacity: Optional[int] = None) -> bool:
    """Removal in a PostgreSQL namespace [XL-PG-18]: nothing to remove. Tries the lock (or every slot)
    once; ``WouldBlock`` if held, else gives it back and returns ``False``."""
    from .._errors import InvalidArgument, WouldBlock

    if kind == "lock":
        lock = open_lock(name, url)
        try:
            if not lock.acquire(blocking=False):
                raise WouldBlock(f"lock {lock.name!r} in {lock.namespace} is held; nothing to remove")
            lock.release()
        finally:
            lock.close()
        return False
    if kind == "semaphore":
        from .semaphore import PgSemaphore

        sem = PgSemaphore(name, capacity or 1, namespace=url)
        try:
            for _ in range(sem.capacity):
                if not sem.acquire(blocking=False):
                    raise WouldBlock(f"semaphore {sem.name!r} in {sem.namespace}: a permit is held")
        finally:
            sem.close()
        return False
    raise InvalidArgument(f"kind {kind!r} has no PostgreSQL form; use lock or semaphore [XL-PG-18]")
