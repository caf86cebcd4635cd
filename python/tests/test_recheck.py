"""The re-check after flock [XL-LOCK-8]: an acquirer whose lock or slot file was unlinked, or replaced by a
rename over its path, since it opened it ends up holding the file the path names now [XL-RM-4]."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from conftest import Actor

import xlock

HOW = ["unlinked", "renamed_over"]


def take_the_path_away(path: str, how: str) -> None:
    """What a foreign remover (rm, systemd-tmpfiles) or an atomic replace does to a lock file."""
    if how == "unlinked":
        os.unlink(path)
        return
    fresh = path + ".fresh"
    fd = os.open(fresh, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.rename(fresh, path)


def path_file_is_held(path: str) -> bool:
    """True if the file the path names now is flocked (by anyone; the tests have one candidate holder)."""
    probe = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(probe)  # also drops the probe's own flock
    return False


def acquire(lock: xlock.Lock, mode: str) -> None:
    if mode == "untimed":
        assert lock.acquire()
    elif mode == "timed":
        assert lock.acquire(timeout=30)
    else:
        assert lock.acquire(blocking=False)


@pytest.mark.parametrize("mode", ["untimed", "timed", "try"])
@pytest.mark.parametrize("how", HOW)
def test_idle_lock_whose_file_was_taken_away_acquires_the_paths_file(ns: str, how: str, mode: str) -> None:
    lock = xlock.Lock("swap", namespace=ns)  # keeps the old file open from here on
    lock.acquire()
    lock.release()
    old_ino = os.stat(lock.path).st_ino
    take_the_path_away(lock.path, how)
    assert os.path.exists(lock.path) == (how == "renamed_over")
    acquire(lock, mode)
    assert os.path.exists(lock.path)  # an unlinked file is recreated [XL-LOCK-2]
    assert os.stat(lock.path).st_ino != old_ino or how == "unlinked"
    assert path_file_is_held(lock.path), f"the lock holds the {how} inode, not the path's file"
    lock.release()
    assert not path_file_is_held(lock.path)


@pytest.mark.parametrize("mode", ["untimed", "timed"])
@pytest.mark.parametrize("how", HOW)
def test_waiter_on_a_file_taken_away_ends_on_the_paths_file(
    ns: str, actor: Actor, how: str, mode: str
) -> None:
    lock = xlock.Lock("swap", namespace=ns)
    assert actor.call(op="lock", ns=ns, name="swap")["ok"]  # the actor holds the file we have open
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            acquire(lock, mode)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    take_the_path_away(lock.path, how)
    assert actor.call(op="release")["ok"]  # the waiter's flock on the old inode now succeeds
    waiter.join(30)
    assert not waiter.is_alive() and not errors, errors
    assert lock.locked()
    assert path_file_is_held(lock.path), f"the waiter holds the {how} inode, not the path's file"
    # A newcomer by the path is excluded, as it must be.
    assert actor.call(op="lock", ns=ns, name="swap", timeout=0)["error"] == "TIMEOUT"
    lock.release()
    assert not path_file_is_held(lock.path)


@pytest.mark.parametrize("how", HOW)
def test_semaphore_slot_taken_away_is_reopened(ns: str, how: str) -> None:
    sem = xlock.Semaphore("pool", 1, namespace=ns)
    assert sem.acquire() and sem.slot == 0  # opens the slot file, kept open
    sem.release()
    slot_path = os.path.join(ns, xlock.slot_file_name("pool", 0))
    assert os.path.exists(slot_path)
    take_the_path_away(slot_path, how)
    assert sem.acquire(blocking=False) and sem.slot == 0
    assert path_file_is_held(slot_path), f"the permit is on the {how} slot inode, not the path's file"
    sem.release()
    assert not path_file_is_held(slot_path)


@pytest.mark.parametrize("call", ["fstat", "statx", "none"])
@pytest.mark.parametrize("how", HOW)
def test_each_link_count_call_rechecks(ns: str, how: str, call: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ABI mode's link-count re-check [XL-LOCK-8] through fstat (x86_64, aarch64), statx (elsewhere) or,
    # with neither, os.fstat; the compiled path re-checks in C and ignores the choice.
    from xlock import _libc, _lockfile

    if call == "fstat" and not _libc.FSTAT_NLINK:
        pytest.skip(f"struct stat's st_nlink offset is not known on {os.uname().machine}")
    if call == "statx" and not _libc.HAVE_STATX:
        pytest.skip("this libc has no statx")
    chosen = {"fstat": _libc.lib.fstat, "statx": _lockfile._statx_nlink, "none": _lockfile._no_stat_nlink}
    monkeypatch.setattr(_lockfile, "_stat_nlink", chosen[call])
    lock = xlock.Lock("swap", namespace=ns)
    lock.acquire()
    assert path_file_is_held(lock.path)
    lock.release()
    take_the_path_away(lock.path, how)
    lock.acquire()
    assert path_file_is_held(lock.path), f"the lock holds the {how} inode, not the path's file"
    lock.release()
