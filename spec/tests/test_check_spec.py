"""The spec checker must reject malformed vectors and unknown requirement IDs (it has teeth)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNKNOWN_NAME_ID = "XL-" + "NAME-999"  # built so this file cites no unknown ID
UNKNOWN_CODE_ID = "XL-" + "BOGUS-1"
ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "spec" / "tools" / "check_spec.py"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "spec", tmp_path / "spec", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), "--root", str(root)], capture_output=True, text=True, check=False
    )


def test_pristine_copy_passes(tree: Path) -> None:
    result = run(tree)
    assert result.returncode == 0, result.stdout


def test_malformed_vector_fails(tree: Path) -> None:
    path = tree / "spec" / "vectors" / "names.json"
    data = json.loads(path.read_text())
    del data["cases"][0]["lock_file"]
    path.write_text(json.dumps(data))
    result = run(tree)
    assert result.returncode == 1
    assert "names.json: cases/0" in result.stdout


def test_vector_that_is_not_json_fails(tree: Path) -> None:
    (tree / "spec" / "vectors" / "errors.json").write_text("{not json")
    result = run(tree)
    assert result.returncode == 1
    assert "errors.json: not JSON" in result.stdout


def test_unknown_id_cited_in_a_vector_fails(tree: Path) -> None:
    path = tree / "spec" / "vectors" / "names.json"
    data = json.loads(path.read_text())
    data["cases"][3]["spec"].append(UNKNOWN_NAME_ID)
    path.write_text(json.dumps(data))
    result = run(tree)
    assert result.returncode == 1
    assert f"unknown requirement {UNKNOWN_NAME_ID}" in result.stdout


def test_unknown_id_cited_in_code_fails(tree: Path) -> None:
    (tree / "python").mkdir()
    (tree / "python" / "mod.py").write_text(f"# see [{UNKNOWN_CODE_ID}]\n")
    result = run(tree)
    assert result.returncode == 1
    assert f"python/mod.py:1: cites unknown requirement {UNKNOWN_CODE_ID}" in result.stdout


def test_duplicate_definition_fails(tree: Path) -> None:
    spec = tree / "spec" / "xlock-1.md"
    spec.write_text(spec.read_text() + "\n- [XL-NAME-1] again.\n")
    result = run(tree)
    assert result.returncode == 1
    assert "XL-NAME-1 is defined more than once" in result.stdout


def _report(stdout: str) -> dict[str, str]:
    """The per-binding lines of the uncited-MUST report: binding -> the rest of its line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("MUST requirements no test cites"))
    out = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        binding, _, rest = line.strip().partition(":")
        out[binding] = rest.strip()
    return out


def test_uncited_must_report_per_binding(tree: Path) -> None:
    # A tiny fixture: the python binding's tests cite two MUST requirements, c's tests cite every one of
    # them, ruby has no tests, and a citation outside a test directory does not count.
    spec_text = (tree / "spec" / "xlock-1.md").read_text()
    sys.path.insert(0, str(CHECKER.parent))
    try:
        import check_spec
    finally:
        sys.path.pop(0)
    musts = check_spec.must_ids(spec_text)
    assert "XL-NS-1" in musts and "XL-LOCK-8" in musts and "XL-NAME-1" not in musts  # NAME-1 says no MUST
    (tree / "python" / "tests").mkdir(parents=True)
    (tree / "python" / "tests" / "test_a.py").write_text("# [XL-NS-1] and [XL-LOCK-8], [XL-NAME-1]\n")
    (tree / "python" / "src").mkdir()
    (tree / "python" / "src" / "impl.py").write_text("# " + " ".join(musts) + "\n")  # not a test
    (tree / "c" / "tests").mkdir(parents=True)
    (tree / "c" / "tests" / "test_all.c").write_text("/* " + " ".join(musts) + " */\n")
    result = run(tree)
    assert result.returncode == 0, result.stdout  # a report, never a failure
    report = _report(result.stdout)
    py_missing = report["python"].split("uncited")[1].split()
    assert py_missing == [i for i in musts if i not in ("XL-NS-1", "XL-LOCK-8")]
    assert report["python"].startswith(f"{len(musts) - 2} uncited")
    assert report["c"] == "0 uncited  none"
    assert report["ruby"] == "(no tests at ruby/test)"
    assert report["conformance"] == "(no tests at conformance/xlock_conformance/cases)"
