/* Choosing, creating and checking a namespace directory [XL-NS-1..XL-NS-13]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* statfs f_type values refused by [XL-NS-10] (spec/vectors/fs_types.json). */
static const struct {
    unsigned long type;
    const char *name;
} refused_fs[] = {
    {0x6969, "nfs"},      {0x517B, "smb"},    {0xFF534D42, "cifs"}, {0xFE534D42, "smb2"},
    {0x65735546, "fuse"}, {0x01021997, "9p"}, {0x00C36400, "ceph"}, {0x5346414F, "afs"},
    {0x73757245, "coda"}, {0x564C, "ncp"},
};

const char *xlock__ns_choose(const xlock_options *opts, char *dflt, size_t size, int *is_default)
{
    *is_default = 0;
    if (opts != NULL && opts->namespace_path != NULL)
        return opts->namespace_path;
    const char *env = getenv("XLOCK_NAMESPACE");
    if (env != NULL && env[0] != '\0')
        return env;
    *is_default = 1;
    snprintf(dflt, size, "/tmp/xlock-%lu", (unsigned long)geteuid());
    return dflt;
}

static int allow_unsupported(const xlock_options *opts)
{
    if (opts != NULL && opts->allow_unsupported_fs)
        return 1;
    const char *env = getenv("XLOCK_ALLOW_UNSUPPORTED_FS");
    return env != NULL && strcmp(env, "1") == 0;
}

static const char *const advice =
    "choose another namespace with XLOCK_NAMESPACE or the namespace option";

static int check_dir(int fd, const char *path, int is_default, const xlock_options *opts,
                     const char *what, xlock__ns *ns)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot fstat namespace %s: %s", what, path,
                           strerror(errno));
    uid_t euid = geteuid();
    if (st.st_uid != euid && st.st_uid != 0) /* [XL-NS-6] */
        return xlock__fail(XLOCK_EINSECURE, 0,
                           "%s: namespace %s is owned by uid %lu, not by you (uid %lu) or root; "
                           "fix its owner or %s [XL-NS-6]",
                           what, path, (unsigned long)st.st_uid, (unsigned long)euid, advice);
    if ((st.st_mode & 0022) != 0 && (st.st_mode & S_ISVTX) == 0) /* [XL-NS-7] */
        return xlock__fail(XLOCK_EINSECURE, 0,
                           "%s: namespace %s (mode %04o) is writable by group or others without the "
                           "sticky bit; run chmod +t on it, or %s [XL-NS-7]",
                           what, path, (unsigned)(st.st_mode & 07777), advice);
    if (is_default && (st.st_uid != euid || (st.st_mode & 0077) != 0)) /* [XL-NS-8] */
        return xlock__fail(XLOCK_EINSECURE, 0,
                           "%s: the default namespace %s must be owned by you (uid %lu) with mode 0700, "
                           "but it is owned by uid %lu with mode %04o; fix its owner or mode, or %s "
                           "[XL-NS-8]",
                           what, path, (unsigned long)euid, (unsigned long)st.st_uid,
                           (unsigned)(st.st_mode & 07777), advice);
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return xlock__fail(XLOCK_EOS, errno, "%s: cannot fstatfs namespace %s: %s", what, path,
                           strerror(errno));
    unsigned long type = (unsigned long)(unsigned int)sf.f_type;
    ns->fs_refused = 0;
    for (size_t i = 0; i < sizeof refused_fs / sizeof refused_fs[0]; i++) {
        if (type != refused_fs[i].type)
            continue;
        ns->fs_refused = 1;
        if (!allow_unsupported(opts)) /* [XL-NS-10, XL-NS-11] */
            return xlock__fail(XLOCK_EUNSUPPORTEDFS, 0,
                               "%s: namespace %s is on a %s file system (f_type 0x%lx), where "
                               "flock(2) may not exclude across clients; %s, or set "
                               "allow_unsupported_fs / XLOCK_ALLOW_UNSUPPORTED_FS=1 [XL-NS-10]",
                               what, path, refused_fs[i].name, type, advice);
    }
    ns->dmode = st.st_mode;
    ns->euid = euid;
    ns->dev = (unsigned long long)st.st_dev;
    ns->ino = (unsigned long long)st.st_ino;
    ns->uid = st.st_uid;
    /* [XL-NS-9, XL-NS-13] */
    ns->sharing = (st.st_mode & 0002)   ? XLOCK_SHARING_WORLD
                  : (st.st_mode & 0020) ? XLOCK_SHARING_GROUP
                                        : XLOCK_SHARING_PRIVATE;
    ns->fmode = ns->sharing == XLOCK_SHARING_WORLD   ? 0666
                : ns->sharing == XLOCK_SHARING_GROUP ? 0660
                                                     : 0600;
    return 0;
}

const char *xlock_sharing_name(int sharing)
{
    switch (sharing) {
    case XLOCK_SHARING_PRIVATE:
        return "private";
    case XLOCK_SHARING_GROUP:
        return "group";
    case XLOCK_SHARING_WORLD:
        return "world";
    default:
        return NULL;
    }
}

/* The open of [XL-NS-5] failed with err: the error of its kind. */
static int open_failed(const char *path, int err, const char *what)
{
    struct stat lst;
    char who[XL_OWNER_SIZE];
    /* With O_DIRECTORY, Linux reports a symbolic link as ENOTDIR rather than ELOOP. */
    if (err == ELOOP || (err == ENOTDIR && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)))
        return xlock__fail(XLOCK_EINSECURE, err,
                           "%s: namespace %s is a symbolic link; use the real directory or %s "
                           "[XL-NS-5]",
                           what, path, advice);
    if (err == ENOTDIR)
        return xlock__fail(XLOCK_EINSECURE, err, "%s: namespace %s is not a directory; %s [XL-NS-5]",
                           what, path, advice);
    if (err == EACCES || err == EPERM) { /* the owner, found for the message only [XL-NS-5] */
        if (lstat(path, &lst) == 0)
            return xlock__fail(XLOCK_EINSECURE, err,
                               "%s: permission denied opening namespace %s, owned by %s with mode "
                               "%04o; ask its owner for access, or %s [XL-NS-5]",
                               what, path, xlock__owner(who, sizeof who, lst.st_uid),
                               (unsigned)(lst.st_mode & 07777), advice);
        return xlock__fail(XLOCK_EINSECURE, err,
                           "%s: permission denied opening namespace %s (or a directory above it); "
                           "%s [XL-NS-5]",
                           what, path, advice);
    }
    return xlock__fail(XLOCK_EOS, err, "%s: cannot open namespace %s: %s", what, path, strerror(err));
}

int xlock__ns_verify(xlock__ns *ns, const char *chosen, int is_default, const xlock_options *opts,
                     const char *what)
{
    int created = 0, rc = 0, fd = -1;
    ns->fd = -1;
    ns->path = NULL;
    ns->entry = NULL;
    char *path = xlock__strndup(chosen, strlen(chosen));
    if (path == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) { /* [XL-NS-4] */
        if (mkdir(path, 0700) == 0)
            created = 1;
        else if (errno != EEXIST) {
            rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot create namespace %s: %s", what, path,
                             strerror(errno));
            goto done;
        }
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) { /* [XL-NS-5] */
        rc = open_failed(path, errno, what);
        goto done;
    }
    /* Our own mkdir under a restrictive umask: 0700 after the checks [XL-NS-4]. */
    rc = check_dir(fd, path, is_default, opts, what, ns);
    if (rc == 0 && created) {
        if (fchmod(fd, 0700) != 0)
            rc = xlock__fail(XLOCK_EOS, errno, "%s: cannot chmod namespace %s: %s", what, path,
                             strerror(errno));
        ns->dmode = (ns->dmode & ~(mode_t)07777) | 0700;
    }
done:
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        free(path);
        return rc;
    }
    ns->fd = fd;
    ns->path = path;
    return 0;
}

int xlock__ns_reusable(const xlock__ns *ns, const struct stat *st, uid_t euid, int is_default,
                       const xlock_options *opts)
{
    if (!S_ISDIR(st->st_mode) || (unsigned long long)st->st_dev != ns->dev ||
        (unsigned long long)st->st_ino != ns->ino || st->st_uid != ns->uid || st->st_mode != ns->dmode ||
        euid != ns->euid)
        return 0;
    if (is_default && (st->st_uid != euid || (st->st_mode & 0077) != 0)) /* [XL-NS-8] */
        return 0;
    return !ns->fs_refused || allow_unsupported(opts); /* [XL-NS-10, XL-NS-11] */
}

char *xlock__ns_join(const xlock__ns *ns, const char *fname)
{
    /* namespace || "/" || file name [XL-NS-14] */
    size_t p = strlen(ns->path), f = strlen(fname);
    char *out = malloc(p + f + 2);
    if (out != NULL) {
        memcpy(out, ns->path, p);
        out[p] = '/';
        memcpy(out + p + 1, fname, f + 1);
    }
    return out;
}
