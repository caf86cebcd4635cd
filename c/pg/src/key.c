/* The pure mapping of names to advisory keys [XL-PG-3]. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* key(kind, label, name, extra) of XL-PG-3; the arguments are already checked. */
long long xlock_pg__key(int kind, const char *label, const char *name, size_t len, long extra)
{
    size_t ll = strlen(label);
    char ext[24] = "";
    int el = (kind == 's' || kind == 'c') ? snprintf(ext, sizeof ext, "%c%ld", 0, extra) : 0;
    size_t total = sizeof "xlock/1" + sizeof "pg" + 2 + ll + 1 + len + (size_t)el;
    unsigned char *in = malloc(total), digest[32];
    if (in == NULL)
        abort();
    size_t at = 0;
    memcpy(in + at, "xlock/1", sizeof "xlock/1"), at += sizeof "xlock/1"; /* with its 0x00 */
    memcpy(in + at, "pg", sizeof "pg"), at += sizeof "pg";
    in[at++] = (unsigned char)kind;
    in[at++] = 0;
    memcpy(in + at, label, ll), at += ll;
    in[at++] = 0;
    memcpy(in + at, name, len), at += len;
    memcpy(in + at, ext, (size_t)el), at += (size_t)el;
    xlock_sha256(digest, in, at);
    free(in);
    unsigned long long u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | digest[i];
    return (long long)u; /* two's complement [XL-PG-3] */
}

int xlock_pg_key(long long *key, int kind, const char *label, size_t label_len, const char *name,
                 size_t name_len, long extra)
{
    int rc = xlock_validate_name(name, name_len);
    if (rc != 0)
        return xlock_pg__fail(rc, NULL, "%s", xlock_last_message());
    if (key == NULL || label == NULL)
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "xlock_pg_key: key and label must not be NULL");
    if (xlock_validate_name(label, label_len) != 0 || strlen(label) != label_len)
        return xlock_pg__fail(XLOCK_EINVAL, NULL,
                              "the label breaks the rules of names (§3): %s [XL-PG-2]",
                              xlock_last_message());
    if (kind != 'l' && kind != 's' && kind != 'c')
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "key kind %d is not 'l', 's' or 'c' [XL-PG-3]", kind);
    if ((kind == 's' && (extra < 0 || extra > 999)) || (kind == 'c' && (extra < 1 || extra > 1000)))
        return xlock_pg__fail(XLOCK_EINVAL, NULL, "extra %ld is out of range for kind '%c' [XL-PG-3]",
                              extra, kind);
    *key = xlock_pg__key(kind, label, name, name_len, extra);
    return 0;
}
