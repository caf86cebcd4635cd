"""Namespaces: chosen, created and checked the same way by every driver."""

from __future__ import annotations

import os
import shutil
import stat
from typing import Any

import pytest

from xlock_conformance.driver import DriverError, DriverSpec
from xlock_conformance.plugin import spec

PROBE = "xlock-conformance-probe"


@spec("XL-NS-4")
def test_namespace_created(one, lab):
    d = lab.start(one, need=["lock"], umask=0o022)
    fresh = str(lab.tmp / "fresh")
    r = d.call("open", kind="lock", name="x", namespace=fresh)
    assert r["namespace"] == fresh, f"open in {fresh} reports namespace {r['namespace']!r}"
    st = os.lstat(fresh)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, (
        f"the namespace {fresh} was created with mode {oct(stat.S_IMODE(st.st_mode))}, want 0o700 [XL-NS-4]"
    )
    assert st.st_uid == os.geteuid(), f"the namespace {fresh} is owned by uid {st.st_uid}"
    orphan = str(lab.tmp / "missing-parent" / "ns")
    d.fails("OS_ERROR", "open", kind="lock", name="x", namespace=orphan)
    assert not os.path.exists(os.path.dirname(orphan)), "a missing parent must not be created [XL-NS-4]"


@spec("XL-NS-1")
def test_namespace_from_env(one, lab):
    other = lab.make_dir("other")
    d = lab.start(one, need=["lock"], env={"XLOCK_NAMESPACE": lab.ns})
    r = d.call("open", kind="lock", name="x")
    assert r["namespace"] == lab.ns, (
        f"with XLOCK_NAMESPACE={lab.ns} open reports namespace {r['namespace']!r}"
    )
    assert os.path.exists(os.path.join(lab.ns, "x.lock")), f"no x.lock in XLOCK_NAMESPACE {lab.ns}"
    r = d.call("open", kind="lock", name="y", namespace=other)
    assert r["namespace"] == other, (
        f"an explicit namespace must win over XLOCK_NAMESPACE, got {r['namespace']!r}"
    )
    assert os.path.exists(os.path.join(other, "y.lock")) and not os.path.exists(
        os.path.join(lab.ns, "y.lock")
    )


@spec("XL-NS-1", "XL-NS-2")
def test_namespace_default(one, lab):
    # Only the effective uid chooses the default: not TMPDIR, XDG_RUNTIME_DIR or HOME; an empty
    # XLOCK_NAMESPACE counts as unset.
    decoys = {"TMPDIR": lab.ns, "XDG_RUNTIME_DIR": lab.ns, "HOME": lab.ns}
    want = f"/tmp/xlock-{os.geteuid()}"
    for env in ({"XLOCK_NAMESPACE": None, **decoys}, {"XLOCK_NAMESPACE": "", **decoys}):
        d = lab.start(one, need=["lock"], env=env)
        r = d.call("open", kind="lock", name=PROBE)
        assert r["namespace"] == want, (
            f"with {', '.join(f'{k}={v!r}' for k, v in env.items())} the default namespace is "
            f"{r['namespace']!r}, want {want!r} [XL-NS-2]"
        )
        d.call("close", handle=r["handle"])
        if "remove" in d.capabilities:
            d.call("remove", kind="lock", name=PROBE)
    assert os.listdir(lab.ns) == [], f"the decoy directory got files: {os.listdir(lab.ns)}"


@spec("XL-NS-5", "XL-NS-6", "XL-NS-7", "XL-ERR-3")
def test_namespace_insecure(one, lab):
    d = lab.start(one, need=["lock"])
    real = lab.make_dir("real")
    hostile = {
        "world-writable without sticky bit": lab.make_dir("ww", 0o777),
        "group-writable without sticky bit": lab.make_dir("gw", 0o770),
        "owned by uid 65534": lab.make_dir("nobody", 0o700),
        "a symbolic link to a good directory": str(lab.tmp / "link"),
        "a regular file": str(lab.tmp / "file"),
    }
    os.chown(hostile["owned by uid 65534"], 65534, 65534)
    os.symlink(real, hostile["a symbolic link to a good directory"])
    open(hostile["a regular file"], "wb").close()
    kinds: list[tuple[str, dict[str, Any]]] = [("lock", {})] + (
        [("semaphore", {"capacity": 2})] if "semaphore" in d.capabilities else []
    )
    wrong = []
    for what, path in hostile.items():
        for kind, extra in kinds:
            r = d.request("open", kind=kind, name="x", namespace=path, **extra)
            if r.ok or r.error != "INSECURE_NAMESPACE":
                wrong.append(
                    f"open {kind} in a namespace that is {what} ({path}): want INSECURE_NAMESPACE, "
                    f"got {r.error or 'success'} {r.get('message', '')}"
                )
            elif path not in r.get("message", ""):
                wrong.append(
                    f"open {kind} in a namespace that is {what}: the message {r.get('message')!r} "
                    f"does not name the directory {path} [XL-ERR-3]"
                )
    assert not wrong, "\n".join(wrong)
    assert os.listdir(real) == [], f"a symlinked namespace was used: {os.listdir(real)}"
    # Accepted: a sticky world-writable directory (a shared namespace), a symlink in an earlier component.
    sticky = lab.make_dir("sticky", 0o1777)
    d.call("open", kind="lock", name="x", namespace=sticky)
    inner = os.path.join(real, "inner")
    os.mkdir(inner, 0o700)
    via_link = os.path.join(hostile["a symbolic link to a good directory"], "inner")
    r = d.call("open", kind="lock", name="x", namespace=via_link)
    assert os.path.exists(os.path.join(inner, "x.lock")), f"open in {via_link} did not create {inner}/x.lock"


@spec("XL-NS-3")
def test_namespace_relative(one, lab):
    d = lab.start(one, need=["lock"])
    # Relative paths that resolve to this case's own directories, so a driver that wrongly accepts them
    # litters nothing outside the case.
    rel = os.path.relpath(lab.ns)
    for bad in (rel, "./" + rel, os.path.relpath(str(lab.tmp / "absent" / "ns")), "", lab.ns + "\u0000x"):
        d.fails("INVALID_ARGUMENT", "open", kind="lock", name="x", namespace=bad)
    assert os.listdir(lab.ns) == []


@spec("XL-NS-12", "XL-LOCK-8")
def test_namespace_moved(one, lab):
    """Files are made relative to the verified directory descriptor: after the namespace directory is
    renamed and another directory takes its path, an open object keeps working in the renamed one."""
    d = lab.start(one, need=["lock", "remove"])
    h = lab.open(d, "moved")
    hs = lab.open(d, "moved", kind="semaphore", capacity=2) if "semaphore" in d.capabilities else None
    d.call("remove", kind="lock", name="moved", namespace=lab.ns)  # the object must recreate its file
    moved = str(lab.tmp / "ns-moved")
    os.rename(lab.ns, moved)
    os.mkdir(lab.ns, 0o700)
    d.call("try_acquire", handle=h)
    if hs is not None:
        d.call("try_acquire", handle=hs)
    assert os.listdir(lab.ns) == [], (
        f"after the namespace was renamed, files were created at its old path: {os.listdir(lab.ns)} "
        "(re-resolved the path instead of using the directory descriptor) [XL-NS-12]"
    )
    assert "moved.lock" in os.listdir(moved), (
        f"the lock file was not recreated in the renamed namespace {moved}"
    )


@spec("XL-NS-16", "XL-NS-12")
def test_namespace_replaced_between_objects(one, lab):
    """A binding may share one verified namespace among the objects of a process, confirming the path
    before each reuse: after the namespace directory is renamed and another directory takes its path, a
    new object works in the new directory, not in the renamed one, where an older object of the same
    process holds the lock (and the semaphore's only permit)."""
    d = lab.start(one, need=["lock"])
    old = lab.open(d, "replaced")
    d.call("acquire", handle=old)
    sems = "semaphore" in d.capabilities
    if sems:
        old_sem = lab.open(d, "pool", kind="semaphore", capacity=1)
        d.call("acquire", handle=old_sem)
    moved = str(lab.tmp / "ns-moved")
    os.rename(lab.ns, moved)
    os.mkdir(lab.ns, 0o700)
    reused = (
        f"it was opened in the renamed directory {moved}: the process's namespace was reused without "
        f"confirming that the path {lab.ns} still names it [XL-NS-16]"
    )
    new = lab.open(d, "replaced")
    r = d.request("try_acquire", handle=new)
    assert r.ok, f"a new lock object found the lock held ({r.error}): {reused}"
    if sems:
        new_sem = lab.open(d, "pool", kind="semaphore", capacity=1)
        r = d.request("try_acquire", handle=new_sem)
        assert r.ok, f"a new semaphore found its only permit held ({r.error}): {reused}"
    made = sorted(os.listdir(lab.ns))
    assert "replaced.lock" in made, f"no replaced.lock in the directory now at {lab.ns}: {made} [XL-NS-16]"
    d.call("release", handle=new)
    d.call("release", handle=old)


OTHER_UID = 54321  # no account needed: the driver runs with this euid, so its default is ours to spoil


def _as_other(one):
    """`one` run as OTHER_UID: through the driver's own recipe when it has one (an interpreter another uid
    cannot reach), else `setpriv --reuid`."""
    argv = (
        one.as_user(OTHER_UID)
        if one.as_user
        else ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", *one.argv]
    )
    return DriverSpec(one.name, argv, env=dict(one.env), cwd=one.cwd)


@spec("XL-NS-8", "XL-NS-2", "XL-NS-4", "XL-NS-5", "XL-NS-7")
def test_namespace_default_insecure(one, lab):
    """The default namespace must belong to the user with mode 0700; it is refused, not repaired,
    otherwise. The rule applies to how the namespace was chosen, not to its path: the same directory given
    explicitly or by XLOCK_NAMESPACE, shared 1777, is accepted. Runs the driver as uid 54321 so that
    /tmp/xlock-54321 can be spoiled safely; also opens a 0700 directory of uid 65534, which that user
    cannot enter: INSECURE_NAMESPACE naming the owner."""
    if shutil.which("setpriv") is None and one.as_user is None:
        pytest.skip("setpriv (util-linux) is not installed")
    as_other = _as_other(one)
    default = f"/tmp/xlock-{OTHER_UID}"
    shutil.rmtree(default, ignore_errors=True)
    try:
        try:
            d = lab.start(as_other, need=["lock"], env={"XLOCK_NAMESPACE": None})
        except DriverError as exc:
            if lab.drivers and lab.drivers[-1].proc.poll() is not None:
                pytest.skip(
                    f"driver '{one.name}' cannot run as uid {OTHER_UID} here (it exited at start; "
                    f"its interpreter or files may be out of that user's reach): "
                    f"{str(exc).splitlines()[-1].strip()}"
                )
            raise
        r = d.call("open", kind="lock", name="x")
        assert r["namespace"] == default, f"as uid {OTHER_UID} the default namespace is {r['namespace']!r}"
        st = os.lstat(default)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (OTHER_UID, 0o700), (
            f"{default} was created owned by {st.st_uid} with mode {oct(stat.S_IMODE(st.st_mode))}, "
            f"want {OTHER_UID} and 0o700 [XL-NS-4, XL-NS-8]"
        )
        d.call("close", handle=r["handle"])
        spoiled = [
            ("mode 0755", OTHER_UID, 0o755),
            ("mode 0710", OTHER_UID, 0o710),
            ("owned by root, mode 0755", 0, 0o755),
            ("shared 1777, owned by root", 0, 0o1777),
        ]
        wrong = []
        for what, owner, mode in spoiled:
            os.chown(default, owner, owner)
            os.chmod(default, mode)
            r = d.request("open", kind="lock", name="x")
            st = os.lstat(default)
            if r.ok or r.error != "INSECURE_NAMESPACE":
                wrong.append(
                    f"default namespace {default} {what}: want INSECURE_NAMESPACE, got "
                    f"{r.error or 'success'} {r.get('message', '')}"
                )
            elif default not in r.get("message", ""):
                wrong.append(
                    f"default namespace {what}: the message {r.get('message')!r} does not name {default}"
                )
            if (st.st_uid, stat.S_IMODE(st.st_mode)) != (owner, mode):
                wrong.append(
                    f"default namespace {what}: it was changed to owner {st.st_uid} mode "
                    f"{oct(stat.S_IMODE(st.st_mode))}; it must never be repaired automatically"
                )
        # XL-NS-8 by rule: the same directory (1777, root's) given explicitly or by XLOCK_NAMESPACE is a
        # shared namespace like any other.
        r = d.request("open", kind="lock", name="x", namespace=default)
        if not r.ok:
            wrong.append(
                f"{default} (1777, root's) given explicitly: want it accepted as a shared namespace, got "
                f"{r.error} {r.get('message', '')} [XL-NS-8: the rule, not the path]"
            )
        elif r.get("sharing") != "world":
            wrong.append(
                f"{default} (1777) given explicitly reports sharing {r.get('sharing')!r}, want 'world'"
            )
        by_env = lab.start(as_other, need=["lock"], env={"XLOCK_NAMESPACE": default})
        r = by_env.request("open", kind="lock", name="x")
        if not r.ok:
            wrong.append(
                f"{default} (1777, root's) given by XLOCK_NAMESPACE: want it accepted, got {r.error} "
                f"{r.get('message', '')} [XL-NS-8]"
            )
        # A directory another user made and closed (0700): opening it fails with EACCES for this user.
        closed = lab.make_dir("closed", 0o700)
        os.chown(closed, 65534, 65534)
        r = d.request("open", kind="lock", name="x", namespace=closed)
        message = r.get("message", "")
        if r.ok or r.error != "INSECURE_NAMESPACE":
            wrong.append(
                f"{closed} (uid 65534's, 0700) as uid {OTHER_UID}: want INSECURE_NAMESPACE, got "
                f"{r.error or 'success'} {message} [XL-NS-5]"
            )
        elif closed not in message or not ("65534" in message or "nobody" in message):
            wrong.append(
                f"{closed} (uid 65534's, 0700): the message {message!r} must name the directory and its "
                "owner [XL-NS-5]"
            )
        assert not wrong, "\n".join(wrong)
    finally:
        shutil.rmtree(default, ignore_errors=True)
