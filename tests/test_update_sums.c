/* The sums clipnn_train's update takes while it writes theta (the step
 * record's theta_norm and distance from the start, the adaptive rules'
 * ||theta||) against the same quantities summed in double over the
 * parameters, and the float-partial kernels behind them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sumsq_ref.h"
#include "clipnn.h"
#include "base/base.h" /* clipnn_parallel_macs: split the update on a small model */
#include "nn/nn.h"     /* the kernels */
#include "mlp_fixture.h"

enum { N_EX = 48, DIM = 40, CLASSES = 4 };

/* Float partial sums of at most 8 squares a lane, two more roundings to
 * combine the four vectors, one for each difference (SUMSQ_TOL, sumsq_ref.h). */

/* Lengths around the kernel's blocks (64 floats a step, 512 a block),
 * values of mixed sign and scale. */
TEST(sumsq_kernels_within_float_partial_bound) {
    const size_t lens[] = {0, 1, 15, 63, 64, 65, 130, 511, 512, 513, 784, 1024, 1100, 4099};
    size_t max = 4099;
    float *v = malloc(max * sizeof *v), *c = malloc(max * sizeof *c);
    CHECK(v && c);
    for (size_t i = 0; i < max; i++) {
        v[i] = sinf(0.731f * (float)i) * (1.0f + (float)(i % 7));
        c[i] = v[i] + 0.01f * cosf(0.37f * (float)i);
    }
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        size_t n = lens[k];
        double want = sumsq_double(v, NULL, n), got = clipnn_sumsq_blocked(v, n);
        CHECK_MSG(fabs(got - want) <= SUMSQ_TOL * want, "n %zu: sum of squares %.17g, want %.17g", n, got, want);
        want = sumsq_double(v, c, n), got = clipnn_sumsq_diff_blocked(v, c, n);
        CHECK_MSG(fabs(got - want) <= SUMSQ_TOL * want + 1e-30, "n %zu: distance sum %.17g, want %.17g", n, got, want);
    }
    free(v), free(c);
}

typedef struct {
    clipnn_model *m;
    int theta_before; /* the rule reports ||theta|| before the step (adaptive) */
    float *theta0, *before; /* [P]: the start, the parameters before the step */
    double worst_dist, worst_theta; /* relative differences */
    int rows;
} record_check;

/* Every step: the record against the parameters after the step (before
 * it for the adaptive rule's theta_norm), summed in double. */
static void on_step(const clipnn_step_record *r, void *user) {
    record_check *rc = user;
    size_t P = clipnn_model_n_params(rc->m);
    const float *p = clipnn_model_params((clipnn_model *)rc->m);
    double dist = sqrt(sumsq_double(p, rc->theta0, P));
    double theta = sqrt(sumsq_double(rc->theta_before ? rc->before : p, NULL, P));
    double e = fabs(r->dist_from_start - dist) / (dist > 0 ? dist : 1);
    if (!(e <= rc->worst_dist)) rc->worst_dist = e;
    e = fabs(r->clip.theta_norm - theta) / theta;
    if (!(e <= rc->worst_theta)) rc->worst_theta = e;
    memcpy(rc->before, p, P * sizeof *p);
    rc->rows++;
}

static clipnn_dataset *data(void) {
    float x[N_EX * DIM], y[N_EX];
    for (int i = 0; i < N_EX; i++) {
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = sinf(0.37f * (float)(i * DIM + j)) * 1.5f;
        y[i] = (float)((i * 5) % CLASSES);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N_EX, DIM, CLASSES, 1, &d));
    return d;
}

/* The model whose steps the record checks, with copies of its starting
 * parameters (the distance's origin, the step's "before"). 150 hidden
 * units: rows of 40 and 150 floats (a partial 64-step, a whole one and a
 * partial), 150 x 40 + 50 x 150 parameters to split. */
static record_check open_record_check(int theta_before) {
    clipnn_model *m = fixture_mlp(DIM, 150, 50, CLASSES, CLIPNN_ACT_TANH, 3);
    size_t P = clipnn_model_n_params(m);
    record_check rc = {.m = m, .theta_before = theta_before};
    rc.theta0 = malloc(P * sizeof *rc.theta0), rc.before = malloc(P * sizeof *rc.before);
    CHECK(rc.theta0 && rc.before);
    memcpy(rc.theta0, clipnn_model_params(m), P * sizeof *rc.theta0);
    memcpy(rc.before, rc.theta0, P * sizeof *rc.before);
    return rc;
}

static void close_record_check(record_check *rc) {
    free(rc->theta0), free(rc->before);
    clipnn_model_free(rc->m);
}

static void check_rule(clipnn_clip_rule rule, size_t batch, int threads) {
    clipnn_set_threads(threads);
    clipnn_dataset *d = data();
    record_check rc = open_record_check(rule == CLIPNN_CLIP_ADAPTIVE);
    clipnn_model *m = rc.m;
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(rule);
    o.clip.lambda = rule == CLIPNN_CLIP_PROJECT ? 0.3 : o.clip.lambda;
    o.batch = batch;
    o.steps = 25;
    o.on_step = on_step;
    o.user = &rc;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    const char *name = clipnn_clip_rule_name(rule);
    CHECK_MSG(rc.rows == 25, "%s: %d rows", name, rc.rows);
    CHECK_MSG(rc.worst_dist <= SUMSQ_TOL, "%s, batch %zu, %d threads: distance from the start off by %.3g (relative)",
              name, batch, threads, rc.worst_dist);
    CHECK_MSG(rc.worst_theta <= SUMSQ_TOL, "%s, batch %zu, %d threads: theta_norm off by %.3g (relative)", name,
              batch, threads, rc.worst_theta);
    close_record_check(&rc);
    clipnn_dataset_free(d);
    clipnn_set_threads(1);
}

/* Batch 1 takes the update that forms dW's rows itself; the projection
 * moves theta after the update (its record reads the parameters). */
TEST(step_record_norms_from_the_update_match_the_parameters) {
    const clipnn_clip_rule rules[] = {CLIPNN_CLIP_NONE, CLIPNN_CLIP_NORM, CLIPNN_CLIP_AGC,
                                      CLIPNN_CLIP_ADAPTIVE_LAYER, CLIPNN_CLIP_ADAPTIVE, CLIPNN_CLIP_PROJECT};
    size_t saved = clipnn_parallel_macs;
    clipnn_parallel_macs = 0; /* split every pass on two threads */
    for (size_t k = 0; k < sizeof rules / sizeof *rules; k++)
        for (size_t batch = 1; batch <= 8; batch += 7)
            for (int threads = 1; threads <= 2; threads++) check_rule(rules[k], batch, threads);
    clipnn_parallel_macs = saved;
}

/* A step that moves the parameters by about 1e21: the float partials of
 * the squared distance overflow (past 3.4e38), and the record must still
 * give the finite distance (the double pass takes over), not inf. */
TEST(step_record_distance_past_float_squares_is_finite) {
    clipnn_dataset *d = data();
    record_check rc = open_record_check(0);
    clipnn_model *m = rc.m;
    size_t P = clipnn_model_n_params(m);
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_NONE);
    o.schedule.a0 = 1e22;
    o.batch = 8;
    o.steps = 1;
    o.on_step = on_step;
    o.user = &rc;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    double dist = sqrt(sumsq_double(clipnn_model_params(m), rc.theta0, P));
    CHECK_MSG(dist > 1.9e19 && isfinite(dist), "the step moved only %g", dist);
    CHECK_MSG(rc.rows == 1 && rc.worst_dist <= 1e-12, "distance off by %.3g (relative)", rc.worst_dist);
    close_record_check(&rc);
    clipnn_dataset_free(d);
}
