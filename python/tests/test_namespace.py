"""Namespace and lock-file security checks (§2, §6) and the unsupported-file-system decision."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import load_vectors

import xlock
from xlock._namespace import unsupported_fs_allowed, unsupported_fs_name

NOBODY = 65534


def test_created_private_and_reported(ns: str) -> None:
    with xlock.Namespace(ns) as space:
        st = os.stat(ns)
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert (space.path, space.dev, space.ino, space.shared, space.file_mode) == (
            ns,
            st.st_dev,
            st.st_ino,
            False,
            0o600,
        )
        assert not space.is_default and space.fd >= 0
    assert space.fd == -1


def test_explicit_then_environment(ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLOCK_NAMESPACE", ns)
    lock = xlock.Lock("x")
    assert lock.path == os.path.join(ns, "x.lock")
    other = tmp_path / "other"
    assert xlock.Lock("x", namespace=other).namespace == str(other)  # a PathLike is fine
    assert xlock.Lock("x", namespace=str(other) + "//").path == str(other / "x.lock")  # [XL-NS-14]
    with pytest.raises(xlock.InvalidArgument):
        xlock.Lock("x", namespace=42)  # type: ignore[arg-type]


def test_missing_parent_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(xlock.XLockOSError) as info:
        xlock.Namespace(str(tmp_path / "no" / "ns"))
    assert info.value.errno == 2


def test_world_writable_without_sticky_refused(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    with pytest.raises(xlock.InsecureNamespace, match="sticky"):
        xlock.Lock("x", namespace=str(d))
    os.chmod(d, 0o1777)
    old = os.umask(0o022)
    try:
        lock = xlock.Lock("x", namespace=str(d))
        lock.acquire()
        lock.release()
        sem = xlock.Semaphore("pool", 2, namespace=str(d))
    finally:
        os.umask(old)
    assert lock.sharing == "world-shared"
    assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o666
    # the bell and slot files get the namespace file mode too, whatever the umask; the capacity file
    # the file mode without group and other write [XL-NS-13, XL-BELL-2]
    assert stat.S_IMODE(os.stat(d / ".xlock-bell").st_mode) == 0o666
    assert stat.S_IMODE(os.stat(sem.path).st_mode) == 0o644
    lock.close()
    sem.close()


def test_group_shared_namespace_file_mode(tmp_path: Path) -> None:
    d = tmp_path / "group"
    d.mkdir()
    os.chmod(d, 0o3770)
    lock = xlock.Lock("x", namespace=str(d))
    assert lock.sharing == "group-shared"
    assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o660


def test_directory_owned_by_another_user_refused(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(xlock.InsecureNamespace, match="owned by uid 65534"):
        xlock.Namespace(str(d))


def test_symlink_as_namespace_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(xlock.InsecureNamespace, match="symbolic link"):
        xlock.Namespace(str(link))
    # a symlink in an earlier component is followed [XL-NS-5]
    inner = real / "inner"
    assert xlock.Namespace(str(link / "inner")).ino == os.stat(inner).st_ino


def test_file_as_namespace_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(xlock.InsecureNamespace, match="not a directory"):
        xlock.Namespace(str(f))


def test_symlink_at_lock_path_refused_and_target_untouched(ns: str, tmp_path: Path) -> None:
    xlock.Namespace(ns).close()
    target = tmp_path / "precious"
    target.write_text("keep me")
    os.chmod(target, 0o640)
    before = os.stat(target)
    os.symlink(target, os.path.join(ns, "x.lock"))
    with pytest.raises(xlock.InsecureNamespace, match="symbolic link"):
        xlock.Lock("x", namespace=ns)
    after = os.stat(target)
    assert target.read_text() == "keep me"
    assert (after.st_mode, after.st_size, after.st_mtime_ns) == (
        before.st_mode,
        before.st_size,
        before.st_mtime_ns,
    )
    assert os.path.islink(os.path.join(ns, "x.lock"))
    os.symlink(target, os.path.join(ns, "s.sem"))
    with pytest.raises(xlock.InsecureNamespace):
        xlock.Semaphore("s", 2, namespace=ns)


def test_fifo_at_lock_path_refused_without_hanging(ns: str) -> None:
    xlock.Namespace(ns).close()
    os.mkfifo(os.path.join(ns, "x.lock"))
    with pytest.raises(xlock.InsecureNamespace, match="not a regular file"):
        xlock.Lock("x", namespace=ns)
    os.mkdir(os.path.join(ns, "d.lock"))
    with pytest.raises(xlock.InsecureNamespace):
        xlock.Lock("d", namespace=ns)


def test_default_namespace_must_be_private() -> None:
    # The default namespace of another euid, reached through a child running as nobody.
    import subprocess
    import sys

    default = f"/tmp/xlock-{NOBODY}"
    existed = os.path.isdir(default)
    code = (
        "import os, xlock\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "ns = xlock.Namespace()\n"
        "assert ns.is_default and ns.path == '/tmp/xlock-65534'\n"
        "os.chmod(ns.path, 0o750)\n"
        "try:\n"
        "    xlock.Namespace()\n"
        "except xlock.InsecureNamespace as e:\n"
        "    print('refused:', e)\n"
        "os.chmod(ns.path, 0o700)\n"
    )
    env = dict(os.environ)
    env.pop("XLOCK_NAMESPACE", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    if not existed:
        os.rmdir(default)
    assert result.returncode == 0, result.stderr
    assert "refused: default namespace /tmp/xlock-65534" in result.stdout
    assert "0750" in result.stdout


FS_TYPES = load_vectors("fs_types.json")["refused"]


@pytest.mark.parametrize("entry", FS_TYPES, ids=lambda e: e["name"])
def test_unsupported_fs_types(entry: dict[str, str]) -> None:
    assert unsupported_fs_name(int(entry["f_type"], 16)) is not None


def test_supported_fs_types_and_opt_in(monkeypatch: pytest.MonkeyPatch, ns: str) -> None:
    for f_type in (0xEF53, 0x01021994, 0x58465342, 0x9123683E):  # ext4, tmpfs, xfs, btrfs
        assert unsupported_fs_name(f_type) is None
    assert len({int(e["f_type"], 16) for e in FS_TYPES}) == 10
    assert not unsupported_fs_allowed(False)
    assert unsupported_fs_allowed(True)
    monkeypatch.setenv("XLOCK_ALLOW_UNSUPPORTED_FS", "1")
    assert unsupported_fs_allowed(False)
    monkeypatch.setenv("XLOCK_ALLOW_UNSUPPORTED_FS", "yes")
    assert not unsupported_fs_allowed(False)
    xlock.Namespace(ns).close()  # this machine's file system is accepted
