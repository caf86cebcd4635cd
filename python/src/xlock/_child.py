"""Run a command for `xlock run`: signals while waiting for the lock, and forwarding them to the command."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, Optional

__all__ = ["EX_NOEXEC", "EX_NOTFOUND", "SIGNAL_BASE", "Signalled", "exit_on_signals", "run_child"]

EX_NOEXEC = 126
EX_NOTFOUND = 127
SIGNAL_BASE = 128

_SI_KERNEL = 0x80  # siginfo si_code of a signal sent by the kernel, e.g. Ctrl-C from the terminal


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


def run_child(argv: Sequence[str], env: Optional[Mapping[str, str]] = None) -> int:
    """Run argv as a child with xlock's stdio (and `env`, default xlock's environment), forward signals
    to it, and return its shell-style status.

    The watched signals are blocked and taken with sigwaitinfo(), so a child exit cannot be missed and
    nothing runs in a signal handler. A signal the kernel sent to the whole foreground process group
    (Ctrl-C: si_code SI_KERNEL) already reached the child and is not forwarded a second time.
    """
    forwarded = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    watched = forwarded | {signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        try:
            # Every descriptor of xlock is O_CLOEXEC [XL-HOLD-9], so the lock is not inherited.
            pid = os.posix_spawnp(
                argv[0],
                list(argv),
                os.environ if env is None else env,
                setsigmask=old_mask,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # Python ignores these; the child must not
            )
        except FileNotFoundError as exc:
            _say_error(f"cannot run {argv[0]}: {exc.strerror}")
            return EX_NOTFOUND
        except OSError as exc:
            _say_error(f"cannot run {argv[0]}: {exc.strerror}")
            return EX_NOEXEC
        while True:
            info = signal.sigwaitinfo(watched)
            if info.si_signo == signal.SIGCHLD:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    code = os.waitstatus_to_exitcode(status)
                    return code if code >= 0 else SIGNAL_BASE - code
            elif info.si_code != _SI_KERNEL:
                try:
                    os.kill(pid, info.si_signo)
                except ProcessLookupError:
                    pass  # exited meanwhile; its SIGCHLD is pending
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _say_error(message: str) -> None:
    print(f"xlock: error: {message}", file=sys.stderr, flush=True)
