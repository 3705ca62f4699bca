/* The per-group telemetry of clipnn_train's step record (group_norms,
 * group_post_norms, group_factors) under every clipping rule: the groups
 * recombine into the step's pre- and post-clip norms, each factor agrees
 * with its group's norms, and the post-clip norms are those of the gradient
 * the same rule leaves through the public two-phase API (clipnn_clipper_apply
 * without fusion on the gradient of the same parameters), measured
 * directly. The fused step gives per-group and per-unit factors to the
 * update and may not form dW at all, so the gradient block after the step
 * is no witness. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "mlp_fixture.h"

enum { N_ROWS = 24, DIM = 12, CLASSES = 3, STEPS = 6, MAX_GROUPS = 16 };

/* Rows of a smooth pattern; repeated: every row is row 0, so every
 * minibatch, in whatever order clipnn_train draws it, is the same matrix
 * and the reference sees exactly the trained step's batch. */
static clipnn_dataset *make_data(int repeated) {
    float x[N_ROWS * DIM], y[N_ROWS];
    for (int i = 0; i < N_ROWS; i++) {
        int src = repeated ? 0 : i;
        for (int j = 0; j < DIM; j++) x[i * DIM + j] = sinf(0.37f * (float)(src * DIM + j)) * 1.5f;
        y[i] = (float)((src * 5 + 1) % CLASSES);
    }
    clipnn_dataset *d = NULL;
    CHECK_OK(clipnn_dataset_from_arrays(x, y, N_ROWS, DIM, CLASSES, 1, &d));
    return d;
}

/* A GRU reading each row as 4 steps of 3, then two dense layers. */
static clipnn_model *make_gru(void) {
    clipnn_layer_spec ls[] = {{CLIPNN_LAYER_GRU, 5, CLIPNN_ACT_IDENTITY},
                              {CLIPNN_LAYER_DENSE, 6, CLIPNN_ACT_TANH},
                              {CLIPNN_LAYER_DENSE, CLASSES, CLIPNN_ACT_IDENTITY}};
    clipnn_seq_shape seq = {4, 3, 0};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create_seq(&m, &seq, 3, ls));
    if (m) CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 5));
    return m;
}

static clipnn_model *make_model(int recurrent) {
    return recurrent ? make_gru() : fixture_mlp(DIM, 20, 9, CLASSES, CLIPNN_ACT_TANH, 11);
}

static int is_global(clipnn_clip_rule r) {
    return r == CLIPNN_CLIP_NONE || r == CLIPNN_CLIP_NORM || r == CLIPNN_CLIP_NORM_TORCH || r == CLIPNN_CLIP_ADAPTIVE ||
           r == CLIPNN_CLIP_PROJECT || r == CLIPNN_CLIP_PERCENTILE || r == CLIPNN_CLIP_ZSCORE;
}

static double median(double *v, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The gradient at theta(0) of the first batch rows, to put each rule's
 * threshold where some steps, groups or entries clip and others do not. */
typedef struct {
    clipnn_model *m; /* a clone holding that gradient */
    size_t G;
    double example_norm; /* median per-example norm (NaN for a recurrent model) */
} calibration;

static void calibrate(calibration *cal, const clipnn_model *m, const clipnn_dataset *d, size_t batch) {
    cal->m = NULL;
    CHECK_OK(clipnn_model_clone(m, &cal->m));
    cal->G = clipnn_model_n_groups(m);
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_loss_grad(cal->m, &lo, clipnn_dataset_x(d), clipnn_dataset_y(d), batch, NULL, NULL));
    double norms[N_ROWS];
    /* not for a recurrent model, which per-sample clipping refuses */
    cal->example_norm = clipnn_per_example_grad_norms(cal->m, norms) == CLIPNN_OK ? median(norms, batch) : NAN;
}

static double total_norm(const calibration *cal, double p) {
    double total = NAN;
    CHECK_OK(clipnn_group_norms(cal->m, clipnn_model_grads(cal->m), p, NULL, &total));
    return total;
}

/* Median over the groups of ||g_l||_p. */
static double median_group_norm(const calibration *cal, double p) {
    double g[MAX_GROUPS];
    CHECK_OK(clipnn_group_norms(cal->m, clipnn_model_grads(cal->m), p, g, NULL));
    return median(g, cal->G);
}

/* Median of ||g|| / ||theta|| over the weight tensors (units: over their
 * rows), where the adaptive rules' thresholds sit. Biases start at 0, under
 * the eps floor, and clip whatever lambda is. */
static double median_weight_ratio(const calibration *cal, int units) {
    double r[256];
    size_t n = 0;
    const float *g = clipnn_model_grads(cal->m), *theta = clipnn_model_params(cal->m);
    for (size_t i = 0; i < cal->G; i++) {
        clipnn_group grp = clipnn_model_group(cal->m, i);
        size_t parts = units ? grp.rows : 1, len = units ? grp.cols : grp.size;
        for (size_t u = 0; u < parts && !grp.is_bias && n < 256; u++) {
            size_t off = grp.offset + u * len;
            r[n++] = clipnn_norm(g + off, len, 2.0) / fmax(clipnn_norm(theta + off, len, 2.0), 1e-3);
        }
    }
    return median(r, n);
}

static double max_abs_grad(const calibration *cal) {
    double big = 0;
    const float *g = clipnn_model_grads(cal->m);
    for (size_t i = 0; i < clipnn_model_n_params(cal->m); i++) big = fmax(big, fabs(g[i]));
    return big;
}

static const struct {
    const char *label;
    clipnn_clip_rule rule;
    double p;
} variants[] = {
    {"none", CLIPNN_CLIP_NONE, 2},
    {"value", CLIPNN_CLIP_VALUE, 2},
    {"norm", CLIPNN_CLIP_NORM, 2},
    {"norm p=1", CLIPNN_CLIP_NORM, 1},
    {"norm p=3", CLIPNN_CLIP_NORM, 3},
    {"norm p=inf", CLIPNN_CLIP_NORM, INFINITY},
    {"norm-torch", CLIPNN_CLIP_NORM_TORCH, 2},
    {"norm-group", CLIPNN_CLIP_NORM_GROUP, 2},
    {"norm-group p=1", CLIPNN_CLIP_NORM_GROUP, 1},
    {"adaptive", CLIPNN_CLIP_ADAPTIVE, 2},
    {"adaptive-layer", CLIPNN_CLIP_ADAPTIVE_LAYER, 2},
    {"agc", CLIPNN_CLIP_AGC, 2},
    {"agc skip-last", CLIPNN_CLIP_AGC, 2},
    {"project", CLIPNN_CLIP_PROJECT, 2},
    {"percentile", CLIPNN_CLIP_PERCENTILE, 2},
    {"zscore", CLIPNN_CLIP_ZSCORE, 2},
    {"per-sample", CLIPNN_CLIP_PER_SAMPLE, 2},
    {"per-sample noise", CLIPNN_CLIP_PER_SAMPLE, 2},
    {"adagc", CLIPNN_CLIP_ADAGC, 2},
};
enum { N_VARIANTS = sizeof variants / sizeof variants[0] };

/* The options of variant i, thresholds set from the gradient at theta(0). */
static clipnn_clip_options clip_variant(size_t i, const calibration *cal) {
    clipnn_clip_options o = clipnn_clip_options_for(variants[i].rule);
    o.p = variants[i].p;
    double theta = clipnn_norm(clipnn_model_params(cal->m), clipnn_model_n_params(cal->m), 2.0);
    switch (o.rule) {
    case CLIPNN_CLIP_VALUE: o.value = 0.25 * max_abs_grad(cal); break;
    case CLIPNN_CLIP_NORM:
    case CLIPNN_CLIP_NORM_TORCH: o.lambda = 0.3 * total_norm(cal, o.p); break;
    case CLIPNN_CLIP_NORM_GROUP: o.lambda = median_group_norm(cal, o.p); break;
    case CLIPNN_CLIP_ADAPTIVE: o.lambda = 0.5 * total_norm(cal, 2) / theta; break;
    case CLIPNN_CLIP_ADAPTIVE_LAYER: o.lambda = median_weight_ratio(cal, 0); break;
    case CLIPNN_CLIP_AGC: o.lambda = median_weight_ratio(cal, 1); break;
    case CLIPNN_CLIP_PROJECT: o.project_radius = 0.05; break;
    case CLIPNN_CLIP_PERCENTILE: o.percentile = 50; break;
    case CLIPNN_CLIP_ZSCORE: o.z_warmup = 2, o.z_cap = 0.7 * total_norm(cal, 2); break;
    case CLIPNN_CLIP_PER_SAMPLE: o.lambda = 0.9 * cal->example_norm; break;
    case CLIPNN_CLIP_ADAGC: o.adagc_warmup = 3, o.adagc_abs = 0.3 * total_norm(cal, 2), o.lambda = 0.8; break;
    default: break;
    }
    o.agc_skip_last = !strcmp(variants[i].label, "agc skip-last");
    o.noise_multiplier = !strcmp(variants[i].label, "per-sample noise") ? 0.5 : 0;
    o.noise_seed = 3;
    return o;
}

/* What on_step checks against, and what it saw. */
typedef struct {
    char label[64];
    clipnn_model *trained; /* the model clipnn_train steps */
    clipnn_model *ref;     /* the trained model's theta(t) for the two-phase API; NULL: no reference */
    clipnn_clipper *ref_clip;
    const clipnn_dataset *d;
    size_t batch, G, P;
    clipnn_clip_options clip;
    clipnn_loss_options loss;
    double q;        /* the rule's norm order */
    double tol_ref;  /* relative, against the reference */
    uint64_t rows, clipped_steps, skipped_steps;
} checker;

/* (sum of v^q)^(1/q), max for q = inf. */
static double combine(const double *v, size_t n, double q) {
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc = isinf(q) ? fmax(acc, v[i]) : acc + pow(v[i], q);
    return isinf(q) ? acc : pow(acc, 1.0 / q);
}

static int near_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)); }

/* The groups recombine into the step's norms. Each side is the q-th root of
 * a sum of the same G accumulations: the group's root (one rounding of u =
 * DBL_EPSILON / 2), its q-th power here (two: pow and its argument's error
 * times q, over q in the root), G - 1 additions on each side, the roots, and
 * for a global rule the factor's product on each side: under (2G + 6) u. */
static void check_recombined(checker *k, const clipnn_step_record *r) {
    double tol = (double)(k->G + 3) * DBL_EPSILON;
    double pre = combine(r->group_norms, k->G, k->q), post = combine(r->group_post_norms, k->G, k->q);
    CHECK_MSG(near_rel(pre, r->clip.pre_norm, tol),
              "%s step %llu: groups' pre norms combine to %.17g, the step's %.17g", k->label,
              (unsigned long long)r->step, pre, r->clip.pre_norm);
    CHECK_MSG(near_rel(post, r->clip.post_norm, tol),
              "%s step %llu: groups' post norms combine to %.17g, the step's %.17g", k->label,
              (unsigned long long)r->step, post, r->clip.post_norm);
}

/* Each factor divides its group's pre norm into its post norm: the
 * factor's reciprocal (u), the post norm's scaled accumulation and root
 * (2u), the pre norm's root (u), the product here (u): under 6u.
 * A global rule gives every group its c(t); only per-sample's noise can
 * leave a group larger than it was. */
static void check_factors(checker *k, const clipnn_step_record *r) {
    for (size_t g = 0; g < k->G; g++) {
        double pre = r->group_norms[g], post = r->group_post_norms[g], f = r->group_factors[g];
        if (is_global(k->clip.rule))
            CHECK_MSG(f == r->clip.factor, "%s step %llu group %zu: factor %.17g, the step's c %.17g", k->label,
                      (unsigned long long)r->step, g, f, r->clip.factor);
        if (post > 0)
            CHECK_MSG(near_rel(f * post, pre, 3 * DBL_EPSILON),
                      "%s step %llu group %zu: factor %.17g, pre %.17g, post %.17g", k->label,
                      (unsigned long long)r->step, g, f, pre, post);
        if (k->clip.noise_multiplier == 0)
            CHECK_MSG(f >= 1, "%s step %llu group %zu: factor %.17g < 1", k->label, (unsigned long long)r->step, g, f);
    }
}

/* The same rule on the same gradient through the public two-phase API,
 * each group's norm of the clipped gradient read from it; then the
 * reference moves to the trained model's theta(t + 1). */
static void check_reference(checker *k, const clipnn_step_record *r) {
    double pre[MAX_GROUPS], post[MAX_GROUPS];
    clipnn_clip_record rec;
    CHECK_OK(clipnn_loss_grad(k->ref, &k->loss, clipnn_dataset_x(k->d), clipnn_dataset_y(k->d), k->batch, NULL, NULL));
    CHECK_OK(clipnn_clipper_apply(k->ref_clip, k->ref, -1, 0, NULL, pre, &rec));
    CHECK_OK(clipnn_group_norms(k->ref, clipnn_model_grads(k->ref), k->q, post, NULL));
    for (size_t g = 0; g < k->G; g++) {
        double a = r->group_post_norms[g], b = post[g];
        CHECK_MSG(near_rel(a, b, k->tol_ref), "%s step %llu group %zu: post norm %.9g, the two-phase API's %.9g",
                  k->label, (unsigned long long)r->step, g, a, b);
        CHECK_MSG(near_rel(r->group_norms[g], pre[g], k->tol_ref), "%s step %llu group %zu: pre norm %.9g vs %.9g",
                  k->label, (unsigned long long)r->step, g, r->group_norms[g], pre[g]);
    }
    CHECK_MSG(rec.clipped == r->clip.clipped || k->clip.rule == CLIPNN_CLIP_PROJECT, "%s step %llu: clipped %d vs %d",
              k->label, (unsigned long long)r->step, r->clip.clipped, rec.clipped);
    memcpy(clipnn_model_params(k->ref), clipnn_model_params(k->trained), k->P * sizeof(float));
}

/* A step the skip policy kept the rule from: each group as it was, no factor. */
static void check_not_run(checker *k, const clipnn_step_record *r) {
    k->skipped_steps++;
    for (size_t g = 0; g < k->G; g++) {
        double pre = r->group_norms[g], post = r->group_post_norms[g];
        CHECK_MSG(post == pre || (isnan(post) && isnan(pre)), "%s step %llu group %zu: skipped, pre %g post %g",
                  k->label, (unsigned long long)r->step, g, pre, post);
        CHECK_MSG(isnan(r->group_factors[g]), "%s step %llu group %zu: skipped, factor %g", k->label,
                  (unsigned long long)r->step, g, r->group_factors[g]);
    }
}

static void on_step(const clipnn_step_record *r, void *user) {
    checker *k = user;
    k->rows++;
    k->clipped_steps += (uint64_t)r->clip.clipped;
    CHECK_MSG(r->group_norms && r->group_post_norms && r->group_factors, "%s: no group telemetry", k->label);
    if (!r->group_norms || !r->group_post_norms || !r->group_factors) return;
    if (r->clip.skipped && isnan(r->clip.factor)) {
        check_not_run(k, r);
        return;
    }
    check_recombined(k, r);
    check_factors(k, r);
    if (k->ref) check_reference(k, r);
}

/* The reference and the trained step see the same floats: repeated rows
 * make every minibatch the same matrix, and the reference starts each step
 * from the trained parameters. They differ by the clipped gradient's
 * entries, which the reference rounds to float after a product with the
 * factor rounded to float (2u, u = FLT_EPSILON / 2: a vector whose entries
 * each err by e relative has a norm that errs by e); on a batch of one by
 * dW, which the trained step never forms (a unit's norm is |d_j| ||a||,
 * while the reference's entries are rounded products: u); for norm-torch
 * by its float32 factor, which a pre norm differing in the last double
 * digits may round the other way (u); and by double sums over at most P
 * terms. */
static double reference_tolerance(size_t P) { return 4 * (FLT_EPSILON / 2) + (double)P * DBL_EPSILON; }

typedef struct {
    const char *name;
    int repeated, recurrent, reference;
    size_t batch;
} scenario;

/* The run's options; AutoClip clips a norm above a percentile of those so
 * far: a margin loss at an overshooting step size makes them rise. */
static clipnn_train_options train_options(checker *k) {
    clipnn_train_options o = clipnn_train_options_default();
    o.clip = k->clip;
    o.sampling = CLIPNN_SAMPLING_SHUFFLE; /* the reference clips the same shuffled batches */
    o.schedule.a0 = 0.5;
    if (k->clip.rule == CLIPNN_CLIP_PERCENTILE) {
        o.loss.loss = CLIPNN_LOSS_MARGIN;
        o.schedule.a0 = 3.0;
    }
    k->loss = o.loss;
    o.batch = k->batch;
    o.steps = STEPS;
    o.log_groups = 1;
    o.on_step = on_step;
    o.user = k;
    return o;
}

/* STEPS steps of clipnn_train under variant i, checked by on_step. */
static void run_variant(const scenario *sc, size_t i) {
    clipnn_dataset *d = make_data(sc->repeated);
    clipnn_model *m = make_model(sc->recurrent);
    calibration cal;
    calibrate(&cal, m, d, sc->batch);
    checker k = {.trained = m, .d = d, .batch = sc->batch};
    k.G = clipnn_model_n_groups(m), k.P = clipnn_model_n_params(m);
    snprintf(k.label, sizeof k.label, "%s, %s", sc->name, variants[i].label);
    k.clip = clip_variant(i, &cal);
    k.q = k.clip.rule == CLIPNN_CLIP_ADAPTIVE_LAYER || k.clip.rule == CLIPNN_CLIP_AGC ? 2.0 : k.clip.p;
    k.tol_ref = reference_tolerance(k.P);
    CHECK(k.G <= MAX_GROUPS);
    if (sc->reference) {
        CHECK_OK(clipnn_model_clone(m, &k.ref));
        CHECK_OK(clipnn_model_reserve(k.ref, sc->batch));
        CHECK_OK(clipnn_clipper_create(&k.ref_clip, k.ref, &k.clip));
    }
    clipnn_train_options o = train_options(&k);
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK_MSG(k.rows == STEPS, "%s: %llu rows", k.label, (unsigned long long)k.rows);
    /* Thresholds set to clip: some step clips (project moves theta, not g;
     * AutoClip's threshold follows the norms). */
    if (k.clip.rule != CLIPNN_CLIP_NONE && k.clip.rule != CLIPNN_CLIP_PERCENTILE)
        CHECK_MSG(k.clipped_steps > 0, "%s: no step clipped", k.label);
    clipnn_clipper_free(k.ref_clip);
    clipnn_model_free(k.ref);
    clipnn_model_free(cal.m);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}

static void run_scenario(const scenario *sc) {
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (!(sc->recurrent && variants[i].rule == CLIPNN_CLIP_PER_SAMPLE)) /* refused for recurrent models */
            run_variant(sc, i);
}

TEST(group_log_matches_two_phase_api_every_rule) {
    static const scenario s = {"MLP, batch 4", 1, 0, 1, 4};
    run_scenario(&s);
}

/* A batch of one: the rules that read unit norms only leave dW unformed. */
TEST(group_log_matches_two_phase_api_batch_of_one) {
    static const scenario s = {"MLP, batch 1", 1, 0, 1, 1};
    run_scenario(&s);
}

TEST(group_log_matches_two_phase_api_recurrent) {
    static const scenario s = {"GRU, batch 4", 1, 1, 1, 4};
    run_scenario(&s);
}

/* Shuffled distinct rows: no reference, the norms and factors still agree. */
TEST(group_log_recombines_on_shuffled_batches) {
    static const scenario s = {"MLP, shuffled batch 8", 0, 0, 0, 8};
    run_scenario(&s);
}

/* Under the skip policy a step whose loss or gradient is not finite keeps
 * the rule from running; the steps around it are checked as above. */
TEST(group_log_of_skipped_steps) {
    clipnn_dataset *d = make_data(0);
    clipnn_model *m = fixture_mlp(DIM, 20, 9, CLASSES, CLIPNN_ACT_RELU, 11);
    checker k = {.trained = m, .d = d, .batch = 8, .q = 2};
    k.G = clipnn_model_n_groups(m), k.P = clipnn_model_n_params(m);
    snprintf(k.label, sizeof k.label, "skip policy");
    k.clip = clipnn_clip_options_for(CLIPNN_CLIP_NONE);
    k.clip.nonfinite = CLIPNN_NONFINITE_SKIP;
    clipnn_train_options o = train_options(&k);
    o.schedule.a0 = 1e6;
    o.steps = 40;
    clipnn_train_result res;
    CHECK_OK(clipnn_train(m, d, NULL, &o, &res));
    CHECK_MSG(k.skipped_steps > 0 && k.skipped_steps == res.skipped_steps,
              "%llu steps seen skipped, %llu in the result", (unsigned long long)k.skipped_steps,
              (unsigned long long)res.skipped_steps);
    clipnn_model_free(m);
    clipnn_dataset_free(d);
}
