/* Datasets from NumPy arrays: x [n][T][d] sequences (or [n][d] rows) and
 * targets [n], [n][k] or [n][T][k]. Every error names the file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

typedef struct {
    float *v;
    size_t shape[CLIPNN_NPY_MAX_DIMS], ndim;
} npy_array;

/* The first non-finite value of a[n] as a flat index, or n. */
static size_t first_nonfinite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return i;
    return n;
}

static clipnn_status read_checked(const char *path, const char *what, npy_array *a) {
    clipnn_status s = clipnn_npy_read_nd(path, &a->v, a->shape, &a->ndim);
    if (s) return s;
    size_t n = 1;
    for (size_t i = 0; i < a->ndim; i++) n *= a->shape[i]; /* the reader checked the product */
    size_t bad = first_nonfinite(a->v, n);
    if (bad < n) {
        size_t row_len = n / (a->shape[0] ? a->shape[0] : 1);
        return clipnn_fail(CLIPNN_ERR_NONFINITE, "%s: %s row %zu holds a non-finite value (%g at flat index %zu)", path,
                           what, bad / row_len, (double)a->v[bad], bad);
    }
    return CLIPNN_OK;
}

static clipnn_status check_x_shape(const char *path, const npy_array *x) {
    if (x->ndim < 2)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: inputs of shape (%zu,); want [n][features] or [n][steps][features]",
                           path, x->shape[0]);
    for (size_t i = 0; i < x->ndim; i++)
        if (x->shape[i] == 0)
            return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: inputs have an empty dimension (dimension %zu is 0)", path, i);
    return CLIPNN_OK;
}

/* Targets against the inputs: same n; [n][T][k] only with T steps as x. */
static clipnn_status check_y_shape(const char *x_path, const npy_array *x, const char *y_path, const npy_array *y) {
    if (y->shape[0] != x->shape[0])
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s holds %zu targets but %s holds %zu inputs", y_path, y->shape[0],
                           x_path, x->shape[0]);
    if (y->ndim == 3 && (x->ndim != 3 || y->shape[1] != x->shape[1]))
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: targets for %zu steps, but the inputs in %s are %s", y_path,
                           y->shape[1], x_path, x->ndim == 3 ? "sequences of another length" : "not sequences");
    for (size_t i = 1; i < y->ndim; i++)
        if (y->shape[i] == 0)
            return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: targets have an empty dimension (dimension %zu is 0)", y_path, i);
    return CLIPNN_OK;
}

/* Classes when asked (task > 0) or, undecided (task < 0), when y is one
 * value per row and every value is an integer >= 0: then K = max + 1. */
static clipnn_status classes_of(const char *path, const npy_array *y, int task, size_t *n_classes) {
    *n_classes = 0;
    if (task == 0) return CLIPNN_OK;
    int integral = y->ndim == 1;
    float max = 0;
    for (size_t i = 0; integral && i < y->shape[0]; i++) {
        float v = y->v[i];
        integral = v >= 0 && v == floorf(v) && v < 16777216.0f;
        max = v > max ? v : max;
    }
    if (task > 0 && !integral)
        return clipnn_fail(CLIPNN_ERR_SHAPE, "%s: task=classification needs one integer label >= 0 per row", path);
    if (integral) *n_classes = (size_t)max + 1;
    return CLIPNN_OK;
}

static clipnn_status build(const char *x_path, const npy_array *x, const npy_array *y, size_t n_classes,
                           clipnn_dataset **out) {
    size_t n = x->shape[0], dim = x->shape[1] * (x->ndim == 3 ? x->shape[2] : 1);
    size_t per_row = y->ndim == 1 ? 1 : y->shape[1] * (y->ndim == 3 ? y->shape[2] : 1);
    clipnn_status s = clipnn_dataset_new(x_path, n, dim, n_classes, per_row, out);
    if (s) return s;
    clipnn_dataset *d = *out;
    memcpy(d->x, x->v, n * dim * sizeof *d->x);
    memcpy(d->y, y->v, n * per_row * sizeof *d->y);
    if (x->ndim == 3) d->seq_len = x->shape[1], d->seq_dim = x->shape[2];
    if (y->ndim == 3) d->target_steps = y->shape[1];
    return CLIPNN_OK;
}

clipnn_status clipnn_load_npy_pair(const char *x_path, const char *y_path, int task, clipnn_dataset **out) {
    *out = NULL;
    npy_array x = {0}, y = {0};
    size_t n_classes = 0;
    clipnn_status s = read_checked(x_path, "input", &x);
    if (!s) s = check_x_shape(x_path, &x);
    if (!s) s = read_checked(y_path, "target", &y);
    if (!s) s = check_y_shape(x_path, &x, y_path, &y);
    if (!s) s = classes_of(y_path, &y, task, &n_classes);
    if (!s) s = build(x_path, &x, &y, n_classes, out);
    free(x.v);
    free(y.v);
    return s;
}
