"""Locks in a PostgreSQL namespace against a real throwaway server (spec §16)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
from cli_helpers import wait_until
from pg_server import held_by_child

import xlock
from xlock._pg import open_lock

pytest_plugins = ("pg_server",)  # the `pg` fixture
psycopg = pytest.importorskip("psycopg", reason="install the extra: pip install './python[postgresql]'")


def test_exclusion_and_modes(pg: Any) -> None:
    """[XL-PG-4, XL-PG-5, XL-HOLD-1]: two objects exclude, also in one thread; shared with shared."""
    url = pg.url()
    a, b = open_lock("ex", url), open_lock("ex", url)
    s1, s2 = open_lock("ex2", url, shared=True), open_lock("ex2", url, shared=True)
    x = open_lock("ex2", url)
    try:
        a.acquire()
        assert b.acquire(blocking=False) is False
        assert a.backend_pid != b.backend_pid
        rows = pg.advisory_locks(a.key)
        assert [(r["pid"], r["mode"], r["granted"]) for r in rows] == [
            (str(a.backend_pid), "ExclusiveLock", "t")
        ]
        a.release()
        b.acquire(blocking=False)
        b.release()
        s1.acquire()
        s2.acquire(blocking=False)
        assert x.acquire(blocking=False) is False
        s1.release()
        s2.release()
        x.acquire(timeout=1)
        x.release()
    finally:
        for o in (a, b, s1, s2, x):
            o.close()


def test_timed_waits(pg: Any) -> None:
    """[XL-PG-7, XL-WAIT-3]: never early, bounded overshoot; timeout 0 is one try failing with TIMEOUT."""
    url = pg.url(tcp=True)
    holder, waiter = open_lock("timed", url), open_lock("timed", url)
    try:
        holder.acquire()
        for timeout in (0.001, 0.02, 0.1):
            t0 = time.monotonic()
            assert waiter.acquire(timeout=timeout) is False
            elapsed = time.monotonic() - t0
            assert timeout <= elapsed < timeout + 0.05, (timeout, elapsed)
        t0 = time.monotonic()
        assert waiter.acquire(timeout=0) is False
        assert time.monotonic() - t0 < 0.05
        assert pg.advisory_locks(waiter.key) == pg.advisory_locks(holder.key)  # nothing left waiting
        holder.release()
        waiter.acquire(timeout=0)
        waiter.release()
        waiter.acquire(timeout=5)
        assert waiter._session is not None
        row = waiter._session.one("SELECT current_setting('lock_timeout')", None, "reading")
        assert row == ("0",)  # a timed wait sets it for its own statement only [XL-PG-6]
        waiter.release()
        with pytest.raises(xlock.InvalidArgument):
            waiter.acquire(timeout=float("nan"))
    finally:
        holder.close()
        waiter.close()


def test_already_held_reentrant_not_held(pg: Any) -> None:
    """[XL-HOLD-3, XL-HOLD-4, XL-HOLD-6] hold in the binding: PostgreSQL's own re-entrancy is never used."""
    url = pg.url()
    lock, again = open_lock("re", url), open_lock("re", url, reentrant=True)
    try:
        with pytest.raises(xlock.NotHeld):
            lock.release()
        lock.acquire()
        with pytest.raises(xlock.AlreadyHeld):
            lock.acquire()
        lock.release()
        again.acquire()
        again.acquire()
        again.release()
        assert again.locked(verify=True)
        again.release()
        assert not pg.advisory_locks(again.key)
    finally:
        lock.close()
        again.close()


def test_session_setup(pg: Any) -> None:
    """[XL-PG-6, XL-PG-11, XL-PG-12]: application_name with pid and host; timeouts off; TCP bounds."""
    lock = open_lock("setup", pg.url(tcp=True) + "?xlock_release_ms=4000")
    try:
        row = pg.sql(
            "SELECT application_name, client_addr IS NOT NULL FROM pg_stat_activity "
            f"WHERE pid = {lock.backend_pid}"
        )[0]
        expected = f"xlock/1 py pid={os.getpid()} host={socket.gethostname()}".encode()[:63].decode(
            "utf-8", "ignore"
        )
        assert row == [expected, "t"]
        assert lock._session is not None
        settings = lock._session.one(
            "SELECT current_setting('statement_timeout'), current_setting('idle_session_timeout'), "
            "current_setting('tcp_user_timeout'), current_setting('tcp_keepalives_idle')",
            None,
            "reading",
        )
        assert settings == ("0", "0", "4000", "5")
        assert lock.namespace_identity[1] == "xlock"
        assert lock.path is None and lock.label == "default"
    finally:
        lock.close()


def test_lost_after_terminate_unlock_all_and_restart(pg: Any) -> None:
    """[XL-PG-10]: the holder's next release reports LOST and the object is then not held."""
    url = pg.url()
    holder, waiter = open_lock("lost", url), open_lock("lost", url)
    try:
        holder.acquire()
        backend = holder.backend_pid
        assert backend is not None
        pg.terminate(backend)
        waiter.acquire(timeout=5)  # the server released the terminated session's lock
        with pytest.raises(xlock.Lost):
            holder.release()
        assert not holder.locked()
        waiter.release()
        holder.acquire(timeout=5)  # a new session
        assert holder._session is not None
        holder._session.one("SELECT pg_advisory_unlock_all()", None, "planting")
        with pytest.raises(xlock.Lost):
            holder.locked(verify=True)
        assert not holder.locked()
        holder.acquire()
        holder._session.one("DISCARD ALL", None, "planting")  # also drops the prepared statements
        with pytest.raises(xlock.Lost):
            holder.release()
        with pytest.raises(xlock.UnsupportedBackend):  # DISCARD ALL also reset the token [XL-PG-9]
            holder.acquire()
        holder.acquire()  # a new session
        pg.restart()
        with pytest.raises(xlock.Lost):
            holder.release()
        waiter.acquire(timeout=5)  # its session died too, while idle: it opens a new one
        waiter.release()
    finally:
        holder.close()
        waiter.close()


def _syncs(path: str) -> int:
    """Round trips in a libpq trace: the client's Sync messages."""
    with open(path) as f:
        return sum(1 for line in f if "\tF\t" in line and "\tSync" in line)


@pytest.mark.parametrize("how", ["untimed", "timed", "try"])
def test_one_round_trip_per_acquire_and_release(pg: Any, how: str, tmp_path: Any) -> None:
    """Uncontended, each acquisition (untimed, timed or one try) and each release is one statement: one
    round trip [XL-PG-7, XL-PG-9 (the token check rides along)], counted in libpq's protocol trace."""
    lock = open_lock("trips", pg.url())
    timeouts = itertools.count(5, 0.0011)  # a new lock_timeout every time
    acquire = {
        "untimed": lambda: lock.acquire(),
        "timed": lambda: lock.acquire(timeout=next(timeouts)),
        "try": lambda: lock.acquire(blocking=False),
    }[how]
    try:
        acquire()  # the first use on a session prepares the statements
        lock.release()
        assert lock._session is not None
        pgconn = lock._session.conn.pgconn
        path = str(tmp_path / "trace")
        with open(path, "w") as out:
            pgconn.trace(out.fileno())
            try:
                for _ in range(10):
                    assert acquire()
                    lock.release()
            finally:
                pgconn.untrace()
        assert _syncs(path) == 20
    finally:
        lock.close()


def test_idle_session_timeout_of_a_role_is_overridden(pg: Any) -> None:
    """[XL-PG-6]: a role default idle_session_timeout must not end a healthy holder's session."""
    pg.sql("DO $$BEGIN CREATE ROLE xlock_idle LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$")
    pg.sql("ALTER ROLE xlock_idle SET idle_session_timeout = '300ms'")
    lock = open_lock("idle", pg.url(user="xlock_idle"))
    try:
        lock.acquire()
        time.sleep(1.0)  # the property under test is "still held after the role's timeout", a duration
        assert lock.locked(verify=True)
        lock.release()
    finally:
        lock.close()


CHILD = textwrap.dedent(
    """
    import sys
    from xlock._pg import open_lock
    lock = open_lock("interrupt", sys.argv[1])
    print(lock.backend_pid, flush=True)
    try:
        lock.acquire()
        print("acquired", flush=True)
    except KeyboardInterrupt:
        print("interrupted", lock.locked(), flush=True)
    sys.stdin.read()
    """
)


def test_sigint_leaves_nothing_waiting(pg: Any) -> None:
    """[XL-PG-8, XL-WAIT-9]: Ctrl-C during a server-side wait cancels it; no granted or waiting entry."""
    url = pg.url()
    holder = open_lock("interrupt", url)
    holder.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        backend = int(child.stdout.readline())
        wait_until(lambda: pg.locks_of([backend]), "the child waits in pg_locks")
        assert pg.locks_of([backend])[0][4] == "f"
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline().split() == ["interrupted", "False"]
        assert pg.locks_of([backend]) == []  # the child is alive, its session open: nothing waits
        # The server grants a wait still queued inside the release (the releasing backend wakes the queue
        # before pg_advisory_unlock returns), so pg_locks shows any such grant once release has returned.
        holder.release()
        assert pg.locks_of([backend]) == []
        child.stdin.close()
        child.wait(timeout=10)
    finally:
        child.kill()
        child.wait()
        holder.close()


def test_asyncio_cancel_leaves_nothing_waiting(pg: Any) -> None:
    """[XL-PG-8]: a cancelled task's wait is cancelled on the server; acquire_async and async with work."""
    url = pg.url()
    holder, waiter = open_lock("async", url), open_lock("async", url)

    async def main() -> None:
        holder.acquire()
        task = asyncio.ensure_future(waiter.acquire_async())
        backend = waiter.backend_pid
        assert backend is not None
        deadline = time.monotonic() + 5
        while not pg.locks_of([backend]):
            assert time.monotonic() < deadline, "the waiter never queued"
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pg.locks_of([backend]) == []
        assert not waiter.locked()
        holder.release()
        async with waiter:
            assert waiter.locked()
        assert not waiter.locked()

    try:
        asyncio.run(main())
    finally:
        holder.close()
        waiter.close()


def test_fork_child_holds_nothing_and_spares_the_parent(pg: Any) -> None:
    """[XL-PG-16, XL-HOLD-7]: the child never talks on, nor closes, the parent's session."""
    lock = open_lock("fork", pg.url())
    try:
        lock.acquire()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                assert not lock.locked()
                try:
                    lock.release()
                    code = 2
                except xlock.NotHeld:
                    pass
                if lock.acquire(blocking=False):
                    code = 3
                lock.close()
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert lock.locked(verify=True)  # the parent's session survived the child's exit
        lock.release()
    finally:
        lock.close()


def test_holder_killed_waiter_acquires(pg: Any) -> None:
    """[XL-PG-11, XL-HOLD-10]: the server releases at once when the client process dies."""
    url = pg.url(tcp=True)
    waiter = open_lock("death", url)
    try:
        with held_by_child("open_lock('death', sys.argv[1])", url) as child:
            assert waiter.acquire(blocking=False) is False
            child.kill()
            waiter.acquire(timeout=5)
            waiter.release()
    finally:
        waiter.close()


def test_bad_servers(pg: Any, pg_password: str) -> None:
    """[XL-PG-15, XL-PG-14, XL-PG-6]: unreachable, wrong password, standby: each a clear error."""
    mod_port = pg.port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(xlock.BackendError) as info:
        open_lock("bad", f"postgresql://xlock@127.0.0.1:{dead_port}/xlock?connect_timeout=2")
    assert time.monotonic() - t0 < 2.5
    assert f"port {dead_port}" in str(info.value) and "127.0.0.1" in str(info.value)
    secret = pg_password
    with pytest.raises(xlock.BackendError) as info:
        open_lock("bad", pg.url(user="xlock_pw", password=secret + "-wrong", tcp=True))
    assert secret not in str(info.value) and "xlock_pw" in str(info.value)
    assert "password authentication failed" in str(info.value)
    good = open_lock("bad", pg.url(user="xlock_pw", password=secret, tcp=True))
    try:
        good.acquire()
        assert secret not in repr(good) and secret not in good.namespace and "***" in good.namespace
        with pytest.raises(xlock.AlreadyHeld) as held:
            good.acquire()
        assert secret not in str(held.value)
    finally:
        good.close()
    standby = pg.standby()
    with pytest.raises(xlock.UnsupportedBackend) as info:
        open_lock("bad", standby.url())
    assert "standby" in str(info.value)
    assert mod_port == pg.port


def test_pooler_detected(pg: Any, pg_bouncer: Any) -> None:
    """[XL-PG-9]: behind PgBouncer in transaction mode the token check fails: UNSUPPORTED_BACKEND, and
    nothing stays held on the server."""
    url = pg_bouncer.url()
    a = open_lock("pooled", url)
    b = open_lock("pooled", url)  # same server connection: its setup replaced a's token
    try:
        with pytest.raises(xlock.UnsupportedBackend) as info:
            a.acquire(blocking=False)
        assert "pooling" in str(info.value)
        assert not a.locked()
        assert pg.advisory_locks(a.key) == []
    finally:
        a.close()
        b.close()


def test_xlock_api_takes_the_uri(pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """[XL-PG-1, XL-PG-18]: xlock.Lock, xlock.Semaphore and xlock.remove accept the URI, explicitly or from
    XLOCK_NAMESPACE, with no other change to user code."""
    url = pg.url()
    with xlock.Lock("api", namespace=url) as lock:
        assert lock.locked() and lock.path is None
        with pytest.raises(xlock.WouldBlock):
            xlock.remove("api", namespace=url)
    assert xlock.remove("api", namespace=url) is False
    monkeypatch.setenv("XLOCK_NAMESPACE", url)
    sem = xlock.Semaphore("api-sem", 2)
    try:
        assert sem.acquire() and sem.slot == 0
        with pytest.raises(xlock.WouldBlock):
            xlock.remove("api-sem", kind="semaphore", capacity=2)
    finally:
        sem.close()
    assert xlock.remove("api-sem", kind="semaphore", capacity=2) is False


def test_rlock_takes_the_uri(pg: Any) -> None:
    """xlock.RLock(name, namespace=URI) is a reentrant PostgreSQL lock [XL-HOLD-4, XL-PG-1]."""
    lock = xlock.RLock("rlock", namespace=pg.url())
    try:
        assert lock.reentrant and lock.acquire() and lock.acquire()
        lock.release()
        lock.release()
        assert not lock.locked()
    finally:
        lock.close()
