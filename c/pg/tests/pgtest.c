#include "pgtest.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

int pgtest_failures;
static PGconn *admin;

const char *pgtest_url(const char *var)
{
    const char *url = getenv(var);
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "%s is not set: run the tests through tests/with-pg (make check)\n", var);
        exit(77);
    }
    return url;
}

xlock_options pgtest_opts(const char *url)
{
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = url;
    return o;
}

const char *pgtest_sql(const char *sql)
{
    static char value[256];
    if (admin == NULL) {
        admin = PQconnectdb(pgtest_url("XLOCK_TEST_PG_URL"));
        if (PQstatus(admin) != CONNECTION_OK) {
            fprintf(stderr, "admin connection: %s", PQerrorMessage(admin));
            exit(1);
        }
    }
    PGresult *res = PQexec(admin, sql);
    const char *out = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        snprintf(value, sizeof value, "%s", PQgetvalue(res, 0, 0));
        out = value;
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "admin SQL %s: %s", sql, PQerrorMessage(admin));
    }
    PQclear(res);
    return out;
}

int pgtest_locks_of(int backend_pid)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %d",
             backend_pid);
    const char *v = pgtest_sql(sql);
    return v ? atoi(v) : -1;
}

void pgtest_server_now(char *buf, size_t size)
{
    const char *v = pgtest_sql("SELECT extract(epoch FROM clock_timestamp())");
    snprintf(buf, size, "%s", v ? v : "0");
}

int pgtest_until_trying(const char *since)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'xlock/1 c pid=%ld %%' AND "
             "state = 'idle' AND query LIKE 'WITH RECURSIVE%%' AND query_start > to_timestamp(%s)",
             (long)getpid(), since);
    long long t0 = pgtest_now_ms();
    const char *v;
    while ((v = pgtest_sql(sql)) == NULL && pgtest_now_ms() - t0 < 5000) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    if (v == NULL)
        fprintf(stderr, "no session of this process tried the slots and went idle within 5 s\n");
    CHECK(v != NULL);
    return v ? atoi(v) : 0;
}

long long pgtest_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int pgtest_done(const char *name)
{
    if (admin != NULL)
        PQfinish(admin);
    if (pgtest_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, pgtest_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}
