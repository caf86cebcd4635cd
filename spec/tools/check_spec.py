"""Check the spec's own consistency (run by `tox -e spec`).

1. Every `vectors/*.json` validates against `vectors/schema/<stem>.schema.json`.
2. `vectors/names.json` is exactly what `gen_vectors.py` produces.
3. Every requirement ID is defined once in `xlock-1.md`.
4. Every requirement ID cited anywhere in the repository (spec, vectors, bindings, conformance) is defined.
5. A report, not a failure: per binding (python/, c/, ruby/, conformance/), the MUST requirements that no
   test of that binding cites.

    python spec/tools/check_spec.py [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema

DEFINITION = re.compile(r"^\s*- \[(XL-[A-Z]+-[0-9]+)\]", re.M)
CITATION = re.compile(r"XL-[A-Z]+-[0-9]+")
SCANNED_DIRS = ("spec", "python", "c", "ruby", "conformance")
SCANNED_SUFFIXES = {".md", ".json", ".py", ".c", ".h", ".rb", ".txt", ".toml", ".ini", ".in"}
SKIPPED_PARTS = {".tox", ".git", "build", "dist", "__pycache__", ".venv", "tmp", ".mypy_cache"}
# A requirement bullet with its continuation lines: the text up to the next bullet or unindented line.
BULLET = re.compile(r"^\s*- \[(XL-[A-Z]+-[0-9]+)\](.*?)(?=^\s*- \[|^\S|\Z)", re.M | re.S)
TEST_SUFFIXES = SCANNED_SUFFIXES | {".sh"}
# Where each binding keeps its tests; a citation anywhere under these counts for that binding.
BINDING_TESTS = {
    "python": ("python/tests",),
    "c": ("c/tests",),
    "ruby": ("ruby/test",),
    "conformance": ("conformance/xlock_conformance/cases",),
}


def defined_ids(spec_text: str) -> tuple[set[str], list[str]]:
    seen: set[str] = set()
    dupes: list[str] = []
    for m in DEFINITION.finditer(spec_text):
        if m.group(1) in seen:
            dupes.append(m.group(1))
        seen.add(m.group(1))
    return seen, dupes


def check_vectors(spec_dir: Path) -> list[str]:
    errors: list[str] = []
    vectors = spec_dir / "vectors"
    files = sorted(vectors.glob("*.json"))
    if not files:
        errors.append(f"no vectors in {vectors}")
    for path in files:
        schema_path = vectors / "schema" / f"{path.stem}.schema.json"
        if not schema_path.exists():
            errors.append(f"{path.name}: no schema at {schema_path}")
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            errors.append(f"{path.name}: not JSON: {exc}")
            continue
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in err.absolute_path) or "(top)"
            errors.append(f"{path.name}: {where}: {err.message}")
    return errors


def scanned_files(root: Path, dirs: tuple[str, ...], suffixes: set[str]) -> Iterator[tuple[Path, str]]:
    """(path, text) of every file under `dirs` (relative to `root`) with one of `suffixes`, in order,
    outside SKIPPED_PARTS (build output, caches, virtualenvs)."""
    for top in dirs:
        base = root / top
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.suffix not in suffixes:
                continue
            if SKIPPED_PARTS.intersection(path.relative_to(root).parts):
                continue
            yield path, path.read_text(encoding="utf-8", errors="replace")


def check_ids(root: Path, ids: set[str]) -> list[str]:
    errors: list[str] = []
    for path, text in scanned_files(root, SCANNED_DIRS, SCANNED_SUFFIXES):
        for lineno, line in enumerate(text.splitlines(), 1):
            for cited in CITATION.findall(line):
                if cited not in ids:
                    errors.append(f"{path.relative_to(root)}:{lineno}: cites unknown requirement {cited}")
    return errors


def must_ids(spec_text: str) -> list[str]:
    """Requirement IDs whose bullet says MUST (or MUST NOT), in spec order."""
    return [m.group(1) for m in BULLET.finditer(spec_text) if "MUST" in m.group(2)]


def cited_ids(root: Path, dirs: tuple[str, ...]) -> set[str]:
    """Every requirement ID cited in the files under `dirs` (relative to `root`)."""
    found: set[str] = set()
    for _, text in scanned_files(root, dirs, TEST_SUFFIXES):
        found.update(CITATION.findall(text))
    return found


def uncited_report(root: Path, spec_text: str) -> list[str]:
    """Per binding, the MUST requirements no test of that binding cites (a report, never a failure)."""
    musts = must_ids(spec_text)
    lines = [f"MUST requirements no test cites, per binding ({len(musts)} MUST requirements):"]
    for binding, dirs in BINDING_TESTS.items():
        if not any((root / d).exists() for d in dirs):
            lines.append(f"  {binding + ':':13} (no tests at {', '.join(dirs)})")
            continue
        cited = cited_ids(root, dirs)
        missing = [i for i in musts if i not in cited]
        lines.append(f"  {binding + ':':13} {len(missing):2} uncited  {' '.join(missing) or 'none'}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parents[2],
        help="repository root (default: this checkout)",
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    spec_dir = root / "spec"
    ids, dupes = defined_ids((spec_dir / "xlock-1.md").read_text(encoding="utf-8"))
    errors = [f"xlock-1.md: requirement {d} is defined more than once" for d in dupes]
    errors += check_vectors(spec_dir)
    errors += check_ids(root, ids)
    if root.resolve() == Path(__file__).resolve().parents[2]:
        sys.path.insert(0, str(Path(__file__).parent))
        import gen_vectors

        if gen_vectors.main(["--check"]) != 0:
            errors.append("vectors/names.json differs from gen_vectors.py output")
        import gen_pg_keys

        if gen_pg_keys.main(["--check"]) != 0:
            errors.append("vectors/pg_keys.json differs from gen_pg_keys.py output")
    for line in uncited_report(root, (spec_dir / "xlock-1.md").read_text(encoding="utf-8")):
        print(line)
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        print(f"spec check: {len(errors)} problem(s)")
        return 1
    print(f"spec check: ok ({len(ids)} requirements defined)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
