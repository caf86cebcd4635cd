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

int xlock__capacity_read(const xlock__ns *ns, const char *enc, long *capacity, const char *what)
{
    char fname[XLOCK_FILE_NAME_SIZE], buf[MAX_CONTENT + 1], who[XL_OWNER_SIZE];
    xlock__capacity_fname(fname, enc);
    int fd;
    struct stat st;
    int rc = xlock__open_file(&fd, &st, ns, fname, O_RDONLY, 0, what); /* [XL-CSEM-3] */
    if (rc != 0)
        return rc;
    ssize_t n = read(fd, buf, sizeof buf); /* at most 64 bytes matter */
    int err = errno;
    close(fd);
    if (n < 0)
        return xlock__fail(XLOCK_EOS, err, "%s: cannot read %s/%s: %s", what, ns->path, fname,
                           strerror(err));
    long found = (size_t)n > MAX_CONTENT ? -1 : parse(buf, (size_t)n);
    xlock__owner(who, sizeof who, st.st_uid);
    if (found < 0 || found > XLOCK_CAPACITY_MAX || found < 1)
        return xlock__fail(XLOCK_ECAPACITY, 0,
                           "%s: %s/%s (owned by %s) is not a capacity file of the form "
                           "'xlock/1 semaphore capacity=N' with N from 1 to 1000%s; it must be "
                           "removed by its owner when the semaphore is idle [XL-CSEM-3]",
                           what, ns->path, fname, who, *capacity > 0 ? "" : " (nothing was removed)");
    if (*capacity > 0 && found != *capacity)
        return xlock__fail(XLOCK_ECAPACITY, 0,
                           "%s: %s/%s (owned by %s) says capacity %ld but this process wants "
                           "capacity %ld; use the same capacity everywhere [XL-CSEM-3]",
                           what, ns->path, fname, who, found, *capacity);
    *capacity = found;
    return 0;
}

static void capacity_tmp(char *out, const void *enc)
{
    xlock__capacity_tmp_fname(out, enc); /* enc || "." || r || ".tmp" [XL-ENC-3] */
}

static int fill_capacity(int fd, const void *arg)
{
    char buf[MAX_CONTENT];
    int len = snprintf(buf, sizeof buf, PREFIX "%ld\n", *(const long *)arg);
    return write(fd, buf, (size_t)len) == len ? 0 : -1;
}

int xlock__capacity_open(const xlock__ns *ns, const char *enc, long capacity, const char *what)
{
    char fname[XLOCK_FILE_NAME_SIZE];
    xlock__capacity_fname(fname, enc);
    /* Read, else create; a file that vanishes between a lost linkat and the read starts the
     * round again, at most XL_MAX_ROUNDS times [XL-CSEM-4, XL-LOCK-12]. */
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        long want = capacity;
        int rc = xlock__capacity_read(ns, enc, &want, what);
        if (rc != XL_ABSENT)
            return rc;
        /* Only its creator may change it: the file mode without group/other write [XL-NS-13]. */
        rc = xlock__create_file(ns, fname, capacity_tmp, enc, XL_CAPACITY_MODE(ns), fill_capacity,
                                &capacity, what);
        if (rc <= 0)
            return rc;
        /* XL_EXISTS: another participant won; read theirs */
    }
    return xlock__fail(XLOCK_EOS, EAGAIN,
                       "%s: %s/%s was created and removed %d times in a row while opening it: "
                       "another process keeps creating and removing it; stop it and try again "
                       "[XL-LOCK-12]",
                       what, ns->path, fname, XL_MAX_ROUNDS);
}
