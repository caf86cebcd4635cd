/* xlock_ext.h — what the parts of the Ruby binding share (errors, timeouts, the interruptible wait). */
#ifndef XLOCK_EXT_H
#define XLOCK_EXT_H

#include <pthread.h>
#include <signal.h>

#include <ruby.h>
#include <xlock.h>

extern VALUE rb_mXLock;

/* Raises the XLock:: exception for a libxlock error code, with the message libxlock left for this
 * thread (naming the lock and path [XL-ERR-3]) and, for OS_ERROR, its errno. Never returns. */
NORETURN(void xlock_rb_raise(int code));
/* Raises an exception of kind `kind` ("INVALID_ARGUMENT", ...) with a formatted message. */
NORETURN(void xlock_rb_raise_kind(const char *kind, const char *fmt, ...));

/* The name as UTF-8 bytes (a String prepared by XLock::Names); a non-String raises. */
void xlock_rb_check_name(VALUE name);
/* A frozen UTF-8 String copy of a NUL-terminated C string (names and paths from libxlock). */
VALUE xlock_rb_frozen_utf8(const char *s);
/* Fills opts from a namespace (nil or a String without NUL [XL-NS-3]) and flags. The namespace
 * String must stay alive while opts is used. */
void xlock_rb_options(xlock_options *opts, VALUE namespace, int allow_unsupported_fs);

/* A deadline [XL-WAIT-3]: untimed, or CLOCK_MONOTONIC nanoseconds. */
typedef struct {
    int timed;
    unsigned long long at_ns;
} xlock_rb_deadline;

/* Parses the `timeout:` keyword of argc/argv (seconds: Integer, Float, Rational; nil or negative:
 * untimed) into a deadline computed once, now. Returns 1 if a timeout was given. */
xlock_rb_deadline xlock_rb_deadline_from_args(int argc, VALUE *argv);
/* The milliseconds left until the deadline, rounded up ("at least"), 0 if passed, -1 if untimed. */
long long xlock_rb_remaining_ms(const xlock_rb_deadline *d);

/* One kind of waitable libxlock handle, as seen by the interruptible wait. */
typedef struct {
    unsigned long long (*token)(void *handle);
    int (*wait)(void *handle, long long timeout_ms, unsigned long long token);
    int (*cancel)(void *handle);
} xlock_rb_waitable;

/* How many threads of this process wait on an object without the GVL, and whether #close was called
 * (then the last waiter to leave closes the handle: libxlock's close must not race other calls). */
typedef struct {
    int busy;
    int closing;              /* #close was called: no new operation starts */
    unsigned long generation; /* xlock_rb_fork_generation when busy was last counted */
    void (*close)(void *obj); /* closes the libxlock handle of obj (idempotent) */
    void *obj;
} xlock_rb_use;

/* The number of threads waiting; 0 in a forked child (the parent's waiters are not there). */
int xlock_rb_busy(xlock_rb_use *use);
/* #close: marks the object closing and closes the handle now if nobody waits on it, else cancels
 * the waits and leaves the close to the last waiter. */
void xlock_rb_close(xlock_rb_use *use, const xlock_rb_waitable *kind, void *handle);

/* Waits on handle until acquired, failed or the deadline passed, without the GVL. Ruby's interrupts
 * (Thread#raise, Thread#kill, Timeout, signals such as SIGINT) cancel the wait through its
 * unblocking function [XL-WAIT-10]; Ruby then raises the interrupt, or, if none is due (a deferred
 * interrupt, a cancel aimed at another thread waiting on the same handle, a stray EINTR), the wait
 * is retried with the remaining deadline [XL-WAIT-9]. Returns libxlock's result (>= 0 on success),
 * or XLOCK_ECANCELED if the object was closed meanwhile (the handle is then already closed). */
int xlock_rb_wait(const xlock_rb_waitable *kind, void *handle, const xlock_rb_deadline *deadline,
                  xlock_rb_use *use);

/* A thread inside a wait, for xlock_ext_wake.c: interrupting it cancels its wait and sends it
 * SIGVTALRM until it leaves. */
typedef struct xlock_rb_waiter {
    pthread_t thread;
    const xlock_rb_waitable *kind;
    void *handle;
    volatile sig_atomic_t interrupt; /* set by the unblocking function, maybe in a signal handler */
    int cancelled;                   /* the wait was cancelled (under the list's mutex) */
    struct xlock_rb_waiter *next;
} xlock_rb_waiter;

/* Starts the helper thread that repeats the signal, once per process (with the GVL held). */
void xlock_rb_waiters_start(void);
void xlock_rb_waiter_enter(xlock_rb_waiter *w, const xlock_rb_waitable *kind, void *handle);
void xlock_rb_waiter_leave(xlock_rb_waiter *w);
/* Async-signal-safe: Ruby's unblocking function. */
void xlock_rb_waiter_interrupt(xlock_rb_waiter *w);
void xlock_rb_waiters_interrupt_handle(const void *handle);
void xlock_rb_waiters_after_fork(void);

/* Incremented in the child after fork: tells per-object bookkeeping that it belongs to the parent. */
extern unsigned long xlock_rb_fork_generation;

void xlock_rb_init_lock(void);
void xlock_rb_init_semaphore(void);
void xlock_rb_init_posix_semaphore(void);
void xlock_rb_init_names(void);

#endif
