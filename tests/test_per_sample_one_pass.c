/* Per-sample clipping in clipnn_train takes one backward: the deltas of
 * every layer first, the per-example norms from them, then each weight
 * gradient formed once from the rescaled deltas; the record's pre-clip
 * norms come from Gram matrices of the layers' rows where that is cheaper
 * than forming dW. Checked against the naive computation: one backward per
 * example, each gradient clipped to C, their mean. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "mlp_fixture.h"

enum { DIM = 12, H1 = 20, H2 = 9, CLASSES = 3 };

static clipnn_dataset *data_n(size_t n) {
    float x[64 * DIM], y[64];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < DIM; j++) x[i * DIM + j] = sinf(0.37f * (float)(i * DIM + j)) * 1.5f;
        y[i] = (float)((i * 5) % CLASSES);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, n, DIM, CLASSES, 1, &d));
    return d;
}

/* The naive DP-SGD gradient (no noise) in double, and the norm of the
 * unclipped mean gradient. */
static double naive(clipnn_model *m, const clipnn_dataset *d, size_t n, double C, double *sum) {
    size_t P = clipnn_model_n_params(m);
    double *mean = calloc(P, sizeof *mean);
    CHECK(mean != NULL);
    clipnn_loss_options lo = clipnn_loss_options_default();
    memset(sum, 0, P * sizeof *sum);
    const float *g = clipnn_model_grads(m);
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(clipnn_loss_grad(m, &lo, clipnn_dataset_x(d) + i * DIM, clipnn_dataset_y(d) + i, 1, NULL, NULL));
        double sq = 0;
        for (size_t j = 0; j < P; j++) sq += (double)g[j] * (double)g[j];
        double f = sqrt(sq) > C ? C / sqrt(sq) : 1.0;
        for (size_t j = 0; j < P; j++) sum[j] += f * (double)g[j] / (double)n, mean[j] += (double)g[j] / (double)n;
    }
    double pre = 0;
    for (size_t j = 0; j < P; j++) pre += mean[j] * mean[j];
    free(mean);
    return sqrt(pre);
}

static double first_pre_norm;
static void on_step(const clipnn_step_record *r, void *user) {
    (void)user;
    if (r->step == 0) first_pre_norm = r->clip.pre_norm;
}

/* One full-batch step of plain SGD with lr 1: theta0 - theta1 is the
 * clipped mean gradient. Batch 1 takes the Gram form in every layer, 4 in
 * the first two (the 9 -> 3 layer forms dW), 40 in none. The two sides
 * differ by float rounding of sums over the batch and over a layer's
 * inputs: the per-example factors (a norm of <= P terms), the scaled
 * deltas (u each), dW's sums over n rows, all relative to entries of at
 * most the largest per-example entry: (P + n + 4) u of that. */
static void check_model(size_t n, double C, int threads, size_t h1, size_t h2) {
    clipnn_set_threads(threads);
    clipnn_dataset *d = data_n(n);
    clipnn_model *m = fixture_mlp(DIM, h1, h2, CLASSES, CLIPNN_ACT_TANH, 5);
    size_t P = clipnn_model_n_params(m);
    float *theta0 = malloc(P * sizeof *theta0);
    double *want = malloc(P * sizeof *want);
    CHECK(theta0 && want);
    memcpy(theta0, clipnn_model_params(m), P * sizeof *theta0);
    double pre = naive(m, d, n, C, want);
    clipnn_train_options o = clipnn_train_options_default();
    o.optim = clipnn_optim_options_default();
    o.schedule.kind = CLIPNN_SCHED_CONST;
    o.schedule.a0 = 1.0;
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.lambda = C;
    o.clip.noise_multiplier = 0;
    o.batch = n;
    o.steps = 1;
    o.on_step = on_step;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    const float *theta1 = clipnn_model_params(m);
    double big = 0, worst = 0;
    for (size_t j = 0; j < P; j++) big = fmax(big, fabs(want[j]));
    for (size_t j = 0; j < P; j++) {
        double got = (double)theta0[j] - (double)theta1[j];
        /* theta's own rounding when the step is subtracted: u |theta| */
        double e = fabs(got - want[j]) - (FLT_EPSILON / 2) * fabs((double)theta0[j]);
        worst = fmax(worst, e);
    }
    double tol = (double)(P + n + 4) * (FLT_EPSILON / 2) * big;
    CHECK_MSG(worst <= tol, "batch %zu, C %g, %d threads: step off the naive one by %.3g (tolerance %.3g)", n, C,
              threads, worst, tol);
    /* the pre-clip norm from the Gram matrices (double) or the formed dW
     * (float entries: u each, n of them summed) */
    CHECK_MSG(fabs(first_pre_norm - pre) <= (double)(n + 4) * (FLT_EPSILON / 2) * pre,
              "batch %zu: pre-clip norm %.9g, naive %.9g", n, first_pre_norm, pre);
    free(theta0), free(want);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    clipnn_set_threads(1);
}

static void check_batch(size_t n, double C, int threads) { check_model(n, C, threads, H1, H2); }

TEST(per_sample_one_backward_equals_naive_loop) {
    const size_t batches[] = {1, 4, 40};
    const double Cs[] = {1e-3, 0.05, 1e3}; /* every example clipped, some, none */
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < 3; k++)
            for (int threads = 1; threads <= 2; threads++) check_batch(batches[b], Cs[k], threads);
}

/* A model wide enough that two threads split its passes (the per-example
 * norms by examples, the deltas' scaling and dW by units). */
TEST(per_sample_one_backward_on_two_threads_equals_naive_loop) {
    const double Cs[] = {1e-3, 0.05, 1e3};
    for (size_t k = 0; k < 3; k++)
        for (int threads = 1; threads <= 2; threads++) check_model(8, Cs[k], threads, 400, 160);
}

static int nan_rows, rows;
static void count_nan_pre(const clipnn_step_record *r, void *user) {
    (void)user;
    rows++;
    nan_rows += isnan(r->clip.pre_norm) && isnan(r->clip.factor) && !r->clip.nonfinite && isfinite(r->clip.post_norm);
}

/* Without anyone to read the pre-clip norms the step skips them: the
 * parameters are the same bit for bit, the record says NaN. */
TEST(per_sample_skipped_pre_norms_change_nothing_else) {
    const size_t batches[] = {4, 40};
    for (size_t b = 0; b < 2; b++) {
        size_t n = batches[b];
        clipnn_dataset *d = data_n(n);
        clipnn_model *m[3];
        clipnn_train_options o = clipnn_train_options_default();
        o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
        o.clip.lambda = 0.05;
        o.batch = n / 2;
        o.steps = 8;
        clipnn_train_result res;
        rows = nan_rows = 0;
        for (int k = 0; k < 3; k++) {
            m[k] = fixture_mlp(DIM, H1, H2, CLASSES, CLIPNN_ACT_TANH, 5);
            o.on_step = k == 0 ? NULL : k == 1 ? on_step : count_nan_pre; /* none, measured, skipped */
            o.per_sample_skip_pre_norm = k == 2;
            CHECK_OK(clipnn_train(m[k], d, NULL, &o, &res));
        }
        size_t P = clipnn_model_n_params(m[0]);
        CHECK_MSG(!memcmp(clipnn_model_params(m[0]), clipnn_model_params(m[1]), P * sizeof(float)) &&
                      !memcmp(clipnn_model_params(m[0]), clipnn_model_params(m[2]), P * sizeof(float)),
                  "batch %zu: the parameters depend on whether the pre-clip norms were measured", n / 2);
        CHECK_MSG(rows == 8 && nan_rows == 8, "batch %zu: %d of %d rows with a skipped pre-clip norm", n / 2, nan_rows,
                  rows);
        for (int k = 0; k < 3; k++) clipnn_model_free(m[k]);
        clipnn_dataset_free(d);
    }
}
