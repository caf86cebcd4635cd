/* Error codes, names and the per-thread failure record [XL-ERR-1, XL-ERR-2, XL-ERR-3]. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[1024];
static _Thread_local int last_errno;

static const struct {
    int code;
    const char *kind;
    const char *text;
} table[] = {
    {XLOCK_OK, "OK", "success"},
    {XLOCK_EWOULDBLOCK, "WOULD_BLOCK", "try acquisition found the lock held"},
    {XLOCK_ETIMEDOUT, "TIMEOUT", "the deadline passed"},
    {XLOCK_EINVALNAME, "INVALID_NAME", "the name breaks the naming rules of xlock/1"},
    {XLOCK_EINVAL, "INVALID_ARGUMENT", "an argument is invalid"},
    {XLOCK_EINSECURE, "INSECURE_NAMESPACE", "a security check refused a path"},
    {XLOCK_EUNSUPPORTEDFS, "UNSUPPORTED_FS", "the namespace is on an unsupported file system"},
    {XLOCK_ENOTHELD, "NOT_HELD", "release of what is not held"},
    {XLOCK_EALREADY, "ALREADY_HELD", "the calling thread already holds this lock object"},
    {XLOCK_ECAPACITY, "CAPACITY_MISMATCH", "the semaphore exists with another capacity"},
    {XLOCK_EINTR, "INTERRUPTED", "the wait was interrupted by a signal"},
    {XLOCK_ECANCELED, "CANCELLED", "the wait was cancelled"},
    {XLOCK_EOS, "OS_ERROR", "a system call failed"},
    {XLOCK_ELOST, "LOST", "the session holding the lock ended"},
    {XLOCK_EUNSUPPORTEDBACKEND, "UNSUPPORTED_BACKEND", "the backend is not supported"},
    {XLOCK_EBACKEND, "BACKEND_ERROR", "the backend failed"},
};

const char *xlock_strerror(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code)
            return table[i].text;
    return "unknown xlock error";
}

const char *xlock_errname(int code)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == code)
            return table[i].kind;
    return NULL;
}

int xlock_last_errno(void)
{
    return last_errno;
}

const char *xlock_last_message(void)
{
    return last_message;
}

int xlock__fail(int code, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_errno = err;
    return code;
}

const char *xlock__what(char *buf, size_t size, const char *kind, const char *name)
{
    snprintf(buf, size, "%s '%s'", kind, name);
    return buf;
}
