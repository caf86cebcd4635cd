"""`xlock status`, `path`, `namespace`, `remove` and error handling, end to end with real processes."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import (
    DEADLINE,
    XLOCK,
    assert_one_error_line,
    clean_env,
    finish,
    hold,
    read_line,
    run_xlock,
    start_xlock,
    wait_for_waiter,
)
from conftest import SPEC

import xlock
from xlock import _libc, names

VECTORS = SPEC / "vectors" / "names.json"


@pytest.fixture
def ns(tmp_path: Path) -> Path:
    return tmp_path / "ns"


ME = pwd.getpwuid(os.geteuid()).pw_name  # the owner status shows for the files we create


def status_json(ns: Path, *args: str) -> dict[str, Any]:
    r = run_xlock("--namespace", str(ns), "status", "--json", *args)
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    locks = data["locks"]
    assert isinstance(locks, list)
    return locks


# --------------------------------------------------------------------------------------------------
# status


def test_status_shows_holder_and_waiter(ns: Path) -> None:
    a = hold(ns, "billing export")
    b = start_xlock("--namespace", str(ns), "run", "--shared", "billing export", "--", "true")
    try:
        wait_for_waiter(b.pid)
        data = status_json(ns)
        assert data["namespace"] == {"path": str(ns), "dev": ns.stat().st_dev, "ino": ns.stat().st_ino}
        [entry] = entries(data)
        assert entry["name"] == "billing export"
        assert (entry["kind"], entry["slot"], entry["state"], entry["mode"]) == (
            "lock",
            None,
            "held",
            "exclusive",
        )
        assert entry["path"] == str(ns / names.lock_file_name("billing export"))
        [holder] = entry["holders"]
        [waiter] = entry["waiters"]
        assert (holder["pid"], holder["mode"]) == (a.pid, "exclusive")
        assert "run" in holder["cmdline"] and "billing export" in holder["cmdline"]
        assert (waiter["pid"], waiter["mode"]) == (b.pid, "shared")
        assert "--shared" in waiter["cmdline"]

        text = run_xlock("--namespace", str(ns), "status")
        assert text.returncode == 0
        assert f'"billing export"  (lock, held exclusive, owner {ME})' in text.stdout
        assert f"holder {a.pid:>7}  exclusive" in text.stdout
        assert f"waiter {b.pid:>7}  shared" in text.stdout
    finally:
        finish(a)
        finish(b)
    assert entries(status_json(ns)) == []


def test_status_shared_holders_and_name_filter(ns: Path) -> None:
    a = hold(ns, "db", "-s")
    b = hold(ns, "db", "-s")
    c = hold(ns, "other")
    try:
        [entry] = entries(status_json(ns, "db"))
        assert (entry["name"], entry["mode"]) == ("db", "shared")
        assert sorted(h["pid"] for h in entry["holders"]) == sorted([a.pid, b.pid])
        assert [e["name"] for e in entries(status_json(ns))] == ["db", "other"]
        assert entries(status_json(ns, "nobody")) == []
    finally:
        for p in (a, b, c):
            finish(p)


def test_status_all_lists_idle_files(ns: Path) -> None:
    assert run_xlock("--namespace", str(ns), "run", "idle-one", "--", "true").returncode == 0
    assert entries(status_json(ns)) == []
    [entry] = entries(status_json(ns, "--all"))
    assert (entry["name"], entry["state"], entry["mode"], entry["holders"]) == ("idle-one", "idle", None, [])
    r = run_xlock("--namespace", str(ns), "status", "--all")
    assert f"idle-one  (lock, idle, owner {ME})" in r.stdout


def test_status_shows_semaphore_slot_holder(ns: Path) -> None:
    script = (
        "import sys, xlock\n"
        "s = xlock.Semaphore('pool', 2, namespace=sys.argv[1])\n"
        "print(s.acquire() and s.slot, flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(ns)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert read_line(holder) == "0\n"
        [entry] = entries(status_json(ns))
        assert (entry["name"], entry["kind"], entry["slot"], entry["mode"]) == (
            "pool",
            "semaphore",
            0,
            "exclusive",
        )
        assert entry["holders"][0]["pid"] == holder.pid
        r = run_xlock("--namespace", str(ns), "status")
        assert f"pool  (semaphore slot 0, held exclusive, owner {ME})" in r.stdout
    finally:
        holder.communicate(timeout=DEADLINE)


def test_status_shows_a_foreign_flock1_holder(ns: Path) -> None:
    """util-linux flock(1) on the lock file is a holder like any other [XL-FOREIGN-1]."""
    assert run_xlock("--namespace", str(ns), "path", "shell-job").returncode == 0  # creates ns
    lock_path = ns / names.lock_file_name("shell-job")
    lock_path.touch()
    script = "import sys; print('ready', flush=True); sys.stdin.read()"
    foreign = subprocess.Popen(
        ["flock", "--shared", str(lock_path), sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert read_line(foreign) == "ready\n"
        [entry] = entries(status_json(ns))
        assert (entry["name"], entry["mode"]) == ("shell-job", "shared")
        [holder] = entry["holders"]
        assert holder["pid"] == foreign.pid
        assert holder["cmdline"][:3] == ["flock", "--shared", str(lock_path)]
    finally:
        foreign.communicate(timeout=DEADLINE)


# --------------------------------------------------------------------------------------------------
# path and namespace


def vector_names() -> list[str]:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    wanted = ("ordinary lowercase", "uppercase", "leading dot", "slash", "space")
    picked = [c for c in cases if c["valid"] and any(w in c["description"] for w in wanted)]
    assert len(picked) >= len(wanted)
    return [c["name"] for c in picked]


@pytest.mark.parametrize("name", vector_names())
def test_path_agrees_with_library_and_vectors(ns: Path, name: str) -> None:
    cases = {c["name"]: c for c in json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]}
    r = run_xlock("--namespace", str(ns), "path", name, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    st = ns.stat()
    assert info["path"] == os.path.join(ns, cases[name]["lock_file"])
    assert info["bell_word"] == cases[name]["bell_words"]["l"]  # [XL-SEM-7]
    assert info["bell"] == str(ns / ".xlock-bell")
    assert "semaphore" not in info
    assert (info["namespace"], info["dev"], info["ino"]) == (str(ns), st.st_dev, st.st_ino)
    assert os.listdir(ns) == []  # path creates no file
    lock = xlock.Lock(name, namespace=str(ns))
    try:
        assert (info["path"], info["bell_word"]) == (lock.path, lock.bell_word)
    finally:
        lock.close()


def test_path_semaphore_kinds(ns: Path) -> None:
    r = run_xlock("--namespace", str(ns), "path", "Pool", "--kind", "semaphore", "--capacity", "3", "--json")
    info = json.loads(r.stdout)
    st = ns.stat()
    assert info["path"] == str(ns / "!pool.sem")
    assert info["slot_files"] == [str(ns / f"!pool.{i}.slot") for i in range(3)]
    assert info["bell_word"] == xlock.bell_word("s", "Pool")
    sem = xlock.Semaphore("Pool", 3, namespace=str(ns))
    try:
        assert (info["path"], info["bell_word"]) == (sem.path, sem.bell_word)
    finally:
        sem.close()
    r = run_xlock("--namespace", str(ns), "path", "Pool", "--kind", "posix_semaphore", "--json")
    info = json.loads(r.stdout)
    assert info["path"] is None
    assert info["semaphore"] == names.semaphore_name("p", st.st_dev, st.st_ino, "Pool")
    assert info["shm_path"] == "/dev/shm/sem." + info["semaphore"][1:]
    text = run_xlock("--namespace", str(ns), "path", "Pool").stdout
    assert text.splitlines()[0].split() == ["lock", "file:", str(ns / "!pool.lock")]
    word = xlock.bell_word("l", "Pool")
    assert text.splitlines()[1].split() == ["bell:", f"{ns / '.xlock-bell'},", "word", str(word)]


def test_namespace_explicit(ns: Path) -> None:
    r = run_xlock("--namespace", str(ns), "namespace", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    st = ns.stat()
    assert (info["path"], info["source"], info["accepted"]) == (str(ns), "--namespace", True)
    assert (info["dev"], info["ino"], info["uid"], info["mode"]) == (
        st.st_dev,
        st.st_ino,
        os.geteuid(),
        "0700",
    )
    assert (info["shared"], info["file_mode"], info["default"]) == (False, "0600", False)
    assert (info["sharing"], info["capacity_mode"]) == ("private", "0600")  # [XL-NS-15]
    assert info["bell"] == str(ns / ".xlock-bell") and info["bell_state"] == "absent"  # not created
    fd = os.open(ns, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert info["fs_magic"] == f"0x{_libc.fstatfs_type(fd):x}"
    finally:
        os.close(fd)
    text = run_xlock("--namespace", str(ns), "namespace").stdout
    assert f"namespace:  {ns}  (given with --namespace)" in text
    assert "accepted:   yes" in text


def test_namespace_from_environment_and_shared(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    r = run_xlock("namespace", "--json", env=clean_env(XLOCK_NAMESPACE=str(shared)))
    info = json.loads(r.stdout)
    assert (info["path"], info["source"], info["shared"], info["file_mode"]) == (
        str(shared),
        "XLOCK_NAMESPACE",
        True,
        "0666",
    )
    assert (info["sharing"], info["capacity_mode"]) == ("world-shared", "0644")
    text = run_xlock("namespace", env=clean_env(XLOCK_NAMESPACE=str(shared))).stdout
    assert "sharing:    world-shared" in text and "every local user is a member" in text  # [XL-NS-15]


def test_namespace_default() -> None:
    r = run_xlock("namespace", "--json", env=clean_env())
    info = json.loads(r.stdout)
    assert (info["path"], info["source"]) == (names.default_namespace_path(), "default")


def test_insecure_namespace_is_refused_with_69(tmp_path: Path) -> None:
    bad = tmp_path / "open"
    bad.mkdir()
    bad.chmod(0o777)  # world-writable without the sticky bit [XL-NS-7]
    for args in (["run", "x", "--", "true"], ["status"], ["path", "x"], ["remove", "x"]):
        r = run_xlock("--namespace", str(bad), *args)
        assert r.returncode == 69, (args, r.stderr)
        assert_one_error_line(r.stderr)
        assert str(bad) in r.stderr
    r = run_xlock("--namespace", str(bad), "namespace", "--json")
    assert r.returncode == 69
    assert_one_error_line(r.stderr)
    info = json.loads(r.stdout)
    assert (info["accepted"], info["error"], info["mode"]) == (False, "INSECURE_NAMESPACE", "0777")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "ns-target")
    (tmp_path / "ns-target").mkdir(mode=0o700)
    r = run_xlock("--namespace", str(link), "run", "x", "--", "true")
    assert r.returncode == 69
    assert_one_error_line(r.stderr)


# --------------------------------------------------------------------------------------------------
# remove


def test_remove_refuses_held_and_removes_idle(ns: Path) -> None:
    lock_path = ns / names.lock_file_name("job")
    a = hold(ns, "job")
    try:
        r = run_xlock("--namespace", str(ns), "remove", "job")
        assert r.returncode == 1
        assert_one_error_line(r.stderr)
        assert lock_path.exists()
    finally:
        finish(a)
    r = run_xlock("--namespace", str(ns), "remove", "job")
    assert (r.returncode, r.stdout) == (0, f"removed: {lock_path}\n")
    assert not lock_path.exists()
    r = run_xlock("--namespace", str(ns), "remove", "job")
    assert (r.returncode, r.stdout) == (0, f"nothing to remove: {lock_path}\n")


def test_remove_semaphore(ns: Path) -> None:
    sem = xlock.Semaphore("pool", 2, namespace=str(ns))
    sem.acquire()
    try:
        r = run_xlock("--namespace", str(ns), "remove", "pool", "--kind", "semaphore", "--capacity", "2")
        assert r.returncode == 1
    finally:
        sem.close()
    r = run_xlock("--namespace", str(ns), "remove", "pool", "--kind", "semaphore", "--capacity", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(ns)) == [".xlock-bell"]


def test_remove_all_idle_leaves_held(ns: Path) -> None:
    for name in ("a", "B"):
        assert run_xlock("--namespace", str(ns), "run", name, "--", "true").returncode == 0
    xlock.Semaphore("pool", 2, namespace=str(ns)).close()
    a = hold(ns, "busy")
    try:
        r = run_xlock("--namespace", str(ns), "remove", "--all-idle")
        assert r.returncode == 0, r.stderr
        assert sorted(r.stdout.splitlines()) == [
            "held, left: lock busy",
            "removed: lock B",
            "removed: lock a",
            "removed: semaphore pool",
        ]
        assert sorted(os.listdir(ns)) == [".xlock-bell", names.lock_file_name("busy")]
    finally:
        finish(a)


# --------------------------------------------------------------------------------------------------
# usage errors


@pytest.mark.parametrize(
    "args",
    [
        ["run", "", "--", "true"],  # empty name [XL-NAME-1]
        ["run", "a\nb", "--", "true"],  # control character [XL-NAME-2]
        ["run", "x" * 81, "--", "true"],
        ["path", "a\x7f"],
        ["status", "\x1b"],
        ["remove", ""],
        ["run"],
        ["run", "x"],  # no command
        ["run", "-w", "-1", "x", "true"],
        ["run", "-w", "soon", "x", "true"],
        ["run", "-E", "300", "x", "true"],
        ["run", "-s", "--permits", "2", "x", "true"],  # a permit is never shared
        ["run", "--permits", "1001", "x", "true"],  # [XL-CSEM-1]
        ["run", "-o", "-F", "x", "true"],  # incompatible, as in flock(1)
        ["run", "x", "-c", "true", "extra"],  # -c takes exactly one STRING
        ["run", "-c", "true", "x", "extra"],
        ["remove", "pool", "--capacity", "2"],  # capacity of a lock
        ["path", "x", "--capacity", "0"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_64_with_one_line(ns: Path, args: list[str]) -> None:
    r = run_xlock("--namespace", str(ns), *args)
    assert r.returncode == 64, r.stderr
    assert_one_error_line(r.stderr)


def test_relative_namespace_is_a_usage_error() -> None:
    r = run_xlock("--namespace", "relative/dir", "path", "x")
    assert r.returncode == 64
    assert_one_error_line(r.stderr)


def test_invalid_utf8_name_is_a_usage_error(ns: Path) -> None:
    """argv bytes that are not UTF-8 reach xlock as lone surrogates: INVALID_NAME [XL-NAME-3]."""
    r = subprocess.run(
        [sys.executable, "-m", "xlock", "--namespace", str(ns).encode(), "path", b"a\xffb"],
        capture_output=True,
        timeout=DEADLINE,
    )
    assert r.returncode == 64
    assert_one_error_line(r.stderr.decode("utf-8", "replace"))


def test_every_subcommand_has_help() -> None:
    for sub in ("run", "status", "path", "namespace", "remove"):
        r = run_xlock(sub, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: xlock {sub}")


def test_closed_stdout_is_not_an_error(ns: Path) -> None:
    """`xlock path --kind semaphore --capacity 1000 | head -1`: the reader leaves early."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 4096)  # far less than the ~60 KB of output
    proc = subprocess.Popen(
        [*XLOCK, "--namespace", str(ns), "path", "x", "--kind", "semaphore", "--capacity", "1000"],
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    with open(read_end, "rb") as reader:
        assert reader.readline().startswith(b"capacity file:")
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.wait(timeout=DEADLINE) == 128 + signal.SIGPIPE
    assert err == b""
