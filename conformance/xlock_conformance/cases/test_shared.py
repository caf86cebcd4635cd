"""Shared namespaces: a member who hard-links a lock file elsewhere cannot make two holders after a correct
removal, because every acquirer in a shared namespace re-checks that the path names its inode."""

from __future__ import annotations

import os
import shutil

import pytest

from xlock_conformance.checks import NOBODY, flock_hold, flock_release, release_hands_over, run_as
from xlock_conformance.plugin import spec


@spec("XL-LOCK-8", "XL-RM-2", "XL-RM-4", "XL-THREAT-3", "XL-NS-9")
def test_shared_hardlink_remove(pair, lab):
    """World-shared namespace (1777). The lock file is hard-linked elsewhere by uid 65534; an object that
    opened the old inode stays open; a driver removes the idle lock correctly; a newcomer creates and
    holds the new file. The old object must not hold the old inode (its link count is still 1): it re-opens
    the path and waits for the newcomer — two holders are never seen."""
    need = ["lock", "remove", "timeout"]
    ns = lab.make_dir("world", 0o1777)
    elsewhere = lab.make_dir("elsewhere", 0o1777)
    for i, (first, second) in enumerate((pair, pair[::-1])):
        old, remover = lab.start(first, need=need), lab.start(second, need=need)
        newcomer = lab.start(second, need=need)
        name = f"linked-{i}"
        path = os.path.join(ns, name + ".lock")
        h_old = old.call("open", kind="lock", name=name, namespace=ns)["handle"]  # creates the file
        old.call("try_acquire", handle=h_old)
        old.call("release", handle=h_old)
        run_as(NOBODY, ["ln", path, os.path.join(elsewhere, f"{name}.keep")])
        removed = remover.call("remove", kind="lock", name=name, namespace=ns)
        assert removed.get("removed") is True and not os.path.exists(path), (
            f"driver '{remover.label}': remove of the idle lock {path} replied {removed.data} [XL-RM-2]"
        )
        h_new = newcomer.call("open", kind="lock", name=name, namespace=ns)["handle"]
        newcomer.call("try_acquire", handle=h_new)
        r = old.request("try_acquire", handle=h_old)
        assert not r.ok and r.error == "WOULD_BLOCK", (
            f"driver '{newcomer.label}' holds {path} (a new file); driver '{old.label}', whose object opened "
            f"the old inode (removed, but hard-linked elsewhere by uid {NOBODY}, so st_nlink is 1), got "
            f"{r.error or 'the lock'} from try_acquire: two holders. In a shared namespace the re-check "
            "after flock must be the strict one (the path names the recorded dev and inode) "
            "[XL-LOCK-8, XL-THREAT-3]"
        )
        release_hands_over(
            newcomer, h_new, old, h_old, f"driver '{newcomer.label}' holds the new {path}", window=0.1
        )
        newcomer.fails(
            "WOULD_BLOCK",
            "try_acquire",
            handle=h_new,
            why=f"driver '{old.label}' holds the lock on the file the path names",
        )
        old.call("release", handle=h_old)


ROUNDS = 30


@spec("XL-LOCK-8", "XL-RM-4", "XL-THREAT-3", "XL-WAIT-7")
def test_shared_hardlink_waiter(pair, lab):
    """The same with a timed waiter blocked on the old inode: util-linux flock(1) holds the lock through the
    hard link (uid 65534 made it), a driver waits with a timeout, flock(1) exits (it rings nothing) and a
    remover removes the idle lock before the waiter's next safety poll; a newcomer then creates and takes
    the new file. Whatever the waiter does, it and the newcomer never both hold."""
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock(1) is not installed")
    need = ["lock", "remove", "timeout"]
    ns = lab.make_dir("world", 0o1777)
    elsewhere = lab.make_dir("elsewhere", 0o1777)
    for i, (first, second) in enumerate((pair, pair[::-1])):
        waiter, remover = lab.start(first, need=need), lab.start(second, need=need)
        name = f"waited-{i}"
        path = os.path.join(ns, name + ".lock")
        link = os.path.join(elsewhere, f"{name}.keep")
        newcomer = lab.start(second, need=need)
        for _attempt in range(ROUNDS):
            hw = waiter.call("open", kind="lock", name=name, namespace=ns)["handle"]
            if not os.path.exists(link):
                run_as(NOBODY, ["ln", path, link])
            holder = flock_hold(link)  # holds the inode the waiter opened, through the hard link
            rid = waiter.send("acquire", handle=hw, timeout_ms=10_000)
            try:
                waiter.no_reply_within(rid, 0.06, "flock(1) holds the lock")
            finally:
                flock_release(holder)
            removed = remover.request("remove", kind="lock", name=name, namespace=ns)
            if removed.ok and removed.get("removed"):
                break
            # The waiter's safety poll came first and took the lock: let go and try again.
            got = waiter.wait(rid, 5.0)
            assert got.ok, (
                f"driver '{waiter.label}': timed acquire failed with {got.error}: {got.get('message')}"
            )
            waiter.call("release", handle=hw)
            waiter.call("close", handle=hw)
            os.unlink(link)
        else:
            raise AssertionError(
                f"in {ROUNDS} rounds the remover never removed the lock before the timed waiter "
                "noticed flock(1)'s release"
            )
        hn = newcomer.call("open", kind="lock", name=name, namespace=ns)["handle"]
        took = newcomer.request("try_acquire", handle=hn)
        early = waiter.poll(rid, 0.3)
        if early is not None and early.ok and took.ok:
            raise AssertionError(
                f"two holders: driver '{waiter.label}' (waiting on the old inode of {path}, removed but "
                "hard-linked "
                f"by uid {NOBODY}, so st_nlink is 1) and driver '{newcomer.label}' (the new file) both hold "
                "the lock. In a shared namespace the re-check after flock must be the strict one [XL-LOCK-8, "
                "XL-THREAT-3]"
            )
        if took.ok:  # the waiter waits for the newcomer, on the file the path names
            waiter.no_reply_within(rid, 0.1, f"driver '{newcomer.label}' holds the new {path}")
            newcomer.call("release", handle=hn)
            got = waiter.wait(rid, 5.0)
            assert got.ok, f"driver '{waiter.label}': timed acquire failed with {got.error} after the release"
        else:
            assert took.error == "WOULD_BLOCK", (
                f"driver '{newcomer.label}': try_acquire failed with {took.error}"
            )
            got = early or waiter.wait(rid, 5.0)
            assert got.ok, f"driver '{waiter.label}': timed acquire failed with {got.error}"
        newcomer.fails("WOULD_BLOCK", "try_acquire", handle=hn, why=f"driver '{waiter.label}' holds the lock")
        waiter.call("release", handle=hw)
