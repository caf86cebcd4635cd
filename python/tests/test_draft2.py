"""Decided points of draft 2 and the defects they fixed: error mapping of planted files, the strict
re-check in shared namespaces, timeouts too large to represent, raw semaphores after fork, bounded
loops [XL-ERR-5, XL-LOCK-8, XL-WAIT-3, XL-HOLD-11, XL-LOCK-12, XL-CSEM-4, XL-NS-4, XL-NAME-6]."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from test_recheck import path_file_is_held

import xlock


@pytest.mark.parametrize("plant", ["fifo", "directory", "device", "socket", "symlink"])
def test_anything_but_a_regular_capacity_file_is_insecure(ns: str, plant: str) -> None:
    # Was: XLockOSError with errno 0 and "remove it: None" [XL-CSEM-3, XL-LOCK-5, XL-ERR-5].
    xlock.Namespace(ns).close()
    path = os.path.join(ns, "pool.sem")
    if plant == "fifo":
        os.mkfifo(path)
    elif plant == "directory":
        os.mkdir(path)
    elif plant == "device":
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null
    elif plant == "socket":
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.close()
    else:
        os.symlink("/etc/passwd", path)
    for attempt in (
        lambda: xlock.Semaphore("pool", 2, namespace=ns),
        lambda: xlock.remove("pool", namespace=ns, kind="semaphore"),
    ):
        with pytest.raises(xlock.InsecureNamespace, match=path) as info:
            attempt()
        assert "None" not in str(info.value)
    assert os.path.lexists(path)  # never removed or followed by xlock


def test_every_failure_as_another_user_is_an_xlock_error(tmp_path: object) -> None:
    # A namespace nobody may use but not write (root's 0755 directory): creating a lock, a capacity file
    # or its temporary file fails with EACCES, which must be an xlock error naming the owner, never a
    # bare PermissionError [XL-ERR-5].
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    ns = tempfile.mkdtemp(prefix="xlock-readonly-", dir="/tmp")
    os.chmod(ns, 0o755)
    code = (
        "import json, os, sys, xlock\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "out = []\n"
        "for make in (lambda: xlock.Lock('x', namespace=sys.argv[1]),\n"
        "             lambda: xlock.Semaphore('pool', 2, namespace=sys.argv[1])):\n"
        "    try:\n"
        "        make()\n"
        "        out.append('ok')\n"
        "    except xlock.XLockError as e:\n"
        "        out.append(e.kind + ': ' + str(e))\n"
        "print(json.dumps(out))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code, ns], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        for result in json.loads(done.stdout):
            assert result.startswith("INSECURE_NAMESPACE: ") and "uid 0 (root)" in result, result
    finally:
        shutil.rmtree(ns)


def test_strict_recheck_in_a_shared_namespace(world_ns: str) -> None:
    # A member hard-links a lock file elsewhere, then it is removed: the old inode keeps st_nlink > 0,
    # so only the strict check (the path names the recorded inode) sends the acquirer to the path's
    # new file [XL-LOCK-8, XL-THREAT-3].
    lock = xlock.Lock("x", namespace=world_ns)
    try:
        lock.acquire()
        lock.release()
        os.link(lock.path, os.path.join(world_ns, "kept-link"))
        os.unlink(lock.path)
        assert lock.acquire(blocking=False)
        assert os.path.exists(lock.path)
        assert path_file_is_held(lock.path), "the lock holds the hard-linked old inode"
        lock.release()
    finally:
        lock.close()


@pytest.mark.parametrize("kind", ["lock", "semaphore", "posix_semaphore"])
def test_huge_and_infinite_timeouts_wait_for_ever_and_nan_is_invalid(ns: str, kind: str) -> None:
    # Was: acquire(timeout=1e300) raised a bare OverflowError [XL-WAIT-3].
    obj: xlock.Lock | xlock.Semaphore | xlock.PosixSemaphore
    if kind == "lock":
        obj = xlock.Lock("t", namespace=ns)
    elif kind == "semaphore":
        obj = xlock.Semaphore("t", 1, namespace=ns)
    else:
        obj = xlock.PosixSemaphore(f"t-{os.getpid()}", namespace=ns)
    try:
        for timeout in (1e300, float("inf"), 2.0**70):
            assert obj.acquire(timeout=timeout)
            obj.release()
        with pytest.raises(xlock.InvalidArgument, match="NaN"):
            assert obj.acquire(timeout=float("nan"))
    finally:
        obj.close()
        if isinstance(obj, xlock.PosixSemaphore):
            obj.unlink()


def test_raw_semaphore_after_fork_holds_nothing(ns: str) -> None:
    # [XL-HOLD-11]: the child's object holds no permits; release is NOT_HELD, close posts nothing.
    sem = xlock.PosixSemaphore(f"fork-{os.getpid()}", value=1, namespace=ns)
    try:
        sem.acquire()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                try:
                    sem.release()
                except xlock.NotHeld:
                    sem.close()
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sem.value() == 0  # the child posted nothing
        sem.release()
        assert sem.value() == 1
    finally:
        sem.close()
        sem.unlink()


def test_arguments_are_checked_name_first(ns: str) -> None:
    # [XL-NAME-6]: an invalid name with an invalid capacity is INVALID_NAME; nothing is created.
    with pytest.raises(xlock.InvalidName):
        xlock.Semaphore("", 0, namespace=ns)
    with pytest.raises(xlock.InvalidName):
        xlock.PosixSemaphore("a\n", value=-1, namespace=ns)
    with pytest.raises(xlock.InvalidArgument):
        xlock.Semaphore("ok", 0, namespace=ns)
    assert not os.path.exists(ns)


def test_namespace_made_under_a_restrictive_umask_is_usable(ns: str) -> None:
    # [XL-NS-4]: the directory this call made is fchmod-ed to 0700 whatever the umask.
    old = os.umask(0o277)
    try:
        with xlock.Lock("x", namespace=ns) as lock:
            assert lock.locked()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ns).st_mode) == 0o700


def test_capacity_file_keeps_being_removed_is_bounded(ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A capacity file that vanishes after every creation ends after 100 rounds with OS_ERROR EAGAIN
    # [XL-LOCK-12, XL-CSEM-4], never a busy loop without end.
    from xlock import _capacity

    real_create = _capacity._create
    rounds = []

    def create_then_lose(space: xlock.Namespace, name: object, capacity: int) -> None:
        real_create(space, name, capacity)  # type: ignore[arg-type]
        os.unlink(os.path.join(space.path, "pool.sem"))
        rounds.append(1)

    monkeypatch.setattr(_capacity, "_create", create_then_lose)
    with pytest.raises(xlock.XLockOSError, match="keeps being replaced") as info:
        xlock.Semaphore("pool", 2, namespace=ns)
    assert info.value.errno == 11 and len(rounds) == 100
