/* What a model's inputs were: an ordered list of (key, value) text entries,
 * the "data.*" ones read into typed fields when they are set (so a bad value
 * is refused at once, naming the key), the others (training options, final
 * figures) kept as they come. The list is the one representation every
 * carrier uses: the checkpoint's DATA section, safetensors metadata, the
 * npz JSON entry; so a model moved through any of them comes back the same.
 *
 * DATA payload (little-endian): u32 count, then per entry u32 key length,
 * key bytes, u32 value length, value bytes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bytes_le.h"
#include "data/data.h"

struct clipnn_data_info {
    size_t n, cap;
    char **keys, **values;
    /* typed views of the data.* entries */
    const char *spec;       /* into values[] */
    clipnn_data_options opts;
    size_t dim;
    double *first, *second; /* [dim]: mean and std, or min and max */
    size_t n_classes;
    char *class_block;      /* names, '\0'-separated */
    const char **class_names;
};

/* Longest key or value the readers take (a value holds two lists of
 * per-feature numbers: 2^30 bytes is far beyond any real one). */
#define MAX_TEXT ((size_t)1 << 30)

clipnn_status clipnn_data_info_create(clipnn_data_info **out) {
    if (!out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "data info: NULL argument");
    *out = clipnn_alloc_array(1, sizeof **out);
    if (!*out) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory");
    (*out)->opts = clipnn_data_options_default();
    (*out)->opts.scaling = CLIPNN_SCALE_NONE;
    return CLIPNN_OK;
}

void clipnn_data_info_free(clipnn_data_info *info) {
    if (!info) return;
    for (size_t i = 0; i < info->n; i++) {
        clipnn_free(info->keys[i]);
        clipnn_free(info->values[i]);
    }
    clipnn_free(info->keys);
    clipnn_free(info->values);
    clipnn_free(info->first);
    clipnn_free(info->class_block);
    clipnn_free(info->class_names);
    clipnn_free(info);
}

static char *dup_text(const char *s) {
    size_t len = strlen(s);
    char *d = clipnn_alloc(len + 1);
    if (d) memcpy(d, s, len + 1);
    return d;
}

/* "a,b,c" into dim doubles (finite). */
static clipnn_status parse_numbers(const char *key, const char *text, size_t dim, double **out) {
    double *v = clipnn_alloc_array(dim ? dim : 1, sizeof *v);
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory for %s", key);
    const char *p = text;
    for (size_t j = 0; j < dim; j++) {
        char *end;
        errno = 0;
        v[j] = strtod(p, &end);
        int last = j + 1 == dim;
        if (end == p || errno || !isfinite(v[j]) || (last ? *end != 0 : *end != ',')) {
            clipnn_free(v);
            return clipnn_fail(CLIPNN_ERR_FORMAT, "data info: %s: want %zu finite numbers separated by commas", key,
                               dim);
        }
        p = end + !last;
    }
    *out = v;
    return CLIPNN_OK;
}

/* One of the two per-feature lists; both share one block [2 * dim]. */
static clipnn_status set_stats(clipnn_data_info *info, const char *key, const char *value, int second) {
    if (info->dim == 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "data info: %s before data.dim", key);
    double *v = NULL;
    clipnn_status s = parse_numbers(key, value, info->dim, &v);
    if (s) return s;
    if (!info->first) {
        info->first = clipnn_alloc_array(2 * info->dim, sizeof *info->first);
        if (!info->first) {
            clipnn_free(v);
            return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory for %s", key);
        }
        info->second = info->first + info->dim;
    }
    memcpy(second ? info->second : info->first, v, info->dim * sizeof *v);
    clipnn_free(v);
    return CLIPNN_OK;
}

/* data.classes: names separated by newlines, as many as data.n_classes
 * when that was given. */
static clipnn_status set_classes(clipnn_data_info *info, const char *value) {
    size_t n = 1, len = strlen(value);
    for (const char *c = value; *c; c++) n += *c == '\n';
    char *block = clipnn_alloc(len + 1);
    const char **names = clipnn_alloc_array(n, sizeof *names);
    if (!block || !names) {
        clipnn_free(block);
        clipnn_free(names);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory for the class names");
    }
    memcpy(block, value, len + 1);
    names[0] = block;
    for (size_t i = 0, k = 1; i < len; i++)
        if (block[i] == '\n') block[i] = 0, names[k++] = block + i + 1;
    clipnn_free(info->class_block);
    clipnn_free(info->class_names);
    info->class_block = block;
    info->class_names = names;
    info->n_classes = n;
    return CLIPNN_OK;
}

static clipnn_status parse_u64(const char *key, const char *value, uint64_t max, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (end == value || *end || errno || value[0] == '-' || v > max)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "data info: %s '%s': want an integer from 0 to %llu", key, value,
                           (unsigned long long)max);
    *out = v;
    return CLIPNN_OK;
}

/* The typed view of a data.* entry; value stays owned by the list. */
static clipnn_status set_typed(clipnn_data_info *info, const char *key, const char *value) {
    uint64_t u = 0;
    clipnn_status s = CLIPNN_OK;
    if (!strcmp(key, "data.spec")) {
        info->spec = value;
    } else if (!strcmp(key, "data.scaling")) {
        s = clipnn_scaling_parse(value, &info->opts.scaling);
        if (!s && info->opts.scaling == CLIPNN_SCALE_AUTO)
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "data info: data.scaling is 'auto'; a record holds the scaling chosen");
    } else if (!strcmp(key, "data.seed")) {
        s = parse_u64(key, value, UINT64_MAX, &info->opts.seed);
    } else if (!strcmp(key, "data.test_fraction")) {
        char *end;
        double f = strtod(value, &end);
        if (end == value || *end || !(f >= 0 && f < 1))
            return clipnn_fail(CLIPNN_ERR_FORMAT, "data info: data.test_fraction '%s': want a number in [0, 1)", value);
        info->opts.test_fraction = f;
    } else if (!strcmp(key, "data.target_column")) {
        char *end;
        errno = 0;
        long c = strtol(value, &end, 10);
        if (end == value || *end || errno)
            return clipnn_fail(CLIPNN_ERR_FORMAT, "data info: data.target_column '%s': want an integer", value);
        info->opts.target_column = c;
    } else if (!strcmp(key, "data.dim")) {
        s = parse_u64(key, value, (uint64_t)1 << 30, &u);
        if (!s && (u == 0 || info->first))
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "data info: data.dim '%s' (once, >= 1)", value);
        if (!s) info->dim = (size_t)u;
    } else if (!strcmp(key, "data.mean") || !strcmp(key, "data.min")) {
        s = set_stats(info, key, value, 0);
    } else if (!strcmp(key, "data.std") || !strcmp(key, "data.max")) {
        s = set_stats(info, key, value, 1);
    } else if (!strcmp(key, "data.classes")) {
        s = set_classes(info, value);
    }
    return s;
}

static clipnn_status grow(clipnn_data_info *info) {
    if (info->n < info->cap) return CLIPNN_OK;
    size_t cap = info->cap ? 2 * info->cap : 16;
    char **k = clipnn_realloc_array(info->keys, cap, sizeof *k);
    if (!k) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory");
    info->keys = k;
    char **v = clipnn_realloc_array(info->values, cap, sizeof *v);
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory");
    info->values = v;
    info->cap = cap;
    return CLIPNN_OK;
}

static long find_key(const clipnn_data_info *info, const char *key) {
    for (size_t i = 0; i < info->n; i++)
        if (!strcmp(info->keys[i], key)) return (long)i;
    return -1;
}

clipnn_status clipnn_data_info_set(clipnn_data_info *info, const char *key, const char *value) {
    if (!info || !key || !value) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "data info: NULL argument");
    if (!*key || strlen(key) > 256 || strlen(value) > MAX_TEXT)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "data info: key '%.40s' empty or too long, or its value too long",
                           key);
    char *v = dup_text(value);
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory");
    clipnn_status s = set_typed(info, key, v);
    long at = find_key(info, key);
    if (!s && at < 0) s = grow(info);
    char *k = !s && at < 0 ? dup_text(key) : NULL;
    if (!s && at < 0 && !k) s = clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory");
    if (s) {
        clipnn_free(v);
        return s;
    }
    if (at >= 0) {
        clipnn_free(info->values[at]);
        info->values[at] = v;
    } else {
        info->keys[info->n] = k;
        info->values[info->n++] = v;
    }
    return CLIPNN_OK;
}

const char *clipnn_data_info_get(const clipnn_data_info *info, const char *key) {
    long at = info && key ? find_key(info, key) : -1;
    return at < 0 ? NULL : info->values[at];
}

size_t clipnn_data_info_count(const clipnn_data_info *info) { return info ? info->n : 0; }

const char *clipnn_data_info_entry(const clipnn_data_info *info, size_t i, const char **value) {
    if (!info || i >= info->n) return NULL;
    if (value) *value = info->values[i];
    return info->keys[i];
}

const char *clipnn_data_info_spec(const clipnn_data_info *info) { return info ? info->spec : NULL; }

clipnn_data_options clipnn_data_info_options(const clipnn_data_info *info) {
    return info ? info->opts : clipnn_data_options_default();
}

size_t clipnn_data_info_stats(const clipnn_data_info *info, const double **first, const double **second) {
    if (first) *first = info ? info->first : NULL;
    if (second) *second = info ? info->second : NULL;
    return info && info->first ? info->dim : 0;
}

size_t clipnn_data_info_n_classes(const clipnn_data_info *info) { return info ? info->n_classes : 0; }

const char *clipnn_data_info_class_name(const clipnn_data_info *info, size_t k) {
    return info && k < info->n_classes ? info->class_names[k] : NULL;
}

/* ------------------------------------------------------------- encoding */

clipnn_status clipnn_data_info_encode(const clipnn_data_info *info, unsigned char **out, size_t *len) {
    size_t total = 4;
    for (size_t i = 0; i < info->n; i++) total += 8 + strlen(info->keys[i]) + strlen(info->values[i]);
    unsigned char *b = clipnn_alloc(total), *p = b;
    if (!b) return clipnn_fail(CLIPNN_ERR_NOMEM, "data info: out of memory for %zu bytes", total);
    le_put_u32(p, (uint32_t)info->n);
    p += 4;
    for (size_t i = 0; i < info->n; i++) {
        const char *text[2] = {info->keys[i], info->values[i]};
        for (int t = 0; t < 2; t++) {
            size_t l = strlen(text[t]);
            le_put_u32(p, (uint32_t)l);
            memcpy(p + 4, text[t], l);
            p += 4 + l;
        }
    }
    *out = b;
    *len = total;
    return CLIPNN_OK;
}

/* A text of the payload at *off: bounded by the payload, no NUL inside. */
static clipnn_status take_text(const char *name, const unsigned char *b, size_t len, size_t *off, char **out) {
    if (len - *off < 4) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA section ends inside an entry", name);
    size_t l = le_get_u32(b + *off);
    *off += 4;
    if (l > len - *off)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA entry of %zu bytes runs past its section", name, l);
    if (memchr(b + *off, 0, l)) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA entry holds a NUL byte", name);
    *out = clipnn_alloc(l + 1);
    if (!*out) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for the DATA section", name);
    memcpy(*out, b + *off, l);
    (*out)[l] = 0;
    *off += l;
    return CLIPNN_OK;
}

clipnn_status clipnn_data_info_decode(const char *name, const unsigned char *b, size_t len, clipnn_data_info **out) {
    *out = NULL;
    if (len < 4) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA section of %zu bytes is too short", name, len);
    size_t n = le_get_u32(b), off = 4;
    if (n > (len - 4) / 8) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA section cannot hold %zu entries", name, n);
    clipnn_data_info *info;
    clipnn_status s = clipnn_data_info_create(&info);
    for (size_t i = 0; !s && i < n; i++) {
        char *k = NULL, *v = NULL;
        s = take_text(name, b, len, &off, &k);
        if (!s) s = take_text(name, b, len, &off, &v);
        if (!s && find_key(info, k) >= 0)
            s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: DATA entry %s appears twice", name, k);
        if (!s) s = clipnn_data_info_set(info, k, v);
        clipnn_free(k);
        clipnn_free(v);
    }
    if (!s && off != len)
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %zu stray bytes in the DATA section", name, len - off);
    if (s) {
        clipnn_data_info_free(info);
        return s;
    }
    *out = info;
    return CLIPNN_OK;
}
