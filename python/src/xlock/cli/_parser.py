"""The `xlock` command line: the options every subcommand takes; each subcommand adds its own."""

from __future__ import annotations

import argparse
from typing import NoReturn

import xlock

from . import namespace, path, remove, run, status
from ._common import (
    UsageError,
)

EXIT_CODES_HELP = """\
exit status:
  run        as flock(1): COMMAND's status; 1 (or -E CODE) if the lock was not taken because of -n
             or -w; 69 COMMAND could not be executed (71 for lack of memory); 128+N COMMAND died
             from signal N (or xlock got SIGINT/SIGTERM/SIGHUP while waiting)
  all        0 success; 1 remove of a held lock; 64 usage error (bad name or arguments);
             65 capacity mismatch; 69 namespace refused (insecure, unsupported file system);
             70 internal error; 71 other system error; 141 standard output closed early
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--namespace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="namespace directory or postgresql:// URI (default: $XLOCK_NAMESPACE, else /tmp/xlock-EUID)",
    )
    common.add_argument(
        "--allow-unsupported-fs",
        action="store_true",
        default=argparse.SUPPRESS,
        help="accept a namespace on NFS, SMB, FUSE, ... where flock(2) may not exclude",
    )
    parser = _Parser(
        prog="xlock",
        description="Named, crash-safe locks shared by every process and language on this host (xlock/1).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"xlock {xlock.__version__} (xlock/1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    for command in (run, status, path, namespace, remove):
        command.add_parser(add)
    return parser
