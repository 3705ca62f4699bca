/* Vector norms accumulated in double, whatever the parameter type, and the
 * per-group norms of phase one of two-phase clipping (torch's
 * get_total_norm). A norm is kept as an accumulation (sum |v|^p, or max |v|
 * for p = inf) until the end so that groups combine without roots. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"
#include "nn/sumsq_kernel.h"

/* Sum of |v_i|^p (p finite) or max |v_i| (p = inf) of v[n]. NaN anywhere
 * gives NaN (fmax would drop it, so the max is written out). */
CLIPNN_HOT_KERNEL double norm_accumulate(const float *v, size_t n, double p) {
    if (isinf(p)) {
        double m = 0;
        for (size_t i = 0; i < n; i++) {
            double a = fabs((double)v[i]);
            if (!(a <= m)) m = a; /* also takes a NaN, which then sticks */
            if (isnan(m)) return m;
        }
        return m;
    }
    double s = 0;
    /* simd: partial sums per vector lane, added at the end. A fixed order
     * for a given build and CPU level (the vector width of the version that
     * runs; no thread count involved), and it lets the accumulation run at
     * memory speed instead of one add latency per element. */
    if (p == 2) {
#pragma omp simd reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
    } else if (p == 1) {
#pragma omp simd reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += fabs((double)v[i]);
    } else {
        for (size_t i = 0; i < n; i++) s += pow(fabs((double)v[i]), p);
    }
    return s;
}

/* Sums of squares with float partial sums (src/nn/sumsq_kernel.h): c ==
 * NULL: sum of v_i^2; else sum of (v_i - c_i)^2. */
SUMSQ_INLINE double sumsq_lanes(const float *v, const float *c, size_t n, const int diff) {
    clipnn_f64x8 acc = {0};
    clipnn_sumsq_block b;
    memset(&b, 0, sizeof b);
    for (size_t i = 0; i < n;) {
        for (int step = 0; step < SUMSQ_STEPS && i < n; step++, i += SUMSQ_STEP) {
            size_t k = n - i < SUMSQ_STEP ? n - i : SUMSQ_STEP;
            sumsq_add_step(&b, v + i, diff ? c + i : v, k, diff);
        }
        sumsq_fold(&acc, &b);
    }
    return sumsq_total(&acc);
}

CLIPNN_HOT_KERNEL double sumsq_blocked(const float *v, size_t n) { return sumsq_lanes(v, v, n, 0); }

CLIPNN_HOT_KERNEL double sumsq_diff_blocked(const float *v, const float *c, size_t n) {
    return sumsq_lanes(v, c, n, 1);
}

/* The library's entries to the kernels above (one version per CPU level). */
double clipnn_norm_accumulate(const float *v, size_t n, double p) { return norm_accumulate(v, n, p); }

double clipnn_sumsq_blocked(const float *v, size_t n) { return sumsq_blocked(v, n); }

double clipnn_sumsq_diff_blocked(const float *v, const float *c, size_t n) { return sumsq_diff_blocked(v, c, n); }

double clipnn_norm_finish(double acc, double p) {
    if (isinf(p) || p == 1) return acc;
    if (p == 2) return sqrt(acc);
    return pow(acc, 1.0 / p);
}

double clipnn_norm_combine(double a, double b, double p) {
    if (!isinf(p)) return a + b;
    if (isnan(a) || isnan(b)) return NAN;
    return a > b ? a : b;
}

/* Accumulation of a norm that has been scaled by s >= 0. */
double clipnn_norm_scale_acc(double acc, double s, double p) {
    if (isinf(p) || p == 1) return acc * s;
    if (p == 2) return acc * s * s;
    return acc * pow(s, p);
}

int clipnn_norm_order_valid(double p) { return p >= 1 || isinf(p); }

double clipnn_norm(const float *v, size_t n, double p) {
    if (!clipnn_norm_order_valid(p)) return NAN;
    return clipnn_norm_finish(clipnn_norm_accumulate(v, n, p), p);
}
