/* The PyTorch reference files of tests/ref (written by the scripts
 * scripts/torch_*reference.py, format described in torch_reference.py) and
 * the comparisons the parity tests share. */
#ifndef CLIPNN_TEST_REF_FILE_H
#define CLIPNN_TEST_REF_FILE_H

#include <stddef.h>

#define U 5.9604644775390625e-08 /* 2^-24, float32 unit roundoff */

/* One file of tests/ref: attributes (=key value) and named arrays. */
typedef struct {
    char name[48];
    size_t n;
    double *v;
} ref_array;

typedef struct {
    char path[512];
    ref_array *a;
    size_t n, cap;
    char attrs[16][2][64];
    size_t n_attrs;
} ref_file;

/* Parses tests/ref/FILE; a missing or malformed file fails the test (with
 * its name and line) and gives NULL. */
ref_file *ref_load(const char *file);
void ref_free(ref_file *f);
/* The array NAME with exactly n values (any count when n = 0); a missing or
 * mis-sized one fails the test and gives NULL. */
const double *ref_get(const ref_file *f, const char *name, size_t n);
size_t ref_size(const ref_file *f, const char *name); /* 0 when absent */
const char *ref_attr(const ref_file *f, const char *key); /* "" when absent */

void to_float(const double *v, float *out, size_t n);
double max_abs(const double *v, size_t n);
/* got[i] (clipnn) and torch's float32 ref32[i] (when not NULL) both within
 * tol of the truth t64[i]; the first few misses are reported by name. */
void check_pair(const char *what, const float *got, const double *ref32, const double *t64, size_t n, double tol);

#endif
