"""The C declarations xlock uses, in one place: for the ABI-mode fallback (``_libc`` parses ``ABI_CDEF`` at
import) and for the compiled module ``xlock._xlock_c`` (``_ffi_build`` adds ``API_CDEF`` and ``C_SOURCE``).

Plain string constants only: importing this module parses nothing. Bump ``C_VERSION`` with every change
of ``API_CDEF`` or ``C_SOURCE``: ``_libc`` does not use a compiled module built from other sources (a
stale in-place build), it falls back to ABI mode and ``xlock.build_info()`` says why.
"""

from __future__ import annotations

__all__ = ["ABI_CDEF", "API_CDEF", "C_SOURCE", "C_VERSION", "MODULE"]

MODULE = "xlock._xlock_c"
C_VERSION = 14

ABI_CDEF = """
    struct timespec { long tv_sec; long tv_nsec; };
    long syscall(long number, ...);
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
    int munmap(void *addr, size_t length);
    int sem_init(void *sem, int pshared, unsigned int value);
    int sem_post(void *sem);
    int sem_wait(void *sem);
    int sem_trywait(void *sem);
    int sem_timedwait(void *sem, const struct timespec *abstime);
    int sem_clockwait(void *sem, int clockid, const struct timespec *abstime);
    int sem_getvalue(void *sem, int *sval);
    int fstatfs(int fd, void *buf);
    int statx(int dirfd, const char *pathname, int flags, unsigned int mask, void *statxbuf);
    int fstat(int fd, void *statbuf);
    int prctl(int option, ...);
"""

# The hot paths as single C calls (compiled module only). Outcomes of xl_lock and xl_wait_step:
# 0 locked (and still named, XL-LOCK-8), 1 busy (LOCK_NB), 2 gone (locked a file without a name: unlocked
# again, the caller reopens), 3 flock failed (errno), 4 the re-check failed (errno; unlocked again),
# 5 waited (a safety poll came, or a signal: go round again), 6 timed out.
API_CDEF = """
    int xl_c_version(void);
    int xl_lock(int fd, int op, int dirfd, const char *name, unsigned long long dev,
                unsigned long long ino);
    int xl_named(int fd, int dirfd, const char *name, unsigned long long dev, unsigned long long ino);
    int xl_open_regular(int dirfd, const char *name, int flags, unsigned long long *out);
    int xl_names_dir(const char *path, unsigned long long dev, unsigned long long ino, unsigned int uid,
                     unsigned int mode);
    int xl_unlock_ring(int fd, uint32_t *word, int bellfd, int shared);
    void xl_ring(uint32_t *word, int bellfd, int shared);
    long long xl_announce(uint32_t *word, int bellfd, int shared);
    int xl_sleep(uint32_t *word, long long value, long long wake_ns);
    long long xl_next_poll(long long start_ns, long long now_ns);
    int xl_wait_step(uint32_t *word, int bellfd, int shared, int fd, int op, int dirfd, const char *name,
                     unsigned long long dev, unsigned long long ino, long long start_ns,
                     long long deadline_ns);
    struct xl_hold { long state; unsigned long owner; long waiters; int fd; ...; };
    long xl_hold_init(struct xl_hold *h, int op, uint32_t *word, int bellfd, int shared, int fd, int dirfd,
                      const char *name, unsigned long long dev, unsigned long long ino);
    long xl_hold_give(struct xl_hold *h, int fd, int dirfd, const char *name, unsigned long long dev,
                      unsigned long long ino);
    long xl_hold_swap(struct xl_hold *h, long from, long to);
    void xl_hold_pass(struct xl_hold *h, unsigned long owner, int fd, int dirfd, const char *name,
                      unsigned long long dev, unsigned long long ino);
    long xl_hold_waiting(struct xl_hold *h, long delta);
    int xl_hold_lock(struct xl_hold *h);
    int xl_hold_wait(struct xl_hold *h);
    int xl_hold_wait_step(struct xl_hold *h, int begin, long long start_ns, long long deadline_ns);
    int xl_hold_last(void);
    int xl_sem_wait_step(uint32_t *word, int bellfd, int shared, const int *fds, int n, int start, int *got,
                         long long start_ns, long long deadline_ns);
    long xl_hold_unlock(struct xl_hold *h);
"""

C_SOURCE = r"""
/* XL_C_VERSION: defined by _ffi_build from C_VERSION */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

enum { XL_LOCKED, XL_BUSY, XL_GONE, XL_EFLOCK, XL_ESTAT, XL_WAITED, XL_TIMEDOUT };
#define XL_MS 1000000LL
#define XL_BELL_WORDS 1024

static int xl_c_version(void) { return XL_C_VERSION; }

/* [XL-LOCK-8] 1: the locked file still has a name (strict: the path names dev/ino); 0: it has not;
   -1: the check failed (errno). */
static int xl_named(int fd, int dirfd, const char *name, unsigned long long dev, unsigned long long ino)
{
    struct stat st;
    if (name != NULL) {
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? 0 : -1;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    }
#ifdef SYS_fstat
    /* the fd-only system call: no empty path to copy in, unlike glibc's fstat (newfstatat) */
    if (syscall(SYS_fstat, fd, &st) != 0)
        return -1;
#else
    if (fstat(fd, &st) != 0)
        return -1;
#endif
    return st.st_nlink > 0;
}

/* openat(dirfd, name, flags) and fstat of what was opened [XL-LOCK-1, XL-LOCK-5]: the descriptor of a
   regular file, with its st_dev and st_ino in out[0] and out[1] (out may be NULL); -1: the open or fstat
   failed (errno); -2: not a regular file (closed again). */
static int xl_open_regular(int dirfd, const char *name, int flags, unsigned long long *out)
{
    struct stat st;
    int fd = openat(dirfd, name, flags), saved;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -2;
    }
    if (out != NULL) {
        out[0] = st.st_dev;
        out[1] = st.st_ino;
    }
    return fd;
}

/* [XL-NS-16] 1 if lstat(path) finds a directory with this st_dev, st_ino, owner and permission bits. */
static int xl_names_dir(const char *path, unsigned long long dev, unsigned long long ino, unsigned int uid,
                        unsigned int mode)
{
    struct stat st;
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    return S_ISDIR(st.st_mode) && (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino
        && st.st_uid == uid && (st.st_mode & 07777) == mode;
}

/* flock(fd, op), then the re-check; a file without a name is unlocked again (XL_GONE). */
static int xl_lock(int fd, int op, int dirfd, const char *name, unsigned long long dev,
                   unsigned long long ino)
{
    int named, saved;
    if (flock(fd, op) != 0)
        return errno == EWOULDBLOCK ? XL_BUSY : XL_EFLOCK;
    named = xl_named(fd, dirfd, name, dev, ino);
    if (named == 1)
        return XL_LOCKED;
    saved = errno;
    flock(fd, LOCK_UN);
    errno = saved;
    return named == 0 ? XL_GONE : XL_ESTAT;
}

static long xl_futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts, uint32_t val3)
{
    return syscall(SYS_futex, word, op, val, ts, word, val3);
}

/* The word's value: an atomic load in a private namespace; pread in a shared one, where the mapping is
   never touched from user space [XL-BELL-5]. -1 if it cannot be read. */
static long long xl_read(uint32_t *word, int bellfd, int shared, uint32_t *base)
{
    uint32_t v;
    if (!shared)
        return __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (pread(bellfd, &v, 4, (off_t)((word - base) * 4)) != 4)
        return -1;
    return v;
}

/* The bell's base address: every word pointer given is base + index, index < 1024, and the mapping is
   page-aligned, so the base is the page of the word. */
static uint32_t *xl_base(uint32_t *word)
{
    return (uint32_t *)((uintptr_t)word & ~(uintptr_t)(XL_BELL_WORDS * 4 - 1));
}

/* [XL-BELL-6] wake every waiter if bit 0 is set; no system call otherwise (private namespace). */
static void xl_ring(uint32_t *word, int bellfd, int shared)
{
    long long v;
    if (word == NULL)
        return;
    v = xl_read(word, bellfd, shared, xl_base(word));
    if (v < 0 || !(v & 1))
        return;
    xl_futex(word, FUTEX_WAKE_OP, INT_MAX, NULL, FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0));
}

/* [XL-LOCK-9] flock(LOCK_UN), then the ring. */
static int xl_unlock_ring(int fd, uint32_t *word, int bellfd, int shared)
{
    int rc = flock(fd, LOCK_UN), saved = errno;
    xl_ring(word, bellfd, shared);
    errno = saved;
    return rc;
}

/* [XL-BELL-5] set bit 0 and read the word: an atomic fetch-or in a private namespace, FUTEX_WAKE_OP (OR 1,
   wakes nobody) and pread in a shared one. -1: the bell is not usable for this wait. */
static long long xl_announce(uint32_t *word, int bellfd, int shared)
{
    if (word == NULL)
        return -1;
    if (!shared)
        return __atomic_fetch_or(word, 1u, __ATOMIC_SEQ_CST) | 1u;
    if (xl_futex(word, FUTEX_WAKE_OP, 0, NULL, FUTEX_OP(FUTEX_OP_OR, 1, FUTEX_OP_CMP_EQ, 0)) < 0)
        return -1;
    return xl_read(word, bellfd, shared, xl_base(word));
}

/* [XL-WAIT-7] 1, 3, 7, 15, 31 ms after the start, then every 16 ms. */
static long long xl_next_poll(long long start_ns, long long now_ns)
{
    static const long long polls[] = {1 * XL_MS, 3 * XL_MS, 7 * XL_MS, 15 * XL_MS, 31 * XL_MS};
    long long elapsed = now_ns - start_ns;
    size_t i;
    for (i = 0; i < sizeof polls / sizeof polls[0]; i++)
        if (polls[i] > elapsed)
            return start_ns + polls[i];
    return start_ns + 31 * XL_MS + ((elapsed - 31 * XL_MS) / (16 * XL_MS) + 1) * 16 * XL_MS;
}

/* Step 5 of XL-WAIT-12: FUTEX_WAIT_BITSET on CLOCK_MONOTONIC until wake_ns, if the word still holds
   value (value < 0: no usable bell, sleep until wake_ns). Returns 0 (a ring, a changed word or a spurious
   wake-up), ETIMEDOUT (wake_ns came), or EINTR (a signal). */
static int xl_sleep(uint32_t *word, long long value, long long wake_ns)
{
    struct timespec ts;
    int rc;
    ts.tv_sec = wake_ns / 1000000000LL;
    ts.tv_nsec = wake_ns % 1000000000LL;
    if (word != NULL && value >= 0) {
        if (xl_futex(word, FUTEX_WAIT_BITSET, (uint32_t)value, &ts, FUTEX_BITSET_MATCH_ANY) == 0)
            return 0;
        if (errno == EINTR || errno == ETIMEDOUT)
            return errno;
        if (errno == EAGAIN)
            return 0;
    }
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    return rc == EINTR ? EINTR : ETIMEDOUT;
}

static long long xl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* XL-WAIT-12 after step 1: announce, try, check the deadline (< 0: none), sleep until the earlier of the
   deadline and the next safety poll; again at once after a ring (a release wakes every waiter, and most
   go back to sleep: without a return to Python each time). Returns to the caller at each safety poll
   (XL_WAITED: it checks cancellation and closing, then calls again), on a signal (XL_WAITED with
   errno EINTR: Python runs its handlers), and with any outcome but busy. The deadline and the poll are
   checked at every iteration, so rings cannot keep a waiter here past either [XL-WAIT-7]. */
/* What follows a try that found the object busy (XL-WAIT-12 steps 4 and 5): XL_TIMEDOUT at the deadline;
   XL_WAITED when the safety poll this step slept toward (*wake, -1 at first) is due, or after a sleep
   that ended without a ring (the poll's time came, or a signal); XL_BUSY after a ring: try again. */
static int xl_wait_busy(uint32_t *word, long long value, long long start_ns, long long deadline_ns,
                        long long *wake)
{
    long long now = xl_now();
    if (deadline_ns >= 0 && now >= deadline_ns)
        return XL_TIMEDOUT;
    if (*wake >= 0 && now >= *wake)
        return XL_WAITED; /* a safety poll was due: the caller checks, then calls again */
    *wake = xl_next_poll(start_ns, now);
    if (deadline_ns >= 0 && deadline_ns < *wake)
        *wake = deadline_ns;
    return xl_sleep(word, value, *wake) != 0 ? XL_WAITED : XL_BUSY;
}

static int xl_wait_step(uint32_t *word, int bellfd, int shared, int fd, int op, int dirfd,
                        const char *name, unsigned long long dev, unsigned long long ino,
                        long long start_ns, long long deadline_ns)
{
    long long value, wake = -1;
    int rc;
    for (;;) {
        value = xl_announce(word, bellfd, shared);
        rc = xl_lock(fd, op, dirfd, name, dev, ino);
        if (rc == XL_BUSY)
            rc = xl_wait_busy(word, value, start_ns, deadline_ns, &wake);
        if (rc != XL_BUSY)
            return rc;
    }
}

/* xl_wait_step for a counting semaphore [XL-WAIT-12, XL-CSEM-5]: each try is a round over its slot files
   fds[0..n), from slot `start` (all open, none held by this object, a private namespace: the link-count
   re-check). XL_LOCKED with *got = the slot now held (*got is -1 otherwise, also when the call returns
   early); XL_WAITED, XL_TIMEDOUT as xl_wait_step; XL_GONE (a slot file had no name: unlocked again, the
   caller reopens it), XL_EFLOCK, XL_ESTAT (errno). */
static int xl_sem_wait_step(uint32_t *word, int bellfd, int shared, const int *fds, int n, int start,
                            int *got, long long start_ns, long long deadline_ns)
{
    long long value, wake = -1;
    int i, k = -1, rc;
    *got = -1;
    for (;;) {
        value = xl_announce(word, bellfd, shared);
        for (i = 0, rc = XL_BUSY; i < n && rc == XL_BUSY; i++) {
            k = start + i < n ? start + i : start + i - n;
            rc = xl_lock(fds[k], LOCK_EX | LOCK_NB, -1, NULL, 0, 0);
        }
        if (rc == XL_LOCKED)
            *got = k;
        if (rc == XL_BUSY)
            rc = xl_wait_busy(word, value, start_ns, deadline_ns, &wake);
        if (rc != XL_BUSY)
            return rc;
    }
}

/* One Lock object's hold: the fast path acquires and releases it without Python's mutex [XL-HOLD-1..3].
   state: XL_FREE; XL_TRYING (a fast attempt is running); XL_HELD (held through the fast path by the
   thread `owner`, pthread_self() = threading.get_ident()); XL_SLOW (Python's slow path has the object:
   acquiring, holding, waiting, closing; a closed object stays there); XL_RELEASING (a fast release is
   running); XL_WAITING (a thread waits in xl_hold_wait's blocking flock; close moves it to XL_SLOW and
   leaves the descriptors to that thread). Only the party that moved the state away from XL_FREE touches
   the file. waiters: threads of the slow path waiting in this process; a fast release returns their
   number, so that Python wakes them. */
enum { XL_FREE, XL_TRYING, XL_HELD, XL_SLOW, XL_RELEASING, XL_WAITING };
#define XL_INPROC 7 /* xl_hold_lock: the object is not free in this process, or its file is not open */
#define XL_CLOSED 8 /* xl_hold_wait: close took the object while the thread waited; nothing is held */

struct xl_hold {
    long state;
    unsigned long owner;
    long waiters;
    int fd, op, dirfd, bellfd, shared;
    const char *name;
    unsigned long long dev, ino;
    uint32_t *word;
};

/* The observed state; the swap to `to` happened if it equals `from`. */
static long xl_hold_swap(struct xl_hold *h, long from, long to)
{
    __atomic_compare_exchange_n(&h->state, &from, to, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return from;
}

/* The file's descriptor (-1: not open) and the re-check's arguments (name NULL: the link-count check;
   the name must outlive the object), set by the party that has the object. */
static void xl_hold_file(struct xl_hold *h, int fd, int dirfd, const char *name, unsigned long long dev,
                         unsigned long long ino)
{
    h->fd = fd;
    h->dirfd = dirfd;
    h->name = name;
    h->dev = dev;
    h->ino = ino;
}

/* The slow path gives the object back (to XL_FREE) with its file. Returns the waiters. */
static long xl_hold_give(struct xl_hold *h, int fd, int dirfd, const char *name, unsigned long long dev,
                         unsigned long long ino)
{
    xl_hold_file(h, fd, dirfd, name, dev, ino);
    h->owner = 0;
    __atomic_store_n(&h->state, XL_FREE, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&h->waiters, __ATOMIC_SEQ_CST);
}

/* The slow path acquired the lock for thread `owner`: from now on the fast path holds it (XL_HELD), so
   that its release is one call too. */
static void xl_hold_pass(struct xl_hold *h, unsigned long owner, int fd, int dirfd, const char *name,
                         unsigned long long dev, unsigned long long ino)
{
    xl_hold_file(h, fd, dirfd, name, dev, ino);
    h->owner = owner;
    __atomic_store_n(&h->state, XL_HELD, __ATOMIC_SEQ_CST);
}

/* A new hold, free: the lock's flock operation (with LOCK_NB), its bell, and its file as xl_hold_give
   takes it. */
static long xl_hold_init(struct xl_hold *h, int op, uint32_t *word, int bellfd, int shared, int fd, int dirfd,
                         const char *name, unsigned long long dev, unsigned long long ino)
{
    memset(h, 0, sizeof *h);
    h->op = op;
    h->word = word;
    h->bellfd = bellfd;
    h->shared = shared;
    return xl_hold_give(h, fd, dirfd, name, dev, ino);
}

/* A waiter of the slow path comes (delta 1) or goes (-1); returns the state, read after the change, so
   that a release in between is never missed (the releaser frees, then reads the waiters). */
static long xl_hold_waiting(struct xl_hold *h, long delta)
{
    __atomic_fetch_add(&h->waiters, delta, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&h->state, __ATOMIC_SEQ_CST);
}

/* The fast acquire: one non-blocking try of the lock-file cycle (xl_lock). XL_LOCKED: held, the state
   is XL_HELD; otherwise the state is back to XL_FREE (or was never ours: XL_INPROC) and the slow path
   decides, waits and reports. */
static int xl_hold_lock(struct xl_hold *h)
{
    int rc;
    if (xl_hold_swap(h, XL_FREE, XL_TRYING) != XL_FREE)
        return XL_INPROC;
    rc = h->fd < 0 ? XL_INPROC : xl_lock(h->fd, h->op, h->dirfd, h->name, h->dev, h->ino);
    if (rc == XL_LOCKED)
        h->owner = (unsigned long)pthread_self();
    __atomic_store_n(&h->state, rc == XL_LOCKED ? XL_HELD : XL_FREE, __ATOMIC_SEQ_CST);
    return rc;
}

/* The outcome of this thread's last xl_hold_wait or xl_hold_wait_step: a signal's handler may raise as
   the call returns, before Python has seen the outcome; this tells it what to let go [XL-WAIT-9]. */
static __thread int xl_hold_last_rc;

static int xl_hold_last(void)
{
    return xl_hold_last_rc;
}

/* The end of a wait in state XL_WAITING with outcome rc: XL_HELD by the calling thread if it locked, else
   state `to`; XL_CLOSED instead if close took the object meanwhile (a lock acquired is released and
   rung, and the caller finishes the close). Keeps the outcome for xl_hold_last, and errno. */
static int xl_hold_settle(struct xl_hold *h, int rc, long to)
{
    int saved = errno;
    if (rc == XL_LOCKED) {
        h->owner = (unsigned long)pthread_self();
        to = XL_HELD;
    }
    if (xl_hold_swap(h, XL_WAITING, to) != XL_WAITING) {
        h->owner = 0;
        if (rc == XL_LOCKED)
            xl_unlock_ring(h->fd, h->word, h->bellfd, h->shared);
        rc = XL_CLOSED;
    }
    xl_hold_last_rc = rc;
    errno = saved;
    return rc;
}

/* A thread's untimed acquire, whole [XL-WAIT-2]: a blocking flock and the re-check (xl_lock) in state
   XL_WAITING, then XL_HELD by the calling thread, so that the waiter returns to Python holding the lock
   with nothing left to do. Otherwise the state is back to XL_FREE and the slow path decides (XL_INPROC:
   not free in this process or no file open; XL_EFLOCK with errno EINTR: a signal, Python runs its
   handlers and calls again; a failed re-check: the slow path reopens), or XL_CLOSED (xl_hold_settle). */
static int xl_hold_wait(struct xl_hold *h)
{
    xl_hold_last_rc = XL_INPROC;
    if (xl_hold_swap(h, XL_FREE, XL_WAITING) != XL_FREE)
        return XL_INPROC;
    if (h->fd < 0)
        return xl_hold_settle(h, XL_INPROC, XL_FREE);
    return xl_hold_settle(h, xl_lock(h->fd, h->op & ~LOCK_NB, h->dirfd, h->name, h->dev, h->ino), XL_FREE);
}

/* One step of a thread's timed wait in state XL_WAITING, which the first step (`begin`) takes from
   XL_FREE (else XL_INPROC: the slow path decides): xl_wait_step on the hold's file and bell [XL-WAIT-12].
   XL_LOCKED: XL_HELD by the calling thread, so the waiter returns holding the lock with nothing left to
   do. XL_WAITED: still XL_WAITING (a safety poll is due or a signal came: Python runs its handlers, then
   calls again). XL_TIMEDOUT and the other outcomes: back to XL_FREE (the slow path reports or reopens).
   XL_CLOSED: close took the object meanwhile, checked first, then by xl_hold_settle. */
static int xl_hold_wait_step(struct xl_hold *h, int begin, long long start_ns, long long deadline_ns)
{
    int rc;
    xl_hold_last_rc = begin ? XL_INPROC : XL_CLOSED;
    if (begin ? xl_hold_swap(h, XL_FREE, XL_WAITING) != XL_FREE
              : __atomic_load_n(&h->state, __ATOMIC_SEQ_CST) != XL_WAITING)
        return xl_hold_last_rc;
    rc = xl_wait_step(h->word, h->bellfd, h->shared, h->fd, h->op, h->dirfd, h->name, h->dev, h->ino,
                      start_ns, deadline_ns);
    return xl_hold_settle(h, rc, rc == XL_WAITED ? XL_WAITING : XL_FREE);
}

/* The fast release [XL-LOCK-9, XL-BELL-6]: -1 if the fast path does not hold the object (the slow path
   decides); otherwise flock(LOCK_UN), the ring, XL_FREE, and the number of waiters to wake. */
static long xl_hold_unlock(struct xl_hold *h)
{
    if (xl_hold_swap(h, XL_HELD, XL_RELEASING) != XL_HELD)
        return -1;
    h->owner = 0;
    xl_unlock_ring(h->fd, h->word, h->bellfd, h->shared);
    __atomic_store_n(&h->state, XL_FREE, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&h->waiters, __ATOMIC_SEQ_CST);
}
"""
