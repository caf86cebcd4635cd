"""Write or check one generated vector file: the shared `main` of gen_vectors.py and gen_pg_keys.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_or_check(out: Path, data: dict[str, Any], cases: int, generator: str, argv: list[str]) -> int:
    """With ``--check`` in argv: 1 if ``out`` differs from ``data`` rendered, else 0. Otherwise rewrite it."""
    text = json.dumps(data, ensure_ascii=True, indent=1) + "\n"
    if "--check" in argv:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is not what {generator} produces: run python spec/tools/{generator}")
            return 1
        print(f"{out.name}: up to date, {cases} cases")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({cases} cases)")
    return 0
