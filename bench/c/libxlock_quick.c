/* libxlock quick benchmark (make -C c bench, or make -C bench build/libxlock_quick; not run by the tests).
 *  1. uncontended acquire+release against a bare flock(LOCK_EX)/flock(LOCK_UN) pair on an open
 *     descriptor, and against the pair plus the re-check XL-LOCK-8 requires (fstat of the
 *     descriptor) or allows (a path lookup), interleaved in the same run: ns per pair and the
 *     ratios, median of repeats;
 *  2. hand-off latency: from right before the holder's release to right after a waiter in another
 *     process acquired, for a timed waiter (the bell loop) and a blocking (flock) waiter.
 * Usage: libxlock_quick [NAMESPACE_DIR]  (default: a fresh directory under /tmp) */
#define _GNU_SOURCE
#include "xlock.h"

#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, xlock_last_message());
    exit(1);
}

#define REPEATS 11
#define PAIRS 200000

static void uncontended(const char *ns)
{
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = ns;
    xlock_t *l;
    if (xlock_open(&l, "bench-uncontended", &o) != 0)
        die("open");
    xlock_sem_t *s;
    if (xlock_sem_open(&s, "bench-uncontended", 1, &o) != 0)
        die("sem open");
    char raw_path[600];
    snprintf(raw_path, sizeof raw_path, "%s/bench-raw.lock", ns);
    int fd = open(raw_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    int dirfd = open(ns, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    double xl[REPEATS], raw[REPEATS], floor_ns[REPEATS], strict_ns[REPEATS], sem_ns[REPEATS],
        ratio[REPEATS], ratio_floor[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        long long t0 = now_ns();
        for (int i = 0; i < PAIRS; i++) {
            flock(fd, LOCK_EX);
            flock(fd, LOCK_UN);
        }
        long long t1 = now_ns();
        for (int i = 0; i < PAIRS; i++) {
            if (xlock_acquire(l, -1) != 0 || xlock_release(l) != 0)
                die("acquire/release");
        }
        long long t2 = now_ns();
        /* The floor the spec sets: the pair plus the link-count re-check of XL-LOCK-8. */
        struct stat st;
        for (int i = 0; i < PAIRS; i++) {
            flock(fd, LOCK_EX);
            fstat(fd, &st);
            flock(fd, LOCK_UN);
        }
        long long t3 = now_ns();
        /* The stricter variant XL-LOCK-8 allows (and XL-RM-2 requires of removers): a path lookup. */
        struct statx sx;
        for (int i = 0; i < PAIRS; i++) {
            flock(fd, LOCK_EX);
            statx(dirfd, "bench-raw.lock", AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_INO, &sx);
            flock(fd, LOCK_UN);
        }
        long long t4 = now_ns();
        for (int i = 0; i < PAIRS; i++) {
            if (xlock_sem_acquire(s, -1) != 0 || xlock_sem_release(s) != 0)
                die("sem acquire/release");
        }
        long long t5 = now_ns();
        raw[r] = (double)(t1 - t0) / PAIRS;
        xl[r] = (double)(t2 - t1) / PAIRS;
        floor_ns[r] = (double)(t3 - t2) / PAIRS;
        strict_ns[r] = (double)(t4 - t3) / PAIRS;
        sem_ns[r] = (double)(t5 - t4) / PAIRS;
        ratio[r] = xl[r] / raw[r];
        ratio_floor[r] = xl[r] / floor_ns[r];
    }
    printf("uncontended, %d pairs x %d repeats (median):\n", PAIRS, REPEATS);
    printf("  bare flock(LOCK_EX)+flock(LOCK_UN):  %7.1f ns\n", median(raw, REPEATS));
    printf("  xlock_acquire(-1)+xlock_release:     %7.1f ns\n", median(xl, REPEATS));
    printf("  bare pair + fstat re-check:          %7.1f ns  (XL-LOCK-8 floor)\n",
           median(floor_ns, REPEATS));
    printf("  bare pair + statx path check:        %7.1f ns  (the strict variant)\n",
           median(strict_ns, REPEATS));
    printf("  xlock_sem_acquire(-1)+release (1):   %7.1f ns  (counting semaphore, capacity 1)\n",
           median(sem_ns, REPEATS));
    printf("  ratio xlock / bare flock pair:       %7.2f\n", median(ratio, REPEATS));
    printf("  ratio xlock / pair + fstat re-check: %7.2f\n", median(ratio_floor, REPEATS));
    close(dirfd);
    close(fd);
    unlink(raw_path);
    unlink(xlock_path(l));
    xlock_close(l);
    int removed;
    xlock_sem_close(s);
    if (xlock_sem_remove(&removed, "bench-uncontended", 1, &o) != 0)
        die("sem remove");
}

#define ROUNDS 200

/* Shared between the holder (parent) and the waiter (child). */
typedef struct {
    long long released_ns[ROUNDS], acquired_ns[ROUNDS];
} shared_times;

static void handoff(const char *ns, long long waiter_timeout_ms, const char *label)
{
    shared_times *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
    int go[2], done[2];
    if (pipe(go) != 0 || pipe(done) != 0)
        exit(1);
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = ns;
    pid_t pid = fork();
    if (pid == 0) {
        xlock_t *w;
        if (xlock_open(&w, "bench-handoff", &o) != 0)
            die("open waiter");
        char c;
        for (int r = 0; r < ROUNDS; r++) {
            if (read(go[0], &c, 1) != 1)
                _exit(1);
            if (xlock_acquire(w, waiter_timeout_ms) != 0)
                die("waiter acquire");
            st->acquired_ns[r] = now_ns();
            xlock_release(w);
            if (write(done[1], "d", 1) != 1)
                _exit(1);
        }
        xlock_close(w);
        _exit(0);
    }
    xlock_t *h;
    if (xlock_open(&h, "bench-handoff", &o) != 0)
        die("open holder");
    char c;
    for (int r = 0; r < ROUNDS; r++) {
        xlock_acquire(h, -1);
        if (write(go[1], "g", 1) != 1)
            exit(1);
        struct timespec pause = {0, 3000000}; /* let the waiter block (a benchmark, not a test) */
        nanosleep(&pause, NULL);
        st->released_ns[r] = now_ns();
        xlock_release(h);
        if (read(done[0], &c, 1) != 1)
            exit(1);
    }
    waitpid(pid, NULL, 0);
    double lat[ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        lat[r] = (double)(st->acquired_ns[r] - st->released_ns[r]) / 1000.0;
    double med = median(lat, ROUNDS);
    printf("  %-34s median %7.1f us, p90 %7.1f us, max %7.1f us\n", label, med,
           lat[ROUNDS * 9 / 10], lat[ROUNDS - 1]);
    unlink(xlock_path(h));
    xlock_close(h);
    munmap(st, sizeof *st);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

int main(int argc, char **argv)
{
    char dir[64] = "/tmp/xlock-bench-XXXXXX";
    const char *ns = argc > 1 ? argv[1] : mkdtemp(dir);
    if (ns == NULL)
        return 1;
    printf("libxlock %s (%s), namespace %s\n", xlock_version_string(), xlock_spec_version(), ns);
    uncontended(ns);
    printf("hand-off latency, release -> waiter in another process holds, %d rounds:\n", ROUNDS);
    handoff(ns, -1, "blocking waiter (flock):");
    handoff(ns, 60000, "timed waiter (bell loop):");
    if (argc < 2)
        rmdir(ns);
    return 0;
}
