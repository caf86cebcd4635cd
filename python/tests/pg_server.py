"""The throwaway PostgreSQL server of the PostgreSQL tests: one per test session, started on first use.

The server itself is conformance/xlock_conformance/pgserver.py (one implementation for the binding's tests,
the conformance cases and the benchmark), loaded from the checkout by path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

_SOURCE = Path(__file__).resolve().parents[2] / "conformance" / "xlock_conformance" / "pgserver.py"
_STATE: dict[str, Any] = {}


def pgserver_module() -> ModuleType:
    if "module" not in _STATE:
        spec = importlib.util.spec_from_file_location("xlock_test_pgserver", _SOURCE)
        assert spec is not None and spec.loader is not None, f"{_SOURCE} is missing"
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _STATE["module"] = module
    return _STATE["module"]  # type: ignore[no-any-return]


def server() -> Any:
    """The running server (started once; stopped at exit by the module's atexit hook)."""
    if "server" not in _STATE:
        mod = pgserver_module()
        srv = mod.PgServer()
        srv.start()
        srv.setup_roles()
        _STATE["server"] = srv
    return _STATE["server"]


@pytest.fixture
def pg() -> Any:
    """The session's PostgreSQL server (see conformance/xlock_conformance/pgserver.py)."""
    pytest.importorskip("psycopg", reason="install the extra: pip install './python[postgresql]'")
    return server()


@pytest.fixture
def pg_bouncer(pg: Any) -> Any:
    """PgBouncer in transaction mode in front of the session's server (started on first use)."""
    if "bouncer" not in _STATE:
        _STATE["bouncer"] = pgserver_module().PgBouncer(pg)
    return _STATE["bouncer"]


@pytest.fixture
def pg_password() -> str:
    """The password of the server's role ``xlock_pw``; no output may ever contain it [XL-PG-14]."""
    return str(pgserver_module().PASSWORD)


@contextlib.contextmanager
def held_by_child(opened: str, url: str) -> Iterator[subprocess.Popen[str]]:
    """A child process that opens `opened` (an expression of xlock._pg's open_lock/open_semaphore over the
    namespace sys.argv[1]), acquires it and waits; yielded once it holds, killed and reaped at the end."""
    code = (
        "import sys; from xlock._pg import open_lock, open_semaphore\n"
        f"x = {opened}\nx.acquire(); print('held', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held", (
            f"{opened} was not held"
        )
        yield child
    finally:
        child.kill()
        child.wait()


def server_now(pg: Any) -> str:
    """The server's clock now, in seconds since the epoch (text), for `until_trying`."""
    return str(pg.sql("SELECT extract(epoch FROM clock_timestamp())")[0][0])


def until_trying(pg: Any, backend_pid: int, since: str, timeout: float = 5.0) -> None:
    """Until session `backend_pid` is idle after a try of a semaphore's slots (every implementation's one
    statement beginning WITH RECURSIVE) that began after `since` (`server_now`): its wait found no permit
    and now waits for a NOTIFY or its next safety poll [XL-PG-13]."""
    query = (
        f"SELECT 1 FROM pg_stat_activity WHERE pid = {int(backend_pid)} AND state = 'idle' AND "
        f"query LIKE 'WITH RECURSIVE%' AND query_start > to_timestamp({float(since)!r})"
    )
    deadline = time.monotonic() + timeout
    while not pg.sql(query):
        assert time.monotonic() < deadline, f"session {backend_pid} did not try the slots within {timeout} s"
        time.sleep(0.005)  # between polls of the condition
