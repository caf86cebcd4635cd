"""Packaging only: every setting is in pyproject.toml, but for two things it cannot say.

The compiled module ``xlock._xlock_c`` (cffi out-of-line API mode, src/xlock/_ffi_build.py) is built when
a C compiler is present; without one the build goes on with one line on stderr, and xlock uses cffi's ABI
mode at run time (``xlock.build_info()`` says which).

The sdist carries a copy of the spec's test vectors
(../spec/vectors in the checkout) as spec/vectors, so that its tests run without a checkout around
it (tests/conftest.py looks there when ../spec is absent).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
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


class OptionalBuildExt(build_ext):
    """The compiled module is a speed-up, not a requirement: no compiler (or a failed compile) leaves the
    ABI-mode fallback, said once."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # distutils' CompileError, PlatformError, ExecError, cffi's errors
            self._skipped(exc)

    def build_extension(self, ext: object) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._skipped(exc)

    @staticmethod
    def _skipped(exc: BaseException) -> None:
        print(f"xlock: compiled module not built ({exc}); cffi ABI mode will be used", file=sys.stderr)


setup(
    cmdclass={"sdist": SdistWithVectors, "build_ext": OptionalBuildExt},
    cffi_modules=["src/xlock/_ffi_build.py:ffibuilder"],
)
