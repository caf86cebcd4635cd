/* xlock_ext_wake.c — ending a wait that libxlock's cancellation cannot reach: an untimed lock wait is a
 * blocking flock(2) [XL-WAIT-2], which only a signal ends (XLOCK_EINTR) [XL-WAIT-9].
 *
 * Each waiting thread registers itself here. To interrupt it, Ruby's unblocking function (or #close)
 * marks it, and it is sent SIGVTALRM, for which Ruby installs a no-op handler without SA_RESTART (the
 * same signal Ruby's own RUBY_UBF_IO sends, so File#flock is interruptible). A signal that arrives just
 * before the thread enters flock(2) would be lost, so a helper thread sends it again every 2 ms until the
 * thread leaves its wait: the classic race is closed by repetition, as Ruby's timer thread does. */
#include "xlock_ext.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#define RESEND_INTERVAL_NS 2000000L

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static xlock_rb_waiter *waiters; /* entries live on the waiting threads' C stacks */
static int resender_started;

static int any_marked(void)
{
    xlock_rb_waiter *w;
    for (w = waiters; w; w = w->next)
        if (w->interrupt)
            return 1;
    return 0;
}

static void *resender(void *unused)
{
    const struct timespec interval = {0, RESEND_INTERVAL_NS};
    (void)unused;
    for (;;) {
        xlock_rb_waiter *w;
        pthread_mutex_lock(&mu);
        while (!any_marked())
            pthread_cond_wait(&wake, &mu);
        for (w = waiters; w; w = w->next)
            if (w->interrupt)
                pthread_kill(w->thread, SIGVTALRM);
        pthread_mutex_unlock(&mu);
        nanosleep(&interval, NULL);
    }
    return NULL;
}

/* Under mu: marks w, signals it now, and lets the helper repeat. */
static void mark(xlock_rb_waiter *w)
{
    w->interrupt = 1;
    pthread_kill(w->thread, SIGVTALRM);
    if (!resender_started) {
        pthread_t t;
        pthread_attr_t attr;
        sigset_t all, old;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* The helper takes no signal: Ruby's handlers expect Ruby threads (or its timer thread). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        resender_started = pthread_create(&t, &attr, resender, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&wake);
}

void xlock_rb_waiter_enter(xlock_rb_waiter *w, const void *handle)
{
    w->thread = pthread_self();
    w->handle = handle;
    w->interrupt = 0;
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

void xlock_rb_waiter_interrupt(xlock_rb_waiter *w)
{
    pthread_mutex_lock(&mu);
    mark(w);
    pthread_mutex_unlock(&mu);
}

void xlock_rb_waiters_interrupt_handle(const void *handle)
{
    xlock_rb_waiter *w;
    pthread_mutex_lock(&mu);
    for (w = waiters; w; w = w->next)
        if (w->handle == handle)
            mark(w);
    pthread_mutex_unlock(&mu);
}

/* In the child of fork: the waiting threads and the helper are the parent's. */
void xlock_rb_waiters_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&wake, NULL);
    waiters = NULL;
    resender_started = 0;
}
