/* The float32 tanh kernel against double tanh: within 2 ulp everywhere,
 * the correctly rounded value around the point where it saturates, +-1
 * exactly in the tails, so that the backward passes exactly 0 there; and
 * the double reference's derivative in the same tails. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "nn/nn.h" /* the activation kernels and the double references */

static float tanh_kernel(float z) {
    float y;
    clipnn_act_forward(CLIPNN_ACT_TANH, &y, &z, 1);
    return y;
}

/* Spacing of the floats in the binade of the exact value t (|t| < 1: a t
 * that double tanh rounded to 1 still lies below it). */
static double float_ulp(double t) {
    double a = fabs(t) >= 1.0 ? 0.75 : fabs(t);
    int e;
    frexp(a, &e); /* a = f 2^e, f in [0.5, 1) */
    return ldexp(1.0, e - 24 < -149 ? -149 : e - 24);
}

/* The documented accuracy, on a dense grid of [-30, 30] and on tiny and
 * subnormal inputs (the odd polynomial returns x there). The kernel
 * measures 1.33 ulp at most, at the switch between its two forms. */
TEST(tanh_within_two_ulp) {
    enum { N = 4096 };
    float z[N], y[N];
    double worst = 0, worst_z = 0;
    for (double start = -30.0; start < 30.0; start += N * 1.5e-4) {
        for (int i = 0; i < N; i++) z[i] = (float)(start + i * 1.5e-4);
        clipnn_act_forward(CLIPNN_ACT_TANH, y, z, N);
        for (int i = 0; i < N; i++) {
            double t = tanh((double)z[i]), e = fabs((double)y[i] - t) / float_ulp(t);
            if (e > worst) worst = e, worst_z = z[i];
        }
    }
    CHECK_MSG(worst <= 2.0, "tanh: %.3f ulp at z = %.9g", worst, worst_z);
    const float tiny[] = {FLT_MIN, 1e-30f, 1e-40f, -1e-40f, 1e-20f, 0.0f, -0.0f};
    for (size_t i = 0; i < sizeof tiny / sizeof *tiny; i++) CHECK(tanh_kernel(tiny[i]) == tiny[i]);
    CHECK(isnan(tanh_kernel(NAN)));
}

/* Past 13 ln 2 = 9.0109 the exact tanh is within 2^-25 (half an ulp) of 1,
 * so the correctly rounded float is 1; below it, 1 - 2^-24. Every float of
 * [9, 10.5] (across the kernel's clamp at 10) must be that correctly
 * rounded value, of both signs. */
TEST(tanh_rounds_correctly_where_it_saturates) {
    const float below = 9.01091290f, above = 9.01091385f; /* the floats around 13 ln 2 */
    CHECK(below < 13 * M_LN2 && above > 13 * M_LN2 && nextafterf(below, INFINITY) == above);
    CHECK(tanh_kernel(below) == 1.0f - 0x1p-24f && tanh_kernel(above) == 1.0f);
    CHECK(tanh_kernel(-below) == -1.0f + 0x1p-24f && tanh_kernel(-above) == -1.0f);
    enum { N = 4096 };
    float z[2 * N], y[2 * N];
    long long wrong = 0;
    float first_wrong = 0, next = 9.0f;
    while (next <= 10.5f) { /* in blocks: the vector loop, as a layer runs it */
        for (int i = 0; i < N; i++, next = nextafterf(next, INFINITY)) z[i] = next, z[N + i] = -next;
        clipnn_act_forward(CLIPNN_ACT_TANH, y, z, 2 * N);
        for (int i = 0; i < N; i++) {
            float want = (float)tanh((double)z[i]);
            if (z[i] <= 10.5f && (y[i] != want || y[N + i] != -want)) {
                if (!wrong) first_wrong = z[i];
                wrong++;
            }
        }
    }
    CHECK_MSG(wrong == 0, "tanh: %lld floats of [9, 10.5] not correctly rounded, the first %.9g", wrong,
              (double)first_wrong);
}

/* Saturated units: tanh is +-1 exactly and the backward's 1 - y^2 is
 * exactly 0 (the exact derivative, e.g. 1.7e-17 at 20, is far below
 * anything float32 can carry next to the unsaturated units). */
TEST(tanh_tails_are_exactly_one_with_zero_derivative) {
    const float z[] = {9.1f, 20.0f, 30.0f, 1e4f, FLT_MAX, INFINITY, -9.1f, -20.0f, -30.0f, -1e4f, -FLT_MAX, -INFINITY};
    enum { N = sizeof z / sizeof *z };
    float y[N], d[N];
    clipnn_act_forward(CLIPNN_ACT_TANH, y, z, N);
    for (int i = 0; i < N; i++) d[i] = 3.5f;
    clipnn_act_backward(CLIPNN_ACT_TANH, d, z, y, N);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(y[i] == (z[i] > 0 ? 1.0f : -1.0f), "tanh(%g) = %.9g", (double)z[i], (double)y[i]);
        CHECK_MSG(d[i] == 0.0f, "tanh'(%g) = %.3g in the backward", (double)z[i], (double)d[i]);
    }
}

/* The same through a model: a hidden tanh layer whose pre-activations are
 * +-20 passes no gradient to its weights and biases. */
TEST(tanh_saturated_layer_passes_no_gradient) {
    size_t widths[2] = {2, 1};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 1, 2, widths, acts));
    if (!m) return;
    float *p = clipnn_model_params(m), *g = clipnn_model_grads(m);
    const float params[] = {20.0f, -20.0f, 0.0f, 0.0f, 0.7f, -0.4f, 0.1f}; /* W0, b0, W1, b1 */
    CHECK(clipnn_model_n_params(m) == sizeof params / sizeof *params);
    memcpy(p, params, sizeof params);
    const float x = 1.0f, y = 5.0f;
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_MSE;
    CHECK_OK(clipnn_loss_grad(m, &lo, &x, &y, 1, NULL, NULL));
    for (int i = 0; i < 4; i++) CHECK_MSG(g[i] == 0.0f, "layer 0 gradient %d = %.3g", i, (double)g[i]);
    CHECK(g[4] != 0.0f && g[6] != 0.0f); /* the output layer still learns */
    clipnn_model_free(m);
}

/* The double reference: tanh is double tanh (+-1 once that rounds there,
 * past 19); its derivative is sech^2 to a few double ulp in the tails,
 * where 1 - tanh^2 would lose every digit: cosh and its square and
 * reciprocal (3 ulp) against 4e / (1 + e)^2 with e = exp(-2|x|) (2 ulp). */
TEST(tanh_double_reference_tails) {
    CHECK(clipnn_act_eval_d(CLIPNN_ACT_TANH, 20.0) == 1.0 && clipnn_act_eval_d(CLIPNN_ACT_TANH, -20.0) == -1.0);
    CHECK(clipnn_act_deriv_d(CLIPNN_ACT_TANH, 0.0) == 1.0);
    CHECK(clipnn_act_deriv_d(CLIPNN_ACT_TANH, INFINITY) == 0.0 && clipnn_act_deriv_d(CLIPNN_ACT_TANH, -INFINITY) == 0.0);
    const double xs[] = {9.1, 15.0, 19.0, 20.0, 30.0, -20.0, 100.0};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        double e = exp(-2.0 * fabs(xs[i])), want = 4.0 * e / ((1.0 + e) * (1.0 + e));
        CHECK_NEAR(clipnn_act_deriv_d(CLIPNN_ACT_TANH, xs[i]), want, 5 * 0x1p-52 * want);
    }
    /* Away from the tails it is 1 - tanh^2 (no cancellation below |x| = 1). */
    for (double x = -1.0; x <= 1.0; x += 0.125) {
        double t = tanh(x);
        CHECK_NEAR(clipnn_act_deriv_d(CLIPNN_ACT_TANH, x), 1.0 - t * t, 8 * 0x1p-53);
    }
}
