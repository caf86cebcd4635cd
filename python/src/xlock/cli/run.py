"""`xlock run`: a command run under a lock, with the options and exit codes of util-linux flock(1)."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import time
from typing import Optional

import xlock

from .._child import exec_command, exit_on_signals, run_child
from .._display import escape as _escape
from ._common import (
    EX_CONFLICT,
    AddParser,
    UsageError,
    allow_fs,
    capacity_arg,
    namespace_arg,
    say,
)

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


def add_parser(add: AddParser) -> None:
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


def _run_argv(args: argparse.Namespace) -> list[str]:
    """COMMAND as flock(1) reads it: `NAME COMMAND...`, `NAME -c STRING` or `-c STRING NAME`."""
    command: list[str] = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    string: Optional[str] = args.command_string
    if string is None and command and command[0] in ("-c", "--command"):
        if len(command) != 2:
            raise UsageError(f"{command[0]} requires exactly one command argument")
        string = command[1]
        command = []
    if string is not None:
        if command:
            raise UsageError("-c takes one STRING; give either -c STRING or COMMAND [ARGUMENT...]")
        return [os.environ.get("SHELL") or "/bin/sh", "-c", string]
    if not command:
        raise UsageError("run needs a COMMAND to run (see 'xlock run --help')")
    return command


def _looks_like_a_path(name: str) -> bool:
    return "/" in name or name.endswith(".lock")


def _warn_path_like(name: str, held: object) -> None:
    """One line for a NAME such as `/tmp/x/foo.lock`: xlock locks a file of its namespace, not that path."""
    where = getattr(held, "path", None) or f"a lock in {getattr(held, 'namespace', 'the namespace')}"
    say(
        f"warning: {_escape(name)} is a lock name, not a path: this locks {_escape(str(where))}; to lock "
        f"that path itself use flock(1), e.g. flock {shlex.quote(name)} COMMAND (-q: no warning)"
    )


def _held_descriptor(held: object) -> Optional[int]:
    """The descriptor whose open file description holds the lock or permit, for COMMAND to inherit."""
    if isinstance(held, xlock.Lock):
        return held._file.fd if held.locked() else None
    if isinstance(held, xlock.Semaphore) and held.slot is not None:
        return held._slots[held.slot].fd
    return None  # a PostgreSQL lock lives in xlock's session


def cmd_run(args: argparse.Namespace) -> int:
    command = _run_argv(args)
    if args.no_fork and args.close:
        raise UsageError("the --no-fork and --close options are incompatible")
    shared = args.mode == "shared"
    if args.permits is not None and shared:
        raise UsageError("--shared applies to a lock, not to --permits (a semaphore's permits are exclusive)")
    held: xlock.Lock | xlock.Semaphore
    if args.permits is None:
        held = xlock.Lock(
            args.name, namespace=namespace_arg(args), shared=shared, allow_unsupported_fs=allow_fs(args)
        )
    else:
        held = xlock.Semaphore(
            args.name, args.permits, namespace=namespace_arg(args), allow_unsupported_fs=allow_fs(args)
        )
    inherited = False
    try:
        if args.no_fork and not isinstance(held, (xlock.Lock, xlock.Semaphore)):
            # A PostgreSQL lock lives in xlock's session, which ends at exec [XL-PG-5].
            raise UsageError(
                "--no-fork cannot keep a lock of a PostgreSQL namespace: its session would end "
                "at exec; leave out -F"
            )
        if _looks_like_a_path(args.name) and not args.quiet:
            _warn_path_like(args.name, held)
        started = time.monotonic()
        # The handlers stay until run_child blocks the signals, so no signal is lost in between.
        with exit_on_signals():
            try:
                # -n wins over -w, as in flock(1); -w 0 is one attempt, as -n
                got: object = (
                    held.acquire(blocking=False) if args.nonblock else held.acquire(timeout=args.wait)
                )
            except (xlock.WouldBlock, xlock.Timeout):  # a PostgreSQL lock raises
                got = False
            if got is False:
                if args.verbose:
                    why = "failed to get lock" if args.nonblock else "timeout while waiting to get lock"
                    say(f"{why} {_escape(args.name)}")
                code: int = args.conflict_exit_code
                return code
            if args.verbose:
                took = time.monotonic() - started
                print(f"xlock: getting lock took {took:.6f} seconds", flush=True)
            env = None
            slot = getattr(held, "slot", None)  # a semaphore's, local or PostgreSQL
            if isinstance(slot, int) and not isinstance(slot, bool):
                env = {**os.environ, "XLOCK_SLOT": str(slot)}
            if args.verbose:
                print(f"xlock: executing {_escape(command[0])}", flush=True)
            fd = _held_descriptor(held)
            if args.no_fork:
                return exec_command(command, env, fd)  # returns only if the exec failed
            inherit = None if args.close else fd
            status = run_child(command, env, inherit, die_with_xlock=inherit is None)
            inherited = inherit is not None
            return status
    finally:
        if inherited and isinstance(held, xlock.Lock):
            held._close_for_inheritors()  # COMMAND's children may still hold it, as after flock(1)
        else:
            held.close()  # releases [XL-HOLD-10]; a slot file is only closed, never unlocked
