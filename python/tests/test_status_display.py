"""`xlock status` shows what other users control without letting them reach the viewer's terminal: every
field escaped, JSON exact; and it tells a holder PID that has exited or closed the file from the process
that holds the lock now through an inherited descriptor [XL-INTRO-2]."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import DEADLINE, finish, hold, read_line, run_xlock

from xlock import names


@pytest.fixture
def ns(tmp_path: Path) -> Path:
    return tmp_path / "ns"


FORGED = ["x\n  holder     999  exclusive  /usr/sbin/forged", "\x1b]0;x\x07", "\x9b31m", "\u202eevil"]


def test_a_forged_command_line_reaches_the_terminal_escaped(ns: Path) -> None:
    """A holder whose command line holds a newline (a fake holder line), an OSC title sequence
    ``ESC ]0;x BEL``, a C1 CSI and a bidi override: the text output has none raw; JSON keeps it exact."""
    script = (
        "import sys, xlock\n"
        "lock = xlock.Lock('job', namespace=sys.argv[1])\n"
        "assert lock.acquire()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(ns), *FORGED],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert read_line(proc) == "ready\n"
        text = run_xlock("--namespace", str(ns), "status")
        assert text.returncode == 0, text.stderr
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in text.stdout, repr(text.stdout)
        lines = text.stdout.splitlines()
        holders = [line for line in lines if line.lstrip().startswith("holder")]
        assert len(holders) == 1 and f"holder {proc.pid:>7}" in holders[0], lines
        assert "/usr/sbin/forged" in holders[0]  # on the real holder's line, escaped
        assert "\\n" in holders[0] and "\\x1b]0;x\\x07" in holders[0] and "\\u202eevil" in holders[0]
        raw_json = run_xlock("--namespace", str(ns), "status", "--json").stdout
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in raw_json
        [entry] = json.loads(raw_json)["locks"]
        assert entry["holders"][0]["cmdline"][-len(FORGED) :] == FORGED  # exact
    finally:
        finish(proc)


def test_owner_of_each_lock_file(ns: Path) -> None:
    assert run_xlock("--namespace", str(ns), "run", "job", "true").returncode == 0
    me = pwd.getpwuid(os.geteuid()).pw_name
    [entry] = json.loads(run_xlock("--namespace", str(ns), "status", "--all", "--json").stdout)["locks"]
    assert (entry["owner"], entry["uid"]) == (me, os.geteuid())
    assert f"job  (lock, idle, owner {me})" in run_xlock("--namespace", str(ns), "status", "--all").stdout


def status_holder(ns: Path) -> tuple[dict[str, object], str]:
    [entry] = json.loads(run_xlock("--namespace", str(ns), "status", "--json").stdout)["locks"]
    [holder] = entry["holders"]
    return holder, run_xlock("--namespace", str(ns), "status").stdout


def test_holder_that_exited_leaving_the_lock_to_a_forked_child(ns: Path) -> None:
    """The PID in /proc/locks placed the lock and exited; its forked child holds it through the
    inherited descriptor (raw flock and fork, as a foreign program would)."""
    assert run_xlock("--namespace", str(ns), "run", "job", "true").returncode == 0
    path = ns / names.lock_file_name("job")
    script = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "if os.fork() == 0:\n"
        "    print(os.getpid(), flush=True)\n"
        "    sys.stdin.read()\n"
        "    os._exit(0)\n"
        "os._exit(0)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(read_line(proc))
        proc.wait(DEADLINE)  # the placing process is gone (reaped by us, its parent)
        holder, text = status_holder(ns)
        assert holder["pid"] == proc.pid and holder["pid_state"] == "exited"
        assert [t["pid"] for t in holder["through"]] == [child]  # type: ignore[attr-defined]
        assert f"pid {proc.pid} has exited" in text and f"through pid {child}" in text
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.stdout is not None
        proc.stdout.close()


def test_xlock_run_holder_and_its_command(ns: Path) -> None:
    """`xlock run` placed the lock and still has it; its COMMAND holds it too through the inherited
    descriptor, and status says so."""
    a = hold(ns, "job")
    try:
        holder, text = status_holder(ns)
        assert holder["pid"] == a.pid and holder["pid_state"] == "holding"
        [through] = holder["through"]  # type: ignore[misc]
        assert "ready" in " ".join(through["cmdline"])  # the HOLD command
        assert f"through pid {through['pid']}" in text
    finally:
        finish(a)
