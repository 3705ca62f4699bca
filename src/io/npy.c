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

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
enum { NPY_ALIGN = 64, NPY_PREFIX_V1 = 10, NPY_PREFIX_V2 = 12 };

/* ---------------------------------------------------------------- write */

typedef struct {
    const float *data;
    size_t rows, cols, count;
} npy_job;

static int fill_npy(FILE *f, void *user) {
    const npy_job *job = user;
    char dict[128];
    int len = job->cols == 0
                  ? snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu,), }",
                             job->rows)
                  : snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                             job->rows, job->cols);
    /* pad with spaces to a multiple of NPY_ALIGN, counting the final '\n' */
    size_t total = NPY_PREFIX_V1 + (size_t)len + 1;
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    unsigned char head[NPY_PREFIX_V1 + 192];
    size_t header_len = padded - NPY_PREFIX_V1;
    memcpy(head, npy_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(header_len & 0xff);
    head[9] = (unsigned char)(header_len >> 8);
    memcpy(head + NPY_PREFIX_V1, dict, (size_t)len);
    memset(head + NPY_PREFIX_V1 + len, ' ', padded - 1 - NPY_PREFIX_V1 - (size_t)len);
    head[padded - 1] = '\n';
    errno = 0;
    if (fwrite(head, 1, padded, f) != padded) return errno ? errno : EIO;
    unsigned char buf[4096];
    const size_t per = sizeof buf / 4;
    for (size_t i = 0; i < job->count; i += per) {
        size_t k = job->count - i < per ? job->count - i : per;
        le_put_f32s(buf, job->data + i, k);
        if (fwrite(buf, 4, k, f) != k) return errno ? errno : EIO;
    }
    return 0;
}

clipnn_status clipnn_npy_write(const char *path, const float *data, size_t rows, size_t cols) {
    if (!path || !*path) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy: no file name");
    size_t count;
    if (clipnn_mul_size(rows, cols ? cols : 1, &count) || count > SIZE_MAX / 4)
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: %zu x %zu floats is too large", path, rows, cols);
    if (count > 0 && !data) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: NULL data", path);
    npy_job job = {data, rows, cols, count};
    return clipnn_write_atomic(path, "array", fill_npy, &job);
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
                return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: structured dtype; only float32 ('<f4') arrays are read",
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

/* The magic, the version and the header length; *prefix: the bytes before the header. */
static clipnn_status read_prefix(FILE *f, const char *path, uint64_t size, size_t *prefix, uint64_t *header_len) {
    unsigned char pre[NPY_PREFIX_V2];
    if (size == 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: empty file, not a .npy array", path);
    size_t got = fread(pre, 1, size < 8 ? (size_t)size : 8, f);
    if (memcmp(pre, npy_magic, got < 6 ? got : 6))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    if (got < 8) return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the file ends inside the .npy magic", path);
    unsigned major = pre[6];
    *prefix = major == 1 ? NPY_PREFIX_V1 : NPY_PREFIX_V2;
    if (major < 1 || major > 3)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: .npy format version %u.%u; versions 1 to 3 are read", path,
                           major, pre[7]);
    clipnn_status s = read_exact(f, path, pre + 8, *prefix - 8, "header length");
    if (s) return s;
    *header_len = major == 1 ? (uint64_t)pre[8] | (uint64_t)pre[9] << 8 : le_get_u32(pre + 8);
    if (*header_len > size - *prefix)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: the header should have %llu bytes, the file has %llu",
                           path, (unsigned long long)*header_len, (unsigned long long)(size - *prefix));
    return CLIPNN_OK;
}

/* The header's dictionary: a C-order little-endian float32 array of 1 or 2 dimensions. */
static clipnn_status read_header(FILE *f, const char *path, uint64_t header_len, npy_header *h) {
    char *text = clipnn_alloc((size_t)header_len + 1);
    if (!text) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for the header", path);
    clipnn_status s = read_exact(f, path, text, (size_t)header_len, "header");
    memset(h, 0, sizeof *h);
    if (!s) s = parse_header(path, text, (size_t)header_len, h);
    clipnn_free(text);
    if (s) return s;
    if (strcmp(h->descr, "<f4"))
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: dtype '%s'; only little-endian float32 ('<f4') is read", path,
                           h->descr);
    if (h->fortran)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: Fortran-order array; save it in C order (numpy.ascontiguousarray)",
                           path);
    if (h->ndim < 1 || h->ndim > 2)
        return clipnn_fail(CLIPNN_ERR_UNSUPPORTED, "%s: %zu-dimensional array; only 1-D and 2-D arrays are read", path,
                           h->ndim);
    return CLIPNN_OK;
}

/* The number of values the shape announces, which must be what the body holds. */
static clipnn_status value_count(const char *path, const npy_header *h, uint64_t body, uint64_t *count) {
    uint64_t c = h->dims[0];
    if (h->ndim == 2 && h->dims[1] != 0 && c > UINT64_MAX / h->dims[1])
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: impossible shape in the header", path);
    if (h->ndim == 2) c *= h->dims[1];
    if (c > body / 4)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %llu bytes of data where the shape needs %llu x 4", path,
                           (unsigned long long)body, (unsigned long long)c);
    if (body != 4 * c)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %llu bytes after the data its shape announces", path,
                           (unsigned long long)(body - 4 * c));
    *count = c;
    return CLIPNN_OK;
}

/* count little-endian float32 values into a new array *data. */
static clipnn_status read_values(FILE *f, const char *path, uint64_t count, float **data) {
    /* count <= size / 4, so it fits in memory terms; rows and cols in size_t too */
    float *v = clipnn_alloc_array((size_t)count, sizeof *v);
    unsigned char buf[4096];
    if (!v) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %llu floats", path, (unsigned long long)count);
    for (size_t i = 0; i < count;) {
        size_t k = (size_t)count - i < sizeof buf / 4 ? (size_t)count - i : sizeof buf / 4;
        clipnn_status s = read_exact(f, path, buf, 4 * k, "data");
        if (s) {
            clipnn_free(v);
            return s;
        }
        for (size_t j = 0; j < k; j++) v[i + j] = le_get_f32(buf + 4 * j);
        i += k;
    }
    *data = v;
    return CLIPNN_OK;
}

static clipnn_status npy_read_open(FILE *f, const char *path, uint64_t size, float **data, size_t *rows,
                                   size_t *cols) {
    size_t prefix = 0;
    uint64_t header_len = 0, count = 0;
    npy_header h;
    clipnn_status s = read_prefix(f, path, size, &prefix, &header_len);
    if (!s) s = read_header(f, path, header_len, &h);
    if (!s) s = value_count(path, &h, size - prefix - header_len, &count);
    if (!s) s = read_values(f, path, count, data);
    if (s) return s;
    /* cols == 0 stands for 1-D, so an (R, 0) array comes back as (0,) */
    *rows = count ? (size_t)h.dims[0] : 0;
    *cols = h.ndim == 2 && count ? (size_t)h.dims[1] : 0;
    return CLIPNN_OK;
}

clipnn_status clipnn_npy_read(const char *path, float **data, size_t *rows, size_t *cols) {
    if (!path || !data || !rows || !cols) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "npy: NULL argument");
    *data = NULL;
    *rows = *cols = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return clipnn_fail(CLIPNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    clipnn_status s;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        s = clipnn_fail(CLIPNN_ERR_IO, "%s: not a regular file", path);
    else
        s = npy_read_open(f, path, (uint64_t)st.st_size, data, rows, cols);
    fclose(f);
    return s;
}
