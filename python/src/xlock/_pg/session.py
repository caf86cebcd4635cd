"""One PostgreSQL session of one xlock object [XL-PG-5]: connect, set up, run statements, map errors.

psycopg is imported here only, so ``import xlock`` stays free of it until a PostgreSQL namespace is used.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

import psycopg
from psycopg import errors as pgerr

from .._errors import BackendError, Lost, UnsupportedBackend, XLockError
from .url import PgNamespace

__all__ = ["DEFECT", "MIN_SERVER_VERSION", "Session", "SessionGone", "Statement", "open_session"]

MIN_SERVER_VERSION = 140000  # [XL-PG-6]
# Test-only planted defects (conformance/tests/test_pg_teeth.py); never set outside tests.
DEFECT = os.environ.get("XLOCK_TEST_PG_DEFECT", "")
POOLER = (
    "transaction or statement pooling detected; use a direct or session-pooled connection (session "
    "advisory locks need their session) [XL-PG-9]"
)
_APP_NAME_BYTES = 63
# How often a backend that waits for a lock checks that its client is still there: a killed waiter
# leaves the server's queue within this time instead of when it is granted.
_CLIENT_CHECK_MS = "1000"
# While cancelling an interrupted statement, how often the cancel request is repeated (one that reaches
# the server before the statement does cancels nothing) [XL-PG-8].
_RECANCEL_MS = 50
_INVALID_STATEMENT = "26000"  # a prepared statement the session does not have

_live: weakref.WeakSet[Session] = weakref.WeakSet()
_shared: dict[str, Session] = {}  # only for the planted defect "shared-session"


class SessionGone(BackendError):
    """The session ended under us (terminated, server restarted, connection lost) [XL-PG-10]."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.detail))


def _application_name() -> str:
    """``xlock/1 py pid=N host=H`` cut to 63 bytes [XL-PG-6, XL-PG-12]."""
    text = f"xlock/1 py pid={os.getpid()} host={socket.gethostname()}"
    raw = text.encode("utf-8")[:_APP_NAME_BYTES]
    return raw.decode("utf-8", "ignore")


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Statement(NamedTuple):
    """A statement that a session prepares at its first use: the server parses and plans it once per
    session, and each later call is one round trip with no work beyond running it."""

    name: bytes
    sql: bytes


class Session:
    """A dedicated autocommit connection with the setup of XL-PG-6 and the token of XL-PG-9."""

    def __init__(self, ns: PgNamespace, what: str, *, listen: Optional[str] = None) -> None:
        self.ns = ns
        self.what = what
        self.listen = listen
        self.pid = os.getpid()
        self.token = secrets.token_hex(16)
        self.users = 1
        self.prepared: set[bytes] = set()
        self.conn = self._connect()
        self.cur = self.conn.cursor()  # one cursor for every statement: a new one per call costs ~40 us
        self._poll = select.poll()
        self._poll.register(self.conn.pgconn.socket, select.POLLIN)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        _live.add(self)

    # -- setup ----------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            options: dict[str, Any] = dict(self.ns.connect_options())
            return psycopg.Connection.connect(self.ns.url, autocommit=True, **options)
        except psycopg.Error as exc:
            raise self.error(exc, "connecting", connecting=True) from None

    def _setup(self) -> None:
        row = self.one(
            "SELECT pg_is_in_recovery(), pg_backend_pid(), current_setting('server_version_num')::int, "
            "current_database(), (SELECT system_identifier FROM pg_control_system())",
            (),
            "reading the server's state",
        )
        in_recovery, self.backend_pid, self.server_version, self.database, self.system_identifier = row
        if self.server_version < MIN_SERVER_VERSION:
            raise UnsupportedBackend(
                f"{self.what}: the {self.ns.server()} runs PostgreSQL {self.server_version}; xlock needs "
                f"14 or later [XL-PG-6]"
            )
        if in_recovery:
            raise UnsupportedBackend(
                f"{self.what}: the {self.ns.server()} is a standby in recovery; its advisory locks do not "
                f"exclude with the primary's: point the namespace at the primary [XL-PG-6]"
            )
        release_ms = str(self.ns.release_ms)
        settings = [
            ("application_name", _application_name()),
            # A role's defaults must not end a healthy holder's session [XL-PG-6].
            ("statement_timeout", "0"),
            ("lock_timeout", "0"),
            ("idle_session_timeout", "0"),
            ("idle_in_transaction_session_timeout", "0"),
            ("client_connection_check_interval", _CLIENT_CHECK_MS),
            # The server's side of the release bound R [XL-PG-11].
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "2"),
            ("tcp_keepalives_count", "3"),
            ("tcp_user_timeout", release_ms),
            ("xlock.session_token", self.token),  # [XL-PG-9]
        ]
        if self.server_version >= 170000:
            settings.append(("transaction_timeout", "0"))
        sql = "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in settings)
        params = tuple(v for pair in settings for v in pair)
        self.one(sql, params, "setting up the session")
        if self.listen is not None:
            self.one(f'LISTEN "{self.listen}"', None, "listening for releases")

    # -- statements -----------------------------------------------------------------------------------

    def one(self, sql: str, params: Any, doing: str) -> tuple[Any, ...]:
        """Run ``sql`` and return its first row (or ``()``); errors become xlock errors."""
        try:
            cur = self.cur
            cur.execute(sql, params)
            row = cur.fetchone() if cur.description else None
        except psycopg.Error as exc:
            raise self.error(exc, doing) from None
        return tuple(row) if row is not None else ()

    def check_token(self, token: object, pid: object) -> None:
        """Raise ``UnsupportedBackend`` if the statement ran on another backend than ours [XL-PG-9]."""
        if token != self.token or pid != self.backend_pid:
            raise UnsupportedBackend(f"{self.what}: {POOLER}; {self.ns.server()}")

    def run(
        self, stmt: Statement, params: Sequence[bytes], doing: str, *, server_errors: bool = False
    ) -> list[Optional[bytes]]:
        """Run the prepared ``stmt`` (one round trip once prepared): its first row's values as text, or
        ``[]``. Errors become xlock errors; with ``server_errors``, a statement's error that does not end
        the session stays a ``psycopg.Error`` (lock_timeout, cancellation) for the caller to map. The
        wait is interruptible: if a signal handler raises, or ``cancel`` from another thread ends it, the
        statement is cancelled and drained before the exception goes on, so the session stays usable
        [XL-PG-8]."""
        pg = self.conn.pgconn
        for attempt in (0, 1):
            try:
                if stmt.name not in self.prepared:
                    pg.send_prepare(stmt.name, stmt.sql)
                    self._check(self._result(), doing)
                    self.prepared.add(stmt.name)
                pg.send_query_prepared(stmt.name, params)
                res = self._result()
            except psycopg.Error as exc:
                raise self.error(exc, doing) from None
            if res.status == psycopg.pq.ExecStatus.TUPLES_OK:
                return [res.get_value(0, i) for i in range(res.nfields)] if res.ntuples else []
            err = psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding)
            if attempt == 0 and err.sqlstate == _INVALID_STATEMENT:
                self.prepared.discard(stmt.name)  # DISCARD ALL or DEALLOCATE ran here: prepare it again
                continue
            if server_errors and not self.is_gone(err) and err.sqlstate != _INVALID_STATEMENT:
                raise err
            raise self.error(err, doing)
        raise AssertionError("unreachable")

    def _check(self, res: Any, doing: str) -> None:
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise self.error(psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding), doing)

    def _result(self) -> Any:
        """The result of the statement just sent, read without blocking signals; on any interruption
        (a handler raising), the statement is cancelled, repeatedly, until it returns, and drained."""
        pg = self.conn.pgconn
        try:
            while pg.flush():
                select.select([], [pg.socket], [])
            while pg.is_busy():
                self._poll.poll()
                pg.consume_input()
        except psycopg.Error:
            raise
        except BaseException:
            self._drain_cancelled()
            raise
        res = pg.get_result()
        while pg.get_result() is not None:
            pass
        if res is None:
            raise psycopg.OperationalError("the server sent no result")
        return res

    def _drain_cancelled(self) -> None:
        pg = self.conn.pgconn
        try:
            while pg.is_busy():
                self.cancel()
                if self._poll.poll(_RECANCEL_MS):
                    pg.consume_input()
            while pg.get_result() is not None:
                pass
        except BaseException as exc:  # also a second Ctrl-C while draining
            self.close()  # ending the session ends whatever the statement waited for or got
            if not isinstance(exc, Exception):
                raise

    def cancel(self) -> None:
        """Ask the server to cancel the statement in progress (thread-safe) [XL-PG-8]."""
        try:
            if hasattr(self.conn, "cancel_safe"):
                self.conn.cancel_safe(timeout=5.0)
            else:  # psycopg 3.1
                self.conn.cancel()
        except Exception:
            pass

    @property
    def broken(self) -> bool:
        conn = getattr(self, "conn", None)
        return (
            conn is None
            or conn.closed
            or conn.broken
            or conn.pgconn.status != psycopg.pq.ConnStatus.OK
            or self.pid != os.getpid()
        )

    # -- errors ---------------------------------------------------------------------------------------

    def error(self, exc: BaseException, doing: str, connecting: bool = False) -> XLockError:
        """The xlock error for a psycopg error [XL-PG-15]; the password never appears [XL-PG-14]."""
        sqlstate = getattr(exc, "sqlstate", None)
        detail = self.ns.scrub(_one_line(str(exc)) or type(exc).__name__)
        where = f"{self.what}: {doing} on the {self.ns.server()} failed: {detail}"
        if sqlstate:
            where += f" (SQLSTATE {sqlstate})"
        if sqlstate == "26000":  # a prepared statement vanished: another backend answered
            return UnsupportedBackend(f"{where}; {POOLER}")
        if sqlstate == "53200":
            where += "; the server's lock table is full: raise max_locks_per_transaction"
        if not connecting and self.is_gone(exc):
            return SessionGone(where, detail + (f" (SQLSTATE {sqlstate})" if sqlstate else ""))
        return BackendError(where)

    def is_gone(self, exc: BaseException) -> bool:
        """True if ``exc`` means the session ended (terminated, restarted, connection lost) [XL-PG-10]."""
        if isinstance(exc, (pgerr.AdminShutdown, pgerr.IdleSessionTimeout, pgerr.CrashShutdown)):
            return True
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate.startswith("08") or sqlstate.startswith("57P") or self.broken

    def lost(self, why: str) -> Lost:
        return Lost(f"{self.what}: {why}; the lock is not held (another client may hold it now) [XL-PG-10]")

    # -- end ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """End the session: the server releases whatever it held. In a forked child, abandon it."""
        if self.users > 1:  # the planted defect "shared-session" only
            self.users -= 1
            return
        _live.discard(self)
        for key, session in list(_shared.items()):
            if session is self:
                del _shared[key]
        if self.pid != os.getpid():
            self._abandon()
            return
        try:
            self.conn.close()
        except Exception:  # also: no connection was made
            pass

    def _abandon(self) -> None:
        """[XL-PG-16]: never talk on an inherited session, not even to close it: point its descriptor
        at /dev/null, so libpq's goodbye goes nowhere and the parent's session lives on."""
        try:
            if self.conn.closed:
                return
            fd = self.conn.pgconn.socket
        except Exception:
            return
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
        try:
            self.conn.pgconn.finish()
        except Exception:
            pass


def open_session(ns: PgNamespace, what: str, *, listen: Optional[str] = None) -> Session:
    """A new session for one object [XL-PG-5] (the planted defect "shared-session" reuses one)."""
    if DEFECT == "shared-session":
        cached = _shared.get(ns.url)
        if cached is not None and not cached.broken:
            cached.users += 1
            return cached
        session = Session(ns, what, listen=listen)
        _shared[ns.url] = session
        return session
    return Session(ns, what, listen=listen)


def _after_fork_in_child() -> None:
    for session in list(_live):
        session._abandon()
    _live.clear()
    _shared.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
