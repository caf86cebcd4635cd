from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACTOR = str(Path(__file__).with_name("actor.py"))


def _nothing(signum: int, frame: object) -> None:
    pass


def _default_in_children() -> None:
    """The processes the tests start get SIGINT, SIGQUIT and SIGHUP at their defaults, as from an
    interactive shell, whatever the runner's were: a background job of a script starts with SIGINT and
    SIGQUIT ignored, nohup ignores SIGHUP, and an ignored disposition is inherited across exec (the CLI then
    keeps it ignored, as flock(1) does). A handler is reset at exec; this one does nothing, so the test
    runner itself still ignores them."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, _nothing)


_default_in_children()
# The checkout's spec/, or (tests run from an unpacked sdist) the copy of spec/vectors the sdist carries.
SPEC = next(
    (d for d in (Path(__file__).resolve().parents[i] / "spec" for i in (2, 1)) if (d / "vectors").is_dir()),
    Path(__file__).resolve().parents[2] / "spec",
)


def asleep_on_bell_word(obj: Any, thread: Any) -> bool:
    """True if `thread` (of this process) sleeps in futex(2) on the bell word of the xlock object `obj`
    (a Lock or Semaphore): it waits for a ring [XL-WAIT-12]. From /proc/self/task/TID/syscall (x86_64's
    futex is 202, aarch64's 98)."""
    from xlock._libc import ffi

    futex = {"x86_64": "202", "aarch64": "98"}.get(os.uname().machine)
    try:
        with open(f"/proc/self/task/{thread.native_id}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    address = int(ffi.cast("uintptr_t", obj._word))
    return len(fields) > 1 and fields[0] == futex and int(fields[1], 16) == address


class Actor:
    """Another process that takes and releases xlock locks on command (see actor.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, ACTOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "actor died"
        result: dict[str, Any] = json.loads(line)
        return result

    def call(self, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        return self.reply()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[str]:
    """A fresh private namespace path (created by xlock on first use)."""
    yield str(tmp_path / "ns")


def decode_file_stem(stem: str) -> bytes:
    """The inverse of enc() [XL-ENC-1]."""
    out, i = bytearray(), 0
    while i < len(stem):
        c = stem[i]
        if c == "%":
            out.append(int(stem[i + 1 : i + 3], 16))
            i += 3
        elif c == "!":
            out.append(ord(stem[i + 1].upper()))
            i += 2
        else:
            out.append(ord(c))
            i += 1
    return bytes(out)


def draft1_doorbell(kind: str, dev: int, ino: int, name: bytes) -> str:
    """The /dev/shm file of draft 1's doorbell of kind l or s (withdrawn, XL-SEM-2), for the check below."""
    data = b"\0".join((b"xlock/1", kind.encode(), b"%d" % dev, b"%d" % ino, name))
    return "sem.xl1" + kind + base64.b32encode(hashlib.sha256(data).digest()).decode().lower()[:25]


def doorbells_under(root: Path) -> set[str]:
    """The /dev/shm files draft 1 would have created for the locks and counting semaphores of every
    namespace under root, computed from each directory's identity and its file names."""
    wanted = set()
    for parent, _dirs, files in os.walk(root):
        try:
            st = os.stat(parent)
        except OSError:
            continue
        for file_name in files:
            for suffix, kind in ((".lock", "l"), (".sem", "s")):
                if file_name.endswith(suffix):
                    name = decode_file_stem(file_name[: -len(suffix)])
                    wanted.add(draft1_doorbell(kind, st.st_dev, st.st_ino, name))
    return wanted


@pytest.fixture(autouse=True)
def _nothing_in_dev_shm_for_locks(tmp_path: Path) -> Iterator[None]:
    """Locks and counting semaphores create nothing in /dev/shm [XL-SEM-2]: after each test, none of the
    doorbells draft 1 would have made for the locks and semaphores of the test's namespaces exists."""
    yield
    leaked = doorbells_under(tmp_path) & set(os.listdir("/dev/shm"))
    assert not leaked, f"locks or counting semaphores created POSIX semaphores: {sorted(leaked)}"


@pytest.fixture
def actor() -> Iterator[Actor]:
    a = Actor()
    yield a
    a.close()


@pytest.fixture
def make_actor() -> Iterator[Any]:
    actors: list[Actor] = []

    def make() -> Actor:
        a = Actor()
        actors.append(a)
        return a

    yield make
    for a in actors:
        a.close()


def load_vectors(name: str) -> Any:
    return json.loads((SPEC / "vectors" / name).read_text(encoding="utf-8"))


def run_python(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture(autouse=True)
def _no_inherited_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XLOCK_NAMESPACE", raising=False)
    monkeypatch.delenv("XLOCK_ALLOW_UNSUPPORTED_FS", raising=False)
    os.environ.pop("XLOCK_NAMESPACE", None)


# Another user, for the attacks on shared namespaces (tests run as root on CI).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def world_dir() -> Iterator[str]:
    """A world-shared namespace (1777, owned by the test's user) directly in /tmp, so that uid 65534 can
    reach it."""
    ns = tempfile.mkdtemp(prefix="xlock-world-", dir="/tmp")
    os.chmod(ns, 0o1777)
    try:
        yield ns
    finally:
        shutil.rmtree(ns)


@pytest.fixture
def world_ns(world_dir: str) -> str:
    """world_dir for the attacks that act as another user with setpriv (NOBODY): needs root and setpriv."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    return world_dir
