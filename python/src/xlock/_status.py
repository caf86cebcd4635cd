"""Who holds and who waits: `/proc/locks` matched against a namespace's files [XL-INTRO-2].

Pure parsing (`parse_proc_locks`, `decode_file_name`) is kept apart from the few functions that read the
system (`read_proc_locks`, `read_cmdline`, `namespace_status`), so the parsers can be tested on text.
"""

from __future__ import annotations

import os
import stat

from ._files import MAX_SLOT, decimal_index

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): xlock status stays fast
if TYPE_CHECKING:
    from typing import Literal

    FileKind = Literal["lock", "slot", "capacity", "temporary"]

PROC_LOCKS = "/proc/locks"

_RAW_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX = "0123456789abcdef"


class _Record:
    """A value of fixed fields, its `__slots__` in the order its `__init__` takes them: equality, hash,
    repr and (frozen) immutability as a frozen dataclass has them, without importing dataclasses (and
    inspect, ast, ...), which would make `xlock status` slow to start."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def _init(self, *values: object) -> None:
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, _Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), self._values())


class KernelLock(_Record):
    """One line of `/proc/locks`.

    `id` is the line's ordinal; a waiter (`waiting`) repeats the ordinal of the lock that blocks it.
    `major` and `minor` are printed in hexadecimal by the kernel, `inode` in decimal [XL-INTRO-2].
    """

    __slots__ = ("id", "waiting", "type", "mode", "pid", "major", "minor", "inode")  # noqa: RUF023 (field order)
    id: int
    waiting: bool
    type: str  # FLOCK, POSIX, OFDLCK, LEASE, ...
    mode: str  # WRITE, READ, ...
    pid: int
    major: int
    minor: int
    inode: int

    def __init__(
        self, id: int, waiting: bool, type: str, mode: str, pid: int, major: int, minor: int, inode: int
    ) -> None:
        self._init(id, waiting, type, mode, pid, major, minor, inode)


def parse_proc_locks(text: str) -> list[KernelLock]:
    """Parse the text of `/proc/locks`; lines of another shape are skipped."""
    locks: list[KernelLock] = []
    for line in text.splitlines():
        lock = _parse_line(line)
        if lock is not None:
            locks.append(lock)
    return locks


def _parse_line(line: str) -> KernelLock | None:
    # "1: FLOCK  ADVISORY  WRITE 5541 fe:00:2146793 0 EOF"
    # "1: -> FLOCK  ADVISORY  READ 5545 fe:00:2146793 0 EOF"
    fields = line.split()
    if len(fields) < 6 or not fields[0].endswith(":"):
        return None
    waiting = fields[1] == "->"
    rest = fields[2:] if waiting else fields[1:]
    if len(rest) < 5:
        return None
    try:
        ordinal = int(fields[0][:-1])
        pid = int(rest[3])
        major_hex, minor_hex, inode_dec = rest[4].split(":")
        return KernelLock(
            id=ordinal,
            waiting=waiting,
            type=rest[0],
            mode=rest[2],
            pid=pid,
            major=int(major_hex, 16),
            minor=int(minor_hex, 16),
            inode=int(inode_dec, 10),
        )
    except ValueError:
        return None


def read_proc_locks(path: str = PROC_LOCKS) -> list[KernelLock]:
    with open(path, encoding="ascii", errors="replace") as f:
        return parse_proc_locks(f.read())


class NamespaceFile(_Record):
    """A file name of a namespace, decoded by reversing XL-ENC-1 and XL-ENC-3."""

    __slots__ = ("file", "name", "kind", "slot")  # noqa: RUF023 (field order)
    file: str
    name: str
    kind: FileKind
    slot: int | None

    def __init__(self, file: str, name: str, kind: FileKind, slot: int | None = None) -> None:
        self._init(file, name, kind, slot)


def decode_name(encoded: str) -> str | None:
    """The name whose enc() is `encoded` (XL-ENC-1), or None if `encoded` is not an output of enc().

    Only canonical encodings are accepted (a `%xx` for a byte that enc() writes as itself is refused),
    so decoding is the exact inverse of the injective enc() [XL-ENC-2].
    """
    out = bytearray()
    i, n = 0, len(encoded)
    while i < n:
        c = encoded[i]
        if c == "!":
            if i + 1 >= n or not "a" <= encoded[i + 1] <= "z":
                return None
            out.append(ord(encoded[i + 1].upper()))
            i += 2
        elif c == "%":
            digits = encoded[i + 1 : i + 3]
            if len(digits) != 2 or any(d not in _HEX for d in digits):
                return None
            b = int(digits, 16)
            if b in _RAW_BYTES or 0x41 <= b <= 0x5A or (b == 0x2E and out):
                return None
            out.append(b)
            i += 3
        elif c == "." and out:
            out.append(0x2E)
            i += 1
        elif ord(c) < 0x80 and ord(c) in _RAW_BYTES:
            out.append(ord(c))
            i += 1
        else:
            return None
    if not out:
        return None
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_random_suffix(text: str) -> bool:
    """The r of a temporary file name: 8 lowercase hexadecimal digits [XL-ENC-3]."""
    return len(text) == 8 and all(c in _HEX for c in text)


def decode_file_name(file: str) -> NamespaceFile | None:
    """Classify a file of a namespace (XL-ENC-3); None if xlock would never create this name."""
    stem: str
    kind: FileKind
    slot: int | None = None
    if file.endswith(".lock"):
        stem, kind = file[: -len(".lock")], "lock"
    elif file.endswith(".sem"):
        stem, kind = file[: -len(".sem")], "capacity"
    elif file.endswith(".slot"):
        stem, _, index = file[: -len(".slot")].rpartition(".")
        slot, kind = decimal_index(index), "slot"
        if slot is None or slot > MAX_SLOT:
            return None
    elif file.endswith(".tmp"):
        stem, _, suffix = file[: -len(".tmp")].rpartition(".")
        if not is_random_suffix(suffix):
            return None
        kind = "temporary"
    else:
        return None
    name = decode_name(stem)
    if name is None:
        return None
    return NamespaceFile(file=file, name=name, kind=kind, slot=slot)


class Sharer(_Record):
    """A process with a descriptor of the open file description that holds a lock [XL-INTRO-2]."""

    __slots__ = ("pid", "cmdline")  # noqa: RUF023 (field order)
    pid: int
    cmdline: list[str] | None

    def __init__(self, pid: int, cmdline: list[str] | None) -> None:
        self._init(pid, cmdline)


class Process(_Record):
    __slots__ = ("pid", "mode", "cmdline", "pid_state", "through")  # noqa: RUF023 (field order)
    pid: int
    mode: str  # "exclusive" or "shared"
    cmdline: list[str] | None  # None when /proc/PID/cmdline cannot be read (gone, hidden)
    # The PID of /proc/locks placed the lock; it may have exited or closed the file since, leaving the
    # lock to a process that inherited the descriptor (a forked child, a command it ran):
    # "holding" (it still has the open file description), "exited", "closed", or "unknown" (its
    # descriptors cannot be read: another user's process).
    pid_state: str
    through: tuple[Sharer, ...]  # the processes whose descriptors hold it, other than pid

    def __init__(
        self,
        pid: int,
        mode: str,
        cmdline: list[str] | None,
        pid_state: str = "unknown",
        through: tuple[Sharer, ...] = (),
    ) -> None:
        self._init(pid, mode, cmdline, pid_state, through)


class FileStatus:
    """A lockable file of the namespace (lock file or slot file) and its holders and waiters; filled in
    as /proc/locks is read, so not a frozen record (equal by value, unhashable, as a dataclass)."""

    __slots__ = ("dev", "file", "holders", "ino", "uid", "waiters")
    file: NamespaceFile
    dev: int
    ino: int
    uid: int  # the file's owner
    holders: list[Process]
    waiters: list[Process]

    def __init__(
        self,
        file: NamespaceFile,
        dev: int,
        ino: int,
        uid: int = -1,
        holders: list[Process] | None = None,
        waiters: list[Process] | None = None,
    ) -> None:
        self.file, self.dev, self.ino, self.uid = file, dev, ino, uid
        self.holders = [] if holders is None else holders
        self.waiters = [] if waiters is None else waiters

    def _values(self) -> tuple[object, ...]:
        return (self.file, self.dev, self.ino, self.uid, self.holders, self.waiters)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, FileStatus)
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"FileStatus(file={self.file!r}, dev={self.dev!r}, ino={self.ino!r}, uid={self.uid!r}, "
            f"holders={self.holders!r}, waiters={self.waiters!r})"
        )

    @property
    def state(self) -> str:
        if self.holders:
            return "held"
        return "waited" if self.waiters else "idle"

    @property
    def mode(self) -> str | None:
        """exclusive or shared for a held file, None for an idle one."""
        if not self.holders:
            return None
        return "shared" if all(p.mode == "shared" for p in self.holders) else "exclusive"


def read_cmdline(pid: int) -> list[str] | None:
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return None  # a zombie or a kernel thread
    return [arg.decode("utf-8", "replace") for arg in raw.rstrip(b"\0").split(b"\0")]


def _mode(kernel_mode: str) -> str:
    return "shared" if kernel_mode == "READ" else "exclusive"


def namespace_status(dir_fd: int, locks: list[KernelLock]) -> list[FileStatus]:
    """Every lock file and slot file of the namespace open as `dir_fd`, with its holders and waiters.

    Files are examined relative to the verified directory descriptor [XL-NS-12] and matched with
    `/proc/locks` by (major, minor, inode) [XL-INTRO-2]. Only `flock(2)` locks count [XL-LOCK-7]. For
    each holder, the processes whose descriptors share the locking open file description are found in
    `/proc/PID/fdinfo` (its `lock:` lines), so a holder PID that has exited or closed the file is told.
    """
    result: list[FileStatus] = []
    by_key: dict[tuple[int, int, int], FileStatus] = {}
    for file in sorted(os.listdir(dir_fd)):
        decoded = decode_file_name(file)
        if decoded is None or decoded.kind not in ("lock", "slot"):
            continue
        try:
            st = os.stat(file, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed meanwhile [XL-RM-2]
        if not stat.S_ISREG(st.st_mode):
            continue
        entry = FileStatus(file=decoded, dev=st.st_dev, ino=st.st_ino, uid=st.st_uid)
        by_key[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = entry
        result.append(entry)
    cmdlines: dict[int, list[str] | None] = {}

    def cmdline(pid: int) -> list[str] | None:
        if pid not in cmdlines:
            cmdlines[pid] = read_cmdline(pid)
        return cmdlines[pid]

    held = [lock for lock in locks if lock.type == "FLOCK" and (lock.major, lock.minor, lock.inode) in by_key]
    sharers = _sharers(_directory_path(dir_fd)) if any(not lock.waiting for lock in held) else {}
    for lock in held:
        target = by_key[(lock.major, lock.minor, lock.inode)]
        if lock.waiting:
            target.waiters.append(Process(pid=lock.pid, mode=_mode(lock.mode), cmdline=cmdline(lock.pid)))
            continue
        key = (lock.pid, lock.major, lock.minor, lock.inode)
        pids = sharers.get(key, set())
        through = tuple(Sharer(pid, cmdline(pid)) for pid in sorted(pids - {lock.pid}))
        process = Process(
            pid=lock.pid,
            mode=_mode(lock.mode),
            cmdline=cmdline(lock.pid),
            pid_state=_pid_state(lock.pid, pids),
            through=through,
        )
        target.holders.append(process)
    return result


def _directory_path(dir_fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{dir_fd}")
    except OSError:
        return ""


def _pid_state(pid: int, sharers: set[int]) -> str:
    if pid in sharers:
        return "holding"
    if not os.path.exists(f"/proc/{pid}"):
        return "exited"
    try:
        os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return "unknown"  # gone meanwhile, or another user's process
    return "closed"


def _sharers(directory: str) -> dict[tuple[int, int, int, int], set[int]]:
    """(placing pid, major, minor, inode) of every flock held through a descriptor of a file in
    `directory` -> the PIDs having such a descriptor, from the `lock:` lines of /proc/PID/fdinfo/FD (the
    kernel lists there the locks of the descriptor's open file description). Processes whose
    descriptors cannot be read (other users') are not seen."""
    found: dict[tuple[int, int, int, int], set[int]] = {}
    if not directory:
        return found
    prefix = directory.rstrip("/") + "/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if not os.readlink(f"/proc/{entry}/fd/{fd}").startswith(prefix):
                    continue
                with open(f"/proc/{entry}/fdinfo/{fd}", encoding="ascii", errors="replace") as f:
                    info = f.read()
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("lock:"):
                    lock = _parse_line(line[len("lock:") :].strip())
                    if lock is not None and lock.type == "FLOCK" and not lock.waiting:
                        found.setdefault((lock.pid, lock.major, lock.minor, lock.inode), set()).add(
                            int(entry)
                        )
    return found
