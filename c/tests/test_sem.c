/* Crash-safe counting semaphores [§10, XL-RM-3, XL-WAIT-11]. */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static xlock_sem_t *open_sem(const char *ns, const char *name, long capacity)
{
    xlock_options o = tl_opts(ns);
    xlock_sem_t *s = NULL;
    if (xlock_sem_open(&s, name, capacity, &o) != 0)
        tl_fail(__FILE__, __LINE__, "xlock_sem_open(%s): %s", name, xlock_last_message());
    return s;
}

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return (int)n;
}

/* The capacity file's exact content and mode [XL-CSEM-3, XL-CSEM-4, XL-NS-13]. */
static void capacity_file_is_created_exactly(void)
{
    const char *ns = tl_ns();
    xlock_sem_t *s = open_sem(ns, "Pool", 3);
    CHECK(s != NULL);
    char path[512], buf[128];
    snprintf(path, sizeof path, "%s/!pool.sem", ns);
    CHECK(strcmp(xlock_sem_path(s), path) == 0);
    CHECK(read_file(path, buf, sizeof buf) == 29);
    CHECK(strcmp(buf, "xlock/1 semaphore capacity=3\n") == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(xlock_sem_capacity(s) == 3);
    CHECK(strcmp(xlock_sem_name(s), "Pool") == 0 && strcmp(xlock_sem_namespace(s), ns) == 0);
    unsigned long long dev, ino;
    char sem[XLOCK_SEM_NAME_SIZE];
    CHECK_OK(xlock_sem_namespace_id(&dev, &ino, s));
    CHECK_RC(xlock_semaphore_name(sem, sizeof sem, 's', dev, ino, "Pool", 4), 30);
    snprintf(buf, sizeof buf, "/dev/shm/sem.%s", sem + 1);
    CHECK(access(buf, F_OK) != 0);         /* no doorbell [XL-SEM-2] */
    CHECK(xlock_sem_semaphore(s) == NULL); /* deprecated */
    CHECK_RC(xlock_sem_bell_word(s), xlock_bell_word('s', "Pool", 4));
    snprintf(buf, sizeof buf, "%s/.xlock-bell", ns);
    CHECK(strcmp(xlock_sem_bell(s), buf) == 0);
    CHECK(strcmp(xlock_sem_bell_status(s), "usable") == 0);
    CHECK_RC(xlock_sem_sharing(s), XLOCK_SHARING_PRIVATE);
    /* No temporary file is left behind [XL-ENC-4]: the capacity file and the bell. */
    snprintf(buf, sizeof buf, "test $(ls -A %s | wc -l) = 2", ns);
    CHECK(system(buf) == 0);
    xlock_sem_close(s);
}

/* Another capacity, or a malformed file, is CAPACITY_MISMATCH naming both [XL-CSEM-3]; bad
 * capacities are INVALID_ARGUMENT [XL-CSEM-1]. */
static void capacity_mismatch_and_bad_capacity(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    xlock_sem_t *s = open_sem(ns, "p", 3), *t = (xlock_sem_t *)1;
    CHECK(s != NULL);
    CHECK_RC(xlock_sem_open(&t, "p", 4, &o), XLOCK_ECAPACITY);
    CHECK(t == NULL);
    CHECK(strstr(xlock_last_message(), "3") && strstr(xlock_last_message(), "4"));
    xlock_sem_close(s);
    const long bad[] = {0, -1, 1001, 1L << 40};
    for (size_t i = 0; i < COUNT(bad); i++)
        CHECK_RC(xlock_sem_open(&t, "q", bad[i], &o), XLOCK_EINVAL);
    CHECK_OK(xlock_sem_open(&t, "max", 1000, &o));
    xlock_sem_close(t);
    const char *malformed[] = {"xlock/1 semaphore capacity=03\n", "xlock/1 semaphore capacity=3",
                               "garbage", "", "xlock/1 semaphore capacity=3\n\n"};
    for (size_t i = 0; i < COUNT(malformed); i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/bad%zu.sem", ns, i);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        CHECK(fd >= 0 && write(fd, malformed[i], strlen(malformed[i])) >= 0);
        close(fd);
        char name[16];
        snprintf(name, sizeof name, "bad%zu", i);
        CHECK_RC(xlock_sem_open(&t, name, 3, &o), XLOCK_ECAPACITY);
    }
    o.shared = 1;
    CHECK_RC(xlock_sem_open(&t, "p", 3, &o), XLOCK_EINVAL);
    o.shared = 0;
    CHECK_RC(xlock_sem_open(NULL, "p", 3, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_open(&t, NULL, 3, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_open(&t, "\x7f", 3, &o), XLOCK_EINVALNAME);
    CHECK_RC(xlock_sem_open_n(&t, "a\0", 2, 3, &o), XLOCK_EINVALNAME);
    CHECK_RC(xlock_sem_acquire(NULL, -1), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_try_acquire(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_release(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_held(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_cancel(NULL), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_capacity(NULL), XLOCK_EINVAL);
    xlock_sem_close(NULL);
}

/* N permits, slots in order, most recent returned first [XL-CSEM-2, XL-CSEM-5, XL-CSEM-6]. */
static void permits_and_slots(void)
{
    const char *ns = tl_ns();
    xlock_sem_t *a = open_sem(ns, "slots", 3), *b = open_sem(ns, "slots", 3);
    CHECK(a && b);
    CHECK_RC(xlock_sem_try_acquire(a), 0);
    CHECK_RC(xlock_sem_acquire(a, -1), 1);
    CHECK_RC(xlock_sem_acquire(b, 0), 2);
    CHECK_RC(xlock_sem_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_sem_acquire(a, 30), XLOCK_ETIMEDOUT);
    CHECK_RC(xlock_sem_held(a), 2);
    CHECK_OK(xlock_sem_release(a)); /* slot 1 */
    CHECK_RC(xlock_sem_try_acquire(b), 1);
    CHECK_OK(xlock_sem_release(a)); /* slot 0 */
    CHECK_RC(xlock_sem_release(a), XLOCK_ENOTHELD);
    CHECK_RC(xlock_sem_held(a), 0);
    /* A foreign flock(1)-style holder of slot 0 is a permit holder [XL-CSEM-7]. */
    char path[512];
    snprintf(path, sizeof path, "%s/slots.0.slot", ns);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    CHECK_RC(xlock_sem_try_acquire(a), XLOCK_EWOULDBLOCK);
    close(fd);
    CHECK_RC(xlock_sem_try_acquire(a), 0);
    xlock_sem_close(b); /* closing returns its permits */
    CHECK_RC(xlock_sem_try_acquire(a), 1);
    CHECK_RC(xlock_sem_try_acquire(a), 2);
    xlock_sem_close(a);
}

/* Beyond 64 slots the object closes idle slot descriptors; permits still count right. */
static void many_slots(void)
{
    const char *ns = tl_ns();
    xlock_sem_t *a = open_sem(ns, "wide", 100), *b = open_sem(ns, "wide", 100);
    CHECK(a && b);
    for (int i = 0; i < 90; i++)
        CHECK_RC(xlock_sem_try_acquire(a), i);
    for (int i = 90; i < 100; i++)
        CHECK_RC(xlock_sem_acquire(b, 0), i);
    CHECK_RC(xlock_sem_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_sem_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_sem_release(a)); /* slot 89 */
    CHECK_RC(xlock_sem_try_acquire(b), 89);
    CHECK_RC(xlock_sem_held(a), 89);
    CHECK_RC(xlock_sem_held(b), 11);
    xlock_sem_close(a);
    CHECK_RC(xlock_sem_acquire(b, 1000), 0);
    xlock_sem_close(b);
}

/* The slot files a semaphore creates carry the names of [XL-ENC-3] (one-, two- and three-digit
 * slot numbers), as the public mapping xlock_slot_file_name gives them. */
static void slot_files_are_named_per_spec(void)
{
    const char *ns = tl_ns();
    enum { CAP = 120 };
    const char *name = "n\xc3\xa4me/x"; /* escaped by enc() */
    xlock_sem_t *a = open_sem(ns, name, CAP);
    CHECK(a != NULL);
    for (int i = 0; i < CAP; i++)
        CHECK_RC(xlock_sem_try_acquire(a), i);
    for (unsigned i = 0; i < CAP; i++) {
        char fname[XLOCK_FILE_NAME_SIZE], path[1024];
        CHECK(xlock_slot_file_name(fname, sizeof fname, name, strlen(name), i) > 0);
        snprintf(path, sizeof path, "%s/%s", ns, fname);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            tl_fail(__FILE__, __LINE__, "slot %u: %s is missing", i, path);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s | wc -l)\" -eq %d", ns, CAP + 2); /* .sem, bell */
    CHECK(system(cmd) == 0);
    xlock_sem_close(a);
}

/* A permit held by a process killed with SIGKILL comes back at once [XL-CSEM-2]. */
typedef struct {
    const char *ns;
    tl_pipe *p;
} child_args;

static int permit_holder(void *arg)
{
    child_args *a = arg;
    xlock_options o = tl_opts(a->ns);
    xlock_sem_t *s;
    if (xlock_sem_open(&s, "crash", 2, &o) != 0 || xlock_sem_acquire(s, -1) < 0 ||
        xlock_sem_acquire(s, -1) < 0)
        return 3;
    tl_send(a->p, 'h');
    pause();
    return 4;
}

static void killed_holder_returns_permits(void)
{
    const char *ns = tl_ns();
    tl_pipe p;
    tl_pipe_open(&p);
    child_args a = {ns, &p};
    pid_t pid = tl_fork(permit_holder, &a);
    CHECK(tl_recv(&p) == 'h');
    xlock_sem_t *s = open_sem(ns, "crash", 2);
    CHECK(s);
    CHECK_RC(xlock_sem_try_acquire(s), XLOCK_EWOULDBLOCK);
    kill(pid, SIGKILL);
    CHECK(tl_wait(pid) == 128 + SIGKILL);
    CHECK_RC(xlock_sem_acquire(s, 10000), 0);
    CHECK_RC(xlock_sem_acquire(s, 10000), 1);
    tl_pipe_close(&p);
    xlock_sem_close(s);
}

/* A waiter in another thread is woken by a release (the bell word, kind 's') [XL-WAIT-11]. */
typedef struct {
    xlock_sem_t *s;
    long long timeout_ms;
    int rc;
} sem_waiter;

static void *sem_wait_main(void *arg)
{
    sem_waiter *w = arg;
    w->rc = xlock_sem_acquire(w->s, w->timeout_ms);
    return NULL;
}

static void waiter_woken_by_release(void)
{
    const char *ns = tl_ns();
    xlock_sem_t *a = open_sem(ns, "bell", 1), *b = open_sem(ns, "bell", 1);
    CHECK(a && b);
    CHECK_RC(xlock_sem_acquire(a, -1), 0);
    sem_waiter w = {b, -1, 99};
    pthread_t t;
    pthread_create(&t, NULL, sem_wait_main, &w);
    CHECK_OK(xlock_sem_release(a));
    pthread_join(t, NULL);
    CHECK_RC(w.rc, 0);
    CHECK_RC(xlock_sem_held(b), 1);
    xlock_sem_close(a);
    xlock_sem_close(b);
}

/* Removal holds every slot; refused while one is held [XL-RM-3]. */
static void removal(void)
{
    const char *ns = tl_ns();
    xlock_options o = tl_opts(ns);
    int removed = -1;
    CHECK_OK(xlock_sem_remove(&removed, "never", 2, &o));
    CHECK(removed == 0);
    xlock_sem_t *s = open_sem(ns, "r", 2);
    CHECK_RC(xlock_sem_acquire(s, -1), 0);
    CHECK_RC(xlock_sem_remove(&removed, "r", 2, &o), XLOCK_EWOULDBLOCK);
    CHECK(removed == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/r.sem", ns);
    CHECK(access(path, F_OK) == 0);
    CHECK_RC(xlock_sem_remove(&removed, "r", 3, &o), XLOCK_ECAPACITY);
    CHECK(strstr(xlock_last_message(), "uid ") != NULL); /* names the owner [XL-RM-3] */
    xlock_sem_close(s);
    CHECK_OK(xlock_sem_remove(&removed, "r", 2, &o));
    CHECK(removed == 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = .xlock-bell", ns); /* only the bell stays */
    CHECK(system(cmd) == 0);
    CHECK_OK(xlock_sem_remove(&removed, "r", 2, &o));
    CHECK(removed == 0); /* nothing left to unlink [XL-RM-7] */
    /* Capacity 0 takes the file's capacity; a malformed file is refused, nothing removed [XL-RM-3]. */
    s = open_sem(ns, "r0", 3);
    xlock_sem_close(s);
    CHECK_OK(xlock_sem_remove(&removed, "r0", 0, &o));
    CHECK(removed == 1);
    snprintf(path, sizeof path, "%s/bad.sem", ns);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("xlock/1 semaphore capacity=x\n", f);
    fclose(f);
    CHECK_RC(xlock_sem_remove(&removed, "bad", 0, &o), XLOCK_ECAPACITY);
    CHECK(removed == 0 && access(path, F_OK) == 0);
    CHECK(strstr(xlock_last_message(), path) != NULL);
    CHECK_RC(xlock_sem_remove(&removed, "r", -1, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_remove(&removed, "r", 1001, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_sem_remove(NULL, "r", 2, &o), XLOCK_EINVAL);
}

/* A slot file taken from its path while held (rm, or a rename over it) is noticed by the re-check
 * of [XL-LOCK-8]: a semaphore whose flock succeeds on the old slot file moves to the new one. */
static void slot_taken_away(int by_rename)
{
    const char *ns = tl_ns();
    xlock_sem_t *a = open_sem(ns, "moved", 1), *b = open_sem(ns, "moved", 1);
    CHECK(a && b);
    CHECK_RC(xlock_sem_acquire(a, -1), 0);
    CHECK_RC(xlock_sem_try_acquire(b), XLOCK_EWOULDBLOCK); /* b keeps slot 0 open */
    char path[512];
    snprintf(path, sizeof path, "%s/moved.0.slot", ns);
    CHECK(tl_take_path_away(path, by_rename) == 0);
    xlock_sem_t *c = open_sem(ns, "moved", 1);
    CHECK(c != NULL);
    CHECK_RC(xlock_sem_try_acquire(c), 0); /* the new slot file */
    CHECK_OK(xlock_sem_release(a));
    CHECK_RC(xlock_sem_try_acquire(b), XLOCK_EWOULDBLOCK); /* flock on the old file, re-opened */
    CHECK_RC(xlock_sem_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_OK(xlock_sem_release(c));
    CHECK_RC(xlock_sem_try_acquire(b), 0);
    CHECK_RC(xlock_sem_try_acquire(c), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_sem_try_acquire(a), XLOCK_EWOULDBLOCK);
    xlock_sem_close(a);
    xlock_sem_close(b);
    xlock_sem_close(c);
}

static void unlinked_slot_file_is_reopened(void)
{
    slot_taken_away(0);
}
static void slot_file_renamed_over_is_reopened(void)
{
    slot_taken_away(1);
}

/* Symlinked capacity or slot files are refused and not followed [XL-LOCK-4, XL-CSEM-2]. */
static void symlinked_files_are_refused(void)
{
    const char *ns = tl_ns(), *dir = tl_tmpdir();
    xlock_options o = tl_opts(ns);
    char target[512], link[512];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link, sizeof link, "%s/cap.sem", ns);
    CHECK(symlink(target, link) == 0);
    xlock_sem_t *s;
    CHECK_RC(xlock_sem_open(&s, "cap", 2, &o), XLOCK_EINSECURE);
    CHECK(access(target, F_OK) != 0);
    s = open_sem(ns, "slot", 2);
    CHECK(s);
    snprintf(link, sizeof link, "%s/slot.0.slot", ns);
    CHECK(symlink(target, link) == 0);
    CHECK_RC(xlock_sem_try_acquire(s), XLOCK_EINSECURE);
    CHECK(access(target, F_OK) != 0);
    CHECK_RC(xlock_sem_held(s), 0);
    xlock_sem_close(s);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(capacity_file_is_created_exactly),
        TL_CASE(capacity_mismatch_and_bad_capacity),
        TL_CASE(permits_and_slots),
        TL_CASE(many_slots),
        TL_CASE(slot_files_are_named_per_spec),
        TL_CASE(killed_holder_returns_permits),
        TL_CASE(waiter_woken_by_release),
        TL_CASE(removal),
        TL_CASE(unlinked_slot_file_is_reopened),
        TL_CASE(slot_file_renamed_over_is_reopened),
        TL_CASE(symlinked_files_are_refused),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
