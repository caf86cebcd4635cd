/* Internal declarations shared by the libxlock sources. Not installed.
 * Every global symbol here has the reserved prefix xlock__ and hidden visibility: libxlock.a and
 * libxlock.so define no global symbol outside xlock_ (make check-symbols). */
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
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* ---- errors (error.c) ---- */
/* Records the calling thread's failure (message, errno) and returns code. */
int xlock__fail(int code, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "lock 'name'"-style description for messages, into buf. */
const char *xlock__what(char *buf, size_t size, const char *kind, const char *name);
#define XL_WHAT_SIZE 160

/* ---- names: every file and semaphore name of a name is built here (names.c) ---- */
/* Longest enc(name): 80 bytes, each escaped to 3 [XL-ENC-5]. */
#define XL_ENC_MAX 240
/* The bell of a namespace [XL-BELL-1] and its temporary name's prefix [XL-ENC-3]. */
#define XL_BELL_FILE ".xlock-bell"
/* Where glibc keeps POSIX semaphores: /dev/shm/sem.NAME [XL-PSEM-2]. */
#define XL_SHM_DIR "/dev/shm"
/* Validates name (0 or XLOCK_EINVALNAME with a message naming the rule) [XL-NAME-1..XL-NAME-3]. */
int xlock__check_name(const char *name, size_t len);
/* enc(name) into out (at least XL_ENC_MAX + 1 bytes), NUL-terminated; returns its length. */
size_t xlock__enc(char *out, const char *name, size_t len);
/* File names [XL-ENC-3] into out (XLOCK_FILE_NAME_SIZE bytes), from enc(name). */
void xlock__lock_fname(char *out, const char *enc);
void xlock__capacity_fname(char *out, const char *enc);
void xlock__slot_fname(char *out, const char *enc, long slot); /* slot < 1000 */
/* Temporary names [XL-ENC-3, XL-ENC-6, XL-PSEM-2] with a fresh random r of 8 lowercase hex
 * digits: enc || "." || r || ".tmp", ".xlock-bell." || r || ".tmp",
 * "sem." || semname-without-/ || "." || r || ".tmp". */
void xlock__capacity_tmp_fname(char *out, const char *enc);
void xlock__bell_tmp_fname(char *out);
void xlock__psem_tmp_fname(char *out, const char *semname);
/* "sem." || semname-without-/ : the file of a raw semaphore in /dev/shm [XL-PSEM-2]. */
void xlock__psem_fname(char *out, const char *semname);
/* The semaphore name of [XL-SEM-1] into out (XLOCK_SEM_NAME_SIZE bytes). */
void xlock__sem_name(char *out, int kind, unsigned long long dev, unsigned long long ino,
                     const char *name, size_t len);
/* The bell word of (kind, name) [XL-SEM-7], 0..1023. */
unsigned xlock__bell_word(int kind, const char *name, size_t len);
/* Copies name into a new NUL-terminated string; NULL on ENOMEM. */
char *xlock__strndup(const char *s, size_t len);
/* n random lowercase hex digits from getrandom(2) [XL-ENC-6] (no NUL added). */
void xlock__random_hex(char *out, size_t n);

/* ---- namespaces (namespace.c, nsshare.c) ---- */
typedef struct xlock__bell xlock__bell;
typedef struct xlock__ns {
    int fd;                      /* the verified directory descriptor [XL-NS-5] */
    char *path;                  /* as chosen [XL-NS-1], trailing '/' removed [XL-NS-14] */
    unsigned long long dev, ino; /* namespace identity */
    uid_t uid;                   /* directory owner */
    mode_t fmode;                /* file mode [XL-NS-13] */
    int sharing;                 /* XLOCK_SHARING_* [XL-NS-9] */
    mode_t dmode;                /* the directory's st_mode when checked */
    uid_t euid;                  /* the effective uid it was checked for */
    int fs_refused;              /* on a file system of [XL-NS-10] (allowed by the options) */
    struct xlock__nsent *entry;  /* the process's shared namespace this copy refers to, or NULL */
} xlock__ns;

/* The namespace path chosen for opts [XL-NS-1, XL-NS-2] (dflt: room for the default's). */
const char *xlock__ns_choose(const xlock_options *opts, char *dflt, size_t size, int *is_default);
/* Opens and checks the namespace at path anew [XL-NS-4..XL-NS-11] into ns (ns->path is a copy of
 * path; ns->entry NULL). Returns 0 or an error code (message set). */
int xlock__ns_verify(xlock__ns *ns, const char *path, int is_default, const xlock_options *opts,
                     const char *what);
/* 1 if the namespace checked into ns may be reused for an object with these options, now that
 * lstat of its path gave st [XL-NS-16]: same directory, owner and mode, same euid, and the rules
 * of how this object chose it (XL-NS-8, XL-NS-10) hold. */
int xlock__ns_reusable(const xlock__ns *ns, const struct stat *st, uid_t euid, int is_default,
                       const xlock_options *opts);
/* Chooses the namespace for opts and gives ns a reference to the process's shared, verified copy
 * of it, re-confirmed with an lstat, or verifies it anew [XL-NS-16] (nsshare.c). `what` names the
 * object for messages ("lock 'x'"). Returns 0 or an error code (message set). */
int xlock__ns_open(xlock__ns *ns, const xlock_options *opts, const char *what);
/* Drops ns's reference (the process keeps the last idle namespace open for the next object). */
void xlock__ns_close(xlock__ns *ns);
/* The bell of ns's shared namespace, opened (and created if `create`) once per namespace; owned
 * by the namespace (never _put by the caller). NULL if missing and create is 0. */
xlock__bell *xlock__ns_bell(const xlock__ns *ns, int create);
/* malloc'ed "ns/fname" [XL-NS-14]; NULL on ENOMEM. */
char *xlock__ns_join(const xlock__ns *ns, const char *fname);
/* Checks the options' version and the flags that only locks accept. */
int xlock__check_options(const xlock_options *opts, int for_lock, const char *what);
/* The capacity file mode: the file mode without group/other write [XL-NS-13]. */
#define XL_CAPACITY_MODE(ns) ((ns)->fmode & ~(mode_t)0022)

/* ---- opening files: the one routine (file.c) ---- */
/* Results of xlock__open_file besides 0 and the negative error codes. */
#define XL_ABSENT 1 /* ENOENT on an open without O_CREAT */
#define XL_EXISTS 2 /* EEXIST on an open with O_CREAT | O_EXCL */
/* Bound of every open-or-create alternation and reopen run [XL-LOCK-12]. */
#define XL_MAX_ROUNDS 100
/* Opens fname relative to the directory dir (a namespace, or /dev/shm) with
 * flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY (and mode when flags has O_CREAT), then
 * checks on the descriptor that it is a regular file [XL-LOCK-1, XL-LOCK-4, XL-LOCK-5, XL-ERR-5]:
 * a symbolic link (ELOOP), a socket (ENXIO), a directory (EISDIR) or another non-regular file, and
 * EACCES/EPERM give XLOCK_EINSECURE naming the file's owner and what to do; any other failure gives
 * XLOCK_EOS. Returns 0 with *fd and *st set, XL_ABSENT, XL_EXISTS, or an error (message set). */
int xlock__open_file(int *fd, struct stat *st, const xlock__ns *dir, const char *fname, int flags,
                     mode_t mode, const char *what);
/* "uid N (user)" of uid into buf. */
const char *xlock__owner(char *buf, size_t size, uid_t uid);
#define XL_OWNER_SIZE 96
/* What the user can do about a file owned by `owner` in dir [XL-ERR-3]: remove it themselves, or
 * ask its owner or the directory's owner. Into buf. */
const char *xlock__remedy(char *buf, size_t size, const xlock__ns *dir, uid_t owner);
#define XL_REMEDY_SIZE 400
/* Creates dir/final atomically from a temporary file [XL-BELL-2, XL-CSEM-4, XL-PSEM-2]: tmp_fname()
 * names the temporary file (a fresh random name per call; EEXIST picks another, at most
 * XL_MAX_ROUNDS times [XL-ENC-6]), created O_RDWR|O_CREAT|O_EXCL with `mode`, fchmod'ed to mode, filled
 * by fill(fd, arg), linkat'ed to final and unlinked. 0 if created, XL_EXISTS if final already
 * existed (another creator won), else an error. */
int xlock__create_file(const xlock__ns *dir, const char *final, void (*tmp_fname)(char *, const void *),
                       const void *tmp_arg, mode_t mode, int (*fill)(int fd, const void *arg),
                       const void *fill_arg, const char *what);

/* ---- the bell (bell.c) [XL-BELL-1..XL-BELL-8] ---- */
/* The process's bell of ns, opened once per namespace while objects use it (create: also creates
 * it [XL-BELL-2]). Never fails an operation [XL-BELL-8]: an unusable bell is returned with its
 * reason; NULL only if it is missing and create is 0, or out of memory. Release with _put. */
xlock__bell *xlock__bell_get(const xlock__ns *ns, int create);
void xlock__bell_put(xlock__bell *bell);
/* "usable" or why the bell is not used [XL-BELL-8]. Static storage. */
const char *xlock__bell_status(const xlock__bell *bell);
/* The ring of [XL-BELL-6] on word i: no system call unless a waiter announced itself. */
void xlock__bell_ring(xlock__bell *bell, unsigned i);
/* Wakes every waiter on word i and changes its value (a canceller's wake [XL-WAIT-10]). */
void xlock__bell_wake(xlock__bell *bell, unsigned i);
/* Announce (step 2 of XL-WAIT-12): sets bit 0 of word i and reads the word into *v. 0, or -1 if
 * the bell cannot be used. */
int xlock__bell_announce(xlock__bell *bell, unsigned i, uint32_t *v);
/* Step 5 of XL-WAIT-12: sleeps on word i while it holds v, until the absolute CLOCK_MONOTONIC
 * time `until`. 0 (rung, changed, timed out or spurious), XLOCK_EINTR, or -1 if the bell failed. */
int xlock__bell_sleep(xlock__bell *bell, unsigned i, uint32_t v, const struct timespec *until);

/* ---- waiting (wait.c) ---- */
struct timespec xlock__now(void);
/* CLOCK_MONOTONIC now + timeout_ms, computed once at the start of a call [XL-WAIT-3]. */
struct timespec xlock__deadline(const struct timespec *start, long long timeout_ms);
int xlock__ts_before(const struct timespec *a, const struct timespec *b);
/* The timed-waiter loop of [XL-WAIT-12] on word `word` of bell (NULL or unusable: the safety poll
 * alone). try_fn returns >= 0 (acquired, or a slot for semaphores), XLOCK_EWOULDBLOCK, or an
 * error. start anchors the safety polls [XL-WAIT-7]; deadline NULL = infinite. Returns try_fn's
 * success value, XLOCK_ETIMEDOUT, XLOCK_EINTR, XLOCK_ECANCELED (cancel_gen moved away from token)
 * or an error of try_fn. Sets no message for TIMEOUT/EINTR/CANCELLED: the caller does. */
int xlock__wait_loop(xlock__bell *bell, unsigned word, const struct timespec *start,
                     const struct timespec *deadline, atomic_ullong *cancel_gen,
                     unsigned long long token, int (*try_fn)(void *), void *ctx);

/* ---- lock and slot files (lockfile.c) ---- */
typedef struct xlock__file {
    int fd; /* -1 when not open */
    dev_t dev;
    ino_t ino;
} xlock__file;

/* Opens (creating if missing) the file fname of ns as a lock file [XL-LOCK-1..XL-LOCK-6]. */
int xlock__file_open(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what);
/* Opens an existing lock or slot file, never creating it [XL-RM-2, XL-RM-6]; XL_ABSENT if none. */
int xlock__file_open_existing(xlock__file *f, const xlock__ns *ns, const char *fname, const char *what);
void xlock__file_close(xlock__file *f);
/* One non-blocking flock(op | LOCK_NB) with the re-check and reopen of [XL-LOCK-8] (the link
 * count in a private namespace, the strict path check in a shared one). 0 when locked,
 * XLOCK_EWOULDBLOCK when held elsewhere (no message: callers describe the wait), else an error. */
int xlock__file_try(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what);
/* As xlock__file_try with the strict re-check always, for removers [XL-RM-2, XL-RM-3]. */
int xlock__file_try_named(xlock__file *f, const xlock__ns *ns, const char *fname, int op,
                          const char *what);
/* Blocking flock(op) with the re-check of [XL-LOCK-8] [XL-WAIT-2]; EINTR gives XLOCK_EINTR. */
int xlock__file_block(xlock__file *f, const xlock__ns *ns, const char *fname, int op, const char *what);
/* The strict check of [XL-LOCK-8]: 0 if fname in ns names f's (dev, ino), 1 if it names another
 * file or nothing, or an error code. */
int xlock__file_named(const xlock__file *f, const xlock__ns *ns, const char *fname, const char *what);

/* ---- fork registry (registry.c) ---- */
typedef struct xlock__node {
    struct xlock__node *prev, *next;
    pthread_mutex_t *mu;                     /* the object's mutex, locked around fork */
    void (*child)(struct xlock__node *node); /* resets the object in the child [XL-HOLD-7, XL-HOLD-8] */
} xlock__node;
/* Registers the at-fork handlers once and adds node. Returns 0 or XLOCK_EOS. */
int xlock__register(xlock__node *node);
void xlock__unregister(xlock__node *node);
/* The namespace table's (nsshare.c) and the bell table's (bell.c) mutexes, in that order, also
 * taken around fork so the child's copies are consistent. */
extern pthread_mutex_t xlock__ns_mu;
extern pthread_mutex_t xlock__bells_mu;

#endif
