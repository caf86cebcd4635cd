/* xlock_ext_posix_semaphore.c — XLock::PosixSemaphore, libxlock's raw POSIX named semaphore
 * xlock_psem_t [spec §11]. The Ruby half is lib/xlock/posix_semaphore.rb. */
#include "xlock_ext.h"

typedef struct {
    xlock_psem_t *p;
    xlock_rb_use use;
    VALUE acquirers; /* the thread of each permit held, for the block form; not reset by fork [XL-PSEM-1] */
    VALUE name, namespace, semaphore;
    unsigned long long dev, ino;
} rpsem;

static VALUE rb_cPosixSemaphore;

static void rpsem_mark(void *p)
{
    rpsem *r = p;
    rb_gc_mark(r->acquirers);
    rb_gc_mark(r->name);
    rb_gc_mark(r->namespace);
    rb_gc_mark(r->semaphore);
}

static void close_handle(void *p)
{
    rpsem *r = p;
    xlock_psem_close(r->p); /* permits still held are not posted back: a raw semaphore has no owner */
    r->p = NULL;
}

static void rpsem_free(void *p)
{
    close_handle(p);
    xfree(p);
}

static const rb_data_type_t rpsem_type = {
    "XLock::PosixSemaphore",
    {rpsem_mark, rpsem_free, NULL},
    NULL, NULL, RUBY_TYPED_FREE_IMMEDIATELY,
};

static unsigned long long token(void *h) { return xlock_psem_cancel_token(h); }
static int wait(void *h, long long ms, unsigned long long t) { return xlock_psem_acquire_token(h, ms, t); }
static int cancel(void *h) { return xlock_psem_cancel(h); }
static const xlock_rb_waitable psem_waitable = {token, wait, cancel};

static VALUE rpsem_alloc(VALUE klass)
{
    rpsem *r;
    VALUE self = TypedData_Make_Struct(klass, rpsem, &rpsem_type, r);
    r->acquirers = r->name = r->namespace = r->semaphore = Qnil;
    r->use.close = close_handle;
    r->use.obj = r;
    return self;
}

static rpsem *get(VALUE self)
{
    return rb_check_typeddata(self, &rpsem_type);
}

static rpsem *get_open(VALUE self)
{
    rpsem *r = get(self);
    if (!r->p || r->use.closing)
        xlock_rb_raise_kind("INVALID_ARGUMENT", "POSIX semaphore '%" PRIsVALUE "' is closed", r->name);
    return r;
}

/* _open(name, value, namespace, allow_unsupported_fs), called by #initialize. */
static VALUE rpsem_open(VALUE self, VALUE name, VALUE value, VALUE namespace, VALUE allow)
{
    rpsem *r = get(self);
    xlock_options opts;
    int rc;
    if (r->p || r->use.closing)
        rb_raise(rb_eRuntimeError, "XLock::PosixSemaphore#initialize called twice");
    xlock_rb_check_name(name);
    if (!RB_FIXNUM_P(value) || FIX2LONG(value) < 0 || FIX2LONG(value) > 0x7fffffffL)
        xlock_rb_raise_kind("INVALID_ARGUMENT", "value must be an Integer from 0 to SEM_VALUE_MAX, not %+" PRIsVALUE,
                            value);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    opts.cancellable = 1; /* #close from another thread ends an untimed wait [XL-WAIT-10] */
    rc = xlock_psem_open_n(&r->p, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), FIX2LONG(value), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    r->acquirers = rb_ary_new();
    r->name = xlock_rb_frozen_utf8(xlock_psem_name(r->p));
    r->namespace = xlock_rb_frozen_utf8(xlock_psem_namespace(r->p));
    r->semaphore = xlock_rb_frozen_utf8(xlock_psem_semaphore(r->p));
    xlock_psem_namespace_id(&r->dev, &r->ino, r->p);
    return self;
}

/*
 * acquire(timeout: nil) -> true
 * sem_wait / sem_clockwait until the deadline [XL-PSEM-4], interruptible like XLock::Lock#lock.
 * Raises XLock::Timeout.
 */
static VALUE rpsem_acquire(int argc, VALUE *argv, VALUE self)
{
    rpsem *r = get_open(self);
    xlock_rb_deadline deadline = xlock_rb_deadline_from_args(argc, argv);
    int rc = xlock_psem_try_acquire(r->p); /* sem_trywait first: no GVL release when a permit is free */
    if (rc == XLOCK_EWOULDBLOCK)
        rc = xlock_rb_wait(&psem_waitable, r->p, &deadline, &r->use);
    if (rc < 0) {
        if (r->use.closing)
            xlock_rb_raise_kind("CANCELLED", "POSIX semaphore '%" PRIsVALUE "' (%" PRIsVALUE ") was closed while waiting",
                                r->name, r->semaphore);
        xlock_rb_raise(rc);
    }
    rb_ary_push(r->acquirers, rb_thread_current());
    return Qtrue;
}

/* try_acquire -> true, or false if the value is 0 (sem_trywait) [XL-PSEM-4]. */
static VALUE rpsem_try_acquire(VALUE self)
{
    rpsem *r = get_open(self);
    int rc = xlock_psem_try_acquire(r->p);
    if (rc == XLOCK_EWOULDBLOCK)
        return Qfalse;
    if (rc < 0)
        xlock_rb_raise(rc);
    rb_ary_push(r->acquirers, rb_thread_current());
    return Qtrue;
}

/* release -> self. sem_post of a permit this object holds; XLock::NotHeld if none [XL-PSEM-4]. */
static VALUE rpsem_release(VALUE self)
{
    rpsem *r = get_open(self);
    int rc = xlock_psem_release(r->p);
    if (rc < 0)
        xlock_rb_raise(rc);
    rb_ary_pop(r->acquirers);
    return self;
}

static VALUE rpsem_held(VALUE self)
{
    rpsem *r = get(self);
    if (!r->p || r->use.closing)
        return INT2FIX(0);
    return INT2FIX(xlock_psem_held(r->p));
}

/* How many of the permits this object holds the current thread acquired. */
static long held_by_current_thread(rpsem *r)
{
    VALUE current = rb_thread_current();
    long i, n = 0;
    if (!r->p || r->use.closing)
        return 0;
    for (i = 0; i < RARRAY_LEN(r->acquirers); i++)
        if (RARRAY_AREF(r->acquirers, i) == current)
            n++;
    return n;
}

typedef struct {
    VALUE self;
    long before;
} sync_frame;

static VALUE sync_yield(VALUE unused)
{
    return rb_yield_values(0);
}

static VALUE sync_release(VALUE arg)
{
    sync_frame *frame = (sync_frame *)arg;
    rpsem *r = get(frame->self);
    if (held_by_current_thread(r) > frame->before)
        rpsem_release(frame->self);
    return Qnil;
}

/*
 * synchronize(timeout: nil) { ... } -> the block's value
 * Acquires (as #acquire), yields, releases, whatever ends the block (see XLock::Lock#synchronize).
 */
static VALUE rpsem_synchronize(int argc, VALUE *argv, VALUE self)
{
    sync_frame frame;
    rb_need_block();
    frame.self = self;
    frame.before = held_by_current_thread(get(self));
    rpsem_acquire(argc, argv, self);
    return rb_ensure(sync_yield, Qnil, sync_release, (VALUE)&frame);
}

/* value -> the semaphore's current value (sem_getvalue). */
static VALUE rpsem_value(VALUE self)
{
    rpsem *r = get_open(self);
    int value = 0, rc = xlock_psem_value(&value, r->p);
    if (rc < 0)
        xlock_rb_raise(rc);
    return INT2NUM(value);
}

/* close -> nil. sem_close; permits still held are NOT posted back [XL-PSEM-1]. */
static VALUE rpsem_close(VALUE self)
{
    rpsem *r = get(self);
    if (!r->use.closing)
        xlock_rb_close(&r->use, &psem_waitable, r->p);
    return Qnil;
}

static VALUE rpsem_closed_p(VALUE self)
{
    rpsem *r = get(self);
    return (!r->p || r->use.closing) ? Qtrue : Qfalse;
}

static VALUE rpsem_name(VALUE self) { return get(self)->name; }
static VALUE rpsem_namespace(VALUE self) { return get(self)->namespace; }
static VALUE rpsem_semaphore_name(VALUE self) { return get(self)->semaphore; }

static VALUE rpsem_namespace_identity(VALUE self)
{
    rpsem *r = get(self);
    if (NIL_P(r->name))
        return Qnil;
    return rb_assoc_new(ULL2NUM(r->dev), ULL2NUM(r->ino));
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
    rb_cPosixSemaphore = rb_define_class_under(rb_mXLock, "PosixSemaphore", rb_cObject);
    rb_define_alloc_func(rb_cPosixSemaphore, rpsem_alloc);
    rb_define_private_method(rb_cPosixSemaphore, "_open", rpsem_open, 4);
    rb_define_method(rb_cPosixSemaphore, "acquire", rpsem_acquire, -1);
    rb_define_method(rb_cPosixSemaphore, "try_acquire", rpsem_try_acquire, 0);
    rb_define_method(rb_cPosixSemaphore, "release", rpsem_release, 0);
    rb_define_method(rb_cPosixSemaphore, "held", rpsem_held, 0);
    rb_define_method(rb_cPosixSemaphore, "synchronize", rpsem_synchronize, -1);
    rb_define_method(rb_cPosixSemaphore, "value", rpsem_value, 0);
    rb_define_method(rb_cPosixSemaphore, "close", rpsem_close, 0);
    rb_define_method(rb_cPosixSemaphore, "closed?", rpsem_closed_p, 0);
    rb_define_method(rb_cPosixSemaphore, "name", rpsem_name, 0);
    rb_define_method(rb_cPosixSemaphore, "namespace", rpsem_namespace, 0);
    rb_define_method(rb_cPosixSemaphore, "semaphore_name", rpsem_semaphore_name, 0);
    rb_define_method(rb_cPosixSemaphore, "namespace_identity", rpsem_namespace_identity, 0);
    rb_define_singleton_method(rb_cPosixSemaphore, "_unlink", rpsem_s_unlink, 3);
    rb_funcall(rb_cPosixSemaphore, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_unlink")));
}
