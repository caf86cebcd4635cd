/* The system calls of the per-use paths, for syscalls_test.py, which runs this under strace and
 * compares what happens between the two marks with the sequence the spec requires.
 * Usage: syscalls NAMESPACE CASE (per-use, reused, timed, semaphore). Exits 0 if every call
 * succeeded. */
#include "testlib.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A call strace shows with its path, and that changes nothing. */
static void mark(const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/xlock-syscalls-mark/%s", what);
    (void)faccessat(AT_FDCWD, path, F_OK, 0);
}

static int lock_case(const char *ns, const char *which)
{
    xlock_options o = tl_opts(ns);
    xlock_t *l = NULL;
    int rc = 0;
    long long timeout = strcmp(which, "timed") == 0 ? 10000 : -1;
    /* Warm up: the namespace verified and its bell mapped, the lock file created. */
    rc |= xlock_open(&l, "x", &o) | xlock_acquire(l, timeout) | xlock_release(l);
    if (strcmp(which, "per-use") == 0) {
        xlock_close(l);
        l = NULL;
        mark("begin");
        rc |= xlock_open(&l, "x", &o);
    } else {
        mark("begin");
    }
    rc |= xlock_acquire(l, timeout) | xlock_release(l);
    if (strcmp(which, "per-use") == 0) {
        xlock_close(l);
        l = NULL;
    }
    mark("end");
    xlock_close(l);
    return rc;
}

static int semaphore_case(const char *ns, long long timeout)
{
    xlock_options o = tl_opts(ns);
    xlock_sem_t *held = NULL, *s = NULL;
    int rc = xlock_sem_open(&held, "s", 256, &o) | xlock_sem_open(&s, "s", 256, &o);
    for (int i = 0; i < 255 && rc == 0; i++)
        rc = xlock_sem_acquire(held, -1) < 0;
    rc |= xlock_sem_acquire(s, timeout) < 0 || xlock_sem_release(s) != 0; /* warm up */
    mark("begin");
    rc |= xlock_sem_acquire(s, timeout) < 0 || xlock_sem_release(s) != 0;
    mark("end");
    xlock_sem_close(s);
    xlock_sem_close(held);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: syscalls NAMESPACE per-use|reused|timed|semaphore|semaphore-timed\n");
        return 2;
    }
    int rc = strncmp(argv[2], "semaphore", 9) == 0
                 ? semaphore_case(argv[1], strcmp(argv[2], "semaphore-timed") == 0 ? 10000 : -1)
                 : lock_case(argv[1], argv[2]);
    if (rc != 0)
        fprintf(stderr, "syscalls %s: a call failed: %s\n", argv[2], xlock_last_message());
    return rc != 0;
}
