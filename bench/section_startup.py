"""Section 1b: start-up of fresh processes (issue 14): `python -c 'import xlock'` on the compiled FFI and
the CLI's `xlock path NAME`, wall time including interpreter start, interleaved with `python -c pass`
measured in the same run; and the import alone, from `python -X importtime`."""

import json
import os
import statistics
import subprocess
import time
from typing import Any, Optional

from common import PY, fresh_namespace, progress

RUNS = 21
NAME = "bench-startup"


def cli_argv() -> tuple[list[str], str]:
    """The CLI as a user of the bench environment runs it: its installed `xlock` script, else -m."""
    script = os.path.join(os.path.dirname(PY), "xlock")
    if os.access(script, os.X_OK):
        return [script], f"the installed script {script}"
    return [PY, "-m", "xlock"], f"{os.path.basename(PY)} -m xlock (no installed xlock script)"


def wall_ns(argv: list[str], env: dict[str, str], cwd: str) -> tuple[int, str]:
    """One fresh process: its wall time from spawn to exit, and its stderr; raises if it fails."""
    t0 = time.perf_counter_ns()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    took = time.perf_counter_ns() - t0
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError("{} exited with {}: {}".format(" ".join(argv), done.returncode, last))
    return took, done.stderr


def importtime_us(stderr: str) -> Optional[int]:
    """The cumulative microseconds of `xlock` in `python -X importtime`'s report (None if absent)."""
    for line in stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == "xlock" and parts[1].isdigit():
            return int(parts[1])
    return None


def ffi_of(env: dict[str, str], cwd: str) -> dict[str, str]:
    done = subprocess.run(
        [PY, "-c", "import json, xlock; print(json.dumps(xlock.build_info()))"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["import xlock failed"])[-1]}
    info: dict[str, str] = json.loads(done.stdout)
    return info


def bench_startup(tmp: str, results: dict[str, Any]) -> None:
    """RUNS rounds, each one fresh process of every command in turn (after one unmeasured warm-up
    round, which also writes the byte-code caches); the medians go to results["startup"]."""
    progress(f"start-up: python -c pass, python -c 'import xlock', xlock path NAME ({RUNS} rounds)")
    ns = fresh_namespace(tmp, "startup")
    env = {k: v for k, v in os.environ.items() if k != "XLOCK_FFI"}  # the compiled path, if built
    env["XLOCK_NAMESPACE"] = ns
    cli, cli_how = cli_argv()
    commands = {
        "baseline": [PY, "-c", "pass"],
        "import": [PY, "-c", "import xlock"],
        "cli": [*cli, "path", NAME],
        "importtime": [PY, "-X", "importtime", "-c", "import xlock"],
    }
    out: dict[str, Any] = {
        "runs": RUNS,
        "python": PY,
        "cli": cli_how,
        "build_info": ffi_of(env, ns),
        "commands": {},
    }
    live: dict[str, list[str]] = {}
    for key, argv in commands.items():
        try:
            wall_ns(argv, env, ns)
            live[key] = argv
            out["commands"][key] = {"argv": argv, "wall_ms": []}
        except RuntimeError as e:
            out["commands"][key] = {"argv": argv, "skipped": str(e)}
    imported: list[int] = []
    for _ in range(RUNS):
        for key, argv in live.items():
            took, stderr = wall_ns(argv, env, ns)
            out["commands"][key]["wall_ms"].append(took / 1e6)
            if key == "importtime":
                us = importtime_us(stderr)
                if us is not None:
                    imported.append(us)
    for key in live:
        got = out["commands"][key]
        got["median_ms"] = statistics.median(got["wall_ms"])
        got["min_ms"] = min(got["wall_ms"])
    out["importtime_median_us"] = statistics.median(imported) if imported else None
    results["startup"] = out
