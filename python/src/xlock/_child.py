"""Run a command for `xlock run`, as util-linux flock(1) does: signals while waiting for the lock, the
command's process (inheriting the lock, or killed with xlock under `-o`), signals while it runs, and
`-F`'s exec.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, Optional

from . import _libc

__all__ = [
    "EX_OSERR",
    "EX_UNAVAILABLE",
    "SIGNAL_BASE",
    "Signalled",
    "exec_command",
    "exit_on_signals",
    "run_child",
]

EX_UNAVAILABLE = 69  # flock(1): COMMAND could not be executed
EX_OSERR = 71  # flock(1): ... for lack of memory
SIGNAL_BASE = 128

_SI_KERNEL = 0x80  # siginfo si_code of a signal sent by the kernel, e.g. a hangup of the terminal
# Forwarded to COMMAND when sent to xlock alone.
_FORWARDED = (signal.SIGTERM, signal.SIGHUP)
# The terminal sends these to the whole foreground process group, COMMAND included (as do killpg(2),
# timeout(1) and a shell's job control): xlock takes them and forwards nothing, as system(3) does.
_ABSORBED = (signal.SIGINT, signal.SIGQUIT)
_RESET_IN_COMMAND = (*_FORWARDED, *_ABSORBED, signal.SIGPIPE, signal.SIGXFSZ)


class Signalled(BaseException):
    """Raised by our handler when SIGINT/SIGTERM/SIGHUP arrives while xlock waits for a lock."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def exit_on_signals() -> Iterator[None]:
    """While waiting for a lock, turn SIGINT/SIGTERM/SIGHUP into `Signalled` (exit 128+N, no traceback).

    Signals that were ignored when xlock started (nohup, background jobs) stay ignored.
    """

    def handler(signum: int, frame: Optional[FrameType]) -> None:
        raise Signalled(signum)

    saved: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)
        if previous is signal.SIG_IGN:
            continue
        saved[sig] = previous
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def _prepare_exec(inherit_fd: Optional[int], mask: Any) -> None:
    """What COMMAND gets from the process that execs it: default dispositions for the signals Python or
    xlock handle or ignore (those ignored when xlock started stay ignored: nohup), xlock's original
    signal mask, and the locked descriptor without O_CLOEXEC."""
    for sig in _RESET_IN_COMMAND:
        if sig in (signal.SIGPIPE, signal.SIGXFSZ) or signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)
    if inherit_fd is not None:
        os.set_inheritable(inherit_fd, True)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def exec_command(argv: Sequence[str], env: Optional[Mapping[str, str]], inherit_fd: Optional[int]) -> int:
    """`-F`: replace xlock by COMMAND, which keeps the locked descriptor `inherit_fd` and with it the lock.
    Returns only if the exec failed, with flock(1)'s status (69, or 71 for ENOMEM)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        _prepare_exec(inherit_fd, mask)
        os.execvpe(argv[0], list(argv), dict(os.environ if env is None else env))
    except OSError as exc:
        return _exec_failed(argv[0], exc.errno or 0)
    return EX_UNAVAILABLE  # not reached: execvpe returns only by raising


def run_child(
    argv: Sequence[str],
    env: Optional[Mapping[str, str]],
    inherit_fd: Optional[int],
    die_with_xlock: bool,
) -> int:
    """Run argv as a child with xlock's stdio (and `env`, default xlock's environment) and return its
    shell-style status.

    `inherit_fd`: the locked descriptor, which COMMAND inherits (as from flock(1)): the lock then lives
    as long as COMMAND or any process that inherited it from COMMAND, whatever happens to xlock.
    `die_with_xlock` (`-o`, or no descriptor to inherit): COMMAND gets SIGKILL if xlock dies
    (PR_SET_PDEATHSIG), so it never runs without the lock.

    The watched signals are blocked and taken with sigwaitinfo(), so a child exit cannot be missed and
    nothing runs in a signal handler. SIGTERM and SIGHUP sent to xlock are forwarded (not when the kernel
    sent them to the process group: a terminal hangup); SIGINT and SIGQUIT are not: the terminal sends them
    to the whole foreground process group, so COMMAND has its own. SIGTSTP stops xlock and COMMAND alike.
    """
    watched = {*_FORWARDED, *_ABSORBED, signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        pid = _start(argv, env, inherit_fd, die_with_xlock, old_mask)
        if pid < 0:
            return -pid
        while True:
            info = signal.sigwaitinfo(watched)
            if info.si_signo == signal.SIGCHLD:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    code = os.waitstatus_to_exitcode(status)
                    return code if code >= 0 else SIGNAL_BASE - code
            elif info.si_signo in _FORWARDED and info.si_code != _SI_KERNEL:
                try:
                    os.kill(pid, info.si_signo)
                except ProcessLookupError:
                    pass  # exited meanwhile; its SIGCHLD is pending
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _start(
    argv: Sequence[str],
    env: Optional[Mapping[str, str]],
    inherit_fd: Optional[int],
    die_with_xlock: bool,
    mask: Any,
) -> int:
    """Fork and exec COMMAND; its pid, or minus the exit status if it could not be executed (the child
    reports the exec's errno on a close-on-exec pipe)."""
    # The at-fork handler closes the objects' own descriptors in the child [XL-HOLD-8]: COMMAND inherits
    # a duplicate, which shares the open file description and so the lock.
    inherit = None if inherit_fd is None else os.dup(inherit_fd)
    report_r, report_w = os.pipe()
    parent = os.getpid()
    env_dict = dict(os.environ if env is None else env)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child execs or exits
            try:
                os.close(report_r)
                if die_with_xlock:
                    _libc.lib.prctl(_libc.PR_SET_PDEATHSIG, _libc.ffi.cast("unsigned long", signal.SIGKILL))
                    if os.getppid() != parent:  # xlock died before prctl
                        os._exit(SIGNAL_BASE + signal.SIGKILL)
                _prepare_exec(inherit, mask)
                os.execvpe(argv[0], list(argv), env_dict)
            except OSError as exc:
                os.write(report_w, b"%d" % (exc.errno or 0))
            finally:
                os._exit(EX_UNAVAILABLE)
    finally:
        if inherit is not None:
            os.close(inherit)
        os.close(report_w)
    try:
        report = b""
        while True:
            chunk = os.read(report_r, 64)
            if not chunk:
                break
            report += chunk
    finally:
        os.close(report_r)
    if not report:
        return pid
    os.waitpid(pid, 0)
    return -_exec_failed(argv[0], int(report))


def _exec_failed(command: str, err: int) -> int:
    print(f"xlock: failed to execute {command}: {os.strerror(err)}", file=sys.stderr, flush=True)
    return EX_OSERR if err == errno.ENOMEM else EX_UNAVAILABLE
