"""The crash-safe counting semaphore (§10) and the raw POSIX semaphore (§11)."""

from __future__ import annotations

import fcntl
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import wait_until
from conftest import Actor, asleep_on_bell_word
from test_lock import _replied_within

import xlock

NOBODY = 65534


def test_capacity_file_and_slots(ns: str) -> None:
    sem = xlock.Semaphore("Pool", 3, namespace=ns)
    assert sem.path == os.path.join(ns, "!pool.sem")
    with open(sem.path, "rb") as f:
        assert f.read() == b"xlock/1 semaphore capacity=3\n"
    assert stat.S_IMODE(os.stat(sem.path).st_mode) == 0o600
    assert [sem.acquire(), sem.acquire(), sem.acquire()] == [True, True, True]
    assert sem.slots == (0, 1, 2) and sem.slot == 2
    assert sem.held == 3 and sem.locked()
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0) is False
    sem.release()  # returns slot 2, the most recent
    assert sem.acquire(blocking=False) and sem.slot == 2
    for _ in range(3):
        sem.release()
    with pytest.raises(xlock.NotHeld):
        sem.release()
    assert sorted(os.listdir(ns)) == [
        "!pool.0.slot",
        "!pool.1.slot",
        "!pool.2.slot",
        "!pool.sem",
        ".xlock-bell",
    ]
    assert sem.bell_word == xlock.bell_word("s", "Pool")  # [XL-SEM-7]


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
    assert sem.acquire(blocking=False) is False
    a.kill()  # SIGKILL: its permit comes back at once [XL-CSEM-2]
    assert sem.acquire(timeout=10) and sem.slot == 0
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
    assert sem.acquire() and sem.slot == 1  # slot 0 is the foreign program's [XL-CSEM-7]
    holder.stdin.close()
    holder.wait(10)
    assert sem.acquire(timeout=10) and sem.slot == 0
    sem.close()


def test_posix_semaphore_value_and_over_release(ns: str) -> None:
    sem = xlock.PosixSemaphore("p", value=2, namespace=ns)
    try:
        assert sem.semaphore_name == xlock.semaphore_name("p", *sem.namespace_identity, "p")
        with pytest.warns(DeprecationWarning):
            assert sem.sem_name == sem.semaphore_name
        assert sem.path == "/dev/shm/sem." + sem.semaphore_name[1:]
        assert sem.value() == 2
        sem.acquire()
        assert sem.acquire(timeout=1)
        assert sem.held == 2 and sem.value() == 0
        assert sem.acquire(blocking=False) is False
        start = time.monotonic()
        assert sem.acquire(timeout=0.05) is False
        assert time.monotonic() - start >= 0.05
        sem.release()
        sem.release()
        with pytest.raises(xlock.NotHeld):
            sem.release()
        assert sem.value() == 2
        again = xlock.PosixSemaphore("p", value=5, namespace=ns)  # value applies only on creation
        assert again.value() == 2
        st = os.stat(sem.path)
        assert stat.S_IMODE(st.st_mode) == 0o600
        for bad in (-1, 2**31, 1.5, True):
            with pytest.raises(xlock.InvalidArgument, match=f"not {bad!r}"):  # the value as given
                xlock.PosixSemaphore("p", value=bad, namespace=ns)  # type: ignore[arg-type]
        again.acquire()
        again.close()  # posts back what it holds [XL-PSEM-6]
        assert sem.value() == 2
    finally:
        assert sem.unlink()
    assert not sem.unlink()


def test_posix_semaphore_planted_by_another_user_is_refused(ns: str) -> None:
    space = xlock.Namespace(ns)
    path = "/dev/shm/sem." + xlock.semaphore_name("p", space.dev, space.ino, "planted")[1:]
    with open(path, "wb") as f:
        f.write(bytes(32))
    os.chown(path, NOBODY, NOBODY)
    try:
        with pytest.raises(xlock.InsecureNamespace, match="owned by uid 65534"):
            xlock.PosixSemaphore("planted", namespace=space)
    finally:
        assert xlock.remove("planted", namespace=space, kind="posix_semaphore")


@pytest.mark.parametrize("plant", ["empty", "short", "fifo", "directory", "symlink"])
def test_posix_semaphore_file_checked_on_its_descriptor(ns: str, plant: str, tmp_path: Path) -> None:
    # Whatever is at the semaphore's path is checked before it is mapped: never a crash, never a bare
    # OSError, never errno 0 [XL-PSEM-3, XL-ERR-5].
    space = xlock.Namespace(ns)
    path = "/dev/shm/sem." + xlock.semaphore_name("p", space.dev, space.ino, "planted")[1:]
    if plant in ("empty", "short"):
        with open(path, "wb") as f:
            f.write(b"" if plant == "empty" else bytes(8))
    elif plant == "fifo":
        os.mkfifo(path)
    elif plant == "directory":
        os.mkdir(path)
    else:
        os.symlink(tmp_path / "target", path)
    try:
        with pytest.raises(xlock.InsecureNamespace, match=re.escape(path)):
            xlock.PosixSemaphore("planted", namespace=space)
    finally:
        if plant == "directory":
            os.rmdir(path)
        else:
            os.unlink(path)
    assert not os.path.exists(tmp_path / "target")


def _slot_fds(name: str) -> set[int]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if re.search(rf"/{name}\.\d+\.slot$", os.readlink(f"/proc/self/fd/{fd}")):
                fds.add(int(fd))
        except OSError:
            pass
    return fds


def test_threads_of_one_semaphore_while_one_waits(ns: str) -> None:
    # One thread of the object waits (in C on the compiled path) for the only permit; another thread's try
    # fails and its wait goes on; one release serves them in turn, each exactly once [XL-CSEM-5].
    sem = xlock.Semaphore("pool", 1, namespace=ns)
    holder = xlock.Semaphore("pool", 1, namespace=ns)
    assert holder.acquire()
    got: list[str] = []

    def use(who: str, **how: object) -> None:
        assert sem.acquire(**how)  # type: ignore[arg-type]
        got.append(who)
        sem.release()

    first = threading.Thread(target=use, args=("untimed",))
    first.start()
    wait_until(lambda: asleep_on_bell_word(sem, first), "the first thread waits on the bell")
    assert sem.acquire(blocking=False) is False
    second = threading.Thread(target=use, args=("timed",), kwargs={"timeout": 30})
    second.start()
    holder.release()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    assert sorted(got) == ["timed", "untimed"] and sem.held == 0
    assert holder.acquire(blocking=False)  # nothing left held by sem
    holder.close()
    sem.close()


def test_close_while_a_thread_waits_on_a_semaphore(ns: str, tmp_path: Path) -> None:
    # close returns while the thread waits; the thread ends with InvalidArgument, holding nothing, and the
    # slot descriptors are closed once (by it, on the compiled path, when its step returns): a release's
    # ring, after descriptors opened since took the freed numbers, must not make it lock those.
    sem = xlock.Semaphore("pool", 2, namespace=ns)
    holder = xlock.Semaphore("pool", 2, namespace=ns)
    assert holder.acquire() and holder.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            sem.acquire()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    wait_until(lambda: asleep_on_bell_word(sem, t), "the thread waits on the bell")
    closer = threading.Thread(target=sem.close, daemon=True)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "close did not return while a thread waited"
    witnesses = [str(tmp_path / f"witness{i}") for i in range(8)]
    witness_fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o600) for path in witnesses]
    holder.release()  # a ring: the waiter goes round its slots once more, if it still waits
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], xlock.InvalidArgument), errors
    for path, fd in zip(witnesses, witness_fds):
        os.fstat(fd)  # raises EBADF if a stray close took it
        probe = os.open(path, os.O_RDWR)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the waiter locked the witness
        os.close(probe)
        os.close(fd)
    assert _slot_fds("pool") == {slot.fd for slot in holder._slots if slot.fd >= 0}  # none of sem's left
    holder.release()
    other = xlock.Semaphore("pool", 2, namespace=ns)
    assert other.acquire(blocking=False) and other.acquire(blocking=False)  # sem holds nothing
    other.close()
    holder.close()


def test_close_during_waits_in_other_threads(ns: str) -> None:
    sem = xlock.Semaphore("pool", 1, namespace=ns)
    holder = xlock.Semaphore("pool", 1, namespace=ns)
    psem = xlock.PosixSemaphore("p", value=0, namespace=ns)
    holder.acquire()
    errors: list[BaseException] = []

    def wait(obj: xlock.Semaphore | xlock.PosixSemaphore) -> None:
        try:
            assert obj.acquire(timeout=30)
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
