/* Lock objects: xlock_t [§6-§9, XL-HOLD-1..XL-HOLD-10]. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

struct xlock {
    xlock__node node; /* first: the fork registry casts back */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled when the object stops being busy */
    xlock__ns ns;
    xlock__file file;
    xlock__bell *bell; /* the namespace's bell, owned by the namespace [XL-BELL-2] */
    unsigned word;     /* the name's bell word [XL-SEM-7] */
    int op;            /* LOCK_EX or LOCK_SH */
    int reentrant, cancellable;
    /* state, under mu */
    int held;            /* this object holds the file lock */
    int acquiring;       /* a thread is in a file-level wait outside mu */
    unsigned long depth; /* reentrant count */
    pthread_t owner;     /* the holding thread */
    int waiters;         /* threads waiting on cv */
    atomic_ullong cancel_gen;
    char *name, *path, *bell_path;
    char fname[XLOCK_FILE_NAME_SIZE];
    char what[XL_WHAT_SIZE];
    int mu_ready; /* mu and cv initialised (for the cleanup of a failed open) */
};

static void init_cv(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

/* In the child of fork: close the inherited descriptor without flock, forget the hold
 * [XL-HOLD-7, XL-HOLD-8]. Threads that waited in the parent do not exist here. */
static void lock_child(xlock__node *node)
{
    xlock_t *l = (xlock_t *)node;
    xlock__file_close(&l->file);
    l->held = 0;
    l->acquiring = 0;
    l->depth = 0;
    l->waiters = 0;
    init_cv(&l->cv);
}

/* Frees a lock object in any state of construction (the single cleanup path of xlock_open). */
static void lock_free(xlock_t *l)
{
    xlock__file_close(&l->file);
    xlock__ns_close(&l->ns);
    if (l->mu_ready) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    free(l->bell_path);
    free(l->path);
    free(l->name);
    free(l);
}

int xlock_open_n(xlock_t **out, const char *name, size_t len, const xlock_options *opts)
{
    if (out == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_open: out is NULL");
    *out = NULL;
    int rc = xlock__check_name(name, len); /* the name first [XL-NAME-6] */
    if (rc != 0)
        return rc;
    xlock_t *l = calloc(1, sizeof *l);
    if (l == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "xlock_open: out of memory");
    l->file.fd = -1;
    l->ns.fd = -1;
    if ((l->name = xlock__strndup(name, len)) == NULL) {
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "xlock_open: out of memory");
        goto fail;
    }
    xlock__what(l->what, sizeof l->what, "lock", l->name);
    if ((rc = xlock__check_options(opts, 1, l->what)) != 0 ||
        (rc = xlock__ns_open(&l->ns, opts, l->what)) != 0)
        goto fail;
    char enc[XL_ENC_MAX + 1];
    xlock__enc(enc, name, len);
    xlock__lock_fname(l->fname, enc);
    l->op = opts != NULL && opts->shared ? LOCK_SH : LOCK_EX;
    l->reentrant = opts != NULL && opts->reentrant;
    l->cancellable = opts != NULL && opts->cancellable;
    l->word = xlock__bell_word(XLOCK_KIND_LOCK, name, len);
    l->path = xlock__ns_join(&l->ns, l->fname);
    l->bell_path = xlock__ns_join(&l->ns, XL_BELL_FILE);
    if (l->path == NULL || l->bell_path == NULL) {
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "xlock_open: out of memory");
        goto fail;
    }
    if ((rc = xlock__file_open(&l->file, &l->ns, l->fname, l->what)) != 0)
        goto fail;
    l->bell = xlock__ns_bell(&l->ns, 1); /* never fails the open [XL-BELL-8] */
    pthread_mutex_init(&l->mu, NULL);
    init_cv(&l->cv);
    l->mu_ready = 1;
    l->node.mu = &l->mu;
    l->node.child = lock_child;
    if ((rc = xlock__register(&l->node)) != 0)
        goto fail;
    *out = l;
    return 0;
fail:
    lock_free(l);
    return rc;
}

int xlock_open(xlock_t **out, const char *name, const xlock_options *opts)
{
    if (name == NULL) {
        if (out != NULL)
            *out = NULL;
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_open: name is NULL");
    }
    return xlock_open_n(out, name, strlen(name), opts);
}

/* flock(LOCK_UN) and the ring of the bell word [XL-LOCK-9, XL-BELL-6]; under mu. */
static void unlock_file(xlock_t *l)
{
    flock(l->file.fd, LOCK_UN);
    l->held = 0;
    l->depth = 0;
    xlock__bell_ring(l->bell, l->word);
    if (l->waiters > 0)
        pthread_cond_signal(&l->cv);
}

void xlock_close(xlock_t *l)
{
    if (l == NULL)
        return;
    xlock__unregister(&l->node);
    pthread_mutex_lock(&l->mu);
    if (l->held) /* [XL-HOLD-10] */
        unlock_file(l);
    pthread_mutex_unlock(&l->mu);
    lock_free(l);
}

static int try_file(void *ctx)
{
    xlock_t *l = ctx;
    return xlock__file_try(&l->file, &l->ns, l->fname, l->op, l->what);
}

static int cancelled(xlock_t *l)
{
    return xlock__fail(XLOCK_ECANCELED, 0,
                       "%s (%s): the wait was cancelled; nothing is held [XL-WAIT-10]", l->what,
                       l->path);
}

static int timed_out(xlock_t *l, long long timeout_ms)
{
    return xlock__fail(XLOCK_ETIMEDOUT, 0, "%s (%s) not acquired within %lld ms", l->what, l->path,
                       timeout_ms);
}

static int would_block(xlock_t *l)
{
    return xlock__fail(XLOCK_EWOULDBLOCK, 0,
                       "%s (%s) is held by another holder; try again later, "
                       "or find the holder with 'xlock status'",
                       l->what, l->path);
}

static int already(xlock_t *l)
{
    return xlock__fail(XLOCK_EALREADY, 0,
                       "%s (%s) is already held by this thread through this object; release it first "
                       "or open the lock reentrant [XL-HOLD-3]",
                       l->what, l->path);
}

static void take(xlock_t *l)
{
    l->held = 1;
    l->depth = 1;
    l->owner = pthread_self();
}

/* The hold check of [XL-HOLD-3, XL-HOLD-4] under mu: 1 if handled (rc set), 0 to continue. */
static int same_thread(xlock_t *l, int *rc)
{
    if (!l->held || !pthread_equal(l->owner, pthread_self()))
        return 0;
    if (l->reentrant) {
        l->depth++;
        *rc = 0;
    } else {
        *rc = already(l);
    }
    return 1;
}

int xlock_try_acquire(xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_try_acquire: the lock is NULL");
    int rc;
    pthread_mutex_lock(&l->mu);
    if (same_thread(l, &rc)) {
    } else if (l->held || l->acquiring) {
        rc = would_block(l); /* busy through this very object, in another thread [XL-HOLD-2] */
    } else {
        rc = xlock__file_try(&l->file, &l->ns, l->fname, l->op, l->what);
        if (rc == 0)
            take(l);
        else if (rc == XLOCK_EWOULDBLOCK)
            rc = would_block(l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int acquire(xlock_t *l, long long timeout_ms, unsigned long long token)
{
    int timed = timeout_ms >= 0;
    struct timespec start = xlock__now(), deadline;
    if (timed)
        deadline = xlock__deadline(&start, timeout_ms);
    int rc;
    pthread_mutex_lock(&l->mu);
    if (same_thread(l, &rc)) {
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    /* Another thread holds or is acquiring this object: wait for it here [XL-HOLD-2]. */
    l->waiters++;
    while (l->held || l->acquiring) {
        if (atomic_load(&l->cancel_gen) != token) {
            l->waiters--;
            pthread_mutex_unlock(&l->mu);
            return cancelled(l);
        }
        int r = timed ? pthread_cond_timedwait(&l->cv, &l->mu, &deadline)
                      : pthread_cond_wait(&l->cv, &l->mu);
        if (r == ETIMEDOUT && (l->held || l->acquiring)) {
            l->waiters--;
            pthread_mutex_unlock(&l->mu);
            return timed_out(l, timeout_ms);
        }
    }
    l->waiters--;
    if (atomic_load(&l->cancel_gen) != token) {
        pthread_mutex_unlock(&l->mu);
        return cancelled(l);
    }
    /* The fast path: one non-blocking attempt under the mutex. */
    rc = xlock__file_try(&l->file, &l->ns, l->fname, l->op, l->what);
    if (rc == 0)
        take(l);
    if (rc != XLOCK_EWOULDBLOCK) {
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    if (timed && timeout_ms == 0) { /* one attempt, TIMEOUT not WOULD_BLOCK [XL-WAIT-3] */
        pthread_mutex_unlock(&l->mu);
        return timed_out(l, timeout_ms);
    }
    l->acquiring = 1;
    pthread_mutex_unlock(&l->mu);

    if (timed || l->cancellable) {
        rc = xlock__wait_loop(l->bell, l->word, &start, timed ? &deadline : NULL, &l->cancel_gen, token,
                              try_file, l);
        if (rc == XLOCK_ETIMEDOUT)
            rc = timed_out(l, timeout_ms);
        else if (rc == XLOCK_ECANCELED)
            rc = cancelled(l);
        else if (rc == XLOCK_EINTR)
            rc = xlock__fail(XLOCK_EINTR, EINTR,
                             "%s (%s): the wait was interrupted by a signal; nothing is held "
                             "[XL-WAIT-9]",
                             l->what, l->path);
    } else {
        rc = xlock__file_block(&l->file, &l->ns, l->fname, l->op, l->what);
    }

    pthread_mutex_lock(&l->mu);
    l->acquiring = 0;
    if (rc == 0)
        take(l);
    else if (l->waiters > 0)
        pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int xlock_acquire(xlock_t *l, long long timeout_ms)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_acquire: the lock is NULL");
    return acquire(l, timeout_ms, atomic_load(&l->cancel_gen));
}

int xlock_acquire_token(xlock_t *l, long long timeout_ms, unsigned long long token)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_acquire_token: the lock is NULL");
    return acquire(l, timeout_ms, token);
}

int xlock_release(xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_release: the lock is NULL");
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    if (!l->held) { /* [XL-HOLD-6, XL-HOLD-7] */
        rc = xlock__fail(XLOCK_ENOTHELD, 0, "%s (%s) is not held by this object [XL-HOLD-6]", l->what,
                         l->path);
    } else if (l->reentrant && !pthread_equal(l->owner, pthread_self())) { /* [XL-HOLD-4] */
        rc = xlock__fail(XLOCK_ENOTHELD, 0,
                         "%s (%s) is held by another thread; a reentrant lock is released by the "
                         "thread that holds it [XL-HOLD-4]",
                         l->what, l->path);
    } else if (--l->depth == 0) {
        unlock_file(l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int xlock_locked(xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_locked: the lock is NULL");
    pthread_mutex_lock(&l->mu);
    int held = l->held;
    pthread_mutex_unlock(&l->mu);
    return held;
}

int xlock_cancel(xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_cancel: the lock is NULL");
    atomic_fetch_add(&l->cancel_gen, 1);
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv); /* in-process waiters */
    pthread_mutex_unlock(&l->mu);
    xlock__bell_wake(l->bell, l->word); /* a bell waiter; else its next safety poll sees the flag */
    return 0;
}

unsigned long long xlock_cancel_token(xlock_t *l)
{
    return l == NULL ? 0 : atomic_load(&l->cancel_gen);
}

const char *xlock_name(const xlock_t *l)
{
    return l ? l->name : NULL;
}
const char *xlock_path(const xlock_t *l)
{
    return l ? l->path : NULL;
}
const char *xlock_namespace(const xlock_t *l)
{
    return l ? l->ns.path : NULL;
}
const char *xlock_semaphore(const xlock_t *l)
{
    (void)l;
    return NULL;
} /* deprecated */
const char *xlock_bell(const xlock_t *l)
{
    return l ? l->bell_path : NULL;
}
const char *xlock_bell_status(const xlock_t *l)
{
    return l ? xlock__bell_status(l->bell) : NULL;
}

int xlock_lock_bell_word(const xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_lock_bell_word: the lock is NULL");
    return (int)l->word;
}

int xlock_sharing(const xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sharing: the lock is NULL");
    return l->ns.sharing;
}

int xlock_namespace_id(unsigned long long *dev, unsigned long long *ino, const xlock_t *l)
{
    if (dev == NULL || ino == NULL || l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_namespace_id: a NULL pointer");
    *dev = l->ns.dev;
    *ino = l->ns.ino;
    return 0;
}

int xlock_is_shared(const xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_is_shared: the lock is NULL");
    return l->op == LOCK_SH;
}

int xlock_is_reentrant(const xlock_t *l)
{
    if (l == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_is_reentrant: the lock is NULL");
    return l->reentrant;
}
