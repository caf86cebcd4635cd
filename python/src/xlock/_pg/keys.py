"""Names to PostgreSQL advisory-lock keys [XL-PG-3]: a pure function, no connection.

``key(kind, label, name, extra)`` is the first 8 bytes of SHA-256 over a domain-separated input, read as a
signed big-endian 64-bit integer; ``pg_locks`` shows it as ``classid`` (high 32 bits) and ``objid`` (low 32
bits) with ``objsubid = 1`` [XL-PG-12]. Checked by ``spec/vectors/pg_keys.json``.
"""

from __future__ import annotations

import hashlib
import os

from ..names import NameLike, name_utf8

__all__ = ["KINDS", "channel", "key", "split"]

KINDS = ("l", "s", "c")  # a lock; slot i of a counting semaphore; its capacity marker for capacity N
# Test-only planted defect (conformance/tests/test_pg_teeth.py): 32-bit keys, as hashtext would give.
_DEFECT_INT4 = os.environ.get("XLOCK_TEST_PG_DEFECT") == "int4-keys"


def key(kind: str, label: str, name: NameLike, extra: int | None = None) -> int:
    """The signed 64-bit key of an object [XL-PG-3]. Raises ``InvalidName`` for a name breaking §3."""
    raw = name_utf8(name)
    if kind not in KINDS:
        raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KINDS)}")
    if (extra is None) != (kind == "l"):
        raise ValueError(f"key kind {kind!r} {'takes no' if kind == 'l' else 'needs an'} extra")
    parts = [b"xlock/1", b"pg", kind.encode(), label.encode("utf-8"), raw]
    if extra is not None:
        parts.append(str(extra).encode("ascii"))
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    if _DEFECT_INT4:
        return int.from_bytes(digest[:4], "big", signed=True)
    return int.from_bytes(digest[:8], "big", signed=True)


def split(k: int) -> tuple[int, int]:
    """(``classid``, ``objid``) of key ``k`` as ``pg_locks`` shows it: unsigned high and low 32 bits."""
    unsigned = k & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def channel(label: str, name: NameLike) -> str:
    """The LISTEN/NOTIFY channel of a counting semaphore [XL-PG-13]."""
    return "xl1s_%016x" % (key("s", label, name, 0) & 0xFFFFFFFFFFFFFFFF)
