"""The bench of one case: a fresh namespace, the drivers it started, and cleanup that always runs."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from xlock_conformance.driver import Driver, DriverSpec

# How long "no reply" must last before a request counts as blocked, and how long a woken or freed waiter
# may take to answer. Generous: the suite proves behaviour, the benchmark measures speed.
BLOCKED_WINDOW = 0.3
WAKE_DEADLINE = 3.0


class Lab:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="xlock-conf-"))
        # Searchable by others (not readable): the attack cases act as another user (setpriv) inside the
        # shared namespaces they make here; every namespace directory has its own mode.
        os.chmod(self.tmp, 0o711)
        self.ns = self.make_dir("ns", 0o700)
        self.drivers: list[Driver] = []

    def make_dir(self, name: str, mode: int = 0o700) -> str:
        path = self.tmp / name
        path.mkdir()
        os.chmod(path, mode)  # explicit: mkdir's mode is filtered by the umask
        return str(path)

    def start(
        self,
        spec: DriverSpec,
        need: Iterable[str] = (),
        env: Optional[dict[str, Any]] = None,
        umask: Optional[int] = None,
    ) -> Driver:
        """Start a driver and shake hands; skip the case if it lacks a capability in `need`."""
        same = sum(1 for d in self.drivers if d.name == spec.name)
        label = spec.name if same == 0 else f"{spec.name}#{same + 1}"
        driver = Driver(spec, label, env=env, umask=umask)
        self.drivers.append(driver)
        driver.handshake()
        missing = sorted(set(need) - driver.capabilities)
        if missing:
            pytest.skip(f"driver '{spec.name}' does not claim capability {', '.join(missing)}")
        return driver

    def open(self, driver: Driver, name: str, kind: str = "lock", **args: Any) -> str:
        """Open an object in this case's namespace; returns its handle."""
        args.setdefault("namespace", self.ns)
        handle: str = driver.call("open", kind=kind, name=name, **args)["handle"]
        return handle

    def close(self) -> None:
        sems: set[str] = set()
        names: set[str] = set()
        for driver in self.drivers:
            driver.kill()
            sems |= driver.semaphores
            names |= driver.names
        sems |= _semaphores_under(self.tmp, names)
        for sem in sems:
            try:
                os.unlink("/dev/shm/sem." + sem[1:])
            except OSError:
                pass
        _force_rmtree(self.tmp)

    def report(self) -> str:
        return "\n\n".join(d.report() for d in self.drivers) or "(no driver was started)"


def _semaphores_under(root: Path, names: set[str]) -> set[str]:
    """The raw POSIX semaphores (kind p [XL-SEM-2]) of every namespace directory under `root`, for each name
    the drivers were asked to open or remove and each name decoded from a lock or capacity file there:
    computed from each directory's identity, never found by pattern, since another program may be using
    other semaphores at the same time. (Locks and counting semaphores make nothing in /dev/shm: the cases
    assert it, so there is nothing of theirs to clean up.)"""
    from xlock_conformance.checks import sem_name  # checks imports this module

    sems: set[str] = set()
    for parent, _dirs, files in os.walk(root):
        try:
            st = os.stat(parent)
        except OSError:
            continue
        here = names | {
            _decode_file_stem(f.rsplit(".", 1)[0]) for f in files if f.endswith((".lock", ".sem"))
        }
        for name in here:
            try:
                sems.add(sem_name("p", st.st_dev, st.st_ino, name))
            except UnicodeEncodeError:  # a name sent to test rejection; it never named a semaphore
                pass
    return sems


def _decode_file_stem(stem: str) -> str:
    """The inverse of enc() [XL-ENC-1]."""
    out, i = bytearray(), 0
    while i < len(stem):
        if stem[i] == "%":
            out.append(int(stem[i + 1 : i + 3], 16))
            i += 3
        elif stem[i] == "!":
            out.append(ord(stem[i + 1].upper()))
            i += 2
        else:
            out += stem[i].encode()
            i += 1
    return out.decode("utf-8", "replace")


def _force_rmtree(path: Path) -> None:
    def fix(func: Callable[..., Any], p: str, _exc: Any) -> None:
        try:
            parent = os.path.dirname(p)
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def elapsed_since(t0: float) -> float:
    return time.monotonic() - t0
