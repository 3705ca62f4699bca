/* Formula tests for every clipping rule: hand-made gradients and
 * parameters, the expected result computed here from the rule's formula in
 * double, compared at float32 rounding (the clipped gradient is one float
 * product g * f, so its relative error is at most 2^-24 plus the rounding of
 * f itself: 1e-6 relative is a bound with margin). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

#define REL 1e-6

/* A 3-4-2 MLP (groups: W0 4x3, b0 4, W1 2x4, b1 2; 26 parameters) with
 * parameters and gradients from a fixed pattern scaled by gscale. */
static clipnn_model *make_model(double gscale) {
    size_t widths[2] = {4, 2};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, 3, 2, widths, acts)) return NULL;
    float *p = clipnn_model_params(m), *g = clipnn_model_grads(m);
    for (size_t i = 0; i < clipnn_model_n_params(m); i++) {
        p[i] = (float)(0.3 * sin(1.0 + 0.7 * (double)i));
        g[i] = (float)(gscale * cos(0.5 + 1.3 * (double)i) * (1.0 + (double)(i % 5)));
    }
    return m;
}

static double dnorm(const double *v, size_t n, double p) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(v[i]);
        if (isinf(p)) s = a > s ? a : s;
        else s += pow(a, p);
    }
    return isinf(p) ? s : pow(s, 1.0 / p);
}

static void to_double(const float *v, double *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = v[i];
}

/* Apply a rule (unfused, so that g is scaled in place) and return the record. */
static clipnn_clip_record apply(clipnn_model *m, const clipnn_clip_options *o, clipnn_status *status) {
    clipnn_clipper *c = NULL;
    clipnn_clip_record rec;
    memset(&rec, 0, sizeof rec);
    clipnn_status s = clipnn_clipper_create(&c, m, o);
    if (!s) s = clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, &rec);
    if (status) *status = s;
    clipnn_clipper_free(c);
    return rec;
}

static void check_scaled(const double *before, const float *after, const double *factor_per_param, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double want = before[i] * factor_per_param[i];
        CHECK_NEAR(after[i], want, REL * fabs(want) + 1e-30);
    }
}

TEST(clip_norm_orders) {
    const double orders[] = {1, 2, 3.5, INFINITY};
    for (size_t k = 0; k < 4; k++) {
        clipnn_model *m = make_model(1.0);
        size_t n = clipnn_model_n_params(m);
        double g[64] = {0}, f[64] = {0};
        to_double(clipnn_model_grads(m), g, n);
        double norm = dnorm(g, n, orders[k]), lambda = 0.5 * norm;
        clipnn_clip_options o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_NORM;
        o.p = orders[k];
        o.lambda = lambda;
        clipnn_clip_record r = apply(m, &o, NULL);
        double c = fmax(norm / lambda, 1.0);
        for (size_t i = 0; i < n; i++) f[i] = 1.0 / c;
        check_scaled(g, clipnn_model_grads(m), f, n);
        CHECK_NEAR(r.pre_norm, norm, 1e-12 * norm);
        CHECK_NEAR(r.factor, c, 1e-12 * c);
        CHECK_NEAR(r.post_norm, lambda, 1e-12 * lambda);
        CHECK(r.clipped == 1);
        clipnn_model_free(m);
    }
}

TEST(clip_norm_below_threshold_untouched) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    float before[64];
    memcpy(before, clipnn_model_grads(m), n * sizeof *before);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_NORM;
    o.lambda = 1e6;
    clipnn_clip_record r = apply(m, &o, NULL);
    CHECK(r.clipped == 0 && r.factor == 1.0);
    CHECK(memcmp(before, clipnn_model_grads(m), n * sizeof *before) == 0);
    clipnn_model_free(m);
}

TEST(clip_norm_fused_leaves_gradient) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    float before[64];
    memcpy(before, clipnn_model_grads(m), n * sizeof *before);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_NORM;
    o.lambda = 0.1;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    double scale = 0, total = 0;
    clipnn_clip_record r;
    CHECK_OK(clipnn_group_norms(m, clipnn_model_grads(m), 2.0, NULL, &total));
    CHECK_OK(clipnn_clipper_apply(c, m, -1, 1, &scale, NULL, &r));
    CHECK(memcmp(before, clipnn_model_grads(m), n * sizeof *before) == 0);
    CHECK_NEAR(scale, 0.1 / total, 1e-12 * scale);
    /* A norm computed (or reduced) elsewhere is used as given. */
    CHECK_OK(clipnn_clipper_apply(c, m, 2 * total, 1, &scale, NULL, &r));
    CHECK_NEAR(scale, 0.1 / (2 * total), 1e-12 * scale);
    CHECK(r.pre_norm == 2 * total);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

TEST(clip_norm_torch_epsilon) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64] = {0}, f[64] = {0};
    to_double(clipnn_model_grads(m), g, n);
    double norm = dnorm(g, n, 2);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_NORM_TORCH;
    o.lambda = norm; /* exactly the norm: torch still scales by norm / (norm + 1e-6) */
    clipnn_clip_record r = apply(m, &o, NULL);
    double coef = norm / (norm + 1e-6);
    for (size_t i = 0; i < n; i++) f[i] = coef;
    check_scaled(g, clipnn_model_grads(m), f, n);
    CHECK(r.clipped == 1);
    clipnn_model_free(m);
}

TEST(clip_value) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64];
    to_double(clipnn_model_grads(m), g, n);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_VALUE;
    o.value = 0.7;
    clipnn_clip_record r = apply(m, &o, NULL);
    const float *after = clipnn_model_grads(m);
    double clamped[64];
    for (size_t i = 0; i < n; i++) {
        clamped[i] = fmin(fmax(g[i], -(double)0.7f), (double)0.7f);
        CHECK(after[i] == (float)clamped[i]);
    }
    CHECK(r.clipped == 1);
    CHECK_NEAR(r.post_norm, dnorm(clamped, n, 2), 1e-12);
    clipnn_model_free(m);
}

/* Per-group factor for each parameter of the 3-4-2 model. */
static void group_factors(clipnn_model *m, const double *per_group, double *f) {
    for (size_t k = 0; k < clipnn_model_n_groups(m); k++) {
        clipnn_group grp = clipnn_model_group(m, k);
        for (size_t i = 0; i < grp.size; i++) f[grp.offset + i] = per_group[k];
    }
}

TEST(clip_norm_group_keras) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64] = {0}, f[64] = {0}, fg[4];
    to_double(clipnn_model_grads(m), g, n);
    double gn[4], lo = INFINITY, hi = 0;
    for (size_t k = 0; k < 4; k++) {
        clipnn_group grp = clipnn_model_group(m, k);
        gn[k] = dnorm(g + grp.offset, grp.size, 2);
        lo = fmin(lo, gn[k]), hi = fmax(hi, gn[k]);
    }
    const double lambda = 0.5 * (lo + hi); /* some groups clip, some do not */
    int n_clipped = 0;
    for (size_t k = 0; k < 4; k++) {
        fg[k] = 1.0 / fmax(gn[k] / lambda, 1.0);
        n_clipped += fg[k] < 1;
    }
    CHECK(n_clipped > 0 && n_clipped < 4);
    group_factors(m, fg, f);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_NORM_GROUP;
    o.lambda = lambda;
    clipnn_clip_record r = apply(m, &o, NULL);
    check_scaled(g, clipnn_model_grads(m), f, n);
    double post[64];
    for (size_t i = 0; i < n; i++) post[i] = g[i] * f[i];
    CHECK_NEAR(r.post_norm, dnorm(post, n, 2), 1e-12 * r.post_norm);
    clipnn_model_free(m);
}

TEST(clip_adaptive_global_eq17) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64] = {0}, th[64] = {0}, f[64] = {0};
    to_double(clipnn_model_grads(m), g, n);
    to_double(clipnn_model_params(m), th, n);
    const double lambda = 0.3, eps = 1e-3;
    double c = fmax(dnorm(g, n, 2) / (lambda * fmax(dnorm(th, n, 2), eps)), 1.0);
    CHECK(c > 1);
    for (size_t i = 0; i < n; i++) f[i] = 1.0 / c;
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_ADAPTIVE;
    o.lambda = lambda;
    o.eps = eps;
    clipnn_clip_record r = apply(m, &o, NULL);
    check_scaled(g, clipnn_model_grads(m), f, n);
    CHECK_NEAR(r.theta_norm, dnorm(th, n, 2), 1e-12);
    /* eps floors ||theta||: with theta = 0 the threshold is lambda eps. */
    clipnn_model *z = make_model(1.0);
    memset(clipnn_model_params(z), 0, n * sizeof(float));
    apply(z, &o, NULL);
    c = fmax(dnorm(g, n, 2) / (lambda * eps), 1.0);
    for (size_t i = 0; i < n; i++) f[i] = 1.0 / c;
    check_scaled(g, clipnn_model_grads(z), f, n);
    clipnn_model_free(z);
    clipnn_model_free(m);
}

TEST(clip_adaptive_layer_eq18) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64] = {0}, th[64] = {0}, f[64] = {0}, fg[4];
    to_double(clipnn_model_grads(m), g, n);
    to_double(clipnn_model_params(m), th, n);
    const double lambda = 1.0, eps = 1e-3;
    for (size_t k = 0; k < 4; k++) {
        clipnn_group grp = clipnn_model_group(m, k);
        double t = fmax(dnorm(th + grp.offset, grp.size, 2), eps);
        fg[k] = 1.0 / fmax(dnorm(g + grp.offset, grp.size, 2) / (lambda * t), 1.0);
    }
    group_factors(m, fg, f);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_ADAPTIVE_LAYER;
    o.lambda = lambda;
    o.eps = eps;
    apply(m, &o, NULL);
    check_scaled(g, clipnn_model_grads(m), f, n);
    clipnn_model_free(m);
}

/* AGC with units = rows of W (out x in) and biases whole. */
static void agc_expected(clipnn_model *m, const double *g, const double *th, double lambda, double eps,
                         int by_columns, int skip_last, double *f) {
    for (size_t k = 0; k < clipnn_model_n_groups(m); k++) {
        clipnn_group grp = clipnn_model_group(m, k);
        int skip = skip_last && grp.layer == clipnn_model_n_layers(m) - 1;
        size_t units = by_columns ? grp.cols : grp.rows, len = by_columns ? grp.rows : grp.cols;
        for (size_t u = 0; u < units; u++) {
            double gn = 0, wn = 0;
            for (size_t j = 0; j < len; j++) {
                size_t idx = grp.offset + (by_columns ? j * grp.cols + u : u * grp.cols + j);
                gn += g[idx] * g[idx];
                wn += th[idx] * th[idx];
            }
            gn = sqrt(gn), wn = sqrt(wn);
            double limit = lambda * fmax(wn, eps);
            double fu = (!skip && gn > limit) ? limit / fmax(gn, 1e-6) : 1.0;
            for (size_t j = 0; j < len; j++)
                f[grp.offset + (by_columns ? j * grp.cols + u : u * grp.cols + j)] = fu;
        }
    }
}

TEST(clip_agc_units_are_rows) {
    const double lambda = 0.5, eps = 1e-3;
    for (int skip = 0; skip < 2; skip++) {
        clipnn_model *m = make_model(0.5);
        size_t n = clipnn_model_n_params(m);
        double g[64], th[64], f[64], fwrong[64];
        to_double(clipnn_model_grads(m), g, n);
        to_double(clipnn_model_params(m), th, n);
        agc_expected(m, g, th, lambda, eps, 0, skip, f);
        agc_expected(m, g, th, lambda, eps, 1, skip, fwrong);
        clipnn_clip_options o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_AGC;
        o.lambda = lambda;
        o.eps = eps;
        o.agc_skip_last = skip;
        clipnn_clip_record r = apply(m, &o, NULL);
        check_scaled(g, clipnn_model_grads(m), f, n);
        CHECK(r.clipped == 1);
        /* The transposed layout (units = columns, i.e. per input) gives a
         * different answer: the test would catch a layout mix-up. */
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] * fwrong[i] - clipnn_model_grads(m)[i]));
        CHECK_MSG(worst > 1e-3, "transposed AGC indistinguishable (%g)", worst);
        if (skip) {
            clipnn_group last = clipnn_model_group(m, 2);
            for (size_t i = 0; i < last.size; i++)
                CHECK(clipnn_model_grads(m)[last.offset + i] == (float)g[last.offset + i]);
        }
        clipnn_model_free(m);
    }
}

TEST(clip_project_ball_and_box) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    float theta0[64];
    memcpy(theta0, clipnn_model_params(m), n * sizeof *theta0);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PROJECT;
    o.project_radius = 0.05;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    clipnn_clip_record r;
    double scale = 0;
    CHECK_OK(clipnn_clipper_apply(c, m, -1, 1, &scale, NULL, &r));
    CHECK(scale == 1.0 && r.clipped == 0); /* the gradient is left alone */
    float *p = clipnn_model_params(m);
    for (size_t i = 0; i < n; i++) p[i] += 0.1f; /* a step of length 0.1 sqrt(n) > R */
    CHECK_OK(clipnn_clipper_after_update(c, m, &r));
    CHECK(r.clipped == 1);
    double d2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)p[i] - theta0[i];
        d2 += d * d;
        CHECK_NEAR(d, 0.05 / sqrt((double)n), 1e-6); /* same direction, length R */
    }
    CHECK_NEAR(sqrt(d2), 0.05, 1e-6);
    clipnn_clipper_free(c);

    o.project_kind = CLIPNN_PROJECT_BOX;
    o.box_lo = -0.1;
    o.box_hi = 0.2;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    CHECK_OK(clipnn_clipper_after_update(c, m, NULL));
    for (size_t i = 0; i < n; i++) CHECK(p[i] >= -0.1f && p[i] <= 0.2f);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

TEST(clip_percentile_autoclip) {
    /* Pre-clip norms 1, 2, ..., 9 then 100: the threshold at p = 50 over a
     * history of 10 (current included) is numpy's median of those ten. */
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    double g[64];
    to_double(clipnn_model_grads(m), g, n);
    double base = dnorm(g, n, 2);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PERCENTILE;
    o.percentile = 50;
    o.history_length = 10;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    clipnn_clip_record r;
    double scale;
    const double norms[10] = {3, 1, 4, 1.5, 9, 2.6, 5, 3.5, 8, 100};
    for (int t = 0; t < 10; t++) CHECK_OK(clipnn_clipper_apply(c, m, norms[t], 1, &scale, NULL, &r));
    /* sorted: 1 1.5 2.6 3 3.5 4 5 8 9 100 -> median (3.5 + 4) / 2 */
    CHECK_NEAR(scale, 3.75 / 100, 1e-12);
    /* The history is bounded: ten more norms of 1 push everything out. */
    for (int t = 0; t < 10; t++) CHECK_OK(clipnn_clipper_apply(c, m, 1.0, 1, &scale, NULL, &r));
    CHECK_OK(clipnn_clipper_apply(c, m, 2.0, 1, &scale, NULL, &r));
    CHECK_NEAR(scale, 0.5, 1e-12);
    (void)base;
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* ZClip's zscore / adaptive_scaling rule, the expected values computed
 * here from the reference code's formulas. */
TEST(clip_zscore_spike) {
    clipnn_model *m = make_model(1.0);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_ZSCORE;
    o.z_warmup = 4;
    o.z_alpha = 0.9;
    o.z_threshold = 2.0;
    o.z_cap = 1.1;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    clipnn_clip_record r;
    double scale;
    const double warm[4] = {1.0, 1.2, 0.8, 1.0};
    for (int t = 0; t < 4; t++) {
        CHECK_OK(clipnn_clipper_apply(c, m, warm[t], 1, &scale, NULL, &r));
        /* during the warm-up only the cap clips, torch-style */
        double want = warm[t] > 1.1 ? 1.1 / (warm[t] + 1e-6) : 1.0;
        CHECK_NEAR(scale, want, 1e-15);
    }
    /* the raw norms (1.2 included: the cap does not enter the statistics) */
    double mean = 1.0, var = (0 + 0.04 + 0.04 + 0) / 4;
    /* a norm within the threshold passes and enters the EMAs as it is */
    double g = 1.05, sd = sqrt(var), z = (g - mean) / (sd + 1e-6);
    CHECK(z < 2.0);
    CHECK_OK(clipnn_clipper_apply(c, m, g, 1, &scale, NULL, &r));
    CHECK(scale == 1.0 && r.clipped == 0);
    mean = 0.9 * mean + 0.1 * g;
    var = 0.9 * var + 0.1 * (g - mean) * (g - mean);
    /* a spike: clipped to mean + t^2 sd / z, which then enters the EMAs */
    g = 5.0;
    sd = sqrt(var);
    z = (g - mean) / (sd + 1e-6);
    double limit = mean + 4.0 * sd / z;
    CHECK(z > 2.0 && limit < 1.1); /* the adaptive limit binds, not the cap */
    CHECK_OK(clipnn_clipper_apply(c, m, g, 1, &scale, NULL, &r));
    CHECK_NEAR(scale, limit / (g + 1e-6), 1e-14);
    CHECK(r.clipped == 1);
    mean = 0.9 * mean + 0.1 * limit;
    var = 0.9 * var + 0.1 * (limit - mean) * (limit - mean);
    /* a small spike whose adaptive limit is above the cap: the cap binds */
    sd = sqrt(var);
    g = mean + 2.2 * (sd + 1e-6);
    z = (g - mean) / (sd + 1e-6);
    limit = mean + 4.0 * sd / z;
    CHECK(z > 2.0 && limit > 1.1 && g > 1.1);
    CHECK_OK(clipnn_clipper_apply(c, m, g, 1, &scale, NULL, &r));
    CHECK_NEAR(scale, 1.1 / (g + 1e-6), 1e-14);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

TEST(clip_nonfinite_policies) {
    for (int policy = 0; policy < 3; policy++) {
        clipnn_model *m = make_model(1.0);
        size_t n = clipnn_model_n_params(m);
        float *g = clipnn_model_grads(m);
        g[5] = NAN;
        float before[64];
        memcpy(before, g, n * sizeof *before);
        clipnn_clip_options o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_NORM;
        o.nonfinite = (clipnn_nonfinite)policy;
        clipnn_status s;
        clipnn_clip_record r = apply(m, &o, &s);
        if (policy == CLIPNN_NONFINITE_ERROR) {
            CHECK(s == CLIPNN_ERR_NONFINITE);
            CHECK(memcmp(before, g, n * sizeof *before) == 0);
        } else if (policy == CLIPNN_NONFINITE_SKIP) {
            CHECK(s == CLIPNN_OK && r.skipped == 1 && r.n_skipped == 1);
            CHECK(memcmp(before, g, n * sizeof *before) == 0);
        } else {
            /* torch: coef = lambda / (NaN + eps) is NaN, every entry NaN. */
            CHECK(s == CLIPNN_OK && r.nonfinite == 1);
            CHECK(isnan(r.pre_norm));
        }
        clipnn_model_free(m);
    }
}

TEST(clip_optax_per_example) {
    const float g[4][3] = {{0, 0, 0}, {0, 3, 4}, {4, 0, 3}, {3, 4, 0}};
    float sum[3];
    size_t nc = 99;
    CHECK_OK(clipnn_clip_per_example(&g[0][0], 4, 3, 1.25, sum, &nc));
    for (int j = 0; j < 3; j++) CHECK_NEAR(sum[j], 1.75, 2.4e-7);
    CHECK(nc == 3);
    CHECK_OK(clipnn_clip_per_example(&g[0][0], 4, 3, 0.0, sum, &nc));
    for (int j = 0; j < 3; j++) CHECK(sum[j] == 0.0f);
    CHECK_OK(clipnn_clip_per_example(&g[0][0], 4, 3, INFINITY, sum, &nc));
    CHECK(sum[0] == 7 && sum[1] == 7 && sum[2] == 7 && nc == 0);
}

/* Per-sample clipping through a model: the clipped mean gradient equals the
 * mean of the batch-of-one gradients, each clipped to C, formed naively. */
TEST(clip_per_sample_matches_naive) {
    size_t widths[3] = {5, 4, 3};
    clipnn_act acts[3] = {CLIPNN_ACT_TANH, CLIPNN_ACT_RELU, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 6, 3, widths, acts));
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 7));
    size_t n = clipnn_model_n_params(m);
    enum { B = 6 };
    float x[B * 6], y[B];
    for (int i = 0; i < B * 6; i++) x[i] = (float)sin(0.37 * i + 0.1) * (1 + (i % 6));
    for (int i = 0; i < B; i++) y[i] = (float)(i % 3);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    CHECK_OK(clipnn_model_reserve(m, B));
    double naive_norm[B], *want = calloc(n, sizeof *want);
    const double C = 0.5;
    for (int i = 0; i < B; i++) {
        CHECK_OK(clipnn_loss_grad(m, &lo, x + 6 * i, y + i, 1, NULL, NULL));
        naive_norm[i] = clipnn_norm(clipnn_model_grads(m), n, 2);
        double f = naive_norm[i] > C ? C / naive_norm[i] : 1.0;
        for (size_t j = 0; j < n; j++) want[j] += f * clipnn_model_grads(m)[j] / B;
    }
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    double norms[B];
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    for (int i = 0; i < B; i++) CHECK_NEAR(norms[i], naive_norm[i], 1e-5 * naive_norm[i]);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PER_SAMPLE;
    o.lambda = C;
    clipnn_clip_record r = apply(m, &o, NULL);
    CHECK(r.clipped == 1);
    double scale = 0;
    for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(want[j]));
    for (size_t j = 0; j < n; j++) CHECK_NEAR(clipnn_model_grads(m)[j], want[j], 1e-5 * scale);
    free(want);
    clipnn_model_free(m);
}

TEST(clip_state_round_trip) {
    clipnn_model *m = make_model(1.0);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PERCENTILE;
    o.history_length = 8;
    clipnn_clipper *a = NULL, *b = NULL;
    CHECK_OK(clipnn_clipper_create(&a, m, &o));
    CHECK_OK(clipnn_clipper_create(&b, m, &o));
    double scale_a, scale_b;
    clipnn_clip_record ra, rb;
    for (int t = 0; t < 5; t++) CHECK_OK(clipnn_clipper_apply(a, m, 1.0 + t, 1, &scale_a, NULL, &ra));
    size_t len = clipnn_clipper_state_size(a);
    unsigned char buf[512];
    CHECK(len <= sizeof buf);
    clipnn_clipper_state_save(a, buf);
    CHECK_OK(clipnn_clipper_state_load(b, buf, len));
    CHECK_OK(clipnn_clipper_apply(a, m, 2.5, 1, &scale_a, NULL, &ra));
    CHECK_OK(clipnn_clipper_apply(b, m, 2.5, 1, &scale_b, NULL, &rb));
    CHECK(scale_a == scale_b && ra.n_steps == rb.n_steps && ra.n_clipped == rb.n_clipped);
    /* Refused: truncated, other rule. */
    CHECK(clipnn_clipper_state_load(b, buf, len - 1) != CLIPNN_OK);
    clipnn_clipper *other = NULL;
    o.rule = CLIPNN_CLIP_NORM;
    CHECK_OK(clipnn_clipper_create(&other, m, &o));
    CHECK(clipnn_clipper_state_load(other, buf, len) == CLIPNN_ERR_FORMAT);
    clipnn_clipper_free(other);
    clipnn_clipper_free(a);
    clipnn_clipper_free(b);
    clipnn_model_free(m);
}

TEST(clip_bad_options_refused) {
    clipnn_model *m = make_model(1.0);
    clipnn_clip_options o = clipnn_clip_options_default();
    clipnn_clipper *c = NULL;
    o.rule = CLIPNN_CLIP_NORM;
    o.lambda = -1;
    CHECK(clipnn_clipper_create(&c, m, &o) == CLIPNN_ERR_INVALID_ARG && c == NULL);
    o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_AGC;
    o.p = 1;
    CHECK(clipnn_clipper_create(&c, m, &o) == CLIPNN_ERR_INVALID_ARG);
    o = clipnn_clip_options_default();
    o.p = 0.5;
    CHECK(clipnn_clipper_create(&c, m, &o) == CLIPNN_ERR_INVALID_ARG);
    clipnn_clip_rule rule;
    CHECK(clipnn_clip_rule_parse("bogus", &rule) == CLIPNN_ERR_INVALID_ARG);
    for (int r = 0; r < CLIPNN_CLIP_COUNT; r++) {
        CHECK_OK(clipnn_clip_rule_parse(clipnn_clip_rule_name((clipnn_clip_rule)r), &rule));
        CHECK(rule == (clipnn_clip_rule)r);
    }
    clipnn_model_free(m);
}

TEST(clip_project_ball_centred_on_zero) {
    clipnn_model *m = make_model(1.0);
    size_t n = clipnn_model_n_params(m);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PROJECT;
    o.project_center_initial = 0;
    o.project_radius = 0.5;
    clipnn_clipper *c = NULL;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    float *p = clipnn_model_params(m);
    double before[64] = {0}, norm = 0;
    for (size_t i = 0; i < n; i++) before[i] = p[i], norm += before[i] * before[i];
    norm = sqrt(norm);
    CHECK(norm > 0.5);
    clipnn_clip_record r = {0};
    CHECK_OK(clipnn_clipper_after_update(c, m, &r));
    CHECK(r.clipped == 1);
    for (size_t i = 0; i < n; i++) CHECK_NEAR(p[i], before[i] * 0.5 / norm, 1e-6 * fabs(before[i]) + 1e-12);
    /* inside the ball nothing moves */
    float inside[64];
    memcpy(inside, p, n * sizeof *p);
    CHECK_OK(clipnn_clipper_after_update(c, m, &r));
    CHECK(memcmp(inside, p, n * sizeof *p) == 0);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* DP-SGD noise: with every example inside the threshold (no clipping),
 * the noise is what is added to the mean gradient: zero mean and standard
 * deviation sigma C / B per coordinate (Opacus: std sigma C on the sum).
 * With n coordinates the sample sd has relative error ~1/sqrt(2n) (2.4%
 * here); 5 of those (12%) still tells sigma C / B from a wrong factor of B,
 * C or 2. The same seed gives the same noise. */
TEST(clip_per_sample_noise_scale) {
    size_t widths[2] = {200, 4};
    clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    CHECK_OK(clipnn_model_create(&m, 3, 2, widths, acts));
    CHECK_OK(clipnn_model_init(m, CLIPNN_INIT_XAVIER, 3));
    enum { B = 4 };
    float x[B * 3], y[B];
    for (int i = 0; i < B * 3; i++) x[i] = 0.1f * (float)sin(i + 1.0);
    for (int i = 0; i < B; i++) y[i] = (float)(i % 4);
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    CHECK_OK(clipnn_model_reserve(m, B));
    size_t n = clipnn_model_n_params(m);
    float *clean = malloc(n * sizeof *clean), *first = malloc(n * sizeof *first);
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
    memcpy(clean, clipnn_model_grads(m), n * sizeof *clean);
    double norms[B];
    CHECK_OK(clipnn_per_example_grad_norms(m, norms));
    const double C = 1e3, sigma = 0.02; /* C above every example's norm */
    for (int i = 0; i < B; i++) CHECK(norms[i] < C);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PER_SAMPLE;
    o.lambda = C;
    o.noise_multiplier = sigma;
    o.noise_seed = 11;
    for (int run = 0; run < 2; run++) {
        CHECK_OK(clipnn_loss_grad(m, &lo, x, y, B, NULL, NULL));
        clipnn_clip_record r = apply(m, &o, NULL);
        CHECK(r.clipped == 0);
        const float *g = clipnn_model_grads(m);
        if (run == 0) {
            double mean = 0, sq = 0;
            for (size_t j = 0; j < n; j++) {
                double e = (double)g[j] - clean[j];
                mean += e / (double)n, sq += e * e / (double)n;
            }
            double sd = sqrt(sq - mean * mean), want = sigma * C / B;
            CHECK_NEAR(sd, want, 5.0 / sqrt(2.0 * (double)n) * want);
            CHECK_NEAR(mean, 0.0, 5.0 * want / sqrt((double)n));
            memcpy(first, g, n * sizeof *first);
        } else {
            CHECK(memcmp(first, g, n * sizeof *first) == 0);
        }
    }
    free(clean), free(first);
    clipnn_model_free(m);
}

/* The record means what include/clipnn/clip.h says, rule by rule: norms of
 * the rule's order q (2 for the Euclidean rules whatever p is elsewhere),
 * post_norm the norm of the gradient the update uses, factor = pre/post
 * (for a global rule also its divisor c >= 1), theta_norm only for
 * adaptive, clipped exactly when g changed. The post-clip gradient is
 * g * (float)f rounded to float: each entry is off by at most 2 x 2^-24
 * relative, and so is its norm; norms accumulated in double add ~1e-15. */
TEST(clip_record_fields_follow_the_header) {
    static const struct {
        clipnn_clip_rule rule;
        double p, lambda; /* lambda < 0: a fraction -lambda of the pre-clip norm */
        int global;
    } cases[] = {
        {CLIPNN_CLIP_NONE, 3, 1, 1},         {CLIPNN_CLIP_NORM, 3, -0.5, 1},
        {CLIPNN_CLIP_NORM_TORCH, 2, -0.5, 1}, {CLIPNN_CLIP_NORM_GROUP, 3, -0.3, 0},
        {CLIPNN_CLIP_ADAPTIVE, 3, 0.3, 1},   {CLIPNN_CLIP_ADAPTIVE_LAYER, 2, 1.0, 0},
        {CLIPNN_CLIP_AGC, 2, 0.5, 0},        {CLIPNN_CLIP_VALUE, 3, 1, 0},
        {CLIPNN_CLIP_PROJECT, 3, 1, 1},      {CLIPNN_CLIP_PERCENTILE, 3, 1, 1},
        {CLIPNN_CLIP_ZSCORE, 3, 1, 1},
    };
    const double float_rel = 2.0 / 16777216.0 + 1e-12;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        clipnn_model *m = make_model(1.0);
        size_t n = clipnn_model_n_params(m);
        double g[64], th[64], after[64];
        to_double(clipnn_model_grads(m), g, n);
        to_double(clipnn_model_params(m), th, n);
        int euclidean = cases[k].rule == CLIPNN_CLIP_ADAPTIVE_LAYER || cases[k].rule == CLIPNN_CLIP_AGC;
        double q = euclidean ? 2 : cases[k].p, pre = dnorm(g, n, q);
        clipnn_clip_options o = clipnn_clip_options_default();
        o.rule = cases[k].rule;
        o.p = cases[k].p;
        o.lambda = cases[k].lambda > 0 ? cases[k].lambda : -cases[k].lambda * pre;
        o.value = 0.4 * dnorm(g, n, INFINITY);
        clipnn_status st;
        clipnn_clip_record r = apply(m, &o, &st);
        const char *name = clipnn_clip_rule_name(o.rule);
        CHECK_MSG(st == CLIPNN_OK, "%s: %s", name, clipnn_last_error());
        to_double(clipnn_model_grads(m), after, n);
        int changed = 0;
        for (size_t i = 0; i < n; i++) changed |= after[i] != (double)(float)g[i];
        double post = dnorm(after, n, q);
        CHECK_MSG(fabs(r.pre_norm - pre) <= 1e-12 * pre, "%s: pre_norm %.17g, want %.17g", name, r.pre_norm, pre);
        CHECK_MSG(fabs(r.post_norm - post) <= float_rel * post, "%s: post_norm %.9g, g after clipping has %.9g", name,
                  r.post_norm, post);
        CHECK_MSG(fabs(r.factor * r.post_norm - r.pre_norm) <= 1e-12 * r.pre_norm, "%s: factor %.9g != pre/post",
                  name, r.factor);
        if (cases[k].global) CHECK_MSG(r.factor >= 1, "%s: global factor %g < 1", name, r.factor);
        if (o.rule == CLIPNN_CLIP_ADAPTIVE)
            CHECK_NEAR(r.theta_norm, dnorm(th, n, o.p), 1e-12 * dnorm(th, n, o.p));
        else
            CHECK_MSG(isnan(r.theta_norm), "%s: theta_norm %g, want NaN", name, r.theta_norm);
        CHECK_MSG(r.clipped == changed, "%s: clipped %d but g %s", name, r.clipped, changed ? "changed" : "did not");
        CHECK_MSG(r.n_steps == 1 && r.n_clipped == (uint64_t)changed && r.n_skipped == 0 && !r.skipped && !r.nonfinite,
                  "%s: counts %llu/%llu/%llu", name, (unsigned long long)r.n_steps, (unsigned long long)r.n_clipped,
                  (unsigned long long)r.n_skipped);
        if (o.rule != CLIPNN_CLIP_NONE && o.rule != CLIPNN_CLIP_PROJECT && o.rule != CLIPNN_CLIP_PERCENTILE &&
            o.rule != CLIPNN_CLIP_ZSCORE)
            CHECK_MSG(changed, "%s: the case was meant to clip", name);
        clipnn_model_free(m);
    }
}
