/* Crash-safe counting semaphores: xlock_sem_t [§10]. */
#include "capacity.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

/* Slot descriptors kept open while idle; beyond these, a slot's descriptor is closed after a
 * failed try, so a large capacity does not exhaust the descriptor table. The remembered slot's
 * descriptor stays open too. */
#define IDLE_SLOT_FDS 64

struct xlock_sem {
    xlock__node node; /* first: the fork registry casts back */
    pthread_mutex_t mu;
    xlock__ns ns;
    xlock__bell *bell; /* the namespace's bell, owned by the namespace [XL-BELL-2] */
    unsigned word;     /* the name's bell word, kind 's' [XL-SEM-7] */
    long capacity;
    xlock__file *slots;  /* capacity entries */
    unsigned char *mine; /* mine[i]: this object holds slot i */
    int *stack;          /* held slots, most recent last [XL-CSEM-6] */
    int nheld;
    int hint; /* the slot a round starts at: the last one acquired or released [XL-CSEM-5] */
    atomic_ullong cancel_gen;
    char *name, *path, *bell_path;
    char enc[XL_ENC_MAX + 1];
    char what[XL_WHAT_SIZE];
    int mu_ready; /* mu initialised (for the cleanup of a failed open) */
};

/* In the child of fork: close every inherited slot descriptor without flock, forget the permits
 * [XL-CSEM-6, XL-HOLD-7, XL-HOLD-8]. */
static void sem_child(xlock__node *node)
{
    xlock_sem_t *s = (xlock_sem_t *)node;
    for (long i = 0; i < s->capacity; i++) {
        xlock__file_close(&s->slots[i]);
        s->mine[i] = 0;
    }
    s->nheld = 0;
}

/* Frees an object in any state of construction (the single cleanup path of xlock_sem_open). */
static void sem_free(xlock_sem_t *s)
{
    if (s->slots != NULL)
        for (long i = 0; i < s->capacity; i++)
            xlock__file_close(&s->slots[i]);
    xlock__ns_close(&s->ns);
    if (s->mu_ready)
        pthread_mutex_destroy(&s->mu);
    free(s->slots);
    free(s->mine);
    free(s->stack);
    free(s->bell_path);
    free(s->path);
    free(s->name);
    free(s);
}

static int check_capacity(long capacity, const char *what)
{
    if (capacity < 1 || capacity > XLOCK_CAPACITY_MAX)
        return xlock__fail(XLOCK_EINVAL, 0,
                           "%s: capacity %ld is out of range; it must be 1 to 1000 [XL-CSEM-1]", what,
                           capacity);
    return 0;
}

int xlock_sem_open_n(xlock_sem_t **out, const char *name, size_t len, long capacity,
                     const xlock_options *opts)
{
    if (out == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_open: out is NULL");
    *out = NULL;
    int rc = xlock__check_name(name, len); /* name, capacity, options, namespace [XL-NAME-6] */
    if (rc != 0)
        return rc;
    xlock_sem_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "xlock_sem_open: out of memory");
    s->ns.fd = -1;
    if ((s->name = xlock__strndup(name, len)) == NULL) {
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "xlock_sem_open: out of memory");
        goto fail;
    }
    xlock__what(s->what, sizeof s->what, "semaphore", s->name);
    if ((rc = check_capacity(capacity, s->what)) != 0 ||
        (rc = xlock__check_options(opts, 0, s->what)) != 0 ||
        (rc = xlock__ns_open(&s->ns, opts, s->what)) != 0)
        goto fail;
    xlock__enc(s->enc, name, len);
    s->word = xlock__bell_word(XLOCK_KIND_SEMAPHORE, name, len);
    char fname[XLOCK_FILE_NAME_SIZE];
    xlock__capacity_fname(fname, s->enc);
    s->path = xlock__ns_join(&s->ns, fname);
    s->bell_path = xlock__ns_join(&s->ns, XL_BELL_FILE);
    s->slots = malloc((size_t)capacity * sizeof *s->slots);
    s->mine = calloc((size_t)capacity, 1);
    s->stack = malloc((size_t)capacity * sizeof *s->stack);
    if (s->path == NULL || s->bell_path == NULL || s->slots == NULL || s->mine == NULL ||
        s->stack == NULL) {
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "xlock_sem_open: out of memory");
        goto fail;
    }
    s->capacity = capacity;
    for (long i = 0; i < capacity; i++)
        s->slots[i].fd = -1;
    if ((rc = xlock__capacity_open(&s->ns, s->enc, capacity, s->what)) != 0)
        goto fail;
    s->bell = xlock__ns_bell(&s->ns, 1); /* never fails the open [XL-BELL-8] */
    pthread_mutex_init(&s->mu, NULL);
    s->mu_ready = 1;
    s->node.mu = &s->mu;
    s->node.child = sem_child;
    if ((rc = xlock__register(&s->node)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    sem_free(s);
    return rc;
}

int xlock_sem_open(xlock_sem_t **out, const char *name, long capacity, const xlock_options *opts)
{
    if (name == NULL) {
        if (out != NULL)
            *out = NULL;
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_open: name is NULL");
    }
    return xlock_sem_open_n(out, name, strlen(name), capacity, opts);
}

/* Slot i's descriptor, not held, is kept open only below IDLE_SLOT_FDS or as the hint; under mu. */
static void idle_slot(xlock_sem_t *s, int i)
{
    if (i >= IDLE_SLOT_FDS && i != s->hint && !s->mine[i])
        xlock__file_close(&s->slots[i]);
}

/* The next round starts at slot i; under mu. */
static void remember(xlock_sem_t *s, int i)
{
    int old = s->hint;
    s->hint = i;
    idle_slot(s, old);
}

/* Returns the most recent permit; under mu. The freed slot is where the next round starts, so an
 * acquire+release costs the same whatever the number of permits held elsewhere. */
static void release_top(xlock_sem_t *s)
{
    int i = s->stack[--s->nheld];
    flock(s->slots[i].fd, LOCK_UN);
    s->mine[i] = 0;
    remember(s, i);
    xlock__bell_ring(s->bell, s->word); /* [XL-BELL-6] */
}

void xlock_sem_close(xlock_sem_t *s)
{
    if (s == NULL)
        return;
    xlock__unregister(&s->node);
    pthread_mutex_lock(&s->mu);
    while (s->nheld > 0)
        release_top(s);
    pthread_mutex_unlock(&s->mu);
    sem_free(s);
}

/* One round over the slots, each not held by this object tried once, starting at the remembered
 * slot [XL-CSEM-5]; under mu. Slot index or an error. */
static int try_slots(xlock_sem_t *s)
{
    char fname[XLOCK_FILE_NAME_SIZE];
    int n = (int)s->capacity;
    for (int k = 0, i = s->hint; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        if (s->mine[i])
            continue; /* our own flock would be granted again [XL-CSEM-5] */
        xlock__slot_fname(fname, s->enc, i);
        int rc = xlock__file_try(&s->slots[i], &s->ns, fname, LOCK_EX, s->what);
        if (rc == 0) {
            s->mine[i] = 1;
            s->stack[s->nheld++] = i;
            remember(s, i);
            return i;
        }
        if (rc != XLOCK_EWOULDBLOCK)
            return rc;
        idle_slot(s, i);
    }
    return XLOCK_EWOULDBLOCK;
}

static int try_locked(void *ctx)
{
    xlock_sem_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    int rc = try_slots(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int xlock_sem_try_acquire(xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_try_acquire: the semaphore is NULL");
    int rc = try_locked(s);
    if (rc == XLOCK_EWOULDBLOCK)
        rc = xlock__fail(XLOCK_EWOULDBLOCK, 0, "%s (%s): all %ld permits are held", s->what, s->path,
                         s->capacity);
    return rc;
}

static int sem_acquire(xlock_sem_t *s, long long timeout_ms, unsigned long long token)
{
    struct timespec start = xlock__now(), deadline;
    if (timeout_ms >= 0)
        deadline = xlock__deadline(&start, timeout_ms);
    /* Always the bell loop, with an infinite deadline when untimed [XL-WAIT-11]. Its first try
     * comes before any bell access (the fast path). */
    int rc = atomic_load(&s->cancel_gen) != token ? XLOCK_ECANCELED : try_locked(s);
    if (rc == XLOCK_EWOULDBLOCK && timeout_ms == 0)
        rc = XLOCK_ETIMEDOUT; /* one attempt [XL-WAIT-3] */
    else if (rc == XLOCK_EWOULDBLOCK)
        rc = xlock__wait_loop(s->bell, s->word, &start, timeout_ms >= 0 ? &deadline : NULL,
                              &s->cancel_gen, token, try_locked, s);
    if (rc == XLOCK_ETIMEDOUT)
        return xlock__fail(XLOCK_ETIMEDOUT, 0, "%s (%s): no permit acquired within %lld ms", s->what,
                           s->path, timeout_ms);
    if (rc == XLOCK_ECANCELED)
        return xlock__fail(XLOCK_ECANCELED, 0,
                           "%s (%s): the wait was cancelled; nothing is held [XL-WAIT-10]", s->what,
                           s->path);
    if (rc == XLOCK_EINTR)
        return xlock__fail(XLOCK_EINTR, EINTR,
                           "%s (%s): the wait was interrupted by a signal; nothing is held "
                           "[XL-WAIT-9]",
                           s->what, s->path);
    return rc;
}

int xlock_sem_acquire(xlock_sem_t *s, long long timeout_ms)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_acquire: the semaphore is NULL");
    return sem_acquire(s, timeout_ms, atomic_load(&s->cancel_gen));
}

int xlock_sem_acquire_token(xlock_sem_t *s, long long timeout_ms, unsigned long long token)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_acquire_token: the semaphore is NULL");
    return sem_acquire(s, timeout_ms, token);
}

int xlock_sem_release(xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_release: the semaphore is NULL");
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->nheld == 0)
        rc = xlock__fail(XLOCK_ENOTHELD, 0, "%s (%s): this object holds no permit [XL-CSEM-6]", s->what,
                         s->path);
    else
        release_top(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int xlock_sem_held(xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_held: the semaphore is NULL");
    pthread_mutex_lock(&s->mu);
    int n = s->nheld;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int xlock_sem_cancel(xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_cancel: the semaphore is NULL");
    atomic_fetch_add(&s->cancel_gen, 1);
    xlock__bell_wake(s->bell, s->word);
    return 0;
}

unsigned long long xlock_sem_cancel_token(xlock_sem_t *s)
{
    return s == NULL ? 0 : atomic_load(&s->cancel_gen);
}

const char *xlock_sem_name(const xlock_sem_t *s)
{
    return s ? s->name : NULL;
}
const char *xlock_sem_path(const xlock_sem_t *s)
{
    return s ? s->path : NULL;
}
const char *xlock_sem_namespace(const xlock_sem_t *s)
{
    return s ? s->ns.path : NULL;
}
const char *xlock_sem_semaphore(const xlock_sem_t *s)
{
    (void)s;
    return NULL;
} /* deprecated */
const char *xlock_sem_bell(const xlock_sem_t *s)
{
    return s ? s->bell_path : NULL;
}

const char *xlock_sem_bell_status(const xlock_sem_t *s)
{
    return s ? xlock__bell_status(s->bell) : NULL;
}

int xlock_sem_bell_word(const xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_bell_word: the semaphore is NULL");
    return (int)s->word;
}

int xlock_sem_sharing(const xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_sharing: the semaphore is NULL");
    return s->ns.sharing;
}

int xlock_sem_namespace_id(unsigned long long *dev, unsigned long long *ino, const xlock_sem_t *s)
{
    if (dev == NULL || ino == NULL || s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_namespace_id: a NULL pointer");
    *dev = s->ns.dev;
    *ino = s->ns.ino;
    return 0;
}

long xlock_sem_capacity(const xlock_sem_t *s)
{
    if (s == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sem_capacity: the semaphore is NULL");
    return s->capacity;
}
