"""Packaging only: every setting is in pyproject.toml.

The one thing pyproject.toml cannot say: the package carries what the suite reads from the spec
(spec/xlock-1.md for the requirement IDs, spec/vectors/*.json and their schemas) as
xlock_conformance/data/spec/, so an installed `xlock-conformance` works with no checkout around it.
They are copied from the checkout's ../spec (or, building from an sdist, from the sdist's spec/).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
SPEC_FILES = ("xlock-1.md", "vectors/*.json", "vectors/schema/*.json")


def spec_source() -> Path:
    for cand in (HERE.parent / "spec", HERE / "spec"):
        if (cand / "xlock-1.md").is_file() and (cand / "vectors" / "names.json").is_file():
            return cand
    raise SystemExit("xlock-conformance: spec/ not found (build from an xlock checkout or its sdist)")


def copy_spec(dest: Path) -> None:
    src = spec_source()
    for pattern in SPEC_FILES:
        for f in sorted(src.glob(pattern)):
            target = dest / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)


class BuildPyWithSpec(build_py):
    def run(self) -> None:
        super().run()
        copy_spec(Path(self.build_lib) / "xlock_conformance" / "data" / "spec")


class SdistWithSpec(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        copy_spec(Path(base_dir) / "spec")


setup(cmdclass={"build_py": BuildPyWithSpec, "sdist": SdistWithSpec})
