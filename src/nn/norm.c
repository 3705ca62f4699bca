/* Vector norms accumulated in double, whatever the parameter type, and the
 * per-group norms of phase one of two-phase clipping (torch's
 * get_total_norm). A norm is kept as an accumulation (sum |v|^p, or max |v|
 * for p = inf) until the end so that groups combine without roots. */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

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

/* Sums of squares with float partial sums: 64 lanes (four vectors of 16)
 * each add up to 8 squares (a block of 512), the four vectors are added
 * lane by lane and the block's 16 lanes are added in double. A lane's 8
 * float additions and the two of the combination bound the relative error
 * by 10 roundings (6e-7, typically 1e-7: the rounding of the float
 * entries themselves), at a fraction of the cost of converting every
 * element to double. Four independent vector accumulators keep the adds
 * from waiting on each other's latency (one accumulator of 16 lanes made
 * this a chain of dependent adds: 0.1 ns an element in L1, a third of a
 * batch-of-one update); the vectors are GCC's generic vectors, which each
 * CPU level lowers to its own width. */
typedef float f32x16 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));

/* One vector of 16 floats from p, minus one from c when diff. */
#define LOAD16(x, p, c, diff)                                                                                        \
    do {                                                                                                             \
        memcpy(&(x), (p), sizeof(x));                                                                                \
        if (diff) {                                                                                                  \
            f32x16 y_;                                                                                               \
            memcpy(&y_, (c), sizeof y_);                                                                             \
            (x) -= y_;                                                                                               \
        }                                                                                                            \
    } while (0)

/* The squares of 64 floats at v (minus c) added to the four accumulators. */
#define ADD64(v, c, diff)                                                                                            \
    do {                                                                                                             \
        f32x16 x0, x1, x2, x3;                                                                                       \
        LOAD16(x0, (v), (c), diff);                                                                                  \
        LOAD16(x1, (v) + 16, (c) + 16, diff);                                                                        \
        LOAD16(x2, (v) + 32, (c) + 32, diff);                                                                        \
        LOAD16(x3, (v) + 48, (c) + 48, diff);                                                                        \
        a0 += x0 * x0, a1 += x1 * x1, a2 += x2 * x2, a3 += x3 * x3;                                                  \
    } while (0)

/* diff == 0: sum of v_i^2 (c unused, may be v); else sum of (v_i - c_i)^2.
 * Inlined into each CPU level's clone (a vector passed by value between
 * functions would take the default level's calling convention). The
 * blocks' lanes go into 8 double lanes, added once at the end; the last
 * partial 64 floats are padded with zeros. */
static inline __attribute__((always_inline)) double sumsq_lanes(const float *v, const float *c, size_t n,
                                                                const int diff) {
    f64x8 acc = {0};
    for (size_t i = 0; i < n;) {
        f32x16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int step = 0; step < 8 && i < n; step++, i += 64) {
            if (n - i >= 64) {
                ADD64(v + i, c + i, diff);
            } else {
                float pad[64] = {0}, cpad[64] = {0};
                memcpy(pad, v + i, (n - i) * sizeof *v);
                if (diff) memcpy(cpad, c + i, (n - i) * sizeof *c);
                ADD64(pad, cpad, diff);
            }
        }
        f32x16 t = (a0 + a1) + (a2 + a3);
        f32x8 lo = __builtin_shufflevector(t, t, 0, 1, 2, 3, 4, 5, 6, 7);
        f32x8 hi = __builtin_shufflevector(t, t, 8, 9, 10, 11, 12, 13, 14, 15);
        acc += __builtin_convertvector(lo, f64x8) + __builtin_convertvector(hi, f64x8);
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

CLIPNN_HOT_KERNEL double sumsq_blocked(const float *v, size_t n) { return sumsq_lanes(v, v, n, 0); }

CLIPNN_HOT_KERNEL double sumsq_diff_blocked(const float *v, const float *c, size_t n) { return sumsq_lanes(v, c, n, 1); }

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
