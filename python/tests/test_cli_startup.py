"""Start-up of `import xlock` and of the `xlock` command: what a fresh interpreter imports, never how long
it takes (issue 14: `import xlock` <= 25 ms on the compiled path, `xlock path NAME` <= 60 ms, measured by
bench/section_startup.py).

The modules that made start-up slow must stay out: typing, dataclasses (inspect, ast, dis, tokenize),
json, hashlib (OpenSSL), asyncio, and every subcommand's implementation but the one that runs.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import xlock

# Loaded by neither `import xlock` nor `xlock path NAME`.
SLOW = (
    "typing",
    "dataclasses",
    "inspect",
    "ast",
    "dis",
    "tokenize",
    "json",
    "hashlib",
    "_hashlib",
    "asyncio",
    "contextlib",
    "signal",
    "shlex",
    "subprocess",
    "shutil",
)
# What `import xlock` does not need either: the command line and its regular expressions.
NOT_AT_IMPORT = (*SLOW, "re", "enum", "argparse", "gettext", "xlock.cli", "xlock._status", "xlock._display")
SUBCOMMANDS = ("run", "status", "path", "namespace", "remove")
# cffi's ABI mode parses C declarations with pycparser, which imports typing, inspect, re, ...: the
# targets are for the compiled module, so only there are the standard library's modules checked.
COMPILED = xlock.build_info()["ffi"] == "compiled"


def modules_after(code: str, namespace: Path) -> tuple[str, set[str]]:
    """Run `code` in a fresh interpreter; its standard output, and the modules it had loaded at the end."""
    script = f"import sys\n{code}\nsys.stdout.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
    env = {**os.environ, "XLOCK_NAMESPACE": str(namespace)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    text, _, modules = out.stdout.rpartition("\nMODULES ")
    return text, set(modules.split())


def test_import_xlock_loads_no_slow_module(tmp_path: Path) -> None:
    _, modules = modules_after("import xlock", tmp_path)
    assert "xlock" in modules
    if COMPILED:
        assert modules.isdisjoint(NOT_AT_IMPORT), sorted(modules.intersection(NOT_AT_IMPORT))
    else:
        assert modules.isdisjoint(("xlock.cli", "xlock._status", "xlock._display"))


def test_xlock_path_loads_its_subcommand_only(tmp_path: Path) -> None:
    out, modules = modules_after("from xlock.cli import main\nassert main(['path', 'job']) == 0", tmp_path)
    assert out.splitlines()[0].split() == ["lock", "file:", str(tmp_path / "job.lock")]
    assert "xlock.cli.path" in modules
    others = {f"xlock.cli.{c}" for c in SUBCOMMANDS if c != "path"} | {"xlock._child", "xlock._status"}
    assert modules.isdisjoint(others), sorted(modules & others)
    if COMPILED:
        assert modules.isdisjoint(SLOW), sorted(modules.intersection(SLOW))


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["run", "job", "true"], {"run"}),
        (["status"], {"status"}),
        (["path", "--json", "job"], {"path"}),
        (["namespace"], {"namespace"}),
        (["remove", "job"], {"remove", "path"}),  # remove reports what name_paths maps
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_each_subcommand_imports_its_own_module(tmp_path: Path, argv: list[str], loaded: set[str]) -> None:
    _, modules = modules_after(f"from xlock.cli import main\nassert main({argv!r}) == 0", tmp_path)
    assert {c for c in SUBCOMMANDS if f"xlock.cli.{c}" in modules} == loaded


def test_help_lists_every_subcommand_without_importing_them(tmp_path: Path) -> None:
    code = "from xlock.cli._parser import build_parser\nsys.stdout.write(build_parser().format_help())"
    out, modules = modules_after(code, tmp_path)
    for command in SUBCOMMANDS:
        assert f"    {command} " in out
    assert modules.isdisjoint(f"xlock.cli.{c}" for c in SUBCOMMANDS)


# Every help text, by the formatter of xlock's parser and by argparse's own (which imports shutil).
HELP_BOTH_WAYS = """\
import argparse, contextlib, io, sys
from xlock.cli import _parser

def helps():
    texts = []
    for argv in ([], *([c] for c in ("run", "status", "path", "namespace", "remove"))):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            _parser.build_parser().parse_args([*argv, "--help"])
        texts.append(out.getvalue())
    return texts

ours = helps()
_parser._Formatter = argparse.RawDescriptionHelpFormatter
sys.stderr.write("same" if helps() == ours else "differs")
"""


@pytest.mark.parametrize("columns", [None, "50", "200", "0", "wide"])
def test_help_wraps_at_the_width_argparse_would_use(columns: str | None) -> None:
    # The parser's formatter finds the width as shutil.get_terminal_size() does ($COLUMNS, else the
    # terminal on standard output, here a pty 100 columns wide) without importing shutil.
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    main_fd, terminal = os.openpty()
    try:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        out = subprocess.run(
            [sys.executable, "-c", HELP_BOTH_WAYS],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(main_fd)
    assert out.stderr.decode() == "same"
