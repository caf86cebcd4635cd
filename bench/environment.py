"""What exists on this machine: builds the C and Ruby parts, probes the drivers, describes the host."""

import os
import platform
import shutil
import subprocess
import tempfile
import time
from typing import Any

import handoff
from common import BENCH, PY, ROOT, ruby_env, unlink_semaphores, uses_semaphore


def probe_drivers() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The bindings' protocol drivers that answer hello with the ``clock`` capability."""
    candidates = {
        "python": [PY, "-m", "xlock.driver"],
        "c": [os.path.join(ROOT, "c", "build", "xlock-driver")],
        "ruby": ["ruby", os.path.join(ROOT, "ruby", "exe", "xlock-driver")],
    }
    drivers: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, argv in candidates.items():
        env = ruby_env() if name == "ruby" else None
        if name == "c" and not os.access(argv[0], os.X_OK):
            skipped[name] = "c/build/xlock-driver is not built"
            continue
        try:
            actor = handoff.Actor(argv, env=env, label=name + " driver")
        except Exception as e:
            skipped[name] = f"driver did not start: {e}"
            continue
        caps = actor.capabilities
        try:
            if "clock" not in caps:
                skipped[name] = f"driver lacks the clock capability (has {sorted(caps)})"
                continue
            ns = tempfile.mkdtemp(prefix="xlock-bench-probe-")
            try:  # one real round, so a driver that has not fully landed is skipped, not a failure
                uses_semaphore("l", ns, "probe")
                h = actor.call("open", kind="lock", name="probe", namespace=ns)["handle"]
                actor.call("acquire", handle=h, timeout_ms=1000)
                actor.call("release", handle=h)
            except handoff.ActorError as e:
                skipped[name] = f"driver cannot lock yet: {e}"
                continue
            finally:
                unlink_semaphores()
                shutil.rmtree(ns, ignore_errors=True)
        finally:
            actor.close()
        drivers[name] = {"argv": argv, "env": env, "caps": caps}
    return drivers, skipped


def build_c(skipped: dict[str, str]) -> bool:
    """Build libxlock and its driver (c/, into c/build/), then bench's C programs against it."""
    if os.path.exists(os.path.join(ROOT, "c", "Makefile")):
        for target in ("lib", "driver"):
            done = subprocess.run(
                ["make", "-s", "-C", os.path.join(ROOT, "c"), target], capture_output=True, text=True
            )
            if done.returncode != 0:
                skipped[f"make -C c {target}"] = "failed: {}".format(
                    (done.stderr.strip().splitlines() or ["?"])[-1]
                )
    subprocess.run(["make", "-s", "-C", BENCH], check=True)
    return os.path.exists(os.path.join(ROOT, "c", "build", "libxlock.a"))


def build_ruby(skipped: dict[str, str]) -> None:
    """Build the Ruby extension in place (ruby/lib/xlock/xlock_ext.so) as `rake compile` does."""
    script = os.path.join(ROOT, "ruby", "bin", "build-ext")
    if os.path.exists(script):
        done = subprocess.run([script], capture_output=True, text=True, cwd=os.path.join(ROOT, "ruby"))
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            skipped["ruby/bin/build-ext"] = f"failed: {last}"


def python_has_xlock() -> bool:
    return subprocess.run([PY, "-c", "import xlock; xlock.Lock"], capture_output=True).returncode == 0


def ruby_has_xlock() -> bool:
    return (
        subprocess.run(
            ["ruby", "-e", "require 'xlock'; XLock::Lock"], capture_output=True, env=ruby_env()
        ).returncode
        == 0
    )


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_idle(max_seconds: float) -> None:
    """Wait up to max_seconds for the 1-minute load average to drop below 0.5 (other jobs to finish)."""
    deadline = time.monotonic() + max_seconds
    while loadavg() >= 0.5 and time.monotonic() < deadline:
        time.sleep(5)


def checkout() -> str:
    """The commit measured, with "+changes" when the working tree differs from it."""
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
