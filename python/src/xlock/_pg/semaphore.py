"""``xlock.Semaphore`` on a PostgreSQL namespace [XL-PG-13]: N slot keys, one statement tries them in order,
LISTEN/NOTIFY rings, the safety poll covers sessions that end without a word, and live participants agree
on the capacity through shared marker locks.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from .._common import deadline_from, describe_timeout
from .._errors import Cancelled, CapacityMismatch, InvalidArgument, NotHeld, Timeout, WouldBlock
from ..names import NameLike
from .base import PgHandle
from .keys import channel, key
from .session import DEFECT, Session, SessionGone

__all__ = ["MAX_CAPACITY", "PgSemaphore", "safety_polls"]

MAX_CAPACITY = 1000
FOREVER_NS = 1 << 62
_NS_PER_MS = 1_000_000
_CHECK = "current_setting('xlock.session_token', true), pg_backend_pid()"  # [XL-PG-9]
# The slots in one statement whose evaluation order SQL defines: stop at the first grant [XL-PG-13].
_TRY = (
    "WITH RECURSIVE t(n, got) AS ("
    " SELECT 1, pg_try_advisory_lock((%(keys)s::int8[])[1])"
    " UNION ALL SELECT n + 1, pg_try_advisory_lock((%(keys)s::int8[])[n + 1]) FROM t"
    " WHERE NOT got AND n < cardinality(%(keys)s::int8[]))"
    f" SELECT (SELECT n FROM t WHERE got), {_CHECK}"
)
_KEY_OF = "((classid::int8 << 32) | objid::int8)"
_HELD = (
    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 1"
    f" AND granted AND mode = 'ExclusiveLock' AND {_KEY_OF} = ANY(%s::int8[])"
)


def safety_polls(start_ns: int) -> list[int]:
    """The first safety polls of a wait that started at ``start_ns``: 1, 3, 7, 15, 31 ms [XL-WAIT-7]."""
    return [start_ns + ms * _NS_PER_MS for ms in (1, 3, 7, 15, 31)]


def _next_poll(start_ns: int, now_ns: int) -> int:
    """The next safety poll after ``now_ns``: 1, 3, 7, 15, 31 ms after the start, then every 16 ms."""
    for poll in safety_polls(start_ns):
        if poll > now_ns:
            return poll
    since = now_ns - (start_ns + 31 * _NS_PER_MS)
    return start_ns + 31 * _NS_PER_MS + (since // (16 * _NS_PER_MS) + 1) * 16 * _NS_PER_MS


class PgSemaphore(PgHandle):
    """A counting semaphore of ``capacity`` permits in a PostgreSQL namespace; the same API as
    ``xlock.Semaphore``. A permit whose holder's session ends comes back at once [XL-PG-13].

    Raises at construction, besides what ``PgLock`` raises: ``InvalidArgument`` for a capacity outside
    1..1000; ``CapacityMismatch`` if a live participant uses another capacity.
    """

    kind_word = "semaphore"

    def __init__(
        self,
        name: NameLike,
        capacity: int,
        *,
        namespace: object,
        timeout: Optional[float] = -1,
        allow_unsupported_fs: bool = False,
    ) -> None:
        self._setup(name, namespace, timeout)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidArgument(
                f"semaphore {self._name!r}: capacity must be an integer from 1 to {MAX_CAPACITY}, not "
                f"{capacity!r} [XL-CSEM-1]"
            )
        self.capacity = capacity
        label = self._ns.label
        self.key = key("s", label, self._name, 0)
        self._slot_keys = [key("s", label, self._name, i) for i in range(capacity)]
        self._marker = key("c", label, self._name, capacity)
        self._listen = channel(label, self._name)
        self._describe(f"capacity {capacity}")
        self._mine: list[int] = []  # slot indexes held, most recent last
        self._session_lock = threading.RLock()
        self._open_session()
        self._closed = False

    def _open_session(self) -> Session:
        session = super()._open_session()
        try:
            self._agree(session)
        except BaseException:
            session.close()
            self._session = None
            raise
        return session

    def _agree(self, session: Session) -> None:
        """Capacity agreement among live participants [XL-PG-13]: hold our marker, then look for others."""
        session.one("SELECT pg_advisory_lock_shared(%s::int8)", (self._marker,), "taking the capacity marker")
        others = [
            key("c", self._ns.label, self._name, m) for m in range(1, MAX_CAPACITY + 1) if m != self.capacity
        ]
        row = session.one(
            f"SELECT {_KEY_OF}, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid) "
            f"WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND {_KEY_OF} = ANY(%s::int8[]) "
            "LIMIT 1",
            (others,),
            "checking the capacity",
        )
        if row:
            theirs = others.index(row[0]) + 1
            theirs += theirs >= self.capacity
            session.one("SELECT pg_advisory_unlock_shared(%s::int8)", (self._marker,), "undoing the marker")
            raise CapacityMismatch(
                f"{self._what}: a live participant ({row[1] or 'another session'}) uses capacity {theirs}, "
                f"this object {self.capacity}; every participant must use the same capacity [XL-PG-13]"
            )

    def _reset_after_fork(self) -> None:
        self._mine = []
        self._session_lock = threading.RLock()

    @property
    def held(self) -> int:
        return len(self._mine)

    @property
    def slot(self) -> Optional[int]:
        """The slot index of the permit acquired last and still held, or ``None``."""
        return self._mine[-1] if self._mine else None

    @property
    def slots(self) -> tuple[int, ...]:
        """The slot indexes of every permit this object holds, in the order acquired."""
        return tuple(self._mine)

    def locked(self) -> bool:
        """True if this object holds at least one permit."""
        self._forked()
        return bool(self._mine)

    # -- acquisition ----------------------------------------------------------------------------------

    # acquire(blocking=True, timeout=-1) -> bool is PgHandle's: one permit, its index in ``slot``;
    # ``blocking=False`` tries once; ``timeout`` bounds the wait (never early) [XL-WAIT-3, XL-WAIT-11].

    def _acquire_for(self, owner: object, blocking: bool, timeout: Optional[float]) -> int:
        self._forked()
        start_ns = time.monotonic_ns()
        deadline_ns = deadline_from(timeout)
        if self._closed:
            raise InvalidArgument(f"{self._what} is closed")
        slot = self._try()
        if slot is not None:
            return slot
        if not blocking:
            raise WouldBlock(f"{self._what}: every permit is held")
        end_ns = FOREVER_NS if deadline_ns is None else deadline_ns
        while True:  # XL-WAIT-12 with LISTEN in place of the bell word [XL-PG-13]
            if self._cancelling:
                raise Cancelled(f"waiting for {self._what} was cancelled; nothing is held")
            if self._closed:
                raise InvalidArgument(f"{self._what} was closed while acquiring; nothing is held")
            now = time.monotonic_ns()
            if now >= end_ns:
                raise Timeout(f"{self._what}: no permit {describe_timeout(timeout)}")
            wake = min(end_ns, _next_poll(start_ns, now))
            self._sleep(max(0, wake - now))
            slot = self._try()  # the LISTEN is older than this try: no ring is lost
            if slot is not None:
                return slot

    def _sleep(self, ns: int) -> None:
        """Until a NOTIFY on our channel or ``ns`` nanoseconds pass."""
        with self._session_lock:
            session = self._live_session()
            try:
                for _ in session.conn.notifies(timeout=ns / 1e9, stop_after=1):
                    pass
            except Exception as exc:
                if session.broken:
                    session.close()
                    self._session = None
                    return  # the next try opens a new session
                raise session.error(exc, "waiting for a release") from None

    def _try(self) -> Optional[int]:
        with self._session_lock:
            held = set(self._mine)
            free = [i for i in range(self.capacity) if i not in held]
            if not free:
                return None
            try:
                return self._try_slots(self._live_session(), free)
            except SessionGone:
                if self._mine:
                    raise
                if self._session is not None:
                    self._session.close()
                    self._session = None
                return self._try_slots(self._live_session(), free)

    def _try_slots(self, session: Session, free: list[int]) -> Optional[int]:
        keys = [self._slot_keys[i] for i in free]
        n, token, pid = session.one(_TRY, {"keys": keys}, "trying the slots")
        try:
            session.check_token(token, pid)
        except BaseException:
            session.close()
            self._session = None
            raise
        if n is None:
            return None
        slot: int = free[n - 1]
        self._mine.append(slot)
        # The session must hold exactly the permits this object counts [XL-PG-13].
        (count,) = session.one(_HELD, ([self._slot_keys[i] for i in self._mine],), "checking the slots")
        if count != len(self._mine):
            self._mine.pop()
            session.one("SELECT pg_advisory_unlock(%s::int8)", (self._slot_keys[slot],), "undoing a slot")
            raise InvalidArgument(
                f"{self._what}: the session holds {count} slots, expected {len(self._mine) + 1}"
            )
        return slot

    # -- release --------------------------------------------------------------------------------------

    def release(self) -> None:
        """Give back the most recently acquired permit and ring the waiters. ``NotHeld`` without one;
        ``Lost`` if the session ended or no longer held it [XL-PG-10]."""
        self._forked()
        with self._session_lock:
            if not self._mine:
                raise NotHeld(f"{self._what}: this object holds no permit; nothing released")
            slot = self._mine.pop()
            session = self._session
            if session is None or session.broken:
                self._mine.clear()
                raise self._lost(session)
            try:
                (released, _) = session.one(
                    "SELECT pg_advisory_unlock(%s::int8), pg_notify(%s, '')",
                    (self._slot_keys[slot], self._listen),
                    "releasing",
                )
            except SessionGone:
                self._mine.clear()
                raise self._lost(session) from None
            if not released:
                raise self._lost(None)

    def _lost(self, session: Optional[Session]) -> Exception:
        if session is not None:
            session.close()
            if self._session is session:
                self._session = None
        return session_lost(self._what)

    def _undo(self, got: object) -> None:
        try:
            self.release()
        except Exception:
            pass

    def close(self) -> None:
        """Give back every permit (ringing the waiters) and the capacity marker, then end the session.
        Idempotent. The server's release at the end of a session is asynchronous: released first, nothing
        of this object is left for an opener after close returns to meet [XL-PG-13, XL-HOLD-10]."""
        if self._forked():
            self._closed = True
            return
        if self._closed:
            return
        self._closed = True
        with self._session_lock:
            session, self._session = self._session, None
            if session is None:
                return
            if not session.broken:
                try:
                    if self._mine:
                        session.one(
                            "SELECT pg_advisory_unlock_all(), pg_notify(%s, '')", (self._listen,), "closing"
                        )
                    elif DEFECT != "close-marker-async":  # test-only: left to the end of the session
                        session.one("SELECT pg_advisory_unlock_all()", None, "closing")
                except Exception:
                    pass
            self._mine.clear()
            session.close()

    def __repr__(self) -> str:
        return (
            f"<xlock.Semaphore {self._name!r} capacity={self.capacity} held={len(self._mine)} "
            f"namespace={self._ns.shown!r}>"
        )


def session_lost(what: str) -> Exception:
    from .._errors import Lost

    return Lost(f"{what}: its session ended or no longer held the permit; it is not held [XL-PG-10]")
