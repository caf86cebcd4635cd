"""A flooding co-member: ring every word of a bell, and one word above all, as fast as it can.

    python -m xlock_conformance.flood BELL_PATH WORD

It maps the bell and calls futex(FUTEX_WAKE_OP, INT_MAX, ..., FUTEX_OP_ADD 1) on WORD and, in turn, on every
other word, until it is killed: each call changes the word and wakes every waiter on it [XL-BELL-6], which is
what a member who rings continuously can do [XL-THREAT-3]. It prints "ringing" once it has rung every word.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

SYS_FUTEX = 202 if os.uname().machine == "x86_64" else 98
FUTEX_WAKE_OP = 5
OP_ADD_1 = (1 << 28) | (0 << 24) | (1 << 12) | 0  # FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)


def main(argv: list[str]) -> int:
    path, word = argv[0], int(argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = os.open(path, os.O_RDWR)
    mapping = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mapping))

    def ring(i: int) -> None:
        addr = ctypes.c_void_p(base + 4 * i)
        libc.syscall(
            ctypes.c_long(SYS_FUTEX),
            addr,
            ctypes.c_int(FUTEX_WAKE_OP),
            ctypes.c_uint(2**31 - 1),
            ctypes.c_void_p(0),
            addr,
            ctypes.c_uint(OP_ADD_1),
        )

    for i in range(1024):
        ring(i)
    print("ringing", flush=True)
    other = 0
    while True:
        for _ in range(8):
            ring(word)
        ring(other)
        other = (other + 1) % 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
