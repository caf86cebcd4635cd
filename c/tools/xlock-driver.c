/* xlock-driver: the conformance driver of libxlock (conformance/PROTOCOL.md, protocol 1).
 * One JSON request per line on stdin, one reply per line on stdout; diagnostics on stderr. */
#define _GNU_SOURCE
#include "json.h"
#include "xlock.h"
#ifdef XLOCK_DRIVER_PG
#include "driver_pg.h" /* PostgreSQL namespaces: c/pg, capability pg */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD_REQUEST (-1000)
#define UNSUPPORTED (-1001)

typedef enum { K_LOCK, K_SEM, K_PSEM, K_PGLOCK, K_PGSEM } kind;
#define IS_PG(k) ((k) == K_PGLOCK || (k) == K_PGSEM)

/* 1 while the call that may fail is libxlock_pg's: its message is xlock_pg_last_message(). */
static int failing_pg;

typedef struct handle {
    char id[24];
    kind kind;
    void *obj;
} handle;

static handle *handles;
static size_t nhandles, caphandles;
static unsigned long long next_handle = 1;

/* A failure to report: error kind code (xlock code, BAD_REQUEST or UNSUPPORTED) and message. */
typedef struct {
    int code;
    char message[1200];
} failure;

static int bad(failure *f, const char *fmt, const char *arg)
{
    f->code = BAD_REQUEST;
    snprintf(f->message, sizeof f->message, fmt, arg);
    return -1;
}

static const char *last_message(void)
{
#ifdef XLOCK_DRIVER_PG
    if (failing_pg)
        return xlock_pg_last_message();
#endif
    return xlock_last_message();
}

static int lib_fail(failure *f, int rc)
{
    f->code = rc;
    snprintf(f->message, sizeof f->message, "%s", last_message());
    return -1;
}

static long long mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- argument access ---- */

static int get_string(const jobject *req, const char *key, int required, const char **s, size_t *len,
                      failure *f)
{
    const jfield *v = json_get(req, key);
    *s = NULL;
    *len = 0;
    if (v == NULL || v->type == J_NULL) {
        if (required)
            return bad(f, "missing argument '%s'", key);
        return 0;
    }
    if (v->type != J_STRING)
        return bad(f, "argument '%s' must be a string", key);
    *s = v->str;
    *len = v->len;
    return 0;
}

static int get_bool(const jobject *req, const char *key, int *out, failure *f)
{
    const jfield *v = json_get(req, key);
    *out = 0;
    if (v == NULL || v->type == J_NULL)
        return 0;
    if (v->type != J_BOOL)
        return bad(f, "argument '%s' must be a boolean", key);
    *out = v->boolean;
    return 0;
}

/* An integer argument of any magnitude (PROTOCOL.md: exact types); *present is 0 when absent or
 * null. A value beyond 64 bits sets *out to LLONG_MIN or LLONG_MAX and *huge to 1. A number with
 * a fraction or exponent, a boolean or a string is BAD_REQUEST. */
static int get_int_huge(const jobject *req, const char *key, int *present, long long *out, int *huge,
                        failure *f)
{
    const jfield *v = json_get(req, key);
    *present = 0;
    *out = 0;
    *huge = 0;
    if (v == NULL || v->type == J_NULL)
        return 0;
    if (v->type != J_INT)
        return bad(f, "argument '%s' must be a JSON integer", key);
    *present = 1;
    if (v->overflow || v->magnitude > (unsigned long long)LLONG_MAX) {
        *huge = 1;
        *out = v->negative ? LLONG_MIN : LLONG_MAX;
    } else {
        *out = v->negative ? -(long long)v->magnitude : (long long)v->magnitude;
    }
    return 0;
}

/* An integer argument that must fit 64 bits (counts). */
static int get_int(const jobject *req, const char *key, int *present, long long *out, failure *f)
{
    int huge;
    if (get_int_huge(req, key, present, out, &huge, f) != 0)
        return -1;
    return huge ? bad(f, "argument '%s' is too large", key) : 0;
}

/* The text of an integer argument as the request wrote it (for messages). */
static const char *int_text(const jobject *req, const char *key)
{
    const jfield *v = json_get(req, key);
    return v != NULL && v->type == J_INT ? v->text : "?";
}

/* A capacity or value beyond the C long range: INVALID_ARGUMENT naming it as given, after the
 * name check [XL-NAME-6, XL-CSEM-1, XL-PSEM-2]. */
static int out_of_range(const jobject *req, const char *key, const char *name, size_t len,
                        const char *range, failure *f)
{
    int rc = xlock_validate_name(name, len);
    if (rc != 0)
        return lib_fail(f, rc);
    f->code = XLOCK_EINVAL;
    snprintf(f->message, sizeof f->message, "%s %s is out of range; it must be %s", key,
             int_text(req, key), range);
    return -1;
}

static int get_u64(const jobject *req, const char *key, unsigned long long *out, failure *f)
{
    const jfield *v = json_get(req, key);
    if (v == NULL || v->type != J_INT || v->negative || v->overflow)
        return bad(f, "argument '%s' must be a non-negative 64-bit integer", key);
    *out = v->magnitude;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The name from "name" or "name_hex" into buf (malloc'ed). */
static int get_name(const jobject *req, char **buf, size_t *len, failure *f)
{
    const char *s, *hex;
    size_t sl, hl;
    *buf = NULL;
    if (get_string(req, "name", 0, &s, &sl, f) != 0 || get_string(req, "name_hex", 0, &hex, &hl, f) != 0)
        return -1;
    if (s != NULL && hex != NULL)
        return bad(f, "give either '%s' or 'name_hex', not both", "name");
    if (s != NULL) {
        *buf = malloc(sl + 1);
        memcpy(*buf, s, sl + 1);
        *len = sl;
        return 0;
    }
    if (hex == NULL)
        return bad(f, "missing argument '%s'", "name");
    if (hl % 2 != 0)
        return bad(f, "argument '%s' has an odd number of hex digits", "name_hex");
    *buf = malloc(hl / 2 + 1);
    for (size_t i = 0; i < hl / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*buf);
            *buf = NULL;
            return bad(f, "argument '%s' is not hexadecimal", "name_hex");
        }
        (*buf)[i] = (char)(hi << 4 | lo);
    }
    (*buf)[hl / 2] = '\0';
    *len = hl / 2;
    return 0;
}

/* Options from the request: namespace, shared, reentrant, allow_unsupported_fs. */
static int get_options(const jobject *req, xlock_options *opts, failure *f)
{
    const char *ns;
    size_t nl;
    xlock_options_init(opts);
    if (get_string(req, "namespace", 0, &ns, &nl, f) != 0 ||
        get_bool(req, "shared", &opts->shared, f) != 0 ||
        get_bool(req, "reentrant", &opts->reentrant, f) != 0 ||
        get_bool(req, "allow_unsupported_fs", &opts->allow_unsupported_fs, f) != 0)
        return -1;
    if (ns != NULL && strlen(ns) != nl) { /* [XL-NS-3] */
        f->code = XLOCK_EINVAL;
        snprintf(f->message, sizeof f->message,
                 "the namespace path contains a NUL byte; give an absolute directory path "
                 "[XL-NS-3]");
        return -1;
    }
    opts->namespace_path = ns;
    return 0;
}

static int get_kind(const jobject *req, kind *k, failure *f)
{
    const char *s;
    size_t len;
    if (get_string(req, "kind", 1, &s, &len, f) != 0)
        return -1;
    if (strcmp(s, "lock") == 0)
        *k = K_LOCK;
    else if (strcmp(s, "semaphore") == 0)
        *k = K_SEM;
    else if (strcmp(s, "posix_semaphore") == 0)
        *k = K_PSEM;
    else
        return bad(f, "unknown kind '%s'", s);
    return 0;
}

static handle *find_handle(const jobject *req, failure *f)
{
    const char *s;
    size_t len;
    if (get_string(req, "handle", 1, &s, &len, f) != 0)
        return NULL;
    for (size_t i = 0; i < nhandles; i++)
        if (strcmp(handles[i].id, s) == 0)
            return &handles[i];
    bad(f, "unknown handle '%s'", s);
    return NULL;
}

/* ---- operations ---- */

static int op_hello(const jobject *req, jwriter *w, failure *f)
{
    int present;
    long long protocol;
    if (get_int(req, "protocol", &present, &protocol, f) != 0)
        return -1;
    if (!present || protocol != 1)
        return bad(f, "protocol %s is not supported (this driver speaks protocol 1)",
                   present ? int_text(req, "protocol") : "(none)");
    jw_key(w, "implementation");
    jw_cstring(w, "c");
    jw_key(w, "version");
    jw_cstring(w, xlock_version_string());
    jw_key(w, "spec");
    jw_cstring(w, xlock_spec_version());
    jw_key(w, "protocol");
    jw_int(w, 1);
    jw_key(w, "pid");
    jw_int(w, (long long)getpid());
    jw_key(w, "capabilities");
    static const char *caps[] = {"lock",
                                 "shared",
                                 "timeout",
                                 "reentrant",
                                 "semaphore",
                                 "posix_semaphore",
                                 "map",
                                 "remove",
                                 "counter",
                                 "clock",
                                 "fork"
#ifdef XLOCK_DRIVER_PG
                                 ,
                                 "pg"
#endif
    };
    char list[256] = "[";
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        strcat(list, i ? ",\"" : "\"");
        strcat(list, caps[i]);
        strcat(list, "\"");
    }
    strcat(list, "]");
    jw_value_raw(w, list, strlen(list));
    return 0;
}

static int op_map(const jobject *req, jwriter *w, failure *f)
{
    char *name;
    size_t len;
    unsigned long long dev, ino;
    if (get_name(req, &name, &len, f) != 0)
        return -1;
    if (get_u64(req, "dev", &dev, f) != 0 || get_u64(req, "ino", &ino, f) != 0) {
        free(name);
        return -1;
    }
    char buf[XLOCK_FILE_NAME_SIZE];
    int rc = xlock_lock_file_name(buf, sizeof buf, name, len);
    if (rc < 0) {
        free(name);
        return lib_fail(f, rc);
    }
    jw_key(w, "lock_file");
    jw_cstring(w, buf);
    xlock_capacity_file_name(buf, sizeof buf, name, len);
    jw_key(w, "capacity_file");
    jw_cstring(w, buf);
    jw_key(w, "slot_files");
    jw_open(w);
    xlock_slot_file_name(buf, sizeof buf, name, len, 0);
    jw_key(w, "0");
    jw_cstring(w, buf);
    xlock_slot_file_name(buf, sizeof buf, name, len, 999);
    jw_key(w, "999");
    jw_cstring(w, buf);
    jw_close(w);
    jw_key(w, "semaphores"); /* raw semaphores only: the doorbells are withdrawn [XL-SEM-2] */
    jw_open(w);
    xlock_semaphore_name(buf, sizeof buf, XLOCK_KIND_POSIX_SEMAPHORE, dev, ino, name, len);
    jw_key(w, "p");
    jw_cstring(w, buf);
    jw_close(w);
    jw_key(w, "bell_words"); /* [XL-SEM-7] */
    jw_open(w);
    jw_key(w, "l");
    jw_int(w, xlock_bell_word(XLOCK_KIND_LOCK, name, len));
    jw_key(w, "s");
    jw_int(w, xlock_bell_word(XLOCK_KIND_SEMAPHORE, name, len));
    jw_close(w);
#ifdef XLOCK_DRIVER_PG
    const char *label;
    size_t label_len;
    if (get_string(req, "label", 0, &label, &label_len, f) != 0) {
        free(name);
        return -1;
    }
    rc = label == NULL ? 0 : driver_pg_map(w, name, len, label, label_len); /* [XL-PG-3] */
    if (rc != 0) {
        free(name);
        failing_pg = 1;
        return lib_fail(f, rc);
    }
#endif
    free(name);
    return 0;
}

static int op_open(const jobject *req, jwriter *w, failure *f)
{
    kind k;
    char *name;
    size_t len;
    xlock_options opts;
    if (get_kind(req, &k, f) != 0 || get_options(req, &opts, f) != 0)
        return -1;
    long long capacity = 0, value = 1;
    int has_capacity = 0, has_value = 0, huge_capacity, huge_value;
    if (get_int_huge(req, "capacity", &has_capacity, &capacity, &huge_capacity, f) != 0 ||
        get_int_huge(req, "value", &has_value, &value, &huge_value, f) != 0)
        return -1;
    if (!has_value)
        value = 1;
    if (k == K_SEM && !has_capacity)
        return bad(f, "missing argument '%s'", "capacity");
    if (get_name(req, &name, &len, f) != 0)
        return -1;
    if ((k == K_SEM && huge_capacity) || (k == K_PSEM && huge_value)) {
        int r = k == K_SEM ? out_of_range(req, "capacity", name, len, "1 to 1000 [XL-CSEM-1]", f)
                           : out_of_range(req, "value", name, len, "0 to SEM_VALUE_MAX [XL-PSEM-2]", f);
        free(name);
        return r;
    }
    void *obj = NULL;
    int rc, word = -1, sharing = -1;
    unsigned long long dev = 0, ino = 0;
    const char *ns = NULL, *path = NULL, *sem = NULL, *bell = NULL;
    failing_pg = 0;
#ifdef XLOCK_DRIVER_PG
    const char *url = opts.namespace_path ? opts.namespace_path : getenv("XLOCK_NAMESPACE");
    if (k != K_PSEM && xlock_pg_is_url(url)) { /* a PostgreSQL namespace [XL-PG-1] */
        failing_pg = 1;
        rc = driver_pg_open(&obj, name, len, k == K_SEM ? capacity : -1, &opts);
        k = k == K_SEM ? K_PGSEM : K_PGLOCK;
    } else
#endif
        if (k == K_LOCK) {
        xlock_t *l;
        rc = xlock_open_n(&l, name, len, &opts);
        if (rc == 0) {
            obj = l;
            xlock_namespace_id(&dev, &ino, l);
            ns = xlock_namespace(l);
            path = xlock_path(l);
            bell = xlock_bell(l);
            word = xlock_lock_bell_word(l);
            sharing = xlock_sharing(l);
        }
    } else if (k == K_SEM) {
        /* shared/reentrant are lock options; the library refuses them for semaphores. */
        xlock_sem_t *s;
        rc = xlock_sem_open_n(&s, name, len, (long)capacity, &opts);
        if (rc == 0) {
            obj = s;
            xlock_sem_namespace_id(&dev, &ino, s);
            ns = xlock_sem_namespace(s);
            path = xlock_sem_path(s);
            bell = xlock_sem_bell(s);
            word = xlock_sem_bell_word(s);
            sharing = xlock_sem_sharing(s);
        }
    } else {
        xlock_psem_t *p;
        rc = xlock_psem_open_n(&p, name, len, (long)value, &opts);
        if (rc == 0) {
            obj = p;
            xlock_psem_namespace_id(&dev, &ino, p);
            ns = xlock_psem_namespace(p);
            sem = xlock_psem_semaphore(p);
            sharing = xlock_psem_sharing(p);
        }
    }
    free(name);
    if (rc != 0)
        return lib_fail(f, rc);
    if (nhandles == caphandles) {
        size_t cap = caphandles ? caphandles * 2 : 16;
        handle *grown = realloc(handles, cap * sizeof *handles);
        if (grown == NULL) { /* a test driver out of memory: stop loudly, never write through NULL */
            perror("xlock-driver: realloc");
            abort();
        }
        handles = grown;
        caphandles = cap;
    }
    handle *h = &handles[nhandles++];
    snprintf(h->id, sizeof h->id, "h%llu", next_handle++);
    h->kind = k;
    h->obj = obj;
    jw_key(w, "handle");
    jw_cstring(w, h->id);
#ifdef XLOCK_DRIVER_PG
    if (IS_PG(k)) {
        driver_pg_describe(w, obj, k == K_PGSEM);
        return 0;
    }
#endif
    jw_key(w, "namespace");
    jw_cstring(w, ns);
    jw_key(w, "dev");
    jw_uint(w, dev);
    jw_key(w, "ino");
    jw_uint(w, ino);
    jw_key(w, "path");
    jw_cstring(w, path);
    jw_key(w, "semaphore");
    jw_cstring(w, sem);
    jw_key(w, "bell");
    jw_cstring(w, bell);
    jw_key(w, "bell_word");
    if (word >= 0)
        jw_int(w, word);
    else
        jw_null(w);
    jw_key(w, "sharing");
    jw_cstring(w, xlock_sharing_name(sharing));
    return 0;
}

/* Acquires h (try or with timeout; timeout < 0 untimed); the slot for semaphores in *slot. */
static int do_acquire(handle *h, int try_only, long long timeout_ms, int *slot)
{
    *slot = -1;
    failing_pg = IS_PG(h->kind);
#ifdef XLOCK_DRIVER_PG
    if (IS_PG(h->kind))
        return driver_pg_acquire(h->obj, h->kind == K_PGSEM, try_only, timeout_ms, slot);
#endif
    switch (h->kind) {
    case K_LOCK:
        return try_only ? xlock_try_acquire(h->obj) : xlock_acquire(h->obj, timeout_ms);
    case K_SEM: {
        int rc = try_only ? xlock_sem_try_acquire(h->obj) : xlock_sem_acquire(h->obj, timeout_ms);
        if (rc >= 0) {
            *slot = rc;
            rc = 0;
        }
        return rc;
    }
    default:
        return try_only ? xlock_psem_try_acquire(h->obj) : xlock_psem_acquire(h->obj, timeout_ms);
    }
}

static int do_release(handle *h)
{
    failing_pg = IS_PG(h->kind);
#ifdef XLOCK_DRIVER_PG
    if (IS_PG(h->kind))
        return driver_pg_release(h->obj, h->kind == K_PGSEM);
#endif
    switch (h->kind) {
    case K_LOCK:
        return xlock_release(h->obj);
    case K_SEM:
        return xlock_sem_release(h->obj);
    default:
        return xlock_psem_release(h->obj);
    }
}

/* 1 if the object holds its lock (or a permit), 0 if not; with verify a PostgreSQL lock asks the server
 * (XLOCK_ELOST if lost [XL-PG-10]). */
static int held_of(handle *h, int verify)
{
    failing_pg = IS_PG(h->kind);
    switch (h->kind) {
    case K_LOCK:
        return xlock_locked(h->obj);
    case K_SEM:
        return xlock_sem_held(h->obj);
#ifdef XLOCK_DRIVER_PG
    case K_PGLOCK:
    case K_PGSEM:
        return driver_pg_locked(h->obj, h->kind == K_PGSEM, verify);
#endif
    default:
        (void)verify;
        return xlock_psem_held(h->obj);
    }
}

/* timeout_ms: null or absent or negative = untimed; beyond 64 bits = untimed [XL-WAIT-3]. */
static int get_timeout(const jobject *req, long long *timeout_ms, failure *f)
{
    int present, huge;
    if (get_int_huge(req, "timeout_ms", &present, timeout_ms, &huge, f) != 0)
        return -1;
    if (!present || huge)
        *timeout_ms = -1;
    return 0;
}

static int op_acquire(const jobject *req, jwriter *w, failure *f, int try_only)
{
    handle *h = find_handle(req, f);
    long long timeout_ms = -1;
    if (h == NULL || (!try_only && get_timeout(req, &timeout_ms, f) != 0))
        return -1;
    int slot;
    int rc = do_acquire(h, try_only, timeout_ms, &slot);
    long long t = mono_ns();
    if (rc != 0)
        return lib_fail(f, rc);
    if (h->kind != K_LOCK && h->kind != K_PGLOCK) {
        jw_key(w, "slot");
        if (h->kind == K_SEM || h->kind == K_PGSEM)
            jw_int(w, slot);
        else
            jw_null(w);
    }
    jw_key(w, "mono_ns");
    jw_int(w, t);
    return 0;
}

static int op_release(const jobject *req, jwriter *w, failure *f)
{
    handle *h = find_handle(req, f);
    if (h == NULL)
        return -1;
    long long t = mono_ns();
    int rc = do_release(h);
    if (rc != 0)
        return lib_fail(f, rc);
    jw_key(w, "mono_ns");
    jw_int(w, t);
    return 0;
}

static int op_locked(const jobject *req, jwriter *w, failure *f)
{
    handle *h = find_handle(req, f);
    int verify;
    if (h == NULL || get_bool(req, "verify", &verify, f) != 0)
        return -1;
    int held = held_of(h, verify);
    if (held < 0)
        return lib_fail(f, held);
    jw_key(w, "locked");
    jw_bool(w, held > 0);
    return 0;
}

static void close_handle(handle *h)
{
#ifdef XLOCK_DRIVER_PG
    if (IS_PG(h->kind)) {
        driver_pg_close(h->obj, h->kind == K_PGSEM);
        return;
    }
#endif
    switch (h->kind) {
    case K_LOCK:
        xlock_close(h->obj);
        break;
    case K_SEM:
        xlock_sem_close(h->obj);
        break;
    default:
        xlock_psem_close(h->obj);
        break;
    }
}

static int op_close(const jobject *req, jwriter *w, failure *f)
{
    (void)w;
    handle *h = find_handle(req, f);
    if (h == NULL)
        return -1;
    close_handle(h);
    *h = handles[--nhandles];
    return 0;
}

static int op_remove(const jobject *req, jwriter *w, failure *f)
{
    kind k;
    char *name;
    size_t len;
    xlock_options opts;
    long long capacity = 0;
    int has_capacity, huge, removed = 0, rc;
    if (get_kind(req, &k, f) != 0 || get_options(req, &opts, f) != 0 ||
        get_int_huge(req, "capacity", &has_capacity, &capacity, &huge, f) != 0)
        return -1;
    if (get_name(req, &name, &len, f) != 0)
        return -1;
    if (k == K_SEM && (huge || (has_capacity && capacity == 0))) {
        /* 0 means "the capacity file decides" in C; in the protocol it is out of range */
        rc = out_of_range(req, "capacity", name, len, "1 to 1000 [XL-CSEM-1]", f);
        free(name);
        return rc;
    }
    opts.shared = opts.reentrant = 0;
    failing_pg = 0;
#ifdef XLOCK_DRIVER_PG
    const char *url = opts.namespace_path ? opts.namespace_path : getenv("XLOCK_NAMESPACE");
    if (k != K_PSEM && xlock_pg_is_url(url)) { /* nothing to remove there [XL-PG-18] */
        failing_pg = 1;
        rc = driver_pg_remove(&removed, name, len, k == K_SEM ? (has_capacity ? capacity : 0) : -1,
                              &opts);
    } else
#endif
        if (k == K_LOCK)
        rc = xlock_remove_n(&removed, name, len, &opts);
    else if (k == K_SEM) /* without a capacity the capacity file decides [XL-RM-3] */
        rc = xlock_sem_remove_n(&removed, name, len, has_capacity ? (long)capacity : 0, &opts);
    else
        rc = xlock_psem_unlink_n(&removed, name, len, &opts);
    free(name);
    if (rc != 0)
        return lib_fail(f, rc);
    jw_key(w, "removed");
    jw_bool(w, removed);
    return 0;
}

/* The counter's content: ASCII digits, optionally one '\n'; empty = 0. -1 if malformed. */
static long long parse_counter(const char *buf, ssize_t n)
{
    long long v = 0;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 18)
        return -1;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        v = v * 10 + (buf[i] - '0');
    }
    return v;
}

/* The shared counter: read (missing/empty = 0), +1, write back as decimal + "\n", truncating. */
static int increment(const char *path, long long *value, failure *f)
{
    char buf[64];
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        f->code = XLOCK_EOS;
        snprintf(f->message, sizeof f->message, "increment: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    long long v = n < 0 ? -1 : parse_counter(buf, n);
    if (v < 0) {
        f->code = BAD_REQUEST;
        snprintf(f->message, sizeof f->message,
                 "increment: %s does not hold a decimal counter (digits and one newline)", path);
        close(fd);
        return -1;
    }
    v++;
    int len = snprintf(buf, sizeof buf, "%lld\n", v);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        f->code = XLOCK_EOS;
        snprintf(f->message, sizeof f->message, "increment: cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    *value = v;
    return 0;
}

static int op_increment(const jobject *req, jwriter *w, failure *f)
{
    const char *path;
    size_t len;
    long long v;
    if (get_string(req, "path", 1, &path, &len, f) != 0 || increment(path, &v, f) != 0)
        return -1;
    jw_key(w, "value");
    jw_int(w, v);
    return 0;
}

static int op_cycle(const jobject *req, jwriter *w, failure *f)
{
    handle *h = find_handle(req, f);
    const char *path;
    size_t len;
    long long count, timeout_ms;
    int present;
    if (h == NULL || get_string(req, "path", 1, &path, &len, f) != 0 ||
        get_int(req, "count", &present, &count, f) != 0 || get_timeout(req, &timeout_ms, f) != 0)
        return -1;
    if (!present)
        return bad(f, "missing argument '%s'", "count");
    for (long long done = 0; done < count; done++) {
        int slot;
        long long v;
        int rc = do_acquire(h, 0, timeout_ms, &slot);
        if (rc == 0 && increment(path, &v, f) != 0) {
            do_release(h);
            char m[1200];
            snprintf(m, sizeof m, "%s (done: %lld)", f->message, done);
            snprintf(f->message, sizeof f->message, "%s", m);
            return -1;
        }
        if (rc == 0)
            rc = do_release(h);
        if (rc != 0) {
            f->code = rc;
            snprintf(f->message, sizeof f->message, "%s (done: %lld)", last_message(), done);
            return -1;
        }
    }
    jw_key(w, "count");
    jw_int(w, count);
    return 0;
}

/* In the forked child: leave the protocol streams alone, release, ask locked, try to acquire, write
 * the outcomes as one JSON line to the pipe, then linger until killed [XL-HOLD-7, XL-HOLD-8]. */
static void fork_child(handle *h, int wfd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
    }
    int rel = do_release(h);
    int held = held_of(h, 0);
    int slot;
    int got = do_acquire(h, 1, -1, &slot);
    const char *rk = rel == 0 ? "ok" : xlock_errname(rel);
    const char *gk = got == 0 ? "ok" : xlock_errname(got);
    char line[256];
    int n = snprintf(line, sizeof line, "{\"release\":\"%s\",\"locked\":%s,\"try_acquire\":\"%s\"}\n",
                     rk ? rk : "OS_ERROR", held > 0 ? "true" : "false", gk ? gk : "OS_ERROR");
    if (write(wfd, line, (size_t)n) != n)
        perror("xlock-driver: fork_check child: write");
    for (;;)
        pause();
}

/* The child's line from the pipe within timeout_ms; 0, or -1 with a message in f. */
static int read_child_line(int fd, char *buf, size_t size, int timeout_ms, failure *f)
{
    size_t len = 0;
    long long deadline = mono_ns() + (long long)timeout_ms * 1000000LL;
    while (len == 0 || buf[len - 1] != '\n') {
        long long left = (deadline - mono_ns()) / 1000000LL;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        ssize_t n = rc > 0 ? read(fd, buf + len, size - 1 - len) : -1;
        if (rc <= 0 || n <= 0 || len + (size_t)n >= size - 1) {
            f->code = XLOCK_EOS;
            snprintf(f->message, sizeof f->message,
                     "the forked child did not report one line within %d ms", timeout_ms);
            return -1;
        }
        len += (size_t)n;
    }
    buf[len - 1] = '\0';
    return 0;
}

static int op_fork_check(const jobject *req, jwriter *w, failure *f)
{
    handle *h = find_handle(req, f);
    if (h == NULL)
        return -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        f->code = XLOCK_EOS;
        snprintf(f->message, sizeof f->message, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        f->code = XLOCK_EOS;
        snprintf(f->message, sizeof f->message, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        fork_child(h, fds[1]); /* never returns */
    }
    close(fds[1]);
    char line[512];
    jobject got;
    char err[128];
    int rc = read_child_line(fds[0], line, sizeof line, 5000, f);
    close(fds[0]);
    if (rc == 0 && json_parse_object(&got, line, strlen(line), err, sizeof err) != 0) {
        f->code = XLOCK_EOS;
        snprintf(f->message, sizeof f->message, "the forked child reported '%.200s': %s", line, err);
        rc = -1;
    }
    if (rc != 0) {
        kill(pid, SIGKILL); /* a failed child is not left behind */
        waitpid(pid, NULL, 0);
        return -1;
    }
    jw_key(w, "child_pid");
    jw_int(w, (long long)pid);
    const char *keys[] = {"release", "locked", "try_acquire"};
    for (int i = 0; i < 3; i++) {
        const jfield *v = json_get(&got, keys[i]);
        jw_key(w, keys[i]);
        if (v != NULL && v->type == J_STRING)
            jw_string(w, v->str, v->len);
        else if (v != NULL && v->type == J_BOOL)
            jw_bool(w, v->boolean);
        else
            jw_null(w);
    }
    json_free(&got);
    return 0;
}

/* ---- the loop ---- */

static void reply(const jfield *id, int ok, jwriter *body, const failure *f)
{
    jwriter w;
    jw_init(&w);
    jw_open(&w);
    jw_key(&w, "id");
    if (id != NULL && id->type == J_INT && !id->overflow)
        id->negative ? jw_int(&w, -(long long)id->magnitude) : jw_uint(&w, id->magnitude);
    else
        jw_null(&w);
    jw_key(&w, "ok");
    jw_bool(&w, ok);
    if (ok) {
        /* The body holds the members, each preceded by a comma. */
        if (body != NULL)
            jw_append(&w, body->buf, body->len);
    } else {
        const char *kind = f->code == BAD_REQUEST   ? "BAD_REQUEST"
                           : f->code == UNSUPPORTED ? "UNSUPPORTED"
                                                    : xlock_errname(f->code);
        jw_key(&w, "error");
        jw_cstring(&w, kind ? kind : "OS_ERROR");
        jw_key(&w, "message");
        jw_cstring(&w, f->message);
    }
    jw_close(&w);
    fwrite(w.buf, 1, w.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    jw_free(&w);
}

#ifdef XLOCK_DRIVER_PG
static void on_sigint(int sig)
{
    (void)sig; /* interrupts the wait in progress: it fails with INTERRUPTED [XL-WAIT-9, XL-PG-8] */
}
#endif

int main(void)
{
#ifdef XLOCK_DRIVER_PG
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
#endif
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        jobject req;
        failing_pg = 0;
        failure f = {0, ""};
        char err[128];
        if (json_parse_object(&req, line, (size_t)n, err, sizeof err) != 0) {
            f.code = BAD_REQUEST;
            snprintf(f.message, sizeof f.message, "the request is not a JSON object: %s", err);
            reply(NULL, 0, NULL, &f);
            continue;
        }
        const jfield *id = json_get(&req, "id");
        const char *op;
        size_t oplen;
        jwriter body;
        jw_init(&body);
        int rc = get_string(&req, "op", 1, &op, &oplen, &f);
        int quit = 0;
        if (rc == 0 && id != NULL && id->type != J_INT && id->type != J_NULL)
            rc = bad(&f, "argument '%s' must be a JSON integer", "id");
        if (rc == 0 && !(id != NULL && id->type != J_INT && id->type != J_NULL)) {
            /* Members of the reply body are written as a sequence without braces. */
            body.need_comma = 1;
            if (strcmp(op, "hello") == 0)
                rc = op_hello(&req, &body, &f);
            else if (strcmp(op, "map") == 0)
                rc = op_map(&req, &body, &f);
            else if (strcmp(op, "open") == 0)
                rc = op_open(&req, &body, &f);
            else if (strcmp(op, "acquire") == 0)
                rc = op_acquire(&req, &body, &f, 0);
            else if (strcmp(op, "try_acquire") == 0)
                rc = op_acquire(&req, &body, &f, 1);
            else if (strcmp(op, "release") == 0)
                rc = op_release(&req, &body, &f);
            else if (strcmp(op, "locked") == 0)
                rc = op_locked(&req, &body, &f);
            else if (strcmp(op, "close") == 0)
                rc = op_close(&req, &body, &f);
            else if (strcmp(op, "remove") == 0)
                rc = op_remove(&req, &body, &f);
            else if (strcmp(op, "increment") == 0)
                rc = op_increment(&req, &body, &f);
            else if (strcmp(op, "cycle") == 0)
                rc = op_cycle(&req, &body, &f);
            else if (strcmp(op, "fork_check") == 0)
                rc = op_fork_check(&req, &body, &f);
            else if (strcmp(op, "exit") == 0)
                quit = 1;
            else
                rc = bad(&f, "unknown op '%s'", op);
        }
        reply(id, rc == 0, &body, &f);
        jw_free(&body);
        json_free(&req);
        if (quit)
            break;
    }
    free(line);
    return 0;
}
