/* xlock_ext_lock.c — XLock::Lock, a libxlock xlock_t [spec §6-§9]. The Ruby half is lib/xlock/lock.rb. */
#include "xlock_ext.h"

typedef struct {
    xlock_t *l;
    xlock_rb_use use;
    /* Who acquired it, for #synchronize: set in C right after the acquisition, with no interrupt
     * check in between, so an asynchronous exception cannot separate the two. */
    VALUE owner;
    long depth;
    unsigned long owner_generation;
    VALUE name, path, namespace, doorbell; /* frozen, kept after #close */
    unsigned long long dev, ino;
    int shared, reentrant;
} rlock;

static VALUE rb_cLock;

static void rlock_mark(void *p)
{
    rlock *r = p;
    rb_gc_mark(r->owner);
    rb_gc_mark(r->name);
    rb_gc_mark(r->path);
    rb_gc_mark(r->namespace);
    rb_gc_mark(r->doorbell);
}

static void close_handle(void *p)
{
    rlock *r = p;
    xlock_close(r->l); /* releases it if held [XL-HOLD-10] */
    r->l = NULL;
    r->owner = Qnil;
    r->depth = 0;
}

static void rlock_free(void *p)
{
    close_handle(p);
    xfree(p);
}

static const rb_data_type_t rlock_type = {
    "XLock::Lock",
    {rlock_mark, rlock_free, NULL},
    NULL, NULL, RUBY_TYPED_FREE_IMMEDIATELY,
};

static unsigned long long token(void *h) { return xlock_cancel_token(h); }
static int wait(void *h, long long ms, unsigned long long t) { return xlock_acquire_token(h, ms, t); }
static int cancel(void *h) { return xlock_cancel(h); }
static const xlock_rb_waitable lock_waitable = {token, wait, cancel};

static VALUE rlock_alloc(VALUE klass)
{
    rlock *r;
    VALUE self = TypedData_Make_Struct(klass, rlock, &rlock_type, r);
    r->owner = r->name = r->path = r->namespace = r->doorbell = Qnil;
    r->use.close = close_handle;
    r->use.obj = r;
    return self;
}

static rlock *get(VALUE self)
{
    return rb_check_typeddata(self, &rlock_type);
}

/* The open handle; raises for a closed object. */
static rlock *get_open(VALUE self)
{
    rlock *r = get(self);
    if (!r->l || r->use.closing)
        xlock_rb_raise_kind("INVALID_ARGUMENT", "lock '%" PRIsVALUE "' is closed", r->name);
    return r;
}

/* _open(name, namespace, shared, reentrant, allow_unsupported_fs), called by #initialize. */
static VALUE rlock_open(VALUE self, VALUE name, VALUE namespace, VALUE shared, VALUE reentrant, VALUE allow)
{
    rlock *r = get(self);
    xlock_options opts;
    int rc;
    if (r->l || r->use.closing)
        rb_raise(rb_eRuntimeError, "XLock::Lock#initialize called twice");
    xlock_rb_check_name(name);
    xlock_rb_options(&opts, namespace, RTEST(allow));
    opts.shared = RTEST(shared);
    opts.reentrant = RTEST(reentrant);
    rc = xlock_open_n(&r->l, RSTRING_PTR(name), (size_t)RSTRING_LEN(name), &opts);
    RB_GC_GUARD(name);
    RB_GC_GUARD(namespace);
    if (rc < 0)
        xlock_rb_raise(rc);
    r->name = xlock_rb_frozen_utf8(xlock_name(r->l));
    r->path = xlock_rb_frozen_utf8(xlock_path(r->l));
    r->namespace = xlock_rb_frozen_utf8(xlock_namespace(r->l));
    r->doorbell = xlock_rb_frozen_utf8(xlock_semaphore(r->l));
    xlock_namespace_id(&r->dev, &r->ino, r->l);
    r->shared = opts.shared;
    r->reentrant = opts.reentrant;
    return self;
}

static void note_acquired(rlock *r)
{
    VALUE current = rb_thread_current();
    if (r->reentrant && r->depth > 0 && r->owner == current && r->owner_generation == xlock_rb_fork_generation) {
        r->depth++;
        return;
    }
    r->owner = current;
    r->depth = 1;
    r->owner_generation = xlock_rb_fork_generation;
}

static void note_released(rlock *r)
{
    if (r->depth > 0 && --r->depth == 0)
        r->owner = Qnil;
}

static NORETURN(void raise_wait_error(rlock *r, int rc));
static void raise_wait_error(rlock *r, int rc)
{
    if (r->use.closing)
        xlock_rb_raise_kind("CANCELLED", "lock '%" PRIsVALUE "' (%" PRIsVALUE ") was closed while waiting",
                            r->name, r->path);
    xlock_rb_raise(rc);
}

/*
 * lock(timeout: nil) -> self
 * Acquires, waiting at least +timeout+ seconds (nil: as long as it takes) [XL-WAIT-3]. Other Ruby threads
 * run meanwhile; Thread#raise, Thread#kill, Timeout.timeout and Ctrl-C end the wait with nothing held.
 * Raises XLock::Timeout, XLock::AlreadyHeld (this thread holds this non-reentrant lock [XL-HOLD-3]).
 */
static VALUE rlock_lock(int argc, VALUE *argv, VALUE self)
{
    rlock *r = get_open(self);
    xlock_rb_deadline deadline = xlock_rb_deadline_from_args(argc, argv);
    /* The uncontended case costs no GVL release: one non-blocking attempt first. */
    int rc = xlock_try_acquire(r->l);
    if (rc == XLOCK_EWOULDBLOCK) {
        if (xlock_rb_remaining_ms(&deadline) == 0)
            rc = xlock_acquire(r->l, 0); /* a single attempt, failing with TIMEOUT [XL-WAIT-3] */
        else
            rc = xlock_rb_wait(&lock_waitable, r->l, &deadline, &r->use);
    }
    if (rc < 0)
        raise_wait_error(r, rc);
    note_acquired(r);
    return self;
}

/*
 * try_lock -> true or false
 * One non-blocking attempt [XL-WAIT-1], like Mutex#try_lock: false if the lock is held elsewhere.
 * Raises XLock::AlreadyHeld if this thread holds this non-reentrant object [XL-HOLD-3].
 */
static VALUE rlock_try_lock(VALUE self)
{
    rlock *r = get_open(self);
    int rc = xlock_try_acquire(r->l);
    if (rc == XLOCK_EWOULDBLOCK)
        return Qfalse;
    if (rc < 0)
        xlock_rb_raise(rc);
    note_acquired(r);
    return Qtrue;
}

/*
 * unlock -> self
 * Releases [XL-LOCK-9]. Raises XLock::NotHeld if this object does not hold it [XL-HOLD-6], also in a
 * forked child [XL-HOLD-7].
 */
static VALUE rlock_unlock(VALUE self)
{
    rlock *r = get_open(self);
    int rc = xlock_release(r->l);
    if (rc < 0)
        xlock_rb_raise(rc);
    note_released(r);
    return self;
}

/* locked? -> true if this object holds the lock (false after #close). */
static VALUE rlock_locked_p(VALUE self)
{
    rlock *r = get(self);
    return (r->l && !r->use.closing && xlock_locked(r->l) == 1) ? Qtrue : Qfalse;
}

/* How many acquisitions of the current thread this object holds (0 in a forked child). */
static long held_by_current_thread(rlock *r)
{
    if (!r->l || r->use.closing || r->owner != rb_thread_current() ||
        r->owner_generation != xlock_rb_fork_generation || xlock_locked(r->l) != 1)
        return 0;
    return r->depth;
}

typedef struct {
    VALUE self;
    long before;
} sync_frame;

static VALUE sync_yield(VALUE self)
{
    return rb_yield(self);
}

/* The ensure of #synchronize: releases the acquisition it made, unless the block already did. */
static VALUE sync_release(VALUE arg)
{
    sync_frame *frame = (sync_frame *)arg;
    rlock *r = get(frame->self);
    if (held_by_current_thread(r) > frame->before) {
        int rc = xlock_release(r->l);
        if (rc < 0)
            xlock_rb_raise(rc);
        note_released(r);
    }
    return Qnil;
}

/*
 * synchronize(timeout: nil) { |lock| ... } -> the block's value
 * Locks (as #lock), yields self, unlocks. Nothing stays held after the block, whatever ends it: an
 * exception, Thread#raise, Thread#kill, Timeout.timeout. Between the acquisition and the ensure that
 * releases it there is only C code, which checks no interrupt, and a wait that is interrupted holds
 * nothing [XL-WAIT-9]. Unlocking inside the block is allowed; then nothing more is released.
 */
static VALUE rlock_synchronize(int argc, VALUE *argv, VALUE self)
{
    sync_frame frame;
    rb_need_block();
    frame.self = self;
    frame.before = held_by_current_thread(get(self));
    rlock_lock(argc, argv, self);
    return rb_ensure(sync_yield, self, sync_release, (VALUE)&frame);
}

/*
 * close -> nil
 * Releases the lock if held [XL-HOLD-10] and closes the lock file. Waits of other threads on this object
 * end with XLock::Cancelled. Idempotent.
 */
static VALUE rlock_close(VALUE self)
{
    rlock *r = get(self);
    if (!r->use.closing)
        xlock_rb_close(&r->use, &lock_waitable, r->l);
    return Qnil;
}

static VALUE rlock_closed_p(VALUE self)
{
    rlock *r = get(self);
    return (!r->l || r->use.closing) ? Qtrue : Qfalse;
}

static VALUE rlock_name(VALUE self) { return get(self)->name; }
static VALUE rlock_path(VALUE self) { return get(self)->path; }
static VALUE rlock_namespace(VALUE self) { return get(self)->namespace; }
static VALUE rlock_doorbell(VALUE self) { return get(self)->doorbell; }
static VALUE rlock_shared_p(VALUE self) { return get(self)->shared ? Qtrue : Qfalse; }
static VALUE rlock_reentrant_p(VALUE self) { return get(self)->reentrant ? Qtrue : Qfalse; }

/* namespace_identity -> [dev, ino] of the namespace directory [XL-SEM-5, XL-INTRO-1]. */
static VALUE rlock_namespace_identity(VALUE self)
{
    rlock *r = get(self);
    if (NIL_P(r->name))
        return Qnil;
    return rb_assoc_new(ULL2NUM(r->dev), ULL2NUM(r->ino));
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
    rb_cLock = rb_define_class_under(rb_mXLock, "Lock", rb_cObject);
    rb_define_alloc_func(rb_cLock, rlock_alloc);
    rb_define_private_method(rb_cLock, "_open", rlock_open, 5);
    rb_define_method(rb_cLock, "lock", rlock_lock, -1);
    rb_define_method(rb_cLock, "try_lock", rlock_try_lock, 0);
    rb_define_method(rb_cLock, "unlock", rlock_unlock, 0);
    rb_define_method(rb_cLock, "synchronize", rlock_synchronize, -1);
    rb_define_method(rb_cLock, "locked?", rlock_locked_p, 0);
    rb_define_method(rb_cLock, "close", rlock_close, 0);
    rb_define_method(rb_cLock, "closed?", rlock_closed_p, 0);
    rb_define_method(rb_cLock, "name", rlock_name, 0);
    rb_define_method(rb_cLock, "path", rlock_path, 0);
    rb_define_method(rb_cLock, "namespace", rlock_namespace, 0);
    rb_define_method(rb_cLock, "doorbell", rlock_doorbell, 0);
    rb_define_method(rb_cLock, "namespace_identity", rlock_namespace_identity, 0);
    rb_define_method(rb_cLock, "shared?", rlock_shared_p, 0);
    rb_define_method(rb_cLock, "reentrant?", rlock_reentrant_p, 0);
    rb_define_singleton_method(rb_cLock, "_remove", rlock_s_remove, 3);
    rb_funcall(rb_cLock, rb_intern("private_class_method"), 1, ID2SYM(rb_intern("_remove")));
}
