/* PostgreSQL namespace URIs [XL-PG-1, XL-PG-2, XL-PG-11, XL-PG-14]. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_RELEASE_MS 15000L

int xlock_pg_is_url(const char *ns)
{
    return ns != NULL && (strncmp(ns, "postgresql://", 13) == 0 || strncmp(ns, "postgres://", 11) == 0);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        abort();
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int hex(int c)
{
    return isdigit(c)               ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* Percent-decodes s[0..n) into a new string; NULL if malformed. *len gets the decoded length. */
static char *decode(const char *s, size_t n, size_t *len)
{
    char *d = malloc(n + 1);
    size_t j = 0;
    if (d == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hex((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(d);
            return NULL;
        }
        d[j++] = (char)(hi << 4 | lo);
        i += 2;
    }
    d[j] = '\0';
    *len = j;
    return d;
}

/* The URI with the password of its authority (user:PASSWORD@) and of a password= parameter
 * replaced by *** [XL-PG-14]. */
static char *redact(const char *url)
{
    size_t n = strlen(url);
    char *out = malloc(n + 8), *o = out;
    if (out == NULL)
        abort();
    const char *auth = strstr(url, "://") + 3;
    const char *end = auth + strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p; /* the last '@' ends the user info */
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *p = url;
    if (colon != NULL) {
        memcpy(o, url, (size_t)(colon + 1 - url)), o += colon + 1 - url;
        memcpy(o, "***", 3), o += 3;
        p = at;
    }
    while (*p) {
        if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
            memcpy(o, p, 10), o += 10;
            memcpy(o, "***", 3), o += 3;
            p += 10;
            p += strcspn(p, "&");
            continue;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

void xlock_pg__ns_free(xpg_ns *ns)
{
    free(ns->conninfo);
    free(ns->shown);
    free(ns->label);
    if (ns->password != NULL)
        explicit_bzero(ns->password, strlen(ns->password));
    free(ns->password);
    memset(ns, 0, sizeof *ns);
}

/* Parses url into ns: removes the xlock_ parameters (xlock_namespace, xlock_release_ms; any other
 * or a malformed one is INVALID_ARGUMENT), checks the rest with libpq, all before connecting. */
int xlock_pg__parse(xpg_ns *ns, const char *url)
{
    memset(ns, 0, sizeof *ns);
    ns->release_ms = DEFAULT_RELEASE_MS;
    ns->shown = redact(url);
    size_t n = strlen(url);
    char *kept = malloc(n + 1);
    if (kept == NULL)
        abort();
    const char *q = strchr(url, '?');
    size_t base = q ? (size_t)(q - url) : n;
    memcpy(kept, url, base);
    size_t k = base;
    int rc = 0, nkept = 0;
    for (const char *p = q ? q + 1 : NULL; p != NULL && *p && rc == 0;) {
        size_t plen = strcspn(p, "&");
        if (plen > 6 && strncmp(p, "xlock_", 6) == 0) {
            const char *eq = memchr(p, '=', plen);
            size_t klen = eq ? (size_t)(eq - p) : plen, vlen = 0;
            char *v = eq ? decode(eq + 1, plen - klen - 1, &vlen) : NULL;
            if (v == NULL) {
                rc = xlock_pg__fail(
                    XLOCK_EINVAL, NULL,
                    "the parameter %.*s of %s has no value or a malformed %%-escape [XL-PG-1]",
                    (int)klen, p, ns->shown);
            } else if (klen == 15 && strncmp(p, "xlock_namespace", 15) == 0) {
                if (xlock_validate_name(v, vlen) != 0)
                    rc = xlock_pg__fail(
                        XLOCK_EINVAL, NULL,
                        "the label xlock_namespace=%s of %s breaks the rules of names (§3): "
                        "%s; give 1-80 bytes without control characters [XL-PG-2]",
                        eq + 1, ns->shown, xlock_last_message());
                else {
                    free(ns->label);
                    ns->label = v;
                    v = NULL;
                }
            } else if (klen == 16 && strncmp(p, "xlock_release_ms", 16) == 0) {
                char *e;
                errno = 0;
                long r = strtol(v, &e, 10);
                if (errno || e == v || *e || r < 1000)
                    rc = xlock_pg__fail(XLOCK_EINVAL, NULL,
                                        "xlock_release_ms=%s of %s is not an integer of at least 1000 "
                                        "(milliseconds) [XL-PG-11]",
                                        v, ns->shown);
                ns->release_ms = r;
            } else {
                rc = xlock_pg__fail(XLOCK_EINVAL, NULL,
                                    "unknown parameter %.*s in %s: xlock knows xlock_namespace and "
                                    "xlock_release_ms [XL-PG-1]",
                                    (int)klen, p, ns->shown);
            }
            free(v);
        } else if (plen > 0) {
            kept[k++] = nkept++ ? '&' : '?';
            memcpy(kept + k, p, plen);
            k += plen;
        }
        p = p[plen] ? p + plen + 1 : NULL;
    }
    kept[k] = '\0';
    ns->conninfo = kept;
    if (rc == 0 && ns->label == NULL)
        ns->label = dup_n(XLOCK_PG_DEFAULT_LABEL, strlen(XLOCK_PG_DEFAULT_LABEL));
    if (rc == 0) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(kept, &err);
        if (opts == NULL) {
            char *nl = err ? strchr(err, '\n') : NULL;
            if (nl)
                *nl = '\0';
            /* libpq quotes the URI, password and all: show ours instead [XL-PG-14] */
            const char *quoted = err ? strstr(err, kept) : NULL;
            rc = xlock_pg__fail(XLOCK_EINVAL, NULL,
                                "libpq rejects the namespace URI %s: %.*s%s [XL-PG-1]", ns->shown,
                                (int)(quoted ? quoted - err : (err ? (long)strlen(err) : 0)),
                                err ? err : "out of memory", quoted ? "(the URI)" : "");
        } else {
            for (PQconninfoOption *o = opts; o->keyword; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
                    ns->password = dup_n(o->val, strlen(o->val));
            PQconninfoFree(opts);
        }
        if (err)
            PQfreemem(err);
    }
    if (rc != 0)
        xlock_pg__ns_free(ns);
    return rc;
}

/* "server HOST:PORT, database DB, user USER" of the object's session (or of its URI) [XL-PG-15]. */
void xlock_pg__server(const xpg_obj *o, char *buf, size_t size)
{
    const char *host = o->conn ? PQhost(o->conn) : NULL, *port = o->conn ? PQport(o->conn) : NULL;
    const char *db = o->conn ? PQdb(o->conn) : NULL, *user = o->conn ? PQuser(o->conn) : NULL;
    snprintf(buf, size, "server %s:%s, database %s, user %s", host && *host ? host : "(default)",
             port && *port ? port : "(default)", db && *db ? db : "(default)",
             user && *user ? user : "(default)");
}
