/* Internal declarations shared by the libxlock sources. Not installed. */
#ifndef XLOCK_INTERNAL_H
#define XLOCK_INTERNAL_H

/* The sources compile without a configure step or special flags (the Ruby gem compiles them
 * directly): sem_clockwait, flock, openat and friends need the GNU feature set. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "xlock.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

/* ---- errors (error.c) ---- */
/* Records the calling thread's failure (message, errno) and returns code. */
int xlock__fail(int code, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- names (names.c) ---- */
/* Longest enc(name): 80 bytes, each escaped to 3 [XL-ENC-5]. */
#define XL_ENC_MAX 240
/* Validates name (0 or XLOCK_EINVALNAME with a message naming the rule) [XL-NAME-1..XL-NAME-3]. */
int xlock__check_name(const char *name, size_t len);
/* enc(name) into out (at least XL_ENC_MAX + 1 bytes), NUL-terminated; returns its length. */
size_t xlock__enc(char *out, const char *name, size_t len);
/* The semaphore name of [XL-SEM-1] into out (XLOCK_SEM_NAME_SIZE bytes). */
void xlock__sem_name(char *out, int kind, unsigned long long dev, unsigned long long ino,
                 const char *name, size_t len);
/* Copies name into a new NUL-terminated string; NULL on ENOMEM. */
char *xlock__strndup(const char *s, size_t len);

/* ---- namespaces (namespace.c) ---- */
typedef struct xlock__ns {
    int fd;                      /* the verified directory descriptor [XL-NS-5] */
    char *path;                  /* as chosen [XL-NS-1] */
    unsigned long long dev, ino; /* namespace identity */
    uid_t uid;                   /* directory owner */
    mode_t fmode;                /* file mode [XL-NS-13] */
    int shared;                  /* group or others may write [XL-NS-9] */
} xlock__ns;

/* Chooses, creates if needed, opens and checks the namespace for opts. `what` names the object for
 * messages ("lock 'x'"). Returns 0 or an error code (message set). */
int xlock__ns_open(xlock__ns *ns, const xlock_options *opts, const char *what);
void xlock__ns_close(xlock__ns *ns);
/* malloc'ed "ns/fname"; NULL on ENOMEM. */
char *xlock__ns_join(const xlock__ns *ns, const char *fname);
/* Checks the options' version and the flags that only locks accept. */
int xlock__check_options(const xlock_options *opts, int for_lock, const char *what);

/* ---- lock and slot files (lockfile.c) ---- */
typedef struct xlock__file {
    int fd; /* -1 when not open */
    dev_t dev;
    ino_t ino;
} xlock__file;

/* Opens (creating if missing) the file fname of ns as a lock file [XL-LOCK-1..XL-LOCK-6]. */
int xlock__file_open(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what);
void xlock__file_close(xlock__file *f);
/* The slot file name enc || "." || decimal(i) || ".slot" [XL-ENC-3], i < 1000. */
void xlock__slot_file(char buf[XLOCK_FILE_NAME_SIZE], const char *enc, long i);
/* One non-blocking flock(op | LOCK_NB) with the re-check and reopen of [XL-LOCK-8] (link count
 * above zero, on the descriptor). 0 when locked, XLOCK_EWOULDBLOCK when held elsewhere (no message:
 * callers describe the wait), else an error. */
int xlock__file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what);
/* As xlock__file_try with the strict re-check of xlock__file_named, for removers [XL-RM-2, XL-RM-3]. */
int xlock__file_try_named(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what);
/* Blocking flock(op) with the re-check of [XL-LOCK-8] [XL-WAIT-2]; EINTR gives XLOCK_EINTR. */
int xlock__file_block(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what);
/* The strict check of [XL-LOCK-8]: 0 if fname in ns names f's (dev, ino), 1 if it names another
 * file or nothing, or an error code. Removers pass it before unlinking [XL-RM-2]. */
int xlock__file_named(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what);

/* ---- doorbells and waiting (wait.c) ---- */
/* sem_open(name, O_CREAT, fmode, 0) and mode repair; NULL if it cannot be opened [XL-WAIT-8]. */
sem_t *xlock__bell_open(const char *semname, const xlock__ns *ns);
void xlock__bell_close(sem_t *bell);
/* The doorbell ring: post if the value is 0 [XL-WAIT-6]. */
static inline void xlock__bell_ring(sem_t *bell)
{
    int value;
    if (bell != NULL && sem_getvalue(bell, &value) == 0 && value == 0)
        (void)sem_post(bell);
}
struct timespec xlock__now(void);
struct timespec xlock__deadline(long long timeout_ms);
int xlock__ts_before(const struct timespec *a, const struct timespec *b);

/* The timed-waiter loop of [XL-WAIT-4..XL-WAIT-7]. try_fn returns 0 (acquired, or a slot >= 0 for
 * semaphores), XLOCK_EWOULDBLOCK, or an error. deadline NULL = infinite. Returns try_fn's success
 * value, XLOCK_ETIMEDOUT, XLOCK_EINTR, XLOCK_ECANCELED (cancel_gen moved away from token) or an
 * error of try_fn. Sets no message for TIMEOUT/EINTR/CANCELLED: the caller does. */
int xlock__wait_loop(sem_t *bell, const struct timespec *deadline, atomic_ullong *cancel_gen,
                 unsigned long long token, int post_after_wait, int (*try_fn)(void *), void *ctx);

/* ---- fork registry (registry.c) ---- */
typedef struct xlock__node {
    struct xlock__node *prev, *next;
    pthread_mutex_t *mu;                 /* the object's mutex, locked around fork */
    void (*child)(struct xlock__node *node); /* resets the object in the child [XL-HOLD-7, XL-HOLD-8] */
} xlock__node;
/* Registers the at-fork handlers once and adds node. Returns 0 or XLOCK_EOS. */
int xlock__register(xlock__node *node);
void xlock__unregister(xlock__node *node);
/* Serialises the creation of capacity files inside the process (their temporary name holds only
 * the pid [XL-ENC-3]). */
void xlock__create_lock(void);
void xlock__create_unlock(void);

/* ---- misc ---- */
/* "lock 'name'"-style description for messages, into buf. */
const char *xlock__what(char *buf, size_t size, const char *kind, const char *name);
#define XL_WHAT_SIZE 160

#endif
