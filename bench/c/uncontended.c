/* Uncontended acquire+release in C: libxlock against a bare flock(2) pair and sem_wait/sem_post.
 *
 * usage: uncontended NAMESPACE
 *        uncontended NAMESPACE CASE PAIRS   (just PAIRS pairs of one case, for strace -c / perf record)
 *        uncontended NAMESPACE objects N    (N lock objects open at once; the harness sets the limit)
 * Prints one JSON object: for each case the median nanoseconds per pair over REPEATS runs, each run
 * calibrated to last about RUN_NS, the runs of all cases interleaved. Built with -DWITH_XLOCK when
 * libxlock is available. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* Cases are registered first, then measured with interleaved repeats, so background load hits
 * them alike. */
#define MAX_CASES 16
static struct bench_case {
    const char *name;
    loop_fn loop;
    void *ctx;
    long n;
    double per[REPEATS];
} cases[MAX_CASES];
static int ncases;

static void add_case(const char *name, loop_fn loop, void *ctx)
{
    if (ncases == MAX_CASES) {
        fprintf(stderr, "too many cases\n");
        exit(1);
    }
    cases[ncases++] = (struct bench_case){.name = name, .loop = loop, .ctx = ctx};
}

static long calibrate(loop_fn loop, void *ctx)
{
    long n = 8;
    for (;;) {
        int64_t t0 = mono_ns();
        loop(ctx, n);
        int64_t took = mono_ns() - t0;
        if (took >= RUN_NS / 4) {
            long sized = (long)((double)n * RUN_NS / (double)(took > 0 ? took : 1));
            return sized > 0 ? sized : 1;
        }
        n *= 2;
    }
}

static void measure_all(void)
{
    for (int c = 0; c < ncases; c++)
        cases[c].n = calibrate(cases[c].loop, cases[c].ctx);
    for (int r = 0; r < REPEATS; r++) {
        for (int c = 0; c < ncases; c++) {
            int64_t t0 = mono_ns();
            cases[c].loop(cases[c].ctx, cases[c].n);
            cases[c].per[r] = (double)(mono_ns() - t0) / (double)cases[c].n;
        }
    }
    printf("{");
    for (int c = 0; c < ncases; c++) {
        double sorted[REPEATS];
        memcpy(sorted, cases[c].per, sizeof sorted);
        qsort(sorted, REPEATS, sizeof(double), cmp_double);
        printf("%s\"%s\": {\"ns_per_pair\": %.2f, \"pairs_per_repeat\": %ld, \"repeats\": [", c ? ", " : "",
               cases[c].name, sorted[REPEATS / 2], cases[c].n);
        for (int r = 0; r < REPEATS; r++)
            printf("%s%.2f", r ? ", " : "", cases[c].per[r]);
        printf("]}");
    }
    printf("}\n");
}

static void raw_flock_loop(void *ctx, long n)
{
    int fd = *(int *)ctx;
    for (long i = 0; i < n; i++) {
        if (flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0)
            die("flock");
    }
}

/* The floor the spec sets for an acquire+release: the flock pair plus the re-check of XL-LOCK-8,
 * fstat(fd) and st_nlink > 0 (the locked file still has a name). */
struct floor_ctx {
    int fd, dirfd;
    const char *file;
    struct stat st;
};

static void spec_floor_loop(void *ctx, long n)
{
    struct floor_ctx *f = ctx;
    struct stat now;
    for (long i = 0; i < n; i++) {
        if (flock(f->fd, LOCK_EX) != 0)
            die("flock");
        if (fstat(f->fd, &now) != 0 || now.st_nlink == 0)
            die("fstat");
        if (flock(f->fd, LOCK_UN) != 0)
            die("flock");
    }
}

/* For comparison: the stricter check XL-LOCK-8 allows (and a remover makes, XL-RM-2): fstatat of the
 * name relative to the namespace directory returns the recorded device and inode (a path walk). */
static void path_recheck_loop(void *ctx, long n)
{
    struct floor_ctx *f = ctx;
    struct stat now;
    for (long i = 0; i < n; i++) {
        if (flock(f->fd, LOCK_EX) != 0)
            die("flock");
        if (fstatat(f->dirfd, f->file, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_ino != f->st.st_ino ||
            now.st_dev != f->st.st_dev)
            die("fstatat");
        if (flock(f->fd, LOCK_UN) != 0)
            die("flock");
    }
}

/* The raw cycle a lock object per use is compared with: openat + flock + flock(LOCK_UN) + close. */
static void raw_cycle_loop(void *ctx, long n)
{
    struct floor_ctx *f = ctx;
    for (long i = 0; i < n; i++) {
        int fd = openat(f->dirfd, f->file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX) != 0 || flock(fd, LOCK_UN) != 0 || close(fd) != 0)
            die("raw cycle");
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
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: %s NAMESPACE [CASE PAIRS]\n", argv[0]);
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

    struct floor_ctx floor = {.fd = fd, .file = "raw-c.lock"};
    floor.dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (floor.dirfd < 0 || fstat(fd, &floor.st) != 0)
        die(argv[1]);
    add_case("raw", raw_flock_loop, &fd);
    add_case("spec-floor", spec_floor_loop, &floor);
    add_case("path-recheck", path_recheck_loop, &floor);
    add_case("raw-cycle", raw_cycle_loop, &floor);
    add_case("posix-sem", raw_sem_loop, sem);
#ifdef WITH_XLOCK
    if (argc == 4 && strcmp(argv[2], "objects") == 0)
        return many_objects(argv[1], strtol(argv[3], NULL, 10));
    add_xlock_cases(argv[1]);
#endif
    if (argc == 4) {
        for (int c = 0; c < ncases; c++)
            if (strcmp(cases[c].name, argv[2]) == 0)
                cases[c].loop(cases[c].ctx, strtol(argv[3], NULL, 10));
    } else {
        measure_all();
    }
#ifdef WITH_XLOCK
    close_xlock_cases(argv[1]);
#endif
    return 0;
}
