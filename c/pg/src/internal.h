/* libxlock_pg internals. Every non-static symbol is xlock_pg__ (hidden: -fvisibility=hidden). */
#ifndef XLOCK_PG_INTERNAL_H
#define XLOCK_PG_INTERNAL_H

#define _GNU_SOURCE
#include "xlock_pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>

#define XPG_HIDDEN __attribute__((visibility("hidden")))
/* An internal code: the session's connection failed or ended (mapped to LOST or BACKEND_ERROR). */
#define XPG_GONE (-1000)
#define XPG_MIN_SERVER 140000
#define XPG_CANCEL_REPEAT_MS 50    /* [XL-PG-8] */
#define XPG_CLIENT_CHECK_MS "1000" /* client_connection_check_interval [XL-PG-6] */

/* A parsed PostgreSQL namespace [XL-PG-1, XL-PG-2, XL-PG-11]. */
typedef struct xpg_ns {
    char *conninfo;  /* the URI without its xlock_ parameters, for libpq */
    char *shown;     /* the URI with its password replaced by *** [XL-PG-14] */
    char *label;     /* xlock_namespace, default "default" */
    char *password;  /* the URI's password (to scrub from messages), or NULL */
    long release_ms; /* R of XL-PG-11 */
} xpg_ns;

/* The state of one object (lock or counting semaphore) and its session. */
typedef struct xpg_obj {
    int is_sem;
    char *name;
    size_t name_len;
    xpg_ns ns;
    int shared, reentrant;
    long long key; /* the lock's key, or slot 0's */
    /* counting semaphores */
    long capacity;
    long long *slot_keys;
    long long marker;
    char channel[24];
    int *mine; /* the slots held, in acquisition order */
    int nmine;
    /* the session */
    PGconn *conn;
    PGcancel *cancel;
    pid_t pid; /* the process that opened the session */
    int backend_pid;
    char token[33];
    unsigned prepared; /* the xpg_stmt bits prepared on this session */
    char sysid[32];
    char *database;
    /* threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy; /* a thread uses the session (mu not held meanwhile) */
    int held; /* lock: the hold count (reentrant); semaphore: unused */
    pthread_t holder;
    _Atomic unsigned long long cancel_gen; /* atomic: xlock_pg_cancel increments it */
    int efd;                               /* eventfd that wakes a server wait on cancel */
    struct xpg_obj *prev, *next;           /* the registry (fork) */
} xpg_obj;

/* A statement prepared on the session at its first use, so that the server parses and plans it
 * once per session rather than at every call (bit: one bit per statement, in xpg_obj.prepared). */
typedef struct xpg_stmt {
    const char *name, *sql;
    int nparams;
    unsigned bit;
} xpg_stmt;

/* A statement's outcome. */
typedef struct xpg_reply {
    PGresult *res; /* the statement's result (also an error result); NULL if none */
    int stop;      /* 0, XLOCK_EINTR or XLOCK_ECANCELED: the wait was interrupted and cancelled */
} xpg_reply;

/* error.c */
XPG_HIDDEN int xlock_pg__fail(int code, const xpg_obj *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
XPG_HIDDEN void xlock_pg__scrub(char *text, const char *secret);
XPG_HIDDEN const char *xlock_pg__what(const xpg_obj *o, char *buf, size_t size);
/* url.c */
XPG_HIDDEN int xlock_pg__parse(xpg_ns *ns, const char *url);
XPG_HIDDEN void xlock_pg__ns_free(xpg_ns *ns);
XPG_HIDDEN void xlock_pg__server(const xpg_obj *o, char *buf, size_t size);
/* key.c */
XPG_HIDDEN long long xlock_pg__key(int kind, const char *label, const char *name, size_t len,
                                   long extra);
/* session.c */
XPG_HIDDEN int xlock_pg__connect(xpg_obj *o);
XPG_HIDDEN void xlock_pg__disconnect(xpg_obj *o);
XPG_HIDDEN int xlock_pg__ensure(xpg_obj *o);
XPG_HIDDEN int xlock_pg__gone(const xpg_obj *o, const PGresult *res);
XPG_HIDDEN int xlock_pg__sql_error(xpg_obj *o, const PGresult *res, const char *doing);
XPG_HIDDEN int xlock_pg__one(xpg_obj *o, const char *sql, int n, const char *const *vals,
                             const char *doing, PGresult **out);
XPG_HIDDEN int xlock_pg__check_token(xpg_obj *o, const PGresult *res, int col);
XPG_HIDDEN int xlock_pg__run_prepared(xpg_obj *o, const xpg_stmt *s, const char *const *vals,
                                      int interruptible, unsigned long long token, xpg_reply *r);
XPG_HIDDEN int xlock_pg__one_prepared(xpg_obj *o, const xpg_stmt *s, const char *const *vals,
                                      const char *doing, PGresult **out);
/* wait.c */
XPG_HIDDEN int xlock_pg__run(xpg_obj *o, const char *sql, int n, const char *const *vals,
                             int interruptible, unsigned long long token, xpg_reply *r);
XPG_HIDDEN int xlock_pg__await(xpg_obj *o, int interruptible, unsigned long long token, xpg_reply *r);
XPG_HIDDEN int xlock_pg__wait_notify(xpg_obj *o, long long until_ns, unsigned long long token);
XPG_HIDDEN long long xlock_pg__now_ns(void);
/* The monotonic deadline of a wait of timeout_ms from start_ns; -1 for none (negative or huge). */
XPG_HIDDEN long long xlock_pg__deadline(long long start_ns, long long timeout_ms);
/* obj.c */
XPG_HIDDEN int xlock_pg__obj_new(xpg_obj **out, int is_sem, const char *name, size_t len,
                                 const xlock_options *opts);
XPG_HIDDEN void xlock_pg__obj_free(xpg_obj *o);
XPG_HIDDEN int xlock_pg__enter(xpg_obj *o, int try_only, long long deadline_ns,
                               unsigned long long token);
XPG_HIDDEN void xlock_pg__leave(xpg_obj *o);
XPG_HIDDEN int xlock_pg__cancel(xpg_obj *o);
XPG_HIDDEN unsigned long long xlock_pg__token(xpg_obj *o);

/* The entry points that locks and semaphores share, on their first member `o`: defines for TYPE
 * PREFIX_try_acquire and PREFIX_acquire (through the static ACQUIRE(x, try_only, timeout_ms)),
 * PREFIX_cancel, and the accessors PREFIX_name, PREFIX_namespace, PREFIX_label,
 * PREFIX_system_identifier, PREFIX_database, PREFIX_key_of and PREFIX_backend_pid
 * (lock.c: xlock_pg_, sem.c: xlock_pg_sem_). */
#define XPG_COMMON_API(prefix, type, ACQUIRE)                                                           \
    int prefix##try_acquire(type *x)                                                                    \
    {                                                                                                   \
        return ACQUIRE(x, 1, 0);                                                                        \
    }                                                                                                   \
    int prefix##acquire(type *x, long long timeout_ms)                                                  \
    {                                                                                                   \
        return ACQUIRE(x, 0, timeout_ms);                                                               \
    }                                                                                                   \
    int prefix##cancel(type *x)                                                                         \
    {                                                                                                   \
        return xlock_pg__cancel(x ? &x->o : NULL);                                                      \
    }                                                                                                   \
    const char *prefix##name(const type *x)                                                             \
    {                                                                                                   \
        return x ? x->o.name : NULL;                                                                    \
    }                                                                                                   \
    const char *prefix##namespace(const type *x)                                                        \
    {                                                                                                   \
        return x ? x->o.ns.shown : NULL;                                                                \
    }                                                                                                   \
    const char *prefix##label(const type *x)                                                            \
    {                                                                                                   \
        return x ? x->o.ns.label : NULL;                                                                \
    }                                                                                                   \
    const char *prefix##system_identifier(const type *x)                                                \
    {                                                                                                   \
        return x ? x->o.sysid : NULL;                                                                   \
    }                                                                                                   \
    const char *prefix##database(const type *x)                                                         \
    {                                                                                                   \
        return x ? x->o.database : NULL;                                                                \
    }                                                                                                   \
    long long prefix##key_of(const type *x)                                                             \
    {                                                                                                   \
        return x ? x->o.key : 0;                                                                        \
    }                                                                                                   \
    int prefix##backend_pid(const type *x)                                                              \
    {                                                                                                   \
        return x ? x->o.backend_pid : 0;                                                                \
    }

#endif
