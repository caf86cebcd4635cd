"""Safe removal of idle files: never while held, and never two holders when racing acquirers."""

from __future__ import annotations

import os
import time

from xlock_conformance.plugin import spec

NAME = "conformance-rm"
RACE_ROUNDS = 200


@spec("XL-RM-1", "XL-RM-2", "XL-RM-3")
def test_remove_idle(pair, lab):
    a, b = lab.start(pair[0], need=["lock", "remove"]), lab.start(pair[1], need=["lock", "remove"])
    lock_file = os.path.join(lab.ns, NAME + ".lock")
    ha = lab.open(a, NAME)
    a.call("acquire", handle=ha)
    b.fails("WOULD_BLOCK", "remove", kind="lock", name=NAME, namespace=lab.ns)
    assert os.path.exists(lock_file), "remove of a held lock removed its file [XL-RM-2]"
    a.call("release", handle=ha)
    assert os.path.exists(lock_file), "the lock file must persist after release [XL-RM-1]"
    assert b.call("remove", kind="lock", name=NAME, namespace=lab.ns)["removed"] is True
    assert not os.path.exists(lock_file), "remove reported success but the lock file is still there"
    assert b.call("remove", kind="lock", name=NAME, namespace=lab.ns)["removed"] is False
    a.call("try_acquire", handle=ha)  # the old object re-opens the path [XL-LOCK-8]
    assert os.path.exists(lock_file), "acquiring after a removal must recreate the lock file"
    a.call("release", handle=ha)
    if "semaphore" in a.capabilities and "semaphore" in b.capabilities:
        hs = lab.open(a, NAME, kind="semaphore", capacity=2)
        a.call("acquire", handle=hs)
        b.fails("WOULD_BLOCK", "remove", kind="semaphore", name=NAME, namespace=lab.ns, capacity=2)
        assert os.path.exists(os.path.join(lab.ns, NAME + ".sem")), "remove of a held semaphore removed files"
        a.call("release", handle=hs)
        assert b.call("remove", kind="semaphore", name=NAME, namespace=lab.ns, capacity=2)["removed"] is True
        left = [f for f in os.listdir(lab.ns) if f.startswith(NAME + ".") and not f.endswith(".lock")]
        assert left == [], f"remove of an idle semaphore left {left} [XL-RM-3]"


@spec("XL-RM-4", "XL-LOCK-8")
def test_remove_race(pair, lab):
    """Two workers cycle on a counter while removers delete the lock file as often as they can: with the
    re-check of XL-LOCK-8 no increment is lost; without it, a worker holding a removed inode races."""
    need = ["lock", "counter", "remove"]
    workers = [lab.start(pair[0], need=need), lab.start(pair[1], need=need)]
    removers = [lab.start(pair[1], need=need), lab.start(pair[0], need=need)]
    counter = str(lab.tmp / "counter")
    pending = {}
    for i, w in enumerate(workers):
        h = lab.open(w, NAME)
        timeout = 10_000 if i else None  # one timed, one untimed worker
        pending[w] = w.send("cycle", handle=h, count=RACE_ROUNDS, path=counter, timeout_ms=timeout)
    removed = attempts = 0
    deadline = time.monotonic() + 60
    while pending:
        assert time.monotonic() < deadline, "the workers did not finish their cycles within 60 s"
        for r in removers:
            reply = r.request("remove", kind="lock", name=NAME, namespace=lab.ns)
            attempts += 1
            if reply.ok:
                removed += reply["removed"] is True
            else:
                assert reply.error == "WOULD_BLOCK", f"driver '{r.label}': remove failed with {reply.error}"
        for w in list(pending):
            got = w.poll(pending[w], 0)
            if got is not None:
                assert got.ok, f"driver '{w.label}': cycle failed with {got.error}: {got.get('message')}"
                del pending[w]
    with open(counter) as f:
        value = int(f.read().strip())
    want = RACE_ROUNDS * len(workers)
    assert value == want, (
        f"the counter is {value}, want {want}: two holders at once while the lock file was "
        f"removed {removed} times in {attempts} attempts [XL-RM-4, XL-LOCK-8]"
    )
