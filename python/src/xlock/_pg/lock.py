"""``xlock.Lock`` on a PostgreSQL namespace: a session-level advisory lock on the name's key [XL-PG-4]."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

import psycopg
from psycopg import errors as pgerr

from .._common import (
    IN_PROCESS_SLICE_S,
    claim_in_process,
    current_owner_matches,
    deadline_from,
    describe_timeout,
    seconds_until,
)
from .._errors import Cancelled, InvalidArgument, Lost, NotHeld, Timeout, WouldBlock, XLockError
from ..names import NameLike
from .base import PgHandle, ceil_ms
from .keys import key, split
from .session import DEFECT, Session, SessionGone, Statement

__all__ = ["PgLock"]

_CHECK = "current_setting('xlock.session_token', true), pg_backend_pid()"  # [XL-PG-9]
# A cancel request can arrive after the statement it was meant for and cancel the next one instead.
_LATE_CANCEL_RETRIES = 5


def _statements(suffix: str) -> tuple[Statement, Statement, Statement]:
    """The try, wait and unlock statements of a lock (``suffix`` "" or "_shared") [XL-PG-4]. The waiting
    one sets lock_timeout ($2: "<n>ms", or "0" for none) for its own transaction before it waits (CASE
    evaluates WHEN first): a timed acquisition is one round trip, and the session's lock_timeout stays 0
    [XL-PG-6, XL-PG-7]."""
    return (
        Statement(
            f"xlock_try{suffix}".encode(), f"SELECT pg_try_advisory_lock{suffix}($1::int8), {_CHECK}".encode()
        ),
        Statement(
            f"xlock_lock{suffix}".encode(),
            (
                "SELECT CASE WHEN set_config('lock_timeout', $2, true) IS NOT NULL THEN "
                f"pg_advisory_lock{suffix}($1::int8) END, {_CHECK}"
            ).encode(),
        ),
        Statement(f"xlock_unlock{suffix}".encode(), f"SELECT pg_advisory_unlock{suffix}($1::int8)".encode()),
    )


_STATEMENTS = {False: _statements(""), True: _statements("_shared")}
_MINE = (
    "FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 1 "
    "AND classid = %s::int8::oid AND objid = %s::int8::oid AND granted"
)


class PgLock(PgHandle):
    """A named lock in a PostgreSQL namespace, exclusive or shared (``shared=True``), held by this object's
    own session [XL-PG-5]; the same API as ``xlock.Lock``. ``xlock.Lock(name, namespace=URI)`` returns one.

    Raises at construction: ``InvalidName``; ``InvalidArgument`` for a malformed URI [XL-PG-1];
    ``BackendError`` if the server cannot be reached or refuses us [XL-PG-15]; ``UnsupportedBackend`` for a
    standby or a server older than 14 [XL-PG-6].
    """

    kind_word = "lock"

    def __init__(
        self,
        name: NameLike,
        *,
        namespace: object,
        shared: bool = False,
        reentrant: bool = False,
        timeout: Optional[float] = -1,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._setup(name, namespace, timeout)
        self.shared = bool(shared)
        self.reentrant = bool(reentrant)
        self.key = key("l", self._ns.label, self._name)
        self._classid, self._objid = split(self.key)
        self._describe(f"key {self.key}")
        suffix = "_shared" if self.shared else ""
        self._try_stmt, self._lock_stmt, self._unlock_stmt = _STATEMENTS[self.shared]
        self._key_param = (str(self.key).encode(),)
        self._drop_sql = f"SELECT pg_advisory_unlock{suffix}(%s::int8) {_MINE}"
        self._cond = threading.Condition(self._mutex)
        self._owner: object = None  # None free; set with _count 0: acquiring; _count > 0: held
        self._count = 0
        self._open_session()  # connect now: a bad server fails here, not at the first acquire
        self._closed = False

    def _reset_after_fork(self) -> None:
        self._cond = threading.Condition(self._mutex)
        self._owner = None
        self._count = 0

    # -- acquisition ----------------------------------------------------------------------------------

    # acquire(blocking=True, timeout=-1) -> bool is PgHandle's: ``acquire()`` waits in the server's
    # queue, ``acquire(timeout=s)`` at most ``s`` seconds (``lock_timeout``), ``acquire(blocking=False)``
    # makes one attempt [XL-PG-7]. Raises ``AlreadyHeld`` [XL-HOLD-3], ``UnsupportedBackend`` when a
    # pooler is detected [XL-PG-9], ``BackendError``. A ``KeyboardInterrupt`` cancels the server-side
    # wait and leaves nothing held or waiting [XL-PG-8].

    def _acquire_for(self, owner: object, blocking: bool, timeout: Optional[float]) -> None:
        self._forked()
        deadline_ns = deadline_from(timeout)
        with self._cond:  # another thread of this process holds or acquires this object [XL-HOLD-2]
            if claim_in_process(
                self,
                owner,
                blocking,
                timeout,
                deadline_ns,
                lambda: self._what,
                "is held by another thread through the same object",
                lambda: self._cond.wait(seconds_until(deadline_ns, IN_PROCESS_SLICE_S)),
            ):
                return  # a reentrant hold, counted
        try:
            self._server_acquire(blocking, timeout, deadline_ns)
        except BaseException:
            with self._cond:
                self._owner = None
                self._cond.notify()
                closed = self._closed
            if closed:
                self._finish_close()
            raise
        with self._cond:
            self._count = 1
            closed = self._closed
        if closed:  # closed by another thread while we waited: give it back and finish the close
            self._finish_close()
            raise InvalidArgument(f"{self._what} was closed while acquiring; nothing is held")

    def _server_acquire(self, blocking: bool, timeout: Optional[float], deadline_ns: Optional[int]) -> None:
        try:
            self._server_acquire_once(self._live_session(), blocking, timeout, deadline_ns)
        except SessionGone:
            # The idle session ended (terminated, server restarted): nothing was held, so a new session
            # may try again, once.
            if self._session is not None:
                self._session.close()
                self._session = None
            self._server_acquire_once(self._live_session(), blocking, timeout, deadline_ns)

    def _server_acquire_once(
        self, session: Session, blocking: bool, timeout: Optional[float], deadline_ns: Optional[int]
    ) -> None:
        if not blocking:
            if not self._try(session):
                raise WouldBlock(f"{self._what} is held by another session")
            return
        lock_timeout = b"0"  # none: wait in the server's queue as long as it takes
        if deadline_ns is not None:
            left = deadline_ns - time.monotonic_ns()
            if DEFECT == "lock-timeout-zero" and timeout == 0:
                self._wait(session, timeout, b"0")  # the planted defect: lock_timeout = 0 means no timeout
                return
            if left <= 0:  # timeout 0 or a passed deadline: one try, TIMEOUT [XL-PG-7, XL-WAIT-3]
                if not self._try(session):
                    raise self._timeout(timeout)
                return
            lock_timeout = b"%dms" % max(1, ceil_ms(left))  # rounded up, never 0 [XL-PG-7]
        self._wait(session, timeout, lock_timeout)

    def _try(self, session: Session) -> bool:
        got, token, pid = session.run(self._try_stmt, self._key_param, "trying the lock")
        self._check(session, token, pid, got == b"t")
        return got == b"t"

    def _wait(self, session: Session, timeout: Optional[float], lock_timeout: bytes) -> None:
        """The server-side wait; on any interruption, nothing stays granted or queued [XL-PG-8]."""
        try:
            row = session.run(
                self._lock_stmt, (*self._key_param, lock_timeout), "waiting for the lock", server_errors=True
            )
        except pgerr.LockNotAvailable:  # 55P03: lock_timeout fired [XL-PG-7]
            raise self._timeout(timeout) from None
        except pgerr.QueryCanceled:
            self._drop_if_granted(session)
            if self._cancelling:
                raise Cancelled(f"waiting for {self._what} was cancelled; nothing is held") from None
            if self._closed:
                raise InvalidArgument(f"{self._what} was closed while acquiring; nothing is held") from None
            raise session.error(RuntimeError("the wait was cancelled by someone else"), "waiting") from None
        except psycopg.Error as exc:
            raise session.error(exc, "waiting for the lock") from None
        except XLockError:
            raise
        except BaseException:
            # KeyboardInterrupt & co.: the session has cancelled the statement and read its result; if
            # the grant won the race, give it back [XL-PG-8, XL-WAIT-9].
            self._drop_if_granted(session)
            raise
        self._check(session, row[1], row[2], True)

    def _check(self, session: Session, token: Optional[bytes], pid: Optional[bytes], granted: bool) -> None:
        try:
            session.check_token(token.decode() if token else None, int(pid) if pid else None)
        except BaseException:
            if granted:
                try:
                    session.run(self._unlock_stmt, self._key_param, "undoing a lock granted through a pooler")
                except Exception:
                    pass
            session.close()
            self._session = None
            raise

    def _drop_if_granted(self, session: Session) -> None:
        if session.broken:
            session.close()
            self._session = None
            return
        try:
            session.one(self._drop_sql, (self.key, self._classid, self._objid), "undoing an interrupted wait")
        except Exception:
            session.close()  # ending the session ends its locks and its waits
            self._session = None

    def _timeout(self, timeout: Optional[float]) -> Timeout:
        return Timeout(f"{self._what} not acquired {describe_timeout(timeout)}")

    # -- release --------------------------------------------------------------------------------------

    def release(self) -> None:
        """Release the lock [XL-PG-4]. Raises ``NotHeld`` [XL-HOLD-6], or ``Lost`` if the session ended or
        no longer held the lock; the object is then not held [XL-PG-10]."""
        self._forked()
        with self._cond:
            if not self._count:
                raise NotHeld(f"{self._what} is not held by this object; nothing released")
            if self.reentrant:
                if not current_owner_matches(self._owner):
                    raise NotHeld(f"reentrant {self._what} is held by another thread [XL-HOLD-4]")
                if self._count > 1:
                    self._count -= 1
                    return
            try:
                self._server_release()
            finally:
                self._owner = None
                self._count = 0
                self._cond.notify()

    def _undo(self, got: Any) -> None:
        with self._cond:
            if self._count:
                self._count = 1
                try:
                    self._server_release()
                except Exception:
                    pass
                self._owner = None
                self._count = 0
                self._cond.notify()

    def _server_release(self) -> None:
        session = self._session
        if session is None or session.broken:
            raise self._lost(session, "its session has ended")
        for attempt in range(_LATE_CANCEL_RETRIES + 1):
            try:
                (released,) = session.run(self._unlock_stmt, self._key_param, "releasing", server_errors=True)
                break
            except SessionGone as exc:
                raise self._lost(session, f"its session has ended ({exc.detail})") from None
            except pgerr.QueryCanceled:  # a cancel meant for an earlier wait: nothing ran [XL-PG-8]
                if attempt == _LATE_CANCEL_RETRIES:
                    raise session.error(RuntimeError("the release was cancelled"), "releasing") from None
            except psycopg.Error as exc:
                raise session.error(exc, "releasing") from None
        if released != b"t":  # someone ran pg_advisory_unlock_all() or DISCARD ALL on our session
            raise self._lost(None, "its session no longer held the lock")

    def _lost(self, session: Optional[Session], why: str) -> Lost:
        if session is not None:
            session.close()
            if self._session is session:
                self._session = None
        return Lost(f"{self._what}: {why}; the lock is not held (another client may hold it now) [XL-PG-10]")

    def locked(self, verify: bool = False) -> bool:
        """True if this object holds the lock. With ``verify=True`` the server is asked, and a lock the
        session lost raises ``Lost`` (the object is then not held) [XL-PG-10]."""
        if self._forked() or not self._count:
            return False
        if verify:
            with self._cond:
                session = self._session
                if session is None or session.broken:
                    self._owner, self._count = None, 0
                    raise self._lost(session, "its session has ended")
                try:
                    row = session.one(f"SELECT count(*) {_MINE}", (self._classid, self._objid), "checking")
                except Exception:
                    self._owner, self._count = None, 0
                    raise self._lost(session, "its session has ended") from None
                if not row[0]:
                    self._owner, self._count = None, 0
                    raise self._lost(None, "its session no longer holds the lock")
        return True

    # -- lifetime -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release if held and end the session [XL-HOLD-10]. Idempotent. A wait in another thread is
        cancelled and ends with ``InvalidArgument``, holding nothing."""
        if self._forked():
            self._closed = True
            return
        with self._cond:
            if self._closed:
                return
            self._closed = True
            acquiring = self._owner is not None and not self._count
            self._owner = None
            self._count = 0
            self._cond.notify_all()
        if acquiring:
            self._cancel_wait()  # the waiting thread finishes the close
            return
        self._finish_close()

    def _finish_close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            if not session.broken:
                try:
                    session.one("SELECT pg_advisory_unlock_all()", None, "releasing at close")
                except Exception:
                    pass
            session.close()

    def __repr__(self) -> str:
        mode = "shared" if self.shared else "exclusive"
        state = "closed" if self._closed else "held" if self._count else "not held"
        return f"<xlock.Lock {self._name!r} {mode} {state} namespace={self._ns.shown!r} key={self.key}>"
