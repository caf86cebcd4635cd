"""Building blocks the cases share: the runner's own name mapping, blocked-then-freed, timing checks."""

from __future__ import annotations

import base64
import hashlib
import os
import selectors
import stat
import statistics
import subprocess
import sys
import time
from functools import partial
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
    reply = driver.fails(
        kind, "acquire", handle=handle, timeout_ms=timeout_ms, timeout=timeout_ms / 1000 + WAKE_DEADLINE
    )
    took = time.monotonic() - t0
    assert took >= timeout_ms / 1000, (
        f"driver '{driver.label}': acquire with timeout_ms={timeout_ms} failed with TIMEOUT after "
        f"{took * 1000:.1f} ms, before its timeout"
    )
    return reply


def blocked_then_freed(
    waiter: Driver,
    op: str,
    args: dict[str, Any],
    free: Callable[[], Optional[Reply]],
    why: str,
    window: float = BLOCKED_WINDOW,
    deadline: float = WAKE_DEADLINE,
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
        raise AssertionError(
            f"driver '{waiter.label}': {op} {args} failed with {reply.error} "
            f"({reply.get('message')}) after the holder was freed"
        )
    return reply, freed


def release_hands_over(
    holder: Driver,
    hh: str,
    waiter: Driver,
    hw: str,
    why: str,
    timeout_ms: Optional[int] = 10_000,
    window: float = BLOCKED_WINDOW,
) -> tuple[Reply, Optional[Reply]]:
    """The common case of blocked_then_freed: `waiter` acquires `hw` (timed unless timeout_ms is None) and
    blocks while `holder` holds `hh`; `holder` releases `hh` and the waiter gets it within the deadline."""
    args: dict[str, Any] = {"handle": hw} if timeout_ms is None else {"handle": hw, "timeout_ms": timeout_ms}
    return blocked_then_freed(
        waiter, "acquire", args, partial(holder.call, "release", handle=hh), why, window=window
    )


def flock_hold(path: str, mode: str = "-x") -> subprocess.Popen[bytes]:
    """Start util-linux `flock MODE PATH cat` and wait (with a deadline) until it says it holds the lock;
    flock_release lets it go."""
    proc = subprocess.Popen(
        ["flock", mode, path, "sh", "-c", "echo held; exec cat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout=5) or proc.stdout.readline() != b"held\n":
        proc.kill()
        raise AssertionError(f"flock {mode} {path} did not take the lock within 5 s")
    return proc


def flock_release(proc: subprocess.Popen[bytes]) -> None:
    """End a flock_hold: `cat` sees end of input, flock(1) exits and its lock goes with it."""
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=5)


def assert_order(released: Optional[Reply], acquired: Reply, releaser: Driver, acquirer: Driver) -> None:
    """With `clock`, the acquisition completes after the release started (CLOCK_MONOTONIC is system-wide)."""
    if released is None or "clock" not in releaser.capabilities or "clock" not in acquirer.capabilities:
        return
    rel, acq = released.get("mono_ns"), acquired.get("mono_ns")
    assert isinstance(rel, int) and isinstance(acq, int), (
        f"drivers claim 'clock' but replies lack integer mono_ns: release {released.data}, acquire "
        f"{acquired.data}"
    )
    assert acq >= rel, (
        f"driver '{acquirer.label}' reports acquiring at mono_ns {acq}, {(rel - acq) / 1e6:.3f} ms before "
        f"driver '{releaser.label}' released at {rel}: two holders at once"
    )


def message_names(reply: Reply, name: str, path: Optional[str], driver: Driver) -> None:
    """[XL-ERR-3] an error message names the lock: its name and its path."""
    text = str(reply.get("message", ""))
    missing = [w for w in (name, path) if w and w not in text]
    assert not missing, (
        f"driver '{driver.label}': {reply.error} message {text!r} does not name "
        f"{' and '.join(repr(m) for m in missing)}"
    )


DOORBELL = (
    "a waiter must be woken by the release's ring of the bell [XL-BELL-6, XL-WAIT-12], not by a slow poll"
)


def latency_verdict(
    latencies_ms: list[float],
    what: str,
    median_bound: float = 50.0,
    max_bound: float = 1000.0,
    cause: str = DOORBELL,
) -> None:
    """Wake-ups by the bell take scheduling time, not a polling interval. The median must be below
    `median_bound` ms (XL-WAIT-7's safety poll alone never exceeds 50 ms); every one below `max_bound`.
    Generous on purpose: precise latency belongs to the benchmark."""
    med = statistics.median(latencies_ms)
    shown = ", ".join(f"{x:.1f}" for x in latencies_ms)
    assert med < median_bound and max(latencies_ms) < max_bound, (
        f"{what}: release-to-acquire latencies {shown} ms (median {med:.1f} ms, max "
        f"{max(latencies_ms):.1f} ms); want median < {median_bound:.0f} ms and every one < {max_bound:.0f} "
        f"ms: {cause}"
    )


def spread_delays(rounds: int, start: float = 0.03, span: float = 0.25) -> list[float]:
    """Waits before each release, spread evenly over `span` s so that a periodic poller is caught at
    every phase of its period rather than by luck."""
    return [start + span * ((i * 3) % rounds) / rounds for i in range(rounds)]


BELL = ".xlock-bell"
BELL_SIZE = 4096


def bell_word(kind: str, name: str) -> int:
    """[XL-SEM-7] computed by the runner: the bell word of a lock (l) or counting semaphore (s)."""
    digest = hashlib.sha256(b"\0".join([b"xlock/1", b"bell", kind.encode(), name.encode("utf-8")])).digest()
    return int.from_bytes(digest[:4], "big") % 1024


def read_bell_word(ns: str, word: int) -> Optional[int]:
    """The value of word `word` of the namespace's bell, read with pread (None if there is no bell)."""
    try:
        fd = os.open(os.path.join(ns, BELL), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        data = os.pread(fd, 4, 4 * word)
    finally:
        os.close(fd)
    return int.from_bytes(data, sys.byteorder) if len(data) == 4 else None


def draft1_doorbells(ns: str, names: list[str]) -> list[str]:
    """The /dev/shm files that draft 1's doorbells (kinds l and s, withdrawn [XL-SEM-2]) of `names` in
    namespace `ns` would be: none of them may exist."""
    dev, ino = ns_identity(ns)
    paths = ["/dev/shm/sem." + sem_name(k, dev, ino, n)[1:] for n in names for k in "ls"]
    return [p for p in paths if os.path.lexists(p)]


def unlink_quietly(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


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


NOBODY = 65534  # the "other user" of the attack cases [XL-THREAT-2, XL-THREAT-3]


def run_as(uid: int, argv: list[str]) -> None:
    """Run `argv` as another user (setpriv), as an attacker with a second account would: what it creates
    is that user's. Fails the case if the command fails."""
    import shutil

    if shutil.which("setpriv") is None:
        raise AssertionError("setpriv (util-linux) is needed to act as another user")
    proc = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"as uid {uid}: {' '.join(argv)} failed: {proc.stderr.strip()}"


def plant(path: str, what: str, uid: Optional[int] = None, mode: int = 0o600) -> None:
    """Put a hostile object at `path`: 'empty', 'short' (4095 bytes), 'full' (4096 zero bytes), 'ones'
    (4096 bytes of 0xFF), 'fifo', 'symlink' (to a 4096-byte file beside it), 'dir', 'socket' or
    'bytes:N' (N zero bytes). As another user with `uid` (setpriv), else as ourselves."""
    if what == "socket":
        import socket

        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        if uid is not None:
            os.lchown(path, uid, uid)
        return
    sizes = {"empty": 0, "short": 4095, "full": 4096}
    if what.startswith("bytes:"):
        sizes[what] = int(what[6:])
    if what in sizes or what == "ones":
        fill = "\\377" if what == "ones" else "\\000"
        size = sizes.get(what, 4096)
        script = f"umask 077; head -c {size} /dev/zero | tr '\\000' '{fill}' > \"$1\"; chmod {mode:o} \"$1\""
    elif what == "fifo":
        script = f'mkfifo -m {mode:o} "$1"'
    elif what == "dir":
        script = 'mkdir -m 700 "$1"'
    elif what == "symlink":
        script = 'head -c 4096 /dev/zero > "$1.target"; chmod 600 "$1.target"; ln -s "$1.target" "$1"'
    else:
        raise ValueError(what)
    argv = ["sh", "-c", script, "plant", path]
    if uid is None:
        subprocess.run(argv, check=True, timeout=30)
    else:
        run_as(uid, argv)


def describe(path: str) -> tuple[int, int, int, int]:
    """(type bits, size, inode, uid) of `path` without following it: to show a planted object untouched."""
    st = os.lstat(path)
    return stat.S_IFMT(st.st_mode), st.st_size, st.st_ino, st.st_uid
