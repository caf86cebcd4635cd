"""Which path reaches libc: the compiled module (cffi API mode) when it was built, else cffi's ABI mode,
chosen at import without a warning; ``XLOCK_FFI=abi`` forces ABI mode (tox -e py-abi runs every test so)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import xlock

INFO = "import json, xlock; print(json.dumps(xlock.build_info()))"


def _info(**env: str) -> tuple[dict[str, str], str]:
    import json

    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", INFO],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout), done.stderr


def test_build_info_says_which_path_is_in_use() -> None:
    info = xlock.build_info()
    assert info["ffi"] in ("compiled", "abi")
    assert info["spec"] == xlock.SPEC_VERSION and info["version"] == xlock.__version__
    if os.environ.get("XLOCK_FFI") == "abi":
        assert info == {**info, "ffi": "abi", "reason": "XLOCK_FFI=abi"}
    elif shutil.which("cc") or shutil.which("gcc"):
        # pip install builds the compiled module where a C compiler is present
        assert info["ffi"] == "compiled", info.get("reason")


def test_abi_mode_is_chosen_quietly_and_forced_by_the_environment() -> None:
    info, stderr = _info(XLOCK_FFI="abi")
    assert info["ffi"] == "abi" and "XLOCK_FFI=abi" in info["reason"]
    assert stderr == ""
    info, stderr = _info(XLOCK_FFI="")
    assert info["ffi"] in ("compiled", "abi") and stderr == ""
