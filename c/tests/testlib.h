/* A tiny test harness for libxlock: named tests, CHECK macros, temporary namespaces, child
 * processes and pipes for synchronisation. Every program ends with "N passed, M failed". */
#ifndef XLOCK_TESTLIB_H
#define XLOCK_TESTLIB_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "xlock.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct tl_case {
    const char *name;
    void (*fn)(void);
} tl_case;

#define TL_CASE(fn)                                                                                     \
    {                                                                                                   \
#fn, fn                                                                                         \
    }

/* Runs the cases named on the command line (all if none); prints each name and the summary. */
int tl_main(int argc, char **argv, const tl_case *cases, size_t n);

void tl_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tl_failed(void); /* the current test has failed */

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            tl_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                                     \
            return;                                                                                     \
        }                                                                                               \
    } while (0)

/* expr must return exactly `expected`; the message shows both codes and xlock_last_message(). */
#define CHECK_RC(expr, expected)                                                                        \
    do {                                                                                                \
        long long rc_ = (long long)(expr), ex_ = (long long)(expected);                                 \
        if (rc_ != ex_) {                                                                               \
            tl_fail(__FILE__, __LINE__, "%s returned %lld (%s), expected %lld (%s); last message: %s",  \
                    #expr, rc_, xlock_errname((int)rc_) ? xlock_errname((int)rc_) : "?", ex_,           \
                    xlock_errname((int)ex_) ? xlock_errname((int)ex_) : "?", xlock_last_message());     \
            return;                                                                                     \
        }                                                                                               \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, 0)

/* Iteration counts divided by XLOCK_TEST_SCALE (valgrind runs use 10), at least 1. */
long tl_scaled(long n);

/* A fresh empty namespace directory (mode 0700) for the current test, removed after it. */
const char *tl_ns(void);
/* A fresh directory for other files of the current test (removed after it). */
const char *tl_tmpdir(void);
/* Removes dir recursively (the per-test directories get this automatically). Locks and counting
 * semaphores leave nothing outside their namespace [XL-SEM-2]. */
void tl_remove_tree(const char *dir);
/* xlock_options with namespace_path = ns. */
xlock_options tl_opts(const char *ns);

/* Child processes. tl_fork runs fn(arg) in a child, which exits with fn's return value. */
pid_t tl_fork(int (*fn)(void *), void *arg);
/* Waits for the child; returns its exit status, or 128 + signal. Fails after 30 s. */
int tl_wait(pid_t pid);

/* Pipes: a one-byte message channel with a deadline (10 s) so no test can hang. */
typedef struct tl_pipe {
    int r, w;
} tl_pipe;
void tl_pipe_open(tl_pipe *p);
void tl_pipe_close(tl_pipe *p);
void tl_send(tl_pipe *p, char c);
/* Returns the byte, or -1 after the deadline or EOF. */
int tl_recv(tl_pipe *p);

/* Milliseconds of CLOCK_MONOTONIC. */
long long tl_ms(void);

/* Waits (up to 10 s) until /proc/locks shows a waiter ("->") for the file at path. 0 when seen. */
int tl_wait_flock_waiter(const char *path);

/* Takes the file at path away from its name while its holders keep their descriptors: unlinks it
 * as rm(1) does (by_rename 0), or replaces it atomically by rename(2) of a new empty file over it
 * (by_rename 1). Either leaves the old file with a link count of zero. 0 on success. */
int tl_take_path_away(const char *path, int by_rename);

#endif

/* A child process that holds a lock: started holding (or failed), released on request. */
typedef struct tl_holder {
    pid_t pid;
    tl_pipe to, from;
} tl_holder;
/* Starts a child that opens (ns, name, shared) and acquires it. 0 once it holds. */
int tl_holder_start(tl_holder *h, const char *ns, const char *name, int shared);
/* Asks it to release and exit; returns its exit status (0 = released cleanly). */
int tl_holder_stop(tl_holder *h);
/* SIGKILLs it; returns after it is reaped. */
void tl_holder_kill(tl_holder *h);

/* The calling thread's kernel id. */
pid_t tl_gettid(void);
/* Waits (up to 10 s) until a thread of this process has stored its id in *tid (atomically; 0 until
 * then) and is blocked in system call nr (e.g. SYS_futex for a semaphore wait, SYS_flock), per
 * /proc/self/task/TID/syscall. 0 when seen, -1 otherwise. */
int tl_wait_in_syscall(const pid_t *tid, long nr);
