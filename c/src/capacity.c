/* The capacity file of a counting semaphore: read, check, create atomically [XL-CSEM-3, XL-CSEM-4]. */
#include "capacity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "xlock/1 semaphore capacity="
#define MAX_CONTENT 64

static int content(char *buf, size_t size, long capacity)
{
    return snprintf(buf, size, PREFIX "%ld\n", capacity);
}

/* Parses the exact form PREFIX decimal(N) "\n"; returns N, or -1 if the form is wrong. */
static long parse(const char *buf, size_t n)
{
    size_t p = sizeof PREFIX - 1;
    if (n < p + 2 || memcmp(buf, PREFIX, p) != 0 || buf[n - 1] != '\n')
        return -1;
    long v = 0;
    size_t digits = n - 1 - p;
    if (digits > 10 || (digits > 1 && buf[p] == '0'))
        return -1; /* decimal() has no leading zeros */
    for (size_t i = p; i < n - 1; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        v = v * 10 + (buf[i] - '0');
    }
    return v;
}

/* Reads and checks an existing capacity file. 1 if it does not exist, 0 if it matches, else an
 * error. */
static int read_capacity(const xlock__ns *ns, const char *fname, const char *path, long capacity,
                         const char *what)
{
    int fd = openat(ns->fd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        if (errno == ELOOP)
            return xlock__fail(XLOCK_EINSECURE, ELOOP,
                           "%s: %s is a symbolic link; it was not followed [XL-LOCK-4]", what, path);
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot open %s: %s", what, path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return xlock__fail(XLOCK_EOS, err, "%s: cannot fstat %s: %s", what, path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return xlock__fail(XLOCK_EINSECURE, 0,
                       "%s: %s is not a regular file; remove it or choose another namespace "
                       "[XL-CSEM-3]",
                       what, path);
    }
    char buf[MAX_CONTENT + 1];
    ssize_t n = read(fd, buf, sizeof buf);
    int err = errno;
    close(fd);
    if (n < 0)
        return xlock__fail(XLOCK_EOS, err, "%s: cannot read %s: %s", what, path, strerror(err));
    long found = (size_t)n > MAX_CONTENT ? -1 : parse(buf, (size_t)n);
    if (found < 0)
        return xlock__fail(XLOCK_ECAPACITY, 0,
                       "%s: %s is not a capacity file of the form 'xlock/1 semaphore capacity=N' "
                       "(this process wants capacity %ld); remove it when the semaphore is idle "
                       "[XL-CSEM-3]",
                       what, path, capacity);
    if (found != capacity)
        return xlock__fail(XLOCK_ECAPACITY, 0,
                       "%s: %s says capacity %ld but this process opened it with capacity %ld; "
                       "use the same capacity everywhere [XL-CSEM-3]",
                       what, path, found, capacity);
    return 0;
}

/* Creates the capacity file with the temporary file and linkat of [XL-CSEM-4]. 0 if created,
 * 1 if another participant created it first, else an error. Under xlock__create_lock(): the temporary
 * name holds only the pid, so threads of one process must take turns. */
static int create_capacity(const xlock__ns *ns, const char *enc, const char *fname, const char *path,
                           long capacity, const char *what)
{
    char tmp[XLOCK_FILE_NAME_SIZE + 32];
    snprintf(tmp, sizeof tmp, "%s.sem.%ld.tmp", enc, (long)getpid());
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = openat(ns->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, ns->fmode);
        if (fd < 0 && errno == EEXIST && attempt == 0)
            unlinkat(ns->fd, tmp, 0); /* left by a dead process with our pid */
        else if (fd < 0)
            return xlock__fail(XLOCK_EOS, errno, "%s: cannot create %s/%s: %s", what, ns->path, tmp,
                           strerror(errno));
    }
    char buf[MAX_CONTENT];
    int len = content(buf, sizeof buf, capacity);
    int rc = 0;
    if (fchmod(fd, ns->fmode) != 0 || write(fd, buf, (size_t)len) != len)
        rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot write %s/%s: %s", what, ns->path, tmp,
                     strerror(errno));
    close(fd);
    if (rc == 0 && linkat(ns->fd, tmp, ns->fd, fname, 0) != 0) {
        if (errno == EEXIST)
            rc = 1;
        else
            rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot link %s: %s", what, path, strerror(errno));
    }
    unlinkat(ns->fd, tmp, 0);
    return rc;
}

int xlock__capacity_open(const xlock__ns *ns, const char *enc, const char *fname, const char *path,
                     long capacity, const char *what)
{
    for (;;) {
        int rc = read_capacity(ns, fname, path, capacity, what);
        if (rc != 1)
            return rc;
        xlock__create_lock();
        rc = create_capacity(ns, enc, fname, path, capacity, what);
        xlock__create_unlock();
        if (rc != 1)
            return rc;
        /* another participant won: read theirs */
    }
}

int xlock__capacity_check(const xlock__ns *ns, const char *fname, const char *path, long capacity,
                      const char *what)
{
    return read_capacity(ns, fname, path, capacity, what);
}
