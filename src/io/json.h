/* A strict JSON reader (RFC 8259: one value, nothing but white space
 * around it, no duplicate keys, no NaN, no trailing commas, no control
 * characters in strings, valid UTF-8 escapes) into a small tree, and a text
 * buffer that writes JSON strings. Private to the library; the safetensors
 * and npz readers parse untrusted headers with it, so every limit is
 * checked: nesting depth, sizes, and the input length. */
#ifndef CLIPNN_IO_JSON_H
#define CLIPNN_IO_JSON_H

#include "base/base.h"

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } clipnn_json_type;

typedef struct clipnn_json clipnn_json;
struct clipnn_json {
    clipnn_json_type type;
    char *text;         /* a string's decoded bytes (NUL-terminated, no NUL inside), a number's literal */
    size_t len;         /* of text */
    size_t n;           /* members of an array or object */
    clipnn_json *items; /* [n] */
    char **keys;        /* [n] for an object, decoded */
};

#define CLIPNN_JSON_MAX_DEPTH 64

/* Parses text[len] (not NUL-terminated) as one JSON value; a message names
 * `name` and the byte offset of the first error (FORMAT). */
clipnn_status clipnn_json_parse(const char *name, const char *text, size_t len, clipnn_json **out);
void clipnn_json_free(clipnn_json *v);
/* The member of an object by key, NULL when absent (or v is not an object). */
const clipnn_json *clipnn_json_get(const clipnn_json *v, const char *key);
/* A number that is a non-negative integer literal below 2^64: 0 and *out; else -1. */
int clipnn_json_u64(const clipnn_json *v, uint64_t *out);

/* A growing text buffer. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
} clipnn_text;

void clipnn_text_put(clipnn_text *t, const char *s, size_t n);
void clipnn_text_printf(clipnn_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal, quotes included. */
void clipnn_text_json_string(clipnn_text *t, const char *s);
void clipnn_text_free(clipnn_text *t);

#endif
