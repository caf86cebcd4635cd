"""The crash-safe counting semaphore (§10) and the raw POSIX semaphore (§11)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import pytest
from conftest import Actor
from test_lock import _replied_within

import xlock


def test_capacity_file_and_slots(ns: str) -> None:
    sem = xlock.Semaphore("Pool", 3, namespace=ns)
    assert sem.path == os.path.join(ns, "!pool.sem")
    with open(sem.path, "rb") as f:
        assert f.read() == b"xlock/1 semaphore capacity=3\n"
    assert stat.S_IMODE(os.stat(sem.path).st_mode) == 0o600
    assert [sem.acquire(), sem.acquire(), sem.acquire()] == [0, 1, 2]
    assert sem.held == 3 and sem.locked()
    with pytest.raises(xlock.WouldBlock):
        sem.acquire(blocking=False)
    with pytest.raises(xlock.Timeout):
        sem.acquire(timeout=0)
    sem.release()  # returns slot 2, the most recent
    assert sem.acquire(blocking=False) == 2
    for _ in range(3):
        sem.release()
    with pytest.raises(xlock.NotHeld):
        sem.release()
    assert sorted(os.listdir(ns)) == ["!pool.0.slot", "!pool.1.slot", "!pool.2.slot", "!pool.sem"]
    assert sem.doorbell == xlock.semaphore_name("s", sem.namespace.dev, sem.namespace.ino, "Pool")


def test_capacity_mismatch_and_bad_capacity(ns: str) -> None:
    xlock.Semaphore("pool", 3, namespace=ns)
    with pytest.raises(xlock.CapacityMismatch, match=r"capacity 3.*capacity 2"):
        xlock.Semaphore("pool", 2, namespace=ns)
    for bad in (0, 1001, -1, True, 2.0):
        with pytest.raises(xlock.InvalidArgument):
            xlock.Semaphore("other", bad, namespace=ns)  # type: ignore[arg-type]
    with open(os.path.join(ns, "junk.sem"), "w") as f:
        f.write("capacity: 3\n")
    with pytest.raises(xlock.CapacityMismatch, match="does not hold"):
        xlock.Semaphore("junk", 3, namespace=ns)


def test_concurrent_creators_agree(ns: str) -> None:
    errors: list[BaseException] = []

    def create() -> None:
        try:
            xlock.Semaphore("race", 4, namespace=ns).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not [n for n in os.listdir(ns) if n.endswith(".tmp")]


def test_permits_between_processes_and_crash_release(ns: str, make_actor: object) -> None:
    a: Actor = make_actor()  # type: ignore[operator]
    b: Actor = make_actor()  # type: ignore[operator]
    assert a.call(op="sem", ns=ns, name="pool", capacity=2)["slot"] == 0
    assert b.call(op="sem", ns=ns, name="pool", capacity=2)["slot"] == 1
    sem = xlock.Semaphore("pool", 2, namespace=ns)
    with pytest.raises(xlock.WouldBlock):
        sem.acquire(blocking=False)
    a.kill()  # SIGKILL: its permit comes back at once [XL-CSEM-2]
    assert sem.acquire(timeout=10) == 0
    b.send(op="sem", ns=ns, name="pool", capacity=2, timeout=30)
    assert not _replied_within(b, 0.1)  # b waits: both permits are held
    released = time.monotonic_ns()
    sem.release()  # the doorbell wakes b's timed wait
    reply = b.reply()
    assert reply["ok"] and reply["slot"] == 0
    assert reply["mono_ns"] - released < 1_000_000_000


def test_foreign_flock_holds_a_permit(ns: str) -> None:
    import shutil

    flock = shutil.which("flock")
    if flock is None:
        pytest.skip("util-linux flock(1) is not installed")
    sem = xlock.Semaphore("pool", 2, namespace=ns)
    slot0 = os.path.join(ns, xlock.slot_file_name("pool", 0))
    holder = subprocess.Popen(
        [flock, slot0, "-c", "echo held; read x"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    assert sem.acquire() == 1  # slot 0 is the foreign program's [XL-CSEM-7]
    holder.stdin.close()
    holder.wait(10)
    assert sem.acquire(timeout=10) == 0
    sem.close()


def test_posix_semaphore_value_and_over_release(ns: str) -> None:
    sem = xlock.PosixSemaphore("p", value=2, namespace=ns)
    try:
        assert sem.sem_name == xlock.semaphore_name("p", sem.namespace.dev, sem.namespace.ino, "p")
        assert sem.value() == 2
        sem.acquire()
        sem.acquire(timeout=1)
        assert sem.held == 2 and sem.value() == 0
        with pytest.raises(xlock.WouldBlock):
            sem.acquire(blocking=False)
        start = time.monotonic()
        with pytest.raises(xlock.Timeout):
            sem.acquire(timeout=0.05)
        assert time.monotonic() - start >= 0.05
        sem.release()
        sem.release()
        with pytest.raises(xlock.NotHeld):
            sem.release()
        assert sem.value() == 2
        again = xlock.PosixSemaphore("p", value=5, namespace=ns)  # value applies only on creation
        assert again.value() == 2
        st = os.stat("/dev/shm/sem." + sem.sem_name[1:])
        assert stat.S_IMODE(st.st_mode) == 0o600
        with pytest.raises(xlock.InvalidArgument):
            xlock.PosixSemaphore("p", value=-1, namespace=ns)
    finally:
        assert sem.unlink()
    assert not sem.unlink()


def test_posix_semaphore_planted_by_another_user_is_refused(ns: str) -> None:
    space = xlock.Namespace(ns)
    sem_name = xlock.semaphore_name("p", space.dev, space.ino, "planted")
    code = (
        "import os, sys\n"
        "from xlock import _doorbell\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "_doorbell.open_semaphore(sys.argv[1], 0o666, 1)\n"
    )
    subprocess.run([sys.executable, "-c", code, sem_name], check=True, timeout=60)
    try:
        assert os.stat("/dev/shm/sem." + sem_name[1:]).st_uid == 65534
        with pytest.raises(xlock.InsecureNamespace, match="owned by uid 65534"):
            xlock.PosixSemaphore("planted", namespace=space)
    finally:
        assert xlock.remove("planted", namespace=space, kind="posix_semaphore")


def test_close_during_waits_in_other_threads(ns: str) -> None:
    sem = xlock.Semaphore("pool", 1, namespace=ns)
    holder = xlock.Semaphore("pool", 1, namespace=ns)
    psem = xlock.PosixSemaphore("p", value=0, namespace=ns)
    holder.acquire()
    errors: list[BaseException] = []

    def wait(obj: xlock.Semaphore | xlock.PosixSemaphore) -> None:
        try:
            obj.acquire(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wait, args=(obj,)) for obj in (sem, psem)]
    for t in threads:
        t.start()
    sem.close()
    psem.close()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert [type(e) for e in errors] == [xlock.InvalidArgument, xlock.InvalidArgument]
    assert sem.held == 0 and psem.held == 0
    holder.release()
    assert psem.unlink()
