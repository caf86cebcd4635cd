/* A session of its own per object [XL-PG-5]: connect, set up [XL-PG-6, XL-PG-9, XL-PG-11], run
 * short statements, map errors [XL-PG-15], and end it. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* The session's settings (bound: $1 application_name, $2 tcp_user_timeout, $3 the session token,
 * $4 client_connection_check_interval) [XL-PG-6, XL-PG-9]. */
#define SESSION_SETUP                                                                                   \
    "SELECT set_config('application_name', $1, false), "                                                \
    "set_config('statement_timeout', '0', false), "                                                     \
    "set_config('lock_timeout', '0', false), "                                                          \
    "set_config('idle_session_timeout', '0', false), "                                                  \
    "set_config('idle_in_transaction_session_timeout', '0', false), "                                   \
    "set_config('client_connection_check_interval', $4, false), "                                       \
    "set_config('tcp_keepalives_idle', '5', false), "                                                   \
    "set_config('tcp_keepalives_interval', '2', false), "                                               \
    "set_config('tcp_keepalives_count', '3', false), "                                                  \
    "set_config('tcp_user_timeout', $2, false), "                                                       \
    "set_config('xlock.session_token', $3, false)"

static const char POOLER[] =
    "transaction or statement pooling detected; use a direct or session-pooled connection [XL-PG-9]";

/* The SQLSTATE of an error result, or "". */
static const char *sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

/* 1 if the session has ended: the connection is bad, or the server said so (terminated, shut down,
 * idle timeout: 57P*, connection exceptions 08*) [XL-PG-10]. */
int xlock_pg__gone(const xpg_obj *o, const PGresult *res)
{
    const char *s = sqlstate(res);
    return o->conn == NULL || PQstatus(o->conn) != CONNECTION_OK || strncmp(s, "57P", 3) == 0 ||
           strncmp(s, "08", 2) == 0;
}

/* The first line of libpq's error text for res (or the connection), without a password. */
static void error_text(const xpg_obj *o, const PGresult *res, char *buf, size_t size)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m == NULL)
        m = o->conn ? PQerrorMessage(o->conn) : "no connection";
    snprintf(buf, size, "%s", m);
    buf[strcspn(buf, "\n")] = '\0';
    xlock_pg__scrub(buf, o->ns.password);
}

/* BACKEND_ERROR for a failed statement, naming the server and the SQLSTATE [XL-PG-15]. */
int xlock_pg__sql_error(xpg_obj *o, const PGresult *res, const char *doing)
{
    char server[512], text[512];
    xlock_pg__server(o, server, sizeof server);
    error_text(o, res, text, sizeof text);
    const char *s = sqlstate(res);
    if (strcmp(s, "26000") == 0) /* a prepared statement vanished twice: another backend answered */
        return xlock_pg__fail(XLOCK_EUNSUPPORTEDBACKEND, o,
                              "%s on the %s failed: %s (SQLSTATE 26000); %s", doing, server, text,
                              POOLER);
    return xlock_pg__fail(XLOCK_EBACKEND, o, "%s on the %s failed: %s%s%s%s%s", doing, server, text,
                          *s ? " (SQLSTATE " : "", s, *s ? ")" : "",
                          strcmp(s, "53200") == 0
                              ? "; the server's lock table is full: raise max_locks_per_transaction"
                              : "");
}

/* The outcome of a short statement: 0 with *out (tuples), or an error code. */
static int one_outcome(xpg_obj *o, int rc, xpg_reply *r, const char *doing, PGresult **out)
{
    *out = NULL;
    if (rc == 0 && PQresultStatus(r->res) != PGRES_TUPLES_OK &&
        PQresultStatus(r->res) != PGRES_COMMAND_OK)
        rc = xlock_pg__gone(o, r->res) ? XPG_GONE : xlock_pg__sql_error(o, r->res, doing);
    if (rc == XPG_GONE) {
        char server[512], text[512];
        xlock_pg__server(o, server, sizeof server);
        error_text(o, r->res, text, sizeof text);
        xlock_pg__fail(XPG_GONE, o, "%s: the session with the %s ended: %s", doing, server, text);
    }
    if (rc != 0)
        PQclear(r->res);
    else
        *out = r->res;
    return rc;
}

/* Runs a short statement (not interruptible). 0 with *out (tuples), or an error code. */
int xlock_pg__one(xpg_obj *o, const char *sql, int n, const char *const *vals, const char *doing,
                  PGresult **out)
{
    xpg_reply r;
    int rc = xlock_pg__run(o, sql, n, vals, 0, 0, &r);
    return one_outcome(o, rc, &r, doing, out);
}

/* xlock_pg__one for a prepared statement. */
int xlock_pg__one_prepared(xpg_obj *o, const xpg_stmt *s, const char *const *vals, const char *doing,
                           PGresult **out)
{
    xpg_reply r;
    int rc = xlock_pg__run_prepared(o, s, vals, 0, 0, &r);
    return one_outcome(o, rc, &r, doing, out);
}

/* Prepares s on the session unless it is: 0, XPG_GONE, or 0 with r->res the server's error. */
static int prepare(xpg_obj *o, const xpg_stmt *s, xpg_reply *r)
{
    r->res = NULL;
    r->stop = 0;
    if (o->prepared & s->bit)
        return 0;
    if (o->conn == NULL || PQstatus(o->conn) != CONNECTION_OK ||
        !PQsendPrepare(o->conn, s->name, s->sql, s->nparams, NULL))
        return XPG_GONE;
    int rc = xlock_pg__await(o, 0, 0, r);
    if (rc == 0 && PQresultStatus(r->res) == PGRES_COMMAND_OK) {
        PQclear(r->res);
        r->res = NULL;
        o->prepared |= s->bit;
    }
    return rc;
}

/* xlock_pg__run for the prepared statement s: one round trip once it is prepared (the first use on a
 * session prepares it). If it vanished from the session (DISCARD ALL, DEALLOCATE: SQLSTATE 26000),
 * it is prepared again once; a second loss is a pooler's other backend (xlock_pg__sql_error). */
int xlock_pg__run_prepared(xpg_obj *o, const xpg_stmt *s, const char *const *vals, int interruptible,
                           unsigned long long token, xpg_reply *r)
{
    for (int attempt = 0;; attempt++) {
        int rc = prepare(o, s, r);
        if (rc != 0 || r->res != NULL)
            return rc;
        if (!PQsendQueryPrepared(o->conn, s->name, s->nparams, vals, NULL, NULL, 0))
            return XPG_GONE;
        rc = xlock_pg__await(o, interruptible, token, r);
        if (rc != 0 || attempt > 0 || r->stop || strcmp(sqlstate(r->res), "26000") != 0)
            return rc;
        PQclear(r->res); /* nothing ran: Bind failed */
        o->prepared &= ~s->bit;
    }
}

/* UNSUPPORTED_BACKEND unless column col and col+1 of res are this session's token and backend
 * pid [XL-PG-9]. */
int xlock_pg__check_token(xpg_obj *o, const PGresult *res, int col)
{
    const char *tok = PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col);
    int pid = atoi(PQgetvalue(res, 0, col + 1));
    if (strcmp(tok, o->token) == 0 && pid == o->backend_pid)
        return 0;
    char server[512];
    xlock_pg__server(o, server, sizeof server);
    return xlock_pg__fail(XLOCK_EUNSUPPORTEDBACKEND, o, "%s (%s)", POOLER, server);
}

/* application_name of XL-PG-6, cut to 63 bytes. */
static void application_name(char *buf, size_t size)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(buf, size, "xlock/1 c pid=%ld host=%.64s", (long)getpid(), host);
    if (strlen(buf) > 63)
        buf[63] = '\0';
}

/* Reads the server's state and sets the session up [XL-PG-6]. */
static int setup(xpg_obj *o)
{
    PGresult *res;
    int rc = xlock_pg__one(o,
                           "SELECT pg_is_in_recovery(), pg_backend_pid(), "
                           "current_setting('server_version_num')::int, current_database(), "
                           "(SELECT system_identifier FROM pg_control_system())",
                           0, NULL, "reading the server's state", &res);
    if (rc != 0)
        return rc == XPG_GONE ? XLOCK_EBACKEND : rc;
    char server[512];
    xlock_pg__server(o, server, sizeof server);
    int recovery = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    int version = atoi(PQgetvalue(res, 0, 2));
    o->backend_pid = atoi(PQgetvalue(res, 0, 1));
    free(o->database);
    o->database = strdup(PQgetvalue(res, 0, 3));
    snprintf(o->sysid, sizeof o->sysid, "%s", PQgetvalue(res, 0, 4));
    PQclear(res);
    if (version < XPG_MIN_SERVER)
        return xlock_pg__fail(XLOCK_EUNSUPPORTEDBACKEND, o,
                              "the %s runs PostgreSQL %d; xlock needs 14 or later [XL-PG-6]", server,
                              version);
    if (recovery)
        return xlock_pg__fail(
            XLOCK_EUNSUPPORTEDBACKEND, o,
            "the %s is a standby in recovery; its advisory locks do not exclude with the "
            "primary's: point the namespace at the primary [XL-PG-6]",
            server);
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return xlock_pg__fail(XLOCK_EOS, o, "getrandom failed for the session token");
    for (int i = 0; i < 16; i++)
        snprintf(o->token + 2 * i, 3, "%02x", raw[i]);
    char app[128], release[24];
    application_name(app, sizeof app);
    snprintf(release, sizeof release, "%ld", o->ns.release_ms);
    const char *vals[] = {app, release, o->token, XPG_CLIENT_CHECK_MS};
    /* transaction_timeout exists from PostgreSQL 17 on */
    const char *sql = version >= 170000 ? SESSION_SETUP ", set_config('transaction_timeout', '0', false)"
                                        : SESSION_SETUP;
    rc = xlock_pg__one(o, sql, 4, vals, "setting the session up", &res);
    PQclear(res);
    if (rc == 0 && o->is_sem) {
        char listen[64];
        snprintf(listen, sizeof listen, "LISTEN \"%s\"", o->channel);
        rc = xlock_pg__one(o, listen, 0, NULL, "listening for releases", &res);
        PQclear(res);
    }
    return rc == XPG_GONE ? XLOCK_EBACKEND : rc;
}

/* Opens and sets up the object's session [XL-PG-5, XL-PG-6]. Client TCP settings of XL-PG-11 and
 * connect_timeout 10 s [XL-PG-1] come first, so that the URI's own values override them. */
int xlock_pg__connect(xpg_obj *o)
{
    char user_timeout[24];
    long ut = o->ns.release_ms - 5000;
    snprintf(user_timeout, sizeof user_timeout, "%ld", ut < 1000 ? 1000 : ut);
    const char *keys[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {"10", "1", "5", "2", "3", user_timeout, o->ns.conninfo, NULL};
    o->conn = PQconnectdbParams(keys, vals, 1);
    o->pid = getpid();
    if (o->conn == NULL)
        return xlock_pg__fail(XLOCK_EBACKEND, o, "libpq could not allocate a connection");
    if (PQstatus(o->conn) != CONNECTION_OK) {
        char server[512], text[512];
        xlock_pg__server(o, server, sizeof server);
        snprintf(text, sizeof text, "%s", PQerrorMessage(o->conn));
        for (char *p = text; *p; p++)
            if (*p == '\n')
                *p = p[1] ? ' ' : '\0';
        xlock_pg__scrub(text, o->ns.password);
        int rc = xlock_pg__fail(XLOCK_EBACKEND, o,
                                "cannot connect to the %s: %s; check the URI, the server and the "
                                "credentials (~/.pgpass) [XL-PG-15]",
                                server, text);
        xlock_pg__disconnect(o);
        return rc;
    }
    o->cancel = PQgetCancel(o->conn);
    o->prepared = 0;
    int rc = setup(o);
    if (rc != 0)
        xlock_pg__disconnect(o);
    return rc;
}

/* Ends the session (the server releases all its locks). In a process other than the one that
 * opened it (a forked child), nothing is sent: the session is abandoned [XL-PG-16]. */
void xlock_pg__disconnect(xpg_obj *o)
{
    if (o->conn != NULL && o->pid == getpid()) {
        PQfinish(o->conn);
        if (o->cancel != NULL)
            PQfreeCancel(o->cancel);
    }
    o->conn = NULL;
    o->cancel = NULL;
    o->backend_pid = 0;
}

/* A usable session before an acquisition: a new one after a loss or in a forked child. */
int xlock_pg__ensure(xpg_obj *o)
{
    if (o->conn != NULL && o->pid == getpid() && PQstatus(o->conn) == CONNECTION_OK)
        return 0;
    xlock_pg__disconnect(o);
    return xlock_pg__connect(o);
}
