/* xlock_ext_posix_semaphore.c — XLock::PosixSemaphore, libxlock's raw POSIX named semaphore
 * xlock_psem_t [spec §11]: what differs from the other handle classes (xlock_ext_handle.c). The Ruby
 * half is lib/xlock/posix_semaphore.rb. */
#include "xlock_ext.h"

static int try_acquire(void *h)
{
    return xlock_psem_try_acquire(h);
}
static int release(void *h)
{
    return xlock_psem_release(h);
}
static int held(void *h)
{
    return xlock_psem_held(h);
}
static unsigned long long token(void *h)
{
    return xlock_psem_cancel_token(h);
}
static int wait(void *h, long long ms, unsigned long long t)
{
    return xlock_psem_acquire_token(h, ms, t);
}
static int cancel(void *h)
{
    return xlock_psem_cancel(h);
}
/* Posts back the permits the object holds [XL-PSEM-6] (none in a forked child [XL-HOLD-11]). */
static void close_psem(void *h)
{
    xlock_psem_close(h);
}

static const xlock_rb_kind psem_kind = {
    "POSIX semaphore",
    XLOCK_RB_YIELD_NOTHING,
    0,
    try_acquire,
    release,
    held,
    token,
    wait,
    cancel,
    close_psem,
    NULL,
};

static VALUE rpsem_alloc(VALUE klass)
{
    return xlock_rb_handle_alloc(klass, &psem_kind);
}

/* _open(name, value, namespace, allow_unsupported_fs), called by #initialize. */
static VALUE rpsem_open(VALUE self, VALUE name, VALUE value, VALUE namespace, VALUE allow)
{
    xlock_rb_handle *r = xlock_rb_start_open(self, &psem_kind);
    xlock_options opts;
    xlock_psem_t *p = NULL;
    unsigned long long dev = 0, ino = 0;
    int rc;
    xlock_rb_check_name(name);
    if (!RB_FIXNUM_P(value) || FIX2LONG(value) < 0 || FIX2LONG(value) > 0x7fffffffL)
        xlock_rb_raise_kind("INVALID_ARGUMENT",
                            "value must be an Integer from 0 to SEM_VALUE_MAX, not %+" PRIsVALUE, value);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    opts.cancellable = 1; /* #close from another thread ends an untimed wait [XL-WAIT-10] */
    rc = xlock_psem_open_n(&p, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), FIX2LONG(value), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    xlock_psem_namespace_id(&dev, &ino, p);
    {
        xlock_rb_opened_info info = {xlock_psem_name(p),
                                     xlock_psem_namespace(p),
                                     NULL,
                                     xlock_psem_semaphore(p),
                                     NULL,
                                     dev,
                                     ino,
                                     -1,
                                     xlock_psem_sharing(p)};
        xlock_rb_opened(r, p, &info);
    }
    return self;
}

/*
 * _acquire(timeout) -> true: XLock::PosixSemaphore#acquire(timeout: nil) (called from
 * lib/xlock/posix_semaphore.rb).
 * sem_wait / sem_clockwait until the deadline [XL-PSEM-4], interruptible like XLock::Lock#lock.
 * Raises XLock::Timeout.
 */
static VALUE rpsem_acquire_timeout(VALUE self, VALUE timeout)
{
    xlock_rb_acquire_timeout(xlock_rb_get_open(self, &psem_kind), timeout);
    return Qtrue;
}

/* try_acquire -> true, or false if the value is 0 (sem_trywait) [XL-PSEM-4]. */
static VALUE rpsem_try_acquire(VALUE self)
{
    return xlock_rb_try_acquire(xlock_rb_get_open(self, &psem_kind)) >= 0 ? Qtrue : Qfalse;
}

/* release -> self. sem_post of a permit this object holds; XLock::NotHeld if none [XL-PSEM-4]. */
static VALUE rpsem_release(VALUE self)
{
    xlock_rb_release(xlock_rb_get_open(self, &psem_kind));
    return self;
}

static VALUE rpsem_held(VALUE self)
{
    return INT2FIX(xlock_rb_held(xlock_rb_get(self, &psem_kind)));
}

/* value -> the semaphore's current value (sem_getvalue). */
static VALUE rpsem_value(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get_open(self, &psem_kind);
    int value = 0, rc = xlock_psem_value(&value, r->h);
    if (rc < 0)
        xlock_rb_raise(rc);
    return INT2NUM(value);
}

/* semaphore_name -> "/xl1p..." [XL-PSEM-2]. */
static VALUE rpsem_semaphore_name(VALUE self)
{
    return xlock_rb_get(self, &psem_kind)->semaphore;
}

/* PosixSemaphore._unlink(name, namespace, allow_unsupported_fs) -> true/false [XL-PSEM-5]. */
static VALUE rpsem_s_unlink(VALUE klass, VALUE name, VALUE namespace, VALUE allow)
{
    xlock_options opts;
    int removed = 0, rc;
    xlock_rb_check_name(name);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_psem_unlink_n(&removed, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    return removed ? Qtrue : Qfalse;
}

void xlock_rb_init_posix_semaphore(void)
{
    VALUE c = xlock_rb_define_handle_class("PosixSemaphore", &psem_kind, rpsem_alloc);
    rb_define_private_method(c, "_open", rpsem_open, 4);
    rb_define_private_method(c, "_acquire", rpsem_acquire_timeout, 1);
    rb_define_method(c, "try_acquire", rpsem_try_acquire, 0);
    rb_define_method(c, "release", rpsem_release, 0);
    rb_define_method(c, "held", rpsem_held, 0);
    rb_define_method(c, "value", rpsem_value, 0);
    rb_define_method(c, "semaphore_name", rpsem_semaphore_name, 0);
    rb_define_singleton_method(c, "_unlink", rpsem_s_unlink, 3);
    rb_funcall(c, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_unlink")));
}
