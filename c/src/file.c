/* Opening the files of a namespace (and of /dev/shm): the one routine that refuses symbolic links
 * and non-regular files and maps every failure to its kind [XL-LOCK-1, XL-LOCK-4, XL-LOCK-5,
 * XL-ERR-5], the atomic creation from a temporary file [XL-BELL-2, XL-CSEM-4, XL-PSEM-2], and the
 * owner-aware advice of messages [XL-ERR-3]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPEN_FLAGS (O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* The user name of uid from /etc/passwd, read directly: getpwuid_r would load NSS modules into
 * the process (and keep them) just to word a message. 0 if found. */
static int user_name(char *out, size_t size, uid_t uid)
{
    FILE *f = fopen("/etc/passwd", "re");
    char line[512];
    int found = -1;
    while (f != NULL && found != 0 && fgets(line, sizeof line, f) != NULL) {
        char *name = line, *colon1 = strchr(line, ':');
        char *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
        if (colon2 == NULL)
            continue;
        char *end;
        unsigned long v = strtoul(colon2 + 1, &end, 10);
        if (end != colon2 + 1 && *end == ':' && v == (unsigned long)uid) {
            size_t n = (size_t)(colon1 - name);
            if (n >= size)
                n = size - 1;
            memcpy(out, name, n);
            out[n] = '\0';
            found = 0;
        }
    }
    if (f != NULL)
        fclose(f);
    return found;
}

const char *xlock__owner(char *buf, size_t size, uid_t uid)
{
    char name[64];
    if (user_name(name, sizeof name, uid) == 0)
        snprintf(buf, size, "uid %lu (%s)", (unsigned long)uid, name);
    else
        snprintf(buf, size, "uid %lu", (unsigned long)uid);
    return buf;
}

const char *xlock__remedy(char *buf, size_t size, const xlock__ns *dir, uid_t owner)
{
    uid_t euid = geteuid();
    char who[XL_OWNER_SIZE], nsowner[XL_OWNER_SIZE];
    if (owner == euid || euid == 0)
        snprintf(buf, size, "remove it (it is not an xlock file) or choose another namespace");
    else /* the sticky bit lets only the owners remove it [XL-ERR-3] */
        snprintf(buf, size,
                 "it belongs to %s: ask them, or the owner of %s (%s), to remove it, or choose "
                 "another namespace",
                 xlock__owner(who, sizeof who, owner), dir->path,
                 xlock__owner(nsowner, sizeof nsowner, dir->uid));
    return buf;
}

/* The refusal of a path that exists but is not a file we may use. */
static int refuse(const xlock__ns *dir, const char *fname, int err, const char *why, const char *rule,
                  const char *what)
{
    struct stat st;
    char remedy[XL_REMEDY_SIZE];
    if (fstatat(dir->fd, fname, &st, AT_SYMLINK_NOFOLLOW) == 0)
        xlock__remedy(remedy, sizeof remedy, dir, st.st_uid);
    else
        snprintf(remedy, sizeof remedy, "choose another namespace");
    return xlock__fail(XLOCK_EINSECURE, err, "%s: %s/%s %s; %s [%s]", what, dir->path, fname, why,
                       remedy, rule);
}

int xlock__open_file(int *fd, struct stat *st, const xlock__ns *dir, const char *fname, int flags,
                     mode_t mode, const char *what)
{
    *fd = openat(dir->fd, fname, flags | OPEN_FLAGS, mode);
    if (*fd < 0) {
        int err = errno;
        switch (err) {
        case ENOENT:
            if (!(flags & O_CREAT))
                return XL_ABSENT;
            break;
        case EEXIST:
            if (flags & O_EXCL)
                return XL_EXISTS;
            break;
        case ELOOP: /* [XL-LOCK-4]: neither the link nor its target is touched */
            return refuse(dir, fname, err, "is a symbolic link; it was not followed", "XL-LOCK-4", what);
        case ENXIO:
        case EISDIR:
            return refuse(dir, fname, err,
                          err == ENXIO ? "is a socket, not a regular file"
                                       : "is a directory, not a regular file",
                          "XL-LOCK-5", what);
        case EACCES:
        case EPERM: {
            struct stat lst;
            char who[XL_OWNER_SIZE], remedy[XL_REMEDY_SIZE];
            if (fstatat(dir->fd, fname, &lst, AT_SYMLINK_NOFOLLOW) != 0)
                return xlock__fail(XLOCK_EINSECURE, err,
                                   "%s: permission denied opening %s/%s; choose another "
                                   "namespace [XL-LOCK-5]",
                                   what, dir->path, fname);
            return xlock__fail(XLOCK_EINSECURE, err,
                               "%s: permission denied opening %s/%s, owned by %s with mode %04o; "
                               "%s [XL-LOCK-5]",
                               what, dir->path, fname, xlock__owner(who, sizeof who, lst.st_uid),
                               (unsigned)(lst.st_mode & 07777),
                               xlock__remedy(remedy, sizeof remedy, dir, lst.st_uid));
        }
        default:
            break;
        }
        return xlock__fail(XLOCK_EOS, err, "%s: cannot open %s/%s: %s", what, dir->path, fname,
                           strerror(err));
    }
    int rc = 0;
    if (fstat(*fd, st) != 0)
        rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot fstat %s/%s: %s", what, dir->path, fname,
                         strerror(errno));
    else if (!S_ISREG(st->st_mode)) /* [XL-LOCK-5]; O_NONBLOCK kept a FIFO from blocking us */
        rc = refuse(dir, fname, 0, "is not a regular file (a FIFO, directory, device or socket)",
                    "XL-LOCK-5", what);
    if (rc != 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int xlock__create_file(const xlock__ns *dir, const char *final, void (*tmp_fname)(char *, const void *),
                       const void *tmp_arg, mode_t mode, int (*fill)(int fd, const void *arg),
                       const void *fill_arg, const char *what)
{
    char tmp[XLOCK_FILE_NAME_SIZE];
    int fd = -1, rc = XL_EXISTS;
    struct stat st;
    /* A taken temporary name is never waited for: a new random one [XL-ENC-6]. */
    for (int round = 0; round < XL_MAX_ROUNDS && rc == XL_EXISTS; round++) {
        tmp_fname(tmp, tmp_arg);
        rc = xlock__open_file(&fd, &st, dir, tmp, O_RDWR | O_CREAT | O_EXCL, mode, what);
    }
    if (rc == XL_EXISTS)
        return xlock__fail(XLOCK_EOS, EEXIST,
                           "%s: %d random temporary names in %s were all taken; something keeps "
                           "creating files there [XL-ENC-6]",
                           what, XL_MAX_ROUNDS, dir->path);
    if (rc != 0)
        return rc;
    if (fchmod(fd, mode) != 0) /* the umask must not lock other users out [XL-NS-13] */
        rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot chmod %s/%s: %s", what, dir->path, tmp,
                         strerror(errno));
    else if (fill(fd, fill_arg) != 0)
        rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot write %s/%s: %s", what, dir->path, tmp,
                         strerror(errno));
    else if (linkat(dir->fd, tmp, dir->fd, final, 0) != 0)
        rc = errno == EEXIST ? XL_EXISTS /* another creator won */
                             : xlock__fail(XLOCK_EOS, errno, "%s: cannot link %s/%s: %s", what,
                                           dir->path, final, strerror(errno));
    close(fd);
    unlinkat(dir->fd, tmp, 0);
    return rc;
}
