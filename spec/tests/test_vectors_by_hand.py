"""Cross-check names.json without the generator's code: file names written out by hand from spec §4,
semaphore names recomputed with coreutils `sha256sum` and `base32` (spec §5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "names.json").read_text())
CASES = {c["description"]: c for c in VECTORS["cases"]}
BY_NAME = {c["name"]: c for c in VECTORS["cases"] if c["name"] is not None}

# Worked by hand from XL-ENC-1 and XL-ENC-3.
HAND_FILES = {
    "billing-export": "billing-export.lock",
    "Billing": "!billing.lock",
    ".": "%2e.lock",
    "..": "%2e..lock",
    "../x": "%2e.%2fx.lock",
    "a/b": "a%2fb.lock",
    "caf\u00e9": "caf%c3%a9.lock",
    "cafe\u0301": "cafe%cc%81.lock",
    "!b": "%21b.lock",
    "%41": "%2541.lock",
    "billing export": "billing%20export.lock",
    "\U0001f512": "%f0%9f%94%92.lock",
}


@pytest.mark.parametrize("name", sorted(HAND_FILES))
def test_lock_file_worked_by_hand(name: str) -> None:
    assert BY_NAME[name]["lock_file"] == HAND_FILES[name]


def coreutils_sem_name(kind: str, dev: int, ino: int, name: str) -> str:
    data = b"\0".join([b"xlock/1", kind.encode(), str(dev).encode(), str(ino).encode(), name.encode()])
    hexdigest = subprocess.run(["sha256sum"], input=data, capture_output=True, check=True).stdout.split()[0]
    b32 = subprocess.run(
        ["base32", "-w0"], input=bytes.fromhex(hexdigest.decode()), capture_output=True, check=True
    ).stdout.decode()
    return "/xl1" + kind + b32.lower()[:25]


@pytest.mark.parametrize("name", ["billing-export", "caf\u00e9", "..", "x" * 80])
def test_semaphore_names_match_coreutils(name: str) -> None:
    case = BY_NAME[name]
    for ns in VECTORS["namespaces"]:
        assert case["semaphores"][ns["id"]]["p"] == coreutils_sem_name("p", ns["dev"], ns["ino"], name)


def coreutils_bell_word(kind: str, name: str) -> int:
    data = b"\0".join([b"xlock/1", b"bell", kind.encode(), name.encode()])
    hexdigest = subprocess.run(["sha256sum"], input=data, capture_output=True, check=True).stdout.split()[0]
    return int(hexdigest[:8], 16) % 1024


@pytest.mark.parametrize("name", ["billing-export", "caf\u00e9", "..", "x" * 80])
def test_bell_words_match_coreutils(name: str) -> None:
    """XL-SEM-7: the first 32 bits of the digest, big-endian, modulo 1024."""
    for kind in "ls":
        assert BY_NAME[name]["bell_words"][kind] == coreutils_bell_word(kind, name)


def test_bell_words_spread_over_the_bell() -> None:
    """Names map to many different words (a constant mapping would pass the per-case checks)."""
    words = {c["bell_words"]["l"] for c in VECTORS["cases"] if c["valid"]}
    assert len(words) > 40


def test_case_variants_and_normalisation_forms_never_share_a_file() -> None:
    valid = [c for c in VECTORS["cases"] if c["valid"]]
    files = [c["lock_file"] for c in valid]
    assert len(files) == len(set(files))
    # also after case folding, as on a case-insensitive file system [XL-ENC-2]
    assert len({f.casefold() for f in files}) == len(files)


def test_invalid_cases_have_the_error_kind_and_no_mapping() -> None:
    invalid = [c for c in VECTORS["cases"] if not c["valid"]]
    assert len(invalid) >= 15
    assert all(c["error"] == "INVALID_NAME" and "lock_file" not in c for c in invalid)


PG_KEYS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "pg_keys.json").read_text())


def coreutils_pg_key(kind: str, label: str, name: str, extra: int | None) -> int:
    parts = [b"xlock/1", b"pg", kind.encode(), label.encode(), name.encode()]
    if extra is not None:
        parts.append(str(extra).encode())
    hexdigest = subprocess.run(
        ["sha256sum"], input=b"\0".join(parts), capture_output=True, check=True
    ).stdout.split()[0]
    unsigned = int(hexdigest[:16], 16)
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


@pytest.mark.parametrize("case", PG_KEYS["cases"], ids=lambda c: c["description"])
def test_pg_keys_match_coreutils(case: dict[str, Any]) -> None:
    """XL-PG-3: the first 8 bytes of the digest, big-endian, signed; XL-PG-12: the pg_locks split."""
    key = coreutils_pg_key(case["kind"], case["label"], case["name"], case.get("extra"))
    assert case["key"] == key
    assert (case["classid"] << 32 | case["objid"]) == key & 0xFFFFFFFFFFFFFFFF


def test_pg_keys_are_distinct() -> None:
    keys = [c["key"] for c in PG_KEYS["cases"]]
    assert len(set(keys)) == len(keys)
