/* The C worker of bench/pg.py: PostgreSQL namespaces (spec §16) through libxlock_pg. One role per run:
 *   pg_worker uncontended URL N     p50 of N acquire+release pairs, in microseconds (after 200 warm-ups)
 *   pg_worker waiter URL NAME       prints its backend pid; for every line on stdin: untimed acquire,
 *                                   print CLOCK_MONOTONIC ns, release
 *   pg_worker holder URL NAME       acquires, prints its backend pid, then waits to be killed
 *   pg_worker timed URL ROUNDS      ROUNDS x timeouts of 1, 5, 20, 50 ms on a held lock: prints the
 *                                   earliest return relative to its deadline and the overshoot p99 (us)
 * Stamps are CLOCK_MONOTONIC (clock.h), as bench/pg.py's. */
#define _GNU_SOURCE
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlock_pg.h>

static xlock_pg_t *open_lock(const char *name, const char *url)
{
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = url;
    xlock_pg_t *l;
    int rc = xlock_pg_open(&l, name, &o);
    if (rc != 0) {
        fprintf(stderr, "pg_worker: open %s: %s: %s\n", name, xlock_errname(rc),
                xlock_pg_last_message());
        exit(1);
    }
    return l;
}

static void must(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "pg_worker: %s: %s: %s\n", what, xlock_errname(rc), xlock_pg_last_message());
        exit(1);
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The q-th percentile of n sorted values, the index rounded as bench/pg.py's pct. */
static long long pct(const long long *v, long n, int q)
{
    long i = (long)((double)q / 100 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int uncontended(const char *url, long n)
{
    xlock_pg_t *l = open_lock("bench-uncontended", url);
    for (int i = 0; i < 200; i++) {
        must(xlock_pg_acquire(l, -1), "acquire");
        must(xlock_pg_release(l), "release");
    }
    long long *t = malloc(sizeof *t * (size_t)n);
    if (t == NULL)
        return 1;
    for (long i = 0; i < n; i++) {
        int64_t t0 = mono_ns();
        must(xlock_pg_acquire(l, -1), "acquire");
        must(xlock_pg_release(l), "release");
        t[i] = mono_ns() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_ll);
    printf("%.3f\n", pct(t, n, 50) / 1000.0);
    free(t);
    xlock_pg_close(l);
    return 0;
}

static int waiter(const char *url, const char *name)
{
    xlock_pg_t *l = open_lock(name, url);
    printf("%d\n", xlock_pg_backend_pid(l));
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        must(xlock_pg_acquire(l, -1), "acquire");
        printf("%lld\n", (long long)mono_ns());
        fflush(stdout);
        must(xlock_pg_release(l), "release");
    }
    xlock_pg_close(l);
    return 0;
}

_Noreturn static void holder(const char *url, const char *name)
{
    xlock_pg_t *l = open_lock(name, url);
    must(xlock_pg_acquire(l, -1), "acquire");
    printf("%d\n", xlock_pg_backend_pid(l));
    fflush(stdout);
    for (;;)
        pause();
}

static int timed(const char *url, long rounds)
{
    static const int ms[] = {1, 5, 20, 50};
    xlock_pg_t *h = open_lock("bench-timed", url), *w = open_lock("bench-timed", url);
    must(xlock_pg_acquire(h, -1), "acquire");
    long n = rounds * 4, k = 0;
    long long *over = malloc(sizeof *over * (size_t)n);
    if (over == NULL)
        return 1;
    for (long r = 0; r < rounds; r++)
        for (int i = 0; i < 4; i++) {
            int64_t t0 = mono_ns();
            int rc = xlock_pg_acquire(w, ms[i]);
            if (rc != XLOCK_ETIMEDOUT) {
                fprintf(stderr, "pg_worker: a timed acquire of a held lock returned %s\n",
                        xlock_errname(rc));
                return 1;
            }
            over[k++] = mono_ns() - t0 - ms[i] * 1000000LL;
        }
    qsort(over, (size_t)n, sizeof *over, cmp_ll);
    printf("%.3f %.3f\n", over[0] / 1000.0, pct(over, n, 99) / 1000.0);
    free(over);
    xlock_pg_close(w);
    xlock_pg_close(h);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "uncontended") == 0)
        return uncontended(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "waiter") == 0)
        return waiter(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "holder") == 0)
        holder(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "timed") == 0)
        return timed(argv[2], atol(argv[3]));
    fprintf(
        stderr,
        "usage: pg_worker uncontended URL N | waiter URL NAME | holder URL NAME | timed URL ROUNDS\n");
    return 2;
}
