/* Dataset files: reading plain or gzip files, numeric CSV, MNIST IDX.
 *
 * Every error names the file and, for text, the line and column. Sizes read
 * from a file are checked against the bytes that are really there before
 * anything of that size is allocated. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data.h"

/* ------------------------------------------------------------------ CSV */

typedef struct {
    const char *name;
    char sep; /* ',' ';' or ' ' (any run of blanks) */
    float *v; /* values, row-major [rows][cols] */
    size_t n_v, cap_v;
    long *line; /* file line of each row, for messages about targets */
    size_t rows, cols, cap_rows;
    long cols_line; /* line that fixed the column count */
    long target_arg;  /* the target column asked for (negative: from the end) */
    char **label;     /* the target cell's text of each row, for text class labels */
    int text_labels;  /* some target cell is not a number */
    int label_pending; /* label[rows] holds the text of a row not yet complete */
} csv_table;

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* One cell as a float. 0: ok; 1: not a number; 2: not finite (or beyond float). */
static int parse_cell(const char *a, const char *e, float *out) {
    while (a < e && is_blank(*a)) a++;
    while (e > a && is_blank(e[-1])) e--;
    if (a == e) return 1;
    char tmp[128];
    size_t len = (size_t)(e - a);
    if (len >= sizeof tmp) return 1;
    memcpy(tmp, a, len);
    tmp[len] = 0;
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (end != tmp + len) return 1;
    float f = (float)d;
    if (!isfinite(d) || !isfinite(f)) return 2;
    *out = f;
    return 0;
}

/* Split [a, e) into cells; call parse on each. Returns the number of cells. */
static const char *next_cell(const char *a, const char *e, char sep, const char **cell_end) {
    if (sep == ' ') {
        while (a < e && is_blank(*a)) a++;
        const char *c = a;
        while (c < e && !is_blank(*c)) c++;
        *cell_end = c;
        return a;
    }
    const char *c = memchr(a, sep, (size_t)(e - a));
    *cell_end = c ? c : e;
    return a;
}

static size_t count_cells(const char *a, const char *e, char sep) {
    size_t k = 0;
    while (a < e) {
        const char *ce;
        const char *c = next_cell(a, e, sep, &ce);
        if (sep == ' ' && c == e) break;
        k++;
        if (ce == e) break;
        a = ce + 1;
    }
    if (sep != ' ' && a == e && k > 0) k++; /* trailing separator: an empty last cell */
    return k;
}

/* Room for a row of k cells (the first row fixes the column count). */
static clipnn_status reserve_row(csv_table *t, size_t k, long line) {
    if (t->cols == 0) {
        t->cols = k;
        t->cols_line = line;
    } else if (k != t->cols) {
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld has %zu columns, line %ld has %zu (ragged rows)", t->name,
                           line, k, t->cols_line, t->cols);
    }
    size_t need;
    if (clipnn_add_size(t->n_v, k, &need)) return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: too large", t->name);
    if (need > t->cap_v) {
        size_t c = t->cap_v ? t->cap_v : 4096;
        while (c < need) c *= 2;
        float *nv = clipnn_realloc_array(t->v, c, sizeof *nv);
        if (!nv) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory at line %ld", t->name, line);
        t->v = nv;
        t->cap_v = c;
    }
    if (t->rows == t->cap_rows) {
        size_t c = t->cap_rows ? 2 * t->cap_rows : 256;
        long *nl = clipnn_realloc_array(t->line, c, sizeof *nl);
        if (!nl) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory at line %ld", t->name, line);
        t->line = nl;
        t->cap_rows = c;
    }
    return CLIPNN_OK;
}

/* The error for cell [c, ce) that parse_cell refused with code r, showing
 * at most 40 of its printable characters. */
static clipnn_status bad_cell(const csv_table *t, const char *c, const char *ce, int r, long line, size_t col) {
    const char *q = c, *qe = ce;
    while (q < qe && is_blank(*q)) q++;
    while (qe > q && is_blank(qe[-1])) qe--;
    char shown[41];
    size_t m = (size_t)(qe - q) < 40 ? (size_t)(qe - q) : 40;
    for (size_t i = 0; i < m; i++) shown[i] = (q[i] >= 32 && q[i] < 127) ? q[i] : '?';
    shown[m] = 0;
    if (r == 2)
        return clipnn_fail(CLIPNN_ERR_NONFINITE, "%s: line %ld, column %zu: value '%s' is not finite in float32",
                           t->name, line, col + 1, shown);
    if (m == 0) return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld, column %zu: empty cell", t->name, line, col + 1);
    return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld, column %zu: not a number: '%s'%s", t->name, line, col + 1,
                       shown, (size_t)(qe - q) > 40 ? "..." : "");
}

/* The target cell's text of the row being read (trimmed, unquoted). */
static clipnn_status keep_label(csv_table *t, const char *c, const char *ce, long line, int is_text) {
    while (c < ce && is_blank(*c)) c++;
    while (ce > c && is_blank(ce[-1])) ce--;
    if (ce - c >= 2 && (*c == '"' || *c == '\'') && ce[-1] == *c) c++, ce--;
    if (is_text && c == ce)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld: empty target", t->name, line);
    if (t->rows == 0 || (t->rows & (t->rows - 1)) == 0) { /* room for rows up to the next power of two */
        char **nl = clipnn_realloc_array(t->label, t->rows ? 2 * t->rows : 1, sizeof *nl);
        if (!nl) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory at line %ld", t->name, line);
        t->label = nl;
    }
    char *text = clipnn_alloc((size_t)(ce - c) + 1);
    if (!text) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory at line %ld", t->name, line);
    memcpy(text, c, (size_t)(ce - c));
    text[ce - c] = 0;
    t->label[t->rows] = text;
    t->label_pending = 1;
    t->text_labels |= is_text;
    return CLIPNN_OK;
}

/* Parse the cells of one line into the table (a new row) or, when probe is
 * set, only say whether every cell is a number (header detection). */
static clipnn_status csv_row(csv_table *t, const char *a, const char *e, long line, int probe, int *numeric) {
    const char *p = a;
    size_t k = count_cells(a, e, t->sep);
    if (!probe) {
        clipnn_status s = reserve_row(t, k, line);
        if (s) return s;
    }
    long target = t->target_arg < 0 ? t->target_arg + (long)k : t->target_arg;
    for (size_t col = 0; col < k; col++) {
        const char *ce;
        const char *c = next_cell(p, e, t->sep, &ce);
        float f = 0;
        int r = parse_cell(c, ce, &f);
        /* a text target is a class name; any other text cell makes a header */
        if (probe && r == 1 && (long)col != target) {
            *numeric = 0;
            return CLIPNN_OK;
        }
        if (!probe && (long)col == target) {
            clipnn_status s = keep_label(t, c, ce, line, r == 1);
            if (s) return s;
            if (r == 1) r = 0, f = 0;
        }
        if (!probe && r) return bad_cell(t, c, ce, r, line, col);
        if (!probe) t->v[t->n_v + col] = f;
        p = ce < e ? ce + 1 : e;
    }
    if (probe) {
        *numeric = 1;
    } else {
        t->n_v += k;
        t->line[t->rows++] = line;
        t->label_pending = 0;
    }
    return CLIPNN_OK;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Integer-valued targets with at most this many distinct values, and at
 * least two rows per value on average, are taken as class labels. */
enum { AUTO_MAX_CLASSES = 100 };

static int cmp_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The class names of text targets: the distinct labels in byte order,
 * joined by newlines into d->class_names; y = each row's index among them. */
static clipnn_status text_classes(csv_table *t, clipnn_dataset *d) {
    size_t n = t->rows, len = 0, k = 0;
    char **sorted = clipnn_alloc_array(n, sizeof *sorted);
    if (!sorted) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", t->name);
    memcpy(sorted, t->label, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_text);
    for (size_t r = 0; r < n; r++)
        if (r == 0 || strcmp(sorted[r], sorted[k - 1])) sorted[k++] = sorted[r], len += strlen(sorted[r]) + 1;
    d->n_classes = k;
    d->class_names = clipnn_alloc(len);
    if (!d->class_names) {
        clipnn_free(sorted);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", t->name);
    }
    for (size_t c = 0, at = 0; c < k; c++) {
        size_t l = strlen(sorted[c]);
        memcpy(d->class_names + at, sorted[c], l);
        d->class_names[at + l] = c + 1 < k ? '\n' : 0;
        at += l + 1;
    }
    for (size_t r = 0; r < n; r++) {
        char **hit = bsearch(&t->label[r], sorted, k, sizeof *sorted, cmp_text);
        d->y[r] = (float)(hit - sorted);
    }
    clipnn_free(sorted);
    return CLIPNN_OK;
}

static clipnn_status csv_text_dataset(csv_table *t, size_t target, int classification, clipnn_dataset **out) {
    size_t n = t->rows, cols = t->cols;
    for (size_t r = 0; r < n; r++)
        if (strchr(t->label[r], '\n'))
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld: a newline in a class name", t->name, t->line[r]);
    if (classification == 0)
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: text targets (class names) for a regression task", t->name);
    clipnn_dataset *d = NULL;
    clipnn_status s = clipnn_dataset_new(t->name, n, cols - 1, 1, 1, &d);
    for (size_t r = 0; !s && r < n; r++)
        for (size_t c = 0, j = 0; c < cols; c++)
            if (c != target) d->x[r * (cols - 1) + j++] = t->v[r * cols + c];
    if (!s) s = text_classes(t, d);
    if (s) {
        clipnn_dataset_free(d);
        return s;
    }
    *out = d;
    return CLIPNN_OK;
}

/* Build the dataset from the table: x = every column but target, y = target,
 * as classes (remapped to 0..K-1 in increasing order; text labels by name)
 * or values. */
static clipnn_status csv_dataset(csv_table *t, size_t target, int classification, clipnn_dataset **out) {
    if (t->text_labels) return csv_text_dataset(t, target, classification, out);
    size_t n = t->rows, cols = t->cols;
    float *sorted = clipnn_alloc_array(n, sizeof *sorted);
    if (!sorted) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory", t->name);
    int integral = 1;
    size_t bad_row = 0;
    for (size_t r = 0; r < n; r++) {
        float v = t->v[r * cols + target];
        sorted[r] = v;
        if (integral && (v != floorf(v) || fabsf(v) > 16777216.0f)) integral = 0, bad_row = r;
    }
    qsort(sorted, n, sizeof *sorted, cmp_float);
    size_t k = n ? 1 : 0;
    for (size_t r = 1; r < n; r++) k += sorted[r] != sorted[r - 1];
    if (classification < 0) classification = integral && k <= AUTO_MAX_CLASSES && 2 * k <= n;
    clipnn_status s = CLIPNN_OK;
    if (classification && !integral)
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: line %ld, column %zu: target %g is not an integer class label",
                        t->name, t->line[bad_row], target + 1, (double)t->v[bad_row * cols + target]);
    clipnn_dataset *d = NULL;
    if (!s) s = clipnn_dataset_new(t->name, n, cols - 1, classification ? k : 0, 1, &d);
    if (!s) {
        /* distinct values in place at the front of sorted[] */
        size_t u = 0;
        for (size_t r = 0; r < n; r++)
            if (r == 0 || sorted[r] != sorted[u - 1]) sorted[u++] = sorted[r];
        for (size_t r = 0; r < n; r++) {
            const float *row = t->v + r * cols;
            float *x = d->x + r * (cols - 1);
            for (size_t c = 0, j = 0; c < cols; c++)
                if (c != target) x[j++] = row[c];
            float y = row[target];
            if (classification) {
                const float *hit = bsearch(&y, sorted, u, sizeof *sorted, cmp_float);
                y = (float)(hit - sorted);
            }
            d->y[r] = y;
        }
        *out = d;
    }
    clipnn_free(sorted);
    return s;
}

/* Index of the cell named `want` in the header line [a, le) split at sep
 * (blanks when sep is ' '), cells trimmed and unquoted; -1 when absent. */
static long header_column(const char *a, const char *le, char sep, const char *want) {
    size_t wl = strlen(want);
    long col = 0;
    while (a <= le) {
        const char *e = a;
        while (e < le && (sep == ' ' ? !is_blank(*e) : *e != sep)) e++;
        const char *c0 = a, *c1 = e;
        while (c0 < c1 && is_blank(*c0)) c0++;
        while (c1 > c0 && is_blank(c1[-1])) c1--;
        if (c1 - c0 >= 2 && (*c0 == '"' || *c0 == '\'') && c1[-1] == *c0) c0++, c1--;
        if ((size_t)(c1 - c0) == wl && !memcmp(c0, want, wl)) return col;
        col++;
        if (e == le) break;
        a = e + 1;
        if (sep == ' ')
            while (a < le && is_blank(*a)) a++;
    }
    return -1;
}

static clipnn_status parse_csv(const char *name, const char *text, size_t len, long target_column,
                               const char *target_name, int classification, clipnn_dataset **out) {
    csv_table t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.target_arg = target_column;
    const char *p = text, *end = text + len;
    long line = 0;
    int first = 1;
    clipnn_status s = CLIPNN_OK;
    while (s == CLIPNN_OK && p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        line++;
        const char *a = p, *le = e;
        p = e < end ? e + 1 : end;
        while (a < le && is_blank(*a)) a++;
        while (le > a && is_blank(le[-1])) le--;
        if (a == le || *a == '#') continue;
        if (first) {
            t.sep = memchr(a, ',', (size_t)(le - a)) ? ',' : memchr(a, ';', (size_t)(le - a)) ? ';' : ' ';
            first = 0;
            int numeric = 1;
            s = csv_row(&t, a, le, line, 1, &numeric);
            if (!s && !numeric) { /* a header line */
                if (target_name && (t.target_arg = target_column = header_column(a, le, t.sep, target_name)) < 0)
                    s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: no column named '%s' in the header line", name,
                                    target_name);
                target_name = NULL;
                continue;
            }
            if (!s && target_name)
                s = clipnn_fail(CLIPNN_ERR_INVALID_ARG,
                                "%s: target '%s' names a column, but the file has no header line", name, target_name);
        }
        if (!s) s = csv_row(&t, a, le, line, 0, NULL);
    }
    if (!s && t.rows == 0) s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: no data rows", name);
    if (!s && t.cols < 2)
        s = clipnn_fail(CLIPNN_ERR_FORMAT, "%s: %zu column; need at least one feature and a target", name, t.cols);
    long tc = target_column < 0 ? target_column + (long)t.cols : target_column;
    if (!s && (tc < 0 || tc >= (long)t.cols))
        s = clipnn_fail(CLIPNN_ERR_INVALID_ARG, "%s: target column %ld is out of range: the file has %zu columns", name,
                        target_column, t.cols);
    if (!s) s = csv_dataset(&t, (size_t)tc, classification, out);
    for (size_t r = 0; t.label && r < t.rows + (size_t)t.label_pending; r++) clipnn_free(t.label[r]);
    clipnn_free(t.label);
    clipnn_free(t.v);
    clipnn_free(t.line);
    return s;
}

clipnn_status clipnn_parse_csv(const char *name, const char *text, size_t len, long target_column,
                               int classification, clipnn_dataset **out) {
    return parse_csv(name, text, len, target_column, NULL, classification, out);
}

clipnn_status clipnn_dataset_load_csv(const char *path, long target_column, int classification,
                                      clipnn_dataset **out) {
    return clipnn_load_csv_file(path, target_column, NULL, classification, out);
}

clipnn_status clipnn_load_csv_file(const char *path, long target_column, const char *target_name,
                                   int classification, clipnn_dataset **out) {
    if (!path || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "csv: NULL argument");
    *out = NULL;
    unsigned char *buf;
    size_t len;
    clipnn_status s = clipnn_read_text_file(path, &buf, &len);
    if (s) return s;
    s = parse_csv(path, (const char *)buf, len, target_column, target_name, classification, out);
    clipnn_free(buf);
    return s;
}

/* ------------------------------------------------------------------ IDX */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

enum { IDX_IMAGES = 0x00000803, IDX_LABELS = 0x00000801 };

/* The header of an IDX file of unsigned bytes with the given magic:
 * dims[0..ndim) receive the sizes, *hdr the header's length, *body the
 * bytes it announces after it. */
static clipnn_status idx_header(const char *path, uint32_t magic, size_t *dims, size_t *hdr, size_t *body) {
    size_t ndim = magic & 0xff, len;
    *hdr = 4 + 4 * ndim;
    unsigned char *b;
    clipnn_status s = clipnn_read_file(path, *hdr, &b, &len);
    if (s) return s;
    const char *what = magic == IDX_IMAGES ? "image" : "label";
    if (len < 4) {
        clipnn_free(b);
        return clipnn_fail(len == 0 ? CLIPNN_ERR_FORMAT : CLIPNN_ERR_TRUNCATED,
                           "%s: %s, not an IDX %s file", path, len == 0 ? "empty" : "truncated inside the magic number",
                           what);
    }
    uint32_t m = be32(b);
    if (m != magic) {
        clipnn_free(b);
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: not an IDX %s file (magic 0x%08x, want 0x%08x)", path, what,
                           (unsigned)m, (unsigned)magic);
    }
    if (len < *hdr) {
        clipnn_free(b);
        return clipnn_fail(CLIPNN_ERR_TRUNCATED,
                           "%s: truncated: the file ends inside the IDX header (%zu of %zu bytes)", path, len, *hdr);
    }
    size_t count = 1, total;
    for (size_t i = 0; i < ndim; i++) {
        dims[i] = be32(b + 4 + 4 * i);
        if (dims[i] == 0 || clipnn_mul_size(count, dims[i], &count)) {
            clipnn_free(b);
            return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: IDX dimension %zu is %zu: impossible size", path, i, dims[i]);
        }
    }
    clipnn_free(b);
    if (clipnn_add_size(*hdr, count, &total))
        return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: the IDX header announces an impossible size", path);
    *body = count;
    return CLIPNN_OK;
}

/* What an IDX file's header announces, for messages. */
static void idx_shape(const size_t *dims, size_t ndim, char *shape, size_t cap) {
    if (ndim == 3)
        snprintf(shape, cap, "%zu images of %zux%zu", dims[0], dims[1], dims[2]);
    else
        snprintf(shape, cap, "%zu labels", dims[0]);
}

/* A file of len bytes (counted up to total + 1) against the total its
 * header announces. */
static clipnn_status idx_length(const char *path, size_t len, size_t total, const size_t *dims, size_t ndim) {
    if (len == total) return CLIPNN_OK;
    char shape[96];
    idx_shape(dims, ndim, shape, sizeof shape);
    if (len < total)
        return clipnn_fail(CLIPNN_ERR_TRUNCATED, "%s: truncated: %zu of the %zu bytes its header announces (%s)", path,
                           len, total, shape);
    return clipnn_fail(CLIPNN_ERR_FORMAT, "%s: longer than its header announces (%s in %zu bytes)", path, shape, total);
}

/* Read an IDX file of unsigned bytes with the given magic: the header first,
 * then exactly the bytes it announces. dims[0..ndim) receive the sizes;
 * *data points into *buf past the header. */
static clipnn_status idx_read(const char *path, uint32_t magic, size_t *dims, unsigned char **buf,
                              const unsigned char **data) {
    size_t hdr, body, len;
    clipnn_status s = idx_header(path, magic, dims, &hdr, &body);
    if (s) return s;
    unsigned char *b = NULL;
    s = clipnn_read_file(path, hdr + body, &b, &len);
    if (!s) s = idx_length(path, len, hdr + body, dims, magic & 0xff);
    if (s) {
        clipnn_free(b);
        return s;
    }
    *buf = b;
    *data = b + hdr;
    return CLIPNN_OK;
}

/* Bytes [offset, offset + count) of an IDX file of total bytes (its whole
 * length checked), into *out (allocated). */
static clipnn_status idx_read_range(const char *path, const size_t *dims, size_t ndim, size_t offset, size_t count,
                                    size_t total, unsigned char **out) {
    size_t len;
    clipnn_status s = clipnn_check_input_size(path, total);
    if (!s) s = clipnn_check_memory((double)count, path);
    if (s) return s;
    *out = clipnn_alloc(count ? count : 1);
    if (!*out) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %zu bytes", path, count);
    s = clipnn_read_file_range(path, offset, count, total, *out, &len);
    if (!s) s = idx_length(path, len, total, dims, ndim);
    if (s) clipnn_free(*out), *out = NULL;
    return s;
}

/* A dataset of rows [first, first + n) of total images of dim pixels px
 * ([n][dim]) with labels lab ([n]) and classes 0..max_label. */
static clipnn_status idx_dataset(const char *images, const size_t *idims, const unsigned char *px,
                                 const unsigned char *lab, size_t first, size_t n, unsigned max_label,
                                 clipnn_dataset **out) {
    size_t dim = idims[1] * idims[2]; /* bounded by the file size, checked in idx_header */
    clipnn_dataset *d;
    clipnn_status s = clipnn_dataset_new(images, n, dim, (size_t)max_label + 1, 1, &d);
    if (s) return s;
    for (size_t i = 0; i < n * dim; i++) d->x[i] = (float)px[i];
    for (size_t i = 0; i < n; i++) d->y[i] = (float)lab[i];
    d->h = idims[1];
    d->w = idims[2];
    d->c = 1;
    d->pixel_max = 255.0f;
    d->first = first;
    d->total = idims[0];
    *out = d;
    return CLIPNN_OK;
}

static unsigned max_byte(const unsigned char *v, size_t n) {
    unsigned max = 0;
    for (size_t i = 0; i < n; i++) max = v[i] > max ? v[i] : max;
    return max;
}

clipnn_status clipnn_dataset_load_idx(const char *images, const char *labels, clipnn_dataset **out) {
    if (!images || !labels || !out) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "idx: NULL argument");
    return clipnn_load_idx_shard(images, labels, 0, 1, out);
}

/* The labels, read whole, against the images' header. */
static clipnn_status idx_labels(const char *images, const size_t *idims, const char *labels, unsigned char **lb,
                                const unsigned char **lab) {
    size_t ldims[1];
    clipnn_status s = idx_read(labels, IDX_LABELS, ldims, lb, lab);
    if (!s && idims[0] != ldims[0])
        s = clipnn_fail(CLIPNN_ERR_SHAPE, "%s holds %zu images but %s holds %zu labels", images, idims[0], labels,
                        ldims[0]);
    return s;
}

/* The images of a shard (all of them for shards < 2, read as they come:
 * a header that claims more than the file holds is refused from the bytes
 * present); *lo, *hi its rows, *px its pixels in *buf. */
static clipnn_status idx_images(const char *path, size_t shard, size_t shards, size_t *idims, size_t *lo, size_t *hi,
                                unsigned char **buf, const unsigned char **px) {
    clipnn_status s;
    if (shards < 2) {
        s = idx_read(path, IDX_IMAGES, idims, buf, px);
        *lo = 0, *hi = s ? 0 : idims[0];
        return s;
    }
    size_t hdr, body;
    s = idx_header(path, IDX_IMAGES, idims, &hdr, &body);
    if (s) return s;
    size_t dim = idims[1] * idims[2];
    clipnn_part_bounds(idims[0], shard, shards, lo, hi);
    s = idx_read_range(path, idims, 3, hdr + *lo * dim, (*hi - *lo) * dim, hdr + body, buf);
    *px = *buf;
    return s;
}

clipnn_status clipnn_load_idx_shard(const char *images, const char *labels, size_t shard, size_t shards,
                                    clipnn_dataset **out) {
    *out = NULL;
    size_t idims[3], lo, hi;
    unsigned char *ib = NULL, *lb = NULL;
    const unsigned char *px, *lab;
    clipnn_status s = idx_images(images, shard, shards, idims, &lo, &hi, &ib, &px);
    if (!s) s = idx_labels(images, idims, labels, &lb, &lab);
    if (!s) s = idx_dataset(images, idims, px, lab + lo, lo, hi - lo, max_byte(lab, idims[0]), out);
    clipnn_free(ib);
    clipnn_free(lb);
    return s;
}
