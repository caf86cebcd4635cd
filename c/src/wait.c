/* Doorbells and the timed-waiter loop [XL-WAIT-3..XL-WAIT-8]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

sem_t *xlock__bell_open(const char *semname, const xlock__ns *ns)
{
    sem_t *bell = sem_open(semname, O_CREAT, ns->fmode, 0);
    if (bell == SEM_FAILED)
        return NULL; /* waiters fall back to the safety poll, releasers skip the ring [XL-WAIT-8] */
    /* sem_open applies the umask; give our doorbell exactly the namespace mode [XL-NS-13]. */
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/sem.%s", semname + 1);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        (st.st_mode & 07777) != ns->fmode)
        (void)chmod(path, ns->fmode);
    return bell;
}

void xlock__bell_close(sem_t *bell)
{
    if (bell != NULL)
        sem_close(bell);
}

struct timespec xlock__now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t;
}

static struct timespec add_ms(struct timespec t, long long ms)
{
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

struct timespec xlock__deadline(long long timeout_ms)
{
    /* Computed once, from CLOCK_MONOTONIC, at the start of the call [XL-WAIT-3]. Timeouts beyond
     * ~292 years are clamped. */
    if (timeout_ms > 9000000000000LL)
        timeout_ms = 9000000000000LL;
    return add_ms(xlock__now(), timeout_ms);
}

int xlock__ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Safety-poll intervals: 1 ms after the wait begins, doubling up to 16 ms [XL-WAIT-7]. */
#define POLL_FIRST_MS 1
#define POLL_MAX_MS 16

int xlock__wait_loop(sem_t *bell, const struct timespec *deadline, atomic_ullong *cancel_gen,
                 unsigned long long token, int post_after_wait, int (*try_fn)(void *), void *ctx)
{
    long long poll_ms = POLL_FIRST_MS;
    int waited = 0;
    for (;;) {
        if (atomic_load(cancel_gen) != token) /* [XL-WAIT-10] */
            return XLOCK_ECANCELED;
        if (bell != NULL) /* 1. drain before the try, so no wake-up is lost [XL-WAIT-4] */
            while (sem_trywait(bell) == 0) {
            }
        int rc = try_fn(ctx); /* 2. try */
        if (rc >= 0) {
            /* A shared waiter passes the wake-up on to the next shared waiter [XL-WAIT-5]. */
            if (post_after_wait && waited && bell != NULL)
                sem_post(bell);
            return rc;
        }
        if (rc != XLOCK_EWOULDBLOCK)
            return rc;
        struct timespec now = xlock__now(); /* 3. deadline */
        if (deadline != NULL && !xlock__ts_before(&now, deadline))
            return XLOCK_ETIMEDOUT;
        /* 4. wait for a ring until the earlier of the deadline and the next safety poll */
        struct timespec until = add_ms(now, poll_ms);
        if (deadline != NULL && xlock__ts_before(deadline, &until))
            until = *deadline;
        int polled = 1;
        if (bell != NULL) {
            if (sem_clockwait(bell, CLOCK_MONOTONIC, &until) == 0)
                polled = 0; /* rung */
            else if (errno == EINTR)
                return XLOCK_EINTR; /* [XL-WAIT-9] */
        } else {
            int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
            if (r == EINTR)
                return XLOCK_EINTR;
        }
        if (polled && poll_ms < POLL_MAX_MS)
            poll_ms *= 2;
        waited = 1;
    }
}
