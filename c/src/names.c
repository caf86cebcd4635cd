/* Names, the file-name encoding and semaphore names: pure functions [XL-SEM-6]. */
#include "internal.h"
#include "sha256.h"

#include <errno.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
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
        return xlock__fail(
            XLOCK_EINVALNAME, 0,
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
            return xlock__fail(
                XLOCK_EINVALNAME, 0,
                "invalid name '%s': it contains the control character U+%04X at byte %zu; "
                "control characters U+0000-U+001F and U+007F-U+009F are not allowed "
                "[XL-NAME-2]",
                quote(q, sizeof q, name, len), n == 1 ? (unsigned)s[i] : (unsigned)s[i + 1], i);
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

/* ---- the files of a name [XL-ENC-3]: built here and nowhere else ---- */

static void with_suffix(char *out, const char *enc, const char *suffix)
{
    size_t n = strnlen(enc, XL_ENC_MAX), s = strlen(suffix);
    memcpy(out, enc, n);
    memcpy(out + n, suffix, s + 1);
}

void xlock__lock_fname(char *out, const char *enc)
{
    with_suffix(out, enc, ".lock");
}

void xlock__capacity_fname(char *out, const char *enc)
{
    with_suffix(out, enc, ".sem");
}

void xlock__slot_fname(char *out, const char *enc, long slot)
{
    /* enc is at most 240 bytes and slot < 1000, so this fits NAME_MAX [XL-ENC-5]. Formatted by
     * hand, not by snprintf: it runs for every slot a semaphore tries, on the hot path. */
    size_t n = strnlen(enc, XL_ENC_MAX);
    unsigned v = (unsigned)(slot % 1000);
    memcpy(out, enc, n);
    out[n++] = '.';
    if (v >= 100)
        out[n++] = (char)('0' + v / 100);
    if (v >= 10)
        out[n++] = (char)('0' + v / 10 % 10);
    out[n++] = (char)('0' + v % 10);
    memcpy(out + n, ".slot", 6);
}

void xlock__random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[16];
    size_t need = (n + 1) / 2, got = 0;
    if (need > sizeof bytes)
        need = sizeof bytes;
    while (got < need) { /* getrandom(2) never blocks once the pool is initialised */
        ssize_t r = getrandom(bytes + got, need - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else if (r < 0 && errno != EINTR) {
            /* no getrandom (seccomp, old kernel): a clock and pid mix, still never waited on */
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            unsigned long long x = (unsigned long long)t.tv_nsec * 0x9e3779b97f4a7c15ULL ^
                                   (unsigned long long)getpid() << 32 ^ (unsigned long long)t.tv_sec;
            for (; got < need; got++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
                bytes[got] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < n && i / 2 < sizeof bytes; i++)
        out[i] = hex[(bytes[i / 2] >> (i % 2 ? 0 : 4)) & 15];
}

/* prefix || "." || r || ".tmp" with r of n random hex digits */
static void tmp_name(char *out, const char *prefix, size_t n)
{
    size_t p = strlen(prefix);
    memcpy(out, prefix, p);
    out[p++] = '.';
    xlock__random_hex(out + p, n);
    memcpy(out + p + n, ".tmp", 5);
}

void xlock__capacity_tmp_fname(char *out, const char *enc)
{
    char prefix[XL_ENC_MAX + 1];
    with_suffix(prefix, enc, "");
    tmp_name(out, prefix, 8); /* at most 240 + 13 = 253 bytes [XL-ENC-5] */
}

void xlock__bell_tmp_fname(char *out)
{
    tmp_name(out, XL_BELL_FILE, 8);
}

void xlock__psem_fname(char *out, const char *semname)
{
    memcpy(out, "sem.", 4);
    memcpy(out + 4, semname + 1, strlen(semname)); /* without the leading '/', with the NUL */
}

void xlock__psem_tmp_fname(char *out, const char *semname)
{
    char prefix[XLOCK_SEM_NAME_SIZE + 8];
    xlock__psem_fname(prefix, semname);
    tmp_name(out, prefix, 8); /* r as in [XL-ENC-3, XL-PSEM-2] */
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

unsigned xlock__bell_word(int kind, const char *name, size_t len)
{
    /* input = "xlock/1" 0 "bell" 0 kind 0 UTF-8(name) [XL-SEM-7] */
    unsigned char input[8 + 5 + 2 + XLOCK_NAME_MAX];
    memcpy(input, "xlock/1\0bell\0", 13);
    input[13] = (unsigned char)kind;
    input[14] = 0;
    memcpy(input + 15, name, len);
    unsigned char digest[32];
    xlock__sha256(digest, input, 15 + len);
    unsigned long v = (unsigned long)digest[0] << 24 | (unsigned long)digest[1] << 16 |
                      (unsigned long)digest[2] << 8 | digest[3];
    return (unsigned)(v % XLOCK_BELL_WORDS);
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

/* One of the file names of [XL-ENC-3] (kind 'l' lock, 'c' capacity, 's' slot). */
static int file_name(char *buf, size_t size, const char *name, size_t len, int kind, long slot)
{
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    char enc[XL_ENC_MAX + 1], out[XLOCK_FILE_NAME_SIZE];
    xlock__enc(enc, name, len);
    if (kind == 'l')
        xlock__lock_fname(out, enc);
    else if (kind == 'c')
        xlock__capacity_fname(out, enc);
    else
        xlock__slot_fname(out, enc, slot);
    return deliver(buf, size, out, strlen(out));
}

int xlock_lock_file_name(char *buf, size_t size, const char *name, size_t len)
{
    return file_name(buf, size, name, len, 'l', 0);
}

int xlock_capacity_file_name(char *buf, size_t size, const char *name, size_t len)
{
    return file_name(buf, size, name, len, 'c', 0);
}

int xlock_slot_file_name(char *buf, size_t size, const char *name, size_t len, unsigned int slot)
{
    int rc = xlock__check_name(name, len); /* the name first [XL-NAME-6] */
    if (rc != 0)
        return rc;
    if (slot >= XLOCK_CAPACITY_MAX)
        return xlock__fail(XLOCK_EINVAL, 0, "slot %u is out of range: slots are 0 to 999 [XL-CSEM-1]",
                           slot);
    return file_name(buf, size, name, len, 's', (long)slot);
}

int xlock_bell_word(int kind, const char *name, size_t len)
{
    if (name == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_bell_word: name is NULL");
    int rc = xlock__check_name(name, len);
    if (rc != 0)
        return rc;
    if (kind != XLOCK_KIND_LOCK && kind != XLOCK_KIND_SEMAPHORE)
        return xlock__fail(XLOCK_EINVAL, 0,
                           "bell word kind %d is not 'l' (lock) or 's' (counting semaphore) "
                           "[XL-SEM-7]",
                           kind);
    return (int)xlock__bell_word(kind, name, len);
}

int xlock_semaphore_name(char *buf, size_t size, int kind, unsigned long long dev,
                         unsigned long long ino, const char *name, size_t len)
{
    int rc = xlock__check_name(name, len); /* the name first [XL-NAME-6] */
    if (rc != 0)
        return rc;
    if (kind != XLOCK_KIND_LOCK && kind != XLOCK_KIND_SEMAPHORE && kind != XLOCK_KIND_POSIX_SEMAPHORE)
        return xlock__fail(XLOCK_EINVAL, 0,
                           "semaphore kind %d is not 'p' (or draft 1's 'l', 's') [XL-SEM-2]", kind);
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
