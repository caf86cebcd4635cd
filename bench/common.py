"""What every part of the benchmark run shares: paths, progress lines, namespaces, semaphore cleanup."""

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PY = sys.executable


def progress(msg: str) -> None:
    print("[bench {}] {}".format(time.strftime("%H:%M:%S"), msg), flush=True)


def run_json(argv: list[str], **kw: Any) -> Any:
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout
    return json.loads(out.strip().splitlines()[-1])


def fresh_namespace(root: str, label: str) -> str:
    path = tempfile.mkdtemp(prefix=label + "-", dir=root)  # mode 0700, owned by us: a valid namespace
    return path


# Raw POSIX semaphores the run makes xlock create, as (kind, namespace, name): the benchmark removes its
# own before deleting the namespaces, by computing their names with xlock's pure mapping (XL-SEM-6).
# Locks and counting semaphores create nothing in /dev/shm in draft 2 (XL-SEM-2: no doorbells), so
# only kind "p" is kept.
SEMAPHORES: list[tuple[str, str, str]] = []


def uses_semaphore(kind: str, namespace: str, name: str) -> None:
    if kind == "p":
        SEMAPHORES.append((kind, namespace, name))


def unlink_semaphores() -> None:
    try:
        from xlock.names import semaphore_name
    except ImportError:
        return
    removed = 0
    for kind, namespace, name in SEMAPHORES:
        try:
            st = os.stat(namespace)
            os.unlink("/dev/shm/sem." + semaphore_name(kind, st.st_dev, st.st_ino, name).lstrip("/"))
            removed += 1
        except FileNotFoundError:
            pass
    if SEMAPHORES:
        progress(
            f"removed {removed} of the {len(SEMAPHORES)} POSIX semaphores xlock may have created for the run"
        )
    del SEMAPHORES[:]


def ruby_env() -> dict[str, str]:
    env = dict(os.environ)
    rubylib = os.path.join(ROOT, "ruby", "lib")
    env["RUBYLIB"] = rubylib + (":" + env["RUBYLIB"] if env.get("RUBYLIB") else "")
    return env
