/* clipnn_train's fused step (unit norms from the backward, ||theta|| from
 * the update before, per-unit factors folded into the update, threads
 * split by units) against the same step written with the public two-phase
 * API: loss_grad, clipper_apply, optimizer_step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "base/base.h" /* clipnn_parallel_macs: split kernels on small models */
#include "mlp_fixture.h"

enum { N_EX = 40, DIM = 12, CLASSES = 3, STEPS = 6 };

static clipnn_dataset *data_n(size_t n) {
    float x[N_EX * DIM], y[N_EX];
    for (int i = 0; i < N_EX; i++) {
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = sinf(0.37f * (float)(i * DIM + j)) * 1.5f;
        y[i] = (float)((i * 5) % CLASSES);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, n, DIM, CLASSES, 1, &d));
    return d;
}

static clipnn_dataset *data(void) { return data_n(N_EX); }

static clipnn_model *model(void) { return fixture_mlp(DIM, 20, 9, CLASSES, CLIPNN_ACT_TANH, 11); }

static clipnn_clip_options clip_for(clipnn_clip_rule rule) {
    clipnn_clip_options c = clipnn_clip_options_default();
    c.rule = rule;
    /* Thresholds that clip at every step, far from the boundary. */
    c.lambda = rule == CLIPNN_CLIP_AGC || rule == CLIPNN_CLIP_ADAPTIVE_LAYER || rule == CLIPNN_CLIP_ADAPTIVE
                   ? 0.002
                   : 0.05;
    c.percentile = 50;
    return c;
}

/* Full-batch steps: every step sees all rows (clipnn_train in its shuffled
 * order, the reference in file order), so the two differ only by the order
 * of float sums. Per step that is float32 rounding (6e-8) times the terms
 * summed (<= 40 rows, 20 units), on parameters of order 1 moved by lr *
 * (clipped gradient <= 1): 6e-8 * 60 * 6 steps ~ 2e-5 at the most. */
#define TOL 2e-5

/* n examples, all in every (full-batch) step; n = 1 takes the batch-of-one
 * kernels and the Gram form of the unit norms. */
static void compare_rule(clipnn_clip_rule rule, int threads, size_t n) {
    clipnn_dataset *d = data_n(n);
    clipnn_model *a = model(), *b = model();
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clip_for(rule);
    o.optim.momentum = 0.9;
    o.schedule.a0 = 0.2;
    o.batch = n;
    o.steps = STEPS;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(a, d, NULL, &o, &r));

    clipnn_clipper *c = NULL;
    clipnn_optimizer *opt = NULL;
    CHECK_OK(clipnn_clipper_create(&c, b, &o.clip));
    CHECK_OK(clipnn_optimizer_create(&opt, clipnn_model_n_params(b), &o.optim));
    uint64_t clipped = 0;
    for (int t = 0; t < STEPS; t++) {
        double loss, scale = 1;
        clipnn_clip_record rec;
        CHECK_OK(clipnn_loss_grad(b, &o.loss, clipnn_dataset_x(d), clipnn_dataset_y(d), n, &loss, NULL));
        CHECK_OK(clipnn_clipper_apply(c, b, -1, 1, &scale, NULL, &rec));
        CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(b), clipnn_model_grads(b), 0.2, scale));
        clipped += (uint64_t)rec.clipped;
    }
    /* AutoClip's threshold follows the norms it has seen: not every step. */
    if (rule != CLIPNN_CLIP_NONE && rule != CLIPNN_CLIP_PERCENTILE) CHECK_MSG(clipped == STEPS, "rule %s clipped %llu of %d steps",
                                            clipnn_clip_rule_name(rule), (unsigned long long)clipped, STEPS);
    CHECK_NEAR(r.clipped_fraction, (double)clipped / STEPS, 1e-12);
    const float *pa = clipnn_model_params(a), *pb = clipnn_model_params(b);
    double worst = 0;
    for (size_t i = 0; i < clipnn_model_n_params(a); i++) {
        double e = fabs((double)pa[i] - (double)pb[i]);
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst <= TOL, "rule %s, %d threads, %zu examples: fused and two-phase steps differ by %g",
              clipnn_clip_rule_name(rule), threads, n, worst);
    clipnn_optimizer_free(opt);
    clipnn_clipper_free(c);
    clipnn_model_free(a);
    clipnn_model_free(b);
    clipnn_dataset_free(d);
}

TEST(fused_train_step_matches_two_phase_api) {
    static const clipnn_clip_rule rules[] = {
        CLIPNN_CLIP_NONE,     CLIPNN_CLIP_NORM,           CLIPNN_CLIP_NORM_TORCH, CLIPNN_CLIP_NORM_GROUP,
        CLIPNN_CLIP_ADAPTIVE, CLIPNN_CLIP_ADAPTIVE_LAYER, CLIPNN_CLIP_AGC,        CLIPNN_CLIP_PERCENTILE,
        CLIPNN_CLIP_PER_SAMPLE};
    int saved = clipnn_get_threads();
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    for (int threads = 1; threads <= 2; threads++) {
        clipnn_set_threads(threads);
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            compare_rule(rules[r], threads, N_EX);
            compare_rule(rules[r], threads, 1);
        }
    }
    clipnn_set_threads(saved);
    clipnn_parallel_macs = saved_macs;
}

/* A batch of one takes the rank-one kernels and the Gram form of the unit
 * norms (||d_j a|| = |d_j| ||a||): the loss gradient and the per-group
 * norms against the double reference. */
TEST(batch_of_one_gradient_matches_reference) {
    clipnn_dataset *d = data();
    clipnn_model *m = model();
    int saved = clipnn_get_threads();
    size_t saved_macs = clipnn_parallel_macs;
    clipnn_parallel_macs = 0;
    clipnn_set_threads(2);
    clipnn_loss_options lo = clipnn_loss_options_default();
    size_t P = clipnn_model_n_params(m);
    double xd[DIM], yd[1], *g = calloc(P, sizeof *g);
    for (int j = 0; j < DIM; j++) xd[j] = clipnn_dataset_x(d)[3 * DIM + j];
    yd[0] = clipnn_dataset_y(d)[3];
    CHECK_OK(clipnn_loss_grad(m, &lo, clipnn_dataset_x(d) + 3 * DIM, clipnn_dataset_y(d) + 3, 1, NULL, NULL));
    CHECK_OK(clipnn_reference_loss_grad(m, NULL, &lo, xd, yd, 1, NULL, NULL, g, NULL));
    const float *gf = clipnn_model_grads(m);
    double scale = 0;
    for (size_t i = 0; i < P; i++) scale = fmax(scale, fabs(g[i]));
    /* float32 through three layers of width <= 20: 6e-8 * 20 * 3 relative */
    for (size_t i = 0; i < P; i++) CHECK_NEAR(gf[i], g[i], 4e-6 * scale);
    free(g);
    clipnn_set_threads(saved);
    clipnn_parallel_macs = saved_macs;
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}
