/* safetensors files: u64 little-endian header length N, N bytes of JSON
 * header ({"__metadata__": {string: string}, NAME: {"dtype", "shape",
 * "data_offsets": [begin, end]}, ...}, offsets into the bytes after the
 * header), then the tensor bytes, little-endian. Written with F32 tensors
 * in the order given and the header padded with spaces to a multiple of 8;
 * read with F32 or F64 tensors of 1 or 2 dimensions, every size and offset
 * checked against the file before it is used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/bytes_le.h"
#include "export/export.h"
#include "io/json.h"

static clipnn_status slurp(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    clipnn_status s = CLIPNN_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size >= SIZE_MAX / 2) s = clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: too large", path);
    else s = clipnn_check_input_size(path, (uint64_t)st.st_size);
    size_t n = s ? 0 : (size_t)st.st_size;
    unsigned char *b = s ? NULL : clipnn_alloc(n + 1);
    if (!s && !b) s = clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, n);
    if (!s && fread(b, 1, n, f) != n) s = clipnn_fail(CLIPNN_ERR_IO, "%s: read error", path);
    fclose(f);
    if (s) {
        clipnn_free(b);
        return s;
    }
    *buf = b;
    *len = n;
    return CLIPNN_OK;
}

clipnn_status clipnn_tensor_set_read(const char *path, clipnn_tensor_parser parse, clipnn_tensor_set *ts) {
    memset(ts, 0, sizeof *ts);
    ts->owned = 1;
    unsigned char *b;
    size_t len;
    clipnn_status s = slurp(path, &b, &len);
    if (s) return s;
    s = clipnn_data_info_create(&ts->meta);
    if (!s) s = parse(path, b, len, ts);
    clipnn_free(b);
    if (s) clipnn_tensor_set_free(ts);
    return s;
}

/* ---------------------------------------------------------------- write */

/* The header text, padded. */
static clipnn_status header_text(const clipnn_tensor_set *ts, clipnn_text *t) {
    memset(t, 0, sizeof *t);
    clipnn_text_put(t, "{\"__metadata__\":{", 17);
    for (size_t i = 0; i < clipnn_data_info_count(ts->meta); i++) {
        const char *value, *key = clipnn_data_info_entry(ts->meta, i, &value);
        if (i) clipnn_text_put(t, ",", 1);
        clipnn_text_json_string(t, key);
        clipnn_text_put(t, ":", 1);
        clipnn_text_json_string(t, value);
    }
    clipnn_text_put(t, "}", 1);
    uint64_t offset = 0;
    for (size_t i = 0; i < ts->n; i++) {
        const clipnn_tensor *x = &ts->t[i];
        clipnn_text_put(t, ",", 1);
        clipnn_text_json_string(t, x->name);
        clipnn_text_printf(t, ":{\"dtype\":\"F32\",\"shape\":[%zu", x->shape[0]);
        if (x->ndim == 2) clipnn_text_printf(t, ",%zu", x->shape[1]);
        clipnn_text_printf(t, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                           (unsigned long long)(offset + 4 * (uint64_t)x->count));
        offset += 4 * (uint64_t)x->count;
    }
    clipnn_text_put(t, "}", 1);
    while (!t->failed && t->len % 8) clipnn_text_put(t, " ", 1);
    if (t->failed) {
        clipnn_text_free(t);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "safetensors: out of memory for the header");
    }
    return CLIPNN_OK;
}

typedef struct {
    const clipnn_tensor_set *ts;
    const clipnn_text *header;
} st_job;

static int fill_safetensors(FILE *f, void *user) {
    const st_job *job = user;
    unsigned char len[8];
    le_put_u64(len, job->header->len);
    errno = 0;
    if (fwrite(len, 1, 8, f) != 8 || fwrite(job->header->p, 1, job->header->len, f) != job->header->len)
        return errno ? errno : EIO;
    for (size_t i = 0; i < job->ts->n; i++) {
        int err = clipnn_fwrite_f32s(f, job->ts->t[i].data, job->ts->t[i].count);
        if (err) return err;
    }
    return 0;
}

clipnn_status clipnn_safetensors_write(const char *path, const clipnn_tensor_set *ts) {
    clipnn_text header;
    clipnn_status s = header_text(ts, &header);
    if (s) return s;
    st_job job = {ts, &header};
    s = clipnn_write_atomic(path, "safetensors file", fill_safetensors, &job);
    clipnn_text_free(&header);
    return s;
}

/* ----------------------------------------------------------------- read */

static clipnn_status read_metadata(const char *path, const clipnn_json *m, clipnn_data_info *meta) {
    if (m->type != JSON_OBJECT) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: __metadata__ is not an object", path);
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i].type != JSON_STRING)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: metadata %s is not a string", path, m->keys[i]);
        clipnn_status s = clipnn_data_info_set(meta, m->keys[i], m->items[i].text);
        if (s) {
            char why[256];
            snprintf(why, sizeof why, "%s", clipnn_last_error());
            /* a bad entry is the file's fault, whatever the setter calls it */
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: metadata %s: %s", path, m->keys[i], why);
        }
    }
    return CLIPNN_OK;
}

/* dtype, shape and offsets of one tensor entry, checked against the data
 * part of len bytes; *esize the element size. */
static clipnn_status tensor_layout(const char *path, const char *name, const clipnn_json *e, uint64_t len,
                                   size_t *shape, size_t *ndim, uint64_t *begin, unsigned *esize) {
    const clipnn_json *dt = clipnn_json_get(e, "dtype"), *sh = clipnn_json_get(e, "shape"),
                      *off = clipnn_json_get(e, "data_offsets");
    if (!dt || dt->type != JSON_STRING || !sh || sh->type != JSON_ARRAY || !off || off->type != JSON_ARRAY ||
        off->n != 2)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: tensor %s lacks a dtype, shape or data_offsets", path, name);
    *esize = !strcmp(dt->text, "F32") ? 4 : !strcmp(dt->text, "F64") ? 8 : 0;
    if (!*esize)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: tensor %s has dtype %.16s; F32 and F64 are read", path, name,
                           dt->text);
    if (sh->n < 1 || sh->n > CLIPNN_TENSOR_MAX_DIMS)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: tensor %s has %zu dimensions; 1 or 2 are read", path, name,
                           sh->n);
    uint64_t count = 1, b, end, d;
    for (size_t i = 0; i < sh->n; i++) {
        if (clipnn_json_u64(&sh->items[i], &d) || d > ((uint64_t)1 << 40) || (d && count > UINT64_MAX / 16 / d))
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: tensor %s has an impossible shape", path, name);
        count *= d;
        shape[i] = (size_t)d;
    }
    *ndim = sh->n;
    if (clipnn_json_u64(&off->items[0], &b) || clipnn_json_u64(&off->items[1], &end) || b > end || end > len)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: tensor %s has data offsets outside the file's %llu data bytes", path,
                           name, (unsigned long long)len);
    if (end - b != count * *esize)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: tensor %s: %llu bytes for %llu elements of %u bytes", path, name,
                           (unsigned long long)(end - b), (unsigned long long)count, *esize);
    *begin = b;
    return CLIPNN_OK;
}

static clipnn_status read_tensor(const char *path, const char *name, const clipnn_json *e, const unsigned char *data,
                                 uint64_t len, clipnn_tensor_set *ts) {
    if (e->type != JSON_OBJECT) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: entry %s is not an object", path, name);
    size_t shape[CLIPNN_TENSOR_MAX_DIMS] = {0}, ndim = 0;
    uint64_t begin = 0;
    unsigned esize = 0;
    clipnn_status s = tensor_layout(path, name, e, len, shape, &ndim, &begin, &esize);
    if (s) return s;
    size_t count = ndim == 2 ? shape[0] * shape[1] : shape[0]; /* bounded by the file size */
    float *v = clipnn_alloc_array(count ? count : 1, sizeof *v);
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for tensor %s", path, name);
    const unsigned char *p = data + begin;
    if (esize == 4) le_get_f32s(v, p, count);
    for (size_t i = 0; esize == 8 && i < count; i++) {
        uint64_t bits = le_get_u64(p + 8 * i);
        double x;
        memcpy(&x, &bits, 8);
        v[i] = (float)x;
    }
    s = clipnn_tensor_set_add(ts, name, shape, ndim, v);
    if (s) clipnn_free(v);
    return s;
}

static clipnn_status read_header(const char *path, const clipnn_json *h, const unsigned char *data, uint64_t len,
                                 clipnn_tensor_set *ts) {
    if (h->type != JSON_OBJECT) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the header is not a JSON object", path);
    clipnn_status s = CLIPNN_OK;
    for (size_t i = 0; !s && i < h->n; i++)
        s = !strcmp(h->keys[i], "__metadata__") ? read_metadata(path, &h->items[i], ts->meta)
                                                : read_tensor(path, h->keys[i], &h->items[i], data, len, ts);
    return s;
}

static clipnn_status parse_safetensors(const char *path, const unsigned char *b, size_t len, clipnn_tensor_set *ts) {
    uint64_t n = len >= 8 ? le_get_u64(b) : 0;
    if (len < 8)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: %zu bytes, shorter than a safetensors header", path, len);
    if (n > CLIPNN_HEADER_MAX)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: a header of %llu bytes; not a safetensors file?", path,
                           (unsigned long long)n);
    if (n > len - 8)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the header needs %llu bytes, %zu follow", path,
                           (unsigned long long)n, len - 8);
    clipnn_json *h = NULL;
    clipnn_status s = clipnn_json_parse(path, (const char *)b + 8, (size_t)n, &h);
    if (!s) s = read_header(path, h, b + 8 + n, len - 8 - n, ts);
    clipnn_json_free(h);
    return s;
}

clipnn_status clipnn_safetensors_read(const char *path, clipnn_tensor_set *ts) {
    return clipnn_tensor_set_read(path, parse_safetensors, ts);
}
