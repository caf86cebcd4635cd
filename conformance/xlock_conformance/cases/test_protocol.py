"""The driver protocol itself: bad requests get BAD_REQUEST and the driver keeps serving."""

from __future__ import annotations

from xlock_conformance.plugin import spec


@spec()
def test_protocol_bad_requests(one, lab):
    d = lab.start(one)
    d.send_raw("this is not JSON")
    r = d.next_reply("a line that is not JSON")
    assert r.get("ok") is False and r.get("error") == "BAD_REQUEST" and r.get("id") is None, (
        f"a line that is not JSON must get BAD_REQUEST with id null, got {r}")
    d.fails("BAD_REQUEST", "no_such_op")
    d.fails("BAD_REQUEST", "acquire", handle="no-such-handle")
    d.fails("BAD_REQUEST", "release", handle="no-such-handle")
    if "lock" in d.capabilities:
        d.fails("BAD_REQUEST", "open", kind="lock", namespace=lab.ns)  # no name
    d.call("hello", protocol=1)  # still serving
    d.call("exit")
    assert d.proc.wait(timeout=5) == 0, f"driver '{d.label}' did not exit with status 0 after exit"


@spec("XL-HOLD-6", "XL-CSEM-6", "XL-PSEM-4")
def test_not_held(one, lab):
    d = lab.start(one, need=["lock"])
    d.fails("NOT_HELD", "release", handle=lab.open(d, "x"))
    if "semaphore" in d.capabilities:
        d.fails("NOT_HELD", "release", handle=lab.open(d, "x", kind="semaphore", capacity=2))
    if "posix_semaphore" in d.capabilities:
        d.fails("NOT_HELD", "release", handle=lab.open(d, "x", kind="posix_semaphore", value=1))


@spec()
def test_protocol_counter(one, lab):
    """`increment` and `cycle`, the tools of the stress cases, do what PROTOCOL.md says."""
    d = lab.start(one, need=["lock", "counter"])
    path = str(lab.tmp / "counter")
    assert d.call("increment", path=path)["value"] == 1, "increment of a missing file must give 1"
    assert d.call("increment", path=path)["value"] == 2
    h = lab.open(d, "count")
    assert d.call("cycle", handle=h, count=3, path=path)["count"] == 3
    with open(path) as f:
        assert f.read().strip() == "5", "cycle of 3 after two increments must leave 5 in the file"
    assert d.call("locked", handle=h)["locked"] is False, "cycle must leave the lock released"
    open(path, "w").close()
    assert d.call("increment", path=path)["value"] == 1, "an empty counter file counts as 0"
