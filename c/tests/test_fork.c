/* Fork: a child never holds or releases the parent's lock or permits, and does not keep them
 * alive [XL-HOLD-7, XL-HOLD-8, XL-CSEM-6]. */
#include "testlib.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    xlock_t *l;
    xlock_sem_t *s;
    tl_pipe *to, *from;
} fork_args;

static int child_of_holder(void *arg)
{
    fork_args *a = arg;
    if (xlock_locked(a->l) != 0)
        return 10;
    if (xlock_release(a->l) != XLOCK_ENOTHELD) /* never flock(LOCK_UN) the parent's lock */
        return 11;
    if (xlock_try_acquire(a->l) != XLOCK_EWOULDBLOCK) /* a fresh descriptor, not the parent's */
        return 12;
    if (xlock_acquire(a->l, 20) != XLOCK_ETIMEDOUT)
        return 13;
    if (xlock_sem_held(a->s) != 0 || xlock_sem_release(a->s) != XLOCK_ENOTHELD)
        return 14;
    if (xlock_sem_try_acquire(a->s) != XLOCK_EWOULDBLOCK)
        return 15;
    tl_send(a->from, 'c'); /* checked; now wait for the parent to release */
    if (tl_recv(a->to) != 'r')
        return 16;
    if (xlock_acquire(a->l, 10000) != 0 || xlock_release(a->l) != 0) /* usable afterwards */
        return 17;
    if (xlock_sem_acquire(a->s, 10000) != 0 || xlock_sem_release(a->s) != 0)
        return 18;
    xlock_close(a->l);
    xlock_sem_close(a->s);
    return 0;
}

static void child_never_releases_parents_lock(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_t *l, *probe;
    xlock_sem_t *s;
    CHECK_OK(xlock_open(&l, "forked", &o));
    CHECK_OK(xlock_open(&probe, "forked", &o));
    CHECK_OK(xlock_sem_open(&s, "forked", 1, &o));
    CHECK_OK(xlock_acquire(l, -1));
    CHECK_RC(xlock_sem_acquire(s, -1), 0);
    tl_pipe to, from;
    tl_pipe_open(&to);
    tl_pipe_open(&from);
    fork_args a = {l, s, &to, &from};
    pid_t pid = tl_fork(child_of_holder, &a);
    int c = tl_recv(&from);
    /* The child's release attempts changed nothing here. */
    CHECK_RC(xlock_locked(l), 1);
    CHECK_RC(xlock_try_acquire(probe), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_sem_held(s), 1);
    CHECK_OK(xlock_release(l));
    CHECK_OK(xlock_sem_release(s));
    tl_send(&to, 'r');
    int status = tl_wait(pid);
    CHECK(c == 'c');
    CHECK(status == 0);
    tl_pipe_close(&to);
    tl_pipe_close(&from);
    xlock_close(l);
    xlock_close(probe);
    xlock_sem_close(s);
}

/* A holder forks a long-lived child and is killed: the lock is free at once, because the child
 * closed the inherited descriptors in the at-fork handler [XL-HOLD-8, XL-HOLD-10]. */
typedef struct {
    const char *ns;
    tl_pipe *ready;
} holder_args;

static int forking_holder(void *arg)
{
    holder_args *a = arg;
    xlock_options o = tl_opts(a->ns);
    xlock_t *l;
    xlock_sem_t *s;
    if (xlock_open(&l, "inherited", &o) != 0 || xlock_acquire(l, -1) != 0)
        return 3;
    if (xlock_sem_open(&s, "inherited", 1, &o) != 0 || xlock_sem_acquire(s, -1) != 0)
        return 4;
    pid_t child = fork();
    if (child == 0) { /* lives until the test kills it; it never exits by itself */
        /* 'g' and the pid in one write (atomic on a pipe), so the parent's 'h' cannot fall between. */
        char msg[1 + sizeof(pid_t)] = {'g'};
        pid_t self = getpid();
        memcpy(msg + 1, &self, sizeof self);
        if (write(a->ready->w, msg, sizeof msg) != (ssize_t)sizeof msg)
            _exit(1);
        for (;;)
            pause();
    }
    tl_send(a->ready, 'h');
    pause();
    return 5;
}

static void child_does_not_keep_lock_alive(void)
{
    const char *ns = tl_ns();
    tl_pipe ready;
    tl_pipe_open(&ready);
    holder_args a = {ns, &ready};
    pid_t pid = tl_fork(forking_holder, &a);
    pid_t grandchild = 0;
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        int c = tl_recv(&ready);
        if (c == 'h')
            seen |= 1;
        if (c == 'g' && read(ready.r, &grandchild, sizeof grandchild) == sizeof grandchild)
            seen |= 2; /* the grandchild runs: its at-fork child handler has run */
    }
    xlock_options o = tl_opts(ns);
    xlock_t *l = NULL;
    xlock_sem_t *s = NULL;
    int open_rc = seen == 3 ? xlock_open(&l, "inherited", &o) : XLOCK_EINVAL;
    if (open_rc == 0)
        open_rc = xlock_sem_open(&s, "inherited", 1, &o);
    int held_rc = open_rc == 0 ? xlock_try_acquire(l) : open_rc;
    kill(pid, SIGKILL);
    tl_wait(pid);
    int lock_rc = l ? xlock_try_acquire(l) : open_rc;
    int sem_rc = s ? xlock_sem_try_acquire(s) : open_rc;
    /* Ends the grandchild before any check can return: it holds the test's stdout open. */
    if (grandchild > 0)
        kill(grandchild, SIGKILL);
    tl_pipe_close(&ready);
    CHECK(seen == 3);
    CHECK_OK(open_rc);
    CHECK_RC(held_rc, XLOCK_EWOULDBLOCK);
    CHECK_OK(lock_rc);
    CHECK_RC(sem_rc, 0);
    xlock_close(l);
    xlock_sem_close(s);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(child_never_releases_parents_lock),
        TL_CASE(child_does_not_keep_lock_alive),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
