/* Raw POSIX named semaphores: xlock_psem_t [§11]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cancellable waits are sem_clockwait slices of at most this many milliseconds. */
#define CANCEL_SLICE_MS 16

struct xlock_psem {
    pthread_mutex_t mu;
    sem_t *sem;
    xlock__ns ns;
    int cancellable;
    int held; /* permits this object holds [XL-PSEM-4] */
    atomic_ullong cancel_gen;
    char *name;
    char semname[XLOCK_SEM_NAME_SIZE];
    char what[XL_WHAT_SIZE];
};

/* The owner check and mode repair of [XL-PSEM-3] on /dev/shm/sem.NAME. */
static int check_owner(xlock_psem_t *p)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/sem.%s", p->semname + 1);
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* unlinked meanwhile, or no /dev/shm: nothing to check */
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot stat %s: %s", p->what, path,
                       strerror(errno));
    }
    uid_t euid = geteuid();
    if (!S_ISREG(st.st_mode) ||
        (st.st_uid != euid && st.st_uid != 0 && st.st_uid != p->ns.uid && !p->ns.shared))
        return xlock__fail(XLOCK_EINSECURE, 0,
                       "%s: the POSIX semaphore %s (%s) is owned by uid %lu, which is not you "
                       "(uid %lu), root or the owner of namespace %s; remove it (xlock_psem_unlink) "
                       "or use a shared namespace [XL-PSEM-3]",
                       p->what, p->semname, path, (unsigned long)st.st_uid, (unsigned long)euid,
                       p->ns.path);
    if (st.st_uid == euid && (st.st_mode & 07777) != p->ns.fmode && chmod(path, p->ns.fmode) != 0)
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot chmod %s: %s", p->what, path,
                       strerror(errno));
    return 0;
}

int xlock_psem_open_n(xlock_psem_t **out, const char *name, size_t len, long value,
                      const xlock_options *opts)
{
    if (out == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_open: out is NULL");
    *out = NULL;
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    xlock_psem_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "xlock_psem_open: out of memory");
    p->ns.fd = -1;
    p->name = xlock__strndup(name, len);
    if (p->name == NULL) {
        free(p);
        return xlock__fail(XLOCK_EOS, ENOMEM, "xlock_psem_open: out of memory");
    }
    xlock__what(p->what, sizeof p->what, "POSIX semaphore", p->name);
    if (value < 0 || value > SEM_VALUE_MAX)
        rc = xlock__fail(XLOCK_EINVAL, 0,
                     "%s: initial value %ld is out of range; it must be 0 to %d [XL-PSEM-2]",
                     p->what, value, SEM_VALUE_MAX);
    if (rc == 0)
        rc = xlock__check_options(opts, 0, p->what);
    if (rc == 0)
        rc = xlock__ns_open(&p->ns, opts, p->what);
    if (rc == 0) {
        xlock__sem_name(p->semname, XLOCK_KIND_POSIX_SEMAPHORE, p->ns.dev, p->ns.ino, name, len);
        p->sem = sem_open(p->semname, O_CREAT, p->ns.fmode, (unsigned)value); /* [XL-PSEM-2] */
        if (p->sem == SEM_FAILED) {
            p->sem = NULL;
            rc = xlock__fail(XLOCK_EOS, errno, "%s: sem_open(%s) failed: %s", p->what, p->semname,
                         strerror(errno));
        } else {
            rc = check_owner(p);
        }
    }
    if (rc != 0) {
        if (p->sem != NULL)
            sem_close(p->sem);
        xlock__ns_close(&p->ns);
        free(p->name);
        free(p);
        return rc;
    }
    p->cancellable = opts != NULL && opts->cancellable;
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return 0;
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
    while (p->held > 0 && sem_post(p->sem) == 0) /* closing releases, as for locks */
        p->held--;
    sem_close(p->sem);
    xlock__ns_close(&p->ns);
    pthread_mutex_destroy(&p->mu);
    free(p->name);
    free(p);
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
    struct timespec deadline;
    if (timed)
        deadline = xlock__deadline(timeout_ms);
    for (;;) {
        if (atomic_load(&p->cancel_gen) != token)
            return xlock__fail(XLOCK_ECANCELED, 0,
                           "%s (%s): the wait was cancelled; nothing is held [XL-WAIT-10]",
                           p->what, p->semname);
        int r;
        if (!timed && !p->cancellable) {
            r = sem_wait(p->sem); /* [XL-PSEM-4] */
        } else {
            struct timespec until = xlock__deadline(CANCEL_SLICE_MS);
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
        rc = xlock__fail(XLOCK_ENOTHELD, 0, "%s (%s): this object holds no permit [XL-PSEM-4]",
                     p->what, p->semname);
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

const char *xlock_psem_name(const xlock_psem_t *p) { return p ? p->name : NULL; }
const char *xlock_psem_namespace(const xlock_psem_t *p) { return p ? p->ns.path : NULL; }
const char *xlock_psem_semaphore(const xlock_psem_t *p) { return p ? p->semname : NULL; }

int xlock_psem_namespace_id(unsigned long long *dev, unsigned long long *ino,
                            const xlock_psem_t *p)
{
    if (dev == NULL || ino == NULL || p == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_psem_namespace_id: a NULL pointer");
    *dev = p->ns.dev;
    *ino = p->ns.ino;
    return 0;
}
