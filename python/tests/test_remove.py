"""Safe removal of idle files (§8): never while held, never two holders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import Actor

import xlock


def test_remove_lock(ns: str, actor: Actor) -> None:
    assert not xlock.remove("x", namespace=ns)
    lock = xlock.Lock("x", namespace=ns)
    assert actor.call(op="lock", ns=ns, name="x")["ok"]
    with pytest.raises(xlock.WouldBlock):
        xlock.remove("x", namespace=ns)
    assert os.path.exists(lock.path)
    assert actor.call(op="release")["ok"]
    assert xlock.remove("x", namespace=ns)
    assert not os.path.exists(lock.path)
    lock.acquire()  # the object reopens the path [XL-LOCK-8]
    assert os.path.exists(lock.path)
    assert actor.call(op="lock", ns=ns, name="x", timeout=0)["error"] == "TIMEOUT"
    lock.release()
    with pytest.raises(xlock.InvalidArgument):
        xlock.remove("x", namespace=ns, kind="table")


def test_remove_semaphore(ns: str) -> None:
    sem = xlock.Semaphore("pool", 2, namespace=ns)
    sem.acquire()
    with pytest.raises(xlock.WouldBlock):
        xlock.remove("pool", namespace=ns, kind="semaphore", capacity=2)
    with pytest.raises(xlock.CapacityMismatch):
        xlock.remove("pool", namespace=ns, kind="semaphore", capacity=3)
    sem.release()
    assert xlock.remove("pool", namespace=ns, kind="semaphore")
    assert os.listdir(ns) == [".xlock-bell"]  # the namespace's bell stays [XL-BELL-7]
    assert not xlock.remove("pool", namespace=ns, kind="semaphore", capacity=2)
    assert sem.acquire() and sem.slot == 0  # slot files are recreated on use
    sem.release()


def test_remove_malformed_capacity_file(ns: str) -> None:
    xlock.Namespace(ns).close()
    with open(os.path.join(ns, "junk.sem"), "w") as f:
        f.write("garbage")
    with pytest.raises(xlock.CapacityMismatch):
        xlock.Semaphore("junk", 2, namespace=ns)
    # A malformed capacity file is refused, naming the file and its owner; nothing is removed [XL-RM-3].
    for capacity in (None, 2):
        with pytest.raises(xlock.CapacityMismatch, match=r"junk\.sem \(owned by uid 0.*malformed"):
            xlock.remove("junk", namespace=ns, kind="semaphore", capacity=capacity)
        assert os.listdir(ns) == ["junk.sem"]
    os.unlink(os.path.join(ns, "junk.sem"))
    junk = xlock.Semaphore("junk", 2, namespace=ns)
    assert junk.acquire() and junk.slot == 0


RACER = """
import sys, xlock
ns, counter, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = xlock.Lock("race", namespace=ns)
for i in range(rounds):
    with lock:
        with open(counter) as f:
            n = int(f.read())
        with open(counter, "w") as f:
            f.write(str(n + 1))
    if i % 3 == 0:
        try:
            xlock.remove("race", namespace=ns)
        except xlock.WouldBlock:
            pass
"""


def test_removal_racing_with_acquirers_never_yields_two_holders(ns: str, tmp_path: object) -> None:
    counter = os.path.join(str(tmp_path), "counter")
    with open(counter, "w") as f:
        f.write("0")
    xlock.Namespace(ns).close()
    rounds = 150
    procs = [subprocess.Popen([sys.executable, "-c", RACER, ns, counter, str(rounds)]) for _ in range(3)]
    for p in procs:
        assert p.wait(120) == 0
    with open(counter) as f:
        assert int(f.read()) == 3 * rounds  # a lost update would mean two holders at once
