/* The PostgreSQL part of the conformance driver: libxlock_pg behind the protocol's ops. */
#include "driver_pg.h"

#include <string.h>

int driver_pg_open(void **obj, const char *name, size_t len, long long capacity,
                   const xlock_options *opts)
{
    if (capacity < 0)
        return xlock_pg_open_n((xlock_pg_t **)obj, name, len, opts);
    return xlock_pg_sem_open_n((xlock_pg_sem_t **)obj, name, len,
                               capacity > 100000 ? 100000 : (long)capacity, opts);
}

int driver_pg_remove(int *removed, const char *name, size_t len, long long capacity,
                     const xlock_options *opts)
{
    if (capacity < 0)
        return xlock_pg_remove_n(removed, name, len, opts);
    return xlock_pg_sem_remove_n(removed, name, len, capacity > 100000 ? 100000 : (long)capacity, opts);
}

void driver_pg_describe(jwriter *w, void *obj, int is_sem)
{
    xlock_pg_t *l = obj;
    xlock_pg_sem_t *s = obj;
    jw_key(w, "namespace");
    jw_cstring(w, is_sem ? xlock_pg_sem_namespace(s) : xlock_pg_namespace(l));
    jw_key(w, "label");
    jw_cstring(w, is_sem ? xlock_pg_sem_label(s) : xlock_pg_label(l));
    jw_key(w, "key");
    jw_int(w, is_sem ? xlock_pg_sem_key_of(s) : xlock_pg_key_of(l));
    jw_key(w, "system_identifier");
    jw_cstring(w, is_sem ? xlock_pg_sem_system_identifier(s) : xlock_pg_system_identifier(l));
    jw_key(w, "database");
    jw_cstring(w, is_sem ? xlock_pg_sem_database(s) : xlock_pg_database(l));
    jw_key(w, "backend_pid");
    jw_int(w, is_sem ? xlock_pg_sem_backend_pid(s) : xlock_pg_backend_pid(l));
    const char *nulls[] = {"path", "semaphore", "bell", "bell_word"};
    for (int i = 0; i < 4; i++) {
        jw_key(w, nulls[i]);
        jw_null(w);
    }
    jw_key(w, "sharing");
    jw_cstring(w, "database");
}

int driver_pg_acquire(void *obj, int is_sem, int try_only, long long timeout_ms, int *slot)
{
    *slot = -1;
    if (!is_sem)
        return try_only ? xlock_pg_try_acquire(obj) : xlock_pg_acquire(obj, timeout_ms);
    int rc = try_only ? xlock_pg_sem_try_acquire(obj) : xlock_pg_sem_acquire(obj, timeout_ms);
    if (rc >= 0) {
        *slot = rc;
        rc = 0;
    }
    return rc;
}

int driver_pg_release(void *obj, int is_sem)
{
    return is_sem ? xlock_pg_sem_release(obj) : xlock_pg_release(obj);
}

int driver_pg_locked(void *obj, int is_sem, int verify)
{
    return is_sem ? xlock_pg_sem_held(obj) : xlock_pg_locked(obj, verify);
}

void driver_pg_close(void *obj, int is_sem)
{
    if (is_sem)
        xlock_pg_sem_close(obj);
    else
        xlock_pg_close(obj);
}

int driver_pg_map(jwriter *w, const char *name, size_t len, const char *label, size_t label_len)
{
    long long l, s0, s999;
    int rc = xlock_pg_key(&l, 'l', label, label_len, name, len, 0);
    if (rc == 0)
        rc = xlock_pg_key(&s0, 's', label, label_len, name, len, 0);
    if (rc == 0)
        rc = xlock_pg_key(&s999, 's', label, label_len, name, len, 999);
    if (rc != 0)
        return rc;
    jw_key(w, "pg_keys");
    jw_open(w);
    jw_key(w, "l");
    jw_int(w, l);
    jw_key(w, "s0");
    jw_int(w, s0);
    jw_key(w, "s999");
    jw_int(w, s999);
    jw_close(w);
    return 0;
}
