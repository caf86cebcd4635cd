/* The per-thread message of the last failure [XL-ERR-3], free of passwords [XL-PG-14]. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char message[2048];

const char *xlock_pg_last_message(void)
{
    return message;
}

const char *xlock_pg_version_string(void)
{
    return XLOCK_PG_VERSION_STRING;
}

/* Replaces every occurrence of secret in text by "***" (text keeps its buffer: "***" is shorter
 * than any secret of 3 bytes or more; shorter secrets are replaced byte for byte). */
void xlock_pg__scrub(char *text, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0)
        return;
    for (char *p = strstr(text, secret); p != NULL; p = strstr(p, secret)) {
        size_t stars = n < 3 ? n : 3;
        memset(p, '*', stars);
        memmove(p + stars, p + n, strlen(p + n) + 1);
        p += stars;
    }
}

/* "lock 'NAME' (label L) in URI" for messages. */
const char *xlock_pg__what(const xpg_obj *o, char *buf, size_t size)
{
    if (o->is_sem)
        snprintf(buf, size, "semaphore '%s' (capacity %ld, label '%s') in %s", o->name, o->capacity,
                 o->ns.label, o->ns.shown);
    else
        snprintf(buf, size, "%s lock '%s' (label '%s') in %s", o->shared ? "shared" : "exclusive",
                 o->name, o->ns.label, o->ns.shown);
    return buf;
}

/* Sets the message ("WHAT: text" when o is given) and returns code. */
int xlock_pg__fail(int code, const xpg_obj *o, const char *fmt, ...)
{
    char text[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (o != NULL && o->name != NULL) {
        char what[512];
        snprintf(message, sizeof message, "%s: %s", xlock_pg__what(o, what, sizeof what), text);
    } else {
        snprintf(message, sizeof message, "%s", text);
    }
    if (o != NULL)
        xlock_pg__scrub(message, o->ns.password);
    return code;
}
