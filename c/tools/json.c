/* A minimal JSON reader and writer for the driver protocol. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errsize;
} parser;

static int fail(parser *p, const char *what)
{
    snprintf(p->err, p->errsize, "%s at byte %zu", what, p->pos);
    return -1;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

size_t json_utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(parser *p, unsigned *out)
{
    if (p->pos + 4 > p->len)
        return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

/* Parses a string at p->pos (at the opening quote) into a new buffer. */
static int parse_string(parser *p, char **out, size_t *outlen)
{
    p->pos++;                                /* opening quote */
    char *buf = malloc(p->len - p->pos + 1); /* the decoded form is never longer */
    if (buf == NULL)
        return fail(p, "out of memory");
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"')
            break;
        if (c < 0x20) {
            free(buf);
            return fail(p, "control character in string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated escape");
        }
        char e = p->s[p->pos++];
        /* The two-character escapes: \" \\ \/ \b \f \n \r \t (RFC 8259 section 7). */
        static const char escape[] = "\"\\/bfnrt", meaning[] = "\"\\/\b\f\n\r\t";
        const char *k = e != '\0' ? strchr(escape, e) : NULL;
        if (k != NULL) {
            buf[n++] = meaning[k - escape];
            continue;
        }
        unsigned cp;
        switch (e) {
        case 'u':
            if (hex4(p, &cp) != 0) {
                free(buf);
                return -1;
            }
            /* A high surrogate followed by \u low surrogate is one code point; a lone surrogate
             * is kept as its 3-byte form, which is not valid UTF-8 (the library rejects it). */
            if (cp >= 0xd800 && cp <= 0xdbff && p->pos + 6 <= p->len && p->s[p->pos] == '\\' &&
                p->s[p->pos + 1] == 'u') {
                size_t save = p->pos;
                unsigned lo;
                p->pos += 2;
                if (hex4(p, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else
                    p->pos = save;
            }
            n += json_utf8_put(buf + n, cp);
            break;
        default:
            free(buf);
            return fail(p, "bad escape");
        }
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

static int skip_value(parser *p, int depth);

static int skip_container(parser *p, char close, int depth)
{
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (close == '}') {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected a key");
            char *k;
            size_t kl;
            if (parse_string(p, &k, &kl) != 0)
                return -1;
            free(k);
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        if (skip_value(p, depth + 1) != 0)
            return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return fail(p, "expected ',' or the end of a container");
    }
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->pos + n > p->len || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "bad literal");
    p->pos += n;
    return 0;
}

/* Parses a number; sets *is_int and the magnitude/sign if it is an integer. */
static int parse_number(parser *p, jfield *f)
{
    size_t start = p->pos;
    if (p->s[p->pos] == '-') {
        f->negative = 1;
        p->pos++;
    }
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return fail(p, "bad number");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->len && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return fail(p, "leading zero");
    unsigned long long v = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = (unsigned)(p->s[p->pos++] - '0');
        if (v > (~0ULL - d) / 10)
            f->overflow = 1;
        v = v * 10 + d;
    }
    f->magnitude = v;
    f->type = J_INT;
    int fraction = 0;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        fraction = 1;
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "bad fraction");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        fraction = 1;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "bad exponent");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (fraction)
        f->type = J_OTHER; /* not an integer */
    size_t n = p->pos - start;
    if (n > 60)
        snprintf(f->text, sizeof f->text, "%.57s...", p->s + start);
    else
        snprintf(f->text, sizeof f->text, "%.*s", (int)n, p->s + start);
    return 0;
}

static int parse_value(parser *p, jfield *f, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "expected a value");
    char c = p->s[p->pos];
    if (c == '"') {
        f->type = J_STRING;
        return parse_string(p, &f->str, &f->len);
    }
    if (c == '{' || c == '[') {
        f->type = J_OTHER;
        if (depth > 32)
            return fail(p, "nested too deeply");
        return skip_container(p, c == '{' ? '}' : ']', depth);
    }
    if (c == 't') {
        f->type = J_BOOL;
        f->boolean = 1;
        return literal(p, "true");
    }
    if (c == 'f') {
        f->type = J_BOOL;
        return literal(p, "false");
    }
    if (c == 'n') {
        f->type = J_NULL;
        return literal(p, "null");
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p, f);
    return fail(p, "unexpected character");
}

static int skip_value(parser *p, int depth)
{
    jfield f;
    memset(&f, 0, sizeof f);
    int rc = parse_value(p, &f, depth);
    free(f.str);
    return rc;
}

int json_parse_object(jobject *out, const char *text, size_t len, char *err, size_t errsize)
{
    parser p = {text, len, 0, err, errsize};
    out->fields = NULL;
    out->n = 0;
    size_t cap = 0;
    skip_ws(&p);
    if (p.pos >= p.len || p.s[p.pos] != '{')
        return fail(&p, "expected a JSON object");
    p.pos++;
    skip_ws(&p);
    if (p.pos < p.len && p.s[p.pos] == '}') {
        p.pos++;
    } else {
        for (;;) {
            skip_ws(&p);
            if (p.pos >= p.len || p.s[p.pos] != '"') {
                json_free(out);
                return fail(&p, "expected a key");
            }
            if (out->n == cap) {
                cap = cap ? cap * 2 : 8;
                jfield *nf = realloc(out->fields, cap * sizeof *nf);
                if (nf == NULL) {
                    json_free(out);
                    return fail(&p, "out of memory");
                }
                out->fields = nf;
            }
            jfield *f = &out->fields[out->n];
            memset(f, 0, sizeof *f);
            size_t kl;
            if (parse_string(&p, &f->key, &kl) != 0) {
                json_free(out);
                return -1;
            }
            out->n++;
            skip_ws(&p);
            if (p.pos >= p.len || p.s[p.pos] != ':') {
                json_free(out);
                return fail(&p, "expected ':'");
            }
            p.pos++;
            if (parse_value(&p, f, 1) != 0) {
                json_free(out);
                return -1;
            }
            skip_ws(&p);
            if (p.pos < p.len && p.s[p.pos] == ',') {
                p.pos++;
                continue;
            }
            if (p.pos < p.len && p.s[p.pos] == '}') {
                p.pos++;
                break;
            }
            json_free(out);
            return fail(&p, "expected ',' or '}'");
        }
    }
    skip_ws(&p);
    if (p.pos != p.len) {
        json_free(out);
        return fail(&p, "trailing characters after the object");
    }
    return 0;
}

void json_free(jobject *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->fields[i].key);
        free(o->fields[i].str);
    }
    free(o->fields);
    o->fields = NULL;
    o->n = 0;
}

const jfield *json_get(const jobject *o, const char *key)
{
    /* The last occurrence wins, as in most parsers. */
    for (size_t i = o->n; i-- > 0;)
        if (strcmp(o->fields[i].key, key) == 0)
            return &o->fields[i];
    return NULL;
}

/* ---- writer ---- */

static void put(jwriter *w, const char *s, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (w->len + n + 1 > cap)
            cap *= 2;
        char *nb = realloc(w->buf, cap);
        if (nb == NULL)
            abort();
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void comma(jwriter *w)
{
    if (w->need_comma)
        put(w, ",", 1);
    w->need_comma = 1;
}

void jw_init(jwriter *w)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->need_comma = 0;
    put(w, "", 0);
}

void jw_free(jwriter *w)
{
    free(w->buf);
    w->buf = NULL;
}

void jw_open(jwriter *w)
{
    put(w, "{", 1);
    w->need_comma = 0;
}

void jw_close(jwriter *w)
{
    put(w, "}", 1);
    w->need_comma = 1;
}

/* Length of a well-formed UTF-8 sequence at s, 0 if ill-formed. */
static size_t utf8_ok(const unsigned char *s, size_t left)
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
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else
        return 0;
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

static void put_string(jwriter *w, const char *s, size_t len)
{
    put(w, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(w, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(w, esc, 6);
            i++;
        } else if (c < 0x80) {
            put(w, (const char *)&u[i], 1);
            i++;
        } else {
            size_t n = utf8_ok(u + i, len - i);
            if (n == 0) {
                put(w, "\\ufffd", 6);
                i++;
            } else {
                put(w, (const char *)&u[i], n);
                i += n;
            }
        }
    }
    put(w, "\"", 1);
}

void jw_string(jwriter *w, const char *s, size_t len)
{
    comma(w);
    put_string(w, s, len);
}

void jw_key(jwriter *w, const char *key)
{
    comma(w);
    put_string(w, key, strlen(key));
    put(w, ":", 1);
    w->need_comma = 0;
}

void jw_cstring(jwriter *w, const char *s)
{
    if (s == NULL)
        jw_null(w);
    else
        jw_string(w, s, strlen(s));
}

void jw_int(jwriter *w, long long v)
{
    char b[32];
    comma(w);
    put(w, b, (size_t)snprintf(b, sizeof b, "%lld", v));
}

void jw_uint(jwriter *w, unsigned long long v)
{
    char b[32];
    comma(w);
    put(w, b, (size_t)snprintf(b, sizeof b, "%llu", v));
}

void jw_bool(jwriter *w, int v)
{
    comma(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(jwriter *w)
{
    comma(w);
    put(w, "null", 4);
}

void jw_value_raw(jwriter *w, const char *s, size_t len)
{
    comma(w);
    put(w, s, len);
}

void jw_append(jwriter *w, const char *s, size_t len)
{
    put(w, s, len);
}
