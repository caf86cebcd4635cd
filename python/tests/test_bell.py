"""The namespace's bell (§9a) under attack: planted files, truncation under a live mapping, as another
user of a world-shared namespace. Nothing crashes, no wait overruns its deadline by more than 50 ms,
and wake-ups still happen by the safety poll [XL-BELL-3, XL-BELL-5, XL-BELL-8, XL-WAIT-7, XL-THREAT-3].
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import NOBODY

import xlock
from xlock import _bell

OVERRUN_S = 0.05  # a wait ends no later than its deadline + 50 ms [XL-THREAT-2, XL-WAIT-12]


def as_nobody(*argv: str) -> None:
    subprocess.run([*NOBODY, *argv], check=True, timeout=60)


def timed_out_within(obj: xlock.Lock | xlock.Semaphore, timeout: float) -> float:
    """Wait for ``obj`` with ``timeout``, expect ``Timeout``; return how long after the deadline it came."""
    start = time.monotonic()
    assert obj.acquire(timeout=timeout) is False
    late = time.monotonic() - start - timeout
    assert late >= 0  # never earlier than the deadline [XL-WAIT-3]
    return late


def acquired_after_release(waiter: xlock.Lock | xlock.Semaphore, release: object) -> None:
    """``waiter`` waits (5 s deadline) while another thread releases; it must get it before the
    deadline, by the ring or, with an unusable bell, by the safety poll [XL-WAIT-7]."""
    got: list[float] = []

    def wait() -> None:
        start = time.monotonic()
        assert waiter.acquire(timeout=5)
        got.append(time.monotonic() - start)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)  # not synchronisation: the waiter may start before or after; both must work
    assert callable(release)
    release()
    t.join(10)
    assert not t.is_alive() and got and got[0] < 5
    waiter.release()


PLANTS = {
    "empty": "touch {bell}",
    "wrong size": "head -c 100 /dev/zero > {bell}",
    "one page too many": "head -c 8192 /dev/zero > {bell}",
    "fifo": "mkfifo {bell}",
    "symlink": "ln -s /etc/passwd {bell}",
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_planted_bell_falls_back_to_the_safety_poll(world_ns: str, plant: str) -> None:
    bell = os.path.join(world_ns, _bell.BELL_FILE)
    as_nobody("sh", "-c", PLANTS[plant].format(bell=bell))
    holder = xlock.Lock("job", namespace=world_ns)
    waiter = xlock.Lock("job", namespace=world_ns)
    sem_holder = xlock.Semaphore("pool", 1, namespace=world_ns)
    sem_waiter = xlock.Semaphore("pool", 1, namespace=world_ns)
    try:
        assert _bell.bell_of(holder._ns, create=False).state.startswith("unusable")
        holder.acquire()
        sem_holder.acquire()
        assert timed_out_within(waiter, 0.2) < OVERRUN_S
        assert timed_out_within(sem_waiter, 0.2) < OVERRUN_S
        acquired_after_release(waiter, holder.release)
        acquired_after_release(sem_waiter, sem_holder.release)
    finally:
        for obj in (holder, waiter, sem_holder, sem_waiter):
            obj.close()
    # The planted file is never modified, removed or replaced by xlock [XL-BELL-3].
    st = os.lstat(bell)
    assert st.st_uid == 65534


def test_bell_truncated_under_a_live_mapping(world_ns: str) -> None:
    # A member truncates the bell to 0 bytes while this process has it mapped, waits and releases: in a
    # shared namespace the mapping is only touched by the kernel, whose futex calls then fail with
    # EFAULT, and words are read with pread (a short read): no SIGBUS [XL-BELL-5, XL-BELL-8].
    holder = xlock.Lock("job", namespace=world_ns)
    waiter = xlock.Lock("job", namespace=world_ns)
    sem_holder = xlock.Semaphore("pool", 1, namespace=world_ns)
    sem_waiter = xlock.Semaphore("pool", 1, namespace=world_ns)
    bell = os.path.join(world_ns, _bell.BELL_FILE)
    try:
        assert os.stat(bell).st_size == 4096
        assert _bell.bell_of(holder._ns, create=False).state == "ok"
        holder.acquire()
        sem_holder.acquire()
        # a waiter asleep on the word when the file shrinks
        late: list[float] = []
        t = threading.Thread(target=lambda: late.append(timed_out_within(waiter, 0.5)))
        t.start()
        time.sleep(0.1)  # not synchronisation: truncating before the wait starts must work as well
        as_nobody("truncate", "-s", "0", bell)
        t.join(10)
        assert late and late[0] < OVERRUN_S
        assert os.stat(bell).st_size == 0
        assert timed_out_within(waiter, 0.2) < OVERRUN_S
        assert timed_out_within(sem_waiter, 0.2) < OVERRUN_S
        acquired_after_release(waiter, holder.release)
        acquired_after_release(sem_waiter, sem_holder.release)
        # objects made now in this process share the mapped (truncated) bell; another process finds
        # a bell of the wrong size and does not use it
        late_lock = xlock.Lock("late", namespace=world_ns)
        assert late_lock.acquire(timeout=1)
        late_lock.release()
        late_lock.close()
    finally:
        for obj in (holder, waiter, sem_holder, sem_waiter):
            obj.close()


def test_ring_wakes_a_waiter_in_a_shared_namespace(world_ns: str) -> None:
    # With a good bell, a release wakes the waiter through the kernel (FUTEX_WAKE_OP) [XL-BELL-6].
    holder = xlock.Lock("job", namespace=world_ns)
    waiter = xlock.Lock("job", namespace=world_ns)
    try:
        holder.acquire()
        acquired_after_release(waiter, holder.release)
        word = waiter.bell_word
        with open(os.path.join(world_ns, _bell.BELL_FILE), "rb") as f:
            value = int.from_bytes(f.read()[4 * word : 4 * word + 4], sys.byteorder)
        assert value >= 2 and value & 1 == 0  # a ring counted, the waiter bit cleared by it
    finally:
        holder.close()
        waiter.close()


def test_removal_and_status_never_create_the_bell(ns: str) -> None:
    space = xlock.Namespace(ns)
    try:
        assert not xlock.remove("x", namespace=space)
        assert not xlock.remove("x", namespace=space, kind="semaphore")
        assert _bell.bell_of(space, create=False).state == "absent"
        assert os.listdir(ns) == []  # [XL-RM-6]
    finally:
        space.close()
