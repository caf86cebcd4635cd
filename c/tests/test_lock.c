/* Locks: acquire/release, exclusion across objects, threads and processes, shared locks, try,
 * timeouts, blocking waits, the bell, foreign flock, reentrancy, removal [§6-§9]. */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static xlock_t *open_lock(const char *ns, const char *name, int shared, int reentrant)
{
    xlock_options o = tl_opts(ns);
    o.shared = shared;
    o.reentrant = reentrant;
    xlock_t *l = NULL;
    if (xlock_open(&l, name, &o) != 0)
        tl_fail(__FILE__, __LINE__, "xlock_open(%s): %s", name, xlock_last_message());
    return l;
}

/* A thread running xlock_acquire(l, timeout) and recording the result. */
typedef struct {
    pthread_t thread;
    xlock_t *l;
    long long timeout_ms;
    int rc;
    int release_after; /* release right after acquiring (in the same thread) */
    long long done_ms;
    pid_t tid;
} acquirer;

static void *acquirer_main(void *arg)
{
    acquirer *a = arg;
    __atomic_store_n(&a->tid, tl_gettid(), __ATOMIC_SEQ_CST);
    a->rc = xlock_acquire(a->l, a->timeout_ms);
    a->done_ms = tl_ms();
    if (a->rc == 0 && a->release_after)
        a->rc = xlock_release(a->l);
    return NULL;
}

static void start(acquirer *a, xlock_t *l, long long timeout_ms, int release_after)
{
    a->l = l;
    a->timeout_ms = timeout_ms;
    a->release_after = release_after;
    a->rc = 99;
    a->tid = 0;
    pthread_create(&a->thread, NULL, acquirer_main, a);
}

/* Waits until the acquirer sleeps on its bell word (FUTEX_WAIT_BITSET) [XL-WAIT-12]. */
static int in_bell_wait(acquirer *a)
{
    return tl_wait_in_syscall(&a->tid, SYS_futex);
}

static void basic_acquire_release(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "Billing export", 0, 0);
    CHECK(l != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/!billing%%20export.lock", ns);
    CHECK(strcmp(xlock_path(l), path) == 0);
    CHECK(strcmp(xlock_namespace(l), ns) == 0);
    CHECK(strcmp(xlock_name(l), "Billing export") == 0);
    struct stat st, nst;
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);
    CHECK((st.st_mode & 07777) == 0600); /* [XL-NS-13] */
    unsigned long long dev, ino;
    CHECK_OK(xlock_namespace_id(&dev, &ino, l));
    CHECK(stat(ns, &nst) == 0 && dev == (unsigned long long)nst.st_dev &&
          ino == (unsigned long long)nst.st_ino);
    /* No POSIX semaphore for a lock [XL-SEM-2]: the bell of the namespace instead [XL-BELL-1]. */
    char sem[XLOCK_SEM_NAME_SIZE], shm[64], bell[512];
    CHECK_RC(xlock_semaphore_name(sem, sizeof sem, 'l', dev, ino, "Billing export", 14), 30);
    snprintf(shm, sizeof shm, "/dev/shm/sem.%s", sem + 1);
    CHECK(access(shm, F_OK) != 0 && errno == ENOENT);
    CHECK(xlock_semaphore(l) == NULL); /* deprecated */
    snprintf(bell, sizeof bell, "%s/.xlock-bell", ns);
    CHECK(strcmp(xlock_bell(l), bell) == 0);
    CHECK(stat(bell, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4096);
    CHECK((st.st_mode & 07777) == 0600); /* [XL-NS-13, XL-BELL-2] */
    CHECK(strcmp(xlock_bell_status(l), "usable") == 0);
    CHECK_RC(xlock_lock_bell_word(l), xlock_bell_word('l', "Billing export", 14));
    CHECK_RC(xlock_sharing(l), XLOCK_SHARING_PRIVATE);
    CHECK_RC(xlock_is_shared(l), 0);
    CHECK_RC(xlock_is_reentrant(l), 0);
    CHECK_RC(xlock_locked(l), 0);
    CHECK_OK(xlock_acquire(l, -1));
    CHECK_RC(xlock_locked(l), 1);
    CHECK_OK(xlock_release(l));
    CHECK_RC(xlock_locked(l), 0);
    CHECK_RC(xlock_release(l), XLOCK_ENOTHELD); /* [XL-HOLD-6] */
    CHECK(strstr(xlock_last_message(), "Billing export") != NULL);
    CHECK(strstr(xlock_last_message(), path) != NULL); /* [XL-ERR-3] */
    CHECK_OK(xlock_try_acquire(l));
    CHECK_OK(xlock_release(l));
    CHECK_OK(xlock_acquire(l, 0));
    CHECK_OK(xlock_release(l));
    CHECK(stat(path, &st) == 0); /* lock files persist [XL-RM-1] */
    xlock_close(l);
    xlock_close(NULL);
}

/* Two objects for one name exclude each other, also in one thread [XL-HOLD-1, XL-WAIT-1, XL-WAIT-3]. */
static void two_objects_exclude_in_one_thread(void)
{
    const char *ns = tl_ns();
    xlock_t *a = open_lock(ns, "x", 0, 0), *b = open_lock(ns, "x", 0, 0);
    CHECK(a && b);
    CHECK_OK(xlock_try_acquire(a));
    CHECK_RC(xlock_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_acquire(b, 0), XLOCK_ETIMEDOUT); /* timeout 0: TIMEOUT, not WOULD_BLOCK */
    CHECK_RC(xlock_locked(b), 0);
    CHECK_OK(xlock_release(a));
    CHECK_OK(xlock_try_acquire(b));
    CHECK_RC(xlock_try_acquire(a), XLOCK_EWOULDBLOCK);
    xlock_close(b); /* closing releases [XL-HOLD-10] */
    CHECK_OK(xlock_try_acquire(a));
    xlock_close(a);
}

/* A timed wait fails no earlier than its deadline, with a message naming the lock [XL-WAIT-3]. */
static void timed_wait_times_out_at_deadline(void)
{
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "t", 0) == 0);
    xlock_t *l = open_lock(ns, "t", 0, 0);
    long long t0 = tl_ms();
    CHECK_RC(xlock_acquire(l, 120), XLOCK_ETIMEDOUT);
    CHECK(tl_ms() - t0 >= 120);
    CHECK(strstr(xlock_last_message(), "'t'") && strstr(xlock_last_message(), "120 ms"));
    CHECK_RC(xlock_locked(l), 0);
    CHECK_RC(xlock_try_acquire(l), XLOCK_EWOULDBLOCK);
    CHECK(tl_holder_stop(&h) == 0);
    CHECK_OK(xlock_acquire(l, 0));
    xlock_close(l);
}

/* Exclusion across processes; an untimed waiter blocks in flock and gets the lock at the release
 * [XL-WAIT-2]. */
static void untimed_waiter_blocks_in_flock_until_release(void)
{
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "job", 0) == 0);
    xlock_t *l = open_lock(ns, "job", 0, 0);
    CHECK_RC(xlock_try_acquire(l), XLOCK_EWOULDBLOCK);
    acquirer a;
    start(&a, l, -1, 0);
    CHECK(tl_wait_flock_waiter(xlock_path(l)) == 0); /* it waits in the kernel, not polling */
    CHECK(tl_holder_stop(&h) == 0);
    pthread_join(a.thread, NULL);
    CHECK_OK(a.rc);
    CHECK_RC(xlock_locked(l), 1);
    xlock_close(l);
}

/* The death of a holder releases its lock at once [XL-HOLD-10]: a blocking waiter in flock and a
 * timed waiter in the bell loop (no ring: the safety poll notices) both get it. */
static void killed_holder_releases(void)
{
    const char *ns = tl_ns();
    tl_holder h;
    xlock_t *l = open_lock(ns, "crash", 0, 0);
    acquirer a;
    for (int timed = 0; timed < 2; timed++) {
        CHECK(tl_holder_start(&h, ns, "crash", 0) == 0);
        start(&a, l, timed ? 20000 : -1, 1);
        if (timed)
            CHECK(in_bell_wait(&a) == 0);
        else
            CHECK(tl_wait_flock_waiter(xlock_path(l)) == 0);
        tl_holder_kill(&h);
        pthread_join(a.thread, NULL);
        CHECK_OK(a.rc); /* acquired (and released) */
    }
    xlock_close(l);
}

/* Word i of the bell file at path (read through the file, not a mapping). */
static uint32_t bell_word_value(const char *path, int i)
{
    uint32_t v = 0xffffffffu;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && pread(fd, &v, 4, (off_t)i * 4) != 4)
        v = 0xffffffffu;
    if (fd >= 0)
        close(fd);
    return v;
}

/* A timed waiter is woken when the holder (another process) releases [XL-WAIT-12, XL-BELL-6]. */
static void timed_waiter_gets_lock_after_release(void)
{
    const char *ns = tl_ns();
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "tw", 0) == 0);
    xlock_t *l = open_lock(ns, "tw", 0, 0);
    acquirer a;
    start(&a, l, 20000, 0);
    CHECK(in_bell_wait(&a) == 0);
    CHECK(tl_holder_stop(&h) == 0);
    pthread_join(a.thread, NULL);
    CHECK_OK(a.rc);
    CHECK_OK(xlock_release(l));
    /* The holder's release rang the word: bit 0 (a waiter announced) is clear again and the ring
     * count moved; releases with nobody waiting leave the word alone [XL-BELL-6]. */
    int w = xlock_lock_bell_word(l);
    uint32_t v = bell_word_value(xlock_bell(l), w);
    CHECK(v != 0 && v != 0xffffffffu && (v & 1) == 0);
    for (int i = 0; i < 5; i++) {
        CHECK_OK(xlock_acquire(l, -1));
        CHECK_OK(xlock_release(l));
    }
    CHECK(bell_word_value(xlock_bell(l), w) == v);
    xlock_close(l);
}

/* A foreign flock(2) holder (like flock(1)) excludes xlock, and its release, which rings no
 * bell, is noticed by the safety poll [XL-LOCK-11, XL-WAIT-7, XL-FOREIGN-1]. */
static void foreign_flock_excludes_and_is_noticed(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "foreign", 0, 0);
    CHECK(l);
    int fd = open(xlock_path(l), O_RDWR);
    CHECK(fd >= 0);
    CHECK(flock(fd, LOCK_EX) == 0);
    CHECK_RC(xlock_try_acquire(l), XLOCK_EWOULDBLOCK);
    acquirer a;
    start(&a, l, 20000, 0);
    CHECK(in_bell_wait(&a) == 0);
    long long t0 = tl_ms();
    CHECK(flock(fd, LOCK_UN) == 0);
    pthread_join(a.thread, NULL);
    CHECK_OK(a.rc);
    /* A generous bound proving the poll, not the 20 s deadline, ended the wait. */
    CHECK(a.done_ms - t0 < 5000);
    CHECK(flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK);
    CHECK_OK(xlock_release(l));
    CHECK(flock(fd, LOCK_SH | LOCK_NB) == 0);
    close(fd);
    xlock_close(l);
}

/* A bell that cannot be used does not make acquisition fail: waiters fall back to the safety
 * poll and releasers skip the ring [XL-BELL-8]. A directory squats the bell's name. */
static void unusable_bell_falls_back_to_polling(void)
{
    const char *ns = tl_ns();
    char bell[512];
    snprintf(bell, sizeof bell, "%s/.xlock-bell", ns);
    CHECK(mkdir(bell, 0700) == 0);
    xlock_t *a = open_lock(ns, "no-bell", 0, 0), *b = open_lock(ns, "no-bell", 0, 0);
    int ok = a && b && strcmp(xlock_bell_status(a), "usable") != 0;
    acquirer w;
    if (ok && xlock_acquire(a, -1) == 0) {
        start(&w, b, 20000, 0);
        ok = tl_wait_in_syscall(&w.tid, SYS_clock_nanosleep) == 0; /* sleeping in the poll slices */
        ok = xlock_release(a) == 0 && ok;
        pthread_join(w.thread, NULL);
        ok = ok && w.rc == 0;
    } else {
        ok = 0;
    }
    xlock_close(a);
    xlock_close(b);
    rmdir(bell);
    CHECK(ok);
}

/* Shared locks share; exclusive ones exclude them, across objects and processes [XL-LOCK-7]. */
static void shared_locks(void)
{
    const char *ns = tl_ns();
    xlock_t *s1 = open_lock(ns, "r", 1, 0), *s2 = open_lock(ns, "r", 1, 0);
    xlock_t *x = open_lock(ns, "r", 0, 0);
    CHECK(s1 && s2 && x);
    CHECK_RC(xlock_is_shared(s1), 1);
    CHECK_OK(xlock_acquire(s1, -1));
    CHECK_OK(xlock_acquire(s2, 0));
    CHECK_RC(xlock_try_acquire(x), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_release(s1));
    CHECK_RC(xlock_acquire(x, 30), XLOCK_ETIMEDOUT);
    CHECK_OK(xlock_release(s2));
    CHECK_OK(xlock_try_acquire(x));
    CHECK_RC(xlock_try_acquire(s1), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_release(x));
    tl_holder h;
    CHECK(tl_holder_start(&h, ns, "r", 1) == 0); /* a shared holder in another process */
    CHECK_OK(xlock_try_acquire(s1));
    CHECK_RC(xlock_try_acquire(x), XLOCK_EWOULDBLOCK);
    /* Two shared waiters behind an exclusive holder both get in after its release: every waiter on
     * a word wakes [XL-BELL-6]. */
    CHECK_OK(xlock_release(s1));
    CHECK(tl_holder_stop(&h) == 0);
    CHECK_OK(xlock_acquire(x, -1));
    acquirer a1, a2;
    start(&a1, s1, 20000, 0);
    start(&a2, s2, 20000, 0);
    CHECK(in_bell_wait(&a1) == 0 && in_bell_wait(&a2) == 0);
    CHECK_OK(xlock_release(x));
    pthread_join(a1.thread, NULL);
    pthread_join(a2.thread, NULL);
    CHECK_OK(a1.rc);
    CHECK_OK(a2.rc);
    CHECK_RC(xlock_locked(s1), 1);
    CHECK_RC(xlock_locked(s2), 1);
    xlock_close(s1);
    xlock_close(s2);
    xlock_close(x);
}

/* The holding thread cannot acquire a non-reentrant object again [XL-HOLD-3]. */
static void same_thread_reacquire_is_already_held(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "self", 0, 0);
    CHECK_OK(xlock_acquire(l, -1));
    CHECK_RC(xlock_acquire(l, -1), XLOCK_EALREADY);
    CHECK(strstr(xlock_last_message(), "XL-HOLD-3") != NULL);
    CHECK_RC(xlock_acquire(l, 100), XLOCK_EALREADY);
    CHECK_RC(xlock_try_acquire(l), XLOCK_EALREADY);
    CHECK_RC(xlock_locked(l), 1); /* still held, once */
    CHECK_OK(xlock_release(l));
    CHECK_RC(xlock_release(l), XLOCK_ENOTHELD);
    xlock_close(l);
}

static void *release_in_thread(void *arg)
{
    return (void *)(long)xlock_release(arg);
}

/* Reentrant objects count; only the holder releases [XL-HOLD-4]. */
static void reentrant_object_counts(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "re", 0, 1), *other = open_lock(ns, "re", 0, 0);
    CHECK(l && other);
    CHECK_RC(xlock_is_reentrant(l), 1);
    CHECK_OK(xlock_acquire(l, -1));
    CHECK_OK(xlock_acquire(l, 50));
    CHECK_OK(xlock_try_acquire(l));
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, release_in_thread, l);
    pthread_join(t, &ret);
    CHECK((long)ret == XLOCK_ENOTHELD); /* another thread may not release a reentrant hold */
    CHECK_OK(xlock_release(l));
    CHECK_OK(xlock_release(l));
    CHECK_RC(xlock_try_acquire(other), XLOCK_EWOULDBLOCK); /* count 1: still held */
    CHECK_OK(xlock_release(l));
    CHECK_RC(xlock_locked(l), 0);
    CHECK_OK(xlock_try_acquire(other));
    CHECK_RC(xlock_release(l), XLOCK_ENOTHELD);
    xlock_close(l);
    xlock_close(other);
}

/* Any thread may release a non-reentrant object [XL-HOLD-5]. */
static void release_from_another_thread(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "handover", 0, 0);
    CHECK_OK(xlock_acquire(l, -1));
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, release_in_thread, l);
    pthread_join(t, &ret);
    CHECK((long)ret == 0);
    CHECK_RC(xlock_locked(l), 0);
    xlock_close(l);
}

/* Threads sharing one object wait for each other in the process, honouring timeouts [XL-HOLD-2]. */
static void threads_share_one_object(void)
{
    const char *ns = tl_ns();
    xlock_t *l = open_lock(ns, "shared-object", 0, 0);
    CHECK_OK(xlock_acquire(l, -1));
    acquirer timed, untimed;
    start(&timed, l, 60, 0);
    pthread_join(timed.thread, NULL);
    CHECK_RC(timed.rc, XLOCK_ETIMEDOUT);
    start(&untimed, l, -1, 1);
    CHECK_OK(xlock_release(l));
    pthread_join(untimed.thread, NULL);
    CHECK_OK(untimed.rc); /* it acquired after our release, and released */
    CHECK_RC(xlock_locked(l), 0);
    xlock_close(l);
}

/* The counter stress: processes x threads x rounds, each round read-modify-write of a file under
 * the lock, with a mix of untimed, timed and try acquisitions. Nothing may be lost. */
typedef struct {
    const char *ns, *counter;
    int rounds;
    int mode;
} stress_args;

static int bump(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return -1;
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    long v = n > 0 ? atol(buf) : 0;
    sched_yield();
    int len = snprintf(buf, sizeof buf, "%ld\n", v + 1);
    int ok = ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)len, 0) == len;
    close(fd);
    return ok ? 0 : -1;
}

static void *stress_thread(void *arg)
{
    stress_args *a = arg;
    xlock_options o = tl_opts(a->ns);
    xlock_t *l;
    if (xlock_open(&l, "counter", &o) != 0)
        return (void *)1L;
    long bad = 0;
    for (int i = 0; i < a->rounds && !bad; i++) {
        int rc;
        switch ((i + a->mode) % 3) {
        case 0:
            rc = xlock_acquire(l, -1);
            break;
        case 1:
            rc = xlock_acquire(l, 20000);
            break;
        default:
            while ((rc = xlock_try_acquire(l)) == XLOCK_EWOULDBLOCK)
                sched_yield();
        }
        if (rc != 0 || bump(a->counter) != 0 || xlock_release(l) != 0)
            bad = 1;
    }
    xlock_close(l);
    return (void *)bad;
}

static int stress_process(void *arg)
{
    stress_args *a = arg;
    pthread_t t[2];
    stress_args args[2] = {*a, *a};
    args[1].mode = a->mode + 1;
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, stress_thread, &args[i]);
    long bad = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= (long)r;
    }
    return bad ? 1 : 0;
}

static void mutual_exclusion_stress(void)
{
    const char *ns = tl_ns();
    char counter[512];
    snprintf(counter, sizeof counter, "%s/counter.txt", tl_tmpdir());
    int rounds = (int)tl_scaled(300);
    stress_args a = {ns, counter, rounds, 0};
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        a.mode = i;
        pids[i] = tl_fork(stress_process, &a);
    }
    for (int i = 0; i < 3; i++)
        CHECK(tl_wait(pids[i]) == 0);
    FILE *f = fopen(counter, "r");
    CHECK(f != NULL);
    long v = -1;
    CHECK(fscanf(f, "%ld", &v) == 1);
    fclose(f);
    CHECK(v == 3L * 2 * rounds);
}

/* Safe removal [XL-RM-2, XL-RM-4]: refused while held; a waiter on the removed file never holds it. */
static void removal_is_safe(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_t *a = open_lock(ns, "gone", 0, 0), *b = open_lock(ns, "gone", 0, 0);
    CHECK(a && b);
    char path[512];
    snprintf(path, sizeof path, "%s", xlock_path(a));
    int removed = -1;
    CHECK_OK(xlock_acquire(a, -1));
    CHECK_RC(xlock_remove(&removed, "gone", &o), XLOCK_EWOULDBLOCK);
    CHECK(removed == 0 && access(path, F_OK) == 0);
    CHECK_OK(xlock_release(a));
    CHECK_OK(xlock_remove(&removed, "gone", &o));
    CHECK(removed == 1 && access(path, F_OK) != 0);
    CHECK_OK(xlock_remove(&removed, "gone", &o));
    CHECK(removed == 0);
    /* b still has the removed file open; c creates a new one and holds it. */
    xlock_t *c = open_lock(ns, "gone", 0, 0);
    CHECK_OK(xlock_acquire(c, -1));
    CHECK_RC(xlock_try_acquire(b), XLOCK_EWOULDBLOCK); /* re-checked, re-opened the new file */
    CHECK_RC(xlock_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_release(c));
    CHECK_OK(xlock_acquire(b, 1000));
    CHECK_RC(xlock_try_acquire(c), XLOCK_EWOULDBLOCK);
    xlock_close(a);
    xlock_close(b);
    xlock_close(c);
    CHECK_RC(xlock_remove(NULL, "gone", &o), XLOCK_EINVAL);
    CHECK_RC(xlock_remove(&removed, "a\nb", &o), XLOCK_EINVALNAME);
    CHECK_RC(xlock_remove(&removed, NULL, &o), XLOCK_EINVAL);
}

/* A lock file taken from its path while held (rm, or a rename over it) is noticed by the re-check
 * of [XL-LOCK-8]: an acquirer whose flock succeeds on the old file drops it and moves to the file
 * now at the path, both on a non-blocking attempt and in a blocking flock wait [XL-RM-4]. */
static void path_taken_away(int by_rename)
{
    const char *ns = tl_ns();
    xlock_t *a = open_lock(ns, "moved", 0, 0), *b = open_lock(ns, "moved", 0, 0);
    CHECK(a && b);
    const char *path = xlock_path(a);
    /* Non-blocking: b keeps a descriptor on the old file, c locks the new one. */
    CHECK_OK(xlock_acquire(a, -1));
    CHECK_RC(xlock_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK(tl_take_path_away(path, by_rename) == 0);
    xlock_t *c = open_lock(ns, "moved", 0, 0);
    CHECK(c != NULL);
    CHECK_OK(xlock_try_acquire(c)); /* a's old file does not exclude the new one */
    CHECK_OK(xlock_release(a));
    CHECK_RC(xlock_try_acquire(b), XLOCK_EWOULDBLOCK); /* flock on the old file, then re-opened */
    CHECK_RC(xlock_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_release(c));
    /* Blocking: b waits in flock on c's file when it is taken away and d locks the new one. */
    CHECK_OK(xlock_acquire(c, -1));
    acquirer w;
    start(&w, b, -1, 0);
    CHECK(tl_wait_flock_waiter(path) == 0);
    CHECK(tl_take_path_away(path, by_rename) == 0);
    xlock_t *d = open_lock(ns, "moved", 0, 0);
    CHECK(d != NULL);
    CHECK_OK(xlock_try_acquire(d));
    CHECK_OK(xlock_release(c));             /* b's flock on the old file succeeds; it must not keep it */
    CHECK(tl_wait_flock_waiter(path) == 0); /* b now waits on the file at the path */
    CHECK_RC(xlock_locked(b), 0);
    CHECK_OK(xlock_release(d));
    pthread_join(w.thread, NULL);
    CHECK_OK(w.rc);
    CHECK_RC(xlock_try_acquire(c), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_try_acquire(d), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_release(b));
    CHECK_OK(xlock_try_acquire(d));
    xlock_close(a);
    xlock_close(b);
    xlock_close(c);
    xlock_close(d);
}

static void unlinked_lock_file_is_reopened(void)
{
    path_taken_away(0);
}
static void lock_file_renamed_over_is_reopened(void)
{
    path_taken_away(1);
}

/* Every NULL and bad argument documented in xlock.h gets a typed error. */
static void bad_arguments(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_t *l = (xlock_t *)1;
    CHECK_RC(xlock_open(NULL, "x", &o), XLOCK_EINVAL);
    CHECK_RC(xlock_open(&l, NULL, &o), XLOCK_EINVAL);
    CHECK(l == NULL);
    l = (xlock_t *)1;
    CHECK_RC(xlock_open(&l, "bad\tname", &o), XLOCK_EINVALNAME);
    CHECK(l == NULL);
    CHECK(strstr(xlock_last_message(), "XL-NAME-2") != NULL);
    CHECK_RC(xlock_open_n(&l, "a\0b", 3, &o), XLOCK_EINVALNAME);
    CHECK_RC(xlock_open(&l, "", &o), XLOCK_EINVALNAME);
    char long_name[82];
    memset(long_name, 'n', 81);
    long_name[81] = '\0';
    CHECK_RC(xlock_open(&l, long_name, &o), XLOCK_EINVALNAME);
    xlock_options old = o;
    old.version = 99;
    CHECK_RC(xlock_open(&l, "x", &old), XLOCK_EINVAL);
    /* Nothing was created by the failed opens [XL-NAME-3]. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", ns);
    CHECK(system(cmd) == 0);
    CHECK_RC(xlock_acquire(NULL, -1), XLOCK_EINVAL);
    CHECK_RC(xlock_acquire_token(NULL, -1, 0), XLOCK_EINVAL);
    CHECK_RC(xlock_try_acquire(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_release(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_locked(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_cancel(NULL), XLOCK_EINVAL);
    CHECK(xlock_cancel_token(NULL) == 0);
    CHECK_RC(xlock_is_shared(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_is_reentrant(NULL), XLOCK_EINVAL);
    CHECK(xlock_name(NULL) == NULL && xlock_path(NULL) == NULL && xlock_namespace(NULL) == NULL &&
          xlock_semaphore(NULL) == NULL);
    unsigned long long dev, ino;
    CHECK_RC(xlock_namespace_id(&dev, &ino, NULL), XLOCK_EINVAL);
    CHECK_OK(xlock_open(&l, "x", &o));
    CHECK_RC(xlock_namespace_id(NULL, &ino, l), XLOCK_EINVAL);
    CHECK_RC(xlock_namespace_id(&dev, NULL, l), XLOCK_EINVAL);
    xlock_close(l);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(basic_acquire_release),
        TL_CASE(two_objects_exclude_in_one_thread),
        TL_CASE(timed_wait_times_out_at_deadline),
        TL_CASE(untimed_waiter_blocks_in_flock_until_release),
        TL_CASE(killed_holder_releases),
        TL_CASE(timed_waiter_gets_lock_after_release),
        TL_CASE(foreign_flock_excludes_and_is_noticed),
        TL_CASE(unusable_bell_falls_back_to_polling),
        TL_CASE(shared_locks),
        TL_CASE(same_thread_reacquire_is_already_held),
        TL_CASE(reentrant_object_counts),
        TL_CASE(release_from_another_thread),
        TL_CASE(threads_share_one_object),
        TL_CASE(mutual_exclusion_stress),
        TL_CASE(removal_is_safe),
        TL_CASE(unlinked_lock_file_is_reopened),
        TL_CASE(lock_file_renamed_over_is_reopened),
        TL_CASE(bad_arguments),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
