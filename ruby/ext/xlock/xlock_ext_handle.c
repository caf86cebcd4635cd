/* xlock_ext_handle.c — the one typed-data handle behind XLock::Lock, XLock::Semaphore and
 * XLock::PosixSemaphore: its lifecycle (alloc, mark, free, close, closed?), fork handling, the record
 * of who acquired what (for #synchronize), acquire/try/release, and the interruptible wait without the
 * GVL with its unblocking function. The class files only say which libxlock functions to call. */
#include "xlock_ext.h"

#include <ruby/thread.h>

unsigned long xlock_rb_fork_generation;

static void handle_mark(void *p)
{
    xlock_rb_handle *r = p;
    rb_gc_mark(r->acquirers);
    rb_gc_mark(r->name);
    rb_gc_mark(r->namespace);
    rb_gc_mark(r->path);
    rb_gc_mark(r->semaphore);
    rb_gc_mark(r->bell);
}

/* Closes the libxlock handle (releasing what it holds: lock, permits, raw permits posted back
 * [XL-HOLD-10]). Touches no Ruby object: it also runs from the GC's free. */
static void close_handle(xlock_rb_handle *r)
{
    if (r->h) {
        r->kind->close(r->h);
        r->h = NULL;
    }
}

static void handle_free(void *p)
{
    close_handle(p);
    xfree(p);
}

static const rb_data_type_t handle_type = {
    "XLock handle", {handle_mark, handle_free, NULL}, NULL, NULL, RUBY_TYPED_FREE_IMMEDIATELY,
};

VALUE xlock_rb_handle_alloc(VALUE klass, const xlock_rb_kind *kind)
{
    xlock_rb_handle *r;
    VALUE self = TypedData_Make_Struct(klass, xlock_rb_handle, &handle_type, r);
    r->kind = kind;
    r->acquirers = r->name = r->namespace = r->path = r->semaphore = r->bell = Qnil;
    r->bell_word = -1;
    r->generation = xlock_rb_fork_generation;
    return self;
}

xlock_rb_handle *xlock_rb_get(VALUE self, const xlock_rb_kind *kind)
{
    xlock_rb_handle *r = rb_check_typeddata(self, &handle_type);
    if (kind && r->kind != kind)
        rb_raise(rb_eTypeError, "not an XLock %s: %" PRIsVALUE, kind->what, rb_obj_class(self));
    return r;
}

int xlock_rb_is_open(const xlock_rb_handle *r)
{
    return r->h && !r->closing;
}

xlock_rb_handle *xlock_rb_get_open(VALUE self, const xlock_rb_kind *kind)
{
    xlock_rb_handle *r = xlock_rb_get(self, kind);
    if (!xlock_rb_is_open(r))
        xlock_rb_raise_kind("INVALID_ARGUMENT", "%s '%" PRIsVALUE "' is closed", r->kind->what, r->name);
    return r;
}

xlock_rb_handle *xlock_rb_start_open(VALUE self, const xlock_rb_kind *kind)
{
    xlock_rb_handle *r = xlock_rb_get(self, kind);
    if (r->h || r->closing || !NIL_P(r->name))
        rb_raise(rb_eRuntimeError, "%" PRIsVALUE "#initialize called twice", rb_obj_class(self));
    return r;
}

static VALUE frozen_or_nil(const char *s)
{
    return s ? xlock_rb_frozen_utf8(s) : Qnil;
}

void xlock_rb_opened(xlock_rb_handle *r, void *h, const xlock_rb_opened_info *info)
{
    r->h = h;
    r->acquirers = rb_ary_new();
    r->generation = xlock_rb_fork_generation;
    r->name = xlock_rb_frozen_utf8(info->name);
    r->namespace = xlock_rb_frozen_utf8(info->namespace);
    r->path = frozen_or_nil(info->path);
    r->semaphore = frozen_or_nil(info->semaphore);
    r->bell = frozen_or_nil(info->bell);
    r->dev = info->dev;
    r->ino = info->ino;
    r->bell_word = info->bell_word;
    r->sharing = info->sharing;
}

/* ---- fork [XL-HOLD-7] ---- */

/* In a forked child the parent's waiters are not there and the child's object holds nothing (the
 * libxlock handle says so too): the per-process bookkeeping starts afresh at the first touch. */
static void after_fork_check(xlock_rb_handle *r)
{
    if (r->generation == xlock_rb_fork_generation)
        return;
    r->generation = xlock_rb_fork_generation;
    r->busy = 0;
    if (!NIL_P(r->acquirers))
        rb_ary_clear(r->acquirers);
}

/* ---- who holds what, for #synchronize ---- */

/* Recorded in C right after the acquisition, with no interrupt check in between, so an asynchronous
 * exception cannot separate the two. The most recent is last: release returns it [XL-CSEM-6]. */
static void note_acquired(xlock_rb_handle *r)
{
    after_fork_check(r);
    rb_ary_push(r->acquirers, rb_thread_current());
}

static void note_released(xlock_rb_handle *r)
{
    after_fork_check(r);
    rb_ary_pop(r->acquirers);
}

/* How many of the acquisitions this object holds the current thread made (0 once closed, 0 in a
 * forked child). */
static long held_by_current_thread(xlock_rb_handle *r)
{
    VALUE current = rb_thread_current();
    long i, n = 0;
    if (!xlock_rb_is_open(r))
        return 0;
    after_fork_check(r);
    for (i = 0; i < RARRAY_LEN(r->acquirers); i++)
        if (RARRAY_AREF(r->acquirers, i) == current)
            n++;
    return n;
}

/* ---- the interruptible wait [XL-WAIT-9, XL-WAIT-10] ---- */

typedef struct {
    const xlock_rb_kind *kind;
    void *handle;
    long long timeout_ms;
    unsigned long long token;
    int result;
    xlock_rb_waiter waiter;
} wait_call;

static void *wait_without_gvl(void *arg)
{
    wait_call *call = arg;
    call->result = call->kind->wait(call->handle, call->timeout_ms, call->token);
    return NULL;
}

/* Ruby's unblocking function: runs in the interrupting thread, or in Ruby's signal handler when the
 * waiter is the only thread (Ctrl-C), so it only flags the waiter and signals (async-signal-safe). The
 * helper of xlock_ext_wake.c then cancels the wait, which ends in-process, futex and semaphore waits
 * (the token taken before the wait makes a cancel that comes before the wait begins count too
 * [XL-WAIT-10]), and repeats the signal, which ends a blocking flock(2) or FUTEX_WAIT (EINTR). */
static void interrupt_wait(void *arg)
{
    wait_call *call = arg;
    xlock_rb_waiter_interrupt(&call->waiter);
}

static void *nothing(void *unused)
{
    return unused;
}

/* Runs Ruby's pending interrupts as at a blocking call: unlike rb_thread_check_ints, this also raises
 * those deferred with Thread.handle_interrupt(... => :on_blocking), which this wait is. */
static void check_ints_blocking(void)
{
    rb_thread_call_without_gvl(nothing, NULL, NULL, NULL);
}

/* Waits until acquired, failed or the deadline passed, without the GVL. Ruby's interrupts
 * (Thread#raise, Thread#kill, Timeout, signals such as SIGINT) cancel the wait through its unblocking
 * function; Ruby then raises the interrupt, or, if none is due (a deferred interrupt, a cancel aimed
 * at another thread waiting on the same handle, a stray EINTR), the wait is retried with the
 * remaining deadline [XL-WAIT-9]. Returns libxlock's result (>= 0 on success), or XLOCK_ECANCELED if
 * the object was closed meanwhile (the handle is then already closed). */
static int wait_interruptibly(xlock_rb_handle *r, const xlock_rb_deadline *deadline)
{
    wait_call call;
    call.kind = r->kind;
    call.handle = r->h;
    xlock_rb_waiters_start();
    for (;;) {
        call.timeout_ms = xlock_rb_remaining_ms(deadline);
        call.token = r->kind->token(r->h);
        after_fork_check(r);
        r->busy++;
        /* RB_NOGVL_INTR_FAIL (the "2" variant): no interrupt is checked after the wait returns, where a
         * raise would lose an acquisition that succeeded; if one is already due it returns without
         * calling. */
        call.result = XLOCK_EINTR;
        xlock_rb_waiter_enter(&call.waiter, r->kind, r->h);
        /* As rb_thread_call_without_gvl2, plus RB_NOGVL_UBF_ASYNC_SAFE: without it, in a process whose
         * only thread waits, Ruby starts and joins an "unblock thread" around every call. */
        rb_nogvl(wait_without_gvl, &call, interrupt_wait, &call,
                 RB_NOGVL_INTR_FAIL | RB_NOGVL_UBF_ASYNC_SAFE);
        xlock_rb_waiter_leave(&call.waiter);
        after_fork_check(r);
        if (r->busy > 0)
            r->busy--;
        if (r->closing) {
            if (r->busy == 0)
                close_handle(r); /* releases what this wait may have acquired */
            return XLOCK_ECANCELED;
        }
        if (call.result != XLOCK_EINTR && call.result != XLOCK_ECANCELED)
            return call.result;
        check_ints_blocking(); /* raises Thread#raise, Interrupt, kills the thread, or returns */
        if (r->closing)        /* another thread closed it while this one ran interrupts */
            return XLOCK_ECANCELED;
    }
}

/* ---- operations ---- */

/* The file (or raw semaphore) the messages name. */
static VALUE where(const xlock_rb_handle *r)
{
    return NIL_P(r->path) ? r->semaphore : r->path;
}

static int acquire_until(xlock_rb_handle *r, xlock_rb_deadline deadline);

int xlock_rb_acquire(xlock_rb_handle *r, int argc, VALUE *argv)
{
    return acquire_until(r, xlock_rb_deadline_from_args(argc, argv));
}

int xlock_rb_acquire_timeout(xlock_rb_handle *r, VALUE timeout)
{
    return acquire_until(r, xlock_rb_deadline_from(timeout));
}

static int acquire_until(xlock_rb_handle *r, xlock_rb_deadline deadline)
{
    /* The uncontended case costs no GVL release and no bell access, timed or not: one non-blocking
     * attempt first [XL-WAIT-12]. */
    int rc = r->kind->try_acquire(r->h);
    if (rc == XLOCK_EWOULDBLOCK) {
        if (xlock_rb_remaining_ms(&deadline) ==
            0) /* a single attempt, failing with TIMEOUT [XL-WAIT-3] */
            rc = r->kind->wait(r->h, 0, r->kind->token(r->h));
        else
            rc = wait_interruptibly(r, &deadline);
    }
    if (rc < 0) {
        if (r->closing)
            xlock_rb_raise_kind("CANCELLED",
                                "%s '%" PRIsVALUE "' (%" PRIsVALUE ") was closed while waiting",
                                r->kind->what, r->name, where(r));
        xlock_rb_raise(rc);
    }
    note_acquired(r);
    return rc;
}

int xlock_rb_try_acquire(xlock_rb_handle *r)
{
    int rc = r->kind->try_acquire(r->h);
    if (rc == XLOCK_EWOULDBLOCK)
        return rc;
    if (rc < 0)
        xlock_rb_raise(rc);
    note_acquired(r);
    return rc;
}

void xlock_rb_release(xlock_rb_handle *r)
{
    int rc = r->kind->release(r->h);
    if (rc < 0)
        xlock_rb_raise(rc);
    note_released(r);
}

int xlock_rb_held(xlock_rb_handle *r)
{
    int n;
    if (!xlock_rb_is_open(r))
        return 0;
    n = r->kind->held(r->h);
    return n > 0 ? n : 0;
}

typedef struct {
    VALUE self;
    long before;
    VALUE arg; /* what the block gets */
} sync_frame;

static VALUE sync_yield(VALUE arg)
{
    sync_frame *frame = (sync_frame *)arg;
    return frame->arg == Qundef ? rb_yield_values(0) : rb_yield(frame->arg);
}

/* The ensure of #synchronize: releases the acquisition it made, unless the block already did. */
static VALUE sync_release(VALUE arg)
{
    sync_frame *frame = (sync_frame *)arg;
    xlock_rb_handle *r = xlock_rb_get(frame->self, NULL);
    if (held_by_current_thread(r) > frame->before)
        xlock_rb_release(r);
    return Qnil;
}

/*
 * synchronize(timeout: nil) { ... } -> the block's value
 * Acquires (as #lock / #acquire), yields, releases. Nothing stays held after the block, whatever ends
 * it: an exception, Thread#raise, Thread#kill, Timeout.timeout. Between the acquisition and the ensure
 * that releases it there is only C code, which checks no interrupt, and a wait that is interrupted
 * holds nothing [XL-WAIT-9]. Releasing inside the block is allowed; then nothing more is released.
 */
static VALUE handle_synchronize(int argc, VALUE *argv, VALUE self)
{
    xlock_rb_handle *r;
    sync_frame frame;
    int rc;
    rb_need_block();
    r = xlock_rb_get_open(self, NULL);
    frame.self = self;
    frame.before = held_by_current_thread(r);
    rc = xlock_rb_acquire(r, argc, argv);
    switch (r->kind->yields) {
    case XLOCK_RB_YIELD_SELF:
        frame.arg = self;
        break;
    case XLOCK_RB_YIELD_SLOT:
        frame.arg = INT2FIX(rc);
        break;
    default:
        frame.arg = Qundef;
        break;
    }
    return rb_ensure(sync_yield, (VALUE)&frame, sync_release, (VALUE)&frame);
}

/*
 * close -> nil
 * Releases what the object holds [XL-HOLD-10] and closes it. Waits of other threads on this object end
 * with XLock::Cancelled. Idempotent. If threads of this process wait on it, they are cancelled and the
 * last one to leave closes the handle (libxlock's close must not race other calls on it).
 */
static VALUE handle_close(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get(self, NULL);
    if (r->closing)
        return Qnil;
    r->closing = 1;
    after_fork_check(r);
    if (r->busy == 0) {
        close_handle(r);
    } else if (r->h) {
        r->kind->cancel(r->h);
        xlock_rb_waiters_interrupt_handle(r->h);
    }
    return Qnil;
}

static VALUE handle_closed_p(VALUE self)
{
    return xlock_rb_is_open(xlock_rb_get(self, NULL)) ? Qfalse : Qtrue;
}

static VALUE handle_name(VALUE self)
{
    return xlock_rb_get(self, NULL)->name;
}
static VALUE handle_namespace(VALUE self)
{
    return xlock_rb_get(self, NULL)->namespace;
}
static VALUE handle_path(VALUE self)
{
    return xlock_rb_get(self, NULL)->path;
}

static VALUE handle_bell(VALUE self)
{
    return xlock_rb_get(self, NULL)->bell;
}

/* bell_word -> the word of the namespace's bell that wakes this object's waiters (0..1023) [XL-SEM-7].
 */
static VALUE handle_bell_word(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get(self, NULL);
    return r->bell_word < 0 ? Qnil : INT2FIX(r->bell_word);
}

/* bell_status -> "usable", or why the bell is not used (waits then rely on the safety poll) [XL-BELL-8].
 * nil once closed. */
static VALUE handle_bell_status(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get(self, NULL);
    const char *status;
    if (!xlock_rb_is_open(r))
        return Qnil;
    status = r->kind->bell_status(r->h);
    return status ? xlock_rb_frozen_utf8(status) : Qnil;
}

/* sharing -> :private, :group_shared or :world_shared: who may write the namespace [XL-NS-9, XL-NS-15].
 */
static VALUE handle_sharing(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get(self, NULL);
    if (NIL_P(r->name))
        return Qnil;
    switch (r->sharing) {
    case XLOCK_SHARING_PRIVATE:
        return ID2SYM(rb_intern("private"));
    case XLOCK_SHARING_GROUP:
        return ID2SYM(rb_intern("group_shared"));
    default:
        return ID2SYM(rb_intern("world_shared"));
    }
}

/* namespace_identity -> [dev, ino] of the namespace directory [XL-SEM-5, XL-INTRO-1]. */
/*
 * owned? -> true or false
 * Like Mutex#owned?: true if the current thread made at least one of the acquisitions this object holds
 * (false for another thread of the process, after #close, and in a forked child [XL-HOLD-7]).
 */
static VALUE handle_owned_p(VALUE self)
{
    return held_by_current_thread(xlock_rb_get(self, NULL)) > 0 ? Qtrue : Qfalse;
}

static VALUE handle_namespace_identity(VALUE self)
{
    xlock_rb_handle *r = xlock_rb_get(self, NULL);
    if (NIL_P(r->name))
        return Qnil;
    return rb_assoc_new(ULL2NUM(r->dev), ULL2NUM(r->ino));
}

VALUE xlock_rb_define_handle_class(const char *name, const xlock_rb_kind *kind, rb_alloc_func_t alloc)
{
    VALUE klass = rb_define_class_under(rb_mXLock, name, rb_cObject);
    rb_define_alloc_func(klass, alloc);
    rb_define_method(klass, "synchronize", handle_synchronize, -1);
    rb_define_method(klass, "close", handle_close, 0);
    rb_define_method(klass, "closed?", handle_closed_p, 0);
    rb_define_method(klass, "owned?", handle_owned_p, 0);
    rb_define_method(klass, "name", handle_name, 0);
    rb_define_method(klass, "namespace", handle_namespace, 0);
    rb_define_method(klass, "namespace_identity", handle_namespace_identity, 0);
    rb_define_method(klass, "sharing", handle_sharing, 0);
    if (kind->has_path)
        rb_define_method(klass, "path", handle_path, 0);
    if (kind->bell_status) {
        rb_define_method(klass, "bell", handle_bell, 0);
        rb_define_method(klass, "bell_word", handle_bell_word, 0);
        rb_define_method(klass, "bell_status", handle_bell_status, 0);
    }
    return klass;
}

/* In the child of fork: every object's bookkeeping belongs to the parent. */
void xlock_rb_handles_after_fork(void)
{
    xlock_rb_fork_generation++;
    xlock_rb_waiters_after_fork();
}
