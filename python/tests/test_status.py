"""/proc/locks parsing and file-name decoding for `xlock status` [XL-INTRO-2], on real locks and vectors."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import DEADLINE, read_line, wait_for_waiter
from conftest import SPEC

from xlock import _status, names

VECTORS = SPEC / "vectors" / "names.json"


def valid_vector_cases() -> list[dict[str, object]]:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    return [c for c in cases if c["valid"]]


# --------------------------------------------------------------------------------------------------
# parse_proc_locks


def test_parse_holder_and_waiter_lines() -> None:
    # Lines as this kernel prints them: MAJ:MIN in hex, the inode in decimal.
    text = (
        "1: FLOCK  ADVISORY  WRITE 5541 fe:00:2146793 0 EOF\n"
        "1: -> FLOCK  ADVISORY  READ 5545 fe:00:2146793 0 EOF\n"
        "2: POSIX  ADVISORY  WRITE 77 00:1a:12 0 EOF\n"
        "3: OFDLCK ADVISORY  READ -1 103:0a:99 0 100\n"
    )
    locks = _status.parse_proc_locks(text)
    assert locks[0] == _status.KernelLock(1, False, "FLOCK", "WRITE", 5541, 0xFE, 0, 2146793)
    assert locks[1] == _status.KernelLock(1, True, "FLOCK", "READ", 5545, 0xFE, 0, 2146793)
    assert locks[2].type == "POSIX" and (locks[2].major, locks[2].minor) == (0, 0x1A)
    assert (locks[3].type, locks[3].pid, locks[3].major, locks[3].minor) == ("OFDLCK", -1, 0x103, 0x0A)


def test_records_are_values() -> None:
    # Plain classes, not dataclasses (xlock status starts without inspect, issue 14), with a frozen
    # dataclass's equality, hash, repr and immutability; FileStatus is filled in, so mutable, unhashable.
    lock = _status.KernelLock(1, False, "FLOCK", "WRITE", 5541, 0xFE, 0, 2146793)
    same = _status.KernelLock(
        id=1, waiting=False, type="FLOCK", mode="WRITE", pid=5541, major=0xFE, minor=0, inode=2146793
    )
    assert lock == same and hash(lock) == hash(same) and lock != _status.KernelLock(2, *same._values()[1:])
    assert lock != tuple(same._values())
    assert repr(lock) == (
        "KernelLock(id=1, waiting=False, type='FLOCK', mode='WRITE', pid=5541, major=254, minor=0, "
        "inode=2146793)"
    )
    with pytest.raises(AttributeError):
        lock.pid = 1
    assert pickle.loads(pickle.dumps(lock)) == lock
    file = _status.NamespaceFile("a.lock", "a", "lock")
    assert (file.slot, repr(file)) == (None, "NamespaceFile(file='a.lock', name='a', kind='lock', slot=None)")
    process = _status.Process(7, "shared", None)
    assert (process.pid_state, process.through) == ("unknown", ())
    assert process == _status.Process(7, "shared", None, "unknown", ())
    entry = _status.FileStatus(file, dev=1, ino=2)
    assert (entry.uid, entry.holders, entry.waiters, entry.state, entry.mode) == (-1, [], [], "idle", None)
    entry.holders.append(process)
    assert (entry.state, entry.mode) == ("held", "shared")
    assert entry == _status.FileStatus(file, 1, 2, -1, [process], [])
    assert entry.waiters is not _status.FileStatus(file, 1, 2).waiters
    with pytest.raises(TypeError):
        hash(entry)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "1: FLOCK ADVISORY WRITE",
        "x: FLOCK ADVISORY WRITE 1 fe:00:1 0 EOF",
        "1: FLOCK ADVISORY WRITE 1 fe:00 0 EOF",
        "1: FLOCK ADVISORY WRITE 1 zz:00:1 0 EOF",
    ],
)
def test_unparseable_lines_are_skipped(line: str) -> None:
    assert _status.parse_proc_locks(line + "\n") == []


def test_real_proc_locks_show_holder_and_waiter(tmp_path: Path) -> None:
    """Hold a real flock here, block a child on it, and find both in the real /proc/locks."""
    path = tmp_path / "f.lock"
    path.touch()
    st = path.stat()
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl,sys; f=open(sys.argv[1],'rb'); print('go', flush=True); "
                "fcntl.flock(f, fcntl.LOCK_SH)",
                str(path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert read_line(child) == "go\n"
            wait_for_waiter(child.pid)
            ours = [
                lock
                for lock in _status.read_proc_locks()
                if (lock.major, lock.minor, lock.inode)
                == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
            ]
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
            child.wait(timeout=DEADLINE)
    holders = [(lk.type, lk.mode, lk.pid) for lk in ours if not lk.waiting]
    waiters = [(lk.type, lk.mode, lk.pid) for lk in ours if lk.waiting]
    assert holders == [("FLOCK", "WRITE", os.getpid())]
    assert waiters == [("FLOCK", "READ", child.pid)]


# --------------------------------------------------------------------------------------------------
# decoding file names (the inverse of XL-ENC-1, XL-ENC-3)


@pytest.mark.parametrize("case", valid_vector_cases(), ids=lambda c: str(c["description"]))
def test_decode_every_vector(case: dict[str, object]) -> None:
    name = case["name"]
    lock_file, capacity_file = str(case["lock_file"]), str(case["capacity_file"])
    assert _status.decode_file_name(lock_file) == _status.NamespaceFile(lock_file, str(name), "lock")
    assert _status.decode_file_name(capacity_file) == _status.NamespaceFile(
        capacity_file, str(name), "capacity"
    )
    slots = case["slot_files"]
    assert isinstance(slots, dict)
    for index, slot_file in slots.items():
        assert _status.decode_file_name(slot_file) == _status.NamespaceFile(
            slot_file, str(name), "slot", int(index)
        )
    tmp = names.EncodedName(str(name)).temp_capacity_file("0123abcd")  # [XL-ENC-3]
    assert _status.decode_file_name(tmp) == _status.NamespaceFile(tmp, str(name), "temporary")
    # draft 1's pid-numbered temporary file is withdrawn, and the bell is no name's file
    for other in (str(case["capacity_file"]) + ".4242.tmp", ".xlock-bell", ".xlock-bell.0123abcd.tmp"):
        decoded = _status.decode_file_name(other)
        assert decoded is None or decoded.kind != "temporary" or decoded.name != name


@pytest.mark.parametrize(
    "encoded",
    [
        "",  # no name
        ".hidden",  # a leading dot is always escaped
        "Billing",  # uppercase is always escaped
        "%61",  # "a" is written as itself
        "%41",  # "A" is written as "!a"
        "a%2e",  # a dot not at index 0 is written as itself
        "%2",  # truncated escape
        "%2F",  # uppercase hex digit
        "!",  # "!" must be followed by a letter
        "!1",
        "a b",  # space must be escaped
        "%ff",  # not UTF-8
        "%ed%a0%80",  # a lone surrogate in UTF-8 form
        "é",  # non-ASCII must be escaped
    ],
)
def test_decode_refuses_what_enc_never_produces(encoded: str) -> None:
    assert _status.decode_name(encoded) is None


def test_decode_round_trips_awkward_names() -> None:
    for name in [".", "..", "a.", "%", "!", "A", "a/b", "日本語", "x" * 80, ".x.y"]:
        assert _status.decode_name(names.encode_name(name)) == name


@pytest.mark.parametrize(
    "file",
    [
        "x",
        "x.lck",
        ".lock",
        "x.1000.slot",
        "x.01.slot",
        "x..slot",
        "x.-1.slot",
        "x.1.tmp",
        "x.sem.01.tmp",
        "x.sem.tmp",
        "X.lock",
    ],
)
def test_decode_file_name_refuses_foreign_files(file: str) -> None:
    assert _status.decode_file_name(file) is None


# --------------------------------------------------------------------------------------------------
# namespace_status on a real directory and real locks


def test_namespace_status_matches_locks_to_files(tmp_path: Path) -> None:
    ns = tmp_path / "ns"
    ns.mkdir(mode=0o700)
    for file in ["idle.lock", "busy.lock", "sem.3.slot", "sem.sem", "not-xlock.txt"]:
        (ns / file).touch()
    (ns / "dir.lock").mkdir()
    dir_fd = os.open(ns, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with (
            open(ns / "busy.lock", "rb") as a,
            open(ns / "busy.lock", "rb") as b,
            open(ns / "sem.3.slot", "rb") as c,
        ):
            fcntl.flock(a, fcntl.LOCK_SH)
            fcntl.flock(b, fcntl.LOCK_SH)
            fcntl.flock(c, fcntl.LOCK_EX)
            entries = _status.namespace_status(dir_fd, _status.read_proc_locks())
    finally:
        os.close(dir_fd)
    by_file = {e.file.file: e for e in entries}
    assert sorted(by_file) == ["busy.lock", "idle.lock", "sem.3.slot"]
    busy, idle, slot = by_file["busy.lock"], by_file["idle.lock"], by_file["sem.3.slot"]
    me = _status.read_cmdline(os.getpid())
    assert (busy.state, busy.mode) == ("held", "shared")
    assert busy.holders == [_status.Process(os.getpid(), "shared", me, "holding")] * 2
    assert (idle.state, idle.mode, idle.holders, idle.waiters) == ("idle", None, [], [])
    assert (slot.file.name, slot.file.kind, slot.file.slot, slot.mode) == ("sem", "slot", 3, "exclusive")


def test_read_cmdline_of_a_real_process() -> None:
    script = "import sys; print('ready', flush=True); sys.stdin.read()"
    argv = [sys.executable, "-c", script, "arg with space", "é"]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(child) == "ready\n"  # it runs: its exec is done
        assert _status.read_cmdline(child.pid) == argv
    finally:
        child.communicate(timeout=DEADLINE)
    assert _status.read_cmdline(child.pid) is None  # reaped: gone
    assert _status.read_cmdline(0) is None
