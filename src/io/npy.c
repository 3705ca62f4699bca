/* NumPy .npy arrays, so that Python users can read what clipnn writes
 * (numpy.load) and clipnn can read what they write (numpy.save).
 *
 * Layout (numpy/lib/format.py, version 1.0): the magic "\x93NUMPY", two
 * bytes of version (1, 0), a little-endian u16 header length, then the
 * header: an ASCII Python dict literal with the keys 'descr' (dtype string,
 * here '<f4'), 'fortran_order' (False) and 'shape' (a tuple), padded with
 * spaces and ended by '\n' so that the data start at a multiple of 64
 * bytes; then the elements. Versions 2.0 and 3.0 differ only by a u32
 * header length (3.0: UTF-8 header), and are read too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/bytes_le.h"
#include "io/io.h"
#include "io/npy.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
enum { NPY_ALIGN = 64, NPY_PREFIX_V1 = 10, NPY_PREFIX_V2 = 12 };

/* ---------------------------------------------------------------- write */

size_t clipnn_npy_header(unsigned char *out, const size_t *shape, size_t ndim) {
    char dict[256], dims[160] = "";
    size_t k = 0;
    for (size_t i = 0; i < ndim && i < CLIPNN_NPY_MAX_DIMS; i++)
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%zu,%s", shape[i], i + 1 < ndim ? " " : "");
    if (ndim > 1) dims[k - 1] = 0; /* (R, C) without a trailing comma, (R,) keeps it */
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* pad with spaces to a multiple of NPY_ALIGN, counting the final '\n' */
    size_t total = NPY_PREFIX_V1 + (size_t)len + 1;
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t header_len = padded - NPY_PREFIX_V1;
    memcpy(out, npy_magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = (unsigned char)(header_len & 0xff);
    out[9] = (unsigned char)(header_len >> 8);
    memcpy(out + NPY_PREFIX_V1, dict, (size_t)len);
    memset(out + NPY_PREFIX_V1 + len, ' ', padded - 1 - NPY_PREFIX_V1 - (size_t)len);
    out[padded - 1] = '\n';
    return padded;
}

typedef struct {
    const float *data;
    const size_t *shape;
    size_t ndim, count;
} npy_job;

static int fill_npy(FILE *f, void *user) {
    const npy_job *job = user;
    unsigned char head[CLIPNN_NPY_HEADER_MAX];
    size_t padded = clipnn_npy_header(head, job->shape, job->ndim);
    errno = 0;
    if (fwrite(head, 1, padded, f) != padded) return errno ? errno : EIO;
    return clipnn_fwrite_f32s(f, job->data, job->count);
}

clipnn_status clipnn_npy_write_nd(const char *path, const float *data, const size_t *shape, size_t ndim) {
    if (!path || !*path) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy: no file name");
    if (!shape || ndim < 1 || ndim > CLIPNN_NPY_MAX_DIMS)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: %zu dimensions; 1 to %d are written", path, ndim,
                           CLIPNN_NPY_MAX_DIMS);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++)
        if (clipnn_mul_size(count, shape[i], &count) || count > SIZE_MAX / 4)
            return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: the array is too large", path);
    if (count > 0 && !data) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: NULL data", path);
    npy_job job = {data, shape, ndim, count};
    return clipnn_write_atomic(path, "array", fill_npy, &job);
}

clipnn_status clipnn_npy_write(const char *path, const float *data, size_t rows, size_t cols) {
    size_t shape[2] = {rows, cols};
    return clipnn_npy_write_nd(path, data, shape, cols == 0 ? 1 : 2);
}

/* ----------------------------------------------------------------- read */

/* A cursor over the header dict. */
typedef struct {
    const char *p, *e;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int accept(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->e && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string into out[cap]; 0 on success. */
static int parse_str(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->p >= c->e || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->e && *c->p != q) {
        if (n + 1 >= cap) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->e) return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_word(cursor *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, w, n)) return 0;
    c->p += n;
    return 1;
}

/* "(a, b, ...)" with up to 8 entries. */
static int parse_shape(cursor *c, uint64_t *dims, size_t *ndim) {
    if (!accept(c, '(')) return -1;
    *ndim = 0;
    for (;;) {
        if (accept(c, ')')) return 0;
        skip_ws(c);
        if (c->p >= c->e || *c->p < '0' || *c->p > '9' || *ndim == 8) return -1;
        uint64_t v = 0;
        while (c->p < c->e && *c->p >= '0' && *c->p <= '9') {
            unsigned d = (unsigned)(*c->p++ - '0');
            if (v > (UINT64_MAX - d) / 10) return -1;
            v = 10 * v + d;
        }
        if (c->p < c->e && *c->p == 'L') c->p++; /* Python 2 longs */
        dims[(*ndim)++] = v;
        if (!accept(c, ',')) {
            if (accept(c, ')')) return 0;
            return -1;
        }
    }
}

typedef struct {
    char descr[32];
    int fortran;
    uint64_t dims[8];
    size_t ndim;
} npy_header;

static clipnn_status parse_header(const char *path, const char *text, size_t len, npy_header *h) {
    cursor c = {text, text + len};
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    if (!accept(&c, '{')) goto bad;
    while (!accept(&c, '}')) {
        char key[32];
        if (parse_str(&c, key, sizeof key) || !accept(&c, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            skip_ws(&c);
            if (c.p < c.e && *c.p == '[')
                return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: structured dtype; arrays of one number type are read",
                                   path);
            if (parse_str(&c, h->descr, sizeof h->descr)) goto bad;
            seen_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&c, "True"))
                h->fortran = 1;
            else if (parse_word(&c, "False"))
                h->fortran = 0;
            else
                goto bad;
            seen_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            if (parse_shape(&c, h->dims, &h->ndim)) goto bad;
            seen_shape = 1;
        } else {
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: unexpected key '%s' in the .npy header", path, key);
        }
        if (!accept(&c, ',')) {
            if (accept(&c, '}')) break;
            goto bad;
        }
    }
    if (!seen_descr || !seen_fortran || !seen_shape)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the .npy header lacks '%s'", path,
                           !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : "shape");
    return CLIPNN_OK;
bad:
    return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: malformed .npy header near offset %zu: '%.*s'", path,
                       (size_t)(c.p - text), (int)(len < 80 ? len : 80), text);
}

static clipnn_status read_exact(FILE *f, const char *path, void *buf, size_t n, const char *what) {
    if (fread(buf, 1, n, f) == n) return CLIPNN_OK;
    if (ferror(f)) return clipnn_fail(CLIPNN_ERR_IO, "%s: read error in the %s: %s", path, what, strerror(errno));
    return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the file ends inside the %s", path, what);
}

/* Element types read from a .npy file, all converted to float. */
typedef enum { NPY_F4, NPY_F8, NPY_I1, NPY_U1, NPY_I2, NPY_U2, NPY_I4, NPY_U4, NPY_I8, NPY_U8 } npy_type;

static const struct {
    const char *descr; /* without the byte-order character */
    npy_type type;
    unsigned size;
} npy_types[] = {{"f4", NPY_F4, 4}, {"f8", NPY_F8, 8}, {"i1", NPY_I1, 1}, {"u1", NPY_U1, 1},
                 {"i2", NPY_I2, 2}, {"u2", NPY_U2, 2}, {"i4", NPY_I4, 4}, {"u4", NPY_U4, 4},
                 {"i8", NPY_I8, 8}, {"u8", NPY_U8, 8}};

/* The element type of descr ('<f4', '|u1', '<i8', ...); -1 when it is not
 * a little-endian (or byte-sized) number clipnn reads. */
static int npy_type_of(const char *descr) {
    if (descr[0] != '<' && descr[0] != '|' && descr[0] != '=') return -1;
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
        if (!strcmp(descr + 1, npy_types[i].descr) && (descr[0] != '|' || npy_types[i].size == 1)) return (int)i;
    return -1;
}

static float npy_element(const unsigned char *p, npy_type t) {
    switch (t) {
    case NPY_F4: return le_get_f32(p);
    case NPY_F8: return (float)le_get_f64(p);
    case NPY_I1: return (float)(int8_t)p[0];
    case NPY_U1: return (float)p[0];
    case NPY_I2: return (float)(int16_t)(uint16_t)(p[0] | p[1] << 8);
    case NPY_U2: return (float)(uint16_t)(p[0] | p[1] << 8);
    case NPY_I4: return (float)(int32_t)le_get_u32(p);
    case NPY_U4: return (float)le_get_u32(p);
    case NPY_I8: return (float)(int64_t)le_get_u64(p);
    default: return (float)le_get_u64(p);
    }
}

/* Elements in the shape, 0 with *ok = 0 when the product overflows. */
static uint64_t shape_count(const npy_header *h, int *ok) {
    uint64_t count = 1;
    *ok = 1;
    for (size_t i = 0; i < h->ndim; i++) {
        if (h->dims[i] != 0 && count > UINT64_MAX / h->dims[i]) *ok = 0;
        count *= h->dims[i];
    }
    return *ok ? count : 0;
}

/* The header of an open .npy file: magic, version, dict; the file is left
 * at the first data byte, *body holds the bytes after the header. */
static clipnn_status npy_read_header(FILE *f, const char *path, uint64_t size, npy_header *h, uint64_t *body) {
    unsigned char pre[NPY_PREFIX_V2];
    if (size == 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: empty file, not a .npy array", path);
    size_t got = fread(pre, 1, size < 8 ? (size_t)size : 8, f);
    if (memcmp(pre, npy_magic, got < 6 ? got : 6))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    if (got < 8) return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the file ends inside the .npy magic", path);
    unsigned major = pre[6];
    size_t prefix = major == 1 ? NPY_PREFIX_V1 : NPY_PREFIX_V2;
    if (major < 1 || major > 3)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: .npy format version %u.%u; versions 1 to 3 are read", path,
                           major, pre[7]);
    clipnn_status s = read_exact(f, path, pre + 8, prefix - 8, "header length");
    if (s) return s;
    uint64_t header_len = major == 1 ? (uint64_t)pre[8] | (uint64_t)pre[9] << 8 : le_get_u32(pre + 8);
    if (header_len > size - prefix)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the header should have %llu bytes, the file has %llu",
                           path, (unsigned long long)header_len, (unsigned long long)(size - prefix));
    char *text = clipnn_alloc((size_t)header_len + 1);
    if (!text) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for the header", path);
    s = read_exact(f, path, text, (size_t)header_len, "header");
    memset(h, 0, sizeof *h);
    if (!s) s = parse_header(path, text, (size_t)header_len, h);
    clipnn_free(text);
    *body = size - prefix - header_len;
    return s;
}

/* The checks on what the header announces, before anything is allocated. */
static clipnn_status npy_check_layout(const char *path, const npy_header *h, size_t max_dims, uint64_t body,
                                      int *type, uint64_t *count) {
    *type = npy_type_of(h->descr);
    if (*type < 0)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED,
                           "%s: dtype '%s'; little-endian floats (f4, f8) and integers (i1-i8, u1-u8) are read", path,
                           h->descr);
    if (h->fortran)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED,
                           "%s: Fortran-order array; save it in C order (numpy.ascontiguousarray)", path);
    if (h->ndim < 1 || h->ndim > max_dims)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: %zu-dimensional array; arrays of 1 to %zu dimensions are read",
                           path, h->ndim, max_dims);
    int ok;
    unsigned esize = npy_types[*type].size;
    *count = shape_count(h, &ok);
    if (!ok) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: impossible shape in the header", path);
    if (*count > body / esize)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %llu bytes of data where the shape needs %llu x %u",
                           path, (unsigned long long)body, (unsigned long long)*count, esize);
    if (body != esize * *count)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu bytes after the data its shape announces", path,
                           (unsigned long long)(body - esize * *count));
    return CLIPNN_OK;
}

static clipnn_status npy_read_open(FILE *f, const char *path, uint64_t size, size_t max_dims, float **data,
                                   npy_header *h) {
    uint64_t body = 0, count = 0;
    int type = -1;
    clipnn_status s = npy_read_header(f, path, size, h, &body);
    if (!s) s = npy_check_layout(path, h, max_dims, body, &type, &count);
    if (s) return s;
    /* count <= size / element size, so it fits in memory terms */
    float *v = clipnn_alloc_array((size_t)count, sizeof *v);
    unsigned char buf[4096];
    unsigned esize = npy_types[type].size;
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %llu floats", path, (unsigned long long)count);
    for (size_t i = 0; i < count;) {
        size_t k = (size_t)count - i < sizeof buf / esize ? (size_t)count - i : sizeof buf / esize;
        s = read_exact(f, path, buf, esize * k, "data");
        if (s) {
            clipnn_free(v);
            return s;
        }
        for (size_t j = 0; j < k; j++) v[i + j] = npy_element(buf + esize * j, npy_types[type].type);
        i += k;
    }
    *data = v;
    return CLIPNN_OK;
}

static clipnn_status npy_read_path(const char *path, size_t max_dims, float **data, npy_header *h) {
    FILE *f = fopen(path, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    clipnn_status s;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: not a regular file", path);
    else if (!(s = clipnn_check_input_size(path, (uint64_t)st.st_size)))
        s = npy_read_open(f, path, (uint64_t)st.st_size, max_dims, data, h);
    fclose(f);
    return s;
}

clipnn_status clipnn_npy_read_mem(const char *name, const unsigned char *bytes, size_t len, float **data,
                                  size_t shape[CLIPNN_NPY_MAX_DIMS], size_t *ndim) {
    *data = NULL;
    *ndim = 0;
    if (len == 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: empty, not a .npy array", name);
    FILE *f = fmemopen((void *)bytes, len, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: cannot open the array in memory", name);
    npy_header h;
    clipnn_status s = npy_read_open(f, name, len, CLIPNN_NPY_MAX_DIMS, data, &h);
    fclose(f);
    if (s) return s;
    *ndim = h.ndim;
    for (size_t i = 0; i < CLIPNN_NPY_MAX_DIMS; i++) shape[i] = i < h.ndim ? (size_t)h.dims[i] : 0;
    return CLIPNN_OK;
}

clipnn_status clipnn_npy_read_nd(const char *path, float **data, size_t shape[CLIPNN_NPY_MAX_DIMS], size_t *ndim) {
    if (!path || !data || !shape || !ndim) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy: NULL argument");
    *data = NULL;
    *ndim = 0;
    npy_header h;
    clipnn_status s = npy_read_path(path, CLIPNN_NPY_MAX_DIMS, data, &h);
    if (s) return s;
    *ndim = h.ndim;
    for (size_t i = 0; i < CLIPNN_NPY_MAX_DIMS; i++) shape[i] = i < h.ndim ? (size_t)h.dims[i] : 0;
    return CLIPNN_OK;
}

clipnn_status clipnn_npy_read(const char *path, float **data, size_t *rows, size_t *cols) {
    if (!path || !data || !rows || !cols) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy: NULL argument");
    *data = NULL;
    *rows = *cols = 0;
    npy_header h;
    clipnn_status s = npy_read_path(path, 2, data, &h);
    if (s) return s;
    int ok;
    uint64_t count = shape_count(&h, &ok);
    /* cols == 0 stands for 1-D, so an (R, 0) array comes back as (0,) */
    *rows = count ? (size_t)h.dims[0] : 0;
    *cols = h.ndim == 2 && count ? (size_t)h.dims[1] : 0;
    return CLIPNN_OK;
}
