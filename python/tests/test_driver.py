"""`python -m xlock.driver` against conformance/PROTOCOL.md: real driver processes on real locks."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DEADLINE, wait_for_waiter
from conftest import SPEC

import xlock
from xlock import names

VECTORS = SPEC / "vectors" / "names.json"


class Driver:
    """A driver process; replies are read from the raw pipe with a deadline (no read-ahead surprises)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xlock.driver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.pid = self.proc.pid
        self.buffer = b""
        self.next_id = 0

    def send_line(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def read_reply(self, timeout: float = DEADLINE) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([fd], [], [], left)[0], f"no reply from driver {self.pid}"
            chunk = os.read(fd, 65536)
            assert chunk, f"driver {self.pid} closed stdout"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        self.next_id += 1
        self.send_line(json.dumps({"id": self.next_id, "op": op, **args}).encode() + b"\n")
        reply = self.read_reply()
        assert reply["id"] == self.next_id
        return reply

    def ok(self, op: str, **args: Any) -> dict[str, Any]:
        reply = self.request(op, **args)
        assert reply["ok"] is True, reply
        return reply

    def error(self, op: str, **args: Any) -> str:
        reply = self.request(op, **args)
        assert reply["ok"] is False, reply
        assert isinstance(reply["message"], str) and reply["message"]
        kind: str = reply["error"]
        return kind

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # EOF: the driver exits 0 at once
        return self.proc.wait(timeout=DEADLINE)


@pytest.fixture
def driver() -> Iterator[Driver]:
    d = Driver()
    yield d
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


@pytest.fixture
def ns(tmp_path: Path) -> str:
    return str(tmp_path / "ns")


def test_hello(driver: Driver) -> None:
    reply = driver.ok("hello", protocol=1)
    assert reply == {
        "id": reply["id"],
        "ok": True,
        "implementation": "python",
        "version": xlock.__version__,
        "spec": "xlock/1",
        "protocol": 1,
        "pid": driver.pid,
        "capabilities": reply["capabilities"],
    }
    assert sorted(reply["capabilities"]) == sorted(
        [
            "lock",
            "shared",
            "timeout",
            "reentrant",
            "semaphore",
            "posix_semaphore",
            "map",
            "remove",
            "counter",
            "clock",
            "fork",
            "pg",
        ]
    )
    assert driver.close() == 0


def test_session_two_drivers_exclude(driver: Driver, ns: str) -> None:
    other = Driver()
    try:
        driver.ok("hello", protocol=1)
        other.ok("hello", protocol=1)
        opened = driver.ok("open", kind="lock", name="billing-export", namespace=ns)
        st = os.stat(ns)
        assert opened["handle"].startswith("h")
        assert (opened["namespace"], opened["dev"], opened["ino"]) == (ns, st.st_dev, st.st_ino)
        assert opened["path"] == os.path.join(ns, "billing-export.lock")
        assert opened["semaphore"] is None  # no POSIX semaphore for a lock [XL-SEM-2]
        assert (opened["bell"], opened["bell_word"]) == (os.path.join(ns, ".xlock-bell"), 220)  # [XL-SEM-7]
        assert opened["sharing"] == "private"
        h1 = opened["handle"]
        h2 = other.ok("open", kind="lock", name="billing-export", namespace=ns)["handle"]

        before = time.monotonic_ns()
        acquired = driver.ok("acquire", handle=h1, timeout_ms=None)
        assert before <= acquired["mono_ns"] <= time.monotonic_ns()
        assert driver.ok("locked", handle=h1)["locked"] is True
        assert other.error("try_acquire", handle=h2) == "WOULD_BLOCK"
        assert other.error("acquire", handle=h2, timeout_ms=0) == "TIMEOUT"
        assert other.ok("locked", handle=h2)["locked"] is False
        assert driver.error("acquire", handle=h1) == "ALREADY_HELD"

        # An untimed acquire blocks the other driver until the release (seen in /proc/locks first).
        other.send_line(json.dumps({"id": 99, "op": "acquire", "handle": h2}).encode() + b"\n")
        wait_for_waiter(other.pid)
        released = driver.ok("release", handle=h1)
        assert isinstance(released["mono_ns"], int)
        reply = other.read_reply()
        assert (reply["id"], reply["ok"]) == (99, True)
        assert reply["mono_ns"] >= released["mono_ns"]
        assert driver.error("release", handle=h1) == "NOT_HELD"
        assert driver.error("try_acquire", handle=h1) == "WOULD_BLOCK"
        assert other.ok("close", handle=h2) == {"id": other.next_id, "ok": True}
        assert other.error("locked", handle=h2) == "BAD_REQUEST"  # forgotten handle
        driver.ok("try_acquire", handle=h1)
        driver.ok("exit")
        assert driver.proc.wait(timeout=DEADLINE) == 0
    finally:
        other.close()


def test_killed_driver_releases(driver: Driver, ns: str) -> None:
    h = driver.ok("open", kind="lock", name="x", namespace=ns)["handle"]
    driver.ok("acquire", handle=h)
    driver.proc.kill()
    driver.proc.wait()
    other = Driver()
    try:
        h2 = other.ok("open", kind="lock", name="x", namespace=ns)["handle"]
        other.ok("try_acquire", handle=h2)
    finally:
        other.close()


def test_fork_check(driver: Driver, ns: str) -> None:
    """The forked child sees nothing held [XL-HOLD-7], leaves the protocol streams alone, and does not keep
    the lock alive once the driver is killed [XL-HOLD-8]."""
    h = driver.ok("open", kind="lock", name="x", namespace=ns)["handle"]
    driver.ok("acquire", handle=h)
    reply = driver.ok("fork_check", handle=h)
    child = reply["child_pid"]
    try:
        assert child not in (driver.pid, os.getpid())
        assert {k: reply[k] for k in ("release", "locked", "try_acquire")} == {
            "release": "NOT_HELD",
            "locked": False,
            "try_acquire": "WOULD_BLOCK",
        }
        assert driver.ok("locked", handle=h)["locked"] is True  # the protocol goes on after the fork
        driver.proc.kill()
        driver.proc.wait()
        assert driver.proc.stdout is not None
        fd = driver.proc.stdout.fileno()
        assert select.select([fd], [], [], DEADLINE)[0] and os.read(fd, 1) == b"", "the child holds stdout"
        with open(f"/proc/{child}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"), "the child must still live"
        other = Driver()
        try:
            h2 = other.ok("open", kind="lock", name="x", namespace=ns)["handle"]
            other.ok("acquire", handle=h2, timeout_ms=int(DEADLINE * 1000))
        finally:
            other.close()
    finally:
        os.kill(child, signal.SIGKILL)


def test_shared_reentrant_semaphore_posix(driver: Driver, ns: str, tmp_path: Path) -> None:
    a = driver.ok("open", kind="lock", name="s", namespace=ns, shared=True)["handle"]
    b = driver.ok("open", kind="lock", name="s", namespace=ns, shared=True)["handle"]
    driver.ok("acquire", handle=a)
    driver.ok("try_acquire", handle=b)  # two shared holders
    r = driver.ok("open", kind="lock", name="r", namespace=ns, reentrant=True)["handle"]
    driver.ok("acquire", handle=r)
    driver.ok("acquire", handle=r)
    driver.ok("release", handle=r)
    assert driver.ok("locked", handle=r)["locked"] is True
    driver.ok("release", handle=r)
    assert driver.ok("locked", handle=r)["locked"] is False

    opened = driver.ok("open", kind="semaphore", name="pool", namespace=ns, capacity=2)
    st = os.stat(ns)
    assert opened["path"] == os.path.join(ns, "pool.sem")
    assert opened["semaphore"] is None
    assert opened["bell_word"] == names.bell_word("s", "pool")
    s = opened["handle"]
    assert driver.ok("acquire", handle=s)["slot"] == 0
    assert driver.ok("try_acquire", handle=s)["slot"] == 1
    assert driver.error("try_acquire", handle=s) == "WOULD_BLOCK"
    assert (
        driver.error("open", kind="semaphore", name="pool", namespace=ns, capacity=3) == "CAPACITY_MISMATCH"
    )
    assert driver.error("remove", kind="semaphore", name="pool", namespace=ns, capacity=2) == "WOULD_BLOCK"
    driver.ok("close", handle=s)
    assert driver.ok("remove", kind="semaphore", name="pool", namespace=ns, capacity=2)["removed"] is True

    name = f"driver-test-{os.getpid()}"
    p = driver.ok("open", kind="posix_semaphore", name=name, namespace=ns, value=1)
    assert p["path"] is None
    assert p["semaphore"] == names.semaphore_name("p", st.st_dev, st.st_ino, name)
    assert (p["bell"], p["bell_word"]) == (None, None)
    assert driver.ok("acquire", handle=p["handle"], timeout_ms=100)["slot"] is None
    assert driver.error("try_acquire", handle=p["handle"]) == "WOULD_BLOCK"
    driver.ok("release", handle=p["handle"])
    driver.ok("close", handle=p["handle"])
    assert driver.ok("remove", kind="posix_semaphore", name=name, namespace=ns)["removed"] is True
    assert driver.ok("remove", kind="posix_semaphore", name=name, namespace=ns)["removed"] is False

    h = driver.ok("open", kind="lock", name="gone", namespace=ns)["handle"]
    driver.ok("acquire", handle=h)
    assert driver.error("remove", kind="lock", name="gone", namespace=ns) == "WOULD_BLOCK"
    driver.ok("close", handle=h)
    assert driver.ok("remove", kind="lock", name="gone", namespace=ns)["removed"] is True
    assert driver.ok("remove", kind="lock", name="gone", namespace=ns)["removed"] is False


def test_counter_and_cycle(driver: Driver, ns: str, tmp_path: Path) -> None:
    counter = str(tmp_path / "counter")
    assert driver.ok("increment", path=counter)["value"] == 1
    assert driver.ok("increment", path=counter)["value"] == 2
    h = driver.ok("open", kind="lock", name="c", namespace=ns)["handle"]
    assert driver.ok("cycle", handle=h, count=50, path=counter, timeout_ms=None)["count"] == 50
    assert driver.ok("cycle", handle=h, count=5, path=counter, timeout_ms=1000)["count"] == 5
    assert Path(counter).read_text().strip() == "57"
    assert driver.ok("locked", handle=h)["locked"] is False
    driver.ok("acquire", handle=h)
    reply = driver.request("cycle", handle=h, count=3, path=counter)
    assert (reply["ok"], reply["error"]) == (False, "ALREADY_HELD")
    assert "done: 0" in reply["message"]


def test_map_every_vector(driver: Driver) -> None:
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    spaces = {n["id"]: n for n in data["namespaces"]}
    for case in data["cases"]:
        for ns_id, space in spaces.items():
            # Every case by name_hex (the only way for lone surrogates), and by name when JSON carries it.
            how = [{"name_hex": case["name_utf8_hex"]}]
            if case["name"] is not None:
                how.append({"name": case["name"]})
            for name_arg in how:
                reply = driver.request("map", dev=space["dev"], ino=space["ino"], **name_arg)
                if not case["valid"]:
                    assert (reply["ok"], reply["error"]) == (False, "INVALID_NAME"), case["description"]
                    continue
                assert reply == {
                    "id": reply["id"],
                    "ok": True,
                    "lock_file": case["lock_file"],
                    "capacity_file": case["capacity_file"],
                    "slot_files": case["slot_files"],
                    "semaphores": case["semaphores"][ns_id],
                    "bell_words": case["bell_words"],
                }, case["description"]


def test_bad_requests_and_driver_keeps_going(driver: Driver, ns: str) -> None:
    for line in (
        b"this is not json\n",
        b"[1, 2]\n",
        b'{"op": "hello"}\n',
        b'{"id": "7", "op": "hello"}\n',
        b"\xff\xfe\n",
    ):
        driver.send_line(line)
        reply = driver.read_reply()
        assert (reply["id"], reply["ok"], reply["error"]) == (None, False, "BAD_REQUEST"), line
    assert driver.error("frobnicate") == "BAD_REQUEST"
    assert driver.error("open", kind="lock") == "BAD_REQUEST"  # no name
    assert driver.error("open", kind="widget", name="x", namespace=ns) == "BAD_REQUEST"
    assert driver.error("open", kind="lock", name=7, namespace=ns) == "BAD_REQUEST"
    assert driver.error("open", kind="lock", name="x", namespace=ns, shared="yes") == "BAD_REQUEST"
    assert driver.error("open", kind="semaphore", name="x", namespace=ns) == "BAD_REQUEST"  # no capacity
    assert driver.error("acquire", handle="h404") == "BAD_REQUEST"
    assert driver.error("acquire") == "BAD_REQUEST"
    assert driver.error("map", name="x", dev="1", ino=2) == "BAD_REQUEST"
    assert driver.error("map", name_hex="zz", dev=1, ino=2) == "BAD_REQUEST"
    assert driver.error("map", name_hex="616", dev=1, ino=2) == "BAD_REQUEST"  # odd number of digits
    assert driver.error("map", name="a", name_hex="61", dev=1, ino=2) == "BAD_REQUEST"  # both
    assert driver.error("hello", protocol=2) == "BAD_REQUEST"
    assert driver.error("hello", protocol=True) == "BAD_REQUEST"
    h = driver.ok("open", kind="lock", name="types", namespace=ns)["handle"]
    for bad_timeout in (1.5, True, "10"):  # exact integer types (PROTOCOL.md)
        assert driver.error("acquire", handle=h, timeout_ms=bad_timeout) == "BAD_REQUEST"
    driver.ok("acquire", handle=h, timeout_ms=10**30)  # beyond any deadline: untimed [XL-WAIT-3]
    driver.ok("release", handle=h)
    driver.ok("close", handle=h)
    assert driver.error("open", kind="semaphore", name="x", namespace=ns, capacity=2.0) == "BAD_REQUEST"
    assert (
        driver.error("open", kind="semaphore", name="x", namespace=ns, capacity=10**30) == "INVALID_ARGUMENT"
    )
    assert (
        driver.error("open", kind="posix_semaphore", name="x", namespace=ns, value=-1) == "INVALID_ARGUMENT"
    )
    counter = Path(ns).parent / "counter"
    counter.write_text("12\n")
    assert driver.ok("increment", path=str(counter))["value"] == 13
    assert counter.read_text() == "13\n"
    counter.write_text("7")
    assert driver.ok("increment", path=str(counter))["value"] == 8
    for junk in ("x", "1 2", "-3", "4\n\n", "\n"):
        counter.write_text(junk)
        assert driver.error("increment", path=str(counter)) == "BAD_REQUEST", junk
    # errors of the binding, by kind
    assert driver.error("open", kind="lock", name="", namespace=ns) == "INVALID_NAME"
    assert driver.error("open", kind="lock", name_hex="ff", namespace=ns) == "INVALID_NAME"
    assert driver.error("open", kind="lock", name="x", namespace="relative") == "INVALID_ARGUMENT"
    assert driver.error("open", kind="semaphore", name="x", namespace=ns, capacity=0) == "INVALID_ARGUMENT"
    bad = Path(ns).parent / "world-writable"
    bad.mkdir()
    bad.chmod(0o777)
    assert driver.error("open", kind="lock", name="x", namespace=str(bad)) == "INSECURE_NAMESPACE"
    # and it still serves
    h = driver.ok("open", kind="lock", name="x", namespace=ns)["handle"]
    driver.ok("acquire", handle=h)
    assert driver.close() == 0  # EOF: exits 0 at once, though it holds a lock


def test_namespace_from_environment(tmp_path: Path) -> None:
    ns = tmp_path / "env-ns"
    env = {k: v for k, v in os.environ.items() if k != "XLOCK_NAMESPACE"}
    env["XLOCK_NAMESPACE"] = str(ns)
    d = Driver(env)
    try:
        opened = d.ok("open", kind="lock", name="x")
        assert opened["namespace"] == str(ns)
        opened = d.ok("open", kind="lock", name="x", namespace=None)
        assert opened["path"] == str(ns / "x.lock")
    finally:
        d.close()
