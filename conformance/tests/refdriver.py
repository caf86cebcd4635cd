#!/usr/bin/env python3
"""A small, self-contained xlock/1 driver (conformance/PROTOCOL.md) written from the spec alone.

It does not use the xlock package: stdlib `fcntl` for flock(2), `os` for the *at calls, ctypes for the POSIX
semaphores. It exists to prove the suite fair (this driver, correct, passes every case) and to prove it has
teeth: `--defect NAME` plants one bug that a specific case must catch:

  lockf                 POSIX record locks (fcntl F_SETLK) instead of flock(2)        [XL-LOCK-7]
  name-case             uppercase letters are not escaped in file names             [XL-ENC-1]
  no-doorbell           release rings no doorbell; timed waiters poll every 250 ms  [XL-WAIT-6]
  no-release-on-close   close forgets the object but keeps its descriptor (and lock) [XL-HOLD-10]
  fork-unlock           a forked child still thinks it holds: its release unlocks the parent's lock [XL-HOLD-7]
  fork-keep-fd          a forked child reopens for its next acquire but never closes the inherited
                        descriptor, which keeps the parent's lock alive after the parent dies   [XL-HOLD-8]

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
from typing import Any, Optional

DEFECTS = ("lockf", "name-case", "no-doorbell", "no-release-on-close", "fork-unlock", "fork-keep-fd")
DEFECT: Optional[str] = None
CAPABILITIES = ["lock", "shared", "timeout", "reentrant", "semaphore", "posix_semaphore", "map", "remove",
                "counter", "clock", "fork"]
FORK_REPORT_S = 5.0
UNSUPPORTED_FS = {0x6969, 0x517B, 0xFF534D42, 0xFE534D42, 0x65735546, 0x01021997, 0x00C36400, 0x5346414F,
                  0x73757245, 0x564C}
SEM_VALUE_MAX = 2147483647
CLOCK_MONOTONIC = 1

# -- libc ---------------------------------------------------------------------------------------------------
libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.sem_open.restype = ctypes.c_void_p
libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
for _fn in ("sem_post", "sem_trywait", "sem_wait", "sem_close"):
    getattr(libc, _fn).argtypes = [ctypes.c_void_p]
libc.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
libc.sem_clockwait.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Timespec)]
libc.sem_unlink.argtypes = [ctypes.c_char_p]
libc.fstatfs.argtypes = [ctypes.c_int, ctypes.c_char_p]


class XError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def os_error(what: str, err: int) -> XError:
    return XError("OS_ERROR", f"{what}: {os.strerror(err)} (errno {err})")


def sem_open(name: str, mode: int, value: int) -> Optional[int]:
    handle = libc.sem_open(name.encode(), os.O_CREAT, mode, value)
    return handle or None  # SEM_FAILED is NULL in glibc


def sem_wait_until(sem: int, deadline_ns: Optional[int]) -> None:
    """Wait for a post until the deadline (CLOCK_MONOTONIC ns), or forever."""
    if deadline_ns is None:
        libc.sem_wait(sem)
        return
    ts = Timespec(deadline_ns // 1_000_000_000, deadline_ns % 1_000_000_000)
    libc.sem_clockwait(sem, CLOCK_MONOTONIC, ctypes.byref(ts))


def ring(sem: Optional[int]) -> None:
    """XL-WAIT-6: post the doorbell if its value is 0."""
    if sem is None or DEFECT == "no-doorbell":
        return
    value = ctypes.c_int(0)
    if libc.sem_getvalue(sem, ctypes.byref(value)) == 0 and value.value == 0:
        libc.sem_post(sem)


# -- names ----------------------------------------------------------------------------------------------
def check_name(req: dict[str, Any]) -> str:
    if isinstance(req.get("name"), str):
        name = req["name"]
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError:
            raise XError("INVALID_NAME", "name is not valid Unicode (lone surrogate) [XL-NAME-3]") from None
    elif isinstance(req.get("name_hex"), str):
        try:
            raw = bytes.fromhex(req["name_hex"])
        except ValueError:
            raise XError("BAD_REQUEST", "name_hex is not hexadecimal") from None
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
            out.append("%%%02x" % b)
    return "".join(out)


def sem_name(kind: str, dev: int, ino: int, name: str) -> str:
    data = b"\0".join([b"xlock/1", kind.encode(), str(dev).encode(), str(ino).encode(), name.encode()])
    return "/xl1" + kind + base64.b32encode(hashlib.sha256(data).digest()).decode().lower()[:25]


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
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise os_error(f"cannot create namespace {path}", exc.errno) from None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise XError("INSECURE_NAMESPACE", f"namespace {path} is a symbolic link or not a directory "
                                                   "[XL-NS-5]") from None
            raise os_error(f"cannot open namespace {path}", exc.errno) from None
        try:
            st = os.fstat(self.fd)
            euid = os.geteuid()
            if st.st_uid not in (euid, 0):
                raise XError("INSECURE_NAMESPACE", f"namespace {path} is owned by uid {st.st_uid}, not by you "
                                                   "or root [XL-NS-6]")
            if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                raise XError("INSECURE_NAMESPACE", f"namespace {path} is writable by others without the sticky "
                                                   "bit [XL-NS-7]")
            if default and (st.st_uid != euid or st.st_mode & 0o077):
                raise XError("INSECURE_NAMESPACE", f"default namespace {path} must be yours with mode 0700 "
                                                   "[XL-NS-8]")
            buf = ctypes.create_string_buffer(256)
            if libc.fstatfs(self.fd, buf) != 0:
                raise os_error(f"fstatfs {path}", ctypes.get_errno())
            f_type = int.from_bytes(buf.raw[:8], sys.byteorder) & 0xFFFFFFFF
            allow = allow_unsupported or os.environ.get("XLOCK_ALLOW_UNSUPPORTED_FS") == "1"
            if f_type in UNSUPPORTED_FS and not allow:
                raise XError("UNSUPPORTED_FS", f"namespace {path} is on file system 0x{f_type:x} [XL-NS-10]")
        except XError:
            os.close(self.fd)
            raise
        self.path, self.dev, self.ino = path, st.st_dev, st.st_ino
        shared_group, shared_other = st.st_mode & 0o020, st.st_mode & 0o002
        self.shared = bool(shared_group or shared_other)
        self.owner = st.st_uid
        self.file_mode = 0o666 if shared_other else 0o660 if shared_group else 0o600  # XL-NS-13


# -- files --------------------------------------------------------------------------------------------------
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def open_lock_file(ns: Namespace, file: str) -> tuple[int, int, int]:
    """XL-LOCK-1..5: open or create the lock file; returns (fd, dev, ino)."""
    flags = OPEN_FLAGS
    if DEFECT == "lockf":
        flags = (flags & ~os.O_RDONLY) | os.O_RDWR  # lockf needs a writable descriptor
    while True:
        try:
            fd = os.open(file, flags, dir_fd=ns.fd)
        except FileNotFoundError:
            try:
                fd = os.open(file, flags | os.O_CREAT | os.O_EXCL, ns.file_mode, dir_fd=ns.fd)
            except FileExistsError:
                continue
            except OSError as exc:
                raise _file_error(ns, file, exc) from None
            os.fchmod(fd, ns.file_mode)
        except OSError as exc:
            raise _file_error(ns, file, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise XError("INSECURE_NAMESPACE", f"{ns.path}/{file} is not a regular file [XL-LOCK-5]")
        return fd, st.st_dev, st.st_ino


def _file_error(ns: Namespace, file: str, exc: OSError) -> XError:
    if exc.errno == errno.ELOOP:
        return XError("INSECURE_NAMESPACE", f"{ns.path}/{file} is a symbolic link [XL-LOCK-4]")
    return os_error(f"cannot open {ns.path}/{file}", exc.errno or 0)


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
    """One flock on one file of the namespace, with the path re-check of XL-LOCK-8."""

    def __init__(self, ns: Namespace, file: str, shared: bool = False) -> None:
        self.ns, self.file, self.shared = ns, file, shared
        self.fd, self.dev, self.ino = open_lock_file(ns, file)

    def attempt(self, blocking: bool) -> bool:
        while True:
            if self.fd < 0:
                self.fd, self.dev, self.ino = open_lock_file(self.ns, self.file)
            if not flock(self.fd, self.shared, blocking):
                return False
            try:
                st = os.stat(self.file, dir_fd=self.ns.fd, follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (self.dev, self.ino):
                    return True
            except FileNotFoundError:
                pass
            unflock(self.fd)  # removed or replaced while we waited: reopen and try again (XL-LOCK-8)
            os.close(self.fd)
            self.fd = -1

    def unlock(self) -> None:
        unflock(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- waiting ------------------------------------------------------------------------------------------------
def deadline_of(timeout_ms: Optional[int]) -> Optional[int]:
    if timeout_ms is None or timeout_ms < 0:
        return None
    return time.monotonic_ns() + timeout_ms * 1_000_000


def doorbell_wait(bell: Optional[int], attempt: Any, deadline: Optional[int]) -> bool:
    """XL-WAIT-4 with the safety poll of XL-WAIT-7; returns False on TIMEOUT."""
    poll_ms = 1
    while True:
        if bell is not None:
            while libc.sem_trywait(bell) == 0:
                pass
        if attempt():
            return True
        now = time.monotonic_ns()
        if deadline is not None and now >= deadline:
            return False
        if DEFECT == "no-doorbell":
            slice_end = now + 250_000_000  # the portalocker way: sleep and retry
            if deadline is not None:
                slice_end = min(slice_end, deadline)
            time.sleep((slice_end - now) / 1e9)
            continue
        slice_end = now + poll_ms * 1_000_000
        if deadline is not None:
            slice_end = min(slice_end, deadline)
        poll_ms = min(poll_ms * 2, 16)
        if bell is None:
            time.sleep(max(slice_end - now, 0) / 1e9)
        else:
            sem_wait_until(bell, slice_end)


def fix_sem_mode(name: str, ns: Namespace) -> None:
    """XL-NS-13 / XL-PSEM-3: a semaphore we own gets the namespace file mode whatever the umask."""
    path = "/dev/shm/sem." + name[1:]
    try:
        st = os.stat(path)
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != ns.file_mode:
            os.chmod(path, ns.file_mode)
    except OSError:
        pass


# -- fork [XL-HOLD-7, XL-HOLD-8] -------------------------------------------------------------------------------
LIVE: "weakref.WeakSet[Any]" = weakref.WeakSet()


def after_fork_in_child() -> None:
    """The child holds nothing: it forgets every hold and closes every inherited lock-file descriptor
    without unlocking it (the parent's open file description keeps the parent's lock)."""
    if DEFECT == "fork-unlock":
        return
    for obj in list(LIVE):
        obj.forget_after_fork()


os.register_at_fork(after_in_child=after_fork_in_child)


def forget_fd(file: "FileLock") -> None:
    if DEFECT != "fork-keep-fd":  # the defect leaks the inherited descriptor, and with it the parent's lock
        os.close(file.fd)
    file.fd = -1


class Doorbelled:
    kind_letter = "l"

    def doorbell(self) -> Optional[int]:
        if self._bell is None:
            self._bell = sem_open(self.bell_name, self.ns.file_mode, 0)  # may fail: poll alone (XL-WAIT-8)
            if self._bell is not None:
                fix_sem_mode(self.bell_name, self.ns)
        return self._bell


class Lock(Doorbelled):
    def __init__(self, ns: Namespace, name: str, shared: bool, reentrant: bool) -> None:
        self.ns, self.name, self.reentrant = ns, name, reentrant
        self.path = f"{ns.path}/{enc(name)}.lock"
        self.bell_name = sem_name("l", ns.dev, ns.ino, name)
        self._bell: Optional[int] = None
        self.file = FileLock(ns, enc(name) + ".lock", shared)
        self.count = 0
        LIVE.add(self)

    def forget_after_fork(self) -> None:
        self.count = 0
        if self.file.fd >= 0:
            forget_fd(self.file)

    def acquire(self, timeout_ms: Optional[int], blocking: bool = True) -> dict[str, Any]:
        if self.count:
            if not self.reentrant:
                raise XError("ALREADY_HELD", f"lock '{self.name}' ({self.path}) is already held by this object "
                                             "[XL-HOLD-3]")
            self.count += 1
            return {}
        if not blocking:
            if not self.file.attempt(False):
                raise XError("WOULD_BLOCK", f"lock '{self.name}' ({self.path}) is held elsewhere")
        elif timeout_ms is None or timeout_ms < 0:
            self.file.attempt(True)  # XL-WAIT-2: the kernel hands it over
        elif not doorbell_wait(self.doorbell(), lambda: self.file.attempt(False), deadline_of(timeout_ms)):
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
        ring(self.doorbell())
        return {"mono_ns": mono}

    def locked(self) -> bool:
        return self.count > 0

    def close(self) -> None:
        if self.count:
            self.count = 1
            self.release()
        self.file.close()

    def info(self) -> dict[str, Any]:
        return {"path": self.path, "semaphore": self.bell_name}


class Semaphore(Doorbelled):
    def __init__(self, ns: Namespace, name: str, capacity: int) -> None:
        self.ns, self.name, self.capacity = ns, name, capacity
        self.base = enc(name)
        self.path = f"{ns.path}/{self.base}.sem"
        self.bell_name = sem_name("s", ns.dev, ns.ino, name)
        self._bell: Optional[int] = None
        self.held: list[FileLock] = []
        check_capacity_file(ns, self.base, name, capacity)
        LIVE.add(self)

    def forget_after_fork(self) -> None:
        for slot in self.held:
            forget_fd(slot)
        self.held = []

    def _try_slots(self) -> bool:
        for i in range(self.capacity):
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
        elif not doorbell_wait(self.doorbell(), self._try_slots, deadline_of(timeout_ms)):
            raise XError("TIMEOUT", f"semaphore '{self.name}' ({self.path}): no permit within {timeout_ms} ms")
        return {"slot": self.held[-1].index}  # type: ignore[attr-defined]

    def release(self) -> dict[str, Any]:
        if not self.held:
            raise XError("NOT_HELD", f"semaphore '{self.name}' ({self.path}): no permit held by this object")
        slot = self.held.pop()
        mono = time.monotonic_ns()
        slot.unlock()
        slot.close()
        ring(self.doorbell())
        return {"mono_ns": mono}

    def locked(self) -> bool:
        return bool(self.held)

    def close(self) -> None:
        while self.held:
            self.release()

    def info(self) -> dict[str, Any]:
        return {"path": self.path, "semaphore": self.bell_name}


def capacity_content(capacity: int) -> bytes:
    return b"xlock/1 semaphore capacity=%d\n" % capacity


def check_capacity_file(ns: Namespace, base: str, name: str, capacity: int) -> None:
    """XL-CSEM-3 / XL-CSEM-4."""
    file = base + ".sem"
    while True:
        try:
            fd = os.open(file, OPEN_FLAGS, dir_fd=ns.fd)
        except FileNotFoundError:
            tmp = f"{base}.sem.{os.getpid()}.tmp"
            wfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                          ns.file_mode, dir_fd=ns.fd)
            try:
                os.fchmod(wfd, ns.file_mode)
                os.write(wfd, capacity_content(capacity))
            finally:
                os.close(wfd)
            try:
                os.link(tmp, file, src_dir_fd=ns.fd, dst_dir_fd=ns.fd, follow_symlinks=False)
                return
            except FileExistsError:
                continue
            finally:
                os.unlink(tmp, dir_fd=ns.fd)
        except OSError as exc:
            raise _file_error(ns, file, exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise XError("INSECURE_NAMESPACE", f"{ns.path}/{file} is not a regular file [XL-LOCK-5]")
            content = os.read(fd, 65)
        finally:
            os.close(fd)
        if content != capacity_content(capacity):
            raise XError("CAPACITY_MISMATCH", f"semaphore '{name}' ({ns.path}/{file}) has {content[:64]!r}; "
                                              f"this participant has capacity {capacity} [XL-CSEM-3]")
        return


class PosixSemaphore:
    def __init__(self, ns: Namespace, name: str, value: int) -> None:
        self.ns, self.name = ns, name
        self.sem_name = sem_name("p", ns.dev, ns.ino, name)
        handle = sem_open(self.sem_name, ns.file_mode, value)
        if handle is None:
            raise os_error(f"sem_open {self.sem_name}", ctypes.get_errno())
        self.sem = handle
        self.count = 0
        try:
            st = os.stat("/dev/shm/sem." + self.sem_name[1:])
        except OSError as exc:
            libc.sem_close(handle)
            raise os_error(f"stat /dev/shm/sem.{self.sem_name[1:]}", exc.errno or 0) from None
        if st.st_uid not in (os.geteuid(), 0, ns.owner) and not ns.shared:
            libc.sem_close(handle)
            raise XError("INSECURE_NAMESPACE", f"semaphore {self.sem_name} is owned by uid {st.st_uid} [XL-PSEM-3]")
        fix_sem_mode(self.sem_name, ns)

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
                    raise XError("TIMEOUT", f"POSIX semaphore '{self.name}' ({self.sem_name}) not acquired "
                                            f"within {timeout_ms} ms")
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
        while self.count:
            self.release()
        libc.sem_close(self.sem)

    def info(self) -> dict[str, Any]:
        return {"path": None, "semaphore": self.sem_name}


# -- the protocol ---------------------------------------------------------------------------------------------
class Driver:
    def __init__(self) -> None:
        self.handles: dict[str, Any] = {}
        self.next_handle = 1
        self.leaked: list[Any] = []

    def handle(self, req: dict[str, Any]) -> Any:
        h = req.get("handle")
        if h not in self.handles:
            raise XError("BAD_REQUEST", f"unknown handle {h!r}")
        return self.handles[h]

    def op_hello(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"implementation": "conformance-reference" + (f"+{DEFECT}" if DEFECT else ""), "version": "0.1.0",
                "spec": "xlock/1", "protocol": 1, "pid": os.getpid(), "capabilities": CAPABILITIES}

    def op_map(self, req: dict[str, Any]) -> dict[str, Any]:
        name = check_name(req)
        dev, ino = int_arg(req, "dev"), int_arg(req, "ino")
        base = enc(name)
        return {"lock_file": base + ".lock", "capacity_file": base + ".sem",
                "slot_files": {"0": base + ".0.slot", "999": base + ".999.slot"},
                "semaphores": {k: sem_name(k, dev, ino, name) for k in "lsp"}}

    def op_open(self, req: dict[str, Any]) -> dict[str, Any]:
        kind = req.get("kind")
        if kind not in ("lock", "semaphore", "posix_semaphore"):
            raise XError("BAD_REQUEST", f"unknown kind {kind!r}")
        name = check_name(req)
        capacity = value = 0
        if kind == "semaphore":
            capacity = int_arg(req, "capacity")
            if not 1 <= capacity <= 1000:
                raise XError("INVALID_ARGUMENT", f"capacity {capacity} is not from 1 to 1000 [XL-CSEM-1]")
        if kind == "posix_semaphore":
            value = int_arg(req, "value") if req.get("value") is not None else 1
            if not 0 <= value <= SEM_VALUE_MAX:
                raise XError("INVALID_ARGUMENT", f"value {value} is not from 0 to SEM_VALUE_MAX")
        ns = Namespace(req.get("namespace"), bool(req.get("allow_unsupported_fs")))
        if kind == "lock":
            obj: Any = Lock(ns, name, bool(req.get("shared")), bool(req.get("reentrant")))
        elif kind == "semaphore":
            obj = Semaphore(ns, name, capacity)
        else:
            obj = PosixSemaphore(ns, name, value)
        h = f"h{self.next_handle}"
        self.next_handle += 1
        self.handles[h] = obj
        return {"handle": h, "namespace": ns.path, "dev": ns.dev, "ino": ns.ino, **obj.info()}

    def op_acquire(self, req: dict[str, Any]) -> dict[str, Any]:
        timeout = req.get("timeout_ms")
        if timeout is not None:
            timeout = int_arg(req, "timeout_ms")
        obj = self.handle(req)
        out = obj.acquire(timeout)
        out["mono_ns"] = time.monotonic_ns()
        return out

    def op_try_acquire(self, req: dict[str, Any]) -> dict[str, Any]:
        out = self.handle(req).acquire(None, blocking=False)
        out["mono_ns"] = time.monotonic_ns()
        return out

    def op_release(self, req: dict[str, Any]) -> dict[str, Any]:
        out = self.handle(req).release()
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
        name = check_name(req)
        if kind == "posix_semaphore":
            ns = Namespace(req.get("namespace"), bool(req.get("allow_unsupported_fs")))
            os.close(ns.fd)
            if libc.sem_unlink(sem_name("p", ns.dev, ns.ino, name).encode()) != 0:
                err = ctypes.get_errno()
                if err == errno.ENOENT:
                    return {"removed": False}
                raise os_error("sem_unlink", err)
            return {"removed": True}
        if kind == "lock":
            files = [enc(name) + ".lock"]
        elif kind == "semaphore":
            capacity = int_arg(req, "capacity")
            if not 1 <= capacity <= 1000:
                raise XError("INVALID_ARGUMENT", f"capacity {capacity} is not from 1 to 1000 [XL-CSEM-1]")
            files = [f"{enc(name)}.{i}.slot" for i in range(capacity)]
        else:
            raise XError("BAD_REQUEST", f"unknown kind {kind!r}")
        ns = Namespace(req.get("namespace"), bool(req.get("allow_unsupported_fs")))
        held: list[FileLock] = []
        try:
            for file in files:  # XL-RM-2 / XL-RM-3: hold everything, then unlink
                try:
                    os.stat(file, dir_fd=ns.fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                lock = FileLock(ns, file)
                held.append(lock)
                if not lock.attempt(False):
                    raise XError("WOULD_BLOCK", f"{kind} '{name}' ({ns.path}/{file}) is held; nothing removed")
            removed = False
            for lock in held:
                os.unlink(lock.file, dir_fd=ns.fd)
                removed = True
            if kind == "semaphore":
                try:
                    os.unlink(enc(name) + ".sem", dir_fd=ns.fd)
                    removed = True
                except FileNotFoundError:
                    pass
            return {"removed": removed}
        finally:
            for lock in held:
                if lock.fd >= 0:
                    try:
                        unflock(lock.fd)
                    except OSError:
                        pass
                lock.close()
            if held:
                bell = sem_open(sem_name("l" if kind == "lock" else "s", ns.dev, ns.ino, name), ns.file_mode, 0)
                ring(bell)
                if bell is not None:
                    libc.sem_close(bell)
            os.close(ns.fd)

    def op_increment(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"value": increment(str_arg(req, "path"))}

    def op_cycle(self, req: dict[str, Any]) -> dict[str, Any]:
        obj, count, path = self.handle(req), int_arg(req, "count"), str_arg(req, "path")
        timeout = req.get("timeout_ms")
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
                raise XError("OS_ERROR", f"the forked child {pid} reported {line[:200]!r}, not a JSON line") from None
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
        for key, call in (("release", obj.release), ("locked", obj.locked),
                          ("try_acquire", lambda: obj.acquire(None, blocking=False))):
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        text = os.read(fd, 64).decode().strip()
        value = (int(text) if text else 0) + 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(value).encode(), 0)
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
