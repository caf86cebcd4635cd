"""The pure name mapping of xlock/1 (§3-§5): validation, file names, semaphore names, namespace paths.

Nothing here touches the file system [XL-SEM-6], so ``spec/vectors/names.json`` can be checked directly.
Names are ``str``; ``bytes`` are accepted too and must be well-formed UTF-8 [XL-NAME-3].
"""

from __future__ import annotations

import os

from ._errors import InvalidArgument, InvalidName

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): import xlock stays fast
if TYPE_CHECKING:
    from hashlib import sha256 as _sha256
    from typing import Union

    NameLike = Union[str, bytes]
else:
    NameLike = "str | bytes"  # for annotations, never evaluated
    # SHA-256 from the standard library's own module when it has one: hashlib would load OpenSSL
    # (_hashlib), most of the time `import xlock` took. The digests are the same [XL-SEM-1, XL-SEM-7].
    import sys

    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256 as _sha256
        else:
            from _sha256 import sha256 as _sha256
    except ImportError:  # a Python built --without-builtin-hashlib-hashes: OpenSSL's
        from hashlib import sha256 as _sha256

__all__ = [
    "BELL_WORDS",
    "MAX_NAME_BYTES",
    "EncodedName",
    "bell_word",
    "capacity_file_name",
    "choose_namespace",
    "default_namespace_path",
    "encode_name",
    "encoded",
    "lock_file_name",
    "resolve_namespace_path",
    "semaphore_name",
    "slot_file_name",
    "validate_name",
]

MAX_NAME_BYTES = 80
SEMAPHORE_KINDS = ("p",)  # [XL-SEM-2]
BELL_KINDS = ("l", "s")
BELL_WORDS = 1024  # words of a bell file [XL-SEM-7]
# C0, DEL and C1 [XL-NAME-2] (a set, not a regex: import xlock does not import re)
_CONTROL = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))
# Bytes that stay themselves in enc() [XL-ENC-1]; "." is handled apart (escaped at index 0).
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_UPPER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def name_to_str(name: NameLike) -> str:
    """Return ``name`` as ``str`` after checking it [XL-NAME-1..3]; raise ``InvalidName`` otherwise."""
    name_utf8(name)
    return name if isinstance(name, str) else name.decode("utf-8")


def name_utf8(name: NameLike) -> bytes:
    """Check a name [XL-NAME-1..3] and return its UTF-8 bytes. Raises ``InvalidName``."""
    if isinstance(name, bytes):
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidName(
                f"XL-NAME-3: name {name!r} is not well-formed UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
        raw = name
    elif isinstance(name, str):
        text = name
        try:
            raw = name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidName(
                f"XL-NAME-3: name {name!r} is not valid Unicode "
                f"(lone surrogate U+{ord(name[exc.start]):04X} at index {exc.start})"
            ) from None
    else:
        raise InvalidName(f"XL-NAME-3: a name must be str (or UTF-8 bytes), not {type(name).__name__}")
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise InvalidName(
            f"XL-NAME-1: name {text!r} is {len(raw)} bytes in UTF-8; a name must be 1 to "
            f"{MAX_NAME_BYTES} bytes"
        )
    if not _CONTROL.isdisjoint(text):
        index = next(i for i, char in enumerate(text) if char in _CONTROL)
        raise InvalidName(
            f"XL-NAME-2: name {text!r} contains the control character U+{ord(text[index]):04X} "
            f"at index {index}; control characters are not allowed in names"
        )
    return raw


def validate_name(name: NameLike) -> None:
    """Check a lock or semaphore name against spec §3.

    Raises ``InvalidName`` (whose message cites the rule that failed) for an empty name, a name longer
    than 80 UTF-8 bytes, a control character, a lone surrogate or ill-formed UTF-8 bytes.
    """
    name_utf8(name)


def _enc(raw: bytes) -> str:
    out = []
    for i, b in enumerate(raw):
        if b in _PLAIN or (b == 0x2E and i > 0):
            out.append(chr(b))
        elif b in _UPPER:
            out.append("!" + chr(b + 32))
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case


def _base32_prefix(digest: bytes, chars: int) -> str:
    """The first ``chars`` characters of the lower-case base32 of ``digest`` (no padding reached: 5 *
    chars <= 8 * len(digest)), as base64.b32encode gives them, without importing base64 (and re)."""
    bits = 8 * len(digest)
    value = int.from_bytes(digest, "big")
    return "".join(_BASE32[(value >> (bits - 5 * (i + 1))) & 31] for i in range(chars))


class EncodedName:
    """A name validated and encoded once [XL-NAME-1..3, XL-ENC-1], carrying its file names [XL-ENC-3].

    Every object and removal works from one of these, so a name is never validated or encoded twice.
    """

    __slots__ = ("_words", "capacity_file", "enc", "lock_file", "text", "utf8")

    text: str
    utf8: bytes
    enc: str
    lock_file: str
    capacity_file: str

    def __init__(self, name: NameLike) -> None:
        self.utf8 = name_utf8(name)
        self.text = name if isinstance(name, str) else self.utf8.decode("utf-8")
        self.enc = _enc(self.utf8)
        self.lock_file = self.enc + ".lock"
        self.capacity_file = self.enc + ".sem"
        self._words: dict[str, int] = {}

    def slot_file(self, index: int) -> str:
        """The slot file of permit ``index`` (0-based) [XL-ENC-3]; the caller checks the index."""
        return f"{self.enc}.{index}.slot"

    def temp_capacity_file(self, suffix: str) -> str:
        """The temporary file used while creating the capacity file, ``suffix`` 8 random hex digits."""
        return f"{self.enc}.{suffix}.tmp"

    def bell_word(self, kind: str) -> int:
        """The index of this name's word in the namespace's bell [XL-SEM-7]."""
        word = self._words.get(kind)
        if word is None:
            data = b"\0".join((b"xlock/1", b"bell", kind.encode(), self.utf8))
            word = self._words[kind] = int.from_bytes(_sha256(data).digest()[:4], "big") & (BELL_WORDS - 1)
        return word

    def semaphore_name(self, kind: str, dev: int, ino: int) -> str:
        """The POSIX semaphore name of (kind, namespace identity, this name) [XL-SEM-1]."""
        data = b"\0".join((b"xlock/1", kind.encode(), b"%d" % dev, b"%d" % ino, self.utf8))
        return "/xl1" + kind + _base32_prefix(_sha256(data).digest(), 25)

    def __repr__(self) -> str:
        return f"EncodedName({self.text!r})"


# Names encoded lately, so that an object per use (`with xlock.Lock(name):`) validates and encodes its name
# once per process, not per object. Bounded: emptied when full.
_ENCODED: dict[NameLike, EncodedName] = {}
_ENCODED_MAX = 4096


def encoded(name: NameLike | EncodedName) -> EncodedName:
    """``name`` as an ``EncodedName`` (validated once). Raises ``InvalidName``."""
    if isinstance(name, EncodedName):
        return name
    try:
        # the exact type in the key: "a" and b"a" are equal as neither, but never mix str subclasses
        found = _ENCODED.get(name) if type(name) in (str, bytes) else None
    except TypeError:  # unhashable: EncodedName says what is wrong
        found = None
    if found is None:
        found = EncodedName(name)
        if type(name) in (str, bytes):
            if len(_ENCODED) >= _ENCODED_MAX:
                _ENCODED.clear()
            _ENCODED[name] = found
    return found


def encode_name(name: NameLike) -> str:
    """Return ``enc(name)`` [XL-ENC-1], the file-name stem of a name. Raises ``InvalidName``."""
    return _enc(name_utf8(name))


def lock_file_name(name: NameLike) -> str:
    """Return the lock file's name in its namespace [XL-ENC-3]. Raises ``InvalidName``."""
    return encode_name(name) + ".lock"


def capacity_file_name(name: NameLike) -> str:
    """Return a counting semaphore's capacity file name [XL-ENC-3]. Raises ``InvalidName``."""
    return encode_name(name) + ".sem"


def slot_file_name(name: NameLike, index: int) -> str:
    """Return the slot file name of permit ``index`` (0-based) [XL-ENC-3].

    Raises ``InvalidName``, or ``InvalidArgument`` if ``index`` is not an integer from 0 to 999.
    """
    _check_int("slot index", index, 0, 999)
    return f"{encode_name(name)}.{index}.slot"


def semaphore_name(kind: str, dev: int, ino: int, name: NameLike) -> str:
    """Return the POSIX semaphore name for (kind, namespace identity, name) [XL-SEM-1].

    ``kind`` is ``"p"`` (raw POSIX semaphore) [XL-SEM-2]; locks and counting semaphores have a bell
    word instead (``bell_word``). Raises ``InvalidName``, or ``InvalidArgument`` for another kind or a
    negative or non-integer ``dev``/``ino``.
    """
    encoded_name = EncodedName(name)  # the name first [XL-NAME-6]
    if kind not in SEMAPHORE_KINDS:
        raise InvalidArgument(f"semaphore kind must be 'p' (raw POSIX semaphore), not {kind!r} [XL-SEM-2]")
    _check_int("dev", dev, 0, None)
    _check_int("ino", ino, 0, None)
    return encoded_name.semaphore_name(kind, dev, ino)


def bell_word(kind: str, name: NameLike) -> int:
    """Return the word (0 to 1023) of the namespace's bell that wakes waiters for ``name`` [XL-SEM-7].

    ``kind`` is ``"l"`` (lock) or ``"s"`` (counting semaphore). Raises ``InvalidName``, or
    ``InvalidArgument`` for another kind.
    """
    encoded_name = EncodedName(name)  # the name first [XL-NAME-6]
    if kind not in BELL_KINDS:
        raise InvalidArgument(f"bell kind must be 'l' (lock) or 's' (counting semaphore), not {kind!r}")
    return encoded_name.bell_word(kind)


def default_namespace_path() -> str:
    """Return the default namespace, ``/tmp/xlock-<euid>`` [XL-NS-2] (no environment variable counts)."""
    return f"/tmp/xlock-{os.geteuid()}"


def resolve_namespace_path(explicit: str | None) -> str:
    """Choose the namespace path [XL-NS-1]: ``explicit``, else ``$XLOCK_NAMESPACE``, else the default.

    Trailing ``/`` are removed (except from ``/`` itself); nothing else is normalised. Raises
    ``InvalidArgument`` for a relative or empty path or one containing a NUL byte [XL-NS-3].
    """
    return choose_namespace(explicit)[0]


def choose_namespace(explicit: str | None) -> tuple[str, str]:
    """``(path, source)`` of XL-NS-1; source is ``"argument"``, ``"XLOCK_NAMESPACE"`` or ``"default"``."""
    if explicit is not None:
        path = os.fspath(explicit)
        source, what = "argument", "the namespace argument"
    elif os.environ.get("XLOCK_NAMESPACE"):
        path = os.environ["XLOCK_NAMESPACE"]
        source = what = "XLOCK_NAMESPACE"
    else:
        return default_namespace_path(), "default"
    if not isinstance(path, str):
        raise InvalidArgument(f"{what} must be a str path, not {type(path).__name__}")
    if not path:
        raise InvalidArgument(f"{what} is empty; give an absolute directory path")
    if "\0" in path:
        raise InvalidArgument(f"{what} {path!r} contains a NUL byte")
    if not path.startswith("/"):
        raise InvalidArgument(f"{what} {path!r} is not absolute; give an absolute directory path")
    return path.rstrip("/") or "/", source


def _check_int(what: str, value: object, low: int, high: int | None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise InvalidArgument(f"{what} must be an integer {bound}, not {value!r}")
