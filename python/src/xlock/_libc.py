"""The only place that talks to libc through cffi (ABI mode: no compiler is needed at install).

Only functions with integer and pointer arguments are declared, plus ``struct timespec``, which is two
``long`` on 64-bit Linux. Two structures are read from plain byte buffers at fixed offsets instead:

* ``struct statfs``: ``f_type`` is the first field, a ``long`` (``__fsword_t``), on Linux x86_64 and
  aarch64, the platforms xlock/1 is verified on; ``fstatfs_type`` reads it from a 128-byte buffer.
* ``struct statx``: its layout is fixed by the kernel ABI on every architecture: ``stx_nlink`` is a u32
  at offset 16 and the structure is 256 bytes. (``struct stat`` differs per arch, so no ``fstat``.)

cffi releases the GIL around every call, so a thread blocked in ``sem_clockwait`` does not block Python.
Read ``ffi.errno`` right after the call that failed.
"""

from __future__ import annotations

import os
from typing import Any

import cffi

__all__ = [
    "AT_EMPTY_PATH",
    "CLOCK_MONOTONIC",
    "CLOCK_REALTIME",
    "HAVE_CLOCKWAIT",
    "O_CREAT",
    "SEM_FAILED",
    "STATX_NLINK",
    "ffi",
    "fstatfs_type",
    "lib",
]

ffi = cffi.FFI()
ffi.cdef(
    """
    struct timespec { long tv_sec; long tv_nsec; };
    void *sem_open(const char *name, int oflag, ...);
    int sem_close(void *sem);
    int sem_post(void *sem);
    int sem_wait(void *sem);
    int sem_trywait(void *sem);
    int sem_timedwait(void *sem, const struct timespec *abstime);
    int sem_clockwait(void *sem, int clockid, const struct timespec *abstime);
    int sem_getvalue(void *sem, int *sval);
    int sem_unlink(const char *name);
    int fstatfs(int fd, void *buf);
    int statx(int dirfd, const char *pathname, int flags, unsigned int mask, void *statxbuf);
    """
)
lib: Any = ffi.dlopen(None)

O_CREAT = 0o100
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
AT_EMPTY_PATH = 0x1000
STATX_NLINK = 0x4
STATFS_BUFFER_SIZE = 128  # > sizeof(struct statfs) = 120 on x86_64 and aarch64
STATX_BUFFER_SIZE = 256
STATX_NLINK_OFFSET = 16
SEM_FAILED = ffi.NULL  # glibc defines SEM_FAILED as ((sem_t *) 0)


def _has_symbol(symbol: str) -> bool:
    try:
        getattr(lib, symbol)
    except AttributeError:
        return False
    return True


# sem_clockwait appeared in glibc 2.30; without it, timed waits use sem_timedwait on CLOCK_REALTIME for
# one short slice at a time [XL-WAIT-4].
HAVE_CLOCKWAIT = _has_symbol("sem_clockwait")
HAVE_STATX = _has_symbol("statx")


def fstatfs_type(fd: int) -> int:
    """Return ``f_type`` of the file system holding ``fd``; raise ``OSError`` if ``fstatfs`` fails."""
    buf = ffi.new("char[]", STATFS_BUFFER_SIZE)
    if lib.fstatfs(fd, buf) != 0:
        err = ffi.errno
        raise OSError(err, os.strerror(err))
    f_type: int = ffi.cast("long *", buf)[0]
    return f_type & 0xFFFFFFFF
