"""A child process for tests: reads one JSON command per line, replies one JSON line per command.

Commands: {"op": "lock", "ns": ..., "name": ..., "shared": false, "timeout": null} -> {"ok": true,
"mono_ns": ...}; {"op": "release"}; {"op": "sem", "ns", "name", "capacity"} -> {"slot": i};
{"op": "sem_release"}; {"op": "exit"}. Errors reply {"ok": false, "error": KIND}.
"""

from __future__ import annotations

import json
import sys
import time

import xlock


def main() -> None:
    held: list[object] = []
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        reply: dict[str, object] = {"ok": True}
        try:
            if op == "lock":
                lock = xlock.Lock(cmd["name"], namespace=cmd["ns"], shared=cmd.get("shared", False))
                if not lock.acquire(timeout=cmd.get("timeout")):
                    raise xlock.Timeout(f"lock {cmd['name']!r} not acquired")
                reply["mono_ns"] = time.monotonic_ns()
                held.append(lock)
            elif op == "sem":
                sem = xlock.Semaphore(cmd["name"], cmd["capacity"], namespace=cmd["ns"])
                if not sem.acquire(timeout=cmd.get("timeout")):
                    raise xlock.Timeout(f"semaphore {cmd['name']!r}: no permit")
                reply["slot"] = sem.slot
                reply["mono_ns"] = time.monotonic_ns()
                held.append(sem)
            elif op == "release":
                obj = held.pop()
                reply["mono_ns"] = time.monotonic_ns()
                obj.release()  # type: ignore[attr-defined]
            elif op == "exit":
                break
        except xlock.XLockError as exc:
            reply = {"ok": False, "error": exc.kind, "message": str(exc)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
