"""The `xlock` command: run a command under a lock, show who holds what, map names, remove idle files.

Exit codes (also in `xlock --help` and python/README.md):

* `run` (as util-linux flock(1)): the command's own status; 1 (or `-E CODE`) if the lock was not taken
  because of `-n` or `-w`; 69 if the command cannot be executed (71 for lack of memory); 128+N if it
  died from signal N, and 128+N if xlock itself got SIGINT/SIGTERM/SIGHUP while waiting for the lock.
* every subcommand: 0 success; 1 `remove` of a held lock; 64 usage error (bad name, bad arguments);
  65 capacity mismatch; 69 namespace refused (insecure or unsupported file system); 70 internal error;
  71 other system error; 141 (128 + SIGPIPE) if standard output was closed early.
"""

from __future__ import annotations

import os
import sys

import xlock

from .._pg import pg_namespace
from ._common import SIGNAL_BASE, UsageError, code_for, namespace_arg, say
from ._parser import build_parser

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Optional


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `xlock` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        url = pg_namespace(namespace_arg(args))
        if url is not None and args.command != "run":  # `run` takes the URI through xlock.Lock [XL-PG-1]
            from .._pg.cli import run_command

            return int(run_command(args, url) or 0)
        return _run_subcommand(args)
    except KeyboardInterrupt:
        import signal

        return SIGNAL_BASE + signal.SIGINT
    except BrokenPipeError:
        import signal

        # The reader went away (`xlock status | head -1`): stop quietly, as a shell tool killed by
        # SIGPIPE would, and keep the interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGNAL_BASE + signal.SIGPIPE
    except (UsageError, xlock.XLockError, OSError) as exc:
        say(f"error: {exc}")
        return code_for(exc)


def _run_subcommand(args: argparse.Namespace) -> int:
    """Run the parsed subcommand on a local namespace. Each subcommand's module is imported only when it
    runs: `xlock path NAME` loads neither `run`'s signal handling nor `status`'s /proc readers (issue 14)."""
    command: str = args.command
    if command == "run":
        from .run import cmd_run

        return cmd_run(args)
    if command == "status":
        from .status import cmd_status

        return cmd_status(args)
    if command == "path":
        from .path import cmd_path

        return cmd_path(args)
    if command == "namespace":
        from .namespace import cmd_namespace

        return cmd_namespace(args)
    assert command == "remove", command  # argparse took one of the five
    from .remove import cmd_remove

    return cmd_remove(args)
