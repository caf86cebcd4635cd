/* Names, the file-name encoding and semaphore names: pure functions [XL-SEM-6]. */
#include "internal.h"
#include "sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A printable, escaped rendering of a (possibly invalid) name for messages. */
static const char *quote(char *buf, size_t size, const char *name, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
    }
    buf[o] = '\0';
    return buf;
}

/* Length of the well-formed UTF-8 sequence at s (Unicode Table 3-7), 0 if ill-formed. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f; /* U+D800..U+DFFF are surrogates, not scalar values */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

int xlock__check_name(const char *name, size_t len)
{
    char q[400];
    if (name == NULL && len > 0)
        return xlock__fail(XLOCK_EINVAL, 0, "the name is a NULL pointer");
    if (len == 0)
        return xlock__fail(XLOCK_EINVALNAME, 0,
                       "invalid name '': a name must be 1 to 80 UTF-8 bytes long [XL-NAME-1]");
    if (len > XLOCK_NAME_MAX)
        return xlock__fail(XLOCK_EINVALNAME, 0,
                       "invalid name '%s': it is %zu UTF-8 bytes long, the maximum is 80 [XL-NAME-1]",
                       quote(q, sizeof q, name, len), len);
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0)
            return xlock__fail(XLOCK_EINVALNAME, 0,
                           "invalid name '%s': byte %zu is not well-formed UTF-8 of a Unicode "
                           "scalar value (e.g. a lone surrogate) [XL-NAME-3]",
                           quote(q, sizeof q, name, len), i);
        if (s[i] < 0x20 || s[i] == 0x7f || (s[i] == 0xc2 && s[i + 1] <= 0x9f))
            return xlock__fail(XLOCK_EINVALNAME, 0,
                           "invalid name '%s': it contains the control character U+%04X at byte %zu; "
                           "control characters U+0000-U+001F and U+007F-U+009F are not allowed "
                           "[XL-NAME-2]",
                           quote(q, sizeof q, name, len),
                           n == 1 ? (unsigned)s[i] : (unsigned)s[i + 1], i);
        i += n;
    }
    return 0;
}

size_t xlock__enc(char *out, const char *name, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            (c == '.' && i > 0)) {
            out[o++] = (char)c;
        } else if (c >= 'A' && c <= 'Z') {
            out[o++] = '!';
            out[o++] = (char)(c - 'A' + 'a');
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

char *xlock__strndup(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static size_t put_decimal(unsigned char *out, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)tmp[n - 1 - i];
    return n;
}

void xlock__sem_name(char *out, int kind, unsigned long long dev, unsigned long long ino,
                 const char *name, size_t len)
{
    /* input = "xlock/1" 0 kind 0 decimal(dev) 0 decimal(ino) 0 UTF-8(name) [XL-SEM-1] */
    unsigned char input[8 + 2 + 21 + 21 + XLOCK_NAME_MAX];
    size_t n = 0;
    memcpy(input, "xlock/1", 8); /* includes the 0x00 separator */
    n = 8;
    input[n++] = (unsigned char)kind;
    input[n++] = 0;
    n += put_decimal(input + n, dev);
    input[n++] = 0;
    n += put_decimal(input + n, ino);
    input[n++] = 0;
    memcpy(input + n, name, len);
    n += len;
    unsigned char digest[32];
    xlock__sha256(digest, input, n);
    /* b32: RFC 4648 lowercase, no padding; the first 25 characters = the first 125 bits
     * [XL-SEM-3]. */
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    out[0] = '/';
    out[1] = 'x';
    out[2] = 'l';
    out[3] = '1';
    out[4] = (char)kind;
    for (int i = 0; i < 25; i++) {
        int bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)digest[byte] << 8 | digest[byte + 1];
        out[5 + i] = alphabet[(v >> (11 - shift)) & 31];
    }
    out[30] = '\0';
}

/* Copies a computed string into the caller's buffer per the contract in xlock.h. */
static int deliver(char *buf, size_t size, const char *s, size_t n)
{
    if (buf == NULL && size == 0)
        return (int)n;
    if (buf == NULL || size < n + 1)
        return xlock__fail(XLOCK_EINVAL, 0, "the buffer has %zu bytes, %zu are needed", size, n + 1);
    memcpy(buf, s, n + 1);
    return (int)n;
}

int xlock_validate_name(const char *name, size_t len)
{
    return xlock__check_name(name, len);
}

static int file_name(char *buf, size_t size, const char *name, size_t len, const char *suffix)
{
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    char out[XLOCK_FILE_NAME_SIZE];
    size_t n = xlock__enc(out, name, len);
    size_t s = strlen(suffix);
    memcpy(out + n, suffix, s + 1);
    return deliver(buf, size, out, n + s);
}

int xlock_lock_file_name(char *buf, size_t size, const char *name, size_t len)
{
    return file_name(buf, size, name, len, ".lock");
}

int xlock_capacity_file_name(char *buf, size_t size, const char *name, size_t len)
{
    return file_name(buf, size, name, len, ".sem");
}

int xlock_slot_file_name(char *buf, size_t size, const char *name, size_t len, unsigned int slot)
{
    if (slot >= XLOCK_CAPACITY_MAX)
        return xlock__fail(XLOCK_EINVAL, 0, "slot %u is out of range: slots are 0 to 999 [XL-CSEM-1]",
                       slot);
    char suffix[16];
    snprintf(suffix, sizeof suffix, ".%u.slot", slot);
    return file_name(buf, size, name, len, suffix);
}

int xlock_semaphore_name(char *buf, size_t size, int kind, unsigned long long dev,
                         unsigned long long ino, const char *name, size_t len)
{
    if (kind != XLOCK_KIND_LOCK && kind != XLOCK_KIND_SEMAPHORE &&
        kind != XLOCK_KIND_POSIX_SEMAPHORE)
        return xlock__fail(XLOCK_EINVAL, 0,
                       "semaphore kind %d is not one of 'l', 's', 'p' [XL-SEM-2]", kind);
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    char out[XLOCK_SEM_NAME_SIZE];
    xlock__sem_name(out, kind, dev, ino, name, len);
    return deliver(buf, size, out, 30);
}

int xlock_default_namespace(char *buf, size_t size)
{
    char out[40];
    int n = snprintf(out, sizeof out, "/tmp/xlock-%lu", (unsigned long)geteuid());
    return deliver(buf, size, out, (size_t)n);
}

int xlock_sha256(unsigned char digest[32], const void *data, size_t len)
{
    if (digest == NULL || (data == NULL && len > 0))
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_sha256: NULL digest or data");
    xlock__sha256(digest, data, len);
    return 0;
}
