"""Many names leave nothing behind: 10,000 locks and 1,000 counting semaphores locked, timed-waited on
and removed with `xlock remove --all-idle` leave no file in the namespace but its bell, and nothing in
/dev/shm [XL-SEM-2, XL-BELL-7, XL-RM-8]; 10,000 objects open at once in one process under ulimit -n 10100,
sharing one verified namespace [XL-NS-16].
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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


def test_ten_thousand_lock_objects_under_ulimit(ns: str) -> None:
    # One verified namespace per process [XL-NS-16]: 10,000 Lock objects of one namespace cost one
    # descriptor each (their lock files) plus the namespace's directory and bell, under ulimit -n 10100.
    code = (
        "import os, resource, sys, xlock\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (10100, 10100))\n"
        "ns = sys.argv[1]\n"
        "locks = [xlock.Lock(f'job-{i}', namespace=ns) for i in range(10000)]\n"
        "fds = len(os.listdir('/proc/self/fd'))\n"
        "assert len({lock.namespace_identity for lock in locks}) == 1\n"
        "for lock in locks[::97]:\n"
        "    assert lock.acquire(timeout=1)\n"
        "    lock.release()\n"
        "for lock in locks:\n"
        "    lock.close()\n"
        "print(fds, len(os.listdir('/proc/self/fd')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, ns], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    open_with_locks, open_after = map(int, done.stdout.split())
    # stdin, stdout, stderr, the listing's own descriptor, the namespace directory and the bell
    assert open_with_locks <= NAMES + 6, open_with_locks
    assert open_after <= 6


def test_shared_namespace_is_reconfirmed_before_reuse(tmp_path: Path) -> None:
    # A namespace path that names another directory (or the same one with another mode) by the time the
    # next object is made is opened and checked anew, never reused [XL-NS-16].
    path = tmp_path / "ns"
    first = xlock.Lock("job", namespace=str(path))
    first_identity = first.namespace_identity
    first.close()
    again = xlock.Lock("job", namespace=str(path))
    assert again.namespace_identity == first_identity
    again.close()
    os.rename(path, tmp_path / "old")
    os.mkdir(path, 0o700)
    moved = xlock.Lock("job", namespace=str(path))
    try:
        assert moved.namespace_identity == (os.stat(path).st_dev, os.stat(path).st_ino)
        assert moved.namespace_identity != first_identity
        assert os.path.exists(path / "job.lock")
    finally:
        moved.close()
    os.chmod(path, 0o770)  # group-writable without the sticky bit: insecure [XL-NS-7]
    with pytest.raises(xlock.InsecureNamespace):
        xlock.Lock("job", namespace=str(path))
    os.chmod(path, 0o700)


def test_shared_namespace_survives_fork(ns: str) -> None:
    # The child keeps using the parent's verified namespace and bell: its objects exclude the parent's
    # lock and it holds nothing of the parent's [XL-NS-16, XL-HOLD-7].
    parent = xlock.Lock("job", namespace=ns)
    parent.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            status = 1
            try:
                child = xlock.Lock("job", namespace=ns)
                if child.acquire(timeout=0) is False and not parent.locked():
                    other = xlock.Lock("other", namespace=ns)
                    if other.acquire(timeout=1):
                        other.release()
                        status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        parent.release()
        parent.close()
