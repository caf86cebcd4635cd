/* Statements on the session, and waiting for them or for a NOTIFY: poll(2) on the session's socket
 * and the object's eventfd, so that a signal handler or xlock_pg_cancel ends the wait; an
 * interrupted statement is cancelled, repeatedly, until it returns [XL-PG-8]. */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long xlock_pg__now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

long long xlock_pg__deadline(long long start_ns, long long timeout_ms)
{
    return timeout_ms < 0 || timeout_ms > 9000000000000LL ? -1 : start_ns + timeout_ms * 1000000LL;
}

static unsigned long long gen(xpg_obj *o)
{
    return atomic_load(&o->cancel_gen);
}

static void drain_eventfd(xpg_obj *o)
{
    uint64_t v;
    while (read(o->efd, &v, sizeof v) > 0) {
    }
}

/* Sends the cancel request; its failure is not fatal: the next one follows in 50 ms. */
static void send_cancel(xpg_obj *o)
{
    char err[256];
    if (o->cancel != NULL)
        PQcancel(o->cancel, err, sizeof err);
}

/* Sends sql and reads its results (xlock_pg__await). */
int xlock_pg__run(xpg_obj *o, const char *sql, int n, const char *const *vals, int interruptible,
                  unsigned long long token, xpg_reply *r)
{
    r->res = NULL;
    r->stop = 0;
    PGconn *c = o->conn;
    if (c == NULL || PQstatus(c) != CONNECTION_OK ||
        !PQsendQueryParams(c, sql, n, NULL, vals, NULL, NULL, 0))
        return XPG_GONE;
    return xlock_pg__await(o, interruptible, token, r);
}

/* Reads the results of the statement just sent. interruptible: a signal handler (EINTR) or a cancel
 * of this object after `token` stops the wait: the statement is cancelled and drained, r->stop says
 * why, and r->res is still the statement's own outcome (the caller undoes a grant). Returns 0 with
 * r->res set (possibly an error result), or XPG_GONE if the connection failed. */
int xlock_pg__await(xpg_obj *o, int interruptible, unsigned long long token, xpg_reply *r)
{
    r->res = NULL;
    r->stop = 0;
    PGconn *c = o->conn;
    int sock = PQsocket(c);
    int flushing = 1, cancelling = 0;
    long long next_cancel = 0;
    for (;;) {
        if (flushing) {
            int f = PQflush(c);
            if (f < 0)
                return XPG_GONE;
            flushing = f > 0;
        }
        if (!flushing) {
            if (!PQconsumeInput(c))
                return XPG_GONE;
            if (!PQisBusy(c))
                break;
        }
        struct pollfd p[2] = {{sock, (short)(POLLIN | (flushing ? POLLOUT : 0)), 0},
                              {o->efd, POLLIN, 0}};
        int timeout = -1;
        if (cancelling) {
            long long left = next_cancel - xlock_pg__now_ns();
            timeout = left > 0 ? (int)((left + 999999) / 1000000) : 0;
        }
        int nfds = interruptible && !cancelling ? 2 : 1;
        if (interruptible && !cancelling && gen(o) != token) {
            r->stop = XLOCK_ECANCELED;
        } else {
            int got = poll(p, (nfds_t)nfds, timeout);
            if (got < 0 && errno != EINTR)
                return XPG_GONE;
            if (got < 0 && interruptible && !cancelling)
                r->stop = XLOCK_EINTR; /* a handler ran: XL-WAIT-9 */
            if (got > 0 && nfds == 2 && p[1].revents) {
                drain_eventfd(o);
                if (gen(o) != token)
                    r->stop = XLOCK_ECANCELED;
            }
        }
        if (r->stop && (!cancelling || xlock_pg__now_ns() >= next_cancel)) {
            cancelling = 1;
            send_cancel(o); /* repeated until the statement returns [XL-PG-8] */
            next_cancel = xlock_pg__now_ns() + XPG_CANCEL_REPEAT_MS * 1000000LL;
        }
    }
    /* One statement: one result, then NULL. Keep the first, drain the rest. */
    PGresult *res;
    while ((res = PQgetResult(c)) != NULL) {
        if (r->res == NULL)
            r->res = res;
        else
            PQclear(res);
    }
    return r->res != NULL ? 0 : XPG_GONE;
}

/* Waits until a NOTIFY arrives on the session, until_ns (CLOCK_MONOTONIC) passes, a signal handler
 * runs (XLOCK_EINTR) or the object is cancelled after token (XLOCK_ECANCELED). Notifications are
 * consumed. 0, or XPG_GONE if the connection failed (the caller's next try reconnects). */
int xlock_pg__wait_notify(xpg_obj *o, long long until_ns, unsigned long long token)
{
    PGconn *c = o->conn;
    if (c == NULL || PQstatus(c) != CONNECTION_OK)
        return XPG_GONE;
    for (;;) {
        if (!PQconsumeInput(c))
            return XPG_GONE;
        PGnotify *note;
        int rang = 0;
        while ((note = PQnotifies(c)) != NULL) {
            PQfreemem(note);
            rang = 1;
        }
        if (rang)
            return 0;
        if (gen(o) != token)
            return XLOCK_ECANCELED;
        long long left = until_ns - xlock_pg__now_ns();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{PQsocket(c), POLLIN, 0}, {o->efd, POLLIN, 0}};
        long long ms = (left + 999999) / 1000000;
        int got = poll(p, 2, ms > 3600000 ? 3600000 : (int)ms);
        if (got < 0 && errno == EINTR)
            return XLOCK_EINTR;
        if (got < 0)
            return XPG_GONE;
        if (got > 0 && p[1].revents)
            drain_eventfd(o);
        if (got == 0)
            return 0;
    }
}
