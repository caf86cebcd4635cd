/* Raw POSIX named semaphores: xlock_psem_t [§11]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cancellable waits are sem_clockwait slices of at most this many milliseconds. */
#define CANCEL_SLICE_MS 16

struct xlock_psem {
    xlock__node node; /* first: the fork registry casts back */
    pthread_mutex_t mu;
    sem_t *sem; /* our own checked mapping of /dev/shm/sem.NAME [XL-PSEM-3] */
    xlock__ns ns;
    int cancellable;
    int held; /* permits this object holds [XL-PSEM-4]; under mu */
    int mu_ready;
    atomic_ullong cancel_gen;
    char *name;
    char semname[XLOCK_SEM_NAME_SIZE];
    char what[XL_WHAT_SIZE];
};

/* In the child of fork: the permits belong to the parent's object [XL-HOLD-11]. */
static void psem_child(xlock__node *node)
{
    ((xlock_psem_t *)node)->held = 0;
}

static int fill_sem(int fd, const void *arg)
{
    /* The byte image of a sem_t made by sem_init(&s, 1, value), as glibc's sem_open writes it
     * [XL-PSEM-2]. */
    sem_t s;
    memset(&s, 0, sizeof s);
    if (sem_init(&s, 1, *(const unsigned *)arg) != 0)
        return -1;
    return write(fd, &s, sizeof s) == (ssize_t)sizeof s ? 0 : -1;
}

static void psem_tmp(char *out, const void *semname)
{
    xlock__psem_tmp_fname(out, semname);
}

/* Checks the opened semaphore file on its descriptor and maps it [XL-PSEM-3]. */
static int check_and_map(xlock_psem_t *p, int fd, const struct stat *st, const char *path)
{
    uid_t euid = geteuid();
    char who[XL_OWNER_SIZE];
    if (st->st_size < (off_t)sizeof(sem_t))
        return xlock__fail(XLOCK_EINSECURE, 0,
                           "%s: %s is %lld bytes, shorter than a sem_t (%zu), so it is not a POSIX "
                           "semaphore; it belongs to %s, who should remove it (xlock_psem_unlink) "
                           "[XL-PSEM-3]",
                           p->what, path, (long long)st->st_size, sizeof(sem_t),
                           xlock__owner(who, sizeof who, st->st_uid));
    if (st->st_uid != euid && st->st_uid != 0 && st->st_uid != p->ns.uid &&
        p->ns.sharing == XLOCK_SHARING_PRIVATE)
        return xlock__fail(XLOCK_EINSECURE, 0,
                           "%s: the POSIX semaphore %s (%s) belongs to %s, who is not you, root or "
                           "the owner of namespace %s; ask them to remove it (xlock_psem_unlink), "
                           "or use a shared namespace [XL-PSEM-3]",
                           p->what, p->semname, path, xlock__owner(who, sizeof who, st->st_uid),
                           p->ns.path);
    if (st->st_uid == euid && (st->st_mode & 07777) != p->ns.fmode && fchmod(fd, p->ns.fmode) != 0)
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot chmod %s: %s", p->what, path, strerror(errno));
    void *map = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot map %s: %s", p->what, path, strerror(errno));
    p->sem = map;
    return 0;
}

/* Opens or creates /dev/shm/sem.NAME ourselves, never with sem_open, which maps whatever file it
 * finds [XL-PSEM-2, XL-PSEM-3]. */
static int open_sem(xlock_psem_t *p, unsigned value)
{
    char fname[XLOCK_FILE_NAME_SIZE], path[XLOCK_FILE_NAME_SIZE + sizeof XL_SHM_DIR];
    xlock__ns shm = {
        .fd = -1, .path = (char *)XL_SHM_DIR, .fmode = p->ns.fmode, .sharing = p->ns.sharing};
    struct stat st;
    int fd = -1, rc;
    xlock__psem_fname(fname, p->semname);
    snprintf(path, sizeof path, XL_SHM_DIR "/%s", fname);
    shm.fd = open(XL_SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (shm.fd < 0 || fstat(shm.fd, &st) != 0) {
        rc = xlock__fail(XLOCK_EOS, errno,
                         "%s: cannot open " XL_SHM_DIR ", where POSIX semaphores "
                         "live: %s",
                         p->what, strerror(errno));
        goto done;
    }
    shm.uid = st.st_uid;
    rc = XL_ABSENT;
    for (int round = 0; round < XL_MAX_ROUNDS && rc == XL_ABSENT; round++) {
        rc = xlock__open_file(&fd, &st, &shm, fname, O_RDWR, 0, p->what);
        if (rc == XL_ABSENT) {
            rc = xlock__create_file(&shm, fname, psem_tmp, p->semname, p->ns.fmode, fill_sem, &value,
                                    p->what);
            if (rc >= 0) /* created, or another creator won: open it */
                rc = XL_ABSENT;
        }
    }
    if (rc == XL_ABSENT)
        rc = xlock__fail(XLOCK_EOS, EAGAIN,
                         "%s: %s was created and removed %d times in a row while opening it: "
                         "another process keeps creating and removing it [XL-LOCK-12]",
                         p->what, path, XL_MAX_ROUNDS);
    if (rc == 0)
        rc = check_and_map(p, fd, &st, path);
done:
    if (fd >= 0)
        close(fd);
    if (shm.fd >= 0)
        close(shm.fd);
    return rc;
}

static void psem_free(xlock_psem_t *p)
{
    if (p->sem != NULL)
        munmap(p->sem, sizeof(sem_t));
    xlock__ns_close(&p->ns);
    if (p->mu_ready)
        pthread_mutex_destroy(&p->mu);
    free(p->name);
    free(p);
}

int xlock_psem_open_n(xlock_psem_t **out, const char *name, size_t len, long value,
                      const xlock_options *opts)
{
    if (out == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_open: out is NULL");
    *out = NULL;
    int rc = xlock__check_name(name, len); /* name, value, options, namespace [XL-NAME-6] */
    if (rc != 0)
        return rc;
    xlock_psem_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "xlock_psem_open: out of memory");
    p->ns.fd = -1;
    if ((p->name = xlock__strndup(name, len)) == NULL) {
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "xlock_psem_open: out of memory");
        goto fail;
    }
    xlock__what(p->what, sizeof p->what, "POSIX semaphore", p->name);
    if (value < 0 || value > SEM_VALUE_MAX) { /* the value as given, never a wrapped one */
        rc = xlock__fail(XLOCK_EINVAL, 0,
                         "%s: initial value %ld is out of range; it must be 0 to %d [XL-PSEM-2]",
                         p->what, value, SEM_VALUE_MAX);
        goto fail;
    }
    if ((rc = xlock__check_options(opts, 0, p->what)) != 0 ||
        (rc = xlock__ns_open(&p->ns, opts, p->what)) != 0)
        goto fail;
    xlock__sem_name(p->semname, XLOCK_KIND_POSIX_SEMAPHORE, p->ns.dev, p->ns.ino, name, len);
    if ((rc = open_sem(p, (unsigned)value)) != 0)
        goto fail;
    p->cancellable = opts != NULL && opts->cancellable;
    pthread_mutex_init(&p->mu, NULL);
    p->mu_ready = 1;
    p->node.mu = &p->mu;
    p->node.child = psem_child;
    if ((rc = xlock__register(&p->node)) != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    psem_free(p);
    return rc;
}

int xlock_psem_open(xlock_psem_t **out, const char *name, long value, const xlock_options *opts)
{
    if (name == NULL) {
        if (out != NULL)
            *out = NULL;
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_open: name is NULL");
    }
    return xlock_psem_open_n(out, name, strlen(name), value, opts);
}

void xlock_psem_close(xlock_psem_t *p)
{
    if (p == NULL)
        return;
    xlock__unregister(&p->node);
    pthread_mutex_lock(&p->mu);
    while (p->held > 0 && sem_post(p->sem) == 0) /* closing gives the permits back [XL-PSEM-6] */
        p->held--;
    pthread_mutex_unlock(&p->mu);
    psem_free(p);
}

static void count(xlock_psem_t *p, int delta)
{
    pthread_mutex_lock(&p->mu);
    p->held += delta;
    pthread_mutex_unlock(&p->mu);
}

int xlock_psem_try_acquire(xlock_psem_t *p)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_try_acquire: the semaphore is NULL");
    if (sem_trywait(p->sem) != 0) {
        if (errno == EAGAIN)
            return xlock__fail(XLOCK_EWOULDBLOCK, 0, "%s (%s): its value is 0", p->what, p->semname);
        return xlock__fail(XLOCK_EOS, errno, "%s (%s): sem_trywait failed: %s", p->what, p->semname,
                           strerror(errno));
    }
    count(p, 1);
    return 0;
}

static int psem_acquire(xlock_psem_t *p, long long timeout_ms, unsigned long long token)
{
    int timed = timeout_ms >= 0;
    struct timespec start = xlock__now(), deadline;
    if (timed)
        deadline = xlock__deadline(&start, timeout_ms);
    for (;;) {
        if (atomic_load(&p->cancel_gen) != token)
            return xlock__fail(XLOCK_ECANCELED, 0,
                               "%s (%s): the wait was cancelled; nothing is held [XL-WAIT-10]", p->what,
                               p->semname);
        int r;
        if (!timed && !p->cancellable) {
            r = sem_wait(p->sem); /* [XL-PSEM-4] */
        } else {
            struct timespec now = xlock__now();
            struct timespec until = xlock__deadline(&now, CANCEL_SLICE_MS);
            if (!p->cancellable || (timed && xlock__ts_before(&deadline, &until)))
                until = deadline;
            r = sem_clockwait(p->sem, CLOCK_MONOTONIC, &until);
            if (r != 0 && errno == ETIMEDOUT) {
                struct timespec now = xlock__now();
                if (!timed || xlock__ts_before(&now, &deadline))
                    continue; /* a slice ended: look at the cancel flag again */
                return xlock__fail(XLOCK_ETIMEDOUT, ETIMEDOUT, "%s (%s): not acquired within %lld ms",
                                   p->what, p->semname, timeout_ms);
            }
        }
        if (r == 0) {
            count(p, 1);
            return 0;
        }
        if (errno == EINTR) /* [XL-WAIT-9] */
            return xlock__fail(XLOCK_EINTR, EINTR,
                               "%s (%s): the wait was interrupted by a signal; nothing is held "
                               "[XL-WAIT-9]",
                               p->what, p->semname);
        return xlock__fail(XLOCK_EOS, errno, "%s (%s): sem_wait failed: %s", p->what, p->semname,
                           strerror(errno));
    }
}

int xlock_psem_acquire(xlock_psem_t *p, long long timeout_ms)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_acquire: the semaphore is NULL");
    return psem_acquire(p, timeout_ms, atomic_load(&p->cancel_gen));
}

int xlock_psem_acquire_token(xlock_psem_t *p, long long timeout_ms, unsigned long long token)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_acquire_token: the semaphore is NULL");
    return psem_acquire(p, timeout_ms, token);
}

int xlock_psem_release(xlock_psem_t *p)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_release: the semaphore is NULL");
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->held == 0)
        rc = xlock__fail(XLOCK_ENOTHELD, 0, "%s (%s): this object holds no permit [XL-PSEM-4]", p->what,
                         p->semname);
    else if (sem_post(p->sem) != 0)
        rc = xlock__fail(XLOCK_EOS, errno, "%s (%s): sem_post failed: %s", p->what, p->semname,
                         strerror(errno));
    else
        p->held--;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int xlock_psem_held(xlock_psem_t *p)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_held: the semaphore is NULL");
    pthread_mutex_lock(&p->mu);
    int n = p->held;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int xlock_psem_value(int *value, xlock_psem_t *p)
{
    if (value == NULL || p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_value: a NULL pointer");
    if (sem_getvalue(p->sem, value) != 0)
        return xlock__fail(XLOCK_EOS, errno, "%s: sem_getvalue failed: %s", p->what, strerror(errno));
    return 0;
}

int xlock_psem_cancel(xlock_psem_t *p)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_cancel: the semaphore is NULL");
    atomic_fetch_add(&p->cancel_gen, 1); /* seen by cancellable waits at their next slice */
    return 0;
}

unsigned long long xlock_psem_cancel_token(xlock_psem_t *p)
{
    return p == NULL ? 0 : atomic_load(&p->cancel_gen);
}

const char *xlock_psem_name(const xlock_psem_t *p)
{
    return p ? p->name : NULL;
}
const char *xlock_psem_namespace(const xlock_psem_t *p)
{
    return p ? p->ns.path : NULL;
}
const char *xlock_psem_semaphore(const xlock_psem_t *p)
{
    return p ? p->semname : NULL;
}

int xlock_psem_namespace_id(unsigned long long *dev, unsigned long long *ino, const xlock_psem_t *p)
{
    if (dev == NULL || ino == NULL || p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_namespace_id: a NULL pointer");
    *dev = p->ns.dev;
    *ino = p->ns.ino;
    return 0;
}

int xlock_psem_sharing(const xlock_psem_t *p)
{
    if (p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_sharing: the semaphore is NULL");
    return p->ns.sharing;
}
