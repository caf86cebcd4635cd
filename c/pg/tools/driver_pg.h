/* The PostgreSQL part of the conformance driver (conformance/PROTOCOL.md, capability pg), linked into
 * c/build/xlock-driver when libxlock_pg is built (XLOCK_DRIVER_PG). */
#ifndef DRIVER_PG_H
#define DRIVER_PG_H
#include "json.h"
#include "xlock_pg.h"

/* Opens a lock (capacity < 0) or semaphore; *obj is the object. Returns 0 or an xlock code. */
int driver_pg_open(void **obj, const char *name, size_t len, long long capacity,
                   const xlock_options *opts);
/* The open reply's fields after "handle" [PROTOCOL.md, PostgreSQL namespaces]. */
void driver_pg_describe(jwriter *w, void *obj, int is_sem);
int driver_pg_acquire(void *obj, int is_sem, int try_only, long long timeout_ms, int *slot);
int driver_pg_release(void *obj, int is_sem);
int driver_pg_locked(void *obj, int is_sem, int verify);
void driver_pg_close(void *obj, int is_sem);
/* Removal [XL-PG-18]: a lock (capacity < 0) or semaphore (capacity 0 means 1); 0 (*removed = 0) or
 * an xlock code (XLOCK_EWOULDBLOCK if held). */
int driver_pg_remove(int *removed, const char *name, size_t len, long long capacity,
                     const xlock_options *opts);
/* "pg_keys": {"l", "s0", "s999"} for a label [XL-PG-3]; 0 or an xlock code. */
int driver_pg_map(jwriter *w, const char *name, size_t len, const char *label, size_t label_len);
#endif
