"""Opening another user's lock file in a sticky shared namespace under Linux ``fs.protected_regular``.

With the sysctl set, ``open(O_CREAT)`` of an existing file owned by someone other than the opener and
the directory's owner fails with EACCES, even for root. xlock opens existing files without ``O_CREAT``
and creates only with ``O_EXCL`` [XL-LOCK-2], so it is unaffected. The test sets the sysctl itself (root
only) and restores it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import xlock

SYSCTL = "/proc/sys/fs/protected_regular"


@pytest.fixture
def protected_regular() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("setting fs.protected_regular needs root")
    try:
        with open(SYSCTL) as f:
            old = f.read().strip()
        with open(SYSCTL, "w") as f:
            f.write("2")
    except OSError as exc:
        pytest.skip(f"cannot set fs.protected_regular here: {exc}")
    try:
        yield
    finally:
        with open(SYSCTL, "w") as f:
            f.write(old)


def test_other_users_lock_file_opens_under_protected_regular(protected_regular: None, world_dir: str) -> None:
    creator = (
        "import os, sys, xlock\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "with xlock.Lock('nightly', namespace=sys.argv[1]) as lock:\n"
        "    print(lock.path)\n"
    )
    made = subprocess.run(
        [sys.executable, "-c", creator, world_dir], capture_output=True, text=True, timeout=60, check=False
    )
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip()
    st = os.stat(path)
    assert (st.st_uid, st.st_mode & 0o777) == (65534, 0o666)  # the namespace file mode [XL-NS-13]

    # The sysctl is in force: a naive O_CREAT open by root of nobody's file is refused.
    with pytest.raises(PermissionError):
        os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)

    lock = xlock.Lock("nightly", namespace=world_dir)
    try:
        assert lock.acquire(blocking=False)
        assert lock.locked()
        # It is the same file, and the lock is a real flock on it.
        assert os.stat(lock.path).st_ino == st.st_ino
        # (util-linux flock(1) itself opens with O_CREAT and so fails here; probe without it.)
        probe = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock.release()
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
    finally:
        lock.close()
