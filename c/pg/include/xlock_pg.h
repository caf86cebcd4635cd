/*
 * xlock_pg.h — libxlock_pg: PostgreSQL namespaces of spec xlock/1 (spec/xlock-1.md §16), on libpq.
 *
 * A namespace whose text starts with "postgresql://" or "postgres://" is a libpq connection URI
 * [XL-PG-1]; locks are session-level advisory locks on 64-bit keys [XL-PG-3, XL-PG-4], and counting
 * semaphores are N slot keys [XL-PG-13]. libxlock_pg is a separate library so that libxlock keeps no
 * dependency; it uses libxlock for the shared parts (xlock_options, name checks, SHA-256, the error
 * codes of xlock.h and xlock_strerror/xlock_errname). Link with `pkg-config --libs libxlock_pg`.
 *
 * Conventions: as libxlock's (see xlock.h). Functions return 0 (or a slot index) or a negative
 * XLOCK_E* code; after a failure xlock_pg_last_message() (per thread) names the lock, the server and
 * what to do, and never contains a password [XL-PG-14]. Kinds used here beyond libxlock's:
 * XLOCK_ELOST [XL-PG-10], XLOCK_EUNSUPPORTEDBACKEND [XL-PG-6, XL-PG-9], XLOCK_EBACKEND [XL-PG-15].
 *
 * Sessions [XL-PG-5, XL-PG-6]: every object has a connection of its own, opened by the open call
 * (so a bad URI or an unreachable server fails there) and set up as XL-PG-6 says; it is reopened
 * before the next acquisition after a LOST or in a forked child. Each object costs one server
 * connection while open. Statements run in autocommit mode.
 *
 * Threads: every function may be called from any thread; calls on one handle are serialised by the
 * handle (a thread waits while another uses the session), except xlock_pg_cancel, which never waits.
 * The close function must not race any other call on the same handle.
 *
 * Interruption and cancellation [XL-PG-8, XL-WAIT-9, XL-WAIT-10]: every wait is poll(2) on the
 * session's socket. A signal handler that runs during it (with or without SA_RESTART) makes the call
 * send a cancel request for the session (repeated every 50 ms until the statement returns), read the
 * statement's result, release the lock if it was granted meanwhile, and return XLOCK_EINTR; nothing
 * is then granted or queued for the session in pg_locks. xlock_pg_cancel(l) from another thread does
 * the same with XLOCK_ECANCELED for every wait in progress on l (a cancel while nothing waits is a
 * no-op).
 *
 * Fork [XL-PG-16, XL-HOLD-7]: in the child of fork(2) an atfork handler points every inherited
 * session's socket at /dev/null with dup2 and forgets the session without a word to the server
 * (never PQfinish, which would end the parent's session); the child's objects hold nothing and open
 * a new session before their next acquisition.
 */
#ifndef XLOCK_PG_H
#define XLOCK_PG_H

#include <stddef.h>

#include <xlock.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XLOCK_PG_VERSION_MAJOR 0
#define XLOCK_PG_VERSION_MINOR 1
#define XLOCK_PG_VERSION_PATCH 0
#define XLOCK_PG_VERSION_STRING "0.1.0"
/* The SONAME's major number: libxlock_pg.so.1. */
#define XLOCK_PG_ABI_VERSION 1

/* Key kinds [XL-PG-3]: a lock, a slot of a counting semaphore (extra = slot), the capacity marker
 * of a counting semaphore (extra = capacity). */
#define XLOCK_PG_KIND_LOCK 'l'
#define XLOCK_PG_KIND_SLOT 's'
#define XLOCK_PG_KIND_CAPACITY 'c'
/* The label when the URI has no xlock_namespace parameter [XL-PG-2]. */
#define XLOCK_PG_DEFAULT_LABEL "default"

/* XLOCK_PG_VERSION_STRING of the library loaded. Static storage. */
XLOCK_EXPORT const char *xlock_pg_version_string(void);

/* The message of the calling thread's most recent failed xlock_pg call ("" if none) [XL-ERR-3].
 * Thread-local, valid until that thread's next failing xlock_pg call. */
XLOCK_EXPORT const char *xlock_pg_last_message(void);

/* 1 if ns starts with "postgresql://" or "postgres://" (a PostgreSQL namespace), else 0 [XL-PG-1].
 * NULL gives 0. Pure. */
XLOCK_EXPORT int xlock_pg_is_url(const char *ns);

/* The key of an object [XL-PG-3]: the first 8 bytes of SHA-256("xlock/1" 0 "pg" 0 kind 0 label 0
 * name [0 decimal(extra)]) read as a big-endian signed 64-bit integer; extra is used for kinds 's'
 * and 'c' only. Pure (no connection). Errors: XLOCK_EINVALNAME (name breaks §3), XLOCK_EINVAL (NULL
 * key, a label that breaks §3, another kind, extra outside 0..999 for 's' or 1..1000 for 'c'). */
XLOCK_EXPORT int xlock_pg_key(long long *key, int kind, const char *label, size_t label_len,
                              const char *name, size_t name_len, long extra);

/* ---- locks ------------------------------------------------------------------------------------- */

typedef struct xlock_pg xlock_pg_t;

/* Opens a lock object for name in the PostgreSQL namespace opts->namespace_path (NULL: the
 * environment variable XLOCK_NAMESPACE, which must then be a postgresql:// URI); opts->shared and
 * opts->reentrant as for xlock_open, the other options are ignored. Connects and sets the session
 * up [XL-PG-6]. Checks in this order: the name (XLOCK_EINVALNAME), the URI and its xlock_
 * parameters (XLOCK_EINVAL, before any connection [XL-PG-1, XL-PG-2]), then the server
 * (XLOCK_EBACKEND: unreachable within connect_timeout, default 10 s, credentials refused;
 * XLOCK_EUNSUPPORTEDBACKEND: a standby or a server older than PostgreSQL 14). *out is NULL on
 * failure. */
XLOCK_EXPORT int xlock_pg_open(xlock_pg_t **out, const char *name, const xlock_options *opts);
XLOCK_EXPORT int xlock_pg_open_n(xlock_pg_t **out, const char *name, size_t len,
                                 const xlock_options *opts);
/* Releases what the object holds, ends its session (the server releases everything of the
 * session) and frees it. NULL is a no-op. In a forked child it sends nothing [XL-PG-16]. */
XLOCK_EXPORT void xlock_pg_close(xlock_pg_t *l);
/* One attempt, pg_try_advisory_lock[_shared] [XL-PG-7]. Errors: XLOCK_EWOULDBLOCK, XLOCK_EALREADY
 * (this thread holds this non-reentrant object [XL-HOLD-3]), XLOCK_EUNSUPPORTEDBACKEND (a pooler
 * [XL-PG-9]), XLOCK_EBACKEND, XLOCK_EINVAL. */
XLOCK_EXPORT int xlock_pg_try_acquire(xlock_pg_t *l);
/* Acquires, waiting in the server's queue: timeout_ms < 0 untimed; > 0 with lock_timeout set to the
 * time left rounded up (never early); 0, or a deadline already passed, is one try failing with
 * XLOCK_ETIMEDOUT [XL-PG-7, XL-WAIT-3]. Errors as xlock_pg_try_acquire, and XLOCK_ETIMEDOUT,
 * XLOCK_EINTR, XLOCK_ECANCELED [XL-PG-8]. */
XLOCK_EXPORT int xlock_pg_acquire(xlock_pg_t *l, long long timeout_ms);
/* pg_advisory_unlock[_shared]. Errors: XLOCK_ENOTHELD, XLOCK_ELOST (the session ended or no longer
 * held the key; the object is then not held [XL-PG-10]), XLOCK_EINVAL. */
XLOCK_EXPORT int xlock_pg_release(xlock_pg_t *l);
/* 1 if this object holds the lock, 0 if not. With verify = 1 the server is asked (pg_locks): a lost
 * lock gives XLOCK_ELOST and the object is then not held [XL-PG-10]. XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_pg_locked(xlock_pg_t *l, int verify);
/* Cancels every wait on l in progress now: each returns XLOCK_ECANCELED, with nothing granted or
 * queued [XL-PG-8, XL-WAIT-10]. Never blocks; safe from any thread. 0, or XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_pg_cancel(xlock_pg_t *l);

/* Introspection [XL-PG-12]. Strings live until close; NULL for NULL. */
XLOCK_EXPORT const char *xlock_pg_name(const xlock_pg_t *l);
/* The URI as given, its password replaced by "***" and its xlock_ parameters kept [XL-PG-14]. */
XLOCK_EXPORT const char *xlock_pg_namespace(const xlock_pg_t *l);
XLOCK_EXPORT const char *xlock_pg_label(const xlock_pg_t *l);
/* The server's system_identifier (decimal) and the database name, read at session setup. */
XLOCK_EXPORT const char *xlock_pg_system_identifier(const xlock_pg_t *l);
XLOCK_EXPORT const char *xlock_pg_database(const xlock_pg_t *l);
/* The object's key (XLOCK_PG_KIND_LOCK); 0 for NULL. */
XLOCK_EXPORT long long xlock_pg_key_of(const xlock_pg_t *l);
/* The server process of the current session, or 0 when there is none. */
XLOCK_EXPORT int xlock_pg_backend_pid(const xlock_pg_t *l);

/* Removal [XL-PG-18]: a PostgreSQL namespace has no files, so nothing is ever removed. Opens the lock
 * named name in opts->namespace_path (a URL; only that field of opts is used), tries it once
 * exclusively and gives it back: 0 with *removed = 0 if it was free, XLOCK_EWOULDBLOCK if anyone
 * holds it. Other errors as xlock_pg_open and xlock_pg_try_acquire; XLOCK_EINVAL if removed is NULL. */
XLOCK_EXPORT int xlock_pg_remove(int *removed, const char *name, const xlock_options *opts);
XLOCK_EXPORT int xlock_pg_remove_n(int *removed, const char *name, size_t len,
                                   const xlock_options *opts);

/* ---- counting semaphores [XL-PG-13] ------------------------------------------------------------ */

typedef struct xlock_pg_sem xlock_pg_sem_t;

/* Opens a counting semaphore of capacity 1..1000 (else XLOCK_EINVAL): connects, LISTENs on its
 * channel and takes the shared capacity marker; XLOCK_ECAPACITY if a live participant uses another
 * capacity. Other errors as xlock_pg_open. */
XLOCK_EXPORT int xlock_pg_sem_open(xlock_pg_sem_t **out, const char *name, long capacity,
                                   const xlock_options *opts);
XLOCK_EXPORT int xlock_pg_sem_open_n(xlock_pg_sem_t **out, const char *name, size_t len, long capacity,
                                     const xlock_options *opts);
XLOCK_EXPORT void xlock_pg_sem_close(xlock_pg_sem_t *s);
/* One try of the free slots in one statement; returns the slot index held. */
XLOCK_EXPORT int xlock_pg_sem_try_acquire(xlock_pg_sem_t *s);
/* Waits for a permit (NOTIFY on the channel, and the safety polls of XL-WAIT-7 for holders whose
 * session ended); returns the slot index. Errors as xlock_pg_acquire. */
XLOCK_EXPORT int xlock_pg_sem_acquire(xlock_pg_sem_t *s, long long timeout_ms);
/* Gives back the most recently taken permit and notifies the waiters. XLOCK_ENOTHELD, XLOCK_ELOST. */
XLOCK_EXPORT int xlock_pg_sem_release(xlock_pg_sem_t *s);
/* The number of permits this object holds (0 if none); XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_pg_sem_held(xlock_pg_sem_t *s);
XLOCK_EXPORT int xlock_pg_sem_cancel(xlock_pg_sem_t *s);
XLOCK_EXPORT const char *xlock_pg_sem_name(const xlock_pg_sem_t *s);
XLOCK_EXPORT const char *xlock_pg_sem_namespace(const xlock_pg_sem_t *s);
XLOCK_EXPORT const char *xlock_pg_sem_label(const xlock_pg_sem_t *s);
XLOCK_EXPORT const char *xlock_pg_sem_system_identifier(const xlock_pg_sem_t *s);
XLOCK_EXPORT const char *xlock_pg_sem_database(const xlock_pg_sem_t *s);
/* The key of slot 0. */
XLOCK_EXPORT long long xlock_pg_sem_key_of(const xlock_pg_sem_t *s);
XLOCK_EXPORT int xlock_pg_sem_backend_pid(const xlock_pg_sem_t *s);
XLOCK_EXPORT long xlock_pg_sem_capacity(const xlock_pg_sem_t *s);
/* Removal of a counting semaphore [XL-PG-18]: opens it with capacity (0 means 1; a live
 * participant with another capacity gives XLOCK_ECAPACITY), tries every slot once and gives back what
 * it took: 0 with *removed = 0 if every permit was free, XLOCK_EWOULDBLOCK if any is held. Other
 * errors as xlock_pg_sem_open and xlock_pg_sem_try_acquire; XLOCK_EINVAL if removed is NULL. */
XLOCK_EXPORT int xlock_pg_sem_remove(int *removed, const char *name, long capacity,
                                     const xlock_options *opts);
XLOCK_EXPORT int xlock_pg_sem_remove_n(int *removed, const char *name, size_t len, long capacity,
                                       const xlock_options *opts);

#ifdef __cplusplus
}
#endif
#endif
