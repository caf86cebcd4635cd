/* The test harness (see testlib.h). */
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <semaphore.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_COUNT_ERRORS 0
#endif

static int current_failed;
static char root[64];
static int ndirs;

void tl_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed = 1;
}

int tl_failed(void)
{
    return current_failed;
}

long tl_scaled(long n)
{
    const char *s = getenv("XLOCK_TEST_SCALE");
    long scale = s ? atol(s) : 1;
    if (scale < 1)
        scale = 1;
    return n / scale > 0 ? n / scale : 1;
}

long long tl_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "    (cleanup: cannot remove %s: %s)\n", path, strerror(errno));
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *new_dir(void)
{
    static char paths[32][128]; /* distinct buffers: a test may use several directories */
    char *path = paths[ndirs % 32];
    snprintf(path, sizeof paths[0], "%s/d%d", root, ++ndirs);
    if (mkdir(path, 0700) != 0) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(2);
    }
    chmod(path, 0700);
    return path;
}

const char *tl_ns(void)
{
    return new_dir();
}

const char *tl_tmpdir(void)
{
    return new_dir();
}

xlock_options tl_opts(const char *ns)
{
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = ns;
    return o;
}

/* Under valgrind a forked child inherits the parent's live allocations, which the leak check at
 * its exit would report. So there the child reports its status (99 if memcheck found errors while
 * it ran) through a pipe and waits to be killed by the parent (SIGKILL from another process skips
 * that exit-time check). */
#define MAX_CHILDREN 64
static struct {
    pid_t pid;
    int status_fd;
} children[MAX_CHILDREN];

pid_t tl_fork(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    int fds[2] = {-1, -1};
    if (RUNNING_ON_VALGRIND && pipe2(fds, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        int rc = fn(arg);
        if (RUNNING_ON_VALGRIND) {
            unsigned char c = (unsigned char)(VALGRIND_COUNT_ERRORS > 0 ? 99 : rc);
            if (write(fds[1], &c, 1) != 1)
                _exit(2);
            for (;;)
                pause();
        }
        _exit(rc);
    }
    if (fds[1] >= 0)
        close(fds[1]);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].pid == 0) {
            children[i].pid = pid;
            children[i].status_fd = fds[0];
            break;
        }
    return pid;
}

static int wait_reaped(pid_t pid, int *status)
{
    long long end = tl_ms() + 30000;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (tl_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            fprintf(stderr, "    child %d did not finish within 30 s: killed\n", (int)pid);
            return -1;
        }
        struct timespec t = {0, 2000000};
        nanosleep(&t, NULL); /* polling a child's exit, bounded by the deadline above */
    }
}

int tl_wait(pid_t pid)
{
    int status, reported = -1;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid != pid)
            continue;
        children[i].pid = 0;
        if (children[i].status_fd < 0)
            break;
        struct pollfd pfd = {children[i].status_fd, POLLIN, 0};
        unsigned char c;
        if (poll(&pfd, 1, 30000) == 1 && read(children[i].status_fd, &c, 1) == 1)
            reported = c;
        close(children[i].status_fd);
        if (reported >= 0)
            kill(pid, SIGKILL); /* it reported and waits to be killed (valgrind) */
        break;
    }
    if (wait_reaped(pid, &status) != 0)
        return -1;
    if (reported >= 0)
        return reported;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

void tl_pipe_open(tl_pipe *p)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        perror("pipe");
        exit(2);
    }
    p->r = fds[0];
    p->w = fds[1];
}

void tl_pipe_close(tl_pipe *p)
{
    if (p->r >= 0)
        close(p->r);
    if (p->w >= 0)
        close(p->w);
    p->r = p->w = -1;
}

void tl_send(tl_pipe *p, char c)
{
    while (write(p->w, &c, 1) < 0 && errno == EINTR) {
    }
}

int tl_recv(tl_pipe *p)
{
    struct pollfd pfd = {p->r, POLLIN, 0};
    long long end = tl_ms() + 10000;
    for (;;) {
        long long left = end - tl_ms();
        if (left <= 0)
            return -1;
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        unsigned char c;
        ssize_t n = read(p->r, &c, 1);
        if (n == 1)
            return c;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

int tl_wait_flock_waiter(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    char want[64];
    snprintf(want, sizeof want, "%02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    long long end = tl_ms() + 10000;
    while (tl_ms() < end) {
        FILE *f = fopen("/proc/locks", "r");
        char line[256];
        int seen = 0;
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "->") && strstr(line, "FLOCK") && strstr(line, want))
                seen = 1;
        if (f)
            fclose(f);
        if (seen)
            return 0;
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL); /* polling observable kernel state, bounded by the deadline */
    }
    return -1;
}

int tl_take_path_away(const char *path, int by_rename)
{
    if (!by_rename)
        return unlink(path);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int fd = open(tmp, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return rename(tmp, path);
}

int tl_main(int argc, char **argv, const tl_case *cases, size_t n)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(root, sizeof root, "/tmp/xlock-ctest-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    chmod(root, 0711); /* tests that run a child as uid 65534 must reach their directories */
    int passed = 0, failed = 0;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], cases[i].name) == 0)
                wanted = 1;
        if (!wanted)
            continue;
        current_failed = 0;
        long long t0 = tl_ms();
        cases[i].fn();
        printf("%s %s.%s (%lld ms)\n", current_failed ? "FAIL" : "ok  ", prog, cases[i].name,
               tl_ms() - t0);
        if (current_failed)
            failed++;
        else
            passed++;
    }
    rm_rf(root);
    printf("%s: %d passed, %d failed\n", prog, passed, failed);
    return failed ? 1 : 0;
}

typedef struct {
    tl_holder *h;
    const char *ns, *name;
    int shared;
} holder_args;

static int holder_main(void *arg)
{
    holder_args *a = arg;
    xlock_options o = tl_opts(a->ns);
    o.shared = a->shared;
    xlock_t *l;
    if (xlock_open(&l, a->name, &o) != 0 || xlock_acquire(l, -1) != 0) {
        fprintf(stderr, "holder: %s\n", xlock_last_message());
        tl_send(&a->h->from, 'e');
        return 3;
    }
    tl_send(&a->h->from, 'h');
    int c = tl_recv(&a->h->to);
    int rc = xlock_release(l);
    xlock_close(l);
    return c == 'r' && rc == 0 ? 0 : 4;
}

int tl_holder_start(tl_holder *h, const char *ns, const char *name, int shared)
{
    holder_args a = {h, ns, name, shared};
    tl_pipe_open(&h->to);
    tl_pipe_open(&h->from);
    h->pid = tl_fork(holder_main, &a);
    int c = tl_recv(&h->from);
    return c == 'h' ? 0 : -1;
}

int tl_holder_stop(tl_holder *h)
{
    tl_send(&h->to, 'r');
    int rc = tl_wait(h->pid);
    tl_pipe_close(&h->to);
    tl_pipe_close(&h->from);
    return rc;
}

void tl_holder_kill(tl_holder *h)
{
    kill(h->pid, SIGKILL);
    tl_wait(h->pid);
    tl_pipe_close(&h->to);
    tl_pipe_close(&h->from);
}

#include <sys/syscall.h>

pid_t tl_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

int tl_wait_in_syscall(const pid_t *tid, long nr)
{
    long long end = tl_ms() + 10000;
    while (__atomic_load_n(tid, __ATOMIC_SEQ_CST) == 0 && tl_ms() < end)
        sched_yield();
    pid_t id = __atomic_load_n(tid, __ATOMIC_SEQ_CST);
    if (id == 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)id);
    while (tl_ms() < end) {
        FILE *f = fopen(path, "r");
        long got = -1;
        if (f != NULL) {
            if (fscanf(f, "%ld", &got) != 1)
                got = -1;
            fclose(f);
        }
        if (got == nr)
            return 0;
        struct timespec t = {0, 500000};
        nanosleep(&t, NULL); /* polling observable kernel state, bounded by the deadline */
    }
    return -1;
}

void tl_remove_tree(const char *dir)
{
    rm_rf(dir);
}
