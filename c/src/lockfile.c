/* Lock files and slot files: open, create, flock and the re-check [XL-LOCK-1..XL-LOCK-8,
 * XL-LOCK-12, XL-CSEM-2]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void set(xlock__file *f, int fd, const struct stat *st)
{
    f->fd = fd; /* [XL-LOCK-6] */
    f->dev = st->st_dev;
    f->ino = st->st_ino;
}

/* XL_MAX_ROUNDS rounds without a wait in between: someone keeps replacing the file [XL-LOCK-12]. */
static int churned(const xlock__ns *ns, const char *fname, const char *what)
{
    return xlock__fail(XLOCK_EOS, EAGAIN,
                       "%s: %s/%s was created and removed or replaced %d times in a row while "
                       "opening or locking it: another process keeps creating and removing it; "
                       "stop it and try again [XL-LOCK-12]",
                       what, ns->path, fname, XL_MAX_ROUNDS);
}

int xlock__file_open(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    int fd;
    struct stat st;
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        int rc = xlock__open_file(&fd, &st, ns, fname, O_RDONLY, 0, what); /* [XL-LOCK-1] */
        if (rc == XL_ABSENT) {                                             /* [XL-LOCK-2] */
            rc = xlock__open_file(&fd, &st, ns, fname, O_RDONLY | O_CREAT | O_EXCL, ns->fmode, what);
            if (rc == XL_EXISTS)
                continue;                                /* another creator won: open theirs */
            if (rc == 0 && fchmod(fd, ns->fmode) != 0) { /* [XL-LOCK-3] */
                rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot chmod %s/%s: %s", what, ns->path, fname,
                                 strerror(errno));
                close(fd);
            }
        }
        if (rc == 0)
            set(f, fd, &st);
        return rc;
    }
    return churned(ns, fname, what);
}

int xlock__file_open_existing(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    int fd;
    struct stat st;
    int rc = xlock__open_file(&fd, &st, ns, fname, O_RDONLY, 0, what);
    if (rc == 0)
        set(f, fd, &st);
    return rc;
}

void xlock__file_close(xlock__file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* The re-check of [XL-LOCK-8] on the hot path of a private namespace: 0 if the locked file still
 * has a name (link count above zero), 1 if it was unlinked or replaced by a rename over it, or an
 * error code. It asks the descriptor, not the path: fstat costs less than a path lookup. */
static int still_linked(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0)
        return st.st_nlink > 0 ? 0 : 1;
    return xlock__fail(XLOCK_EOS, errno, "%s: cannot fstat %s/%s: %s", what, ns->path, fname,
                       strerror(errno));
}

int xlock__file_named(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    struct statx sx;
    if (statx(ns->fd, fname, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_INO, &sx) == 0)
        return makedev(sx.stx_dev_major, sx.stx_dev_minor) == f->dev && sx.stx_ino == f->ino ? 0 : 1;
    if (errno == ENOENT)
        return 1;
    if (errno == ENOSYS || errno == EPERM) { /* no statx (old kernel, seccomp): plain fstatat */
        struct stat st;
        if (fstatat(ns->fd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return st.st_dev == f->dev && st.st_ino == f->ino ? 0 : 1;
        if (errno == ENOENT)
            return 1;
    }
    return xlock__fail(XLOCK_EOS, errno, "%s: cannot stat %s/%s: %s", what, ns->path, fname,
                       strerror(errno));
}

/* After flock succeeded: 0 if the lock is good; otherwise drops it, closes the descriptor and
 * returns 1 (reopen and retry) or an error. A shared namespace needs the strict check: a member
 * can hard-link a lock file elsewhere, so a removed file keeps a link count [XL-LOCK-8]. */
static int confirm(xlock__file *f, const xlock__ns *ns, const char *fname, int strict, const char *what)
{
    int rc = strict || ns->sharing != XLOCK_SHARING_PRIVATE ? xlock__file_named(f, ns, fname, what)
                                                            : still_linked(f, ns, fname, what);
    if (rc == 0)
        return 0;
    flock(f->fd, LOCK_UN);
    xlock__file_close(f);
    return rc;
}

static int file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, int strict,
                    const char *what)
{
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        if (f->fd < 0) {
            int rc = xlock__file_open(f, ns, fname, what);
            if (rc != 0)
                return rc;
        }
        if (flock(f->fd, op | LOCK_NB) != 0) { /* [XL-LOCK-7] */
            if (errno == EWOULDBLOCK)
                return XLOCK_EWOULDBLOCK;
            if (errno == EINTR)
                return xlock__fail(XLOCK_EINTR, EINTR, "%s: flock interrupted by a signal", what);
            return xlock__fail(XLOCK_EOS, errno, "%s: flock on %s/%s failed: %s", what, ns->path, fname,
                               strerror(errno));
        }
        int rc = confirm(f, ns, fname, strict, what);
        if (rc <= 0)
            return rc;
    }
    return churned(ns, fname, what);
}

int xlock__file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what)
{
    return file_try(f, ns, fname, op, 0, what);
}

int xlock__file_try_named(xlock__file *f, const xlock__ns *ns, const char *fname, int op,
                          const char *what)
{
    return file_try(f, ns, fname, op, 1, what);
}

int xlock__file_block(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what)
{
    /* Bounded too: a flock granted at once on a file that keeps being replaced is a busy loop. */
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        if (f->fd < 0) {
            int rc = xlock__file_open(f, ns, fname, what);
            if (rc != 0)
                return rc;
        }
        if (flock(f->fd, op) != 0) { /* [XL-WAIT-2] */
            if (errno == EINTR)      /* never retried here [XL-WAIT-9] */
                return xlock__fail(XLOCK_EINTR, EINTR,
                                   "%s (%s/%s): the wait was interrupted by a signal; nothing is "
                                   "held [XL-WAIT-9]",
                                   what, ns->path, fname);
            return xlock__fail(XLOCK_EOS, errno, "%s: flock on %s/%s failed: %s", what, ns->path, fname,
                               strerror(errno));
        }
        int rc = confirm(f, ns, fname, 0, what);
        if (rc <= 0)
            return rc;
    }
    return churned(ns, fname, what);
}
