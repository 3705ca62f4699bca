/* Private training: Poisson sampling, the noise of a logical step, physical
 * batches, the accountant's epsilon per epoch and across a resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mlp_fixture.h"
#include "clipnn.h"

/* A regression set whose every example has gradient zero at theta = 0: a
 * linear model 5 -> 3 with zero parameters outputs 0, and the targets are 0,
 * so under MSE each per-example gradient is exactly zero, and with a step
 * size of 0 the parameters stay there: every step's gradient is the noise
 * alone. */
enum { ZN = 40, ZD = 5, ZK = 3 };

static clipnn_dataset *zero_data(void) {
    float x[ZN * ZD], y[ZN * ZK] = {0};
    for (int i = 0; i < ZN * ZD; i++) x[i] = (float)sin(0.7 * i + 1);
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, ZN, ZD, 0, ZK, &d));
    return d;
}

static clipnn_model *zero_model(void) {
    size_t w[1] = {ZK};
    clipnn_act a[1] = {CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, ZD, 1, w, a));
    if (m) memset(clipnn_model_params(m), 0, clipnn_model_n_params(m) * sizeof(float));
    return m;
}

enum { NOISE_STEPS = 4000 };

typedef struct {
    clipnn_model *m;
    size_t P, steps;
    double *g;             /* [NOISE_STEPS][P] each step's gradient */
    size_t *batch;         /* [NOISE_STEPS] */
} noise_log;

static void keep_gradient(const clipnn_step_record *r, void *user) {
    noise_log *l = user;
    if (l->steps >= NOISE_STEPS) return;
    const float *g = clipnn_model_grads(l->m);
    for (size_t j = 0; j < l->P; j++) l->g[l->steps * l->P + j] = g[j];
    l->batch[l->steps++] = r->batch_size;
}

/* The noise of a Poisson step: std sigma C / B (the expected batch B, not
 * the drawn one) on every coordinate, mean 0, independent across steps and
 * coordinates, also on the empty batches (q = 2/40: 7.7% of the steps draw
 * none). The batch sizes are binomial(40, 0.05): mean 2, variance 1.9.
 * Tolerances: 5 standard errors of each estimate over 4000 x 18 draws (the
 * sd's relative error 1/sqrt(2 n), a mean's sd/sqrt(n), a correlation's
 * 1/sqrt(n)). */
TEST(dp_poisson_noise_statistics) {
    clipnn_dataset *d = zero_data();
    clipnn_model *m = zero_model();
    if (!d || !m) return;
    noise_log l = {.m = m, .P = clipnn_model_n_params(m)};
    l.g = malloc(NOISE_STEPS * l.P * sizeof *l.g);
    l.batch = malloc(NOISE_STEPS * sizeof *l.batch);
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.lambda = 0.5;
    o.clip.noise_multiplier = 1.5;
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.schedule.a0 = 0;
    o.optim.momentum = 0;
    o.batch = 2;
    o.steps = NOISE_STEPS;
    o.on_step = keep_gradient;
    o.user = &l;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK(r.sampling == CLIPNN_SAMPLING_POISSON && l.steps == NOISE_STEPS);
    double n = (double)NOISE_STEPS * (double)l.P, want = 1.5 * 0.5 / 2;
    double mean = 0, sq = 0, cross_step = 0, cross_coord = 0, empty_sq = 0, empties = 0, bm = 0, bv = 0;
    for (size_t t = 0; t < l.steps; t++) {
        bm += (double)l.batch[t] / NOISE_STEPS;
        bv += (double)l.batch[t] * (double)l.batch[t] / NOISE_STEPS;
        for (size_t j = 0; j < l.P; j++) {
            double v = l.g[t * l.P + j];
            mean += v / n, sq += v * v / n;
            if (t > 0) cross_step += v * l.g[(t - 1) * l.P + j] / n;
            if (j > 0) cross_coord += v * l.g[t * l.P + j - 1] / n;
            if (l.batch[t] == 0) empty_sq += v * v, empties += 1;
        }
    }
    double sd = sqrt(sq - mean * mean);
    CHECK_NEAR(sd, want, 5 * want / sqrt(2 * n));
    CHECK_NEAR(mean, 0, 5 * want / sqrt(n));
    CHECK_NEAR(cross_step / (want * want), 0, 5 / sqrt(n));
    CHECK_NEAR(cross_coord / (want * want), 0, 5 / sqrt(n));
    CHECK(empties > 0);
    CHECK_NEAR(sqrt(empty_sq / empties), want, 5 * want / sqrt(2 * empties));
    CHECK_NEAR(bm, 2, 5 * sqrt(1.9 / NOISE_STEPS));
    CHECK_NEAR(bv - bm * bm, 1.9, 5 * 1.9 * sqrt(2.0 / NOISE_STEPS));
    free(l.g), free(l.batch);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* A learning problem on the digits for the runs below. */
static clipnn_train_options dp_options(void) {
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.noise_multiplier = 1.1;
    o.batch = 64;
    o.epochs = 2;
    o.dp_delta = 1e-4;
    return o;
}

static clipnn_model *digits_model(const clipnn_dataset *d) { return fixture_mlp1(clipnn_dataset_dim(d), 32, 10, 5); }

typedef struct {
    double eps[8];
    size_t n;
} epoch_log;

static void keep_epsilon(const clipnn_epoch_record *r, void *user) {
    epoch_log *l = user;
    if (l->n < 8) l->eps[l->n++] = r->epsilon;
}

/* Each epoch's epsilon is the accountant's for the steps so far (the sum of
 * the per-step RDP against clipnn_dp_epsilon's product: 1e-12 relative),
 * and a run split by a checkpoint ends where the whole run does, epsilon
 * and parameters alike. */
TEST(dp_epsilon_per_epoch_and_resume) {
    clipnn_dataset *train = NULL, *test = NULL;
    clipnn_data_options dopt = clipnn_data_options_default();
    CHECK_OK(clipnn_dataset_load("digits", &dopt, &train, &test));
    if (!train) return;
    clipnn_model *whole = digits_model(train), *split = digits_model(train);
    clipnn_train_options o = dp_options();
    epoch_log l = {{0}, 0};
    o.on_epoch = keep_epsilon;
    o.user = &l;
    clipnn_train_result r;
    CHECK_OK(clipnn_train(whole, train, NULL, &o, &r));
    size_t n = clipnn_dataset_n(train), per_epoch = (n + 63) / 64;
    double q = 64.0 / (double)n, want;
    CHECK(l.n == 2);
    for (size_t e = 0; e < l.n; e++) {
        CHECK_OK(clipnn_dp_epsilon(q, 1.1, (e + 1) * per_epoch, 1e-4, &want, NULL));
        CHECK_NEAR(l.eps[e], want, 1e-12 * want);
    }
    CHECK(r.epsilon == l.eps[1] && r.delta == 1e-4 && r.sampling_rate == q);

    clipnn_train_state *st = NULL;
    CHECK_OK(clipnn_train_state_create(&st));
    o.on_epoch = NULL;
    o.state = st;
    o.epochs = 1;
    clipnn_train_result r1, r2;
    CHECK_OK(clipnn_train(split, train, NULL, &o, &r1));
    const char *path = check_tmp_path("dp_resume.ckpt");
    CHECK_OK(clipnn_checkpoint_save(path, split, st));
    clipnn_model_free(split);
    clipnn_train_state_free(st);
    split = NULL, st = NULL;
    CHECK_OK(clipnn_checkpoint_load(path, &split, &st));
    if (!split) return;
    clipnn_privacy_spent spent;
    CHECK_OK(clipnn_train_state_privacy(st, &spent));
    CHECK(spent.epsilon == r1.epsilon && spent.delta == 1e-4 && spent.steps == per_epoch);
    CHECK(spent.sampling_rate == q && spent.noise_multiplier == 1.1 && spent.poisson);
    o.state = st;
    o.epochs = 2;
    CHECK_OK(clipnn_train(split, train, NULL, &o, &r2));
    CHECK(r1.epsilon < r2.epsilon);
    CHECK(r2.epsilon == r.epsilon);
    size_t P = clipnn_model_n_params(whole);
    CHECK(memcmp(clipnn_model_params(whole), clipnn_model_params(split), P * sizeof(float)) == 0);
    /* the resumed run must keep its noise: refused without it */
    clipnn_train_state *st2 = NULL;
    CHECK_OK(clipnn_train_state_create(&st2));
    o.state = st2;
    o.epochs = 1;
    CHECK_OK(clipnn_train(split, train, NULL, &o, &r1));
    o.clip.noise_multiplier = 0.9;
    o.epochs = 2;
    CHECK(clipnn_train(split, train, NULL, &o, &r1) == CLIPNN_ERR_INVALID_ARG);
    CHECK(strstr(clipnn_last_error(), "noise") != NULL);
    clipnn_train_state_free(st), clipnn_train_state_free(st2);
    clipnn_model_free(whole), clipnn_model_free(split);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

/* Physical batches change how a logical batch is computed, not what: the
 * same rows (Poisson draws do not depend on the chunks) and the same noise,
 * so the parameters after 30 steps agree to float rounding (each chunk's
 * mean is rounded to float once more: a few float ulps per step, 1e-5 of
 * the parameters' scale leaves a margin of 10). Noise once per logical
 * step: with physical batches of 1 the noise still has std sigma C / B. */
TEST(dp_physical_batches_same_update) {
    clipnn_dataset *train = NULL, *test = NULL;
    clipnn_data_options dopt = clipnn_data_options_default();
    CHECK_OK(clipnn_dataset_load("digits", &dopt, &train, &test));
    if (!train) return;
    clipnn_model *a = digits_model(train), *b = digits_model(train);
    clipnn_train_options o = dp_options();
    o.steps = 30;
    clipnn_train_result ra, rb;
    CHECK_OK(clipnn_train(a, train, NULL, &o, &ra));
    o.physical_batch = 7;
    CHECK_OK(clipnn_train(b, train, NULL, &o, &rb));
    size_t P = clipnn_model_n_params(a);
    const float *pa = clipnn_model_params(a), *pb = clipnn_model_params(b);
    double worst = 0, scale = 0;
    for (size_t j = 0; j < P; j++) {
        worst = fmax(worst, fabs((double)pa[j] - pb[j]));
        scale = fmax(scale, fabs((double)pa[j]));
    }
    CHECK_MSG(worst <= 1e-5 * scale && worst > 0, "largest difference %g of %g", worst, scale);
    CHECK(ra.epsilon == rb.epsilon);
    clipnn_model_free(a), clipnn_model_free(b);
    clipnn_dataset_free(train), clipnn_dataset_free(test);
}

TEST(dp_sampling_options) {
    clipnn_sampling s;
    CHECK_OK(clipnn_sampling_parse("poisson", &s));
    CHECK(s == CLIPNN_SAMPLING_POISSON && !strcmp(clipnn_sampling_name(s), "poisson"));
    CHECK(clipnn_sampling_parse("bernoulli", &s) == CLIPNN_ERR_INVALID_ARG);
    clipnn_dataset *d = zero_data();
    clipnn_model *m = zero_model();
    if (!d || !m) return;
    clipnn_train_options o = clipnn_train_options_default();
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.sampling = CLIPNN_SAMPLING_POISSON;
    clipnn_train_result r;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG); /* norm clipping */
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.replacement = 1;
    CHECK(clipnn_train(m, d, NULL, &o, &r) == CLIPNN_ERR_INVALID_ARG);
    o.replacement = 0;
    o.epochs = 1;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    CHECK(isnan(r.epsilon)); /* no noise, no privacy */
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

/* Poisson steps allocate nothing, whatever batch they draw: a run of 40
 * steps allocates what one of 10 does (everything before the first). The
 * physical batches of 3 make some draws take several. */
static uint64_t poisson_allocations(uint64_t steps) {
    clipnn_dataset *d = zero_data();
    clipnn_model *m = zero_model();
    if (!d || !m) return 0;
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = clipnn_clip_options_for(CLIPNN_CLIP_PER_SAMPLE);
    o.clip.noise_multiplier = 1;
    o.loss.loss = CLIPNN_LOSS_MSE;
    o.batch = 4;
    o.physical_batch = 3;
    o.steps = steps;
    clipnn_train_result r;
    uint64_t before = clipnn_allocation_count();
    CHECK_OK(clipnn_train(m, d, NULL, &o, &r));
    uint64_t used = clipnn_allocation_count() - before;
    clipnn_model_free(m);
    clipnn_dataset_free(d);
    return used;
}

TEST(dp_poisson_steps_allocate_nothing) {
    uint64_t a = poisson_allocations(10), b = poisson_allocations(40);
    CHECK_MSG(a == b && a > 0, "%llu allocations in 10 steps, %llu in 40", (unsigned long long)a,
              (unsigned long long)b);
}
