/* The dense kernels with a thread's slice cut into tiles (where the BLAS
 * multiplies small GEMMs without packing them): the forward, dW and da of
 * a slice that is not a whole number of tiles, against the products in
 * double, and nothing written outside the slice. The tile limit is set so
 * that every tile is 32 units wide, whatever BLAS and CPU run the test. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/base.h" /* clipnn_gemm_direct_macs */
#include "nn/nn.h"     /* the kernels */

enum { B = 5, IN = 40, OUT = 90 };

#define SENTINEL 1234.5f

static float value(size_t i, double f) { return (float)sin(f * (double)(i + 1)); }

/* |computed - exact| of a float dot product of K terms, summed in any
 * order (with or without FMAs): at most K float roundings on the largest
 * partial sum, bounded by sum |x_k y_k| (2^-24 = 6e-8 a rounding). */
static int close_to(float got, double exact, double abs_sum, size_t K) {
    return fabs((double)got - exact) <= (double)K * 6e-8 * abs_sum + 1e-30;
}

typedef struct {
    float a[B * IN], W[OUT * IN], dz[B * OUT];
    float z[B * OUT], dW[OUT * IN], da[B * IN];
} dense_case;

static void fill(dense_case *c) {
    for (size_t i = 0; i < B * IN; i++) c->a[i] = value(i, 0.37);
    for (size_t i = 0; i < OUT * IN; i++) c->W[i] = value(i, 0.11);
    for (size_t i = 0; i < B * OUT; i++) c->dz[i] = value(i, 0.53);
    for (size_t i = 0; i < B * OUT; i++) c->z[i] = SENTINEL;
    for (size_t i = 0; i < OUT * IN; i++) c->dW[i] = SENTINEL;
    for (size_t i = 0; i < B * IN; i++) c->da[i] = SENTINEL;
}

/* sum_i x[i xs] y[i ys] in double, and the sum of the terms' magnitudes. */
static double ref_dot(const float *x, size_t xs, const float *y, size_t ys, size_t n, double *abs_sum) {
    double s = 0;
    *abs_sum = 0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)x[i * xs] * (double)y[i * ys];
        s += t, *abs_sum += fabs(t);
    }
    return s;
}

/* Units lo..hi of z and rows lo..hi of dW against double products; the
 * rest of both untouched. */
static void check_units(const dense_case *c, size_t lo, size_t hi) {
    int bad_z = 0, bad_w = 0;
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < OUT; j++) {
            double abs_sum, s = ref_dot(c->a + r * IN, 1, c->W + j * IN, 1, IN, &abs_sum);
            float got = c->z[r * OUT + j];
            bad_z += j >= lo && j < hi ? !close_to(got, s, abs_sum, IN) : got != SENTINEL;
        }
    for (size_t j = 0; j < OUT; j++)
        for (size_t k = 0; k < IN; k++) {
            double abs_sum, s = ref_dot(c->dz + j, OUT, c->a + k, IN, B, &abs_sum);
            float got = c->dW[j * IN + k];
            bad_w += j >= lo && j < hi ? !close_to(got, s, abs_sum, B) : got != SENTINEL;
        }
    CHECK_MSG(!bad_z && !bad_w, "%d forward and %d weight-gradient entries wrong (units %zu..%zu)", bad_z, bad_w,
              lo, hi);
}

/* Columns lo..hi of da = dz W against double products; the rest untouched. */
static void check_inputs(const dense_case *c, size_t lo, size_t hi) {
    int bad = 0;
    for (size_t r = 0; r < B; r++)
        for (size_t k = 0; k < IN; k++) {
            double abs_sum, s = ref_dot(c->dz + r * OUT, 1, c->W + k, IN, OUT, &abs_sum);
            float got = c->da[r * IN + k];
            bad += k >= lo && k < hi ? !close_to(got, s, abs_sum, OUT) : got != SENTINEL;
        }
    CHECK_MSG(!bad, "%d input-gradient entries wrong (columns %zu..%zu)", bad, lo, hi);
}

/* The forward and dW with the tile limit units_limit, da with
 * inputs_limit (0: whole slices). */
static void run_slice(size_t units_limit, size_t inputs_limit, size_t lo, size_t hi, size_t in_lo, size_t in_hi) {
    size_t saved = clipnn_gemm_direct_macs;
    dense_case *c = malloc(sizeof *c);
    CHECK(c != NULL);
    if (!c) return;
    fill(c);
    clipnn_gemm_direct_macs = units_limit;
    clipnn_dense_forward_cols(c->z, c->a, c->W, B, IN, OUT, lo, hi);
    clipnn_dense_weight_grad_rows(c->dW, NULL, c->dz, c->a, B, IN, OUT, lo, hi);
    clipnn_gemm_direct_macs = inputs_limit;
    clipnn_dense_input_grad_cols(c->da, c->dz, c->W, B, IN, OUT, in_lo, in_hi);
    clipnn_gemm_direct_macs = saved;
    check_units(c, lo, hi);
    check_inputs(c, in_lo, in_hi);
    free(c);
}

TEST(dense_kernels_in_tiles_match_the_products) {
    /* tiles of 32 units (the forward's and dW's B * IN multiply-adds a
     * unit, da's B * OUT a column): 87 units in tiles of 32, 32 and 23;
     * 39 inputs in 32 and 7 */
    const size_t units32 = 32 * B * IN, inputs32 = 32 * B * OUT;
    run_slice(units32, inputs32, 3, 90, 1, 40);
    /* a slice narrower than one tile, and the whole layer */
    run_slice(units32, inputs32, 20, 29, 5, 12);
    run_slice(units32, inputs32, 0, OUT, 0, IN);
    /* a limit below 32 whole rows of dW: tiles of 32 rows by 32 and 8
     * columns (the forward in tiles of 16 units) */
    run_slice(6000, 0, 3, 90, 1, 40);
    /* no tiles */
    run_slice(0, 0, 3, 90, 1, 40);
}
