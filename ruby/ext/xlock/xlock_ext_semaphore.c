/* xlock_ext_semaphore.c — XLock::Semaphore, libxlock's crash-safe counting semaphore xlock_sem_t
 * [spec §10]. The Ruby half is lib/xlock/semaphore.rb. */
#include "xlock_ext.h"

typedef struct {
    xlock_sem_t *s;
    xlock_rb_use use;
    /* The thread of each permit held, most recent last (release returns the most recent [XL-CSEM-6]);
     * pushed in C right after the acquisition, for #synchronize. */
    VALUE acquirers;
    unsigned long acquirers_generation;
    VALUE name, path, namespace, doorbell;
    unsigned long long dev, ino;
    long capacity;
} rsem;

static VALUE rb_cSemaphore;

static void rsem_mark(void *p)
{
    rsem *r = p;
    rb_gc_mark(r->acquirers);
    rb_gc_mark(r->name);
    rb_gc_mark(r->path);
    rb_gc_mark(r->namespace);
    rb_gc_mark(r->doorbell);
}

static void close_handle(void *p)
{
    rsem *r = p;
    xlock_sem_close(r->s); /* returns every permit held */
    r->s = NULL;
}

static void rsem_free(void *p)
{
    close_handle(p);
    xfree(p);
}

static const rb_data_type_t rsem_type = {
    "XLock::Semaphore",
    {rsem_mark, rsem_free, NULL},
    NULL, NULL, RUBY_TYPED_FREE_IMMEDIATELY,
};

static unsigned long long token(void *h) { return xlock_sem_cancel_token(h); }
static int wait(void *h, long long ms, unsigned long long t) { return xlock_sem_acquire_token(h, ms, t); }
static int cancel(void *h) { return xlock_sem_cancel(h); }
static const xlock_rb_waitable sem_waitable = {token, wait, cancel};

static VALUE rsem_alloc(VALUE klass)
{
    rsem *r;
    VALUE self = TypedData_Make_Struct(klass, rsem, &rsem_type, r);
    r->acquirers = r->name = r->path = r->namespace = r->doorbell = Qnil;
    r->use.close = close_handle;
    r->use.obj = r;
    return self;
}

static rsem *get(VALUE self)
{
    return rb_check_typeddata(self, &rsem_type);
}

static rsem *get_open(VALUE self)
{
    rsem *r = get(self);
    if (!r->s || r->use.closing)
        xlock_rb_raise_kind("INVALID_ARGUMENT", "semaphore '%" PRIsVALUE "' is closed", r->name);
    return r;
}

/* _open(name, capacity, namespace, allow_unsupported_fs), called by #initialize. */
static VALUE rsem_open(VALUE self, VALUE name, VALUE capacity, VALUE namespace, VALUE allow)
{
    rsem *r = get(self);
    xlock_options opts;
    long cap;
    int rc;
    if (r->s || r->use.closing)
        rb_raise(rb_eRuntimeError, "XLock::Semaphore#initialize called twice");
    xlock_rb_check_name(name);
    if (!RB_INTEGER_TYPE_P(capacity) || !RB_FIXNUM_P(capacity))
        xlock_rb_raise_kind("INVALID_ARGUMENT", "capacity must be an Integer from 1 to %d, not %+" PRIsVALUE,
                            XLOCK_CAPACITY_MAX, capacity);
    cap = FIX2LONG(capacity);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_sem_open_n(&r->s, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), cap, &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    r->acquirers = rb_ary_new();
    r->acquirers_generation = xlock_rb_fork_generation;
    r->name = xlock_rb_frozen_utf8(xlock_sem_name(r->s));
    r->path = xlock_rb_frozen_utf8(xlock_sem_path(r->s));
    r->namespace = xlock_rb_frozen_utf8(xlock_sem_namespace(r->s));
    r->doorbell = xlock_rb_frozen_utf8(xlock_sem_semaphore(r->s));
    xlock_sem_namespace_id(&r->dev, &r->ino, r->s);
    r->capacity = xlock_sem_capacity(r->s);
    return self;
}

/* The acquirers of this process: after fork the child holds no permit [XL-HOLD-7]. */
static VALUE acquirers(rsem *r)
{
    if (r->acquirers_generation != xlock_rb_fork_generation) {
        rb_ary_clear(r->acquirers);
        r->acquirers_generation = xlock_rb_fork_generation;
    }
    return r->acquirers;
}

/*
 * acquire(timeout: nil) -> slot index
 * Takes a permit, waiting at least +timeout+ seconds (nil: as long as it takes) [XL-WAIT-11]; returns the
 * slot held. Interruptible like XLock::Lock#lock. Raises XLock::Timeout.
 */
static VALUE rsem_acquire(int argc, VALUE *argv, VALUE self)
{
    rsem *r = get_open(self);
    xlock_rb_deadline deadline = xlock_rb_deadline_from_args(argc, argv);
    int rc = xlock_sem_try_acquire(r->s); /* one pass first: no GVL release when a permit is free */
    if (rc == XLOCK_EWOULDBLOCK)
        rc = xlock_rb_wait(&sem_waitable, r->s, &deadline, &r->use);
    if (rc < 0) {
        if (r->use.closing)
            xlock_rb_raise_kind("CANCELLED", "semaphore '%" PRIsVALUE "' (%" PRIsVALUE ") was closed while waiting",
                                r->name, r->path);
        xlock_rb_raise(rc);
    }
    rb_ary_push(acquirers(r), rb_thread_current());
    return INT2FIX(rc);
}

/* try_acquire -> slot index, or nil if every permit is held [XL-CSEM-5]. */
static VALUE rsem_try_acquire(VALUE self)
{
    rsem *r = get_open(self);
    int rc = xlock_sem_try_acquire(r->s);
    if (rc == XLOCK_EWOULDBLOCK)
        return Qnil;
    if (rc < 0)
        xlock_rb_raise(rc);
    rb_ary_push(acquirers(r), rb_thread_current());
    return INT2FIX(rc);
}

/* release -> self. Returns the most recently acquired permit [XL-CSEM-6]; XLock::NotHeld if none. */
static VALUE rsem_release(VALUE self)
{
    rsem *r = get_open(self);
    int rc = xlock_sem_release(r->s);
    if (rc < 0)
        xlock_rb_raise(rc);
    rb_ary_pop(acquirers(r));
    return self;
}

/* held -> the number of permits this object holds. */
static VALUE rsem_held(VALUE self)
{
    rsem *r = get(self);
    if (!r->s || r->use.closing)
        return INT2FIX(0);
    return INT2FIX(xlock_sem_held(r->s));
}

/* How many of the permits this object holds the current thread acquired. */
static long held_by_current_thread(rsem *r)
{
    VALUE list, current = rb_thread_current();
    long i, n = 0;
    if (!r->s || r->use.closing)
        return 0;
    list = acquirers(r);
    for (i = 0; i < RARRAY_LEN(list); i++)
        if (RARRAY_AREF(list, i) == current)
            n++;
    return n;
}

typedef struct {
    VALUE self;
    long before;
} sync_frame;

static VALUE sync_release(VALUE arg)
{
    sync_frame *frame = (sync_frame *)arg;
    rsem *r = get(frame->self);
    if (held_by_current_thread(r) > frame->before)
        rsem_release(frame->self);
    return Qnil;
}

/*
 * synchronize(timeout: nil) { |slot| ... } -> the block's value
 * Acquires a permit (as #acquire), yields its slot, releases it, whatever ends the block (see
 * XLock::Lock#synchronize).
 */
static VALUE rsem_synchronize(int argc, VALUE *argv, VALUE self)
{
    sync_frame frame;
    VALUE slot;
    rb_need_block();
    frame.self = self;
    frame.before = held_by_current_thread(get(self));
    slot = rsem_acquire(argc, argv, self);
    return rb_ensure(rb_yield, slot, sync_release, (VALUE)&frame);
}

/* close -> nil. Returns every permit held and closes; other threads' waits end with XLock::Cancelled. */
static VALUE rsem_close(VALUE self)
{
    rsem *r = get(self);
    if (!r->use.closing)
        xlock_rb_close(&r->use, &sem_waitable, r->s);
    return Qnil;
}

static VALUE rsem_closed_p(VALUE self)
{
    rsem *r = get(self);
    return (!r->s || r->use.closing) ? Qtrue : Qfalse;
}

static VALUE rsem_name(VALUE self) { return get(self)->name; }
static VALUE rsem_path(VALUE self) { return get(self)->path; }
static VALUE rsem_namespace(VALUE self) { return get(self)->namespace; }
static VALUE rsem_doorbell(VALUE self) { return get(self)->doorbell; }
static VALUE rsem_capacity(VALUE self) { return LONG2NUM(get(self)->capacity); }

static VALUE rsem_namespace_identity(VALUE self)
{
    rsem *r = get(self);
    if (NIL_P(r->name))
        return Qnil;
    return rb_assoc_new(ULL2NUM(r->dev), ULL2NUM(r->ino));
}

/* Semaphore._remove(name, capacity, namespace, allow_unsupported_fs) -> true/false [XL-RM-3]. */
static VALUE rsem_s_remove(VALUE klass, VALUE name, VALUE capacity, VALUE namespace, VALUE allow)
{
    xlock_options opts;
    int removed = 0, rc;
    xlock_rb_check_name(name);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    rc = xlock_sem_remove_n(&removed, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), NUM2LONG(capacity), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    return removed ? Qtrue : Qfalse;
}

void xlock_rb_init_semaphore(void)
{
    rb_cSemaphore = rb_define_class_under(rb_mXLock, "Semaphore", rb_cObject);
    rb_define_alloc_func(rb_cSemaphore, rsem_alloc);
    rb_define_private_method(rb_cSemaphore, "_open", rsem_open, 4);
    rb_define_method(rb_cSemaphore, "acquire", rsem_acquire, -1);
    rb_define_method(rb_cSemaphore, "try_acquire", rsem_try_acquire, 0);
    rb_define_method(rb_cSemaphore, "release", rsem_release, 0);
    rb_define_method(rb_cSemaphore, "held", rsem_held, 0);
    rb_define_method(rb_cSemaphore, "synchronize", rsem_synchronize, -1);
    rb_define_method(rb_cSemaphore, "close", rsem_close, 0);
    rb_define_method(rb_cSemaphore, "closed?", rsem_closed_p, 0);
    rb_define_method(rb_cSemaphore, "name", rsem_name, 0);
    rb_define_method(rb_cSemaphore, "path", rsem_path, 0);
    rb_define_method(rb_cSemaphore, "namespace", rsem_namespace, 0);
    rb_define_method(rb_cSemaphore, "doorbell", rsem_doorbell, 0);
    rb_define_method(rb_cSemaphore, "namespace_identity", rsem_namespace_identity, 0);
    rb_define_method(rb_cSemaphore, "capacity", rsem_capacity, 0);
    rb_define_singleton_method(rb_cSemaphore, "_remove", rsem_s_remove, 4);
    rb_funcall(rb_cSemaphore, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_remove")));
}
