/* Interruption by signals [XL-WAIT-9] and cancellation from another thread [XL-WAIT-10]. */
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void on_signal(int sig)
{
    (void)sig;
}

/* SIGUSR1 with a handler installed WITHOUT SA_RESTART. */
static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
}

typedef enum { W_LOCK, W_SEM, W_PSEM } wait_kind;

typedef struct {
    pthread_t thread;
    wait_kind kind;
    void *obj;
    long long timeout_ms;
    pid_t tid;
    int finished;
    int rc, err;
    long long done_ms;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    __atomic_store_n(&w->tid, tl_gettid(), __ATOMIC_SEQ_CST);
    switch (w->kind) {
    case W_LOCK:
        w->rc = xlock_acquire(w->obj, w->timeout_ms);
        break;
    case W_SEM:
        w->rc = xlock_sem_acquire(w->obj, w->timeout_ms);
        break;
    case W_PSEM:
        w->rc = xlock_psem_acquire(w->obj, w->timeout_ms);
        break;
    }
    w->err = xlock_last_errno(); /* per thread */
    w->done_ms = tl_ms();
    __atomic_store_n(&w->finished, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void start(waiter *w, wait_kind kind, void *obj, long long timeout_ms)
{
    w->kind = kind;
    w->obj = obj;
    w->timeout_ms = timeout_ms;
    w->tid = 0;
    w->finished = 0;
    w->rc = 99;
    pthread_create(&w->thread, NULL, waiter_main, w);
}

/* Signals the waiter until it returns (a signal that lands between two waits of the bell
 * loop interrupts nothing, so keep signalling; the holder never lets go, so only EINTR can end
 * the wait). */
static void interrupt_until_done(waiter *w)
{
    long long end = tl_ms() + 10000;
    while (!__atomic_load_n(&w->finished, __ATOMIC_SEQ_CST) && tl_ms() < end) {
        pthread_kill(w->thread, SIGUSR1);
        struct timespec t = {0, 2000000};
        nanosleep(&t, NULL);
    }
    pthread_join(w->thread, NULL);
}

static xlock_t *open_lock(const char *ns, const char *name, int cancellable)
{
    xlock_options o = tl_opts(ns);
    o.cancellable = cancellable;
    xlock_t *l = NULL;
    if (xlock_open(&l, name, &o) != 0)
        tl_fail(__FILE__, __LINE__, "open: %s", xlock_last_message());
    return l;
}

/* An untimed wait in flock(2) returns INTERRUPTED, holding nothing. */
static void signal_interrupts_blocking_flock(void)
{
    install_handler();
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "sig", 0) == 0);
    xlock_t *l = open_lock(ns, "sig", 0);
    waiter w;
    start(&w, W_LOCK, l, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_flock) == 0);
    interrupt_until_done(&w);
    CHECK_RC(w.rc, XLOCK_EINTR);
    CHECK(w.err == EINTR);
    CHECK_RC(xlock_locked(l), 0);
    CHECK(tl_holder_stop(&h) == 0);
    CHECK_OK(xlock_acquire(l, 5000)); /* nothing stuck */
    xlock_close(l);
}

/* A timed wait (the bell loop) returns INTERRUPTED. */
static void signal_interrupts_timed_wait(void)
{
    install_handler();
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "sigt", 0) == 0);
    xlock_t *l = open_lock(ns, "sigt", 0);
    waiter w;
    start(&w, W_LOCK, l, 30000);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    interrupt_until_done(&w);
    CHECK_RC(w.rc, XLOCK_EINTR);
    CHECK_RC(xlock_locked(l), 0);
    CHECK(tl_holder_stop(&h) == 0);
    xlock_close(l);
}

/* Counting and raw semaphore waits return INTERRUPTED. */
static void signal_interrupts_semaphore_waits(void)
{
    install_handler();
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_sem_t *s, *t;
    CHECK_OK(xlock_sem_open(&s, "sigsem", 1, &o));
    CHECK_OK(xlock_sem_open(&t, "sigsem", 1, &o));
    CHECK_RC(xlock_sem_acquire(s, -1), 0);
    waiter w;
    start(&w, W_SEM, t, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    interrupt_until_done(&w);
    CHECK_RC(w.rc, XLOCK_EINTR);
    CHECK_RC(xlock_sem_held(t), 0);
    xlock_sem_close(s);
    xlock_sem_close(t);
    xlock_psem_t *p;
    CHECK_OK(xlock_psem_open(&p, "sigpsem", 0, &o));
    start(&w, W_PSEM, p, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    interrupt_until_done(&w);
    CHECK_RC(w.rc, XLOCK_EINTR);
    CHECK_RC(xlock_psem_held(p), 0);
    xlock_psem_close(p);
    int removed;
    xlock_psem_unlink(&removed, "sigpsem", &o);
}

/* xlock_cancel ends a timed wait, an untimed wait of a cancellable lock, and an in-process wait,
 * leaving nothing held. The 1 s bound is generous (the spec says 50 ms): it proves the wait did
 * not run to its 30 s deadline. */
static void cancel_ends_waits(void)
{
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "cancel", 0) == 0);
    xlock_t *timed = open_lock(ns, "cancel", 0), *untimed = open_lock(ns, "cancel", 1);
    waiter w;
    start(&w, W_LOCK, timed, 30000);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    long long t0 = tl_ms();
    CHECK_OK(xlock_cancel(timed));
    pthread_join(w.thread, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK(w.done_ms - t0 < 1000);
    CHECK_RC(xlock_locked(timed), 0);
    start(&w, W_LOCK, untimed, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0); /* cancellable: the bell loop, not flock */
    t0 = tl_ms();
    CHECK_OK(xlock_cancel(untimed));
    pthread_join(w.thread, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK(w.done_ms - t0 < 1000);
    /* A cancel with no wait in progress does not affect the next wait. */
    CHECK(tl_holder_stop(&h) == 0);
    CHECK_OK(xlock_acquire(untimed, -1));
    /* In-process: another thread waits for this object's holder on the condition variable. */
    start(&w, W_LOCK, untimed, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    CHECK_OK(xlock_cancel(untimed));
    pthread_join(w.thread, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK_RC(xlock_locked(untimed), 1); /* still ours */
    CHECK_OK(xlock_release(untimed));
    xlock_close(timed);
    xlock_close(untimed);
}

/* A token taken before a cancel makes the later wait fail at once: the race-free form for
 * bindings whose unblocking function may run before the wait starts. */
static void cancel_token_is_race_free(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "token", 0);
    unsigned long long token = xlock_cancel_token(l);
    CHECK_OK(xlock_cancel(l));
    CHECK_RC(xlock_acquire_token(l, -1, token), XLOCK_ECANCELED); /* even though it is free */
    CHECK_RC(xlock_locked(l), 0);
    CHECK_OK(xlock_acquire_token(l, -1, xlock_cancel_token(l)));
    CHECK_OK(xlock_release(l));
    xlock_options o = tl_opts(ns);
    xlock_sem_t *s;
    CHECK_OK(xlock_sem_open(&s, "token", 1, &o));
    token = xlock_sem_cancel_token(s);
    CHECK_OK(xlock_sem_cancel(s));
    CHECK_RC(xlock_sem_acquire_token(s, -1, token), XLOCK_ECANCELED);
    CHECK_RC(xlock_sem_acquire_token(s, -1, xlock_sem_cancel_token(s)), 0);
    xlock_sem_close(s);
    xlock_close(l);
}

/* Cancelling a counting-semaphore wait and a cancellable raw semaphore wait. */
static void cancel_semaphore_waits(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_sem_t *s, *t;
    CHECK_OK(xlock_sem_open(&s, "csem", 1, &o));
    CHECK_OK(xlock_sem_open(&t, "csem", 1, &o));
    CHECK_RC(xlock_sem_acquire(s, -1), 0);
    waiter w;
    start(&w, W_SEM, t, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    long long t0 = tl_ms();
    CHECK_OK(xlock_sem_cancel(t));
    pthread_join(w.thread, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK(w.done_ms - t0 < 1000);
    CHECK_RC(xlock_sem_held(t), 0);
    xlock_sem_close(s);
    xlock_sem_close(t);
    o.cancellable = 1;
    xlock_psem_t *p;
    CHECK_OK(xlock_psem_open(&p, "cpsem", 0, &o));
    start(&w, W_PSEM, p, -1);
    CHECK(tl_wait_in_syscall(&w.tid, SYS_futex) == 0);
    t0 = tl_ms();
    CHECK_OK(xlock_psem_cancel(p));
    pthread_join(w.thread, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK(w.done_ms - t0 < 1000);
    CHECK_RC(xlock_psem_held(p), 0);
    xlock_psem_close(p);
    int removed;
    xlock_psem_unlink(&removed, "cpsem", &o);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(signal_interrupts_blocking_flock),  TL_CASE(signal_interrupts_timed_wait),
        TL_CASE(signal_interrupts_semaphore_waits), TL_CASE(cancel_ends_waits),
        TL_CASE(cancel_token_is_race_free),         TL_CASE(cancel_semaphore_waits),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
