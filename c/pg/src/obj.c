/* Objects: creation, the per-handle serialisation of threads, cancellation, and the registry that
 * abandons inherited sessions in a forked child [XL-PG-16]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static xpg_obj *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Sessions abandoned in a forked child stay reachable here (never freed, never PQfinish'ed). */
static PGconn *volatile abandoned[256]; /* volatile: never read, but must stay */
static size_t nabandoned;

static void before_fork(void)
{
    pthread_mutex_lock(&registry_mu);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&registry_mu);
}

/* In the child: every inherited session is abandoned without a word to the server. Its socket
 * descriptor is pointed at /dev/null, so that nothing libpq might still write reaches the server
 * or a file that reuses the number; the PGconn is leaked, never PQfinish'ed [XL-PG-16]. The
 * objects hold nothing [XL-HOLD-7]. */
static void after_fork_child(void)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (xpg_obj *o = registry; o != NULL; o = o->next) {
        if (o->conn != NULL && null >= 0 && PQsocket(o->conn) >= 0)
            dup3(null, PQsocket(o->conn), O_CLOEXEC);
        if (o->conn != NULL && nabandoned < sizeof abandoned / sizeof abandoned[0])
            abandoned[nabandoned++] = o->conn;
        if (o->cancel != NULL)
            PQfreeCancel(o->cancel); /* local memory only */
        o->conn = NULL;
        o->cancel = NULL;
        o->backend_pid = 0;
        o->held = 0;
        o->nmine = 0;
        o->busy = 0;
        pthread_mutex_init(&o->mu, NULL);
        pthread_cond_init(&o->cv, NULL);
    }
    if (null >= 0)
        close(null);
    pthread_mutex_init(&registry_mu, NULL);
}

static void install_atfork(void)
{
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int xlock_pg__obj_new(xpg_obj **out, int is_sem, const char *name, size_t len, const xlock_options *opts)
{
    if (out == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the out-parameter must not be NULL");
    *out = NULL;
    if (name == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the name must not be NULL");
    int rc = xlock_validate_name(name, len); /* names first [XL-NAME-6] */
    if (rc != 0)
        return xlock_pg__fail(rc, NULL, "%s", xlock_last_message());
    if (opts != NULL && opts->version != XLOCK_OPTIONS_VERSION)
        return xlock_pg__fail(XLOCK_EINVAL, NULL,
                              "options.version %u is not %d (use xlock_options_init)", opts->version,
                              XLOCK_OPTIONS_VERSION);
    const char *url = opts && opts->namespace_path ? opts->namespace_path : getenv("XLOCK_NAMESPACE");
    if (!xlock_pg_is_url(url))
        return xlock_pg__fail(
            XLOCK_EINVAL, NULL,
            "the namespace is not a postgresql:// or postgres:// URI; libxlock_pg "
            "serves PostgreSQL namespaces only, use xlock_open for a directory [XL-PG-1]");
    xpg_obj *o = calloc(1, sizeof *o);
    if (o == NULL)
        return xlock_pg__fail(XLOCK_EOS, NULL, "out of memory");
    o->is_sem = is_sem;
    o->efd = -1;
    rc = xlock_pg__parse(&o->ns, url);
    if (rc != 0) {
        free(o);
        return rc;
    }
    o->name = malloc(len + 1);
    memcpy(o->name, name, len);
    o->name[len] = '\0';
    o->name_len = len;
    o->shared = opts ? opts->shared != 0 : 0;
    o->reentrant = opts ? opts->reentrant != 0 : 0;
    o->key = xlock_pg__key(is_sem ? 's' : 'l', o->ns.label, name, len, 0);
    o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    if (o->efd < 0) {
        int e = errno;
        xlock_pg__obj_free(o);
        errno = e;
        return xlock_pg__fail(XLOCK_EOS, NULL, "eventfd failed");
    }
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&registry_mu);
    o->next = registry;
    if (registry)
        registry->prev = o;
    registry = o;
    pthread_mutex_unlock(&registry_mu);
    *out = o;
    return 0;
}

void xlock_pg__obj_free(xpg_obj *o)
{
    pthread_mutex_lock(&registry_mu);
    if (o->prev)
        o->prev->next = o->next;
    else if (registry == o)
        registry = o->next;
    if (o->next)
        o->next->prev = o->prev;
    pthread_mutex_unlock(&registry_mu);
    xlock_pg__disconnect(o);
    if (o->efd >= 0)
        close(o->efd);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    xlock_pg__ns_free(&o->ns);
    free(o->name);
    free(o->slot_keys);
    free(o->mine);
    free(o->database);
    free(o);
}

unsigned long long xlock_pg__token(xpg_obj *o)
{
    return atomic_load(&o->cancel_gen);
}

/* Takes the session for this thread: waits (until deadline_ns, < 0 for ever) while another
 * thread uses it or, for a lock, holds the object. try_only: never waits (XLOCK_EWOULDBLOCK).
 * XLOCK_ECANCELED if the object is cancelled after token. */
int xlock_pg__enter(xpg_obj *o, int try_only, long long deadline_ns, unsigned long long token)
{
    int rc = 0;
    pthread_mutex_lock(&o->mu);
    while (o->busy || (!o->is_sem && o->held && !pthread_equal(o->holder, pthread_self()))) {
        if (try_only) {
            rc = XLOCK_EWOULDBLOCK;
            break;
        }
        if (xlock_pg__token(o) != token) {
            rc = XLOCK_ECANCELED;
            break;
        }
        long long now = xlock_pg__now_ns();
        long long until =
            deadline_ns < 0 || deadline_ns - now > 50000000LL ? now + 50000000LL : deadline_ns;
        if (deadline_ns >= 0 && now >= deadline_ns) {
            rc = XLOCK_ETIMEDOUT;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long left = until - now;
        ts.tv_sec += left / 1000000000LL;
        ts.tv_nsec += left % 1000000000LL;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->cv, &o->mu, &ts); /* re-checks cancel at least every 50 ms */
    }
    if (rc == 0)
        o->busy = 1;
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void xlock_pg__leave(xpg_obj *o)
{
    pthread_mutex_lock(&o->mu);
    o->busy = 0;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

int xlock_pg__cancel(xpg_obj *o)
{
    if (o == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "the object must not be NULL");
    atomic_fetch_add(&o->cancel_gen, 1);
    uint64_t one = 1;
    if (write(o->efd, &one, sizeof one) < 0) {
        /* the counter is full: a wake-up is pending anyway */
    }
    pthread_mutex_lock(&o->mu);
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return 0;
}
