"""Opening a file of the namespace safely (§6) and turning file-system failures into xlock errors (§12).

``open_file`` is the one place that opens (and, for lock and slot files, creates) a file of a namespace:
``openat`` relative to the verified directory with ``O_NOFOLLOW | O_NONBLOCK | O_NOCTTY``, then ``fstat``
on the descriptor opened [XL-LOCK-1..5]. ``file_error`` is the one place that maps an ``OSError`` on such
a file to the spec's error kinds.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat

from ._errors import InsecureNamespace, XLockError, XLockOSError
from ._namespace import Namespace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Callable

__all__ = [
    "MAX_ROUNDS",
    "MAX_SLOT",
    "OPEN_FLAGS",
    "decimal_index",
    "describe_uid",
    "file_error",
    "open_file",
    "owner_of",
    "publish",
    "removal_advice",
    "replaced_error",
    "slot_indexes",
]

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY  # [XL-LOCK-1]
# Every open-or-create alternation and every reopen after a failed re-check without waiting stops after
# this many rounds: another party controls how often a file is replaced.
MAX_ROUNDS = 100
MAX_SLOT = 999  # XL-CSEM-1: capacity at most 1000
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def describe_uid(uid: int) -> str:
    """``uid 1000 (alice)``, or ``uid 1000`` when the user database does not know it."""
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def owner_of(ns: Namespace, file_name: str) -> str:
    """``owned by uid 1000 (alice)`` for a file of the namespace, for messages."""
    try:
        return "owned by " + describe_uid(
            os.stat(file_name, dir_fd=ns.require_open(), follow_symlinks=False).st_uid
        )
    except OSError:
        return "owner unknown"


def removal_advice(ns: Namespace, file_name: str) -> str:
    """What the user can do about an unexpected file: remove it, or ask whoever may remove it.

    In a sticky shared namespace a file of another user can only be removed by its owner, the owner of
    the directory or root, so the advice names them instead of suggesting a removal that would fail.
    """
    try:
        st = os.stat(file_name, dir_fd=ns.require_open(), follow_symlinks=False)
    except OSError:
        return (
            f"{ns.path} (owned by {describe_uid(ns.uid)}, mode {ns.mode:04o}) does not let you create it: "
            f"ask its owner for access"
        )
    euid = os.geteuid()
    if euid in (0, st.st_uid, ns.uid) or not ns.mode & stat.S_ISVTX:
        return f"remove it if you did not create it (it belongs to {describe_uid(st.st_uid)})"
    return (
        f"it belongs to {describe_uid(st.st_uid)}: ask them or the owner of {ns.path} "
        f"({describe_uid(ns.uid)}) to remove it"
    )


def file_error(ns: Namespace, file_name: str, exc: OSError, what: str) -> XLockError:
    """Map a failure on a namespace file [XL-ERR-1]: ``ELOOP`` (a symlink [XL-LOCK-4]), ``EACCES``/``EPERM``
    (a file of another user the namespace does not let us use) and ``ENXIO`` (a socket) are
    ``InsecureNamespace`` naming the owner; anything else is ``XLockOSError`` with its errno.
    """
    path = ns.join(file_name)
    err = exc.errno or 0
    if err == errno.ELOOP:
        return InsecureNamespace(
            f"{path} is a symbolic link; xlock never follows links in a namespace [XL-LOCK-4]: "
            f"{removal_advice(ns, file_name)}, and check who can write to {ns.path}"
        )
    if err in (errno.EACCES, errno.EPERM):
        return InsecureNamespace(
            f"{what} {path}: permission denied; {removal_advice(ns, file_name)}, or use a namespace "
            f"whose files you may use"
        )
    if err == errno.ENXIO:
        return InsecureNamespace(
            f"{path} is a socket, not a regular file [XL-LOCK-5]: {removal_advice(ns, file_name)}"
        )
    error = XLockOSError(err, f"{what} {path}: {exc.strerror or exc}")
    error.filename = path
    return error


def replaced_error(ns: Namespace, file_name: str) -> XLockOSError:
    """The bounded loops give up: someone keeps replacing or removing the file."""
    return XLockOSError(
        errno.EAGAIN,
        f"{ns.join(file_name)} keeps being replaced or removed ({MAX_ROUNDS} rounds); try again, and check "
        f"who else writes to {ns.path}",
    )


def publish(
    dirfd: int | None, final: str, temp_of: Callable[[str], str], mode: int, fill: Callable[[int], None]
) -> None:
    """Create ``final`` atomically, as a full file or not at all: a temporary file ``temp_of(r)`` (r 8
    random hex digits, a new one on ``EEXIST``, at most ``MAX_ROUNDS`` [XL-ENC-6]) created with ``O_EXCL``
    and ``mode``, ``fchmod``-ed, filled by ``fill(fd)``, linked to ``final``, and unlinked. A ``final``
    that exists by then is another creator's, and is left to the caller to open and check.
    ``dirfd`` ``None``: the names are absolute paths. Raises ``OSError``.
    """
    for _ in range(MAX_ROUNDS):
        temp = temp_of(os.urandom(4).hex())  # as secrets.token_hex(4), without its import
        try:
            fd = os.open(temp, _TEMP_FLAGS, mode, dir_fd=dirfd)
        except FileExistsError:
            continue
        try:
            try:
                os.fchmod(fd, mode)
                fill(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, final, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
            except FileExistsError:
                pass
        finally:
            try:
                os.unlink(temp, dir_fd=dirfd)
            except OSError:
                pass
        return
    raise OSError(errno.EEXIST, f"no free temporary name for {final} after {MAX_ROUNDS} tries")


def _check_regular(ns: Namespace, file_name: str, fd: int) -> os.stat_result:
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise file_error(ns, file_name, exc, "cannot fstat") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InsecureNamespace(
            f"{ns.join(file_name)} is not a regular file (mode {st.st_mode:o}) [XL-LOCK-5]: "
            f"{removal_advice(ns, file_name)}, and check who can write to {ns.path}"
        )
    return st


def open_file(
    ns: Namespace, file_name: str, *, create: bool, flags: int = OPEN_FLAGS
) -> tuple[int, os.stat_result] | None:
    """Open ``file_name`` of ``ns`` and check on the descriptor that it is a regular file.

    If it does not exist: with ``create``, create it with ``O_EXCL`` and the namespace file mode (then
    ``fchmod``) [XL-LOCK-2, XL-LOCK-3], going back to the open if another creator won; without, return
    ``None``. Never ``O_CREAT`` on an existing file (``fs.protected_regular``). Raises as ``file_error``,
    ``InsecureNamespace`` for a non-regular file, ``XLockOSError`` (``EAGAIN``) after ``MAX_ROUNDS``.
    """
    dirfd = ns.require_open()
    for _ in range(MAX_ROUNDS):
        try:
            fd = os.open(file_name, flags, dir_fd=dirfd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise file_error(ns, file_name, exc, "cannot open") from None
            if not create:
                return None
            try:
                fd = os.open(file_name, flags | os.O_CREAT | os.O_EXCL, ns.file_mode, dir_fd=dirfd)
            except FileExistsError:
                continue  # another creator won (or a link appeared): open it as existing [XL-LOCK-2]
            except OSError as exc:
                raise file_error(ns, file_name, exc, "cannot create") from None
            try:
                os.fchmod(fd, ns.file_mode)  # independent of the umask [XL-LOCK-3]
            except OSError as exc:
                os.close(fd)
                raise file_error(ns, file_name, exc, "cannot chmod") from None
        return fd, _check_regular(ns, file_name, fd)
    raise replaced_error(ns, file_name)


def slot_indexes(dir_fd: int, enc: str) -> list[int]:
    """The indexes of the slot files ``enc.i.slot`` present in the directory open as ``dir_fd``."""
    found = []
    prefix = enc + "."
    for file in os.listdir(dir_fd):
        if file.startswith(prefix) and file.endswith(".slot"):
            index = decimal_index(file[len(prefix) : -len(".slot")])
            if index is not None and index <= MAX_SLOT:
                found.append(index)
    return sorted(found)


def decimal_index(text: str) -> int | None:
    """decimal(n) of spec §0: ASCII digits, no sign, no leading zero."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        return None
    return int(text)
