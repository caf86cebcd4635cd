"""Section 4: N processes contending for one lock, counting in a file; lost counts fail the run."""

import json
import os
import statistics
import subprocess
from typing import Any, Optional

from common import BENCH, PY, fresh_namespace, progress, ruby_env, uses_semaphore


def contention_workers(impl: str, ns: str, counter: str, count: int) -> list[str]:
    """argv for one worker of impl ("c-raw", "python-xlock", "c-xlock-timed", ...), locking one lock in ns."""
    lang, kind = impl.split("-", 1)
    prog = {
        "c": [os.path.join(BENCH, "build", "contend")],
        "python": [PY, os.path.join(BENCH, "py_contend.py")],
        "ruby": ["ruby", os.path.join(BENCH, "rb_contend.rb")],
    }[lang]
    if kind == "raw":
        return [*prog, "raw", os.path.join(ns, "contended.lock"), counter, str(count)]
    return [*prog, kind, ns, "contended", counter, str(count)]


def contend_once(impl: str, nproc: int, count: int, tmp: str) -> dict[str, Any]:
    ns = fresh_namespace(tmp, "ct")
    uses_semaphore("l", ns, "contended")
    counter = os.path.join(ns, "counter")
    open(counter, "w").close()
    env = ruby_env() if impl.startswith("ruby") else None
    # One start gate for all: every worker reads the same pipe, and closing its write end wakes them
    # all at once (end of file), so the rounds really overlap.
    gate_r, gate_fd = os.pipe()
    gate_w: Optional[int] = gate_fd
    try:
        procs = [
            subprocess.Popen(
                contention_workers(impl, ns, counter, count),
                stdin=gate_r,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(nproc)
        ]
    finally:
        os.close(gate_r)
    try:
        for p in procs:
            assert p.stdout is not None  # a pipe
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{impl} worker failed to start (status {p.wait()})")
        os.close(gate_fd)
        gate_w = None
        outs = []
        for p in procs:
            assert p.stdout is not None  # a pipe
            line = p.stdout.readline()
            if p.wait() != 0 or not line:
                raise RuntimeError(f"{impl} worker failed (status {p.returncode})")
            outs.append(json.loads(line))
    finally:
        if gate_w is not None:
            os.close(gate_w)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(counter) as f:
        final = int(f.read() or "0")
    expected = nproc * count
    if final != expected:
        raise AssertionError(
            f"CONTENTION LOST COUNTS: {impl} with {nproc} processes ended at {final}, expected {expected}"
        )
    span = max(o["end_ns"] for o in outs) - min(o["start_ns"] for o in outs)
    return {
        "ops_per_s": expected / (span / 1e9),
        "max_wait_ms": max(o["max_wait_ns"] for o in outs) / 1e6,
        "final": final,
        "expected": expected,
    }


def bench_contention(tmp: str, results: dict[str, Any], impls: list[str], quick: bool) -> None:
    """Every (implementation, processes) configuration once per repeat, repeats interleaved."""
    repeats = 1 if quick else 5
    total = {"c": 100000, "python": 40000, "ruby": 40000}
    # Timed acquires (issue 14's target) at N=8 only.
    configs = [(impl, nproc) for impl in impls for nproc in ((8,) if impl.endswith("-timed") else (2, 4, 8))]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {cfg: [] for cfg in configs}
    counts = {}
    for rep in range(repeats):
        for impl, nproc in configs:
            lang = impl.split("-", 1)[0]
            count = counts[(impl, nproc)] = max(1, (total[lang] // (10 if quick else 1)) // nproc)
            progress(f"contention: {impl}, {nproc} processes x {count} rounds, repeat {rep + 1}/{repeats}")
            runs[(impl, nproc)].append(contend_once(impl, nproc, count, tmp))
    for impl, nproc in configs:
        done = runs[(impl, nproc)]
        results["contention"].append(
            {
                "impl": impl,
                "nproc": nproc,
                "rounds_per_process": counts[(impl, nproc)],
                "repeats": repeats,
                "ops_per_s": statistics.median(r["ops_per_s"] for r in done),
                "max_wait_ms": max(r["max_wait_ms"] for r in done),
                "final": [r["final"] for r in done],
                "expected": done[0]["expected"],
            }
        )
