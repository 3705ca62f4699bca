/* The reference for the update's float partial sums of squares: the sum of
 * (v - c)^2 (c may be NULL) in double, and its tolerance: each term's
 * relative error is at most 11 float roundings (11 x 6e-8 = 6.6e-7) and all
 * terms are >= 0, so the sum's relative error is bounded by that too. */
#ifndef CLIPNN_TEST_SUMSQ_REF_H
#define CLIPNN_TEST_SUMSQ_REF_H

#include <stddef.h>

#define SUMSQ_TOL 7e-7

static inline double sumsq_double(const float *v, const float *c, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)v[i] - (c ? (double)c[i] : 0.0);
        s += d * d;
    }
    return s;
}

#endif
