/* xlock_ext.c — the Ruby binding's shared parts: errors, options, deadlines, init. The one handle type
 * and the interruptible wait are in xlock_ext_handle.c; what differs per class in xlock_ext_lock.c,
 * xlock_ext_semaphore.c, xlock_ext_posix_semaphore.c; the pure name mapping in xlock_ext_names.c.
 * libxlock itself is compiled into the same shared object. */
#include "xlock_ext.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

VALUE rb_mXLock;

static ID id_timeout, id_mul, id_ceil;
#define XLOCK_ERROR_KINDS 15
static VALUE error_classes[XLOCK_ERROR_KINDS + 1]; /* indexed by -code */

/* ---- errors [XL-ERR-1] ---- */

/* The one mapping from libxlock's codes to the XLock:: classes of lib/xlock/errors.rb. */
static VALUE error_class(int code)
{
    static const char *const names[XLOCK_ERROR_KINDS + 1] = {
        NULL,
        "WouldBlock",            /* XLOCK_EWOULDBLOCK  -1 */
        "Timeout",               /* XLOCK_ETIMEDOUT    -2 */
        "InvalidName",           /* XLOCK_EINVALNAME   -3 */
        "InvalidArgument",       /* XLOCK_EINVAL       -4 */
        "InsecureNamespace",     /* XLOCK_EINSECURE    -5 */
        "UnsupportedFilesystem", /* XLOCK_EUNSUPPORTEDFS -6 */
        "NotHeld",               /* XLOCK_ENOTHELD     -7 */
        "AlreadyHeld",           /* XLOCK_EALREADY     -8 */
        "CapacityMismatch",      /* XLOCK_ECAPACITY    -9 */
        "Interrupted",           /* XLOCK_EINTR       -10 */
        "Cancelled",             /* XLOCK_ECANCELED   -11 */
        "OSError",               /* XLOCK_EOS         -12 */
        "Lost",                  /* XLOCK_ELOST       -13 */
        "UnsupportedBackend",    /* XLOCK_EUNSUPPORTEDBACKEND -14 */
        "BackendError",          /* XLOCK_EBACKEND    -15 */
    };
    int index = (code < 0 && code >= -XLOCK_ERROR_KINDS) ? -code : -XLOCK_EOS;
    if (!error_classes[index]) {
        error_classes[index] = rb_const_get(rb_mXLock, rb_intern(names[index]));
        rb_gc_register_mark_object(error_classes[index]);
    }
    return error_classes[index];
}

void xlock_rb_raise(int code)
{
    const char *message = xlock_last_message();
    VALUE text, exc;
    if (!message || !*message)
        message = xlock_strerror(code);
    text = rb_utf8_str_new_cstr(message);
    if (code == XLOCK_EOS) {
        VALUE args[2] = {text, INT2NUM(xlock_last_errno())};
        exc = rb_class_new_instance(2, args, error_class(code));
    } else {
        exc = rb_exc_new_str(error_class(code), text);
    }
    rb_exc_raise(exc);
}

static int code_of_kind(const char *kind)
{
    int code;
    for (code = -1; code >= -XLOCK_ERROR_KINDS; code--)
        if (strcmp(xlock_errname(code), kind) == 0)
            return code;
    return XLOCK_EOS;
}

void xlock_rb_raise_kind(const char *kind, const char *fmt, ...)
{
    va_list ap;
    VALUE text;
    va_start(ap, fmt);
    text = rb_vsprintf(fmt, ap);
    va_end(ap);
    rb_exc_raise(rb_exc_new_str(error_class(code_of_kind(kind)), text));
}

/* ---- arguments ---- */

void xlock_rb_check_name(VALUE name)
{
    if (!RB_TYPE_P(name, T_STRING))
        xlock_rb_raise_kind("INVALID_NAME", "a name must be a String, not %" PRIsVALUE,
                            rb_obj_class(name));
}

void xlock_rb_options(xlock_options *opts, VALUE namespace, int allow_unsupported_fs)
{
    xlock_options_init(opts);
    if (!NIL_P(namespace)) {
        if (!RB_TYPE_P(namespace, T_STRING))
            xlock_rb_raise_kind("INVALID_ARGUMENT",
                                "a namespace must be a String or nil, not %" PRIsVALUE,
                                rb_obj_class(namespace));
        if (memchr(RSTRING_PTR(namespace), '\0', RSTRING_LEN(namespace)))
            xlock_rb_raise_kind("INVALID_ARGUMENT",
                                "namespace path %+" PRIsVALUE " contains a NUL byte [XL-NS-3]",
                                namespace);
        opts->namespace_path = RSTRING_PTR(namespace);
    }
    opts->allow_unsupported_fs = allow_unsupported_fs;
    /* Untimed lock waits stay a blocking flock(2) [XL-WAIT-2], ended by a signal (xlock_ext_wake.c);
     * raw POSIX semaphore waits are made cancellable, so that #close from another thread ends them. */
    opts->cancellable = 0;
}

/* ---- deadlines [XL-WAIT-3] ---- */

static unsigned long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* Seconds to whole nanoseconds: a Float is rounded to the nearest nanosecond first (1.1 s is
 * 1100000000 ns, not 1100000000.0000002), so whole milliseconds stay whole; an Integer or Rational
 * is exact and rounded up. Returns -1 for untimed (nil, negative, +Infinity). */
static long long timeout_ns(VALUE timeout)
{
    const double max_seconds = 9.2e9; /* about 292 years: fits in long long nanoseconds */
    if (NIL_P(timeout))
        return -1;
    if (FIXNUM_P(timeout)) { /* the common whole seconds, without a method call */
        long s = FIX2LONG(timeout);
        return s < 0 || (double)s > max_seconds ? -1 : (long long)s * 1000000000LL;
    }
    if (RB_FLOAT_TYPE_P(timeout)) {
        double s = RFLOAT_VALUE(timeout);
        if (isnan(s))
            xlock_rb_raise_kind("INVALID_ARGUMENT",
                                "timeout must be a number of seconds or nil, not NaN");
        if (s < 0 || s > max_seconds)
            return -1;
        return llround(s * 1e9);
    }
    if (RB_INTEGER_TYPE_P(timeout) || rb_obj_is_kind_of(timeout, rb_cRational)) {
        VALUE ns;
        if (RTEST(rb_funcall(timeout, '<', 1, INT2FIX(0))))
            return -1;
        if (RTEST(rb_funcall(timeout, '>', 1, DBL2NUM(max_seconds))))
            return -1;
        ns = rb_funcall(rb_funcall(timeout, id_mul, 1, INT2FIX(1000000000)), id_ceil, 0);
        return NUM2LL(ns);
    }
    xlock_rb_raise_kind("INVALID_ARGUMENT",
                        "timeout must be a number of seconds or nil, not %" PRIsVALUE,
                        rb_obj_class(timeout));
}

xlock_rb_deadline xlock_rb_deadline_from(VALUE timeout)
{
    xlock_rb_deadline d = {0, 0};
    long long ns = timeout_ns(timeout);
    if (ns >= 0) {
        d.timed = 1;
        d.at_ns = monotonic_ns() + (unsigned long long)ns;
    }
    return d;
}

xlock_rb_deadline xlock_rb_deadline_from_args(int argc, VALUE *argv)
{
    xlock_rb_deadline d = {0, 0};
    VALUE opts = Qnil, timeout = Qnil;
    if (argc == 0) /* the common call, lock without arguments: nothing to parse */
        return d;
    rb_scan_args(argc, argv, ":", &opts);
    if (!NIL_P(opts)) {
        VALUE value;
        rb_get_kwargs(opts, &id_timeout, 0, 1, &value);
        if (value != Qundef)
            timeout = value;
    }
    return xlock_rb_deadline_from(timeout);
}

long long xlock_rb_remaining_ms(const xlock_rb_deadline *d)
{
    unsigned long long now;
    if (!d->timed)
        return -1;
    now = monotonic_ns();
    if (now >= d->at_ns)
        return 0;
    return (long long)((d->at_ns - now + 999999ULL) / 1000000ULL);
}

/* ---- init ---- */

RUBY_FUNC_EXPORTED void Init_xlock_ext(void)
{
    id_timeout = rb_intern("timeout");
    id_mul = rb_intern("*");
    id_ceil = rb_intern("ceil");
    rb_mXLock = rb_define_module("XLock");
    rb_require("xlock/errors");
    pthread_atfork(NULL, NULL, xlock_rb_handles_after_fork);
    rb_define_const(rb_mXLock, "LIBXLOCK_VERSION",
                    rb_str_freeze(rb_str_new_cstr(xlock_version_string())));
    xlock_rb_init_names();
    xlock_rb_init_lock();
    xlock_rb_init_semaphore();
    xlock_rb_init_posix_semaphore();
}

VALUE xlock_rb_frozen_utf8(const char *s)
{
    return rb_str_freeze(rb_utf8_str_new_cstr(s));
}
