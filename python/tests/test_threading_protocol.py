"""The ``threading`` protocol of every xlock object: ``acquire`` returns a bool, ``with`` takes the
object's default timeout, ``locked()``, ``RLock``, the decorator form, and static types that show misuse."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import xlock


def test_threading_lock_documented_examples_run_with_xlock_lock(ns: str) -> None:
    """The examples of the ``threading`` docs (Lock objects; "Using locks, conditions, and semaphores in
    the with statement"), unchanged but for the constructor."""
    some_lock = xlock.Lock("docs", namespace=ns)  # was: threading.Lock()
    done = []

    with some_lock:
        # do something...
        done.append("with")

    some_lock.acquire()
    try:
        # do something...
        done.append("acquire")
    finally:
        some_lock.release()
    assert done == ["with", "acquire"]

    # acquire(blocking=True, timeout=-1): "The return value is True if the lock is acquired
    # successfully, False if not (for example if the timeout expired)."
    lock = some_lock
    assert lock.acquire() is True
    assert lock.locked() is True
    lock.release()
    assert lock.locked() is False
    assert lock.acquire(blocking=True, timeout=-1) is True
    lock.release()

    # held elsewhere (another object of the name excludes like another process) [XL-HOLD-1]
    other = xlock.Lock("docs", namespace=ns)
    assert other.acquire()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(False) is False
    assert lock.acquire(timeout=0.05) is False
    assert lock.acquire(True, 0) is False
    assert lock.locked() is False
    # "It is forbidden to specify a timeout when blocking is False."
    with pytest.raises(ValueError):
        lock.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError):
        lock.acquire(False, 0)
    # "When invoked on an unlocked lock, a RuntimeError is raised."
    with pytest.raises(RuntimeError):
        lock.release()
    other.release()
    if lock.acquire(blocking=False):
        lock.release()
    else:
        raise AssertionError("the lock is free: acquire(blocking=False) must return True")


def test_threading_semaphore_documented_example_runs_with_xlock_semaphore(ns: str) -> None:
    maxconnections = 5
    pool_sema = xlock.Semaphore("pool", maxconnections, namespace=ns)  # was: BoundedSemaphore(value=...)
    used = []

    with pool_sema:
        conn = open(os.devnull)  # was: connectdb()
        try:
            used.append(pool_sema.slot)
        finally:
            conn.close()
    assert used == [0] and pool_sema.slot is None and pool_sema.slots == ()


def test_semaphore_acquire_returns_true_and_exposes_its_slot(ns: str) -> None:
    sem = xlock.Semaphore("s", 2, namespace=ns)
    assert sem.acquire() is True and sem.slot == 0  # slot 0 no longer reads as a failure
    assert sem.acquire(blocking=False) is True and sem.slots == (0, 1) and sem.slot == 1
    assert sem.acquire(blocking=False) is False and sem.acquire(timeout=0.01) is False
    sem.release()
    assert sem.slots == (0,)
    sem.release()
    psem = xlock.PosixSemaphore(f"p-{os.getpid()}", value=1, namespace=ns)
    try:
        assert psem.acquire() is True and psem.acquire(blocking=False) is False
        assert psem.acquire(timeout=0.01) is False
        psem.release()
    finally:
        psem.close()
        psem.unlink()


def test_constructor_timeout_is_the_default_of_with(ns: str) -> None:
    holder = xlock.Lock("t", namespace=ns)
    holder.acquire()
    waiter = xlock.Lock("t", namespace=ns, timeout=0.05)
    assert waiter.timeout == 0.05
    with pytest.raises(xlock.Timeout, match="not acquired within 50 ms"):
        with waiter:
            raise AssertionError("the body ran without the lock")
    sem = xlock.Semaphore("t", 1, namespace=ns, timeout=0)
    with sem, pytest.raises(xlock.Timeout):
        with xlock.Semaphore("t", 1, namespace=ns, timeout=0):
            pass
    assert waiter.acquire(timeout=0.01) is False  # an explicit timeout wins over the default
    holder.release()
    with waiter:
        assert waiter.locked()
    waiter.timeout = None
    assert waiter.timeout is None
    for bad in (float("nan"), "5"):
        with pytest.raises(xlock.InvalidArgument):
            xlock.Lock("t", namespace=ns, timeout=bad)  # type: ignore[arg-type]


def test_rlock_is_the_reentrant_lock_of_a_name(ns: str) -> None:
    r = xlock.RLock("r", namespace=ns)
    assert isinstance(r, xlock.Lock) and r.reentrant
    other = xlock.Lock("r", namespace=ns)
    with r:
        with r:  # threading.RLock: the holder acquires again [XL-HOLD-4]
            assert r.acquire(blocking=False)
            r.release()
        assert other.acquire(blocking=False) is False
        errors: list[BaseException] = []

        def release_elsewhere() -> None:
            try:
                r.release()
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=release_elsewhere)
        t.start()
        t.join()
        assert [type(e) for e in errors] == [xlock.NotHeld] and isinstance(errors[0], RuntimeError)
    assert other.acquire(blocking=False)
    other.release()
    assert "xlock.RLock" in repr(r)


def test_decorator_on_a_function_and_a_coroutine_function(ns: str) -> None:
    lock = xlock.Lock("deco", namespace=ns)
    probe = xlock.Lock("deco", namespace=ns)

    @lock
    def work(x: int) -> int:
        """Work under the lock."""
        assert lock.locked() and probe.acquire(blocking=False) is False
        return x * 2

    assert work(21) == 42 and not lock.locked()
    assert work.__name__ == "work" and work.__doc__ == "Work under the lock."

    @lock
    async def async_work(x: int) -> int:
        assert lock.locked() and probe.acquire(blocking=False) is False
        await asyncio.sleep(0)
        return x + 1

    assert inspect.iscoroutinefunction(async_work)
    assert asyncio.run(async_work(1)) == 2 and not lock.locked()

    sem = xlock.Semaphore("deco-sem", 1, namespace=ns)

    @sem
    def under_permit() -> int | None:
        return sem.slot

    assert under_permit() == 0 and sem.slot is None

    failing = xlock.Lock("deco", namespace=ns, timeout=0.01)

    @failing
    def never() -> None:
        raise AssertionError("ran without the lock")

    with probe, pytest.raises(xlock.Timeout):
        never()


def test_async_acquire_returns_true(ns: str) -> None:
    async def main() -> None:
        lock = xlock.Lock("a", namespace=ns)
        assert await lock.acquire_async() is True
        lock.release()
        sem = xlock.Semaphore("a", 1, namespace=ns)
        assert await sem.acquire_async(timeout=1) is True and sem.slot == 0
        sem.release()

    asyncio.run(main())


GOOD = """
from __future__ import annotations

import xlock

lock = xlock.Lock("job", timeout=5)
if lock.acquire(blocking=False):
    lock.release()
ok: bool = lock.acquire(timeout=1.5)
sem = xlock.Semaphore("pool", 2)
if sem.acquire():
    slot: int | None = sem.slot
    slots: tuple[int, ...] = sem.slots
r: xlock.Lock = xlock.RLock("r")


@lock
def f(x: int) -> str:
    return str(x)


@sem
async def g(x: int) -> int:
    return x


async def main() -> None:
    s: str = f(1)
    y: int = await g(1)
    held: bool = await lock.acquire_async(timeout=1)
"""

BAD = """
from __future__ import annotations

import xlock

lock = xlock.Lock("job")
sem = xlock.Semaphore("pool", 2)
lock.acquire(timeout="5")  # misuse: a timeout is a number
slot: int = sem.slot  # misuse: slot may be None


@lock
def f(x: int) -> str:
    return str(x)


@lock
async def g(x: int) -> int:
    return x


f("1")  # misuse: the decorated function keeps its parameters
n: int = g(1)  # misuse: a coroutine, not an int (forgotten await)


async def main() -> None:
    await lock.acquire()  # misuse: acquire returns a bool, not an awaitable
"""


def test_static_types_make_misuse_visible(tmp_path: Path) -> None:
    """``mypy --strict`` on a user's file: correct use is clean, each misuse is an error on its line."""
    pytest.importorskip("mypy", reason="mypy is in the test extra: pip install ./python[test]")
    src = str(Path(xlock.__file__).resolve().parents[1])
    (tmp_path / "good.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad.py").write_text(textwrap.dedent(BAD))
    env = {**os.environ, "MYPYPATH": src}

    def mypy(file: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull, file],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )

    good = mypy("good.py")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = mypy("bad.py")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    flagged = {int(line.split(":")[1]) for line in bad.stdout.splitlines() if ": error:" in line}
    misuses = {i for i, line in enumerate(textwrap.dedent(BAD).splitlines(), 1) if "# misuse" in line}
    assert len(misuses) == 5 and flagged == misuses, bad.stdout
