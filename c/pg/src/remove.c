/* Removal in a PostgreSQL namespace [XL-PG-18]: an advisory lock leaves nothing behind to remove, so
 * removal tries the object's lock (or every slot) once, fails with WOULD_BLOCK if it is held, and
 * otherwise gives it back and reports removed = 0. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* The message of the failure just reported, with "; nothing to remove" added. */
static int nothing_removed(int rc)
{
    char why[2048];
    snprintf(why, sizeof why, "%s", xlock_pg_last_message());
    return xlock_pg__fail(rc, NULL, "%s; nothing to remove [XL-PG-18]", why);
}

int xlock_pg_remove(int *removed, const char *name, const xlock_options *opts)
{
    return xlock_pg_remove_n(removed, name, name == NULL ? 0 : strlen(name), opts);
}

int xlock_pg_remove_n(int *removed, const char *name, size_t len, const xlock_options *opts)
{
    if (removed == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "removed must not be NULL (it receives 0 or 1)");
    *removed = 0;
    xlock_options o;
    xlock_options_init(&o);
    if (opts != NULL)
        o.namespace_path = opts->namespace_path;
    /* exclusive: the try fails if anyone holds the lock, shared or not */
    xlock_pg_t *l = NULL;
    int rc = xlock_pg_open_n(&l, name, len, &o);
    if (rc == 0)
        rc = xlock_pg_try_acquire(l);
    if (rc == 0)
        rc = xlock_pg_release(l);
    else if (rc == XLOCK_EWOULDBLOCK)
        rc = nothing_removed(rc);
    xlock_pg_close(l);
    return rc;
}

int xlock_pg_sem_remove(int *removed, const char *name, long capacity, const xlock_options *opts)
{
    return xlock_pg_sem_remove_n(removed, name, name == NULL ? 0 : strlen(name), capacity, opts);
}

int xlock_pg_sem_remove_n(int *removed, const char *name, size_t len, long capacity,
                          const xlock_options *opts)
{
    if (removed == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "removed must not be NULL (it receives 0 or 1)");
    *removed = 0;
    xlock_pg_sem_t *s = NULL;
    int rc = xlock_pg_sem_open_n(&s, name, len, capacity == 0 ? 1 : capacity, opts);
    for (long i = 0; rc >= 0 && i < xlock_pg_sem_capacity(s); i++)
        rc = xlock_pg_sem_try_acquire(s);
    if (rc == XLOCK_EWOULDBLOCK)
        rc = nothing_removed(rc);
    /* every permit taken is given back by the close */
    xlock_pg_sem_close(s);
    return rc < 0 ? rc : 0;
}
