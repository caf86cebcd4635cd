from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACTOR = str(Path(__file__).with_name("actor.py"))
SPEC = Path(__file__).resolve().parents[2] / "spec"


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
    """A fresh private namespace path (created by xlock on first use); its doorbells are unlinked after
    the test, since xlock itself never unlinks doorbells [XL-WAIT-8]."""
    path = tmp_path / "ns"
    yield str(path)
    unlink_doorbells(path)


def decode_file_stem(stem: str) -> bytes:
    """The inverse of enc() [XL-ENC-1], for the tests' own clean-up."""
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


@pytest.fixture
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """pytest's tmp_path; afterwards the doorbells of every namespace a test made in it (tmp_path itself
    or any directory below it) are unlinked, computed from each directory's identity and its lock and
    capacity file names, never by pattern, since xlock itself never unlinks doorbells [XL-WAIT-8]."""
    yield tmp_path
    for parent, _dirs, _files in os.walk(tmp_path):
        unlink_doorbells(Path(parent))


@pytest.fixture
def removed_names(tmp_path: Path) -> Iterator[list[tuple[str, str]]]:
    """A list a test fills with the (kind, name) of each lock or semaphore it removes: a removed file no
    longer names its doorbell, so after the test these are unlinked in every directory under tmp_path."""
    removed: list[tuple[str, str]] = []
    yield removed
    import xlock
    from xlock._libc import lib

    for parent, _dirs, _files in os.walk(tmp_path):
        st = os.stat(parent)
        for kind, name in removed:
            lib.sem_unlink(xlock.semaphore_name(kind, st.st_dev, st.st_ino, name).encode())


def unlink_doorbells(path: Path) -> None:
    import xlock
    from xlock._libc import lib

    try:
        st = os.stat(path)
        files = os.listdir(path)
    except OSError:
        return
    for file_name in files:
        for suffix, kind in ((".lock", "l"), (".sem", "s")):
            if file_name.endswith(suffix):
                name = decode_file_stem(file_name[: -len(suffix)])
                lib.sem_unlink(xlock.semaphore_name(kind, st.st_dev, st.st_ino, name).encode())


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
