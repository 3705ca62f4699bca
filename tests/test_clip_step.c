/* The genann-style step test: one plain SGD step (no momentum) with each
 * clipping rule moves every weight by exactly -lr * g / c, where g is the
 * numeric gradient (central finite differences of the double reference
 * loss) and c is computed here, independently, from the rule's formula in
 * docs/clipping.md. Also DP-SGD's per-example clipping against per-example
 * numeric gradients.
 *
 * Tolerance of a weight's move, derived:
 *  - the finite differences: step h = 1e-5 in double, truncation
 *    h^2 |f'''| / 6 ~ 2e-11 and rounding eps64 |f| / h ~ 2e-11, negligible;
 *  - clipnn's float32 gradient: within K u of the exact one, relative to
 *    the largest gradient entry (K = 64, derived in tests/test_torch_parity.c;
 *    u = 2^-24);
 *  - the factor c, computed by clipnn from its float32 gradient: a norm of
 *    g + e differs from the norm of g by at most ||e||_p <= n^(1/p) K u scale,
 *    i.e. relatively by n^(1/p) K u scale / ||g||_p;
 *  - the update theta - lr * (g / c) in float32: 3 roundings of the product
 *    and one of the sum, 4 u (|theta| + |step|).
 * A rule that used a different norm, threshold, epsilon or unit is off by
 * far more (the tightest, norm-torch's 1e-6, is checked in
 * test_torch_parity.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"

#define U 5.9604644775390625e-08 /* 2^-24 */
#define K_GRAD 64.0
#define LR 0.25

enum { N_IN = 4, N_OUT = 3, BATCH = 3, MAXP = 64 };

static clipnn_model *step_model(void) {
    const size_t widths[2] = {5, N_OUT};
    const clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, N_IN, 2, widths, acts) != CLIPNN_OK) return NULL;
    if (clipnn_model_init(m, CLIPNN_INIT_TORCH, 11) != CLIPNN_OK || clipnn_model_reserve(m, BATCH) != CLIPNN_OK ||
        clipnn_model_n_params(m) > MAXP) {
        clipnn_model_free(m);
        return NULL;
    }
    return m;
}

/* Inputs of growing size, so that per-example gradient norms differ. */
static void step_batch(float *x, float *y, double *xd, double *yd) {
    for (int i = 0; i < BATCH * N_IN; i++) {
        x[i] = (float)((0.5 + i / N_IN) * sin(0.9 * i + 0.3)); /* rows of growing size */
        xd[i] = x[i];
    }
    for (int i = 0; i < BATCH; i++) {
        y[i] = (float)(i % N_OUT);
        yd[i] = y[i];
    }
}

/* Central differences of the double reference's mean loss over `batch`
 * examples at the model's parameters: g[P]. */
static void numeric_grad(clipnn_model *m, const clipnn_loss_options *lo, const double *x, const double *y,
                         size_t batch, double *g) {
    size_t P = clipnn_model_n_params(m);
    const float *pf = clipnn_model_params(m);
    double theta[MAXP];
    for (size_t i = 0; i < P; i++) theta[i] = pf[i];
    const double h = 1e-5;
    for (size_t i = 0; i < P; i++) {
        double keep = theta[i], lp = 0, lm = 0;
        theta[i] = keep + h;
        clipnn_reference_loss_grad(m, theta, lo, x, y, batch, &lp, NULL, NULL, NULL);
        theta[i] = keep - h;
        clipnn_reference_loss_grad(m, theta, lo, x, y, batch, &lm, NULL, NULL, NULL);
        theta[i] = keep;
        g[i] = (lp - lm) / (2 * h);
    }
}

static double dnorm(const double *v, size_t n, double p) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s = isinf(p) ? fmax(s, fabs(v[i])) : s + pow(fabs(v[i]), p);
    return isinf(p) ? s : pow(s, 1.0 / p);
}

static double fnorm2(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* What the test expects of one rule: the effective per-parameter factor
 * 1/c (value clipping: the clamped entry itself) and the relative error of
 * c that clipnn's float32 gradient allows. */
typedef struct {
    double want_step[MAXP]; /* -lr * g / c, or -lr * clamp(g) */
    double c_rel[MAXP];     /* relative tolerance on c for this parameter */
    double inv_c[MAXP];
    double global_c;        /* c of a global rule, else 0 */
    int clips;              /* the rule changes g here */
} expectation;

static double c_error(double scale, size_t n, double p, double norm) {
    return K_GRAD * U * scale * (isinf(p) ? 1.0 : pow((double)n, 1.0 / p)) / norm;
}

/* The rule's formula (docs/clipping.md) applied to the numeric gradient g. */
static void expect_rule(const clipnn_clip_options *o, clipnn_model *m, const double *g, expectation *e) {
    size_t P = clipnn_model_n_params(m);
    const float *theta = clipnn_model_params(m);
    double scale = dnorm(g, P, INFINITY);
    memset(e, 0, sizeof *e);
    double c = 1.0, crel = 0.0;
    switch (o->rule) {
    case CLIPNN_CLIP_NORM: { /* c = max(||g||_p / lambda, 1) */
        double n = dnorm(g, P, o->p);
        c = fmax(n / o->lambda, 1.0);
        crel = c_error(scale, P, o->p, n);
        break;
    }
    case CLIPNN_CLIP_NORM_TORCH: { /* g *= min(lambda / (||g|| + 1e-6), 1) */
        double n = dnorm(g, P, o->p);
        c = fmax((n + 1e-6) / o->lambda, 1.0);
        crel = c_error(scale, P, o->p, n) + 3 * U;
        break;
    }
    case CLIPNN_CLIP_ADAPTIVE: { /* c = max(||g|| / (lambda max(||theta||, eps)), 1), eq. 17 */
        double th = 0;
        for (size_t i = 0; i < P; i++) th += (double)theta[i] * theta[i];
        double n = dnorm(g, P, 2.0);
        c = fmax(n / (o->lambda * fmax(sqrt(th), o->eps)), 1.0);
        crel = c_error(scale, P, 2.0, n);
        break;
    }
    default: break;
    }
    if (o->rule != CLIPNN_CLIP_ADAPTIVE_LAYER && o->rule != CLIPNN_CLIP_VALUE) {
        e->global_c = c;
        e->clips = c > 1;
        for (size_t i = 0; i < P; i++) {
            e->inv_c[i] = 1.0 / c;
            e->c_rel[i] = crel;
            e->want_step[i] = -LR * g[i] / c;
        }
        return;
    }
    if (o->rule == CLIPNN_CLIP_VALUE) {
        for (size_t i = 0; i < P; i++) {
            double gi = fmin(fmax(g[i], -o->value), o->value);
            e->clips |= gi != g[i];
            e->inv_c[i] = 1.0;
            e->want_step[i] = -LR * gi;
        }
        return;
    }
    /* eq. 18, per group: c_l = max(||g_l||_F / (lambda max(||theta_l||_F, eps)), 1). */
    for (size_t k = 0; k < clipnn_model_n_groups(m); k++) {
        clipnn_group grp = clipnn_model_group(m, k);
        const double *gl = g + grp.offset;
        double n = dnorm(gl, grp.size, 2.0);
        double cl = fmax(n / (o->lambda * fmax(fnorm2(theta + grp.offset, grp.size), o->eps)), 1.0);
        e->clips |= cl > 1;
        for (size_t i = grp.offset; i < grp.offset + grp.size; i++) {
            e->inv_c[i] = 1.0 / cl;
            e->c_rel[i] = c_error(dnorm(gl, grp.size, INFINITY), grp.size, 2.0, n);
            e->want_step[i] = -LR * g[i] / cl;
        }
    }
}

/* One clipped SGD step through the public two-phase API; the move of every
 * weight against the expectation. */
static void check_step(const char *label, clipnn_clip_options o, int fuse) {
    clipnn_model *m = step_model();
    CHECK(m != NULL);
    if (!m) return;
    size_t P = clipnn_model_n_params(m);
    float x[BATCH * N_IN], y[BATCH];
    double xd[BATCH * N_IN], yd[BATCH], g[MAXP], theta0[MAXP];
    step_batch(x, y, xd, yd);
    clipnn_loss_options lo = clipnn_loss_options_default();
    numeric_grad(m, &lo, xd, yd, BATCH, g);
    double scale = dnorm(g, P, INFINITY);
    expectation e;
    expect_rule(&o, m, g, &e);
    if (o.rule != CLIPNN_CLIP_NONE) CHECK_MSG(e.clips, "%s: thresholds chosen so that the rule clips", label);
    if (o.rule == CLIPNN_CLIP_ADAPTIVE_LAYER) {
        /* lambda chosen so that some groups clip and others move by -lr g. */
        int clipped = 0, kept = 0;
        for (size_t k = 0; k < clipnn_model_n_groups(m); k++) {
            if (e.inv_c[clipnn_model_group(m, k).offset] < 1) clipped++;
            else kept++;
        }
        CHECK_MSG(clipped > 0 && kept > 0, "%s: %d groups clipped, %d kept", label, clipped, kept);
    }
    for (size_t i = 0; i < P; i++) theta0[i] = clipnn_model_params(m)[i];

    clipnn_clipper *c = NULL;
    clipnn_optimizer *opt = NULL;
    clipnn_optim_options oo = clipnn_optim_options_default();
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    CHECK_OK(clipnn_optimizer_create(&opt, P, &oo));
    clipnn_clip_record rec;
    double gs = 1;
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, BATCH, NULL, NULL));
    CHECK_OK(clipnn_clipper_apply(c, m, -1, fuse, &gs, NULL, &rec));
    CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), LR, gs));
    CHECK(rec.clipped == e.clips);
    if (e.global_c > 0) CHECK_NEAR(rec.factor, e.global_c, e.global_c * (e.c_rel[0] + 4 * U));
    int bad = 0;
    for (size_t i = 0; i < P && bad < 3; i++) {
        double got = (double)clipnn_model_params(m)[i] - theta0[i];
        double tol = LR * e.inv_c[i] * (K_GRAD * U * scale + fabs(g[i]) * e.c_rel[i]) +
                     4 * U * (fabs(theta0[i]) + fabs(e.want_step[i]));
        if (!(fabs(got - e.want_step[i]) <= tol)) {
            bad++;
            check_fail(__FILE__, __LINE__, "%s (fuse %d): weight %zu moved %.9g, want %.9g (tol %.3g)", label, fuse,
                       i, got, e.want_step[i], tol);
        }
    }
    clipnn_optimizer_free(opt);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* Thresholds relative to the numeric gradient, so that every rule clips. */
static double grad_norm_of_step_model(double p) {
    clipnn_model *m = step_model();
    if (!m) return NAN;
    float x[BATCH * N_IN], y[BATCH];
    double xd[BATCH * N_IN], yd[BATCH], g[MAXP];
    step_batch(x, y, xd, yd);
    clipnn_loss_options lo = clipnn_loss_options_default();
    numeric_grad(m, &lo, xd, yd, BATCH, g);
    double n = dnorm(g, clipnn_model_n_params(m), p);
    clipnn_model_free(m);
    return n;
}

TEST(clip_step_moves_weights_by_lr_g_over_c) {
    double n2 = grad_norm_of_step_model(2.0), ninf = grad_norm_of_step_model(INFINITY);
    CHECK(isfinite(n2) && n2 > 0.1);
    for (int fuse = 0; fuse <= 1; fuse++) {
        clipnn_clip_options o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_NONE;
        check_step("none", o, fuse);

        o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_VALUE;
        o.value = 0.5 * ninf;
        check_step("value", o, fuse);

        const double orders[3] = {1.0, 2.0, INFINITY};
        for (int k = 0; k < 3; k++) {
            o = clipnn_clip_options_default();
            o.rule = CLIPNN_CLIP_NORM;
            o.p = orders[k];
            o.lambda = 0.4 * grad_norm_of_step_model(orders[k]);
            char label[32];
            snprintf(label, sizeof label, "norm p=%g", orders[k]);
            check_step(label, o, fuse);
        }

        o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_NORM_TORCH;
        o.lambda = 0.4 * n2;
        check_step("norm-torch", o, fuse);

        o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_ADAPTIVE;
        o.lambda = 0.1; /* ||theta|| ~ 2.5 here, so lambda ||theta|| < ||g|| */
        check_step("adaptive", o, fuse);

        o = clipnn_clip_options_default();
        o.rule = CLIPNN_CLIP_ADAPTIVE_LAYER;
        o.lambda = 0.3;
        check_step("adaptive-layer", o, fuse);
    }
}

/* ---------------------------------------------------- per-example (DP-SGD) */

/* Per-example gradients are the gradients of each example's own loss (a
 * batch of one): numeric ones from the double reference. The model's
 * per-example norms (no per-example gradient formed), the materialised
 * clipping of Optax's per_example_global_norm_clip, and one SGD step with
 * the per-sample rule must all agree with them. */
TEST(clip_step_per_example_against_numeric_gradients) {
    clipnn_model *m = step_model();
    CHECK(m != NULL);
    if (!m) return;
    size_t P = clipnn_model_n_params(m);
    float x[BATCH * N_IN], y[BATCH];
    double xd[BATCH * N_IN], yd[BATCH], gi[BATCH][MAXP], norm[BATCH];
    step_batch(x, y, xd, yd);
    clipnn_loss_options lo = clipnn_loss_options_default();
    float gf[BATCH * MAXP];
    double scale = 0;
    for (int i = 0; i < BATCH; i++) {
        numeric_grad(m, &lo, xd + i * N_IN, yd + i, 1, gi[i]);
        norm[i] = dnorm(gi[i], P, 2.0);
        scale = fmax(scale, dnorm(gi[i], P, INFINITY));
        for (size_t j = 0; j < P; j++) gf[i * P + j] = (float)gi[i][j];
    }
    /* C between the smallest and the largest per-example norm: some
     * examples clipped, some not. */
    double lo_n = fmin(norm[0], fmin(norm[1], norm[2])), hi_n = fmax(norm[0], fmax(norm[1], norm[2]));
    CHECK(hi_n > 1.2 * lo_n);
    const double C = 0.5 * (lo_n + hi_n);
    double want_sum[MAXP] = {0};
    size_t want_clipped = 0;
    for (int i = 0; i < BATCH; i++) {
        double f = norm[i] > C ? C / norm[i] : 1.0;
        want_clipped += norm[i] > C;
        for (size_t j = 0; j < P; j++) want_sum[j] += f * gi[i][j];
    }

    /* Norms from ||a_i||^2 ||delta_i||^2: float32 forward/backward, so K u
     * relative to the norm (the norm is dominated by the largest entries). */
    CHECK_OK(clipnn_loss_grad(m, &lo, x, y, BATCH, NULL, NULL));
    double got_norm[BATCH];
    CHECK_OK(clipnn_per_example_grad_norms(m, got_norm));
    for (int i = 0; i < BATCH; i++) CHECK_NEAR(got_norm[i], norm[i], K_GRAD * U * norm[i]);

    /* The materialised path on the numeric gradients rounded to float32:
     * the sum of BATCH scaled vectors, each entry within a few u of the
     * double sum (float accumulation of 3 terms: 3 u of the scale). */
    float sum[MAXP];
    size_t n_clipped = 0;
    CHECK_OK(clipnn_clip_per_example(gf, BATCH, P, C, sum, &n_clipped));
    CHECK(n_clipped == want_clipped);
    for (size_t j = 0; j < P; j++) CHECK_NEAR(sum[j], want_sum[j], 4 * U * BATCH * scale);

    /* One SGD step with the per-sample rule: theta moves by
     * -lr * (1/B) sum_i g_i / max(1, ||g_i|| / C). Each example's factor
     * carries clipnn's norm error (K u) on top of its gradient's. */
    float theta0[MAXP];
    memcpy(theta0, clipnn_model_params(m), P * sizeof *theta0);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_PER_SAMPLE;
    o.lambda = C;
    clipnn_clipper *c = NULL;
    clipnn_optimizer *opt = NULL;
    clipnn_optim_options oo = clipnn_optim_options_default();
    clipnn_clip_record rec;
    double gs = 1;
    CHECK_OK(clipnn_clipper_create(&c, m, &o));
    CHECK_OK(clipnn_optimizer_create(&opt, P, &oo));
    CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, &gs, NULL, &rec));
    CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), LR, gs));
    CHECK(rec.clipped == 1);
    for (size_t j = 0; j < P; j++) {
        double want = -LR * want_sum[j] / BATCH;
        double got = (double)clipnn_model_params(m)[j] - theta0[j];
        CHECK_NEAR(got, want, LR * 2 * K_GRAD * U * scale + 4 * U * (fabs(theta0[j]) + fabs(want)));
    }
    clipnn_optimizer_free(opt);
    clipnn_clipper_free(c);
    clipnn_model_free(m);
}

/* per_example_global_norm_clip (Optax) at the boundary, on examples of
 * norms 5, 13 and 0 (tests/test_clip.c has Optax's documented example at
 * C = 1.25, 0 and inf): an example is clipped only when its norm exceeds C,
 * so C = 5 leaves the first alone and scales the second to length 5. */
TEST(clip_step_per_example_clip_at_the_norm) {
    const float rows[3 * 2] = {3, 4, 5, 12, 0, 0};
    float out[2];
    size_t n_clipped = 99;
    CHECK_OK(clipnn_clip_per_example(rows, 3, 2, 5.0, out, &n_clipped));
    CHECK(n_clipped == 1);
    CHECK_NEAR(out[0], 3 + 5 * 5 / 13.0, 4 * U * 5);
    CHECK_NEAR(out[1], 4 + 5 * 12 / 13.0, 4 * U * 9);
    CHECK_OK(clipnn_clip_per_example(rows, 3, 2, 13.0, out, &n_clipped));
    CHECK(n_clipped == 0 && out[0] == 8 && out[1] == 16);
    CHECK(clipnn_clip_per_example(rows, 3, 2, NAN, out, &n_clipped) == CLIPNN_ERR_INVALID_ARG);
}
