"""Uncontended acquire+release in Python: xlock and its peers against a bare fcntl.flock pair.

``python bench/py_uncontended.py NAMESPACE [IMPL...]`` prints one JSON object: for each implementation
the median nanoseconds per acquire+release pair over several repeats, each repeat long enough
(about 40 ms) for the clock to be irrelevant; the repeats of all implementations are interleaved. Key
``build_info`` holds ``xlock.build_info()`` (which FFI the measured xlock used: ``XLOCK_FFI=abi`` in the
environment forces cffi's ABI mode), or ``{"error": ...}`` when xlock cannot be imported.
``python bench/py_uncontended.py NAMESPACE --pairs N IMPL`` just runs N pairs (for cProfile, py-spy,
strace -c). An implementation that cannot be imported is left out.
"""

import fcntl
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

# One measured loop: n acquire+release pairs.
Loop = Callable[[int], None]

REPEATS = 7
REPEAT_NS = 40_000_000


def raw_flock(ns: str) -> Loop:
    fd = os.open(os.path.join(ns, "raw.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    flock, ex, un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN

    def loop(n: int) -> None:
        for _ in range(n):
            flock(fd, ex)
            flock(fd, un)

    return loop


def spec_floor(ns: str) -> Loop:
    """The flock pair plus the re-check of XL-LOCK-8: the descriptor still has a name (st_nlink > 0)."""
    fd = os.open(os.path.join(ns, "raw.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    flock, ex, un, fstat = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN, os.fstat

    def loop(n: int) -> None:
        for _ in range(n):
            flock(fd, ex)
            if fstat(fd).st_nlink == 0:
                raise AssertionError("lock file removed")
            flock(fd, un)

    return loop


def path_recheck(ns: str) -> Loop:
    """For comparison: the stricter path check XL-LOCK-8 allows (os.stat of the name, dev and ino)."""
    fd = os.open(os.path.join(ns, "raw.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    dirfd = os.open(ns, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    st = os.fstat(fd)
    ident = (st.st_dev, st.st_ino)
    flock, ex, un, stat = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN, os.stat

    def loop(n: int) -> None:
        for _ in range(n):
            flock(fd, ex)
            now = stat("raw.lock", dir_fd=dirfd, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != ident:
                raise AssertionError("lock file replaced")
            flock(fd, un)

    return loop


def pair_loop(acquire: Callable[[], object], release: Callable[[], object]) -> Loop:
    def loop(n: int) -> None:
        for _ in range(n):
            acquire()
            release()

    return loop


def xlock_lock(ns: str) -> Loop:
    import xlock

    lock = xlock.Lock("bench-uncontended", namespace=ns)
    return pair_loop(lock.acquire, lock.release)


def raw_cycle(ns: str) -> Loop:
    """The raw cycle an object per use is compared with: open + flock + flock(LOCK_UN) + close."""
    path = os.path.join(ns, "raw-cycle.lock")
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    open_, close, flock, ex, un = os.open, os.close, fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN
    flags = os.O_RDONLY | os.O_CLOEXEC

    def loop(n: int) -> None:
        for _ in range(n):
            fd = open_(path, flags)
            flock(fd, ex)
            flock(fd, un)
            close(fd)

    return loop


def xlock_timed(ns: str) -> Loop:
    import xlock

    lock = xlock.Lock("bench-uncontended", namespace=ns)

    def acquire() -> None:
        lock.acquire(timeout=10)

    return pair_loop(acquire, lock.release)


def xlock_per_use(ns: str) -> Loop:
    """A lock object per use, the README idiom: with xlock.Lock(name): ..."""
    import xlock

    def loop(n: int) -> None:
        for _ in range(n):
            with xlock.Lock("bench-per-use", namespace=ns):
                pass

    return loop


def xlock_semaphore_cap1(ns: str) -> Loop:
    import xlock

    sem = xlock.Semaphore("bench-sem-1", 1, namespace=ns)
    return pair_loop(sem.acquire, sem.release)


def xlock_semaphore_256_held(ns: str) -> Loop:
    """Capacity 256 with 255 permits held by another object: the acquire+release of the free one."""
    import xlock

    held = xlock.Semaphore("bench-sem-256", 256, namespace=ns)
    for _ in range(255):
        held.acquire(timeout=0)
    sem = xlock.Semaphore("bench-sem-256", 256, namespace=ns)
    sem.held_elsewhere = held  # kept alive with the loop
    return pair_loop(sem.acquire, sem.release)


def xlock_semaphore(ns: str) -> Loop:
    import xlock

    sem = xlock.Semaphore("bench-uncontended", 4, namespace=ns)
    return pair_loop(sem.acquire, sem.release)


def xlock_posix_semaphore(ns: str) -> Loop:
    import xlock

    sem = xlock.PosixSemaphore("bench-uncontended", value=1, namespace=ns)
    return pair_loop(sem.acquire, sem.release)


def posix_ipc_semaphore(ns: str) -> Loop:
    import posix_ipc

    name = f"/xlbench-uncontended-{os.getpid()}"
    sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, 0o600, 1)
    sem.unlink()  # the open object stays usable; nothing is left in /dev/shm
    return pair_loop(sem.acquire, sem.release)


def filelock_lock(ns: str) -> Loop:
    import filelock

    lock = filelock.FileLock(os.path.join(ns, "filelock.lock"))
    return pair_loop(lock.acquire, lock.release)


def portalocker_lock(ns: str) -> Loop:
    import portalocker

    lock = portalocker.Lock(os.path.join(ns, "portalocker.lock"), "a")
    return pair_loop(lock.acquire, lock.release)


def fasteners_lock(ns: str) -> Loop:
    import fasteners

    lock = fasteners.InterProcessLock(os.path.join(ns, "fasteners.lock"))
    return pair_loop(lock.acquire, lock.release)


IMPLS = {
    "raw": raw_flock,
    "spec-floor": spec_floor,
    "path-recheck": path_recheck,
    "raw-cycle": raw_cycle,
    "xlock": xlock_lock,
    "xlock-timed": xlock_timed,
    "xlock-per-use": xlock_per_use,
    "xlock-semaphore": xlock_semaphore,
    "xlock-semaphore-cap1": xlock_semaphore_cap1,
    "xlock-semaphore-256-255-held": xlock_semaphore_256_held,
    "xlock-posix-semaphore": xlock_posix_semaphore,
    "posix_ipc": posix_ipc_semaphore,
    "filelock": filelock_lock,
    "portalocker": portalocker_lock,
    "fasteners": fasteners_lock,
}


def calibrate(loop: Loop) -> int:
    """The number of pairs that makes one run of loop last about REPEAT_NS."""
    n = 8
    while True:
        t0 = time.perf_counter_ns()
        loop(n)
        took = time.perf_counter_ns() - t0
        if took >= REPEAT_NS // 4:
            return max(1, n * REPEAT_NS // max(took, 1))
        n *= 2


def many_objects(ns: str, wanted: int) -> None:
    """N lock objects open at once (the harness sets the descriptor limit): one JSON line."""
    import xlock

    locks: list[Any] = []
    error = ""
    t0 = time.perf_counter_ns()
    try:
        for i in range(wanted):
            locks.append(xlock.Lock(f"many-{i}", namespace=ns))
    except Exception as e:
        error = str(e)
    took = time.perf_counter_ns() - t0
    print(
        json.dumps(
            {
                "objects": len(locks),
                "wanted": wanted,
                "ns_per_open": took / max(len(locks), 1),
                "error": error,
            }
        )
    )
    for lock in locks:
        lock.close()


def build_info() -> dict[str, str]:
    """xlock.build_info() of this process: which FFI (compiled or abi) the xlock rows measured."""
    try:
        import xlock

        info: dict[str, str] = xlock.build_info()
        return info
    except (ImportError, AttributeError) as e:
        return {"error": f"not available: {e}"}


def main() -> None:
    ns = sys.argv[1]
    if len(sys.argv) == 4 and sys.argv[2] == "objects":  # NAMESPACE objects N
        many_objects(ns, int(sys.argv[3]))
        return
    if len(sys.argv) == 5 and sys.argv[2] == "--pairs":  # NAMESPACE --pairs N IMPL: for a profiler
        IMPLS[sys.argv[4]](ns)(int(sys.argv[3]))
        return
    wanted = sys.argv[2:] or list(IMPLS)
    results: dict[str, dict[str, Any]] = {}
    loops: dict[str, Loop] = {}
    for name in wanted:
        try:
            loops[name] = IMPLS[name](ns)
        except (ImportError, AttributeError) as e:  # a binding that has not landed (fully) yet
            results[name] = {"skipped": f"not available: {e}"}
    sizes = {name: calibrate(loop) for name, loop in loops.items()}
    per_pair: dict[str, list[float]] = {name: [] for name in loops}
    # Repeats interleave the implementations, so background load hits them alike.
    for _ in range(REPEATS):
        for name, loop in loops.items():
            t0 = time.perf_counter_ns()
            loop(sizes[name])
            per_pair[name].append((time.perf_counter_ns() - t0) / sizes[name])
    for name in loops:
        results[name] = {
            "ns_per_pair": statistics.median(per_pair[name]),
            "repeats": per_pair[name],
            "pairs_per_repeat": sizes[name],
        }
    json.dump({**results, "build_info": build_info()}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
