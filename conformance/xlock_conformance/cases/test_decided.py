"""Points draft 2 decided (spec/CHANGELOG.md): path formation, removal that refuses or creates nothing,
temporary names that never block creation, argument-check order, huge timeouts, raw semaphores closed
while holding permits, raw semaphores after fork."""

from __future__ import annotations

import os
import signal
from typing import Any

from xlock_conformance.checks import (
    BELL,
    NOBODY,
    ns_identity,
    release_hands_over,
    sem_name,
)
from xlock_conformance.plugin import spec


@spec("XL-NS-14", "XL-INTRO-1")
def test_namespace_trailing_slash(one, lab):
    """A namespace given with trailing `/` is reported without them, and every path is namespace + `/` +
    file."""
    d = lab.start(one, need=["lock"])
    kinds: list[tuple[str, str, dict[str, Any]]] = [("lock", "x.lock", {})] + (
        [("semaphore", "x.sem", {"capacity": 2})] if "semaphore" in d.capabilities else []
    )
    for given in (lab.ns + "/", lab.ns + "//"):
        for kind, file, extra in kinds:
            r = d.call("open", kind=kind, name="x", namespace=given, **extra)
            got = (r.get("namespace"), r.get("path"))
            want = (lab.ns, lab.ns + "/" + file)
            assert got == want, (
                f"open {kind} with namespace {given!r} reports (namespace, path) {got}, want "
                f"{want}: trailing '/' are removed, paths are namespace + '/' + file [XL-NS-14]"
            )


@spec("XL-RM-3", "XL-RM-7")
def test_remove_malformed_capacity(one, lab):
    """Removing a counting semaphore whose capacity file is malformed fails with CAPACITY_MISMATCH (with or
    without a capacity given) and removes nothing."""
    d = lab.start(one, need=["semaphore", "remove"])
    h = lab.open(d, "m", kind="semaphore", capacity=2)
    d.call("try_acquire", handle=h)
    d.call("release", handle=h)
    d.call("close", handle=h)
    with open(os.path.join(lab.ns, "m.sem"), "wb") as f:
        f.write(b"xlock/1 semaphore capacity=two\n")
    before = sorted(os.listdir(lab.ns))
    for extra in ({}, {"capacity": 2}):
        r = d.fails(
            "CAPACITY_MISMATCH",
            "remove",
            kind="semaphore",
            name="m",
            namespace=lab.ns,
            **extra,
            why="its capacity file is malformed [XL-RM-3]",
        )
        assert "m.sem" in r.get("message", ""), (
            f"the message {r.get('message')!r} does not name the capacity file"
        )
        after = sorted(os.listdir(lab.ns))
        assert after == before, f"a refused removal changed the namespace: {before} became {after} [XL-RM-3]"


@spec("XL-RM-6", "XL-RM-7", "XL-BELL-2")
def test_remove_creates_nothing(one, lab):
    """Removal creates nothing: in a fresh namespace, removing a missing lock or semaphore reports
    removed false and leaves the namespace empty (no lock file, no bell); after a real removal removed is
    true, and a second removal false."""
    d = lab.start(one, need=["lock", "remove"])
    ns = lab.make_dir("fresh")
    wrong = []
    removals: list[tuple[str, dict[str, Any]]] = [("lock", {})]
    if "semaphore" in d.capabilities:
        removals += [("semaphore", {}), ("semaphore", {"capacity": 2})]
    if "posix_semaphore" in d.capabilities:
        removals.append(("posix_semaphore", {}))
    for kind, extra in removals:
        r = d.request("remove", kind=kind, name="absent", namespace=ns, **extra)
        if not r.ok or r.get("removed") is not False:
            wrong.append(
                f"remove {kind} {extra} of a missing name replied {r.data}; want removed false [XL-RM-7]"
            )
    if os.listdir(ns):
        wrong.append(
            f"removals of missing names created {sorted(os.listdir(ns))}: removal creates nothing, "
            "not even the bell [XL-RM-6]"
        )
    dev, ino = ns_identity(ns)
    if os.path.exists("/dev/shm/sem." + sem_name("p", dev, ino, "absent")[1:]):
        d.semaphores.add(sem_name("p", dev, ino, "absent"))
        wrong.append("remove of a missing raw semaphore created it [XL-RM-6]")
    assert not wrong, "\n".join(wrong)
    h = d.call("open", kind="lock", name="real", namespace=ns)["handle"]
    d.call("try_acquire", handle=h)
    d.call("release", handle=h)
    d.call("close", handle=h)
    assert d.call("remove", kind="lock", name="real", namespace=ns).get("removed") is True, (
        "remove of an idle lock file did not report removed true [XL-RM-7]"
    )
    assert not os.path.exists(os.path.join(ns, "real.lock"))
    assert d.call("remove", kind="lock", name="real", namespace=ns).get("removed") is False, (
        "a second removal must report removed false [XL-RM-7]"
    )
    assert set(os.listdir(ns)) <= {BELL}, f"removal left or made {sorted(os.listdir(ns))} [XL-RM-6]"


@spec("XL-ENC-3", "XL-ENC-6", "XL-CSEM-4")
def test_temp_names_planted(one, lab):
    """Temporary capacity names planted by another user never block creation: a few `x.<8hex>.tmp` files
    and draft 1's `x.sem.<pid>.tmp` for the next PIDs. The semaphore is created with the exact content and
    the planted files are left alone."""
    d = lab.start(one, need=["semaphore"])
    ns = lab.make_dir("planted-tmp", 0o1777)
    planted = [f"x.{os.urandom(4).hex()}.tmp" for _ in range(5)]
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    planted += [f"x.sem.{pid}.tmp" for pid in range(last + 1, last + 400)]
    for file in planted:
        path = os.path.join(ns, file)
        with open(path, "wb") as f:
            f.write(b"xlock/1 semaphore capacity=9\n")
        os.chmod(path, 0o600)
        os.chown(path, NOBODY, NOBODY)
    r = d.request("open", kind="semaphore", name="x", namespace=ns, capacity=2)
    assert r.ok, (
        f"open semaphore 'x' with planted temporary names failed with {r.error}: {r.get('message')} "
        "[XL-ENC-6]"
    )
    with open(os.path.join(ns, "x.sem"), "rb") as f:
        assert f.read() == b"xlock/1 semaphore capacity=2\n", "the capacity file has a wrong content"
    missing = [p for p in planted if not os.path.exists(os.path.join(ns, p))]
    assert not missing, f"planted files were removed: {missing[:5]}"


@spec("XL-NAME-6", "XL-NAME-3")
def test_argument_order(one, lab):
    """An invalid name with an invalid capacity, value or namespace fails with INVALID_NAME; an invalid
    capacity with a namespace whose parent is missing fails with INVALID_ARGUMENT, before any file-system
    operation."""
    d = lab.start(one, need=["lock"])
    missing = str(lab.tmp / "absent" / "ns")
    d.fails("INVALID_NAME", "open", kind="lock", name="", namespace="relative")
    if "semaphore" in d.capabilities:
        d.fails("INVALID_NAME", "open", kind="semaphore", name="", namespace=lab.ns, capacity=0)
        d.fails("INVALID_NAME", "open", kind="semaphore", name="bad\u0001", namespace=missing, capacity=5000)
        d.fails("INVALID_ARGUMENT", "open", kind="semaphore", name="ok", namespace=missing, capacity=0)
    if "posix_semaphore" in d.capabilities:
        d.fails("INVALID_NAME", "open", kind="posix_semaphore", name="", namespace=lab.ns, value=-1)
        d.fails("INVALID_ARGUMENT", "open", kind="posix_semaphore", name="ok", namespace=missing, value=-1)
    assert not os.path.exists(os.path.dirname(missing)) and os.listdir(lab.ns) == [], (
        "a failed open made files"
    )


@spec("XL-WAIT-3")
def test_huge_timeout(one, lab):
    """A timeout_ms too large for a deadline (10**15 ms, 2**63 ms) means untimed: on a held lock the driver
    blocks (no immediate error, no TIMEOUT), and takes the lock when it is released."""
    need = ["lock", "timeout"]
    a, b = lab.start(one, need=need), lab.start(one, need=need)
    ha, hb = lab.open(a, "huge"), lab.open(b, "huge")
    for timeout_ms in (10**15, 2**63):
        a.call("acquire", handle=ha)
        release_hands_over(
            a, ha, b, hb, f"driver '{a.label}' holds the lock", timeout_ms=timeout_ms, window=0.2
        )
        b.call("release", handle=hb)


@spec("XL-PSEM-6", "XL-PSEM-4")
def test_posix_semaphore_close_posts_back(pair, lab):
    """Closing a raw semaphore object that holds permits posts every one of them back."""
    need = ["posix_semaphore"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    ra = a.call("open", kind="posix_semaphore", name="close", namespace=lab.ns, value=2)
    hb = lab.open(b, "close", kind="posix_semaphore", value=2)
    a.call("try_acquire", handle=ra["handle"])
    a.call("try_acquire", handle=ra["handle"])
    b.fails("WOULD_BLOCK", "try_acquire", handle=hb, why=f"driver '{a.label}' holds both permits")
    a.call("close", handle=ra["handle"])
    for i in range(2):
        r = b.request("try_acquire", handle=hb)
        assert r.ok, (
            f"driver '{a.label}' closed a raw semaphore object holding 2 permits; driver '{b.label}' "
            f"gets {r.error} for permit {i + 1}: closing posts back every permit held [XL-PSEM-6]"
        )
    b.fails("WOULD_BLOCK", "try_acquire", handle=hb, why="the value is 2 and both are held")


@spec("XL-HOLD-11")
def test_fork_posix_semaphore(one, lab):
    """After fork, the child's raw semaphore object holds nothing: release NOT_HELD, locked false; its
    try-acquire finds the value at 0 (the parent holds the only permit)."""
    d = lab.start(one, need=["posix_semaphore", "fork"])
    h = lab.open(d, "forked", kind="posix_semaphore", value=1)
    d.call("acquire", handle=h)
    r = d.call("fork_check", handle=h, timeout=10.0)
    child = r.get("child_pid")
    try:
        seen = {k: r.get(k) for k in ("release", "locked", "try_acquire")}
        assert seen == {"release": "NOT_HELD", "locked": False, "try_acquire": "WOULD_BLOCK"}, (
            f"driver '{d.label}' holds the raw semaphore's only permit and forks; the child reports {seen}, "
            "want release NOT_HELD, locked false, try_acquire WOULD_BLOCK [XL-HOLD-11]"
        )
        assert d.call("locked", handle=h)["locked"] is True
        d.call("release", handle=h)
        d.call("try_acquire", handle=h)
    finally:
        if isinstance(child, int) and child > 0:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
