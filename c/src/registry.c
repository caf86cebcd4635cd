/* The fork registry [XL-HOLD-7, XL-HOLD-8].
 *
 * With the namespace table (nsshare.c) and the bell table (bell.c) this is the library's only
 * process-wide mutable state: one pthread_atfork registration and the list of open objects.
 * Around fork(2) the parent locks the registry and every object's mutex (never held across a
 * blocking wait, so this is bounded); in the child each object closes its inherited lock
 * descriptors at once, so the child never keeps the parent's open file description (and with it
 * the parent's lock) alive, and forgets what it held. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int atfork_error;
static xlock__node head = {&head, &head, NULL, NULL};

static void prepare(void)
{
    pthread_mutex_lock(&xlock__ns_mu);
    pthread_mutex_lock(&xlock__bells_mu);
    pthread_mutex_lock(&registry_mu);
    for (xlock__node *n = head.next; n != &head; n = n->next)
        pthread_mutex_lock(n->mu);
}

static void parent(void)
{
    for (xlock__node *n = head.prev; n != &head; n = n->prev)
        pthread_mutex_unlock(n->mu);
    pthread_mutex_unlock(&registry_mu);
    pthread_mutex_unlock(&xlock__bells_mu);
    pthread_mutex_unlock(&xlock__ns_mu);
}

static void child(void)
{
    for (xlock__node *n = head.prev; n != &head; n = n->prev) {
        n->child(n);
        pthread_mutex_unlock(n->mu);
    }
    pthread_mutex_unlock(&registry_mu);
    pthread_mutex_unlock(&xlock__bells_mu);
    pthread_mutex_unlock(&xlock__ns_mu);
}

static void install(void)
{
    atfork_error = pthread_atfork(prepare, parent, child);
}

int xlock__register(xlock__node *node)
{
    pthread_once(&once, install);
    if (atfork_error != 0)
        return xlock__fail(XLOCK_EOS, atfork_error, "pthread_atfork failed: %s", strerror(atfork_error));
    pthread_mutex_lock(&registry_mu);
    node->next = &head;
    node->prev = head.prev;
    head.prev->next = node;
    head.prev = node;
    pthread_mutex_unlock(&registry_mu);
    return 0;
}

void xlock__unregister(xlock__node *node)
{
    pthread_mutex_lock(&registry_mu);
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
    pthread_mutex_unlock(&registry_mu);
}
