"""One Lock object shared by threads: its fast path (the compiled hold: acquire and release in one C call
each, without the object's mutex) and its slow path (waits, errors, close) never make two holders, lose a
waiter or close a descriptor twice [XL-HOLD-1, XL-HOLD-2, XL-HOLD-3, XL-HOLD-5, XL-HOLD-10]. The same
tests run on the ABI path (tox -e py-abi), where every acquisition takes the mutex.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import is_waiting, wait_until
from conftest import asleep_on_bell_word

import xlock

ROUNDS = 400


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed meanwhile (listdir's own descriptor)
        return ""


def _bump(counter: Path) -> None:
    counter.write_text(str(int(counter.read_text()) + 1))


def test_threads_and_a_process_sharing_one_object_never_hold_twice(ns: str, tmp_path: Path) -> None:
    # Four threads use one object in every way it can be acquired, while another process takes the lock
    # by name: the fast path, the timed and non-blocking paths, the in-process wait and the bell wait all
    # run. `guard` catches two holders in this process; the file counter catches any lost update.
    counter = tmp_path / "counter"
    counter.write_text("0")
    code = f"""
import xlock
from pathlib import Path
counter = Path({str(counter)!r})
with xlock.Lock("hold", namespace={ns!r}) as _:
    pass
lock = xlock.Lock("hold", namespace={ns!r})
for _ in range({ROUNDS}):
    with lock:
        counter.write_text(str(int(counter.read_text()) + 1))
"""
    other = subprocess.Popen([sys.executable, "-c", code])
    lock = xlock.Lock("hold", namespace=ns)
    guard = threading.Lock()
    done: list[int] = []
    failures: list[BaseException] = []

    def hold_once() -> None:
        assert guard.acquire(blocking=False), "two threads hold the lock through one object"
        try:
            _bump(counter)
        finally:
            guard.release()

    def worker(style: int) -> None:
        got = 0
        try:
            while got < ROUNDS:
                if style == 0:
                    with lock:
                        hold_once()
                    got += 1
                    continue
                if style == 1:
                    acquired = lock.acquire(timeout=30)
                elif style == 2:
                    acquired = lock.acquire(blocking=False)
                else:
                    acquired = lock.acquire()
                if acquired:
                    try:
                        hold_once()
                    finally:
                        lock.release()
                    got += 1
            done.append(got)
        except BaseException as exc:  # reported below, with the thread's style
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(style,)) for style in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert other.wait(120) == 0
    assert not failures, failures
    assert done == [ROUNDS] * 4
    assert int(counter.read_text()) == 5 * ROUNDS
    assert not lock.locked()


def test_fast_hold_is_seen_by_every_other_operation(ns: str) -> None:
    lock = xlock.Lock("seen", namespace=ns)
    assert lock.acquire()  # the fast path
    assert lock.locked() and "held" in repr(lock) and "not held" not in repr(lock)
    with pytest.raises(xlock.AlreadyHeld):  # this thread holds it [XL-HOLD-3]
        lock.acquire()
    results: list[object] = []

    def elsewhere() -> None:
        results.append(lock.acquire(blocking=False))
        results.append(lock.acquire(timeout=0.01))

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert results == [False, False]
    probe = xlock.Lock("seen", namespace=ns)
    assert not probe.acquire(blocking=False)  # held for real, in the file
    releaser = threading.Thread(target=lock.release)  # any thread may release [XL-HOLD-5]
    releaser.start()
    releaser.join()
    assert not lock.locked()
    with pytest.raises(xlock.NotHeld):
        lock.release()
    assert probe.acquire(blocking=False)
    probe.release()


def test_a_waiting_thread_gets_the_lock_a_fast_release_frees(
    ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The waiter is in the slow path's in-process wait (its untimed acquire cannot finish while we
    # hold); our release is the fast one, which must wake it. The wait's slice (normally 20 ms, after
    # which a waiter looks again anyway) is made longer than the test's join: a lost wake-up fails.
    monkeypatch.setattr(xlock._lock, "IN_PROCESS_SLICE_S", 120.0)
    lock = xlock.Lock("wake", namespace=ns)
    assert lock.acquire()
    entered = threading.Event()
    got = threading.Event()

    def waiter() -> None:
        entered.set()
        with lock:
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    entered.wait()
    while not lock._waiters:  # until the waiter sleeps in the in-process wait
        time.sleep(0.001)
    assert not got.is_set()
    lock.release()
    t.join(30)
    assert got.is_set() and not lock.locked()


def test_close_while_threads_acquire_and_release(ns: str) -> None:
    # close() takes the object from whichever path has it: afterwards nothing is held, each thread saw
    # only success or the documented errors, and the object's descriptor was closed exactly once (a
    # second close would have closed a descriptor opened since: every descriptor opened meanwhile is
    # still open).
    before = _open_fds()
    lock = xlock.Lock("closing", namespace=ns)
    start = threading.Barrier(5)
    unexpected: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            for _ in range(100_000):
                if lock.acquire(timeout=5):
                    lock.release()
        except (xlock.InvalidArgument, xlock.NotHeld):
            return  # closed under us: the documented outcomes
        except BaseException as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    start.wait()
    witnesses = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
    lock.close()
    more = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
    for t in threads:
        t.join(60)
    assert not unexpected, unexpected
    for fd in witnesses + more:
        os.fstat(fd)  # raises EBADF if a stray close took it
        os.close(fd)
    assert not lock.locked() and lock.closed
    probe = xlock.Lock("closing", namespace=ns)
    assert probe.acquire(blocking=False)  # nothing is left held by the closed object
    probe.close()
    assert not [fd for fd in _open_fds() - before if _target(fd).endswith("closing.lock")]


@pytest.mark.parametrize("style", ["acquire", "with", "timed"])
def test_close_while_a_thread_waits(ns: str, style: str) -> None:
    # The thread sleeps in a blocking flock (on the compiled path inside one C call, xl_hold_wait): close
    # returns at once and leaves it the descriptor; when the flock returns, the thread lets the lock go
    # and rings, closes the descriptor and raises InvalidArgument. Nothing stays held, nothing is closed
    # twice. The holder is a plain flock on another open file description, which does not ring: the
    # only ring is the waiter's.
    before = _open_fds()
    lock = xlock.Lock("x", namespace=ns)
    foreign = os.open(lock.path, os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(foreign, fcntl.LOCK_EX)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            if style == "acquire":
                lock.acquire()
            elif style == "timed":
                lock.acquire(timeout=60)
            else:
                with lock:
                    pass
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    if style == "timed":  # asleep on the lock's bell word (XL-WAIT-12), not in flock
        wait_until(lambda: asleep_on_bell_word(lock, t), "the thread waits on the bell")
    else:
        wait_until(lambda: is_waiting(os.getpid()), "the thread waits in flock")
    closer = threading.Thread(target=lock.close, daemon=True)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "close did not return while a thread waited"
    assert t.is_alive() and lock.closed
    witnesses = [os.open("/dev/null", os.O_RDONLY) for _ in range(8)]
    word = lock._word  # the bell word (private namespace): a waiter elsewhere announces itself in bit 0
    if style != "timed":  # the untimed waiter gets the lock from the foreign release, then lets it go
        word[0] |= 1
    announced = word[0]
    fcntl.flock(foreign, fcntl.LOCK_UN)
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], xlock.InvalidArgument), errors
    if style != "timed":
        assert word[0] == announced + 1  # the waiter's release was rung [XL-LOCK-9]
    for fd in witnesses:
        os.fstat(fd)  # raises EBADF if a stray close took it
        os.close(fd)
    assert not lock.locked()
    fcntl.flock(foreign, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the waiter's flock got the lock, and let it go
    os.close(foreign)
    assert not [fd for fd in _open_fds() - before if _target(fd).endswith("/x.lock")]


def test_fork_while_another_thread_holds_on_the_fast_path(ns: str) -> None:
    # The child holds nothing and never unlocks the parent's open file description [XL-HOLD-7,
    # XL-HOLD-8]; its first acquire opens its own descriptor and works.
    lock = xlock.Lock("forked", namespace=ns)
    held = threading.Event()
    leave = threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            leave.wait(60)

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        ok = not lock.locked() and not lock.acquire(blocking=False)  # the parent still holds it
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock.locked()
    leave.set()
    t.join(30)
    assert not lock.locked()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        ok = lock.acquire(blocking=False) and lock.locked()
        if ok:
            lock.release()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
