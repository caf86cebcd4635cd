"""Building blocks the cases share: the runner's own name mapping, blocked-then-freed, timing checks."""

from __future__ import annotations

import base64
import hashlib
import os
import statistics
import time
from typing import Any, Callable, Optional

from xlock_conformance.driver import Driver, Reply
from xlock_conformance.lab import BLOCKED_WINDOW, WAKE_DEADLINE


def sem_name(kind: str, dev: int, ino: int, name: str) -> str:
    """[XL-SEM-1] computed by the runner, to check what drivers report for real namespaces."""
    data = b"\0".join([b"xlock/1", kind.encode(), str(dev).encode(), str(ino).encode(), name.encode("utf-8")])
    return "/xl1" + kind + base64.b32encode(hashlib.sha256(data).digest()).decode().lower()[:25]


def ns_identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def timed_failure(driver: Driver, handle: str, timeout_ms: int, kind: str = "TIMEOUT") -> Reply:
    """A timed acquire that must fail with TIMEOUT, and not before its timeout [XL-WAIT-3]."""
    t0 = time.monotonic()
    reply = driver.fails(kind, "acquire", handle=handle, timeout_ms=timeout_ms,
                         timeout=timeout_ms / 1000 + WAKE_DEADLINE)
    took = time.monotonic() - t0
    assert took >= timeout_ms / 1000, (
        f"driver '{driver.label}': acquire with timeout_ms={timeout_ms} failed with TIMEOUT after "
        f"{took * 1000:.1f} ms, before its timeout")
    return reply


def blocked_then_freed(waiter: Driver, op: str, args: dict[str, Any], free: Callable[[], Optional[Reply]],
                       why: str, window: float = BLOCKED_WINDOW, deadline: float = WAKE_DEADLINE
                       ) -> tuple[Reply, Optional[Reply]]:
    """Send `op` to `waiter`, prove it blocks (no reply within `window`), call `free`, and expect the
    reply within `deadline`. Returns (waiter's reply, free's reply)."""
    rid = waiter.send(op, **args)
    waiter.no_reply_within(rid, window, why)
    freed = free()
    try:
        reply = waiter.wait(rid, deadline)
    except AssertionError as exc:
        raise AssertionError(f"after the holder was freed, {exc}") from None
    if not reply.ok:
        raise AssertionError(f"driver '{waiter.label}': {op} {args} failed with {reply.error} "
                             f"({reply.get('message')}) after the holder was freed")
    return reply, freed


def assert_order(released: Optional[Reply], acquired: Reply, releaser: Driver, acquirer: Driver) -> None:
    """With `clock`, the acquisition completes after the release started (CLOCK_MONOTONIC is system-wide)."""
    if released is None or "clock" not in releaser.capabilities or "clock" not in acquirer.capabilities:
        return
    rel, acq = released.get("mono_ns"), acquired.get("mono_ns")
    assert isinstance(rel, int) and isinstance(acq, int), (
        f"drivers claim 'clock' but replies lack integer mono_ns: release {released.data}, acquire {acquired.data}")
    assert acq >= rel, (
        f"driver '{acquirer.label}' reports acquiring at mono_ns {acq}, {(rel - acq) / 1e6:.3f} ms before "
        f"driver '{releaser.label}' released at {rel}: two holders at once")


def message_names(reply: Reply, name: str, path: Optional[str], driver: Driver) -> None:
    """[XL-ERR-3] an error message names the lock: its name and its path."""
    text = str(reply.get("message", ""))
    missing = [w for w in (name, path) if w and w not in text]
    assert not missing, (f"driver '{driver.label}': {reply.error} message {text!r} does not name "
                         f"{' and '.join(repr(m) for m in missing)}")


DOORBELL = "a waiter must be woken by the release's doorbell [XL-WAIT-6], not by a slow poll"


def latency_verdict(latencies_ms: list[float], what: str, median_bound: float = 50.0,
                    max_bound: float = 1000.0, cause: str = DOORBELL) -> None:
    """Wake-ups by a doorbell take scheduling time, not a polling interval. The median must be below
    `median_bound` ms (XL-WAIT-7's safety poll alone never exceeds 50 ms); every one below `max_bound`.
    Generous on purpose: precise latency belongs to the benchmark."""
    med = statistics.median(latencies_ms)
    shown = ", ".join(f"{x:.1f}" for x in latencies_ms)
    assert med < median_bound and max(latencies_ms) < max_bound, (
        f"{what}: release-to-acquire latencies {shown} ms (median {med:.1f} ms, max "
        f"{max(latencies_ms):.1f} ms); want median < {median_bound:.0f} ms and every one < {max_bound:.0f} ms: "
        f"{cause}")


def spread_delays(rounds: int, start: float = 0.03, span: float = 0.25) -> list[float]:
    """Waits before each release, spread evenly over `span` s so that a periodic poller is caught at
    every phase of its period rather than by luck."""
    return [start + span * ((i * 3) % rounds) / rounds for i in range(rounds)]


def doorbell_value(name: str) -> Optional[int]:
    """The value of an existing POSIX named semaphore (None if it does not exist), read with libc."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_open.restype = ctypes.c_void_p
    libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    libc.sem_close.argtypes = [ctypes.c_void_p]
    sem = libc.sem_open(name.encode(), 0)
    if not sem:
        return None
    value = ctypes.c_int(-1)
    try:
        libc.sem_getvalue(sem, ctypes.byref(value))
    finally:
        libc.sem_close(sem)
    return value.value


def make_posix_semaphore(name: str, mode: int, owner: int) -> str:
    """Create the POSIX named semaphore `name` (value 1) as a hostile or sloppy creator would; returns its
    /dev/shm path."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_open.restype = ctypes.c_void_p
    libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    libc.sem_close.argtypes = [ctypes.c_void_p]
    sem = libc.sem_open(name.encode(), os.O_CREAT | os.O_EXCL, mode, 1)
    if not sem:
        raise OSError(ctypes.get_errno(), f"sem_open {name}")
    libc.sem_close(sem)
    path = "/dev/shm/sem." + name[1:]
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    return path
