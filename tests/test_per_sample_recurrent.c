/* DP-SGD per-sample clipping of models with recurrent layers, through the
 * public API: the per-example norms and the clipped mean gradient against
 * a naive computation (one clipnn_loss_grad per example, each gradient
 * clipped to C on its own, averaged), for every kind, one and two
 * recurrent layers, many-to-one and many-to-many (an example is a whole
 * sequence, all its steps); the noise's scale; the workspace rules; steps
 * that allocate nothing (by hand and in clipnn_train); the tool. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rec_fixture.h"
#include "clipnn.h"
#include "ref_file.h"

typedef struct {
    clipnn_layer_kind kind;
    size_t layers, in, hidden, steps, batch, classes;
    int every_step;
    clipnn_loss loss;
} dp_case;

static clipnn_model *make_model(const dp_case *c) {
    return rec_fixture_model(c->kind, c->layers, c->in, c->hidden, c->steps, c->classes, c->every_step);
}

/* Targets per example: one row, or one per step. */
static size_t target_rows(const dp_case *c) { return c->every_step ? c->steps : 1; }
/* Target values per example: a class per row, or every output of a row. */
static size_t target_values(const dp_case *c) {
    return target_rows(c) * (c->loss == CLIPNN_LOSS_MSE ? c->classes : 1);
}

/* Inputs in [-1, 1]; classes, or values in [-1, 1] for MSE. */
static void make_batch(const dp_case *c, uint64_t seed, float *x, float *y) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < c->batch * c->steps * c->in; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    for (size_t r = 0; r < c->batch * target_values(c); r++)
        y[r] = c->loss == CLIPNN_LOSS_MSE ? (float)sin(0.7 * (double)r + (double)seed)
                                          : (float)((r * 7 + seed) % c->classes);
}

/* The float path's error bound on a gradient, in units of u = 2^-24 of its
 * largest entry, as the recurrent model tests derive it: two roundings per
 * multiply-add along the longest chain (every layer and step, fan-in n plus
 * the gate arithmetic) plus the head's and the loss's 64. */
static double float_k(const dp_case *c) {
    double n = (double)(c->in > c->hidden ? c->in : c->hidden) + (double)c->hidden + 2;
    return 2.0 * (double)(c->layers + 2) * (double)c->steps * (n + 8) + 64;
}

static double max_abs_f(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)v[i]));
    return m;
}

/* Worst errors seen, relative to each check's scale (printed when verbose). */
static double worst_norm, worst_grad;

typedef struct {
    double *norm, *scale, *factor; /* [batch] per example: ||g_b||, max |g_b|, min(1, C / ||g_b||) */
    double *sum;                   /* [P] the clipped mean, sum_b factor_b g_b / B */
    double C;
} naive_result;

/* Each example alone through clipnn_loss_grad: its gradient's norm, then
 * the mean of the gradients clipped to C; C the median norm, so that some
 * examples are clipped and some are not. */
static void naive_clip(clipnn_model *m, const dp_case *c, const float *x, const float *y, naive_result *r) {
    size_t P = clipnn_model_n_params(m), B = c->batch, nx = c->steps * c->in;
    float *g = malloc(B * P * sizeof *g);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = c->loss;
    for (size_t b = 0; b < B; b++) {
        CHECK_OK(clipnn_loss_grad(m, &lo, x + b * nx, y + b * target_values(c), 1, NULL, NULL));
        memcpy(g + b * P, clipnn_model_grads(m), P * sizeof *g);
        r->norm[b] = clipnn_norm(g + b * P, P, 2.0);
        r->scale[b] = max_abs_f(g + b * P, P);
    }
    double *sorted = malloc(B * sizeof *sorted);
    memcpy(sorted, r->norm, B * sizeof *sorted);
    for (size_t i = 1; i < B; i++)
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    r->C = B ? sorted[B / 2] : 0; /* B >= 1 in every case; the guard tells GCC that sorted[B / 2] was written */
    memset(r->sum, 0, P * sizeof *r->sum);
    for (size_t b = 0; b < B; b++) {
        r->factor[b] = r->norm[b] > r->C ? r->C / r->norm[b] : 1.0;
        for (size_t j = 0; j < P; j++) r->sum[j] += r->factor[b] * g[b * P + j] / (double)B;
    }
    free(sorted), free(g);
}

/* Both sides are float computations of the same exact values: a gradient's
 * entries within k u of its largest entry S_b (float_k), its norm within
 * sqrt(P) k u S_b, a factor C / ||g_b|| within the norm's relative error;
 * the mean adds B terms (B u more). Tolerances twice those bounds. */
static void check_case(const dp_case *c) {
    clipnn_model *m = make_model(c);
    if (!m) return;
    size_t P = clipnn_model_n_params(m), B = c->batch;
    float *x = malloc(B * c->steps * c->in * sizeof *x), *y = malloc(B * target_values(c) * sizeof *y);
    double *buf = calloc(4 * B + P, sizeof *buf), norms[16];
    naive_result r = {buf, buf + B, buf + 2 * B, buf + 3 * B, 0};
    make_batch(c, 3 + c->steps, x, y);
    naive_clip(m, c, x, y, &r);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = c->loss;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    const double k = float_k(c), root_p = sqrt((double)P);
    double scale = 0;
    int unclipped = 0;
    for (size_t b = 0; b < B; b++) {
        double tol = 2 * root_p * k * U * r.scale[b], err = fabs(norms[b] - r.norm[b]);
        worst_norm = fmax(worst_norm, err / r.norm[b]);
        CHECK_MSG(err <= tol, "%s layers %zu every_step %d T %zu example %zu: norm %.9g, alone %.9g (tol %.3g)",
                  clipnn_layer_kind_name(c->kind), c->layers, c->every_step, c->steps, b, norms[b], r.norm[b], tol);
        scale += r.factor[b] * r.scale[b] / (double)B;
        unclipped += r.factor[b] == 1.0;
    }
    clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.lambda = r.C;
    clipnn_clipper *clip = NULL;
    clipnn_clip_record rec = {0};
    CHECK_OK(clipnn_clipper_create(&clip, m, &o));
    CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, &rec));
    CHECK(rec.clipped == 1 && unclipped > 0 && unclipped < (int)B);
    double tol = 2 * (k * (1 + root_p) + (double)B) * U * scale, err = 0;
    for (size_t j = 0; j < P; j++) err = fmax(err, fabs(clipnn_model_grads(m)[j] - r.sum[j]));
    worst_grad = fmax(worst_grad, err / scale);
    CHECK_MSG(err <= tol, "%s layers %zu every_step %d T %zu: clipped mean off by %.3g (tol %.3g, scale %.3g)",
              clipnn_layer_kind_name(c->kind), c->layers, c->every_step, c->steps, err, tol, scale);
    clipnn_clipper_free(clip);
    free(x), free(y), free(buf);
    clipnn_model_free(m);
}

static const clipnn_layer_kind KINDS[4] = {CLIPNN_LAYER_RNN, CLIPNN_LAYER_RNN_RELU, CLIPNN_LAYER_LSTM,
                                           CLIPNN_LAYER_GRU};

/* T 2 takes the ghost form for most shared weights (recurrent and, many to
 * many, the head's first layer), T 5 the materialised one. */
TEST(per_sample_recurrent_matches_naive) {
    for (int k = 0; k < 4; k++)
        for (size_t layers = 1; layers <= 2; layers++)
            for (int every = 0; every <= 1; every++)
                for (size_t T = 2; T <= 5; T += 3) {
                    dp_case c = {KINDS[k], layers, 3, 6, T, 5, 3, every, CLIPNN_LOSS_XENT};
                    check_case(&c);
                }
    /* mean squared error: an example's loss is the mean over its steps and outputs */
    for (int every = 0; every <= 1; every++) {
        dp_case c = {CLIPNN_LAYER_LSTM, 2, 3, 6, 4, 6, 2, every, CLIPNN_LOSS_MSE};
        check_case(&c);
    }
    if (getenv("CLIPNN_TEST_VERBOSE"))
        fprintf(stderr, "    worst relative error: per-example norms %.3g, clipped mean gradient %.3g\n", worst_norm,
                worst_grad);
}

/* The workspace rules of the MLP hold: the norms need a backward, and
 * clipping consumes it. */
TEST(per_sample_recurrent_workspace_rules) {
    dp_case c = {CLIPNN_LAYER_GRU, 2, 3, 5, 4, 3, 3, 1, CLIPNN_LOSS_XENT};
    clipnn_model *m = make_model(&c);
    if (!m) return;
    float x[3 * 4 * 3], y[3 * 4];
    double norms[3];
    make_batch(&c, 1, x, y);
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_forward(m, x, 3, NULL));
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, 3, NULL, NULL));
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.lambda = 1e-3;
    clipnn_clipper *clip = NULL;
    CHECK_OK(clipnn_clipper_create(&clip, m, &o));
    CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, NULL));
    CHECK(clipnn_per_example_grad_norms(m, norms) == CLIPNN_ERR_STATE);
    CHECK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, NULL) == CLIPNN_ERR_STATE);
    clipnn_clipper_free(clip);
    clipnn_model_free(m);
}

/* DP-SGD noise on a recurrent model, as the MLP test checks it: with every
 * example inside C (nothing clipped) the step adds noise of mean 0 and
 * standard deviation sigma C / B per coordinate to the mean gradient. With
 * n coordinates the sample sd has relative error ~1/sqrt(2n); 5 of those
 * tell sigma C / B from a wrong factor of B, C or 2. The same seed gives
 * the same noise. */
TEST(per_sample_recurrent_noise_scale) {
    for (int every = 0; every <= 1; every++) {
        dp_case c = {CLIPNN_LAYER_LSTM, 1, 3, 16, 4, 4, 4, every, CLIPNN_LOSS_XENT};
        clipnn_model *m = make_model(&c);
        if (!m) return;
        size_t n = clipnn_model_n_params(m);
        float x[4 * 4 * 3], y[4 * 4], *clean = malloc(n * sizeof *clean), *first = malloc(n * sizeof *first);
        make_batch(&c, 5, x, y);
        clipnn_loss_options lo = clipnn_loss_options_default();
        const double C = 1e3, sigma = 0.02;
        clipnn_clip_options o = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
        o.lambda = C;
        o.noise_multiplier = sigma;
        o.noise_seed = 11;
        for (int run = 0; run < 2; run++) {
            clipnn_clipper *clip = NULL;
            clipnn_clip_record r = {0};
            CHECK_OK(clipnn_loss_grad(m, &lo, x, y, 4, NULL, NULL));
            memcpy(clean, clipnn_model_grads(m), n * sizeof *clean);
            CHECK_OK(clipnn_clipper_create(&clip, m, &o));
            CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, &r));
            clipnn_clipper_free(clip);
            CHECK(r.clipped == 0);
            const float *g = clipnn_model_grads(m);
            if (run == 1) {
                CHECK(memcmp(first, g, n * sizeof *first) == 0);
                break;
            }
            double mean = 0, sq = 0;
            for (size_t j = 0; j < n; j++) {
                double e = (double)g[j] - clean[j];
                mean += e / (double)n, sq += e * e / (double)n;
            }
            double sd = sqrt(sq - mean * mean), want = sigma * C / 4;
            CHECK_NEAR(sd, want, 5.0 / sqrt(2.0 * (double)n) * want);
            CHECK_NEAR(mean, 0.0, 5.0 * want / sqrt((double)n));
            memcpy(first, g, n * sizeof *first);
        }
        free(clean), free(first);
        clipnn_model_free(m);
    }
}

/* After a warm-up step, loss and gradient, per-sample clipping with noise
 * and the update allocate nothing, at the reserved batch and below it. */
TEST(per_sample_recurrent_steps_allocate_nothing) {
    for (int every = 0; every <= 1; every++) {
        dp_case c = {CLIPNN_LAYER_GRU, 2, 3, 8, 5, 4, 3, every, CLIPNN_LOSS_XENT};
        clipnn_model *m = make_model(&c);
        if (!m) return;
        CHECK_OK(clipnn_model_reserve(m, 4));
        clipnn_clip_options co = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
        co.lambda = 0.05;
        co.noise_multiplier = 0.5;
        clipnn_optim_options oo = clipnn_optim_options_default();
        clipnn_clipper *clip = NULL;
        clipnn_optimizer *opt = NULL;
        CHECK_OK(clipnn_clipper_create(&clip, m, &co));
        CHECK_OK(clipnn_optimizer_create(&opt, clipnn_model_n_params(m), &oo));
        float x[4 * 5 * 3], y[4 * 5];
        make_batch(&c, 2, x, y);
        clipnn_loss_options lo = clipnn_loss_options_default();
        uint64_t before = 0;
        for (int step = 0; clip && opt && step < 6; step++) {
            if (step == 1) before = clipnn_allocation_count();
            size_t B = step % 2 ? 4 : 3;
            clipnn_clip_record rec;
            CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
            CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, NULL, NULL, &rec));
            CHECK(rec.clipped == 1);
            CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), 0.1, 1.0));
        }
        CHECK(clipnn_allocation_count() == before);
        clipnn_clipper_free(clip);
        clipnn_optimizer_free(opt);
        clipnn_model_free(m);
    }
}

/* clipnn_train's step (the fused path) with per-sample clipping on an
 * LSTM: 40 steps allocate no more than 20 (the setup allocates, a step
 * does not), and the run stays finite. */
static uint64_t train_allocations(uint64_t steps, size_t batch) {
    enum { N = 48, T = 5, D = 2 };
    float x[N * T * D], y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < T * D; j++) x[i * T * D + j] = (float)((i * 7 + j * 3) % 11) / 11.0f - 0.4f;
        y[i] = (float)(i % 3);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N, T * D, 3, 1, &d));
    clipnn_layer_spec ls[2] = {{CLIPNN_LAYER_LSTM, 6, CLIPNN_ACT_IDENTITY},
                               {CLIPNN_LAYER_DENSE, 3, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {T, D, 0};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 2, ls));
    if (!m || !d) return 0;
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 3));
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.lambda = 0.1;
    o.clip.noise_multiplier = 0.3;
    o.batch = batch;
    o.steps = steps;
    o.replacement = 1;
    clipnn_train_result r;
    uint64_t before = clipnn_allocation_count();
    clipnn_status s = clipnn_train(m, d, NULL, &o, &r);
    uint64_t used = clipnn_allocation_count() - before;
    CHECK_MSG(s == CLIPNN_OK && r.steps == steps && isfinite(r.train_loss), "status %d (%s), loss %g", (int)s,
              clipnn_last_error(), r.train_loss);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    return used;
}

TEST(per_sample_recurrent_training_steps_allocate_nothing) {
    for (size_t batch = 1; batch <= 16; batch += 15) {
        uint64_t a = train_allocations(20, batch), b = train_allocations(40, batch);
        CHECK_MSG(a == b && a > 0, "batch %zu: %llu allocations in 20 steps, %llu in 40", batch,
                  (unsigned long long)a, (unsigned long long)b);
    }
}

/* The tool takes the rule for a recurrent model: an LSTM on the digits (8
 * steps of 8 pixels) with per-sample clipping learns (3 epochs: 0.59-0.67
 * test accuracy over seeds 1-3, chance 0.1), and with noise it still runs. */
TEST(per_sample_recurrent_through_the_tool) {
    const char *out;
    CHECK(check_run_tool("train --arch lstm:16-10 --clip per-sample --lambda 1 --epochs 3 --json", &out) == 0);
    const char *acc = strstr(out, "\"test_accuracy\":");
    double a = acc ? strtod(acc + 16, NULL) : 0;
    CHECK_MSG(a > 0.4, "lstm on the digits, per-sample clipping: test accuracy %g after 3 epochs\n%s", a, out);
    CHECK(check_run_tool("train --arch gru:8-10 --clip per-sample --noise 1 --epochs 1", &out) == 0);
}
