/* Strict JSON reading and JSON string writing (json.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

typedef struct {
    const char *name;
    const char *p, *start, *end;
    int depth;
} json_reader;

static clipnn_status bad(const json_reader *r, const char *what) {
    return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", r->name, (size_t)(r->p - r->start), what);
}

static void skip_ws(json_reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static clipnn_status parse_value(json_reader *r, clipnn_json *v);

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
               o[2] = (char)(0x80 | (cp & 0x3f)), 3;
    o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* \uXXXX at r->p (after the backslash and u), with a surrogate pair. */
static clipnn_status unicode_escape(json_reader *r, char *o, size_t *w) {
    unsigned cp, lo;
    if (r->end - r->p < 4 || hex4(r->p, &cp)) return bad(r, "bad \\u escape");
    r->p += 4;
    if (cp >= 0xdc00 && cp <= 0xdfff) return bad(r, "lone low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' || hex4(r->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return bad(r, "high surrogate without its low half");
        r->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0) return bad(r, "\\u0000 in a string");
    *w += put_utf8(o + *w, cp);
    return CLIPNN_OK;
}

/* A string at r->p (the opening quote); decoded bytes are never longer than
 * the literal, so the literal's length bounds the buffer. */
static clipnn_status parse_string(json_reader *r, char **out, size_t *out_len) {
    const char *q = ++r->p;
    while (q < r->end && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= r->end) return bad(r, "unterminated string");
    char *o = clipnn_alloc((size_t)(q - r->p) + 1);
    if (!o) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for a JSON string", r->name);
    size_t w = 0;
    clipnn_status s = CLIPNN_OK;
    while (!s && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) s = bad(r, "control character in a string");
        else if (c != '\\') o[w++] = *r->p++;
        else {
            char e = *++r->p;
            r->p++;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) o[w++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            else if (e == 'u') s = unicode_escape(r, o, &w);
            else s = bad(r, "bad escape");
        }
    }
    if (s) {
        clipnn_free(o);
        return s;
    }
    r->p++;
    o[w] = 0;
    *out = o;
    *out_len = w;
    return CLIPNN_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static clipnn_status parse_number(json_reader *r, clipnn_json *v) {
    const char *a = r->p, *p = r->p;
    if (p < r->end && *p == '-') p++;
    if (p < r->end && *p == '0') p++;
    else if (p < r->end && is_digit(*p)) while (p < r->end && is_digit(*p)) p++;
    else return bad(r, "bad number");
    if (p < r->end && *p == '.') {
        if (++p >= r->end || !is_digit(*p)) return r->p = p, bad(r, "digits expected after '.'");
        while (p < r->end && is_digit(*p)) p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-')) p++;
        if (p >= r->end || !is_digit(*p)) return r->p = p, bad(r, "digits expected in the exponent");
        while (p < r->end && is_digit(*p)) p++;
    }
    v->type = JSON_NUMBER;
    v->len = (size_t)(p - a);
    v->text = clipnn_alloc(v->len + 1);
    if (!v->text) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", r->name);
    memcpy(v->text, a, v->len);
    v->text[v->len] = 0;
    r->p = p;
    return CLIPNN_OK;
}

static clipnn_status push_item(json_reader *r, clipnn_json *v, size_t *cap) {
    if (v->n < *cap) return CLIPNN_OK;
    size_t c = *cap ? 2 * *cap : 4;
    clipnn_json *items = clipnn_realloc_array(v->items, c, sizeof *items);
    if (!items) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", r->name);
    v->items = items;
    if (v->type == JSON_OBJECT) {
        char **keys = clipnn_realloc_array(v->keys, c, sizeof *keys);
        if (!keys) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", r->name);
        v->keys = keys;
    }
    *cap = c;
    return CLIPNN_OK;
}

/* An object member's key: a string not seen before in this object. */
static clipnn_status parse_key(json_reader *r, clipnn_json *v) {
    skip_ws(r);
    if (r->p >= r->end || *r->p != '"') return bad(r, "a key (string) expected");
    size_t klen;
    clipnn_status s = parse_string(r, &v->keys[v->n], &klen);
    if (s) return s;
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], v->keys[v->n])) {
            clipnn_free(v->keys[v->n]);
            return bad(r, "duplicate key");
        }
    skip_ws(r);
    if (r->p >= r->end || *r->p != ':') {
        clipnn_free(v->keys[v->n]);
        return bad(r, "':' expected");
    }
    r->p++;
    return CLIPNN_OK;
}

/* An array or object at r->p (its bracket). */
static clipnn_status parse_container(json_reader *r, clipnn_json *v, char close) {
    if (++r->depth > CLIPNN_JSON_MAX_DEPTH) return bad(r, "nested too deeply");
    v->type = close == ']' ? JSON_ARRAY : JSON_OBJECT;
    r->p++;
    skip_ws(r);
    size_t cap = 0;
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return CLIPNN_OK;
    }
    for (;;) {
        clipnn_status s = push_item(r, v, &cap);
        if (!s && v->type == JSON_OBJECT) s = parse_key(r, v);
        if (s) return s;
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        s = parse_value(r, &v->items[v->n]);
        v->n++; /* freed with the container even when incomplete */
        if (s) return s;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) break;
        return bad(r, close == ']' ? "',' or ']' expected" : "',' or '}' expected");
    }
    r->p++;
    r->depth--;
    return CLIPNN_OK;
}

static clipnn_status parse_word(json_reader *r, clipnn_json *v, const char *word, clipnn_json_type type) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n)) return bad(r, "unexpected character");
    r->p += n;
    v->type = type;
    return CLIPNN_OK;
}

static clipnn_status parse_value(json_reader *r, clipnn_json *v) {
    skip_ws(r);
    if (r->p >= r->end) return bad(r, "a value expected");
    switch (*r->p) {
    case '{': return parse_container(r, v, '}');
    case '[': return parse_container(r, v, ']');
    case '"': v->type = JSON_STRING; return parse_string(r, &v->text, &v->len);
    case 't': return parse_word(r, v, "true", JSON_TRUE);
    case 'f': return parse_word(r, v, "false", JSON_FALSE);
    case 'n': return parse_word(r, v, "null", JSON_NULL);
    default: return parse_number(r, v);
    }
}

static void free_members(clipnn_json *v) {
    for (size_t i = 0; i < v->n; i++) {
        free_members(&v->items[i]);
        if (v->keys) clipnn_free(v->keys[i]);
    }
    clipnn_free(v->items);
    clipnn_free(v->keys);
    clipnn_free(v->text);
}

void clipnn_json_free(clipnn_json *v) {
    if (!v) return;
    free_members(v);
    clipnn_free(v);
}

clipnn_status clipnn_json_parse(const char *name, const char *text, size_t len, clipnn_json **out) {
    *out = NULL;
    json_reader r = {name, text, text, text + len, 0};
    clipnn_json *v = clipnn_alloc_array(1, sizeof *v);
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", name);
    clipnn_status s = parse_value(&r, v);
    if (!s) {
        skip_ws(&r);
        if (r.p != r.end) s = bad(&r, "text after the value");
    }
    if (s) {
        clipnn_json_free(v);
        return s;
    }
    *out = v;
    return CLIPNN_OK;
}

const clipnn_json *clipnn_json_get(const clipnn_json *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], key)) return &v->items[i];
    return NULL;
}

int clipnn_json_u64(const clipnn_json *v, uint64_t *out) {
    if (!v || v->type != JSON_NUMBER || v->len == 0 || v->len > 20) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (!is_digit(v->text[i])) return -1;
        unsigned d = (unsigned)(v->text[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* ---------------------------------------------------------------- text */

void clipnn_text_put(clipnn_text *t, const char *s, size_t n) {
    if (t->failed) return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = clipnn_realloc_array(t->p, cap, 1);
        if (!p) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

void clipnn_text_printf(clipnn_text *t, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) t->failed = 1;
    else clipnn_text_put(t, buf, (size_t)n);
}

void clipnn_text_json_string(clipnn_text *t, const char *s) {
    clipnn_text_put(t, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        const char *esc = *c == '"' ? "\\\"" : *c == '\\' ? "\\\\" : *c == '\n' ? "\\n" : *c == '\t' ? "\\t" : NULL;
        if (esc) clipnn_text_put(t, esc, 2);
        else if (*c < 0x20) clipnn_text_printf(t, "\\u%04x", *c);
        else clipnn_text_put(t, (const char *)c, 1);
    }
    clipnn_text_put(t, "\"", 1);
}

void clipnn_text_free(clipnn_text *t) {
    clipnn_free(t->p);
    memset(t, 0, sizeof *t);
}
