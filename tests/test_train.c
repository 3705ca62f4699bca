/* The training loop: determinism, non-finite policies during a diverging
 * run, the stability telemetry of the step record and Theorem 1's H(theta). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

static clipnn_model *digits_model(clipnn_act act, uint64_t seed, const clipnn_dataset *d) {
    size_t widths[2] = {32, 10};
    clipnn_act acts[2] = {act, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, clipnn_dataset_dim(d), 2, widths, acts)) return NULL;
    clipnn_model_init(m, act == CLIPNN_ACT_RELU ? CLIPNN_INIT_HE : CLIPNN_INIT_XAVIER, seed);
    return m;
}

static int load_digits(clipnn_dataset **train, clipnn_dataset **test) {
    clipnn_data_options d = clipnn_data_options_default();
    return clipnn_dataset_load("digits", &d, train, test);
}

static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

TEST(train_same_seed_same_run_bit_for_bit) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    for (int replacement = 0; replacement < 2; replacement++) {
        clipnn_model *a = digits_model(CLIPNN_ACT_TANH, 3, train), *b = digits_model(CLIPNN_ACT_TANH, 3, train);
        clipnn_train_options o = clipnn_train_options_default();
        o.steps = 60;
        o.replacement = replacement;
        o.clip.rule = CLIPNN_CLIP_NORM;
        o.optim.momentum = 0.9;
        clipnn_train_result ra, rb;
        CHECK_OK(clipnn_train(a, train, NULL, &o, &ra));
        CHECK_OK(clipnn_train(b, train, NULL, &o, &rb));
        size_t n = clipnn_model_n_params(a);
        CHECK(memcmp(clipnn_model_params(a), clipnn_model_params(b), n * sizeof(float)) == 0);
        /* another seed draws other batches: a different run */
        clipnn_model *c = digits_model(CLIPNN_ACT_TANH, 3, train);
        o.seed = 2;
        CHECK_OK(clipnn_train(c, train, NULL, &o, &rb));
        CHECK(memcmp(clipnn_model_params(a), clipnn_model_params(c), n * sizeof(float)) != 0);
        clipnn_model_free(a), clipnn_model_free(b), clipnn_model_free(c);
    }
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* Plain SGD at lr 4 on a ReLU net diverges on the digits (README). Under the
 * error and skip policies no NaN or Inf may reach the parameters. */
TEST(train_nonfinite_policies_keep_parameters_finite) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    const clipnn_nonfinite policies[2] = {CLIPNN_NONFINITE_ERROR, CLIPNN_NONFINITE_SKIP};
    for (int k = 0; k < 2; k++) {
        clipnn_model *m = digits_model(CLIPNN_ACT_RELU, 1, train);
        clipnn_train_options o = clipnn_train_options_default();
        o.optim = clipnn_optim_options_default(); /* plain SGD */
        o.schedule.a0 = 40.0;
        o.steps = 300;
        o.clip.rule = CLIPNN_CLIP_NONE;
        o.clip.nonfinite = policies[k];
        clipnn_train_result r;
        clipnn_status s = clipnn_train(m, train, test, &o, &r);
        CHECK(all_finite(clipnn_model_params(m), clipnn_model_n_params(m)));
        if (policies[k] == CLIPNN_NONFINITE_ERROR) {
            CHECK(s == CLIPNN_ERR_NONFINITE);
            CHECK(r.diverged == 1 && r.diverged_step < 300);
        } else {
            CHECK_MSG(r.skipped_steps > 0, "no step skipped at lr 40 (status %d)", (int)s);
        }
        clipnn_model_free(m);
    }
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* What a log sink heard, and which steps the step records marked skipped. */
enum { LOG_STEPS = 300 };
typedef struct {
    int warnings, info, unparsed;
    char last_warning[256];
    unsigned char warned[LOG_STEPS], skipped[LOG_STEPS];
} log_capture;

static void capture_log(int level, const char *message, void *user) {
    log_capture *c = user;
    if (level == 0) {
        c->info++;
        return;
    }
    c->warnings++;
    snprintf(c->last_warning, sizeof c->last_warning, "%s", message);
    unsigned long long step;
    if (sscanf(message, "train: step %llu skipped", &step) == 1 && step < LOG_STEPS)
        c->warned[step] = 1;
    else
        c->unparsed++;
}

static void capture_skipped(const clipnn_step_record *r, void *user) {
    log_capture *c = user;
    if (r->clip.skipped && r->step < LOG_STEPS) c->skipped[r->step] = 1;
}

/* Under the skip policy every skipped step is one warning naming that step
 * and what was not finite; a run without skips is silent. */
TEST(train_skip_policy_warns_of_each_skipped_step) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    for (int diverge = 0; diverge < 2; diverge++) {
        clipnn_model *m = digits_model(CLIPNN_ACT_RELU, 1, train);
        clipnn_train_options o = clipnn_train_options_default();
        o.schedule.a0 = diverge ? 40.0 : 0.05;
        o.steps = LOG_STEPS;
        o.clip.rule = CLIPNN_CLIP_NONE;
        o.clip.nonfinite = CLIPNN_NONFINITE_SKIP;
        log_capture c;
        memset(&c, 0, sizeof c);
        o.on_step = capture_skipped;
        o.user = &c;
        clipnn_set_log(capture_log, &c);
        clipnn_train_result r;
        clipnn_status s = clipnn_train(m, train, test, &o, &r);
        clipnn_set_log(NULL, NULL);
        CHECK_MSG(s == CLIPNN_OK, "status %d: %s", (int)s, clipnn_last_error());
        CHECK_MSG((uint64_t)c.warnings == r.skipped_steps, "%d warnings for %llu skipped steps", c.warnings,
                  (unsigned long long)r.skipped_steps);
        CHECK_MSG(c.unparsed == 0, "a warning names no step: %s", c.last_warning);
        CHECK_MSG(memcmp(c.warned, c.skipped, LOG_STEPS) == 0, "the warnings name other steps than were skipped");
        CHECK(c.info == 0);
        if (diverge) {
            CHECK_MSG(r.skipped_steps > 0, "no step skipped at lr 40");
            CHECK_MSG(strstr(c.last_warning, "loss is") || strstr(c.last_warning, "gradient norm is") ||
                          strstr(c.last_warning, "float range"),
                      "the warning does not say what was not finite: %s", c.last_warning);
        }
        clipnn_model_free(m);
    }
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

typedef struct {
    double max_excess; /* max of dist - det_bound */
    double lam;
    uint64_t rows;
    double last_sum_lr, last_sum_lr2, last_lemma;
    int clipped_steps_exact; /* steps whose length equals lr * lambda */
} telemetry;

static void on_step(const clipnn_step_record *r, void *user) {
    telemetry *t = user;
    double excess = r->dist_from_start - r->det_bound;
    if (excess > t->max_excess) t->max_excess = excess;
    t->rows++;
    t->last_sum_lr = r->sum_lr;
    t->last_sum_lr2 = r->sum_lr2;
    t->last_lemma = r->lemma1_bound;
}

/* Classic clipping with plain SGD makes every step at most a(t) lambda
 * long, so ||theta(t) - theta(0)|| <= lambda sum a(t) at every step
 * (float32 rounding of theta aside: 1e-5 relative of the bound). */
TEST(train_telemetry_deterministic_bound_and_sums) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    clipnn_model *m = digits_model(CLIPNN_ACT_TANH, 1, train);
    clipnn_train_options o = clipnn_train_options_default();
    o.optim = clipnn_optim_options_default(); /* plain SGD: the bound needs steps of at most a(t) lambda */
    o.schedule.kind = CLIPNN_SCHED_RM;
    o.schedule.a0 = 0.5;
    o.schedule.t0 = 10;
    o.schedule.power = 1;
    o.steps = 200;
    o.clip.rule = CLIPNN_CLIP_NORM;
    o.clip.lambda = 0.05;
    o.stability_m = 0.5;
    telemetry t = {.max_excess = -INFINITY};
    o.on_step = on_step;
    o.user = &t;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, train, NULL, &o, &r));
    CHECK(t.rows == 200);
    CHECK_MSG(t.max_excess <= 1e-5 * o.clip.lambda * t.last_sum_lr, "distance passes the bound by %g", t.max_excess);
    double s1 = 0, s2 = 0;
    for (uint64_t k = 0; k < 200; k++) {
        double a = clipnn_schedule_lr(&o.schedule, k);
        s1 += a, s2 += a * a;
    }
    CHECK_NEAR(t.last_sum_lr, s1, 1e-12 * s1);
    CHECK_NEAR(t.last_sum_lr2, s2, 1e-12 * s2);
    double lemma = 2 * exp(-2 * 0.25 / (s2 * 0.05 * 0.05));
    CHECK_NEAR(t.last_lemma, lemma, 1e-12 * lemma + 1e-300);
    clipnn_model_free(m);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* H(theta) = mean of g_i / c_i over the training set (Theorem 1), checked
 * against a direct computation example by example. */
TEST(train_expected_clipped_gradient) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    clipnn_model *m = digits_model(CLIPNN_ACT_TANH, 1, train);
    clipnn_train_options o = clipnn_train_options_default();
    o.steps = 50;
    o.clip.rule = CLIPNN_CLIP_NORM;
    o.clip.lambda = 0.5;
    o.expected_grad = 1;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, train, NULL, &o, &r));
    size_t n = clipnn_dataset_n(train), dim = clipnn_dataset_dim(train), P = clipnn_model_n_params(m);
    double *h = calloc(P, sizeof *h), *g = calloc(P, sizeof *g);
    for (size_t i = 0; i < n; i++) {
        const float *x = clipnn_dataset_x(train) + i * dim, *y = clipnn_dataset_y(train) + i;
        CHECK_OK(clipnn_loss_grad(m, &o.loss, x, y, 1, NULL, NULL));
        const float *gi = clipnn_model_grads(m);
        double norm = clipnn_norm(gi, P, 2), c = norm > 0.5 ? norm / 0.5 : 1;
        for (size_t j = 0; j < P; j++) h[j] += gi[j] / c / (double)n, g[j] += gi[j] / (double)n;
    }
    double hn = 0, gn = 0;
    for (size_t j = 0; j < P; j++) hn += h[j] * h[j], gn += g[j] * g[j];
    CHECK_NEAR(r.expected_clipped_grad_norm, sqrt(hn), 1e-5 * sqrt(hn));
    CHECK_NEAR(r.mean_grad_norm, sqrt(gn), 1e-5 * sqrt(gn));
    free(h), free(g);
    clipnn_model_free(m);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* A finite gradient times a huge step overflows float: under every policy
 * the optimizer keeps such parameters as they were, so none is NaN or Inf.
 * Output weights scaled by 1e30 make the logits ~1e30 (the loss stays
 * finite) and the first layer's gradient ~1e29 through unsaturated tanh
 * units (finite); times the step, 1e36, only the update overflows. */
TEST(train_overflowing_update_never_writes_inf) {
    clipnn_dataset *train = NULL, *test = NULL;
    CHECK_OK(load_digits(&train, &test));
    const clipnn_nonfinite policies[3] = {CLIPNN_NONFINITE_ERROR, CLIPNN_NONFINITE_SKIP, CLIPNN_NONFINITE_PROPAGATE};
    for (int k = 0; k < 3; k++) {
        clipnn_model *m = digits_model(CLIPNN_ACT_TANH, 1, train);
        clipnn_group out_w = clipnn_model_group(m, 2);
        for (size_t i = 0; i < out_w.size; i++) clipnn_model_params(m)[out_w.offset + i] *= 1e30f;
        clipnn_train_options o = clipnn_train_options_default();
        o.schedule.a0 = 1e36;
        o.optim.momentum = 0;
        o.steps = 50;
        o.clip.rule = CLIPNN_CLIP_NONE;
        o.clip.nonfinite = policies[k];
        clipnn_train_result r;
        clipnn_status s = clipnn_train(m, train, NULL, &o, &r);
        CHECK_MSG(all_finite(clipnn_model_params(m), clipnn_model_n_params(m)), "policy %d: non-finite parameters", k);
        if (policies[k] == CLIPNN_NONFINITE_SKIP) {
            CHECK(s == CLIPNN_OK && r.skipped_steps > 0);
            /* the mean loss counts the steps that were taken, never 0 from skipped ones */
            CHECK_MSG(isnan(r.train_loss) || r.train_loss > 0, "train loss %g", r.train_loss);
        } else {
            CHECK(r.diverged == 1);
        }
        clipnn_model_free(m);
    }
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}
