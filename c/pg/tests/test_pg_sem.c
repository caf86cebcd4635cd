/* libxlock_pg counting semaphores against a throwaway server [XL-PG-13, XL-WAIT-7, XL-WAIT-10]. */
#include "pgtest.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *URL;
static const char *NAME = "c-pg-sem";

typedef struct {
    xlock_pg_sem_t *s;
    long long timeout;
    int rc;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->rc = xlock_pg_sem_acquire(w->s, w->timeout);
    return NULL;
}

/* Joins t within 5 s; else cancels its wait (then joins) and fails. An untimed wait joined so ends
 * by the event under test, never by a last try at its own deadline. */
static void join_within_5s(pthread_t t, xlock_pg_sem_t *s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    int rc = pthread_timedjoin_np(t, NULL, &until);
    CHECK(rc == 0);
    if (rc != 0) {
        xlock_pg_sem_cancel(s);
        pthread_join(t, NULL);
    }
}

typedef struct {
    xlock_pg_sem_t *s;
    atomic_int tid, done;
} closer;

static void *close_thread(void *arg)
{
    closer *c = arg;
    atomic_store(&c->tid, (int)syscall(SYS_gettid));
    xlock_pg_sem_close(c->s);
    atomic_store(&c->done, 1);
    return NULL;
}

/* The state letter of thread tid of this process (/proc/self/task/TID/stat), '?' if unknown. */
static char thread_state(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* Close gives back the capacity marker (held while open, also without a permit) and waits for the
 * server's answer before it ends the session, whose release by the server is asynchronous: with the
 * backend stopped, close cannot return; once it has, an opener of another capacity never meets the
 * closed object [XL-PG-13]. */
static void close_waits_for_the_release(const xlock_options *o)
{
    xlock_pg_sem_t *x, *y;
    CHECK_RC(xlock_pg_sem_open(&x, "c-pg-closing", 3, o), 0);
    int backend = xlock_pg_sem_backend_pid(x);
    CHECK(backend > 0 && kill(backend, SIGSTOP) == 0);
    closer c = {.s = x};
    pthread_t t;
    pthread_create(&t, NULL, close_thread, &c);
    long long t0 = pgtest_now_ms();
    while (!atomic_load(&c.done) && !(atomic_load(&c.tid) && thread_state(atomic_load(&c.tid)) == 'S') &&
           pgtest_now_ms() - t0 < 5000)
        sched_yield();
    /* done: it returned while the server could not answer, so nothing was waited for */
    CHECK(!atomic_load(&c.done));
    kill(backend, SIGCONT);
    pthread_join(t, NULL);
    int rc = xlock_pg_sem_open(&y, "c-pg-closing", 4, o);
    CHECK_RC(rc, 0);
    if (rc == 0)
        xlock_pg_sem_close(y);
}

int main(void)
{
    URL = pgtest_url("XLOCK_TEST_PG_URL");
    xlock_options o = pgtest_opts(URL);
    xlock_pg_sem_t *a, *b, *c;
    CHECK_RC(xlock_pg_sem_open(&a, NAME, 0, &o), XLOCK_EINVAL);
    CHECK_RC(xlock_pg_sem_open(&a, NAME, 2, &o), 0);
    CHECK_RC(xlock_pg_sem_open(&b, NAME, 2, &o), 0);
    CHECK_RC(xlock_pg_sem_open(&c, NAME, 3, &o), XLOCK_ECAPACITY); /* live participants use 2 */
    CHECK(strstr(xlock_pg_last_message(), "capacity 2") != NULL);
    int s1 = xlock_pg_sem_acquire(a, -1), s2 = xlock_pg_sem_try_acquire(b);
    CHECK((s1 == 0 && s2 == 1) || (s1 == 1 && s2 == 0));
    CHECK_RC(xlock_pg_sem_held(a), 1);
    CHECK_RC(xlock_pg_sem_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_pg_sem_acquire(b, 0), XLOCK_ETIMEDOUT);
    long long t0 = pgtest_now_ms();
    CHECK_RC(xlock_pg_sem_acquire(b, 60), XLOCK_ETIMEDOUT);
    CHECK(pgtest_now_ms() - t0 >= 60 && pgtest_now_ms() - t0 < 110);
    /* a release NOTIFYs the waiter, once it has found no permit and waits */
    waiter w = {b, 10000, 99};
    pthread_t t;
    char since[64];
    int waiting = xlock_pg_sem_backend_pid(b); /* read before the waiting thread uses b */
    pgtest_server_now(since, sizeof since);
    pthread_create(&t, NULL, wait_thread, &w);
    CHECK(pgtest_until_trying(since) == waiting);
    CHECK_RC(xlock_pg_sem_release(a), 0);
    pthread_join(t, NULL);
    CHECK(w.rc == s1);
    CHECK_RC(xlock_pg_sem_held(b), 2);
    /* a holder whose session ends rings nothing: the safety poll finds the permit */
    w = (waiter){a, -1, 99};
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", xlock_pg_sem_backend_pid(b));
    waiting = xlock_pg_sem_backend_pid(a);
    pgtest_server_now(since, sizeof since);
    pthread_create(&t, NULL, wait_thread, &w);
    CHECK(pgtest_until_trying(since) == waiting);
    pgtest_sql(sql);
    join_within_5s(t, a);
    CHECK(w.rc >= 0);
    CHECK_RC(xlock_pg_sem_release(b), XLOCK_ELOST);
    /* cancel a waiting acquire */
    xlock_pg_sem_t *d;
    CHECK_RC(xlock_pg_sem_open(&d, NAME, 2, &o), 0);
    CHECK(xlock_pg_sem_try_acquire(d) >= 0);
    w = (waiter){b, -1, 99};
    pgtest_server_now(since, sizeof since);
    pthread_create(&t, NULL, wait_thread, &w);
    /* b's session ended above: the wait opens a new one (its pid is read through pg_stat_activity,
     * not from b while the waiting thread may set it) */
    CHECK(pgtest_until_trying(since) != 0);
    CHECK_RC(xlock_pg_sem_cancel(b), 0);
    pthread_join(t, NULL);
    CHECK_RC(w.rc, XLOCK_ECANCELED);
    CHECK_RC(xlock_pg_sem_held(b), 0);
    CHECK_RC(xlock_pg_sem_release(b), XLOCK_ENOTHELD);
    xlock_pg_sem_close(d); /* closing gives the permit back */
    CHECK(xlock_pg_sem_acquire(b, 5000) >= 0);
    xlock_pg_sem_close(a);
    xlock_pg_sem_close(b);
    close_waits_for_the_release(&o);
    return pgtest_done("test_pg_sem");
}
