/* One contention worker in C: COUNT rounds of acquire / increment a counter file / release.
 *
 * usage: contend raw LOCKFILE COUNTER COUNT      (bare flock(2))
 *        contend xlock NAMESPACE NAME COUNTER COUNT   (libxlock, when built -DWITH_XLOCK)
 * Prints "ready", waits for end of file on stdin (the start gate shared by all workers), runs, and prints
 * {"start_ns", "end_ns", "max_wait_ns", "ops"}. The increment is pread, parse, pwrite of the digits
 * (the count only grows, so the old digits are always overwritten). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "clock.h"
#ifdef WITH_XLOCK
#include "xlock.h"
#endif

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void increment(int cfd)
{
    char buf[32];
    ssize_t n = pread(cfd, buf, sizeof buf - 1, 0);
    if (n < 0)
        die("pread counter");
    buf[n] = 0;
    long v = strtol(buf, NULL, 10) + 1;
    int len = snprintf(buf, sizeof buf, "%ld", v);
    if (pwrite(cfd, buf, len, 0) != len)
        die("pwrite counter");
}

#ifdef WITH_XLOCK
#include "contend_xlock.inc"
#endif

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s raw LOCKFILE COUNTER COUNT | xlock|xlock-timed NAMESPACE NAME COUNTER COUNT\n", argv[0]);
        return 2;
    }
    int is_raw = strcmp(argv[1], "raw") == 0;
    long long timeout_ms = strcmp(argv[1], "xlock-timed") == 0 ? 60000 : -1; /* timed acquires */
    const char *counter = argv[is_raw ? 3 : 4];
    long count = strtol(argv[is_raw ? 4 : 5], NULL, 10);
    int cfd = open(counter, O_RDWR | O_CLOEXEC);
    if (cfd < 0)
        die(counter);
    int lfd = -1;
    if (is_raw) {
        lfd = open(argv[2], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd < 0)
            die(argv[2]);
    }
#ifdef WITH_XLOCK
    void *xl = is_raw ? NULL : xlock_worker_open(argv[2], argv[3]);
#else
    (void)timeout_ms;
    if (!is_raw) {
        fprintf(stderr, "contend: built without libxlock\n");
        return 2;
    }
#endif
    printf("ready\n");
    fflush(stdout);
    char go[16];
    while (fgets(go, sizeof go, stdin)) /* the start signal is end of file on the shared gate pipe */
        ;

    int64_t max_wait = 0, start = mono_ns();
    for (long i = 0; i < count; i++) {
        int64_t t0 = mono_ns();
        if (is_raw) {
            if (flock(lfd, LOCK_EX) != 0)
                die("flock");
        } else {
#ifdef WITH_XLOCK
            xlock_worker_acquire(xl, timeout_ms);
#endif
        }
        int64_t wait = mono_ns() - t0;
        if (wait > max_wait)
            max_wait = wait;
        increment(cfd);
        if (is_raw) {
            if (flock(lfd, LOCK_UN) != 0)
                die("flock");
        } else {
#ifdef WITH_XLOCK
            xlock_worker_release(xl);
#endif
        }
    }
    int64_t end = mono_ns();
    printf("{\"start_ns\": %lld, \"end_ns\": %lld, \"max_wait_ns\": %lld, \"ops\": %ld}\n", (long long)start,
           (long long)end, (long long)max_wait, count);
    return 0;
}
