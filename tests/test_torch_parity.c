/* PyTorch parity: clipnn against the reference vectors that
 * scripts/torch_reference.py wrote with torch 1.13 into tests/ref/ (the
 * files are committed; CI needs no PyTorch).
 *
 * Every reference quantity comes twice: torch in float32 (NAME) and torch
 * in float64 from the same float32 inputs (NAME64), which is the exact-math
 * truth to within 1e-15. clipnn's float32 results are checked against the
 * truth at a tolerance derived from float32 rounding, and torch's float32
 * results are checked against the same tolerance, which shows that the
 * tolerance is what float32 arithmetic really needs (torch's own float32
 * errors, measured when the files were made: at most 7 u on the gradient
 * cases, 1.5 u on the trajectories, u = 2^-24).
 *
 * Where torch's float32 arithmetic fails (a gradient entry of 1e20 makes its
 * float32 2-norm overflow to inf and clip_grad_norm_ zero the gradient),
 * clipnn, which accumulates norms in double, is checked
 * against the float64 truth, and torch's float32 result is asserted beside
 * it as documentation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipnn.h"
#include "ref_file.h"

/* ----------------------------------------------------------- the model */

static int parse_acts(const char *text, clipnn_act *acts, size_t n) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (size_t i = 0; i < n; i++, tok = strtok_r(NULL, ",", &save))
        if (!tok || clipnn_act_parse(tok, &acts[i])) return -1;
    return tok ? -1 : 0;
}

/* The 5-7-6-3 MLP of a reference file, with its parameters copied in. */
static clipnn_model *ref_model(const ref_file *f) {
    const size_t widths[3] = {7, 6, 3};
    clipnn_act acts[3];
    CHECK(!strcmp(ref_attr(f, "arch"), "5-7-6-3"));
    if (parse_acts(ref_attr(f, "acts"), acts, 3)) {
        check_fail(__FILE__, __LINE__, "%s: bad acts '%s'", f->path, ref_attr(f, "acts"));
        return NULL;
    }
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, 5, 3, widths, acts) != CLIPNN_OK) return NULL;
    size_t P = clipnn_model_n_params(m);
    const double *params = ref_get(f, "params", P);
    if (!params || clipnn_model_reserve(m, 4) != CLIPNN_OK) {
        clipnn_model_free(m);
        return NULL;
    }
    /* The file holds float32 values printed exactly: the copy is exact. */
    to_float(params, clipnn_model_params(m), P);
    return m;
}

/* ------------------------------------------- (a) forward and backward */

/* Tolerance of the forward/backward comparison: K u times the scale of the
 * compared array (its largest magnitude; per parameter group for the
 * gradient, since the groups' scales differ).
 *
 * Why K = 64: a float32 dot product of length n (here n <= 7, plus the
 * bias) is off by at most about n u times the sum of |terms|, which for
 * torch's initialisation (|w| <= 1/sqrt(fan_in)) is about the scale of the
 * result; the activations add 1-2 u (libm's tanhf, expf, erff, log1pf).
 * Forward through three layers and back through three more is 6 such stages
 * of about 9 u each, and each later stage passes the earlier errors on with
 * a gain of order one (|W| row sums <= sqrt(fan_in) ~ 2.6, damped by the
 * activation slopes <= 1, sigmoid's 1/4): about 54 u if every rounding error
 * had the same sign, a few u in practice (rounding errors are independent:
 * torch's own float32 is within 7 u of the truth on every case). 64 u keeps
 * the aligned worst case; a wrong formula (a missing 1/B, a transposed W, a
 * wrong activation derivative) is off by far more than 64 u ~ 4e-6. */
#define K_GRAD 64.0

static void check_grad_case(const char *file) {
    ref_file *f = ref_load(file);
    if (!f) return;
    clipnn_model *m = ref_model(f);
    CHECK(m != NULL);
    if (!m) {
        ref_free(f);
        return;
    }
    clipnn_loss_options lo = clipnn_loss_options_default();
    CHECK_OK(clipnn_loss_parse(ref_attr(f, "loss"), &lo.loss));
    size_t P = clipnn_model_n_params(m), B = 4, K = 3;
    size_t ny = lo.loss == CLIPNN_LOSS_XENT ? B : B * K;
    const double *x = ref_get(f, "x", B * 5), *y = ref_get(f, "y", ny);
    const double *z32 = ref_get(f, "logits", B * K), *z64 = ref_get(f, "logits64", B * K);
    const double *l32 = ref_get(f, "loss", 1), *l64 = ref_get(f, "loss64", 1);
    const double *g32 = ref_get(f, "grad", P), *g64 = ref_get(f, "grad64", P);
    const double *dx32 = ref_get(f, "dx", B * 5), *dx64 = ref_get(f, "dx64", B * 5);
    if (x && y && z32 && z64 && l32 && l64 && g32 && g64 && dx32 && dx64) {
        float xf[20], yf[12], dx[20];
        to_float(x, xf, B * 5);
        to_float(y, yf, ny);
        double loss;
        CHECK_OK(clipnn_loss_grad(m, &lo, xf, yf, B, &loss, dx));
        float grad_copy[256];
        memcpy(grad_copy, clipnn_model_grads(m), P * sizeof *grad_copy);
        const float *z;
        CHECK_OK(clipnn_forward(m, xf, B, &z));
        char what[128];
        snprintf(what, sizeof what, "%s logits", file);
        check_pair(what, z, z32, z64, B * K, K_GRAD * U * max_abs(z64, B * K));
        snprintf(what, sizeof what, "%s dx", file);
        check_pair(what, dx, dx32, dx64, B * 5, K_GRAD * U * max_abs(dx64, B * 5));
        for (size_t gi = 0; gi < clipnn_model_n_groups(m); gi++) {
            clipnn_group grp = clipnn_model_group(m, gi);
            snprintf(what, sizeof what, "%s grad group %zu", file, gi);
            check_pair(what, grad_copy + grp.offset, g32 + grp.offset, g64 + grp.offset, grp.size,
                       K_GRAD * U * max_abs(g64 + grp.offset, grp.size));
        }
        /* The loss is a mean of O(1) terms computed in double from the
         * logits: its error is the logits' error times |dloss/dz| <= 2 for
         * these targets, so K u max(|loss|, scale of z) bounds it. */
        float lf = (float)loss;
        snprintf(what, sizeof what, "%s loss", file);
        check_pair(what, &lf, l32, l64, 1, K_GRAD * U * fmax(fabs(*l64), max_abs(z64, B * K)));
    }
    clipnn_model_free(m);
    ref_free(f);
}

TEST(torch_parity_logits_loss_gradients) {
    static const char *const cases[] = {
        "grad_tanh_sigmoid_xent.txt", "grad_tanh_sigmoid_mse.txt",    "grad_tanh_sigmoid_bce.txt",
        "grad_gelu_softplus_xent.txt", "grad_gelu_softplus_mse.txt",  "grad_gelu_softplus_bce.txt",
        "grad_relu_tanh_xent.txt",    "grad_softplus_gelu_sigmoid_mse.txt",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_grad_case(cases[i]);
}

/* ------------------------------------------------ (b) 10 clipped steps */

/* Tolerance on theta after step t (absolute; theta ~ 0.5 here).
 * One step changes theta by lr * (clipped gradient), whose entries are
 * bounded by s = max_norm (any p: an entry is at most the norm) or by the
 * clip value; its float32 error is at most K_GRAD u s (section (a)) plus the
 * rounding of the update itself, 2 u |theta|. Momentum mu carries a step's
 * error into the later steps with weights 1, mu, mu^2, ..., so after t steps
 * the gradient errors count A_t = sum_{s=1..t} sum_{k=0..t-s} mu^k times
 * (A_t = t without momentum). The feedback of theta's error into the next
 * gradients is of relative size lr * |Hessian| ~ 0.1 per step on this net
 * and is covered by a factor 2. torch's float32 run is held to the same
 * bound; it sits near 1.5 u after 10 steps. */
static double step_tol(size_t t, double lr, double mu, double s, double theta_scale) {
    double A = 0;
    for (size_t j = 1; j <= t; j++) {
        double w = 0, pw = 1;
        for (size_t k = 0; k <= t - j; k++, pw *= mu) w += pw;
        A += w;
    }
    return 2.0 * U * (K_GRAD * lr * s * A + 2.0 * theta_scale * (double)t);
}

static void check_train_case(const char *file) {
    ref_file *f = ref_load(file);
    if (!f) return;
    clipnn_model *m = ref_model(f);
    CHECK(m != NULL);
    size_t P = m ? clipnn_model_n_params(m) : 0, B = 4, T = 10;
    const double *lr = ref_get(f, "lr", 1), *mu = ref_get(f, "momentum", 1);
    const double *x = ref_get(f, "x", T * B * 5), *y = ref_get(f, "y", T * B);
    const double *th32 = ref_get(f, "theta", T * P), *th64 = ref_get(f, "theta64", T * P);
    const double *n32 = ref_get(f, "total_norm", T), *n64 = ref_get(f, "total_norm64", T);
    const double *loss64 = ref_get(f, "loss64", T);
    int by_norm = !strcmp(ref_attr(f, "clip"), "norm");
    const double *bound = ref_get(f, by_norm ? "max_norm" : "clip_value", 1);
    const double *ptype = by_norm ? ref_get(f, "norm_type", 1) : NULL;
    if (!m || !lr || !mu || !x || !y || !th32 || !th64 || !n32 || !n64 || !loss64 || !bound ||
        (by_norm && !ptype)) {
        clipnn_model_free(m);
        ref_free(f);
        return;
    }
    clipnn_clip_options co = clipnn_clip_options_default();
    if (by_norm) {
        co.rule = CLIPNN_CLIP_NORM_TORCH;
        co.lambda = *bound;
        co.p = *ptype;
    } else {
        co.rule = CLIPNN_CLIP_VALUE;
        co.value = *bound;
    }
    clipnn_optim_options oo = clipnn_optim_options_default();
    oo.momentum = *mu;
    clipnn_clipper *clip = NULL;
    clipnn_optimizer *opt = NULL;
    CHECK_OK(clipnn_clipper_create(&clip, m, &co));
    CHECK_OK(clipnn_optimizer_create(&opt, P, &oo));
    clipnn_loss_options lo = clipnn_loss_options_default();
    lo.loss = CLIPNN_LOSS_XENT;
    int clipped_steps = 0;
    for (size_t t = 0; clip && opt && t < T; t++) {
        float xf[20], yf[4];
        to_float(x + t * B * 5, xf, B * 5);
        to_float(y + t * B, yf, B);
        double loss, scale = -1;
        clipnn_clip_record rec;
        CHECK_OK(clipnn_loss_grad(m, &lo, xf, yf, B, &loss, NULL));
        /* fuse = 0: the gradient is scaled in place, as torch does. */
        CHECK_OK(clipnn_clipper_apply(clip, m, -1, 0, &scale, NULL, &rec));
        CHECK(scale == 1.0);
        CHECK_OK(clipnn_optimizer_step(opt, clipnn_model_params(m), clipnn_model_grads(m), *lr, scale));
        clipped_steps += rec.clipped;
        /* The loss before the step and clip_grad_norm_'s returned norm. */
        CHECK_NEAR(loss, loss64[t], K_GRAD * U * fmax(1.0, fabs(loss64[t])) * (double)(t + 1));
        if (by_norm) {
            CHECK_NEAR(rec.pre_norm, n64[t], K_GRAD * U * n64[t] * (double)(t + 1));
            CHECK_NEAR(n32[t], n64[t], K_GRAD * U * n64[t] * (double)(t + 1));
            CHECK(rec.clipped == (n32[t] > *bound));
        }
        const double *want = th64 + t * P;
        double tol = step_tol(t + 1, *lr, *mu, *bound, max_abs(want, P));
        char what[128];
        snprintf(what, sizeof what, "%s theta after step %zu", file, t + 1);
        check_pair(what, clipnn_model_params(m), th32 + t * P, want, P, tol);
    }
    /* The thresholds were chosen so that clipping acts on most steps. */
    CHECK_MSG(clipped_steps >= 7, "%s: clipping acted on %d of 10 steps", file, clipped_steps);
    clipnn_optimizer_free(opt);
    clipnn_clipper_free(clip);
    clipnn_model_free(m);
    ref_free(f);
}

TEST(torch_parity_ten_clipped_sgd_steps) {
    static const char *const cases[] = {
        "train_norm2_sgd.txt",   "train_norm2_momentum.txt", "train_norm1_sgd.txt",
        "train_norminf_sgd.txt", "train_value_sgd.txt",      "train_value_momentum.txt",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_train_case(cases[i]);
}

/* --------------------------------------------------- (c) norm vectors */

/* A 2-3-2 MLP: groups W1 [3][2], b1 [3], W2 [2][3], b2 [2], the shapes of
 * norms.txt's gradient tensors. */
static clipnn_model *norm_model(const double *grad) {
    const size_t widths[2] = {3, 2};
    const clipnn_act acts[2] = {CLIPNN_ACT_TANH, CLIPNN_ACT_IDENTITY};
    clipnn_model *m = NULL;
    if (clipnn_model_create(&m, 2, 2, widths, acts) != CLIPNN_OK) return NULL;
    float *p = clipnn_model_params(m);
    for (size_t i = 0; i < 17; i++) p[i] = (float)(0.1 * (double)i - 0.8);
    to_float(grad, clipnn_model_grads(m), 17);
    return m;
}

/* norm_model(grad) clipped once by a clipper with options o, unfused (g
 * scaled in place, as torch does); the record in *rec. NULL when the model
 * cannot be made (the failure is reported). */
static clipnn_model *clip_vector(const double *grad, const clipnn_clip_options *o, clipnn_clip_record *rec) {
    clipnn_model *m = norm_model(grad);
    clipnn_clipper *c = NULL;
    CHECK(m != NULL);
    if (!m) return NULL;
    memset(rec, 0, sizeof *rec);
    CHECK_OK(clipnn_clipper_create(&c, m, o));
    if (c) CHECK_OK(clipnn_clipper_apply(c, m, -1, 0, NULL, NULL, rec));
    clipnn_clipper_free(c);
    return m;
}

static const double ORDERS[3] = {2.0, 1.0, INFINITY};
static const char *const ORDER_NAMES[3] = {"2", "1", "inf"};

/* Same value, NaN matching NaN: for the non-finite cases. */
static int same_or_both_nan(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* Phase one: clipnn_norm / clipnn_group_norms against the float64 truth.
 * Accumulated in double over 17 float32 values, the norms carry relative
 * errors of about 17 * 2^-53 (plus one rounding of sqrt / pow): 1e-13 is
 * that with margin. */
static void check_norms(const ref_file *f, const char *cname, const double *grad) {
    clipnn_model *m = norm_model(grad);
    CHECK(m != NULL);
    if (!m) return;
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.total.p%s", cname, ORDER_NAMES[k]);
        const double *t32 = ref_get(f, name, 1);
        snprintf(name, sizeof name, "%s.total.p%s64", cname, ORDER_NAMES[k]);
        const double *t64 = ref_get(f, name, 1);
        snprintf(name, sizeof name, "%s.groups.p%s64", cname, ORDER_NAMES[k]);
        const double *gr64 = ref_get(f, name, 4);
        if (!t32 || !t64 || !gr64) continue;
        double total, groups[4];
        CHECK_OK(clipnn_group_norms(m, clipnn_model_grads(m), ORDERS[k], groups, &total));
        double flat = clipnn_norm(clipnn_model_grads(m), 17, ORDERS[k]);
        if (isfinite(*t64)) {
            CHECK_MSG(fabs(total - *t64) <= 1e-13 * *t64, "%s p=%s: clipnn total %.17g, truth %.17g", cname,
                      ORDER_NAMES[k], total, *t64);
            CHECK_NEAR(flat, *t64, 1e-13 * *t64);
            for (int i = 0; i < 4; i++) CHECK_NEAR(groups[i], gr64[i], 1e-13 * gr64[i]);
        } else {
            CHECK_MSG(same_or_both_nan(total, *t64) && same_or_both_nan(flat, *t64),
                      "%s p=%s: clipnn %g / %g, torch float64 %g", cname, ORDER_NAMES[k], total, flat, *t64);
            for (int i = 0; i < 4; i++) CHECK(same_or_both_nan(groups[i], gr64[i]));
        }
        /* torch's float32 norm: correctly rounded where finite, except that
         * its 2-norm squares in float32 and overflows on the 1e20 entry.
         * That is torch's result, not the truth: documented here. */
        if (!strcmp(cname, "huge") && k == 0) {
            CHECK_MSG(isinf(*t32), "torch float32 2-norm of 1e20 is %g (expected its overflow to inf)", *t32);
            CHECK_NEAR(total, (double)1e20f, 1e-13 * 1e20);
        } else if (isfinite(*t64)) {
            CHECK_NEAR(*t32, *t64, 4 * U * *t64);
        } else {
            CHECK(same_or_both_nan(*t32, *t64));
        }
    }
    clipnn_model_free(m);
}

/* clip_grad_norm_ against clipnn's CLIPNN_CLIP_NORM_TORCH (propagate policy,
 * PyTorch's default behaviour). The clipped gradient is g * coef with coef
 * = max_norm / (N + 1e-6): clipnn rounds its double norm N to float32 once
 * and divides (2 roundings), torch computes N in float32 (correctly rounded
 * here, see check_norms) and takes a reciprocal then a product (3
 * roundings); the product with g adds one: each entry is within 4 u of the
 * exact g * coef on either side, 8 u between the two. */
static void check_clip_norm(const ref_file *f, const char *cname, const double *grad) {
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.max_norm.p%s", cname, ORDER_NAMES[k]);
        size_t nmax = ref_size(f, name);
        const double *maxes = ref_get(f, name, 0);
        snprintf(name, sizeof name, "%s.ret.p%s64", cname, ORDER_NAMES[k]);
        const double *ret64 = ref_get(f, name, nmax);
        snprintf(name, sizeof name, "%s.total.p%s", cname, ORDER_NAMES[k]);
        const double *t32 = ref_get(f, name, 1);
        if (!maxes || !ret64 || !t32) continue;
        for (size_t j = 0; j < nmax; j++) {
            snprintf(name, sizeof name, "%s.clip.p%s.%zu", cname, ORDER_NAMES[k], j);
            const double *c32 = ref_get(f, name, 17);
            snprintf(name, sizeof name, "%s.clip.p%s.%zu64", cname, ORDER_NAMES[k], j);
            const double *c64 = ref_get(f, name, 17);
            if (!c32 || !c64) continue;
            clipnn_clip_options o = clipnn_clip_options_default();
            o.rule = CLIPNN_CLIP_NORM_TORCH;
            o.lambda = maxes[j];
            o.p = ORDERS[k];
            o.nonfinite = CLIPNN_NONFINITE_PROPAGATE;
            clipnn_clip_record rec;
            clipnn_model *m = clip_vector(grad, &o, &rec);
            if (!m) continue;
            const float *g = clipnn_model_grads(m);
            CHECK(same_or_both_nan(rec.pre_norm, ret64[j]) || fabs(rec.pre_norm - ret64[j]) <= 1e-13 * ret64[j]);
            int torch32_overflows = !strcmp(cname, "huge") && k == 0;
            int bad = 0;
            for (size_t i = 0; i < 17 && bad < 3; i++) {
                int ok;
                if (!isfinite(ret64[j])) {
                    /* inf or NaN norm: torch's pattern exactly (NaN norm:
                     * all NaN; inf norm: coef 0, so the inf entry is NaN
                     * and the others are zeros). */
                    ok = same_or_both_nan(g[i], (float)c32[i]);
                } else {
                    /* Within 4 u of the truth, and 8 u of torch's float32
                     * except where torch's float32 norm overflowed (1e20). */
                    ok = fabs((double)g[i] - c64[i]) <= 4 * U * fabs(c64[i]) &&
                         (torch32_overflows || fabs((double)g[i] - c32[i]) <= 8 * U * fabs(c32[i]));
                }
                if (!ok) {
                    bad++;
                    check_fail(__FILE__, __LINE__, "%s p=%s max_norm %.9g: g[%zu] = %.9g, torch %.9g, truth %.17g",
                               cname, ORDER_NAMES[k], maxes[j], i, g[i], c32[i], c64[i]);
                }
            }
            if (torch32_overflows) {
                /* Documented torch float32 behaviour: norm inf, coef 0,
                 * every entry 0; clipnn keeps the direction. */
                for (size_t i = 0; i < 17; i++) CHECK(c32[i] == 0.0);
                CHECK(fabs(g[8]) > 0.1 * maxes[j]);
            }
            /* max_norm equal to torch's float32 norm: the 1e-6 keeps coef
             * just under 1, so torch (and clipnn) still scale. */
            if (j + 1 == nmax && isfinite(*t32) && *t32 > 0 && maxes[j] == *t32) CHECK(rec.clipped == 1);
            clipnn_model_free(m);
        }
    }
}

static void check_clip_value(const ref_file *f, const char *cname, const double *grad) {
    char name[64];
    snprintf(name, sizeof name, "%s.clip_value", cname);
    const double *v = ref_get(f, name, 1);
    snprintf(name, sizeof name, "%s.value", cname);
    const double *want = ref_get(f, name, 17);
    if (!v || !want) return;
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_VALUE;
    o.value = *v;
    o.nonfinite = CLIPNN_NONFINITE_PROPAGATE; /* torch clamps whatever the norm */
    clipnn_clip_record rec;
    clipnn_model *m = clip_vector(grad, &o, &rec);
    if (!m) return;
    /* A clamp is exact: bit-for-bit equal, NaN staying NaN. */
    for (size_t i = 0; i < 17; i++)
        CHECK_MSG(same_or_both_nan(clipnn_model_grads(m)[i], (float)want[i]), "%s: value clip g[%zu] = %.9g, torch %.9g",
                  cname, i, clipnn_model_grads(m)[i], want[i]);
    clipnn_model_free(m);
}

TEST(torch_parity_norms_and_clip_vectors) {
    ref_file *f = ref_load("norms.txt");
    if (!f) return;
    static const char *const cases[] = {"rand", "zero", "huge", "inf", "nan"};
    for (size_t i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.grad", cases[i]);
        const double *grad = ref_get(f, name, 17);
        if (!grad) continue;
        check_norms(f, cases[i], grad);
        check_clip_norm(f, cases[i], grad);
        check_clip_value(f, cases[i], grad);
    }
    ref_free(f);
}

/* The non-finite policies on torch's inf and NaN vectors. propagate is
 * checked against torch above (NaN norm: every entry NaN; inf norm: coef 0,
 * the inf entry NaN and the rest 0); error and skip must leave the gradient
 * and the parameters as they were, and say so. */
TEST(torch_parity_nonfinite_policies) {
    ref_file *f = ref_load("norms.txt");
    if (!f) return;
    static const char *const cases[] = {"inf", "nan"};
    for (size_t i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.grad", cases[i]);
        const double *grad = ref_get(f, name, 17);
        if (!grad) continue;
        for (int policy = CLIPNN_NONFINITE_ERROR; policy <= CLIPNN_NONFINITE_SKIP; policy++) {
            clipnn_model *m = norm_model(grad);
            if (!m) continue;
            float g0[17], p0[17];
            memcpy(g0, clipnn_model_grads(m), sizeof g0);
            memcpy(p0, clipnn_model_params(m), sizeof p0);
            clipnn_clip_options o = clipnn_clip_options_default();
            o.rule = CLIPNN_CLIP_NORM_TORCH;
            o.nonfinite = (clipnn_nonfinite)policy;
            clipnn_clipper *c = NULL;
            clipnn_clip_record rec;
            memset(&rec, 0, sizeof rec);
            CHECK_OK(clipnn_clipper_create(&c, m, &o));
            double scale = 1;
            clipnn_status s = clipnn_clipper_apply(c, m, -1, 1, &scale, NULL, &rec);
            if (policy == CLIPNN_NONFINITE_ERROR) {
                CHECK(s == CLIPNN_ERR_NONFINITE);
            } else {
                CHECK(s == CLIPNN_OK && rec.skipped == 1 && rec.n_skipped == 1 && rec.nonfinite == 1);
            }
            CHECK(memcmp(g0, clipnn_model_grads(m), sizeof g0) == 0);
            CHECK(memcmp(p0, clipnn_model_params(m), sizeof p0) == 0);
            clipnn_clipper_free(c);
            clipnn_model_free(m);
        }
    }
    ref_free(f);
}

/* Beyond the 1e20 case: a gradient whose norm exceeds FLT_MAX although
 * every entry is a finite float (two entries of 3e38; norm 4.24e38). torch
 * in float32 gets inf and zeroes the gradient, as with 1e20; clipnn's
 * double norm is finite, so norm-torch must still clip to the right
 * direction: the two entries become max_norm / sqrt(2) and the others
 * keep their ratios to them (max_norm 1e30 keeps them out of float32's
 * subnormal range). */
TEST(torch_parity_norm_beyond_float32_range) {
    const double grad[17] = {0.5, -1, 0, 0, 3e38, 0, 0, 0, 0, 0, 0, 0, -3e38, 0, 0, 0, 2};
    double total, truth = hypot((double)3e38f, (double)3e38f);
    clipnn_clip_options o = clipnn_clip_options_default();
    o.rule = CLIPNN_CLIP_NORM_TORCH;
    o.lambda = 1e30;
    clipnn_clip_record rec;
    clipnn_model *m = clip_vector(grad, &o, &rec);
    if (!m) return;
    CHECK_NEAR(rec.pre_norm, truth, 1e-13 * truth);
    const float *g = clipnn_model_grads(m);
    for (size_t i = 0; i < 17; i++) {
        double want = (double)(float)grad[i] * (1e30 / truth);
        CHECK_NEAR(g[i], want, 4 * U * fabs(want));
    }
    to_float(grad, clipnn_model_grads(m), 17);
    CHECK_OK(clipnn_group_norms(m, clipnn_model_grads(m), 2.0, NULL, &total));
    CHECK_NEAR(total, truth, 1e-13 * truth);
    CHECK(rec.clipped == 1 && !rec.nonfinite);
    clipnn_model_free(m);
}
