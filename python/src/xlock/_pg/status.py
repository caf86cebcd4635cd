"""Who holds and who waits in a PostgreSQL namespace [XL-PG-12]: ``pg_locks`` joined with
``pg_stat_activity``; the client's pid and host come from the ``application_name`` xlock sets (XL-PG-6)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from ..names import NameLike
from .keys import key, split
from .session import Session

__all__ = ["Entry", "Process", "object_keys", "query"]

_APP = re.compile(r"^xlock/1 (?P<binding>\S+) pid=(?P<pid>\d+) host=(?P<host>.*)$")
_QUERY = """
SELECT ((l.classid::int8 << 32) | l.objid::int8) AS key, l.mode, l.granted, l.pid,
       coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local'), a.client_port, a.state,
       pg_blocking_pids(l.pid)
FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database
      WHERE datname = current_database()) AND ((l.classid::int8 << 32) | l.objid::int8) = ANY(%s::int8[])
ORDER BY key, l.granted DESC, l.pid
"""


@dataclass
class Process:
    backend_pid: int
    mode: str  # "exclusive" or "shared"
    application_name: str
    client: str  # address:port or "local"
    state: Optional[str]
    blocked_by: list[int] = field(default_factory=list)

    @property
    def client_pid(self) -> Optional[int]:
        m = _APP.match(self.application_name)
        return int(m["pid"]) if m else None

    @property
    def client_host(self) -> Optional[str]:
        m = _APP.match(self.application_name)
        return m["host"] if m else None


@dataclass
class Entry:
    name: str
    kind: str  # "lock", "semaphore slot" or "capacity marker"
    extra: Optional[int]
    key: int
    holders: list[Process] = field(default_factory=list)
    waiters: list[Process] = field(default_factory=list)


def object_keys(
    label: str, name: NameLike, capacity: Optional[int] = None
) -> dict[int, tuple[str, Optional[int]]]:
    """Every key a name may use under a label: its lock, slots and capacity markers [XL-PG-3]."""
    keys: dict[int, tuple[str, Optional[int]]] = {key("l", label, name): ("lock", None)}
    slots = range(capacity) if capacity is not None else range(1000)
    for i in slots:
        keys[key("s", label, name, i)] = ("semaphore slot", i)
    for n in range(1, 1001):
        keys[key("c", label, name, n)] = ("capacity marker", n)
    return keys


def query(session: Session, label: str, names: list[str]) -> list[Entry]:
    """The held and waited-for keys of ``names``, holders first."""
    wanted: dict[int, tuple[str, str, Optional[int]]] = {}
    for name in names:
        for k, (kind, extra) in object_keys(label, name).items():
            wanted[k] = (name, kind, extra)
    rows = session.conn.execute(_QUERY, (list(wanted),)).fetchall()
    entries: dict[int, Entry] = {}
    for k, mode, granted, pid, app, addr, port, state, blockers in rows:
        name, kind, extra = wanted[k]
        entry = entries.setdefault(k, Entry(name, kind, extra, k))
        client = addr if port is None or port < 0 else f"{addr}:{port}"
        proc = Process(
            pid, "shared" if mode == "ShareLock" else "exclusive", app, client, state, list(blockers or [])
        )
        (entry.holders if granted else entry.waiters).append(proc)
    return list(entries.values())


def split_key(k: int) -> tuple[int, int]:
    return split(k)
