"""`xlock run`: real processes excluding each other, exit codes, signals (like util-linux flock(1))."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cli_helpers import (
    DEADLINE,
    SIGINT_COUNTER,
    XLOCK,
    assert_one_error_line,
    finish,
    hold,
    read_line,
    run_xlock,
    start_xlock,
    stopped,
    wait_for_waiter,
    wait_until,
)

import xlock
from xlock import names


@pytest.fixture
def ns(tmp_path: Path) -> Path:
    return tmp_path / "ns"


def catches(pid: int, signum: int) -> bool:
    """True if process `pid` has a handler for `signum` (SigCgt of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def append_cmd(log: Path, *words: str) -> list[str]:
    """A command that appends each word as a line to `log`, one write at a time."""
    script = "import sys\nfor w in sys.argv[2:]:\n    open(sys.argv[1], 'a').write(w + '\\n')"
    return [sys.executable, "-c", script, str(log), *words]


def test_two_runs_of_one_name_serialise(ns: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    # A holds the lock and records its start, then waits for its stdin to close before recording its end.
    script = (
        "import sys; log = sys.argv[1]\n"
        "open(log, 'a').write('A start\\n'); print('ready', flush=True)\n"
        "sys.stdin.read(); open(log, 'a').write('A end\\n')"
    )
    a = start_xlock("--namespace", str(ns), "run", "job", "--", sys.executable, "-c", script, str(log))
    assert read_line(a) == "ready\n"
    b = start_xlock("--namespace", str(ns), "run", "job", "--", *append_cmd(log, "B start", "B end"))
    wait_for_waiter(b.pid)  # B is blocked in flock(2), not merely slow
    assert log.read_text() == "A start\n"
    assert finish(a)[0] == 0
    assert finish(b)[0] == 0
    assert log.read_text().splitlines() == ["A start", "A end", "B start", "B end"]


def test_shared_runs_overlap_and_exclude_exclusive(ns: Path, tmp_path: Path) -> None:
    a = hold(ns, "db", "--shared")
    b = hold(ns, "db", "-s")  # a second shared holder gets in while the first holds
    r = run_xlock("--namespace", str(ns), "run", "-n", "db", "--", "true")
    assert r.returncode == 1
    assert finish(a)[0] == 0 and finish(b)[0] == 0


def test_nonblock_conflict_exit_code_and_command_not_run(ns: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    a = hold(ns, "job")
    try:
        r = run_xlock("--namespace", str(ns), "run", "-n", "job", "--", "touch", str(marker))
        assert (r.returncode, r.stdout, r.stderr) == (1, "", "")  # silent, as flock(1)
        r = run_xlock("--namespace", str(ns), "run", "-n", "--verbose", "job", "--", "touch", str(marker))
        assert (r.returncode, r.stderr) == (1, "xlock: failed to get lock job\n")
        r = run_xlock("--namespace", str(ns), "run", "-n", "-E", "7", "job", "--", "touch", str(marker))
        assert r.returncode == 7
        r = run_xlock("--namespace", str(ns), "run", "--nb", "job", "touch", str(marker))
        assert (r.returncode, r.stderr) == (1, "")
        assert not marker.exists()
    finally:
        finish(a)
    r = run_xlock("--namespace", str(ns), "run", "-n", "job", "--", "touch", str(marker))
    assert r.returncode == 0 and marker.exists()


def test_wait_timeout_gives_conflict_code(ns: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    a = hold(ns, "job")
    try:
        r = run_xlock("--namespace", str(ns), "run", "-w", "0.05", "job", "--", "touch", str(marker))
        assert r.returncode == 1
        r = run_xlock("--namespace", str(ns), "run", "-w", "0", "-E", "9", "job", "--", "touch", str(marker))
        assert r.returncode == 9
        assert not marker.exists()
    finally:
        finish(a)
    r = run_xlock("--namespace", str(ns), "run", "--wait", "5", "job", "--", "touch", str(marker))
    assert r.returncode == 0 and marker.exists()


@pytest.mark.parametrize("status", [0, 3, 255])
def test_command_status_propagates(ns: Path, status: int) -> None:
    r = run_xlock("--namespace", str(ns), "run", "job", "--", "sh", "-c", f"exit {status}")
    assert r.returncode == status


def test_signal_death_is_128_plus_n(ns: Path) -> None:
    r = run_xlock("--namespace", str(ns), "run", "job", "--", "sh", "-c", "kill -KILL $$")
    assert r.returncode == 128 + signal.SIGKILL


@pytest.mark.parametrize("no_fork", [[], ["-F"]])
def test_command_not_found_and_not_executable(ns: Path, tmp_path: Path, no_fork: list[str]) -> None:
    """As flock(1): 69 (EX_UNAVAILABLE) and one line naming the command."""
    missing = str(tmp_path / "no-such-command")
    r = run_xlock("--namespace", str(ns), "run", *no_fork, "job", "--", missing)
    assert (r.returncode, r.stderr) == (
        69,
        f"xlock: failed to execute {missing}: No such file or directory\n",
    )
    plain = tmp_path / "plain-file"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)  # no x bit: execve fails with EACCES, even for root
    r = run_xlock("--namespace", str(ns), "run", *no_fork, "job", "--", str(plain))
    assert (r.returncode, r.stderr) == (69, f"xlock: failed to execute {plain}: Permission denied\n")
    r = run_xlock("--namespace", str(ns), "run", "-n", "job", "true")
    assert r.returncode == 0  # nothing was left holding the lock


@pytest.mark.parametrize(
    ("options", "expected"),
    [([], ["inherited", "held"]), (["-o"], ["clean", "held"]), (["-F"], ["inherited", "held"])],
)
def test_the_command_inherits_the_lock_unless_close(
    ns: Path, options: list[str], expected: list[str]
) -> None:
    """As flock(1): COMMAND inherits the locked descriptor, except with -o; the lock is held either way."""
    lock_path = ns / names.lock_file_name("job")
    probe = (
        "import fcntl, os, sys\n"
        "path = sys.argv[1]\n"
        "fds = []\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try:\n"
        "        fds.append(os.readlink('/proc/self/fd/' + fd))\n"
        "    except OSError:\n"
        "        pass  # the descriptor listdir used\n"
        "print('inherited' if path in fds else 'clean')\n"
        "f = open(path, 'rb')\n"
        "try:\n"
        "    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "    print('free')\n"
        "except BlockingIOError:\n"
        "    print('held')\n"
    )
    r = run_xlock(
        "--namespace", str(ns), "run", *options, "job", "--", sys.executable, "-c", probe, str(lock_path)
    )
    assert (r.returncode, r.stdout.split()) == (0, expected), r.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_waiting_exits_128_plus_n_without_traceback(
    ns: Path, tmp_path: Path, signum: int
) -> None:
    marker = tmp_path / "ran"
    a = hold(ns, "job")
    try:
        b = start_xlock("--namespace", str(ns), "run", "job", "--", "touch", str(marker))
        wait_for_waiter(b.pid)
        b.send_signal(signum)
        status, _, err = finish(b)
        assert status == 128 + signum
        assert "Traceback" not in err
        assert not marker.exists()
    finally:
        finish(a)


# Runs argv[1:] with SIGINT and SIGHUP ignored, as a script's background job (SIGINT) or nohup (SIGHUP).
IGNORING = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_signal_ignored_at_start_stays_ignored_while_waiting(ns: Path, tmp_path: Path, signum: int) -> None:
    # As flock(1): xlock does not take over a signal its starter ignored; it waits on, then runs COMMAND.
    marker = tmp_path / "ran"
    a = hold(ns, "job")
    try:
        b = subprocess.Popen(
            [
                sys.executable,
                "-c",
                IGNORING,
                *XLOCK,
                "--namespace",
                str(ns),
                "run",
                "job",
                "--",
                "touch",
                str(marker),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_waiter(b.pid)
        b.send_signal(signum)  # an ignored signal is discarded when sent: it is never pending
        assert b.poll() is None
    finally:
        finish(a)
    status, _, err = finish(b)
    assert status == 0, err
    assert marker.exists()


def test_timed_wait_interrupted_by_sigterm(ns: Path) -> None:
    a = hold(ns, "job")
    try:
        b = start_xlock("--namespace", str(ns), "run", "-w", "60", "job", "--", "true")
        # A timed waiter uses LOCK_NB and the doorbell, so /proc/locks does not show it; xlock catches
        # SIGTERM only while it waits for the lock, which /proc/PID/status shows.
        wait_until(lambda: catches(b.pid, signal.SIGTERM), "xlock catches SIGTERM while waiting")
        b.send_signal(signal.SIGTERM)
        status, _, err = finish(b)
        assert status == 128 + signal.SIGTERM
        assert "Traceback" not in err
    finally:
        finish(a)


def test_signals_are_forwarded_to_the_command(ns: Path) -> None:
    script = (
        "import os, signal\n"
        "def on(signum, frame):\n"
        "    os.write(1, b'got %d\\n' % signum)  # not print: it may interrupt print('ready')\n"
        "    os._exit(5)\n"
        "signal.signal(signal.SIGTERM, on)\n"
        "signal.signal(signal.SIGHUP, on)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    for signum in (signal.SIGTERM, signal.SIGHUP):
        proc = start_xlock("--namespace", str(ns), "run", "job", "--", sys.executable, "-c", script)
        assert read_line(proc) == "ready\n"
        os.kill(proc.pid, signum)  # to xlock only: the command hears it only if xlock forwards it
        status, out, _ = finish(proc)
        assert (status, out) == (5, f"got {int(signum)}\n")


def test_forwarded_signal_kills_command_and_xlock_reports_it(ns: Path) -> None:
    # The command waits for signals only (not for EOF, which would race with the forwarded signal).
    pause = [sys.executable, "-c", "import signal; print('ready', flush=True); signal.pause()"]
    proc = start_xlock("--namespace", str(ns), "run", "job", "--", *pause)
    try:
        assert read_line(proc) == "ready\n"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 128 + signal.SIGTERM
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        finish(proc)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "xlock"
    assert script.exists(), f"no console script at {script}: install the package (pip install ./python)"
    r = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout.split()[:2]) == (0, ["xlock", xlock.__version__])


def test_python_dash_m_help_documents_exit_codes() -> None:
    r = run_xlock("run", "--help")
    assert r.returncode == 0
    for text in ("69", "128+N", "-E CODE", "64", "-o", "--permits", "PR_SET_PDEATHSIG", "SIGINT"):
        assert text in r.stdout


def test_capacity_runs_under_a_counting_semaphore_permit(ns: Path, tmp_path: Path) -> None:
    """`run --permits N` takes one of N permits [XL-CSEM-5]; the command learns its slot from
    $XLOCK_SLOT."""
    script = "import os, sys; print(os.environ['XLOCK_SLOT'], flush=True); sys.stdin.read()"
    first = start_xlock(
        "--namespace", str(ns), "run", "--permits", "2", "gpu", "--", sys.executable, "-c", script
    )
    second = start_xlock("--namespace", str(ns), "run", "--permits=2", "gpu", sys.executable, "-c", script)
    try:
        assert sorted([read_line(first), read_line(second)]) == ["0\n", "1\n"]
        marker = tmp_path / "ran"
        r = run_xlock(
            "--namespace", str(ns), "run", "-n", "--permits", "2", "gpu", "--", "touch", str(marker)
        )
        assert r.returncode == 1 and not marker.exists()
        r = run_xlock(
            "--namespace", str(ns), "run", "-n", "--permits", "3", "gpu", "--", "touch", str(marker)
        )
        assert r.returncode == 65  # CAPACITY_MISMATCH [XL-CSEM-3]
        assert_one_error_line(r.stderr)
        r = run_xlock("--namespace", str(ns), "run", "-n", "gpu", "--", "touch", str(marker))
        assert r.returncode == 0 and marker.exists()  # the lock "gpu" is another object [XL-NAME-5]
    finally:
        assert finish(first)[0] == 0
        assert finish(second)[0] == 0
    r = run_xlock("--namespace", str(ns), "run", "--permits", "2", "gpu", "-c", 'exit "$XLOCK_SLOT"')
    assert r.returncode == 0  # both permits are free again: slot 0


def test_ctrl_c_from_the_terminal_reaches_the_command_once(ns: Path) -> None:
    """A terminal's SIGINT goes to the whole foreground process group, command included; xlock must
    not forward it a second time (its si_code is SI_KERNEL), while a kill(2) from a user is forwarded.

    The command counts SIGINTs and prints the count when SIGTERM (sent to xlock, forwarded) arrives.
    xlock is stopped while the command takes the terminal's SIGINT, so a wrong forward could not merge
    with it; pending signals are taken lowest number first, by xlock's sigwaitinfo and in the command,
    so a wrongly forwarded SIGINT would reach the command before the forwarded SIGTERM: the count is exact.
    """
    script = SIGINT_COUNTER
    master, slave = os.openpty()

    def controlling_terminal() -> None:  # in the child, after setsid(): make the pty its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*XLOCK, "--namespace", str(ns), "run", "job", "--", sys.executable, "-c", script],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen = b""

    def read_until(token: bytes) -> None:
        """Read the terminal until `token` and the end of its line have come."""
        nonlocal seen
        deadline = time.monotonic() + DEADLINE
        while token not in seen or b"\n" not in seen[seen.index(token) :]:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([master], [], [], left)[0], f"no {token!r} in {seen!r}"
            seen += os.read(master, 4096)

    try:
        read_until(b"ready")
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: stopped(proc.pid), "xlock is stopped")
        os.write(master, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the foreground group
        read_until(b"int")  # the command took it; xlock's copy is pending
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGTERM)
        read_until(b"count")
        assert proc.wait(timeout=DEADLINE) == 0
        assert b"count 1" in seen, seen
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
