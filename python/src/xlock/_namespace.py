"""The namespace directory: resolved, created, opened and checked once, then used through its fd (§2)."""

from __future__ import annotations

import errno
import os
import pwd
import stat
import threading
from types import TracebackType

from . import _libc
from ._errors import InsecureNamespace, InvalidArgument, UnsupportedFilesystem, XLockError, os_error
from .names import choose_namespace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any

__all__ = ["UNSUPPORTED_FS_TYPES", "Namespace", "release_shared", "shared_namespace", "unsupported_fs_name"]

# f_type values refused by default [XL-NS-10] (also spec/vectors/fs_types.json).
UNSUPPORTED_FS_TYPES: dict[int, str] = {
    0x6969: "nfs",
    0x517B: "smb",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x65735546: "fuse",
    0x01021997: "9p",
    0x00C36400: "ceph",
    0x5346414F: "afs",
    0x73757245: "coda",
    0x564C: "ncp",
}

_xl_names_dir: Any = _libc.lib.xl_names_dir if _libc.COMPILED else None

_HINT = "fix it, or choose another namespace with XLOCK_NAMESPACE or the namespace argument"


def _owner_of(path: str) -> str:
    try:
        uid = os.lstat(path).st_uid
    except OSError:
        return ""
    try:
        return f" (owned by uid {uid}, {pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f" (owned by uid {uid})"


def unsupported_fs_name(f_type: int) -> str | None:
    """Return the name of a refused file system type [XL-NS-10], or ``None`` if ``f_type`` is fine."""
    return UNSUPPORTED_FS_TYPES.get(f_type & 0xFFFFFFFF)


def unsupported_fs_allowed(explicit: bool) -> bool:
    """The opt-in of XL-NS-11: the API option or ``XLOCK_ALLOW_UNSUPPORTED_FS=1``."""
    return explicit or os.environ.get("XLOCK_ALLOW_UNSUPPORTED_FS") == "1"


class Namespace:
    """A verified namespace directory, held open as ``fd`` [XL-NS-5, XL-NS-12].

    ``path`` is chosen per XL-NS-1: the argument, else ``$XLOCK_NAMESPACE``, else ``/tmp/xlock-<euid>``.
    The directory is created with mode 0700 if missing [XL-NS-4]. Attributes: ``path``, ``fd``, ``dev``
    and ``ino`` (the namespace identity), ``uid`` and ``mode`` of the directory, ``shared`` [XL-NS-9],
    ``sharing`` (``"private"``, ``"group-shared"`` or ``"world-shared"``), ``file_mode`` [XL-NS-13],
    ``capacity_mode`` (the file mode without group and other write), ``is_default`` (chosen by the
    default rule of XL-NS-1, to which XL-NS-8 applies).

    Raises ``InvalidArgument`` for a relative, empty or NUL-containing path [XL-NS-3];
    ``InsecureNamespace`` if the last component is a symlink or not a directory, is owned by another user,
    is group/other-writable without the sticky bit, or (default namespace) is not private [XL-NS-5..8];
    ``UnsupportedFilesystem`` on NFS, SMB, FUSE and the like unless ``allow_unsupported_fs`` or
    ``XLOCK_ALLOW_UNSUPPORTED_FS=1`` [XL-NS-10, XL-NS-11]; ``XLockOSError`` for other failures (for
    example a missing parent directory).
    """

    path: str
    fd: int
    dev: int
    ino: int
    uid: int
    mode: int
    shared: bool
    sharing: str
    file_mode: int
    capacity_mode: int
    is_default: bool
    # The namespace's usable bell once an object of this process opened it (``_bell.bell_of``) [XL-BELL-2].
    bell: Any = None
    # Objects using this namespace through ``shared_namespace`` [XL-NS-16]; 0 for one opened by its user.
    _users = 0
    _shared_key: tuple[str, bool] | None = None
    # xl_names_dir's arguments for this namespace's path (compiled), made by the first still_names
    names_args: tuple[bytes, int, int, int, int] | None = None
    # The refused file system it is on (allowed by XL-NS-11), or None.
    fs_name: str | None = None

    def __init__(self, path: str | None = None, *, allow_unsupported_fs: bool = False) -> None:
        self.fd = -1
        self.path, source = choose_namespace(path)
        self.is_default = source == "default"
        created = False
        try:
            os.mkdir(self.path, 0o700)  # [XL-NS-4]; EEXIST: the checks below decide
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InsecureNamespace(
                    f"cannot create namespace directory {self.path}: permission denied; ask the owner of "
                    f"its parent directory to create it, or {_HINT}"
                ) from None
            raise os_error(exc, f"cannot create namespace directory {self.path}") from None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and os.path.islink(self.path)):
                # Linux checks O_DIRECTORY before O_NOFOLLOW: a symlink gives ENOTDIR. The decision is
                # the open's; islink only chooses the message.
                raise InsecureNamespace(
                    f"namespace {self.path} is a symbolic link; xlock refuses it [XL-NS-5]: use the "
                    f"directory it points to, or {_HINT}"
                ) from None
            if exc.errno == errno.ENOTDIR:
                raise InsecureNamespace(
                    f"namespace {self.path} is not a directory [XL-NS-5]: remove it, or {_HINT}"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise InsecureNamespace(
                    f"cannot open namespace directory {self.path}: permission denied{_owner_of(self.path)}; "
                    f"ask its owner for access, or {_HINT}"
                ) from None
            raise os_error(exc, f"cannot open namespace directory {self.path}") from None
        try:
            if created:
                os.fchmod(fd, 0o700)  # a restrictive umask must not leave it unusable [XL-NS-4]
            self._check(fd, allow_unsupported_fs)
        except XLockError:
            os.close(fd)
            raise
        except OSError as exc:
            os.close(fd)
            raise os_error(exc, f"cannot check namespace directory {self.path}") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def _check(self, fd: int, allow_unsupported_fs: bool) -> None:
        st = os.fstat(fd)  # every check is on the descriptor, never on the path [XL-NS-5]
        euid = os.geteuid()
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid not in (euid, 0):
            raise InsecureNamespace(
                f"namespace {self.path} is owned by uid {st.st_uid}, not by you (uid {euid}) or root "
                f"[XL-NS-6]: {_HINT}"
            )
        if mode & 0o022 and not mode & stat.S_ISVTX:
            raise InsecureNamespace(
                f"namespace {self.path} (mode {mode:04o}) is writable by group or others without the "
                f"sticky bit [XL-NS-7]: run chmod +t {self.path} or chmod go-w {self.path}, or {_HINT}"
            )
        if self.is_default and (st.st_uid != euid or mode & 0o077):
            raise InsecureNamespace(
                f"default namespace {self.path} must be owned by uid {euid} with no permission for "
                f"group or others, but has owner uid {st.st_uid} and mode {mode:04o} [XL-NS-8]: "
                f"run chmod 700 {self.path} (as its owner), or remove it, or {_HINT}"
            )
        f_type = _libc.fstatfs_type(fd)
        fs_name = self.fs_name = unsupported_fs_name(f_type)
        if fs_name is not None and not unsupported_fs_allowed(allow_unsupported_fs):
            raise UnsupportedFilesystem(
                f"namespace {self.path} is on {fs_name} (f_type 0x{f_type:x}), where flock(2) does not "
                f"exclude between hosts [XL-NS-10]: use a local directory, or, if only this host uses "
                f"it, set XLOCK_ALLOW_UNSUPPORTED_FS=1 or pass allow_unsupported_fs=True"
            )
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.uid = st.st_uid
        self.mode = mode
        self.shared = bool(mode & 0o022)  # [XL-NS-9]
        self.sharing = "world-shared" if mode & 0o002 else "group-shared" if mode & 0o020 else "private"
        # [XL-NS-13]
        self.file_mode = 0o666 if mode & 0o002 else 0o660 if mode & 0o020 else 0o600
        self.capacity_mode = self.file_mode & ~0o022

    def join(self, file_name: str) -> str:
        """Return the path of ``file_name`` in this namespace (for messages and introspection)."""
        return ("" if self.path == "/" else self.path) + "/" + file_name

    def close(self) -> None:
        """Close the directory descriptor. Idempotent."""
        fd, self.fd = self.fd, -1
        self.bell = None
        if fd >= 0:
            os.close(fd)

    def still_names(self, path: str) -> bool:
        """True if ``path`` still names this directory, with the owner and mode it was checked with: the
        re-confirmation of XL-NS-16, one ``lstat``."""
        if _xl_names_dir is not None:
            names_args = (os.fsencode(path), self.dev, self.ino, self.uid, self.mode)
            if path == self.path:
                self.names_args = names_args  # shared_namespace calls xl_names_dir with them directly
            return bool(_xl_names_dir(*names_args))
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return (
            stat.S_ISDIR(st.st_mode)
            and st.st_ino == self.ino
            and st.st_dev == self.dev
            and st.st_uid == self.uid
            and stat.S_IMODE(st.st_mode) == self.mode
        )

    def __del__(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            self.close()

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def require_open(self) -> int:
        if self.fd < 0:
            raise InvalidArgument(f"namespace {self.path} is closed")
        return self.fd

    def __enter__(self) -> Namespace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.fd < 0 else f"dev={self.dev} ino={self.ino}"
        return f"<xlock.Namespace {self.path!r} {state}>"


# One verified namespace per path and process [XL-NS-16]: the namespaces objects use now, and the last one
# that became idle (kept for the next object, so that `with xlock.Lock(name):` in a loop opens and checks
# its namespace once). A directory descriptor carries no lock, so a forked child keeps using them.
_shared: dict[tuple[str, bool], Namespace] = {}
_idle: list[Namespace] = []
# choose_namespace's answer for the explicit paths given lately, as _shared's key: (path, False).
_chosen: dict[str, tuple[str, bool]] = {}
# An RLock: an object collected while this thread holds it gives its namespace back inside.
_shared_lock = threading.RLock()


def shared_namespace(path: str | None, allow_unsupported_fs: bool) -> Namespace:
    """The verified namespace of ``path`` (chosen per XL-NS-1) shared by this process's objects: reused
    after ``Namespace.still_names`` re-confirms it, else opened and checked anew [XL-NS-16]. Each call
    needs its ``release_shared``. Raises as ``Namespace``."""
    key = _chosen.get(path) if path is not None else None  # an explicit path checked before
    if key is None:
        chosen, source = choose_namespace(path)
        key = (chosen, source == "default")
        if source == "argument" and path is not None:
            if len(_chosen) >= 64:
                _chosen.clear()
            _chosen[path] = key
    chosen = key[0]
    lock = _shared_lock
    lock.acquire()  # not `with`: twice as slow, for a call made per object
    try:
        ns = _shared.get(key)
        if (
            ns is not None
            and ns.fd >= 0
            and ns.path == chosen
            and (ns.fs_name is None or unsupported_fs_allowed(allow_unsupported_fs))  # [XL-NS-11]
            and (_xl_names_dir(*ns.names_args) if ns.names_args else ns.still_names(chosen))
        ):
            ns._users += 1
            if _idle and _idle[0] is ns:
                _idle.clear()
            return ns
    finally:
        lock.release()
    fresh = Namespace(path, allow_unsupported_fs=allow_unsupported_fs)
    with _shared_lock:
        old = _shared.get(key)
        if old is not None and old._users == 0:
            _drop_idle(old)
        _shared[key] = fresh
        fresh._shared_key = key
        fresh._users += 1
    return fresh


def release_shared(ns: Namespace) -> None:
    """An object is done with ``ns`` (from ``shared_namespace``): the last user of a namespace that is
    still the one of its path keeps it as the idle one (closing the previous idle one); a replaced one is
    closed."""
    lock = _shared_lock
    lock.acquire()  # not `with`: twice as slow, for a call made per object
    try:
        ns._users -= 1
        if ns._users > 0:
            return
        key = ns._shared_key
        if key is None or _shared.get(key) is not ns:
            ns.close()
            return
        if _idle:
            if _idle[0] is ns:
                return
            _drop_idle(_idle[0])
        _idle.append(ns)
    finally:
        lock.release()


def _drop_idle(ns: Namespace) -> None:
    """Forget and close an idle namespace; under ``_shared_lock``."""
    key = ns._shared_key
    if key is not None and _shared.get(key) is ns:
        del _shared[key]
    if _idle and _idle[0] is ns:
        _idle.clear()
    ns.close()


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
