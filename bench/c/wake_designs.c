/* wake_designs: the measurement behind spec §9a (RATIONALE, "Why a bell of futex words").
 *
 * One lock file, two processes pinned to two CPUs. The holder keeps the lock until the waiter is
 * asleep (a fixed pause), stamps CLOCK_MONOTONIC, releases (and rings, per design); the waiter stamps
 * right after it acquired. The delay is the hand-off to a sleeping waiter. Designs, interleaved in
 * rounds so background load hits them alike:
 *   flock    raw blocking flock(2) waiter (the baseline: the kernel hands the lock over);
 *   doorbell draft 1: a POSIX named semaphore per name; drain, try, sem_clockwait; post-if-zero ring;
 *   bell     draft 2: a futex word in a mapped bell file; announce (set bit 0), try, FUTEX_WAIT;
 *            ring = FUTEX_WAKE_OP(ADD 1) when bit 0 is set (private-namespace variant, XL-BELL-5/6);
 *   bell, shared: the same with no user-space access to the mapping: pread reads the word and
 *            FUTEX_WAKE_OP(OR 1) announces (the shared-namespace variant of XL-BELL-5).
 * It also times the release path alone (uncontended flock pair + ring, nobody waiting) per design.
 *
 *   make -C bench build/wake_designs && bench/build/wake_designs [ROUNDS]
 */
#define _GNU_SOURCE
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FLOCK, DOORBELL, BELL, BELL_SHARED, NDESIGNS };
static int bell_fd = -1; /* the bell descriptor, for the shared-namespace variant's pread */
static const char *design_name[NDESIGNS] = {"flock (raw blocking waiter)", "doorbell (draft 1)",
                                            "bell (draft 2, private namespace)",
                                            "bell (draft 2, shared namespace: kernel-only access)"};

struct shared {
    _Atomic int turn;    /* 0: holder's move; 1: waiter may start its wait; 2: waiter done */
    _Atomic int waiting; /* the waiter is about to sleep */
    int64_t released_ns, acquired_ns;
};

static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts, uint32_t val3)
{
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, (uint32_t *)w, val3);
}

static uint32_t pread_word(_Atomic uint32_t *word, _Atomic uint32_t *base)
{
    uint32_t v = 0;
    if (pread(bell_fd, &v, sizeof v, (off_t)((word - base) * 4)) != (ssize_t)sizeof v)
        return 0;
    return v;
}

static _Atomic uint32_t *bell_base;

static void ring(int design, sem_t *bell, _Atomic uint32_t *word)
{
    if (design == BELL_SHARED) {
        if (pread_word(word, bell_base) & 1u)
            futex(word, FUTEX_WAKE_OP, INT_MAX, NULL, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
        return;
    }
    if (design == DOORBELL) {
        int v;
        if (sem_getvalue(bell, &v) == 0 && v == 0)
            sem_post(bell);
    } else if (design == BELL && (atomic_load_explicit(word, memory_order_acquire) & 1u))
        futex(word, FUTEX_WAKE_OP, INT_MAX, NULL, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
}

/* The timed waiter of each design, with a 10 s deadline and the 1 -> 16 ms safety poll. */
static void wait_lock(int design, int fd, sem_t *bell, _Atomic uint32_t *word)
{
    if (design == FLOCK) {
        flock(fd, LOCK_EX);
        return;
    }
    int64_t start = mono_ns(), poll = 1000000, next = start + poll;
    for (;;) {
        uint32_t v = 0;
        if (design == DOORBELL)
            while (sem_trywait(bell) == 0) {
            }
        else if (design == BELL)
            v = atomic_fetch_or(word, 1u) | 1u;
        else {
            futex(word, FUTEX_WAKE_OP, 0, NULL, FUTEX_OP(FUTEX_OP_OR, 1, FUTEX_OP_CMP_EQ, 0));
            v = pread_word(word, bell_base);
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return;
        int64_t now = mono_ns();
        while (next <= now) {
            poll = poll < 16000000 ? poll * 2 : poll;
            next += poll;
        }
        struct timespec until = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
        if (design == DOORBELL)
            sem_clockwait(bell, CLOCK_MONOTONIC, &until);
        else
            futex(word, FUTEX_WAIT_BITSET, v, &until, FUTEX_BITSET_MATCH_ANY);
    }
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    char dir[] = "/tmp/wake_designs.XXXXXX";
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    char path[128], sem[64];
    snprintf(path, sizeof path, "%s/x.lock", dir);
    snprintf(sem, sizeof sem, "/wake_designs.%d", (int)getpid());
    int lfd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    snprintf(path, sizeof path, "%s/.xlock-bell", dir);
    int bfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0 || bfd < 0 || ftruncate(bfd, 4096) != 0)
        return perror("open"), 1;
    _Atomic uint32_t *bellmap = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
    sem_t *doorbell = sem_open(sem, O_CREAT, 0600, 0);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (bellmap == MAP_FAILED || doorbell == SEM_FAILED || sh == MAP_FAILED)
        return perror("setup"), 1;
    _Atomic uint32_t *word = bellmap + 220;
    bell_fd = bfd;
    bell_base = bellmap;

    /* Release path alone: flock pair + ring with nobody waiting; medians of 7 interleaved runs. */
    double pair_ns[NDESIGNS], runs[NDESIGNS][7];
    for (int r = 0; r < 7; r++)
        for (int d = 0; d < NDESIGNS; d++) {
            const int n = 100000;
            int64_t t0 = mono_ns();
            for (int i = 0; i < n; i++) {
                flock(lfd, LOCK_EX);
                flock(lfd, LOCK_UN);
                ring(d, doorbell, word);
            }
            runs[d][r] = (double)(mono_ns() - t0) / n;
        }
    for (int d = 0; d < NDESIGNS; d++) {
        for (int i = 1; i < 7; i++) /* insertion sort of 7 */
            for (int j = i; j > 0 && runs[d][j - 1] > runs[d][j]; j--) {
                double t = runs[d][j];
                runs[d][j] = runs[d][j - 1];
                runs[d][j - 1] = t;
            }
        pair_ns[d] = runs[d][3];
    }

    int64_t *delay[NDESIGNS];
    for (int d = 0; d < NDESIGNS; d++)
        delay[d] = calloc((size_t)rounds, sizeof(int64_t));
    pid_t child = fork();
    if (child == 0) { /* the waiter, with its own open file description */
        pin(1);
        snprintf(path, sizeof path, "%s/x.lock", dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        for (int i = 0; i < rounds * NDESIGNS; i++) {
            int d = (i / 50) % NDESIGNS;
            while (atomic_load(&sh->turn) != 1) {
            }
            atomic_store(&sh->waiting, 1);
            wait_lock(d, fd, doorbell, word);
            sh->acquired_ns = mono_ns();
            flock(fd, LOCK_UN);
            ring(d, doorbell, word);
            atomic_store(&sh->turn, 2);
        }
        _exit(0);
    }
    pin(0);
    int count[NDESIGNS] = {0};
    for (int i = 0; i < rounds * NDESIGNS; i++) {
        int d = (i / 50) % NDESIGNS;
        flock(lfd, LOCK_EX);
        atomic_store(&sh->waiting, 0);
        atomic_store(&sh->turn, 1);
        while (!atomic_load(&sh->waiting)) {
        }
        struct timespec pause = {0, 300000}; /* the waiter is asleep by then */
        nanosleep(&pause, NULL);
        sh->released_ns = mono_ns();
        flock(lfd, LOCK_UN);
        ring(d, doorbell, word);
        while (atomic_load(&sh->turn) != 2) {
        }
        atomic_store(&sh->turn, 0);
        delay[d][count[d]++] = sh->acquired_ns - sh->released_ns;
    }
    waitpid(child, NULL, 0);
    sem_unlink(sem);
    snprintf(path, sizeof path, "%s/x.lock", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/.xlock-bell", dir);
    unlink(path);
    rmdir(dir);

    printf("hand-off to a sleeping timed waiter (300 us pause), %d rounds per design, CPUs pinned\n", rounds);
    printf("| design | p50 | p99 | p50 x raw flock | release pair + ring, nobody waiting | x raw pair |\n");
    printf("|---|---|---|---|---|---|\n");
    double base = 0;
    for (int d = 0; d < NDESIGNS; d++) {
        qsort(delay[d], (size_t)count[d], sizeof(int64_t), cmp64);
        double p50 = (double)delay[d][count[d] / 2], p99 = (double)delay[d][count[d] * 99 / 100];
        if (d == FLOCK)
            base = p50;
        printf("| %s | %.1f us | %.1f us | %.2fx | %.0f ns | %.2fx |\n", design_name[d], p50 / 1e3,
               p99 / 1e3, p50 / base, pair_ns[d], pair_ns[d] / pair_ns[FLOCK]);
    }
    return 0;
}
