"""`xlock run` as a drop-in for util-linux flock(1): the same options, exit codes and exclusion on the same
lock file, and a process model as robust (the lock lives with COMMAND; `-o` COMMAND dies with xlock;
a process-group signal reaches COMMAND once)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import (
    DEADLINE,
    SIGINT_COUNTER,
    XLOCK,
    finish,
    hold,
    read_line,
    run_xlock,
    start_xlock,
    stopped,
    wait_until,
)

from xlock import names

FLOCK = shutil.which("flock")
needs_flock = pytest.mark.skipif(FLOCK is None, reason="util-linux flock(1) is not installed")


@pytest.fixture
def ns(tmp_path: Path) -> Path:
    return tmp_path / "ns"


def flock(*args: str) -> int:
    assert FLOCK is not None
    return subprocess.run([FLOCK, *args], stdin=subprocess.DEVNULL, timeout=DEADLINE).returncode


def xlock_run(ns: Path, *args: str) -> int:
    return run_xlock("--namespace", str(ns), "run", *args).returncode


def flock_holder(path: Path, *options: str) -> subprocess.Popen[str]:
    """util-linux flock(1) holding `path` until its stdin closes."""
    assert FLOCK is not None
    proc = subprocess.Popen(
        [
            FLOCK,
            *options,
            str(path),
            sys.executable,
            "-c",
            "import sys; print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert read_line(proc) == "ready\n"
    return proc


INHERITS = (
    "import os, sys\n"
    "fds = []\n"
    "for fd in os.listdir('/proc/self/fd'):\n"
    "    try:\n"
    "        fds.append(os.readlink('/proc/self/fd/' + fd))\n"
    "    except OSError:\n"
    "        pass\n"
    "sys.exit(10 if sys.argv[1] in fds else 20)\n"
)


@needs_flock
def test_same_options_same_exit_codes_and_exclusion_as_flock(ns: Path) -> None:
    """Each option set run with flock(1) on the lock file and with xlock run on the name: same status."""
    assert xlock_run(ns, "job", "true") == 0  # creates the namespace and the lock file
    path = ns / names.lock_file_name("job")

    def both(*args: str) -> tuple[int, int]:
        """(flock's status, xlock's status) for `OPTIONS -- FILE|NAME COMMAND...`."""
        split = args.index("--")
        options, command = list(args[:split]), list(args[split + 1 :])
        return flock(*options, str(path), *command), xlock_run(ns, *options, "job", *command)

    # free: COMMAND's status, -c STRING through the shell, death by a signal
    for options in ([], ["-x"], ["-e"], ["-s"], ["-n"], ["-w", "1"], ["-o"], ["-E", "9"]):
        assert both(*options, "--", "sh", "-c", "exit 3") == (3, 3), options
        assert both(*options, "--", "-c", "exit 4") == (4, 4), options
    assert both("--", "sh", "-c", "kill -TERM $$") == (128 + 15, 128 + 15)
    assert both("--", "/no/such/command") == (69, 69)
    # the inherited descriptor: COMMAND has the lock file open, except with -o
    assert both("--", sys.executable, "-c", INHERITS, str(path)) == (10, 10)
    assert both("-o", "--", sys.executable, "-c", INHERITS, str(path)) == (20, 20)

    # held exclusively, by flock(1) or by xlock: -n, -w, -E, -s all conflict the same way
    for holder in (lambda: flock_holder(path), lambda: hold(ns, "job")):
        h = holder()
        try:
            for options in (
                ["-n"],
                ["-x", "-n"],
                ["-s", "-n"],
                ["-w", "0.05"],
                ["-w", "0"],
                ["-n", "-w", "5"],
            ):
                assert both(*options, "--", "true") == (1, 1), options
            assert both("-n", "-E", "7", "--", "true") == (7, 7)
            assert both("-E", "0", "-w", "0.01", "--", "true") == (0, 0)
            assert both("-n", "--", "-c", "exit 5") == (1, 1)  # COMMAND does not run
        finally:
            finish(h)

    # held shared: shared takers enter, exclusive ones are refused, in both directions
    for holder in (lambda: flock_holder(path, "-s"), lambda: hold(ns, "job", "-s")):
        h = holder()
        try:
            assert both("-s", "-n", "--", "true") == (0, 0)
            assert both("-x", "-n", "--", "true") == (1, 1)
            assert both("-s", "-x", "-n", "--", "true") == (1, 1)  # the last of -s/-x wins
            assert both("-x", "-s", "-n", "--", "true") == (0, 0)
        finally:
            finish(h)


@needs_flock
def test_a_waiting_xlock_gets_the_lock_flock_releases(ns: Path, tmp_path: Path) -> None:
    assert xlock_run(ns, "job", "true") == 0
    path = ns / names.lock_file_name("job")
    h = flock_holder(path)
    waiter = start_xlock("--namespace", str(ns), "run", "-w", "30", "job", "--", "echo", "entered")
    finish(h)
    assert finish(waiter)[:2] == (0, "entered\n")


def pid_line(proc: subprocess.Popen[str]) -> int:
    line = read_line(proc)
    assert line.startswith("pid "), line
    return int(line.split()[1])


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie no longer holds descriptors)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def close_pipes(proc: subprocess.Popen[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        stream.close()


REPORT_PID_AND_HOLD = "import os, sys; print('pid', os.getpid(), flush=True); sys.stdin.read()"


def test_sigkill_of_xlock_leaves_the_lock_with_command(ns: Path) -> None:
    """As with flock(1): COMMAND inherited the lock; killing xlock (OOM killer, kill -9) frees nothing."""
    proc = start_xlock("--namespace", str(ns), "run", "job", "--", sys.executable, "-c", REPORT_PID_AND_HOLD)
    command = pid_line(proc)
    proc.kill()
    proc.wait(DEADLINE)
    try:
        assert not gone(command)
        assert xlock_run(ns, "-n", "job", "true") == 1  # refused while COMMAND lives
        assert xlock_run(ns, "-n", "job", "true") == 1
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # COMMAND reads EOF and exits
    wait_until(lambda: gone(command), "COMMAND exits")
    assert xlock_run(ns, "-n", "job", "true") == 0
    close_pipes(proc)


@pytest.mark.parametrize("permits", [[], ["--permits", "1"]])
def test_close_command_dies_with_xlock(ns: Path, permits: list[str]) -> None:
    """-o: the lock stays in xlock alone; if xlock is killed, COMMAND is killed too (PR_SET_PDEATHSIG)
    and never runs unlocked."""
    args = (
        "--namespace",
        str(ns),
        "run",
        "-o",
        *permits,
        "job",
        "--",
        sys.executable,
        "-c",
        REPORT_PID_AND_HOLD,
    )
    proc = start_xlock(*args)
    command = pid_line(proc)
    assert xlock_run(ns, "-n", *permits, "job", "true") == 1
    proc.kill()
    proc.wait(DEADLINE)
    wait_until(lambda: gone(command), "COMMAND is killed with xlock")
    assert xlock_run(ns, "-n", *permits, "job", "true") == 0
    finish(proc)


def test_permits_slot_is_inherited_too(ns: Path) -> None:
    proc = start_xlock(
        "--namespace",
        str(ns),
        "run",
        "--permits",
        "1",
        "pool",
        "--",
        sys.executable,
        "-c",
        REPORT_PID_AND_HOLD,
    )
    command = pid_line(proc)
    proc.kill()
    proc.wait(DEADLINE)
    assert xlock_run(ns, "-n", "--permits", "1", "pool", "true") == 1
    assert proc.stdin is not None
    proc.stdin.close()
    wait_until(lambda: gone(command), "COMMAND exits")
    assert xlock_run(ns, "-n", "--permits", "1", "pool", "true") == 0
    close_pipes(proc)


def test_no_fork_execs_command_holding_the_lock(ns: Path) -> None:
    proc = start_xlock(
        "--namespace", str(ns), "run", "-F", "job", "--", sys.executable, "-c", REPORT_PID_AND_HOLD
    )
    assert pid_line(proc) == proc.pid  # xlock became COMMAND
    assert xlock_run(ns, "-n", "job", "true") == 1
    assert finish(proc)[0] == 0
    assert xlock_run(ns, "-n", "job", "true") == 0


def test_process_group_sigint_reaches_command_exactly_once(ns: Path) -> None:
    """A terminal-style SIGINT to the whole process group (killpg, as the tty driver, timeout(1) and job
    control do) reaches COMMAND once: xlock does not forward its own copy. xlock is stopped while COMMAND
    takes the group's SIGINT; then SIGCONT and a SIGTERM (forwarded) make COMMAND print its count. A wrong
    forward of SIGINT would come before the forwarded SIGTERM (xlock takes pending signals lowest first)
    and be counted (Python runs pending handlers lowest number first)."""
    script = SIGINT_COUNTER
    proc = subprocess.Popen(
        [*XLOCK, "--namespace", str(ns), "run", "job", "--", sys.executable, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # setsid: xlock and COMMAND form their own process group
    )
    try:
        assert read_line(proc) == "ready\n"
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: stopped(proc.pid), "xlock is stopped")
        os.killpg(proc.pid, signal.SIGINT)
        assert read_line(proc) == "int\n"  # COMMAND took the group's SIGINT; xlock's copy is pending
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGTERM)
        assert read_line(proc) == "count 1\n"
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        finish(proc)


def test_sigint_to_xlock_alone_is_not_forwarded_but_sigterm_is(ns: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, lambda s, f: os.write(1, b'int\\n'))\n"
        "signal.signal(signal.SIGTERM, lambda s, f: (os.write(1, b'term\\n'), os._exit(3)))\n"
        "os.write(1, b'ready\\n')\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    proc = start_xlock("--namespace", str(ns), "run", "job", "--", sys.executable, "-c", script)
    assert read_line(proc) == "ready\n"
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    status, out, _ = finish(proc)
    assert (status, out) == (3, "term\n")


@pytest.mark.parametrize("name", ["/tmp/x/foo.lock", "x/y", "foo.lock"])
def test_a_name_that_looks_like_a_path_gets_one_warning(ns: Path, name: str) -> None:
    r = run_xlock("--namespace", str(ns), "run", name, "true")
    assert r.returncode == 0
    lock_file = str(ns / names.lock_file_name(name))
    [line] = r.stderr.splitlines()
    assert line.startswith(f"xlock: warning: {name} is a lock name, not a path: this locks {lock_file};")
    assert f"flock {name} COMMAND" in line
    assert run_xlock("--namespace", str(ns), "run", "-q", name, "true").stderr == ""
    assert run_xlock("--namespace", str(ns), "run", "plain-name", "true").stderr == ""


@needs_flock
def test_path_quiet_is_the_lock_file_for_flock_on_a_descriptor(ns: Path) -> None:
    r = run_xlock("--namespace", str(ns), "path", "-q", "Job A")
    assert (r.returncode, r.stdout) == (0, str(ns / names.lock_file_name("Job A")) + "\n")
    assert xlock_run(ns, "Job A", "true") == 0  # the file exists once used
    h = hold(ns, "Job A")
    try:
        script = f'exec 9<"$({" ".join(XLOCK)} --namespace {ns} path -q "Job A")"; flock -n 9'
        assert subprocess.run(["sh", "-c", script], timeout=DEADLINE).returncode == 1
    finally:
        finish(h)
    assert subprocess.run(["sh", "-c", script], timeout=DEADLINE).returncode == 0
