"""Locks between processes, threads and objects; try, timeout and the doorbell (§6, §7, §9)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import Actor

import xlock


def test_lock_file_created_with_namespace_mode(ns: str) -> None:
    old = os.umask(0o077)
    try:
        lock = xlock.Lock("Billing export", namespace=ns)
    finally:
        os.umask(old)
    assert lock.path == os.path.join(ns, "!billing%20export.lock")
    st = os.stat(lock.path)
    assert st.st_mode & 0o777 == 0o600 and st.st_size == 0
    assert lock.namespace == ns and lock.namespace_identity == (os.stat(ns).st_dev, os.stat(ns).st_ino)
    assert lock.sharing == "private"
    # the bell word, a pure function of kind and name [XL-SEM-7, XL-INTRO-1]; the bell is the
    # namespace's one file of 4096 bytes [XL-BELL-1]
    assert lock.bell_word == xlock.bell_word("l", lock.name)
    assert os.stat(os.path.join(ns, ".xlock-bell")).st_size == 4096
    lock.close()
    lock.close()


def test_exclusion_between_processes(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="job")["ok"]
    lock = xlock.Lock("job", namespace=ns)
    assert lock.acquire(blocking=False) is False
    assert not lock.locked()
    assert actor.call(op="release")["ok"]
    assert lock.acquire(blocking=False)
    actor.send(op="lock", ns=ns, name="job", timeout=0)
    assert actor.reply()["error"] == "TIMEOUT"
    lock.release()


def test_two_objects_in_one_thread_exclude(ns: str) -> None:
    a = xlock.Lock("x", namespace=ns)
    b = xlock.Lock("x", namespace=ns)
    a.acquire()
    assert b.acquire(blocking=False) is False
    assert b.acquire(timeout=0) is False
    a.release()
    with b:
        assert b.locked() and not a.locked()


def test_same_thread_reacquire_fails_at_once(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    with lock:
        for kwargs in ({}, {"blocking": False}, {"timeout": 5}):
            with pytest.raises(xlock.AlreadyHeld):
                lock.acquire(**kwargs)  # type: ignore[arg-type]
        assert lock.locked()
    with pytest.raises(xlock.NotHeld):
        lock.release()


def test_reentrant_counts(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns, reentrant=True)
    other = xlock.Lock("x", namespace=ns)
    lock.acquire()
    assert lock.acquire(timeout=1)
    lock.release()
    assert other.acquire(blocking=False) is False
    errors: list[BaseException] = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=release_elsewhere)
    t.start()
    t.join()
    assert isinstance(errors[0], xlock.NotHeld)
    lock.release()
    assert other.acquire(blocking=False)
    other.release()
    with pytest.raises(xlock.NotHeld):
        lock.release()


def test_threads_sharing_one_object_exclude(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    lock.acquire()
    got = threading.Event()
    results: list[object] = []

    def worker() -> None:
        results.append(lock.acquire(blocking=False))
        results.append(lock.acquire(timeout=0.05))
        lock.acquire()
        got.set()
        lock.release()

    t = threading.Thread(target=worker)
    t.start()
    # the worker's untimed acquire waits for us: it cannot complete while we hold the lock
    assert not got.wait(0.2)
    lock.release()
    t.join(10)
    assert got.is_set()
    assert results == [False, False]


def test_any_thread_may_release_a_non_reentrant_lock(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    lock.acquire()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join()
    assert not lock.locked()


def test_mutual_exclusion_counter_threads_and_processes(ns: str, tmp_path: Path) -> None:
    counter = str(tmp_path / "counter")
    with open(counter, "w") as f:
        f.write("0")
    code = f"""
import xlock
lock = xlock.Lock("counter", namespace={ns!r})
for _ in range(200):
    with lock:
        with open({counter!r}) as f:
            n = int(f.read())
        with open({counter!r}, "w") as f:
            f.write(str(n + 1))
"""
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]

    def bump() -> None:
        lock = xlock.Lock("counter", namespace=ns)
        for _ in range(200):
            assert lock.acquire(timeout=30)
            try:
                with open(counter) as f:
                    n = int(f.read())
                with open(counter, "w") as f:
                    f.write(str(n + 1))
            finally:
                lock.release()

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(60) == 0
    with open(counter) as f:
        assert int(f.read()) == 800


def test_shared_locks(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="db", shared=True)["ok"]
    reader = xlock.Lock("db", namespace=ns, shared=True)
    writer = xlock.Lock("db", namespace=ns)
    assert reader.acquire(blocking=False)
    assert writer.acquire(blocking=False) is False
    reader.release()
    assert writer.acquire(timeout=0.02) is False
    assert actor.call(op="release")["ok"]
    assert writer.acquire(timeout=5)
    actor.send(op="lock", ns=ns, name="db", shared=True, timeout=0)
    assert actor.reply()["error"] == "TIMEOUT"
    writer.release()


def test_timeout_is_not_early(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    lock = xlock.Lock("x", namespace=ns)
    start = time.monotonic()
    assert lock.acquire(timeout=0.15) is False
    assert time.monotonic() - start >= 0.15
    assert not lock.locked()


def test_bad_arguments(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    with pytest.raises(xlock.InvalidArgument):
        assert lock.acquire(blocking=False, timeout=1)
    with pytest.raises(xlock.InvalidArgument):
        assert lock.acquire(timeout=float("nan"))
    with pytest.raises(xlock.InvalidArgument):
        assert lock.acquire(timeout="1")  # type: ignore[arg-type]
    assert lock.acquire(timeout=-1)  # negative: untimed [XL-WAIT-3]
    lock.close()
    assert not lock.locked()
    with pytest.raises(xlock.InvalidArgument, match="closed"):
        lock.acquire()
    for bad in ("", "a\nb", "x" * 81):
        with pytest.raises(xlock.InvalidName):
            xlock.Lock(bad, namespace=ns)
    with pytest.raises(xlock.InvalidArgument):
        xlock.Lock("x", namespace="relative")
    assert sorted(os.listdir(ns)) == [".xlock-bell", "x.lock"]


def test_close_releases(ns: str) -> None:
    a = xlock.Lock("x", namespace=ns)
    b = xlock.Lock("x", namespace=ns)
    a.acquire()
    a.close()
    assert b.acquire(blocking=False)
    b.release()


def test_timed_waiter_is_woken_by_release_in_another_process(ns: str, actor: Actor) -> None:
    # The waiter would need far more than a second if it relied on a slow poll; the doorbell wakes it.
    lock = xlock.Lock("x", namespace=ns)
    lock.acquire()
    actor.send(op="lock", ns=ns, name="x", timeout=30)
    assert not _replied_within(actor, 0.1)
    released = time.monotonic_ns()
    lock.release()
    reply = actor.reply()
    assert reply["ok"]
    assert reply["mono_ns"] - released < 1_000_000_000


def test_timed_wait_without_sem_clockwait(ns: str, actor: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fallback for glibc < 2.30: sem_timedwait on CLOCK_REALTIME, one slice at a time [XL-WAIT-4].
    from xlock import _libc

    monkeypatch.setattr(_libc, "HAVE_CLOCKWAIT", False)
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    lock = xlock.Lock("x", namespace=ns)
    assert lock.acquire(timeout=0.03) is False
    waiter = threading.Thread(target=lock.acquire, kwargs={"timeout": 30})
    waiter.start()
    assert actor.call(op="release")["ok"]
    waiter.join(30)
    assert lock.locked()
    lock.release()


def test_timed_waiter_notices_a_foreign_flock_releaser(ns: str) -> None:
    flock = shutil.which("flock")
    if flock is None:
        pytest.skip("util-linux flock(1) is not installed")
    lock = xlock.Lock("x", namespace=ns)
    holder = subprocess.Popen(
        [flock, lock.path, "-c", "echo held; read line"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    assert lock.acquire(blocking=False) is False
    result: list[int] = []

    def wait() -> None:
        assert lock.acquire(timeout=30)
        result.append(time.monotonic_ns())

    t = threading.Thread(target=wait)
    t.start()
    holder.stdin.write("go\n")
    holder.stdin.close()
    assert holder.wait(10) == 0
    exited = time.monotonic_ns()
    t.join(30)
    assert result and result[0] - exited < 1_000_000_000  # the safety poll, not a timeout
    lock.release()


def test_flock1_interop_both_directions(ns: str) -> None:
    flock = shutil.which("flock")
    if flock is None:
        pytest.skip("util-linux flock(1) is not installed")
    lock = xlock.Lock("interop", namespace=ns)
    lock.acquire()
    assert subprocess.run([flock, "-n", lock.path, "true"]).returncode == 1
    assert subprocess.run([flock, "-n", "-s", lock.path, "true"]).returncode == 1
    lock.release()
    assert subprocess.run([flock, "-n", lock.path, "true"]).returncode == 0
    shared = xlock.Lock("interop", namespace=ns, shared=True)
    shared.acquire()
    assert subprocess.run([flock, "-n", "-s", lock.path, "true"]).returncode == 0
    assert subprocess.run([flock, "-n", lock.path, "true"]).returncode == 1
    shared.release()


def test_raw_fcntl_flock_in_another_process_excludes(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    held_r, held_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        fd = os.open(lock.path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(held_w, b"h")
        os.read(go_r, 1)
        os._exit(0)
    assert os.read(held_r, 1) == b"h"
    assert lock.acquire(blocking=False) is False
    os.write(go_w, b"g")
    os.waitpid(pid, 0)
    assert lock.acquire(timeout=10)
    lock.release()
    for fd in (held_r, held_w, go_r, go_w):
        os.close(fd)


def test_sigkill_of_holder_releases(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    lock = xlock.Lock("x", namespace=ns)
    assert lock.acquire(blocking=False) is False
    actor.kill()
    assert lock.acquire(timeout=10)
    lock.release()


def _replied_within(actor: Actor, seconds: float) -> bool:
    import select

    assert actor.proc.stdout is not None
    ready, _, _ = select.select([actor.proc.stdout], [], [], seconds)
    return bool(ready)


def test_one_release_wakes_every_timed_shared_waiter(ns: str, make_actor: object) -> None:
    # [XL-WAIT-5]: a shared waiter passes the doorbell on, so the second one is not left to the poll.
    readers = [make_actor(), make_actor()]  # type: ignore[operator]
    lock = xlock.Lock("db", namespace=ns)
    lock.acquire()
    for reader in readers:
        reader.send(op="lock", ns=ns, name="db", shared=True, timeout=30)
    for reader in readers:
        assert not _replied_within(reader, 0.1)
    released = time.monotonic_ns()
    lock.release()
    for reader in readers:
        reply = reader.reply()
        assert reply["ok"] and reply["mono_ns"] - released < 1_000_000_000


def test_close_during_a_wait_in_another_thread(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    lock = xlock.Lock("x", namespace=ns)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            assert lock.acquire(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    lock.close()
    assert actor.call(op="release")["ok"]
    t.join(30)
    assert not t.is_alive() and not lock.locked()
    assert isinstance(errors[0], xlock.InvalidArgument)
    probe = xlock.Lock("x", namespace=ns)
    assert probe.acquire(blocking=False)  # nothing is left held by the closed object
    probe.release()
