"""Hand-off between two processes, measured through drivers that speak conformance/PROTOCOL.md.

Two actors share one lock. One holds it; the other is sent ``acquire`` and, once it is seen asleep in
the kernel (``/proc/PID/syscall``), the holder is sent ``release``. The delay is the waiter's ``mono_ns``
(right after its acquisition) minus the holder's ``mono_ns`` (right before its release system call):
CLOCK_MONOTONIC is system-wide, so the two stamps compare directly. Then the roles swap.
"""

import json
import os
import platform
import random
import statistics
import subprocess
import time
from typing import Any, Optional

# System calls an idle actor sleeps in while it waits for its next request line, per architecture.
IDLE_SYSCALLS = {
    "x86_64": {0, 7, 23, 232, 270, 271, 281},  # read, poll, select, epoll_wait, pselect6, ppoll, epoll_pwait
    "aarch64": {63, 72, 73, 22},  # read, pselect6, ppoll, epoll_pwait
}[platform.machine()]
BLOCKED_DEADLINE_S = 10.0
# The two actors of a ping-pong are pinned to two different CPUs, so every hand-off is the same kind
# of event (a wake-up on the other CPU), whichever way the scheduler would have placed them.
CPUS = sorted(os.sched_getaffinity(0))


class ActorError(RuntimeError):
    pass


class Actor:
    """One driver process: ``request`` sends a line; ``reply`` reads the answer to it."""

    def __init__(
        self,
        argv: list[str],
        env: Optional[dict[str, str]] = None,
        label: Optional[str] = None,
        cpu: Optional[int] = None,
    ) -> None:
        self.label = label or " ".join(argv)
        pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1, preexec_fn=pin
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None  # both are pipes
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.next_id = 0
        hello = self.call("hello", protocol=1)
        self.pid = hello["pid"]
        self.capabilities = set(hello.get("capabilities", ()))

    def send(self, op: str, **args: Any) -> int:
        self.next_id += 1
        self.stdin.write(json.dumps(dict(id=self.next_id, op=op, **args)) + "\n")
        self.stdin.flush()
        return self.next_id

    def reply(self, want_id: int) -> Any:
        line = self.stdout.readline()
        if not line:
            raise ActorError(f"{self.label} exited (status {self.proc.wait()})")
        msg = json.loads(line)
        if msg.get("id") != want_id:
            raise ActorError(f"{self.label}: reply {msg!r} to request {want_id}")
        if not msg.get("ok"):
            raise ActorError("{}: {}: {}".format(self.label, msg.get("error"), msg.get("message")))
        return msg

    def call(self, op: str, **args: Any) -> Any:
        return self.reply(self.send(op, **args))

    def wait_blocked(self) -> None:
        """Return once the actor's main thread sleeps in a system call other than reading stdin."""
        path = f"/proc/{self.pid}/task/{self.pid}/syscall"
        deadline = time.monotonic() + BLOCKED_DEADLINE_S
        while time.monotonic() < deadline:
            with open(path) as f:
                first = f.read().split()[0]
            if first not in ("running", "-1") and int(first) not in IDLE_SYSCALLS:
                return
            time.sleep(0)
        raise ActorError(f"{self.label} did not block in acquire within {BLOCKED_DEADLINE_S} s")

    def close(self) -> None:
        try:
            self.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def summarize(delays_ns: list[int]) -> dict[str, Any]:
    return {
        "n": len(delays_ns),
        "median_us": statistics.median(delays_ns) / 1000.0,
        "mean_us": statistics.fmean(delays_ns) / 1000.0,
        "max_us": max(delays_ns) / 1000.0,
    }


def ping_pong(
    cmd_a: list[str],
    cmd_b: list[str],
    namespace: str,
    rounds: int,
    timeout_ms: Optional[int] = None,
    kind: str = "lock",
    pause_ms: Optional[tuple[float, float]] = None,
    env: Optional[dict[str, str]] = None,
    name: str = "pingpong",
) -> list[int]:
    """Run ``rounds`` hand-offs between actors A and B and return the delays in nanoseconds.

    ``pause_ms`` = (lo, hi) holds the lock for a random extra time after the waiter is asleep, so a
    polling waiter is caught at a random point of its poll interval (the timed-wake-up benchmark).
    """
    rng = random.Random(12345)
    cpu_a, cpu_b = (CPUS[0], CPUS[1]) if len(CPUS) >= 2 else (None, None)
    a = Actor(cmd_a, env=env, cpu=cpu_a)
    try:
        b = Actor(cmd_b, env=env, cpu=cpu_b)
        try:
            open_args: dict[str, Any] = {"kind": kind, "name": name, "namespace": namespace}
            if kind == "semaphore":
                open_args["capacity"] = 1
            if kind == "posix_semaphore":
                open_args["value"] = 1
            ha = a.call("open", **open_args)["handle"]
            hb = b.call("open", **open_args)["handle"]
            acq_args = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
            a.call("acquire", handle=ha, **acq_args)
            holder, waiter = (a, ha), (b, hb)
            delays = []
            for _ in range(rounds):
                (h, hh), (w, wh) = holder, waiter
                wid = w.send("acquire", handle=wh, **acq_args)
                w.wait_blocked()
                if pause_ms:
                    time.sleep(rng.uniform(*pause_ms) / 1000.0)
                t_release = h.call("release", handle=hh)["mono_ns"]
                t_acquired = w.reply(wid)["mono_ns"]
                delays.append(t_acquired - t_release)
                holder, waiter = waiter, holder
            holder[0].call("release", handle=holder[1])
            return delays
        finally:
            b.close()
    finally:
        a.close()


def unlink_posix_semaphore(name: str) -> None:
    try:
        os.unlink("/dev/shm/sem." + name.lstrip("/"))
    except FileNotFoundError:
        pass
