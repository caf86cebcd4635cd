/* A minimal JSON reader and writer for the driver protocol (conformance/PROTOCOL.md): one flat
 * object per line in, objects with at most one nested level out. Not part of libxlock. */
#ifndef XLOCK_TOOLS_JSON_H
#define XLOCK_TOOLS_JSON_H

#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_INT, J_STRING, J_OTHER } jtype;

typedef struct jfield {
    char *key; /* NUL-terminated (keys with NUL bytes are cut) */
    jtype type;
    int boolean;                  /* J_BOOL */
    int negative;                 /* J_INT: sign */
    int overflow;                 /* J_INT: magnitude does not fit 64 bits */
    unsigned long long magnitude; /* J_INT */
    char text[64];                /* J_INT: the number as written (cut to 60 characters), for messages */
    char *str;  /* J_STRING: UTF-8 bytes (lone surrogates as their 3-byte form), NUL-terminated */
    size_t len; /* J_STRING: byte length, may contain NUL bytes */
} jfield;

typedef struct jobject {
    jfield *fields;
    size_t n;
} jobject;

/* Parses one JSON object (surrounding whitespace allowed). Nested values are accepted and typed
 * J_OTHER. Returns 0, or -1 with a reason in err. */
int json_parse_object(jobject *out, const char *text, size_t len, char *err, size_t errsize);
void json_free(jobject *o);
/* The field named key, or NULL. */
const jfield *json_get(const jobject *o, const char *key);

/* The writer: a growing buffer. Commas between members are inserted automatically. */
typedef struct jwriter {
    char *buf;
    size_t len, cap;
    int need_comma;
} jwriter;

void jw_init(jwriter *w);
void jw_free(jwriter *w);
void jw_open(jwriter *w);                              /* { */
void jw_close(jwriter *w);                             /* } */
void jw_key(jwriter *w, const char *key);              /* "key": ; the value call follows */
void jw_string(jwriter *w, const char *s, size_t len); /* invalid UTF-8 becomes U+FFFD */
void jw_cstring(jwriter *w, const char *s);            /* NULL writes null */
void jw_int(jwriter *w, long long v);
void jw_uint(jwriter *w, unsigned long long v);
void jw_bool(jwriter *w, int v);
void jw_null(jwriter *w);
/* Appends already-encoded JSON text as a value (with the comma rule). */
void jw_value_raw(jwriter *w, const char *s, size_t len);
/* Appends text verbatim, no comma handling. */
void jw_append(jwriter *w, const char *s, size_t len);

/* Encodes a code point as UTF-8 (surrogates too, as 3 bytes); returns the byte count. */
size_t json_utf8_put(char *out, unsigned cp);

#endif
