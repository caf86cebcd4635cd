"""The system calls of libxlock's per-use paths, counted with strace (issue 14).

Runs build/*/syscalls NAMESPACE CASE under `strace -f` and compares every system call between its two
marks with the minimum the spec requires in a private namespace, in order:

  per-use   (a lock object per use; the process used the namespace before, so it is shared and
            only re-confirmed [XL-NS-16]):
            newfstatat(AT_FDCWD, ns, AT_SYMLINK_NOFOLLOW)   the lstat before reuse [XL-NS-16]
            geteuid                                         the uid it was checked for [XL-NS-6]
            openat(nsfd, "x.lock", O_RDONLY|...)            [XL-LOCK-1]
            fstat(fd)                                       a regular file? [XL-LOCK-5]
            flock(fd, LOCK_EX|LOCK_NB)                      the first try [XL-LOCK-7, XL-WAIT-12]
            fstat(fd)                                       st_nlink > 0 [XL-LOCK-8]
            flock(fd, LOCK_UN)                              release; nobody waits: no ring [XL-BELL-6]
            close(fd)
  reused, timed (one object, untimed and with a 10 s timeout: the same three calls; the timed one
            touches the bell only when its first try fails [XL-WAIT-12]):
            flock(LOCK_EX|LOCK_NB), fstat, flock(LOCK_UN)
  semaphore, semaphore-timed (capacity 256, 255 permits held by another object: the round starts at
            the remembered slot [XL-CSEM-5], so the same three calls whatever the number held):
            flock(LOCK_EX|LOCK_NB), fstat, flock(LOCK_UN)

Usage: python3 syscalls_test.py PROGRAM
"""

import re
import shutil
import subprocess
import sys
import tempfile

FSTAT = r'(fstat\((\d+), |newfstatat\((\d+), "", .*AT_EMPTY_PATH)'
LOCK_CYCLE = [r"flock\((\d+), LOCK_EX\|LOCK_NB\) = 0", FSTAT, r"flock\((\d+), LOCK_UN\) = 0"]
EXPECTED = {
    "per-use": [
        r"newfstatat\(AT_FDCWD, \"NS\", .*AT_SYMLINK_NOFOLLOW\) = 0",
        r"geteuid\(\)",
        r"openat\(\d+, \"x\.lock\", O_RDONLY\|O_NOCTTY\|O_NONBLOCK\|O_NOFOLLOW\|O_CLOEXEC\) = \d+",
        FSTAT,
        *LOCK_CYCLE,
        r"close\(\d+\) = 0",
    ],
    "reused": LOCK_CYCLE,
    "timed": LOCK_CYCLE,
    "semaphore": LOCK_CYCLE,
    "semaphore-timed": LOCK_CYCLE,
}


def traced(program: str, ns: str, case: str) -> list[str]:
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(["strace", "-f", "-qq", "-o", out.name, program, ns, case], check=True)
        lines = [re.sub(r"^\d+ +", "", line.strip()) for line in out]
    begin = next(i for i, line in enumerate(lines) if "xlock-syscalls-mark/begin" in line)
    end = next(i for i, line in enumerate(lines) if "xlock-syscalls-mark/end" in line)
    return [re.sub(r"\s+", " ", line) for line in lines[begin + 1 : end]]


def main() -> int:
    if shutil.which("strace") is None:
        print("syscalls_test: strace is missing (./bootstrap installs it)")
        return 1
    failed = 0
    for case, expected in EXPECTED.items():
        ns = tempfile.mkdtemp(prefix="xlock-syscalls-")
        try:
            calls = traced(sys.argv[1], ns, case)
        finally:
            shutil.rmtree(ns)
        patterns = [p.replace("NS", re.escape(ns)) for p in expected]
        ok = len(calls) == len(patterns) and all(re.search(p, c) for p, c in zip(patterns, calls))
        print(f"{'ok  ' if ok else 'FAIL'} syscalls.{case}: {len(calls)} system calls (minimum {len(patterns)})")
        if not ok:
            failed += 1
            print("  got:\n    " + "\n    ".join(calls))
            print("  expected:\n    " + "\n    ".join(patterns))
    print(f"syscalls: {len(EXPECTED) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
