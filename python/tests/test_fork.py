"""After fork the child holds nothing and cannot release the parent's lock [XL-HOLD-7, XL-HOLD-8]."""

from __future__ import annotations

import os

import xlock


def _child(fn: object) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = fn()  # type: ignore[operator]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_child_holds_nothing_and_cannot_release(ns: str) -> None:
    lock = xlock.Lock("x", namespace=ns)
    sem = xlock.Semaphore("s", 1, namespace=ns)
    lock.acquire()
    sem.acquire()

    def child() -> int:
        assert not lock.locked() and sem.held == 0
        try:
            lock.release()
            return 2
        except xlock.NotHeld:
            pass
        try:
            sem.release()
            return 3
        except xlock.NotHeld:
            pass
        # the parent still holds both: a fresh attempt in the child fails
        if lock.acquire(blocking=False):
            return 4
        if sem.acquire(blocking=False):
            return 5
        return 0

    assert _child(child) == 0
    assert lock.locked() and sem.held == 1
    other = xlock.Lock("x", namespace=ns)
    assert other.locked() is False
    assert other.acquire(blocking=False) is False, "the parent's lock was released by the child"
    lock.release()
    sem.release()

    def child_takes_it() -> int:
        assert lock.acquire(timeout=10) and sem.acquire(timeout=10)
        lock.release()
        sem.release()
        return 0

    assert _child(child_takes_it) == 0


def test_child_does_not_keep_parent_lock_alive(ns: str) -> None:
    # The child closes inherited descriptors at fork, so the parent's release is a real release.
    lock = xlock.Lock("x", namespace=ns)
    lock.acquire()
    r, w = os.pipe()

    def child() -> int:
        os.close(w)
        os.read(r, 1)  # wait until the parent has released
        probe = xlock.Lock("x", namespace=ns)
        return 0 if probe.acquire(blocking=False) else 1

    pid = os.fork()
    if pid == 0:  # pragma: no cover
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    os.close(r)
    lock.release()
    os.write(w, b"g")
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
