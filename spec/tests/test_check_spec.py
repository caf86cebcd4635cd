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
    return subprocess.run([sys.executable, str(CHECKER), "--root", str(root)],
                          capture_output=True, text=True, check=False)


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
