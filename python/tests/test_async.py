"""asyncio: async with never blocks the loop; cancellation leaves nothing held."""

from __future__ import annotations

import asyncio
import os

import pytest
from conftest import Actor

import xlock


def test_async_with_and_loop_keeps_running(ns: str, actor: Actor) -> None:
    assert actor.call(op="lock", ns=ns, name="x")["ok"]

    async def main() -> int:
        lock = xlock.Lock("x", namespace=ns)
        ticks = 0
        waiter = asyncio.ensure_future(lock.acquire_async(timeout=30))
        # The loop keeps running while the acquisition waits: count ticks until we release.
        while ticks < 20:
            await asyncio.sleep(0)
            ticks += 1
        assert not waiter.done()
        await asyncio.get_running_loop().run_in_executor(None, lambda: actor.call(op="release"))
        await waiter
        assert lock.locked()
        lock.release()
        async with lock:
            assert lock.locked()
        assert not lock.locked()
        return ticks

    assert asyncio.run(main()) == 20


def test_tasks_sharing_one_lock_wait_for_each_other(ns: str) -> None:
    async def main() -> list[str]:
        lock = xlock.Lock("x", namespace=ns)
        order: list[str] = []

        async def user(tag: str, gate: asyncio.Event | None) -> None:
            async with lock:
                order.append(tag + "+")
                if gate is not None:
                    await gate.wait()
                order.append(tag + "-")

        gate = asyncio.Event()
        first = asyncio.ensure_future(user("a", gate))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(user("b", None))
        for _ in range(10):
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, second)
        with pytest.raises(xlock.AlreadyHeld):
            async with lock:
                await lock.acquire_async()
        return order

    assert asyncio.run(main()) == ["a+", "a-", "b+", "b-"]


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_cancellation_leaves_nothing_held(ns: str, actor: Actor, timeout: float | None) -> None:
    assert actor.call(op="lock", ns=ns, name="x")["ok"]

    async def main() -> None:
        lock = xlock.Lock("x", namespace=ns)
        task = asyncio.ensure_future(lock.acquire_async(timeout=timeout))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not lock.locked()
        # The holder goes away; the cancelled worker must not grab the lock afterwards.
        await asyncio.get_running_loop().run_in_executor(None, lambda: actor.call(op="release"))
        probe = xlock.Lock("x", namespace=ns)
        assert probe.acquire(timeout=10)
        probe.release()
        assert not lock.locked()
        await lock.acquire_async(timeout=10)
        lock.release()

    asyncio.run(main())


def test_cancellation_race_never_leaks(ns: str) -> None:
    # Cancel at many points of an acquisition that may or may not have completed: whatever happened,
    # afterwards the lock is free.
    async def main() -> None:
        lock = xlock.Lock("x", namespace=ns)
        holder = xlock.Lock("x", namespace=ns)
        for spins in range(30):
            holder.acquire()
            task = asyncio.ensure_future(lock.acquire_async(timeout=10))
            await asyncio.sleep(0)
            holder.release()
            for _ in range(spins % 6):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                lock.release()
            except asyncio.CancelledError:
                pass
            probe = xlock.Lock("x", namespace=ns)
            await probe.acquire_async(timeout=10)
            probe.release()
            probe.close()

    asyncio.run(main())


def test_semaphore_async(ns: str) -> None:
    async def main() -> None:
        sem = xlock.Semaphore("pool", 2, namespace=ns)
        assert await sem.acquire_async() is True and sem.slot == 0
        async with sem:
            assert sem.held == 2
            task = asyncio.ensure_future(sem.acquire_async(timeout=30))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert sem.held == 2
            with pytest.raises(xlock.Timeout):
                await sem.acquire_async(timeout=0.01)
        sem.release()
        assert sem.held == 0
        psem = xlock.PosixSemaphore("p", value=1, namespace=ns)
        async with psem:
            assert psem.held == 1
        psem.unlink()

    asyncio.run(main())


def test_hundred_waiting_tasks_use_one_thread_and_never_stall_the_loop(ns: str, actor: Actor) -> None:
    # 100 `async with` tasks wait while another process holds the lock: they add at most one thread (the
    # process's bell watcher, whatever their number), the loop keeps ticking while they wait (a wait in the
    # loop's thread would stall it for as long as the holder holds), and after the release each holds the
    # lock in turn, alone [XL-WAIT-12].
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    waiters = 100
    hold_s = 0.5  # how long the holder keeps the lock while the loop is watched (a window, not a sync)

    async def main() -> tuple[int, float, int, int]:
        threads_before = len(os.listdir("/proc/self/task"))
        locks = [xlock.Lock("x", namespace=ns, timeout=60) for _ in range(waiters)]
        inside = [0, 0]  # now, most at once
        done = [0]

        async def user(lock: xlock.Lock) -> None:
            async with lock:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
                await asyncio.sleep(0)
                inside[0] -= 1
            done[0] += 1
            lock.close()

        tasks = [asyncio.ensure_future(user(lock)) for lock in locks]
        loop = asyncio.get_running_loop()
        worst = 0.0
        end = loop.time() + hold_s
        while loop.time() < end:
            before = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - before)
        threads_waiting = len(os.listdir("/proc/self/task")) - threads_before
        assert done[0] == 0
        await loop.run_in_executor(None, lambda: actor.call(op="release"))
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return threads_waiting, worst, inside[1], done[0]

    threads, worst_stall, most_inside, done = asyncio.run(main())
    assert threads <= 1, f"{waiters} waiting tasks started {threads} threads"
    assert worst_stall < hold_s / 2, f"the event loop stalled {worst_stall * 1000:.0f} ms"
    assert (most_inside, done) == (1, waiters)


def test_raw_semaphore_waiters_use_a_bounded_number_of_threads(ns: str) -> None:
    # A raw POSIX semaphore has no bell: its asyncio waiters wait in worker threads, at most
    # MAX_WORKERS of them at once whatever the number of waiters; the rest try at the safety polls from
    # the loop. Once the holder posts, the permit passes through every waiter; a cancelled one holds
    # nothing.
    from xlock._async import MAX_WORKERS

    waiters = 40

    async def main() -> tuple[int, int, int]:
        threads_before = len(os.listdir("/proc/self/task"))
        sems = [xlock.PosixSemaphore("raw", value=1, namespace=ns) for _ in range(waiters + 1)]
        holder = sems[-1]
        assert holder.acquire(blocking=False)
        passed = [0]

        async def user(sem: xlock.PosixSemaphore) -> None:
            await sem.acquire_async(timeout=60)
            passed[0] += 1
            sem.release()

        tasks = [asyncio.ensure_future(user(sem)) for sem in sems[:waiters]]
        for _ in range(20):
            await asyncio.sleep(0.005)
        threads = len(os.listdir("/proc/self/task")) - threads_before
        tasks[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        holder.release()
        await asyncio.wait_for(asyncio.gather(*tasks[1:]), 60)
        left = holder.value()
        for sem in sems:
            sem.close()
        holder.unlink()
        return threads, passed[0], left

    threads, passed, left = asyncio.run(main())
    assert threads <= MAX_WORKERS, f"{waiters} waiting tasks started {threads} threads"
    assert (passed, left) == (waiters - 1, 1)
