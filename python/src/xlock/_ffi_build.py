"""Build script of the compiled module ``xlock._xlock_c`` (cffi out-of-line API mode).

setup.py passes it to cffi as ``cffi_modules``; cffi runs it as a file (not imported), so it reads the
declarations from ``_cdef.py`` beside it by path. Run by hand to build in place:
``python src/xlock/_ffi_build.py`` (writes ``src/xlock/_xlock_c*.so``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cffi

_HERE = Path(__file__).resolve().parent


def _declarations() -> dict[str, Any]:
    scope: dict[str, Any] = {"__name__": "xlock._cdef"}
    exec(compile((_HERE / "_cdef.py").read_text(), str(_HERE / "_cdef.py"), "exec"), scope)
    return scope


_d = _declarations()
ffibuilder = cffi.FFI()
ffibuilder.cdef(_d["ABI_CDEF"] + _d["API_CDEF"])
ffibuilder.set_source(_d["MODULE"], f"#define XL_C_VERSION {_d['C_VERSION']}\n" + _d["C_SOURCE"])

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(_HERE.parent), verbose=True)
