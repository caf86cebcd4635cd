/*
 * xlock.h — libxlock, the C implementation of spec xlock/1 (spec/xlock-1.md).
 *
 * Named, crash-safe locks and semaphores shared by every process on one host (draft 2 of xlock/1):
 *   - xlock_t       a lock: flock(2) on a lock file in a namespace directory (spec §6-§9);
 *   - xlock_sem_t   a crash-safe counting semaphore made of slot files (spec §10);
 *   - xlock_psem_t  a raw POSIX named semaphore with the spec's name (spec §11).
 * Timed waiters sleep on a futex word of the namespace's bell, the file .xlock-bell in the namespace
 * directory (spec §9a); releasers ring it. Locks and counting semaphores create no POSIX semaphore.
 *
 * Conventions (libgit2 style)
 *   - Everything exported is prefixed xlock_ / XLOCK_. C99 and C++ compatible header.
 *   - Functions return int: 0 (or a non-negative count/index where stated) for success, a negative
 *     XLOCK_E* code for failure [XL-ERR-1]. Out-parameters come first.
 *   - After a failure, xlock_last_message() gives a message naming the lock (name and path) and what
 *     to do [XL-ERR-3], and xlock_last_errno() the errno of the failed system call (0 if none).
 *     Both are per thread.
 *   - A failed call leaves nothing held that was not held before it [XL-ERR-4].
 *   - Names are UTF-8. Functions taking `const char *name` read a NUL-terminated string; the `_n`
 *     variants take a length, so a name with an embedded NUL byte is rejected as XLOCK_EINVALNAME
 *     instead of being silently cut. Every name is validated before any file or semaphore is touched
 *     [XL-NAME-3].
 *   - Every pointer argument documented as a handle or out-parameter must be non-NULL; NULL gives
 *     XLOCK_EINVAL (close functions accept NULL as a no-op).
 *
 * Threads [XL-HOLD-1..XL-HOLD-6]
 *   Every function may be called from any thread. All functions on one handle may be called
 *   concurrently from several threads, except the close function, which must not race any other call
 *   on the same handle (close only when no other thread uses it). Each handle has its own mutex and
 *   condition variable; the mutex is never held across a blocking wait.
 *
 * Fork [XL-HOLD-7, XL-HOLD-8, XL-HOLD-11]
 *   The library registers ONE pthread_atfork handler (on the first open of any object) and keeps a
 *   process-wide registry of open handles, and a table of the bells it has mapped (one per namespace
 *   in use, shared by the objects of that namespace [XL-BELL-2]). These two tables and their mutexes
 *   are the library's only global mutable state besides the per-thread error message. In the child
 *   of fork(2) the handler closes every inherited lock-file and slot descriptor and marks every
 *   object not held: a release then fails with XLOCK_ENOTHELD and never unlocks the parent's lock;
 *   the next acquire opens fresh descriptors. A raw semaphore object holds no permit in the child:
 *   its release fails with XLOCK_ENOTHELD and its close posts nothing [XL-HOLD-11]; it may acquire
 *   anew. Bell mappings are inherited and stay valid. Handles stay valid and must still be closed.
 *   (A child created by a raw clone(2)/vfork(2) without fork handlers is not covered.)
 *
 * Interruption and cancellation [XL-WAIT-9, XL-WAIT-10]
 *   - A wait interrupted by a caught signal returns XLOCK_EINTR at once; the library never retries
 *     EINTR [XL-WAIT-9]. Nothing is held afterwards. The bell wait of [XL-WAIT-12] (timed lock
 *     waits, every counting-semaphore wait, cancellable untimed lock waits: FUTEX_WAIT_BITSET or
 *     clock_nanosleep with a timeout) and sem_clockwait return XLOCK_EINTR whether or not the handler
 *     has SA_RESTART: the kernel never restarts a timed sleep after a handler ran. Only the untimed
 *     blocking flock(2) and sem_wait(3) are restarted by the kernel when the handler has SA_RESTART
 *     (without it they return XLOCK_EINTR too). Ignored or blocked signals interrupt nothing. A thread
 *     waiting because ANOTHER THREAD of the same handle holds or is acquiring it waits on a condition
 *     variable, which signals do not interrupt: use cancellation for those.
 *   - xlock_cancel(l) (and xlock_sem_cancel, xlock_psem_cancel) makes every wait on that handle
 *     which is in progress when it is called return XLOCK_ECANCELED within 50 ms, leaving the object
 *     not held. It affects:
 *       * in-process waits (another thread of the handle holds it): always;
 *       * timed lock waits (the bell loop of XL-WAIT-12): always;
 *       * counting-semaphore waits (always the bell loop, XL-WAIT-11): always;
 *       * untimed lock waits: only if the lock was opened with options.cancellable = 1, which makes
 *         untimed waits run the bell loop with an infinite deadline instead of a blocking
 *         flock(2) (a release by xlock still wakes the waiter at once through the bell; a foreign
 *         releaser such as flock(1) is noticed by the safety poll, within 16 ms). Without
 *         cancellable, an untimed lock wait is a blocking flock(2) that only a signal ends
 *         (XLOCK_EINTR above);
 *       * raw POSIX semaphore waits: only if opened with cancellable = 1 (the wait is then made of
 *         sem_clockwait slices of at most 16 ms; a post still wakes it at once).
 *     The bell loop re-checks the cancel flag at every iteration, and an iteration never sleeps
 *     past the next safety poll (at most 16 ms apart [XL-WAIT-7]); xlock_cancel also wakes the
 *     handle's bell word (FUTEX_WAKE), so a bell wait usually ends at once.
 *     A cancel while no wait is in progress is a no-op: it does not cancel a later wait.
 *   - Race-free cancellation for bindings (e.g. a Ruby unblocking function, which may run just
 *     BEFORE the waiting thread enters the library): take a token with xlock_cancel_token(l) before
 *     starting the wait, and wait with xlock_acquire_token(l, timeout_ms, token). Such a wait fails
 *     with XLOCK_ECANCELED if xlock_cancel(l) was called at any time after the token was taken,
 *     including before the wait began. A cancel aimed at one thread also cancels the other threads
 *     waiting on the same handle with older tokens; they see XLOCK_ECANCELED and may retry with a
 *     fresh token.
 *   - Alternatively a binding may interrupt the waiting thread with pthread_kill() and a signal
 *     handled without SA_RESTART (as Ruby's RUBY_UBF_IO does with SIGVTALRM): see the first point.
 */
#ifndef XLOCK_H
#define XLOCK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XLOCK_EXPORT marks the public symbols. The shared library is built with -fvisibility=hidden, so
 * only these are exported. A program that compiles the sources into itself (e.g. a Ruby extension)
 * and does not want to export them defines XLOCK_EMBED and compiles with -fvisibility=hidden. */
#if defined(XLOCK_EMBED)
#define XLOCK_EXPORT
#elif defined(__GNUC__) && __GNUC__ >= 4
#define XLOCK_EXPORT __attribute__((visibility("default")))
#else
#define XLOCK_EXPORT
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions. Every constant also has a function, for FFI users that cannot see macros.
 * ------------------------------------------------------------------------------------------- */

#define XLOCK_VERSION_MAJOR 0
#define XLOCK_VERSION_MINOR 2
#define XLOCK_VERSION_PATCH 0
#define XLOCK_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH */
#define XLOCK_VERSION (XLOCK_VERSION_MAJOR * 10000 + XLOCK_VERSION_MINOR * 100 + XLOCK_VERSION_PATCH)
/* The ABI version is the SONAME's major number: libxlock.so.1. */
#define XLOCK_ABI_VERSION 1
#define XLOCK_SPEC_VERSION "xlock/1"

/* XLOCK_VERSION of the library actually loaded. Pure; thread-safe. */
XLOCK_EXPORT int xlock_version(void);
/* XLOCK_VERSION_STRING of the library actually loaded ("0.2.0"). Static storage. */
XLOCK_EXPORT const char *xlock_version_string(void);
/* XLOCK_ABI_VERSION of the library actually loaded (1). */
XLOCK_EXPORT int xlock_abi_version(void);
/* The spec implemented: "xlock/1". Static storage. */
XLOCK_EXPORT const char *xlock_spec_version(void);

/* ---------------------------------------------------------------------------------------------
 * Errors [XL-ERR-1, XL-ERR-2]. The values are fixed by the spec (spec/vectors/errors.json).
 * ------------------------------------------------------------------------------------------- */

typedef enum xlock_error {
    XLOCK_OK = 0,
    XLOCK_EWOULDBLOCK = -1,    /* WOULD_BLOCK: try acquisition found the lock held */
    XLOCK_ETIMEDOUT = -2,      /* TIMEOUT: the deadline passed */
    XLOCK_EINVALNAME = -3,     /* INVALID_NAME: the name breaks spec §3 */
    XLOCK_EINVAL = -4,         /* INVALID_ARGUMENT: another argument is invalid */
    XLOCK_EINSECURE = -5,      /* INSECURE_NAMESPACE: a check of spec §2 or §6 refused a path */
    XLOCK_EUNSUPPORTEDFS = -6, /* UNSUPPORTED_FS: network/FUSE file system [XL-NS-10] */
    XLOCK_ENOTHELD = -7,       /* NOT_HELD: release of what is not held */
    XLOCK_EALREADY = -8,       /* ALREADY_HELD: [XL-HOLD-3] */
    XLOCK_ECAPACITY = -9,      /* CAPACITY_MISMATCH: [XL-CSEM-3] */
    XLOCK_EINTR = -10,         /* INTERRUPTED: [XL-WAIT-9] */
    XLOCK_ECANCELED = -11,     /* CANCELLED: [XL-WAIT-10] */
    XLOCK_EOS = -12,           /* OS_ERROR: another system call failed; see xlock_last_errno() */
    /* The kinds of PostgreSQL namespaces (spec §16). libxlock does not implement them yet and never
     * returns these codes; they are here so the table matches spec/vectors/errors.json. */
    XLOCK_ELOST = -13,               /* LOST: [XL-PG-10] */
    XLOCK_EUNSUPPORTEDBACKEND = -14, /* UNSUPPORTED_BACKEND: [XL-PG-6, XL-PG-9] */
    XLOCK_EBACKEND = -15             /* BACKEND_ERROR: [XL-PG-15] */
} xlock_error;

/* A short English description of an error code ("the deadline passed"). 0 gives "success"; an
 * unknown code gives "unknown xlock error". Static storage; thread-safe. */
XLOCK_EXPORT const char *xlock_strerror(int code);
/* The spec's kind string of an error code ("TIMEOUT"); 0 gives "OK"; an unknown code gives NULL.
 * Static storage; thread-safe. */
XLOCK_EXPORT const char *xlock_errname(int code);
/* The errno of the system call behind the calling thread's most recent failed xlock call (0 if that
 * failure was not caused by a system call). Thread-local; successful calls do not change it. */
XLOCK_EXPORT int xlock_last_errno(void);
/* The message of the calling thread's most recent failed xlock call: names the lock (name and
 * path), the rule that failed, and what to do [XL-ERR-3]. "" if no call has failed in this thread.
 * Thread-local storage, valid until the thread's next failing xlock call. */
XLOCK_EXPORT const char *xlock_last_message(void);

/* ---------------------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------------------- */

#define XLOCK_OPTIONS_VERSION 1

typedef struct xlock_options {
    /* XLOCK_OPTIONS_VERSION; set by xlock_options_init. Lets later versions add fields. */
    unsigned int version;
    /* The namespace directory, an absolute path; NULL chooses per [XL-NS-1]: the environment
     * variable XLOCK_NAMESPACE if set and non-empty, else /tmp/xlock-<euid> [XL-NS-2]. The string
     * is copied by the open call. */
    const char *namespace_path;
    /* Locks only: 1 for a shared (LOCK_SH) lock object, 0 (default) for exclusive [XL-LOCK-7]. */
    int shared;
    /* Locks only: 1 makes the object reentrant for its holding thread [XL-HOLD-4]. */
    int reentrant;
    /* 1 accepts a namespace on a file system refused by [XL-NS-10] (also enabled by the environment
     * variable XLOCK_ALLOW_UNSUPPORTED_FS=1) [XL-NS-11]. */
    int allow_unsupported_fs;
    /* Locks and raw POSIX semaphores: 1 makes untimed waits cancellable by xlock_cancel /
     * xlock_psem_cancel (see "Interruption and cancellation" above). Default 0: untimed lock waits
     * are a blocking flock(2) [XL-WAIT-2]. Counting-semaphore waits are always cancellable. */
    int cancellable;
} xlock_options;

/* Fills *opts with the defaults: version = XLOCK_OPTIONS_VERSION, namespace_path = NULL, every flag
 * 0. Passing NULL options to an open function is the same as passing these defaults.
 * Errors: XLOCK_EINVAL if opts is NULL. Thread-safe. */
XLOCK_EXPORT int xlock_options_init(xlock_options *opts);
/* sizeof(xlock_options) as the library was compiled, for FFI users that allocate it themselves. */
XLOCK_EXPORT size_t xlock_options_size(void);

/* ---------------------------------------------------------------------------------------------
 * The pure name mapping [XL-SEM-6, XL-INTRO-1]. These functions never touch the file system or any
 * semaphore; they are thread-safe and fork-safe. They write a NUL-terminated string into buf and
 * return its length (without the NUL). If buf is NULL and size is 0 they write nothing and return
 * the length needed (without the NUL). If size is too small they return XLOCK_EINVAL (the message
 * gives the size needed) and write nothing useful.
 * Buffers of XLOCK_FILE_NAME_SIZE and XLOCK_SEM_NAME_SIZE bytes are always large enough.
 * ------------------------------------------------------------------------------------------- */

/* 255 (NAME_MAX) + NUL; the longest file name is 249 bytes [XL-ENC-5]. */
#define XLOCK_FILE_NAME_SIZE 256
/* 30 bytes + NUL [XL-SEM-4]. */
#define XLOCK_SEM_NAME_SIZE 31
/* Longest name, in UTF-8 bytes [XL-NAME-1]. */
#define XLOCK_NAME_MAX 80
/* Capacity bounds of a counting semaphore [XL-CSEM-1]. */
#define XLOCK_CAPACITY_MAX 1000
/* Kinds [XL-SEM-2, XL-SEM-7]: 'l' and 's' select bell words of locks and counting semaphores;
 * 'p' names raw POSIX semaphores. */
#define XLOCK_KIND_LOCK 'l'
#define XLOCK_KIND_SEMAPHORE 's'
#define XLOCK_KIND_POSIX_SEMAPHORE 'p'
/* Words of a bell [XL-BELL-1]: bell words are 0..XLOCK_BELL_WORDS-1. */
#define XLOCK_BELL_WORDS 1024
/* The bell's file name in a namespace directory [XL-BELL-1]. */
#define XLOCK_BELL_FILE ".xlock-bell"

/* Functions for the constants above (FFI). */
XLOCK_EXPORT size_t xlock_file_name_size(void);
XLOCK_EXPORT size_t xlock_sem_name_size(void);
XLOCK_EXPORT int xlock_name_max(void);
XLOCK_EXPORT int xlock_capacity_max(void);

/* Checks a name against [XL-NAME-1] (1..80 UTF-8 bytes), [XL-NAME-2] (no control characters
 * U+0000-U+001F, U+007F-U+009F) and [XL-NAME-3] (well-formed UTF-8, no surrogates, no overlong
 * forms, nothing above U+10FFFF). Returns 0 or XLOCK_EINVALNAME; the message says which rule
 * failed. Errors: XLOCK_EINVAL if name is NULL while len > 0. */
XLOCK_EXPORT int xlock_validate_name(const char *name, size_t len);

/* The lock file name enc(name) || ".lock" [XL-ENC-1, XL-ENC-3].
 * Errors: XLOCK_EINVALNAME, XLOCK_EINVAL (NULL name, buffer too small). */
XLOCK_EXPORT int xlock_lock_file_name(char *buf, size_t size, const char *name, size_t len);
/* The counting-semaphore capacity file name enc(name) || ".sem" [XL-ENC-3]. Errors as above. */
XLOCK_EXPORT int xlock_capacity_file_name(char *buf, size_t size, const char *name, size_t len);
/* The slot file name enc(name) || "." || decimal(slot) || ".slot" [XL-ENC-3].
 * Errors as above, and XLOCK_EINVAL if slot > 999 (XLOCK_CAPACITY_MAX - 1). */
XLOCK_EXPORT int xlock_slot_file_name(char *buf, size_t size, const char *name, size_t len,
                                      unsigned int slot);
/* The POSIX semaphore name "/xl1" || kind || b32(SHA-256(...))[0..25) for (kind, namespace
 * identity dev/ino, name) [XL-SEM-1..XL-SEM-5]; always 30 bytes. kind is
 * XLOCK_KIND_POSIX_SEMAPHORE ('p'), the name of a raw semaphore [XL-PSEM-1]; 'l' and 's' give the
 * names of draft 1's withdrawn doorbells [XL-SEM-2] (useful only to unlink leftovers); any other kind
 * is XLOCK_EINVAL. Errors as above. */
XLOCK_EXPORT int xlock_semaphore_name(char *buf, size_t size, int kind, unsigned long long dev,
                                      unsigned long long ino, const char *name, size_t len);
/* The default namespace path "/tmp/xlock-" || decimal(euid) [XL-NS-2] (does not consult
 * XLOCK_NAMESPACE and touches nothing). Errors: XLOCK_EINVAL (buffer too small). */
XLOCK_EXPORT int xlock_default_namespace(char *buf, size_t size);
/* The bell word of a lock (kind 'l') or counting semaphore (kind 's') named `name`:
 * u32be(SHA-256("xlock/1" 0 "bell" 0 kind 0 name)[0..4)) mod 1024 [XL-SEM-7]. It does not depend on
 * the namespace. Pure (touches nothing); thread-safe.
 * Returns the word, 0..1023. Errors: XLOCK_EINVALNAME, XLOCK_EINVAL (another kind, NULL name). */
XLOCK_EXPORT int xlock_bell_word(int kind, const char *name, size_t len);
/* SHA-256 of len bytes (FIPS 180-4), as used by [XL-SEM-1]; digest must have 32 bytes.
 * Errors: XLOCK_EINVAL if digest is NULL or data is NULL while len > 0. */
XLOCK_EXPORT int xlock_sha256(unsigned char digest[32], const void *data, size_t len);

/* ---------------------------------------------------------------------------------------------
 * Namespaces (all open and remove functions). Resolution [XL-NS-1]; the path must be absolute
 * [XL-NS-3] (else XLOCK_EINVAL); trailing '/' are removed, nothing else is normalised [XL-NS-14];
 * a missing directory is created with mkdir(path, 0700) (last component only) and, if this call
 * created it, fchmod'ed to 0700 whatever the umask [XL-NS-4]; it is opened with
 * O_NOFOLLOW|O_DIRECTORY and checked on the descriptor [XL-NS-5]: a symbolic link or non-directory
 * as last component, a directory we may not open (EACCES: the message names its owner), a
 * directory owned by another user than the effective user or root [XL-NS-6], group/other-writable
 * without the sticky bit [XL-NS-7], or a namespace chosen by the default rule (not the same path
 * given explicitly or by XLOCK_NAMESPACE) not owned by the effective user or granting any
 * group/other permission [XL-NS-8] gives XLOCK_EINSECURE; a refused file system gives
 * XLOCK_EUNSUPPORTEDFS [XL-NS-10, XL-NS-11]. Lock, slot and bell files and raw semaphores get the
 * namespace's file mode (0600 private, 0660 group-shared, 0666 world-shared), capacity files that
 * mode without group/other write [XL-NS-13]. In a shared namespace the re-check after flock is the
 * strict path check [XL-LOCK-8] and the bell is only touched through the kernel [XL-BELL-5].
 * Files of the namespace: EACCES/EPERM, a symbolic link, a socket, directory, FIFO or device give
 * XLOCK_EINSECURE naming the file's owner [XL-LOCK-4, XL-LOCK-5, XL-ERR-5]. A file that keeps
 * being created and removed under us gives XLOCK_EOS with errno EAGAIN after 100 rounds
 * [XL-LOCK-12]. A missing parent directory or another failing system call gives XLOCK_EOS.
 * The objects of a process share one verified namespace per path (its descriptor and bell): before
 * a new object reuses it, an lstat of the path must show the same directory, owner and mode, else
 * the namespace is opened and checked anew [XL-NS-16]. The last namespace used stays open (one
 * descriptor, and its bell's mapping) after its last object closes, for the next object; so a
 * lock object costs one descriptor, its lock file. After fork the child keeps using it.
 * Arguments are checked in the order name (XLOCK_EINVALNAME), the other arguments in the order of
 * the signature (XLOCK_EINVAL), then the namespace [XL-NAME-6].
 * ------------------------------------------------------------------------------------------- */

/* How widely a namespace is shared [XL-NS-9, XL-NS-15]: its directory grants write to nobody but
 * its owner, to its group only, or to others. */
#define XLOCK_SHARING_PRIVATE 0
#define XLOCK_SHARING_GROUP 1
#define XLOCK_SHARING_WORLD 2
/* "private", "group" or "world" (the driver protocol's words); NULL for another value. Static. */
XLOCK_EXPORT const char *xlock_sharing_name(int sharing);

/* ---------------------------------------------------------------------------------------------
 * Locks [§6-§9]
 * ------------------------------------------------------------------------------------------- */

typedef struct xlock xlock_t;

/* Opens a lock object for `name` in the namespace chosen by opts (NULL: defaults), exclusive or
 * shared (opts->shared) for its whole life [XL-LOCK-10]. Opens (creating if needed, mode per
 * [XL-NS-13]) the lock file [XL-LOCK-1..XL-LOCK-6] and the namespace's bell (creating it if needed,
 * once per namespace per process [XL-BELL-2]); a bell that cannot be created, opened, checked or
 * mapped is not an error: waits fall back to the safety poll and xlock_bell_status says why
 * [XL-BELL-8]. The object is not held.
 * Errors: XLOCK_EINVAL (out or name NULL, bad options), XLOCK_EINVALNAME, XLOCK_EINSECURE (namespace
 * checks; a symbolic link [XL-LOCK-4] or a non-regular file such as a FIFO [XL-LOCK-5] at the lock
 * file path — the link and its target are left untouched, a FIFO never blocks the call),
 * XLOCK_EUNSUPPORTEDFS, XLOCK_EOS. On failure *out is set to NULL. */
XLOCK_EXPORT int xlock_open(xlock_t **out, const char *name, const xlock_options *opts);
/* As xlock_open with a name of len bytes (may contain NUL, which is then XLOCK_EINVALNAME). */
XLOCK_EXPORT int xlock_open_n(xlock_t **out, const char *name, size_t len, const xlock_options *opts);
/* Releases the lock if this object holds it (also a reentrant count > 1) [XL-HOLD-10], closes its
 * descriptor, drops its use of the bell, frees the object. NULL is a no-op. Must not race any other call
 * on the same object. In a forked child it never unlocks the parent's lock [XL-HOLD-7]. */
XLOCK_EXPORT void xlock_close(xlock_t *l);

/* One non-blocking attempt (flock LOCK_NB, then the re-check of [XL-LOCK-8]: the locked file's
 * link count is above zero in a private namespace, the path still names the locked file in a
 * shared one; else it was removed and the path is reopened) [XL-WAIT-1].
 * Returns 0 when held. Errors: XLOCK_EWOULDBLOCK (held by another object, process, or by another
 * thread through this object), XLOCK_EALREADY (this thread holds this non-reentrant object
 * [XL-HOLD-3]; a reentrant one increments its count instead [XL-HOLD-4]), XLOCK_EINSECURE (the lock
 * file was replaced by a symlink or non-regular file and had to be reopened), XLOCK_EINVAL (NULL),
 * XLOCK_EOS. */
XLOCK_EXPORT int xlock_try_acquire(xlock_t *l);
/* Acquires, waiting at least timeout_ms milliseconds [XL-WAIT-3]. timeout_ms < 0: untimed, a
 * blocking flock(2) [XL-WAIT-2] (the bell loop with an infinite deadline if opened cancellable).
 * timeout_ms >= 0: the deadline is CLOCK_MONOTONIC now + timeout_ms (timeouts beyond ~285 years
 * wait for ever), and the wait is the bell loop of [XL-WAIT-12] with the safety polls of
 * [XL-WAIT-7]; 0 is a single attempt. A wait never ends more than one loop iteration after its
 * deadline, however often the bell word is rung. While another thread holds or is acquiring
 * this same object, the call first waits on the object's condition variable (same deadline)
 * [XL-HOLD-2]. Returns 0 when held.
 * Errors: XLOCK_ETIMEDOUT (not earlier than the deadline), XLOCK_EALREADY [XL-HOLD-3],
 * XLOCK_EINTR [XL-WAIT-9], XLOCK_ECANCELED [XL-WAIT-10], XLOCK_EINSECURE, XLOCK_EINVAL, XLOCK_EOS.
 * On any error the object is not held (or still held by its previous holder). */
XLOCK_EXPORT int xlock_acquire(xlock_t *l, long long timeout_ms);
/* Releases: flock(LOCK_UN), then rings the lock's bell word if a waiter announced itself
 * [XL-LOCK-9, XL-BELL-6] (in a private namespace no system call besides flock when nobody waits).
 * Any thread may release a non-reentrant object [XL-HOLD-5]; a reentrant one only from its holding
 * thread, and only the last release unlocks [XL-HOLD-4].
 * Errors: XLOCK_ENOTHELD (not held, held by another thread for a reentrant object, or in a forked
 * child [XL-HOLD-6, XL-HOLD-7]; nothing changes), XLOCK_EINVAL (NULL), XLOCK_EOS. */
XLOCK_EXPORT int xlock_release(xlock_t *l);
/* 1 if this object holds the lock, 0 if not, XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_locked(xlock_t *l);
/* Cancels every wait on l in progress now [XL-WAIT-10] (see "Interruption and cancellation"):
 * each returns XLOCK_ECANCELED within 50 ms, not held. Returns 0; XLOCK_EINVAL for NULL. Safe to call
 * from any thread (but not concurrently with xlock_close(l)); async-signal-safe it is NOT. */
XLOCK_EXPORT int xlock_cancel(xlock_t *l);
/* The current cancellation token of l, for xlock_acquire_token. 0 for NULL. */
XLOCK_EXPORT unsigned long long xlock_cancel_token(xlock_t *l);
/* As xlock_acquire, but fails with XLOCK_ECANCELED (holding nothing) if xlock_cancel(l) has been
 * called since `token` was obtained from xlock_cancel_token(l), even before this call began. */
XLOCK_EXPORT int xlock_acquire_token(xlock_t *l, long long timeout_ms, unsigned long long token);

/* Introspection [XL-INTRO-1]. Strings belong to the object and live until xlock_close; NULL for a
 * NULL object. */
XLOCK_EXPORT const char *xlock_name(const xlock_t *l);      /* the name (UTF-8, NUL-terminated) */
XLOCK_EXPORT const char *xlock_path(const xlock_t *l);      /* the lock file path */
XLOCK_EXPORT const char *xlock_namespace(const xlock_t *l); /* the namespace directory path */
/* Deprecated: draft 1's doorbell name. Always NULL (doorbells are withdrawn [XL-SEM-2]); kept so the
 * ABI keeps its symbol. */
XLOCK_EXPORT const char *xlock_semaphore(const xlock_t *l);
XLOCK_EXPORT const char *xlock_bell(const xlock_t *l); /* the bell file path [XL-BELL-1] */
/* The lock's bell word, xlock_bell_word('l', name) (0..1023); XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_lock_bell_word(const xlock_t *l);
/* "usable", or why the namespace's bell is not used ("not 4096 bytes", "missing", ...) [XL-BELL-8].
 * Static storage; NULL for NULL. The state may change from usable to unusable (a failed futex). */
XLOCK_EXPORT const char *xlock_bell_status(const xlock_t *l);
/* XLOCK_SHARING_PRIVATE, _GROUP or _WORLD [XL-NS-15]; XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_sharing(const xlock_t *l);
/* The namespace identity (st_dev, st_ino) [XL-SEM-5]. Errors: XLOCK_EINVAL (a NULL pointer). */
XLOCK_EXPORT int xlock_namespace_id(unsigned long long *dev, unsigned long long *ino, const xlock_t *l);
XLOCK_EXPORT int xlock_is_shared(const xlock_t *l);    /* 1 shared, 0 exclusive, XLOCK_EINVAL */
XLOCK_EXPORT int xlock_is_reentrant(const xlock_t *l); /* 1 / 0 / XLOCK_EINVAL */

/* Safe removal of an idle lock file [XL-RM-1, XL-RM-2]: opens the existing lock file (never
 * creating it), takes flock(LOCK_EX|LOCK_NB), checks that the path still names the file it holds
 * (the strict check of [XL-LOCK-8]), unlinks it, releases and rings the bell word (the bell only if
 * it exists: removal creates nothing [XL-RM-6]). *removed is set to 1 if this call unlinked the
 * file, 0 if there was none [XL-RM-7]. Lock files are never renamed [XL-RM-5].
 * Errors: XLOCK_EWOULDBLOCK (held: nothing removed), XLOCK_EINSECURE (also EPERM/EACCES on unlink in
 * a sticky shared namespace: the message names the file's owner), the namespace and name errors of
 * xlock_open, XLOCK_EINVAL, XLOCK_EOS. A waiter on the removed file re-opens the path [XL-RM-4]. */
XLOCK_EXPORT int xlock_remove(int *removed, const char *name, const xlock_options *opts);
XLOCK_EXPORT int xlock_remove_n(int *removed, const char *name, size_t len, const xlock_options *opts);

/* ---------------------------------------------------------------------------------------------
 * Crash-safe counting semaphores [§10]
 * ------------------------------------------------------------------------------------------- */

typedef struct xlock_sem xlock_sem_t;

/* Opens the counting semaphore `name` with `capacity` permits (1..1000 [XL-CSEM-1], else
 * XLOCK_EINVAL). Reads the capacity file, creating it atomically if missing (a temporary file with a
 * random name, linkat [XL-CSEM-4]); opens the namespace's bell as xlock_open does. opts->shared and
 * opts->reentrant must be 0 (XLOCK_EINVAL). Slot files are opened on demand; the object keeps at
 * most 64 idle slot descriptors open plus one per permit held and that of the slot its next round
 * starts at (the last one acquired or released [XL-CSEM-5]).
 * Errors: XLOCK_ECAPACITY (the file says another capacity or is malformed; the message gives both
 * and the file's owner),
 * XLOCK_EINVAL, XLOCK_EINVALNAME, XLOCK_EINSECURE (also a symlink or non-regular capacity file),
 * XLOCK_EUNSUPPORTEDFS, XLOCK_EOS. On failure *out is NULL. */
XLOCK_EXPORT int xlock_sem_open(xlock_sem_t **out, const char *name, long capacity,
                                const xlock_options *opts);
XLOCK_EXPORT int xlock_sem_open_n(xlock_sem_t **out, const char *name, size_t len, long capacity,
                                  const xlock_options *opts);
/* Releases every permit held (rings the bell word), closes, frees. NULL is a no-op. Must not race any
 * other call on the object. */
XLOCK_EXPORT void xlock_sem_close(xlock_sem_t *s);
/* One pass over the slots 0..N-1 not held by this object, with LOCK_EX|LOCK_NB [XL-CSEM-5]. Returns the
 * slot index held
 * (>= 0). An object may hold several permits (one per successful call) [XL-CSEM-6].
 * Errors: XLOCK_EWOULDBLOCK (every slot busy), XLOCK_EINSECURE, XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_sem_try_acquire(xlock_sem_t *s);
/* Acquires a permit, waiting per [XL-WAIT-11] (the bell loop; timeout_ms < 0: no deadline).
 * Returns the slot index held (>= 0).
 * Errors: XLOCK_ETIMEDOUT, XLOCK_EINTR, XLOCK_ECANCELED, XLOCK_EINSECURE, XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_sem_acquire(xlock_sem_t *s, long long timeout_ms);
/* Returns the most recently acquired permit and rings the bell word [XL-CSEM-6]. Any thread may
 * release. Errors: XLOCK_ENOTHELD (none held; also in a forked child), XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_sem_release(xlock_sem_t *s);
/* The number of permits this object holds (>= 0), XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_sem_held(xlock_sem_t *s);
/* Cancels the waits in progress on s (always possible for counting semaphores) [XL-WAIT-10]. */
XLOCK_EXPORT int xlock_sem_cancel(xlock_sem_t *s);
XLOCK_EXPORT unsigned long long xlock_sem_cancel_token(xlock_sem_t *s);
/* As xlock_sem_acquire, cancelled by any xlock_sem_cancel(s) since the token was taken. */
XLOCK_EXPORT int xlock_sem_acquire_token(xlock_sem_t *s, long long timeout_ms, unsigned long long token);
/* Introspection [XL-INTRO-1]; strings live until xlock_sem_close, NULL for NULL. */
XLOCK_EXPORT const char *xlock_sem_name(const xlock_sem_t *s);
XLOCK_EXPORT const char *xlock_sem_path(const xlock_sem_t *s); /* the capacity file path */
XLOCK_EXPORT const char *xlock_sem_namespace(const xlock_sem_t *s);
/* Deprecated: always NULL (draft 1's doorbell is withdrawn [XL-SEM-2]); kept for the ABI. */
XLOCK_EXPORT const char *xlock_sem_semaphore(const xlock_sem_t *s);
XLOCK_EXPORT const char *xlock_sem_bell(const xlock_sem_t *s); /* the bell file path */
/* xlock_bell_word('s', name) (0..1023); XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_sem_bell_word(const xlock_sem_t *s);
XLOCK_EXPORT const char *xlock_sem_bell_status(const xlock_sem_t *s); /* as xlock_bell_status */
XLOCK_EXPORT int xlock_sem_sharing(const xlock_sem_t *s);             /* as xlock_sharing */
XLOCK_EXPORT int xlock_sem_namespace_id(unsigned long long *dev, unsigned long long *ino,
                                        const xlock_sem_t *s);
XLOCK_EXPORT long xlock_sem_capacity(const xlock_sem_t *s); /* capacity, XLOCK_EINVAL for NULL */

/* Safe removal of an idle counting semaphore's files [XL-RM-3]: reads the capacity file (which must
 * be well-formed and, if capacity is not 0, say `capacity`: else XLOCK_ECAPACITY naming the file
 * and its owner, nothing removed; capacity 0 takes the capacity the file records; otherwise
 * 1..1000 or XLOCK_EINVAL), holds every slot with LOCK_EX|LOCK_NB (else XLOCK_EWOULDBLOCK, nothing
 * removed), each checked to be the file at its path [XL-RM-2], unlinks the slot files then the
 * capacity file, releases and rings the bell word (only if the bell exists [XL-RM-6]).
 * *removed: 1 if this call unlinked at least one file, 0 if there was no capacity file [XL-RM-7]. */
XLOCK_EXPORT int xlock_sem_remove(int *removed, const char *name, long capacity,
                                  const xlock_options *opts);
XLOCK_EXPORT int xlock_sem_remove_n(int *removed, const char *name, size_t len, long capacity,
                                    const xlock_options *opts);

/* ---------------------------------------------------------------------------------------------
 * Raw POSIX named semaphores [§11]. Their permits are NOT returned when a holder dies
 * [XL-PSEM-1]. xlock_psem_unlink removes the name, but processes that have it open keep the old
 * object and later openers get a new one, so the two groups no longer exclude each other
 * [XL-PSEM-5]: unlink only when no process uses it. The library never calls sem_open: it opens or
 * creates /dev/shm/sem.NAME itself, checks it on the descriptor, maps it and applies sem_* to that
 * mapping [XL-PSEM-2, XL-PSEM-3], so a planted empty or short file cannot crash the process (a
 * member of a shared namespace can still truncate it later [XL-THREAT-4]). The file is
 * glibc's: programs calling sem_open(name) meet the same semaphore. A sem_t is laid out by the C
 * library: do not share a raw semaphore between glibc and musl programs [XL-PSEM-7].
 * ------------------------------------------------------------------------------------------- */

typedef struct xlock_psem xlock_psem_t;

/* Opens (creating with initial `value`, 0..SEM_VALUE_MAX, else XLOCK_EINVAL whose message gives
 * the value as passed) the raw semaphore of (namespace, name), named with kind 'p' [XL-PSEM-2]:
 * opens /dev/shm/sem.NAME (creating it atomically from a temporary file holding a sem_t made by
 * sem_init(&s, 1, value), then link), and checks on the descriptor [XL-PSEM-3]: a regular file of
 * at least sizeof(sem_t) bytes, owned by the effective user, root or the namespace owner, or by
 * anyone if the namespace is shared (XLOCK_EINSECURE naming the owner otherwise, also for
 * EACCES/ELOOP on the open); its mode is set to the namespace file mode if we own it. Then maps it.
 * opts->shared and opts->reentrant must be 0 (XLOCK_EINVAL). On failure *out is NULL.
 * Errors: XLOCK_EINVAL, XLOCK_EINVALNAME, XLOCK_EINSECURE, XLOCK_EUNSUPPORTEDFS, XLOCK_EOS. */
XLOCK_EXPORT int xlock_psem_open(xlock_psem_t **out, const char *name, long value,
                                 const xlock_options *opts);
XLOCK_EXPORT int xlock_psem_open_n(xlock_psem_t **out, const char *name, size_t len, long value,
                                   const xlock_options *opts);
/* Posts back the permits this object still holds (as closing a lock releases it) [XL-PSEM-6],
 * unmaps and frees. NULL is a no-op. Must not race any other call on the object. (A process that
 * dies without closing does NOT give its permits back [XL-PSEM-1]; in a forked child the object
 * holds none and posts nothing [XL-HOLD-11].) */
XLOCK_EXPORT void xlock_psem_close(xlock_psem_t *p);
/* sem_trywait [XL-PSEM-4]. Returns 0. Errors: XLOCK_EWOULDBLOCK, XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_psem_try_acquire(xlock_psem_t *p);
/* sem_wait (timeout_ms < 0) or sem_clockwait(CLOCK_MONOTONIC) until the deadline [XL-PSEM-4].
 * Returns 0. Errors: XLOCK_ETIMEDOUT, XLOCK_EINTR, XLOCK_ECANCELED (only if opened cancellable),
 * XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_psem_acquire(xlock_psem_t *p, long long timeout_ms);
/* sem_post, if this object holds a permit. Errors: XLOCK_ENOTHELD (none held: no over-release;
 * also in a forked child [XL-HOLD-11]), XLOCK_EOS (EOVERFLOW), XLOCK_EINVAL. */
XLOCK_EXPORT int xlock_psem_release(xlock_psem_t *p);
/* The number of permits this object holds (>= 0), XLOCK_EINVAL for NULL. */
XLOCK_EXPORT int xlock_psem_held(xlock_psem_t *p);
/* sem_getvalue into *value. Errors: XLOCK_EINVAL, XLOCK_EOS. */
XLOCK_EXPORT int xlock_psem_value(int *value, xlock_psem_t *p);
/* Cancels waits in progress on p if it was opened cancellable [XL-WAIT-10]. */
XLOCK_EXPORT int xlock_psem_cancel(xlock_psem_t *p);
XLOCK_EXPORT unsigned long long xlock_psem_cancel_token(xlock_psem_t *p);
XLOCK_EXPORT int xlock_psem_acquire_token(xlock_psem_t *p, long long timeout_ms,
                                          unsigned long long token);
/* Introspection [XL-INTRO-1]; strings live until xlock_psem_close, NULL for NULL. */
XLOCK_EXPORT const char *xlock_psem_name(const xlock_psem_t *p);
XLOCK_EXPORT const char *xlock_psem_namespace(const xlock_psem_t *p);
XLOCK_EXPORT const char *xlock_psem_semaphore(const xlock_psem_t *p); /* "/xl1p..." */
XLOCK_EXPORT int xlock_psem_sharing(const xlock_psem_t *p);           /* as xlock_sharing */
XLOCK_EXPORT int xlock_psem_namespace_id(unsigned long long *dev, unsigned long long *ino,
                                         const xlock_psem_t *p);
/* sem_unlink of the raw semaphore of (namespace, name) [XL-PSEM-5] (the namespace is resolved and
 * checked to know its identity). *removed: 1 if a semaphore was unlinked, 0 if none existed.
 * Errors: XLOCK_EINVAL, XLOCK_EINVALNAME, namespace errors, XLOCK_EOS. */
XLOCK_EXPORT int xlock_psem_unlink(int *removed, const char *name, const xlock_options *opts);
XLOCK_EXPORT int xlock_psem_unlink_n(int *removed, const char *name, size_t len,
                                     const xlock_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* XLOCK_H */
