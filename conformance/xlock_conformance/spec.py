"""What the suite knows about the spec: where the checkout is, its requirement IDs, its name vectors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional

SPEC_FILE = Path("spec") / "xlock-1.md"
_BULLET = re.compile(r"^\s*- \[(XL-[A-Z]+-[0-9]+)\](.*?)(?=^\s*- \[|^\S|\Z)", re.M | re.S)


def find_repo(explicit: Optional[str] = None) -> Optional[Path]:
    """The checkout holding spec/xlock-1.md: --repo, $XLOCK_REPO, then upwards from cwd and from here."""
    if explicit:
        return Path(explicit).resolve()
    if os.environ.get("XLOCK_REPO"):
        return Path(os.environ["XLOCK_REPO"]).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for cand in (start, *start.parents):
            if (cand / SPEC_FILE).is_file():
                return cand
    # An installed package with no checkout around: the spec and vectors it ships (setup.py).
    packaged = Path(__file__).resolve().parent / "data"
    if (packaged / SPEC_FILE).is_file():
        return packaged
    return None


def requirements(repo: Path) -> dict[str, str]:
    """Every requirement ID of the spec with its text (continuation lines joined)."""
    text = (repo / SPEC_FILE).read_text(encoding="utf-8")
    return {m.group(1): " ".join(m.group(2).split()) for m in _BULLET.finditer(text)}


def must_ids(repo: Path) -> list[str]:
    """IDs whose bullet contains MUST (or MUST NOT), in spec order."""
    return [rid for rid, body in requirements(repo).items() if "MUST" in body]


def name_vectors(repo: Path) -> dict[str, Any]:
    vectors: dict[str, Any] = json.loads(
        (repo / "spec" / "vectors" / "names.json").read_text(encoding="utf-8")
    )
    return vectors
