"""A benchmark actor that speaks a subset of the xlock driver protocol (conformance/PROTOCOL.md).

It lets the hand-off benchmarks drive the baselines exactly like the bindings' drivers:
``python bench/actor.py IMPL`` where IMPL is one of

  raw          fcntl.flock(fd, LOCK_EX) on an open descriptor (blocking only)
  raw-recheck  raw, plus the re-check of XL-LOCK-8 after each acquisition (os.fstat of the
               descriptor, st_nlink > 0): the spec's floor in Python
  filelock     filelock.FileLock (polls every 50 ms, also when "blocking")
  portalocker  blocking: portalocker.Lock with LOCK_EX (a blocking flock);
               timed: portalocker.Lock default flags (LOCK_NB, polls every 250 ms)
  fasteners    fasteners.InterProcessLock (lockf, polls 10 ms growing to 100 ms)
  posix_ipc    posix_ipc.Semaphore, kind "posix_semaphore" only

Ops: hello, open (kind lock, or posix_semaphore for posix_ipc), acquire (timeout_ms optional),
release, exit. Replies carry ``mono_ns`` (CLOCK_MONOTONIC) taken right after an acquisition and right
before a release, as with the driver capability ``clock``. The lock file of ``name`` in ``namespace``
is ``namespace/name.lock`` (the benchmarks use plain ASCII names, for which xlock maps the same way).
"""

import fcntl
import json
import os
import sys
import time
from typing import Any, Optional

mono_ns = time.monotonic_ns


class RawFlock:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, timeout_s: Optional[float]) -> None:
        if timeout_s is not None:
            raise NotImplementedError("raw flock has no timed wait")
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


class RawFlockRecheck(RawFlock):
    def acquire(self, timeout_s: Optional[float]) -> None:
        super().acquire(timeout_s)
        if os.fstat(self.fd).st_nlink == 0:
            raise RuntimeError("lock file removed")


class FileLockPeer:
    def __init__(self, path: str) -> None:
        import filelock

        self.lock = filelock.FileLock(path)

    def acquire(self, timeout_s: Optional[float]) -> None:
        self.lock.acquire(timeout=-1 if timeout_s is None else timeout_s)

    def release(self) -> None:
        self.lock.release()


class PortalockerPeer:
    def __init__(self, path: str) -> None:
        import portalocker

        self.blocking = portalocker.Lock(path, "a", flags=portalocker.LockFlags.EXCLUSIVE, timeout=None)
        self.polling = portalocker.Lock(path, "a")
        self.held = None

    def acquire(self, timeout_s: Optional[float]) -> None:
        if timeout_s is None:
            self.held = self.blocking
            self.blocking.acquire()
        else:
            self.held = self.polling
            self.polling.acquire(timeout=timeout_s)

    def release(self) -> None:
        assert self.held is not None, "release without an acquire"
        self.held.release()


class FastenersPeer:
    def __init__(self, path: str) -> None:
        import fasteners

        self.lock = fasteners.InterProcessLock(path)

    def acquire(self, timeout_s: Optional[float]) -> None:
        if not self.lock.acquire(blocking=True, timeout=timeout_s):
            raise TimeoutError("fasteners: timeout")

    def release(self) -> None:
        self.lock.release()


class PosixIpcPeer:
    def __init__(self, name: str, value: int) -> None:
        import posix_ipc

        self.sem = posix_ipc.Semaphore("/xlbench-" + name, posix_ipc.O_CREAT, 0o600, value)

    def acquire(self, timeout_s: Optional[float]) -> None:
        self.sem.acquire(timeout_s)

    def release(self) -> None:
        self.sem.release()


LOCKS = {
    "raw": RawFlock,
    "raw-recheck": RawFlockRecheck,
    "filelock": FileLockPeer,
    "portalocker": PortalockerPeer,
    "fasteners": FastenersPeer,
}


def main() -> None:
    impl = sys.argv[1]
    objects: dict[str, Any] = {}
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        reply = {"id": req.get("id"), "ok": True}
        if op == "hello":
            reply.update(
                implementation="bench-" + impl,
                protocol=1,
                pid=os.getpid(),
                capabilities=["lock", "timeout", "clock", "posix_semaphore"],
            )
        elif op == "open":
            name = req["name"]
            obj: Any
            if req["kind"] == "posix_semaphore" and impl == "posix_ipc":
                obj = PosixIpcPeer(name, req.get("value", 1))
            elif req["kind"] == "lock" and impl in LOCKS:
                obj = LOCKS[impl](os.path.join(req["namespace"], name + ".lock"))
            else:
                reply = {
                    "id": req.get("id"),
                    "ok": False,
                    "error": "UNSUPPORTED",
                    "message": "{} cannot open kind {}".format(impl, req["kind"]),
                }
                obj = None
            if obj is not None:
                handle = f"h{len(objects) + 1}"
                objects[handle] = obj
                reply["handle"] = handle
        elif op == "acquire":
            timeout_ms = req.get("timeout_ms")
            objects[req["handle"]].acquire(None if timeout_ms is None else timeout_ms / 1000.0)
            reply["mono_ns"] = mono_ns()
        elif op == "release":
            obj = objects[req["handle"]]
            reply["mono_ns"] = mono_ns()
            obj.release()
        elif op == "exit":
            out.write(json.dumps(reply) + "\n")
            out.flush()
            return
        else:
            reply = {"id": req.get("id"), "ok": False, "error": "UNSUPPORTED", "message": "op " + op}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
