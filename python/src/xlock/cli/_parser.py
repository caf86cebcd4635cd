"""The `xlock` command line: the options every subcommand takes and each subcommand's own.

Only argparse and the argument types live here, so that parsing imports no subcommand's implementation;
`main` imports the one that runs (issue 14: `xlock path NAME` starts in a few milliseconds).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import xlock

from ._common import EX_CONFLICT, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn, Optional

    # add(name, summary, description): a subcommand's parser, with the options every subcommand takes.
    AddParser = Callable[[str, str, str], argparse.ArgumentParser]

EXIT_CODES_HELP = """\
exit status:
  run        as flock(1): COMMAND's status; 1 (or -E CODE) if the lock was not taken because of -n
             or -w; 69 COMMAND could not be executed (71 for lack of memory); 128+N COMMAND died
             from signal N (or xlock got SIGINT/SIGTERM/SIGHUP while waiting)
  all        0 success; 1 remove of a held lock; 64 usage error (bad name or arguments);
             65 capacity mismatch; 69 namespace refused (insecure, unsupported file system);
             70 internal error; 71 other system error; 141 standard output closed early
"""

RUN_DESCRIPTION = """\
Take the lock NAME (or, with --permits N, one of the N permits of the counting semaphore NAME), run
COMMAND (or, with -c, STRING through $SHELL or /bin/sh), and exit with COMMAND's status. The options
and exit statuses are util-linux flock(1)'s; NAME is an xlock name, not a path (xlock path -q NAME
prints its lock file, for flock(1) on it).

Like flock(1), COMMAND inherits the locked descriptor: the lock lives as long as COMMAND (or a process
that inherited it from COMMAND), whatever happens to xlock. With -o COMMAND does not get it: the lock
stays in xlock, which waits for COMMAND; if xlock dies, COMMAND is killed (SIGKILL, PR_SET_PDEATHSIG),
so it never runs unlocked. With -F xlock execs COMMAND, which holds the lock itself.

While COMMAND runs, SIGTERM and SIGHUP sent to xlock are forwarded to it; SIGINT and SIGQUIT are not
(the terminal's Ctrl-C and Ctrl-\\ already reach COMMAND, which is in xlock's process group): COMMAND
gets each once. Ctrl-Z stops both.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`: $COLUMNS if a positive integer, else the width of the
    terminal on standard output, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    try:
        columns = os.get_terminal_size(stdout.fileno()).columns if stdout is not None else 0
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, with the width it would take found without importing shutil (and zlib, bz2,
    lzma): argparse makes a formatter for every argument added, so every `xlock` paid for it (issue 14)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as argparse.HelpFormatter
        super().__init__(prog, indent_increment, max_help_position, width, **kwargs)


def capacity_arg(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 1000:  # XL-CSEM-1
        raise argparse.ArgumentTypeError(f"capacity {text!r} must be from 1 to 1000")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def _exit_code(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not an exit code from 0 to 255")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False, formatter_class=_Formatter)
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
        formatter_class=_Formatter,
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
            formatter_class=_Formatter,
            parents=[common],
        )

    for add_arguments in (_run, _status, _path, _namespace, _remove):
        add_arguments(add)
    return parser


def _run(add: AddParser) -> None:
    run = add(
        "run", "run a command while holding a lock (options and exit codes of flock(1))", RUN_DESCRIPTION
    )
    run.usage = (
        "xlock run [options] NAME COMMAND [ARGUMENT...]\n"
        "       xlock run [options] NAME -c STRING\n"
        "       xlock run [options] -c STRING NAME"
    )
    run.add_argument("name", metavar="NAME", help="lock name (not a path)")
    run.add_argument(
        "-s", "--shared", dest="mode", action="store_const", const="shared", help="take a shared lock"
    )
    run.add_argument(
        "-x",
        "-e",
        "--exclusive",
        dest="mode",
        action="store_const",
        const="exclusive",
        help="take an exclusive lock (the default)",
    )
    run.add_argument(
        "-n",
        "--nb",
        "--nonblock",
        "--nonblocking",
        dest="nonblock",
        action="store_true",
        help="fail rather than wait",
    )
    run.add_argument(
        "-w", "--wait", "--timeout", metavar="SECONDS", type=_seconds, help="wait at most SECONDS (0: as -n)"
    )
    run.add_argument(
        "-E",
        "--conflict-exit-code",
        metavar="CODE",
        type=_exit_code,
        default=EX_CONFLICT,
        help="exit status when -n or -w did not get the lock (default 1)",
    )
    run.add_argument(
        "-o",
        "--close",
        action="store_true",
        help="COMMAND does not inherit the lock's descriptor; xlock holds it, and COMMAND is killed if "
        "xlock dies",
    )
    run.add_argument(
        "-c",
        "--command",
        metavar="STRING",
        dest="command_string",
        help="run STRING with $SHELL -c (else /bin/sh)",
    )
    run.add_argument(
        "-F", "--no-fork", action="store_true", help="exec COMMAND in xlock's process, holding the lock"
    )
    run.add_argument(
        "--verbose", action="store_true", help="say how long the lock took, what runs and why it did not"
    )
    run.add_argument(
        "--permits",
        metavar="N",
        type=capacity_arg,
        help="take one of N permits of the counting semaphore NAME instead of the lock NAME; COMMAND gets "
        "the permit's slot index (0..N-1) in $XLOCK_SLOT (was -c/--capacity before 0.2)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="no warning for a NAME that looks like a path"
    )
    run.add_argument("cmd", metavar="COMMAND", nargs=argparse.REMAINDER, help="the command and arguments")


def _status(add: AddParser) -> None:
    status = add(
        "status",
        "show held and waited-for locks and semaphore slots",
        "List the locks and semaphore slots of the namespace that are held or waited for, with the "
        "holders' and waiters' PIDs, modes and command lines (from /proc/locks). Waiters are processes "
        "blocked in an untimed wait (flock(2)); a timed waiter or a semaphore waiter sleeps on the "
        "namespace's bell between non-blocking attempts, so /proc/locks does not show it.",
    )
    status.add_argument("name", metavar="NAME", nargs="?", help="only this lock or semaphore name")
    status.add_argument("--all", action="store_true", help="also list idle lock and slot files")
    status.add_argument("--json", action="store_true", help="print JSON")


def _path(add: AddParser) -> None:
    path = add(
        "path",
        "print the files and bell word of a name",
        "Print the lock file (or capacity file) path of NAME in the namespace, and the namespace's bell "
        "file with NAME's word in it (for --kind posix_semaphore: the raw semaphore's name and file). "
        "Creates the namespace directory if it is missing, as any xlock user would; creates no file.",
    )
    path.add_argument("name", metavar="NAME")
    path.add_argument(
        "--kind", choices=("lock", "semaphore", "posix_semaphore"), default="lock", help="default: lock"
    )
    path.add_argument("--capacity", type=capacity_arg, help="a semaphore's capacity, to list its slot files")
    path.add_argument("--json", action="store_true", help="print JSON")
    path.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the lock file (capacity file, raw semaphore file), for flock(1): "
        'exec 9<"$(xlock path -q NAME)"; flock 9',
    )


def _namespace(add: AddParser) -> None:
    namespace = add(
        "namespace",
        "show the namespace this process would use, and whether it is accepted",
        "Show the namespace directory, why it was chosen (--namespace, XLOCK_NAMESPACE or the default), "
        "its identity, owner, mode, file mode and file system, and whether xlock accepts it.",
    )
    namespace.add_argument("--json", action="store_true", help="print JSON")


def _remove(add: AddParser) -> None:
    remove = add(
        "remove",
        "remove the files of idle locks and semaphores",
        "Remove the lock file of NAME (or a semaphore's files), only if nobody holds it: the files are "
        "removed while holding them, so no waiter is ever split from its lock. Creates nothing. With "
        "--all-idle, every idle lock and semaphore; files that are held, that you may not remove or "
        "that are malformed are reported and left, and temporary files older than 60 s are removed.",
    )
    remove.add_argument("name", metavar="NAME", nargs="?")
    remove.add_argument(
        "--kind", choices=("lock", "semaphore", "posix_semaphore"), default="lock", help="default: lock"
    )
    remove.add_argument(
        "--capacity",
        type=capacity_arg,
        help="the semaphore's capacity (default: read from its capacity file)",
    )
    remove.add_argument(
        "--all-idle", action="store_true", help="remove every idle lock and semaphore of the namespace"
    )
