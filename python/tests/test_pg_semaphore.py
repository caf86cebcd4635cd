"""Counting semaphores in a PostgreSQL namespace against a real throwaway server [XL-PG-13]."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pg_server import held_by_child, server_now, until_trying

import xlock
from xlock._pg import open_semaphore
from xlock._pg.semaphore import _next_poll

pytest_plugins = ("pg_server",)  # the `pg` fixture
pytest.importorskip("psycopg", reason="install the extra: pip install './python[postgresql]'")


def test_safety_poll_schedule() -> None:
    """[XL-WAIT-7]: 1, 3, 7, 15, 31 ms after the start, then every 16 ms, whatever wakes the waiter."""
    ms = 1_000_000
    polls, now = [], 0
    for _ in range(8):
        now = _next_poll(0, now)
        polls.append(now // ms)
    assert polls == [1, 3, 7, 15, 31, 47, 63, 79]
    assert _next_poll(0, 40 * ms) == 47 * ms


def test_permits_capacity_and_release(pg: Any) -> None:
    """[XL-PG-13, XL-CSEM-5, XL-CSEM-6]: N permits among objects; slots; NOT_HELD; one object many permits."""
    url = pg.url()
    a, b = open_semaphore("sem", 2, url), open_semaphore("sem", 2, url)
    try:
        assert a.acquire() and b.acquire()
        assert {a.slot, b.slot} == {0, 1} and a.slots == (a.slot,)
        assert a.acquire(blocking=False) is False
        t0 = time.monotonic()
        assert a.acquire(timeout=0.05) is False
        assert 0.05 <= time.monotonic() - t0 < 0.1
        b.release()
        assert a.acquire(blocking=False) is True and a.slot in (0, 1)
        assert a.held == 2
        a.release()
        a.release()
        with pytest.raises(xlock.NotHeld):
            a.release()
        with pytest.raises(xlock.InvalidArgument):
            open_semaphore("sem", 1001, url)
    finally:
        a.close()
        b.close()


def test_capacity_agreement(pg: Any) -> None:
    """[XL-PG-13]: a live participant with another capacity is CAPACITY_MISMATCH; none left, no mismatch."""
    url = pg.url()
    first = open_semaphore("agree", 3, url)
    try:
        with pytest.raises(xlock.CapacityMismatch) as info:
            open_semaphore("agree", 4, url)
        assert "3" in str(info.value) and "4" in str(info.value)
    finally:
        first.close()
    open_semaphore("agree", 4, url).close()


@pytest.mark.parametrize("held", [False, True])
def test_close_releases_before_the_session_ends(pg: Any, held: bool, tmp_path: Any) -> None:
    """[XL-PG-13]: close gives back the capacity marker (and any permit) in a statement of its own, answered
    before the session ends, whose release by the server is asynchronous; then an opener of another
    capacity, right after, never meets the closed object."""
    sem = open_semaphore("closing", 3, pg.url())
    if held:
        assert sem.acquire(blocking=False)
    assert sem._session is not None
    path = str(tmp_path / "trace")
    with open(path, "w") as out:
        sem._session.conn.pgconn.trace(out.fileno())
        sem.close()
    with open(path) as f:
        # the protocol messages in order: F(rontend) or B(ackend), and the message's name and text
        messages = [line.split("\t", 3)[1:4:2] for line in f]
    unlock = next((i for i, (_, m) in enumerate(messages) if "pg_advisory_unlock_all()" in m), None)
    assert unlock is not None and messages[unlock][0] == "F", (
        f"no pg_advisory_unlock_all() at close: {messages}"
    )
    rest = [m.split()[0] for _, m in messages[unlock:]]
    assert (
        "ReadyForQuery" in rest and rest[-1] == "Terminate" and rest.index("ReadyForQuery") < len(rest) - 1
    ), f"the session ended before the server answered the release: {messages[unlock:]}"
    for _ in range(20):
        open_semaphore("closing", 4, pg.url()).close()  # no CAPACITY_MISMATCH
        open_semaphore("closing", 3, pg.url()).close()


def test_release_wakes_an_untimed_waiter(pg: Any) -> None:
    """[XL-PG-13, XL-WAIT-11]: the NOTIFY of a release ends an untimed wait."""
    url = pg.url()
    holder, waiter = open_semaphore("wake", 1, url), open_semaphore("wake", 1, url)
    got: list[int] = []
    try:
        holder.acquire()
        backend, since = waiter.backend_pid, server_now(pg)
        assert backend is not None
        thread = threading.Thread(target=lambda: got.append(waiter.acquire() and waiter.slot))
        thread.start()
        until_trying(pg, backend, since)  # the waiter found no permit and waits
        assert thread.is_alive() and not got
        holder.release()
        thread.join(5)
        assert got == [0]
        waiter.release()
    finally:
        holder.close()
        waiter.close()


def test_killed_holder_permit_returns(pg: Any) -> None:
    """[XL-PG-13, XL-WAIT-7]: a session that ends rings nothing; the safety poll of an untimed wait finds
    the free slot (a timed wait would hide a missing poll: its last try, at the deadline, finds it too)."""
    url = pg.url(tcp=True)
    waiter = open_semaphore("dead", 1, url)
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(waiter.acquire() and waiter.slot), daemon=True)
    try:
        with held_by_child("open_semaphore('dead', 1, sys.argv[1])", url) as child:
            assert waiter.acquire(blocking=False) is False
            backend, since = waiter.backend_pid, server_now(pg)
            assert backend is not None
            thread.start()
            until_trying(pg, backend, since)  # the waiter found no permit and waits
            child.kill()
            thread.join(5)
            assert got == [0], "the killed holder's slot was not found within 5 s: no safety poll"
            waiter.release()
    finally:
        if not thread.is_alive():  # a wait that never ended still uses the object: closing would wait on it
            waiter.close()
