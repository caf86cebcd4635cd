"""The driver protocol itself: bad requests get BAD_REQUEST and the driver keeps serving."""

from __future__ import annotations

import json

from xlock_conformance.plugin import spec


@spec()
def test_protocol_bad_requests(one, lab):
    d = lab.start(one)
    d.send_raw("this is not JSON")
    r = d.next_reply("a line that is not JSON")
    assert r.get("ok") is False and r.get("error") == "BAD_REQUEST" and r.get("id") is None, (
        f"a line that is not JSON must get BAD_REQUEST with id null, got {r}"
    )
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
    # The file format: decimal digits, optionally one newline; written back as digits and a newline.
    for content in (b"41", b"41\n"):
        with open(path, "wb") as f:
            f.write(content)
        assert d.call("increment", path=path)["value"] == 42, (
            f"increment of a file holding {content!r} must give 42"
        )
        with open(path, "rb") as f:
            written = f.read()
        assert written == b"42\n", f"increment wrote {written!r}, want b'42\\n' (PROTOCOL.md, increment)"
    for junk in (b"x", b"4 2\n", b"-1\n"):
        with open(path, "wb") as f:
            f.write(junk)
        d.fails(
            "BAD_REQUEST",
            "increment",
            path=path,
            why=f"the counter file holds {junk!r}, not a decimal integer",
        )


@spec()
def test_protocol_exact(one, lab):
    """PROTOCOL.md's exact types: hello with another protocol version, name with name_hex, odd name_hex,
    and a timeout_ms that is not a JSON integer are BAD_REQUEST; the driver keeps serving."""
    d = lab.start(one, need=["lock", "timeout"])
    d.fails("BAD_REQUEST", "hello", protocol=2, why="this page defines protocol 1 only")
    d.fails(
        "BAD_REQUEST",
        "open",
        kind="lock",
        name="x",
        name_hex="78",
        namespace=lab.ns,
        why="a request with both name and name_hex is BAD_REQUEST",
    )
    d.fails(
        "BAD_REQUEST",
        "open",
        kind="lock",
        name_hex="787",
        namespace=lab.ns,
        why="name_hex is an odd number of hexadecimal digits",
    )
    h = lab.open(d, "x")
    for bad in (1.5, "100", True):
        d.fails(
            "BAD_REQUEST",
            "acquire",
            handle=h,
            timeout_ms=bad,
            why=f"timeout_ms {bad!r} is not a JSON integer",
        )
    rid = d.send("acquire", handle=h, timeout_ms=100)  # 1e2 written as JSON with an exponent
    d.send_raw(
        json.dumps({"id": rid + 1000, "op": "acquire", "handle": h}).replace(
            '"handle"', '"timeout_ms": 1e2, "handle"'
        )
    )
    assert d.wait(rid).ok, "acquire with timeout_ms 100 failed"
    r = d.wait(rid + 1000)
    assert not r.ok and r.error == "BAD_REQUEST", (
        f"timeout_ms 1e2 (a number with an exponent) must be BAD_REQUEST, got {r.data}"
    )
    assert d.call("locked", handle=h)["locked"] is True, "a BAD_REQUEST changed the object"
    d.call("hello", protocol=1)
