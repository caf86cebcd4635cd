"""Shared namespaces: a member who hard-links a lock file elsewhere cannot make two holders after a correct
removal, because every acquirer in a shared namespace re-checks that the path names its inode."""

from __future__ import annotations

import os

from xlock_conformance.checks import NOBODY, blocked_then_freed, run_as
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
            f"driver '{remover.label}': remove of the idle lock {path} replied {removed.data} [XL-RM-2]")
        h_new = newcomer.call("open", kind="lock", name=name, namespace=ns)["handle"]
        newcomer.call("try_acquire", handle=h_new)
        r = old.request("try_acquire", handle=h_old)
        assert not r.ok and r.error == "WOULD_BLOCK", (
            f"driver '{newcomer.label}' holds {path} (a new file); driver '{old.label}', whose object opened the old "
            f"inode (removed, but hard-linked elsewhere by uid {NOBODY}, so st_nlink is 1), got "
            f"{r.error or 'the lock'} from try_acquire: two holders. In a shared namespace the re-check after flock "
            "must be the strict one (the path names the recorded dev and inode) [XL-LOCK-8, XL-THREAT-3]")
        got, _ = blocked_then_freed(old, "acquire", {"handle": h_old, "timeout_ms": 10_000},
                                    lambda: newcomer.call("release", handle=h_new),
                                    f"driver '{newcomer.label}' holds the new {path}", window=0.1)
        newcomer.fails("WOULD_BLOCK", "try_acquire", handle=h_new,
                       why=f"driver '{old.label}' holds the lock on the file the path names")
        old.call("release", handle=h_old)
