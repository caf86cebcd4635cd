/* Locks in a PostgreSQL namespace: session-level advisory locks on the object's key [XL-PG-4,
 * XL-PG-7, XL-PG-8, XL-PG-9, XL-PG-10]. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct xlock_pg {
    xpg_obj o;
};

#define OBJ(l) (&(l)->o)
#define CHECK "current_setting('xlock.session_token', true), pg_backend_pid()" /* [XL-PG-9] */
/* The waiting form sets lock_timeout ($2: "<n>ms", or "0" for no timeout) for its own transaction,
 * before it waits (CASE evaluates WHEN first), so that a timed acquisition is one round trip and
 * the session's lock_timeout stays 0 [XL-PG-6, XL-PG-7]. */
#define WAIT(fn)                                                                                        \
    "SELECT CASE WHEN set_config('lock_timeout', $2, true) IS NOT NULL THEN " fn "($1::int8) END, "

/* The lock's statements, prepared at their first use on a session: [exclusive, shared] each. */
static const xpg_stmt TRY[2] = {
    {"xlock_try", "SELECT pg_try_advisory_lock($1::int8), " CHECK, 1, 1u << 0},
    {"xlock_try_shared", "SELECT pg_try_advisory_lock_shared($1::int8), " CHECK, 1, 1u << 1}};
static const xpg_stmt LOCK[2] = {
    {"xlock_lock", WAIT("pg_advisory_lock") CHECK, 2, 1u << 2},
    {"xlock_lock_shared", WAIT("pg_advisory_lock_shared") CHECK, 2, 1u << 3}};
static const xpg_stmt UNLOCK[2] = {
    {"xlock_unlock", "SELECT pg_advisory_unlock($1::int8)", 1, 1u << 4},
    {"xlock_unlock_shared", "SELECT pg_advisory_unlock_shared($1::int8)", 1, 1u << 5}};

int xlock_pg_open(xlock_pg_t **out, const char *name, const xlock_options *opts)
{
    return xlock_pg_open_n(out, name, name ? strlen(name) : 0, opts);
}

int xlock_pg_open_n(xlock_pg_t **out, const char *name, size_t len, const xlock_options *opts)
{
    xpg_obj *o;
    if (out != NULL)
        *out = NULL;
    int rc = out == NULL ? xlock_pg__fail(XLOCK_EINVAL, NULL, "the out-parameter must not be NULL")
                         : xlock_pg__obj_new(&o, 0, name, len, opts);
    if (rc != 0)
        return rc;
    rc = xlock_pg__connect(o);
    if (rc != 0) {
        xlock_pg__obj_free(o);
        return rc;
    }
    *out = (xlock_pg_t *)o; /* the object is the first member */
    return 0;
}

/* Unlocks the key on the session; retried if a late cancel request hit it [XL-PG-8]. 0, XLOCK_ELOST
 * (the session ended or did not hold it [XL-PG-10]) or XLOCK_EBACKEND. */
static int unlock(xpg_obj *o, const char *doing)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", o->key);
    const char *vals[] = {key};
    for (int attempt = 0;; attempt++) {
        PGresult *res;
        int rc = xlock_pg__one_prepared(o, &UNLOCK[o->shared != 0], vals, doing, &res);
        if (rc == XLOCK_EBACKEND && attempt < 5 && strstr(xlock_pg_last_message(), "57014") != NULL)
            continue; /* a cancel request that arrived after the statement it was meant for */
        if (rc == XPG_GONE) {
            xlock_pg__disconnect(o);
            return xlock_pg__fail(
                XLOCK_ELOST, o,
                "%s: the session ended, so the server released the lock (another client "
                "may hold it now) [XL-PG-10]",
                doing);
        }
        if (rc != 0)
            return rc;
        int released = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!released)
            return xlock_pg__fail(XLOCK_ELOST, o,
                                  "%s: the session no longer held the lock (pg_advisory_unlock_all or "
                                  "DISCARD ALL ran on it; another client may hold it now) [XL-PG-10]",
                                  doing);
        return 0;
    }
}

/* The session ended during an acquire: it is dropped; nothing is held [XL-PG-15]. */
static int ended_while_acquiring(xpg_obj *o)
{
    char server[512];
    xlock_pg__server(o, server, sizeof server);
    xlock_pg__disconnect(o);
    return xlock_pg__fail(XLOCK_EBACKEND, o,
                          "the session with the %s ended while acquiring; "
                          "nothing is held, try again [XL-PG-15]",
                          server);
}

/* One statement on the server: try (try_only, timeout 0 or the deadline passed) or wait with
 * lock_timeout [XL-PG-7]. */
static int server_acquire(xpg_obj *o, int try_only, long long deadline_ns, unsigned long long token)
{
    char key[24], timeout[32] = "0";
    snprintf(key, sizeof key, "%lld", o->key);
    const char *vals[] = {key, timeout};
    long long now = xlock_pg__now_ns();
    int once = try_only || (deadline_ns >= 0 && now >= deadline_ns);
    if (!once && deadline_ns >= 0) {
        /* the time left rounded up, never 0 for a timed wait: lock_timeout 0 is no timeout */
        long long ms = (deadline_ns - now + 999999) / 1000000;
        snprintf(timeout, sizeof timeout, "%lldms", ms < 1 ? 1 : ms);
    }
    xpg_reply r;
    int rc = xlock_pg__run_prepared(o, once ? &TRY[o->shared != 0] : &LOCK[o->shared != 0], vals, !once,
                                    token, &r);
    if (rc == XPG_GONE) {
        PQclear(r.res);
        return ended_while_acquiring(o);
    }
    ExecStatusType st = PQresultStatus(r.res);
    /* the waiting form returns void: its success is the grant */
    int granted = st == PGRES_TUPLES_OK && (!once || strcmp(PQgetvalue(r.res, 0, 0), "t") == 0);
    if (granted && xlock_pg__check_token(o, r.res, 1) != 0) {
        char why[2048];
        snprintf(why, sizeof why, "%s", xlock_pg_last_message());
        PQclear(r.res);
        unlock(o, "undoing a lock taken through a pooler"); /* what the statement granted [XL-PG-9] */
        xlock_pg__disconnect(o);
        return xlock_pg__fail(XLOCK_EUNSUPPORTEDBACKEND, NULL, "%s", why);
    }
    if (r.stop) {
        /* Interrupted: the statement was cancelled and drained; a grant that raced the cancel is
         * given back, so nothing is granted or queued [XL-PG-8]. */
        PQclear(r.res);
        if (granted && unlock(o, "giving back a lock granted during the interruption") != 0)
            xlock_pg__disconnect(o); /* ending the session releases it for sure */
        return xlock_pg__fail(r.stop, o,
                              r.stop == XLOCK_EINTR
                                  ? "the wait was interrupted by a signal; nothing is held [XL-PG-8]"
                                  : "the wait was cancelled; nothing is held [XL-PG-8]");
    }
    if (st == PGRES_TUPLES_OK) {
        if (!granted && xlock_pg__check_token(o, r.res, 1) != 0) {
            PQclear(r.res);
            xlock_pg__disconnect(o);
            return XLOCK_EUNSUPPORTEDBACKEND;
        }
        PQclear(r.res);
        if (granted)
            return 0;
        if (try_only)
            return xlock_pg__fail(XLOCK_EWOULDBLOCK, o, "held by another session");
        return xlock_pg__fail(XLOCK_ETIMEDOUT, o, "not acquired within the timeout (one try) [XL-PG-7]");
    }
    const char *state = PQresultErrorField(r.res, PG_DIAG_SQLSTATE);
    if (state != NULL && strcmp(state, "55P03") == 0) {
        PQclear(r.res);
        return xlock_pg__fail(XLOCK_ETIMEDOUT, o, "not acquired within the timeout [XL-PG-7]");
    }
    if (xlock_pg__gone(o, r.res)) {
        PQclear(r.res);
        return ended_while_acquiring(o);
    }
    rc = xlock_pg__sql_error(o, r.res, "acquiring");
    PQclear(r.res);
    return rc;
}

static int acquire(xlock_pg_t *l, int try_only, long long timeout_ms)
{
    if (l == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the lock object must not be NULL");
    xpg_obj *o = OBJ(l);
    long long deadline = xlock_pg__deadline(xlock_pg__now_ns(), timeout_ms);
    unsigned long long token = xlock_pg__token(o);
    pthread_mutex_lock(&o->mu);
    if (o->held && pthread_equal(o->holder, pthread_self())) {
        int rc = 0;
        if (o->reentrant)
            o->held++; /* counted here; PostgreSQL's own re-entrancy is never used [XL-HOLD-4] */
        else
            rc = xlock_pg__fail(XLOCK_EALREADY, o, "this thread already holds this object [XL-HOLD-3]");
        pthread_mutex_unlock(&o->mu);
        return rc;
    }
    pthread_mutex_unlock(&o->mu);
    int rc = xlock_pg__enter(o, try_only, deadline, token);
    if (rc != 0) {
        if (rc == XLOCK_EWOULDBLOCK)
            return xlock_pg__fail(rc, o, "another thread holds or is acquiring this object");
        return xlock_pg__fail(rc, o,
                              rc == XLOCK_ETIMEDOUT ? "not acquired within the timeout"
                                                    : "the wait was cancelled; nothing is held");
    }
    rc = xlock_pg__ensure(o);
    if (rc == 0)
        rc = server_acquire(o, try_only, deadline, token);
    pthread_mutex_lock(&o->mu);
    if (rc == 0) {
        o->held = 1;
        o->holder = pthread_self();
    }
    pthread_mutex_unlock(&o->mu);
    xlock_pg__leave(o);
    return rc;
}

int xlock_pg_release(xlock_pg_t *l)
{
    if (l == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the lock object must not be NULL");
    xpg_obj *o = OBJ(l);
    pthread_mutex_lock(&o->mu);
    int rc = 0;
    if (!o->held || (o->reentrant && !pthread_equal(o->holder, pthread_self())))
        rc = xlock_pg__fail(XLOCK_ENOTHELD, o, "this object does not hold the lock; nothing released");
    else if (o->held > 1)
        o->held--, rc = 1;
    pthread_mutex_unlock(&o->mu);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    xlock_pg__enter(o, 0, -1, xlock_pg__token(o));
    rc = o->conn == NULL ? xlock_pg__fail(XLOCK_ELOST, o,
                                          "the session ended, so the server released the "
                                          "lock (another client may hold it now) [XL-PG-10]")
                         : unlock(o, "releasing");
    pthread_mutex_lock(&o->mu);
    o->held = 0; /* also after LOST: the object is not held [XL-PG-10] */
    pthread_mutex_unlock(&o->mu);
    xlock_pg__leave(o);
    return rc;
}

int xlock_pg_locked(xlock_pg_t *l, int verify)
{
    if (l == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the lock object must not be NULL");
    xpg_obj *o = OBJ(l);
    pthread_mutex_lock(&o->mu);
    int held = o->held > 0;
    pthread_mutex_unlock(&o->mu);
    if (!held || !verify)
        return held;
    xlock_pg__enter(o, 0, -1, xlock_pg__token(o));
    unsigned long long u = (unsigned long long)o->key;
    char hi[24], lo[24];
    snprintf(hi, sizeof hi, "%llu", u >> 32);
    snprintf(lo, sizeof lo, "%llu", u & 0xFFFFFFFFULL);
    const char *vals[] = {hi, lo};
    PGresult *res = NULL;
    int rc = o->conn == NULL
                 ? XPG_GONE
                 : xlock_pg__one(o,
                                 "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                                 "AND locktype = 'advisory' AND objsubid = 1 AND classid = "
                                 "$1::int8::oid AND objid = $2::int8::oid AND granted",
                                 2, vals, "verifying the lock", &res);
    if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) > 0)
        rc = 1;
    else if (rc == 0 || rc == XPG_GONE) {
        if (rc == XPG_GONE)
            xlock_pg__disconnect(o);
        rc = xlock_pg__fail(XLOCK_ELOST, o,
                            "the session %s; the lock is not held (another client may "
                            "hold it now) [XL-PG-10]",
                            rc == 0 ? "no longer holds the key" : "ended");
        pthread_mutex_lock(&o->mu);
        o->held = 0;
        pthread_mutex_unlock(&o->mu);
    }
    PQclear(res);
    xlock_pg__leave(o);
    return rc;
}

void xlock_pg_close(xlock_pg_t *l)
{
    if (l == NULL)
        return;
    xpg_obj *o = OBJ(l);
    /* Unlock before ending the session: the server's release after PQfinish is asynchronous, and a
     * closed object must not hold the lock after close returns [XL-HOLD-10]. */
    if (o->held && o->conn != NULL && o->pid == getpid())
        unlock(o, "releasing at close");
    xlock_pg__obj_free(o);
}

XPG_COMMON_API(xlock_pg_, xlock_pg_t, acquire)
