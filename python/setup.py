"""Packaging only: every setting is in pyproject.toml.

The one thing pyproject.toml cannot say: the sdist carries a copy of the spec's test vectors
(../spec/vectors in the checkout) as spec/vectors, so that its tests run without a checkout around
it (tests/conftest.py looks there when ../spec is absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent


class SdistWithVectors(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        # The checkout's vectors, or (an sdist built from an unpacked sdist) the copy beside us.
        for src in (HERE.parent / "spec" / "vectors", HERE / "spec" / "vectors"):
            if (src / "names.json").is_file():
                shutil.copytree(
                    src, Path(base_dir) / "spec" / "vectors", ignore=shutil.ignore_patterns("__pycache__")
                )
                return
        raise SystemExit("xlock sdist: spec/vectors not found (build from an xlock checkout or its sdist)")


setup(cmdclass={"sdist": SdistWithVectors})
