"""One contention worker in Python: COUNT rounds of acquire / increment a counter file / release.

``python bench/py_contend.py raw LOCKFILE COUNTER COUNT`` (bare fcntl.flock) or
``python bench/py_contend.py xlock NAMESPACE NAME COUNTER COUNT`` (xlock.Lock; ``xlock-timed``: with
a 60 s timeout).
Prints ``ready``, waits for end of file on stdin (the start gate shared by all workers), runs, and prints
{"start_ns", "end_ns", "max_wait_ns", "ops"}. The increment is pread, parse, pwrite of the digits, as
in bench/c/contend.c and bench/rb_contend.rb.
"""

import fcntl
import json
import os
import sys
import time


def main() -> None:
    impl = sys.argv[1]
    if impl == "raw":
        lock_file, counter, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        flock, ex, un = fcntl.flock, fcntl.LOCK_EX, fcntl.LOCK_UN

        def acquire() -> None:
            flock(fd, ex)

        def release() -> None:
            flock(fd, un)
    else:
        import xlock

        namespace, name, counter, count = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        lock = xlock.Lock(name, namespace=namespace)
        acquire, release = lock.acquire, lock.release
        if sys.argv[1] == "xlock-timed":

            def acquire() -> None:
                lock.acquire(timeout=60)

    cfd = os.open(counter, os.O_RDWR | os.O_CLOEXEC)
    pread, pwrite, now = os.pread, os.pwrite, time.monotonic_ns
    print("ready", flush=True)
    sys.stdin.read()  # the start gate: end of file, when the harness closes the shared pipe
    max_wait = 0
    start = now()
    for _ in range(count):
        t0 = now()
        acquire()
        wait = now() - t0
        if wait > max_wait:
            max_wait = wait
        pwrite(cfd, b"%d" % (int(pread(cfd, 32, 0) or b"0") + 1), 0)
        release()
    end = now()
    print(json.dumps({"start_ns": start, "end_ns": end, "max_wait_ns": max_wait, "ops": count}), flush=True)


if __name__ == "__main__":
    main()
