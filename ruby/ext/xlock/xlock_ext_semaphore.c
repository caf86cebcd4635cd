/* xlock_ext_semaphore.c — XLock::Semaphore, libxlock's crash-safe counting semaphore xlock_sem_t
 * [spec §10]: what differs from the other handle classes (xlock_ext_handle.c). The Ruby half is
 * lib/xlock/semaphore.rb. */
#include "xlock_ext.h"

static int try_acquire(void *h)
{
    return xlock_sem_try_acquire(h);
}
static int release(void *h)
{
    return xlock_sem_release(h);
}
static int held(void *h)
{
    return xlock_sem_held(h);
}
static unsigned long long token(void *h)
{
    return xlock_sem_cancel_token(h);
}
static int wait(void *h, long long ms, unsigned long long t)
{
    return xlock_sem_acquire_token(h, ms, t);
}
static int cancel(void *h)
{
    return xlock_sem_cancel(h);
}
static void close_sem(void *h)
{
    xlock_sem_close(h); /* returns every permit held */
}
static const char *bell_status(void *h)
{
    return xlock_sem_bell_status(h);
}

static const xlock_rb_kind sem_kind = {
    "semaphore", XLOCK_RB_YIELD_SLOT, 1,           try_acquire, release, held, token, wait,
    cancel,      close_sem,           bell_status,
};

static VALUE rsem_alloc(VALUE klass)
{
    return xlock_rb_handle_alloc(klass, &sem_kind);
}

/* _open(name, capacity, namespace, allow_unsupported_fs), called by #initialize. */
static VALUE rsem_open(VALUE self, VALUE name, VALUE capacity, VALUE namespace, VALUE allow)
{
    xlock_rb_handle *r = xlock_rb_start_open(self, &sem_kind);
    xlock_options opts;
    xlock_sem_t *s = NULL;
    unsigned long long dev = 0, ino = 0;
    int rc;
    xlock_rb_check_name(name);
    if (!RB_FIXNUM_P(capacity))
        xlock_rb_raise_kind("INVALID_ARGUMENT",
                            "capacity must be an Integer from 1 to %d, not %+" PRIsVALUE,
                            XLOCK_CAPACITY_MAX, capacity);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_sem_open_n(&s, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), FIX2LONG(capacity), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    xlock_sem_namespace_id(&dev, &ino, s);
    {
        xlock_rb_opened_info info = {xlock_sem_name(s),
                                     xlock_sem_namespace(s),
                                     xlock_sem_path(s),
                                     NULL,
                                     xlock_sem_bell(s),
                                     dev,
                                     ino,
                                     xlock_sem_bell_word(s),
                                     xlock_sem_sharing(s)};
        xlock_rb_opened(r, s, &info);
    }
    r->capacity = xlock_sem_capacity(s);
    return self;
}

/*
 * _acquire(timeout) -> slot index: XLock::Semaphore#acquire(timeout: nil) (called from
 * lib/xlock/semaphore.rb). Takes a permit, waiting at least +timeout+ seconds (nil: as long as it takes)
 * [XL-WAIT-11]; returns the slot held. Interruptible like XLock::Lock#lock. Raises XLock::Timeout.
 */
static VALUE rsem_acquire_timeout(VALUE self, VALUE timeout)
{
    return INT2FIX(xlock_rb_acquire_timeout(xlock_rb_get_open(self, &sem_kind), timeout));
}

/* try_acquire -> slot index, or nil if every permit is held [XL-CSEM-5]. */
static VALUE rsem_try_acquire(VALUE self)
{
    int rc = xlock_rb_try_acquire(xlock_rb_get_open(self, &sem_kind));
    return rc >= 0 ? INT2FIX(rc) : Qnil;
}

/* release -> self. Returns the most recently acquired permit [XL-CSEM-6]; XLock::NotHeld if none. */
static VALUE rsem_release(VALUE self)
{
    xlock_rb_release(xlock_rb_get_open(self, &sem_kind));
    return self;
}

/* held -> the number of permits this object holds. */
static VALUE rsem_held(VALUE self)
{
    return INT2FIX(xlock_rb_held(xlock_rb_get(self, &sem_kind)));
}
static VALUE rsem_capacity(VALUE self)
{
    return LONG2NUM(xlock_rb_get(self, &sem_kind)->capacity);
}

/* Semaphore._remove(name, capacity, namespace, allow_unsupported_fs) -> true/false [XL-RM-3]; capacity
 * 0: the one the capacity file records. */
static VALUE rsem_s_remove(VALUE klass, VALUE name, VALUE capacity, VALUE namespace, VALUE allow)
{
    xlock_options opts;
    int removed = 0, rc;
    xlock_rb_check_name(name);
    if (!RB_FIXNUM_P(capacity))
        xlock_rb_raise_kind("INVALID_ARGUMENT",
                            "capacity must be an Integer from 1 to %d, not %+" PRIsVALUE,
                            XLOCK_CAPACITY_MAX, capacity);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_sem_remove_n(&removed, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), FIX2LONG(capacity),
                            &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    return removed ? Qtrue : Qfalse;
}

void xlock_rb_init_semaphore(void)
{
    VALUE c = xlock_rb_define_handle_class("Semaphore", &sem_kind, rsem_alloc);
    rb_define_private_method(c, "_open", rsem_open, 4);
    rb_define_private_method(c, "_acquire", rsem_acquire_timeout, 1);
    rb_define_method(c, "try_acquire", rsem_try_acquire, 0);
    rb_define_method(c, "release", rsem_release, 0);
    rb_define_method(c, "held", rsem_held, 0);
    rb_define_method(c, "capacity", rsem_capacity, 0);
    rb_define_singleton_method(c, "_remove", rsem_s_remove, 4);
    rb_funcall(c, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_remove")));
}
