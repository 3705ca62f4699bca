/* Small vector helpers every folder above nn shares: the arg-max of a
 * score row, dot products and Euclidean norms of double vectors, scaling a
 * float vector (clipping's phase two, and the per-example weights of
 * DP-SGD). */
#include <math.h>

#include "nn/nn.h"

size_t clipnn_argmax(const float *z, size_t k) {
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

double clipnn_dot_d(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

double clipnn_nrm2_d(const double *a, size_t n) { return sqrt(clipnn_dot_d(a, a, n)); }

/* The clipping of the two-phase path (g scaled in place) and of per-example
 * deltas. simd: GCC at -O2 vectorizes no loop of unknown trip count. */
CLIPNN_HOT_KERNEL void scale_kernel(float *g, size_t n, float scale) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) g[i] *= scale;
}

void clipnn_scale(float *g, size_t n, float scale) { scale_kernel(g, n, scale); }
