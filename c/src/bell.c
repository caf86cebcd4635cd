/* The bell: one file of 1024 futex words per namespace [XL-BELL-1..XL-BELL-8].
 *
 * The process keeps a table of the bells it has mapped, one per namespace identity, shared by every
 * object of that namespace and unmapped when the last one closes [XL-BELL-2]. Nothing about the
 * bell ever fails an operation: an unusable bell leaves waits to the safety poll and releases
 * without a ring [XL-BELL-8]. In a shared namespace a member may truncate the file at any time, so
 * the mapping is touched only by the kernel (futex, pread), never by a user-space load or store,
 * which would raise SIGBUS beyond the end of the file [XL-BELL-5]. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BELL_SIZE (XLOCK_BELL_WORDS * 4)

struct xlock__bell {
    struct xlock__bell *next;
    unsigned long long dev, ino;  /* the namespace identity */
    int refs;                     /* under xlock__bells_mu */
    int fd;                       /* kept open for pread in shared namespaces */
    uint32_t *words;              /* the mapping; NULL if unusable */
    int kernel_only;              /* a shared namespace: futex and pread only [XL-BELL-5] */
    _Atomic(const char *) status; /* "usable" or why not [XL-BELL-8] */
};

pthread_mutex_t xlock__bells_mu = PTHREAD_MUTEX_INITIALIZER;
static xlock__bell *bells;

static const char *const USABLE = "usable";

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *timeout,
                  uint32_t *uaddr2, uint32_t val3)
{
    /* Shared futexes only, never FUTEX_PRIVATE_FLAG: the kernel keys them by inode and offset, so
     * every process mapping the bell meets on the same word [XL-BELL-4]. */
    return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

/* Checks the opened bell on its descriptor [XL-BELL-3]: NULL if it may be used, else why not. */
static const char *check(int fd, const xlock__ns *ns)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return "not used: fstat failed";
    if (!S_ISREG(st.st_mode))
        return "not used: not a regular file";
    if (st.st_size != BELL_SIZE)
        return "not used: not exactly 4096 bytes";
    uid_t euid = geteuid();
    if (ns->sharing == XLOCK_SHARING_PRIVATE && st.st_uid != euid && st.st_uid != 0 &&
        st.st_uid != ns->uid)
        return "not used: owned by another user";
    if ((st.st_mode & 0777 & ~ns->fmode) != 0)
        return "not used: its mode grants more than the namespace file mode";
    return NULL;
}

static int fill_bell(int fd, const void *arg)
{
    (void)arg;
    return ftruncate(fd, BELL_SIZE); /* 1024 zero words [XL-BELL-1] */
}

static void bell_tmp(char *out, const void *arg)
{
    (void)arg;
    xlock__bell_tmp_fname(out);
}

/* Opens (creating if allowed) and checks the bell of ns into b [XL-BELL-2, XL-BELL-3]. Returns 0
 * (usable or not: b->status says) or XL_ABSENT when it does not exist and create is 0. Sets no
 * error message that survives: a bell never fails an operation. */
static int open_bell(xlock__bell *b, const xlock__ns *ns, int create)
{
    static const char what[] = "the namespace's bell";
    char saved[1024];
    int saved_errno = xlock_last_errno();
    snprintf(saved, sizeof saved, "%s", xlock_last_message()); /* keep the caller's message */
    struct stat st;
    int fd = -1, rc = XL_ABSENT;
    const char *status = "not used: it keeps being created and removed";
    for (int round = 0; round < XL_MAX_ROUNDS; round++) {
        rc = xlock__open_file(&fd, &st, ns, XL_BELL_FILE, O_RDWR, 0, what);
        if (rc != XL_ABSENT || !create)
            break;
        rc = xlock__create_file(ns, XL_BELL_FILE, bell_tmp, NULL, ns->fmode, fill_bell, NULL, what);
        if (rc < 0)
            break; /* XL_EXISTS or 0: open the bell now there */
    }
    if (rc == XL_ABSENT && !create) {
        xlock__fail(0, saved_errno, "%s", saved);
        return XL_ABSENT;
    }
    if (rc < 0)
        status = rc == XLOCK_EINSECURE ? "not used: not a regular file we may open"
                                       : "not used: it cannot be opened or created";
    else if (rc == 0 && (status = check(fd, ns)) == NULL) {
        void *map = mmap(NULL, BELL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            status = "not used: it cannot be mapped";
        } else {
            b->words = map;
            status = USABLE;
        }
    }
    if (b->words == NULL && fd >= 0) {
        close(fd);
        fd = -1;
    }
    b->fd = fd;
    b->kernel_only = ns->sharing != XLOCK_SHARING_PRIVATE;
    atomic_store(&b->status, status);
    xlock__fail(0, saved_errno, "%s", saved);
    return 0;
}

xlock__bell *xlock__bell_get(const xlock__ns *ns, int create)
{
    pthread_mutex_lock(&xlock__bells_mu);
    xlock__bell *b = bells;
    while (b != NULL && !(b->dev == ns->dev && b->ino == ns->ino))
        b = b->next;
    if (b != NULL) {
        b->refs++;
    } else if ((b = calloc(1, sizeof *b)) != NULL) {
        b->dev = ns->dev;
        b->ino = ns->ino;
        b->fd = -1;
        if (open_bell(b, ns, create) == 0) {
            b->refs = 1;
            b->next = bells;
            bells = b;
        } else {
            free(b);
            b = NULL;
        }
    }
    pthread_mutex_unlock(&xlock__bells_mu);
    return b;
}

void xlock__bell_put(xlock__bell *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&xlock__bells_mu);
    if (--b->refs == 0) {
        xlock__bell **p = &bells;
        while (*p != b)
            p = &(*p)->next;
        *p = b->next;
        if (b->words != NULL)
            munmap(b->words, BELL_SIZE);
        if (b->fd >= 0)
            close(b->fd);
        free(b);
    }
    pthread_mutex_unlock(&xlock__bells_mu);
}

const char *xlock__bell_status(const xlock__bell *b)
{
    return b == NULL ? "missing" : atomic_load(&((xlock__bell *)b)->status);
}

static int usable(xlock__bell *b)
{
    return b != NULL && b->words != NULL &&
           atomic_load_explicit(&b->status, memory_order_relaxed) == USABLE;
}

/* A futex or pread failure other than EINTR/EAGAIN/ETIMEDOUT: stop using the bell [XL-BELL-8]. */
static void broken(xlock__bell *b, int err)
{
    atomic_store(&b->status, err == EFAULT ? "not used: a futex call failed with EFAULT (was it "
                                             "truncated?)"
                                           : "not used: a futex or pread call on it failed");
}

/* Reads word i: an atomic load in a private namespace, pread in a shared one [XL-BELL-5]. */
static int load(xlock__bell *b, unsigned i, uint32_t *v)
{
    if (!b->kernel_only) {
        *v = atomic_load_explicit((_Atomic uint32_t *)&b->words[i], memory_order_acquire);
        return 0;
    }
    ssize_t n = pread(b->fd, v, sizeof *v, (off_t)i * 4);
    if (n == (ssize_t)sizeof *v)
        return 0;
    broken(b, n < 0 ? errno : 0); /* a short read: truncated */
    return -1;
}

void xlock__bell_ring(xlock__bell *b, unsigned i)
{
    uint32_t v;
    if (!usable(b) || load(b, i, &v) != 0 || (v & 1) == 0)
        return; /* nobody announced: no system call [XL-BELL-6] */
    /* ADD 1 clears bit 0 and changes the value; every waiter on the word wakes. */
    if (futex(&b->words[i], FUTEX_WAKE_OP, INT_MAX, NULL, &b->words[i],
              FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)) < 0 &&
        errno != EINTR && errno != EAGAIN)
        broken(b, errno);
}

void xlock__bell_wake(xlock__bell *b, unsigned i)
{
    /* ADD 2 changes the value but not bit 0, so a waiter that announced just before sees the
     * change and does not sleep [XL-WAIT-10]. */
    if (usable(b) &&
        futex(&b->words[i], FUTEX_WAKE_OP, INT_MAX, NULL, &b->words[i],
              FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_EQ, 0)) < 0 &&
        errno != EINTR && errno != EAGAIN)
        broken(b, errno);
}

int xlock__bell_announce(xlock__bell *b, unsigned i, uint32_t *v)
{
    if (!usable(b))
        return -1;
    if (!b->kernel_only) {
        *v = atomic_fetch_or((_Atomic uint32_t *)&b->words[i], 1) | 1;
        return 0;
    }
    /* OR 1 in the kernel, waking nobody (val 0, val2 0) [XL-BELL-5] */
    if (futex(&b->words[i], FUTEX_WAKE_OP, 0, NULL, &b->words[i],
              FUTEX_OP(FUTEX_OP_OR, 1, FUTEX_OP_CMP_EQ, 0)) < 0) {
        broken(b, errno);
        return -1;
    }
    return load(b, i, v);
}

int xlock__bell_sleep(xlock__bell *b, unsigned i, uint32_t v, const struct timespec *until)
{
    if (futex(&b->words[i], FUTEX_WAIT_BITSET, v, until, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    switch (errno) {
    case EINTR:
        return XLOCK_EINTR; /* [XL-WAIT-9] */
    case EAGAIN:
    case ETIMEDOUT:
        return 0;
    default:
        broken(b, errno);
        return -1;
    }
}
