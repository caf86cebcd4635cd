"""The only place that talks to libc through cffi: the compiled module ``xlock._xlock_c`` (cffi out-of-line
API mode, built by ``pip install`` when a C compiler is present) or, without it, ABI mode (``dlopen`` of
libc, no compiler needed, the declarations parsed at import). ``XLOCK_FFI=abi`` forces ABI mode;
``MODE`` and ``xlock.build_info()`` say which is in use, and why ABI mode was chosen.

Only functions with integer and pointer arguments are declared (``syscall`` is variadic: every argument
after the number must be passed as ``ffi.cast`` to its exact C type), plus ``struct timespec``, which is two
``long`` on 64-bit Linux. Two structures are read from plain byte buffers at fixed offsets instead:

* ``struct statfs``: ``f_type`` is the first field, a ``long`` (``__fsword_t``), on Linux x86_64 and
  aarch64, the platforms xlock/1 is verified on; ``fstatfs_type`` reads it from a 128-byte buffer.
* ``struct statx``: its layout is fixed by the kernel ABI on every architecture: ``stx_nlink`` is a u32
  at offset 16 and the structure is 256 bytes.
* ``struct stat`` differs per architecture; on x86_64 (``nlink_t`` is a u64) and aarch64 (a u32), both
  little-endian, the low 32 bits of ``st_nlink`` are at offset 16 too, and the structure is at most 144
  bytes. There ``fstat`` reads the link count (``FSTAT_NLINK``): a libffi call with 2 arguments costs
  less than statx's 5. glibc exports ``fstat`` from 2.33 on (before, only ``__fxstat``).

The compiled module adds the hot paths as single C calls (``_cdef.API_CDEF``): flock with its re-check,
flock(LOCK_UN) with its ring, and one announce/try/sleep step of the timed wait.

cffi releases the GIL around every call, so a thread blocked in ``sem_clockwait`` or a futex wait does not
block Python.
Read ``ffi.errno`` right after the call that failed.
"""

from __future__ import annotations

import os

from ._cdef import ABI_CDEF, C_VERSION

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "AT_EMPTY_PATH",
    "CLOCK_MONOTONIC",
    "CLOCK_REALTIME",
    "COMPILED",
    "FSTAT_NLINK",
    "FUTEX_BITSET_MATCH_ANY",
    "FUTEX_WAIT_BITSET",
    "FUTEX_WAKE_OP",
    "HAVE_CLOCKWAIT",
    "HAVE_STATX",
    "MAP_FAILED",
    "MAP_SHARED",
    "MODE",
    "MODE_REASON",
    "NLINK_OFFSET",
    "PROT_READ",
    "PROT_WRITE",
    "PR_SET_PDEATHSIG",
    "SEM_T_SIZE",
    "STATX_NLINK",
    "STAT_BUFFER_SIZE",
    "SYS_FUTEX",
    "ffi",
    "fstatfs_type",
    "lib",
]


def _load() -> tuple[Any, Any, str, str]:
    """(ffi, lib, mode, reason): the compiled module unless ``XLOCK_FFI=abi`` or it is missing or stale."""
    if os.environ.get("XLOCK_FFI") == "abi":
        reason = "XLOCK_FFI=abi"
    else:
        try:
            from . import _xlock_c  # type: ignore[attr-defined]
        except ImportError:
            reason = "no compiled module (pip install builds it when a C compiler is present)"
        else:
            version = _xlock_c.lib.xl_c_version()
            if version == C_VERSION:
                return _xlock_c.ffi, _xlock_c.lib, "compiled", ""
            reason = f"compiled module is stale (C version {version}, want {C_VERSION}): reinstall xlock"
    import cffi

    abi = cffi.FFI()
    abi.cdef(ABI_CDEF)
    return abi, abi.dlopen(None), "abi", reason


ffi, lib, MODE, MODE_REASON = _load()
COMPILED = MODE == "compiled"

PROT_READ = 0x1
PROT_WRITE = 0x2
MAP_SHARED = 0x01
MAP_FAILED = ffi.cast("void *", -1)
# sizeof(sem_t) in glibc on 64-bit Linux (__SIZEOF_SEM_T); xlock/1 is verified on x86_64 and aarch64.
SEM_T_SIZE = 32
# SYS_futex: the generic syscall table (aarch64, riscv64, ...) has 98; x86_64 has 202.
SYS_FUTEX = 202 if os.uname().machine == "x86_64" else 98
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_OP = 5
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
AT_EMPTY_PATH = 0x1000
PR_SET_PDEATHSIG = 1
STATX_NLINK = 0x4
STATFS_BUFFER_SIZE = 128  # > sizeof(struct statfs) = 120 on x86_64 and aarch64
STAT_BUFFER_SIZE = 256  # struct statx; struct stat is 144 bytes on x86_64, 128 on aarch64
NLINK_OFFSET = 16  # stx_nlink, and st_nlink's low 32 bits on x86_64 and aarch64


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
FSTAT_NLINK = os.uname().machine in ("x86_64", "aarch64") and _has_symbol("fstat")


def fstatfs_type(fd: int) -> int:
    """Return ``f_type`` of the file system holding ``fd``; raise ``OSError`` if ``fstatfs`` fails."""
    buf = ffi.new("char[]", STATFS_BUFFER_SIZE)
    if lib.fstatfs(fd, buf) != 0:
        err = ffi.errno
        raise OSError(err, os.strerror(err))
    f_type: int = ffi.cast("long *", buf)[0]
    return f_type & 0xFFFFFFFF
