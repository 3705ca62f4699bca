/* The dataset object and its accessors. */
#include <math.h>
#include <string.h>

#include "data/data.h"

/* ---------------------------------------------------------- the object */

clipnn_status clipnn_dataset_new(const char *name, size_t n, size_t dim, size_t n_classes,
                                 size_t n_targets, clipnn_dataset **out) {
    *out = NULL;
    size_t nx, ny, bytes;
    if (clipnn_mul_size(n, dim, &nx) || clipnn_mul_size(nx, sizeof(float), &bytes) ||
        clipnn_mul_size(n, n_targets, &ny) || clipnn_mul_size(ny, sizeof(float), &bytes))
        return clipnn_fail(CLIPNN_ERR_OVERFLOW, "%s: %zu rows of %zu features is too large", name, n, dim);
    char what[160];
    snprintf(what, sizeof what, "%s: %zu rows of %zu features", name, n, dim);
    clipnn_status s = clipnn_check_memory(((double)nx + (double)ny) * sizeof(float), what);
    if (s) return s;
    clipnn_dataset *d = clipnn_alloc_array(1, sizeof *d);
    size_t name_len = strlen(name);
    if (d) {
        d->name = clipnn_alloc(name_len + 1);
        d->x = clipnn_alloc_array(nx, sizeof(float));
        d->y = clipnn_alloc_array(ny, sizeof(float));
    }
    if (!d || !d->name || !d->x || !d->y) {
        clipnn_dataset_free(d);
        return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for %zu rows of %zu features", name, n, dim);
    }
    memcpy(d->name, name, name_len + 1);
    d->n = d->total = n;
    d->dim = dim;
    d->n_classes = n_classes;
    d->n_targets = n_targets;
    *out = d;
    return CLIPNN_OK;
}

void clipnn_dataset_free(clipnn_dataset *d) {
    if (!d) return;
    clipnn_free(d->name);
    clipnn_free(d->x);
    clipnn_free(d->y);
    clipnn_free(d->class_names);
    clipnn_free(d);
}

size_t clipnn_dataset_n(const clipnn_dataset *d) { return d->n; }
size_t clipnn_dataset_dim(const clipnn_dataset *d) { return d->dim; }
size_t clipnn_dataset_n_classes(const clipnn_dataset *d) { return d->n_classes; }
size_t clipnn_dataset_n_targets(const clipnn_dataset *d) { return d->n_targets; }
const float *clipnn_dataset_x(const clipnn_dataset *d) { return d->x; }
const float *clipnn_dataset_y(const clipnn_dataset *d) { return d->y; }
const char *clipnn_dataset_name(const clipnn_dataset *d) { return d->name; }

void clipnn_dataset_shard_range(const clipnn_dataset *d, size_t *first, size_t *total) {
    if (first) *first = d->first;
    if (total) *total = d->total;
}

void clipnn_dataset_seq_shape(const clipnn_dataset *d, size_t *steps, size_t *step_dim) {
    /* An image is read row by row: h steps of w * c values. */
    size_t T = d->seq_len ? d->seq_len : d->h, D = d->seq_len ? d->seq_dim : d->w * d->c;
    if (steps) *steps = T;
    if (step_dim) *step_dim = D;
}

size_t clipnn_dataset_target_steps(const clipnn_dataset *d) { return d->target_steps; }

void clipnn_dataset_copy_geometry(clipnn_dataset *to, const clipnn_dataset *from) {
    to->h = from->h, to->w = from->w, to->c = from->c, to->pixel_max = from->pixel_max;
    to->seq_len = from->seq_len, to->seq_dim = from->seq_dim, to->target_steps = from->target_steps;
}

clipnn_status clipnn_dataset_copy_class_names(clipnn_dataset *to, const clipnn_dataset *from) {
    if (!from->class_names) return CLIPNN_OK;
    size_t len = strlen(from->class_names) + 1;
    char *names = clipnn_alloc(len);
    if (!names) return clipnn_fail(CLIPNN_ERR_NOMEM, "%s: out of memory for the class names", from->name);
    memcpy(names, from->class_names, len);
    clipnn_free(to->class_names);
    to->class_names = names;
    return CLIPNN_OK;
}

void clipnn_dataset_image_shape(const clipnn_dataset *d, size_t *h, size_t *w, size_t *c) {
    if (h) *h = d->h;
    if (w) *w = d->w;
    if (c) *c = d->c;
}

clipnn_status clipnn_dataset_from_arrays(const float *x, const float *y, size_t n, size_t dim,
                                         size_t n_classes, size_t n_targets, clipnn_dataset **out) {
    if (!out || (n > 0 && (!x || !y))) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "arrays: NULL argument");
    *out = NULL;
    if (dim == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "arrays: dim must be >= 1");
    if (n_classes > 0 && n_targets > 1)
        return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "arrays: %zu classes with %zu targets per row; classes take one",
                           n_classes, n_targets);
    if (n_classes > 0) n_targets = 1;
    if (n_targets == 0) return clipnn_fail(CLIPNN_ERR_INVALID_ARG, "arrays: n_targets must be >= 1");
    clipnn_dataset *d;
    clipnn_status s = clipnn_dataset_new("arrays", n, dim, n_classes, n_targets, &d);
    if (s) return s;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++)
            if (!isfinite(x[i * dim + j])) {
                clipnn_dataset_free(d);
                return clipnn_fail(CLIPNN_ERR_NONFINITE, "arrays: x[%zu][%zu] is not finite", i, j);
            }
        for (size_t j = 0; j < n_targets; j++) {
            float v = y[i * n_targets + j];
            int bad_class = n_classes > 0 && !clipnn_is_class_index(v, n_classes);
            if (!isfinite(v) || bad_class) {
                clipnn_dataset_free(d);
                return bad_class && isfinite(v)
                           ? clipnn_fail(CLIPNN_ERR_INVALID_ARG, "arrays: y[%zu] = %g is not a class index below %zu",
                                         i, (double)v, n_classes)
                           : clipnn_fail(CLIPNN_ERR_NONFINITE, "arrays: y[%zu][%zu] is not finite", i, j);
            }
        }
    }
    memcpy(d->x, x, n * dim * sizeof *x);
    memcpy(d->y, y, n * n_targets * sizeof *y);
    *out = d;
    return CLIPNN_OK;
}

