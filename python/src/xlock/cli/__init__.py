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
import signal
import sys
from collections.abc import Sequence
from typing import Optional

import xlock

from .._child import SIGNAL_BASE, Signalled
from .._pg import pg_namespace
from . import namespace, path, remove, run, status
from ._common import UsageError, code_for, namespace_arg, say
from ._parser import build_parser

COMMANDS = {
    "run": run.cmd_run,
    "status": status.cmd_status,
    "path": path.cmd_path,
    "namespace": namespace.cmd_namespace,
    "remove": remove.cmd_remove,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `xlock` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        url = pg_namespace(namespace_arg(args))
        if url is not None and args.command != "run":  # `run` takes the URI through xlock.Lock [XL-PG-1]
            from .._pg.cli import run_command

            return int(run_command(args, url) or 0)
        return COMMANDS[args.command](args)
    except Signalled as exc:
        return SIGNAL_BASE + exc.signum
    except KeyboardInterrupt:
        return SIGNAL_BASE + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (`xlock status | head -1`): stop quietly, as a shell tool killed by
        # SIGPIPE would, and keep the interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGNAL_BASE + signal.SIGPIPE
    except (UsageError, xlock.XLockError, OSError) as exc:
        say(f"error: {exc}")
        return code_for(exc)
