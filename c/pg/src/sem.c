/* Counting semaphores in a PostgreSQL namespace: N exclusive slot keys tried in one statement,
 * LISTEN/NOTIFY in place of the bell with the safety polls of XL-WAIT-7, and capacity agreement
 * among live participants through shared marker locks [XL-PG-13]. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct xlock_pg_sem {
    xpg_obj o;
};

#define OBJ(s) (&(s)->o)
#define KEY_OF "((classid::int8 << 32) | objid::int8)"

static const char SQL_TRY[] = "WITH RECURSIVE t(n, got) AS ("
                              " SELECT 1, pg_try_advisory_lock(($1::int8[])[1])"
                              " UNION ALL SELECT n + 1, pg_try_advisory_lock(($1::int8[])[n + 1]) FROM t"
                              " WHERE NOT got AND n < cardinality($1::int8[]))"
                              " SELECT (SELECT n FROM t WHERE got), "
                              "current_setting('xlock.session_token', true), pg_backend_pid()";
static const char SQL_MINE[] =
    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid "
    "= 1"
    " AND granted AND mode = 'ExclusiveLock' AND " KEY_OF " = ANY($1::int8[])";

/* "{k1,k2,...}" of the keys keys[idx[i]] (or keys[i] when idx is NULL). */
static char *array_text(const long long *keys, const int *idx, int n)
{
    char *t = malloc((size_t)n * 22 + 3), *p = t;
    if (t == NULL)
        abort();
    *p++ = '{';
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", keys[idx ? idx[i] : i]);
    *p++ = '}';
    *p = '\0';
    return t;
}

/* Takes the shared capacity marker and looks for a live participant of another capacity
 * [XL-PG-13]. */
static int join(xpg_obj *o)
{
    char marker[24];
    snprintf(marker, sizeof marker, "%lld", o->marker);
    const char *v1[] = {marker};
    PGresult *res;
    int rc = xlock_pg__one(o, "SELECT pg_advisory_lock_shared($1::int8)", 1, v1,
                           "taking the capacity marker", &res);
    PQclear(res);
    if (rc != 0)
        return rc == XPG_GONE ? XLOCK_EBACKEND : rc;
    long long others[XLOCK_CAPACITY_MAX];
    int n = 0;
    for (long m = 1; m <= XLOCK_CAPACITY_MAX; m++)
        if (m != o->capacity)
            others[n++] = xlock_pg__key('c', o->ns.label, o->name, o->name_len, m);
    char *arr = array_text(others, NULL, n);
    const char *v2[] = {arr};
    rc = xlock_pg__one(
        o,
        "SELECT min(m.n) FROM pg_locks l JOIN unnest($1::int8[]) WITH ORDINALITY m(k, n) ON "
        "m.k = ((l.classid::int8 << 32) | l.objid::int8) WHERE l.locktype = 'advisory' AND "
        "l.objsubid = 1 AND l.granted",
        1, v2, "checking the capacity", &res);
    free(arr);
    if (rc != 0)
        return rc == XPG_GONE ? XLOCK_EBACKEND : rc;
    if (!PQgetisnull(res, 0, 0)) {
        long i = atol(PQgetvalue(res, 0, 0));
        long other = i < o->capacity ? i : i + 1; /* the list skips our own capacity */
        PQclear(res);
        return xlock_pg__fail(XLOCK_ECAPACITY, o,
                              "a live participant uses capacity %ld; every open object of one name must "
                              "agree on the capacity [XL-PG-13]",
                              other);
    }
    PQclear(res);
    return 0;
}

static int sem_ensure(xpg_obj *o)
{
    if (o->conn != NULL && o->pid == getpid() && PQstatus(o->conn) == CONNECTION_OK)
        return 0;
    int rc = xlock_pg__ensure(o);
    if (rc == 0)
        rc = join(o);
    if (rc != 0)
        xlock_pg__disconnect(o);
    return rc;
}

int xlock_pg_sem_open(xlock_pg_sem_t **out, const char *name, long capacity, const xlock_options *opts)
{
    return xlock_pg_sem_open_n(out, name, name ? strlen(name) : 0, capacity, opts);
}

int xlock_pg_sem_open_n(xlock_pg_sem_t **out, const char *name, size_t len, long capacity,
                        const xlock_options *opts)
{
    if (out == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the out-parameter must not be NULL");
    *out = NULL;
    if (name != NULL && xlock_validate_name(name, len) != 0)
        return xlock_pg__fail(XLOCK_EINVALNAME, NULL, "%s", xlock_last_message());
    if (capacity < 1 || capacity > XLOCK_CAPACITY_MAX)
        return xlock_pg__fail(XLOCK_EINVAL, NULL,
                              "capacity %ld is out of range; it must be 1 to 1000 [XL-CSEM-1]",
                              capacity);
    if (opts != NULL && (opts->shared || opts->reentrant))
        return xlock_pg__fail(XLOCK_EINVAL, NULL,
                              "shared and reentrant are options of locks, not semaphores");
    xpg_obj *o;
    int rc = xlock_pg__obj_new(&o, 1, name, len, opts);
    if (rc != 0)
        return rc;
    o->capacity = capacity;
    o->slot_keys = malloc(sizeof *o->slot_keys * (size_t)capacity);
    o->mine = malloc(sizeof *o->mine * (size_t)capacity);
    for (long i = 0; i < capacity; i++)
        o->slot_keys[i] = xlock_pg__key('s', o->ns.label, name, len, i);
    o->marker = xlock_pg__key('c', o->ns.label, name, len, capacity);
    snprintf(o->channel, sizeof o->channel, "xl1s_%016llx", (unsigned long long)o->slot_keys[0]);
    rc = sem_ensure(o);
    if (rc != 0) {
        xlock_pg__obj_free(o);
        return rc;
    }
    *out = (xlock_pg_sem_t *)o;
    return 0;
}

/* One try of the free slots; the slot index, or XLOCK_EWOULDBLOCK, or an error. */
static int try_slots(xpg_obj *o)
{
    int free_idx[XLOCK_CAPACITY_MAX], nfree = 0;
    for (int i = 0; i < o->capacity; i++) {
        int mine = 0;
        for (int j = 0; j < o->nmine; j++)
            mine |= o->mine[j] == i;
        if (!mine)
            free_idx[nfree++] = i;
    }
    if (nfree == 0)
        return xlock_pg__fail(XLOCK_EWOULDBLOCK, o, "this object holds every permit");
    char *arr = array_text(o->slot_keys, free_idx, nfree);
    const char *vals[] = {arr};
    PGresult *res;
    int rc = xlock_pg__one(o, SQL_TRY, 1, vals, "trying the slots", &res);
    free(arr);
    if (rc == XPG_GONE) {
        xlock_pg__disconnect(o);
        return xlock_pg__fail(XLOCK_EBACKEND, o,
                              "the session ended while acquiring; nothing is held, try again");
    }
    if (rc != 0)
        return rc;
    int got = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));
    if (xlock_pg__check_token(o, res, 1) != 0) {
        PQclear(res);
        xlock_pg__disconnect(o); /* ending the session gives back whatever it took [XL-PG-9] */
        return XLOCK_EUNSUPPORTEDBACKEND;
    }
    PQclear(res);
    if (got == 0)
        return xlock_pg__fail(XLOCK_EWOULDBLOCK, o, "every permit is held");
    int slot = free_idx[got - 1];
    o->mine[o->nmine++] = slot;
    /* The session must hold exactly the permits this object counts [XL-PG-13]. */
    arr = array_text(o->slot_keys, o->mine, o->nmine);
    const char *v2[] = {arr};
    rc = xlock_pg__one(o, SQL_MINE, 1, v2, "checking the slots", &res);
    free(arr);
    if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) == o->nmine) {
        PQclear(res);
        return slot;
    }
    PQclear(res);
    o->nmine--;
    xlock_pg__disconnect(o);
    return rc != 0 ? rc
                   : xlock_pg__fail(XLOCK_EBACKEND, o,
                                    "the session does not hold exactly the permits "
                                    "this object counts; the session was ended [XL-PG-13]");
}

/* The next safety poll after now: 1, 3, 7, 15, 31 ms after start, then every 16 ms [XL-WAIT-7]. */
static long long next_poll(long long start, long long now)
{
    static const int first[] = {1, 3, 7, 15, 31};
    for (int i = 0; i < 5; i++)
        if (start + first[i] * 1000000LL > now)
            return start + first[i] * 1000000LL;
    long long base = start + 31 * 1000000LL, step = 16 * 1000000LL;
    return base + ((now - base) / step + 1) * step;
}

static int sem_acquire(xlock_pg_sem_t *s, int try_only, long long timeout_ms)
{
    if (s == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the semaphore object must not be NULL");
    xpg_obj *o = OBJ(s);
    long long start = xlock_pg__now_ns();
    long long deadline = xlock_pg__deadline(start, timeout_ms);
    unsigned long long token = xlock_pg__token(o);
    int rc = xlock_pg__enter(o, 0, deadline, token);
    if (rc != 0)
        return xlock_pg__fail(rc, o,
                              rc == XLOCK_ETIMEDOUT ? "no permit within the timeout"
                                                    : "the wait was cancelled; nothing is held");
    rc = sem_ensure(o);
    if (rc == 0)
        rc = try_slots(o);
    while (rc == XLOCK_EWOULDBLOCK && !try_only) { /* XL-WAIT-12 with LISTEN for the bell [XL-PG-13] */
        long long now = xlock_pg__now_ns();
        if (xlock_pg__token(o) != token) {
            rc = xlock_pg__fail(XLOCK_ECANCELED, o, "the wait was cancelled; nothing is held");
            break;
        }
        if (deadline >= 0 && now >= deadline) {
            rc = xlock_pg__fail(XLOCK_ETIMEDOUT, o,
                                timeout_ms == 0 ? "no permit (timeout 0: one try)"
                                                : "no permit within the timeout");
            break;
        }
        long long wake = next_poll(start, now);
        if (deadline >= 0 && deadline < wake)
            wake = deadline;
        int w = xlock_pg__wait_notify(o, wake, token);
        if (w == XLOCK_EINTR || w == XLOCK_ECANCELED) {
            rc =
                xlock_pg__fail(w, o,
                               w == XLOCK_EINTR ? "the wait was interrupted by a signal; nothing is held"
                                                : "the wait was cancelled; nothing is held");
            break;
        }
        rc = sem_ensure(o); /* a session lost while waiting is replaced */
        if (rc == 0)
            rc = try_slots(o);
    }
    xlock_pg__leave(o);
    return rc;
}

int xlock_pg_sem_release(xlock_pg_sem_t *s)
{
    if (s == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the semaphore object must not be NULL");
    xpg_obj *o = OBJ(s);
    xlock_pg__enter(o, 0, -1, xlock_pg__token(o));
    int rc;
    if (o->nmine == 0) {
        rc = xlock_pg__fail(XLOCK_ENOTHELD, o, "this object holds no permit; nothing released");
    } else {
        int slot = o->mine[--o->nmine];
        char key[24];
        snprintf(key, sizeof key, "%lld", o->slot_keys[slot]);
        const char *vals[] = {key, o->channel};
        PGresult *res = NULL;
        rc = o->conn == NULL ? XPG_GONE
                             : xlock_pg__one(o, "SELECT pg_advisory_unlock($1::int8), pg_notify($2, '')",
                                             2, vals, "releasing", &res);
        if (rc == XPG_GONE) {
            o->nmine = 0;
            xlock_pg__disconnect(o);
            rc = xlock_pg__fail(XLOCK_ELOST, o,
                                "the session ended, so the server released the permit "
                                "(another client may hold it now) [XL-PG-10]");
        } else if (rc == 0 && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
            rc = xlock_pg__fail(XLOCK_ELOST, o,
                                "the session no longer held slot %d (another client may hold "
                                "it now) [XL-PG-10]",
                                slot);
        }
        PQclear(res);
    }
    xlock_pg__leave(o);
    return rc;
}

int xlock_pg_sem_held(xlock_pg_sem_t *s)
{
    if (s == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the semaphore object must not be NULL");
    pthread_mutex_lock(&s->o.mu);
    int n = s->o.nmine;
    pthread_mutex_unlock(&s->o.mu);
    return n;
}

void xlock_pg_sem_close(xlock_pg_sem_t *s)
{
    if (s == NULL)
        return;
    xpg_obj *o = OBJ(s);
    /* The permits and the capacity marker go before the session ends: the server's release after
     * PQfinish is asynchronous, and an opener after close returns must not meet this object [XL-PG-13].
     */
    if (o->conn != NULL && o->pid == getpid()) {
        const char *vals[] = {o->channel};
        PGresult *res = NULL;
        if (o->nmine > 0)
            xlock_pg__one(o, "SELECT pg_advisory_unlock_all(), pg_notify($1, '')", 1, vals, "closing",
                          &res);
        else
            xlock_pg__one(o, "SELECT pg_advisory_unlock_all()", 0, NULL, "closing", &res);
        PQclear(res);
    }
    xlock_pg__obj_free(o);
}

XPG_COMMON_API(xlock_pg_sem_, xlock_pg_sem_t, sem_acquire)

long xlock_pg_sem_capacity(const xlock_pg_sem_t *s)
{
    return s ? s->o.capacity : 0;
}
