"""The drivers that ship with this repository (py, py-abi, c, rb), found or built, or skipped with a reason.

`--driver NAME=COMMAND` replaces all of them; these run when no `--driver` is given.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from xlock_conformance.driver import DriverSpec

BUILD_TIMEOUT = 300


def parse_driver_option(value: str) -> DriverSpec:
    """`NAME=COMMAND`, the command split shell-like."""
    name, sep, command = value.partition("=")
    name = name.strip()
    if not sep or not name or not command.strip():
        raise ValueError(f"--driver wants NAME=COMMAND, got {value!r}")
    if not all(ch.isalnum() or ch in "-_." for ch in name):
        raise ValueError(f"--driver name {name!r}: use letters, digits, '-', '_' or '.'")
    return DriverSpec(name=name, argv=shlex.split(command))


def bundled(repo: Optional[Path]) -> list[DriverSpec]:
    return [python_driver(), python_abi_driver(), c_driver(repo), ruby_driver(repo)]


def by_name(name: str, repo: Optional[Path]) -> DriverSpec:
    """`--driver py` (no command): one bundled driver, to run beside a new binding's."""
    finders: dict[str, Callable[[], DriverSpec]] = {
        "py": python_driver,
        "py-abi": python_abi_driver,
        "c": lambda: c_driver(repo),
        "rb": lambda: ruby_driver(repo),
    }
    if name not in finders:
        raise ValueError(
            f"--driver {name!r}: give NAME=COMMAND, or one of the bundled drivers {', '.join(finders)}"
        )
    return finders[name]()


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def python_driver() -> DriverSpec:
    spec = DriverSpec("py", [sys.executable, "-m", "xlock.driver"])
    # The interpreter may live where another uid cannot reach it (a tox virtualenv under /root): to run as
    # that uid, import as ourselves, then drop privileges (xlock_conformance.asuser).
    spec.as_user = lambda uid: [
        sys.executable,
        "-m",
        "xlock_conformance.asuser",
        str(uid),
        "xlock",
        "xlock.driver",
    ]
    probe = subprocess.run([sys.executable, "-c", "import xlock.driver"], capture_output=True, text=True)
    if probe.returncode != 0:
        spec.unavailable = (
            f"`import xlock.driver` fails under {sys.executable} "
            f"(pip install ./python): {_tail(probe.stderr, 1)}"
        )
    return spec


def python_abi_driver() -> DriverSpec:
    """The py driver on the Python package's fallback path, cffi's ABI mode (``XLOCK_FFI=abi``): what runs
    where no C compiler built the compiled module. Skipped if that mode does not load."""
    spec = python_driver()
    spec.name = "py-abi"
    spec.env = {"XLOCK_FFI": "abi"}
    if spec.unavailable is None:
        probe = subprocess.run(
            [sys.executable, "-c", "import xlock; print(xlock.build_info()['ffi'])"],
            capture_output=True,
            text=True,
            env={**os.environ, "XLOCK_FFI": "abi"},
        )
        if probe.returncode != 0 or probe.stdout.strip() != "abi":
            spec.unavailable = (
                f"XLOCK_FFI=abi {sys.executable} does not load xlock in ABI mode "
                f"(status {probe.returncode}, ffi {probe.stdout.strip()!r}): {_tail(probe.stderr, 1)}"
            )
    return spec


def c_driver(repo: Optional[Path]) -> DriverSpec:
    if repo is None:
        return DriverSpec("c", ["c/build/xlock-driver"], unavailable="no checkout found (use --repo)")
    exe = repo / "c" / "build" / "xlock-driver"
    spec = DriverSpec("c", [str(exe)])
    if not os.access(exe, os.X_OK):
        if not (repo / "c" / "Makefile").is_file():
            spec.unavailable = f"{exe} is missing and there is no c/Makefile to build it"
            return spec
        build = subprocess.run(
            ["make", "-C", str(repo / "c")], capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
        if build.returncode != 0 or not os.access(exe, os.X_OK):
            spec.unavailable = (
                f"{exe} is missing and `make -C c` did not build it "
                f"(status {build.returncode}): {_tail(build.stderr or build.stdout)}"
            )
    return spec


def ruby_driver(repo: Optional[Path]) -> DriverSpec:
    """`ruby -I ruby/lib ruby/exe/xlock-driver`, after `ruby/bin/build-ext` (see ruby/README.md)."""
    if repo is None:
        return DriverSpec("rb", ["ruby"], unavailable="no checkout found (use --repo)")
    rb = repo / "ruby"
    exe = rb / "exe" / "xlock-driver"
    ruby = shutil.which("ruby")
    spec = DriverSpec("rb", [ruby or "ruby", "-I", str(rb / "lib"), str(exe)])
    if ruby is None:
        spec.unavailable = "ruby is not installed"
    elif not exe.is_file():
        spec.unavailable = f"{exe} is missing"
    else:
        ext = rb / "lib" / "xlock" / "xlock_ext.so"
        builder = rb / "bin" / "build-ext"
        if not ext.is_file() and builder.is_file():
            subprocess.run(["sh", str(builder)], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        probe = subprocess.run(
            [ruby, "-I", str(rb / "lib"), "-e", 'require "xlock"'], capture_output=True, text=True
        )
        if probe.returncode != 0:
            spec.unavailable = (
                f"`ruby -I ruby/lib -e 'require \"xlock\"'` fails "
                f"(build with ruby/bin/build-ext): {_tail(probe.stderr, 2)}"
            )
    return spec
