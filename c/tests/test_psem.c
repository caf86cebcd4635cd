/* Raw POSIX named semaphores [§11]. */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static xlock_psem_t *open_psem(const char *ns, const char *name, long value)
{
    xlock_options o = tl_opts(ns);
    xlock_psem_t *p = NULL;
    if (xlock_psem_open(&p, name, value, &o) != 0)
        tl_fail(__FILE__, __LINE__, "xlock_psem_open(%s): %s", name, xlock_last_message());
    return p;
}

static void unlink_psem(const char *ns, const char *name)
{
    xlock_options o = tl_opts(ns);
    int removed;
    xlock_psem_unlink(&removed, name, &o);
}

/* The name, the initial value, try/timed/untimed acquisition, no over-release [XL-PSEM-1..XL-PSEM-4]. */
static void open_acquire_release(void)
{
    const char *ns = tl_ns();
    xlock_psem_t *p = open_psem(ns, "pool", 2), *q = open_psem(ns, "pool", 5);
    CHECK(p && q);
    unsigned long long dev, ino;
    char name[XLOCK_SEM_NAME_SIZE];
    CHECK_OK(xlock_psem_namespace_id(&dev, &ino, p));
    CHECK_RC(xlock_semaphore_name(name, sizeof name, 'p', dev, ino, "pool", 4), 30);
    CHECK(strcmp(xlock_psem_semaphore(p), name) == 0);
    CHECK(strcmp(xlock_psem_name(p), "pool") == 0 && strcmp(xlock_psem_namespace(p), ns) == 0);
    int v = -1;
    CHECK_OK(xlock_psem_value(&v, q));
    CHECK(v == 2); /* the value applies only to the creator [XL-PSEM-2] */
    CHECK_OK(xlock_psem_try_acquire(p));
    CHECK_OK(xlock_psem_acquire(q, -1));
    CHECK_RC(xlock_psem_try_acquire(p), XLOCK_EWOULDBLOCK);
    long long t0 = tl_ms();
    CHECK_RC(xlock_psem_acquire(p, 50), XLOCK_ETIMEDOUT);
    CHECK(tl_ms() - t0 >= 50);
    CHECK_RC(xlock_psem_acquire(p, 0), XLOCK_ETIMEDOUT);
    CHECK_RC(xlock_psem_held(p), 1);
    CHECK_OK(xlock_psem_release(q));
    CHECK_RC(xlock_psem_release(q), XLOCK_ENOTHELD); /* no over-release [XL-PSEM-4] */
    CHECK_OK(xlock_psem_acquire(p, 1000));
    CHECK_RC(xlock_psem_held(p), 2);
    xlock_psem_close(p); /* posts its two permits back */
    CHECK_OK(xlock_psem_value(&v, q));
    CHECK(v == 2);
    /* The semaphore file gets the namespace mode [XL-PSEM-3, XL-NS-13]. */
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/sem.%s", name + 1);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    xlock_psem_close(q);
    unlink_psem(ns, "pool");
}

static void bad_arguments(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_psem_t *p = (xlock_psem_t *)1;
    CHECK_RC(xlock_psem_open(&p, "v", -1, &o), XLOCK_EINVAL);
    CHECK(p == NULL);
    CHECK_RC(xlock_psem_open(&p, "v", (long)SEM_VALUE_MAX + 1, &o), XLOCK_EINVAL);
    char given[32];
    snprintf(given, sizeof given, "%ld", (long)SEM_VALUE_MAX + 1);
    CHECK(strstr(xlock_last_message(), given) != NULL); /* the value as given [XL-PSEM-2] */
    CHECK_RC(xlock_psem_open(NULL, "v", 1, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_open(&p, NULL, 1, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_open(&p, "a\x1b", 1, &o), XLOCK_EINVALNAME);
    o.reentrant = 1;
    CHECK_RC(xlock_psem_open(&p, "v", 1, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_acquire(NULL, -1), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_try_acquire(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_release(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_held(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_cancel(NULL), XLOCK_EINVAL);
    int v;
    CHECK_RC(xlock_psem_value(&v, NULL), XLOCK_EINVAL);
    int removed;
    CHECK_RC(xlock_psem_unlink(NULL, "v", &o), XLOCK_EINVAL);
    CHECK_RC(xlock_psem_unlink(&removed, "", &o), XLOCK_EINVALNAME);
    xlock_psem_close(NULL);
}

/* unlink removes the name: openers before and after no longer share it [XL-PSEM-5]. */
static void unlink_splits_openers(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_psem_t *old = open_psem(ns, "u", 1);
    CHECK(old);
    int removed = -1;
    CHECK_OK(xlock_psem_unlink(&removed, "u", &o));
    CHECK(removed == 1);
    CHECK_OK(xlock_psem_unlink(&removed, "u", &o));
    CHECK(removed == 0);
    xlock_psem_t *fresh = open_psem(ns, "u", 1);
    CHECK_OK(xlock_psem_try_acquire(old));
    CHECK_OK(xlock_psem_try_acquire(fresh)); /* a different object now */
    xlock_psem_close(old);
    xlock_psem_close(fresh);
    unlink_psem(ns, "u");
}

/* A semaphore owned by another user is refused in a private namespace, accepted in a shared
 * one [XL-PSEM-3]. */
static void foreign_owner_is_refused(void)
{
    const char *ns = tl_ns();
    xlock_psem_t *p = open_psem(ns, "owned", 1);
    CHECK(p);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/sem.%s", xlock_psem_semaphore(p) + 1);
    CHECK(chown(path, 4242, 4242) == 0);
    xlock_psem_close(p);
    xlock_options o = tl_opts(ns);
    CHECK_RC(xlock_psem_open(&p, "owned", 1, &o), XLOCK_EINSECURE);
    CHECK(strstr(xlock_last_message(), "4242") != NULL);
    unlink_psem(ns, "owned");
    const char *shared = tl_ns();
    chmod(shared, 01777);
    p = open_psem(shared, "owned", 1);
    CHECK(p);
    snprintf(path, sizeof path, "/dev/shm/sem.%s", xlock_psem_semaphore(p) + 1);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0666);
    CHECK(chown(path, 4242, 4242) == 0);
    xlock_psem_close(p);
    o = tl_opts(shared);
    CHECK_OK(xlock_psem_open(&p, "owned", 1, &o));
    xlock_psem_close(p);
    unlink_psem(shared, "owned");
}

/* Planted files at the semaphore's path in a world-shared namespace, where any owner is
 * accepted: an empty file, a short file, a FIFO and a symbolic link are refused on the
 * descriptor before anything is mapped (no SIGBUS), never followed or changed [XL-PSEM-2,
 * XL-PSEM-3]. */
static void planted_files_are_refused(void)
{
    const char *shared = tl_ns();
    chmod(shared, 01777);
    xlock_options o = tl_opts(shared);
    struct stat nst;
    CHECK(stat(shared, &nst) == 0);
    char sem[XLOCK_SEM_NAME_SIZE], path[64];
    CHECK_RC(xlock_semaphore_name(sem, sizeof sem, 'p', (unsigned long long)nst.st_dev,
                                  (unsigned long long)nst.st_ino, "planted", 7),
             30);
    snprintf(path, sizeof path, "/dev/shm/sem.%s", sem + 1);
    for (int how = 0; how < 4; how++) {
        unlink(path);
        int fd = -1;
        if (how <= 1) {
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
            CHECK(fd >= 0 && (how == 0 || write(fd, "xx", 2) == 2));
            CHECK(fchown(fd, 65534, 65534) == 0);
            close(fd);
        } else if (how == 2) {
            CHECK(mkfifo(path, 0666) == 0);
        } else {
            CHECK(symlink("/etc/passwd", path) == 0);
        }
        xlock_psem_t *p = NULL;
        CHECK_RC(xlock_psem_open(&p, "planted", 1, &o), XLOCK_EINSECURE);
        CHECK(p == NULL);
        struct stat st;
        CHECK(lstat(path, &st) == 0);
        CHECK(how != 0 || (S_ISREG(st.st_mode) && st.st_size == 0)); /* untouched */
        CHECK(how != 3 || S_ISLNK(st.st_mode));
    }
    unlink(path);
}

static int psem_child(void *arg)
{
    xlock_psem_t *p = arg;
    if (xlock_psem_held(p) != 0)
        return 1;
    if (xlock_psem_release(p) != XLOCK_ENOTHELD)
        return 2;
    xlock_psem_close(p); /* posts nothing [XL-HOLD-11] */
    return 0;
}

/* After fork the child's object holds no permit [XL-HOLD-11]. */
static void fork_child_holds_no_permit(void)
{
    const char *ns = tl_ns();
    xlock_psem_t *p = open_psem(ns, "forked", 1);
    CHECK(p);
    CHECK_OK(xlock_psem_acquire(p, 0));
    CHECK(tl_wait(tl_fork(psem_child, p)) == 0);
    int v = -1;
    CHECK_OK(xlock_psem_value(&v, p));
    CHECK(v == 0); /* the child gave nothing back */
    CHECK_RC(xlock_psem_held(p), 1);
    xlock_psem_close(p);
    unlink_psem(ns, "forked");
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(open_acquire_release),      TL_CASE(bad_arguments),
        TL_CASE(unlink_splits_openers),     TL_CASE(foreign_owner_is_refused),
        TL_CASE(planted_files_are_refused), TL_CASE(fork_child_holds_no_permit),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
