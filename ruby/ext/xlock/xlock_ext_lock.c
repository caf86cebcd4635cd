/* xlock_ext_lock.c — XLock::Lock, a libxlock xlock_t [spec §6-§9]: what differs from the other handle
 * classes (xlock_ext_handle.c). The Ruby half is lib/xlock/lock.rb. */
#include "xlock_ext.h"

static int try_acquire(void *h)
{
    return xlock_try_acquire(h);
}
static int release(void *h)
{
    return xlock_release(h);
}
static int held(void *h)
{
    return xlock_locked(h);
}
static unsigned long long token(void *h)
{
    return xlock_cancel_token(h);
}
static int wait(void *h, long long ms, unsigned long long t)
{
    return xlock_acquire_token(h, ms, t);
}
static int cancel(void *h)
{
    return xlock_cancel(h);
}
static void close_lock(void *h)
{
    xlock_close(h); /* releases it if held [XL-HOLD-10] */
}
static const char *bell_status(void *h)
{
    return xlock_bell_status(h);
}

static const xlock_rb_kind lock_kind = {
    "lock", XLOCK_RB_YIELD_SELF, 1,           try_acquire, release, held, token, wait,
    cancel, close_lock,          bell_status,
};

static VALUE rlock_alloc(VALUE klass)
{
    return xlock_rb_handle_alloc(klass, &lock_kind);
}

/* _open(name, namespace, shared, reentrant, allow_unsupported_fs), called by #initialize. */
static VALUE rlock_open(VALUE self, VALUE name, VALUE namespace, VALUE shared, VALUE reentrant,
                        VALUE allow)
{
    xlock_rb_handle *r = xlock_rb_start_open(self, &lock_kind);
    xlock_options opts;
    xlock_t *l = NULL;
    unsigned long long dev = 0, ino = 0;
    int rc;
    xlock_rb_check_name(name);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    opts.shared = RTEST(shared);
    opts.reentrant = RTEST(reentrant);
    rc = xlock_open_n(&l, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    xlock_namespace_id(&dev, &ino, l);
    {
        xlock_rb_opened_info info = {xlock_name(l), xlock_namespace(l),      xlock_path(l),
                                     NULL,          xlock_bell(l),           dev,
                                     ino,           xlock_lock_bell_word(l), xlock_sharing(l)};
        xlock_rb_opened(r, l, &info);
    }
    r->shared = opts.shared;
    r->reentrant = opts.reentrant;
    return self;
}

/*
 * _acquire(timeout) -> self: XLock::Lock#lock(timeout: nil) (lib/xlock/lock.rb passes the keyword on, so
 * a timed call allocates no keyword hash). Acquires, waiting at least +timeout+ seconds (nil: as long as
 * it takes) [XL-WAIT-3]. Other Ruby threads run meanwhile; Thread#raise, Thread#kill, Timeout.timeout
 * and Ctrl-C end the wait with nothing held. Raises XLock::Timeout, XLock::AlreadyHeld (this thread
 * holds this non-reentrant lock [XL-HOLD-3]).
 */
static VALUE rlock_lock_timeout(VALUE self, VALUE timeout)
{
    xlock_rb_acquire_timeout(xlock_rb_get_open(self, &lock_kind), timeout);
    return self;
}

/*
 * try_lock -> true or false
 * One non-blocking attempt [XL-WAIT-1], like Mutex#try_lock: false if the lock is held elsewhere.
 * Raises XLock::AlreadyHeld if this thread holds this non-reentrant object [XL-HOLD-3].
 */
static VALUE rlock_try_lock(VALUE self)
{
    return xlock_rb_try_acquire(xlock_rb_get_open(self, &lock_kind)) >= 0 ? Qtrue : Qfalse;
}

/*
 * unlock -> self
 * Releases [XL-LOCK-9]. Raises XLock::NotHeld if this object does not hold it [XL-HOLD-6], also in a
 * forked child [XL-HOLD-7].
 */
static VALUE rlock_unlock(VALUE self)
{
    xlock_rb_release(xlock_rb_get_open(self, &lock_kind));
    return self;
}

/* locked? -> true if this object holds the lock (false after #close). */
static VALUE rlock_locked_p(VALUE self)
{
    return xlock_rb_held(xlock_rb_get(self, &lock_kind)) == 1 ? Qtrue : Qfalse;
}

static VALUE rlock_shared_p(VALUE self)
{
    return xlock_rb_get(self, &lock_kind)->shared ? Qtrue : Qfalse;
}
static VALUE rlock_reentrant_p(VALUE self)
{
    return xlock_rb_get(self, &lock_kind)->reentrant ? Qtrue : Qfalse;
}

/* Lock._remove(name, namespace, allow_unsupported_fs) -> true/false [XL-RM-2]. */
static VALUE rlock_s_remove(VALUE klass, VALUE name, VALUE namespace, VALUE allow)
{
    xlock_options opts;
    int removed = 0, rc;
    xlock_rb_check_name(name);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_remove_n(&removed, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    return removed ? Qtrue : Qfalse;
}

void xlock_rb_init_lock(void)
{
    VALUE c = xlock_rb_define_handle_class("Lock", &lock_kind, rlock_alloc);
    rb_define_private_method(c, "_open", rlock_open, 5);
    rb_define_private_method(c, "_acquire", rlock_lock_timeout, 1);
    rb_define_method(c, "try_lock", rlock_try_lock, 0);
    rb_define_method(c, "unlock", rlock_unlock, 0);
    rb_define_method(c, "locked?", rlock_locked_p, 0);
    rb_define_method(c, "shared?", rlock_shared_p, 0);
    rb_define_method(c, "reentrant?", rlock_reentrant_p, 0);
    rb_define_singleton_method(c, "_remove", rlock_s_remove, 3);
    rb_funcall(c, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_remove")));
}
