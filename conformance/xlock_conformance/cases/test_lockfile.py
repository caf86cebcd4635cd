"""Lock files: hostile objects at the path are refused; created files get the namespace's mode."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from xlock_conformance.checks import BELL, draft1_doorbells, ns_identity, sem_name, unlink_quietly
from xlock_conformance.plugin import spec


@spec("XL-LOCK-4", "XL-CSEM-2", "XL-CSEM-3")
def test_lockfile_symlink(one, lab):
    d = lab.start(one, need=["lock"])
    target = str(lab.tmp / "target")
    os.symlink(target, os.path.join(lab.ns, "dangling.lock"))
    d.fails("INSECURE_NAMESPACE", "open", kind="lock", name="dangling", namespace=lab.ns)
    assert not os.path.lexists(target), f"open followed a symlink at the lock path and created {target}"
    existing = str(lab.tmp / "existing")
    with open(existing, "w") as f:
        f.write("keep")
    os.chmod(existing, 0o640)
    before = os.stat(existing)
    os.symlink(existing, os.path.join(lab.ns, "existing.lock"))
    d.fails("INSECURE_NAMESPACE", "open", kind="lock", name="existing", namespace=lab.ns)
    after = os.stat(existing)
    assert (after.st_mode, after.st_size, after.st_mtime_ns) == (
        before.st_mode,
        before.st_size,
        before.st_mtime_ns,
    ), "the symlink's target was changed"
    if "semaphore" in d.capabilities:
        # The capacity file and the slot files are opened like lock files [XL-CSEM-2, XL-CSEM-3].
        os.symlink(target, os.path.join(lab.ns, "capsem.sem"))
        d.fails("INSECURE_NAMESPACE", "open", kind="semaphore", name="capsem", namespace=lab.ns, capacity=2)
        os.symlink(target, os.path.join(lab.ns, "slotsem.0.slot"))
        r = d.request("open", kind="semaphore", name="slotsem", namespace=lab.ns, capacity=1)
        if r.ok:
            d.fails("INSECURE_NAMESPACE", "try_acquire", handle=r["handle"])
        else:
            assert r.error == "INSECURE_NAMESPACE", (
                f"a symlink at slot file slotsem.0.slot: open failed with {r.error}"
            )
        assert not os.path.lexists(target), f"a semaphore followed a symlink and created {target}"


@spec("XL-LOCK-5", "XL-CSEM-2")
def test_lockfile_not_regular(one, lab):
    d = lab.start(one, need=["lock"])
    os.mkfifo(os.path.join(lab.ns, "fifo.lock"), 0o600)
    # A FIFO opened without O_NONBLOCK would hang the driver: the reply deadline turns that into a failure.
    d.fails("INSECURE_NAMESPACE", "open", kind="lock", name="fifo", namespace=lab.ns, timeout=5.0)
    os.mkdir(os.path.join(lab.ns, "dir.lock"), 0o700)
    d.fails("INSECURE_NAMESPACE", "open", kind="lock", name="dir", namespace=lab.ns)
    if "semaphore" in d.capabilities:
        os.mkfifo(os.path.join(lab.ns, "sem.0.slot"), 0o600)
        # Slots are checked like lock files [XL-CSEM-2]: refused at open or at the first acquire.
        r = d.request("open", kind="semaphore", name="sem", namespace=lab.ns, capacity=1, timeout=5.0)
        if r.ok:
            d.fails("INSECURE_NAMESPACE", "try_acquire", handle=r["handle"], timeout=5.0)
        else:
            assert r.error == "INSECURE_NAMESPACE", (
                f"a FIFO at slot file sem.0.slot: open failed with {r.error}, want INSECURE_NAMESPACE"
            )


def _open_m(d, ns, where, sharing, wrong, **args):
    """Open object "m" in `ns`; note in `wrong` a `sharing` other than the namespace's [XL-NS-15]."""
    r = d.call("open", name="m", namespace=ns, **args)
    if r.get("sharing") != sharing:
        wrong.append(
            f"{where}: open {args['kind']} reports sharing {r.get('sharing')!r}, want {sharing!r} [XL-NS-15]"
        )
    return r


@spec(
    "XL-NS-13",
    "XL-NS-15",
    "XL-LOCK-3",
    "XL-CSEM-4",
    "XL-PSEM-2",
    "XL-PSEM-3",
    "XL-ENC-4",
    "XL-FOREIGN-2",
    "XL-BELL-2",
    "XL-SEM-2",
)
def test_file_modes(one, lab):
    """With umask 077 in the driver, every file gets its mode from the namespace (lock and slot files, the
    bell and raw semaphores the file mode; capacity files the file mode without group and other write),
    `sharing` says which kind of namespace it is, and locks and counting semaphores make nothing in
    /dev/shm."""
    d = lab.start(one, need=["lock"], umask=0o077)
    cases = [
        ("private", 0o700, 0o600, "private"),
        ("group", 0o1770, 0o660, "group"),
        ("group-setgid", 0o3770, 0o660, "group"),
        ("world", 0o1777, 0o666, "world"),
    ]
    wrong: list[str] = []
    for label, dir_mode, want, sharing in cases:
        ns = lab.make_dir(label, dir_mode)
        dev, ino = ns_identity(ns)
        modes = {"m.lock": want, BELL: want}
        where = f"{label} namespace (mode {oct(dir_mode)})"
        r = _open_m(d, ns, where, sharing, wrong, kind="lock")
        d.call("try_acquire", handle=r["handle"])
        d.call("release", handle=r["handle"])
        if "semaphore" in d.capabilities:
            r = _open_m(d, ns, where, sharing, wrong, kind="semaphore", capacity=2)
            d.call("try_acquire", handle=r["handle"])
            d.call("release", handle=r["handle"])
            modes |= {"m.sem": want & ~0o022, "m.0.slot": want}
        if "posix_semaphore" in d.capabilities:
            _open_m(d, ns, where, sharing, wrong, kind="posix_semaphore", value=1)
            p = sem_name("p", dev, ino, "m")
            d.semaphores.add(p)
            path = "/dev/shm/sem." + p[1:]
            if not os.path.exists(path):
                wrong.append(
                    f"{label}: the raw POSIX semaphore {p} is not in /dev/shm after open [XL-PSEM-2]"
                )
            elif stat.S_IMODE(os.stat(path).st_mode) != want:
                wrong.append(
                    f"{label} namespace: raw semaphore {p} has mode "
                    f"{oct(stat.S_IMODE(os.stat(path).st_mode))}, want {oct(want)} [XL-NS-13]"
                )
        present = set(os.listdir(ns))
        allowed = set(modes) | {"m.1.slot"}
        if not set(modes) <= present <= allowed:
            wrong.append(f"{label} namespace holds {sorted(present)}; want {sorted(modes)} [XL-ENC-4]")
        for file in sorted(present & allowed):
            mode = stat.S_IMODE(os.stat(os.path.join(ns, file)).st_mode)
            if mode != modes.get(file, want):
                wrong.append(
                    f"{label} namespace (mode {oct(dir_mode)}): {file} has mode {oct(mode)}, want "
                    f"{oct(modes.get(file, want))} [XL-NS-13]"
                )
        leftover = draft1_doorbells(ns, ["m"])
        unlink_quietly(leftover)
        if leftover:
            wrong.append(
                f"{label} namespace: a lock or counting semaphore made {leftover} in /dev/shm; they make "
                "nothing outside the namespace [XL-SEM-2]"
            )
    assert not wrong, "\n".join(wrong)


@spec("XL-LOCK-8")
def test_lockfile_replaced(one, lab):
    """An object whose lock file was replaced or removed since it opened it must end up holding the file
    that the path names now (checked with flock(1) on the path), never the orphaned inode."""
    if shutil.which("flock") is None:
        pytest.skip("util-linux flock(1) is not installed")
    d = lab.start(one, need=["lock"])
    path = os.path.join(lab.ns, "swap.lock")
    h = lab.open(d, "swap")
    for how in ("replaced", "removed"):
        if how == "replaced":
            fresh = os.path.join(lab.ns, "fresh")
            open(fresh, "wb").close()
            os.chmod(fresh, 0o600)
            os.rename(fresh, path)
        else:
            os.unlink(path)
        d.call("try_acquire", handle=h)
        assert os.path.exists(path), f"after the lock file was {how}, acquiring did not recreate {path}"
        free = subprocess.run(["flock", "-n", path, "true"], timeout=10).returncode == 0
        assert not free, (
            f"after the lock file was {how}, the driver acquired, yet flock(1) on the path gets the "
            "lock: the driver holds the orphaned file; it must re-check the path [XL-LOCK-8]"
        )
        d.call("release", handle=h)
