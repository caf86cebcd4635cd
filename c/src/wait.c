/* Deadlines and the timed-waiter loop [XL-WAIT-3, XL-WAIT-7, XL-WAIT-9, XL-WAIT-10, XL-WAIT-12]. */
#include "internal.h"

#include <errno.h>

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

struct timespec xlock__deadline(const struct timespec *start, long long timeout_ms)
{
    /* Computed once, from CLOCK_MONOTONIC, at the start of the call [XL-WAIT-3]. Timeouts beyond
     * ~285 years are clamped (they wait for ever in practice). */
    if (timeout_ms > 9000000000000LL)
        timeout_ms = 9000000000000LL;
    return add_ms(*start, timeout_ms);
}

int xlock__ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The safety polls, anchored at the start of the call: 1, 3, 7, 15, 31 ms after it, then every
 * 16 ms [XL-WAIT-7]. Advances *next past now; rings do not move the schedule. */
static void next_poll(struct timespec *next, long long *interval, const struct timespec *now)
{
    while (!xlock__ts_before(now, next)) {
        if (*interval < 16)
            *interval *= 2;
        *next = add_ms(*next, *interval);
    }
}

int xlock__wait_loop(xlock__bell *bell, unsigned word, const struct timespec *start,
                     const struct timespec *deadline, atomic_ullong *cancel_gen,
                     unsigned long long token, int (*try_fn)(void *), void *ctx)
{
    long long interval = 1;
    struct timespec poll = add_ms(*start, 1);
    for (;;) {
        if (atomic_load(cancel_gen) != token) /* 1. [XL-WAIT-10] */
            return XLOCK_ECANCELED;
        uint32_t v = 0; /* 2. announce; an unusable bell leaves the safety poll alone [XL-BELL-8] */
        int announced = xlock__bell_announce(bell, word, &v) == 0;
        int rc = try_fn(ctx); /* 3. try */
        if (rc != XLOCK_EWOULDBLOCK)
            return rc;
        struct timespec now = xlock__now(); /* 4. deadline */
        if (deadline != NULL && !xlock__ts_before(&now, deadline))
            return XLOCK_ETIMEDOUT;
        if (announced && (v & 1) == 0)
            continue; /* rung between the announcement and the read (shared namespace): go again */
        next_poll(&poll, &interval, &now); /* 5. sleep until the earlier of poll and deadline */
        struct timespec until = poll;
        if (deadline != NULL && xlock__ts_before(deadline, &until))
            until = *deadline;
        int slept = announced ? xlock__bell_sleep(bell, word, v, &until) : -1;
        if (slept == XLOCK_EINTR)
            return XLOCK_EINTR; /* [XL-WAIT-9] */
        if (slept != 0 && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            return XLOCK_EINTR;
    }
}
