/* Uncontended acquire+release in C: libxlock against a bare flock(2) pair and sem_wait/sem_post.
 *
 * usage: uncontended NAMESPACE
 * Prints one JSON object: for each case the median nanoseconds per pair over REPEATS runs, each run
 * calibrated to last about RUN_NS. Built with -DWITH_XLOCK when libxlock is available. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "clock.h"
#ifdef WITH_XLOCK
#include "xlock.h"
#endif

#define REPEATS 7
#define RUN_NS 40000000LL

typedef void (*loop_fn)(void *ctx, long n);

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(const char *name, loop_fn loop, void *ctx, int *first)
{
    long n = 8;
    int64_t took;
    for (;;) {
        int64_t t0 = mono_ns();
        loop(ctx, n);
        took = mono_ns() - t0;
        if (took >= RUN_NS / 4)
            break;
        n *= 2;
    }
    n = (long)((double)n * RUN_NS / (double)(took > 0 ? took : 1));
    if (n < 1)
        n = 1;
    double per[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        int64_t t0 = mono_ns();
        loop(ctx, n);
        per[r] = (double)(mono_ns() - t0) / (double)n;
    }
    double sorted[REPEATS];
    memcpy(sorted, per, sizeof per);
    qsort(sorted, REPEATS, sizeof(double), cmp_double);
    printf("%s\"%s\": {\"ns_per_pair\": %.2f, \"pairs_per_repeat\": %ld, \"repeats\": [", *first ? "" : ", ",
           name, sorted[REPEATS / 2], n);
    for (int r = 0; r < REPEATS; r++)
        printf("%s%.2f", r ? ", " : "", per[r]);
    printf("]}");
    *first = 0;
}

static void raw_flock_loop(void *ctx, long n)
{
    int fd = *(int *)ctx;
    for (long i = 0; i < n; i++) {
        if (flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0)
            die("flock");
    }
}

static void raw_sem_loop(void *ctx, long n)
{
    sem_t *s = ctx;
    for (long i = 0; i < n; i++) {
        if (sem_wait(s) != 0 || sem_post(s) != 0)
            die("sem_wait/sem_post");
    }
}

#ifdef WITH_XLOCK
#include "uncontended_xlock.inc"
#endif

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAMESPACE\n", argv[0]);
        return 2;
    }
    char path[4096], semname[64];
    snprintf(path, sizeof path, "%s/raw-c.lock", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        die(path);
    snprintf(semname, sizeof semname, "/xlbench-c-%d", (int)getpid());
    sem_t *sem = sem_open(semname, O_CREAT | O_EXCL, 0600, 1);
    if (sem == SEM_FAILED)
        die("sem_open");
    sem_unlink(semname);

    int first = 1;
    printf("{");
    measure("raw", raw_flock_loop, &fd, &first);
    measure("posix-sem", raw_sem_loop, sem, &first);
#ifdef WITH_XLOCK
    measure_xlock(argv[1], &first);
#endif
    printf("}\n");
    return 0;
}
