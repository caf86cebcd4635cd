"""PostgreSQL namespaces (spec §16), against a throwaway server this module starts and stops.

Every case runs for the drivers whose hello claims `pg`, alone and in pairs; the others get no column
(the matrix says which did not claim it). The server: `xlock_conformance/pgserver.py`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from xlock_conformance.checks import blocked_then_freed, timed_failure
from xlock_conformance.driver import Driver
from xlock_conformance.lab import WAKE_DEADLINE
from xlock_conformance.pgserver import PASSWORD, PASSWORD_ROLE, PgBouncer, PgServer, PgUnavailable
from xlock_conformance.plugin import needs, spec
from xlock_conformance.spec import find_repo

pytestmark = needs("pg")
NAME = "conformance-pg"
OVERSHOOT_S = 0.05  # a timed wait ends within its deadline + 50 ms (XL-THREAT-2's bound)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    try:
        server = PgServer()
        server.start()
        server.setup_roles()
    except PgUnavailable as exc:
        pytest.skip(f"no PostgreSQL server here: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _open(driver: Driver, url: str, name: str = NAME, **args: Any) -> str:
    reply = driver.call("open", kind=args.pop("kind", "lock"), name=name, namespace=url, **args)
    assert reply.get("path") is None and reply.get("bell") is None, (
        f"driver '{driver.label}': an object in a PostgreSQL namespace has no file and no bell [XL-PG-12]: "
        f"{reply.data}"
    )
    handle: str = reply["handle"]
    return handle


def _backends(pg: PgServer, driver: Driver) -> list[int]:
    assert driver.pid is not None
    return pg.backends_of(driver.pid)


def _terminate(pg: PgServer, backends: list[int]) -> None:
    for backend in backends:
        pg.terminate(backend)


def _one_holds(
    holder_spec: Any, waiter_spec: Any, lab: Any, pg: PgServer, *extra: str
) -> tuple[Driver, str, Driver, str]:
    """A holder holding lock NAME on the test server and a waiter with it open: (holder, hh, waiter, hw)."""
    need = ["pg", *extra]
    holder, waiter = lab.start(holder_spec, need=need), lab.start(waiter_spec, need=need)
    url = pg.url()
    hh, hw = _open(holder, url), _open(waiter, url)
    holder.call("acquire", handle=hh)
    return holder, hh, waiter, hw


def _until(condition: Any, what: str, timeout: float = WAKE_DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.005)


def _queued(pg: PgServer, waiter: Driver) -> Any:
    """A waiting (not granted) pg_locks entry of one of driver `waiter`'s sessions, if any."""
    return [row for row in pg.locks_of(_backends(pg, waiter)) if row[4] == "f"]


def _server_now(pg: PgServer) -> str:
    """The server's clock now, in seconds since the epoch (text), for `_tried`."""
    return pg.sql("SELECT extract(epoch FROM clock_timestamp())")[0][0]


def _tried(pg: PgServer, waiter: Driver, since: str) -> Any:
    """A session of driver `waiter` idle after a try of a semaphore's slots (the recursive query of
    XL-PG-13) begun after `since`: its wait found no permit and waits for a NOTIFY or a safety poll."""
    pids = ",".join(str(p) for p in _backends(pg, waiter)) or "0"
    return pg.sql(
        f"SELECT pid FROM pg_stat_activity WHERE pid IN ({pids}) AND state = 'idle' AND "
        f"query ~* '^\\s*with\\s+recursive' AND query_start > to_timestamp({float(since)!r})"
    )


def _once(condition: Any, what: str, free: Any) -> Any:
    """`free`, to call once `condition` holds (within WAKE_DEADLINE): the waiter's wait is really in the
    server before it is freed, whatever the blocked window of blocked_then_freed saw."""

    def run() -> Any:
        _until(condition, what)
        return free()

    return run


@spec("XL-PG-3", "XL-PG-12")
def test_pg_map(one, lab):
    """Every vector of pg_keys.json, computed by the driver with no connection."""
    driver = lab.start(one, need=["pg", "map"])
    repo = find_repo(None)
    assert repo is not None, "run from an xlock checkout (spec/vectors/pg_keys.json)"
    cases = json.loads((repo / "spec" / "vectors" / "pg_keys.json").read_text(encoding="utf-8"))["cases"]
    checked = 0
    for case in cases:
        key = {"l": "l", "s": f"s{case.get('extra')}"}.get(case["kind"])
        if key not in ("l", "s0", "s999"):
            continue
        reply = driver.call("map", name=case["name"], dev=1, ino=1, label=case["label"])
        keys = reply.get("pg_keys")
        assert isinstance(keys, dict), (
            f"driver '{driver.label}': map with a label gives no pg_keys: {reply.data}"
        )
        assert keys.get(key) == case["key"], (
            f"driver '{driver.label}': {case['description']}: key {key} of {case['name']!r} under label "
            f"{case['label']!r} is {keys.get(key)}, the vector says {case['key']} [XL-PG-3]"
        )
        checked += 1
    assert checked >= 10, f"only {checked} vectors of kinds l, s0, s999 in pg_keys.json"


@spec("XL-PG-4", "XL-PG-5", "XL-HOLD-1")
def test_pg_lock_exclusive(pair, lab, pg):
    for first, second in (pair, pair[::-1]):
        a, b = lab.start(first, need=["pg"]), lab.start(second, need=["pg"])
        url = pg.url()
        ha, hb = _open(a, url), _open(b, url)
        a.call("acquire", handle=ha)
        b.fails("WOULD_BLOCK", "try_acquire", handle=hb, why=f"driver '{a.label}' holds the lock")
        h2 = _open(a, url)  # a second object in the same driver: its own session [XL-PG-5]
        a.fails("WOULD_BLOCK", "try_acquire", handle=h2, why="another object of this driver holds it")
        blocked_then_freed(
            b,
            "acquire",
            {"handle": hb},
            _once(
                partial(_queued, pg, b),
                f"driver '{b.label}' waits in pg_locks",
                partial(a.call, "release", handle=ha),
            ),
            f"driver '{a.label}' holds the lock",
        )
        rows = pg.advisory_locks(b.call("open", kind="lock", name=NAME, namespace=url)["key"])
        assert [r["mode"] for r in rows if r["granted"] == "t"] == ["ExclusiveLock"], rows
        b.call("release", handle=hb)


@spec("XL-PG-4", "XL-PG-7")
def test_pg_shared(pair, lab, pg):
    a, b = lab.start(pair[0], need=["pg", "shared"]), lab.start(pair[1], need=["pg", "shared"])
    url = pg.url(tcp=True)
    sa, sb = _open(a, url, shared=True), _open(b, url, shared=True)
    xa = _open(a, url)
    a.call("acquire", handle=sa)
    b.call("try_acquire", handle=sb)
    a.fails("WOULD_BLOCK", "try_acquire", handle=xa, why="two shared holders")
    a.call("release", handle=sa)
    a.fails("WOULD_BLOCK", "try_acquire", handle=xa, why=f"driver '{b.label}' still holds it shared")
    b.call("release", handle=sb)
    a.call("try_acquire", handle=xa)
    b.fails("WOULD_BLOCK", "try_acquire", handle=sb, why="an exclusive holder")


@spec("XL-PG-18")
def test_pg_remove(pair, lab, pg):
    """Removal has nothing to remove: removed=false when free, WOULD_BLOCK when another driver holds the
    lock (or a permit), and a removal that tried leaves nothing held."""
    need = ["pg", "semaphore", "remove"]
    for first, second in (pair, pair[::-1]):
        a, b = lab.start(first, need=need), lab.start(second, need=need)
        url = pg.url()
        for args in ({"kind": "lock"}, {"kind": "semaphore", "capacity": 2}):
            reply = b.call("remove", name=NAME, namespace=url, **args)
            assert reply.get("removed") is False, (
                f"driver '{b.label}': a PostgreSQL namespace has nothing to remove [XL-PG-18]: {reply.data}"
            )
        ha = _open(a, url)
        a.call("acquire", handle=ha)
        b.fails(
            "WOULD_BLOCK", "remove", kind="lock", name=NAME, namespace=url, why=f"driver '{a.label}' holds it"
        )
        a.call("release", handle=ha)
        assert b.call("remove", kind="lock", name=NAME, namespace=url).get("removed") is False
        a.call("try_acquire", handle=ha)  # the removals hold nothing
        a.call("release", handle=ha)
        hs = _open(a, url, kind="semaphore", capacity=2)
        a.call("acquire", handle=hs)
        b.fails(
            "WOULD_BLOCK",
            "remove",
            kind="semaphore",
            name=NAME,
            capacity=2,
            namespace=url,
            why=f"driver '{a.label}' holds a permit",
        )
        a.call("try_acquire", handle=hs)  # the failed removal gave back the slot it took
        a.call("release", handle=hs)
        a.call("release", handle=hs)
        a.call("close", handle=hs)
        a.call("close", handle=ha)


@spec("XL-PG-7", "XL-WAIT-3")
def test_pg_timed(pair, lab, pg):
    holder, hh, waiter, hw = _one_holds(pair[0], pair[1], lab, pg, "timeout")
    for timeout_ms in (1, 30, 200):
        t0 = time.monotonic()
        timed_failure(waiter, hw, timeout_ms)
        late = time.monotonic() - t0 - timeout_ms / 1000
        assert late < OVERSHOOT_S, (
            f"driver '{waiter.label}': acquire with timeout_ms={timeout_ms} failed {late * 1000:.1f} ms "
            f"after its deadline (bound {OVERSHOOT_S * 1000:.0f} ms)"
        )
    left = pg.locks_of(_backends(pg, waiter))
    assert left == [], f"driver '{waiter.label}': timed-out waits left entries in pg_locks: {left}"
    blocked_then_freed(
        waiter,
        "acquire",
        {"handle": hw, "timeout_ms": 10_000},
        _once(
            partial(_queued, pg, waiter),
            f"driver '{waiter.label}' waits in pg_locks",
            partial(holder.call, "release", handle=hh),
        ),
        f"driver '{holder.label}' holds the lock",
    )


@spec("XL-PG-7", "XL-WAIT-3")
def test_pg_timeout_zero(pair, lab, pg):
    """Timeout 0 is one try failing with TIMEOUT — never lock_timeout = 0, which means no timeout."""
    holder, hh, waiter, hw = _one_holds(pair[0], pair[1], lab, pg, "timeout")
    waiter.fails(
        "TIMEOUT",
        "acquire",
        handle=hw,
        timeout_ms=0,
        timeout=2.0,
        why="timeout 0 is one attempt [XL-PG-7]; a driver that does not answer has blocked",
    )
    holder.call("release", handle=hh)
    waiter.call("acquire", handle=hw, timeout_ms=0)


@spec("XL-PG-11", "XL-HOLD-10")
def test_pg_death(pair, lab, pg):
    for tcp in (False, True):
        holder, waiter = lab.start(pair[0], need=["pg"]), lab.start(pair[1], need=["pg"])
        url = pg.url(tcp=tcp)
        holder.call("acquire", handle=_open(holder, url))
        hw = _open(waiter, url)
        blocked_then_freed(
            waiter,
            "acquire",
            {"handle": hw},
            _once(partial(_queued, pg, waiter), f"driver '{waiter.label}' waits in pg_locks", holder.kill),
            f"driver '{holder.label}' holds the lock",
        )
        waiter.call("release", handle=hw)


@spec("XL-PG-10")
def test_pg_terminated(pair, lab, pg):
    """pg_terminate_backend of the holder: the waiter acquires; the holder's next release is LOST."""
    holder, hh, waiter, hw = _one_holds(pair[0], pair[1], lab, pg)
    backends = _backends(pg, holder)
    assert backends, (
        f"driver '{holder.label}': no session with application_name 'xlock/1 … pid={holder.pid} …' [XL-PG-6]"
    )
    blocked_then_freed(
        waiter,
        "acquire",
        {"handle": hw},
        _once(
            partial(_queued, pg, waiter),
            f"driver '{waiter.label}' waits in pg_locks",
            partial(_terminate, pg, backends),
        ),
        f"driver '{holder.label}' holds the lock",
    )
    holder.fails("LOST", "release", handle=hh, why="its session was terminated [XL-PG-10]")
    assert not holder.call("locked", handle=hh)["locked"]
    holder.fails("NOT_HELD", "release", handle=hh, why="after LOST the object is not held")
    waiter.call("release", handle=hw)
    holder.call("acquire", handle=hh, timeout_ms=5000)  # a new session


@spec("XL-PG-10", "XL-PG-17")
def test_pg_server_restart(one, lab, pg):
    holder = lab.start(one, need=["pg"])
    url = pg.url()
    hh = _open(holder, url)
    holder.call("acquire", handle=hh)
    pg.restart()
    holder.fails("LOST", "release", handle=hh, why="the server restarted: every session ended [XL-PG-10]")
    holder.call("acquire", handle=hh, timeout_ms=5000)
    holder.call("release", handle=hh)


@spec("XL-PG-6")
def test_pg_role_idle_timeout(one, lab, pg):
    """A role's idle_session_timeout must not end a healthy holder's session."""
    pg.sql("DO $$BEGIN CREATE ROLE xlock_idle LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$")
    pg.sql("ALTER ROLE xlock_idle SET idle_session_timeout = '1s'")
    holder = lab.start(one, need=["pg"])
    hh = _open(holder, pg.url(user="xlock_idle"))
    holder.call("acquire", handle=hh)
    time.sleep(3)  # the property is "held after three times the role's timeout": a duration, not a sync
    other = lab.start(one, need=["pg"])
    other.fails("WOULD_BLOCK", "try_acquire", handle=_open(other, pg.url()), why="the holder still holds it")
    holder.call("release", handle=hh)


@spec("XL-HOLD-3", "XL-HOLD-4", "XL-PG-5")
def test_pg_already_held(one, lab, pg):
    driver = lab.start(one, need=["pg", "reentrant"])
    url = pg.url()
    h = _open(driver, url)
    driver.call("acquire", handle=h)
    driver.fails("ALREADY_HELD", "acquire", handle=h, timeout_ms=100, why="this object holds it [XL-HOLD-3]")
    driver.call("release", handle=h)
    driver.fails("NOT_HELD", "release", handle=h, why="PostgreSQL's re-entrant count is never used")
    r = _open(driver, url, reentrant=True)
    driver.call("acquire", handle=r)
    driver.call("acquire", handle=r)
    driver.call("release", handle=r)
    other = _open(driver, url)
    driver.fails("WOULD_BLOCK", "try_acquire", handle=other, why="the reentrant object holds it once more")
    driver.call("release", handle=r)
    driver.call("try_acquire", handle=other)


@spec("XL-PG-8", "XL-WAIT-9")
def test_pg_interrupt(one, lab, pg):
    """SIGINT to the driver during a server-side wait: INTERRUPTED, and its session has no granted and no
    waiting entry left, even after the holder releases; the object is usable again."""
    holder, hh, waiter, hw = _one_holds(one, one, lab, pg)
    rid = waiter.send("acquire", handle=hw)
    backends = _backends(pg, waiter)
    _until(lambda: pg.locks_of(backends), f"driver '{waiter.label}' waits in pg_locks")
    assert waiter.pid is not None
    os.kill(waiter.pid, signal.SIGINT)
    reply = waiter.wait(rid, WAKE_DEADLINE)
    assert reply.error == "INTERRUPTED", f"driver '{waiter.label}': SIGINT during acquire gave {reply.data}"
    assert pg.locks_of(backends) == [], f"entries left after the interruption: {pg.locks_of(backends)}"
    # The server grants a wait still queued inside the release (the releasing backend wakes the queue
    # before pg_advisory_unlock returns), so pg_locks shows any such grant once release has returned.
    holder.call("release", handle=hh)
    assert pg.locks_of(backends) == [], f"a wait was still queued and got the lock: {pg.locks_of(backends)}"
    waiter.call("try_acquire", handle=hw)


@spec("XL-PG-9")
def test_pg_pooler(one, lab, pg):
    """Behind PgBouncer in transaction mode, the second session's setup replaces the first's token."""
    try:
        bouncer = PgBouncer(pg)
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    try:
        a, b = lab.start(one, need=["pg"]), lab.start(one, need=["pg"])
        url = bouncer.url()
        ha = a.call("open", kind="lock", name=NAME, namespace=url)
        _open(b, url)
        a.fails(
            "UNSUPPORTED_BACKEND",
            "try_acquire",
            handle=ha["handle"],
            why="both sessions run on PgBouncer's one server connection [XL-PG-9]",
        )
        assert pg.advisory_locks(ha["key"]) == [], (
            f"a lock stayed on the pooled backend: {pg.advisory_locks(ha['key'])}"
        )
    finally:
        bouncer.stop()


@spec("XL-PG-14", "XL-PG-15")
def test_pg_password_never_shown(pair, lab, pg):
    a, b = lab.start(pair[0], need=["pg", "timeout"]), lab.start(pair[1], need=["pg", "timeout"])
    good = pg.url(tcp=True, user=PASSWORD_ROLE, password=PASSWORD)
    bad = pg.url(tcp=True, user=PASSWORD_ROLE, password=PASSWORD + "x")
    ha, hb = _open(a, good), _open(b, good)
    a.call("acquire", handle=ha)
    b.fails("WOULD_BLOCK", "try_acquire", handle=hb)
    b.fails("TIMEOUT", "acquire", handle=hb, timeout_ms=10)
    a.fails("ALREADY_HELD", "acquire", handle=ha, timeout_ms=10)
    b.fails("NOT_HELD", "release", handle=hb)
    reply = b.fails(
        "BACKEND_ERROR", "open", kind="lock", name=NAME, namespace=bad, why="the password is wrong [XL-PG-15]"
    )
    assert PASSWORD_ROLE in reply["message"], f"the error does not name the user: {reply['message']}"
    b.fails("INVALID_ARGUMENT", "open", kind="lock", name=NAME, namespace=good + "?xlock_nope=1")
    a.call("release", handle=ha)
    for d in (a, b):
        d.kill()
        text = "\n".join(list(d.trace) + list(d.stderr_tail))
        sent = [line for line in d.trace if " > " in line]
        seen = text.count(PASSWORD) - sum(line.count(PASSWORD) for line in sent)
        assert seen == 0, f"driver '{d.label}' printed the password [XL-PG-14]:\n{text}"


@spec("XL-PG-1", "XL-PG-6", "XL-PG-15")
def test_pg_bad_backends(one, lab, pg):
    driver = lab.start(one, need=["pg"])
    driver.fails(
        "INVALID_ARGUMENT",
        "open",
        kind="lock",
        name=NAME,
        namespace="postgresql://[::1/x",
        why="a URI libpq rejects [XL-PG-1]",
    )
    driver.fails(
        "INVALID_ARGUMENT",
        "open",
        kind="lock",
        name=NAME,
        namespace=pg.url(xlock_namespace=""),
        why="an empty label breaks §3 [XL-PG-2]",
    )
    dead = f"postgresql://xlock@127.0.0.1:{pg.port + 1 if pg.port < 65535 else 1}/xlock?connect_timeout=2"
    t0 = time.monotonic()
    reply = driver.fails("BACKEND_ERROR", "open", kind="lock", name=NAME, namespace=dead, timeout=5)
    assert time.monotonic() - t0 < 3, "an unreachable server is reported within the connect timeout"
    assert "127.0.0.1" in reply["message"], f"the error does not name the server: {reply['message']}"
    standby = pg.standby()
    try:
        driver.fails(
            "UNSUPPORTED_BACKEND",
            "open",
            kind="lock",
            name=NAME,
            namespace=standby.url(),
            why="a standby's locks do not exclude with the primary's [XL-PG-6]",
        )
    finally:
        standby.stop()  # its WAL sender counts against the primary's max_wal_senders


@spec("XL-PG-13", "XL-CSEM-5", "XL-CSEM-6")
def test_pg_semaphore(pair, lab, pg):
    need = ["pg", "semaphore", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    url = pg.url()
    ha, hb = _open(a, url, kind="semaphore", capacity=2), _open(b, url, kind="semaphore", capacity=2)
    b.fails(
        "CAPACITY_MISMATCH",
        "open",
        kind="semaphore",
        name=NAME,
        capacity=3,
        namespace=url,
        why="live participants use capacity 2 [XL-PG-13]",
    )
    slots = {a.call("acquire", handle=ha)["slot"], b.call("acquire", handle=hb)["slot"]}
    assert slots == {0, 1}, f"two permits of capacity 2 are slots 0 and 1, not {slots}"
    b.fails("WOULD_BLOCK", "try_acquire", handle=hb)
    timed_failure(b, hb, 30)
    since = _server_now(pg)
    blocked_then_freed(
        b,
        "acquire",
        {"handle": hb, "timeout_ms": 10_000},
        _once(
            partial(_tried, pg, b, since),
            f"driver '{b.label}' found no permit and waits",
            partial(a.call, "release", handle=ha),
        ),
        "every permit is held",
    )
    # A holder that dies rings nothing: the waiter's safety poll finds the permit (within WAKE_DEADLINE,
    # long before its own deadline's last try).
    since = _server_now(pg)
    blocked_then_freed(
        a,
        "acquire",
        {"handle": ha, "timeout_ms": 10_000},
        _once(partial(_tried, pg, a, since), f"driver '{a.label}' found no permit and waits", b.kill),
        f"driver '{b.label}' holds both permits",
    )


@spec("XL-PG-13", "XL-HOLD-10")
def test_pg_semaphore_close(one, lab, pg):
    """Closing a semaphore gives back its capacity marker (held while open, also without a permit) and
    waits for the server's answer before its session ends, whose release by the server is asynchronous:
    with the driver's sessions stopped (SIGSTOP), close does not return; once it has, an opener of another
    capacity never meets the closed object."""
    d = lab.start(one, need=["pg", "semaphore"])
    url = pg.url()
    h = _open(d, url, name="closing", kind="semaphore", capacity=2)
    backends = _backends(pg, d)
    assert backends, f"driver '{d.label}' has no session on the server after opening a semaphore"
    for backend in backends:
        os.kill(backend, signal.SIGSTOP)
    try:
        rid = d.send("close", handle=h)
        d.no_reply_within(
            rid, 0.5, "close returned while the server could not answer: the marker was not given back first"
        )
    finally:
        for backend in backends:
            os.kill(backend, signal.SIGCONT)
    reply = d.wait(rid)
    assert reply.ok, f"driver '{d.label}': close failed with {reply.error}: {reply.get('message')}"
    _open(d, url, name="closing", kind="semaphore", capacity=3)  # no CAPACITY_MISMATCH [XL-PG-13]


@spec("XL-PG-16", "XL-HOLD-7")
def test_pg_fork(one, lab, pg):
    """A forked child holds nothing and never talks on the parent's session: after the child is gone, the
    parent still holds the lock."""
    parent, other = lab.start(one, need=["pg", "fork"]), lab.start(one, need=["pg"])
    url = pg.url()
    hp, ho = _open(parent, url), _open(other, url)
    parent.call("acquire", handle=hp)
    report = parent.call("fork_check", handle=hp)
    assert (report["release"], report["locked"], report["try_acquire"]) == (
        "NOT_HELD",
        False,
        "WOULD_BLOCK",
    ), f"driver '{parent.label}': in the forked child {report.data} [XL-HOLD-7]"
    os.kill(report["child_pid"], signal.SIGKILL)
    _until(lambda: _reaped(report["child_pid"]), "the forked child is gone")
    other.fails(
        "WOULD_BLOCK",
        "try_acquire",
        handle=ho,
        why=f"driver '{parent.label}' still holds the lock after its forked child died [XL-PG-16]",
    )
    assert parent.call("locked", handle=hp, verify=True)["locked"]


def _reaped(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
