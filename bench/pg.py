"""PostgreSQL namespaces (spec §16): the issue's targets, measured on a throwaway server this script starts,
for Python (xlock._pg), C (libxlock_pg: bench/c/pg_worker.c, built by bench/Makefile when c/pg is built)
and Ruby (the gem in ruby/lib: bench/rb_pg_worker.rb).

    python bench/pg.py [--quick]     # alone; bench/run.py (tox -e bench) runs it as its last section

Figures (each reported as met or missed against its target):
- uncontended acquire+release p50, unix socket (target <= 100 us) and TCP loopback (<= 150 us);
- blocked hand-off p50: the holder's clock before release -> the waiter's clock after its untimed acquire
  returned, another process, unix socket (<= 1 ms);
- timed waits: never early; overshoot p99 (<= 10 ms) over timeouts of 1, 5, 20 and 50 ms;
- release after SIGKILL of a holder p99: kill -> a blocked waiter's acquire returns (<= 100 ms).
The clocks are CLOCK_MONOTONIC, system-wide, so two processes' readings compare. Python's hand-off holder
releases the lock for every language's waiter; the C and Ruby release-after-kill figures kill a holder
process of the same language while a waiter process of it is queued.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "conformance"))
sys.path.insert(0, os.path.join(ROOT, "python", "src"))

TARGETS = {  # figure -> (target in us, what)
    "uncontended_unix_p50_us": (100, "uncontended acquire+release p50, unix socket"),
    "uncontended_tcp_p50_us": (150, "uncontended acquire+release p50, TCP loopback"),
    "handoff_p50_us": (1000, "blocked hand-off p50 (unix socket, another process)"),
    "timed_overshoot_p99_us": (10_000, "timed wait overshoot p99 (never early)"),
    "kill_release_p99_us": (100_000, "release after SIGKILL of the holder p99"),
}
LANGUAGES = ("python", "c", "ruby")
WAITER = r"""
import sys, time
from xlock._pg import open_lock
lock = open_lock(sys.argv[2], sys.argv[1])
print(lock.backend_pid, flush=True)
for line in sys.stdin:
    lock.acquire()
    print(time.monotonic_ns(), flush=True)
    lock.release()
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def uncontended(url: str, n: int) -> float:
    from xlock._pg import open_lock

    lock = open_lock("bench-uncontended", url)
    try:
        for _ in range(200):  # warm up (the first use on a session prepares the statements)
            lock.acquire()
            lock.release()
        times = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            lock.acquire()
            lock.release()
            times.append(clock() - t0)
        return statistics.median(times) / 1000
    finally:
        lock.close()


def raw_pair(url: str, n: int) -> float:
    """The baseline of the uncontended figures, measured in the same run: two prepared `SELECT 1` round
    trips (what an acquire+release costs at the least: one statement each, XL-PG-7), p50 in us, over a
    plain psycopg connection to the same server."""
    import psycopg
    from xlock._pg.url import parse

    with psycopg.connect(parse(url).url, autocommit=True) as conn:
        cur = conn.cursor()
        for _ in range(200):
            cur.execute("SELECT 1", prepare=True)
        times = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            cur.execute("SELECT 1", prepare=True)
            cur.fetchone()
            cur.execute("SELECT 1", prepare=True)
            cur.fetchone()
            times.append(clock() - t0)
        return statistics.median(times) / 1000


def _waiting(server: Any, backend: int) -> bool:
    return any(r[4] == "f" for r in server.locks_of([backend]))


def _go_and_free(
    server: Any, waiter: subprocess.Popen[str], backend: int, free: Callable[[], object]
) -> float:
    """Tell the waiter process to acquire, wait until it is queued in the server (session `backend`),
    then free the lock with `free`: the microseconds until the waiter says it returned."""
    assert waiter.stdin is not None and waiter.stdout is not None  # both are pipes
    waiter.stdin.write("go\n")
    waiter.stdin.flush()
    deadline = time.monotonic() + 5
    while not _waiting(server, backend):  # the waiter is queued in the server
        assert time.monotonic() < deadline, "the waiter never queued"
    t0 = time.monotonic_ns()
    free()
    return (int(waiter.stdout.readline()) - t0) / 1000


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.path.join(ROOT, "python", "src")}


def handoff(
    server: Any, url: str, n: int, waiter: Optional[list[str]] = None, env: Optional[dict[str, str]] = None
) -> float:
    """Python holds and releases; the waiter is `waiter` (a worker's waiter role), Python's by default."""
    from xlock._pg import open_lock

    holder = open_lock("bench-handoff", url)
    child = subprocess.Popen(
        waiter or [sys.executable, "-c", WAITER, url, "bench-handoff"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env or python_env(),
    )
    assert child.stdin is not None and child.stdout is not None  # both are pipes
    try:
        backend = int(child.stdout.readline())
        samples = []
        for _ in range(n):
            holder.acquire()
            samples.append(_go_and_free(server, child, backend, holder.release))
        return statistics.median(samples)
    finally:
        child.kill()
        child.wait()
        holder.close()


def timed(url: str, rounds: int) -> tuple[float, float]:
    from xlock import Timeout
    from xlock._pg import open_lock

    holder, waiter = open_lock("bench-timed", url), open_lock("bench-timed", url)
    holder.acquire()
    over = []
    try:
        for _ in range(rounds):
            for ms in (1, 5, 20, 50):
                t0 = time.monotonic_ns()
                try:  # the threading protocol returns False on timeout; older objects raised Timeout
                    got = waiter.acquire(timeout=ms / 1000)
                except Timeout:
                    got = False
                if got:
                    raise AssertionError("acquired a held lock")
                over.append((time.monotonic_ns() - t0) / 1000 - ms * 1000)
        return min(over), pct(over, 99)
    finally:
        holder.close()
        waiter.close()


def _acquire_stamped(lock: Any, stamps: list[int]) -> None:
    """Acquire lock, then note the time it was granted (a waiter thread of kill_release)."""
    lock.acquire()
    stamps.append(time.monotonic_ns())


def kill_release(server: Any, url: str, n: int) -> float:
    from xlock._pg import open_lock

    waiter = open_lock("bench-kill", url)
    samples = []
    try:
        for _ in range(n):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the holder: a new session of its own, then wait to be killed
                os.close(r)
                try:
                    lock = open_lock("bench-kill", url)
                    lock.acquire()
                    os.write(w, b"%d\n" % lock.backend_pid)
                finally:
                    while True:
                        signal.pause()
            os.close(w)
            with os.fdopen(r) as f:
                f.readline()
            got: list[int] = []
            thread = threading.Thread(target=_acquire_stamped, args=(waiter, got))
            thread.start()
            deadline = time.monotonic() + 5
            while not _waiting(server, waiter.backend_pid):
                assert time.monotonic() < deadline, "the waiter never queued"
            t0 = time.monotonic_ns()
            os.kill(pid, signal.SIGKILL)
            thread.join(10)
            os.waitpid(pid, 0)
            samples.append((got[0] - t0) / 1000)
            waiter.release()
        return pct(samples, 99)
    finally:
        waiter.close()


def _run(argv: list[str], env: dict[str, str], *args: object) -> list[str]:
    """One role of a worker (bench/c/pg_worker.c, bench/rb_pg_worker.rb): its output's words."""
    done = subprocess.run(
        [*argv, *map(str, args)], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{os.path.basename(argv[-1])} {args[0]}: {done.stderr.strip()[-300:]}")
    return done.stdout.split()


def kill_release_workers(server: Any, argv: list[str], env: dict[str, str], url: str, n: int) -> float:
    """A waiter process queued behind a holder process (both the worker's); SIGKILL the holder -> the
    waiter's acquire returned. The p99 in us."""
    waiter = subprocess.Popen(
        [*argv, "waiter", url, "bench-kill"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert waiter.stdin is not None and waiter.stdout is not None  # both are pipes
    samples = []
    try:
        backend = int(waiter.stdout.readline())
        for _ in range(n):
            holder = subprocess.Popen(
                [*argv, "holder", url, "bench-kill"], stdout=subprocess.PIPE, text=True, env=env
            )
            assert holder.stdout is not None
            try:
                assert holder.stdout.readline().strip(), "the holder did not take the lock"
                samples.append(_go_and_free(server, waiter, backend, holder.kill))
            finally:
                holder.kill()
                holder.wait()
        return float(pct(samples, 99))
    finally:
        waiter.kill()
        waiter.wait()


def workers() -> dict[str, Any]:
    """Language -> (argv, env) of its worker, or the reason it cannot run."""
    found: dict[str, Any] = {}
    made = subprocess.run(
        ["make", "-s", "-C", os.path.join(ROOT, "c"), "driver"], capture_output=True, text=True
    )
    prog = os.path.join(HERE, "build", "pg_worker")
    if made.returncode == 0:
        made = subprocess.run(["make", "-s", "-C", HERE, "build/pg_worker"], capture_output=True, text=True)
    if made.returncode == 0 and os.path.exists(prog):
        found["c"] = ([prog], dict(os.environ))
    else:
        found["c"] = (
            "bench/build/pg_worker not built (libpq missing?): " + (made.stderr.strip() or "?")[-200:]
        )
    env = {**os.environ, "RUBYLIB": os.path.join(ROOT, "ruby", "lib")}
    probe = subprocess.run(
        ["ruby", "-e", 'require "xlock"; require "pg"'], capture_output=True, text=True, env=env
    )
    if probe.returncode == 0:
        found["ruby"] = (["ruby", os.path.join(HERE, "rb_pg_worker.rb")], env)
    else:
        found["ruby"] = "ruby with the gem (ruby/lib) and the pg gem: " + (probe.stderr.strip() or "?")[-200:]
    return found


def worker_figures(server: Any, argv: list[str], env: dict[str, str], quick: bool) -> dict[str, float]:
    n = 300 if quick else 3000
    res = {
        "uncontended_unix_p50_us": float(_run(argv, env, "uncontended", server.url(), n)[0]),
        "uncontended_tcp_p50_us": float(_run(argv, env, "uncontended", server.url(tcp=True), n)[0]),
        "handoff_p50_us": handoff(
            server, server.url(), 30 if quick else 200, [*argv, "waiter", server.url(), "bench-handoff"], env
        ),
    }
    earliest, p99 = (float(x) for x in _run(argv, env, "timed", server.url(), 5 if quick else 25))
    res["timed_overshoot_p99_us"], res["timed_earliest_us"] = p99, earliest
    res["kill_release_p99_us"] = kill_release_workers(server, argv, env, server.url(), 5 if quick else 30)
    return res


def bench_pg(quick: bool = False) -> dict[str, Any]:
    """Python's figures, "c" and "ruby" holding theirs (or {"skipped": why}); or {"skipped": why}."""
    try:
        import psycopg  # noqa: F401
        from xlock_conformance.pgserver import PgServer, PgUnavailable
    except ImportError as exc:
        return {"skipped": f"psycopg or the conformance package is missing ({exc})"}
    try:
        server = PgServer()
        server.start()
        server.setup_roles()
    except PgUnavailable as exc:
        return {"skipped": str(exc)}
    try:
        n = 300 if quick else 3000
        res: dict[str, Any] = {
            "raw_pair_unix_p50_us": raw_pair(server.url(), n),
            "raw_pair_tcp_p50_us": raw_pair(server.url(tcp=True), n),
            "uncontended_unix_p50_us": uncontended(server.url(), n),
            "uncontended_tcp_p50_us": uncontended(server.url(tcp=True), n),
            "handoff_p50_us": handoff(server, server.url(), 30 if quick else 200),
        }
        earliest, res["timed_overshoot_p99_us"] = timed(server.url(), 5 if quick else 25)
        res["timed_earliest_us"] = earliest
        res["kill_release_p99_us"] = kill_release(server, server.url(), 5 if quick else 30)
        for lang, worker in workers().items():
            if isinstance(worker, str):
                res[lang] = {"skipped": worker}
                continue
            try:
                argv, env = worker
                res[lang] = worker_figures(server, argv, env, quick)
            except (RuntimeError, AssertionError, ValueError, OSError, subprocess.SubprocessError) as exc:
                res[lang] = {"skipped": f"failed: {exc}"}
        return res
    finally:
        server.stop()


def verdicts(res: dict[str, Any]) -> list[tuple[str, float, int, str]]:
    rows = []
    for k, (target, what) in TARGETS.items():
        value = res[k]
        ok = value <= target and (k != "timed_overshoot_p99_us" or res["timed_earliest_us"] >= 0)
        rows.append((what, value, target, "met" if ok else "MISSED"))
    return rows


def by_language(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each language's figures (or {"skipped": reason}); Python's are res's own keys."""
    python = {k: v for k, v in res.items() if k not in LANGUAGES}
    return {"python": python, **{lang: res[lang] for lang in LANGUAGES[1:] if lang in res}}


def markdown(res: Optional[dict[str, Any]]) -> str:
    if not res:
        return ""
    lines = ["", "## PostgreSQL namespaces (spec §16)", ""]
    if "skipped" in res:
        return "\n".join([*lines, f"skipped: {res['skipped']}", ""])
    langs = {lang: figs for lang, figs in by_language(res).items() if "skipped" not in figs}
    names = {"python": "Python", "c": "C", "ruby": "Ruby"}
    lines += [
        "| figure | target | " + " | ".join(names[lang] for lang in langs) + " |",
        "|---|---|" + "---|" * len(langs),
    ]
    judged = {lang: verdicts(figs) for lang, figs in langs.items()}
    for i, (what, target) in enumerate((what, target) for what, _, target, _ in next(iter(judged.values()))):
        cells = [f"{rows[i][1]:,.0f} µs {rows[i][3]}" for rows in judged.values()]
        lines.append(f"| {what} | ≤ {target:,} µs | " + " | ".join(cells) + " |")
    earliest = ", ".join(
        f"{names[lang]} {figs['timed_earliest_us']:+,.0f} µs" for lang, figs in langs.items()
    )
    lines.append(
        f"\nEarliest timed-wait return relative to its deadline: {earliest} (never negative = never early)."
    )
    if "raw_pair_unix_p50_us" in res:
        ratios = "; ".join(
            f"{names[lang]} {figs['uncontended_unix_p50_us'] / res['raw_pair_unix_p50_us']:.2f}x / "
            f"{figs['uncontended_tcp_p50_us'] / res['raw_pair_tcp_p50_us']:.2f}x"
            for lang, figs in langs.items()
        )
        lines.append(
            "\nBaseline measured in the same run, against the same server: two prepared `SELECT 1` round "
            f"trips (psycopg) p50 {res['raw_pair_unix_p50_us']:,.0f} µs on the unix socket, "
            f"{res['raw_pair_tcp_p50_us']:,.0f} µs over TCP. Uncontended acquire+release as a multiple of it "
            f"(unix / TCP): {ratios}. On this VM a round trip's cost is mostly the other CPU waking up, so "
            "the absolute figures move with how idle the machine is; the multiple does not."
        )
    for lang, figs in by_language(res).items():
        if "skipped" in figs:
            lines.append(f"\n{names[lang]}: skipped: {figs['skipped']}")
    lines.append(
        "\nC: bench/c/pg_worker.c on libxlock_pg; Ruby: bench/rb_pg_worker.rb on the gem and the pg gem; "
        "the hand-off holder is Python's in every column."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds: a smoke run")
    args = ap.parse_args()
    print(markdown(bench_pg(args.quick)))


if __name__ == "__main__":
    main()
