"""Sections 1 and 5a: uncontended acquire+release, run by one program per language (Python twice: on the
compiled FFI and on cffi's ABI-mode fallback); and 10,000 lock objects open at once in one process of
each language under `ulimit -n 10100` (issue 14)."""

import json
import os
import resource
import subprocess
from typing import Any

from common import BENCH, PY, fresh_namespace, progress, ruby_env, run_json, uses_semaphore


def bench_uncontended(tmp: str, results: dict[str, Any]) -> None:
    progress("uncontended: Python (raw fcntl.flock, xlock, filelock, portalocker, fasteners, semaphores)")
    ns = fresh_namespace(tmp, "unc-py")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended")
    results["uncontended"]["python"] = run_json([PY, os.path.join(BENCH, "py_uncontended.py"), ns])
    progress("uncontended: Python on the ABI fallback (XLOCK_FFI=abi: raw fcntl.flock, xlock)")
    abi = results["uncontended"]["python-abi"] = bench_python_abi(fresh_namespace(tmp, "unc-py-abi"))
    if "skipped" in abi:
        results["skipped"]["python ABI fallback"] = abi["skipped"]
    progress("uncontended: C (raw flock, libxlock, sem_wait/sem_post)")
    ns = fresh_namespace(tmp, "unc-c")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended-c")
    results["uncontended"]["c"] = run_json([os.path.join(BENCH, "build", "uncontended"), ns])
    progress("uncontended: Ruby (raw File#flock, XLock)")
    ns = fresh_namespace(tmp, "unc-rb")
    for kind in "lsp":
        uses_semaphore(kind, ns, "bench-uncontended-rb")
    results["uncontended"]["ruby"] = run_json(
        ["ruby", os.path.join(BENCH, "rb_uncontended.rb"), ns], env=ruby_env()
    )


def bench_python_abi(ns: str) -> dict[str, Any]:
    """The reused-lock pairs again with XLOCK_FFI=abi, which forces cffi's ABI mode (issue 14: <= 3x the
    raw pair there); {"skipped": why} unless the child's xlock.build_info() says it really ran in ABI mode."""
    env = dict(os.environ, XLOCK_FFI="abi")
    got: dict[str, Any] = run_json(
        [PY, os.path.join(BENCH, "py_uncontended.py"), ns, "raw", "xlock", "xlock-timed"], env=env
    )
    info = got.get("build_info", {})
    if info.get("ffi") != "abi":
        why = info.get("error") or "xlock.build_info() in the XLOCK_FFI=abi child says ffi={!r}".format(
            info.get("ffi")
        )
        return {"skipped": why, "build_info": info}
    return got


OBJECTS = 10000
FD_LIMIT = 10100


def limit_fds() -> None:
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (FD_LIMIT, max(FD_LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    )


def bench_objects(tmp: str, results: dict[str, Any], quick: bool) -> None:
    """Each language's program opens OBJECTS lock objects at once under the limit, twice in one namespace
    (the first run creates the files); the second run is reported."""
    argv = {
        "c": [os.path.join(BENCH, "build", "uncontended")],
        "python": [PY, os.path.join(BENCH, "py_uncontended.py")],
        "ruby": ["ruby", os.path.join(BENCH, "rb_uncontended.rb")],
    }
    results["objects"] = {}
    for lang, prog in argv.items():
        progress(f"10,000 lock objects at once under ulimit -n {FD_LIMIT}: {lang}")
        ns = fresh_namespace(tmp, "objects-" + lang)
        got = None
        for _ in range(1 if quick else 2):
            out = subprocess.run(
                [*prog, ns, "objects", str(OBJECTS)],
                check=False,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=limit_fds,
                env=ruby_env() if lang == "ruby" else None,
            )
            lines = out.stdout.strip().splitlines()
            got = json.loads(lines[-1]) if lines else {"objects": 0, "wanted": OBJECTS, "error": "no output"}
        results["objects"][lang] = got
