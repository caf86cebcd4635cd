/* Scale: one verified namespace per process [XL-NS-16], so a lock object costs one descriptor;
 * 10,000 objects open at once under a 10,100-descriptor limit; the namespace re-confirmed before
 * reuse; counting semaphores start a round at the remembered slot [XL-CSEM-5]. */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static long open_fds(void)
{
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static xlock_t *open_lock(const char *ns, const char *name)
{
    xlock_options o = tl_opts(ns);
    xlock_t *l = NULL;
    return xlock_open(&l, name, &o) == 0 ? l : NULL;
}

/* The descriptor limit of `ulimit -n 10100`, raised if the hard limit allows (root may). */
static int limit_fds(rlim_t n, struct rlimit *saved)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, saved) != 0)
        return -1;
    r.rlim_cur = n;
    r.rlim_max = saved->rlim_max < n ? n : saved->rlim_max;
    return setrlimit(RLIMIT_NOFILE, &r);
}

/* 10,000 lock objects (each holding its lock) open at once with `ulimit -n 10100`: one
 * descriptor each, the namespace's shared by all [XL-NS-16, XL-LOCK-6]. */
static void ten_thousand_objects_one_descriptor_each(void)
{
    const char *ns = tl_ns();
    long n = tl_scaled(10000);
    struct rlimit saved;
    if (limit_fds(10100, &saved) != 0) {
        tl_fail(__FILE__, __LINE__, "cannot set RLIMIT_NOFILE to 10100: %s", strerror(errno));
        return;
    }
    xlock_t **locks = calloc((size_t)n, sizeof *locks);
    CHECK(locks != NULL);
    locks[0] = open_lock(ns, "lock-0");
    CHECK(locks[0] != NULL);
    long before = open_fds();
    long opened = 1;
    for (; opened < n; opened++) {
        char name[32];
        snprintf(name, sizeof name, "lock-%ld", opened);
        if ((locks[opened] = open_lock(ns, name)) == NULL || xlock_try_acquire(locks[opened]) != 0)
            break;
    }
    long after = open_fds();
    for (long i = 0; i < n && locks[i] != NULL; i++)
        xlock_close(locks[i]);
    free(locks);
    setrlimit(RLIMIT_NOFILE, &saved);
    if (opened != n)
        tl_fail(__FILE__, __LINE__, "only %ld of %ld objects opened and held: %s", opened, n,
                xlock_last_message());
    CHECK(after - before == n - 1); /* one descriptor per object, nothing else */
}

/* Objects of one namespace share it; a changed directory at the path is verified anew, and a
 * replaced one found by the lstat before reuse [XL-NS-16, XL-NS-5, XL-NS-7]. */
static void namespace_is_shared_and_reconfirmed(void)
{
    const char *ns = tl_ns();
    unsigned long long dev1, ino1, dev2, ino2;
    xlock_t *a = open_lock(ns, "a"), *b = open_lock(ns, "b");
    CHECK(a && b);
    CHECK_OK(xlock_namespace_id(&dev1, &ino1, a));
    CHECK_OK(xlock_namespace_id(&dev2, &ino2, b));
    CHECK(dev1 == dev2 && ino1 == ino2);
    /* Writable by others without the sticky bit: a new object sees it and refuses [XL-NS-7]. */
    CHECK(chmod(ns, 0777) == 0);
    xlock_options o = tl_opts(ns);
    xlock_t *c = NULL;
    CHECK_RC(xlock_open(&c, "c", &o), XLOCK_EINSECURE);
    CHECK(chmod(ns, 0700) == 0);
    /* Another directory at the path: the new object uses it, the old ones keep theirs. */
    char moved[4096];
    snprintf(moved, sizeof moved, "%s.old", ns);
    CHECK(rename(ns, moved) == 0);
    CHECK(mkdir(ns, 0700) == 0);
    c = open_lock(ns, "a");
    CHECK(c != NULL);
    CHECK_OK(xlock_namespace_id(&dev2, &ino2, c));
    CHECK(ino2 != ino1);
    CHECK_OK(xlock_acquire(a, -1));
    CHECK_OK(xlock_try_acquire(c)); /* a different file: a's directory is not at the path */
    xlock_close(c);
    /* A symbolic link at the path is refused, never reused [XL-NS-5]. */
    tl_remove_tree(ns);
    CHECK(symlink(moved, ns) == 0);
    CHECK_RC(xlock_open(&c, "a", &o), XLOCK_EINSECURE);
    xlock_close(a);
    xlock_close(b);
    unlink(ns);
    CHECK(rename(moved, ns) == 0);
}

static int child_excluded(void *arg)
{
    const char *ns = arg;
    xlock_t *a = open_lock(ns, "a"), *b = open_lock(ns, "b");
    int rc = a && b && xlock_try_acquire(a) == XLOCK_EWOULDBLOCK && xlock_try_acquire(b) == 0 ? 0 : 1;
    xlock_close(a);
    xlock_close(b);
    return rc;
}

/* After fork the child keeps using the shared namespace: its objects exclude with the parent's
 * [XL-NS-16, XL-HOLD-7]. */
static void forked_child_uses_the_shared_namespace(void)
{
    const char *ns = tl_ns();
    xlock_t *a = open_lock(ns, "a");
    CHECK(a != NULL);
    CHECK_OK(xlock_acquire(a, -1));
    pid_t pid = tl_fork(child_excluded, (void *)ns);
    int status = tl_wait(pid);
    xlock_close(a);
    CHECK(status == 0);
}

/* 255 of 256 permits held by one object: another object's acquire finds the free one, and the
 * next round starts at it (the system calls per acquire are counted by syscalls_test.py). */
static void semaphore_rounds_start_at_the_remembered_slot(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_sem_t *a = NULL, *b = NULL;
    CHECK_OK(xlock_sem_open(&a, "s", 256, &o));
    CHECK_OK(xlock_sem_open(&b, "s", 256, &o));
    for (int i = 0; i < 255; i++)
        CHECK(xlock_sem_acquire(a, -1) >= 0);
    int slot = xlock_sem_acquire(b, 0);
    CHECK(slot >= 0);
    CHECK_RC(xlock_sem_try_acquire(b), XLOCK_EWOULDBLOCK); /* never its own slot twice */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(xlock_sem_release(b));
        CHECK_RC(xlock_sem_acquire(b, 100), slot);
    }
    CHECK_OK(xlock_sem_release(a));
    CHECK(xlock_sem_acquire(b, 0) >= 0); /* the one a freed */
    CHECK(xlock_sem_held(b) == 2);
    xlock_sem_close(a);
    xlock_sem_close(b);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(ten_thousand_objects_one_descriptor_each),
        TL_CASE(namespace_is_shared_and_reconfirmed),
        TL_CASE(forked_child_uses_the_shared_namespace),
        TL_CASE(semaphore_rounds_start_at_the_remembered_slot),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
