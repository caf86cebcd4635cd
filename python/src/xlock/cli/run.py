"""`xlock run`: a command run under a lock, with the options and exit codes of util-linux flock(1)."""

from __future__ import annotations

import os
import shlex
import time

import xlock

from .._child import Signalled, exec_command, exit_on_signals, run_child
from .._display import escape as _escape
from ._common import SIGNAL_BASE, UsageError, allow_fs, namespace_arg, say

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from typing import Optional


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
    try:
        return _run(args)
    except Signalled as exc:  # SIGINT, SIGTERM or SIGHUP while waiting for the lock: exit 128+N
        return SIGNAL_BASE + exc.signum


def _run(args: argparse.Namespace) -> int:
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
