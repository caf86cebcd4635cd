/* Lock files and slot files: open, create, check, flock [XL-LOCK-1..XL-LOCK-8]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define OPEN_FLAGS (O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

static const char *slash(const xlock__ns *ns)
{
    size_t n = strlen(ns->path);
    return n > 0 && ns->path[n - 1] == '/' ? "" : "/";
}

int xlock__file_open(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    int fd;
    for (;;) {
        fd = openat(ns->fd, fname, OPEN_FLAGS); /* [XL-LOCK-1] */
        if (fd >= 0)
            break;
        if (errno == ENOENT) { /* [XL-LOCK-2] */
            fd = openat(ns->fd, fname, OPEN_FLAGS | O_CREAT | O_EXCL, ns->fmode);
            if (fd >= 0) {
                if (fchmod(fd, ns->fmode) != 0) { /* [XL-LOCK-3] */
                    int err = errno;
                    close(fd);
                    return xlock__fail(XLOCK_EOS, err, "%s: cannot chmod %s%s%s: %s", what, ns->path,
                                   slash(ns), fname, strerror(err));
                }
                break;
            }
            if (errno == EEXIST)
                continue; /* another creator won: open it */
        }
        int err = errno;
        if (err == ELOOP) /* [XL-LOCK-4] */
            return xlock__fail(XLOCK_EINSECURE, err,
                           "%s: %s%s%s is a symbolic link; it was not followed. Remove it (it is "
                           "not an xlock file) or choose another namespace [XL-LOCK-4]",
                           what, ns->path, slash(ns), fname);
        return xlock__fail(XLOCK_EOS, err, "%s: cannot open %s%s%s: %s", what, ns->path, slash(ns),
                       fname, strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return xlock__fail(XLOCK_EOS, err, "%s: cannot fstat %s%s%s: %s", what, ns->path, slash(ns),
                       fname, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) { /* [XL-LOCK-5] */
        close(fd);
        return xlock__fail(XLOCK_EINSECURE, 0,
                       "%s: %s%s%s is not a regular file (a FIFO, directory, device or socket); "
                       "remove it or choose another namespace [XL-LOCK-5]",
                       what, ns->path, slash(ns), fname);
    }
    f->fd = fd; /* [XL-LOCK-6] */
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

void xlock__slot_file(char buf[XLOCK_FILE_NAME_SIZE], const char *enc, long i)
{
    /* enc is at most 240 bytes and i < 1000, so this fits NAME_MAX [XL-ENC-5]. Formatted by hand,
     * not by snprintf: it runs for every slot a semaphore tries, on the hot path. */
    size_t n = strnlen(enc, XL_ENC_MAX);
    unsigned v = (unsigned)(i % 1000);
    memcpy(buf, enc, n);
    buf[n++] = '.';
    if (v >= 100)
        buf[n++] = (char)('0' + v / 100);
    if (v >= 10)
        buf[n++] = (char)('0' + v / 10 % 10);
    buf[n++] = (char)('0' + v % 10);
    memcpy(buf + n, ".slot", 6);
}

void xlock__file_close(xlock__file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* The re-check of [XL-LOCK-8] on the hot path: 0 if the locked file still has a name (link count
 * above zero), 1 if it was unlinked or replaced by a rename over it, or an error code. It asks the
 * descriptor, not the path: fstat measured slightly cheaper than statx(AT_EMPTY_PATH), and a path
 * lookup costs more than the whole flock pair. A rename moving the file away is excluded by rule
 * [XL-RM-5], not detected. */
static int still_linked(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what)
{
    struct stat st;
    if (fstat(f->fd, &st) == 0)
        return st.st_nlink > 0 ? 0 : 1;
    return xlock__fail(XLOCK_EOS, errno, "%s: cannot fstat %s%s%s: %s", what, ns->path, slash(ns),
                   fname, strerror(errno));
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
    return xlock__fail(XLOCK_EOS, errno, "%s: cannot stat %s%s%s: %s", what, ns->path, slash(ns),
                   fname, strerror(errno));
}

/* After flock succeeded: 0 if the lock is good; otherwise drops it, closes the descriptor and
 * returns 1 (reopen and retry) or an error. strict: the path comparison of xlock__file_named. */
static int confirm(xlock__file *f, const xlock__ns *ns, const char *fname, int strict, const char *what)
{
    int rc = strict ? xlock__file_named(f, ns, fname, what) : still_linked(f, ns, fname, what);
    if (rc == 0)
        return 0;
    flock(f->fd, LOCK_UN);
    xlock__file_close(f);
    return rc;
}

/* Re-opens after a failed re-check are bounded, so a path that never stays put (or a file system
 * that reports a link count of zero for a named file) gives an error instead of a livelock. */
#define MAX_REOPENS 1000

static int replaced_too_often(const xlock__ns *ns, const char *fname, const char *what)
{
    return xlock__fail(XLOCK_EOS, 0,
                   "%s: %s%s%s was replaced or removed %d times in a row while locking it; "
                   "stop whatever keeps replacing it [XL-LOCK-8]",
                   what, ns->path, slash(ns), fname, MAX_REOPENS);
}

static int file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, int strict,
                    const char *what)
{
    for (int reopens = 0; reopens < MAX_REOPENS; reopens++) {
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
            return xlock__fail(XLOCK_EOS, errno, "%s: flock on %s%s%s failed: %s", what, ns->path,
                           slash(ns), fname, strerror(errno));
        }
        int rc = confirm(f, ns, fname, strict, what);
        if (rc <= 0)
            return rc;
    }
    return replaced_too_often(ns, fname, what);
}

int xlock__file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what)
{
    return file_try(f, ns, fname, op, 0, what);
}

int xlock__file_try_named(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what)
{
    return file_try(f, ns, fname, op, 1, what);
}

int xlock__file_block(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what)
{
    for (int reopens = 0; reopens < MAX_REOPENS; reopens++) {
        if (f->fd < 0) {
            int rc = xlock__file_open(f, ns, fname, what);
            if (rc != 0)
                return rc;
        }
        if (flock(f->fd, op) != 0) { /* [XL-WAIT-2] */
            if (errno == EINTR) /* never retried here [XL-WAIT-9] */
                return xlock__fail(XLOCK_EINTR, EINTR,
                               "%s (%s%s%s): the wait was interrupted by a signal; nothing is held "
                               "[XL-WAIT-9]",
                               what, ns->path, slash(ns), fname);
            return xlock__fail(XLOCK_EOS, errno, "%s: flock on %s%s%s failed: %s", what, ns->path,
                           slash(ns), fname, strerror(errno));
        }
        int rc = confirm(f, ns, fname, 0, what);
        if (rc <= 0)
            return rc;
    }
    return replaced_too_often(ns, fname, what);
}
