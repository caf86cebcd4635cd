/* Safe removal of idle files [XL-RM-1..XL-RM-7] and sem_unlink of raw semaphores [XL-PSEM-5].
 * Removal never creates anything: no lock, slot, capacity or bell file [XL-RM-6]. */
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

/* Rings word `word` of the namespace's bell if the bell exists [XL-RM-2, XL-RM-6]. */
static void ring(const xlock__ns *ns, unsigned word)
{
    xlock__bell *bell = xlock__bell_get(ns, 0);
    xlock__bell_ring(bell, word);
    xlock__bell_put(bell);
}

/* Holds the EXISTING file fname with LOCK_EX|LOCK_NB after the strict check of [XL-LOCK-8], so
 * only a file we hold is ever unlinked [XL-RM-2]. 0 when held, XL_ABSENT if there is none,
 * XLOCK_EWOULDBLOCK (no message) if held elsewhere, else an error. */
static int hold_existing(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        int rc = xlock__file_open_existing(f, ns, fname, what);
        if (rc != 0)
            return rc;
        if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            xlock__file_close(f);
            if (err == EWOULDBLOCK)
                return XLOCK_EWOULDBLOCK;
            return xlock__fail(XLOCK_EOS, err, "%s: flock on %s/%s failed: %s", what, ns->path, fname,
                               strerror(err));
        }
        rc = xlock__file_named(f, ns, fname, what);
        if (rc != 1)
            return rc;        /* 0, or an error (the descriptor is closed by the caller) */
        xlock__file_close(f); /* replaced or removed meanwhile: look again */
    }
    return xlock__fail(XLOCK_EOS, EAGAIN,
                       "%s: %s/%s was replaced or removed %d times in a row while removing it: "
                       "another process keeps creating and removing it [XL-LOCK-12]",
                       what, ns->path, fname, XL_MAX_ROUNDS);
}

/* unlinkat of a file we hold; 0, or an error naming the owner when the sticky bit forbids it. */
static int unlink_held(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    if (unlinkat(ns->fd, fname, 0) == 0)
        return 0;
    int err = errno;
    if (err == EPERM || err == EACCES) { /* sticky shared namespace: not our file [XL-ERR-3] */
        struct stat st;
        char who[XL_OWNER_SIZE], nsowner[XL_OWNER_SIZE];
        if (fstat(f->fd, &st) != 0)
            st.st_uid = (uid_t)-1;
        return xlock__fail(XLOCK_EINSECURE, err,
                           "%s: %s/%s is idle but belongs to %s, and only its owner or the owner "
                           "of %s (%s) may remove it: ask one of them [XL-RM-2, XL-ERR-3]",
                           what, ns->path, fname, xlock__owner(who, sizeof who, st.st_uid), ns->path,
                           xlock__owner(nsowner, sizeof nsowner, ns->uid));
    }
    return xlock__fail(XLOCK_EOS, err, "%s: cannot remove %s/%s: %s", what, ns->path, fname,
                       strerror(err));
}

/* The checks every removal starts with, in the order of [XL-NAME-6]: the out-parameter and the
 * name, then capacity (if capacity != NULL: 0 or 1..1000), the options, the namespace. */
static int prepare(int *removed, xlock__ns *ns, char *what, const char *kind, const char *name,
                   size_t len, const long *capacity, const xlock_options *opts)
{
    ns->fd = -1;
    ns->path = NULL;
    ns->entry = NULL;
    if (removed == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "remove: the 'removed' out-parameter is NULL");
    *removed = 0;
    if (name == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "remove: name is NULL");
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    snprintf(what, XL_WHAT_SIZE, "%s '%.*s'", kind, (int)len, name);
    if (capacity != NULL && (*capacity < 0 || *capacity > XLOCK_CAPACITY_MAX))
        return xlock__fail(XLOCK_EINVAL, 0,
                           "%s: capacity %ld is out of range; it must be 1 to 1000, or 0 to take "
                           "the capacity file's [XL-CSEM-1]",
                           what, *capacity);
    if ((rc = xlock__check_options(opts, 0, what)) != 0)
        return rc;
    return xlock__ns_open(ns, opts, what);
}

int xlock_remove_n(int *removed, const char *name, size_t len, const xlock_options *opts)
{
    xlock__ns ns;
    char what[XL_WHAT_SIZE], enc[XL_ENC_MAX + 1], fname[XLOCK_FILE_NAME_SIZE];
    xlock__file f = {-1, 0, 0};
    xlock_options plain;
    if (opts != NULL) { /* shared/reentrant/cancellable describe lock objects; ignore them here */
        plain = *opts;
        plain.shared = plain.reentrant = 0;
        opts = &plain;
    }
    int rc = prepare(removed, &ns, what, "lock", name, len, NULL, opts);
    if (rc != 0)
        goto done;
    xlock__enc(enc, name, len);
    xlock__lock_fname(fname, enc);
    rc = hold_existing(&f, &ns, fname, what);
    if (rc == XL_ABSENT) {
        rc = 0; /* nothing to remove [XL-RM-6] */
    } else if (rc == XLOCK_EWOULDBLOCK) {
        rc = xlock__fail(XLOCK_EWOULDBLOCK, 0,
                         "%s: %s/%s is held; nothing was removed; try again when it is idle "
                         "[XL-RM-2]",
                         what, ns.path, fname);
    } else if (rc == 0 && (rc = unlink_held(&f, &ns, fname, what)) == 0) {
        *removed = 1; /* [XL-RM-7] */
    }
    xlock__file_close(&f); /* releases the flock */
    if (*removed)
        ring(&ns, xlock__bell_word(XLOCK_KIND_LOCK, name, len)); /* waiters re-open [XL-RM-4] */
done:
    xlock__ns_close(&ns);
    return rc;
}

int xlock_remove(int *removed, const char *name, const xlock_options *opts)
{
    return xlock_remove_n(removed, name, name == NULL ? 0 : strlen(name), opts);
}

/* Holds every existing slot with LOCK_EX|LOCK_NB and the strict check, then unlinks the slots it
 * holds and the capacity file [XL-RM-3]. A missing slot is skipped and never unlinked later (a
 * newcomer may create and hold it meanwhile). *unlinked counts the files removed. */
static int remove_files(const xlock__ns *ns, const char *enc, long capacity, const char *what,
                        int *unlinked)
{
    char fname[XLOCK_FILE_NAME_SIZE];
    long got = 0;
    int rc = 0;
    xlock__file *slots = malloc((size_t)capacity * sizeof *slots);
    if (slots == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what);
    for (; got < capacity && rc == 0; got++) {
        slots[got].fd = -1;
        xlock__slot_fname(fname, enc, got);
        rc = hold_existing(&slots[got], ns, fname, what);
        if (rc == XL_ABSENT)
            rc = 0;
        else if (rc == XLOCK_EWOULDBLOCK)
            rc = xlock__fail(XLOCK_EWOULDBLOCK, 0,
                             "%s: permit %ld (%s/%s) is held; nothing was removed; try again "
                             "when the semaphore is idle [XL-RM-3]",
                             what, got, ns->path, fname);
    }
    for (long i = 0; i < got && rc == 0; i++) {
        if (slots[i].fd < 0)
            continue;
        xlock__slot_fname(fname, enc, i);
        if ((rc = unlink_held(&slots[i], ns, fname, what)) == 0)
            ++*unlinked;
    }
    if (rc == 0) {
        xlock__capacity_fname(fname, enc);
        if (unlinkat(ns->fd, fname, 0) == 0)
            ++*unlinked;
        else if (errno != ENOENT)
            rc = xlock__fail(errno == EPERM || errno == EACCES ? XLOCK_EINSECURE : XLOCK_EOS, errno,
                             "%s: cannot remove %s/%s: %s; ask its owner or the owner of "
                             "the namespace [XL-RM-3]",
                             what, ns->path, fname, strerror(errno));
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
    char what[XL_WHAT_SIZE], enc[XL_ENC_MAX + 1];
    int unlinked = 0;
    int rc = prepare(removed, &ns, what, "semaphore", name, len, &capacity, opts);
    if (rc != 0)
        goto done;
    xlock__enc(enc, name, len);
    /* The capacity the file records decides; malformed or different: nothing removed [XL-RM-3]. */
    rc = xlock__capacity_read(&ns, enc, &capacity, what);
    if (rc == XL_ABSENT) {
        rc = 0; /* nothing to remove */
        goto done;
    }
    if (rc == 0)
        rc = remove_files(&ns, enc, capacity, what, &unlinked);
    *removed = unlinked > 0; /* [XL-RM-7] */
    if (unlinked > 0)
        ring(&ns, xlock__bell_word(XLOCK_KIND_SEMAPHORE, name, len));
done:
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
    char what[XL_WHAT_SIZE], semname[XLOCK_SEM_NAME_SIZE];
    int rc = prepare(removed, &ns, what, "POSIX semaphore", name, len, NULL, opts);
    if (rc != 0)
        goto done;
    xlock__sem_name(semname, XLOCK_KIND_POSIX_SEMAPHORE, ns.dev, ns.ino, name, len);
    if (sem_unlink(semname) == 0)
        *removed = 1;
    else if (errno == EACCES || errno == EPERM)
        rc = xlock__fail(XLOCK_EINSECURE, errno,
                         "%s: %s (" XL_SHM_DIR "/sem.%s) belongs to another user, who must unlink "
                         "it (or root) [XL-PSEM-5, XL-ERR-3]",
                         what, semname, semname + 1);
    else if (errno != ENOENT)
        rc = xlock__fail(XLOCK_EOS, errno, "%s: sem_unlink(%s) failed: %s", what, semname,
                         strerror(errno));
done:
    xlock__ns_close(&ns);
    return rc;
}

int xlock_psem_unlink(int *removed, const char *name, const xlock_options *opts)
{
    return xlock_psem_unlink_n(removed, name, name == NULL ? 0 : strlen(name), opts);
}
