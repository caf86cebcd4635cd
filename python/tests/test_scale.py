"""Many names leave nothing behind: 10,000 locks and 1,000 counting semaphores locked, timed-waited on
and removed with `xlock remove --all-idle` leave no file in the namespace but its bell, and nothing in
/dev/shm [XL-SEM-2, XL-BELL-7, XL-RM-8].
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import draft1_doorbell

import xlock

NAMES = 10_000
SEMAPHORES = 1_000


def test_ten_thousand_names_leave_nothing_behind(ns: str) -> None:
    space = xlock.Namespace(ns)
    lock_names = [f"job-{i}" for i in range(NAMES)]
    sem_names = [f"pool-{i}" for i in range(SEMAPHORES)]
    try:
        for name in lock_names:
            holder = xlock.Lock(name, namespace=space)
            waiter = xlock.Lock(name, namespace=space)
            holder.acquire()
            # one announced attempt on the bell word [XL-WAIT-12]
            assert waiter.acquire(timeout=0) is False, f"{name}: two holders"
            holder.release()
            assert waiter.acquire(timeout=1)
            waiter.close()
            holder.close()
        for name in sem_names:
            sem = xlock.Semaphore(name, 2, namespace=space)
            sem.acquire()
            sem.acquire()
            assert sem.acquire(timeout=0) is False
            sem.close()
        dev, ino = space.dev, space.ino
    finally:
        space.close()
    assert len(os.listdir(ns)) == NAMES + SEMAPHORES * 3 + 1
    done = subprocess.run(
        [sys.executable, "-m", "xlock", "--namespace", ns, "remove", "--all-idle"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("removed: ") == NAMES + SEMAPHORES
    assert os.listdir(ns) == [".xlock-bell"]  # the namespace's one bell stays [XL-BELL-7]
    shm = set(os.listdir("/dev/shm"))
    for names, kind in ((lock_names, "l"), (sem_names, "s")):
        for name in names:
            assert draft1_doorbell(kind, dev, ino, name.encode()) not in shm
            assert "sem." + xlock.semaphore_name("p", dev, ino, name)[1:] not in shm
