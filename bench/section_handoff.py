"""Sections 2, 3 and 5b: two-process hand-offs (blocking, timed, timed wake-up, semaphores)."""

import itertools
import os
import statistics
from collections.abc import Iterator
from typing import Any, Optional

import handoff
from common import BENCH, PY, SEMAPHORES, fresh_namespace, progress, uses_semaphore


def actor_argv(impl: str) -> list[str]:
    if impl == "raw-c":
        return [os.path.join(BENCH, "build", "raw_actor")]
    if impl == "raw-c-recheck":
        return [os.path.join(BENCH, "build", "raw_actor"), "recheck"]
    if impl == "raw-ruby":
        return ["ruby", os.path.join(BENCH, "rb_actor.rb")]
    return [PY, os.path.join(BENCH, "actor.py"), impl]


class Config:
    """One ping-pong configuration: a row of a table, measured in one or more sessions."""

    def __init__(
        self,
        table: str,
        row: dict[str, Any],
        argv_a: list[str],
        argv_b: list[str],
        rounds: int,
        sessions: int = 1,
        env: Optional[dict[str, str]] = None,
        **ping: Any,
    ) -> None:
        self.table, self.row, self.argv_a, self.argv_b = table, row, argv_a, argv_b
        self.rounds, self.sessions, self.env, self.ping = rounds, sessions, env, ping
        self.delays: list[int] = []
        self.a_to_b: list[int] = []
        self.b_to_a: list[int] = []
        self.table_rows: list[dict[str, Any]] = []  # the results table the row goes to


def run_configs(configs: list[Config], ns: str) -> None:
    """Run every configuration's sessions interleaved: session 1 of all, then session 2 of all, ...

    So a baseline and the rows compared with it are sampled across the same stretch of time, and a
    burst of background load hits them alike. A row's figures are over all its sessions' rounds.
    """
    for session in range(max(c.sessions for c in configs)):
        for c in configs:
            if session >= c.sessions:
                continue
            progress(
                "{}: {}, session {}/{}, {} rounds".format(
                    c.table, c.row.get("pair"), session + 1, c.sessions, c.rounds
                )
            )
            delays = handoff.ping_pong(c.argv_a, c.argv_b, ns, c.rounds, env=c.env, **c.ping)
            c.delays += delays
            c.a_to_b += delays[0::2]  # A releases first, then the roles alternate
            c.b_to_a += delays[1::2]
    for c in configs:
        c.row.update(
            handoff.summarize(c.delays),
            sessions=c.sessions,
            median_a_to_b_us=statistics.median(c.a_to_b) / 1000.0 if c.a_to_b else None,
            median_b_to_a_us=statistics.median(c.b_to_a) / 1000.0 if c.b_to_a else None,
        )
        c.table_rows.append(c.row)


def driver_pairs(
    drivers: dict[str, dict[str, Any]], cap: Optional[str] = None
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    names = sorted(d for d in drivers if cap is None or cap in drivers[d]["caps"])
    for a, b in itertools.combinations_with_replacement(names, 2):
        yield f"{a} <-> {b}", drivers[a], drivers[b]


WAKEUP_PAUSE_MS = (5.0, 45.0)


def handoff_configs(
    results: dict[str, Any], drivers: dict[str, dict[str, Any]], quick: bool, ns: str
) -> list[Config]:
    """Sections 2 (hand-off), 3 (timed wake-up) and 5b (semaphore hand-off), all in namespace ns."""
    fast, sessions = (10, 1) if quick else (100, 5)  # kernel-speed hand-offs: rounds x sessions
    slow = 3 if quick else 10  # polling peers: one session
    configs: list[Config] = []

    def add(section: str, row: dict[str, Any], *args: Any, **ping: Any) -> None:
        """A Config (Config's arguments: argv_a, argv_b, rounds, ...) whose row goes to results[section]."""
        ping.setdefault("name", f"ho-{len(configs)}")  # each row its own lock (and doorbell)
        kind = ping.get("kind", "lock")
        uses_semaphore({"lock": "l", "semaphore": "s", "posix_semaphore": "p"}[kind], ns, ping["name"])
        c = Config(section, row, *args, **ping)
        c.table_rows = results[section]
        configs.append(c)

    def add_drivers(
        section: str, row: dict[str, Any], da: dict[str, Any], db: dict[str, Any], *args: Any, **ping: Any
    ) -> None:
        """add() for a pair of drivers (of `drivers`): their argv, and the environment one of them needs."""
        add(section, row, da["argv"], db["argv"], *args, env=da["env"] or db["env"], **ping)

    ho = "handoff"
    add(
        ho,
        dict(pair="raw flock(2), C", kind="baseline", mode="blocking"),
        actor_argv("raw-c"),
        actor_argv("raw-c"),
        fast,
        sessions,
    )
    add(
        ho,
        dict(pair="raw flock(2) + XL-LOCK-8 nlink check (spec floor), C", kind="floor", mode="blocking"),
        actor_argv("raw-c-recheck"),
        actor_argv("raw-c-recheck"),
        fast,
        sessions,
    )
    add(
        ho,
        dict(pair="raw fcntl.flock, Python", kind="floor", mode="blocking"),
        actor_argv("raw"),
        actor_argv("raw"),
        fast,
        sessions,
    )
    add(
        ho,
        dict(
            pair="raw fcntl.flock + XL-LOCK-8 nlink check (spec floor), Python", kind="floor", mode="blocking"
        ),
        actor_argv("raw-recheck"),
        actor_argv("raw-recheck"),
        fast,
        sessions,
    )
    add(
        ho,
        dict(pair="raw File#flock, Ruby", kind="floor", mode="blocking"),
        actor_argv("raw-ruby"),
        actor_argv("raw-ruby"),
        fast,
        sessions,
    )
    add(
        ho,
        dict(pair="portalocker (LOCK_EX, blocking flock)", kind="peer", mode="blocking"),
        actor_argv("portalocker"),
        actor_argv("portalocker"),
        fast,
        sessions,
    )
    for impl, label in (("fasteners", "fasteners (polls 10-100 ms)"), ("filelock", "filelock (polls 50 ms)")):
        add(ho, dict(pair=label, kind="peer", mode="blocking"), actor_argv(impl), actor_argv(impl), slow)
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        for pair, da, db in driver_pairs(drivers):
            add_drivers(
                ho, dict(pair=pair, kind="xlock", mode=mode), da, db, fast, sessions, timeout_ms=timeout
            )
    for impl, label, rounds in (
        ("portalocker", "portalocker (LOCK_NB, polls 250 ms)", 3 if quick else 5),
        ("fasteners", "fasteners (polls 10-100 ms)", slow),
        ("filelock", "filelock (polls 50 ms)", slow),
    ):
        add(
            ho,
            dict(pair=label, kind="peer", mode="timed"),
            actor_argv(impl),
            actor_argv(impl),
            rounds,
            timeout_ms=10000,
        )

    wk, wr, ws = "wakeup", (6 if quick else 12), (1 if quick else 3)
    add(
        wk,
        dict(pair="raw flock(2), C, blocking", kind="baseline"),
        actor_argv("raw-c"),
        actor_argv("raw-c"),
        wr,
        ws,
        pause_ms=WAKEUP_PAUSE_MS,
    )
    for impl, label in (
        ("raw-c-recheck", "raw flock(2) + XL-LOCK-8 nlink check (spec floor), C, blocking"),
        ("raw", "raw fcntl.flock, Python, blocking"),
        ("raw-recheck", "raw fcntl.flock + XL-LOCK-8 nlink check (spec floor), Python, blocking"),
    ):
        add(
            wk,
            dict(pair=label, kind="floor"),
            actor_argv(impl),
            actor_argv(impl),
            wr,
            ws,
            pause_ms=WAKEUP_PAUSE_MS,
        )
    for pair, da, db in driver_pairs(drivers):
        add_drivers(
            wk, dict(pair=pair, kind="xlock"), da, db, wr, ws, timeout_ms=10000, pause_ms=WAKEUP_PAUSE_MS
        )
    for impl, label, rounds in (
        ("filelock", "filelock (polls 50 ms)", 3 if quick else 10),
        ("portalocker", "portalocker (polls 250 ms)", 2 if quick else 6),
        ("fasteners", "fasteners (polls 10-100 ms)", 3 if quick else 10),
    ):
        add(
            wk,
            dict(pair=label, kind="peer"),
            actor_argv(impl),
            actor_argv(impl),
            rounds,
            timeout_ms=10000,
            pause_ms=WAKEUP_PAUSE_MS,
        )

    sm = "semaphore_handoff"
    for mode, timeout in (("blocking", None), ("timed", 10000)):
        add(
            sm,
            dict(pair="posix_ipc", kind="baseline", mode=mode),
            actor_argv("posix_ipc"),
            actor_argv("posix_ipc"),
            fast,
            sessions,
            timeout_ms=timeout,
            kind="posix_semaphore",
            name=f"sem-{os.getpid()}-{mode}",
        )
        SEMAPHORES.pop()  # posix_ipc's own name, not xlock's; unlinked by bench_handoffs
    for kind in ("semaphore", "posix_semaphore"):
        for mode, timeout in (("blocking", None), ("timed", 10000)):
            for pair, da, db in driver_pairs(drivers, kind):
                add_drivers(
                    sm,
                    dict(pair=pair, kind=kind, mode=mode),
                    da,
                    db,
                    fast,
                    sessions,
                    timeout_ms=timeout,
                    kind=kind,
                )
    return configs


def bench_handoffs(
    tmp: str, results: dict[str, Any], drivers: dict[str, dict[str, Any]], quick: bool
) -> None:
    ns = fresh_namespace(tmp, "ho")
    configs = handoff_configs(results, drivers, quick, ns)
    try:
        run_configs(configs, ns)
    finally:
        for mode in ("blocking", "timed"):
            handoff.unlink_posix_semaphore(f"/xlbench-sem-{os.getpid()}-{mode}")
