"""Generate spec/vectors/names.json from the case list below.

This is the spec's own executable statement of §3-§5 (XL-NAME, XL-ENC, XL-SEM): a deliberately plain,
independent implementation, kept apart from every binding (draft 2: raw semaphore names of kind p
and bell words of kinds l and s). Run it after changing a case or the spec and
commit the result; `tox -e spec` checks that the committed file is what this script produces.

    python spec/tools/gen_vectors.py            # rewrite spec/vectors/names.json
    python spec/tools/gen_vectors.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path
from typing import Any

from vector_file import write_or_check

MAX_NAME_BYTES = 80
OUT = Path(__file__).resolve().parent.parent / "vectors" / "names.json"

# Two namespace identities (st_dev, st_ino) of the kind Linux reports: a disk partition 8:1, and a
# tmpfs with a large device number (0:53) and a large inode. The mapping never touches these directories.
NAMESPACES: list[dict[str, Any]] = [
    {"id": "ns-a", "dev": 2049, "ino": 131073},
    {"id": "ns-b", "dev": 53, "ino": 18446744073709551557},
]
# Draft 2: only raw POSIX semaphores (kind p) have a semaphore name; locks (l) and counting semaphores (s)
# have a word of the namespace's bell instead [XL-SEM-2, XL-SEM-7].
SEM_KINDS = "p"
BELL_KINDS = "ls"
BELL_WORDS = 1024


def validate(name: str) -> str | None:
    """Return None for a valid name, or the ID of the rule it breaks."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "XL-NAME-3"
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        return "XL-NAME-1"
    for ch in name:
        cp = ord(ch)
        if cp <= 0x1F or 0x7F <= cp <= 0x9F:
            return "XL-NAME-2"
    return None


def enc(name: str) -> str:
    out = []
    for i, b in enumerate(name.encode("utf-8")):
        c = chr(b)
        if c.isascii() and (c.islower() or c.isdigit() or c in "-_"):
            out.append(c)
        elif c == "." and i > 0:
            out.append(c)
        elif "A" <= c <= "Z":
            out.append("!" + c.lower())
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


def sem_name(kind: str, dev: int, ino: int, name: str) -> str:
    data = b"\0".join([b"xlock/1", kind.encode(), str(dev).encode(), str(ino).encode(), name.encode("utf-8")])
    b32 = base64.b32encode(hashlib.sha256(data).digest()).decode().lower()
    return "/xl1" + kind + b32[:25]


def bell_word(kind: str, name: str) -> int:
    data = b"\0".join([b"xlock/1", b"bell", kind.encode(), name.encode("utf-8")])
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big") % BELL_WORDS


# (description, name, extra spec IDs). Names are Python strings; "\ud800" is a lone surrogate.
CASES: list[tuple[str, str, list[str]]] = [
    ("ordinary lowercase name stays readable", "billing-export", []),
    ("underscore and digits stay readable", "job_42", []),
    ("single letter", "a", []),
    ("single digit", "7", []),
    ("dot inside a name stays readable", "billing.export", []),
    ("several dots inside", "a.b.c", []),
    ("trailing dot", "a.", []),
    ("leading dot is escaped so no hidden file", ".hidden", ["XL-ENC-2"]),
    ("a single dot cannot name the directory", ".", ["XL-ENC-2"]),
    ("two dots cannot name the parent", "..", ["XL-ENC-2"]),
    ("three dots", "...", []),
    ("parent traversal is escaped", "../x", ["XL-ENC-2"]),
    ("deep traversal is escaped", "../../etc/passwd", ["XL-ENC-2"]),
    ("slash is escaped", "a/b", ["XL-ENC-2"]),
    ("absolute-looking name", "/etc/passwd", ["XL-ENC-2"]),
    ("trailing slash", "a/", []),
    ("backslash", "a\\b", []),
    ("uppercase letter becomes !lower", "Billing", ["XL-NAME-4"]),
    ("lowercase twin of the previous case", "billing", ["XL-NAME-4"]),
    ("all uppercase", "BILLING", ["XL-NAME-4"]),
    ("mixed case", "BiLLing-Export", ["XL-NAME-4"]),
    ("exclamation mark is escaped (it marks uppercase)", "!b", []),
    ("percent sign is escaped (it marks bytes)", "%41", []),
    ("literal escape-looking text", "%2e", []),
    ("space", "billing export", []),
    ("leading and trailing spaces are kept, not trimmed", " x ", ["XL-NAME-4"]),
    ("colon-separated name", "tenant:42:export", []),
    ("at sign and plus", "user@host+1", []),
    ("asterisk and question mark", "*?", []),
    ("shell metacharacters", "$(rm -rf)", []),
    ("quotes", "\"'`", []),
    ("tilde", "~", []),
    ("hash", "#1", []),
    ("equals and comma", "k=v,x=y", []),
    ("composed e-acute (NFC)", "caf\u00e9", ["XL-NAME-4"]),
    ("decomposed e-acute (NFD) is a different name", "cafe\u0301", ["XL-NAME-4"]),
    ("Angstrom sign differs from A-ring", "\u212b", ["XL-NAME-4"]),
    ("A-ring", "\u00c5", ["XL-NAME-4"]),
    ("German sharp s", "stra\u00dfe", []),
    ("capital sharp s", "\u1e9e", []),
    ("Turkish dotted capital I", "\u0130", []),
    ("Greek", "\u03ba\u03bb\u03b5\u03b9\u03b4\u03af", []),
    ("Cyrillic", "\u0437\u0430\u043c\u043e\u043a", []),
    ("Japanese", "\u30ed\u30c3\u30af", []),
    ("Chinese", "\u9501", []),
    ("Arabic", "\u0642\u0641\u0644", []),
    ("Hebrew", "\u05de\u05e0\u05e2\u05d5\u05dc", []),
    ("Devanagari", "\u0924\u093e\u0932\u093e", []),
    ("emoji (4-byte UTF-8)", "\U0001f512", []),
    ("zero-width joiner is allowed", "a\u200db", []),
    ("no-break space is allowed", "a\u00a0b", []),
    ("byte-order mark is allowed", "\ufeffx", []),
    ("last code point U+10FFFF", "\U0010ffff", []),
    ("U+00A0 is the first allowed code point after C1", "\u00a0", ["XL-NAME-2"]),
    ("tilde U+007E is the last allowed before DEL", "~~", ["XL-NAME-2"]),
    ("space U+0020 is the first allowed after C0", " ", ["XL-NAME-2"]),
    ("80 ASCII bytes: the maximum length", "x" * 80, ["XL-NAME-1"]),
    ("80 bytes, every one escaped: the longest file name", "/" * 80, ["XL-NAME-1", "XL-ENC-5"]),
    ("80 uppercase bytes", "Q" * 80, ["XL-NAME-1"]),
    ("40 two-byte characters = 80 bytes", "\u00e9" * 40, ["XL-NAME-1"]),
    ("20 four-byte characters = 80 bytes", "\U0001f512" * 20, ["XL-NAME-1"]),
    ("79 bytes then a 2-byte character: 81 bytes", "x" * 79 + "\u00e9", ["XL-NAME-1"]),
    ("81 ASCII bytes: one past the maximum", "x" * 81, ["XL-NAME-1"]),
    ("27 three-byte characters = 81 bytes", "\u9501" * 27, ["XL-NAME-1"]),
    ("empty name", "", ["XL-NAME-1"]),
    ("NUL byte", "a\x00b", ["XL-NAME-2"]),
    ("newline", "a\nb", ["XL-NAME-2"]),
    ("tab", "\t", ["XL-NAME-2"]),
    ("carriage return", "x\r", ["XL-NAME-2"]),
    ("escape U+001B", "\x1b[0m", ["XL-NAME-2"]),
    ("unit separator U+001F", "\x1f", ["XL-NAME-2"]),
    ("DEL U+007F", "a\x7f", ["XL-NAME-2"]),
    ("C1 control U+0080", "\x80", ["XL-NAME-2"]),
    ("C1 control U+0085 (next line)", "a\x85", ["XL-NAME-2"]),
    ("C1 control U+009F", "\x9f", ["XL-NAME-2"]),
    ("lone high surrogate is not a Unicode scalar value", "a\ud800", ["XL-NAME-3"]),
    ("lone low surrogate", "\udfff", ["XL-NAME-3"]),
]


def build() -> dict[str, Any]:
    cases = []
    for description, name, ids in CASES:
        rule = validate(name)
        case: dict[str, Any] = {"description": description}
        try:
            case["name"] = name.encode("utf-8").decode("utf-8")
        except UnicodeEncodeError:
            case["name"] = None
        case["name_utf8_hex"] = (
            name.encode("utf-8").hex()
            if case["name"] is not None
            else name.encode("utf-8", "surrogatepass").hex()
        )
        if rule is None:
            e = enc(name)
            case["valid"] = True
            case["lock_file"] = e + ".lock"
            case["capacity_file"] = e + ".sem"
            case["slot_files"] = {"0": e + ".0.slot", "999": e + ".999.slot"}
            case["semaphores"] = {
                ns["id"]: {k: sem_name(k, ns["dev"], ns["ino"], name) for k in SEM_KINDS} for ns in NAMESPACES
            }
            case["bell_words"] = {k: bell_word(k, name) for k in BELL_KINDS}
            cites = [
                "XL-NAME-1",
                "XL-NAME-2",
                "XL-ENC-1",
                "XL-ENC-3",
                "XL-SEM-1",
                "XL-SEM-2",
                "XL-SEM-3",
                "XL-SEM-7",
            ]
        else:
            case["valid"] = False
            case["error"] = "INVALID_NAME"
            cites = ["XL-NAME-3", rule]
        case["spec"] = sorted(set(cites + ids))
        cases.append(case)
    return {
        "$schema": "./schema/names.schema.json",
        "description": "Name validation, file names, raw semaphore names and bell words (spec xlock/1 "
        "sections 3-5). Generated by spec/tools/gen_vectors.py; do not edit by hand.",
        "spec_version": "xlock/1",
        "namespaces": NAMESPACES,
        "cases": cases,
    }


def main(argv: list[str]) -> int:
    return write_or_check(OUT, build(), len(CASES), "gen_vectors.py", argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
