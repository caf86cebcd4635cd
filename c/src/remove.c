/* Safe removal of idle files [XL-RM-1..XL-RM-4] and sem_unlink of raw semaphores [XL-PSEM-5]. */
#include "capacity.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens an EXISTING lock or slot file (never creating it). 1 if there is none. */
static int open_existing(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    int fd = openat(ns->fd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        if (errno == ELOOP)
            return xlock__fail(XLOCK_EINSECURE, ELOOP,
                           "%s: %s/%s is a symbolic link; it was not followed [XL-LOCK-4]", what,
                           ns->path, fname);
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot open %s/%s: %s", what, ns->path, fname,
                       strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return xlock__fail(XLOCK_EINSECURE, 0, "%s: %s/%s is not a regular file [XL-LOCK-5]", what,
                       ns->path, fname);
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

/* Rings the doorbell of (kind, name) if it exists. */
static void ring(const xlock__ns *ns, int kind, const char *name, size_t len)
{
    char semname[XLOCK_SEM_NAME_SIZE];
    xlock__sem_name(semname, kind, ns->dev, ns->ino, name, len);
    sem_t *bell = sem_open(semname, 0);
    if (bell != SEM_FAILED) {
        xlock__bell_ring(bell);
        sem_close(bell);
    }
}

/* Re-opens when the path changed between open and flock are bounded, as for acquirers. */
#define MAX_REOPENS 1000

static int remove_lock(int *removed, const xlock__ns *ns, const char *fname, const char *what)
{
    for (int reopens = 0; reopens < MAX_REOPENS; reopens++) {
        xlock__file f = {-1, 0, 0};
        int rc = open_existing(&f, ns, fname, what);
        if (rc == 1) {
            *removed = 0;
            return 0;
        }
        if (rc != 0)
            return rc;
        if (flock(f.fd, LOCK_EX | LOCK_NB) != 0) { /* [XL-RM-2] */
            int err = errno;
            xlock__file_close(&f);
            if (err == EWOULDBLOCK)
                return xlock__fail(XLOCK_EWOULDBLOCK, 0,
                               "%s: %s/%s is held; nothing was removed [XL-RM-2]", what, ns->path,
                               fname);
            return xlock__fail(XLOCK_EOS, err, "%s: flock failed: %s", what, strerror(err));
        }
        /* The strict check, so we never unlink a file we do not hold [XL-RM-2]. */
        rc = xlock__file_named(&f, ns, fname, what);
        if (rc == 1) { /* replaced or removed meanwhile; look again */
            xlock__file_close(&f);
            continue;
        }
        if (rc == 0 && unlinkat(ns->fd, fname, 0) != 0)
            rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot remove %s/%s: %s", what, ns->path, fname,
                         strerror(errno));
        xlock__file_close(&f); /* releases the flock */
        *removed = rc == 0;
        return rc;
    }
    return xlock__fail(XLOCK_EOS, 0,
                   "%s: %s/%s was replaced or removed %d times in a row while removing it; stop "
                   "whatever keeps replacing it [XL-RM-5]",
                   what, ns->path, fname, MAX_REOPENS);
}

static int prepare(int *removed, xlock__ns *ns, char *what, const char *kind, const char *name,
                   size_t len, const xlock_options *opts)
{
    if (removed == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "remove: the 'removed' out-parameter is NULL");
    *removed = 0;
    if (name == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "remove: name is NULL");
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    snprintf(what, XL_WHAT_SIZE, "%s '%.*s'", kind, (int)len, name);
    rc = xlock__check_options(opts, 0, what);
    if (rc == 0)
        rc = xlock__ns_open(ns, opts, what);
    return rc;
}

int xlock_remove_n(int *removed, const char *name, size_t len, const xlock_options *opts)
{
    xlock__ns ns;
    char what[XL_WHAT_SIZE];
    xlock_options plain;
    if (opts != NULL) { /* shared/reentrant/cancellable describe lock objects; ignore them here */
        plain = *opts;
        plain.shared = plain.reentrant = 0;
        opts = &plain;
    }
    int rc = prepare(removed, &ns, what, "lock", name, len, opts);
    if (rc != 0)
        return rc;
    char fname[XLOCK_FILE_NAME_SIZE];
    size_t n = xlock__enc(fname, name, len);
    memcpy(fname + n, ".lock", 6);
    rc = remove_lock(removed, &ns, fname, what);
    if (rc == 0 && *removed)
        ring(&ns, XLOCK_KIND_LOCK, name, len); /* waiters re-open the path [XL-RM-4] */
    xlock__ns_close(&ns);
    return rc;
}

int xlock_remove(int *removed, const char *name, const xlock_options *opts)
{
    return xlock_remove_n(removed, name, name == NULL ? 0 : strlen(name), opts);
}

/* Holds every slot with LOCK_EX|LOCK_NB, each passing the strict check of [XL-LOCK-8] so only
 * files we hold are unlinked [XL-RM-2], then unlinks slots and the capacity file [XL-RM-3]. */
static int remove_slots(const xlock__ns *ns, const char *enc, long capacity, const char *capname,
                        const char *what)
{
    xlock__file *slots = malloc((size_t)capacity * sizeof *slots);
    if (slots == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what);
    char fname[XLOCK_FILE_NAME_SIZE];
    long got = 0;
    int rc = 0;
    for (; got < capacity; got++) {
        slots[got].fd = -1;
        xlock__slot_file(fname, enc, got);
        rc = xlock__file_try_named(&slots[got], ns, fname, LOCK_EX, what);
        if (rc == XLOCK_EWOULDBLOCK)
            rc = xlock__fail(XLOCK_EWOULDBLOCK, 0, "%s: permit %ld is held; nothing was removed "
                         "[XL-RM-3]", what, got);
        if (rc != 0) {
            xlock__file_close(&slots[got]);
            break;
        }
    }
    if (rc == 0) {
        for (long i = 0; i < capacity; i++) {
            xlock__slot_file(fname, enc, i);
            if (unlinkat(ns->fd, fname, 0) != 0 && errno != ENOENT && rc == 0)
                rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot remove %s/%s: %s", what, ns->path,
                             fname, strerror(errno));
        }
        if (rc == 0 && unlinkat(ns->fd, capname, 0) != 0 && errno != ENOENT)
            rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot remove %s/%s: %s", what, ns->path, capname,
                         strerror(errno));
    }
    for (long i = 0; i < got; i++)
        xlock__file_close(&slots[i]);
    free(slots);
    return rc;
}

int xlock_sem_remove_n(int *removed, const char *name, size_t len, long capacity,
                       const xlock_options *opts)
{
    xlock__ns ns;
    char what[XL_WHAT_SIZE];
    int rc = prepare(removed, &ns, what, "semaphore", name, len, opts);
    if (rc != 0)
        return rc;
    if (capacity < 1 || capacity > XLOCK_CAPACITY_MAX) {
        xlock__ns_close(&ns);
        return xlock__fail(XLOCK_EINVAL, 0,
                       "%s: capacity %ld is out of range; it must be 1 to 1000 [XL-CSEM-1]", what,
                       capacity);
    }
    char enc[XL_ENC_MAX + 1], capname[XLOCK_FILE_NAME_SIZE];
    size_t n = xlock__enc(enc, name, len);
    memcpy(capname, enc, n);
    memcpy(capname + n, ".sem", 5);
    char *path = xlock__ns_join(&ns, capname);
    if (path == NULL)
        rc = xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what);
    else
        rc = xlock__capacity_check(&ns, capname, path, capacity, what);
    if (rc == 0) {
        rc = remove_slots(&ns, enc, capacity, capname, what);
        if (rc == 0) {
            *removed = 1;
            ring(&ns, XLOCK_KIND_SEMAPHORE, name, len);
        }
    } else if (rc == 1) {
        rc = 0; /* no capacity file: nothing to remove */
    }
    free(path);
    xlock__ns_close(&ns);
    return rc;
}

int xlock_sem_remove(int *removed, const char *name, long capacity, const xlock_options *opts)
{
    return xlock_sem_remove_n(removed, name, name == NULL ? 0 : strlen(name), capacity, opts);
}

int xlock_psem_unlink_n(int *removed, const char *name, size_t len, const xlock_options *opts)
{
    xlock__ns ns;
    char what[XL_WHAT_SIZE];
    int rc = prepare(removed, &ns, what, "POSIX semaphore", name, len, opts);
    if (rc != 0)
        return rc;
    char semname[XLOCK_SEM_NAME_SIZE];
    xlock__sem_name(semname, XLOCK_KIND_POSIX_SEMAPHORE, ns.dev, ns.ino, name, len);
    if (sem_unlink(semname) == 0)
        *removed = 1;
    else if (errno != ENOENT)
        rc = xlock__fail(XLOCK_EOS, errno, "%s: sem_unlink(%s) failed: %s", what, semname,
                     strerror(errno));
    xlock__ns_close(&ns);
    return rc;
}

int xlock_psem_unlink(int *removed, const char *name, const xlock_options *opts)
{
    return xlock_psem_unlink_n(removed, name, name == NULL ? 0 : strlen(name), opts);
}
