/* libxlock_pg locks against a throwaway server [XL-PG-1..XL-PG-12, XL-PG-14..XL-PG-16]. */
#include "pgtest.h"
#include "internal.h" /* white box: the session of an object, to trace or plant on it */
#include "pg_vectors.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *URL;
static const char *NAME = "c-pg-test";

/* [XL-PG-3] every vector, with no connection */
static void test_keys(void)
{
    for (size_t i = 0; i < sizeof pg_vectors / sizeof pg_vectors[0]; i++) {
        long long key = 0;
        CHECK_RC(xlock_pg_key(&key, pg_vectors[i].kind, pg_vectors[i].label, strlen(pg_vectors[i].label),
                              pg_vectors[i].name, strlen(pg_vectors[i].name), pg_vectors[i].extra),
                 0);
        CHECK(key == pg_vectors[i].key);
    }
    long long key;
    CHECK_RC(xlock_pg_key(&key, 'l', "default", 7, "a\nb", 3, 0), XLOCK_EINVALNAME);
    CHECK_RC(xlock_pg_key(&key, 'l', "", 0, "a", 1, 0), XLOCK_EINVAL);
    CHECK_RC(xlock_pg_key(&key, 's', "default", 7, "a", 1, 1000), XLOCK_EINVAL);
    CHECK(xlock_pg_is_url("postgresql://x") && xlock_pg_is_url("postgres://x") &&
          !xlock_pg_is_url("/tmp/x"));
}

/* [XL-PG-1, XL-PG-2, XL-PG-14, XL-PG-15, XL-NAME-6] */
static void test_bad_input(void)
{
    xlock_pg_t *l = (xlock_pg_t *)1;
    xlock_options o = pgtest_opts("postgresql://[::1/x");
    CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EINVAL);
    CHECK(l == NULL);
    CHECK_RC(xlock_pg_open(&l, "bad\x01name", &o), XLOCK_EINVALNAME); /* the name is checked first */
    char url[1024];
    snprintf(url, sizeof url, "%s&xlock_nope=1", URL);
    o = pgtest_opts(url);
    CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EINVAL);
    CHECK(strstr(xlock_pg_last_message(), "xlock_nope") != NULL);
    snprintf(url, sizeof url, "%s&xlock_namespace=", URL);
    o = pgtest_opts(url);
    CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EINVAL);
    CHECK(strstr(xlock_pg_last_message(), "xlock_namespace") != NULL);
    o = pgtest_opts("/tmp/not-a-url");
    CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EINVAL);
    /* unreachable: BACKEND_ERROR naming the server within the connect timeout */
    int port = atoi(pgtest_url("XLOCK_TEST_PG_PORT"));
    snprintf(url, sizeof url, "postgresql://xlock@127.0.0.1:%d/xlock?connect_timeout=2",
             port < 65535 ? port + 1 : 1);
    o = pgtest_opts(url);
    long long t0 = pgtest_now_ms();
    CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EBACKEND);
    CHECK(pgtest_now_ms() - t0 < 3000);
    CHECK(strstr(xlock_pg_last_message(), "127.0.0.1") != NULL);
    /* a wrong password: BACKEND_ERROR naming the user, never the password [XL-PG-14] */
    const char *pw = pgtest_url("XLOCK_TEST_PG_PASSWORD");
    snprintf(url, sizeof url, "%s", pgtest_url("XLOCK_TEST_PG_PW_URL"));
    char *at = strstr(url, pw);
    CHECK(at != NULL);
    if (at != NULL) {
        memcpy(at, "wrongpassword", 13);
        memmove(at + 13, at + strlen(pw), strlen(at + strlen(pw)) + 1);
        char *bad = strdup(url);
        snprintf(url, sizeof url, "%s", pgtest_url("XLOCK_TEST_PG_PW_URL"));
        o = pgtest_opts(bad);
        CHECK_RC(xlock_pg_open(&l, NAME, &o), XLOCK_EBACKEND);
        CHECK(strstr(xlock_pg_last_message(), "xlock_pw") != NULL);
        CHECK(strstr(xlock_pg_last_message(), "wrongpassword") == NULL);
        free(bad);
    }
    o = pgtest_opts(pgtest_url("XLOCK_TEST_PG_PW_URL"));
    CHECK_RC(xlock_pg_open(&l, NAME, &o), 0);
    if (l != NULL) {
        CHECK(strstr(xlock_pg_namespace(l), pw) == NULL && strstr(xlock_pg_namespace(l), "***") != NULL);
        CHECK_RC(xlock_pg_try_acquire(l), 0);
        xlock_pg_t *m;
        CHECK_RC(xlock_pg_open(&m, NAME, &o), 0);
        CHECK_RC(xlock_pg_try_acquire(m), XLOCK_EWOULDBLOCK);
        CHECK(strstr(xlock_pg_last_message(), pw) == NULL);
        xlock_pg_close(m);
        xlock_pg_close(l);
    }
}

/* [XL-PG-4, XL-PG-5, XL-PG-7, XL-HOLD-1, XL-HOLD-3, XL-HOLD-4] */
static void test_exclusion(void)
{
    xlock_options o = pgtest_opts(URL);
    xlock_pg_t *a, *b;
    CHECK_RC(xlock_pg_open(&a, NAME, &o), 0);
    CHECK_RC(xlock_pg_open(&b, NAME, &o), 0);
    CHECK(xlock_pg_backend_pid(a) != xlock_pg_backend_pid(b)); /* a session each [XL-PG-5] */
    CHECK(strcmp(xlock_pg_label(a), "default") == 0 && strcmp(xlock_pg_database(a), "xlock") == 0);
    CHECK(strlen(xlock_pg_system_identifier(a)) > 0);
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    CHECK_RC(xlock_pg_locked(a, 1), 1);
    CHECK_RC(xlock_pg_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_pg_acquire(b, 0), XLOCK_ETIMEDOUT); /* timeout 0 is one try [XL-PG-7] */
    CHECK_RC(xlock_pg_acquire(a, 10), XLOCK_EALREADY);
    for (int ms = 1; ms <= 200; ms *= 7) {
        long long t0 = pgtest_now_ms();
        CHECK_RC(xlock_pg_acquire(b, ms), XLOCK_ETIMEDOUT);
        long long took = pgtest_now_ms() - t0;
        CHECK(took >= ms && took < ms + 50); /* never early; the deadline + 50 ms bound */
    }
    CHECK(pgtest_locks_of(xlock_pg_backend_pid(b)) == 0);
    CHECK_RC(xlock_pg_release(a), 0);
    CHECK_RC(xlock_pg_release(a), XLOCK_ENOTHELD);
    CHECK_RC(xlock_pg_acquire(b, 1000), 0);
    CHECK_RC(xlock_pg_release(b), 0);
    /* shared objects */
    xlock_options so = o;
    so.shared = 1;
    xlock_pg_t *s1, *s2;
    CHECK_RC(xlock_pg_open(&s1, NAME, &so), 0);
    CHECK_RC(xlock_pg_open(&s2, NAME, &so), 0);
    CHECK_RC(xlock_pg_try_acquire(s1), 0);
    CHECK_RC(xlock_pg_try_acquire(s2), 0);
    CHECK_RC(xlock_pg_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_pg_release(s1), 0);
    CHECK_RC(xlock_pg_release(s2), 0);
    /* reentrant */
    xlock_options ro = o;
    ro.reentrant = 1;
    xlock_pg_t *r;
    CHECK_RC(xlock_pg_open(&r, NAME, &ro), 0);
    CHECK_RC(xlock_pg_acquire(r, -1), 0);
    CHECK_RC(xlock_pg_acquire(r, -1), 0);
    CHECK_RC(xlock_pg_release(r), 0);
    CHECK_RC(xlock_pg_try_acquire(a), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_pg_release(r), 0);
    CHECK_RC(xlock_pg_try_acquire(a), 0);
    xlock_pg_close(a); /* closing releases */
    CHECK_RC(xlock_pg_try_acquire(b), 0);
    xlock_pg_close(b);
    xlock_pg_close(s1);
    xlock_pg_close(s2);
    xlock_pg_close(r);
}

/* Removal has nothing to remove [XL-PG-18]: free -> removed 0 and nothing left held; held ->
 * WOULD_BLOCK. */
static void test_remove(void)
{
    xlock_options o = pgtest_opts(URL);
    int removed = -1;
    CHECK_RC(xlock_pg_remove(&removed, NAME, &o), 0);
    CHECK(removed == 0);
    CHECK_RC(xlock_pg_remove(NULL, NAME, &o), XLOCK_EINVAL);
    xlock_options so = o;
    so.shared = 1; /* removal tries exclusively: a shared holder blocks it too */
    xlock_pg_t *a;
    CHECK_RC(xlock_pg_open(&a, NAME, &so), 0);
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    removed = -1;
    CHECK_RC(xlock_pg_remove(&removed, NAME, &so), XLOCK_EWOULDBLOCK);
    CHECK(removed == 0 && strstr(xlock_pg_last_message(), "nothing to remove") != NULL);
    CHECK_RC(xlock_pg_release(a), 0);
    xlock_pg_close(a);
    /* a semaphore: every slot is tried, and what was taken is given back */
    xlock_pg_sem_t *s;
    CHECK_RC(xlock_pg_sem_open(&s, NAME, 3, &o), 0);
    CHECK_RC(xlock_pg_sem_remove(&removed, NAME, 3, &o), 0);
    CHECK(removed == 0);
    CHECK_RC(xlock_pg_sem_remove(&removed, NAME, 2, &o), XLOCK_ECAPACITY);
    CHECK(xlock_pg_sem_try_acquire(s) >= 0);
    CHECK_RC(xlock_pg_sem_remove(&removed, NAME, 3, &o), XLOCK_EWOULDBLOCK);
    CHECK(xlock_pg_sem_try_acquire(s) >= 0); /* the failed removal holds nothing */
    CHECK(xlock_pg_sem_try_acquire(s) >= 0);
    CHECK_RC(xlock_pg_sem_held(s), 3);
    xlock_pg_sem_close(s);
}

/* [XL-PG-10] */
static void test_lost(void)
{
    xlock_options o = pgtest_opts(URL);
    xlock_pg_t *a, *b;
    CHECK_RC(xlock_pg_open(&a, NAME, &o), 0);
    CHECK_RC(xlock_pg_open(&b, NAME, &o), 0);
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", xlock_pg_backend_pid(a));
    pgtest_sql(sql);
    CHECK_RC(xlock_pg_acquire(b, 5000), 0);
    CHECK_RC(xlock_pg_locked(a, 1), XLOCK_ELOST);
    CHECK_RC(xlock_pg_locked(a, 0), 0);
    CHECK_RC(xlock_pg_release(a), XLOCK_ENOTHELD);
    CHECK_RC(xlock_pg_release(b), 0);
    CHECK_RC(xlock_pg_acquire(a, 5000), 0); /* a new session */
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)", xlock_pg_backend_pid(a));
    pgtest_sql(sql);
    CHECK_RC(xlock_pg_release(a), XLOCK_ELOST);
    CHECK_RC(xlock_pg_release(a), XLOCK_ENOTHELD);
    xlock_pg_close(a);
    xlock_pg_close(b);
}

/* The client's Sync messages (round trips) in a libpq trace. */
static int syncs(FILE *trace)
{
    char line[1024];
    int n = 0;
    rewind(trace);
    while (fgets(line, sizeof line, trace) != NULL)
        n += strstr(line, "\tF\t") != NULL && strstr(line, "\tSync") != NULL;
    return n;
}

/* Uncontended, every acquisition (untimed, timed with a new lock_timeout each time, one try) and every
 * release is one statement, the token check riding along: one round trip each [XL-PG-7, XL-PG-9].
 * DISCARD ALL on the holder's session drops the prepared statements too: the release prepares the
 * unlock again and reports LOST [XL-PG-10]. */
static void test_round_trips(void)
{
    xlock_options o = pgtest_opts(URL);
    xlock_pg_t *a;
    CHECK_RC(xlock_pg_open(&a, NAME, &o), 0);
    PGconn *conn = ((xpg_obj *)a)->conn;
    for (int how = 0; how < 3; how++) {
        for (int round = 0; round < 2; round++) { /* round 0 prepares the statements */
            FILE *trace = round ? tmpfile() : NULL;
            CHECK(!round || trace != NULL);
            if (trace != NULL)
                PQtrace(conn, trace);
            for (int i = 0; i < 10; i++) {
                CHECK_RC(how == 0   ? xlock_pg_acquire(a, -1)
                         : how == 1 ? xlock_pg_acquire(a, 5000 + 10 * round + i)
                                    : xlock_pg_try_acquire(a),
                         0);
                CHECK_RC(xlock_pg_release(a), 0);
            }
            if (trace != NULL) {
                PQuntrace(conn);
                CHECK(syncs(trace) == 20);
                fclose(trace);
            }
        }
    }
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    PQclear(PQexec(conn, "DISCARD ALL"));
    CHECK_RC(xlock_pg_release(a), XLOCK_ELOST);
    xlock_pg_close(a);
}

/* ---- interruption and cancellation [XL-PG-8, XL-WAIT-9, XL-WAIT-10] ---- */

typedef struct {
    xlock_pg_t *l;
    long long timeout;
    int rc;
    volatile int started;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->started = 1;
    w->rc = xlock_pg_acquire(w->l, w->timeout);
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
}

/* Until the backend has an entry in pg_locks (the wait is queued in the server). */
static void until_queued(int backend)
{
    long long t0 = pgtest_now_ms();
    while (pgtest_locks_of(backend) == 0 && pgtest_now_ms() - t0 < 5000) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    CHECK(pgtest_locks_of(backend) == 1);
}

static void test_interrupt(int use_cancel, int restart, long long timeout)
{
    xlock_options o = pgtest_opts(URL);
    xlock_pg_t *a, *b;
    CHECK_RC(xlock_pg_open(&a, NAME, &o), 0);
    CHECK_RC(xlock_pg_open(&b, NAME, &o), 0);
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGUSR1, &sa, NULL);
    waiter w = {b, timeout, 99, 0};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    until_queued(xlock_pg_backend_pid(b));
    if (use_cancel)
        CHECK_RC(xlock_pg_cancel(b), 0);
    else
        pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    CHECK_RC(w.rc, use_cancel ? XLOCK_ECANCELED : XLOCK_EINTR);
    CHECK(pgtest_locks_of(xlock_pg_backend_pid(b)) == 0);
    /* The server grants a wait still queued inside the release (the releasing backend wakes the queue
     * before pg_advisory_unlock returns), so once release has returned, pg_locks shows any such grant:
     * no window is needed. */
    CHECK_RC(xlock_pg_release(a), 0);
    CHECK(pgtest_locks_of(xlock_pg_backend_pid(b)) == 0);
    CHECK_RC(xlock_pg_locked(b, 0), 0);
    CHECK_RC(xlock_pg_try_acquire(b), 0); /* usable again */
    CHECK_RC(xlock_pg_release(b), 0);
    CHECK_RC(xlock_pg_cancel(b), 0); /* no wait in progress: a no-op */
    CHECK_RC(xlock_pg_try_acquire(b), 0);
    xlock_pg_close(a);
    xlock_pg_close(b);
}

/* [XL-PG-16, XL-HOLD-7]: the child holds nothing and never talks on the parent's session. */
static void test_fork(void)
{
    xlock_options o = pgtest_opts(URL);
    xlock_pg_t *a, *b;
    CHECK_RC(xlock_pg_open(&a, NAME, &o), 0);
    CHECK_RC(xlock_pg_open(&b, NAME, &o), 0);
    CHECK_RC(xlock_pg_acquire(a, -1), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int rel = xlock_pg_release(a), held = xlock_pg_locked(a, 0);
        int got = xlock_pg_try_acquire(a); /* a new session, and the parent holds it */
        int bad = rel != XLOCK_ENOTHELD || held != 0 || got != XLOCK_EWOULDBLOCK;
        if (bad)
            fprintf(stderr, "forked child: release %d, locked %d, try %d: %s\n", rel, held, got,
                    xlock_pg_last_message());
        xlock_pg_close(a);
        xlock_pg_close(b);
        _exit(bad);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RC(xlock_pg_locked(a, 1), 1);
    CHECK_RC(xlock_pg_try_acquire(b), XLOCK_EWOULDBLOCK);
    CHECK_RC(xlock_pg_release(a), 0);
    xlock_pg_close(a);
    xlock_pg_close(b);
}

int main(void)
{
    URL = pgtest_url("XLOCK_TEST_PG_URL");
    test_keys();
    test_bad_input();
    test_exclusion();
    test_remove();
    test_lost();
    test_round_trips();
    test_interrupt(1, 0, -1);
    test_interrupt(1, 0, 60000);
    test_interrupt(0, 0, -1);
    test_interrupt(0, 1, -1);
    test_interrupt(0, 1, 60000);
    test_fork();
    return pgtest_done("test_pg_lock");
}
