/* One verified namespace per process [XL-NS-16].
 *
 * The objects of a process that name the same namespace path share one entry: the directory
 * descriptor, opened and checked once (XL-NS-4..XL-NS-11), and the namespace's bell (§9a). Before
 * an entry serves a new object, an lstat of the path must show the same directory, owner and mode
 * (and the effective uid must be the one it was checked for); otherwise the namespace is opened and
 * checked anew and the new entry replaces the old one for later objects. A lock object therefore
 * costs one descriptor, its lock file.
 *
 * When the last object of a namespace closes, its entry stays open as the one idle entry, so the
 * next object of that namespace (a lock object per use) needs no open, check or mapping; a later
 * idle entry replaces it. A directory descriptor carries no lock, so after fork the child keeps
 * using the entries, and the bell's mapping, it inherited. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Idle entries kept open: the last namespace used. */
#define IDLE_ENTRIES 1

struct xlock__nsent {
    struct xlock__nsent *next;
    xlock__ns ns;      /* owns fd and path */
    xlock__bell *bell; /* one reference, taken at the first lock or semaphore [XL-BELL-2] */
    int refs;          /* objects using it */
    int listed;        /* still in the table: found by later objects */
};

pthread_mutex_t xlock__ns_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xlock__nsent *entries; /* under xlock__ns_mu */

static void entry_free(struct xlock__nsent *e)
{
    xlock__bell_put(e->bell);
    if (e->ns.fd >= 0)
        close(e->ns.fd);
    free(e->ns.path);
    free(e);
}

static void unlist(struct xlock__nsent *e)
{
    struct xlock__nsent **p = &entries;
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    e->listed = 0;
}

static struct xlock__nsent *find(const char *path)
{
    struct xlock__nsent *e = entries;
    while (e != NULL && strcmp(e->ns.path, path) != 0)
        e = e->next;
    return e;
}

/* Frees idle listed entries beyond `keep`, sparing `spare`; under xlock__ns_mu. */
static void trim_idle(int keep, const struct xlock__nsent *spare)
{
    int idle = spare != NULL && spare->refs == 0;
    struct xlock__nsent **p = &entries;
    while (*p != NULL) {
        struct xlock__nsent *e = *p;
        if (e != spare && e->refs == 0 && ++idle > keep) {
            *p = e->next;
            entry_free(e);
        } else {
            p = &e->next;
        }
    }
}

static void give(xlock__ns *ns, struct xlock__nsent *e)
{
    e->refs++;
    *ns = e->ns; /* path and fd stay the entry's */
    ns->entry = e;
}

/* The listed entry for path if an lstat confirms it for this object [XL-NS-16]; under the mutex. */
static struct xlock__nsent *confirmed(const char *path, int is_default, const xlock_options *opts)
{
    struct xlock__nsent *e = find(path);
    struct stat st;
    if (e == NULL || fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return NULL;
    return xlock__ns_reusable(&e->ns, &st, geteuid(), is_default, opts) ? e : NULL;
}

int xlock__ns_open(xlock__ns *ns, const xlock_options *opts, const char *what)
{
    char dflt[40];
    int is_default, rc;
    memset(ns, 0, sizeof *ns);
    ns->fd = -1;
    const char *chosen = xlock__ns_choose(opts, dflt, sizeof dflt, &is_default);
    if (chosen[0] != '/') /* [XL-NS-3] */
        return xlock__fail(XLOCK_EINVAL, 0,
                           "%s: the namespace path '%s' is not absolute; give an absolute directory "
                           "path [XL-NS-3]",
                           what, chosen);
    size_t n = strlen(chosen);
    while (n > 1 && chosen[n - 1] == '/') /* trailing '/' only, "/" stays "/" [XL-NS-14] */
        n--;
    char *path = xlock__strndup(chosen, n);
    if (path == NULL)
        return xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what);
    pthread_mutex_lock(&xlock__ns_mu);
    struct xlock__nsent *e = confirmed(path, is_default, opts);
    if (e != NULL)
        give(ns, e);
    pthread_mutex_unlock(&xlock__ns_mu);
    if (e != NULL) {
        free(path);
        return 0;
    }
    /* Opened and checked anew, outside the mutex (it may create the directory). */
    e = calloc(1, sizeof *e);
    rc = e == NULL ? xlock__fail(XLOCK_EOS, ENOMEM, "%s: out of memory", what)
                   : xlock__ns_verify(&e->ns, path, is_default, opts, what);
    free(path);
    if (rc != 0) {
        free(e);
        return rc;
    }
    pthread_mutex_lock(&xlock__ns_mu);
    struct xlock__nsent *old = find(e->ns.path);
    if (old != NULL) { /* replaced: its objects keep it, later ones get the new one */
        unlist(old);
        if (old->refs == 0)
            entry_free(old);
    }
    e->listed = 1;
    e->next = entries;
    entries = e;
    give(ns, e);
    pthread_mutex_unlock(&xlock__ns_mu);
    return 0;
}

void xlock__ns_close(xlock__ns *ns)
{
    struct xlock__nsent *e = ns->entry;
    if (e != NULL) {
        pthread_mutex_lock(&xlock__ns_mu);
        if (--e->refs == 0) {
            if (e->listed)
                trim_idle(IDLE_ENTRIES, e);
            else
                entry_free(e);
        }
        pthread_mutex_unlock(&xlock__ns_mu);
    } else if (ns->fd >= 0) {
        close(ns->fd);
        free(ns->path);
    }
    ns->entry = NULL;
    ns->fd = -1;
    ns->path = NULL;
}

xlock__bell *xlock__ns_bell(const xlock__ns *ns, int create)
{
    struct xlock__nsent *e = ns->entry;
    if (e == NULL)
        return NULL;
    pthread_mutex_lock(&xlock__ns_mu);
    if (e->bell == NULL)
        e->bell = xlock__bell_get(&e->ns, create);
    xlock__bell *b = e->bell;
    pthread_mutex_unlock(&xlock__ns_mu);
    return b;
}

/* At exit, the idle entries go too (memory checkers see nothing left behind). */
__attribute__((destructor)) static void drop_idle(void)
{
    pthread_mutex_lock(&xlock__ns_mu);
    trim_idle(0, NULL);
    pthread_mutex_unlock(&xlock__ns_mu);
}
