"""`xlock-conformance`: run the cases with the matrix plugin. Any other pytest option passes through."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import pytest

CASES = Path(__file__).resolve().parent / "cases"

USAGE = """usage: xlock-conformance [--driver NAME=COMMAND ...] [--run PATTERN ...] [--skip PATTERN ...]
                         [--list] [--junit-xml PATH] [--repo DIR] [--slow N] [pytest options]

Runs the xlock/1 conformance cases against drivers (see conformance/PROTOCOL.md) and prints a matrix:
rows are cases, columns are drivers and driver pairs. Without --driver it runs the bundled drivers
py (python -m xlock.driver), c (c/build/xlock-driver) and rb (ruby/exe/xlock-driver); `--driver py`
(a bare name) selects one of them beside your own `--driver NAME=COMMAND`. PATTERN is a glob over case
names, `case[column]` and spec IDs. `--slow N` multiplies reply deadlines (drivers under valgrind).
See conformance/README.md.
"""


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(USAGE)
        return 0
    pytest_args = [
        str(CASES),
        "-p",
        "xlock_conformance.plugin",
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,  # ignore any pytest configuration of the current directory
        "--rootdir",
        str(CASES.parent),
        "-qq",
        "--tb=no",
        "-rN",  # the plugin prints progress, failures with traces, and the matrix
        "--assert=plain",  # every check says in words what went wrong
        *args,
    ]
    try:
        code = int(pytest.main(pytest_args))
    except BrokenPipeError:  # `xlock-conformance --list | head`: the reader went away, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0 if code == pytest.ExitCode.NO_TESTS_COLLECTED and "--list" in args else code
