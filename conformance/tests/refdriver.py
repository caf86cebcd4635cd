#!/usr/bin/env python3
"""A small, self-contained xlock/1 (draft 2) driver (conformance/PROTOCOL.md) written from the spec alone.

It does not use the xlock package: stdlib `fcntl` for flock(2), `os` for the *at calls and pread, ctypes for
mmap, the futex system call and the sem_* functions on a mapping it checked itself. It exists to prove the
suite fair (this driver, correct, passes every case) and to prove it has teeth: `--defect NAME` plants one
bug that a specific case must catch:

  lockf                 POSIX record locks (fcntl F_SETLK) instead of flock(2)        [XL-LOCK-7]
  name-case             uppercase letters are not escaped in file names             [XL-ENC-1]
  no-bell-ring          releases never ring the bell: timed waiters wake by the safety poll only [XL-BELL-6]
  no-release-on-close   close forgets the object but keeps its descriptor (and lock) [XL-HOLD-10]
  fork-unlock           a forked child still thinks it holds: its release unlocks the parent's lock
                                                                                      [XL-HOLD-7]
  fork-keep-fd          a forked child reopens for its next acquire but never closes the inherited
                        descriptor, which keeps the parent's lock alive after the parent dies   [XL-HOLD-8]
  devshm-doorbell       draft 1: a POSIX semaphore in /dev/shm per lock and counting semaphore [XL-SEM-2]
  bell-no-size-check    maps a bell of any size and reads it from user space (SIGBUS on a short one)
                                                                                      [XL-BELL-3]
  bell-userspace-shared reads the bell's mapping in a shared namespace (SIGBUS after a truncation) [XL-BELL-5]
  flood-no-deadline     restarts its deadline on every ring: a flooding member keeps it waiting [XL-WAIT-12]
  weak-recheck-shared   the st_nlink re-check in shared namespaces too (hard links split the lock) [XL-LOCK-8]
  capacity-0666         capacity files get the namespace file mode, writable by every member [XL-NS-13]
  psem-sem-open         trusts whatever file is at a raw semaphore's path (maps a planted short
                        file)                                                         [XL-PSEM-3]
  remove-creates        remove opens (creating) the lock file and the bell                  [XL-RM-6]
  socket-os-error       ENXIO (a UNIX socket at the path) is OS_ERROR                        [XL-LOCK-5]
  hello-any-protocol    hello accepts any protocol version                                   [PROTOCOL]
  ns-reuse-unchecked    shares one namespace per path among its objects without confirming the path
                        (a directory that took the path is never seen)                      [XL-NS-16]

    python refdriver.py [--defect NAME]
"""

from __future__ import annotations

import base64
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import select
import signal
import stat
import sys
import time
import weakref
from typing import Any, Callable, Optional

DEFECTS = (
    "lockf",
    "name-case",
    "no-bell-ring",
    "no-release-on-close",
    "fork-unlock",
    "fork-keep-fd",
    "devshm-doorbell",
    "bell-no-size-check",
    "bell-userspace-shared",
    "flood-no-deadline",
    "weak-recheck-shared",
    "capacity-0666",
    "psem-sem-open",
    "remove-creates",
    "socket-os-error",
    "hello-any-protocol",
    "ns-reuse-unchecked",
)
DEFECT: Optional[str] = None
CAPABILITIES = [
    "lock",
    "shared",
    "timeout",
    "reentrant",
    "semaphore",
    "posix_semaphore",
    "map",
    "remove",
    "counter",
    "clock",
    "fork",
]
FORK_REPORT_S = 5.0
UNSUPPORTED_FS = {
    0x6969,
    0x517B,
    0xFF534D42,
    0xFE534D42,
    0x65735546,
    0x01021997,
    0x00C36400,
    0x5346414F,
    0x73757245,
    0x564C,
}
SEM_VALUE_MAX = 2147483647
SEM_T_SIZE = 32  # glibc, 64-bit Linux
CLOCK_MONOTONIC = 1
MAX_ROUNDS = 100  # XL-LOCK-12, XL-ENC-6
BELL_FILE = ".xlock-bell"
BELL_SIZE = 4096
MS = 1_000_000
MAX_DEADLINE_NS = 2**63 - 1

# -- libc ---------------------------------------------------------------------------------------------------
libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.syscall.restype = ctypes.c_long
for _fn in ("sem_post", "sem_trywait", "sem_wait"):
    getattr(libc, _fn).argtypes = [ctypes.c_void_p]
libc.sem_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
libc.sem_clockwait.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Timespec)]
libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
libc.sem_close.argtypes = [ctypes.c_void_p]
PROT_RW, MAP_SHARED, MAP_FAILED = 0x3, 0x1, ctypes.c_void_p(-1).value
SYS_FUTEX = 202 if os.uname().machine == "x86_64" else 98
FUTEX_WAKE_OP, FUTEX_WAIT_BITSET = 5, 9
INT_MAX = 2**31 - 1


def futex_op(op: int, oparg: int, cmp: int, cmparg: int) -> int:
    return ((op & 0xF) << 28) | ((cmp & 0xF) << 24) | ((oparg & 0xFFF) << 12) | (cmparg & 0xFFF)


OP_OR_1 = futex_op(2, 1, 0, 0)  # FUTEX_OP_OR 1: announce (XL-BELL-5)
OP_ADD_1 = futex_op(1, 1, 0, 0)  # FUTEX_OP_ADD 1: ring (XL-BELL-6)


def futex(addr: int, op: int, val: int, arg4: Any, addr2: int, val3: int) -> tuple[int, int]:
    """The raw futex system call, shared (no FUTEX_PRIVATE_FLAG) [XL-BELL-4]; returns (result, errno)."""
    rc = libc.syscall(
        ctypes.c_long(SYS_FUTEX),
        ctypes.c_void_p(addr),
        ctypes.c_int(op),
        ctypes.c_uint(val),
        arg4,
        ctypes.c_void_p(addr2),
        ctypes.c_uint(val3),
    )
    return rc, (ctypes.get_errno() if rc < 0 else 0)


class XError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def os_error(what: str, err: int) -> XError:
    return XError("OS_ERROR", f"{what}: {os.strerror(err)} (errno {err})")


def owner_of(path: str, dir_fd: Optional[int] = None) -> str:
    """The owner of `path`, for messages only (XL-NS-5, XL-ERR-3)."""
    try:
        return f"uid {os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_uid}"
    except OSError:
        return "an unknown owner"


def rand8() -> str:
    return os.urandom(4).hex()  # XL-ENC-6: unpredictable


def create_atomically(
    prefix: str,
    final: str,
    access: int,
    mode: int,
    fill: Callable[[int], object],
    dir_fd: Optional[int] = None,
) -> Optional[bool]:
    """The atomic creation of XL-BELL-2, XL-CSEM-4 and XL-PSEM-2: PREFIX.r.tmp (XL-ENC-3) opened with
    `access | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC` and `mode`, fchmod to `mode`, fill(fd), link to
    `final`, unlink the temporary name. True if linked; False if `final` exists (another creator won); None
    if the temporary name exists (XL-ENC-6: never waited for, the caller picks another). OSError propagates.
    """
    tmp = f"{prefix}.{rand8()}.tmp"
    try:
        fd = os.open(tmp, access | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    except FileExistsError:
        return None
    try:
        try:
            os.fchmod(fd, mode)
            fill(fd)
        finally:
            os.close(fd)
        os.link(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp, dir_fd=dir_fd)


# -- names ----------------------------------------------------------------------------------------------
def check_name(req: dict[str, Any]) -> str:
    if "name" in req and "name_hex" in req:
        raise XError("BAD_REQUEST", "give name or name_hex, not both")
    if isinstance(req.get("name"), str):
        name: str = req["name"]
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise XError("INVALID_NAME", "name is not valid Unicode (lone surrogate) [XL-NAME-3]") from None
    elif isinstance(req.get("name_hex"), str):
        text = req["name_hex"]
        if len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise XError("BAD_REQUEST", "name_hex is not an even number of hexadecimal digits")
        raw = bytes.fromhex(text)
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise XError("INVALID_NAME", "name is not well-formed UTF-8 [XL-NAME-3]") from None
    else:
        raise XError("BAD_REQUEST", "name or name_hex (a string) is required")
    if not 1 <= len(raw) <= 80:
        raise XError("INVALID_NAME", f"name is {len(raw)} UTF-8 bytes; it must be 1 to 80 [XL-NAME-1]")
    for ch in name:
        if ord(ch) <= 0x1F or 0x7F <= ord(ch) <= 0x9F:
            raise XError("INVALID_NAME", f"name contains control character U+{ord(ch):04X} [XL-NAME-2]")
    return name


def enc(name: str) -> str:
    out = []
    for i, b in enumerate(name.encode("utf-8")):
        c = chr(b)
        if "a" <= c <= "z" or "0" <= c <= "9" or c in "-_" or (c == "." and i > 0):
            out.append(c)
        elif "A" <= c <= "Z":
            out.append(c if DEFECT == "name-case" else "!" + c.lower())
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


def sem_name(kind: str, dev: int, ino: int, name: str) -> str:
    data = b"\0".join([b"xlock/1", kind.encode(), str(dev).encode(), str(ino).encode(), name.encode()])
    return "/xl1" + kind + base64.b32encode(hashlib.sha256(data).digest()).decode().lower()[:25]


def bell_word(kind: str, name: str) -> int:
    """XL-SEM-7."""
    digest = hashlib.sha256(b"\0".join([b"xlock/1", b"bell", kind.encode(), name.encode()])).digest()
    return int.from_bytes(digest[:4], "big") % 1024


# -- namespaces ---------------------------------------------------------------------------------------------
class Namespace:
    def __init__(self, path: Any, allow_unsupported: bool) -> None:
        default = False
        if path is None:
            path = os.environ.get("XLOCK_NAMESPACE") or None
            if path is None:
                path, default = f"/tmp/xlock-{os.geteuid()}", True
        if not isinstance(path, str):
            raise XError("BAD_REQUEST", "namespace must be a string or null")
        if not path or not path.startswith("/") or "\0" in path:
            raise XError("INVALID_ARGUMENT", f"namespace {path!r} must be an absolute path [XL-NS-3]")
        path = path.rstrip("/") or "/"  # XL-NS-14
        created = False
        try:
            os.mkdir(path, 0o700)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise os_error(f"cannot create namespace {path}", exc.errno or 0) from None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise XError(
                    "INSECURE_NAMESPACE", f"namespace {path} is a symbolic link or not a directory [XL-NS-5]"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise XError(
                    "INSECURE_NAMESPACE",
                    f"namespace {path} (owned by {owner_of(path)}) is closed to "
                    "you; ask its owner, or choose another namespace [XL-NS-5]",
                ) from None
            raise os_error(f"cannot open namespace {path}", exc.errno or 0) from None
        try:
            st = os.fstat(self.fd)
            euid = os.geteuid()
            if st.st_uid not in (euid, 0):
                raise XError(
                    "INSECURE_NAMESPACE",
                    f"namespace {path} is owned by uid {st.st_uid}, not by you or root [XL-NS-6]",
                )
            if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                raise XError(
                    "INSECURE_NAMESPACE",
                    f"namespace {path} is writable by others without the sticky bit [XL-NS-7]",
                )
            if default and (st.st_uid != euid or st.st_mode & 0o077):
                raise XError(
                    "INSECURE_NAMESPACE",
                    f"default namespace {path} (owner uid {st.st_uid}, mode "
                    f"{oct(stat.S_IMODE(st.st_mode))}) must be yours with mode "
                    "0700 [XL-NS-8]",
                )
            buf = ctypes.create_string_buffer(256)
            if libc.fstatfs(self.fd, buf) != 0:
                raise os_error(f"fstatfs {path}", ctypes.get_errno())
            f_type = int.from_bytes(buf.raw[:8], sys.byteorder) & 0xFFFFFFFF
            allow = allow_unsupported or os.environ.get("XLOCK_ALLOW_UNSUPPORTED_FS") == "1"
            if f_type in UNSUPPORTED_FS and not allow:
                raise XError("UNSUPPORTED_FS", f"namespace {path} is on file system 0x{f_type:x} [XL-NS-10]")
            if created:
                os.fchmod(self.fd, 0o700)  # XL-NS-4: whatever the umask
        except XError:
            os.close(self.fd)
            raise
        self.path, self.dev, self.ino = path, st.st_dev, st.st_ino
        group_w, other_w = st.st_mode & 0o020, st.st_mode & 0o002
        self.shared = bool(group_w or other_w)
        self.sharing = "world" if other_w else "group" if group_w else "private"  # XL-NS-15
        self.owner = st.st_uid
        self.file_mode = 0o666 if other_w else 0o660 if group_w else 0o600  # XL-NS-13
        self.capacity_mode = self.file_mode if DEFECT == "capacity-0666" else self.file_mode & ~0o022

    def file_path(self, file: str) -> str:
        return ("" if self.path == "/" else self.path) + "/" + file  # XL-NS-14


_REUSED: dict[tuple[Any, bool], Namespace] = {}


def namespace_for_open(path: Any, allow_unsupported: bool) -> Namespace:
    """The namespace of a new object: opened and checked anew for each (XL-NS-16 allows sharing one among
    the objects of a process, confirming the path before each reuse; this driver does not share)."""
    if DEFECT != "ns-reuse-unchecked":
        return Namespace(path, allow_unsupported)
    key = (path, allow_unsupported)
    if key not in _REUSED:
        _REUSED[key] = Namespace(path, allow_unsupported)
    return _REUSED[key]


# -- files --------------------------------------------------------------------------------------------------
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def file_error(ns: Namespace, file: str, exc: OSError) -> XError:
    """XL-LOCK-4, XL-LOCK-5, XL-ERR-5."""
    where = ns.file_path(file)
    if exc.errno == errno.ELOOP:
        return XError("INSECURE_NAMESPACE", f"{where} is a symbolic link [XL-LOCK-4]")
    if exc.errno == errno.ENXIO and DEFECT == "socket-os-error":
        return os_error(f"cannot open {where}", exc.errno)
    if exc.errno in (errno.ENXIO, errno.EISDIR):
        return XError(
            "INSECURE_NAMESPACE", f"{where} is not a regular file (a socket or directory) [XL-LOCK-5]"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return XError(
            "INSECURE_NAMESPACE",
            f"{where} (owned by {owner_of(file, ns.fd)}) is closed to you; ask "
            "its owner or the namespace's owner [XL-LOCK-5]",
        )
    return os_error(f"cannot open {where}", exc.errno or 0)


def open_lock_file(ns: Namespace, file: str, create: bool = True) -> Optional[tuple[int, int, int]]:
    """XL-LOCK-1..5, XL-LOCK-12: open or create the lock file; returns (fd, dev, ino), or None when it is
    missing and `create` is false."""
    flags = OPEN_FLAGS
    if DEFECT == "lockf":
        flags = (flags & ~os.O_RDONLY) | os.O_RDWR  # lockf needs a writable descriptor
    for _ in range(MAX_ROUNDS):
        try:
            fd = os.open(file, flags, dir_fd=ns.fd)
        except FileNotFoundError:
            if not create:
                return None
            try:
                fd = os.open(file, flags | os.O_CREAT | os.O_EXCL, ns.file_mode, dir_fd=ns.fd)
            except FileExistsError:
                continue
            except OSError as exc:
                raise file_error(ns, file, exc) from None
            os.fchmod(fd, ns.file_mode)
        except OSError as exc:
            raise file_error(ns, file, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise XError("INSECURE_NAMESPACE", f"{ns.file_path(file)} is not a regular file [XL-LOCK-5]")
        return fd, st.st_dev, st.st_ino
    raise XError(
        "OS_ERROR",
        f"{ns.file_path(file)}: another process keeps creating and removing it "
        f"(errno {errno.EAGAIN}) [XL-LOCK-12]",
    )


def flock(fd: int, shared: bool, blocking: bool) -> bool:
    if DEFECT == "lockf":
        op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.lockf(fd, op if blocking else op | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def unflock(fd: int) -> None:
    if DEFECT == "lockf":
        fcntl.lockf(fd, fcntl.LOCK_UN)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FileLock:
    """One flock on one file of the namespace, with the re-check of XL-LOCK-8."""

    def __init__(self, ns: Namespace, file: str, shared: bool = False) -> None:
        self.ns, self.file, self.shared = ns, file, shared
        self.fd, self.dev, self.ino = open_lock_file(ns, file)  # type: ignore[misc]

    def still_named(self) -> bool:
        if DEFECT == "weak-recheck-shared" and self.ns.shared:
            return os.fstat(self.fd).st_nlink > 0  # the cheap check, wrong in a shared namespace
        try:  # the strict check, everywhere: the path names our inode (required in shared namespaces)
            st = os.stat(self.file, dir_fd=self.ns.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)

    def attempt(self, blocking: bool) -> bool:
        for _ in range(MAX_ROUNDS):
            if self.fd < 0:
                self.fd, self.dev, self.ino = open_lock_file(self.ns, self.file)  # type: ignore[misc]
            if not flock(self.fd, self.shared, blocking):
                return False
            if self.still_named():
                return True
            unflock(self.fd)  # removed or replaced while we waited: reopen and try again (XL-LOCK-8)
            os.close(self.fd)
            self.fd = -1
        raise XError(
            "OS_ERROR",
            f"{self.ns.file_path(self.file)}: another process keeps removing it "
            f"(errno {errno.EAGAIN}) [XL-LOCK-12]",
        )

    def unlock(self) -> None:
        unflock(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- the bell [§9a] ------------------------------------------------------------------------------------------
class Bell:
    """The namespace's bell, opened once per namespace per process; `addr` is None when unusable."""

    def __init__(self, ns: Namespace, create: bool) -> None:
        self.fd, self.addr, self.shared = -1, None, ns.shared
        self.state = "missing"
        try:
            self._open(ns, create)
        except OSError as exc:
            self.state = f"unusable: {exc}"
        if self.addr is None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _open(self, ns: Namespace, create: bool) -> None:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        for _ in range(MAX_ROUNDS):
            try:
                self.fd = os.open(BELL_FILE, flags, dir_fd=ns.fd)
                break
            except FileNotFoundError:
                if not create:
                    return
            # XL-BELL-2: created atomically; whoever linked it, open it again
            create_atomically(
                BELL_FILE, BELL_FILE, os.O_RDWR, ns.file_mode, lambda fd: os.ftruncate(fd, BELL_SIZE), ns.fd
            )
        else:
            self.state = "unusable: cannot create it"
            return
        st = os.fstat(self.fd)  # XL-BELL-3: checked on the descriptor before mapping
        owners_ok = ns.shared or st.st_uid in (os.geteuid(), 0, ns.owner)
        size_ok = st.st_size == BELL_SIZE or DEFECT == "bell-no-size-check"
        if not (
            stat.S_ISREG(st.st_mode) and size_ok and owners_ok and not st.st_mode & 0o777 & ~ns.file_mode
        ):
            self.state = f"unusable: not a regular {BELL_SIZE}-byte file of a trusted owner and mode"
            return
        addr = libc.mmap(None, BELL_SIZE, PROT_RW, MAP_SHARED, self.fd, 0)
        if addr in (None, MAP_FAILED):
            self.state = f"unusable: mmap failed (errno {ctypes.get_errno()})"
            return
        self.addr = addr
        self.state = "usable"
        if DEFECT == "bell-no-size-check":
            ctypes.c_uint32.from_address(addr).value  # noqa: B018 (touches the mapping: SIGBUS if short)

    def read(self, word: int) -> Optional[int]:
        """The word's value; None (and the bell is given up) when it cannot be read [XL-BELL-8]."""
        if self.addr is None:
            return None
        if not self.shared or DEFECT in ("bell-userspace-shared", "bell-no-size-check"):
            return ctypes.c_uint32.from_address(self.addr + 4 * word).value
        try:
            data = os.pread(self.fd, 4, 4 * word)  # XL-BELL-5: never the mapping in a shared namespace
        except OSError:
            data = b""
        if len(data) != 4:
            self.give_up()
            return None
        return int.from_bytes(data, sys.byteorder)

    def announce(self, word: int) -> Optional[int]:
        """XL-BELL-5: set bit 0 with FUTEX_WAKE_OP (wakes nobody), then read the word."""
        if self.addr is None:
            return None
        rc, err = futex(
            self.addr + 4 * word, FUTEX_WAKE_OP, 0, ctypes.c_void_p(0), self.addr + 4 * word, OP_OR_1
        )
        if rc < 0 and err not in (errno.EINTR, errno.EAGAIN):
            self.give_up()
            return None
        return self.read(word)

    def ring(self, word: int) -> None:
        """XL-BELL-6: if a waiter announced itself, add 1 (clears bit 0) and wake every waiter."""
        if self.addr is None or DEFECT == "no-bell-ring":
            return
        value = self.read(word)
        if value is None or not value & 1:
            return
        rc, err = futex(
            self.addr + 4 * word, FUTEX_WAKE_OP, INT_MAX, ctypes.c_void_p(0), self.addr + 4 * word, OP_ADD_1
        )
        if rc < 0 and err not in (errno.EINTR, errno.EAGAIN):
            self.give_up()

    def sleep(self, word: int, value: Optional[int], until_ns: int) -> None:
        """Step 5 of XL-WAIT-12: FUTEX_WAIT_BITSET until `until_ns` (absolute, CLOCK_MONOTONIC)."""
        if self.addr is None or value is None:
            left = until_ns - time.monotonic_ns()
            if left > 0:
                time.sleep(left / 1e9)
            return
        ts = Timespec(until_ns // 1_000_000_000, until_ns % 1_000_000_000)
        rc, err = futex(self.addr + 4 * word, FUTEX_WAIT_BITSET, value, ctypes.byref(ts), 0, 0xFFFFFFFF)
        if rc < 0 and err not in (errno.EINTR, errno.EAGAIN, errno.ETIMEDOUT):
            self.give_up()  # EFAULT after a truncation: the safety poll alone from now on [XL-BELL-8]

    def give_up(self) -> None:
        self.state = "unusable: a futex or pread call on it failed"
        self.addr = None


BELLS: dict[tuple[int, int], Bell] = {}


def bell_of(ns: Namespace, create: bool = True) -> Bell:
    """XL-BELL-2: at most one bell per namespace per process (a missing one is looked for again)."""
    key = (ns.dev, ns.ino)
    bell = BELLS.get(key)
    if bell is None or (bell.state == "missing" and create):
        bell = Bell(ns, create)
        if bell.state != "missing" or create:
            BELLS[key] = bell
    return bell


# -- waiting ------------------------------------------------------------------------------------------------
def deadline_of(timeout_ms: Optional[int]) -> Optional[int]:
    """XL-WAIT-3: None means untimed (no timeout, a negative one, or one too large for a deadline)."""
    if timeout_ms is None or timeout_ms < 0:
        return None
    deadline = time.monotonic_ns() + timeout_ms * MS
    return deadline if deadline <= MAX_DEADLINE_NS else None


def next_poll(start: int, now: int) -> int:
    """XL-WAIT-7: 1, 3, 7, 15, 31 ms after the start of the call, then every 16 ms."""
    for off in (1, 3, 7, 15, 31):
        if start + off * MS > now:
            return start + off * MS
    k = (now - start - 31 * MS) // (16 * MS) + 1
    return start + 31 * MS + k * 16 * MS


def bell_wait(
    bell: Bell, word: int, attempt: Callable[[], bool], deadline: Optional[int], timeout_ms: Optional[int]
) -> bool:
    """XL-WAIT-12 with the safety poll of XL-WAIT-7; returns False on TIMEOUT."""
    if attempt():  # the uncontended fast path
        return True
    start = time.monotonic_ns()
    while True:
        value = bell.announce(word)
        if attempt():
            return True
        now = time.monotonic_ns()
        if deadline is not None and now >= deadline:
            return False
        until = next_poll(start, now)
        if deadline is not None:
            until = min(until, deadline)
        before = bell.read(word) if DEFECT == "flood-no-deadline" else None
        bell.sleep(word, value, until)
        if DEFECT == "flood-no-deadline" and timeout_ms is not None and bell.read(word) != before:
            deadline = time.monotonic_ns() + timeout_ms * MS  # the bug: a ring restarts the wait


# -- draft 1's doorbell, only for the devshm-doorbell defect -------------------------------------------------
def doorbell_defect(ns: Namespace, kind: str, name: str) -> None:
    if DEFECT == "devshm-doorbell":
        handle = libc.sem_open(sem_name(kind, ns.dev, ns.ino, name).encode(), os.O_CREAT, ns.file_mode, 0)
        if handle:
            libc.sem_close(handle)


# -- fork [XL-HOLD-7, XL-HOLD-8, XL-HOLD-11] -----------------------------------------------------------------
LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def after_fork_in_child() -> None:
    """The child holds nothing: it forgets every hold and closes every inherited lock-file descriptor
    without unlocking it (the parent's open file description keeps the parent's lock)."""
    if DEFECT == "fork-unlock":
        return
    for obj in list(LIVE):
        obj.forget_after_fork()


os.register_at_fork(after_in_child=after_fork_in_child)


def forget_fd(file: FileLock) -> None:
    if DEFECT != "fork-keep-fd":  # the defect leaks the inherited descriptor, and with it the parent's lock
        os.close(file.fd)
    file.fd = -1


class Lock:
    def __init__(self, ns: Namespace, name: str, shared: bool, reentrant: bool) -> None:
        self.ns, self.name, self.reentrant = ns, name, reentrant
        self.path = ns.file_path(enc(name) + ".lock")
        self.word = bell_word("l", name)
        self.file = FileLock(ns, enc(name) + ".lock", shared)
        self.bell = bell_of(ns)
        doorbell_defect(ns, "l", name)
        self.count = 0
        LIVE.add(self)

    def forget_after_fork(self) -> None:
        self.count = 0
        if self.file.fd >= 0:
            forget_fd(self.file)

    def acquire(self, timeout_ms: Optional[int], blocking: bool = True) -> dict[str, Any]:
        if self.count:
            if not self.reentrant:
                raise XError(
                    "ALREADY_HELD",
                    f"lock '{self.name}' ({self.path}) is already held by this object [XL-HOLD-3]",
                )
            self.count += 1
            return {}
        deadline = deadline_of(timeout_ms)
        if not blocking:
            if not self.file.attempt(False):
                raise XError("WOULD_BLOCK", f"lock '{self.name}' ({self.path}) is held elsewhere")
        elif deadline is None:
            self.file.attempt(True)  # XL-WAIT-2: the kernel hands it over
        elif not bell_wait(self.bell, self.word, lambda: self.file.attempt(False), deadline, timeout_ms):
            raise XError("TIMEOUT", f"lock '{self.name}' ({self.path}) not acquired within {timeout_ms} ms")
        self.count = 1
        return {}

    def release(self) -> dict[str, Any]:
        if not self.count:
            raise XError("NOT_HELD", f"lock '{self.name}' ({self.path}) is not held by this object")
        self.count -= 1
        if self.count:
            return {}
        mono = time.monotonic_ns()
        self.file.unlock()
        self.bell.ring(self.word)
        return {"mono_ns": mono}

    def locked(self) -> bool:
        return self.count > 0

    def close(self) -> None:
        if self.count:
            self.count = 1
            self.release()
        self.file.close()

    def info(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "semaphore": None,
            "bell": self.ns.file_path(BELL_FILE),
            "bell_word": self.word,
        }


class Semaphore:
    def __init__(self, ns: Namespace, name: str, capacity: int) -> None:
        self.ns, self.name, self.capacity = ns, name, capacity
        self.base = enc(name)
        self.path = ns.file_path(self.base + ".sem")
        self.word = bell_word("s", name)
        self.held: list[FileLock] = []
        check_capacity_file(ns, self.base, name, capacity)
        self.bell = bell_of(ns)
        doorbell_defect(ns, "s", name)
        LIVE.add(self)

    def forget_after_fork(self) -> None:
        for slot in self.held:
            forget_fd(slot)
        self.held = []

    def _try_slots(self) -> bool:
        mine = {s.index for s in self.held}  # type: ignore[attr-defined]
        for i in range(self.capacity):
            if i in mine:
                continue  # XL-CSEM-5: never a slot this object holds
            slot = FileLock(self.ns, f"{self.base}.{i}.slot")
            if slot.attempt(False):
                slot.index = i  # type: ignore[attr-defined]
                self.held.append(slot)
                return True
            slot.close()
        return False

    def acquire(self, timeout_ms: Optional[int], blocking: bool = True) -> dict[str, Any]:
        if not blocking:
            if not self._try_slots():
                raise XError("WOULD_BLOCK", f"semaphore '{self.name}' ({self.path}) has no free permit")
        elif not bell_wait(self.bell, self.word, self._try_slots, deadline_of(timeout_ms), timeout_ms):
            raise XError(
                "TIMEOUT", f"semaphore '{self.name}' ({self.path}): no permit within {timeout_ms} ms"
            )
        return {"slot": self.held[-1].index}  # type: ignore[attr-defined]

    def release(self) -> dict[str, Any]:
        if not self.held:
            raise XError("NOT_HELD", f"semaphore '{self.name}' ({self.path}): no permit held by this object")
        slot = self.held.pop()
        mono = time.monotonic_ns()
        slot.unlock()
        slot.close()
        self.bell.ring(self.word)
        return {"mono_ns": mono}

    def locked(self) -> bool:
        return bool(self.held)

    def close(self) -> None:
        while self.held:
            self.release()

    def info(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "semaphore": None,
            "bell": self.ns.file_path(BELL_FILE),
            "bell_word": self.word,
        }


def capacity_content(capacity: int) -> bytes:
    return b"xlock/1 semaphore capacity=%d\n" % capacity


def read_capacity_file(ns: Namespace, file: str) -> Optional[bytes]:
    """XL-CSEM-3: the content (at most 64 bytes read), or None if there is no capacity file."""
    try:
        fd = os.open(file, OPEN_FLAGS, dir_fd=ns.fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise file_error(ns, file, exc) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise XError("INSECURE_NAMESPACE", f"{ns.file_path(file)} is not a regular file [XL-CSEM-3]")
        return os.read(fd, 65)
    finally:
        os.close(fd)


def parse_capacity(content: bytes) -> Optional[int]:
    prefix = b"xlock/1 semaphore capacity="
    if not content.startswith(prefix) or not content.endswith(b"\n") or len(content) > 64:
        return None
    digits = content[len(prefix) : -1]
    if not digits.isdigit() or (digits.startswith(b"0") and digits != b"0") or not digits.isascii():
        return None
    return int(digits)


def check_capacity_file(ns: Namespace, base: str, name: str, capacity: int) -> None:
    """XL-CSEM-3 / XL-CSEM-4."""
    file = base + ".sem"
    for _ in range(MAX_ROUNDS):
        content = read_capacity_file(ns, file)
        if content is None:
            if create_capacity_file(ns, base, capacity):
                return
            continue  # another participant won: read theirs (or start over if it vanished)
        if content != capacity_content(capacity):
            got = parse_capacity(content)
            said = f"capacity {got}" if got is not None else f"a malformed content {content[:64]!r}"
            raise XError(
                "CAPACITY_MISMATCH",
                f"semaphore '{name}' ({ns.file_path(file)}, owned by "
                f"{owner_of(file, ns.fd)}) has {said}; this participant has "
                f"capacity {capacity} [XL-CSEM-3]",
            )
        return
    raise XError(
        "OS_ERROR", f"{ns.file_path(file)}: another process keeps creating and removing it [XL-LOCK-12]"
    )


def create_capacity_file(ns: Namespace, base: str, capacity: int) -> bool:
    """XL-CSEM-4: temporary file, linkat; False if another participant's file won."""
    file = base + ".sem"
    content = capacity_content(capacity)
    for _ in range(MAX_ROUNDS):
        try:
            linked = create_atomically(
                base, file, os.O_WRONLY, ns.capacity_mode, lambda fd: os.write(fd, content), ns.fd
            )
        except OSError as exc:
            raise file_error(ns, file, exc) from None
        if linked is not None:
            return linked
    raise XError(
        "OS_ERROR", f"no free temporary name for {ns.file_path(file)} in {MAX_ROUNDS} tries [XL-ENC-6]"
    )


# -- the raw POSIX semaphore [§11] ---------------------------------------------------------------------------
def sem_bytes(value: int) -> bytes:
    buf = ctypes.create_string_buffer(SEM_T_SIZE)
    if libc.sem_init(buf, 1, value) != 0:
        raise os_error("sem_init", ctypes.get_errno())
    return buf.raw


class PosixSemaphore:
    def __init__(self, ns: Namespace, name: str, value: int) -> None:
        self.ns, self.name = ns, name
        self.sem_name = sem_name("p", ns.dev, ns.ino, name)
        self.file = "/dev/shm/sem." + self.sem_name[1:]
        self.count = 0
        self.sem: Optional[int] = None
        if DEFECT == "psem-sem-open":
            self.sem = libc.sem_open(self.sem_name.encode(), os.O_CREAT, ns.file_mode, value) or None
            if self.sem is None:
                raise os_error(f"sem_open {self.sem_name}", ctypes.get_errno())
            libc.sem_trywait(self.sem) == 0 and libc.sem_post(self.sem)  # touches what it mapped
        else:
            fd = self._open_or_create(value)
            try:
                self._check(fd)
                addr = libc.mmap(None, SEM_T_SIZE, PROT_RW, MAP_SHARED, fd, 0)
                if addr in (None, MAP_FAILED):
                    raise os_error(f"mmap {self.file}", ctypes.get_errno())
                self.sem = addr
            finally:
                os.close(fd)
        LIVE.add(self)

    def _open_or_create(self, value: int) -> int:
        """XL-PSEM-2: open our own descriptor; create atomically as glibc does."""
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        content = sem_bytes(value)
        for _ in range(MAX_ROUNDS):
            try:
                return os.open(self.file, flags)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._error(exc) from None
            create_atomically(
                self.file, self.file, os.O_RDWR, self.ns.file_mode, lambda fd: os.write(fd, content)
            )
        raise XError("OS_ERROR", f"{self.file}: another process keeps creating and removing it [XL-LOCK-12]")

    def _error(self, exc: OSError) -> XError:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENXIO, errno.EISDIR):
            return XError(
                "INSECURE_NAMESPACE",
                f"raw semaphore {self.sem_name} ({self.file}, owned by "
                f"{owner_of(self.file)}) cannot be used safely [XL-PSEM-3]",
            )
        return os_error(f"cannot open {self.file}", exc.errno or 0)

    def _check(self, fd: int) -> None:
        """XL-PSEM-3, on the descriptor we opened."""
        st = os.fstat(fd)
        euid = os.geteuid()
        trusted = self.ns.shared or st.st_uid in (euid, 0, self.ns.owner)
        if not stat.S_ISREG(st.st_mode) or st.st_size < SEM_T_SIZE or not trusted:
            raise XError(
                "INSECURE_NAMESPACE",
                f"raw semaphore {self.sem_name} ({self.file}) is owned by uid "
                f"{st.st_uid}, {st.st_size} bytes: not a semaphore xlock can trust "
                "[XL-PSEM-3]",
            )
        if st.st_uid == euid and stat.S_IMODE(st.st_mode) != self.ns.file_mode:
            os.fchmod(fd, self.ns.file_mode)

    def forget_after_fork(self) -> None:
        self.count = 0  # XL-HOLD-11: the permits are the parent's

    def acquire(self, timeout_ms: Optional[int], blocking: bool = True) -> dict[str, Any]:
        if not blocking:
            if libc.sem_trywait(self.sem) != 0:
                raise XError("WOULD_BLOCK", f"POSIX semaphore '{self.name}' ({self.sem_name}) is at 0")
        else:
            deadline = deadline_of(timeout_ms)
            while True:
                if deadline is None:
                    rc = libc.sem_wait(self.sem)
                else:
                    ts = Timespec(deadline // 1_000_000_000, deadline % 1_000_000_000)
                    rc = libc.sem_clockwait(self.sem, CLOCK_MONOTONIC, ctypes.byref(ts))
                if rc == 0:
                    break
                err = ctypes.get_errno()
                if err == errno.ETIMEDOUT:
                    raise XError(
                        "TIMEOUT",
                        f"POSIX semaphore '{self.name}' ({self.sem_name}) not acquired "
                        f"within {timeout_ms} ms",
                    )
                if err != errno.EINTR:
                    raise os_error("sem_wait", err)
        self.count += 1
        return {"slot": None}

    def release(self) -> dict[str, Any]:
        if not self.count:
            raise XError("NOT_HELD", f"POSIX semaphore '{self.name}' ({self.sem_name}): no permit held")
        mono = time.monotonic_ns()
        if libc.sem_post(self.sem) != 0:
            raise os_error("sem_post", ctypes.get_errno())
        self.count -= 1
        return {"mono_ns": mono}

    def locked(self) -> bool:
        return self.count > 0

    def close(self) -> None:
        while self.count:  # XL-PSEM-6: closing posts back every permit held
            self.release()

    def info(self) -> dict[str, Any]:
        return {"path": None, "semaphore": self.sem_name, "bell": None, "bell_word": None}


# -- removal [§8] --------------------------------------------------------------------------------------------
def remove(ns: Namespace, kind: str, name: str, capacity: Optional[int]) -> bool:
    """XL-RM-2, XL-RM-3, XL-RM-6, XL-RM-7: returns whether this call unlinked anything."""
    base = enc(name)
    if kind == "lock":
        files, word = [base + ".lock"], bell_word("l", name)
    else:
        content = read_capacity_file(ns, base + ".sem")
        if content is None and capacity is None:
            files = sorted(
                f
                for f in os.listdir(ns.fd)
                if f.startswith(base + ".") and f.endswith(".slot") and f[len(base) + 1 : -5].isdigit()
            )
        else:
            recorded = parse_capacity(content) if content is not None else capacity
            if recorded is None or (capacity is not None and recorded != capacity):
                raise XError(
                    "CAPACITY_MISMATCH",
                    f"semaphore '{name}' ({ns.file_path(base + '.sem')}, owned by "
                    f"{owner_of(base + '.sem', ns.fd)}) holds "
                    f"{content[:64] if content is not None else None!r}, "
                    f"not capacity {capacity}: nothing removed [XL-RM-3]",
                )
            files = [f"{base}.{i}.slot" for i in range(recorded)]
        word = bell_word("s", name)
    create = DEFECT == "remove-creates"
    held: list[FileLock] = []
    try:
        for file in files:  # hold everything, then unlink
            opened = open_lock_file(ns, file, create=create)
            if opened is None:
                continue
            lock = FileLock.__new__(FileLock)
            lock.ns, lock.file, lock.shared = ns, file, False
            lock.fd, lock.dev, lock.ino = opened
            held.append(lock)
            if not flock(lock.fd, False, False) or not _strict(lock):
                raise XError(
                    "WOULD_BLOCK", f"{kind} '{name}' ({ns.file_path(file)}) is held; nothing removed"
                )
        removed = False
        for lock in held:
            try:
                os.unlink(lock.file, dir_fd=ns.fd)
                removed = True
            except FileNotFoundError:
                pass
        if kind == "semaphore":
            try:
                os.unlink(base + ".sem", dir_fd=ns.fd)
                removed = True
            except FileNotFoundError:
                pass
        return removed
    finally:
        for lock in held:
            try:
                unflock(lock.fd)
            except OSError:
                pass
            lock.close()
        if held:
            bell_of(ns, create=create).ring(word)  # XL-RM-6: only an existing bell is opened


def _strict(lock: FileLock) -> bool:
    try:
        st = os.stat(lock.file, dir_fd=lock.ns.fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (lock.dev, lock.ino)


# -- the protocol --------------------------------------------------------------------------------------------
class Driver:
    def __init__(self) -> None:
        self.handles: dict[str, Any] = {}
        self.next_handle = 1
        self.leaked: list[Any] = []

    def handle(self, req: dict[str, Any]) -> Any:
        h = req.get("handle")
        if not isinstance(h, str) or h not in self.handles:
            raise XError("BAD_REQUEST", f"unknown handle {h!r}")
        return self.handles[h]

    def op_hello(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("protocol") != 1 or isinstance(req.get("protocol"), bool):
            if DEFECT != "hello-any-protocol":
                raise XError(
                    "BAD_REQUEST",
                    f"protocol {req.get('protocol')!r} is not supported; this driver speaks protocol 1",
                )
        return {
            "implementation": "conformance-reference" + (f"+{DEFECT}" if DEFECT else ""),
            "version": "0.2.0",
            "spec": "xlock/1",
            "protocol": 1,
            "pid": os.getpid(),
            "capabilities": CAPABILITIES,
        }

    def op_map(self, req: dict[str, Any]) -> dict[str, Any]:
        name = check_name(req)
        dev, ino = int_arg(req, "dev"), int_arg(req, "ino")
        base = enc(name)
        return {
            "lock_file": base + ".lock",
            "capacity_file": base + ".sem",
            "slot_files": {"0": base + ".0.slot", "999": base + ".999.slot"},
            "semaphores": {"p": sem_name("p", dev, ino, name)},
            "bell_words": {"l": bell_word("l", name), "s": bell_word("s", name)},
        }

    def op_open(self, req: dict[str, Any]) -> dict[str, Any]:
        kind = req.get("kind")
        if kind not in ("lock", "semaphore", "posix_semaphore"):
            raise XError("BAD_REQUEST", f"unknown kind {kind!r}")
        for key in ("shared", "reentrant", "allow_unsupported_fs"):
            if key in req and not isinstance(req[key], bool):
                raise XError("BAD_REQUEST", f"{key} must be a boolean")
        name = check_name(req)  # XL-NAME-6: the name first, then the other arguments, then the namespace
        capacity = value = 0
        if kind == "semaphore":
            capacity = int_arg(req, "capacity")
            if not 1 <= capacity <= 1000:
                raise XError("INVALID_ARGUMENT", f"capacity {capacity} is not from 1 to 1000 [XL-CSEM-1]")
        if kind == "posix_semaphore":
            value = int_arg(req, "value") if req.get("value") is not None else 1
            if not 0 <= value <= SEM_VALUE_MAX:
                raise XError("INVALID_ARGUMENT", f"value {value} is not from 0 to SEM_VALUE_MAX")
        ns = namespace_for_open(req.get("namespace"), bool(req.get("allow_unsupported_fs")))
        if kind == "lock":
            obj: Any = Lock(ns, name, bool(req.get("shared")), bool(req.get("reentrant")))
        elif kind == "semaphore":
            obj = Semaphore(ns, name, capacity)
        else:
            obj = PosixSemaphore(ns, name, value)
        h = f"h{self.next_handle}"
        self.next_handle += 1
        self.handles[h] = obj
        return {
            "handle": h,
            "namespace": ns.path,
            "dev": ns.dev,
            "ino": ns.ino,
            "sharing": ns.sharing,
            **obj.info(),
        }

    def op_acquire(self, req: dict[str, Any]) -> dict[str, Any]:
        timeout = req.get("timeout_ms")
        if timeout is not None:
            timeout = int_arg(req, "timeout_ms")
        obj = self.handle(req)
        out: dict[str, Any] = obj.acquire(timeout)
        out["mono_ns"] = time.monotonic_ns()
        return out

    def op_try_acquire(self, req: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.handle(req).acquire(None, blocking=False)
        out["mono_ns"] = time.monotonic_ns()
        return out

    def op_release(self, req: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.handle(req).release()
        out.setdefault("mono_ns", time.monotonic_ns())
        return out

    def op_locked(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"locked": self.handle(req).locked()}

    def op_close(self, req: dict[str, Any]) -> dict[str, Any]:
        obj = self.handle(req)
        del self.handles[req["handle"]]
        if DEFECT == "no-release-on-close":
            self.leaked.append(obj)  # the descriptor, and with it the flock, lives on
        else:
            obj.close()
        return {}

    def op_remove(self, req: dict[str, Any]) -> dict[str, Any]:
        kind = req.get("kind")
        if kind not in ("lock", "semaphore", "posix_semaphore"):
            raise XError("BAD_REQUEST", f"unknown kind {kind!r}")
        name = check_name(req)
        capacity = None
        if kind == "semaphore" and req.get("capacity") is not None:
            capacity = int_arg(req, "capacity")
            if not 1 <= capacity <= 1000:
                raise XError("INVALID_ARGUMENT", f"capacity {capacity} is not from 1 to 1000 [XL-CSEM-1]")
        ns = Namespace(req.get("namespace"), bool(req.get("allow_unsupported_fs")))
        try:
            if kind == "posix_semaphore":
                try:
                    os.unlink("/dev/shm/sem." + sem_name("p", ns.dev, ns.ino, name)[1:])
                except FileNotFoundError:
                    return {"removed": False}
                except OSError as exc:
                    raise os_error("unlink the raw semaphore", exc.errno or 0) from None
                return {"removed": True}
            return {"removed": remove(ns, kind, name, capacity)}
        finally:
            os.close(ns.fd)

    def op_increment(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"value": increment(str_arg(req, "path"))}

    def op_cycle(self, req: dict[str, Any]) -> dict[str, Any]:
        obj, count, path = self.handle(req), int_arg(req, "count"), str_arg(req, "path")
        timeout = req.get("timeout_ms")
        if timeout is not None:
            timeout = int_arg(req, "timeout_ms")
        done = 0
        try:
            while done < count:
                obj.acquire(timeout)
                increment(path)
                obj.release()
                done += 1
        except XError as exc:
            raise XError(exc.kind, f"{exc} (done: {done})") from None
        return {"count": count}

    def op_fork_check(self, req: dict[str, Any]) -> dict[str, Any]:
        obj = self.handle(req)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            fork_child(obj, wfd)  # never returns
        os.close(wfd)
        try:
            line = read_line(rfd, FORK_REPORT_S)
            try:
                report = json.loads(line)
            except ValueError:
                raise XError(
                    "OS_ERROR", f"the forked child {pid} reported {line[:200]!r}, not a JSON line"
                ) from None
        except XError:
            os.kill(pid, signal.SIGKILL)  # a child that failed is not left behind
            os.waitpid(pid, 0)
            raise
        finally:
            os.close(rfd)
        return {"child_pid": pid, **report}

    def op_exit(self, req: dict[str, Any]) -> dict[str, Any]:
        reply(req.get("id"), {})
        sys.exit(0)


def fork_child(obj: Any, wfd: int) -> None:
    """In the forked child: leave the protocol streams alone, try the inherited object, report, linger."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        report: dict[str, Any] = {}
        for key, call in (
            ("release", obj.release),
            ("locked", obj.locked),
            ("try_acquire", lambda: obj.acquire(None, blocking=False)),
        ):
            try:
                out = call()
                report[key] = out if key == "locked" else "ok"
            except XError as exc:
                report[key] = exc.kind
        os.write(wfd, json.dumps(report).encode() + b"\n")
    except BaseException as exc:  # report what went wrong, then linger all the same
        os.write(wfd, f"child failed: {exc!r}\n".encode())
    finally:
        while True:
            signal.pause()


def read_line(fd: int, timeout: float) -> str:
    """One line from the pipe `fd` within `timeout` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise XError("OS_ERROR", f"the forked child did not report within {timeout} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise XError("OS_ERROR", f"the forked child closed its pipe after {data!r}")
        data += chunk
    return data.decode("utf-8", "replace")


def increment(path: str) -> int:
    """PROTOCOL `increment`: ASCII digits, optionally one newline; writes value + 1 and a newline."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        text = os.read(fd, 64)
        digits = text[:-1] if text.endswith(b"\n") else text
        if digits and not (digits.isdigit() and digits.isascii()):
            raise XError("BAD_REQUEST", f"counter file {path} holds {text[:40]!r}, not a decimal integer")
        value = (int(digits) if digits else 0) + 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % value, 0)
    finally:
        os.close(fd)
    return value


def int_arg(req: dict[str, Any], key: str) -> int:
    value = req.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise XError("BAD_REQUEST", f"{key} must be an integer")
    return value


def str_arg(req: dict[str, Any], key: str) -> str:
    value = req.get(key)
    if not isinstance(value, str):
        raise XError("BAD_REQUEST", f"{key} must be a string")
    return value


def reply(rid: Any, body: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"id": rid, "ok": True, **body}) + "\n")
    sys.stdout.flush()


def fail(rid: Any, kind: str, message: str) -> None:
    sys.stdout.write(json.dumps({"id": rid, "ok": False, "error": kind, "message": message}) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    global DEFECT
    if argv[:1] == ["--defect"] and len(argv) == 2 and argv[1] in DEFECTS:
        DEFECT = argv[1]
    elif argv:
        print(f"usage: refdriver.py [--defect {'|'.join(DEFECTS)}]", file=sys.stderr)
        return 2
    driver = Driver()
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            fail(None, "BAD_REQUEST", "request is not JSON")
            continue
        rid = req.get("id") if isinstance(req, dict) else None
        op = req.get("op") if isinstance(req, dict) else None
        method = getattr(driver, f"op_{op}", None) if isinstance(op, str) else None
        if method is None:
            fail(rid, "BAD_REQUEST", f"unknown op {op!r}")
            continue
        try:
            reply(rid, method(req))
        except XError as exc:
            fail(rid, exc.kind, str(exc))
        except OSError as exc:
            fail(rid, "OS_ERROR", str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
