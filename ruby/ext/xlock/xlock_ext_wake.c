/* xlock_ext_wake.c — ending a wait that libxlock's cancellation cannot reach: an untimed lock wait is a
 * blocking flock(2) [XL-WAIT-2], which only a signal ends (XLOCK_EINTR) [XL-WAIT-9].
 *
 * Each waiting thread registers itself here. To interrupt it, Ruby's unblocking function (or #close)
 * marks it, and it is sent SIGVTALRM, for which Ruby installs a no-op handler without SA_RESTART (the
 * same signal Ruby's own RUBY_UBF_IO sends, so File#flock is interruptible). A signal that arrives just
 * before the thread enters flock(2) would be lost, so a helper thread sends it again every 2 ms until
 * the thread leaves its wait: the classic race is closed by repetition, as Ruby's timer thread does.
 *
 * The unblocking function is async-signal-safe (a flag, pthread_kill, sem_post): Ruby may call it from
 * its signal handler (Ctrl-C in a process with one thread), so it is passed with
 * RB_NOGVL_UBF_ASYNC_SAFE, without which Ruby starts and joins an "unblock thread" around every wait.
 * What is not async-signal-safe, libxlock's cancel (a mutex, a condition variable), the helper does. */
#include "xlock_ext.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#define RESEND_INTERVAL_NS 2000000L

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sem_t bell;               /* posted by every interrupt: wakes the helper */
static xlock_rb_waiter *waiters; /* entries live on the waiting threads' C stacks */
static int helper_started;

/* Under mu: cancels each marked waiter's wait once and signals it; returns whether any is marked. */
static int resend(void)
{
    xlock_rb_waiter *w;
    int any = 0;
    for (w = waiters; w; w = w->next) {
        if (!w->interrupt)
            continue;
        any = 1;
        if (!w->cancelled) {
            w->cancelled = 1;
            w->kind->cancel(w->handle);
        }
        pthread_kill(w->thread, SIGVTALRM);
    }
    return any;
}

static void *helper(void *unused)
{
    const struct timespec interval = {0, RESEND_INTERVAL_NS};
    (void)unused;
    for (;;) {
        int any;
        while (sem_wait(&bell) != 0 && errno == EINTR)
            ;
        do {
            pthread_mutex_lock(&mu);
            any = resend();
            pthread_mutex_unlock(&mu);
            if (any)
                nanosleep(&interval, NULL);
        } while (any);
    }
    return NULL;
}

void xlock_rb_waiters_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    int err;
    if (helper_started) /* read and written with the GVL held */
        return;
    if (sem_init(&bell, 0, 0) != 0)
        xlock_rb_raise_kind("OS_ERROR", "xlock: sem_init for the interrupt helper failed: %s",
                            strerror(errno));
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The helper takes no signal: Ruby's handlers expect Ruby threads (or its timer thread). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&t, &attr, helper, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        sem_destroy(&bell);
        xlock_rb_raise_kind("OS_ERROR", "xlock: cannot start the interrupt helper thread: %s",
                            strerror(err));
    }
    helper_started = 1;
}

void xlock_rb_waiter_enter(xlock_rb_waiter *w, const xlock_rb_kind *kind, void *handle)
{
    w->thread = pthread_self();
    w->kind = kind;
    w->handle = handle;
    w->interrupt = 0;
    w->cancelled = 0;
    pthread_mutex_lock(&mu);
    w->next = waiters;
    waiters = w;
    pthread_mutex_unlock(&mu);
}

void xlock_rb_waiter_leave(xlock_rb_waiter *w)
{
    xlock_rb_waiter **p;
    pthread_mutex_lock(&mu);
    for (p = &waiters; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

/* Async-signal-safe: w is in the list for the whole blocking region Ruby calls this in. */
void xlock_rb_waiter_interrupt(xlock_rb_waiter *w)
{
    int saved = errno;
    w->interrupt = 1;
    pthread_kill(w->thread, SIGVTALRM); /* ends a flock(2) already entered at once */
    sem_post(&bell);                    /* the helper cancels the wait and repeats the signal */
    errno = saved;
}

void xlock_rb_waiters_interrupt_handle(const void *handle)
{
    xlock_rb_waiter *w;
    pthread_mutex_lock(&mu);
    for (w = waiters; w; w = w->next) {
        if (w->handle == handle) {
            w->cancelled = 1; /* #close cancelled the handle already */
            w->interrupt = 1;
            pthread_kill(w->thread, SIGVTALRM);
            sem_post(&bell);
        }
    }
    pthread_mutex_unlock(&mu);
}

/* In the child of fork: the waiting threads and the helper are the parent's. */
void xlock_rb_waiters_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    waiters = NULL;
    helper_started = 0; /* the next wait starts a helper and makes a new bell */
}
