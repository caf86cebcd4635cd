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
/* The deadline of a timeout in seconds (nil: untimed) [XL-WAIT-3]. */
xlock_rb_deadline xlock_rb_deadline_from(VALUE timeout);
/* The milliseconds left until the deadline, rounded up ("at least"), 0 if passed, -1 if untimed. */
long long xlock_rb_remaining_ms(const xlock_rb_deadline *d);

/* What the block of #synchronize gets. */
enum { XLOCK_RB_YIELD_NOTHING, XLOCK_RB_YIELD_SELF, XLOCK_RB_YIELD_SLOT };

/* One kind of libxlock handle (xlock_t, xlock_sem_t, xlock_psem_t): the functions the common code of
 * xlock_ext_handle.c calls, each taking the libxlock handle. */
typedef struct {
    const char *what;            /* "lock", "semaphore", "POSIX semaphore", for messages */
    int yields;                  /* XLOCK_RB_YIELD_* */
    int has_path;                /* defines #path */
    int (*try_acquire)(void *h); /* >= 0 acquired (a slot index for semaphores) */
    int (*release)(void *h);
    int (*held)(void *h); /* acquisitions or permits the object holds */
    unsigned long long (*token)(void *h);
    int (*wait)(void *h, long long timeout_ms, unsigned long long token);
    int (*cancel)(void *h);
    void (*close)(void *h);              /* releases what it holds, frees */
    const char *(*bell_status)(void *h); /* locks and counting semaphores: defines #bell... */
} xlock_rb_kind;

/* The one typed-data struct of every XLock handle object. */
typedef struct {
    const xlock_rb_kind *kind;
    void *h;                  /* the libxlock handle; NULL once closed */
    int busy;                 /* threads of this process waiting on it without the GVL */
    int closing;              /* #close was called: no new operation starts; the last waiter closes */
    unsigned long generation; /* xlock_rb_fork_generation when busy and acquirers were last valid */
    /* The Thread of each acquisition held, most recent last, for #synchronize [XL-CSEM-6]. */
    VALUE acquirers;
    /* Frozen, kept after #close. path: nil for a raw semaphore; semaphore: a raw semaphore's own name
     * (nil for locks and counting semaphores, which have none since draft 2 [XL-SEM-2]); bell: the
     * bell file's path (nil for a raw semaphore). */
    VALUE name, namespace, path, semaphore, bell;
    unsigned long long dev, ino;
    int bell_word; /* [XL-SEM-7]; -1 for a raw semaphore */
    int sharing;   /* XLOCK_SHARING_* [XL-NS-15] */
    /* Kind-specific, read by the class files. */
    long capacity;
    int shared, reentrant;
} xlock_rb_handle;

/* The alloc function of a handle class (each class passes its kind). */
VALUE xlock_rb_handle_alloc(VALUE klass, const xlock_rb_kind *kind);
/* Defines XLock::<name> with alloc and the common methods: synchronize, close, closed?, name,
 * namespace, namespace_identity, sharing, path if kind->has_path, bell, bell_word and bell_status
 * if kind->bell_status. */
VALUE xlock_rb_define_handle_class(const char *name, const xlock_rb_kind *kind, rb_alloc_func_t alloc);
/* The handle of self (a TypeError unless it is one of kind; NULL kind: any). */
xlock_rb_handle *xlock_rb_get(VALUE self, const xlock_rb_kind *kind);
/* As xlock_rb_get, raising XLock::InvalidArgument for a closed object. */
xlock_rb_handle *xlock_rb_get_open(VALUE self, const xlock_rb_kind *kind);
/* For _open: the handle of self, which must never have been opened. */
xlock_rb_handle *xlock_rb_start_open(VALUE self, const xlock_rb_kind *kind);
/* What an open call gave, for xlock_rb_opened (strings are copied; path, semaphore, bell may be NULL).
 */
typedef struct {
    const char *name, *namespace, *path, *semaphore, *bell;
    unsigned long long dev, ino;
    int bell_word, sharing;
} xlock_rb_opened_info;
void xlock_rb_opened(xlock_rb_handle *r, void *h, const xlock_rb_opened_info *info);
int xlock_rb_is_open(const xlock_rb_handle *r);
/* Acquires with the `timeout:` of argc/argv, interruptibly; raises on failure (XLock::Cancelled if
 * closed meanwhile). Returns libxlock's result (>= 0). */
int xlock_rb_acquire(xlock_rb_handle *r, int argc, VALUE *argv);
/* The same with the timeout given as a value (seconds or nil): the positional form the Ruby methods
 * call, so a timed call allocates no keyword hash. */
int xlock_rb_acquire_timeout(xlock_rb_handle *r, VALUE timeout);
/* One attempt: libxlock's result (>= 0) or XLOCK_EWOULDBLOCK; raises other errors. */
int xlock_rb_try_acquire(xlock_rb_handle *r);
/* Releases the most recent acquisition; raises (XLock::NotHeld) on failure. */
void xlock_rb_release(xlock_rb_handle *r);
/* What the object holds now (0 once closed). */
int xlock_rb_held(xlock_rb_handle *r);
/* In the child after fork. */
void xlock_rb_handles_after_fork(void);

/* ---- xlock_ext_wake.c ---- */

/* A thread inside a wait, for xlock_ext_wake.c: interrupting it cancels its wait and sends it
 * SIGVTALRM until it leaves. */
typedef struct xlock_rb_waiter {
    pthread_t thread;
    const xlock_rb_kind *kind;
    void *handle;
    volatile sig_atomic_t interrupt; /* set by the unblocking function, maybe in a signal handler */
    int cancelled;                   /* the wait was cancelled (under the list's mutex) */
    struct xlock_rb_waiter *next;
} xlock_rb_waiter;

/* Starts the helper thread that repeats the signal, once per process (with the GVL held). */
void xlock_rb_waiters_start(void);
void xlock_rb_waiter_enter(xlock_rb_waiter *w, const xlock_rb_kind *kind, void *handle);
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
