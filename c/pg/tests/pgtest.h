/* A small harness for libxlock_pg's tests: checks, the server's URL, and an admin session that
 * looks at pg_locks. */
#ifndef PGTEST_H
#define PGTEST_H
#define _GNU_SOURCE
#include "xlock_pg.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

extern int pgtest_failures;
#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond)) {                                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last message: %s)\n", __FILE__, __LINE__, #cond,  \
                    xlock_pg_last_message());                                                           \
            pgtest_failures++;                                                                          \
        }                                                                                               \
    } while (0)
#define CHECK_RC(expr, want)                                                                            \
    do {                                                                                                \
        int rc_ = (expr);                                                                               \
        if (rc_ != (want)) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d (%s), wanted %d (%s): %s\n", __FILE__, __LINE__,     \
                    #expr, rc_, xlock_errname(rc_) ? xlock_errname(rc_) : "?", (want),                  \
                    xlock_errname(want) ? xlock_errname(want) : "?", xlock_pg_last_message());          \
            pgtest_failures++;                                                                          \
        }                                                                                               \
    } while (0)

/* XLOCK_TEST_PG_URL (unix socket) or another variable; exits 77 (skip) when missing. */
const char *pgtest_url(const char *var);
/* Options naming url. */
xlock_options pgtest_opts(const char *url);
/* The number of advisory pg_locks rows (granted or waiting) of backend pid. */
int pgtest_locks_of(int backend_pid);
/* Runs one statement as the superuser; the first value of the first row (static), or NULL. */
const char *pgtest_sql(const char *sql);
/* The server's clock now (seconds since the epoch, as text) into buf, for pgtest_until_trying. */
void pgtest_server_now(char *buf, size_t size);
/* Until a libxlock_pg session of this process is idle after a try of a semaphore's slots (the statement
 * beginning WITH RECURSIVE) that began after since (pgtest_server_now): a waiter that found no permit
 * and now waits for a NOTIFY or its next safety poll [XL-PG-13]. Its backend pid; a failed check and 0
 * if none within 5 s. */
int pgtest_until_trying(const char *since);
long long pgtest_now_ms(void);
int pgtest_done(const char *name);
#endif
