"""Counting semaphores across drivers, and the raw POSIX named semaphore."""

from __future__ import annotations

import os
import stat
from functools import partial

from xlock_conformance.checks import (
    BELL,
    blocked_then_freed,
    make_posix_semaphore,
    message_names,
    ns_identity,
    sem_name,
    timed_failure,
)
from xlock_conformance.plugin import spec

NAME = "conformance-sem"


@spec("XL-CSEM-1", "XL-CSEM-2", "XL-CSEM-3", "XL-CSEM-5", "XL-CSEM-6", "XL-ERR-3", "XL-RM-5")
def test_semaphore_capacity(pair, lab):
    need = ["semaphore", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    ha = lab.open(a, NAME, kind="semaphore", capacity=3)
    hb = lab.open(b, NAME, kind="semaphore", capacity=3)
    with open(os.path.join(lab.ns, NAME + ".sem"), "rb") as f:
        content = f.read()
    assert content == b"xlock/1 semaphore capacity=3\n", f"capacity file holds {content!r} [XL-CSEM-3]"
    slots = [
        a.call("acquire", handle=ha)["slot"],
        a.call("try_acquire", handle=ha)["slot"],
        b.call("acquire", handle=hb, timeout_ms=1000)["slot"],
    ]
    slot_inodes = {i: os.stat(os.path.join(lab.ns, f"{NAME}.{i}.slot")).st_ino for i in range(3)}
    assert slots == [0, 1, 2], f"three permits got slots {slots}; slots are tried in order 0..N-1 [XL-CSEM-5]"
    b.fails("WOULD_BLOCK", "try_acquire", handle=hb, why="all 3 permits are held")  # never more than N
    r = timed_failure(a, ha, 100)
    message_names(r, NAME, os.path.join(lab.ns, NAME + ".sem"), a)
    assert a.call("locked", handle=ha)["locked"] is True
    a.call("release", handle=ha)  # returns the most recently acquired permit, slot 1 [XL-CSEM-6]
    got = b.call("try_acquire", handle=hb)
    assert got["slot"] == 1, f"after a released its newest permit (slot 1), b got slot {got['slot']}"
    a.fails("WOULD_BLOCK", "try_acquire", handle=ha)
    got, _ = blocked_then_freed(
        a, "acquire", {"handle": ha}, partial(b.call, "release", handle=hb), "all three permits are held"
    )
    for _ in range(2):
        a.call("release", handle=ha)
    b.call("release", handle=hb)
    a.fails("NOT_HELD", "release", handle=ha)
    b.fails("NOT_HELD", "release", handle=hb)
    assert a.call("locked", handle=ha)["locked"] is False
    now = {i: os.stat(os.path.join(lab.ns, f"{NAME}.{i}.slot")).st_ino for i in range(3)}
    assert now == slot_inodes, (
        f"slot files were replaced or recreated: inodes {slot_inodes} became {now} [XL-RM-5]"
    )


@spec("XL-CSEM-1", "XL-CSEM-3", "XL-CSEM-4")
def test_semaphore_capacity_mismatch(pair, lab):
    a, b = lab.start(pair[0], need=["semaphore"]), lab.start(pair[1], need=["semaphore"])
    lab.open(a, NAME, kind="semaphore", capacity=3)
    r = b.fails("CAPACITY_MISMATCH", "open", kind="semaphore", name=NAME, namespace=lab.ns, capacity=2)
    assert "3" in r["message"] and "2" in r["message"], (
        f"the message must give both capacities: {r['message']!r}"
    )
    lab.open(b, NAME, kind="semaphore", capacity=3)
    for bad in (0, -1, 1001):
        b.fails("INVALID_ARGUMENT", "open", kind="semaphore", name="other", namespace=lab.ns, capacity=bad)
    lab.open(b, "max", kind="semaphore", capacity=1000)
    for content in (
        b"xlock/1 semaphore capacity=3",
        b"xlock/1 semaphore capacity=03\n",
        b"garbage\n",
        b"xlock/1 semaphore capacity=3\n" + b"#" * 100,
        b"",
    ):
        with open(os.path.join(lab.ns, "bad.sem"), "wb") as f:
            f.write(content)
        a.fails("CAPACITY_MISMATCH", "open", kind="semaphore", name="bad", namespace=lab.ns, capacity=3)
    leftovers = [f for f in os.listdir(lab.ns) if f.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers} [XL-CSEM-4]"


@spec("XL-PSEM-1", "XL-PSEM-2", "XL-PSEM-4", "XL-PSEM-5", "XL-INTRO-1")
def test_posix_semaphore(pair, lab):
    need = ["posix_semaphore", "timeout"]
    a, b = lab.start(pair[0], need=need), lab.start(pair[1], need=need)
    dev, ino = ns_identity(lab.ns)
    want = sem_name("p", dev, ino, NAME)
    ra = a.call("open", kind="posix_semaphore", name=NAME, namespace=lab.ns, value=2)
    rb = b.call("open", kind="posix_semaphore", name=NAME, namespace=lab.ns, value=5)  # exists: value ignored
    for d, r in ((a, ra), (b, rb)):
        assert r.get("semaphore") == want, (
            f"driver '{d.label}' names the raw semaphore {r.get('semaphore')!r}, want {want!r} [XL-PSEM-1]"
        )
        assert r.get("path") is None, (
            f"driver '{d.label}': a raw semaphore has no path, got {r.get('path')!r}"
        )
    ha, hb = ra["handle"], rb["handle"]
    a.fails("NOT_HELD", "release", handle=ha)
    a.call("acquire", handle=ha)
    b.call("try_acquire", handle=hb)
    a.fails("WOULD_BLOCK", "try_acquire", handle=ha, why="the two drivers took both units of value 2")
    timed_failure(b, hb, 100)
    blocked_then_freed(
        b, "acquire", {"handle": hb}, partial(a.call, "release", handle=ha), "the semaphore's value is 0"
    )
    a.fails("NOT_HELD", "release", handle=ha)
    b.call("release", handle=hb)
    b.call("release", handle=hb)
    b.fails("NOT_HELD", "release", handle=hb)
    a.call("try_acquire", handle=ha)
    b.call("try_acquire", handle=hb)
    a.call("release", handle=ha)
    b.call("release", handle=hb)
    if "remove" in a.capabilities:
        assert a.call("remove", kind="posix_semaphore", name=NAME, namespace=lab.ns)["removed"] is True
        assert not os.path.exists("/dev/shm/sem." + want[1:]), (
            f"remove left /dev/shm/sem.{want[1:]} [XL-PSEM-5]"
        )


@spec("XL-CSEM-2", "XL-CSEM-5", "XL-CSEM-6", "XL-WAIT-11")
def test_semaphore_mixed(available, lab):
    """Six processes mixing every available binding share a semaphore of capacity 3: exactly three hold,
    a release lets exactly one more in, and a killed holder's permit goes to a waiter."""
    need = ["semaphore", "timeout"]
    drivers = [lab.start(available[i % len(available)], need=need) for i in range(6)]
    handles = [lab.open(d, "mixed", kind="semaphore", capacity=3) for d in drivers]
    held = []
    for d, h in zip(drivers, handles):
        r = d.request("try_acquire", handle=h)
        if r.ok:
            held.append((d, h, r["slot"]))
        else:
            assert r.error == "WOULD_BLOCK", f"driver '{d.label}': try_acquire failed with {r.error}"
    got = sorted(slot for _, _, slot in held)
    assert got == [0, 1, 2], (
        f"{len(held)} of 6 processes ({', '.join(d.label for d in drivers)}) hold a permit "
        f"of a capacity-3 semaphore (slots {got}); want exactly 3, slots 0, 1, 2"
    )
    waiting = [(d, h) for d, h in zip(drivers, handles) if all(d is not x for x, _, _ in held)]
    (w1, h1), (w2, h2), (w3, h3) = waiting
    first, second = held[0], held[1]
    r, _ = blocked_then_freed(
        w1,
        "acquire",
        {"handle": h1, "timeout_ms": 10_000},
        lambda: first[0].call("release", handle=first[1]),
        "all 3 permits are held",
    )
    assert r["slot"] == first[2], f"the released slot was {first[2]}, the waiter got {r['slot']}"
    w3.fails("WOULD_BLOCK", "try_acquire", handle=h3, why="a release let exactly one more in")
    r, _ = blocked_then_freed(
        w2,
        "acquire",
        {"handle": h2, "timeout_ms": 10_000},
        lambda: second[0].kill(),
        "all 3 permits are held",
    )
    assert r["slot"] == second[2], f"the killed holder had slot {second[2]}, the waiter got {r['slot']}"
    w3.fails("WOULD_BLOCK", "try_acquire", handle=h3, why="the killed holder's one permit went to a waiter")


@spec("XL-PSEM-3")
def test_posix_semaphore_owner(one, lab):
    """A raw semaphore created by another user is refused in a private namespace and accepted in a shared
    one; one of our own with a sloppy mode gets the namespace file mode."""
    d = lab.start(one, need=["posix_semaphore"])
    shared = lab.make_dir("shared", 0o1777)
    cases = [
        (lab.ns, 65534, 0o666, "INSECURE_NAMESPACE", None),
        (shared, 65534, 0o666, None, 0o666),
        (lab.make_dir("mine", 0o700), os.geteuid(), 0o644, None, 0o600),
    ]
    for ns, owner, mode, error, want_mode in cases:
        dev, ino = ns_identity(ns)
        name = sem_name("p", dev, ino, "foreign")
        d.semaphores.add(name)  # removed at the end of the case
        path = make_posix_semaphore(name, mode, owner)
        r = d.request("open", kind="posix_semaphore", name="foreign", namespace=ns, value=1)
        where = f"raw semaphore {name} owned by uid {owner} with mode {oct(mode)} in namespace {ns}"
        if error:
            assert not r.ok and r.error == error, (
                f"{where}: want {error}, got {r.error or 'success'} {r.data}"
            )
        else:
            assert r.ok, f"{where}: open failed with {r.error}: {r.get('message')}"
            got = stat.S_IMODE(os.stat(path).st_mode)
            assert want_mode is not None, f"{where}: no mode to expect"
            assert got == want_mode, f"{where}: after open its mode is {oct(got)}, want {oct(want_mode)}"


@spec("XL-CSEM-4", "XL-CSEM-3")
def test_semaphore_create_race(available, lab):
    """Six processes of every available binding create the same 30 semaphores at the same moment: the
    capacity file appears atomically, so nobody reads a partial one (CAPACITY_MISMATCH) and no temporary
    file is left behind."""
    drivers = [lab.start(available[i % len(available)], need=["semaphore"]) for i in range(6)]
    names = [f"race-{i}" for i in range(30)]
    sent = [
        (d, [d.send("open", kind="semaphore", name=n, namespace=lab.ns, capacity=3) for n in names])
        for d in drivers
    ]  # pipelined: every driver works through its list while the others do
    wrong = []
    for d, rids in sent:
        for name, rid in zip(names, rids):
            r = d.wait(rid, 10.0)
            if not r.ok:
                wrong.append(
                    f"driver '{d.label}': open semaphore {name!r} failed with {r.error}: {r.get('message')}"
                )
    assert not wrong, "\n".join(wrong[:10])
    for name in names:
        with open(os.path.join(lab.ns, name + ".sem"), "rb") as f:
            assert f.read() == b"xlock/1 semaphore capacity=3\n", f"{name}.sem has a wrong content"
    leftovers = sorted(f for f in os.listdir(lab.ns) if not f.endswith((".sem", ".slot")) and f != BELL)
    assert not leftovers, (
        f"files other than capacity files after the race: {leftovers[:10]} [XL-CSEM-4, XL-ENC-4]"
    )
